// The write path per protocol (A, B, C), epochs and barriers, write-order fidelity on the
// Secondary, and backpressure (drbd9-semantics.md §2).
#include <gtest/gtest.h>

#include <set>

#include "core/node.h"
#include "tests/core/node_harness.h"

namespace ditto::core {
namespace {

using harness::Cluster;
using wire::MessageType;

Cluster primary_and_secondary(Protocol protocol, int count = 2,
                              const std::function<void(NodeConfig&)>& adjust = {}) {
  Cluster cluster(count, [&](NodeConfig& config) {
    config.protocol = protocol;
    if (adjust) adjust(config);
  });
  cluster.connect_all();
  cluster.promote(0);
  return cluster;
}

TEST(WritePath, ProtocolACompletesWhenLocalDiskIsDoneAndTheDataWasHandedToTheDriver) {
  Cluster cluster = primary_and_secondary(Protocol::a);
  cluster.write(0, 1, 0, 7);
  ASSERT_EQ(cluster.count_sent(0, MessageType::data), 1);
  EXPECT_FALSE(cluster.completion_of(1).has_value());  // local write still pending
  cluster.complete_disk(0);
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);  // the Data is not even delivered yet
  EXPECT_FALSE(cluster.network.empty());
  cluster.drain();
  // Protocol A asks for no per-write ack.
  EXPECT_EQ(cluster.count_sent(1, MessageType::recv_ack), 0);
  EXPECT_EQ(cluster.count_sent(1, MessageType::write_ack), 0);
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(WritePath, ProtocolBCompletesOnRecvAckBeforeThePeerWroteTheData) {
  Cluster cluster = primary_and_secondary(Protocol::b);
  cluster.write(0, 1, 0, 7);
  cluster.complete_disk(0);
  EXPECT_FALSE(cluster.completion_of(1).has_value());  // waiting for the peer's RecvAck
  ASSERT_TRUE(cluster.deliver_one());                  // Data reaches node 1 → RecvAck
  EXPECT_FALSE(cluster.completion_of(1).has_value());  // RecvAck still in flight
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.pending_writes(1).size(), 1u);  // the peer's disk write is still pending
  cluster.drain();
  EXPECT_EQ(cluster.count_sent(1, MessageType::write_ack), 0);
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(WritePath, ProtocolCCompletesOnlyOnWriteAckAfterThePeerDiskWrite) {
  Cluster cluster = primary_and_secondary(Protocol::c);
  cluster.write(0, 1, 0, 7);
  cluster.complete_disk(0);
  cluster.deliver_messages();
  EXPECT_FALSE(cluster.completion_of(1).has_value());  // received, not yet on the peer's disk
  cluster.complete_disk(1);
  EXPECT_FALSE(cluster.completion_of(1).has_value());  // WriteAck in flight
  cluster.deliver_messages();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  EXPECT_EQ(cluster.count_sent(1, MessageType::recv_ack), 0);
}

TEST(WritePath, FuaIsCarriedToTheSecondarysDiskWrite) {
  Cluster cluster = primary_and_secondary(Protocol::c);
  cluster.write(0, 1, 0, 7, WriteFlags{true});
  cluster.deliver_messages();
  const auto writes = cluster.pending_writes(1);
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_TRUE(writes[0].fua);
}

TEST(WritePath, ACompletedWriteClosesTheEpochAndTheSecondaryAcksTheBarrierWithItsSize) {
  Cluster cluster = primary_and_secondary(Protocol::c);
  const std::uint32_t first_epoch = cluster.nodes[0].current_epoch();
  cluster.write(0, 1, 0, 1);
  cluster.write(0, 2, 8, 2);
  cluster.drain();
  EXPECT_EQ(cluster.nodes[0].current_epoch(), first_epoch + 1);
  ASSERT_EQ(cluster.count_sent(0, MessageType::barrier), 1);
  ASSERT_EQ(cluster.count_sent(1, MessageType::barrier_ack), 1);
  for (const auto& [index, send] : cluster.sent) {
    if (const auto* ack = std::get_if<wire::BarrierAck>(&send.message)) {
      EXPECT_EQ(ack->barrier, first_epoch);
      EXPECT_EQ(ack->set_size, 2u);
    }
  }
  EXPECT_TRUE(cluster.disconnects.empty());
}

// The Secondary's disk must always hold a prefix of epochs plus part of the epoch in flight: a
// write of epoch N+1 may reach the disk only once every write of epoch N is stable (completed,
// then flushed). Here epochs hold two writes each, all six writes arrive at once, and the test
// completes the Secondary's I/O newest first — the order most likely to break the rule.
TEST(WritePath, ASecondaryNeverHasAnEpochNPlus1WriteOnDiskWhileAnEpochNWriteIsMissing) {
  Cluster cluster =
      primary_and_secondary(Protocol::a, 2, [](NodeConfig& config) { config.max_epoch_size = 2; });
  auto epoch_of = [](std::uint64_t payload) { return (payload + 1) / 2; };  // 1,2 → 1; 3,4 → 2
  std::set<std::uint64_t> completed;  // payloads written by the Secondary
  std::set<std::uint64_t> stable;     // payloads completed before a later flush completed
  std::map<std::uint64_t, std::uint64_t> payload_of_io;
  std::vector<std::string> violations;
  cluster.observer = [&](int index, const Action& action) {
    const auto* write = std::get_if<DiskWrite>(&action);
    if (index != 1 || write == nullptr) return;
    payload_of_io[write->io.value] = write->payload.value;
    for (std::uint64_t earlier = 1; earlier < write->payload.value; ++earlier) {
      if (epoch_of(earlier) < epoch_of(write->payload.value) && stable.count(earlier) == 0) {
        violations.push_back("write " + std::to_string(write->payload.value) +
                             " submitted while write " + std::to_string(earlier) +
                             " of an earlier epoch is not stable");
      }
    }
  };
  for (std::uint64_t payload = 1; payload <= 6; ++payload) {
    cluster.write(0, payload, 8 * payload, payload);
  }
  cluster.complete_disk(0);  // protocol A: all six complete locally, epochs close
  cluster.deliver_messages();
  for (int step = 0; step < 100; ++step) {
    cluster.deliver_messages();
    // Newest write first; a flush only when no write is left.
    // (The disk model is updated before the node hears of the completion, which may submit.)
    if (!cluster.pending_writes(1).empty()) {
      const DiskWrite newest = cluster.pending_writes(1).back();
      completed.insert(payload_of_io.at(newest.io.value));
      cluster.complete_io(1, newest.io.value);
      continue;
    }
    bool flushed = false;
    for (const auto& [key, flag] : cluster.disk_other) {
      if (key.first != 1) continue;
      stable.insert(completed.begin(), completed.end());
      cluster.complete_io(1, key.second);
      flushed = true;
      break;
    }
    if (!flushed) break;
  }
  EXPECT_TRUE(violations.empty()) << violations.front();
  EXPECT_EQ(completed.size(), 6u);
  EXPECT_EQ(cluster.count_sent(1, MessageType::barrier_ack), 3);
  EXPECT_TRUE(cluster.disconnects.empty());
}

TEST(WritePath, ABarrierAckThatDoesNotMatchTheOldestEpochDropsOnlyThatConnection) {
  Cluster cluster = primary_and_secondary(Protocol::c, 3);
  cluster.write(0, 1, 0, 7);
  cluster.complete_disk(0);
  cluster.deliver_messages();
  cluster.complete_disk(1);
  cluster.complete_disk(2);
  cluster.deliver_messages();  // the write completed: Barrier sent, the peers are flushing
  ASSERT_EQ(cluster.completion_of(1), ClientStatus::ok);
  ASSERT_EQ(cluster.count_sent(0, MessageType::barrier), 2);
  ASSERT_TRUE(cluster.disconnects.empty());
  cluster.nodes[0].on_message(cluster.now, NodeId{1}, wire::BarrierAck{999, 1}, PayloadHandle{});
  cluster.collect(0);
  ASSERT_EQ(cluster.disconnects.size(), 1u);
  EXPECT_EQ(cluster.disconnects[0].second.peer, NodeId{1});
  EXPECT_NE(cluster.disconnects[0].second.reason.find("does not match"), std::string::npos);
  bool protocol_error_event = false;
  for (const auto& [index, line] : cluster.events) {
    if (index == 0 && line.rfind("protocol-error name:r0 peer-node-id:1", 0) == 0) {
      protocol_error_event = true;
    }
  }
  EXPECT_TRUE(protocol_error_event);
  EXPECT_NE(cluster.nodes[0].peer(NodeId{1})->connection, ConnectionState::connected);
  EXPECT_EQ(cluster.nodes[0].peer(NodeId{2})->connection, ConnectionState::connected);
}

TEST(WritePath, WritesBeyondTheInFlightBoundAreRefusedAsBusy) {
  Cluster cluster = primary_and_secondary(
      Protocol::c, 2, [](NodeConfig& config) { config.requests_in_flight_max = 2; });
  cluster.write(0, 1, 0, 1);
  cluster.write(0, 2, 8, 2);
  cluster.write(0, 3, 16, 3);
  EXPECT_EQ(cluster.completion_of(3), ClientStatus::busy);
  EXPECT_EQ(cluster.released[0], 1);  // the refused write's payload comes back at once
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  cluster.write(0, 4, 24, 4);
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(4), ClientStatus::ok);
}

TEST(WritePath, ProtocolAWritesAreBusyWhileAPeerLeavesTooManyBarriersUnacknowledged) {
  Cluster cluster = primary_and_secondary(
      Protocol::a, 2, [](NodeConfig& config) { config.requests_in_flight_max = 3; });
  for (std::uint64_t request = 1; request <= 3; ++request) {
    cluster.write(0, request, 8 * request, request);
    cluster.complete_disk(0);  // completes at once: protocol A does not wait for the peer
    EXPECT_EQ(cluster.completion_of(request), ClientStatus::ok);
  }
  cluster.write(0, 4, 32, 4);  // the peer has not acknowledged a single barrier
  EXPECT_EQ(cluster.completion_of(4), ClientStatus::busy);
  cluster.drain();  // the peer catches up
  cluster.write(0, 5, 40, 5);
  cluster.complete_disk(0);
  EXPECT_EQ(cluster.completion_of(5), ClientStatus::ok);
}

TEST(WritePath, AClientFlushFollowsABarrierAndCompletesAfterThePeersWriteAndFlush) {
  Cluster cluster = primary_and_secondary(Protocol::a);
  cluster.write(0, 1, 0, 1);
  cluster.nodes[0].on_client_flush(cluster.now, RequestId{2});
  cluster.complete_disk(0);
  cluster.deliver_messages();
  EXPECT_FALSE(cluster.completion_of(2).has_value());
  // The Secondary holds the flush until its write completed: only the write is on its disk.
  EXPECT_EQ(cluster.pending_writes(1).size(), 1u);
  EXPECT_EQ(cluster.count_sent(1, MessageType::flush_ack), 0);
  cluster.drain();
  EXPECT_EQ(cluster.completion_of(2), ClientStatus::ok);
}

}  // namespace
}  // namespace ditto::core
