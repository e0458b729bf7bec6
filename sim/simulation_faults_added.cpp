// Fault classes added after the classic ones: misdirected writes and bit rot on a checksumming
// disk (sim/sim_disk.h), per-node clock drift and steps (sim/node_clock.h), and links that
// deliver messages twice. Also the node clocks every core input reads.
#include <algorithm>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {
using netem::FaultClass;
constexpr std::int32_t drift_parameter_zero = 10'000;  // parameter 10'000: no drift
}  // namespace

Instant Simulation::clock_of(std::uint8_t node) const {
  return clocks_[node].local(now_);
}

void Simulation::schedule_timer(std::uint8_t node, std::uint64_t timer, std::int64_t deadline_ns) {
  SimEvent event = make_event(EventKind::timer, node);
  event.epoch = nodes_[node]->incarnation;
  event.first = timer;
  event.second = static_cast<std::uint64_t>(deadline_ns);
  const Instant at = clocks_[node].simulated_time_of(Instant{deadline_ns}, now_);
  schedule(at - now_, event);
}

// After a clock change every armed timer gets an event at its new simulated time. The old
// events stay queued: whichever comes first fires the timer (on_timer checks the deadline
// against the clock), the rest find it gone.
void Simulation::reschedule_timers(std::uint8_t node) {
  if (!nodes_[node]->alive) return;
  for (const auto& [timer, deadline_ns] : nodes_[node]->timers) {
    schedule_timer(node, timer, deadline_ns);
  }
}

// The same frame once more, right behind the original (same delivery time, later sequence).
void Simulation::duplicate_message(const SimEvent& delivery) {
  const std::uint32_t slot = allocate_frame();
  frames_[slot] = frames_[static_cast<std::uint32_t>(delivery.first)];
  SimEvent copy = delivery;
  copy.first = slot;
  schedule(delivery.at - now_, copy);
  count_fired(FaultClass::message_duplication);
}

bool Simulation::fire_added_fault(const FaultEvent& fault) {
  SimNode& node = *nodes_[fault.node];
  switch (fault.fault) {
    case FaultClass::disk_misdirected_write:
      // Counted when the write it hits is submitted (a crash may disarm it first).
      if (!node.alive) return false;
      node.disk.misdirect_next_write(fault.parameter);
      return true;
    case FaultClass::disk_bit_rot: {
      bool rotted = false;
      const std::uint64_t blocks = node.disk.block_count();
      for (std::uint32_t count = 0; count < std::max<std::uint32_t>(fault.parameter, 1); ++count) {
        // Half the blocks near the most recent write (hot data), half anywhere.
        const std::uint64_t block = effect_prng_.chance(1, 2)
                                        ? (node.disk.last_written_block() + count) % blocks
                                        : effect_prng_.below(blocks);
        rotted = node.disk.rot(block) || rotted;
      }
      if (rotted) count_fired(FaultClass::disk_bit_rot);
      return rotted;
    }
    case FaultClass::clock_drift: {
      const auto parameter = static_cast<std::int32_t>(std::min<std::uint32_t>(
          fault.parameter, 2 * static_cast<std::uint32_t>(drift_parameter_zero)));
      clocks_[fault.node].set_drift(now_, parameter - drift_parameter_zero);
      reschedule_timers(fault.node);
      return true;
    }
    case FaultClass::clock_step:
      clocks_[fault.node].step(now_,
                               Duration::from_ms(std::max<std::uint32_t>(fault.parameter, 1)));
      reschedule_timers(fault.node);
      return true;
    case FaultClass::message_duplication: {
      Link& link = links_[fault.node][fault.peer];
      link.duplicate_until = std::max(link.duplicate_until, now_ + Duration{fault.duration_ns});
      link.duplicate_percent = std::min<std::uint32_t>(fault.parameter, 100);
      return true;
    }
    default:
      return false;
  }
}

void Simulation::end_added_fault(const FaultEvent& fault) {
  if (fault.fault != FaultClass::clock_drift || healed_) return;
  clocks_[fault.node].set_drift(now_, 0);  // back to the true rate, keeping the offset
  reschedule_timers(fault.node);
}

}  // namespace ditto::sim
