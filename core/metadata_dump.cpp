// The text of `drbdmeta v09 ... dump-md` (drbd-utils 9.22), reproduced byte for byte so a diff
// of the two tools' output is meaningful (drbd9-semantics.md §12.5).
#include <algorithm>
#include <bit>
#include <string>

#include "core/assert.h"
#include "core/metadata.h"

namespace ditto::metadata {
namespace {

std::string hex(std::uint64_t value, int digits) {
  static constexpr char upper[] = "0123456789ABCDEF";
  std::string text;
  for (int digit = digits - 1; digit >= 0; --digit) text += upper[(value >> (4 * digit)) & 0xf];
  return text;
}

std::string hex_u64(std::uint64_t value) {
  return "0x" + hex(value, 16);
}
std::string hex_u32(std::uint32_t value) {
  return "0x" + hex(value, 8);
}

// drbdmeta's pretty_peer_md_flags: " # name | name", unknown bits as "0x..=?".
std::string peer_flag_names(std::uint32_t flags) {
  std::string text;
  const char* separator = " # ";
  for (std::uint32_t bit = 0; bit < 32; ++bit) {
    const std::uint32_t mask = 1u << bit;
    if ((flags & mask) == 0) continue;
    std::string name;
    switch (mask) {
      case peer_flag::connected:
        name = "connected";
        break;
      case peer_flag::outdated:
        name = "<=outdated";
        break;
      case peer_flag::fencing:
        name = "fencing";
        break;
      case peer_flag::full_sync:
        name = "full-sync";
        break;
      case peer_flag::device_seen:
        name = "seen";
        break;
      case peer_flag::node_exists:
        name = "exists";
        break;
      default: {
        std::string digits = hex(mask, 8);
        digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
        std::transform(digits.begin(), digits.end(), digits.begin(),
                       [](char c) { return static_cast<char>(c >= 'A' ? c + 32 : c); });
        name = "0x" + digits + "=?";
      }
    }
    text += separator + name;
    separator = " | ";
  }
  return text;
}

std::uint32_t word_at(std::span<const std::uint8_t> area, std::size_t index) {
  std::uint32_t value = 0;
  for (std::size_t byte = 0; byte < 4; ++byte) {
    value |= std::uint32_t{area[index * 4 + byte]} << (8 * byte);
  }
  return value;
}

// Bitmap slot `slot` as drbdmeta's fprintf_bm prints it when the whole bitmap fits its 32 MiB
// buffer: 64-bit values four to a line, "# at NkB" every 64 words, and runs of at least two
// identical lines folded into "N times 0x...". Its quirks (the kB label counts interleaved
// words, a trailing odd word is dropped) are kept on purpose.
std::string format_bitmap_slot(std::span<const std::uint8_t> area, std::uint32_t max_peers,
                               std::uint32_t slot, std::uint64_t& bits_set) {
  constexpr std::size_t words_per_line = 8;
  const std::size_t word_count = area.size() / 4;
  std::string text = "{";
  std::size_t index = slot;
  std::uint32_t low_word = 0;
  bits_set = 0;
  while (index < word_count) {
    if (index % (words_per_line * max_peers) == slot) {
      if ((index & 63) == slot) {
        text += "\n   # at " + std::to_string(128 * (index - slot)) + "kB\n   ";
      } else {
        text += "\n   ";
      }
      const std::uint32_t first = word_at(area, index);
      std::size_t end = index;
      while (end < word_count && word_at(area, end) == first) end += max_peers;
      const std::size_t run =
          (end / max_peers - index / max_peers) / words_per_line * words_per_line;
      if (run > words_per_line) {
        text += " " + std::to_string(run / 2) + " times " + hex_u32(first) + hex(first, 8) + ";";
        bits_set += run * static_cast<std::uint64_t>(std::popcount(first));
        index += run * max_peers;
        continue;
      }
    }
    const std::uint32_t word = word_at(area, index);
    if (((index / max_peers) & 1) == 0) {
      low_word = word;
    } else {
      text += " " + hex_u32(word) + hex(low_word, 8) + ";";
    }
    bits_set += static_cast<std::uint64_t>(std::popcount(word));
    index += max_peers;
  }
  return text + "\n}\n";
}

void append_peers(std::string& text, const Superblock& sb) {
  for (std::uint32_t node = 0; node < peer_slot_count; ++node) {
    const PeerSlot& peer = sb.peers[node];
    text += "peer[" + std::to_string(node) + "] {\n";
    text += "    bitmap-index " + std::to_string(peer.bitmap_index) + ";\n";
    text += "    bitmap-uuid " + hex_u64(peer.bitmap_uuid) + ";\n";
    text += "    bitmap-dagtag " + hex_u64(peer.bitmap_dagtag) + ";\n";
    text += "    flags " + hex_u32(peer.flags) + ";" + peer_flag_names(peer.flags) + "\n";
    text += "}\n";
  }
  text += "history-uuids {";
  for (std::uint32_t index = 0; index < history_uuid_count; ++index) {
    text += (index % 4 ? " " : "\n        ") + hex_u64(sb.history_uuids[index]) + ";";
  }
  text += "\n}\n";
}

}  // namespace

std::uint64_t dump_bitmap_bytes(const Superblock& superblock, const Layout& layout) {
  const std::uint64_t sectors = std::min(superblock.effective_size_sectors, layout.usable_sectors);
  return bitmap_area_bytes(sectors, superblock.max_peers, superblock.bm_bytes_per_bit);
}

std::string format_dump_md(const Superblock& sb, const Layout& layout,
                           std::span<const std::uint8_t> bitmap_area) {
  DITTO_ASSERT(bitmap_area.size() == dump_bitmap_bytes(sb, layout));
  std::string text = "version \"v09\";\n\n";
  if ((sb.flags & md_flag::al_clean) == 0) {
    text +=
        "This_is_an_unclean_meta_data_dump._Don't_trust_the_bitmap.\n"
        "# You should \"apply-al\" first, if you plan to restore this.\n\n";
  }
  text += "max-peers " + std::to_string(sb.max_peers) + ";\n";
  text += "# md_size_sect " + std::to_string(sb.md_size_sectors) + "\n";
  text += "# md_offset " + std::to_string(layout.md_offset_bytes) + "\n";
  text += "# al_offset " + std::to_string(layout.al_offset_bytes) + "\n";
  text += "# bm_offset " + std::to_string(layout.bm_offset_bytes) + "\n\n";
  text += "node-id " + std::to_string(sb.node_id) + ";\n";
  text += "current-uuid " + hex_u64(sb.current_uuid) + ";\n";
  text += "flags " + hex_u32(sb.flags) + ";\n";
  append_peers(text, sb);
  text += "# al-extents " + std::to_string(sb.al_extents) + ";\n";
  text += "la-size-sect " +
          std::to_string(std::min(sb.effective_size_sectors, layout.usable_sectors)) + ";\n";
  text += "bm-byte-per-bit " + std::to_string(sb.bm_bytes_per_bit) + ";\n";
  text += "device-uuid " + hex_u64(sb.device_uuid) + ";\n";
  text += "la-peer-max-bio-size " +
          std::to_string(static_cast<std::int32_t>(sb.la_peer_max_bio_size)) + ";\n";
  text += "al-stripes " + std::to_string(sb.al_stripes) + ";\n";
  text += "al-stripe-size-4k " + std::to_string(sb.al_stripe_size_4k) + ";\n";
  text += "# bm-bytes " + std::to_string(bitmap_area.size()) + ";\n";
  std::uint64_t bits_set = 0;  // drbdmeta prints the count of the last slot only
  for (std::uint32_t slot = 0; slot < sb.max_peers; ++slot) {
    text += "bitmap[" + std::to_string(slot) + "] ";
    text += format_bitmap_slot(bitmap_area, sb.max_peers, slot, bits_set);
  }
  text += "# bits-set " + std::to_string(bits_set) + ";\n";
  DITTO_ASSERT(!text.empty());
  return text;
}

}  // namespace ditto::metadata
