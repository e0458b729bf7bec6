// Data generation identifiers: history, bitmap slots and the rotations of §3.2.
#include "core/generation.h"

#include <algorithm>

#include "core/assert.h"

namespace ditto {
namespace {

bool node_in(std::uint32_t mask, std::uint32_t node) {
  return ((mask >> node) & 1u) != 0;
}

bool holds_uuid(const Generations& uuids, std::uint64_t value) {
  for (std::uint64_t slot : uuids.bitmap) {
    if (slot != 0 && comparable_uuid(slot) == value) return true;
  }
  for (std::uint64_t entry : uuids.history) {
    if (entry != 0 && comparable_uuid(entry) == value) return true;
  }
  return false;
}

}  // namespace

std::uint64_t comparable_current(std::uint64_t uuid) {
  const std::uint64_t masked = uuid & ~uuid_primary_bit;
  return masked == 0 ? uuid_just_created_value : masked;
}

void push_history(Generations& uuids, std::uint64_t uuid) {
  const std::uint64_t value = comparable_uuid(uuid);
  if (value == 0 || value == uuid_just_created_value) return;
  if (value == comparable_current(uuids.current)) return;
  if (uuids.history[0] == 0) {  // day 0: the first entry
    uuids.history[0] = value;
    return;
  }
  if (holds_uuid(uuids, value)) return;
  std::copy_backward(uuids.history.begin(), uuids.history.end() - 1, uuids.history.end());
  uuids.history[0] = value;
  DITTO_ASSERT(uuids.history[0] == value);
}

void set_bitmap_uuid(Generations& uuids, std::uint32_t node, std::uint64_t uuid) {
  DITTO_ASSERT(node < generation_node_slots);
  const std::uint64_t old = uuids.bitmap[node];
  uuids.bitmap[node] = uuid;
  if (old != 0 && comparable_uuid(old) != comparable_uuid(uuid)) push_history(uuids, old);
  DITTO_ASSERT(uuids.bitmap[node] == uuid);
}

bool new_current_uuid(Generations& uuids, const NewCurrentInput& input, std::uint64_t random) {
  const std::uint64_t old = uuids.current & ~uuid_primary_bit;
  bool slot_took_old = false;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (!node_in(input.rotate_into_nodes, node)) continue;
    const std::uint64_t slot = comparable_uuid(uuids.bitmap[node]);
    if (slot == 0 || slot == old) {
      // With the Primary bit as it was: after-sb's discard-younger/older-primary reads it
      // ("I was Primary when the split happened", §6); comparisons mask it.
      uuids.bitmap[node] = uuids.current;
      slot_took_old = true;
    }
  }
  if (!slot_took_old && !input.forced) return false;
  // Never produce a value that reads as "just created" or as the old generation.
  std::uint64_t fresh = random & ~uuid_primary_bit;
  if (fresh == 0 || fresh == uuid_just_created_value || fresh == old)
    fresh ^= 0x5a5a5a5a5a5a5a5aull;
  uuids.current = fresh | (input.primary ? uuid_primary_bit : 0);
  if (!slot_took_old) push_history(uuids, old);  // nobody tracks the old generation
  DITTO_ASSERT(comparable_current(uuids.current) != old);
  return true;
}

void request_new_current_uuid(GenerationState& state) {
  state.new_current_pending = true;
}

bool before_application_write(GenerationState& state, const NewCurrentInput& input,
                              std::uint64_t random) {
  if (!state.new_current_pending) return false;
  state.new_current_pending = false;
  return new_current_uuid(state.uuids, input, random);
}

void clear_primary_bit(Generations& uuids) {
  uuids.current &= ~uuid_primary_bit;
}

void receive_new_current_uuid(Generations& uuids, std::uint64_t new_current,
                              std::uint32_t weak_nodes, std::uint32_t tracked_nodes,
                              bool up_to_date) {
  const std::uint64_t old = uuids.current & ~uuid_primary_bit;
  const std::uint64_t value = new_current & ~uuid_primary_bit;
  if (comparable_current(value) == comparable_current(old)) return;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (node_in(weak_nodes, node)) {
      if (up_to_date && (uuids.bitmap[node] == 0 || comparable_uuid(uuids.bitmap[node]) == old)) {
        uuids.bitmap[node] = old;
      }
    } else if (node_in(tracked_nodes, node) && uuids.bitmap[node] != 0) {
      set_bitmap_uuid(uuids, node, value);
    }
  }
  uuids.current = value;
  push_history(uuids, old);
  DITTO_ASSERT(uuids.current == value);
}

std::uint64_t resync_target_started(Generations& uuids, std::uint32_t absent_nodes) {
  const std::uint64_t start = uuids.current & ~uuid_primary_bit;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (node_in(absent_nodes, node) && uuids.bitmap[node] == 0) uuids.bitmap[node] = start;
  }
  return start;
}

void resync_target_finished(Generations& uuids, const Generations& source, std::uint32_t self_node,
                            std::uint32_t source_node, std::uint64_t rs_start_uuid) {
  DITTO_ASSERT(self_node < generation_node_slots && source_node < generation_node_slots);
  DITTO_ASSERT(self_node != source_node);
  const std::uint64_t old = uuids.current;
  uuids.current = (source.current & ~uuid_primary_bit) | (old & uuid_primary_bit);
  for (auto entry = source.history.rbegin(); entry != source.history.rend(); ++entry) {
    push_history(uuids, *entry);
  }
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (node == self_node) continue;
    push_history(uuids, source.bitmap[node]);
    const bool source_tracks = node != source_node && source.bitmap[node] != 0;
    set_bitmap_uuid(uuids, node, source_tracks ? rs_start_uuid : 0);
  }
  push_history(uuids, old);
}

std::uint32_t source_detect_finished_resyncs(Generations& uuids, const Generations& peer) {
  if (comparable_current(uuids.current) != comparable_current(peer.current)) return 0;
  std::uint32_t cleared = 0;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (uuids.bitmap[node] != 0 && peer.bitmap[node] == 0) {
      set_bitmap_uuid(uuids, node, 0);
      cleared |= 1u << node;
    }
  }
  return cleared;
}

void user_new_current_uuid(Generations& uuids, bool primary, std::uint64_t random) {
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    set_bitmap_uuid(uuids, node, 0);
  }
  const bool bumped = new_current_uuid(uuids, NewCurrentInput{0, primary, true}, random);
  DITTO_ASSERT(bumped);
}

bool names_current(const UnconfirmedGeneration& unconfirmed, const Generations& uuids) {
  return unconfirmed.current != 0 && unconfirmed.current == comparable_current(uuids.current);
}

void roll_back_unconfirmed(Generations& uuids, const UnconfirmedGeneration& unconfirmed) {
  DITTO_ASSERT(names_current(unconfirmed, uuids));
  const std::uint64_t previous = comparable_current(unconfirmed.previous_current);
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (node_in(unconfirmed.rotated_nodes, node)) uuids.bitmap[node] = 0;
  }
  // The previous UUID goes back from the history to the current slot.
  auto held = std::find(uuids.history.begin(), uuids.history.end(), previous);
  if (held != uuids.history.end()) {
    std::copy(held + 1, uuids.history.end(), held);
    uuids.history.back() = 0;
  }
  uuids.current = unconfirmed.previous_current;
  DITTO_ASSERT(comparable_current(uuids.current) == previous);
}

namespace {

// 16 upper-case hex digits, as drbdsetup prints UUIDs.
std::string uuid_text(std::uint64_t uuid) {
  std::string text(16, '0');
  for (std::size_t digit = 0; digit < 16; ++digit) {
    text[15 - digit] = "0123456789ABCDEF"[(uuid >> (4 * digit)) & 0xf];
  }
  return text;
}

}  // namespace

bool generation_behind(const Generations& uuids, std::uint64_t uuid) {
  const auto names = [&](std::uint64_t value) { return comparable_uuid(value) == uuid; };
  return std::any_of(uuids.bitmap.begin(), uuids.bitmap.end(), names) ||
         std::any_of(uuids.history.begin(), uuids.history.end(), names);
}

// current:bitmap-UUIDs(non-zero, node=uuid):history(non-zero), as drbdsetup show-gi abridged.
std::string generations_text(const Generations& uuids) {
  std::string text = uuid_text(uuids.current) + ":";
  bool first = true;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (uuids.bitmap[node] == 0) continue;
    text += (first ? "" : ",") + std::to_string(node) + "=" + uuid_text(uuids.bitmap[node]);
    first = false;
  }
  text += ":";
  first = true;
  for (const std::uint64_t uuid : uuids.history) {
    if (uuid == 0) continue;
    text += (first ? "" : ",") + uuid_text(uuid);
    first = false;
  }
  return text;
}

}  // namespace ditto
