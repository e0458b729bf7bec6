// Quorum (drbd9-semantics.md §8): the settings and the pure computation of "does this device
// have quorum" from what a node knows about itself and its peers. Node (node_quorum.cpp)
// gathers the input at every state change and enforces the outcome.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"

namespace ditto::core {

// `quorum` and `quorum-minimum-redundancy`: off | majority | all | 1..32.
struct QuorumRule {
  enum class Kind : std::uint8_t { off, majority, all, nodes };
  Kind kind = Kind::off;
  std::uint32_t nodes = 0;  // Kind::nodes only, 1..32
  friend bool operator==(const QuorumRule&, const QuorumRule&) = default;
};

// How many of `voters` the rule requires (off: 0).
std::uint32_t quorum_at(QuorumRule rule, std::uint32_t voters);
// "off", "majority", "all" or the number.
std::string to_string(QuorumRule rule);
// Parses the configuration value; nullopt for anything else (the caller names the field).
std::optional<QuorumRule> parse_quorum_rule(std::string_view text);

enum class OnNoQuorum : std::uint8_t { io_error, suspend_io };
std::string_view to_string(OnNoQuorum action);

enum class OnSuspendedPrimaryOutdated : std::uint8_t { disconnect, force_secondary };

struct QuorumSettings {
  QuorumRule quorum;
  QuorumRule minimum_redundancy;
  OnNoQuorum on_no_quorum = OnNoQuorum::suspend_io;  // DRBD's default
  OnSuspendedPrimaryOutdated on_suspended_primary_outdated =
      OnSuspendedPrimaryOutdated::disconnect;
  bool enabled() const { return quorum.kind != QuorumRule::Kind::off; }
  friend bool operator==(const QuorumSettings&, const QuorumSettings&) = default;
};

// What a node knows about one configured peer, for counting.
struct QuorumPeer {
  bool connected = false;  // handshake done: `disk` is current
  DiskState disk = DiskState::dunknown;  // current, or the last known when disconnected
  bool intentional_diskless = false;     // configured `disk none` (a tiebreaker or client)
  // Disconnected after leaving gracefully (down/disconnect), or known Outdated: it does not
  // vote against the nodes that remain (the "last man standing" rule).
  bool left_gracefully = false;
  // Disconnected, and known not to have been able to have quorum.
  bool quorumless = false;
  bool reports_quorum = false;  // connected and its last StateReport said it has quorum
};

struct QuorumInput {
  QuorumSettings settings;
  DiskState disk = DiskState::diskless;  // this node's
  bool intentional_diskless = false;     // this node is configured `disk none`
  bool had_quorum = false;  // this device had quorum before (the tiebreaker rule is sticky)
  std::array<QuorumPeer, nodes_max> peers{};
  std::uint32_t peers_mask = 0;  // which entries of `peers` are configured peers
};

// §8.1's categories after the algorithm's adjustments.
struct QuorumCounts {
  std::uint32_t up_to_date = 0;
  std::uint32_t present = 0;
  std::uint32_t outdated = 0;
  std::uint32_t quorumless = 0;
  std::uint32_t unknown = 0;
  std::uint32_t diskless = 0;
  std::uint32_t missing_diskless = 0;
  std::uint32_t quorate_peers = 0;
  std::uint32_t voters = 0;
  std::uint32_t needed = 0;              // q
  std::uint32_t redundancy_needed = 0;   // min_red
  friend bool operator==(const QuorumCounts&, const QuorumCounts&) = default;
};

struct QuorumOutcome {
  // What §8.1 computes, also with quorum off ("would have lost quorum").
  bool computed = true;
  // What the node acts on: `computed`, or always true with quorum off (§8.1 step 6).
  bool have_quorum = true;
  bool by_tiebreaker = false;  // only the diskless tiebreaker rule (step 5) gave quorum
  QuorumCounts counts;
};

[[nodiscard]] QuorumOutcome compute_quorum(const QuorumInput& input);

// "up_to_date:2 present:0 outdated:1 ... voters:3 needed:2" for logs and test messages.
std::string describe(const QuorumCounts& counts);

// StateReport uuid_flags bits for quorum (high bits, clear of DRBD's UUID flags): the sender
// has quorum; the sender is configured `disk none`; the sender is leaving gracefully (its next
// disconnect is a clean one and it no longer votes).
namespace quorum_flag {
inline constexpr std::uint64_t has_quorum = std::uint64_t{1} << 44;
inline constexpr std::uint64_t intentional_diskless = std::uint64_t{1} << 45;
inline constexpr std::uint64_t leaving = std::uint64_t{1} << 46;
inline constexpr std::uint64_t all = has_quorum | intentional_diskless | leaving;
}  // namespace quorum_flag

}  // namespace ditto::core
