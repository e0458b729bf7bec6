// The simulated client: random 4 KiB aligned writes (1..4 blocks), reads and flushes at a
// bounded queue depth, with unique write tags. It never has two requests in flight on one block,
// which keeps the oracle exact, and it checks every read against the oracle online.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "core/node.h"
#include "core/prng.h"
#include "sim/oracle.h"

namespace ditto::sim {

struct WorkloadOptions {
  std::uint64_t operations = 1000;
  std::uint32_t queue_depth_max = 8;
  std::uint32_t read_percent = 30;
  std::uint32_t flush_percent = 5;
  std::uint32_t fua_percent = 10;  // of writes
  std::uint32_t blocks_per_write_max = 4;
};

enum class OperationKind : std::uint8_t { write, read, flush };

struct ClientOperation {
  OperationKind kind = OperationKind::write;
  RequestId request;
  std::uint64_t first_block = 0;
  std::uint32_t block_count = 0;
  std::uint64_t tag = 0;  // writes only; unique and non-zero
  bool fua = false;
  Instant issued;
};

struct WorkloadStatistics {
  std::uint64_t issued = 0;
  std::uint64_t completed = 0;
  std::uint64_t abandoned = 0;
  std::uint64_t writes_acknowledged = 0;
  std::uint64_t writes_failed = 0;
  std::uint64_t reads_checked = 0;
  std::uint64_t flushes = 0;
  std::int64_t write_latency_ns_min = 0;
  std::int64_t write_latency_ns_max = 0;
};

class Workload {
 public:
  Workload(const WorkloadOptions& options, std::uint64_t block_count);

  // The next request to issue now, or nothing (queue full, all issued, or no free blocks found).
  // The request is in flight from here on.
  std::optional<ClientOperation> next(Prng& prng, Instant now);

  // A request finished. `read_tags` holds the read's data for a successful read.
  void completed(Instant now, NodeId node, RequestId request, core::ClientStatus status,
                 std::span<const std::uint64_t> read_tags, Violations& violations);

  // The client lost its Primary: every request in flight is abandoned (writes stay possible).
  void abandon_all();

  bool all_issued() const { return statistics_.issued == options_.operations; }
  bool done() const { return all_issued() && in_flight_.empty(); }
  std::size_t in_flight() const { return in_flight_.size(); }
  std::size_t writes_in_flight() const;
  std::uint32_t queue_depth() const { return queue_depth_; }
  void set_queue_depth(std::uint32_t depth);

  const BlockOracle& oracle() const { return oracle_; }
  const WorkloadStatistics& statistics() const { return statistics_; }

 private:
  bool range_free(std::uint64_t first_block, std::uint32_t block_count) const;
  void mark(const ClientOperation& operation, bool busy);

  WorkloadOptions options_;
  std::uint32_t queue_depth_ = 1;
  BlockOracle oracle_;
  std::vector<std::uint8_t> busy_;                      // per block: a request in flight covers it
  std::map<std::uint64_t, ClientOperation> in_flight_;  // by request id
  std::uint64_t next_request_ = 1;
  std::uint64_t next_tag_ = 1;
  WorkloadStatistics statistics_;
};

}  // namespace ditto::sim
