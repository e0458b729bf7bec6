// The peer-to-peer wire codec: length-prefixed frames with a CRC32C.
//
// Frame layout (all integers big-endian):
//   u32 magic  u16 type  u16 flags(0)  u32 body_length  u32 crc32c
//   body: the message's fixed fields, then (for Data) the payload bytes to the end of the body.
// The CRC covers the first 12 header bytes and the whole body. Decoding never trusts the bytes:
// truncated input asks for more, anything else wrong is a WireError naming the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/connection_settings.h"
#include "core/generation.h"
#include "core/types.h"

namespace ditto::wire {

inline constexpr std::uint32_t frame_magic = 0x44495454;  // "DITT"
// 2: StateReport carries the data generations; bitmap exchange and resync messages.
// 3: reads through peers (ReadRequest, ReadFailed, Data with data_flag_read_reply); a resync
//    request (and its reply, PeersInSync and ResyncAck) spans a run of up to
//    resync_size_max_bytes instead of one bitmap block.
// 4: TwoPcPrepare for a lost-peer state change (TwoPcChange::lost_peer).
// 5: congestion (pull-ahead): OutOfSync, and SyncControl resync_after_ahead.
// 6: StateReport carries the sender's usable and current volume sizes (DRBD's P_SIZES).
// 7: resize as a two-phase commit: TwoPcPrepare carries the requested size, flags and resync
//    source, TwoPcReply the participant's usable size, TwoPcCommit the size decided.
// 8: Hello carries the connection settings both ends must agree on (DRBD's P_PROTOCOL).
// 9: OutOfSync also goes from a SyncSource to its SyncTarget (a write the target missed).
// 10: TwoPcPrepare probe: a lost-peer participant asks its other peers before it answers.
inline constexpr std::uint16_t protocol_version = 10;
inline constexpr std::size_t header_size_bytes = 16;
inline constexpr std::size_t resource_name_size_max = 64;
// The largest client write we replicate in one message (the NBD 32 MiB convention).
inline constexpr std::uint32_t payload_size_max_bytes = 32u * 1024 * 1024;
inline constexpr std::uint32_t body_size_max_bytes = payload_size_max_bytes + 4096;
// The largest range of one resync message (ResyncRequest, ChecksumResyncRequest, ResyncInSync,
// PeersInSync, ResyncAck, resync Data): DRBD's max-bio-size.
inline constexpr std::uint32_t resync_size_max_bytes = 1024 * 1024;

enum class MessageType : std::uint16_t {
  hello = 1,
  state = 2,
  data = 3,
  write_ack = 4,
  flush_request = 5,
  flush_ack = 6,
  auth_challenge = 7,
  auth_response = 8,
  ping = 9,
  ping_ack = 10,
  recv_ack = 11,
  barrier = 12,
  barrier_ack = 13,
  twopc_prepare = 14,
  twopc_reply = 15,
  twopc_commit = 16,
  twopc_abort = 17,
  bitmap = 18,
  resync_request = 19,
  resync_ack = 20,
  peer_ack = 21,
  sync_control = 22,
  verify_request = 23,
  verify_reply = 24,
  checksum_resync_request = 25,
  resync_in_sync = 26,
  peers_in_sync = 27,
  read_request = 28,
  read_failed = 29,
  out_of_sync = 30,
};

// First message on every connection, in both directions.
struct Hello {
  std::uint16_t protocol_version_min = protocol_version;
  std::uint16_t protocol_version_max = protocol_version;
  NodeId sender;
  NodeId receiver;
  std::uint64_t features = 0;
  std::string resource_name;
  // The sender's net options the two sides must agree on (DRBD's P_PROTOCOL).
  ConnectionSettings settings;
  friend bool operator==(const Hello&, const Hello&) = default;
};

// The sender's role, local disk state and data generations (DRBD's P_STATE and P_UUIDS110 in
// one message), sent after Hello and on every change.
inline constexpr std::uint8_t dagtag_node_none = 0xff;
// The largest volume a StateReport may name: 2^48 sectors (128 PiB), far beyond DRBD's limit.
inline constexpr std::uint64_t volume_size_sectors_max = std::uint64_t{1} << 48;

struct StateReport {
  Role role = Role::secondary;
  DiskState disk_state = DiskState::diskless;
  Generations uuids;             // current, bitmap UUID per node id, history (all 32 each)
  std::uint64_t uuid_flags = 0;  // ditto::uuid_flag bits
  std::uint32_t weak_nodes = 0;  // with uuid_flag::new_datagen: nodes that missed the bump
  std::uint64_t dirty_bits = 0;  // bits set in the sender's bitmap toward the receiver
  // DRBD's dagtag toward a Primary: the node id of the last Primary whose application writes
  // this node received (dagtag_node_none: none) and the sequence of the newest of them.
  // Secondaries that lost that Primary reconcile from the one that received more (§3.5 step 3).
  std::uint8_t dagtag_node = dagtag_node_none;
  std::uint64_t dagtag = 0;
  // DRBD's P_SIZES (d_size and c_size), in 512-byte sectors: the data area of the sender's
  // backing disk (0 when it has none) and the size it exposes now (0: a diskless client that
  // has not learned it yet). Both at most volume_size_sectors_max.
  std::uint64_t usable_size_sectors = 0;
  std::uint64_t current_size_sectors = 0;
  friend bool operator==(const StateReport&, const StateReport&) = default;
};

inline constexpr std::uint32_t data_flag_fua = 1u << 4;    // DRBD dp_flags FUA
inline constexpr std::uint32_t data_flag_flush = 1u << 5;  // DRBD dp_flags FLUSH (preflush)
// Which acknowledgement the Primary wants (its protocol): B asks for RecvAck on receipt, C for
// WriteAck once on disk, A for neither (DRBD dp_flags SEND_RECEIVE_ACK / SEND_WRITE_ACK).
inline constexpr std::uint32_t data_flag_send_receive_ack = 1u << 7;
inline constexpr std::uint32_t data_flag_send_write_ack = 1u << 8;
// A resync reply (DRBD's P_RS_DATA_REPLY): the SyncSource's current contents of the run of
// blocks a ResyncRequest asked for (same sector and length, at most resync_size_max_bytes).
// `sequence` is the source's fence: the Primary's node id in the top 8 bits and the newest of its
// write sequences the source had applied when it read the block (0: no Primary).
inline constexpr std::uint32_t data_flag_resync = 1u << 9;
// A read reply (DRBD's P_DATA_REPLY): the sender's data for the ReadRequest whose id is
// `sequence`, with its sector and length.
inline constexpr std::uint32_t data_flag_read_reply = 1u << 10;
inline constexpr std::uint32_t data_flags_known =
    data_flag_fua | data_flag_flush | data_flag_send_receive_ack | data_flag_send_write_ack |
    data_flag_resync | data_flag_read_reply;

// The sender's out-of-sync bitmap toward the receiver (P_BITMAP), sent by both sides after a
// handshake that decided on a resync; the receiver ORs it into its own (§3.5 step 15).
struct BitmapTransfer {
  std::uint64_t bit_count = 0;
  std::vector<std::uint32_t> words;  // exactly ceil(bit_count / 32), bit n in word n / 32
  friend bool operator==(const BitmapTransfer&, const BitmapTransfer&) = default;
};
inline constexpr std::uint64_t bitmap_bits_max = std::uint64_t{payload_size_max_bytes} * 8 / 2;

// The SyncTarget asks for a run of adjacent blocks, at most resync_size_max_bytes
// (P_RS_DATA_REQUEST); the reply is Data with data_flag_resync for the same range.
struct ResyncRequest {
  Sector sector;
  std::uint32_t length_bytes = 0;
  friend bool operator==(const ResyncRequest&, const ResyncRequest&) = default;
};

// Checksum-based resync (csums-alg, §5.2): the SyncTarget asks for one block with the digest of
// its own copy (DRBD's P_CSUM_RS_REQUEST), computed by the driver (DiskRead::digest). The source
// answers Data{data_flag_resync} when its copy's digest differs, else ResyncInSync.
struct ChecksumResyncRequest {
  Sector sector;
  std::uint32_t length_bytes = 0;
  std::uint64_t digest = 0;
  friend bool operator==(const ChecksumResyncRequest&, const ChecksumResyncRequest&) = default;
};

// The SyncSource's copy of the block has the digest the target sent (DRBD's P_RS_IS_IN_SYNC): no
// payload; both sides clear the block's bit. `sequence` is the source's fence at its read, as in
// a resync Data (the target discards the answer if a newer application write reached it).
struct ResyncInSync {
  Sector sector;
  std::uint32_t length_bytes = 0;
  std::uint64_t sequence = 0;
  friend bool operator==(const ResyncInSync&, const ResyncInSync&) = default;
};

// Sent by the SyncSource just before its answer (resync Data or ResyncInSync) for one run
// (DRBD's P_PEERS_IN_SYNC): the other nodes (`node_mask`, node ids) toward which every block of
// the run is in sync on the source, with no write to it pending toward them. The target, which
// then holds the source's version, clears its bits toward them rather than setting them, so a
// restarted node is not resynced once per peer.
struct PeersInSync {
  Sector sector;
  std::uint32_t length_bytes = 0;
  std::uint32_t node_mask = 0;
  friend bool operator==(const PeersInSync&, const PeersInSync&) = default;
};

// The SyncTarget wrote (ok) or could not write a resync run (P_RS_WRITE_ACK / P_NEG_ACK); the
// source clears its bits on success.
struct ResyncAck {
  Sector sector;
  std::uint32_t length_bytes = 0;
  bool ok = true;
  friend bool operator==(const ResyncAck&, const ResyncAck&) = default;
};

// A client read served by the receiver (DRBD's P_DATA_REQUEST), sent only to a peer whose disk
// is UpToDate. `id` is the requester's, echoed in the answer: Data{data_flag_read_reply} with
// the data, or ReadFailed.
struct ReadRequest {
  std::uint64_t id = 0;
  Sector sector;
  std::uint32_t length_bytes = 0;
  friend bool operator==(const ReadRequest&, const ReadRequest&) = default;
};

// The receiver of a ReadRequest could not serve it (DRBD's P_NEG_DREPLY): its disk is not
// UpToDate any more, or the read failed. The requester tries another peer or fails the read.
struct ReadFailed {
  std::uint64_t id = 0;
  Sector sector;
  std::uint32_t length_bytes = 0;
  friend bool operator==(const ReadFailed&, const ReadFailed&) = default;
};

// A write the sender did not replicate to the receiver (DRBD's P_OUT_OF_SYNC): an Ahead node
// sends one per client write instead of its Data (§11). The receiver, Behind, marks the range
// out of sync toward the sender; the resync after the congestion copies it.
struct OutOfSync {
  Sector sector;
  std::uint32_t length_bytes = 0;
  friend bool operator==(const OutOfSync&, const OutOfSync&) = default;
};

// A replicated write; the payload follows the fixed fields.
struct Data {
  std::uint64_t sequence = 0;  // the Primary's write number, echoed in WriteAck
  Sector sector;
  std::uint32_t length_bytes = 0;
  std::uint32_t flags = 0;
  friend bool operator==(const Data&, const Data&) = default;
};

struct WriteAck {
  std::uint64_t sequence = 0;
  bool ok = true;
  friend bool operator==(const WriteAck&, const WriteAck&) = default;
};

struct FlushRequest {
  std::uint64_t flush_id = 0;
  friend bool operator==(const FlushRequest&, const FlushRequest&) = default;
};

struct FlushAck {
  std::uint64_t flush_id = 0;
  bool ok = true;
  friend bool operator==(const FlushAck&, const FlushAck&) = default;
};

// Transport-level messages (datapath/transport_tcp.h): peer authentication before any state is
// exchanged, and keepalive. The core never sees them.
inline constexpr std::size_t auth_challenge_size_bytes = 32;
inline constexpr std::size_t auth_response_size_max_bytes = 64;  // HMAC-SHA512

// Sent first by each side when a shared secret is configured: a fresh random challenge.
struct AuthChallenge {
  std::uint16_t protocol_version_min = protocol_version;
  std::uint16_t protocol_version_max = protocol_version;
  NodeId sender;
  NodeId receiver;
  std::string resource_name;
  std::vector<std::uint8_t> challenge;  // exactly auth_challenge_size_bytes
  friend bool operator==(const AuthChallenge&, const AuthChallenge&) = default;
};

// The HMAC proving knowledge of the shared secret (1..64 bytes, as long as the digest).
struct AuthResponse {
  std::vector<std::uint8_t> digest;
  friend bool operator==(const AuthResponse&, const AuthResponse&) = default;
};

struct Ping {
  std::uint64_t sequence = 0;
  friend bool operator==(const Ping&, const Ping&) = default;
};

struct PingAck {
  std::uint64_t sequence = 0;
  friend bool operator==(const PingAck&, const PingAck&) = default;
};

// Protocol B: the Secondary received the Data (sent before it is written).
struct RecvAck {
  std::uint64_t sequence = 0;
  friend bool operator==(const RecvAck&, const RecvAck&) = default;
};

// Closes epoch `barrier` on this connection: every Data before it belongs to that epoch.
struct Barrier {
  std::uint32_t barrier = 0;
  friend bool operator==(const Barrier&, const Barrier&) = default;
};

// The Secondary finished epoch `barrier` (all `set_size` writes on stable storage).
struct BarrierAck {
  std::uint32_t barrier = 0;
  std::uint32_t set_size = 0;
  friend bool operator==(const BarrierAck&, const BarrierAck&) = default;
};

// The Primary to its Secondaries (DRBD's P_PEER_ACK, per epoch here): every write of epoch
// `barrier` is on stable storage on each node in `node_mask`. A Secondary keeps the writes it
// received marked out of sync toward the other nodes until a PeerAck names them (§2.3).
struct PeerAck {
  std::uint32_t barrier = 0;
  std::uint32_t node_mask = 0;
  friend bool operator==(const PeerAck&, const PeerAck&) = default;
};

// Online verify and full resyncs started by an administrator (DRBD's state-change requests
// toward VerifyS/T and StartingSyncS/T), sent on an established connection:
// - verify_start: the sender is VerifyS from `sector` (a bitmap block boundary) to the end; the
//   receiver becomes VerifyT (or answers verify_end if it cannot);
// - verify_end: the verify ended (finished, stopped, or refused): the receiver leaves VerifyS/T;
// - become_sync_source: the sender invalidated itself (every block out of sync, disk
//   Inconsistent) and sent its bitmap next: the receiver becomes its SyncSource;
// - become_sync_target: invalidate-remote: the receiver invalidates itself toward the sender.
enum class SyncCommand : std::uint8_t {
  verify_start = 1,
  verify_end = 2,
  become_sync_source = 3,
  become_sync_target = 4,
  // The sender went Ahead of the receiver (§11): the receiver goes Behind (its disk capped at
  // Outdated) and gets OutOfSync messages instead of Data.
  ahead = 5,
  // From the Ahead node once the congestion drained: the Behind node becomes SyncTarget of
  // exactly the blocks the OutOfSync messages named (a bitmap exchange follows).
  resync_after_ahead = 6,
};
struct SyncControl {
  SyncCommand command = SyncCommand::verify_start;
  Sector sector;  // verify_start: where the verify starts; 0 otherwise
  friend bool operator==(const SyncControl&, const SyncControl&) = default;
};

// VerifyS to VerifyT (DRBD's P_OV_REQUEST, carrying the source's digest): the digest of the
// source's copy of one bitmap block, computed by the driver with the verify-alg.
struct VerifyRequest {
  Sector sector;
  std::uint32_t length_bytes = 0;
  std::uint64_t digest = 0;
  friend bool operator==(const VerifyRequest&, const VerifyRequest&) = default;
};

// VerifyT's answer (DRBD's P_OV_RESULT): whether its copy of the block has the same digest.
struct VerifyReply {
  Sector sector;
  std::uint32_t length_bytes = 0;
  bool in_sync = true;
  friend bool operator==(const VerifyReply&, const VerifyReply&) = default;
};

// Cluster-wide state changes run as two-phase commits keyed by (initiator, transaction_id).
// lost_peer: DRBD's empty state change after a lost connection (twopc_after_lost_peer); the
// initiator learns which peers still answer. A participant answers once its own other links
// answered a probe (or were found dead), as DRBD forwards the change through the mesh: its
// quorum, which a diskless initiator takes as its own, then counts no link the partition broke.
// probe: answered yes at once, never forwarded.
// resize: an online grow (node_resize.cpp); the prepare names the requested size (0: as large
// as every disk allows), the reply the participant's usable size, the commit the decided size.
enum class TwoPcChange : std::uint8_t { promote = 1, lost_peer = 2, resize = 3, probe = 4 };
inline constexpr std::uint8_t twopc_flag_assume_clean = 0x1;  // resize: no resync of the new area
enum class TwoPcVote : std::uint8_t { yes = 0, no = 1, retry = 2 };

struct TwoPcPrepare {
  NodeId initiator;
  std::uint64_t transaction_id = 0;
  TwoPcChange change = TwoPcChange::promote;
  std::uint64_t size_sectors = 0;  // resize: the requested size (0: the largest possible)
  std::uint8_t flags = 0;          // resize: twopc_flag_*
  NodeId resync_source;            // resize: the node that resyncs the new area to the others
  friend bool operator==(const TwoPcPrepare&, const TwoPcPrepare&) = default;
};

struct TwoPcReply {
  NodeId initiator;
  std::uint64_t transaction_id = 0;
  TwoPcVote vote = TwoPcVote::yes;
  std::int8_t code = 1;  // an SS_* value (core::StateChangeCode) explaining a `no`
  std::uint64_t usable_size_sectors = 0;  // resize: what the participant's disk holds now
  friend bool operator==(const TwoPcReply&, const TwoPcReply&) = default;
};

struct TwoPcCommit {
  NodeId initiator;
  std::uint64_t transaction_id = 0;
  std::uint64_t size_sectors = 0;  // resize: the size decided
  friend bool operator==(const TwoPcCommit&, const TwoPcCommit&) = default;
};

struct TwoPcAbort {
  NodeId initiator;
  std::uint64_t transaction_id = 0;
  friend bool operator==(const TwoPcAbort&, const TwoPcAbort&) = default;
};

using Message = std::variant<Hello, StateReport, Data, WriteAck, FlushRequest, FlushAck,
                             AuthChallenge, AuthResponse, Ping, PingAck, RecvAck, Barrier,
                             BarrierAck, TwoPcPrepare, TwoPcReply, TwoPcCommit, TwoPcAbort,
                             BitmapTransfer, ResyncRequest, ResyncAck, PeerAck, SyncControl,
                             VerifyRequest, VerifyReply, ChecksumResyncRequest, ResyncInSync,
                             PeersInSync, ReadRequest, ReadFailed, OutOfSync>;

MessageType type_of(const Message& message);
const char* to_string(MessageType type);

// Size of header plus fixed fields (everything but the payload).
std::size_t encoded_prefix_size_bytes(const Message& message);

// Writes the header and fixed fields into `out` (at least encoded_prefix_size_bytes long) and
// returns the bytes written. The payload is not copied: the caller sends it right after the
// prefix (scatter-gather), but it is covered by the CRC, so pass it here.
std::size_t encode_prefix(const Message& message, std::span<const std::uint8_t> payload,
                          std::span<std::uint8_t> out);

// Convenience: the whole frame in one buffer.
std::vector<std::uint8_t> encode(const Message& message,
                                 std::span<const std::uint8_t> payload = {});

struct Frame {
  Message message;
  std::span<const std::uint8_t> payload;  // points into the decoded buffer
  std::size_t frame_size_bytes = 0;
};

// Not enough bytes yet: at least `frame_size_bytes` must be buffered to decode the next frame.
struct NeedMore {
  std::size_t frame_size_bytes = 0;
};

enum class WireErrorCode : std::uint8_t {
  bad_magic,
  oversized,
  bad_crc,
  unknown_type,
  malformed_body,
};

struct WireError {
  WireErrorCode code;
  std::string message;
};

using DecodeResult = std::variant<Frame, NeedMore, WireError>;

// Decodes the frame at the start of `buffer`.
DecodeResult decode(std::span<const std::uint8_t> buffer);

}  // namespace ditto::wire
