// The scripted two-Primaries scenario (SimOptions::two_primaries): a live migration from node
// 0 to node 1 with both Primary for a while, and optionally one pair of overlapping writes on
// both Primaries at the same instant, which the cores must detect (core/node_two_primaries.cpp).
//
// The oracles need no second lineage while both Primaries are connected: the workload never
// has two requests in flight on one block, and protocol C completes a write only once every
// replica stored it, so the writes of both form one sequence per block. The overlapping pair
// is outside the workload: its tags are above every workload tag, issued to the oracle but
// never acknowledged, so either may stay on that block (the cores decide which, and the
// replicas must end identical once they are Connected and UpToDate again).
#include <string>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {

// Request ids of the overlapping pair, far above the workload's.
constexpr std::uint64_t extra_request_base = 1ull << 62;
constexpr std::uint64_t conflict_block = 7;

}  // namespace

// Called before the client issues operation `operation_index`; true: wait for now.
bool Simulation::two_primaries_before_issue(std::uint64_t operation_index) {
  const TwoPrimariesScenario& scenario = options_.two_primaries;
  if (!scenario.enabled) return false;
  const std::uint64_t operations = options_.workload.operations;
  if (two_demoting_) {
    core::Node& core = *nodes_[*two_demoting_]->core;
    if (core.statistics().upper_pending == 0 && core.role() == Role::primary) {
      const core::AdminResult result = core.on_admin(now_, core::Demote{});
      if (!result.ok) {
        violations_.add("two-Primaries scenario: demoting " + node_name(*two_demoting_) +
                        " was refused: " + result.code + " (" + result.message + ")");
      }
      drain(*two_demoting_);
      two_demoting_.reset();
    }
  }
  if (!two_promotion_started_ && operation_index >= operations / 4) {
    two_promotion_started_ = true;
    hash_.add(0x2b41ull);
    request_promotion(1, static_cast<std::uint8_t>(SimNode::PromotionReason::two_primaries));
  }
  if (scenario.conflict && two_writers_ && !two_conflict_done_ &&
      operation_index >= operations / 3) {
    if (workload_.in_flight() != 0) return true;  // a completion ticks again
    two_conflict_done_ = true;
    inject_concurrent_writes();
    // The client keeps writing on node 0; node 1 steps down (the migration is abandoned).
    two_writers_ = false;
    primary_ = 0;
    two_demoting_ = 1;
  }
  if (!scenario.conflict && two_writers_ && operation_index >= operations / 2) {
    two_writers_ = false;  // the VM moved: node 1 writes, node 0 demotes when idle
    primary_ = 1;
    two_demoting_ = 0;
  }
  return false;
}

std::uint8_t Simulation::two_primaries_writer(std::uint64_t request) const {
  return (request * 37) % 100 < 50 ? 1 : 0;
}

// Both Primaries write block conflict_block at this instant; neither write can have reached
// the other Primary.
void Simulation::inject_concurrent_writes() {
  hash_.add(0xc0f1ull);
  workload_.oracle().split_started();
  for (std::uint8_t node = 0; node < 2; ++node) {
    const std::uint64_t tag = options_.workload.operations + 1 + node;
    workload_.oracle().write_issued(conflict_block, 1, tag);
    nodes_[node]->payloads_held += 1;
    extra_writes_in_flight_ += 1;
    nodes_[node]->core->on_client_write(now_, RequestId{extra_request_base + node},
                                        Sector{conflict_block * sectors_per_block},
                                        block_size_bytes, PayloadHandle{tag}, {});
  }
  drain(0);
  drain(1);
}

// A completion of the overlapping pair (true: handled here). Any completion on a node that
// waits to demote ticks the client, which demotes it once it is idle.
bool Simulation::extra_write_completed(std::uint8_t node, const core::CompleteClient& complete) {
  if (two_demoting_ && *two_demoting_ == node) schedule_tick(Duration{0});
  if (complete.request.value < extra_request_base) return false;
  DITTO_ASSERT(extra_writes_in_flight_ > 0);
  extra_writes_in_flight_ -= 1;
  hash_.add(complete.request.value);
  if (complete.status != core::ClientStatus::ok) {
    violations_.add("two-Primaries scenario: the overlapping write on " + node_name(node) +
                    " failed: " + core::to_string(complete.status));
  }
  return true;
}

}  // namespace ditto::sim
