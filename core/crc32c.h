// CRC32C (Castagnoli), as used by iSCSI, ext4 and DRBD's activity log; used for wire frames and
// on-disk metadata. The CPU's crc32 instruction on x86-64 with SSE 4.2, else slicing-by-8 tables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ditto {

// Continues a CRC32C over `bytes`. Start with crc = 0; the pre/post inversion is internal, so
// crc32c_extend(crc32c_extend(0, a), b) == crc32c_extend(0, a ++ b).
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::uint8_t> bytes);
// The same with the tables only, on every CPU (what crc32c_extend falls back to; for tests).
std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::span<const std::uint8_t> bytes);

inline std::uint32_t crc32c(std::span<const std::uint8_t> bytes) {
  return crc32c_extend(0, bytes);
}

}  // namespace ditto
