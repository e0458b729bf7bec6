// DRBD v09 on-disk metadata: the "flexible internal" layout, the superblock
// (struct meta_data_on_disk_9), activity-log transactions and the interleaved on-disk bitmap.
// Pure codecs: callers do the I/O. Byte format verified against drbdmeta 9.22
// (drbd9-semantics.md §12). Decoders take untrusted bytes and reject them with a message that
// names the field and the value; they never assert on disk contents.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace ditto::metadata {

inline constexpr std::uint32_t superblock_magic_v09 = 0x8374026d;  // DRBD_MAGIC + 6
inline constexpr std::uint32_t al_magic = 0x69cb65a2;
inline constexpr std::size_t block_size_bytes = 4096;
inline constexpr std::uint32_t sector_bytes = 512;
inline constexpr std::uint32_t peer_slot_count = 32;  // indexed by node id 0..31
inline constexpr std::uint32_t history_uuid_count = 32;
inline constexpr std::uint32_t max_peers_limit = 32;  // kernel limit; drbdmeta creates <= 31
inline constexpr std::uint32_t max_peers_create_limit = 31;
inline constexpr std::uint64_t uuid_just_created = 4;
inline constexpr std::uint32_t default_bytes_per_bit = 4096;
inline constexpr std::uint32_t default_al_stripes = 1;
inline constexpr std::uint32_t default_al_stripe_size_4k = 8;
inline constexpr std::uint32_t drbdmeta_al_extents = 257;  // what drbdmeta create-md writes
// drbdmeta reads the first 68 KiB of a device before creating metadata on it.
inline constexpr std::uint64_t device_bytes_min = 68 * 1024;

// Superblock flags (MDF_*), §12.4.
namespace md_flag {
inline constexpr std::uint32_t consistent = 0x001;
inline constexpr std::uint32_t primary_ind = 0x002;
inline constexpr std::uint32_t was_up_to_date = 0x010;
inline constexpr std::uint32_t crashed_primary = 0x040;
inline constexpr std::uint32_t al_clean = 0x080;
inline constexpr std::uint32_t al_disabled = 0x100;
inline constexpr std::uint32_t primary_lost_quorum = 0x200;
inline constexpr std::uint32_t have_quorum = 0x400;
}  // namespace md_flag

// Per-peer flags (MDF_PEER_*), §12.4.
namespace peer_flag {
inline constexpr std::uint32_t connected = 0x1;
inline constexpr std::uint32_t outdated = 0x2;
inline constexpr std::uint32_t fencing = 0x4;
inline constexpr std::uint32_t full_sync = 0x8;
inline constexpr std::uint32_t device_seen = 0x10;
inline constexpr std::uint32_t node_exists = 0x10000;
}  // namespace peer_flag

struct PeerSlot {
  std::uint64_t bitmap_uuid = 0;
  std::uint64_t bitmap_dagtag = 0;
  std::uint32_t flags = 0;
  std::int32_t bitmap_index = -1;  // -1: no bitmap slot for this node
  friend bool operator==(const PeerSlot&, const PeerSlot&) = default;
};

// The decoded superblock. Field names follow drbdmeta dump-md where it has one.
struct Superblock {
  std::uint64_t effective_size_sectors = 0;  // "la-size-sect"
  std::uint64_t current_uuid = uuid_just_created;
  std::uint64_t members = 0;  // reserved in drbd-utils 9.22, passed through
  // ditto's own use of drbdmeta's reserved_u64[3] (drbdmeta neither reads nor prints them): the
  // record of an unconfirmed generation (core's UnconfirmedGeneration), all 0 for none.
  std::uint64_t unconfirmed_current = 0;
  std::uint64_t unconfirmed_previous = 0;
  std::uint64_t unconfirmed_rotated_nodes = 0;
  std::uint64_t device_uuid = 0;
  std::uint32_t flags = md_flag::al_clean;
  std::uint32_t md_size_sectors = 0;
  std::int32_t al_offset_sectors = 0;  // relative to the superblock, negative for internal
  std::uint32_t al_extents = drbdmeta_al_extents;
  std::int32_t bm_offset_sectors = 0;  // relative to the superblock, negative for internal
  std::uint32_t bm_bytes_per_bit = default_bytes_per_bit;
  std::uint32_t la_peer_max_bio_size = 0;
  std::uint32_t max_peers = 1;
  std::int32_t node_id = -1;  // -1 until first attach
  std::uint32_t al_stripes = default_al_stripes;
  std::uint32_t al_stripe_size_4k = default_al_stripe_size_4k;
  std::array<PeerSlot, peer_slot_count> peers{};
  std::array<std::uint64_t, history_uuid_count> history_uuids{};
  friend bool operator==(const Superblock&, const Superblock&) = default;
};

struct LayoutOptions {
  std::uint32_t max_peers = 1;
  std::uint32_t al_stripes = default_al_stripes;
  std::uint32_t al_stripe_size_4k = default_al_stripe_size_4k;
  std::uint32_t bm_bytes_per_bit = default_bytes_per_bit;
};

// Byte positions of the metadata parts on a device with internal metadata (§12.1).
struct Layout {
  std::uint64_t device_bytes = 0;
  std::uint64_t md_offset_bytes = 0;  // superblock: last 4 KiB-aligned 4 KiB block
  std::uint64_t al_offset_bytes = 0;
  std::uint64_t bm_offset_bytes = 0;
  std::uint32_t al_size_sectors = 0;
  std::uint32_t md_size_sectors = 0;   // bitmap + activity log + superblock
  std::int32_t al_offset_sectors = 0;  // as stored in the superblock
  std::int32_t bm_offset_sectors = 0;
  std::uint64_t bitmap_bytes = 0;    // on-disk bitmap area for the whole device
  std::uint64_t usable_sectors = 0;  // data area: everything below the bitmap
  friend bool operator==(const Layout&, const Layout&) = default;
};

// drbdmeta's bm_bytes(): bitmap bytes for `sectors` of data, all slots, rounded up to 4 KiB.
std::uint64_t bitmap_area_bytes(std::uint64_t sectors, std::uint32_t max_peers,
                                std::uint32_t bm_bytes_per_bit);

// Layout for a device of `device_bytes` (rejects sizes drbdmeta would reject).
Result<Layout> internal_layout(std::uint64_t device_bytes, const LayoutOptions& options);

// What `drbdmeta create-md MAX_PEERS` writes into the superblock (current UUID 4, AL_CLEAN,
// every peer slot without bitmap). `node_id` -1 leaves it unset like drbdmeta.
Result<Superblock> initial_superblock(std::uint64_t device_bytes, std::uint32_t max_peers,
                                      std::int32_t node_id = -1, const LayoutOptions& options = {});

std::array<std::uint8_t, block_size_bytes> encode_superblock(const Superblock& superblock);

// Decodes and checks everything that does not depend on the device size.
Result<Superblock> decode_superblock(std::span<const std::uint8_t> bytes);

// Checks a decoded superblock against the device it was read from; returns its layout.
Result<Layout> check_superblock_layout(const Superblock& superblock, std::uint64_t device_bytes);

// ---- Activity log transactions (4 KiB blocks, §4.2) ----

inline constexpr std::uint32_t al_updates_per_transaction = 64;
inline constexpr std::uint32_t al_context_per_transaction = 919;
inline constexpr std::uint16_t al_type_update = 0;
inline constexpr std::uint16_t al_type_initialized = 0xffff;
inline constexpr std::uint16_t al_free_slot = 0xffff;
inline constexpr std::uint32_t al_free_extent = 0xffffffff;  // LC_FREE

struct AlTransaction {
  std::uint32_t tr_number = 0;
  std::uint16_t transaction_type = al_type_update;
  std::uint16_t n_updates = 0;
  std::uint16_t context_size = 0;
  std::uint16_t context_start_slot = 0;
  std::array<std::uint16_t, al_updates_per_transaction> update_slots{};
  std::array<std::uint32_t, al_updates_per_transaction> update_extents{};
  std::array<std::uint32_t, al_context_per_transaction> context{};
  friend bool operator==(const AlTransaction&, const AlTransaction&) = default;
};

// The block drbdmeta writes into every AL slot on create-md / apply-al (all fields zero except
// magic and type 0xffff).
AlTransaction initialized_al_transaction();

// DRBD's AL checksum: CRC-32C with seed 0 and no final inversion, over the 4 KiB block with the
// crc field zeroed.
std::uint32_t al_checksum(std::span<const std::uint8_t> block);

std::array<std::uint8_t, block_size_bytes> encode_al_transaction(const AlTransaction& transaction);
Result<AlTransaction> decode_al_transaction(std::span<const std::uint8_t> block);

// 4 KiB block index inside the AL area for transaction `tr_number` (striped ring).
std::uint32_t al_block_index(std::uint32_t tr_number, std::uint32_t al_stripes,
                             std::uint32_t al_stripe_size_4k);

// ---- On-disk bitmap: 32-bit little-endian words interleaved by slot (§4.1) ----

// Word w of slot s lives at 32-bit word index w * max_peers + s of the bitmap area.
void pack_bitmap_slot(std::span<const std::uint32_t> slot_words, std::uint32_t max_peers,
                      std::uint32_t slot, std::span<std::uint8_t> area);
std::vector<std::uint32_t> unpack_bitmap_slot(std::span<const std::uint8_t> area,
                                              std::uint32_t max_peers, std::uint32_t slot,
                                              std::size_t word_count);

// ---- drbdmeta dump-md text ----

// Number of bitmap bytes dump-md shows: bitmap_area_bytes(la-size-sect clipped to usable).
std::uint64_t dump_bitmap_bytes(const Superblock& superblock, const Layout& layout);

// The body of `drbdmeta v09 ... dump-md` (everything after the 4-line "#" header and the blank
// line), byte for byte. `bitmap_area` holds dump_bitmap_bytes() bytes from the bitmap offset.
std::string format_dump_md(const Superblock& superblock, const Layout& layout,
                           std::span<const std::uint8_t> bitmap_area);

}  // namespace ditto::metadata
