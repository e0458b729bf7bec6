#include "sim/options.h"

#include "core/activity_log.h"

#include "core/prng.h"
#include "sim/sim_disk.h"
#include "sim/streams.h"

namespace ditto::sim {

Status validate(const SimOptions& options) {
  if (options.nodes < sim_nodes_min || options.nodes > sim_nodes_max) {
    return Error{"--nodes must be between " + std::to_string(sim_nodes_min) + " and " +
                 std::to_string(sim_nodes_max) + ", got " + std::to_string(options.nodes)};
  }
  const WorkloadOptions& workload = options.workload;
  if (workload.operations == 0) return Error{"--ops must be at least 1"};
  if (workload.operations > sim_operations_max) {
    return Error{"--ops must be at most " + std::to_string(sim_operations_max)};
  }
  if (options.volume_size_bytes % block_size_bytes != 0 ||
      options.volume_size_bytes < 16 * block_size_bytes ||
      options.volume_size_bytes > (1ull << 40)) {
    return Error{"the volume size must be a multiple of 4096 between 64 KiB and 1 TiB"};
  }
  if (workload.queue_depth_max < 1 || workload.queue_depth_max > 256 ||
      workload.queue_depth > workload.queue_depth_max) {
    return Error{"the queue depth must be between 1 and 256 (and at most queue_depth_max)"};
  }
  if (workload.read_percent + workload.flush_percent > 100 || workload.fua_percent > 100) {
    return Error{"read + flush percentages must not exceed 100, nor the FUA percentage"};
  }
  if (workload.blocks_per_write_max < 1 || workload.blocks_per_write_max > 16) {
    return Error{"blocks per write must be between 1 and 16"};
  }
  if (Status status = options.network.validate(); !status) return status;
  if (Status status = options.disk.validate(); !status) return status;
  if (options.detection_delay_max < Duration::from_ms(1)) {
    return Error{"the detection delay must be at least 1 ms"};
  }
  if (options.connect_delay.ns < 0 || options.reconnect_delay < Duration::from_ms(1)) {
    return Error{"the connect delay must not be negative and the reconnect delay at least 1 ms"};
  }
  if (options.faults_per_1000_ops > 1000) {
    return Error{"faults per 1000 operations must be at most 1000"};
  }
  if (options.stall_timeout < Duration::from_ms(100) || options.settle_time.ns < 0) {
    return Error{"the stall timeout must be at least 100 ms and the settle time not negative"};
  }
  if (options.al_extents < ActivityLog::node_al_extents_min ||
      options.al_extents > ActivityLog::al_extents_max) {
    return Error{"al-extents must be " + std::to_string(ActivityLog::node_al_extents_min) + ".." +
                 std::to_string(ActivityLog::al_extents_max)};
  }
  if (options.on_congestion != core::OnCongestion::block && options.protocol != Protocol::a) {
    return Error{"--on-congestion pull-ahead or disconnect needs --protocol A"};
  }
  if (options.congestion_fill_sectors > core::congestion_fill_sectors_max) {
    return Error{"--congestion-fill must be at most " +
                 std::to_string(core::congestion_fill_sectors_max) + " sectors"};
  }
  if (options.liveness_bound < Duration::from_ms(1)) {
    return Error{"the liveness bound must be at least 1 ms"};
  }
  if (options.resync_bound < options.liveness_bound) {
    return Error{"the resync bound must be at least the liveness bound"};
  }
  for (const HelperScript& script : options.helper_scripts) {
    if (script.node >= options.nodes || script.helper.empty() || script.exit_code < 0 ||
        script.exit_code > 255) {
      return Error{"a helper script needs a node of the cluster, a helper name and an exit code "
                   "in 0..255"};
    }
  }
  if (options.helper_delay.ns < 0) return Error{"the helper delay must not be negative"};
  const SplitBrainScenario& split = options.split_brain;
  bool any_fault = false;
  for (const std::uint32_t weight : options.faults) any_fault = any_fault || weight != 0;
  if (split.enabled && (options.nodes != 2 || options.crash_primary || any_fault ||
                        workload.read_percent != 0 || workload.operations < 6 ||
                        split.primaries_at_heal > 2 || split.share_second_percent > 100)) {
    return Error{"the split-brain scenario needs 2 nodes, no crash, no faults, no reads, at "
                 "least 6 operations, 0..2 Primaries at the heal and a share of 0..100 %"};
  }
  if (options.admin.kind != AdminScenario::Kind::none &&
      (options.crash_primary || any_fault || split.enabled)) {
    return Error{"the admin scenario needs no crash, no faults and no split-brain scenario"};
  }
  if (options.diskless_client &&
      (split.enabled || options.admin.kind != AdminScenario::Kind::none)) {
    return Error{"a diskless client runs neither the split-brain nor the admin scenario"};
  }
  return Status::success();
}

namespace {
// The liveness flags, when they differ from the defaults.
std::string bound_flags(const SimOptions& options) {
  const SimOptions defaults;
  std::string flags;
  if (options.liveness_bound != defaults.liveness_bound) {
    flags += " --liveness-bound-ms " + std::to_string(options.liveness_bound.ns / 1'000'000);
  }
  if (options.resync_bound != defaults.resync_bound) {
    flags += " --resync-bound-ms " + std::to_string(options.resync_bound.ns / 1'000'000);
  }
  if (options.c_max_rate_kib != defaults.c_max_rate_kib) {
    flags += " --c-max-rate-kib " + std::to_string(options.c_max_rate_kib);
  }
  return flags;
}
}  // namespace

std::string replay_command(const SimOptions& options) {
  std::string command = "ditto-sim run --seed " + std::to_string(options.seed);
  if (options.csums) command += " --csums-alg crc32c";
  if (options.csums_after_crash_only) command += " --csums-after-crash-only";
  if (options.swarm_operations_max != 0) {
    command += " --swarm --ops " + std::to_string(options.swarm_operations_max);
    // The quorum draw comes from a stream of its own: a drawn quorum replays with the flag, an
    // undrawn one the same with or without it.
    if (options.quorum.enabled()) command += " --swarm-quorum";
    if (options.read_balancing != core::ReadBalancing::prefer_local) command += " --swarm-reads";
    if (options.diskless_client) command += " --swarm-diskless";
    if (options.protocol == Protocol::a) command += " --swarm-congestion";
    std::string list;
    for (std::size_t position = 0; position < netem::fault_class_count; ++position) {
      if (options.swarm_excluded[position] == 0) continue;
      if (!list.empty()) list += ",";
      list += netem::name(static_cast<netem::FaultClass>(position));
    }
    return (list.empty() ? command : command + " --without " + list) + bound_flags(options);
  }
  command += " --nodes " + std::to_string(options.nodes) + " --ops " +
             std::to_string(options.workload.operations);
  bool any_fault = false;
  for (const std::uint32_t weight : options.faults) any_fault = any_fault || weight != 0;
  if (any_fault) {
    std::string list;
    for (std::size_t position = 0; position < netem::fault_class_count; ++position) {
      if (options.faults[position] == 0) continue;
      if (!list.empty()) list += ",";
      list += netem::name(static_cast<netem::FaultClass>(position));
    }
    command += " --faults " + list;
  }
  if (options.protocol != Protocol::c) {
    command += " --protocol " + std::string(to_string(options.protocol));
  }
  if (options.on_congestion != core::OnCongestion::block) {
    command += " --on-congestion " + std::string(core::to_string(options.on_congestion)) +
               " --congestion-fill " + std::to_string(options.congestion_fill_sectors);
  }
  if (options.quorum.enabled()) {
    command += " --quorum " + core::to_string(options.quorum.quorum) + " --on-no-quorum " +
               std::string(core::to_string(options.quorum.on_no_quorum));
  }
  return command + bound_flags(options);
}

SimOptions swarm_options(std::uint64_t seed, std::uint64_t operations_max,
                         const netem::FaultWeights& excluded, bool draw_quorum, bool draw_reads,
                         bool draw_diskless, bool draw_congestion) {
  Prng prng = Prng::derive(seed, stream_swarm);
  SimOptions options;
  options.seed = seed;
  options.swarm_operations_max = operations_max;
  options.nodes = static_cast<std::uint32_t>(prng.between(sim_nodes_min, sim_nodes_max));
  const std::uint64_t low = operations_max / 4 > 0 ? operations_max / 4 : 1;
  options.workload.operations = prng.between(low, operations_max);
  Prng added = Prng::derive(seed, stream_swarm_added);
  options.faults = netem::swarm_weights(prng, added);
  options.swarm_excluded = excluded;
  for (std::size_t position = 0; position < netem::fault_class_count; ++position) {
    if (excluded[position] != 0) options.faults[position] = 0;
  }
  options.faults_per_1000_ops = static_cast<std::uint32_t>(prng.between(5, 50));
  options.crash_primary = prng.chance(1, 3);
  Prng activity_log = Prng::derive(seed, stream_swarm_activity_log);
  if (activity_log.chance(1, 3)) {
    options.al_extents = static_cast<std::uint32_t>(
        activity_log.between(ActivityLog::node_al_extents_min, 16));
  }
  // With `draw_reads`, any read-balancing policy, and with `draw_diskless` one cluster in three
  // with a diskless client, each from a stream of its own (the other draws stay as they were).
  if (draw_reads) {
    Prng reads = Prng::derive(seed, stream_swarm_reads);
    options.read_balancing = static_cast<core::ReadBalancing>(
        reads.between(0, static_cast<std::uint64_t>(core::ReadBalancing::striping_1m)));
  }
  Prng diskless = Prng::derive(seed, stream_swarm_diskless);
  options.diskless_client = draw_diskless && diskless.chance(1, 3);
  Prng congestion = Prng::derive(seed, stream_swarm_congestion);
  if (draw_congestion && congestion.chance(1, 3)) {
    options.protocol = Protocol::a;
    options.on_congestion = congestion.chance(1, 2) ? core::OnCongestion::pull_ahead
                                                    : core::OnCongestion::disconnect;
    options.congestion_fill_sectors = static_cast<std::uint32_t>(congestion.between(1, 32) * 8);
  }
  Prng quorum = Prng::derive(seed, stream_swarm_quorum);
  if (draw_quorum && options.nodes >= 3 && quorum.chance(1, 3)) {
    options.quorum.quorum = core::QuorumRule{core::QuorumRule::Kind::majority, 0};
    options.quorum.on_no_quorum =
        quorum.chance(1, 2) ? core::OnNoQuorum::io_error : core::OnNoQuorum::suspend_io;
  }
  return options;
}

}  // namespace ditto::sim
