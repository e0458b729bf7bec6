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
#include <algorithm>
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
  for (const Peer& peer : configured_peers()) {
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
  for (const Peer& peer : configured_peers()) {
    if (!peer.transport_up) continue;
    if (!peer.state_received) return true;
    const ReplicationState state = peer.status.replication;
    if (state == ReplicationState::wait_bitmap_source ||
        state == ReplicationState::wait_bitmap_target) {
      return true;
    }
  }
  return false;
}

// Frozen I/O, for lack of quorum, for fencing (node_fencing.cpp) or until the peers answered a
// lost-peer state change (node_lost_peer.cpp): all wait in the same queues.
bool Node::quorum_suspends_io() const {
  return io_suspended_for_quorum() || io_suspended_for_fencing() || lost_peer_pending();
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
  apply_quorum_outcome(now);
  // After our StateReports, which carry the quorum the lost-peer initiators wait to learn.
  answer_lost_peer_changes();
}

void Node::apply_quorum_outcome(Instant now) {
  resume_after_fencing(now);
  progress_lost_peer_change(now);
  if (!quorum_changed_) return;
  if (have_quorum_ && role_ == Role::primary && handshake_busy()) return;
  quorum_changed_ = false;
  // Our StateReports carry the quorum flag: the peers (a diskless one above all) learn it.
  send_state_to_connected_peers();
  if (!have_quorum_ || role_ != Role::primary) return;
  // resume_after_fencing or progress_lost_peer_change resumes it later.
  if (quorum_suspends_io()) return;
  resume_frozen_io();
}

// Quorum is back or fencing is over: the new generation that waited is made first, then
// frozen I/O resumes. A frozen completion whose write was on our disk when that disk failed
// names no copy we still have (its Data to the peers may have been lost with the partition that
// froze it), nor does one that only an Inconsistent peer stored (a diskless Primary whose
// UpToDate peer's ack was lost with the partition): like DRBD, which resends a frozen request to
// the peers once they are back, the write goes through the peers again, in the order the writes
// were first admitted and before the writes that waited, and completes when they have it
// (quorum swarm seeds 1008 and 2558).
void Node::resume_frozen_io() {
  DITTO_ASSERT(role_ == Role::primary && !quorum_suspends_io());
  bump_generation_if_pending();
  std::deque<SuspendedCompletion> completions;
  completions.swap(quorum_suspended_completions_);
  DITTO_ASSERT(statistics_.upper_pending >= completions.size());
  statistics_.upper_pending -= static_cast<std::uint32_t>(completions.size());
  // When one frozen write is resent, all are, in their order: a later write to the same blocks
  // acknowledged from its old copies would be overwritten by the resent earlier one.
  const bool resend_all =
      std::any_of(completions.begin(), completions.end(), [&](const SuspendedCompletion& done) {
        return done.no_up_to_date_copy || up_to_date_peer_lacks(done);
      });
  std::vector<SuspendedCompletion> resend;
  for (const SuspendedCompletion& done : completions) {
    if (resend_all && done.payload) {
      resend.push_back(done);
      continue;
    }
    // A client sees it now: it confirms the generation it was admitted in (Node::complete).
    confirm_through(done.sequence);
    actions_.push_back(CompleteClient{done.request, ClientStatus::ok, std::nullopt, std::nullopt});
    if (done.payload) actions_.push_back(ReleasePayload{*done.payload});
  }
  std::sort(resend.begin(), resend.end(),
            [](const SuspendedCompletion& a, const SuspendedCompletion& b) {
              return a.sequence < b.sequence;
            });
  std::deque<HeldWrite> writes;
  for (const SuspendedCompletion& done : resend) {
    writes.push_back(HeldWrite{done.request, done.sector, done.length_bytes, *done.payload,
                               done.flags});
  }
  DITTO_ASSERT(statistics_.upper_pending >= quorum_suspended_writes_.size());
  statistics_.upper_pending -= static_cast<std::uint32_t>(quorum_suspended_writes_.size());
  writes.insert(writes.end(), quorum_suspended_writes_.begin(), quorum_suspended_writes_.end());
  quorum_suspended_writes_.clear();
  for (const HeldWrite& write : writes) {
    if (auto refusal = write_refusal(write.sector, write.length_bytes)) {
      actions_.push_back(CompleteClient{write.request, *refusal, std::nullopt, std::nullopt});
      actions_.push_back(ReleasePayload{write.payload});
      continue;
    }
    admit_write(write.request, write.sector, write.length_bytes, write.payload, write.flags);
  }
}

// A frozen write that no disk of ours holds, missing on a connected UpToDate peer: that peer
// never stored it (its copy was lost with the partition) and nothing resyncs it (we keep no
// bitmap without the write on our disk), yet it counts as in sync with us (quorum+diskless
// swarm seed 2176: the peer that stored it was Outdated and later resynced from one without).
bool Node::up_to_date_peer_lacks(const SuspendedCompletion& done) const {
  if (done.local_up_to_date_copy) return false;  // our bitmap records the peers that lack it
  return std::ranges::any_of(configured_peers(), [&](const Peer& peer) {
    return peer.status.connection == ConnectionState::connected &&
           peer.status.disk == DiskState::up_to_date &&
           (done.peers_ok_mask & bit(peer.status.node_id)) == 0;
  });
}

void Node::suspend_write_for_quorum(RequestId request, Sector sector, std::uint32_t length_bytes,
                                    PayloadHandle payload, WriteFlags flags) {
  DITTO_ASSERT(quorum_suspends_io());  // for quorum or for fencing
  quorum_suspended_writes_.push_back(HeldWrite{request, sector, length_bytes, payload, flags});
  statistics_.upper_pending += 1;
}

// A write completing while the Primary has no quorum: with suspend-io its completion waits
// (true); with io-error the caller reports it failed.
bool Node::hold_completion_for_quorum(std::uint64_t sequence, const Request& entry) {
  if (!quorum_suspends_io()) return false;
  const bool local_up_to_date_copy = entry.local_ok && disk_state_ == DiskState::up_to_date;
  quorum_suspended_completions_.push_back(SuspendedCompletion{
      entry.client, entry.payload, sequence, entry.sector, entry.length_bytes,
      WriteFlags{entry.fua}, !local_up_to_date_copy && entry.peers_up_to_date_ok_mask == 0,
      local_up_to_date_copy, entry.peers_ok_mask});
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
  fail_frozen_io();
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
  for (Peer& peer : configured_peers()) {
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
