// The block oracle: "no acknowledged write is lost" (simulation-anchors.md §5.2).
//
// Every write carries a unique 64-bit tag. Per block the oracle keeps the tag of the last
// acknowledged write and the tags of writes issued since then that were not acknowledged (in
// flight, abandoned at a crash, or failed): a read or a final disk image may show the last
// acknowledged tag or one of those, nothing else. The workload never has two requests in flight
// on one block, so a block's writes form a sequence and this check is exact.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ditto::sim {

// Violations as sentences, bounded in memory; the count keeps growing past the bound.
class Violations {
 public:
  static constexpr std::size_t stored_max = 100;
  void add(std::string text) {
    count_ += 1;
    if (texts_.size() < stored_max) texts_.push_back(std::move(text));
  }
  std::uint64_t count() const { return count_; }
  const std::vector<std::string>& texts() const { return texts_; }

 private:
  std::uint64_t count_ = 0;
  std::vector<std::string> texts_;
};

class BlockOracle {
 public:
  explicit BlockOracle(std::uint64_t block_count);

  void write_issued(std::uint64_t first_block, std::uint32_t block_count, std::uint64_t tag);
  // `acknowledged` is true when the client got status ok; otherwise the write stays possible.
  void write_completed(std::uint64_t first_block, std::uint32_t block_count, std::uint64_t tag,
                       bool acknowledged);

  bool allowed(std::uint64_t block, std::uint64_t tag) const;
  std::uint64_t last_acknowledged(std::uint64_t block) const { return acknowledged_.at(block); }
  std::uint64_t block_count() const { return acknowledged_.size(); }

  // Checks tags observed at `first_block`.. (a read result or a disk image); `where` names the
  // observer, e.g. "read 17 on node 1" or "final disk of node 1".
  void check(std::string_view where, std::uint64_t first_block,
             std::span<const std::uint64_t> observed, Violations& violations) const;

  std::string describe_expected(std::uint64_t block) const;

 private:
  std::vector<std::uint64_t> acknowledged_;           // 0: never written (the initial zeros)
  std::vector<std::vector<std::uint64_t>> possible_;  // tags issued since the last ack
};

}  // namespace ditto::sim
