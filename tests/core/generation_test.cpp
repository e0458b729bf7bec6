// Data generations: one test per uuid_compare rule (§3.4), per rotation (§3.2) and for the
// decision pipeline (§3.5, §6). Node 0 is "me", node 1 the peer, node 2 a third node.
#include "core/generation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

namespace ditto {
namespace {

constexpr std::uint64_t gen_a = 0xA000000000000010;
constexpr std::uint64_t gen_b = 0xB000000000000020;
constexpr std::uint64_t gen_c = 0xC000000000000030;
constexpr std::uint64_t gen_d = 0xD000000000000040;

UuidCompareInput equal_generations() {
  UuidCompareInput input;
  input.self.current = gen_a;
  input.peer.current = gen_a;
  return input;
}

void expect_rule(const UuidCompareInput& input, UuidRule rule, SyncStrategy strategy) {
  const UuidCompareResult result = uuid_compare(input);
  EXPECT_EQ(result.rule, rule) << to_string(result.rule);
  EXPECT_EQ(result.strategy, strategy) << to_string(result.strategy);
}

// ---- uuid_compare, one test per rule ----

TEST(UuidCompare, Rule0ChangedWhileConnectingRetries) {
  UuidCompareInput input = equal_generations();
  input.changed_while_connecting = true;
  expect_rule(input, UuidRule::initial_handshake_changed, SyncStrategy::retry_connect);
}

TEST(UuidCompare, Rule1BothJustCreatedNeedNoSync) {
  expect_rule(UuidCompareInput{}, UuidRule::just_created_both, SyncStrategy::no_sync);
}

TEST(UuidCompare, Rule2JustCreatedSelfBecomesFullSyncTarget) {
  UuidCompareInput input;
  input.peer.current = gen_a | uuid_primary_bit;
  expect_rule(input, UuidRule::just_created_self, SyncStrategy::target_set_bitmap);
}

TEST(UuidCompare, Rule3JustCreatedPeerMakesMeFullSyncSource) {
  UuidCompareInput input;
  input.self.current = gen_a;
  input.peer.current = 0;  // 0 reads as just created
  expect_rule(input, UuidRule::just_created_peer, SyncStrategy::source_set_bitmap);
}

TEST(UuidCompare, Rule4SourceThatMissedTheFinishResyncsFromItsBitmap) {
  UuidCompareInput input = equal_generations();
  input.rs_source_missed_end = true;
  expect_rule(input, UuidRule::sync_source_missed_finish, SyncStrategy::source_use_bitmap);
}

TEST(UuidCompare, Rule5PeerMissedTheFinishMakesMeTarget) {
  UuidCompareInput input = equal_generations();
  input.rs_peer_missed_end = true;
  expect_rule(input, UuidRule::sync_target_peer_missed_finish, SyncStrategy::target_use_bitmap);
}

TEST(UuidCompare, Rule6BothReconnectingWithEqualUuidsNeedNoSync) {
  UuidCompareInput input = equal_generations();
  input.self_flags = input.peer_flags = uuid_flag::reconnect;
  expect_rule(input, UuidRule::reconnected, SyncStrategy::no_sync);
}

TEST(UuidCompare, Rule7CrashedPrimaryWithProtocolAIsTheSource) {
  UuidCompareInput input = equal_generations();
  input.protocol = Protocol::a;
  input.self_flags = uuid_flag::crashed_primary;
  expect_rule(input, UuidRule::crashed_primary, SyncStrategy::source_use_bitmap);
  input.self_flags = 0;
  input.peer_flags = uuid_flag::crashed_primary;
  expect_rule(input, UuidRule::crashed_primary, SyncStrategy::target_use_bitmap);
  input.protocol = Protocol::c;  // not with protocol C: falls through to both-off
  expect_rule(input, UuidRule::both_off, SyncStrategy::target_if_both_failed);
}

TEST(UuidCompare, Rule8PrimaryThatLostQuorumIsSourceIfBothFailed) {
  UuidCompareInput input = equal_generations();
  input.peer_flags = uuid_flag::primary_lost_quorum;
  expect_rule(input, UuidRule::lost_quorum, SyncStrategy::target_if_both_failed);
  input.peer_flags = 0;
  input.self_flags = uuid_flag::primary_lost_quorum;
  expect_rule(input, UuidRule::lost_quorum, SyncStrategy::source_if_both_failed);
  input.peer_flags = uuid_flag::primary_lost_quorum;
  input.resolve_conflicts = true;
  expect_rule(input, UuidRule::lost_quorum, SyncStrategy::source_if_both_failed);
}

TEST(UuidCompare, Rule9ReconnectingToACrashedPrimaryMakesTheSurvivorSource) {
  UuidCompareInput input = equal_generations();
  input.self_flags = uuid_flag::reconnect;
  input.peer_flags = uuid_flag::crashed_primary;
  expect_rule(input, UuidRule::lost_quorum_reconnect, SyncStrategy::source_if_both_failed);
  input.self_flags = uuid_flag::crashed_primary;
  input.peer_flags = uuid_flag::reconnect;
  expect_rule(input, UuidRule::lost_quorum_reconnect, SyncStrategy::target_if_both_failed);
  input.self_flags = 0;
  expect_rule(input, UuidRule::lost_quorum_reconnect, SyncStrategy::no_sync);
}

TEST(UuidCompare, Rule10CommonPowerFailureCrashedPrimaryIsSource) {
  UuidCompareInput input = equal_generations();
  expect_rule(input, UuidRule::both_off, SyncStrategy::no_sync);
  input.self_flags = uuid_flag::crashed_primary;
  expect_rule(input, UuidRule::both_off, SyncStrategy::source_if_both_failed);
  input.peer_flags = uuid_flag::crashed_primary;
  input.resolve_conflicts = true;
  expect_rule(input, UuidRule::both_off, SyncStrategy::target_if_both_failed);
}

TEST(UuidCompare, Rule11PeerTrackedChangesSinceMyGenerationMakesMeTarget) {
  UuidCompareInput input;
  input.self.current = gen_a;
  input.peer.current = gen_b | uuid_primary_bit;
  input.peer.bitmap[0] = gen_a;
  expect_rule(input, UuidRule::bitmap_peer, SyncStrategy::target_use_bitmap);
}

TEST(UuidCompare, Rule12PeerTracksMyGenerationForAnotherNode) {
  UuidCompareInput input;
  input.self.current = gen_a;
  input.peer.current = gen_b;
  input.peer.bitmap[2] = gen_a;
  const UuidCompareResult result = uuid_compare(input);
  EXPECT_EQ(result.rule, UuidRule::bitmap_peer_other);
  EXPECT_EQ(result.strategy, SyncStrategy::target_clear_bitmap);
  EXPECT_EQ(result.bitmap_node, 2);
}

TEST(UuidCompare, Rule13MyBitmapTracksThePeersGenerationMakesMeSource) {
  UuidCompareInput input;
  input.self.current = gen_b;
  input.peer.current = gen_a;
  input.self.bitmap[1] = gen_a | uuid_primary_bit;  // bit 0 is masked
  expect_rule(input, UuidRule::bitmap_self, SyncStrategy::source_use_bitmap);
}

TEST(UuidCompare, Rule14MySlotForAnotherNodeHoldsThePeersGenerationCopyIt) {
  UuidCompareInput input;
  input.self.current = gen_b;
  input.peer.current = gen_a;
  input.self.bitmap[2] = gen_a;
  const UuidCompareResult result = uuid_compare(input);
  EXPECT_EQ(result.rule, UuidRule::bitmap_self_other);
  EXPECT_EQ(result.strategy, SyncStrategy::source_copy_bitmap);
  EXPECT_EQ(result.bitmap_node, 2);
}

TEST(UuidCompare, Rule15MyGenerationInPeerHistoryMeansFullSyncAsTarget) {
  UuidCompareInput input;
  input.self.current = gen_a;
  input.peer.current = gen_b;
  input.peer.history[3] = gen_a;
  expect_rule(input, UuidRule::history_peer, SyncStrategy::target_set_bitmap);
}

TEST(UuidCompare, Rule16PeerGenerationInMyHistoryMeansFullSyncAsSource) {
  UuidCompareInput input;
  input.self.current = gen_b;
  input.peer.current = gen_a;
  input.self.history[0] = gen_a;
  expect_rule(input, UuidRule::history_self, SyncStrategy::source_set_bitmap);
}

TEST(UuidCompare, Rule17BothTrackTheSameParentIsAnAutoRecoverableSplitBrain) {
  UuidCompareInput input;
  input.self.current = gen_b;
  input.peer.current = gen_c;
  input.self.bitmap[1] = gen_a;
  input.peer.bitmap[0] = gen_a | uuid_primary_bit;
  expect_rule(input, UuidRule::bitmap_both, SyncStrategy::split_brain_auto_recover);
}

TEST(UuidCompare, Rule18OnlyACommonHistoryIsASplitBrainThatDisconnects) {
  UuidCompareInput input;
  input.self.current = gen_b;
  input.peer.current = gen_c;
  input.self.history[1] = gen_a;
  input.peer.history[5] = gen_a;
  expect_rule(input, UuidRule::history_both, SyncStrategy::split_brain_disconnect);
}

TEST(UuidCompare, Rule19NothingInCommonIsUnrelatedData) {
  UuidCompareInput input;
  input.self.current = gen_b;
  input.peer.current = gen_c;
  input.self.history[0] = gen_a;
  input.peer.history[0] = gen_d;
  expect_rule(input, UuidRule::unrelated, SyncStrategy::unrelated_data);
}

TEST(UuidCompare, BothSidesReachMirroredDecisions) {
  UuidCompareInput mine;
  mine.self.current = gen_b;
  mine.peer.current = gen_a;
  mine.self.bitmap[1] = gen_a;
  UuidCompareInput theirs;
  theirs.self = mine.peer;
  theirs.peer = mine.self;
  theirs.self_node = 1;
  theirs.peer_node = 0;
  EXPECT_EQ(uuid_compare(mine).strategy, SyncStrategy::source_use_bitmap);
  EXPECT_EQ(uuid_compare(theirs).strategy, SyncStrategy::target_use_bitmap);
}

// ---- rotations ----

TEST(GenerationRotation, PushHistoryInsertsNewestFirstAndSkipsDuplicates) {
  Generations uuids;
  uuids.current = gen_d;
  push_history(uuids, gen_a);
  push_history(uuids, gen_b);
  push_history(uuids, gen_a);                    // already held
  push_history(uuids, gen_d);                    // the current UUID
  push_history(uuids, uuid_just_created_value);  // never history
  EXPECT_EQ(uuids.history[0], gen_b);
  EXPECT_EQ(uuids.history[1], gen_a);
  EXPECT_EQ(uuids.history[2], 0u);
}

TEST(GenerationRotation, ReplacingABitmapUuidMovesTheOldOneToHistory) {
  Generations uuids;
  uuids.current = gen_c;
  set_bitmap_uuid(uuids, 1, gen_a);
  set_bitmap_uuid(uuids, 1, gen_b);
  EXPECT_EQ(uuids.bitmap[1], gen_b);
  EXPECT_EQ(uuids.history[0], gen_a);
}

TEST(GenerationRotation, PromotionBumpsLazilyOnTheFirstWriteIntoTheAbsentPeersSlot) {
  GenerationState state;
  state.uuids.current = gen_a;
  request_new_current_uuid(state);
  EXPECT_EQ(state.uuids.current, gen_a);  // nothing until a write arrives
  const NewCurrentInput input{1u << 1, true, false};
  EXPECT_TRUE(before_application_write(state, input, 0x1234567890ABCDE0));
  EXPECT_EQ(state.uuids.current, 0x1234567890ABCDE0 | uuid_primary_bit);
  EXPECT_EQ(state.uuids.bitmap[1], gen_a);
  EXPECT_FALSE(before_application_write(state, input, 0x99));  // only once
}

TEST(GenerationRotation, NoBumpWhenEveryPeerAlreadyHasTheData) {
  Generations uuids;
  uuids.current = gen_a;
  EXPECT_FALSE(new_current_uuid(uuids, NewCurrentInput{0, true, false}, gen_b));
  EXPECT_EQ(uuids.current, gen_a);
}

TEST(GenerationRotation, ASlotTrackingAnOlderGenerationKeepsIt) {
  Generations uuids;
  uuids.current = gen_b;
  uuids.bitmap[1] = gen_a;  // peer 1 has been away since gen_a
  ASSERT_TRUE(new_current_uuid(uuids, NewCurrentInput{(1u << 1) | (1u << 2), false, false}, gen_c));
  EXPECT_EQ(uuids.bitmap[1], gen_a);
  EXPECT_EQ(uuids.bitmap[2], gen_b);
  EXPECT_EQ(uuids.current, gen_c);
}

TEST(GenerationRotation, ForcedBumpWithoutSlotsKeepsTheOldUuidInHistory) {
  Generations uuids;
  uuids.current = gen_a;
  ASSERT_TRUE(new_current_uuid(uuids, NewCurrentInput{0, true, true}, gen_b));
  EXPECT_EQ(uuids.current, gen_b | uuid_primary_bit);
  EXPECT_EQ(uuids.history[0], gen_a);
}

TEST(GenerationRotation, DemotionClearsThePrimaryBit) {
  Generations uuids;
  uuids.current = gen_a | uuid_primary_bit;
  clear_primary_bit(uuids);
  EXPECT_EQ(uuids.current, gen_a);
}

TEST(GenerationRotation, SecondaryAdoptsThePrimarysNewGeneration) {
  Generations uuids;
  uuids.current = gen_a;
  uuids.bitmap[2] = gen_d;  // tracking node 2 since an older generation
  receive_new_current_uuid(uuids, gen_b | uuid_primary_bit, 1u << 3, 1u << 2, true);
  EXPECT_EQ(uuids.current, gen_b);
  EXPECT_EQ(uuids.bitmap[3], gen_a);  // weak node 3 missed gen_b's writes
  EXPECT_EQ(uuids.bitmap[2], gen_b);
  EXPECT_EQ(uuids.history[0], gen_d);  // the replaced slot value
  // gen_a is held by node 3's slot, so it is not duplicated into the history.
  EXPECT_EQ(std::find(uuids.history.begin(), uuids.history.end(), gen_a), uuids.history.end());
}

TEST(GenerationRotation, ResyncTargetStartRemembersItsGenerationForAbsentNodes) {
  Generations uuids;
  uuids.current = gen_a;
  EXPECT_EQ(resync_target_started(uuids, 1u << 2), gen_a);
  EXPECT_EQ(uuids.bitmap[2], gen_a);
  EXPECT_EQ(uuids.bitmap[1], 0u);
}

TEST(GenerationRotation, ResyncTargetFinishTakesTheSourcesGenerationAndHistory) {
  Generations target;
  target.current = gen_a;
  Generations source;
  source.current = gen_b | uuid_primary_bit;
  source.bitmap[0] = gen_a;  // source tracked changes toward me since gen_a
  source.bitmap[2] = gen_c;  // and toward node 2 since gen_c
  source.history[0] = gen_d;
  resync_target_finished(target, source, 0, 1, gen_a);
  EXPECT_EQ(target.current, gen_b);
  EXPECT_EQ(target.bitmap[1], 0u);     // in sync with the source now
  EXPECT_EQ(target.bitmap[2], gen_a);  // node 2 still differs: since my resync start
  EXPECT_NE(std::find(target.history.begin(), target.history.end(), gen_d), target.history.end());
  EXPECT_NE(std::find(target.history.begin(), target.history.end(), gen_c), target.history.end());
}

TEST(GenerationRotation, SourceClearsItsSlotOnceTheTargetReportsTheSameGeneration) {
  Generations source;
  source.current = gen_b;
  source.bitmap[1] = gen_a;
  Generations target;
  target.current = gen_b;
  EXPECT_EQ(source_detect_finished_resyncs(source, target), 1u << 1);
  EXPECT_EQ(source.bitmap[1], 0u);
  EXPECT_EQ(source.history[0], gen_a);
  target.current = gen_c;
  source.bitmap[1] = gen_a;
  EXPECT_EQ(source_detect_finished_resyncs(source, target), 0u);  // not finished yet
}

// A Primary's bump on top of another, both unconfirmed, rolled back: the slots they filled are
// empty again, a slot that tracked an older generation keeps it, the previous UUID is current.
TEST(GenerationRotation, RollingBackAnUnconfirmedGenerationRestoresTheOneBefore) {
  Generations uuids;
  uuids.current = gen_a | uuid_primary_bit;
  uuids.bitmap[3] = gen_b;
  uuids.history[0] = gen_b;
  const Generations before = uuids;
  ASSERT_TRUE(new_current_uuid(uuids, NewCurrentInput{1u << 1, true, false}, gen_c));
  ASSERT_TRUE(new_current_uuid(uuids, NewCurrentInput{1u << 2 | 1u << 3, true, false}, gen_d));
  const UnconfirmedGeneration record{comparable_current(uuids.current), before.current,
                                     1u << 1 | 1u << 2};
  ASSERT_TRUE(names_current(record, uuids));
  roll_back_unconfirmed(uuids, record);
  EXPECT_EQ(uuids, before);
  EXPECT_FALSE(names_current(record, uuids));
}

TEST(GenerationRotation, AnUnconfirmedRecordOfAnotherGenerationNamesNothing) {
  Generations uuids;
  uuids.current = gen_c;
  EXPECT_FALSE(names_current(UnconfirmedGeneration{}, uuids));
  EXPECT_FALSE(names_current(UnconfirmedGeneration{gen_d, gen_a, 0}, uuids));
  EXPECT_TRUE(names_current(UnconfirmedGeneration{gen_c, gen_a, 0}, uuids));
}

TEST(GenerationRotation, UserNewCurrentUuidClearsEveryBitmapUuid) {
  Generations uuids;
  uuids.current = gen_c;
  uuids.bitmap[1] = gen_a;
  uuids.bitmap[4] = gen_b;
  user_new_current_uuid(uuids, false, gen_d);
  EXPECT_EQ(uuids.current, gen_d);
  EXPECT_EQ(uuids.bitmap[1], 0u);
  EXPECT_EQ(uuids.bitmap[4], 0u);
  EXPECT_EQ(uuids.history[0], gen_c);
}

// ---- the handshake pipeline ----

// The other side of the same connection: generations, node ids, flags, disks and roles swapped.
HandshakeInput other_side(const HandshakeInput& in) {
  HandshakeInput out = in;
  std::swap(out.compare.self, out.compare.peer);
  std::swap(out.compare.self_node, out.compare.peer_node);
  std::swap(out.compare.self_flags, out.compare.peer_flags);
  std::swap(out.self_disk, out.peer_disk);
  std::swap(out.self_role, out.peer_role);
  std::swap(out.self_dirty_bits, out.peer_dirty_bits);
  std::swap(out.self_has_quorum, out.peer_has_quorum);
  return out;
}

HandshakeInput split_brain_both_secondary(std::uint64_t self_dirty, std::uint64_t peer_dirty) {
  HandshakeInput input;
  input.compare.self.current = gen_b;
  input.compare.peer.current = gen_c;
  input.compare.self.bitmap[1] = gen_a;
  input.compare.peer.bitmap[0] = gen_a;
  input.compare.self_flags = input.compare.peer_flags = uuid_flag::stable;
  input.self_dirty_bits = self_dirty;
  input.peer_dirty_bits = peer_dirty;
  return input;
}

TEST(SyncHandshake, UnrelatedDataDisconnects) {
  HandshakeInput input;
  input.compare.self.current = gen_a;
  input.compare.peer.current = gen_b;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::disconnect);
  EXPECT_EQ(decision.reason, "Unrelated data, aborting!");
}

TEST(SyncHandshake, SplitBrainWithDefaultPoliciesGoesStandaloneAndCallsHandlers) {
  const HandshakeDecision decision = sync_handshake(split_brain_both_secondary(5, 7));
  EXPECT_EQ(decision.outcome, HandshakeOutcome::standalone);
  EXPECT_TRUE(decision.call_initial_split_brain);
  EXPECT_TRUE(decision.call_split_brain);
}

TEST(SyncHandshake, DiscardZeroChangesKeepsTheWriter) {
  HandshakeInput input = split_brain_both_secondary(0, 12);
  input.after_sb_0pri = AfterSplitBrain0::discard_zero_changes;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_target);
  EXPECT_EQ(decision.strategy, SyncStrategy::target_use_bitmap);
  EXPECT_TRUE(decision.call_initial_split_brain);
  EXPECT_FALSE(decision.call_split_brain);
}

TEST(SyncHandshake, DiscardZeroChangesWithChangesOnBothSidesStaysUnresolved) {
  HandshakeInput input = split_brain_both_secondary(3, 12);
  input.after_sb_0pri = AfterSplitBrain0::discard_zero_changes;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::standalone);
}

TEST(SyncHandshake, DiscardLeastChangesMakesTheSmallerWriterTarget) {
  HandshakeInput input = split_brain_both_secondary(30, 12);
  input.after_sb_0pri = AfterSplitBrain0::discard_least_changes;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::become_source);
}

TEST(SyncHandshake, DiscardSecondaryWithOnePrimaryKeepsThePrimary) {
  HandshakeInput input = split_brain_both_secondary(30, 12);
  input.self_role = Role::secondary;
  input.peer_role = Role::primary;
  input.after_sb_1pri = AfterSplitBrain1::discard_secondary;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::become_target);
}

TEST(SyncHandshake, QuorateSideWinsTheSplitBrain) {
  HandshakeInput input = split_brain_both_secondary(30, 12);
  input.quorum_enabled = true;
  input.self_has_quorum = false;
  input.peer_has_quorum = true;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::become_target);
}

TEST(SyncHandshake, DiscardMyDataOnOneSideResolvesAHistorySplitBrainWithFullSync) {
  HandshakeInput input;
  input.compare.self.current = gen_b;
  input.compare.peer.current = gen_c;
  input.compare.self.history[0] = gen_a;
  input.compare.peer.history[0] = gen_a;
  input.compare.self_flags = uuid_flag::discard_my_data;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.strategy, SyncStrategy::target_set_bitmap);
  EXPECT_EQ(decision.bitmap_edit, BitmapEdit::set_all);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_target);
}

TEST(SyncHandshake, UnstableAutoRecoverableSplitBrainIsNoSyncForNow) {
  HandshakeInput input = split_brain_both_secondary(1, 1);
  input.compare.peer_flags = 0;  // peer not stable
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::established);
  EXPECT_FALSE(decision.call_initial_split_brain);
}

TEST(SyncHandshake, HigherDiskStateWinsWhenUuidsAreEqual) {
  HandshakeInput input;
  input.compare = equal_generations();
  input.self_disk = DiskState::inconsistent;
  input.peer_disk = DiskState::up_to_date;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::become_target);
}

// Not only for the split brain case: an Inconsistent side keeps no data of its own, so it is
// the target of a full sync instead of a split brain dropping the connection.
TEST(SyncHandshake, AnInconsistentSideOfASplitBrainBecomesTheTargetOfAFullSync) {
  HandshakeInput input = split_brain_both_secondary(30, 12);
  input.quorum_enabled = true;
  input.self_has_quorum = input.peer_has_quorum = true;
  input.self_disk = DiskState::inconsistent;
  input.peer_disk = DiskState::up_to_date;
  const HandshakeDecision target = sync_handshake(input);
  EXPECT_EQ(target.outcome, HandshakeOutcome::become_target);
  EXPECT_EQ(target.strategy, SyncStrategy::target_set_bitmap);
  EXPECT_FALSE(target.call_initial_split_brain);
  std::swap(input.self_disk, input.peer_disk);
  const HandshakeDecision source = sync_handshake(input);
  EXPECT_EQ(source.outcome, HandshakeOutcome::become_source);
  EXPECT_EQ(source.strategy, SyncStrategy::source_set_bitmap);
}

// A non-fresh full sync as source records the peer's current UUID as the bitmap UUID toward it,
// so that an interrupted full sync continues as a partial one (DRBD). Not when the full sync
// crosses diverged branches (an Inconsistent side of a split brain): that UUID names a
// generation the source never had, and once the slot is rewritten it lands in the source's
// history, where it reads as an ancestor. Quorum swarm seed 948: the restarted former Primary
// (Outdated) became SyncSource of an Inconsistent node of the new Primary's newest branch, then
// SyncTarget of a node of that branch's parent generation; the finished resync pushed the newest
// branch's UUID into its history, and it met the new Primary with each side's current UUID in
// the other's history (history-both): a split brain with quorum on both sides.
TEST(SyncHandshake, AFullSyncAcrossDivergedBranchesRecordsNoBitmapUuidOfThePeersBranch) {
  HandshakeInput input = split_brain_both_secondary(30, 12);
  input.self_disk = DiskState::outdated;
  input.peer_disk = DiskState::inconsistent;
  const HandshakeDecision across = sync_handshake(input);
  EXPECT_EQ(across.outcome, HandshakeOutcome::become_source);
  EXPECT_EQ(across.strategy, SyncStrategy::source_set_bitmap);
  EXPECT_FALSE(across.record_peer_current_as_bitmap_uuid);

  HandshakeInput behind;  // rule history-self: the peer's current is our own past generation
  behind.compare.self.current = gen_b;
  behind.compare.self.history[0] = gen_a;
  behind.compare.peer.current = gen_a;
  behind.self_disk = DiskState::up_to_date;
  behind.peer_disk = DiskState::outdated;
  const HandshakeDecision partial_later = sync_handshake(behind);
  EXPECT_EQ(partial_later.strategy, SyncStrategy::source_set_bitmap);
  EXPECT_TRUE(partial_later.record_peer_current_as_bitmap_uuid);
}

// Two Inconsistent sides on diverged branches (each a SyncTarget of another peer) connect
// without a resync and defer it: once a resync ends the generations decide (quorum swarm seed
// 948 declared a split brain and went StandAlone with quorum on both sides; swarm seed 2892,
// where every UpToDate disk had failed, retried the connection every 100 ms for good).
TEST(SyncHandshake, ASplitBrainBetweenTwoInconsistentSidesConnectsAndDefersTheResync) {
  HandshakeInput input = split_brain_both_secondary(30, 12);
  input.self_disk = input.peer_disk = DiskState::inconsistent;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::established);
  EXPECT_EQ(decision.strategy, SyncStrategy::no_sync);
  EXPECT_TRUE(decision.defer_resync);
  EXPECT_FALSE(decision.reason.empty());
  EXPECT_FALSE(decision.call_initial_split_brain);
  EXPECT_FALSE(decision.call_split_brain);
}

TEST(SyncHandshake, PrimaryThatWouldBecomeTargetWithChangesDisconnectsOnRrConflict) {
  HandshakeInput input;
  input.compare.self.current = gen_a | uuid_primary_bit;
  input.compare.peer.current = gen_b;
  input.compare.peer.bitmap[0] = gen_a;
  input.self_role = Role::primary;
  input.peer_dirty_bits = 10;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::disconnect);
  input.rr_conflict = RrConflict::violently;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::become_target);
}

TEST(SyncHandshake, IfBothFailedWithAPrimaryPresentFollowsTheRoles) {
  HandshakeInput input;
  input.compare = equal_generations();
  input.compare.self_flags = uuid_flag::crashed_primary;  // rule 10: source if both failed
  input.self_role = Role::secondary;
  input.peer_role = Role::primary;
  EXPECT_EQ(sync_handshake(input).outcome, HandshakeOutcome::become_target);
}

TEST(SyncHandshake, MissedFinishWithoutAnUpToDateSourceOnlyClearsTheStaleUuid) {
  HandshakeInput input;
  input.compare = equal_generations();
  input.compare.rs_source_missed_end = true;
  input.self_disk = DiskState::outdated;
  input.peer_disk = DiskState::outdated;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::established);
  EXPECT_TRUE(decision.clear_stale_bitmap_uuid);
}

TEST(SyncHandshake, CopyBitmapRuleNamesTheSlotToCopy) {
  HandshakeInput input;
  input.compare.self.current = gen_b;
  input.compare.peer.current = gen_a;
  input.compare.self.bitmap[2] = gen_a;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.bitmap_edit, BitmapEdit::copy_slot);
  EXPECT_EQ(decision.copy_from_node, 2);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_source);
}

// DRBD zeroes the target's slot here; ditto keeps it, so the bitmap exchange resyncs the union:
// nodes of one generation may differ on blocks only the target marked (swarm seed 774).
TEST(SyncHandshake, ATargetThatSyncedUpWithAnotherNodeKeepsItsBitsTowardTheSource) {
  HandshakeInput input;
  input.compare.self.current = gen_a;
  input.compare.peer.current = gen_b;
  input.compare.peer.bitmap[2] = gen_a;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.compare.rule, UuidRule::bitmap_peer_other);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_target);
  EXPECT_EQ(decision.bitmap_edit, BitmapEdit::none);
}

// An Inconsistent Primary on a newer generation than an UpToDate peer would be the source of
// the resync the generations call for, with no data of its own to send: DRBD's
// drbd_sync_handshake refuses ("I shall become SyncSource, but I am inconsistent!") and drops
// the connection, on both sides. ditto made the Primary the full SyncTarget of the older peer
// instead, which then counted as its UpToDate peer and took writes on top of the older data
// (quorum swarm seed 1069: a bitmap-both split brain with the node holding the newer
// generation).
TEST(SyncHandshake, AnInconsistentPrimaryOnANewerGenerationDisconnectsFromAnOlderUpToDatePeer) {
  HandshakeInput input;
  input.compare.self.current = gen_a;
  input.compare.peer.current = gen_b | uuid_primary_bit;
  input.compare.peer.bitmap[0] = gen_a;
  input.self_disk = DiskState::up_to_date;
  input.peer_disk = DiskState::inconsistent;
  input.peer_role = Role::primary;
  HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::disconnect);
  EXPECT_EQ(decision.reason, "I shall become SyncSource, but I am inconsistent!");
  // The Primary's side of the same connection.
  HandshakeInput primary = other_side(input);
  decision = sync_handshake(primary);
  EXPECT_EQ(decision.compare.rule, UuidRule::bitmap_self);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::disconnect);
  // A full sync the generations call for (the peer's generation in our history) records the
  // peer's current UUID as our bitmap UUID toward it.
  input.compare.peer.bitmap[0] = 0;
  input.compare.peer.current = gen_c;
  input.compare.self.history[0] = gen_c;
  input.peer_role = Role::secondary;
  decision = sync_handshake(input);
  EXPECT_EQ(decision.strategy, SyncStrategy::source_set_bitmap);
  EXPECT_TRUE(decision.record_peer_current_as_bitmap_uuid);
}

// An Inconsistent Secondary on a newer generation than an UpToDate peer, and SyncTarget of no
// node (its source lost its disk), has nothing to send as the source the generations call for,
// and no disk with the newer generation is left to end its wait: it takes a full sync from the
// UpToDate peer (DRBD 8.4: "Becoming sync target due to disk states"), on both sides of the
// connection (quorum swarm seed 750: it waited for ever, "the source is itself inconsistent").
// One that is still a SyncTarget of another node stays the source, and waits for that resync.
TEST(SyncHandshake, AnIdleInconsistentSecondaryOnANewerGenerationTakesAFullSyncFromAnUpToDatePeer) {
  HandshakeInput input;  // we are the Inconsistent Secondary, node 0
  input.compare.self.current = gen_b;
  input.compare.self.bitmap[1] = gen_a;
  input.compare.peer.current = gen_a;
  input.self_disk = DiskState::inconsistent;
  input.peer_disk = DiskState::up_to_date;
  HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.compare.rule, UuidRule::bitmap_self);
  EXPECT_EQ(decision.strategy, SyncStrategy::target_set_bitmap);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_target);
  EXPECT_EQ(decision.bitmap_edit, BitmapEdit::set_all);
  // The UpToDate peer's side of the same connection.
  HandshakeInput peer = other_side(input);
  decision = sync_handshake(peer);
  EXPECT_EQ(decision.compare.rule, UuidRule::bitmap_peer);
  EXPECT_EQ(decision.strategy, SyncStrategy::source_set_bitmap);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_source);
  EXPECT_FALSE(decision.record_peer_current_as_bitmap_uuid);
  // Still the SyncTarget of another node: the generations decide (the resync waits).
  input.compare.self_flags = uuid_flag::sync_target;
  decision = sync_handshake(input);
  EXPECT_EQ(decision.strategy, SyncStrategy::source_use_bitmap);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_source);
  peer.compare.peer_flags = uuid_flag::sync_target;
  EXPECT_EQ(sync_handshake(peer).strategy, SyncStrategy::target_use_bitmap);
}

// Quorum swarm seeds 5835 and 3593: the Inconsistent node was the SyncTarget of a Primary that
// crashed while UpToDate on the newer generation; that disk comes back with the writes the
// generation holds. Taking a full sync from the older UpToDate peer instead threw them away, and
// the connection gave that peer the quorum to be promoted on its older data. The node says so
// (uuid_flag::newer_copy_away), and both sides refuse, as DRBD does ("I shall become SyncSource,
// but I am inconsistent!"), and retry: the connection comes back once the newer disk resynced it.
TEST(SyncHandshake, AnIdleInconsistentSecondaryWhoseUpToDateSourceMayReturnRefusesAnOlderPeer) {
  HandshakeInput input;  // we are the Inconsistent Secondary, node 0
  input.compare.self.current = gen_b;
  input.compare.self.bitmap[1] = gen_a;
  input.compare.peer.current = gen_a;
  input.compare.self_flags = uuid_flag::newer_copy_away;
  input.self_disk = DiskState::inconsistent;
  input.peer_disk = DiskState::up_to_date;
  HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.compare.rule, UuidRule::bitmap_self);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::retry_connect);
  EXPECT_EQ(decision.reason, "I shall become SyncSource, but I am inconsistent!");
  // The UpToDate peer's side of the same connection reaches the same answer.
  HandshakeInput peer = other_side(input);
  decision = sync_handshake(peer);
  EXPECT_EQ(decision.compare.rule, UuidRule::bitmap_peer);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::retry_connect);
  // An operator who knows the source is gone for good: connect --discard-my-data.
  input.compare.self_flags |= uuid_flag::discard_my_data;
  decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::become_target);
  EXPECT_EQ(decision.bitmap_edit, BitmapEdit::set_all);
}

TEST(SyncHandshake, TentativeOnlyReports) {
  HandshakeInput input;
  input.compare.self.current = gen_b;
  input.compare.peer.current = gen_a;
  input.compare.self.bitmap[1] = gen_a;
  input.tentative = true;
  const HandshakeDecision decision = sync_handshake(input);
  EXPECT_EQ(decision.outcome, HandshakeOutcome::dry_run);
  EXPECT_EQ(decision.strategy, SyncStrategy::source_use_bitmap);
}

}  // namespace
}  // namespace ditto
