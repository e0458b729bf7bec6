// The quorum computation of drbd9-semantics.md §8.1 (DRBD's calc_quorum_at and
// __calc_quorum_with_disk), as one pure function.
#include "core/quorum.h"

#include "core/assert.h"

namespace ditto::core {
namespace {

std::uint32_t majority_of(std::uint32_t count) {
  return count / 2 + 1;
}

void count_self(const QuorumInput& input, QuorumCounts& counts) {
  if (input.intentional_diskless) {
    counts.diskless += 1;
  } else if (input.disk == DiskState::up_to_date) {
    counts.up_to_date += 1;
  } else if (input.disk > DiskState::failed) {
    counts.present += 1;  // attached, not UpToDate
  }
  // A diskful node whose disk detached or failed counts for nothing itself.
}

void count_peer(const QuorumPeer& peer, QuorumCounts& counts) {
  if (peer.connected) {
    if (peer.intentional_diskless) {
      counts.diskless += 1;
    } else if (peer.disk == DiskState::up_to_date) {
      counts.up_to_date += 1;
      if (peer.reports_quorum) counts.quorate_peers += 1;
    } else {
      counts.present += 1;  // any other disk state, Diskless included: it votes (§8.2)
    }
    return;
  }
  if (peer.intentional_diskless) {
    counts.missing_diskless += 1;
  } else if (peer.left_gracefully || peer.disk <= DiskState::outdated) {
    counts.outdated += 1;
  } else if (peer.quorumless) {
    counts.quorumless += 1;
  } else {
    counts.unknown += 1;
  }
}

}  // namespace

std::uint32_t quorum_at(QuorumRule rule, std::uint32_t voters) {
  switch (rule.kind) {
    case QuorumRule::Kind::off:
      return 0;
    case QuorumRule::Kind::majority:
      return majority_of(voters);
    case QuorumRule::Kind::all:
      return voters;
    case QuorumRule::Kind::nodes:
      return rule.nodes;
  }
  return voters;
}

std::string to_string(QuorumRule rule) {
  switch (rule.kind) {
    case QuorumRule::Kind::off:
      return "off";
    case QuorumRule::Kind::majority:
      return "majority";
    case QuorumRule::Kind::all:
      return "all";
    case QuorumRule::Kind::nodes:
      return std::to_string(rule.nodes);
  }
  return "off";
}

std::optional<QuorumRule> parse_quorum_rule(std::string_view text) {
  if (text == "off") return QuorumRule{};
  if (text == "majority") return QuorumRule{QuorumRule::Kind::majority, 0};
  if (text == "all") return QuorumRule{QuorumRule::Kind::all, 0};
  if (text.empty() || text.size() > 2) return std::nullopt;
  std::uint32_t value = 0;
  for (const char digit : text) {
    if (digit < '0' || digit > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(digit - '0');
  }
  if (value < 1 || value > nodes_max) return std::nullopt;
  return QuorumRule{QuorumRule::Kind::nodes, value};
}

std::string_view to_string(OnNoQuorum action) {
  return action == OnNoQuorum::io_error ? "io-error" : "suspend-io";
}

QuorumOutcome compute_quorum(const QuorumInput& input) {
  QuorumCounts counts;
  count_self(input, counts);
  for (std::uint32_t node = 0; node < nodes_max; ++node) {
    if ((input.peers_mask >> node & 1u) != 0) count_peer(input.peers[node], counts);
  }
  const QuorumRule rule = input.settings.quorum.kind == QuorumRule::Kind::off
                              ? QuorumRule{QuorumRule::Kind::majority, 0}  // "would have"
                              : input.settings.quorum;
  // Step 1: everyone known to exist votes. Absent nodes that could form a quorum of their own
  // might have had quorum after all: quorumless ones count as unknown then.
  std::uint32_t absent = counts.outdated + counts.quorumless + counts.unknown;
  counts.voters = absent + counts.up_to_date + counts.present;
  counts.needed = quorum_at(rule, counts.voters);
  if (absent >= counts.needed) {
    counts.unknown += counts.quorumless;
    counts.quorumless = 0;
  }
  // Step 2, last man standing: when every absent node is known Outdated (left gracefully) or
  // quorumless, only the nodes present vote.
  if (counts.unknown == 0) {
    counts.voters = counts.up_to_date + counts.present;
    counts.needed = quorum_at(rule, counts.voters);
  }
  // Steps 3 and 4.
  counts.redundancy_needed = quorum_at(input.settings.minimum_redundancy, counts.voters);
  const std::uint32_t reached = counts.up_to_date + counts.present;
  const bool self_diskless_quorate = input.intentional_diskless && counts.quorate_peers > 0;
  bool have = self_diskless_quorate ||
              (reached >= counts.needed && counts.up_to_date >= counts.redundancy_needed);
  // Step 5, the diskless tiebreaker: a tie among the diskful voters is broken by a majority of
  // the diskless nodes, but only for a device that had quorum (never to regain it).
  bool by_tiebreaker = false;
  if (!have && counts.voters != 0 && counts.voters % 2 == 0 && reached + 1 == counts.needed &&
      counts.diskless >= majority_of(counts.diskless + counts.missing_diskless) &&
      input.had_quorum && counts.up_to_date >= counts.redundancy_needed) {
    have = true;
    by_tiebreaker = true;
  }
  QuorumOutcome outcome;
  outcome.computed = have;
  outcome.have_quorum = have || !input.settings.enabled();
  outcome.by_tiebreaker = by_tiebreaker;
  outcome.counts = counts;
  DITTO_ASSERT(outcome.have_quorum || input.settings.enabled());
  DITTO_ASSERT(!by_tiebreaker || input.had_quorum);
  return outcome;
}

std::string describe(const QuorumCounts& counts) {
  return "up_to_date:" + std::to_string(counts.up_to_date) +
         " present:" + std::to_string(counts.present) +
         " outdated:" + std::to_string(counts.outdated) +
         " quorumless:" + std::to_string(counts.quorumless) +
         " unknown:" + std::to_string(counts.unknown) +
         " diskless:" + std::to_string(counts.diskless) +
         " missing_diskless:" + std::to_string(counts.missing_diskless) +
         " quorate_peers:" + std::to_string(counts.quorate_peers) +
         " voters:" + std::to_string(counts.voters) + " needed:" + std::to_string(counts.needed) +
         " redundancy_needed:" + std::to_string(counts.redundancy_needed);
}

}  // namespace ditto::core
