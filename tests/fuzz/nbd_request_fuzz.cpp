// Fuzz target: the NBD codec (datapath/nbd_protocol.h) driven the way a connection drives it.
// The input is one client byte stream: client flags, options until GO or EXPORT_NAME, then
// transmission requests (WRITE payloads skipped). The first input byte picks the negotiated
// export (size, flags, structured replies, minimum block size). Properties, for every input:
// no crash; each parser either needs more bytes than it has, consumes at most what it has, or
// fails; a request accepted for submission lies inside the export, respects the payload
// maximum and the block size, and uses only advertised commands; every rejection carries an
// NBD error and a reason, and the reply encoders accept what the parsers produced.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "datapath/nbd_protocol.h"
#include "fuzz_check.h"

namespace {

using namespace ditto::datapath;

nbd::TransmissionState negotiated(std::uint8_t choice) {
  NbdExportInfo info;
  info.size_bytes = (choice & 0x01) != 0 ? (1u << 20) : (std::uint64_t{1} << 40) + 512;
  info.read_only = (choice & 0x02) != 0;
  info.supports_trim = (choice & 0x04) != 0;
  info.supports_write_zeroes = (choice & 0x08) != 0;
  info.supports_fast_zero = (choice & 0x10) != 0;
  info.supports_fua = (choice & 0x20) != 0;
  nbd::TransmissionState state;
  state.structured_replies = (choice & 0x40) != 0;
  state.export_size_bytes = info.size_bytes;
  state.transmission_flags = nbd::transmission_flags(info, state.structured_replies);
  state.block_size_minimum_bytes = (choice & 0x80) != 0 ? 4096 : 1;
  return state;
}

void check_submitted(const NbdIo& io, const nbd::RequestHeader& header,
                     const nbd::TransmissionState& state) {
  DITTO_FUZZ_CHECK(io.offset_bytes == header.offset_bytes);
  DITTO_FUZZ_CHECK(io.length_bytes == header.length_bytes);
  DITTO_FUZZ_CHECK(io.offset_bytes <= state.export_size_bytes);
  DITTO_FUZZ_CHECK(io.length_bytes <= state.export_size_bytes - io.offset_bytes);
  if (io.op == NbdOp::read || io.op == NbdOp::write) {
    DITTO_FUZZ_CHECK(io.length_bytes <= state.payload_size_max_bytes);
  }
  if (io.op == NbdOp::read || io.op == NbdOp::write || io.op == NbdOp::write_zeroes) {
    DITTO_FUZZ_CHECK(io.offset_bytes % state.block_size_minimum_bytes == 0);
    DITTO_FUZZ_CHECK(io.length_bytes % state.block_size_minimum_bytes == 0);
  }
  const std::uint16_t flags = state.transmission_flags;
  if (is_write_class(io.op)) DITTO_FUZZ_CHECK((flags & nbd::tflag_read_only) == 0);
  if (io.op == NbdOp::trim) DITTO_FUZZ_CHECK((flags & nbd::tflag_send_trim) != 0);
  if (io.op == NbdOp::write_zeroes) {
    DITTO_FUZZ_CHECK((flags & nbd::tflag_send_write_zeroes) != 0);
  }
  if (io.fast_zero) DITTO_FUZZ_CHECK((flags & nbd::tflag_send_fast_zero) != 0);
  if (io.fua) DITTO_FUZZ_CHECK((flags & nbd::tflag_send_fua) != 0);
}

// Returns the bytes consumed by the handshake, or nothing left to do (size of the input).
std::size_t handshake(std::span<const std::uint8_t> input, bool& transmission) {
  const auto flags = nbd::parse_client_flags(input);
  if (flags.status != nbd::ParseStatus::done) return input.size();
  std::size_t position = flags.consumed_bytes;
  constexpr std::uint32_t option_cap = 64 * 1024;
  while (position < input.size()) {
    const auto rest = input.subspan(position);
    const auto parsed = nbd::parse_option(rest, option_cap);
    if (parsed.status == nbd::ParseStatus::need_more) {
      DITTO_FUZZ_CHECK(parsed.need_bytes > rest.size());
      return input.size();
    }
    if (parsed.status == nbd::ParseStatus::fatal) {
      DITTO_FUZZ_CHECK(!parsed.error.empty());
      return input.size();
    }
    DITTO_FUZZ_CHECK(parsed.consumed_bytes >= nbd::option_header_size_bytes);
    DITTO_FUZZ_CHECK(parsed.consumed_bytes <= rest.size());
    position += parsed.consumed_bytes;
    const nbd::OptionRequest& option = parsed.value;
    DITTO_FUZZ_CHECK(option.export_name.size() <= nbd::string_size_max_bytes);
    if (!option.invalid_reason.empty()) {
      const auto reply =
          nbd::encode_option_error(option.option, nbd::rep_err_invalid, option.invalid_reason);
      DITTO_FUZZ_CHECK(reply.size() >= 20);
      continue;
    }
    (void)nbd::option_name(option.option);
    if (option.kind == nbd::OptionKind::go || option.kind == nbd::OptionKind::export_name) {
      transmission = true;
      return position;
    }
  }
  return position;
}

void transmission_phase(std::span<const std::uint8_t> input, const nbd::TransmissionState& state) {
  constexpr std::uint32_t skip_max = 2 * nbd::payload_size_max_bytes;
  std::size_t position = 0;
  while (position < input.size()) {
    const auto rest = input.subspan(position);
    const auto parsed = nbd::parse_request_header(rest, skip_max);
    if (parsed.status != nbd::ParseStatus::done) {
      if (parsed.status == nbd::ParseStatus::need_more) {
        DITTO_FUZZ_CHECK(parsed.need_bytes > rest.size());
      }
      return;
    }
    DITTO_FUZZ_CHECK(parsed.consumed_bytes == nbd::request_header_size_bytes);
    const nbd::RequestHeader& header = parsed.value;
    const std::uint32_t payload = nbd::request_payload_bytes(header);
    DITTO_FUZZ_CHECK(payload <= skip_max);
    const nbd::CheckedRequest checked = nbd::check_request(header, state);
    if (checked.verdict == nbd::RequestVerdict::disconnect) return;
    if (checked.verdict == nbd::RequestVerdict::submit) {
      check_submitted(checked.io, header, state);
    } else {
      DITTO_FUZZ_CHECK(checked.error != 0);
      DITTO_FUZZ_CHECK(!checked.reason.empty());
      const auto chunk = nbd::encode_error_done(header.cookie, checked.error, checked.reason);
      DITTO_FUZZ_CHECK(chunk.size() >= nbd::chunk_header_size_bytes + 6);
      (void)nbd::encode_simple_reply(header.cookie, checked.error);
    }
    position += parsed.consumed_bytes +
                std::min<std::size_t>(payload, input.size() - position - parsed.consumed_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> input(data + 1, size - 1);
  const nbd::TransmissionState state = negotiated(data[0]);
  bool transmission = false;
  const std::size_t used = handshake(input, transmission);
  // A stream that never reaches GO still exercises the request parser on its own bytes, so
  // the fuzzer need not build a whole handshake to reach it.
  transmission_phase(transmission ? input.subspan(used) : input, state);
  return 0;
}
