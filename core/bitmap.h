// The out-of-sync bitmap toward one peer slot (drbd9-semantics.md §4.1): one bit per 4 KiB block
// of the volume; a set bit means "this block may differ from that peer". Pure and in memory; the
// on-disk form is 32-bit words (export_words/import_words, packed by core/metadata.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ditto {

class Bitmap {
 public:
  static constexpr std::uint64_t bytes_per_bit = 4096;
  static constexpr std::uint64_t sectors_per_bit = bytes_per_bit / 512;

  // A bitmap covering `sectors` 512-byte sectors (the last bit may cover a partial block).
  explicit Bitmap(std::uint64_t sectors);

  std::uint64_t bit_count() const { return bit_count_; }
  std::uint64_t sectors() const { return sectors_; }

  // Marks every block touched by [first_sector, first_sector + sector_count) out of sync.
  void set_sectors(std::uint64_t first_sector, std::uint64_t sector_count);
  // Marks in sync only the blocks that the range covers completely (a partial block may still
  // differ), as DRBD does when a resync or a write proves part of the volume identical. The
  // last, partial block of the volume counts as complete when the range reaches the end.
  void clear_sectors(std::uint64_t first_sector, std::uint64_t sector_count);

  void set_bits(std::uint64_t first_bit, std::uint64_t bit_count);
  void clear_bits(std::uint64_t first_bit, std::uint64_t bit_count);
  void set_all() { set_bits(0, bit_count_); }
  void clear_all() { clear_bits(0, bit_count_); }
  bool test(std::uint64_t bit) const;

  std::uint64_t count_set() const { return set_count_; }
  std::uint64_t out_of_sync_kib() const { return set_count_ * (bytes_per_bit / 1024); }

  // The first set bit at or after `from_bit`, if any (resync walks the bitmap with this).
  std::optional<std::uint64_t> find_next_set(std::uint64_t from_bit) const;

  // this |= other (same size): the union of two sides' dirty sets before a resync.
  void merge(const Bitmap& other);

  // 32-bit words, bit n in bit (n % 32) of word n / 32, the last word zero-padded; this is the
  // little-endian on-disk word order. import_words ignores bits beyond bit_count() and rejects
  // nothing: the caller decides how many words the disk holds for this size.
  std::vector<std::uint32_t> export_words() const;
  void import_words(std::span<const std::uint32_t> words);
  // Word `index` of export_words() without building the vector (0 beyond the end).
  std::uint32_t word(std::uint64_t index) const {
    if (index >= (bit_count_ + 31) / 32) return 0;
    return static_cast<std::uint32_t>(words_[index / 2] >> (32 * (index % 2)));
  }

  friend bool operator==(const Bitmap&, const Bitmap&) = default;

 private:
  // Sets (value = true) or clears a run of bits a word at a time, keeping set_count_ exact.
  void assign_bits(std::uint64_t first_bit, std::uint64_t bit_count, bool value);
  void invariants() const;

  std::uint64_t sectors_;
  std::uint64_t bit_count_;
  std::vector<std::uint64_t> words_;
  std::uint64_t set_count_ = 0;
};

}  // namespace ditto
