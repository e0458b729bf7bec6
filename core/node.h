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
// - reads (node_read.cpp, §9): from the local disk when it is UpToDate, else through a connected
//   UpToDate peer (ReadRequest, answered by Data with data_flag_read_reply or ReadFailed), the
//   place chosen by NodeConfig::read_balancing (core/read_balancing.h); a read whose peer fails
//   it or disconnects is retried on another peer, else fails (io_error), never hangs; a failed
//   local read is retried on a peer. Client flushes carried to every connected peer behind a
//   barrier; FUA carried on Data;
// - on-io-error detach: a failed local read, write or flush takes the disk Failed, then
//   Diskless, and tells the peers; a diskless Primary reads and writes through its UpToDate
//   peers; a write that completes without a peer starts a new generation;
// - data generations (core/generation.h, §3): the current UUID, a bitmap UUID per peer and the
//   history, rotated as §3.2 says (a new current UUID lazily before the first write after
//   promotion or after losing a peer, at once when a write completes without a peer); the
//   handshake (Hello, then StateReport carrying the UUIDs) runs uuid_compare and the §3.5
//   pipeline: no sync, bitmap-based resync either way, full sync, or a refused connection
//   (unrelated data, an unresolved split brain);
// - split brain (node_split_brain.cpp, §6): detected at the handshake and reported on both
//   nodes as an events2 `call helper ... helper:initial-split-brain` line naming both sides'
//   generations and changed blocks; resolved by NodeConfig::split_brain (after-sb-0pri/1pri/
//   2pri, rr-conflict, always-asbp): the victim becomes SyncTarget of the survivor, or both go
//   StandAlone with their data untouched until the administrator's ConnectPeer (with
//   discard_my_data on the victim). DisconnectPeer/ConnectPeer are drbdsetup disconnect/connect;
//   a StandAlone connection stays down (on_connection_up is refused) until ConnectPeer;
// - an out-of-sync bitmap per peer (core/bitmap.h, 4 KiB per bit), set for every write a peer
//   did not get or did not confirm with a BarrierAck before the connection broke; exchanged
//   and merged at the handshake (WFBitMapS/T), then a resync driven by the SyncTarget
//   (node_resync_runs.cpp): one ResyncRequest per run of adjacent blocks (up to 1 MiB),
//   answered by Data with data_flag_resync, written without FUA (a flush before the bits are
//   persisted and before the resync finishes), confirmed by ResyncAck; paced by a rate
//   controller (c-max-rate per 100 ms step, at most c-fill-target in flight, c-min-rate while
//   application I/O is active); application writes during a resync are replicated to the
//   target, and a resync run overtaken by such a write is discarded and requested again; a
//   resync that must wait for another one (one source at a time) is deferred on a live connection
//   and rerun when the other ends; a resynced block is marked toward the other peers, except
//   those the source says it is in sync with (PeersInSync, node_peers_in_sync.cpp), so a
//   restarted node is resynced once, not once per peer;
// - multi-secondary consistency (node_peer_ack.cpp, §2.3): per-epoch PeerAck from the Primary;
//   a Secondary marks a write out of sync toward the nodes a PeerAck does not name, and every
//   unacked write toward all when its Primary vanishes. Secondaries forward the Primary's weak
//   nodes; a weak Secondary that reaches no Primary outdates itself (§1.7 invariant 2), and an
//   UpToDate Primary reconnects an Outdated established peer to resync it; an Outdated or
//   Inconsistent node that follows a Primary without an UpToDate disk reruns the handshake
//   with an UpToDate peer, once per connection;
// - the lost-peer state change (node_lost_peer.cpp, §8.1): with quorum on, a Primary that
//   loses a connection asks the peers it still sees, and starts no new generation (its I/O
//   waiting) until each has answered or is gone too; quorum then counts only those;
// - fencing (node_fencing.cpp, §7; NodeConfig::fencing): a Primary that loses a peer with data
//   runs fence-peer (CallHelper; the exit code comes back through on_helper_done), freezing
//   client I/O until it succeeds with resource-and-stonith (`suspended:fencing`, ResumeIo); a
//   promotion with unknown, not Outdated peers runs fence-peer for them first;
// - online verify (VerifyS/VerifyT, digests computed by the driver: DiskRead::digest),
//   invalidate and invalidate-remote (node_verify.cpp, §5.3);
// - checksum-based resync (NodeConfig::csums_algorithm, csums-after-crash-only; §5.2,
//   node_resync_checksum.cpp): the target asks by digest, equal blocks move no data;
// - backpressure: at most requests_in_flight_max client requests, and at most that many writes
//   per connection not yet covered by a BarrierAck; beyond either, ClientStatus::busy.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/activity_log.h"
#include "core/bitmap.h"
#include "core/fencing.h"
#include "core/generation.h"
#include "core/node_interface.h"
#include "core/prng.h"
#include "core/quorum.h"
#include "core/read_balancing.h"
#include "core/resync_controller.h"
#include "core/state.h"
#include "core/types.h"
#include "core/wire.h"

namespace ditto::core {

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

  // `payload` is the buffer of a DiskRead with allocate_payload (ignored otherwise); `digest`
  // the digest of a DiskRead with `digest` (ignored otherwise, and on an I/O error).
  void on_disk_completed(Instant now, IoId io, IoStatus status,
                         PayloadHandle payload = PayloadHandle{}, std::uint64_t digest = 0);

  [[nodiscard]] AdminResult on_admin(Instant now, const AdminCommand& command);

  // A timer armed with ArmTimer expired. Unknown or cancelled timers are ignored.
  void on_timer(Instant now, TimerId timer);

  // The driver found the local disk unusable outside a disk request of ours (its metadata could
  // not be written): on-io-error detach, as after a failed DiskWrite. Nothing if detached.
  void on_local_disk_failed(Instant now);

  // resync-after (drbd9-semantics.md §5.5): the driver says whether the device this resource's
  // disk section names in `resync-after` (followed transitively) is resyncing or paused now.
  // While it is, every resync of this node is paused (PausedSyncS / PausedSyncT,
  // resync-suspended:dependency here and :peer on the peer), and a resync that starts then
  // starts paused; it goes on where it stopped once the dependency is inactive.
  void on_resync_dependency(Instant now, bool active);
  // Whether a resync with some peer runs or waits paused (SyncSource, SyncTarget, PausedSyncS,
  // PausedSyncT), or one with some peer is suspended (user, peer or dependency): what a device
  // that names this resource in `resync-after` waits for (DRBD's _drbd_may_sync_now). False
  // without a disk: a diskless device ends the chain.
  bool resync_holds_dependents() const;

  // A handler started by CallHelper exited with `exit_code` (see CallHelper). Calls the node
  // does not wait for (notifications, or superseded by a state change) are ignored.
  void on_helper_done(Instant now, HelperCallId call, int exit_code);

  // The answer to CheckDiskSize: the data area of the backing disk now, in bytes (a multiple
  // of 512; it never shrinks). Ignored while diskless.
  void on_disk_size(Instant now, std::uint64_t usable_size_bytes);

  // Moves the pending actions out; the driver executes them in order.
  std::vector<Action> take_actions();
  // The same into a vector the driver keeps between steps: `into` is cleared and swapped with
  // the pending actions, so both vectors keep their capacity and a step allocates nothing.
  void take_actions(std::vector<Action>& into);
  bool has_actions() const { return !actions_.empty(); }

  const NodeConfig& config() const { return config_; }
  // Volume sizes (node_sizes.cpp): the size this node exposes to its clients now (0: a diskless
  // client that has not learned it from a peer yet; client I/O is out_of_range until it has),
  // and the data area of its backing disk (0 while diskless), as its StateReports say.
  std::uint64_t size_bytes() const { return size_bytes_; }
  std::uint64_t usable_size_bytes() const;
  Role role() const { return role_; }
  DiskState disk_state() const { return disk_state_; }
  // The current UUID (bit 0 set while Primary).
  std::uint64_t generation() const { return generations_.uuids.current; }
  const Generations& generations() const { return generations_.uuids; }
  // The generation this node started as Primary that no client saw a completion in yet, or
  // none (current 0). The drivers persist it with the generations.
  UnconfirmedGeneration unconfirmed_generation() const;
  // The out-of-sync bitmap toward `peer` (a configured peer).
  const Bitmap& bitmap_toward(NodeId peer) const;
  const NodeStatistics& statistics() const { return statistics_; }
  std::vector<PeerStatus> peers() const;
  std::optional<PeerStatus> peer(NodeId peer) const;
  // drbdsetup's may_promote and promotion_score (drbd9-semantics.md §13.3).
  bool may_promote() const;
  std::uint32_t promotion_score() const;
  bool promotion_pending() const { return promotion_.has_value(); }
  // The outcome of the last promotion that returned pending, once decided.
  const std::optional<AdminResult>& promotion_outcome() const { return promotion_outcome_; }
  // A Resize this node initiated is undecided; the outcome of the last one, once decided.
  bool resize_pending() const { return resize_.has_value(); }
  const std::optional<AdminResult>& resize_outcome() const { return resize_outcome_; }
  // The current state in the vocabulary of core/state.h.
  ClusterState cluster_state() const;
  std::uint32_t current_epoch() const { return current_epoch_; }
  // Quorum (node_quorum.cpp): whether this node has quorum now (always with quorum off), the
  // last computation, and whether its I/O is suspended for lack of quorum (suspend-io).
  bool have_quorum() const { return have_quorum_; }
  const QuorumOutcome& quorum_outcome() const { return quorum_outcome_; }
  bool io_suspended_for_quorum() const;
  // drbdsetup's `suspended:` value: "no", "fencing", "quorum" or "fencing,quorum".
  std::string_view suspended_reason() const;
  // Fencing (node_fencing.cpp): client I/O is frozen until fence-peer succeeds, the
  // connection returns or the administrator resumes it (resource-and-stonith).
  bool io_suspended_for_fencing() const { return role_ == Role::primary && fencing_suspended_; }

  // The activity log (node_activity_log.cpp): the extents it holds now (what apply-al would
  // mark after a crash), and whether metadata writes are queued or in flight (a driver stopping
  // after Down waits until this is false).
  std::vector<std::uint32_t> hot_extents() const;
  bool metadata_writes_pending() const;
  std::uint32_t bitmap_slot_count() const;

  // Checks every invariant; called on exit from every on_*. Public for tests.
  void invariants() const;

 private:
  // The largest resync request: a run of adjacent out-of-sync blocks, aligned to its size
  // (DRBD's max-bio-size, 1 MiB).
  static constexpr std::uint64_t resync_run_blocks_max =
      wire::resync_size_max_bytes / Bitmap::bytes_per_bit;

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

  // A run of adjacent out-of-sync blocks the SyncTarget asked for in one request (at most
  // resync_run_blocks_max): waiting for the reply, then for its disk write.
  struct ResyncRun {
    std::uint64_t blocks = 1;
    bool stale = false;  // an application write overtook it: discard, ask again later
    std::optional<IoId> write_io;
    std::optional<IoId> digest_io;  // checksum resync: our own copy's digest read, in flight
    // node_peers_in_sync.cpp: the nodes the source named in its PeersInSync for the run, and
    // the nodes this node marked a block of it toward while it was in flight.
    std::uint32_t peers_in_sync = 0;
    std::uint32_t marked_nodes = 0;
  };

  // A resync read on the SyncSource, or a resync write on the SyncTarget, of the run of
  // `blocks` blocks from `block`.
  struct ResyncIo {
    NodeId peer;
    std::uint64_t block = 0;
    std::uint32_t connection_epoch = 0;
    std::optional<PayloadHandle> payload;  // the run being written (target side)
    std::uint64_t fence = 0;               // source side: resync_fence() at the read
    // Checksum resync, source side: the target's digest of its copy (a digest read).
    std::optional<std::uint64_t> peer_digest = std::nullopt;
    std::uint64_t blocks = 1;
  };

  // A resync read the SyncSource deferred behind a write to the same range (with the target's
  // digest when it came from a ChecksumResyncRequest).
  struct DeferredRead {
    std::uint64_t block = 0;
    std::uint64_t blocks = 1;
    std::optional<std::uint64_t> peer_digest;
  };

  // Blocks a resync wrote without FUA and no flush has covered yet (node_resync_runs.cpp): the
  // bitmap pages written meanwhile keep them marked, toward every peer.
  struct UnflushedRun {
    std::uint64_t block = 0;
    std::uint64_t blocks = 0;
  };

  struct WriteRange {
    Sector sector;
    std::uint32_t length_bytes = 0;
    std::uint64_t sequence = 0;  // the client write's (Primary side), for the activity log
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
    // Generations and resync (node_resync.cpp).
    std::optional<Bitmap> bitmap;  // toward this peer
    Generations uuids;             // the peer's, from its last StateReport
    std::uint64_t uuid_flags = 0;
    std::uint64_t peer_dirty_bits = 0;
    std::uint8_t dagtag_node = wire::dagtag_node_none;  // its last StateReport's dagtag
    std::uint64_t dagtag = 0;
    // Its last StateReport's sizes (node_sizes.cpp), in sectors.
    std::uint64_t usable_size_sectors = 0;
    std::uint64_t current_size_sectors = 0;
    // A resize committed to this size while the peer took part: until its StateReport shows
    // it, a smaller current size there is one sent before its commit (node_resize.cpp).
    std::uint64_t resize_committed_sectors = 0;
    bool bitmap_received = false;
    // Writes sent in stream order and not yet covered by a BarrierAck (DRBD's transfer log):
    // marked out of sync if the connection breaks.
    std::deque<WriteRange> unconfirmed_writes;
    // SyncTarget side.
    std::uint64_t rs_start_uuid = 0;
    std::uint64_t resync_cursor = 0;                 // next bit to look at
    std::map<std::uint64_t, ResyncRun> resync_runs;  // by first bit
    std::uint64_t resync_runs_blocks = 0;            // the blocks of resync_runs, summed
    std::uint64_t step_allowance_blocks = 0;         // requests still allowed in this step
    ResyncController resync_controller;              // decides each step's allowance
    Instant resync_step_started;                     // when the current step began
    std::uint64_t resync_blocks_in = 0;              // runs that came back during this step
    // Checksum-based resync (node_resync_checksum.cpp): this resync asks by digest; and the
    // handshake chose a reconciliation resync (csums-after-crash-only still uses digests).
    bool resync_checksums = false;
    bool reconcile_resync = false;
    // We are Primary and resync our disk in place from this UpToDate replica of ours
    // (node_attach.cpp): it follows every generation we start, so at the end our disk holds our
    // own generation, whatever generations it last reported.
    bool in_place_source_of_primary = false;
    // SyncSource side: requests waiting for an overlapping local write to finish.
    std::deque<DeferredRead> deferred_reads;
    // Reads through peers (node_read.cpp). Requester side: our ReadRequests it has not answered.
    // Serving side: its ReadRequests waiting for an overlapping write from a peer, and those
    // being read from our disk (on this connection).
    std::uint32_t reads_pending = 0;
    std::deque<wire::ReadRequest> deferred_read_requests;
    std::uint32_t reads_serving = 0;
    std::uint64_t last_data_sequence = 0;      // the newest application Data it sent us
    std::uint32_t weak_nodes = 0;  // a Primary peer: the nodes it does not replicate to
    std::uint32_t forwarded_weak_nodes = 0;  // a Secondary peer: its Primary's weak_nodes
    // Its lost-peer state change, answered once our probe of the other links is over.
    std::optional<std::uint64_t> lost_peer_answer_due;
    // The handshake wanted a resync that had to wait (one side is a SyncTarget of another
    // node): the connection stays up without it, and the node that was busy reconnects when
    // its resync ends, so the handshake runs again (DRBD pauses it: PausedSyncT/S).
    bool resync_deferred = false;
    // We started a resync toward this peer as its SyncSource that has not finished: the
    // resync clears bits of its bitmap as the peer catches up, so the bitmap no longer tells
    // which blocks differ from the generation its bitmap UUID names, only from what the peer
    // holds now. Another node still in that generation must not get a copy of it
    // (bitmap-self-other, apply_bitmap_edit). Cleared when the peer reports the resync done.
    bool bitmap_thinned_by_resync = false;
    // This Outdated node already reran the handshake on this connection to get its resync
    // from the peer (resync_from_up_to_date_peer): once per connection, never a loop.
    bool outdated_handshake_rerun = false;
    // As a diskless Primary: the disk state we gave the peer at the handshake because its
    // current UUID was not ours (distrust_generation_of_diskless_primary); its UpToDate claims
    // count as this until it reports our current UUID. Up to date when trusted.
    DiskState distrusted_as = DiskState::up_to_date;
    // ConnectPeer{discard_my_data}: sent as uuid_flag::discard_my_data until a handshake passes.
    bool discard_my_data = false;
    // What our first StateReport on this connection said (the peer's handshake used it).
    std::optional<wire::StateReport> first_report_sent;
    // Peer-acks, receiving side (this peer is our Primary): the writes it sent us that no
    // PeerAck covers yet, by epoch (open_epoch_writes: the epoch before its Barrier). They stay
    // marked out of sync toward every other node until a PeerAck names that node.
    std::vector<WriteRange> open_epoch_writes;
    std::map<std::uint32_t, std::vector<WriteRange>> unacked_epochs;  // by barrier number
    // Quorum (node_quorum.cpp): what the peer's last StateReport said.
    DiskState last_known_disk = DiskState::dunknown;
    bool intentional_diskless = false;
    bool reports_quorum = false;
    bool left_gracefully = false;  // it announced a graceful leave (quorum_flag::leaving)
    // Fencing (node_fencing.cpp): the fence-peer call whose result is awaited (reset when the
    // connection returns: a late result is discarded), and whether a fence-peer succeeded
    // since the peer was last UpToDate with us (unfence-peer runs when it is again).
    std::optional<HelperCallId> fence_call;
    bool fenced = false;
    // Online verify (node_verify.cpp). VerifyS: the next block to read, the end, and the blocks
    // read or asked for whose reply has not arrived.
    std::uint64_t verify_cursor = 0;
    std::uint64_t verify_end = 0;
    std::uint64_t verify_in_flight = 0;
  };

  // A digest read of online verify: on VerifyS the source's block, on VerifyT the target's
  // (with the source's digest to compare against).
  struct VerifyIo {
    NodeId peer;
    std::uint64_t block = 0;
    std::uint32_t connection_epoch = 0;
    bool source = false;
    std::uint64_t peer_digest = 0;
  };

  // Peer-acks, sending side (this node is Primary): an epoch's writes were sent to the peers in
  // sent_mask (partial_mask: some of them missed part of the epoch); acked_mask: BarrierAck seen.
  struct PeerAckEpoch {
    std::uint32_t sent_mask = 0;
    std::uint32_t partial_mask = 0;
    std::uint32_t acked_mask = 0;
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
    // Writes: the peers that stored it while their disk was UpToDate (a copy a failover or a
    // resync can count on; an Inconsistent peer's may be overwritten by its resync).
    std::uint32_t peers_up_to_date_ok_mask = 0;
    bool fua = false;  // writes: the client asked for FUA
    std::optional<IoId> io;
    std::uint32_t epoch = 0;
    // Reads (node_read.cpp): the client's buffer, the peer serving it, the peers that could
    // not. A read a peer served completes with that peer's data in `payload`.
    std::optional<PayloadHandle> read_buffer;
    std::optional<NodeId> read_peer;
    std::uint32_t read_tried_mask = 0;
  };

  // A read this node serves for a peer, on its way from our disk.
  struct ServedRead {
    NodeId peer;
    wire::ReadRequest request;
    std::uint32_t connection_epoch = 0;
  };

  // A write or flush received from a peer, waiting for the local disk.
  struct PeerIo {
    NodeId peer;
    std::uint64_t id = 0;  // Data.sequence; unused for flushes (the inbox front says why)
    bool is_flush = false;
    bool send_write_ack = false;
    std::optional<PayloadHandle> payload;
    std::uint32_t connection_epoch = 0;
    Sector sector;  // writes: where (a resync read of the same block waits for it)
    std::uint32_t length_bytes = 0;
  };

  // A client write waiting for this node's pending promotion.
  struct HeldWrite {
    RequestId request;
    Sector sector;
    std::uint32_t length_bytes = 0;
    PayloadHandle payload;
    WriteFlags flags;
  };

  // One attempt of a two-phase commit this node initiates (a promotion or a resize).
  struct TwoPcRound {
    std::uint64_t transaction_id = 0;
    std::uint32_t participants_mask = 0;  // peers sent TwoPcPrepare in this attempt
    std::uint32_t waiting_mask = 0;       // of those, not yet replied
    bool retry = false;                   // some peer answered retry (busy)
    StateChangeResult refusal;            // the first `no`
    // resize: the smallest usable size a participant reported, and which one it was.
    std::uint64_t smallest_usable_sectors = 0;
    NodeId smallest_node;
  };

  // This node's own promotion, a two-phase commit (§1.3 step 4).
  struct Promotion {
    bool force = false;
    TwoPcRound round;
    bool backing_off = false;             // between an aborted attempt and its retry
    Instant give_up_at;
    bool announced = false;  // on_admin returned pending; report the outcome
    // Fencing: the unknown peers whose fence-peer must answer before the attempt (once).
    std::uint32_t fencing_mask = 0;
    bool fencing_tried = false;
    bool fencing_wait = false;  // the attempt waits for those handlers
  };

  // This node's own resize (node_resize.cpp).
  struct ResizeChange {
    Resize request;
    TwoPcRound round;
    NodeId resync_source;
    bool checking_disk = false;  // CheckDiskSize sent, on_disk_size not yet in
    bool backing_off = false;
    Instant give_up_at;
  };

  struct Prepared {
    NodeId initiator;
    std::uint64_t transaction_id = 0;
    wire::TwoPcChange change = wire::TwoPcChange::promote;
    // resize: the prepare, and whether the vote waits for on_disk_size.
    wire::TwoPcPrepare prepare;
    bool checking_disk = false;
  };

  // This Primary's lost-peer state change (node_lost_peer.cpp): the peers asked after a lost
  // connection that have neither answered nor gone since.
  // Our lost-peer state change, or our probe as a participant of a peer's (the other links we
  // asked whether they still answer, TwoPcChange::probe): the peers not yet answered.
  struct LostPeerChange {
    std::uint64_t transaction_id = 0;
    std::uint32_t waiting_mask = 0;
    bool timer_armed = false;
  };

  // The configured peers in node-id order. peers_ has a slot for every node id, and the slots
  // of unconfigured ones are never touched: loops walk only these (a Peer is large, and most
  // inputs walk the peers several times).
  auto configured_peers() {
    return std::span(configured_ids_.data(), configured_count_) |
           std::views::transform([this](std::uint8_t id) -> Peer& { return peers_[id]; });
  }
  auto configured_peers() const {
    return std::span(configured_ids_.data(), configured_count_) |
           std::views::transform([this](std::uint8_t id) -> const Peer& { return peers_[id]; });
  }
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
  // `al_referenced`: the write holds references on its activity-log extents.
  void admit_write_now(RequestId request, Sector sector, std::uint32_t length_bytes,
                       PayloadHandle payload, WriteFlags flags, bool al_referenced);
  void send_data(Peer& peer, std::uint64_t sequence, Request& entry, std::uint32_t flags);
  std::uint32_t data_flags(const Request& entry) const;

  // Reads (node_read.cpp).
  void place_read(std::uint64_t sequence);
  bool may_serve_reads(const Peer& peer) const;
  void on_read_request(Peer& peer, const wire::ReadRequest& request);
  void serve_read(Peer& peer, const wire::ReadRequest& request);
  bool on_served_read_completed(IoId io, IoStatus status, PayloadHandle payload);
  void retry_deferred_read_requests();
  Request* answered_read(Peer& peer, std::uint64_t id, Sector sector, std::uint32_t length_bytes);
  void on_read_reply(Peer& peer, const wire::Data& data, PayloadHandle payload);
  void on_read_failed(Peer& peer, const wire::ReadFailed& failed);
  void reroute_reads_from(Peer& peer);
  void close_epoch();
  void release_held_writes(bool promoted);

  // Peer messages (node_peer.cpp).
  void dispatch(Instant now, Peer& peer, const wire::Message& message, PayloadHandle payload);
  void on_hello(Instant now, Peer& peer, const wire::Hello& hello);
  ConnectionSettings connection_settings(const Peer& peer) const;
  void refuse_to_connect(Peer& peer, const std::string& reason);
  void on_state_report(Instant now, Peer& peer, const wire::StateReport& state);
  void distrust_generation_of_diskless_primary(Peer& peer, const wire::StateReport& state,
                                               ClusterState& proposed) const;
  void on_data(Instant now, Peer& peer, const wire::Data& data, PayloadHandle payload);
  void on_write_ack(Peer& peer, std::uint64_t sequence, bool ok, wire::MessageType type);
  void on_barrier(Peer& peer, const wire::Barrier& barrier);
  void on_barrier_ack(Peer& peer, const wire::BarrierAck& ack);
  void on_flush_request(Peer& peer, const wire::FlushRequest& flush);
  void on_flush_ack(Peer& peer, const wire::FlushAck& ack);
  void on_peer_ack(Peer& peer, const wire::PeerAck& ack);
  void send_peer_acks();
  void mark_for_others(const WriteRange& range, std::uint32_t stored_mask, NodeId primary);
  void mark_unacked_peer_writes(Peer& peer);
  void on_peer_io_completed(const PeerIo& peer_io, IoStatus status);
  void enqueue(Peer& peer, InboxItem item);
  void pump_inbox(Peer& peer);
  void finish_inbox_front(Peer& peer, bool ok);
  bool drain_inbox_front_without_disk(Peer& peer);
  void clear_peer_streams(Peer& peer);

  // Split brain and the connect/disconnect admin commands (node_split_brain.cpp).
  std::optional<HandshakeDecision> handshake_decision(const Peer& peer, Role peer_role,
                                                      DiskState peer_disk) const;
  bool accept_handshake(Peer& peer, const HandshakeDecision& decision);
  // Volume sizes (node_sizes.cpp): applies a StateReport's sizes (learn, shrink, or refuse the
  // connection: false) and changes the size this node exposes.
  bool agree_on_size(Peer& peer, const wire::StateReport& state);
  void set_size(std::uint64_t size_bytes);
  bool primary_besides(const Peer& peer) const;
  std::string quorum_evidence(const Peer& peer) const;
  void report_split_brain(const Peer& peer, const HandshakeDecision& decision);
  // Reports `helper` as an events2 `call helper` line and starts it (CallHelper).
  HelperCallId emit_helper_call(const Peer& peer, const std::string& helper,
                                const std::string& extra);
  std::uint32_t up_to_date_nodes_mask() const;
  AdminResult disconnect_peer(Instant now, const DisconnectPeer& command);
  AdminResult connect_peer(const ConnectPeer& command);
  std::uint64_t uuid_flags_toward(const Peer& peer) const;

  // Generations, bitmaps and resync (node_resync.cpp).
  void sync_handshake_with(Peer& peer, const HandshakeDecision& decision);
  void start_resync_unless_deferred(Peer& peer, bool source);
  void resync_same_generation(Peer& peer);
  void defer_resync(Peer& peer, const char* reason);
  void refuse_connection(Peer& peer, const HandshakeDecision& decision);
  void apply_bitmap_edit(Peer& peer, const HandshakeDecision& decision);
  void start_bitmap_exchange(Peer& peer, bool source);
  void on_bitmap(Instant now, Peer& peer, const wire::BitmapTransfer& bitmap);
  void pump_resync(Peer& peer);
  void maybe_finish_resync(Peer& peer);
  void on_resync_step(Instant now, NodeId peer);
  // Notes the progress of a running resync or verify with the peer (PeerStatus::sync_progress).
  void note_sync_progress(Instant now, Peer& peer);
  std::uint64_t sync_blocks_left(const Peer& peer) const;
  void on_resync_request(Peer& peer, const wire::ResyncRequest& request);
  void issue_resync_read(Peer& peer, std::uint64_t block, std::uint64_t blocks,
                         std::optional<std::uint64_t> peer_digest = std::nullopt);
  bool resync_reply_fenced_out(std::uint64_t block, std::uint64_t blocks,
                               std::uint64_t reply_fence) const;
  // The first run of `runs` that ends after `block` (it may start before it).
  static std::map<std::uint64_t, ResyncRun>::iterator first_run_from(
      std::map<std::uint64_t, ResyncRun>& runs, std::uint64_t block);
  std::uint64_t resync_run_blocks(const Peer& peer) const;
  std::uint64_t resync_blocks_in_flight(const Peer& peer) const;
  void resync_run_written(Peer& peer, const ResyncIo& entry, const ResyncRun& done, bool ok);
  void resync_flush_started();
  void resync_flush_done();
  // Checksum-based resync (node_resync_checksum.cpp).
  bool use_checksum_resync(const Peer& peer) const;
  void request_resync_run(Peer& peer, std::uint64_t block);
  void on_checksum_resync_request(Peer& peer, const wire::ChecksumResyncRequest& request);
  void on_resync_in_sync(Peer& peer, const wire::ResyncInSync& in_sync);
  bool on_checksum_io_completed(IoId io, IoStatus status, std::uint64_t digest);
  void target_digest_read_done(const ResyncIo& entry, IoId io, std::uint64_t digest);
  void source_digest_read_done(const ResyncIo& entry, std::uint64_t digest);
  void retry_deferred_reads();
  void on_resync_data(Peer& peer, const wire::Data& data, PayloadHandle payload);
  void on_resync_ack(Peer& peer, const wire::ResyncAck& ack);
  bool on_resync_io_completed(IoId io, IoStatus status, PayloadHandle payload);
  std::uint64_t resync_step_blocks(Instant now) const;
  std::uint64_t resync_controller_blocks(Instant now, Peer& peer);
  std::uint64_t resync_in_flight_max_blocks() const;
  void resync_run_came_back(Peer& peer, std::map<std::uint64_t, ResyncRun>::iterator run);
  void maybe_step_early(Peer& peer);
  bool application_io_recent(Instant now) const;
  void note_application_io(Instant now);
  std::uint64_t resync_fill_blocks() const;
  void resync_overtaken(Peer& writer, const wire::Data& data);
  void application_write_done(Sector sector, std::uint32_t length_bytes, bool ok);
  bool peer_write_pending(Sector sector, std::uint32_t length_bytes) const;
  std::uint64_t resync_fence() const;
  void stop_resync(Peer& peer);
  void on_peer_generations(Peer& peer, const wire::StateReport& state);
  bool peer_finished_resync(const Peer& peer, const wire::StateReport& state) const;
  const char* resync_not_now(const Peer& peer, bool source) const;
  void check_resync_source(Peer& peer, bool was_target);
  void resume_deferred_resyncs();
  void offer_resync_to_peers_left_behind(const Peer& source, std::uint64_t left);
  void adopt_source_dagtag(const Peer& source);
  void forget_slots_caught_up_through(const Peer& peer, const wire::StateReport& state);
  void reconcile_with_peers_of_our_generation(const Peer& source);
  std::uint32_t followed_primary_weak_nodes() const;
  std::uint32_t lost_primary_weak_toward(const Peer& peer) const;
  void outdate_if_weak();
  void resync_outdated_peers();
  void resync_from_up_to_date_peer();
  void mark_out_of_sync_for_absent(Sector sector, std::uint32_t length_bytes, NodeId except);
  void tell_resync_target(const Peer& peer, Sector sector, std::uint32_t length_bytes);
  void resync_runs_stale(Sector sector, std::uint32_t length_bytes);
  // What a resynced block means toward the other peers (node_peers_in_sync.cpp).
  void mark_out_of_sync(Peer& toward, Sector sector, std::uint32_t length_bytes);
  std::uint32_t peers_in_sync_mask(const Peer& target, std::uint64_t block,
                                   std::uint64_t blocks) const;
  void send_peers_in_sync(const Peer& target, std::uint64_t block, std::uint64_t blocks);
  void on_peers_in_sync(Peer& peer, const wire::PeersInSync& in_sync);
  void resynced_run_toward_others(const Peer& source, std::uint64_t block, const ResyncRun& entry,
                                  bool replaced);
  void mark_unconfirmed_writes(Peer& peer);
  std::uint32_t nodes_without_data() const;
  std::uint64_t local_uuid_flags() const;
  void bump_generation_if_pending();
  void note_unconfirmed_generation(const Generations& before);
  void confirm_through(std::uint64_t sequence);
  bool failed_disk_moved_on_without_us(const Peer& peer) const;
  std::uint64_t unconfirmed_write_under(const Request& read) const;
  void roll_back_unconfirmed_generation();
  void start_new_generation();
  void reconcile_after_lost_primary();
  void allow_handshake_reruns();
  std::uint64_t block_sector(std::uint64_t block) const;
  std::uint32_t block_length(std::uint64_t block) const;
  // The bytes of `blocks` blocks from `block`, the last one cut at the end of the volume.
  std::uint32_t run_length(std::uint64_t block, std::uint64_t blocks) const;
  void release_requests_from_non_targets();
  void send_in_flight_writes_to_new_targets(std::uint32_t targets_before);
  void protocol_error(Peer& peer, std::string reason);
  void peer_lost(Peer& peer, ConnectionState failure);
  void maybe_complete(std::uint64_t sequence);
  void complete(std::uint64_t sequence, ClientStatus status);
  void send_state_to_connected_peers();
  void send_state(const Peer& peer, std::uint64_t extra_flags = 0, std::uint32_t weak_nodes = 0);

  // Activity log and bitmap write-back (node_activity_log.cpp).
  bool activity_log_active() const;
  void admit_through_activity_log(const HeldWrite& write);
  void pump_activity_log();
  void admit_after_activity_log(const HeldWrite& write, bool referenced);
  void hold_extents(std::uint64_t sequence, std::uint32_t peers_sent);
  void settle_write(std::uint64_t sequence);
  void queue_bitmap_pages(std::uint64_t first_bit, std::uint64_t bit_count);
  void queue_all_bitmap_pages();
  void issue_metadata_write();
  bool on_metadata_completed(IoId io, IoStatus status);
  void reset_activity_log();
  void apply_initial_metadata();
  std::vector<std::uint8_t> encode_bitmap_page(std::uint64_t page) const;
  std::uint32_t unflushed_word(std::uint64_t word) const;
  std::uint64_t bitmap_page_count() const;
  // Online verify, invalidate, invalidate-remote (node_verify.cpp).
  AdminResult start_verify(Instant now, const Verify& command);
  AdminResult stop_verify(const StopVerify& command);
  AdminResult invalidate(const Invalidate& command);
  AdminResult invalidate_remote(const InvalidateRemote& command);
  StateChangeResult invalidate_toward(Peer& peer, std::uint64_t from_sector = 0,
                                      Sector marker = Sector{0});
  AdminResult admin_peer_check(NodeId peer_id, const char* what) const;
  void on_sync_control(Instant now, Peer& peer, const wire::SyncControl& control);
  void on_verify_start(Instant now, Peer& peer, Sector start);
  void on_verify_step(Instant now, Peer& peer);
  void pump_verify(Peer& peer);
  void on_verify_request(Peer& peer, const wire::VerifyRequest& request);
  void on_verify_reply(Peer& peer, const wire::VerifyReply& reply);
  bool on_verify_io_completed(IoId io, IoStatus status, std::uint64_t digest);
  void verify_block_out_of_sync(Peer& peer, std::uint64_t block);
  void finish_verify(Peer& peer, bool notify_peer, const char* outcome);
  // `sector` and `length_bytes` name a run of at most `blocks_max` whole bitmap blocks of the
  // volume (the last one may be cut at its end); otherwise a protocol error.
  bool block_message_valid(Peer& peer, Sector sector, std::uint32_t length_bytes, const char* what,
                           std::uint64_t blocks_max = 1);

  // pause-sync, resume-sync, new-current-uuid, detach (node_sync_admin.cpp).
  AdminResult pause_sync(Instant now, const PauseSync& command);
  AdminResult resume_sync(Instant now, const ResumeSync& command);
  void apply_resync_suspension(Peer& peer);
  void on_peer_pause_flag(Peer& peer, const wire::StateReport& state);
  AdminResult new_current_uuid(const NewCurrentUuid& command);
  bool may_skip_initial_sync(const Peer& peer) const;
  void skip_initial_sync(bool just_created, std::uint32_t peers_mask);
  void on_peer_skipped_initial_sync(Peer& peer, const wire::StateReport& state);
  AdminResult detach();
  // attach after a detach (node_attach.cpp).
  AdminResult attach(const Attach& command);
  Peer* attach_source();
  const Generations& attach_reference(const Peer& source) const;
  void note_write_the_disk_missed(const Request& request);
  AdminResult attach_refusal(const Attach& command, Peer*& source, bool& full_sync) const;
  UuidCompareResult compare_attached_disk(const Attach& command, const Peer& source,
                                          const Generations& reference) const;
  bool disk_newer_than(const Attach& command, const Peer& source) const;
  bool bitmap_covers_peer_disk(const Peer& peer) const;
  void load_attached_disk(const Attach& command);
  void attach_disk_step(DiskState step);
  DiskState attached_disk_state(const Attach& command) const;
  void resync_in_place_from(Peer& source);
  void primary_disk_caught_up(const Peer& source);
  void resync_primary_disk_from_up_to_date_peer();
  // A Primary whose disk was attached again and is not UpToDate yet writes through its peers:
  // the blocks it writes are marked toward its resync source, so the resync fetches them.
  void mark_for_resync_sources(Sector sector, std::uint32_t length_bytes);

  // Congestion, Ahead and Behind (node_congestion.cpp).
  bool congested(const Peer& peer) const;
  void check_congestion(Instant now);
  void pull_ahead(Peer& peer);
  void send_out_of_sync(Peer& peer, Sector sector, std::uint32_t length_bytes);
  void arm_ahead_resync_if_drained(Instant now, const Peer& peer);
  void on_ahead_resync_timer(NodeId peer_id);
  void on_peer_ahead(Peer& peer);
  void on_out_of_sync(Peer& peer, const wire::OutOfSync& message);
  void on_resync_after_ahead(Peer& peer);

  // ChangeOptions (node_options.cpp).
  AdminResult change_options(const ChangeOptions& command);

  // Two Primaries (node_two_primaries.cpp): overlapping concurrent writes.
  struct PeerWriteRef {
    NodeId peer;
    Sector sector;
    std::uint32_t length_bytes = 0;
  };
  // A write received from a peer for an overlapping range, queued or on its way to our disk;
  // `live_only`: only those of connections still up (their requester waits for them).
  std::optional<PeerWriteRef> overlapping_peer_write(Sector sector, std::uint32_t length_bytes,
                                                     bool live_only) const;
  bool peer_write_conflicts(Peer& peer, const wire::Data& data);
  bool hold_behind_peer_writes(const HeldWrite& write, bool al_referenced);
  void release_writes_behind_peer_writes();
  void concurrent_writes_detected(Peer& peer, Sector local_sector, std::uint32_t local_length,
                                  Sector peer_sector, std::uint32_t peer_length);
  std::string two_primaries_refusal(const NodeConfig& wanted) const;
  bool sibling_generation_loses(const Peer& peer, const wire::StateReport& state) const;

  // State changes and promotion (node_state.cpp).
  StateChangeResult change_state(ClusterState proposed, bool hard, bool force = false);
  void detach_local_disk(DiskState first_step = DiskState::failed);
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
  // The pieces of a two-phase commit that promotion and resize share (node_state.cpp).
  void send_prepare(Instant now, TwoPcRound& round, std::uint32_t peers,
                    wire::TwoPcPrepare prepare);
  bool note_reply(TwoPcRound& round, const Peer& peer, const wire::TwoPcReply& reply);
  void send_decision(TwoPcRound& round, bool commit, std::uint64_t size_sectors = 0);
  bool round_lost_peer(TwoPcRound& round, const Peer& peer);
  // A promotion or resize of ours is in an attempt (not backing off): a foreign prepare waits.
  bool initiating_twopc() const {
    return (promotion_ && !promotion_->backing_off) || (resize_ && !resize_->backing_off);
  }
  // We hold `prepare`'s transaction prepared already (a duplicate prepare).
  bool prepared_for(const wire::TwoPcPrepare& prepare) const {
    return prepared_ && prepared_->initiator == prepare.initiator &&
           prepared_->transaction_id == prepare.transaction_id;
  }
  bool arm_twopc_retry(Instant now, Instant give_up_at);
  // Resize (node_resize.cpp).
  AdminResult resize(Instant now, const Resize& request);
  void start_resize_attempt(Instant now);
  void decide_resize(Instant now);
  void finish_resize(StateChangeResult result);
  void resize_timer(Instant now);
  StateChangeResult resize_refusal(std::uint64_t size_sectors) const;
  void on_resize_prepare(Instant now, Peer& peer, const wire::TwoPcPrepare& prepare);
  void vote_on_resize(Peer& peer);
  void commit_resize(std::uint64_t size_sectors, bool assume_clean, NodeId source);
  void commit_resize_early(std::uint64_t size_sectors);
  void on_twopc_reply(Instant now, Peer& peer, const wire::TwoPcReply& reply);
  void on_twopc_decision(Peer& peer, NodeId initiator, std::uint64_t transaction_id, bool commit,
                         std::uint64_t size_sectors = 0);
  void twopc_peer_lost(Instant now, Peer& peer);

  // The lost-peer state change (node_lost_peer.cpp).
  bool lost_peer_pending() const { return role_ == Role::primary && lost_peer_.has_value(); }
  void start_lost_peer_change(const Peer& lost);
  bool on_lost_peer_reply(const wire::TwoPcReply& reply, NodeId from);
  void progress_lost_peer_change(Instant now);
  void lost_peer_timed_out(Instant now);
  void send_lost_peer_prepares(std::uint32_t peers, const LostPeerChange& change,
                               wire::TwoPcChange kind);
  void on_lost_peer_prepare(Instant now, Peer& peer, const wire::TwoPcPrepare& prepare);
  void lost_peer_probe_timed_out(Instant now);
  void drop_silent_peers(Instant now, std::uint32_t silent, const std::string& reason);
  void answer_lost_peer_changes();
  void fail_frozen_io();
  void arm_timer(TimerId timer, Instant deadline);
  void cancel_timer(TimerId timer);

  // Quorum (node_quorum.cpp).
  QuorumInput quorum_input() const;
  void update_quorum();
  void apply_quorum_changes(Instant now);
  void apply_quorum_outcome(Instant now);
  bool quorum_suspends_io() const;
  bool handshake_busy() const;
  void suspend_write_for_quorum(RequestId request, Sector sector, std::uint32_t length_bytes,
                                PayloadHandle payload, WriteFlags flags);
  bool hold_completion_for_quorum(std::uint64_t sequence, const Request& entry);
  void fail_suspended_io();
  void on_peer_quorum_flags(Peer& peer, const wire::StateReport& state);
  bool demote_for_newer_primary(const wire::StateReport& state);
  std::uint64_t quorum_uuid_flags() const;
  AdminResult down(Instant now);
  void resume_frozen_io();

  // Fencing (node_fencing.cpp).
  bool fencing_enabled() const { return config_.fencing != FencingPolicy::dont_care; }
  void fencing_after_commit(const ClusterState& old, const ClusterState& next);
  HelperCallId start_fence_peer(Peer& peer);
  bool fence_for_promotion(const StateChangeResult& check);
  bool on_fence_peer_done(HelperCallId call, int exit_code);
  void apply_fence_outcome(Peer& peer, const FenceOutcome& outcome);
  bool fencing_resolved() const;
  void resume_after_fencing(Instant now);
  AdminResult resume_io();

  void emit_resource_event();
  void emit_device_event();
  void emit_connection_event(const Peer& peer);
  // `show_suspension`: name resync-suspended even when it is `no` (it just changed to that).
  void emit_peer_device_event(const Peer& peer, bool show_suspension = false);

  NodeConfig config_;
  std::uint64_t size_bytes_ = 0;  // see size_bytes()
  Role role_ = Role::secondary;
  DiskState disk_state_ = DiskState::up_to_date;
  bool restarted_behind_ = false;  // uuid_flag::restarted_behind
  // Started after a Primary crash (apply-al marked its hot extents): uuid_flag::after_primary_crash
  // for this incarnation, so csums-after-crash-only resyncs with it use checksums.
  bool after_primary_crash_ = false;
  // See unconfirmed_generation(): one step per bump since the last confirmed generation, oldest
  // first; requests from a step's from_sequence on were admitted in its generation or a later one.
  struct UnconfirmedStep {
    std::uint64_t previous_current = 0;  // the current UUID the bump replaced
    std::uint32_t rotated_nodes = 0;     // the slots it filled
    std::uint64_t from_sequence = 0;
  };
  static constexpr std::size_t unconfirmed_steps_max = 8;
  std::vector<UnconfirmedStep> unconfirmed_steps_;
  std::uint64_t unconfirmed_current_ = 0;  // comparable current UUID after the newest step
  // The resync source we lost while it was UpToDate (it crashed or was cut off): its disk holds
  // our generation in full and may come back (uuid_flag::newer_copy_away), or no_node.
  static constexpr std::uint8_t no_node = 0xff;
  std::uint8_t newer_copy_node_ = no_node;
  // That source's current UUID as it last reported it (comparable): the generation only it, and
  // what it resynced to us, hold in full.
  std::uint64_t newer_copy_current_ = 0;
  // That source's disk is gone (it failed or detached under the resync, or the source came back
  // without it): only an operator can say the writes it held are to be given up.
  bool newer_copy_disk_gone_ = false;
  // The Primary's disk failed or detached while a peer stored (protocol B or C) a write the disk
  // lacks (the failing write, or one still in flight to it): the disk is not whole for the
  // generation the Primary serves even while no write went through its peers since (quorum
  // swarm seed 3349). Cleared by the next attach.
  bool detached_disk_missed_writes_ = false;
  // The Secondary's disk detached while it followed a Primary, or it followed one while
  // Diskless: the Primary may have written without the disk since. Cleared by the next attach.
  bool detached_under_primary_ = false;
  // The Primary this Secondary lost (no_node if none, or a Primary followed since). Its peer
  // record keeps its last report (weak nodes, generations) until it reports again
  // (node_peer_ack.cpp, lost_primary_weak_toward).
  std::uint8_t lost_primary_node_ = no_node;
  GenerationState generations_;
  std::array<Peer, nodes_max> peers_{};
  std::array<std::uint8_t, nodes_max> configured_ids_{};  // see configured_peers()
  std::uint8_t configured_count_ = 0;
  std::array<std::uint32_t, nodes_max> connection_epochs_{};

  std::map<std::uint64_t, Request> requests_;              // by sequence
  std::map<std::uint64_t, std::uint64_t> requests_by_io_;  // IoId → sequence
  std::map<std::uint64_t, PeerIo> peer_ios_;               // IoId → peer write/flush
  std::map<std::uint64_t, ResyncIo> resync_reads_;         // IoId → source-side read
  std::map<std::uint64_t, ResyncIo> resync_writes_;        // IoId → target-side write
  std::map<std::uint64_t, VerifyIo> verify_reads_;         // IoId → online verify digest read
  std::map<std::uint64_t, ResyncIo> checksum_reads_;       // IoId → checksum resync digest read
  std::map<std::uint64_t, ServedRead> served_reads_;       // IoId → a peer's read from our disk
  std::uint64_t read_rotation_ = 0;                        // reads placed (read_balancing.h)
  // While this node is a SyncTarget: per block, the newest application write received for it
  // (writer node id << 56 | its Data.sequence). A resync reply whose fence is older is stale.
  std::map<std::uint64_t, std::uint64_t> resync_write_fences_;
  // Resync runs written without FUA since the last flush was issued, and those the flush in
  // flight covers (a metadata flush job, node_activity_log.cpp).
  std::vector<UnflushedRun> resync_unflushed_;
  std::vector<UnflushedRun> resync_flushing_;
  // c-min-rate (§5.4): when this node last saw application I/O (a client request, or a write
  // received from a Primary).
  std::optional<Instant> last_application_io_;
  // The time of the latest input that carried one (a message, a disk completion, a timer): an
  // early resync step (maybe_step_early) is taken then.
  Instant latest_input_;
  std::deque<HeldWrite> held_writes_;
  std::map<std::uint32_t, PeerAckEpoch> peer_ack_epochs_;  // by barrier number (Primary side)
  std::uint64_t next_sequence_ = 1;
  // The newest application write received from a Primary (wire::StateReport::dagtag).
  std::uint8_t dagtag_node_ = wire::dagtag_node_none;
  std::uint64_t dagtag_ = 0;
  std::uint64_t next_io_ = 1;
  std::uint64_t next_helper_call_ = 1;
  std::uint32_t current_epoch_ = 1;
  std::uint32_t current_epoch_writes_ = 0;

  std::optional<Promotion> promotion_;
  std::optional<AdminResult> promotion_outcome_;
  std::optional<Prepared> prepared_;
  std::optional<ResizeChange> resize_;
  std::optional<AdminResult> resize_outcome_;
  std::optional<LostPeerChange> lost_peer_;
  std::optional<LostPeerChange> lost_peer_probe_;
  std::uint64_t lost_peer_probes_sent_ = 0;        // transaction ids of our probes
  std::map<std::uint64_t, Instant> timers_armed_;  // TimerId → deadline
  Prng prng_;

  // Quorum: the last computation; have_quorum_ is what the node acts on (and what the sticky
  // tiebreaker rule asks about). Writes and completions frozen by suspend-io wait here.
  QuorumOutcome quorum_outcome_;
  bool have_quorum_ = true;
  bool quorum_changed_ = false;  // consequences not yet applied (apply_quorum_changes)
  bool down_ = false;            // left the cluster gracefully
  // A write whose completion waits for quorum (suspend-io), with what it wrote: when no UpToDate
  // disk is known to hold it (`no_up_to_date_copy`: only an Inconsistent peer stored it, or our
  // disk failed before the resume), it is written through the peers again at the resume.
  struct SuspendedCompletion {
    RequestId request;
    std::optional<PayloadHandle> payload;
    std::uint64_t sequence = 0;  // the order the writes were admitted in
    Sector sector;
    std::uint32_t length_bytes = 0;
    WriteFlags flags;
    bool no_up_to_date_copy = false;
    bool local_up_to_date_copy = false;  // on our disk while it was UpToDate
    std::uint32_t peers_ok_mask = 0;     // the peers that stored it
  };
  bool up_to_date_peer_lacks(const SuspendedCompletion& done) const;
  std::deque<HeldWrite> quorum_suspended_writes_;
  std::deque<SuspendedCompletion> quorum_suspended_completions_;
  // Fencing (resource-and-stonith): DRBD's susp_fen. Frozen writes and completions wait in the
  // two queues above, beside those frozen for quorum.
  bool fencing_suspended_ = false;

  // Activity log (node_activity_log.cpp). Writes wait in al_waiting_ (FIFO) until their
  // extents are committed; al_holds_ keeps the extents of an admitted write referenced until it
  // completed and every peer it went to acknowledged its barrier (or was lost).
  struct AlWaitingWrite {
    HeldWrite write;
    bool referenced = false;
  };
  struct AlHold {
    WriteRange range;
    std::uint32_t outstanding = 0;  // 1 for the request + 1 per peer sent
  };
  struct MetadataJob {
    enum class Kind : std::uint8_t { flush, bitmap_page, al_transaction };
    Kind kind = Kind::flush;
    std::uint64_t page = 0;
    std::uint32_t tr_number = 0;
    std::vector<std::uint8_t> bytes;  // the encoded transaction
  };
  std::optional<ActivityLog> activity_log_;
  std::deque<AlWaitingWrite> al_waiting_;
  std::map<std::uint64_t, AlHold> al_holds_;  // by request sequence
  std::deque<MetadataJob> metadata_queue_;
  std::optional<std::pair<IoId, MetadataJob::Kind>> metadata_in_flight_;
  // After promotion: writes wait until the bitmap pages queued then are on disk.
  bool writes_wait_for_bitmap_ = false;
  // Two Primaries: local writes that overlap a peer's write already submitted to our disk wait
  // for it (ours is the later one), after the connection to that peer was dropped.
  std::deque<AlWaitingWrite> writes_behind_peer_writes_;

  NodeStatistics statistics_;
  std::vector<Action> actions_;
};

}  // namespace ditto::core
