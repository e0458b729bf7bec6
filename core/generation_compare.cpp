// uuid_compare as one rule table (drbd9-semantics.md §3.4): the first row whose condition holds
// decides. Both sides run it with the roles swapped and reach mirrored answers.
#include <array>

#include "core/assert.h"
#include "core/generation.h"

namespace ditto {
namespace {

// Everything the rules look at, with bit 0 masked and 0 -> 4 applied once.
struct CompareContext {
  const UuidCompareInput& input;
  std::uint64_t self_current;
  std::uint64_t peer_current;
  std::uint64_t self_bitmap;     // Sb: my bitmap UUID toward the peer
  std::uint64_t peer_bitmap_me;  // Pb[me]
  std::int32_t peer_other_node;  // x != me with Pb[x] == S, or -1
  std::int32_t self_other_node;  // x != peer with Sb[x] == P, or -1

  bool self_flag(std::uint64_t flag) const { return (input.self_flags & flag) != 0; }
  bool peer_flag(std::uint64_t flag) const { return (input.peer_flags & flag) != 0; }
  bool equal() const { return self_current == peer_current; }
};

bool in_history(const Generations& uuids, std::uint64_t value) {
  for (std::uint64_t entry : uuids.history) {
    if (entry != 0 && comparable_uuid(entry) == value) return true;
  }
  return false;
}

std::int32_t matching_slot(const Generations& uuids, std::uint64_t value, std::uint32_t skip) {
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    if (node == skip || uuids.bitmap[node] == 0) continue;
    if (comparable_uuid(uuids.bitmap[node]) == value) return static_cast<std::int32_t>(node);
  }
  return -1;
}

bool common_history(const Generations& self, const Generations& peer) {
  for (std::uint64_t entry : self.history) {
    if (entry != 0 && in_history(peer, comparable_uuid(entry))) return true;
  }
  return false;
}

using S = SyncStrategy;

S decide_crashed_primary(const CompareContext& c) {
  return c.self_flag(uuid_flag::crashed_primary) ? S::source_use_bitmap : S::target_use_bitmap;
}

S decide_lost_quorum(const CompareContext& c) {
  const bool self_lost = c.self_flag(uuid_flag::primary_lost_quorum);
  const bool peer_lost = c.peer_flag(uuid_flag::primary_lost_quorum);
  if (peer_lost && !self_lost) return S::target_if_both_failed;
  if (self_lost && !peer_lost) return S::source_if_both_failed;
  return c.input.resolve_conflicts ? S::source_if_both_failed : S::target_if_both_failed;
}

S decide_lost_quorum_reconnect(const CompareContext& c) {
  if (c.peer_flag(uuid_flag::crashed_primary) && c.self_flag(uuid_flag::reconnect)) {
    return S::source_if_both_failed;
  }
  if (c.self_flag(uuid_flag::crashed_primary) && c.peer_flag(uuid_flag::reconnect)) {
    return S::target_if_both_failed;
  }
  return S::no_sync;
}

S decide_both_off(const CompareContext& c) {
  const bool self_crashed = c.self_flag(uuid_flag::crashed_primary);
  const bool peer_crashed = c.peer_flag(uuid_flag::crashed_primary);
  if (self_crashed) {
    return peer_crashed && c.input.resolve_conflicts ? S::target_if_both_failed
                                                     : S::source_if_both_failed;
  }
  return peer_crashed ? S::target_if_both_failed : S::no_sync;
}

struct Rule {
  UuidRule rule;
  bool (*applies)(const CompareContext&);
  S (*decide)(const CompareContext&);
};

// The table. Rows 4..10 require equal current UUIDs, rows 11..18 different ones; row 19 is
// the fallback.
constexpr std::array<Rule, 20> rules{{
    {UuidRule::initial_handshake_changed,
     [](const CompareContext& c) { return c.input.changed_while_connecting; },
     [](const CompareContext&) { return S::retry_connect; }},
    {UuidRule::just_created_both,
     [](const CompareContext& c) {
       return c.self_current == uuid_just_created_value &&
              c.peer_current == uuid_just_created_value;
     },
     [](const CompareContext&) { return S::no_sync; }},
    {UuidRule::just_created_self,
     [](const CompareContext& c) { return c.self_current == uuid_just_created_value; },
     [](const CompareContext&) { return S::target_set_bitmap; }},
    {UuidRule::just_created_peer,
     [](const CompareContext& c) { return c.peer_current == uuid_just_created_value; },
     [](const CompareContext&) { return S::source_set_bitmap; }},
    {UuidRule::sync_source_missed_finish,
     [](const CompareContext& c) { return c.equal() && c.input.rs_source_missed_end; },
     [](const CompareContext&) { return S::source_use_bitmap; }},
    {UuidRule::sync_target_peer_missed_finish,
     [](const CompareContext& c) { return c.equal() && c.input.rs_peer_missed_end; },
     [](const CompareContext&) { return S::target_use_bitmap; }},
    {UuidRule::reconnected,
     [](const CompareContext& c) {
       return c.equal() && c.self_flag(uuid_flag::reconnect) && c.peer_flag(uuid_flag::reconnect);
     },
     [](const CompareContext&) { return S::no_sync; }},
    {UuidRule::crashed_primary,
     [](const CompareContext& c) {
       return c.equal() && c.input.protocol != Protocol::c &&
              c.self_flag(uuid_flag::crashed_primary) != c.peer_flag(uuid_flag::crashed_primary);
     },
     decide_crashed_primary},
    {UuidRule::lost_quorum,
     [](const CompareContext& c) {
       return c.equal() && (c.self_flag(uuid_flag::primary_lost_quorum) ||
                            c.peer_flag(uuid_flag::primary_lost_quorum));
     },
     decide_lost_quorum},
    {UuidRule::lost_quorum_reconnect,
     [](const CompareContext& c) {
       return c.equal() && (c.self_flag(uuid_flag::reconnect) || c.peer_flag(uuid_flag::reconnect));
     },
     decide_lost_quorum_reconnect},
    {UuidRule::both_off, [](const CompareContext& c) { return c.equal(); }, decide_both_off},
    {UuidRule::bitmap_peer,
     [](const CompareContext& c) { return c.self_current == c.peer_bitmap_me; },
     [](const CompareContext&) { return S::target_use_bitmap; }},
    {UuidRule::bitmap_peer_other, [](const CompareContext& c) { return c.peer_other_node >= 0; },
     [](const CompareContext&) { return S::target_clear_bitmap; }},
    {UuidRule::bitmap_self, [](const CompareContext& c) { return c.self_bitmap == c.peer_current; },
     [](const CompareContext&) { return S::source_use_bitmap; }},
    {UuidRule::bitmap_self_other, [](const CompareContext& c) { return c.self_other_node >= 0; },
     [](const CompareContext&) { return S::source_copy_bitmap; }},
    {UuidRule::history_peer,
     [](const CompareContext& c) {
       return in_history(c.input.peer, c.self_current) && !in_history(c.input.self, c.peer_current);
     },
     [](const CompareContext&) { return S::target_set_bitmap; }},
    {UuidRule::history_self,
     [](const CompareContext& c) {
       return !in_history(c.input.peer, c.self_current) && in_history(c.input.self, c.peer_current);
     },
     [](const CompareContext&) { return S::source_set_bitmap; }},
    {UuidRule::bitmap_both,
     [](const CompareContext& c) {
       return c.self_bitmap != 0 && c.self_bitmap == c.peer_bitmap_me;
     },
     [](const CompareContext&) { return S::split_brain_auto_recover; }},
    {UuidRule::history_both,
     [](const CompareContext& c) { return common_history(c.input.self, c.input.peer); },
     [](const CompareContext&) { return S::split_brain_disconnect; }},
    {UuidRule::unrelated, [](const CompareContext&) { return true; },
     [](const CompareContext&) { return S::unrelated_data; }},
}};

}  // namespace

UuidCompareResult uuid_compare(const UuidCompareInput& input) {
  DITTO_ASSERT(input.self_node < generation_node_slots && input.peer_node < generation_node_slots);
  DITTO_ASSERT(input.self_node != input.peer_node);
  const std::uint64_t self_current = comparable_current(input.self.current);
  const std::uint64_t peer_current = comparable_current(input.peer.current);
  const CompareContext context{
      input,
      self_current,
      peer_current,
      comparable_uuid(input.self.bitmap[input.peer_node]),
      comparable_uuid(input.peer.bitmap[input.self_node]),
      matching_slot(input.peer, self_current, input.self_node),
      matching_slot(input.self, peer_current, input.peer_node),
  };
  for (const Rule& row : rules) {
    if (!row.applies(context)) continue;
    UuidCompareResult result{row.rule, row.decide(context), -1};
    if (row.rule == UuidRule::bitmap_peer_other) result.bitmap_node = context.peer_other_node;
    if (row.rule == UuidRule::bitmap_self_other) result.bitmap_node = context.self_other_node;
    return result;
  }
  DITTO_ASSERT(false);  // the last row always applies
  return {};
}

std::string_view to_string(UuidRule rule) {
  static constexpr std::array<std::string_view, 20> names{"initial-handshake-changed",
                                                          "just-created-both",
                                                          "just-created-self",
                                                          "just-created-peer",
                                                          "sync-source-missed-finish",
                                                          "sync-target-peer-missed-finish",
                                                          "reconnected",
                                                          "crashed-primary",
                                                          "lost-quorum",
                                                          "lost-quorum",
                                                          "both-off",
                                                          "bitmap-peer",
                                                          "bitmap-peer-other",
                                                          "bitmap-self",
                                                          "bitmap-self-other",
                                                          "history-peer",
                                                          "history-self",
                                                          "bitmap-both",
                                                          "history-both",
                                                          "unrelated"};
  return names[static_cast<std::size_t>(rule)];
}

std::string_view to_string(SyncStrategy strategy) {
  static constexpr std::array<std::string_view, 13> names{"no-sync",
                                                          "retry-connect",
                                                          "source-use-bitmap",
                                                          "target-use-bitmap",
                                                          "source-set-bitmap",
                                                          "target-set-bitmap",
                                                          "source-copy-bitmap",
                                                          "target-clear-bitmap",
                                                          "source-if-both-failed",
                                                          "target-if-both-failed",
                                                          "split-brain-auto-recover",
                                                          "split-brain-disconnect",
                                                          "unrelated-data"};
  return names[static_cast<std::size_t>(strategy)];
}

std::string_view to_string(AfterSplitBrain0 policy) {
  static constexpr std::array<std::string_view, after_split_brain_0_count> names{
      "disconnect",           "discard-younger-primary", "discard-older-primary",
      "discard-zero-changes", "discard-least-changes",   "discard-local",
      "discard-remote"};
  return names[static_cast<std::size_t>(policy)];
}

std::string_view to_string(AfterSplitBrain1 policy) {
  static constexpr std::array<std::string_view, after_split_brain_1_count> names{
      "disconnect", "consensus", "violently-as0p", "discard-secondary", "call-pri-lost-after-sb"};
  return names[static_cast<std::size_t>(policy)];
}

std::string_view to_string(AfterSplitBrain2 policy) {
  static constexpr std::array<std::string_view, after_split_brain_2_count> names{
      "disconnect", "violently-as0p", "call-pri-lost-after-sb"};
  return names[static_cast<std::size_t>(policy)];
}

std::string_view to_string(RrConflict policy) {
  static constexpr std::array<std::string_view, rr_conflict_count> names{
      "disconnect", "retry-connect", "call-pri-lost", "violently", "auto-discard"};
  return names[static_cast<std::size_t>(policy)];
}

}  // namespace ditto
