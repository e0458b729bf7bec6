// Runs a scenario on real dittod daemons on loopback: file-backed disks under a fresh directory,
// every peer connection through an impairment proxy (faults/impairment_proxy.h), client I/O
// through the NBD export with libnbd, crashes as SIGKILL, admin steps over the control socket,
// waits by polling `status --json`. The report has the structure the simulator's has.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "faults/scenario.h"

namespace ditto::faults {

struct RealOptions {
  bool keep_directory = false;  // leave disks, configurations and daemon logs behind
  // Progress lines as the steps run (empty: quiet).
  std::function<void(const std::string&)> progress;
};

RunReport run_on_real(const Scenario& scenario, std::uint64_t seed, const RealOptions& options);

}  // namespace ditto::faults
