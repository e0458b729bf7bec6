#include "datapath/daemon_config.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ditto::datapath {
namespace {

std::optional<std::string> read_file(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return text.str();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

Result<const config::Resource*> select_resource(const config::Config& parsed,
                                                const DaemonOptions& options) {
  if (!options.resource_name.empty()) {
    const config::Resource* resource = parsed.find_resource(options.resource_name);
    if (resource == nullptr) {
      return Error{options.config_path + ": no resource named '" + options.resource_name + "'"};
    }
    return resource;
  }
  if (parsed.resources.size() != 1) {
    return Error{options.config_path + ": " + std::to_string(parsed.resources.size()) +
                 " resources defined; choose one with --resource"};
  }
  return &parsed.resources.front();
}

Status check_volume(const config::Host& self, const std::string& config_path) {
  if (self.volumes.size() != 1 || self.volumes.front().number != 0) {
    return Error{self.location.to_string() + ": host '" + self.name + "' has " +
                 std::to_string(self.volumes.size()) +
                 " volumes; this version of dittod runs exactly one (volume 0)"};
  }
  const config::Volume& volume = self.volumes.front();
  if (volume.disk.empty()) {
    return Error{volume.location.to_string() + ": host '" + self.name + "' names no disk"};
  }
  if (volume.diskless()) {
    return Error{volume.location.to_string() + ": host '" + self.name +
                 "' is diskless (disk none); diskless clients are not supported yet"};
  }
  if (volume.meta_disk != "internal") {
    return Error{volume.location.to_string() + ": meta-disk '" + volume.meta_disk +
                 "' is not supported; use meta-disk internal"};
  }
  (void)config_path;
  return Status::success();
}

}  // namespace

Result<DaemonConfig> load_daemon_config(const DaemonOptions& options) {
  const auto text = read_file(options.config_path);
  if (!text) {
    return Error{options.config_path + ": cannot read configuration: " + std::strerror(errno)};
  }
  auto parsed = config::parse(*text, options.config_path, read_file);
  if (!parsed.ok()) return parsed.error();
  auto resource = select_resource(parsed.value(), options);
  if (!resource.ok()) return resource.error();

  DaemonConfig result;
  result.resource = *resource.value();
  const std::string node_name = options.node_name.empty() ? host_name() : options.node_name;
  const config::Host* self = result.resource.find_host(node_name);
  if (self == nullptr) {
    return Error{result.resource.location.to_string() + ": resource '" + result.resource.name +
                 "' has no 'on " + node_name + "' section (use --node to pick one)"};
  }
  result.self = *self;
  if (Status status = check_volume(result.self, options.config_path); !status.ok()) {
    return status.error();
  }
  result.disk_path = result.self.volumes.front().disk;
  result.disk_location = result.self.volumes.front().location;

  result.node.resource_name = result.resource.name;
  result.node.node_id = result.self.node_id;
  result.node.node_name = result.self.name;
  result.node.protocol = result.resource.protocol();
  result.transport.self = result.self.node_id;
  result.transport.resource_name = result.resource.name;
  result.transport.listen_host = result.self.address;
  result.transport.listen_port = result.self.port;

  for (const config::Connection& connection : result.resource.effective_connections()) {
    const bool first_is_self = connection.first.host == result.self.name;
    const bool second_is_self = connection.second.host == result.self.name;
    if (!first_is_self && !second_is_self) continue;
    const config::Endpoint& remote = first_is_self ? connection.second : connection.first;
    const config::Host* peer = result.resource.find_host(remote.host);
    if (peer == nullptr) {
      return Error{connection.location.to_string() + ": connection names unknown host '" +
                   remote.host + "'"};
    }
    if (connection.protocol() != Protocol::c) {
      return Error{connection.location.to_string() + ": protocol " +
                   std::string(to_string(connection.protocol())) +
                   " is not supported yet; use protocol C"};
    }
    // The first path carries the connection (multi-path failover comes later).
    const config::Path& path = connection.paths.front();
    const config::Endpoint& remote_end = path.first.host == remote.host ? path.first : path.second;
    result.node.peers.push_back({peer->node_id, peer->name});
    result.transport.peers.push_back({peer->node_id, peer->name, remote_end.address,
                                      remote_end.port});
  }
  // A resource with one host and no peers is allowed: a single-node volume (benchmarks use it).
  return result;
}

}  // namespace ditto::datapath
