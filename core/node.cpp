#include "core/node.h"

#include <utility>

#include "core/assert.h"

namespace ditto::core {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::uint32_t bit(NodeId node) { return 1u << node.value; }

// A generation is counter * 32 + the node id that started it, so two nodes that each start a
// new generation from the same base produce different values (and a split brain is visible).
constexpr std::uint64_t generation_counter(std::uint64_t generation) { return generation >> 5; }

std::string generation_text(std::uint64_t generation) {
  return std::to_string(generation_counter(generation)) + "." +
         std::to_string(generation & 31u);
}

}  // namespace

const char* to_string(ClientStatus status) {
  switch (status) {
    case ClientStatus::ok: return "ok";
    case ClientStatus::io_error: return "io_error";
    case ClientStatus::not_primary: return "not_primary";
    case ClientStatus::no_data: return "no_data";
    case ClientStatus::out_of_range: return "out_of_range";
    case ClientStatus::busy: return "busy";
  }
  return "unknown";
}

Node::Node(NodeConfig config) : config_(std::move(config)) {
  DITTO_ASSERT(config_.node_id.value <= node_id_max);
  DITTO_ASSERT(config_.volume_size_bytes % sector_size_bytes == 0);
  disk_state_ = config_.initial_disk_state;
  generation_ = config_.initial_generation;
  for (const PeerConfig& peer_config : config_.peers) {
    DITTO_ASSERT(peer_config.node_id.value <= node_id_max);
    DITTO_ASSERT(peer_config.node_id != config_.node_id);
    Peer& peer = peers_[peer_config.node_id.value];
    DITTO_ASSERT(!peer.configured);
    peer.configured = true;
    peer.status.node_id = peer_config.node_id;
    peer.status.name = peer_config.name;
  }
  invariants();
}

// ---- Client I/O -------------------------------------------------------------------------------

void Node::on_client_write(Instant now, RequestId request, Sector sector,
                           std::uint32_t length_bytes, PayloadHandle payload, WriteFlags flags) {
  (void)now;
  auto refuse = [&](ClientStatus status) {
    actions_.push_back(CompleteClient{request, status, std::nullopt});
    actions_.push_back(ReleasePayload{payload});
  };
  if (role_ != Role::primary) return refuse(ClientStatus::not_primary), invariants();
  if (!in_range(sector, length_bytes)) return refuse(ClientStatus::out_of_range), invariants();
  if (requests_.size() >= config_.requests_in_flight_max) {
    return refuse(ClientStatus::busy), invariants();
  }
  if (disk_state_ != DiskState::up_to_date) return refuse(ClientStatus::io_error), invariants();

  note_write_while_degraded();
  const std::uint64_t sequence = next_sequence_++;
  Request& entry = requests_[sequence];
  entry.kind = RequestKind::write;
  entry.client = request;
  entry.sector = sector;
  entry.length_bytes = length_bytes;
  entry.payload = payload;
  entry.local_pending = true;
  entry.io = next_io();
  requests_by_io_[entry.io->value] = sequence;
  actions_.push_back(DiskWrite{*entry.io, sector, length_bytes, payload, flags.fua});

  const std::uint32_t flags_wire = flags.fua ? wire::data_flag_fua : 0u;
  for (Peer& peer : peers_) {
    if (!peer_replicating(peer)) continue;
    entry.peers_pending_mask |= bit(peer.status.node_id);
    peer.status.pending_writes += 1;
    peer.status.sent_bytes += length_bytes;
    actions_.push_back(Send{peer.status.node_id,
                            wire::Data{sequence, sector, length_bytes, flags_wire}, payload});
  }
  statistics_.written_bytes += length_bytes;
  statistics_.upper_pending += 1;
  DITTO_ASSERT(entry.local_pending);
  invariants();
}

void Node::on_client_read(Instant now, RequestId request, Sector sector,
                          std::uint32_t length_bytes, std::optional<PayloadHandle> buffer) {
  (void)now;
  if (!in_range(sector, length_bytes)) {
    actions_.push_back(CompleteClient{request, ClientStatus::out_of_range, std::nullopt});
    return invariants();
  }
  if (disk_state_ != DiskState::up_to_date || requests_.size() >= config_.requests_in_flight_max) {
    const ClientStatus status = disk_state_ != DiskState::up_to_date ? ClientStatus::no_data
                                                                     : ClientStatus::busy;
    actions_.push_back(CompleteClient{request, status, std::nullopt});
    return invariants();
  }
  const std::uint64_t sequence = next_sequence_++;
  Request& entry = requests_[sequence];
  entry.kind = RequestKind::read;
  entry.client = request;
  entry.sector = sector;
  entry.length_bytes = length_bytes;
  entry.local_pending = true;
  entry.io = next_io();
  requests_by_io_[entry.io->value] = sequence;
  actions_.push_back(DiskRead{*entry.io, sector, length_bytes, buffer});
  statistics_.read_bytes += length_bytes;
  statistics_.upper_pending += 1;
  invariants();
}

void Node::on_client_flush(Instant now, RequestId request) {
  (void)now;
  if (requests_.size() >= config_.requests_in_flight_max) {
    actions_.push_back(CompleteClient{request, ClientStatus::busy, std::nullopt});
    return invariants();
  }
  const std::uint64_t sequence = next_sequence_++;
  Request& entry = requests_[sequence];
  entry.kind = RequestKind::flush;
  entry.client = request;
  if (disk_state_ == DiskState::up_to_date) {
    entry.local_pending = true;
    entry.io = next_io();
    requests_by_io_[entry.io->value] = sequence;
    actions_.push_back(DiskFlush{*entry.io});
  }
  for (Peer& peer : peers_) {
    if (!peer_replicating(peer)) continue;
    entry.peers_pending_mask |= bit(peer.status.node_id);
    actions_.push_back(Send{peer.status.node_id, wire::FlushRequest{sequence}, std::nullopt});
  }
  statistics_.upper_pending += 1;
  maybe_complete(sequence);
  invariants();
}

bool Node::in_range(Sector sector, std::uint32_t length_bytes) const {
  if (length_bytes == 0 || length_bytes % sector_size_bytes != 0) return false;
  if (length_bytes > wire::payload_size_max_bytes) return false;
  const std::uint64_t size_sectors = config_.volume_size_bytes / sector_size_bytes;
  const std::uint64_t length_sectors = length_bytes / sector_size_bytes;
  return sector.value <= size_sectors && length_sectors <= size_sectors - sector.value;
}

// ---- Completion -------------------------------------------------------------------------------

void Node::on_disk_completed(Instant now, IoId io, IoStatus status) {
  (void)now;
  if (auto peer_io = peer_ios_.find(io.value); peer_io != peer_ios_.end()) {
    const PeerIo entry = peer_io->second;
    peer_ios_.erase(peer_io);
    on_peer_io_completed(entry, status);
    return invariants();
  }
  auto found = requests_by_io_.find(io.value);
  DITTO_ASSERT(found != requests_by_io_.end());  // the driver only completes what we issued
  const std::uint64_t sequence = found->second;
  requests_by_io_.erase(found);
  Request& entry = requests_.at(sequence);
  DITTO_ASSERT(entry.local_pending);
  entry.local_pending = false;
  entry.local_ok = status == IoStatus::ok;
  maybe_complete(sequence);
  invariants();
}

void Node::maybe_complete(std::uint64_t sequence) {
  const Request& entry = requests_.at(sequence);
  if (entry.local_pending || entry.peers_pending_mask != 0) return;
  if (entry.kind == RequestKind::read) {
    return complete(sequence, entry.local_ok ? ClientStatus::ok : ClientStatus::io_error);
  }
  // DRBD reports success when at least one of {local, any peer} stored the data (§2.1 step 5).
  const bool any_ok = entry.local_ok || entry.peers_ok_mask != 0;
  complete(sequence, any_ok ? ClientStatus::ok : ClientStatus::io_error);
}

void Node::complete(std::uint64_t sequence, ClientStatus status) {
  auto found = requests_.find(sequence);
  DITTO_ASSERT(found != requests_.end());
  const Request entry = found->second;
  requests_.erase(found);
  DITTO_ASSERT(statistics_.upper_pending > 0);
  statistics_.upper_pending -= 1;
  std::optional<IoId> read_io;
  if (entry.kind == RequestKind::read && status == ClientStatus::ok) read_io = entry.io;
  actions_.push_back(CompleteClient{entry.client, status, read_io});
  if (entry.payload) actions_.push_back(ReleasePayload{*entry.payload});
}

// ---- Peer messages ----------------------------------------------------------------------------

void Node::on_connection_up(Instant now, NodeId peer_id) {
  (void)now;
  Peer& peer = peer_ref(peer_id);
  DITTO_ASSERT(peer.status.connection != ConnectionState::connected);
  connection_epochs_[peer_id.value] += 1;
  peer.hello_received = false;
  peer.state_received = false;
  peer.status.connection = ConnectionState::connecting;
  wire::Hello hello;
  hello.sender = config_.node_id;
  hello.receiver = peer_id;
  hello.resource_name = config_.resource_name;
  actions_.push_back(Send{peer_id, hello, std::nullopt});
  send_state(peer);
  invariants();
}

void Node::on_connection_down(Instant now, NodeId peer_id) {
  (void)now;
  Peer& peer = peer_ref(peer_id);
  if (peer.status.connection == ConnectionState::standalone) return invariants();
  peer_lost(peer, ConnectionState::connecting);
  invariants();
}

void Node::on_message(Instant now, NodeId peer_id, const wire::Message& message,
                      PayloadHandle payload) {
  Peer& peer = peer_ref(peer_id);
  const bool is_data = std::holds_alternative<wire::Data>(message);
  if (peer.status.connection == ConnectionState::standalone ||
      connection_epochs_[peer_id.value] == 0) {
    // A late message from a connection we already dropped: ignore it.
    if (is_data) actions_.push_back(ReleasePayload{payload});
    return invariants();
  }
  const bool handshake_done = peer.hello_received && peer.state_received;
  const bool is_hello = std::holds_alternative<wire::Hello>(message);
  const bool is_state = std::holds_alternative<wire::StateReport>(message);
  if (!peer.hello_received && !is_hello) {
    if (is_data) actions_.push_back(ReleasePayload{payload});
    protocol_error(peer, std::string("expected Hello, got ") +
                             wire::to_string(wire::type_of(message)));
    return invariants();
  }
  if (peer.hello_received && !handshake_done && !is_state) {
    if (is_data) actions_.push_back(ReleasePayload{payload});
    protocol_error(peer, std::string("expected State, got ") +
                             wire::to_string(wire::type_of(message)));
    return invariants();
  }
  std::visit(Overloaded{
                 [&](const wire::Hello& hello) { on_hello(now, peer, hello); },
                 [&](const wire::StateReport& state) { on_state_report(now, peer, state); },
                 [&](const wire::Data& data) { on_data(now, peer, data, payload); },
                 [&](const wire::WriteAck& ack) { on_write_ack(peer, ack); },
                 [&](const wire::FlushRequest& flush) { on_flush_request(peer, flush); },
                 [&](const wire::FlushAck& ack) { on_flush_ack(peer, ack); },
             },
             message);
  invariants();
}

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
  peer.hello_received = true;
}

void Node::on_state_report(Instant now, Peer& peer, const wire::StateReport& state) {
  (void)now;
  const bool first = !peer.state_received;
  const Role old_role = peer.status.role;
  const DiskState old_disk = peer.status.disk;
  peer.state_received = true;
  peer.status.role = state.role;
  peer.status.disk = state.disk_state;
  peer.status.generation = state.generation;
  if (state.role == Role::primary && role_ == Role::primary) {
    return protocol_error(peer, "both nodes are Primary and allow-two-primaries is not set");
  }
  if (first) {
    peer.status.connection = ConnectionState::connected;
    peer.status.replication = ReplicationState::established;
    emit_connection_event(peer);
    resolve_generations(peer);
    if (peer.status.connection != ConnectionState::connected) return;
    emit_peer_device_event(peer);
    return;
  }
  if (old_role != peer.status.role) emit_connection_event(peer);
  if (old_disk != peer.status.disk) emit_peer_device_event(peer);
}

// Compares data generations at the handshake (a stand-in for DRBD's UUID comparison until the
// full rule table of §3.4 lands): equal means same data; the same counter from two different
// origins means both sides wrote independently (split brain); otherwise the higher one is newer.
void Node::resolve_generations(Peer& peer) {
  const std::uint64_t mine = generation_;
  const std::uint64_t theirs = peer.status.generation;
  if (mine == theirs) return;
  const bool peer_newer = generation_counter(theirs) > generation_counter(mine);
  const bool diverged = generation_counter(theirs) == generation_counter(mine) ||
                        (peer_newer && role_ == Role::primary);
  if (diverged) {
    const std::string reason = "split brain detected: local generation " +
                               generation_text(mine) + ", peer generation " +
                               generation_text(theirs) + "; refusing to connect";
    actions_.push_back(Event{"split-brain name:" + config_.resource_name + " peer-node-id:" +
                             std::to_string(peer.status.node_id.value) + " conn-name:" +
                             peer.status.name + " local-generation:" + generation_text(mine) +
                             " peer-generation:" + generation_text(theirs)});
    actions_.push_back(Disconnect{peer.status.node_id, reason});
    peer_lost(peer, ConnectionState::standalone);
    return;
  }
  if (peer_newer && disk_state_ == DiskState::up_to_date) {
    disk_state_ = DiskState::outdated;
    emit_device_event();
    emit_resource_event();
    send_state_to_connected_peers();
  }
}

void Node::on_data(Instant now, Peer& peer, const wire::Data& data, PayloadHandle payload) {
  (void)now;
  if (role_ == Role::primary) {
    actions_.push_back(ReleasePayload{payload});
    return protocol_error(peer, "Data received while Primary");
  }
  if (!in_range(data.sector, data.length_bytes)) {
    actions_.push_back(ReleasePayload{payload});
    return protocol_error(peer, "Data beyond the end of the volume at sector " +
                                    std::to_string(data.sector.value));
  }
  const IoId io = next_io();
  peer_ios_[io.value] = PeerIo{peer.status.node_id, data.sequence, false, payload,
                               connection_epochs_[peer.status.node_id.value]};
  peer.status.received_bytes += data.length_bytes;
  statistics_.written_bytes += data.length_bytes;
  const bool fua = (data.flags & wire::data_flag_fua) != 0;
  actions_.push_back(DiskWrite{io, data.sector, data.length_bytes, payload, fua});
}

void Node::on_flush_request(Peer& peer, const wire::FlushRequest& flush) {
  const IoId io = next_io();
  peer_ios_[io.value] = PeerIo{peer.status.node_id, flush.flush_id, true, std::nullopt,
                               connection_epochs_[peer.status.node_id.value]};
  actions_.push_back(DiskFlush{io});
}

void Node::on_peer_io_completed(const PeerIo& peer_io, IoStatus status) {
  if (peer_io.payload) actions_.push_back(ReleasePayload{*peer_io.payload});
  const Peer& peer = peers_[peer_io.peer.value];
  const bool same_connection =
      peer.status.connection == ConnectionState::connected &&
      connection_epochs_[peer_io.peer.value] == peer_io.connection_epoch;
  if (!same_connection) return;  // the requester is gone; it counts us as not OK
  const bool ok = status == IoStatus::ok;
  if (peer_io.is_flush) {
    actions_.push_back(Send{peer_io.peer, wire::FlushAck{peer_io.id, ok}, std::nullopt});
  } else {
    actions_.push_back(Send{peer_io.peer, wire::WriteAck{peer_io.id, ok}, std::nullopt});
  }
}

void Node::on_write_ack(Peer& peer, const wire::WriteAck& ack) {
  auto found = requests_.find(ack.sequence);
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  if (found == requests_.end() || found->second.kind != RequestKind::write ||
      (found->second.peers_pending_mask & peer_bit) == 0) {
    return protocol_error(peer, "WriteAck for unknown write " + std::to_string(ack.sequence));
  }
  Request& entry = found->second;
  entry.peers_pending_mask &= ~peer_bit;
  if (ack.ok) entry.peers_ok_mask |= peer_bit;
  DITTO_ASSERT(peer.status.pending_writes > 0);
  peer.status.pending_writes -= 1;
  maybe_complete(ack.sequence);
}

void Node::on_flush_ack(Peer& peer, const wire::FlushAck& ack) {
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

// ---- Connection loss --------------------------------------------------------------------------

void Node::protocol_error(Peer& peer, std::string reason) {
  actions_.push_back(Event{"protocol-error name:" + config_.resource_name + " peer-node-id:" +
                           std::to_string(peer.status.node_id.value) + " conn-name:" +
                           peer.status.name + " reason:\"" + reason + "\""});
  actions_.push_back(Disconnect{peer.status.node_id, std::move(reason)});
  peer_lost(peer, ConnectionState::connecting);
}

void Node::peer_lost(Peer& peer, ConnectionState new_state) {
  const std::uint32_t peer_bit = bit(peer.status.node_id);
  const bool was_connected = peer.status.connection == ConnectionState::connected;
  // Bump the epoch so acks for I/O from the old connection are never sent on a new one.
  connection_epochs_[peer.status.node_id.value] += 1;
  peer.hello_received = false;
  peer.state_received = false;
  peer.status.connection = new_state;
  peer.status.role = Role::unknown;
  peer.status.disk = DiskState::dunknown;
  peer.status.replication = ReplicationState::off;
  peer.status.pending_writes = 0;
  std::vector<std::uint64_t> touched;
  for (auto& [sequence, entry] : requests_) {
    if ((entry.peers_pending_mask & peer_bit) == 0) continue;
    entry.peers_pending_mask &= ~peer_bit;
    touched.push_back(sequence);
  }
  for (std::uint64_t sequence : touched) maybe_complete(sequence);
  if (was_connected || new_state == ConnectionState::standalone) {
    emit_connection_event(peer);
    emit_peer_device_event(peer);
  }
}

// ---- Admin ------------------------------------------------------------------------------------

AdminResult Node::on_admin(Instant now, const AdminCommand& command) {
  (void)now;
  AdminResult result = std::visit(
      Overloaded{
          [&](const Promote& promote) -> AdminResult {
            if (role_ == Role::primary) return {};
            if (disk_state_ != DiskState::up_to_date && !promote.force) {
              return {false, "SS_NO_UP_TO_DATE_DISK",
                      std::string("local disk is ") + std::string(to_string(disk_state_)) +
                          ", not UpToDate; use --force to promote anyway"};
            }
            for (const Peer& peer : peers_) {
              if (peer.configured && peer.status.connection == ConnectionState::connected &&
                  peer.status.role == Role::primary) {
                return {false, "SS_TWO_PRIMARIES",
                        "peer " + peer.status.name + " is Primary and allow-two-primaries is off"};
              }
            }
            if (disk_state_ != DiskState::up_to_date) {
              disk_state_ = DiskState::up_to_date;
              emit_device_event();
            }
            role_ = Role::primary;
            generation_bumped_for_outage_ = false;
            emit_resource_event();
            send_state_to_connected_peers();
            return {};
          },
          [&](const Demote&) -> AdminResult {
            if (role_ != Role::primary) return {};
            if (!requests_.empty()) {
              return {false, "SS_DEVICE_IN_USE",
                      std::to_string(requests_.size()) + " client requests are in progress"};
            }
            role_ = Role::secondary;
            emit_resource_event();
            send_state_to_connected_peers();
            return {};
          },
      },
      command);
  invariants();
  return result;
}

void Node::note_write_while_degraded() {
  DITTO_ASSERT(role_ == Role::primary);
  bool all_replicating = true;
  for (const Peer& peer : peers_) {
    if (peer.configured && !peer_replicating(peer)) all_replicating = false;
  }
  if (all_replicating) {
    generation_bumped_for_outage_ = false;
    return;
  }
  if (generation_bumped_for_outage_) return;
  // First write while some peer is away: start a new data generation (DRBD rotates the current
  // UUID lazily at this point, §3.2), and tell the peers that are still here.
  generation_bumped_for_outage_ = true;
  generation_ = ((generation_counter(generation_) + 1) << 5) | config_.node_id.value;
  send_state_to_connected_peers();
}

// ---- Helpers ----------------------------------------------------------------------------------

Node::Peer& Node::peer_ref(NodeId peer) {
  DITTO_ASSERT(peer.value <= node_id_max);
  Peer& entry = peers_[peer.value];
  DITTO_ASSERT(entry.configured);  // transports only report configured peers
  return entry;
}

bool Node::peer_replicating(const Peer& peer) const {
  return peer.configured && peer.status.connection == ConnectionState::connected &&
         peer.state_received && peer.status.disk == DiskState::up_to_date &&
         disk_state_ == DiskState::up_to_date;
}

std::uint32_t Node::replication_targets_mask() const {
  std::uint32_t mask = 0;
  for (const Peer& peer : peers_) {
    if (peer_replicating(peer)) mask |= bit(peer.status.node_id);
  }
  return mask;
}

void Node::send_state(const Peer& peer) {
  actions_.push_back(Send{peer.status.node_id, wire::StateReport{role_, disk_state_, generation_},
                          std::nullopt});
}

void Node::send_state_to_connected_peers() {
  for (const Peer& peer : peers_) {
    if (peer.configured && peer.status.connection == ConnectionState::connected) send_state(peer);
  }
}

std::vector<Action> Node::take_actions() {
  std::vector<Action> taken;
  taken.swap(actions_);
  return taken;
}

std::vector<PeerStatus> Node::peers() const {
  std::vector<PeerStatus> result;
  for (const Peer& peer : peers_) {
    if (peer.configured) result.push_back(peer.status);
  }
  return result;
}

std::optional<PeerStatus> Node::peer(NodeId peer_id) const {
  if (peer_id.value > node_id_max || !peers_[peer_id.value].configured) return std::nullopt;
  return peers_[peer_id.value].status;
}

bool Node::may_promote() const {
  if (role_ == Role::primary) return false;
  for (const Peer& peer : peers_) {
    if (peer.configured && peer.status.role == Role::primary) return false;
  }
  return disk_state_ == DiskState::up_to_date;
}

std::uint32_t Node::promotion_score() const {
  // 10000 * (all local disks present) + 100 * min(#local UpToDate, 99) + min(UpToDate replicas, 99)
  const bool has_disk = disk_state_ != DiskState::diskless;
  const std::uint32_t local_up_to_date = disk_state_ == DiskState::up_to_date ? 1 : 0;
  std::uint32_t replicas = local_up_to_date;
  for (const Peer& peer : peers_) {
    if (peer.configured && peer.status.disk == DiskState::up_to_date) replicas += 1;
  }
  return (has_disk ? 10000u : 0u) + 100u * local_up_to_date + (replicas > 99 ? 99 : replicas);
}

void Node::invariants() const {
  DITTO_ASSERT(requests_.size() <= config_.requests_in_flight_max);
  DITTO_ASSERT(statistics_.upper_pending == requests_.size());
  const std::uint32_t targets = replication_targets_mask();
  for (const auto& [sequence, entry] : requests_) {
    DITTO_ASSERT(sequence < next_sequence_);
    // A pending peer is always one we are still replicating to: losing it clears the bit.
    DITTO_ASSERT((entry.peers_pending_mask & ~targets) == 0 || disk_state_ != DiskState::up_to_date);
    DITTO_ASSERT(entry.local_pending == (entry.io.has_value() &&
                                         requests_by_io_.count(entry.io->value) == 1));
  }
  for (const Peer& peer : peers_) {
    if (!peer.configured) continue;
    if (peer.status.connection == ConnectionState::connected && role_ == Role::primary) {
      DITTO_ASSERT(peer.status.role != Role::primary);
    }
  }
}

// ---- Events (drbdsetup events2 shapes, §13.3) -------------------------------------------------

void Node::emit_resource_event() {
  actions_.push_back(Event{"change resource name:" + config_.resource_name + " role:" +
                           std::string(to_string(role_)) + " may_promote:" +
                           (may_promote() ? "yes" : "no") +
                           " promotion_score:" + std::to_string(promotion_score())});
}

void Node::emit_device_event() {
  actions_.push_back(Event{"change device name:" + config_.resource_name +
                           " volume:0 minor:0 disk:" + std::string(to_string(disk_state_))});
}

void Node::emit_connection_event(const Peer& peer) {
  actions_.push_back(Event{"change connection name:" + config_.resource_name + " peer-node-id:" +
                           std::to_string(peer.status.node_id.value) + " conn-name:" +
                           peer.status.name + " connection:" +
                           std::string(to_string(peer.status.connection)) + " role:" +
                           std::string(to_string(peer.status.role))});
}

void Node::emit_peer_device_event(const Peer& peer) {
  actions_.push_back(Event{
      "change peer-device name:" + config_.resource_name + " peer-node-id:" +
      std::to_string(peer.status.node_id.value) + " conn-name:" + peer.status.name +
      " volume:0 replication:" + std::string(to_string(peer.status.replication)) +
      " peer-disk:" + std::string(to_string(peer.status.disk))});
}

}  // namespace ditto::core
