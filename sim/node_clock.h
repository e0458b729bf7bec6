// A node's own clock as a function of simulated time (fault classes clock_drift, clock_step).
//
// The daemon reads a monotonic clock: it never goes back, but it can run fast or slow (a
// drifting oscillator, a VM's steal time) and jump forward (a VM paused and resumed, a live
// migration). The clock is piecewise linear: from an anchor (simulated time, local time) it
// advances (1e6 + drift_ppm) / 1e6 local nanoseconds per simulated nanosecond. A fault moves
// the anchor to "now", so the clock stays continuous under a drift change and never decreases.
// Every input the simulator gives a node carries the node's local time, and a timer the node
// arms fires when its local clock reaches the deadline.
#pragma once

#include <cstdint>

#include "core/assert.h"
#include "core/types.h"

namespace ditto::sim {

class NodeClock {
 public:
  static constexpr std::int64_t ppm_scale = 1'000'000;
  static constexpr std::int32_t drift_ppm_max = 100'000;  // ±10 %: keep the rate positive

  bool is_identity() const {
    return drift_ppm_ == 0 && anchor_simulated_ns_ == anchor_local_ns_;
  }
  std::int32_t drift_ppm() const { return drift_ppm_; }

  // The local time at simulated time `simulated` (not before the last anchor).
  Instant local(Instant simulated) const {
    if (is_identity()) return simulated;
    const std::int64_t elapsed_ns = simulated.ns - anchor_simulated_ns_;
    DITTO_ASSERT(elapsed_ns >= 0);
    const auto scaled = static_cast<__int128>(elapsed_ns) * (ppm_scale + drift_ppm_) / ppm_scale;
    return Instant{anchor_local_ns_ + static_cast<std::int64_t>(scaled)};
  }

  // The earliest simulated time, not before `not_before`, at which the local clock reads at
  // least `deadline` (when a timer armed for `deadline` fires).
  Instant simulated_time_of(Instant deadline, Instant not_before) const {
    if (is_identity()) return deadline.ns > not_before.ns ? deadline : not_before;
    if (local(not_before).ns >= deadline.ns) return not_before;
    const std::int64_t remaining_ns = deadline.ns - anchor_local_ns_;
    const auto numerator = static_cast<__int128>(remaining_ns) * ppm_scale;
    const auto rate = static_cast<__int128>(ppm_scale + drift_ppm_);
    const auto elapsed_ns = static_cast<std::int64_t>((numerator + rate - 1) / rate);
    Instant simulated{anchor_simulated_ns_ + elapsed_ns};
    while (local(simulated).ns < deadline.ns) simulated.ns += 1;  // rounding
    return simulated;
  }

  // From `now` on the clock runs `drift_ppm` parts per million fast (negative: slow).
  void set_drift(Instant now, std::int32_t drift_ppm) {
    DITTO_ASSERT(drift_ppm > -drift_ppm_max && drift_ppm < drift_ppm_max);
    anchor(now);
    drift_ppm_ = drift_ppm;
  }

  // The clock jumps `forward` ahead at `now`.
  void step(Instant now, Duration forward) {
    DITTO_ASSERT(forward.ns >= 0);
    anchor(now);
    anchor_local_ns_ += forward.ns;
  }

 private:
  void anchor(Instant now) {
    const Instant current = local(now);
    anchor_simulated_ns_ = now.ns;
    anchor_local_ns_ = current.ns;
  }

  std::int64_t anchor_simulated_ns_ = 0;
  std::int64_t anchor_local_ns_ = 0;
  std::int32_t drift_ppm_ = 0;
};

}  // namespace ditto::sim
