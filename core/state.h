// The DRBD 9 state model in one place (drbd9-semantics.md §1): what a node knows about itself and
// its peers, which transitions are valid (§1.4) and which implications every change carries
// (§1.5).
//
// A state change runs as in DRBD (§1.3): the caller copies the current ClusterState, edits the
// copy, runs sanitize() on it, then check_transition(old, proposed, hard); only an OK result may
// be committed. Hard transitions (forced by the environment: a lost connection, a handshake
// outcome) are checked only by the rules marked "always"; soft ones (admin and peer requests)
// by every rule. A soft transition only has to be "not worse" than the old state, so a rule
// that the old state already broke does not block it.
//
// The rule table and the sanitize steps are each listed once, in state.cpp, in the order they
// are evaluated; the first rule that a transition breaks decides the result code.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/types.h"

namespace ditto::core {

// DRBD's SS_* results (drbd.h); the numeric values are DRBD's.
enum class StateChangeCode : std::int8_t {
  success = 1,
  two_primaries = -1,
  no_up_to_date_disk = -2,
  no_local_disk = -4,
  no_remote_disk = -5,
  connected_outdates = -6,
  primary_nop = -7,
  resync_running = -8,
  already_standalone = -9,
  is_diskless = -11,
  device_in_use = -12,
  no_net_config = -13,
  no_verify_alg = -14,
  need_connection = -15,
  lower_than_outdated = -16,
  in_transient_state = -18,
  concurrent_state_change = -19,
  primary_reader = -22,
  timeout = -23,
  no_quorum = -25,
  attach_no_bitmap = -26,
  // Resize refusals: DRBD reports them as drbd_ret_code values (ERR_*), not SS_* ones; they are
  // carried in the same field here (TwoPcReply::code), below the SS_* range.
  disk_too_small = -100,   // ERR_DISK_TOO_SMALL: a disk has not grown (enough)
  resize_resync = -101,    // ERR_RESIZE_RESYNC: a resync or verify runs
  implicit_shrink = -102,  // ERR_IMPLICIT_SHRINK: the requested size is below the current one
};

// "SS_SUCCESS", "SS_TWO_PRIMARIES", ...
const char* to_string(StateChangeCode code);

struct StateChangeResult {
  StateChangeCode code = StateChangeCode::success;
  std::string message;  // one sentence naming what was refused; empty on success
  bool ok() const { return code == StateChangeCode::success; }
};

// One connection and its (single) peer device, as seen from this node.
struct PeerState {
  bool configured = false;
  ConnectionState connection = ConnectionState::standalone;
  Role role = Role::unknown;  // the peer's role
  ReplicationState replication = ReplicationState::off;
  DiskState disk = DiskState::dunknown;  // the peer's disk
  bool resync_suspended = false;         // any of user, peer, dependency (resync-after)
  bool intentional_diskless = false;     // the peer is configured `disk none` (bitmap=no)
  friend bool operator==(const PeerState&, const PeerState&) = default;
};

// Everything the validity and sanitize rules look at, for one resource with one volume.
struct ClusterState {
  Role role = Role::secondary;
  DiskState disk = DiskState::diskless;
  bool open_for_writing = false;  // client requests in progress / device opened read-write
  bool open_read_only = false;
  bool fail_io = false;  // forced demotion while open: all I/O errors
  bool have_quorum = true;
  bool handshake_in_flight = false;  // some connection has not finished its state handshake
  // Configuration the rules consult.
  bool allow_two_primaries = false;
  bool allow_remote_read = false;
  bool fencing = false;  // fencing resource-only or resource-and-stonith
  bool verify_algorithm_configured = false;
  std::array<PeerState, nodes_max> peers{};
  friend bool operator==(const ClusterState&, const ClusterState&) = default;
};

// Validates old → proposed (§1.4). `force` is `primary --force` / `secondary --force`.
[[nodiscard]] StateChangeResult check_transition(const ClusterState& old,
                                                 const ClusterState& proposed, bool hard,
                                                 bool force = false);

// Applies the implications of §1.5 to `state` in place.
void sanitize(ClusterState& state);

// The rule table, for tests and documentation: name, result and whether hard transitions are
// checked by it too.
struct StateRuleInfo {
  std::string_view name;
  StateChangeCode code;
  bool always;  // false: soft transitions only
};
std::span<const StateRuleInfo> state_rules();

// Local data a Primary may serve I/O from: a local UpToDate disk, or with allow-remote-read an
// UpToDate peer we replicate with (§1.7 invariant 1).
bool has_accessible_up_to_date_data(const ClusterState& state);

// This side of a peer device receives a resync: SyncTarget, PausedSyncT or WFBitMapT.
bool receives_resync(ReplicationState state);

}  // namespace ditto::core
