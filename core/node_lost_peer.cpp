// Node: the lost-peer state change (drbd9-semantics.md §8.1's example, §1.3 step 4; DRBD's
// twopc_after_lost_peer, an empty cluster-wide state change whose commit recomputes quorum).
//
// A Primary that loses a connection cannot tell whether its other links still work: a
// partition breaks them all, but each is detected on its own, one by one. Counted as connected
// until then, the dead links would keep quorum for it, and it would start a new data
// generation for the writes the lost peer missed and acknowledge them, while no peer gets them
// and the other side of the partition promotes a node of its own: both sides moved on from one
// ancestor (swarm seed 173). So with quorum on, a Primary that loses a peer asks the peers it
// still sees (TwoPcPrepare, TwoPcChange::lost_peer; they answer yes, see below). Until each has
// answered or is gone as well, it starts no generation and its I/O waits (new writes and
// completions, as for suspend-io); then quorum counts only the peers that answered, and the
// I/O resumes after the new generation (quorum), fails (io-error without quorum) or stays
// frozen (suspend-io without quorum, or fencing). A peer that does not answer within
// twopc_timeout is dropped like a dead link.
//
// A participant answers once its own other links have answered a probe (TwoPcChange::probe) or
// were found dead, as DRBD forwards a state change through the mesh and answers when the nodes
// behind it did. The partition that cut the initiator off from its lost peer may have cut the
// participant off from others too, undetected yet: counted as present, they would keep the
// participant's quorum, which a diskless initiator takes as its own (quorum.cpp), and the
// initiator would acknowledge writes only the participant holds while the other side promotes
// (quorum+diskless swarm seed 2275). A StateReport goes before the answer, so the initiator
// counts the participant's quorum as it is then. Probes not answered within half of
// twopc_timeout (before the initiator gives up on us) are dropped like dead links.
#include <initializer_list>
#include <optional>
#include <utility>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

// Called by peer_lost before the connection leaves Connected (a peer that never finished its
// handshake was neither counted nor sent writes: nothing to ask about).
void Node::start_lost_peer_change(const Peer& lost) {
  const std::uint32_t lost_bit = bit(lost.status.node_id);
  if (lost_peer_) lost_peer_->waiting_mask &= ~lost_bit;
  if (!config_.quorum.enabled() || role_ != Role::primary) return;
  if (lost.status.connection != ConnectionState::connected) return;
  const std::uint32_t others = handshaken_peers_mask() & ~lost_bit;
  if (others == 0) return;  // nobody left to ask: quorum counts what is connected
  // A change still open asks again: the answers to it came before this loss and say nothing
  // of the links since (a partition is detected link by link; in diskless quorum swarm seed
  // 415 answers older than the second lost peer resumed at once the writes that peer missed).
  if (lost_peer_ && lost_peer_->timer_armed) cancel_timer(timer_lost_peer);
  lost_peer_ = LostPeerChange{prng_.next_u64(), others, false};
  send_lost_peer_prepares(others, *lost_peer_, wire::TwoPcChange::lost_peer);
}

// The empty state change `kind` (lost_peer or probe) to each peer in `peers`.
void Node::send_lost_peer_prepares(std::uint32_t peers, const LostPeerChange& change,
                                   wire::TwoPcChange kind) {
  for (const Peer& peer : configured_peers()) {
    if ((peers & bit(peer.status.node_id)) == 0) continue;
    actions_.push_back(
        Send{peer.status.node_id,
             wire::TwoPcPrepare{config_.node_id, change.transaction_id, kind, 0, 0, NodeId{}},
             std::nullopt});
  }
}

// A reply to our lost-peer state change or to our probe (true), else not ours to handle here
// (false).
bool Node::on_lost_peer_reply(const wire::TwoPcReply& reply, NodeId from) {
  for (std::optional<LostPeerChange>* change : {&lost_peer_, &lost_peer_probe_}) {
    if (!*change || (*change)->transaction_id != reply.transaction_id) continue;
    (*change)->waiting_mask &= ~bit(from);
    return true;
  }
  return false;
}

// At the end of the inputs that may answer or end it: once nobody is waited for, quorum (kept
// current at every lost connection) decides what the frozen I/O does.
void Node::progress_lost_peer_change(Instant now) {
  if (!lost_peer_) return;
  if (lost_peer_->waiting_mask != 0) {
    if (!lost_peer_->timer_armed) {
      arm_timer(timer_lost_peer, now + config_.twopc_timeout);
      lost_peer_->timer_armed = true;
    }
    return;
  }
  lost_peer_.reset();
  cancel_timer(timer_lost_peer);
  if (role_ != Role::primary) return;  // a demotion failed whatever was frozen
  if (quorum_suspends_io()) return;    // suspend-io without quorum, or fencing: resumed later
  if (have_quorum_) return resume_frozen_io();
  fail_frozen_io();  // io-error without quorum (§8.2)
}

// The peers that did not answer within twopc_timeout are treated as the dead links they are.
void Node::lost_peer_timed_out(Instant now) {
  if (!lost_peer_) return;
  drop_silent_peers(now, lost_peer_->waiting_mask,
                    "no answer to the lost-peer state change within twopc-timeout");
  DITTO_ASSERT(!lost_peer_ || lost_peer_->waiting_mask == 0);
  progress_lost_peer_change(now);
  apply_quorum_changes(now);
}

// The peers in `silent` that still have a transport are dropped like the dead links they are.
void Node::drop_silent_peers(Instant now, std::uint32_t silent, const std::string& reason) {
  for (Peer& peer : configured_peers()) {
    if ((silent & bit(peer.status.node_id)) == 0 || !peer.transport_up) continue;
    actions_.push_back(Disconnect{peer.status.node_id, reason});
    peer_lost(peer, ConnectionState::timeout);
    twopc_peer_lost(now, peer);
  }
}

// A peer's lost-peer state change: we probe our other links and answer when they did.
void Node::on_lost_peer_prepare(Instant now, Peer& peer, const wire::TwoPcPrepare& prepare) {
  peer.lost_peer_answer_due = prepare.transaction_id;
  std::uint32_t others = handshaken_peers_mask() & ~bit(peer.status.node_id);
  for (const Peer& other : configured_peers()) {
    if (other.lost_peer_answer_due) others &= ~bit(other.status.node_id);  // they just spoke
  }
  if (others == 0) return;  // answered at the end of this input (apply_quorum_changes)
  // A probe still out is asked again: its answers may predate the links lost since.
  lost_peer_probes_sent_ += 1;
  lost_peer_probe_ = LostPeerChange{lost_peer_probes_sent_, others, true};
  send_lost_peer_prepares(others, *lost_peer_probe_, wire::TwoPcChange::probe);
  arm_timer(timer_lost_peer_probe, now + Duration{config_.twopc_timeout.ns / 2});
}

// The links that did not answer our probe are treated as the dead links they are.
void Node::lost_peer_probe_timed_out(Instant now) {
  if (!lost_peer_probe_) return;
  drop_silent_peers(now, lost_peer_probe_->waiting_mask,
                    "no answer to a lost-peer probe within twopc-timeout / 2");
  DITTO_ASSERT(!lost_peer_probe_ || lost_peer_probe_->waiting_mask == 0);
  apply_quorum_changes(now);
}

// Once no probe is out, every lost-peer change waiting for us is answered, after a StateReport.
void Node::answer_lost_peer_changes() {
  if (lost_peer_probe_ && lost_peer_probe_->waiting_mask != 0) return;
  if (lost_peer_probe_) {
    lost_peer_probe_.reset();
    cancel_timer(timer_lost_peer_probe);
  }
  for (Peer& peer : configured_peers()) {
    if (!peer.lost_peer_answer_due) continue;
    send_state(peer);
    actions_.push_back(
        Send{peer.status.node_id,
             wire::TwoPcReply{peer.status.node_id, *peer.lost_peer_answer_due, wire::TwoPcVote::yes,
                              static_cast<std::int8_t>(StateChangeCode::success), 0},
             std::nullopt});
    peer.lost_peer_answer_due.reset();
  }
}

// What waited for quorum or for the lost-peer state change fails (on-no-quorum io-error).
void Node::fail_frozen_io() {
  const std::size_t count = quorum_suspended_completions_.size() + quorum_suspended_writes_.size();
  DITTO_ASSERT(statistics_.upper_pending >= count);
  statistics_.upper_pending -= static_cast<std::uint32_t>(count);
  for (const SuspendedCompletion& done : quorum_suspended_completions_) {
    actions_.push_back(
        CompleteClient{done.request, ClientStatus::io_error, std::nullopt, std::nullopt});
    if (done.payload) actions_.push_back(ReleasePayload{*done.payload});
  }
  for (const HeldWrite& write : quorum_suspended_writes_) {
    actions_.push_back(
        CompleteClient{write.request, ClientStatus::io_error, std::nullopt, std::nullopt});
    actions_.push_back(ReleasePayload{write.payload});
  }
  quorum_suspended_completions_.clear();
  quorum_suspended_writes_.clear();
}

}  // namespace ditto::core
