// The read-balancing policy (core/read_balancing.h, drbd9-semantics.md §9), one rule per test.
#include "core/read_balancing.h"

#include <gtest/gtest.h>

#include <vector>

namespace ditto::core {
namespace {

constexpr NodeId local_marker{99};  // stands for "the local disk" in the counts below

const std::vector<ReadCandidate> two_peers = {{NodeId{1}, 0}, {NodeId{2}, 0}};
const std::vector<ReadCandidate> one_peer = {{NodeId{1}, 0}};

NodeId place(ReadChoice choice) {
  return choose_read_source(choice).value_or(local_marker);
}

ReadChoice choice(ReadBalancing policy, bool local, const std::vector<ReadCandidate>& peers,
                  std::uint64_t sector = 0, std::uint64_t rotation = 0) {
  return ReadChoice{policy, local, 0, Sector{sector}, peers, rotation};
}

TEST(ReadBalancing, PreferLocalReadsLocallyWhileTheLocalDiskIsUpToDate) {
  for (std::uint64_t rotation = 0; rotation < 4; ++rotation) {
    EXPECT_EQ(place(choice(ReadBalancing::prefer_local, true, two_peers, 0, rotation)),
              local_marker);
  }
}

TEST(ReadBalancing, WithoutALocalDiskEveryPolicyPicksAnUpToDatePeer) {
  for (std::uint8_t policy = 0; policy <= static_cast<std::uint8_t>(ReadBalancing::striping_1m);
       ++policy) {
    const NodeId chosen = place(choice(static_cast<ReadBalancing>(policy), false, two_peers, 64));
    EXPECT_TRUE(chosen == NodeId{1} || chosen == NodeId{2})
        << to_string(static_cast<ReadBalancing>(policy));
  }
}

TEST(ReadBalancing, PreferRemoteAlwaysPicksAPeerAndRotatesOverThem) {
  EXPECT_EQ(place(choice(ReadBalancing::prefer_remote, true, two_peers, 0, 0)), NodeId{1});
  EXPECT_EQ(place(choice(ReadBalancing::prefer_remote, true, two_peers, 0, 1)), NodeId{2});
  EXPECT_EQ(place(choice(ReadBalancing::prefer_remote, true, two_peers, 0, 2)), NodeId{1});
}

TEST(ReadBalancing, PreferRemoteReadsLocallyWhenNoPeerIsUpToDate) {
  EXPECT_EQ(place(choice(ReadBalancing::prefer_remote, true, {})), local_marker);
}

TEST(ReadBalancing, RoundRobinAlternatesBetweenTheUpToDatePeers) {
  std::vector<NodeId> chosen;
  for (std::uint64_t rotation = 0; rotation < 4; ++rotation) {
    chosen.push_back(place(choice(ReadBalancing::round_robin, false, two_peers, 0, rotation)));
  }
  EXPECT_EQ(chosen, (std::vector<NodeId>{NodeId{1}, NodeId{2}, NodeId{1}, NodeId{2}}));
}

TEST(ReadBalancing, RoundRobinAlternatesBetweenTheLocalDiskAndAPeer) {
  EXPECT_EQ(place(choice(ReadBalancing::round_robin, true, one_peer, 0, 0)), local_marker);
  EXPECT_EQ(place(choice(ReadBalancing::round_robin, true, one_peer, 0, 1)), NodeId{1});
  EXPECT_EQ(place(choice(ReadBalancing::round_robin, true, one_peer, 0, 2)), local_marker);
}

TEST(ReadBalancing, LeastPendingGoesRemoteOnlyWhenTheLocalDiskHasMoreInFlight) {
  const std::vector<ReadCandidate> peers = {{NodeId{1}, 3}, {NodeId{2}, 2}};
  ReadChoice busy_local{ReadBalancing::least_pending, true, 3, Sector{0}, peers, 0};
  EXPECT_EQ(place(busy_local), NodeId{2});  // the peer with the fewest pending requests
  ReadChoice equal{ReadBalancing::least_pending, true, 2, Sector{0}, peers, 0};
  EXPECT_EQ(place(equal), local_marker);
}

TEST(ReadBalancing, LeastPendingRotatesAmongThePeersTiedForTheFewestPending) {
  const std::vector<ReadCandidate> peers = {{NodeId{1}, 1}, {NodeId{3}, 5}, {NodeId{4}, 1}};
  EXPECT_EQ(place(ReadChoice{ReadBalancing::least_pending, false, 0, Sector{0}, peers, 0}),
            NodeId{1});
  EXPECT_EQ(place(ReadChoice{ReadBalancing::least_pending, false, 0, Sector{0}, peers, 1}),
            NodeId{4});
  EXPECT_EQ(place(ReadChoice{ReadBalancing::least_pending, false, 0, Sector{0}, peers, 2}),
            NodeId{1});
}

TEST(ReadBalancing, WhenCongestedRemoteReadsLocallyAsPreferLocalDoes) {
  EXPECT_EQ(place(choice(ReadBalancing::when_congested_remote, true, two_peers)), local_marker);
}

TEST(ReadBalancing, StripingSends32KiBChunksToAlternatingPeers) {
  // 32 KiB = 64 sectors: sectors 0..63 on node 1, 64..127 on node 2, 128.. on node 1 again.
  EXPECT_EQ(place(choice(ReadBalancing::striping_32k, false, two_peers, 0)), NodeId{1});
  EXPECT_EQ(place(choice(ReadBalancing::striping_32k, false, two_peers, 63)), NodeId{1});
  EXPECT_EQ(place(choice(ReadBalancing::striping_32k, false, two_peers, 64)), NodeId{2});
  EXPECT_EQ(place(choice(ReadBalancing::striping_32k, false, two_peers, 127)), NodeId{2});
  EXPECT_EQ(place(choice(ReadBalancing::striping_32k, false, two_peers, 128)), NodeId{1});
}

TEST(ReadBalancing, StripingWithALocalDiskGoesRemoteWhenTheStripeBitIsSet) {
  // DRBD: remote when (sector >> (shift - 9)) & 1, shift 15 (32K) .. 20 (1M).
  const ReadBalancing policies[] = {ReadBalancing::striping_32k,  ReadBalancing::striping_64k,
                                    ReadBalancing::striping_128k, ReadBalancing::striping_256k,
                                    ReadBalancing::striping_512k, ReadBalancing::striping_1m};
  std::uint32_t shift = 15;
  for (const ReadBalancing policy : policies) {
    const std::uint64_t stripe_sectors = std::uint64_t{1} << (shift - 9);
    EXPECT_EQ(place(choice(policy, true, one_peer, 0)), local_marker) << to_string(policy);
    EXPECT_EQ(place(choice(policy, true, one_peer, stripe_sectors - 1)), local_marker)
        << to_string(policy);
    EXPECT_EQ(place(choice(policy, true, one_peer, stripe_sectors)), NodeId{1})
        << to_string(policy);
    EXPECT_EQ(place(choice(policy, true, one_peer, 2 * stripe_sectors)), local_marker)
        << to_string(policy);
    shift += 1;
  }
}

TEST(ReadBalancing, AStripedReadCrossingAStripeBoundaryGoesWhereItsFirstSectorGoes) {
  // A read of sectors 56..71 crosses from stripe 0 into stripe 1: its first sector decides.
  EXPECT_EQ(place(choice(ReadBalancing::striping_32k, false, two_peers, 56)), NodeId{1});
}

TEST(ReadBalancing, ParsingAcceptsDrbdSpellingsAndRejectsAnythingElse) {
  for (std::uint8_t value = 0; value <= static_cast<std::uint8_t>(ReadBalancing::striping_1m);
       ++value) {
    const auto policy = static_cast<ReadBalancing>(value);
    EXPECT_EQ(parse_read_balancing(to_string(policy)), policy);
  }
  EXPECT_EQ(parse_read_balancing("32K-striping"), ReadBalancing::striping_32k);
  EXPECT_EQ(parse_read_balancing("1M-striping"), ReadBalancing::striping_1m);
  EXPECT_FALSE(parse_read_balancing("32k-striping").has_value());
  EXPECT_FALSE(parse_read_balancing("").has_value());
}

}  // namespace
}  // namespace ditto::core
