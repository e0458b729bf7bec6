// Internal to sim/: the independent PRNG streams derived from one seed. Consuming one stream
// never shifts another, so removing a fault or an operation from a schedule leaves the network
// and disk latencies of everything else as they were.
#pragma once

#include <cstdint>

namespace ditto::sim {

inline constexpr std::uint64_t stream_network = 1;
inline constexpr std::uint64_t stream_disk = 2;
inline constexpr std::uint64_t stream_workload = 3;
inline constexpr std::uint64_t stream_faults = 4;
inline constexpr std::uint64_t stream_swarm = 5;
inline constexpr std::uint64_t stream_operations = 6;
inline constexpr std::uint64_t stream_fault_effects = 7;
// Fault classes added after the classic ones (netem::classic_fault_class_count).
inline constexpr std::uint64_t stream_swarm_added = 8;
inline constexpr std::uint64_t stream_faults_added = 9;
inline constexpr std::uint64_t stream_swarm_quorum = 10;
inline constexpr std::uint64_t stream_swarm_activity_log = 11;
inline constexpr std::uint64_t stream_swarm_reads = 12;
inline constexpr std::uint64_t stream_swarm_diskless = 13;
inline constexpr std::uint64_t stream_swarm_congestion = 14;

}  // namespace ditto::sim
