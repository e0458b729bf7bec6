// Node: data generations at the handshake (§3.4, §3.5 through core/generation.h), the
// out-of-sync bitmaps (§4.1) and the start of a bitmap-based resync (§5.1): which way it goes,
// the bitmap exchange, and when it must wait. The resync itself (requests for runs of blocks,
// rate control, the writes) is node_resync_runs.cpp.
#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

constexpr const char* state_changed_reason = "our state changed during the handshake";

}  // namespace

// ---- Generations ------------------------------------------------------------------------------

std::uint64_t Node::block_sector(std::uint64_t block) const {
  return block * Bitmap::sectors_per_bit;
}

std::uint32_t Node::block_length(std::uint64_t block) const {
  return run_length(block, 1);
}

std::uint32_t Node::run_length(std::uint64_t block, std::uint64_t blocks) const {
  const std::uint64_t volume_sectors = size_bytes_ / sector_size_bytes;
  const std::uint64_t first = block_sector(block);
  DITTO_ASSERT(first < volume_sectors && blocks > 0);
  const std::uint64_t sectors = std::min(blocks * Bitmap::sectors_per_bit, volume_sectors - first);
  return static_cast<std::uint32_t>(sectors * sector_size_bytes);
}

// Peers that will not get the next write: their bitmap slots take the old generation (§3.2).
std::uint32_t Node::nodes_without_data() const {
  std::uint32_t mask = 0;
  for (const Peer& peer : configured_peers()) {
    if (!peer_replicating(peer)) mask |= bit(peer.status.node_id);
  }
  return mask;
}

// STABLE always: there is no quorum or "lost primary" tracking yet, so a split brain found at
// the handshake is always reported as one (never downgraded to "no sync").
std::uint64_t Node::local_uuid_flags() const {
  std::uint64_t flags = uuid_flag::stable;
  if (disk_state_ == DiskState::inconsistent) flags |= uuid_flag::inconsistent;
  if (restarted_behind_) flags |= uuid_flag::restarted_behind;
  if (after_primary_crash_) flags |= uuid_flag::after_primary_crash;
  if (newer_copy_node_ != no_node) flags |= uuid_flag::newer_copy_away;
  for (const Peer& peer : configured_peers()) {
    if (receives_resync(peer.status.replication)) {
      flags |= uuid_flag::sync_target;
    }
    if (role_ == Role::secondary && peer.status.connection == ConnectionState::connected &&
        peer.status.role == Role::primary && peer.status.disk == DiskState::up_to_date) {
      flags |= uuid_flag::primary_connected;
    }
  }
  return flags;
}

// Why a resync the handshake decided must wait (the connection is retried later), or nullptr.
// Both sides reach the same answer: each judges from the reports both sent, and a side whose
// state changed since its report retries (rule 0, initial-handshake-changed).
const char* Node::resync_not_now(const Peer& peer, bool source) const {
  const wire::StateReport& sent = *peer.first_report_sent;
  // The quorum, pause, Primary and newer-copy flags are no part of the state the decision needs
  // unchanged: they change with it (the decision reads the reports both sides sent, so both
  // agree).
  const std::uint64_t volatile_flags = quorum_flag::all | uuid_flag::resync_paused_by_user |
                                       uuid_flag::primary_connected | uuid_flag::newer_copy_away;
  const std::uint64_t sent_flags = sent.uuid_flags & ~volatile_flags;
  if (sent.disk_state != disk_state_ || sent_flags != (uuid_flags_toward(peer) & ~volatile_flags) ||
      comparable_current(sent.uuids.current) != comparable_current(generations_.uuids.current)) {
    return state_changed_reason;
  }
  const DiskState source_disk = source ? disk_state_ : peer.status.disk;
  const std::uint64_t target_flags = source ? peer.uuid_flags : sent.uuid_flags;
  // One source at a time: two could hand the target different versions of a block.
  if ((target_flags & uuid_flag::sync_target) != 0) return "the target is already syncing";
  if (source_disk == DiskState::inconsistent) return "the source is itself inconsistent";
  return nullptr;
}

// As SyncTarget: a source that stops being a usable one (it became a target itself) is left;
// the reconnect's handshake starts over.
// `was_target`: we were its SyncTarget before this report, and it did not say the resync
// finished. A source whose disk detached has nothing to send any more; its report may already
// have ended the resync (the state rules take a Diskless peer out of SyncSource), and the
// connection is dropped all the same, so the resyncs deferred behind this one run again.
void Node::check_resync_source(Peer& peer, bool was_target) {
  const bool target = receives_resync(peer.status.replication);
  if (!target && !was_target) return;
  if (target && peer.status.disk > DiskState::inconsistent &&
      (peer.uuid_flags & uuid_flag::sync_target) == 0) {
    return;
  }
  // A source whose disk failed or detached under the resync was UpToDate (no other disk is a
  // source) and took our generation's data with it: what it had sent us is now the only copy of
  // writes an older peer missed, so that peer's data is no full sync for us (newer_copy_away;
  // swarm seeds 3865, 5402: the Primary's disk failed while it resynced a Secondary that had
  // crashed or lagged, and the Secondary then took a full sync from a peer cut off before those
  // writes). peer_lost sees the peer's disk already Diskless and would not say so.
  if (disk_state_ == DiskState::inconsistent && peer.status.disk < DiskState::inconsistent) {
    newer_copy_node_ = peer.status.node_id.value;
    newer_copy_current_ = comparable_current(peer.uuids.current);
    newer_copy_disk_gone_ = true;
  }
  protocol_error(peer, "resync source " + peer.status.name + " is no longer consistent");
  if (!target) {  // peer_lost saw no resync any more
    allow_handshake_reruns();
    resume_deferred_resyncs();
  }
}

void Node::bump_generation_if_pending() {
  if (!generations_.new_current_pending) return;
  // Without quorum a Primary starts no generation: the partition with quorum may move on, and
  // ours must stay its ancestor (made when quorum returns, node_quorum.cpp).
  if (!have_quorum_) return;
  // Nor while its I/O is frozen for fencing: the handler may yet say the peer is Primary (§7).
  if (io_suspended_for_fencing()) return;
  // Nor before the peers it still sees answered after a lost connection: the links may be as
  // dead as the lost one, and quorum with them (node_lost_peer.cpp).
  if (lost_peer_pending()) return;
  // An UpToDate diskful node starts a generation; so does a Primary that writes through its
  // peers (§3.2: a diskless one generates the UUID and carries it to its peers, DRBD's
  // P_CURRENT_UUID; so does one whose disk was attached again and is not UpToDate yet), or
  // Secondaries cut off from it would keep the generation of the peers that got its writes, and
  // one of them could later be the source that hands its stale blocks to the others. Any other
  // node keeps the request pending.
  // Such a Primary without an UpToDate peer to write through keeps it pending too: its writes
  // fail, so the generation would name data that no node holds, newer than every disk.
  const bool through_peers = role_ == Role::primary && disk_state_ != DiskState::up_to_date;
  if (disk_state_ != DiskState::up_to_date && !through_peers) return;
  if (through_peers && (replication_targets_mask() & up_to_date_nodes_mask()) == 0) return;
  NewCurrentInput input;
  input.rotate_into_nodes = nodes_without_data();
  // Such a Primary's own disk misses the new generation too: its own slot takes the old UUID
  // (once, so later writes do not bump again), and its peers, told it is weak, rotate the old
  // UUID into their slot toward it.
  if (through_peers) input.rotate_into_nodes |= bit(config_.node_id);
  input.primary = role_ == Role::primary;
  input.forced = comparable_current(generations_.uuids.current) == uuid_just_created_value;
  const Generations before = generations_.uuids;
  if (!before_application_write(generations_, input, prng_.next_u64())) return;
  DITTO_ASSERT(generations_.uuids.current != before.current);
  if (role_ == Role::primary && !through_peers) note_unconfirmed_generation(before);
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected) {
      send_state(peer, uuid_flag::new_datagen, input.rotate_into_nodes);
    }
  }
}

// A Primary's new generation is unconfirmed until a client sees a completion in it
// (UnconfirmedGeneration). A bump on top of an unconfirmed one adds a step; a completion of a
// write admitted in one step confirms it and every step before (its data builds on theirs), and
// the record then leads back to the generation the oldest step left behind.
void Node::note_unconfirmed_generation(const Generations& before) {
  if (unconfirmed_current_ != comparable_current(before.current)) unconfirmed_steps_.clear();
  UnconfirmedStep step{before.current, 0, next_sequence_};
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (before.bitmap[node] == 0 && generations_.uuids.bitmap[node] != 0) {
      step.rotated_nodes |= 1u << node;
    }
  }
  // A bounded record: the two newest steps merge (a write in either confirms both, which only
  // gives up a rollback).
  if (unconfirmed_steps_.size() == unconfirmed_steps_max) {
    step.rotated_nodes |= unconfirmed_steps_.back().rotated_nodes;
    step.previous_current = unconfirmed_steps_.back().previous_current;
    step.from_sequence = unconfirmed_steps_.back().from_sequence;
    unconfirmed_steps_.pop_back();
  }
  unconfirmed_steps_.push_back(step);
  unconfirmed_current_ = comparable_current(generations_.uuids.current);
}

// A client saw a completion of the request admitted as `sequence` (or data it wrote).
void Node::confirm_through(std::uint64_t sequence) {
  while (!unconfirmed_steps_.empty() && unconfirmed_steps_.front().from_sequence <= sequence) {
    unconfirmed_steps_.erase(unconfirmed_steps_.begin());
  }
}

// The newest write admitted in an unconfirmed generation and not completed yet (in progress or
// frozen) that covers part of `read`'s blocks, whose data the read may return; 0 if none.
std::uint64_t Node::unconfirmed_write_under(const Request& read) const {
  if (unconfirmed_generation().current == 0) return 0;
  const std::uint64_t from = unconfirmed_steps_.front().from_sequence;
  const std::uint64_t begin = read.sector.value;
  const std::uint64_t end = begin + read.length_bytes / sector_size_bytes;
  auto overlaps = [&](std::uint64_t sector, std::uint32_t length_bytes) {
    return sector < end && begin < sector + length_bytes / sector_size_bytes;
  };
  std::uint64_t newest = 0;
  for (auto it = requests_.lower_bound(from); it != requests_.end(); ++it) {
    const Request& write = it->second;
    if (write.kind == RequestKind::write && overlaps(write.sector.value, write.length_bytes)) {
      newest = it->first;
    }
  }
  for (const SuspendedCompletion& done : quorum_suspended_completions_) {
    if (done.sequence >= from && overlaps(done.sector.value, done.length_bytes)) {
      newest = std::max(newest, done.sequence);
    }
  }
  return newest;
}

UnconfirmedGeneration Node::unconfirmed_generation() const {
  if (unconfirmed_steps_.empty() ||
      unconfirmed_current_ != comparable_current(generations_.uuids.current)) {
    return UnconfirmedGeneration{};
  }
  UnconfirmedGeneration record{unconfirmed_current_, unconfirmed_steps_.front().previous_current,
                               0};
  for (const UnconfirmedStep& step : unconfirmed_steps_) record.rotated_nodes |= step.rotated_nodes;
  return record;
}

// At start: a generation this node started as Primary, in which no client saw a completion
// before the node stopped, is rolled back (UnconfirmedGeneration). A record that does not name
// the current UUID, or names no usable previous one, is left alone (the metadata is not ours to
// trust blindly: the generations as they are then decide, as before).
void Node::roll_back_unconfirmed_generation() {
  const UnconfirmedGeneration& record = config_.initial_unconfirmed;
  if (!names_current(record, generations_.uuids)) return;
  const std::uint64_t previous = comparable_current(record.previous_current);
  if (previous == uuid_just_created_value || previous == record.current) return;
  const std::string from = generations_text(generations_.uuids);
  roll_back_unconfirmed(generations_.uuids, record);
  actions_.push_back(Event{"generation-rolled-back name:" + config_.resource_name +
                           " volume:0 from:" + from +
                           " to:" + generations_text(generations_.uuids) +
                           " reason:\"started as Primary just before it stopped; no client saw a "
                           "completion in it\""});
}

// Our data moves on without some peer: a new generation at once (not lazily), so a peer that
// reconnects before the next write still sees that it missed data. A Primary without an
// UpToDate disk has its data only on the UpToDate peers it writes through: when a peer that
// stays connected stops being a target (its disk left UpToDate, or it failed a write), the
// generation starts with the next write, which carries it to them. A lost connection still
// starts one at once (peer_lost): that peer may come back before the next write. Quorum+reads
// swarm seed 3237, 5 nodes: an Inconsistent Primary whose resync source went Outdated bumped at
// once, while the link to its last UpToDate peer was being dropped; it was left the only holder
// of a generation no node had data for, every peer refused it as a source, and its frozen write
// never completed.
void Node::start_new_generation() {
  DITTO_ASSERT(role_ == Role::primary);
  request_new_current_uuid(generations_);
  if (disk_state_ != DiskState::up_to_date) return;
  bump_generation_if_pending();
}

// A write from `except` (ourselves as Primary, or the Primary we received it from) is out of
// sync toward the nodes that miss it: those not replicating, those the Primary calls weak, and
// a Primary without a disk of its own (DRBD: its PeerAck names itself only if its local write
// succeeded). Without that last mark a diskless Primary that crashes and comes back with its
// old disk resyncs from us without the blocks it wrote while diskless, and turns UpToDate.
void Node::mark_out_of_sync_for_absent(Sector sector, std::uint32_t length_bytes, NodeId except) {
  const std::uint32_t weak = except == config_.node_id ? 0 : peers_[except.value].weak_nodes;
  for (Peer& peer : configured_peers()) {
    if (peer.status.node_id == except) {
      // A writer stores locally only with an UpToDate disk: one detached, or attached again and
      // resyncing (node_attach.cpp), misses its own write.
      const bool without_disk = peer.status.disk != DiskState::up_to_date;
      if (!without_disk || peer.intentional_diskless) continue;
    } else if (peer_replicating(peer) && (weak & bit(peer.status.node_id)) == 0) {
      continue;
    }
    mark_out_of_sync(peer, sector, length_bytes);
  }
}

// A block we mark toward our own SyncTarget after our bitmap went out (a write from a Primary it
// is not connected to, or one its PeerAck did not name it for) would be missing when its resync
// ends: it would turn UpToDate without it, and a Primary that connects to it then reads the old
// block (quorum swarm seed 855). The target learns it at once (OutOfSync, as DRBD's
// P_OUT_OF_SYNC) and resyncs it before it ends.
void Node::tell_resync_target(const Peer& peer, Sector sector, std::uint32_t length_bytes) {
  const ReplicationState replication = peer.status.replication;
  if (peer.status.connection != ConnectionState::connected) return;
  if (!is_resync_source(replication) && replication != ReplicationState::wait_bitmap_source) {
    return;
  }
  actions_.push_back(
      Send{peer.status.node_id, wire::OutOfSync{sector, length_bytes}, std::nullopt});
}

// A diskless Primary keeps no bitmap of its own: its bitmap slots only say which nodes missed a
// generation it wrote, so that its next write without them starts another (§3.2). A node it
// cannot reach may come up to its generation without it, by a resync from an UpToDate peer: such
// a peer, in our generation, with its own slot toward that node clear, says so, and our slot
// toward the node is stale. Kept, it let our next write without that node stay in the node's
// generation, and nothing told the node that it missed the write (quorum+reads+diskless swarm
// seed 8442: node 2 caught up through node 1 while the Primary was cut off; the Primary came
// back to node 1 alone and wrote, and node 2, Established with node 1 in the same generation,
// never got the block).
void Node::forget_slots_caught_up_through(const Peer& peer, const wire::StateReport& state) {
  if (role_ != Role::primary || disk_state_ != DiskState::diskless) return;
  if (state.disk_state != DiskState::up_to_date) return;
  if (comparable_current(state.uuids.current) != comparable_current(generations_.uuids.current)) {
    return;
  }
  for (const Peer& other : configured_peers()) {
    const std::uint32_t node = other.status.node_id.value;
    if (&other == &peer || other.status.connection == ConnectionState::connected) continue;
    if (generations_.uuids.bitmap[node] == 0 || state.uuids.bitmap[node] != 0) continue;
    set_bitmap_uuid(generations_.uuids, node, 0);
  }
}

void Node::on_peer_generations(Peer& peer, const wire::StateReport& state) {
  peer.uuids = state.uuids;
  peer.uuid_flags = state.uuid_flags;
  peer.peer_dirty_bits = state.dirty_bits;
  peer.dagtag_node = state.dagtag_node;
  peer.dagtag = state.dagtag;
  peer.status.generation = state.uuids.current;
  forget_slots_caught_up_through(peer, state);
  const std::uint32_t weak_before = peer.weak_nodes;
  peer.weak_nodes = state.role == Role::primary ? state.weak_nodes : 0;
  // A Primary we follow, or the lost one back, says what it holds and who lacks it now.
  if (state.role == Role::primary || peer.status.node_id.value == lost_primary_node_) {
    lost_primary_node_ = no_node;
  }
  if (state.role == Role::primary && local_disk_detached()) detached_under_primary_ = true;
  peer.forwarded_weak_nodes = state.role == Role::primary ? 0 : state.weak_nodes;
  if (state.role == Role::primary && peer.state_received && weak_before != peer.weak_nodes &&
      role_ == Role::secondary) {
    // Forward the change to the other peers (send_state adds it).
    for (const Peer& other : configured_peers()) {
      if (&other != &peer && other.configured &&
          other.status.connection == ConnectionState::connected) {
        send_state(other);
      }
    }
  }
  if ((state.uuid_flags & uuid_flag::new_datagen) == 0 || !peer.state_received) return;
  // A Primary started a new generation (NEW_DATAGEN): a Secondary that follows it adopts it.
  const ReplicationState replication = peer.status.replication;
  // Nor does a Behind node: the generation is the one it misses the writes of (§3.2).
  const bool follows = role_ != Role::primary || config_.allow_two_primaries;
  if (state.role != Role::primary || !follows || is_resync_target(replication) ||
      replication == ReplicationState::wait_bitmap_target ||
      replication == ReplicationState::behind || local_disk_detached()) {
    return;
  }
  if (sibling_generation_loses(peer, state)) return;
  // A SyncTarget (of another peer) keeps its generation until its resync ends and then takes
  // its source's, which follows the Primary too: the new UUID is recorded as the source's
  // (DRBD drbd_uuid_received_new_current). Adopted now, it would be lost again at the end of
  // the resync, and a node that missed the generation in between would meet a split brain.
  bool syncing = false;
  for (Peer& source : configured_peers()) {
    if (!is_resync_target(source.status.replication)) continue;
    syncing = true;
    if (comparable_current(source.uuids.current) == comparable_current(state.uuids.current)) {
      continue;
    }
    push_history(source.uuids, source.uuids.current);
    source.uuids.current = state.uuids.current & ~uuid_primary_bit;
  }
  if (syncing) return;
  // A diskless Primary's new generation (DRBD's P_CURRENT_UUID) is taken by an UpToDate disk
  // only (receive_current_uuid). No Primary's is taken by a node it names weak: it sends us none
  // of its writes, or did not trust our data at the handshake (quorum swarm seed 1669; seed
  // 3496: the Primary that distrusted us while diskless had attached an Inconsistent disk).
  if ((state.weak_nodes & bit(config_.node_id)) != 0) return;
  if (state.disk_state == DiskState::diskless && disk_state_ != DiskState::up_to_date) return;
  const std::uint32_t weak = state.weak_nodes & ~bit(config_.node_id);
  std::uint32_t tracked = 0;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (generations_.uuids.bitmap[node] != 0) tracked |= 1u << node;
  }
  const std::uint64_t before = generations_.uuids.current;
  receive_new_current_uuid(generations_.uuids, state.uuids.current, weak, tracked & ~weak,
                           disk_state_ == DiskState::up_to_date);
  if (role_ == Role::primary) generations_.uuids.current |= uuid_primary_bit;
  if (generations_.uuids.current == before) return;
  // The other peers learn the generation we adopted: one the Primary calls weak, whose link to
  // it is dead but not yet detected, sees from our bitmap slot toward it that it is behind
  // (outdate_if_weak).
  for (const Peer& other : configured_peers()) {
    if (&other != &peer && other.status.connection == ConnectionState::connected) {
      send_state(other);
    }
  }
}

// The SyncTarget reports UpToDate with our current UUID: its resync from us is complete.
bool Node::peer_finished_resync(const Peer& peer, const wire::StateReport& state) const {
  return is_resync_source(peer.status.replication) && state.disk_state == DiskState::up_to_date &&
         comparable_current(state.uuids.current) ==
             comparable_current(generations_.uuids.current);
}

// ---- The sync handshake -----------------------------------------------------------------------

namespace {
constexpr const char* newer_copy_reason =
    "the resync source we lost holds a newer generation than this peer";

// `generations` is in generation `current` (comparable) or descends from it.
bool holds_generation(const Generations& generations, std::uint64_t current) {
  if (comparable_current(generations.current) == current) return true;
  for (const std::uint64_t uuid : generations.history) {
    if (uuid != 0 && comparable_uuid(uuid) == current) return true;
  }
  // A bitmap UUID is a generation the node left for a newer one of its own.
  for (const std::uint64_t uuid : generations.bitmap) {
    if (uuid != 0 && comparable_uuid(uuid) == current) return true;
  }
  return false;
}
}  // namespace

// Applies the decision accept_handshake let through (the connection is Connected now).
void Node::sync_handshake_with(Peer& peer, const HandshakeDecision& decision) {
  peer.reconcile_resync = false;
  // The source we lost is back with a disk: whatever that disk holds now, this handshake decides
  // (it may have failed and been attached again: waiting for it any longer could be for ever).
  // Back without one it holds no copy of the generation (its bitmaps cover nothing): we keep
  // refusing older peers, as DRBD does, until an operator connects us with --discard-my-data
  // (swarm seed 3865: the diskless Primary's return let its Inconsistent Secondary take a full
  // sync from a peer that missed the writes only that Secondary held).
  if (newer_copy_node_ == peer.status.node_id.value) {
    if (peer.status.disk > DiskState::failed) {
      newer_copy_node_ = no_node;
    } else {
      newer_copy_disk_gone_ = true;
    }
  }
  peer.in_place_source_of_primary = false;
  if (newer_copy_node_ != no_node && newer_copy_node_ != peer.status.node_id.value &&
      disk_state_ == DiskState::inconsistent && peer.status.disk == DiskState::up_to_date &&
      peer.status.role != Role::primary && !holds_generation(peer.uuids, newer_copy_current_) &&
      (peer.uuid_flags & uuid_flag::discard_my_data) == 0 &&
      (local_uuid_flags() & uuid_flag::discard_my_data) == 0) {
    // An UpToDate peer that never was in the generation of the source we lost missed writes
    // only that source and we hold: a resync from it, even a bitmap-based one of our own older
    // generation (the generation we still carry while Inconsistent), overwrites them (swarm
    // seeds 3865, 5402). We drop the connection and retry, as DRBD does, until the source is
    // back with a disk or an operator discards our data.
    // While the source may come back with its disk we retry; once its disk is gone the
    // connection is left to the operator (StandAlone), as a refused handshake is.
    const bool retry = !newer_copy_disk_gone_;
    actions_.push_back(Disconnect{peer.status.node_id,
                                  std::string("resync must wait: ") + newer_copy_reason, retry});
    peer_lost(peer, retry ? ConnectionState::protocol_error : ConnectionState::disconnecting);
    return;
  }
  switch (decision.outcome) {
    case HandshakeOutcome::established:
      if (decision.defer_resync) return defer_resync(peer, decision.reason.data());
      return resync_same_generation(peer);
    case HandshakeOutcome::become_source:
    case HandshakeOutcome::become_target: {
      // An UpToDate disk is never overwritten from one restarted after a crash (it is Outdated
      // and cannot vouch for its newer generation: it may lack writes it had acknowledged): the
      // direction turns toward the UpToDate side, and the union of both bitmaps (the restarted
      // node marks everything) covers every block that may differ. A node that outdated itself
      // without a crash (a weak Secondary) kept every write it stored: a newer generation makes
      // it the source, as in DRBD.
      // Only within one generation, though: when the generations say the restarted node is
      // newer (the peer's current UUID is its bitmap UUID or in its history), the UpToDate peer
      // missed every write of the newer generation, and turning the resync toward it would
      // overwrite writes only the restarted node holds with blocks never written.
      bool source = decision.outcome == HandshakeOutcome::become_source;
      const bool same_generation =
          comparable_current(generations_.uuids.current) == comparable_current(peer.uuids.current);
      const bool self_restarted =
          same_generation && (local_uuid_flags() & uuid_flag::restarted_behind) != 0;
      const bool peer_restarted =
          same_generation && (peer.uuid_flags & uuid_flag::restarted_behind) != 0;
      if (source && peer.status.disk == DiskState::up_to_date &&
          disk_state_ != DiskState::up_to_date && self_restarted) {
        source = false;
      } else if (!source && disk_state_ == DiskState::up_to_date &&
                 peer.status.disk != DiskState::up_to_date && peer_restarted) {
        source = true;
      }
      if (const char* reason = resync_not_now(peer, source)) return defer_resync(peer, reason);
      apply_bitmap_edit(peer, decision);
      return start_bitmap_exchange(peer, source);
    }
    default:
      return refuse_connection(peer, decision);
  }
}

// The handshake found the same generation on both sides (or none to compare).
void Node::resync_same_generation(Peer& peer) {
  // Same generation but one side knows it is behind (Outdated after a restart, or
  // Inconsistent): the better disk is the source of a bitmap-based resync, so the bits
  // recorded for writes that may not have arrived are copied (possibly none).
  const bool same = comparable_current(generations_.uuids.current) ==
                    comparable_current(peer.uuids.current);
  if (!same) return;
  if (disk_state_ != peer.status.disk) {
    return start_resync_unless_deferred(peer, disk_state_ > peer.status.disk);
  }
  // Reconcile (§3.5 step 3): same generation, both UpToDate, but writes that may not have
  // arrived are marked (a connection broke with writes in flight and no later write
  // started a generation): the Primary, else the side with bits, else the side that received
  // more of the lost Primary's writes (dagtag: each connection carries the Primary's writes in
  // one order, so it holds every write the other side received), else the lower node id, is
  // Between Secondaries only after a common lost Primary, though (DRBD's reconciliation): while
  // either side still has a Primary with an UpToDate disk, that Primary's bitmaps cover what each
  // misses (a diskless Primary's do not: its Secondaries reconcile among themselves), and a side
  // that lags one of its writes on a slow link could be made the source of a block the other
  // already holds newer (swarm seeds 618, 4609). The bits stay until the Primary is lost
  // (reconcile_after_lost_primary) or a resync from it clears them. Both sides judge from the
  // reports both sent at the handshake, so they agree.
  const std::uint64_t primary_flags = peer.first_report_sent->uuid_flags | peer.uuid_flags;
  // the source.
  const std::uint64_t mine = peer.bitmap->count_set();
  const bool primary_here = role_ == Role::primary || peer.status.role == Role::primary;
  if (!primary_here && (primary_flags & uuid_flag::primary_connected) != 0) return;
  if (mine != 0 || peer.peer_dirty_bits != 0) {
    bool source = config_.node_id.value < peer.status.node_id.value;
    if (primary_here) {
      source = role_ == Role::primary;
    } else if ((mine == 0) != (peer.peer_dirty_bits == 0)) {
      source = mine != 0;
    } else if (dagtag_node_ != wire::dagtag_node_none && dagtag_node_ == peer.dagtag_node &&
               dagtag_ != peer.dagtag) {
      source = dagtag_ > peer.dagtag;
    }
    peer.reconcile_resync = true;
    return start_resync_unless_deferred(peer, source);
  }
  // In sync: a bitmap UUID left toward this peer is stale (history keeps it), so the next
  // outage rotates the current generation into the slot again.
  set_bitmap_uuid(generations_.uuids, peer.status.node_id.value, 0);
}

// Same generation: a resync between two nodes that are both Inconsistent (each a SyncTarget of
// an UpToDate node after a crash) waits like any other (resync_not_now): the chosen source has
// nothing to serve until its own resync ends (swarm seed 19 with quorum, 4 nodes: the target
// dropped the paused source as "no longer consistent" on every reconnect, forever).
void Node::start_resync_unless_deferred(Peer& peer, bool source) {
  if (const char* reason = resync_not_now(peer, source)) return defer_resync(peer, reason);
  start_bitmap_exchange(peer, source);
}

// A resync the handshake decided must wait. While one side is a SyncTarget of another node the
// connection stays up without it (resume_deferred_resyncs reruns the handshake later); a state
// that changed during the handshake drops the connection (the reconnect starts over).
void Node::defer_resync(Peer& peer, const char* reason) {
  if (reason != state_changed_reason) {
    peer.resync_deferred = true;
    actions_.push_back(Event{"resync-deferred name:" + config_.resource_name + " peer-node-id:" +
                             std::to_string(peer.status.node_id.value) + " conn-name:" +
                             peer.status.name + " reason:\"" + reason + "\""});
    return;
  }
  actions_.push_back(Disconnect{peer.status.node_id, std::string("resync must wait: ") + reason});
  peer_lost(peer, ConnectionState::protocol_error);
}

void Node::refuse_connection(Peer& peer, const HandshakeDecision& decision) {
  const bool split_brain = decision.compare.strategy == SyncStrategy::split_brain_auto_recover ||
                           decision.compare.strategy == SyncStrategy::split_brain_disconnect;
  const bool unrelated = decision.compare.strategy == SyncStrategy::unrelated_data;
  const std::string mine = generations_text(generations_.uuids);
  const std::string theirs = generations_text(peer.uuids);
  const std::string what = split_brain ? "split brain detected"
                           : unrelated ? "unrelated data"
                                       : std::string(decision.reason);
  const std::string reason = what + " (rule " + std::string(to_string(decision.compare.rule)) +
                             "): local generations " + mine + ", peer generations " + theirs +
                             "; refusing to connect";
  // A split brain was reported by report_split_brain (an events2 helper call).
  if (!split_brain) {
    actions_.push_back(Event{std::string(unrelated ? "unrelated-data" : "connect-refused") +
                             " name:" + config_.resource_name + " peer-node-id:" +
                             std::to_string(peer.status.node_id.value) + " conn-name:" +
                             peer.status.name + " local-generations:" + mine +
                             " peer-generations:" + theirs + " reason:\"" + what + "\""});
  }
  // "I shall become SyncSource, but I am inconsistent!" on our side retries while the source we
  // lost may come back with its disk; once that disk is gone, the operator decides (StandAlone).
  const bool retry = decision.outcome == HandshakeOutcome::retry_connect &&
                     !(newer_copy_node_ != no_node && newer_copy_disk_gone_ &&
                       disk_state_ == DiskState::inconsistent);
  actions_.push_back(Disconnect{peer.status.node_id, reason, retry});
  peer_lost(peer, retry ? ConnectionState::protocol_error : ConnectionState::disconnecting);
}

void Node::apply_bitmap_edit(Peer& peer, const HandshakeDecision& decision) {
  Bitmap& bitmap = *peer.bitmap;
  switch (decision.bitmap_edit) {
    case BitmapEdit::none:
      break;
    case BitmapEdit::copy_slot: {
      const std::int32_t from = decision.copy_from_node;
      // A bitmap that a resync toward its node thinned lost the blocks that node caught up on,
      // which the peer, still in the old generation, lacks: a full sync instead (swarm seed
      // 1790: a node in the crashed Primary's generation connected to the new Primary while
      // that Primary's full sync of a third node from the same generation was halfway done,
      // got a copy of what was left of it, and kept its own version of the blocks already
      // sent: two UpToDate replicas differed).
      const bool usable = from >= 0 && from <= static_cast<std::int32_t>(node_id_max) &&
                          peers_[static_cast<std::size_t>(from)].configured &&
                          !peers_[static_cast<std::size_t>(from)].bitmap_thinned_by_resync;
      if (!usable) {
        bitmap.set_all();
        break;
      }
      bitmap.merge(*peers_[static_cast<std::size_t>(from)].bitmap);
      break;
    }
    case BitmapEdit::set_all:
      bitmap.set_all();
      break;
  }
  const std::uint32_t slot = peer.status.node_id.value;
  if (decision.record_peer_current_as_bitmap_uuid) {
    set_bitmap_uuid(generations_.uuids, slot, comparable_current(peer.uuids.current));
  }
  if (decision.clear_stale_bitmap_uuid) set_bitmap_uuid(generations_.uuids, slot, 0);
}

// WFBitMapS / WFBitMapT: both sides send their bitmap toward the other, each ORs in what it
// receives, so both resync the union (§3.5 step 15).
void Node::start_bitmap_exchange(Peer& peer, bool source) {
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].replication =
      source ? ReplicationState::wait_bitmap_source : ReplicationState::wait_bitmap_target;
  const StateChangeResult result = change_state(proposed, true);
  if (!result.ok()) {
    return protocol_error(peer, "cannot start a resync: " + std::string(to_string(result.code)) +
                                    ": " + result.message);
  }
  if (source) peer.bitmap_thinned_by_resync = true;
  const Bitmap& bitmap = *peer.bitmap;
  actions_.push_back(Send{peer.status.node_id,
                          wire::BitmapTransfer{bitmap.bit_count(), bitmap.export_words()},
                          std::nullopt});
  send_state_to_connected_peers();
}

void Node::on_bitmap(Instant now, Peer& peer, const wire::BitmapTransfer& message) {
  const ReplicationState replication = peer.status.replication;
  const bool source = replication == ReplicationState::wait_bitmap_source;
  if (!source && replication != ReplicationState::wait_bitmap_target) {
    return protocol_error(peer, "Bitmap received in replication state " +
                                    std::string(to_string(replication)));
  }
  if (message.bit_count != peer.bitmap->bit_count()) {
    return protocol_error(peer, "Bitmap of " + std::to_string(message.bit_count) +
                                    " bits for a volume of " +
                                    std::to_string(peer.bitmap->bit_count()) + " bits");
  }
  Bitmap received(peer.bitmap->sectors());
  received.import_words(message.words);
  peer.bitmap->merge(received);
  peer.bitmap_received = true;
  // A Primary's activity log does not cover the merged bits: persist them now.
  if (role_ == Role::primary) queue_all_bitmap_pages();
  ClusterState proposed = cluster_state();
  peer.status.resync_same_checksum_blocks = 0;
  if (!source) {
    peer.resync_checksums = use_checksum_resync(peer);
    std::uint32_t absent = 0;
    for (const Peer& other : configured_peers()) {
      if (other.status.connection != ConnectionState::connected) {
        absent |= bit(other.status.node_id);
      }
    }
    peer.rs_start_uuid = resync_target_started(generations_.uuids, absent);
    peer.resync_cursor = 0;
    // The controller starts afresh, its first step as long as a regular one.
    peer.resync_controller.reset();
    peer.resync_blocks_in = 0;
    peer.resync_step_started = now + Duration{-resync_step.ns};
  }
  peer.status.resync_total_blocks = peer.bitmap->count_set();
  peer.status.resync_done_blocks = 0;
  peer.status.sync_progress = SyncProgress{};  // noted from the end of this input on
  peer.reconcile_resync = false;
  proposed.peers[peer.status.node_id.value].replication =
      source ? ReplicationState::sync_source : ReplicationState::sync_target;
  const StateChangeResult result = change_state(proposed, true);
  if (!result.ok()) {
    return protocol_error(peer, "cannot start a resync: " + std::string(to_string(result.code)) +
                                    ": " + result.message);
  }
  send_state_to_connected_peers();
  if (source) return;
  on_resync_step(now, peer.status.node_id);
}

}  // namespace ditto::core
