// parse() and the helpers of the configuration types.
#include "core/config.h"

#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "core/config_draft.h"
#include "core/config_parser.h"

namespace ditto::config {
namespace {

Protocol protocol_of(const Section& net) {
  const Option* option = net.find("protocol");
  if (option == nullptr || option->values.empty()) return Protocol::c;
  // parse() accepted only A, B or C.
  const std::string& value = option->values.front();
  DITTO_ASSERT(value == "A" || value == "B" || value == "C");
  return value == "A" ? Protocol::a : value == "B" ? Protocol::b : Protocol::c;
}

void fill_address(const Resource& resource, Endpoint& endpoint) {
  if (!endpoint.address.empty()) return;
  const Host* host = resource.find_host(endpoint.host);
  DITTO_ASSERT(host != nullptr);  // parse() checked every connection host
  endpoint.address_family = host->address_family;
  endpoint.address = host->address;
  endpoint.port = host->port;
}

// Concrete path addresses (each path oriented first → second like the connection) and the
// resource's net and disk options as defaults.
Connection complete(const Resource& resource, Connection connection) {
  if (connection.paths.empty()) {
    connection.paths.push_back(Path{connection.first, connection.second, connection.location});
  }
  for (Path& path : connection.paths) {
    if (path.first.host != connection.first.host) std::swap(path.first, path.second);
    DITTO_ASSERT(path.first.host == connection.first.host);
    fill_address(resource, path.first);
    fill_address(resource, path.second);
  }
  fill_address(resource, connection.first);
  fill_address(resource, connection.second);
  connection.net.inherit_from(resource.net);
  connection.disk.inherit_from(resource.disk);
  return connection;
}

bool connects(const Connection& connection, std::string_view a, std::string_view b) {
  return (connection.first.host == a && connection.second.host == b) ||
         (connection.first.host == b && connection.second.host == a);
}

Connection connection_between(const Host& a, const Host& b, const Location& location) {
  Connection connection;
  connection.first.host = a.name;
  connection.first.location = location;
  connection.second.host = b.name;
  connection.second.location = location;
  connection.location = location;
  return connection;
}

}  // namespace

std::string Location::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Option::value_text() const {
  std::string text;
  for (const std::string& value : values) {
    if (!text.empty()) text += ' ';
    text += value;
  }
  return text;
}

const Option* Section::find(std::string_view key) const {
  const auto found = std::find_if(options.begin(), options.end(),
                                  [key](const Option& option) { return option.key == key; });
  return found == options.end() ? nullptr : &*found;
}

void Section::inherit_from(const Section& defaults) {
  for (const Option& option : defaults.options) {
    if (find(option.key) != nullptr) continue;
    options.push_back(option);
    options.back().inherited = true;
  }
}

bool Section::written_empty() const {
  return std::all_of(options.begin(), options.end(),
                     [](const Option& option) { return option.inherited; });
}

const Volume* Host::find_volume(std::uint32_t number) const {
  for (const Volume& volume : volumes) {
    if (volume.number == number) return &volume;
  }
  return nullptr;
}

Protocol Connection::protocol() const {
  return protocol_of(net);
}

Protocol Resource::protocol() const {
  return protocol_of(net);
}

const Host* Resource::find_host(std::string_view host_name) const {
  for (const Host& host : hosts) {
    if (host.name == host_name) return &host;
  }
  return nullptr;
}

const Host* Resource::find_host(NodeId node_id) const {
  for (const Host& host : hosts) {
    if (host.node_id == node_id) return &host;
  }
  return nullptr;
}

std::vector<Connection> Resource::effective_connections() const {
  std::vector<Connection> result;
  for (const Connection& connection : connections) result.push_back(complete(*this, connection));
  for (const ConnectionMesh& mesh : meshes) {
    for (std::size_t i = 0; i < mesh.hosts.size(); ++i) {
      for (std::size_t j = i + 1; j < mesh.hosts.size(); ++j) {
        const bool covered = std::any_of(result.begin(), result.end(), [&](const auto& c) {
          return connects(c, mesh.hosts[i], mesh.hosts[j]);
        });
        if (covered) continue;
        const Host* a = find_host(mesh.hosts[i]);
        const Host* b = find_host(mesh.hosts[j]);
        DITTO_ASSERT(a != nullptr && b != nullptr);  // parse() checked mesh hosts
        Connection connection = connection_between(*a, *b, mesh.location);
        connection.net = mesh.net;
        connection.from_mesh = true;
        result.push_back(complete(*this, std::move(connection)));
      }
    }
  }
  if (connections.empty() && meshes.empty() && hosts.size() == 2) {
    result.push_back(complete(*this, connection_between(hosts[0], hosts[1], location)));
  }
  return result;
}

const Resource* Config::find_resource(std::string_view resource_name) const {
  for (const Resource& resource : resources) {
    if (resource.name == resource_name) return &resource;
  }
  return nullptr;
}

Result<Config> parse(std::string_view text, std::string_view file_name,
                     const IncludeResolver& resolver) {
  Parser parser(resolver);
  Result<ConfigDraft> draft = parser.run(text, file_name);
  if (!draft.ok()) return draft.error();
  return resolve(std::move(draft).value());
}

}  // namespace ditto::config
