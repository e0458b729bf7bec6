// Internal to sim/: one simulated node (its core, disk and driver-side bookkeeping).
#pragma once

#include <map>
#include <set>
#include <span>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/prng.h"
#include "sim/simulation.h"

namespace ditto::sim {

// Marks a payload handle that names several tags (SimNode::payload_tags). Tags are the
// workload's operation numbers, with torn_tag_bit or unreadable_tag_bit after disk faults.
inline constexpr std::uint64_t multi_tag_payload_bit = std::uint64_t{1} << 61;
static_assert(multi_tag_payload_bit != torn_tag_bit && multi_tag_payload_bit != unreadable_tag_bit);

inline std::string node_name(std::uint32_t node) {
  return "node" + std::to_string(node);
}

// `incarnation` counts the node's crashes: a restarted node draws new random numbers (data
// generation UUIDs, transaction ids), as a restarted DRBD does, not the ones it drew before.
inline core::NodeConfig node_config(const SimOptions& options, std::uint32_t node,
                                    std::uint32_t incarnation = 0) {
  core::NodeConfig config;
  config.seed = Prng::derive(options.seed, incarnation).next_u64();
  config.resource_name = "r0";
  config.node_id = NodeId{static_cast<std::uint8_t>(node)};
  config.node_name = node_name(node);
  for (std::uint32_t peer = 0; peer < options.nodes; ++peer) {
    if (peer == node) continue;
    config.peers.push_back(
        core::PeerConfig{NodeId{static_cast<std::uint8_t>(peer)}, node_name(peer)});
  }
  config.volume_size_bytes = options.volume_size_bytes;
  config.split_brain = options.split_brain_policy;
  config.quorum = options.quorum;
  config.fencing = options.fencing;
  // The activity log and persisted bitmaps, on every node (node_activity_log.cpp).
  config.al_updates = true;
  config.al_extents = options.al_extents;
  config.c_max_rate_kib = options.c_max_rate_kib;
  config.verify_algorithm = "crc32c";  // the simulator digests block tags in its place
  if (options.csums) config.csums_algorithm = "crc32c";
  config.csums_after_crash_only = options.csums_after_crash_only;
  config.read_balancing = options.read_balancing;
  config.intentional_diskless = options.diskless_client && node == 0;
  config.protocol = options.protocol;
  config.on_congestion = options.on_congestion;
  config.congestion_fill_sectors = options.congestion_fill_sectors;
  config.allow_two_primaries = options.two_primaries.enabled;
  return config;
}

// What the driver remembers per I/O in flight on one node, by IoId. Only put, taken or cleared,
// never iterated: a flat vector (unordered, swap-removed) answers as a map would, without an
// allocation per I/O. Few I/Os are in flight at a time.
template <typename Value>
class IoTable {
 public:
  // Like map[io] = value.
  void put(std::uint64_t io, Value value) {
    for (auto& [key, stored] : entries_) {
      if (key == io) {
        stored = std::move(value);
        return;
      }
    }
    entries_.emplace_back(io, std::move(value));
  }
  // Removes and returns the entry of `io`, if any.
  std::optional<Value> take(std::uint64_t io) {
    for (std::size_t index = 0; index < entries_.size(); ++index) {
      if (entries_[index].first != io) continue;
      std::optional<Value> value = std::move(entries_[index].second);
      if (index + 1 != entries_.size()) entries_[index] = std::move(entries_.back());
      entries_.pop_back();
      return value;
    }
    return std::nullopt;
  }
  void clear() { entries_.clear(); }

 private:
  std::vector<std::pair<std::uint64_t, Value>> entries_;
};

struct Simulation::SimNode {
  SimNode(const SimOptions& options, std::uint32_t node)
      : core(std::make_unique<core::Node>(node_config(options, node))),
        disk(options.volume_size_bytes),
        disk_model(options.disk) {}

  std::unique_ptr<core::Node> core;
  SimDisk disk;
  bool alive = true;
  std::uint32_t incarnation = 0;
  std::map<std::uint64_t, std::vector<std::uint64_t>> read_buffers;  // IoId → tags read
  IoTable<std::uint64_t> write_tags;  // IoId → tag written
  // Reads whose buffer becomes a core payload (DiskRead::allocate_payload): IoId → incarnation.
  IoTable<std::uint32_t> payload_reads;
  // Online verify's digest reads (DiskRead::digest): their tags become a digest.
  std::set<std::uint64_t> digest_reads;
  // Payload handles core holds: +1 per client write and received Data, -1 per ReleasePayload.
  std::int64_t payloads_held = 0;
  std::string traced_generations;  // --trace: the generations last printed
  // CheckDiskSize asked (a resize): answered after the step, with the disk's fixed size.
  bool disk_size_check_pending = false;
  // Payloads of several blocks (a read served for a peer, or its reply): a payload handle is a
  // tag, except handles with multi_tag_payload_bit, which name the tags here.
  std::map<std::uint64_t, std::vector<std::uint64_t>> payload_tags;
  std::uint64_t next_payload_tags = 0;
  PayloadHandle hold_tags(std::span<const std::uint64_t> tags) {
    payloads_held += 1;
    if (tags.size() == 1) return PayloadHandle{tags.front()};
    const std::uint64_t handle = multi_tag_payload_bit | next_payload_tags++;
    payload_tags[handle].assign(tags.begin(), tags.end());
    return PayloadHandle{handle};
  }
  // The tags of a payload (one for a plain tag).
  std::span<const std::uint64_t> tags_of(const PayloadHandle& payload) const {
    if ((payload.value & multi_tag_payload_bit) == 0) return std::span(&payload.value, 1);
    return payload_tags.at(payload.value);
  }
  std::map<std::uint64_t, std::int64_t> timers;  // TimerId → armed deadline (ns)
  // Pause: events for the node wait in `deferred` until it resumes.
  Instant paused_until;
  bool paused = false;
  std::vector<SimEvent> deferred;
  // Disk faults.
  netem::LatencyModel disk_model;
  Instant slow_until;
  std::uint32_t slow_factor = 1;
  Instant write_errors_until;
  std::uint32_t write_error_percent = 0;
  Instant read_errors_until;
  std::uint32_t read_error_percent = 0;
  Instant reorder_until;
  std::uint32_t reorder_us_max = 0;
  std::uint64_t read_errors_unexplained = 0;  // injected read EIOs not yet seen by the client
  // Operator bookkeeping.
  enum class PromotionReason : std::uint8_t {
    initial,
    failover,
    outdated_test,
    split_brain,
    two_primaries,
  };
  bool promotion_requested = false;  // a Promote is pending in the core
  PromotionReason promotion_reason = PromotionReason::initial;
  bool up_to_date_at_promotion = false;
  Role last_role = Role::secondary;
};

}  // namespace ditto::sim
