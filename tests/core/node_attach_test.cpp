// attach after a detach in core::Node (node_attach.cpp), driven by hand
// (tests/core/node_harness.h). The "metadata" a test attaches is what the disk held when it was
// detached: the node's generations and bitmaps just before the Detach (what dittod writes back).
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::block_sector;
using harness::events_containing;
using harness::node_id;

AdminResult admin(Cluster& cluster, int node, const AdminCommand& command) {
  const AdminResult result = cluster.nodes[node].on_admin(cluster.now, command);
  cluster.collect_all();
  return result;
}

// What the disk of `node` records when it detaches now: its state, generations and bitmaps.
Attach disk_of(const Cluster& cluster, int node) {
  const Node& self = cluster.nodes[node];
  Attach disk;
  disk.disk = self.disk_state();
  disk.generations = self.generations();
  for (const PeerStatus& peer : self.peers()) {
    disk.bitmap_words[peer.node_id.value] = self.bitmap_toward(peer.node_id).export_words();
  }
  return disk;
}

// Blocks `node` asked for in ResyncRequests since `from` (an index into cluster.sent).
std::set<std::uint64_t> requested_blocks(const Cluster& cluster, int node, std::size_t from = 0) {
  std::set<std::uint64_t> blocks;
  for (std::size_t index = from; index < cluster.sent.size(); ++index) {
    const auto& [sender, send] = cluster.sent[index];
    const auto* request = std::get_if<wire::ResyncRequest>(&send.message);
    if (sender != node || request == nullptr) continue;
    for (std::uint32_t offset = 0; offset < request->length_bytes; offset += 4096) {
      blocks.insert((request->sector.value + offset / 512) / 8);
    }
  }
  return blocks;
}

// Every node connected, `primary` Primary, block 1 written on all; then `node` detaches.
// Returns what its disk holds.
Attach detach_after_a_write(Cluster& cluster, int node, int primary = 0) {
  cluster.connect_all();
  cluster.promote(primary);
  cluster.write(primary, 1, block_sector(1), 1);
  cluster.settle();
  const Attach disk = disk_of(cluster, node);
  EXPECT_TRUE(admin(cluster, node, Detach{}).ok);
  cluster.settle();
  return disk;
}

TEST(Attach, ADetachedSecondaryReattachesAndSyncsOnlyWhatChanged) {
  Cluster cluster(2);
  const Attach disk = detach_after_a_write(cluster, 1);
  for (const std::uint64_t block : {3, 7, 9}) cluster.write(0, 10 + block, block_sector(block), 5);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->out_of_sync_bytes, 3u * 4096);

  const AdminResult attached = admin(cluster, 1, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  EXPECT_EQ(events_containing(cluster, 1, "minor:0 disk:Attaching"), 1);
  EXPECT_EQ(events_containing(cluster, 1, "minor:0 disk:Negotiating"), 1);
  EXPECT_EQ(events_containing(cluster, 1, "minor:0 disk:Inconsistent"), 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(requested_blocks(cluster, 1), (std::set<std::uint64_t>{3, 7, 9}));
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->resync_total_blocks, 3u);
  EXPECT_EQ(cluster.nodes[1].generation() & ~1ull, cluster.nodes[0].generation() & ~1ull);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->out_of_sync_bytes, 0u);
  EXPECT_TRUE(cluster.disconnects.empty());  // all on the live connection

  // Replicated to again: the next write reaches node 1's disk.
  cluster.write(0, 30, block_sector(11), 6);
  cluster.deliver_messages();
  EXPECT_EQ(cluster.pending_writes(1).size(), 1u);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(30), ClientStatus::ok);
}

TEST(Attach, ADetachedPrimaryReattachesWhileWritingAndEveryWriteReachesItsDisk) {
  Cluster cluster(2);
  const Attach disk = detach_after_a_write(cluster, 0);
  cluster.write(0, 2, block_sector(2), 2);
  cluster.write(0, 4, block_sector(4), 4);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(4), ClientStatus::ok);

  const AdminResult attached = admin(cluster, 0, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::inconsistent);
  // Writes and reads during the resync go to the UpToDate peer only; the written blocks are
  // resynced afterwards.
  cluster.write(0, 6, block_sector(6), 6);
  EXPECT_TRUE(cluster.pending_writes(0).empty());
  cluster.deliver_messages();
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::sync_target);
  cluster.write(0, 8, block_sector(8), 8);
  cluster.nodes[0].on_client_read(cluster.now, RequestId{9}, Sector{block_sector(8)}, 4096);
  cluster.collect(0);
  EXPECT_EQ(cluster.count_sent(0, wire::MessageType::read_request), 1);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(6), ClientStatus::ok);
  EXPECT_EQ(cluster.completion_of(8), ClientStatus::ok);
  EXPECT_EQ(cluster.completion_of(9), ClientStatus::ok);

  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  const std::set<std::uint64_t> requested = requested_blocks(cluster, 0);
  for (const std::uint64_t block : {2, 4, 6, 8}) EXPECT_TRUE(requested.contains(block)) << block;
  EXPECT_FALSE(requested.contains(1));  // in sync since before the detach
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->out_of_sync_bytes, 0u);
  EXPECT_EQ(cluster.nodes[1].generation() & ~1ull, cluster.nodes[0].generation() & ~1ull);
  // UpToDate again: writes go to the local disk.
  cluster.write(0, 10, block_sector(10), 10);
  EXPECT_EQ(cluster.pending_writes(0).size(), 1u);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(10), ClientStatus::ok);
}

TEST(Attach, AttachIsRefusedWhenTheNodeIsNotDiskless) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  const AdminResult refused = admin(cluster, 1, disk_of(cluster, 1));
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "ERR_DISK_CONFIGURED");
  EXPECT_NE(refused.message.find("detach first"), std::string::npos) << refused.message;
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(events_containing(cluster, 1, "disk:Attaching"), 0);
}

TEST(Attach, AttachOfADiskWithUnrelatedDataIsRefusedAndTheNodeStaysDiskless) {
  Cluster cluster(2);
  Attach disk = detach_after_a_write(cluster, 1);
  disk.generations = Generations{};
  disk.generations.current = 0x5EED'0000'1234'5670ull;  // never part of this cluster
  const AdminResult refused = admin(cluster, 1, disk);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.code, "ERR_DATA_NOT_CURRENT");
  EXPECT_NE(refused.message.find("unrelated"), std::string::npos) << refused.message;
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::diskless);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(Attach, ADisklessPrimaryWithoutAnUpToDatePeerAttachesOnlyTheDiskHoldingItsData) {
  Cluster cluster(2);
  const Attach disk = detach_after_a_write(cluster, 0);
  cluster.write(0, 2, block_sector(2), 2);  // a new generation the disk never saw
  cluster.settle();
  cluster.disconnect(0, 1);
  cluster.settle();
  const AdminResult refused = admin(cluster, 0, disk);
  EXPECT_EQ(refused.code, "ERR_DATA_NOT_CURRENT") << refused.message;
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
}

TEST(Attach, AnAttachWithoutConnectedPeersTakesTheStateTheMetadataGives) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.settle();
  Attach disk = disk_of(cluster, 1);
  ASSERT_TRUE(admin(cluster, 1, Detach{}).ok);
  cluster.disconnect(0, 1);
  cluster.settle();
  disk.disk = DiskState::outdated;
  ASSERT_TRUE(admin(cluster, 1, disk).ok);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_EQ(events_containing(cluster, 1, "disk:Negotiating"), 0);
  // The next connection's handshake brings it up to date (no blocks differ).
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
}

// The Primary's disk got a write its peer missed (the connection was down), then failed; with no
// peer and nothing written through one since (the next generation is still pending), the disk
// holds all the Primary serves: it attaches UpToDate, not Outdated as a detached disk's
// metadata says, and at the next connection it is the source of that write (swarm seed 605).
TEST(Attach, APrimaryAttachingTheDiskOfItsGenerationWithoutPeersKeepsTheWritesOnlyItHolds) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  cluster.disconnect(0, 1);
  cluster.settle();
  cluster.write(0, 2, block_sector(2), 2);  // on node 0's disk alone
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  Attach disk = disk_of(cluster, 0);
  // The next write fails on the disk (EIO): on-io-error detach; no peer stored it either.
  cluster.write(0, 3, block_sector(3), 3);
  const std::vector<DiskWrite> failing = cluster.pending_writes(0);
  ASSERT_EQ(failing.size(), 1u);
  cluster.complete_io(0, failing.front().io.value, IoStatus::io_error);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::io_error);
  disk.disk = DiskState::outdated;  // what the metadata of a detached disk says
  const AdminResult attached = admin(cluster, 0, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  const std::size_t before = cluster.sent.size();
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  // Block 2, and block 3 of the failed write (marked toward the absent peer, either copy will do).
  EXPECT_EQ(requested_blocks(cluster, 1, before), (std::set<std::uint64_t>{2, 3}));
  EXPECT_TRUE(requested_blocks(cluster, 0, before).empty());
}


// A diskless Primary attaches an Inconsistent disk while cut off, and the handshake with an
// UpToDate peer makes it that peer's SyncTarget. A write during the resync starts a new
// generation (a peer was lost), which the source adopts without reporting it back (a
// Secondary does not report the generations it adopts). When the resync ends, the Primary
// keeps the generation it serves: taking the source's last report would move it back to the
// one before, which it already left, and the peers that went on with the new one would later
// meet it as a split brain (history-both; quorum swarm seed 2673).
TEST(Attach, APrimaryWhoseAttachedDiskResyncedAfterAHandshakeKeepsTheGenerationItStartedMeanwhile) {
  Cluster cluster(3);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  cluster.nodes[0].on_local_disk_failed(cluster.now);
  cluster.collect(0);
  cluster.write(0, 2, block_sector(2), 2);  // through the peers
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);
  // Node 0 is cut off, node 2 first: node 1 sees no Primary through it and stays UpToDate.
  cluster.disconnect(0, 2);
  cluster.disconnect(0, 1);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  Attach disk;
  disk.disk = DiskState::inconsistent;
  disk.generations = cluster.nodes[0].generations();
  const AdminResult attached = admin(cluster, 0, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  cluster.connect(0, 1);  // messages and disks, no timers: the resync has begun, not ended
  ASSERT_EQ(cluster.nodes[0].peer(node_id(1))->replication, ReplicationState::sync_target);
  const std::uint64_t before = comparable_current(cluster.nodes[0].generations().current);
  cluster.write(0, 3, block_sector(3), 3);  // node 2 is missing: a new generation
  cluster.drain();
  const std::uint64_t started = comparable_current(cluster.nodes[0].generations().current);
  ASSERT_NE(started, before);
  ASSERT_EQ(comparable_current(cluster.nodes[1].generations().current), started);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(comparable_current(cluster.nodes[0].generations().current), started)
      << "the Primary moved back to a generation it had left";
  EXPECT_EQ(comparable_current(cluster.nodes[1].generations().current), started);
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
}

// Swarm seed 12824: node 1 attached its disk again and took node 2 as its source (the
// Primary's disk had failed and was back, which node 1 had not heard yet); node 2's disk failed
// during that resync, and node 1, Inconsistent, stayed so for good: the UpToDate Primary
// resyncs an Outdated peer itself, not an Inconsistent one. Node 1 asks an UpToDate peer
// through a new handshake. Here node 2 is the Primary and node 0, the lowest UpToDate node, the
// source.
TEST(Attach, ADiskWhoseResyncSourceFailedResyncsFromAnUpToDatePeer) {
  Cluster cluster(3);
  const Attach disk = detach_after_a_write(cluster, 1, 2);
  cluster.write(2, 2, block_sector(2), 2);
  cluster.settle();
  ASSERT_EQ(cluster.completion_of(2), ClientStatus::ok);

  const AdminResult attached = admin(cluster, 1, disk);
  ASSERT_TRUE(attached.ok) << attached.code << ": " << attached.message;
  ASSERT_EQ(cluster.nodes[1].disk_state(), DiskState::inconsistent);
  cluster.nodes[0].on_local_disk_failed(cluster.now);  // the source, during the resync
  cluster.collect(0);
  cluster.settle();
  ASSERT_EQ(cluster.nodes[0].disk_state(), DiskState::diskless);

  bool asked = false;
  for (const auto& [index, drop] : cluster.disconnects) {
    asked =
        asked || (index == 1 && drop.reason == "reconnecting to resync from UpToDate peer node2");
  }
  ASSERT_TRUE(asked) << "node 1 stays " << to_string(cluster.nodes[1].disk_state());
  cluster.disconnect(1, 2);  // the transport connects them again
  cluster.connect(1, 2);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(comparable_current(cluster.nodes[1].generation()),
            comparable_current(cluster.nodes[2].generation()));
}

}  // namespace
}  // namespace ditto::core
