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
// Shifting a CRC register over `length` zero bytes is linear in GF(2): a 32x32 bit matrix, here
// applied through four 256-entry tables (one per byte of the register). Used to join the three
// streams of extend_sse42 (the construction of Mark Adler's crc32c.c).
using ShiftTables = std::array<std::array<std::uint32_t, 256>, 4>;
using Matrix = std::array<std::uint32_t, 32>;

constexpr std::uint32_t matrix_times(const Matrix& matrix, std::uint32_t vector) {
  std::uint32_t sum = 0;
  for (std::size_t row = 0; vector != 0; vector >>= 1, ++row) {
    if ((vector & 1u) != 0) sum ^= matrix[row];
  }
  return sum;
}

constexpr Matrix matrix_square(const Matrix& matrix) {
  Matrix square{};
  for (std::size_t row = 0; row < 32; ++row) square[row] = matrix_times(matrix, matrix[row]);
  return square;
}

// The operator that feeds `length_bytes` (a power of two, at least 1) zero bytes to a register.
constexpr ShiftTables make_shift_tables(std::size_t length_bytes) {
  Matrix one_bit{};  // one zero bit
  one_bit[0] = polynomial_reflected;
  for (std::size_t row = 1; row < 32; ++row) one_bit[row] = std::uint32_t{1} << (row - 1);
  Matrix op = matrix_square(matrix_square(matrix_square(one_bit)));  // 8 bits: one byte
  for (std::size_t length = length_bytes; length > 1; length >>= 1) op = matrix_square(op);
  ShiftTables tables_out{};
  for (std::uint32_t value = 0; value < 256; ++value) {
    for (std::size_t byte = 0; byte < 4; ++byte) {
      tables_out[byte][value] = matrix_times(op, value << (8 * byte));
    }
  }
  return tables_out;
}

constexpr std::size_t long_stream_bytes = 8192;
constexpr std::size_t short_stream_bytes = 256;
constexpr ShiftTables shift_long = make_shift_tables(long_stream_bytes);
constexpr ShiftTables shift_short = make_shift_tables(short_stream_bytes);

constexpr std::uint32_t shift(const ShiftTables& shift_tables, std::uint32_t crc) {
  return shift_tables[0][crc & 0xFFu] ^ shift_tables[1][(crc >> 8) & 0xFFu] ^
         shift_tables[2][(crc >> 16) & 0xFFu] ^ shift_tables[3][crc >> 24];
}

__attribute__((target("sse4.2"))) std::uint64_t load_u64(const std::uint8_t* data) {
  std::uint64_t word = 0;
  std::memcpy(&word, data, sizeof word);  // x86 is little-endian, as the CRC's byte order
  return word;
}

// Three independent streams of `stream_bytes` each, then joined: the crc32 instruction has a
// latency of three cycles and a throughput of one, so one stream uses a third of it (a 1 MiB
// Data frame's CRC was 12-18 % of both daemons' CPU for sequential writes).
__attribute__((target("sse4.2"))) std::uint64_t extend_three_streams(
    std::uint64_t state, const std::uint8_t*& data, std::size_t& remaining,
    std::size_t stream_bytes, const ShiftTables& shift_tables) {
  while (remaining >= 3 * stream_bytes) {
    std::uint64_t second = 0;
    std::uint64_t third = 0;
    for (std::size_t offset = 0; offset < stream_bytes; offset += 8) {
      state = _mm_crc32_u64(state, load_u64(data + offset));
      second = _mm_crc32_u64(second, load_u64(data + stream_bytes + offset));
      third = _mm_crc32_u64(third, load_u64(data + 2 * stream_bytes + offset));
    }
    state = shift(shift_tables, static_cast<std::uint32_t>(state)) ^ second;
    state = shift(shift_tables, static_cast<std::uint32_t>(state)) ^ third;
    data += 3 * stream_bytes;
    remaining -= 3 * stream_bytes;
  }
  return state;
}

// SSE 4.2's crc32 instruction computes exactly this polynomial, 8 bytes per instruction. Only
// these functions are compiled for SSE 4.2; crc32c_extend calls them after asking the CPU.
__attribute__((target("sse4.2"))) std::uint32_t extend_sse42(std::uint32_t crc,
                                                             std::span<const std::uint8_t> bytes) {
  std::uint64_t state = ~crc;
  const std::uint8_t* data = bytes.data();
  std::size_t remaining = bytes.size();
  state = extend_three_streams(state, data, remaining, long_stream_bytes, shift_long);
  state = extend_three_streams(state, data, remaining, short_stream_bytes, shift_short);
  while (remaining >= 8) {
    state = _mm_crc32_u64(state, load_u64(data));
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
