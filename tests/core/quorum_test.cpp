// The pure quorum computation (drbd9-semantics.md §8.1): every worked example and each step of
// the algorithm.
#include <gtest/gtest.h>

#include "core/quorum.h"

namespace ditto::core {
namespace {

constexpr QuorumRule majority{QuorumRule::Kind::majority, 0};
constexpr QuorumRule all{QuorumRule::Kind::all, 0};

QuorumPeer connected(DiskState disk) {
  QuorumPeer peer;
  peer.connected = true;
  peer.disk = disk;
  return peer;
}

QuorumPeer crashed() {
  return QuorumPeer{};  // disconnected, last known DUnknown/UpToDate: unknown
}

QuorumPeer departed() {
  QuorumPeer peer;
  peer.disk = DiskState::up_to_date;
  peer.left_gracefully = true;
  return peer;
}

QuorumPeer diskless(bool is_connected) {
  QuorumPeer peer;
  peer.connected = is_connected;
  peer.disk = DiskState::diskless;
  peer.intentional_diskless = true;
  return peer;
}

// This node (id 0, UpToDate, had quorum) and peers 1, 2, ... as given.
QuorumInput input_with(QuorumRule rule, std::initializer_list<QuorumPeer> peers) {
  QuorumInput input;
  input.settings.quorum = rule;
  input.disk = DiskState::up_to_date;
  input.had_quorum = true;
  std::uint32_t node = 1;
  for (const QuorumPeer& peer : peers) {
    input.peers[node] = peer;
    input.peers_mask |= 1u << node;
    node += 1;
  }
  return input;
}

TEST(QuorumRule, MajorityAllAndNumbersRequireTheDocumentedCounts) {
  EXPECT_EQ(quorum_at(majority, 3), 2u);
  EXPECT_EQ(quorum_at(majority, 4), 3u);
  EXPECT_EQ(quorum_at(majority, 1), 1u);
  EXPECT_EQ(quorum_at(majority, 0), 1u);
  EXPECT_EQ(quorum_at(all, 3), 3u);
  EXPECT_EQ(quorum_at(QuorumRule{QuorumRule::Kind::nodes, 2}, 5), 2u);
  EXPECT_EQ(quorum_at(QuorumRule{}, 5), 0u);
}

TEST(QuorumRule, ConfigValuesParseAndPrintBackAndNonsenseIsRejected) {
  for (const char* text : {"off", "majority", "all", "1", "32"}) {
    const auto rule = parse_quorum_rule(text);
    ASSERT_TRUE(rule.has_value()) << text;
    EXPECT_EQ(to_string(*rule), text);
  }
  for (const char* text : {"", "0", "33", "most", "-1", "100"}) {
    EXPECT_FALSE(parse_quorum_rule(text).has_value()) << text;
  }
}

TEST(Quorum, ThreeConnectedDiskfulNodesHaveQuorum) {
  const auto outcome = compute_quorum(input_with(
      majority, {connected(DiskState::up_to_date), connected(DiskState::up_to_date)}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.voters, 3u);
}

TEST(Quorum, OneCrashedPeerOfThreeLeavesQuorum) {
  const auto outcome =
      compute_quorum(input_with(majority, {connected(DiskState::up_to_date), crashed()}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.unknown, 1u);
}

TEST(Quorum, TwoCrashedPeersOfThreeLoseQuorum) {
  const auto outcome = compute_quorum(input_with(majority, {crashed(), crashed()}));
  EXPECT_FALSE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.voters, 3u);
  EXPECT_EQ(outcome.counts.needed, 2u);
}

TEST(Quorum, LastManStandingKeepsQuorumWhenBothPeersLeftGracefully) {
  const auto outcome = compute_quorum(input_with(majority, {departed(), departed()}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.voters, 1u);
  EXPECT_EQ(outcome.counts.needed, 1u);
}

TEST(Quorum, OneGracefulAndOneCrashedPeerLoseQuorum) {
  const auto outcome = compute_quorum(input_with(majority, {departed(), crashed()}));
  EXPECT_FALSE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.voters, 3u);
}

TEST(Quorum, APeerLastSeenOutdatedCountsAsGone) {
  QuorumPeer outdated;
  outdated.disk = DiskState::outdated;
  const auto outcome = compute_quorum(input_with(majority, {outdated, outdated}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.outdated, 2u);
}

TEST(Quorum, QuorumlessPeersDoNotVoteUnlessTheyCouldFormAQuorum) {
  QuorumPeer quorumless;
  quorumless.quorumless = true;
  // 4 nodes: me and one UpToDate peer present, two quorumless absent. Absent 2 >= needed 3?
  // No: they cannot have quorum, so only the 2 present vote and have it.
  auto outcome = compute_quorum(
      input_with(majority, {connected(DiskState::up_to_date), quorumless, departed()}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  // 3 nodes, me alone, two quorumless absent: they are a majority, so they count as unknown.
  outcome = compute_quorum(input_with(majority, {quorumless, quorumless}));
  EXPECT_FALSE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.unknown, 2u);
}

TEST(Quorum, QuorumAllNeedsEveryVoter) {
  EXPECT_FALSE(
      compute_quorum(input_with(all, {connected(DiskState::up_to_date), crashed()})).have_quorum);
  EXPECT_TRUE(compute_quorum(input_with(all, {connected(DiskState::up_to_date), departed()}))
                  .have_quorum);
}

TEST(Quorum, AConnectedPeerThatIsNotUpToDateIsPresentAndVotes) {
  const auto outcome = compute_quorum(
      input_with(majority, {connected(DiskState::inconsistent), crashed()}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.present, 1u);
  // A diskful peer whose disk detached still votes while connected.
  EXPECT_TRUE(compute_quorum(input_with(majority, {connected(DiskState::diskless), crashed()}))
                  .have_quorum);
}

TEST(Quorum, MinimumRedundancyCountsOnlyUpToDateNodes) {
  QuorumInput input =
      input_with(majority, {connected(DiskState::inconsistent), connected(DiskState::up_to_date)});
  input.settings.minimum_redundancy = QuorumRule{QuorumRule::Kind::nodes, 2};
  EXPECT_TRUE(compute_quorum(input).have_quorum);
  input.peers[2] = connected(DiskState::outdated);
  const auto outcome = compute_quorum(input);
  EXPECT_FALSE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_EQ(outcome.counts.redundancy_needed, 2u);
}

TEST(Quorum, TiebreakerKeepsQuorumOnBothSidesOfACutBetweenTwoDiskfulNodes) {
  // Two diskful nodes, the link between them cut, both still see the diskless node 2.
  const auto outcome = compute_quorum(input_with(majority, {crashed(), diskless(true)}));
  EXPECT_TRUE(outcome.have_quorum) << describe(outcome.counts);
  EXPECT_TRUE(outcome.by_tiebreaker);
}

TEST(Quorum, TiebreakerDoesNotHelpANodeThatAlsoLostTheDisklessNode) {
  const auto outcome = compute_quorum(input_with(majority, {crashed(), diskless(false)}));
  EXPECT_FALSE(outcome.have_quorum) << describe(outcome.counts);
}

TEST(Quorum, ANodeThatLostQuorumCannotRegainItThroughTheDisklessNodeAlone) {
  QuorumInput input = input_with(majority, {crashed(), diskless(true)});
  input.had_quorum = false;
  EXPECT_FALSE(compute_quorum(input).have_quorum);
}

TEST(Quorum, TwoDiskfulAndATiebreakerAllConnectedHaveQuorumWithoutTheTieRule) {
  const auto outcome =
      compute_quorum(input_with(majority, {connected(DiskState::up_to_date), diskless(true)}));
  EXPECT_TRUE(outcome.have_quorum);
  EXPECT_FALSE(outcome.by_tiebreaker);
  EXPECT_EQ(outcome.counts.voters, 2u);  // the diskless node does not vote
}

TEST(Quorum, ADisklessNodeHasQuorumThroughAQuorateUpToDatePeer) {
  QuorumPeer quorate = connected(DiskState::up_to_date);
  quorate.reports_quorum = true;
  QuorumInput input = input_with(majority, {quorate, crashed(), crashed()});
  input.disk = DiskState::diskless;
  input.intentional_diskless = true;
  EXPECT_TRUE(compute_quorum(input).have_quorum);
  input.peers[1].reports_quorum = false;
  EXPECT_FALSE(compute_quorum(input).have_quorum);
}

TEST(Quorum, WithQuorumOffTheNodeHasQuorumButTheComputationStillSaysWhatWouldHappen) {
  const auto outcome = compute_quorum(input_with(QuorumRule{}, {crashed(), crashed()}));
  EXPECT_TRUE(outcome.have_quorum);
  EXPECT_FALSE(outcome.computed);
}

}  // namespace
}  // namespace ditto::core
