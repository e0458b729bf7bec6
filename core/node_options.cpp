// Node: ChangeOptions, the options of a running node changed in place (drbdsetup net-options,
// disk-options, peer-device-options and resource-options, which drbdadm adjust issues).
//
// Which fields are live is decided here, in copy_live_options and
// structural_option_differences; a field added to NodeConfig belongs in one of the two (or is
// read only at start: initial_*, al_first_transaction_number, seed). Most live options are read
// where they are used, so the new value simply applies from its next use: the resync rate and
// fill target at the next resync step, max-epoch-size at the next write, the twopc timeouts at
// the next transaction, disk-flushes at the next barrier, read-balancing at the next read, the
// split-brain policies at the next handshake, verify-alg at the next verify, csums-alg at the
// next resync. Quorum is the exception: it is re-evaluated at once, so turning it on in a
// minority takes quorum away now, and turning it off thaws I/O frozen for lack of it.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

// DRBD's max-epoch-size range (drbd_limits.h).
constexpr std::uint32_t max_epoch_size_min = 1;
constexpr std::uint32_t max_epoch_size_max = 20000;

// The values the core could not run with; empty if all are usable.
std::string invalid_option_values(const NodeConfig& options) {
  std::string problems;
  const auto add = [&](const std::string& problem) {
    problems += (problems.empty() ? "" : "; ") + problem;
  };
  if (options.max_epoch_size < max_epoch_size_min || options.max_epoch_size > max_epoch_size_max) {
    add("max-epoch-size " + std::to_string(options.max_epoch_size) + " is not in " +
        std::to_string(max_epoch_size_min) + ".." + std::to_string(max_epoch_size_max));
  }
  if (options.twopc_timeout.ns <= 0) add("twopc-timeout must be positive");
  // drbd_nl.c's _check_net_options: only protocol A may pull ahead or disconnect.
  if (options.on_congestion != OnCongestion::block && options.protocol != Protocol::a) {
    add(std::string("on-congestion ") + to_string(options.on_congestion) +
        " requires protocol A (protocol " + std::string(to_string(options.protocol)) + ")");
  }
  if (options.congestion_fill_sectors > congestion_fill_sectors_max) {
    add("congestion-fill " + std::to_string(options.congestion_fill_sectors) +
        " is above 10 GiB (" + std::to_string(congestion_fill_sectors_max) + " sectors)");
  }
  if (options.congestion_extents < congestion_extents_min ||
      options.congestion_extents > congestion_extents_max) {
    add("congestion-extents " + std::to_string(options.congestion_extents) + " is not in " +
        std::to_string(congestion_extents_min) + ".." + std::to_string(congestion_extents_max));
  }
  if (options.twopc_retry_timeout.ns <= 0) add("twopc-retry-timeout must be positive");
  return problems;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

}  // namespace

void copy_live_options(const NodeConfig& from, NodeConfig& to) {
  to.resync_rate_kib = from.resync_rate_kib;
  to.c_plan_ahead_deciseconds = from.c_plan_ahead_deciseconds;
  to.c_fill_target_sectors = from.c_fill_target_sectors;
  to.c_delay_target_deciseconds = from.c_delay_target_deciseconds;
  to.c_max_rate_kib = from.c_max_rate_kib;
  to.c_min_rate_kib = from.c_min_rate_kib;
  to.split_brain = from.split_brain;
  to.quorum = from.quorum;
  to.fencing = from.fencing;
  to.verify_algorithm = from.verify_algorithm;
  to.csums_algorithm = from.csums_algorithm;
  to.csums_after_crash_only = from.csums_after_crash_only;
  to.max_epoch_size = from.max_epoch_size;
  to.disk_flushes = from.disk_flushes;
  to.twopc_timeout = from.twopc_timeout;
  to.twopc_retry_timeout = from.twopc_retry_timeout;
  to.read_balancing = from.read_balancing;
  to.on_congestion = from.on_congestion;
  to.congestion_fill_sectors = from.congestion_fill_sectors;
  to.congestion_extents = from.congestion_extents;
  to.allow_two_primaries = from.allow_two_primaries;
}

// requests_in_flight_max bounds queues the invariants check, and the activity log and bitmap
// fields describe the metadata layout attached at start: none of them may change under a
// running node.
std::vector<std::string> structural_option_differences(const NodeConfig& running,
                                                       const NodeConfig& wanted) {
  std::vector<std::string> names;
  const auto check = [&](bool same, const char* name) {
    if (!same) names.emplace_back(name);
  };
  check(running.resource_name == wanted.resource_name, "resource name");
  check(running.node_id == wanted.node_id, "node-id");
  check(running.node_name == wanted.node_name, "node name");
  check(running.peers == wanted.peers, "peers");
  check(running.protocol == wanted.protocol, "protocol");
  check(running.volume_size_bytes == wanted.volume_size_bytes, "volume size");
  check(running.requests_in_flight_max == wanted.requests_in_flight_max, "requests-in-flight-max");
  check(running.intentional_diskless == wanted.intentional_diskless, "disk none");
  check(running.al_updates == wanted.al_updates, "al-updates");
  check(running.al_extents == wanted.al_extents, "al-extents");
  check(running.al_stripes == wanted.al_stripes &&
            running.al_stripe_size_4k == wanted.al_stripe_size_4k,
        "activity log layout");
  check(running.bitmap_max_peers == wanted.bitmap_max_peers &&
            running.bitmap_slots == wanted.bitmap_slots,
        "bitmap slots");
  return names;
}

AdminResult Node::change_options(const ChangeOptions& command) {
  const std::vector<std::string> structural =
      structural_option_differences(config_, command.options);
  if (!structural.empty()) {
    return {false, "ERR_INVALID_REQUEST",
            "cannot change " + joined(structural) + " of a running resource (down and up it)"};
  }
  if (const std::string problems = invalid_option_values(command.options); !problems.empty()) {
    return {false, "ERR_INVALID_REQUEST", problems};
  }
  if (const std::string refusal = two_primaries_refusal(command.options); !refusal.empty()) {
    return {false, "ERR_INVALID_REQUEST", refusal};
  }
  const QuorumSettings quorum_before = config_.quorum;
  copy_live_options(command.options, config_);
  DITTO_ASSERT(structural_option_differences(config_, command.options).empty());
  if (config_.quorum != quorum_before) {
    // At once, as DRBD's resource-options does: the outcome may flip (apply_quorum_changes, at
    // the end of on_admin, acts on it), and the peers learn whether we now report quorum.
    update_quorum();
    if (!quorum_changed_ && !handshake_busy()) send_state_to_connected_peers();
  }
  return {};
}

}  // namespace ditto::core
