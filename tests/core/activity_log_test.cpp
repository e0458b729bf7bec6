// Activity log: 4 MiB extents, LRU eviction, one transaction in flight, replay after a crash.
#include "core/activity_log.h"

#include <gtest/gtest.h>

namespace ditto {
namespace {

constexpr std::uint64_t extent = ActivityLog::extent_sectors;

// Runs one I/O through the log the way a driver does: write the transaction, then complete.
void write_through(ActivityLog& log, std::uint64_t sector, std::uint64_t count) {
  const ActivityLog::BeginResult begin = log.begin_io(sector, count);
  ASSERT_NE(begin.status, ActivityLog::BeginStatus::busy);
  if (begin.status == ActivityLog::BeginStatus::transaction_needed) {
    (void)log.take_transaction();
    log.transaction_written();
  }
  ASSERT_TRUE(log.range_committed(sector, count));
  log.complete_io(sector, count);
}

TEST(ActivityLog, AWriteToAnInactiveExtentNeedsATransactionFirst) {
  ActivityLog log(4);
  const ActivityLog::BeginResult begin = log.begin_io(5 * extent + 8, 8);
  EXPECT_EQ(begin.status, ActivityLog::BeginStatus::transaction_needed);
  ASSERT_EQ(begin.updates.size(), 1u);
  EXPECT_EQ(begin.updates[0].extent, 5u);
  EXPECT_EQ(begin.updates[0].evicted_extent, metadata::al_free_extent);
  EXPECT_FALSE(log.range_committed(5 * extent + 8, 8));
  const metadata::AlTransaction transaction = log.take_transaction();
  EXPECT_EQ(transaction.n_updates, 1);
  EXPECT_EQ(transaction.update_extents[0], 5u);
  EXPECT_EQ(transaction.update_slots[1], metadata::al_free_slot);
  EXPECT_EQ(transaction.context_size, 4);
  log.transaction_written();
  EXPECT_TRUE(log.range_committed(5 * extent + 8, 8));
  log.complete_io(5 * extent + 8, 8);
}

TEST(ActivityLog, ASecondWriteToAnActiveExtentIsReadyWithoutATransaction) {
  ActivityLog log(4);
  write_through(log, 0, 8);
  const ActivityLog::BeginResult again = log.begin_io(100, 8);
  EXPECT_EQ(again.status, ActivityLog::BeginStatus::ready);
  EXPECT_TRUE(again.updates.empty());
  log.complete_io(100, 8);
}

TEST(ActivityLog, AWriteIntoAnExtentWhoseTransactionIsInFlightWaitsForIt) {
  ActivityLog log(4);
  ASSERT_EQ(log.begin_io(0, 8).status, ActivityLog::BeginStatus::transaction_needed);
  (void)log.take_transaction();
  const ActivityLog::BeginResult second = log.begin_io(8, 8);
  EXPECT_EQ(second.status, ActivityLog::BeginStatus::transaction_needed);
  EXPECT_TRUE(second.updates.empty());  // nothing new to write: wait for the one in flight
  log.transaction_written();
  EXPECT_TRUE(log.range_committed(8, 8));
  log.complete_io(0, 8);
  log.complete_io(8, 8);
}

TEST(ActivityLog, TheLeastRecentlyUsedIdleExtentIsEvicted) {
  ActivityLog log(2);
  write_through(log, 0 * extent, 8);
  write_through(log, 1 * extent, 8);
  write_through(log, 0 * extent, 8);  // extent 0 is now the most recently used
  const ActivityLog::BeginResult begin = log.begin_io(7 * extent, 8);
  ASSERT_EQ(begin.status, ActivityLog::BeginStatus::transaction_needed);
  ASSERT_EQ(begin.updates.size(), 1u);
  EXPECT_EQ(begin.updates[0].evicted_extent, 1u);
  EXPECT_EQ(begin.updates[0].extent, 7u);
  (void)log.take_transaction();
  log.transaction_written();
  log.complete_io(7 * extent, 8);
  EXPECT_EQ(log.hot_extents(), (std::vector<std::uint32_t>{0, 7}));
}

TEST(ActivityLog, WhenEverySlotIsReferencedTheLogIsBusyAndUnchanged) {
  ActivityLog log(2);
  ASSERT_EQ(log.begin_io(0, 8).status, ActivityLog::BeginStatus::transaction_needed);
  ASSERT_EQ(log.begin_io(extent, 8).status, ActivityLog::BeginStatus::transaction_needed);
  const ActivityLog::BeginResult busy = log.begin_io(2 * extent, 8);
  EXPECT_EQ(busy.status, ActivityLog::BeginStatus::busy);
  EXPECT_EQ(log.hot_extents(), (std::vector<std::uint32_t>{0, 1}));
  (void)log.take_transaction();
  log.transaction_written();
  log.complete_io(0, 8);
  EXPECT_EQ(log.begin_io(2 * extent, 8).status, ActivityLog::BeginStatus::transaction_needed);
}

TEST(ActivityLog, AnIoSpanningTwoExtentsReferencesBoth) {
  ActivityLog log(8);
  const ActivityLog::BeginResult begin = log.begin_io(extent - 8, 16);
  ASSERT_EQ(begin.updates.size(), 2u);
  (void)log.take_transaction();
  log.transaction_written();
  log.complete_io(extent - 8, 16);
  EXPECT_EQ(log.hot_extents(), (std::vector<std::uint32_t>{0, 1}));
}

TEST(ActivityLog, ContextWindowRotatesAcrossTransactions) {
  ActivityLog log(1000);
  write_through(log, 0, 8);
  write_through(log, extent, 8);
  const ActivityLog::BeginResult third = log.begin_io(2 * extent, 8);
  ASSERT_EQ(third.status, ActivityLog::BeginStatus::transaction_needed);
  const metadata::AlTransaction transaction = log.take_transaction();
  EXPECT_EQ(transaction.tr_number, 2u);
  EXPECT_EQ(transaction.context_start_slot, 0);  // 0, 919, then back to 0 for 1000 slots
  log.transaction_written();
  log.complete_io(2 * extent, 8);
}

TEST(ActivityLog, ReplayOfWrittenTransactionsGivesTheHotExtents) {
  ActivityLog log(3);
  std::vector<std::optional<metadata::AlTransaction>> ring(8);
  std::uint32_t written = 0;
  for (std::uint64_t extent_number : {4u, 9u, 4u, 12u, 30u}) {
    const std::uint64_t sector = extent_number * extent;
    if (log.begin_io(sector, 8).status == ActivityLog::BeginStatus::transaction_needed) {
      const metadata::AlTransaction transaction = log.take_transaction();
      // Through the codec, as on disk.
      ring[metadata::al_block_index(transaction.tr_number, 1, 8)] =
          metadata::decode_al_transaction(metadata::encode_al_transaction(transaction)).value();
      log.transaction_written();
      ++written;
    }
    log.complete_io(sector, 8);
  }
  EXPECT_EQ(written, 4u);
  // 30 evicted 9, the least recently used (4 was used again after 9).
  EXPECT_EQ(log.hot_extents(), (std::vector<std::uint32_t>{4, 12, 30}));
  EXPECT_EQ(replay_activity_log(ring), log.hot_extents());
}

TEST(ActivityLog, ReplayOrdersTransactionsAcrossTheTransactionNumberWrap) {
  ActivityLog log(1, 0xFFFFFFFE);  // numbers 0xFFFFFFFE, 0xFFFFFFFF, 0 ...
  std::vector<std::optional<metadata::AlTransaction>> ring(8);
  for (std::uint64_t extent_number : {1u, 2u, 3u}) {
    ASSERT_EQ(log.begin_io(extent_number * extent, 8).status,
              ActivityLog::BeginStatus::transaction_needed);
    const metadata::AlTransaction transaction = log.take_transaction();
    ring[metadata::al_block_index(transaction.tr_number, 1, 8)] = transaction;
    log.transaction_written();
    log.complete_io(extent_number * extent, 8);
  }
  EXPECT_EQ(replay_activity_log(ring), (std::vector<std::uint32_t>{3}));
}

TEST(ActivityLog, AFreshlyInitializedLogReplaysAsEmpty) {
  std::vector<std::optional<metadata::AlTransaction>> ring(8,
                                                           metadata::initialized_al_transaction());
  ring[3] = std::nullopt;  // a torn block
  EXPECT_TRUE(replay_activity_log(ring).empty());
}

}  // namespace
}  // namespace ditto
