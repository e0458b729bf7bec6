// resync-after in core::Node (node_sync_admin.cpp, on_resync_dependency): the driver says when
// the device this one waits for is resyncing; this node's resyncs pause meanwhile. Driven by
// hand (tests/core/node_harness.h).
#include <gtest/gtest.h>

#include <string>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::block_sector;
using harness::events_containing;
using harness::leave_node_one_behind;
using harness::node_id;

void set_dependency(Cluster& cluster, int node, bool active) {
  cluster.nodes[node].on_resync_dependency(cluster.now, active);
  cluster.collect_all();
}

TEST(ResyncAfter, AResyncThatStartsWhileTheDependencyIsActiveWaitsPausedUntilItIsInactive) {
  Cluster cluster(2);
  leave_node_one_behind(cluster);
  set_dependency(cluster, 1, true);
  cluster.connect(0, 1);
  cluster.settle();
  const PeerStatus waiting = *cluster.nodes[1].peer(node_id(0));
  EXPECT_EQ(waiting.replication, ReplicationState::paused_sync_target);
  EXPECT_EQ(waiting.resync_suspended_text(), "dependency");
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->resync_suspended_text(), "peer");
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::paused_sync_source);
  EXPECT_GE(events_containing(cluster, 1, "replication:PausedSyncT"), 1);
  EXPECT_GE(events_containing(cluster, 1, "resync-suspended:dependency"), 1);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);

  set_dependency(cluster, 1, false);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_suspended_text(), "no");
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->resync_suspended_text(), "no");
}

TEST(ResyncAfter, ARunningResyncPausesWhenTheDependencyBecomesActiveAndHoldsItsDependents) {
  Cluster cluster(2);
  leave_node_one_behind(cluster);
  cluster.connect(0, 1);
  cluster.deliver_messages();  // the handshake; no resync step has run yet
  ASSERT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::sync_target);
  EXPECT_TRUE(cluster.nodes[1].resync_holds_dependents());
  EXPECT_TRUE(cluster.nodes[0].resync_holds_dependents());
  set_dependency(cluster, 1, true);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::paused_sync_target);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  EXPECT_TRUE(cluster.nodes[1].resync_holds_dependents());
  set_dependency(cluster, 1, false);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_FALSE(cluster.nodes[1].resync_holds_dependents());
  EXPECT_FALSE(cluster.nodes[0].resync_holds_dependents());
}

TEST(ResyncAfter, PauseSyncByTheUserAndTheDependencyKeepBothFlagsAndBothMustClear) {
  Cluster cluster(2);
  leave_node_one_behind(cluster);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, PauseSync{node_id(0)}).ok);
  set_dependency(cluster, 1, true);
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_suspended_text(), "user,dependency");
  set_dependency(cluster, 1, false);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_suspended_text(), "user");
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::paused_sync_target);
  set_dependency(cluster, 1, true);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, ResumeSync{node_id(0)}).ok);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_suspended_text(), "dependency");
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  set_dependency(cluster, 1, false);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(ResyncAfter, ADisklessDeviceEndsTheChainAndHoldsNothing) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, PauseSync{node_id(0)}).ok);
  EXPECT_TRUE(cluster.nodes[1].resync_holds_dependents());
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Detach{}).ok);
  EXPECT_FALSE(cluster.nodes[1].resync_holds_dependents());
}

}  // namespace
}  // namespace ditto::core
