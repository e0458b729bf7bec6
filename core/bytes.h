// Big-endian readers and writers over byte spans. The reader never reads past its span: every
// read reports failure instead, so decoders of untrusted bytes stay total.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/assert.h"

namespace ditto {

class ByteWriter {
 public:
  explicit ByteWriter(std::span<std::uint8_t> out) : out_(out) {}

  void u8(std::uint8_t value) { put(value, 1); }
  void u16(std::uint16_t value) { put(value, 2); }
  void u32(std::uint32_t value) { put(value, 4); }
  void u64(std::uint64_t value) { put(value, 8); }
  void bytes(std::span<const std::uint8_t> data) {
    DITTO_ASSERT(position_ + data.size() <= out_.size());
    for (std::uint8_t byte : data) out_[position_++] = byte;
  }
  void string(std::string_view text) {
    for (char c : text) u8(static_cast<std::uint8_t>(c));
  }
  std::size_t position() const { return position_; }

 private:
  void put(std::uint64_t value, std::size_t size) {
    DITTO_ASSERT(position_ + size <= out_.size());
    for (std::size_t i = 0; i < size; ++i) {
      out_[position_ + i] = static_cast<std::uint8_t>(value >> (8 * (size - 1 - i)));
    }
    position_ += size;
  }

  std::span<std::uint8_t> out_;
  std::size_t position_ = 0;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> in) : in_(in) {}

  [[nodiscard]] bool u8(std::uint8_t& value) { return get(value, 1); }
  [[nodiscard]] bool u16(std::uint16_t& value) { return get(value, 2); }
  [[nodiscard]] bool u32(std::uint32_t& value) { return get(value, 4); }
  [[nodiscard]] bool u64(std::uint64_t& value) { return get(value, 8); }
  [[nodiscard]] bool string(std::string& value, std::size_t length) {
    if (remaining() < length) return false;
    value.assign(reinterpret_cast<const char*>(in_.data() + position_), length);
    position_ += length;
    return true;
  }
  std::span<const std::uint8_t> rest() const { return in_.subspan(position_); }
  std::size_t remaining() const { return in_.size() - position_; }
  std::size_t position() const { return position_; }

 private:
  template <typename T>
  bool get(T& value, std::size_t size) {
    if (remaining() < size) return false;
    std::uint64_t result = 0;
    for (std::size_t i = 0; i < size; ++i) result = (result << 8) | in_[position_ + i];
    value = static_cast<T>(result);
    position_ += size;
    return true;
  }

  std::span<const std::uint8_t> in_;
  std::size_t position_ = 0;
};

}  // namespace ditto
