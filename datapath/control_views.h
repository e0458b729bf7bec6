// What the control socket shows of a running resource, in drbd-utils' formats
// (drbd9-semantics.md §13): the events2 `exists` dump, `status --json` and `show`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The `exists ...` lines of `drbdsetup events2 --now` (resource, connections, device,
// peer-devices, paths), each ending in a newline, then "exists -\n".
std::string events2_exists(const ResourceRunner& runner);
// True for a core Event line that is an events2 line (create/change/destroy/call/response/...),
// false for the daemon's other notices (split-brain, protocol-error).
bool is_events2_line(std::string_view line);
// `drbdsetup status --json`: a list with one resource object, keys as §13.2 lists them.
std::string status_json(const ResourceRunner& runner);
// `drbdsetup show`-like: the running resource's configuration in drbd.conf grammar.
std::string show_text(const ResourceRunner& runner);

// One path of a connection as events2/status show it.
struct PathView {
  std::string local;   // "ipv4:10.0.0.1:7789"
  std::string remote;  // "ipv4:10.0.0.2:7789"
  bool established = false;
};
std::vector<PathView> paths_to(const ResourceRunner& runner, NodeId peer);

}  // namespace ditto::datapath
