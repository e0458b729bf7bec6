#include "faults/sim_injector.h"

#include <algorithm>

#include "netem/faults.h"
#include "sim/simulation.h"

namespace ditto::faults {
namespace {

using netem::FaultClass;

struct Translator {
  const Scenario& scenario;
  const OperationPlan& plan;
  SimTranslation out;
  // Open faults a later step ends: partitions, crashes (by node), delayed links.
  std::vector<std::uint32_t> open_partitions;
  std::vector<std::optional<std::uint32_t>> open_crashes;
  std::vector<DirectedLink> delayed_links;
  Prng crash_prng;

  std::uint32_t add(FaultClass fault, std::uint64_t after_op, std::uint8_t node,
                    std::uint8_t peer) {
    sim::FaultEvent event;
    event.fault = fault;
    event.after_op = after_op;
    event.node = node;
    event.peer = peer;
    out.schedule.faults.push_back(event);
    return static_cast<std::uint32_t>(out.schedule.faults.size() - 1);
  }
  std::uint8_t other(std::uint8_t node) const {
    return static_cast<std::uint8_t>((node + 1) % scenario.cluster.nodes);
  }
  void block(const DirectedLink& link, sim::ScriptStep& step) {
    const std::uint32_t index =
        add(FaultClass::partition_one_way, sim::script_only, link.from, link.to);
    out.schedule.faults[index].parameter = netem::one_way_parameter(link.from, link.to);
    step.start.push_back(index);
    open_partitions.push_back(index);
  }
  void heal(sim::ScriptStep& step) {
    step.end.insert(step.end.end(), open_partitions.begin(), open_partitions.end());
    open_partitions.clear();
    for (const DirectedLink& link : delayed_links) {
      const std::uint32_t index = add(FaultClass::link_delay, sim::script_only, link.from, link.to);
      out.schedule.faults[index].model = out.schedule.options.network;
      step.start.push_back(index);
    }
    delayed_links.clear();
  }
  void note(std::size_t index, const std::string& text) {
    out.notes.push_back("step " + std::to_string(index) + ": " + text);
  }

  Status step(std::size_t index, const Step& step, std::optional<std::uint8_t>& primary,
              std::optional<std::uint8_t>& crashed_primary);
  Status scripted(std::size_t index, const Step& step, sim::ScriptStep& script,
                  std::optional<std::uint8_t>& primary,
                  std::optional<std::uint8_t>& crashed_primary);
};

sim::ScriptStep::Condition condition_of(WaitCondition condition) {
  switch (condition) {
    case WaitCondition::connected: return sim::ScriptStep::Condition::connected;
    case WaitCondition::up_to_date: return sim::ScriptStep::Condition::up_to_date;
    case WaitCondition::primary: return sim::ScriptStep::Condition::primary;
    case WaitCondition::quorum_lost: return sim::ScriptStep::Condition::quorum_lost;
  }
  return sim::ScriptStep::Condition::none;
}

// A step between client operations: a scripted step of the simulator.
Status Translator::scripted(std::size_t index, const Step& step, sim::ScriptStep& script,
                            std::optional<std::uint8_t>& primary,
                            std::optional<std::uint8_t>& crashed_primary) {
  switch (step.kind) {
    case StepKind::partition:
      for (const DirectedLink& link : step.blocked) block(link, script);
      return {};
    case StepKind::disconnect:
      block({step.node, step.peer}, script);
      block({step.peer, step.node}, script);
      note(index, "disconnect runs as a partition of the pair on the simulator");
      return {};
    case StepKind::connect:
      heal(script);
      note(index, "connect lifts every partition on the simulator");
      return {};
    case StepKind::heal:
      heal(script);
      return {};
    case StepKind::link:
      for (const DirectedLink& link : step.links) {
        if (!step.impairment.delay) continue;
        const std::uint32_t fault =
            add(FaultClass::link_delay, sim::script_only, link.from, link.to);
        out.schedule.faults[fault].model = *step.impairment.delay;
        script.start.push_back(fault);
        delayed_links.push_back(link);
      }
      if (step.impairment.loss_percent > 0 || step.impairment.rate_bytes_per_second > 0) {
        note(index, "loss and rate limits apply on the real target only");
      }
      return {};
    case StepKind::crash:
      open_crashes[step.node] =
          add(FaultClass::node_crash, sim::script_only, step.node, other(step.node));
      script.start.push_back(*open_crashes[step.node]);
      if (primary == step.node) crashed_primary = primary, primary.reset();
      return {};
    case StepKind::restart:
      if (!open_crashes[step.node]) return Error{"internal: restart without a crash"};
      script.end.push_back(*open_crashes[step.node]);
      open_crashes[step.node].reset();
      return {};
    case StepKind::primary:
      if (!crashed_primary) {
        return Error{"steps[" + std::to_string(index) +
                     "]: the simulator's operator promotes only after the Primary crashed "
                     "(a switchover runs on the real target only)"};
      }
      note(index, "the simulator's operator promotes the first UpToDate survivor after node " +
                      std::to_string(*crashed_primary) + ", not necessarily node " +
                      std::to_string(step.node));
      primary = step.node;
      crashed_primary.reset();
      return {};
    case StepKind::secondary:
      return Error{"steps[" + std::to_string(index) +
                   "]: demoting the Primary runs on the real target only"};
    case StepKind::wait:
      script.condition = condition_of(step.condition);
      script.node = step.wait_node;
      script.timeout = Duration::from_ms(static_cast<std::int64_t>(step.timeout_ms));
      return {};
    default:  // check: the simulator's oracles run at the end
      return {};
  }
}

Status Translator::step(std::size_t index, const Step& step, std::optional<std::uint8_t>& primary,
                        std::optional<std::uint8_t>& crashed_primary) {
  const StepOperations range = plan.steps[index];
  if (step.kind == StepKind::write || step.kind == StepKind::read_verify) {
    std::string outcome = "operations " + std::to_string(range.first) + ".." +
                          std::to_string(range.first + range.count - 1);
    if (step.crash_node) {
      // A fault anchored on an operation: the node crashes with the writes before it in flight.
      const std::uint64_t at = range.first + step.crash_after - 1;
      open_crashes[*step.crash_node] =
          add(FaultClass::node_crash, at, *step.crash_node, other(*step.crash_node));
      // As SIGKILL on the real target lands a little after the last write was issued, the
      // crash comes up to two one-way link delays later (drawn from the seed): writes in flight
      // may have reached some peers and not others.
      const std::int64_t spread_ns = 2 * out.schedule.options.network.minimum_ns();
      out.schedule.faults[*open_crashes[*step.crash_node]].delay_ns =
          static_cast<std::int64_t>(crash_prng.below(static_cast<std::uint64_t>(spread_ns) + 1));
      if (primary == step.crash_node) crashed_primary = primary, primary.reset();
      outcome += ", node" + std::to_string(*step.crash_node) + " crashes at operation " +
                 std::to_string(at);
    }
    if (step.expect != Expect::ok) {
      note(index, "the expected outcome of each write is checked on the real target; the "
                  "simulator's own oracles judge these writes");
    }
    out.step_outcomes.push_back(outcome);
    return {};
  }
  if (range.first >= plan.operations.size()) {
    // After the last operation: the simulator's end of run heals every fault, restarts every
    // crashed node and runs its oracles.
    out.step_outcomes.push_back("after the last operation: the end-of-run heal and oracles");
    sim::ScriptStep ignored;  // still refuse what the simulator cannot express
    return scripted(index, step, ignored, primary, crashed_primary);
  }
  sim::ScriptStep& script = out.schedule.script.emplace_back();
  script.before_op = range.first;
  out.step_outcomes.push_back(step.kind == StepKind::check
                                  ? "the simulator's oracles run at the end of the run"
                                  : "before operation " + std::to_string(range.first));
  return scripted(index, step, script, primary, crashed_primary);
}

}  // namespace

Result<SimTranslation> translate_for_sim(const Scenario& scenario, std::uint64_t seed) {
  const OperationPlan plan = plan_operations(scenario, seed);
  if (plan.operations.empty()) return Error{"steps: the simulator needs at least one write"};
  Translator translator{scenario, plan, {}, {}, {}, {}, Prng::derive(seed, 0xc4a5)};
  translator.open_crashes.resize(scenario.cluster.nodes);
  sim::SimOptions& options = translator.out.schedule.options;
  options.seed = seed;
  options.nodes = scenario.cluster.nodes;
  options.protocol = scenario.cluster.protocol;
  options.volume_size_bytes = scenario.cluster.volume_size_bytes;
  options.crash_primary = false;
  options.faults = {};
  options.diskless_client = scenario.cluster.diskless_node.has_value();
  if (scenario.cluster.quorum == Quorum::majority) {
    options.quorum.quorum.kind = core::QuorumRule::Kind::majority;
    options.quorum.on_no_quorum = core::OnNoQuorum::io_error;
  }
  std::uint32_t queue_depth = 1;
  for (const Step& step : scenario.steps) queue_depth = std::max(queue_depth, step.queue_depth);
  options.workload.operations = plan.operations.size();
  options.workload.queue_depth_max = queue_depth;
  options.workload.queue_depth = queue_depth;
  options.workload.blocks_per_write_max = 1;
  // Time for the resyncs the scenario's last steps start (the liveness oracle still bounds them).
  options.settle_time = Duration::from_ms(2'000);
  std::vector<sim::OperationSpec> operations;
  for (const PlannedOperation& planned : plan.operations) {
    operations.push_back(sim::OperationSpec{
        planned.write ? sim::OperationKind::write : sim::OperationKind::read, planned.block, 1,
        false});
  }
  translator.out.schedule.operations = std::move(operations);
  std::optional<std::uint8_t> primary = 0;
  std::optional<std::uint8_t> crashed_primary;
  for (std::size_t index = 0; index < scenario.steps.size(); ++index) {
    if (Status status = translator.step(index, scenario.steps[index], primary, crashed_primary);
        !status.ok()) {
      return status.error();
    }
  }
  if (Status valid = sim::validate(options); !valid.ok()) return valid.error();
  return std::move(translator.out);
}

RunReport run_on_sim(const Scenario& scenario, std::uint64_t seed,
                     const std::function<void(const std::string&)>& trace) {
  RunReport report;
  report.scenario = scenario.name;
  report.target = "sim";
  report.seed = seed;
  Result<SimTranslation> translated = translate_for_sim(scenario, seed);
  if (!translated.ok()) {
    report.error = translated.error().message;
    return report;
  }
  const SimTranslation& translation = translated.value();
  report.notes = translation.notes;
  const sim::RunResult result = sim::run_schedule(translation.schedule, trace);
  for (std::size_t index = 0; index < scenario.steps.size(); ++index) {
    StepReport step;
    step.description = describe(scenario.steps[index]);
    step.executed = true;
    step.outcome = translation.step_outcomes[index];
    report.steps.push_back(step);
  }
  report.trace_hash = result.trace_hash;
  if (result.crashed) {
    report.notes.push_back(std::to_string(result.writes_in_flight_at_crash) +
                           " writes in flight when the Primary crashed, " +
                           std::to_string(result.resync_blocks) + " blocks resynced");
  }
  report.writes_acknowledged = result.workload.writes_acknowledged;
  report.writes_failed = result.workload.writes_failed;
  report.steps.back().seconds = result.sim_seconds;
  if (result.violations.empty()) {
    report.verdicts.push_back({"acknowledged-writes", true, "every read saw the latest tag"});
    report.verdicts.push_back({"liveness", true, "converged after the faults"});
  }
  // The simulator tolerates survivors that differ on writes never acknowledged (its oracle
  // documents why); a scenario's check asks for identical replicas, as the real target does.
  bool checks_identical = false;
  for (const Step& step : scenario.steps) {
    checks_identical = checks_identical || (step.kind == StepKind::check && step.check_identical);
  }
  if (checks_identical) {
    report.verdicts.push_back({"replicas-identical", result.divergent_blocks == 0,
                               std::to_string(result.divergent_blocks) +
                                   " blocks differ between UpToDate replicas at the end"});
  }
  for (const std::string& violation : result.violations) {
    report.verdicts.push_back({"simulator", false, violation});
  }
  return report;
}

}  // namespace ditto::faults
