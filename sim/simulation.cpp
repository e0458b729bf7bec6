#include "sim/simulation.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <utility>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/streams.h"
#include "core/overloaded.h"

namespace ditto::sim {
namespace {

enum class DiskOperation : std::uint8_t { write = 0, read = 1, flush = 2, metadata_write = 3 };
constexpr std::uint8_t disk_error_bit = 0x80;

}  // namespace

RunResult run_simulation(const SimOptions& options, const TraceSink& trace) {
  return run_schedule(make_schedule(options, false), trace);
}

RunResult run_schedule(const Schedule& schedule, const TraceSink& trace) {
  Simulation simulation(schedule, trace);
  return simulation.run();
}

Simulation::Simulation(const Schedule& schedule, TraceSink trace)
    : options_(schedule.options),
      faults_(schedule.faults),
      operations_(schedule.operations),
      script_(schedule.script),
      network_prng_(Prng::derive(options_.seed, stream_network)),
      disk_prng_(Prng::derive(options_.seed, stream_disk)),
      workload_prng_(Prng::derive(options_.seed, stream_workload)),
      effect_prng_(Prng::derive(options_.seed, stream_fault_effects)),
      workload_(options_, operations_ ? &*operations_ : nullptr),
      trace_(std::move(trace)) {
  DITTO_ASSERT(validate(options_).ok());
  result_.read_replies_sent.assign(options_.nodes, 0);
  for (std::uint32_t node = 0; node < options_.nodes; ++node) {
    nodes_.push_back(std::make_unique<SimNode>(options_, node));
  }
  for (auto& row : links_) {
    for (Link& link : row) link.model = options_.network;
  }
  fault_order_.resize(faults_.size());
  std::iota(fault_order_.begin(), fault_order_.end(), 0u);
  std::stable_sort(fault_order_.begin(), fault_order_.end(), [&](std::uint32_t a, std::uint32_t b) {
    return faults_[a].after_op < faults_[b].after_op;
  });
  result_.faults_scheduled = faults_.size();
}

Simulation::~Simulation() = default;

void Simulation::trace(std::uint8_t node, const std::string& what) const {
  if (!trace_) return;
  char time[32];
  std::snprintf(time, sizeof time, "%10.3f", static_cast<double>(now_.ns) / 1e6);
  trace_(std::string(time) + " " + node_name(node) + " " + what);
}

bool Simulation::alive(std::uint8_t node) const {
  return nodes_[node]->alive;
}

bool Simulation::paused(std::uint8_t node) const {
  return nodes_[node]->paused;
}

void Simulation::schedule(Duration delay, SimEvent event) {
  DITTO_ASSERT(delay.ns >= 0);
  event.at = now_ + delay;
  queue_.push(event);
}

Duration Simulation::detection_delay() {
  const auto low = Duration::from_ms(1).ns;
  return Duration{static_cast<std::int64_t>(
      effect_prng_.between(static_cast<std::uint64_t>(low),
                           static_cast<std::uint64_t>(options_.detection_delay_max.ns)))};
}

// ---- The loop ---------------------------------------------------------------------------------

RunResult Simulation::run() {
  const auto wall_start = std::chrono::steady_clock::now();
  const std::string context =
      "seed=" + std::to_string(options_.seed) + " replay: " + replay_command(options_);
  assert_context_set(context.c_str());
  for (std::uint8_t first = 0; first < options_.nodes; ++first) {
    for (std::uint8_t second = first + 1; second < options_.nodes; ++second) {
      start_connecting(first, second, options_.connect_delay);
    }
  }
  // Promote node 0 once every handshake (Hello and StateReport each way) has surely landed.
  const Duration settle{options_.connect_delay.ns + 2 * options_.network.maximum_ns() +
                        Duration::from_ms(1).ns};
  schedule(settle, make_event(EventKind::promote, 0));
  run_deadline_ = Instant{0} + Duration{settle.ns + 4 * options_.stall_timeout.ns +
                                        static_cast<std::int64_t>(options_.workload.operations) *
                                            Duration::from_ms(100).ns};
  for (;;) {
    if (queue_.empty() && !stop_at_ && !workload_.done() && !healed_) {
      heal_all();  // nothing moves any more: lift every fault and see whether it recovers
      last_progress_ = now_;
    }
    if (queue_.empty()) break;
    if (stop_at_ && queue_.next_time() > *stop_at_) break;
    const SimEvent event = queue_.pop();
    if (event.at > run_deadline_) {
      violations_.add("the run did not end: events still pending at " +
                      std::to_string(event.at.ns) + " ns");
      break;
    }
    now_ = event.at;
    hash_event(event);
    if (!defer_if_paused(event)) dispatch(event);
    result_.events += 1;
    check_stall();
  }
  if (stop_at_ && now_ < *stop_at_) now_ = *stop_at_;
  final_checks(result_);
  result_.seed = options_.seed;
  result_.nodes = options_.nodes;
  result_.operations = options_.workload.operations;
  result_.sim_seconds = static_cast<double>(now_.ns) / 1e9;
  result_.trace_hash = hash_.hex();
  result_.workload = workload_.statistics();
  result_.violation_count = violations_.count();
  result_.violations = violations_.texts();
  const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall_start;
  result_.wall_seconds = wall.count();
  assert_context_set("");
  return result_;
}

void Simulation::hash_event(const SimEvent& event) {
  hash_.add(static_cast<std::uint64_t>(event.at.ns));
  hash_.add((static_cast<std::uint64_t>(event.kind) << 16) |
            (static_cast<std::uint64_t>(event.node) << 8) | event.peer);
  hash_.add((static_cast<std::uint64_t>(event.epoch) << 32) | event.size);
  // Frame slots are an allocation detail; the frame's CRC goes in when it is delivered.
  if (event.kind != EventKind::message_delivered) hash_.add(event.first);
  hash_.add(event.second);
}

// Events for a paused node wait, in order, until it resumes (a stopped process).
bool Simulation::defer_if_paused(const SimEvent& event) {
  std::uint8_t target = event.node;
  switch (event.kind) {
    case EventKind::disk_completed:
    case EventKind::message_delivered:
    case EventKind::connection_down:
    case EventKind::timer:
    case EventKind::promote:
    case EventKind::helper_done:
      break;
    case EventKind::connection_up:
      if (!paused(target) && paused(event.peer)) target = event.peer;
      break;
    default:
      return false;
  }
  if (!alive(target) || !paused(target)) return false;
  nodes_[target]->deferred.push_back(event);
  return true;
}

void Simulation::dispatch(const SimEvent& event) {
  switch (event.kind) {
    case EventKind::workload_tick:
      return on_workload_tick();
    case EventKind::disk_completed:
      return on_disk_completed(event);
    case EventKind::message_delivered:
      return on_message_delivered(event);
    case EventKind::connection_up:
      return on_connection_up(event);
    case EventKind::connection_down:
      return on_connection_down(event);
    case EventKind::crash:
      return on_crash(event.node);
    case EventKind::promote:
      return request_promotion(event.node, 0);
    case EventKind::timer:
      return on_timer(event);
    case EventKind::fault:
      return on_fault(event);
    case EventKind::fault_end:
      return on_fault_end(event);
    case EventKind::restart:
      return on_restart(event.node);
    case EventKind::resume:
      return on_resume(event);
    case EventKind::operator_check:
      return on_operator_check();
    case EventKind::flap:
      return on_flap(event);
    case EventKind::link_timeout:
      return on_link_timeout(event);
    case EventKind::liveness_check:
      return on_liveness_check();
    case EventKind::split_brain_step:
      return on_split_brain_step(event);
    case EventKind::graceful_close:
      return on_graceful_close(event);
    case EventKind::helper_done:
      return on_helper_done(event);
    case EventKind::admin_step:
      return on_admin_step(event);
    case EventKind::attach:
      return attach_detached_disk(event.node);
  }
  DITTO_ASSERT(false);  // every kind is handled above
}

void Simulation::drain(std::uint8_t node) {
  // Executing an action never calls into a node, so one pass takes everything. The vector is
  // the one of the previous step (moved out and back, so even a re-entry would be safe): the
  // node's and ours swap capacity and a step allocates no action vector.
  std::vector<core::Action> actions = std::move(action_buffer_);
  nodes_[node]->core->take_actions(actions);
  for (core::Action& action : actions) execute(node, action);
  DITTO_ASSERT(!nodes_[node]->core->has_actions());
  actions.clear();
  action_buffer_ = std::move(actions);
  if (trace_) {
    // --trace: every change of the node's generation identifiers.
    std::string text = generations_text(nodes_[node]->core->generations());
    if (text != nodes_[node]->traced_generations) {
      trace(node, "generations " + text);
      nodes_[node]->traced_generations = std::move(text);
    }
  }
  after_step(node);
  // A resize's CheckDiskSize: simulated disks never grow, so the answer is the configured size,
  // fed as the next input of the node.
  if (nodes_[node]->disk_size_check_pending && nodes_[node]->alive) {
    nodes_[node]->disk_size_check_pending = false;
    nodes_[node]->core->on_disk_size(clock_of(node), options_.volume_size_bytes);
    drain(node);
  }
}

void Simulation::execute(std::uint8_t node, core::Action& action) {
  SimNode& sim_node = *nodes_[node];

  hash_.add(0xac7100ull + action.index());
  std::visit(
      Overloaded{
          [&](const core::DiskWrite& write) {
            hash_.add(write.payload.value);
            const bool misdirect = sim_node.disk.misdirect_armed();
            // A payload of several tags (a resync run copied from blocks of different writes)
            // holds one tag per block.
            if (const auto tags = sim_node.tags_of(write.payload); tags.size() > 1) {
              DITTO_ASSERT_EQ(tags.size() * block_size_bytes, write.length_bytes);
              sim_node.disk.submit_write(write.io, write.sector, tags, write.fua);
            } else {
              sim_node.disk.submit_write(write.io, write.sector, write.length_bytes,
                                         write.payload.value, write.fua);
            }
            if (misdirect) count_fired(netem::FaultClass::disk_misdirected_write);
            sim_node.write_tags.put(write.io.value, write.payload.value);
            submit_disk(node, 0, write.io, write.sector, write.length_bytes);
          },
          [&](const core::DiskRead& read) {
            if (read.allocate_payload) {
              sim_node.payload_reads.put(read.io.value, sim_node.incarnation);
            }
            if (read.digest) sim_node.digest_reads.insert(read.io.value);
            submit_disk(node, 1, read.io, read.sector, read.length_bytes);
          },
          [&](const core::DiskFlush& flush) {
            sim_node.disk.submit_flush(flush.io);
            submit_disk(node, 2, flush.io, Sector{0}, 0);
          },
          [&](const core::Send& message) { send(node, message); },
          [&](const core::CompleteClient& complete) { on_client_completed(node, complete); },
          [&](const core::ReleasePayload& release) {
            hash_.add(release.payload.value);
            sim_node.payloads_held -= 1;
            sim_node.payload_tags.erase(release.payload.value);
            if (sim_node.payloads_held < 0) {
              violations_.add(node_name(node) + " released payload " +
                              std::to_string(release.payload.value) + " it did not hold");
            }
          },
          [&](const core::Disconnect& disconnect) {
            hash_.add_text(disconnect.reason);
            if (disconnect.peer.value >= options_.nodes) return;
            trace(node, "disconnect peer:" + node_name(disconnect.peer.value) + " reason:\"" +
                            disconnect.reason + "\"");
            dropped_by_core_[node][disconnect.peer.value] = true;
            // A StandAlone side waits for the operator: no reconnect (see on_connection_up);
            // it closes after what it sent (the peer still decides on our StateReport).
            if (disconnect.reconnect) return break_connection(node, disconnect.peer.value, true);
            close_gracefully(node, disconnect.peer.value);
          },
          [&](const core::Event& event) {
            hash_.add_text(event.line);
            trace(node, event.line);
            on_core_event(node, event.line);
            check_event(node, event.line);
          },
          [&](const core::ArmTimer& arm) {
            // The deadline is on the node's own clock.
            const std::int64_t deadline = std::max(arm.deadline.ns, clock_of(node).ns);
            sim_node.timers[arm.timer.value] = deadline;
            schedule_timer(node, arm.timer.value, deadline);
          },
          [&](const core::CancelTimer& cancel) { sim_node.timers.erase(cancel.timer.value); },
          [&](const core::CallHelper& helper) { call_helper(node, helper); },
          [&](core::MetadataWrite& write) {
            hash_.add((static_cast<std::uint64_t>(write.area) << 48) ^ write.block);
            sim_node.disk.submit_metadata_write(write.io, write.area, write.block,
                                                std::move(write.bytes));
            submit_disk(node, 3, write.io, Sector{0}, 0);
          },
          [&](const core::CheckDiskSize&) { sim_node.disk_size_check_pending = true; },
      },
      action);
}

void Simulation::on_timer(const SimEvent& event) {
  SimNode& node = *nodes_[event.node];
  if (!node.alive || node.incarnation != event.epoch) return;
  auto armed = node.timers.find(event.first);
  // Re-armed (moved) or cancelled timers leave stale events behind: only the current one fires.
  if (armed == node.timers.end() || armed->second != static_cast<std::int64_t>(event.second)) {
    return;
  }
  const Instant local = clock_of(event.node);
  if (local.ns < armed->second) {
    // The node's clock slowed down after the timer was armed: not yet.
    return schedule_timer(event.node, event.first, armed->second);
  }
  node.timers.erase(armed);
  node.core->on_timer(local, TimerId{event.first});
  drain(event.node);
}

// The simulated handler: its scripted exit code (0 without a script), after helper_delay.
void Simulation::call_helper(std::uint8_t node, const core::CallHelper& call) {
  hash_.add_text(call.helper);
  if (call.helper == "fence-peer") result_.fence_peer_calls += 1;
  if (call.helper == "unfence-peer") result_.unfence_peer_calls += 1;
  int exit_code = 0;
  for (const HelperScript& script : options_.helper_scripts) {
    if (script.node == node && script.helper == call.helper) exit_code = script.exit_code;
  }
  SimEvent done = make_event(EventKind::helper_done, node);
  done.epoch = nodes_[node]->incarnation;
  done.first = call.call.value;
  done.second = static_cast<std::uint64_t>(exit_code);
  schedule(options_.helper_delay, done);
}

void Simulation::on_helper_done(const SimEvent& event) {
  SimNode& node = *nodes_[event.node];
  if (!node.alive || node.incarnation != event.epoch) return;  // died with its node
  result_.helper_results_delivered += 1;
  node.core->on_helper_done(clock_of(event.node), HelperCallId{event.first},
                            static_cast<int>(event.second));
  drain(event.node);
}

// After every input to a node: its invariants, its metadata, and its promotion outcome.
void Simulation::after_step(std::uint8_t node) {
  SimNode& sim_node = *nodes_[node];
  core::Node& core = *sim_node.core;
  // No core.invariants() here: core checks them on exit of every on_* input (DESIGN.md house
  // style 2); a second check per step was a tenth of the simulator's CPU time.
  // Written through on every change, as DRBD writes UUIDs and flags synchronously.
  // A detached disk gets no metadata writes (a diskless Primary's generations live in memory
  // and on its peers).
  const bool consistent = core.disk_state() != DiskState::inconsistent;
  const bool attached = core.disk_state() > DiskState::failed;
  if (attached && (core.generations() != sim_node.disk.metadata_generations() ||
                   consistent != sim_node.disk.metadata_consistent())) {
    sim_node.disk.write_metadata(core.generations(), consistent);
  }
  if (attached && core.unconfirmed_generation() != sim_node.disk.metadata_unconfirmed()) {
    sim_node.disk.write_metadata_unconfirmed(core.unconfirmed_generation());
  }
  // PRIMARY_IND, durable before the first write as Primary leaves this step.
  const bool primary = core.role() == Role::primary;
  if (attached && primary != sim_node.disk.metadata_primary()) {
    sim_node.disk.write_metadata_primary(primary);
  }
  if (sim_node.promotion_requested && !core.promotion_pending()) {
    sim_node.promotion_requested = false;
    const core::AdminResult outcome =
        core.promotion_outcome() ? *core.promotion_outcome() : core::AdminResult{};
    promotion_decided(node, outcome);
  }
  const Role role = core.role();
  if (role == Role::primary && sim_node.last_role != Role::primary &&
      !sim_node.up_to_date_at_promotion) {
    violations_.add(node_name(node) +
                    " became Primary although its disk was not UpToDate "
                    "when it was asked to promote");
  }
  sim_node.last_role = role;
  check_cluster_step();
}

// Cluster-wide state validity after every step: two connected nodes are never both Primary
// (unless both allow two Primaries).
void Simulation::check_cluster_step() {
  std::uint32_t primaries = 0;
  for (const auto& node : nodes_) {
    if (node->alive && node->core->role() == Role::primary) primaries += 1;
  }
  if (primaries < 2) return;
  for (std::uint8_t first = 0; first < options_.nodes; ++first) {
    for (std::uint8_t second = first + 1; second < options_.nodes; ++second) {
      if (!alive(first) || !alive(second)) continue;
      const core::Node& a = *nodes_[first]->core;
      const core::Node& b = *nodes_[second]->core;
      if (a.role() != Role::primary || b.role() != Role::primary) continue;
      // allow-two-primaries on both: two connected Primaries are the point (live migration).
      if (a.config().allow_two_primaries && b.config().allow_two_primaries) continue;
      const auto a_view = a.peer(NodeId{second});
      const auto b_view = b.peer(NodeId{first});
      if (a_view && b_view && a_view->connection == ConnectionState::connected &&
          b_view->connection == ConnectionState::connected) {
        violations_.add(node_name(first) + " and " + node_name(second) +
                        " are both Primary while connected to each other");
      }
    }
  }
}

// ---- Disk -------------------------------------------------------------------------------------

void Simulation::submit_disk(std::uint8_t node, std::uint8_t operation, IoId io, Sector sector,
                             std::uint32_t length_bytes) {
  SimNode& sim_node = *nodes_[node];
  const bool slow = now_ < sim_node.slow_until;
  Duration latency =
      (slow ? netem::slowed(sim_node.disk_model, sim_node.slow_factor) : sim_node.disk_model)
          .sample(disk_prng_);
  std::uint8_t code = operation;
  if (slow) count_fired(netem::FaultClass::slow_disk);
  if (operation == 0 && now_ < sim_node.reorder_until) {
    latency.ns += static_cast<std::int64_t>(effect_prng_.below(sim_node.reorder_us_max + 1)) * 1000;
    count_fired(netem::FaultClass::disk_reorder);
  }
  if (operation == 0 && now_ < sim_node.write_errors_until &&
      effect_prng_.chance(sim_node.write_error_percent, 100)) {
    code |= disk_error_bit;
  }
  if (operation == 1 && now_ < sim_node.read_errors_until &&
      effect_prng_.chance(sim_node.read_error_percent, 100)) {
    code |= disk_error_bit;
  }
  SimEvent event = make_event(EventKind::disk_completed, node, code);
  event.epoch = sim_node.incarnation;
  event.size = length_bytes;
  event.first = io.value;
  event.second = sector.value;
  schedule(latency, event);
}

void Simulation::on_disk_completed(const SimEvent& event) {
  SimNode& node = *nodes_[event.node];
  if (!node.alive || node.incarnation != event.epoch) return;  // lost with the crash
  const IoId io{event.first};
  bool failed = (event.peer & disk_error_bit) != 0;
  bool tags_read = false;  // a read succeeded: read_tags_ holds its blocks' tags
  switch (static_cast<DiskOperation>(event.peer & ~disk_error_bit)) {
    case DiskOperation::write: {
      node.disk.complete_write(io, !failed);
      const std::optional<std::uint64_t> tag = node.write_tags.take(io.value);
      DITTO_ASSERT(tag.has_value());
      // The core holds a write's payload until the write completes.
      const PayloadHandle written{*tag};
      for (const std::uint64_t each : node.tags_of(written)) {
        if (auto trace = write_traces_.find(each); trace != write_traces_.end()) {
          (failed ? trace->second.failed : trace->second.holders) |= 1u << event.node;
          if (!failed && node.core->disk_state() != DiskState::inconsistent) {
            trace->second.completed_consistent |= 1u << event.node;
          }
        }
      }
      if (failed) count_fired(netem::FaultClass::disk_write_error);
      break;
    }
    case DiskOperation::flush:
      node.disk.complete_flush(io);
      break;
    case DiskOperation::metadata_write:
      node.disk.complete_metadata_write(io);
      break;
    case DiskOperation::read:
      if (failed) {
        node.read_errors_unexplained += 1;
        count_fired(netem::FaultClass::disk_read_error);
      } else if (node.disk.read(Sector{event.second}, event.size, read_tags_)) {
        tags_read = true;
      } else {
        // A block failed its checksum (bit rot, misdirected write): EIO, as an injected one.
        node.read_errors_unexplained += 1;
        failed = true;
        hash_.add(0xc5e7ull);
      }
      break;
  }
  // The tags read (read_tags_, kept between reads for its capacity) become a payload, else a
  // digest, else the client's read buffer.
  PayloadHandle payload{0};
  if (const std::optional<std::uint32_t> read = node.payload_reads.take(io.value)) {
    if (*read == node.incarnation && !failed) {
      // A read's payload: the tag of each block (one tag when the run holds one write).
      DITTO_ASSERT(tags_read);
      payload = node.hold_tags(read_tags_);
      tags_read = false;
    }
  }
  std::uint64_t digest = 0;
  if (node.digest_reads.erase(io.value) == 1) {
    // Online verify: the digest of the blocks' tags stands in for the verify-alg's.
    digest = 0xcbf29ce484222325ull;  // FNV-1a
    if (tags_read) {
      for (const std::uint64_t tag : read_tags_) digest = (digest ^ tag) * 0x100000001b3ull;
    }
    tags_read = false;
    hash_.add(digest);
  }
  if (tags_read) node.read_buffers[io.value] = read_tags_;
  node.core->on_disk_completed(clock_of(event.node), io,
                               failed ? core::IoStatus::io_error : core::IoStatus::ok, payload,
                               digest);
  drain(event.node);
}

}  // namespace ditto::sim
