// How the simulator tests print a run that broke an expectation: its seed and its violations.
#pragma once

#include <cstddef>
#include <limits>
#include <string>

#include "sim/simulation.h"

namespace ditto::sim {

// "seed S: N violations" and the first `max_violations` of them, one per line.
inline std::string describe(const RunResult& result,
                            std::size_t max_violations = std::numeric_limits<std::size_t>::max()) {
  std::string text = "seed " + std::to_string(result.seed) + ": " +
                     std::to_string(result.violation_count) + " violations";
  for (std::size_t index = 0; index < result.violations.size() && index < max_violations; ++index) {
    text += "\n  " + result.violations[index];
  }
  return text;
}

}  // namespace ditto::sim
