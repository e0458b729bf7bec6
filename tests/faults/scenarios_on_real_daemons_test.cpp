// Shipped scenarios on real dittod daemons (loopback, file-backed disks, every peer connection
// through the impairment proxy, NBD through libnbd): the same files the simulator runs.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "faults/real_injector.h"
#include "faults/scenario.h"

namespace ditto::faults {
namespace {

RunReport run_file(const std::string& file) {
  const char* source = std::getenv("DITTO_SOURCE_DIR");
  std::ifstream in(std::string(source == nullptr ? "." : source) + "/faults/scenarios/" + file);
  std::stringstream text;
  text << in.rdbuf();
  Result<Scenario> loaded = scenario_from_json(text.str());
  EXPECT_TRUE(loaded.ok()) << file << ": " << loaded.error().message;
  if (!loaded.ok()) return {};
  return run_on_real(loaded.value(), loaded.value().seed, RealOptions{});
}

void expect_passed(const RunReport& report) {
  EXPECT_TRUE(report.passed()) << to_text(report);
  EXPECT_FALSE(report.verdicts.empty()) << "no oracle ran";
  for (const StepReport& step : report.steps) EXPECT_TRUE(step.executed) << step.description;
}

TEST(ScenariosOnRealDaemons, AfterThePrimaryIsKilledWithWritesInFlightASurvivorHoldsEveryAcknowledgedWrite) {
  const RunReport report = run_file("failover-primary-crash.json");
  expect_passed(report);
  EXPECT_GT(report.writes_acknowledged, 300u);
}

TEST(ScenariosOnRealDaemons, AnIsolatedQuorumPrimaryFailsItsWritesAndRejoinsWithoutSplitBrain) {
  const RunReport report = run_file("quorum-minority-primary.json");
  expect_passed(report);
  EXPECT_EQ(report.writes_failed, 20u);
}

TEST(ScenariosOnRealDaemons, UnderAOneWayPartitionThePrimaryKeepsWritingAndResyncsThePeerAfterTheHeal) {
  expect_passed(run_file("one-way-partition.json"));
}

}  // namespace
}  // namespace ditto::faults
