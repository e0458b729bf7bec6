// Node: construction, client I/O on the Primary, epochs, completion, helpers and invariants.
// Peer messages are in node_peer.cpp, state changes and promotion in node_state.cpp.
#include "core/node.h"

#include <algorithm>
#include <utility>

#include "core/assert.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

const char* to_string(ClientStatus status) {
  switch (status) {
    case ClientStatus::ok:
      return "ok";
    case ClientStatus::io_error:
      return "io_error";
    case ClientStatus::not_primary:
      return "not_primary";
    case ClientStatus::no_data:
      return "no_data";
    case ClientStatus::out_of_range:
      return "out_of_range";
    case ClientStatus::busy:
      return "busy";
  }
  return "unknown";
}

Node::Node(NodeConfig config)
    : config_(std::move(config)), prng_(Prng::derive(config_.seed, config_.node_id.value)) {
  DITTO_ASSERT(config_.node_id.value <= node_id_max);
  DITTO_ASSERT(config_.volume_size_bytes % sector_size_bytes == 0);
  DITTO_ASSERT(config_.max_epoch_size >= 1 && config_.requests_in_flight_max >= 1);
  disk_state_ = config_.intentional_diskless ? DiskState::diskless : config_.initial_disk_state;
  restarted_behind_ = !config_.intentional_diskless && disk_state_ != DiskState::up_to_date;
  after_primary_crash_ = !config_.initial_hot_extents.empty();
  // 0 and 1 (the old default) read as "just created"; store them as DRBD does (4).
  generations_.uuids.current =
      comparable_current(config_.initial_generation) == uuid_just_created_value
          ? uuid_just_created_value
          : config_.initial_generation;
  if (config_.initial_generations) {
    generations_.uuids = *config_.initial_generations;
    if (comparable_current(generations_.uuids.current) == uuid_just_created_value) {
      generations_.uuids.current = uuid_just_created_value;
    }
  }
  roll_back_unconfirmed_generation();
  size_bytes_ = config_.volume_size_bytes;
  const std::uint64_t volume_sectors = size_bytes_ / sector_size_bytes;
  for (const PeerConfig& peer_config : config_.peers) {
    DITTO_ASSERT(peer_config.node_id.value <= node_id_max);
    DITTO_ASSERT(peer_config.node_id != config_.node_id);
    Peer& peer = peers_[peer_config.node_id.value];
    DITTO_ASSERT(!peer.configured);
    peer.configured = true;
    peer.status.node_id = peer_config.node_id;
    peer.status.name = peer_config.name;
    peer.bitmap.emplace(volume_sectors);
    configured_ids_[configured_count_++] = static_cast<std::uint8_t>(peer_config.node_id.value);
  }
  std::sort(configured_ids_.begin(), configured_ids_.begin() + configured_count_);
  apply_initial_metadata();  // persisted bitmaps, apply-al, the activity log
  // A node starts alone: with quorum on, it has none until enough peers connect.
  have_quorum_ = !config_.quorum.enabled();
  quorum_outcome_ = compute_quorum(quorum_input());
  have_quorum_ = quorum_outcome_.have_quorum;
  invariants();
}

// ---- Client I/O -------------------------------------------------------------------------------

std::uint32_t Node::client_requests() const {
  return static_cast<std::uint32_t>(requests_.size() + held_writes_.size() + al_waiting_.size() +
                                    quorum_suspended_writes_.size() +
                                    quorum_suspended_completions_.size() +
                                    writes_behind_peer_writes_.size());
}

std::optional<ClientStatus> Node::write_refusal(Sector sector, std::uint32_t length_bytes) const {
  if (!in_range(sector, length_bytes)) return ClientStatus::out_of_range;
  if (client_requests() >= config_.requests_in_flight_max) return ClientStatus::busy;
  for (const Peer& peer : configured_peers()) {
    // A peer that falls behind acknowledging barriers holds our epochs: stop before the
    // record of them grows without bound.
    if (peer_replicating(peer) &&
        peer.writes_awaiting_barrier_ack >= config_.requests_in_flight_max) {
      return ClientStatus::busy;
    }
  }
  return std::nullopt;
}

void Node::on_client_write(Instant now, RequestId request, Sector sector,
                           std::uint32_t length_bytes, PayloadHandle payload, WriteFlags flags) {
  note_application_io(now);
  auto refuse = [&](ClientStatus status) {
    actions_.push_back(CompleteClient{request, status, std::nullopt, std::nullopt});
    actions_.push_back(ReleasePayload{payload});
  };
  if (role_ != Role::primary && !promotion_) return refuse(ClientStatus::not_primary), invariants();
  if (auto refusal = write_refusal(sector, length_bytes)) return refuse(*refusal), invariants();
  // A congested peer goes Ahead, or is dropped, before this write (node_congestion.cpp).
  if (role_ == Role::primary) check_congestion(now);
  // A Primary without quorum (§8.2): io-error fails the write, suspend-io freezes it; so does
  // fencing with resource-and-stonith until fence-peer succeeds (§7).
  if (role_ == Role::primary && (!have_quorum_ || fencing_suspended_ || lost_peer_pending())) {
    if (!quorum_suspends_io()) return refuse(ClientStatus::io_error), invariants();
    suspend_write_for_quorum(request, sector, length_bytes, payload, flags);
    return invariants();
  }
  if (role_ != Role::primary) {
    held_writes_.push_back(HeldWrite{request, sector, length_bytes, payload, flags});
    statistics_.upper_pending += 1;
    return invariants();
  }
  admit_write(request, sector, length_bytes, payload, flags);
  invariants();
}

// A write to the local disk first waits for its activity-log extents (node_activity_log.cpp).
void Node::admit_write(RequestId request, Sector sector, std::uint32_t length_bytes,
                       PayloadHandle payload, WriteFlags flags) {
  DITTO_ASSERT(role_ == Role::primary);
  if (!activity_log_active() && al_waiting_.empty()) {
    return admit_write_now(request, sector, length_bytes, payload, flags, false);
  }
  admit_through_activity_log(HeldWrite{request, sector, length_bytes, payload, flags});
}

void Node::admit_write_now(RequestId request, Sector sector, std::uint32_t length_bytes,
                           PayloadHandle payload, WriteFlags flags, bool al_referenced) {
  DITTO_ASSERT(role_ == Role::primary);
  DITTO_ASSERT(!al_referenced || activity_log_active());
  if (config_.allow_two_primaries &&
      hold_behind_peer_writes({request, sector, length_bytes, payload, flags}, al_referenced)) {
    return;
  }
  // A Primary whose disk detached, or was attached again and is not UpToDate yet (node_attach.cpp),
  // writes through its peers; without an UpToDate one among them there is no good copy to add the
  // write to (an Inconsistent SyncTarget of another node gets the write too, but cannot vouch for
  // it).
  const bool writes_locally = disk_state_ == DiskState::up_to_date;
  if (!writes_locally && (replication_targets_mask() & up_to_date_nodes_mask()) == 0) {
    actions_.push_back(CompleteClient{request, ClientStatus::io_error, std::nullopt, std::nullopt});
    actions_.push_back(ReleasePayload{payload});
    return;
  }
  // Peers that will not get this write: their bitmaps record it, and the first such write
  // after promotion or after losing a peer starts a new data generation (§3.2, lazily).
  if (nodes_without_data() != 0) request_new_current_uuid(generations_);
  bump_generation_if_pending();
  mark_out_of_sync_for_absent(sector, length_bytes, config_.node_id);
  if (!writes_locally && !local_disk_detached()) mark_for_resync_sources(sector, length_bytes);
  const std::uint64_t sequence = next_sequence_++;
  Request& entry = requests_[sequence];
  entry.kind = RequestKind::write;
  entry.client = request;
  entry.sector = sector;
  entry.length_bytes = length_bytes;
  entry.payload = payload;
  entry.epoch = current_epoch_;
  if (writes_locally) {
    entry.local_pending = true;
    entry.io = next_io();
    requests_by_io_[entry.io->value] = sequence;
    actions_.push_back(DiskWrite{*entry.io, sector, length_bytes, payload, flags.fua});
  }

  entry.fua = flags.fua;
  const std::uint32_t flags_wire = data_flags(entry);
  std::uint32_t peers_sent = 0;
  for (Peer& peer : configured_peers()) {
    if (peer.status.replication == ReplicationState::ahead) {
      send_out_of_sync(peer, sector, length_bytes);
    }
    if (!peer_replicating(peer)) continue;
    send_data(peer, sequence, entry, flags_wire);
    peers_sent += 1;
  }
  if (al_referenced) hold_extents(sequence, peers_sent);
  DITTO_ASSERT(entry.local_pending || entry.peers_pending_mask != 0 || entry.peers_ok_mask != 0);
  statistics_.written_bytes += length_bytes;
  statistics_.upper_pending += 1;
  current_epoch_writes_ += 1;
  const bool done = !entry.local_pending && entry.peers_pending_mask == 0;
  if (current_epoch_writes_ >= config_.max_epoch_size) close_epoch();
  if (done) maybe_complete(sequence);  // protocol A through peers only: already stored
}

// The Data flags of a client write: FUA as the client asked, and the ack the protocol waits for.
std::uint32_t Node::data_flags(const Request& entry) const {
  std::uint32_t flags = entry.fua ? wire::data_flag_fua : 0u;
  if (config_.protocol == Protocol::b) flags |= wire::data_flag_send_receive_ack;
  if (config_.protocol == Protocol::c) flags |= wire::data_flag_send_write_ack;
  return flags;
}

void Node::send_data(Peer& peer, std::uint64_t sequence, Request& entry, std::uint32_t flags) {
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  DITTO_ASSERT((entry.peers_pending_mask & peer_bit) == 0);
  actions_.push_back(Send{peer.status.node_id,
                          wire::Data{sequence, entry.sector, entry.length_bytes, flags},
                          entry.payload});
  peer.status.sent_bytes += entry.length_bytes;
  peer.status.in_flight_bytes += entry.length_bytes;
  peer.unconfirmed_writes.push_back(WriteRange{entry.sector, entry.length_bytes, sequence});
  peer.epoch_writes_sent += 1;
  peer.writes_awaiting_barrier_ack += 1;
  if (config_.protocol == Protocol::a) {
    // Protocol A: handed to the driver is as far as we wait (§2.1 step 5).
    entry.peers_ok_mask |= peer_bit;
    if (peer.status.disk == DiskState::up_to_date) entry.peers_up_to_date_ok_mask |= peer_bit;
    return;
  }
  entry.peers_pending_mask |= peer_bit;
  peer.status.pending_writes += 1;
}

// Starts a new epoch; every connection that carried writes of the old one gets its Barrier.
void Node::close_epoch() {
  PeerAckEpoch record;
  for (Peer& peer : configured_peers()) {
    if (peer.epoch_writes_sent == 0) continue;
    DITTO_ASSERT(peer.status.connection == ConnectionState::connected);
    actions_.push_back(Send{peer.status.node_id, wire::Barrier{current_epoch_}, std::nullopt});
    peer.epochs_awaiting_ack.push_back(SentEpoch{current_epoch_, peer.epoch_writes_sent});
    record.sent_mask |= bit(peer.status.node_id);
    if (peer.epoch_writes_sent != current_epoch_writes_) {
      record.partial_mask |= bit(peer.status.node_id);  // it missed some of the epoch
    }
    peer.epoch_writes_sent = 0;
  }
  if (record.sent_mask != 0) peer_ack_epochs_[current_epoch_] = record;
  current_epoch_ += 1;
  current_epoch_writes_ = 0;
}

void Node::release_held_writes(bool promoted) {
  std::deque<HeldWrite> held;
  held.swap(held_writes_);
  DITTO_ASSERT(statistics_.upper_pending >= held.size());
  statistics_.upper_pending -= static_cast<std::uint32_t>(held.size());
  for (const HeldWrite& write : held) {
    if (promoted) {
      admit_write(write.request, write.sector, write.length_bytes, write.payload, write.flags);
      continue;
    }
    actions_.push_back(
        CompleteClient{write.request, ClientStatus::not_primary, std::nullopt, std::nullopt});
    actions_.push_back(ReleasePayload{write.payload});
  }
}

void Node::on_client_flush(Instant now, RequestId request) {
  (void)now;
  if (client_requests() >= config_.requests_in_flight_max) {
    actions_.push_back(CompleteClient{request, ClientStatus::busy, std::nullopt, std::nullopt});
    return invariants();
  }
  // The flush must be ordered behind every write before it: close their epoch first (§2.2).
  if (current_epoch_writes_ > 0) close_epoch();
  const std::uint64_t sequence = next_sequence_++;
  Request& entry = requests_[sequence];
  entry.kind = RequestKind::flush;
  entry.client = request;
  if (disk_state_ == DiskState::up_to_date) {
    entry.local_pending = true;
    entry.io = next_io();
    requests_by_io_[entry.io->value] = sequence;
    actions_.push_back(DiskFlush{*entry.io});
  }
  for (Peer& peer : configured_peers()) {
    if (!peer_replicating(peer)) continue;
    entry.peers_pending_mask |= bit(peer.status.node_id);
    actions_.push_back(Send{peer.status.node_id, wire::FlushRequest{sequence}, std::nullopt});
  }
  statistics_.upper_pending += 1;
  maybe_complete(sequence);
  invariants();
}

bool Node::in_range(Sector sector, std::uint32_t length_bytes) const {
  if (length_bytes == 0 || length_bytes % sector_size_bytes != 0) return false;
  if (length_bytes > wire::payload_size_max_bytes) return false;
  const std::uint64_t size_sectors = size_bytes_ / sector_size_bytes;
  const std::uint64_t length_sectors = length_bytes / sector_size_bytes;
  return sector.value <= size_sectors && length_sectors <= size_sectors - sector.value;
}

// ---- Completion -------------------------------------------------------------------------------

void Node::on_disk_completed(Instant now, IoId io, IoStatus status, PayloadHandle payload,
                             std::uint64_t digest) {
  latest_input_ = std::max(latest_input_, now);
  if (on_metadata_completed(io, status)) return invariants();
  if (on_resync_io_completed(io, status, payload)) return invariants();
  if (on_checksum_io_completed(io, status, digest)) return invariants();
  if (on_verify_io_completed(io, status, digest)) return invariants();
  if (on_served_read_completed(io, status, payload)) return invariants();
  if (auto peer_io = peer_ios_.find(io.value); peer_io != peer_ios_.end()) {
    const PeerIo entry = peer_io->second;
    peer_ios_.erase(peer_io);
    on_peer_io_completed(entry, status);
    return invariants();
  }
  auto found = requests_by_io_.find(io.value);
  DITTO_ASSERT(found != requests_by_io_.end());  // the driver only completes what we issued
  const std::uint64_t sequence = found->second;
  requests_by_io_.erase(found);
  Request& entry = requests_.at(sequence);
  DITTO_ASSERT(entry.local_pending);
  entry.local_pending = false;
  entry.local_ok = status == IoStatus::ok;
  // on-io-error detach (DRBD's default): a failed local read, write or flush detaches the disk;
  // a write still succeeds if a peer stored it.
  if (status != IoStatus::ok && !local_disk_detached()) detach_local_disk();
  if (requests_.count(sequence) == 1) maybe_complete(sequence);
  retry_deferred_reads();  // a resync read may have waited for this write
  pump_activity_log();     // a write finished: its extents may be free for waiting ones
  invariants();
}

void Node::maybe_complete(std::uint64_t sequence) {
  const Request& entry = requests_.at(sequence);
  if (entry.local_pending || entry.peers_pending_mask != 0) return;
  if (entry.kind == RequestKind::read) {
    // Failed local reads are retried on a peer (§9).
    if (!entry.local_ok) return place_read(sequence);
    return complete(sequence, ClientStatus::ok);
  }
  // DRBD reports success when at least one of {local, any peer} stored the data (§2.1 step 5).
  const bool any_ok = entry.local_ok || entry.peers_ok_mask != 0;
  complete(sequence, any_ok ? ClientStatus::ok : ClientStatus::io_error);
}

void Node::complete(std::uint64_t sequence, ClientStatus status) {
  auto found = requests_.find(sequence);
  DITTO_ASSERT(found != requests_.end());
  const Request entry = found->second;
  requests_.erase(found);
  // Once a client saw a write of the unconfirmed generation complete, or read a block such a
  // write may have changed, the generation holds data a client relies on (confirmed before the
  // completion leaves this step: the drivers persist the metadata before they act).
  if (status == ClientStatus::ok && !unconfirmed_steps_.empty()) {
    confirm_through(entry.kind == RequestKind::write  ? sequence
                    : entry.kind == RequestKind::read ? unconfirmed_write_under(entry)
                                                      : 0);
  }
  if (entry.kind == RequestKind::write) settle_write(sequence);
  DITTO_ASSERT(statistics_.upper_pending > 0);
  std::optional<IoId> read_io;
  std::optional<PayloadHandle> read_payload;
  if (entry.kind == RequestKind::read && status == ClientStatus::ok) {
    if (entry.payload) {
      read_payload = entry.payload;  // a peer served it
    } else {
      read_io = entry.io;
    }
  }
  // A write that completes while the Primary has no quorum may never reach a quorum: it fails
  // (io-error) or its completion waits (suspend-io) for quorum or demotion (node_quorum.cpp).
  const bool quorum_lost = entry.kind == RequestKind::write && status == ClientStatus::ok &&
                           role_ == Role::primary &&
                           (!have_quorum_ || fencing_suspended_ || lost_peer_pending());
  if (quorum_lost && hold_completion_for_quorum(sequence, entry)) {
    // Still counted in upper_pending (client_requests() includes it).
  } else {
    if (quorum_lost) status = ClientStatus::io_error;
    statistics_.upper_pending -= 1;
    actions_.push_back(CompleteClient{entry.client, status, read_io, read_payload});
    if (entry.payload) actions_.push_back(ReleasePayload{*entry.payload});
  }
  // A write completed while its epoch is still current: whatever the client submits after
  // seeing this completion must land in a later epoch (§2.2).
  if (entry.kind == RequestKind::write && entry.epoch == current_epoch_) close_epoch();
}

// ---- Helpers ----------------------------------------------------------------------------------

Node::Peer& Node::peer_ref(NodeId peer) {
  DITTO_ASSERT(peer.value <= node_id_max);
  Peer& entry = peers_[peer.value];
  DITTO_ASSERT(entry.configured);  // transports only report configured peers
  return entry;
}

// A local disk that is UpToDate, or none at all (detached after an I/O error: the peers carry
// the data alone). An Outdated or Inconsistent local disk never replicates.
// A SyncTarget (and one waiting for the bitmap) gets application writes too (§5.1).
bool Node::peer_replicating(const Peer& peer) const {
  if (!peer.configured || peer.status.connection != ConnectionState::connected ||
      !peer.state_received) {
    return false;
  }
  // A Primary whose disk is detached, or attached again and not consistent yet (Attaching,
  // Negotiating, Inconsistent while it resyncs: node_attach.cpp), writes through its UpToDate
  // peers only.
  const bool through_peers = local_disk_detached() ||
                             (role_ == Role::primary && disk_state_ <= DiskState::inconsistent);
  if (disk_state_ != DiskState::up_to_date && !through_peers) return false;
  switch (peer.status.replication) {
    case ReplicationState::established:
      return peer.status.disk == DiskState::up_to_date ||
             (role_ == Role::primary && peer.status.disk == DiskState::inconsistent);
    case ReplicationState::wait_bitmap_target:
    case ReplicationState::sync_target:
    case ReplicationState::paused_sync_target:
      // A Primary resyncing its attached disk from the peer writes through it.
      return role_ == Role::primary && peer.status.disk == DiskState::up_to_date;
    case ReplicationState::wait_bitmap_source:
    case ReplicationState::sync_source:
    case ReplicationState::paused_sync_source:
      return peer.status.disk >= DiskState::inconsistent && !local_disk_detached();
    default:
      return false;
  }
}

std::uint32_t Node::replication_targets_mask() const {
  std::uint32_t mask = 0;
  for (const Peer& peer : configured_peers()) {
    if (peer_replicating(peer)) mask |= bit(peer.status.node_id);
  }
  return mask;
}

std::uint32_t Node::handshaken_peers_mask() const {
  std::uint32_t mask = 0;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected) {
      mask |= bit(peer.status.node_id);
    }
  }
  return mask;
}

void Node::send_state(const Peer& peer, std::uint64_t extra_flags, std::uint32_t weak_nodes) {
  wire::StateReport report;
  report.role = role_;
  report.disk_state = disk_state_;
  report.uuids = generations_.uuids;
  report.uuid_flags = uuid_flags_toward(peer) | quorum_uuid_flags() | extra_flags |
                      (peer.status.resync_suspended_user || peer.status.resync_suspended_dependency
                           ? uuid_flag::resync_paused_by_user
                           : 0);
  // A Primary always names the nodes it does not replicate to: its Secondaries mark the writes
  // they receive out of sync toward those nodes too (they may resync them later).
  // A Secondary forwards its Primary's: a node the Primary cannot reach learns it is behind.
  report.weak_nodes = role_ == Role::primary ? weak_nodes | nodes_without_data()
                                             : weak_nodes | followed_primary_weak_nodes() |
                                                   lost_primary_weak_toward(peer);
  report.dirty_bits = peer.bitmap->count_set();
  report.dagtag_node = dagtag_node_;
  report.dagtag = dagtag_;
  report.usable_size_sectors = usable_size_bytes() / sector_size_bytes;
  report.current_size_sectors = size_bytes_ / sector_size_bytes;
  if (peer.status.connection != ConnectionState::connected || !peer.first_report_sent) {
    peers_[peer.status.node_id.value].first_report_sent = report;
  }
  actions_.push_back(Send{peer.status.node_id, report, std::nullopt});
}

void Node::send_state_to_connected_peers() {
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected) send_state(peer);
  }
}

std::vector<Action> Node::take_actions() {
  std::vector<Action> taken;
  taken.swap(actions_);
  return taken;
}

void Node::take_actions(std::vector<Action>& into) {
  into.clear();
  into.swap(actions_);
  DITTO_ASSERT(actions_.empty());
}

std::vector<PeerStatus> Node::peers() const {
  std::vector<PeerStatus> result;
  for (const Peer& peer : configured_peers()) {
    if (peer.configured) result.push_back(*this->peer(peer.status.node_id));
  }
  return result;
}

std::optional<PeerStatus> Node::peer(NodeId peer_id) const {
  if (peer_id.value > node_id_max || !peers_[peer_id.value].configured) return std::nullopt;
  const Peer& entry = peers_[peer_id.value];
  PeerStatus status = entry.status;
  status.out_of_sync_bytes = entry.bitmap->count_set() * Bitmap::bytes_per_bit;
  status.client = entry.intentional_diskless;
  return status;
}

const Bitmap& Node::bitmap_toward(NodeId peer_id) const {
  DITTO_ASSERT(peer_id.value <= node_id_max && peers_[peer_id.value].configured);
  return *peers_[peer_id.value].bitmap;
}

std::string PeerStatus::resync_suspended_text() const {
  std::string text;
  for (const auto& [set, reason] : {std::pair{resync_suspended_user, "user"},
                                  std::pair{resync_suspended_peer, "peer"},
                                  std::pair{resync_suspended_dependency, "dependency"}}) {
    if (set) text += (text.empty() ? "" : ",") + std::string(reason);
  }
  return text.empty() ? "no" : text;
}

double PeerStatus::resync_percent_done() const {
  const std::uint64_t total = sync_total_blocks();
  if (total == 0) return 100.0;
  const std::uint64_t left = std::min(sync_blocks_left(), total);
  return 100.0 * static_cast<double>(total - left) / static_cast<double>(total);
}

std::uint64_t PeerStatus::sync_total_blocks() const {
  if (is_verifying(replication)) return verify_total_blocks;
  return is_syncing(replication) ? resync_total_blocks : 0;
}

std::uint64_t PeerStatus::sync_blocks_left() const {
  if (is_verifying(replication)) {
    return verify_total_blocks - std::min(verify_done_blocks, verify_total_blocks);
  }
  if (replication == ReplicationState::sync_source ||
      replication == ReplicationState::paused_sync_source) {
    return out_of_sync_bytes / Bitmap::bytes_per_bit;
  }
  if (!is_syncing(replication)) return 0;
  return resync_total_blocks - std::min(resync_done_blocks, resync_total_blocks);
}

void Node::note_sync_progress(Instant now, Peer& peer) {
  SyncProgress& progress = peer.status.sync_progress;
  if (!is_syncing(peer.status.replication)) {
    progress.running = false;
    return;
  }
  const bool paused = peer.status.replication == ReplicationState::paused_sync_source ||
                      peer.status.replication == ReplicationState::paused_sync_target;
  if (!progress.running) {
    const SyncMark start{now, sync_blocks_left(peer)};
    progress = SyncProgress{true, start, start, start, now, Duration{}, paused};
    return;
  }
  if (progress.was_paused) {
    progress.paused = Duration{progress.paused.ns + (now - progress.noted).ns};
  }
  progress.noted = now;
  progress.was_paused = paused;
  if (now - progress.mark.at < sync_mark_step) return;
  progress.previous_mark = progress.mark;
  progress.mark = SyncMark{now, sync_blocks_left(peer)};
}

// Counting a SyncSource's bits costs a walk over the bitmap: only at marks.
std::uint64_t Node::sync_blocks_left(const Peer& peer) const {
  PeerStatus status = peer.status;
  status.out_of_sync_bytes = peer.bitmap->count_set() * Bitmap::bytes_per_bit;
  return status.sync_blocks_left();
}

bool Node::may_promote() const {
  if (role_ == Role::primary) return false;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.role == Role::primary && !config_.allow_two_primaries) return false;
  }
  return disk_state_ == DiskState::up_to_date && have_quorum_;
}

std::uint32_t Node::promotion_score() const {
  // 10000 * (all local disks present) + 100 * min(#local UpToDate, 99) + min(UpToDate replicas, 99)
  const bool has_disk = disk_state_ != DiskState::diskless;
  const std::uint32_t local_up_to_date = disk_state_ == DiskState::up_to_date ? 1 : 0;
  std::uint32_t replicas = local_up_to_date;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.disk == DiskState::up_to_date) replicas += 1;
  }
  return (has_disk ? 10000u : 0u) + 100u * local_up_to_date + (replicas > 99 ? 99 : replicas);
}

void Node::invariants() const {
  const std::uint32_t requests = client_requests();
  DITTO_ASSERT(requests <= config_.requests_in_flight_max);
  DITTO_ASSERT(statistics_.upper_pending == requests);
  DITTO_ASSERT(held_writes_.empty() || promotion_.has_value());
  DITTO_ASSERT(!lost_peer_ || (lost_peer_->waiting_mask & ~handshaken_peers_mask()) == 0);
  DITTO_ASSERT(!(promotion_ && prepared_ && !promotion_->backing_off));
  const std::uint32_t targets = replication_targets_mask();
  // requests_by_io_ holds exactly the requests waiting for their local I/O. A request gets its
  // IoId right after its sequence and both only grow, so both maps list those requests in the
  // same order: one merged walk checks it, without a map lookup per request on every input.
  auto by_io = requests_by_io_.begin();
  for (const auto& [sequence, entry] : requests_) {
    DITTO_ASSERT(sequence < next_sequence_);
    DITTO_ASSERT(entry.epoch <= current_epoch_);
    // A pending peer is always one we are still replicating to: any state change that stops
    // replication to it clears the bit (release_requests_from_non_targets).
    DITTO_ASSERT((entry.peers_pending_mask & ~targets) == 0);
    // A read waits only for a peer it may still hear from (reroute_reads_from).
    DITTO_ASSERT(!entry.read_peer ||
                 peers_[entry.read_peer->value].status.connection == ConnectionState::connected);
    if (!entry.local_pending) continue;
    DITTO_ASSERT(entry.io.has_value() && by_io != requests_by_io_.end());
    DITTO_ASSERT(by_io->first == entry.io->value && by_io->second == sequence);
    ++by_io;
  }
  DITTO_ASSERT(by_io == requests_by_io_.end());
  DITTO_ASSERT(al_holds_.empty() || activity_log_.has_value());
  DITTO_ASSERT(al_holds_.size() <=
               requests_.size() + 2 * std::size_t{config_.requests_in_flight_max});
  // Sizes (node_sizes.cpp): never more than the disk holds; the bitmaps cover what is exposed.
  DITTO_ASSERT(config_.volume_size_bytes == 0 || size_bytes_ <= config_.volume_size_bytes);
  for (const Peer& peer : configured_peers()) {
    const bool connected = peer.status.connection == ConnectionState::connected;
    if (connected && role_ == Role::primary && !config_.allow_two_primaries) {
      DITTO_ASSERT(peer.status.role != Role::primary);
    }
    if (!connected) {
      DITTO_ASSERT(peer.epoch_writes_sent == 0 && peer.epochs_awaiting_ack.empty());
      DITTO_ASSERT(peer.inbox.empty() && peer.receive_epoch_active == 0);
    }
    DITTO_ASSERT(!peer.receive_flushing || !peer.inbox.empty());
    DITTO_ASSERT(peer.bitmap.has_value());
    DITTO_ASSERT(peer.bitmap->sectors() == size_bytes_ / sector_size_bytes);
    const bool target = peer.status.replication == ReplicationState::sync_target ||
                        peer.status.replication == ReplicationState::paused_sync_target;
    DITTO_ASSERT(target || peer.resync_runs.empty());
    DITTO_ASSERT(peer.resync_runs.empty() == (peer.resync_runs_blocks == 0));
    DITTO_ASSERT(connected || peer.unconfirmed_writes.empty());
    DITTO_ASSERT(peer.inbox.size() <= 2 * std::size_t{config_.requests_in_flight_max} + 2);
  }
}

}  // namespace ditto::core
