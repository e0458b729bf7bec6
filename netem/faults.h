// Named fault classes and the pure, seeded pieces of their models: partition shapes, slowed
// latency models. The simulator injects them (sim/simulation_faults.cpp); a future userspace
// impairment layer for real daemons can use the same names and shapes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/prng.h"
#include "core/result.h"
#include "netem/latency.h"

namespace ditto::netem {

// Every class has a name (the CLI and schedule files use it) and a fired counter in a run.
enum class FaultClass : std::uint8_t {
  // Network (one TCP-like connection per node pair, a FIFO link per direction).
  link_delay,         // per-link delay distributions and jitter, drawn per run
  slow_link,          // one direction of a link is 10..100x slower for a while
  connection_reset,   // TCP reset: in-flight messages lost, both sides see down, reconnect
  partition_halves,   // symmetric partition into two halves
  partition_isolate,  // one node cut off from every other (both directions)
  partition_ring,     // each node reaches only its ring neighbours
  partition_one_way,  // one direction of one link blackholed; TCP resets after a timeout
  link_flapping,      // a link resets again and again for a while
  link_clog,          // messages on a link held, then released in order
  // Disk.
  disk_latency,         // per-node disk latency distributions, drawn per run
  slow_disk,            // a node's disk is 10..100x slower for a while
  disk_write_error,     // transient EIO on writes for a while
  disk_read_error,      // transient EIO on reads for a while
  disk_lost_unflushed,  // a crash loses completed-but-unflushed writes
  disk_torn_write,      // a crash tears multi-block in-flight writes (4 KiB or 512 B pieces)
  disk_reorder,         // write completions reordered within a flush epoch
  // Nodes and operators.
  node_crash,        // power loss, restart later with a new core from on-disk metadata
  node_pause,        // the node stops processing for a while (SIGSTOP)
  promote_outdated,  // the operator tries to promote a node that is not UpToDate
  // Added later (see classic_fault_class_count).
  disk_misdirected_write,  // a write lands elsewhere; checksums catch both ends on read (EIO)
  disk_bit_rot,            // blocks rot on the media; checksums catch it on read (EIO)
  clock_drift,             // a node's clock runs up to 1 % fast or slow for a while
  clock_step,              // a node's clock jumps forward (VM resumed, migrated)
  message_duplication,     // a link delivers some messages twice, back to back
};

inline constexpr std::size_t fault_class_count = 24;
// The classes that existed before disk_misdirected_write. Swarm weights and fault plans draw
// the later classes from streams of their own, so a seed keeps its classic faults as they were
// (regression seeds stay meaningful when classes are added).
inline constexpr std::size_t classic_fault_class_count = 19;

std::string_view name(FaultClass fault);
std::optional<FaultClass> parse_fault_class(std::string_view text);
// All names, comma separated (for help and error messages).
std::string fault_class_names();

// Per class: 0 disabled, otherwise a relative weight.
using FaultWeights = std::array<std::uint32_t, fault_class_count>;

inline std::size_t index(FaultClass fault) {
  return static_cast<std::size_t>(fault);
}

// Every class enabled with weight 1.
FaultWeights all_faults();

// Swarm testing (Groce et al., TigerBeetle's enum_weights): a random non-empty subset of the
// classes, each with a wildly different weight in 1..100. The classic classes come from
// `prng`, the later ones from `added`.
FaultWeights swarm_weights(Prng& prng, Prng& added);

// Parses "name,name,..." or "all" or "none" into weights of 1; the error names the bad word.
[[nodiscard]] Result<FaultWeights> parse_fault_list(std::string_view text);
std::string to_string(const FaultWeights& weights);

// Directed pairs (from, to) whose messages are blocked by a partition of `nodes` nodes.
// halves: nodes whose bit in `parameter` is set form one side (some on each side guaranteed);
// isolate: node `parameter % nodes` alone; ring: node i reaches only i±1 (mod nodes).
// one_way: from `parameter % nodes` to the next node only, or, with one_way_explicit_bit set,
// the link one_way_parameter names (scenario files block any one direction; the fault plans draw
// parameters below 2^16, so their partitions are unchanged).
inline constexpr std::uint32_t one_way_explicit_bit = 1u << 31;
inline constexpr std::uint32_t one_way_parameter(std::uint8_t from, std::uint8_t to) {
  return one_way_explicit_bit | (std::uint32_t{from} << 8) | to;
}
using BlockedPairs = std::vector<std::pair<std::uint8_t, std::uint8_t>>;
BlockedPairs partition_pairs(FaultClass shape, std::uint32_t nodes, std::uint32_t parameter);

// `model` slowed down `factor` times (base, jitter and tail all scaled).
LatencyModel slowed(const LatencyModel& model, std::uint32_t factor);

// A random link or disk latency model for a run: base 10 µs..2 ms, jitter up to the base, a
// tail of up to 20x the base on 0..1% of samples.
LatencyModel random_link_model(Prng& prng);
LatencyModel random_disk_model(Prng& prng);

}  // namespace ditto::netem
