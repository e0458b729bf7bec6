// Fencing enforced by Node (drbd9-semantics.md §7): the fence-peer exit-code table against every
// policy, for a Primary that loses its peer (I/O frozen or not, the peer's recorded disk) and for
// a promotion with an unknown peer (allowed or refused); results discarded after a reconnect;
// resume-io; unfence-peer after the resync.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>

#include "core/fencing.h"
#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

Cluster fencing_cluster(FencingPolicy policy) {
  return Cluster(2, [&](NodeConfig& config) { config.fencing = policy; });
}

std::vector<CallHelper> calls(const Cluster& cluster, int node, const std::string& helper) {
  std::vector<CallHelper> result;
  for (const auto& [index, call] : cluster.helpers) {
    if (index == node && call.helper == helper) result.push_back(call);
  }
  return result;
}

void answer(Cluster& cluster, int node, const CallHelper& call, int exit_code) {
  cluster.nodes[node].on_helper_done(cluster.now, call.call, exit_code);
  cluster.settle();
}

// ---- The pure table ---------------------------------------------------------------------------

TEST(FencePeerOutcome, EachExitCodeMeansWhatTheTableSays) {
  const auto peer_disk = [](int code, DiskState own) {
    return fence_peer_outcome(code, own).peer_disk;
  };
  EXPECT_EQ(peer_disk(3, DiskState::up_to_date), DiskState::inconsistent);
  EXPECT_EQ(peer_disk(4, DiskState::up_to_date), DiskState::outdated);
  EXPECT_EQ(peer_disk(5, DiskState::up_to_date), DiskState::outdated);
  EXPECT_EQ(peer_disk(5, DiskState::consistent), std::nullopt);  // not sure the peer is dead
  EXPECT_EQ(peer_disk(6, DiskState::up_to_date), std::nullopt);
  EXPECT_TRUE(fence_peer_outcome(6, DiskState::up_to_date).outdate_self);
  EXPECT_EQ(peer_disk(7, DiskState::up_to_date), DiskState::outdated);
  for (int broken : {0, 1, 2, 8, 127, 137}) {
    const FenceOutcome outcome = fence_peer_outcome(broken, DiskState::up_to_date);
    EXPECT_TRUE(outcome.broken) << broken;
    EXPECT_FALSE(outcome.success || outcome.outdate_self || outcome.peer_disk) << broken;
  }
  for (int success : {3, 4, 7}) {
    EXPECT_TRUE(fence_peer_outcome(success, DiskState::up_to_date).success) << success;
  }
}

TEST(FencingPolicyName, ParsesTheThreeDrbdNamesAndNothingElse) {
  EXPECT_EQ(parse_fencing_policy("resource-and-stonith"), FencingPolicy::resource_and_stonith);
  EXPECT_EQ(parse_fencing_policy("resource-only"), FencingPolicy::resource_only);
  EXPECT_EQ(parse_fencing_policy("dont-care"), FencingPolicy::dont_care);
  EXPECT_EQ(parse_fencing_policy("stonith"), std::nullopt);
}

// ---- Every policy against every exit code -----------------------------------------------------

struct Expected {
  bool frozen_until_answer = false;  // the write waits for the handler
  bool frozen_after_answer = false;  // ... and keeps waiting (until resume-io)
  DiskState peer_disk = DiskState::dunknown;
  bool promoted = false;
  std::string refusal;  // when not promoted
};

Expected expected(FencingPolicy policy, int code) {
  Expected result;
  if (policy == FencingPolicy::dont_care) {
    result.promoted = true;
    return result;
  }
  const bool success = code == 3 || code == 4 || code == 5 || code == 7;  // both UpToDate
  result.frozen_until_answer = policy == FencingPolicy::resource_and_stonith;
  result.frozen_after_answer = result.frozen_until_answer && !success;
  if (success) result.peer_disk = code == 3 ? DiskState::inconsistent : DiskState::outdated;
  result.promoted = success;
  if (!success) result.refusal = code == 6 ? "SS_NO_UP_TO_DATE_DISK" : "SS_PRIMARY_NOP";
  return result;
}

class FencingTable : public testing::TestWithParam<std::tuple<FencingPolicy, int>> {};

TEST_P(FencingTable, APrimaryLosingItsPeerRunsFencePeerAndFreezesAsThePolicySays) {
  const auto [policy, code] = GetParam();
  const Expected want = expected(policy, code);
  Cluster cluster = fencing_cluster(policy);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.disconnect(0, 1);
  const auto fence = calls(cluster, 0, "fence-peer");
  if (policy == FencingPolicy::dont_care) {
    EXPECT_TRUE(fence.empty());
  } else {
    ASSERT_EQ(fence.size(), 1u);
    EXPECT_EQ(fence[0].peer, node_id(1));
    EXPECT_EQ(fence[0].up_to_date_nodes_mask, 0x1u);  // the peer is no longer known UpToDate
  }
  EXPECT_EQ(cluster.nodes[0].suspended_reason(), want.frozen_until_answer ? "fencing" : "no");
  cluster.write(0, 1, 0, 11);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1).has_value(), !want.frozen_until_answer);
  if (fence.empty()) return;
  answer(cluster, 0, fence[0], code);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->disk, want.peer_disk);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);  // a Primary keeps its data
  EXPECT_EQ(cluster.nodes[0].role(), Role::primary);
  EXPECT_EQ(cluster.completion_of(1).has_value(), !want.frozen_after_answer);
  EXPECT_EQ(cluster.nodes[0].io_suspended_for_fencing(), want.frozen_after_answer);
  if (want.frozen_after_answer) {
    // A broken handler: frozen until the administrator's resume-io.
    cluster.write(0, 2, 8, 12);
    cluster.settle();
    EXPECT_FALSE(cluster.completion_of(2).has_value());
    ASSERT_TRUE(cluster.nodes[0].on_admin(cluster.now, ResumeIo{}).ok);
    cluster.settle();
    EXPECT_EQ(cluster.nodes[0].suspended_reason(), "no");
    EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
  }
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
}

TEST_P(FencingTable, APromotionWithAnUnknownPeerRunsFencePeerFirst) {
  const auto [policy, code] = GetParam();
  const Expected want = expected(policy, code);
  Cluster cluster = fencing_cluster(policy);
  cluster.connect(0, 1);
  cluster.disconnect(0, 1);  // both Secondary: nobody fences yet
  EXPECT_TRUE(cluster.helpers.empty());
  const AdminResult result = cluster.nodes[1].on_admin(cluster.now, Promote{});
  cluster.settle();
  const auto fence = calls(cluster, 1, "fence-peer");
  if (policy == FencingPolicy::dont_care) {
    EXPECT_TRUE(result.ok && !result.pending);
    EXPECT_TRUE(fence.empty());
  } else {
    EXPECT_TRUE(result.ok && result.pending) << result.code;
    ASSERT_EQ(fence.size(), 1u);
    EXPECT_EQ(fence[0].peer, node_id(0));
    EXPECT_TRUE(cluster.nodes[1].promotion_pending());
    answer(cluster, 1, fence[0], code);
    EXPECT_FALSE(cluster.nodes[1].promotion_pending());
    ASSERT_TRUE(cluster.nodes[1].promotion_outcome().has_value());
    EXPECT_EQ(cluster.nodes[1].promotion_outcome()->code, want.refusal);
    EXPECT_EQ(cluster.nodes[1].disk_state(),
              code == 6 ? DiskState::outdated : DiskState::up_to_date);
  }
  EXPECT_EQ(cluster.nodes[1].role(), want.promoted ? Role::primary : Role::secondary);
}

std::string name(const testing::TestParamInfo<FencingTable::ParamType>& info) {
  std::string text = to_string(std::get<0>(info.param));
  for (char& c : text) {
    if (c == '-') c = '_';
  }
  return text + "_exit_" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(EveryPolicyAndExitCode, FencingTable,
                         testing::Combine(testing::Values(FencingPolicy::dont_care,
                                                          FencingPolicy::resource_only,
                                                          FencingPolicy::resource_and_stonith),
                                          testing::Values(0, 1, 3, 4, 5, 6, 7)),
                         name);

// ---- The rest of §7 ---------------------------------------------------------------------------

TEST(Fencing, ExitCodeFiveFencesNothingWhenThisNodeIsNotUpToDate) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.fencing = FencingPolicy::resource_only;
    if (config.node_id.value == 1) config.initial_disk_state = DiskState::consistent;
  });
  const AdminResult result = cluster.nodes[1].on_admin(cluster.now, Promote{true});
  cluster.settle();
  EXPECT_TRUE(result.pending);
  const auto fence = calls(cluster, 1, "fence-peer");
  ASSERT_EQ(fence.size(), 1u);
  answer(cluster, 1, fence[0], 5);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->disk, DiskState::dunknown);
  EXPECT_EQ(cluster.nodes[1].promotion_outcome()->code, "SS_PRIMARY_NOP");
}

TEST(Fencing, AResultArrivingAfterTheConnectionCameBackIsDiscarded) {
  Cluster cluster = fencing_cluster(FencingPolicy::resource_and_stonith);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.disconnect(0, 1);
  cluster.write(0, 1, 0, 11);
  cluster.settle();
  EXPECT_FALSE(cluster.completion_of(1).has_value());
  cluster.connect(0, 1);  // the connection returns while the handler runs: I/O thaws
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.nodes[0].suspended_reason(), "no");
  // The handler's late verdict ("peer is Primary, outdate yourself") changes nothing.
  const std::size_t events = cluster.events.size();
  answer(cluster, 0, calls(cluster, 0, "fence-peer").at(0), 6);
  EXPECT_EQ(cluster.nodes[0].disk_state(), DiskState::up_to_date);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->disk, DiskState::up_to_date);
  EXPECT_EQ(cluster.events.size(), events);
}

TEST(Fencing, AFencedPeerThatResyncsRunsUnfencePeerOnce) {
  Cluster cluster = fencing_cluster(FencingPolicy::resource_and_stonith);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.disconnect(0, 1);
  answer(cluster, 0, calls(cluster, 0, "fence-peer").at(0), 4);
  cluster.write(0, 1, 0, 11);  // the peer misses it: a resync follows the reconnect
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_NE(cluster.nodes[0].generations().bitmap[1], 0u);  // a new generation started
  EXPECT_TRUE(calls(cluster, 0, "unfence-peer").empty());
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::up_to_date);
  const auto unfence = calls(cluster, 0, "unfence-peer");
  ASSERT_EQ(unfence.size(), 1u);
  EXPECT_EQ(unfence[0].peer, node_id(1));
  cluster.disconnect(0, 1);  // fenced again: a second unfence follows only a second fence
  cluster.connect(0, 1);
  cluster.settle();
  EXPECT_EQ(calls(cluster, 0, "unfence-peer").size(), 1u);
}

TEST(Fencing, StonithFreezesTheCompletionsOfWritesInFlightWhenThePeerIsLost) {
  Cluster cluster = fencing_cluster(FencingPolicy::resource_and_stonith);
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, 0, 11);
  cluster.complete_disk(0);  // stored locally, the peer's ack still missing
  EXPECT_FALSE(cluster.completion_of(1).has_value());
  cluster.disconnect(0, 1);
  cluster.settle();
  EXPECT_FALSE(cluster.completion_of(1).has_value());  // not acknowledged before fencing
  answer(cluster, 0, calls(cluster, 0, "fence-peer").at(0), 7);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
}

}  // namespace
}  // namespace ditto::core
