#include "sim/simulation.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "core/assert.h"
#include "sim/sim_node.h"

namespace ditto::sim {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Independent PRNG streams derived from the one seed.
constexpr std::uint64_t stream_network = 1;
constexpr std::uint64_t stream_disk = 2;
constexpr std::uint64_t stream_workload = 3;
constexpr std::uint64_t stream_faults = 4;

enum class DiskOperation : std::uint8_t { write = 0, read = 1, flush = 2 };

}  // namespace

Status validate(const SimOptions& options) {
  if (options.nodes < sim_nodes_min || options.nodes > sim_nodes_max) {
    return Error{"--nodes must be between " + std::to_string(sim_nodes_min) + " and " +
                 std::to_string(sim_nodes_max) + ", got " + std::to_string(options.nodes)};
  }
  if (options.workload.operations == 0) return Error{"--ops must be at least 1"};
  if (options.workload.operations > 100'000'000) return Error{"--ops must be at most 1e8"};
  if (options.volume_size_bytes % block_size_bytes != 0 ||
      options.volume_size_bytes < 16 * block_size_bytes ||
      options.volume_size_bytes > (1ull << 40)) {
    return Error{"the volume size must be a multiple of 4096 between 64 KiB and 1 TiB"};
  }
  if (options.workload.queue_depth_max < 1 || options.workload.queue_depth_max > 256) {
    return Error{"the queue depth must be between 1 and 256"};
  }
  if (options.workload.read_percent + options.workload.flush_percent > 100 ||
      options.workload.fua_percent > 100) {
    return Error{"read + flush percentages must not exceed 100, nor the FUA percentage"};
  }
  if (options.workload.blocks_per_write_max < 1 || options.workload.blocks_per_write_max > 16) {
    return Error{"blocks per write must be between 1 and 16"};
  }
  if (Status status = options.network.validate(); !status) return status;
  if (Status status = options.disk.validate(); !status) return status;
  if (options.detection_delay_max < Duration::from_ms(1)) {
    return Error{"the detection delay must be at least 1 ms"};
  }
  return Status::success();
}

std::string replay_command(const SimOptions& options) {
  return "ditto-sim run --seed " + std::to_string(options.seed) + " --nodes " +
         std::to_string(options.nodes) + " --ops " + std::to_string(options.workload.operations);
}

RunResult run_simulation(const SimOptions& options) {
  Simulation simulation(options);
  return simulation.run();
}

Simulation::Simulation(const SimOptions& options)
    : options_(options),
      network_prng_(Prng::derive(options.seed, stream_network)),
      disk_prng_(Prng::derive(options.seed, stream_disk)),
      workload_prng_(Prng::derive(options.seed, stream_workload)),
      fault_prng_(Prng::derive(options.seed, stream_faults)),
      workload_(options.workload, options.volume_size_bytes / block_size_bytes) {
  DITTO_ASSERT(validate(options).ok());
  for (std::uint32_t node = 0; node < options_.nodes; ++node) {
    nodes_.push_back(std::make_unique<SimNode>(options_, node));
  }
  workload_.set_queue_depth(
      static_cast<std::uint32_t>(workload_prng_.between(1, options_.workload.queue_depth_max)));
  const std::uint64_t operations = options_.workload.operations;
  const std::uint64_t spread = operations / 5;
  crash_after_operations_ = operations / 2 - spread / 2 + fault_prng_.between(0, spread);
  if (crash_after_operations_ == 0) crash_after_operations_ = 1;
  DITTO_ASSERT(crash_after_operations_ <= operations);
}

Simulation::~Simulation() = default;

bool Simulation::alive(std::uint8_t node) const {
  return nodes_[node]->alive;
}

void Simulation::schedule(Duration delay, SimEvent event) {
  DITTO_ASSERT(delay.ns >= 0);
  event.at = now_ + delay;
  queue_.push(event);
}

Duration Simulation::detection_delay() {
  const auto low = Duration::from_ms(1).ns;
  return Duration{static_cast<std::int64_t>(
      fault_prng_.between(static_cast<std::uint64_t>(low),
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
  run_deadline_ = Instant{0} + Duration{settle.ns + options_.quiesce_timeout.ns +
                                        static_cast<std::int64_t>(options_.workload.operations) *
                                            Duration::from_ms(100).ns};
  while (!queue_.empty()) {
    const SimEvent event = queue_.pop();
    const bool past_quiesce =
        workload_done_at_ && event.at > *workload_done_at_ + options_.quiesce_timeout;
    if (past_quiesce || event.at > run_deadline_) {
      violations_.add("the cluster did not quiesce: events still pending at " +
                      std::to_string(event.at.ns) + " ns");
      break;
    }
    now_ = event.at;
    hash_event(event);
    dispatch(event);
    result_.events += 1;
  }
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
      return on_promote(event.node);
  }
  DITTO_ASSERT(false);  // every kind is handled above
}

void Simulation::drain(std::uint8_t node) {
  // Executing an action never calls into a node, so one pass takes everything.
  std::vector<core::Action> actions = nodes_[node]->core->take_actions();
  for (core::Action& action : actions) execute(node, action);
  DITTO_ASSERT(!nodes_[node]->core->has_actions());
}

void Simulation::execute(std::uint8_t node, core::Action& action) {
  SimNode& sim_node = *nodes_[node];
  hash_.add(0xac7100ull + action.index());
  std::visit(Overloaded{
                 [&](const core::DiskWrite& write) {
                   hash_.add(write.payload.value);
                   sim_node.disk.submit_write(write.io, write.sector, write.length_bytes,
                                              write.payload.value, write.fua);
                   submit_disk(node, 0, write.io, write.sector, write.length_bytes);
                 },
                 [&](const core::DiskRead& read) {
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
                   if (sim_node.payloads_held < 0) {
                     violations_.add(node_name(node) + " released payload " +
                                     std::to_string(release.payload.value) + " it did not hold");
                   }
                 },
                 [&](const core::Disconnect& disconnect) {
                   hash_.add_text(disconnect.reason);
                   if (disconnect.peer.value >= options_.nodes) return;
                   break_connection(node, disconnect.peer.value, true);
                 },
                 [&](const core::Event& event) { hash_.add_text(event.line); },
             },
             action);
}

// ---- Disk -------------------------------------------------------------------------------------

void Simulation::submit_disk(std::uint8_t node, std::uint8_t operation, IoId io, Sector sector,
                             std::uint32_t length_bytes) {
  SimEvent event = make_event(EventKind::disk_completed, node, operation);
  event.epoch = nodes_[node]->incarnation;
  event.size = length_bytes;
  event.first = io.value;
  event.second = sector.value;
  schedule(options_.disk.sample(disk_prng_), event);
}

void Simulation::on_disk_completed(const SimEvent& event) {
  SimNode& node = *nodes_[event.node];
  if (!node.alive || node.incarnation != event.epoch) return;  // lost with the crash
  const IoId io{event.first};
  switch (static_cast<DiskOperation>(event.peer)) {
    case DiskOperation::write:
      node.disk.complete_write(io);
      break;
    case DiskOperation::flush:
      node.disk.complete_flush(io);
      break;
    case DiskOperation::read:
      node.disk.read(Sector{event.second}, event.size, node.read_buffers[io.value]);
      break;
  }
  node.core->on_disk_completed(now_, io, core::IoStatus::ok);
  drain(event.node);
}

// ---- Workload and scenario --------------------------------------------------------------------

void Simulation::schedule_tick(Duration delay) {
  if (tick_scheduled_) return;
  tick_scheduled_ = true;
  schedule(delay, make_event(EventKind::workload_tick, 0));
}

void Simulation::on_workload_tick() {
  tick_scheduled_ = false;
  if (paused_ || !alive(primary_)) return;
  core::Node& core = *nodes_[primary_]->core;
  while (auto operation = workload_.next(workload_prng_, now_)) {
    hash_.add(operation->request.value);
    const Sector sector{operation->first_block * sectors_per_block};
    const std::uint32_t length_bytes = operation->block_count * block_size_bytes;
    switch (operation->kind) {
      case OperationKind::write:
        nodes_[primary_]->payloads_held += 1;
        core.on_client_write(now_, operation->request, sector, length_bytes,
                             PayloadHandle{operation->tag}, core::WriteFlags{operation->fua});
        break;
      case OperationKind::read:
        core.on_client_read(now_, operation->request, sector, length_bytes);
        break;
      case OperationKind::flush:
        core.on_client_flush(now_, operation->request);
        break;
    }
    drain(primary_);
    if (options_.crash_primary && !crash_scheduled_ &&
        workload_.statistics().issued >= crash_after_operations_) {
      // Crash a few microseconds from now: the request just issued is surely still in flight.
      crash_scheduled_ = true;
      paused_ = true;
      schedule(Duration{static_cast<std::int64_t>(fault_prng_.between(0, 20'000))},
               make_event(EventKind::crash, primary_));
      return;
    }
  }
}

void Simulation::on_client_completed(std::uint8_t node, const core::CompleteClient& complete) {
  SimNode& sim_node = *nodes_[node];
  hash_.add(complete.request.value);
  hash_.add(static_cast<std::uint64_t>(complete.status));
  std::span<const std::uint64_t> tags;
  auto buffer = sim_node.read_buffers.end();
  if (complete.read_io) {
    buffer = sim_node.read_buffers.find(complete.read_io->value);
    DITTO_ASSERT(buffer != sim_node.read_buffers.end());  // the read completed on our disk
    tags = buffer->second;
  }
  workload_.completed(now_, NodeId{node}, complete.request, complete.status, tags, violations_);
  if (buffer != sim_node.read_buffers.end()) sim_node.read_buffers.erase(buffer);
  if (workload_.done()) {
    if (!workload_done_at_) workload_done_at_ = now_;
    return;
  }
  if (!paused_) {
    schedule_tick(Duration{static_cast<std::int64_t>(workload_prng_.between(0, 10'000))});
  }
}

void Simulation::on_crash(std::uint8_t node) {
  SimNode& sim_node = *nodes_[node];
  DITTO_ASSERT(sim_node.alive);
  result_.crashed = true;
  sim_node.alive = false;
  sim_node.incarnation += 1;
  sim_node.read_buffers.clear();
  result_.crash_disk = sim_node.disk.crash(disk_prng_);
  hash_.add(result_.crash_disk.writes_kept);
  for (std::uint8_t peer = 0; peer < options_.nodes; ++peer) {
    if (peer == node) continue;
    side_up_[node][peer] = false;
    break_connection(node, peer, false);
  }
  if (node != primary_) return;
  result_.writes_in_flight_at_crash = workload_.writes_in_flight();
  workload_.abandon_all();
  if (workload_.all_issued()) workload_done_at_ = now_;
  // Promote the next node once its peers surely noticed the crash.
  const std::uint8_t next = static_cast<std::uint8_t>((node + 1) % options_.nodes);
  schedule(Duration{options_.detection_delay_max.ns + Duration::from_ms(1).ns},
           make_event(EventKind::promote, next));
}

void Simulation::on_promote(std::uint8_t node) {
  if (!alive(node)) return;
  const core::AdminResult result = nodes_[node]->core->on_admin(now_, core::Promote{});
  drain(node);
  hash_.add(result.ok ? 1 : 0);
  if (!result.ok) {
    violations_.add("promoting " + node_name(node) + " was refused: " + result.code + " (" +
                    result.message + ")");
    return;
  }
  if (result_.crashed) result_.promoted = true;
  primary_ = node;
  paused_ = false;
  if (workload_.done()) {
    if (!workload_done_at_) workload_done_at_ = now_;
    return;
  }
  schedule_tick(Duration{0});
}

// ---- End of run -------------------------------------------------------------------------------

void Simulation::final_checks(RunResult& result) {
  if (!workload_.done()) {
    violations_.add("the workload stalled: " + std::to_string(workload_.statistics().issued) +
                    " of " + std::to_string(options_.workload.operations) + " issued, " +
                    std::to_string(workload_.in_flight()) + " in flight");
  }
  std::vector<std::uint8_t> survivors;
  for (std::uint8_t node = 0; node < options_.nodes; ++node) {
    if (alive(node)) survivors.push_back(node);
  }
  DITTO_ASSERT(!survivors.empty());  // the scenarios crash one node at most
  if (options_.drop_acked_write_for_test) {
    const BlockOracle& oracle = workload_.oracle();
    for (std::uint64_t block = 0; block < oracle.block_count(); ++block) {
      if (oracle.last_acknowledged(block) == 0) continue;
      nodes_[survivors.front()]->disk.corrupt_for_test(block, 0);  // back to "never written"
      break;
    }
  }
  for (const std::uint8_t node : survivors) {
    SimNode& sim_node = *nodes_[node];
    sim_node.core->invariants();
    workload_.oracle().check("final disk of " + node_name(node), 0, sim_node.disk.visible(),
                             violations_);
    if (sim_node.payloads_held != 0) {
      violations_.add(node_name(node) + " still holds " + std::to_string(sim_node.payloads_held) +
                      " payloads after the run (a ReleasePayload is missing)");
    }
  }
  for (std::size_t index = 1; index < survivors.size(); ++index) {
    const auto first = nodes_[survivors.front()]->disk.visible();
    const auto other = nodes_[survivors[index]]->disk.visible();
    for (std::size_t block = 0; block < first.size(); ++block) {
      if (first[block] != other[block]) result.divergent_blocks += 1;
    }
  }
}

}  // namespace ditto::sim
