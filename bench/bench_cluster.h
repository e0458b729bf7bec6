// A driver for benchmarks of the replication core alone (no I/O): core::Nodes connected in a
// full mesh, every message encoded and decoded with the real wire codec (a payload is an 8-byte
// tag, as in the simulator), every disk operation completed on the next turn of the loop.
// Timers are ignored: benchmarks configure no rate limit that would need them.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "core/node.h"

namespace ditto::bench {

class BenchCluster {
 public:
  // `count` nodes (ids 0..count-1, a 1 GiB volume unless `adjust` changes it), all connected.
  explicit BenchCluster(int count, const std::function<void(core::NodeConfig&)>& adjust = {}) {
    for (int i = 0; i < count; ++i) {
      core::NodeConfig config;
      config.resource_name = "r0";
      config.node_id = NodeId{static_cast<std::uint8_t>(i)};
      config.volume_size_bytes = 1u << 30;
      for (int j = 0; j < count; ++j) {
        if (j != i) config.peers.push_back({NodeId{static_cast<std::uint8_t>(j)}, "n"});
      }
      if (adjust) adjust(config);
      nodes_.emplace_back(config);
    }
    for (int i = 0; i < count; ++i) {
      for (int j = i + 1; j < count; ++j) {
        nodes_[i].on_connection_up(Instant{}, NodeId{static_cast<std::uint8_t>(j)});
        nodes_[j].on_connection_up(Instant{}, NodeId{static_cast<std::uint8_t>(i)});
      }
    }
    run();
  }

  core::Node& node(int index) { return nodes_[static_cast<std::size_t>(index)]; }
  std::uint64_t completed() const { return completed_; }

  // What a digest read (DiskRead::digest) of `node` reports; without it, 0.
  void set_digest_of(std::function<std::uint64_t(std::uint8_t, const core::DiskRead&)> digest) {
    digest_of_ = std::move(digest);
  }

  // Runs every node's actions, messages and disk completions until nothing is left.
  void run() {
    for (std::uint8_t i = 0; i < nodes_.size(); ++i) collect(i);
    while (!network_.empty() || !disk_.empty()) {
      while (!disk_.empty()) {
        const DiskOperation operation = disk_.front();
        disk_.pop_front();
        nodes_[operation.node].on_disk_completed(Instant{}, operation.io, core::IoStatus::ok,
                                                 operation.payload, operation.digest);
        collect(operation.node);
      }
      while (!network_.empty()) {
        Message message = std::move(network_.front());
        network_.pop_front();
        const auto decoded = wire::decode(message.frame);
        const auto& frame = std::get<wire::Frame>(decoded);
        nodes_[message.to].on_message(Instant{}, NodeId{message.from}, frame.message,
                                      PayloadHandle{1});
        collect(message.to);
      }
    }
  }

 private:
  struct Message {
    std::uint8_t from = 0;
    std::uint8_t to = 0;
    std::vector<std::uint8_t> frame;
  };
  struct DiskOperation {
    std::uint8_t node = 0;
    IoId io;
    PayloadHandle payload;
    std::uint64_t digest = 0;
  };

  void collect(std::uint8_t index) {
    for (core::Action& action : nodes_[index].take_actions()) {
      if (auto* send = std::get_if<core::Send>(&action)) {
        static constexpr std::uint8_t tag[8] = {};
        std::span<const std::uint8_t> payload;
        if (send->payload) payload = std::span<const std::uint8_t>(tag, 8);
        network_.push_back({index, send->peer.value, wire::encode(send->message, payload)});
      } else if (auto* write = std::get_if<core::DiskWrite>(&action)) {
        disk_.push_back({index, write->io, {}, 0});
      } else if (auto* read = std::get_if<core::DiskRead>(&action)) {
        const std::uint64_t digest = read->digest && digest_of_ ? digest_of_(index, *read) : 0;
        disk_.push_back({index, read->io, PayloadHandle{read->allocate_payload ? 1u : 0u},
                         digest});
      } else if (auto* flush = std::get_if<core::DiskFlush>(&action)) {
        disk_.push_back({index, flush->io, {}, 0});
      } else if (std::holds_alternative<core::CompleteClient>(action)) {
        ++completed_;
      }
    }
  }

  std::vector<core::Node> nodes_;
  std::deque<Message> network_;
  std::deque<DiskOperation> disk_;
  std::function<std::uint64_t(std::uint8_t, const core::DiskRead&)> digest_of_;
  std::uint64_t completed_ = 0;
};

}  // namespace ditto::bench
