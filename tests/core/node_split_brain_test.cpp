// Split brain on hand-driven cores (core/node_split_brain.cpp): the report on both nodes, the
// StandAlone connection and the drbdsetup connect/disconnect admin commands. The policies'
// outcomes with data are checked on the simulator (tests/sim/split_brain_test.cpp).
#include <gtest/gtest.h>

#include <string>

#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

std::vector<std::string> events_with(const Cluster& cluster, int node, const std::string& text) {
  std::vector<std::string> found;
  for (const auto& [index, line] : cluster.events) {
    if (index == node && line.find(text) != std::string::npos) found.push_back(line);
  }
  return found;
}

int disconnects_without_reconnect(const Cluster& cluster, int node) {
  int count = 0;
  for (const auto& [index, drop] : cluster.disconnects) count += index == node && !drop.reconnect;
  return count;
}

// Node 0 writes blocks 0 and 2 after the split, node 1 writes blocks 4, 5 and 6; both demote.
void make_split_brain(Cluster& cluster) {
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.settle();
  cluster.disconnect(0, 1);
  cluster.write(0, 2, 0, 2);
  cluster.write(0, 3, 16, 3);
  cluster.promote(1);
  for (std::uint64_t block = 4; block <= 6; ++block) cluster.write(1, 10 + block, block * 8, 10);
  cluster.settle();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Demote{}).ok);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Demote{}).ok);
}

TEST(SplitBrainNode, DetectionIsReportedOnBothNodesWithBothGenerationsAndChangedBlocks) {
  Cluster cluster(2);
  make_split_brain(cluster);
  const std::string gi0 = generations_text(cluster.nodes[0].generations());
  const std::string gi1 = generations_text(cluster.nodes[1].generations());
  cluster.connect(0, 1);
  cluster.settle();
  const std::string head = "call helper name:r0 peer-node-id:";
  const auto on0 = events_with(cluster, 0, "helper:initial-split-brain");
  const auto on1 = events_with(cluster, 1, "helper:initial-split-brain");
  ASSERT_EQ(on0.size(), 1u);
  ASSERT_EQ(on1.size(), 1u);
  EXPECT_EQ(on0[0], head + "1 conn-name:node1 volume:0 helper:initial-split-brain "
                           "rule:bitmap-both local-generations:" + gi0 +
                        " peer-generations:" + gi1 +
                        " local-changed-blocks:2 peer-changed-blocks:3 resolution:disconnect");
  EXPECT_EQ(on1[0], head + "0 conn-name:node0 volume:0 helper:initial-split-brain "
                           "rule:bitmap-both local-generations:" + gi1 +
                        " peer-generations:" + gi0 +
                        " local-changed-blocks:3 peer-changed-blocks:2 resolution:disconnect");
  for (int node = 0; node < 2; ++node) {
    EXPECT_EQ(events_with(cluster, node, "helper:split-brain").size(), 1u) << node;
    EXPECT_EQ(cluster.nodes[node].peer(node_id(1 - node))->connection,
              ConnectionState::standalone);
    EXPECT_EQ(disconnects_without_reconnect(cluster, node), 1) << node;
  }
}

TEST(SplitBrainNode, AStandAloneConnectionSendsAConnectingTransportAwayUntilConnect) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, DisconnectPeer{node_id(1)}).ok);
  cluster.drain();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::standalone);
  EXPECT_EQ(disconnects_without_reconnect(cluster, 0), 1);
  cluster.disconnect(0, 1);  // the transport tells both sides
  cluster.nodes[0].on_connection_up(cluster.now, node_id(1));
  cluster.drain();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::standalone);
  EXPECT_EQ(disconnects_without_reconnect(cluster, 0), 2);
  // connect: Unconnected, then Connecting; the next transport connection is taken.
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, ConnectPeer{node_id(1)}).ok);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connecting);
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
}

TEST(SplitBrainNode, ConnectOnAConnectionThatIsNotStandAloneIsRefused) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, ConnectPeer{node_id(1)});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("not StandAlone"), std::string::npos) << result.message;
  const AdminResult unknown = cluster.nodes[0].on_admin(cluster.now, DisconnectPeer{node_id(7)});
  EXPECT_FALSE(unknown.ok);
}

TEST(SplitBrainNode, ConnectWithDiscardMyDataMakesThisNodeTheSyncTargetOfTheOther) {
  Cluster cluster(2);
  make_split_brain(cluster);
  cluster.connect(0, 1);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::standalone);
  ASSERT_TRUE(
      cluster.nodes[0].on_admin(cluster.now, ConnectPeer{node_id(1), /*discard_my_data=*/true}).ok);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, ConnectPeer{node_id(0)}).ok);
  cluster.connect(0, 1);
  cluster.settle();
  const auto on0 = events_with(cluster, 0, "helper:initial-split-brain");
  ASSERT_EQ(on0.size(), 2u);
  EXPECT_NE(on0[1].find("resolution:discard-local"), std::string::npos) << on0[1];
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  // The union of both sides' changes (blocks 0, 2, 4, 5, 6) came from node 1.
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->resync_total_blocks, 5u);
  EXPECT_EQ(comparable_current(cluster.nodes[0].generation()),
            comparable_current(cluster.nodes[1].generation()));
}

}  // namespace
}  // namespace ditto::core
