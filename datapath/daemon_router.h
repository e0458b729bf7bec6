// The resources of one dittod spread over its shards, and the control commands routed to them.
// The control socket runs on the main thread; each command is executed on the shard that owns
// its resource (posted to the shard's io_context, the main thread waits for the reply), `all`
// fans out to every resource, and `up`/`down` start or stop one resource at runtime without
// touching the others.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "datapath/control_server.h"
#include "datapath/daemon_config.h"
#include "datapath/daemon_shard.h"

namespace ditto::datapath {

struct RouterOptions {
  std::vector<std::string> config_paths;  // `up` re-reads them to find a resource
  std::string node_name;                   // the `on` section of this daemon
  unsigned shard_count = 1;
  ShardOptions shard;
  // A resource's NBD export and metrics address, from its configuration (main thread).
  std::function<Result<ResourceOptions>(const DaemonConfig&)> resource_options;
  std::function<ResourceMetrics(const DaemonConfig&)> resource_metrics;
  // One command for one resource ("<verb> <resource> [flags]"), run on the resource's shard.
  std::function<ControlReply(ResourceRunner&, const std::vector<std::string>&)> command;
  // Every core Event line of every resource; called on the resource's shard thread.
  std::function<void(const std::string& line)> event_sink;
};

class ResourceRouter {
 public:
  explicit ResourceRouter(RouterOptions options);
  ~ResourceRouter();
  ResourceRouter(const ResourceRouter&) = delete;
  ResourceRouter& operator=(const ResourceRouter&) = delete;

  // Starts the shards and the resources, placed round-robin in configuration order; every
  // shard starts its batch at the same time. The first error stops the start.
  [[nodiscard]] Status start(std::vector<DaemonConfig> configs);
  // The control socket's handler (main thread).
  ControlReply handle(const std::vector<std::string>& words);
  // Every running resource's Prometheus metrics, each rendered on its shard, merged into one
  // exposition (dittod --metrics; main thread).
  std::string metrics_text();
  // The daemon-wide NBD listener (daemon_nbd.h; main thread): every running resource's export,
  // whether `name` runs here, and moving a connection that chose `name` to its shard.
  std::vector<NbdExportInfo> nbd_exports();
  bool has(const std::string& name) const { return placement_.count(name) == 1; }
  void hand_off_nbd(NbdHandOff hand_off);
  void stop();

  std::size_t resource_count() const { return placement_.size(); }
  unsigned shard_count() const { return static_cast<unsigned>(shards_.size()); }

 private:
  ControlReply route(const std::vector<std::string>& words);
  ControlReply fan_out(const std::vector<std::string>& words);
  ControlReply up(const std::string& name);
  ControlReply down(const std::string& name);
  std::vector<std::string> configured_names() const;
  unsigned least_loaded_shard() const;
  [[nodiscard]] Status add_on_shard(unsigned shard, DaemonConfig config);

  RouterOptions options_;
  std::vector<std::unique_ptr<DaemonShard>> shards_;
  std::map<std::string, unsigned> placement_;  // resource → shard (main thread only)
  // resync-after between the resources of this daemon, shared by them (daemon_resync_after.h).
  std::shared_ptr<ResyncAfterRegistry> resync_after_ = std::make_shared<ResyncAfterRegistry>();
};

// Every resource of the files that has an `on node_name` section (resources of other hosts are
// skipped), each checked as load_daemon_config does; none at all is an error. With
// resource_name set: only that one, from the first file that defines it.
Result<std::vector<DaemonConfig>> load_node_resources(const std::vector<std::string>& paths,
                                                      const std::string& node_name,
                                                      const std::string& resource_name = "");

// Joins the replies of one command fanned out to several resources, the way drbdsetup prints
// `all`: status texts separated by a blank line, one JSON list, one events2 `exists -` end
// marker; the highest exit status.
ControlReply combine_replies(const std::string& verb, std::vector<ControlReply> replies);

}  // namespace ditto::datapath
