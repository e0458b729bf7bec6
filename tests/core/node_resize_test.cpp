// Online grow as a two-phase commit (core/node_resize.cpp): every node re-reads its backing size
// (CheckDiskSize, answered here from Cluster::backing_size_bytes), the initiator decides the size,
// every node takes it on commit, and the new area is resynced from one node unless
// --assume-clean.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <variant>

#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

constexpr std::uint64_t mib = 1024 * 1024;
constexpr std::uint64_t old_size = 1 * mib;
constexpr std::uint64_t new_size = 2 * mib;

bool has_event(const Cluster& cluster, int index, const std::string& needle) {
  for (const auto& [node, line] : cluster.events) {
    if (node == index && line.find(needle) != std::string::npos) return true;
  }
  return false;
}

// Runs a resize on `index` to its end and returns the outcome.
AdminResult run_resize(Cluster& cluster, int index, Resize request = {}) {
  const AdminResult started = cluster.nodes[index].on_admin(cluster.now, request);
  cluster.collect(index);
  if (!started.pending) return started;
  cluster.settle();
  EXPECT_FALSE(cluster.nodes[index].resize_pending());
  const auto& outcome = cluster.nodes[index].resize_outcome();
  EXPECT_TRUE(outcome.has_value());
  return outcome.value_or(AdminResult{false, "none", "no outcome"});
}

void grow_backing(Cluster& cluster, std::initializer_list<int> nodes, std::uint64_t size) {
  for (int index : nodes) cluster.backing_size_bytes[index] = size;
}

TEST(NodeResize, GrowOfAThreeNodeClusterCommitsOnAllAndResyncsTheNewAreaFromThePrimary) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  grow_backing(cluster, {0, 1, 2}, new_size);
  const AdminResult result = run_resize(cluster, 1);  // run on a Secondary
  ASSERT_TRUE(result.ok) << result.code << ": " << result.message;
  for (int index = 0; index < 3; ++index) {
    EXPECT_EQ(cluster.nodes[index].size_bytes(), new_size) << "node " << index;
    EXPECT_EQ(cluster.nodes[index].usable_size_bytes(), new_size) << "node " << index;
    EXPECT_EQ(cluster.nodes[index].disk_state(), DiskState::up_to_date) << "node " << index;
    for (const PeerStatus& peer : cluster.nodes[index].peers()) {
      EXPECT_EQ(peer.connection, ConnectionState::connected);
      // (Between the two SyncTargets the new area stays marked until they next reconnect; see
      // the known limitation in core/node_resize.cpp.)
      if (index != 0 && peer.node_id != node_id(0)) continue;
      EXPECT_EQ(peer.out_of_sync_bytes, 0u) << "node " << index << " toward " << peer.name;
    }
  }
  // The new area moved from the Primary to both Secondaries, nothing else.
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_total_blocks, (new_size - old_size) / 4096);
  EXPECT_EQ(cluster.nodes[2].peer(node_id(0))->resync_total_blocks, (new_size - old_size) / 4096);
  EXPECT_TRUE(has_event(cluster, 1, "response resize name:r0 result:SS_SUCCESS"));
  // A write past the old end now reaches every node.
  cluster.write(0, 9, old_size / 512 + 8, 5);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(9), ClientStatus::ok);
}

TEST(NodeResize, ANodeWithAnUngrownDiskVotesNoAndNothingChanges) {
  Cluster cluster(3);
  cluster.connect_all();
  grow_backing(cluster, {0, 1}, new_size);  // node2's disk was not grown
  const AdminResult result = run_resize(cluster, 0);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "ERR_DISK_TOO_SMALL");
  EXPECT_NE(result.message.find("node2"), std::string::npos) << result.message;
  for (int index = 0; index < 3; ++index) {
    EXPECT_EQ(cluster.nodes[index].size_bytes(), old_size) << "node " << index;
    for (const PeerStatus& peer : cluster.nodes[index].peers()) {
      EXPECT_EQ(peer.connection, ConnectionState::connected);
      EXPECT_EQ(peer.out_of_sync_bytes, 0u);
    }
  }
  EXPECT_TRUE(has_event(cluster, 0, "response resize name:r0 result:ERR_DISK_TOO_SMALL"));
}

TEST(NodeResize, AssumeCleanLeavesTheNewAreaInSync) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(2);
  grow_backing(cluster, {0, 1, 2}, new_size);
  Resize request;
  request.assume_clean = true;
  const AdminResult result = run_resize(cluster, 0, request);
  ASSERT_TRUE(result.ok) << result.code << ": " << result.message;
  for (int index = 0; index < 3; ++index) {
    EXPECT_EQ(cluster.nodes[index].size_bytes(), new_size);
    EXPECT_EQ(cluster.nodes[index].disk_state(), DiskState::up_to_date);
    for (const PeerStatus& peer : cluster.nodes[index].peers()) {
      EXPECT_EQ(peer.out_of_sync_bytes, 0u);
      EXPECT_EQ(peer.resync_total_blocks, 0u);
    }
  }
}

TEST(NodeResize, AnExplicitSizeBetweenTheOldAndTheSmallestGrownDiskIsTaken) {
  Cluster cluster(2);
  cluster.connect_all();
  grow_backing(cluster, {0}, 4 * mib);
  grow_backing(cluster, {1}, 3 * mib);
  Resize request;
  request.size_bytes = 3 * mib / 2;
  ASSERT_TRUE(run_resize(cluster, 0, request).ok);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 3 * mib / 2);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 3 * mib / 2);
  // Without --size: the smallest disk.
  ASSERT_TRUE(run_resize(cluster, 1).ok);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 3 * mib);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 3 * mib);
}

TEST(NodeResize, ASizeLargerThanAPeersDiskIsRefusedNamingThePeer) {
  Cluster cluster(2);
  cluster.connect_all();
  grow_backing(cluster, {0}, 4 * mib);
  grow_backing(cluster, {1}, new_size);
  Resize request;
  request.size_bytes = 3 * mib;
  const AdminResult result = run_resize(cluster, 0, request);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "ERR_DISK_TOO_SMALL");
  EXPECT_NE(result.message.find("node1"), std::string::npos) << result.message;
  EXPECT_EQ(cluster.nodes[0].size_bytes(), old_size);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), old_size);
}

TEST(NodeResize, ShrinkIsRefused) {
  Cluster cluster(2);
  cluster.connect_all();
  Resize request;
  request.size_bytes = old_size / 2;
  const AdminResult result = run_resize(cluster, 0, request);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "ERR_IMPLICIT_SHRINK");
  EXPECT_EQ(cluster.nodes[0].size_bytes(), old_size);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::twopc_prepare), 0);
}

TEST(NodeResize, AResizeWhileAPeerIsUnreachableIsRefused) {
  Cluster cluster(3);
  cluster.connect(0, 1);  // node2 unreachable
  grow_backing(cluster, {0, 1, 2}, new_size);
  const AdminResult result = run_resize(cluster, 0);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_NEED_CONNECTION");
  EXPECT_NE(result.message.find("node2"), std::string::npos) << result.message;
  EXPECT_EQ(cluster.nodes[0].size_bytes(), old_size);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), old_size);
}

TEST(NodeResize, ADisklessClientTakesTheNewSizeWithoutAResync) {
  Cluster cluster(3, [](NodeConfig& config) {
    if (config.node_id == node_id(2)) {
      config.intentional_diskless = true;
      config.volume_size_bytes = 0;
    }
  });
  cluster.connect_all();
  ASSERT_EQ(cluster.nodes[2].size_bytes(), old_size);
  cluster.promote(2);
  grow_backing(cluster, {0, 1}, new_size);
  const AdminResult result = run_resize(cluster, 2);
  ASSERT_TRUE(result.ok) << result.code << ": " << result.message;
  for (int index = 0; index < 3; ++index) {
    EXPECT_EQ(cluster.nodes[index].size_bytes(), new_size) << "node " << index;
  }
  // The diskless Primary cannot be the source: the lowest UpToDate node (node0) is.
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_total_blocks, (new_size - old_size) / 4096);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  cluster.write(2, 3, old_size / 512, 7);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
}

TEST(NodeResize, APromotionDuringAPreparedResizeIsRetriedAfterIt) {
  Cluster cluster(2);
  cluster.connect_all();
  grow_backing(cluster, {0, 1}, new_size);
  // node1 prepares node0's resize (its vote waits for its disk size), then promotes itself.
  // (--assume-clean: a resync of the new area would make node1 Inconsistent, not promotable.)
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Resize{0, true}).pending);
  cluster.collect(0);
  cluster.answer_disk_size_checks();  // node0's own size; sends the prepare
  cluster.deliver_messages();         // node1 asks its disk
  const AdminResult promote = cluster.nodes[1].on_admin(cluster.now, Promote{});
  cluster.collect(1);
  cluster.settle();
  ASSERT_TRUE(cluster.nodes[0].resize_outcome().has_value());
  EXPECT_TRUE(cluster.nodes[0].resize_outcome()->ok);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), new_size);
  if (promote.pending) {
    ASSERT_TRUE(cluster.nodes[1].promotion_outcome().has_value());
    EXPECT_TRUE(cluster.nodes[1].promotion_outcome()->ok)
        << cluster.nodes[1].promotion_outcome()->code << ": "
        << cluster.nodes[1].promotion_outcome()->message;
  }
  EXPECT_TRUE(promote.ok) << promote.code << ": " << promote.message;
  EXPECT_EQ(cluster.nodes[1].role(), Role::primary);
}

TEST(NodeResize, AStateReportAPeerSentBeforeItsCommitDoesNotUndoTheResize) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  grow_backing(cluster, {0, 1, 2}, new_size);
  // node2's last StateReport to node0 from before the resize: old usable and current sizes.
  std::optional<wire::Message> stale;
  for (const auto& [index, send] : cluster.sent) {
    if (index == 2 && send.peer == node_id(0) &&
        std::holds_alternative<wire::StateReport>(send.message)) {
      stale = send.message;
    }
  }
  ASSERT_TRUE(stale.has_value());
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Resize{}).pending);
  cluster.collect(1);
  // Step until node0 committed and node2 has not yet (the commit to node0 goes first).
  for (int step = 0; step < 1000; ++step) {
    if (cluster.nodes[0].size_bytes() == new_size) break;
    if (!cluster.answer_disk_size_checks() && !cluster.deliver_one()) break;
  }
  ASSERT_EQ(cluster.nodes[0].size_bytes(), new_size);
  ASSERT_EQ(cluster.nodes[2].size_bytes(), old_size);
  cluster.nodes[0].on_message(cluster.now, node_id(2), *stale, PayloadHandle{});
  cluster.collect(0);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), new_size);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(2))->connection, ConnectionState::connected);
  EXPECT_TRUE(cluster.disconnects.empty());
  cluster.settle();
  for (int index = 0; index < 3; ++index) {
    EXPECT_EQ(cluster.nodes[index].size_bytes(), new_size) << "node " << index;
  }
}

}  // namespace
}  // namespace ditto::core
