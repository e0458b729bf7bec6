#include "sim/workload.h"

#include <algorithm>
#include <string>

#include "core/assert.h"

namespace ditto::sim {

Workload::Workload(const WorkloadOptions& options, std::uint64_t block_count)
    : options_(options),
      queue_depth_(options.queue_depth_max),
      oracle_(block_count),
      busy_(block_count, 0) {
  DITTO_ASSERT(options_.queue_depth_max >= 1);
  DITTO_ASSERT(options_.blocks_per_write_max >= 1 && options_.blocks_per_write_max <= block_count);
}

void Workload::set_queue_depth(std::uint32_t depth) {
  DITTO_ASSERT(depth >= 1 && depth <= options_.queue_depth_max);
  queue_depth_ = depth;
}

bool Workload::range_free(std::uint64_t first_block, std::uint32_t block_count) const {
  for (std::uint64_t block = first_block; block < first_block + block_count; ++block) {
    if (busy_[block] != 0) return false;
  }
  return true;
}

void Workload::mark(const ClientOperation& operation, bool busy) {
  for (std::uint64_t block = operation.first_block;
       block < operation.first_block + operation.block_count; ++block) {
    DITTO_ASSERT((busy_[block] != 0) != busy);
    busy_[block] = busy ? 1 : 0;
  }
}

std::optional<ClientOperation> Workload::next(Prng& prng, Instant now) {
  if (all_issued() || in_flight_.size() >= queue_depth_) return std::nullopt;
  ClientOperation operation;
  operation.request = RequestId{next_request_};
  operation.issued = now;
  const std::uint64_t roll = prng.below(100);
  if (roll < options_.flush_percent) {
    operation.kind = OperationKind::flush;
  } else {
    operation.kind = roll < options_.flush_percent + options_.read_percent ? OperationKind::read
                                                                           : OperationKind::write;
    const std::uint64_t block_count = busy_.size();
    operation.block_count =
        static_cast<std::uint32_t>(prng.between(1, options_.blocks_per_write_max));
    // A few tries to find a free range; with QD ≤ 8 on thousands of blocks the first one works.
    bool found = false;
    for (int attempt = 0; attempt < 8 && !found; ++attempt) {
      operation.first_block = prng.below(block_count - operation.block_count + 1);
      found = range_free(operation.first_block, operation.block_count);
    }
    if (!found) return std::nullopt;
    if (operation.kind == OperationKind::write) {
      operation.tag = next_tag_++;
      operation.fua = prng.chance(options_.fua_percent, 100);
      oracle_.write_issued(operation.first_block, operation.block_count, operation.tag);
    }
    mark(operation, true);
  }
  next_request_ += 1;
  statistics_.issued += 1;
  in_flight_.emplace(operation.request.value, operation);
  DITTO_ASSERT(in_flight_.size() <= queue_depth_);
  return operation;
}

void Workload::completed(Instant now, NodeId node, RequestId request, core::ClientStatus status,
                         std::span<const std::uint64_t> read_tags, Violations& violations) {
  auto found = in_flight_.find(request.value);
  // A completion for an abandoned request (its Primary crashed) cannot arrive: the simulator
  // drops every output of a crashed node.
  DITTO_ASSERT(found != in_flight_.end());
  const ClientOperation operation = found->second;
  in_flight_.erase(found);
  statistics_.completed += 1;
  const bool ok = status == core::ClientStatus::ok;
  switch (operation.kind) {
    case OperationKind::flush:
      statistics_.flushes += 1;
      break;
    case OperationKind::write: {
      oracle_.write_completed(operation.first_block, operation.block_count, operation.tag, ok);
      if (!ok) {
        statistics_.writes_failed += 1;
        break;
      }
      const std::int64_t latency_ns = (now - operation.issued).ns;
      if (statistics_.writes_acknowledged == 0 || latency_ns < statistics_.write_latency_ns_min) {
        statistics_.write_latency_ns_min = latency_ns;
      }
      statistics_.write_latency_ns_max = std::max(statistics_.write_latency_ns_max, latency_ns);
      statistics_.writes_acknowledged += 1;
      break;
    }
    case OperationKind::read:
      if (ok) {
        DITTO_ASSERT_EQ(read_tags.size(), operation.block_count);
        oracle_.check(
            "read " + std::to_string(request.value) + " on node " + std::to_string(node.value),
            operation.first_block, read_tags, violations);
        statistics_.reads_checked += 1;
      } else {
        violations.add("read " + std::to_string(request.value) + " on node " +
                       std::to_string(node.value) + " failed with status " +
                       core::to_string(status));
      }
      break;
  }
  if (operation.kind != OperationKind::flush) mark(operation, false);
}

void Workload::abandon_all() {
  for (const auto& [request, operation] : in_flight_) {
    if (operation.kind != OperationKind::flush) mark(operation, false);
    statistics_.abandoned += 1;
  }
  in_flight_.clear();
}

std::size_t Workload::writes_in_flight() const {
  return static_cast<std::size_t>(
      std::count_if(in_flight_.begin(), in_flight_.end(),
                    [](const auto& entry) { return entry.second.kind == OperationKind::write; }));
}

}  // namespace ditto::sim
