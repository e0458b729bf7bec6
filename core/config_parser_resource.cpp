// Grammar pass, part 2: resource, on, volume, device/disk/meta-disk, connection-mesh, connection.
#include <algorithm>
#include <charconv>
#include <utility>

#include "core/assert.h"
#include "core/config_parser.h"

namespace ditto::config {
namespace {

bool is_name_token(const Token& token) {
  return token.kind == TokenKind::word || token.kind == TokenKind::string;
}

bool is_valid_resource_name(std::string_view name) {
  if (name.empty() || name.size() > resource_name_size_max || name == "all") return false;
  const auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '+';
  };
  return std::all_of(name.begin(), name.end(), allowed) && name[0] != '-' && name[0] != '.';
}

std::optional<std::uint32_t> parse_decimal(std::string_view text, std::uint32_t max) {
  std::uint32_t value = 0;
  const auto [end, code] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || code != std::errc{} || end != text.data() + text.size() || value > max) {
    return std::nullopt;
  }
  return value;
}

bool is_ipv4(std::string_view text) {
  for (int part = 0; part < 4; ++part) {
    const std::size_t dot = text.find('.');
    const std::string_view digits = text.substr(0, dot);
    if (digits.empty() || digits.size() > 3 || !parse_decimal(digits, 255)) return false;
    if ((dot == std::string_view::npos) != (part == 3)) return false;
    if (dot != std::string_view::npos) text.remove_prefix(dot + 1);
  }
  return true;
}

bool is_ipv6(std::string_view text) {
  const auto allowed = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
           c == '.';
  };
  return text.size() >= 2 && text.find(':') != std::string_view::npos &&
         std::all_of(text.begin(), text.end(), allowed);
}

// Splits "IP:PORT" / "[IP6]:PORT" for `family`; returns a problem message or nullopt.
std::optional<std::string> split_address(std::string_view family, std::string_view text,
                                         std::string& address, std::uint16_t& port) {
  const std::string quoted = "'" + std::string(text) + "'";
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || (family == "ipv6" && text.front() != '[')) {
    return "address " + quoted + " is not " +
           (family == "ipv6" ? "[IPV6]:PORT" : std::string("IP:PORT"));
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (family == "ipv6") {
    if (host.size() < 2 || host.back() != ']') return "address " + quoted + " is not [IPV6]:PORT";
    host = host.substr(1, host.size() - 2);
    if (!is_ipv6(host)) return "invalid ipv6 address " + quoted;
  } else if (host.front() == '[') {
    return "address " + quoted + " needs the 'ipv6' keyword";
  } else if (!is_ipv4(host)) {
    return "invalid ipv4 address " + quoted;
  }
  const std::optional<std::uint32_t> number = parse_decimal(port_text, 65535);
  if (!number || *number == 0) {
    return "port '" + std::string(port_text) + "' out of range 1..65535";
  }
  address = std::string(host);
  port = static_cast<std::uint16_t>(*number);
  return std::nullopt;
}

}  // namespace

bool Parser::parse_resource() {
  DITTO_ASSERT(peek_is_word("resource"));
  const Token& keyword = next();
  ResourceDraft resource;
  resource.resource.location = location_of(keyword);
  const Token& name = peek();
  if (!parse_name("a resource name", resource.resource.name)) return false;
  if (!is_valid_resource_name(resource.resource.name)) {
    return fail(name, "invalid resource name '" + name.text +
                          "' (use letters, digits, '_', '-', '.', '+'; at most " +
                          std::to_string(resource_name_size_max) + " bytes; not 'all')");
  }
  for (const ResourceDraft& earlier : draft_.resources) {
    if (earlier.resource.name == name.text) {
      return fail(name, "resource '" + name.text + "' defined twice (first at " +
                            earlier.resource.location.to_string() + ")");
    }
  }
  if (!expect_open_brace("resource " + name.text)) return false;
  while (!peek_is(TokenKind::close_brace)) {
    if (!parse_resource_statement(resource)) return false;
  }
  next();
  draft_.resources.push_back(std::move(resource));
  return true;
}

bool Parser::parse_resource_statement(ResourceDraft& draft) {
  const Token& keyword = peek();
  Resource& resource = draft.resource;
  const bool section_follows = peek_is(TokenKind::open_brace, 1);
  if (keyword.kind != TokenKind::word) {
    return fail(keyword, "expected a keyword in resource section, got " + describe(keyword));
  }
  const std::string& word = keyword.text;
  if (word == "disk" && section_follows) {
    next();
    return parse_section(SectionKind::disk, resource.disk);
  }
  if (word == "net" || word == "options" || word == "handlers" || word == "startup") {
    next();
    const SectionKind kind = word == "net"        ? SectionKind::net
                             : word == "options"  ? SectionKind::options
                             : word == "handlers" ? SectionKind::handlers
                                                  : SectionKind::startup;
    Section& section = word == "net"        ? resource.net
                       : word == "options"  ? resource.options
                       : word == "handlers" ? resource.handlers
                                            : resource.startup;
    return parse_section(kind, section);
  }
  if (word == "on") return parse_host(draft);
  if (word == "connection-mesh") return parse_mesh(resource);
  if (word == "connection") return parse_connection(resource);
  if (word == "skip") return parse_skip();
  if (word == "floating" || word == "stacked-on-top-of" || word == "proxy" ||
      word == "template-file") {
    return fail(keyword, "'" + word + "' is not supported yet");
  }
  if (word == "volume" || word == "device" || word == "disk" || word == "meta-disk") {
    return parse_volume_statement(draft.volumes, "resource");
  }
  return fail(keyword, "unknown keyword '" + word + "' in resource section");
}

// `volume N { ... }` or a device/disk/meta-disk statement of the scope's implicit volume 0.
bool Parser::parse_volume_statement(VolumeScope& scope, std::string_view scope_name) {
  if (peek_is_word("volume")) return parse_volume_block(scope);
  if (!scope.implicit_written) scope.implicit.location = location_of(peek());
  scope.implicit_written = true;
  return parse_volume_field(scope.implicit, scope_name);
}

bool Parser::parse_volume_block(VolumeScope& scope) {
  const Token& keyword = next();
  DITTO_ASSERT(keyword.text == "volume");
  VolumeDraft volume;
  volume.location = location_of(keyword);
  const Token& number = peek();
  if (!parse_number("volume number", volume_number_max, volume.number)) return false;
  for (const VolumeDraft& earlier : scope.volumes) {
    if (earlier.number == volume.number) {
      return fail(number, "volume " + number.text + " defined twice in this section");
    }
  }
  if (!expect_open_brace("volume " + number.text)) return false;
  while (!peek_is(TokenKind::close_brace)) {
    if (!parse_volume_field(volume, "volume")) return false;
  }
  next();
  scope.volumes.push_back(std::move(volume));
  return true;
}

// device ...; | disk PATH|none; | disk { options } | meta-disk internal;
bool Parser::parse_volume_field(VolumeDraft& volume, std::string_view scope_name) {
  const Token& keyword = peek();
  const std::size_t start = position_;
  if (peek_is_word("device")) return parse_device(volume);
  if (peek_is_word("disk") && peek_is(TokenKind::open_brace, 1)) {
    next();
    return parse_section(SectionKind::disk, volume.disk_options);
  }
  if (peek_is_word("disk") || peek_is_word("meta-disk")) {
    next();
    const Token& value = peek();
    std::string text;
    if (!parse_name("a value for " + keyword.text, text)) return false;
    if (keyword.text == "disk") {
      if (text != "none" && text.front() != '/') {
        return fail(value, "disk '" + text + "' is neither an absolute path nor 'none'");
      }
      volume.disk = text;
    } else {
      if (text != "internal") {
        return fail(value, "meta-disk '" + text + "' is not supported yet (only internal)");
      }
      volume.meta_disk = text;
    }
    return expect_semicolon(start);
  }
  if (keyword.kind == TokenKind::word) {
    return fail(keyword, "unknown keyword '" + keyword.text + "' in " + std::string(scope_name) +
                             " section");
  }
  return fail(keyword, "expected a keyword in " + std::string(scope_name) + " section, got " +
                           describe(keyword));
}

// device [PATH] [minor N]; a /dev/drbdN path implies minor N.
bool Parser::parse_device(VolumeDraft& volume) {
  const std::size_t start = position_;
  next();
  if (is_name_token(peek()) && !peek_is_word("minor")) {
    const Token& path = next();
    if (path.text.empty() || path.text.front() != '/') {
      return fail(path, "device '" + path.text + "' is not an absolute path");
    }
    volume.device = path.text;
    constexpr std::string_view prefix = "/dev/drbd";
    if (path.text.starts_with(prefix)) {
      volume.minor = parse_decimal(std::string_view(path.text).substr(prefix.size()), minor_max);
    }
  }
  if (peek_is_word("minor")) {
    next();
    std::uint32_t minor = 0;
    if (!parse_number("device minor", minor_max, minor)) return false;
    volume.minor = minor;
  }
  if (!volume.device && !volume.minor) {
    return fail(peek(),
                "expected a device path or 'minor N' after 'device', got " + describe(peek()));
  }
  return expect_semicolon(start);
}

bool Parser::parse_host(ResourceDraft& resource) {
  const Token& keyword = next();
  HostDraft host;
  host.host.location = location_of(keyword);
  const Token& name = peek();
  if (!parse_name("a host name after 'on'", host.host.name)) return false;
  for (const HostDraft& earlier : resource.hosts) {
    if (earlier.host.name == host.host.name) {
      return fail(name, "host '" + name.text + "' defined twice in resource '" +
                            resource.resource.name + "' (first at " +
                            earlier.host.location.to_string() + ")");
    }
  }
  if (!expect_open_brace("on " + name.text)) return false;
  while (!peek_is(TokenKind::close_brace)) {
    if (!parse_host_statement(host)) return false;
  }
  next();
  resource.hosts.push_back(std::move(host));
  return true;
}

bool Parser::parse_host_statement(HostDraft& host) {
  const std::size_t start = position_;
  const Token& keyword = peek();
  if (peek_is_word("node-id")) {
    if (host.node_id) return fail(keyword, "node-id given twice for host '" + host.host.name + "'");
    next();
    host.node_id_location = location_of(keyword);
    std::uint32_t node_id = 0;
    if (!parse_number("node-id", node_id_max, node_id)) return false;
    host.node_id = NodeId{static_cast<std::uint8_t>(node_id)};
    return expect_semicolon(start);
  }
  if (peek_is_word("address")) {
    if (host.address_written) {
      return fail(keyword, "address given twice for host '" + host.host.name + "'");
    }
    next();
    host.address_written = true;
    host.address_location = location_of(keyword);
    Host& value = host.host;
    if (!parse_address(value.address_family, value.address, value.port)) return false;
    return expect_semicolon(start);
  }
  if (peek_is_word("volume") || peek_is_word("device") || peek_is_word("disk") ||
      peek_is_word("meta-disk")) {
    return parse_volume_statement(host.volumes, "on");
  }
  if (keyword.kind == TokenKind::word) {
    return fail(keyword, "unknown keyword '" + keyword.text + "' in on section");
  }
  return fail(keyword, "expected a keyword in on section, got " + describe(keyword));
}

// [ipv4|ipv6] IP:PORT, after the `address` keyword.
bool Parser::parse_address(std::string& family, std::string& address, std::uint16_t& port) {
  family = "ipv4";
  if (peek_is_word("ipv4") || peek_is_word("ipv6")) {
    family = next().text;
  } else if (peek_is_word("ssocks") || peek_is_word("sdp") || peek_is_word("sci")) {
    return fail(peek(), "address family '" + peek().text + "' is not supported yet");
  }
  const Token& text = peek();
  if (text.kind != TokenKind::word) {
    return fail(text, "expected an address IP:PORT, got " + describe(text));
  }
  next();
  if (std::optional<std::string> problem = split_address(family, text.text, address, port)) {
    return fail(text, *problem);
  }
  DITTO_ASSERT(port != 0 && !address.empty());
  return true;
}

}  // namespace ditto::config
