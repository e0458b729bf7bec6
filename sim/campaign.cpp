// Campaigns run in worker processes, not threads: each simulation is single-threaded and
// independent, and the assertion context (the seed printed on a failed DITTO_ASSERT) is
// per process.
#include "sim/campaign.h"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "sim/shrink.h"

namespace ditto::sim {
namespace {

using nlohmann::json;
constexpr std::size_t violations_kept = 5;

double cpu_seconds_now() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

SimOptions seed_options(const CampaignOptions& options, std::uint64_t seed) {
  if (options.swarm) {
    SimOptions swarm =
        swarm_options(seed, options.base.workload.operations, options.base.swarm_excluded,
                      options.swarm_quorum, options.swarm_reads, options.swarm_diskless,
                      options.swarm_congestion);
    const std::uint64_t operations = swarm.workload.operations;
    swarm.workload = options.base.workload;  // the workload's shape stays the caller's
    swarm.workload.operations = operations;
    swarm.csums = options.base.csums;  // not drawn: the caller's choice
    swarm.csums_after_crash_only = options.base.csums_after_crash_only;
    return swarm;
  }
  SimOptions seeded = options.base;
  seeded.seed = seed;
  return seeded;
}

json outcome_json(const SeedOutcome& outcome) {
  json fired = json::array();
  for (const std::uint64_t count : outcome.faults_fired) fired.push_back(count);
  return json{{"seed", outcome.seed},
              {"violation_count", outcome.violation_count},
              {"violations", outcome.violations},
              {"replay", outcome.replay},
              {"schedule", outcome.schedule_file},
              {"shrunk", outcome.shrunk_file},
              {"shrunk_faults", outcome.shrunk_faults},
              {"shrunk_operations", outcome.shrunk_operations},
              {"fired", fired},
              {"sim_node_seconds", outcome.sim_node_seconds},
              {"cpu_seconds", outcome.cpu_seconds}};
}

SeedOutcome outcome_from_json(const json& value) {
  SeedOutcome outcome;
  outcome.seed = value.at("seed").get<std::uint64_t>();
  outcome.violation_count = value.at("violation_count").get<std::uint64_t>();
  outcome.violations = value.at("violations").get<std::vector<std::string>>();
  outcome.replay = value.at("replay").get<std::string>();
  outcome.schedule_file = value.at("schedule").get<std::string>();
  outcome.shrunk_file = value.at("shrunk").get<std::string>();
  outcome.shrunk_faults = value.at("shrunk_faults").get<std::size_t>();
  outcome.shrunk_operations = value.at("shrunk_operations").get<std::size_t>();
  const json& fired = value.at("fired");
  for (std::size_t index = 0; index < outcome.faults_fired.size() && index < fired.size();
       ++index) {
    outcome.faults_fired[index] = fired[index].get<std::uint64_t>();
  }
  outcome.sim_node_seconds = value.at("sim_node_seconds").get<double>();
  outcome.cpu_seconds = value.at("cpu_seconds").get<double>();
  return outcome;
}

void add(CampaignSummary& summary, SeedOutcome outcome) {
  summary.seeds += 1;
  summary.sim_node_seconds += outcome.sim_node_seconds;
  summary.cpu_seconds += outcome.cpu_seconds;
  for (std::size_t index = 0; index < outcome.faults_fired.size(); ++index) {
    if (outcome.faults_fired[index] > 0) summary.runs_with_fault[index] += 1;
  }
  if (outcome.violation_count == 0) return;
  summary.violations += outcome.violation_count;
  summary.failures.push_back(std::move(outcome));
}

void progress_line(const CampaignOptions& options, const CampaignSummary& summary) {
  if (!options.progress) return;
  std::fprintf(stderr, "\r%llu/%llu seeds, %zu failing",
               static_cast<unsigned long long>(summary.seeds),
               static_cast<unsigned long long>(options.seeds), summary.failures.size());
  std::fflush(stderr);
}

// A worker runs seeds first_seed + start, + start + stride, ... and writes one JSON line each.
[[noreturn]] void worker_main(const CampaignOptions& options, std::uint64_t start,
                              std::uint64_t stride, int fd) {
  for (std::uint64_t index = start; index < options.seeds; index += stride) {
    const std::string line =
        outcome_json(run_seed(options, options.first_seed + index)).dump() + "\n";
    std::size_t written = 0;
    while (written < line.size()) {
      const ssize_t result = ::write(fd, line.data() + written, line.size() - written);
      if (result <= 0) _exit(3);
      written += static_cast<std::size_t>(result);
    }
  }
  ::close(fd);
  _exit(0);
}

struct Worker {
  pid_t pid = -1;
  int fd = -1;
  std::uint64_t next = 0;  // index of the seed it is running
  std::string buffer;
};

bool start_worker(const CampaignOptions& options, Worker& worker) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(fds[0]);
    worker_main(options, worker.next, options.jobs, fds[1]);
  }
  ::close(fds[1]);
  if (child < 0) {
    ::close(fds[0]);
    return false;
  }
  worker.pid = child;
  worker.fd = fds[0];
  return true;
}

// A worker that died (a DITTO_ASSERT in core or sim aborts the process) failed on its current
// seed: record it with its schedule and go on with a new worker after it.
void worker_died(const CampaignOptions& options, Worker& worker, int status,
                 CampaignSummary& summary) {
  const std::uint64_t seed = options.first_seed + worker.next;
  SeedOutcome outcome;
  outcome.seed = seed;
  outcome.violation_count = 1;
  outcome.violations.push_back("the simulation aborted (" +
                               (WIFSIGNALED(status)
                                    ? "signal " + std::to_string(WTERMSIG(status))
                                    : "exit " + std::to_string(WEXITSTATUS(status))) +
                               "): a DITTO_ASSERT failed, see its message on stderr");
  const SimOptions seeded = seed_options(options, seed);
  outcome.replay = replay_command(seeded);
  const std::string base = options.schedule_directory + "/ditto-sim-seed-" + std::to_string(seed);
  const Schedule schedule = make_schedule(seeded, true);
  if (write_file(base + ".json", to_json(schedule)).ok()) outcome.schedule_file = base + ".json";
  if (options.shrink_seconds > 0) {
    const ShrinkResult shrunk = shrink(schedule, options.shrink_seconds);
    outcome.shrunk_faults = shrunk.schedule.faults.size();
    outcome.shrunk_operations = shrunk.schedule.operations->size();
    if (write_file(base + ".min.json", to_json(shrunk.schedule)).ok()) {
      outcome.shrunk_file = base + ".min.json";
    }
  }
  add(summary, std::move(outcome));
  worker.next += options.jobs;
}

void read_worker(const CampaignOptions& options, Worker& worker, CampaignSummary& summary) {
  char chunk[65536];
  const ssize_t got = ::read(worker.fd, chunk, sizeof(chunk));
  if (got > 0) {
    worker.buffer.append(chunk, static_cast<std::size_t>(got));
    for (std::size_t end; (end = worker.buffer.find('\n')) != std::string::npos;) {
      const json line = json::parse(worker.buffer.substr(0, end), nullptr, false);
      worker.buffer.erase(0, end + 1);
      if (!line.is_discarded()) add(summary, outcome_from_json(line));
      worker.next += options.jobs;
      progress_line(options, summary);
    }
    return;
  }
  ::close(worker.fd);
  worker.fd = -1;
  int status = 0;
  ::waitpid(worker.pid, &status, 0);
  worker.pid = -1;
  const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (clean || worker.next >= options.seeds) return;
  worker_died(options, worker, status, summary);
  progress_line(options, summary);
  worker.buffer.clear();
  if (worker.next < options.seeds) (void)start_worker(options, worker);
}

void run_parallel(const CampaignOptions& options, CampaignSummary& summary) {
  std::vector<Worker> workers(std::min<std::uint64_t>(options.jobs, options.seeds));
  for (std::size_t index = 0; index < workers.size(); ++index) {
    workers[index].next = index;
    (void)start_worker(options, workers[index]);
  }
  for (;;) {
    std::vector<pollfd> polls;
    std::vector<std::size_t> owners;
    for (std::size_t index = 0; index < workers.size(); ++index) {
      if (workers[index].fd < 0) continue;
      polls.push_back(pollfd{workers[index].fd, POLLIN, 0});
      owners.push_back(index);
    }
    if (polls.empty()) return;
    if (::poll(polls.data(), polls.size(), -1) < 0) return;
    for (std::size_t index = 0; index < polls.size(); ++index) {
      if (polls[index].revents != 0) read_worker(options, workers[owners[index]], summary);
    }
  }
}

}  // namespace

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Error{"cannot write " + path};
  return Status::success();
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{"cannot read schedule file " + path};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

SeedOutcome run_seed(const CampaignOptions& options, std::uint64_t seed) {
  const double cpu_start = cpu_seconds_now();
  const SimOptions seeded = seed_options(options, seed);
  const RunResult first = run_simulation(seeded);
  const RunResult second = run_simulation(seeded);
  SeedOutcome outcome;
  outcome.seed = seed;
  outcome.replay = replay_command(seeded);
  outcome.faults_fired = first.faults_fired;
  outcome.violation_count = first.violation_count;
  for (std::size_t index = 0; index < first.violations.size() && index < violations_kept; ++index) {
    outcome.violations.push_back(first.violations[index]);
  }
  if (first.trace_hash != second.trace_hash) {
    outcome.violations.push_back("non-determinism: trace hash " + first.trace_hash + " then " +
                                 second.trace_hash);
    outcome.violation_count += 1;
  }
  outcome.sim_node_seconds = 2 * first.sim_seconds * first.nodes;
  if (first.violation_count > 0) {
    const Schedule schedule = make_schedule(seeded, true);
    const std::string base = options.schedule_directory + "/ditto-sim-seed-" + std::to_string(seed);
    if (write_file(base + ".json", to_json(schedule)).ok()) outcome.schedule_file = base + ".json";
    if (options.shrink_seconds > 0) {
      const ShrinkResult shrunk = shrink(schedule, options.shrink_seconds);
      outcome.shrunk_faults = shrunk.schedule.faults.size();
      outcome.shrunk_operations = shrunk.schedule.operations->size();
      if (write_file(base + ".min.json", to_json(shrunk.schedule)).ok()) {
        outcome.shrunk_file = base + ".min.json";
      }
    }
  }
  outcome.cpu_seconds = cpu_seconds_now() - cpu_start;
  return outcome;
}

CampaignSummary run_campaign(const CampaignOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  CampaignSummary summary;
  run_parallel(options, summary);
  if (options.progress) std::fprintf(stderr, "\n");
  std::sort(summary.failures.begin(), summary.failures.end(),
            [](const SeedOutcome& a, const SeedOutcome& b) { return a.seed < b.seed; });
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_start;
  summary.wall_seconds = wall.count();
  return summary;
}

std::string summary_json(const CampaignOptions& options, const CampaignSummary& summary) {
  json fired = json::object();
  for (std::size_t index = 0; index < netem::fault_class_count; ++index) {
    fired[std::string(netem::name(static_cast<netem::FaultClass>(index)))] =
        summary.runs_with_fault[index];
  }
  json failures = json::array();
  std::vector<std::uint64_t> failing;
  for (const SeedOutcome& outcome : summary.failures) {
    failing.push_back(outcome.seed);
    json entry = outcome_json(outcome);
    entry.erase("fired");
    failures.push_back(entry);
  }
  const double speed = summary.cpu_seconds > 0 ? summary.sim_node_seconds / summary.cpu_seconds : 0;
  return json{{"seeds", summary.seeds},
              {"first_seed", options.first_seed},
              {"swarm", options.swarm},
              {"jobs", options.jobs},
              {"violations", summary.violations},
              {"failing_seeds", failing},
              {"failures", failures},
              {"faults_fired", fired},
              {"sim_node_seconds", summary.sim_node_seconds},
              {"cpu_seconds", summary.cpu_seconds},
              {"wall_seconds", summary.wall_seconds},
              {"sim_node_seconds_per_cpu_second", speed}}
      .dump();
}

std::string summary_text(const CampaignOptions& options, const CampaignSummary& summary) {
  std::string text;
  for (const SeedOutcome& outcome : summary.failures) {
    text += "seed " + std::to_string(outcome.seed) + ": " +
            std::to_string(outcome.violation_count) + " violations, first: " +
            (outcome.violations.empty() ? std::string("?") : outcome.violations.front()) + "\n";
    text += "  replay with: " + outcome.replay + "\n";
    if (!outcome.schedule_file.empty()) {
      text += "  or: ditto-sim replay " + outcome.schedule_file + "\n";
    }
    if (!outcome.shrunk_file.empty()) {
      text += "  shrunk to " + std::to_string(outcome.shrunk_faults) + " faults and " +
              std::to_string(outcome.shrunk_operations) + " operations: ditto-sim replay " +
              outcome.shrunk_file + "\n";
    }
  }
  text += "faults fired (runs):";
  for (std::size_t index = 0; index < netem::fault_class_count; ++index) {
    if (summary.runs_with_fault[index] == 0) continue;
    text += " " + std::string(netem::name(static_cast<netem::FaultClass>(index))) + "=" +
            std::to_string(summary.runs_with_fault[index]);
  }
  const double speed = summary.cpu_seconds > 0 ? summary.sim_node_seconds / summary.cpu_seconds : 0;
  char line[256];
  std::snprintf(line, sizeof(line),
                "\ncampaign: %llu seeds from %llu (each run twice)%s, %u jobs: %zu failing, "
                "%llu violations; %.1f simulated node-seconds per CPU-second, %.3f s wall\n",
                static_cast<unsigned long long>(summary.seeds),
                static_cast<unsigned long long>(options.first_seed), options.swarm ? ", swarm" : "",
                options.jobs, summary.failures.size(),
                static_cast<unsigned long long>(summary.violations), speed, summary.wall_seconds);
  return text + line;
}

}  // namespace ditto::sim
