// Fuzz target: the DRBD v09 metadata decoder (core/metadata.h) — superblock, layout check
// against a device size, activity-log transaction, bitmap slot unpacking and the dump-md text.
// Disk contents are untrusted: every input is decoded or rejected with a message, never a
// crash or an assertion. What decodes re-encodes to bytes that decode to the same value.
//
// Input: byte 0 picks the decoder; for the superblock, bytes 1..8 are the device size; the
// rest is the 4 KiB block (zero-padded). AL blocks get a valid magic and checksum on odd
// selector bytes so the fuzzer reaches the field checks.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/bytes.h"
#include "core/metadata.h"
#include "fuzz_check.h"

namespace {

using namespace ditto;
using Block = std::array<std::uint8_t, metadata::block_size_bytes>;

Block block_from(std::span<const std::uint8_t> bytes) {
  Block block{};
  std::copy_n(bytes.begin(), std::min(bytes.size(), block.size()), block.begin());
  return block;
}

void superblock(std::span<const std::uint8_t> input) {
  std::uint64_t device_bytes = 0;
  for (std::size_t i = 0; i < 8 && i < input.size(); ++i) {
    device_bytes = (device_bytes << 8) | input[i];
  }
  const Block block = block_from(input.subspan(std::min<std::size_t>(8, input.size())));
  auto decoded = metadata::decode_superblock(block);
  if (!decoded.ok()) {
    DITTO_FUZZ_CHECK(!decoded.error().message.empty());
    return;
  }
  const metadata::Superblock& value = decoded.value();
  const Block again = metadata::encode_superblock(value);
  auto redecoded = metadata::decode_superblock(again);
  DITTO_FUZZ_CHECK(redecoded.ok());
  DITTO_FUZZ_CHECK(redecoded.value() == value);
  auto layout = metadata::check_superblock_layout(value, device_bytes);
  if (!layout.ok()) {
    DITTO_FUZZ_CHECK(!layout.error().message.empty());
    return;
  }
  DITTO_FUZZ_CHECK(layout.value().md_offset_bytes < device_bytes);
  const std::uint64_t bitmap_bytes = metadata::dump_bitmap_bytes(value, layout.value());
  if (bitmap_bytes <= (1u << 20)) {
    const std::vector<std::uint8_t> bitmap(bitmap_bytes, 0xA5);
    (void)metadata::format_dump_md(value, layout.value(), bitmap);
  }
}

void al_transaction(std::span<const std::uint8_t> input, bool fix_up) {
  Block block = block_from(input);
  if (fix_up) {
    ByteWriter magic(std::span<std::uint8_t>(block).subspan(0, 4));
    magic.u32(metadata::al_magic);
    std::memset(block.data() + 8, 0, 4);
    ByteWriter crc(std::span<std::uint8_t>(block).subspan(8, 4));
    crc.u32(metadata::al_checksum(block));
  }
  auto decoded = metadata::decode_al_transaction(block);
  if (!decoded.ok()) {
    DITTO_FUZZ_CHECK(!decoded.error().message.empty());
    return;
  }
  const Block again = metadata::encode_al_transaction(decoded.value());
  auto redecoded = metadata::decode_al_transaction(again);
  DITTO_FUZZ_CHECK(redecoded.ok());
  DITTO_FUZZ_CHECK(redecoded.value() == decoded.value());
}

void bitmap(std::span<const std::uint8_t> input) {
  if (input.size() < 2) return;
  const std::uint32_t max_peers = 1 + input[0] % metadata::max_peers_limit;
  const std::uint32_t slot = input[1] % max_peers;
  const auto area = input.subspan(2);
  const std::size_t word_count = area.size() / 4 / max_peers;
  const std::vector<std::uint32_t> words =
      metadata::unpack_bitmap_slot(area, max_peers, slot, word_count);
  DITTO_FUZZ_CHECK(words.size() == word_count);
  std::vector<std::uint8_t> packed(area.begin(), area.end());
  metadata::pack_bitmap_slot(words, max_peers, slot, packed);
  DITTO_FUZZ_CHECK(std::equal(packed.begin(), packed.end(), area.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::uint8_t> input(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      superblock(input);
      break;
    case 1:
      al_transaction(input, true);
      break;
    case 2:
      al_transaction(input, false);
      break;
    default:
      bitmap(input);
      break;
  }
  return 0;
}
