#include "sim/schedule.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/assert.h"
#include "sim/sim_disk.h"
#include "sim/streams.h"

namespace ditto::sim {
namespace {

using netem::FaultClass;

// Classes that modify what a crash does instead of being events of their own.
bool is_crash_modifier(FaultClass fault) {
  return fault == FaultClass::disk_lost_unflushed || fault == FaultClass::disk_torn_write;
}

std::int64_t between_ns(Prng& prng, std::int64_t low, std::int64_t high) {
  return static_cast<std::int64_t>(
      prng.between(static_cast<std::uint64_t>(low), static_cast<std::uint64_t>(high)));
}

constexpr std::int64_t ms = 1'000'000;

// Fills in the node, peer, duration and parameter of one event of class `fault`.
void draw_event_details(Prng& prng, const SimOptions& options, FaultEvent& event) {
  const auto nodes = options.nodes;
  event.node = static_cast<std::uint8_t>(prng.below(nodes));
  event.peer = static_cast<std::uint8_t>((event.node + 1 + prng.below(nodes - 1)) % nodes);
  event.parameter = static_cast<std::uint32_t>(prng.next_u64() & 0xffff);
  switch (event.fault) {
    case FaultClass::link_delay:
      event.model = netem::random_link_model(prng);
      break;
    case FaultClass::disk_latency:
      event.model = netem::random_disk_model(prng);
      break;
    case FaultClass::slow_link:
    case FaultClass::slow_disk:
      event.duration_ns = between_ns(prng, 10 * ms, 1000 * ms);
      event.parameter = static_cast<std::uint32_t>(prng.between(10, 100));
      break;
    case FaultClass::partition_halves:
    case FaultClass::partition_isolate:
    case FaultClass::partition_ring:
    case FaultClass::partition_one_way:
      event.duration_ns = between_ns(prng, 10 * ms, 2000 * ms);
      break;
    case FaultClass::link_flapping:
      event.duration_ns = between_ns(prng, 50 * ms, 1000 * ms);
      event.parameter = static_cast<std::uint32_t>(prng.between(5, 50));  // period, ms
      break;
    case FaultClass::link_clog:
      event.duration_ns = between_ns(prng, 1 * ms, 500 * ms);
      break;
    case FaultClass::disk_write_error:
    case FaultClass::disk_read_error:
      event.duration_ns = between_ns(prng, 1 * ms, 200 * ms);
      event.parameter = static_cast<std::uint32_t>(prng.between(5, 100));  // percent
      break;
    case FaultClass::disk_reorder:
      event.duration_ns = between_ns(prng, 10 * ms, 1000 * ms);
      event.parameter = static_cast<std::uint32_t>(prng.between(100, 2000));  // µs, extra
      break;
    case FaultClass::node_crash:
      // Down for a while; 0 means until the end of the workload.
      event.duration_ns = prng.chance(1, 4) ? 0 : between_ns(prng, 10 * ms, 2000 * ms);
      break;
    case FaultClass::node_pause:
      event.duration_ns = between_ns(prng, 1 * ms, 1000 * ms);
      break;
    case FaultClass::disk_misdirected_write:
      event.parameter = static_cast<std::uint32_t>(prng.between(1, 0xffff));  // offset, blocks
      break;
    case FaultClass::disk_bit_rot:
      event.parameter = static_cast<std::uint32_t>(prng.between(1, 16));  // blocks
      break;
    case FaultClass::clock_drift:
      event.duration_ns = between_ns(prng, 10 * ms, 2000 * ms);
      // drift_ppm = parameter - 10'000: up to 1 % fast or slow
      event.parameter = static_cast<std::uint32_t>(prng.between(0, 20'000));
      break;
    case FaultClass::clock_step:
      event.parameter = static_cast<std::uint32_t>(prng.between(1, 5000));  // ms forward
      break;
    case FaultClass::message_duplication:
      event.duration_ns = between_ns(prng, 10 * ms, 1000 * ms);
      event.parameter = static_cast<std::uint32_t>(prng.between(1, 50));  // percent
      break;
    default:
      break;
  }
}

std::uint64_t weight_total(const SimOptions& options, std::size_t begin, std::size_t end) {
  std::uint64_t total = 0;
  for (std::size_t position = begin; position < end; ++position) {
    if (!is_crash_modifier(static_cast<FaultClass>(position))) total += options.faults[position];
  }
  return total;
}

// Draws `count` events of the classes in [begin, end) by weight (a non-zero total).
void draw_faults(Prng& prng, const SimOptions& options, std::size_t begin, std::size_t end,
                 std::uint64_t count, std::vector<FaultEvent>& events) {
  const std::uint64_t total = weight_total(options, begin, end);
  DITTO_ASSERT(total > 0);
  const std::uint64_t operations = options.workload.operations;
  std::uint32_t crashes = 0;
  for (std::uint64_t draw = 0; draw < count; ++draw) {
    FaultEvent event;
    std::uint64_t pick = prng.below(total);
    for (std::size_t position = begin; position < end; ++position) {
      const auto fault = static_cast<FaultClass>(position);
      if (is_crash_modifier(fault)) continue;
      if (pick < options.faults[position]) {
        event.fault = fault;
        break;
      }
      pick -= options.faults[position];
    }
    event.after_op = prng.below(operations);
    event.delay_ns = between_ns(prng, 0, 2 * ms);
    draw_event_details(prng, options, event);
    // Without resync a crashed node never becomes UpToDate again: a few crashes per run keep
    // the cluster alive long enough for the other faults to matter.
    if (event.fault == FaultClass::node_crash && ++crashes > 2) continue;
    events.push_back(event);
  }
}

}  // namespace

std::string_view name(OperationKind kind) {
  switch (kind) {
    case OperationKind::write:
      return "write";
    case OperationKind::read:
      return "read";
    case OperationKind::flush:
      return "flush";
  }
  return "unknown";
}

OperationSpec draw_operation(Prng& prng, const WorkloadOptions& options,
                             std::uint64_t block_count) {
  OperationSpec operation;
  const std::uint64_t roll = prng.below(100);
  if (roll < options.flush_percent) {
    operation.kind = OperationKind::flush;
    return operation;
  }
  operation.kind = roll < options.flush_percent + options.read_percent ? OperationKind::read
                                                                       : OperationKind::write;
  operation.block_count = static_cast<std::uint32_t>(prng.between(1, options.blocks_per_write_max));
  operation.first_block = prng.below(block_count - operation.block_count + 1);
  if (operation.kind == OperationKind::write) {
    operation.fua = prng.chance(options.fua_percent, 100);
  }
  return operation;
}

std::vector<OperationSpec> draw_operations(const SimOptions& options) {
  Prng prng = Prng::derive(options.seed, stream_operations);
  std::vector<OperationSpec> operations;
  operations.reserve(options.workload.operations);
  const std::uint64_t block_count = options.volume_size_bytes / block_size_bytes;
  for (std::uint64_t index = 0; index < options.workload.operations; ++index) {
    operations.push_back(draw_operation(prng, options.workload, block_count));
  }
  return operations;
}

std::vector<FaultEvent> plan_faults(const SimOptions& options) {
  Prng prng = Prng::derive(options.seed, stream_faults);
  const std::uint64_t operations = options.workload.operations;
  std::vector<FaultEvent> events;
  if (options.crash_primary) {
    // The failover scenario: crash node 0 about halfway, a few microseconds after an operation
    // was issued (so it is surely in flight); it stays down until the workload is done.
    const std::uint64_t spread = operations / 5;
    FaultEvent crash;
    crash.fault = FaultClass::node_crash;
    crash.peer = 1;  // unused by crashes; a valid peer keeps the schedule file well formed
    crash.after_op =
        std::max<std::uint64_t>(operations / 2 - spread / 2 + prng.between(0, spread), 1) - 1;
    crash.delay_ns = between_ns(prng, 0, 20'000);
    events.push_back(crash);
  }
  const std::uint64_t classic_total = weight_total(options, 0, netem::classic_fault_class_count);
  const std::uint64_t added_total =
      weight_total(options, netem::classic_fault_class_count, netem::fault_class_count);
  const std::uint64_t count =
      std::max<std::uint64_t>(1, operations * options.faults_per_1000_ops / 1000);
  if (classic_total > 0) {
    draw_faults(prng, options, 0, netem::classic_fault_class_count, count, events);
  }
  if (added_total > 0) {
    // The later classes draw from their own stream, their share of the events on top of the
    // classic ones: a seed's classic faults stay what they were before the classes existed.
    Prng added = Prng::derive(options.seed, stream_faults_added);
    const std::uint64_t added_count =
        classic_total == 0 ? count
                           : std::max<std::uint64_t>(
                                 1, count * added_total / (classic_total + added_total));
    draw_faults(added, options, netem::classic_fault_class_count, netem::fault_class_count,
                added_count, events);
  }
  std::stable_sort(events.begin(), events.end(), [](const FaultEvent& a, const FaultEvent& b) {
    return a.after_op < b.after_op;
  });
  return events;
}

Schedule make_schedule(const SimOptions& options, bool with_operations) {
  Schedule schedule;
  schedule.options = options;
  schedule.faults = plan_faults(options);
  if (with_operations) schedule.operations = draw_operations(options);
  return schedule;
}

}  // namespace ditto::sim
