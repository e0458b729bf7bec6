// dump(): canonical drbd.conf text, laid out like `drbdadm dump` (4-space indents, keys padded to
// 16 columns). Only options written in a scope are printed; volumes are printed per host.
#include <string>

#include "core/assert.h"
#include "core/config.h"

namespace ditto::config {
namespace {

bool needs_quotes(std::string_view value) {
  if (value.empty()) return true;
  for (const char c : value) {
    if (c == ' ' || c == '\t' || c == '{' || c == '}' || c == ';' || c == '"' || c == '#' ||
        c == '\\' || c == '\n' || c == '\r' || c == '\f') {
      return true;
    }
  }
  return false;
}

std::string quoted(std::string_view value) {
  if (!needs_quotes(value)) return std::string(value);
  std::string text = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\') text += '\\';
    text += c;
  }
  return text + "\"";
}

class Writer {
 public:
  void line(std::uint32_t depth, const std::string& text) {
    text_.append(std::size_t{4} * depth, ' ');
    text_ += text;
    text_ += '\n';
  }
  // `key<padding> value;`
  void statement(std::uint32_t depth, std::string_view key, const std::string& value) {
    std::string text(key);
    if (value.empty()) {  // a flag
      line(depth, text + ";");
      return;
    }
    if (text.size() < 16) text.append(16 - text.size(), ' ');
    line(depth, text + " " + value + ";");
  }
  void open(std::uint32_t depth, const std::string& head) { line(depth, head + " {"); }
  void close(std::uint32_t depth) { line(depth, "}"); }
  void blank() { text_ += '\n'; }

  void section(std::uint32_t depth, std::string_view name, const Section& section) {
    if (section.written_empty()) return;
    open(depth, std::string(name));
    for (const Option& option : section.options) {
      if (option.inherited) continue;
      std::string values;
      for (const std::string& value : option.values) {
        if (!values.empty()) values += ' ';
        values += quoted(value);
      }
      statement(depth + 1, option.key, values);
    }
    close(depth);
  }

  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string address_text(std::string_view family, const std::string& address, std::uint16_t port) {
  const std::string host = family == "ipv6" ? "[" + address + "]" : address;
  return std::string(family) + " " + host + ":" + std::to_string(port);
}

void write_volume(Writer& out, std::uint32_t depth, const Volume& volume) {
  DITTO_ASSERT(volume.minor.has_value());
  const std::string minor = "minor " + std::to_string(*volume.minor);
  const bool default_device = volume.device == "/dev/drbd" + std::to_string(*volume.minor);
  out.open(depth, "volume " + std::to_string(volume.number));
  out.statement(depth + 1, "device", default_device ? minor : quoted(volume.device) + " " + minor);
  out.statement(depth + 1, "disk", quoted(volume.disk));
  // drbdadm dump leaves out a diskless client's meta-disk: it has none.
  if (!volume.diskless()) out.statement(depth + 1, "meta-disk", volume.meta_disk);
  out.section(depth + 1, "disk", volume.disk_options);
  out.close(depth);
}

void write_host(Writer& out, const Host& host) {
  out.open(1, "on " + quoted(host.name));
  out.line(2, "node-id " + std::to_string(host.node_id.value) + ";");
  out.statement(2, "address", address_text(host.address_family, host.address, host.port));
  for (const Volume& volume : host.volumes) write_volume(out, 2, volume);
  out.close(1);
}

void write_endpoint(Writer& out, std::uint32_t depth, const Endpoint& endpoint) {
  std::string text = "host " + quoted(endpoint.host);
  if (!endpoint.address.empty()) {
    text += " address " + address_text(endpoint.address_family, endpoint.address, endpoint.port);
  }
  out.line(depth, text + ";");
}

void write_connection(Writer& out, const Connection& connection) {
  out.open(1, "connection");
  if (connection.paths.empty()) {
    write_endpoint(out, 2, connection.first);
    write_endpoint(out, 2, connection.second);
  }
  for (const Path& path : connection.paths) {
    out.open(2, "path");
    write_endpoint(out, 3, path.first);
    write_endpoint(out, 3, path.second);
    out.close(2);
  }
  out.section(2, "net", connection.net);
  out.section(2, "disk", connection.disk);
  for (const PeerVolume& volume : connection.volumes) {
    if (volume.disk_options.written_empty()) continue;
    out.open(2, "volume " + std::to_string(volume.number));
    out.section(3, "disk", volume.disk_options);
    out.close(2);
  }
  out.close(1);
}

void write_resource(Writer& out, const Resource& resource) {
  out.line(0, "# defined at " + resource.location.to_string());
  out.open(0, "resource " + resource.name);
  for (const Host& host : resource.hosts) write_host(out, host);
  for (const ConnectionMesh& mesh : resource.meshes) {
    out.open(1, "connection-mesh");
    std::string hosts = "hosts";
    for (const std::string& host : mesh.hosts) hosts += " " + quoted(host);
    out.line(2, hosts + ";");
    out.section(2, "net", mesh.net);
    out.close(1);
  }
  for (const Connection& connection : resource.connections) write_connection(out, connection);
  out.section(1, "options", resource.options);
  out.section(1, "net", resource.net);
  out.section(1, "disk", resource.disk);
  out.section(1, "handlers", resource.handlers);
  out.section(1, "startup", resource.startup);
  out.close(0);
}

}  // namespace

std::string dump(const Config& config) {
  Writer out;
  if (!config.global.written_empty()) {
    out.section(0, "global", config.global);
    out.blank();
  }
  const bool common = !config.common_net.written_empty() || !config.common_disk.written_empty() ||
                      !config.common_options.written_empty() ||
                      !config.common_handlers.written_empty() ||
                      !config.common_startup.written_empty();
  if (common) {
    out.open(0, "common");
    out.section(1, "options", config.common_options);
    out.section(1, "net", config.common_net);
    out.section(1, "disk", config.common_disk);
    out.section(1, "handlers", config.common_handlers);
    out.section(1, "startup", config.common_startup);
    out.close(0);
    out.blank();
  }
  for (const Resource& resource : config.resources) {
    write_resource(out, resource);
    out.blank();
  }
  return out.take();
}

}  // namespace ditto::config
