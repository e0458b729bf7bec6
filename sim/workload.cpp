#include "sim/workload.h"

#include <algorithm>
#include <string>

#include "core/assert.h"
#include "sim/sim_disk.h"
#include "sim/streams.h"

namespace ditto::sim {

Workload::Workload(const SimOptions& options, const std::vector<OperationSpec>* operations)
    : options_(options.workload),
      operations_(operations),
      operation_prng_(Prng::derive(options.seed, stream_operations)),
      block_count_(options.volume_size_bytes / block_size_bytes),
      operation_count_(operations != nullptr ? operations->size() : options.workload.operations),
      oracle_(block_count_, options.nodes),
      busy_(block_count_, 0) {
  DITTO_ASSERT(options_.queue_depth_max >= 1);
  DITTO_ASSERT(options_.blocks_per_write_max >= 1 && options_.blocks_per_write_max <= block_count_);
  if (options_.queue_depth != 0) {
    queue_depth_ = options_.queue_depth;
  } else {
    Prng prng = Prng::derive(options.seed, stream_workload);
    queue_depth_ = static_cast<std::uint32_t>(prng.between(1, options_.queue_depth_max));
  }
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

std::optional<ClientOperation> Workload::next(Instant now) {
  if (all_issued() || in_flight_.size() >= queue_depth_) return std::nullopt;
  if (!head_) {
    head_ = operations_ != nullptr ? (*operations_)[next_index_]
                                   : draw_operation(operation_prng_, options_, block_count_);
  }
  const OperationSpec& spec = *head_;
  DITTO_ASSERT(spec.first_block + spec.block_count <= block_count_);
  if (spec.kind != OperationKind::flush && !range_free(spec.first_block, spec.block_count)) {
    return std::nullopt;  // head-of-line: wait until the blocks are free
  }
  ClientOperation operation;
  operation.kind = spec.kind;
  operation.request = RequestId{next_index_ + 1};
  operation.first_block = spec.first_block;
  operation.block_count = spec.block_count;
  operation.fua = spec.fua;
  operation.issued = now;
  if (spec.kind == OperationKind::write) {
    operation.tag = next_index_ + 1;
    oracle_.write_issued(operation.first_block, operation.block_count, operation.tag);
  }
  if (spec.kind != OperationKind::flush) mark(operation, true);
  head_.reset();
  next_index_ += 1;
  statistics_.issued += 1;
  in_flight_.push_back(operation);
  DITTO_ASSERT(in_flight_.size() <= queue_depth_);
  return operation;
}

const ClientOperation* Workload::find(RequestId request) const {
  auto found = std::find_if(in_flight_.begin(), in_flight_.end(),
                            [&](const ClientOperation& entry) { return entry.request == request; });
  return found == in_flight_.end() ? nullptr : &*found;
}

void Workload::completed(Instant now, NodeId node, RequestId request, core::ClientStatus status,
                         std::span<const std::uint64_t> read_tags, Holders holders,
                         bool sent_only, bool read_error_injected, Violations& violations) {
  auto found = std::find_if(in_flight_.begin(), in_flight_.end(),
                            [&](const ClientOperation& entry) { return entry.request == request; });
  // A completion for an abandoned request (its Primary crashed) cannot arrive: the simulator
  // drops every output of a crashed node.
  DITTO_ASSERT(found != in_flight_.end());
  const ClientOperation operation = *found;
  *found = in_flight_.back();
  in_flight_.pop_back();
  statistics_.completed += 1;
  const bool ok = status == core::ClientStatus::ok;
  switch (operation.kind) {
    case OperationKind::flush:
      statistics_.flushes += 1;
      break;
    case OperationKind::write: {
      if (!ok) {
        statistics_.writes_failed += 1;
        break;
      }
      // Like a failed write, one acknowledged on its sending alone stays possible until a later
      // write is acknowledged, and requires nothing.
      if (!sent_only) oracle_.write_acknowledged(operation.tag, holders);
      const std::int64_t latency_ns = (now - operation.issued).ns;
      if (statistics_.writes_acknowledged == 0 || latency_ns < statistics_.write_latency_ns_min) {
        statistics_.write_latency_ns_min = latency_ns;
      }
      statistics_.write_latency_ns_max = std::max(statistics_.write_latency_ns_max, latency_ns);
      statistics_.writes_acknowledged += 1;
      break;
    }
    case OperationKind::read:
      check_read(node, operation, status, read_tags, read_error_injected, violations);
      break;
  }
  if (operation.kind != OperationKind::flush) mark(operation, false);
}

void Workload::check_read(NodeId node, const ClientOperation& operation, core::ClientStatus status,
                          std::span<const std::uint64_t> read_tags, bool read_error_injected,
                          Violations& violations) {
  const std::string where =
      "read " + std::to_string(operation.request.value) + " on node " + std::to_string(node.value);
  if (status == core::ClientStatus::ok) {
    DITTO_ASSERT_EQ(read_tags.size(), operation.block_count);
    oracle_.check(where, operation.first_block, read_tags, violations);
    statistics_.reads_checked += 1;
    return;
  }
  statistics_.reads_failed += 1;
  // An injected EIO explains a failed read, and the refused reads of the disk it detached
  // (no data is better than wrong data); nothing else does: the Primary is UpToDate.
  const bool failed_read = status == core::ClientStatus::io_error ||
                           status == core::ClientStatus::no_data;
  if (failed_read && read_error_injected) return;
  violations.add(where + " failed with status " + core::to_string(status));
}

void Workload::abandon_all() {
  for (const ClientOperation& operation : in_flight_) {
    if (operation.kind != OperationKind::flush) mark(operation, false);
    statistics_.abandoned += 1;
  }
  in_flight_.clear();
}

void Workload::give_up() {
  statistics_.not_issued += operation_count_ - next_index_;
  next_index_ = operation_count_;
  head_.reset();
}

std::optional<Instant> Workload::oldest_issue() const {
  std::optional<Instant> oldest;
  for (const ClientOperation& operation : in_flight_) {
    if (!oldest || operation.issued < *oldest) oldest = operation.issued;
  }
  return oldest;
}

std::size_t Workload::writes_in_flight() const {
  return static_cast<std::size_t>(std::count_if(
      in_flight_.begin(), in_flight_.end(),
      [](const ClientOperation& entry) { return entry.kind == OperationKind::write; }));
}

}  // namespace ditto::sim
