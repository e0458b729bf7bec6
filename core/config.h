// The configuration grammar: drbd.conf / `.res` files, parsed into typed values.
//
// Pure: the parser takes text and a file name (used in messages only) and never reads files
// itself. `include "path";` is resolved through a callback the caller passes in. Every error names
// file, line and column, e.g. "r0.res:12:5: unknown keyword 'protocl' in net section".
//
// Supported grammar (a subset of drbd.conf as `drbdadm dump` accepts it):
//   global { key value; ... }        common { net|disk|options|handlers|startup { ... } }
//   include "file";                  skip [anything] { ... }
//   resource NAME {
//     net|disk|options|handlers|startup { key value...; ... }
//     device [PATH] [minor N]; disk PATH|none; meta-disk internal;   (implicit volume 0)
//     volume N { device ...; disk ...|{ ... }; meta-disk internal; }
//     on HOST { node-id N; address [ipv4|ipv6] IP:PORT; device/disk/meta-disk/volume ... }
//     connection-mesh { hosts A B C...; net { ... } }
//     connection { host A [address [AF] IP:PORT]; host B ...;
//                  path { host A address IP:PORT; host B address IP:PORT; } net { ... } }
//   }
// Sections hold effective options: values written in an outer scope (common → resource →
// volume/connection) are copied in with `inherited` set; dump() prints only what was written.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"

namespace ditto::config {

inline constexpr std::uint32_t minor_max = (1u << 20) - 1;
inline constexpr std::uint32_t volume_number_max = 65534;
inline constexpr std::size_t resource_name_size_max = 64;  // = wire::resource_name_size_max
inline constexpr std::uint32_t include_depth_max = 16;

struct Location {
  std::string file;
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  // "file:line:column", the prefix of every error message.
  std::string to_string() const;
};

// One `key value [value...];` statement of a net/disk/options/handlers/startup/global section.
struct Option {
  std::string key;
  std::vector<std::string> values;  // unquoted; a bare boolean `key;` is stored as "yes"
  Location location;
  bool inherited = false;  // copied from an outer scope (common, resource), not written here
  // The values joined by single spaces.
  std::string value_text() const;
};

struct Section {
  std::vector<Option> options;  // in the order written, inherited ones after
  const Option* find(std::string_view key) const;
  // Appends each option of `defaults` whose key is not set here, marked inherited.
  void inherit_from(const Section& defaults);
  // True when no option was written in this scope (inherited ones do not count).
  bool written_empty() const;
};

struct Volume {
  std::uint32_t number = 0;
  std::optional<std::uint32_t> minor;  // always set after a successful parse
  std::string device;                  // "/dev/drbd<minor>" unless a path was given
  std::string disk;                    // backing device path, or "none" for a diskless client
  std::string meta_disk = "internal";
  Section disk_options;  // inherits the resource's disk section
  Location location;
  bool diskless() const { return disk == "none"; }
};

struct Host {
  std::string name;
  NodeId node_id;  // 0..node_id_max, unique in the resource
  std::string address_family = "ipv4";
  std::string address;  // without brackets, e.g. "10.0.0.1" or "fd00::1"
  std::uint16_t port = 0;
  std::vector<Volume> volumes;  // sorted by number; implicit volume 0 if none was named
  Location location;
  const Volume* find_volume(std::uint32_t number) const;
};

// One side of a path: a host and the address it uses on that path.
struct Endpoint {
  std::string host;
  std::string address_family = "ipv4";
  std::string address;  // empty: not written (effective_connections() fills it in)
  std::uint16_t port = 0;
  Location location;
};

struct Path {
  Endpoint first;
  Endpoint second;
  Location location;
};

struct PeerVolume {
  std::uint32_t number = 0;
  Section disk_options;
  Location location;
};

struct Connection {
  Endpoint first;  // from `host A [address ...];`, or the first path's hosts
  Endpoint second;
  std::vector<Path> paths;  // as written; effective_connections() adds the implied one
  Section net;
  Section disk;
  std::vector<PeerVolume> volumes;
  bool from_mesh = false;
  Location location;
  Protocol protocol() const;  // net `protocol`, default C
};

struct ConnectionMesh {
  std::vector<std::string> hosts;
  Section net;
  Location location;
};

struct Resource {
  std::string name;
  std::vector<Host> hosts;  // in the order written
  Section net;
  Section disk;
  Section options;
  Section handlers;
  Section startup;
  std::vector<Connection> connections;  // explicit `connection` blocks, as written
  std::vector<ConnectionMesh> meshes;
  Location location;

  Protocol protocol() const;  // net `protocol` (possibly from common), default C
  const Host* find_host(std::string_view host_name) const;
  const Host* find_host(NodeId node_id) const;
  // Every connection the resource implies: the explicit blocks, then one per pair of mesh hosts
  // not already connected explicitly; or, with neither and exactly two hosts, the one implicit
  // connection between them (drbdadm's rule; parse() rejects more hosts without any). Each has
  // at least one path with concrete addresses (from the `on` sections where none was written),
  // and its net section inherits the mesh's and the resource's.
  std::vector<Connection> effective_connections() const;
};

struct Config {
  Section global;
  Section common_net;
  Section common_disk;
  Section common_options;
  Section common_handlers;
  Section common_startup;
  std::vector<Resource> resources;
  const Resource* find_resource(std::string_view resource_name) const;
};

// Returns the text of an included file, or nullopt if it cannot be read. `path` is exactly as
// written in the include statement.
using IncludeResolver = std::function<std::optional<std::string>(std::string_view path)>;

Result<Config> parse(std::string_view text, std::string_view file_name,
                     const IncludeResolver& resolver = {});

// allow-two-primaries (yes) in the effective net section of `connection` with protocol A or B:
// a located error at the option ("allow-two-primaries requires protocol C ..."), as drbdsetup
// refuses it. parse() checks every connection; the daemon checks again what it applies.
Status check_two_primaries_protocol(const Connection& connection);
bool allow_two_primaries(const Section& net);

// Canonical text, close to `drbdadm dump` output; parse(dump(c)) gives back c's semantics.
// Volumes are written per host, explicitly; inherited options are left out.
std::string dump(const Config& config);

}  // namespace ditto::config
