// The activity log and persisted bitmaps of core::Node (node_activity_log.cpp, §4): what waits
// for which metadata write, what the written blocks say, and what a node started from them has.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/activity_log.h"
#include "core/metadata.h"
#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using wire::MessageType;

constexpr std::uint64_t volume_bytes = 64ull * 1024 * 1024;  // 16 extents of 4 MiB
constexpr std::uint32_t few_slots = ActivityLog::node_al_extents_min;  // 9
constexpr std::uint64_t extent_sectors = ActivityLog::extent_sectors;

void with_activity_log(NodeConfig& config, std::uint32_t al_extents) {
  config.volume_size_bytes = volume_bytes;
  config.al_updates = true;
  config.al_extents = al_extents;
}

// Node 0 Primary of `count` connected nodes; every metadata write so far completed.
Cluster primary_with_log(int count, std::uint32_t al_extents) {
  Cluster cluster(count, [&](NodeConfig& config) { with_activity_log(config, al_extents); });
  cluster.connect_all();
  cluster.promote(0);
  cluster.metadata_writes.clear();
  return cluster;
}

std::vector<MetadataWrite> metadata_of(const Cluster& cluster, int index, MetadataArea area) {
  std::vector<MetadataWrite> result;
  for (const auto& [node, write] : cluster.metadata_writes) {
    if (node == index && write.area == area) result.push_back(write);
  }
  return result;
}

// The slot-interleaved bitmap area rebuilt from the pages node `index` wrote (newest wins).
std::vector<std::uint8_t> bitmap_area(const Cluster& cluster, int index) {
  std::vector<std::uint8_t> area;
  for (const MetadataWrite& page : metadata_of(cluster, index, MetadataArea::bitmap)) {
    const std::size_t end = (page.block + 1) * metadata::block_size_bytes;
    if (area.size() < end) area.resize(end, 0);
    std::copy(page.bytes.begin(), page.bytes.end(),
              area.begin() + static_cast<std::ptrdiff_t>(page.block * metadata::block_size_bytes));
  }
  return area;
}

std::vector<std::uint32_t> slot_words(const std::vector<std::uint8_t>& area, std::uint32_t slots,
                                      std::uint32_t slot) {
  const std::size_t words = volume_bytes / Bitmap::bytes_per_bit / 32;
  return metadata::unpack_bitmap_slot(area, slots, slot, words);
}

TEST(ActivityLog, AWriteToAnExtentNotInTheLogWaitsUntilItsTransactionIsOnDisk) {
  Cluster cluster = primary_with_log(2, 67);
  cluster.write(0, 1, 3 * extent_sectors, 7);
  EXPECT_TRUE(cluster.pending_writes(0).empty());  // not submitted locally
  EXPECT_EQ(cluster.count_sent(0, MessageType::data), 0);  // nor sent
  const std::vector<MetadataWrite> log = metadata_of(cluster, 0, MetadataArea::activity_log);
  ASSERT_EQ(log.size(), 1u);
  const Result<metadata::AlTransaction> transaction = metadata::decode_al_transaction(log[0].bytes);
  ASSERT_TRUE(transaction.ok()) << transaction.error().message;
  EXPECT_EQ(transaction.value().n_updates, 1);
  EXPECT_EQ(transaction.value().update_extents[0], 3u);
  EXPECT_EQ(log[0].block, metadata::al_block_index(transaction.value().tr_number, 1, 8));

  cluster.complete_io(0, log[0].io.value);
  EXPECT_EQ(cluster.pending_writes(0).size(), 1u);
  EXPECT_EQ(cluster.count_sent(0, MessageType::data), 1);
  EXPECT_EQ(cluster.nodes[0].hot_extents(), std::vector<std::uint32_t>{3});
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
}

TEST(ActivityLog, AWriteToAnExtentAlreadyInTheLogNeedsNoTransaction) {
  Cluster cluster = primary_with_log(2, 67);
  cluster.write(0, 1, 0, 7);
  cluster.drain();
  cluster.metadata_writes.clear();
  cluster.write(0, 2, 8, 8);  // the same extent
  EXPECT_TRUE(cluster.metadata_writes.empty());
  EXPECT_EQ(cluster.pending_writes(0).size(), 1u);
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
}

TEST(ActivityLog, AnExtentLeavesTheLogOnlyAfterThePeerAckedItsBarrierAndItsPagesGoFirst) {
  Cluster cluster = primary_with_log(2, few_slots);
  std::vector<std::string> order;
  cluster.observer = [&](int index, const Action& action) {
    if (index != 0) return;
    if (std::holds_alternative<DiskFlush>(action)) order.push_back("flush");
    if (const auto* write = std::get_if<MetadataWrite>(&action)) {
      order.push_back(write->area == MetadataArea::bitmap ? "bitmap" : "log");
    }
  };
  for (std::uint64_t extent = 0; extent < few_slots; ++extent) {
    cluster.write(0, extent + 1, extent * extent_sectors, extent + 1);  // one per slot
  }
  // The first write's transaction, then one for the other eight, then their data.
  for (int round = 0; round < 3; ++round) cluster.complete_disk(0);
  cluster.deliver_messages();  // the Data reaches node 1
  cluster.complete_disk(1);    // node 1 wrote it: WriteAcks
  cluster.deliver_messages();  // the writes complete; node 1 flushes for the Barrier: no ack yet
  for (std::uint64_t request = 1; request <= few_slots; ++request) {
    ASSERT_EQ(cluster.completion_of(request), ClientStatus::ok) << "request " << request;
  }
  ASSERT_EQ(cluster.count_sent(1, MessageType::barrier_ack), 0);
  order.clear();
  cluster.write(0, 100, 12 * extent_sectors, 8);
  // Every slot is still referenced (no BarrierAck yet): nothing can move.
  EXPECT_TRUE(order.empty());
  EXPECT_TRUE(cluster.pending_writes(0).empty());
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(100), ClientStatus::ok);
  EXPECT_EQ((std::vector<std::string>{"flush", "bitmap", "log"}), order);
  const std::vector<std::uint32_t> hot = cluster.nodes[0].hot_extents();
  EXPECT_EQ(hot.size(), few_slots);
  EXPECT_EQ(hot.back(), 12u);
  EXPECT_EQ(hot.front(), 1u);  // extent 0, the least recently used, left
}

TEST(ActivityLog, EvictionWritesTheBitsOfTheEvictedExtentIntoTheBitmapPage) {
  Cluster cluster = primary_with_log(3, few_slots);
  cluster.disconnect(0, 2);
  cluster.write(0, 1, 16, 7);  // block 2, not on node 2
  cluster.drain();
  for (std::uint64_t extent = 1; extent <= few_slots; ++extent) {
    cluster.write(0, extent + 1, extent * extent_sectors, 8);  // the last one evicts extent 0
    cluster.drain();
    ASSERT_EQ(cluster.completion_of(extent + 1), ClientStatus::ok);
  }
  ASSERT_EQ(cluster.nodes[0].hot_extents().front(), 1u);
  const std::vector<std::uint8_t> area = bitmap_area(cluster, 0);
  ASSERT_FALSE(area.empty());
  // Slots follow the order of NodeConfig::peers: node 1 in slot 0, node 2 in slot 1.
  EXPECT_EQ(slot_words(area, 2, 0)[0], 0u);
  EXPECT_EQ(slot_words(area, 2, 1)[0], 1u << 2);
}

TEST(ActivityLog, DownWritesEveryBitmapPageAndANodeStartedFromThemHasTheSameBitmaps) {
  Cluster cluster = primary_with_log(3, 67);
  cluster.disconnect(0, 1);
  for (std::uint64_t request = 1; request <= 5; ++request) {
    cluster.write(0, request, request * 3 * extent_sectors / 2 % (volume_bytes / 512), request);
    cluster.drain();
  }
  const Bitmap before = cluster.nodes[0].bitmap_toward(harness::node_id(1));
  ASSERT_EQ(before.count_set(), 5u);
  cluster.metadata_writes.clear();
  ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, Down{}).ok);
  cluster.collect(0);
  EXPECT_TRUE(cluster.nodes[0].metadata_writes_pending());
  cluster.settle();
  EXPECT_FALSE(cluster.nodes[0].metadata_writes_pending());

  // A clean restart: the bitmaps come from the pages, nothing else is out of sync.
  NodeConfig config = cluster.nodes[0].config();
  config.initial_disk_state = DiskState::outdated;
  const std::vector<std::uint8_t> area = bitmap_area(cluster, 0);
  config.initial_bitmap_words[1] = slot_words(area, 2, 0);
  config.initial_bitmap_words[2] = slot_words(area, 2, 1);
  const Node restarted(config);
  EXPECT_EQ(restarted.bitmap_toward(harness::node_id(1)), before);
  EXPECT_EQ(restarted.bitmap_toward(harness::node_id(2)).count_set(), 0u);

  // Without the bitmaps, the fallback: everything out of sync.
  config.initial_bitmap_words.clear();
  const Node without(config);
  EXPECT_EQ(without.bitmap_toward(harness::node_id(1)).count_set(), volume_bytes / 4096);
}

TEST(ActivityLog, AfterAPrimaryCrashApplyAlMarksOnlyTheHotExtentsTowardEveryPeer) {
  Cluster cluster = primary_with_log(3, 67);
  cluster.write(0, 1, 1 * extent_sectors, 7);
  cluster.write(0, 2, 6 * extent_sectors + 64, 8);
  cluster.drain();
  // The crash: what is on disk is the ring of transactions and the (clean) bitmap.
  std::vector<std::optional<metadata::AlTransaction>> ring;
  for (const MetadataWrite& write : metadata_of(cluster, 0, MetadataArea::activity_log)) {
    const Result<metadata::AlTransaction> decoded = metadata::decode_al_transaction(write.bytes);
    ASSERT_TRUE(decoded.ok());
    ring.emplace_back(decoded.value());
  }
  NodeConfig config = cluster.nodes[0].config();
  config.initial_disk_state = DiskState::outdated;
  config.initial_hot_extents = replay_activity_log(ring);
  EXPECT_EQ(config.initial_hot_extents, (std::vector<std::uint32_t>{1, 6}));
  config.initial_bitmap_words[1] = std::vector<std::uint32_t>(volume_bytes / 4096 / 32, 0);
  config.initial_bitmap_words[2] = config.initial_bitmap_words[1];
  config.al_first_transaction_number = static_cast<std::uint32_t>(ring.size());
  Node restarted(config);
  for (const int peer : {1, 2}) {
    const Bitmap& bitmap = restarted.bitmap_toward(harness::node_id(peer));
    EXPECT_EQ(bitmap.count_set(), 2u * 1024);  // two extents of 1024 blocks, nothing else
    EXPECT_TRUE(bitmap.test(1024) && bitmap.test(6 * 1024 + 1023));
    EXPECT_FALSE(bitmap.test(1023) || bitmap.test(2 * 1024));
  }
  // The marks go to the on-disk bitmap (after a flush) before any new transaction.
  const std::vector<Action> actions = restarted.take_actions();
  ASSERT_FALSE(actions.empty());
  EXPECT_TRUE(std::holds_alternative<DiskFlush>(actions.front()));
}

TEST(ActivityLog, WithoutAlUpdatesNoMetadataIsWritten) {
  Cluster cluster(2, [](NodeConfig& config) { config.volume_size_bytes = volume_bytes; });
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, 0, 7);
  EXPECT_EQ(cluster.pending_writes(0).size(), 1u);
  cluster.drain();
  EXPECT_TRUE(cluster.metadata_writes.empty());
  EXPECT_TRUE(cluster.nodes[0].hot_extents().empty());
}

}  // namespace
}  // namespace ditto::core
