// ditto-sim: run one simulated scenario for a seed, or a campaign of seeds.
//
//   ditto-sim run --seed S --nodes N --ops M [--json]
//   ditto-sim campaign --seeds K [--first-seed S] [--nodes N] [--ops M] [--json]
//
// Exit status: 0 no violations, 1 violations (the output names the replay command), 2 bad
// arguments.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/simulation.h"

namespace {

using ditto::sim::RunResult;
using ditto::sim::SimOptions;

constexpr int exit_violations = 1;
constexpr int exit_usage = 2;
constexpr std::size_t violations_shown_max = 5;

nlohmann::json to_json(const RunResult& result) {
  nlohmann::json json;
  json["seed"] = result.seed;
  json["nodes"] = result.nodes;
  json["ops"] = result.operations;
  json["sim_seconds"] = result.sim_seconds;
  json["wall_seconds"] = result.wall_seconds;
  json["trace_hash"] = result.trace_hash;
  json["events"] = result.events;
  json["messages_delivered"] = result.messages_delivered;
  json["messages_dropped"] = result.messages_dropped;
  json["writes_acknowledged"] = result.workload.writes_acknowledged;
  json["reads_checked"] = result.workload.reads_checked;
  json["operations_abandoned"] = result.workload.abandoned;
  json["crashed"] = result.crashed;
  json["writes_in_flight_at_crash"] = result.writes_in_flight_at_crash;
  json["promoted"] = result.promoted;
  json["divergent_blocks"] = result.divergent_blocks;
  json["violation_count"] = result.violation_count;
  json["violations"] = result.violations;
  return json;
}

void print_text(const RunResult& result) {
  const double speed = result.wall_seconds > 0 ? result.sim_seconds / result.wall_seconds : 0;
  std::printf("seed %llu, %u nodes, %llu ops\n", static_cast<unsigned long long>(result.seed),
              result.nodes, static_cast<unsigned long long>(result.operations));
  std::printf("simulated %.6f s in %.3f s wall (%.1fx), %llu events\n", result.sim_seconds,
              result.wall_seconds, speed, static_cast<unsigned long long>(result.events));
  std::printf("writes acknowledged %llu, reads checked %llu, abandoned at crash %llu\n",
              static_cast<unsigned long long>(result.workload.writes_acknowledged),
              static_cast<unsigned long long>(result.workload.reads_checked),
              static_cast<unsigned long long>(result.workload.abandoned));
  if (result.crashed) {
    std::printf(
        "crash of node 0 with %llu writes in flight (disk kept %u, lost %u); "
        "failover promotion %s; divergent blocks between survivors %llu\n",
        static_cast<unsigned long long>(result.writes_in_flight_at_crash),
        result.crash_disk.writes_kept, result.crash_disk.writes_lost,
        result.promoted ? "succeeded" : "FAILED",
        static_cast<unsigned long long>(result.divergent_blocks));
  }
  std::printf("trace hash %s\n", result.trace_hash.c_str());
  std::printf("violations %llu\n", static_cast<unsigned long long>(result.violation_count));
  for (std::size_t index = 0; index < result.violations.size() && index < violations_shown_max;
       ++index) {
    std::printf("  %s\n", result.violations[index].c_str());
  }
}

int run_command(const SimOptions& options, bool json) {
  const RunResult result = ditto::sim::run_simulation(options);
  if (json) {
    std::printf("%s\n", to_json(result).dump().c_str());
  } else {
    print_text(result);
  }
  if (result.violation_count == 0) return 0;
  std::fprintf(json ? stderr : stdout, "FAILED: replay with: %s\n",
               ditto::sim::replay_command(options).c_str());
  return exit_violations;
}

int campaign_command(SimOptions options, std::uint64_t seeds, std::uint64_t first_seed, bool json) {
  std::vector<std::uint64_t> failing;
  std::uint64_t violations = 0;
  double sim_seconds = 0;
  double wall_seconds = 0;
  nlohmann::json failures = nlohmann::json::array();
  for (std::uint64_t index = 0; index < seeds; ++index) {
    options.seed = first_seed + index;
    const RunResult first = ditto::sim::run_simulation(options);
    const RunResult second = ditto::sim::run_simulation(options);
    std::vector<std::string> problems = first.violations;
    std::uint64_t count = first.violation_count;
    if (first.trace_hash != second.trace_hash) {
      problems.push_back("non-determinism: trace hash " + first.trace_hash + " then " +
                         second.trace_hash);
      count += 1;
    }
    sim_seconds += first.sim_seconds + second.sim_seconds;
    wall_seconds += first.wall_seconds + second.wall_seconds;
    if (count == 0) continue;
    violations += count;
    failing.push_back(options.seed);
    failures.push_back({{"seed", options.seed},
                        {"violations", problems},
                        {"replay", ditto::sim::replay_command(options)}});
    if (!json) {
      std::printf("seed %llu: %llu violations, first: %s\n  replay with: %s\n",
                  static_cast<unsigned long long>(options.seed),
                  static_cast<unsigned long long>(count), problems.front().c_str(),
                  ditto::sim::replay_command(options).c_str());
    }
  }
  if (json) {
    nlohmann::json summary{{"seeds", seeds},
                           {"first_seed", first_seed},
                           {"nodes", options.nodes},
                           {"ops", options.workload.operations},
                           {"violations", violations},
                           {"failing_seeds", failing},
                           {"failures", failures},
                           {"sim_seconds", sim_seconds},
                           {"wall_seconds", wall_seconds}};
    std::printf("%s\n", summary.dump().c_str());
  } else {
    std::printf(
        "campaign: %llu seeds from %llu (each run twice), %u nodes, %llu ops: "
        "%zu failing, %llu violations; simulated %.3f s in %.3f s wall\n",
        static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(first_seed),
        options.nodes, static_cast<unsigned long long>(options.workload.operations), failing.size(),
        static_cast<unsigned long long>(violations), sim_seconds, wall_seconds);
  }
  return failing.empty() ? 0 : exit_violations;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ditto-sim: deterministic simulation of a ditto cluster"};
  app.require_subcommand(1);
  SimOptions options;
  bool json = false;
  std::uint64_t seeds = 0;
  std::uint64_t first_seed = 1;

  CLI::App* run = app.add_subcommand("run", "run one seed: failover scenario plus oracle");
  run->add_option("--seed", options.seed, "the seed (every random choice derives from it)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  run->add_option("--nodes", options.nodes, "nodes in the cluster, 2..5")->capture_default_str();
  run->add_option("--ops", options.workload.operations, "client operations in total")
      ->capture_default_str();
  run->add_flag("--json", json, "print one JSON object");

  CLI::App* campaign = app.add_subcommand("campaign", "run many seeds, each twice");
  campaign->add_option("--seeds", seeds, "how many seeds")->required();
  campaign->add_option("--first-seed", first_seed, "the first seed")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  campaign->add_option("--nodes", options.nodes, "nodes in the cluster, 2..5")
      ->capture_default_str();
  campaign->add_option("--ops", options.workload.operations, "client operations per seed")
      ->capture_default_str();
  campaign->add_flag("--json", json, "print one JSON summary object");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    (void)app.exit(error);
    return exit_usage;
  }
  if (ditto::Status status = ditto::sim::validate(options); !status) {
    std::fprintf(stderr, "ditto-sim: %s\n", status.error().message.c_str());
    return exit_usage;
  }
  if (campaign->parsed()) {
    if (seeds == 0) {
      std::fprintf(stderr, "ditto-sim: --seeds must be at least 1\n");
      return exit_usage;
    }
    return campaign_command(options, seeds, first_seed, json);
  }
  return run_command(options, json);
}
