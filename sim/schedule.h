// What a run injects, as data: the options, the fault events and (optionally) the client
// operations. A seed generates a schedule; a failing run writes it as JSON; `ditto-sim replay`
// runs it without the seed's fault and workload generators, and `ditto-sim shrink` removes
// faults and operations from it while the failure persists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/prng.h"
#include "core/result.h"
#include "netem/faults.h"
#include "netem/latency.h"
#include "sim/options.h"

namespace ditto::sim {

// One fault. It fires `delay_ns` after client operation number `after_op` (0-based) was issued,
// so a schedule stays meaningful when operations are removed before it. Faults whose operation
// is never issued (the cluster died first) never fire.
struct FaultEvent {
  netem::FaultClass fault = netem::FaultClass::connection_reset;
  std::uint64_t after_op = 0;
  std::int64_t delay_ns = 0;
  std::uint8_t node = 0;         // the node, or the sending side of a link
  std::uint8_t peer = 0;         // the receiving side of a link
  std::int64_t duration_ns = 0;  // how long it lasts; 0 for instant faults
  std::uint32_t parameter = 0;   // class-specific: factor, percent, partition shape, period
  netem::LatencyModel model;     // link_delay and disk_latency only

  friend bool operator==(const FaultEvent&, const FaultEvent&) = default;
};

enum class OperationKind : std::uint8_t { write, read, flush };

// One client operation. A write's tag is its index + 1 (unique, grows with issue order).
struct OperationSpec {
  OperationKind kind = OperationKind::write;
  std::uint64_t first_block = 0;
  std::uint32_t block_count = 0;  // 0 for flushes
  bool fua = false;

  friend bool operator==(const OperationSpec&, const OperationSpec&) = default;
};

// The next operation drawn from `prng` (the workload stream of the seed).
OperationSpec draw_operation(Prng& prng, const WorkloadOptions& options, std::uint64_t block_count);

// A scripted step (scenario files, faults/sim_injector.cpp): before operation `before_op` is
// issued, the client waits until every earlier operation completed; then the step fires the
// faults `start` and ends the faults `end` (a partition or clog lifts, a crashed node restarts),
// and the client waits until `condition` holds, at most `timeout` of simulated time (then that is
// a violation). Steps run in order, several may share an operation. Faults a step starts carry
// after_op = script_only so that the operation count never fires them.
struct ScriptStep {
  enum class Condition : std::uint8_t { none, connected, up_to_date, primary, quorum_lost };
  std::uint64_t before_op = 0;
  std::vector<std::uint32_t> start;  // fault indices
  std::vector<std::uint32_t> end;
  Condition condition = Condition::none;
  std::uint8_t node = 0;  // primary, quorum_lost
  Duration timeout = Duration::from_ms(10'000);

  friend bool operator==(const ScriptStep&, const ScriptStep&) = default;
};
inline constexpr std::uint64_t script_only = ~std::uint64_t{0};

struct Schedule {
  SimOptions options;
  std::vector<FaultEvent> faults;
  // Scripted steps (not written to schedule files: ditto-faults rebuilds them from the scenario).
  std::vector<ScriptStep> script;
  // The operations to issue; empty: draw them from the seed (the same list draw_operations
  // returns, without holding it in memory).
  std::optional<std::vector<OperationSpec>> operations;
};

// The schedule a seed generates: plan_faults and, if `with_operations`, draw_operations.
Schedule make_schedule(const SimOptions& options, bool with_operations);

// JSON (schedule files). Reading checks every field and names the first bad one.
std::string to_json(const Schedule& schedule);
[[nodiscard]] Result<Schedule> schedule_from_json(std::string_view text);

// The faults a seed generates for `options` (stream "faults" of the seed).
std::vector<FaultEvent> plan_faults(const SimOptions& options);

// Every operation the seed generates (for writing a schedule file).
std::vector<OperationSpec> draw_operations(const SimOptions& options);

std::string_view name(OperationKind kind);

}  // namespace ditto::sim
