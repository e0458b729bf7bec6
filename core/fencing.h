// Fencing (drbd9-semantics.md §7): the policy and the fence-peer exit-code table, pure.
//
// The Node (core/node_fencing.cpp) runs fence-peer through a CallHelper action and applies
// fence_peer_outcome to what the handler reported.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/state.h"

namespace ditto::core {

// DRBD's `net { fencing ...; }`.
enum class FencingPolicy : std::uint8_t {
  dont_care,             // no handler; peers never need to be outdated (the default)
  resource_only,         // fence-peer runs; promotion needs unknown peers fenced
  resource_and_stonith,  // as resource_only, and I/O freezes until the handler succeeds
};

const char* to_string(FencingPolicy policy);
// "dont-care" | "resource-only" | "resource-and-stonith"; nullopt for anything else.
std::optional<FencingPolicy> parse_fencing_policy(std::string_view text);

// What a fence-peer exit code means (the §7 table). `peer_disk`: the disk state to record for
// the fenced peer (none: the peer's state is left alone); `outdate_self`: this node outdates
// its own disk (exit code 6, the peer is Primary); `success`: the peer is now known to be
// Outdated or worse, so frozen I/O may resume; `broken`: the handler failed (any code outside
// 3..7), nothing changes and frozen I/O stays frozen until the administrator's resume-io.
struct FenceOutcome {
  std::optional<DiskState> peer_disk;
  bool outdate_self = false;
  bool success = false;
  bool broken = false;
  std::string_view meaning;  // for the events2 line
};

// `own_disk` decides exit code 5 (peer unreachable): an UpToDate node assumes the peer dead.
FenceOutcome fence_peer_outcome(int exit_code, DiskState own_disk);

}  // namespace ditto::core
