// Volume sizes in the handshake (core/node_sizes.cpp): diskful nodes agree on the smaller disk,
// a diskless client learns its size from a diskful peer, and sizes that cannot be reconciled
// refuse the connection with a reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

constexpr std::uint64_t mib = 1024 * 1024;

// Node i gets sizes[i] bytes (a diskful disk, or a diskless client's configured size).
Cluster cluster_with_sizes(const std::map<int, std::uint64_t>& sizes, int count,
                           const std::map<int, bool>& diskless = {}) {
  return Cluster(count, [&](NodeConfig& config) {
    const int index = config.node_id.value;
    if (auto size = sizes.find(index); size != sizes.end()) {
      config.volume_size_bytes = size->second;
    }
    if (auto found = diskless.find(index); found != diskless.end() && found->second) {
      config.intentional_diskless = true;
    }
  });
}

bool has_event(const Cluster& cluster, int index, const std::string& needle) {
  for (const auto& [node, line] : cluster.events) {
    if (node == index && line.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(NodeSizes, TwoDiskfulNodesWithDifferentDisksAgreeOnTheSmallerOne) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 1 * mib}}, 2);
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 1 * mib);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 1 * mib);
  // The bigger node still reports its whole disk as usable, and its bitmap covers the agreed size.
  EXPECT_EQ(cluster.nodes[0].usable_size_bytes(), 2 * mib);
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(node_id(1)).sectors(), 1 * mib / 512);
  EXPECT_TRUE(has_event(cluster, 0, "change device name:r0 volume:0 minor:0 size:1024"));
}

TEST(NodeSizes, TheBiggerNodeRefusesWritesBeyondTheAgreedSize) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 1 * mib}}, 2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 7, (1 * mib) / 512, 1);  // the first block past the agreed end
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(7), ClientStatus::out_of_range);
  cluster.write(0, 8, (1 * mib) / 512 - 8, 1);  // the last block inside it
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(8), ClientStatus::ok);
}

TEST(NodeSizes, ASmallerSizePropagatesThroughAThirdNodeWithoutDroppingConnections) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 2 * mib}, {2, 1 * mib}}, 3);
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 2 * mib);
  cluster.connect(1, 2);  // node 1 shrinks, and tells node 0 in its next StateReport
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 1 * mib);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 1 * mib);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(2))->connection, ConnectionState::connected);
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(NodeSizes, ThreeSecondariesAgreeOnTheSmallestDiskWhateverOrderTheyConnectIn) {
  std::vector<std::pair<int, int>> edges = {{0, 1}, {0, 2}, {1, 2}};
  std::sort(edges.begin(), edges.end());
  int orders = 0;
  do {
    Cluster cluster = cluster_with_sizes({{0, 3 * mib}, {1, 2 * mib}, {2, 1 * mib}}, 3);
    for (const auto& [a, b] : edges) {
      cluster.connect(a, b);
      cluster.settle();
    }
    for (int index = 0; index < 3; ++index) {
      EXPECT_EQ(cluster.nodes[index].size_bytes(), 1 * mib) << "order " << orders;
      for (const PeerStatus& peer : cluster.nodes[index].peers()) {
        EXPECT_EQ(peer.connection, ConnectionState::connected) << "order " << orders;
      }
    }
    EXPECT_TRUE(cluster.disconnects.empty()) << "order " << orders;
    orders += 1;
  } while (std::next_permutation(edges.begin(), edges.end()));
  EXPECT_EQ(orders, 6);
}

TEST(NodeSizes, APrimaryRefusesADiskfulPeerSmallerThanItsCurrentSizeWithAReason) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 1 * mib}}, 2);
  cluster.promote(0);  // alone: it exposes its whole disk
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 2 * mib);  // a Primary never shrinks
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::standalone);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::standalone);
  EXPECT_TRUE(has_event(cluster, 0, "connect-refused name:r0 peer-node-id:1"));
  EXPECT_TRUE(has_event(cluster, 0, "the peer's disk is too small for this Primary"));
  EXPECT_TRUE(has_event(cluster, 1, "our disk is too small for the Primary peer"));
  ASSERT_FALSE(cluster.disconnects.empty());
  for (const auto& [node, drop] : cluster.disconnects) EXPECT_FALSE(drop.reconnect);
}

TEST(NodeSizes, ASecondaryDoesNotShrinkUnderAPrimaryPeerForANewSmallerPeer) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 2 * mib}, {2, 1 * mib}}, 3);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 2 * mib);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(2))->connection, ConnectionState::standalone);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
  EXPECT_TRUE(has_event(cluster, 1, "while a node is Primary"));
}

// Found by the node fuzz test (Robustness.RandomBytesAndMutatedFramesNeverCrashDecodeOrTheNode):
// a Secondary that received a write near the end of the volume, then a StateReport from the
// Primary naming a smaller size, shrank; when the connection then dropped, the write still
// waiting for its PeerAck was marked out of sync toward the other peers beyond the end of the
// shrunken bitmaps (an ASSERT, reachable from the network). What lies beyond the size no
// longer exists: such a mark covers only what remains.
TEST(NodeSizes, AWriteRecordedBeforeTheVolumeShrankIsMarkedOnlyUpToTheNewEnd) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 2 * mib}, {2, 2 * mib}}, 3);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 7, 2 * mib / 512 - 8, 1);  // the last block
  // node 1 receives the Data; no PeerAck comes for it yet.
  while (!cluster.network.empty()) {
    const auto& next = cluster.network.front();
    const bool data_to_node1 =
        next.to == node_id(1) &&
        std::holds_alternative<wire::Data>(std::get<wire::Frame>(wire::decode(next.frame)).message);
    cluster.deliver_one();
    if (data_to_node1) break;
  }
  wire::StateReport smaller;
  smaller.role = Role::primary;
  smaller.disk_state = DiskState::up_to_date;
  smaller.uuids = cluster.nodes[0].generations();
  smaller.usable_size_sectors = 1 * mib / 512;
  smaller.current_size_sectors = 1 * mib / 512;
  cluster.nodes[1].on_message(cluster.now, node_id(0), smaller, PayloadHandle{});
  cluster.collect_all();
  cluster.disconnect(0, 1);  // no PeerAck will come: node 1 marks the write for node 2
  cluster.nodes[1].invariants();
  EXPECT_LE(cluster.nodes[1].bitmap_toward(node_id(2)).count_set() * 4096,
            cluster.nodes[1].size_bytes());
}

TEST(NodeSizes, ADisklessClientWithoutASizeLearnsItFromItsDiskfulPeer) {
  Cluster cluster = cluster_with_sizes({{0, 3 * mib}, {1, 0}}, 2, {{1, true}});
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 0u);
  EXPECT_EQ(cluster.nodes[1].usable_size_bytes(), 0u);
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 3 * mib);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), 3 * mib);  // the diskless peer changes nothing
  EXPECT_TRUE(has_event(cluster, 1, "change device name:r0 volume:0 minor:0 size:3072"));
}

TEST(NodeSizes, ADisklessClientRefusesIoUntilItKnowsItsSize) {
  Cluster cluster = cluster_with_sizes({{0, 1 * mib}, {1, 0}}, 2, {{1, true}});
  cluster.nodes[1].on_client_read(cluster.now, RequestId{5}, Sector{0}, 4096);
  cluster.collect(1);
  EXPECT_EQ(cluster.completion_of(5), ClientStatus::out_of_range);
  cluster.connect(0, 1);
  cluster.nodes[1].on_client_read(cluster.now, RequestId{6}, Sector{0}, 4096);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(6), ClientStatus::ok);
}

TEST(NodeSizes, ADisklessClientWhoseConfiguredSizeDiffersFromItsPeersRefusesWithAReason) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 1 * mib}}, 2, {{1, true}});
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::standalone);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 1 * mib);
  EXPECT_TRUE(has_event(cluster, 1, "the configured size (2048 sectors) differs from the "
                                    "peer's (4096 sectors)"));
}

TEST(NodeSizes, ADisklessClientWhoseConfiguredSizeMatchesConnects) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 2 * mib}}, 2, {{1, true}});
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 2 * mib);
}

TEST(NodeSizes, ADisklessPrimaryRefusesADiskfulPeerSmallerThanTheSizeItWorksWith) {
  Cluster cluster = cluster_with_sizes({{0, 2 * mib}, {1, 0}, {2, 1 * mib}}, 3, {{1, true}});
  cluster.connect(0, 1);
  cluster.promote(1);
  cluster.connect(1, 2);
  EXPECT_EQ(cluster.nodes[1].size_bytes(), 2 * mib);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(2))->connection, ConnectionState::standalone);
  EXPECT_TRUE(has_event(cluster, 2, "our disk is too small for the Primary peer"));
}

TEST(NodeSizes, ANodeRestartedWithAnEqualDiskConnectsWithoutAnySizeEvent) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[0].size_bytes(), cluster.nodes[0].config().volume_size_bytes);
  EXPECT_FALSE(has_event(cluster, 0, "size:"));
  EXPECT_FALSE(has_event(cluster, 1, "size:"));
}

}  // namespace
}  // namespace ditto::core
