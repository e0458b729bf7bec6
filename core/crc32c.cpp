#include "core/crc32c.h"

#include <array>

namespace ditto {
namespace {

constexpr std::uint32_t polynomial_reflected = 0x82F63B78u;

constexpr std::array<std::array<std::uint32_t, 256>, 8> make_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1u) != 0 ? (crc >> 1) ^ polynomial_reflected : crc >> 1;
    }
    tables[0][i] = crc;
  }
  for (std::uint32_t i = 0; i < 256; ++i) {
    for (std::size_t t = 1; t < 8; ++t) {
      const std::uint32_t previous = tables[t - 1][i];
      tables[t][i] = (previous >> 8) ^ tables[0][previous & 0xFFu];
    }
  }
  return tables;
}

constexpr auto tables = make_tables();

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::uint8_t> bytes) {
  std::uint32_t state = ~crc;
  const std::uint8_t* data = bytes.data();
  std::size_t remaining = bytes.size();
  while (remaining >= 8) {
    const std::uint32_t low = state ^ (std::uint32_t{data[0]} | std::uint32_t{data[1]} << 8 |
                                       std::uint32_t{data[2]} << 16 | std::uint32_t{data[3]} << 24);
    const std::uint32_t high = std::uint32_t{data[4]} | std::uint32_t{data[5]} << 8 |
                               std::uint32_t{data[6]} << 16 | std::uint32_t{data[7]} << 24;
    state = tables[7][low & 0xFFu] ^ tables[6][(low >> 8) & 0xFFu] ^
            tables[5][(low >> 16) & 0xFFu] ^ tables[4][low >> 24] ^ tables[3][high & 0xFFu] ^
            tables[2][(high >> 8) & 0xFFu] ^ tables[1][(high >> 16) & 0xFFu] ^
            tables[0][high >> 24];
    data += 8;
    remaining -= 8;
  }
  while (remaining > 0) {
    state = (state >> 8) ^ tables[0][(state ^ *data) & 0xFFu];
    ++data;
    --remaining;
  }
  return ~state;
}

}  // namespace ditto
