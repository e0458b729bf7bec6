// Online verify, invalidate and invalidate-remote on hand-driven cores (node_harness.h). The
// harness completes digest reads with digest 0 unless a test completes them itself.
#include <gtest/gtest.h>

#include <map>

#include "node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

constexpr std::uint64_t volume_blocks = 256;  // the harness's 1 MiB volume

Cluster verify_cluster() {
  Cluster cluster(2, [](NodeConfig& config) { config.verify_algorithm = "crc32c"; });
  cluster.connect_all();
  cluster.settle();
  return cluster;
}

bool has_event(const Cluster& cluster, int index, const std::string& text) {
  for (const auto& [node, line] : cluster.events) {
    if (node == index && line.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST(NodeVerify, VerifyWithoutVerifyAlgIsRefusedWithSsNoVerifyAlg) {
  Cluster cluster(2);
  cluster.connect_all();
  cluster.settle();
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, Verify{node_id(1), {}});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_NO_VERIFY_ALG");
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::established);
}

TEST(NodeVerify, VerifyOfIdenticalReplicasComparesEveryBlockAndFindsNone) {
  Cluster cluster = verify_cluster();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Verify{node_id(1), {}}).ok);
  cluster.collect_all();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::verify_source);
  cluster.settle();
  EXPECT_TRUE(has_event(cluster, 0,
                        "role:VerifyS result:finished blocks:256 out-of-sync-blocks:0"));
  EXPECT_TRUE(has_event(cluster, 1,
                        "role:VerifyT result:finished blocks:256 out-of-sync-blocks:0"));
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(node_id(1)).count_set(), 0u);
}

TEST(NodeVerify, ABlockWhoseDigestDiffersIsMarkedOutOfSyncOnBothSidesAndCounted) {
  Cluster cluster = verify_cluster();
  std::map<std::uint64_t, std::uint64_t> target_reads;  // node 1's digest reads: io → block
  cluster.observer = [&](int index, const Action& action) {
    const auto* read = std::get_if<DiskRead>(&action);
    if (index == 1 && read != nullptr && read->digest) {
      target_reads[read->io.value] = read->sector.value / 8;
    }
  };
  // From block 10 on; node 1 answers its digest reads itself, block 17 with another digest.
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Verify{node_id(1), Sector{8 * 10}}).ok);
  for (int round = 0; round < 1000; ++round) {
    cluster.deliver_messages();
    cluster.complete_disk(0);
    cluster.deliver_messages();
    const auto reads = target_reads;
    target_reads.clear();
    for (const auto& [io, block] : reads) {
      cluster.disk_other.erase({1, io});
      cluster.nodes[1].on_disk_completed(cluster.now, IoId{io}, IoStatus::ok, {},
                                         block == 17 ? 7 : 0);
      cluster.collect(1);
    }
    if (reads.empty() && cluster.network.empty() && !cluster.fire_next_timer()) break;
  }
  EXPECT_TRUE(has_event(cluster, 0,
                        "role:VerifyS result:finished blocks:246 out-of-sync-blocks:1"));
  EXPECT_TRUE(has_event(cluster, 1,
                        "role:VerifyT result:finished blocks:246 out-of-sync-blocks:1"));
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(node_id(1)).count_set(), 1u);
  EXPECT_TRUE(cluster.nodes[0].bitmap_toward(node_id(1)).test(17));
  EXPECT_TRUE(cluster.nodes[1].bitmap_toward(node_id(0)).test(17));
  EXPECT_EQ(cluster.nodes[1].bitmap_toward(node_id(0)).count_set(), 1u);
}

TEST(NodeVerify, StopVerifyOnTheTargetEndsItOnBothSidesAsStopped) {
  Cluster cluster = verify_cluster();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Verify{node_id(1), {}}).ok);
  cluster.collect_all();
  cluster.deliver_messages();  // VerifyStart: node 1 is VerifyT
  ASSERT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::verify_target);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, StopVerify{node_id(0)}).ok);
  cluster.settle();
  EXPECT_TRUE(has_event(cluster, 1, "role:VerifyT result:stopped"));
  EXPECT_TRUE(has_event(cluster, 0, "role:VerifyS result:stopped"));
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::established);
}

TEST(NodeVerify, InvalidateWithoutAConnectedUpToDatePeerIsRefused) {
  Cluster cluster(2);
  const AdminResult result = cluster.nodes[1].on_admin(cluster.now, Invalidate{});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_NO_UP_TO_DATE_DISK");
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(NodeVerify, InvalidateMakesThisNodeSyncTargetOfEveryBlockAndEndsUpToDate) {
  Cluster cluster = verify_cluster();
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Invalidate{}).ok);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  EXPECT_EQ(cluster.nodes[1].bitmap_toward(node_id(0)).count_set(), volume_blocks);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_done_blocks, volume_blocks);
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(node_id(1)).count_set(), 0u);
}

TEST(NodeVerify, InvalidateRemoteMakesThePeerSyncTargetOfEveryBlock) {
  Cluster cluster = verify_cluster();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, InvalidateRemote{node_id(1)}).ok);
  cluster.collect_all();
  cluster.deliver_messages();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_done_blocks, volume_blocks);
}

}  // namespace
}  // namespace ditto::core
