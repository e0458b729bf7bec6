// Node: peer-acks (drbd9-semantics.md §2.3). A Secondary cannot tell from a write alone whether
// the other nodes got it too. It keeps the writes it received from its Primary, by epoch, until
// the Primary's PeerAck{epoch, nodes} says which nodes stored every write of that epoch; toward
// the nodes not named it marks them out of sync. If the Primary vanishes first, every write not
// yet peer-acked is marked out of sync toward every other node (the Primary may have been cut
// off from them while the write was in flight). The Primary sends PeerAck for an epoch once
// each peer that got its writes acknowledged its barrier or was lost.
//
// The marks are set lazily, as DRBD does: a Secondary that crashes before they are set comes
// back marking every block out of sync (Node::Node), which covers them.
//
// Also here: the weak nodes a Secondary forwards, and how a node that fell behind (Outdated,
// or Inconsistent with no resync running) gets its resync back.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

// A peer's generations say its data moved on without us: another current UUID, with its bitmap
// slot toward us (`self`) at our current one (`current`, comparable).
bool moved_on_without(const Generations& theirs, std::uint64_t current, NodeId self) {
  return comparable_current(theirs.current) != current &&
         comparable_uuid(theirs.bitmap[self.value]) == current;
}

}  // namespace

// ---- Primary side -----------------------------------------------------------------------------

void Node::send_peer_acks() {
  while (!peer_ack_epochs_.empty()) {
    const auto oldest = peer_ack_epochs_.begin();
    const PeerAckEpoch& epoch = oldest->second;
    if ((epoch.sent_mask & ~epoch.acked_mask) != 0) return;  // a BarrierAck is still due
    const std::uint32_t stored = epoch.acked_mask & ~epoch.partial_mask;
    for (const Peer& peer : configured_peers()) {
      if ((epoch.acked_mask & bit(peer.status.node_id)) == 0) continue;
      if (peer.status.connection != ConnectionState::connected) continue;
      actions_.push_back(
          Send{peer.status.node_id, wire::PeerAck{oldest->first, stored}, std::nullopt});
    }
    peer_ack_epochs_.erase(oldest);
  }
}

// ---- Secondary side ---------------------------------------------------------------------------

void Node::mark_for_others(const WriteRange& range, std::uint32_t stored_mask, NodeId primary) {
  for (Peer& other : configured_peers()) {
    if (other.status.node_id == primary) continue;
    if ((stored_mask & bit(other.status.node_id)) != 0) continue;
    mark_out_of_sync(other, range.sector, range.length_bytes);
  }
}

void Node::on_peer_ack(Peer& peer, const wire::PeerAck& ack) {
  // Epochs older than the acked one (a PeerAck we never got) stay unconfirmed: marked for all.
  while (!peer.unacked_epochs.empty() && peer.unacked_epochs.begin()->first != ack.barrier) {
    const auto oldest = peer.unacked_epochs.begin();
    if (oldest->first > ack.barrier) return;  // acks for epochs we do not hold: a new stream
    for (const WriteRange& range : oldest->second) mark_for_others(range, 0, peer.status.node_id);
    peer.unacked_epochs.erase(oldest);
  }
  if (peer.unacked_epochs.empty()) return;
  const auto acked = peer.unacked_epochs.begin();
  for (const WriteRange& range : acked->second) {
    mark_for_others(range, ack.node_mask, peer.status.node_id);
  }
  peer.unacked_epochs.erase(acked);
}

// The Primary `peer` is gone: no PeerAck will come for what it sent us.
void Node::mark_unacked_peer_writes(Peer& peer) {
  for (const auto& [barrier, ranges] : peer.unacked_epochs) {
    for (const WriteRange& range : ranges) mark_for_others(range, 0, peer.status.node_id);
  }
  for (const WriteRange& range : peer.open_epoch_writes) {
    mark_for_others(range, 0, peer.status.node_id);
  }
  peer.unacked_epochs.clear();
  peer.open_epoch_writes.clear();
}

// ---- Weak and outdated nodes ------------------------------------------------------------------

// The weak nodes of the Primary this Secondary follows (connected to it), else none.
std::uint32_t Node::followed_primary_weak_nodes() const {
  if (role_ == Role::primary) return 0;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected &&
        peer.status.role == Role::primary) {
      return peer.weak_nodes & ~bit(peer.status.node_id);
    }
  }
  return 0;
}

// With quorum on, a Secondary without a disk gave its vote to the Primary it lost and holds
// none of the writes that vote let it acknowledge (quorum+diskless swarm seeds 8143, 8772: node
// 1's disk failed, node 2 was cut off and the Primary went on with node 1's vote, acknowledged
// writes only it held and crashed; node 2 met node 1, had quorum with its vote and was
// promoted). Toward a node that Primary named weak and whose data is of the Primary's last
// generation we know or older, we forward its weakness as if the Primary were still there: that
// node outdates itself (outdate_if_weak) until a node with the data comes back. The Primary
// reports the peer it lost as weak right after it asks us about the loss (node_lost_peer.cpp),
// on the same link, and we answer only after our own probes. Without quorum nothing counts our
// vote, and the split brain a promotion may cause is the after-sb policies' to resolve.
std::uint32_t Node::lost_primary_weak_toward(const Peer& peer) const {
  if (lost_primary_node_ == no_node || role_ != Role::secondary || !local_disk_detached() ||
      !config_.quorum.enabled()) {
    return 0;
  }
  // What the lost Primary last reported (peer_lost keeps it; its next report ends all this).
  const Peer& primary = peers_[lost_primary_node_];
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  if ((primary.weak_nodes & peer_bit) == 0 || !peer.state_received) return 0;
  // A node that held the Primary's data when we lost it is here: it knows more than we can
  // tell, and the handshakes with it say who is behind.
  for (const Peer& other : configured_peers()) {
    if (other.status.connection == ConnectionState::connected &&
        other.status.disk == DiskState::up_to_date &&
        (primary.weak_nodes & bit(other.status.node_id)) == 0) {
      return 0;
    }
  }
  const std::uint64_t theirs = comparable_current(peer.uuids.current);
  const bool behind = theirs == comparable_current(primary.uuids.current) ||
                      generation_behind(primary.uuids, theirs);
  return behind ? peer_bit : 0;
}

// A peer whose disk failed keeps the generations it last held: if they moved on without us,
// its data did (a node cut off together with its quorum met such a peer after the Primary had
// crashed, and was promoted with its vote over writes only the crashed Primary and that disk
// held).
bool Node::failed_disk_moved_on_without_us(const Peer& peer) const {
  return peer.status.disk == DiskState::diskless && !peer.intentional_diskless &&
         comparable_current(peer.uuids.current) != uuid_just_created_value &&
         moved_on_without(peer.uuids, comparable_current(generations_.uuids.current),
                          config_.node_id);
}

// A Secondary peer forwarded the weak nodes of its Primary. If we are one of them and reach no
// Primary ourselves, a Primary writes without us: our data is behind, so we outdate ourselves
// (§1.7 invariant 2: "a Secondary that learns of a Primary it is not directly connected to
// outdates itself"). Checked when such a report arrives and when we lose our own Primary (the
// report may have come first). A Primary we still see connected makes the report stale, unless
// the peer that forwarded it moved to a newer generation with its bitmap slot toward us at our
// current UUID: then that Primary's data moved on without us, and our link to it is dead but
// not yet detected (DRBD learns it from the Primary's lost-peer state change, which reaches us
// through that peer). The resync comes when we reach that Primary, or an UpToDate node that
// becomes Primary (resync_outdated_peers).
void Node::outdate_if_weak() {
  if (role_ != Role::secondary || disk_state_ != DiskState::up_to_date) return;
  const std::uint64_t current = comparable_current(generations_.uuids.current);
  bool weak = false;
  bool behind = false;
  bool primary_connected = false;
  bool failed_disk_moved_on = false;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) continue;
    if (peer.status.role == Role::primary) primary_connected = true;
    failed_disk_moved_on = failed_disk_moved_on || failed_disk_moved_on_without_us(peer);
    if ((peer.forwarded_weak_nodes & bit(config_.node_id)) == 0) continue;
    weak = true;
    behind = behind || moved_on_without(peer.uuids, current, config_.node_id);
  }
  // Without a Primary to follow, a peer whose disk failed after it moved on without us is the
  // only one left to say so (quorum+diskless swarm seed 7977). With a Primary connected its
  // generations may be long stale: the Primary's own view decides then.
  if (failed_disk_moved_on && !primary_connected) weak = true;
  if (!weak || (primary_connected && !behind)) return;
  if (primary_connected) {
    // Drop the dead link (a Disconnected Primary cannot keep us up to date, state.cpp); losing
    // our Primary brings us back here, and we outdate ourselves then.
    for (Peer& peer : configured_peers()) {
      if (peer.status.connection != ConnectionState::connected) continue;
      if (peer.status.role != Role::primary) continue;
      actions_.push_back(Disconnect{peer.status.node_id, "Primary " + peer.status.name +
                                                             " moved on without us"});
      peer_lost(peer, ConnectionState::protocol_error);
      return;
    }
  }
  ClusterState proposed = cluster_state();
  proposed.disk = DiskState::outdated;
  if (!change_state(proposed, false).ok()) return;
  send_state_to_connected_peers();
}

// As an UpToDate Primary: an established peer that is Outdated (it outdated itself while we
// could not reach it, or it restarted), or whose generation we did not trust while diskless
// (node_peer.cpp), gets its resync through a new handshake.
void Node::resync_outdated_peers() {
  if (role_ != Role::primary || disk_state_ != DiskState::up_to_date) return;
  for (Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) continue;
    if (!peer.state_received || peer.resync_deferred) continue;
    if (peer.status.replication != ReplicationState::established) continue;
    const bool distrusted = peer.distrusted_as != DiskState::up_to_date;
    if (peer.status.disk != DiskState::outdated && !distrusted) continue;
    const std::string reason =
        distrusted ? "reconnecting to resync peer " + peer.status.name + " of another generation"
                   : "reconnecting to resync Outdated peer " + peer.status.name;
    actions_.push_back(Disconnect{peer.status.node_id, reason});
    peer_lost(peer, ConnectionState::protocol_error);
  }
}

// As an Outdated or Inconsistent node that no resync is bringing up, following a Primary without
// an UpToDate disk (a diskless Primary writes through its UpToDate peers; its disk may have
// failed during our resync), or as an Inconsistent one following any Primary: the lowest
// UpToDate established peer is asked through a new handshake, once per connection. Without a
// Primary the cluster is not writing and the next connect's handshake will do; a rerun would only
// cost the peers a connection (and perhaps their quorum).
void Node::resync_from_up_to_date_peer() {
  if (disk_state_ != DiskState::outdated && disk_state_ != DiskState::inconsistent) return;
  if (role_ != Role::secondary) return;
  bool primary_connected = false;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) continue;
    if (receives_resync(peer.status.replication)) return;
    // A resync deferred with a peer that is itself Inconsistent brings nothing (both wait for
    // a source; swarm seed 1635 waited for good): only one with a consistent peer waits here.
    if (peer.resync_deferred && peer.status.disk != DiskState::inconsistent) return;
    if (peer.status.role == Role::primary) {
      // An UpToDate Primary resyncs an Outdated peer itself (resync_outdated_peers), not an
      // Inconsistent one whose resync source was lost (swarm seed 12824: node1 re-attached
      // its disk, node2 was its source and failed; node1 stayed Inconsistent for good).
      if (peer.status.disk == DiskState::up_to_date && disk_state_ == DiskState::outdated) return;
      primary_connected = true;
    }
  }
  if (!primary_connected) return;
  for (Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) continue;
    if (!peer.state_received || peer.resync_deferred || peer.outdated_handshake_rerun) continue;
    if (peer.status.replication != ReplicationState::established) continue;
    if (peer.status.disk != DiskState::up_to_date) continue;
    actions_.push_back(Disconnect{peer.status.node_id,
                                  "reconnecting to resync from UpToDate peer " + peer.status.name});
    peer_lost(peer, ConnectionState::protocol_error);
    peer.outdated_handshake_rerun = true;
    return;
  }
}

}  // namespace ditto::core
