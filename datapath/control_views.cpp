#include "datapath/control_views.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/assert.h"

namespace ditto::datapath {
namespace {

std::string endpoint_text(const config::Endpoint& endpoint) {
  const bool v6 = endpoint.address_family == "ipv6";
  return endpoint.address_family + ":" + (v6 ? "[" : "") + endpoint.address + (v6 ? "]" : "") +
         ":" + std::to_string(endpoint.port);
}

std::uint32_t minor_of(const ResourceRunner& runner) {
  const config::Volume& volume = runner.config().self.volumes.front();
  return volume.minor.value_or(0);
}

// drbdsetup status --json's resync or verify details (drbd-utils' peer_device_status_json).
void add_sync_details(nlohmann::json& peer_device, const std::optional<SyncDetailsView>& details) {
  peer_device["has-sync-details"] = details.has_value();
  peer_device["has-online-verify-details"] = details && details->verify;
  if (!details) return;
  peer_device["rs-total"] = details->total_sectors;
  peer_device["rs-dt-start-ms"] = details->since_start_ms;
  peer_device["rs-paused-ms"] = details->paused_ms;
  peer_device["rs-dt0-ms"] = details->dt0_ms;
  peer_device["rs-db0-sectors"] = details->db0_sectors;
  peer_device["rs-dt1-ms"] = details->dt1_ms;
  peer_device["rs-db1-sectors"] = details->db1_sectors;
  if (details->verify) {
    peer_device["ov-left"] = details->left_sectors;
  } else {
    peer_device["rs-failed"] = 0;
    peer_device["rs-same-csum"] = details->same_checksum_sectors;
  }
  peer_device["want"] = 0.0;
  peer_device["db0/dt0 [MiB/s]"] = details->start_mib_per_second();
  peer_device["db1/dt1 [MiB/s]"] = details->recent_mib_per_second();
  const double eta = details->eta_seconds();
  peer_device["estimated-seconds-to-finish"] = std::isnan(eta) ? 987654321.0 : std::round(eta);
  peer_device["db/dt [MiB/s]"] = details->average_mib_per_second();
  const double total = static_cast<double>(details->total_sectors);
  peer_device["percent-resync-done"] =
      total == 0 ? 0.0 : 100.0 * (total - static_cast<double>(details->left_sectors)) / total;
}

}  // namespace

std::vector<PathView> paths_to(const ResourceRunner& runner, NodeId peer) {
  const DaemonConfig& config = runner.config();
  const config::Host* peer_host = config.resource.find_host(peer);
  std::vector<PathView> views;
  if (peer_host == nullptr) return views;
  const int connected_path = runner.transport().connected_path(peer);
  for (const config::Connection& connection : config.resource.effective_connections()) {
    const bool ours = connection.first.host == config.self.name ||
                      connection.second.host == config.self.name;
    const bool theirs = connection.first.host == peer_host->name ||
                        connection.second.host == peer_host->name;
    if (!ours || !theirs) continue;
    for (const config::Path& path : connection.paths) {
      const bool remote_first = path.first.host == peer_host->name;
      const PathView view{endpoint_text(remote_first ? path.second : path.first),
                          endpoint_text(remote_first ? path.first : path.second),
                          static_cast<int>(views.size()) == connected_path};
      views.push_back(view);
    }
  }
  return views;
}

ResourceView resource_view(const ResourceRunner& runner) {
  const core::Node& node = runner.node();
  const core::NodeStatistics& statistics = node.statistics();
  ResourceView view;
  view.name = node.config().resource_name;
  view.node_id = node.config().node_id;
  view.role = node.role();
  view.may_promote = node.may_promote();
  view.promotion_score = node.promotion_score();
  view.suspended = std::string(node.suspended_reason());
  DeviceView device;
  device.quorum = node.have_quorum();
  device.minor = minor_of(runner);
  device.disk = node.disk_state();
  device.client = runner.config().diskless;
  device.backing_device = runner.config().disk_path;
  device.open = runner.open_sessions() > 0;
  device.size_kib = node.size_bytes() / 1024;
  device.read_kib = statistics.read_bytes / 1024;
  device.written_kib = statistics.written_bytes / 1024;
  device.upper_pending = statistics.upper_pending;
  device.lower_pending = statistics.lower_pending;
  view.devices.push_back(device);
  const bool tls = !runner.config().transport.tls.empty();
  for (const core::PeerStatus& peer : node.peers()) {
    ConnectionView connection;
    connection.peer_node_id = peer.node_id;
    connection.name = peer.name;
    connection.connection = peer.connection;
    connection.role = peer.role;
    connection.tls = tls && peer.connection == ConnectionState::connected;
    // DRBD's ap-in-flight: application data sent and not yet barrier-acked, in KiB.
    connection.ap_in_flight = peer.in_flight_bytes / 1024;
    connection.congested = peer.congested;
    connection.paths = paths_to(runner, peer.node_id);
    PeerDeviceView peer_device;
    peer_device.replication = peer.replication;
    peer_device.peer_disk = peer.disk;
    peer_device.peer_client = peer.client;
    peer_device.resync_suspended = peer.resync_suspended_text();
    peer_device.received_kib = peer.received_bytes / 1024;
    peer_device.sent_kib = peer.sent_bytes / 1024;
    peer_device.out_of_sync_kib = peer.out_of_sync_bytes / 1024;
    peer_device.pending = peer.pending_writes;
    if (is_syncing(peer.replication)) peer_device.done_percent = peer.resync_percent_done();
    peer_device.sync_details = sync_details(peer, runner.now());
    connection.peer_devices.push_back(peer_device);
    view.connections.push_back(std::move(connection));
  }
  return view;
}

std::string events2_exists(const ResourceRunner& runner, StatusFlags flags) {
  return format_events2_exists(resource_view(runner), flags);
}

bool is_events2_line(std::string_view line) {
  for (std::string_view action :
       {"exists ", "create ", "change ", "destroy ", "call ", "response ", "rename "}) {
    if (line.starts_with(action)) return true;
  }
  return false;
}

std::string status_json(const ResourceRunner& runner) {
  using nlohmann::json;
  const core::Node& node = runner.node();
  const core::NodeStatistics& statistics = node.statistics();
  json device = {{"volume", 0},
                 {"minor", minor_of(runner)},
                 {"disk-state", std::string(to_string(node.disk_state()))},
                 {"client", runner.config().diskless},
                 {"open", runner.open_sessions() > 0},
                 {"quorum", node.have_quorum()},
                 {"size", node.size_bytes() / 1024},
                 {"read", statistics.read_bytes / 1024},
                 {"written", statistics.written_bytes / 1024},
                 {"al-writes", 0},
                 {"bm-writes", 0},
                 {"upper-pending", statistics.upper_pending},
                 {"lower-pending", statistics.lower_pending}};
  json connections = json::array();
  for (const core::PeerStatus& peer : node.peers()) {
    json paths = json::array();
    for (const PathView& path : paths_to(runner, peer.node_id)) {
      paths.push_back({{"this_host", path.local},
                       {"remote_host", path.remote},
                       {"established", path.established}});
    }
    const double volume_bytes = static_cast<double>(node.size_bytes());
    const double percent_in_sync =
        volume_bytes == 0 ? 100.0
                          : 100.0 * (1.0 - static_cast<double>(peer.out_of_sync_bytes) /
                                               volume_bytes);
    json peer_device = {{"volume", 0},
                        {"replication-state", std::string(to_string(peer.replication))},
                        {"peer-disk-state", std::string(to_string(peer.disk))},
                        {"peer-client", peer.client},
                        {"resync-suspended", peer.resync_suspended_text()},
                        {"received", peer.received_bytes / 1024},
                        {"sent", peer.sent_bytes / 1024},
                        {"out-of-sync", peer.out_of_sync_bytes / 1024},
                        {"pending", peer.pending_writes},
                        {"unacked", 0},
                        {"percent-in-sync", percent_in_sync}};
    add_sync_details(peer_device, sync_details(peer, runner.now()));
    connections.push_back({{"peer-node-id", peer.node_id.value},
                           {"name", peer.name},
                           {"connection-state", std::string(to_string(peer.connection))},
                           {"congested", peer.congested},
                           {"peer-role", std::string(to_string(peer.role))},
                           {"tls", false},
                           {"ap-in-flight", peer.in_flight_bytes / 1024},
                           {"rs-in-flight", 0},
                           {"paths", paths},
                           {"peer_devices", json::array({peer_device})}});
  }
  json resource = {{"name", node.config().resource_name},
                   {"node-id", node.config().node_id.value},
                   {"role", std::string(to_string(node.role()))},
                   {"suspended", node.suspended_reason() != "no"},
                   {"suspended-user", false},
                   {"suspended-no-data", false},
                   {"suspended-fencing", node.io_suspended_for_fencing()},
                   {"suspended-quorum", node.io_suspended_for_quorum()},
                   {"force-io-failures", false},
                   {"write-ordering", "flush"},
                   {"may_promote", node.may_promote()},
                   {"promotion_score", node.promotion_score()},
                   {"devices", json::array({device})},
                   {"connections", connections}};
  return json::array({resource}).dump(2) + "\n";
}

std::string show_text(const ResourceRunner& runner) {
  config::Config one;
  one.resources.push_back(runner.config().resource);
  return config::dump(one);
}

}  // namespace ditto::datapath
