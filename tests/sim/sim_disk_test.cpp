// The simulated disk: visibility on completion, durability on flush or FUA, loss on crash,
// and checksums that turn misdirected writes and bit rot into read errors.
#include "sim/sim_disk.h"

#include <gtest/gtest.h>

#include <vector>

namespace ditto::sim {
namespace {

constexpr std::uint64_t volume_bytes = 64 * block_size_bytes;

Sector block(std::uint64_t index) {
  return Sector{index * sectors_per_block};
}

TEST(SimDisk, AWriteIsVisibleOnlyOnceItCompletesAndCoversEveryBlock) {
  SimDisk disk(volume_bytes);
  disk.submit_write(IoId{1}, block(4), 3 * block_size_bytes, 77, false);
  EXPECT_EQ(disk.tag_at(4), 0u);
  disk.complete_write(IoId{1});
  std::vector<std::uint64_t> tags;
  ASSERT_TRUE(disk.read(block(3), 5 * block_size_bytes, tags));
  EXPECT_EQ(tags, (std::vector<std::uint64_t>{0, 77, 77, 77, 0}));
  EXPECT_EQ(disk.durable_tag_at(4), 0u);  // not flushed yet
}

TEST(SimDisk, ANodeThatCrashedLosesUnflushedWritesButKeepsFlushedOnes) {
  int lost = 0;
  int kept = 0;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    SimDisk disk(volume_bytes);
    disk.submit_write(IoId{1}, block(1), block_size_bytes, 10, false);
    disk.complete_write(IoId{1});
    disk.submit_flush(IoId{2});
    disk.complete_flush(IoId{2});
    disk.submit_write(IoId{3}, block(2), block_size_bytes, 20, false);  // completed, unflushed
    disk.complete_write(IoId{3});
    disk.submit_write(IoId{4}, block(3), block_size_bytes, 30, true);  // FUA
    disk.complete_write(IoId{4});
    Prng prng(seed);
    const CrashReport report = disk.crash(prng);
    EXPECT_EQ(disk.tag_at(1), 10u) << "seed " << seed << ": a flushed write was lost";
    EXPECT_EQ(disk.tag_at(3), 30u) << "seed " << seed << ": a FUA write was lost";
    EXPECT_TRUE(disk.tag_at(2) == 20u || disk.tag_at(2) == 0u);
    EXPECT_EQ(report.writes_kept + report.writes_lost, 1u);
    (disk.tag_at(2) == 20u ? kept : lost) += 1;
  }
  // Both outcomes happen: the crash really drops unflushed writes, and not always.
  EXPECT_GT(lost, 0);
  EXPECT_GT(kept, 0);
}

TEST(SimDisk, AFlushCoversOnlyWritesCompletedBeforeItWasSubmitted) {
  int later_lost = 0;
  for (std::uint64_t seed = 1; seed <= 32; ++seed) {
    SimDisk disk(volume_bytes);
    disk.submit_write(IoId{1}, block(1), block_size_bytes, 10, false);
    disk.complete_write(IoId{1});
    disk.submit_flush(IoId{2});
    disk.submit_write(IoId{3}, block(2), block_size_bytes, 20, false);
    disk.complete_write(IoId{3});  // completes after the flush was submitted
    disk.complete_flush(IoId{2});
    EXPECT_EQ(disk.durable_tag_at(1), 10u);
    Prng prng(seed);
    (void)disk.crash(prng);
    EXPECT_EQ(disk.tag_at(1), 10u);
    later_lost += disk.tag_at(2) == 0u ? 1 : 0;
  }
  EXPECT_GT(later_lost, 0);
}

TEST(SimDisk, AnOlderUnflushedWriteKeptAtACrashNeverRollsBackANewerFuaWrite) {
  for (std::uint64_t seed = 1; seed <= 32; ++seed) {
    SimDisk disk(volume_bytes);
    disk.submit_write(IoId{1}, block(0), 4 * block_size_bytes, 10, false);
    disk.complete_write(IoId{1});
    disk.submit_write(IoId{2}, block(1), block_size_bytes, 20, true);
    disk.complete_write(IoId{2});
    Prng prng(seed);
    (void)disk.crash(prng);
    EXPECT_EQ(disk.tag_at(1), 20u) << "seed " << seed;
    EXPECT_TRUE(disk.tag_at(0) == 10u || disk.tag_at(0) == 0u);
  }
}

TEST(SimDisk, AWriteInFlightAtTheCrashMayLandOrNot) {
  int landed = 0;
  for (std::uint64_t seed = 1; seed <= 32; ++seed) {
    SimDisk disk(volume_bytes);
    disk.submit_write(IoId{1}, block(5), block_size_bytes, 50, false);
    Prng prng(seed);
    (void)disk.crash(prng);
    EXPECT_EQ(disk.writes_in_flight(), 0u);
    landed += disk.tag_at(5) == 50u ? 1 : 0;
  }
  EXPECT_GT(landed, 0);
  EXPECT_LT(landed, 32);
}

TEST(SimDisk, AWriteThatFailedWithEioChangesNothing) {
  SimDisk disk(volume_bytes);
  disk.submit_write(IoId{1}, block(3), block_size_bytes, 30, true);
  disk.complete_write(IoId{1}, false);
  EXPECT_EQ(disk.tag_at(3), 0u);
  EXPECT_EQ(disk.durable_tag_at(3), 0u);
}

TEST(SimDisk, WithoutLostUnflushedWritesACrashKeepsEveryCompletedWrite) {
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    SimDisk disk(volume_bytes);
    disk.submit_write(IoId{1}, block(0), block_size_bytes, 7, false);
    disk.complete_write(IoId{1});
    Prng prng(seed);
    const CrashReport report = disk.crash(prng, CrashModel{false, false});
    EXPECT_EQ(disk.tag_at(0), 7u);
    EXPECT_EQ(report.writes_lost, 0u);
  }
}

TEST(SimDisk, TearingLandsPartOfAMultiBlockWriteAndMarksOneBlockTorn) {
  int partial = 0;
  int torn = 0;
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    SimDisk disk(volume_bytes);
    disk.submit_write(IoId{1}, block(8), 4 * block_size_bytes, 99, false);
    Prng prng(seed);
    const CrashReport report = disk.crash(prng, CrashModel{true, true});
    if (report.writes_torn == 0) continue;
    torn += 1;
    int whole = 0;
    int torn_blocks = 0;
    for (std::uint64_t index = 8; index < 12; ++index) {
      whole += disk.tag_at(index) == 99u ? 1 : 0;
      torn_blocks += disk.tag_at(index) == (torn_tag_bit | 99u) ? 1 : 0;
      EXPECT_TRUE(disk.tag_at(index) == 0u || disk.tag_at(index) == 99u ||
                  disk.tag_at(index) == (torn_tag_bit | 99u));
    }
    EXPECT_EQ(torn_blocks, 1);
    partial += whole < 3 ? 1 : 0;
  }
  EXPECT_GT(torn, 0);
  EXPECT_GT(partial, 0);
}

TEST(SimDisk, TheMetadataGenerationsAndConsistencySurviveACrash) {
  SimDisk disk(volume_bytes);
  EXPECT_EQ(disk.metadata_generations().current, 1u);
  EXPECT_TRUE(disk.metadata_consistent());
  Generations written{65, {}, {}};
  written.bitmap[2] = 41;
  written.history[0] = 17;
  disk.write_metadata(written, false);
  Prng prng(1);
  (void)disk.crash(prng);
  EXPECT_EQ(disk.metadata_generations().current, 65u);
  EXPECT_EQ(disk.metadata_generations(), written);
  EXPECT_FALSE(disk.metadata_consistent());
}

TEST(SimDisk, AMisdirectedWriteFailsTheChecksumOfBothTheIntendedAndTheHitBlocks) {
  SimDisk disk(volume_bytes);
  disk.submit_write(IoId{1}, block(10), block_size_bytes, 5, true);
  disk.complete_write(IoId{1});
  disk.misdirect_next_write(7);
  ASSERT_TRUE(disk.misdirect_armed());
  disk.submit_write(IoId{2}, block(10), 2 * block_size_bytes, 6, false);
  EXPECT_FALSE(disk.misdirect_armed());  // one write only
  disk.complete_write(IoId{2});
  std::vector<std::uint64_t> tags{1, 2};
  // Neither the old data at the intended blocks nor the new data elsewhere is ever returned.
  EXPECT_FALSE(disk.read(block(10), block_size_bytes, tags));
  EXPECT_TRUE(tags.empty());
  EXPECT_FALSE(disk.read(block(11), block_size_bytes, tags));
  EXPECT_FALSE(disk.read(block(17), 2 * block_size_bytes, tags));
  EXPECT_TRUE(disk.read(block(12), 5 * block_size_bytes, tags));
  EXPECT_TRUE(disk.read(block(19), block_size_bytes, tags));
}

TEST(SimDisk, BitRotIsCaughtOnReadSurvivesACrashAndAFullWriteRepairsIt) {
  SimDisk disk(volume_bytes);
  EXPECT_FALSE(disk.rot(3));  // never written: nothing lost
  disk.submit_write(IoId{1}, block(4), block_size_bytes, 8, true);
  disk.complete_write(IoId{1});
  EXPECT_TRUE(disk.rot(4));
  std::vector<std::uint64_t> tags;
  EXPECT_FALSE(disk.read(block(4), block_size_bytes, tags));
  Prng prng(1);
  (void)disk.crash(prng);
  EXPECT_FALSE(disk.read(block(4), block_size_bytes, tags));  // the media stays rotten
  disk.submit_write(IoId{2}, block(4), block_size_bytes, 9, false);
  disk.complete_write(IoId{2});
  ASSERT_TRUE(disk.read(block(4), block_size_bytes, tags));
  EXPECT_EQ(tags, (std::vector<std::uint64_t>{9}));
}

TEST(SimDisk, IoInFlightAtACrashIsDecidedInIoOrderWhateverTheSubmissionOrder) {
  // The PRNG draws follow IoId order, so the same seed keeps the same writes.
  SimDisk first(volume_bytes);
  SimDisk second(volume_bytes);
  for (std::uint64_t io = 1; io <= 8; ++io) {
    first.submit_write(IoId{io}, block(io), block_size_bytes, io, false);
    second.submit_write(IoId{9 - io}, block(9 - io), block_size_bytes, 9 - io, false);
  }
  Prng first_prng(5);
  Prng second_prng(5);
  (void)first.crash(first_prng);
  (void)second.crash(second_prng);
  for (std::uint64_t index = 0; index < 10; ++index) {
    EXPECT_EQ(first.durable_tag_at(index), second.durable_tag_at(index)) << index;
  }
}

}  // namespace
}  // namespace ditto::sim
