// Fencing on the whole simulator (drbd9-semantics.md §7): real cores, simulated disks, network
// and handlers (SimOptions::helper_scripts: a scripted exit code, answered after helper_delay).
// Every fence-peer exit code against every fencing policy, in two scenarios:
// - the Primary is cut off from its peer: it runs fence-peer; with resource-and-stonith its
//   writes freeze until the handler succeeds, or until the connection returns when it fails;
//   no write is lost or failed, the replicas end identical, the fenced peer is unfenced after
//   its resync;
// - node 1 is promoted during the partition: it runs fence-peer on node 0 first; a handler
//   that fenced node 0 lets it promote (and the split brain that follows is resolved by
//   after-sb-0pri), one that did not gets the promotion refused and no split brain follows.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "sim/schedule.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {

using core::FencingPolicy;

// Long enough to tell a write frozen for the handler from a slow one (below 40 ms here).
constexpr Duration helper_delay = Duration::from_ms(150);
constexpr Duration partition_length = Duration::from_ms(600);
// resource-only freezes nothing, and the workload ends about 50 ms into the partition (then the
// faults heal): its handler answers sooner, or its verdict would be discarded by the heal.
constexpr Duration quick_helper_delay = Duration::from_ms(10);

std::string describe(const RunResult& result) {
  std::string text = "seed " + std::to_string(result.seed) + ": " +
                     std::to_string(result.violation_count) + " violations, fence-peer calls " +
                     std::to_string(result.fence_peer_calls) + ", write latency max " +
                     std::to_string(result.workload.write_latency_ns_max / 1'000'000) + " ms, " +
                     std::to_string(result.sim_seconds) + " s simulated";
  for (const std::string& violation : result.violations) text += "\n  " + violation;
  return text;
}

bool fences(FencingPolicy policy, int code) {
  return policy != FencingPolicy::dont_care && (code == 3 || code == 4 || code == 5 || code == 7);
}

SimOptions fencing_options(FencingPolicy policy, std::uint64_t seed) {
  SimOptions options;
  options.seed = seed;
  options.nodes = 2;
  options.crash_primary = false;
  options.fencing = policy;
  options.helper_delay =
      policy == FencingPolicy::resource_only ? quick_helper_delay : helper_delay;
  return options;
}

// Node 0 (Primary) is isolated after operation 100 for partition_length.
Schedule isolated_primary(FencingPolicy policy, int code, std::uint64_t seed) {
  SimOptions options = fencing_options(policy, seed);
  options.workload.operations = 400;
  options.helper_scripts = {{0, "fence-peer", code}};
  Schedule schedule = make_schedule(options, false);
  FaultEvent partition;
  partition.fault = netem::FaultClass::partition_isolate;
  partition.after_op = 100;
  partition.node = 0;
  partition.peer = 1;
  partition.parameter = 0;  // isolate node 0
  partition.duration_ns = partition_length.ns;
  schedule.faults = {partition};
  return schedule;
}

// The split-brain scenario: partitioned at a third of the operations, node 1 is promoted too;
// node 0's fence-peer reports node 1 outdated, node 1's says `code`.
SimOptions promotion_during_partition(FencingPolicy policy, int code, std::uint64_t seed) {
  SimOptions options = fencing_options(policy, seed);
  options.workload.operations = 300;
  options.workload.read_percent = 0;
  options.split_brain.enabled = true;
  options.split_brain.primaries_at_heal = 0;
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  options.helper_scripts = {{0, "fence-peer", 4}, {1, "fence-peer", code}};
  return options;
}

class FencingScenario : public testing::TestWithParam<std::tuple<FencingPolicy, int>> {};

TEST_P(FencingScenario, AnIsolatedPrimaryFreezesAsThePolicySaysAndLosesNoWrite) {
  const auto [policy, code] = GetParam();
  const bool stonith = policy == FencingPolicy::resource_and_stonith;
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    const RunResult result = run_schedule(isolated_primary(policy, code, seed));
    EXPECT_EQ(result.violation_count, 0u) << describe(result);
    EXPECT_EQ(result.faults_fired[netem::index(netem::FaultClass::partition_isolate)], 1u);
    if (policy == FencingPolicy::dont_care) {
      EXPECT_EQ(result.fence_peer_calls, 0u);
    } else {
      EXPECT_GE(result.fence_peer_calls, 1u) << describe(result);
    }
    // Frozen writes wait for the handler; after a failed one, for the connection to return.
    const std::int64_t latency = result.workload.write_latency_ns_max;
    if (!stonith) {
      EXPECT_LT(latency, helper_delay.ns) << describe(result);
    } else if (fences(policy, code)) {
      EXPECT_GE(latency, helper_delay.ns) << describe(result);
      EXPECT_LT(latency, partition_length.ns) << describe(result);
    } else {
      EXPECT_GE(latency, partition_length.ns - helper_delay.ns) << describe(result);
    }
    // Nothing fails, nothing diverges; the fenced peer is unfenced once resynced.
    EXPECT_EQ(result.workload.writes_failed, 0u) << describe(result);
    EXPECT_GT(result.workload.writes_acknowledged, 100u);
    EXPECT_EQ(result.divergent_blocks, 0u);
    EXPECT_GE(result.converged_after_ns, 0) << describe(result);
    EXPECT_EQ(result.unfence_peer_calls > 0, fences(policy, code)) << describe(result);
    ASSERT_EQ(result.final_nodes.size(), 2u);
    EXPECT_EQ(result.final_nodes[0].disk, DiskState::up_to_date);
    EXPECT_EQ(result.final_nodes[1].disk, DiskState::up_to_date);
    EXPECT_EQ(result.final_nodes[0].disk_digest, result.final_nodes[1].disk_digest);
  }
}

TEST_P(FencingScenario, APromotionDuringThePartitionNeedsItsPeerFenced) {
  const auto [policy, code] = GetParam();
  const bool promoted = policy == FencingPolicy::dont_care || fences(policy, code);
  const RunResult result = run_simulation(promotion_during_partition(policy, code, 1));
  EXPECT_EQ(result.violation_count, 0u) << describe(result);
  EXPECT_EQ(result.promotions_refused, promoted ? 0u : 1u) << describe(result);
  // Two Primaries wrote: the split brain is found on both sides and resolved; one Primary:
  // none is found.
  EXPECT_EQ(result.split_brain_reports, promoted ? 2u : 0u) << describe(result);
  EXPECT_EQ(result.workload.writes_failed, 0u) << describe(result);
  ASSERT_EQ(result.final_nodes.size(), 2u);
  for (const RunResult::NodeSummary& node : result.final_nodes) {
    EXPECT_EQ(node.disk, DiskState::up_to_date) << describe(result);
    EXPECT_EQ(node.role, Role::secondary);
  }
  EXPECT_EQ(result.final_nodes[0].disk_digest, result.final_nodes[1].disk_digest);
}

std::string name(const testing::TestParamInfo<FencingScenario::ParamType>& info) {
  std::string text = core::to_string(std::get<0>(info.param));
  for (char& c : text) {
    if (c == '-') c = '_';
  }
  return text + "_exit_" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(EveryPolicyAndExitCode, FencingScenario,
                         testing::Combine(testing::Values(FencingPolicy::dont_care,
                                                          FencingPolicy::resource_only,
                                                          FencingPolicy::resource_and_stonith),
                                          testing::Values(0, 1, 3, 4, 5, 6, 7)),
                         name);

TEST(FencingScenario, HelperResultsAreDeliveredThroughTheEventQueueDeterministically) {
  const Schedule schedule = isolated_primary(FencingPolicy::resource_and_stonith, 4, 3);
  const RunResult first = run_schedule(schedule);
  const RunResult second = run_schedule(schedule);
  EXPECT_GE(first.helper_results_delivered, 1u);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
}

TEST(FencingScenario, AScheduleFileKeepsThePolicyAndTheHandlerScripts) {
  const Schedule schedule = isolated_primary(FencingPolicy::resource_and_stonith, 6, 3);
  const Result<Schedule> read = schedule_from_json(to_json(schedule));
  ASSERT_TRUE(read.ok()) << read.error().message;
  const SimOptions& options = read.value().options;
  EXPECT_EQ(options.fencing, FencingPolicy::resource_and_stonith);
  EXPECT_EQ(options.helper_delay, helper_delay);
  ASSERT_EQ(options.helper_scripts.size(), 1u);
  EXPECT_EQ(options.helper_scripts[0].helper, "fence-peer");
  EXPECT_EQ(options.helper_scripts[0].exit_code, 6);
  EXPECT_EQ(run_schedule(read.value()).trace_hash, run_schedule(schedule).trace_hash);
}

}  // namespace
}  // namespace ditto::sim
