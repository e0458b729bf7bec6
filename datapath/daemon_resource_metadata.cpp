// ResourceRunner and the DRBD v09 metadata of its disk: checked in create(), marked in use by
// start() before any data I/O, written through whenever the core's generations or the flags
// derived from its state change (before the actions that follow the change run), and written
// back by a clean stop() (metadata_store.h has the rules).
#include <algorithm>
#include <string>
#include <vector>

#include "core/activity_log.h"
#include "core/assert.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

Result<AttachPlan> ResourceRunner::check_metadata(const DaemonConfig& config,
                                                  MetadataStore& metadata) {
  const std::string where = config.resource.name + ": " + config.disk_path + ": ";
  auto activity_log = metadata.read_activity_log();
  if (!activity_log.ok()) return Error{config.resource.name + ": " + activity_log.error().message};
  std::vector<NodeId> peers;
  for (const core::PeerConfig& peer : config.node.peers) peers.push_back(peer.node_id);
  auto plan = plan_attach(metadata.superblock(), metadata.layout(), activity_log.value(),
                          config.self.node_id, peers);
  if (!plan.ok()) return Error{where + plan.error().message};
  return plan;
}

Status ResourceRunner::attach_metadata() {
  DITTO_ASSERT(!metadata_attached_);
  if (!attach_.note.empty()) log(config_.disk_path + ": " + attach_.note);
  if (attach_.initialize_activity_log) {
    if (Status status = metadata_->initialize_activity_log(); !status.ok()) {
      return Error{config_.resource.name + ": " + status.error().message};
    }
  }
  if (Status status = metadata_->write_superblock(attach_.superblock); !status.ok()) {
    return Error{config_.resource.name + ": " + status.error().message};
  }
  metadata_attached_ = true;
  log(config_.disk_path + ": " + attach_.disk_reason +
      (crashed_primary_ ? "; CRASHED_PRIMARY (left Primary without a clean shutdown)" : ""));
  // The flags of the state the core starts in.
  if (!write_metadata_if_changed(true)) {
    return Error{config_.resource.name + ": " + config_.disk_path +
                 ": cannot write the metadata at attach"};
  }
  return Status::success();
}

// The core's activity log and persisted bitmaps (NodeConfig::al_updates): the ring geometry
// and bitmap slots of this device, the bitmaps attach trusts, and apply-al's hot extents.
Status ResourceRunner::configure_activity_log(DaemonConfig& config, MetadataStore& metadata,
                                              AttachPlan& attach) {
  core::NodeConfig& node = config.node;
  metadata::Superblock& superblock = attach.superblock;
  node.al_updates = true;
  node.al_stripes = superblock.al_stripes;
  node.al_stripe_size_4k = superblock.al_stripe_size_4k;
  // DRBD's drbd_al_extents_max: the ring of transactions (919 slot numbers each) must name
  // every slot twice, so that the newest transactions always say which extents are hot.
  const std::uint64_t al_extents_max =
      std::min<std::uint64_t>(ActivityLog::al_extents_max,
                              std::uint64_t{superblock.al_stripes} * superblock.al_stripe_size_4k *
                                  metadata::al_context_per_transaction / 2);
  if (node.al_extents > al_extents_max) {
    attach.note += std::string(attach.note.empty() ? "" : "; ") + "al-extents " +
                   std::to_string(node.al_extents) + " lowered to " +
                   std::to_string(al_extents_max) + ", what its activity log of " +
                   std::to_string(superblock.al_stripes * superblock.al_stripe_size_4k * 4) +
                   " KiB holds";
    node.al_extents = static_cast<std::uint32_t>(al_extents_max);
  }
  superblock.al_extents = node.al_extents;
  node.al_first_transaction_number = attach.al_next_transaction;
  node.bitmap_max_peers = superblock.max_peers;
  node.initial_hot_extents = attach.hot_extents;
  for (const core::PeerConfig& peer : node.peers) {
    const std::int32_t slot = superblock.peers[peer.node_id.value].bitmap_index;
    DITTO_ASSERT(slot >= 0 && static_cast<std::uint32_t>(slot) < superblock.max_peers);
    node.bitmap_slots[peer.node_id.value] = static_cast<std::uint32_t>(slot);
    if ((attach.trusted_bitmaps & (1u << peer.node_id.value)) == 0) continue;
    auto words = metadata.read_bitmap_slot(static_cast<std::uint32_t>(slot));
    if (!words.ok()) return words.error();
    node.initial_bitmap_words[peer.node_id.value] = std::move(words).value();
  }
  return Status::success();
}

// Synchronous pwrite + fdatasync on the shard's thread (a transaction per newly hot extent, a
// page per evicted one): simple, and the core already waits for it. The completion is an input
// on the next loop turn (inputs never re-enter the core).
void ResourceRunner::execute_metadata_write(const core::MetadataWrite& write) {
  const Status status = write.area == core::MetadataArea::activity_log
                            ? metadata_->write_activity_log_block(write.block, write.bytes)
                            : metadata_->write_bitmap_page(write.block, write.bytes);
  if (!status.ok()) log("metadata write failed: " + status.error().message);
  metadata_completions_.emplace_back(write.io,
                                     status.ok() ? core::IoStatus::ok : core::IoStatus::io_error);
  if (metadata_completions_.size() > 1) return;  // a post is already pending
  boost::asio::post(io_, [this] {
    if (stopped_) return;
    while (!metadata_completions_.empty()) {
      const auto [io, result] = metadata_completions_.front();
      metadata_completions_.pop_front();
      node_.on_disk_completed(now(), io, result);
    }
    pump();
  });
}

// A resize asked for the backing size. A device that grew gets its metadata moved to its new end
// first (MetadataStore::move_to_device_end: the old copy stays complete until the new one is);
// metadata writes are synchronous on this thread, so none is in flight meanwhile. The answer is
// the next input, as every completion is. A move that fails leaves the old size: the node then
// votes no (its disk did not grow) and the log says why.
void ResourceRunner::check_disk_size() {
  std::uint64_t usable_bytes = node_.config().volume_size_bytes;
  if (metadata_ && metadata_attached_ && !detached_disk_) {
    const Result<std::uint64_t> device_bytes = metadata_->current_device_bytes();
    if (!device_bytes.ok()) {
      log("resize: " + device_bytes.error().message);
    } else if (device_bytes.value() > metadata_->layout().device_bytes) {
      const Result<std::uint64_t> moved = metadata_->move_to_device_end();
      if (moved.ok()) {
        usable_bytes = moved.value();
        disk_->grow_to(metadata_->layout().device_bytes);
        log("resize: " + config_.disk_path + " grew to " +
            std::to_string(metadata_->layout().device_bytes) + " bytes; metadata moved to its end, " +
            "data area " + std::to_string(usable_bytes) + " bytes");
      } else {
        log("resize: " + moved.error().message);
      }
    }
  }
  boost::asio::post(io_, [this, usable_bytes] {
    if (stopped_) return;
    node_.on_disk_size(now(), usable_bytes);
    pump();
  });
}

// A clean stop writes every bitmap (the on-disk bitmap is then complete: no PEER_FULL_SYNC).
void ResourceRunner::write_back_bitmaps() {
  bitmaps_written_ = false;
  for (const core::PeerConfig& peer : config_.node.peers) {
    const auto slot = config_.node.bitmap_slots.find(peer.node_id.value);
    if (slot == config_.node.bitmap_slots.end()) return;
    std::vector<std::uint32_t> words = node_.bitmap_toward(peer.node_id).export_words();
    words.resize(metadata_->bitmap_words_per_slot(), 0);
    if (Status status = metadata_->write_bitmap_slot(slot->second, words); !status.ok()) {
      log("clean shutdown could not write the bitmap: " + status.error().message);
      return;
    }
  }
  bitmaps_written_ = true;
}

MetadataState ResourceRunner::metadata_state(bool clean) const {
  MetadataState state;
  state.disk = node_.disk_state();
  state.primary_known = node_.role() == Role::primary;
  for (const core::PeerStatus& peer : node_.peers()) {
    if (peer.connection == ConnectionState::connected && peer.role == Role::primary) {
      state.primary_known = true;
    }
    // Bitmaps the clean shutdown could not write: PEER_FULL_SYNC records which had bits.
    if (clean && !bitmaps_written_ && peer.out_of_sync_bytes > 0) {
      state.full_sync_peers |= 1u << peer.node_id.value;
    }
  }
  state.crashed_primary = crashed_primary_;
  state.clean = clean;
  return state;
}

// DRBD writes the metadata synchronously on every UUID change and on every change of the flags
// derived from the state, before it acts on the change (§3.2, §4.3). pump() calls this after
// taking the actions of an input and before executing them: a write in a new generation, a
// resync write on a disk that just became Inconsistent, reach the disk only after the
// superblock that says so is durable.
// `state_changed`: the actions carry an Event (every state change emits one); otherwise only
// the generations can have changed, and comparing them is all a data I/O costs here.
bool ResourceRunner::write_metadata_if_changed(bool state_changed) {
  if (!metadata_attached_ || node_.disk_state() <= DiskState::failed) return true;
  if (!state_changed && node_.generations() == metadata_generations_ &&
      node_.unconfirmed_generation() == metadata_unconfirmed_) {
    return true;
  }
  metadata_generations_ = node_.generations();
  metadata_unconfirmed_ = node_.unconfirmed_generation();
  if (crashed_primary_ &&
      comparable_current(node_.generations().current) != crashed_generation_) {
    crashed_primary_ = false;  // the crashed generation is superseded (resync or new data)
  }
  metadata::Superblock wanted = superblock_for_state(
      with_generations(metadata_->superblock(), node_.generations(), metadata_unconfirmed_),
      metadata_state(false));
  // la-size-sect: the size the cluster last agreed on (a resize grows it).
  const std::uint64_t size_sectors = node_.size_bytes() / metadata::sector_bytes;
  if (size_sectors != 0 && size_sectors <= metadata_->layout().usable_sectors) {
    wanted.effective_size_sectors = size_sectors;
  }
  if (wanted == metadata_->superblock()) return true;
  if (Status status = metadata_->write_superblock(wanted); !status.ok()) {
    log("metadata write failed: " + status.error().message);
    return false;  // pump() detaches the disk
  }
  return true;
}

void ResourceRunner::write_clean_metadata() {
  if (!metadata_attached_) return;
  metadata_attached_ = false;
  const DiskState disk = node_.disk_state();
  if (disk <= DiskState::failed) {
    // Detached after an I/O error: the metadata stays marked in use, as after a crash.
    log(config_.disk_path + ": disk detached, metadata left marked in use");
    return;
  }
  write_back_bitmaps();  // before the superblock that says the shutdown was clean
  const Status status = metadata_->write_superblock(
      superblock_for_state(with_generations(metadata_->superblock(), node_.generations(),
                                            node_.unconfirmed_generation()),
                           metadata_state(true)));
  if (!status.ok()) {
    log("clean shutdown could not write the metadata: " + status.error().message);
    return;
  }
  log(config_.disk_path + ": metadata written back clean");
}

// dittoadm detach: the core detached the disk gracefully (Detaching → Diskless). The disk keeps
// the generations and the flags it had when it was detached (a diskless Primary's later
// generations are not this disk's data), written back as at a clean stop once the local I/O in
// flight has completed (pump() and stop() call write_detached_metadata).
void ResourceRunner::disk_detached(DiskState disk_before, const Generations& generations) {
  DITTO_ASSERT(!detached_disk_);
  detached_disk_ = DetachedDisk{disk_before, generations};
  log(config_.disk_path + ": detached (" + std::string(to_string(disk_before)) +
      "); no I/O reaches it any more");
  write_detached_metadata(false);
}

void ResourceRunner::write_detached_metadata(bool stopping) {
  if (!detached_disk_ || !metadata_attached_) return;
  if (!stopping && node_.statistics().lower_pending > 0) return;
  metadata_attached_ = false;
  write_back_bitmaps();  // before the superblock that says the shutdown was clean
  MetadataState state = metadata_state(true);
  state.disk = detached_disk_->disk;
  const Status status = metadata_->write_superblock(superblock_for_state(
      with_generations(metadata_->superblock(), detached_disk_->generations), state));
  if (!status.ok()) {
    log("detach could not write the metadata: " + status.error().message);
    return;
  }
  log(config_.disk_path + ": metadata written back clean after detach");
}

// Why dittoadm attach cannot start now, before the disk is touched (ok when it may). The core
// refuses an attached disk or a `disk none` client itself (core::Attach's refusals).
core::AdminResult ResourceRunner::attach_refusal() const {
  if (detached_disk_ && metadata_attached_) {
    return {false, "SS_IN_TRANSIENT_STATE",
            "attach: the detach is still writing back the metadata of " + config_.disk_path +
                " (local I/O in flight); try again"};
  }
  if (node_.statistics().lower_pending > 0) {
    return {false, "SS_IN_TRANSIENT_STATE",
            "attach: " + std::to_string(node_.statistics().lower_pending) +
                " requests to the detached disk are still in flight; try again"};
  }
  return {};
}

core::AdminResult ResourceRunner::attach_disk() {
  if (config_.diskless || node_.disk_state() > DiskState::diskless) {
    return admin(core::Attach{});  // the core's refusal, with its message
  }
  if (core::AdminResult refused = attach_refusal(); !refused.ok) return refused;
  const std::string where = config_.resource.name + ": ";
  auto disk = options_.shard_ring != nullptr
                  ? UringDisk::open(*options_.shard_ring, config_.disk_path)
                  : UringDisk::open(io_, config_.disk_path);
  if (!disk.ok()) {
    return {false, "ERR_OPEN_DISK",
            config_.disk_location.to_string() + ": cannot use disk '" + config_.disk_path +
                "': " + disk.error().message};
  }
  auto metadata = MetadataStore::open(config_.disk_path);
  if (!metadata.ok()) return {false, "ERR_MD_INVALID", where + metadata.error().message};
  if (metadata.value()->data_size_bytes() != node_.config().volume_size_bytes) {
    return {false, "ERR_DISK_SIZE",
            where + config_.disk_path + ": data area of " +
                std::to_string(metadata.value()->data_size_bytes()) +
                " bytes differs from the volume's " +
                std::to_string(node_.config().volume_size_bytes) + " bytes"};
  }
  DaemonConfig attached = config_;
  attached.node.initial_bitmap_words.clear();
  auto plan = check_metadata(attached, *metadata.value());
  if (!plan.ok()) return {false, "ERR_MD_INVALID", plan.error().message};
  if (Status status = configure_activity_log(attached, *metadata.value(), plan.value());
      !status.ok()) {
    return {false, "ERR_MD_INVALID", where + status.error().message};
  }
  const core::NodeConfig& running = node_.config();
  if (attached.node.al_stripes != running.al_stripes ||
      attached.node.al_stripe_size_4k != running.al_stripe_size_4k ||
      attached.node.al_extents != running.al_extents ||
      attached.node.bitmap_max_peers != running.bitmap_max_peers ||
      attached.node.bitmap_slots != running.bitmap_slots) {
    return {false, "ERR_MD_INVALID",
            where + config_.disk_path +
                ": the metadata's activity log or bitmap slots differ from the ones the resource "
                "started with (was it re-created?); take the resource down and up to use it"};
  }
  const core::Attach command{plan.value().initial_disk, plan.value().initial_generations,
                             attached.node.initial_bitmap_words, plan.value().hot_extents,
                             plan.value().al_next_transaction};
  const core::AdminResult result = node_.on_admin(now(), command);
  if (!result.ok) {
    pump();
    return result;
  }
  // The old descriptor (idle since the detach) goes; the core's first disk I/O is in the
  // actions pump() executes below, after the metadata says the disk is in use.
  if (disk_) disk_->shutdown();
  disk_ = std::move(disk).value();
  disk_->set_completion_handler(
      [this](std::uint64_t cookie, int status) { on_disk_completion(cookie, status); });
  metadata_ = std::move(metadata).value();
  attach_ = std::move(plan).value();
  detached_disk_.reset();
  metadata_attached_ = false;
  metadata_failed_ = false;
  bitmaps_written_ = false;
  crashed_primary_ = attach_.crashed_primary;
  crashed_generation_ = comparable_current(attach_.initial_generations.current);
  log(config_.disk_path + ": attaching again (" + attach_.disk_reason + ")");
  if (Status status = attach_metadata(); !status.ok()) {
    log(status.error().message + "; detaching it again");
    metadata_failed_ = true;
    node_.on_local_disk_failed(now());
  }
  pump();
  return result;
}

}  // namespace ditto::datapath
