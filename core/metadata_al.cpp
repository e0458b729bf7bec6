// DRBD v09 metadata: activity-log transaction blocks and the interleaved on-disk bitmap.
#include <string>

#include "core/assert.h"
#include "core/bytes.h"
#include "core/crc32c.h"
#include "core/metadata.h"

namespace ditto::metadata {
namespace {

constexpr std::size_t al_crc_offset = 8;
constexpr std::size_t al_header_bytes = 36;

Error al_error(const std::string& message) {
  return Error{"activity log block: " + message};
}

}  // namespace

AlTransaction initialized_al_transaction() {
  AlTransaction transaction;
  transaction.transaction_type = al_type_initialized;
  return transaction;
}

std::uint32_t al_checksum(std::span<const std::uint8_t> block) {
  DITTO_ASSERT(block.size() == block_size_bytes);
  // crc32c_extend inverts on entry and exit; DRBD's crc32c(0, ...) does neither.
  static constexpr std::array<std::uint8_t, 4> zero_crc{};
  std::uint32_t crc = ~crc32c_extend(0xffffffff, block.first(al_crc_offset));
  crc = ~crc32c_extend(~crc, zero_crc);
  return ~crc32c_extend(~crc, block.subspan(al_crc_offset + zero_crc.size()));
}

std::array<std::uint8_t, block_size_bytes> encode_al_transaction(const AlTransaction& transaction) {
  DITTO_ASSERT(transaction.n_updates <= al_updates_per_transaction);
  std::array<std::uint8_t, block_size_bytes> block{};
  ByteWriter writer{block};
  writer.u32(al_magic);
  writer.u32(transaction.tr_number);
  writer.u32(0);  // crc, filled in below
  writer.u16(transaction.transaction_type);
  writer.u16(transaction.n_updates);
  writer.u16(transaction.context_size);
  writer.u16(transaction.context_start_slot);
  for (int reserved = 0; reserved < 4; ++reserved) writer.u32(0);
  DITTO_ASSERT(writer.position() == al_header_bytes);
  for (std::uint16_t slot : transaction.update_slots) writer.u16(slot);
  for (std::uint32_t extent : transaction.update_extents) writer.u32(extent);
  for (std::uint32_t extent : transaction.context) writer.u32(extent);
  DITTO_ASSERT(writer.position() == block_size_bytes);
  const std::uint32_t crc = al_checksum(block);
  ByteWriter crc_writer{std::span<std::uint8_t>{block}.subspan(al_crc_offset, 4)};
  crc_writer.u32(crc);
  return block;
}

Result<AlTransaction> decode_al_transaction(std::span<const std::uint8_t> block) {
  if (block.size() != block_size_bytes) {
    return al_error("need 4096 bytes, got " + std::to_string(block.size()));
  }
  ByteReader reader{block};
  AlTransaction transaction;
  std::uint32_t magic = 0;
  std::uint32_t crc = 0;
  std::uint32_t reserved = 0;
  bool ok = reader.u32(magic) && reader.u32(transaction.tr_number) && reader.u32(crc) &&
            reader.u16(transaction.transaction_type) && reader.u16(transaction.n_updates) &&
            reader.u16(transaction.context_size) && reader.u16(transaction.context_start_slot);
  for (int index = 0; index < 4; ++index) ok = ok && reader.u32(reserved);
  for (std::uint16_t& slot : transaction.update_slots) ok = ok && reader.u16(slot);
  for (std::uint32_t& extent : transaction.update_extents) ok = ok && reader.u32(extent);
  for (std::uint32_t& extent : transaction.context) ok = ok && reader.u32(extent);
  DITTO_ASSERT(ok && reader.remaining() == 0);
  if (magic != al_magic) {
    return al_error("magic " + std::to_string(magic) + " is not the AL magic 1775986082");
  }
  if (const std::uint32_t expected = al_checksum(block); crc != expected) {
    return al_error("crc32c " + std::to_string(crc) + " does not match the contents (" +
                    std::to_string(expected) + ")");
  }
  if (transaction.transaction_type != al_type_update &&
      transaction.transaction_type != al_type_initialized) {
    return al_error("transaction type " + std::to_string(transaction.transaction_type) +
                    " is neither update (0) nor initialized (65535)");
  }
  if (transaction.n_updates > al_updates_per_transaction) {
    return al_error("n_updates " + std::to_string(transaction.n_updates) + " exceeds 64");
  }
  return transaction;
}

std::uint32_t al_block_index(std::uint32_t tr_number, std::uint32_t al_stripes,
                             std::uint32_t al_stripe_size_4k) {
  DITTO_ASSERT(al_stripes >= 1 && al_stripe_size_4k >= 1);
  const std::uint32_t ring = tr_number % (al_stripes * al_stripe_size_4k);
  const std::uint32_t index = (ring % al_stripes) * al_stripe_size_4k + ring / al_stripes;
  DITTO_ASSERT(index < al_stripes * al_stripe_size_4k);
  return index;
}

void pack_bitmap_slot(std::span<const std::uint32_t> slot_words, std::uint32_t max_peers,
                      std::uint32_t slot, std::span<std::uint8_t> area) {
  DITTO_ASSERT(slot < max_peers);
  DITTO_ASSERT(slot_words.empty() ||
               ((slot_words.size() - 1) * max_peers + slot + 1) * 4 <= area.size());
  for (std::size_t word = 0; word < slot_words.size(); ++word) {
    const std::size_t offset = (word * max_peers + slot) * 4;
    for (std::size_t byte = 0; byte < 4; ++byte) {
      area[offset + byte] = static_cast<std::uint8_t>(slot_words[word] >> (8 * byte));
    }
  }
}

std::vector<std::uint32_t> unpack_bitmap_slot(std::span<const std::uint8_t> area,
                                              std::uint32_t max_peers, std::uint32_t slot,
                                              std::size_t word_count) {
  DITTO_ASSERT(slot < max_peers);
  std::vector<std::uint32_t> words(word_count, 0);
  for (std::size_t word = 0; word < word_count; ++word) {
    const std::size_t offset = (word * max_peers + slot) * 4;
    if (offset + 4 > area.size()) break;  // beyond the area: reads as zero
    std::uint32_t value = 0;
    for (std::size_t byte = 0; byte < 4; ++byte) {
      value |= std::uint32_t{area[offset + byte]} << (8 * byte);
    }
    words[word] = value;
  }
  return words;
}

}  // namespace ditto::metadata
