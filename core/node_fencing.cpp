// Node: fencing (drbd9-semantics.md §7), with NodeConfig::fencing resource-only or
// resource-and-stonith (dont-care, the default, does none of this):
// - a Primary that loses the connection to a peer with data (its disk becomes DUnknown) runs
//   fence-peer for it (CallHelper with the peer); with resource-and-stonith its client I/O is
//   frozen from that moment (events2 `suspended:fencing`; writes and completions wait in the
//   queues quorum suspension uses, node_quorum.cpp) and no new data generation starts;
// - a promotion refused because a peer is neither connected nor known Outdated (SS_PRIMARY_NOP,
//   the rule in core/state.cpp) runs fence-peer for each such peer first, once, and is tried
//   again when every handler answered; it is refused if one still is not fenced;
// - the exit code (core/fencing.h): 3 records the peer Inconsistent, 4 and 7 Outdated, 5
//   Outdated if this node is UpToDate, 6 outdates this node (a soft change: a Primary keeps its
//   data), anything else is a broken handler and changes nothing;
// - a result is discarded when the connection came back while the handler ran (each peer
//   remembers the call it waits for; a reconnect forgets it);
// - frozen I/O resumes when every peer is connected again or known Outdated or worse, after the
//   handshake (the pending new data generation is made first), or with the administrator's
//   ResumeIo; a broken handler leaves it frozen until one of them;
// - unfence-peer runs (a notification) when a fenced peer is connected and UpToDate again with
//   this node UpToDate, after the resync that follows.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

// Called by commit_state with the committed change, before requests waiting for lost peers are
// released: with resource-and-stonith their completions must already be frozen.
void Node::fencing_after_commit(const ClusterState& old, const ClusterState& next) {
  for (Peer& peer : configured_peers()) {
    const std::uint32_t peer_bit = bit(peer.status.node_id);
    const PeerState& was = old.peers[peer.status.node_id.value];
    const PeerState& now = next.peers[peer.status.node_id.value];
    if (now.connection == ConnectionState::connected) {
      // The connection is back: whatever a running handler says is out of date.
      peer.fence_call.reset();
      if (promotion_) promotion_->fencing_mask &= ~peer_bit;
      if (peer.fenced && now.disk == DiskState::up_to_date && next.disk == DiskState::up_to_date) {
        peer.fenced = false;
        emit_helper_call(peer, "unfence-peer", "");
      }
      continue;
    }
    if (!fencing_enabled() || next.role != Role::primary || peer.fence_call) continue;
    const bool lost = was.connection == ConnectionState::connected;
    if (lost && was.disk >= DiskState::consistent && now.disk == DiskState::dunknown) {
      start_fence_peer(peer);
    }
  }
}

HelperCallId Node::start_fence_peer(Peer& peer) {
  DITTO_ASSERT(fencing_enabled());
  DITTO_ASSERT(peer.status.connection != ConnectionState::connected);
  const HelperCallId call = emit_helper_call(peer, "fence-peer", "");
  peer.fence_call = call;
  if (config_.fencing == FencingPolicy::resource_and_stonith && role_ == Role::primary &&
      !fencing_suspended_) {
    fencing_suspended_ = true;
    actions_.push_back(Event{"change resource name:" + config_.resource_name + " suspended:" +
                             std::string(suspended_reason())});
  }
  return call;
}

// A promotion check failed: with fencing, and SS_PRIMARY_NOP the reason, fence-peer runs for
// every unknown, not Outdated peer before the one retry. True when the promotion now waits.
bool Node::fence_for_promotion(const StateChangeResult& check) {
  DITTO_ASSERT(promotion_.has_value());
  if (!fencing_enabled() || check.code != StateChangeCode::primary_nop) return false;
  if (promotion_->fencing_tried) return false;
  promotion_->fencing_tried = true;
  for (Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected) continue;
    if (peer.status.disk <= DiskState::outdated) continue;
    if (!peer.fence_call) start_fence_peer(peer);
    promotion_->fencing_mask |= bit(peer.status.node_id);
  }
  promotion_->fencing_wait = promotion_->fencing_mask != 0;
  return promotion_->fencing_wait;
}

// The exit code of a fence-peer call; false when no peer waits for `call` (a notification, or
// a result discarded because the connection came back).
bool Node::on_fence_peer_done(HelperCallId call, int exit_code) {
  Peer* fenced = nullptr;
  for (Peer& peer : configured_peers()) {
    if (peer.fence_call == call) fenced = &peer;
  }
  if (fenced == nullptr) return false;
  Peer& peer = *fenced;
  DITTO_ASSERT(peer.status.connection != ConnectionState::connected);
  peer.fence_call.reset();
  const FenceOutcome outcome = fence_peer_outcome(exit_code, disk_state_);
  actions_.push_back(Event{"response helper name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name +
                           " volume:0 helper:fence-peer status:" + std::to_string(exit_code) +
                           " meaning:" + std::string(outcome.meaning)});
  apply_fence_outcome(peer, outcome);
  if (promotion_) promotion_->fencing_mask &= ~bit(peer.status.node_id);
  return true;
}

void Node::apply_fence_outcome(Peer& peer, const FenceOutcome& outcome) {
  if (outcome.peer_disk) {
    // Quorum counts a disconnected peer by its last known disk: a fenced one as Outdated.
    peer.last_known_disk = *outcome.peer_disk;
    peer.fenced = true;
    ClusterState proposed = cluster_state();
    proposed.peers[peer.status.node_id.value].disk = *outcome.peer_disk;
    // A disconnected peer's disk is ours to record (an intentionally diskless peer's is not:
    // it has no bitmap slot; the rules refuse that).
    const StateChangeResult result = change_state(proposed, true);
    DITTO_ASSERT(!result.ok() || peer.status.disk == *outcome.peer_disk);
  }
  if (outcome.outdate_self && disk_state_ >= DiskState::consistent &&
      disk_state_ != DiskState::dunknown) {
    // Soft: a Primary does not give up its UpToDate data (SS_NO_UP_TO_DATE_DISK); a node on
    // its way to promotion does, and its promotion is then refused for that.
    ClusterState proposed = cluster_state();
    proposed.disk = DiskState::outdated;
    (void)change_state(proposed, false);
  }
}

// Every peer is connected, or known Outdated or worse: frozen I/O may resume.
bool Node::fencing_resolved() const {
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected) continue;
    if (peer.fence_call || peer.status.disk > DiskState::outdated) return false;
  }
  return true;
}

// At the end of every input that can resolve fencing (node_quorum.cpp apply_quorum_changes).
void Node::resume_after_fencing(Instant now) {
  if (promotion_ && promotion_->fencing_wait && promotion_->fencing_mask == 0) {
    promotion_->fencing_wait = false;
    start_promotion_attempt(now);
  }
  if (!fencing_suspended_ || !fencing_resolved()) return;
  // A connection that came back resumes once its handshake is over (as quorum does).
  if (role_ == Role::primary && handshake_busy()) return;
  fencing_suspended_ = false;
  actions_.push_back(Event{"change resource name:" + config_.resource_name + " suspended:" +
                           std::string(suspended_reason())});
  if (role_ == Role::primary && !quorum_suspends_io()) resume_frozen_io();
}

AdminResult Node::resume_io() {
  if (!fencing_suspended_) return {};
  fencing_suspended_ = false;
  actions_.push_back(Event{"change resource name:" + config_.resource_name + " suspended:" +
                           std::string(suspended_reason())});
  if (role_ == Role::primary && !quorum_suspends_io()) resume_frozen_io();
  return {};
}

}  // namespace ditto::core
