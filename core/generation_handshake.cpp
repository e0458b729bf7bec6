// The sync-handshake decision pipeline after uuid_compare (drbd9-semantics.md §3.5) and the
// after-split-brain policies (§6). One pure function of both sides' reported state.
#include "core/assert.h"
#include "core/generation.h"

namespace ditto {
namespace {

using S = SyncStrategy;

enum class Direction { none, source, target };

bool is_source(S strategy) {
  return strategy == S::source_use_bitmap || strategy == S::source_set_bitmap ||
         strategy == S::source_copy_bitmap || strategy == S::source_if_both_failed;
}
bool is_target(S strategy) {
  return strategy == S::target_use_bitmap || strategy == S::target_set_bitmap ||
         strategy == S::target_clear_bitmap || strategy == S::target_if_both_failed;
}
bool is_if_both_failed(S strategy) {
  return strategy == S::source_if_both_failed || strategy == S::target_if_both_failed;
}
bool is_split_brain(S strategy) {
  return strategy == S::split_brain_auto_recover || strategy == S::split_brain_disconnect;
}

// The same kind of resync in the other direction, if there is one.
S reversed(S strategy) {
  switch (strategy) {
    case S::source_use_bitmap:
      return S::target_use_bitmap;
    case S::target_use_bitmap:
      return S::source_use_bitmap;
    case S::source_set_bitmap:
      return S::target_set_bitmap;
    case S::target_set_bitmap:
      return S::source_set_bitmap;
    case S::source_if_both_failed:
      return S::target_if_both_failed;
    case S::target_if_both_failed:
      return S::source_if_both_failed;
    default:
      return strategy;
  }
}

Direction after_sb_0pri(const HandshakeInput& in, AfterSplitBrain0 policy) {
  const UuidCompareInput& c = in.compare;
  const bool self_was_primary = (c.self.bitmap[c.peer_node] & uuid_primary_bit) != 0;
  const bool peer_was_primary = (c.peer.bitmap[c.self_node] & uuid_primary_bit) != 0;
  const Direction rc_target = c.resolve_conflicts ? Direction::target : Direction::source;
  using P = AfterSplitBrain0;
  if (policy == P::disconnect) return Direction::none;
  if (policy == P::discard_local) return Direction::target;
  if (policy == P::discard_remote) return Direction::source;
  if (policy == P::discard_younger_primary && self_was_primary != peer_was_primary) {
    return self_was_primary ? Direction::source : Direction::target;
  }
  if ((policy == P::discard_younger_primary || policy == P::discard_older_primary) &&
      self_was_primary != peer_was_primary) {
    return self_was_primary ? Direction::target : Direction::source;
  }
  if (policy != P::discard_least_changes) {  // zero-changes, and the primaries' fall-through
    if (in.self_dirty_bits == 0 && in.peer_dirty_bits == 0) return rc_target;
    if (in.peer_dirty_bits == 0) return Direction::source;
    if (in.self_dirty_bits == 0) return Direction::target;
    if (policy == P::discard_zero_changes) return Direction::none;
  }
  if (in.self_dirty_bits < in.peer_dirty_bits) return Direction::target;
  if (in.self_dirty_bits > in.peer_dirty_bits) return Direction::source;
  return rc_target;
}

// Applies the after-sb policy for the number of current primaries; sets the pri-lost flag.
Direction after_split_brain(const HandshakeInput& in, HandshakeDecision& decision) {
  const int primaries = (in.self_role == Role::primary) + (in.peer_role == Role::primary);
  if (primaries == 0) return after_sb_0pri(in, in.after_sb_0pri);
  const Direction as0p = after_sb_0pri(in, in.after_sb_0pri);
  const bool self_primary = in.self_role == Role::primary;
  if (primaries == 1) {
    switch (in.after_sb_1pri) {
      case AfterSplitBrain1::disconnect:
        return Direction::none;
      case AfterSplitBrain1::consensus:
        // Only if it discards the Secondary's data.
        if (as0p == Direction::target && !self_primary) return as0p;
        if (as0p == Direction::source && self_primary) return as0p;
        return Direction::none;
      case AfterSplitBrain1::violently_as0p:
        return as0p;
      case AfterSplitBrain1::discard_secondary:
        return self_primary ? Direction::source : Direction::target;
      case AfterSplitBrain1::call_pri_lost_after_sb:
        decision.call_pri_lost_after_sb = as0p == Direction::target && self_primary;
        decision.peer_demotes = as0p == Direction::source && !self_primary;
        return as0p;
    }
  }
  switch (in.after_sb_2pri) {
    case AfterSplitBrain2::disconnect:
      return Direction::none;
    case AfterSplitBrain2::violently_as0p:
      return as0p;
    case AfterSplitBrain2::call_pri_lost_after_sb:
      decision.call_pri_lost_after_sb = as0p == Direction::target;
      decision.peer_demotes = as0p == Direction::source;
      return as0p;
  }
  return Direction::none;
}

// Steps 4-8: split brain detection, automatic and manual recovery.
void resolve_split_brain(const HandshakeInput& in, HandshakeDecision& decision) {
  S& strategy = decision.strategy;
  const bool self_stable = (in.compare.self_flags & uuid_flag::stable) != 0;
  const bool peer_stable = (in.compare.peer_flags & uuid_flag::stable) != 0;
  if (strategy == S::split_brain_auto_recover && (!self_stable || !peer_stable)) {
    strategy = S::no_sync;
    return;
  }
  if (!is_split_brain(strategy)) return;
  decision.call_initial_split_brain = true;
  const bool full = strategy == S::split_brain_disconnect;
  if (strategy == S::split_brain_auto_recover || in.always_asbp) {
    Direction direction = Direction::none;
    if (in.quorum_enabled && in.self_has_quorum != in.peer_has_quorum) {
      direction = in.self_has_quorum ? Direction::source : Direction::target;
    } else {
      direction = after_split_brain(in, decision);
    }
    if (direction == Direction::source)
      strategy = full ? S::source_set_bitmap : S::source_use_bitmap;
    if (direction == Direction::target)
      strategy = full ? S::target_set_bitmap : S::target_use_bitmap;
  }
  if (is_split_brain(strategy)) {
    const bool self_discard = (in.compare.self_flags & uuid_flag::discard_my_data) != 0;
    const bool peer_discard = (in.compare.peer_flags & uuid_flag::discard_my_data) != 0;
    if (self_discard && !peer_discard)
      strategy = full ? S::target_set_bitmap : S::target_use_bitmap;
    if (peer_discard && !self_discard)
      strategy = full ? S::source_set_bitmap : S::source_use_bitmap;
  }
  if (is_split_brain(strategy)) {
    decision.call_split_brain = true;
    decision.outcome = HandshakeOutcome::standalone;
    decision.reason = "Split-Brain detected but unresolved, dropping connection!";
  }
}

// Step 2: the side with the better disk state becomes the source.
void disk_state_override(const HandshakeInput& in, HandshakeDecision& decision) {
  const DiskState self = in.self_disk;
  const DiskState peer = in.peer_disk;
  if (self == peer || self < DiskState::inconsistent || peer < DiskState::inconsistent ||
      peer == DiskState::dunknown) {
    return;
  }
  const UuidRule rule = decision.compare.rule;
  const bool tie_rule = rule == UuidRule::reconnected || rule == UuidRule::lost_quorum ||
                        rule == UuidRule::lost_quorum_reconnect || rule == UuidRule::both_off;
  const bool one_inconsistent =
      (self == DiskState::inconsistent) != (peer == DiskState::inconsistent);
  // Not only for the split brain case (DRBD): an Inconsistent side holds no data of its own to
  // keep, so it becomes the target of a full sync instead of a split brain being declared
  // (a restarted node that is SyncTarget of one peer, its old branch still its current UUID,
  // met another peer of the surviving branch with quorum on both sides: quorum swarm seed 948).
  if (one_inconsistent && is_split_brain(decision.strategy)) {
    decision.strategy = self > peer ? S::source_set_bitmap : S::target_set_bitmap;
    decision.full_sync_across_branches = true;
    return;
  }
  // A Primary whose disk is Inconsistent (attached again and resyncing, node_attach.cpp) on a
  // newer generation than an UpToDate peer would be the source the generations call for, with
  // no data of its own to send. DRBD's drbd_sync_handshake refuses: "I shall become SyncSource,
  // but I am inconsistent!", and drops the connection (both sides here). Making the Primary the
  // full SyncTarget of the older peer instead (swarm seed 95) let that peer count as its
  // UpToDate replica and take writes on top of data without the newer generation's (quorum
  // swarm seed 1069: a bitmap-both split brain with the node that held it).
  const bool inconsistent_primary_newer =
      (self == DiskState::inconsistent && in.self_role == Role::primary &&
       peer == DiskState::up_to_date && is_source(decision.strategy)) ||
      (peer == DiskState::inconsistent && in.peer_role == Role::primary &&
       self == DiskState::up_to_date && is_target(decision.strategy));
  if (inconsistent_primary_newer) {
    decision.outcome = HandshakeOutcome::disconnect;
    decision.reason = "I shall become SyncSource, but I am inconsistent!";
    return;
  }
  // An Inconsistent Secondary on a newer generation than an UpToDate peer, and the SyncTarget of
  // no node (its source lost its disk or left), would be the source the generations call for
  // with nothing to send: ditto never resyncs from an Inconsistent disk (resync_not_now), and
  // nothing would end the wait, as no disk that holds the newer generation is left to resync it
  // (quorum swarm seed 750: the diskless Primary that had it trusts no peer on another
  // generation, so no newer generation makes the branches diverge either). Its partial blocks
  // are no data of its own to keep: like DRBD 8.4's drbd_sync_handshake ("Becoming sync target
  // due to disk states"), the disk states decide, and it takes a full sync from the UpToDate
  // peer, as across diverged branches above. One still SyncTarget of another node waits for
  // that resync to end instead (resync_not_now: swarm seed 19 with quorum).
  // Only when no disk that holds the newer generation may come back, though: one whose source
  // left UpToDate (crashed, or cut off) says so (newer_copy_away), and both sides refuse and
  // retry as DRBD does, until that disk resynced it (quorum swarm seeds 5835, 3593: the full sync
  // threw the generation's acknowledged writes away, and the connection gave the older peer the
  // quorum to be promoted on its data). An operator who knows that disk is gone for good
  // connects the Inconsistent node with --discard-my-data (or detaches and attaches it again).
  const auto idle = [](std::uint64_t flags) { return (flags & uuid_flag::sync_target) == 0; };
  const bool self_inconsistent_newer =
      self == DiskState::inconsistent && in.self_role != Role::primary &&
      peer == DiskState::up_to_date && is_source(decision.strategy) && idle(in.compare.self_flags);
  const bool peer_inconsistent_newer =
      peer == DiskState::inconsistent && in.peer_role != Role::primary &&
      self == DiskState::up_to_date && is_target(decision.strategy) && idle(in.compare.peer_flags);
  if (self_inconsistent_newer || peer_inconsistent_newer) {
    const std::uint64_t flags =
        self_inconsistent_newer ? in.compare.self_flags : in.compare.peer_flags;
    if ((flags & uuid_flag::newer_copy_away) != 0 && (flags & uuid_flag::discard_my_data) == 0) {
      decision.outcome = HandshakeOutcome::retry_connect;
      decision.reason = "I shall become SyncSource, but I am inconsistent!";
      return;
    }
    decision.strategy = self > peer ? S::source_set_bitmap : S::target_set_bitmap;
    decision.full_sync_across_branches = true;
    return;
  }
  if ((tie_rule && is_if_both_failed(decision.strategy)) ||
      (decision.strategy == S::no_sync && one_inconsistent)) {
    decision.strategy = self > peer ? S::source_use_bitmap : S::target_use_bitmap;
  }
}

// Step 10: I would become SyncTarget while Primary with good data and changes on either side.
void rr_conflict(const HandshakeInput& in, HandshakeDecision& decision) {
  if (!is_target(decision.strategy) || is_if_both_failed(decision.strategy)) return;
  // A losing Primary under call-pri-lost-after-sb demotes first (DRBD's asb_recover_1p/2p).
  if (decision.call_pri_lost_after_sb) return;
  if (in.self_role != Role::primary || in.self_disk < DiskState::consistent) return;
  if (in.self_dirty_bits == 0 && in.peer_dirty_bits == 0) return;
  switch (in.rr_conflict) {
    case RrConflict::violently:
      return;
    case RrConflict::auto_discard:
      if (decision.compare.rule == UuidRule::crashed_primary &&
          decision.strategy == S::target_use_bitmap) {
        decision.strategy = S::source_use_bitmap;
        return;
      }
      break;
    case RrConflict::retry_connect:
      decision.outcome = HandshakeOutcome::retry_connect;
      decision.reason = "I shall become SyncTarget, but I am primary!";
      return;
    case RrConflict::call_pri_lost:
      decision.call_pri_lost = true;
      break;
    case RrConflict::disconnect:
      break;
  }
  decision.outcome = HandshakeOutcome::disconnect;
  decision.reason = "I shall become SyncTarget, but I am primary!";
}

}  // namespace

namespace {

// Steps 11, 13 and 14: stale missed-finish rules, bitmap edits, the replication state.
void finish_decision(const HandshakeInput& in, HandshakeDecision& decision) {
  const UuidRule rule = decision.compare.rule;
  if ((rule == UuidRule::sync_source_missed_finish ||
       rule == UuidRule::sync_target_peer_missed_finish) &&
      (is_source(decision.strategy) ? in.self_disk : in.peer_disk) != DiskState::up_to_date) {
    decision.strategy = S::no_sync;
    decision.clear_stale_bitmap_uuid = true;
  }
  const S strategy = decision.strategy;
  if (strategy == S::source_copy_bitmap) {
    decision.bitmap_edit = BitmapEdit::copy_slot;
    decision.copy_from_node = decision.compare.bitmap_node;
  }
  // target-clear-bitmap (rule bitmap-peer-other): DRBD zeroes the target's slot toward the
  // source, which copies its slot for the node we synced up with. ditto keeps our bits, so the
  // exchange resyncs the union: nodes of one generation may still differ on blocks only we
  // marked (a lost Primary's writes not yet reconciled), and the copied slot knows nothing of
  // them (swarm seeds 774, 2566); an Inconsistent disk's bits also name the blocks an
  // interrupted resync still owes, which its current UUID (the generation a Primary served)
  // does not describe (swarm seed 237 with attach). The cost is resyncing blocks that may
  // already be equal.
  if (strategy == S::source_set_bitmap || strategy == S::target_set_bitmap) {
    decision.bitmap_edit = BitmapEdit::set_all;
  }
  // Not across diverged branches: the peer's current UUID names a generation we never had, and
  // a bitmap UUID lands in our history once its slot is rewritten, where it would read as our
  // ancestor (quorum swarm seed 948: history-both against the branch it came from). An
  // interrupted full sync of that kind is a full sync again at the next handshake.
  // Nor when the generations called us the target and something else made us the source (the
  // peer's --discard-my-data, step 9; until quorum swarm seed 1069 also an Inconsistent Primary
  // on a newer generation, which now drops the connection): the peer's generation is not one
  // our data descends from, and a bitmap UUID naming it would tell a third node that holds it
  // that it is behind us, while we tell it that we are behind it (swarm seed 1039: each side of
  // that connection waited for the other as its source).
  decision.record_peer_current_as_bitmap_uuid =
      strategy == S::source_set_bitmap && !decision.full_sync_across_branches &&
      !is_target(decision.compare.strategy) &&
      comparable_current(in.compare.self.current) != uuid_just_created_value;
  if (is_if_both_failed(strategy) &&
      (in.self_role == Role::primary || in.peer_role == Role::primary)) {
    const bool both = in.self_role == Role::primary && in.peer_role == Role::primary;
    decision.outcome = both                            ? HandshakeOutcome::established
                       : in.peer_role != Role::primary ? HandshakeOutcome::become_source
                                                       : HandshakeOutcome::become_target;
    return;
  }
  decision.outcome = is_source(strategy)   ? HandshakeOutcome::become_source
                     : is_target(strategy) ? HandshakeOutcome::become_target
                                           : HandshakeOutcome::established;
}

}  // namespace

HandshakeDecision sync_handshake(const HandshakeInput& in) {
  HandshakeDecision decision;
  decision.compare = uuid_compare(in.compare);
  decision.strategy = decision.compare.strategy;
  if (decision.strategy == S::retry_connect) {
    decision.outcome = HandshakeOutcome::retry_connect;
    return decision;
  }
  if (decision.strategy == S::unrelated_data) {
    decision.outcome = HandshakeOutcome::disconnect;
    decision.reason = "Unrelated data, aborting!";
    return decision;
  }
  // Two diverged branches, both sides Inconsistent (each the SyncTarget of another peer, or
  // left so when its source failed): neither holds data of its own to keep or to lose, and
  // once a resync of either ends the generations say which way to go. The connection comes up
  // without a resync, which waits, instead of a split brain that drops the connection for good
  // (quorum swarm seed 948, both sides with quorum) or a retry every reconnect interval for as
  // long as no UpToDate disk is left (swarm seed 2892).
  if (is_split_brain(decision.strategy) && in.self_disk == DiskState::inconsistent &&
      in.peer_disk == DiskState::inconsistent) {
    decision.strategy = S::no_sync;
    decision.defer_resync = true;
    decision.reason = "diverged generations on two Inconsistent disks: waiting for a resync";
    return decision;
  }
  disk_state_override(in, decision);
  if (decision.outcome == HandshakeOutcome::disconnect ||
      decision.outcome == HandshakeOutcome::retry_connect) {
    return decision;
  }
  resolve_split_brain(in, decision);
  if (decision.outcome == HandshakeOutcome::standalone) return decision;
  if (!is_split_brain(decision.compare.strategy)) {  // step 9: --discard-my-data
    const bool self_discard = (in.compare.self_flags & uuid_flag::discard_my_data) != 0;
    const bool peer_discard = (in.compare.peer_flags & uuid_flag::discard_my_data) != 0;
    if (self_discard && is_source(decision.strategy) && in.peer_disk > DiskState::inconsistent) {
      decision.strategy = reversed(decision.strategy);
    } else if (peer_discard && is_target(decision.strategy) &&
               in.self_disk > DiskState::inconsistent) {
      decision.strategy = reversed(decision.strategy);
    }
  }
  rr_conflict(in, decision);
  if (decision.outcome != HandshakeOutcome::established) return decision;
  finish_decision(in, decision);
  if (in.tentative) decision.outcome = HandshakeOutcome::dry_run;
  DITTO_ASSERT(!is_split_brain(decision.strategy));
  return decision;
}

}  // namespace ditto
