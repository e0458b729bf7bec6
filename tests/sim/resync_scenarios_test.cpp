// Resync on the whole simulator: real cores, simulated disks and network. Each scenario checks
// the final states (every node Connected and UpToDate) and the data (replicas byte-identical:
// the end-of-run oracle fails a fully connected, UpToDate cluster with any divergent block).
// The exact block counts are checked by the hand-driven cores in tests/core/node_resync_test.cpp.
#include <gtest/gtest.h>

#include <string>

#include "sim/simulation.h"
#include "tests/sim/run_description.h"

namespace ditto::sim {
namespace {

SimOptions resync_options(std::uint64_t seed, std::uint32_t nodes, const char* faults) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.crash_primary = false;
  options.volume_size_bytes = 8ull * 1024 * 1024;  // 2048 blocks: resyncs are short
  options.workload.operations = 400;
  options.workload.read_percent = 20;
  options.faults = netem::parse_fault_list(faults).value();
  options.faults_per_1000_ops = 10;
  options.settle_time = Duration::from_ms(3'000);  // time for the last resync to finish
  return options;
}

void expect_converged_and_identical(const RunResult& result) {
  EXPECT_EQ(result.violation_count, 0u) << describe(result);
  EXPECT_EQ(result.divergent_blocks, 0u) << describe(result);
  EXPECT_GE(result.converged_after_ns, 0) << describe(result);
}

TEST(ResyncScenario, SecondaryAwayForAWhileThenBackOnlyTheBlocksWrittenMeanwhileAreResynced) {
  std::uint64_t resynced = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    const RunResult result = run_simulation(resync_options(seed, 2, "partition_isolate"));
    expect_converged_and_identical(result);
    // Partial resyncs only: far fewer blocks than a full sync of the 2048-block volume would
    // move for every partition.
    EXPECT_LT(result.resync_blocks, 2048u) << describe(result);
    resynced += result.resync_blocks;
  }
  EXPECT_GT(resynced, 0u);  // some Secondary did come back behind
}

TEST(ResyncScenario, ResyncInterruptedTwiceStillConverges) {
  std::uint64_t resynced = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    SimOptions options =
        resync_options(seed, 2, "partition_isolate,connection_reset,link_flapping");
    options.faults_per_1000_ops = 30;  // resets land while resyncs run
    const RunResult result = run_simulation(options);
    expect_converged_and_identical(result);
    resynced += result.resync_blocks;
  }
  EXPECT_GT(resynced, 0u);
}

TEST(ResyncScenario, ThreeGenerationsAndAChainOfNodesDirectionIsRightEveryTime) {
  std::uint64_t resynced = 0;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    SimOptions options = resync_options(seed, 3, "partition_ring,partition_isolate");
    options.faults_per_1000_ops = 20;
    const RunResult result = run_simulation(options);
    expect_converged_and_identical(result);
    resynced += result.resync_blocks;
  }
  EXPECT_GT(resynced, 0u);
}

}  // namespace
}  // namespace ditto::sim

namespace ditto::sim {
namespace {

// A Primary crash with writes in flight, a failover, and the crashed node back: it resyncs what
// its activity log held plus what the new Primary wrote meanwhile, not its whole volume.
SimOptions primary_crash_options(std::uint64_t seed, std::uint32_t al_extents) {
  SimOptions options;
  options.seed = seed;
  options.nodes = 2;
  options.crash_primary = true;
  options.al_extents = al_extents;
  options.volume_size_bytes = 256ull * 1024 * 1024;  // 64 extents of 4 MiB, 65536 blocks
  options.workload.operations = 300;
  options.workload.read_percent = 10;
  options.settle_time = Duration::from_ms(5'000);
  return options;
}

TEST(ResyncScenario, APrimaryCrashResyncsOnlyTheHotExtentsAndTheWritesMadeSinceAndEndsIdentical) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    // Nine slots: at the crash at most nine extents (9216 of 65536 blocks) are hot; the
    // survivor then writes at most 150 operations of a few blocks each.
    const RunResult result = run_simulation(primary_crash_options(seed, 9));
    expect_converged_and_identical(result);
    EXPECT_TRUE(result.crashed);
    EXPECT_GT(result.resync_blocks, 0u) << describe(result);
    EXPECT_LT(result.resync_blocks, 9216u + 1200u) << describe(result);
  }
}

// Three nodes: the crashed Primary comes back to the new Primary and to the other Secondary.
// It becomes SyncTarget of the first peer it reaches; when that resync ends it holds the new
// Primary's generation, as the other Secondary does, and the blocks it received were in sync
// with that Secondary on the source (PeersInSync): the deferred handshake with it moves only
// what still differs, not the volume once more.
// The survivors reconnect to reconcile the crashed Primary's unacknowledged writes between
// them (reconcile_after_lost_primary); with the default 100 ms reconnect delay the Primary is
// back before they are, reaches the Secondary that has not yet seen the new Primary's
// generation, and rightly resyncs twice. A short reconnect delay lets that reconcile finish
// first, so this measures only what the test is about.
TEST(ResyncScenario, ARestartedPrimaryIsResyncedOnceNotOncePerPeer) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    SimOptions options = primary_crash_options(seed, 9);
    options.nodes = 3;
    options.reconnect_delay = Duration::from_ms(5);
    const RunResult result = run_simulation(options);
    expect_converged_and_identical(result);
    EXPECT_TRUE(result.crashed);
    EXPECT_GT(result.resync_data_messages, 0u) << describe(result);
    // Once: at most nine hot extents (9216 blocks) and what the survivors wrote meanwhile.
    EXPECT_LT(result.resync_data_messages, 9216u + 1200u) << describe(result);
  }
}

// Checksum-based resync (csums-alg): node 1 is invalidated (a full resync) after `corrupt`
// acknowledged blocks of it were silently overwritten with other blocks' data, so exactly those
// differ from node 0. The network counts what moved: resync Data frames and ResyncInSync frames.
SimOptions invalidate_options(std::uint64_t seed, std::uint32_t corrupt, bool csums) {
  SimOptions options;
  options.seed = seed;
  options.nodes = 2;
  options.crash_primary = false;
  options.volume_size_bytes = 2048ull * 4096;
  options.workload.operations = 300;
  options.workload.read_percent = 20;
  options.settle_time = Duration::from_ms(4'000);
  options.admin.kind = AdminScenario::Kind::invalidate;
  options.admin.corrupt_blocks = corrupt;
  options.csums = csums;
  return options;
}

void expect_identical_up_to_date_pair(const RunResult& result) {
  expect_converged_and_identical(result);
  ASSERT_EQ(result.final_nodes.size(), 2u);
  EXPECT_EQ(result.final_nodes[0].disk, DiskState::up_to_date) << describe(result);
  EXPECT_EQ(result.final_nodes[1].disk, DiskState::up_to_date) << describe(result);
  EXPECT_EQ(result.final_nodes[0].disk_digest, result.final_nodes[1].disk_digest)
      << describe(result);
}

TEST(ResyncScenario, ChecksumResyncMovesOnlyTheDifferingBlocks) {
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    const RunResult result = run_simulation(invalidate_options(seed, 9, true));
    EXPECT_EQ(result.blocks_corrupted, 9u) << describe(result);
    EXPECT_EQ(result.resync_blocks, 2048u) << describe(result);
    EXPECT_EQ(result.resync_data_messages, result.blocks_corrupted) << describe(result);
    EXPECT_EQ(result.resync_in_sync_messages, 2048u - result.blocks_corrupted)
        << describe(result);
    expect_identical_up_to_date_pair(result);
  }
}

TEST(ResyncScenario, WithoutCsumsAlgTheSameFullResyncMovesEveryBlockInRuns) {
  const RunResult result = run_simulation(invalidate_options(1, 9, false));
  EXPECT_EQ(result.blocks_corrupted, 9u) << describe(result);
  EXPECT_EQ(result.resync_blocks, 2048u) << describe(result);
  // Runs of adjacent blocks (up to half the default fill target, 6 blocks) per Data message.
  EXPECT_GT(result.resync_data_messages, 0u) << describe(result);
  EXPECT_LE(result.resync_data_messages, 2048u / 2) << describe(result);
  EXPECT_EQ(result.resync_in_sync_messages, 0u) << describe(result);
  expect_identical_up_to_date_pair(result);
}

TEST(ResyncScenario, CsumsAfterCrashOnlyTheResyncAfterAPrimaryCrashMovesOnlyChangedBlocks) {
  for (std::uint64_t seed = 1; seed <= 2; ++seed) {
    SimOptions options = primary_crash_options(seed, 9);
    options.csums = true;
    options.csums_after_crash_only = true;
    const RunResult result = run_simulation(options);
    expect_converged_and_identical(result);
    EXPECT_TRUE(result.crashed);
    // The hot extents hold far more blocks than the crash and the failover changed.
    EXPECT_GT(result.resync_in_sync_messages, 0u) << describe(result);
    EXPECT_LT(result.resync_data_messages, result.resync_in_sync_messages) << describe(result);
  }
}

}  // namespace
}  // namespace ditto::sim
