// A tiny driver for core::Node tests: N nodes whose actions this harness executes by hand.
// Messages go through the real wire codec and are delivered in order; disk operations wait
// until the test completes them (all at once, or one by one in any order); timers fire when
// the test advances the clock.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/node.h"

namespace ditto::core::harness {

inline NodeId node_id(int index) {
  return NodeId{static_cast<std::uint8_t>(index)};
}

struct Cluster {
  struct InFlight {
    NodeId from;
    NodeId to;
    std::vector<std::uint8_t> frame;
  };

  std::vector<Node> nodes;
  Instant now;
  std::deque<InFlight> network;  // in-order delivery for the whole cluster
  // Links (from, to) whose messages stay in `network`, in order, until the link is unclogged.
  std::set<std::pair<int, int>> clogged;
  std::map<std::pair<int, std::uint64_t>, DiskWrite> disk_writes;  // (node, io) → pending
  std::map<std::pair<int, std::uint64_t>, bool> disk_other;        // pending reads/flushes
  std::vector<std::pair<int, MetadataWrite>> metadata_writes;       // every one, in order
  std::map<std::pair<int, std::uint64_t>, Instant> timers;         // (node, timer) → deadline
  std::vector<std::pair<int, CompleteClient>> completions;
  std::vector<std::pair<int, std::string>> events;
  std::vector<std::pair<int, Disconnect>> disconnects;
  std::vector<std::pair<int, Send>> sent;  // every Send, in order
  std::map<int, int> released;
  std::vector<std::pair<int, CallHelper>> helpers;  // every CallHelper, in order
  // The backing disk's data area by node (CheckDiskSize's answer; absent: the configured size),
  // and the nodes that asked and have not been answered yet.
  std::map<int, std::uint64_t> backing_size_bytes;
  std::vector<int> disk_size_checks;
  // Called for every action as it is collected, before the harness executes it.
  std::function<void(int, const Action&)> observer;
  // The digest a node's digest read (DiskRead::digest) reports; without it, 0.
  std::function<std::uint64_t(int, const DiskRead&)> digest_of;
  std::map<std::pair<int, std::uint64_t>, DiskRead> digest_reads;  // pending, (node, io)
  // The payload handle a node's read with allocate_payload reports (a resync read, a read it
  // serves for a peer); without it, 0. Only its low byte crosses the harness's network.
  std::function<std::uint64_t(int, const DiskRead&)> payload_of;
  std::map<std::pair<int, std::uint64_t>, DiskRead> payload_reads;  // pending, (node, io)

  explicit Cluster(int count, const std::function<void(NodeConfig&)>& adjust = {}) {
    for (int i = 0; i < count; ++i) {
      NodeConfig config;
      config.resource_name = "r0";
      config.node_id = node_id(i);
      config.node_name = "node" + std::to_string(i);
      config.volume_size_bytes = 1024 * 1024;
      config.seed = 42;
      for (int j = 0; j < count; ++j) {
        if (j != i) config.peers.push_back({node_id(j), "node" + std::to_string(j)});
      }
      if (adjust) adjust(config);
      nodes.emplace_back(config);
    }
  }

  void connect(int a, int b) {
    nodes[a].on_connection_up(now, node_id(b));
    nodes[b].on_connection_up(now, node_id(a));
    drain();
  }

  void disconnect(int a, int b) {
    std::erase_if(network, [&](const InFlight& m) {
      return (m.from.value == a && m.to.value == b) || (m.from.value == b && m.to.value == a);
    });
    nodes[a].on_connection_down(now, node_id(b));
    nodes[b].on_connection_down(now, node_id(a));
    drain();
  }

  void connect_all() {
    for (std::size_t a = 0; a < nodes.size(); ++a) {
      for (std::size_t b = a + 1; b < nodes.size(); ++b) {
        connect(static_cast<int>(a), static_cast<int>(b));
      }
    }
  }

  void collect(int index) {
    for (Action& action : nodes[index].take_actions()) {
      if (observer) observer(index, action);
      if (auto* send = std::get_if<Send>(&action)) {
        sent.emplace_back(index, *send);
        std::vector<std::uint8_t> payload;
        if (send->payload) payload.assign(8, static_cast<std::uint8_t>(send->payload->value));
        network.push_back({node_id(index), send->peer, wire::encode(send->message, payload)});
      } else if (auto* write = std::get_if<DiskWrite>(&action)) {
        disk_writes[{index, write->io.value}] = *write;
      } else if (auto* read = std::get_if<DiskRead>(&action)) {
        disk_other[{index, read->io.value}] = true;
        if (read->digest) digest_reads[{index, read->io.value}] = *read;
        if (read->allocate_payload) payload_reads[{index, read->io.value}] = *read;
      } else if (auto* flush = std::get_if<DiskFlush>(&action)) {
        disk_other[{index, flush->io.value}] = true;
      } else if (auto* metadata = std::get_if<MetadataWrite>(&action)) {
        disk_other[{index, metadata->io.value}] = true;
        metadata_writes.emplace_back(index, *metadata);
      } else if (auto* done = std::get_if<CompleteClient>(&action)) {
        completions.emplace_back(index, *done);
      } else if (auto* event = std::get_if<Event>(&action)) {
        events.emplace_back(index, event->line);
      } else if (auto* drop = std::get_if<Disconnect>(&action)) {
        disconnects.emplace_back(index, *drop);
      } else if (std::holds_alternative<ReleasePayload>(action)) {
        released[index] += 1;
      } else if (auto* arm = std::get_if<ArmTimer>(&action)) {
        timers[{index, arm->timer.value}] = arm->deadline;
      } else if (auto* cancel = std::get_if<CancelTimer>(&action)) {
        timers.erase({index, cancel->timer.value});
      } else if (auto* helper = std::get_if<CallHelper>(&action)) {
        helpers.emplace_back(index, *helper);
      } else if (std::holds_alternative<CheckDiskSize>(action)) {
        disk_size_checks.push_back(index);
      }
    }
  }

  void collect_all() {
    for (std::size_t i = 0; i < nodes.size(); ++i) collect(static_cast<int>(i));
  }

  // Delivers the first message of a link that is not clogged; false when there is none.
  bool deliver_one() {
    collect_all();
    const auto next = std::find_if(network.begin(), network.end(), [&](const InFlight& m) {
      return !clogged.contains({m.from.value, m.to.value});
    });
    if (next == network.end()) return false;
    InFlight message = *next;
    network.erase(next);
    const auto decoded = wire::decode(message.frame);
    const auto& frame = std::get<wire::Frame>(decoded);
    PayloadHandle handle{frame.payload.empty() ? 0u : std::uint64_t{frame.payload[0]}};
    nodes[message.to.value].on_message(now, message.from, frame.message, handle);
    collect_all();
    return true;
  }

  // Delivers every message in flight (not disk completions).
  void deliver_messages() {
    while (deliver_one()) {
    }
  }

  void complete_io(int index, std::uint64_t io, IoStatus status = IoStatus::ok) {
    const bool known = disk_writes.erase({index, io}) + disk_other.erase({index, io}) == 1;
    ASSERT_TRUE(known) << "node " << index << " has no pending io " << io;
    std::uint64_t digest = 0;
    if (auto read = digest_reads.find({index, io}); read != digest_reads.end()) {
      if (digest_of) digest = digest_of(index, read->second);
      digest_reads.erase(read);
    }
    PayloadHandle payload{};
    if (auto read = payload_reads.find({index, io}); read != payload_reads.end()) {
      if (payload_of && status == IoStatus::ok) {
        payload = PayloadHandle{payload_of(index, read->second)};
      }
      payload_reads.erase(read);
    }
    nodes[index].on_disk_completed(now, IoId{io}, status, payload, digest);
    collect(index);
  }

  void complete_disk(int index, IoStatus status = IoStatus::ok) {
    std::vector<std::uint64_t> ios;
    for (auto& [key, write] : disk_writes) {
      if (key.first == index) ios.push_back(key.second);
    }
    for (auto& [key, flag] : disk_other) {
      if (key.first == index) ios.push_back(key.second);
    }
    for (std::uint64_t io : ios) complete_io(index, io, status);
  }

  std::vector<DiskWrite> pending_writes(int index) const {
    std::vector<DiskWrite> result;
    for (const auto& [key, write] : disk_writes) {
      if (key.first == index) result.push_back(write);
    }
    return result;
  }

  // Advances the clock to the earliest armed timer and fires it; false when none is armed.
  bool fire_next_timer() {
    collect_all();
    if (timers.empty()) return false;
    auto earliest = timers.begin();
    for (auto it = timers.begin(); it != timers.end(); ++it) {
      if (it->second < earliest->second) earliest = it;
    }
    const auto [index, timer] = earliest->first;
    if (earliest->second > now) now = earliest->second;
    timers.erase(earliest);
    nodes[index].on_timer(now, TimerId{timer});
    collect(index);
    return true;
  }

  // Answers every pending CheckDiskSize; false when none was pending.
  bool answer_disk_size_checks() {
    if (disk_size_checks.empty()) return false;
    std::vector<int> asking;
    asking.swap(disk_size_checks);
    for (int index : asking) {
      const auto found = backing_size_bytes.find(index);
      nodes[index].on_disk_size(now, found != backing_size_bytes.end()
                                         ? found->second
                                         : nodes[index].config().volume_size_bytes);
      collect(index);
    }
    return true;
  }

  void drain() {
    for (int round = 0; round < 20; ++round) {
      deliver_messages();
      answer_disk_size_checks();
      for (std::size_t i = 0; i < nodes.size(); ++i) complete_disk(static_cast<int>(i));
      deliver_messages();
    }
  }

  // Messages, disks and timers until nothing is left (or `steps_max` timers fired).
  void settle(int steps_max = 1000) {
    for (int step = 0; step < steps_max; ++step) {
      drain();
      if (!fire_next_timer()) return;
    }
  }

  std::optional<ClientStatus> completion_of(std::uint64_t request) const {
    for (const auto& [index, done] : completions) {
      if (done.request.value == request) return done.status;
    }
    return std::nullopt;
  }

  int count_sent(int from, wire::MessageType type) const {
    int count = 0;
    for (const auto& [index, send] : sent) {
      if (index == from && wire::type_of(send.message) == type) count += 1;
    }
    return count;
  }

  void promote(int index, bool force = false) {
    const AdminResult result = nodes[index].on_admin(now, Promote{force});
    ASSERT_TRUE(result.ok) << result.code << ": " << result.message;
    settle();
    ASSERT_EQ(nodes[index].role(), Role::primary);
  }

  void write(int index, std::uint64_t request, std::uint64_t sector, std::uint64_t payload,
             WriteFlags flags = {}) {
    nodes[index].on_client_write(now, RequestId{request}, Sector{sector}, 4096,
                                 PayloadHandle{payload}, flags);
    collect(index);
  }
};

// The first sector of 4 KiB block `block`.
inline std::uint64_t block_sector(std::uint64_t block) {
  return block * 8;
}

// Events of `node` containing `text`.
inline int events_containing(const Cluster& cluster, int node, const std::string& text) {
  int count = 0;
  for (const auto& [index, line] : cluster.events) {
    if (index == node && line.find(text) != std::string::npos) count += 1;
  }
  return count;
}

// `count` connected nodes, node 0 Primary, its write 1 (block 1) acknowledged; `adjust` as for
// Cluster.
inline Cluster primary_after_one_write(int count,
                                       const std::function<void(NodeConfig&)>& adjust = {}) {
  Cluster cluster(count, adjust);
  cluster.connect_all();
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  EXPECT_EQ(cluster.completion_of(1), ClientStatus::ok);
  return cluster;
}

// Node 1 misses ten blocks written on Primary node 0 and is disconnected from it.
inline void leave_node_one_behind(Cluster& cluster) {
  cluster.connect(0, 1);
  cluster.promote(0);
  cluster.write(0, 1, block_sector(1), 1);
  cluster.settle();
  cluster.disconnect(0, 1);
  for (std::uint64_t block = 0; block < 10; ++block) {
    cluster.write(0, 10 + block, block_sector(block * 3), 100 + block);
  }
  cluster.settle();
}

}  // namespace ditto::core::harness
