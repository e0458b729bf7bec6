// The event queue against a model: whatever the mix of pushes and pops, events come out in
// (time, insertion) order, which is what makes a seed replay the same schedule.
#include "sim/event_queue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <utility>

#include "core/prng.h"

namespace ditto {
namespace {

TEST(EventQueue, InterleavedPushesAndPopsComeOutInTimeThenInsertionOrderAsInASortedModel) {
  Prng prng{6};
  sim::EventQueue queue;
  std::map<std::pair<std::int64_t, std::uint64_t>, std::uint64_t> model;  // (at, order) → id
  std::uint64_t pushed = 0;
  std::int64_t now_ns = 0;
  for (int step = 0; step < 200000; ++step) {
    // Phases that grow the queue to a few thousand events and drain it again; times in a small
    // range so that ties are common.
    const bool grow = (step / 5000) % 2 == 0;
    if (queue.empty() || prng.next_u64() % 100 < (grow ? 70u : 30u)) {
      sim::SimEvent event = sim::make_event(sim::EventKind::timer, 0);
      event.at = Instant{now_ns + static_cast<std::int64_t>(prng.next_u64() % 64)};
      event.first = pushed;
      model.emplace(std::pair{event.at.ns, pushed}, pushed);
      queue.push(event);
      pushed += 1;
    } else {
      ASSERT_EQ(queue.size(), model.size());
      ASSERT_EQ(queue.next_time().ns, model.begin()->first.first);
      const sim::SimEvent event = queue.pop();
      ASSERT_EQ(event.first, model.begin()->second) << "step " << step;
      now_ns = event.at.ns;  // like the simulator: time never goes back
      model.erase(model.begin());
    }
  }
  while (!queue.empty()) {
    ASSERT_EQ(queue.pop().first, model.begin()->second);
    model.erase(model.begin());
  }
  EXPECT_TRUE(model.empty());
}

}  // namespace
}  // namespace ditto
