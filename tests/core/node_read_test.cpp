// Reads through peers (core/node_read.cpp, drbd9-semantics.md §9): a node without an UpToDate
// disk reads from its UpToDate peers, the read-balancing policy spreads reads, and a read whose
// peer fails or disconnects is retried elsewhere or fails; it never hangs.
#include <gtest/gtest.h>

#include <vector>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

// Node 0 has no disk (`disk none`), nodes 1 and 2 do; all connected, node 0 Primary. A read a
// node serves carries the payload 100 + its index, so a test sees who served it.
struct DisklessCluster {
  explicit DisklessCluster(int count, ReadBalancing policy = ReadBalancing::prefer_local)
      : cluster(count, [policy](NodeConfig& config) {
          config.intentional_diskless = config.node_id.value == 0;
          config.read_balancing = policy;
        }) {
    cluster.payload_of = [](int index, const DiskRead&) { return 100u + index; };
    cluster.connect_all();
    cluster.settle();
    cluster.promote(0);
  }

  // Reads one block at `sector` on node 0 and returns the completion (after everything ran).
  CompleteClient read(std::uint64_t request, std::uint64_t sector) {
    cluster.nodes[0].on_client_read(cluster.now, RequestId{request}, Sector{sector}, 4096);
    cluster.drain();
    for (const auto& [index, done] : cluster.completions) {
      if (done.request.value == request) return done;
    }
    ADD_FAILURE() << "read " << request << " did not complete";
    return {};
  }

  // The peer each ReadRequest node 0 sent went to, in order.
  std::vector<int> read_request_targets() const {
    std::vector<int> targets;
    for (const auto& [index, send] : cluster.sent) {
      if (index == 0 && std::holds_alternative<wire::ReadRequest>(send.message)) {
        targets.push_back(send.peer.value);
      }
    }
    return targets;
  }

  Cluster cluster;
};

TEST(ReadThroughPeers, ADisklessPrimaryReadsWhatItWroteThroughAnUpToDatePeer) {
  DisklessCluster diskless(3);
  ASSERT_EQ(diskless.cluster.nodes[0].disk_state(), DiskState::diskless);
  diskless.cluster.write(0, 1, 8, 7);
  diskless.cluster.drain();
  ASSERT_EQ(diskless.cluster.completion_of(1), ClientStatus::ok);
  const CompleteClient done = diskless.read(2, 8);
  EXPECT_EQ(done.status, ClientStatus::ok);
  EXPECT_FALSE(done.read_io.has_value());  // no local disk read it
  ASSERT_TRUE(done.read_payload.has_value());
  EXPECT_EQ(done.read_payload->value, 101u);  // node 1: the lowest node id goes first
  EXPECT_EQ(diskless.read_request_targets(), std::vector<int>{1});
}

// A diskless Primary replicates to an Inconsistent SyncTarget of another node too (swarm seed
// 870), but a write that would reach Inconsistent disks only has no good copy to join: it fails,
// and no peer stores it.
TEST(WriteThroughPeers, ADisklessPrimaryWhoseOnlyReachablePeerIsInconsistentFailsTheWrite) {
  DisklessCluster diskless(3);
  Cluster& cluster = diskless.cluster;
  ASSERT_TRUE(cluster.nodes[2].on_admin(cluster.now, Invalidate{NodeId{1}}).ok);
  cluster.deliver_messages();  // node2 becomes SyncTarget of node1, its blocks not written yet
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::inconsistent);
  cluster.disconnect(0, 1);
  cluster.write(0, 1, 8, 7);
  cluster.collect(0);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::io_error);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::data), 0);
}

TEST(ReadThroughPeers, RoundRobinSpreadsADisklessNodesReadsOverBothPeers) {
  DisklessCluster diskless(3, ReadBalancing::round_robin);
  for (std::uint64_t request = 1; request <= 4; ++request) {
    EXPECT_EQ(diskless.read(request, 8 * request).status, ClientStatus::ok);
  }
  EXPECT_EQ(diskless.read_request_targets(), (std::vector<int>{1, 2, 1, 2}));
}

TEST(ReadThroughPeers, StripingSendsEachStripeToItsPeer) {
  DisklessCluster diskless(3, ReadBalancing::striping_32k);
  EXPECT_EQ(diskless.read(1, 0).status, ClientStatus::ok);
  EXPECT_EQ(diskless.read(2, 64).status, ClientStatus::ok);
  EXPECT_EQ(diskless.read(3, 120).status, ClientStatus::ok);
  EXPECT_EQ(diskless.read_request_targets(), (std::vector<int>{1, 2, 2}));
}

TEST(ReadThroughPeers, AReadWhosePeerDisconnectsBeforeAnsweringIsRetriedOnTheOtherPeer) {
  DisklessCluster diskless(3);
  Cluster& cluster = diskless.cluster;
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.collect(0);
  ASSERT_EQ(diskless.read_request_targets(), std::vector<int>{1});
  cluster.disconnect(0, 1);  // the request to node 1 is lost with the connection
  cluster.drain();
  EXPECT_EQ(diskless.read_request_targets(), (std::vector<int>{1, 2}));
  ASSERT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.completions.back().second.read_payload->value, 102u);
}

TEST(ReadThroughPeers, AReadWhoseOnlyPeerDisconnectsFailsWithAnIoError) {
  DisklessCluster diskless(2);
  Cluster& cluster = diskless.cluster;
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.collect(0);
  cluster.disconnect(0, 1);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::io_error);
  // With no UpToDate disk anywhere in reach, the next read is refused at once.
  cluster.nodes[0].on_client_read(cluster.now, RequestId{2}, Sector{0}, 4096);
  cluster.collect(0);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::no_data);
}

TEST(ReadThroughPeers, APeerThatLeftUpToDateAnswersReadFailedAndTheReadMovesOn) {
  DisklessCluster diskless(3);
  Cluster& cluster = diskless.cluster;
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.collect(0);
  // Node 1 detaches before the request reaches it.
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Detach{}).ok);
  cluster.drain();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::read_failed), 1);
  EXPECT_EQ(diskless.read_request_targets(), (std::vector<int>{1, 2}));
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
}

TEST(ReadThroughPeers, AServingPeerWhoseDiskReadFailsAnswersReadFailed) {
  DisklessCluster diskless(2);
  Cluster& cluster = diskless.cluster;
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.deliver_messages();
  cluster.complete_disk(1, IoStatus::io_error);
  cluster.drain();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::read_failed), 1);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::io_error);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::diskless);  // on-io-error detach
}

TEST(ReadThroughPeers, AFailedLocalReadIsRetriedOnAPeer) {
  Cluster cluster(2);
  cluster.payload_of = [](int index, const DiskRead&) { return 100u + index; };
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.collect(0);
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.drain();
  ASSERT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.completions.back().second.read_payload->value, 101u);
}

TEST(ReadThroughPeers, ReadBalancingChangesLiveWithChangeOptions) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.drain();
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::read_request), 0);  // prefer-local
  NodeConfig options = cluster.nodes[0].config();
  options.read_balancing = ReadBalancing::prefer_remote;
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, ChangeOptions{options}).ok);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{2}, Sector{0}, 4096);
  cluster.drain();
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::read_request), 1);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
}

TEST(ReadThroughPeers, AnInconsistentSyncTargetReadsThroughItsUpToDateSource) {
  Cluster cluster(2);
  cluster.payload_of = [](int index, const DiskRead&) { return 100u + index; };
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.disconnect(0, 1);
  cluster.write(0, 1, 0, 3);  // node 1 misses it
  cluster.drain();
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
  cluster.deliver_messages();  // handshake and bitmaps, no resync block written yet
  ASSERT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  cluster.nodes[1].on_client_read(cluster.now, RequestId{2}, Sector{0}, 4096);
  cluster.collect(1);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::read_request), 1);
  cluster.deliver_messages();
  cluster.complete_disk(0);
  cluster.deliver_messages();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_EQ(cluster.completions.back().second.read_payload->value, 100u);
}

TEST(ReadThroughPeers, AReadAPeerFailedGoesToTheLocalDiskWhenItIsUpToDate) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.read_balancing = ReadBalancing::prefer_remote;
  });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{1}, Sector{0}, 4096);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{2}, Sector{8}, 4096);
  cluster.deliver_messages();
  cluster.complete_disk(1, IoStatus::io_error);  // node 1 fails both reads
  cluster.deliver_messages();
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::read_failed), 2);
  cluster.complete_disk(0);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_TRUE(cluster.completions.back().second.read_io.has_value());  // from the local disk
}

TEST(ReadThroughPeers, AReadAnswerForARequestNeverSentDropsTheConnection) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.nodes[0].on_message(cluster.now, NodeId{1}, wire::ReadFailed{77, Sector{0}, 4096},
                              PayloadHandle{});
  cluster.collect(0);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_NE(cluster.disconnects.front().second.reason.find("not a read this node asked"),
            std::string::npos);
}

}  // namespace
}  // namespace ditto::core
