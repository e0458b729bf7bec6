#include "sim/oracle.h"

#include <algorithm>
#include <bit>

#include "core/assert.h"
#include "sim/sim_disk.h"

namespace ditto::sim {

BlockOracle::BlockOracle(std::uint64_t block_count, std::uint32_t nodes)
    : lineage_(block_count, 0),
      up_to_date_peer_copies_(block_count, 0),
      nodes_(nodes, std::vector<std::uint64_t>(block_count, 0)),
      unpromised_(nodes, std::vector<std::uint64_t>(block_count, 0)) {
  DITTO_ASSERT(block_count > 0);
  DITTO_ASSERT(nodes >= 1 && nodes <= 32);
}

void BlockOracle::write_issued(std::uint64_t first_block, std::uint32_t block_count,
                               std::uint64_t tag) {
  DITTO_ASSERT(tag != 0 && (tag & torn_tag_bit) == 0);  // 0 stands for "never written"
  DITTO_ASSERT(block_count >= 1 && block_count < 32);
  DITTO_ASSERT(first_block + block_count <= lineage_.size());
  if (ranges_.size() <= tag) {
    ranges_.resize(tag + 1, 0);
    acknowledged_.resize(tag + 1, false);
  }
  DITTO_ASSERT(ranges_[tag] == 0);  // tags are unique
  ranges_[tag] = (first_block << 5) | block_count;
}

bool BlockOracle::covers(std::uint64_t tag, std::uint64_t block) const {
  if (tag >= ranges_.size()) return false;
  const std::uint64_t first = ranges_[tag] >> 5;
  const std::uint64_t count = ranges_[tag] & 31u;
  return block >= first && block < first + count;
}

void BlockOracle::write_acknowledged(std::uint64_t tag, Holders holders) {
  DITTO_ASSERT(tag < ranges_.size() && ranges_[tag] != 0);
  DITTO_ASSERT(!acknowledged_[tag]);
  DITTO_ASSERT((holders.promised & holders.unpromised) == 0);
  acknowledged_[tag] = true;
  const std::uint64_t first = ranges_[tag] >> 5;
  const std::uint64_t count = ranges_[tag] & 31u;
  for (std::uint64_t block = first; block < first + count; ++block) {
    // One write per block at a time: nothing newer can have been acknowledged already.
    DITTO_ASSERT(lineage_[block] < tag);
    lineage_[block] = tag;
    up_to_date_peer_copies_[block] =
        static_cast<std::uint8_t>(std::popcount(holders.up_to_date_peers & holders.promised));
    for (std::uint32_t node = 0; node < nodes_.size(); ++node) {
      if ((holders.promised >> node) & 1u) nodes_[node][block] = tag;
      if ((holders.unpromised >> node) & 1u) unpromised_[node][block] = tag;
    }
  }
}

void BlockOracle::disk_attached(std::uint32_t node) {
  DITTO_ASSERT(node < nodes_.size());
  for (std::uint64_t block = 0; block < lineage_.size(); ++block) {
    std::uint64_t& promised = nodes_[node][block];
    std::uint64_t& unpromised = unpromised_[node][block];
    unpromised = std::max(unpromised, promised);
    promised = 0;
  }
  DITTO_ASSERT(std::all_of(nodes_[node].begin(), nodes_[node].end(),
                           [](std::uint64_t tag) { return tag == 0; }));
}

FailoverLoss BlockOracle::failover(std::uint32_t node, std::span<const std::uint64_t> image) {
  DITTO_ASSERT(node < nodes_.size());
  DITTO_ASSERT(image.size() == lineage_.size());
  FailoverLoss loss;
  for (std::uint64_t block = 0; block < lineage_.size(); ++block) {
    // On the disk: the last acknowledged write itself, or a later write to the block (issued
    // after it was acknowledged). A torn block does not count as held; one that fails its
    // checksum over such a write does (a detected error: reads go to a peer or fail).
    const std::uint64_t stored = image[block] & ~unreadable_tag_bit;
    const bool clean = (stored & torn_tag_bit) == 0;
    const bool on_disk = clean && lineage_[block] != 0 &&
                         (stored == lineage_[block] ||
                          (stored > lineage_[block] && covers(stored, block)));
    if (lineage_[block] == nodes_[node][block] || on_disk) {
      nodes_[node][block] = lineage_[block];
      continue;
    }
    loss.blocks += 1;
    if (up_to_date_peer_copies_[block] == 0) loss.single_copy += 1;
    lineage_[block] = nodes_[node][block];
    up_to_date_peer_copies_[block] = copies_unknown;
  }
  return loss;
}

void BlockOracle::split_started() {
  at_split_ = nodes_;
}

std::uint64_t BlockOracle::split_brain_discard(std::uint32_t victim, std::uint32_t survivor) {
  DITTO_ASSERT(victim < nodes_.size() && survivor < nodes_.size() && victim != survivor);
  // Without split_started (a split brain the script did not make), every difference counts.
  const bool since_split = !at_split_.empty();
  std::uint64_t discarded = 0;
  for (std::uint64_t block = 0; block < lineage_.size(); ++block) {
    const std::uint64_t kept = nodes_[survivor][block];
    if (nodes_[victim][block] != kept &&
        (!since_split || nodes_[victim][block] != at_split_[victim][block])) {
      discarded += 1;
    }
    nodes_[victim][block] = kept;
    lineage_[block] = kept;
    up_to_date_peer_copies_[block] = copies_unknown;
  }
  return discarded;
}

bool BlockOracle::allowed_after(std::uint64_t baseline, std::uint64_t block,
                                std::uint64_t tag) const {
  // A block that fails its checksum reads as EIO, never as data: an I/O error is allowed.
  if ((tag & unreadable_tag_bit) != 0) return true;
  // A torn block mixes sectors of a write with older ones: the write must be allowed.
  const std::uint64_t written = tag & ~torn_tag_bit;
  if (written == baseline && written == tag) return true;
  return written > baseline && covers(written, block);
}

bool BlockOracle::allowed(std::uint64_t block, std::uint64_t tag) const {
  return allowed_after(lineage_.at(block), block, tag);
}

bool BlockOracle::allowed_on(std::uint32_t node, std::uint64_t block, std::uint64_t tag) const {
  return allowed_after(nodes_.at(node).at(block), block, tag);
}

bool BlockOracle::acknowledged(std::uint64_t tag) const {
  return tag < acknowledged_.size() && acknowledged_[tag];
}

void BlockOracle::check(std::string_view where, std::uint64_t first_block,
                        std::span<const std::uint64_t> observed, Violations& violations) const {
  for (std::size_t index = 0; index < observed.size(); ++index) {
    const std::uint64_t block = first_block + index;
    if (allowed(block, observed[index])) continue;
    violations.add(std::string(where) + ": block " + std::to_string(block) + " holds tag " +
                   std::to_string(observed[index]) + ", expected " +
                   describe_expected(lineage_[block]));
  }
}

std::uint64_t BlockOracle::check_node(std::string_view where, std::uint32_t node,
                                      std::span<const std::uint64_t> image,
                                      Violations& violations) const {
  DITTO_ASSERT(image.size() == lineage_.size());
  std::uint64_t unpromised_overwritten = 0;
  for (std::uint64_t block = 0; block < image.size(); ++block) {
    // Or what the lineage allows: a resync from the current Primary's lineage replaces what
    // this node had with what the client was promised (after a failover that lost writes the
    // node once held, that is less).
    if (allowed_on(node, block, image[block]) || allowed(block, image[block])) {
      const std::uint64_t unpromised = unpromised_[node][block];
      if (unpromised > nodes_[node][block] &&
          !allowed_after(unpromised, block, image[block])) {
        unpromised_overwritten += 1;
      }
      continue;
    }
    violations.add(std::string(where) + ": block " + std::to_string(block) + " holds tag " +
                   std::to_string(image[block]) + ", expected " +
                   describe_expected(nodes_[node][block]) + " (this node had it)");
  }
  return unpromised_overwritten;
}

std::string BlockOracle::describe_expected(std::uint64_t baseline) const {
  return "tag " + std::to_string(baseline) + " (last acknowledged) or a later write to the block";
}

}  // namespace ditto::sim
