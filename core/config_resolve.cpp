// Resolution and whole-file validation: volume scopes merged into hosts, common inherited,
// node ids, addresses, volumes and connection hosts checked.
#include <algorithm>
#include <map>
#include <utility>

#include "core/assert.h"
#include "core/config_draft.h"

namespace ditto::config {
namespace {

Error error_at(const Location& location, const std::string& message) {
  return Error{location.to_string() + ": " + message};
}

std::string address_text(const std::string& address, std::uint16_t port) {
  const bool ipv6 = address.find(':') != std::string::npos;
  return (ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

// Fields set in `from` override those of `into`; options of `from` replace same-keyed ones.
void merge_volume(VolumeDraft& into, const VolumeDraft& from) {
  if (from.device) into.device = from.device;
  if (from.minor) into.minor = from.minor;
  if (from.disk) into.disk = from.disk;
  if (from.meta_disk) into.meta_disk = from.meta_disk;
  for (const Option& option : from.disk_options.options) {
    auto& options = into.disk_options.options;
    std::erase_if(options, [&](const Option& old) { return old.key == option.key; });
    options.push_back(option);
  }
  into.location = from.location;
}

void merge_scope(std::map<std::uint32_t, VolumeDraft>& volumes, const VolumeScope& scope) {
  if (scope.implicit_written) {
    VolumeDraft& volume = volumes[0];
    volume.number = 0;
    merge_volume(volume, scope.implicit);
  }
  for (const VolumeDraft& written : scope.volumes) {
    VolumeDraft& volume = volumes[written.number];
    volume.number = written.number;
    merge_volume(volume, written);
  }
}

// Resource-level volume fields, then the host's own, give the host's volumes.
Status resolve_volumes(const ResourceDraft& resource_draft, const Section& resource_disk,
                       const HostDraft& draft, Host& host) {
  std::map<std::uint32_t, VolumeDraft> drafts;
  merge_scope(drafts, resource_draft.volumes);
  merge_scope(drafts, draft.volumes);
  const std::string of_host = " of host '" + host.name + "'";
  if (drafts.empty()) {
    return error_at(host.location, "host '" + host.name +
                                       "' has no volume (give 'device' and 'disk', or "
                                       "'volume N { ... }')");
  }
  for (const auto& [number, volume_draft] : drafts) {
    const std::string name = "volume " + std::to_string(number) + of_host;
    if (!volume_draft.minor) {
      return error_at(volume_draft.location, name +
                                                 " has no device minor ('device minor N;' "
                                                 "or 'device /dev/drbdN;')");
    }
    if (!volume_draft.disk) {
      return error_at(volume_draft.location,
                      name + " has no disk (write 'disk none;' for a diskless client)");
    }
    for (const Volume& earlier : host.volumes) {
      if (earlier.minor == volume_draft.minor) {
        return error_at(volume_draft.location,
                        name + " uses minor " + std::to_string(*volume_draft.minor) +
                            ", as does volume " + std::to_string(earlier.number));
      }
    }
    Volume volume;
    volume.number = number;
    volume.minor = volume_draft.minor;
    volume.device = volume_draft.device.value_or("/dev/drbd" + std::to_string(*volume.minor));
    volume.disk = *volume_draft.disk;
    volume.meta_disk = volume_draft.meta_disk.value_or("internal");
    volume.disk_options = volume_draft.disk_options;
    volume.disk_options.inherit_from(resource_disk);
    volume.location = volume_draft.location;
    host.volumes.push_back(std::move(volume));
  }
  const auto by_number = [](const Volume& a, const Volume& b) { return a.number < b.number; };
  DITTO_ASSERT(std::is_sorted(host.volumes.begin(), host.volumes.end(), by_number));
  return Status::success();
}

// node-id and address present and unique; volumes resolved.
Status resolve_hosts(const ResourceDraft& draft, Resource& resource) {
  DITTO_ASSERT(resource.hosts.empty());
  if (draft.hosts.empty()) {
    return error_at(resource.location, "resource '" + resource.name + "' has no 'on' section");
  }
  for (const HostDraft& host_draft : draft.hosts) {
    Host host = host_draft.host;
    if (!host_draft.node_id) {
      return error_at(host.location, "host '" + host.name + "' has no node-id");
    }
    if (!host_draft.address_written) {
      return error_at(host.location, "host '" + host.name + "' has no address");
    }
    host.node_id = *host_draft.node_id;
    for (const Host& earlier : resource.hosts) {
      if (earlier.node_id == host.node_id) {
        return error_at(host_draft.node_id_location,
                        "node-id " + std::to_string(host.node_id.value) + " of host '" + host.name +
                            "' is already used by host '" + earlier.name + "'");
      }
      if (earlier.address == host.address && earlier.port == host.port) {
        return error_at(host_draft.address_location,
                        "address " + address_text(host.address, host.port) + " of host '" +
                            host.name + "' is already used by host '" + earlier.name + "'");
      }
    }
    if (Status status = resolve_volumes(draft, resource.disk, host_draft, host); !status) {
      return status;
    }
    resource.hosts.push_back(std::move(host));
  }
  return Status::success();
}

Status check_endpoint_host(const Resource& resource, const Endpoint& endpoint,
                           const Location& fallback) {
  if (resource.find_host(endpoint.host) != nullptr) return Status::success();
  const Location& location = endpoint.location.line != 0 ? endpoint.location : fallback;
  return error_at(location, "host '" + endpoint.host + "' has no 'on' section in resource '" +
                                resource.name + "'");
}

bool same_pair(const Endpoint& a1, const Endpoint& a2, const Endpoint& b1, const Endpoint& b2) {
  return (a1.host == b1.host && a2.host == b2.host) || (a1.host == b2.host && a2.host == b1.host);
}

Status check_connections(const Resource& resource) {
  for (std::size_t i = 0; i < resource.connections.size(); ++i) {
    const Connection& connection = resource.connections[i];
    for (const Endpoint* endpoint : {&connection.first, &connection.second}) {
      if (Status s = check_endpoint_host(resource, *endpoint, connection.location); !s) return s;
    }
    if (connection.first.host == connection.second.host) {
      return error_at(connection.location,
                      "connection from host '" + connection.first.host + "' to itself");
    }
    for (const Path& path : connection.paths) {
      if (!same_pair(path.first, path.second, connection.first, connection.second)) {
        return error_at(path.location, "path between '" + path.first.host + "' and '" +
                                           path.second.host + "' in the connection between '" +
                                           connection.first.host + "' and '" +
                                           connection.second.host + "'");
      }
    }
    for (std::size_t j = 0; j < i; ++j) {
      const Connection& earlier = resource.connections[j];
      if (same_pair(earlier.first, earlier.second, connection.first, connection.second)) {
        return error_at(connection.location, "hosts '" + connection.first.host + "' and '" +
                                                 connection.second.host + "' connected twice");
      }
    }
  }
  for (const ConnectionMesh& mesh : resource.meshes) {
    for (const std::string& host : mesh.hosts) {
      if (resource.find_host(host) == nullptr) {
        return error_at(mesh.location, "connection-mesh names host '" + host +
                                           "', which has no 'on' section in resource '" +
                                           resource.name + "'");
      }
    }
  }
  if (resource.hosts.size() > 2 && resource.connections.empty() && resource.meshes.empty()) {
    return error_at(resource.location, "resource '" + resource.name +
                                           "' has more than two 'on' sections: use "
                                           "'connection' or 'connection-mesh' sections");
  }
  return Status::success();
}

// `resync-after RES[/VOLUME]` must name a resource of this configuration, as drbdadm checks.
Status check_resync_after(const Config& config, const Section& disk) {
  const Option* option = disk.find("resync-after");
  if (option == nullptr || option->inherited || option->values.empty()) return Status::success();
  const std::string& value = option->values.front();
  const std::string resource_name = value.substr(0, value.find('/'));
  if (config.find_resource(resource_name) != nullptr) return Status::success();
  return error_at(option->location,
                  "resync-after names resource '" + resource_name + "', which is not defined");
}

// The resource a resource's `resync-after` names (its own disk section, else a volume's).
const Option* resync_after_option(const Resource& resource) {
  const Option* option = resource.disk.find("resync-after");
  if (option != nullptr && !option->inherited && !option->values.empty()) return option;
  for (const Host& host : resource.hosts) {
    for (const Volume& volume : host.volumes) {
      option = volume.disk_options.find("resync-after");
      if (option != nullptr && !option->inherited && !option->values.empty()) return option;
    }
  }
  return nullptr;
}

std::string resync_after_target(const Option& option) {
  const std::string& value = option.values.front();
  return value.substr(0, value.find('/'));
}

// Following `resync-after` from any resource must end (drbdadm and the kernel refuse a cycle,
// ERR_RESYNC_AFTER_CYCLE): the error names the option that closes it and the whole cycle.
Status check_resync_after_cycles(const Config& config) {
  for (const Resource& start : config.resources) {
    std::string chain = start.name;
    const Resource* current = &start;
    for (std::size_t steps = 0; steps <= config.resources.size(); ++steps) {
      const Option* option = resync_after_option(*current);
      if (option == nullptr) break;
      const std::string next = resync_after_target(*option);
      chain += " -> " + next;
      if (next == start.name) {
        return error_at(option->location, "resync-after closes a cycle: " + chain);
      }
      current = config.find_resource(next);
      if (current == nullptr) break;
    }
  }
  return Status::success();
}

Status check_resync_after(const Config& config) {
  for (const Resource& resource : config.resources) {
    if (Status status = check_resync_after(config, resource.disk); !status) return status;
    for (const Host& host : resource.hosts) {
      for (const Volume& volume : host.volumes) {
        if (Status s = check_resync_after(config, volume.disk_options); !s) return s;
      }
    }
  }
  return check_resync_after_cycles(config);
}

Status check_two_primaries(const Resource& resource) {
  for (const Connection& connection : resource.effective_connections()) {
    if (Status status = check_two_primaries_protocol(connection); !status) return status;
  }
  return Status::success();
}

}  // namespace

bool allow_two_primaries(const Section& net) {
  const Option* option = net.find("allow-two-primaries");
  return option != nullptr && option->value_text() == "yes";
}

Status check_two_primaries_protocol(const Connection& connection) {
  if (!allow_two_primaries(connection.net) || connection.protocol() == Protocol::c) {
    return Status::success();
  }
  return error_at(connection.net.find("allow-two-primaries")->location,
                  "allow-two-primaries requires protocol C (the connection between '" +
                      connection.first.host + "' and '" + connection.second.host +
                      "' uses protocol " + std::string(to_string(connection.protocol())) + ")");
}

Result<Config> resolve(ConfigDraft draft) {
  Config config = std::move(draft.config);
  for (ResourceDraft& resource_draft : draft.resources) {
    Resource resource = std::move(resource_draft.resource);
    resource.net.inherit_from(config.common_net);
    resource.disk.inherit_from(config.common_disk);
    resource.options.inherit_from(config.common_options);
    resource.handlers.inherit_from(config.common_handlers);
    resource.startup.inherit_from(config.common_startup);
    if (Status status = resolve_hosts(resource_draft, resource); !status) return status.error();
    if (Status status = check_connections(resource); !status) return status.error();
    if (Status status = check_two_primaries(resource); !status) return status.error();
    config.resources.push_back(std::move(resource));
  }
  DITTO_ASSERT(config.resources.size() == draft.resources.size());
  if (Status status = check_resync_after(config); !status) return status.error();
  return config;
}

}  // namespace ditto::config
