// The liveness oracle: once the faults stop (heal_all: the last fault is healed, paused nodes
// resume, crashed nodes restart), every live node must be connected to every live peer within
// SimOptions::liveness_bound of simulated time (connection_unmet), and every live node with a
// disk must be UpToDate, once any live node is, within SimOptions::resync_bound (the resyncs
// have finished: resync_unfinished).
#include <algorithm>
#include <string>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {
constexpr Duration liveness_poll = Duration::from_ms(10);
}  // namespace

void Simulation::start_liveness_checks() {
  if (healed_at_) return;
  healed_at_ = now_;
  schedule(Duration{0}, make_event(EventKind::liveness_check, 0));
}

// A side that refused the handshake itself (StandAlone after dropping the connection: split
// brain, unrelated data) waits for the operator, as DRBD does.
bool Simulation::left_to_operator(std::uint8_t first, std::uint8_t second) const {
  auto standalone_by_core = [&](std::uint8_t node, std::uint8_t peer) {
    const auto view = nodes_[node]->core->peer(NodeId{peer});
    return view && view->connection == ConnectionState::standalone &&
           dropped_by_core_[node][peer];
  };
  return standalone_by_core(first, second) || standalone_by_core(second, first);
}

// What keeps the cluster from having converged, or nothing: a pair of live nodes that do not
// both report Connected, unless the connection is left to the operator.
std::optional<std::string> Simulation::connection_unmet() const {
  for (std::uint8_t first = 0; first < options_.nodes; ++first) {
    for (std::uint8_t second = first + 1; second < options_.nodes; ++second) {
      if (!alive(first) || !alive(second)) continue;
      const auto first_view = nodes_[first]->core->peer(NodeId{second});
      const auto second_view = nodes_[second]->core->peer(NodeId{first});
      if (!first_view || !second_view) continue;
      if (first_view->connection == ConnectionState::connected &&
          second_view->connection == ConnectionState::connected) {
        continue;
      }
      if (left_to_operator(first, second)) continue;
      return node_name(first) + " sees " + node_name(second) + " " +
             std::string(to_string(first_view->connection)) + ", " + node_name(second) +
             " sees " + node_name(first) + " " + std::string(to_string(second_view->connection));
    }
  }
  return std::nullopt;
}

// A live node with a disk below UpToDate while another live node is UpToDate: the resync that
// should bring it up has not finished. Diskless nodes (by configuration or after a detach)
// hold no data and are not counted. A cluster with a connection left to the operator (a
// split brain, a refused handshake) is waiting for the operator: the nodes that cannot reach
// a Primary through it rightly stay Outdated, so nothing is required of it.
std::optional<std::string> Simulation::resync_unfinished() const {
  for (std::uint8_t first = 0; first < options_.nodes; ++first) {
    for (std::uint8_t second = first + 1; second < options_.nodes; ++second) {
      if (alive(first) && alive(second) && left_to_operator(first, second)) return std::nullopt;
    }
  }
  auto up_to_date = [&](std::uint8_t node) {
    return alive(node) && nodes_[node]->core->disk_state() == DiskState::up_to_date;
  };
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    if (!alive(node)) continue;
    const DiskState disk = nodes_[node]->core->disk_state();
    if (disk == DiskState::up_to_date || disk == DiskState::diskless) continue;
    for (std::uint8_t source = 0; source < options_.nodes; ++source) {
      if (source == node || !up_to_date(source)) continue;
      return node_name(node) + " is " + std::string(to_string(disk)) + " while " +
             node_name(source) + " is UpToDate";
    }
  }
  return std::nullopt;
}

void Simulation::on_liveness_check() {
  if (liveness_checked_ || !healed_at_) return;
  const std::optional<std::string> unconnected = connection_unmet();
  const std::optional<std::string> unsynced =
      unconnected ? std::nullopt : resync_unfinished();
  const Duration elapsed{(now_ - *healed_at_).ns};
  if (!unconnected && !unsynced) {
    liveness_checked_ = true;
    result_.converged_after_ns = elapsed.ns;
    return;
  }
  // Once every pair was Connected, the handshakes that start the resyncs may drop a
  // connection for a moment: from then on only the resync bound applies.
  if (!unconnected) connected_since_heal_ = true;
  const Duration bound =
      unconnected && !connected_since_heal_ ? options_.liveness_bound : options_.resync_bound;
  if (elapsed >= bound) {
    liveness_checked_ = true;
    violations_.add("liveness: " + std::to_string(bound.ns / 1'000'000) +
                    " ms after the faults stopped the cluster has not converged: " +
                    (unconnected ? *unconnected : *unsynced));
    return;
  }
  // Look again at the next poll or at the bound, whichever comes first, and keep the run
  // going until then.
  const Duration next = std::min(liveness_poll, Duration{bound.ns - elapsed.ns});
  if (stop_at_ && *stop_at_ < now_ + next) stop_at_ = now_ + next;
  schedule(next, make_event(EventKind::liveness_check, 0));
}

}  // namespace ditto::sim
