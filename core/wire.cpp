#include "core/wire.h"

#include <optional>
#include <type_traits>

#include "core/assert.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/overloaded.h"

namespace ditto::wire {
namespace {

std::size_t fields_size_bytes(const Message& message) {
  return std::visit(
      Overloaded{
          [](const Hello& hello) -> std::size_t {
            return 2 + 2 + 1 + 1 + 8 + 1 + hello.resource_name.size() + 1 + 1 + 1 + 1 + 1;
          },
          [](const StateReport&) -> std::size_t {
            return 1 + 1 + 8 + 8 + 4 + 8 + 1 + 8 + 8 + 8 + 8 * 2 * std::size_t{generation_node_slots};
          },
          [](const Data&) -> std::size_t { return 8 + 8 + 4 + 4; },
          [](const WriteAck&) -> std::size_t { return 8 + 1; },
          [](const FlushRequest&) -> std::size_t { return 8; },
          [](const FlushAck&) -> std::size_t { return 8 + 1; },
          [](const AuthChallenge& challenge) -> std::size_t {
            return 2 + 2 + 1 + 1 + 1 + challenge.resource_name.size() + auth_challenge_size_bytes;
          },
          [](const AuthResponse& response) -> std::size_t { return 1 + response.digest.size(); },
          [](const Ping&) -> std::size_t { return 8; },
          [](const PingAck&) -> std::size_t { return 8; },
          [](const RecvAck&) -> std::size_t { return 8; },
          [](const Barrier&) -> std::size_t { return 4; },
          [](const BarrierAck&) -> std::size_t { return 4 + 4; },
          [](const TwoPcPrepare&) -> std::size_t { return 1 + 8 + 1 + 8 + 1 + 1; },
          [](const TwoPcReply&) -> std::size_t { return 1 + 8 + 1 + 1 + 8; },
          [](const TwoPcCommit&) -> std::size_t { return 1 + 8 + 8; },
          [](const TwoPcAbort&) -> std::size_t { return 1 + 8; },
          [](const BitmapTransfer& bitmap) -> std::size_t { return 8 + 4 * bitmap.words.size(); },
          [](const ResyncRequest&) -> std::size_t { return 8 + 4; },
          [](const ResyncAck&) -> std::size_t { return 8 + 4 + 1; },
          [](const PeerAck&) -> std::size_t { return 4 + 4; },
          [](const SyncControl&) -> std::size_t { return 1 + 8; },
          [](const VerifyRequest&) -> std::size_t { return 8 + 4 + 8; },
          [](const VerifyReply&) -> std::size_t { return 8 + 4 + 1; },
          [](const ChecksumResyncRequest&) -> std::size_t { return 8 + 4 + 8; },
          [](const ResyncInSync&) -> std::size_t { return 8 + 4 + 8; },
          [](const PeersInSync&) -> std::size_t { return 8 + 4 + 4; },
          [](const ReadRequest&) -> std::size_t { return 8 + 8 + 4; },
          [](const ReadFailed&) -> std::size_t { return 8 + 8 + 4; },
          [](const OutOfSync&) -> std::size_t { return 8 + 4; },
      },
      message);
}

void write_auth_challenge(const AuthChallenge& challenge, ByteWriter& writer) {
  DITTO_ASSERT(challenge.resource_name.size() <= resource_name_size_max);
  DITTO_ASSERT_EQ(challenge.challenge.size(), auth_challenge_size_bytes);
  writer.u16(challenge.protocol_version_min);
  writer.u16(challenge.protocol_version_max);
  writer.u8(challenge.sender.value);
  writer.u8(challenge.receiver.value);
  writer.u8(static_cast<std::uint8_t>(challenge.resource_name.size()));
  writer.string(challenge.resource_name);
  writer.bytes(challenge.challenge);
}

template <typename TwoPc>
void write_twopc(const TwoPc& twopc, ByteWriter& writer) {
  writer.u8(twopc.initiator.value);
  writer.u64(twopc.transaction_id);
  if constexpr (std::is_same_v<TwoPc, TwoPcPrepare>) {
    writer.u8(static_cast<std::uint8_t>(twopc.change));
    writer.u64(twopc.size_sectors);
    writer.u8(twopc.flags);
    writer.u8(twopc.resync_source.value);
  } else if constexpr (std::is_same_v<TwoPc, TwoPcReply>) {
    writer.u8(static_cast<std::uint8_t>(twopc.vote));
    writer.u8(static_cast<std::uint8_t>(twopc.code));
    writer.u64(twopc.usable_size_sectors);
  } else if constexpr (std::is_same_v<TwoPc, TwoPcCommit>) {
    writer.u64(twopc.size_sectors);
  }
}

template <typename Read>
void write_read(const Read& read, ByteWriter& writer) {
  writer.u64(read.id);
  writer.u64(read.sector.value);
  writer.u32(read.length_bytes);
}

void write_state(const StateReport& state, ByteWriter& writer) {
  writer.u8(static_cast<std::uint8_t>(state.role));
  writer.u8(static_cast<std::uint8_t>(state.disk_state));
  writer.u64(state.uuids.current);
  writer.u64(state.uuid_flags);
  writer.u32(state.weak_nodes);
  writer.u64(state.dirty_bits);
  writer.u8(state.dagtag_node);
  writer.u64(state.dagtag);
  writer.u64(state.usable_size_sectors);
  writer.u64(state.current_size_sectors);
  for (const std::uint64_t uuid : state.uuids.bitmap) writer.u64(uuid);
  for (const std::uint64_t uuid : state.uuids.history) writer.u64(uuid);
}

constexpr std::uint8_t settings_flag_two_primaries = 1;
constexpr std::uint8_t settings_flag_discard_my_data = 2;

void write_settings(const ConnectionSettings& settings, ByteWriter& writer) {
  writer.u8(static_cast<std::uint8_t>(settings.protocol));
  writer.u8(static_cast<std::uint8_t>(settings.after_sb_0pri));
  writer.u8(static_cast<std::uint8_t>(settings.after_sb_1pri));
  writer.u8(static_cast<std::uint8_t>(settings.after_sb_2pri));
  writer.u8((settings.allow_two_primaries ? settings_flag_two_primaries : 0) |
            (settings.discard_my_data ? settings_flag_discard_my_data : 0));
}

void write_fields(const Message& message, ByteWriter& writer) {
  std::visit(Overloaded{
                 [&](const Hello& hello) {
                   DITTO_ASSERT(hello.resource_name.size() <= resource_name_size_max);
                   writer.u16(hello.protocol_version_min);
                   writer.u16(hello.protocol_version_max);
                   writer.u8(hello.sender.value);
                   writer.u8(hello.receiver.value);
                   writer.u64(hello.features);
                   writer.u8(static_cast<std::uint8_t>(hello.resource_name.size()));
                   writer.string(hello.resource_name);
                   write_settings(hello.settings, writer);
                 },
                 [&](const StateReport& state) { write_state(state, writer); },
                 [&](const Data& data) {
                   writer.u64(data.sequence);
                   writer.u64(data.sector.value);
                   writer.u32(data.length_bytes);
                   writer.u32(data.flags);
                 },
                 [&](const WriteAck& ack) {
                   writer.u64(ack.sequence);
                   writer.u8(ack.ok ? 1 : 0);
                 },
                 [&](const FlushRequest& flush) { writer.u64(flush.flush_id); },
                 [&](const FlushAck& ack) {
                   writer.u64(ack.flush_id);
                   writer.u8(ack.ok ? 1 : 0);
                 },
                 [&](const AuthChallenge& challenge) { write_auth_challenge(challenge, writer); },
                 [&](const AuthResponse& response) {
                   DITTO_ASSERT(!response.digest.empty());
                   DITTO_ASSERT(response.digest.size() <= auth_response_size_max_bytes);
                   writer.u8(static_cast<std::uint8_t>(response.digest.size()));
                   writer.bytes(response.digest);
                 },
                 [&](const Ping& ping) { writer.u64(ping.sequence); },
                 [&](const PingAck& ack) { writer.u64(ack.sequence); },
                 [&](const RecvAck& ack) { writer.u64(ack.sequence); },
                 [&](const Barrier& barrier) { writer.u32(barrier.barrier); },
                 [&](const BarrierAck& ack) {
                   writer.u32(ack.barrier);
                   writer.u32(ack.set_size);
                 },
                 [&](const BitmapTransfer& bitmap) {
                   DITTO_ASSERT_EQ(bitmap.words.size(), (bitmap.bit_count + 31) / 32);
                   writer.u64(bitmap.bit_count);
                   for (const std::uint32_t word : bitmap.words) writer.u32(word);
                 },
                 [&](const ResyncRequest& request) {
                   writer.u64(request.sector.value);
                   writer.u32(request.length_bytes);
                 },
                 [&](const ResyncAck& ack) {
                   writer.u64(ack.sector.value);
                   writer.u32(ack.length_bytes);
                   writer.u8(ack.ok ? 1 : 0);
                 },
                 [&](const PeerAck& ack) {
                   writer.u32(ack.barrier);
                   writer.u32(ack.node_mask);
                 },
                 [&](const SyncControl& control) {
                   writer.u8(static_cast<std::uint8_t>(control.command));
                   writer.u64(control.sector.value);
                 },
                 [&](const VerifyRequest& request) {
                   writer.u64(request.sector.value);
                   writer.u32(request.length_bytes);
                   writer.u64(request.digest);
                 },
                 [&](const VerifyReply& reply) {
                   writer.u64(reply.sector.value);
                   writer.u32(reply.length_bytes);
                   writer.u8(reply.in_sync ? 1 : 0);
                 },
                 [&](const ChecksumResyncRequest& request) {
                   writer.u64(request.sector.value);
                   writer.u32(request.length_bytes);
                   writer.u64(request.digest);
                 },
                 [&](const ResyncInSync& in_sync) {
                   writer.u64(in_sync.sector.value);
                   writer.u32(in_sync.length_bytes);
                   writer.u64(in_sync.sequence);
                 },
                 [&](const PeersInSync& in_sync) {
                   writer.u64(in_sync.sector.value);
                   writer.u32(in_sync.length_bytes);
                   writer.u32(in_sync.node_mask);
                 },
                 [&](const ReadRequest& request) { write_read(request, writer); },
                 [&](const ReadFailed& failed) { write_read(failed, writer); },
                 [&](const OutOfSync& out_of_sync) {
                   writer.u64(out_of_sync.sector.value);
                   writer.u32(out_of_sync.length_bytes);
                 },
                 [&](const auto& twopc) { write_twopc(twopc, writer); },
             },
             message);
}

WireError malformed(MessageType type, const char* what) {
  return WireError{WireErrorCode::malformed_body,
                   std::string("malformed ") + to_string(type) + " message: " + what};
}

bool read_bytes(ByteReader& reader, std::vector<std::uint8_t>& out) {
  if (reader.remaining() < out.size()) return false;
  for (std::uint8_t& byte : out) {
    if (!reader.u8(byte)) return false;
  }
  return true;
}

bool parse_bool(std::uint8_t byte, bool& value) {
  if (byte > 1) return false;
  value = byte == 1;
  return true;
}

// A payload or block length: not zero, a multiple of 512, at most 32 MiB.
bool length_valid(std::uint32_t length_bytes) {
  return length_bytes != 0 && length_bytes % sector_size_bytes == 0 &&
         length_bytes <= payload_size_max_bytes;
}

constexpr const char* length_invalid_text = "length is zero, not a multiple of 512 or above 32 MiB";
constexpr const char* resync_size_invalid_text = "resync range above 1 MiB";

// The sector and length every block message (resync, verify, checksum resync) starts with.
std::optional<WireError> parse_block_range(ByteReader& reader, MessageType type, Sector& sector,
                                           std::uint32_t& length_bytes) {
  if (!reader.u64(sector.value) || !reader.u32(length_bytes)) {
    return malformed(type, "truncated fields");
  }
  if (!length_valid(length_bytes)) return malformed(type, length_invalid_text);
  return std::nullopt;
}

// The net options of a Hello, each checked against the values it may take; the reason on error.
const char* read_settings(ByteReader& reader, ConnectionSettings& settings) {
  std::uint8_t protocol = 0;
  std::uint8_t after_sb_0pri = 0;
  std::uint8_t after_sb_1pri = 0;
  std::uint8_t after_sb_2pri = 0;
  std::uint8_t flags = 0;
  if (!reader.u8(protocol) || !reader.u8(after_sb_0pri) || !reader.u8(after_sb_1pri) ||
      !reader.u8(after_sb_2pri) || !reader.u8(flags)) {
    return "truncated connection settings";
  }
  if (protocol < static_cast<std::uint8_t>(Protocol::a) ||
      protocol > static_cast<std::uint8_t>(Protocol::c)) {
    return "replication protocol is not A, B or C";
  }
  if (after_sb_0pri >= after_split_brain_0_count) return "after-sb-0pri value out of range";
  if (after_sb_1pri >= after_split_brain_1_count) return "after-sb-1pri value out of range";
  if (after_sb_2pri >= after_split_brain_2_count) return "after-sb-2pri value out of range";
  if ((flags & ~(settings_flag_two_primaries | settings_flag_discard_my_data)) != 0) {
    return "unknown connection settings flags";
  }
  settings.protocol = static_cast<Protocol>(protocol);
  settings.after_sb_0pri = static_cast<AfterSplitBrain0>(after_sb_0pri);
  settings.after_sb_1pri = static_cast<AfterSplitBrain1>(after_sb_1pri);
  settings.after_sb_2pri = static_cast<AfterSplitBrain2>(after_sb_2pri);
  settings.allow_two_primaries = (flags & settings_flag_two_primaries) != 0;
  settings.discard_my_data = (flags & settings_flag_discard_my_data) != 0;
  return nullptr;
}

std::variant<Message, WireError> parse_hello(ByteReader& reader) {
  Hello hello;
  std::uint8_t sender = 0;
  std::uint8_t receiver = 0;
  std::uint8_t name_length = 0;
  if (!reader.u16(hello.protocol_version_min) || !reader.u16(hello.protocol_version_max) ||
      !reader.u8(sender) || !reader.u8(receiver) || !reader.u64(hello.features) ||
      !reader.u8(name_length)) {
    return malformed(MessageType::hello, "truncated fields");
  }
  if (sender > node_id_max || receiver > node_id_max) {
    return malformed(MessageType::hello, "node id above 31");
  }
  if (name_length > resource_name_size_max) {
    return malformed(MessageType::hello, "resource name longer than 64 bytes");
  }
  if (!reader.string(hello.resource_name, name_length)) {
    return malformed(MessageType::hello, "truncated resource name");
  }
  if (const char* error = read_settings(reader, hello.settings)) {
    return malformed(MessageType::hello, error);
  }
  if (hello.protocol_version_min > hello.protocol_version_max) {
    return malformed(MessageType::hello, "protocol version range is empty");
  }
  hello.sender = NodeId{sender};
  hello.receiver = NodeId{receiver};
  return Message{hello};
}

std::variant<Message, WireError> parse_state(ByteReader& reader) {
  std::uint8_t role = 0;
  std::uint8_t disk = 0;
  StateReport state;
  if (!reader.u8(role) || !reader.u8(disk) || !reader.u64(state.uuids.current) ||
      !reader.u64(state.uuid_flags) || !reader.u32(state.weak_nodes) ||
      !reader.u64(state.dirty_bits) || !reader.u8(state.dagtag_node) ||
      !reader.u64(state.dagtag) || !reader.u64(state.usable_size_sectors) ||
      !reader.u64(state.current_size_sectors)) {
    return malformed(MessageType::state, "truncated fields");
  }
  for (std::uint64_t& uuid : state.uuids.bitmap) {
    if (!reader.u64(uuid)) return malformed(MessageType::state, "truncated bitmap UUIDs");
  }
  for (std::uint64_t& uuid : state.uuids.history) {
    if (!reader.u64(uuid)) return malformed(MessageType::state, "truncated history UUIDs");
  }
  if (role > static_cast<std::uint8_t>(Role::secondary)) {
    return malformed(MessageType::state, "unknown role");
  }
  if (disk > static_cast<std::uint8_t>(DiskState::up_to_date)) {
    return malformed(MessageType::state, "unknown disk state");
  }
  if (state.dagtag_node != dagtag_node_none && state.dagtag_node >= nodes_max) {
    return malformed(MessageType::state, "dagtag node id out of range");
  }
  if (state.usable_size_sectors > volume_size_sectors_max ||
      state.current_size_sectors > volume_size_sectors_max) {
    return malformed(MessageType::state, "volume size beyond 2^48 sectors");
  }
  state.role = static_cast<Role>(role);
  state.disk_state = static_cast<DiskState>(disk);
  return Message{state};
}

std::variant<Message, WireError> parse_data(ByteReader& reader) {
  Data data;
  std::uint64_t sector = 0;
  if (!reader.u64(data.sequence) || !reader.u64(sector) || !reader.u32(data.length_bytes) ||
      !reader.u32(data.flags)) {
    return malformed(MessageType::data, "truncated fields");
  }
  if (!length_valid(data.length_bytes)) return malformed(MessageType::data, length_invalid_text);
  if ((data.flags & ~data_flags_known) != 0) {
    return malformed(MessageType::data, "unknown flag bits");
  }
  if ((data.flags & data_flag_resync) != 0 && data.length_bytes > resync_size_max_bytes) {
    return malformed(MessageType::data, resync_size_invalid_text);
  }
  data.sector = Sector{sector};
  return Message{data};
}

std::variant<Message, WireError> parse_ack(ByteReader& reader, MessageType type) {
  std::uint64_t id = 0;
  std::uint8_t ok_byte = 0;
  bool ok = false;
  if (!reader.u64(id) || !reader.u8(ok_byte)) return malformed(type, "truncated fields");
  if (!parse_bool(ok_byte, ok)) return malformed(type, "status byte is not 0 or 1");
  if (type == MessageType::write_ack) return Message{WriteAck{id, ok}};
  return Message{FlushAck{id, ok}};
}

std::variant<Message, WireError> parse_auth_challenge(ByteReader& reader) {
  constexpr MessageType type = MessageType::auth_challenge;
  AuthChallenge challenge;
  std::uint8_t sender = 0;
  std::uint8_t receiver = 0;
  std::uint8_t name_length = 0;
  if (!reader.u16(challenge.protocol_version_min) ||
      !reader.u16(challenge.protocol_version_max) || !reader.u8(sender) || !reader.u8(receiver) ||
      !reader.u8(name_length)) {
    return malformed(type, "truncated fields");
  }
  if (sender > node_id_max || receiver > node_id_max) return malformed(type, "node id above 31");
  if (name_length > resource_name_size_max) {
    return malformed(type, "resource name longer than 64 bytes");
  }
  if (!reader.string(challenge.resource_name, name_length)) {
    return malformed(type, "truncated resource name");
  }
  challenge.challenge.resize(auth_challenge_size_bytes);
  if (!read_bytes(reader, challenge.challenge)) return malformed(type, "truncated challenge");
  if (challenge.protocol_version_min > challenge.protocol_version_max) {
    return malformed(type, "protocol version range is empty");
  }
  challenge.sender = NodeId{sender};
  challenge.receiver = NodeId{receiver};
  return Message{std::move(challenge)};
}

std::variant<Message, WireError> parse_auth_response(ByteReader& reader) {
  constexpr MessageType type = MessageType::auth_response;
  std::uint8_t length = 0;
  if (!reader.u8(length)) return malformed(type, "truncated fields");
  if (length == 0 || length > auth_response_size_max_bytes) {
    return malformed(type, "digest length is 0 or above 64 bytes");
  }
  AuthResponse response;
  response.digest.resize(length);
  if (!read_bytes(reader, response.digest)) return malformed(type, "truncated digest");
  return Message{std::move(response)};
}

std::variant<Message, WireError> parse_barrier(ByteReader& reader, MessageType type) {
  std::uint32_t barrier = 0;
  if (!reader.u32(barrier)) return malformed(type, "truncated fields");
  if (type == MessageType::barrier) return Message{Barrier{barrier}};
  std::uint32_t set_size = 0;
  if (!reader.u32(set_size)) return malformed(type, "truncated fields");
  return Message{BarrierAck{barrier, set_size}};
}

std::variant<Message, WireError> parse_twopc(ByteReader& reader, MessageType type) {
  std::uint8_t initiator = 0;
  std::uint64_t transaction_id = 0;
  if (!reader.u8(initiator) || !reader.u64(transaction_id)) {
    return malformed(type, "truncated fields");
  }
  if (initiator > node_id_max) return malformed(type, "initiator node id above 31");
  const NodeId node{initiator};
  if (type == MessageType::twopc_commit) {
    std::uint64_t size_sectors = 0;
    if (!reader.u64(size_sectors)) return malformed(type, "truncated fields");
    return Message{TwoPcCommit{node, transaction_id, size_sectors}};
  }
  if (type == MessageType::twopc_abort) return Message{TwoPcAbort{node, transaction_id}};
  std::uint8_t first = 0;
  if (!reader.u8(first)) return malformed(type, "truncated fields");
  if (type == MessageType::twopc_prepare) {
    if (first < static_cast<std::uint8_t>(TwoPcChange::promote) ||
        first > static_cast<std::uint8_t>(TwoPcChange::probe)) {
      return malformed(type, "unknown state change");
    }
    TwoPcPrepare prepare{node, transaction_id, static_cast<TwoPcChange>(first), 0, 0, NodeId{}};
    std::uint8_t source = 0;
    if (!reader.u64(prepare.size_sectors) || !reader.u8(prepare.flags) || !reader.u8(source)) {
      return malformed(type, "truncated fields");
    }
    if (source > node_id_max) return malformed(type, "resync source node id above 31");
    if ((prepare.flags & ~twopc_flag_assume_clean) != 0) return malformed(type, "unknown flags");
    prepare.resync_source = NodeId{source};
    return Message{prepare};
  }
  std::uint8_t code = 0;
  std::uint64_t usable_size_sectors = 0;
  if (!reader.u8(code) || !reader.u64(usable_size_sectors)) {
    return malformed(type, "truncated fields");
  }
  if (first > static_cast<std::uint8_t>(TwoPcVote::retry)) return malformed(type, "unknown vote");
  return Message{TwoPcReply{node, transaction_id, static_cast<TwoPcVote>(first),
                            static_cast<std::int8_t>(code), usable_size_sectors}};
}

std::variant<Message, WireError> parse_bitmap(ByteReader& reader) {
  constexpr MessageType type = MessageType::bitmap;
  BitmapTransfer bitmap;
  if (!reader.u64(bitmap.bit_count)) return malformed(type, "truncated fields");
  if (bitmap.bit_count > bitmap_bits_max) return malformed(type, "bit count above the maximum");
  const std::uint64_t words = (bitmap.bit_count + 31) / 32;
  if (reader.remaining() != words * 4) {
    return malformed(type, "word count does not match the bit count");
  }
  bitmap.words.resize(words);
  for (std::uint32_t& word : bitmap.words) {
    if (!reader.u32(word)) return malformed(type, "truncated words");
  }
  return Message{std::move(bitmap)};
}

std::variant<Message, WireError> parse_resync(ByteReader& reader, MessageType type) {
  Sector sector;
  std::uint32_t length_bytes = 0;
  if (auto error = parse_block_range(reader, type, sector, length_bytes)) return *error;
  if (length_bytes > resync_size_max_bytes) return malformed(type, resync_size_invalid_text);
  if (type == MessageType::resync_request) return Message{ResyncRequest{sector, length_bytes}};
  if (type == MessageType::peers_in_sync) {
    std::uint32_t node_mask = 0;
    if (!reader.u32(node_mask)) return malformed(type, "truncated fields");
    return Message{PeersInSync{sector, length_bytes, node_mask}};
  }
  if (type == MessageType::checksum_resync_request || type == MessageType::resync_in_sync) {
    std::uint64_t value = 0;
    if (!reader.u64(value)) return malformed(type, "truncated fields");
    if (type == MessageType::resync_in_sync) {
      return Message{ResyncInSync{sector, length_bytes, value}};
    }
    return Message{ChecksumResyncRequest{sector, length_bytes, value}};
  }
  std::uint8_t ok_byte = 0;
  bool ok = false;
  if (!reader.u8(ok_byte)) return malformed(type, "truncated fields");
  if (!parse_bool(ok_byte, ok)) return malformed(type, "status byte is not 0 or 1");
  return Message{ResyncAck{sector, length_bytes, ok}};
}

std::variant<Message, WireError> parse_sync_control(ByteReader& reader) {
  constexpr MessageType type = MessageType::sync_control;
  std::uint8_t command = 0;
  std::uint64_t sector = 0;
  if (!reader.u8(command) || !reader.u64(sector)) return malformed(type, "truncated fields");
  if (command < static_cast<std::uint8_t>(SyncCommand::verify_start) ||
      command > static_cast<std::uint8_t>(SyncCommand::resync_after_ahead)) {
    return malformed(type, "unknown command");
  }
  return Message{SyncControl{static_cast<SyncCommand>(command), Sector{sector}}};
}

std::variant<Message, WireError> parse_verify(ByteReader& reader, MessageType type) {
  Sector sector;
  std::uint32_t length_bytes = 0;
  if (auto error = parse_block_range(reader, type, sector, length_bytes)) return *error;
  if (type == MessageType::verify_request) {
    std::uint64_t digest = 0;
    if (!reader.u64(digest)) return malformed(type, "truncated fields");
    return Message{VerifyRequest{sector, length_bytes, digest}};
  }
  std::uint8_t in_sync_byte = 0;
  bool in_sync = false;
  if (!reader.u8(in_sync_byte)) return malformed(type, "truncated fields");
  if (!parse_bool(in_sync_byte, in_sync)) return malformed(type, "in-sync byte is not 0 or 1");
  return Message{VerifyReply{sector, length_bytes, in_sync}};
}

std::variant<Message, WireError> parse_read(ByteReader& reader, MessageType type) {
  std::uint64_t id = 0;
  if (!reader.u64(id)) return malformed(type, "truncated fields");
  Sector sector;
  std::uint32_t length_bytes = 0;
  if (auto error = parse_block_range(reader, type, sector, length_bytes)) return *error;
  if (type == MessageType::read_request) return Message{ReadRequest{id, sector, length_bytes}};
  return Message{ReadFailed{id, sector, length_bytes}};
}

std::variant<Message, WireError> parse_body(MessageType type, ByteReader& reader) {
  switch (type) {
    case MessageType::hello: return parse_hello(reader);
    case MessageType::state: return parse_state(reader);
    case MessageType::data: return parse_data(reader);
    case MessageType::write_ack: return parse_ack(reader, type);
    case MessageType::flush_ack: return parse_ack(reader, type);
    case MessageType::flush_request: {
      FlushRequest flush;
      if (!reader.u64(flush.flush_id)) return malformed(type, "truncated fields");
      return Message{flush};
    }
    case MessageType::auth_challenge: return parse_auth_challenge(reader);
    case MessageType::auth_response: return parse_auth_response(reader);
    case MessageType::ping:
    case MessageType::ping_ack: {
      std::uint64_t sequence = 0;
      if (!reader.u64(sequence)) return malformed(type, "truncated fields");
      if (type == MessageType::ping) return Message{Ping{sequence}};
      return Message{PingAck{sequence}};
    }
    case MessageType::recv_ack: {
      RecvAck ack;
      if (!reader.u64(ack.sequence)) return malformed(type, "truncated fields");
      return Message{ack};
    }
    case MessageType::barrier:
    case MessageType::barrier_ack: return parse_barrier(reader, type);
    case MessageType::twopc_prepare:
    case MessageType::twopc_reply:
    case MessageType::twopc_commit:
    case MessageType::twopc_abort: return parse_twopc(reader, type);
    case MessageType::bitmap: return parse_bitmap(reader);
    case MessageType::resync_request:
    case MessageType::resync_ack: return parse_resync(reader, type);
    case MessageType::peer_ack: {
      PeerAck ack;
      if (!reader.u32(ack.barrier) || !reader.u32(ack.node_mask)) {
        return malformed(type, "truncated fields");
      }
      return Message{ack};
    }
    case MessageType::sync_control: return parse_sync_control(reader);
    case MessageType::verify_request:
    case MessageType::verify_reply: return parse_verify(reader, type);
    case MessageType::checksum_resync_request:
    case MessageType::resync_in_sync:
    case MessageType::peers_in_sync: return parse_resync(reader, type);
    case MessageType::read_request:
    case MessageType::read_failed: return parse_read(reader, type);
    case MessageType::out_of_sync: {
      OutOfSync out_of_sync;
      if (auto error = parse_block_range(reader, type, out_of_sync.sector,
                                         out_of_sync.length_bytes)) {
        return *error;
      }
      return Message{out_of_sync};
    }
  }
  return WireError{WireErrorCode::unknown_type, "unknown message type"};
}

bool known_type(std::uint16_t type) {
  return type >= static_cast<std::uint16_t>(MessageType::hello) &&
         type <= static_cast<std::uint16_t>(MessageType::out_of_sync);
}

}  // namespace

MessageType type_of(const Message& message) {
  return std::visit(Overloaded{
                        [](const Hello&) { return MessageType::hello; },
                        [](const StateReport&) { return MessageType::state; },
                        [](const Data&) { return MessageType::data; },
                        [](const WriteAck&) { return MessageType::write_ack; },
                        [](const FlushRequest&) { return MessageType::flush_request; },
                        [](const FlushAck&) { return MessageType::flush_ack; },
                        [](const AuthChallenge&) { return MessageType::auth_challenge; },
                        [](const AuthResponse&) { return MessageType::auth_response; },
                        [](const Ping&) { return MessageType::ping; },
                        [](const PingAck&) { return MessageType::ping_ack; },
                        [](const RecvAck&) { return MessageType::recv_ack; },
                        [](const Barrier&) { return MessageType::barrier; },
                        [](const BarrierAck&) { return MessageType::barrier_ack; },
                        [](const TwoPcPrepare&) { return MessageType::twopc_prepare; },
                        [](const TwoPcReply&) { return MessageType::twopc_reply; },
                        [](const TwoPcCommit&) { return MessageType::twopc_commit; },
                        [](const TwoPcAbort&) { return MessageType::twopc_abort; },
                        [](const BitmapTransfer&) { return MessageType::bitmap; },
                        [](const ResyncRequest&) { return MessageType::resync_request; },
                        [](const ResyncAck&) { return MessageType::resync_ack; },
                        [](const PeerAck&) { return MessageType::peer_ack; },
                        [](const SyncControl&) { return MessageType::sync_control; },
                        [](const VerifyRequest&) { return MessageType::verify_request; },
                        [](const VerifyReply&) { return MessageType::verify_reply; },
                        [](const ChecksumResyncRequest&) {
                          return MessageType::checksum_resync_request;
                        },
                        [](const ResyncInSync&) { return MessageType::resync_in_sync; },
                        [](const PeersInSync&) { return MessageType::peers_in_sync; },
                        [](const ReadRequest&) { return MessageType::read_request; },
                        [](const ReadFailed&) { return MessageType::read_failed; },
                        [](const OutOfSync&) { return MessageType::out_of_sync; },
                    },
                    message);
}

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::hello: return "Hello";
    case MessageType::state: return "State";
    case MessageType::data: return "Data";
    case MessageType::write_ack: return "WriteAck";
    case MessageType::flush_request: return "FlushRequest";
    case MessageType::flush_ack: return "FlushAck";
    case MessageType::auth_challenge: return "AuthChallenge";
    case MessageType::auth_response: return "AuthResponse";
    case MessageType::ping: return "Ping";
    case MessageType::ping_ack: return "PingAck";
    case MessageType::recv_ack: return "RecvAck";
    case MessageType::barrier: return "Barrier";
    case MessageType::barrier_ack: return "BarrierAck";
    case MessageType::twopc_prepare: return "TwoPcPrepare";
    case MessageType::twopc_reply: return "TwoPcReply";
    case MessageType::twopc_commit: return "TwoPcCommit";
    case MessageType::twopc_abort: return "TwoPcAbort";
    case MessageType::bitmap: return "Bitmap";
    case MessageType::resync_request: return "ResyncRequest";
    case MessageType::resync_ack: return "ResyncAck";
    case MessageType::peer_ack: return "PeerAck";
    case MessageType::sync_control: return "SyncControl";
    case MessageType::verify_request: return "VerifyRequest";
    case MessageType::verify_reply: return "VerifyReply";
    case MessageType::checksum_resync_request: return "ChecksumResyncRequest";
    case MessageType::resync_in_sync: return "ResyncInSync";
    case MessageType::peers_in_sync: return "PeersInSync";
    case MessageType::read_request: return "ReadRequest";
    case MessageType::read_failed: return "ReadFailed";
    case MessageType::out_of_sync: return "OutOfSync";
  }
  return "Unknown";
}

std::size_t encoded_prefix_size_bytes(const Message& message) {
  return header_size_bytes + fields_size_bytes(message);
}

std::size_t encode_prefix(const Message& message, std::span<const std::uint8_t> payload,
                          std::span<std::uint8_t> out) {
  const std::size_t fields_size = fields_size_bytes(message);
  const std::size_t body_size = fields_size + payload.size();
  DITTO_ASSERT(body_size <= body_size_max_bytes);
  DITTO_ASSERT(payload.empty() || std::holds_alternative<Data>(message));
  DITTO_ASSERT(out.size() >= header_size_bytes + fields_size);

  ByteWriter writer(out);
  writer.u32(frame_magic);
  writer.u16(static_cast<std::uint16_t>(type_of(message)));
  writer.u16(0);
  writer.u32(static_cast<std::uint32_t>(body_size));
  writer.u32(0);  // CRC placeholder
  write_fields(message, writer);
  DITTO_ASSERT_EQ(writer.position(), header_size_bytes + fields_size);

  std::uint32_t crc = crc32c_extend(0, out.subspan(0, 12));
  crc = crc32c_extend(crc, out.subspan(header_size_bytes, fields_size));
  crc = crc32c_extend(crc, payload);
  ByteWriter crc_writer(out.subspan(12, 4));
  crc_writer.u32(crc);
  return writer.position();
}

std::vector<std::uint8_t> encode(const Message& message, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> frame(encoded_prefix_size_bytes(message) + payload.size());
  const std::size_t prefix = encode_prefix(message, payload, frame);
  std::copy(payload.begin(), payload.end(), frame.begin() + static_cast<std::ptrdiff_t>(prefix));
  return frame;
}

DecodeResult decode(std::span<const std::uint8_t> buffer) {
  if (buffer.size() < header_size_bytes) return NeedMore{header_size_bytes};
  ByteReader header(buffer.subspan(0, header_size_bytes));
  std::uint32_t magic = 0;
  std::uint16_t type = 0;
  std::uint16_t flags = 0;
  std::uint32_t body_size = 0;
  std::uint32_t crc_expected = 0;
  const bool complete = header.u32(magic) && header.u16(type) && header.u16(flags) &&
                        header.u32(body_size) && header.u32(crc_expected);
  DITTO_ASSERT(complete);  // 16 bytes were checked above
  if (magic != frame_magic) {
    return WireError{WireErrorCode::bad_magic, "frame does not start with the ditto magic"};
  }
  if (body_size > body_size_max_bytes) {
    return WireError{WireErrorCode::oversized, "frame body of " + std::to_string(body_size) +
                                                   " bytes exceeds the maximum of " +
                                                   std::to_string(body_size_max_bytes)};
  }
  const std::size_t frame_size = header_size_bytes + body_size;
  if (buffer.size() < frame_size) return NeedMore{frame_size};

  const auto body = buffer.subspan(header_size_bytes, body_size);
  std::uint32_t crc = crc32c_extend(0, buffer.subspan(0, 12));
  crc = crc32c_extend(crc, body);
  if (crc != crc_expected) return WireError{WireErrorCode::bad_crc, "frame CRC32C mismatch"};
  if (flags != 0) return WireError{WireErrorCode::malformed_body, "frame flags must be zero"};
  if (!known_type(type)) {
    return WireError{WireErrorCode::unknown_type,
                     "unknown message type " + std::to_string(type)};
  }
  const auto message_type = static_cast<MessageType>(type);
  ByteReader reader(body);
  auto parsed = parse_body(message_type, reader);
  if (auto* error = std::get_if<WireError>(&parsed)) return std::move(*error);
  if (message_type != MessageType::data && reader.remaining() != 0) {
    return malformed(message_type, "trailing bytes after the fields");
  }
  return Frame{std::get<Message>(std::move(parsed)), reader.rest(), frame_size};
}

}  // namespace ditto::wire
