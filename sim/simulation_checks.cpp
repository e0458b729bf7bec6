// End-of-run oracles. What the current core promises, and nothing more:
// - the final Primary holds every write acknowledged in its lineage;
// - every node that claims UpToDate still holds every acknowledged write it had stored;
// - two UpToDate nodes connected to each other agree on every acknowledged block;
// - when every live node ended Connected to every other and UpToDate, and no node crashed with
//   writes in flight or lost writes on its disk (the activity log is not wired in yet), the
//   replicas are byte-identical: resync moved every block that differed;
// - no core payload handle leaks;
// - with quorum on, no node ever detects a split brain (check_event, as the events happen):
//   two partitions never both write in diverging generations (§8).
#include <algorithm>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {

void Simulation::check_event(std::uint8_t node, const std::string& line) {
  // Split brain is reported as a helper call (node_split_brain.cpp): initial-split-brain on
  // detection, split-brain when it stays unresolved. With quorum a split brain can still be
  // detected — a Primary that crashed after writing a generation no peer acknowledged comes back
  // with it — and the side with quorum becomes the source (§3.5 step 6). What quorum rules out
  // is losing an acknowledged write (the oracle, and promotion_decided) and a split brain left
  // unresolved.
  // Quorum does not cover a protocol A Primary that pulled ahead (§11): it keeps quorum (its
  // Behind peers are connected and vote) while it writes alone in a generation of its own, so
  // its crash and a failover leave two generations, as in DRBD.
  const bool pulled_ahead = options_.protocol == Protocol::a && result_.ahead_entered > 0;
  if (!options_.quorum.enabled() || pulled_ahead || !line.starts_with("call helper ") ||
      line.find(" helper:initial-split-brain ") == std::string::npos ||
      line.find(" resolution:disconnect") == std::string::npos) {
    return;
  }
  violations_.add(node_name(node) + " left a split brain unresolved although quorum " +
                  core::to_string(options_.quorum.quorum) + " is on: " + line);
}

void Simulation::final_checks(RunResult& result) {
  if (!workload_.done() && !gave_up_) {
    violations_.add("the workload stalled: " + std::to_string(workload_.statistics().issued) +
                    " of " + std::to_string(options_.workload.operations) + " issued, " +
                    std::to_string(workload_.in_flight()) + " in flight");
  }
  std::vector<std::uint8_t> up_to_date;
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    if (alive(node) && nodes_[node]->core->disk_state() == DiskState::up_to_date) {
      up_to_date.push_back(node);
    }
  }
  if (options_.drop_acked_write_for_test && !up_to_date.empty()) {
    const BlockOracle& oracle = workload_.oracle();
    const std::uint8_t victim = has_primary_ && alive(primary_) ? primary_ : up_to_date.front();
    for (std::uint64_t block = 0; block < oracle.block_count(); ++block) {
      if (oracle.last_acknowledged(block) == 0) continue;
      nodes_[victim]->disk.corrupt_for_test(block, 0);  // back to "never written"
      break;
    }
  }
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    SimNode& sim_node = *nodes_[node];
    if (!sim_node.alive) continue;
    sim_node.core->invariants();
    const bool idle = sim_node.disk.writes_in_flight() == 0 && sim_node.deferred.empty();
    if (idle && workload_.done() && sim_node.payloads_held != 0) {
      violations_.add(node_name(node) + " still holds " + std::to_string(sim_node.payloads_held) +
                      " payloads after the run (a ReleasePayload is missing)");
    }
  }
  // An unresolved split brain leaves two lineages: each node is checked against its own
  // acknowledged writes (check_node below), not against the mix of both.
  if (has_primary_ && alive(primary_) && !split_brain_open_ &&
      nodes_[primary_]->core->disk_state() == DiskState::up_to_date) {
    workload_.oracle().check("final disk of " + node_name(primary_) + " (Primary)", 0,
                             nodes_[primary_]->disk.visible(), violations_);
  }
  for (const std::uint8_t node : up_to_date) {
    result.inconsistent_writes_overwritten += workload_.oracle().check_node(
        "final disk of " + node_name(node) + " (UpToDate)", node, nodes_[node]->disk.visible(),
        violations_);
  }
  for (std::size_t first = 0; first < up_to_date.size(); ++first) {
    for (std::size_t second = first + 1; second < up_to_date.size(); ++second) {
      check_divergence(up_to_date[first], up_to_date[second], result);
    }
  }
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    if (!alive(node)) continue;
    for (const core::PeerStatus& peer : nodes_[node]->core->peers()) {
      result.resync_blocks += peer.resync_done_blocks;
    }
  }
  check_replicas_identical(up_to_date, result);
  summarize_nodes(result);
}

// Strict form of the divergence check, for runs that ended fully connected and UpToDate.
void Simulation::check_replicas_identical(const std::vector<std::uint8_t>& up_to_date,
                                          const RunResult& result) {
  std::uint32_t live = 0;
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    const bool has_disk = !(options_.diskless_client && node == 0);  // a client holds no replica
    live += alive(node) && has_disk ? 1 : 0;
  }
  if (up_to_date.size() != live || live < 2 || result.divergent_blocks == 0) return;
  const bool crash_lost_data = result.writes_in_flight_at_crash > 0 ||
                               result.crash_disk.writes_lost > 0 ||
                               result.crash_disk.writes_torn > 0;
  if (crash_lost_data) return;
  for (const std::uint8_t node : up_to_date) {
    for (const core::PeerStatus& peer : nodes_[node]->core->peers()) {
      if (alive(peer.node_id.value) && peer.connection != ConnectionState::connected) return;
    }
  }
  violations_.add("replicas differ: every live node is Connected and UpToDate, yet " +
                  std::to_string(result.divergent_blocks) +
                  " block comparisons differ (a resync missed blocks; first " + first_divergence_ +
                  ")");
}

void Simulation::check_divergence(std::uint8_t first, std::uint8_t second, RunResult& result) {
  const auto first_view = nodes_[first]->core->peer(NodeId{second});
  const auto second_view = nodes_[second]->core->peer(NodeId{first});
  const bool connected = first_view && second_view &&
                         first_view->connection == ConnectionState::connected &&
                         second_view->connection == ConnectionState::connected;
  const auto a = nodes_[first]->disk.visible();
  const auto b = nodes_[second]->disk.visible();
  const BlockOracle& oracle = workload_.oracle();
  std::uint64_t silent = 0;
  std::uint64_t first_block = 0;
  for (std::size_t block = 0; block < a.size(); ++block) {
    if (a[block] == b[block]) continue;
    // A block the checksumming disk reports as unreadable (bit rot, a misdirected write) is a
    // detected error, not a divergence: reads of it fail, they never return wrong data.
    if (((a[block] | b[block]) & unreadable_tag_bit) != 0) continue;
    if (result.divergent_blocks == 0) {
      first_divergence_ = "block " + std::to_string(block) + ": " + node_name(first) + " tag " +
                          std::to_string(a[block]) + ", " + node_name(second) + " tag " +
                          std::to_string(b[block]);
    }
    result.divergent_blocks += 1;
    if (!connected || !oracle.acknowledged(a[block]) || !oracle.acknowledged(b[block])) continue;
    if (silent == 0) first_block = block;
    silent += 1;
  }
  if (silent == 0) return;
  violations_.add("silent divergence: " + node_name(first) + " and " + node_name(second) +
                  " are both UpToDate and connected but hold different acknowledged writes on " +
                  std::to_string(silent) + " blocks (first: block " + std::to_string(first_block) +
                  ", tags " + std::to_string(a[first_block]) + " and " +
                  std::to_string(b[first_block]) + ")");
}

}  // namespace ditto::sim
