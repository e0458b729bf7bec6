// ChangeOptions (core/node_options.cpp): the live options of a running node change in place, as
// drbdsetup's *-options commands do under drbdadm adjust, and the node acts on them where DRBD
// does; a structural change or an unusable value is refused with a reason and changes nothing.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

int count_events(const Cluster& cluster, int node, const std::string& text) {
  int count = 0;
  for (const auto& [index, line] : cluster.events) {
    if (index == node && line.find(text) != std::string::npos) count += 1;
  }
  return count;
}

// The options node `index` runs with, changed by `edit`, applied with ChangeOptions.
AdminResult change_options(Cluster& cluster, int index,
                           const std::function<void(NodeConfig&)>& edit) {
  NodeConfig options = cluster.nodes[index].config();
  edit(options);
  const AdminResult result = cluster.nodes[index].on_admin(cluster.now, ChangeOptions{options});
  cluster.collect(index);
  cluster.drain();
  return result;
}

// The blocks SyncTarget `target` asked for in the ResyncRequests it sent so far.
int blocks_requested(const Cluster& cluster, int target) {
  int blocks = 0;
  for (const auto& [index, send] : cluster.sent) {
    const auto* request = std::get_if<wire::ResyncRequest>(&send.message);
    if (index == target && request != nullptr)
      blocks += static_cast<int>(request->length_bytes / 4096);
  }
  return blocks;
}

// One 100 ms resync step of SyncTarget `target` toward `source`; the blocks it asked for.
int resync_step_blocks(Cluster& cluster, int target, int source) {
  const int before = blocks_requested(cluster, target);
  const std::uint64_t timer = timer_resync_step_base + static_cast<std::uint64_t>(source);
  cluster.timers.erase({target, timer});
  cluster.now = cluster.now + resync_step;
  cluster.nodes[target].on_timer(cluster.now, TimerId{timer});
  cluster.collect(target);
  cluster.drain();
  return blocks_requested(cluster, target) - before;
}

void isolate(Cluster& cluster, int node) {
  for (int peer = 0; peer < static_cast<int>(cluster.nodes.size()); ++peer) {
    if (peer != node) cluster.disconnect(node, peer);
  }
}

QuorumSettings majority(OnNoQuorum on_no_quorum) {
  QuorumSettings settings;
  settings.quorum = QuorumRule{QuorumRule::Kind::majority, 0};
  settings.on_no_quorum = on_no_quorum;
  return settings;
}

TEST(ChangeOptions, LoweringCMaxRateDuringAResyncSlowsTheNextSteps) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.volume_size_bytes = 16u << 20;     // 4096 blocks: many steps of work
    config.c_max_rate_kib = 4000;             // 400 KiB = 100 blocks per 100 ms step
    config.c_fill_target_sectors = 1u << 20;  // never the limit here
    config.resync_rate_kib = 1u << 20;        // nor the controller's first step
  });
  cluster.connect_all();
  const AdminResult invalidated = cluster.nodes[1].on_admin(cluster.now, Invalidate{});
  ASSERT_TRUE(invalidated.ok) << invalidated.code << ": " << invalidated.message;
  cluster.collect(1);
  cluster.drain();
  ASSERT_EQ(cluster.nodes[1].peer(node_id(0))->replication, ReplicationState::sync_target);
  EXPECT_EQ(blocks_requested(cluster, 1), 100);
  EXPECT_EQ(resync_step_blocks(cluster, 1, 0), 100);

  const AdminResult changed =
      change_options(cluster, 1, [](NodeConfig& options) { options.c_max_rate_kib = 800; });
  ASSERT_TRUE(changed.ok) << changed.code << ": " << changed.message;
  EXPECT_EQ(cluster.nodes[1].config().c_max_rate_kib, 800u);
  EXPECT_EQ(resync_step_blocks(cluster, 1, 0), 20);  // 80 KiB per step
  EXPECT_EQ(resync_step_blocks(cluster, 1, 0), 20);
  cluster.settle(10'000);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);  // and it still finishes
}

TEST(ChangeOptions, TurningQuorumOnInAPartitionedMinorityTakesItsQuorumAwayAtOnce) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  isolate(cluster, 0);
  cluster.write(0, 1, 0, 11);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(1), ClientStatus::ok);  // quorum off: the minority writes
  // Node 2, left with the Primary's last generation, reran the handshake with node 1 (which the
  // Primary had left behind first): the transport connects them again.
  if (cluster.nodes[2].peer(NodeId{1})->connection != ConnectionState::connected) {
    cluster.disconnect(1, 2);
    cluster.connect(1, 2);
    cluster.settle();
  }

  for (int node = 0; node < 3; ++node) {
    const AdminResult changed = change_options(cluster, node, [](NodeConfig& options) {
      options.quorum = majority(OnNoQuorum::io_error);
    });
    ASSERT_TRUE(changed.ok) << node << ": " << changed.code << ": " << changed.message;
  }
  EXPECT_FALSE(cluster.nodes[0].have_quorum());
  EXPECT_EQ(count_events(cluster, 0, "quorum:no"), 1);
  EXPECT_TRUE(cluster.nodes[1].have_quorum());  // the majority keeps it
  EXPECT_TRUE(cluster.nodes[2].have_quorum());
  cluster.write(0, 2, 8, 12);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::io_error);
}

TEST(ChangeOptions, TurningQuorumOffThawsWritesFrozenForLackOfIt) {
  Cluster cluster(3, [](NodeConfig& config) { config.quorum = majority(OnNoQuorum::suspend_io); });
  cluster.connect_all();
  cluster.promote(0);
  isolate(cluster, 0);
  cluster.write(0, 1, 0, 11);
  cluster.settle();
  ASSERT_FALSE(cluster.completion_of(1).has_value());  // frozen: suspended:quorum

  const AdminResult changed =
      change_options(cluster, 0, [](NodeConfig& options) { options.quorum = QuorumSettings{}; });
  ASSERT_TRUE(changed.ok) << changed.code << ": " << changed.message;
  cluster.settle();
  EXPECT_TRUE(cluster.nodes[0].have_quorum());
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
}

TEST(ChangeOptions, AddingVerifyAlgLetsAVerifyThatWasRefusedRun) {
  // Slow enough (6 blocks per step) that the verify is still running when we look.
  Cluster cluster(2, [](NodeConfig& config) { config.c_max_rate_kib = 250; });
  cluster.connect_all();
  const AdminResult refused = cluster.nodes[0].on_admin(cluster.now, Verify{node_id(1), {}});
  ASSERT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "SS_NO_VERIFY_ALG");
  for (int node : {0, 1}) {
    const AdminResult changed = change_options(
        cluster, node, [](NodeConfig& options) { options.verify_algorithm = "crc32c"; });
    ASSERT_TRUE(changed.ok) << changed.code << ": " << changed.message;
  }
  const AdminResult started = cluster.nodes[0].on_admin(cluster.now, Verify{node_id(1), {}});
  EXPECT_TRUE(started.ok) << started.code << ": " << started.message;
  cluster.collect(0);
  cluster.drain();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::verify_source);
}

TEST(ChangeOptions, AStructuralChangeIsRefusedWithAReasonAndChangesNothing) {
  Cluster cluster(2);
  cluster.connect_all();
  const NodeConfig before = cluster.nodes[0].config();
  const AdminResult refused = change_options(cluster, 0, [](NodeConfig& options) {
    options.node_id = node_id(5);
    options.peers.clear();
    options.al_extents = 67;
    options.c_max_rate_kib = 800;  // live, but it comes with the refused ones
  });
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "ERR_INVALID_REQUEST");
  EXPECT_NE(refused.message.find("cannot change node-id, peers, al-extents of a running resource"),
            std::string::npos)
      << refused.message;
  EXPECT_EQ(cluster.nodes[0].config().c_max_rate_kib, before.c_max_rate_kib);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
}

TEST(ChangeOptions, AnUnusableValueIsRefusedAndChangesNothing) {
  Cluster cluster(2);
  const AdminResult refused = change_options(cluster, 0, [](NodeConfig& options) {
    options.max_epoch_size = 0;
    options.verify_algorithm = "crc32c";
  });
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "ERR_INVALID_REQUEST");
  EXPECT_NE(refused.message.find("max-epoch-size 0 is not in 1..20000"), std::string::npos)
      << refused.message;
  EXPECT_EQ(cluster.nodes[0].config().verify_algorithm, "");
}

TEST(ChangeOptions, FieldsReadOnlyAtStartAreIgnoredNotRefused) {
  Cluster cluster(2);
  const AdminResult changed = change_options(cluster, 0, [](NodeConfig& options) {
    options.seed = 7;
    options.initial_disk_state = DiskState::inconsistent;
    options.fencing = FencingPolicy::resource_only;
  });
  ASSERT_TRUE(changed.ok) << changed.code << ": " << changed.message;
  EXPECT_EQ(cluster.nodes[0].config().fencing, FencingPolicy::resource_only);
  EXPECT_EQ(cluster.nodes[0].config().seed, 42u);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
}

}  // namespace
}  // namespace ditto::core
