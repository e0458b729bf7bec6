// The simulated client: issues a schedule's operations in order (4 KiB aligned writes, reads and
// flushes) at a bounded queue depth. Write tags are the operation index + 1 (unique, growing).
// It never has two requests in flight on one block (an operation waits until its blocks are
// free), which keeps the oracle exact, and it checks every read against the oracle online.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/node.h"
#include "core/prng.h"
#include "sim/oracle.h"
#include "sim/schedule.h"

namespace ditto::sim {

struct ClientOperation {
  OperationKind kind = OperationKind::write;
  RequestId request;
  std::uint64_t first_block = 0;
  std::uint32_t block_count = 0;
  std::uint64_t tag = 0;  // writes only
  bool fua = false;
  Instant issued;
};

struct WorkloadStatistics {
  std::uint64_t issued = 0;
  std::uint64_t completed = 0;
  std::uint64_t abandoned = 0;
  std::uint64_t not_issued = 0;  // given up: no Primary could be found any more
  std::uint64_t writes_acknowledged = 0;
  std::uint64_t writes_failed = 0;
  std::uint64_t reads_checked = 0;
  std::uint64_t reads_failed = 0;
  std::uint64_t flushes = 0;
  std::int64_t write_latency_ns_min = 0;
  std::int64_t write_latency_ns_max = 0;
};

class Workload {
 public:
  // `operations` null: draw them from `seed` (the same list draw_operations returns).
  Workload(const SimOptions& options, const std::vector<OperationSpec>* operations);

  // The next operation to issue now, or nothing (queue full, all issued, or its blocks busy).
  // The request is in flight from here on.
  std::optional<ClientOperation> next(Instant now);
  const ClientOperation* find(RequestId request) const;

  // A request finished. `read_tags` holds a successful read's data; `holders` the nodes that
  // had a successful write on disk when it was acknowledged (BlockOracle::write_acknowledged);
  // `sent_only` whether a successful write's acknowledgement rests on its sending alone
  // (protocol A or B, the Primary's own disk failed it and no disk had it): it is durable only
  // where it landed, so the oracle keeps it possible without requiring it;
  // `read_error_injected` whether a failed read is explained by an injected EIO.
  void completed(Instant now, NodeId node, RequestId request, core::ClientStatus status,
                 std::span<const std::uint64_t> read_tags, Holders holders, bool sent_only,
                 bool read_error_injected, Violations& violations);

  // The client lost its Primary: every request in flight is abandoned (writes stay possible).
  void abandon_all();
  // No Primary will come back: the operations not yet issued never will be.
  void give_up();

  bool all_issued() const { return next_index_ == operation_count_; }
  bool done() const { return all_issued() && in_flight_.empty(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  std::size_t writes_in_flight() const;
  std::uint32_t queue_depth() const { return queue_depth_; }
  std::optional<Instant> oldest_issue() const;

  BlockOracle& oracle() { return oracle_; }
  const BlockOracle& oracle() const { return oracle_; }
  const WorkloadStatistics& statistics() const { return statistics_; }

 private:
  bool range_free(std::uint64_t first_block, std::uint32_t block_count) const;
  void mark(const ClientOperation& operation, bool busy);
  void check_read(NodeId node, const ClientOperation& operation, core::ClientStatus status,
                  std::span<const std::uint64_t> read_tags, bool read_error_injected,
                  Violations& violations);

  WorkloadOptions options_;
  const std::vector<OperationSpec>* operations_;
  Prng operation_prng_;
  std::uint64_t block_count_;
  std::uint64_t operation_count_;
  std::uint32_t queue_depth_ = 1;
  std::uint64_t next_index_ = 0;
  std::optional<OperationSpec> head_;  // the next operation, drawn but not issued
  BlockOracle oracle_;
  std::vector<std::uint8_t> busy_;                      // per block: a request in flight covers it
  // At most queue_depth_ entries, unordered: a flat vector (no allocation per request).
  std::vector<ClientOperation> in_flight_;
  WorkloadStatistics statistics_;
};

}  // namespace ditto::sim
