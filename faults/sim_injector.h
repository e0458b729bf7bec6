// Runs a scenario on the simulator: the scenario becomes a sim::Schedule (the planned operations,
// and one fault event per partitioned link, crash, link impairment), anchored on operation
// numbers so a step happens between the same two client operations on both targets. The same
// scenario and seed give the same trace hash.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/result.h"
#include "faults/scenario.h"
#include "sim/schedule.h"

namespace ditto::faults {

struct SimTranslation {
  sim::Schedule schedule;
  std::vector<std::string> notes;  // where the simulator approximates a step
  std::vector<std::string> step_outcomes;  // per step: what it became
};

// Fails for steps the simulator cannot express (protocol A/B, a switchover without a crash).
[[nodiscard]] Result<SimTranslation> translate_for_sim(const Scenario& scenario,
                                                      std::uint64_t seed);

// `trace` receives the run's story line by line (sim::TraceSink), if set.
RunReport run_on_sim(const Scenario& scenario, std::uint64_t seed,
                     const std::function<void(const std::string&)>& trace = {});

}  // namespace ditto::faults
