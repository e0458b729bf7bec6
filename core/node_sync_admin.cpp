// Node: the admin commands around a resync and the local disk: pause-sync / resume-sync (DRBD's
// user_isp and peer_isp, §1.2 and §5.1), the resync-after dependency (aftr_isp, §5.5: the
// driver's input, sent to the peer like pause-sync), new-current-uuid [--clear-bitmap] (§3.2:
// skipping the initial sync) and a graceful detach.
//
// pause-sync sets this node's user flag toward a peer; the peer learns it from our StateReport
// (uuid_flag::resync_paused_by_user) as its peer flag. Either flag suspends the resync with that
// peer: sanitize() turns SyncSource / SyncTarget into PausedSyncS / PausedSyncT, the SyncTarget
// stops requesting blocks (pump_resync runs only in SyncTarget; the requests already sent are
// answered and written), and the resync goes on where it stopped once both flags are clear. The
// user flag is the administrator's: it outlives the resync and the connection, as in DRBD.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

// ---- pause-sync / resume-sync -----------------------------------------------------------------

AdminResult Node::pause_sync(Instant now, const PauseSync& command) {
  if (command.peer.value > node_id_max || !peers_[command.peer.value].configured) {
    return {false, "SS_NEED_CONNECTION",
            "pause-sync: node " + std::to_string(command.peer.value) +
                " is not a peer of resource " + config_.resource_name};
  }
  Peer& peer = peers_[command.peer.value];
  // DRBD's ERR_PAUSE_IS_SET ("Sync-pause flag is already set").
  if (peer.status.resync_suspended_user) {
    return {false, "ERR_PAUSE_IS_SET",
            "pause-sync: the resync with " + peer.status.name + " is already paused by the user"};
  }
  peer.status.resync_suspended_user = true;
  apply_resync_suspension(peer);
  note_sync_progress(now, peer);  // the time until now ran unpaused (paused for resume-sync)
  if (peer.status.connection == ConnectionState::connected) send_state(peer);
  return {};
}

AdminResult Node::resume_sync(Instant now, const ResumeSync& command) {
  if (command.peer.value > node_id_max || !peers_[command.peer.value].configured) {
    return {false, "SS_NEED_CONNECTION",
            "resume-sync: node " + std::to_string(command.peer.value) +
                " is not a peer of resource " + config_.resource_name};
  }
  Peer& peer = peers_[command.peer.value];
  // DRBD's ERR_PAUSE_IS_CLEAR ("Sync-pause flag is already cleared").
  if (!peer.status.resync_suspended_user) {
    return {false, "ERR_PAUSE_IS_CLEAR",
            "resume-sync: the resync with " + peer.status.name + " is not paused by the user" +
                (peer.status.resync_suspended_peer ? " (" + peer.status.name + " paused it)"
                                                   : "")};
  }
  peer.status.resync_suspended_user = false;
  apply_resync_suspension(peer);
  note_sync_progress(now, peer);  // the time until now ran unpaused (paused for resume-sync)
  if (peer.status.connection == ConnectionState::connected) send_state(peer);
  return {};
}

// The suspension flags of `peer` changed: sanitize() pauses or resumes the resync (a state
// change, reported as events2 lines), and a resumed SyncTarget asks for blocks again.
void Node::apply_resync_suspension(Peer& peer) {
  const ReplicationState before = peer.status.replication;
  const StateChangeResult result = change_state(cluster_state(), true);
  DITTO_ASSERT(result.ok());  // only sanitize's pause rule changes anything
  // Only the flag changed (no resync runs): the events2 stream still shows it.
  if (peer.status.replication == before) emit_peer_device_event(peer, true);
  if (peer.status.replication == ReplicationState::sync_target) {
    pump_resync(peer);
    maybe_finish_resync(peer);
  }
  DITTO_ASSERT(peer.status.replication != ReplicationState::sync_target ||
               (!peer.status.resync_suspended_user && !peer.status.resync_suspended_peer &&
                !peer.status.resync_suspended_dependency));
}

// ---- resync-after -----------------------------------------------------------------------------

void Node::on_resync_dependency(Instant now, bool active) {
  for (Peer& peer : configured_peers()) {
    if (peer.status.resync_suspended_dependency == active) continue;
    peer.status.resync_suspended_dependency = active;
    apply_resync_suspension(peer);
    note_sync_progress(now, peer);  // the time until now ran (un)paused
    if (peer.status.connection == ConnectionState::connected) send_state(peer);
  }
  invariants();
}

bool Node::resync_holds_dependents() const {
  if (local_disk_detached()) return false;  // a device without a disk ends the chain
  for (const Peer& peer : configured_peers()) {
    switch (peer.status.replication) {
      case ReplicationState::wait_bitmap_source:  // starting: it holds them from the start
      case ReplicationState::wait_bitmap_target:
      case ReplicationState::sync_source:
      case ReplicationState::sync_target:
      case ReplicationState::paused_sync_source:
      case ReplicationState::paused_sync_target:
        return true;
      default:
        break;
    }
    if (peer.status.resync_suspended_user || peer.status.resync_suspended_peer ||
        peer.status.resync_suspended_dependency) {
      return true;
    }
  }
  return false;
}

// The peer's StateReport says whether its user paused the resync with us.
void Node::on_peer_pause_flag(Peer& peer, const wire::StateReport& state) {
  const bool paused = (state.uuid_flags & uuid_flag::resync_paused_by_user) != 0;
  if (paused == peer.status.resync_suspended_peer) return;
  peer.status.resync_suspended_peer = paused;
  apply_resync_suspension(peer);
}

// ---- new-current-uuid -------------------------------------------------------------------------

// DRBD's should_skip_initial_sync: the peer is Established with this just-created node.
bool Node::may_skip_initial_sync(const Peer& peer) const {
  return peer.status.connection == ConnectionState::connected && peer.state_received &&
         peer.status.replication == ReplicationState::established &&
         comparable_current(generations_.uuids.current) == uuid_just_created_value;
}

AdminResult Node::new_current_uuid(const NewCurrentUuid& command) {
  if (local_disk_detached()) {
    return {false, "ERR_NO_DISK",
            "new-current-uuid needs a local disk, and this node's disk is " +
                std::string(to_string(disk_state_))};
  }
  const bool just_created =
      comparable_current(generations_.uuids.current) == uuid_just_created_value;
  std::uint32_t skipping = 0;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) continue;
    if (command.clear_bitmap && may_skip_initial_sync(peer)) {
      skipping |= bit(peer.status.node_id);
      continue;
    }
    // DRBD's ERR_CONNECTED: a connected peer would keep the old generation.
    return {false, "ERR_CONNECTED",
            "new-current-uuid: connected to " + peer.status.name + " (replication " +
                std::string(to_string(peer.status.replication)) + "); " +
                (command.clear_bitmap && !just_created
                     ? "--clear-bitmap skips the initial sync only on a just-created node "
                       "(current UUID 4), disconnect first"
                     : "disconnect first")};
  }
  user_new_current_uuid(generations_.uuids, role_ == Role::primary, prng_.next_u64());
  actions_.push_back(Event{"new-current-uuid name:" + config_.resource_name +
                           " generations:" + generations_text(generations_.uuids) +
                           (command.clear_bitmap ? " clear-bitmap:yes" : " clear-bitmap:no")});
  if (command.clear_bitmap) skip_initial_sync(just_created, skipping);
  return {};
}

// --clear-bitmap: every bitmap is cleared (the data is declared identical); a just-created
// node becomes UpToDate, and so do the peers in `peers_mask`, which adopt our new current UUID
// when our StateReport with SKIP_INITIAL_SYNC arrives (on_peer_skipped_initial_sync).
void Node::skip_initial_sync(bool just_created, std::uint32_t peers_mask) {
  for (Peer& peer : configured_peers()) {
    if (peer.configured) peer.bitmap->clear_all();
  }
  if (activity_log_) queue_all_bitmap_pages();
  ClusterState proposed = cluster_state();
  if (just_created) proposed.disk = DiskState::up_to_date;
  for (const Peer& peer : configured_peers()) {
    if ((peers_mask & bit(peer.status.node_id)) == 0) continue;
    PeerState& view = proposed.peers[peer.status.node_id.value];
    if (view.disk >= DiskState::inconsistent && view.disk != DiskState::dunknown) {
      view.disk = DiskState::up_to_date;
    }
  }
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) continue;
    const bool skip = (peers_mask & bit(peer.status.node_id)) != 0;
    send_state(peer, skip ? uuid_flag::skip_initial_sync : 0);
  }
}

// The peer ran new-current-uuid --clear-bitmap while Established with us: a just-created node
// takes its current UUID, clears its bitmaps and becomes UpToDate without a resync.
void Node::on_peer_skipped_initial_sync(Peer& peer, const wire::StateReport& state) {
  if ((state.uuid_flags & uuid_flag::skip_initial_sync) == 0) return;
  if (!may_skip_initial_sync(peer) || local_disk_detached()) {
    actions_.push_back(Event{"skip-initial-sync-ignored name:" + config_.resource_name +
                             " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                             " conn-name:" + peer.status.name +
                             " generations:" + generations_text(generations_.uuids)});
    return;
  }
  receive_new_current_uuid(generations_.uuids, comparable_current(state.uuids.current), 0, 0,
                           false);
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    set_bitmap_uuid(generations_.uuids, node, 0);
  }
  for (Peer& other : configured_peers()) {
    if (other.configured) other.bitmap->clear_all();
  }
  if (activity_log_) queue_all_bitmap_pages();
  ClusterState proposed = cluster_state();
  proposed.disk = DiskState::up_to_date;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());
  DITTO_ASSERT(comparable_current(generations_.uuids.current) ==
               comparable_current(state.uuids.current));
  send_state_to_connected_peers();
}

// ---- detach -----------------------------------------------------------------------------------

AdminResult Node::detach() {
  if (local_disk_detached()) {
    return {false, "SS_IS_DISKLESS",
            "detach: the disk is already " + std::string(to_string(disk_state_))};
  }
  if (role_ == Role::primary) {
    bool up_to_date_peer = false;
    for (const Peer& peer : configured_peers()) {
      up_to_date_peer = up_to_date_peer ||
                        (peer.state_received &&
                         peer.status.connection == ConnectionState::connected &&
                         peer.status.disk == DiskState::up_to_date);
    }
    if (!up_to_date_peer) {
      return {false, "SS_NO_UP_TO_DATE_DISK",
              "detach: a Primary keeps its data only through an UpToDate peer, and none is "
              "connected (demote first)"};
    }
  }
  detach_local_disk(DiskState::detaching);
  DITTO_ASSERT(disk_state_ == DiskState::diskless);
  return {};
}

}  // namespace ditto::core
