// Property: for any seed, 2..3 nodes and 50..500 operations, the failover run loses no
// acknowledged write (and no read sees data it must not).
#include <gtest/gtest.h>

#if __has_include(<rapidcheck.h>)
#include <rapidcheck.h>

#include "sim/simulation.h"

namespace ditto::sim {
namespace {

TEST(FailoverProperty, NoAcknowledgedWriteIsLostForAnySeedNodeCountAndLength) {
  const bool passed = rc::check("failover run has no violations", [] {
    SimOptions options;
    options.seed = *rc::gen::arbitrary<std::uint64_t>();
    options.nodes = *rc::gen::inRange<std::uint32_t>(2, 4);
    options.workload.operations = *rc::gen::inRange<std::uint64_t>(50, 501);
    const RunResult result = run_simulation(options);
    RC_LOG() << replay_command(options) << "\n";
    for (const std::string& violation : result.violations) RC_LOG() << violation << "\n";
    RC_ASSERT(result.violation_count == 0u);
    RC_ASSERT(result.promoted);
  });
  EXPECT_TRUE(passed);
}

}  // namespace
}  // namespace ditto::sim
#else
TEST(FailoverProperty, NoAcknowledgedWriteIsLostForAnySeedNodeCountAndLength) {
  GTEST_SKIP() << "RapidCheck is not installed";
}
#endif
