// ditto-faults: runs fault scenarios (docs/faults.md) on the simulator or on real dittod daemons.
//   ditto-faults run --target sim|real SCENARIO.json [--seed N] [--json] [--keep-dir]
//   ditto-faults campaign --target sim --seeds N SCENARIO.json...
// Exit status: 0 every oracle held, 1 a step failed or an oracle was violated, 2 bad input.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "faults/real_injector.h"
#include "faults/scenario.h"
#include "faults/sim_injector.h"

namespace {

using namespace ditto::faults;

bool load(const std::string& path, Scenario& scenario) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "ditto-faults: cannot read " << path << "\n";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  ditto::Result<Scenario> loaded = scenario_from_json(text.str());
  if (!loaded.ok()) {
    std::cerr << "ditto-faults: " << path << ": " << loaded.error().message << "\n";
    return false;
  }
  scenario = std::move(loaded).value();
  return true;
}

std::string replay_command(const std::string& target, const std::string& path,
                           std::uint64_t seed) {
  return "ditto-faults run --target " + target + " " + path + " --seed " + std::to_string(seed) +
         (target == "real" ? " --keep-dir" : "");
}

int run(const std::string& target, const std::string& path, std::optional<std::uint64_t> seed,
        bool as_json, bool keep_directory, bool trace) {
  Scenario scenario;
  if (!load(path, scenario)) return 2;
  const std::uint64_t chosen = seed.value_or(scenario.seed);
  RunReport report;
  if (target == "sim") {
    std::function<void(const std::string&)> sink;
    if (trace) sink = [](const std::string& line) { std::cerr << line << "\n"; };
    report = run_on_sim(scenario, chosen, sink);
  } else {
    RealOptions options;
    options.keep_directory = keep_directory;
    if (!as_json) options.progress = [](const std::string& line) { std::cerr << line << "\n"; };
    report = run_on_real(scenario, chosen, options);
  }
  std::cout << (as_json ? to_json(report) + "\n" : to_text(report));
  if (report.passed()) return 0;
  std::cerr << "replay: " << replay_command(target, path, chosen) << "\n";
  return 1;
}

// Every scenario with seeds first..first+count-1 on the simulator, each twice (the trace hashes
// must match).
int campaign(const std::vector<std::string>& paths, std::uint64_t first, std::uint64_t count) {
  std::uint64_t failures = 0;
  std::uint64_t runs = 0;
  for (const std::string& path : paths) {
    Scenario scenario;
    if (!load(path, scenario)) return 2;
    for (std::uint64_t seed = first; seed < first + count; ++seed) {
      const RunReport report = run_on_sim(scenario, seed);
      const RunReport again = run_on_sim(scenario, seed);
      runs += 1;
      std::string problem;
      if (!report.passed()) {
        problem = report.error;
        for (const Verdict& verdict : report.verdicts) {
          if (!verdict.held) problem = verdict.oracle + ": " + verdict.detail;
        }
      } else if (report.trace_hash != again.trace_hash) {
        problem = "not deterministic: trace hashes " + report.trace_hash + " and " +
                  again.trace_hash;
      }
      if (problem.empty()) continue;
      failures += 1;
      std::cout << scenario.name << " seed " << seed << ": " << problem << "\n  replay: "
                << replay_command("sim", path, seed) << "\n";
    }
  }
  std::cout << runs << " runs, " << failures << " failing\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ditto-faults: fault scenarios on the simulator or on real dittod daemons"};
  app.require_subcommand(1);
  std::string target = "sim";
  std::string scenario_path;
  std::uint64_t seed = 0;
  bool as_json = false;
  bool keep_directory = false;
  CLI::App* run_command = app.add_subcommand("run", "Run one scenario");
  run_command->add_option("--target", target, "sim or real")
      ->check(CLI::IsMember({"sim", "real"}));
  run_command->add_option("scenario", scenario_path, "Scenario file (JSON)")->required();
  CLI::Option* seed_option =
      run_command->add_option("--seed", seed, "Seed (default: the scenario's)");
  run_command->add_flag("--json", as_json, "Print the report as JSON");
  bool trace = false;
  run_command->add_flag("--trace", trace, "Simulator: the run's story on standard error");
  run_command->add_flag("--keep-dir", keep_directory,
                        "Real target: keep disks, configurations and daemon logs");

  std::vector<std::string> paths;
  std::uint64_t seeds = 10;
  std::uint64_t first_seed = 1;
  std::string campaign_target = "sim";
  CLI::App* campaign_command =
      app.add_subcommand("campaign", "Run scenarios over many seeds on the simulator");
  campaign_command->add_option("--target", campaign_target, "sim (the only campaign target)")
      ->check(CLI::IsMember({"sim"}));
  campaign_command->add_option("--seeds", seeds, "Seeds per scenario")
      ->check(CLI::Range(1, 1'000'000));
  campaign_command->add_option("--first-seed", first_seed, "First seed");
  campaign_command->add_option("scenarios", paths, "Scenario files")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : 2;
  }
  if (*run_command) {
    std::optional<std::uint64_t> chosen;
    if (seed_option->count() > 0) chosen = seed;
    return run(target, scenario_path, chosen, as_json, keep_directory, trace);
  }
  return campaign(paths, first_seed, seeds);
}
