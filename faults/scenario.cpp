// Scenario names, the operation plan both targets issue, and run reports.
#include "faults/scenario.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/prng.h"

namespace ditto::faults {
namespace {
// The stream of a seed that places the scenario's writes.
constexpr std::uint64_t write_stream = 0xfa17;
}  // namespace

std::string_view name(StepKind kind) {
  switch (kind) {
    case StepKind::write: return "write";
    case StepKind::read_verify: return "read-verify";
    case StepKind::partition: return "partition";
    case StepKind::heal: return "heal";
    case StepKind::link: return "link";
    case StepKind::crash: return "crash";
    case StepKind::restart: return "restart";
    case StepKind::primary: return "primary";
    case StepKind::secondary: return "secondary";
    case StepKind::disconnect: return "disconnect";
    case StepKind::connect: return "connect";
    case StepKind::wait: return "wait";
    case StepKind::check: return "check";
  }
  return "?";
}

std::string_view name(WaitCondition condition) {
  switch (condition) {
    case WaitCondition::connected: return "connected";
    case WaitCondition::up_to_date: return "up-to-date";
    case WaitCondition::primary: return "primary";
    case WaitCondition::quorum_lost: return "quorum-lost";
  }
  return "?";
}

std::string describe(const Step& step) {
  std::ostringstream out;
  out << name(step.kind);
  switch (step.kind) {
    case StepKind::write:
      out << " " << step.operations << " ops in blocks " << step.first_block << ".."
          << step.first_block + step.blocks - 1 << " qd " << step.queue_depth;
      if (step.crash_node) out << ", crash node" << int{*step.crash_node} << " after "
                               << step.crash_after;
      if (step.expect == Expect::fail) out << " (expect failure)";
      if (step.expect == Expect::any) out << " (failures allowed)";
      break;
    case StepKind::partition:
      out << " " << step.partition_shape;
      for (const DirectedLink& link : step.blocked) {
        out << " " << int{link.from} << "->" << int{link.to};
      }
      break;
    case StepKind::link:
      for (const DirectedLink& link : step.links) {
        out << " " << int{link.from} << "->" << int{link.to};
      }
      if (step.impairment.delay) out << " delay " << netem::to_string(*step.impairment.delay);
      if (step.impairment.loss_percent > 0) out << " loss " << step.impairment.loss_percent << "%";
      if (step.impairment.rate_bytes_per_second > 0) {
        out << " rate " << step.impairment.rate_bytes_per_second / 1024 << " KiB/s";
      }
      break;
    case StepKind::crash:
    case StepKind::restart:
    case StepKind::primary:
    case StepKind::secondary:
      out << " node" << int{step.node};
      break;
    case StepKind::disconnect:
    case StepKind::connect:
      out << " node" << int{step.node} << " from node" << int{step.peer};
      break;
    case StepKind::wait:
      out << " until " << name(step.condition);
      if (step.condition == WaitCondition::primary ||
          step.condition == WaitCondition::quorum_lost) {
        out << " node" << int{step.wait_node};
      }
      out << " (" << step.timeout_ms << " ms)";
      break;
    case StepKind::check:
      if (step.check_acknowledged) out << " acknowledged-writes";
      if (step.check_identical) out << " replicas-identical";
      break;
    default:
      break;
  }
  return out.str();
}

OperationPlan plan_operations(const Scenario& scenario, std::uint64_t seed) {
  OperationPlan plan;
  Prng prng = Prng::derive(seed, write_stream);
  std::set<std::uint64_t> written;  // ordered: reads go in block order
  for (const Step& step : scenario.steps) {
    StepOperations range{plan.operations.size(), 0};
    if (step.kind == StepKind::write) {
      const std::uint32_t count = step.crash_node ? step.crash_after : step.operations;
      for (std::uint32_t index = 0; index < count; ++index) {
        PlannedOperation operation;
        operation.block = step.first_block + prng.below(step.blocks);
        operation.tag = plan.operations.size() + 1;
        written.insert(operation.block);
        plan.operations.push_back(operation);
      }
    } else if (step.kind == StepKind::read_verify) {
      for (const std::uint64_t block : written) {
        plan.operations.push_back(PlannedOperation{false, block, 0});
      }
    }
    range.count = plan.operations.size() - range.first;
    plan.steps.push_back(range);
  }
  return plan;
}

bool RunReport::passed() const {
  if (!error.empty()) return false;
  for (const StepReport& step : steps) {
    if (step.failed) return false;
  }
  for (const Verdict& verdict : verdicts) {
    if (!verdict.held) return false;
  }
  return true;
}

std::string to_json(const RunReport& report) {
  nlohmann::json steps = nlohmann::json::array();
  for (const StepReport& step : report.steps) {
    steps.push_back({{"step", step.description}, {"executed", step.executed},
                     {"seconds", step.seconds}, {"outcome", step.outcome},
                     {"failed", step.failed}});
  }
  nlohmann::json verdicts = nlohmann::json::array();
  for (const Verdict& verdict : report.verdicts) {
    verdicts.push_back(
        {{"oracle", verdict.oracle}, {"held", verdict.held}, {"detail", verdict.detail}});
  }
  const nlohmann::json document{{"scenario", report.scenario},
                                {"target", report.target},
                                {"seed", report.seed},
                                {"passed", report.passed()},
                                {"error", report.error},
                                {"steps", steps},
                                {"verdicts", verdicts},
                                {"notes", report.notes},
                                {"trace_hash", report.trace_hash},
                                {"writes_acknowledged", report.writes_acknowledged},
                                {"writes_failed", report.writes_failed}};
  return document.dump(2);
}

std::string to_text(const RunReport& report) {
  std::ostringstream out;
  out << "scenario " << report.scenario << " on " << report.target << ", seed " << report.seed
      << ": " << (report.passed() ? "PASSED" : "FAILED") << "\n";
  if (!report.error.empty()) out << "  error: " << report.error << "\n";
  for (std::size_t index = 0; index < report.steps.size(); ++index) {
    const StepReport& step = report.steps[index];
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%8.3f s", step.seconds);
    out << "  [" << index << "] " << (step.failed ? "FAIL " : step.executed ? "ok   " : "skip ")
        << seconds << "  " << step.description;
    if (!step.outcome.empty()) out << " -- " << step.outcome;
    out << "\n";
  }
  for (const Verdict& verdict : report.verdicts) {
    out << "  oracle " << verdict.oracle << ": " << (verdict.held ? "held" : "VIOLATED");
    if (!verdict.detail.empty()) out << " (" << verdict.detail << ")";
    out << "\n";
  }
  out << "  writes acknowledged " << report.writes_acknowledged << ", failed "
      << report.writes_failed << "\n";
  for (const std::string& note : report.notes) out << "  note: " << note << "\n";
  if (!report.trace_hash.empty()) out << "  trace hash " << report.trace_hash << "\n";
  return out.str();
}

}  // namespace ditto::faults
