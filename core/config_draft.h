// What the grammar pass collects before volumes are resolved and the whole configuration is
// validated (internal to core/config*.cpp). The grammar pass (config.cpp) checks what one
// statement can check alone; resolve() (config_resolve.cpp) checks what needs the whole file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/result.h"

namespace ditto::config {

// One volume's fields as written in one scope; unset fields come from an outer scope.
struct VolumeDraft {
  std::uint32_t number = 0;
  std::optional<std::string> device;  // a device path, if one was written
  std::optional<std::uint32_t> minor;
  std::optional<std::string> disk;
  std::optional<std::string> meta_disk;
  Section disk_options;
  Location location;
};

// Volume fields of a resource or host scope: `device/disk/meta-disk` written directly in the
// scope (implicit volume 0) and `volume N { ... }` blocks.
struct VolumeScope {
  VolumeDraft implicit;
  bool implicit_written = false;
  std::vector<VolumeDraft> volumes;
};

struct HostDraft {
  Host host;  // name, address, location filled by the grammar pass
  std::optional<NodeId> node_id;
  bool address_written = false;
  Location node_id_location;
  Location address_location;
  VolumeScope volumes;
};

struct ResourceDraft {
  Resource resource;  // everything but hosts, which resolve() builds from `hosts`
  VolumeScope volumes;
  std::vector<HostDraft> hosts;
};

struct ConfigDraft {
  Config config;  // global and common sections; resources come from `resources`
  std::vector<ResourceDraft> resources;
};

// Merges volume scopes into each host, applies inheritance and checks the cross-statement rules
// (node ids, addresses, volumes, connection hosts).
Result<Config> resolve(ConfigDraft draft);

}  // namespace ditto::config
