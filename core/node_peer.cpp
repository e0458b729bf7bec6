// Node: connections, the handshake and every message from a peer — the Primary's acks and
// barrier acks, and the Secondary's receive path with write-order fidelity (§2.2, §2.3).
#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "core/node.h"
#include "core/overloaded.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

// ---- Connections ------------------------------------------------------------------------------

void Node::on_connection_up(Instant now, NodeId peer_id) {
  (void)now;
  Peer& peer = peer_ref(peer_id);
  DITTO_ASSERT(peer.status.connection != ConnectionState::connected);
  if (down_) {  // left the cluster: no new connections
    actions_.push_back(Disconnect{peer_id, "down: not connecting", false});
    return invariants();
  }
  if (peer.status.connection == ConnectionState::standalone) {
    // StandAlone waits for the administrator (ConnectPeer): a transport that connected anyway
    // is sent away again.
    actions_.push_back(Disconnect{peer_id, "the connection is StandAlone", false});
    return invariants();
  }
  connection_epochs_[peer_id.value] += 1;
  peer.transport_up = true;
  peer.hello_received = false;
  peer.state_received = false;
  if (peer.status.connection != ConnectionState::connecting) {
    set_connection(peer, ConnectionState::connecting);
  }
  wire::Hello hello;
  hello.sender = config_.node_id;
  hello.receiver = peer_id;
  hello.resource_name = config_.resource_name;
  hello.settings = connection_settings(peer);
  actions_.push_back(Send{peer_id, hello, std::nullopt});
  send_state(peer);
  invariants();
}

void Node::on_connection_down(Instant now, NodeId peer_id) {
  Peer& peer = peer_ref(peer_id);
  // Already handled when we dropped it ourselves (protocol error, split brain).
  if (!peer.transport_up) return invariants();
  peer_lost(peer, ConnectionState::network_failure);
  twopc_peer_lost(now, peer);
  apply_quorum_changes(now);
  pump_activity_log();
  invariants();
}

void Node::on_message(Instant now, NodeId peer_id, const wire::Message& message,
                      PayloadHandle payload) {
  latest_input_ = std::max(latest_input_, now);
  Peer& peer = peer_ref(peer_id);
  const bool is_data = std::holds_alternative<wire::Data>(message);
  if (peer.status.connection == ConnectionState::standalone || !peer.transport_up) {
    // A late message from a connection we already dropped: ignore it.
    if (is_data) actions_.push_back(ReleasePayload{payload});
    return invariants();
  }
  const bool handshake_done = peer.hello_received && peer.state_received;
  const bool is_hello = std::holds_alternative<wire::Hello>(message);
  const bool is_state = std::holds_alternative<wire::StateReport>(message);
  const char* expected = nullptr;
  if (!peer.hello_received && !is_hello) expected = "expected Hello, got ";
  if (peer.hello_received && !handshake_done && !is_state) expected = "expected State, got ";
  if (expected != nullptr) {
    if (is_data) actions_.push_back(ReleasePayload{payload});
    protocol_error(peer, expected + std::string(wire::to_string(wire::type_of(message))));
    twopc_peer_lost(now, peer);
    apply_quorum_changes(now);
    pump_activity_log();
    return invariants();
  }
  dispatch(now, peer, message, payload);
  note_sync_progress(now, peer);
  arm_ahead_resync_if_drained(now, peer);
  // Any message may have dropped the connection (a protocol error): a promotion or resize
  // stops waiting for that peer.
  if (!peer.transport_up) twopc_peer_lost(now, peer);
  apply_quorum_changes(now);
  pump_activity_log();  // acks and barrier acks free extents that waiting writes may need
  invariants();
}

void Node::dispatch(Instant now, Peer& peer, const wire::Message& message, PayloadHandle payload) {
  using wire::MessageType;
  std::visit(Overloaded{
                 [&](const wire::Hello& hello) { on_hello(now, peer, hello); },
                 [&](const wire::StateReport& state) { on_state_report(now, peer, state); },
                 [&](const wire::Data& data) { on_data(now, peer, data, payload); },
                 [&](const wire::WriteAck& ack) {
                   on_write_ack(peer, ack.sequence, ack.ok, MessageType::write_ack);
                 },
                 [&](const wire::RecvAck& ack) {
                   on_write_ack(peer, ack.sequence, true, MessageType::recv_ack);
                 },
                 [&](const wire::FlushRequest& flush) { on_flush_request(peer, flush); },
                 [&](const wire::FlushAck& ack) { on_flush_ack(peer, ack); },
                 [&](const wire::Barrier& barrier) { on_barrier(peer, barrier); },
                 [&](const wire::BarrierAck& ack) { on_barrier_ack(peer, ack); },
                 [&](const wire::TwoPcPrepare& prepare) { on_twopc_prepare(now, peer, prepare); },
                 [&](const wire::TwoPcReply& reply) { on_twopc_reply(now, peer, reply); },
                 [&](const wire::TwoPcCommit& commit) {
                   on_twopc_decision(peer, commit.initiator, commit.transaction_id, true,
                                     commit.size_sectors);
                 },
                 [&](const wire::TwoPcAbort& abort) {
                   on_twopc_decision(peer, abort.initiator, abort.transaction_id, false);
                 },
                 [&](const wire::BitmapTransfer& bitmap) { on_bitmap(now, peer, bitmap); },
                 [&](const wire::ResyncRequest& request) { on_resync_request(peer, request); },
                 [&](const wire::ResyncAck& ack) { on_resync_ack(peer, ack); },
                 [&](const wire::PeerAck& ack) { on_peer_ack(peer, ack); },
                 [&](const wire::SyncControl& control) { on_sync_control(now, peer, control); },
                 [&](const wire::VerifyRequest& request) { on_verify_request(peer, request); },
                 [&](const wire::VerifyReply& reply) { on_verify_reply(peer, reply); },
                 [&](const wire::ChecksumResyncRequest& request) {
                   on_checksum_resync_request(peer, request);
                 },
                 [&](const wire::ResyncInSync& in_sync) { on_resync_in_sync(peer, in_sync); },
                 [&](const wire::PeersInSync& in_sync) { on_peers_in_sync(peer, in_sync); },
                 [&](const wire::ReadRequest& request) { on_read_request(peer, request); },
                 [&](const wire::ReadFailed& failed) { on_read_failed(peer, failed); },
                 [&](const wire::OutOfSync& out_of_sync) { on_out_of_sync(peer, out_of_sync); },
                 // Auth and keepalive belong to the transport, which never passes them on.
                 [&](const auto& transport_message) {
                   protocol_error(peer, std::string("transport message ") +
                                            wire::to_string(wire::type_of(transport_message)) +
                                            " reached the core");
                 },
             },
             message);
}

// ---- Handshake --------------------------------------------------------------------------------

void Node::on_hello(Instant now, Peer& peer, const wire::Hello& hello) {
  (void)now;
  if (peer.hello_received) return protocol_error(peer, "second Hello on one connection");
  if (hello.protocol_version_min > wire::protocol_version ||
      hello.protocol_version_max < wire::protocol_version) {
    return protocol_error(peer, "peer speaks protocol versions " +
                                    std::to_string(hello.protocol_version_min) + ".." +
                                    std::to_string(hello.protocol_version_max) + ", we speak " +
                                    std::to_string(wire::protocol_version));
  }
  if (hello.sender != peer.status.node_id || hello.receiver != config_.node_id) {
    return protocol_error(peer, "Hello names node " + std::to_string(hello.sender.value) +
                                    " to node " + std::to_string(hello.receiver.value) +
                                    ", expected " + std::to_string(peer.status.node_id.value) +
                                    " to " + std::to_string(config_.node_id.value));
  }
  if (hello.resource_name != config_.resource_name) {
    return protocol_error(peer, "Hello is for resource '" + hello.resource_name + "'");
  }
  if (std::optional<std::string> reason =
          incompatible_settings(connection_settings(peer), hello.settings)) {
    return refuse_to_connect(peer, *reason);
  }
  peer.hello_received = true;
}

// A handshake that cannot go on (incompatible settings, sizes): both sides report it and the
// connection goes StandAlone until the operator connects it again (DRBD's C_DISCONNECTING).
void Node::refuse_to_connect(Peer& peer, const std::string& reason) {
  actions_.push_back(Event{"connect-refused name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name + " reason:\"" + reason + "\""});
  actions_.push_back(Disconnect{peer.status.node_id, reason + "; refusing to connect", false});
  peer_lost(peer, ConnectionState::disconnecting);
}

// What this node sends in its Hello to `peer` for the two sides to compare (DRBD's P_PROTOCOL).
ConnectionSettings Node::connection_settings(const Peer& peer) const {
  ConnectionSettings settings;
  settings.protocol = config_.protocol;
  settings.after_sb_0pri = config_.split_brain.after_sb_0pri;
  settings.after_sb_1pri = config_.split_brain.after_sb_1pri;
  settings.after_sb_2pri = config_.split_brain.after_sb_2pri;
  settings.allow_two_primaries = config_.allow_two_primaries;
  settings.discard_my_data = peer.discard_my_data;
  return settings;
}

// The peer's reported role and disk are a peer request: validated as a soft transition, so a
// second Primary without allow-two-primaries is refused (and the connection dropped).
void Node::on_state_report(Instant now, Peer& peer, const wire::StateReport& state) {
  (void)now;
  const bool first = !peer.state_received;
  const bool finished = !first && peer_finished_resync(peer, state);
  const bool was_target = receives_resync(peer.status.replication);
  if (!agree_on_size(peer, state)) return;
  on_peer_quorum_flags(peer, state);
  demote_for_newer_primary(state);
  on_peer_generations(peer, state);
  // The handshake is decided before the peer's role is taken on: a split brain between two
  // Primaries is resolved (or refused) first, as DRBD's receive_state does.
  std::optional<HandshakeDecision> decision;
  if (first) {
    decision = handshake_decision(peer, state.role, state.disk_state);
    if (decision && !accept_handshake(peer, *decision)) return;
  }
  ClusterState proposed = cluster_state();
  PeerState& view = proposed.peers[peer.status.node_id.value];
  view.role = state.role;
  // A losing Primary demotes as part of this handshake (call-pri-lost-after-sb); its next
  // StateReport says so.
  if (decision && decision->peer_demotes) view.role = Role::secondary;
  view.disk = state.disk_state;
  distrust_generation_of_diskless_primary(peer, state, proposed);
  if (first) {
    view.connection = ConnectionState::connected;
    view.replication = ReplicationState::established;
  }
  if (finished) view.replication = ReplicationState::established;
  const StateChangeResult result = change_state(proposed, false);
  if (!result.ok()) {
    return protocol_error(peer, std::string(to_string(result.code)) + ": " + result.message);
  }
  peer.state_received = true;
  on_peer_pause_flag(peer, state);
  update_quorum();  // the report may change only what quorum counts (its flags)
  bool leftover = false;
  if (finished) {
    // The target adopted our generation: its slot and its bits are done with (§3.2), except
    // blocks marked toward it after the bitmap exchange (a write it missed while we got it),
    // which it never asked for: they stay, and a new handshake resyncs them.
    leftover = peer.bitmap->count_set() != 0;
    const std::uint32_t done = source_detect_finished_resyncs(generations_.uuids, peer.uuids);
    if ((done & bit(peer.status.node_id)) != 0 && !leftover) peer.bitmap->clear_all();
    if (!leftover) peer.bitmap_thinned_by_resync = false;
  }
  if (first) {
    if (decision) sync_handshake_with(peer, *decision);
    // --discard-my-data is used up once a handshake got through with it.
    if (peer.status.connection == ConnectionState::connected) peer.discard_my_data = false;
  } else {
    on_peer_skipped_initial_sync(peer, state);
    check_resync_source(peer, was_target && !finished);
  }
  if (leftover && peer.status.connection == ConnectionState::connected) {
    actions_.push_back(Disconnect{peer.status.node_id, "reconnecting to resync blocks marked "
                                                       "during the resync"});
    peer_lost(peer, ConnectionState::protocol_error);
    return;
  }
  if (peer.status.connection == ConnectionState::connected) outdate_if_weak();
  // Our first report to it went out before we knew its generation.
  if (first && peer.status.connection == ConnectionState::connected &&
      lost_primary_weak_toward(peer) != 0) {
    send_state(peer);
  }
  resync_outdated_peers();
  resync_from_up_to_date_peer();
  resync_primary_disk_from_up_to_date_peer();
}

// §1.5 "do not trust" (quorum swarm seed 1669): a diskless Primary exposes the data of its
// current UUID and has no disk to compare a peer's with. At the handshake, a diskful peer that
// claims UpToDate with another current UUID holds other data (DRBD sanitize_state: "Do not trust
// this guy!", downgraded to Consistent; receive_state: Outdated when another peer's bitmap UUID
// shows its data is an ancestor). It is no replication target then, so it is among the weak
// nodes of our next generation, which it does not adopt (node_resync.cpp), until a resync.
// Unlike DRBD, a diskless node does not track the exposed UUID while Secondary, so a Primary
// whose UUID is behind the peer's (in its bitmap or history UUIDs) is taken as stale, not the
// peer (DRBD would retry the handshake there); the peer stays trusted.
void Node::distrust_generation_of_diskless_primary(Peer& peer, const wire::StateReport& state,
                                                   ClusterState& proposed) const {
  const std::uint64_t mine = comparable_current(generations_.uuids.current);
  const std::uint64_t theirs = comparable_current(state.uuids.current);
  PeerState& view = proposed.peers[peer.status.node_id.value];
  const bool diskless_primary = role_ == Role::primary && disk_state_ == DiskState::diskless;
  // The distrust outlives our diskless days: a disk we attach and resync later does not give
  // the peer our data (quorum swarm seed 3496: the Primary, diskless when the peer came back,
  // attached an Inconsistent disk; its view of the peer turned UpToDate and the peer took its
  // next generation without the writes). It ends with our generation's writes on the peer (the
  // same current UUID), our role, or the connection (resync_outdated_peers drops it once we
  // are UpToDate).
  if (mine == theirs || role_ != Role::primary) peer.distrusted_as = DiskState::up_to_date;
  if (peer.state_received) {
    // Later reports: the peer says UpToDate again, not that it has our data.
    if (view.disk == DiskState::up_to_date) view.disk = peer.distrusted_as;
    return;
  }
  if (mine == theirs || !diskless_primary || state.disk_state != DiskState::up_to_date ||
      generation_behind(state.uuids, mine)) {
    return;
  }
  bool ancestor = false;
  for (const Peer& other : configured_peers()) {
    if (&other == &peer || other.status.connection != ConnectionState::connected) continue;
    for (const std::uint64_t slot : other.uuids.bitmap) {
      ancestor = ancestor || comparable_uuid(slot) == theirs;
    }
  }
  peer.distrusted_as = ancestor ? DiskState::outdated : DiskState::consistent;
  view.disk = peer.distrusted_as;
}

// ---- Primary side: acks -----------------------------------------------------------------------

void Node::on_write_ack(Peer& peer, std::uint64_t sequence, bool ok, wire::MessageType type) {
  const bool expected_type = type == wire::MessageType::recv_ack ? config_.protocol == Protocol::b
                                                                 : config_.protocol == Protocol::c;
  // We stopped waiting for this peer when it stopped being a replication target (its disk
  // detached or went Outdated): acks already on their way are late, not wrong.
  if (expected_type && !peer_replicating(peer)) return;
  auto found = requests_.find(sequence);
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  if (!expected_type || found == requests_.end() || found->second.kind != RequestKind::write ||
      (found->second.peers_pending_mask & peer_bit) == 0) {
    return protocol_error(peer, std::string(wire::to_string(type)) + " for unknown write " +
                                    std::to_string(sequence) + " (protocol " +
                                    std::string(to_string(config_.protocol)) + ")");
  }
  Request& entry = found->second;
  entry.peers_pending_mask &= ~peer_bit;
  if (ok) entry.peers_ok_mask |= peer_bit;
  if (ok && peer.status.disk == DiskState::up_to_date) entry.peers_up_to_date_ok_mask |= peer_bit;
  if (ok && local_disk_detached() && !entry.local_pending) note_write_the_disk_missed(entry);
  DITTO_ASSERT(peer.status.pending_writes > 0);
  peer.status.pending_writes -= 1;
  // The peer failed to store it (and detaches, its StateReport follows): our data moves on
  // without it, which its bitmap and a new generation record.
  if (!ok) {
    mark_out_of_sync(peer, entry.sector, entry.length_bytes);
    if (role_ == Role::primary) start_new_generation();
  }
  maybe_complete(sequence);
}

void Node::on_barrier_ack(Peer& peer, const wire::BarrierAck& ack) {
  if (peer.epochs_awaiting_ack.empty()) {
    return protocol_error(
        peer, "BarrierAck " + std::to_string(ack.barrier) + " while no barrier is outstanding");
  }
  const SentEpoch oldest = peer.epochs_awaiting_ack.front();
  if (ack.barrier != oldest.barrier || ack.set_size != oldest.set_size) {
    return protocol_error(peer, "BarrierAck " + std::to_string(ack.barrier) + " with " +
                                    std::to_string(ack.set_size) +
                                    " writes does not match the oldest open epoch " +
                                    std::to_string(oldest.barrier) + " with " +
                                    std::to_string(oldest.set_size) + " writes");
  }
  peer.epochs_awaiting_ack.pop_front();
  if (auto epoch = peer_ack_epochs_.find(ack.barrier); epoch != peer_ack_epochs_.end()) {
    epoch->second.acked_mask |= bit(peer.status.node_id);
  }
  DITTO_ASSERT(peer.unconfirmed_writes.size() >= oldest.set_size);
  for (std::uint32_t index = 0; index < oldest.set_size; ++index) {
    const WriteRange& range = peer.unconfirmed_writes[index];
    settle_write(range.sequence);  // on this peer's disk now
    DITTO_ASSERT(peer.status.in_flight_bytes >= range.length_bytes);
    peer.status.in_flight_bytes -= range.length_bytes;
  }
  peer.unconfirmed_writes.erase(peer.unconfirmed_writes.begin(),
                                peer.unconfirmed_writes.begin() + oldest.set_size);
  DITTO_ASSERT(peer.writes_awaiting_barrier_ack >= oldest.set_size);
  peer.writes_awaiting_barrier_ack -= oldest.set_size;
  send_peer_acks();
}

void Node::on_flush_ack(Peer& peer, const wire::FlushAck& ack) {
  if (!peer_replicating(peer)) return;  // late: see on_write_ack
  auto found = requests_.find(ack.flush_id);
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  if (found == requests_.end() || found->second.kind != RequestKind::flush ||
      (found->second.peers_pending_mask & peer_bit) == 0) {
    return protocol_error(peer, "FlushAck for unknown flush " + std::to_string(ack.flush_id));
  }
  found->second.peers_pending_mask &= ~peer_bit;
  if (ack.ok) found->second.peers_ok_mask |= peer_bit;
  maybe_complete(ack.flush_id);
}

// ---- Secondary side: the receive path ---------------------------------------------------------

void Node::on_data(Instant now, Peer& peer, const wire::Data& data, PayloadHandle payload) {
  (void)now;
  if ((data.flags & wire::data_flag_read_reply) != 0) return on_read_reply(peer, data, payload);
  // A Primary takes resync replies (its attached disk catching up, node_attach.cpp), never
  // application writes (unless two Primaries are allowed).
  const bool resync = (data.flags & wire::data_flag_resync) != 0;
  if (role_ == Role::primary && !config_.allow_two_primaries && !resync) {
    actions_.push_back(ReleasePayload{payload});
    return protocol_error(peer, "Data received while Primary");
  }
  if (!in_range(data.sector, data.length_bytes)) {
    actions_.push_back(ReleasePayload{payload});
    return protocol_error(
        peer, "Data beyond the end of the volume at sector " + std::to_string(data.sector.value));
  }
  if (resync) return on_resync_data(peer, data, payload);
  if (config_.allow_two_primaries && peer_write_conflicts(peer, data)) {
    actions_.push_back(ReleasePayload{payload});
    return;
  }
  note_application_io(now);
  peer.status.received_bytes += data.length_bytes;
  statistics_.written_bytes += data.length_bytes;
  // A newer write overtakes resync blocks in flight; peers we are not connected to miss it.
  resync_overtaken(peer, data);
  mark_out_of_sync_for_absent(data.sector, data.length_bytes, peer.status.node_id);
  peer.open_epoch_writes.push_back(WriteRange{data.sector, data.length_bytes});
  dagtag_node_ = static_cast<std::uint8_t>(peer.status.node_id.value);
  dagtag_ = data.sequence;
  if ((data.flags & wire::data_flag_send_receive_ack) != 0) {
    actions_.push_back(Send{peer.status.node_id, wire::RecvAck{data.sequence}, std::nullopt});
  }
  enqueue(peer, InboxItem{InboxItem::Kind::data, data, payload, 0});
}

void Node::on_barrier(Peer& peer, const wire::Barrier& barrier) {
  if (role_ == Role::primary && !config_.allow_two_primaries) {
    return protocol_error(peer, "Barrier received while Primary");
  }
  if (!peer.open_epoch_writes.empty()) {
    std::vector<WriteRange>& epoch = peer.unacked_epochs[barrier.barrier];
    epoch.insert(epoch.end(), peer.open_epoch_writes.begin(), peer.open_epoch_writes.end());
    peer.open_epoch_writes.clear();
  }
  enqueue(peer, InboxItem{InboxItem::Kind::barrier, {}, {}, barrier.barrier});
}

void Node::on_flush_request(Peer& peer, const wire::FlushRequest& flush) {
  enqueue(peer, InboxItem{InboxItem::Kind::flush, {}, {}, flush.flush_id});
}

void Node::enqueue(Peer& peer, InboxItem item) {
  // The Primary keeps at most requests_in_flight_max writes per connection unacknowledged by
  // barriers; a peer that sends more does not follow the protocol.
  if (peer.inbox.size() >= 2 * std::size_t{config_.requests_in_flight_max} + 2) {
    if (item.kind == InboxItem::Kind::data) actions_.push_back(ReleasePayload{item.payload});
    return protocol_error(peer, "peer exceeded the receive queue bound of " +
                                    std::to_string(peer.inbox.size()) + " messages");
  }
  peer.inbox.push_back(item);
  pump_inbox(peer);
}

// Write-order fidelity: the writes of an epoch are submitted only once every write of the
// previous epoch completed and, with disk_flushes, a flush made them stable. So the disk holds
// a prefix of epochs plus part of the epoch in flight, even across a crash (§2.2).
void Node::pump_inbox(Peer& peer) {
  while (!peer.inbox.empty() && !peer.receive_flushing) {
    InboxItem& item = peer.inbox.front();
    if (local_disk_detached()) {
      if (!drain_inbox_front_without_disk(peer)) return;  // a barrier waits for the epoch
      continue;
    }
    if (item.kind == InboxItem::Kind::data) {
      const IoId io = next_io();
      const bool write_ack = (item.data.flags & wire::data_flag_send_write_ack) != 0;
      peer_ios_[io.value] = PeerIo{peer.status.node_id,
                                   item.data.sequence,
                                   false,
                                   write_ack,
                                   item.payload,
                                   connection_epochs_[peer.status.node_id.value],
                                   item.data.sector,
                                   item.data.length_bytes};
      const bool fua = (item.data.flags & wire::data_flag_fua) != 0;
      actions_.push_back(
          DiskWrite{io, item.data.sector, item.data.length_bytes, item.payload, fua});
      peer.receive_epoch_writes += 1;
      peer.receive_epoch_active += 1;
      peer.inbox.pop_front();
      continue;
    }
    if (peer.receive_epoch_active > 0) return;  // a barrier or flush waits for the epoch
    const bool barrier = item.kind == InboxItem::Kind::barrier;
    const bool flush = !barrier || (config_.disk_flushes && peer.receive_epoch_writes > 0);
    if (!flush) {
      finish_inbox_front(peer, true);
      continue;
    }
    const IoId io = next_io();
    peer_ios_[io.value] = PeerIo{peer.status.node_id,
                                 item.id,
                                 true,
                                 false,
                                 std::nullopt,
                                 connection_epochs_[peer.status.node_id.value],
                                 Sector{0},
                                 0};
    actions_.push_back(DiskFlush{io});
    peer.receive_flushing = true;
  }
}

// With the disk detached, nothing is written: a write is answered as failed (the Primary stops
// counting on us once our Diskless StateReport arrives), a barrier still closes its epoch with
// the count the Primary expects, a flush fails.
bool Node::drain_inbox_front_without_disk(Peer& peer) {
  DITTO_ASSERT(!peer.inbox.empty() && !peer.receive_flushing);
  InboxItem& item = peer.inbox.front();
  if (item.kind != InboxItem::Kind::data) {
    if (peer.receive_epoch_active > 0) return false;
    finish_inbox_front(peer, item.kind == InboxItem::Kind::barrier);
    return true;
  }
  if ((item.data.flags & wire::data_flag_send_write_ack) != 0) {
    actions_.push_back(
        Send{peer.status.node_id, wire::WriteAck{item.data.sequence, false}, std::nullopt});
  }
  actions_.push_back(ReleasePayload{item.payload});
  peer.receive_epoch_writes += 1;
  peer.inbox.pop_front();
  return true;
}

void Node::finish_inbox_front(Peer& peer, bool ok) {
  DITTO_ASSERT(!peer.inbox.empty() && peer.receive_epoch_active == 0);
  const InboxItem item = peer.inbox.front();
  DITTO_ASSERT(item.kind != InboxItem::Kind::data);
  peer.inbox.pop_front();
  peer.receive_flushing = false;
  if (item.kind == InboxItem::Kind::barrier) {
    const auto barrier = static_cast<std::uint32_t>(item.id);
    actions_.push_back(Send{peer.status.node_id,
                            wire::BarrierAck{barrier, peer.receive_epoch_writes}, std::nullopt});
    peer.receive_epoch_writes = 0;
    return;
  }
  actions_.push_back(Send{peer.status.node_id, wire::FlushAck{item.id, ok}, std::nullopt});
}

void Node::on_peer_io_completed(const PeerIo& peer_io, IoStatus status) {
  if (peer_io.payload) actions_.push_back(ReleasePayload{*peer_io.payload});
  if (!peer_io.is_flush) {
    application_write_done(peer_io.sector, peer_io.length_bytes, status == IoStatus::ok);
    retry_deferred_reads();  // a resync read may have waited for this write
    release_writes_behind_peer_writes();
  }
  Peer& peer = peers_[peer_io.peer.value];
  const bool same_connection = peer.status.connection == ConnectionState::connected &&
                               connection_epochs_[peer_io.peer.value] == peer_io.connection_epoch;
  if (!same_connection) return;  // the requester is gone; it counts us as not OK
  const bool ok = status == IoStatus::ok;
  // on-io-error detach: answer this write as failed first, then detach and tell the peers.
  const bool detach = !ok && !local_disk_detached();
  if (peer_io.is_flush) {
    DITTO_ASSERT(peer.receive_flushing);
    finish_inbox_front(peer, ok);
  } else {
    DITTO_ASSERT(peer.receive_epoch_active > 0);
    peer.receive_epoch_active -= 1;
    if (peer_io.send_write_ack) {
      actions_.push_back(Send{peer_io.peer, wire::WriteAck{peer_io.id, ok}, std::nullopt});
    }
  }
  if (detach) detach_local_disk();
  pump_inbox(peer);
}

// A write or flush waits only for peers we still replicate to. Any state change that stops
// replication to a peer (connection lost, its disk detached or Outdated) ends the wait for it;
// a write that completes without that peer starts a new generation right away, before the peer
// can reconnect (DRBD marks the blocks out of sync for it).
void Node::release_requests_from_non_targets() {
  const std::uint32_t targets = replication_targets_mask();
  std::vector<std::uint64_t> touched;
  bool write_released = false;
  for (auto& [sequence, entry] : requests_) {
    const std::uint32_t released = entry.peers_pending_mask & ~targets;
    if (released == 0) continue;
    entry.peers_pending_mask &= ~released;
    for (Peer& peer : configured_peers()) {
      if ((released & bit(peer.status.node_id)) == 0 || !entry.payload) {
        continue;
      }
      mark_out_of_sync(peer, entry.sector, entry.length_bytes);
    }
    write_released = write_released || entry.kind == RequestKind::write;
    touched.push_back(sequence);
  }
  if (touched.empty()) return;
  for (Peer& peer : configured_peers()) {
    if ((targets & bit(peer.status.node_id)) == 0) peer.status.pending_writes = 0;
  }
  if (write_released && role_ == Role::primary) start_new_generation();
  for (std::uint64_t sequence : touched) {
    if (requests_.count(sequence) == 1) maybe_complete(sequence);
  }
  DITTO_ASSERT(touched.size() <= next_sequence_);
}

// A Primary that writes through its peers (no UpToDate disk of its own) has no data a
// handshake could resync from. A peer that becomes a replication target while writes are in
// flight gets them now: else it turns or stays UpToDate without them, since the nodes that
// got them mark them toward it (their PeerAck does not name it) while already Established
// with it, where no resync starts (diskless swarm seed 4609 with read policies, and a cause of
// quorum seed 65: the peer served reads of blocks it never received). Sent in the current
// epoch: on the new target's stream they come before every write issued after it joined.
void Node::send_in_flight_writes_to_new_targets(std::uint32_t targets_before) {
  if (role_ != Role::primary || disk_state_ == DiskState::up_to_date) return;
  const std::uint32_t added = replication_targets_mask() & ~targets_before;
  if (added == 0) return;
  for (auto& [sequence, entry] : requests_) {
    if (entry.kind != RequestKind::write || !entry.payload) continue;
    for (Peer& peer : configured_peers()) {
      const std::uint32_t peer_bit = bit(peer.status.node_id);
      if ((added & peer_bit) == 0) continue;
      if (((entry.peers_pending_mask | entry.peers_ok_mask) & peer_bit) != 0) continue;
      send_data(peer, sequence, entry, data_flags(entry));
    }
  }
}

// ---- Connection loss --------------------------------------------------------------------------

void Node::protocol_error(Peer& peer, std::string reason) {
  actions_.push_back(Event{"protocol-error name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name + " reason:\"" + reason + "\""});
  actions_.push_back(Disconnect{peer.status.node_id, std::move(reason)});
  peer_lost(peer, ConnectionState::protocol_error);
}

// Writes sent to `peer` that no BarrierAck confirmed may be missing on its disk.
void Node::mark_unconfirmed_writes(Peer& peer) {
  for (const WriteRange& range : peer.unconfirmed_writes) {
    mark_out_of_sync(peer, range.sector, range.length_bytes);
  }
}

void Node::clear_peer_streams(Peer& peer) {
  mark_unconfirmed_writes(peer);
  mark_unacked_peer_writes(peer);
  // Epochs this peer has not acknowledged no longer wait for it (it is not among the nodes
  // that stored them).
  for (auto& [barrier, epoch] : peer_ack_epochs_) {
    if ((epoch.acked_mask & bit(peer.status.node_id)) == 0) {
      epoch.sent_mask &= ~bit(peer.status.node_id);
    }
  }
  const bool marked = !peer.unconfirmed_writes.empty();
  // Marked out of sync above: the activity log need not cover them for this peer any more.
  for (const WriteRange& range : peer.unconfirmed_writes) settle_write(range.sequence);
  peer.unconfirmed_writes.clear();
  peer.status.in_flight_bytes = 0;
  peer.status.congested = false;
  peer.deferred_reads.clear();
  if (marked && role_ == Role::primary) request_new_current_uuid(generations_);
  for (const InboxItem& item : peer.inbox) {
    if (item.kind == InboxItem::Kind::data) actions_.push_back(ReleasePayload{item.payload});
  }
  peer.inbox.clear();
  peer.receive_epoch_writes = 0;
  peer.receive_epoch_active = 0;
  peer.receive_flushing = false;
  peer.epoch_writes_sent = 0;
  peer.epochs_awaiting_ack.clear();
  peer.writes_awaiting_barrier_ack = 0;
  send_peer_acks();
}

// `failure` is the state the connection passes through: NetworkFailure or ProtocolError lead
// back to Connecting (the transport reconnects); Disconnecting leads to StandAlone.
void Node::peer_lost(Peer& peer, ConnectionState failure) {
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  const bool was_target = receives_resync(peer.status.replication);
  // A source lost UpToDate holds our generation in full, and its disk may come back.
  if (was_target && peer.status.disk == DiskState::up_to_date &&
      disk_state_ == DiskState::inconsistent) {
    newer_copy_node_ = peer.status.node_id.value;
    newer_copy_current_ = comparable_current(peer.uuids.current);
    newer_copy_disk_gone_ = false;
  }
  const bool was_replicating = peer_replicating(peer);
  const bool was_our_primary = role_ == Role::secondary && peer.state_received &&
                               peer.status.role == Role::primary;
  start_lost_peer_change(peer);
  if (lost_peer_probe_) lost_peer_probe_->waiting_mask &= ~peer_bit;
  peer.lost_peer_answer_due.reset();
  peer.forwarded_weak_nodes = 0;
  peer.resync_deferred = false;
  peer.outdated_handshake_rerun = false;
  peer.distrusted_as = DiskState::up_to_date;
  peer.status.resync_suspended_peer = false;  // its next StateReport says it again
  // Bump the epoch so acks for I/O from the old connection are never sent on a new one.
  connection_epochs_[peer.status.node_id.value] += 1;
  peer.hello_received = false;
  peer.state_received = false;
  peer.transport_up = false;
  peer.status.pending_writes = 0;
  peer.bitmap_received = false;
  peer.resize_committed_sectors = 0;
  stop_resync(peer);
  clear_peer_streams(peer);
  if (prepared_ && prepared_->initiator == peer.status.node_id) {
    prepared_.reset();
    cancel_timer(timer_twopc_participant);
  }
  set_connection(peer, failure);
  if (failure == ConnectionState::disconnecting) {
    set_connection(peer, ConnectionState::standalone);
  } else {
    set_connection(peer, ConnectionState::unconnected);
    set_connection(peer, ConnectionState::connecting);
  }
  // Writes the peer may have missed are in its bitmap: a new generation records that our data
  // moved on, before the peer can reconnect (§3.2).
  if (role_ == Role::primary) bump_generation_if_pending();
  // Leaving Connected released every request waiting for this peer (commit_state).
  for (const auto& [sequence, entry] : requests_) {
    DITTO_ASSERT((entry.peers_pending_mask & peer_bit) == 0);
  }
  // Our Secondaries learn at once that this peer no longer gets our writes (weak_nodes; they
  // forward it to the peer if they reach it). A bump, when one follows, says it again.
  if (role_ == Role::primary && was_replicating) send_state_to_connected_peers();
  if (was_our_primary) {
    lost_primary_node_ = static_cast<std::uint8_t>(peer.status.node_id.value);
    send_state_to_connected_peers();  // we no longer forward its weak nodes
    outdate_if_weak();
    reconcile_after_lost_primary();
  }
  if (was_target) {
    allow_handshake_reruns();
    resume_deferred_resyncs();  // another source may serve us now
  }
  reroute_reads_from(peer);
}

// Our resync source is gone: an UpToDate peer whose connection already had its rerun
// (resync_from_up_to_date_peer) before this resync began may serve us now (diskless swarm seed
// 910: the source detached mid-resync, and the target stayed Inconsistent for good).
void Node::allow_handshake_reruns() {
  for (Peer& other : configured_peers()) other.outdated_handshake_rerun = false;
}

// We lost our Primary and marked the writes of it that no PeerAck confirmed out of sync toward
// our other peers (mark_unacked_peer_writes): a Secondary still connected to us may miss them,
// and no handshake between us would ever compare (DRBD's reconciliation resync after a lost
// Primary, §3.5 step 3, started by P_PEER_DAGTAG on the live connections). Neither the Primary's
// bitmap when it returns (it covers only its own copy; a diskless Primary has none) nor a
// failover's new generation covers the survivors' difference: without this two Secondaries end
// UpToDate on one generation with different blocks (swarm seeds 2422, 2752, 2907, 2937). So we
// rerun the handshake (reconnect), whose same-generation rule reconciles from the side with
// bits. DRBD does it on the live connection; an in-place variant (uuid_flag + both sides
// deciding from each other's reports) broke swarm seeds 574 and 2485, where equal dagtags did
// not mean equal blocks, and waits for a better design.
// An Outdated peer of an older generation (the Primary moved on without it while we stayed
// connected to both) gets the same rerun: nobody else resyncs it now, and as the stale peers
// resync among themselves and turn UpToDate it could be promoted over our newer data
// (quorum+diskless swarm seed 3184).
void Node::reconcile_after_lost_primary() {
  if (disk_state_ != DiskState::up_to_date) return;
  for (Peer& other : configured_peers()) {
    if (other.status.connection != ConnectionState::connected ||
        other.status.replication != ReplicationState::established ||
        other.status.role == Role::primary || other.intentional_diskless) {
      continue;
    }
    const bool left_behind =
        other.status.disk == DiskState::outdated &&
        comparable_current(other.uuids.current) != comparable_current(generations_.uuids.current);
    const bool bits = other.status.disk == DiskState::up_to_date && other.bitmap->count_set() != 0;
    if (!left_behind && !bits) continue;
    actions_.push_back(
        Disconnect{other.status.node_id, "reconnecting to reconcile the writes of a lost Primary"});
    peer_lost(other, ConnectionState::protocol_error);
  }
}

}  // namespace ditto::core
