// Fuzz target: the peer wire decoder (core/wire.h). Every byte string either decodes into a
// message or is rejected with an error value — never a crash, never an assertion. A decoded
// message re-encodes into a frame that decodes to the same message and payload.
//
// Random bytes almost never carry the right magic and CRC32C, so half of the inputs are wrapped
// into a valid frame header first (first byte odd: the next two bytes are the type, the rest is
// the body, and the CRC is computed), which takes the fuzzer straight to the body decoders.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/wire.h"
#include "fuzz_check.h"

namespace {

using namespace ditto;

std::vector<std::uint8_t> framed(std::span<const std::uint8_t> input) {
  if (input.size() < 3) return {};
  const auto type = static_cast<std::uint16_t>((input[1] << 8) | input[2]);
  const std::span<const std::uint8_t> body = input.subspan(3);
  std::vector<std::uint8_t> frame(wire::header_size_bytes + body.size());
  ByteWriter writer(frame);
  writer.u32(wire::frame_magic);
  writer.u16(type);
  writer.u16(0);
  writer.u32(static_cast<std::uint32_t>(body.size()));
  std::uint32_t crc = crc32c_extend(0, std::span<const std::uint8_t>(frame).subspan(0, 12));
  crc = crc32c_extend(crc, body);
  writer.u32(crc);
  writer.bytes(body);
  return frame;
}

void check_round_trip(std::span<const std::uint8_t> bytes) {
  const wire::DecodeResult result = wire::decode(bytes);
  const auto* frame = std::get_if<wire::Frame>(&result);
  if (frame == nullptr) {
    if (const auto* more = std::get_if<wire::NeedMore>(&result)) {
      DITTO_FUZZ_CHECK(more->frame_size_bytes > bytes.size());
    }
    return;
  }
  DITTO_FUZZ_CHECK(frame->frame_size_bytes <= bytes.size());
  const std::vector<std::uint8_t> again = wire::encode(frame->message, frame->payload);
  const wire::DecodeResult redecoded = wire::decode(again);
  const auto* second = std::get_if<wire::Frame>(&redecoded);
  DITTO_FUZZ_CHECK(second != nullptr);
  DITTO_FUZZ_CHECK(second->message == frame->message);
  DITTO_FUZZ_CHECK(second->payload.size() == frame->payload.size());
  DITTO_FUZZ_CHECK(
      std::equal(second->payload.begin(), second->payload.end(), frame->payload.begin()));
  DITTO_FUZZ_CHECK(second->frame_size_bytes == again.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  if (!input.empty() && (input[0] & 1) != 0) {
    const std::vector<std::uint8_t> frame = framed(input);
    check_round_trip(frame);
  } else {
    check_round_trip(input);
  }
  return 0;
}
