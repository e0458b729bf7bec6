// Data generations, bitmaps and resync in core::Node, driven by hand (tests/core/node_harness.h):
// which blocks a returning node gets, which way the resync goes, and which connections are
// refused with both nodes' generations in the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;

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

// Three nodes, Primary node 0, one write that every node holds.
Cluster three_nodes_one_write() {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  return cluster;
}

// The same; then node 2 loses both peers.
Cluster node_two_cut_off() {
  Cluster cluster = three_nodes_one_write();
  cluster.disconnect(0, 2);
  cluster.disconnect(1, 2);
  return cluster;
}

TEST(Resync, ASecondaryAwayForAWhileGetsExactlyTheBlocksWrittenMeanwhileAndEndsUpToDate) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(0), 1);
  cluster.settle();
  const std::uint64_t before = cluster.nodes[0].generation();
  cluster.disconnect(0, 1);
  // Four writes to three distinct blocks while node 1 is away.
  cluster.write(0, 2, block_sector(5), 2);
  cluster.write(0, 3, block_sector(9), 3);
  cluster.write(0, 4, block_sector(5), 4);
  cluster.write(0, 5, block_sector(200), 5);
  cluster.settle();
  EXPECT_NE(cluster.nodes[0].generation(), before);  // the first write started a generation
  // The bitmap UUID keeps the Primary bit of the generation it took (§6: after-sb reads it).
  EXPECT_EQ(cluster.nodes[0].generations().bitmap[1], before);
  EXPECT_EQ(before & uuid_primary_bit, uuid_primary_bit);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 3u * 4096);

  cluster.connect(0, 1);
  cluster.settle();
  const PeerStatus toward_source = *cluster.nodes[1].peer(NodeId{0});
  EXPECT_EQ(toward_source.resync_total_blocks, 3u);
  EXPECT_EQ(toward_source.resync_done_blocks, 3u);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 3);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(toward_source.replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.nodes[0].generations().bitmap[1], 0u);  // the finished resync cleared it
  EXPECT_EQ(cluster.nodes[1].generation() & ~std::uint64_t{1},
            cluster.nodes[0].generation() & ~std::uint64_t{1});
  EXPECT_EQ(count_events(cluster, 1, "resync-finished name:r0 peer-node-id:0"), 1);

  // Connected again: writes replicate and nothing more is marked.
  cluster.write(0, 6, block_sector(7), 6);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(6), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
}

// Nodes 2 and 3 sit out a partition together while the Primary writes on with node 1. The link
// 1-2 heals first: node 2 becomes node 1's SyncTarget and moves to the newer generation. Node 3,
// Established with node 2 in the old one all along, is now behind it: node 2 reconnects it so
// the handshake gives node 3 its resync (DRBD's resync offer of a SyncTarget turned stable,
// UUID_FLAG_GOT_STABLE; quorum swarm seed 856, where node 2 was then promoted).
TEST(Resync, APeerLeftInTheGenerationASyncTargetResyncedAwayFromGetsItsResyncToo) {
  Cluster cluster(4);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 0, 11);
  cluster.settle();
  for (const auto& [a, b] : {std::pair{0, 2}, {0, 3}, {1, 2}, {1, 3}}) cluster.disconnect(a, b);
  cluster.write(0, 2, 8, 12);  // a new generation that nodes 2 and 3 miss
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  const std::uint64_t newer = comparable_current(cluster.nodes[0].generation());
  ASSERT_NE(comparable_current(cluster.nodes[3].generation()), newer);
  cluster.connect(1, 2);
  cluster.settle();
  ASSERT_EQ(comparable_current(cluster.nodes[2].generation()), newer);
  const bool reconnected = std::any_of(
      cluster.disconnects.begin(), cluster.disconnects.end(),
      [](const auto& entry) { return entry.first == 2 && entry.second.peer.value == 3; });
  EXPECT_TRUE(reconnected);
  cluster.disconnect(2, 3);  // the transport closes the connection node 2 dropped, and redials
  cluster.connect(2, 3);
  cluster.settle();
  EXPECT_EQ(comparable_current(cluster.nodes[3].generation()), newer);
  EXPECT_EQ(cluster.nodes[2].peer(harness::node_id(3))->out_of_sync_bytes, 0u);
  // Resynced, and Outdated as node 2 is: the Primary does not reach them (§1.7 invariant 2).
  EXPECT_EQ(cluster.nodes[3].disk_state(), DiskState::outdated);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  EXPECT_NE(cluster.nodes[3].peer(harness::node_id(2))->replication, ReplicationState::sync_target);
}

// Node 2 comes back to node 1 alone and becomes its SyncTarget; the Primary, not connected to
// node 2, writes a block through node 1 after the bitmaps were exchanged. Node 1 tells node 2
// (OutOfSync) and node 2 resyncs that block too before its resync ends. Before, it turned
// UpToDate without it and node 1 only reconnected afterwards to resync the leftover: a Primary
// that connected to node 2 in between read the old block (quorum swarm seed 855). At the end
// node 2 is Outdated: node 1 forwarded that the Primary does not reach it (swarm seed 871).
TEST(Resync, AWriteTheSourceGetsDuringTheResyncIsResyncedBeforeTheTargetTurnsUpToDate) {
  Cluster cluster = node_two_cut_off();
  cluster.write(0, 2, block_sector(5), 2);
  cluster.settle();
  cluster.nodes[1].on_connection_up(cluster.now, harness::node_id(2));
  cluster.nodes[2].on_connection_up(cluster.now, harness::node_id(1));
  while (cluster.nodes[2].peer(harness::node_id(1))->replication !=
         ReplicationState::sync_target) {
    ASSERT_TRUE(cluster.deliver_one()) << "node 2 never became node 1's SyncTarget";
  }
  cluster.write(0, 3, block_sector(9), 3);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(3), ClientStatus::ok);
  EXPECT_GE(cluster.count_sent(1, wire::MessageType::out_of_sync), 1);  // at receipt, at PeerAck
  EXPECT_EQ(count_events(cluster, 2, "resync-finished name:r0 peer-node-id:1"), 1);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::outdated);
  EXPECT_EQ(cluster.nodes[2].peer(harness::node_id(1))->resync_done_blocks, 2u);
  EXPECT_EQ(cluster.nodes[1].peer(harness::node_id(2))->out_of_sync_bytes, 0u);
  const bool reconnected = std::any_of(
      cluster.disconnects.begin(), cluster.disconnects.end(),
      [](const auto& entry) { return entry.first == 1 && entry.second.peer.value == 2; });
  EXPECT_FALSE(reconnected);
}

TEST(Resync, AResyncInterruptedTwiceResumesFromTheRemainingBlocks) {
  Cluster cluster(2, [](NodeConfig& config) { config.c_fill_target_sectors = 8; });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);  // both leave the day-0 generation together
  cluster.settle();
  cluster.disconnect(0, 1);
  for (std::uint64_t block = 0; block < 10; ++block) {
    cluster.write(0, 10 + block, block_sector(block * 3), 100 + block);
  }
  cluster.settle();
  for (int interruption = 0; interruption < 2; ++interruption) {
    cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
    cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
    // One message or disk completion at a time until three blocks are written.
    for (int step = 0; step < 1000; ++step) {
      const PeerStatus source = *cluster.nodes[1].peer(NodeId{0});
      if (source.replication == ReplicationState::sync_target && source.resync_done_blocks >= 3) {
        break;
      }
      if (cluster.deliver_one()) continue;
      ASSERT_FALSE(cluster.disk_writes.empty() && cluster.disk_other.empty());
      const auto [node, io] = cluster.disk_writes.empty() ? cluster.disk_other.begin()->first
                                                          : cluster.disk_writes.begin()->first;
      cluster.complete_io(node, io);
    }
    EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::sync_target);
    EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
    cluster.disconnect(0, 1);
    EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  }
  const std::uint64_t remaining = cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes / 4096;
  EXPECT_LT(remaining, 10u);
  EXPECT_GT(remaining, 0u);
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_total_blocks, remaining);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
}

TEST(Resync, AnApplicationWriteOvertakingARequestedBlockDiscardsTheOlderResyncReply) {
  Cluster cluster(2, [](NodeConfig& config) { config.c_fill_target_sectors = 8; });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 9, block_sector(1), 9);
  cluster.settle();
  cluster.disconnect(0, 1);
  cluster.write(0, 1, block_sector(4), 1);
  cluster.settle();
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
  // Up to the source's read: the request for block 4 is out, its reply not yet sent.
  cluster.deliver_messages();
  ASSERT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 1);
  cluster.write(0, 2, block_sector(4), 2);  // replicated: Data reaches the target first
  cluster.deliver_messages();
  cluster.complete_disk(0);  // the resync read completes after the write was sent
  cluster.settle();
  // The first reply was discarded and the block asked for again.
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 2);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
}

TEST(Resync, ThreeGenerationsAndAChainOfNodesResyncInTheRightDirectionEveryTime) {
  Cluster cluster = three_nodes_one_write();
  // Generation 2: node 2 away while node 0 writes.
  cluster.disconnect(0, 2);
  cluster.disconnect(1, 2);
  cluster.write(0, 2, block_sector(2), 2);
  cluster.settle();
  // Generation 3: node 0 goes away, node 1 takes over and writes.
  cluster.disconnect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Demote{}).ok);
  cluster.promote(1);
  cluster.write(1, 3, block_sector(3), 3);
  cluster.settle();
  // Chain 2 - 1: node 2 (two generations behind) is the target of node 1.
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->resync_total_blocks, 2u);  // blocks 2 and 3
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  // Chain 1 - 0: node 0 (one generation behind) is the target of node 1.
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->resync_total_blocks, 1u);  // block 3
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  // Now 0 - 2: same generation, nothing to do.
  cluster.connect(0, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{2})->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{2})->replication, ReplicationState::established);
  for (int node = 0; node < 3; ++node) {
    EXPECT_EQ(cluster.nodes[node].disk_state(), DiskState::up_to_date) << node;
    EXPECT_EQ(cluster.nodes[node].generation() & ~std::uint64_t{1},
              cluster.nodes[1].generation() & ~std::uint64_t{1});
  }
}

// Node 2 misses two writes of node 0 while node 1 gets them; node 2 comes back to node 0 first.
// `node1_away_too`: node 1 misses them as well.
Cluster third_node_behind(bool node1_away_too) {
  Cluster cluster = node_two_cut_off();
  if (node1_away_too) cluster.disconnect(0, 1);
  cluster.write(0, 2, block_sector(2), 2);
  cluster.write(0, 3, block_sector(3), 3);
  cluster.settle();
  cluster.connect(0, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{0})->resync_done_blocks, 2u);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  return cluster;
}

TEST(Resync, BlocksResyncedFromASourceInSyncWithAThirdNodeStayInSyncTowardIt) {
  Cluster cluster = third_node_behind(false);
  // Node 0 named node 1 in a PeersInSync before the run of both blocks: node 1 has them too.
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::peers_in_sync), 1);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->out_of_sync_bytes, 0u);
  // The handshake with node 1 finds the same generation. Node 1 marked for node 2 at most the
  // two blocks it got while node 2 was away (the PeerAcks did not name node 2), and both nodes
  // serve the live Primary: its Secondaries do not reconcile between themselves (swarm seed
  // 4609), so nothing moves between them.
  const std::uint64_t marked_by_node1 = cluster.nodes[1].peer(NodeId{2})->out_of_sync_bytes;
  const int requests_before = cluster.count_sent(2, wire::MessageType::resync_request);
  EXPECT_LE(marked_by_node1, 2u * 4096);
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);
  EXPECT_EQ(cluster.count_sent(2, wire::MessageType::resync_request), requests_before);
}

// The Primary, node 0, writes `block` (request and payload `request`) with its link to
// `lagging` clogged: every other connected node gets the write, `lagging` only once the link is
// unclogged.
void write_lagged_by(Cluster& cluster, int lagging, std::uint64_t request, std::uint64_t block) {
  cluster.clogged.insert({0, lagging});
  cluster.write(0, request, block_sector(block), request);
  cluster.drain();
}

// Swarm seed 4609 (3 nodes; shrunk to a one-way partition, a flapping link and a clog): node 2,
// away from the Primary and from node 1, resynced from the Primary, which could not name node 1
// in its PeersInSync for the newest block (node 1 had not acknowledged it: its link from the
// Primary was clogged), so node 2 marked that block toward node 1. Node 1 and node 2 met again in
// one generation, both with bits and both UpToDate; node 1, whose dagtag was ahead (node 2 had
// taken the resynced blocks without one), was made the reconcile source and overwrote node 2's
// copy of the acknowledged write with its older block. DRBD reconciles only after a common lost
// Primary (§3.5 step 3); while a Primary serves either side its Secondaries leave their bits
// alone: the Primary's own bitmap covers whatever each of them misses.
TEST(Resync, SecondariesOfOneGenerationServingALivePrimaryDoNotReconcileTheirMarkedBlocks) {
  Cluster cluster = node_two_cut_off();
  cluster.write(0, 2, block_sector(2), 2);
  cluster.drain();
  // The write of block 3 stays on the clogged link to node 1 (node 1 lags it).
  write_lagged_by(cluster, 1, 3, 3);
  cluster.connect(0, 2);
  cluster.drain();
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  ASSERT_EQ(cluster.nodes[2].peer(NodeId{0})->resync_done_blocks, 2u);
  // Node 2 got block 3 from the Primary and marked it toward node 1; node 1 marked block 2.
  ASSERT_GT(cluster.nodes[2].peer(NodeId{1})->out_of_sync_bytes, 0u);
  ASSERT_GT(cluster.nodes[1].peer(NodeId{2})->out_of_sync_bytes, 0u);
  ASSERT_EQ(cluster.nodes[1].generation() & ~uuid_primary_bit,
            cluster.nodes[2].generation() & ~uuid_primary_bit);
  const int requests_before = cluster.count_sent(2, wire::MessageType::resync_request);
  int node2_writes = 0;
  cluster.observer = [&](int index, const Action& action) {
    if (index == 2 && std::holds_alternative<DiskWrite>(action)) node2_writes += 1;
  };
  cluster.connect(1, 2);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{2})->replication, ReplicationState::established);
  EXPECT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.count_sent(2, wire::MessageType::resync_request), requests_before);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), 0);
  EXPECT_EQ(node2_writes, 0);  // node 1's older block 3 did not overwrite node 2's
  // The Data of block 3 reaches node 1 at last: every node holds the write.
  cluster.clogged.clear();
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
}

// Quorum+reads+diskless swarm seed 6875 (4 nodes, shrunk to a slow link, a partition and a
// delayed link): node 3, cut off, took the Primary's newest write from node 1 by resync and
// marked it toward node 2, whose link from the Primary was slow. Left Outdated (no Primary in
// reach), node 3 then resynced from node 2, which still lacked that write, and node 2 named node
// 1 in its PeersInSync for the block: node 2's bit toward node 1 was clear, because node 2 knew
// nothing of the write. Node 3 cleared its bit toward node 1, ended UpToDate with the older
// block, and a later resync from it took the write away from node 2 too. A source does not name
// a node whose report shows writes of the Primary it has not received itself.
TEST(Resync, ASourceDoesNotNameAPeerAheadOfItInThePrimarysWritesAsInSync) {
  Cluster cluster(4);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  for (int peer = 0; peer < 3; ++peer) cluster.disconnect(peer, 3);
  // The next write starts a generation that every node but node 3 learns.
  cluster.write(0, 2, block_sector(4), 2);
  cluster.settle();
  // The write of block 5 reaches node 1 and stays on the clogged link to node 2.
  write_lagged_by(cluster, 2, 3, 5);
  // Node 3 takes block 5 from node 1 (its report, with its newer dagtag, reaches node 2), and
  // without a Primary in reach goes Outdated.
  cluster.connect(1, 3);
  cluster.drain();
  ASSERT_EQ(cluster.nodes[3].peer(NodeId{1})->resync_done_blocks, 2u);
  ASSERT_EQ(cluster.nodes[3].disk_state(), DiskState::outdated);
  ASSERT_GT(cluster.nodes[3].peer(NodeId{2})->out_of_sync_bytes, 0u);
  ASSERT_EQ(cluster.nodes[3].peer(NodeId{1})->out_of_sync_bytes, 0u);
  // Node 2, UpToDate, is node 3's source for the blocks marked between them, block 5 among them.
  cluster.connect(2, 3);
  cluster.drain();
  ASSERT_EQ(cluster.nodes[3].peer(NodeId{2})->resync_done_blocks, 2u);
  // Node 3 now holds node 2's older block 5: it differs from node 1's, and node 3 knows it (block
  // 4 is marked too: node 2 named node 1 for neither run, which costs a block, not a write).
  EXPECT_GE(cluster.nodes[3].peer(NodeId{1})->out_of_sync_bytes, 4096u);
}

// Swarm seeds 3865 and 5402: node 1 came back to the Primary after writes node 2, cut off, never
// saw, and was its SyncTarget when the Primary's disk failed. Still carrying the generation it
// shared with node 2, node 1 then met node 2 and took a resync from it, overwriting blocks of
// the Primary's newest writes that only node 1's resync had brought. It refuses node 2 instead,
// and with the source's disk gone leaves the connection to the operator (StandAlone): only
// `connect --discard-my-data` gives those writes up.
TEST(Resync, AnInconsistentNodeWhoseSourceLostItsDiskTakesNoResyncFromAPeerOutsideItsGeneration) {
  Cluster cluster = three_nodes_one_write();
  cluster.disconnect(0, 1);
  cluster.disconnect(0, 2);
  cluster.disconnect(1, 2);
  ASSERT_EQ(cluster.nodes[2].disk_state(), DiskState::up_to_date);
  for (std::uint64_t block = 10; block < 18; ++block) {
    cluster.write(0, block, block_sector(block), block);
  }
  cluster.settle();
  // Node 1 returns: the Primary's SyncTarget; the Primary's disk fails at its first resync read.
  cluster.nodes[0].on_connection_up(cluster.now, harness::node_id(1));
  cluster.nodes[1].on_connection_up(cluster.now, harness::node_id(0));
  const auto reading = [&] {
    return std::any_of(cluster.disk_other.begin(), cluster.disk_other.end(),
                       [](const auto& entry) { return entry.first.first == 0; });
  };
  while (!reading() && cluster.deliver_one()) {
  }
  ASSERT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::sync_target);
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  ASSERT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);

  int node1_writes = 0;
  cluster.observer = [&](int index, const Action& action) {
    if (index == 1 && std::holds_alternative<DiskWrite>(action)) node1_writes += 1;
  };
  const std::size_t disconnects_before = cluster.disconnects.size();
  const int requests_before = cluster.count_sent(1, wire::MessageType::resync_request);
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(node1_writes, 0);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_request), requests_before);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  const auto refused = std::find_if(
      cluster.disconnects.begin() + static_cast<std::ptrdiff_t>(disconnects_before),
      cluster.disconnects.end(),
      [](const auto& entry) { return entry.first == 1 && entry.second.peer.value == 2; });
  ASSERT_NE(refused, cluster.disconnects.end());
  EXPECT_NE(refused->second.reason.find("the resync source we lost holds a newer generation"),
            std::string::npos)
      << refused->second.reason;
  EXPECT_FALSE(refused->second.reconnect);
}

TEST(Resync, BlocksResyncedFromASourceThatTracksAThirdNodeAreMarkedTowardIt) {
  Cluster cluster = third_node_behind(true);
  // Node 0's bitmap UUID toward node 1 is set (node 1 missed the generation): no PeersInSync,
  // and node 2, now holding the new blocks, marks them toward node 1.
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::peers_in_sync), 0);
  EXPECT_EQ(cluster.nodes[2].peer(NodeId{1})->out_of_sync_bytes, 2u * 4096);
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{2})->resync_done_blocks, 2u);
  EXPECT_EQ(count_events(cluster, 1, "resync-finished name:r0 peer-node-id:2"), 1);
  // Outdated, not UpToDate: node 2 forwarded that the Primary does not reach node 1.
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
}

// The controller off (c-plan-ahead 0) and a resync-rate no step reaches: every step may
// request everything, so what a test sees is the shape of the runs, not the rate.
void no_rate_limit(NodeConfig& config) {
  config.c_plan_ahead_deciseconds = 0;
  config.resync_rate_kib = 4 * 1024 * 1024;
}

// Two connected nodes with a 4 MiB volume (1024 blocks), node 0 Primary; `adjust` sets the
// resync options. Node 1 is invalidated: a full resync from node 0 starts.
Cluster full_resync(const std::function<void(NodeConfig&)>& adjust) {
  Cluster cluster(2, [&](NodeConfig& config) {
    config.volume_size_bytes = 4 * 1024 * 1024;
    adjust(config);
  });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  cluster.now = cluster.now + Duration::from_ms(1000);  // the write is no recent application I/O
  EXPECT_TRUE(cluster.nodes[1].on_admin(cluster.now, Invalidate{}).ok);
  return cluster;
}

// The sizes of the resync requests node 1 sent, in order.
std::vector<std::uint32_t> request_lengths(const Cluster& cluster) {
  std::vector<std::uint32_t> lengths;
  for (const auto& [index, send] : cluster.sent) {
    if (const auto* request = std::get_if<wire::ResyncRequest>(&send.message);
        request != nullptr && index == 1) {
      lengths.push_back(request->length_bytes);
    }
  }
  return lengths;
}

TEST(Resync, AFullResyncOf1024BlocksTakesFourRequestsOf1MiB) {
  int target_writes = 0;
  int target_fua_writes = 0;
  int source_reads = 0;
  Cluster cluster = full_resync([](NodeConfig& config) {
    config.c_fill_target_sectors = 4096;  // runs of the largest size
    no_rate_limit(config);
  });
  cluster.observer = [&](int node, const Action& action) {
    if (const auto* write = std::get_if<DiskWrite>(&action); write != nullptr && node == 1) {
      target_writes += 1;
      target_fua_writes += write->fua ? 1 : 0;
    }
    if (const auto* read = std::get_if<DiskRead>(&action); read != nullptr && node == 0) {
      source_reads += read->allocate_payload ? 1 : 0;
    }
  };
  cluster.settle();
  EXPECT_EQ(request_lengths(cluster), std::vector<std::uint32_t>(4, 1024 * 1024));
  EXPECT_EQ(source_reads, 4);
  EXPECT_EQ(target_writes, 4);
  EXPECT_EQ(target_fua_writes, 0);
  int resync_replies = 0;
  for (const auto& [index, send] : cluster.sent) {
    const auto* data = std::get_if<wire::Data>(&send.message);
    if (data != nullptr && (data->flags & wire::data_flag_resync) != 0) {
      resync_replies += 1;
      EXPECT_EQ(data->length_bytes, 1024u * 1024);
    }
  }
  EXPECT_EQ(resync_replies, 4);
  EXPECT_EQ(cluster.count_sent(1, wire::MessageType::resync_ack), 4);
  const PeerStatus toward_source = *cluster.nodes[1].peer(NodeId{0});
  EXPECT_EQ(toward_source.resync_total_blocks, 1024u);
  EXPECT_EQ(toward_source.resync_done_blocks, 1024u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
}

TEST(Resync, RunsStopAtBlocksInSyncAndAtMultiplesOf1MiB) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.volume_size_bytes = 4 * 1024 * 1024;
    config.c_fill_target_sectors = 4096;
    no_rate_limit(config);
  });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  cluster.disconnect(0, 1);
  // Blocks 250..259 (across the 1 MiB boundary at block 256), 300..302 and 310.
  std::uint64_t request = 10;
  for (std::uint64_t block = 250; block < 260; ++block) {
    cluster.write(0, request++, block_sector(block), 100 + block);
  }
  for (const std::uint64_t block : {300u, 301u, 302u, 310u}) {
    cluster.write(0, request++, block_sector(block), 100 + block);
  }
  cluster.settle();
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(request_lengths(cluster),
            (std::vector<std::uint32_t>{6 * 4096, 4 * 4096, 3 * 4096, 4096}));
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->resync_done_blocks, 14u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(Resync, ARunIsAtMostHalfTheFillTargetAndAtMostMaxBuffersBlocksAreInFlight) {
  int most_in_flight = 0;
  int in_flight = 0;
  Cluster cluster(2, [](NodeConfig& config) {
    config.volume_size_bytes = 16 * 1024 * 1024;  // 4096 blocks
    config.c_fill_target_sectors = 100;           // DRBD's default: runs of 6 blocks
    no_rate_limit(config);
  });
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  cluster.now = cluster.now + Duration::from_ms(1000);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Invalidate{}).ok);
  cluster.observer = [&](int node, const Action& action) {
    if (node != 1) return;
    if (const auto* send = std::get_if<Send>(&action)) {
      if (const auto* request = std::get_if<wire::ResyncRequest>(&send->message)) {
        in_flight += static_cast<int>(request->length_bytes / 4096);
      }
      if (const auto* ack = std::get_if<wire::ResyncAck>(&send->message)) {
        in_flight -= static_cast<int>(ack->length_bytes / 4096);
      }
      most_in_flight = std::max(most_in_flight, in_flight);
    }
  };
  cluster.settle();
  const std::vector<std::uint32_t> lengths = request_lengths(cluster);
  ASSERT_FALSE(lengths.empty());
  for (const std::uint32_t length : lengths) EXPECT_LE(length, 6u * 4096);
  // Twice the fill target is less than DRBD's default max-buffers, 2048 pages: that bounds it.
  EXPECT_LE(most_in_flight, 2048);
  EXPECT_GE(most_in_flight, 2048 - 6);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

// node0 Primary, block 1 written on both nodes, then blocks 4..7 written while node1 was
// away: one run of four blocks to resync when they reconnect.
void write_a_four_block_run_while_apart(Cluster& cluster) {
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 9, block_sector(1), 9);
  cluster.settle();
  cluster.disconnect(0, 1);
  for (std::uint64_t block = 4; block < 8; ++block) {
    cluster.write(0, block, block_sector(block), block);
  }
  cluster.settle();
}

TEST(Resync, AnApplicationWriteIntoARequestedRunDiscardsTheWholeRunAndAsksForItAgain) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.c_fill_target_sectors = 256;  // runs of 16 blocks
    no_rate_limit(config);
    config.c_min_rate_kib = 0;  // the write does not throttle the resync
  });
  write_a_four_block_run_while_apart(cluster);
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
  cluster.deliver_messages();
  ASSERT_EQ(request_lengths(cluster), std::vector<std::uint32_t>{4 * 4096});
  cluster.write(0, 20, block_sector(6), 20);  // into the run; Data reaches the target first
  cluster.deliver_messages();
  cluster.complete_disk(0);    // the run's read completes after the write was sent
  cluster.deliver_messages();  // its reply reaches the target before the write is on its disk
  cluster.settle();
  // The reply was discarded whole (its bits stayed set) and the run asked for again.
  EXPECT_EQ(request_lengths(cluster), (std::vector<std::uint32_t>{4 * 4096, 4 * 4096}));
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.completion_of(20), ClientStatus::ok);
}

TEST(Resync, ASourceDefersTheReadOfARunBehindALocalWriteIntoIt) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.c_fill_target_sectors = 256;
    no_rate_limit(config);
  });
  write_a_four_block_run_while_apart(cluster);
  cluster.write(0, 20, block_sector(7), 20);  // local write in flight on the source
  cluster.nodes[0].on_connection_up(cluster.now, NodeId{1});
  cluster.nodes[1].on_connection_up(cluster.now, NodeId{0});
  int source_reads = 0;
  cluster.observer = [&](int node, const Action& action) {
    const auto* read = std::get_if<DiskRead>(&action);
    if (node == 0 && read != nullptr && read->allocate_payload) source_reads += 1;
  };
  cluster.deliver_messages();
  ASSERT_EQ(request_lengths(cluster), std::vector<std::uint32_t>{4 * 4096});
  EXPECT_EQ(source_reads, 0);  // behind write 20 (block 7 is in the run)
  cluster.settle();
  EXPECT_GE(source_reads, 1);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.completion_of(20), ClientStatus::ok);
}

TEST(Resync, ATargetOnlyTurnsUpToDateAfterAFlushCoveredTheRunsItWroteWithoutFua) {
  Cluster cluster = full_resync([](NodeConfig& config) {
    config.c_fill_target_sectors = 4096;
    no_rate_limit(config);
  });
  std::set<std::uint64_t> flushes;  // node 1's, held back
  cluster.observer = [&](int node, const Action& action) {
    const auto* flush = std::get_if<DiskFlush>(&action);
    if (flush != nullptr && node == 1) flushes.insert(flush->io.value);
  };
  const Instant end = cluster.now + Duration::from_ms(2000);
  while (cluster.now < end) {
    cluster.deliver_messages();
    std::vector<std::pair<int, std::uint64_t>> ios;
    for (const auto& [key, write] : cluster.disk_writes) ios.push_back(key);
    for (const auto& [key, pending] : cluster.disk_other) {
      if (key.first != 1 || !flushes.contains(key.second)) ios.push_back(key);
    }
    for (const auto& [node, io] : ios) cluster.complete_io(node, io);
    if (ios.empty() && cluster.network.empty() && !cluster.fire_next_timer()) break;
  }
  ASSERT_FALSE(flushes.empty());
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::sync_target);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  cluster.settle();  // the flush completes
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::established);
}

// Blocks node 1 asked for in the ResyncRequests it sent so far.
std::uint64_t blocks_requested(const Cluster& cluster) {
  std::uint64_t blocks = 0;
  for (const std::uint32_t length : request_lengths(cluster)) blocks += length / 4096;
  return blocks;
}

// One millisecond passes: the messages in flight arrive and the disk I/Os pending complete
// (what they cause waits for the next millisecond: a resync round trip takes a few), then the
// timers due fire.
void one_millisecond(Cluster& cluster) {
  cluster.now = cluster.now + Duration::from_ms(1);
  cluster.collect_all();
  for (std::size_t count = cluster.network.size(); count > 0; --count) cluster.deliver_one();
  for (std::size_t node = 0; node < cluster.nodes.size(); ++node) {
    cluster.complete_disk(static_cast<int>(node));
  }
  for (;;) {
    auto due = std::min_element(cluster.timers.begin(), cluster.timers.end(),
                                [](const auto& a, const auto& b) { return a.second < b.second; });
    if (due == cluster.timers.end() || due->second > cluster.now) break;
    cluster.fire_next_timer();
  }
}

// Runs `cluster` in 10 ms ticks for `ticks`, node 0 writing block 0 at the start of each when
// `writes`.
void run_ticks(Cluster& cluster, int ticks, bool writes, std::uint64_t& request) {
  for (int tick = 0; tick < ticks; ++tick) {
    if (writes) cluster.write(0, request, block_sector(0), request), request += 1;
    for (int millisecond = 0; millisecond < 10; ++millisecond) one_millisecond(cluster);
  }
}

void c_min_rate(NodeConfig& config) {
  config.c_fill_target_sectors = 2048;  // 1 MiB in flight
  config.c_max_rate_kib = 102400;       // 256 blocks per 10 ms
  config.c_min_rate_kib = 4000;         // 100 blocks per step
}

TEST(Resync, WhileApplicationWritesArriveAStepRequestsNoMoreThanCMinRatesShare) {
  Cluster cluster = full_resync(c_min_rate);
  std::uint64_t request = 100;
  run_ticks(cluster, 50, true, request);  // 500 ms: 5 or 6 steps
  EXPECT_GT(blocks_requested(cluster), 0u);
  EXPECT_LE(blocks_requested(cluster), 6u * 100);
  EXPECT_EQ(cluster.nodes[1].peer(NodeId{0})->replication, ReplicationState::sync_target);
  // The application stops: within two steps the resync runs at c-max-rate and finishes.
  run_ticks(cluster, 30, false, request);
  EXPECT_EQ(blocks_requested(cluster), 1024u);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(Resync, WithoutApplicationIoTheResyncRampsUpToCMaxRateWithinAFewRoundTripsAndNoFurther) {
  Cluster cluster = full_resync(c_min_rate);
  std::uint64_t request = 100;
  // The first step asks for resync-rate's share (250 KiB/s: 6 blocks); whenever the replies
  // have come back, an early step asks for more, at most c-max-rate's share of the time since
  // the previous step (256 blocks per 10 ms).
  while (blocks_requested(cluster) == 0) one_millisecond(cluster);
  EXPECT_EQ(blocks_requested(cluster), 6u);
  const Instant start = cluster.now;
  int milliseconds = 0;
  while (blocks_requested(cluster) < 1024 && milliseconds < 1000) {
    one_millisecond(cluster);
    milliseconds += 1;
    const auto elapsed_ms = static_cast<std::uint64_t>((cluster.now - start).ns / 1'000'000);
    EXPECT_LE(blocks_requested(cluster), 6 + 26 * elapsed_ms) << elapsed_ms << " ms";
  }
  EXPECT_EQ(blocks_requested(cluster), 1024u);
  // 4 MiB at c-max-rate's 100 MiB/s is 40 ms: ramping up takes a few round trips more.
  EXPECT_LE(milliseconds, 60);
  run_ticks(cluster, 1, false, request);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(Resync, CMinRateZeroNeverThrottlesTheResync) {
  Cluster cluster = full_resync([](NodeConfig& config) {
    c_min_rate(config);
    config.c_min_rate_kib = 0;
  });
  std::uint64_t request = 100;
  run_ticks(cluster, 7, true, request);  // as fast as without application writes
  EXPECT_EQ(blocks_requested(cluster), 1024u);
  run_ticks(cluster, 1, true, request);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

TEST(Resync, ASplitBrainRefusesTheConnectionWithBothGenerationsInTheReason) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, 0, 1);
  cluster.settle();
  cluster.disconnect(0, 1);
  cluster.write(0, 2, 8, 2);
  cluster.promote(1);
  cluster.write(1, 3, 16, 3);
  cluster.settle();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Demote{}).ok);
  ASSERT_TRUE(cluster.nodes[1].on_admin(cluster.now, Demote{}).ok);
  cluster.connect(0, 1);
  ASSERT_FALSE(cluster.disconnects.empty());
  const std::string& reason = cluster.disconnects.front().second.reason;
  EXPECT_NE(reason.find("split brain detected"), std::string::npos) << reason;
  char mine[17];
  std::snprintf(mine, sizeof mine, "%016llX",
                static_cast<unsigned long long>(cluster.nodes[0].generation()));
  char theirs[17];
  std::snprintf(theirs, sizeof theirs, "%016llX",
                static_cast<unsigned long long>(cluster.nodes[1].generation()));
  EXPECT_NE(reason.find(mine), std::string::npos) << reason;
  EXPECT_NE(reason.find(theirs), std::string::npos) << reason;
  EXPECT_EQ(count_events(cluster, 0, "call helper name:r0 peer-node-id:1 conn-name:node1 volume:0 "
                                     "helper:initial-split-brain"),
            1);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::standalone);
}

TEST(Resync, UnrelatedDataRefusesTheConnection) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.initial_generation = config.node_id.value == 0 ? 0x1000 : 0x2000;
  });
  cluster.connect(0, 1);
  ASSERT_FALSE(cluster.disconnects.empty());
  const std::string& reason = cluster.disconnects.front().second.reason;
  EXPECT_NE(reason.find("unrelated data"), std::string::npos) << reason;
  EXPECT_NE(reason.find("0000000000001000"), std::string::npos) << reason;
  EXPECT_NE(reason.find("0000000000002000"), std::string::npos) << reason;
  EXPECT_EQ(count_events(cluster, 1, "unrelated-data name:r0 peer-node-id:0"), 1);
}

}  // namespace
}  // namespace ditto::core
