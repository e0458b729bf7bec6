#include "core/wire.h"

#include <gtest/gtest.h>

#include "core/crc32c.h"

namespace ditto::wire {
namespace {

std::span<const std::uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

TEST(Crc32c, MatchesTheStandardCheckValue) {
  // The CRC-32C check value for "123456789" (RFC 3720 appendix B.4 test vectors).
  EXPECT_EQ(crc32c(as_bytes("123456789")), 0xE3069283u);
}

TEST(Crc32c, ExtendingInPiecesEqualsOneShot) {
  const std::string text = "the quick brown fox jumps over the lazy dog";
  const auto bytes = as_bytes(text);
  EXPECT_EQ(crc32c_extend(crc32c_extend(0, bytes.subspan(0, 13)), bytes.subspan(13)),
            crc32c(bytes));
}

template <typename T>
T round_trip(const Message& message, std::span<const std::uint8_t> payload = {}) {
  const auto frame = encode(message, payload);
  const auto result = decode(frame);
  const auto* decoded = std::get_if<Frame>(&result);
  EXPECT_NE(decoded, nullptr);
  if (decoded == nullptr) return T{};
  EXPECT_EQ(decoded->frame_size_bytes, frame.size());
  EXPECT_TRUE(
      std::equal(payload.begin(), payload.end(), decoded->payload.begin(), decoded->payload.end()));
  return std::get<T>(decoded->message);
}

TEST(Wire, EveryMessageSurvivesARoundTrip) {
  Hello hello{1, 1, NodeId{3}, NodeId{7}, 0xF00D, "r0", {}};
  EXPECT_EQ(round_trip<Hello>(hello), hello);
  StateReport state{Role::primary, DiskState::up_to_date, {}, 3, 5, 7};
  state.uuids.current = 42;
  state.uuids.bitmap[3] = 44;
  state.uuids.history[31] = 46;
  state.dagtag_node = 2;
  state.dagtag = 0x123456789ull;
  state.usable_size_sectors = 0x1'0000'0008ull;
  state.current_size_sectors = 0x1'0000'0000ull;
  EXPECT_EQ(round_trip<StateReport>(state), state);
  const std::vector<std::uint8_t> payload(4096, 0xAB);
  Data data{9, Sector{128}, 4096, data_flag_fua};
  EXPECT_EQ(round_trip<Data>(data, payload), data);
  EXPECT_EQ(round_trip<WriteAck>(WriteAck{9, false}), (WriteAck{9, false}));
  EXPECT_EQ(round_trip<FlushRequest>(FlushRequest{5}), FlushRequest{5});
  EXPECT_EQ(round_trip<FlushAck>(FlushAck{5, true}), (FlushAck{5, true}));
}

TEST(Wire, WritePathAndTwoPhaseCommitMessagesSurviveARoundTrip) {
  EXPECT_EQ(round_trip<RecvAck>(RecvAck{41}), RecvAck{41});
  EXPECT_EQ(round_trip<Barrier>(Barrier{7}), Barrier{7});
  EXPECT_EQ(round_trip<BarrierAck>(BarrierAck{7, 2048}), (BarrierAck{7, 2048}));
  EXPECT_EQ(round_trip<PeerAck>(PeerAck{9, 0b1010}), (PeerAck{9, 0b1010}));
  const TwoPcPrepare prepare{NodeId{3}, 0xfeedface12345678ull, TwoPcChange::resize, 1 << 20, 1,
                             NodeId{2}};
  EXPECT_EQ(round_trip<TwoPcPrepare>(prepare), prepare);
  const TwoPcReply reply{NodeId{3}, 99, TwoPcVote::no, -1, 4096};
  EXPECT_EQ(round_trip<TwoPcReply>(reply), reply);
  EXPECT_EQ(round_trip<TwoPcCommit>(TwoPcCommit{NodeId{31}, 5, 0}), (TwoPcCommit{NodeId{31}, 5, 0}));
  EXPECT_EQ(round_trip<TwoPcAbort>(TwoPcAbort{NodeId{0}, 6}), (TwoPcAbort{NodeId{0}, 6}));
  const Data acked{1, Sector{8}, 512, data_flag_send_write_ack | data_flag_send_receive_ack};
  const std::vector<std::uint8_t> payload(512, 1);
  EXPECT_EQ(round_trip<Data>(acked, payload), acked);
}

// Rewrites body byte `offset` of `message`'s frame to `value` and fixes the CRC.
DecodeResult decode_with_body_byte(const Message& message, std::size_t offset, std::uint8_t value) {
  auto frame = encode(message);
  frame[header_size_bytes + offset] = value;
  std::uint32_t crc = crc32c_extend(0, std::span(frame).subspan(0, 12));
  crc = crc32c_extend(crc, std::span(frame).subspan(header_size_bytes));
  for (int i = 0; i < 4; ++i) frame[12 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  return decode(frame);
}

TEST(Wire, ALostPeerPrepareAndItsProbeSurviveARoundTrip) {
  for (const TwoPcChange change : {TwoPcChange::lost_peer, TwoPcChange::probe}) {
    const TwoPcPrepare prepare{NodeId{3}, 0x1234'5678'9abc'def0, change, 0, 0, NodeId{}};
    EXPECT_EQ(round_trip<TwoPcPrepare>(prepare), prepare);
  }
}

TEST(Wire, AHelloCarriesTheSendersConnectionSettings) {
  Hello hello{1, 1, NodeId{3}, NodeId{7}, 0, "r0", {}};
  hello.settings.protocol = Protocol::a;
  hello.settings.after_sb_0pri = AfterSplitBrain0::discard_remote;
  hello.settings.after_sb_1pri = AfterSplitBrain1::call_pri_lost_after_sb;
  hello.settings.after_sb_2pri = AfterSplitBrain2::violently_as0p;
  hello.settings.allow_two_primaries = true;
  hello.settings.discard_my_data = true;
  EXPECT_EQ(round_trip<Hello>(hello), hello);
}

TEST(Wire, HelloSettingsOutsideTheirRangesAreMalformed) {
  const Hello hello{1, 1, NodeId{3}, NodeId{7}, 0, "r0", {}};
  // Body: versions (4), sender, receiver, features (8), name length, name (2), then protocol,
  // after-sb-0pri, after-sb-1pri, after-sb-2pri and the flags.
  const std::size_t settings = 2 + 2 + 1 + 1 + 8 + 1 + 2;
  const std::pair<std::size_t, std::uint8_t> cases[] = {
      {settings, 0}, {settings, 4}, {settings + 1, 7}, {settings + 2, 5}, {settings + 3, 3},
      {settings + 4, 4}};
  const char* reasons[] = {"protocol", "protocol", "after-sb-0pri", "after-sb-1pri",
                           "after-sb-2pri", "flags"};
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE(i);
    const auto result = decode_with_body_byte(hello, cases[i].first, cases[i].second);
    ASSERT_TRUE(std::holds_alternative<WireError>(result));
    EXPECT_EQ(std::get<WireError>(result).code, WireErrorCode::malformed_body);
    EXPECT_NE(std::get<WireError>(result).message.find(reasons[i]), std::string::npos)
        << std::get<WireError>(result).message;
  }
}

TEST(Wire, TwoPhaseCommitFieldsOutsideTheirRangesAreMalformed) {
  const auto bad_initiator = decode_with_body_byte(TwoPcCommit{NodeId{1}, 2, 0}, 0, 32);
  ASSERT_TRUE(std::holds_alternative<WireError>(bad_initiator));
  EXPECT_NE(std::get<WireError>(bad_initiator).message.find("above 31"), std::string::npos);
  const auto bad_vote = decode_with_body_byte(TwoPcReply{NodeId{1}, 2, TwoPcVote::yes, 1, 0}, 9, 3);
  ASSERT_TRUE(std::holds_alternative<WireError>(bad_vote));
  EXPECT_NE(std::get<WireError>(bad_vote).message.find("unknown vote"), std::string::npos);
  const auto bad_change =
      decode_with_body_byte(TwoPcPrepare{NodeId{1}, 2, TwoPcChange::promote, 0, 0, NodeId{}}, 9, 0);
  ASSERT_TRUE(std::holds_alternative<WireError>(bad_change));
  EXPECT_NE(std::get<WireError>(bad_change).message.find("unknown state change"),
            std::string::npos);
}

TEST(Wire, AResizePrepareWithUnknownFlagsOrAResyncSourceAbove31IsMalformed) {
  // Body: initiator (1), transaction id (8), change (1), size (8), flags (1), source (1).
  const TwoPcPrepare prepare{NodeId{1}, 2, TwoPcChange::resize, 4096, 0, NodeId{0}};
  const auto bad_flags = decode_with_body_byte(prepare, 18, 0x80);
  ASSERT_TRUE(std::holds_alternative<WireError>(bad_flags));
  EXPECT_NE(std::get<WireError>(bad_flags).message.find("unknown flags"), std::string::npos);
  const auto bad_source = decode_with_body_byte(prepare, 19, 32);
  ASSERT_TRUE(std::holds_alternative<WireError>(bad_source));
  EXPECT_NE(std::get<WireError>(bad_source).message.find("resync source node id above 31"),
            std::string::npos);
  const auto unknown_change = decode_with_body_byte(prepare, 9, 5);  // probe (4) is the last
  ASSERT_TRUE(std::holds_alternative<WireError>(unknown_change));
}

TEST(Wire, TruncatedFrameAsksForMoreBytes) {
  const auto frame = encode(Data{1, Sector{0}, 512, 0}, std::vector<std::uint8_t>(512, 1));
  for (std::size_t size : {std::size_t{0}, std::size_t{7}, std::size_t{16}, frame.size() - 1}) {
    const auto result = decode(std::span(frame).subspan(0, size));
    const auto* need = std::get_if<NeedMore>(&result);
    ASSERT_NE(need, nullptr) << "prefix of " << size << " bytes";
    EXPECT_GT(need->frame_size_bytes, size);
  }
}

TEST(Wire, CorruptFrameIsRejectedByItsCrc) {
  auto frame = encode(WriteAck{77, true});
  frame.back() ^= 0x01;
  const auto result = decode(frame);
  const auto* error = std::get_if<WireError>(&result);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, WireErrorCode::bad_crc);
}

TEST(Wire, OversizedFrameIsRejectedBeforeItsBodyArrives) {
  auto frame = encode(WriteAck{77, true});
  frame[8] = 0x7F;  // body length high byte: ~2 GiB
  const auto result = decode(std::span(frame).subspan(0, header_size_bytes));
  const auto* error = std::get_if<WireError>(&result);
  ASSERT_NE(error, nullptr);
  EXPECT_EQ(error->code, WireErrorCode::oversized);
}

TEST(Wire, WrongMagicIsRejected) {
  auto frame = encode(FlushRequest{1});
  frame[0] = 'X';
  const auto result = decode(frame);
  ASSERT_TRUE(std::holds_alternative<WireError>(result));
  EXPECT_EQ(std::get<WireError>(result).code, WireErrorCode::bad_magic);
}

TEST(Wire, DataWithALengthThatIsNotWholeSectorsIsMalformed) {
  // Encode a valid Data, then re-encode the same bytes with a bad length and a fixed CRC.
  Data data{1, Sector{0}, 4096, 0};
  auto frame = encode(data);
  frame[header_size_bytes + 16 + 3] = 0x01;  // length_bytes = 4097
  std::uint32_t crc = crc32c_extend(0, std::span(frame).subspan(0, 12));
  crc = crc32c_extend(crc, std::span(frame).subspan(header_size_bytes));
  frame[12] = static_cast<std::uint8_t>(crc >> 24);
  frame[13] = static_cast<std::uint8_t>(crc >> 16);
  frame[14] = static_cast<std::uint8_t>(crc >> 8);
  frame[15] = static_cast<std::uint8_t>(crc);
  const auto result = decode(frame);
  ASSERT_TRUE(std::holds_alternative<WireError>(result));
  EXPECT_EQ(std::get<WireError>(result).code, WireErrorCode::malformed_body);
}

TEST(Wire, ChecksumResyncMessagesSurviveARoundTrip) {
  const ChecksumResyncRequest request{Sector{4096}, 4096, 0xdeadbeefcafef00dull};
  EXPECT_EQ(round_trip<ChecksumResyncRequest>(request), request);
  const ResyncInSync in_sync{Sector{8}, 2048, (std::uint64_t{2} << 56) | 77};
  EXPECT_EQ(round_trip<ResyncInSync>(in_sync), in_sync);
  const PeersInSync peers_in_sync{Sector{16}, 4096, 0b1010};
  EXPECT_EQ(round_trip<PeersInSync>(peers_in_sync), peers_in_sync);
}

// Writes `value` big-endian at `offset` of `frame` and recomputes the frame's CRC.
void patch_u32(std::vector<std::uint8_t>& frame, std::size_t offset, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    frame[offset + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  }
  std::uint32_t crc = crc32c_extend(0, std::span(frame).subspan(0, 12));
  crc = crc32c_extend(crc, std::span(frame).subspan(header_size_bytes));
  for (std::size_t i = 0; i < 4; ++i) {
    frame[12 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  }
}

// A block message whose length (at `length_offset` in the body) is zero, not a multiple of 512
// or above the payload limit, or whose body is one byte short of its fields, is malformed.
void expect_bad_lengths_and_truncation_malformed(const Message& message,
                                                 std::size_t length_offset) {
  for (const std::uint32_t length : {0u, 4097u, payload_size_max_bytes + 512}) {
    auto frame = encode(message);
    patch_u32(frame, header_size_bytes + length_offset, length);
    const auto result = decode(frame);
    ASSERT_TRUE(std::holds_alternative<WireError>(result)) << to_string(type_of(message));
    EXPECT_NE(std::get<WireError>(result).message.find("length is zero"), std::string::npos)
        << std::get<WireError>(result).message;
  }
  auto frame = encode(message);
  frame.pop_back();
  patch_u32(frame, 8, static_cast<std::uint32_t>(frame.size() - header_size_bytes));
  const auto result = decode(frame);
  ASSERT_TRUE(std::holds_alternative<WireError>(result)) << to_string(type_of(message));
  EXPECT_NE(std::get<WireError>(result).message.find("truncated"), std::string::npos);
}

TEST(Wire, ChecksumResyncMessagesWithABadLengthOrTruncatedAreMalformed) {
  const std::vector<Message> messages = {
      ChecksumResyncRequest{Sector{8}, 4096, 1}, ResyncInSync{Sector{8}, 4096, 1},
      ResyncRequest{Sector{8}, 4096}, VerifyRequest{Sector{8}, 4096, 1},
      PeersInSync{Sector{8}, 4096, 1}};
  // The length follows the u64 sector.
  for (const Message& message : messages) expect_bad_lengths_and_truncation_malformed(message, 8);
}

TEST(Wire, ReadRequestReadFailedAndReadRepliesSurviveARoundTrip) {
  const ReadRequest request{0x1234567890ull, Sector{4096}, 8192};
  EXPECT_EQ(round_trip<ReadRequest>(request), request);
  const ReadFailed failed{0x1234567890ull, Sector{4096}, 8192};
  EXPECT_EQ(round_trip<ReadFailed>(failed), failed);
  const std::vector<std::uint8_t> payload(8192, 0x5A);
  const Data reply{0x1234567890ull, Sector{4096}, 8192, data_flag_read_reply};
  EXPECT_EQ(round_trip<Data>(reply, payload), reply);
}

TEST(Wire, ReadMessagesWithABadLengthOrTruncatedAreMalformed) {
  // The length follows the u64 id and the u64 sector.
  for (const Message& message :
       {Message{ReadRequest{1, Sector{8}, 4096}}, Message{ReadFailed{1, Sector{8}, 4096}}}) {
    expect_bad_lengths_and_truncation_malformed(message, 16);
  }
}

TEST(Wire, AnOutOfSyncMessageSurvivesARoundTripAndCoversAWholeClientWrite) {
  const OutOfSync small{Sector{4096}, 8192};
  EXPECT_EQ(round_trip<OutOfSync>(small), small);
  // An Ahead node reports each client write as one range, up to the largest write.
  const OutOfSync largest{Sector{8}, payload_size_max_bytes};
  EXPECT_EQ(round_trip<OutOfSync>(largest), largest);
  EXPECT_STREQ(to_string(MessageType::out_of_sync), "OutOfSync");
  EXPECT_EQ(static_cast<int>(MessageType::out_of_sync), 30);
}

TEST(Wire, AnOutOfSyncMessageWithABadLengthOrTruncatedIsMalformed) {
  expect_bad_lengths_and_truncation_malformed(OutOfSync{Sector{8}, 4096}, 8);
}

TEST(Wire, TheAheadAndResyncAfterAheadCommandsSurviveARoundTripAndTheNextValueIsMalformed) {
  const SyncControl ahead{SyncCommand::ahead, Sector{0}};
  EXPECT_EQ(round_trip<SyncControl>(ahead), ahead);
  const SyncControl control{SyncCommand::resync_after_ahead, Sector{0}};
  EXPECT_EQ(round_trip<SyncControl>(control), control);
  auto frame = encode(control);
  // The command byte, then the sector's first (zero) bytes; the CRC is recomputed.
  const std::uint32_t next = static_cast<std::uint32_t>(SyncCommand::resync_after_ahead) + 1;
  patch_u32(frame, header_size_bytes, next << 24);
  const auto result = decode(frame);
  ASSERT_TRUE(std::holds_alternative<WireError>(result));
  EXPECT_NE(std::get<WireError>(result).message.find("unknown command"), std::string::npos)
      << std::get<WireError>(result).message;
}

TEST(Wire, ResyncMessagesSpanRunsOfUpTo1MiBAndAnythingLargerIsMalformed) {
  const ResyncRequest largest{Sector{2048}, resync_size_max_bytes};
  EXPECT_EQ(round_trip<ResyncRequest>(largest), largest);
  const std::vector<Message> messages = {
      ResyncRequest{Sector{8}, 4096}, ResyncAck{Sector{8}, 4096, true},
      PeersInSync{Sector{8}, 4096, 1}, ChecksumResyncRequest{Sector{8}, 4096, 1},
      ResyncInSync{Sector{8}, 4096, 1}};
  for (const Message& message : messages) {
    auto frame = encode(message);
    patch_u32(frame, header_size_bytes + 8, resync_size_max_bytes + 4096);
    const auto result = decode(frame);
    ASSERT_TRUE(std::holds_alternative<WireError>(result)) << to_string(type_of(message));
    EXPECT_NE(std::get<WireError>(result).message.find("resync range above 1 MiB"),
              std::string::npos)
        << std::get<WireError>(result).message;
  }
  // A resync reply carries at most 1 MiB too; an application write may carry more.
  const std::vector<std::uint8_t> payload(resync_size_max_bytes + 4096, 7);
  const Data resync{1, Sector{0}, resync_size_max_bytes + 4096, data_flag_resync};
  EXPECT_TRUE(std::holds_alternative<WireError>(decode(encode(resync, payload))));
  const Data write{1, Sector{0}, resync_size_max_bytes + 4096, 0};
  EXPECT_TRUE(std::holds_alternative<Frame>(decode(encode(write, payload))));
}

TEST(Wire, AStateReportNamingANodeIdBeyondTheLastAsItsDagtagNodeIsMalformed) {
  StateReport state;
  state.dagtag_node = 40;  // neither a node id (0..31) nor dagtag_node_none
  auto frame = encode(state);
  // Fields: role, disk, current, uuid_flags, weak_nodes, dirty_bits, then the dagtag node.
  EXPECT_EQ(frame[header_size_bytes + 1 + 1 + 8 + 8 + 4 + 8], 40);
  const auto result = decode(frame);
  ASSERT_TRUE(std::holds_alternative<WireError>(result));
  EXPECT_EQ(std::get<WireError>(result).code, WireErrorCode::malformed_body);
  EXPECT_NE(std::get<WireError>(result).message.find("dagtag"), std::string::npos);
}

TEST(Wire, AStateReportNamingAVolumeSizeBeyondTheLimitIsMalformed) {
  for (const bool usable : {true, false}) {
    StateReport state;
    (usable ? state.usable_size_sectors : state.current_size_sectors) =
        volume_size_sectors_max + 1;
    const auto result = decode(encode(state));
    ASSERT_TRUE(std::holds_alternative<WireError>(result));
    EXPECT_EQ(std::get<WireError>(result).code, WireErrorCode::malformed_body);
    EXPECT_NE(std::get<WireError>(result).message.find("volume size"), std::string::npos);
    (usable ? state.usable_size_sectors : state.current_size_sectors) = volume_size_sectors_max;
    EXPECT_TRUE(std::holds_alternative<Frame>(decode(encode(state))));
  }
}

TEST(Wire, AStateReportWhoseBodyEndsInsideItsSizesIsMalformedNotMisread) {
  StateReport state;
  state.usable_size_sectors = 2048;
  auto frame = encode(state);
  // Fields before the sizes: role, disk, current, uuid_flags, weak_nodes, dirty_bits, dagtag
  // node, dagtag; the body ends halfway through the usable size.
  const std::uint32_t body = 1 + 1 + 8 + 8 + 4 + 8 + 1 + 8 + 4;
  frame.resize(header_size_bytes + body);
  for (int i = 0; i < 4; ++i) frame[8 + i] = static_cast<std::uint8_t>(body >> (24 - 8 * i));
  std::uint32_t crc = crc32c_extend(0, std::span(frame).subspan(0, 12));
  crc = crc32c_extend(crc, std::span(frame).subspan(header_size_bytes));
  for (int i = 0; i < 4; ++i) frame[12 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  const auto result = decode(frame);
  ASSERT_TRUE(std::holds_alternative<WireError>(result));
  EXPECT_EQ(std::get<WireError>(result).code, WireErrorCode::malformed_body);
  EXPECT_NE(std::get<WireError>(result).message.find("truncated fields"), std::string::npos);
}

TEST(Wire, TwoFramesInOneBufferDecodeOneAtATime) {
  auto buffer = encode(FlushRequest{1});
  const auto second = encode(FlushAck{1, true});
  buffer.insert(buffer.end(), second.begin(), second.end());
  const auto first_result = decode(buffer);
  const auto& first = std::get<Frame>(first_result);
  EXPECT_EQ(std::get<FlushRequest>(first.message).flush_id, 1u);
  const auto second_result = decode(std::span(buffer).subspan(first.frame_size_bytes));
  EXPECT_TRUE(std::get<FlushAck>(std::get<Frame>(second_result).message).ok);
}

}  // namespace
}  // namespace ditto::wire
