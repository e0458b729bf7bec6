// Node: split brain at the handshake (drbd9-semantics.md §6, §3.5 steps 4-10) and the
// drbdsetup connect/disconnect admin commands.
//
// Both nodes run the same pure decision (core/generation.h, sync_handshake) on the reports both
// sent, so they agree on the outcome without another round trip:
// - detection (uuid_compare rules 17 bitmap-both and 18 history-both) is reported on each node
//   as the events2 line DRBD shows when it runs the initial-split-brain helper, with the
//   evidence appended (events2 readers split on spaces and `:` and skip keys they do not know):
//     call helper name:r0 peer-node-id:1 conn-name:node1 volume:0 helper:initial-split-brain
//       rule:bitmap-both local-generations:<gi> peer-generations:<gi> local-changed-blocks:3
//       peer-changed-blocks:5 resolution:discard-local|discard-remote|disconnect
//   (one line; <gi> as generations_text; changed blocks are the 4 KiB bitmap bits each side set
//   toward the other since they split; with quorum on, `local-quorum:yes|no peer-quorum:yes|no`
//   before resolution: what each side's quorum was when it decided; resolution: this node's
//   data is discarded, the peer's is, or neither). An unresolved one adds `call helper ...
//   helper:split-brain` and the connection goes StandAlone on both sides, data untouched;
// - the victim becomes SyncTarget of the survivor: with rule 17 a bitmap resync of the union
//   of both sides' changed blocks, with rule 18 (always-asbp) a full sync;
// - call-pri-lost-after-sb: a losing Primary demotes first; if it cannot, the
//   pri-lost-after-sb helper is called and the connection goes StandAlone.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

bool is_split_brain(SyncStrategy strategy) {
  return strategy == SyncStrategy::split_brain_auto_recover ||
         strategy == SyncStrategy::split_brain_disconnect;
}

}  // namespace

std::uint64_t Node::uuid_flags_toward(const Peer& peer) const {
  return local_uuid_flags() | (peer.discard_my_data ? uuid_flag::discard_my_data : 0);
}

// Nothing to decide when a side has no disk (detached after an I/O error): it reads and
// writes through its peers, the connection is established without a sync.
std::optional<HandshakeDecision> Node::handshake_decision(const Peer& peer, Role peer_role,
                                                          DiskState peer_disk) const {
  auto with_disk = [](DiskState disk) {
    return disk >= DiskState::inconsistent && disk != DiskState::dunknown;
  };
  if (!with_disk(disk_state_) || !with_disk(peer_disk)) return std::nullopt;
  DITTO_ASSERT(peer.bitmap.has_value());
  HandshakeInput input;
  input.compare.self = generations_.uuids;
  input.compare.peer = peer.uuids;
  input.compare.self_node = config_.node_id.value;
  input.compare.peer_node = peer.status.node_id.value;
  input.compare.self_flags = uuid_flags_toward(peer);
  input.compare.peer_flags = peer.uuid_flags;
  input.compare.protocol = config_.protocol;
  // DRBD gives the resolve-conflicts bit to one side of each connection; the higher node id
  // holds it here, so both sides agree on ties (discard-least-changes with equal changes).
  input.compare.resolve_conflicts = config_.node_id.value > peer.status.node_id.value;
  input.self_disk = disk_state_;
  input.peer_disk = peer_disk;
  input.self_role = role_;
  input.peer_role = peer_role;
  input.self_dirty_bits = peer.bitmap->count_set();
  input.peer_dirty_bits = peer.peer_dirty_bits;
  input.after_sb_0pri = config_.split_brain.after_sb_0pri;
  input.after_sb_1pri = config_.split_brain.after_sb_1pri;
  input.after_sb_2pri = config_.split_brain.after_sb_2pri;
  input.rr_conflict = config_.split_brain.rr_conflict;
  input.always_asbp = config_.split_brain.always_asbp;
  input.quorum_enabled = config_.quorum.enabled();
  input.self_has_quorum = have_quorum_;
  input.peer_has_quorum = peer.reports_quorum;
  return sync_handshake(input);
}

// Reports a split brain, performs a losing Primary's demotion, and refuses what must be
// refused. True when the handshake goes on (the connection becomes Connected).
bool Node::accept_handshake(Peer& peer, const HandshakeDecision& decision) {
  if (decision.call_initial_split_brain) report_split_brain(peer, decision);
  const HandshakeOutcome outcome = decision.outcome;
  const bool goes_on = outcome == HandshakeOutcome::established ||
                       outcome == HandshakeOutcome::become_source ||
                       outcome == HandshakeOutcome::become_target;
  if (decision.call_pri_lost) emit_helper_call(peer, "pri-lost", "");
  if (!goes_on) {
    if (decision.call_split_brain) emit_helper_call(peer, "split-brain", "");
    refuse_connection(peer, decision);
    return false;
  }
  if (decision.call_pri_lost_after_sb && role_ == Role::primary) {
    const AdminResult demoted = demote();
    if (!demoted.ok) {
      emit_helper_call(peer, "pri-lost-after-sb", "");
      HandshakeDecision refused = decision;
      refused.outcome = HandshakeOutcome::standalone;
      refuse_connection(peer, refused);
      return false;
    }
  }
  return true;
}

HelperCallId Node::emit_helper_call(const Peer& peer, const std::string& helper,
                                    const std::string& extra) {
  actions_.push_back(Event{"call helper name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name + " volume:0 helper:" + helper +
                           extra});
  const HelperCallId call{next_helper_call_++};
  actions_.push_back(CallHelper{call, helper, peer.status.node_id, up_to_date_nodes_mask()});
  return call;
}

// UP_TO_DATE_NODES of a handler's environment: this node and the peers known UpToDate.
std::uint32_t Node::up_to_date_nodes_mask() const {
  std::uint32_t mask = 0;
  if (disk_state_ == DiskState::up_to_date) mask |= 1u << config_.node_id.value;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.disk == DiskState::up_to_date) {
      mask |= 1u << peer.status.node_id.value;
    }
  }
  return mask;
}

// With quorum on, which side had quorum when they decided (§3.5 step 6: that side wins).
std::string Node::quorum_evidence(const Peer& peer) const {
  if (!config_.quorum.enabled()) return "";
  return std::string(" local-quorum:") + (have_quorum_ ? "yes" : "no") +
         " peer-quorum:" + (peer.reports_quorum ? "yes" : "no");
}

void Node::report_split_brain(const Peer& peer, const HandshakeDecision& decision) {
  DITTO_ASSERT(is_split_brain(decision.compare.strategy));
  const char* resolution = decision.outcome == HandshakeOutcome::become_target   ? "discard-local"
                           : decision.outcome == HandshakeOutcome::become_source ? "discard-remote"
                                                                                 : "disconnect";
  emit_helper_call(peer, "initial-split-brain",
                   " rule:" + std::string(to_string(decision.compare.rule)) +
                       " local-generations:" + generations_text(generations_.uuids) +
                       " peer-generations:" + generations_text(peer.uuids) +
                       " local-changed-blocks:" + std::to_string(peer.bitmap->count_set()) +
                       " peer-changed-blocks:" + std::to_string(peer.peer_dirty_bits) +
                       quorum_evidence(peer) + " resolution:" + resolution);
}

// ---- Admin: disconnect / connect --------------------------------------------------------------

AdminResult Node::disconnect_peer(Instant now, const DisconnectPeer& command) {
  if (command.peer.value > node_id_max || !peers_[command.peer.value].configured) {
    return {false, "ERR_INVALID_REQUEST",
            "no connection to node " + std::to_string(command.peer.value)};
  }
  Peer& peer = peers_[command.peer.value];
  peer.discard_my_data = false;
  if (peer.status.connection == ConnectionState::standalone) return {};
  const bool was_up = peer.transport_up;
  actions_.push_back(Disconnect{command.peer, "disconnected by the administrator", false});
  peer_lost(peer, ConnectionState::disconnecting);
  if (was_up) twopc_peer_lost(now, peer);
  DITTO_ASSERT(peer.status.connection == ConnectionState::standalone);
  return {};
}

AdminResult Node::connect_peer(const ConnectPeer& command) {
  if (command.peer.value > node_id_max || !peers_[command.peer.value].configured) {
    return {false, "ERR_INVALID_REQUEST",
            "no connection to node " + std::to_string(command.peer.value)};
  }
  Peer& peer = peers_[command.peer.value];
  if (peer.status.connection != ConnectionState::standalone) {
    return {false, "ERR_INVALID_REQUEST",
            "the connection to " + peer.status.name + " is not StandAlone (it is " +
                std::string(to_string(peer.status.connection)) + "): disconnect it first"};
  }
  peer.discard_my_data = command.discard_my_data;
  set_connection(peer, ConnectionState::unconnected);
  set_connection(peer, ConnectionState::connecting);
  return {};
}

}  // namespace ditto::core
