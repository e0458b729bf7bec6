// The resync rate controller (resync_controller.h, drbd9-semantics.md §5.4).
#include "core/resync_controller.h"

#include <algorithm>
#include <limits>

#include "core/assert.h"

namespace ditto::core {
namespace {

constexpr std::int64_t ns_per_second = 1'000'000'000;

// Sectors a rate in KiB/s moves in `duration` (a KiB is two sectors).
std::uint64_t sectors_at_rate(std::uint32_t rate_kib, Duration duration) {
  return std::uint64_t{rate_kib} * 2 * static_cast<std::uint64_t>(duration.ns) /
         static_cast<std::uint64_t>(ns_per_second);
}

}  // namespace

void ResyncController::reset() {
  plan_.clear();
  head_ = 0;
  planned_total_ = 0;
}

std::uint64_t ResyncController::step(const ResyncControllerSettings& settings,
                                     std::uint64_t sectors_in, std::uint64_t in_flight_sectors,
                                     Duration duration) {
  duration = std::clamp(duration, Duration::from_us(1), Duration::from_ms(1000));
  if (settings.c_plan_ahead_deciseconds == 0) {
    reset();
    return sectors_at_rate(settings.resync_rate_kib, duration);
  }
  const std::size_t steps = settings.c_plan_ahead_deciseconds;
  if (plan_.size() != steps) {  // first step, or c-plan-ahead changed: plan afresh
    plan_.assign(steps, 0);
    head_ = 0;
    planned_total_ = 0;
  }
  // What came in, as a rate per 100 ms step.
  const auto rate_in = static_cast<std::int64_t>(sectors_in *
                                                 static_cast<std::uint64_t>(step_duration.ns) /
                                                 static_cast<std::uint64_t>(duration.ns));
  const auto in_flight = static_cast<std::int64_t>(in_flight_sectors);
  std::int64_t want = 0;
  if (in_flight == 0 && sectors_in == 0) {  // the start: resync-rate over the horizon
    want = static_cast<std::int64_t>(sectors_at_rate(settings.resync_rate_kib, step_duration) *
                                     steps);
  } else if (settings.c_fill_target_sectors != 0) {
    want = settings.c_fill_target_sectors;
  } else {  // delay target: what arrives in c_delay_target at the current rate
    want = rate_in * settings.c_delay_target_deciseconds;
  }
  // Spread what is missing over the horizon, then take this step's share from the head.
  const std::int64_t correction = want - in_flight - planned_total_;
  const std::int64_t per_step = correction / static_cast<std::int64_t>(steps);
  for (std::int64_t& slot : plan_) slot += per_step;
  planned_total_ += per_step * static_cast<std::int64_t>(steps);
  const std::int64_t current = plan_[head_];
  plan_[head_] = 0;
  head_ = (head_ + 1) % steps;
  planned_total_ -= current;
  const std::uint64_t request = static_cast<std::uint64_t>(std::max<std::int64_t>(0, rate_in + current));
  const std::uint64_t cap = settings.c_max_rate_kib == 0
                                ? std::numeric_limits<std::uint64_t>::max()
                                : sectors_at_rate(settings.c_max_rate_kib, duration);
  DITTO_ASSERT(plan_.size() == steps && head_ < steps);
  return std::min(request, cap);
}

}  // namespace ditto::core
