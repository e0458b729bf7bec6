// Node clocks (fault classes clock_drift and clock_step): a monotonic local clock as a
// piecewise linear function of simulated time, and its inverse for firing timers.
#include "sim/node_clock.h"

#include <gtest/gtest.h>

namespace ditto::sim {
namespace {

constexpr std::int64_t second_ns = 1'000'000'000;

TEST(NodeClock, AnUntouchedClockReadsSimulatedTime) {
  const NodeClock clock;
  EXPECT_TRUE(clock.is_identity());
  EXPECT_EQ(clock.local(Instant{12345}).ns, 12345);
  EXPECT_EQ(clock.simulated_time_of(Instant{500}, Instant{100}).ns, 500);
  EXPECT_EQ(clock.simulated_time_of(Instant{50}, Instant{100}).ns, 100);  // already due
}

TEST(NodeClock, AFastClockGainsItsDriftAndFiresTimersEarlierInSimulatedTime) {
  NodeClock clock;
  clock.set_drift(Instant{second_ns}, 10'000);  // 1 % fast from 1 s on
  EXPECT_EQ(clock.local(Instant{second_ns}).ns, second_ns);  // continuous at the change
  EXPECT_EQ(clock.local(Instant{2 * second_ns}).ns, 2 * second_ns + second_ns / 100);
  const Instant fire = clock.simulated_time_of(Instant{3 * second_ns}, Instant{second_ns});
  EXPECT_LT(fire.ns, 3 * second_ns);
  EXPECT_GE(clock.local(fire).ns, 3 * second_ns);
  EXPECT_LT(clock.local(Instant{fire.ns - 1}).ns, 3 * second_ns);  // the earliest such time
}

TEST(NodeClock, ASlowClockFiresTimersLater) {
  NodeClock clock;
  clock.set_drift(Instant{0}, -10'000);
  const Instant fire = clock.simulated_time_of(Instant{second_ns}, Instant{0});
  EXPECT_GT(fire.ns, second_ns);
  EXPECT_GE(clock.local(fire).ns, second_ns);
  EXPECT_LT(clock.local(Instant{fire.ns - 1}).ns, second_ns);
}

TEST(NodeClock, AStepJumpsForwardMakesDueTimersFireAtOnceAndNeverGoesBack) {
  NodeClock clock;
  clock.set_drift(Instant{0}, -5'000);
  const Instant before = clock.local(Instant{second_ns});
  clock.step(Instant{second_ns}, Duration::from_ms(2'000));
  EXPECT_EQ(clock.local(Instant{second_ns}).ns, before.ns + 2 * second_ns);
  EXPECT_EQ(clock.simulated_time_of(Instant{2 * second_ns}, Instant{second_ns}).ns, second_ns);
  clock.set_drift(Instant{2 * second_ns}, 0);  // back to the true rate: the offset stays
  std::int64_t last = 0;
  for (std::int64_t at = 2 * second_ns; at < 4 * second_ns; at += second_ns / 7) {
    const std::int64_t local = clock.local(Instant{at}).ns;
    EXPECT_GE(local, last);
    EXPECT_GT(local, at);
    last = local;
  }
}

}  // namespace
}  // namespace ditto::sim
