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

void SimDisk::apply(std::vector<std::uint64_t>& image, const Write& write) {
  std::fill_n(image.begin() + static_cast<std::ptrdiff_t>(write.first_block), write.block_count,
              write.tag);
}

void SimDisk::submit_write(IoId io, Sector sector, std::uint32_t length_bytes, std::uint64_t tag,
                           bool fua) {
  const auto [first_block, count] = blocks_of(sector, length_bytes);
  const bool inserted = in_flight_.emplace(io.value, Write{first_block, count, tag, fua}).second;
  DITTO_ASSERT(inserted);  // core never reuses an IoId while it is in flight
}

void SimDisk::complete_write(IoId io, bool ok) {
  auto found = in_flight_.find(io.value);
  DITTO_ASSERT(found != in_flight_.end());
  const Write write = found->second;
  in_flight_.erase(found);
  if (!ok) return;
  apply(visible_, write);
  completions_ += 1;
  if (write.fua) {
    make_durable(write, completions_);
    return;
  }
  unflushed_.push_back(CompletedWrite{completions_, write});
}

void SimDisk::make_durable(const Write& write, std::uint64_t completion) {
  for (std::uint32_t index = 0; index < write.block_count; ++index) {
    const std::uint64_t block = write.first_block + index;
    if (durable_completion_[block] > completion) continue;  // a newer FUA write is durable
    durable_[block] = write.tag;
    durable_completion_[block] = completion;
  }
}

void SimDisk::submit_flush(IoId io) {
  const bool inserted = flushes_.emplace(io.value, completions_).second;
  DITTO_ASSERT(inserted);
}

void SimDisk::complete_flush(IoId io) {
  auto found = flushes_.find(io.value);
  DITTO_ASSERT(found != flushes_.end());
  const std::uint64_t mark = found->second;
  flushes_.erase(found);
  // unflushed_ is in completion order, so the covered writes are a prefix.
  auto covered_end =
      std::find_if(unflushed_.begin(), unflushed_.end(),
                   [&](const CompletedWrite& entry) { return entry.completion > mark; });
  for (auto entry = unflushed_.begin(); entry != covered_end; ++entry) {
    make_durable(entry->write, entry->completion);
  }
  unflushed_.erase(unflushed_.begin(), covered_end);
}

void SimDisk::read(Sector sector, std::uint32_t length_bytes,
                   std::vector<std::uint64_t>& out) const {
  const auto [first_block, count] = blocks_of(sector, length_bytes);
  out.assign(visible_.begin() + static_cast<std::ptrdiff_t>(first_block),
             visible_.begin() + static_cast<std::ptrdiff_t>(first_block + count));
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
      durable_[block] = torn_tag_bit | write.tag;
    } else if (prng.chance(1, 2)) {
      durable_[block] = write.tag;
    } else {
      continue;
    }
    durable_completion_[block] = completions_;
  }
}

void SimDisk::corrupt_for_test(std::uint64_t block, std::uint64_t tag) {
  visible_.at(block) = tag;
  durable_.at(block) = tag;
}

}  // namespace ditto::sim
