// A small, fast, seeded pseudo-random generator: xoshiro256** seeded through splitmix64.
//
// Pure and deterministic: the same seed gives the same stream on every platform and build.
// Core never creates randomness itself; a driver passes a Prng in (DESIGN.md "core contract").
#pragma once

#include <cstdint>

#include "core/assert.h"

namespace ditto {

// splitmix64 step: advances `state` and returns the next output. Also a good 64-bit mixer.
constexpr std::uint64_t splitmix64_next(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ull;
  std::uint64_t mixed = state;
  mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ull;
  mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebull;
  return mixed ^ (mixed >> 31);
}

class Prng {
 public:
  explicit constexpr Prng(std::uint64_t seed) {
    std::uint64_t state = seed;
    for (std::uint64_t& word : state_) word = splitmix64_next(state);
  }

  // An independent generator for stream `stream_id` of `seed`: consuming one stream never
  // shifts another (network, disk and workload choices stay separable).
  static constexpr Prng derive(std::uint64_t seed, std::uint64_t stream_id) {
    std::uint64_t state = seed ^ (stream_id * 0xd1342543de82ef95ull);
    const std::uint64_t first = splitmix64_next(state);
    return Prng(first ^ splitmix64_next(state));
  }

  constexpr std::uint64_t next_u64() {
    const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
    const std::uint64_t shifted = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= shifted;
    state_[3] = rotate_left(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound), without modulo bias (Lemire's multiply-shift with rejection).
  constexpr std::uint64_t below(std::uint64_t bound) {
    DITTO_ASSERT(bound > 0);
    for (;;) {
      const unsigned __int128 product =
          static_cast<unsigned __int128>(next_u64()) * static_cast<unsigned __int128>(bound);
      const auto low = static_cast<std::uint64_t>(product);
      if (low >= bound || low >= (0 - bound) % bound) {
        return static_cast<std::uint64_t>(product >> 64);
      }
    }
  }

  // Uniform in [low, high] (inclusive).
  constexpr std::uint64_t between(std::uint64_t low, std::uint64_t high) {
    DITTO_ASSERT(low <= high);
    if (high - low == ~std::uint64_t{0}) return next_u64();
    return low + below(high - low + 1);
  }

  // True with probability numerator / denominator.
  constexpr bool chance(std::uint64_t numerator, std::uint64_t denominator) {
    DITTO_ASSERT(denominator > 0 && numerator <= denominator);
    return below(denominator) < numerator;
  }

  // Uniform in [0, 1) with 53 bits of precision.
  constexpr double unit() {
    return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
  }

 private:
  static constexpr std::uint64_t rotate_left(std::uint64_t value, int bits) {
    return (value << bits) | (value >> (64 - bits));
  }

  std::uint64_t state_[4] = {};
};

}  // namespace ditto
