// DRBD v09 internal metadata: layout and superblock codec (drbd9-semantics.md §12).
#include "core/metadata.h"

#include <string>

#include "core/assert.h"
#include "core/bytes.h"

namespace ditto::metadata {
namespace {

// The superblock sits 8 sectors (4 KiB) above the bitmap's end: bm_offset = -md_size_sect + 8.
constexpr std::uint32_t superblock_sectors = 8;
constexpr std::uint32_t bytes_per_bit_max = 1u << 20;
// AL between 32 KiB and 16 GiB (kernel check_activity_log_stripe_size).
constexpr std::uint64_t al_blocks_min = 8;
constexpr std::uint64_t al_blocks_max = (16ull << 30) / block_size_bytes;
// drbdmeta: "we announced 1 PiB as supported" (bm_bytes asserts on more).
constexpr std::uint64_t device_sectors_max = 1ull << (50 - 9);

constexpr std::uint64_t align_up(std::uint64_t value, std::uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

std::string hex32(std::uint32_t value) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) text += digits[(value >> shift) & 0xf];
  return text;
}

Error superblock_error(const std::string& message) {
  return Error{"superblock: " + message};
}

bool is_power_of_two(std::uint64_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

Status check_options(const LayoutOptions& options, std::uint32_t max_peers_max) {
  if (options.max_peers < 1 || options.max_peers > max_peers_max) {
    return superblock_error("max-peers " + std::to_string(options.max_peers) + " out of range 1.." +
                            std::to_string(max_peers_max));
  }
  if (!is_power_of_two(options.bm_bytes_per_bit) ||
      options.bm_bytes_per_bit < default_bytes_per_bit ||
      options.bm_bytes_per_bit > bytes_per_bit_max) {
    return superblock_error("bm-byte-per-bit " + std::to_string(options.bm_bytes_per_bit) +
                            " is not a power of two in 4096..1048576");
  }
  const std::uint64_t al_blocks =
      std::uint64_t{options.al_stripes} * std::uint64_t{options.al_stripe_size_4k};
  if (options.al_stripes == 0 || options.al_stripe_size_4k == 0 || al_blocks < al_blocks_min ||
      al_blocks > al_blocks_max) {
    return superblock_error("activity log of al-stripes " + std::to_string(options.al_stripes) +
                            " x al-stripe-size-4k " + std::to_string(options.al_stripe_size_4k) +
                            " is outside 32 KiB..16 GiB");
  }
  return Status::success();
}

}  // namespace

std::uint64_t bitmap_area_bytes(std::uint64_t sectors, std::uint32_t max_peers,
                                std::uint32_t bm_bytes_per_bit) {
  DITTO_ASSERT(is_power_of_two(bm_bytes_per_bit) && bm_bytes_per_bit >= sector_bytes);
  DITTO_ASSERT(max_peers >= 1 && max_peers <= max_peers_limit);
  const std::uint64_t sectors_per_bit = bm_bytes_per_bit / sector_bytes;
  const std::uint64_t bits = align_up((sectors + sectors_per_bit - 1) / sectors_per_bit, 64);
  return align_up(bits / 8 * max_peers, block_size_bytes);
}

Result<Layout> internal_layout(std::uint64_t device_bytes, const LayoutOptions& options) {
  if (Status status = check_options(options, max_peers_limit); !status) return status.error();
  if (device_bytes < device_bytes_min) {
    return Error{"device of " + std::to_string(device_bytes) +
                 " bytes is too small for internal metadata (minimum 69632)"};
  }
  if (device_bytes / sector_bytes > device_sectors_max) {
    return Error{"device of " + std::to_string(device_bytes) + " bytes is larger than 1 PiB"};
  }
  Layout layout;
  layout.device_bytes = device_bytes;
  layout.md_offset_bytes = (device_bytes - block_size_bytes) & ~std::uint64_t{block_size_bytes - 1};
  layout.al_size_sectors = options.al_stripes * options.al_stripe_size_4k * superblock_sectors;
  layout.bitmap_bytes =
      bitmap_area_bytes(device_bytes / sector_bytes, options.max_peers, options.bm_bytes_per_bit);
  const std::uint64_t md_size_sectors =
      align_up(layout.bitmap_bytes / sector_bytes, 8) + superblock_sectors + layout.al_size_sectors;
  const std::uint64_t md_size_bytes = md_size_sectors * sector_bytes;
  if (md_size_bytes - block_size_bytes >= layout.md_offset_bytes) {
    return Error{"device of " + std::to_string(device_bytes) + " bytes cannot hold " +
                 std::to_string(md_size_bytes) + " bytes of metadata and any data"};
  }
  layout.md_size_sectors = static_cast<std::uint32_t>(md_size_sectors);
  layout.al_offset_sectors = -static_cast<std::int32_t>(layout.al_size_sectors);
  layout.bm_offset_sectors = -static_cast<std::int32_t>(md_size_sectors - superblock_sectors);
  layout.al_offset_bytes = layout.md_offset_bytes - std::uint64_t{layout.al_size_sectors} * 512;
  layout.bm_offset_bytes = layout.md_offset_bytes + block_size_bytes - md_size_bytes;
  layout.usable_sectors = layout.bm_offset_bytes / sector_bytes;
  DITTO_ASSERT(layout.bm_offset_bytes + layout.bitmap_bytes <= layout.al_offset_bytes);
  DITTO_ASSERT(layout.al_offset_bytes < layout.md_offset_bytes);
  return layout;
}

Result<Superblock> initial_superblock(std::uint64_t device_bytes, std::uint32_t max_peers,
                                      std::int32_t node_id, const LayoutOptions& options) {
  LayoutOptions effective = options;
  effective.max_peers = max_peers;
  if (Status status = check_options(effective, max_peers_create_limit); !status) {
    return status.error();
  }
  if (node_id < -1 || node_id >= static_cast<std::int32_t>(peer_slot_count)) {
    return Error{"node-id " + std::to_string(node_id) + " out of range 0..31"};
  }
  Result<Layout> layout = internal_layout(device_bytes, effective);
  if (!layout) return layout.error();
  Superblock superblock;
  superblock.max_peers = max_peers;
  superblock.node_id = node_id;
  superblock.md_size_sectors = layout.value().md_size_sectors;
  superblock.al_offset_sectors = layout.value().al_offset_sectors;
  superblock.bm_offset_sectors = layout.value().bm_offset_sectors;
  superblock.bm_bytes_per_bit = effective.bm_bytes_per_bit;
  superblock.al_stripes = effective.al_stripes;
  superblock.al_stripe_size_4k = effective.al_stripe_size_4k;
  DITTO_ASSERT(superblock.current_uuid == uuid_just_created);
  DITTO_ASSERT(superblock.flags == md_flag::al_clean);
  return superblock;
}

std::array<std::uint8_t, block_size_bytes> encode_superblock(const Superblock& superblock) {
  DITTO_ASSERT(superblock.max_peers >= 1 && superblock.max_peers <= max_peers_limit);
  std::array<std::uint8_t, block_size_bytes> block{};
  ByteWriter writer{block};
  writer.u64(superblock.effective_size_sectors);
  writer.u64(superblock.current_uuid);
  writer.u64(superblock.members);
  writer.u64(superblock.unconfirmed_current);
  writer.u64(superblock.unconfirmed_previous);
  writer.u64(superblock.unconfirmed_rotated_nodes);
  writer.u64(superblock.device_uuid);
  writer.u32(superblock.flags);
  writer.u32(superblock_magic_v09);
  writer.u32(superblock.md_size_sectors);
  writer.u32(static_cast<std::uint32_t>(superblock.al_offset_sectors));
  writer.u32(superblock.al_extents);
  writer.u32(static_cast<std::uint32_t>(superblock.bm_offset_sectors));
  writer.u32(superblock.bm_bytes_per_bit);
  writer.u32(superblock.la_peer_max_bio_size);
  writer.u32(superblock.max_peers);
  writer.u32(static_cast<std::uint32_t>(superblock.node_id));
  writer.u32(superblock.al_stripes);
  writer.u32(superblock.al_stripe_size_4k);
  writer.u32(0);
  writer.u32(0);
  for (const PeerSlot& peer : superblock.peers) {
    writer.u64(peer.bitmap_uuid);
    writer.u64(peer.bitmap_dagtag);
    writer.u32(peer.flags);
    writer.u32(static_cast<std::uint32_t>(peer.bitmap_index));
    writer.u32(0);
    writer.u32(0);
  }
  for (std::uint64_t uuid : superblock.history_uuids) writer.u64(uuid);
  DITTO_ASSERT(writer.position() == 0x570);
  return block;
}

namespace {

// Reads the fixed-size superblock fields; the caller has checked the length.
Superblock read_superblock_fields(std::span<const std::uint8_t> bytes, std::uint32_t& magic) {
  ByteReader reader{bytes.first(block_size_bytes)};
  Superblock sb;
  std::uint32_t word = 0;
  bool ok = reader.u64(sb.effective_size_sectors) && reader.u64(sb.current_uuid) &&
            reader.u64(sb.members) && reader.u64(sb.unconfirmed_current) &&
            reader.u64(sb.unconfirmed_previous) && reader.u64(sb.unconfirmed_rotated_nodes) &&
            reader.u64(sb.device_uuid) && reader.u32(sb.flags) && reader.u32(magic) &&
            reader.u32(sb.md_size_sectors) && reader.u32(word);
  sb.al_offset_sectors = static_cast<std::int32_t>(word);
  ok = ok && reader.u32(sb.al_extents) && reader.u32(word);
  sb.bm_offset_sectors = static_cast<std::int32_t>(word);
  ok = ok && reader.u32(sb.bm_bytes_per_bit) && reader.u32(sb.la_peer_max_bio_size) &&
       reader.u32(sb.max_peers) && reader.u32(word);
  sb.node_id = static_cast<std::int32_t>(word);
  ok = ok && reader.u32(sb.al_stripes) && reader.u32(sb.al_stripe_size_4k) && reader.u32(word) &&
       reader.u32(word);
  for (PeerSlot& peer : sb.peers) {
    ok = ok && reader.u64(peer.bitmap_uuid) && reader.u64(peer.bitmap_dagtag) &&
         reader.u32(peer.flags) && reader.u32(word);
    peer.bitmap_index = static_cast<std::int32_t>(word);
    ok = ok && reader.u32(word) && reader.u32(word);
  }
  for (std::uint64_t& uuid : sb.history_uuids) ok = ok && reader.u64(uuid);
  DITTO_ASSERT(ok);  // 4096 bytes always hold the 1392-byte structure
  return sb;
}

Status check_peer_slots(const Superblock& sb) {
  for (std::uint32_t node = 0; node < peer_slot_count; ++node) {
    const std::int32_t index = sb.peers[node].bitmap_index;
    if (index < -1 || index >= static_cast<std::int32_t>(sb.max_peers)) {
      return superblock_error("peer[" + std::to_string(node) + "] bitmap-index " +
                              std::to_string(index) + " out of range -1.." +
                              std::to_string(sb.max_peers - 1));
    }
  }
  return Status::success();
}

}  // namespace

Result<Superblock> decode_superblock(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < block_size_bytes) {
    return superblock_error("need 4096 bytes, got " + std::to_string(bytes.size()));
  }
  std::uint32_t magic = 0;
  Superblock sb = read_superblock_fields(bytes, magic);
  if (magic != superblock_magic_v09) {
    return superblock_error("magic " + hex32(magic) + " is not DRBD v09 (" +
                            hex32(superblock_magic_v09) + ")");
  }
  const LayoutOptions options{sb.max_peers, sb.al_stripes, sb.al_stripe_size_4k,
                              sb.bm_bytes_per_bit};
  if (Status status = check_options(options, max_peers_limit); !status) return status.error();
  if (sb.node_id < -1 || sb.node_id >= static_cast<std::int32_t>(peer_slot_count)) {
    return superblock_error("node-id " + std::to_string(sb.node_id) + " out of range -1..31");
  }
  const auto al_size_sectors =
      static_cast<std::int32_t>(sb.al_stripes * sb.al_stripe_size_4k * superblock_sectors);
  if (sb.al_offset_sectors != -al_size_sectors) {
    return superblock_error("al_offset " + std::to_string(sb.al_offset_sectors) +
                            " does not match the activity log size (expected " +
                            std::to_string(-al_size_sectors) + ")");
  }
  const std::int64_t md_size = sb.md_size_sectors;
  if (md_size <= al_size_sectors + std::int64_t{superblock_sectors} ||
      sb.bm_offset_sectors != -(md_size - std::int64_t{superblock_sectors})) {
    return superblock_error("bm_offset " + std::to_string(sb.bm_offset_sectors) +
                            " does not match md_size_sect " + std::to_string(sb.md_size_sectors));
  }
  if (Status status = check_peer_slots(sb); !status) return status.error();
  return sb;
}

Result<Layout> check_superblock_layout(const Superblock& sb, std::uint64_t device_bytes) {
  const LayoutOptions options{sb.max_peers, sb.al_stripes, sb.al_stripe_size_4k,
                              sb.bm_bytes_per_bit};
  Result<Layout> layout = internal_layout(device_bytes, options);
  if (!layout) return layout.error();
  if (layout.value().md_size_sectors != sb.md_size_sectors) {
    return superblock_error("md_size_sect " + std::to_string(sb.md_size_sectors) +
                            " does not fit a device of " + std::to_string(device_bytes) +
                            " bytes with max-peers " + std::to_string(sb.max_peers) +
                            " (expected " + std::to_string(layout.value().md_size_sectors) + ")");
  }
  if (layout.value().bm_offset_sectors != sb.bm_offset_sectors ||
      layout.value().al_offset_sectors != sb.al_offset_sectors) {
    return superblock_error("bm_offset " + std::to_string(sb.bm_offset_sectors) + " / al_offset " +
                            std::to_string(sb.al_offset_sectors) + " do not fit md_size_sect " +
                            std::to_string(sb.md_size_sectors));
  }
  return layout;
}

}  // namespace ditto::metadata
