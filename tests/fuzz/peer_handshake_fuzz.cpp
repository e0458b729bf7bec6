// Fuzz target: the peer handshake as the transport reads it — a stream of frames decoded one
// after the other (core/wire.h), with the shared-secret authentication of
// datapath/transport_auth.h applied to what arrives: an AuthChallenge's name and challenge
// go into the MAC, an AuthResponse's digest is verified against it, and the resource name is
// tried as a cram-hmac-alg name (configuration is untrusted too).
//
// Input: records of [u16 body length][u16 type][body], each wrapped into a frame with a valid
// header and CRC32C, so the stream decoder and the body decoders are reached; a record whose
// length runs past the input ends the stream mid-frame. Properties: no crash; the decoder
// consumes whole frames only; a digest verifies exactly when it equals the expected MAC.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/wire.h"
#include "datapath/transport_auth.h"
#include "fuzz_check.h"

namespace {

using namespace ditto;

std::vector<std::uint8_t> stream_from(std::span<const std::uint8_t> input) {
  std::vector<std::uint8_t> stream;
  std::size_t position = 0;
  while (position + 4 <= input.size()) {
    const std::size_t length = (std::size_t{input[position]} << 8) | input[position + 1];
    const auto type = static_cast<std::uint16_t>((input[position + 2] << 8) | input[position + 3]);
    position += 4;
    const std::size_t available = std::min(length, input.size() - position);
    const auto body = input.subspan(position, available);
    position += available;
    std::vector<std::uint8_t> header(wire::header_size_bytes);
    ByteWriter writer(header);
    writer.u32(wire::frame_magic);
    writer.u16(type);
    writer.u16(0);
    writer.u32(static_cast<std::uint32_t>(length));  // may promise more than follows
    std::uint32_t crc = crc32c_extend(0, std::span<const std::uint8_t>(header).subspan(0, 12));
    crc = crc32c_extend(crc, body);
    writer.u32(crc);
    stream.insert(stream.end(), header.begin(), header.end());
    stream.insert(stream.end(), body.begin(), body.end());
  }
  return stream;
}

const datapath::AuthKey& key() {
  static const datapath::AuthKey instance =
      datapath::AuthKey::create("sha256", "fuzz-shared-secret").value();
  return instance;
}

void authenticate(const wire::Message& message, std::optional<wire::AuthChallenge>& challenge) {
  if (const auto* received = std::get_if<wire::AuthChallenge>(&message)) {
    challenge = *received;
    auto chosen = datapath::AuthKey::create(received->resource_name, "secret");
    if (!chosen.ok()) DITTO_FUZZ_CHECK(!chosen.error().message.empty());
    return;
  }
  const auto* response = std::get_if<wire::AuthResponse>(&message);
  // The transport refuses a challenge from a node to itself before computing any MAC (the MAC
  // binds two distinct identities); so does this target.
  if (response == nullptr || !challenge || challenge->sender == challenge->receiver) return;
  // The response answers the challenge we would have sent (here: the peer's, mirrored).
  const std::vector<std::uint8_t> expected =
      key().digest(challenge->sender, challenge->receiver, challenge->resource_name,
                   challenge->challenge, challenge->challenge);
  const bool verified =
      key().verify(response->digest, challenge->sender, challenge->receiver,
                   challenge->resource_name, challenge->challenge, challenge->challenge);
  DITTO_FUZZ_CHECK(verified == (response->digest == expected));
  DITTO_FUZZ_CHECK(key().verify(expected, challenge->sender, challenge->receiver,
                                challenge->resource_name, challenge->challenge,
                                challenge->challenge));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> stream = stream_from(std::span<const std::uint8_t>(data, size));
  std::span<const std::uint8_t> rest(stream);
  std::optional<wire::AuthChallenge> challenge;
  while (!rest.empty()) {
    const wire::DecodeResult result = wire::decode(rest);
    if (const auto* more = std::get_if<wire::NeedMore>(&result)) {
      DITTO_FUZZ_CHECK(more->frame_size_bytes > rest.size());
      break;
    }
    if (std::holds_alternative<wire::WireError>(result)) break;  // the transport drops the peer
    const auto& frame = std::get<wire::Frame>(result);
    DITTO_FUZZ_CHECK(frame.frame_size_bytes >= wire::header_size_bytes);
    DITTO_FUZZ_CHECK(frame.frame_size_bytes <= rest.size());
    authenticate(frame.message, challenge);
    rest = rest.subspan(frame.frame_size_bytes);
  }
  return 0;
}
