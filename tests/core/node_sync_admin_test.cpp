// pause-sync / resume-sync, new-current-uuid [--clear-bitmap] and a graceful detach in
// core::Node (node_sync_admin.cpp), driven by hand (tests/core/node_harness.h).
#include <gtest/gtest.h>

#include <string>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::leave_node_one_behind;
using harness::node_id;

std::uint64_t block_sector(std::uint64_t block) {
  return block * 8;
}

int count_events(const Cluster& cluster, int node, const std::string& text) {
  int count = 0;
  for (const auto& [index, line] : cluster.events) {
    if (index == node && line.find(text) != std::string::npos) count += 1;
  }
  return count;
}


// Connects 0 and 1 and steps until node 1 wrote `blocks` resync blocks as SyncTarget.
void resync_until(Cluster& cluster, std::uint64_t blocks) {
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
  for (int step = 0; step < 1000; ++step) {
    const PeerStatus source = *cluster.nodes[1].peer(NodeId{0});
    if (source.replication == ReplicationState::sync_target &&
        source.resync_done_blocks >= blocks) {
      return;
    }
    if (cluster.deliver_one()) continue;
    ASSERT_FALSE(cluster.disk_writes.empty() && cluster.disk_other.empty());
    const auto [node, io] = cluster.disk_writes.empty() ? cluster.disk_other.begin()->first
                                                        : cluster.disk_writes.begin()->first;
    cluster.complete_io(node, io);
  }
  FAIL() << "the resync did not reach " << blocks << " blocks";
}

AdminResult admin(Cluster& cluster, int node, const AdminCommand& command) {
  const AdminResult result = cluster.nodes[node].on_admin(cluster.now, command);
  cluster.collect(node);
  return result;
}

TEST(PauseSync, PausingTheSyncTargetStopsItsRequestsUntilResumeSyncAndThePeerShowsWhy) {
  Cluster cluster(2, [](NodeConfig& config) { config.c_fill_target_sectors = 8; });
  leave_node_one_behind(cluster);
  resync_until(cluster, 3);
  ASSERT_TRUE(admin(cluster, 1, PauseSync{NodeId{0}}).ok);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::paused_sync_target);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_suspended_text(), "user");
  cluster.settle();  // the request in flight is answered; no new one is sent
  const int requests = cluster.count_sent(1, wire::MessageType::resync_request);
  const std::uint64_t done = cluster.nodes[1].peer(NodeId{0})->resync_done_blocks;
  cluster.settle();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), requests);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, done);
  EXPECT_LT(done, 10u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->replication, ReplicationState::paused_sync_source);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_suspended_text(), "peer");
  EXPECT_EQ(count_events(cluster, 1, "replication:PausedSyncT peer-disk:UpToDate "
                                     "resync-suspended:user"), 1);
  EXPECT_EQ(count_events(cluster, 0, "replication:PausedSyncS peer-disk:Inconsistent "
                                     "resync-suspended:peer"), 1);

  ASSERT_TRUE(admin(cluster, 1, ResumeSync{NodeId{0}}).ok);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, 10u);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_suspended_text(), "no");
}

TEST(PauseSync, APauseOnTheSourceBeforeTheConnectionStartsTheResyncPausedOnBothSides) {
  Cluster cluster(2);
  leave_node_one_behind(cluster);
  ASSERT_TRUE(admin(cluster, 0, PauseSync{NodeId{1}}).ok);
  EXPECT_EQ(count_events(cluster, 0, "replication:Off peer-disk:DUnknown resync-suspended:user"),
            1);  // no resync runs: the flag alone is reported
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->replication, ReplicationState::paused_sync_source);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::paused_sync_target);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_suspended_text(), "peer");
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);

  ASSERT_TRUE(admin(cluster, 0, ResumeSync{NodeId{1}}).ok);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->replication, ReplicationState::established);
}

TEST(PauseSync, PausingTwiceOrResumingWhatTheUserDidNotPauseIsRefusedWithDrbdsCodes) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  const AdminResult not_paused = admin(cluster, 0, ResumeSync{NodeId{1}});
  EXPECT_FALSE(not_paused.ok);
  EXPECT_EQ(not_paused.code, "ERR_PAUSE_IS_CLEAR");
  ASSERT_TRUE(admin(cluster, 0, PauseSync{NodeId{1}}).ok);
  const AdminResult twice = admin(cluster, 0, PauseSync{NodeId{1}});
  EXPECT_FALSE(twice.ok);
  EXPECT_EQ(twice.code, "ERR_PAUSE_IS_SET");
  const AdminResult stranger = admin(cluster, 0, PauseSync{NodeId{7}});
  EXPECT_FALSE(stranger.ok);
  EXPECT_EQ(stranger.code, "SS_NEED_CONNECTION");
  cluster.settle();
  // The peer's own flag is not the user's: resuming there is refused and says who paused.
  const AdminResult peer_paused = admin(cluster, 1, ResumeSync{NodeId{0}});
  EXPECT_EQ(peer_paused.code, "ERR_PAUSE_IS_CLEAR");
  EXPECT_NE(peer_paused.message.find("node0 paused it"), std::string::npos) << peer_paused.message;
}

TEST(PauseSync, TheUserPauseOutlivesALostConnectionWhileThePeersPauseDoesNot) {
  Cluster cluster(2);
  leave_node_one_behind(cluster);
  ASSERT_TRUE(admin(cluster, 1, PauseSync{NodeId{0}}).ok);
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_suspended_text(), "peer");
  cluster.disconnect(0, 1);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_suspended_text(), "no");
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_suspended_text(), "user");
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::paused_sync_target);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);
}

// Two nodes whose metadata was just created (current UUID 4, CONSISTENT clear).
Cluster fresh_inconsistent_pair() {
  return Cluster(2, [](NodeConfig& config) {
    config.initial_disk_state = DiskState::inconsistent;
    config.initial_generation = uuid_just_created_value;
  });
}

TEST(NewCurrentUuid, ClearBitmapOnAFreshPairMakesBothUpToDateInOneGenerationWithoutAResync) {
  Cluster cluster = fresh_inconsistent_pair();
  cluster.connect(0, 1);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::inconsistent);
  ASSERT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::established);
  ASSERT_TRUE(admin(cluster, 0, NewCurrentUuid{true}).ok);
  cluster.settle();
  for (int node = 0; node < 2; ++node) {
    EXPECT_EQ(cluster.nodes[node].disk_state(), DiskState::up_to_date) << node;
    EXPECT_EQ(cluster.nodes[node].peer(node_id(1 - node))->disk, DiskState::up_to_date) << node;
    EXPECT_EQ(cluster.nodes[node].peer(node_id(1 - node))->out_of_sync_bytes, 0u) << node;
    EXPECT_EQ(cluster.nodes[node].generations().bitmap[1 - node], 0u) << node;
    EXPECT_EQ(cluster.count_sent(node, wire::MessageType::resync_request), 0) << node;
  }
  EXPECT_NE(comparable_current(cluster.nodes[0].generation()), uuid_just_created_value);
  EXPECT_EQ(cluster.nodes[1].generation(), cluster.nodes[0].generation());
  EXPECT_TRUE(cluster.disconnects.empty());
  // Replication goes on in the new generation: a write reaches both and marks nothing.
  cluster.promote(0);
  cluster.write(0, 1, block_sector(4), 1);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
}

TEST(NewCurrentUuid, WithoutClearBitmapItIsRefusedWhileConnectedAndStartsAGenerationAlone) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  const AdminResult connected = admin(cluster, 0, NewCurrentUuid{false});
  EXPECT_FALSE(connected.ok);
  EXPECT_EQ(connected.code, "ERR_CONNECTED");
  EXPECT_NE(connected.message.find("node1"), std::string::npos) << connected.message;
  cluster.disconnect(0, 1);
  const std::uint64_t before = cluster.nodes[0].generation();
  ASSERT_TRUE(admin(cluster, 0, NewCurrentUuid{false}).ok);
  EXPECT_NE(cluster.nodes[0].generation(), before);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(count_events(cluster, 0, "new-current-uuid name:r0"), 1);
  // The peer's data is one generation behind: it gets a resync when it returns.
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].generation(), cluster.nodes[0].generation());
}

TEST(NewCurrentUuid, ClearBitmapIsRefusedWhileConnectedToANodeWithDataOfAnEarlierGeneration) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);  // the pair leaves the day-0 generation
  cluster.settle();
  const AdminResult refused = admin(cluster, 0, NewCurrentUuid{true});
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "ERR_CONNECTED");
  EXPECT_NE(refused.message.find("just-created"), std::string::npos) << refused.message;
}

TEST(NewCurrentUuid, ADetachedNodeHasNoGenerationToChange) {
  Cluster cluster(2);
  ASSERT_TRUE(admin(cluster, 0, Detach{}).ok);
  const AdminResult refused = admin(cluster, 0, NewCurrentUuid{false});
  EXPECT_EQ(refused.code, "ERR_NO_DISK");
}

TEST(DetachCommand, APrimaryDetachesThroughDetachingAndKeepsWritingThroughItsUpToDatePeer) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  ASSERT_TRUE(admin(cluster, 0, Detach{}).ok);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  EXPECT_EQ(count_events(cluster, 0, "minor:0 disk:Detaching"), 1);
  EXPECT_EQ(count_events(cluster, 0, "minor:0 disk:Diskless"), 1);
  EXPECT_EQ(count_events(cluster, 0, "disk:Failed"), 0);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->disk, DiskState::diskless);
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  cluster.write(0, 1, block_sector(2), 1);
  EXPECT_TRUE(cluster.pending_writes(0).empty());  // nothing for the detached disk
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  const AdminResult again = admin(cluster, 0, Detach{});
  EXPECT_EQ(again.code, "SS_IS_DISKLESS");
}

TEST(DetachCommand, APrimaryWithoutAnUpToDatePeerIsRefusedAndKeepsItsDisk) {
  Cluster cluster(2);
  cluster.promote(0);
  const AdminResult refused = admin(cluster, 0, Detach{});
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "SS_NO_UP_TO_DATE_DISK");
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
}

}  // namespace
}  // namespace ditto::core
