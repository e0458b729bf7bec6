// on-io-error detach and what a write that loses a peer does to the data generation, driven by
// hand (the simulator seeds 2, 3, 186 and 110 in tests/sim/regression_test.cpp found these).
#include <gtest/gtest.h>

#include <string>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

int count_events(const Cluster& cluster, int node, const std::string& text) {
  int count = 0;
  for (const auto& [index, line] : cluster.events) {
    if (index == node && line.find(text) != std::string::npos) count += 1;
  }
  return count;
}

TEST(Detach, AWriteErrorOnThePrimaryDetachesItsDiskAndTheWriteSucceedsThroughThePeer) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 6, 0, 1);
  cluster.deliver_messages();
  cluster.complete_disk(0, IoStatus::io_error);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  EXPECT_EQ(count_events(cluster, 0, "change device name:r0 volume:0 minor:0 disk:Failed"), 1);
  EXPECT_EQ(count_events(cluster, 0, "change device name:r0 volume:0 minor:0 disk:Diskless"), 1);
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(6), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->disk, DiskState::diskless);  // StateReport
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);

  // No stale data: reads and writes go to the UpToDate peer alone.
  cluster.nodes[0].on_client_read(cluster.now, RequestId{7}, Sector{0}, 4096);
  cluster.collect(0);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::read_request), 1);
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(7), ClientStatus::ok);
  cluster.write(0, 8, 8, 2);
  EXPECT_TRUE(cluster.pending_writes(0).empty());
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(8), ClientStatus::ok);
}

TEST(Detach, ADisklessPrimaryWithoutAnUpToDatePeerFailsWritesInsteadOfLosingThem) {
  Cluster cluster(2);
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.complete_disk(0, IoStatus::io_error);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::io_error);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  cluster.write(0, 2, 0, 2);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::io_error);
}

TEST(Detach, AWriteErrorOnASecondaryDetachesItAndThePrimaryStopsReplicatingToIt) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  const std::uint64_t generation = cluster.nodes[0].generation();
  cluster.write(0, 1, 0, 1);
  cluster.deliver_messages();
  cluster.complete_disk(1, IoStatus::io_error);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::diskless);
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::diskless);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::connected);
  EXPECT_NE(cluster.nodes[0].generation(), generation);  // the data moved on without node 1
  EXPECT_TRUE(cluster.disconnects.empty());              // late acks are not protocol errors

  const int data_before = cluster.count_sent(0, wire::MessageType::data);
  cluster.write(0, 2, 8, 2);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::data), data_before + 1);  // node 2 only
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_NE(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(Detach, AWriteInFlightToALostPeerStartsANewGenerationBeforeThePeerReconnects) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 9, 64, 9);  // both leave the day-0 generation (else: a full sync)
  cluster.settle();
  const std::uint64_t generation = cluster.nodes[0].generation();
  cluster.write(0, 1, 0, 1);
  cluster.disconnect(0, 1);  // the Data never arrives
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_NE(cluster.nodes[0].generation(), generation);
  cluster.connect(0, 1);  // no write in between: the peer must still see it missed one
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_total_blocks, 1u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

// §3.2: a local disk failure while Primary flags a new generation, and a diskless Primary
// carries it to its peers (DRBD's P_CURRENT_UUID); they rotate the old UUID into their slot
// toward it (its disk misses the writes), and again toward a peer it loses later.
TEST(Detach, ADisklessPrimaryStartsANewGenerationThatItsPeersAdopt) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.settle();
  const std::uint64_t first = cluster.nodes[1].generation();
  ASSERT_EQ(cluster.nodes[2].generation(), first);
  cluster.write(0, 2, 8, 2);
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  cluster.write(0, 3, 16, 3);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
  const std::uint64_t second = cluster.nodes[1].generation();
  EXPECT_NE(second, first);
  EXPECT_EQ(cluster.nodes[2].generation(), second);
  EXPECT_EQ(cluster.nodes[1].generations().bitmap[0], first);
  EXPECT_EQ(cluster.nodes[2].generations().bitmap[0], first);
  // Writing on does not start another generation while nothing else changed...
  cluster.write(0, 4, 24, 4);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].generation(), second);
  // ...losing a peer does, and the remaining peer tracks the lost one from there.
  cluster.disconnect(0, 2);
  cluster.write(0, 5, 32, 5);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(5), ClientStatus::ok);
  EXPECT_NE(cluster.nodes[1].generation(), second);
  EXPECT_EQ(cluster.nodes[1].generations().bitmap[2], second);
}

// Node 0, Primary, writes on with node 2 after node 1 was cut off (write 2), and its disk fails
// on write 3: a diskless Primary exposing a generation node 1 never had, node 1 still UpToDate.
// Returns node 1's generation.
std::uint64_t cut_off_node1_then_fail_the_primarys_disk(Cluster& cluster) {
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.settle();
  const std::uint64_t first = cluster.nodes[1].generation();
  cluster.disconnect(1, 2);
  cluster.disconnect(0, 1);  // node 1 hears of no newer generation: it stays UpToDate
  cluster.write(0, 2, 8, 2);
  cluster.settle();
  cluster.write(0, 3, 16, 3);
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.settle();
  return first;
}

// §1.5 "do not trust" (quorum swarm seed 1669): a diskless Primary exposes the data of its
// current UUID. A diskful node that missed its writes reconnects with an older current UUID and
// claims UpToDate; the Primary does not take that at its word (DRBD sanitize_state: downgraded
// to Consistent, or Outdated when another peer's bitmap UUID shows its data is an ancestor). It
// gets no writes, does not adopt the Primary's next generation, and resyncs when it meets a node
// with the data.
TEST(Detach, ADisklessPrimaryDoesNotTrustAReturningPeerWithAnOlderGeneration) {
  Cluster cluster(3);
  const std::uint64_t first = cut_off_node1_then_fail_the_primarys_disk(cluster);
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  ASSERT_EQ(cluster.completion_of(3), ClientStatus::ok);
  const std::uint64_t exposed = cluster.nodes[2].generation();
  ASSERT_NE(exposed, first);
  ASSERT_EQ(cluster.nodes[1].generation(), first);
  ASSERT_EQ(cluster.nodes[2].generations().bitmap[1], first);
  ASSERT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);

  cluster.connect(0, 1);
  cluster.settle();
  // Consistent: node 0 has not heard node 2's slot toward node 1 (a Secondary does not report
  // the generations it adopts), which would make it Outdated.
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::consistent);
  const std::uint64_t received = cluster.nodes[1].peer(NodeId{0})->received_bytes;
  cluster.write(0, 4, 24, 4);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(4), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[1].generation(), first);  // no generation without its writes
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->received_bytes, received);  // none of its writes
  EXPECT_NE(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::up_to_date);

  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].generation(), cluster.nodes[2].generation());
  EXPECT_GT(cluster.nodes[1].peer(NodeId{2})->resync_total_blocks, 0u);
}

// The distrust outlives the Primary's diskless days (quorum swarm seed 3496): a disk it attaches
// and resyncs from a peer with its data does not give the distrusted peer that data. The peer
// is no replication target, does not adopt the Primary's generations, and once the Primary is
// UpToDate again it is reconnected and resynced.
TEST(Detach, APrimarysDistrustOfAPeerOutlivesTheDiskItAttachesAgain) {
  Cluster cluster(3);
  const std::uint64_t first = cut_off_node1_then_fail_the_primarys_disk(cluster);
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  cluster.connect(0, 1);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::consistent);

  Attach disk;
  disk.disk = DiskState::inconsistent;
  disk.generations = cluster.nodes[2].generations();
  const AdminResult attached = cluster.nodes[0].on_admin(cluster.now, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  bool adopted_without_resync = false;
  cluster.observer = [&](int index, const Action&) {
    if (index != 1 || cluster.nodes[1].disk_state() != DiskState::up_to_date) return;
    if (comparable_current(cluster.nodes[1].generation()) != comparable_current(first) &&
        cluster.nodes[1].peer(NodeId{0})->resync_total_blocks == 0) {
      adopted_without_resync = true;
    }
  };
  cluster.collect_all();
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  // The Primary, UpToDate, dropped the link to resync node 1; the transport makes it again.
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::connecting);
  cluster.disconnect(0, 1);
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_FALSE(adopted_without_resync);
  cluster.write(0, 4, 24, 4);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(4), ClientStatus::ok);
  EXPECT_FALSE(adopted_without_resync);
  // Resynced by the Primary before any write of it reached node 1.
  EXPECT_GT(cluster.nodes[1].peer(NodeId{0})->resync_total_blocks, 0u);
  EXPECT_EQ(comparable_current(cluster.nodes[1].generation()),
            comparable_current(cluster.nodes[0].generation()));
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::up_to_date);
}

// §3.5 step 3: two Secondaries lose their Primary with different writes received and equal
// generations (the Primary's bump never reached them). The one that received more of its writes
// (dagtag) is the resync source, whatever the node ids say.
TEST(Detach, SecondariesThatLostThePrimaryReconcileFromTheOneThatReceivedMore) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.settle();
  cluster.write(0, 2, 8, 2);
  // Node 1 never gets the Data; node 2 stores it.
  std::erase_if(cluster.network, [](const Cluster::InFlight& message) {
    return message.from.value == 0 && message.to.value == 1;
  });
  cluster.deliver_messages();
  cluster.complete_disk(2);
  cluster.complete_disk(0);
  // The Primary vanishes: nothing it sends from now on (its new generation) arrives.
  cluster.disconnect(1, 2);
  for (int peer : {1, 2}) {
    cluster.nodes[0].on_connection_down(cluster.now, harness::node_id(peer));
    cluster.nodes[peer].on_connection_down(cluster.now, harness::node_id(0));
  }
  cluster.collect_all();
  cluster.network.clear();
  cluster.drain();
  ASSERT_EQ(cluster.nodes[1].generation(), cluster.nodes[2].generation());
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->replication, ReplicationState::established);
  // Node 1 was the SyncTarget: it wrote the blocks; its source wrote none.
  EXPECT_GE(cluster.nodes[1].peer(NodeId{2})->resync_done_blocks, 1u);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->resync_done_blocks, 0u);
}

// Quorum+diskless swarm seed 3184: the Primary moved on without node 2 (Outdated, told by node 1)
// and then vanished. Node 1, the only holder of the newer generation, was still connected to
// node 2 and nobody resynced it; node 2 later took an UpToDate copy of the old generation from a
// third stale node, was promoted, and node 1 adopted its generation over the acknowledged
// writes. Losing its Primary, node 1 now reruns the handshake with such a peer and resyncs it.
TEST(LostPrimary, ASecondaryResyncsTheOutdatedPeerThePrimaryLeftBehind) {
  Cluster cluster = harness::primary_after_one_write(3);
  cluster.disconnect(0, 2);
  cluster.write(0, 2, harness::block_sector(2), 2);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  ASSERT_NE(comparable_current(cluster.nodes[1].generation()),
            comparable_current(cluster.nodes[2].generation()));
  ASSERT_EQ(cluster.nodes[1].peer(NodeId{2})->connection, ConnectionState::connected);
  cluster.disconnect(0, 1);
  int reruns = 0;
  for (const auto& [node, drop] : cluster.disconnects) {
    if (node == 1 && drop.peer == NodeId{2} &&
        drop.reason.find("reconcile the writes of a lost Primary") != std::string::npos) {
      reruns += 1;
    }
  }
  EXPECT_EQ(reruns, 1);
  cluster.disconnect(1, 2);  // the transport closes and connects again
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(comparable_current(cluster.nodes[2].generation()),
            comparable_current(cluster.nodes[1].generation()));
  EXPECT_GE(cluster.nodes[2].peer(NodeId{1})->resync_done_blocks, 1u);
}

// Node 0's write `request` (to block `request`) fails on node 2's disk, which detaches.
void fail_node2_disk_on_write(Cluster& cluster, std::uint64_t request) {
  cluster.write(0, request, harness::block_sector(request), request);
  cluster.deliver_messages();
  cluster.complete_disk(2, IoStatus::io_error);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::diskless);
}

// Node 0 (Primary) crashes, and node 1, cut off from both and still UpToDate, meets node 2
// (whose disk failed): it outdates itself and cannot be promoted.
void crash_primary_then_node1_meets_node2(Cluster& cluster) {
  cluster.disconnect(0, 2);
  ASSERT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_FALSE(cluster.nodes[1].on_admin(cluster.now, Promote{}).ok);
}

// Quorum+diskless swarm seed 7977: node 1 was cut off together with its quorum and never
// learned that node 0 (Primary) and node 2 went on without it. Node 0 crashed and node 2's disk
// failed; node 1 then met node 2, had quorum with its vote (a connected peer whose disk failed
// still votes, as in DRBD) and was promoted over the acknowledged writes. Node 2 still reports
// the generation it last held, whose bitmap slot toward node 1 holds node 1's: with no Primary
// to follow, node 1 takes that as word that it was left behind.
TEST(LostPrimary, ANodeLeftBehindOutdatesItselfWhenAPeerWhoseDiskFailedSaysSo) {
  Cluster cluster = harness::primary_after_one_write(3);
  cluster.disconnect(1, 2);  // node 1 is cut off, from node 2 first
  cluster.disconnect(0, 1);
  cluster.write(0, 2, harness::block_sector(2), 2);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  ASSERT_NE(comparable_current(cluster.nodes[2].generation()),
            comparable_current(cluster.nodes[1].generation()));
  fail_node2_disk_on_write(cluster, 3);
  crash_primary_then_node1_meets_node2(cluster);
}

// Quorum+diskless swarm seeds 8143 and 8772: node 2's disk failed first; node 1 was then cut
// off, and the Primary, with quorum through node 2's vote, started a generation whose writes
// only it held. It crashed; node 1 met node 2, had quorum with its vote and was promoted over
// those writes. Node 2, a Secondary without a disk, keeps what the Primary it lost said of the
// nodes it did not replicate to, and tells node 1, still of the generation the Primary left it
// in, that it was left behind: node 1 outdates itself. The disk node 2 attaches again left while
// a Primary wrote: Outdated, whatever its metadata says (dittod's says UpToDate).
TEST(LostPrimary, APeerWhoseDiskFailedBeforeThePrimaryMovedOnStillTellsANodeLeftBehind) {
  Cluster cluster = harness::primary_after_one_write(3, [](NodeConfig& config) {
    config.quorum.quorum = QuorumRule{QuorumRule::Kind::majority, 0};
    config.quorum.on_no_quorum = OnNoQuorum::suspend_io;
  });
  Attach disk;
  disk.disk = DiskState::up_to_date;
  disk.generations = cluster.nodes[2].generations();
  fail_node2_disk_on_write(cluster, 2);
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  cluster.disconnect(1, 2);  // node 1 is cut off
  cluster.disconnect(0, 1);
  cluster.write(0, 3, harness::block_sector(3), 3);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(3), ClientStatus::ok);
  ASSERT_NE(comparable_current(cluster.nodes[0].generation()),
            comparable_current(cluster.nodes[1].generation()));
  crash_primary_then_node1_meets_node2(cluster);

  const AdminResult attached = cluster.nodes[2].on_admin(cluster.now, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  cluster.collect_all();
  cluster.disconnect(1, 2);  // the attach renegotiates with its diskful peer
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_FALSE(cluster.nodes[2].on_admin(cluster.now, Promote{}).ok);
}

}  // namespace
}  // namespace ditto::core
