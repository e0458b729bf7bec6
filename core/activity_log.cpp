// Activity log of 4 MiB extents with LRU replacement.
#include "core/activity_log.h"

#include <algorithm>

#include "core/assert.h"

namespace ditto {

using metadata::al_free_extent;

ActivityLog::ActivityLog(std::uint32_t al_extents, std::uint32_t first_tr_number)
    : slots_(al_extents), next_tr_number_(first_tr_number) {
  DITTO_ASSERT(al_extents >= 1 && al_extents <= al_extents_max);
  free_slots_.reserve(al_extents);
  for (std::uint32_t slot = al_extents; slot > 0; --slot) {
    free_slots_.push_back(static_cast<std::uint16_t>(slot - 1));
  }
  invariants();
}

void ActivityLog::invariants() const {
  DITTO_ASSERT(free_slots_.size() + slot_of_extent_.size() == slots_.size());
  DITTO_ASSERT(idle_.size() == idle_stamp_.size());
  DITTO_ASSERT(pending_.size() <= metadata::al_updates_per_transaction);
}

void ActivityLog::reference(std::uint16_t slot_index) {
  Slot& slot = slots_[slot_index];
  if (slot.references++ == 0 && slot.state == SlotState::committed) {
    const auto stamp = idle_stamp_.find(slot_index);
    DITTO_ASSERT(stamp != idle_stamp_.end());
    idle_.erase(stamp->second);
    idle_stamp_.erase(stamp);
  }
}

// A free slot, else the least recently used idle one (evicting its extent).
std::optional<std::uint16_t> ActivityLog::claim_slot() {
  if (!free_slots_.empty()) {
    const std::uint16_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  if (idle_.empty()) return std::nullopt;
  const std::uint16_t slot = idle_.begin()->second;
  idle_.erase(idle_.begin());
  idle_stamp_.erase(slot);
  slot_of_extent_.erase(slots_[slot].extent);
  return slot;
}

ActivityLog::BeginResult ActivityLog::begin_io(std::uint64_t first_sector,
                                               std::uint64_t sector_count) {
  DITTO_ASSERT(sector_count > 0);
  const std::uint32_t first = extent_of(first_sector);
  const std::uint32_t last = extent_of(first_sector + sector_count - 1);
  // Decide before changing anything, so a busy answer leaves the log untouched.
  std::uint64_t missing = 0;
  std::uint64_t idle_in_range = 0;
  for (std::uint32_t extent = first; extent <= last; ++extent) {
    const auto found = slot_of_extent_.find(extent);
    if (found == slot_of_extent_.end()) {
      ++missing;
    } else if (idle_stamp_.contains(found->second)) {
      ++idle_in_range;
    }
  }
  const std::uint64_t claimable = free_slots_.size() + idle_.size() - idle_in_range;
  if (missing > claimable || pending_.size() + missing > metadata::al_updates_per_transaction) {
    return BeginResult{BeginStatus::busy, {}};
  }
  BeginResult result;
  bool all_committed = true;
  for (std::uint32_t extent = first; extent <= last; ++extent) {
    if (const auto found = slot_of_extent_.find(extent); found != slot_of_extent_.end()) {
      reference(found->second);
      all_committed = all_committed && slots_[found->second].state == SlotState::committed;
      continue;
    }
    const std::optional<std::uint16_t> slot_index = claim_slot();
    DITTO_ASSERT(slot_index.has_value());
    Slot& slot = slots_[*slot_index];
    const Update update{*slot_index, extent, slot.extent};
    slot.extent = extent;
    slot.references = 1;
    slot.state = SlotState::pending;
    slot_of_extent_[extent] = *slot_index;
    pending_.push_back(update);
    result.updates.push_back(update);
    all_committed = false;
  }
  result.status = all_committed ? BeginStatus::ready : BeginStatus::transaction_needed;
  invariants();
  return result;
}

void ActivityLog::complete_io(std::uint64_t first_sector, std::uint64_t sector_count) {
  DITTO_ASSERT(sector_count > 0);
  const std::uint32_t last = extent_of(first_sector + sector_count - 1);
  for (std::uint32_t extent = extent_of(first_sector); extent <= last; ++extent) {
    const auto found = slot_of_extent_.find(extent);
    DITTO_ASSERT(found != slot_of_extent_.end());
    Slot& slot = slots_[found->second];
    DITTO_ASSERT(slot.references > 0);
    // An I/O may only have run after its extent's transaction was durable.
    DITTO_ASSERT(slot.state == SlotState::committed);
    if (--slot.references == 0) {
      idle_[++clock_] = found->second;
      idle_stamp_[found->second] = clock_;
    }
  }
  invariants();
}

bool ActivityLog::range_committed(std::uint64_t first_sector, std::uint64_t sector_count) const {
  DITTO_ASSERT(sector_count > 0);
  const std::uint32_t last = extent_of(first_sector + sector_count - 1);
  for (std::uint32_t extent = extent_of(first_sector); extent <= last; ++extent) {
    const auto found = slot_of_extent_.find(extent);
    if (found == slot_of_extent_.end()) return false;
    if (slots_[found->second].state != SlotState::committed) return false;
  }
  return true;
}

metadata::AlTransaction ActivityLog::take_transaction() {
  DITTO_ASSERT(in_flight_.empty());
  DITTO_ASSERT(!pending_.empty());
  metadata::AlTransaction transaction;
  transaction.tr_number = next_tr_number_++;
  transaction.transaction_type = metadata::al_type_update;
  transaction.n_updates = static_cast<std::uint16_t>(pending_.size());
  transaction.update_slots.fill(metadata::al_free_slot);
  transaction.update_extents.fill(al_free_extent);
  for (std::size_t index = 0; index < pending_.size(); ++index) {
    transaction.update_slots[index] = pending_[index].slot;
    transaction.update_extents[index] = pending_[index].extent;
    slots_[pending_[index].slot].state = SlotState::in_flight;
  }
  // A rotating window of the committed slot contents, so ceil(al-extents / 919) consecutive
  // transactions describe the whole log even after the ring wrapped.
  transaction.context_size = static_cast<std::uint16_t>(slots_.size());
  transaction.context_start_slot = static_cast<std::uint16_t>(context_start_);
  transaction.context.fill(al_free_extent);
  const std::uint32_t window =
      std::min<std::uint32_t>(metadata::al_context_per_transaction, capacity() - context_start_);
  for (std::uint32_t index = 0; index < window; ++index) {
    transaction.context[index] = slots_[context_start_ + index].committed_extent;
  }
  context_start_ += metadata::al_context_per_transaction;
  if (context_start_ >= capacity()) context_start_ = 0;
  in_flight_ = std::move(pending_);
  pending_.clear();
  invariants();
  return transaction;
}

void ActivityLog::transaction_written() {
  DITTO_ASSERT(!in_flight_.empty());
  for (const Update& update : in_flight_) {
    Slot& slot = slots_[update.slot];
    DITTO_ASSERT(slot.state == SlotState::in_flight && slot.references > 0);
    slot.state = SlotState::committed;
    slot.committed_extent = slot.extent;
  }
  in_flight_.clear();
  invariants();
}

std::vector<std::uint32_t> ActivityLog::hot_extents() const {
  std::vector<std::uint32_t> extents;
  extents.reserve(slot_of_extent_.size());
  for (const auto& [extent, slot] : slot_of_extent_) extents.push_back(extent);
  std::sort(extents.begin(), extents.end());
  return extents;
}

std::vector<std::uint32_t> replay_activity_log(
    std::span<const std::optional<metadata::AlTransaction>> blocks) {
  std::vector<const metadata::AlTransaction*> updates;
  for (const std::optional<metadata::AlTransaction>& block : blocks) {
    if (block && block->transaction_type == metadata::al_type_update) updates.push_back(&*block);
  }
  // Oldest first; transaction numbers wrap, so compare by signed 32-bit difference.
  std::sort(updates.begin(), updates.end(), [](const auto* left, const auto* right) {
    return static_cast<std::int32_t>(left->tr_number - right->tr_number) < 0;
  });
  std::map<std::uint32_t, std::uint32_t> extent_of_slot;
  for (const metadata::AlTransaction* transaction : updates) {
    for (std::uint32_t index = 0; index < metadata::al_context_per_transaction; ++index) {
      const std::uint32_t slot = transaction->context_start_slot + index;
      if (transaction->context[index] == al_free_extent && slot >= transaction->context_size) {
        continue;
      }
      if (slot < ActivityLog::al_extents_max) extent_of_slot[slot] = transaction->context[index];
    }
    for (std::uint32_t index = 0; index < metadata::al_updates_per_transaction; ++index) {
      const std::uint16_t slot = transaction->update_slots[index];
      if (index >= transaction->n_updates && slot == metadata::al_free_slot) continue;
      if (slot < ActivityLog::al_extents_max) {
        extent_of_slot[slot] = transaction->update_extents[index];
      }
    }
  }
  std::vector<std::uint32_t> extents;
  for (const auto& [slot, extent] : extent_of_slot) {
    if (extent != al_free_extent) extents.push_back(extent);
  }
  std::sort(extents.begin(), extents.end());
  extents.erase(std::unique(extents.begin(), extents.end()), extents.end());
  return extents;
}

}  // namespace ditto
