// Fault scenarios: one file format that runs unchanged on the simulator (faults/sim_injector.h)
// and on a real cluster of dittod daemons (faults/real_injector.h). A scenario names the cluster
// shape and a timeline of steps; docs/faults.md describes the format.
//
// Both targets issue the same client operations: plan_operations() derives them from the
// scenario and a seed (which block each write hits, which blocks a read-verify reads), so a
// write's tag (its operation index + 1) names the same write on both targets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "netem/latency.h"

namespace ditto::faults {

inline constexpr std::uint32_t nodes_min = 2;
inline constexpr std::uint32_t nodes_max = 5;
inline constexpr std::uint64_t block_size_bytes = 4096;
inline constexpr std::uint32_t operations_per_step_max = 100'000;
inline constexpr std::uint32_t queue_depth_max = 32;
inline constexpr std::uint64_t timeout_ms_max = 600'000;

// Protocol: ditto::Protocol (core/types.h), named by ditto::to_string.
enum class Quorum : std::uint8_t { off, majority };

struct ClusterShape {
  std::uint32_t nodes = 3;
  Protocol protocol = Protocol::c;
  Quorum quorum = Quorum::off;
  // A node with no disk (`disk none`): it reads and writes through its peers.
  std::optional<std::uint8_t> diskless_node;
  std::uint64_t volume_size_bytes = 16ull << 20;

  std::uint64_t blocks() const { return volume_size_bytes / block_size_bytes; }
  bool diskful(std::uint8_t node) const { return diskless_node != node; }
};

enum class StepKind : std::uint8_t {
  write,        // `operations` random 4 KiB writes in [first_block, first_block + blocks)
  read_verify,  // reads back every block written so far through the Primary
  partition,    // `blocked` directed links stop forwarding (until heal)
  heal,         // every partition and link impairment ends
  link,         // impair one link (or both directions of it): delay, loss, rate
  crash,        // kill -9 of `node` (a power loss)
  restart,      // starts `node` again from its disk
  primary,      // promotes `node`
  secondary,    // demotes `node`
  disconnect,   // `node` disconnects from `peer` (administratively)
  connect,      // `node` connects to `peer` again
  wait,         // until `condition` holds on every live node, or `timeout_ms` passes
  check,        // the oracles
};

enum class WaitCondition : std::uint8_t { connected, up_to_date, primary, quorum_lost };
enum class Expect : std::uint8_t { ok, fail, any };

// One directed link (from sends to to).
struct DirectedLink {
  std::uint8_t from = 0;
  std::uint8_t to = 0;
  friend bool operator==(const DirectedLink&, const DirectedLink&) = default;
};

struct LinkImpairment {
  std::optional<netem::LatencyModel> delay;  // per-chunk delay drawn from the model
  // Per forwarded chunk, the chance (in percent) that the link drops the connection instead:
  // TCP gives no way to lose one segment, so loss shows up as a reset, as it would after
  // retransmissions failed.
  std::uint32_t loss_percent = 0;
  std::uint64_t rate_bytes_per_second = 0;  // 0: unlimited
};

struct Step {
  StepKind kind = StepKind::check;
  std::uint32_t operations = 0;  // write
  std::uint64_t first_block = 0;
  std::uint64_t blocks = 0;
  std::uint32_t queue_depth = 1;
  Expect expect = Expect::ok;
  // write: the node crashes once `crash_after` of the step's writes were issued, with up to
  // queue_depth of them in flight; the step's later writes are not issued.
  std::optional<std::uint8_t> crash_node;
  std::uint32_t crash_after = 0;
  std::uint8_t node = 0;  // crash, restart, primary, secondary, disconnect, connect
  std::uint8_t peer = 0;  // disconnect, connect
  std::vector<DirectedLink> blocked;  // partition
  std::string partition_shape;        // "groups", "isolate" or "one-way" (for reports)
  std::vector<DirectedLink> links;    // link: the directions impaired
  LinkImpairment impairment;          // link
  WaitCondition condition = WaitCondition::connected;
  std::uint8_t wait_node = 0;  // wait primary / quorum-lost: the node
  std::uint64_t timeout_ms = 10'000;
  bool check_acknowledged = true;  // check: every acknowledged write is readable
  bool check_identical = true;     // check: diskful replicas are byte-identical
};

struct Scenario {
  std::string name;
  std::string description;
  ClusterShape cluster;
  std::uint64_t seed = 1;  // default seed (the command line may override it)
  std::vector<Step> steps;
};

[[nodiscard]] Result<Scenario> scenario_from_json(std::string_view text);
std::string_view name(StepKind kind);
std::string_view name(WaitCondition condition);
// A one-line description of a step, for reports ("partition one-way 0->1").
std::string describe(const Step& step);

// The client operations of a scenario run with `seed`, in issue order: a write's tag is its
// index + 1 on both targets.
struct PlannedOperation {
  bool write = true;
  std::uint64_t block = 0;
  std::uint64_t tag = 0;  // writes only
};
struct StepOperations {
  std::uint64_t first = 0;  // index of the step's first operation
  std::uint64_t count = 0;
};
struct OperationPlan {
  std::vector<PlannedOperation> operations;
  std::vector<StepOperations> steps;  // one per scenario step
};
OperationPlan plan_operations(const Scenario& scenario, std::uint64_t seed);

// What a run found: the same structure for both targets.
struct StepReport {
  std::string description;
  bool executed = false;
  double seconds = 0;  // wall time on the real target, simulated time on the simulator
  std::string outcome;  // what happened, or why it failed
  bool failed = false;
};
struct Verdict {
  std::string oracle;  // "acknowledged-writes", "replicas-identical", "liveness", ...
  bool held = true;
  std::string detail;
};
struct RunReport {
  std::string scenario;
  std::string target;  // "sim" or "real"
  std::uint64_t seed = 0;
  std::vector<StepReport> steps;
  std::vector<Verdict> verdicts;
  std::vector<std::string> notes;  // how the target approximated a step
  std::string trace_hash;          // the simulator's (same scenario and seed: same hash)
  std::uint64_t writes_acknowledged = 0;
  std::uint64_t writes_failed = 0;
  std::string error;  // the run could not be carried out (setup failed)

  bool passed() const;
};

std::string to_json(const RunReport& report);
std::string to_text(const RunReport& report);

}  // namespace ditto::faults
