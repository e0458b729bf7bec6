// dittoadm adjust: the difference between the running configuration and the file, split into
// what the daemon can change live and what needs `down` and `up` (drbdadm adjust's job,
// ecosystem.md §3.3). Pure: compares two DaemonConfigs, touches nothing.
#pragma once

#include <string>
#include <vector>

#include "datapath/daemon_config.h"

namespace ditto::datapath {

struct AdjustPlan {
  // "r0.res:3:3: node-id 0 -> 5 needs down/up", one per difference that cannot be applied
  // live, located in the file. Any of them: adjust changes nothing.
  std::vector<std::string> needs_down_up;
  // "ping-int 10000 ms -> 3000 ms", "path to beta added: ...": what adjust applies.
  std::vector<std::string> changes;
};

// Live: ping-int, ping-timeout, timeout, connect-int, ko-count, cram-hmac-alg/shared-secret,
// the paths of each connection (the transport), and the core's options (core::ChangeOptions):
// resync-rate, c-plan-ahead, c-fill-target, c-max-rate, c-min-rate, after-sb-0pri/1pri/2pri,
// rr-conflict, always-asbp, fencing, verify-alg, csums-alg, csums-after-crash-only,
// on-congestion, congestion-fill, congestion-extents, quorum,
// quorum-minimum-redundancy, on-no-quorum, on-suspended-primary-outdated. Needs down/up:
// node-id, own address, volumes (number, minor, device, disk, meta-disk, size), peers added or
// removed, protocol, TLS, the other keys of the options section (auto-promote, ...).
AdjustPlan plan_adjust(const DaemonConfig& running, const DaemonConfig& file);

}  // namespace ditto::datapath
