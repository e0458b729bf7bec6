// Internal to sim/: one simulated node (its core, disk and driver-side bookkeeping).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/simulation.h"

namespace ditto::sim {

inline std::string node_name(std::uint32_t node) {
  return "node" + std::to_string(node);
}

inline core::NodeConfig node_config(const SimOptions& options, std::uint32_t node) {
  core::NodeConfig config;
  config.resource_name = "r0";
  config.node_id = NodeId{static_cast<std::uint8_t>(node)};
  config.node_name = node_name(node);
  for (std::uint32_t peer = 0; peer < options.nodes; ++peer) {
    if (peer == node) continue;
    config.peers.push_back(
        core::PeerConfig{NodeId{static_cast<std::uint8_t>(peer)}, node_name(peer)});
  }
  config.volume_size_bytes = options.volume_size_bytes;
  return config;
}

struct Simulation::SimNode {
  SimNode(const SimOptions& options, std::uint32_t node)
      : core(std::make_unique<core::Node>(node_config(options, node))),
        disk(options.volume_size_bytes) {}

  std::unique_ptr<core::Node> core;
  SimDisk disk;
  bool alive = true;
  std::uint32_t incarnation = 0;
  std::map<std::uint64_t, std::vector<std::uint64_t>> read_buffers;  // IoId → tags read
  // Payload handles core holds: +1 per client write and received Data, -1 per ReleasePayload.
  std::int64_t payloads_held = 0;
};

}  // namespace ditto::sim
