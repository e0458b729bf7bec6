// The SyncTarget's resync rate controller (drbd9-semantics.md §5.4, DRBD's dynamic resync
// speed controller), as a pure value: once per step it is told how many sectors of resync
// replies came in since the previous step, how many are still in flight and how long the step
// lasted, and it answers how many sectors to request in the next step.
//
//   - c_plan_ahead 0: a fixed rate, resync_rate for the step's duration.
//   - otherwise it wants `want` sectors in flight: c_fill_target, or with c_fill_target 0 what
//     arrives in c_delay_target (the rate of the last step times the delay target); at the
//     start (nothing in flight, nothing came in) resync_rate's share of the plan-ahead horizon.
//     The difference to what is in flight and already planned is spread over the next
//     c_plan_ahead steps (a FIFO of planned corrections); the step requests what came in (the
//     rate of the last step, scaled to a 100 ms step) plus the correction planned for it, never
//     below 0, and at most c_max_rate for the step's duration (c_max_rate 0: no cap).
//
// The step's duration is measured, not assumed: a step may be taken early, when everything
// requested came in before the 100 ms were over (the node does so), and the rate of that short
// step is scaled to a full step. Durations are clamped to [1 ns, 1 s].
#pragma once

#include <cstdint>
#include <vector>

#include "core/types.h"

namespace ditto::core {

struct ResyncControllerSettings {
  std::uint32_t resync_rate_kib = 250;
  std::uint32_t c_plan_ahead_deciseconds = 20;  // steps of 100 ms; 0: fixed rate
  std::uint32_t c_fill_target_sectors = 100;    // 0: c_delay_target
  std::uint32_t c_delay_target_deciseconds = 10;
  std::uint32_t c_max_rate_kib = 102400;  // 0: no cap
};

class ResyncController {
 public:
  static constexpr Duration step_duration = Duration::from_ms(100);

  // A resync starts (or restarts): nothing planned.
  void reset();

  // One step ended: `sectors_in` arrived during it (lasting `duration`), `in_flight_sectors` are
  // requested and not yet arrived. The sectors to request in the next step.
  [[nodiscard]] std::uint64_t step(const ResyncControllerSettings& settings,
                                   std::uint64_t sectors_in, std::uint64_t in_flight_sectors,
                                   Duration duration);

  // The corrections planned for the coming steps (sum), for tests and invariants.
  std::int64_t planned_sectors() const { return planned_total_; }

 private:
  std::vector<std::int64_t> plan_;  // one planned correction per coming step, from head_
  std::size_t head_ = 0;
  std::int64_t planned_total_ = 0;
};

}  // namespace ditto::core
