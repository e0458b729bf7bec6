// The scenario format (faults/scenario.h): good files load into the steps they describe, bad
// files are refused with the JSON path of the offending field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "faults/scenario.h"

namespace ditto::faults {
namespace {

std::string with_steps(const std::string& steps, const std::string& cluster = R"({"nodes": 3})") {
  return R"({"name": "t", "cluster": )" + cluster + R"(, "steps": [)" + steps + "]}";
}

std::string error_of(const std::string& text) {
  const Result<Scenario> loaded = scenario_from_json(text);
  if (loaded.ok()) return "(loaded)";
  return loaded.error().message;
}

TEST(ScenarioFormat, AFileWithEveryStepKindLoadsIntoThoseSteps) {
  const Result<Scenario> loaded = scenario_from_json(with_steps(R"(
    {"step": "write", "ops": 10, "first_block": 8, "blocks": 16, "queue_depth": 4},
    {"step": "read-verify"},
    {"step": "partition", "groups": [[0], [1, 2]]},
    {"step": "write", "ops": 3, "expect": "any"},
    {"step": "heal"},
    {"step": "link", "from": 1, "to": 2, "both_directions": true,
     "delay": {"base_us": 500, "jitter_us": 100}, "loss_percent": 1, "rate_kib_s": 2048},
    {"step": "disconnect", "node": 0, "peer": 2},
    {"step": "connect", "node": 0, "peer": 2},
    {"step": "wait", "until": "up-to-date", "timeout_ms": 5000},
    {"step": "crash", "node": 0},
    {"step": "primary", "node": 1},
    {"step": "restart", "node": 0},
    {"step": "secondary", "node": 1},
    {"step": "primary", "node": 0},
    {"step": "wait", "until": "primary", "node": 0},
    {"step": "check", "oracles": ["replicas-identical"]})",
      R"({"nodes": 3, "protocol": "B", "quorum": "majority", "volume_size_mib": 8})"));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Scenario& scenario = loaded.value();
  EXPECT_EQ(scenario.cluster.protocol, Protocol::b);
  EXPECT_EQ(scenario.cluster.quorum, Quorum::majority);
  EXPECT_EQ(scenario.cluster.volume_size_bytes, 8u << 20);
  ASSERT_EQ(scenario.steps.size(), 16u);
  EXPECT_EQ(scenario.steps[0].operations, 10u);
  EXPECT_EQ(scenario.steps[0].first_block, 8u);
  EXPECT_EQ(scenario.steps[0].queue_depth, 4u);
  // Node 0 alone against 1 and 2: four directed links blocked.
  EXPECT_EQ(scenario.steps[2].blocked.size(), 4u);
  EXPECT_EQ(scenario.steps[3].expect, Expect::any);
  EXPECT_EQ(scenario.steps[5].links.size(), 2u);
  ASSERT_TRUE(scenario.steps[5].impairment.delay.has_value());
  EXPECT_EQ(scenario.steps[5].impairment.delay->base_ns, 500'000);
  EXPECT_EQ(scenario.steps[5].impairment.rate_bytes_per_second, 2048u * 1024);
  EXPECT_EQ(scenario.steps[8].condition, WaitCondition::up_to_date);
  EXPECT_TRUE(scenario.steps[15].check_identical);
  EXPECT_FALSE(scenario.steps[15].check_acknowledged);
}

TEST(ScenarioFormat, ANodeOutsideTheClusterIsRefusedWithItsPath) {
  EXPECT_EQ(error_of(with_steps(R"({"step": "heal"}, {"step": "heal"}, {"step": "heal"},
                                   {"step": "crash", "node": 7})")),
            "steps[3].node: 7 is not a node of a 3-node cluster");
}

TEST(ScenarioFormat, UnknownFieldsAreRefusedAtEveryLevel) {
  EXPECT_EQ(error_of(R"({"name": "t", "cluster": {"nodes": 2}, "steps": [{"step": "heal"}],
                         "colour": 1})"),
            "colour: unknown field");
  EXPECT_EQ(error_of(with_steps(R"({"step": "heal"})", R"({"nodes": 2, "disks": 1})")),
            "cluster.disks: unknown field");
  EXPECT_EQ(error_of(with_steps(R"({"step": "write", "ops": 1, "node": 1})")),
            "steps[0].node: unknown field");
  EXPECT_EQ(error_of(with_steps(R"({"step": "link", "from": 0, "to": 1,
                                    "delay": {"base_us": 1, "spread": 2}})")),
            "steps[0].delay.spread: unknown field");
}

TEST(ScenarioFormat, BadValuesAreRefusedWithTheFieldAndTheAllowedRange) {
  EXPECT_EQ(error_of(with_steps(R"({"step": "heal"})", R"({"nodes": 6})")),
            "cluster.nodes: 6 is not in 2..5");
  EXPECT_EQ(error_of(with_steps(R"({"step": "heal"})", R"({"nodes": 3, "protocol": "D"})")),
            "cluster.protocol: \"D\" is not one of A, B, C");
  EXPECT_EQ(error_of(with_steps(R"({"step": "write", "ops": -1})")),
            "steps[0].ops: -1 is not a non-negative integer");
  EXPECT_EQ(error_of(with_steps(R"({"step": "jump"})")), "steps[0].step: \"jump\" is not a step kind");
  EXPECT_EQ(error_of(with_steps(R"({"step": "write", "ops": 1, "first_block": 4000,
                                    "blocks": 200})")),
            "steps[0].blocks: blocks 4000..4199 reach past the volume's last block 4095");
  EXPECT_EQ(error_of(with_steps(R"({"step": "wait", "until": "dawn"})")),
            "steps[0].until: \"dawn\" is not one of connected, up-to-date, primary, quorum-lost");
  EXPECT_EQ(error_of("{not json"), "(document): not valid JSON");
}

TEST(ScenarioFormat, ImpossibleTimelinesAreRefusedAtTheStepThatMakesThemImpossible) {
  EXPECT_EQ(error_of(with_steps(R"({"step": "crash", "node": 0}, {"step": "write", "ops": 1})")),
            "steps[1].step: writes need a Primary, there is none");
  EXPECT_EQ(error_of(with_steps(R"({"step": "crash", "node": 1}, {"step": "crash", "node": 1})")),
            "steps[1].node: node 1 is down already");
  EXPECT_EQ(error_of(with_steps(R"({"step": "restart", "node": 2})")),
            "steps[0].node: node 2 is running");
  EXPECT_EQ(error_of(with_steps(R"({"step": "primary", "node": 1})")),
            "steps[0].node: node 0 is Primary; make it secondary first");
  EXPECT_EQ(error_of(with_steps(R"({"step": "partition", "groups": [[0], [1]]})")),
            "steps[0].groups: node 2 is in neither group");
  EXPECT_EQ(error_of(with_steps(R"({"step": "partition", "groups": [[0, 1], [1, 2]]})")),
            "steps[0].groups[1][0]: node 1 is listed twice");
  EXPECT_EQ(error_of(with_steps(R"({"step": "partition", "from": 1, "to": 1})")),
            "steps[0].to: is the same node as from");
  EXPECT_EQ(error_of(with_steps(R"({"step": "heal"})", R"({"nodes": 2, "diskless_client": true})")),
            "cluster.diskless_client: needs at least 3 nodes (two with disks)");
  EXPECT_EQ(error_of(with_steps(R"({"step": "write", "ops": 5, "crash_node": 0, "crash_after": 6})")),
            "steps[0].crash_after: 6 is not in 1..5");
}

TEST(ScenarioFormat, TheOperationPlanIsAFunctionOfTheSeedAndReadsCoverEveryWrittenBlock) {
  const Result<Scenario> loaded = scenario_from_json(with_steps(R"(
    {"step": "write", "ops": 50, "first_block": 100, "blocks": 20},
    {"step": "write", "ops": 10, "crash_node": 0, "crash_after": 4},
    {"step": "primary", "node": 1},
    {"step": "read-verify"})"));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const OperationPlan plan = plan_operations(loaded.value(), 7);
  ASSERT_EQ(plan.steps.size(), 4u);
  EXPECT_EQ(plan.steps[0].count, 50u);
  EXPECT_EQ(plan.steps[1].count, 4u);  // the crash cuts the step short
  EXPECT_EQ(plan.steps[2].count, 0u);
  std::set<std::uint64_t> written;
  for (std::uint64_t index = 0; index < 54; ++index) {
    const PlannedOperation& operation = plan.operations[index];
    EXPECT_TRUE(operation.write);
    EXPECT_EQ(operation.tag, index + 1);
    if (index < 50) {
      EXPECT_GE(operation.block, 100u);
      EXPECT_LT(operation.block, 120u);
    }
    written.insert(operation.block);
  }
  EXPECT_EQ(plan.steps[3].count, written.size());
  const OperationPlan again = plan_operations(loaded.value(), 7);
  const OperationPlan other = plan_operations(loaded.value(), 8);
  bool same = true;
  bool differs = false;
  for (std::size_t index = 0; index < 50; ++index) {
    same = same && again.operations[index].block == plan.operations[index].block;
    differs = differs || other.operations[index].block != plan.operations[index].block;
  }
  EXPECT_TRUE(same);
  EXPECT_TRUE(differs);
}

TEST(ScenarioFormat, EveryShippedScenarioLoads) {
  const char* source = std::getenv("DITTO_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  int count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(source) + "/faults/scenarios")) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const Result<Scenario> loaded = scenario_from_json(text.str());
    EXPECT_TRUE(loaded.ok()) << entry.path() << ": " << loaded.error().message;
    ++count;
  }
  EXPECT_GE(count, 4);
}

}  // namespace
}  // namespace ditto::faults
