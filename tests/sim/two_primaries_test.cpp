// Two Primaries on the whole simulator (sim/simulation_two_primaries.cpp, allow-two-primaries):
// a live migration with both nodes Primary for a while, and overlapping concurrent writes of
// the two Primaries, which must be detected and never end as a silent divergence.
#include <gtest/gtest.h>

#include <string>

#include "sim/simulation.h"
#include "tests/sim/run_description.h"

namespace ditto::sim {
namespace {

SimOptions migration_options(std::uint64_t seed, std::uint32_t nodes) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.crash_primary = false;
  options.faults_per_1000_ops = 0;
  options.volume_size_bytes = 8ull * 1024 * 1024;  // 2048 blocks: the writers often meet
  options.workload.operations = 400;
  options.settle_time = Duration::from_ms(3'000);
  options.two_primaries.enabled = true;
  return options;
}

std::string summary(const RunResult& result) {
  std::string text = describe(result) + "\n  " + std::to_string(result.concurrent_writes_reports) +
                     " concurrent-writes, " + std::to_string(result.split_brain_reports) +
                     " split-brain reports";
  for (std::size_t node = 0; node < result.final_nodes.size(); ++node) {
    const RunResult::NodeSummary& each = result.final_nodes[node];
    text += "\n  node" + std::to_string(node) + ": " + std::string(to_string(each.role)) + " " +
            std::string(to_string(each.disk)) + " digest " + std::to_string(each.disk_digest);
    for (const ConnectionState connection : each.connections) {
      text += " " + std::string(to_string(connection));
    }
  }
  return text;
}

// Every node Connected to every other, UpToDate, and byte-identical.
void expect_identical_and_connected(const RunResult& result) {
  for (std::size_t node = 0; node < result.final_nodes.size(); ++node) {
    const RunResult::NodeSummary& each = result.final_nodes[node];
    EXPECT_EQ(each.disk, DiskState::up_to_date) << summary(result);
    EXPECT_EQ(each.disk_digest, result.final_nodes[0].disk_digest) << summary(result);
    for (std::size_t peer = 0; peer < result.final_nodes.size(); ++peer) {
      if (peer == node) continue;
      EXPECT_EQ(each.connections[peer], ConnectionState::connected) << summary(result);
    }
  }
}

TEST(TwoPrimaries, ALiveMigrationWithFaultsOffReplicatesBothWritersAndEndsIdentical) {
  for (std::uint32_t nodes : {2u, 3u}) {
    for (std::uint64_t seed = 1; seed <= 6; ++seed) {
      const RunResult result = run_simulation(migration_options(seed * 10 + nodes, nodes));
      EXPECT_EQ(result.violation_count, 0u) << summary(result);
      EXPECT_EQ(result.concurrent_writes_reports, 0u) << summary(result);
      EXPECT_EQ(result.split_brain_reports, 0u) << summary(result);
      EXPECT_GT(result.workload.writes_acknowledged, 100u) << summary(result);
      ASSERT_EQ(result.final_nodes.size(), nodes);
      EXPECT_EQ(result.final_nodes[0].role, Role::secondary) << summary(result);
      EXPECT_EQ(result.final_nodes[1].role, Role::primary) << summary(result);
      expect_identical_and_connected(result);
    }
  }
}

void expect_conflict_detected_and_resolved(std::uint64_t seed, std::uint32_t nodes) {
  SimOptions options = migration_options(seed, nodes);
  options.two_primaries.conflict = true;
  options.split_brain.manual_recovery = true;
  const RunResult result = run_simulation(options);
  EXPECT_EQ(result.violation_count, 0u) << summary(result);
  EXPECT_GE(result.concurrent_writes_reports, 1u) << summary(result);
  EXPECT_GE(result.split_brain_reports, 1u) << summary(result);
  ASSERT_EQ(result.final_nodes.size(), nodes);
  EXPECT_EQ(result.final_nodes[0].role, Role::primary) << summary(result);
  EXPECT_EQ(result.final_nodes[1].role, Role::secondary) << summary(result);
  expect_identical_and_connected(result);
}

// The pair of overlapping writes drops the connection between the two Primaries; the split
// brain found at the reconnect is resolved (the operator discards node 1's side), and the
// replicas end identical: never merged silently.
TEST(TwoPrimaries, ConcurrentOverlappingWritesAreDetectedAndEndInNoSilentDivergence) {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) expect_conflict_detected_and_resolved(seed, 2);
}

// Known gap (docs/operations.md, "Live migration with two Primaries"): with a third node the
// Secondary sees both overlapping writes too, detects them and drops the later sender
// (core/node_two_primaries.cpp), and the data ends identical with no violation; but node 1's
// connection to node 2 is left StandAlone after the split brain found there, which this
// scenario's operator (who resolves only node 0 against node 1) never reconnects. Seeds 13, 23
// and 53 (seed * 10 + nodes of the loops above).
TEST(TwoPrimaries, DISABLED_ConcurrentOverlappingWritesWithASecondaryEndInNoSilentDivergence) {
  for (std::uint64_t seed : {13u, 23u, 53u}) expect_conflict_detected_and_resolved(seed, 3);
}

}  // namespace
}  // namespace ditto::sim
