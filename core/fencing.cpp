// Fencing policy names and the fence-peer exit-code table (drbd9-semantics.md §7).
#include "core/fencing.h"

namespace ditto::core {

const char* to_string(FencingPolicy policy) {
  switch (policy) {
    case FencingPolicy::dont_care:
      return "dont-care";
    case FencingPolicy::resource_only:
      return "resource-only";
    case FencingPolicy::resource_and_stonith:
      return "resource-and-stonith";
  }
  return "?";
}

std::optional<FencingPolicy> parse_fencing_policy(std::string_view text) {
  for (const FencingPolicy policy : {FencingPolicy::dont_care, FencingPolicy::resource_only,
                                     FencingPolicy::resource_and_stonith}) {
    if (text == to_string(policy)) return policy;
  }
  return std::nullopt;
}

FenceOutcome fence_peer_outcome(int exit_code, DiskState own_disk) {
  FenceOutcome outcome;
  switch (exit_code) {
    case 3:
      outcome.peer_disk = DiskState::inconsistent;
      outcome.meaning = "peer-is-inconsistent";
      break;
    case 4:
      outcome.peer_disk = DiskState::outdated;
      outcome.meaning = "peer-was-outdated";
      break;
    case 5:
      // Unreachable: only a node with UpToDate data may assume the peer is dead.
      if (own_disk == DiskState::up_to_date) outcome.peer_disk = DiskState::outdated;
      outcome.meaning = "peer-unreachable";
      break;
    case 6:
      outcome.outdate_self = true;
      outcome.meaning = "peer-is-primary";
      break;
    case 7:
      outcome.peer_disk = DiskState::outdated;
      outcome.meaning = "peer-was-stonithed";
      break;
    default:
      outcome.broken = true;
      outcome.meaning = "broken-handler";
      break;
  }
  outcome.success = outcome.peer_disk.has_value();
  return outcome;
}

}  // namespace ditto::core
