// Multi-secondary consistency in core::Node, driven by hand (tests/core/node_harness.h): which
// writes a Secondary marks out of sync toward the other nodes (peer-acks, §2.3), a Secondary
// cut off from the Primary but not from the other Secondaries (weak nodes, §1.7), and a
// resync that must wait for another one.
#include <gtest/gtest.h>

#include <string>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

constexpr std::uint64_t sectors_per_block = 8;

bool marked(const Cluster& cluster, int node, int toward, std::uint64_t block) {
  return cluster.nodes[node].bitmap_toward(harness::node_id(toward)).test(block);
}

int count_disconnects(const Cluster& cluster, int node, const std::string& text) {
  int count = 0;
  for (const auto& [index, drop] : cluster.disconnects) {
    if (index == node && drop.reason.find(text) != std::string::npos) count += 1;
  }
  return count;
}

// Three nodes, all connected, node 0 Primary, one write everywhere (a generation started).
Cluster three_in_sync() {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 1 * sectors_per_block, 1);
  cluster.settle();
  return cluster;
}

TEST(PeerAck, AWriteAllSecondariesStoredIsNotMarkedOutOfSyncTowardEachOther) {
  Cluster cluster = three_in_sync();
  EXPECT_GT(cluster.count_sent(0, wire::MessageType::peer_ack), 0);
  EXPECT_FALSE(marked(cluster, 1, 2, 1));
  EXPECT_FALSE(marked(cluster, 2, 1, 1));
}

// Seeds 211 and 95 of `ditto-sim campaign --swarm --ops 400`: the Data reached node 1, the link
// to node 2 broke with it in flight; only the Primary marked it for node 2.
TEST(PeerAck, AWriteInFlightWhenALinkBreaksIsMarkedOnTheSecondaryThatGotIt) {
  Cluster cluster = three_in_sync();
  cluster.write(0, 2, 5 * sectors_per_block, 2);
  cluster.disconnect(0, 2);  // node 2 never gets the Data
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_TRUE(marked(cluster, 0, 2, 5));
  EXPECT_TRUE(marked(cluster, 1, 2, 5));   // the PeerAck did not name node 2
  EXPECT_FALSE(marked(cluster, 1, 2, 1));  // older writes were peer-acked with node 2
}

TEST(PeerAck, WritesNotYetPeerAckedAreMarkedTowardEveryoneWhenThePrimaryVanishes) {
  Cluster cluster = three_in_sync();
  cluster.write(0, 2, 6 * sectors_per_block, 2);
  cluster.deliver_messages();  // the Data reaches both Secondaries, no disk completed yet
  cluster.disconnect(0, 1);
  cluster.disconnect(0, 2);
  cluster.settle();
  EXPECT_TRUE(marked(cluster, 1, 2, 6));
  EXPECT_TRUE(marked(cluster, 2, 1, 6));
  EXPECT_FALSE(marked(cluster, 1, 2, 1));
}

// Swarm seeds 99 and 237: the Primary's disk detached (EIO); the writes it made afterwards
// exist only on its Secondaries, which must track them toward the Primary's own disk, or a
// Primary restarted with that disk resyncs without them and turns UpToDate.
TEST(PeerAck, AWriteFromADisklessPrimaryIsMarkedOutOfSyncTowardThatPrimary) {
  Cluster cluster = three_in_sync();
  cluster.write(0, 2, 3 * sectors_per_block, 2);
  cluster.deliver_messages();
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  ASSERT_EQ(cluster.nodes[1].peer(NodeId{0})->disk, DiskState::diskless);
  cluster.write(0, 3, 4 * sectors_per_block, 3);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
  EXPECT_TRUE(marked(cluster, 1, 0, 4));
  EXPECT_TRUE(marked(cluster, 2, 0, 4));
  EXPECT_FALSE(marked(cluster, 1, 2, 4));  // both Secondaries stored it
  EXPECT_FALSE(marked(cluster, 1, 0, 1));  // written while the Primary had its disk
}

// Seeds 211, 95 and 198: node 2 lost the Primary but stayed connected to node 1, UpToDate and
// connected while it missed every later write.
TEST(WeakNodes, ASecondaryCutOffFromThePrimaryOutdatesItselfThroughTheOtherSecondary) {
  Cluster cluster = three_in_sync();
  cluster.disconnect(0, 2);
  cluster.write(0, 2, 7 * sectors_per_block, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  EXPECT_TRUE(marked(cluster, 1, 2, 7));
  cluster.connect(0, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  EXPECT_GE(cluster.nodes[2].peer(NodeId{0})->resync_done_blocks, 1u);
}

TEST(WeakNodes, ANewPrimaryResyncsAnOutdatedPeerItIsAlreadyConnectedTo) {
  Cluster cluster = three_in_sync();
  cluster.disconnect(0, 2);
  cluster.write(0, 2, 7 * sectors_per_block, 2);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  // The Primary is gone: node 1, which holds its last generation, reruns the handshake with
  // node 2 at once (LostPrimary.ASecondaryResyncsTheOutdatedPeerThePrimaryLeftBehind), and
  // takes over before the transport connected again: one rerun, not two.
  cluster.disconnect(0, 1);
  EXPECT_EQ(count_disconnects(cluster, 1, "reconnecting to reconcile the writes of a lost Primary"),
            1);
  cluster.promote(1);
  EXPECT_EQ(count_disconnects(cluster, 1, "reconnecting to resync Outdated peer node2"), 0);
  cluster.disconnect(1, 2);  // the transport notices the drop; then it reconnects
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  EXPECT_GE(cluster.nodes[2].peer(NodeId{1})->resync_done_blocks, 1u);
}

// Quorum+reads+diskless swarm seed 8442 (3 nodes, node 0 a diskless Primary): node 2, cut off,
// caught up with node 1 by a resync while the Primary was cut off too. The Primary came back to
// node 1 alone and wrote without starting a generation (its slot toward node 2, set when it lost
// node 2, said node 2 already lagged), so node 2, Established with node 1 in the same generation,
// never learned that it missed the write. Node 1's report (same generation, its slot toward node
// 2 clear) tells the Primary that node 2 caught up: its next write without node 2 starts a
// generation, and node 2 learns it lags.
TEST(WeakNodes, ANodeThatCaughtUpThroughAPeerIsToldOfTheDisklessPrimarysNextWriteWithoutIt) {
  Cluster cluster(
      3, [](NodeConfig& config) { config.intentional_diskless = config.node_id.value == 0; });
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 1 * sectors_per_block, 1);
  cluster.settle();
  cluster.disconnect(0, 2);
  cluster.disconnect(1, 2);
  cluster.write(0, 2, 2 * sectors_per_block, 2);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  cluster.disconnect(0, 1);
  cluster.connect(1, 2);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  ASSERT_GE(cluster.nodes[2].peer(NodeId{1})->resync_done_blocks, 1u);
  cluster.connect(0, 1);
  cluster.write(0, 3, 5 * sectors_per_block, 3);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(3), ClientStatus::ok);
  EXPECT_TRUE(marked(cluster, 1, 2, 5));
  EXPECT_NE(cluster.nodes[1].generation() & ~uuid_primary_bit,
            cluster.nodes[2].generation() & ~uuid_primary_bit);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  // Back with the Primary, node 2 asks node 1 for the blocks it lacks.
  cluster.connect(0, 2);
  cluster.settle();
  EXPECT_EQ(count_disconnects(cluster, 2, "reconnecting to resync from UpToDate peer node1"), 1);
  cluster.disconnect(1, 2);
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  EXPECT_FALSE(marked(cluster, 1, 2, 5));
}

// Seed 213: node 4 got a block by resync from node 1, then was the source for node 2, which had
// missed the same write: node 4's bitmap toward node 2 did not have it.
TEST(ResyncMarks, ABlockWrittenByAResyncIsOutOfSyncTowardTheNodesNotInTheResync) {
  Cluster cluster = three_in_sync();
  cluster.disconnect(0, 2);
  cluster.disconnect(1, 2);
  cluster.write(0, 2, 3 * sectors_per_block, 2);
  cluster.settle();
  cluster.disconnect(0, 1);  // node 1 has the write; node 0 goes away
  cluster.connect(1, 2);     // node 2 is the SyncTarget of node 1
  cluster.settle();
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  ASSERT_EQ(cluster.nodes[2].peer(NodeId{1})->resync_done_blocks, 1u);
  EXPECT_TRUE(marked(cluster, 2, 0, 3));
}

// Seeds 216, 229 and 13: a node restarted after a crash resynced everything from one peer; a
// second peer's handshake also wanted to be its source and the connection was dropped and
// retried in a loop until the first resync ended (longer than the liveness bound).
TEST(DeferredResync, ASecondSourceStaysConnectedAndResyncsAfterTheFirstResyncEnds) {
  Cluster cluster = three_in_sync();
  cluster.disconnect(0, 2);
  cluster.disconnect(1, 2);
  cluster.write(0, 2, 4 * sectors_per_block, 2);
  cluster.settle();
  // Node 2 becomes the SyncTarget of node 1 (messages only: no block is read or written yet).
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{2});
  cluster.nodes[2].on_connection_up(cluster.now, NodeId{1});
  cluster.deliver_messages();
  ASSERT_EQ(cluster.nodes[2].peer(NodeId{1})->replication, ReplicationState::sync_target);
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{2});
  cluster.nodes[2].on_connection_up(cluster.now, NodeId{0});
  cluster.deliver_messages();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{0})->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->replication, ReplicationState::sync_target);
  cluster.settle();
  EXPECT_EQ(count_disconnects(cluster, 2, "resync must wait"), 0);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->resync_done_blocks, 1u);
  // The deferred handshake runs again once the resync from node 1 ended. (Meanwhile node 2 is
  // Outdated: it is one of the Primary's weak nodes, node 1 told it.)
  EXPECT_EQ(count_disconnects(cluster, 2, "reconnecting to run the resync that was deferred"), 1);
  cluster.disconnect(0, 2);
  cluster.connect(0, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{0})->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
}

// Seeds 198 and 142: a restarted node came back with only its current UUID (no bitmap UUIDs,
// no history) and Outdated even if it crashed Inconsistent in the middle of a resync.
TEST(Restart, ANodeRestartsWithEveryGenerationIdentifierItPersisted) {
  Generations persisted;
  persisted.current = 0x7000;
  persisted.bitmap[1] = 0x5000;
  persisted.history[0] = 0x3000;
  Cluster cluster(2, [&](NodeConfig& config) {
    if (config.node_id.value != 0) return;
    config.initial_generations = persisted;
    config.initial_disk_state = DiskState::inconsistent;
  });
  EXPECT_EQ(cluster.nodes[0].generations(), persisted);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::inconsistent);
  EXPECT_EQ(cluster.nodes[0].bitmap_toward(NodeId{1}).count_set(),
            cluster.nodes[0].bitmap_toward(NodeId{1}).bit_count());
}

// Swarm seeds 1122 and 1690: a node restarted after a crash (Outdated) whose generation is newer
// than its UpToDate peer's (the peer's current UUID is its bitmap UUID toward the peer: the peer
// missed every write since) is the SyncSource; the UpToDate side, which has not learned that
// it is stale, must not overwrite it. Within one generation the UpToDate side stays the source.
Cluster restarted_outdated(std::uint64_t restarted_current) {
  Cluster cluster(2, [&](NodeConfig& config) {
    Generations uuids;
    if (config.node_id.value == 0) {
      uuids.current = 0x5000;
      uuids.history[0] = 0x3000;
    } else {
      uuids.current = restarted_current;
      if (restarted_current != 0x5000) {
        uuids.bitmap[0] = 0x5000;
        uuids.history[0] = 0x5000;
      } else {
        uuids.history[0] = 0x3000;
      }
      config.initial_disk_state = DiskState::outdated;
    }
    config.initial_generations = uuids;
  });
  cluster.connect(0, 1);
  cluster.settle();
  return cluster;
}

TEST(Restart, ARestartedNodeWithTheNewerGenerationIsTheSourceForAStaleUpToDatePeer) {
  Cluster cluster = restarted_outdated(0x7000);
  // Counted by the SyncTarget, toward its source.
  EXPECT_GT(cluster.nodes[0].peer(NodeId{1})->resync_done_blocks, 0u);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, 0u);
  EXPECT_EQ(comparable_current(cluster.nodes[0].generations().current), 0x7000u);
  // The resync ended: the target took on its source's disk state (Outdated: no Primary vouches
  // for either side).
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::outdated);
}

TEST(Restart, ARestartedNodeInTheSameGenerationResyncsFromItsUpToDatePeer) {
  Cluster cluster = restarted_outdated(0x5000);
  EXPECT_GT(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, 0u);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_done_blocks, 0u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

// Quorum swarm seeds 2142, 2953, 5141, 5556, 6168 (tests/sim/quorum_test.cpp): a Primary that
// started a generation and stopped before any client saw a completion in it comes back in the
// generation before, so the peers that promoted without it see a node behind, not a split
// brain. Node 0, Primary of three, loses node 1, writes a block (a new generation) that reaches
// its disk but not node 2, and stops.
TEST(Restart, APrimarysGenerationNoClientSawACompletionInIsRolledBack) {
  Cluster cluster = harness::primary_after_one_write(3);
  EXPECT_EQ(cluster.nodes[0].unconfirmed_generation(), UnconfirmedGeneration{});
  const Generations before = cluster.nodes[0].generations();
  cluster.disconnect(0, 1);
  cluster.write(0, 2, harness::block_sector(2), 2);  // the first write without node 1 bumps
  cluster.complete_disk(0);
  EXPECT_FALSE(cluster.completion_of(2).has_value());
  const Generations after = cluster.nodes[0].generations();
  ASSERT_NE(comparable_current(after.current), comparable_current(before.current));
  const UnconfirmedGeneration record = cluster.nodes[0].unconfirmed_generation();
  EXPECT_EQ(record.current, comparable_current(after.current));
  EXPECT_EQ(record.previous_current, before.current);
  EXPECT_EQ(record.rotated_nodes, 1u << 1);

  NodeConfig config = cluster.nodes[0].config();
  config.initial_generations = after;
  config.initial_unconfirmed = record;
  config.initial_disk_state = DiskState::outdated;
  Node restarted(config);
  EXPECT_EQ(restarted.generations(), before);
  int rolled_back = 0;
  for (const Action& action : restarted.take_actions()) {
    const auto* event = std::get_if<Event>(&action);
    if (event && event->line.starts_with("generation-rolled-back name:r0 volume:0")) {
      rolled_back += 1;
    }
  }
  EXPECT_EQ(rolled_back, 1);
}

// A write admitted before the new generation confirms nothing when it completes (its data is
// the old generation's, which the peers that acknowledged it hold); one admitted after does.
TEST(Restart, OnlyACompletionInTheNewGenerationConfirmsIt) {
  Cluster cluster = harness::primary_after_one_write(3);
  cluster.clogged.insert({2, 0});
  cluster.write(0, 2, harness::block_sector(2), 2);
  cluster.drain();
  ASSERT_FALSE(cluster.completion_of(2).has_value());
  cluster.disconnect(0, 1);
  const UnconfirmedGeneration record = cluster.nodes[0].unconfirmed_generation();
  ASSERT_NE(record, UnconfirmedGeneration{});
  cluster.clogged.clear();
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].unconfirmed_generation(), record);
  cluster.write(0, 3, harness::block_sector(3), 3);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(3), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].unconfirmed_generation(), UnconfirmedGeneration{});
}

// A read confirms the generation only if it may return a write of it no client saw complete
// (quorum swarm seed 9129: a read elsewhere had confirmed it). Node 0's write of block 2 in the
// new generation waits for node 2; a read of block 5 leaves the generation unconfirmed, a read
// of block 2 (which reads the new data from the local disk) confirms it.
TEST(Restart, OnlyAReadOfABlockTheNewGenerationWroteConfirmsIt) {
  Cluster cluster = harness::primary_after_one_write(3);
  cluster.disconnect(0, 1);
  cluster.clogged.insert({2, 0});
  cluster.write(0, 2, harness::block_sector(2), 2);
  cluster.drain();
  ASSERT_FALSE(cluster.completion_of(2).has_value());
  const UnconfirmedGeneration record = cluster.nodes[0].unconfirmed_generation();
  ASSERT_NE(record, UnconfirmedGeneration{});
  cluster.nodes[0].on_client_read(cluster.now, RequestId{3}, Sector{harness::block_sector(5)},
                                  4096);
  cluster.drain();
  ASSERT_EQ(cluster.completion_of(3), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].unconfirmed_generation(), record);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{4}, Sector{harness::block_sector(2)},
                                  4096);
  cluster.drain();
  ASSERT_EQ(cluster.completion_of(4), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].unconfirmed_generation(), UnconfirmedGeneration{});
}

// Two bumps before any completion (seed 10334: node 0 lost node 1's disk right after it had
// started a generation without node 2): a write admitted in the first generation that
// completes confirms that one only, and the record then leads back to it.
TEST(Restart, AWriteOfTheFirstOfTwoUnconfirmedGenerationsConfirmsThatOneOnly) {
  Cluster cluster = harness::primary_after_one_write(4);
  const Generations first = cluster.nodes[0].generations();
  cluster.disconnect(0, 1);
  cluster.clogged.insert({3, 0});
  cluster.write(0, 2, harness::block_sector(2), 2);  // bumps: a generation without node 1
  cluster.drain();
  const Generations second = cluster.nodes[0].generations();
  ASSERT_NE(second.current, first.current);
  cluster.disconnect(0, 2);
  cluster.write(0, 3, harness::block_sector(3), 3);  // bumps again: without node 2
  cluster.drain();
  const UnconfirmedGeneration both = cluster.nodes[0].unconfirmed_generation();
  ASSERT_NE(comparable_current(cluster.nodes[0].generations().current),
            comparable_current(second.current));
  EXPECT_EQ(both.previous_current, first.current);
  EXPECT_EQ(both.rotated_nodes, 1u << 1 | 1u << 2);
  cluster.clogged.clear();
  cluster.deliver_one();  // node 3's acknowledgement of write 2 (the first in its queue)
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  ASSERT_FALSE(cluster.completion_of(3).has_value());
  const UnconfirmedGeneration last = cluster.nodes[0].unconfirmed_generation();
  EXPECT_EQ(last.current, both.current);
  EXPECT_EQ(last.previous_current, second.current);
  EXPECT_EQ(last.rotated_nodes, 1u << 2);
}

}  // namespace
}  // namespace ditto::core
