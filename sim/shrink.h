// Shrinking a failing schedule (simulation-anchors.md G3): remove fault events and client
// operations while the same kind of failure persists, until no single fault can be removed
// (1-minimal in faults; operations are removed in chunks and then one by one while time lasts).
#pragma once

#include <cstdint>
#include <string>

#include "sim/schedule.h"
#include "sim/simulation.h"

namespace ditto::sim {

// The kind of a run's first violation: its text up to the first ':' without digits, e.g.
// "silent divergence" or "final disk of node (UpToDate)". Empty when the run passed.
std::string failure_kind(const RunResult& result);

struct ShrinkResult {
  Schedule schedule;       // the smallest failing schedule found
  RunResult run;           // its run
  std::uint64_t runs = 0;  // simulations tried
  bool complete = false;   // every single removal was tried (else the time ran out)
  std::size_t faults_before = 0;
  std::size_t operations_before = 0;
};

// Runs `schedule` in a child process: a failed DITTO_ASSERT (which aborts the process) comes
// back as the violation "the simulation aborted: ASSERT failed: ...". Only violations return.
RunResult run_isolated(const Schedule& schedule);

// `schedule` must fail; its operations are materialized first if they are not. Stops trying
// new removals after `time_budget_seconds` of wall time.
ShrinkResult shrink(Schedule schedule, double time_budget_seconds);

}  // namespace ditto::sim
