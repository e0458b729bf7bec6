// `drbdsetup status` text for a Node (drbd9-semantics.md §13.2), shared by the daemon's
// `dittoadm status` and the simulator so both report state the same way.
#pragma once

#include <string>

#include "core/node.h"

namespace ditto::core {

struct StatusOptions {
  bool verbose = false;
  bool statistics = false;
};

std::string format_status(const Node& node, StatusOptions options = {});

}  // namespace ditto::core
