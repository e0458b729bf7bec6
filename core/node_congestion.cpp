// Node: congestion with protocol A (drbd9-semantics.md §11): on-congestion block | pull-ahead |
// disconnect, and the Ahead/Behind replication states.
//
// A Primary checks each new write against every peer it replicates to (Established, the peer
// UpToDate, our disk UpToDate). The peer is congested when the application data sent to it and
// not yet covered by a BarrierAck reaches congestion-fill, or when the activity log holds at
// least congestion-extents extents (when that is below al-extents). While data is still in
// flight to it:
// - block: nothing here; writes wait on the existing bound (ClientStatus::busy);
// - disconnect: the connection is dropped; the reconnect's handshake resyncs what it missed;
// - pull-ahead: the peer-device goes Ahead (SyncControl::ahead first, so the peer goes Behind,
//   its disk capped at Outdated, before it hears of the new data generation the next write
//   starts). While Ahead no Data goes to the peer, only an OutOfSync per write (the peer sets
//   its bits toward us; we set ours). Once the writes sent before drained (the last BarrierAck
//   arrived), after ahead_resync_delay, the Ahead node sends SyncControl::resync_after_ahead and
//   both run the usual bitmap exchange: Ahead → WFBitMapS → SyncSource, Behind → WFBitMapT →
//   SyncTarget, then Established, with exactly the blocks written meanwhile.
// No acknowledged write is lost: a write completes on the local disk alone, and its blocks are
// in both bitmaps; a Behind node is Outdated, so it is never promoted as UpToDate without them.
#include <string>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {

const char* to_string(OnCongestion policy) {
  switch (policy) {
    case OnCongestion::block:
      return "block";
    case OnCongestion::pull_ahead:
      return "pull-ahead";
    case OnCongestion::disconnect:
      return "disconnect";
  }
  return "block";
}

std::optional<OnCongestion> parse_on_congestion(std::string_view text) {
  for (const OnCongestion policy :
       {OnCongestion::block, OnCongestion::pull_ahead, OnCongestion::disconnect}) {
    if (text == to_string(policy)) return policy;
  }
  return std::nullopt;
}

// ---- The Ahead side ---------------------------------------------------------------------------

bool Node::congested(const Peer& peer) const {
  const std::uint64_t fill_bytes =
      std::uint64_t{config_.congestion_fill_sectors} * sector_size_bytes;
  if (fill_bytes > 0 && peer.status.in_flight_bytes >= fill_bytes) return true;
  return activity_log_ && config_.congestion_extents < config_.al_extents &&
         activity_log_->extents_in_use() >= config_.congestion_extents;
}

// Before a write is sent: the policy for each peer it would go to (§11, DRBD's
// __maybe_pull_ahead). Writes that wait (block) need nothing here.
void Node::check_congestion(Instant now) {
  if (config_.on_congestion == OnCongestion::block || config_.protocol != Protocol::a) return;
  if (role_ != Role::primary || disk_state_ != DiskState::up_to_date) return;
  bool dropped = false;
  for (Peer& peer : configured_peers()) {
    if (peer.status.replication != ReplicationState::established || !peer_replicating(peer) ||
        peer.status.disk != DiskState::up_to_date) {
      continue;
    }
    peer.status.congested = congested(peer);
    // Nothing in flight means nothing to wait for: the congestion is the activity log's alone.
    if (!peer.status.congested || peer.status.in_flight_bytes == 0) continue;
    if (config_.on_congestion == OnCongestion::disconnect) {
      actions_.push_back(Event{"congested name:" + config_.resource_name +
                               " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                               " conn-name:" + peer.status.name + " action:disconnect"});
      actions_.push_back(Disconnect{peer.status.node_id, "congested (on-congestion disconnect)"});
      peer_lost(peer, ConnectionState::network_failure);
      dropped = true;
      continue;
    }
    pull_ahead(peer);
  }
  // As after any lost connection (on_connection_down): quorum, a lost-peer state change.
  if (dropped) apply_quorum_changes(now);
}

void Node::pull_ahead(Peer& peer) {
  DITTO_ASSERT(peer.status.replication == ReplicationState::established);
  // The peer learns it is Behind before the StateReports that follow (the new generation, our
  // weak nodes): a Behind node does not adopt the generation it lacks the data of.
  actions_.push_back(Send{peer.status.node_id,
                          wire::SyncControl{wire::SyncCommand::ahead, Sector{0}}, std::nullopt});
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].replication = ReplicationState::ahead;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());  // Established with both disks UpToDate admits Ahead
  // Entering Ahead flags a new data generation (§3.2), started before this write.
  request_new_current_uuid(generations_);
}

// While Ahead the peer gets the range of each write instead of its data.
void Node::send_out_of_sync(Peer& peer, Sector sector, std::uint32_t length_bytes) {
  DITTO_ASSERT(peer.status.replication == ReplicationState::ahead);
  actions_.push_back(
      Send{peer.status.node_id, wire::OutOfSync{sector, length_bytes}, std::nullopt});
}

// After each message: an Ahead peer whose writes sent before all drained gets its resync after
// ahead_resync_delay (DRBD starts it about a second later).
void Node::arm_ahead_resync_if_drained(Instant now, const Peer& peer) {
  if (peer.status.replication != ReplicationState::ahead || peer.status.in_flight_bytes != 0) {
    return;
  }
  const TimerId timer{timer_ahead_resync_base + peer.status.node_id.value};
  if (timers_armed_.count(timer.value) == 1) return;
  arm_timer(timer, now + ahead_resync_delay);
}

void Node::on_ahead_resync_timer(NodeId peer_id) {
  Peer& peer = peer_ref(peer_id);
  // The connection went (and the peer with it) since the timer was armed.
  if (peer.status.replication != ReplicationState::ahead) return;
  DITTO_ASSERT(peer.status.in_flight_bytes == 0);  // nothing is sent while Ahead
  actions_.push_back(Send{peer.status.node_id,
                          wire::SyncControl{wire::SyncCommand::resync_after_ahead, Sector{0}},
                          std::nullopt});
  start_bitmap_exchange(peer, true);
}

// ---- The Behind side --------------------------------------------------------------------------

void Node::on_peer_ahead(Peer& peer) {
  if (peer.status.replication != ReplicationState::established || role_ == Role::primary) {
    return protocol_error(peer, "peer went Ahead while replication is " +
                                    std::string(to_string(peer.status.replication)) + " and role " +
                                    std::string(to_string(role_)));
  }
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].replication = ReplicationState::behind;
  const StateChangeResult result = change_state(proposed, true);
  if (!result.ok()) {
    return protocol_error(
        peer, "cannot go Behind: " + std::string(to_string(result.code)) + ": " + result.message);
  }
  DITTO_ASSERT(disk_state_ <= DiskState::outdated);
  send_state_to_connected_peers();
}

void Node::on_out_of_sync(Peer& peer, const wire::OutOfSync& message) {
  const bool target = receives_resync(peer.status.replication);
  if (peer.status.replication != ReplicationState::behind && !target) {
    return protocol_error(
        peer, "OutOfSync while replication is " + std::string(to_string(peer.status.replication)));
  }
  if (!in_range(message.sector, message.length_bytes)) {
    return protocol_error(peer, "OutOfSync for sector " + std::to_string(message.sector.value) +
                                    " length " + std::to_string(message.length_bytes) +
                                    " outside the volume");
  }
  // Toward the other nodes nothing changes: those that got the write mark it toward us (the
  // Ahead node names us among its weak nodes).
  mark_out_of_sync(peer, message.sector, message.length_bytes);
  // As its SyncTarget: our source got a write we miss (node_resync.cpp, tell_resync_target). A
  // run of those blocks in flight may carry the block from before it: requested again.
  if (target) resync_runs_stale(message.sector, message.length_bytes);
}

void Node::on_resync_after_ahead(Peer& peer) {
  if (peer.status.replication != ReplicationState::behind) {
    return protocol_error(peer, "resync after Ahead while replication is " +
                                    std::string(to_string(peer.status.replication)));
  }
  // One source at a time (resync_not_now): a node that became SyncTarget of another peer
  // while Behind (an UpToDate peer with a newer generation) leaves this connection; its
  // handshake then waits for the running resync.
  if ((local_uuid_flags() & uuid_flag::sync_target) != 0) {
    return protocol_error(peer, "resync after Ahead while a SyncTarget of another peer");
  }
  start_bitmap_exchange(peer, false);
}

}  // namespace ditto::core
