// MetadataStore (DRBD v09 metadata on a backing file) and the attach / clean-shutdown rules.
// Files are written with core's codec, the same bytes drbdmeta writes (drbdmeta_interop_test).
#include "datapath/metadata_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace ditto::datapath {
namespace {

namespace md = ditto::metadata;

constexpr std::uint64_t mib = 1024 * 1024;

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes(std::filesystem::file_size(path));
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

void write_bytes(const std::string& path, std::uint64_t offset,
                 std::span<const std::uint8_t> bytes) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(offset));
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

class MetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::path("/var/tmp") /
                 ("ditto-metadata-store-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(directory_);
    path_ = (directory_ / "disk.img").string();
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  // A file of `size_bytes` with what create-md writes: initialized AL, zero bitmap, superblock.
  md::Superblock create(std::uint64_t size_bytes, std::uint32_t max_peers) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc).close();
    std::filesystem::resize_file(path_, size_bytes);
    const md::Superblock superblock = md::initial_superblock(size_bytes, max_peers).value();
    const md::Layout layout = md::check_superblock_layout(superblock, size_bytes).value();
    const auto al_block = md::encode_al_transaction(md::initialized_al_transaction());
    for (std::uint32_t block = 0; block < 8; ++block) {
      write_bytes(path_, layout.al_offset_bytes + block * md::block_size_bytes, al_block);
    }
    write_bytes(path_, layout.md_offset_bytes, md::encode_superblock(superblock));
    return superblock;
  }
  std::string open_error() {
    auto store = MetadataStore::open(path_);
    EXPECT_FALSE(store.ok());
    return store.ok() ? std::string() : store.error().message;
  }

  std::filesystem::path directory_;
  std::string path_;
};

TEST(BackingBytesForData, GivesADeviceWhoseDataAreaIsExactlyTheRequestedSize) {
  for (std::uint64_t data : {1 * mib, 2 * mib + 4096, 16 * mib, 48 * mib, 1000 * mib, 4096 * mib}) {
    for (std::uint32_t peers : {1u, 2u, 3u, 7u, 31u}) {
      md::LayoutOptions options;
      options.max_peers = peers;
      const auto device = backing_bytes_for_data(data, options);
      ASSERT_TRUE(device.ok()) << device.error().message;
      const auto layout = md::internal_layout(device.value(), options);
      ASSERT_TRUE(layout.ok());
      EXPECT_EQ(layout.value().usable_sectors * 512, data) << data << " bytes, " << peers;
      // The smallest such device: 4 KiB less holds less data.
      const auto smaller = md::internal_layout(device.value() - 4096, options);
      if (smaller.ok()) {
        EXPECT_LT(smaller.value().usable_sectors * 512, data);
      }
    }
  }
  EXPECT_FALSE(backing_bytes_for_data(4095, {}).ok());
  // The smallest device drbdmeta takes (68 KiB) already holds 28 KiB of data.
  EXPECT_FALSE(backing_bytes_for_data(4096, {}).ok());
  EXPECT_TRUE(backing_bytes_for_data(28 * 1024, {}).ok());
  EXPECT_FALSE(backing_bytes_for_data(0, {}).ok());
}

TEST_F(MetadataStoreTest, OpensCreatedMetadataAndExportsOnlyTheDataArea) {
  create(64 * mib, 3);
  auto store = MetadataStore::open(path_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  // drbd9-semantics.md §12.3: 64 MiB, max-peers 3 → 130984 usable sectors.
  EXPECT_EQ(store.value()->data_size_bytes(), 130984ull * 512);
  EXPECT_EQ(store.value()->layout().bm_offset_bytes, 67063808u);
  EXPECT_EQ(store.value()->superblock().max_peers, 3u);
  EXPECT_EQ(store.value()->superblock().node_id, -1);
}

TEST_F(MetadataStoreTest, AFileWithoutMetadataIsRefusedNamingTheMagicAndItsOffset) {
  std::ofstream(path_).close();
  std::filesystem::resize_file(path_, 16 * mib);
  const std::string error = open_error();
  EXPECT_EQ(error, path_ + ": no DRBD v09 metadata (magic 0x0 at byte offset " +
                       std::to_string(16 * mib - 4096 + 0x3c) +
                       ", expected 0x8374026d); create it with `dittoadm create-md " + path_ +
                       " --max-peers N` (N: the resource's peer count)");
}

TEST_F(MetadataStoreTest, DamagedFieldsAreRefusedByNameAndTheFileIsNotChanged) {
  const std::uint64_t md_offset = 16 * mib - 4096;
  struct Damage {
    std::uint64_t offset;  // inside the superblock
    std::vector<std::uint8_t> bytes;
    std::string expected;
  };
  const Damage damages[] = {
      {0x3c, {0x83, 0x74, 0x02, 0x6c}, "no DRBD v09 metadata (magic 0x8374026c"},
      {0x00, {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00}, "superblock field la-size-sect"},
      {0x40, {0x00, 0x00, 0x01, 0x00}, "md_size_sect"},
      {0x58, {0x00, 0x00, 0x00, 0x40}, "max-peers 64"},
      {0x50, {0x00, 0x00, 0x10, 0x01}, "bm-byte-per-bit 4097"},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.expected);
    create(16 * mib, 1);
    write_bytes(path_, md_offset + damage.offset, damage.bytes);
    const std::vector<char> before = file_bytes(path_);
    const std::string error = open_error();
    EXPECT_EQ(error.rfind(path_ + ": ", 0), 0u) << error;
    EXPECT_NE(error.find(damage.expected), std::string::npos) << error;
    EXPECT_TRUE(file_bytes(path_) == before) << "opening changed the file";
  }
}

TEST_F(MetadataStoreTest, ATooSmallFileIsRefused) {
  std::ofstream(path_).close();
  std::filesystem::resize_file(path_, 64 * 1024);
  EXPECT_NE(open_error().find("too small to hold DRBD internal metadata"), std::string::npos);
}

TEST_F(MetadataStoreTest, AWrittenSuperblockReadsBackAndTouchesNothingElse) {
  create(16 * mib, 2);
  const std::vector<char> before = file_bytes(path_);
  {
    auto store = MetadataStore::open(path_);
    ASSERT_TRUE(store.ok());
    md::Superblock changed = store.value()->superblock();
    changed.current_uuid = 0x1234567890abcdefull;
    changed.node_id = 1;
    changed.history_uuids[0] = 42;
    changed.peers[0].bitmap_index = 1;
    ASSERT_TRUE(store.value()->write_superblock(changed).ok());
    EXPECT_EQ(store.value()->superblock(), changed);
  }
  auto reopened = MetadataStore::open(path_);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened.value()->superblock().current_uuid, 0x1234567890abcdefull);
  EXPECT_EQ(reopened.value()->superblock().history_uuids[0], 42u);
  const std::vector<char> after = file_bytes(path_);
  ASSERT_EQ(after.size(), before.size());
  const std::size_t md_offset = 16 * mib - 4096;
  EXPECT_TRUE(std::equal(before.begin(), before.begin() + md_offset, after.begin()));
}

TEST_F(MetadataStoreTest, BitmapSlotsAreInterleavedAndWritingOneKeepsTheOthers) {
  create(64 * mib, 3);
  auto store = MetadataStore::open(path_);
  ASSERT_TRUE(store.ok());
  MetadataStore& metadata = *store.value();
  // 130984 sectors / 8 per bit = 16373 bits = 512 words.
  ASSERT_EQ(metadata.bitmap_words_per_slot(), 512u);
  std::vector<std::uint32_t> first(512, 0);
  first[0] = 0xffffffff;
  first[511] = 0x1;
  std::vector<std::uint32_t> third(512, 0);
  third[1] = 0x80000000;
  ASSERT_TRUE(metadata.write_bitmap_slot(0, first).ok());
  ASSERT_TRUE(metadata.write_bitmap_slot(2, third).ok());
  EXPECT_EQ(metadata.read_bitmap_slot(0).value(), first);
  EXPECT_EQ(metadata.read_bitmap_slot(1).value(), std::vector<std::uint32_t>(512, 0));
  EXPECT_EQ(metadata.read_bitmap_slot(2).value(), third);
  // §12.3: word w of slot s at 32-bit index w * max_peers + s, little endian.
  const std::vector<char> bytes = file_bytes(path_);
  const std::size_t bm = metadata.layout().bm_offset_bytes;
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[bm + 0]), 0xff);
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[bm + (1 * 3 + 2) * 4 + 3]), 0x80);
}

// drbdmeta's dump-md of `path`: its exit status, or -1 without drbdmeta.
int drbdmeta_dump_status(const std::string& path) {
  if (std::system("command -v drbdmeta >/dev/null 2>&1") != 0) return -1;
  const int status =
      std::system(("drbdmeta --force 0 v09 " + path + " internal dump-md >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// dittoadm resize's first step: the metadata moves to the end of the grown file, keeping every
// bitmap word, the activity log and the superblock's fields; drbdmeta reads the result.
TEST_F(MetadataStoreTest, AfterTheFileGrowsTheMetadataMovesToItsNewEndIntact) {
  create(16 * mib, 2);
  auto store = MetadataStore::open(path_);
  ASSERT_TRUE(store.ok());
  MetadataStore& metadata = *store.value();
  const std::uint64_t old_data = metadata.data_size_bytes();
  std::vector<std::uint32_t> words(metadata.bitmap_words_per_slot(), 0);
  words.front() = 0xdeadbeef;
  words.back() = 0x1;
  ASSERT_TRUE(metadata.write_bitmap_slot(1, words).ok());
  md::Superblock before = metadata.superblock();
  before.current_uuid = 0x1234'5678'9abc'def0;
  before.effective_size_sectors = old_data / 512;
  ASSERT_TRUE(metadata.write_superblock(before).ok());
  const auto log_before = metadata.read_activity_log().value();

  std::filesystem::resize_file(path_, 32 * mib);
  // drbdmeta finds no metadata at the new end yet (the test would pass without the move).
  if (drbdmeta_dump_status(path_) >= 0) {
    EXPECT_NE(drbdmeta_dump_status(path_), 0);
  }
  const auto moved = metadata.move_to_device_end();
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_GT(moved.value(), old_data + 15 * mib);
  EXPECT_EQ(metadata.data_size_bytes(), moved.value());
  EXPECT_EQ(metadata.layout().device_bytes, 32 * mib);

  auto reopened = MetadataStore::open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message;
  MetadataStore& grown = *reopened.value();
  EXPECT_EQ(grown.data_size_bytes(), moved.value());
  EXPECT_EQ(grown.superblock().current_uuid, before.current_uuid);
  EXPECT_EQ(grown.superblock().effective_size_sectors, old_data / 512);  // agreed later
  EXPECT_EQ(grown.superblock().peers, before.peers);
  std::vector<std::uint32_t> expected = words;
  expected.resize(grown.bitmap_words_per_slot(), 0);  // the new area: in sync, zero
  EXPECT_EQ(grown.read_bitmap_slot(1).value(), expected);
  EXPECT_EQ(grown.read_bitmap_slot(0).value(),
            std::vector<std::uint32_t>(grown.bitmap_words_per_slot(), 0));
  EXPECT_EQ(grown.read_activity_log().value().size(), log_before.size());
  const int dump = drbdmeta_dump_status(path_);
  if (dump < 0) GTEST_SKIP() << "drbdmeta (drbd-utils) is not installed";
  EXPECT_EQ(dump, 0);
}

TEST_F(MetadataStoreTest, MovingTheMetadataIsRefusedWithoutEnoughGrowthAndWritesNothing) {
  create(16 * mib, 2);
  auto store = MetadataStore::open(path_);
  ASSERT_TRUE(store.ok());
  MetadataStore& metadata = *store.value();
  const std::vector<char> unchanged = file_bytes(path_);
  const auto same = metadata.move_to_device_end();
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.error().message.find("shrinking is not supported"), std::string::npos);
  std::filesystem::resize_file(path_, 16 * mib + 4096);  // less than the metadata area
  const auto small = metadata.move_to_device_end();
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().message.find("enlarge it by more than its metadata area"),
            std::string::npos)
      << small.error().message;
  std::vector<char> now = file_bytes(path_);
  now.resize(unchanged.size());
  EXPECT_EQ(now, unchanged);
  EXPECT_EQ(metadata.layout().device_bytes, 16 * mib);
}

TEST_F(MetadataStoreTest, TheActivityLogReadsBackAndReinitializes) {
  create(64 * mib, 1);
  auto store = MetadataStore::open(path_);
  ASSERT_TRUE(store.ok());
  auto log = store.value()->read_activity_log();
  ASSERT_TRUE(log.ok());
  ASSERT_EQ(log.value().size(), 8u);
  EXPECT_EQ(log.value()[0].transaction_type, md::al_type_initialized);
  // A zeroed ring decodes to nothing (no magic), and initializing restores every block.
  const std::vector<std::uint8_t> zeros(32 * 1024, 0);
  write_bytes(path_, store.value()->layout().al_offset_bytes, zeros);
  EXPECT_TRUE(store.value()->read_activity_log().value().empty());
  ASSERT_TRUE(store.value()->initialize_activity_log().ok());
  EXPECT_EQ(store.value()->read_activity_log().value().size(), 8u);
}

// ---- Attach and clean-shutdown rules ----------------------------------------------------------

struct AttachFixture {
  md::Superblock superblock = md::initial_superblock(64 * mib, 2).value();
  md::Layout layout = md::check_superblock_layout(superblock, 64 * mib).value();
  std::vector<md::AlTransaction> activity_log{8, md::initialized_al_transaction()};
  std::vector<NodeId> peers{NodeId{0}, NodeId{2}};

  Result<AttachPlan> plan(NodeId self = NodeId{1}) const {
    return plan_attach(superblock, layout, activity_log, self, peers);
  }
};

std::string plan_error(const AttachFixture& fixture) {
  auto plan = fixture.plan();
  return plan.ok() ? std::string("(attached)") : plan.error().message;
}

TEST(PlanAttach, MarksTheMetadataInUseRecordsNodeIdSizeAndGivesEveryPeerASlot) {
  const AttachFixture fixture;
  auto plan = fixture.plan();
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const md::Superblock& written = plan.value().superblock;
  EXPECT_EQ(written.flags & md::md_flag::al_clean, 0u);
  EXPECT_EQ(written.node_id, 1);
  EXPECT_EQ(written.effective_size_sectors, fixture.layout.usable_sectors);
  EXPECT_EQ(written.peers[0].bitmap_index, 0);
  EXPECT_EQ(written.peers[2].bitmap_index, 1);
  EXPECT_EQ(written.peers[0].flags, md::peer_flag::node_exists);
  EXPECT_EQ(written.peers[1].bitmap_index, -1);
  EXPECT_FALSE(plan.value().initialize_activity_log);
  EXPECT_TRUE(plan.value().note.empty());
  // A second attach keeps the slots it gave.
  AttachFixture again = fixture;
  again.superblock = written;
  again.superblock.flags |= md::md_flag::al_clean;
  EXPECT_EQ(again.plan().value().superblock.peers, written.peers);
}

TEST(PlanAttach, MetadataOfAnotherNodeIsRefused) {
  AttachFixture fixture;
  fixture.superblock.node_id = 2;
  EXPECT_EQ(plan_error(fixture),
            "superblock field node-id 2 does not match this node's node-id 1 (the disk was "
            "attached by another node)");
}

TEST(PlanAttach, ABitmapSlotOnTheNodesOwnEntryOrSharedByTwoNodesIsRefused) {
  AttachFixture own;
  own.superblock.peers[1].bitmap_index = 0;
  EXPECT_NE(plan_error(own).find("superblock field peer[1] bitmap-index 0 gives this node"),
            std::string::npos);
  AttachFixture shared;
  shared.superblock.peers[0].bitmap_index = 1;
  shared.superblock.peers[2].bitmap_index = 1;
  EXPECT_NE(plan_error(shared).find("peer[2] bitmap-index 1 is also the slot of peer[0]"),
            std::string::npos);
}

TEST(PlanAttach, TooFewBitmapSlotsForTheConfiguredPeersIsRefused) {
  AttachFixture fixture;
  fixture.superblock = md::initial_superblock(64 * mib, 1).value();
  fixture.layout = md::check_superblock_layout(fixture.superblock, 64 * mib).value();
  EXPECT_EQ(plan_error(fixture),
            "superblock field max-peers 1 leaves no free bitmap slot for peer node-id 2 (the "
            "resource has 2 peers; create the metadata with --max-peers 2 or more)");
}

TEST(PlanAttach, UncleanMetadataWithNothingToApplyIsAttachedAndItsLogReset) {
  AttachFixture fixture;
  fixture.superblock.flags = md::md_flag::consistent;  // AL_CLEAN clear: not shut down cleanly
  auto plan = fixture.plan();
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan.value().initialize_activity_log);
  EXPECT_FALSE(plan.value().note.empty());
  // PRIMARY_IND without hot extents: apply-al would mark nothing either.
  fixture.superblock.flags |= md::md_flag::primary_ind;
  EXPECT_TRUE(fixture.plan().ok());
}

TEST(PlanAttach, AnUncleanPrimaryWithHotExtentsHasItsLogAppliedByTheCoreAndKeepsTheRing) {
  AttachFixture fixture;
  fixture.superblock.flags = md::md_flag::primary_ind | md::md_flag::crashed_primary;
  fixture.superblock.current_uuid = 0x1235;  // the Primary bit: this node was the Primary
  md::AlTransaction update;
  update.tr_number = 41;
  update.context.fill(md::al_free_extent);
  update.update_slots.fill(md::al_free_slot);
  update.update_extents.fill(md::al_free_extent);
  update.n_updates = 2;
  update.update_slots[0] = 0;
  update.update_slots[1] = 1;
  update.update_extents[0] = 3;
  update.update_extents[1] = 7;
  fixture.activity_log[0] = update;
  auto plan = fixture.plan();
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan.value().hot_extents, (std::vector<std::uint32_t>{3, 7}));
  EXPECT_EQ(plan.value().al_next_transaction, 42u);
  EXPECT_FALSE(plan.value().initialize_activity_log);  // the core writes the pages first
  EXPECT_NE(plan.value().note.find("apply-al: 2 extents"), std::string::npos)
      << plan.value().note;
  // A crash as Primary: the on-disk bitmaps plus the log are complete for both peers.
  EXPECT_EQ(plan.value().trusted_bitmaps, (1u << 0) | (1u << 2));
  // Left in use by a Secondary: nothing trusted (the core marks every block out of sync).
  fixture.superblock.current_uuid = 0x1234;
  fixture.superblock.flags = md::md_flag::primary_ind;
  EXPECT_EQ(fixture.plan().value().trusted_bitmaps, 0u);
}

TEST(CleanShutdownSuperblock, SetsAlCleanAndDerivesTheDiskAndPrimaryFlags) {
  md::Superblock attached = md::initial_superblock(64 * mib, 1).value();
  attached.flags = md::md_flag::primary_ind | md::md_flag::crashed_primary;
  attached.current_uuid = 99;
  const md::Superblock up = clean_shutdown_superblock(attached, {DiskState::up_to_date, false});
  EXPECT_EQ(up.flags, md::md_flag::al_clean | md::md_flag::consistent |
                          md::md_flag::was_up_to_date | md::md_flag::crashed_primary);
  EXPECT_EQ(up.current_uuid, 99u);
  const md::Superblock outdated = clean_shutdown_superblock(attached, {DiskState::outdated, true});
  EXPECT_EQ(outdated.flags, md::md_flag::al_clean | md::md_flag::consistent |
                                md::md_flag::primary_ind | md::md_flag::crashed_primary);
  const md::Superblock inconsistent =
      clean_shutdown_superblock(attached, {DiskState::inconsistent, false});
  EXPECT_EQ(inconsistent.flags, md::md_flag::al_clean | md::md_flag::crashed_primary);
}

// ---- Generations and the disk state at attach -------------------------------------------------

TEST(SuperblockGenerations, CurrentBitmapUuidsPerNodeAndHistoryRoundTrip) {
  md::Superblock superblock = md::initial_superblock(64 * mib, 2).value();
  Generations generations;
  generations.current = 0x1234567890ABCDEFull;
  generations.bitmap[2] = 0x2222;
  generations.bitmap[31] = 0x3131;
  generations.history[0] = 0xAAAA;
  generations.history[31] = 0xBBBB;
  const md::Superblock written = with_generations(superblock, generations);
  EXPECT_EQ(written.current_uuid, generations.current);
  EXPECT_EQ(written.peers[2].bitmap_uuid, 0x2222u);
  EXPECT_EQ(written.history_uuids[31], 0xBBBBu);
  EXPECT_EQ(generations_of(written), generations);
  EXPECT_EQ(unconfirmed_of(written), UnconfirmedGeneration{});
  // Nothing else changes.
  md::Superblock other = written;
  other = with_generations(other, generations_of(superblock));
  EXPECT_EQ(other, superblock);
  // The record of an unconfirmed generation goes with them, and is cleared without one.
  const UnconfirmedGeneration record{0x1234567890ABCDEEull, 0x5555, 1u << 2 | 1u << 31};
  const md::Superblock recorded = with_generations(superblock, generations, record);
  EXPECT_EQ(unconfirmed_of(recorded), record);
  EXPECT_EQ(generations_of(recorded), generations);
  EXPECT_EQ(with_generations(recorded, generations), written);
}

struct StartCase {
  std::uint32_t flags;
  DiskState expected;
};

TEST(AttachDiskState, FollowsTheFlagsAndDistrustsWhatACrashOrAnUnwrittenBitmapLost) {
  md::Superblock attached = md::initial_superblock(64 * mib, 2).value();
  attached.node_id = 1;
  attached.current_uuid = 0x5000;
  using namespace md::md_flag;
  const std::vector<StartCase> cases = {
      {al_clean, DiskState::inconsistent},
      {al_clean | consistent, DiskState::outdated},
      {al_clean | consistent | was_up_to_date, DiskState::up_to_date},
      {consistent | was_up_to_date, DiskState::outdated},  // killed: bitmaps and AL not kept
      {consistent, DiskState::outdated},
      {0, DiskState::inconsistent},
  };
  for (const StartCase& each : cases) {
    attached.flags = each.flags;
    std::string reason;
    EXPECT_EQ(attach_disk_state(attached, true, reason), each.expected) << "flags " << each.flags;
    EXPECT_FALSE(reason.empty());
  }
  attached.flags = al_clean | consistent | was_up_to_date;
  attached.peers[2].flags |= md::peer_flag::full_sync;
  std::string reason;
  EXPECT_EQ(attach_disk_state(attached, true, reason), DiskState::outdated) << reason;
  attached.peers[2].bitmap_uuid = 0x4000;  // a full sync toward node 2 instead (plan_attach)
  EXPECT_EQ(attach_disk_state(attached, true, reason), DiskState::up_to_date) << reason;
  // Without peers nothing can be out of sync: a crash keeps the disk UpToDate.
  attached.flags = consistent | was_up_to_date;
  EXPECT_EQ(attach_disk_state(attached, false, reason), DiskState::up_to_date) << reason;
}

TEST(AttachDiskState, FreshCreateMdMetadataStartsUpToDateButAnAttachedJustCreatedDiskDoesNot) {
  md::Superblock fresh = md::initial_superblock(64 * mib, 2).value();
  std::string reason;
  EXPECT_EQ(attach_disk_state(fresh, true, reason), DiskState::up_to_date) << reason;
  md::Superblock attached = fresh;
  attached.node_id = 1;  // dittod ran on it: the flags it wrote decide
  EXPECT_EQ(attach_disk_state(attached, true, reason), DiskState::inconsistent) << reason;
  md::Superblock with_history = fresh;
  with_history.history_uuids[0] = 0x77;
  EXPECT_EQ(attach_disk_state(with_history, true, reason), DiskState::inconsistent) << reason;
}

TEST(PlanAttach, AKilledPrimarysMetadataSetsCrashedPrimaryAndThePlanCarriesItsGenerations) {
  AttachFixture fixture;
  fixture.superblock.node_id = 1;
  fixture.superblock.flags = md::md_flag::consistent | md::md_flag::was_up_to_date |
                             md::md_flag::primary_ind;  // AL_CLEAN clear
  fixture.superblock.current_uuid = 0xC0FFEE1;  // the Primary bit: this node was the Primary
  fixture.superblock.peers[2].flags |= md::peer_flag::full_sync;
  auto plan = fixture.plan();
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan.value().crashed_primary);
  EXPECT_NE(plan.value().superblock.flags & md::md_flag::crashed_primary, 0u);
  EXPECT_EQ(plan.value().superblock.peers[2].flags & md::peer_flag::full_sync, 0u);
  EXPECT_EQ(plan.value().initial_disk, DiskState::outdated);
  EXPECT_EQ(plan.value().initial_generations.current, 0xC0FFEE1u);
  EXPECT_EQ(plan.value().initial_disk, DiskState::outdated);
  EXPECT_EQ(plan.value().initial_unconfirmed, UnconfirmedGeneration{});
  // The record of a generation no client saw a completion in reaches the core, which rolls
  // it back (core Restart tests).
  fixture.superblock.unconfirmed_current = 0xC0FFEE0;
  fixture.superblock.unconfirmed_previous = 0xBEEF1;
  fixture.superblock.unconfirmed_rotated_nodes = 1u << 2;
  const UnconfirmedGeneration record{0xC0FFEE0, 0xBEEF1, 1u << 2};
  EXPECT_EQ(fixture.plan().value().initial_unconfirmed, record);
  fixture.superblock.unconfirmed_current = 0;
  fixture.superblock.unconfirmed_previous = 0;
  fixture.superblock.unconfirmed_rotated_nodes = 0;
  // A clean Secondary's metadata is no crash, and neither is a killed Secondary's whose peer
  // was the Primary (PRIMARY_IND without the Primary bit of its own current UUID).
  fixture.superblock.flags = md::md_flag::al_clean | md::md_flag::consistent;
  EXPECT_FALSE(fixture.plan().value().crashed_primary);
  fixture.superblock.flags = md::md_flag::consistent | md::md_flag::primary_ind;
  fixture.superblock.current_uuid = 0xC0FFEE0;
  EXPECT_FALSE(fixture.plan().value().crashed_primary);
}

TEST(PlanAttach, AnUnwrittenBitmapWithABitmapUuidBecomesAFullSyncThroughTheHistory) {
  AttachFixture fixture;
  fixture.superblock.node_id = 1;
  fixture.superblock.flags =
      md::md_flag::al_clean | md::md_flag::consistent | md::md_flag::was_up_to_date;
  fixture.superblock.current_uuid = 0x9000;
  fixture.superblock.history_uuids[0] = 0x1000;
  fixture.superblock.peers[2].bitmap_uuid = 0x5000;  // node 2 stayed at generation 0x5000
  fixture.superblock.peers[2].flags |= md::peer_flag::full_sync;
  auto plan = fixture.plan();
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan.value().initial_disk, DiskState::up_to_date) << plan.value().disk_reason;
  const Generations& generations = plan.value().initial_generations;
  EXPECT_EQ(generations.bitmap[2], 0u);
  EXPECT_EQ(generations.history[0], 0x5000u);
  EXPECT_EQ(generations.history[1], 0x1000u);
  EXPECT_EQ(generations_of(plan.value().superblock), generations) << "written as started";
  EXPECT_EQ(plan.value().superblock.peers[2].flags & md::peer_flag::full_sync, 0u);
}

TEST(SuperblockForState, WritesTheDerivedFlagsAndFullSyncForUnwrittenBitmaps) {
  md::Superblock attached = md::initial_superblock(64 * mib, 2).value();
  attached.flags = md::md_flag::al_clean | md::md_flag::primary_ind;
  MetadataState state;
  state.disk = DiskState::inconsistent;  // a SyncTarget
  state.primary_known = true;
  md::Superblock running = superblock_for_state(attached, state);
  EXPECT_EQ(running.flags, md::md_flag::primary_ind);
  state.disk = DiskState::up_to_date;
  state.crashed_primary = true;
  state.clean = true;
  state.full_sync_peers = 1u << 2;
  running = superblock_for_state(attached, state);
  EXPECT_EQ(running.flags, md::md_flag::al_clean | md::md_flag::consistent |
                               md::md_flag::was_up_to_date | md::md_flag::primary_ind |
                               md::md_flag::crashed_primary);
  EXPECT_NE(running.peers[2].flags & md::peer_flag::full_sync, 0u);
  EXPECT_EQ(running.peers[0].flags & md::peer_flag::full_sync, 0u);
}

}  // namespace
}  // namespace ditto::datapath
