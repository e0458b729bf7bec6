// The activity log (drbd9-semantics.md §4.2): the set of 4 MiB extents that may hold writes not
// yet known to be on every disk, bounded by `al-extents` slots with LRU replacement. Before a
// write to an inactive extent may be submitted, a transaction making the extent active must be
// durable; after a crash, every extent in the log is resynced (apply-al). Pure: the caller writes
// the transaction blocks (core/metadata.h) and the bitmap pages of evicted extents.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "core/metadata.h"

namespace ditto {

class ActivityLog {
 public:
  static constexpr std::uint64_t extent_sectors = 8192;  // 4 MiB (AL_EXTENT_SHIFT 22)
  static constexpr std::uint32_t al_extents_max = 65534;
  // A Node's log must hold every extent of one write: a write of wire::payload_size_max_bytes
  // (32 MiB) at any offset spans at most 9 extents (DRBD: al-extents >= 67, bios <= 1 MiB).
  static constexpr std::uint32_t node_al_extents_min = 9;

  static constexpr std::uint32_t extent_of(std::uint64_t sector) {
    return static_cast<std::uint32_t>(sector / extent_sectors);
  }

  enum class BeginStatus {
    ready,               // every extent is active and committed: submit the I/O now
    transaction_needed,  // references taken; wait until the pending transaction is durable
    busy,                // no slot can be freed now (all referenced); nothing taken, retry later
  };

  struct Update {
    std::uint16_t slot = 0;
    std::uint32_t extent = 0;
    std::uint32_t evicted_extent = metadata::al_free_extent;  // bitmap pages to write first
    friend bool operator==(const Update&, const Update&) = default;
  };

  struct BeginResult {
    BeginStatus status = BeginStatus::ready;
    std::vector<Update> updates;  // slots this call newly assigned
  };

  explicit ActivityLog(std::uint32_t al_extents, std::uint32_t first_tr_number = 0);

  std::uint32_t capacity() const { return static_cast<std::uint32_t>(slots_.size()); }
  // Extents some write still references (DRBD's act_log->used, what congestion-extents counts).
  std::uint32_t extents_in_use() const {
    return static_cast<std::uint32_t>(slots_.size() - free_slots_.size() - idle_.size());
  }

  // Takes a reference on every extent of [first_sector, first_sector + sector_count).
  BeginResult begin_io(std::uint64_t first_sector, std::uint64_t sector_count);
  // Drops the references begin_io took (the write is on every disk it must reach).
  void complete_io(std::uint64_t first_sector, std::uint64_t sector_count);

  // True when every extent of the range is active and its transaction is durable.
  bool range_committed(std::uint64_t first_sector, std::uint64_t sector_count) const;
  bool has_pending_updates() const { return !pending_.empty(); }
  bool transaction_in_flight() const { return !in_flight_.empty(); }

  // Moves the pending updates into a transaction for the caller to write (at block
  // metadata::al_block_index(tr_number, ...)). Only one transaction is in flight at a time.
  metadata::AlTransaction take_transaction();
  // The transaction from take_transaction() is durable: its extents become committed.
  void transaction_written();

  // Every active extent, ascending (what apply-al would mark out of sync after a crash now).
  std::vector<std::uint32_t> hot_extents() const;

 private:
  enum class SlotState { free, pending, in_flight, committed };
  struct Slot {
    std::uint32_t extent = metadata::al_free_extent;
    std::uint32_t committed_extent = metadata::al_free_extent;  // as of the last transaction
    std::uint32_t references = 0;
    SlotState state = SlotState::free;
  };

  void reference(std::uint16_t slot_index);
  std::optional<std::uint16_t> claim_slot();
  void invariants() const;

  std::vector<Slot> slots_;
  std::unordered_map<std::uint32_t, std::uint16_t> slot_of_extent_;
  std::vector<std::uint16_t> free_slots_;
  std::map<std::uint64_t, std::uint16_t> idle_;  // unreferenced committed slots by last use
  std::unordered_map<std::uint16_t, std::uint64_t> idle_stamp_;
  std::uint64_t clock_ = 0;
  std::vector<Update> pending_;
  std::vector<Update> in_flight_;
  std::uint32_t next_tr_number_;
  std::uint32_t context_start_ = 0;
};

// apply-al's replay: the extents the on-disk log names as active after its newest transaction.
// `blocks` are the decoded blocks of the ring (std::nullopt for an invalid block), in any order.
std::vector<std::uint32_t> replay_activity_log(
    std::span<const std::optional<metadata::AlTransaction>> blocks);

}  // namespace ditto
