// Node: quorum (drbd9-semantics.md §8). The input of the pure computation (core/quorum.h) is
// gathered at every committed state change; its consequences:
// - promotion without quorum is refused (SS_NO_QUORUM, the rule in core/state.cpp);
// - a Primary without quorum fails new writes and writes that complete (on-no-quorum io-error),
//   or freezes them (suspend-io) until quorum returns, or fails them when it demotes; it starts
//   no new data generation (the pending one is made when quorum returns), so a partition that
//   promoted and moved on stays the newer side;
// - a Primary frozen without quorum that meets a newer Primary demotes itself with
//   on-suspended-primary-outdated force-secondary (else the connection is refused);
// - the quorum state is visible: events2 `quorum:yes|no` and `suspended:quorum`, and every
//   StateReport says whether the sender has quorum (a diskless node relies on that, and a split
//   brain found at the handshake resolves toward the side with quorum);
// - `down` leaves gracefully: the peers learn it first and stop counting this node (last man
//   standing), where a crash or a partition leaves it counted.
#include <utility>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {

// ditto's own UUID flags (bits 40 and up, clear of DRBD's) must not share a bit: the handshake
// compares the flags without the quorum ones (a shared bit once kept restarted nodes Connecting).
static_assert((quorum_flag::all & uuid_flag::restarted_behind) == 0);
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

const char* yes_no(bool value) {
  return value ? "yes" : "no";
}

}  // namespace

QuorumInput Node::quorum_input() const {
  QuorumInput input;
  input.settings = config_.quorum;
  input.disk = disk_state_;
  input.intentional_diskless = config_.intentional_diskless;
  input.had_quorum = have_quorum_;
  for (const Peer& peer : peers_) {
    if (!peer.configured) continue;
    const NodeId id = peer.status.node_id;
    input.peers_mask |= bit(id);
    QuorumPeer& view = input.peers[id.value];
    const bool connected = peer.status.connection == ConnectionState::connected;
    view.connected = connected;
    view.disk = connected ? peer.status.disk : peer.last_known_disk;
    view.intentional_diskless = peer.intentional_diskless;
    view.left_gracefully = !connected && peer.left_gracefully;
    view.reports_quorum = connected && peer.reports_quorum;
  }
  return input;
}

bool Node::io_suspended_for_quorum() const {
  return role_ == Role::primary && !have_quorum_ &&
         config_.quorum.on_no_quorum == OnNoQuorum::suspend_io;
}

std::string_view Node::suspended_reason() const {
  const bool quorum = io_suspended_for_quorum();
  if (io_suspended_for_fencing()) return quorum ? "fencing,quorum" : "fencing";
  return quorum ? "quorum" : "no";
}

bool Node::handshake_busy() const {
  for (const Peer& peer : peers_) {
    if (!peer.configured || !peer.transport_up) continue;
    if (!peer.state_received) return true;
    const ReplicationState state = peer.status.replication;
    if (state == ReplicationState::wait_bitmap_source ||
        state == ReplicationState::wait_bitmap_target) {
      return true;
    }
  }
  return false;
}

// Frozen I/O, for lack of quorum, for fencing (node_fencing.cpp) or while the peers confirm a
// lost one: all wait in the same queues.
bool Node::quorum_suspends_io() const {
  return io_suspended_for_quorum() || io_suspended_for_fencing() || confirming_lost_peer();
}

// Recomputes quorum (after every committed state change and every peer report). Only records
// the outcome and reports it; apply_quorum_changes acts on it once the input is handled.
void Node::update_quorum() {
  const bool before = have_quorum_;
  const bool suspended_before = io_suspended_for_quorum();
  quorum_outcome_ = compute_quorum(quorum_input());
  have_quorum_ = quorum_outcome_.have_quorum;
  DITTO_ASSERT(have_quorum_ || config_.quorum.enabled());
  if (have_quorum_ != before) {
    quorum_changed_ = true;
    actions_.push_back(Event{"change device name:" + config_.resource_name +
                             " volume:0 minor:0 quorum:" + yes_no(have_quorum_)});
  }
  if (suspended_before != io_suspended_for_quorum()) {
    actions_.push_back(Event{"change resource name:" + config_.resource_name +
                             " suspended:" + std::string(suspended_reason())});
  }
}

// Runs at the end of the inputs that can change quorum (messages, lost connections, admin).
// A Primary that regained quorum through a connection resumes once that handshake is over: a
// new generation in the middle of it would make the peer start over.
void Node::apply_quorum_changes(Instant now) {
  (void)now;
  resume_after_fencing(now);
  resume_after_lost_peer_confirmed();
  if (!quorum_changed_) return;
  if (have_quorum_ && role_ == Role::primary && handshake_busy()) return;
  quorum_changed_ = false;
  // Our StateReports carry the quorum flag: the peers (a diskless one above all) learn it.
  send_state_to_connected_peers();
  if (!have_quorum_ || role_ != Role::primary) return;
  // resume_after_fencing or resume_after_lost_peer_confirmed resumes it later.
  if (quorum_suspends_io()) return;
  resume_frozen_io();
}

// ---- Weak Secondaries ------------------------------------------------------------------------

// A Secondary peer forwarded the weak nodes of its Primary. If we are one of them, a Primary
// writes without us: our data is behind, so we outdate ourselves (§1.7 invariant 2: "a
// Secondary that learns of a Primary it is not directly connected to outdates itself").
// That holds even while our own connection to that Primary still looks up: the Primary
// already dropped it and we have not noticed yet, so we drop it too (as DRBD's cluster-wide
// "lost peer" change would) and reconnect; the new handshake resyncs us. Swarm seed 564:
// waiting for our side to notice let the forwarding peer lose the Primary first, and we
// stayed UpToDate, quorate and promotable without the writes it acknowledged meanwhile.
// Checked when such a report arrives and when we lose our own Primary (the report may have
// come first). The resync comes when we reach that Primary, or an UpToDate node that becomes
// Primary (resync_outdated_peers).
void Node::outdate_if_weak() {
  if (role_ != Role::secondary || disk_state_ != DiskState::up_to_date) return;
  bool weak = false;
  bool weak_and_behind = false;  // and the peer that says so has a generation we lack
  bool following_primary = false;
  for (const Peer& peer : peers_) {
    if (!peer.configured || peer.status.connection != ConnectionState::connected) continue;
    following_primary = following_primary || peer.status.role == Role::primary;
    const bool says_weak = (peer.forwarded_weak_nodes & bit(config_.node_id)) != 0;
    weak = weak || says_weak;
    weak_and_behind = weak_and_behind ||
                      (says_weak && comparable_current(peer.status.generation) !=
                                        comparable_current(generations_.uuids.current));
  }
  if (!weak) return;
  // Still connected to a Primary: a forwarded mask may be older than our connection (it named
  // us before that Primary resynced us); only a peer in a generation we lack proves that the
  // Primary went on without us.
  if (!weak_and_behind && following_primary) return;
  for (Peer& peer : peers_) {
    if (!peer.configured || peer.status.connection != ConnectionState::connected ||
        peer.status.role != Role::primary) {
      continue;
    }
    actions_.push_back(Disconnect{peer.status.node_id, "Primary " + peer.status.name +
                                                           " writes without us (a peer says)"});
    peer_lost(peer, ConnectionState::network_failure);  // its end outdates us (we are weak)
  }
  if (disk_state_ != DiskState::up_to_date) return;
  ClusterState proposed = cluster_state();
  proposed.disk = DiskState::outdated;
  if (!change_state(proposed, false).ok()) return;
  send_state_to_connected_peers();
}

// ---- Losing a peer as Primary -----------------------------------------------------------------
// A Primary counts a peer as connected until its transport reports the link down, which may be
// long after the link went silent. Quorum through such a peer is not quorum: a new generation
// started with it (the first write after losing another peer) lives on this side only, while
// the nodes really reachable promote and start their own, and the two meet as a split brain
// (swarm quorum seeds 62, 759, ...). So, like DRBD's cluster-wide "lost peer" state change, a
// Primary that lost a peer freezes its I/O (new writes and completions, which could otherwise
// acknowledge a write some peer missed in the old generation) and starts no generation until
// every peer it still sees answered (TwoPcChange::lost_peer). A peer that never answers is
// lost in turn: then the quorum decides, as for any loss.

bool Node::confirming_lost_peer() const {
  return role_ == Role::primary && lost_peer_confirmation_.has_value();
}

// peer_lost, before the connection leaves Connected (which may complete writes and request a
// new generation): from here on both wait.
void Node::freeze_for_lost_peer() {
  if (role_ == Role::primary && config_.quorum.enabled()) {
    lost_peer_confirmation_ = LostPeerConfirmation{};
  }
}

// peer_lost, with the connection states and quorum updated: ask the peers still connected.
void Node::confirm_lost_peer() {
  // Only a freshly frozen one (transaction 0); one already asked keeps waiting.
  if (!confirming_lost_peer() || lost_peer_confirmation_->transaction_id != 0) return;
  std::uint32_t waiting = 0;
  for (const Peer& peer : peers_) {
    if (peer.configured && peer.status.connection == ConnectionState::connected) {
      waiting |= bit(peer.status.node_id);
    }
  }
  if (!have_quorum_ || waiting == 0) {
    // Nothing to confirm: without quorum no generation starts, and the frozen I/O follows
    // on-no-quorum (resume_after_lost_peer_confirmed).
    lost_peer_confirmation_.reset();
    lost_peer_resume_pending_ = true;
    return;
  }
  lost_peer_transactions_ += 1;
  const std::uint64_t transaction_id = lost_peer_transaction_bit | lost_peer_transactions_;
  lost_peer_confirmation_ = LostPeerConfirmation{transaction_id, waiting};
  for (const Peer& peer : peers_) {
    if ((waiting & bit(peer.status.node_id)) == 0) continue;
    actions_.push_back(Send{peer.status.node_id,
                            wire::TwoPcPrepare{config_.node_id, transaction_id,
                                               wire::TwoPcChange::lost_peer},
                            std::nullopt});
  }
  DITTO_ASSERT(confirming_lost_peer());
}

void Node::on_lost_peer_reply(Peer& peer, const wire::TwoPcReply& reply) {
  DITTO_ASSERT((reply.transaction_id & lost_peer_transaction_bit) != 0);
  if (!lost_peer_confirmation_ || lost_peer_confirmation_->transaction_id != reply.transaction_id) {
    return;  // a late reply to a confirmation a newer loss replaced
  }
  lost_peer_confirmation_->waiting_mask &= ~bit(peer.status.node_id);
  if (lost_peer_confirmation_->waiting_mask != 0) return;
  lost_peer_confirmation_.reset();
  lost_peer_resume_pending_ = true;
}

// At the end of every input (apply_quorum_changes): the confirmation is over. With quorum the
// new generation is made and the frozen I/O resumes; without it, suspend-io keeps it frozen
// and io-error fails it, as it would have without the confirmation.
void Node::resume_after_lost_peer_confirmed() {
  if (role_ != Role::primary) {
    lost_peer_confirmation_.reset();
    lost_peer_resume_pending_ = false;
    return;
  }
  if (!lost_peer_resume_pending_ || confirming_lost_peer()) return;
  lost_peer_resume_pending_ = false;
  if (quorum_suspends_io()) return;  // for quorum or fencing: resumed when that is over
  if (have_quorum_) return resume_frozen_io();
  fail_suspended_io();
}

// Quorum is back or fencing is over: the new generation that waited is made first, then
// frozen I/O resumes.
void Node::resume_frozen_io() {
  DITTO_ASSERT(role_ == Role::primary && !quorum_suspends_io());
  bump_generation_if_pending();
  std::deque<SuspendedCompletion> completions;
  completions.swap(quorum_suspended_completions_);
  DITTO_ASSERT(statistics_.upper_pending >= completions.size());
  statistics_.upper_pending -= static_cast<std::uint32_t>(completions.size());
  for (const SuspendedCompletion& done : completions) {
    actions_.push_back(CompleteClient{done.request, ClientStatus::ok, std::nullopt});
    if (done.payload) actions_.push_back(ReleasePayload{*done.payload});
  }
  std::deque<HeldWrite> writes;
  writes.swap(quorum_suspended_writes_);
  DITTO_ASSERT(statistics_.upper_pending >= writes.size());
  statistics_.upper_pending -= static_cast<std::uint32_t>(writes.size());
  for (const HeldWrite& write : writes) {
    if (auto refusal = write_refusal(write.sector, write.length_bytes)) {
      actions_.push_back(CompleteClient{write.request, *refusal, std::nullopt});
      actions_.push_back(ReleasePayload{write.payload});
      continue;
    }
    admit_write(write.request, write.sector, write.length_bytes, write.payload, write.flags);
  }
}

void Node::suspend_write_for_quorum(RequestId request, Sector sector, std::uint32_t length_bytes,
                                    PayloadHandle payload, WriteFlags flags) {
  DITTO_ASSERT(quorum_suspends_io());  // for quorum or for fencing
  quorum_suspended_writes_.push_back(HeldWrite{request, sector, length_bytes, payload, flags});
  statistics_.upper_pending += 1;
}

// A write completing while the Primary has no quorum: with suspend-io its completion waits
// (true); with io-error the caller reports it failed.
bool Node::hold_completion_for_quorum(const CompleteClient& completion,
                                      std::optional<PayloadHandle> payload) {
  if (!quorum_suspends_io()) return false;
  quorum_suspended_completions_.push_back(SuspendedCompletion{completion.request, payload});
  return true;
}

// Demotion (or a forced one) fails everything frozen: the data may never reach a quorum. A
// Secondary has no I/O to freeze for fencing either.
void Node::fail_suspended_io() {
  if (fencing_suspended_) {
    fencing_suspended_ = false;
    actions_.push_back(Event{"change resource name:" + config_.resource_name + " suspended:" +
                             std::string(suspended_reason())});
  }
  const std::size_t count =
      quorum_suspended_completions_.size() + quorum_suspended_writes_.size();
  DITTO_ASSERT(statistics_.upper_pending >= count);
  statistics_.upper_pending -= static_cast<std::uint32_t>(count);
  for (const SuspendedCompletion& done : quorum_suspended_completions_) {
    actions_.push_back(CompleteClient{done.request, ClientStatus::io_error, std::nullopt});
    if (done.payload) actions_.push_back(ReleasePayload{*done.payload});
  }
  for (const HeldWrite& write : quorum_suspended_writes_) {
    actions_.push_back(CompleteClient{write.request, ClientStatus::io_error, std::nullopt});
    actions_.push_back(ReleasePayload{write.payload});
  }
  quorum_suspended_completions_.clear();
  quorum_suspended_writes_.clear();
}

// Before a StateReport is applied: what it says about quorum and the sender's configuration.
void Node::on_peer_quorum_flags(Peer& peer, const wire::StateReport& state) {
  peer.last_known_disk = state.disk_state;
  peer.intentional_diskless = (state.uuid_flags & quorum_flag::intentional_diskless) != 0;
  peer.reports_quorum = (state.uuid_flags & quorum_flag::has_quorum) != 0;
  peer.left_gracefully = (state.uuid_flags & quorum_flag::leaving) != 0;
  if (peer.left_gracefully) peer.last_known_disk = DiskState::outdated;
}

// A Primary frozen without quorum meets another Primary: that partition had quorum, promoted
// and moved on. With force-secondary we step down (failing the frozen I/O) so the connection
// can go on and resync us; with disconnect (the default) the caller refuses it.
bool Node::demote_for_newer_primary(const wire::StateReport& state) {
  if (state.role != Role::primary || role_ != Role::primary || have_quorum_) return false;
  if (config_.quorum.on_suspended_primary_outdated !=
      OnSuspendedPrimaryOutdated::force_secondary) {
    return false;
  }
  if (!requests_.empty()) return false;  // in-flight I/O keeps the device open
  fail_suspended_io();
  return demote().ok;
}

std::uint64_t Node::quorum_uuid_flags() const {
  std::uint64_t flags = 0;
  if (have_quorum_ && config_.quorum.enabled()) flags |= quorum_flag::has_quorum;
  if (config_.intentional_diskless) flags |= quorum_flag::intentional_diskless;
  if (down_) flags |= quorum_flag::leaving;
  return flags;
}

AdminResult Node::down(Instant now) {
  if (down_) return {};
  if (promotion_) {
    return {false, to_string(StateChangeCode::concurrent_state_change),
            "a promotion is in progress"};
  }
  if (role_ == Role::primary) {
    fail_suspended_io();
    AdminResult demoted = demote();
    if (!demoted.ok) return demoted;
  }
  down_ = true;
  queue_all_bitmap_pages();  // a clean stop leaves the bitmaps on disk (§4.1)
  issue_metadata_write();
  for (Peer& peer : peers_) {
    if (!peer.configured) continue;
    if (peer.status.connection == ConnectionState::connected) {
      send_state(peer);  // carries quorum_flag::leaving
      actions_.push_back(Disconnect{peer.status.node_id, "down: leaving the cluster"});
    }
    if (peer.transport_up) {
      peer_lost(peer, ConnectionState::disconnecting);
      twopc_peer_lost(now, peer);
    } else if (peer.status.connection != ConnectionState::standalone) {
      set_connection(peer, ConnectionState::disconnecting);
      set_connection(peer, ConnectionState::standalone);
    }
  }
  return {};
}

}  // namespace ditto::core
