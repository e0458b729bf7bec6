// A simulated block device that stores one 64-bit write tag per 4 KiB block.
//
// Semantics follow dm-log-writes (simulation-anchors.md §5.2.4): a write becomes visible when it
// completes; it becomes durable when a flush submitted after its completion completes, or at
// once if it was FUA. A crash keeps or loses each write that was in flight or completed but
// unflushed, independently, as the PRNG decides; flushed and FUA writes always survive.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "core/prng.h"
#include "core/types.h"

namespace ditto::sim {

inline constexpr std::uint32_t block_size_bytes = 4096;
inline constexpr std::uint64_t sectors_per_block = block_size_bytes / sector_size_bytes;

struct CrashReport {
  std::uint32_t writes_kept = 0;
  std::uint32_t writes_lost = 0;
};

class SimDisk {
 public:
  explicit SimDisk(std::uint64_t size_bytes);

  std::uint64_t block_count() const { return visible_.size(); }

  // A write of `length_bytes` at `sector` (both 4 KiB aligned) that stores `tag` in every block
  // it covers. `io` identifies it until complete_write.
  void submit_write(IoId io, Sector sector, std::uint32_t length_bytes, std::uint64_t tag,
                    bool fua);
  void complete_write(IoId io);

  // A flush covers the writes completed before it was submitted.
  void submit_flush(IoId io);
  void complete_flush(IoId io);

  // Copies the visible tags of the blocks covered by (sector, length_bytes) into `out`.
  void read(Sector sector, std::uint32_t length_bytes, std::vector<std::uint64_t>& out) const;

  std::uint64_t tag_at(std::uint64_t block) const { return visible_.at(block); }
  std::uint64_t durable_tag_at(std::uint64_t block) const { return durable_.at(block); }
  std::span<const std::uint64_t> visible() const { return visible_; }

  // Power loss: every write not yet durable is kept or lost (one PRNG draw each, in io order);
  // pending flushes vanish. Afterwards the visible contents are the durable ones.
  CrashReport crash(Prng& prng);

  // Test hook for oracle self-tests: overwrite a block behind everyone's back.
  void corrupt_for_test(std::uint64_t block, std::uint64_t tag);

  std::size_t writes_in_flight() const { return in_flight_.size(); }
  std::size_t writes_unflushed() const { return unflushed_.size(); }

 private:
  struct Write {
    std::uint64_t first_block = 0;
    std::uint32_t block_count = 0;
    std::uint64_t tag = 0;
    bool fua = false;
  };
  struct CompletedWrite {
    std::uint64_t completion = 0;  // completion order
    Write write;
  };

  std::pair<std::uint64_t, std::uint32_t> blocks_of(Sector sector,
                                                    std::uint32_t length_bytes) const;
  static void apply(std::vector<std::uint64_t>& image, const Write& write);
  // Makes `write` durable unless a newer write (by completion order) already is.
  void make_durable(const Write& write, std::uint64_t completion);

  std::vector<std::uint64_t> visible_;
  std::vector<std::uint64_t> durable_;
  std::vector<std::uint64_t> durable_completion_;   // per block: completion order of durable_
  std::map<std::uint64_t, Write> in_flight_;        // by IoId
  std::vector<CompletedWrite> unflushed_;           // in completion order
  std::map<std::uint64_t, std::uint64_t> flushes_;  // IoId → completion mark
  std::uint64_t completions_ = 0;
};

}  // namespace ditto::sim
