#include "core/state.h"

#include <optional>

#include "core/assert.h"

namespace ditto::core {
namespace {

using Verdict = std::optional<std::string>;  // a sentence when the rule is broken
using Predicate = Verdict (*)(const ClusterState& old, const ClusterState& next, bool force);

struct Rule {
  StateRuleInfo info;
  Predicate broken;
};

std::string peer_text(std::size_t index) {
  return "peer node " + std::to_string(index);
}

bool connected(const PeerState& peer) {
  return peer.configured && peer.connection == ConnectionState::connected;
}

bool becomes_primary(const ClusterState& old, const ClusterState& next) {
  return old.role != Role::primary && next.role == Role::primary;
}

bool is_starting_sync(ReplicationState state) {
  return state == ReplicationState::starting_sync_source ||
         state == ReplicationState::starting_sync_target;
}

std::string disk_text(DiskState disk) {
  return std::string(to_string(disk));
}

// ---- Role rules -------------------------------------------------------------------------------

Verdict primary_while_peer_primary(const ClusterState& old, const ClusterState& next, bool) {
  if (next.allow_two_primaries || !becomes_primary(old, next)) return std::nullopt;
  for (std::size_t i = 0; i < nodes_max; ++i) {
    if (connected(next.peers[i]) && next.peers[i].role == Role::primary) {
      return peer_text(i) + " is Primary and allow-two-primaries is off";
    }
  }
  return std::nullopt;
}

// Also covers a third node's view: a peer promoting while another node it sees is Primary
// (DRBD carries primary_nodes in two-phase-commit replies for the same purpose).
Verdict peer_primary_while_other_primary(const ClusterState& old, const ClusterState& next, bool) {
  if (next.allow_two_primaries) return std::nullopt;
  std::uint32_t primaries = next.role == Role::primary ? 1 : 0;
  bool peer_promotes = false;
  for (std::size_t i = 0; i < nodes_max; ++i) {
    if (!connected(next.peers[i]) || next.peers[i].role != Role::primary) continue;
    primaries += 1;
    if (old.peers[i].role != Role::primary) peer_promotes = true;
  }
  if (!peer_promotes || primaries < 2) return std::nullopt;
  return std::string("a peer becomes Primary while ") +
         (next.role == Role::primary ? "this node" : "another peer") +
         " is Primary and allow-two-primaries is off";
}

Verdict peer_primary_while_open_read_only(const ClusterState& old, const ClusterState& next, bool) {
  if (!next.open_read_only) return std::nullopt;
  for (std::size_t i = 0; i < nodes_max; ++i) {
    if (connected(next.peers[i]) && next.peers[i].role == Role::primary &&
        old.peers[i].role != Role::primary) {
      return peer_text(i) + " cannot become Primary while the device is open read-only here";
    }
  }
  return std::nullopt;
}

Verdict primary_during_handshake(const ClusterState& old, const ClusterState& next, bool) {
  if (!becomes_primary(old, next) || !next.handshake_in_flight) return std::nullopt;
  return "a connection handshake is in progress";
}

Verdict primary_while_failing_io(const ClusterState& old, const ClusterState& next, bool) {
  if (!becomes_primary(old, next) || !next.fail_io) return std::nullopt;
  return "the device is failing all I/O after a forced demotion";
}

Verdict secondary_while_open(const ClusterState& old, const ClusterState& next, bool force) {
  if (force || old.role != Role::primary || next.role == Role::primary) return std::nullopt;
  if (!next.open_for_writing) return std::nullopt;
  return "the device is in use (client requests in progress)";
}

Verdict primary_without_data(const ClusterState& old, const ClusterState& next, bool) {
  if (next.role != Role::primary || has_accessible_up_to_date_data(next)) return std::nullopt;
  // Not worse: a Primary that already lost its data may still make other changes.
  if (old.role == Role::primary && !has_accessible_up_to_date_data(old)) return std::nullopt;
  return "local disk is " + disk_text(next.disk) +
         ", not UpToDate, and no UpToDate peer serves reads; use --force to promote anyway";
}

Verdict lose_data_while_open_read_only(const ClusterState& old, const ClusterState& next, bool) {
  if (!next.open_read_only || has_accessible_up_to_date_data(next)) return std::nullopt;
  if (!has_accessible_up_to_date_data(old)) return std::nullopt;
  return "the device is open read-only and this change loses the last UpToDate data";
}

Verdict primary_without_quorum(const ClusterState& old, const ClusterState& next, bool) {
  if (next.role != Role::primary || next.have_quorum) return std::nullopt;
  if (old.role == Role::primary && !old.have_quorum) return std::nullopt;
  return "no quorum";
}

Verdict primary_with_unfenced_peer(const ClusterState& old, const ClusterState& next, bool) {
  if (!next.fencing || !becomes_primary(old, next)) return std::nullopt;
  for (std::size_t i = 0; i < nodes_max; ++i) {
    const PeerState& peer = next.peers[i];
    if (peer.configured && peer.connection < ConnectionState::connected &&
        peer.disk > DiskState::outdated) {
      return peer_text(i) + " is not connected and not known to be Outdated (fencing is on)";
    }
  }
  return std::nullopt;
}

// ---- Disk rules -------------------------------------------------------------------------------

bool finishes_sync_target(const ClusterState& old, const ClusterState& next) {
  for (std::size_t i = 0; i < nodes_max; ++i) {
    const ReplicationState was = old.peers[i].replication;
    if ((was == ReplicationState::sync_target || was == ReplicationState::paused_sync_target) &&
        next.peers[i].replication == ReplicationState::established) {
      return true;
    }
  }
  return false;
}

Verdict outdated_from_below(const ClusterState& old, const ClusterState& next, bool) {
  if (next.disk != DiskState::outdated || old.disk >= DiskState::outdated) return std::nullopt;
  if (old.disk == DiskState::attaching || old.disk == DiskState::negotiating) return std::nullopt;
  if (finishes_sync_target(old, next)) return std::nullopt;
  return "disk cannot go from " + disk_text(old.disk) + " up to Outdated";
}

Verdict outdate_while_following_primary(const ClusterState& old, const ClusterState& next, bool) {
  if (old.disk <= DiskState::outdated || next.disk != DiskState::outdated) return std::nullopt;
  for (std::size_t i = 0; i < nodes_max; ++i) {
    if (connected(next.peers[i]) && next.peers[i].role == Role::primary) {
      return "connected to Primary " + peer_text(i) + ", which keeps this disk up to date";
    }
  }
  return std::nullopt;
}

Verdict negotiating_twice(const ClusterState& old, const ClusterState& next, bool) {
  auto count = [](const ClusterState& state) {
    std::uint32_t negotiating = state.disk == DiskState::negotiating ? 1 : 0;
    for (const PeerState& peer : state.peers) {
      if (peer.configured && peer.disk == DiskState::negotiating) negotiating += 1;
    }
    return negotiating;
  };
  if (count(next) <= 1 || count(old) > 1) return std::nullopt;
  return "more than one disk would be Negotiating at once";
}

Verdict attach_skipping_attaching(const ClusterState& old, const ClusterState& next, bool) {
  if (old.disk != DiskState::diskless || next.disk <= DiskState::attaching) return std::nullopt;
  return "a diskless device must attach (Attaching) before it becomes " + disk_text(next.disk);
}

Verdict peer_attaches_without_bitmap(const ClusterState& old, const ClusterState& next, bool) {
  for (std::size_t i = 0; i < nodes_max; ++i) {
    const PeerState& peer = next.peers[i];
    if (!peer.intentional_diskless || old.peers[i].disk != DiskState::diskless) continue;
    if (peer.disk > DiskState::diskless && peer.disk != DiskState::dunknown) {
      return peer_text(i) + " is configured diskless (no bitmap slot) but attaches a disk";
    }
  }
  return std::nullopt;
}

// ---- Replication rules ------------------------------------------------------------------------

// Checks the peers whose state (or the local disk) changes; an unchanged one is not re-judged.
template <typename Broken>
Verdict any_changed_peer(const ClusterState& old, const ClusterState& next, Broken broken) {
  for (std::size_t i = 0; i < nodes_max; ++i) {
    if (!next.peers[i].configured) continue;
    if (old.peers[i] == next.peers[i] && old.disk == next.disk) continue;
    if (Verdict verdict = broken(i, next.peers[i])) return verdict;
  }
  return std::nullopt;
}

Verdict replicating_without_local_disk(const ClusterState& old, const ClusterState& next, bool) {
  if (next.disk >= DiskState::inconsistent) return std::nullopt;
  return any_changed_peer(old, next, [&](std::size_t i, const PeerState& peer) -> Verdict {
    if (peer.replication <= ReplicationState::established) return std::nullopt;
    return std::string(to_string(peer.replication)) + " toward " + peer_text(i) +
           " needs a local disk, which is " + disk_text(next.disk);
  });
}

Verdict replicating_without_peer_disk(const ClusterState& old, const ClusterState& next, bool) {
  return any_changed_peer(old, next, [](std::size_t i, const PeerState& peer) -> Verdict {
    if (peer.replication <= ReplicationState::established || peer.disk >= DiskState::inconsistent) {
      return std::nullopt;
    }
    return std::string(to_string(peer.replication)) + " needs a disk on " + peer_text(i) +
           ", which is " + disk_text(peer.disk);
  });
}

Verdict verify_without_algorithm(const ClusterState& old, const ClusterState& next, bool) {
  if (next.verify_algorithm_configured) return std::nullopt;
  for (std::size_t i = 0; i < nodes_max; ++i) {
    if (is_verifying(next.peers[i].replication) && !is_verifying(old.peers[i].replication)) {
      return "online verify toward " + peer_text(i) + " needs verify-alg in the net section";
    }
  }
  return std::nullopt;
}

Verdict sync_while_syncing(const ClusterState& old, const ClusterState& next, bool) {
  for (std::size_t i = 0; i < nodes_max; ++i) {
    const ReplicationState was = old.peers[i].replication;
    const ReplicationState will = next.peers[i].replication;
    const bool starts = is_starting_sync(will) || is_verifying(will);
    if (starts && was != will && (is_syncing(was) || is_verifying(was))) {
      return "a resync or verify with " + peer_text(i) + " is already running (" +
             std::string(to_string(was)) + ")";
    }
  }
  return std::nullopt;
}

Verdict sync_without_connection(const ClusterState&, const ClusterState& next, bool) {
  for (std::size_t i = 0; i < nodes_max; ++i) {
    const PeerState& peer = next.peers[i];
    const bool needs = is_verifying(peer.replication) || is_starting_sync(peer.replication) ||
                       peer.replication == ReplicationState::sync_source ||
                       peer.replication == ReplicationState::sync_target;
    if (needs && peer.connection != ConnectionState::connected) {
      return std::string(to_string(peer.replication)) + " toward " + peer_text(i) +
             " needs a connection";
    }
  }
  return std::nullopt;
}

// ---- Connection rules (is_valid_conn_transition; DRBD's last match is our first) ---------------

template <typename Broken>
Verdict any_connection_change(const ClusterState& old, const ClusterState& next, Broken broken) {
  for (std::size_t i = 0; i < nodes_max; ++i) {
    const ConnectionState was = old.peers[i].connection;
    const ConnectionState will = next.peers[i].connection;
    if (!next.peers[i].configured || was == will) continue;
    if (broken(was, will)) {
      return peer_text(i) + ": connection cannot go from " + std::string(to_string(was)) + " to " +
             std::string(to_string(will));
    }
  }
  return std::nullopt;
}

Verdict standalone_to_disconnecting(const ClusterState& old, const ClusterState& next, bool) {
  return any_connection_change(old, next, [](ConnectionState was, ConnectionState will) {
    return was == ConnectionState::standalone && will == ConnectionState::disconnecting;
  });
}

Verdict connecting_without_net(const ClusterState& old, const ClusterState& next, bool) {
  return any_connection_change(old, next, [](ConnectionState was, ConnectionState will) {
    return will == ConnectionState::connecting && was < ConnectionState::unconnected;
  });
}

Verdict standalone_skipping_unconnected(const ClusterState& old, const ClusterState& next, bool) {
  return any_connection_change(old, next, [](ConnectionState was, ConnectionState will) {
    const bool network_error =
        will >= ConnectionState::timeout && will <= ConnectionState::tear_down;
    return (was == ConnectionState::standalone && will != ConnectionState::unconnected) ||
           (network_error && was <= ConnectionState::disconnecting);
  });
}

Verdict leaving_transient_connection(const ClusterState& old, const ClusterState& next, bool) {
  return any_connection_change(old, next, [](ConnectionState was, ConnectionState will) {
    const bool after_error = was >= ConnectionState::timeout && was <= ConnectionState::tear_down;
    if (after_error) {
      return will != ConnectionState::unconnected && will != ConnectionState::disconnecting;
    }
    return was == ConnectionState::disconnecting && will != ConnectionState::standalone;
  });
}

using Code = StateChangeCode;

// The table (§1.4). Order decides which code wins when several rules are broken.
constexpr Rule rules[] = {
    {{"connection: StandAlone to Disconnecting", Code::already_standalone, true},
     standalone_to_disconnecting},
    {{"connection: Connecting from below Unconnected", Code::no_net_config, true},
     connecting_without_net},
    {{"connection: StandAlone leads only to Unconnected", Code::need_connection, true},
     standalone_skipping_unconnected},
    {{"connection: after a network error only Unconnected or Disconnecting",
      Code::in_transient_state, true},
     leaving_transient_connection},
    {{"become Primary while a connected peer is Primary", Code::two_primaries, false},
     primary_while_peer_primary},
    {{"peer becomes Primary while another node is Primary", Code::two_primaries, false},
     peer_primary_while_other_primary},
    {{"peer becomes Primary while the device is open read-only", Code::primary_reader, false},
     peer_primary_while_open_read_only},
    {{"become Primary during a handshake", Code::in_transient_state, false},
     primary_during_handshake},
    {{"become Primary while failing I/O", Code::device_in_use, false}, primary_while_failing_io},
    {{"become Secondary while open for writing", Code::device_in_use, false}, secondary_while_open},
    {{"Primary without accessible UpToDate data", Code::no_up_to_date_disk, false},
     primary_without_data},
    {{"lose the last UpToDate data while open read-only", Code::no_up_to_date_disk, false},
     lose_data_while_open_read_only},
    {{"Primary without quorum", Code::no_quorum, false}, primary_without_quorum},
    {{"Primary with fencing and a peer neither connected nor Outdated", Code::primary_nop, false},
     primary_with_unfenced_peer},
    {{"disk Outdated from below Outdated", Code::lower_than_outdated, false}, outdated_from_below},
    {{"disk Outdated while connected to a Primary", Code::connected_outdates, false},
     outdate_while_following_primary},
    {{"more than one disk Negotiating", Code::in_transient_state, false}, negotiating_twice},
    {{"Diskless straight to above Attaching", Code::is_diskless, true}, attach_skipping_attaching},
    {{"intentionally diskless peer attaches", Code::attach_no_bitmap, true},
     peer_attaches_without_bitmap},
    {{"replication beyond Established without a local disk", Code::no_local_disk, true},
     replicating_without_local_disk},
    {{"replication beyond Established without a peer disk", Code::no_remote_disk, true},
     replicating_without_peer_disk},
    {{"verify without verify-alg", Code::no_verify_alg, false}, verify_without_algorithm},
    {{"start resync or verify while one runs", Code::resync_running, false}, sync_while_syncing},
    {{"resync or verify without a connection", Code::need_connection, true},
     sync_without_connection},
};

// ---- Sanitize steps (§1.5), in order ----------------------------------------------------------

void peer_role_unknown_without_connection(ClusterState& state) {
  for (PeerState& peer : state.peers) {
    if (peer.connection >= ConnectionState::connected) continue;
    peer.role = Role::unknown;
    peer.replication = ReplicationState::off;
  }
}

void peer_disk_unknown_without_replication(ClusterState& state) {
  for (PeerState& peer : state.peers) {
    if (peer.replication >= ReplicationState::established) continue;
    if (peer.disk != DiskState::inconsistent && peer.disk != DiskState::outdated) {
      peer.disk = DiskState::dunknown;
    }
  }
}

void resync_aborts_on_failed_disk(ClusterState& state) {
  for (PeerState& peer : state.peers) {
    const bool ahead_or_behind = peer.replication == ReplicationState::ahead ||
                                 peer.replication == ReplicationState::behind;
    if (!is_syncing(peer.replication) && !is_verifying(peer.replication) && !ahead_or_behind) {
      continue;
    }
    if (state.disk <= DiskState::failed || peer.disk <= DiskState::failed) {
      peer.replication = ReplicationState::established;
    }
  }
}

void pause_resync_while_suspended(ClusterState& state) {
  bool sync_target_somewhere = false;
  for (const PeerState& peer : state.peers) {
    if (peer.replication == ReplicationState::sync_target) sync_target_somewhere = true;
  }
  using R = ReplicationState;
  for (PeerState& peer : state.peers) {
    const bool source =
        peer.replication == R::sync_source || peer.replication == R::paused_sync_source;
    const bool target =
        peer.replication == R::sync_target || peer.replication == R::paused_sync_target;
    if (source) {
      const bool pause = peer.resync_suspended || sync_target_somewhere;
      peer.replication = pause ? R::paused_sync_source : R::sync_source;
    } else if (target) {
      peer.replication = peer.resync_suspended ? R::paused_sync_target : R::sync_target;
    }
  }
}

struct DiskBounds {
  DiskState local_min;
  DiskState local_max;
  DiskState peer_min;
  DiskState peer_max;
};

DiskBounds disk_bounds(ReplicationState replication) {
  using D = DiskState;
  using R = ReplicationState;
  switch (replication) {
    case R::off:
      return {D::diskless, D::up_to_date, D::inconsistent, D::dunknown};
    case R::established:
      return {D::diskless, D::up_to_date, D::diskless, D::up_to_date};
    case R::wait_bitmap_target:
    case R::starting_sync_target:
    case R::wait_sync_uuid:
    case R::behind:
      return {D::inconsistent, D::outdated, D::inconsistent, D::up_to_date};
    case R::sync_target:
    case R::paused_sync_target:
      return {D::inconsistent, D::inconsistent, D::inconsistent, D::up_to_date};
    case R::wait_bitmap_source:
    case R::starting_sync_source:
    case R::paused_sync_source:
    case R::ahead:
      return {D::inconsistent, D::up_to_date, D::inconsistent, D::consistent};
    case R::sync_source:
      return {D::inconsistent, D::up_to_date, D::inconsistent, D::inconsistent};
    case R::verify_source:
    case R::verify_target:
      return {D::inconsistent, D::up_to_date, D::inconsistent, D::up_to_date};
  }
  DITTO_ASSERT(false);  // every replication state is listed above
  return {};
}

DiskState clamp(DiskState disk, DiskState low, DiskState high) {
  DITTO_ASSERT(low <= high);
  if (disk < low) return low;
  if (disk > high) return high;
  return disk;
}

void disk_bounds_by_replication_state(ClusterState& state) {
  for (PeerState& peer : state.peers) {
    if (!peer.configured) continue;
    const DiskBounds bounds = disk_bounds(peer.replication);
    state.disk = clamp(state.disk, bounds.local_min, bounds.local_max);
    peer.disk = clamp(peer.disk, bounds.peer_min, bounds.peer_max);
  }
}

}  // namespace

const char* to_string(StateChangeCode code) {
  switch (code) {
    case Code::success:
      return "SS_SUCCESS";
    case Code::two_primaries:
      return "SS_TWO_PRIMARIES";
    case Code::no_up_to_date_disk:
      return "SS_NO_UP_TO_DATE_DISK";
    case Code::no_local_disk:
      return "SS_NO_LOCAL_DISK";
    case Code::no_remote_disk:
      return "SS_NO_REMOTE_DISK";
    case Code::connected_outdates:
      return "SS_CONNECTED_OUTDATES";
    case Code::primary_nop:
      return "SS_PRIMARY_NOP";
    case Code::resync_running:
      return "SS_RESYNC_RUNNING";
    case Code::already_standalone:
      return "SS_ALREADY_STANDALONE";
    case Code::is_diskless:
      return "SS_IS_DISKLESS";
    case Code::device_in_use:
      return "SS_DEVICE_IN_USE";
    case Code::no_net_config:
      return "SS_NO_NET_CONFIG";
    case Code::no_verify_alg:
      return "SS_NO_VERIFY_ALG";
    case Code::need_connection:
      return "SS_NEED_CONNECTION";
    case Code::lower_than_outdated:
      return "SS_LOWER_THAN_OUTDATED";
    case Code::in_transient_state:
      return "SS_IN_TRANSIENT_STATE";
    case Code::concurrent_state_change:
      return "SS_CONCURRENT_ST_CHG";
    case Code::primary_reader:
      return "SS_PRIMARY_READER";
    case Code::timeout:
      return "SS_TIMEOUT";
    case Code::no_quorum:
      return "SS_NO_QUORUM";
    case Code::attach_no_bitmap:
      return "SS_ATTACH_NO_BITMAP";
    case Code::disk_too_small:
      return "ERR_DISK_TOO_SMALL";
    case Code::resize_resync:
      return "ERR_RESIZE_RESYNC";
    case Code::implicit_shrink:
      return "ERR_IMPLICIT_SHRINK";
  }
  return "SS_UNKNOWN";
}

bool has_accessible_up_to_date_data(const ClusterState& state) {
  if (state.disk == DiskState::up_to_date) return true;
  if (!state.allow_remote_read) return false;
  for (const PeerState& peer : state.peers) {
    if (connected(peer) && peer.replication >= ReplicationState::established &&
        peer.disk == DiskState::up_to_date) {
      return true;
    }
  }
  return false;
}

StateChangeResult check_transition(const ClusterState& old, const ClusterState& proposed, bool hard,
                                   bool force) {
  for (const Rule& rule : rules) {
    if (hard && !rule.info.always) continue;
    if (Verdict verdict = rule.broken(old, proposed, force)) {
      DITTO_ASSERT(!verdict->empty());
      return {rule.info.code, std::move(*verdict)};
    }
  }
  return {};
}

void sanitize(ClusterState& state) {
  peer_role_unknown_without_connection(state);
  peer_disk_unknown_without_replication(state);
  resync_aborts_on_failed_disk(state);
  pause_resync_while_suspended(state);
  disk_bounds_by_replication_state(state);
}

std::span<const StateRuleInfo> state_rules() {
  static const auto infos = [] {
    std::array<StateRuleInfo, std::size(rules)> result{};
    for (std::size_t i = 0; i < result.size(); ++i) result[i] = rules[i].info;
    return result;
  }();
  return infos;
}

bool receives_resync(ReplicationState state) {
  return state == ReplicationState::sync_target ||
         state == ReplicationState::paused_sync_target ||
         state == ReplicationState::wait_bitmap_target;
}

}  // namespace ditto::core
