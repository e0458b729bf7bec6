// Online verify, invalidate and invalidate-remote on the whole simulator (SimOptions::admin,
// sim/simulation_admin.cpp): real cores, simulated disks and network. After the workload node 0
// (Primary) verifies against node 1, or node 1 is invalidated; the end-of-run oracles demand
// every node UpToDate and the replicas byte-identical (a corrupted block left behind is a
// silent divergence between two connected UpToDate nodes).
#include <gtest/gtest.h>

#include <string>

#include "sim/simulation.h"

namespace ditto::sim {
namespace {

std::string describe(const RunResult& result) {
  std::string text = "seed " + std::to_string(result.seed) + ": " +
                     std::to_string(result.violation_count) + " violations";
  for (const std::string& violation : result.violations) text += "\n  " + violation;
  return text;
}

constexpr std::uint64_t volume_blocks = 2048;

SimOptions admin_options(std::uint64_t seed, AdminScenario::Kind kind, std::uint32_t corrupt) {
  SimOptions options;
  options.seed = seed;
  options.nodes = 2;
  options.crash_primary = false;
  options.volume_size_bytes = volume_blocks * 4096;  // 8 MiB: verify and full sync are short
  options.workload.operations = 300;
  options.workload.read_percent = 20;
  options.settle_time = Duration::from_ms(4'000);
  options.admin.kind = kind;
  options.admin.corrupt_blocks = corrupt;
  return options;
}

void expect_all_up_to_date_and_identical(const RunResult& result) {
  EXPECT_EQ(result.violation_count, 0u) << describe(result);
  EXPECT_EQ(result.divergent_blocks, 0u) << describe(result);
  ASSERT_EQ(result.final_nodes.size(), 2u);
  for (const RunResult::NodeSummary& node : result.final_nodes) {
    EXPECT_EQ(node.disk, DiskState::up_to_date) << describe(result);
  }
  EXPECT_EQ(result.final_nodes[0].disk_digest, result.final_nodes[1].disk_digest)
      << describe(result);
}

TEST(Verify, VerifyOfIdenticalReplicasFindsNoBlockOutOfSync) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const RunResult result = run_simulation(admin_options(seed, AdminScenario::Kind::verify, 0));
    EXPECT_EQ(result.verify_runs, 1u) << describe(result);
    EXPECT_EQ(result.verify_out_of_sync_blocks, 0u) << describe(result);
    expect_all_up_to_date_and_identical(result);
  }
}

TEST(Verify, VerifyFindsExactlyTheSilentlyCorruptedBlocksAndTheNextResyncRepairsThem) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const RunResult result = run_simulation(admin_options(seed, AdminScenario::Kind::verify, 7));
    EXPECT_EQ(result.blocks_corrupted, 7u) << describe(result);
    EXPECT_EQ(result.verify_runs, 1u) << describe(result);
    EXPECT_EQ(result.verify_out_of_sync_blocks, result.blocks_corrupted) << describe(result);
    // Only the marked blocks moved: a resync of exactly those after the reconnect.
    EXPECT_EQ(result.resync_blocks, result.blocks_corrupted) << describe(result);
    expect_all_up_to_date_and_identical(result);
  }
}

TEST(Verify, InvalidateResyncsTheWholeDeviceAndBothEndUpToDate) {
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    const RunResult result =
        run_simulation(admin_options(seed, AdminScenario::Kind::invalidate, 0));
    EXPECT_EQ(result.resync_blocks, volume_blocks) << describe(result);
    expect_all_up_to_date_and_identical(result);
  }
}

TEST(Verify, InvalidateRemoteResyncsTheWholeDeviceOfThePeerAndBothEndUpToDate) {
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    const RunResult result =
        run_simulation(admin_options(seed, AdminScenario::Kind::invalidate_remote, 0));
    EXPECT_EQ(result.resync_blocks, volume_blocks) << describe(result);
    expect_all_up_to_date_and_identical(result);
  }
}

}  // namespace
}  // namespace ditto::sim
