// The NBD codec: handshake, option parsing, request parsing and checking, reply encoding.
// Every malformed input the codec rejects has a test here. § refer to nbd-protocol.md.
#include "datapath/nbd_protocol.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/bytes.h"

namespace ditto::datapath::nbd {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes option_bytes(std::uint32_t option, const Bytes& data, std::uint64_t magic = options_magic) {
  Bytes out(16 + data.size());
  ByteWriter writer(out);
  writer.u64(magic);
  writer.u32(option);
  writer.u32(static_cast<std::uint32_t>(data.size()));
  writer.bytes(data);
  return out;
}

// INFO/GO data: u32 namelen, name, u16 count, infos. `count_override` lies about the count.
Bytes info_data(const std::string& name, const std::vector<std::uint16_t>& infos,
                int count_override = -1) {
  Bytes out(4 + name.size() + 2 + 2 * infos.size());
  ByteWriter writer(out);
  writer.u32(static_cast<std::uint32_t>(name.size()));
  writer.string(name);
  writer.u16(static_cast<std::uint16_t>(count_override >= 0 ? count_override : infos.size()));
  for (std::uint16_t info : infos) writer.u16(info);
  return out;
}

Bytes request_bytes(std::uint16_t flags, std::uint16_t type, std::uint64_t cookie,
                    std::uint64_t offset, std::uint32_t length,
                    std::uint32_t magic = request_magic) {
  Bytes out(28);
  ByteWriter writer(out);
  writer.u32(magic);
  writer.u16(flags);
  writer.u16(type);
  writer.u64(cookie);
  writer.u64(offset);
  writer.u32(length);
  return out;
}

constexpr std::uint32_t cap = 1024 * 1024;
constexpr std::uint64_t export_size = 1024 * 1024;

TransmissionState writable_state(bool structured = false) {
  NbdExportInfo info;
  info.size_bytes = export_size;
  info.supports_trim = true;
  info.supports_write_zeroes = true;
  TransmissionState state;
  state.export_size_bytes = export_size;
  state.transmission_flags = transmission_flags(info, structured);
  state.structured_replies = structured;
  return state;
}

CheckedRequest check(std::uint16_t flags, std::uint16_t type, std::uint64_t offset,
                     std::uint32_t length, const TransmissionState& state) {
  const Bytes bytes = request_bytes(flags, type, 7, offset, length);
  const auto parsed = parse_request_header(bytes, 2 * payload_size_max_bytes);
  EXPECT_EQ(parsed.status, ParseStatus::done);
  return check_request(parsed.value, state);
}

TEST(NbdHandshake, GreetingIsEighteenBytesOfMagicsAndFixedNewstyleWithNoZeroes) {
  const auto greeting = encode_greeting();
  const Bytes expected = {'N', 'B', 'D', 'M', 'A', 'G', 'I', 'C',  'I',
                          'H', 'A', 'V', 'E', 'O', 'P', 'T', 0x00, 0x03};
  EXPECT_EQ(Bytes(greeting.begin(), greeting.end()), expected);
}

TEST(NbdHandshake, ClientFlagsNeedFourBytesAndAcceptOfferedBits) {
  const Bytes partial = {0, 0, 0};
  EXPECT_EQ(parse_client_flags(partial).status, ParseStatus::need_more);
  EXPECT_EQ(parse_client_flags(partial).need_bytes, 4u);
  const Bytes both = {0, 0, 0, 3};
  const auto parsed = parse_client_flags(both);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_EQ(parsed.value, 3u);
  EXPECT_EQ(parsed.consumed_bytes, 4u);
}

TEST(NbdHandshake, ClientFlagWithABitTheServerDidNotOfferIsFatal) {
  const Bytes unknown_bit = {0, 0, 0, 4};
  EXPECT_EQ(parse_client_flags(unknown_bit).status, ParseStatus::fatal);
  const Bytes high_bit = {0x80, 0, 0, 1};
  EXPECT_EQ(parse_client_flags(high_bit).status, ParseStatus::fatal);
}

TEST(NbdOptions, PartialHeaderAndPartialDataAskForExactlyTheMissingBytes) {
  const Bytes full = option_bytes(opt_go, info_data("disk", {info_block_size}));
  const auto header_only = parse_option(std::span(full).first(10), cap);
  EXPECT_EQ(header_only.status, ParseStatus::need_more);
  EXPECT_EQ(header_only.need_bytes, 16u);
  const auto partial_data = parse_option(std::span(full).first(20), cap);
  EXPECT_EQ(partial_data.status, ParseStatus::need_more);
  EXPECT_EQ(partial_data.need_bytes, full.size());
}

TEST(NbdOptions, GoCarriesTheExportNameAndInformationRequests) {
  Bytes input = option_bytes(opt_go, info_data("disk", {info_block_size, info_name}));
  input.push_back(0xEE);  // the start of whatever comes next is left alone
  const auto parsed = parse_option(input, cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_EQ(parsed.consumed_bytes, input.size() - 1);
  EXPECT_EQ(parsed.value.kind, OptionKind::go);
  EXPECT_EQ(parsed.value.export_name, "disk");
  EXPECT_EQ(parsed.value.info_requests, (std::vector<std::uint16_t>{info_block_size, info_name}));
  EXPECT_TRUE(parsed.value.invalid_reason.empty());
}

TEST(NbdOptions, BadOptionMagicIsFatal) {
  const Bytes input = option_bytes(opt_go, {}, 0x1122334455667788);
  EXPECT_EQ(parse_option(input, cap).status, ParseStatus::fatal);
}

TEST(NbdOptions, LengthAboveTheCapIsFatalFromTheHeaderAlone) {
  Bytes header = option_bytes(0x1234, {});
  ByteWriter writer{std::span(header).subspan(12)};
  writer.u32(0xFFFFFFF0);
  const auto parsed = parse_option(header, cap);
  EXPECT_EQ(parsed.status, ParseStatus::fatal);
  EXPECT_NE(parsed.error.find("above the limit"), std::string::npos);
}

TEST(NbdOptions, UnknownOptionIsSkippedByItsLength) {
  const Bytes input = option_bytes(0x1234, Bytes(100 * 1024, 0x5A));
  const auto parsed = parse_option(input, cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_EQ(parsed.value.kind, OptionKind::unknown);
  EXPECT_EQ(parsed.value.option, 0x1234u);
  EXPECT_EQ(parsed.consumed_bytes, input.size());
}

TEST(NbdOptions, ExportNameTakesTheWholeDataAsTheName) {
  const auto parsed = parse_option(option_bytes(opt_export_name, {'r', '0'}), cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_EQ(parsed.value.kind, OptionKind::export_name);
  EXPECT_EQ(parsed.value.export_name, "r0");
}

TEST(NbdOptions, InfoShorterThanSixBytesIsInvalid) {
  const auto parsed = parse_option(option_bytes(opt_info, {0, 0, 0}), cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_FALSE(parsed.value.invalid_reason.empty());
}

TEST(NbdOptions, GoWithNameLengthPastTheDataIsInvalid) {
  Bytes data = info_data("disk", {});
  data[3] = 200;  // namelen > length - 6
  const auto parsed = parse_option(option_bytes(opt_go, data), cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_FALSE(parsed.value.invalid_reason.empty());
}

TEST(NbdOptions, GoWithInfoCountNotMatchingTheLengthIsInvalid) {
  const auto more = parse_option(option_bytes(opt_go, info_data("d", {3}, 2)), cap);
  ASSERT_EQ(more.status, ParseStatus::done);
  EXPECT_FALSE(more.value.invalid_reason.empty());
  const auto fewer = parse_option(option_bytes(opt_go, info_data("d", {3, 1}, 1)), cap);
  ASSERT_EQ(fewer.status, ParseStatus::done);
  EXPECT_FALSE(fewer.value.invalid_reason.empty());
}

TEST(NbdOptions, OptionsThatTakeNoDataAreInvalidWithData) {
  for (std::uint32_t option : {opt_list, opt_structured_reply, opt_starttls}) {
    const auto parsed = parse_option(option_bytes(option, {1}), cap);
    ASSERT_EQ(parsed.status, ParseStatus::done);
    EXPECT_FALSE(parsed.value.invalid_reason.empty()) << option_name(option);
    const auto empty = parse_option(option_bytes(option, {}), cap);
    EXPECT_TRUE(empty.value.invalid_reason.empty()) << option_name(option);
  }
}

TEST(NbdOptions, AbortIgnoresItsData) {
  const auto parsed = parse_option(option_bytes(opt_abort, {1, 2}), cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_EQ(parsed.value.kind, OptionKind::abort);
  EXPECT_TRUE(parsed.value.invalid_reason.empty());
}

TEST(NbdOptions, MetaContextQueriesParseAndAnOverrunningQueryIsInvalid) {
  Bytes data(4 + 4 + 4 + 15);
  ByteWriter writer(data);
  writer.u32(0);  // empty export name
  writer.u32(1);
  writer.u32(15);
  writer.string("base:allocation");
  const auto parsed = parse_option(option_bytes(opt_set_meta_context, data), cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_TRUE(parsed.value.invalid_reason.empty());
  EXPECT_EQ(parsed.value.meta_queries, std::vector<std::string>{"base:allocation"});
  data[11] = 200;  // query length past the option data
  const auto overrun = parse_option(option_bytes(opt_list_meta_context, data), cap);
  ASSERT_EQ(overrun.status, ParseStatus::done);
  EXPECT_FALSE(overrun.value.invalid_reason.empty());
}

TEST(NbdOptionReplies, AckIsATwentyByteHeaderWithZeroLength) {
  const Bytes ack = encode_option_ack(opt_go);
  ASSERT_EQ(ack.size(), 20u);
  ByteReader reader(ack);
  std::uint64_t magic = 0;
  std::uint32_t option = 0, type = 0, length = 1;
  ASSERT_TRUE(reader.u64(magic) && reader.u32(option) && reader.u32(type) && reader.u32(length));
  EXPECT_EQ(magic, option_reply_magic);
  EXPECT_EQ(option, opt_go);
  EXPECT_EQ(type, rep_ack);
  EXPECT_EQ(length, 0u);
}

TEST(NbdOptionReplies, ErrorCarriesTheMessageCutAt4096Bytes) {
  const Bytes error = encode_option_error(opt_go, rep_err_policy, "a peer is Primary");
  EXPECT_EQ(error.size(), 20u + 17u);
  EXPECT_EQ(std::string(error.begin() + 20, error.end()), "a peer is Primary");
  EXPECT_EQ(error[12], 0x80);
  const Bytes long_error = encode_option_error(1, rep_err_invalid, std::string(5000, 'x'));
  EXPECT_EQ(long_error.size(), 20u + 4096u);
}

TEST(NbdOptionReplies, InfoRepliesHaveTheirSpecifiedLengths) {
  EXPECT_EQ(encode_info_export(opt_go, 1, tflag_has_flags).size(), 20u + 12u);
  EXPECT_EQ(encode_info_block_size(opt_go, 1, 4096, payload_size_max_bytes).size(), 20u + 14u);
  EXPECT_EQ(encode_info_text(opt_go, info_name, "disk").size(), 20u + 2u + 4u);
  const Bytes server = encode_reply_server(opt_list, "disk", "about");
  EXPECT_EQ(server.size(), 20u + 4u + 4u + 5u);
}

TEST(NbdOptionReplies, ExportNameReplyIs134BytesOr10WithNoZeroes) {
  EXPECT_EQ(encode_export_name_reply(4096, tflag_has_flags, false).size(), 134u);
  const Bytes short_reply = encode_export_name_reply(4096, 0x0101, true);
  EXPECT_EQ(short_reply, (Bytes{0, 0, 0, 0, 0, 0, 0x10, 0, 0x01, 0x01}));
}

TEST(NbdOptionReplies, TransmissionFlagsAlwaysHaveHasFlagsAndDfOnlyWithStructuredReplies) {
  NbdExportInfo info;
  info.read_only = true;
  info.supports_trim = true;
  const std::uint16_t simple = transmission_flags(info, false);
  EXPECT_TRUE(simple & tflag_has_flags);
  EXPECT_TRUE(simple & tflag_read_only);
  EXPECT_FALSE(simple & tflag_send_trim) << "no TRIM on a read-only export";
  EXPECT_FALSE(simple & tflag_send_df);
  EXPECT_TRUE(transmission_flags(info, true) & tflag_send_df);
}

TEST(NbdOptionReplies, FastZeroIsAdvertisedOnlyTogetherWithWriteZeroes) {
  NbdExportInfo info;
  info.supports_fast_zero = true;
  EXPECT_FALSE(transmission_flags(info, false) & tflag_send_fast_zero)
      << "§3: SEND_FAST_ZERO must be 0 when SEND_WRITE_ZEROES is 0";
  info.supports_write_zeroes = true;
  const std::uint16_t flags = transmission_flags(info, false);
  EXPECT_TRUE(flags & tflag_send_write_zeroes);
  EXPECT_TRUE(flags & tflag_send_fast_zero);
  info.read_only = true;
  EXPECT_FALSE(transmission_flags(info, false) & tflag_send_fast_zero);
}

TEST(NbdOptionReplies, CacheAndMultiConnAreAdvertisedOnlyWhenTheBackendSaysSo) {
  NbdExportInfo info;
  info.supports_cache = false;
  EXPECT_FALSE(transmission_flags(info, false) & tflag_send_cache);
  EXPECT_FALSE(transmission_flags(info, false) & tflag_can_multi_conn);
  info.supports_cache = true;
  info.multi_conn = true;
  EXPECT_TRUE(transmission_flags(info, false) & tflag_send_cache);
  EXPECT_TRUE(transmission_flags(info, false) & tflag_can_multi_conn);
}

TEST(NbdRequests, HeaderNeeds28BytesAndParsesEveryField) {
  const Bytes bytes = request_bytes(cmd_flag_fua, cmd_write, 0xdeadbeefcafef00d, 4096, 512);
  EXPECT_EQ(parse_request_header(std::span(bytes).first(27), cap).need_bytes, 28u);
  const auto parsed = parse_request_header(bytes, cap);
  ASSERT_EQ(parsed.status, ParseStatus::done);
  EXPECT_EQ(parsed.consumed_bytes, 28u);
  EXPECT_EQ(parsed.value.cookie, 0xdeadbeefcafef00d);
  EXPECT_EQ(parsed.value.offset_bytes, 4096u);
  EXPECT_EQ(parsed.value.length_bytes, 512u);
  EXPECT_EQ(request_payload_bytes(parsed.value), 512u);
  const auto read = parse_request_header(request_bytes(0, cmd_read, 1, 0, 512), cap);
  EXPECT_EQ(request_payload_bytes(read.value), 0u) << "only WRITE carries a payload";
}

TEST(NbdRequests, BadRequestMagicIsFatal) {
  const auto parsed = parse_request_header(request_bytes(0, cmd_read, 1, 0, 512, 0x12560953), cap);
  EXPECT_EQ(parsed.status, ParseStatus::fatal);
  EXPECT_NE(parsed.error.find("bad magic"), std::string::npos);
}

TEST(NbdRequests, WriteTooLargeToConsumeIsFatal) {
  const Bytes bytes = request_bytes(0, cmd_write, 1, 0, 3 * payload_size_max_bytes);
  EXPECT_EQ(parse_request_header(bytes, 2 * payload_size_max_bytes).status, ParseStatus::fatal);
}

TEST(NbdRequests, ValidReadBecomesATypedIo) {
  const CheckedRequest checked = check(cmd_flag_fua, cmd_read, 512, 4096, writable_state());
  ASSERT_EQ(checked.verdict, RequestVerdict::submit);
  EXPECT_EQ(checked.io.op, NbdOp::read);
  EXPECT_EQ(checked.io.offset_bytes, 512u);
  EXPECT_EQ(checked.io.length_bytes, 4096u);
  EXPECT_TRUE(checked.io.fua);
}

TEST(NbdRequests, WriteZeroesCarriesNoHole) {
  const CheckedRequest checked =
      check(cmd_flag_no_hole, cmd_write_zeroes, 0, 65536, writable_state());
  ASSERT_EQ(checked.verdict, RequestVerdict::submit);
  EXPECT_EQ(checked.io.op, NbdOp::write_zeroes);
  EXPECT_TRUE(checked.io.no_hole);
}

TEST(NbdRequests, FastZeroNeedsSendFastZeroAndIsCarriedToTheBackend) {
  TransmissionState state = writable_state();
  EXPECT_EQ(check(cmd_flag_fast_zero, cmd_write_zeroes, 0, 4096, state).error, error_invalid)
      << "FAST_ZERO without SEND_FAST_ZERO";
  state.transmission_flags |= tflag_send_fast_zero;
  const CheckedRequest checked =
      check(cmd_flag_fast_zero | cmd_flag_fua, cmd_write_zeroes, 0, 4096, state);
  ASSERT_EQ(checked.verdict, RequestVerdict::submit);
  EXPECT_TRUE(checked.io.fast_zero);
  EXPECT_TRUE(checked.io.fua);
  EXPECT_EQ(check(cmd_flag_fast_zero, cmd_write, 0, 4096, state).error, error_invalid)
      << "FAST_ZERO is only valid on WRITE_ZEROES";
}

TEST(NbdRequests, FuaIsAcceptedOnEveryCommandOnceSendFuaIsSet) {
  const TransmissionState state = writable_state();
  for (std::uint16_t type : {cmd_read, cmd_write, cmd_trim, cmd_cache, cmd_write_zeroes}) {
    const CheckedRequest checked = check(cmd_flag_fua, type, 0, 4096, state);
    EXPECT_EQ(checked.verdict, RequestVerdict::submit) << "type " << type << checked.reason;
    EXPECT_TRUE(checked.io.fua) << "type " << type;
  }
  EXPECT_EQ(check(cmd_flag_fua, cmd_flush, 0, 0, state).verdict, RequestVerdict::submit);
}

TEST(NbdRequests, MisalignedReadWriteAndZeroesAreEinvalButTrimAndCacheAreHints) {
  TransmissionState state = writable_state();
  state.block_size_minimum_bytes = 4096;
  EXPECT_EQ(check(0, cmd_write, 512, 4096, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_write, 0, 512, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_read, 1, 4096, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_write_zeroes, 0, 6144, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_write, 8192, 4096, state).verdict, RequestVerdict::submit);
  EXPECT_EQ(check(0, cmd_trim, 512, 512, state).verdict, RequestVerdict::submit);
  EXPECT_EQ(check(0, cmd_cache, 1, 1, state).verdict, RequestVerdict::submit);
}

TEST(NbdRequests, WriteClassCommandsAreWriteTrimAndWriteZeroes) {
  EXPECT_TRUE(is_write_class(NbdOp::write));
  EXPECT_TRUE(is_write_class(NbdOp::write_zeroes));
  EXPECT_TRUE(is_write_class(NbdOp::trim));
  EXPECT_FALSE(is_write_class(NbdOp::read));
  EXPECT_FALSE(is_write_class(NbdOp::flush));
  EXPECT_FALSE(is_write_class(NbdOp::cache));
}

TEST(NbdRequests, DiscIsADisconnectWhateverItsFields) {
  EXPECT_EQ(check(0, cmd_disc, 0, 0, writable_state()).verdict, RequestVerdict::disconnect);
}

TEST(NbdRequests, UnknownCommandTypeIsEinval) {
  const CheckedRequest checked = check(0, 99, 0, 512, writable_state());
  EXPECT_EQ(checked.verdict, RequestVerdict::reject);
  EXPECT_EQ(checked.error, error_invalid);
}

TEST(NbdRequests, UnknownOrMisplacedFlagsAreEinval) {
  const TransmissionState state = writable_state(true);
  EXPECT_EQ(check(0x8000, cmd_read, 0, 512, state).error, error_invalid);
  EXPECT_EQ(check(cmd_flag_df, cmd_write, 0, 512, state).error, error_invalid);
  EXPECT_EQ(check(cmd_flag_no_hole, cmd_write, 0, 512, state).error, error_invalid);
  EXPECT_EQ(check(cmd_flag_df, cmd_read, 0, 512, writable_state(false)).error, error_invalid)
      << "DF needs structured replies";
  EXPECT_EQ(check(cmd_flag_df, cmd_read, 0, 512, state).verdict, RequestVerdict::submit);
}

TEST(NbdRequests, FuaWithoutSendFuaIsEinval) {
  TransmissionState state = writable_state();
  state.transmission_flags &= ~tflag_send_fua;
  EXPECT_EQ(check(cmd_flag_fua, cmd_write, 0, 512, state).error, error_invalid);
}

TEST(NbdRequests, CommandsNotAdvertisedAreEinval) {
  TransmissionState state = writable_state();
  state.transmission_flags &= ~(tflag_send_trim | tflag_send_write_zeroes | tflag_send_flush);
  EXPECT_EQ(check(0, cmd_trim, 0, 512, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_write_zeroes, 0, 512, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_flush, 0, 0, state).error, error_invalid);
}

TEST(NbdRequests, FlushWithOffsetOrLengthIsEinval) {
  EXPECT_EQ(check(0, cmd_flush, 0, 0, writable_state()).verdict, RequestVerdict::submit);
  EXPECT_EQ(check(0, cmd_flush, 512, 0, writable_state()).error, error_invalid);
  EXPECT_EQ(check(0, cmd_flush, 0, 512, writable_state()).error, error_invalid);
}

TEST(NbdRequests, WriteClassCommandsOnAReadOnlyExportAreEperm) {
  TransmissionState state = writable_state();
  state.transmission_flags |= tflag_read_only;
  EXPECT_EQ(check(0, cmd_write, 0, 512, state).error, error_perm);
  EXPECT_EQ(check(0, cmd_trim, 0, 512, state).error, error_perm);
  EXPECT_EQ(check(0, cmd_write_zeroes, 0, 512, state).error, error_perm);
  EXPECT_EQ(check(0, cmd_read, 0, 512, state).verdict, RequestVerdict::submit);
}

TEST(NbdRequests, PastTheEndIsEinvalForReadsAndEnospcForWrites) {
  const TransmissionState state = writable_state();
  EXPECT_EQ(check(0, cmd_read, export_size - 256, 512, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_trim, export_size, 1, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_cache, export_size, 1, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_write, export_size - 256, 512, state).error, error_no_space);
  EXPECT_EQ(check(0, cmd_write_zeroes, export_size, 1, state).error, error_no_space);
  EXPECT_EQ(check(0, cmd_read, export_size - 512, 512, state).verdict, RequestVerdict::submit);
}

TEST(NbdRequests, OffsetPlusLengthOverflowing64BitsIsRejected) {
  const TransmissionState state = writable_state();
  EXPECT_EQ(check(0, cmd_read, UINT64_MAX - 10, 512, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_write, UINT64_MAX - 10, 512, state).error, error_no_space);
}

TEST(NbdRequests, PayloadAbove32MiBIsEinvalOrEoverflowForStructuredReads) {
  TransmissionState state = writable_state();
  state.export_size_bytes = 1ull << 40;
  const std::uint32_t too_big = payload_size_max_bytes + 1;
  EXPECT_EQ(check(0, cmd_write, 0, too_big, state).error, error_invalid);
  EXPECT_EQ(check(0, cmd_read, 0, too_big, state).error, error_invalid);
  state.structured_replies = true;
  EXPECT_EQ(check(0, cmd_read, 0, too_big, state).error, error_overflow);
  EXPECT_EQ(check(0, cmd_read, 0, payload_size_max_bytes, state).verdict, RequestVerdict::submit);
  EXPECT_EQ(check(0, cmd_write_zeroes, 0, 0xFFFFFFFF, state).verdict, RequestVerdict::submit)
      << "payload-less commands may exceed the maximum payload";
}

TEST(NbdReplies, SimpleReplyEchoesTheCookie) {
  const auto reply = encode_simple_reply(0xdeadbeefcafef00d, error_io);
  const Bytes expected = {0x67, 0x44, 0x66, 0x98, 0,    0,    0,    5,
                          0xde, 0xad, 0xbe, 0xef, 0xca, 0xfe, 0xf0, 0x0d};
  EXPECT_EQ(Bytes(reply.begin(), reply.end()), expected);
}

TEST(NbdReplies, OffsetDataChunkCountsTheOffsetInItsLengthAndIsDone) {
  const auto chunk = encode_offset_data_done(9, 4096, 512);
  ByteReader reader(chunk);
  std::uint32_t magic = 0, length = 0;
  std::uint16_t flags = 0, type = 0;
  std::uint64_t cookie = 0, offset = 0;
  ASSERT_TRUE(reader.u32(magic) && reader.u16(flags) && reader.u16(type) && reader.u64(cookie) &&
              reader.u32(length) && reader.u64(offset));
  EXPECT_EQ(magic, structured_reply_magic);
  EXPECT_EQ(flags, reply_flag_done);
  EXPECT_EQ(type, reply_type_offset_data);
  EXPECT_EQ(cookie, 9u);
  EXPECT_EQ(length, 512u + 8u);
  EXPECT_EQ(offset, 4096u);
}

TEST(NbdReplies, ErrorChunkHasErrorMessageLengthAndMessage) {
  const Bytes chunk = encode_error_done(3, error_invalid, "bad");
  ASSERT_EQ(chunk.size(), 20u + 6u + 3u);
  ByteReader reader{std::span(chunk).subspan(4)};
  std::uint16_t flags = 0, type = 0, message_length = 0;
  std::uint64_t cookie = 0;
  std::uint32_t length = 0, error = 0;
  ASSERT_TRUE(reader.u16(flags) && reader.u16(type) && reader.u64(cookie) && reader.u32(length) &&
              reader.u32(error) && reader.u16(message_length));
  EXPECT_EQ(flags, reply_flag_done);
  EXPECT_EQ(type, reply_type_error);
  EXPECT_EQ(length, 9u);
  EXPECT_EQ(error, error_invalid);
  EXPECT_EQ(message_length, 3u);
  const auto none = encode_none_done(3);
  EXPECT_EQ(none[7], reply_type_none);
  EXPECT_EQ(none[5], reply_flag_done);
}

}  // namespace
}  // namespace ditto::datapath::nbd
