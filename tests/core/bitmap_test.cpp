// Out-of-sync bitmap: 4 KiB per bit, set on touch, cleared only for fully covered blocks.
#include "core/bitmap.h"

#include <gtest/gtest.h>

namespace ditto {
namespace {

TEST(Bitmap, AOneSectorWriteMarksItsWholeFourKiBBlock) {
  Bitmap bitmap(1 << 20);
  bitmap.set_sectors(9, 1);  // sector 9 lies in block 1 (sectors 8..15)
  EXPECT_EQ(bitmap.count_set(), 1u);
  EXPECT_TRUE(bitmap.test(1));
  EXPECT_EQ(bitmap.out_of_sync_kib(), 4u);
}

TEST(Bitmap, AnUnalignedRangeMarksEveryBlockItTouches) {
  Bitmap bitmap(1 << 20);
  bitmap.set_sectors(7, 10);  // sectors 7..16: blocks 0, 1, 2
  EXPECT_EQ(bitmap.count_set(), 3u);
  EXPECT_EQ(bitmap.find_next_set(0), 0u);
  EXPECT_EQ(bitmap.find_next_set(3), std::nullopt);
}

TEST(Bitmap, ClearingOnlyReleasesBlocksTheRangeCoversCompletely) {
  Bitmap bitmap(1 << 20);
  bitmap.set_sectors(0, 64);    // blocks 0..7
  bitmap.clear_sectors(4, 18);  // sectors 4..21: only block 1 (8..15) is fully covered
  EXPECT_EQ(bitmap.count_set(), 7u);
  EXPECT_FALSE(bitmap.test(1));
  EXPECT_TRUE(bitmap.test(0));
  EXPECT_TRUE(bitmap.test(2));
}

TEST(Bitmap, TheLastPartialBlockClearsWhenTheRangeReachesTheEnd) {
  Bitmap bitmap(20);  // 2.5 blocks: bit 2 covers sectors 16..19 only
  ASSERT_EQ(bitmap.bit_count(), 3u);
  bitmap.set_all();
  bitmap.clear_sectors(16, 4);
  EXPECT_EQ(bitmap.count_set(), 2u);
  EXPECT_FALSE(bitmap.test(2));
}

TEST(Bitmap, FindNextSetWalksAcrossWordsForResync) {
  Bitmap bitmap(8 * 1000);
  bitmap.set_bits(3, 1);
  bitmap.set_bits(64, 1);
  bitmap.set_bits(999, 1);
  std::vector<std::uint64_t> found;
  for (auto bit = bitmap.find_next_set(0); bit; bit = bitmap.find_next_set(*bit + 1)) {
    found.push_back(*bit);
  }
  EXPECT_EQ(found, (std::vector<std::uint64_t>{3, 64, 999}));
}

TEST(Bitmap, LongRangesCountCorrectlyAcrossWordBoundaries) {
  Bitmap bitmap(8 * 1000);
  bitmap.set_bits(60, 200);
  bitmap.set_bits(100, 300);  // overlaps: union is 60..399
  EXPECT_EQ(bitmap.count_set(), 340u);
  bitmap.clear_bits(0, 1000);
  EXPECT_EQ(bitmap.count_set(), 0u);
}

TEST(Bitmap, MergeIsTheUnionOfBothSidesDirtyBlocks) {
  Bitmap mine(8 * 256);
  Bitmap theirs(8 * 256);
  mine.set_bits(1, 10);
  theirs.set_bits(5, 20);
  mine.merge(theirs);
  EXPECT_EQ(mine.count_set(), 24u);  // 1..24
  EXPECT_EQ(mine.find_next_set(0), 1u);
  EXPECT_FALSE(mine.test(25));
}

TEST(Bitmap, ExportAndImportWordsRoundTripAndDropBitsPastTheEnd) {
  Bitmap bitmap(8 * 70);  // 70 bits: three 32-bit words
  bitmap.set_bits(0, 1);
  bitmap.set_bits(33, 1);
  bitmap.set_bits(69, 1);
  const std::vector<std::uint32_t> words = bitmap.export_words();
  EXPECT_EQ(words, (std::vector<std::uint32_t>{1, 2, 0x20}));
  Bitmap copy(8 * 70);
  std::vector<std::uint32_t> padded = words;
  padded[2] |= 0xFFFFFF00;  // bits 72.. are beyond the volume
  copy.import_words(padded);
  EXPECT_EQ(copy, bitmap);
  EXPECT_EQ(copy.count_set(), 3u);
}

}  // namespace
}  // namespace ditto
