#include "netem/faults.h"

#include <algorithm>

#include "core/assert.h"

namespace ditto::netem {
namespace {

constexpr std::array<std::string_view, fault_class_count> names = {
    "link_delay",        "slow_link",           "connection_reset",  "partition_halves",
    "partition_isolate", "partition_ring",      "partition_one_way", "link_flapping",
    "link_clog",         "disk_latency",        "slow_disk",         "disk_write_error",
    "disk_read_error",   "disk_lost_unflushed", "disk_torn_write",   "disk_reorder",
    "node_crash",        "node_pause",          "promote_outdated",  "disk_misdirected_write",
    "disk_bit_rot",      "clock_drift",         "clock_step",        "message_duplication",
};

}  // namespace

std::string_view name(FaultClass fault) {
  DITTO_ASSERT(index(fault) < fault_class_count);
  return names[index(fault)];
}

std::optional<FaultClass> parse_fault_class(std::string_view text) {
  for (std::size_t position = 0; position < fault_class_count; ++position) {
    if (names[position] == text) return static_cast<FaultClass>(position);
  }
  return std::nullopt;
}

std::string fault_class_names() {
  std::string text;
  for (const std::string_view entry : names) {
    if (!text.empty()) text += ",";
    text += entry;
  }
  return text;
}

FaultWeights all_faults() {
  FaultWeights weights{};
  weights.fill(1);
  return weights;
}

FaultWeights swarm_weights(Prng& prng, Prng& added) {
  FaultWeights weights{};
  // Half the classes off, the rest with weights spread over two orders of magnitude.
  auto draw = [](Prng& from) {
    return from.chance(1, 2) ? static_cast<std::uint32_t>(from.between(1, 100)) : 0;
  };
  for (std::size_t position = 0; position < classic_fault_class_count; ++position) {
    weights[position] = draw(prng);
  }
  const auto classic_end = weights.begin() + classic_fault_class_count;
  if (std::all_of(weights.begin(), classic_end, [](std::uint32_t w) { return w == 0; })) {
    weights[prng.below(classic_fault_class_count)] = 1;
  }
  for (std::size_t position = classic_fault_class_count; position < fault_class_count;
       ++position) {
    weights[position] = draw(added);
  }
  return weights;
}

Result<FaultWeights> parse_fault_list(std::string_view text) {
  if (text == "all") return all_faults();
  FaultWeights weights{};
  if (text == "none" || text.empty()) return weights;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view word = text.substr(start, comma - start);
    const std::optional<FaultClass> fault = parse_fault_class(word);
    if (!fault) {
      return Error{"unknown fault class '" + std::string(word) + "' (known: all, none, " +
                   fault_class_names() + ")"};
    }
    weights[index(*fault)] = 1;
    start = comma + 1;
  }
  return weights;
}

std::string to_string(const FaultWeights& weights) {
  std::string text;
  for (std::size_t position = 0; position < fault_class_count; ++position) {
    if (weights[position] == 0) continue;
    if (!text.empty()) text += ",";
    text += std::string(names[position]) + ":" + std::to_string(weights[position]);
  }
  return text.empty() ? "none" : text;
}

BlockedPairs partition_pairs(FaultClass shape, std::uint32_t nodes, std::uint32_t parameter) {
  DITTO_ASSERT(nodes >= 2 && nodes <= 32);
  BlockedPairs pairs;
  auto side_of = [&](std::uint32_t node) -> std::uint32_t {
    switch (shape) {
      case FaultClass::partition_halves: {
        // Node 0 is always on side 0 and at least one node on side 1.
        const std::uint32_t mask = (parameter | (1u << (1 + parameter % (nodes - 1)))) & ~1u;
        return (mask >> node) & 1u;
      }
      case FaultClass::partition_isolate:
        return node == parameter % nodes ? 1u : 0u;
      default:
        return 0;
    }
  };
  for (std::uint32_t from = 0; from < nodes; ++from) {
    for (std::uint32_t to = 0; to < nodes; ++to) {
      if (from == to) continue;
      bool blocked = false;
      if (shape == FaultClass::partition_ring) {
        const std::uint32_t distance = (to + nodes - from) % nodes;
        blocked = distance != 1 && distance != nodes - 1;
      } else if (shape == FaultClass::partition_one_way &&
                 (parameter & one_way_explicit_bit) != 0) {
        blocked = from == ((parameter >> 8) & 0xffu) && to == (parameter & 0xffu);
      } else if (shape == FaultClass::partition_one_way) {
        blocked = from == parameter % nodes && to == (from + 1) % nodes;
      } else {
        blocked = side_of(from) != side_of(to);
      }
      if (blocked) {
        pairs.emplace_back(static_cast<std::uint8_t>(from), static_cast<std::uint8_t>(to));
      }
    }
  }
  return pairs;
}

LatencyModel slowed(const LatencyModel& model, std::uint32_t factor) {
  DITTO_ASSERT(factor >= 1);
  const auto scale = static_cast<std::int64_t>(factor);
  return LatencyModel{model.base_ns * scale, model.jitter_ns_max * scale, model.tail_per_million,
                      model.tail_ns_max * scale};
}

LatencyModel random_link_model(Prng& prng) {
  const auto base_ns = static_cast<std::int64_t>(prng.between(10'000, 2'000'000));
  const auto jitter_ns =
      static_cast<std::int64_t>(prng.between(0, static_cast<std::uint64_t>(base_ns)));
  const auto tail = static_cast<std::uint32_t>(prng.between(0, 10'000));
  return LatencyModel{base_ns, jitter_ns, tail, base_ns * 20};
}

LatencyModel random_disk_model(Prng& prng) {
  const auto base_ns = static_cast<std::int64_t>(prng.between(5'000, 1'000'000));
  const auto jitter_ns =
      static_cast<std::int64_t>(prng.between(0, static_cast<std::uint64_t>(base_ns)));
  const auto tail = static_cast<std::uint32_t>(prng.between(0, 10'000));
  return LatencyModel{base_ns, jitter_ns, tail, base_ns * 20};
}

}  // namespace ditto::netem
