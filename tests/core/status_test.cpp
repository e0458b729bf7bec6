#include "core/status.h"

#include <gtest/gtest.h>

namespace ditto::core {
namespace {

NodeConfig two_node_config() {
  NodeConfig config;
  config.resource_name = "r0";
  config.node_id = NodeId{0};
  config.node_name = "alpha";
  config.volume_size_bytes = 1024 * 1024;
  config.peers.push_back({NodeId{1}, "beta"});
  return config;
}

TEST(Status, AnUnconnectedPeerShowsItsConnectionStateAsDrbdsetupDoes) {
  Node node(two_node_config());
  EXPECT_EQ(format_status(node), "r0 role:Secondary\n  disk:UpToDate\n  beta connection:Connecting\n");
}

TEST(Status, AConnectedPeerShowsRoleAndPeerDisk) {
  Node node(two_node_config());
  node.on_connection_up(Instant{}, NodeId{1});
  const wire::Hello hello{wire::protocol_version, wire::protocol_version, NodeId{1}, NodeId{0},
                         0, "r0"};
  node.on_message(Instant{}, NodeId{1}, hello, PayloadHandle{});
  node.on_message(Instant{}, NodeId{1}, wire::StateReport{Role::secondary, DiskState::up_to_date, 1},
                  PayloadHandle{});
  EXPECT_EQ(format_status(node),
            "r0 role:Secondary\n  disk:UpToDate\n  beta role:Secondary\n    peer-disk:UpToDate\n");
}

TEST(Status, VerboseStatusNamesNodeIdsAndReplicationState) {
  Node node(two_node_config());
  const std::string text = format_status(node, {.verbose = true, .statistics = true});
  EXPECT_NE(text.find("r0 node-id:0 role:Secondary suspended:no"), std::string::npos);
  EXPECT_NE(text.find("beta node-id:1 connection:Connecting role:Unknown"), std::string::npos);
  EXPECT_NE(text.find("replication:Off peer-disk:DUnknown"), std::string::npos);
  EXPECT_NE(text.find("size:1024"), std::string::npos);
}

}  // namespace
}  // namespace ditto::core
