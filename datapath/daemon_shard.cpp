#include "datapath/daemon_shard.h"

#include <chrono>
#include <cstdio>

namespace ditto::datapath {
namespace {

// How long a stopped resource is kept before it is destroyed (see DaemonShard::retired_).
constexpr auto retire_delay = std::chrono::seconds(2);

}  // namespace

DaemonShard::DaemonShard(unsigned index, ShardOptions options)
    : index_(index), options_(options) {}

DaemonShard::~DaemonShard() { stop(); }

Status DaemonShard::start() {
  const std::string label = "shard " + std::to_string(index_) + " ring";
  auto ring = UringRing::create(io_, label, options_.ring);
  if (!ring.ok()) return ring.error();
  ring_ = std::move(ring).value();
  pool_ = std::make_unique<AlignedBufferPool>(options_.buffer_slab_bytes);
  register_pool();
  thread_ = std::thread([this] { run(); });
  return Status::success();
}

// The pool's slab becomes the ring's fixed buffer: reads and writes from it use
// READ_FIXED/WRITE_FIXED, so the kernel does not look up and pin the pages of every O_DIRECT
// request (get_user_pages was about 3 % of dittod's CPU at QD 32). The slab stays pinned while
// the shard runs. Without it (RLIMIT_MEMLOCK too low for an unprivileged daemon) everything
// works as before, a little slower.
void DaemonShard::register_pool() {
  if (pool_->slab().empty()) return;
  if (Status status = ring_->register_buffers(pool_->slab()); !status.ok()) {
    std::fprintf(stderr, "dittod: shard %u: I/O buffers not registered, using plain ones: %s\n",
                 index_, status.error().message.c_str());
  }
}

void DaemonShard::run() {
  auto work = boost::asio::make_work_guard(io_);
  io_.run();
}

void DaemonShard::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (thread_.joinable()) {
    call([this] {
      for (auto& [name, entry] : resources_) {
        if (entry.metrics) entry.metrics->stop();
        entry.runner->stop();
      }
      return 0;
    });
    io_.stop();
    thread_.join();
  }
  // The thread is gone: destroying here races with nothing. Resources before the ring and pool
  // they use; every handler still queued on io_ is destroyed with it, unrun.
  resources_.clear();
  retired_.clear();
  retire_timer_.reset();
  if (ring_) ring_->shutdown();
}

Status DaemonShard::add(DaemonConfig config, ResourceOptions options, ResourceMetrics metrics) {
  DITTO_ASSERT(on_shard_thread());
  const std::string name = config.resource.name;
  DITTO_ASSERT(resources_.count(name) == 0);
  options.shard_ring = ring_.get();
  options.shard_pool = pool_.get();
  auto runner = ResourceRunner::create(io_, std::move(config), std::move(options));
  if (!runner.ok()) return runner.error();
  Entry entry{std::move(runner).value(), nullptr};
  if (Status status = entry.runner->start(); !status.ok()) {
    entry.runner->stop();
    retire(std::move(entry));
    return status;
  }
  if (!metrics.host.empty()) {
    entry.metrics = std::make_unique<MetricsServer>(io_, *entry.runner);
    if (Status status = entry.metrics->listen(metrics.host, metrics.port); !status.ok()) {
      entry.runner->stop();
      retire(std::move(entry));
      return status;
    }
    std::fprintf(stderr, "dittod: metrics of %s on http://%s:%u/metrics\n", name.c_str(),
                 metrics.host.c_str(), unsigned{entry.metrics->port()});
  }
  resources_.emplace(name, std::move(entry));
  return Status::success();
}

ControlReply DaemonShard::remove(const std::string& name) {
  DITTO_ASSERT(on_shard_thread());
  auto found = resources_.find(name);
  if (found == resources_.end()) return {10, "error: resource '" + name + "' is not up\n"};
  ResourceRunner& runner = *found->second.runner;
  if (runner.open_sessions() > 0) {
    return {11, name + ": State change failed: (SS_DEVICE_IN_USE) " +
                    std::to_string(runner.open_sessions()) +
                    " NBD connections have the volume open\n"};
  }
  if (runner.node().role() == Role::primary) {
    const core::AdminResult demoted = runner.admin(core::Demote{});
    if (!demoted.ok) {
      return {11, name + ": State change failed: (" + demoted.code + ") " + demoted.message +
                      "\n"};
    }
  }
  Entry entry = std::move(found->second);
  resources_.erase(found);
  if (entry.metrics) entry.metrics->stop();
  entry.runner->set_event_sink({});
  entry.runner->stop();  // closes the NBD export, the peer connections and the disk
  retire(std::move(entry));
  return {0, ""};
}

void DaemonShard::retire(Entry entry) {
  retired_.push_back({std::chrono::steady_clock::now() + retire_delay, std::move(entry)});
  if (sweep_pending_) return;
  if (!retire_timer_) retire_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  sweep_retired();
}

void DaemonShard::sweep_retired() {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(retired_, [now](const Retired& retired) { return retired.due <= now; });
  sweep_pending_ = !retired_.empty();
  if (!sweep_pending_) return;
  retire_timer_->expires_at(retired_.front().due);
  retire_timer_->async_wait([this](boost::system::error_code error) {
    if (!error) sweep_retired();
  });
}

ResourceRunner* DaemonShard::find(const std::string& name) {
  DITTO_ASSERT(on_shard_thread());
  auto found = resources_.find(name);
  return found == resources_.end() ? nullptr : found->second.runner.get();
}

std::vector<std::string> DaemonShard::names() const {
  std::vector<std::string> result;
  for (const auto& [name, entry] : resources_) result.push_back(name);
  return result;
}

}  // namespace ditto::datapath
