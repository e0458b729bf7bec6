// The scripted split-brain scenario (SimOptions::split_brain) and the driver's respect for
// StandAlone connections.
//
// Script: at a third of the operations the two nodes are partitioned and node 1 is promoted
// as well (quorum is off, there is no fencing: DRBD allows it); the client then writes on both
// Primaries. When the workload is done the requested number of Primaries demote and the
// partition heals; the cores find the split brain at the handshake and apply their policies.
//
// The data oracle follows the cores' own reports (core/node_split_brain.cpp): a victim's
// `resolution:discard-local` line makes the oracle continue the victim and the lineage from the
// survivor's acknowledged writes; what the victim had acknowledged since the split on blocks
// where the two differ is counted as documented loss (blocks_discarded_by_split_brain). The
// end-of-run checks then demand the victim hold exactly the survivor's data (byte-identical
// once Connected and UpToDate). An unresolved split brain keeps two lineages: each node is
// checked against its own acknowledged writes only.
#include <algorithm>
#include <string>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {

constexpr std::uint64_t step_promote_second = 0;
constexpr std::uint64_t step_manual_recovery = 1;

std::optional<std::uint8_t> peer_of(const std::string& line) {
  const std::string key = " peer-node-id:";
  const std::size_t at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  const std::size_t start = at + key.size();
  std::uint32_t value = 0;
  std::size_t position = start;
  while (position < line.size() && line[position] >= '0' && line[position] <= '9' &&
         position - start < 2) {
    value = value * 10 + static_cast<std::uint32_t>(line[position] - '0');
    position += 1;
  }
  if (position == start || value >= sim_nodes_max) return std::nullopt;
  return static_cast<std::uint8_t>(value);
}

}  // namespace

bool Simulation::standalone(std::uint8_t node, std::uint8_t peer) const {
  if (!alive(node)) return false;
  const auto view = nodes_[node]->core->peer(NodeId{peer});
  return view && view->connection == ConnectionState::standalone;
}

// A close (FIN) after the data: what `node` already sent to `peer` is still delivered, then the
// connection goes down without a reconnect. Messages toward `node` are dropped by its core.
void Simulation::close_gracefully(std::uint8_t node, std::uint8_t peer) {
  const Connection& entry = connection(node, peer);
  if (entry.state == Connection::State::down) return;
  const Link& link = links_[node][peer];
  SimEvent close = make_event(EventKind::graceful_close, node, peer);
  close.epoch = entry.epoch;
  const Instant at = std::max(now_, link.last_delivery);
  schedule(Duration{at.ns - now_.ns + Duration::from_ms(1).ns}, close);
}

void Simulation::on_graceful_close(const SimEvent& event) {
  const Connection& entry = connection(event.node, event.peer);
  if (entry.epoch != event.epoch) return;
  // Held messages (a blocked direction) are lost with the connection, as with a reset.
  break_connection(event.node, event.peer, false);
}

void Simulation::split_brain_before_issue(std::uint64_t operation_index) {
  const SplitBrainScenario& scenario = options_.split_brain;
  if (!scenario.enabled || split_partitioned_) return;
  if (operation_index != options_.workload.operations / 3) return;
  split_partitioned_ = true;
  split_waiting_ = true;
  hash_.add(0x5b1177ull);
  links_[0][1].partitions += 1;
  links_[1][0].partitions += 1;
  break_connection(0, 1, true);  // reconnect attempts are blackholed until the heal
  workload_.oracle().split_started();
  SimEvent step = make_event(EventKind::split_brain_step, 1);
  step.first = step_promote_second;
  schedule(Duration{options_.detection_delay_max.ns + Duration::from_ms(2).ns}, step);
}

// Which Primary the client writes to while both are: share_second_percent go to node 1.
std::uint8_t Simulation::split_brain_writer(std::uint64_t request) {
  return (request * 37) % 100 < options_.split_brain.share_second_percent ? 1 : 0;
}

void Simulation::split_brain_heal() {
  if (!options_.split_brain.enabled || !split_partitioned_ || !digests_at_heal_.empty()) return;
  split_writers_ = false;
  primary_ = 0;
  const std::uint32_t keep = options_.split_brain.primaries_at_heal;
  for (std::uint8_t node = 0; node < 2; ++node) {
    const bool stays = keep == 2 || (keep == 1 && node == 0);
    if (stays || nodes_[node]->core->role() != Role::primary) continue;
    const core::AdminResult result = nodes_[node]->core->on_admin(now_, core::Demote{});
    if (!result.ok) {
      violations_.add("split-brain scenario: demoting " + node_name(node) + " was refused: " +
                      result.code + " (" + result.message + ")");
    }
    drain(node);
  }
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    digests_at_heal_.push_back(disk_digest(node));
  }
}

void Simulation::on_split_brain_step(const SimEvent& event) {
  if (event.first == step_promote_second) {
    const auto reason = static_cast<std::uint8_t>(SimNode::PromotionReason::split_brain);
    return request_promotion(event.node, reason);
  }
  DITTO_ASSERT(event.first == step_manual_recovery);
  // drbdadm connect --discard-my-data on the victim (node 1), drbdadm connect on node 0.
  for (std::uint8_t node = 0; node < 2; ++node) {
    const core::ConnectPeer command{NodeId{static_cast<std::uint8_t>(1 - node)}, node == 1};
    const core::AdminResult result = nodes_[node]->core->on_admin(now_, command);
    if (!result.ok) {
      violations_.add("split-brain scenario: connect on " + node_name(node) + " was refused: " +
                      result.code + " (" + result.message + ")");
    }
    drain(node);
  }
  if (connection(0, 1).state == Connection::State::down) {
    start_connecting(0, 1, options_.connect_delay);
  }
}

void Simulation::on_core_event(std::uint8_t node, const std::string& line) {
  on_admin_event(node, line);
  if (line.starts_with("change peer-device ")) {
    if (line.find(" replication:Ahead ") != std::string::npos) result_.ahead_entered += 1;
    if (line.find(" replication:Behind ") != std::string::npos) result_.behind_entered += 1;
  }
  if (line.starts_with("congested ")) result_.congestion_disconnects += 1;
  if (line.starts_with("concurrent-writes ")) result_.concurrent_writes_reports += 1;
  if (!line.starts_with("call helper ")) return;
  const std::optional<std::uint8_t> peer = peer_of(line);
  if (!peer || *peer >= options_.nodes || *peer == node) return;
  if (line.find(" helper:initial-split-brain ") != std::string::npos) {
    result_.split_brain_reports += 1;
    if (line.find(" resolution:discard-local") != std::string::npos) {
      // With quorum nothing acknowledged may be discarded: the oracle keeps every promise and
      // checks the victim against it once it has resynced (no documented loss).
      if (!options_.quorum.enabled()) {
        result_.blocks_discarded_by_split_brain +=
            workload_.oracle().split_brain_discard(node, *peer);
      }
      split_brain_open_ = false;
    } else if (line.find(" resolution:disconnect") != std::string::npos) {
      split_brain_open_ = true;
    }
    return;
  }
  if (line.find(" helper:split-brain") == std::string::npos) return;
  result_.split_brain_unresolved_reports += 1;
  const bool both = result_.split_brain_unresolved_reports >= 2;
  if (options_.split_brain.manual_recovery && both && !manual_recovery_done_) {
    manual_recovery_done_ = true;
    SimEvent step = make_event(EventKind::split_brain_step, 1);
    step.first = step_manual_recovery;
    schedule(Duration::from_ms(50), step);
  }
}

std::uint64_t Simulation::disk_digest(std::uint8_t node) const {
  std::uint64_t digest = 0xcbf29ce484222325ull;  // FNV-1a over the visible tags
  for (const std::uint64_t tag : nodes_[node]->disk.visible()) {
    digest = (digest ^ tag) * 0x100000001b3ull;
  }
  return digest;
}

void Simulation::summarize_nodes(RunResult& result) const {
  result.final_nodes.clear();
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    RunResult::NodeSummary summary;
    const core::Node& core = *nodes_[node]->core;
    summary.role = core.role();
    summary.disk = core.disk_state();
    for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
      const auto view = core.peer(NodeId{peer});
      summary.connections.push_back(view ? view->connection : ConnectionState::standalone);
    }
    summary.disk_digest = disk_digest(node);
    summary.disk_digest_at_heal = node < digests_at_heal_.size() ? digests_at_heal_[node] : 0;
    result.final_nodes.push_back(summary);
  }
}

}  // namespace ditto::sim
