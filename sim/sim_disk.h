// A simulated block device that stores one 64-bit write tag per 4 KiB block.
//
// Semantics follow dm-log-writes (simulation-anchors.md §5.2.4): a write becomes visible when it
// completes; it becomes durable when a flush submitted after its completion completes, or at
// once if it was FUA. A crash keeps or loses each write that was in flight or completed but
// unflushed, independently, as the PRNG decides; flushed and FUA writes always survive. With
// tearing on, a write in flight may also land in part (4 KiB blocks or 512 B sectors).
//
// The disk checksums like dm-integrity: every block carries a checksum of its data and the
// address it was written for, kept apart from the data. Bit rot, and both ends of a misdirected
// write (the intended blocks got new checksums but old data; the hit blocks got data written
// for another address), are detected when read: the read fails with EIO, never returns wrong
// data. Such a block holds its tag with unreadable_tag_bit set, until a write replaces it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "core/generation.h"
#include "core/node.h"
#include "core/prng.h"
#include "core/types.h"

namespace ditto::sim {

inline constexpr std::uint32_t block_size_bytes = 4096;
inline constexpr std::uint64_t sectors_per_block = block_size_bytes / sector_size_bytes;

// A block holding this bit plus a tag was torn: some of its 512-byte sectors hold that write's
// data, the others what was there before.
inline constexpr std::uint64_t torn_tag_bit = 1ull << 63;
// A block holding this bit fails its checksum (bit rot or a misdirected write): reads of it
// fail with EIO.
inline constexpr std::uint64_t unreadable_tag_bit = 1ull << 62;
inline constexpr std::uint64_t tag_flag_bits = torn_tag_bit | unreadable_tag_bit;

struct CrashReport {
  std::uint32_t writes_kept = 0;
  std::uint32_t writes_lost = 0;
  std::uint32_t writes_torn = 0;  // partly landed (whole 4 KiB blocks or 512 B sectors)
};

// What a crash may do to writes that are not durable (fault classes disk_lost_unflushed and
// disk_torn_write).
struct CrashModel {
  bool lose_unflushed = true;  // completed-but-unflushed writes may vanish
  bool tear = false;           // writes in flight may land in part
};

class SimDisk {
 public:
  explicit SimDisk(std::uint64_t size_bytes);

  std::uint64_t block_count() const { return visible_.size(); }

  // A write of `length_bytes` at `sector` (both 4 KiB aligned) that stores `tag` in every block
  // it covers. `io` identifies it until complete_write.
  void submit_write(IoId io, Sector sector, std::uint32_t length_bytes, std::uint64_t tag,
                    bool fua);
  // The same with one tag per block (a resync run copied from blocks of different writes).
  void submit_write(IoId io, Sector sector, std::span<const std::uint64_t> tags, bool fua);
  // `ok` false: the write failed with EIO and changed nothing.
  void complete_write(IoId io, bool ok = true);

  // A flush covers the writes completed before it was submitted.
  void submit_flush(IoId io);
  void complete_flush(IoId io);

  // Copies the visible tags of the blocks covered by (sector, length_bytes) into `out`.
  // Returns false (EIO, `out` cleared) when a block fails its checksum.
  [[nodiscard]] bool read(Sector sector, std::uint32_t length_bytes,
                          std::vector<std::uint64_t>& out) const;

  // Fault class disk_misdirected_write: the next write submitted lands `offset_blocks` away
  // from where it was meant to go (wrapping around the disk). Both ends fail their checksums.
  void misdirect_next_write(std::uint64_t offset_blocks);
  bool misdirect_armed() const { return misdirect_offset_blocks_ != 0; }
  // Fault class disk_bit_rot: `block` rots on the media (visible and durable). Returns whether
  // it held data (a block never written has nothing to lose).
  bool rot(std::uint64_t block);
  // The first block of the most recent completed write (hot data), 0 before any.
  std::uint64_t last_written_block() const { return last_written_block_; }

  std::uint64_t tag_at(std::uint64_t block) const { return visible_.at(block); }
  std::uint64_t durable_tag_at(std::uint64_t block) const { return durable_.at(block); }
  std::span<const std::uint64_t> visible() const { return visible_; }

  // Power loss: every write not yet durable is kept or lost (one PRNG draw each, in io order);
  // pending flushes vanish. Afterwards the visible contents are the durable ones.
  CrashReport crash(Prng& prng, CrashModel model = {});

  // A stand-in for on-disk metadata: the data generations (current, bitmap UUIDs, history) and
  // whether the data is consistent, written durably at once whenever they change (DRBD writes
  // them synchronously), read by a restarted node. A crash never loses or tears them.
  const Generations& metadata_generations() const { return metadata_; }
  bool metadata_consistent() const { return metadata_consistent_; }
  void write_metadata(const Generations& generations, bool consistent) {
    metadata_ = generations;
    metadata_consistent_ = consistent;
  }
  // The record of an unconfirmed generation (core's UnconfirmedGeneration), written with them.
  const UnconfirmedGeneration& metadata_unconfirmed() const { return metadata_unconfirmed_; }
  void write_metadata_unconfirmed(const UnconfirmedGeneration& unconfirmed) {
    metadata_unconfirmed_ = unconfirmed;
  }

  // PRIMARY_IND: the node was Primary (set before its first write as Primary, cleared when it
  // is Secondary again). A restart after a crash applies the activity log only when it is set.
  bool metadata_primary() const { return metadata_primary_; }
  void write_metadata_primary(bool primary) { metadata_primary_ = primary; }

  // The activity-log ring and the bitmap pages: real 4 KiB blocks of core's encoding, apart
  // from the data blocks. A MetadataWrite is FUA: durable when it completes. At a crash each
  // one in flight is kept or lost (one PRNG draw each, in io order) or, with tearing, lands in
  // part (each 512-byte sector old or new). Blocks never written read as zeros (absent).
  void submit_metadata_write(IoId io, core::MetadataArea area, std::uint64_t block,
                             std::vector<std::uint8_t> bytes);
  void complete_metadata_write(IoId io);
  const std::map<std::uint64_t, std::vector<std::uint8_t>>& metadata_blocks(
      core::MetadataArea area) const {
    return area == core::MetadataArea::activity_log ? al_blocks_ : bitmap_pages_;
  }

  // Test hook for oracle self-tests: overwrite a block behind everyone's back.
  void corrupt_for_test(std::uint64_t block, std::uint64_t tag);

  std::size_t writes_in_flight() const { return in_flight_.size(); }
  std::size_t writes_unflushed() const { return unflushed_.size(); }

 private:
  static constexpr std::uint64_t no_block = ~0ull;
  struct Write {
    std::uint64_t first_block = 0;
    std::uint32_t block_count = 0;
    std::uint64_t tag = 0;
    bool fua = false;
    std::uint64_t misdirected_to = no_block;  // first block the data really went to
    // One tag per block instead of `tag` (shared: writes are copied while they wait).
    std::shared_ptr<std::vector<std::uint64_t>> tags;
    std::uint64_t tag_of(std::uint32_t index) const { return tags ? (*tags)[index] : tag; }
  };
  struct CompletedWrite {
    std::uint64_t completion = 0;  // completion order
    Write write;
  };

  std::pair<std::uint64_t, std::uint32_t> blocks_of(Sector sector,
                                                    std::uint32_t length_bytes) const;
  void submit(IoId io, Write write);
  void apply(std::vector<std::uint64_t>& image, const Write& write) const;
  // Makes `write` durable unless a newer write (by completion order) already is.
  void make_durable(const Write& write, std::uint64_t completion);
  // A write in flight at a crash lands in part: whole blocks or, in one block, some sectors.
  void tear(Prng& prng, const Write& write);
  void crash_metadata(Prng& prng, CrashModel model);

  std::vector<std::uint64_t> visible_;
  std::vector<std::uint64_t> durable_;
  std::vector<std::uint64_t> durable_completion_;   // per block: completion order of durable_
  // Few I/Os are in flight at a time: flat vectors beat node-based maps (no allocation per I/O).
  std::vector<std::pair<std::uint64_t, Write>> in_flight_;      // (IoId, write), unordered
  std::vector<CompletedWrite> unflushed_;                       // in completion order
  std::vector<std::pair<std::uint64_t, std::uint64_t>> flushes_;  // (IoId, completion mark)
  std::uint64_t completions_ = 0;
  std::uint64_t misdirect_offset_blocks_ = 0;
  std::uint64_t last_written_block_ = 0;
  Generations metadata_{1, {}, {}};
  bool metadata_consistent_ = true;
  bool metadata_primary_ = false;
  UnconfirmedGeneration metadata_unconfirmed_;
  struct MetadataBlockWrite {
    core::MetadataArea area = core::MetadataArea::activity_log;
    std::uint64_t block = 0;
    std::vector<std::uint8_t> bytes;
  };
  std::map<std::uint64_t, std::vector<std::uint8_t>>& area_blocks(core::MetadataArea area) {
    return area == core::MetadataArea::activity_log ? al_blocks_ : bitmap_pages_;
  }
  std::map<std::uint64_t, MetadataBlockWrite> metadata_in_flight_;  // by IoId
  std::map<std::uint64_t, std::vector<std::uint8_t>> al_blocks_;
  std::map<std::uint64_t, std::vector<std::uint8_t>> bitmap_pages_;
};

}  // namespace ditto::sim
