// The progress marks of a running resync (PeerStatus::sync_progress), from which status prints
// the resync's rates and ETA: both sides keep them, at least sync_mark_step apart, and time
// spent paused counts as paused, not as progress (tests/core/node_harness.h drives the nodes).
#include <gtest/gtest.h>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

constexpr std::uint64_t blocks_behind = 100;

// 40 KiB/s: one 4 KiB block per 100 ms resync step, so the resync of 100 blocks lasts 10 s.
Cluster rate_limited_cluster() {
  return Cluster(2, [](NodeConfig& config) {
    config.c_plan_ahead_deciseconds = 0;
    config.resync_rate_kib = 40;
  });
}

// Node 1 misses `blocks_behind` blocks written on Primary node 0, then reconnects.
void reconnect_behind(Cluster& cluster) {
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.settle();
  cluster.disconnect(0, 1);
  for (std::uint64_t block = 0; block < blocks_behind; ++block) {
    cluster.write(0, 10 + block, block * 8, 100 + block);
  }
  cluster.settle();
  cluster.connect(0, 1);
}

void run_for(Cluster& cluster, Duration duration) {
  const Instant end = cluster.now + duration;
  while (cluster.now < end) {
    cluster.drain();
    if (!cluster.fire_next_timer()) break;  // nothing left to do
  }
  cluster.drain();
}

TEST(SyncProgress, ARateLimitedResyncKeepsMarksAtLeastAStepApartOnBothSides) {
  Cluster cluster = rate_limited_cluster();
  reconnect_behind(cluster);
  const Instant start = cluster.now;
  run_for(cluster, Duration::from_ms(7000));

  const PeerStatus target = *cluster.nodes[1].peer(NodeId{0});
  ASSERT_EQ(target.replication, ReplicationState::sync_target);
  const SyncProgress& progress = target.sync_progress;
  EXPECT_TRUE(progress.running);
  EXPECT_EQ(progress.started.blocks_left, blocks_behind);
  EXPECT_LT(progress.started.at - start, Duration::from_ms(100));
  EXPECT_GE(progress.previous_mark.at - progress.started.at, sync_mark_step);
  EXPECT_GE(progress.mark.at - progress.previous_mark.at, sync_mark_step);
  EXPECT_LT(progress.mark.blocks_left, progress.previous_mark.blocks_left);
  // One block per 100 ms step: about 30 blocks between marks 3 s apart.
  const std::uint64_t between = progress.previous_mark.blocks_left - progress.mark.blocks_left;
  EXPECT_GE(between, 28u);
  EXPECT_LE(between, 32u);
  EXPECT_EQ(target.sync_total_blocks(), blocks_behind);
  EXPECT_EQ(target.sync_blocks_left(), blocks_behind - target.resync_done_blocks);

  // The SyncSource counts what its bitmap still marks, and notes the same marks.
  const PeerStatus source = *cluster.nodes[0].peer(NodeId{1});
  ASSERT_EQ(source.replication, ReplicationState::sync_source);
  EXPECT_EQ(source.sync_total_blocks(), blocks_behind);
  EXPECT_EQ(source.sync_blocks_left(), source.out_of_sync_bytes / 4096);
  EXPECT_GT(source.resync_percent_done(), 50.0);
  EXPECT_LT(source.resync_percent_done(), 90.0);
  EXPECT_EQ(source.sync_progress.started.blocks_left, blocks_behind);
  EXPECT_LT(source.sync_progress.mark.blocks_left, source.sync_progress.previous_mark.blocks_left);

  run_for(cluster, Duration::from_ms(4000));
  const PeerStatus finished = *cluster.nodes[1].peer(NodeId{0});
  EXPECT_EQ(finished.replication, ReplicationState::established);
  EXPECT_EQ(finished.sync_blocks_left(), 0u);
  EXPECT_EQ(finished.sync_total_blocks(), 0u);
}

TEST(SyncProgress, TimeSpentPausedCountsAsPausedNotAsProgress) {
  Cluster cluster = rate_limited_cluster();
  reconnect_behind(cluster);
  run_for(cluster, Duration::from_ms(2000));
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, PauseSync{NodeId{0}}).ok);
  cluster.collect(1);
  cluster.drain();
  ASSERT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::paused_sync_target);
  cluster.now = cluster.now + Duration::from_ms(5000);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, ResumeSync{NodeId{0}}).ok);
  cluster.collect(1);
  run_for(cluster, Duration::from_ms(1000));

  const SyncProgress progress = cluster.nodes[1].peer(NodeId{0})->sync_progress;
  ASSERT_TRUE(progress.running);
  EXPECT_GE(progress.paused, Duration::from_ms(5000));
  EXPECT_LT(progress.paused, Duration::from_ms(5200));
  EXPECT_FALSE(progress.was_paused);
}

}  // namespace
}  // namespace ditto::core
