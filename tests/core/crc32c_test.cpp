// CRC32C: known values (RFC 3720 B.4), chaining, and the hardware path equal to the tables.
#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/prng.h"

namespace ditto {
namespace {

std::span<const std::uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

TEST(Crc32c, MatchesTheKnownValuesOfRfc3720) {
  EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u);
  const std::vector<std::uint8_t> zeros(32, 0x00);
  const std::vector<std::uint8_t> ones(32, 0xFF);
  std::vector<std::uint8_t> ascending(32);
  std::vector<std::uint8_t> descending(32);
  for (std::size_t i = 0; i < 32; ++i) {
    ascending[i] = static_cast<std::uint8_t>(i);
    descending[i] = static_cast<std::uint8_t>(31 - i);
  }
  for (auto crc_function : {crc32c_extend, crc32c_extend_portable}) {
    EXPECT_EQ(crc_function(0, zeros), 0x8A9136AAu);
    EXPECT_EQ(crc_function(0, ones), 0x62A8AB43u);
    EXPECT_EQ(crc_function(0, ascending), 0x46DD794Eu);
    EXPECT_EQ(crc_function(0, descending), 0x113FDB5Cu);
    EXPECT_EQ(crc_function(0, {}), 0u);
  }
}

TEST(Crc32c, ExtendingPieceByPieceEqualsTheWholeAndEveryPathAgreesWithTheTables) {
  Prng prng{20261126};
  std::vector<std::uint8_t> buffer(4096 + 16);
  for (std::uint8_t& byte : buffer) byte = static_cast<std::uint8_t>(prng.next_u64());
  for (int trial = 0; trial < 2000; ++trial) {
    // Every length 0..4096 in reach, at unaligned starts, split at an arbitrary point.
    const std::size_t start = prng.next_u64() % 16;
    const std::size_t length =
        trial < 200 ? static_cast<std::size_t>(trial) : prng.next_u64() % 4097;
    const std::span<const std::uint8_t> whole{buffer.data() + start, length};
    const std::size_t split = length == 0 ? 0 : prng.next_u64() % (length + 1);
    const std::uint32_t expected = crc32c_extend_portable(0, whole);
    ASSERT_EQ(crc32c(whole), expected) << "start " << start << " length " << length;
    ASSERT_EQ(crc32c_extend(crc32c_extend(0, whole.first(split)), whole.subspan(split)), expected)
        << "start " << start << " length " << length << " split " << split;
  }
}

TEST(Crc32c, LargeBuffersThroughTheInterleavedStreamsAgreeWithTheTables) {
  // Lengths around the three-stream blocks (3 x 256 and 3 x 8192 bytes) and up to a 1 MiB Data
  // payload, at unaligned starts, whole and split.
  Prng prng{20261127};
  std::vector<std::uint8_t> buffer((1u << 20) + 16);
  for (std::uint8_t& byte : buffer) byte = static_cast<std::uint8_t>(prng.next_u64());
  std::vector<std::size_t> lengths{767, 768, 769, 1535, 1536, 24575, 24576, 24577, 49152 + 776,
                                   1u << 20};
  for (int trial = 0; trial < 40; ++trial) lengths.push_back(prng.next_u64() % (1u << 20));
  for (const std::size_t length : lengths) {
    const std::size_t start = prng.next_u64() % 16;
    const std::span<const std::uint8_t> whole{buffer.data() + start, length};
    const std::uint32_t expected = crc32c_extend_portable(0, whole);
    ASSERT_EQ(crc32c(whole), expected) << "start " << start << " length " << length;
    const std::size_t split = prng.next_u64() % (length + 1);
    ASSERT_EQ(crc32c_extend(crc32c_extend(0, whole.first(split)), whole.subspan(split)), expected)
        << "start " << start << " length " << length << " split " << split;
  }
}

}  // namespace
}  // namespace ditto
