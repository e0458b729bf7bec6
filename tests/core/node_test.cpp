// Core transitions of the replication state machine, driven by hand (no simulator): two or
// three Nodes whose actions are executed by this small test harness.
#include "core/node.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace ditto::core {
namespace {

struct Cluster {
  struct InFlight {
    NodeId from;
    NodeId to;
    std::vector<std::uint8_t> frame;
  };

  std::vector<Node> nodes;
  std::deque<InFlight> network;                    // in-order delivery for the whole cluster
  std::map<std::pair<int, std::uint64_t>, DiskWrite> disk_writes;  // (node, io) → pending
  std::map<std::pair<int, std::uint64_t>, bool> disk_other;        // pending reads/flushes
  std::vector<std::pair<int, CompleteClient>> completions;
  std::vector<std::pair<int, std::string>> events;
  std::vector<std::pair<int, Disconnect>> disconnects;
  std::map<int, int> released;

  explicit Cluster(int count) {
    for (int i = 0; i < count; ++i) {
      NodeConfig config;
      config.resource_name = "r0";
      config.node_id = NodeId{static_cast<std::uint8_t>(i)};
      config.node_name = "node" + std::to_string(i);
      config.volume_size_bytes = 1024 * 1024;
      for (int j = 0; j < count; ++j) {
        if (j != i) config.peers.push_back({NodeId{static_cast<std::uint8_t>(j)}, "node" + std::to_string(j)});
      }
      nodes.emplace_back(config);
    }
  }

  void connect(int a, int b) {
    nodes[a].on_connection_up(Instant{}, NodeId{static_cast<std::uint8_t>(b)});
    nodes[b].on_connection_up(Instant{}, NodeId{static_cast<std::uint8_t>(a)});
    drain();
  }

  void disconnect(int a, int b) {
    std::erase_if(network, [&](const InFlight& m) {
      return (m.from.value == a && m.to.value == b) || (m.from.value == b && m.to.value == a);
    });
    nodes[a].on_connection_down(Instant{}, NodeId{static_cast<std::uint8_t>(b)});
    nodes[b].on_connection_down(Instant{}, NodeId{static_cast<std::uint8_t>(a)});
    drain();
  }

  void collect(int index) {
    for (Action& action : nodes[index].take_actions()) {
      if (auto* send = std::get_if<Send>(&action)) {
        std::vector<std::uint8_t> payload;
        if (send->payload) payload.assign(8, static_cast<std::uint8_t>(send->payload->value));
        network.push_back({NodeId{static_cast<std::uint8_t>(index)}, send->peer,
                           wire::encode(send->message, payload)});
      } else if (auto* write = std::get_if<DiskWrite>(&action)) {
        disk_writes[{index, write->io.value}] = *write;
      } else if (auto* read = std::get_if<DiskRead>(&action)) {
        disk_other[{index, read->io.value}] = true;
      } else if (auto* flush = std::get_if<DiskFlush>(&action)) {
        disk_other[{index, flush->io.value}] = true;
      } else if (auto* done = std::get_if<CompleteClient>(&action)) {
        completions.emplace_back(index, *done);
      } else if (auto* event = std::get_if<Event>(&action)) {
        events.emplace_back(index, event->line);
      } else if (auto* drop = std::get_if<Disconnect>(&action)) {
        disconnects.emplace_back(index, *drop);
      } else if (std::holds_alternative<ReleasePayload>(action)) {
        released[index] += 1;
      }
    }
  }

  // Delivers every message in flight (not disk completions).
  void deliver_messages() {
    for (std::size_t i = 0; i < nodes.size(); ++i) collect(static_cast<int>(i));
    while (!network.empty()) {
      InFlight message = network.front();
      network.pop_front();
      const auto decoded = wire::decode(message.frame);
      const auto& frame = std::get<wire::Frame>(decoded);
      PayloadHandle handle{frame.payload.empty() ? 0u : std::uint64_t{frame.payload[0]}};
      nodes[message.to.value].on_message(Instant{}, message.from, frame.message, handle);
      for (std::size_t i = 0; i < nodes.size(); ++i) collect(static_cast<int>(i));
    }
  }

  void complete_disk(int index, IoStatus status = IoStatus::ok) {
    std::vector<std::uint64_t> ios;
    for (auto& [key, write] : disk_writes) {
      if (key.first == index) ios.push_back(key.second);
    }
    for (auto& [key, flag] : disk_other) {
      if (key.first == index) ios.push_back(key.second);
    }
    for (std::uint64_t io : ios) {
      disk_writes.erase({index, io});
      disk_other.erase({index, io});
      nodes[index].on_disk_completed(Instant{}, IoId{io}, status);
      collect(index);
    }
  }

  void drain() {
    for (int round = 0; round < 20; ++round) {
      deliver_messages();
      for (std::size_t i = 0; i < nodes.size(); ++i) complete_disk(static_cast<int>(i));
      deliver_messages();
    }
  }

  std::optional<ClientStatus> completion_of(std::uint64_t request) const {
    for (const auto& [index, done] : completions) {
      if (done.request.value == request) return done.status;
    }
    return std::nullopt;
  }
};

TEST(Node, ConnectedPeersSeeEachOtherAsConnectedAndUpToDate) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  const auto peer = cluster.nodes[0].peer(NodeId{1});
  ASSERT_TRUE(peer.has_value());
  EXPECT_EQ(peer->connection, ConnectionState::connected);
  EXPECT_EQ(peer->disk, DiskState::up_to_date);
  EXPECT_EQ(peer->role, Role::secondary);
}

TEST(Node, ProtocolCWriteCompletesOnlyAfterLocalWriteAndPeerAck) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  cluster.nodes[0].on_client_write(Instant{}, RequestId{7}, Sector{8}, 4096, PayloadHandle{1}, {});
  cluster.deliver_messages();  // Data reaches the secondary; nothing completed on disk yet
  EXPECT_FALSE(cluster.completion_of(7).has_value());
  cluster.complete_disk(0);  // local write done, peer still pending
  EXPECT_FALSE(cluster.completion_of(7).has_value());
  cluster.complete_disk(1);  // peer's disk done → WriteAck in flight
  EXPECT_FALSE(cluster.completion_of(7).has_value());
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(7), ClientStatus::ok);
  EXPECT_EQ(cluster.released[0], 1);  // the client payload, released exactly once
  EXPECT_EQ(cluster.released[1], 1);  // the received payload on the secondary
}

TEST(Node, WriteOnASecondaryIsRefusedAsNotPrimary) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.nodes[1].on_client_write(Instant{}, RequestId{1}, Sector{0}, 4096, PayloadHandle{1}, {});
  cluster.collect(1);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::not_primary);
}

TEST(Node, WriteBeyondTheEndOfTheVolumeIsOutOfRange) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.nodes[0].on_client_write(Instant{}, RequestId{1}, Sector{2048 - 7}, 4096,
                                   PayloadHandle{1}, {});
  cluster.collect(0);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::out_of_range);
}

TEST(Node, PromotionIsRefusedWhileAPeerIsPrimary) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  const AdminResult result = cluster.nodes[1].on_admin(Instant{}, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_TWO_PRIMARIES");
  EXPECT_FALSE(cluster.nodes[1].may_promote());
}

TEST(Node, APeerThatDisconnectsStopsHoldingBackCompletion) {
  Cluster cluster(3);
  cluster.connect(0, 1);
  cluster.connect(0, 2);
  cluster.connect(1, 2);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  cluster.nodes[0].on_client_write(Instant{}, RequestId{3}, Sector{0}, 8192, PayloadHandle{2}, {});
  cluster.deliver_messages();
  cluster.complete_disk(0);
  cluster.complete_disk(1);
  cluster.deliver_messages();
  EXPECT_FALSE(cluster.completion_of(3).has_value());  // node 2 has not acked yet
  cluster.disconnect(0, 2);
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::ok);
}

TEST(Node, ANodeThatMissedWritesComesBackOutdatedAndCannotBePromoted) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.deliver_messages();
  cluster.disconnect(0, 1);
  cluster.nodes[0].on_client_write(Instant{}, RequestId{4}, Sector{0}, 4096, PayloadHandle{3}, {});
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(4), ClientStatus::ok);
  cluster.connect(0, 1);
  EXPECT_EQ(cluster.nodes[1].disk_state(), DiskState::outdated);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->disk, DiskState::outdated);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Demote{}).ok);
  cluster.deliver_messages();
  const AdminResult result = cluster.nodes[1].on_admin(Instant{}, Promote{});
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.code, "SS_NO_UP_TO_DATE_DISK");
}

TEST(Node, BothSidesWritingDuringAPartitionIsDetectedAsSplitBrain) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  cluster.disconnect(0, 1);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(cluster.nodes[i].on_admin(Instant{}, Promote{}).ok);
    cluster.nodes[i].on_client_write(Instant{}, RequestId{10u + static_cast<unsigned>(i)},
                                     Sector{0}, 4096, PayloadHandle{5}, {});
  }
  cluster.drain();
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Demote{}).ok);
  ASSERT_TRUE(cluster.nodes[1].on_admin(Instant{}, Demote{}).ok);
  cluster.connect(0, 1);
  ASSERT_FALSE(cluster.disconnects.empty());
  EXPECT_NE(cluster.disconnects.front().second.reason.find("split brain"), std::string::npos);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::standalone);
}

TEST(Node, AMessageBeforeHelloIsAProtocolErrorThatDropsOnlyThatConnection) {
  Cluster cluster(3);
  cluster.connect(0, 2);
  cluster.nodes[0].on_connection_up(Instant{}, NodeId{1});
  cluster.collect(0);
  cluster.nodes[0].on_message(Instant{}, NodeId{1}, wire::WriteAck{1, true}, PayloadHandle{});
  cluster.collect(0);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_EQ(cluster.disconnects[0].second.peer, NodeId{1});
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{2})->connection, ConnectionState::connected);
}

TEST(Node, HelloWithAnotherProtocolVersionIsRefusedWithTheVersionsInTheReason) {
  Cluster cluster(2);
  cluster.nodes[0].on_connection_up(Instant{}, NodeId{1});
  cluster.collect(0);
  wire::Hello hello{7, 9, NodeId{1}, NodeId{0}, 0, "r0"};
  cluster.nodes[0].on_message(Instant{}, NodeId{1}, hello, PayloadHandle{});
  cluster.collect(0);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_NE(cluster.disconnects[0].second.reason.find("7..9"), std::string::npos);
}

TEST(Node, FlushCompletesAfterLocalAndPeerFlush) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.nodes[0].on_client_flush(Instant{}, RequestId{9});
  cluster.deliver_messages();
  cluster.complete_disk(0);
  EXPECT_FALSE(cluster.completion_of(9).has_value());
  cluster.complete_disk(1);
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(9), ClientStatus::ok);
}

TEST(Node, ReadsAreServedFromTheLocalDisk) {
  Cluster cluster(2);
  cluster.nodes[1].on_client_read(Instant{}, RequestId{5}, Sector{16}, 4096);
  cluster.collect(1);
  EXPECT_FALSE(cluster.completion_of(5).has_value());
  cluster.complete_disk(1);
  ASSERT_EQ(cluster.completion_of(5), ClientStatus::ok);
  EXPECT_TRUE(cluster.completions.back().second.read_io.has_value());
}

TEST(Node, ALocalWriteErrorStillSucceedsWhenThePeerStoredTheData) {
  Cluster cluster(2);
  cluster.connect(0, 1);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.nodes[0].on_client_write(Instant{}, RequestId{6}, Sector{0}, 4096, PayloadHandle{1}, {});
  cluster.deliver_messages();
  cluster.complete_disk(0, IoStatus::io_error);
  cluster.complete_disk(1);
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(6), ClientStatus::ok);
}

TEST(Node, PromotionEmitsAnEvents2ResourceLine) {
  Cluster cluster(2);
  ASSERT_TRUE(cluster.nodes[0].on_admin(Instant{}, Promote{}).ok);
  cluster.collect(0);
  ASSERT_FALSE(cluster.events.empty());
  EXPECT_EQ(cluster.events.back().second.rfind("change resource name:r0 role:Primary", 0), 0u);
}

}  // namespace
}  // namespace ditto::core
