// Congestion with protocol A (drbd9-semantics.md §11): on-congestion block, pull-ahead
// (Ahead/Behind, OutOfSync, the resync after the drain) and disconnect.
#include <gtest/gtest.h>

#include <set>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using wire::MessageType;

constexpr std::uint32_t block_bytes = 4096;

// Node 0 Primary, node 1 Secondary, protocol A, with the policy and a fill of 16 sectors (two
// 4 KiB writes in flight congest the connection).
Cluster congestible_pair(OnCongestion policy, std::uint32_t fill_sectors = 16) {
  Cluster cluster(2, [&](NodeConfig& config) {
    config.protocol = Protocol::a;
    config.on_congestion = policy;
    config.congestion_fill_sectors = fill_sectors;
  });
  cluster.connect_all();
  cluster.promote(0);
  return cluster;
}

// Writes one block at `block` from node 0 and completes its local disk write, without
// delivering anything: the Data (or OutOfSync) stays in flight.
void write_block(Cluster& cluster, std::uint64_t request, std::uint64_t block) {
  cluster.write(0, request, block * 8, request);
  cluster.complete_disk(0);
  ASSERT_EQ(cluster.completion_of(request), ClientStatus::ok);
}

ReplicationState replication(const Cluster& cluster, int node, int peer) {
  return cluster.nodes[node].peer(harness::node_id(peer))->replication;
}

std::set<std::uint64_t> set_bits(const Bitmap& bitmap) {
  std::set<std::uint64_t> bits;
  for (std::uint64_t bit = 0; bit < bitmap.bit_count(); ++bit) {
    if (bitmap.test(bit)) bits.insert(bit);
  }
  return bits;
}

TEST(Congestion, PullAheadGoesAheadWhenTheDataInFlightReachesTheFillAndThePeerGoesBehind) {
  Cluster cluster = congestible_pair(OnCongestion::pull_ahead);
  write_block(cluster, 1, 0);
  write_block(cluster, 2, 1);  // 16 sectors in flight now
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::established);
  const std::uint64_t generation_before = cluster.nodes[0].generation();
  write_block(cluster, 3, 2);  // congested: Ahead before this write
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::ahead);
  EXPECT_EQ(cluster.count_sent(0, MessageType::data), 2);
  EXPECT_EQ(cluster.count_sent(0, MessageType::out_of_sync), 1);
  // Entering Ahead starts a new data generation (§3.2).
  EXPECT_NE(cluster.nodes[0].generation(), generation_before);
  cluster.deliver_messages();
  EXPECT_EQ(replication(cluster, 1, 0), ReplicationState::behind);
  // The Behind node's disk is capped at Outdated and it keeps its old generation.
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_EQ(cluster.nodes[1].generation(), generation_before & ~std::uint64_t{1});
  EXPECT_FALSE(cluster.nodes[1].may_promote());
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(Congestion, WhileAheadTheGapInBothBitmapsIsExactlyTheBlocksWritten) {
  Cluster cluster = congestible_pair(OnCongestion::pull_ahead);
  write_block(cluster, 1, 0);
  write_block(cluster, 2, 1);
  for (std::uint64_t block : {5, 9, 9, 30, 31}) write_block(cluster, 10 + block, block);
  ASSERT_EQ(replication(cluster, 0, 1), ReplicationState::ahead);
  cluster.deliver_messages();  // no disk completions on node 1, no barrier acks yet
  const std::set<std::uint64_t> gap{5, 9, 30, 31};
  EXPECT_EQ(set_bits(cluster.nodes[0].bitmap_toward(harness::node_id(1))), gap);
  EXPECT_EQ(set_bits(cluster.nodes[1].bitmap_toward(harness::node_id(0))), gap);
}

TEST(Congestion, AfterTheDrainAndASecondTheAheadNodeResyncsTheGapAndBothReturnToEstablished) {
  Cluster cluster = congestible_pair(OnCongestion::pull_ahead);
  write_block(cluster, 1, 0);
  write_block(cluster, 2, 1);
  write_block(cluster, 3, 7);
  ASSERT_EQ(replication(cluster, 0, 1), ReplicationState::ahead);
  cluster.drain();  // the two writes sent before are written and their barrier acked
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::ahead);  // the second has not passed
  const Instant drained = cluster.now;
  ASSERT_TRUE(cluster.fire_next_timer());
  EXPECT_GE((cluster.now - drained).ns, ahead_resync_delay.ns);
  cluster.deliver_one();
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::wait_bitmap_source);
  std::set<std::uint64_t> resynced;
  cluster.observer = [&](int index, const Action& action) {
    if (const auto* send = std::get_if<Send>(&action); send && index == 1) {
      if (const auto* request = std::get_if<wire::ResyncRequest>(&send->message)) {
        resynced.insert(request->sector.value / 8);
      }
    }
  };
  cluster.settle();
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::established);
  EXPECT_EQ(replication(cluster, 1, 0), ReplicationState::established);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].generation(), cluster.nodes[0].generation() & ~std::uint64_t{1});
  EXPECT_EQ(resynced, std::set<std::uint64_t>{7});
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(harness::node_id(1)).count_set(), 0u);
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(Congestion, BlockNeverGoesAheadAndSendsEveryWrite) {
  Cluster cluster = congestible_pair(OnCongestion::block);
  for (std::uint64_t block = 0; block < 6; ++block) write_block(cluster, block + 1, block);
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::established);
  EXPECT_EQ(cluster.count_sent(0, MessageType::data), 6);
  EXPECT_EQ(cluster.count_sent(0, MessageType::out_of_sync), 0);
}

TEST(Congestion, DisconnectDropsTheCongestedConnectionAndTheReconnectResyncsTheWrites) {
  Cluster cluster = congestible_pair(OnCongestion::disconnect);
  write_block(cluster, 1, 0);
  write_block(cluster, 2, 1);
  write_block(cluster, 3, 4);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_TRUE(cluster.disconnects[0].second.reconnect);
  EXPECT_NE(cluster.nodes[0].peer(harness::node_id(1))->connection, ConnectionState::connected);
  // The dropped writes (in flight, unconfirmed) and the new one are marked for the peer.
  EXPECT_EQ(set_bits(cluster.nodes[0].bitmap_toward(harness::node_id(1))),
            (std::set<std::uint64_t>{0, 1, 4}));
}

TEST(Congestion, AFillOfZeroNeverCongests) {
  Cluster cluster = congestible_pair(OnCongestion::pull_ahead, 0);
  for (std::uint64_t block = 0; block < 6; ++block) write_block(cluster, block + 1, block);
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::established);
}

TEST(Congestion, APrimaryCrashWhileAheadLeavesTheBehindPeerOutdatedAndNotPromotable) {
  Cluster cluster = congestible_pair(OnCongestion::pull_ahead);
  write_block(cluster, 1, 0);
  write_block(cluster, 2, 1);
  write_block(cluster, 3, 2);
  cluster.deliver_messages();
  ASSERT_EQ(replication(cluster, 1, 0), ReplicationState::behind);
  // The Primary vanishes: node 1 only sees its connection go.
  cluster.network.clear();
  cluster.nodes[1].on_connection_down(cluster.now, harness::node_id(0));
  cluster.collect(1);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_FALSE(cluster.nodes[1].may_promote());
  const AdminResult promote = cluster.nodes[1].on_admin(cluster.now, Promote{false});
  EXPECT_FALSE(promote.ok);
  EXPECT_EQ(promote.code, "SS_NO_UP_TO_DATE_DISK");
}

TEST(Congestion, OutOfSyncFromAPeerThatIsNotAheadIsAProtocolError) {
  Cluster cluster = congestible_pair(OnCongestion::pull_ahead);
  cluster.nodes[1].on_message(cluster.now, harness::node_id(0),
                              wire::OutOfSync{Sector{0}, block_bytes}, PayloadHandle{});
  cluster.collect(1);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_NE(cluster.disconnects[0].second.reason.find("OutOfSync"), std::string::npos);
}

TEST(Congestion, ChangeOptionsRefusesPullAheadWithProtocolC) {
  Cluster cluster(2);
  NodeConfig wanted = cluster.nodes[0].config();
  wanted.on_congestion = OnCongestion::pull_ahead;
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, ChangeOptions{wanted});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("requires protocol A"), std::string::npos) << result.message;
  wanted.protocol = Protocol::a;  // structural: still refused, for that reason
  EXPECT_FALSE(cluster.nodes[0].on_admin(cluster.now, ChangeOptions{wanted}).ok);
}

TEST(Congestion, ChangeOptionsTurnsPullAheadOnForARunningProtocolANode) {
  Cluster cluster = congestible_pair(OnCongestion::block);
  NodeConfig wanted = cluster.nodes[0].config();
  wanted.on_congestion = OnCongestion::pull_ahead;
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, ChangeOptions{wanted}).ok);
  write_block(cluster, 1, 0);
  write_block(cluster, 2, 1);
  write_block(cluster, 3, 2);
  EXPECT_EQ(replication(cluster, 0, 1), ReplicationState::ahead);
}

}  // namespace
}  // namespace ditto::core
