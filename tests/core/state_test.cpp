// The DRBD 9 state rules (drbd9-semantics.md §1.4 validity, §1.5 sanitize): one test per rule,
// named after it, each showing the transition it refuses (and, where it has one, the exception).
#include "core/state.h"

#include <gtest/gtest.h>

namespace ditto::core {
namespace {

using C = StateChangeCode;
using D = DiskState;
using R = ReplicationState;
using S = ConnectionState;

// This node and peer 1, connected, both Secondary and UpToDate.
ClusterState connected_pair() {
  ClusterState state;
  state.role = Role::secondary;
  state.disk = D::up_to_date;
  PeerState& peer = state.peers[1];
  peer.configured = true;
  peer.connection = S::connected;
  peer.role = Role::secondary;
  peer.replication = R::established;
  peer.disk = D::up_to_date;
  return state;
}

ClusterState with_connection(ClusterState state, S connection) {
  state.peers[1].connection = connection;
  if (connection != S::connected) {
    state.peers[1].role = Role::unknown;
    state.peers[1].replication = R::off;
    state.peers[1].disk = D::dunknown;
  }
  return state;
}

C code(const ClusterState& old, const ClusterState& next, bool hard = false, bool force = false) {
  const StateChangeResult result = check_transition(old, next, hard, force);
  EXPECT_EQ(result.ok(), result.message.empty());
  return result.code;
}

TEST(StateRules, EveryRuleInTheTableHasATestBelow) {
  // Adding a rule changes this count: add its test (named after the rule) with it.
  EXPECT_EQ(state_rules().size(), 24u);
  EXPECT_STREQ(to_string(C::two_primaries), "SS_TWO_PRIMARIES");
  EXPECT_STREQ(to_string(C::concurrent_state_change), "SS_CONCURRENT_ST_CHG");
}

TEST(StateRules, ConnectionStandAloneToDisconnectingIsAlreadyStandalone) {
  const ClusterState old = with_connection(connected_pair(), S::standalone);
  EXPECT_EQ(code(old, with_connection(old, S::disconnecting), true), C::already_standalone);
}

TEST(StateRules, ConnectionConnectingFromBelowUnconnectedHasNoNetConfig) {
  const ClusterState old = with_connection(connected_pair(), S::standalone);
  EXPECT_EQ(code(old, with_connection(old, S::connecting), true), C::no_net_config);
  const ClusterState disconnecting = with_connection(connected_pair(), S::disconnecting);
  EXPECT_EQ(code(disconnecting, with_connection(old, S::connecting), true), C::no_net_config);
}

TEST(StateRules, ConnectionStandAloneLeadsOnlyToUnconnected) {
  const ClusterState old = with_connection(connected_pair(), S::standalone);
  EXPECT_EQ(code(old, connected_pair(), true), C::need_connection);
  EXPECT_EQ(code(old, with_connection(old, S::unconnected), true), C::success);
  const ClusterState disconnecting = with_connection(connected_pair(), S::disconnecting);
  EXPECT_EQ(code(disconnecting, with_connection(old, S::network_failure), true),
            C::need_connection);
}

TEST(StateRules, ConnectionAfterANetworkErrorOnlyUnconnectedOrDisconnecting) {
  const ClusterState failed = with_connection(connected_pair(), S::network_failure);
  EXPECT_EQ(code(failed, with_connection(failed, S::connecting), true), C::in_transient_state);
  EXPECT_EQ(code(failed, with_connection(failed, S::unconnected), true), C::success);
  const ClusterState disconnecting = with_connection(connected_pair(), S::disconnecting);
  EXPECT_EQ(code(disconnecting, with_connection(failed, S::unconnected), true),
            C::in_transient_state);
  EXPECT_EQ(code(disconnecting, with_connection(failed, S::standalone), true), C::success);
}

TEST(StateRules, BecomePrimaryWhileAConnectedPeerIsPrimary) {
  ClusterState old = connected_pair();
  old.peers[1].role = Role::primary;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next), C::two_primaries);
  old.allow_two_primaries = next.allow_two_primaries = true;
  EXPECT_EQ(code(old, next), C::success);
}

TEST(StateRules, PeerBecomesPrimaryWhileAnotherNodeIsPrimary) {
  ClusterState old = connected_pair();
  old.role = Role::primary;
  ClusterState next = old;
  next.peers[1].role = Role::primary;
  EXPECT_EQ(code(old, next), C::two_primaries);
  // A third node's view: peer 1 is Primary, peer 2 asks to become Primary too.
  ClusterState third = connected_pair();
  third.peers[1].role = Role::primary;
  third.peers[2] = third.peers[1];
  third.peers[2].role = Role::secondary;
  ClusterState promoted = third;
  promoted.peers[2].role = Role::primary;
  EXPECT_EQ(code(third, promoted), C::two_primaries);
}

TEST(StateRules, PeerBecomesPrimaryWhileTheDeviceIsOpenReadOnly) {
  ClusterState old = connected_pair();
  old.open_read_only = true;
  ClusterState next = old;
  next.peers[1].role = Role::primary;
  EXPECT_EQ(code(old, next), C::primary_reader);
}

TEST(StateRules, BecomePrimaryDuringAHandshake) {
  ClusterState old = connected_pair();
  old.handshake_in_flight = true;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next), C::in_transient_state);
}

TEST(StateRules, BecomePrimaryWhileFailingIo) {
  ClusterState old = connected_pair();
  old.fail_io = true;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next), C::device_in_use);
}

TEST(StateRules, BecomeSecondaryWhileOpenForWriting) {
  ClusterState old = connected_pair();
  old.role = Role::primary;
  old.open_for_writing = true;
  ClusterState next = old;
  next.role = Role::secondary;
  EXPECT_EQ(code(old, next), C::device_in_use);
  EXPECT_EQ(code(old, next, false, true), C::success);  // secondary --force
}

TEST(StateRules, PrimaryWithoutAccessibleUpToDateData) {
  ClusterState old = connected_pair();
  old.disk = D::outdated;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next), C::no_up_to_date_disk);
  old.allow_remote_read = next.allow_remote_read = true;  // peer 1 is UpToDate and serves reads
  EXPECT_EQ(code(old, next), C::success);
  // Not worse: a Primary that already lost its data may make an unrelated change.
  ClusterState lost = connected_pair();
  lost.role = Role::primary;
  lost.disk = D::outdated;
  lost.peers[1].disk = D::outdated;
  ClusterState unrelated = lost;
  unrelated.peers[1].disk = D::inconsistent;
  EXPECT_EQ(code(lost, unrelated), C::success);
}

TEST(StateRules, LoseTheLastUpToDateDataWhileOpenReadOnly) {
  ClusterState old = connected_pair();
  old.open_read_only = true;
  ClusterState next = old;
  next.disk = D::outdated;
  EXPECT_EQ(code(old, next), C::no_up_to_date_disk);
}

TEST(StateRules, PrimaryWithoutQuorum) {
  ClusterState old = connected_pair();
  old.have_quorum = false;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next), C::no_quorum);
}

TEST(StateRules, PrimaryWithFencingAndAPeerNeitherConnectedNorOutdated) {
  ClusterState old = with_connection(connected_pair(), S::connecting);
  old.fencing = true;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next), C::primary_nop);
  old.peers[1].disk = next.peers[1].disk = D::outdated;  // known Outdated: fenced
  EXPECT_EQ(code(old, next), C::success);
}

TEST(StateRules, DiskOutdatedFromBelowOutdated) {
  ClusterState old = connected_pair();
  old.disk = D::inconsistent;
  ClusterState next = old;
  next.disk = D::outdated;
  EXPECT_EQ(code(old, next), C::lower_than_outdated);
  old.disk = D::negotiating;  // the handshake may decide Outdated
  EXPECT_EQ(code(old, next), C::success);
}

TEST(StateRules, DiskOutdatedWhileConnectedToAPrimary) {
  ClusterState old = connected_pair();
  old.peers[1].role = Role::primary;
  ClusterState next = old;
  next.disk = D::outdated;
  EXPECT_EQ(code(old, next), C::connected_outdates);
  EXPECT_EQ(code(old, next, true), C::success);  // forced by a handshake outcome: allowed
}

TEST(StateRules, MoreThanOneDiskNegotiating) {
  ClusterState old = connected_pair();
  old.disk = D::negotiating;
  ClusterState next = old;
  next.peers[1].disk = D::negotiating;
  EXPECT_EQ(code(old, next), C::in_transient_state);
}

TEST(StateRules, DisklessStraightToAboveAttaching) {
  ClusterState old = with_connection(connected_pair(), S::standalone);
  old.disk = D::diskless;
  ClusterState next = old;
  next.disk = D::up_to_date;
  EXPECT_EQ(code(old, next, true), C::is_diskless);
  next.disk = D::attaching;
  EXPECT_EQ(code(old, next, true), C::success);
}

TEST(StateRules, IntentionallyDisklessPeerAttaches) {
  ClusterState old = connected_pair();
  old.peers[1].intentional_diskless = true;
  old.peers[1].disk = D::diskless;
  ClusterState next = old;
  next.peers[1].disk = D::inconsistent;
  EXPECT_EQ(code(old, next, true), C::attach_no_bitmap);
}

TEST(StateRules, ReplicationBeyondEstablishedWithoutALocalDisk) {
  ClusterState old = connected_pair();
  old.disk = D::diskless;
  ClusterState next = old;
  next.peers[1].replication = R::sync_target;
  EXPECT_EQ(code(old, next, true), C::no_local_disk);
}

TEST(StateRules, ReplicationBeyondEstablishedWithoutAPeerDisk) {
  ClusterState old = connected_pair();
  old.peers[1].disk = D::diskless;
  ClusterState next = old;
  next.peers[1].replication = R::sync_source;
  EXPECT_EQ(code(old, next, true), C::no_remote_disk);
}

TEST(StateRules, VerifyWithoutVerifyAlg) {
  ClusterState old = connected_pair();
  ClusterState next = old;
  next.peers[1].replication = R::verify_source;
  EXPECT_EQ(code(old, next), C::no_verify_alg);
  old.verify_algorithm_configured = next.verify_algorithm_configured = true;
  EXPECT_EQ(code(old, next), C::success);
}

TEST(StateRules, StartResyncOrVerifyWhileOneRuns) {
  ClusterState old = connected_pair();
  old.peers[1].replication = R::sync_source;
  old.peers[1].disk = D::inconsistent;
  ClusterState next = old;
  next.peers[1].replication = R::starting_sync_source;
  EXPECT_EQ(code(old, next), C::resync_running);
}

TEST(StateRules, ResyncOrVerifyWithoutAConnection) {
  ClusterState old = connected_pair();
  ClusterState next = old;
  next.peers[1].connection = S::connecting;
  next.peers[1].replication = R::sync_source;
  next.peers[1].disk = D::inconsistent;
  EXPECT_EQ(code(old, next, true), C::need_connection);
}

TEST(StateRules, HardTransitionsSkipTheSoftOnlyRules) {
  ClusterState old = connected_pair();
  old.peers[1].role = Role::primary;
  ClusterState next = old;
  next.role = Role::primary;
  EXPECT_EQ(code(old, next, false), C::two_primaries);
  EXPECT_EQ(code(old, next, true), C::success);
}

// ---- Sanitize ---------------------------------------------------------------------------------

TEST(Sanitize, PeerRoleUnknownWithoutConnection) {
  ClusterState state = connected_pair();
  state.peers[1].role = Role::primary;
  state.peers[1].connection = S::network_failure;
  sanitize(state);
  EXPECT_EQ(state.peers[1].role, Role::unknown);
  EXPECT_EQ(state.peers[1].replication, R::off);
}

TEST(Sanitize, PeerDiskUnknownWithoutReplicationUnlessInconsistentOrOutdated) {
  ClusterState state = connected_pair();
  state.peers[1].replication = R::off;
  sanitize(state);
  EXPECT_EQ(state.peers[1].disk, D::dunknown);
  state.peers[1].disk = D::outdated;  // last known, kept
  sanitize(state);
  EXPECT_EQ(state.peers[1].disk, D::outdated);
}

TEST(Sanitize, ResyncAbortsWhenADiskFails) {
  ClusterState state = connected_pair();
  state.peers[1].replication = R::sync_source;
  state.peers[1].disk = D::failed;
  sanitize(state);
  EXPECT_EQ(state.peers[1].replication, R::established);
}

TEST(Sanitize, ResyncPausesWhileSuspendedAndWhileSyncTargetElsewhere) {
  ClusterState state = connected_pair();
  state.peers[1].replication = R::sync_source;
  state.peers[1].disk = D::inconsistent;
  state.peers[1].resync_suspended = true;
  sanitize(state);
  EXPECT_EQ(state.peers[1].replication, R::paused_sync_source);
  state.peers[1].resync_suspended = false;
  sanitize(state);
  EXPECT_EQ(state.peers[1].replication, R::sync_source);
  state.peers[2] = state.peers[1];
  state.peers[2].replication = R::sync_target;
  state.peers[2].disk = D::up_to_date;
  sanitize(state);
  EXPECT_EQ(state.peers[1].replication, R::paused_sync_source);
}

TEST(Sanitize, DiskStatesAreBoundedByTheReplicationState) {
  ClusterState target = connected_pair();
  target.peers[1].replication = R::sync_target;
  sanitize(target);
  EXPECT_EQ(target.disk, D::inconsistent);  // a SyncTarget is always Inconsistent
  ClusterState source = connected_pair();
  source.peers[1].replication = R::sync_source;
  sanitize(source);
  EXPECT_EQ(source.peers[1].disk, D::inconsistent);
  ClusterState ahead = connected_pair();
  ahead.peers[1].replication = R::ahead;
  sanitize(ahead);
  EXPECT_EQ(ahead.peers[1].disk, D::consistent);
  ClusterState bitmap = connected_pair();
  bitmap.peers[1].replication = R::wait_bitmap_target;
  sanitize(bitmap);
  EXPECT_EQ(bitmap.disk, D::outdated);
}

TEST(Sanitize, ReplicationStateNamesAreDrbdsDisplayStrings) {
  EXPECT_EQ(to_string(R::starting_sync_source), "StartingSyncS");
  EXPECT_EQ(to_string(R::wait_bitmap_target), "WFBitMapT");
  EXPECT_EQ(to_string(R::paused_sync_target), "PausedSyncT");
  EXPECT_EQ(to_string(R::verify_source), "VerifyS");
  EXPECT_EQ(to_string(R::behind), "Behind");
  EXPECT_TRUE(is_syncing(R::paused_sync_source));
  EXPECT_TRUE(is_syncing(R::verify_source));  // the spec's range SyncSource..PausedSyncT
  EXPECT_FALSE(is_syncing(R::ahead));
}

}  // namespace
}  // namespace ditto::core
