// The simulator's event queue: a binary min-heap ordered by (time, insertion sequence).
//
// The insertion sequence is the deterministic tie-break: two events at the same virtual time run
// in the order they were scheduled, so a seed replays the same schedule on every run and build.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/assert.h"
#include "core/types.h"

namespace ditto::sim {

enum class EventKind : std::uint8_t {
  workload_tick = 1,      // the client may issue more requests
  disk_completed = 2,     // node, io, incarnation
  message_delivered = 3,  // node (receiver), peer (sender), epoch, frame slot
  connection_up = 4,      // node and peer (the pair), epoch
  connection_down = 5,    // node is told its connection to peer is gone
  crash = 6,              // node crashes
  promote = 7,            // admin: promote node (the first Primary)
  timer = 8,              // node, timer id (first), deadline (second), incarnation (epoch)
  fault = 9,              // a scheduled fault fires: fault index (first)
  fault_end = 10,         // a fault's duration is over: fault index (first)
  restart = 11,           // node restarts after a crash
  resume = 12,            // node's pause ends
  operator_check = 13,    // the operator looks for a node to promote
  flap = 14,              // a flapping link resets again: node, peer, fault index (first)
  link_timeout = 15,      // TCP user timeout on a blocked connection: node, peer, epoch
  liveness_check = 16,    // the liveness oracle looks whether the healed cluster converged
  split_brain_step = 17,  // the split-brain scenario's script: step (first)
  graceful_close = 18,    // node closed its connection to peer (epoch) after what it had sent
  helper_done = 19,       // node's handler exited: call id (first), exit code (second), incarnation
  admin_step = 20,        // the admin scenario's script: step (first)
  attach = 21,            // the operator attaches node's detached disk again (after the faults)
};

// Plain data, no pointers: what the event means is in the integer fields (and, for messages, in
// a frame slot owned by the simulation).
struct SimEvent {
  Instant at;
  std::uint64_t sequence = 0;
  EventKind kind = EventKind::workload_tick;
  std::uint8_t node = 0;
  std::uint8_t peer = 0;
  std::uint32_t epoch = 0;
  std::uint32_t size = 0;
  std::uint64_t first = 0;
  std::uint64_t second = 0;
};

inline SimEvent make_event(EventKind kind, std::uint8_t node, std::uint8_t peer = 0) {
  SimEvent event;
  event.kind = kind;
  event.node = node;
  event.peer = peer;
  return event;
}

// The heap holds 16-byte keys (time; sequence and slot packed in one word) and the events sit
// in a slab with a free list: a pop moves keys, not 48-byte events (a tenth of the simulator's
// time went to heap moves with events in the heap). The heap is 4-ary (half the levels of a
// binary heap, and a node's children share a cache line) with an inlined comparison. Keys are
// unique, so the pop order, (time, sequence), does not depend on the heap's shape.
class EventQueue {
 public:
  // Schedules `event` at `event.at`; assigns its sequence number.
  void push(SimEvent event) {
    event.sequence = next_sequence_++;
    DITTO_ASSERT(event.sequence < (1ull << (64 - slot_bits)));
    std::uint32_t slot = 0;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
      slots_[slot] = event;
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      DITTO_ASSERT(slot < (1u << slot_bits));
      slots_.push_back(event);
    }
    heap_.push_back(Key{event.at.ns, (event.sequence << slot_bits) | slot});
    sift_up(heap_.size() - 1);
  }

  SimEvent pop() {
    DITTO_ASSERT(!heap_.empty());
    const auto slot = static_cast<std::uint32_t>(heap_.front().order & slot_mask);
    const Key last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(last);
    free_slots_.push_back(slot);
    return slots_[slot];
  }

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  Instant next_time() const {
    DITTO_ASSERT(!heap_.empty());
    return Instant{heap_.front().at_ns};
  }

 private:
  static constexpr unsigned slot_bits = 24;
  static constexpr std::uint64_t slot_mask = (1ull << slot_bits) - 1;
  static constexpr std::size_t arity = 4;
  struct Key {
    std::int64_t at_ns = 0;
    std::uint64_t order = 0;  // sequence << slot_bits | slot: sequences are unique
  };
  static bool earlier(const Key& left, const Key& right) {
    if (left.at_ns != right.at_ns) return left.at_ns < right.at_ns;
    return left.order < right.order;
  }

  // Moves the key at `index` up until its parent is earlier.
  void sift_up(std::size_t index) {
    const Key key = heap_[index];
    while (index > 0) {
      const std::size_t parent = (index - 1) / arity;
      if (!earlier(key, heap_[parent])) break;
      heap_[index] = heap_[parent];
      index = parent;
    }
    heap_[index] = key;
  }

  // Puts `key` in the hole at the root and moves it down below every earlier child.
  void sift_down(const Key& key) {
    const std::size_t size = heap_.size();
    std::size_t index = 0;
    for (;;) {
      const std::size_t first_child = index * arity + 1;
      if (first_child >= size) break;
      const std::size_t end_child = std::min(first_child + arity, size);
      std::size_t earliest = first_child;
      for (std::size_t child = first_child + 1; child < end_child; ++child) {
        if (earlier(heap_[child], heap_[earliest])) earliest = child;
      }
      if (!earlier(heap_[earliest], key)) break;
      heap_[index] = heap_[earliest];
      index = earliest;
    }
    heap_[index] = key;
  }

  std::vector<Key> heap_;
  std::vector<SimEvent> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace ditto::sim
