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

class EventQueue {
 public:
  // Schedules `event` at `event.at`; assigns its sequence number.
  void push(SimEvent event) {
    event.sequence = next_sequence_++;
    heap_.push_back(event);
    std::push_heap(heap_.begin(), heap_.end(), later);
  }

  SimEvent pop() {
    DITTO_ASSERT(!heap_.empty());
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const SimEvent event = heap_.back();
    heap_.pop_back();
    return event;
  }

  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  Instant next_time() const {
    DITTO_ASSERT(!heap_.empty());
    return heap_.front().at;
  }

 private:
  // Heap comparator: true when `left` runs after `right`.
  static bool later(const SimEvent& left, const SimEvent& right) {
    if (left.at != right.at) return left.at > right.at;
    return left.sequence > right.sequence;
  }

  std::vector<SimEvent> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace ditto::sim
