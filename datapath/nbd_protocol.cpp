// The NBD codec. See nbd_protocol.h; section numbers refer to reference/nbd-protocol.md.
#include "datapath/nbd_protocol.h"

#include <algorithm>
#include <cstdio>

#include "core/assert.h"
#include "core/bytes.h"

namespace ditto::datapath::nbd {
namespace {

template <typename T>
Parsed<T> need(std::size_t bytes) {
  Parsed<T> result;
  result.status = ParseStatus::need_more;
  result.need_bytes = bytes;
  return result;
}

template <typename T>
Parsed<T> fatal(std::string message) {
  Parsed<T> result;
  result.status = ParseStatus::fatal;
  result.error = std::move(message);
  return result;
}

std::string_view clip_message(std::string_view message) {
  return message.substr(0, std::min(message.size(), string_size_max_bytes));
}

// INFO and GO data: u32 namelen, name, u16 count, u16 info[count] (§2.4 "Validation").
void parse_info_data(ByteReader& reader, std::uint32_t length, OptionRequest& request) {
  std::uint32_t name_length = 0;
  if (length < 6 || !reader.u32(name_length) || name_length > length - 6) {
    request.invalid_reason = "option data too short for its export name";
    return;
  }
  if (name_length > string_size_max_bytes) {
    request.invalid_reason = "export name longer than 4096 bytes";
    return;
  }
  std::uint16_t count = 0;
  if (!reader.string(request.export_name, name_length) || !reader.u16(count)) {
    request.invalid_reason = "option data truncated";
    return;
  }
  if (std::uint64_t{4} + name_length + 2 + 2 * std::uint64_t{count} != length) {
    request.invalid_reason = "information request count does not match the option length";
    return;
  }
  for (std::uint16_t i = 0; i < count; ++i) {
    std::uint16_t info = 0;
    const bool read = reader.u16(info);
    DITTO_ASSERT(read);  // the length check above guarantees the bytes
    request.info_requests.push_back(info);
  }
}

// *_META_CONTEXT data: u32 namelen, name, u32 count, count × (u32 length, query).
void parse_meta_context_data(ByteReader& reader, OptionRequest& request) {
  std::uint32_t name_length = 0;
  std::uint32_t count = 0;
  if (!reader.u32(name_length) || name_length > string_size_max_bytes ||
      !reader.string(request.export_name, name_length) || !reader.u32(count)) {
    request.invalid_reason = "meta context option has a bad export name";
    return;
  }
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t query_length = 0;
    std::string query;
    if (!reader.u32(query_length) || query_length > string_size_max_bytes ||
        !reader.string(query, query_length)) {
      request.invalid_reason = "meta context query runs past the option data";
      return;
    }
    request.meta_queries.push_back(std::move(query));
  }
  if (reader.remaining() != 0) request.invalid_reason = "trailing bytes after meta queries";
}

OptionKind kind_of(std::uint32_t option) {
  switch (option) {
    case opt_export_name:
      return OptionKind::export_name;
    case opt_abort:
      return OptionKind::abort;
    case opt_list:
      return OptionKind::list;
    case opt_starttls:
      return OptionKind::starttls;
    case opt_info:
      return OptionKind::info;
    case opt_go:
      return OptionKind::go;
    case opt_structured_reply:
      return OptionKind::structured_reply;
    case opt_list_meta_context:
      return OptionKind::list_meta_context;
    case opt_set_meta_context:
      return OptionKind::set_meta_context;
    default:
      return OptionKind::unknown;
  }
}

void parse_option_data(std::span<const std::uint8_t> data, OptionRequest& request) {
  ByteReader reader(data);
  const auto length = static_cast<std::uint32_t>(data.size());
  switch (request.kind) {
    case OptionKind::export_name:
      if (length > string_size_max_bytes) {
        request.invalid_reason = "export name longer than 4096 bytes";
      } else {
        const bool read = reader.string(request.export_name, length);
        DITTO_ASSERT(read);
      }
      break;
    case OptionKind::list:
    case OptionKind::starttls:
    case OptionKind::structured_reply:
      if (length != 0) request.invalid_reason = "option takes no data";
      break;
    case OptionKind::info:
    case OptionKind::go:
      parse_info_data(reader, length, request);
      break;
    case OptionKind::list_meta_context:
    case OptionKind::set_meta_context:
      parse_meta_context_data(reader, request);
      break;
    case OptionKind::abort:  // data is ignored (§2.4)
    case OptionKind::unknown:
      break;
  }
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

std::array<std::uint8_t, greeting_size_bytes> encode_greeting() {
  std::array<std::uint8_t, greeting_size_bytes> out{};
  ByteWriter writer(out);
  writer.u64(init_password);
  writer.u64(options_magic);
  writer.u16(server_handshake_flags);
  DITTO_ASSERT_EQ(writer.position(), out.size());
  return out;
}

Parsed<std::uint32_t> parse_client_flags(std::span<const std::uint8_t> input) {
  ByteReader reader(input);
  std::uint32_t flags = 0;
  if (!reader.u32(flags)) return need<std::uint32_t>(client_flags_size_bytes);
  if ((flags & ~std::uint32_t{server_handshake_flags}) != 0) {
    return fatal<std::uint32_t>("client flags " + hex(flags) +
                                " set a bit the server did not offer");
  }
  Parsed<std::uint32_t> result;
  result.status = ParseStatus::done;
  result.value = flags;
  result.consumed_bytes = client_flags_size_bytes;
  return result;
}

Parsed<OptionRequest> parse_option(std::span<const std::uint8_t> input,
                                   std::uint32_t option_length_max_bytes) {
  ByteReader reader(input);
  std::uint64_t magic = 0;
  std::uint32_t option = 0;
  std::uint32_t length = 0;
  if (!reader.u64(magic) || !reader.u32(option) || !reader.u32(length)) {
    return need<OptionRequest>(option_header_size_bytes);
  }
  if (magic != options_magic) return fatal<OptionRequest>("option header has a bad magic");
  if (length > option_length_max_bytes) {
    return fatal<OptionRequest>("option " + std::to_string(option) + " length " +
                                std::to_string(length) + " is above the limit " +
                                std::to_string(option_length_max_bytes));
  }
  const std::size_t total = option_header_size_bytes + length;
  if (input.size() < total) return need<OptionRequest>(total);

  Parsed<OptionRequest> result;
  result.status = ParseStatus::done;
  result.consumed_bytes = total;
  result.value.option = option;
  result.value.kind = kind_of(option);
  parse_option_data(input.subspan(option_header_size_bytes, length), result.value);
  return result;
}

std::vector<std::uint8_t> encode_option_reply(std::uint32_t option, std::uint32_t reply_type,
                                              std::span<const std::uint8_t> data) {
  std::vector<std::uint8_t> out(20 + data.size());
  ByteWriter writer(out);
  writer.u64(option_reply_magic);
  writer.u32(option);
  writer.u32(reply_type);
  writer.u32(static_cast<std::uint32_t>(data.size()));
  writer.bytes(data);
  DITTO_ASSERT_EQ(writer.position(), out.size());
  return out;
}

std::vector<std::uint8_t> encode_option_ack(std::uint32_t option) {
  return encode_option_reply(option, rep_ack);
}

std::vector<std::uint8_t> encode_option_error(std::uint32_t option, std::uint32_t error,
                                              std::string_view message) {
  DITTO_ASSERT((error & 0x80000000u) != 0);
  const std::string_view text = clip_message(message);
  return encode_option_reply(
      option, error, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

std::vector<std::uint8_t> encode_reply_server(std::uint32_t option, std::string_view name,
                                              std::string_view description) {
  const std::string_view clipped_name = clip_message(name);
  const std::string_view clipped_description = clip_message(description);
  std::vector<std::uint8_t> data(4 + clipped_name.size() + clipped_description.size());
  ByteWriter writer(data);
  writer.u32(static_cast<std::uint32_t>(clipped_name.size()));
  writer.string(clipped_name);
  writer.string(clipped_description);
  return encode_option_reply(option, rep_server, data);
}

std::vector<std::uint8_t> encode_info_export(std::uint32_t option, std::uint64_t size_bytes,
                                             std::uint16_t flags) {
  std::array<std::uint8_t, 12> data{};
  ByteWriter writer(data);
  writer.u16(info_export);
  writer.u64(size_bytes);
  writer.u16(flags);
  return encode_option_reply(option, rep_info, data);
}

std::vector<std::uint8_t> encode_info_text(std::uint32_t option, std::uint16_t info_type,
                                           std::string_view text) {
  DITTO_ASSERT(info_type == info_name || info_type == info_description);
  const std::string_view clipped = clip_message(text);
  std::vector<std::uint8_t> data(2 + clipped.size());
  ByteWriter writer(data);
  writer.u16(info_type);
  writer.string(clipped);
  return encode_option_reply(option, rep_info, data);
}

std::vector<std::uint8_t> encode_info_block_size(std::uint32_t option, std::uint32_t minimum_bytes,
                                                 std::uint32_t preferred_bytes,
                                                 std::uint32_t maximum_bytes) {
  DITTO_ASSERT(minimum_bytes <= preferred_bytes && preferred_bytes <= maximum_bytes);
  std::array<std::uint8_t, 14> data{};
  ByteWriter writer(data);
  writer.u16(info_block_size);
  writer.u32(minimum_bytes);
  writer.u32(preferred_bytes);
  writer.u32(maximum_bytes);
  return encode_option_reply(option, rep_info, data);
}

std::vector<std::uint8_t> encode_export_name_reply(std::uint64_t size_bytes, std::uint16_t flags,
                                                   bool no_zeroes) {
  std::vector<std::uint8_t> out(no_zeroes ? 10 : 134, 0);
  ByteWriter writer(out);
  writer.u64(size_bytes);
  writer.u16(flags);
  return out;
}

std::uint16_t transmission_flags(const NbdExportInfo& info, bool structured_replies) {
  std::uint16_t flags = tflag_has_flags;
  if (info.read_only) flags |= tflag_read_only;
  if (info.supports_flush) flags |= tflag_send_flush;
  if (info.supports_fua) flags |= tflag_send_fua;
  if (info.supports_cache) flags |= tflag_send_cache;
  if (info.supports_trim && !info.read_only) flags |= tflag_send_trim;
  if (info.supports_write_zeroes && !info.read_only) {
    flags |= tflag_send_write_zeroes;
    // §3: FAST_ZERO MUST be clear without WRITE_ZEROES.
    if (info.supports_fast_zero) flags |= tflag_send_fast_zero;
  }
  // Our structured READ reply is always one OFFSET_DATA chunk, so DF holds trivially.
  if (structured_replies) flags |= tflag_send_df;
  if (info.multi_conn) flags |= tflag_can_multi_conn;
  return flags;
}

Parsed<RequestHeader> parse_request_header(std::span<const std::uint8_t> input,
                                           std::uint32_t write_skip_max_bytes) {
  ByteReader reader(input);
  std::uint32_t magic = 0;
  RequestHeader header;
  if (!reader.u32(magic) || !reader.u16(header.flags) || !reader.u16(header.type) ||
      !reader.u64(header.cookie) || !reader.u64(header.offset_bytes) ||
      !reader.u32(header.length_bytes)) {
    return need<RequestHeader>(request_header_size_bytes);
  }
  if (magic != request_magic) {
    return fatal<RequestHeader>("request header has a bad magic " + hex(magic));
  }
  if (header.type == cmd_write && header.length_bytes > write_skip_max_bytes) {
    return fatal<RequestHeader>("write payload of " + std::to_string(header.length_bytes) +
                                " bytes is too large to consume");
  }
  Parsed<RequestHeader> result;
  result.status = ParseStatus::done;
  result.value = header;
  result.consumed_bytes = request_header_size_bytes;
  return result;
}

std::uint32_t request_payload_bytes(const RequestHeader& header) {
  return header.type == cmd_write ? header.length_bytes : 0;
}

namespace {

CheckedRequest rejected(std::uint32_t error, std::string reason) {
  CheckedRequest result;
  result.verdict = RequestVerdict::reject;
  result.error = error;
  result.reason = std::move(reason);
  return result;
}

struct CommandRule {
  NbdOp op;
  std::uint16_t allowed_flags;   // besides FUA
  std::uint16_t required_tflag;  // 0: always allowed
  bool writes;                   // fails with EPERM on a read-only export
  bool beyond_end_is_no_space;   // ENOSPC instead of EINVAL past the end
  bool aligned;                  // offset and length must respect the minimum block size
};

bool rule_for(std::uint16_t type, CommandRule& rule) {
  switch (type) {
    case cmd_read:
      rule = {NbdOp::read, cmd_flag_df, 0, false, false, true};
      return true;
    case cmd_write:
      rule = {NbdOp::write, 0, 0, true, true, true};
      return true;
    case cmd_flush:
      rule = {NbdOp::flush, 0, tflag_send_flush, false, false, false};
      return true;
    case cmd_trim:
      rule = {NbdOp::trim, 0, tflag_send_trim, true, false, false};
      return true;
    case cmd_cache:
      rule = {NbdOp::cache, 0, tflag_send_cache, false, false, false};
      return true;
    case cmd_write_zeroes:
      rule = {NbdOp::write_zeroes,
              cmd_flag_no_hole | cmd_flag_fast_zero,
              tflag_send_write_zeroes,
              true,
              true,
              true};
      return true;
    default:
      return false;
  }
}

}  // namespace

CheckedRequest check_request(const RequestHeader& header, const TransmissionState& state) {
  if (header.type == cmd_disc) {
    CheckedRequest result;
    result.verdict = RequestVerdict::disconnect;
    return result;
  }
  CommandRule rule{};
  if (!rule_for(header.type, rule)) {
    return rejected(error_invalid, "unknown command type " + std::to_string(header.type));
  }
  std::uint16_t allowed = rule.allowed_flags;
  if (state.transmission_flags & tflag_send_fua) allowed |= cmd_flag_fua;
  if (!(state.transmission_flags & tflag_send_df)) allowed &= ~cmd_flag_df;
  if (!(state.transmission_flags & tflag_send_fast_zero)) allowed &= ~cmd_flag_fast_zero;
  if ((header.flags & ~allowed) != 0) {
    return rejected(error_invalid, "flags " + hex(header.flags) + " are not valid on command " +
                                       std::to_string(header.type));
  }
  if (rule.required_tflag != 0 && !(state.transmission_flags & rule.required_tflag)) {
    return rejected(error_invalid, "command " + std::to_string(header.type) +
                                       " was not advertised for this export");
  }
  if (rule.op == NbdOp::flush && (header.offset_bytes != 0 || header.length_bytes != 0)) {
    return rejected(error_invalid, "flush with a nonzero offset or length");
  }
  if (rule.writes && (state.transmission_flags & tflag_read_only)) {
    return rejected(error_perm, "export is read-only");
  }
  const bool has_payload = rule.op == NbdOp::read || rule.op == NbdOp::write;
  if (has_payload && header.length_bytes > state.payload_size_max_bytes) {
    const bool overflow = rule.op == NbdOp::read && state.structured_replies;
    return rejected(overflow ? error_overflow : error_invalid,
                    "length " + std::to_string(header.length_bytes) +
                        " is above the maximum payload " +
                        std::to_string(state.payload_size_max_bytes));
  }
  const std::uint64_t end = header.offset_bytes + header.length_bytes;
  if (end < header.offset_bytes || end > state.export_size_bytes) {
    return rejected(rule.beyond_end_is_no_space ? error_no_space : error_invalid,
                    "range ends at " + std::to_string(end) + ", past the export size " +
                        std::to_string(state.export_size_bytes));
  }
  const std::uint64_t alignment = std::max<std::uint32_t>(state.block_size_minimum_bytes, 1);
  const bool misaligned =
      header.offset_bytes % alignment != 0 || header.length_bytes % alignment != 0;
  if (rule.aligned && misaligned) {
    return rejected(error_invalid, "offset " + std::to_string(header.offset_bytes) + " or length " +
                                       std::to_string(header.length_bytes) +
                                       " is not a multiple of the minimum block size " +
                                       std::to_string(alignment));
  }
  CheckedRequest result;
  result.verdict = RequestVerdict::submit;
  result.io = NbdIo{rule.op,
                    header.offset_bytes,
                    header.length_bytes,
                    (header.flags & cmd_flag_fua) != 0,
                    (header.flags & cmd_flag_no_hole) != 0,
                    (header.flags & cmd_flag_fast_zero) != 0};
  return result;
}

std::array<std::uint8_t, simple_reply_size_bytes> encode_simple_reply(std::uint64_t cookie,
                                                                      std::uint32_t error) {
  std::array<std::uint8_t, simple_reply_size_bytes> out{};
  ByteWriter writer(out);
  writer.u32(simple_reply_magic);
  writer.u32(error);
  writer.u64(cookie);
  return out;
}

std::array<std::uint8_t, chunk_header_size_bytes> encode_chunk_header(std::uint16_t flags,
                                                                      std::uint16_t type,
                                                                      std::uint64_t cookie,
                                                                      std::uint32_t payload_bytes) {
  std::array<std::uint8_t, chunk_header_size_bytes> out{};
  ByteWriter writer(out);
  writer.u32(structured_reply_magic);
  writer.u16(flags);
  writer.u16(type);
  writer.u64(cookie);
  writer.u32(payload_bytes);
  return out;
}

std::array<std::uint8_t, chunk_header_size_bytes + 8> encode_offset_data_done(
    std::uint64_t cookie, std::uint64_t offset_bytes, std::uint32_t data_bytes) {
  DITTO_ASSERT(data_bytes > 0);  // OFFSET_DATA must carry at least one byte (§4.4)
  DITTO_ASSERT(data_bytes <= 0xFFFFFFFFu - 8);
  std::array<std::uint8_t, chunk_header_size_bytes + 8> out{};
  const auto head =
      encode_chunk_header(reply_flag_done, reply_type_offset_data, cookie, data_bytes + 8);
  std::copy(head.begin(), head.end(), out.begin());
  ByteWriter writer{std::span<std::uint8_t>(out).subspan(chunk_header_size_bytes)};
  writer.u64(offset_bytes);
  return out;
}

std::array<std::uint8_t, chunk_header_size_bytes> encode_none_done(std::uint64_t cookie) {
  return encode_chunk_header(reply_flag_done, reply_type_none, cookie, 0);
}

std::vector<std::uint8_t> encode_error_done(std::uint64_t cookie, std::uint32_t error,
                                            std::string_view message) {
  DITTO_ASSERT(error != 0);
  const std::string_view text = clip_message(message);
  const auto payload_bytes = static_cast<std::uint32_t>(6 + text.size());
  std::vector<std::uint8_t> out(chunk_header_size_bytes + payload_bytes);
  const auto head = encode_chunk_header(reply_flag_done, reply_type_error, cookie, payload_bytes);
  std::copy(head.begin(), head.end(), out.begin());
  ByteWriter writer{std::span<std::uint8_t>(out).subspan(chunk_header_size_bytes)};
  writer.u32(error);
  writer.u16(static_cast<std::uint16_t>(text.size()));
  writer.string(text);
  return out;
}

std::string_view option_name(std::uint32_t option) {
  switch (kind_of(option)) {
    case OptionKind::export_name:
      return "EXPORT_NAME";
    case OptionKind::abort:
      return "ABORT";
    case OptionKind::list:
      return "LIST";
    case OptionKind::starttls:
      return "STARTTLS";
    case OptionKind::info:
      return "INFO";
    case OptionKind::go:
      return "GO";
    case OptionKind::structured_reply:
      return "STRUCTURED_REPLY";
    case OptionKind::list_meta_context:
      return "LIST_META_CONTEXT";
    case OptionKind::set_meta_context:
      return "SET_META_CONTEXT";
    case OptionKind::unknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace ditto::datapath::nbd
