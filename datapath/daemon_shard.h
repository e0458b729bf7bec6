// One shard of dittod: a thread with its own Asio io_context, one io_uring ring and one buffer
// pool, shared by every resource placed on it (DESIGN.md: shard-per-core). A resource lives
// entirely on its shard — NBD sockets, disk, peer sockets, timers — so its I/O path takes no
// lock. Other threads reach a shard only through call()/post() (the control path).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio.hpp>

#include "core/assert.h"
#include "core/result.h"
#include "datapath/control_metrics.h"
#include "datapath/control_server.h"
#include "datapath/daemon_resource.h"
#include "datapath/uring_buffer_pool.h"
#include "datapath/uring_ring.h"

namespace ditto::datapath {

struct ShardOptions {
  UringRingOptions ring{.queue_depth = 1024, .backlog_limit = 4096, .fixed_files_max = 1024};
  std::size_t buffer_slab_bytes = 64u << 20;  // the shard's pool, shared by its resources
};

// Where a resource's Prometheus metrics are served (dittod --metrics); empty host: nowhere.
struct ResourceMetrics {
  std::string host;
  std::uint16_t port = 0;
};

class DaemonShard {
 public:
  DaemonShard(unsigned index, ShardOptions options);
  ~DaemonShard();
  DaemonShard(const DaemonShard&) = delete;
  DaemonShard& operator=(const DaemonShard&) = delete;

  // Creates the ring and the pool, then starts the thread. Errors name the shard.
  [[nodiscard]] Status start();
  // Stops every resource (on the shard thread), then the thread; idempotent.
  void stop();

  unsigned index() const { return index_; }
  boost::asio::io_context& io() { return io_; }
  bool on_shard_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // Runs `function` on the shard thread and waits for its result. Control path only: never
  // from the shard's own thread.
  template <typename Function>
  auto call(Function function) -> std::invoke_result_t<Function> {
    DITTO_ASSERT(!on_shard_thread());
    using Value = std::invoke_result_t<Function>;
    std::packaged_task<Value()> task(std::move(function));
    std::future<Value> future = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return future.get();
  }

  // ---- Shard thread only ----
  // Opens, creates and starts the resource here; on error nothing of it stays.
  [[nodiscard]] Status add(DaemonConfig config, ResourceOptions options, ResourceMetrics metrics);
  // `down`: refuses (SS_DEVICE_IN_USE) while NBD clients have the volume open; otherwise
  // demotes a Primary, closes its NBD export and peer connections and its disk. Exit status 0
  // on success, as the control socket answers.
  ControlReply remove(const std::string& name);
  ResourceRunner* find(const std::string& name);
  std::vector<std::string> names() const;

 private:
  void register_pool();
  struct Entry {
    std::unique_ptr<ResourceRunner> runner;
    std::unique_ptr<MetricsServer> metrics;
  };
  struct Retired {
    std::chrono::steady_clock::time_point due;
    Entry entry;
  };
  void retire(Entry entry);
  void sweep_retired();
  void run();

  unsigned index_;
  ShardOptions options_;
  boost::asio::io_context io_{1};
  std::unique_ptr<UringRing> ring_;
  std::unique_ptr<AlignedBufferPool> pool_;
  std::map<std::string, Entry> resources_;
  // Stopped resources, destroyed a moment later: handlers they posted before stopping (transport
  // and NBD completions with operation_aborted) may still run and must find them.
  std::vector<Retired> retired_;  // in order of `due`
  std::unique_ptr<boost::asio::steady_timer> retire_timer_;
  bool sweep_pending_ = false;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace ditto::datapath
