// DRBD v09 metadata codec: layouts and bytes as drbdmeta 9.22 produces them
// (drbd9-semantics.md §12.3), and rejection of damaged superblocks and AL blocks.
#include "core/metadata.h"

#include <gtest/gtest.h>

#include <string>

namespace ditto::metadata {
namespace {

constexpr std::uint64_t mib = 1024 * 1024;

std::uint32_t be32_at(std::span<const std::uint8_t> bytes, std::size_t offset) {
  return std::uint32_t{bytes[offset]} << 24 | std::uint32_t{bytes[offset + 1]} << 16 |
         std::uint32_t{bytes[offset + 2]} << 8 | bytes[offset + 3];
}

void put_be32(std::span<std::uint8_t> bytes, std::size_t offset, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    bytes[offset + i] = static_cast<std::uint8_t>(value >> (24 - 8 * i));
  }
}

struct LayoutCase {
  std::uint64_t device_bytes;
  LayoutOptions options;
  std::uint32_t md_size_sectors;
  std::uint64_t md_offset, al_offset, bm_offset;
  std::uint64_t usable_sectors;  // 0: not in the table
};

TEST(MetadataLayout, MatchesEveryLayoutDrbdmetaWasSeenToWrite) {
  const LayoutCase cases[] = {
      {64 * mib, {1}, 80, 67104768, 67072000, 67067904, 130992},
      {64 * mib, {3}, 88, 67104768, 67072000, 67063808, 130984},
      {1024 * mib, {1}, 136, 1073737728, 1073704960, 1073672192, 2097016},
      {1024 * mib, {3}, 264, 1073737728, 1073704960, 1073606656, 2096888},
      {100 * mib + 1234, {2}, 88, 104853504, 104820736, 104812544, 0},
      {256 * mib, {1, 2, 16}, 280, 268431360, 268300288, 268292096, 0},
      // 32769 bits: rounding up to 64-bit words pushes the bitmap into a second 4 KiB block.
      {128 * mib + 4096, {1}, 88, 134217728, 134184960, 134176768, 0},
  };
  for (const LayoutCase& expected : cases) {
    SCOPED_TRACE(expected.device_bytes);
    Result<Layout> layout = internal_layout(expected.device_bytes, expected.options);
    ASSERT_TRUE(layout.ok()) << layout.error().message;
    EXPECT_EQ(layout.value().md_size_sectors, expected.md_size_sectors);
    EXPECT_EQ(layout.value().md_offset_bytes, expected.md_offset);
    EXPECT_EQ(layout.value().al_offset_bytes, expected.al_offset);
    EXPECT_EQ(layout.value().bm_offset_bytes, expected.bm_offset);
    if (expected.usable_sectors != 0) {
      EXPECT_EQ(layout.value().usable_sectors, expected.usable_sectors);
    }
  }
}

TEST(MetadataLayout, BitmapBytesFor64MiBWithThreePeersIs8KiB) {
  EXPECT_EQ(bitmap_area_bytes(64 * mib / 512, 3, 4096), 8192u);
  EXPECT_EQ(bitmap_area_bytes(1024 * mib / 512, 3, 4096), 98304u);
}

TEST(MetadataLayout, RejectsADeviceTooSmallForMetadata) {
  Result<Layout> layout = internal_layout(4096 * 10, LayoutOptions{1});
  ASSERT_FALSE(layout.ok());
  EXPECT_NE(layout.error().message.find("too small"), std::string::npos);
}

TEST(MetadataSuperblock, CreateMdFieldsMatchTheBytesDrbdmetaWrites) {
  Result<Superblock> superblock = initial_superblock(64 * mib, 1);
  ASSERT_TRUE(superblock.ok());
  const auto block = encode_superblock(superblock.value());
  // §12.3: 64 MiB, max-peers 1, words from offset 0x38.
  const std::uint32_t expected[] = {0x00000080, 0x8374026D, 0x00000050, 0xFFFFFFC0,
                                    0x00000101, 0xFFFFFFB8, 0x00001000, 0x00000000,
                                    0x00000001, 0xFFFFFFFF, 0x00000001, 0x00000008};
  for (std::size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_EQ(be32_at(block, 0x38 + 4 * i), expected[i]) << "word " << i;
  }
  EXPECT_EQ(be32_at(block, 0x0c), 4u);  // current UUID 4 (low half)
  for (std::size_t node = 0; node < peer_slot_count; ++node) {
    EXPECT_EQ(be32_at(block, 0x70 + 32 * node + 0x14), 0xFFFFFFFFu) << "peer " << node;
  }
  for (std::size_t offset = 0x570; offset < block.size(); ++offset) ASSERT_EQ(block[offset], 0);
}

TEST(MetadataSuperblock, EncodeThenDecodeGivesBackEveryField) {
  Superblock superblock = initial_superblock(1024 * mib, 7, 2).value();
  superblock.effective_size_sectors = 123456;
  superblock.current_uuid = 0xABCDEF0123456789;
  superblock.members = 0x5;
  superblock.unconfirmed_current = 0x4444444444444444;
  superblock.unconfirmed_previous = 0x5555555555555555;
  superblock.unconfirmed_rotated_nodes = 0x12;
  superblock.device_uuid = 0x1122334455667788;
  superblock.flags = md_flag::consistent | md_flag::was_up_to_date | md_flag::al_clean;
  superblock.la_peer_max_bio_size = 1 << 20;
  superblock.peers[3] = PeerSlot{0x1111111111111110, 0x42, peer_flag::connected, 6};
  superblock.history_uuids[0] = 0x2222222222222222;
  superblock.history_uuids[31] = 0x3333333333333333;
  Result<Superblock> decoded = decode_superblock(encode_superblock(superblock));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), superblock);
}

// Decodes a copy of a valid superblock after `damage`, expecting an error that contains `text`.
template <typename Damage>
void expect_rejected(Damage damage, const std::string& text) {
  auto block = encode_superblock(initial_superblock(64 * mib, 3).value());
  damage(std::span<std::uint8_t>{block});
  Result<Superblock> decoded = decode_superblock(block);
  ASSERT_FALSE(decoded.ok()) << "expected rejection: " << text;
  EXPECT_NE(decoded.error().message.find(text), std::string::npos) << decoded.error().message;
}

TEST(MetadataSuperblock, WrongMagicIsRejectedNamingTheValue) {
  expect_rejected([](auto b) { put_be32(b, 0x3c, 0x1234); },
                  "superblock: magic 0x00001234 is not DRBD v09 (0x8374026d)");
}

TEST(MetadataSuperblock, ImpossibleFieldsAreRejectedNamingTheField) {
  expect_rejected([](auto b) { put_be32(b, 0x58, 0); }, "max-peers 0 out of range 1..32");
  expect_rejected([](auto b) { put_be32(b, 0x58, 33); }, "max-peers 33");
  expect_rejected([](auto b) { put_be32(b, 0x5c, 40); }, "node-id 40 out of range");
  expect_rejected([](auto b) { put_be32(b, 0x50, 1000); }, "bm-byte-per-bit 1000");
  expect_rejected([](auto b) { put_be32(b, 0x44, 0xFFFFFFC8); }, "al_offset -56");
  expect_rejected([](auto b) { put_be32(b, 0x4c, 0xFFFFFF00); }, "bm_offset -256");
  expect_rejected([](auto b) { put_be32(b, 0x64, 0); }, "al-stripe-size-4k 0");
  expect_rejected([](auto b) { put_be32(b, 0x70 + 32 * 5 + 0x14, 3); },
                  "peer[5] bitmap-index 3 out of range -1..2");
}

TEST(MetadataSuperblock, ShortInputIsRejected) {
  const std::array<std::uint8_t, 100> bytes{};
  Result<Superblock> decoded = decode_superblock(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().message, "superblock: need 4096 bytes, got 100");
}

TEST(MetadataSuperblock, LayoutCheckRejectsASuperblockFromADifferentlySizedDevice) {
  const Superblock superblock = initial_superblock(64 * mib, 3).value();
  EXPECT_TRUE(check_superblock_layout(superblock, 64 * mib).ok());
  Result<Layout> moved = check_superblock_layout(superblock, 1024 * mib);
  ASSERT_FALSE(moved.ok());
  EXPECT_NE(moved.error().message.find("md_size_sect 88 does not fit"), std::string::npos)
      << moved.error().message;
}

TEST(MetadataSuperblock, CreateRefusesMorePeersThanDrbdmeta) {
  EXPECT_FALSE(initial_superblock(64 * mib, 32).ok());
  EXPECT_FALSE(initial_superblock(64 * mib, 0).ok());
  EXPECT_TRUE(initial_superblock(64 * mib, 31).ok());
}

TEST(MetadataActivityLog, InitializedBlockHasDrbdmetasBytesAndChecksum) {
  const auto block = encode_al_transaction(initialized_al_transaction());
  EXPECT_EQ(be32_at(block, 0), 0x69CB65A2u);
  EXPECT_EQ(be32_at(block, 4), 0u);
  EXPECT_EQ(be32_at(block, 8), 0x709CC651u);
  EXPECT_EQ(be32_at(block, 12), 0xFFFF0000u);
  for (std::size_t offset = 16; offset < block.size(); ++offset) ASSERT_EQ(block[offset], 0);
}

TEST(MetadataActivityLog, TransactionRoundTripsAndACorruptByteFailsTheChecksum) {
  AlTransaction transaction;
  transaction.tr_number = 77;
  transaction.n_updates = 2;
  transaction.context_size = 1237;
  transaction.context_start_slot = 919;
  transaction.update_slots.fill(al_free_slot);
  transaction.update_extents.fill(al_free_extent);
  transaction.update_slots[0] = 5;
  transaction.update_extents[0] = 1000;
  transaction.update_slots[1] = 6;
  transaction.update_extents[1] = 2000;
  transaction.context.fill(al_free_extent);
  transaction.context[3] = 12;
  auto block = encode_al_transaction(transaction);
  Result<AlTransaction> decoded = decode_al_transaction(block);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), transaction);
  block[2000] ^= 0x10;
  Result<AlTransaction> damaged = decode_al_transaction(block);
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.error().message.find("crc32c"), std::string::npos);
}

TEST(MetadataActivityLog, BlockIndexFollowsTheStripedRing) {
  EXPECT_EQ(al_block_index(0, 1, 8), 0u);
  EXPECT_EQ(al_block_index(9, 1, 8), 1u);
  // Two stripes of 4 blocks: transactions alternate between the stripes.
  EXPECT_EQ(al_block_index(0, 2, 4), 0u);
  EXPECT_EQ(al_block_index(1, 2, 4), 4u);
  EXPECT_EQ(al_block_index(2, 2, 4), 1u);
  EXPECT_EQ(al_block_index(7, 2, 4), 7u);
}

TEST(MetadataBitmap, SlotsInterleaveAsWordsOfThreePeers) {
  // §12.3: slot0 = {0xFFFFFFFFFFFFFFFF}, slot1 = {1}, slot2 = {0x8000000000000000}.
  std::vector<std::uint8_t> area(4096, 0);
  pack_bitmap_slot(std::vector<std::uint32_t>{0xFFFFFFFF, 0xFFFFFFFF}, 3, 0, area);
  pack_bitmap_slot(std::vector<std::uint32_t>{1, 0}, 3, 1, area);
  pack_bitmap_slot(std::vector<std::uint32_t>{0, 0x80000000}, 3, 2, area);
  const std::uint32_t expected_le_words[] = {0xFFFFFFFF, 1, 0, 0xFFFFFFFF, 0, 0x80000000};
  for (std::size_t i = 0; i < std::size(expected_le_words); ++i) {
    const std::uint32_t word = area[4 * i] | area[4 * i + 1] << 8 | area[4 * i + 2] << 16 |
                               static_cast<std::uint32_t>(area[4 * i + 3]) << 24;
    EXPECT_EQ(word, expected_le_words[i]) << "word " << i;
  }
  EXPECT_EQ(unpack_bitmap_slot(area, 3, 2, 2), (std::vector<std::uint32_t>{0, 0x80000000}));
}

TEST(MetadataDump, FreshMetadataDumpsLikeDrbdmeta) {
  const Superblock superblock = initial_superblock(64 * mib, 3).value();
  const Layout layout = check_superblock_layout(superblock, 64 * mib).value();
  ASSERT_EQ(dump_bitmap_bytes(superblock, layout), 0u);
  const std::string text = format_dump_md(superblock, layout, {});
  const std::string expected_start =
      "version \"v09\";\n\nmax-peers 3;\n# md_size_sect 88\n# md_offset 67104768\n"
      "# al_offset 67072000\n# bm_offset 67063808\n\nnode-id -1;\n"
      "current-uuid 0x0000000000000004;\n";
  EXPECT_EQ(text.substr(0, expected_start.size()), expected_start);
  EXPECT_NE(text.find("flags 0x00000080;\npeer[0] {\n    bitmap-index -1;\n"), std::string::npos);
  EXPECT_NE(text.find("bitmap[2] {\n}\n# bits-set 0;\n"), std::string::npos);
}

TEST(MetadataDump, BitmapRunsFoldAndPeerFlagsGetNames) {
  Superblock superblock = initial_superblock(64 * mib, 1).value();
  superblock.effective_size_sectors = 130992;
  superblock.peers[2].flags = peer_flag::connected | peer_flag::node_exists | 0x100;
  const Layout layout = check_superblock_layout(superblock, 64 * mib).value();
  std::vector<std::uint8_t> bitmap(dump_bitmap_bytes(superblock, layout), 0);
  bitmap[0] = 0x01;   // one bit in the first value of line 1
  bitmap[64] = 0x01;  // and of line 3: line 2 is a single identical line, printed, not folded
  const std::string text = format_dump_md(superblock, layout, bitmap);
  EXPECT_NE(text.find("    flags 0x00010101; # connected | 0x100=? | exists\n"), std::string::npos);
  const std::string zeros = "0x0000000000000000; 0x0000000000000000; 0x0000000000000000;";
  EXPECT_NE(text.find("bitmap[0] {\n   # at 0kB\n    0x0000000000000001; " + zeros +
                      "\n    0x0000000000000000; " + zeros + "\n    0x0000000000000001; " + zeros +
                      "\n    "),
            std::string::npos)
      << text.substr(text.find("bitmap[0]"));
  EXPECT_NE(text.find(" times 0x0000000000000000;"), std::string::npos);
  EXPECT_NE(text.find("# bits-set 2;\n"), std::string::npos);
}

}  // namespace
}  // namespace ditto::metadata
