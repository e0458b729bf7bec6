// `drbdsetup status` text and `drbdsetup events2` lines for one resource (drbd9-semantics.md
// §13.2-§13.3), printed from a plain view of the resource so the layout can be checked against
// golden text without a running daemon. resource_view() (control_views.h) fills the view from a
// running resource.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/node_interface.h"
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

// drbdsetup's details of a running resync or verify (the kernel's statistics: sectors of 512
// bytes, milliseconds). "0" marks the start, "1" the progress mark 3 to 6 seconds ago.
struct SyncDetailsView {
  bool verify = false;
  std::uint64_t total_sectors = 0;   // rs-total
  std::uint64_t left_sectors = 0;    // still to move (ov-left for a verify)
  std::int64_t since_start_ms = 0;   // rs-dt-start-ms
  std::int64_t paused_ms = 0;        // rs-paused-ms
  std::int64_t dt0_ms = 0;           // since the start, pauses excluded
  std::int64_t db0_sectors = 0;      // moved since the start
  std::int64_t dt1_ms = 0;           // since the previous mark
  std::int64_t db1_sectors = 0;      // moved since the previous mark
  std::uint64_t same_checksum_sectors = 0;  // rs-same-csum
  // MiB/s since the previous mark (dbdt1), since the start from the marks (dbdt0) and from the
  // total (dbdt), and seconds to go at the recent rate (eta; NaN when nothing moved since the
  // mark), as drbdsetup computes them.
  double recent_mib_per_second() const;
  double start_mib_per_second() const;
  double average_mib_per_second() const;
  double eta_seconds() const;
};

struct PeerDeviceView {
  std::uint32_t volume = 0;
  ReplicationState replication = ReplicationState::off;
  DiskState peer_disk = DiskState::dunknown;
  bool peer_client = false;
  std::string resync_suspended = "no";  // no, or user,peer,dependency joined by commas
  std::optional<double> done_percent;   // while a resync runs
  std::optional<SyncDetailsView> sync_details;  // while a resync or verify runs
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

// The `exists ...` lines of `drbdsetup events2 --now [--statistics] [--verbose]` (resource,
// connections, devices, peer devices, paths), each ending in a newline, then "exists -\n".
// --verbose adds the resync details to --statistics.
std::string format_events2_exists(const ResourceView& resource, StatusFlags flags);

// The details of the running resync or verify with `peer` at `now` (none when none runs).
std::optional<SyncDetailsView> sync_details(const core::PeerStatus& peer, Instant now);

// drbdsetup's --timestamps prefix for a moment given as seconds and microseconds since the
// epoch and the local offset from UTC: "2024-05-06T07:08:09.012345+02:00".
std::string format_events2_timestamp(std::int64_t seconds, std::int64_t microseconds,
                                     long utc_offset_seconds);

}  // namespace ditto::datapath
