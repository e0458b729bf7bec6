// Every shipped scenario (faults/scenarios/) on the simulator: the oracles hold, the run is a
// function of the scenario and the seed (same trace hash twice, another hash with another seed),
// and the scripted steps really order the run (a partition between two write steps fails exactly
// the writes between them; a wait that can never hold is reported).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "faults/scenario.h"
#include "faults/sim_injector.h"

namespace ditto::faults {
namespace {

std::string scenario_directory() {
  const char* source = std::getenv("DITTO_SOURCE_DIR");
  return std::string(source == nullptr ? "." : source) + "/faults/scenarios";
}

Scenario load(const std::string& text) {
  Result<Scenario> loaded = scenario_from_json(text);
  EXPECT_TRUE(loaded.ok()) << loaded.error().message;
  return loaded.ok() ? std::move(loaded).value() : Scenario{};
}

Scenario load_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return load(text.str());
}

std::string failures(const RunReport& report) {
  std::string text = report.error;
  for (const Verdict& verdict : report.verdicts) {
    if (!verdict.held) text += " " + verdict.oracle + ": " + verdict.detail;
  }
  return text;
}


TEST(ScenariosOnSimulator, EveryShippedScenarioReplaysToTheSameTraceHashAndPasses) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(scenario_directory())) {
    const Scenario scenario = load_file(entry.path().string());
    for (const std::uint64_t seed : {scenario.seed, scenario.seed + 1}) {
      const RunReport first = run_on_sim(scenario, seed);
      EXPECT_TRUE(first.passed()) << entry.path() << " seed " << seed << ":" << failures(first);
      EXPECT_TRUE(first.error.empty()) << first.error;
      EXPECT_EQ(first.trace_hash.size(), 32u);
      EXPECT_GT(first.writes_acknowledged, 0u);
      const RunReport again = run_on_sim(scenario, seed);
      EXPECT_EQ(first.trace_hash, again.trace_hash) << entry.path();
      EXPECT_EQ(first.passed(), again.passed()) << entry.path();
    }
    EXPECT_NE(run_on_sim(scenario, 1).trace_hash, run_on_sim(scenario, 2).trace_hash)
        << entry.path();
    ++count;
  }
  EXPECT_GE(count, 4);
}

// Bug, the one tests/faults/scenarios_on_real_daemons_test.cpp shows on real daemons (and
// tests/sim/regression_test.cpp with swarm seed 2937): the Primary crashes with writes in
// flight, one reaches node1 and not node2; after the failover all nodes ended UpToDate with
// different blocks (18 of seeds 1..300; seed 2: 4 blocks). Fixed by reconciling the survivors
// after losing any Primary (reconcile_after_lost_primary); 300 seeds pass. The simulator's own end-of-run oracle
// tolerates it (writes never acknowledged, a node that crashed with writes in flight); the
// scenario's check asks for identical replicas, as DRBD's resync after a lost Primary gives.
// Replay: ditto-faults run --target sim faults/scenarios/failover-primary-crash.json --seed 2 --trace
TEST(ScenariosOnSimulator, AfterThePrimaryCrashesWithWritesInFlightTheReplicasEndIdentical) {
  const Scenario scenario = load_file(scenario_directory() + "/failover-primary-crash.json");
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const RunReport report = run_on_sim(scenario, seed);
    EXPECT_TRUE(report.passed()) << "seed " << seed << ":" << failures(report);
  }
}

TEST(ScenariosOnSimulator, AnIsolatedQuorumPrimaryFailsExactlyTheWritesIssuedWhileItIsCutOff) {
  const Scenario scenario = load(R"({"name": "q", "cluster": {"nodes": 3, "quorum": "majority"},
    "steps": [{"step": "write", "ops": 30},
              {"step": "partition", "isolate": 0},
              {"step": "wait", "until": "quorum-lost", "node": 0},
              {"step": "write", "ops": 7, "expect": "fail"},
              {"step": "heal"},
              {"step": "wait", "until": "up-to-date"},
              {"step": "write", "ops": 11},
              {"step": "check"}]})");
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const RunReport report = run_on_sim(scenario, seed);
    EXPECT_TRUE(report.passed()) << "seed " << seed << ":" << failures(report);
    EXPECT_EQ(report.writes_failed, 7u) << "seed " << seed;
    EXPECT_EQ(report.writes_acknowledged, 41u) << "seed " << seed;
  }
}

TEST(ScenariosOnSimulator, AWaitThatNeverHoldsIsReportedAsAViolation) {
  // Without quorum a node never loses it: the wait must time out, not pass silently.
  const Scenario scenario = load(R"({"name": "w", "cluster": {"nodes": 3},
    "steps": [{"step": "write", "ops": 5},
              {"step": "partition", "isolate": 0},
              {"step": "wait", "until": "quorum-lost", "node": 0, "timeout_ms": 500},
              {"step": "write", "ops": 5}]})");
  const RunReport report = run_on_sim(scenario, 1);
  EXPECT_FALSE(report.passed());
  EXPECT_NE(failures(report).find("still node0 with quorum after 500 ms"), std::string::npos)
      << failures(report);
}

TEST(ScenariosOnSimulator, StepsTheSimulatorCannotExpressAreRefusedByName) {
  const Scenario switchover = load(R"({"name": "s", "cluster": {"nodes": 2},
    "steps": [{"step": "write", "ops": 5}, {"step": "secondary", "node": 0},
              {"step": "primary", "node": 1}, {"step": "write", "ops": 5}]})");
  EXPECT_EQ(run_on_sim(switchover, 1).error,
            "steps[1]: demoting the Primary runs on the real target only");
}

// The simulator runs the scenario's protocol (SimOptions::protocol), not protocol C whatever the
// file says: a partition and its heal under A and B end with every replica identical.
TEST(ScenariosOnSimulator, TheScenariosProtocolReachesTheSimulator) {
  for (const char* protocol : {"A", "B", "C"}) {
    SCOPED_TRACE(protocol);
    const Scenario scenario = load(std::string(R"({"name": "p", "cluster": {"nodes": 3, "protocol": ")") +
                                   protocol + R"("},
      "steps": [{"step": "write", "ops": 20, "queue_depth": 4},
                {"step": "partition", "isolate": 2},
                {"step": "write", "ops": 20},
                {"step": "heal"},
                {"step": "wait", "until": "up-to-date", "timeout_ms": 5000},
                {"step": "read-verify"}]})");
    const Result<SimTranslation> translated = translate_for_sim(scenario, 3);
    ASSERT_TRUE(translated.ok()) << translated.error().message;
    EXPECT_EQ(to_string(translated.value().schedule.options.protocol), std::string(protocol));
    const RunReport report = run_on_sim(scenario, 3);
    EXPECT_TRUE(report.passed()) << failures(report);
  }
}

}  // namespace
}  // namespace ditto::faults
