// Core transitions of the replication state machine, driven by hand (no simulator): two or
// three Nodes whose actions are executed by this small test harness.
#include "core/node.h"

#include <gtest/gtest.h>

#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

TEST(Node, ConnectedPeersSeeEachOtherAsConnectedAndUpToDate) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  const auto peer = cluster.nodes[0].peer(NodeId{1});
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->connection, ConnectionState::connected);
  EXPECT_EQ(peer->disk, DiskState::up_to_date);
  EXPECT_EQ(peer->role, Role::secondary);
}

TEST(Node, ProtocolCWriteCompletesOnlyAfterLocalWriteAndPeerAck) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  cluster.nodes[0].on_client_write(Instant{}, RequestId{7}, Sector{8}, 4096, PayloadHandle{1}, {});
  cluster.deliver_messages();  // Data reaches the secondary; nothing completed on disk yet
  EXPECT_FALSE(cluster.completion_of(7).has_value());
  cluster.complete_disk(0);  // local write done, peer still pending
  EXPECT_FALSE(cluster.completion_of(7).has_value());
  cluster.complete_disk(1);  // peer's disk done → WriteAck in flight
  EXPECT_FALSE(cluster.completion_of(7).has_value());
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(7), ClientStatus::ok);
  EXPECT_EQ(cluster.released[0], 1);  // the client payload, released exactly once
  EXPECT_EQ(cluster.released[1], 1);  // the received payload on the secondary
}

TEST(Node, TakingActionsIntoAKeptVectorReplacesWhatItHeldAndLeavesNothingBehind) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  ASSERT_FALSE(cluster.nodes[0].has_actions());
  // A driver's vector still holding an action of its previous step.
  std::vector<Action> kept{Action{ReleasePayload{PayloadHandle{99}}}};
  cluster.nodes[0].on_client_write(Instant{}, RequestId{7}, Sector{8}, 4096, PayloadHandle{1}, {});
  cluster.nodes[0].take_actions(kept);
  EXPECT_FALSE(cluster.nodes[0].has_actions());
  ASSERT_FALSE(kept.empty());
  for (const Action& action : kept) {
    const auto* release = std::get_if<ReleasePayload>(&action);
    EXPECT_TRUE(release == nullptr || release->payload.value != 99);
  }
  cluster.nodes[0].take_actions(kept);  // no input since: nothing to hand over
  EXPECT_TRUE(kept.empty());
}

TEST(Node, PeersAreWalkedInNodeIdOrderWhateverOrderTheConfigurationNamesThem) {
  NodeConfig config;
  config.resource_name = "r0";
  config.node_id = NodeId{3};
  config.node_name = "node3";
  config.volume_size_bytes = 1024 * 1024;
  config.peers = {{NodeId{7}, "node7"}, {NodeId{0}, "node0"}, {NodeId{5}, "node5"}};
  const Node node(config);
  const std::vector<PeerStatus> peers = node.peers();
  ASSERT_EQ(peers.size(), 3u);
  EXPECT_EQ(peers[0].node_id, NodeId{0});
  EXPECT_EQ(peers[1].node_id, NodeId{5});
  EXPECT_EQ(peers[2].node_id, NodeId{7});
  EXPECT_FALSE(node.peer(NodeId{1}).has_value());  // an unconfigured slot is no peer
}

TEST(Node, WriteOnASecondaryIsRefusedAsNotPrimary) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.nodes[1].on_client_write(Instant{}, RequestId{1}, Sector{0}, 4096, PayloadHandle{1}, {});
  cluster.collect(1);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::not_primary);
}

TEST(Node, WriteBeyondTheEndOfTheVolumeIsOutOfRange) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.nodes[0].on_client_write(Instant{}, RequestId{1}, Sector{2048 - 7}, 4096,
                                   PayloadHandle{1}, {});
  cluster.collect(0);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::out_of_range);
}

TEST(Node, PromotionIsRefusedWhileAPeerIsPrimary) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  const AdminResult result = cluster.nodes[1].on_admin(Instant{}, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_TWO_PRIMARIES");
  EXPECT_FALSE(cluster.nodes[1].may_promote());
}

TEST(Node, APeerThatDisconnectsStopsHoldingBackCompletion) {
  Cluster cluster(3);
  cluster.connect(0, 1);
  cluster.connect(0, 2);
  cluster.connect(1, 2);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  cluster.nodes[0].on_client_write(Instant{}, RequestId{3}, Sector{0}, 8192, PayloadHandle{2}, {});
  cluster.deliver_messages();
  cluster.complete_disk(0);
  cluster.complete_disk(1);
  cluster.deliver_messages();
  EXPECT_FALSE(cluster.completion_of(3).has_value());  // node 2 has not acked yet
  cluster.disconnect(0, 2);
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
}

// (Before resync existed this node stayed Outdated for good; now it is a SyncTarget first.)
TEST(Node, ANodeThatMissedWritesIsResyncedBeforeItCanBePromoted) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  cluster.disconnect(0, 1);
  cluster.nodes[0].on_client_write(Instant{}, RequestId{4}, Sector{0}, 4096, PayloadHandle{3}, {});
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(4), ClientStatus::ok);
  cluster.nodes[0].on_connection_up(Instant{}, NodeId{1});
  cluster.nodes[1].on_connection_up(Instant{}, NodeId{0});
  cluster.deliver_messages();  // handshake and bitmaps, no resync block written yet
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::inconsistent);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->replication, ReplicationState::sync_source);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Demote{}).ok);
  cluster.deliver_messages();
  const AdminResult result = cluster.nodes[1].on_admin(Instant{}, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_NO_UP_TO_DATE_DISK");
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_TRUE(cluster.nodes[1].on_admin(cluster.now, Promote{}).ok);
}

TEST(Node, BothSidesWritingDuringAPartitionIsDetectedAsSplitBrain) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.disconnect(0, 1);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(cluster.nodes[i].on_admin(Instant{}, Promote{}).ok);
    cluster.nodes[i].on_client_write(Instant{}, RequestId{10u + static_cast<unsigned>(i)},
                                     Sector{0}, 4096, PayloadHandle{5}, {});
  }
  cluster.drain();
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Demote{}).ok);
  ASSERT_TRUE(cluster.nodes[1].on_admin(Instant{}, Demote{}).ok);
  cluster.connect(0, 1);
  ASSERT_FALSE(cluster.disconnects.empty());
  EXPECT_NE(cluster.disconnects.front().second.reason.find("split brain"), std::string::npos)
      << cluster.disconnects.front().second.reason;
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::standalone);
}

TEST(Node, AMessageBeforeHelloIsAProtocolErrorThatDropsOnlyThatConnection) {
  Cluster cluster(3);
  cluster.connect(0, 2);
  cluster.nodes[0].on_connection_up(Instant{}, NodeId{1});
  cluster.collect(0);
  cluster.nodes[0].on_message(Instant{}, NodeId{1}, wire::WriteAck{1, true}, PayloadHandle{});
  cluster.collect(0);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_EQ(cluster.disconnects[0].second.peer, NodeId{1});
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{2})->connection, ConnectionState::connected);
  // The connection passes through ProtocolError (an events2 change line) back to Connecting.
  bool through_protocol_error = false;
  for (const auto& [index, line] : cluster.events) {
    if (index == 0 && line.find("peer-node-id:1") != std::string::npos &&
        line.find("connection:ProtocolError") != std::string::npos) {
      through_protocol_error = true;
    }
  }
  EXPECT_TRUE(through_protocol_error);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::connecting);
}

TEST(Node, HelloWithAnotherProtocolVersionIsRefusedWithTheVersionsInTheReason) {
  Cluster cluster(2);
  cluster.nodes[0].on_connection_up(Instant{}, NodeId{1});
  cluster.collect(0);
  const std::uint16_t min = wire::protocol_version + 1;
  const std::uint16_t max = wire::protocol_version + 3;
  wire::Hello hello{min, max, NodeId{1}, NodeId{0}, 0, "r0", {}};
  cluster.nodes[0].on_message(Instant{}, NodeId{1}, hello, PayloadHandle{});
  cluster.collect(0);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_NE(cluster.disconnects[0].second.reason.find(std::to_string(min) + ".." +
                                                      std::to_string(max)),
            std::string::npos);
}

TEST(Node, FlushCompletesAfterLocalAndPeerFlush) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.nodes[0].on_client_flush(Instant{}, RequestId{9});
  cluster.deliver_messages();
  cluster.complete_disk(0);
  EXPECT_FALSE(cluster.completion_of(9).has_value());
  cluster.complete_disk(1);
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(9), ClientStatus::ok);
}

TEST(Node, ReadsAreServedFromTheLocalDisk) {
  Cluster cluster(2);
  cluster.nodes[1].on_client_read(Instant{}, RequestId{5}, Sector{16}, 4096);
  cluster.collect(1);
  EXPECT_FALSE(cluster.completion_of(5).has_value());
  cluster.complete_disk(1);
  ASSERT_EQ(cluster.completion_of(5), ClientStatus::ok);
  EXPECT_TRUE(cluster.completions.back().second.read_io.has_value());
}

TEST(Node, ALocalWriteErrorStillSucceedsWhenThePeerStoredTheData) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.nodes[0].on_client_write(Instant{}, RequestId{6}, Sector{0}, 4096, PayloadHandle{1}, {});
  cluster.deliver_messages();
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.complete_disk(1);
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(6), ClientStatus::ok);
}

TEST(Node, PromotionEmitsAnEvents2ResourceLine) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.collect(0);
  ASSERT_FALSE(cluster.events.empty());
  EXPECT_EQ(cluster.events.back().second.rfind("change resource name:r0 role:Primary", 0), 0u);
}

}  // namespace
}  // namespace ditto::core
