// Reads through peers on the whole simulator (drbd9-semantics.md §9): a diskless client reads
// and writes through its peers, its reads are checked against the block oracle (the latest
// acknowledged tag or a later one), and a read whose peer is cut off mid-read is retried on
// another peer or fails cleanly; it never hangs.
#include <gtest/gtest.h>

#include <cstdint>

#include "sim/simulation.h"
#include "tests/sim/run_description.h"

namespace ditto::sim {
namespace {

SimOptions diskless_client(std::uint64_t seed, std::uint32_t nodes, core::ReadBalancing policy) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.workload.operations = 400;
  options.crash_primary = false;
  options.diskless_client = true;
  options.read_balancing = policy;
  return options;
}

TEST(ReadScenarios, ADisklessPrimaryReadsAndWritesThroughTwoPeers) {
  for (const core::ReadBalancing policy :
       {core::ReadBalancing::prefer_local, core::ReadBalancing::round_robin,
        core::ReadBalancing::least_pending, core::ReadBalancing::striping_32k}) {
    for (std::uint64_t seed = 1; seed <= 3; ++seed) {
      const RunResult result = run_simulation(diskless_client(seed, 3, policy));
      SCOPED_TRACE(core::to_string(policy));
      EXPECT_EQ(result.violation_count, 0u) << describe(result);
      EXPECT_EQ(result.workload.completed, result.operations);
      EXPECT_GT(result.workload.writes_acknowledged, 100u);
      EXPECT_EQ(result.workload.writes_failed, 0u);
      // Every read came from a peer, returned an allowed tag (the oracle), and none failed.
      EXPECT_GT(result.workload.reads_checked, 50u);
      EXPECT_EQ(result.workload.reads_failed, 0u);
      EXPECT_EQ(result.remote_reads, result.workload.reads_checked);
      // Spread over both peers; the client serves none.
      EXPECT_EQ(result.read_replies_sent[0], 0u);
      EXPECT_GT(result.read_replies_sent[1], result.remote_reads / 5) << describe(result);
      EXPECT_GT(result.read_replies_sent[2], result.remote_reads / 5) << describe(result);
      EXPECT_EQ(result.read_replies_sent[1] + result.read_replies_sent[2], result.remote_reads);
    }
  }
}

TEST(ReadScenarios, PreferRemoteOnAnUpToDatePrimaryReadsEverythingFromItsPeers) {
  SimOptions options = diskless_client(4, 3, core::ReadBalancing::prefer_remote);
  options.diskless_client = false;
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result);
  EXPECT_GT(result.workload.reads_checked, 50u);
  EXPECT_EQ(result.remote_reads, result.workload.reads_checked);
  EXPECT_EQ(result.read_replies_sent[0], 0u);
}

TEST(ReadScenarios, AReadWhosePeerIsCutOffMidReadIsRetriedOnTheOtherPeer) {
  SimOptions options = diskless_client(5, 3, core::ReadBalancing::round_robin);
  options.cut_read_peer_at = 20;
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result);
  EXPECT_EQ(result.workload.completed, result.operations);  // nothing hung
  EXPECT_EQ(result.workload.reads_failed, 0u);              // the other peer served it
  EXPECT_GT(result.messages_dropped, 0u);                   // the cut lost the request
  EXPECT_EQ(result.remote_reads, result.workload.reads_checked);
}

TEST(ReadScenarios, AReadWhoseOnlyPeerIsCutOffMidReadFailsCleanly) {
  SimOptions options = diskless_client(6, 2, core::ReadBalancing::prefer_local);
  options.cut_read_peer_at = 60;
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result);
  EXPECT_EQ(result.workload.completed, result.operations);  // nothing hung
  // The cut read and those issued until the peer is back fail (I/O errors are fast, so the
  // client issues many then); every read before the cut returned the right data.
  EXPECT_GE(result.workload.reads_failed, 1u);
  EXPECT_GE(result.workload.reads_checked, 59u);
}

// Found when the swarm drew read-balancing policies (swarm_options' draw_reads; not yet in the
// CI campaigns): an UpToDate node ends without a block it held when the write was acknowledged
// (seed 31: 128K-striping, seed 550: 1M-striping, 4 nodes each). Reads go to peers there, so
// the interleaving differs from the prefer-local runs; whether the read path or a resync the
// new interleaving reaches is at fault is not known yet.
// Replay: these tests (swarm_options with draw_reads has no command-line flag yet).
TEST(ReadScenarios, DISABLED_RegressionSeed31StripedReadsKeepEveryAcknowledgedBlock) {
  const RunResult result = run_simulation(swarm_options(31, 400, {}, false, true));
  EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
}

TEST(ReadScenarios, DISABLED_RegressionSeed550StripedReadsKeepEveryAcknowledgedBlock) {
  const RunResult result = run_simulation(swarm_options(550, 400, {}, false, true));
  EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
}

}  // namespace
}  // namespace ditto::sim
