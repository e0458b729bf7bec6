// The net options both ends of a connection must agree on (DRBD's P_PROTOCOL): the comparison,
// and two nodes that disagree refusing the connection.
#include "core/connection_settings.h"

#include <gtest/gtest.h>

#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using harness::node_id;

TEST(ConnectionSettings, EqualSettingsAreCompatible) {
  ConnectionSettings settings;
  settings.protocol = Protocol::a;
  settings.after_sb_0pri = AfterSplitBrain0::discard_zero_changes;
  settings.allow_two_primaries = true;
  EXPECT_EQ(incompatible_settings(settings, settings), std::nullopt);
}

TEST(ConnectionSettings, EachMismatchIsNamedWithBothValues) {
  const ConnectionSettings local;
  const std::pair<void (*)(ConnectionSettings&), const char*> cases[] = {
      {[](ConnectionSettings& s) { s.protocol = Protocol::a; },
       "incompatible protocol settings: local C, peer A"},
      {[](ConnectionSettings& s) { s.after_sb_0pri = AfterSplitBrain0::discard_least_changes; },
       "incompatible after-sb-0pri settings: local disconnect, peer discard-least-changes"},
      {[](ConnectionSettings& s) { s.after_sb_1pri = AfterSplitBrain1::consensus; },
       "incompatible after-sb-1pri settings: local disconnect, peer consensus"},
      {[](ConnectionSettings& s) { s.after_sb_2pri = AfterSplitBrain2::violently_as0p; },
       "incompatible after-sb-2pri settings: local disconnect, peer violently-as0p"},
      {[](ConnectionSettings& s) { s.allow_two_primaries = true; },
       "incompatible allow-two-primaries settings: local no, peer yes"},
  };
  for (const auto& [change, reason] : cases) {
    ConnectionSettings remote = local;
    change(remote);
    EXPECT_EQ(incompatible_settings(local, remote), reason);
  }
}

// discard-node-NAME resolves to discard-local on the named node and discard-remote on the other:
// both sides then agree which node loses.
TEST(ConnectionSettings, DiscardLocalMatchesThePeersDiscardRemote) {
  ConnectionSettings local;
  ConnectionSettings remote;
  local.after_sb_0pri = AfterSplitBrain0::discard_local;
  remote.after_sb_0pri = AfterSplitBrain0::discard_remote;
  EXPECT_EQ(incompatible_settings(local, remote), std::nullopt);
  remote.after_sb_0pri = AfterSplitBrain0::discard_local;
  EXPECT_EQ(incompatible_settings(local, remote),
            "incompatible after-sb-0pri settings: local discard-local, peer discard-local");
}

TEST(ConnectionSettings, OnlyOneSideMayOfferToDiscardItsData) {
  ConnectionSettings local;
  ConnectionSettings remote;
  local.discard_my_data = true;
  EXPECT_EQ(incompatible_settings(local, remote), std::nullopt);
  remote.discard_my_data = true;
  EXPECT_EQ(incompatible_settings(local, remote),
            "incompatible discard-my-data settings: both sides offer to discard their data");
}

bool has_event(const Cluster& cluster, int node, const std::string& text) {
  for (const auto& [index, line] : cluster.events) {
    if (index == node && line.find(text) != std::string::npos) return true;
  }
  return false;
}

void expect_refused_on_both(const Cluster& cluster, const std::string& reason_on_node0) {
  for (int node = 0; node < 2; ++node) {
    SCOPED_TRACE(node);
    EXPECT_EQ(cluster.nodes[node].peer(node_id(1 - node))->connection,
              ConnectionState::standalone);
    EXPECT_TRUE(has_event(cluster, node, "connect-refused name:r0"));
  }
  EXPECT_TRUE(has_event(cluster, 0, "reason:\"" + reason_on_node0 + "\""));
  ASSERT_FALSE(cluster.disconnects.empty());
  for (const auto& [index, disconnect] : cluster.disconnects) {
    EXPECT_FALSE(disconnect.reconnect) << disconnect.reason;  // StandAlone until connect
  }
}

TEST(ConnectionSettings, NodesWithDifferentProtocolsRefuseToConnectAndStayStandAlone) {
  Cluster cluster(2, [](NodeConfig& config) {
    if (config.node_id == node_id(1)) config.protocol = Protocol::a;
  });
  cluster.connect(0, 1);
  expect_refused_on_both(cluster, "incompatible protocol settings: local C, peer A");
  EXPECT_TRUE(has_event(cluster, 1, "local A, peer C"));
  // Nothing of the peer's state was taken on: it is neither a replication target nor a voter.
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->disk, DiskState::dunknown);
}

TEST(ConnectionSettings, AllowTwoPrimariesOnOneSideOnlyRefusesTheConnection) {
  Cluster cluster(2, [](NodeConfig& config) {
    if (config.node_id == node_id(0)) config.allow_two_primaries = true;
  });
  cluster.connect(0, 1);
  expect_refused_on_both(cluster, "incompatible allow-two-primaries settings: local yes, peer no");
}

TEST(ConnectionSettings, DiscardMyDataOnBothSidesRefusesTheConnection) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  for (int node = 0; node < 2; ++node) {
    ASSERT_TRUE(cluster.nodes[node].on_admin(cluster.now, DisconnectPeer{node_id(1 - node)}).ok);
  }
  cluster.drain();
  for (int node = 0; node < 2; ++node) {
    ASSERT_TRUE(
        cluster.nodes[node].on_admin(cluster.now, ConnectPeer{node_id(1 - node), true}).ok);
  }
  cluster.drain();
  cluster.connect(0, 1);
  expect_refused_on_both(cluster,
                         "incompatible discard-my-data settings: both sides offer to discard "
                         "their data");
}

TEST(ConnectionSettings, MatchingSettingsConnect) {
  Cluster cluster(2, [](NodeConfig& config) {
    config.protocol = Protocol::b;
    config.split_brain.after_sb_0pri = config.node_id == node_id(0)
                                           ? AfterSplitBrain0::discard_local
                                           : AfterSplitBrain0::discard_remote;
  });
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[0].peer(node_id(1))->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[1].peer(node_id(0))->connection, ConnectionState::connected);
  EXPECT_FALSE(has_event(cluster, 0, "connect-refused"));
}

}  // namespace
}  // namespace ditto::core
