// Seed campaigns: many independent single-threaded simulations, each run twice (the trace
// hashes must match), spread over worker processes. Failing seeds get a schedule file, a shrunk
// schedule and a replay command.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/options.h"
#include "sim/simulation.h"

namespace ditto::sim {

struct CampaignOptions {
  SimOptions base;     // the options of every seed (but the seed)
  bool swarm = false;  // per seed: swarm_options(seed, base.workload.operations)
  bool swarm_quorum = false;  // with swarm: some clusters run with quorum (swarm_options)
  bool swarm_reads = false;   // with swarm: a read-balancing policy per seed (swarm_options)
  bool swarm_diskless = false;
  bool swarm_congestion = false;  // with swarm: some clusters run protocol A with congestion  // with swarm: some clusters have a diskless client (swarm_options)
  std::uint64_t seeds = 1;
  std::uint64_t first_seed = 1;
  std::uint32_t jobs = 1;      // worker processes
  double shrink_seconds = 20;  // per failing seed; 0: do not shrink
  std::string schedule_directory = ".";
  bool progress = false;  // a progress line on stderr
};

struct SeedOutcome {
  std::uint64_t seed = 0;
  std::uint64_t violation_count = 0;
  std::vector<std::string> violations;  // the first few
  std::string replay;                   // the command that replays the seed
  std::string schedule_file;            // written when it failed
  std::string shrunk_file;              // written when shrinking found a smaller schedule
  std::size_t shrunk_faults = 0;
  std::size_t shrunk_operations = 0;
  FaultCounters faults_fired{};
  double sim_node_seconds = 0;
  double cpu_seconds = 0;
};

struct CampaignSummary {
  std::uint64_t seeds = 0;
  std::uint64_t violations = 0;
  std::vector<SeedOutcome> failures;
  std::array<std::uint64_t, netem::fault_class_count> runs_with_fault{};
  double sim_node_seconds = 0;
  double cpu_seconds = 0;
  double wall_seconds = 0;
};

// Runs one seed (twice) and, if it fails, writes its schedule and shrinks it.
SeedOutcome run_seed(const CampaignOptions& options, std::uint64_t seed);

CampaignSummary run_campaign(const CampaignOptions& options);

std::string summary_json(const CampaignOptions& options, const CampaignSummary& summary);
std::string summary_text(const CampaignOptions& options, const CampaignSummary& summary);

// Writes `text` to `path`; the error names the path.
[[nodiscard]] Status write_file(const std::string& path, const std::string& text);
[[nodiscard]] Result<std::string> read_file(const std::string& path);

}  // namespace ditto::sim
