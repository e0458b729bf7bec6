// Strong types shared by every layer: identifiers, positions and time.
// No raw uint64_t crosses a core API (house style rule 4).
#pragma once

#include <compare>
#include <cstdint>
#include <string_view>

namespace ditto {

template <typename Tag, typename Rep>
struct Strong {
  Rep value{};

  constexpr Strong() = default;
  constexpr explicit Strong(Rep v) : value(v) {}
  friend constexpr auto operator<=>(const Strong&, const Strong&) = default;
};

struct NodeIdTag {};
struct IoIdTag {};
struct RequestIdTag {};
struct PayloadHandleTag {};
struct TimerIdTag {};
struct HelperCallIdTag {};

// DRBD node ids are 0..31.
using NodeId = Strong<NodeIdTag, std::uint8_t>;
inline constexpr std::uint8_t node_id_max = 31;
inline constexpr std::uint32_t nodes_max = 32;

// Identifies one disk operation issued by a core; echoed back in on_disk_completed.
using IoId = Strong<IoIdTag, std::uint64_t>;
// Identifies one client request (NBD command, simulated client op); chosen by the driver.
using RequestId = Strong<RequestIdTag, std::uint64_t>;
// Opaque reference to payload bytes owned by the driver (a buffer in the daemon, a write tag in
// the simulator). Core never looks inside.
using PayloadHandle = Strong<PayloadHandleTag, std::uint64_t>;
using TimerId = Strong<TimerIdTag, std::uint64_t>;
// Identifies one handler run (CallHelper); echoed back in Node::on_helper_done.
using HelperCallId = Strong<HelperCallIdTag, std::uint64_t>;

// 512-byte sectors, as in DRBD.
inline constexpr std::uint32_t sector_size_bytes = 512;
struct Sector {
  std::uint64_t value{};
  constexpr Sector() = default;
  constexpr explicit Sector(std::uint64_t v) : value(v) {}
  friend constexpr auto operator<=>(const Sector&, const Sector&) = default;
  constexpr std::uint64_t bytes() const { return value * sector_size_bytes; }
};

// Time is an argument to core, never read by it. Nanoseconds since an arbitrary epoch chosen by
// the driver (virtual time in the simulator, CLOCK_MONOTONIC in the daemon).
struct Duration {
  std::int64_t ns{};
  constexpr Duration() = default;
  constexpr explicit Duration(std::int64_t n) : ns(n) {}
  friend constexpr auto operator<=>(const Duration&, const Duration&) = default;
  static constexpr Duration from_us(std::int64_t us) { return Duration{us * 1000}; }
  static constexpr Duration from_ms(std::int64_t ms) { return Duration{ms * 1000 * 1000}; }
};

struct Instant {
  std::int64_t ns{};
  constexpr Instant() = default;
  constexpr explicit Instant(std::int64_t n) : ns(n) {}
  friend constexpr auto operator<=>(const Instant&, const Instant&) = default;
  friend constexpr Instant operator+(Instant at, Duration d) { return Instant{at.ns + d.ns}; }
  friend constexpr Duration operator-(Instant a, Instant b) { return Duration{a.ns - b.ns}; }
};

// DRBD enumerations; numeric values are DRBD's (drbd9-semantics.md §1.2).
enum class Role : std::uint8_t { unknown = 0, primary = 1, secondary = 2 };

enum class ConnectionState : std::uint8_t {
  standalone = 0,
  disconnecting = 1,
  unconnected = 2,
  timeout = 3,
  broken_pipe = 4,
  network_failure = 5,
  protocol_error = 6,
  tear_down = 7,
  connecting = 8,
  connected = 9,
};

enum class DiskState : std::uint8_t {
  diskless = 0,
  attaching = 1,
  detaching = 2,
  failed = 3,
  negotiating = 4,
  inconsistent = 5,
  outdated = 6,
  dunknown = 7,
  consistent = 8,
  up_to_date = 9,
};

// Per peer device. `off` (9) shares its value with ConnectionState::connected, as in DRBD.
enum class ReplicationState : std::uint8_t {
  off = 9,
  established = 10,
  starting_sync_source = 11,
  starting_sync_target = 12,
  wait_bitmap_source = 13,
  wait_bitmap_target = 14,
  wait_sync_uuid = 15,  // DRBD 8.4 compatibility only
  sync_source = 16,
  sync_target = 17,
  verify_source = 18,
  verify_target = 19,
  paused_sync_source = 20,
  paused_sync_target = 21,
  ahead = 22,
  behind = 23,
};

// "Is syncing" in DRBD: SyncSource .. PausedSyncT (drbd9-semantics.md §1.2).
constexpr bool is_syncing(ReplicationState state) {
  return state >= ReplicationState::sync_source && state <= ReplicationState::paused_sync_target;
}

// Online verify, from either side (VerifyS, VerifyT): "syncing" too, but nothing is resynced.
constexpr bool is_verifying(ReplicationState state) {
  return state == ReplicationState::verify_source || state == ReplicationState::verify_target;
}

// The two sides of a resync, running or paused (SyncTarget/PausedSyncT, SyncSource/PausedSyncS).
constexpr bool is_resync_target(ReplicationState state) {
  return state == ReplicationState::sync_target || state == ReplicationState::paused_sync_target;
}
constexpr bool is_resync_source(ReplicationState state) {
  return state == ReplicationState::sync_source || state == ReplicationState::paused_sync_source;
}

enum class Protocol : std::uint8_t { a = 1, b = 2, c = 3 };

// Display names exactly as drbdsetup prints them.
constexpr std::string_view to_string(Role role) {
  switch (role) {
    case Role::unknown: return "Unknown";
    case Role::primary: return "Primary";
    case Role::secondary: return "Secondary";
  }
  return "Unknown";
}

constexpr std::string_view to_string(ConnectionState state) {
  switch (state) {
    case ConnectionState::standalone: return "StandAlone";
    case ConnectionState::disconnecting: return "Disconnecting";
    case ConnectionState::unconnected: return "Unconnected";
    case ConnectionState::timeout: return "Timeout";
    case ConnectionState::broken_pipe: return "BrokenPipe";
    case ConnectionState::network_failure: return "NetworkFailure";
    case ConnectionState::protocol_error: return "ProtocolError";
    case ConnectionState::tear_down: return "TearDown";
    case ConnectionState::connecting: return "Connecting";
    case ConnectionState::connected: return "Connected";
  }
  return "Unknown";
}

constexpr std::string_view to_string(DiskState state) {
  switch (state) {
    case DiskState::diskless: return "Diskless";
    case DiskState::attaching: return "Attaching";
    case DiskState::detaching: return "Detaching";
    case DiskState::failed: return "Failed";
    case DiskState::negotiating: return "Negotiating";
    case DiskState::inconsistent: return "Inconsistent";
    case DiskState::outdated: return "Outdated";
    case DiskState::dunknown: return "DUnknown";
    case DiskState::consistent: return "Consistent";
    case DiskState::up_to_date: return "UpToDate";
  }
  return "Unknown";
}

constexpr std::string_view to_string(ReplicationState state) {
  switch (state) {
    case ReplicationState::off: return "Off";
    case ReplicationState::established: return "Established";
    case ReplicationState::starting_sync_source: return "StartingSyncS";
    case ReplicationState::starting_sync_target: return "StartingSyncT";
    case ReplicationState::wait_bitmap_source: return "WFBitMapS";
    case ReplicationState::wait_bitmap_target: return "WFBitMapT";
    case ReplicationState::wait_sync_uuid: return "WFSyncUUID";
    case ReplicationState::sync_source: return "SyncSource";
    case ReplicationState::sync_target: return "SyncTarget";
    case ReplicationState::verify_source: return "VerifyS";
    case ReplicationState::verify_target: return "VerifyT";
    case ReplicationState::paused_sync_source: return "PausedSyncS";
    case ReplicationState::paused_sync_target: return "PausedSyncT";
    case ReplicationState::ahead: return "Ahead";
    case ReplicationState::behind: return "Behind";
  }
  return "Unknown";
}

constexpr std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::a: return "A";
    case Protocol::b: return "B";
    case Protocol::c: return "C";
  }
  return "?";
}

}  // namespace ditto
