#include "datapath/control_adjust.h"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

namespace ditto::datapath {
namespace {

std::string milliseconds(Duration duration) {
  return std::to_string(duration.ns / 1'000'000) + " ms";
}

std::string address_text(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

class Planner {
 public:
  Planner(const DaemonConfig& running, const DaemonConfig& file) : running_(running), file_(file) {}

  AdjustPlan plan() {
    compare_host();
    compare_volumes();
    compare_peers();
    compare_transport();
    compare_core_options();
    return std::move(plan_);
  }

 private:
  void refuse(const config::Location& where, const std::string& what) {
    plan_.needs_down_up.push_back(where.to_string() + ": " + what + " needs down/up");
  }
  void change(const std::string& what) { plan_.changes.push_back(what); }

  void compare_host() {
    const config::Host& before = running_.self;
    const config::Host& after = file_.self;
    if (before.node_id != after.node_id) {
      refuse(after.location, "node-id " + std::to_string(before.node_id.value) + " -> " +
                                 std::to_string(after.node_id.value));
    }
    if (before.address != after.address || before.port != after.port) {
      refuse(after.location, "address " + address_text(before.address, before.port) + " -> " +
                                 address_text(after.address, after.port));
    }
    if (running_.node.protocol != file_.node.protocol) {
      refuse(file_.resource.location, "protocol " + std::string(to_string(running_.node.protocol)) +
                                          " -> " + std::string(to_string(file_.node.protocol)));
    }
    if (!(running_.transport.tls == file_.transport.tls)) {
      refuse(file_.resource.location, "tls and its certificate files");
    }
    compare_options_section();
  }

  // The resource's options section: the quorum options and the twopc timeouts are core options
  // (compare_core_options lists them); any other one written differently needs down/up.
  void compare_options_section() {
    static constexpr std::array<std::string_view, 6> live{"quorum",
                                                          "quorum-minimum-redundancy",
                                                          "on-no-quorum",
                                                          "on-suspended-primary-outdated",
                                                          "twopc-timeout",
                                                          "twopc-retry-timeout"};
    const config::Section& before = running_.resource.options;
    const config::Section& after = file_.resource.options;
    const auto written = [](const config::Section& section, const std::string& key) {
      const config::Option* option = section.find(key);
      return option != nullptr && !option->inherited ? option : nullptr;
    };
    std::vector<std::string> keys;
    for (const config::Section* section : {&before, &after}) {
      for (const config::Option& option : section->options) {
        if (std::find(keys.begin(), keys.end(), option.key) == keys.end()) {
          keys.push_back(option.key);
        }
      }
    }
    for (const std::string& key : keys) {
      if (std::find(live.begin(), live.end(), key) != live.end()) continue;
      const config::Option* old_option = written(before, key);
      const config::Option* new_option = written(after, key);
      const std::string from = old_option != nullptr ? old_option->value_text() : "(unset)";
      const std::string to = new_option != nullptr ? new_option->value_text() : "(unset)";
      if (from == to) continue;
      refuse(new_option != nullptr ? new_option->location : file_.resource.location,
             "options " + key + " " + from + " -> " + to);
    }
  }

  void compare_volumes() {
    const std::vector<config::Volume>& before = running_.self.volumes;
    const std::vector<config::Volume>& after = file_.self.volumes;
    if (before.size() != after.size()) {
      refuse(file_.self.location, "volume count " + std::to_string(before.size()) + " -> " +
                                      std::to_string(after.size()));
      return;
    }
    for (std::size_t i = 0; i < before.size(); ++i) {
      const config::Volume& old_volume = before[i];
      const config::Volume& new_volume = after[i];
      const auto check = [&](const char* keyword, const std::string& from, const std::string& to) {
        if (from != to)
          refuse(new_volume.location, std::string(keyword) + " " + from + " -> " + to);
      };
      check("volume", std::to_string(old_volume.number), std::to_string(new_volume.number));
      check("device minor", std::to_string(old_volume.minor.value_or(0)),
            std::to_string(new_volume.minor.value_or(0)));
      check("device", old_volume.device, new_volume.device);
      check("disk", old_volume.disk, new_volume.disk);
      check("meta-disk", old_volume.meta_disk, new_volume.meta_disk);
      // The size, and al-extents (the activity log's slots, sized at attach), need down/up;
      // an unset al-extents is the core's default (DRBD's).
      const std::string default_al_extents = std::to_string(core::NodeConfig{}.al_extents);
      for (const auto& [key, unset] :
           {std::pair<std::string, std::string>{"size", "(whole disk)"},
            std::pair<std::string, std::string>{"al-extents", default_al_extents}}) {
        const config::Option* old_option = old_volume.disk_options.find(key);
        const config::Option* new_option = new_volume.disk_options.find(key);
        const std::string from = old_option != nullptr ? old_option->value_text() : unset;
        const std::string to = new_option != nullptr ? new_option->value_text() : unset;
        if (from != to) {
          refuse(new_option != nullptr ? new_option->location : new_volume.location,
                 key + " " + from + " -> " + to);
        }
      }
    }
  }

  void compare_peers() {
    for (const TransportPeer& peer : running_.transport.peers) {
      if (find_peer(file_, peer) == nullptr) {
        refuse(file_.resource.location, "connection to " + peer.name + " (node-id " +
                                            std::to_string(peer.node_id.value) +
                                            ") removed or changed");
      }
    }
    for (const TransportPeer& peer : file_.transport.peers) {
      const TransportPeer* old_peer = find_peer(running_, peer);
      if (old_peer == nullptr) {
        const config::Host* host = file_.resource.find_host(peer.name);
        refuse(host != nullptr ? host->location : file_.resource.location,
               "connection to " + peer.name + " (node-id " + std::to_string(peer.node_id.value) +
                   ") added");
        continue;
      }
      compare_paths(*old_peer, peer);
    }
  }

  static const TransportPeer* find_peer(const DaemonConfig& config, const TransportPeer& peer) {
    for (const TransportPeer& candidate : config.transport.peers) {
      if (candidate.node_id == peer.node_id && candidate.name == peer.name) return &candidate;
    }
    return nullptr;
  }

  void compare_paths(const TransportPeer& before, const TransportPeer& after) {
    const auto paths = [](const TransportPeer& peer) {
      std::vector<std::string> texts{address_text(peer.host, peer.port)};
      for (const TransportAddress& path : peer.more_paths) {
        texts.push_back(address_text(path.host, path.port));
      }
      return texts;
    };
    const std::vector<std::string> old_paths = paths(before);
    const std::vector<std::string> new_paths = paths(after);
    for (const std::string& path : new_paths) {
      if (std::find(old_paths.begin(), old_paths.end(), path) == old_paths.end()) {
        change("path to " + after.name + " added: " + path);
      }
    }
    for (const std::string& path : old_paths) {
      if (std::find(new_paths.begin(), new_paths.end(), path) == new_paths.end()) {
        change("path to " + after.name + " removed: " + path);
      }
    }
  }

  void compare_transport() {
    const TransportConfig& before = running_.transport;
    const TransportConfig& after = file_.transport;
    const auto timing = [&](const char* keyword, Duration from, Duration to) {
      if (from != to)
        change(std::string(keyword) + " " + milliseconds(from) + " -> " + milliseconds(to));
    };
    timing("ping-int", before.ping_interval, after.ping_interval);
    timing("ping-timeout", before.ping_timeout, after.ping_timeout);
    timing("timeout", before.connect_timeout, after.connect_timeout);
    timing("connect-int", before.reconnect_delay_max, after.reconnect_delay_max);
    if (before.ko_count != after.ko_count) {
      change("ko-count " + std::to_string(before.ko_count) + " -> " +
             std::to_string(after.ko_count));
    }
    if (before.cram_hmac_algorithm != after.cram_hmac_algorithm ||
        before.shared_secret != after.shared_secret) {
      change("cram-hmac-alg/shared-secret changed (for connections made from now on)");
    }
  }

  // The core's live options (core::copy_live_options), each change listed with DRBD's keyword;
  // ResourceRunner::adjust hands them to the running node (core::ChangeOptions).
  void compare_core_options() {
    const core::NodeConfig& before = running_.node;
    const core::NodeConfig& after = file_.node;
    const auto listed = [&](std::string_view keyword, const std::string& from,
                            const std::string& to) {
      if (from != to) change(std::string(keyword) + " " + from + " -> " + to);
    };
    const auto rate = [](std::uint32_t kib) { return std::to_string(kib) + " KiB/s"; };
    listed("resync-rate", rate(before.resync_rate_kib), rate(after.resync_rate_kib));
    listed("c-plan-ahead", milliseconds(Duration::from_ms(before.c_plan_ahead_deciseconds * 100)),
           milliseconds(Duration::from_ms(after.c_plan_ahead_deciseconds * 100)));
    listed("c-fill-target", std::to_string(before.c_fill_target_sectors) + " sectors",
           std::to_string(after.c_fill_target_sectors) + " sectors");
    listed("c-delay-target",
           milliseconds(Duration::from_ms(before.c_delay_target_deciseconds * 100)),
           milliseconds(Duration::from_ms(after.c_delay_target_deciseconds * 100)));
    listed("c-max-rate", rate(before.c_max_rate_kib), rate(after.c_max_rate_kib));
    listed("c-min-rate", rate(before.c_min_rate_kib), rate(after.c_min_rate_kib));
    listed("max-epoch-size", std::to_string(before.max_epoch_size),
           std::to_string(after.max_epoch_size));
    listed("disk-flushes", before.disk_flushes ? "yes" : "no", after.disk_flushes ? "yes" : "no");
    listed("allow-two-primaries", before.allow_two_primaries ? "yes" : "no",
           after.allow_two_primaries ? "yes" : "no");
    listed("twopc-timeout", milliseconds(before.twopc_timeout), milliseconds(after.twopc_timeout));
    listed("twopc-retry-timeout", milliseconds(before.twopc_retry_timeout),
           milliseconds(after.twopc_retry_timeout));
    compare_policies(before, after, listed);
    // Not a core option: the daemon's resync-after poll reads it from the running configuration.
    const auto resource = [](const std::string& name) {
      return name.empty() ? std::string("(none)") : name;
    };
    listed("resync-after", resource(running_.resync_after), resource(file_.resync_after));
  }

  template <typename Listed>
  static void compare_policies(const core::NodeConfig& before, const core::NodeConfig& after,
                               const Listed& listed) {
    const auto text = [](auto value) { return std::string(to_string(value)); };
    const auto yes_no = [](bool value) { return std::string(value ? "yes" : "no"); };
    const auto algorithm = [](const std::string& name) {
      return name.empty() ? std::string("(none)") : name;
    };
    const SplitBrainPolicy& old_policy = before.split_brain;
    const SplitBrainPolicy& new_policy = after.split_brain;
    listed("after-sb-0pri", text(old_policy.after_sb_0pri), text(new_policy.after_sb_0pri));
    listed("after-sb-1pri", text(old_policy.after_sb_1pri), text(new_policy.after_sb_1pri));
    listed("after-sb-2pri", text(old_policy.after_sb_2pri), text(new_policy.after_sb_2pri));
    listed("rr-conflict", text(old_policy.rr_conflict), text(new_policy.rr_conflict));
    listed("always-asbp", yes_no(old_policy.always_asbp), yes_no(new_policy.always_asbp));
    listed("fencing", text(before.fencing), text(after.fencing));
    listed("verify-alg", algorithm(before.verify_algorithm), algorithm(after.verify_algorithm));
    listed("csums-alg", algorithm(before.csums_algorithm), algorithm(after.csums_algorithm));
    listed("csums-after-crash-only", yes_no(before.csums_after_crash_only),
           yes_no(after.csums_after_crash_only));
    listed("read-balancing", text(before.read_balancing), text(after.read_balancing));
    listed("on-congestion", text(before.on_congestion), text(after.on_congestion));
    listed("congestion-fill", std::to_string(before.congestion_fill_sectors) + " sectors",
           std::to_string(after.congestion_fill_sectors) + " sectors");
    listed("congestion-extents", std::to_string(before.congestion_extents),
           std::to_string(after.congestion_extents));
    const core::QuorumSettings& old_quorum = before.quorum;
    const core::QuorumSettings& new_quorum = after.quorum;
    listed("quorum", text(old_quorum.quorum), text(new_quorum.quorum));
    listed("quorum-minimum-redundancy", text(old_quorum.minimum_redundancy),
           text(new_quorum.minimum_redundancy));
    listed("on-no-quorum", text(old_quorum.on_no_quorum), text(new_quorum.on_no_quorum));
    const auto outdated = [](core::OnSuspendedPrimaryOutdated value) {
      return std::string(value == core::OnSuspendedPrimaryOutdated::disconnect ? "disconnect"
                                                                               : "force-secondary");
    };
    listed("on-suspended-primary-outdated", outdated(old_quorum.on_suspended_primary_outdated),
           outdated(new_quorum.on_suspended_primary_outdated));
  }

  const DaemonConfig& running_;
  const DaemonConfig& file_;
  AdjustPlan plan_;
};

}  // namespace

AdjustPlan plan_adjust(const DaemonConfig& running, const DaemonConfig& file) {
  return Planner(running, file).plan();
}

}  // namespace ditto::datapath
