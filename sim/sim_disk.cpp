#include "sim/sim_disk.h"

#include <algorithm>

#include "core/assert.h"

namespace ditto::sim {

SimDisk::SimDisk(std::uint64_t size_bytes)
    : visible_(size_bytes / block_size_bytes, 0),
      durable_(size_bytes / block_size_bytes, 0),
      durable_completion_(size_bytes / block_size_bytes, 0) {
  DITTO_ASSERT(size_bytes % block_size_bytes == 0);
  DITTO_ASSERT(!visible_.empty());
}

std::pair<std::uint64_t, std::uint32_t> SimDisk::blocks_of(Sector sector,
                                                           std::uint32_t length_bytes) const {
  // The simulator's workloads issue 4 KiB aligned I/O only, and core forwards it unchanged.
  DITTO_ASSERT(sector.value % sectors_per_block == 0);
  DITTO_ASSERT(length_bytes > 0 && length_bytes % block_size_bytes == 0);
  const std::uint64_t first_block = sector.value / sectors_per_block;
  const std::uint32_t count = length_bytes / block_size_bytes;
  DITTO_ASSERT(first_block + count <= visible_.size());
  return {first_block, count};
}

namespace {
template <typename Entries>
auto find_io(Entries& entries, std::uint64_t io) {
  return std::find_if(entries.begin(), entries.end(),
                      [&](const auto& entry) { return entry.first == io; });
}
}  // namespace

void SimDisk::apply(std::vector<std::uint64_t>& image, const Write& write) const {
  for (const std::uint64_t first : {write.first_block, write.misdirected_to}) {
    if (first == no_block) continue;
    for (std::uint32_t index = 0; index < write.block_count; ++index) {
      image[first + index] = write.tag_of(index);
    }
  }
}

void SimDisk::submit_write(IoId io, Sector sector, std::uint32_t length_bytes, std::uint64_t tag,
                           bool fua) {
  const auto [first_block, count] = blocks_of(sector, length_bytes);
  submit(io, Write{first_block, count, tag, fua, no_block, nullptr});
}

void SimDisk::submit_write(IoId io, Sector sector, std::span<const std::uint64_t> tags, bool fua) {
  const auto length_bytes = static_cast<std::uint32_t>(tags.size() * block_size_bytes);
  const auto [first_block, count] = blocks_of(sector, length_bytes);
  auto copied = std::make_shared<std::vector<std::uint64_t>>(tags.begin(), tags.end());
  submit(io, Write{first_block, count, 0, fua, no_block, std::move(copied)});
}

void SimDisk::submit(IoId io, Write write) {
  // A resync may copy a torn block (its tag keeps torn_tag_bit); nothing copies an unreadable one.
  for (std::uint32_t index = 0; index < write.block_count; ++index) {
    DITTO_ASSERT((write.tag_of(index) & unreadable_tag_bit) == 0);
  }
  // core never reuses an IoId while it is in flight
  DITTO_ASSERT(find_io(in_flight_, io.value) == in_flight_.end());
  const std::uint32_t count = write.block_count;
  if (misdirect_offset_blocks_ != 0) {
    // dm-integrity writes the checksums where they belong and the data elsewhere: both the
    // intended and the hit blocks fail their checksums from now on.
    const std::uint64_t positions = visible_.size() - count + 1;
    std::uint64_t target = (write.first_block + misdirect_offset_blocks_) % positions;
    if (target == write.first_block) target = (target + 1) % positions;
    write.misdirected_to = target;
    write.tag |= unreadable_tag_bit;
    if (write.tags) {
      auto marked = std::make_shared<std::vector<std::uint64_t>>(*write.tags);
      for (std::uint64_t& tag : *marked) tag |= unreadable_tag_bit;
      write.tags = std::move(marked);
    }
    misdirect_offset_blocks_ = 0;
  }
  in_flight_.emplace_back(io.value, std::move(write));
}

void SimDisk::complete_write(IoId io, bool ok) {
  auto found = find_io(in_flight_, io.value);
  DITTO_ASSERT(found != in_flight_.end());
  const Write write = found->second;
  *found = in_flight_.back();
  in_flight_.pop_back();
  if (!ok) return;
  apply(visible_, write);
  last_written_block_ = write.first_block;
  completions_ += 1;
  if (write.fua) {
    make_durable(write, completions_);
    return;
  }
  unflushed_.push_back(CompletedWrite{completions_, write});
}

void SimDisk::make_durable(const Write& write, std::uint64_t completion) {
  for (const std::uint64_t first : {write.first_block, write.misdirected_to}) {
    if (first == no_block) continue;
    for (std::uint32_t index = 0; index < write.block_count; ++index) {
      const std::uint64_t block = first + index;
      if (durable_completion_[block] > completion) continue;  // a newer FUA write is durable
      durable_[block] = write.tag_of(index);
      durable_completion_[block] = completion;
    }
  }
}

void SimDisk::submit_flush(IoId io) {
  DITTO_ASSERT(find_io(flushes_, io.value) == flushes_.end());
  flushes_.emplace_back(io.value, completions_);
}

void SimDisk::complete_flush(IoId io) {
  auto found = find_io(flushes_, io.value);
  DITTO_ASSERT(found != flushes_.end());
  const std::uint64_t mark = found->second;
  *found = flushes_.back();
  flushes_.pop_back();
  // unflushed_ is in completion order, so the covered writes are a prefix.
  auto covered_end =
      std::find_if(unflushed_.begin(), unflushed_.end(),
                   [&](const CompletedWrite& entry) { return entry.completion > mark; });
  for (auto entry = unflushed_.begin(); entry != covered_end; ++entry) {
    make_durable(entry->write, entry->completion);
  }
  unflushed_.erase(unflushed_.begin(), covered_end);
}

bool SimDisk::read(Sector sector, std::uint32_t length_bytes,
                   std::vector<std::uint64_t>& out) const {
  const auto [first_block, count] = blocks_of(sector, length_bytes);
  const auto begin = visible_.begin() + static_cast<std::ptrdiff_t>(first_block);
  const auto end = begin + count;
  if (std::any_of(begin, end, [](std::uint64_t tag) { return (tag & unreadable_tag_bit) != 0; })) {
    out.clear();
    return false;
  }
  out.assign(begin, end);
  return true;
}

void SimDisk::misdirect_next_write(std::uint64_t offset_blocks) {
  DITTO_ASSERT(visible_.size() >= 2);
  misdirect_offset_blocks_ = std::max<std::uint64_t>(offset_blocks % visible_.size(), 1);
}

bool SimDisk::rot(std::uint64_t block) {
  DITTO_ASSERT(block < visible_.size());
  const bool held_data = (visible_[block] & ~tag_flag_bits) != 0;
  visible_[block] |= unreadable_tag_bit;
  durable_[block] |= unreadable_tag_bit;
  return held_data;
}

CrashReport SimDisk::crash(Prng& prng, CrashModel model) {
  CrashReport report;
  const std::size_t total = unflushed_.size() + in_flight_.size();
  // Completed-but-unflushed writes in completion order, then the ones in flight in io order;
  // a write in flight that lands counts as newer than every completed one.
  for (const CompletedWrite& entry : unflushed_) {
    if (model.lose_unflushed && !prng.chance(1, 2)) continue;
    make_durable(entry.write, entry.completion);
    report.writes_kept += 1;
  }
  // In IoId order, so the PRNG draws do not depend on completion order.
  std::sort(in_flight_.begin(), in_flight_.end(),
            [](const auto& left, const auto& right) { return left.first < right.first; });
  for (const auto& [io, write] : in_flight_) {
    if (model.tear && prng.chance(1, 3)) {
      tear(prng, write);
      report.writes_torn += 1;
      continue;
    }
    if (!prng.chance(1, 2)) continue;
    completions_ += 1;
    make_durable(write, completions_);
    report.writes_kept += 1;
  }
  report.writes_lost = static_cast<std::uint32_t>(total) - report.writes_kept - report.writes_torn;
  // Metadata writes are not counted in the report: it describes the data the oracles check.
  crash_metadata(prng, model);
  unflushed_.clear();
  in_flight_.clear();
  flushes_.clear();
  visible_ = durable_;
  DITTO_ASSERT(report.writes_kept + report.writes_torn <= total);
  return report;
}

void SimDisk::tear(Prng& prng, const Write& write) {
  completions_ += 1;
  // One block keeps some of its old sectors (a 512 B tear); the others land or not (4 KiB).
  const std::uint64_t torn_block = write.first_block + prng.below(write.block_count);
  for (std::uint32_t index = 0; index < write.block_count; ++index) {
    const std::uint64_t block = write.first_block + index;
    if (block == torn_block) {
      durable_[block] = torn_tag_bit | write.tag_of(index);
    } else if (prng.chance(1, 2)) {
      durable_[block] = write.tag_of(index);
    } else {
      continue;
    }
    durable_completion_[block] = completions_;
  }
}

void SimDisk::submit_metadata_write(IoId io, core::MetadataArea area, std::uint64_t block,
                                    std::vector<std::uint8_t> bytes) {
  DITTO_ASSERT(bytes.size() == block_size_bytes);
  DITTO_ASSERT(metadata_in_flight_.count(io.value) == 0);
  metadata_in_flight_[io.value] = MetadataBlockWrite{area, block, std::move(bytes)};
}

void SimDisk::complete_metadata_write(IoId io) {
  auto found = metadata_in_flight_.find(io.value);
  DITTO_ASSERT(found != metadata_in_flight_.end());
  area_blocks(found->second.area)[found->second.block] = std::move(found->second.bytes);
  metadata_in_flight_.erase(found);
}

// A metadata write in flight at a crash (std::map: in io order, so the draws are deterministic).
void SimDisk::crash_metadata(Prng& prng, CrashModel model) {
  for (auto& [io, write] : metadata_in_flight_) {
    std::vector<std::uint8_t>& block = area_blocks(write.area)[write.block];
    if (block.empty()) block.assign(block_size_bytes, 0);
    if (model.tear && prng.chance(1, 3)) {
      for (std::uint32_t sector = 0; sector < sectors_per_block; ++sector) {
        if (!prng.chance(1, 2)) continue;
        const auto offset = static_cast<std::ptrdiff_t>(sector * sector_size_bytes);
        std::copy_n(write.bytes.begin() + offset, sector_size_bytes, block.begin() + offset);
      }
      continue;
    }
    if (prng.chance(1, 2)) block = write.bytes;
  }
  metadata_in_flight_.clear();
}

void SimDisk::corrupt_for_test(std::uint64_t block, std::uint64_t tag) {
  visible_.at(block) = tag;
  durable_.at(block) = tag;
}

}  // namespace ditto::sim
