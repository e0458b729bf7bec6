// The discrete-event simulator: N real core::Node state machines on simulated disks and a
// simulated network, driven by one virtual clock and one seed.
//
// Determinism: every random choice comes from streams derived from SimOptions::seed (network,
// disk, workload, faults); events run in (time, insertion sequence) order; nothing reads the
// wall clock except the wall_seconds statistic, which never enters the trace hash.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/node.h"
#include "core/prng.h"
#include "core/result.h"
#include "netem/latency.h"
#include "sim/event_queue.h"
#include "sim/oracle.h"
#include "sim/sim_disk.h"
#include "sim/trace_hash.h"
#include "sim/workload.h"

namespace ditto::sim {

inline constexpr std::uint32_t sim_nodes_min = 2;
inline constexpr std::uint32_t sim_nodes_max = 5;

struct SimOptions {
  std::uint64_t seed = 1;
  std::uint32_t nodes = 3;
  std::uint64_t volume_size_bytes = 64ull * 1024 * 1024;
  WorkloadOptions workload;
  netem::LatencyModel network = netem::lan_link();
  netem::LatencyModel disk = netem::nvme_disk();
  Duration connect_delay = Duration::from_ms(1);
  Duration reconnect_delay = Duration::from_ms(100);
  // A peer notices a crashed node after a delay in [1 ms, detection_delay_max].
  Duration detection_delay_max = Duration::from_ms(20);
  // The failover scenario: crash the Primary (node 0) mid-run, promote node 1, go on there.
  bool crash_primary = true;
  // Oracle self-test: after the run, overwrite one acknowledged block on a survivor with a
  // stale tag. The oracle must report it.
  bool drop_acked_write_for_test = false;
  // Give up (a violation) if the cluster is still busy this long after the workload finished.
  Duration quiesce_timeout = Duration::from_ms(60'000);
};

[[nodiscard]] Status validate(const SimOptions& options);

// The command that replays a run.
std::string replay_command(const SimOptions& options);

struct RunResult {
  std::uint64_t seed = 0;
  std::uint32_t nodes = 0;
  std::uint64_t operations = 0;
  double sim_seconds = 0;
  double wall_seconds = 0;
  std::string trace_hash;  // 32 hex digits
  std::uint64_t events = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_dropped = 0;
  WorkloadStatistics workload;
  bool crashed = false;
  std::uint64_t writes_in_flight_at_crash = 0;
  CrashReport crash_disk;
  bool promoted = false;
  // Blocks whose tags differ between surviving replicas (allowed today: both are permitted by
  // the oracle; DRBD would resync activity-log extents after a Primary crash).
  std::uint64_t divergent_blocks = 0;
  std::uint64_t violation_count = 0;
  std::vector<std::string> violations;
};

// Runs the scenario described by `options` to the end (options must be valid).
RunResult run_simulation(const SimOptions& options);

class Simulation {
 public:
  explicit Simulation(const SimOptions& options);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  RunResult run();

 private:
  struct SimNode;
  struct Connection {
    enum class State : std::uint8_t { down, connecting, up };
    State state = State::down;
    std::uint32_t epoch = 0;
  };

  // Event loop.
  void dispatch(const SimEvent& event);
  void hash_event(const SimEvent& event);
  void drain(std::uint8_t node);
  void execute(std::uint8_t node, core::Action& action);

  // Disk.
  void on_disk_completed(const SimEvent& event);
  void submit_disk(std::uint8_t node, std::uint8_t operation, IoId io, Sector sector,
                   std::uint32_t length_bytes);

  // Network.
  Connection& connection(std::uint8_t first, std::uint8_t second);
  void start_connecting(std::uint8_t first, std::uint8_t second, Duration delay);
  void break_connection(std::uint8_t first, std::uint8_t second, bool reconnect);
  void send(std::uint8_t from, const core::Send& send);
  void on_message_delivered(const SimEvent& event);
  void on_connection_up(const SimEvent& event);
  void on_connection_down(const SimEvent& event);
  std::uint32_t allocate_frame();

  // Workload and scenario.
  void schedule_tick(Duration delay);
  void on_workload_tick();
  void on_client_completed(std::uint8_t node, const core::CompleteClient& complete);
  void on_crash(std::uint8_t node);
  void on_promote(std::uint8_t node);
  void final_checks(RunResult& result);

  void schedule(Duration delay, SimEvent event);
  Duration detection_delay();
  bool alive(std::uint8_t node) const;

  SimOptions options_;
  Prng network_prng_;
  Prng disk_prng_;
  Prng workload_prng_;
  Prng fault_prng_;
  Instant now_;
  EventQueue queue_;
  TraceHash hash_;
  Violations violations_;
  Workload workload_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::array<std::array<Connection, sim_nodes_max>, sim_nodes_max> connections_{};
  std::array<std::array<Instant, sim_nodes_max>, sim_nodes_max> link_last_delivery_{};
  // side_up_[node][peer]: node was told on_connection_up and not yet on_connection_down.
  std::array<std::array<bool, sim_nodes_max>, sim_nodes_max> side_up_{};
  std::vector<std::vector<std::uint8_t>> frames_;
  std::vector<std::uint32_t> free_frames_;
  std::vector<std::uint64_t> read_scratch_;
  std::uint8_t primary_ = 0;
  bool paused_ = false;
  bool tick_scheduled_ = false;
  std::uint64_t crash_after_operations_ = 0;
  bool crash_scheduled_ = false;
  std::optional<Instant> workload_done_at_;
  Instant run_deadline_;
  RunResult result_;
};

}  // namespace ditto::sim
