#include "core/read_balancing.h"

#include <algorithm>

#include "core/assert.h"

namespace ditto::core {
namespace {

constexpr ReadBalancing all_policies[] = {
    ReadBalancing::prefer_local,  ReadBalancing::prefer_remote,
    ReadBalancing::round_robin,   ReadBalancing::least_pending,
    ReadBalancing::when_congested_remote, ReadBalancing::striping_32k,
    ReadBalancing::striping_64k,  ReadBalancing::striping_128k,
    ReadBalancing::striping_256k, ReadBalancing::striping_512k,
    ReadBalancing::striping_1m,
};

// Entry `index` (modulo the set's size) of the node set: the local disk first when possible.
std::optional<NodeId> nth_node(const ReadChoice& choice, std::uint64_t index) {
  const std::uint64_t size = choice.candidates.size() + (choice.local_possible ? 1 : 0);
  DITTO_ASSERT(size > 0);
  std::uint64_t position = index % size;
  if (choice.local_possible) {
    if (position == 0) return std::nullopt;
    position -= 1;
  }
  return choice.candidates[position].node;
}

}  // namespace

const char* to_string(ReadBalancing policy) {
  switch (policy) {
    case ReadBalancing::prefer_local: return "prefer-local";
    case ReadBalancing::prefer_remote: return "prefer-remote";
    case ReadBalancing::round_robin: return "round-robin";
    case ReadBalancing::least_pending: return "least-pending";
    case ReadBalancing::when_congested_remote: return "when-congested-remote";
    case ReadBalancing::striping_32k: return "32K-striping";
    case ReadBalancing::striping_64k: return "64K-striping";
    case ReadBalancing::striping_128k: return "128K-striping";
    case ReadBalancing::striping_256k: return "256K-striping";
    case ReadBalancing::striping_512k: return "512K-striping";
    case ReadBalancing::striping_1m: return "1M-striping";
  }
  return "unknown";
}

std::optional<ReadBalancing> parse_read_balancing(std::string_view text) {
  for (const ReadBalancing policy : all_policies) {
    if (text == to_string(policy)) return policy;
  }
  return std::nullopt;
}

std::optional<NodeId> choose_read_source(const ReadChoice& choice) {
  DITTO_ASSERT(choice.local_possible || !choice.candidates.empty());
  if (choice.candidates.empty()) return std::nullopt;
  const auto by_rotation = [&] {
    return choice.candidates[choice.rotation % choice.candidates.size()].node;
  };
  switch (choice.policy) {
    case ReadBalancing::prefer_local:
    case ReadBalancing::when_congested_remote:
      if (choice.local_possible) return std::nullopt;
      return by_rotation();
    case ReadBalancing::prefer_remote:
      return by_rotation();
    case ReadBalancing::round_robin:
      return nth_node(choice, choice.rotation);
    case ReadBalancing::least_pending: {
      std::uint32_t least = choice.candidates.front().pending;
      for (const ReadCandidate& candidate : choice.candidates) {
        least = std::min(least, candidate.pending);
      }
      if (choice.local_possible && choice.local_pending <= least) return std::nullopt;
      // Rotate among the peers tied for the fewest.
      const auto tied = static_cast<std::uint64_t>(std::count_if(
          choice.candidates.begin(), choice.candidates.end(),
          [&](const ReadCandidate& candidate) { return candidate.pending == least; }));
      std::uint64_t skip = choice.rotation % tied;
      for (const ReadCandidate& candidate : choice.candidates) {
        if (candidate.pending == least && skip-- == 0) return candidate.node;
      }
      DITTO_ASSERT(false);
      return std::nullopt;
    }
    case ReadBalancing::striping_32k:
    case ReadBalancing::striping_64k:
    case ReadBalancing::striping_128k:
    case ReadBalancing::striping_256k:
    case ReadBalancing::striping_512k:
    case ReadBalancing::striping_1m: {
      // 32K is 2^15 bytes = 2^6 sectors; each policy doubles the stripe.
      const auto shift = static_cast<std::uint32_t>(choice.policy) -
                         static_cast<std::uint32_t>(ReadBalancing::striping_32k) + 15;
      return nth_node(choice, choice.sector.value >> (shift - 9));
    }
  }
  DITTO_ASSERT(false);
  return std::nullopt;
}

}  // namespace ditto::core
