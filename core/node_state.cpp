// Node: the one path every state change takes (sanitize, check_transition, commit, events2
// lines), admin commands, and promotion as a two-phase commit with timers (§1.3 step 4).
#include <bit>
#include <utility>

#include "core/assert.h"
#include "core/node.h"
#include "core/overloaded.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

AdminResult admin_result(const StateChangeResult& result) {
  if (result.ok()) return {};
  return {false, to_string(result.code), result.message};
}

}  // namespace

// ---- The state-change path --------------------------------------------------------------------

ClusterState Node::cluster_state() const {
  ClusterState state;
  state.role = role_;
  state.disk = disk_state_;
  state.open_for_writing = !requests_.empty() || !writes_behind_peer_writes_.empty();
  state.allow_two_primaries = config_.allow_two_primaries;
  state.have_quorum = have_quorum_;
  state.fencing = fencing_enabled();
  state.verify_algorithm_configured = !config_.verify_algorithm.empty();
  // DRBD's allow-remote-read (default yes): reads go through UpToDate peers (node_read.cpp), so
  // a diskless client (`disk none`) may be Primary on a peer's data. Not yet a node whose disk
  // detached, nor one with an Inconsistent or Outdated disk: its generations are its disk's
  // (possibly stale) and its writes would have to go to its own disk as well (a SyncTarget
  // Primary), which the write path does not do; they are still refused (SS_NO_UP_TO_DATE_DISK).
  // A Primary whose disk detaches stays Primary (not worse), reading through its peers.
  state.allow_remote_read = config_.intentional_diskless;
  for (const Peer& peer : configured_peers()) {
    if (peer.transport_up && !peer.state_received) state.handshake_in_flight = true;
    PeerState& view = state.peers[peer.status.node_id.value];
    view.configured = true;
    view.connection = peer.status.connection;
    view.role = peer.status.role;
    view.replication = peer.status.replication;
    view.disk = peer.status.disk;
    view.resync_suspended = peer.status.resync_suspended_user ||
                            peer.status.resync_suspended_peer ||
                            peer.status.resync_suspended_dependency;
  }
  return state;
}

StateChangeResult Node::change_state(ClusterState proposed, bool hard, bool force) {
  sanitize(proposed);
  const ClusterState old = cluster_state();
  StateChangeResult result = check_transition(old, proposed, hard, force);
  if (result.ok() && !(old == proposed)) commit_state(old, proposed);
  return result;
}

// The only writer of role_, disk_state_ and the peers' connection, role, disk and replication
// state. Every committed change becomes events2 `change` lines (§13.3).
void Node::commit_state(const ClusterState& old, const ClusterState& next) {
  const bool may_promote_before = may_promote();
  const std::uint32_t targets_before = replication_targets_mask();
  const std::uint32_t score_before = promotion_score();
  role_ = next.role;
  disk_state_ = next.disk;
  if (role_ == Role::primary) lost_primary_node_ = no_node;  // we say who is weak now
  if (old.role != Role::primary && role_ == Role::primary && activity_log_) {
    // Bits set while Secondary are in no activity log: on disk before the first write.
    queue_all_bitmap_pages();
    writes_wait_for_bitmap_ = true;
  }
  if (disk_state_ == DiskState::up_to_date) restarted_behind_ = false;
  if (disk_state_ != DiskState::inconsistent) newer_copy_node_ = no_node;
  for (Peer& peer : configured_peers()) {
    const PeerState& view = next.peers[peer.status.node_id.value];
    peer.status.connection = view.connection;
    peer.status.role = view.role;
    peer.status.replication = view.replication;
    peer.status.disk = view.disk;
    const bool target = view.replication == ReplicationState::sync_target ||
                        view.replication == ReplicationState::paused_sync_target;
    if (!target) stop_resync(peer);
  }
  // Quorum first: requests completed below (released from lost peers) must see it (§8.2).
  update_quorum();
  if (old.disk != next.disk) emit_device_event();
  for (const Peer& peer : configured_peers()) {
    const PeerState& was = old.peers[peer.status.node_id.value];
    const PeerState& now = next.peers[peer.status.node_id.value];
    if (was.connection != now.connection || was.role != now.role) emit_connection_event(peer);
    if (was.replication != now.replication || was.disk != now.disk) {
      emit_peer_device_event(peer);
    }
  }
  if (old.role != next.role || may_promote_before != may_promote() ||
      score_before != promotion_score()) {
    emit_resource_event();
  }
  fencing_after_commit(old, next);  // before lost peers release requests: they may freeze
  release_requests_from_non_targets();
  send_in_flight_writes_to_new_targets(targets_before);
  // A Primary tells its peers when the set of nodes it replicates to changes (weak_nodes).
  if (role_ == Role::primary && targets_before != replication_targets_mask()) {
    send_state_to_connected_peers();
  }
}

// on-io-error detach (DRBD's default): the disk goes Failed, then Diskless, and the peers learn
// it from our StateReport. A Primary stays Primary and writes through its UpToDate peers; with
// none, its writes fail (io_error), and reads are refused (no_data) either way. The node never
// claims UpToDate again without a resync: it restarts Outdated (the driver's choice).
// A graceful detach (Detach, node_sync_admin.cpp) takes the same path through Detaching.
void Node::detach_local_disk(DiskState first_step) {
  DITTO_ASSERT(!local_disk_detached());
  DITTO_ASSERT(first_step == DiskState::failed || first_step == DiskState::detaching);
  for (const DiskState step : {first_step, DiskState::diskless}) {
    ClusterState proposed = cluster_state();
    proposed.disk = step;
    // Resyncs end with the disk (a SyncSource or SyncTarget keeps its disk at least
    // Inconsistent otherwise); the peers learn it from our Diskless StateReport.
    for (PeerState& peer : proposed.peers) {
      if (peer.replication > ReplicationState::established) {
        peer.replication = ReplicationState::established;
      }
    }
    const StateChangeResult result = change_state(proposed, true);
    DITTO_ASSERT(result.ok());  // no hard rule keeps a disk from failing
  }
  DITTO_ASSERT(disk_state_ == DiskState::diskless);
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected && peer.status.role == Role::primary) {
      detached_under_primary_ = true;
    }
  }
  if (role_ == Role::primary) detached_under_primary_ = true;
  // Writes whose completion waits for quorum were on this disk: sent again at the resume.
  for (SuspendedCompletion& done : quorum_suspended_completions_) done.no_up_to_date_copy = true;
  reset_activity_log();
  if (role_ == Role::primary) {
    // A local disk failure while Primary flags a new data generation (§3.2), lazily: the next
    // write starts it and carries it to the peers (a diskless Primary's P_CURRENT_UUID).
    request_new_current_uuid(generations_);
    // A write the disk did not store (it failed it, or it was still in flight to it) that a
    // peer stored is acknowledged without starting that generation: the disk lacks it.
    for (const auto& [sequence, request] : requests_) note_write_the_disk_missed(request);
  }
  send_state_to_connected_peers();
}

// A write of this Primary that a peer stored (protocol B or C: a protocol A peer may yet lose
// it) and its detached disk did not: the disk is no longer whole for the generation it holds.
void Node::note_write_the_disk_missed(const Request& request) {
  if (role_ != Role::primary || request.kind != RequestKind::write || request.local_ok) return;
  if (config_.protocol == Protocol::a || request.peers_ok_mask == 0) return;
  detached_disk_missed_writes_ = true;
}

void Node::on_local_disk_failed(Instant now) {
  (void)now;
  if (!local_disk_detached()) detach_local_disk();
  invariants();
}

void Node::set_connection(Peer& peer, ConnectionState state) {
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].connection = state;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());  // our own walk follows DRBD's connection-state rules
}

// ---- Admin ------------------------------------------------------------------------------------

AdminResult Node::on_admin(Instant now, const AdminCommand& command) {
  AdminResult result = std::visit(Overloaded{
                                      [&](const Promote& request) { return promote(now, request); },
                                      [&](const Demote&) { return demote(); },
                                      [&](const DisconnectPeer& request) {
                                        return disconnect_peer(now, request);
                                      },
                                      [&](const ConnectPeer& request) {
                                        return connect_peer(request);
                                      },
                                      [&](const Down&) { return down(now); },
                                      [&](const ResumeIo&) { return resume_io(); },
                                      [&](const Verify& request) {
                                        return start_verify(now, request);
                                      },
                                      [&](const StopVerify& request) {
                                        return stop_verify(request);
                                      },
                                      [&](const Invalidate& request) {
                                        return invalidate(request);
                                      },
                                      [&](const InvalidateRemote& request) {
                                        return invalidate_remote(request);
                                      },
                                      [&](const PauseSync& request) {
                                        return pause_sync(now, request);
                                      },
                                      [&](const ResumeSync& request) {
                                        return resume_sync(now, request);
                                      },
                                      [&](const NewCurrentUuid& request) {
                                        return new_current_uuid(request);
                                      },
                                      [&](const Detach&) { return detach(); },
                                      [&](const Attach& request) { return attach(request); },
                                      [&](const ChangeOptions& request) {
                                        return change_options(request);
                                      },
                                      [&](const Resize& request) {
                                        return resize(now, request);
                                      },
                                  },
                                  command);
  apply_quorum_changes(now);
  pump_activity_log();
  invariants();
  return result;
}

// `primary --force` declares an attached, not UpToDate disk UpToDate (§1.7 invariant 1).
StateChangeResult Node::check_promotion(bool force, ClusterState& proposed) const {
  const ClusterState old = cluster_state();
  proposed = old;
  proposed.role = Role::primary;
  if (force && old.disk >= DiskState::inconsistent && old.disk != DiskState::dunknown) {
    proposed.disk = DiskState::up_to_date;
  }
  sanitize(proposed);
  return check_transition(old, proposed, false, force);
}

AdminResult Node::promote(Instant now, const Promote& request) {
  if (role_ == Role::primary) return {};
  if (promotion_) return {true, "", "a promotion is already in progress", true};
  if (resize_) {
    return {false, to_string(StateChangeCode::concurrent_state_change),
            "a resize is in progress"};
  }
  promotion_outcome_.reset();
  ClusterState proposed;
  const StateChangeResult check = check_promotion(request.force, proposed);
  // With fencing, SS_PRIMARY_NOP sends the attempt to fence-peer first (node_fencing.cpp).
  const bool fencing_may_help =
      fencing_enabled() && check.code == StateChangeCode::primary_nop;
  if (!check.ok() && check.code != StateChangeCode::in_transient_state && !fencing_may_help) {
    return admin_result(check);
  }
  promotion_ = Promotion{};
  promotion_->force = request.force;
  // Retries may outlast one foreign transaction that times out (twopc_timeout) plus our own.
  promotion_->give_up_at = now + Duration{2 * config_.twopc_timeout.ns};
  start_promotion_attempt(now);
  if (!promotion_) {
    DITTO_ASSERT(promotion_outcome_.has_value());
    return *promotion_outcome_;
  }
  promotion_->announced = true;
  if (promotion_->fencing_wait) {
    return {true, "",
            "promotion in progress: fence-peer runs for " +
                std::to_string(std::popcount(promotion_->fencing_mask)) + " peers",
            true};
  }
  return {true, "",
          "promotion in progress: waiting for " +
              std::to_string(std::popcount(promotion_->round.waiting_mask)) + " peers",
          true};
}

AdminResult Node::demote() {
  if (role_ != Role::primary) {
    if (!promotion_) return {};
    return {false, to_string(StateChangeCode::concurrent_state_change),
            "a promotion is in progress"};
  }
  fail_suspended_io();  // frozen for lack of quorum: they fail with the demotion (§8.2)
  ClusterState proposed = cluster_state();
  proposed.role = Role::secondary;
  if (current_epoch_writes_ > 0) close_epoch();  // demotion starts a new epoch (§2.2)
  const StateChangeResult result = change_state(proposed, false);
  if (!result.ok()) return admin_result(result);
  clear_primary_bit(generations_.uuids);
  generations_.new_current_pending = false;
  send_state_to_connected_peers();
  return {};
}

// ---- Promotion: initiator ---------------------------------------------------------------------

void Node::start_promotion_attempt(Instant now) {
  DITTO_ASSERT(promotion_.has_value());
  Promotion& promotion = *promotion_;
  promotion.backing_off = false;
  promotion.round.retry = false;
  promotion.round.refusal = {};
  if (prepared_) return back_off(now);  // we promised another initiator not to change
  ClusterState proposed;
  const StateChangeResult check = check_promotion(promotion.force, proposed);
  if (!check.ok()) {
    if (check.code == StateChangeCode::in_transient_state) return back_off(now);
    if (fence_for_promotion(check)) return;  // tried again when the handlers answered
    return finish_promotion(check);
  }
  const std::uint32_t peers = handshaken_peers_mask();
  if (peers == 0) {
    const bool committed = commit_promotion(promotion.force);
    DITTO_ASSERT(committed);
    return finish_promotion({});
  }
  send_prepare(now, promotion.round, peers,
               wire::TwoPcPrepare{config_.node_id, 0, wire::TwoPcChange::promote, 0, 0, NodeId{}});
}

// ---- The shared pieces of a two-phase commit this node initiates ------------------------------

void Node::send_prepare(Instant now, TwoPcRound& round, std::uint32_t peers,
                        wire::TwoPcPrepare prepare) {
  DITTO_ASSERT(peers != 0 && prepare.initiator == config_.node_id);
  round = TwoPcRound{};
  round.transaction_id = prng_.next_u64();
  round.participants_mask = peers;
  round.waiting_mask = peers;
  prepare.transaction_id = round.transaction_id;
  for (const Peer& peer : configured_peers()) {
    if ((peers & bit(peer.status.node_id)) == 0) continue;
    actions_.push_back(Send{peer.status.node_id, prepare, std::nullopt});
  }
  arm_timer(timer_twopc_initiator, now + config_.twopc_timeout);
}

// Records a reply of the current attempt; true when it was the last one awaited.
bool Node::note_reply(TwoPcRound& round, const Peer& peer, const wire::TwoPcReply& reply) {
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  if (round.transaction_id != reply.transaction_id || (round.waiting_mask & peer_bit) == 0) {
    return false;  // a late reply to an attempt we already decided
  }
  round.waiting_mask &= ~peer_bit;
  if (reply.vote == wire::TwoPcVote::retry) round.retry = true;
  if (reply.vote == wire::TwoPcVote::no && round.refusal.ok()) {
    auto code = static_cast<StateChangeCode>(reply.code);
    if (code == StateChangeCode::success) code = StateChangeCode::concurrent_state_change;
    round.refusal = {code, "peer " + peer.status.name + " refused: " + to_string(code)};
  }
  if (reply.vote == wire::TwoPcVote::yes &&
      (round.smallest_usable_sectors == 0 ||
       reply.usable_size_sectors < round.smallest_usable_sectors) &&
      reply.usable_size_sectors != 0) {
    round.smallest_usable_sectors = reply.usable_size_sectors;
    round.smallest_node = peer.status.node_id;
  }
  return round.waiting_mask == 0;
}

void Node::send_decision(TwoPcRound& round, bool commit, std::uint64_t size_sectors) {
  for (const Peer& peer : configured_peers()) {
    if ((round.participants_mask & bit(peer.status.node_id)) == 0) continue;
    if (commit) {
      const wire::TwoPcCommit decision{config_.node_id, round.transaction_id, size_sectors};
      actions_.push_back(Send{peer.status.node_id, decision, std::nullopt});
    } else {
      actions_.push_back(Send{peer.status.node_id,
                              wire::TwoPcAbort{config_.node_id, round.transaction_id},
                              std::nullopt});
    }
  }
  round.participants_mask = 0;
}

// A participant that disconnects no longer counts; true when it was the last one awaited.
bool Node::round_lost_peer(TwoPcRound& round, const Peer& peer) {
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  if ((round.participants_mask & peer_bit) == 0) return false;
  round.participants_mask &= ~peer_bit;
  const bool was_waiting = (round.waiting_mask & peer_bit) != 0;
  round.waiting_mask &= ~peer_bit;
  return was_waiting && round.waiting_mask == 0;
}

// Randomized backoff: two initiators that refused each other retry at different times. Arms
// the retry of an aborted attempt; false (nothing armed) when it would come after give_up_at.
bool Node::arm_twopc_retry(Instant now, Instant give_up_at) {
  const auto high = static_cast<std::uint64_t>(config_.twopc_retry_timeout.ns);
  const Duration delay{static_cast<std::int64_t>(prng_.between(high / 2, high))};
  if (now + delay >= give_up_at) return false;
  arm_timer(timer_twopc_initiator, now + delay);
  return true;
}

void Node::on_twopc_reply(Instant now, Peer& peer, const wire::TwoPcReply& reply) {
  if (reply.initiator != config_.node_id) {
    return protocol_error(
        peer, "TwoPcReply for a transaction of node " + std::to_string(reply.initiator.value));
  }
  if (on_lost_peer_reply(reply, peer.status.node_id)) return;
  if (resize_ && !resize_->backing_off && note_reply(resize_->round, peer, reply)) {
    return decide_resize(now);
  }
  if (!promotion_ || promotion_->backing_off) return;
  if (note_reply(promotion_->round, peer, reply)) decide_promotion(now);
}

void Node::decide_promotion(Instant now) {
  DITTO_ASSERT(promotion_.has_value() && promotion_->round.waiting_mask == 0);
  if (!promotion_->round.refusal.ok()) {
    abort_participants();
    return finish_promotion(promotion_->round.refusal);
  }
  if (promotion_->round.retry) {
    abort_participants();
    return back_off(now);
  }
  ClusterState proposed;
  const StateChangeResult check = check_promotion(promotion_->force, proposed);
  if (!check.ok()) {
    abort_participants();
    if (check.code == StateChangeCode::in_transient_state) return back_off(now);
    return finish_promotion(check);
  }
  send_decision(promotion_->round, true);
  const bool committed = commit_promotion(promotion_->force);
  DITTO_ASSERT(committed);
  finish_promotion({});
}

void Node::back_off(Instant now) {
  DITTO_ASSERT(promotion_.has_value());
  if (!arm_twopc_retry(now, promotion_->give_up_at)) {
    return finish_promotion({StateChangeCode::concurrent_state_change,
                             "concurrent state changes kept the promotion from committing "
                             "within twice twopc-timeout"});
  }
  promotion_->backing_off = true;
  promotion_->round.participants_mask = 0;
  promotion_->round.waiting_mask = 0;
}

void Node::abort_participants() {
  DITTO_ASSERT(promotion_.has_value());
  send_decision(promotion_->round, false);
}

bool Node::commit_promotion(bool force) {
  ClusterState proposed;
  if (!check_promotion(force, proposed).ok()) return false;
  const StateChangeResult result = change_state(proposed, false, force);
  DITTO_ASSERT(result.ok() && role_ == Role::primary);
  // A new data generation starts before the first write in the Primary role (§3.2, lazily).
  request_new_current_uuid(generations_);
  send_state_to_connected_peers();
  resync_outdated_peers();
  return true;
}

void Node::finish_promotion(StateChangeResult result) {
  DITTO_ASSERT(promotion_.has_value());
  const bool announced = promotion_->announced;
  promotion_.reset();
  cancel_timer(timer_twopc_initiator);
  promotion_outcome_ = admin_result(result);
  if (announced) {
    std::string line =
        "response primary name:" + config_.resource_name + " result:" + to_string(result.code);
    if (!result.ok()) line += " message:\"" + result.message + "\"";
    actions_.push_back(Event{std::move(line)});
  }
  release_held_writes(role_ == Role::primary);
}

// A participant that disconnects no longer counts: the two-primaries rule is about connected
// nodes (an unreachable one is the business of fencing and quorum).
// A resize needs every peer: it fails when one goes (decide_resize finds it disconnected).
void Node::twopc_peer_lost(Instant now, Peer& peer) {
  if (resize_ && !resize_->backing_off && round_lost_peer(resize_->round, peer)) {
    decide_resize(now);
  }
  if (!promotion_ || promotion_->backing_off) return;
  if (round_lost_peer(promotion_->round, peer)) decide_promotion(now);
}

// ---- Promotion: participant -------------------------------------------------------------------

void Node::on_twopc_prepare(Instant now, Peer& peer, const wire::TwoPcPrepare& prepare) {
  if (prepare.initiator != peer.status.node_id) {
    return protocol_error(peer, "TwoPcPrepare on behalf of node " +
                                    std::to_string(prepare.initiator.value) +
                                    "; only direct peers initiate");
  }
  wire::TwoPcReply reply{prepare.initiator, prepare.transaction_id, wire::TwoPcVote::yes,
                         static_cast<std::int8_t>(StateChangeCode::success), 0};
  if (prepare.change == wire::TwoPcChange::probe) {
    // A lost-peer participant asks whether this link still answers (node_lost_peer.cpp).
    actions_.push_back(Send{peer.status.node_id, reply, std::nullopt});
    return;
  }
  if (prepare.change == wire::TwoPcChange::lost_peer) {
    return on_lost_peer_prepare(now, peer, prepare);
  }
  if (prepare.change == wire::TwoPcChange::resize) return on_resize_prepare(now, peer, prepare);
  if (initiating_twopc() || (prepared_ && !prepared_for(prepare))) {
    reply.vote = wire::TwoPcVote::retry;
  } else {
    ClusterState proposed = cluster_state();
    proposed.peers[peer.status.node_id.value].role = Role::primary;
    sanitize(proposed);
    const StateChangeResult check = check_transition(cluster_state(), proposed, false);
    if (check.ok()) {
      prepared_ = Prepared{prepare.initiator, prepare.transaction_id, prepare.change, prepare};
      arm_timer(timer_twopc_participant, now + config_.twopc_timeout);
    } else {
      reply.vote = wire::TwoPcVote::no;
      reply.code = static_cast<std::int8_t>(check.code);
    }
  }
  actions_.push_back(Send{peer.status.node_id, reply, std::nullopt});
}

void Node::on_twopc_decision(Peer& peer, NodeId initiator, std::uint64_t transaction_id,
                             bool commit, std::uint64_t size_sectors) {
  // Anything but our open transaction is late (we timed it out): the initiator's StateReport
  // tells us its role either way.
  if (!prepared_ || prepared_->initiator != initiator || initiator != peer.status.node_id ||
      prepared_->transaction_id != transaction_id) {
    return;
  }
  const Prepared prepared = *prepared_;
  prepared_.reset();
  cancel_timer(timer_twopc_participant);
  if (!commit) return;
  if (prepared.change == wire::TwoPcChange::resize) {
    // A yes vote promised this size; a commit for anything else is the initiator's bug.
    const std::uint64_t usable_sectors = usable_size_bytes() / sector_size_bytes;
    if (prepared.checking_disk || size_sectors < size_bytes_ / sector_size_bytes ||
        (usable_sectors != 0 && size_sectors > usable_sectors)) {
      return protocol_error(peer, "TwoPcCommit of a resize to " + std::to_string(size_sectors) +
                                      " sectors this node did not agree to");
    }
    const bool assume_clean = (prepared.prepare.flags & wire::twopc_flag_assume_clean) != 0;
    return commit_resize(size_sectors, assume_clean, prepared.prepare.resync_source);
  }
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].role = Role::primary;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());
}

// ---- Handlers ---------------------------------------------------------------------------------

void Node::on_helper_done(Instant now, HelperCallId call, int exit_code) {
  // Only fence-peer results are awaited (node_fencing.cpp); split-brain and unfence-peer
  // helpers are notifications.
  if (on_fence_peer_done(call, exit_code)) apply_quorum_changes(now);
  invariants();
}

// ---- Timers -----------------------------------------------------------------------------------

void Node::arm_timer(TimerId timer, Instant deadline) {
  timers_armed_[timer.value] = deadline;
  actions_.push_back(ArmTimer{timer, deadline});
}

void Node::cancel_timer(TimerId timer) {
  if (timers_armed_.erase(timer.value) == 0) return;
  actions_.push_back(CancelTimer{timer});
}

void Node::on_timer(Instant now, TimerId timer) {
  auto found = timers_armed_.find(timer.value);
  if (found == timers_armed_.end()) return invariants();  // cancelled or re-armed earlier
  timers_armed_.erase(found);
  if (timer.value >= timer_resync_step_base &&
      timer.value <= timer_resync_step_base + node_id_max) {
    // One step timer per peer: a resync as SyncTarget or an online verify as VerifyS.
    const NodeId peer{static_cast<std::uint8_t>(timer.value - timer_resync_step_base)};
    if (peers_[peer.value].status.replication == ReplicationState::verify_source) {
      on_verify_step(now, peers_[peer.value]);
    } else {
      on_resync_step(now, peer);
    }
  } else if (timer.value >= timer_ahead_resync_base &&
             timer.value <= timer_ahead_resync_base + node_id_max) {
    on_ahead_resync_timer(NodeId{static_cast<std::uint8_t>(timer.value - timer_ahead_resync_base)});
  } else if (timer == timer_twopc_participant) {
    prepared_.reset();  // the initiator never decided; stop blocking other changes
  } else if (timer == timer_lost_peer) {
    if (lost_peer_) lost_peer_->timer_armed = false;
    lost_peer_timed_out(now);
  } else if (timer == timer_lost_peer_probe) {
    lost_peer_probe_timed_out(now);
  } else if (timer == timer_twopc_initiator && resize_) {
    resize_timer(now);
  } else if (timer == timer_twopc_initiator && promotion_) {
    if (promotion_->backing_off) {
      start_promotion_attempt(now);
    } else {
      abort_participants();
      finish_promotion(
          {StateChangeCode::timeout, "peers did not answer the promotion within twopc-timeout"});
    }
  }
  pump_activity_log();
  invariants();
}

// ---- Events (drbdsetup events2 shapes, §13.3) -------------------------------------------------

void Node::emit_resource_event() {
  actions_.push_back(Event{"change resource name:" + config_.resource_name +
                           " role:" + std::string(to_string(role_)) +
                           " may_promote:" + (may_promote() ? "yes" : "no") +
                           " promotion_score:" + std::to_string(promotion_score())});
}

void Node::emit_device_event() {
  actions_.push_back(Event{"change device name:" + config_.resource_name +
                           " volume:0 minor:0 disk:" + std::string(to_string(disk_state_))});
}

void Node::emit_connection_event(const Peer& peer) {
  actions_.push_back(Event{"change connection name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name +
                           " connection:" + std::string(to_string(peer.status.connection)) +
                           " role:" + std::string(to_string(peer.status.role))});
}

void Node::emit_peer_device_event(const Peer& peer, bool show_suspension) {
  const std::string suspended = peer.status.resync_suspended_text();
  actions_.push_back(Event{"change peer-device name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name + " volume:0 replication:" +
                           std::string(to_string(peer.status.replication)) +
                           " peer-disk:" + std::string(to_string(peer.status.disk)) +
                           (show_suspension || suspended != "no"
                                ? " resync-suspended:" + suspended
                                : std::string())});
}

}  // namespace ditto::core
