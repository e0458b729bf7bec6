// Scripted steps (Schedule::script): a scenario file's timeline on the simulator. The client
// pauses at each step's operation until everything before it completed, the step's faults start
// and end, and the client waits for the step's condition, as ditto-faults does on real daemons.
#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {
constexpr Duration script_poll = Duration::from_ms(1);
}  // namespace

bool Simulation::script_holds_client() {
  while (next_script_ < script_.size()) {
    const ScriptStep& step = script_[next_script_];
    if (workload_.statistics().issued < step.before_op) return false;
    if (workload_.in_flight() > 0) return true;  // its completion ticks again
    // The client is idle on purpose: not a stall.
    last_progress_ = now_;
    if (!script_started_) {
      script_started_ = true;
      script_since_ = now_;
      start_script_step(step);
      schedule_tick(script_poll);  // after the faults it started took effect
      return true;
    }
    const std::optional<std::string> unmet = script_unmet(step);
    if (unmet && now_ - script_since_ < step.timeout) {
      schedule_tick(script_poll);
      return true;
    }
    if (unmet) {
      violations_.add("scripted step " + std::to_string(next_script_) + " before operation " +
                      std::to_string(step.before_op) + ": still " + *unmet + " after " +
                      std::to_string(step.timeout.ns / 1'000'000) + " ms");
    }
    hash_.add(0x5c41'0000ull + next_script_);
    next_script_ += 1;
    script_started_ = false;
  }
  return false;
}

void Simulation::start_script_step(const ScriptStep& step) {
  for (const std::uint32_t index : step.start) {
    DITTO_ASSERT(index < faults_.size());
    SimEvent event = make_event(EventKind::fault, faults_[index].node, faults_[index].peer);
    event.first = index;
    schedule(Duration{0}, event);
  }
  for (const std::uint32_t index : step.end) {
    DITTO_ASSERT(index < faults_.size());
    const FaultEvent& fault = faults_[index];
    if (fault.fault == netem::FaultClass::node_crash) {
      schedule(Duration{0}, make_event(EventKind::restart, fault.node));
      continue;
    }
    SimEvent end = make_event(EventKind::fault_end, fault.node, fault.peer);
    end.first = index;
    schedule(Duration{0}, end);
  }
}

std::optional<std::string> Simulation::script_unmet(const ScriptStep& step) const {
  using Condition = ScriptStep::Condition;
  switch (step.condition) {
    case Condition::none:
      return std::nullopt;
    case Condition::connected:
      return connection_unmet();
    case Condition::up_to_date:
      if (auto unmet = connection_unmet()) return unmet;
      return resync_unfinished();
    case Condition::primary:
      if (alive(step.node) && nodes_[step.node]->core->role() == Role::primary) {
        return std::nullopt;
      }
      return node_name(step.node) + " not Primary";
    case Condition::quorum_lost:
      if (alive(step.node) && !nodes_[step.node]->core->have_quorum()) return std::nullopt;
      return node_name(step.node) + " with quorum";
  }
  return std::nullopt;
}

}  // namespace ditto::sim
