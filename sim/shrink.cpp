#include "sim/shrink.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include "core/assert.h"

namespace ditto::sim {
namespace {

using Clock = std::chrono::steady_clock;

// Removes operations [first, end) and moves the faults that were anchored on them.
Schedule without_operations(const Schedule& schedule, std::size_t first, std::size_t end) {
  Schedule smaller = schedule;
  auto& operations = *smaller.operations;
  operations.erase(operations.begin() + static_cast<std::ptrdiff_t>(first),
                   operations.begin() + static_cast<std::ptrdiff_t>(end));
  const std::uint64_t removed = end - first;
  for (FaultEvent& fault : smaller.faults) {
    if (fault.after_op >= end) {
      fault.after_op -= removed;
    } else if (fault.after_op >= first) {
      fault.after_op = first > 0 ? first - 1 : 0;
    }
    if (!operations.empty())
      fault.after_op = std::min<std::uint64_t>(fault.after_op, operations.size() - 1);
  }
  smaller.options.workload.operations = operations.size();
  return smaller;
}

}  // namespace

RunResult run_isolated(const Schedule& schedule) {
  int fds[2];
  if (::pipe(fds) != 0) return run_schedule(schedule);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);  // the assertion message comes through the pipe too
    const RunResult run = run_schedule(schedule);
    std::string text = "RESULT " + std::to_string(run.violation_count) + "\n";
    for (const std::string& violation : run.violations) text += "VIOLATION " + violation + "\n";
    for (std::size_t written = 0; written < text.size();) {
      const ssize_t result = ::write(fds[1], text.data() + written, text.size() - written);
      if (result <= 0) _exit(3);
      written += static_cast<std::size_t>(result);
    }
    _exit(0);
  }
  ::close(fds[1]);
  if (child < 0) {
    ::close(fds[0]);
    return run_schedule(schedule);
  }
  std::string output;
  char chunk[4096];
  for (ssize_t got; (got = ::read(fds[0], chunk, sizeof(chunk))) > 0;) {
    output.append(chunk, static_cast<std::size_t>(got));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  RunResult run;
  std::size_t position = 0;
  std::string assertion;
  while (position < output.size()) {
    const std::size_t end = std::min(output.find('\n', position), output.size());
    const std::string line = output.substr(position, end - position);
    position = end + 1;
    if (line.rfind("RESULT ", 0) == 0) run.violation_count = std::stoull(line.substr(7));
    if (line.rfind("VIOLATION ", 0) == 0) run.violations.push_back(line.substr(10));
    if (line.rfind("ASSERT", 0) == 0 && assertion.empty()) assertion = line;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // Keep the assertion's place in the text (not its seed suffix) as the failure kind.
    run.violation_count = 1;
    run.violations.assign(1,
                          "the simulation aborted: " + assertion.substr(0, assertion.find(" | ")));
  }
  return run;
}

namespace {

class Shrinker {
 public:
  Shrinker(Schedule schedule, double budget_seconds)
      : deadline_(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(budget_seconds))) {
    if (!schedule.operations) schedule.operations = draw_operations(schedule.options);
    result_.faults_before = schedule.faults.size();
    result_.operations_before = schedule.operations->size();
    result_.run = run_isolated(schedule);
    result_.runs = 1;
    kind_ = failure_kind(result_.run);
    DITTO_ASSERT(!kind_.empty());  // the caller passes a failing schedule
    result_.schedule = std::move(schedule);
  }

  bool out_of_time() const { return Clock::now() > deadline_; }

  // Keeps `candidate` if it fails the same way.
  bool attempt(const Schedule& candidate) {
    if (out_of_time()) return false;
    RunResult run = run_isolated(candidate);
    result_.runs += 1;
    if (failure_kind(run) != kind_) return false;
    result_.schedule = candidate;
    result_.run = std::move(run);
    return true;
  }

  // ddmin over the fault list, ending with single removals (1-minimal).
  bool shrink_faults() {
    std::size_t chunk = std::max<std::size_t>(result_.schedule.faults.size() / 2, 1);
    while (!result_.schedule.faults.empty()) {
      bool removed = false;
      for (std::size_t first = 0; first < result_.schedule.faults.size();) {
        Schedule candidate = result_.schedule;
        const std::size_t end = std::min(first + chunk, candidate.faults.size());
        candidate.faults.erase(candidate.faults.begin() + static_cast<std::ptrdiff_t>(first),
                               candidate.faults.begin() + static_cast<std::ptrdiff_t>(end));
        if (attempt(candidate)) {
          removed = true;
        } else {
          if (out_of_time()) return false;
          first = end;
        }
      }
      if (chunk == 1 && !removed) return true;
      if (!removed) chunk = std::max<std::size_t>(chunk / 2, 1);
    }
    return true;
  }

  bool shrink_operations() {
    std::size_t chunk = std::max<std::size_t>(result_.schedule.operations->size() / 2, 1);
    for (;;) {
      bool removed = false;
      for (std::size_t first = 0; first < result_.schedule.operations->size();) {
        const std::size_t size = result_.schedule.operations->size();
        const std::size_t end = std::min(first + chunk, size);
        if (end - first == size) break;  // keep at least one operation
        if (attempt(without_operations(result_.schedule, first, end))) {
          removed = true;
        } else {
          if (out_of_time()) return false;
          first = end;
        }
      }
      if (chunk == 1 && !removed) return true;
      if (!removed) chunk = std::max<std::size_t>(chunk / 2, 1);
    }
  }

  // Crash modifiers are options, not events: try turning them off.
  void shrink_modifiers() {
    for (const auto fault :
         {netem::FaultClass::disk_lost_unflushed, netem::FaultClass::disk_torn_write}) {
      if (result_.schedule.options.faults[netem::index(fault)] == 0) continue;
      Schedule candidate = result_.schedule;
      candidate.options.faults[netem::index(fault)] = 0;
      (void)attempt(candidate);
    }
  }

  ShrinkResult finish(bool complete) {
    result_.complete = complete;
    return std::move(result_);
  }

 private:
  Clock::time_point deadline_;
  std::string kind_;
  ShrinkResult result_;
};

}  // namespace

std::string failure_kind(const RunResult& result) {
  if (result.violations.empty()) return result.violation_count > 0 ? "violation" : "";
  const std::string& text = result.violations.front();
  std::string kind;
  const bool aborted = text.rfind("the simulation aborted", 0) == 0;
  for (const char character : aborted ? text : text.substr(0, text.find(':'))) {
    if (std::isdigit(static_cast<unsigned char>(character)) == 0) kind += character;
  }
  return kind;
}

ShrinkResult shrink(Schedule schedule, double time_budget_seconds) {
  Shrinker shrinker(std::move(schedule), time_budget_seconds);
  bool complete = shrinker.shrink_faults();
  complete = shrinker.shrink_operations() && complete;
  // Removing operations can make more faults removable.
  complete = shrinker.shrink_faults() && complete;
  shrinker.shrink_modifiers();
  return shrinker.finish(complete && !shrinker.out_of_time());
}

}  // namespace ditto::sim
