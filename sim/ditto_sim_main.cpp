// ditto-sim: run one simulated scenario, replay or shrink a schedule file, or run a campaign.
//
//   ditto-sim run --seed S [--nodes N] [--ops M] [--faults LIST | --swarm] [--json]
//   ditto-sim replay FILE [--json]
//   ditto-sim shrink FILE [--out FILE] [--seconds T]
//   ditto-sim campaign --seeds K [--first-seed S] [--jobs J] [--swarm | --faults LIST] [--json]
//
// Exit status: 0 no violations, 1 violations (the output names the replay commands), 2 bad
// arguments or an unreadable schedule file.
#include <malloc.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/campaign.h"
#include "sim/shrink.h"
#include "sim/simulation.h"

namespace {

using ditto::sim::RunResult;
using ditto::sim::Schedule;
using ditto::sim::SimOptions;

constexpr int exit_violations = 1;
constexpr int exit_usage = 2;
constexpr std::size_t violations_shown_max = 5;

nlohmann::json to_json(const RunResult& result) {
  nlohmann::json fired = nlohmann::json::object();
  for (std::size_t index = 0; index < ditto::netem::fault_class_count; ++index) {
    if (result.faults_fired[index] == 0) continue;
    fired[std::string(ditto::netem::name(static_cast<ditto::netem::FaultClass>(index)))] =
        result.faults_fired[index];
  }
  return nlohmann::json{{"seed", result.seed},
                        {"nodes", result.nodes},
                        {"ops", result.operations},
                        {"sim_seconds", result.sim_seconds},
                        {"wall_seconds", result.wall_seconds},
                        {"trace_hash", result.trace_hash},
                        {"events", result.events},
                        {"messages_delivered", result.messages_delivered},
                        {"messages_dropped", result.messages_dropped},
                        {"writes_acknowledged", result.workload.writes_acknowledged},
                        {"reads_checked", result.workload.reads_checked},
                        {"operations_abandoned", result.workload.abandoned},
                        {"operations_not_issued", result.workload.not_issued},
                        {"faults_scheduled", result.faults_scheduled},
                        {"faults_fired", fired},
                        {"crashed", result.crashed},
                        {"writes_in_flight_at_crash", result.writes_in_flight_at_crash},
                        {"promoted", result.promoted},
                        {"blocks_lost_at_failover", result.blocks_lost_at_failover},
                        {"single_copy_blocks_lost_at_failover",
                         result.single_copy_blocks_lost_at_failover},
                        {"divergent_blocks", result.divergent_blocks},
                        {"inconsistent_writes_overwritten",
                         result.inconsistent_writes_overwritten},
                        {"resync_blocks", result.resync_blocks},
                        {"resync_data_messages", result.resync_data_messages},
                        {"resync_in_sync_messages", result.resync_in_sync_messages},
                        {"converged_after_ns", result.converged_after_ns},
                        {"violation_count", result.violation_count},
                        {"violations", result.violations}};
}

void print_text(const RunResult& result) {
  const double speed = result.wall_seconds > 0 ? result.sim_seconds / result.wall_seconds : 0;
  std::printf("seed %llu, %u nodes, %llu ops\n", static_cast<unsigned long long>(result.seed),
              result.nodes, static_cast<unsigned long long>(result.operations));
  std::printf("simulated %.6f s in %.3f s wall (%.1fx), %llu events\n", result.sim_seconds,
              result.wall_seconds, speed, static_cast<unsigned long long>(result.events));
  std::printf("writes acknowledged %llu, reads checked %llu, abandoned %llu, not issued %llu\n",
              static_cast<unsigned long long>(result.workload.writes_acknowledged),
              static_cast<unsigned long long>(result.workload.reads_checked),
              static_cast<unsigned long long>(result.workload.abandoned),
              static_cast<unsigned long long>(result.workload.not_issued));
  std::printf("faults: %llu scheduled, fired:",
              static_cast<unsigned long long>(result.faults_scheduled));
  for (std::size_t index = 0; index < ditto::netem::fault_class_count; ++index) {
    if (result.faults_fired[index] == 0) continue;
    std::printf(
        " %s=%llu",
        std::string(ditto::netem::name(static_cast<ditto::netem::FaultClass>(index))).c_str(),
        static_cast<unsigned long long>(result.faults_fired[index]));
  }
  std::printf("\n");
  if (result.crashed) {
    std::printf(
        "crashes: %llu writes in flight at Primary crashes (disk kept %u, lost %u, torn %u); "
        "failover %s; blocks lost at failover %llu (whose only UpToDate copy was the Primary's "
        "%llu); divergent blocks %llu\n",
        static_cast<unsigned long long>(result.writes_in_flight_at_crash),
        result.crash_disk.writes_kept, result.crash_disk.writes_lost, result.crash_disk.writes_torn,
        result.promoted ? "succeeded" : "did not happen",
        static_cast<unsigned long long>(result.blocks_lost_at_failover),
        static_cast<unsigned long long>(result.single_copy_blocks_lost_at_failover),
        static_cast<unsigned long long>(result.divergent_blocks));
  }
  if (result.inconsistent_writes_overwritten > 0) {
    std::printf("blocks written on an Inconsistent or re-attached disk and overwritten: %llu\n",
                static_cast<unsigned long long>(result.inconsistent_writes_overwritten));
  }
  std::printf("trace hash %s\n", result.trace_hash.c_str());
  std::printf("violations %llu\n", static_cast<unsigned long long>(result.violation_count));
  for (std::size_t index = 0; index < result.violations.size() && index < violations_shown_max;
       ++index) {
    std::printf("  %s\n", result.violations[index].c_str());
  }
}

void print(const RunResult& result, bool json) {
  if (json) {
    std::printf("%s\n", to_json(result).dump().c_str());
  } else {
    print_text(result);
  }
}

// --trace: the run's story on stderr, one line per event (see ditto::sim::TraceSink).
ditto::sim::TraceSink trace_sink(bool trace) {
  if (!trace) return {};
  return [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

int run_command(const SimOptions& options, bool json, std::string schedule_out, bool trace) {
  const RunResult result = ditto::sim::run_simulation(options, trace_sink(trace));
  print(result, json);
  if (result.violation_count == 0) return 0;
  if (schedule_out.empty())
    schedule_out = "ditto-sim-seed-" + std::to_string(options.seed) + ".json";
  const Schedule schedule = ditto::sim::make_schedule(options, true);
  FILE* out = json ? stderr : stdout;
  std::fprintf(out, "FAILED: replay with: %s\n", ditto::sim::replay_command(options).c_str());
  if (ditto::Status status = ditto::sim::write_file(schedule_out, ditto::sim::to_json(schedule));
      status) {
    std::fprintf(out, "  or: ditto-sim replay %s  (shrink: ditto-sim shrink %s)\n",
                 schedule_out.c_str(), schedule_out.c_str());
  } else {
    std::fprintf(stderr, "ditto-sim: %s\n", status.error().message.c_str());
  }
  return exit_violations;
}

ditto::Result<Schedule> load_schedule(const std::string& path) {
  ditto::Result<std::string> text = ditto::sim::read_file(path);
  if (!text) return text.error();
  ditto::Result<Schedule> schedule = ditto::sim::schedule_from_json(text.value());
  if (!schedule) return ditto::Error{path + ": " + schedule.error().message};
  return schedule;
}

int replay_command(const std::string& path, bool json, bool trace) {
  ditto::Result<Schedule> schedule = load_schedule(path);
  if (!schedule) {
    std::fprintf(stderr, "ditto-sim: %s\n", schedule.error().message.c_str());
    return exit_usage;
  }
  const RunResult result = ditto::sim::run_schedule(schedule.value(), trace_sink(trace));
  print(result, json);
  return result.violation_count == 0 ? 0 : exit_violations;
}

int shrink_command(const std::string& path, std::string out, double seconds) {
  ditto::Result<Schedule> schedule = load_schedule(path);
  if (!schedule) {
    std::fprintf(stderr, "ditto-sim: %s\n", schedule.error().message.c_str());
    return exit_usage;
  }
  if (ditto::sim::run_isolated(schedule.value()).violation_count == 0) {
    std::fprintf(stderr, "ditto-sim: %s does not fail; nothing to shrink\n", path.c_str());
    return exit_usage;
  }
  const ditto::sim::ShrinkResult shrunk = ditto::sim::shrink(schedule.value(), seconds);
  if (out.empty()) {
    const auto dot = path.rfind(".json");
    out = (dot == std::string::npos ? path : path.substr(0, dot)) + ".min.json";
  }
  if (ditto::Status status = ditto::sim::write_file(out, ditto::sim::to_json(shrunk.schedule));
      !status) {
    std::fprintf(stderr, "ditto-sim: %s\n", status.error().message.c_str());
    return exit_usage;
  }
  std::printf(
      "shrunk %zu faults and %zu operations to %zu faults and %zu operations in %llu "
      "runs (%s)\nfirst violation: %s\nreplay with: ditto-sim replay %s\n",
      shrunk.faults_before, shrunk.operations_before, shrunk.schedule.faults.size(),
      shrunk.schedule.operations->size(), static_cast<unsigned long long>(shrunk.runs),
      shrunk.complete ? "1-minimal in faults" : "time budget reached",
      shrunk.run.violations.empty() ? "?" : shrunk.run.violations.front().c_str(), out.c_str());
  return exit_violations;
}

// Options shared by run and campaign.
struct CommonFlags {
  std::string faults;
  std::string without;
  bool swarm = false;
  bool swarm_quorum = false;
  bool swarm_reads = false;
  bool swarm_diskless = false;
  bool swarm_congestion = false;
  std::string protocol;
  std::string on_congestion;
  std::uint32_t congestion_fill_sectors = 0;
  bool no_crash_primary = false;
  bool reference_workload = false;
  std::string quorum;
  std::string on_no_quorum;
  std::int64_t liveness_bound_ms = 0;  // 0: keep the default
  std::int64_t resync_bound_ms = 0;
  std::string csums_algorithm;
  bool csums_after_crash_only = false;
};

void add_common(CLI::App* command, SimOptions& options, CommonFlags& flags) {
  command->add_option("--nodes", options.nodes, "nodes in the cluster, 2..5")
      ->capture_default_str();
  command
      ->add_option("--ops", options.workload.operations,
                   "client operations per run (the upper bound with --swarm)")
      ->capture_default_str();
  command->add_option(
      "--faults", flags.faults,
      "fault classes to inject: all, none or a comma list of " + ditto::netem::fault_class_names());
  command->add_option("--without", flags.without,
                      "fault classes to leave out (with --swarm or --faults), a comma list");
  command->add_flag("--swarm", flags.swarm,
                    "per seed: random node count, operation count, fault classes and weights");
  command->add_flag("--swarm-quorum", flags.swarm_quorum,
                    "with --swarm: one in three clusters of 3+ nodes runs with quorum majority");
  command->add_flag("--swarm-reads", flags.swarm_reads,
                    "with --swarm: every cluster draws a read-balancing policy");
  command->add_flag("--swarm-diskless", flags.swarm_diskless,
                    "with --swarm: one in three clusters has a diskless client (node 0)");
  command->add_flag("--swarm-congestion", flags.swarm_congestion,
                    "with --swarm: one in three clusters runs protocol A with on-congestion "
                    "pull-ahead or disconnect and a small congestion-fill");
  command->add_option("--protocol", flags.protocol, "replication protocol: A, B or C (default C)");
  command->add_option("--on-congestion", flags.on_congestion,
                      "with --protocol A: block, pull-ahead or disconnect (default block)");
  command->add_option("--congestion-fill", flags.congestion_fill_sectors,
                      "with --on-congestion: in-flight sectors that congest a connection "
                      "(0: never)");
  command->add_flag("--no-crash-primary", flags.no_crash_primary,
                    "do not crash the Primary halfway (the failover scenario)");
  command->add_option("--quorum", flags.quorum, "quorum on every node: off, majority, all or N");
  command->add_option("--on-no-quorum", flags.on_no_quorum,
                      "with --quorum: io-error or suspend-io (default suspend-io)");
  command->add_option("--liveness-bound-ms", flags.liveness_bound_ms,
                      "simulated ms after the faults stop by which every live pair must be "
                      "Connected (default 5000)")
      ->check(CLI::PositiveNumber);
  command->add_option("--resync-bound-ms", flags.resync_bound_ms,
                      "simulated ms after the faults stop by which every live node with a disk "
                      "must be UpToDate (default 30000)")
      ->check(CLI::PositiveNumber);
  command->add_option("--c-max-rate-kib", options.c_max_rate_kib,
                      "c-max-rate of every node in KiB/s (0: no cap; default DRBD's largest, "
                      "4194304)");
  command->add_option("--csums-alg", flags.csums_algorithm,
                      "checksum-based resync on every node: crc32c (the simulator digests block "
                      "tags)");
  command->add_flag("--csums-after-crash-only", flags.csums_after_crash_only,
                    "with --csums-alg: checksums only for the resync after a Primary crash");
  command->add_flag("--reference-workload", flags.reference_workload,
                    "4 KiB random writes only, at queue depth 8 (the benchmark workload)");
}

// Applies the shared flags; the error names the bad flag.
ditto::Status apply_common(SimOptions& options, const CommonFlags& flags, CLI::App* command) {
  if (!flags.swarm && (flags.swarm_quorum || flags.swarm_reads || flags.swarm_diskless ||
                       flags.swarm_congestion)) {
    return ditto::Error{
        "--swarm-quorum, --swarm-reads, --swarm-diskless and --swarm-congestion need --swarm"};
  }
  if (flags.swarm && (command->count("--nodes") > 0 || command->count("--faults") > 0)) {
    return ditto::Error{
        "--swarm chooses the node count and fault classes itself; "
        "do not combine it with --nodes or --faults"};
  }
  if (!flags.faults.empty()) {
    auto weights = ditto::netem::parse_fault_list(flags.faults);
    if (!weights) return ditto::Error{"--faults: " + weights.error().message};
    options.faults = weights.value();
  }
  if (!flags.without.empty()) {
    auto excluded = ditto::netem::parse_fault_list(flags.without);
    if (!excluded) return ditto::Error{"--without: " + excluded.error().message};
    options.swarm_excluded = excluded.value();
    for (std::size_t index = 0; index < ditto::netem::fault_class_count; ++index) {
      if (excluded.value()[index] != 0) options.faults[index] = 0;
    }
  }
  if (flags.no_crash_primary) options.crash_primary = false;
  if (!flags.protocol.empty()) {
    if (flags.protocol != "A" && flags.protocol != "B" && flags.protocol != "C") {
      return ditto::Error{"--protocol: '" + flags.protocol + "' is not A, B or C"};
    }
    options.protocol = flags.protocol == "A"   ? ditto::Protocol::a
                       : flags.protocol == "B" ? ditto::Protocol::b
                                               : ditto::Protocol::c;
  }
  if (!flags.on_congestion.empty()) {
    const auto policy = ditto::core::parse_on_congestion(flags.on_congestion);
    if (!policy) {
      return ditto::Error{"--on-congestion: '" + flags.on_congestion +
                          "' is not block, pull-ahead or disconnect"};
    }
    options.on_congestion = *policy;
  }
  options.congestion_fill_sectors = flags.congestion_fill_sectors;
  if (!flags.quorum.empty()) {
    const auto rule = ditto::core::parse_quorum_rule(flags.quorum);
    if (!rule) {
      return ditto::Error{"--quorum: '" + flags.quorum + "' is not off, majority, all or 1..32"};
    }
    options.quorum.quorum = *rule;
  }
  if (!flags.on_no_quorum.empty()) {
    if (flags.on_no_quorum != "io-error" && flags.on_no_quorum != "suspend-io") {
      return ditto::Error{"--on-no-quorum: '" + flags.on_no_quorum +
                          "' is not io-error or suspend-io"};
    }
    options.quorum.on_no_quorum = flags.on_no_quorum == "io-error"
                                      ? ditto::core::OnNoQuorum::io_error
                                      : ditto::core::OnNoQuorum::suspend_io;
  }
  if (flags.liveness_bound_ms > 0) {
    options.liveness_bound = ditto::Duration::from_ms(flags.liveness_bound_ms);
  }
  if (flags.resync_bound_ms > 0) {
    options.resync_bound = ditto::Duration::from_ms(flags.resync_bound_ms);
  }
  if (!flags.csums_algorithm.empty() && flags.csums_algorithm != "crc32c") {
    return ditto::Error{"--csums-alg: '" + flags.csums_algorithm + "' is not crc32c"};
  }
  options.csums = !flags.csums_algorithm.empty();
  options.csums_after_crash_only = flags.csums_after_crash_only;
  if (flags.reference_workload) {
    options.workload.read_percent = 0;
    options.workload.flush_percent = 0;
    options.workload.fua_percent = 0;
    options.workload.blocks_per_write_max = 1;
    options.workload.queue_depth = 8;
  }
  return ditto::sim::validate(options);
}

// Everything the command line sets.
struct Cli {
  SimOptions options;
  CommonFlags flags;
  bool json = false;
  bool trace = false;
  std::string schedule_out;
  std::string path;
  double shrink_seconds = 20;
  ditto::sim::CampaignOptions campaign_options;
  CLI::App* run = nullptr;
  CLI::App* replay = nullptr;
  CLI::App* shrink = nullptr;
  CLI::App* campaign = nullptr;
};

void define_run_replay_shrink(CLI::App& app, Cli& cli) {
  cli.run = app.add_subcommand("run", "run one seed: failover scenario, faults, oracles");
  cli.run->add_option("--seed", cli.options.seed, "the seed (every random choice derives from it)")
      ->required();
  add_common(cli.run, cli.options, cli.flags);
  cli.run->add_option("--schedule-out", cli.schedule_out,
                      "where a failing run writes its schedule");
  cli.run->add_flag("--json", cli.json, "print one JSON object");
  cli.run->add_flag("--trace", cli.trace,
                    "print every node event, fault, crash and connection change on stderr");

  cli.replay = app.add_subcommand("replay", "run a schedule file");
  cli.replay->add_option("file", cli.path, "schedule file (JSON)")->required();
  cli.replay->add_flag("--json", cli.json, "print one JSON object");
  cli.replay->add_flag("--trace", cli.trace,
                       "print every node event, fault, crash and connection change on stderr");

  cli.shrink = app.add_subcommand("shrink", "minimise a failing schedule file");
  cli.shrink->add_option("file", cli.path, "schedule file (JSON)")->required();
  cli.shrink->add_option("--out", cli.schedule_out, "where to write the minimal schedule");
  cli.shrink->add_option("--seconds", cli.shrink_seconds, "wall-time budget")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
}

void define_campaign(CLI::App& app, Cli& cli) {
  ditto::sim::CampaignOptions& campaign_options = cli.campaign_options;
  CLI::App* campaign = cli.campaign = app.add_subcommand("campaign", "run many seeds, each twice");
  campaign->add_option("--seeds", campaign_options.seeds, "how many seeds")
      ->required()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  campaign->add_option("--first-seed", campaign_options.first_seed, "the first seed")
      ->capture_default_str();
  campaign->add_option("--jobs", campaign_options.jobs, "worker processes")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  campaign
      ->add_option("--shrink-seconds", campaign_options.shrink_seconds,
                   "shrink each failing seed for this long (0: do not)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  campaign
      ->add_option("--schedule-dir", campaign_options.schedule_directory,
                   "where failing seeds' schedule files go")
      ->capture_default_str();
  add_common(campaign, cli.options, cli.flags);
  campaign->add_flag("--json", cli.json, "print one JSON summary object");
}

int campaign_command(Cli& cli) {
  cli.campaign_options.base = cli.options;
  cli.campaign_options.swarm = cli.flags.swarm;
  cli.campaign_options.swarm_quorum = cli.flags.swarm_quorum;
  cli.campaign_options.swarm_reads = cli.flags.swarm_reads;
  cli.campaign_options.swarm_diskless = cli.flags.swarm_diskless;
  cli.campaign_options.swarm_congestion = cli.flags.swarm_congestion;
  cli.campaign_options.progress = !cli.json && isatty(STDERR_FILENO) != 0;
  const ditto::sim::CampaignSummary summary = ditto::sim::run_campaign(cli.campaign_options);
  if (cli.json) {
    std::printf("%s\n", ditto::sim::summary_json(cli.campaign_options, summary).c_str());
  } else {
    std::printf("%s", ditto::sim::summary_text(cli.campaign_options, summary).c_str());
  }
  return summary.failures.empty() ? 0 : exit_violations;
}

}  // namespace

int main(int argc, char** argv) {
  // Each run allocates its disk images and oracle tables afresh (a few MiB). Keep freed memory
  // in the heap instead of returning it to the kernel, so the next run does not page-fault its
  // way through new zero pages (7 % of a campaign's CPU time). Results do not depend on it.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  CLI::App app{"ditto-sim: deterministic simulation of a ditto cluster"};
  app.require_subcommand(1);
  Cli cli;
  define_run_replay_shrink(app, cli);
  define_campaign(app, cli);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::ParseError& error) {
    (void)app.exit(error);
    return exit_usage;
  }
  if (cli.replay->parsed()) return replay_command(cli.path, cli.json, cli.trace);
  if (cli.shrink->parsed()) return shrink_command(cli.path, cli.schedule_out, cli.shrink_seconds);
  SimOptions& options = cli.options;
  CLI::App* command = cli.run->parsed() ? cli.run : cli.campaign;
  if (ditto::Status status = apply_common(options, cli.flags, command); !status) {
    std::fprintf(stderr, "ditto-sim: %s\n", status.error().message.c_str());
    return exit_usage;
  }
  if (!cli.run->parsed()) return campaign_command(cli);
  if (cli.flags.swarm) {
    const ditto::sim::WorkloadOptions workload = options.workload;
    options = ditto::sim::swarm_options(options.seed, options.workload.operations,
                                        options.swarm_excluded, cli.flags.swarm_quorum,
                                        cli.flags.swarm_reads, cli.flags.swarm_diskless,
                                        cli.flags.swarm_congestion);
    const std::uint64_t operations = options.workload.operations;
    options.workload = workload;  // the workload's shape stays the caller's
    options.workload.operations = operations;
    options.csums = !cli.flags.csums_algorithm.empty();
    options.csums_after_crash_only = cli.flags.csums_after_crash_only;
  }
  return run_command(options, cli.json, cli.schedule_out, cli.trace);
}
