#include "sim/oracle.h"

#include <algorithm>

#include "core/assert.h"

namespace ditto::sim {

BlockOracle::BlockOracle(std::uint64_t block_count)
    : acknowledged_(block_count, 0), possible_(block_count) {
  DITTO_ASSERT(block_count > 0);
}

void BlockOracle::write_issued(std::uint64_t first_block, std::uint32_t block_count,
                               std::uint64_t tag) {
  DITTO_ASSERT(tag != 0);  // 0 stands for "never written"
  DITTO_ASSERT(first_block + block_count <= acknowledged_.size());
  for (std::uint64_t block = first_block; block < first_block + block_count; ++block) {
    possible_[block].push_back(tag);
  }
}

void BlockOracle::write_completed(std::uint64_t first_block, std::uint32_t block_count,
                                  std::uint64_t tag, bool acknowledged) {
  DITTO_ASSERT(first_block + block_count <= acknowledged_.size());
  if (!acknowledged) return;  // the write may or may not be there: it stays possible
  for (std::uint64_t block = first_block; block < first_block + block_count; ++block) {
    std::vector<std::uint64_t>& candidates = possible_[block];
    // Only one write per block is in flight at a time, so this write is the newest issued one.
    DITTO_ASSERT(!candidates.empty() && candidates.back() == tag);
    acknowledged_[block] = tag;
    candidates.clear();
  }
}

bool BlockOracle::allowed(std::uint64_t block, std::uint64_t tag) const {
  if (acknowledged_.at(block) == tag) return true;
  const std::vector<std::uint64_t>& candidates = possible_[block];
  return std::find(candidates.begin(), candidates.end(), tag) != candidates.end();
}

void BlockOracle::check(std::string_view where, std::uint64_t first_block,
                        std::span<const std::uint64_t> observed, Violations& violations) const {
  for (std::size_t index = 0; index < observed.size(); ++index) {
    const std::uint64_t block = first_block + index;
    if (allowed(block, observed[index])) continue;
    violations.add(std::string(where) + ": block " + std::to_string(block) + " holds tag " +
                   std::to_string(observed[index]) + ", expected " + describe_expected(block));
  }
}

std::string BlockOracle::describe_expected(std::uint64_t block) const {
  std::string text = "tag " + std::to_string(acknowledged_.at(block)) + " (last acknowledged)";
  const std::vector<std::uint64_t>& candidates = possible_[block];
  if (candidates.empty()) return text;
  text += " or one of unacknowledged [";
  for (std::size_t index = 0; index < candidates.size(); ++index) {
    if (index > 0) text += ", ";
    text += std::to_string(candidates[index]);
  }
  return text + "]";
}

}  // namespace ditto::sim
