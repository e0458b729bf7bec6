#include "datapath/daemon_resource.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/assert.h"
#include "core/crc32c.h"
#include "core/overloaded.h"

namespace ditto::datapath {
namespace {

constexpr std::uint32_t nbd_error_io = 5;       // EIO
constexpr std::uint32_t nbd_error_perm = 1;     // EPERM
constexpr std::uint32_t nbd_error_invalid = 22;  // EINVAL
constexpr std::uint32_t nbd_error_busy = 12;     // ENOMEM: "try again later" for NBD clients

std::uint32_t nbd_error_of(core::ClientStatus status) {
  switch (status) {
    case core::ClientStatus::ok: return 0;
    case core::ClientStatus::io_error: return nbd_error_io;
    case core::ClientStatus::not_primary: return nbd_error_perm;
    case core::ClientStatus::no_data: return nbd_error_io;
    case core::ClientStatus::out_of_range: return nbd_error_invalid;
    case core::ClientStatus::busy: return nbd_error_busy;
  }
  return nbd_error_io;
}

}  // namespace

Result<std::unique_ptr<ResourceRunner>> ResourceRunner::create(boost::asio::io_context& io,
                                                               DaemonConfig config,
                                                               ResourceOptions options) {
  if (config.diskless) {
    // A `disk none` client: no disk, no metadata, no activity log; its generations live in
    // memory (as DRBD's), and every read and write goes through its peers.
    config.node.volume_size_bytes = config.size_bytes;
    config.node.intentional_diskless = true;
    config.node.al_updates = false;
    return std::unique_ptr<ResourceRunner>(new ResourceRunner(
        io, std::move(config), std::move(options), nullptr, nullptr, AttachPlan{}));
  }
  auto disk = options.shard_ring != nullptr ? UringDisk::open(*options.shard_ring, config.disk_path)
                                            : UringDisk::open(io, config.disk_path);
  if (!disk.ok()) {
    return Error{config.disk_location.to_string() + ": cannot use disk '" + config.disk_path +
                 "': " + disk.error().message};
  }
  auto metadata = MetadataStore::open(config.disk_path);
  if (!metadata.ok()) return Error{config.resource.name + ": " + metadata.error().message};
  auto attach = check_metadata(config, *metadata.value());
  if (!attach.ok()) return attach.error();
  // The core, and through it NBD, sees only the data area: no request reaches the metadata.
  config.node.volume_size_bytes = metadata.value()->data_size_bytes();
  if (config.size_bytes != 0 && config.size_bytes != config.node.volume_size_bytes) {
    // dittod neither shrinks a device nor lets a client's size disagree with it.
    return Error{config.disk_location.to_string() + ": size " +
                 std::to_string(config.size_bytes) + " bytes differs from the data area of '" +
                 config.disk_path + "' (" + std::to_string(config.node.volume_size_bytes) +
                 " bytes); dittod exports the whole data area"};
  }
  config.node.initial_disk_state = attach.value().initial_disk;
  config.node.initial_generations = attach.value().initial_generations;
  config.node.initial_unconfirmed = attach.value().initial_unconfirmed;
  if (Status status = configure_activity_log(config, *metadata.value(), attach.value());
      !status.ok()) {
    return Error{config.resource.name + ": " + status.error().message};
  }
  DITTO_ASSERT(config.node.volume_size_bytes < disk.value()->size_bytes());
  return std::unique_ptr<ResourceRunner>(
      new ResourceRunner(io, std::move(config), std::move(options), std::move(disk).value(),
                         std::move(metadata).value(), std::move(attach).value()));
}

ResourceRunner::ResourceRunner(boost::asio::io_context& io, DaemonConfig config,
                               ResourceOptions options, std::unique_ptr<UringDisk> disk,
                               std::unique_ptr<MetadataStore> metadata, AttachPlan attach)
    : io_(io),
      config_(std::move(config)),
      options_(std::move(options)),
      disk_(std::move(disk)),
      metadata_(std::move(metadata)),
      attach_(std::move(attach)),
      own_pool_(options_.shard_pool != nullptr
                    ? nullptr
                    : std::make_unique<AlignedBufferPool>(options_.buffer_slab_bytes)),
      pool_(options_.shard_pool != nullptr ? *options_.shard_pool : *own_pool_),
      node_(config_.node),
      helpers_(io),
      ko_timer_(io),
      deferred_retry_timer_(io),
      resync_after_timer_(io) {
  transport_ = std::make_unique<TcpTransport>(io_, config_.transport, *this);
  NbdServerOptions nbd_options;
  // A client's requests reach its peers' O_DIRECT disks: whole 4 KiB blocks are safe on any.
  nbd_options.block_size_minimum_bytes = disk_ ? disk_->alignment_bytes() : 4096;
  nbd_options.payload_size_max_bytes = wire::payload_size_max_bytes;
  nbd_options.tls_context = options_.nbd_tls_context;
  nbd_ = std::make_unique<NbdServer>(io_, *this, nbd_options);
  crashed_primary_ = attach_.crashed_primary;
  // The node's, not the metadata's: it may have rolled back an unconfirmed generation.
  crashed_generation_ = comparable_current(node_.generations().current);
  if (const config::Option* option = config_.resource.options.find("auto-promote")) {
    auto_promote_ = option->values.empty() || option->values.front() != "no";
  }
  if (disk_ && own_pool_ && !own_pool_->slab().empty()) {
    // A ring and pool of its own (no shard): the slab is the ring's fixed buffer, as a shard's
    // is (daemon_shard.cpp register_pool); without it, plain buffers work too.
    if (Status status = disk_->register_buffers(own_pool_->slab()); !status.ok()) {
      log("I/O buffers not registered, using plain ones: " + status.error().message);
    }
  }
  if (disk_) {
    disk_->set_completion_handler(
        [this](std::uint64_t cookie, int result) { on_disk_completion(cookie, result); });
  }
}

ResourceRunner::~ResourceRunner() {
  stop();
  // A shard's pool outlives the resource: give back what the core or NBD still referenced.
  for (Slot& slot : slots_) {
    if (slot.references > 0) pool_.release(slot.buffer);
  }
}

Status ResourceRunner::start() {
  if (metadata_) {
    if (Status status = attach_metadata(); !status.ok()) return status;
  }
  if (Status status = transport_->start(); !status.ok()) return status;
  arm_ko_timer();
  if (options_.resync_after) poll_resync_after();
  if (!options_.nbd_host.empty()) {
    if (Status status = nbd_->listen_tcp(options_.nbd_host, options_.nbd_port); !status.ok()) {
      return status;
    }
  }
  if (!options_.nbd_socket_path.empty()) {
    if (Status status = nbd_->listen_unix(options_.nbd_socket_path); !status.ok()) {
      return status;
    }
  }
  const std::string disk =
      metadata_ ? "disk " + config_.disk_path + " (" +
                      std::to_string(node_.config().volume_size_bytes >> 20) +
                      " MiB data, DRBD v09 metadata with max-peers " +
                      std::to_string(metadata_->superblock().max_peers) + ")"
                : node_.size_bytes() == 0
                ? std::string("diskless client (disk none, size learned from its peers)")
                : "diskless client (disk none, " + std::to_string(node_.size_bytes() >> 20) +
                      " MiB through its peers)";
  log("started: node-id " + std::to_string(config_.self.node_id.value) + ", " + disk +
      ", peers on " + config_.self.address + ":" + std::to_string(transport_->listen_port()));
  return Status::success();
}

void ResourceRunner::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::deque<HeldIo> held;
  held.swap(held_for_promotion_);
  for (HeldIo& entry : held) entry.done(nbd::error_shutdown);
  if (nbd_) nbd_->stop();
  if (transport_) transport_->stop();
  helpers_.stop();
  ko_timer_.cancel();
  deferred_retry_timer_.cancel();
  resync_after_timer_.cancel();
  if (options_.resync_after) options_.resync_after->remove(config_.resource.name);
  deferred_reads_.clear();  // never started: nothing of theirs is in flight
  if (disk_) disk_->shutdown();
  write_detached_metadata(true);  // after a detach: its state, not Diskless
  write_clean_metadata();         // after the disk is idle
}

Instant ResourceRunner::now() const {
  const auto elapsed = std::chrono::steady_clock::now() - epoch_;
  return Instant{std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()};
}

void ResourceRunner::log(const std::string& line) const {
  std::fprintf(stderr, "dittod[%s] %s: %s\n", config_.self.name.c_str(),
               config_.resource.name.c_str(), line.c_str());
}

// ---- Admin and status -------------------------------------------------------------------------

core::AdminResult ResourceRunner::admin(const core::AdminCommand& command) {
  if (std::holds_alternative<core::Demote>(command) && open_sessions() > 0) {
    return {false, "SS_DEVICE_IN_USE",
            std::to_string(open_sessions()) + " NBD connections have the volume open"};
  }
  const DiskState disk_before = node_.disk_state();
  const Generations generations_before = node_.generations();
  core::AdminResult result = node_.on_admin(now(), command);
  if (std::holds_alternative<core::Detach>(command) && result.ok) {
    disk_detached(disk_before, generations_before);
  }
  pump();
  admin_done(command, result);
  // A resync an admin command started (invalidate, ...) is held at once by its dependency, and
  // its dependents learn of it at once: no poll interval of progress.
  if (options_.resync_after && !stopped_) poll_resync_after();
  return result;
}

Status ResourceRunner::adjust(DaemonConfig updated) {
  // The node keeps what was set up at start or grew since (the volume size after a resize, the
  // activity log and bitmap layout of its metadata, its generations); the file brings only the
  // live options.
  core::NodeConfig options = node_.config();
  core::copy_live_options(updated.node, options);
  if (Status status = transport_->adjust(updated.transport); !status.ok()) return status;
  // Built from the running configuration, so nothing structural differs, and the file's values
  // were range-checked when it was loaded: the core does not refuse these.
  const core::AdminResult changed = admin(core::ChangeOptions{options});
  if (!changed.ok) {
    return Error{"the node refused the new options (" + changed.code + "): " + changed.message};
  }
  updated.node = std::move(options);
  config_ = std::move(updated);
  log("adjusted to the configuration in " + config_.options.config_path);
  return Status::success();
}

// ---- Buffers ----------------------------------------------------------------------------------

std::uint64_t ResourceRunner::allocate_slot(std::span<std::uint8_t> buffer,
                                            std::uint32_t references) {
  DITTO_ASSERT(!buffer.empty());
  DITTO_ASSERT(references > 0);
  std::uint64_t handle = 0;
  if (!free_slots_.empty()) {
    handle = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slots_.push_back({});
    handle = slots_.size();
  }
  slots_[handle - 1] = Slot{buffer, references};
  return handle;
}

void ResourceRunner::unreference(std::uint64_t handle) {
  DITTO_ASSERT(handle >= 1 && handle <= slots_.size());
  Slot& slot = slots_[handle - 1];
  DITTO_ASSERT(slot.references > 0);
  slot.references -= 1;
  if (slot.references > 0) return;
  pool_.release(slot.buffer);
  slot = Slot{};
  free_slots_.push_back(handle);
}

std::span<std::uint8_t> ResourceRunner::slot_buffer(PayloadHandle handle,
                                                    std::uint32_t length_bytes) {
  DITTO_ASSERT(handle.value >= 1 && handle.value <= slots_.size());
  const Slot& slot = slots_[handle.value - 1];
  DITTO_ASSERT(slot.references > 0);
  DITTO_ASSERT(length_bytes <= slot.buffer.size());
  return slot.buffer.subspan(0, length_bytes);
}

// ---- Action execution -------------------------------------------------------------------------

void ResourceRunner::pump() {
  // Executing an action can start new input (an NBD completion lets the client's next request
  // in). The outer loop picks up those actions, so the order of sends is the order the core
  // produced them.
  if (pumping_) return;
  pumping_ = true;
  do {
    while (node_.has_actions()) {
      // The vector of the previous batch keeps its capacity (moved back below); a re-entered
      // pump returns at once (pumping_), so it is never in use twice.
      std::vector<core::Action> actions = std::move(action_buffer_);
      node_.take_actions(actions);
      // Before any of the actions acts on a change of generations or state.
      const bool metadata_written =
          write_metadata_if_changed(std::any_of(actions.begin(), actions.end(), [](const auto& a) {
            return std::holds_alternative<core::Event>(a);
          }));
      if (!metadata_written && !metadata_failed_) {
        // DRBD detaches a disk whose metadata cannot be written (a meta-data I/O error is a
        // disk error, on-io-error detach). The disk I/O of this batch would act on a state
        // the superblock does not record: it fails instead (execute_disk).
        metadata_failed_ = true;
        log("detaching the disk: its metadata cannot be written (on-io-error detach)");
        node_.on_local_disk_failed(now());
      }
      for (core::Action& action : actions) execute(action);
      actions.clear();
      action_buffer_ = std::move(actions);
    }
    // An input may have decided a promotion that NBD commands wait for.
    if (!held_for_promotion_.empty() && !node_.promotion_pending()) resolve_held_ios();
  } while (node_.has_actions());
  write_detached_metadata(false);  // after a detach, once the local I/O is done
  pumping_ = false;
}

void ResourceRunner::execute(core::Action& action) {
  std::visit(
      Overloaded{
          [&](const core::Send& send) {
            std::span<const std::uint8_t> payload;
            if (const auto* data = std::get_if<wire::Data>(&send.message)) {
              DITTO_ASSERT(send.payload.has_value());
              payload = slot_buffer(*send.payload, data->length_bytes);
            }
            if (!transport_->send(send.peer, send.message, payload) &&
                transport_->is_connected(send.peer)) {
              // The peer cannot keep up: dropping the connection is safe (the core counts
              // the peer's writes as not done), silently skipping a message is not.
              transport_->disconnect(send.peer, "send queue full");
            }
          },
          [&](const core::CompleteClient& done) {
            if (auto read = read_destinations_.find(done.request.value);
                read != read_destinations_.end()) {
              // A read a peer served: its data goes into the NBD buffer.
              if (done.read_payload) {
                const auto [slot, length_bytes] = read->second;
                const std::span<std::uint8_t> source =
                    slot_buffer(*done.read_payload, length_bytes);
                std::memcpy(slot_buffer(PayloadHandle{slot}, length_bytes).data(), source.data(),
                            length_bytes);
              }
              read_destinations_.erase(read);
            }
            auto found = client_done_.find(done.request.value);
            DITTO_ASSERT(found != client_done_.end());
            auto callback = std::move(found->second);
            client_done_.erase(found);
            callback(nbd_error_of(done.status));
          },
          [&](const core::ReleasePayload& release) { unreference(release.payload.value); },
          [&](const core::Disconnect& disconnect) { execute_disconnect(disconnect); },
          [&](const core::Event& event) {
            log(event.line);
            if (event_sink_) event_sink_(event.line);
          },
          [&](const core::ArmTimer& arm) { arm_timer(arm); },
          [&](const core::CancelTimer& cancel) {
            if (auto found = timers_.find(cancel.timer.value); found != timers_.end()) {
              found->second->cancel();
            }
          },
          [&](const core::CallHelper& helper) { run_helper(helper); },
          [&](const core::CheckDiskSize&) { check_disk_size(); },
          [&](const auto& disk_action) { execute_disk(disk_action); },
      },
      action);
}

// Core timers (two-phase-commit timeouts and retries): one steady_timer per TimerId; re-arming
// moves the deadline (expires_at cancels the earlier wait).
void ResourceRunner::arm_timer(const core::ArmTimer& arm) {
  std::unique_ptr<boost::asio::steady_timer>& timer = timers_[arm.timer.value];
  if (!timer) timer = std::make_unique<boost::asio::steady_timer>(io_);
  timer->expires_at(epoch_ + std::chrono::nanoseconds(arm.deadline.ns));
  timer->async_wait([this, id = arm.timer](boost::system::error_code error) {
    if (error || stopped_) return;  // cancelled or moved: `this` may be gone, touch nothing
    node_.on_timer(now(), id);
    pump();
  });
}

void ResourceRunner::execute_disk(const core::Action& action) {
  if (metadata_failed_ || !disk_) {
    // The disk is being detached (its metadata failed): nothing reaches it any more. A
    // diskless client has none (the core sends it no disk I/O; were it to, it fails).
    if (!disk_) log("a disk request on a diskless client fails");
    std::visit(Overloaded{[&](const core::DiskWrite& write) { fail_disk_io_later(write.io); },
                          [&](const core::DiskRead& read) { fail_disk_io_later(read.io); },
                          [&](const core::DiskFlush& flush) { fail_disk_io_later(flush.io); },
                          [](const auto&) { DITTO_ASSERT(false); }},
               action);
    return;
  }
  Status status;
  IoId io;
  if (const auto* write = std::get_if<core::DiskWrite>(&action)) {
    io = write->io;
    status = disk_->submit_write(io.value, write->sector.bytes(),
                                 slot_buffer(write->payload, write->length_bytes), write->fua);
  } else if (const auto* read = std::get_if<core::DiskRead>(&action)) {
    io = read->io;
    if (read->digest) {
      std::span<std::uint8_t> buffer = pool_.allocate(read->length_bytes);
      if (buffer.empty()) return defer_read(*read);  // the pool is busy: retried later
      buffer = buffer.subspan(0, read->length_bytes);
      digest_reads_[io.value] = buffer;
      status = disk_->submit_read(io.value, read->sector.bytes(), buffer);
    } else if (read->allocate_payload) {
      // A resync read: the buffer becomes the payload of the reply the core sends.
      std::span<std::uint8_t> buffer = pool_.allocate(read->length_bytes);
      if (buffer.empty()) return defer_read(*read);  // the pool is busy: retried later
      const std::uint64_t handle = allocate_slot(buffer, 1);  // released by the core
      payload_reads_[io.value] = handle;
      status = disk_->submit_read(io.value, read->sector.bytes(),
                                  slot_buffer(PayloadHandle{handle}, read->length_bytes));
    } else {
      DITTO_ASSERT(read->buffer.has_value());  // every other read comes from an NBD buffer
      status = disk_->submit_read(io.value, read->sector.bytes(),
                                  slot_buffer(*read->buffer, read->length_bytes));
    }
  } else if (const auto* flush = std::get_if<core::DiskFlush>(&action)) {
    io = flush->io;
    status = disk_->submit_flush(io.value);
  } else if (const auto* metadata = std::get_if<core::MetadataWrite>(&action)) {
    return execute_metadata_write(*metadata);
  } else {
    DITTO_ASSERT(false);
  }
  if (!status.ok()) {
    log("disk request failed to start: " + status.error().message);
    fail_disk_io_later(io);
  }
}

// A resync or verify read that found the buffer pool busy (every block in use by I/O in
// flight, here or in another resource of the shard) is not an I/O error: it waits, in order,
// and is started again once buffers may have come back. The core sees a slower disk.
void ResourceRunner::defer_read(const core::DiskRead& read) {
  if (deferred_reads_.empty()) {
    log("buffer pool busy: a " + std::to_string(read.length_bytes / 1024) +
        " KiB resync or verify read waits for a buffer");
  }
  deferred_reads_.push_back(read);
  if (deferred_retry_armed_) return;
  deferred_retry_armed_ = true;
  deferred_retry_timer_.expires_after(deferred_retry_interval);
  deferred_retry_timer_.async_wait([this](boost::system::error_code error) {
    if (error || stopped_) return;  // cancelled by stop(): `this` may be gone
    deferred_retry_armed_ = false;
    retry_deferred_reads();
  });
}

void ResourceRunner::retry_deferred_reads() {
  std::deque<core::DiskRead> waiting;
  waiting.swap(deferred_reads_);
  while (!waiting.empty()) {
    if (!deferred_reads_.empty()) {
      // The pool is busy again: keep the order, wait for the next retry.
      deferred_reads_.insert(deferred_reads_.end(), waiting.begin(), waiting.end());
      break;
    }
    const core::Action action = waiting.front();
    waiting.pop_front();
    execute_disk(action);
  }
}

void ResourceRunner::release_digest_read(std::uint64_t io) {
  auto read = digest_reads_.find(io);
  if (read == digest_reads_.end()) return;
  pool_.release(read->second);
  digest_reads_.erase(read);
}

// A request the disk refused never completes by itself; report it as an I/O error on the next
// loop turn (inputs never re-enter the core).
void ResourceRunner::fail_disk_io_later(IoId io) {
  failed_ios_.push_back(io);
  boost::asio::post(io_, [this] {
    while (!failed_ios_.empty()) {
      const IoId failed = failed_ios_.front();
      failed_ios_.pop_front();
      if (auto read = payload_reads_.find(failed.value); read != payload_reads_.end()) {
        unreference(read->second);
        payload_reads_.erase(read);
      }
      release_digest_read(failed.value);
      node_.on_disk_completed(now(), failed, core::IoStatus::io_error);
    }
    pump();
  });
}

void ResourceRunner::on_disk_completion(std::uint64_t cookie, int result) {
  if (stopped_) return;
  if (result < 0) {
    log("disk I/O error on " + config_.disk_path + ": " + std::strerror(-result));
  }
  PayloadHandle payload{};
  if (auto read = payload_reads_.find(cookie); read != payload_reads_.end()) {
    // On success the core owns the buffer; on an error we free it (DiskRead's contract).
    if (result == 0) {
      payload = PayloadHandle{read->second};
    } else {
      unreference(read->second);
    }
    payload_reads_.erase(read);
  }
  std::uint64_t digest = 0;
  if (auto read = digest_reads_.find(cookie); read != digest_reads_.end()) {
    if (result == 0) digest = crc32c(read->second);  // verify-alg crc32c
    release_digest_read(cookie);
  }
  node_.on_disk_completed(now(), IoId{cookie},
                          result == 0 ? core::IoStatus::ok : core::IoStatus::io_error, payload,
                          digest);
  pump();
}

// ---- Transport --------------------------------------------------------------------------------

void ResourceRunner::on_peer_connected(NodeId peer) {
  log("peer " + std::to_string(peer.value) + " connected");
  node_.on_connection_up(now(), peer);
  pump();
}

void ResourceRunner::on_peer_disconnected(NodeId peer, std::string_view reason) {
  log("peer " + std::to_string(peer.value) + " disconnected: " + std::string(reason));
  node_.on_connection_down(now(), peer);
  pump();
}

void ResourceRunner::on_peer_message(NodeId peer, const wire::Message& message,
                                     std::span<const std::uint8_t> payload) {
  ko_watch_[peer.value].messages += 1;
  PayloadHandle handle{};
  if (const auto* data = std::get_if<wire::Data>(&message)) {
    if (payload.size() != data->length_bytes) {
      transport_->disconnect(peer, "protocol error: Data payload of " +
                                       std::to_string(payload.size()) + " bytes, header says " +
                                       std::to_string(data->length_bytes));
      return;
    }
    std::span<std::uint8_t> buffer = pool_.allocate(payload.size());
    if (buffer.empty()) {
      transport_->disconnect(peer, "out of buffers for replicated writes");
      return;
    }
    std::memcpy(buffer.data(), payload.data(), payload.size());
    handle = PayloadHandle{allocate_slot(buffer, 1)};  // released by the core
  }
  node_.on_message(now(), peer, message, handle);
  pump();
}

}  // namespace ditto::datapath
