// The discrete-event simulator: N real core::Node state machines on simulated disks and a
// simulated network, driven by one virtual clock, one seed and a schedule of faults.
//
// Determinism: every random choice comes from streams derived from SimOptions::seed (network,
// disk, fault effects; faults and operations come from the schedule); events run in (time,
// insertion sequence) order; nothing reads the wall clock except the wall_seconds statistic,
// which never enters the trace hash.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/node.h"
#include "core/prng.h"
#include "core/result.h"
#include "netem/faults.h"
#include "netem/latency.h"
#include "sim/event_queue.h"
#include "sim/node_clock.h"
#include "sim/options.h"
#include "sim/oracle.h"
#include "sim/schedule.h"
#include "sim/sim_disk.h"
#include "sim/trace_hash.h"
#include "sim/workload.h"

namespace ditto::sim {

using FaultCounters = std::array<std::uint64_t, netem::fault_class_count>;

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
  // Per fault class: how often it had an effect in this run.
  FaultCounters faults_fired{};
  std::uint64_t faults_scheduled = 0;
  bool crashed = false;                         // some node crashed
  std::uint64_t writes_in_flight_at_crash = 0;  // at crashes of the Primary
  CrashReport crash_disk;                       // summed over crashes
  bool promoted = false;                        // a failover promotion succeeded
  std::uint64_t promotions_refused = 0;
  // Acknowledged blocks a failover could not keep because the promoted node was cut off when
  // they were written (no fencing or quorum yet: DRBD loses them too).
  std::uint64_t blocks_lost_at_failover = 0;
  // Of those, the blocks whose last acknowledged write had no UpToDate copy but the old
  // Primary's when it was acknowledged (its peers that held it were Inconsistent or Outdated):
  // quorum promises nothing for them (sim/oracle.h).
  std::uint64_t single_copy_blocks_lost_at_failover = 0;
  // Blocks whose last acknowledged write a node held only on an Inconsistent disk (no promise,
  // sim/oracle.h) and no longer holds at the end, although UpToDate: a full sync from another
  // lineage replaced it (summed over the UpToDate nodes).
  std::uint64_t inconsistent_writes_overwritten = 0;
  // Blocks whose tags differ between UpToDate survivors: allowed for writes that were never
  // acknowledged while a node that crashed with writes in flight is around (the activity log,
  // which would resync them, is not wired in yet); otherwise, when every live node ends
  // Connected and UpToDate, any divergent block is a violation.
  std::uint64_t divergent_blocks = 0;
  // Blocks written by resyncs (summed over the live nodes' SyncTarget counters at the end).
  std::uint64_t resync_blocks = 0;
  // Resync traffic as the network saw it: Data frames with data_flag_resync and ResyncInSync
  // frames (checksum resync: blocks that matched and moved no data) handed to a live link.
  std::uint64_t resync_data_messages = 0;
  std::uint64_t resync_in_sync_messages = 0;
  // Reads through peers (§9): read replies (Data with data_flag_read_reply) each node handed to
  // a live link, and client reads completed with a peer's data.
  std::vector<std::uint64_t> read_replies_sent;
  std::uint64_t remote_reads = 0;
  // Liveness oracle: simulated time from the end of the faults until every live node was
  // connected to every live peer (-1: the run ended first or the faults never ended).
  std::int64_t converged_after_ns = -1;
  // The split-brain scenario: `call helper ... helper:initial-split-brain` lines seen (one per
  // node and detection), `helper:split-brain` lines (unresolved), and acknowledged blocks a
  // split-brain resolution discarded on the victim (documented loss, the only loss allowed).
  std::uint32_t split_brain_reports = 0;
  // Congestion (§11): peer-device events2 lines (all nodes) showing Ahead and Behind, and
  // connections dropped by on-congestion disconnect.
  std::uint32_t ahead_entered = 0;
  std::uint32_t behind_entered = 0;
  std::uint32_t congestion_disconnects = 0;
  std::uint32_t split_brain_unresolved_reports = 0;
  std::uint64_t blocks_discarded_by_split_brain = 0;
  // Two Primaries: `concurrent-writes` lines seen (a Primary dropped a connection for
  // overlapping concurrent writes, core/node_two_primaries.cpp).
  std::uint32_t concurrent_writes_reports = 0;
  // Fencing: fence-peer and unfence-peer calls (all nodes), and fence-peer results a node
  // applied or discarded (a late result after the connection came back, or a crash).
  std::uint32_t fence_peer_calls = 0;
  std::uint32_t unfence_peer_calls = 0;
  std::uint32_t helper_results_delivered = 0;
  // Per node at the end: role, disk, connection to each node (own index: StandAlone), and a
  // digest of the disk's visible contents now and when the split-brain scenario healed.
  struct NodeSummary {
    Role role = Role::secondary;
    DiskState disk = DiskState::dunknown;
    std::vector<ConnectionState> connections;
    std::uint64_t disk_digest = 0;
    std::uint64_t disk_digest_at_heal = 0;
  };
  std::vector<NodeSummary> final_nodes;
  // The admin scenario: blocks corrupted on node 1, `verify-finished` lines of the VerifyS
  // (node 0) and the out-of-sync blocks the last one counted.
  std::uint64_t blocks_corrupted = 0;
  std::uint32_t verify_runs = 0;
  std::uint64_t verify_out_of_sync_blocks = 0;
  std::uint64_t violation_count = 0;
  std::vector<std::string> violations;
};

// Receives the run's story as it happens, one line per entry: simulated time in ms, the node,
// and what happened (a core's events2 line, a fault fired, a crash or restart, a connection
// coming up or going down). For `ditto-sim run|replay --trace`; it does not change the run.
using TraceSink = std::function<void(const std::string& line)>;

// Runs the scenario `options` generates (options must be valid).
RunResult run_simulation(const SimOptions& options, const TraceSink& trace = {});
// Runs a schedule (its options must be valid).
RunResult run_schedule(const Schedule& schedule, const TraceSink& trace = {});

class Simulation {
 public:
  explicit Simulation(const Schedule& schedule, TraceSink trace = {});
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  RunResult run();

  struct SimNode;  // defined in sim/sim_node.h (internal)

 private:
  struct Connection {
    enum class State : std::uint8_t { down, connecting, up };
    State state = State::down;
    std::uint32_t epoch = 0;
  };
  // One direction of a connection.
  struct Link {
    netem::LatencyModel model;
    Instant last_delivery;
    Instant slow_until;
    std::uint32_t slow_factor = 1;
    std::uint32_t partitions = 0;  // partitions blocking this direction
    std::uint32_t clogs = 0;       // clogs holding this direction
    Instant duplicate_until;       // message_duplication: until then some messages come twice
    std::uint32_t duplicate_percent = 0;
    std::vector<SimEvent> held;    // messages held while blocked, in order
  };
  // What the simulator knows about one client write until the client hears about it.
  struct WriteTrace {
    std::uint32_t expected = 0;                         // nodes that must store it under protocol C
    std::uint32_t holders = 0;                          // nodes whose disk completed it
    std::uint32_t completed_consistent = 0;  // holders whose disk was not Inconsistent then
    std::uint32_t failed = 0;                           // nodes whose disk failed it (injected EIO)
    std::array<std::uint32_t, sim_nodes_max> epochs{};  // Primary's connection epochs at issue
  };

  // Event loop (simulation.cpp).
  void dispatch(const SimEvent& event);
  bool defer_if_paused(const SimEvent& event);
  void hash_event(const SimEvent& event);
  void drain(std::uint8_t node);
  void execute(std::uint8_t node, core::Action& action);
  void after_step(std::uint8_t node);
  void check_cluster_step();
  void check_event(std::uint8_t node, const std::string& line);  // simulation_checks.cpp
  void on_timer(const SimEvent& event);
  void call_helper(std::uint8_t node, const core::CallHelper& call);
  void on_helper_done(const SimEvent& event);

  // Disk (simulation.cpp).
  void on_disk_completed(const SimEvent& event);
  void submit_disk(std::uint8_t node, std::uint8_t operation, IoId io, Sector sector,
                   std::uint32_t length_bytes);

  // Network (simulation_network.cpp).
  Connection& connection(std::uint8_t first, std::uint8_t second);
  void start_connecting(std::uint8_t first, std::uint8_t second, Duration delay);
  void break_connection(std::uint8_t first, std::uint8_t second, bool reconnect);
  void drop_held(Link& link);
  void release_held(std::uint8_t from, std::uint8_t to);
  void send(std::uint8_t from, const core::Send& send);
  void on_message_delivered(const SimEvent& event);
  void deliver(const SimEvent& event);
  void on_connection_up(const SimEvent& event);
  void on_connection_down(const SimEvent& event);
  void on_link_timeout(const SimEvent& event);
  std::uint32_t allocate_frame();
  void free_frame(std::uint32_t slot);
  bool blocked(std::uint8_t from, std::uint8_t to) const;

  // Faults (simulation_faults.cpp).
  void schedule_faults_after(std::uint64_t operation_index);
  void on_fault(const SimEvent& event);
  void on_fault_end(const SimEvent& event);
  bool fire_network_fault(const FaultEvent& fault, std::uint32_t index);
  bool fire_disk_fault(const FaultEvent& fault);
  bool fire_node_fault(const FaultEvent& fault);
  bool fire_added_fault(const FaultEvent& fault);  // simulation_faults_added.cpp
  void end_added_fault(const FaultEvent& fault);
  // Node clocks (simulation_faults_added.cpp): the local time of `node` now, and re-scheduling
  // its armed timers after its clock changed.
  Instant clock_of(std::uint8_t node) const;
  // Hands "<ms> node<k> <what>" to the trace sink, if there is one.
  void trace(std::uint8_t node, const std::string& what) const;
  void reschedule_timers(std::uint8_t node);
  void schedule_timer(std::uint8_t node, std::uint64_t timer, std::int64_t deadline_ns);
  void duplicate_message(const SimEvent& delivery);
  // Liveness oracle (simulation_liveness.cpp).
  void start_liveness_checks();
  void on_liveness_check();
  bool left_to_operator(std::uint8_t first, std::uint8_t second) const;
  std::optional<std::string> connection_unmet() const;
  std::optional<std::string> resync_unfinished() const;
  void set_partition(const FaultEvent& fault, bool on);
  // The split-brain scenario and StandAlone (simulation_split_brain.cpp).
  bool standalone(std::uint8_t node, std::uint8_t peer) const;
  void close_gracefully(std::uint8_t node, std::uint8_t peer);
  void on_graceful_close(const SimEvent& event);
  void split_brain_before_issue(std::uint64_t operation_index);
  std::uint8_t split_brain_writer(std::uint64_t request);
  void split_brain_heal();
  // The two-Primaries scenario (simulation_two_primaries.cpp).
  bool two_primaries_before_issue(std::uint64_t operation_index);
  std::uint8_t two_primaries_writer(std::uint64_t request) const;
  void inject_concurrent_writes();
  bool extra_write_completed(std::uint8_t node, const core::CompleteClient& complete);
  void on_split_brain_step(const SimEvent& event);
  void on_core_event(std::uint8_t node, const std::string& line);
  // The admin scenario (simulation_admin.cpp).
  void admin_scenario_start();
  void on_admin_step(const SimEvent& event);
  void on_admin_event(std::uint8_t node, const std::string& line);
  void admin_command(std::uint8_t node, const core::AdminCommand& command);
  void corrupt_acknowledged_blocks(std::uint8_t node, std::uint32_t count);
  std::uint64_t disk_digest(std::uint8_t node) const;
  void summarize_nodes(RunResult& result) const;
  void on_flap(const SimEvent& event);
  void heal_all();
  void on_crash(std::uint8_t node);
  void on_restart(std::uint8_t node);
  core::NodeConfig config_from_metadata(std::uint8_t node) const;
  void attach_detached_disk(std::uint8_t node);
  void on_resume(const SimEvent& event);
  void count_fired(netem::FaultClass fault, std::uint64_t times = 1);

  // Scripted steps (simulation_script.cpp): true while the client must not issue yet.
  bool script_holds_client();
  void start_script_step(const ScriptStep& step);
  std::optional<std::string> script_unmet(const ScriptStep& step) const;

  // Workload and operator (simulation_cluster.cpp).
  void schedule_tick(Duration delay);
  void on_workload_tick();
  void issue(const ClientOperation& operation);
  void on_client_completed(std::uint8_t node, const core::CompleteClient& complete);
  void write_completed(std::uint8_t node, const ClientOperation& operation, bool ok,
                       Holders& holders, bool& sent_only);
  void primary_lost();
  void on_operator_check();
  void request_promotion(std::uint8_t node, std::uint8_t reason);
  void promotion_decided(std::uint8_t node, const core::AdminResult& result);
  void workload_finished();
  void check_stall();
  void final_checks(RunResult& result);
  void check_replicas_identical(const std::vector<std::uint8_t>& up_to_date,
                                const RunResult& result);
  void check_divergence(std::uint8_t first, std::uint8_t second, RunResult& result);

  void schedule(Duration delay, SimEvent event);
  Duration detection_delay();
  bool alive(std::uint8_t node) const;
  bool paused(std::uint8_t node) const;

  SimOptions options_;
  std::vector<FaultEvent> faults_;
  std::optional<std::vector<OperationSpec>> operations_;
  std::vector<std::uint32_t> fault_order_;  // fault indices by after_op
  std::size_t next_fault_ = 0;
  // Scripted steps (Schedule::script, simulation_script.cpp).
  std::vector<ScriptStep> script_;
  std::size_t next_script_ = 0;
  bool script_started_ = false;
  Instant script_since_;
  Prng network_prng_;
  Prng disk_prng_;
  Prng workload_prng_;
  Prng effect_prng_;
  Instant now_;
  EventQueue queue_;
  TraceHash hash_;
  Violations violations_;
  // The first block two UpToDate replicas hold differently ("block B: nodeX tag T, nodeY tag U"),
  // for the replicas-differ violation: where to start reading the trace.
  std::string first_divergence_;
  Workload workload_;
  TraceSink trace_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::array<std::array<Connection, sim_nodes_max>, sim_nodes_max> connections_{};
  std::array<std::array<Link, sim_nodes_max>, sim_nodes_max> links_{};
  std::array<NodeClock, sim_nodes_max> clocks_{};
  std::optional<Instant> healed_at_;  // when the faults stopped (liveness oracle)
  bool liveness_checked_ = false;
  bool connected_since_heal_ = false;  // the liveness oracle saw every pair Connected
  // dropped_by_core_[node][peer]: node's core disconnected from peer itself (a refused
  // handshake, a protocol error) in its current incarnation.
  std::array<std::array<bool, sim_nodes_max>, sim_nodes_max> dropped_by_core_{};
  // side_up_[node][peer]: node was told on_connection_up and not yet on_connection_down.
  std::array<std::array<bool, sim_nodes_max>, sim_nodes_max> side_up_{};
  // side_epoch_[node][peer]: the connection epoch node was told about (a down for an older
  // epoch that arrives after a reconnect is stale).
  std::array<std::array<std::uint32_t, sim_nodes_max>, sim_nodes_max> side_epoch_{};
  std::vector<core::Action> action_buffer_;  // drain's, kept between steps (its capacity)
  std::vector<std::uint64_t> read_tags_;      // on_disk_completed's, kept between reads
  std::vector<std::uint8_t> payload_bytes_;   // send's, kept between messages
  std::vector<std::uint64_t> received_tags_;  // deliver's, kept between messages
  std::uint32_t read_requests_sent_ = 0;      // by node 0 (SimOptions::cut_read_peer_at)
  std::vector<std::vector<std::uint8_t>> frames_;
  std::vector<std::uint32_t> free_frames_;
  std::unordered_map<std::uint64_t, WriteTrace> write_traces_;  // by tag
  std::uint8_t primary_ = 0;
  bool has_primary_ = false;    // the client has a Primary to talk to
  bool operator_busy_ = false;  // a failover is being arranged
  bool tick_scheduled_ = false;
  bool healed_ = false;  // faults are over (the workload finished or stalled)
  bool gave_up_ = false;
  std::optional<Instant> stop_at_;
  // The split-brain scenario.
  bool split_writers_ = false;     // both nodes are Primary: the client writes on both
  bool split_waiting_ = false;     // the client waits for node 1's promotion
  bool split_brain_open_ = false;  // the last split brain detected is not resolved
  bool split_partitioned_ = false;
  bool manual_recovery_done_ = false;
  std::vector<std::uint64_t> digests_at_heal_;
  // The two-Primaries scenario: both write (two_writers_); node `two_demoting_` demotes once
  // its requests are done; the overlapping pair's requests in flight.
  bool two_writers_ = false;
  bool two_conflict_done_ = false;
  bool two_promotion_started_ = false;
  std::optional<std::uint8_t> two_demoting_;
  std::uint32_t extra_writes_in_flight_ = 0;
  Instant last_progress_;
  Instant run_deadline_;
  RunResult result_;
};

}  // namespace ditto::sim
