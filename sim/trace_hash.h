// A 128-bit rolling hash over the executed event stream: two independent 64-bit lanes.
//
// Only integers derived from the simulation go in (virtual time, kinds, node ids, sequence
// numbers, frame CRCs): no pointers, no wall clock, no iteration order of unordered containers.
// The same seed must always produce the same hash (simulation-anchors.md G2).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace ditto::sim {

class TraceHash {
 public:
  void add(std::uint64_t value) {
    low_ = mix(low_ ^ value, 0x9e3779b97f4a7c15ull);
    high_ = mix(high_ + value, 0xc2b2ae3d27d4eb4full);
    count_ += 1;
  }

  void add_text(std::string_view text) {
    std::uint64_t fnv = 0xcbf29ce484222325ull;
    for (const char character : text) {
      fnv = (fnv ^ static_cast<unsigned char>(character)) * 0x100000001b3ull;
    }
    add(fnv);
    add(text.size());
  }

  std::uint64_t low() const { return low_; }
  std::uint64_t high() const { return high_; }
  std::uint64_t count() const { return count_; }

  // 32 lowercase hex digits, high lane first.
  std::string hex() const {
    char text[33];
    std::snprintf(text, sizeof(text), "%016llx%016llx", static_cast<unsigned long long>(high_),
                  static_cast<unsigned long long>(low_));
    return std::string(text, 32);
  }

 private:
  static std::uint64_t mix(std::uint64_t value, std::uint64_t key) {
    value = (value ^ (value >> 32)) * key;
    value = (value ^ (value >> 29)) * 0xbf58476d1ce4e5b9ull;
    return value ^ (value >> 32);
  }

  std::uint64_t low_ = 0x6a09e667f3bcc908ull;
  std::uint64_t high_ = 0xbb67ae8584caa73bull;
  std::uint64_t count_ = 0;
};

}  // namespace ditto::sim
