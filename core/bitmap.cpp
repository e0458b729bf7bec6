// Out-of-sync bitmap toward one peer slot.
#include "core/bitmap.h"

#include <algorithm>
#include <bit>

#include "core/assert.h"

namespace ditto {
namespace {

constexpr std::uint64_t bits_per_word = 64;

// Mask of bits [first, first + count) within one 64-bit word; count in 1..64.
constexpr std::uint64_t word_mask(std::uint64_t first, std::uint64_t count) {
  const std::uint64_t ones =
      count == bits_per_word ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1;
  return ones << first;
}

}  // namespace

Bitmap::Bitmap(std::uint64_t sectors)
    : sectors_(sectors),
      bit_count_((sectors + sectors_per_bit - 1) / sectors_per_bit),
      words_((bit_count_ + bits_per_word - 1) / bits_per_word, 0) {
  invariants();
}

void Bitmap::invariants() const {
  DITTO_ASSERT(words_.size() * bits_per_word >= bit_count_);
  DITTO_ASSERT(set_count_ <= bit_count_);
}

void Bitmap::set_sectors(std::uint64_t first_sector, std::uint64_t sector_count) {
  DITTO_ASSERT(first_sector + sector_count <= sectors_);
  if (sector_count == 0) return;
  const std::uint64_t first_bit = first_sector / sectors_per_bit;
  const std::uint64_t end_bit =
      (first_sector + sector_count + sectors_per_bit - 1) / sectors_per_bit;
  set_bits(first_bit, end_bit - first_bit);
}

void Bitmap::clear_sectors(std::uint64_t first_sector, std::uint64_t sector_count) {
  DITTO_ASSERT(first_sector + sector_count <= sectors_);
  const std::uint64_t end_sector = first_sector + sector_count;
  const std::uint64_t first_bit = (first_sector + sectors_per_bit - 1) / sectors_per_bit;
  const std::uint64_t end_bit = end_sector == sectors_ ? bit_count_ : end_sector / sectors_per_bit;
  if (end_bit > first_bit) clear_bits(first_bit, end_bit - first_bit);
}

void Bitmap::set_bits(std::uint64_t first_bit, std::uint64_t count) {
  assign_bits(first_bit, count, true);
}

void Bitmap::clear_bits(std::uint64_t first_bit, std::uint64_t count) {
  assign_bits(first_bit, count, false);
}

void Bitmap::assign_bits(std::uint64_t first_bit, std::uint64_t count, bool value) {
  DITTO_ASSERT(first_bit + count <= bit_count_);
  std::uint64_t bit = first_bit;
  const std::uint64_t end = first_bit + count;
  while (bit < end) {
    const std::uint64_t offset = bit % bits_per_word;
    const std::uint64_t span = std::min(bits_per_word - offset, end - bit);
    std::uint64_t& word = words_[bit / bits_per_word];
    const std::uint64_t mask = word_mask(offset, span);
    if (value) {
      set_count_ += static_cast<std::uint64_t>(std::popcount(mask & ~word));
      word |= mask;
    } else {
      set_count_ -= static_cast<std::uint64_t>(std::popcount(mask & word));
      word &= ~mask;
    }
    bit += span;
  }
  invariants();
}

bool Bitmap::test(std::uint64_t bit) const {
  DITTO_ASSERT(bit < bit_count_);
  return (words_[bit / bits_per_word] >> (bit % bits_per_word)) & 1;
}

std::optional<std::uint64_t> Bitmap::find_next_set(std::uint64_t from_bit) const {
  if (from_bit >= bit_count_) return std::nullopt;
  std::size_t index = from_bit / bits_per_word;
  std::uint64_t word = words_[index] & (~std::uint64_t{0} << (from_bit % bits_per_word));
  while (word == 0) {
    if (++index == words_.size()) return std::nullopt;
    word = words_[index];
  }
  const std::uint64_t bit =
      index * bits_per_word + static_cast<std::uint64_t>(std::countr_zero(word));
  DITTO_ASSERT(bit >= from_bit && bit < bit_count_);
  return bit;
}

void Bitmap::merge(const Bitmap& other) {
  DITTO_ASSERT(other.bit_count_ == bit_count_);
  set_count_ = 0;
  for (std::size_t index = 0; index < words_.size(); ++index) {
    words_[index] |= other.words_[index];
    set_count_ += static_cast<std::uint64_t>(std::popcount(words_[index]));
  }
  invariants();
}

std::vector<std::uint32_t> Bitmap::export_words() const {
  std::vector<std::uint32_t> words((bit_count_ + 31) / 32, 0);
  for (std::size_t index = 0; index < words.size(); ++index) {
    words[index] = static_cast<std::uint32_t>(words_[index / 2] >> (32 * (index % 2)));
  }
  return words;
}

void Bitmap::import_words(std::span<const std::uint32_t> words) {
  std::fill(words_.begin(), words_.end(), 0);
  set_count_ = 0;
  const std::size_t usable = std::min<std::size_t>(words.size(), (bit_count_ + 31) / 32);
  for (std::size_t index = 0; index < usable; ++index) {
    words_[index / 2] |= std::uint64_t{words[index]} << (32 * (index % 2));
  }
  if (const std::uint64_t tail = bit_count_ % bits_per_word; tail != 0 && !words_.empty()) {
    words_.back() &= word_mask(0, tail);  // bits past the end of the volume are not data
  }
  for (std::uint64_t word : words_) set_count_ += static_cast<std::uint64_t>(std::popcount(word));
  invariants();
}

}  // namespace ditto
