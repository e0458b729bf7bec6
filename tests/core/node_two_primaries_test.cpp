// Two Primaries (allow-two-primaries, for live migration; drbd9-semantics.md §1.4, §1.7
// invariant 2, §2.3 last bullet): a second node may promote while a peer is Primary, both
// replicate to each other and to the Secondaries, and overlapping concurrent writes of the two
// are detected and drop the connection (never merged silently).
#include <gtest/gtest.h>

#include <map>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;
using wire::MessageType;

void two_primaries(NodeConfig& config) {
  config.allow_two_primaries = true;
}

// What each node's disk holds, by sector: the payload of the last DiskWrite issued there (the
// harness completes disk I/O in issue order).
struct Disks {
  std::map<int, std::map<std::uint64_t, std::uint64_t>> images;
  void watch(Cluster& cluster) {
    cluster.observer = [this](int node, const Action& action) {
      if (const auto* write = std::get_if<DiskWrite>(&action)) {
        images[node][write->sector.value] = write->payload.value;
      }
    };
  }
};

// Every node is on the same data generation (bit 0, the Primary flag, masked).
void expect_one_generation(const Cluster& cluster) {
  for (std::size_t node = 1; node < cluster.nodes.size(); ++node) {
    EXPECT_EQ(comparable_current(cluster.nodes[node].generation()),
              comparable_current(cluster.nodes[0].generation()))
        << "node " << node;
  }
}

// No node marked a block out of sync toward any other: every write reached every replica.
void expect_no_block_out_of_sync(const Cluster& cluster) {
  const int count = static_cast<int>(cluster.nodes.size());
  for (int node = 0; node < count; ++node) {
    for (int peer = 0; peer < count; ++peer) {
      if (peer == node) continue;
      EXPECT_EQ(cluster.nodes[node].bitmap_toward(node_id(peer)).count_set(), 0u)
          << "node " << node << " toward " << peer;
    }
  }
}

// Connects every node and promotes nodes 0 and 1, watching what the disks hold.
void both_primary(Cluster& cluster, Disks& disks) {
  disks.watch(cluster);
  cluster.connect_all();
  cluster.promote(0);
  cluster.promote(1);
}

int count_events(const Cluster& cluster, int index, const std::string& prefix) {
  int count = 0;
  for (const auto& [node, line] : cluster.events) {
    if (node == index && line.rfind(prefix, 0) == 0) count += 1;
  }
  return count;
}

TEST(TwoPrimaries, ASecondNodePromotesWhileAPeerIsPrimaryWhenAllowTwoPrimariesIsOn) {
  Cluster cluster(3, two_primaries);
  cluster.connect_all();
  cluster.promote(0);
  const AdminResult result = cluster.nodes[1].on_admin(cluster.now, Promote{});
  EXPECT_TRUE(result.ok) << result.code << ": " << result.message;
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  EXPECT_EQ(cluster.nodes[1].role(), Role::primary);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->role, Role::primary);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->role, Role::primary);
  EXPECT_EQ(cluster.nodes[2].peer(node_id(0))->role, Role::primary);
  EXPECT_EQ(cluster.nodes[2].peer(node_id(1))->role, Role::primary);
  EXPECT_TRUE(cluster.disconnects.empty());
  // events2: the Secondary's connection to the second Primary says so.
  EXPECT_GE(count_events(cluster, 2,
                         "change connection name:r0 peer-node-id:1 conn-name:node1 "
                         "connection:Connected role:Primary"),
            1);
}

TEST(TwoPrimaries, ASecondPromotionIsRefusedWhenAParticipantHasAllowTwoPrimariesOff) {
  // Node 1 allows two Primaries and asks; node 0, the Primary, does not and votes no. Nodes
  // that disagree on the option do not connect (connection_settings_test.cpp), so node 0 turns
  // it off live (adjust on one node only) after the handshake.
  Cluster cluster(2, [](NodeConfig& config) { config.allow_two_primaries = true; });
  cluster.connect_all();
  cluster.promote(0);
  NodeConfig off = cluster.nodes[0].config();
  off.allow_two_primaries = false;
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, ChangeOptions{off}).ok);
  cluster.collect_all();
  const AdminResult result = cluster.nodes[1].on_admin(cluster.now, Promote{});
  EXPECT_TRUE(result.pending);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].role(), Role::secondary);
  ASSERT_TRUE(cluster.nodes[1].promotion_outcome().has_value());
  EXPECT_EQ(cluster.nodes[1].promotion_outcome()->code, "SS_TWO_PRIMARIES");
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(TwoPrimaries, NonOverlappingConcurrentWritesOfBothPrimariesReplicateEverywhere) {
  Cluster cluster(3, two_primaries);
  Disks disks;
  both_primary(cluster, disks);
  // Both write before either write reached a peer: different blocks, no conflict.
  cluster.write(0, 1, 0, 11);
  cluster.write(1, 2, 8, 22);
  cluster.write(0, 3, 16, 33);
  cluster.write(1, 4, 24, 44);
  cluster.settle();
  for (std::uint64_t request = 1; request <= 4; ++request) {
    EXPECT_EQ(cluster.completion_of(request), ClientStatus::ok) << "request " << request;
  }
  EXPECT_TRUE(cluster.disconnects.empty());
  EXPECT_EQ(count_events(cluster, 0, "concurrent-writes"), 0);
  EXPECT_EQ(count_events(cluster, 1, "concurrent-writes"), 0);
  // Both started a generation with their first write at once (day 0): they agree on one.
  expect_one_generation(cluster);
  const std::map<std::uint64_t, std::uint64_t> expected{{0, 11}, {8, 22}, {16, 33}, {24, 44}};
  for (int node = 0; node < 3; ++node) EXPECT_EQ(disks.images[node], expected) << "node " << node;
  expect_no_block_out_of_sync(cluster);
}

TEST(TwoPrimaries, OverlappingConcurrentWritesAreDetectedAndDropTheConnection) {
  Cluster cluster(2, two_primaries);
  cluster.connect_all();
  cluster.promote(0);
  cluster.promote(1);
  cluster.write(0, 9, 64, 99);  // a first write, replicated: both on one generation
  cluster.settle();
  cluster.write(0, 1, 0, 11);
  cluster.write(1, 2, 0, 22);  // the same block, before node 0's write arrived
  cluster.settle();
  // Each side sees the other's write overlap its own one in flight.
  EXPECT_EQ(count_events(cluster, 0,
                         "concurrent-writes name:r0 peer-node-id:1 conn-name:node1 "
                         "local-sector:0 local-size:4096 peer-sector:0 peer-size:4096"),
            1);
  EXPECT_EQ(count_events(cluster, 1,
                         "concurrent-writes name:r0 peer-node-id:0 conn-name:node0 "
                         "local-sector:0 local-size:4096 peer-sector:0 peer-size:4096"),
            1);
  ASSERT_FALSE(cluster.disconnects.empty());
  EXPECT_NE(cluster.disconnects.front().second.reason.find("concurrent writes"), std::string::npos);
  EXPECT_NE(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_NE(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
  // The client writes complete as with a lost peer: stored locally, marked out of sync.
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_GT(cluster.nodes[0].bitmap_toward(node_id(1)).count_set(), 0u);
  EXPECT_GT(cluster.nodes[1].bitmap_toward(node_id(0)).count_set(), 0u);
  // Reconnecting finds the diverged data: a split brain between two Primaries, which the
  // default after-sb-2pri (disconnect) leaves to the administrator. Nothing was merged.
  cluster.events.clear();
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_GE(count_events(cluster, 0, "call helper name:r0 peer-node-id:1"), 1);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::standalone);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::standalone);
}

TEST(TwoPrimaries, ALocalWriteOverlappingAPeerWriteNotYetOnTheLocalDiskIsAConflict) {
  Cluster cluster(2, two_primaries);
  cluster.connect_all();
  cluster.promote(0);
  cluster.promote(1);
  cluster.write(0, 1, 0, 11);
  cluster.deliver_messages();  // node 1 submitted node 0's write; its disk has not completed it
  ASSERT_FALSE(cluster.pending_writes(1).empty());
  cluster.write(1, 2, 0, 22);
  EXPECT_EQ(count_events(cluster, 1, "concurrent-writes name:r0 peer-node-id:0"), 1);
  EXPECT_NE(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
  cluster.disconnect(0, 1);  // the transport carries node 1's drop to node 0
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
}

// A Secondary cannot order two overlapping writes that arrive from the two Primaries on two
// connections: the later one is a conflict too, never written, and drops its connection.
TEST(TwoPrimaries, ASecondaryDropsThePrimaryWhoseWriteOverlapsTheOtherPrimarysWriteInFlight) {
  Cluster cluster(3, two_primaries);
  Disks disks;
  both_primary(cluster, disks);
  cluster.write(0, 1, 0, 11);
  cluster.write(1, 2, 0, 22);
  cluster.deliver_messages();  // no disk completes: node 2 holds node 0's write in flight
  EXPECT_EQ(count_events(cluster, 2,
                         "concurrent-writes name:r0 peer-node-id:1 conn-name:node1 "
                         "local-sector:0 local-size:4096 peer-sector:0 peer-size:4096"),
            1);
  EXPECT_NE(cluster.nodes[2].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[2].peer(node_id(0))->connection, ConnectionState::connected);
  EXPECT_EQ(disks.images[2].at(0), 11u);  // node 1's write never reached node 2's disk
  EXPECT_EQ(cluster.pending_writes(2).size(), 1u);
}

TEST(TwoPrimaries, AWriteAfterThePeersOverlappingWriteCompletedIsNoConflict) {
  Cluster cluster(2, two_primaries);
  Disks disks;
  both_primary(cluster, disks);
  cluster.write(0, 1, 0, 11);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(1), ClientStatus::ok);
  cluster.write(1, 2, 0, 22);  // the same block, strictly after: ordered, not concurrent
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_TRUE(cluster.disconnects.empty());
  EXPECT_EQ(disks.images[0], disks.images[1]);
  EXPECT_EQ(disks.images[0].at(0), 22u);
}

// Live migration: the VM runs on node 0, node 1 promotes too, the VM moves (node 0 stops
// writing and demotes), and node 1 writes. Every replica ends identical and in sync.
TEST(TwoPrimaries, ALiveMigrationReplicatesEveryWriteOfBothPrimaries) {
  Cluster cluster(3, two_primaries);
  Disks disks;
  disks.watch(cluster);
  cluster.connect_all();
  cluster.promote(0);
  for (std::uint64_t i = 0; i < 4; ++i) cluster.write(0, 1 + i, 8 * i, 10 + i);
  cluster.settle();
  cluster.promote(1);
  cluster.write(0, 5, 40, 15);  // the last write before the VM pauses on node 0
  cluster.settle();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Demote{}).ok);
  cluster.settle();
  for (std::uint64_t i = 0; i < 4; ++i) cluster.write(1, 6 + i, 8 * i, 20 + i);
  cluster.settle();
  for (std::uint64_t request = 1; request <= 9; ++request) {
    EXPECT_EQ(cluster.completion_of(request), ClientStatus::ok) << "request " << request;
  }
  EXPECT_TRUE(cluster.disconnects.empty());
  EXPECT_EQ(cluster.nodes[0].role(), Role::secondary);
  EXPECT_EQ(cluster.nodes[1].role(), Role::primary);
  EXPECT_EQ(disks.images[0], disks.images[1]);
  EXPECT_EQ(disks.images[0], disks.images[2]);
  EXPECT_EQ(disks.images[2].at(0), 20u);
  expect_one_generation(cluster);
  EXPECT_EQ(disks.images[2].at(40), 15u);
  expect_no_block_out_of_sync(cluster);
}

TEST(TwoPrimaries, AfterADemotionTheSingleRemainingPrimaryRulesApplyAgainWithTheOptionOff) {
  Cluster cluster(2, two_primaries);
  cluster.connect_all();
  cluster.promote(0);
  cluster.promote(1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Demote{}).ok);
  cluster.settle();
  // Turning the option off is refused while two Primaries exist, allowed with one.
  NodeConfig off = cluster.nodes[0].config();
  off.allow_two_primaries = false;
  EXPECT_TRUE(cluster.nodes[0].on_admin(cluster.now, ChangeOptions{off}).ok);
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_TWO_PRIMARIES");
}

TEST(TwoPrimaries, TurningTheOptionOffWhileTwoPrimariesAreConnectedIsRefused) {
  Cluster cluster(2, two_primaries);
  cluster.connect_all();
  cluster.promote(0);
  cluster.promote(1);
  NodeConfig off = cluster.nodes[0].config();
  off.allow_two_primaries = false;
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, ChangeOptions{off});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("allow-two-primaries"), std::string::npos) << result.message;
  EXPECT_TRUE(cluster.nodes[0].config().allow_two_primaries);
}

TEST(TwoPrimaries, ChangeOptionsTurnsTheOptionOnForARunningNode) {
  Cluster cluster(2);
  cluster.connect_all();
  cluster.promote(0);
  for (int node = 0; node < 2; ++node) {
    NodeConfig on = cluster.nodes[node].config();
    on.allow_two_primaries = true;
    ASSERT_TRUE(cluster.nodes[node].on_admin(cluster.now, ChangeOptions{on}).ok);
  }
  cluster.promote(1);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->role, Role::primary);
}

TEST(TwoPrimaries, AllowTwoPrimariesWithProtocolAIsRefusedByChangeOptions) {
  Cluster cluster(2, [](NodeConfig& config) { config.protocol = Protocol::a; });
  NodeConfig on = cluster.nodes[0].config();
  on.allow_two_primaries = true;
  const AdminResult result = cluster.nodes[0].on_admin(cluster.now, ChangeOptions{on});
  EXPECT_FALSE(result.ok);
  EXPECT_NE(result.message.find("requires protocol C"), std::string::npos) << result.message;
}

}  // namespace
}  // namespace ditto::core
