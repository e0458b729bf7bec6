// Reads through peers on the whole simulator (drbd9-semantics.md §9): a diskless client reads
// and writes through its peers, its reads are checked against the block oracle (the latest
// acknowledged tag or a later one), and a read whose peer is cut off mid-read is retried on
// another peer or fails cleanly; it never hangs.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>

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

// Found when the swarm drew read-balancing policies (swarm_options' draw_reads, now
// --swarm-reads): an UpToDate node ended without a block it held when the write was
// acknowledged (seed 31: 128K-striping, seed 550: 1M-striping, 4 nodes each). Both pass since
// the merges after the read path landed (per-run node seeds, resync runs), which changed their
// interleavings; the cause was not isolated. Kept as regressions of the exact draws.
// Replay: ditto-sim run --seed 31 --swarm --ops 400 --swarm-reads --trace
TEST(ReadScenarios, RegressionSeed31StripedReadsKeepEveryAcknowledgedBlock) {
  const SimOptions options = swarm_options(31, 400, {}, false, true);
  EXPECT_EQ(options.read_balancing, core::ReadBalancing::striping_128k);
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
}

TEST(ReadScenarios, RegressionSeed550StripedReadsKeepEveryAcknowledgedBlock) {
  const SimOptions options = swarm_options(550, 400, {}, false, true);
  EXPECT_EQ(options.read_balancing, core::ReadBalancing::striping_1m);
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
}

// Found when the swarm drew diskless clients (--swarm-diskless), 3 nodes: the diskless Primary
// loses its links to both Secondaries while a write is in flight; one Secondary stored it, the
// other never got it, and the two stay connected to each other. The Primary's new generation
// never reaches them and it holds no bitmap, so when it returns both Secondaries are UpToDate
// on the same generation with different blocks ("replicas differ"). A Secondary that loses its
// Primary with unacknowledged writes marked toward a connected Secondary reconciles with it
// (DRBD's resync after a lost Primary). Replay:
// ditto-sim run --seed 759 --swarm --ops 400 --swarm-reads --swarm-diskless --trace
TEST(ReadScenarios, RegressionDisklessSwarmSeedsSecondariesReconcileAfterLosingThePrimary) {
  for (const std::uint64_t seed : {167u, 248u, 260u, 759u}) {
    SCOPED_TRACE(seed);
    const SimOptions options = swarm_options(seed, 400, {}, false, true, true);
    ASSERT_TRUE(options.diskless_client);
    const RunResult result = run_simulation(options);
    EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
    EXPECT_EQ(result.divergent_blocks, 0u);
  }
}

// A SyncTarget whose source stops being one mid-resync (its disk detached) stays Inconsistent
// while an UpToDate peer is connected: that connection had already had its one handshake rerun
// (resync_from_up_to_date_peer) before this resync began, so nothing asked it again and the
// liveness oracle found the target Inconsistent 30 s after the faults stopped. Losing the source
// allows the rerun again. Seed 515 (4 nodes, --swarm-reads) and 910 (5 nodes, diskless client).
// Replay: ditto-sim run --seed 910 --swarm --ops 400 --swarm-diskless --trace
TEST(ReadScenarios, RegressionSwarmSeedsATargetWhoseSourceDetachedResyncsFromAnotherPeer) {
  for (const auto& [seed, diskless] : {std::pair{515u, false}, std::pair{910u, true}}) {
    SCOPED_TRACE(seed);
    const SimOptions options = swarm_options(seed, 400, {}, false, true, diskless);
    ASSERT_EQ(options.diskless_client, diskless);
    const RunResult result = run_simulation(options);
    EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
    EXPECT_GE(result.converged_after_ns, 0);  // the liveness oracle saw the cluster converge
  }
}

// Seed 870 (4 nodes, diskless client, partition_halves, slow and reordering disks; shrunk to 2
// faults and 25 operations): the diskless Primary node0 replicated only to UpToDate peers and
// to its own SyncTargets, so while node2 was SyncTarget of node3 the Primary's writes (tag 19 on
// block 8108) reached node3 alone, which marked them out of sync toward node2. The link broke
// before that leftover was resynced; node2, UpToDate again and replicated to, marked 3 blocks
// of its own toward node3 while they were apart. At the next handshake both were UpToDate on
// one generation with bits on both sides (16 and 3): the lower node id became the source and
// the union of both bitmaps was copied from node2, overwriting node3's only copy of tag 19
// with tag 0 (never written). Fixed as DRBD does: a Primary replicates to every connected peer
// with a disk, an Inconsistent SyncTarget of another node included (Node::peer_replicating);
// the SyncTarget orders those writes against its source's resync data by the fences.
// Replay: ditto-sim run --seed 870 --swarm --ops 400 --swarm-diskless --trace
TEST(ReadScenarios, RegressionDisklessSwarmSeedAPrimaryReplicatesToASyncTargetOfAnotherNode) {
  const SimOptions options = swarm_options(870, 400, {}, false, false, true);
  ASSERT_TRUE(options.diskless_client);
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
}

// Not fixed yet: the last seed in 1000 that fails with a diskless client (ditto-sim campaign
// --seeds 1000 --swarm --swarm-diskless --ops 400), which keeps --swarm-diskless out of the CI
// swarm. Seed 871: two UpToDate connected nodes hold different acknowledged writes on 3
// blocks; not analysed. Replay:
// ditto-sim run --seed 871 --swarm --ops 400 --swarm-diskless --trace
TEST(ReadScenarios, DISABLED_RegressionDisklessSwarmSeed871KeepsEveryAcknowledgedBlock) {
  const SimOptions options = swarm_options(871, 400, {}, false, false, true);
  ASSERT_TRUE(options.diskless_client);
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << describe(result, 5);
}

TEST(ReadScenarios, TheSwarmDrawsDisklessClientsAndPoliciesOnlyWhenAsked) {
  std::uint32_t diskless = 0;
  std::uint32_t policies = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    const SimOptions plain = swarm_options(seed, 400);
    EXPECT_FALSE(plain.diskless_client);
    EXPECT_EQ(plain.read_balancing, core::ReadBalancing::prefer_local);
    const SimOptions drawn = swarm_options(seed, 400, {}, false, true, true);
    // The other draws stay as they were (streams of their own).
    EXPECT_EQ(drawn.nodes, plain.nodes);
    EXPECT_EQ(drawn.workload.operations, plain.workload.operations);
    EXPECT_EQ(drawn.faults, plain.faults);
    EXPECT_TRUE(validate(drawn)) << seed;
    diskless += drawn.diskless_client ? 1 : 0;
    policies += drawn.read_balancing != core::ReadBalancing::prefer_local ? 1 : 0;
    // The replay command carries the flags a draw needs.
    const std::string replay = replay_command(drawn);
    EXPECT_EQ(replay.find("--swarm-diskless") != std::string::npos, drawn.diskless_client);
    EXPECT_EQ(replay.find("--swarm-reads") != std::string::npos,
              drawn.read_balancing != core::ReadBalancing::prefer_local);
  }
  EXPECT_GT(diskless, 60u);  // about one in three
  EXPECT_LT(diskless, 140u);
  EXPECT_GT(policies, 200u);  // any policy but prefer-local
}

}  // namespace
}  // namespace ditto::sim
