// Turns a drbd.conf-grammar file plus the daemon's command line into everything one resource
// needs: the core's NodeConfig, the transport's peers, and the backing disk path. Every error
// names the file, line and problem.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/node.h"
#include "core/result.h"
#include "datapath/transport_tcp.h"

namespace ditto::datapath {

struct DaemonOptions {
  std::string config_path;
  std::string node_name;       // which `on` section is this node; default: the host name
  std::string resource_name;   // default: the only resource in the file
};

struct DaemonConfig {
  DaemonOptions options;  // where it was read from (node_name resolved); adjust re-reads it
  config::Resource resource;
  config::Host self;
  std::string disk_path;           // "none" for a diskless client
  config::Location disk_location;  // where the disk was named, for error messages
  // `disk none`: an intentionally diskless client (no disk, no metadata; it reads and writes
  // through its peers). It learns its volume size from its first diskful peer, or checks the
  // peers' against the disk option `size` when set.
  bool diskless = false;
  std::uint64_t size_bytes = 0;  // the disk option `size` in bytes; 0 when unset
  // The resource the disk option `resync-after RES[/VOLUME]` names (its resyncs wait while that
  // one's run, daemon_resync_after.h); empty when unset.
  std::string resync_after;
  // volume_size_bytes is filled in once the disk is open (a diskless client's: size_bytes, 0
  // until it learns it).
  core::NodeConfig node;
  TransportConfig transport;
};

// The whole text of a configuration file (or an included one); nullopt if it cannot be read
// (errno tells why). Also the include resolver handed to config::parse.
std::optional<std::string> read_config_file(std::string_view path);

// Reads and parses the file (includes are read relative to the current directory, as drbdadm
// does), selects the resource and this node's host section, and validates what the skeleton
// supports (one volume; a disk with meta-disk internal, or `disk none`).
Result<DaemonConfig> load_daemon_config(const DaemonOptions& options);

// A size as drbd.conf's `size` and drbdsetup's --size write it (sectors, or with a K, M, G or T
// suffix), in bytes: whole 4 KiB blocks, at least one; the error names the text.
Result<std::uint64_t> size_bytes_of(const std::string& text);

// The parsed file (includes resolved), errors located.
Result<config::Config> parse_config_file(const std::string& path);
// One parsed resource as this node runs it (node from options.node_name or the host name).
Result<DaemonConfig> resource_daemon_config(const config::Resource& resource,
                                            const DaemonOptions& options);

}  // namespace ditto::datapath
