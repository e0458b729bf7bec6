// Checksum-based resync (csums-alg, node_resync_checksum.cpp) on hand-driven cores
// (node_harness.h). The harness's digest_of stands in for the driver's digest of a block: the
// tests decide which blocks the two replicas hold alike.
#include <gtest/gtest.h>

#include <set>

#include "node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

std::uint64_t block_sector(std::uint64_t block) {
  return block * 8;
}

// Resync Data (data_flag_resync) sent by `from`.
// The blocks `from` sent as resync Data (a bitmap-based resync sends runs of them).
int count_resync_data(const Cluster& cluster, int from) {
  int count = 0;
  for (const auto& [index, send] : cluster.sent) {
    const auto* data = std::get_if<wire::Data>(&send.message);
    if (index == from && data != nullptr && (data->flags & wire::data_flag_resync) != 0) {
      count += static_cast<int>(data->length_bytes / 4096);
    }
  }
  return count;
}

// Both nodes digest every block alike, except the blocks in `differing` on node 1.
void digest_alike_except(Cluster& cluster, std::set<std::uint64_t> differing) {
  cluster.digest_of = [differing](int index, const DiskRead& read) {
    const std::uint64_t block = read.sector.value / 8;
    return index == 1 && differing.count(block) == 1 ? 0xbad0000 + block : block;
  };
}

// Node 0 Primary, node 1 away while blocks 2..(2 + count) are written: node 1 is behind by
// those blocks when it returns (call reconnect()).
Cluster cluster_behind_by(int count, const std::function<void(NodeConfig&)>& adjust = {}) {
  Cluster cluster(2, [&](NodeConfig& config) {
    config.csums_algorithm = "crc32c";
    if (adjust) adjust(config);
  });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(0), 1);  // a generation of our own (no full sync)
  cluster.settle();
  cluster.disconnect(0, 1);
  for (int i = 0; i < count; ++i) {
    cluster.write(0, 100 + static_cast<std::uint64_t>(i), block_sector(2 + i), 50 + i);
  }
  cluster.settle();
  return cluster;
}

void reconnect(Cluster& cluster) {
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
}

TEST(ChecksumResync, BlocksWhoseDigestsMatchMoveNoDataAndTheirBitsClearOnBothSides) {
  Cluster cluster = cluster_behind_by(5);
  digest_alike_except(cluster, {});
  reconnect(cluster);
  cluster.settle();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 5);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::resync_in_sync), 5);
  EXPECT_EQ(count_resync_data(cluster, 0), 0);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(NodeId{1}).count_set(), 0u);
  EXPECT_EQ(cluster.nodes[1].bitmap_toward(NodeId{0}).count_set(), 0u);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_same_checksum_blocks, 5u);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_same_checksum_blocks, 5u);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, 5u);
}

TEST(ChecksumResync, OnlyTheBlockWhoseDigestDiffersIsSentAsData) {
  Cluster cluster = cluster_behind_by(5);
  digest_alike_except(cluster, {4});
  reconnect(cluster);
  cluster.settle();
  EXPECT_EQ(count_resync_data(cluster, 0), 1);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::resync_in_sync), 4);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_ack), 1);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(NodeId{1}).count_set(), 0u);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_same_checksum_blocks, 4u);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, 5u);
}

TEST(ChecksumResync, WithoutCsumsAlgEveryBlockIsRequestedAndSentAsData) {
  Cluster cluster = cluster_behind_by(5, [](NodeConfig& config) {
    config.csums_algorithm.clear();
  });
  digest_alike_except(cluster, {});
  reconnect(cluster);
  cluster.settle();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 0);
  EXPECT_EQ(count_resync_data(cluster, 0), 5);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(ChecksumResync, AWriteOvertakingAChecksumRequestDiscardsTheInSyncAnswerAndAsksAgain) {
  Cluster cluster = cluster_behind_by(1, [](NodeConfig& config) {
    config.c_fill_target_sectors = 8;
  });
  digest_alike_except(cluster, {});
  reconnect(cluster);
  cluster.deliver_messages();  // handshake and bitmaps: node 1 reads the digest of block 2
  cluster.complete_disk(1);
  cluster.deliver_messages();  // the request is at node 0, its digest read issued
  ASSERT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 1);
  cluster.write(0, 7, block_sector(2), 7);  // replicated: Data reaches the target first
  cluster.deliver_messages();
  cluster.complete_disk(0);  // the source's digest read completes after the write was sent
  cluster.settle();
  // The first answer was discarded (its fence predates the write) and the block asked again.
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 2);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_same_checksum_blocks, 1u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.completion_of(7), ClientStatus::ok);
}

TEST(ChecksumResync, AWriteOvertakingTheTargetsDigestReadSendsNoRequestForTheStaleDigest) {
  Cluster cluster = cluster_behind_by(1, [](NodeConfig& config) {
    config.c_fill_target_sectors = 8;
  });
  digest_alike_except(cluster, {});
  reconnect(cluster);
  cluster.deliver_messages();  // handshake and bitmaps: node 1 reads the digest of block 2
  ASSERT_EQ(cluster.digest_reads.size(), 1u);
  cluster.write(0, 7, block_sector(2), 7);
  cluster.deliver_messages();  // the write reaches node 1 while its digest read is in flight
  const std::uint64_t digest_io = cluster.digest_reads.begin()->first.second;
  cluster.complete_io(1, digest_io);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 0);
  cluster.settle();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 1);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(ChecksumResync, AnInSyncAnswerForABlockNobodyAskedForIsAProtocolError) {
  Cluster cluster = cluster_behind_by(1);
  digest_alike_except(cluster, {});
  reconnect(cluster);
  cluster.deliver_messages();
  ASSERT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::sync_target);
  cluster.nodes[1].on_message(cluster.now, NodeId{0},
                              wire::ResyncInSync{Sector{block_sector(9)}, 4096, 0}, {});
  cluster.collect_all();
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_NE(cluster.disconnects[0].second.reason.find("ResyncInSync for sector 72"),
            std::string::npos)
      << cluster.disconnects[0].second.reason;
}

TEST(ChecksumResync, AChecksumRequestThatIsNotOneBitmapBlockIsAProtocolError) {
  Cluster cluster = cluster_behind_by(1);
  reconnect(cluster);
  cluster.deliver_messages();
  ASSERT_EQ(cluster.nodes[0].peer(NodeId{1})->replication, ReplicationState::sync_source);
  cluster.nodes[0].on_message(cluster.now, NodeId{1},
                              wire::ChecksumResyncRequest{Sector{3}, 4096, 1}, {});
  cluster.collect_all();
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_NE(cluster.disconnects[0].second.reason.find("not one bitmap block"),
            std::string::npos)
      << cluster.disconnects[0].second.reason;
}

// csums-after-crash-only: node 1 restarts Outdated with the same generation; with apply-al's hot
// extents (a Primary crash) its resync uses checksums, without them it does not.
Cluster restarted_behind(bool after_crash) {
  Cluster cluster(2, [&](NodeConfig& config) {
    config.csums_algorithm = "crc32c";
    config.csums_after_crash_only = true;
    if (config.node_id == NodeId{1}) {
      config.initial_disk_state = DiskState::outdated;
      if (after_crash) config.initial_hot_extents = {0};
    }
  });
  digest_alike_except(cluster, {});
  cluster.connect(0, 1);
  cluster.settle();
  return cluster;
}

TEST(ChecksumResync, CsumsAfterCrashOnlyUsesChecksumsForTheResyncAfterAPrimaryCrash) {
  Cluster cluster = restarted_behind(true);
  EXPECT_GT(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 0);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);
  EXPECT_EQ(count_resync_data(cluster, 0), 0);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(ChecksumResync, CsumsAfterCrashOnlyRequestsDataForAnyOtherResync) {
  Cluster cluster = restarted_behind(false);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::checksum_resync_request), 0);
  EXPECT_GT(cluster.count_sent(1, wire::MessageType::resync_request), 0);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

}  // namespace
}  // namespace ditto::core
