// The resync rate controller (core/resync_controller.h, drbd9-semantics.md §5.4) against a
// model link: a step's requests travel for `latency_steps` steps, then the link delivers at
// most `capacity` sectors per 100 ms step, in order.
#include "core/resync_controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

namespace ditto::core {
namespace {

constexpr Duration step = ResyncController::step_duration;

struct Link {
  std::uint64_t capacity = 0;  // sectors per step
  std::deque<std::uint64_t> queued;  // requested sectors in order, per step requested
  std::uint64_t in_flight = 0;

  void request(std::uint64_t sectors) {
    queued.push_back(sectors);
    in_flight += sectors;
  }
  // One step passes: what arrives.
  std::uint64_t deliver() {
    std::uint64_t budget = capacity;
    std::uint64_t delivered = 0;
    while (budget > 0 && !queued.empty()) {
      const std::uint64_t part = std::min(budget, queued.front());
      queued.front() -= part;
      budget -= part;
      delivered += part;
      if (queued.front() == 0) queued.pop_front();
    }
    in_flight -= delivered;
    return delivered;
  }
};

struct Trace {
  std::vector<std::uint64_t> requested;  // per step
  std::vector<std::uint64_t> arrived;    // per step
  std::vector<std::uint64_t> in_flight;  // at each step's start, before its requests
};

Trace run_against(const ResyncControllerSettings& settings, std::uint64_t capacity, int steps) {
  ResyncController controller;
  Link link{capacity, {}, 0};
  Trace run;
  std::uint64_t arrived = 0;
  for (int index = 0; index < steps; ++index) {
    run.in_flight.push_back(link.in_flight);
    const std::uint64_t sectors = controller.step(settings, arrived, link.in_flight, step);
    link.request(sectors);
    run.requested.push_back(sectors);
    arrived = link.deliver();
    run.arrived.push_back(arrived);
  }
  return run;
}

ResyncControllerSettings fill_target(std::uint32_t sectors) {
  ResyncControllerSettings settings;
  settings.c_fill_target_sectors = sectors;
  settings.c_max_rate_kib = 0;
  return settings;
}

TEST(ResyncController, RampsUpToTheLinksRateAndStaysThere) {
  // A link of 100 MiB per step (1 GiB/s); 64 MiB wanted in flight.
  const std::uint64_t capacity = 204800;
  const Trace run = run_against(fill_target(131072), capacity, 120);
  // Within the plan-ahead horizon and a few steps more it delivers at the link's rate...
  int first_full = -1;
  for (int index = 0; index < 120 && first_full < 0; ++index) {
    if (run.arrived[static_cast<std::size_t>(index)] == capacity) first_full = index;
  }
  ASSERT_GE(first_full, 0);
  EXPECT_LE(first_full, 40);
  // ...and keeps the link busy from then on.
  for (std::size_t index = 60; index < 120; ++index) {
    EXPECT_EQ(run.arrived[index], capacity) << "step " << index;
  }
}

TEST(ResyncController, HoldsTheFillTargetInFlightOnASaturatedLink) {
  const std::uint64_t capacity = 20480;  // 10 MiB per step
  const std::uint64_t fill = 16384;      // 8 MiB wanted in flight
  const Trace run = run_against(fill_target(static_cast<std::uint32_t>(fill)), capacity, 200);
  for (std::size_t index = 150; index < 200; ++index) {
    const std::uint64_t in_flight_after = run.in_flight[index] + run.requested[index];
    // In flight after the step's requests: the fill target plus the step's arrivals, within
    // the rounding of the plan (a sector per planned step).
    EXPECT_NEAR(static_cast<double>(in_flight_after), static_cast<double>(fill + capacity),
                0.02 * static_cast<double>(fill)) << "step " << index;
    EXPECT_EQ(run.arrived[index], capacity);
  }
}

TEST(ResyncController, NeverRequestsMoreThanCMaxRateForTheStepsDuration) {
  ResyncControllerSettings settings = fill_target(1u << 20);
  settings.c_max_rate_kib = 10240;  // 10 MiB/s: 2048 sectors per 100 ms
  ResyncController controller;
  std::uint64_t arrived = 0;
  std::uint64_t total = 0;
  for (int index = 0; index < 100; ++index) {
    // Everything comes back at once (a link far faster than the cap); steps of 100 ms and of
    // 10 ms (taken early) alternate.
    const Duration duration = index % 2 == 0 ? step : Duration::from_ms(10);
    const std::uint64_t sectors = controller.step(settings, arrived, 0, duration);
    EXPECT_LE(sectors, 20480 * static_cast<std::uint64_t>(duration.ns) / 1'000'000'000 + 1)
        << "step " << index;
    arrived = sectors;
    total += sectors;
  }
  // 50 steps of 100 ms and 50 of 10 ms: 5.5 s at most 10 MiB/s, and not far below it.
  EXPECT_LE(total, 20480u * 55 / 10);
  EXPECT_GE(total, 20480u * 55 / 10 * 9 / 10);
}

TEST(ResyncController, AStepTakenEarlyScalesWhatCameInToAFullStep) {
  ResyncControllerSettings settings = fill_target(16384);
  ResyncController controller;
  (void)controller.step(settings, 0, 0, step);
  // 1000 sectors came back within 1 ms: a rate of 100000 sectors per 100 ms.
  EXPECT_GE(controller.step(settings, 1000, 0, Duration::from_ms(1)), 100000u);
}

TEST(ResyncController, TheFirstStepRequestsResyncRatesShare) {
  ResyncControllerSettings settings = fill_target(16384);
  settings.resync_rate_kib = 10240;  // 2048 sectors per 100 ms
  ResyncController controller;
  EXPECT_EQ(controller.step(settings, 0, 0, step), 2048u);
}

TEST(ResyncController, UsesResyncRateAloneWhenCPlanAheadIsZero) {
  ResyncControllerSettings settings = fill_target(16384);
  settings.c_plan_ahead_deciseconds = 0;
  settings.resync_rate_kib = 4000;  // 800 sectors per 100 ms
  ResyncController controller;
  for (const std::uint64_t arrived : {0u, 100000u, 5u}) {
    EXPECT_EQ(controller.step(settings, arrived, 50000, step), 800u);
  }
  EXPECT_EQ(controller.step(settings, 0, 0, Duration::from_ms(50)), 400u);
  EXPECT_EQ(controller.planned_sectors(), 0);
}

TEST(ResyncController, WithCFillTargetZeroHoldsWhatArrivesInCDelayTargetInFlight) {
  ResyncControllerSettings settings = fill_target(0);
  settings.c_delay_target_deciseconds = 5;  // 500 ms of data in flight
  const std::uint64_t capacity = 10000;
  const Trace run = run_against(settings, capacity, 300);
  for (std::size_t index = 250; index < 300; ++index) {
    EXPECT_EQ(run.arrived[index], capacity);
    const std::uint64_t in_flight_after = run.in_flight[index] + run.requested[index];
    EXPECT_NEAR(static_cast<double>(in_flight_after), static_cast<double>(6 * capacity),
                0.05 * static_cast<double>(capacity) * 5) << "step " << index;
  }
}

TEST(ResyncController, RequestsNothingWhileFarMoreThanTheFillTargetIsInFlight) {
  ResyncControllerSettings settings = fill_target(1000);
  ResyncController controller;
  (void)controller.step(settings, 0, 0, step);
  // The link stalled with 100000 sectors outstanding and nothing coming back.
  for (int index = 0; index < 30; ++index) {
    EXPECT_EQ(controller.step(settings, 0, 100000, step), 0u) << "step " << index;
  }
}

}  // namespace
}  // namespace ditto::core
