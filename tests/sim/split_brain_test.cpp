// Split brain on the whole simulator (sim/simulation_split_brain.cpp): two nodes, quorum off,
// partitioned, both promoted and written, then healed. Each scenario checks the reports (both
// nodes detect it), the final states, and the data: a resolved split brain leaves the victim
// byte-identical to the survivor and loses only the victim's writes since the split (the
// oracle's documented loss); an unresolved one leaves both StandAlone with their data exactly
// as it was at the heal.
#include <gtest/gtest.h>

#include <string>

#include "sim/simulation.h"
#include "tests/sim/run_description.h"

namespace ditto::sim {
namespace {

std::string report(const RunResult& result) {
  std::string text = describe(result) + "\n  " + std::to_string(result.split_brain_reports) +
                     " split-brain reports, " +
                     std::to_string(result.blocks_discarded_by_split_brain) + " discarded";
  for (std::size_t node = 0; node < result.final_nodes.size(); ++node) {
    const RunResult::NodeSummary& summary = result.final_nodes[node];
    text += "\n  node" + std::to_string(node) + ": " + std::string(to_string(summary.role)) + " " +
            std::string(to_string(summary.disk)) + " " +
            std::string(to_string(summary.connections[1 - node]));
  }
  return text;
}

SimOptions split_options(std::uint64_t seed, std::uint32_t primaries_at_heal,
                         std::uint32_t share_second_percent) {
  SimOptions options;
  options.seed = seed;
  options.nodes = 2;
  options.crash_primary = false;
  options.volume_size_bytes = 8ull * 1024 * 1024;  // 2048 blocks
  options.workload.operations = 300;
  options.workload.read_percent = 0;
  options.settle_time = Duration::from_ms(3'000);  // time for the resync after the heal
  options.split_brain.enabled = true;
  options.split_brain.primaries_at_heal = primaries_at_heal;
  options.split_brain.share_second_percent = share_second_percent;
  return options;
}

// Both detected it, the victim is Connected, UpToDate and byte-identical to the survivor, and
// the only loss is the victim's writes since the split.
void expect_resolved(const RunResult& result, std::uint32_t victim) {
  ASSERT_EQ(result.final_nodes.size(), 2u) << report(result);
  EXPECT_EQ(result.violation_count, 0u) << report(result);
  EXPECT_EQ(result.split_brain_reports, 2u) << report(result);
  EXPECT_EQ(result.split_brain_unresolved_reports, 0u) << report(result);
  EXPECT_GT(result.blocks_discarded_by_split_brain, 0u) << report(result);
  const RunResult::NodeSummary& kept = result.final_nodes[1 - victim];
  const RunResult::NodeSummary& discarded = result.final_nodes[victim];
  for (const RunResult::NodeSummary* summary : {&kept, &discarded}) {
    EXPECT_EQ(summary->disk, DiskState::up_to_date) << report(result);
  }
  EXPECT_EQ(kept.connections[victim], ConnectionState::connected) << report(result);
  EXPECT_EQ(discarded.connections[1 - victim], ConnectionState::connected) << report(result);
  EXPECT_EQ(discarded.disk_digest, kept.disk_digest) << report(result);
  EXPECT_EQ(kept.disk_digest, kept.disk_digest_at_heal) << "the survivor's data changed";
  EXPECT_NE(discarded.disk_digest, discarded.disk_digest_at_heal) << "the victim kept its data";
  EXPECT_EQ(result.divergent_blocks, 0u) << report(result);
}

// Both detected it and stayed StandAlone with their data exactly as it was at the heal.
void expect_standalone_untouched(const RunResult& result) {
  ASSERT_EQ(result.final_nodes.size(), 2u) << report(result);
  EXPECT_EQ(result.violation_count, 0u) << report(result);
  EXPECT_EQ(result.split_brain_reports, 2u) << report(result);
  EXPECT_EQ(result.split_brain_unresolved_reports, 2u) << report(result);
  EXPECT_EQ(result.blocks_discarded_by_split_brain, 0u) << report(result);
  for (std::uint32_t node = 0; node < 2; ++node) {
    const RunResult::NodeSummary& summary = result.final_nodes[node];
    EXPECT_EQ(summary.connections[1 - node], ConnectionState::standalone) << report(result);
    EXPECT_EQ(summary.disk, DiskState::up_to_date) << report(result);
    EXPECT_EQ(summary.disk_digest, summary.disk_digest_at_heal) << report(result);
  }
  EXPECT_NE(result.final_nodes[0].disk_digest, result.final_nodes[1].disk_digest);
  EXPECT_GT(result.divergent_blocks, 0u) << report(result);
}

TEST(SplitBrain, BothSecondaryAtTheHealWithDefaultPoliciesBothStayStandAloneAndUntouched) {
  expect_standalone_untouched(run_simulation(split_options(1, 0, 50)));
}

TEST(SplitBrain, BothPrimaryAtTheHealWithDefaultPoliciesBothStayStandAloneAndUntouched) {
  const RunResult result = run_simulation(split_options(2, 2, 50));
  expect_standalone_untouched(result);
  EXPECT_EQ(result.final_nodes[0].role, Role::primary);
  EXPECT_EQ(result.final_nodes[1].role, Role::primary);
}

TEST(SplitBrain, DiscardLeastChangesDiscardsTheNodeThatWroteLess) {
  for (const auto& [share, victim] : {std::pair{20u, 1u}, std::pair{80u, 0u}}) {
    SimOptions options = split_options(3, 0, share);
    options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
    expect_resolved(run_simulation(options), victim);
  }
}

TEST(SplitBrain, DiscardZeroChangesWithChangesOnBothSidesDisconnects) {
  SimOptions options = split_options(4, 0, 50);
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_zero_changes;
  expect_standalone_untouched(run_simulation(options));
}

TEST(SplitBrain, DiscardYoungerPrimaryDiscardsTheNodePromotedDuringThePartition) {
  SimOptions options = split_options(5, 0, 80);  // least-changes would discard node 0
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_younger_primary;
  expect_resolved(run_simulation(options), 1);
}

TEST(SplitBrain, DiscardOlderPrimaryDiscardsTheNodeThatWasPrimaryBeforeThePartition) {
  SimOptions options = split_options(6, 0, 20);  // least-changes would discard node 1
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_older_primary;
  expect_resolved(run_simulation(options), 0);
}

TEST(SplitBrain, OnePrimaryDiscardSecondaryKeepsThePrimaryEvenWhenItWroteLess) {
  SimOptions options = split_options(7, 1, 80);  // node 1 (Secondary at the heal) wrote more
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  options.split_brain_policy.after_sb_1pri = AfterSplitBrain1::discard_secondary;
  const RunResult result = run_simulation(options);
  expect_resolved(result, 1);
  EXPECT_EQ(result.final_nodes[0].role, Role::primary);
}

TEST(SplitBrain, OnePrimaryConsensusRefusesToDiscardThePrimary) {
  // node 1 (Secondary at the heal) wrote more: least-changes would discard the Primary.
  SimOptions options = split_options(8, 1, 80);
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  options.split_brain_policy.after_sb_1pri = AfterSplitBrain1::consensus;
  expect_standalone_untouched(run_simulation(options));
}

TEST(SplitBrain, OnePrimaryConsensusAgreesWhenTheSecondaryIsDiscarded) {
  SimOptions options = split_options(9, 1, 20);  // the Secondary wrote less
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  options.split_brain_policy.after_sb_1pri = AfterSplitBrain1::consensus;
  expect_resolved(run_simulation(options), 1);
}

TEST(SplitBrain, OnePrimaryViolentlyAs0pWouldDiscardThePrimaryAndRrConflictDisconnectsIt) {
  SimOptions options = split_options(10, 1, 80);  // the Primary wrote less
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  options.split_brain_policy.after_sb_1pri = AfterSplitBrain1::violently_as0p;
  const RunResult result = run_simulation(options);
  ASSERT_EQ(result.final_nodes.size(), 2u) << report(result);
  EXPECT_EQ(result.violation_count, 0u) << report(result);
  EXPECT_EQ(result.split_brain_reports, 2u) << report(result);
  EXPECT_EQ(result.blocks_discarded_by_split_brain, 0u) << report(result);
  // rr-conflict (default disconnect) is the would-be SyncTarget's decision: the Primary drops
  // the connection and stays StandAlone; the Secondary is left trying to connect.
  EXPECT_EQ(result.final_nodes[0].role, Role::primary);
  EXPECT_EQ(result.final_nodes[0].connections[1], ConnectionState::standalone);
  EXPECT_EQ(result.final_nodes[1].connections[0], ConnectionState::connecting);
  for (const RunResult::NodeSummary& summary : result.final_nodes) {
    EXPECT_EQ(summary.disk_digest, summary.disk_digest_at_heal) << report(result);
  }
}

TEST(SplitBrain, TwoPrimariesCallPriLostAfterSbTheLoserDemotesAndIsDiscarded) {
  SimOptions options = split_options(11, 2, 20);
  options.split_brain_policy.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  options.split_brain_policy.after_sb_2pri = AfterSplitBrain2::call_pri_lost_after_sb;
  const RunResult result = run_simulation(options);
  expect_resolved(result, 1);
  EXPECT_EQ(result.final_nodes[0].role, Role::primary);
  EXPECT_EQ(result.final_nodes[1].role, Role::secondary);
}

TEST(SplitBrain, ConnectWithDiscardMyDataOnTheVictimResolvesAStandAloneSplitBrain) {
  SimOptions options = split_options(12, 0, 50);
  options.split_brain.manual_recovery = true;
  const RunResult result = run_simulation(options);
  ASSERT_EQ(result.final_nodes.size(), 2u) << report(result);
  EXPECT_EQ(result.violation_count, 0u) << report(result);
  EXPECT_EQ(result.split_brain_unresolved_reports, 2u) << report(result);
  EXPECT_EQ(result.split_brain_reports, 4u) << report(result);  // detected again on connect
  EXPECT_GT(result.blocks_discarded_by_split_brain, 0u) << report(result);
  EXPECT_EQ(result.final_nodes[1].disk_digest, result.final_nodes[0].disk_digest);
  EXPECT_EQ(result.final_nodes[0].disk_digest, result.final_nodes[0].disk_digest_at_heal);
  EXPECT_EQ(result.final_nodes[0].connections[1], ConnectionState::connected);
  EXPECT_EQ(result.final_nodes[1].connections[0], ConnectionState::connected);
}

}  // namespace
}  // namespace ditto::sim
