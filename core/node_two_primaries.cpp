// Node: two Primaries (allow-two-primaries, for live migration; drbd9-semantics.md §1.4,
// §2.3 last bullet, §15 item 2).
//
// Both Primaries send their writes to each other and to the Secondaries; each connection keeps
// its own epochs, so write order is kept per origin. Nothing orders the writes of one Primary
// against the other's, so two writes to overlapping blocks in flight at the same time could
// land in different orders on different replicas. DRBD 9 detects them and drops the connection
// ("Concurrent writes detected"; the old P_SUPERSEDED/P_RETRY_WRITE resolution is gone), and so
// do we:
// - on a Primary, a peer's write arrives that overlaps a local application write still in
//   flight (submitted, not yet completed on the local disk and every peer);
// - on a Primary, a local write is submitted that overlaps a peer's write not yet completed on
//   the local disk;
// - on any node, a peer's write arrives that overlaps another peer's write not yet completed on
//   the local disk (a Secondary gets the two Primaries' writes on two connections, in no
//   defined order): the later one is not written, and its connection is dropped.
// The connection goes through the usual loss (the writes it missed are marked out of sync, a
// new generation starts) and reconnects; with diverged data the handshake finds a split brain
// and after-sb-2pri decides, as after any split brain. Never a silent merge. The client writes
// complete as with any lost peer.
//
// A local write that overlaps a peer write already on its way to our disk waits for that disk
// write after the connection was dropped: ours is the later one and must be what the disk holds.
//
// Concurrent overlapping writes are a bug of the application: live migration pauses the writer
// before the other side writes. With a third node a conflict leaves a split brain on more than
// one connection, each of which the policies or the administrator resolve.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

bool overlaps(Sector a, std::uint32_t a_length, Sector b, std::uint32_t b_length) {
  const std::uint64_t a_end = a.value + a_length / sector_size_bytes;
  const std::uint64_t b_end = b.value + b_length / sector_size_bytes;
  return a.value < b_end && b.value < a_end;
}

}  // namespace

std::optional<Node::PeerWriteRef> Node::overlapping_peer_write(Sector sector,
                                                               std::uint32_t length_bytes,
                                                               bool live_only) const {
  for (const auto& [io, entry] : peer_ios_) {
    if (entry.is_flush || !overlaps(sector, length_bytes, entry.sector, entry.length_bytes)) {
      continue;
    }
    const Peer& peer = peers_[entry.peer.value];
    const bool live = peer.status.connection == ConnectionState::connected &&
                      connection_epochs_[entry.peer.value] == entry.connection_epoch;
    if (live || !live_only) return PeerWriteRef{entry.peer, entry.sector, entry.length_bytes};
  }
  for (const Peer& peer : configured_peers()) {
    for (const InboxItem& item : peer.inbox) {
      if (item.kind == InboxItem::Kind::data &&
          overlaps(sector, length_bytes, item.data.sector, item.data.length_bytes)) {
        return PeerWriteRef{peer.status.node_id, item.data.sector, item.data.length_bytes};
      }
    }
  }
  return std::nullopt;
}

// An application write arrived from `peer` (a Primary): true when it overlaps a write in
// flight that it cannot be ordered against, and the connection to `peer` was dropped. On a
// Primary: one of our own writes. On any node: a write of another peer not yet on our disk
// (the two Primaries' writes reach a Secondary on two connections, in no defined order).
bool Node::peer_write_conflicts(Peer& peer, const wire::Data& data) {
  DITTO_ASSERT(config_.allow_two_primaries);
  for (const auto& [io, entry] : peer_ios_) {
    if (entry.is_flush || entry.peer == peer.status.node_id ||
        connection_epochs_[entry.peer.value] != entry.connection_epoch ||
        !overlaps(entry.sector, entry.length_bytes, data.sector, data.length_bytes)) {
      continue;
    }
    concurrent_writes_detected(peer, entry.sector, entry.length_bytes, data.sector,
                               data.length_bytes);
    return true;
  }
  for (const Peer& other : configured_peers()) {
    if (&other == &peer) continue;
    for (const InboxItem& item : other.inbox) {
      if (item.kind != InboxItem::Kind::data ||
          !overlaps(item.data.sector, item.data.length_bytes, data.sector, data.length_bytes)) {
        continue;
      }
      concurrent_writes_detected(peer, item.data.sector, item.data.length_bytes, data.sector,
                                 data.length_bytes);
      return true;
    }
  }
  if (role_ != Role::primary) return false;
  for (const auto& [sequence, entry] : requests_) {
    if (entry.kind != RequestKind::write ||
        !overlaps(entry.sector, entry.length_bytes, data.sector, data.length_bytes)) {
      continue;
    }
    concurrent_writes_detected(peer, entry.sector, entry.length_bytes, data.sector,
                               data.length_bytes);
    return true;
  }
  return false;
}

// Before a local write is submitted: every peer with an overlapping write not yet on our disk
// loses its connection. True when the write waits behind such a write already submitted.
bool Node::hold_behind_peer_writes(const HeldWrite& write, bool al_referenced) {
  while (const std::optional<PeerWriteRef> other =
             overlapping_peer_write(write.sector, write.length_bytes, true)) {
    concurrent_writes_detected(peers_[other->peer.value], write.sector, write.length_bytes,
                               other->sector, other->length_bytes);
  }
  if (!overlapping_peer_write(write.sector, write.length_bytes, false)) return false;
  writes_behind_peer_writes_.push_back(AlWaitingWrite{write, al_referenced});
  statistics_.upper_pending += 1;
  return true;
}

// A peer write reached our disk: the local writes that waited for it go on (in order).
void Node::release_writes_behind_peer_writes() {
  if (writes_behind_peer_writes_.empty()) return;
  std::deque<AlWaitingWrite> waiting;
  waiting.swap(writes_behind_peer_writes_);
  DITTO_ASSERT(statistics_.upper_pending >= waiting.size());
  statistics_.upper_pending -= static_cast<std::uint32_t>(waiting.size());
  for (const AlWaitingWrite& entry : waiting) {
    admit_after_activity_log(entry.write, entry.referenced);
  }
}

void Node::concurrent_writes_detected(Peer& peer, Sector local_sector, std::uint32_t local_length,
                                      Sector peer_sector, std::uint32_t peer_length) {
  DITTO_ASSERT(peer.status.connection == ConnectionState::connected);
  const std::string node = std::to_string(peer.status.node_id.value);
  actions_.push_back(Event{
      "concurrent-writes name:" + config_.resource_name + " peer-node-id:" + node +
      " conn-name:" + peer.status.name + " local-sector:" + std::to_string(local_sector.value) +
      " local-size:" + std::to_string(local_length) + " peer-sector:" +
      std::to_string(peer_sector.value) + " peer-size:" + std::to_string(peer_length)});
  actions_.push_back(
      Disconnect{peer.status.node_id,
                 "concurrent writes detected: local sector " + std::to_string(local_sector.value) +
                     " +" + std::to_string(local_length) + ", peer sector " +
                     std::to_string(peer_sector.value) + " +" + std::to_string(peer_length)});
  statistics_.concurrent_writes_detected += 1;
  peer_lost(peer, ConnectionState::protocol_error);
  DITTO_ASSERT(peer.status.connection != ConnectionState::connected);
}

// A Primary announced a new generation (NEW_DATAGEN) while another Primary exists (this node
// or a connected peer). Both may have started one at the same time from the same parent (their
// first writes on day 0, both rotating toward the same absent node): siblings, neither knowing
// the other. Every node then keeps the smaller of the two, so both Primaries and their
// Secondaries end on one generation; one that descends from ours (its generations hold our
// current UUID) is always taken. True when `state`'s generation is a sibling that loses.
bool Node::sibling_generation_loses(const Peer& peer, const wire::StateReport& state) const {
  if (!config_.allow_two_primaries) return false;
  bool other_primary = role_ == Role::primary;
  for (const Peer& other : configured_peers()) {
    if (&other != &peer && other.status.connection == ConnectionState::connected &&
        other.status.role == Role::primary) {
      other_primary = true;
    }
  }
  if (!other_primary) return false;
  const std::uint64_t ours = comparable_current(generations_.uuids.current);
  const std::uint64_t theirs = comparable_current(state.uuids.current);
  // Every generation descends from "just created" (which no history records).
  if (ours == theirs || ours == uuid_just_created_value) return false;
  for (const std::uint64_t uuid : state.uuids.bitmap) {
    if (uuid != 0 && comparable_uuid(uuid) == ours) return false;
  }
  for (const std::uint64_t uuid : state.uuids.history) {
    if (uuid != 0 && comparable_uuid(uuid) == ours) return false;
  }
  return theirs > ours;
}

// ChangeOptions: allow-two-primaries needs protocol C (drbd_nl.c _check_net_options), and may
// not be turned off while this Primary has a connected Primary peer. Empty when acceptable.
std::string Node::two_primaries_refusal(const NodeConfig& wanted) const {
  if (wanted.allow_two_primaries && wanted.protocol != Protocol::c) {
    return "allow-two-primaries requires protocol C";
  }
  if (wanted.allow_two_primaries || !config_.allow_two_primaries || role_ != Role::primary) {
    return {};
  }
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected && peer.status.role == Role::primary) {
      return "cannot turn allow-two-primaries off while peer " + peer.status.name +
             " is Primary too (demote one first)";
    }
  }
  return {};
}

}  // namespace ditto::core
