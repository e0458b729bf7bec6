// The scripted admin scenario (SimOptions::admin): online verify, invalidate and
// invalidate-remote on a quiet cluster once the workload is done.
//
// verify: `corrupt_blocks` acknowledged blocks of node 1 are overwritten behind everyone's back
// with the data of other blocks (silent corruption: the disk's checksums are not involved, as
// on a disk without dm-integrity), node 0 starts `verify` toward node 1, and once node 0 reports
// `verify-finished` the operator disconnects and reconnects node 0 from node 1, so the next
// handshake resyncs the blocks the verify marked. The end-of-run oracles then demand identical
// replicas: a corrupted block the verify missed stays a silent divergence.
// invalidate / invalidate_remote: `corrupt_blocks` blocks of node 1 are corrupted the same way,
// then node 1 becomes SyncTarget of node 0 for every block (with csums, only the corrupted
// blocks differ, so only they move as data).
#include <string>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {

constexpr std::uint64_t step_start = 0;
constexpr std::uint64_t step_disconnect = 1;
constexpr std::uint64_t step_connect = 2;

std::uint64_t field_value(const std::string& line, const std::string& key) {
  const std::size_t at = line.find(" " + key + ":");
  if (at == std::string::npos) return 0;
  std::uint64_t value = 0;
  for (std::size_t position = at + key.size() + 2;
       position < line.size() && line[position] >= '0' && line[position] <= '9'; ++position) {
    value = value * 10 + static_cast<std::uint64_t>(line[position] - '0');
  }
  return value;
}

}  // namespace

void Simulation::admin_scenario_start() {
  if (options_.admin.kind == AdminScenario::Kind::none) return;
  SimEvent step = make_event(EventKind::admin_step, 0);
  step.first = step_start;
  schedule(Duration::from_ms(20), step);
}

void Simulation::admin_command(std::uint8_t node, const core::AdminCommand& command) {
  if (!alive(node)) return;
  const core::AdminResult result = nodes_[node]->core->on_admin(now_, command);
  hash_.add(result.ok ? 1 : 0);
  if (!result.ok) {
    violations_.add("admin scenario: a command on " + node_name(node) + " was refused: " +
                    result.code + " (" + result.message + ")");
  }
  drain(node);
}

void Simulation::on_admin_step(const SimEvent& event) {
  using Kind = AdminScenario::Kind;
  const NodeId second{1};
  switch (event.first) {
    case step_start:
      if (options_.admin.kind == Kind::verify) {
        corrupt_acknowledged_blocks(1, options_.admin.corrupt_blocks);
        return admin_command(0, core::Verify{second, Sector{0}});
      }
      corrupt_acknowledged_blocks(1, options_.admin.corrupt_blocks);
      if (options_.admin.kind == Kind::invalidate) return admin_command(1, core::Invalidate{});
      return admin_command(0, core::InvalidateRemote{second});
    case step_disconnect: {
      admin_command(0, core::DisconnectPeer{second});
      SimEvent step = make_event(EventKind::admin_step, 0);
      step.first = step_connect;
      return schedule(Duration::from_ms(50), step);
    }
    case step_connect:
      admin_command(0, core::ConnectPeer{second, false});
      if (connection(0, 1).state == Connection::State::down) {
        start_connecting(0, 1, options_.connect_delay);
      }
      return;
  }
  DITTO_ASSERT(false);  // every step is handled above
}

void Simulation::on_admin_event(std::uint8_t node, const std::string& line) {
  if (options_.admin.kind != AdminScenario::Kind::verify || node != 0 ||
      !line.starts_with("verify-finished ") || line.find(" role:VerifyS ") == std::string::npos) {
    return;
  }
  result_.verify_runs += 1;
  result_.verify_out_of_sync_blocks = field_value(line, "out-of-sync-blocks");
  SimEvent step = make_event(EventKind::admin_step, 0);
  step.first = step_disconnect;
  schedule(Duration::from_ms(10), step);
}

// Overwrites `count` acknowledged blocks of `node`, spread over the volume, each with the data
// of another acknowledged block (what a misdirected write leaves on a disk without checksums).
void Simulation::corrupt_acknowledged_blocks(std::uint8_t node, std::uint32_t count) {
  const BlockOracle& oracle = workload_.oracle();
  SimDisk& disk = nodes_[node]->disk;
  std::vector<std::uint64_t> written;
  for (std::uint64_t block = 0; block < oracle.block_count(); ++block) {
    if (oracle.last_acknowledged(block) != 0) written.push_back(block);
  }
  if (written.size() < 2 || count == 0) return;
  for (std::uint32_t index = 0; index < count && index < written.size(); ++index) {
    const std::size_t position = index * written.size() / count;
    const std::uint64_t block = written[position];
    // The next written block with other data (a multi-block write gives its blocks one tag).
    for (std::size_t step = 1; step < written.size(); ++step) {
      const std::uint64_t donor = written[(position + step) % written.size()];
      if (disk.tag_at(donor) == disk.tag_at(block)) continue;
      disk.corrupt_for_test(block, disk.tag_at(donor));
      result_.blocks_corrupted += 1;
      break;
    }
  }
}

}  // namespace ditto::sim
