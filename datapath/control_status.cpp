#include "datapath/control_status.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>

#include "core/assert.h"
#include "core/bitmap.h"

namespace ditto::datapath {
namespace {

constexpr int columns = 80;  // drbdsetup's width when stdout is not a terminal

std::string yes_no(bool value) {
  return value ? "yes" : "no";
}

// drbdsetup's rates: sectors per millisecond as MiB/s, a zero time counting as 1 ms.
double mib_per_second(std::int64_t sectors, std::int64_t milliseconds) {
  return static_cast<double>(sectors) / static_cast<double>(milliseconds == 0 ? 1 : milliseconds) *
         1000.0 / 2048.0;
}

std::string percent_text(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", value);
  return text;
}

// drbd-utils' wrap_printf: `text` goes on the current line unless it would pass the last
// column; then a new line starts, indented by `indent`, with the text's leading spaces dropped.
// A text ending in a newline ends the line. A text that is only a newline ends the current
// line without indenting an empty one (drbdsetup prints "\n" to start its statistics line).
class WrapPrinter {
 public:
  void print(int indent, std::string_view text) {
    DITTO_ASSERT(!text.empty());
    if (text == "\n") {
      out_ += '\n';
      column_ = 0;
      return;
    }
    if (column_ > 0 && column_ + static_cast<int>(text.size()) > columns) {
      out_ += '\n';
      column_ = 0;
    }
    if (column_ == 0) {
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
      out_.append(static_cast<std::size_t>(indent), ' ');
      column_ = indent;
    }
    out_ += text;
    column_ += static_cast<int>(text.size());
    if (text.back() == '\n') column_ = 0;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  int column_ = 0;
};

std::string decimal_text(const char* format, double value) {
  char text[48];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

// What `status --verbose --statistics` and `events2 --statistics` print of a running resync or
// verify (drbd-utils' print_peer_device_statistics at verbosity 1): the recent rate and the ETA.
std::vector<std::string> sync_rate_tokens(const SyncDetailsView& details) {
  return {" dbdt1:" + decimal_text("%.2f", details.recent_mib_per_second()),
          " eta:" + decimal_text("%.0f", details.eta_seconds())};
}

// At verbosity 2 (`events2 --statistics --verbose`), everything before them.
std::string sync_details_text(const SyncDetailsView& details) {
  std::string text = " rs-total:" + std::to_string(details.total_sectors) +
                     " rs-dt-start-ms:" + std::to_string(details.since_start_ms) +
                     " rs-paused-ms:" + std::to_string(details.paused_ms) +
                     " rs-dt0-ms:" + std::to_string(details.dt0_ms) +
                     " rs-db0-sectors:" + std::to_string(details.db0_sectors) +
                     " rs-dt1-ms:" + std::to_string(details.dt1_ms) +
                     " rs-db1-sectors:" + std::to_string(details.db1_sectors);
  if (details.verify) {
    text += " ov-left:" + std::to_string(details.left_sectors);
  } else {
    text += " rs-failed:0 rs-same-csum:" + std::to_string(details.same_checksum_sectors);
  }
  return text + " dbdt:" + decimal_text("%.2f", details.average_mib_per_second()) +
         " dbdt0:" + decimal_text("%.2f", details.start_mib_per_second());
}

std::string blocked_text(const DeviceView& device) {
  if (device.upper_blocked && device.lower_blocked) return "upper,lower";
  if (device.upper_blocked) return "upper";
  if (device.lower_blocked) return "lower";
  return "no";
}

void print_resource(WrapPrinter& out, const ResourceView& resource, StatusFlags flags) {
  out.print(0, resource.name);
  if (flags.verbose) out.print(4, " node-id:" + std::to_string(resource.node_id.value));
  out.print(4, " role:" + std::string(to_string(resource.role)));
  if (flags.verbose || resource.suspended != "no") {
    out.print(4, " suspended:" + resource.suspended);
  }
  if (flags.verbose || resource.force_io_failures) {
    out.print(4, " force-io-failures:" + yes_no(resource.force_io_failures));
  }
  if (flags.statistics && flags.verbose) {
    out.print(4, "\n");
    out.print(4, " write-ordering:" + resource.write_ordering);
  }
  out.print(0, "\n");
}

void print_device(WrapPrinter& out, const DeviceView& device, bool single_device,
                  StatusFlags flags) {
  int indent = 2;
  if (flags.verbose || !(single_device && device.volume == 0)) {
    out.print(indent, "volume:" + std::to_string(device.volume));
    indent = 6;
    if (flags.verbose) out.print(indent, " minor:" + std::to_string(device.minor));
  }
  out.print(indent, " disk:" + std::string(to_string(device.disk)));
  // drbdsetup shows client: for a Diskless device whenever stdout is not a terminal.
  if (device.disk == DiskState::diskless) out.print(indent, " client:" + yes_no(device.client));
  if (flags.verbose) out.print(indent, " backing_dev:" + device.backing_device);
  if (flags.verbose || !device.quorum) out.print(indent, " quorum:" + yes_no(device.quorum));
  out.print(indent, " open:" + yes_no(device.open));
  indent = 6;
  if (flags.statistics) {
    out.print(indent, "\n");
    if (flags.verbose) out.print(indent, " size:" + std::to_string(device.size_kib));
    out.print(indent, " read:" + std::to_string(device.read_kib));
    out.print(indent, " written:" + std::to_string(device.written_kib));
    if (flags.verbose) {
      out.print(indent, " al-writes:" + std::to_string(device.al_writes));
      out.print(indent, " bm-writes:" + std::to_string(device.bm_writes));
      out.print(indent, " upper-pending:" + std::to_string(device.upper_pending));
      out.print(indent, " lower-pending:" + std::to_string(device.lower_pending));
      out.print(indent, " al-suspended:" + yes_no(device.al_suspended));
    }
  }
  if (flags.verbose || device.upper_blocked || device.lower_blocked) {
    out.print(indent, " blocked:" + blocked_text(device));
  }
  out.print(indent, "\n");
}

void print_peer_device(WrapPrinter& out, const PeerDeviceView& peer_device, bool single_device,
                       StatusFlags flags) {
  int indent = 4;
  if (flags.verbose || !(single_device && peer_device.volume == 0)) {
    out.print(indent, "volume:" + std::to_string(peer_device.volume));
    indent = 8;
  }
  if (flags.verbose || peer_device.replication > ReplicationState::established) {
    out.print(indent, " replication:" + std::string(to_string(peer_device.replication)));
    indent = 8;
  }
  if (flags.verbose || flags.statistics || peer_device.replication != ReplicationState::off ||
      peer_device.peer_disk != DiskState::dunknown) {
    out.print(indent, " peer-disk:" + std::string(to_string(peer_device.peer_disk)));
    if (peer_device.peer_disk == DiskState::diskless) {
      out.print(indent, " peer-client:" + yes_no(peer_device.peer_client));
    }
    indent = 8;
    if (peer_device.done_percent)
      out.print(indent, " done:" + percent_text(*peer_device.done_percent));
    if (flags.verbose || peer_device.resync_suspended != "no") {
      out.print(indent, " resync-suspended:" + peer_device.resync_suspended);
    }
    if (flags.statistics) {
      out.print(indent, "\n");
      out.print(indent, " received:" + std::to_string(peer_device.received_kib));
      out.print(indent, " sent:" + std::to_string(peer_device.sent_kib));
      if (flags.verbose || peer_device.out_of_sync_kib != 0) {
        out.print(indent, " out-of-sync:" + std::to_string(peer_device.out_of_sync_kib));
      }
      if (flags.verbose) {
        out.print(indent, " pending:" + std::to_string(peer_device.pending));
        out.print(indent, " unacked:" + std::to_string(peer_device.unacked));
        if (peer_device.sync_details) {
          for (const std::string& token : sync_rate_tokens(*peer_device.sync_details)) {
            out.print(indent, token);
          }
        }
      }
    }
  }
  out.print(0, "\n");
}

void print_connection(WrapPrinter& out, const ConnectionView& connection, bool single_device,
                      StatusFlags flags) {
  const bool connected = connection.connection == ConnectionState::connected;
  out.print(2, connection.name);
  if (flags.verbose) out.print(6, " node-id:" + std::to_string(connection.peer_node_id.value));
  if (flags.verbose || !connected) {
    out.print(6, " connection:" + std::string(to_string(connection.connection)));
  }
  if (flags.verbose || connected) out.print(6, " role:" + std::string(to_string(connection.role)));
  if (flags.verbose) out.print(6, " tls:" + yes_no(connection.tls));
  if (flags.verbose || connection.congested) {
    out.print(6, " congested:" + yes_no(connection.congested));
    out.print(6, " ap-in-flight:" + std::to_string(connection.ap_in_flight));
    out.print(6, " rs-in-flight:" + std::to_string(connection.rs_in_flight));
  }
  out.print(0, "\n");
  if (!flags.verbose && !flags.statistics && !connected) return;
  for (const PeerDeviceView& peer_device : connection.peer_devices) {
    print_peer_device(out, peer_device, single_device, flags);
  }
}

std::string peer_prefix(const ResourceView& resource, const ConnectionView& connection) {
  return "name:" + resource.name +
         " peer-node-id:" + std::to_string(connection.peer_node_id.value) +
         " conn-name:" + connection.name;
}

std::string device_statistics(const DeviceView& device) {
  return " size:" + std::to_string(device.size_kib) + " read:" + std::to_string(device.read_kib) +
         " written:" + std::to_string(device.written_kib) +
         " al-writes:" + std::to_string(device.al_writes) +
         " bm-writes:" + std::to_string(device.bm_writes) +
         " upper-pending:" + std::to_string(device.upper_pending) +
         " lower-pending:" + std::to_string(device.lower_pending) +
         " al-suspended:" + yes_no(device.al_suspended) + " blocked:" + blocked_text(device);
}

std::string peer_device_line(const ResourceView& resource, const ConnectionView& connection,
                             const PeerDeviceView& peer_device, StatusFlags flags) {
  const bool statistics = flags.statistics;
  std::string line = "exists peer-device " + peer_prefix(resource, connection) +
                     " volume:" + std::to_string(peer_device.volume) +
                     " replication:" + std::string(to_string(peer_device.replication)) +
                     " peer-disk:" + std::string(to_string(peer_device.peer_disk)) +
                     " peer-client:" + yes_no(peer_device.peer_client) +
                     " resync-suspended:" + peer_device.resync_suspended;
  if (peer_device.done_percent) line += " done:" + percent_text(*peer_device.done_percent);
  if (statistics) {
    line += " received:" + std::to_string(peer_device.received_kib) +
            " sent:" + std::to_string(peer_device.sent_kib) +
            " out-of-sync:" + std::to_string(peer_device.out_of_sync_kib) +
            " pending:" + std::to_string(peer_device.pending) +
            " unacked:" + std::to_string(peer_device.unacked);
    if (peer_device.sync_details) {
      if (flags.verbose) line += sync_details_text(*peer_device.sync_details);
      for (const std::string& token : sync_rate_tokens(*peer_device.sync_details)) line += token;
    }
  }
  return line + "\n";
}

}  // namespace

double SyncDetailsView::recent_mib_per_second() const {
  return mib_per_second(db1_sectors, dt1_ms);
}

double SyncDetailsView::start_mib_per_second() const {
  return mib_per_second(db0_sectors, dt0_ms);
}

double SyncDetailsView::average_mib_per_second() const {
  return mib_per_second(static_cast<std::int64_t>(total_sectors - left_sectors),
                        since_start_ms - paused_ms);
}

double SyncDetailsView::eta_seconds() const {
  if (db1_sectors <= 0) return std::nan("");
  return static_cast<double>(dt1_ms == 0 ? 1 : dt1_ms) * 1e-3 *
         static_cast<double>(left_sectors) / static_cast<double>(db1_sectors);
}

std::optional<SyncDetailsView> sync_details(const core::PeerStatus& peer, Instant now) {
  const core::SyncProgress& progress = peer.sync_progress;
  if (!is_syncing(peer.replication) || !progress.running) return std::nullopt;
  constexpr std::uint64_t sectors_per_block = Bitmap::sectors_per_bit;
  const auto milliseconds = [](Duration duration) { return duration.ns / 1'000'000; };
  const std::uint64_t left = peer.sync_blocks_left();
  SyncDetailsView details;
  details.verify = is_verifying(peer.replication);
  details.total_sectors = peer.sync_total_blocks() * sectors_per_block;
  details.left_sectors = left * sectors_per_block;
  details.since_start_ms = milliseconds(now - progress.started.at);
  // A pause still running counts up to now.
  details.paused_ms = milliseconds(progress.paused) +
                      (progress.was_paused ? milliseconds(now - progress.noted) : 0);
  details.dt0_ms = details.since_start_ms - details.paused_ms;
  details.db0_sectors = static_cast<std::int64_t>(progress.started.blocks_left * sectors_per_block) -
                        static_cast<std::int64_t>(details.left_sectors);
  details.dt1_ms = milliseconds(now - progress.previous_mark.at);
  details.db1_sectors =
      static_cast<std::int64_t>(progress.previous_mark.blocks_left * sectors_per_block) -
      static_cast<std::int64_t>(details.left_sectors);
  details.same_checksum_sectors = peer.resync_same_checksum_blocks * sectors_per_block;
  return details;
}

std::string format_status_text(const ResourceView& resource, StatusFlags flags) {
  DITTO_ASSERT(!resource.name.empty());
  WrapPrinter out;
  print_resource(out, resource, flags);
  const bool single_device = resource.devices.size() == 1;
  for (const DeviceView& device : resource.devices) {
    print_device(out, device, single_device, flags);
  }
  for (const ConnectionView& connection : resource.connections) {
    print_connection(out, connection, single_device, flags);
  }
  std::string text = out.take();
  DITTO_ASSERT(text.back() == '\n');
  return text;
}

std::string format_events2_exists(const ResourceView& resource, StatusFlags flags) {
  const bool statistics = flags.statistics;
  std::string out = "exists resource name:" + resource.name +
                    " role:" + std::string(to_string(resource.role)) +
                    " suspended:" + resource.suspended +
                    " force-io-failures:" + yes_no(resource.force_io_failures);
  if (statistics) out += " write-ordering:" + resource.write_ordering;
  out += " may_promote:" + yes_no(resource.may_promote) +
         " promotion_score:" + std::to_string(resource.promotion_score) + "\n";
  for (const ConnectionView& connection : resource.connections) {
    out += "exists connection " + peer_prefix(resource, connection) +
           " connection:" + std::string(to_string(connection.connection)) +
           " role:" + std::string(to_string(connection.role));
    if (statistics) {
      out += " congested:" + yes_no(connection.congested) +
             " ap-in-flight:" + std::to_string(connection.ap_in_flight) +
             " rs-in-flight:" + std::to_string(connection.rs_in_flight);
    }
    out += "\n";
  }
  for (const DeviceView& device : resource.devices) {
    out += "exists device name:" + resource.name + " volume:" + std::to_string(device.volume) +
           " minor:" + std::to_string(device.minor) + " backing_dev:" + device.backing_device +
           " disk:" + std::string(to_string(device.disk)) + " client:" + yes_no(device.client) +
           " open:" + yes_no(device.open) + " quorum:" + yes_no(device.quorum) +
           (statistics ? device_statistics(device) : std::string()) + "\n";
  }
  for (const ConnectionView& connection : resource.connections) {
    for (const PeerDeviceView& peer_device : connection.peer_devices) {
      out += peer_device_line(resource, connection, peer_device, flags);
    }
  }
  for (const ConnectionView& connection : resource.connections) {
    for (const PathView& path : connection.paths) {
      out += "exists path " + peer_prefix(resource, connection) + " local:" + path.local +
             " peer:" + path.remote + " established:" + yes_no(path.established) + "\n";
    }
  }
  return out + "exists -\n";
}

std::string format_events2_timestamp(std::int64_t seconds, std::int64_t microseconds,
                                     long utc_offset_seconds) {
  DITTO_ASSERT(microseconds >= 0 && microseconds < 1'000'000);
  const std::time_t local_seconds = static_cast<std::time_t>(seconds + utc_offset_seconds);
  std::tm local{};
  ::gmtime_r(&local_seconds, &local);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &local);
  const long offset_minutes = utc_offset_seconds / 60;
  char text[64];
  std::snprintf(text, sizeof(text), "%s.%06lld%c%02ld:%02ld", date,
                static_cast<long long>(microseconds), offset_minutes < 0 ? '-' : '+',
                std::labs(offset_minutes) / 60, std::labs(offset_minutes) % 60);
  return text;
}

}  // namespace ditto::datapath
