// `drbdsetup status` text and `drbdsetup events2` lines for one resource (drbd9-semantics.md
// §13.2-§13.3), printed from a plain view of the resource so the layout can be checked against
// golden text without a running daemon. resource_view() (control_views.h) fills the view from a
// running resource.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"

namespace ditto::datapath {

// One path of a connection as events2/status show it.
struct PathView {
  std::string local;   // "ipv4:10.0.0.1:7789"
  std::string remote;  // "ipv4:10.0.0.2:7789"
  bool established = false;
};

struct DeviceView {
  std::uint32_t volume = 0;
  std::uint32_t minor = 0;
  DiskState disk = DiskState::diskless;
  bool client = false;                  // intentionally diskless
  std::string backing_device = "none";  // the disk path
  bool quorum = true;
  bool open = false;
  // Statistics (KiB as drbdsetup prints them, counts).
  std::uint64_t size_kib = 0;
  std::uint64_t read_kib = 0;
  std::uint64_t written_kib = 0;
  std::uint64_t al_writes = 0;
  std::uint64_t bm_writes = 0;
  std::uint32_t upper_pending = 0;
  std::uint32_t lower_pending = 0;
  bool al_suspended = false;
  bool upper_blocked = false;
  bool lower_blocked = false;
};

struct PeerDeviceView {
  std::uint32_t volume = 0;
  ReplicationState replication = ReplicationState::off;
  DiskState peer_disk = DiskState::dunknown;
  bool peer_client = false;
  std::string resync_suspended = "no";  // no, or user,peer,dependency joined by commas
  std::optional<double> done_percent;   // while a resync runs
  std::uint64_t received_kib = 0;
  std::uint64_t sent_kib = 0;
  std::uint64_t out_of_sync_kib = 0;
  std::uint32_t pending = 0;
  std::uint32_t unacked = 0;
};

struct ConnectionView {
  NodeId peer_node_id;
  std::string name;
  ConnectionState connection = ConnectionState::connecting;
  Role role = Role::unknown;
  bool tls = false;
  bool congested = false;
  std::uint64_t ap_in_flight = 0;
  std::uint64_t rs_in_flight = 0;
  std::vector<PathView> paths;
  std::vector<PeerDeviceView> peer_devices;
};

struct ResourceView {
  std::string name;
  NodeId node_id;
  Role role = Role::secondary;
  std::string suspended = "no";  // no, or user,no-data,fencing,quorum joined by commas
  bool force_io_failures = false;
  std::string write_ordering = "flush";
  bool may_promote = false;
  std::uint32_t promotion_score = 0;
  std::vector<DeviceView> devices;
  std::vector<ConnectionView> connections;
};

struct StatusFlags {
  bool verbose = false;
  bool statistics = false;
};

// `drbdsetup status RES [--verbose] [--statistics]` as printed when stdout is not a terminal
// (80 columns; a token that would pass column 80 starts a new line at its object's indent).
std::string format_status_text(const ResourceView& resource, StatusFlags flags);

// The `exists ...` lines of `drbdsetup events2 --now [--statistics]` (resource, connections,
// devices, peer devices, paths), each ending in a newline, then "exists -\n".
std::string format_events2_exists(const ResourceView& resource, bool statistics);

// drbdsetup's --timestamps prefix for a moment given as seconds and microseconds since the
// epoch and the local offset from UTC: "2024-05-06T07:08:09.012345+02:00".
std::string format_events2_timestamp(std::int64_t seconds, std::int64_t microseconds,
                                     long utc_offset_seconds);

}  // namespace ditto::datapath
