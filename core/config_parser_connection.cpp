// Grammar pass, part 3: connection-mesh and connection (with host and path statements).
#include <algorithm>
#include <utility>

#include "core/assert.h"
#include "core/config_parser.h"

namespace ditto::config {

// connection-mesh { hosts A B C...; net { ... } }
bool Parser::parse_mesh(Resource& resource) {
  const Token& keyword = next();
  DITTO_ASSERT(keyword.text == "connection-mesh");
  ConnectionMesh mesh;
  mesh.location = location_of(keyword);
  if (!expect_open_brace("connection-mesh")) return false;
  while (!peek_is(TokenKind::close_brace)) {
    const std::size_t start = position_;
    const Token& statement = peek();
    if (peek_is_word("net")) {
      next();
      if (!parse_section(SectionKind::net, mesh.net)) return false;
    } else if (peek_is_word("hosts")) {
      next();
      while (peek_is(TokenKind::word) || peek_is(TokenKind::string)) {
        const Token& host = next();
        if (std::find(mesh.hosts.begin(), mesh.hosts.end(), host.text) != mesh.hosts.end()) {
          return fail(host, "host '" + host.text + "' named twice in connection-mesh");
        }
        mesh.hosts.push_back(host.text);
      }
      if (!expect_semicolon(start)) return false;
    } else if (statement.kind == TokenKind::word) {
      return fail(statement, "unknown keyword '" + statement.text + "' in connection-mesh section");
    } else {
      return fail(statement,
                  "expected hosts or net in connection-mesh, got " + describe(statement));
    }
  }
  next();
  if (mesh.hosts.size() < 2) {
    return fail(keyword, "connection-mesh needs at least two hosts ('hosts A B ...;')");
  }
  resource.meshes.push_back(std::move(mesh));
  return true;
}

// connection [NAME] { host A [address ...]; host B ...; path { ... } net { ... } disk { ... }
//                     volume N { disk { ... } } }
bool Parser::parse_connection(Resource& resource) {
  const Token& keyword = next();
  DITTO_ASSERT(keyword.text == "connection");
  Connection connection;
  connection.location = location_of(keyword);
  // drbdadm ignores a connection name (deprecated); so do we.
  if (peek_is(TokenKind::word) || peek_is(TokenKind::string)) next();
  if (!expect_open_brace("connection")) return false;
  while (!peek_is(TokenKind::close_brace)) {
    if (!parse_connection_statement(connection)) return false;
  }
  next();
  if (connection.first.host.empty() && !connection.paths.empty()) {
    connection.first = connection.paths.front().first;
    connection.second = connection.paths.front().second;
    connection.first.address.clear();
    connection.second.address.clear();
  }
  if (connection.second.host.empty()) {
    return fail(keyword, "connection needs two hosts ('host A; host B;' or a path)");
  }
  resource.connections.push_back(std::move(connection));
  return true;
}

bool Parser::parse_connection_statement(Connection& connection) {
  const Token& keyword = peek();
  if (peek_is_word("host")) {
    if (!connection.second.host.empty()) {
      return fail(keyword, "connection has more than two hosts");
    }
    Endpoint& endpoint = connection.first.host.empty() ? connection.first : connection.second;
    return parse_endpoint(endpoint, false);
  }
  if (peek_is_word("path")) return parse_path(connection);
  if (peek_is_word("net")) {
    next();
    return parse_section(SectionKind::net, connection.net);
  }
  if (peek_is_word("disk")) {
    next();
    return parse_section(SectionKind::disk, connection.disk);
  }
  if (peek_is_word("volume")) return parse_peer_volume(connection);
  if (keyword.kind == TokenKind::word) {
    return fail(keyword, "unknown keyword '" + keyword.text + "' in connection section");
  }
  return fail(keyword, "expected a keyword in connection section, got " + describe(keyword));
}

// host NAME [address [ipv4|ipv6] IP:PORT];
bool Parser::parse_endpoint(Endpoint& endpoint, bool address_required) {
  const std::size_t start = position_;
  const Token& keyword = next();
  DITTO_ASSERT(keyword.text == "host");
  endpoint.location = location_of(keyword);
  if (!parse_name("a host name after 'host'", endpoint.host)) return false;
  if (peek_is_word("address")) {
    next();
    if (!parse_address(endpoint.address_family, endpoint.address, endpoint.port)) return false;
  } else if (peek_is_word("port") || peek_is_word("via")) {
    return fail(peek(), "'host ... " + peek().text + "' is not supported yet");
  } else if (address_required) {
    return fail(peek(), "expected 'address' after 'host " + endpoint.host + "' in path, got " +
                            describe(peek()));
  }
  return expect_semicolon(start);
}

// path { host A address IP:PORT; host B address IP:PORT; }
bool Parser::parse_path(Connection& connection) {
  const Token& keyword = next();
  Path path;
  path.location = location_of(keyword);
  if (!expect_open_brace("path")) return false;
  std::uint32_t hosts = 0;
  while (!peek_is(TokenKind::close_brace)) {
    const Token& statement = peek();
    if (!peek_is_word("host")) {
      if (statement.kind == TokenKind::word) {
        return fail(statement, "unknown keyword '" + statement.text + "' in path section");
      }
      return fail(statement, "expected 'host' in path section, got " + describe(statement));
    }
    if (hosts == 2) return fail(statement, "path has more than two hosts");
    if (!parse_endpoint(hosts == 0 ? path.first : path.second, true)) return false;
    hosts += 1;
  }
  next();
  if (hosts != 2) return fail(keyword, "path needs two 'host NAME address IP:PORT;' statements");
  connection.paths.push_back(std::move(path));
  return true;
}

// volume N { disk { peer-device options } }
bool Parser::parse_peer_volume(Connection& connection) {
  const Token& keyword = next();
  PeerVolume volume;
  volume.location = location_of(keyword);
  const Token& number = peek();
  if (!parse_number("volume number", volume_number_max, volume.number)) return false;
  if (!expect_open_brace("volume " + number.text)) return false;
  while (!peek_is(TokenKind::close_brace)) {
    const Token& statement = peek();
    if (!peek_is_word("disk")) {
      if (statement.kind == TokenKind::word) {
        return fail(statement,
                    "unknown keyword '" + statement.text + "' in connection volume section");
      }
      return fail(statement, "expected 'disk' in connection volume, got " + describe(statement));
    }
    next();
    if (!parse_section(SectionKind::disk, volume.disk_options)) return false;
  }
  next();
  connection.volumes.push_back(std::move(volume));
  return true;
}

}  // namespace ditto::config
