// The liveness oracle: once the faults stop (heal_all: the last fault is healed, paused nodes
// resume, crashed nodes restart), every live node must be connected to every live peer within
// SimOptions::liveness_bound of simulated time. The condition is one function,
// liveness_unmet(), so it can be tightened (to "all UpToDate" once the core resyncs).
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

// What keeps the cluster from having converged, or nothing: a pair of live nodes that do not
// both report Connected, unless one side is StandAlone because its core dropped the
// connection itself (a refused handshake, which DRBD leaves to the operator).
std::optional<std::string> Simulation::liveness_unmet() const {
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
      // A side that refused the handshake itself (StandAlone after dropping the connection:
      // split brain, unrelated data) waits for the operator, as DRBD does.
      if ((first_view->connection == ConnectionState::standalone &&
           dropped_by_core_[first][second]) ||
          (second_view->connection == ConnectionState::standalone &&
           dropped_by_core_[second][first])) {
        continue;
      }
      return node_name(first) + " sees " + node_name(second) + " " +
             std::string(to_string(first_view->connection)) + ", " + node_name(second) +
             " sees " + node_name(first) + " " + std::string(to_string(second_view->connection));
    }
  }
  return std::nullopt;
}

void Simulation::on_liveness_check() {
  if (liveness_checked_ || !healed_at_) return;
  const std::optional<std::string> unmet = liveness_unmet();
  if (!unmet) {
    liveness_checked_ = true;
    result_.converged_after_ns = (now_ - *healed_at_).ns;
    return;
  }
  if (now_ - *healed_at_ >= options_.liveness_bound) {
    liveness_checked_ = true;
    violations_.add("liveness: " + std::to_string(options_.liveness_bound.ns / 1'000'000) +
                    " ms after the faults stopped the cluster has not converged: " + *unmet);
    return;
  }
  // Look again at the next poll or at the bound, whichever comes first, and keep the run
  // going until then.
  const Duration remaining{(*healed_at_ + options_.liveness_bound - now_).ns};
  const Duration next = std::min(liveness_poll, remaining);
  if (stop_at_ && *stop_at_ < now_ + next) stop_at_ = now_ + next;
  schedule(next, make_event(EventKind::liveness_check, 0));
}

}  // namespace ditto::sim
