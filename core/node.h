// The replication state machine for one resource with one volume (sans-IO).
//
// A Node takes inputs (on_* calls with the current time) and produces Actions that its driver
// executes: the simulator against a simulated disk and network, the daemon against io_uring and
// TCP. Inputs never re-enter: the driver feeds completions on a later turn of its loop.
//
// What this version implements (growing toward DRBD 9 semantics, drbd9-semantics.md §1, §2):
// - the state model of core/state.h: every change of role, disk, connection, peer role, peer
//   disk or replication state is sanitized, validated by check_transition and committed in one
//   place (Node::change_state), and each commit emits events2 `change` lines;
// - writes per protocol (NodeConfig::protocol, the same toward every peer): A completes when the
//   Data is handed to the driver (the Send action), B when the peer's RecvAck arrives, C when its
//   WriteAck arrives; a peer that disconnects stops counting;
// - epochs and barriers (§2.2): a new epoch starts when a write completes to the client while
//   still in the current epoch, after max_epoch_size writes, on a client flush and on demotion;
//   each connection gets Barrier{epoch} after that epoch's writes. A Secondary submits the writes
//   of one epoch only after every write of the previous epoch completed and (with disk_flushes)
//   a DiskFlush made them stable, then answers BarrierAck{barrier, set_size}; the Primary checks
//   it against its oldest open epoch on that connection (a mismatch drops the connection);
// - promotion as a two-phase commit over the connected peers (see on_admin below);
// - reads served from the local disk; client flushes carried to every connected peer behind a
//   barrier; FUA carried on Data;
// - on-io-error detach: a failed local read, write or flush takes the disk Failed, then
//   Diskless, and tells the peers; a diskless Primary writes through its UpToDate peers and
//   refuses reads (no_data); a write that completes without a peer starts a new generation;
// - a connection handshake (Hello with version range, then StateReport) and a data generation
//   counter so a node that missed writes is Outdated, not silently served as UpToDate;
// - backpressure: at most requests_in_flight_max client requests, and at most that many writes
//   per connection not yet covered by a BarrierAck; beyond either, ClientStatus::busy.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/prng.h"
#include "core/state.h"
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
  // DRBD max-epoch-size: writes in one epoch before a new one starts (1..20000).
  std::uint32_t max_epoch_size = 2048;
  // DRBD disk-flushes: a Secondary flushes its disk before acknowledging a barrier. Without it
  // the write ordering is `drain` (wait for the epoch's writes, no flush).
  bool disk_flushes = true;
  // Two-phase commits: an attempt whose replies do not all arrive within twopc_timeout fails
  // (SS_TIMEOUT); a participant forgets a prepared transaction after twopc_timeout. An attempt
  // refused as busy is retried after a random delay in [twopc_retry_timeout / 2,
  // twopc_retry_timeout], for at most twice twopc_timeout in all.
  Duration twopc_timeout = Duration::from_ms(30'000);
  Duration twopc_retry_timeout = Duration::from_ms(100);
  // Seeds the node's random choices (transaction ids, retry delays); mixed with node_id.
  std::uint64_t seed = 0;
};

// Timers a Node arms (ArmTimer) and expects back through on_timer.
inline constexpr TimerId timer_twopc_initiator{1};    // own promotion: timeout or retry
inline constexpr TimerId timer_twopc_participant{2};  // a prepared foreign transaction

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

// Call on_timer(timer) at `deadline` (or later). Arming an armed timer moves its deadline.
struct ArmTimer {
  TimerId timer;
  Instant deadline;
};

// The timer need not fire any more (firing anyway is harmless: the node ignores it).
struct CancelTimer {
  TimerId timer;
};

using Action = std::variant<DiskWrite, DiskRead, DiskFlush, Send, CompleteClient, ReleasePayload,
                            Disconnect, Event, ArmTimer, CancelTimer>;

// ---- Admin ------------------------------------------------------------------------------------

struct Promote {
  bool force = false;
};
struct Demote {};
using AdminCommand = std::variant<Promote, Demote>;

// The outcome of an admin request; refusals carry DRBD's SS_* name and a sentence.
//
// A promotion with connected peers is a two-phase commit and cannot finish inside on_admin: it
// returns {ok = true, pending = true}. The final outcome comes later: promotion_pending() turns
// false, promotion_outcome() holds the result, and an Event line
// `response primary name:<res> result:<SS_*> [message:"..."]` reports it. Client writes that
// arrive while the promotion is pending wait for it (as DRBD's auto-promote blocks the opener)
// and are refused with not_primary if it fails. Callers that only look at `ok` keep working.
struct AdminResult {
  bool ok = true;
  std::string code;  // e.g. "SS_NO_UP_TO_DATE_DISK"; empty on success
  std::string message;
  bool pending = false;  // accepted, outcome reported later (see above)
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

  // A timer armed with ArmTimer expired. Unknown or cancelled timers are ignored.
  void on_timer(Instant now, TimerId timer);

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
  bool promotion_pending() const { return promotion_.has_value(); }
  // The outcome of the last promotion that returned pending, once decided.
  const std::optional<AdminResult>& promotion_outcome() const { return promotion_outcome_; }
  // The current state in the vocabulary of core/state.h.
  ClusterState cluster_state() const;
  std::uint32_t current_epoch() const { return current_epoch_; }

  // Checks every invariant; called on exit from every on_*. Public for tests.
  void invariants() const;

 private:
  // An epoch closed by a Barrier on one connection, waiting for the peer's BarrierAck.
  struct SentEpoch {
    std::uint32_t barrier = 0;
    std::uint32_t set_size = 0;
  };

  // What a Secondary received from its Primary and has not yet processed, in stream order.
  struct InboxItem {
    enum class Kind : std::uint8_t { data, barrier, flush };
    Kind kind = Kind::data;
    wire::Data data;
    PayloadHandle payload;
    std::uint64_t id = 0;  // Barrier number or FlushRequest id
  };

  struct Peer {
    PeerStatus status;
    bool configured = false;
    bool transport_up = false;
    bool hello_received = false;
    bool state_received = false;
    // Sending side (this node is Primary).
    std::uint32_t epoch_writes_sent = 0;  // Data sent in the current epoch
    std::deque<SentEpoch> epochs_awaiting_ack;
    std::uint32_t writes_awaiting_barrier_ack = 0;
    // Receiving side (this node is Secondary).
    std::deque<InboxItem> inbox;
    std::uint32_t receive_epoch_writes = 0;  // Data submitted in the epoch being written
    std::uint32_t receive_epoch_active = 0;  // of those, not yet completed by the disk
    bool receive_flushing = false;           // the inbox front waits for its DiskFlush
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
    std::uint32_t epoch = 0;
  };

  // A write or flush received from a peer, waiting for the local disk.
  struct PeerIo {
    NodeId peer;
    std::uint64_t id = 0;  // Data.sequence; unused for flushes (the inbox front says why)
    bool is_flush = false;
    bool send_write_ack = false;
    std::optional<PayloadHandle> payload;
    std::uint32_t connection_epoch = 0;
  };

  // A client write waiting for this node's pending promotion.
  struct HeldWrite {
    RequestId request;
    Sector sector;
    std::uint32_t length_bytes = 0;
    PayloadHandle payload;
    WriteFlags flags;
  };

  // This node's own promotion, a two-phase commit (§1.3 step 4).
  struct Promotion {
    bool force = false;
    std::uint64_t transaction_id = 0;
    std::uint32_t participants_mask = 0;  // peers sent TwoPcPrepare in this attempt
    std::uint32_t waiting_mask = 0;       // of those, not yet replied
    bool retry = false;                   // some peer answered retry (busy)
    StateChangeResult refusal;            // the first `no`
    bool backing_off = false;             // between an aborted attempt and its retry
    Instant give_up_at;
    bool announced = false;  // on_admin returned pending; report the outcome
  };

  struct Prepared {
    NodeId initiator;
    std::uint64_t transaction_id = 0;
  };

  bool in_range(Sector sector, std::uint32_t length_bytes) const;
  IoId next_io() { return IoId{next_io_++}; }
  Peer& peer_ref(NodeId peer);
  bool peer_replicating(const Peer& peer) const;
  std::uint32_t replication_targets_mask() const;
  std::uint32_t handshaken_peers_mask() const;
  std::uint32_t client_requests() const;

  // Client writes (node.cpp).
  std::optional<ClientStatus> write_refusal(Sector sector, std::uint32_t length_bytes) const;
  void admit_write(RequestId request, Sector sector, std::uint32_t length_bytes,
                   PayloadHandle payload, WriteFlags flags);
  void send_data(Peer& peer, std::uint64_t sequence, Request& entry, std::uint32_t flags);
  void close_epoch();
  void release_held_writes(bool promoted);

  // Peer messages (node_peer.cpp).
  void dispatch(Instant now, Peer& peer, const wire::Message& message, PayloadHandle payload);
  void on_hello(Instant now, Peer& peer, const wire::Hello& hello);
  void on_state_report(Instant now, Peer& peer, const wire::StateReport& state);
  void on_data(Instant now, Peer& peer, const wire::Data& data, PayloadHandle payload);
  void on_write_ack(Peer& peer, std::uint64_t sequence, bool ok, wire::MessageType type);
  void on_barrier(Peer& peer, const wire::Barrier& barrier);
  void on_barrier_ack(Peer& peer, const wire::BarrierAck& ack);
  void on_flush_request(Peer& peer, const wire::FlushRequest& flush);
  void on_flush_ack(Peer& peer, const wire::FlushAck& ack);
  void on_peer_io_completed(const PeerIo& peer_io, IoStatus status);
  void enqueue(Peer& peer, InboxItem item);
  void pump_inbox(Peer& peer);
  void finish_inbox_front(Peer& peer, bool ok);
  bool drain_inbox_front_without_disk(Peer& peer);
  void clear_peer_streams(Peer& peer);

  void resolve_generations(Peer& peer);
  void note_write_while_degraded();
  void start_new_generation();
  void release_requests_from_non_targets();
  void protocol_error(Peer& peer, std::string reason);
  void peer_lost(Peer& peer, ConnectionState failure);
  void maybe_complete(std::uint64_t sequence);
  void complete(std::uint64_t sequence, ClientStatus status);
  void send_state_to_connected_peers();
  void send_state(const Peer& peer);

  // State changes and promotion (node_state.cpp).
  StateChangeResult change_state(ClusterState proposed, bool hard, bool force = false);
  void detach_local_disk();
  bool local_disk_detached() const { return disk_state_ <= DiskState::failed; }
  void commit_state(const ClusterState& old, const ClusterState& next);
  void set_connection(Peer& peer, ConnectionState state);
  StateChangeResult check_promotion(bool force, ClusterState& proposed) const;
  AdminResult promote(Instant now, const Promote& promote);
  AdminResult demote();
  void start_promotion_attempt(Instant now);
  void promotion_reply_arrived(Instant now);
  void decide_promotion(Instant now);
  void back_off(Instant now);
  void abort_participants();
  void finish_promotion(StateChangeResult result);
  bool commit_promotion(bool force);
  void on_twopc_prepare(Instant now, Peer& peer, const wire::TwoPcPrepare& prepare);
  void on_twopc_reply(Instant now, Peer& peer, const wire::TwoPcReply& reply);
  void on_twopc_decision(Peer& peer, NodeId initiator, std::uint64_t transaction_id, bool commit);
  void twopc_peer_lost(Instant now, Peer& peer);
  void arm_timer(TimerId timer, Instant deadline);
  void cancel_timer(TimerId timer);

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

  std::map<std::uint64_t, Request> requests_;              // by sequence
  std::map<std::uint64_t, std::uint64_t> requests_by_io_;  // IoId → sequence
  std::map<std::uint64_t, PeerIo> peer_ios_;               // IoId → peer write/flush
  std::deque<HeldWrite> held_writes_;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t next_io_ = 1;
  std::uint32_t current_epoch_ = 1;
  std::uint32_t current_epoch_writes_ = 0;

  std::optional<Promotion> promotion_;
  std::optional<AdminResult> promotion_outcome_;
  std::optional<Prepared> prepared_;
  std::map<std::uint64_t, Instant> timers_armed_;  // TimerId → deadline
  Prng prng_;

  NodeStatistics statistics_;
  std::vector<Action> actions_;
};

}  // namespace ditto::core
