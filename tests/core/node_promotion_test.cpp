// Promotion as a two-phase commit across the connected peers (drbd9-semantics.md §1.3 step 4):
// prepare, yes/no/retry, commit/abort, timeouts and randomized retries.
#include <gtest/gtest.h>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;
using wire::MessageType;

bool has_event(const Cluster& cluster, int index, const std::string& prefix) {
  for (const auto& [node, line] : cluster.events) {
    if (node == index && line.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST(Promotion, ThreeNodesPromoteThroughPrepareYesAndCommit) {
  Cluster cluster(3);
  cluster.connect_all();
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, Promote{});
  EXPECT_TRUE(result.ok);
  EXPECT_TRUE(result.pending);
  EXPECT_EQ(cluster.nodes[0].role(), Role::secondary);  // nothing commits before the votes
  cluster.collect(0);
  EXPECT_EQ(cluster.count_sent(0, MessageType::twopc_prepare), 2);
  cluster.settle();
  EXPECT_EQ(cluster.count_sent(1, MessageType::twopc_reply), 1);
  EXPECT_EQ(cluster.count_sent(2, MessageType::twopc_reply), 1);
  EXPECT_EQ(cluster.count_sent(0, MessageType::twopc_commit), 2);
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  EXPECT_FALSE(cluster.nodes[0].promotion_pending());
  ASSERT_TRUE(cluster.nodes[0].promotion_outcome().has_value());
  EXPECT_TRUE(cluster.nodes[0].promotion_outcome()->ok);
  EXPECT_TRUE(has_event(cluster, 0, "response primary name:r0 result:SS_SUCCESS"));
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->role, Role::primary);
  EXPECT_EQ(cluster.nodes[2].peer(node_id(0))->role, Role::primary);
}

TEST(Promotion, AWriteIssuedWhileThePromotionIsPendingWaitsAndThenReplicates) {
  Cluster cluster(2);
  cluster.connect_all();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Promote{}).pending);
  cluster.write(0, 5, 0, 9);
  EXPECT_FALSE(cluster.completion_of(5).has_value());
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(5), ClientStatus::ok);
  EXPECT_EQ(cluster.count_sent(0, MessageType::data), 1);
}

// Both initiators answer each other "retry" (busy), abort, and back off for random, different
// times; the first retry wins and the second is then refused because a Primary exists.
TEST(Promotion, TwoConcurrentPromotionsExactlyOneWins) {
  for (std::uint64_t seed = 1; seed <= 25; ++seed) {
    for (int count : {2, 3}) {
      Cluster cluster(count, [&](NodeConfig& config) { config.seed = seed; });
      cluster.connect_all();
      ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Promote{}).pending);
      ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Promote{}).pending);
      cluster.settle();
      int primaries = 0;
      for (const Node& node : cluster.nodes) primaries += node.role() == Role::primary ? 1 : 0;
      ASSERT_EQ(primaries, 1) << "seed " << seed << ", " << count << " nodes";
      const int loser = cluster.nodes[0].role() == Role::primary ? 1 : 0;
      ASSERT_TRUE(cluster.nodes[loser].promotion_outcome().has_value());
      EXPECT_EQ(cluster.nodes[loser].promotion_outcome()->code, "SS_TWO_PRIMARIES")
          << "seed " << seed;
      EXPECT_TRUE(cluster.disconnects.empty()) << "seed " << seed;
    }
  }
}

TEST(Promotion, PromotionIsRefusedAtOnceWithoutUpToDateData) {
  Cluster cluster(2, [](NodeConfig& config) {
    // Both Outdated: with an UpToDate peer node 0 would be resynced and become UpToDate.
    config.initial_disk_state = DiskState::outdated;
  });
  cluster.connect_all();
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_FALSE(result.pending);
  EXPECT_EQ(result.code, "SS_NO_UP_TO_DATE_DISK");
  cluster.collect(0);
  EXPECT_EQ(cluster.count_sent(0, MessageType::twopc_prepare), 0);
}

TEST(Promotion, PromotionIsRefusedAtOnceWhileAConnectedPeerIsPrimary) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  const AdminResult result = cluster.nodes[2].on_admin(cluster.now, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_FALSE(result.pending);
  EXPECT_EQ(result.code, "SS_TWO_PRIMARIES");
}

// Node 2 cannot see the Primary itself; node 1, connected to both, votes no. (Nodes 0 and 2
// are not each other's configured peers: otherwise node 0 names node 2 among its weak nodes,
// node 1 forwards that, and node 2 outdates itself before it can ask, §1.7.)
TEST(Promotion, APeerThatSeesAPrimaryElsewhereVotesNo) {
  Cluster cluster(3, [](NodeConfig& config) {
    const std::uint8_t other = config.node_id.value == 0 ? 2 : 0;
    if (config.node_id.value == 1) return;
    std::erase_if(config.peers,
                  [&](const PeerConfig& peer) { return peer.node_id.value == other; });
  });
  cluster.connect(0, 1);
  cluster.connect(1, 2);
  cluster.promote(0);
  const AdminResult result = cluster.nodes[2].on_admin(cluster.now, Promote{});
  EXPECT_TRUE(result.pending);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].role(), Role::secondary);
  ASSERT_TRUE(cluster.nodes[2].promotion_outcome().has_value());
  EXPECT_EQ(cluster.nodes[2].promotion_outcome()->code, "SS_TWO_PRIMARIES");
  EXPECT_EQ(cluster.count_sent(2, MessageType::twopc_abort), 1);
  EXPECT_TRUE(has_event(cluster, 2, "response primary name:r0 result:SS_TWO_PRIMARIES"));
}

TEST(Promotion, APromotionWhosePeerNeverAnswersTimesOutAndAborts) {
  Cluster cluster(2);
  cluster.connect_all();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Promote{}).pending);
  cluster.collect(0);
  cluster.network.clear();  // the prepare is lost; the connection stays up
  ASSERT_TRUE(cluster.fire_next_timer());
  EXPECT_EQ(cluster.nodes[0].role(), Role::secondary);
  ASSERT_TRUE(cluster.nodes[0].promotion_outcome().has_value());
  EXPECT_EQ(cluster.nodes[0].promotion_outcome()->code, "SS_TIMEOUT");
  EXPECT_EQ(cluster.count_sent(0, MessageType::twopc_abort), 1);
}

TEST(Promotion, APeerThatDisconnectsDuringThePrepareNoLongerHoldsThePromotion) {
  Cluster cluster(3);
  cluster.connect_all();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Promote{}).pending);
  cluster.disconnect(0, 2);  // drops the prepare to node 2 as well
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
}

TEST(Promotion, AParticipantThatVotedYesForgetsTheTransactionAfterTheTimeout) {
  Cluster cluster(2, [](NodeConfig& config) { config.twopc_timeout = Duration::from_ms(1000); });
  cluster.connect_all();
  cluster.nodes[1].on_message(cluster.now, node_id(0),
                              wire::TwoPcPrepare{node_id(0), 77, wire::TwoPcChange::promote, 0, 0, NodeId{}},
                              PayloadHandle{});
  cluster.collect(1);
  cluster.network.clear();  // the initiator never decides
  // While prepared, node 1's own promotion must wait rather than commit.
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Promote{}).pending);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].role(), Role::primary);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->role, Role::primary);
}

TEST(Promotion, APrepareOnBehalfOfAnotherNodeIsAProtocolError) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.nodes[1].on_message(cluster.now, node_id(0),
                              wire::TwoPcPrepare{node_id(2), 1, wire::TwoPcChange::promote, 0, 0, NodeId{}},
                              PayloadHandle{});
  cluster.collect(1);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_EQ(cluster.disconnects[0].second.peer, node_id(0));
  EXPECT_EQ(cluster.nodes[1].peer(node_id(2))->connection, ConnectionState::connected);
}

}  // namespace
}  // namespace ditto::core
