// The values a core::Node is configured with and exchanges with its driver: NodeConfig, the
// Actions it emits, the admin commands it accepts and the status it reports. The Node itself,
// and what each of these means in its life, is in core/node.h.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/fencing.h"
#include "core/generation.h"
#include "core/quorum.h"
#include "core/read_balancing.h"
#include "core/state.h"
#include "core/types.h"
#include "core/wire.h"

namespace ditto::core {

struct PeerConfig {
  NodeId node_id;
  std::string name;
  friend bool operator==(const PeerConfig&, const PeerConfig&) = default;
};

// DRBD's net option on-congestion (§11): what a protocol A Primary does when a peer cannot keep
// up (NodeConfig::congestion_fill_sectors, congestion_extents). block: writes wait (the bound on
// writes not covered by a BarrierAck, ClientStatus::busy). pull-ahead: the peer goes Behind and
// gets only OutOfSync messages until the congestion drained, then a resync of exactly those
// blocks. disconnect: the connection is dropped (the reconnect resyncs).
enum class OnCongestion : std::uint8_t { block, pull_ahead, disconnect };
const char* to_string(OnCongestion policy);  // "block", "pull-ahead", "disconnect"
// DRBD's limits (drbd_limits.h): congestion-fill 0..10 GiB in sectors, congestion-extents
// 67..65534 like al-extents.
inline constexpr std::uint32_t congestion_fill_sectors_max = 20u * 1024 * 1024;
inline constexpr std::uint32_t congestion_extents_min = 67;
inline constexpr std::uint32_t congestion_extents_max = 65534;
std::optional<OnCongestion> parse_on_congestion(std::string_view text);

struct NodeConfig {
  std::string resource_name;
  NodeId node_id;
  std::string node_name;
  std::vector<PeerConfig> peers;
  Protocol protocol = Protocol::c;
  // DRBD's allow-two-primaries (net section): a second node may promote while a peer is
  // Primary (live migration). Requires protocol C. Overlapping concurrent writes of the two
  // Primaries are detected and drop the connection (node_two_primaries.cpp, §2.3).
  bool allow_two_primaries = false;
  std::uint64_t volume_size_bytes = 0;
  // Bound on client requests (writes, reads, flushes) in progress; beyond it a request is
  // refused with ClientStatus::busy (backpressure as a value).
  std::uint32_t requests_in_flight_max = 4096;
  // Disk state at start. The skeleton has no metadata yet: a fresh cluster starts UpToDate.
  DiskState initial_disk_state = DiskState::up_to_date;
  // The current UUID at start (what the metadata says; 0 or 1 mean "just created").
  std::uint64_t initial_generation = 1;
  // Every generation identifier the metadata holds (current, bitmap UUIDs, history), for a
  // restart; when set it replaces initial_generation. Without PeerConfig::initial_bitmap_words a
  // node that starts below UpToDate marks every block out of sync toward that peer (Node::Node).
  std::optional<Generations> initial_generations;
  // The metadata's record of a generation this node started as Primary that no client saw a
  // completion in (UnconfirmedGeneration, generation.h). When it names the current UUID of
  // initial_generations the node starts in the generation before it.
  UnconfirmedGeneration initial_unconfirmed;
  // The activity log and the persisted bitmaps (node_activity_log.cpp, §4). With al_updates a
  // node with a local disk keeps an activity log of al_extents 4 MiB extents: a client write
  // waits until its extents are in the log on disk (a MetadataWrite of a transaction), bitmap
  // pages are written back when an extent leaves the log, on promotion and on Down. Off (the
  // default here, so hand-driven unit tests need not complete metadata writes; DRBD's default
  // is on): no metadata writes, and a restart behind falls back to a full resync.
  bool al_updates = false;
  // DRBD's default; 67..65534 in drbdsetup, ActivityLog::node_al_extents_min..65534 here.
  std::uint32_t al_extents = 1237;
  std::uint32_t al_stripes = 1;     // ring placement of transactions (superblock al_stripes)
  std::uint32_t al_stripe_size_4k = 8;
  std::uint32_t al_first_transaction_number = 0;  // newest on disk + 1: continue the ring
  // Bitmap slots on disk (superblock bm_max_peers); 0: one per configured peer.
  std::uint32_t bitmap_max_peers = 0;
  // The on-disk bitmap slot of a peer, by node id (superblock peers[node].bitmap_index); a
  // peer not named here uses its position in `peers`.
  std::map<std::uint32_t, std::uint32_t> bitmap_slots;
  // The bitmap toward a peer as the metadata holds it (Bitmap::export_words form), by node id,
  // for a restart. A peer not named here: a node that starts below UpToDate marks every block
  // out of sync toward it.
  std::map<std::uint32_t, std::vector<std::uint32_t>> initial_bitmap_words;
  // apply-al: the extents the on-disk log names as hot after a Primary crash (the driver
  // replays the log with replay_activity_log and passes them only when the metadata says the
  // node was Primary and did not stop cleanly). Marked out of sync toward every peer at start.
  std::vector<std::uint32_t> initial_hot_extents;
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
  // Seeds the node's random choices (transaction ids, retry delays, UUIDs); mixed with node_id.
  std::uint64_t seed = 0;
  // Resync rate control (DRBD disk options, §5.4; core/resync_controller.h). Every 100 ms step
  // (or earlier, once everything requested came in) the SyncTarget's controller decides how
  // much to request: what came in during the last step plus a correction planned over
  // c_plan_ahead_deciseconds steps toward c_fill_target_sectors in flight (with
  // c_fill_target_sectors 0: toward what arrives in c_delay_target_deciseconds), at most
  // c_max_rate_kib for the step (0: no cap). With c_plan_ahead_deciseconds 0 a step requests
  // resync_rate_kib's share instead. At most resync_in_flight_max_blocks() are in flight.
  // While application I/O is active on the node (a client request, or a write received from a
  // Primary, within the last step), a step allows at most c_min_rate_kib / 10 KiB (0: never
  // throttled). Online verify is paced by c_max_rate_kib and c_fill_target_sectors.
  // Defaults: DRBD's, except c_fill_target_sectors and c_max_rate_kib, which DRBD sets for
  // 2010's disks and networks (50 KiB in flight, 100 MiB/s): ditto keeps 8 MiB in flight and
  // caps at DRBD's largest c-max-rate, 4 GiB/s (docs/configuration.md).
  std::uint32_t resync_rate_kib = 250;
  std::uint32_t c_plan_ahead_deciseconds = 20;
  std::uint32_t c_fill_target_sectors = 16384;
  std::uint32_t c_delay_target_deciseconds = 10;
  std::uint32_t c_max_rate_kib = 4 * 1024 * 1024;
  std::uint32_t c_min_rate_kib = 250;
  // Split-brain recovery policies (DRBD net options; DRBD defaults: all `disconnect`).
  SplitBrainPolicy split_brain;
  // Quorum (§8, node_quorum.cpp): quorum, quorum-minimum-redundancy, on-no-quorum,
  // on-suspended-primary-outdated. Off by default: the node always has quorum.
  QuorumSettings quorum;
  // Fencing (§7, node_fencing.cpp; DRBD's net option `fencing`, default dont-care).
  FencingPolicy fencing = FencingPolicy::dont_care;
  // `disk none`: an intentionally diskless node (a client or a quorum tiebreaker). It starts
  // Diskless and its peers count it as a diskless tiebreaker, not as a voter.
  bool intentional_diskless = false;
  // DRBD's verify-alg (net section): online verify is refused (SS_NO_VERIFY_ALG) without one.
  // The core never computes digests: the driver does, with this algorithm (see DiskRead::digest;
  // the daemon accepts only crc32c, the simulator digests its block tags).
  std::string verify_algorithm;
  // DRBD's csums-alg and csums-after-crash-only (net section, §5.2): with an algorithm, the
  // SyncTarget asks for each block with the digest of its own copy (ChecksumResyncRequest) and
  // the SyncSource sends the data only if its copy's digest differs (else ResyncInSync). With
  // csums_after_crash_only, only resyncs after a Primary crash (this node or the peer started
  // with apply-al's hot extents) and reconciliation resyncs use digests. The driver computes
  // them (DiskRead::digest; the daemon accepts only crc32c, the simulator digests tags). A
  // SyncSource answers checksum requests whatever its own setting.
  std::string csums_algorithm;
  bool csums_after_crash_only = false;
  // DRBD's read-balancing (disk section, §9; core/read_balancing.h): where a read goes when
  // the local disk and UpToDate peers could serve it. Without an UpToDate local disk a read
  // always goes to a peer.
  ReadBalancing read_balancing = ReadBalancing::prefer_local;
  // Congestion (§11, node_congestion.cpp; DRBD net options, DRBD defaults). A peer is congested
  // when the application data sent to it and not yet covered by a BarrierAck reaches
  // congestion_fill_sectors (0: never), or when the activity log holds at least
  // congestion_extents extents in use (only when smaller than al_extents). Checked on every
  // new write while the peer is Established, UpToDate, and our disk is UpToDate. Anything but
  // `block` requires protocol A (ChangeOptions and the config refuse it otherwise).
  OnCongestion on_congestion = OnCongestion::block;
  std::uint32_t congestion_fill_sectors = 0;
  std::uint32_t congestion_extents = 1237;
};

// Timers a Node arms (ArmTimer) and expects back through on_timer.
inline constexpr TimerId timer_twopc_initiator{1};    // own promotion: timeout or retry
inline constexpr TimerId timer_twopc_participant{2};  // a prepared foreign transaction
inline constexpr TimerId timer_lost_peer{3};          // own lost-peer state change: timeout
inline constexpr TimerId timer_lost_peer_probe{4};    // our probe for a peer's lost-peer change
// The wait (ahead_resync_delay) of an Ahead node toward peer n before it starts the resync of
// the blocks it did not send (§11) is timer_ahead_resync_base + n.
inline constexpr std::uint64_t timer_ahead_resync_base = 32;
inline constexpr Duration ahead_resync_delay = Duration::from_ms(1000);
// The resync step (100 ms) toward peer n as SyncTarget is timer_resync_step_base + n.
inline constexpr std::uint64_t timer_resync_step_base = 64;
inline constexpr Duration resync_step = Duration::from_ms(100);
// Progress marks of a resync or verify (status's dbdt1 and eta) are at least this far apart,
// as DRBD's sync marks (DRBD_SYNC_MARK_STEP).
inline constexpr Duration sync_mark_step = Duration::from_ms(3000);

enum class IoStatus : std::uint8_t { ok, io_error };

enum class ClientStatus : std::uint8_t {
  ok,
  io_error,     // neither the local disk nor any peer stored the data
  not_primary,  // writes need the Primary role
  no_data,      // a read found neither an UpToDate local disk nor an UpToDate peer
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
  // The driver allocates a buffer of length_bytes for this read and hands it to the core with
  // on_disk_completed (a resync reply's payload); the core releases it with ReleasePayload. On
  // an I/O error the driver frees it itself and passes no payload.
  bool allocate_payload = false;
  // Online verify: the driver reads the block into a scratch buffer of its own, computes its
  // digest with NodeConfig::verify_algorithm, frees the buffer and reports the digest with
  // on_disk_completed(..., digest) (no payload). Never combined with buffer/allocate_payload.
  // A checksum resync (NodeConfig::csums_algorithm) reads digests the same way.
  bool digest = false;
};

struct DiskFlush {
  IoId io;
};

// Send `message` to `peer`. For wire::Data the payload bytes of `payload` follow the message;
// the driver copies them while executing the Send (a ReleasePayload may follow at once).
struct Send {
  NodeId peer;
  wire::Message message;
  std::optional<PayloadHandle> payload;
};

// A client request finished. For a successful read, the data is in the buffer of `read_io`
// (read from the local disk), or, for a read a peer served, in `read_payload`: the driver copies
// it where the client wants it (the buffer given to on_client_read); a ReleasePayload of it
// follows.
struct CompleteClient {
  RequestId request;
  ClientStatus status = ClientStatus::ok;
  std::optional<IoId> read_io;
  std::optional<PayloadHandle> read_payload;
};

// Core no longer refers to this payload; the driver may free it.
struct ReleasePayload {
  PayloadHandle payload;
};

// Drop the connection to `peer` (a protocol error or a refused handshake). With `reconnect` the
// transport may reconnect later; without it the connection is StandAlone (a split brain left to
// the administrator, unrelated data, DisconnectPeer): no attempt until ConnectPeer.
struct Disconnect {
  NodeId peer;
  std::string reason;
  bool reconnect = true;
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

// Run the resource's handler `helper` (fence-peer, unfence-peer, split-brain, pri-lost-after-sb,
// ...) the way DRBD runs `drbdadm <helper> <resource>`: the command of the handlers{} section,
// with DRBD_RESOURCE, DRBD_PEER_NODE_ID (when `peer` is set) and UP_TO_DATE_NODES (a hex mask
// of node ids, `0x...`) in its environment. The driver reports the exit code with
// Node::on_helper_done(call, exit_code); a helper with no command configured reports exit
// code 0 without running anything (as drbdadm does), and a command that cannot be started or
// is killed by a signal reports 127 / 128 + signal. The core does not wait for helpers it only
// notifies (split-brain): their results are ignored.
struct CallHelper {
  HelperCallId call;
  std::string helper;
  std::optional<NodeId> peer;
  std::uint32_t up_to_date_nodes_mask = 0;
};

// Where a MetadataWrite goes: the activity-log ring or the on-disk bitmap (§12.1).
enum class MetadataArea : std::uint8_t { activity_log, bitmap };

// Write one 4 KiB metadata block durably (FUA, or write + flush) and report it with
// on_disk_completed(io). `block` is the 4 KiB block index inside `area` (an AL transaction is
// already placed in the ring; bitmap page n holds 32-bit words [1024 n, 1024 n + 1024) of the
// slot-interleaved bitmap); `bytes` are core's encoding (encode_al_transaction, or the bitmap
// page with every slot's words). The node has at most one MetadataWrite or its DiskFlush in
// flight, so the driver need not order them.
struct MetadataWrite {
  IoId io;
  MetadataArea area = MetadataArea::activity_log;
  std::uint64_t block = 0;
  std::vector<std::uint8_t> bytes;
};

// An online grow (Resize, node_resize.cpp) asks the driver what the backing disk holds now: it
// re-reads the backing device's size and, if the device grew, moves the internal metadata to
// its new end (datapath's MetadataStore::move_to_device_end; nothing may write the metadata at
// the old place afterwards), then reports the data area below the metadata, in bytes, with
// Node::on_disk_size. The core sends no MetadataWrite between this action and that input.
struct CheckDiskSize {};

using Action = std::variant<DiskWrite, DiskRead, DiskFlush, Send, CompleteClient, ReleasePayload,
                            Disconnect, Event, ArmTimer, CancelTimer, CallHelper, MetadataWrite,
                            CheckDiskSize>;

// ---- Admin ------------------------------------------------------------------------------------

struct Promote {
  bool force = false;
};
struct Demote {};
// drbdsetup disconnect: the connection to `peer` goes StandAlone and stays so.
struct DisconnectPeer {
  NodeId peer;
};
// drbdsetup connect [--discard-my-data]: a StandAlone connection starts connecting again (the
// driver then connects the transport). With discard_my_data this node offers itself as the
// victim of a split brain found at the next handshake (it becomes SyncTarget).
struct ConnectPeer {
  NodeId peer;
  bool discard_my_data = false;
};
// `drbdsetup down` / `disconnect` of every peer: leave the cluster gracefully. The peers learn
// it first (so they stop counting this node for quorum: the last man standing keeps it), then
// every connection goes StandAlone. A Primary demotes first.
struct Down {};
// drbdsetup resume-io: thaws I/O frozen by fencing (resource-and-stonith) after a handler that
// failed or has not answered; the node then writes without the peer, in a new data generation.
// I/O frozen for lack of quorum stays frozen (it resumes with quorum).
struct ResumeIo {};
// drbdsetup verify [--start SECTOR]: online verify with `peer`, this node VerifyS (see
// node_verify.cpp: what is marked, counted and reported, and when it is repaired).
struct Verify {
  NodeId peer;
  Sector start_sector;  // rounded down to a bitmap block
};
// drbdsetup verify --stop, on either side of a running verify.
struct StopVerify {
  NodeId peer;
};
// drbdsetup invalidate: every block of this node is out of sync toward an UpToDate peer (`peer`,
// or the lowest connected UpToDate one), the disk goes Inconsistent and a full resync from that
// peer follows.
struct Invalidate {
  std::optional<NodeId> peer;
};
// drbdsetup invalidate-remote: the same, with `peer` as the SyncTarget of this node.
struct InvalidateRemote {
  NodeId peer;
};
// drbdsetup pause-sync / resume-sync: the user's resync-suspend flag toward `peer`
// (node_sync_admin.cpp). A resync with the peer runs only while neither side has it set; a paused
// SyncSource / SyncTarget is PausedSyncS / PausedSyncT, and status shows resync-suspended:user
// here and resync-suspended:peer on the peer. The flag outlives the resync and the connection:
// a resync that starts later starts paused.
struct PauseSync {
  NodeId peer;
};
struct ResumeSync {
  NodeId peer;
};
// drbdsetup new-current-uuid [--clear-bitmap]: a new current UUID (the bitmap UUIDs go to the
// history). Without clear_bitmap only while no peer is connected. With clear_bitmap on a node
// that was just created (current UUID 4) and whose connected peers are Established (skip the
// initial sync, §3.2): every bitmap is cleared, this node and those peers become UpToDate, and
// the peers adopt the new UUID (uuid_flag::skip_initial_sync in the StateReport).
struct NewCurrentUuid {
  bool clear_bitmap = false;
};
// drbdsetup detach: the local disk goes Detaching, then Diskless, and the peers learn it. A
// Primary keeps serving writes through its UpToDate peers (as after on-io-error detach); a
// Primary without one is refused (SS_NO_UP_TO_DATE_DISK): it would lose its data.
struct Detach {};
// drbdsetup attach after a detach (node_attach.cpp): the disk's metadata as the driver read it
// again, the same values a start takes from NodeConfig (initial_disk_state,
// initial_generations, initial_bitmap_words, initial_hot_extents,
// al_first_transaction_number). Refused unless the node is Diskless after a detach (or an
// on-io-error detach), and when the disk's data is not an ancestor of the connected UpToDate
// peer's (the node stays Diskless). With a connected UpToDate peer the disk goes Attaching,
// Negotiating, Inconsistent and resyncs from it exactly the blocks either side marked (the
// peer marked every write the disk missed); a Primary keeps writing and reading through its
// peers until its disk is UpToDate again. Without one, the disk takes the metadata's state
// (a Primary only if the disk holds the data it exposes: ERR_DATA_NOT_CURRENT), and connected
// peers with a disk rerun the handshake (reconnect).
struct Attach {
  DiskState disk = DiskState::outdated;
  Generations generations;
  std::map<std::uint32_t, std::vector<std::uint32_t>> bitmap_words;  // by peer node id
  std::vector<std::uint32_t> hot_extents;
  std::uint32_t al_first_transaction_number = 0;
};
// drbdsetup net-options / disk-options / peer-device-options / resource-options (what drbdadm
// adjust issues): the running node takes the live options of `options` (copy_live_options) and
// acts on them where DRBD does (node_options.cpp): a quorum change re-evaluates quorum at once,
// a resync rate applies from the next resync step, the split-brain, fencing, verify and csums
// settings from the next handshake, verify or resync. Every other field of `options` must equal
// the running configuration (structural_option_differences), except the ones read only at start
// (initial_*, al_first_transaction_number, seed), which are ignored; else the change is refused
// (ERR_INVALID_REQUEST naming the fields) and nothing changes. Out-of-range values are refused
// the same way.
struct ChangeOptions {
  NodeConfig options;
};
// drbdsetup resize [--size S] [--assume-clean]: an online grow as a two-phase commit over every
// configured peer (node_resize.cpp). Each node re-reads its backing size (CheckDiskSize); the
// new size is size_bytes, or without it the smallest usable size of the diskful nodes. A node
// whose disk cannot hold it refuses (ERR_DISK_TOO_SMALL, naming the node), a smaller size is
// refused (ERR_IMPLICIT_SHRINK), so is a resize while a resync or verify runs
// (ERR_RESIZE_RESYNC) or while a peer is not connected (SS_NEED_CONNECTION). On commit every
// node exposes the new size; unless assume_clean the new area is resynced from one node (a
// Primary, else the initiator, else the lowest UpToDate node) to the other diskful nodes.
// Pending like a promotion: resize_pending(), resize_outcome() and an Event line
// `response resize name:<res> result:<code> [message:"..."]`.
struct Resize {
  std::uint64_t size_bytes = 0;  // 0: as large as every diskful node's disk allows
  bool assume_clean = false;
};
using AdminCommand = std::variant<Promote, Demote, DisconnectPeer, ConnectPeer, Down, ResumeIo,
                                  Verify, StopVerify, Invalidate, InvalidateRemote, PauseSync,
                                  ResumeSync, NewCurrentUuid, Detach, Attach, ChangeOptions,
                                  Resize>;

// The live options (ChangeOptions) of `from` copied into `to`: resync_rate_kib, c_plan_ahead_-
// deciseconds, c_fill_target_sectors, c_delay_target_deciseconds, c_max_rate_kib,
// c_min_rate_kib, split_brain, quorum, fencing, verify_algorithm, csums_algorithm,
// csums_after_crash_only, max_epoch_size, disk_flushes, twopc_timeout, twopc_retry_timeout,
// read_balancing, on_congestion, congestion_fill_sectors, congestion_extents,
// allow_two_primaries. The one list of them.
void copy_live_options(const NodeConfig& from, NodeConfig& to);
// The fields that cannot change on a running node and differ between the two, by name
// ("node-id", "peers", "protocol", "volume size", "al-extents", ...); empty if none.
std::vector<std::string> structural_option_differences(const NodeConfig& running,
                                                       const NodeConfig& wanted);

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

// A point of a resync's or verify's progress: when, and the blocks it still had to move.
struct SyncMark {
  Instant at;
  std::uint64_t blocks_left = 0;
};

// Progress of the running resync or verify with a peer, for status's rates and ETA (drbdsetup's
// rs-dt-start-ms, rs-paused-ms, dbdt0, dbdt1 and eta). Noted whenever a message of the peer
// arrives while one runs (both sides exchange messages all the time then); reset when one
// starts. Read it only while the peer's replication state says one runs.
struct SyncProgress {
  bool running = false;
  SyncMark started;        // when it started (the first message after it did)
  SyncMark mark;           // the newest mark, at least sync_mark_step after the previous one
  SyncMark previous_mark;  // the one before: dbdt1 and eta are measured since it
  Instant noted;           // when progress was last noted
  Duration paused;         // time spent in PausedSyncS/T since it started
  bool was_paused = false;  // paused when progress was last noted
};

struct PeerStatus {
  NodeId node_id;
  std::string name;
  ConnectionState connection = ConnectionState::connecting;
  Role role = Role::unknown;
  DiskState disk = DiskState::dunknown;
  // The peer is configured `disk none` (drbdsetup's peer-client), from its last StateReport.
  bool client = false;
  ReplicationState replication = ReplicationState::off;
  std::uint64_t generation = 0;  // the peer's current UUID, from its last StateReport
  std::uint64_t sent_bytes = 0;
  std::uint64_t received_bytes = 0;
  std::uint32_t pending_writes = 0;  // writes sent and not yet acknowledged
  // Application data sent to the peer and not yet covered by its BarrierAck (DRBD's
  // ap-in-flight), and whether the last write found the connection congested (§11).
  std::uint64_t in_flight_bytes = 0;
  bool congested = false;
  // Blocks (4 KiB) this node's bitmap marks out of sync toward the peer, in bytes.
  std::uint64_t out_of_sync_bytes = 0;
  // The current or last resync with this peer as SyncTarget: blocks to transfer when it
  // started (after the bitmap exchange) and blocks written so far.
  std::uint64_t resync_total_blocks = 0;
  std::uint64_t resync_done_blocks = 0;
  // Of those, on either side of a checksum resync: blocks whose digests matched, so no data
  // moved (DRBD's rs-same-csum, in blocks).
  std::uint64_t resync_same_checksum_blocks = 0;
  // The current or last online verify with the peer (either side): blocks to compare, blocks
  // compared so far, and of those the blocks found out of sync.
  std::uint64_t verify_total_blocks = 0;
  std::uint64_t verify_done_blocks = 0;
  std::uint64_t verify_out_of_sync_blocks = 0;
  SyncProgress sync_progress;
  // Why a resync with the peer is suspended: this node's pause-sync, the peer's (its
  // pause-sync or its resync-after dependency), this node's resync-after dependency
  // (Node::on_resync_dependency).
  bool resync_suspended_user = false;
  bool resync_suspended_peer = false;
  bool resync_suspended_dependency = false;
  // drbdsetup's `resync-suspended:` value: "no", or the reasons comma-joined in the order
  // user, peer, dependency.
  std::string resync_suspended_text() const;
  // drbdsetup's `done:` percentage of the running resync or verify (100 when none runs).
  double resync_percent_done() const;
  // The running resync's or verify's size and the blocks it has still to move (0 when none
  // runs). A SyncSource counts what its bitmap toward the peer still marks.
  std::uint64_t sync_total_blocks() const;
  std::uint64_t sync_blocks_left() const;
};

struct NodeStatistics {
  std::uint64_t read_bytes = 0;
  std::uint64_t written_bytes = 0;
  std::uint32_t upper_pending = 0;  // client requests in progress
  std::uint32_t lower_pending = 0;  // local disk operations in progress
  // Two Primaries: connections dropped for overlapping concurrent writes.
  std::uint64_t concurrent_writes_detected = 0;
};

}  // namespace ditto::core
