#include "core/status.h"

#include "core/assert.h"

namespace ditto::core {
namespace {

std::string kib(std::uint64_t bytes) { return std::to_string(bytes / 1024); }

void append_peer(std::string& out, const PeerStatus& peer, StatusOptions options) {
  const bool connected = peer.connection == ConnectionState::connected;
  out += "  " + peer.name;
  if (options.verbose) out += " node-id:" + std::to_string(peer.node_id.value);
  if (!connected || options.verbose) {
    out += " connection:" + std::string(to_string(peer.connection));
  }
  if (connected || options.verbose) out += " role:" + std::string(to_string(peer.role));
  if (options.statistics) out += " ap-in-flight:" + std::to_string(peer.pending_writes);
  out += "\n";
  std::string device_line;
  if (peer.replication > ReplicationState::established || options.verbose) {
    device_line += " replication:" + std::string(to_string(peer.replication));
  }
  if (peer.replication != ReplicationState::off || peer.disk != DiskState::dunknown ||
      options.verbose) {
    device_line += " peer-disk:" + std::string(to_string(peer.disk));
  }
  const bool verifying = peer.replication == ReplicationState::verify_source ||
                         peer.replication == ReplicationState::verify_target;
  if (is_syncing(peer.replication) || verifying) {
    const auto hundredths = static_cast<std::uint64_t>(peer.resync_percent_done() * 100 + 0.5);
    const std::uint64_t fraction = hundredths % 100;
    device_line += " done:" + std::to_string(hundredths / 100) + (fraction < 10 ? ".0" : ".") +
                   std::to_string(fraction);
  }
  if (peer.resync_suspended_text() != "no" || options.verbose) {
    device_line += " resync-suspended:" + peer.resync_suspended_text();
  }
  if (options.statistics) {
    device_line += " received:" + kib(peer.received_bytes) + " sent:" + kib(peer.sent_bytes) +
                   " pending:" + std::to_string(peer.pending_writes);
  }
  if (!device_line.empty()) out += "    " + device_line.substr(1) + "\n";
}

}  // namespace

std::string format_status(const Node& node, StatusOptions options) {
  const NodeConfig& config = node.config();
  DITTO_ASSERT(!config.resource_name.empty());
  std::string out = config.resource_name;
  if (options.verbose) out += " node-id:" + std::to_string(config.node_id.value);
  out += " role:" + std::string(to_string(node.role()));
  // `suspended:` only when suspended, unless verbose; `quorum:` only without quorum (§13.2).
  if (options.verbose || node.io_suspended_for_quorum()) {
    out += " suspended:" + std::string(node.suspended_reason());
  }
  out += "\n  ";
  if (options.verbose) out += "volume:0 minor:0 ";
  out += "disk:" + std::string(to_string(node.disk_state()));
  if (options.verbose || !node.have_quorum()) {
    out += std::string(" quorum:") + (node.have_quorum() ? "yes" : "no");
  }
  if (options.statistics) {
    const NodeStatistics& statistics = node.statistics();
    out += " size:" + kib(config.volume_size_bytes) + " read:" + kib(statistics.read_bytes) +
           " written:" + kib(statistics.written_bytes) +
           " upper-pending:" + std::to_string(statistics.upper_pending);
  }
  out += "\n";
  for (const PeerStatus& peer : node.peers()) append_peer(out, peer, options);
  DITTO_ASSERT(out.back() == '\n');
  return out;
}

}  // namespace ditto::core
