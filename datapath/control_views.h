// What the control socket shows of a running resource, in drbd-utils' formats
// (drbd9-semantics.md §13): the events2 `exists` dump, `status --json` and `show`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "datapath/control_status.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

// The running resource as status and events2 show it (control_status.h formats it).
ResourceView resource_view(const ResourceRunner& runner);
// The `exists ...` lines of `drbdsetup events2 --now [--statistics] [--verbose]` (resource,
// connections, device, peer-devices, paths), each ending in a newline, then "exists -\n".
std::string events2_exists(const ResourceRunner& runner, StatusFlags flags = {});
// True for a core Event line that is an events2 line (create/change/destroy/call/response/...),
// false for the daemon's other notices (split-brain, protocol-error).
bool is_events2_line(std::string_view line);
// `drbdsetup status --json`: a list with one resource object, keys as §13.2 lists them.
std::string status_json(const ResourceRunner& runner);
// `drbdsetup show`-like: the running resource's configuration in drbd.conf grammar.
std::string show_text(const ResourceRunner& runner);

// The paths of the connection to `peer` (PathView: control_status.h).
std::vector<PathView> paths_to(const ResourceRunner& runner, NodeId peer);

}  // namespace ditto::datapath
