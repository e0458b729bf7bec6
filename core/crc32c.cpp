#include "core/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>
#define DITTO_CRC32C_HARDWARE 1
#endif

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

#ifdef DITTO_CRC32C_HARDWARE
// SSE 4.2's crc32 instruction computes exactly this polynomial, 8 bytes per instruction. Only
// this function is compiled for SSE 4.2; crc32c_extend calls it after asking the CPU.
__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc,
                                                             std::span<const std::uint8_t> bytes) {
  std::uint64_t state = ~crc;
  const std::uint8_t* data = bytes.data();
  std::size_t remaining = bytes.size();
  while (remaining >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, data, sizeof word);  // x86 is little-endian, as the CRC's byte order
    state = _mm_crc32_u64(state, word);
    data += 8;
    remaining -= 8;
  }
  auto state_low = static_cast<std::uint32_t>(state);
  if (remaining >= 4) {  // frame headers are 12 bytes
    std::uint32_t word = 0;
    std::memcpy(&word, data, sizeof word);
    state_low = _mm_crc32_u32(state_low, word);
    data += 4;
    remaining -= 4;
  }
  while (remaining > 0) {
    state_low = _mm_crc32_u8(state_low, *data);
    ++data;
    --remaining;
  }
  return ~state_low;
}

bool sse42_available() {
  // Asking the CPU is not I/O: cpuid is an instruction, and the answer never changes.
  static const bool available = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return available;
}
#endif

}  // namespace

// The hardware instruction where the CPU has it (frame CRCs were 5 % of the simulator's time
// with the tables), the tables otherwise. Both give the same value: tests/core/crc32c_test.cpp.
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::uint8_t> bytes) {
#ifdef DITTO_CRC32C_HARDWARE
  if (sse42_available()) return extend_sse42(crc, bytes);
#endif
  return crc32c_extend_portable(crc, bytes);
}

std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::span<const std::uint8_t> bytes) {
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
