// The replication state machine for one resource with one volume (sans-IO).
//
// A Node takes inputs (on_* calls with the current time) and produces Actions that its driver
// executes: the simulator against a simulated disk and network, the daemon against io_uring and
// TCP. Inputs never re-enter: the driver feeds completions on a later turn of its loop.
//
// What this version implements (the walking skeleton, growing toward DRBD 9 semantics):
// - roles Primary/Secondary with promotion rules (UpToDate disk needed, no other Primary);
// - protocol C writes to any number of connected peers: a client write completes when the local
//   write and every connected peer's WriteAck are in (a peer that disconnects stops counting);
// - reads served from the local disk; flushes carried to every connected peer;
// - a connection handshake (Hello with version range, then StateReport) and a data generation
//   counter so a node that missed writes is Outdated, not silently served as UpToDate.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/types.h"
#include "core/wire.h"

namespace ditto::core {

struct PeerConfig {
  NodeId node_id;
  std::string name;
};

struct NodeConfig {
  std::string resource_name;
  NodeId node_id;
  std::string node_name;
  std::vector<PeerConfig> peers;
  Protocol protocol = Protocol::c;
  std::uint64_t volume_size_bytes = 0;
  // Bound on client requests (writes, reads, flushes) in progress; beyond it a request is
  // refused with ClientStatus::busy (backpressure as a value).
  std::uint32_t requests_in_flight_max = 4096;
  // Disk state at start. The skeleton has no metadata yet: a fresh cluster starts UpToDate.
  DiskState initial_disk_state = DiskState::up_to_date;
  std::uint64_t initial_generation = 1;
};

enum class IoStatus : std::uint8_t { ok, io_error };

enum class ClientStatus : std::uint8_t {
  ok,
  io_error,     // neither the local disk nor any peer stored the data
  not_primary,  // writes need the Primary role
  no_data,      // no usable local disk for a read
  out_of_range,
  busy,
};

const char* to_string(ClientStatus status);

struct WriteFlags {
  bool fua = false;
};

// ---- Actions ----------------------------------------------------------------------------------

struct DiskWrite {
  IoId io;
  Sector sector;
  std::uint32_t length_bytes = 0;
  PayloadHandle payload;
  bool fua = false;
};

struct DiskRead {
  IoId io;
  Sector sector;
  std::uint32_t length_bytes = 0;
  // Where the data goes, when the client supplied a destination buffer (the daemon does; the
  // simulator reads tags and needs none).
  std::optional<PayloadHandle> buffer;
};

struct DiskFlush {
  IoId io;
};

// Send `message` to `peer`. For wire::Data the payload bytes of `payload` follow the message.
struct Send {
  NodeId peer;
  wire::Message message;
  std::optional<PayloadHandle> payload;
};

// A client request finished. For a successful read, the data is in the buffer of `read_io`.
struct CompleteClient {
  RequestId request;
  ClientStatus status = ClientStatus::ok;
  std::optional<IoId> read_io;
};

// Core no longer refers to this payload; the driver may free it.
struct ReleasePayload {
  PayloadHandle payload;
};

// Drop the connection to `peer` (a protocol error or a refused handshake); the transport may
// reconnect later.
struct Disconnect {
  NodeId peer;
  std::string reason;
};

// A state change, formatted as a drbdsetup events2 line (without timestamp).
struct Event {
  std::string line;
};

using Action = std::variant<DiskWrite, DiskRead, DiskFlush, Send, CompleteClient, ReleasePayload,
                            Disconnect, Event>;

// ---- Admin ------------------------------------------------------------------------------------

struct Promote {
  bool force = false;
};
struct Demote {};
using AdminCommand = std::variant<Promote, Demote>;

// The outcome of an admin request; refusals carry DRBD's SS_* name and a sentence.
struct AdminResult {
  bool ok = true;
  std::string code;  // e.g. "SS_NO_UP_TO_DATE_DISK"; empty on success
  std::string message;
};

// ---- Observable state -------------------------------------------------------------------------

struct PeerStatus {
  NodeId node_id;
  std::string name;
  ConnectionState connection = ConnectionState::connecting;
  Role role = Role::unknown;
  DiskState disk = DiskState::dunknown;
  ReplicationState replication = ReplicationState::off;
  std::uint64_t generation = 0;
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_bytes = 0;
  std::uint32_t pending_writes = 0;  // writes sent and not yet acknowledged
};

struct NodeStatistics {
  std::uint64_t read_bytes = 0;
  std::uint64_t written_bytes = 0;
  std::uint32_t upper_pending = 0;  // client requests in progress
  std::uint32_t lower_pending = 0;  // local disk operations in progress
};

class Node {
 public:
  explicit Node(NodeConfig config);

  // Client I/O (NBD in the daemon, the workload in the simulator).
  void on_client_write(Instant now, RequestId request, Sector sector, std::uint32_t length_bytes,
                       PayloadHandle payload, WriteFlags flags);
  void on_client_read(Instant now, RequestId request, Sector sector, std::uint32_t length_bytes,
                      std::optional<PayloadHandle> buffer = std::nullopt);
  void on_client_flush(Instant now, RequestId request);

  // Transport events. `peer` must be a configured peer.
  void on_connection_up(Instant now, NodeId peer);
  void on_connection_down(Instant now, NodeId peer);
  // A decoded message from `peer`. `payload` is valid only for wire::Data (the driver registered
  // the received bytes); otherwise it is ignored.
  void on_message(Instant now, NodeId peer, const wire::Message& message, PayloadHandle payload);

  void on_disk_completed(Instant now, IoId io, IoStatus status);

  [[nodiscard]] AdminResult on_admin(Instant now, const AdminCommand& command);

  // Moves the pending actions out; the driver executes them in order.
  std::vector<Action> take_actions();
  bool has_actions() const { return !actions_.empty(); }

  const NodeConfig& config() const { return config_; }
  Role role() const { return role_; }
  DiskState disk_state() const { return disk_state_; }
  std::uint64_t generation() const { return generation_; }
  const NodeStatistics& statistics() const { return statistics_; }
  std::vector<PeerStatus> peers() const;
  std::optional<PeerStatus> peer(NodeId peer) const;
  // drbdsetup's may_promote and promotion_score (drbd9-semantics.md §13.3).
  bool may_promote() const;
  std::uint32_t promotion_score() const;

  // Checks every invariant; called on exit from every on_*. Public for tests.
  void invariants() const;

 private:
  struct Peer {
    PeerStatus status;
    bool configured = false;
    bool hello_received = false;
    bool state_received = false;
  };

  enum class RequestKind : std::uint8_t { write, read, flush };

  struct Request {
    RequestKind kind = RequestKind::write;
    RequestId client;
    Sector sector;
    std::uint32_t length_bytes = 0;
    std::optional<PayloadHandle> payload;
    bool local_pending = false;
    bool local_ok = false;
    std::uint32_t peers_pending_mask = 0;
    std::uint32_t peers_ok_mask = 0;
    std::optional<IoId> io;
  };

  // A write or flush received from a peer, waiting for the local disk.
  struct PeerIo {
    NodeId peer;
    std::uint64_t id = 0;  // Data.sequence or FlushRequest.flush_id
    bool is_flush = false;
    std::optional<PayloadHandle> payload;
    std::uint32_t connection_epoch = 0;
  };

  bool in_range(Sector sector, std::uint32_t length_bytes) const;
  IoId next_io() { return IoId{next_io_++}; }
  Peer& peer_ref(NodeId peer);
  bool peer_replicating(const Peer& peer) const;
  std::uint32_t replication_targets_mask() const;

  void on_hello(Instant now, Peer& peer, const wire::Hello& hello);
  void on_state_report(Instant now, Peer& peer, const wire::StateReport& state);
  void on_data(Instant now, Peer& peer, const wire::Data& data, PayloadHandle payload);
  void on_write_ack(Peer& peer, const wire::WriteAck& ack);
  void on_flush_request(Peer& peer, const wire::FlushRequest& flush);
  void on_flush_ack(Peer& peer, const wire::FlushAck& ack);
  void on_peer_io_completed(const PeerIo& peer_io, IoStatus status);

  void resolve_generations(Peer& peer);
  void note_write_while_degraded();
  void protocol_error(Peer& peer, std::string reason);
  void peer_lost(Peer& peer, ConnectionState new_state);
  void maybe_complete(std::uint64_t sequence);
  void complete(std::uint64_t sequence, ClientStatus status);
  void send_state_to_connected_peers();
  void send_state(const Peer& peer);

  void emit_resource_event();
  void emit_device_event();
  void emit_connection_event(const Peer& peer);
  void emit_peer_device_event(const Peer& peer);

  NodeConfig config_;
  Role role_ = Role::secondary;
  DiskState disk_state_ = DiskState::up_to_date;
  std::uint64_t generation_ = 1;
  // True once a Primary wrote while some configured peer was not replicating: the next write
  // after that moment already bumped the generation, later ones need not.
  bool generation_bumped_for_outage_ = false;
  std::array<Peer, nodes_max> peers_{};
  std::array<std::uint32_t, nodes_max> connection_epochs_{};

  std::map<std::uint64_t, Request> requests_;  // by sequence
  std::map<std::uint64_t, std::uint64_t> requests_by_io_;  // IoId → sequence
  std::map<std::uint64_t, PeerIo> peer_ios_;   // IoId → peer write/flush
  std::uint64_t next_sequence_ = 1;
  std::uint64_t next_io_ = 1;
  NodeStatistics statistics_;
  std::vector<Action> actions_;
};

}  // namespace ditto::core
