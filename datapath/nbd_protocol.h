// The NBD protocol codec (fixed newstyle handshake, compact transmission headers, simple and
// structured replies). Pure: no sockets, no Asio, no syscalls. Every parser takes whatever bytes
// have arrived and answers "need N bytes", "done, consumed M bytes" or "fatal: close" — the
// caller owns the buffering. Reference: /work/shared/reference/nbd-protocol.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ditto::datapath {

// What the NBD server knows about one export (filled by the backend).
struct NbdExportInfo {
  std::string name;
  std::string description;
  std::uint64_t size_bytes = 0;
  bool read_only = false;
  bool supports_flush = true;
  bool supports_fua = true;
  bool supports_trim = false;
  bool supports_write_zeroes = false;
  // SEND_FAST_ZERO (only with write_zeroes): the backend answers FAST_ZERO, possibly with
  // ENOTSUP when zeroing would be no faster than writing (§4.2).
  bool supports_fast_zero = false;
  bool supports_cache = true;
  bool multi_conn = false;
};

enum class NbdOp : std::uint8_t { read, write, flush, trim, write_zeroes, cache };

// One I/O handed to the backend. `no_hole` is NBD_CMD_FLAG_NO_HOLE on write_zeroes: the range
// must end up allocated, not punched. `fast_zero` is NBD_CMD_FLAG_FAST_ZERO: zero only if that
// is faster than writing, else answer ENOTSUP at once and change nothing.
struct NbdIo {
  NbdOp op;
  std::uint64_t offset_bytes;
  std::uint32_t length_bytes;
  bool fua;
  bool no_hole = false;
  bool fast_zero = false;
};

// Write-class commands: they change the export's contents (and need the Primary role).
constexpr bool is_write_class(NbdOp op) {
  return op == NbdOp::write || op == NbdOp::write_zeroes || op == NbdOp::trim;
}

namespace nbd {

// §1 magics.
inline constexpr std::uint64_t init_password = 0x4e42444d41474943;  // "NBDMAGIC"
inline constexpr std::uint64_t options_magic = 0x49484156454F5054;  // "IHAVEOPT"
inline constexpr std::uint64_t option_reply_magic = 0x0003e889045565a9;
inline constexpr std::uint32_t request_magic = 0x25609513;
inline constexpr std::uint32_t simple_reply_magic = 0x67446698;
inline constexpr std::uint32_t structured_reply_magic = 0x668e33ef;

// §2.2 handshake flags.
inline constexpr std::uint16_t flag_fixed_newstyle = 1u << 0;
inline constexpr std::uint16_t flag_no_zeroes = 1u << 1;
inline constexpr std::uint32_t client_flag_fixed_newstyle = 1u << 0;
inline constexpr std::uint32_t client_flag_no_zeroes = 1u << 1;
inline constexpr std::uint16_t server_handshake_flags = flag_fixed_newstyle | flag_no_zeroes;

// §2.4 options.
inline constexpr std::uint32_t opt_export_name = 1;
inline constexpr std::uint32_t opt_abort = 2;
inline constexpr std::uint32_t opt_list = 3;
inline constexpr std::uint32_t opt_starttls = 5;
inline constexpr std::uint32_t opt_info = 6;
inline constexpr std::uint32_t opt_go = 7;
inline constexpr std::uint32_t opt_structured_reply = 8;
inline constexpr std::uint32_t opt_list_meta_context = 9;
inline constexpr std::uint32_t opt_set_meta_context = 10;

// Option reply types.
inline constexpr std::uint32_t rep_ack = 1;
inline constexpr std::uint32_t rep_server = 2;
inline constexpr std::uint32_t rep_info = 3;
inline constexpr std::uint32_t rep_err_unsup = 0x80000001;
inline constexpr std::uint32_t rep_err_policy = 0x80000002;
inline constexpr std::uint32_t rep_err_invalid = 0x80000003;
inline constexpr std::uint32_t rep_err_platform = 0x80000004;
inline constexpr std::uint32_t rep_err_tls_reqd = 0x80000005;
inline constexpr std::uint32_t rep_err_unknown = 0x80000006;
inline constexpr std::uint32_t rep_err_shutdown = 0x80000007;
inline constexpr std::uint32_t rep_err_too_big = 0x80000009;

inline constexpr std::uint16_t info_export = 0;
inline constexpr std::uint16_t info_name = 1;
inline constexpr std::uint16_t info_description = 2;
inline constexpr std::uint16_t info_block_size = 3;

// §3 transmission flags.
inline constexpr std::uint16_t tflag_has_flags = 1u << 0;
inline constexpr std::uint16_t tflag_read_only = 1u << 1;
inline constexpr std::uint16_t tflag_send_flush = 1u << 2;
inline constexpr std::uint16_t tflag_send_fua = 1u << 3;
inline constexpr std::uint16_t tflag_send_trim = 1u << 5;
inline constexpr std::uint16_t tflag_send_write_zeroes = 1u << 6;
inline constexpr std::uint16_t tflag_send_df = 1u << 7;
inline constexpr std::uint16_t tflag_can_multi_conn = 1u << 8;
inline constexpr std::uint16_t tflag_send_cache = 1u << 10;
inline constexpr std::uint16_t tflag_send_fast_zero = 1u << 11;

// §4.2 commands and command flags.
inline constexpr std::uint16_t cmd_read = 0;
inline constexpr std::uint16_t cmd_write = 1;
inline constexpr std::uint16_t cmd_disc = 2;
inline constexpr std::uint16_t cmd_flush = 3;
inline constexpr std::uint16_t cmd_trim = 4;
inline constexpr std::uint16_t cmd_cache = 5;
inline constexpr std::uint16_t cmd_write_zeroes = 6;
inline constexpr std::uint16_t cmd_flag_fua = 1u << 0;
inline constexpr std::uint16_t cmd_flag_no_hole = 1u << 1;
inline constexpr std::uint16_t cmd_flag_df = 1u << 2;
inline constexpr std::uint16_t cmd_flag_fast_zero = 1u << 4;

// §4.4 structured reply chunks.
inline constexpr std::uint16_t reply_flag_done = 1u << 0;
inline constexpr std::uint16_t reply_type_none = 0;
inline constexpr std::uint16_t reply_type_offset_data = 1;
inline constexpr std::uint16_t reply_type_error = 0x8001;

// §5 errors on the wire.
inline constexpr std::uint32_t error_perm = 1;
inline constexpr std::uint32_t error_io = 5;
inline constexpr std::uint32_t error_invalid = 22;
inline constexpr std::uint32_t error_no_space = 28;
inline constexpr std::uint32_t error_overflow = 75;
inline constexpr std::uint32_t error_not_supported = 95;
inline constexpr std::uint32_t error_shutdown = 108;

inline constexpr std::size_t greeting_size_bytes = 18;
inline constexpr std::size_t client_flags_size_bytes = 4;
inline constexpr std::size_t option_header_size_bytes = 16;
inline constexpr std::size_t request_header_size_bytes = 28;
inline constexpr std::size_t simple_reply_size_bytes = 16;
inline constexpr std::size_t chunk_header_size_bytes = 20;
inline constexpr std::size_t string_size_max_bytes = 4096;
// §6: the 32 MiB convention for READ/WRITE payloads.
inline constexpr std::uint32_t payload_size_max_bytes = 32u * 1024 * 1024;

// The outcome of an incremental parse.
enum class ParseStatus : std::uint8_t {
  done,       // `value` is valid and `consumed_bytes` bytes were used
  need_more,  // at least `need_bytes` bytes (counted from the start of the input) are needed
  fatal,      // the stream is broken (bad magic, DoS-size length): close the connection
};

template <typename T>
struct Parsed {
  ParseStatus status = ParseStatus::need_more;
  T value{};
  std::size_t consumed_bytes = 0;
  std::size_t need_bytes = 0;
  std::string error;  // why, when fatal
};

// ---- Handshake ----

std::array<std::uint8_t, greeting_size_bytes> encode_greeting();

// The 4 client flags; fatal on any bit the server did not offer (§2.2).
Parsed<std::uint32_t> parse_client_flags(std::span<const std::uint8_t> input);

enum class OptionKind : std::uint8_t {
  export_name,
  abort,
  list,
  starttls,
  info,
  go,
  structured_reply,
  list_meta_context,
  set_meta_context,
  unknown,
};

// One option request. A known option whose data is malformed parses as done with
// `invalid_reason` set: the caller answers NBD_REP_ERR_INVALID and carries on.
struct OptionRequest {
  std::uint32_t option = 0;  // the raw code, echoed in every reply
  OptionKind kind = OptionKind::unknown;
  std::string export_name;                   // EXPORT_NAME, INFO, GO, *_META_CONTEXT
  std::vector<std::uint16_t> info_requests;  // INFO, GO
  std::vector<std::string> meta_queries;     // *_META_CONTEXT
  std::string invalid_reason;                // non-empty: answer ERR_INVALID
};

// Parses one option (16-byte header + data). Fatal on a bad magic or a length above
// `option_length_max_bytes` (decided from the header alone, before any data is buffered).
Parsed<OptionRequest> parse_option(std::span<const std::uint8_t> input,
                                   std::uint32_t option_length_max_bytes);

// Framed option replies (§2.3).
std::vector<std::uint8_t> encode_option_reply(std::uint32_t option, std::uint32_t reply_type,
                                              std::span<const std::uint8_t> data = {});
std::vector<std::uint8_t> encode_option_ack(std::uint32_t option);
// Error replies carry `message` as their data, cut at 4096 bytes.
std::vector<std::uint8_t> encode_option_error(std::uint32_t option, std::uint32_t error,
                                              std::string_view message);
std::vector<std::uint8_t> encode_reply_server(std::uint32_t option, std::string_view name,
                                              std::string_view description);
std::vector<std::uint8_t> encode_info_export(std::uint32_t option, std::uint64_t size_bytes,
                                             std::uint16_t transmission_flags);
std::vector<std::uint8_t> encode_info_text(std::uint32_t option, std::uint16_t info_type,
                                           std::string_view text);
std::vector<std::uint8_t> encode_info_block_size(std::uint32_t option, std::uint32_t minimum_bytes,
                                                 std::uint32_t preferred_bytes,
                                                 std::uint32_t maximum_bytes);
// The unframed EXPORT_NAME success reply: 10 bytes, or 134 without NO_ZEROES.
std::vector<std::uint8_t> encode_export_name_reply(std::uint64_t size_bytes,
                                                   std::uint16_t transmission_flags,
                                                   bool no_zeroes);

// The transmission flags advertised for `info` (§3). DF only when structured replies are on.
std::uint16_t transmission_flags(const NbdExportInfo& info, bool structured_replies);

// ---- Transmission ----

struct RequestHeader {
  std::uint16_t flags = 0;
  std::uint16_t type = 0;
  std::uint64_t cookie = 0;
  std::uint64_t offset_bytes = 0;
  std::uint32_t length_bytes = 0;
};

// Parses the 28-byte header only. Fatal on a bad magic, or on a WRITE whose payload is above
// `write_skip_max_bytes` (too large to even consume; §6 recommendation).
Parsed<RequestHeader> parse_request_header(std::span<const std::uint8_t> input,
                                           std::uint32_t write_skip_max_bytes);

// Bytes of payload that follow the header (only WRITE carries one in compact mode).
std::uint32_t request_payload_bytes(const RequestHeader& header);

// The negotiated state a request is checked against.
struct TransmissionState {
  std::uint64_t export_size_bytes = 0;
  std::uint16_t transmission_flags = 0;
  bool structured_replies = false;
  std::uint32_t payload_size_max_bytes = nbd::payload_size_max_bytes;
  // The advertised minimum block size (a power of two): READ, WRITE and WRITE_ZEROES must be
  // aligned to it in offset and length (EINVAL otherwise, §6). TRIM and CACHE are hints and
  // are not checked.
  std::uint32_t block_size_minimum_bytes = 1;
};

enum class RequestVerdict : std::uint8_t {
  submit,      // `io` is valid: run it
  reject,      // answer `error` (consume any WRITE payload first)
  disconnect,  // NBD_CMD_DISC: finish in-flight requests, then close
};

struct CheckedRequest {
  RequestVerdict verdict = RequestVerdict::reject;
  NbdIo io{NbdOp::read, 0, 0, false};
  std::uint32_t error = 0;
  std::string reason;  // why rejected (sent in structured error chunks)
};

CheckedRequest check_request(const RequestHeader& header, const TransmissionState& state);

// Simple reply header (§4.3); READ data follows only when error == 0.
std::array<std::uint8_t, simple_reply_size_bytes> encode_simple_reply(std::uint64_t cookie,
                                                                      std::uint32_t error);
// Structured chunk header (§4.4); the payload follows.
std::array<std::uint8_t, chunk_header_size_bytes> encode_chunk_header(std::uint16_t flags,
                                                                      std::uint16_t type,
                                                                      std::uint64_t cookie,
                                                                      std::uint32_t payload_bytes);
// OFFSET_DATA chunk header plus the u64 offset; `data_bytes` of data follow. DONE is set.
std::array<std::uint8_t, chunk_header_size_bytes + 8> encode_offset_data_done(
    std::uint64_t cookie, std::uint64_t offset_bytes, std::uint32_t data_bytes);
// NONE chunk with DONE: success without data.
std::array<std::uint8_t, chunk_header_size_bytes> encode_none_done(std::uint64_t cookie);
// ERROR chunk with DONE: error value and a message (cut at 4096 bytes).
std::vector<std::uint8_t> encode_error_done(std::uint64_t cookie, std::uint32_t error,
                                            std::string_view message);

std::string_view option_name(std::uint32_t option);

}  // namespace nbd
}  // namespace ditto::datapath
