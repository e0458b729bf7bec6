#include "datapath/control_adjust.h"

#include <algorithm>

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
    const auto written = [](const config::Section& section) {
      std::vector<std::pair<std::string, std::string>> options;
      for (const config::Option& option : section.options) {
        if (!option.inherited) options.emplace_back(option.key, option.value_text());
      }
      return options;
    };
    if (written(running_.resource.options) != written(file_.resource.options)) {
      const config::Option* first = file_.resource.options.options.empty()
                                        ? nullptr
                                        : &file_.resource.options.options.front();
      refuse(first != nullptr ? first->location : file_.resource.location, "options section");
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
      const config::Option* old_size = old_volume.disk_options.find("size");
      const config::Option* new_size = new_volume.disk_options.find("size");
      const std::string from = old_size != nullptr ? old_size->value_text() : "(whole disk)";
      const std::string to = new_size != nullptr ? new_size->value_text() : "(whole disk)";
      if (from != to) {
        refuse(new_size != nullptr ? new_size->location : new_volume.location,
               "size " + from + " -> " + to);
      }
      const core::NodeConfig& was = running_.node;
      const core::NodeConfig& wanted = file_.node;
      if (was.resync_rate_kib != wanted.resync_rate_kib ||
          was.c_plan_ahead_deciseconds != wanted.c_plan_ahead_deciseconds ||
          was.c_fill_target_sectors != wanted.c_fill_target_sectors ||
          was.c_max_rate_kib != wanted.c_max_rate_kib ||
          was.c_min_rate_kib != wanted.c_min_rate_kib) {
        refuse(new_volume.location,
               "a change of resync-rate, c-plan-ahead, c-fill-target, c-max-rate or c-min-rate");
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

  const DaemonConfig& running_;
  const DaemonConfig& file_;
  AdjustPlan plan_;
};

}  // namespace

AdjustPlan plan_adjust(const DaemonConfig& running, const DaemonConfig& file) {
  return Planner(running, file).plan();
}

}  // namespace ditto::datapath
