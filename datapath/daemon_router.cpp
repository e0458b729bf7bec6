#include "datapath/daemon_router.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <optional>

#include <nlohmann/json.hpp>

namespace ditto::datapath {
namespace {

// events2 --now output minus its last line when that is the `exists -` end marker.
std::string without_end_marker(const std::string& text) {
  if (text.size() < 2) return text;
  const std::size_t start = text.rfind('\n', text.size() - 2);
  const std::size_t line_start = start == std::string::npos ? 0 : start + 1;
  const std::string last = text.substr(line_start);
  if (last.size() >= 9 && last.compare(last.size() - 9, 9, "exists -\n") == 0) {
    return text.substr(0, line_start);
  }
  return text;
}

}  // namespace

ControlReply combine_replies(const std::string& verb, std::vector<ControlReply> replies) {
  ControlReply combined;
  if (replies.empty()) return combined;
  const bool json = verb == "status" && !replies.front().text.empty() &&
                    replies.front().text.front() == '[';
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t index = 0; index < replies.size(); ++index) {
    ControlReply& reply = replies[index];
    combined.exit_status = std::max(combined.exit_status, reply.exit_status);
    combined.subscribe = reply.subscribe;
    combined.timestamps = reply.timestamps;
    const bool last = index + 1 == replies.size();
    if (json) {
      auto parsed = nlohmann::json::parse(reply.text, nullptr, false);
      if (parsed.is_array()) {
        for (auto& element : parsed) list.push_back(std::move(element));
        continue;
      }
    }
    if (verb == "events2" && !last) {
      combined.text += without_end_marker(reply.text);
    } else if (verb == "status" && !last && !reply.text.empty()) {
      combined.text += reply.text + "\n";
    } else {
      combined.text += reply.text;
    }
  }
  if (json) combined.text = list.dump(2) + "\n";
  return combined;
}

ResourceRouter::ResourceRouter(RouterOptions options) : options_(std::move(options)) {
  DITTO_ASSERT(options_.shard_count >= 1);
}

ResourceRouter::~ResourceRouter() { stop(); }

Status ResourceRouter::start(std::vector<DaemonConfig> configs) {
  for (unsigned index = 0; index < options_.shard_count; ++index) {
    shards_.push_back(std::make_unique<DaemonShard>(index, options_.shard));
    if (Status status = shards_.back()->start(); !status.ok()) return status;
  }
  // Options first (main thread), then each shard starts its share in parallel.
  std::vector<std::vector<std::pair<DaemonConfig, ResourceOptions>>> batches(shards_.size());
  for (std::size_t index = 0; index < configs.size(); ++index) {
    auto options = options_.resource_options(configs[index]);
    if (!options.ok()) return options.error();
    options.value().resync_after = resync_after_;
    if (placement_.count(configs[index].resource.name) != 0) {
      return Error{configs[index].resource.location.to_string() + ": resource '" +
                   configs[index].resource.name + "' is defined twice"};
    }
    const auto shard = static_cast<unsigned>(index % shards_.size());
    placement_[configs[index].resource.name] = shard;
    batches[shard].emplace_back(std::move(configs[index]), std::move(options).value());
  }
  std::vector<std::future<Status>> results;
  for (std::size_t shard = 0; shard < shards_.size(); ++shard) {
    auto task = std::make_shared<std::packaged_task<Status()>>(
        [this, shard, batch = std::move(batches[shard])]() mutable -> Status {
          for (auto& [config, options] : batch) {
            const std::string name = config.resource.name;
            ResourceMetrics metrics = options_.resource_metrics(config);
            Status status = shards_[shard]->add(std::move(config), std::move(options), metrics);
            if (!status.ok()) return status;
            shards_[shard]->find(name)->set_event_sink(options_.event_sink);
          }
          return Status::success();
        });
    results.push_back(task->get_future());
    boost::asio::post(shards_[shard]->io(), [task] { (*task)(); });
  }
  Status first = Status::success();
  for (auto& result : results) {
    Status status = result.get();
    if (!status.ok() && first.ok()) first = status;
  }
  return first;
}

void ResourceRouter::stop() {
  for (auto& shard : shards_) shard->stop();
  shards_.clear();
  placement_.clear();
}

ControlReply ResourceRouter::handle(const std::vector<std::string>& words) {
  if (words.size() < 2) return {2, "usage: <verb> <resource> [options]\n"};
  const std::string& verb = words[0];
  const std::string& name = words[1];
  if (verb == "up" || verb == "down") {
    std::vector<std::string> names;
    if (name != "all") {
      names.push_back(name);
    } else if (verb == "up") {
      for (const std::string& configured : configured_names()) {
        if (placement_.count(configured) == 0) names.push_back(configured);
      }
    } else {
      for (const auto& [running, shard] : placement_) names.push_back(running);
    }
    std::vector<ControlReply> replies;
    for (const std::string& each : names) replies.push_back(verb == "up" ? up(each) : down(each));
    return combine_replies(verb, std::move(replies));
  }
  if (name == "all") return fan_out(words);
  return route(words);
}

ControlReply ResourceRouter::route(const std::vector<std::string>& words) {
  const std::string name = words[1];
  const auto found = placement_.find(name);
  if (found == placement_.end()) {
    return {10, "error: resource '" + name + "' is not up on this daemon\n"};
  }
  DaemonShard* shard = shards_[found->second].get();
  ControlReply reply = shard->call([this, shard, &words, &name] {
    ResourceRunner* runner = shard->find(name);
    if (runner == nullptr) return ControlReply{10, "error: resource '" + name + "' is not up\n"};
    return options_.command(*runner, words);
  });
  if (reply.wait) {
    // The deferred outcome reads the resource: poll it on its shard.
    reply.wait = [shard, name, inner = std::move(reply.wait)]() {
      return shard->call([shard, &name, &inner]() -> std::optional<ControlReply> {
        if (shard->find(name) == nullptr) {
          return ControlReply{11, "error: resource '" + name + "' went down meanwhile\n"};
        }
        return inner();
      });
    };
  }
  if (reply.subscribe) reply.events_resource = name;
  return reply;
}

std::string ResourceRouter::metrics_text() {
  std::vector<std::string> texts;
  for (const auto& [name, index] : placement_) {
    DaemonShard* shard = shards_[index].get();
    texts.push_back(shard->call([shard, &name] {
      const ResourceRunner* runner = shard->find(name);
      return runner == nullptr ? std::string() : ditto::datapath::metrics_text(*runner);
    }));
  }
  return merge_metrics_texts(texts);
}

std::vector<NbdExportInfo> ResourceRouter::nbd_exports() {
  std::vector<NbdExportInfo> exports;
  for (const auto& [name, index] : placement_) {
    DaemonShard* shard = shards_[index].get();
    std::vector<NbdExportInfo> more = shard->call([shard, &name] {
      ResourceRunner* runner = shard->find(name);
      return runner == nullptr ? std::vector<NbdExportInfo>() : runner->list_exports();
    });
    exports.insert(exports.end(), more.begin(), more.end());
  }
  return exports;
}

void ResourceRouter::hand_off_nbd(NbdHandOff hand_off) {
  const auto found = placement_.find(hand_off.export_name);
  if (found == placement_.end()) {
    ::close(hand_off.descriptor);  // went down since routes_export said yes
    return;
  }
  DaemonShard* shard = shards_[found->second].get();
  boost::asio::post(shard->io(), [shard, hand_off = std::move(hand_off)]() mutable {
    ResourceRunner* runner = shard->find(hand_off.export_name);
    if (runner == nullptr) {
      ::close(hand_off.descriptor);
      return;
    }
    runner->adopt_nbd(std::move(hand_off));
  });
}

ControlReply ResourceRouter::fan_out(const std::vector<std::string>& words) {
  std::vector<ControlReply> replies;
  for (const auto& [name, shard] : placement_) {
    std::vector<std::string> one = words;
    one[1] = name;
    replies.push_back(route(one));
  }
  if (replies.empty()) return {10, "error: no resource is up on this daemon\n"};
  // Deferred outcomes (promotions) are waited for together.
  const bool deferred = std::any_of(replies.begin(), replies.end(),
                                    [](const ControlReply& reply) { return bool(reply.wait); });
  const std::string verb = words[0];
  ControlReply combined;
  if (deferred) {
    auto pending = std::make_shared<std::vector<ControlReply>>(std::move(replies));
    combined.wait = [pending, verb]() -> std::optional<ControlReply> {
      bool all_done = true;
      for (ControlReply& reply : *pending) {
        if (!reply.wait) continue;
        if (auto done = reply.wait()) {
          reply = *done;
        } else {
          all_done = false;
        }
      }
      if (!all_done) return std::nullopt;
      return combine_replies(verb, *pending);
    };
    return combined;
  }
  combined = combine_replies(verb, std::move(replies));
  combined.events_resource.clear();  // `events2 all`: every resource's lines
  return combined;
}

std::vector<std::string> ResourceRouter::configured_names() const {
  std::vector<std::string> names;
  auto configs = load_node_resources(options_.config_paths, options_.node_name);
  if (!configs.ok()) return names;
  for (const DaemonConfig& config : configs.value()) names.push_back(config.resource.name);
  return names;
}

Result<std::vector<DaemonConfig>> load_node_resources(const std::vector<std::string>& paths,
                                                      const std::string& node_name,
                                                      const std::string& resource_name) {
  std::vector<DaemonConfig> result;
  for (const std::string& path : paths) {
    auto parsed = parse_config_file(path);
    if (!parsed.ok()) return parsed.error();
    DaemonOptions options;
    options.config_path = path;
    options.node_name = node_name;
    for (const config::Resource& resource : parsed.value().resources) {
      if (!resource_name.empty() && resource.name != resource_name) continue;
      // With a name given, its missing host section is the error resource_daemon_config names.
      if (resource_name.empty() && resource.find_host(node_name) == nullptr) continue;
      auto one = resource_daemon_config(resource, options);
      if (!one.ok()) return one.error();
      result.push_back(std::move(one).value());
      if (!resource_name.empty()) return result;
    }
  }
  if (!resource_name.empty()) {
    return Error{"no resource named '" + resource_name + "' in the configuration"};
  }
  if (result.empty()) {
    std::string files;
    for (const std::string& path : paths) files += (files.empty() ? "" : ", ") + path;
    return Error{files + ": has no 'on " + node_name +
                 "' section in any resource (use --node to pick one)"};
  }
  return result;
}

unsigned ResourceRouter::least_loaded_shard() const {
  std::vector<std::size_t> load(shards_.size(), 0);
  for (const auto& [name, shard] : placement_) load[shard]++;
  return static_cast<unsigned>(std::min_element(load.begin(), load.end()) - load.begin());
}

Status ResourceRouter::add_on_shard(unsigned shard_index, DaemonConfig config) {
  auto options = options_.resource_options(config);
  if (!options.ok()) return options.error();
  options.value().resync_after = resync_after_;
  const ResourceMetrics metrics = options_.resource_metrics(config);
  DaemonShard& shard = *shards_[shard_index];
  return shard.call([this, &shard, &config, &options, &metrics] {
    const std::string name = config.resource.name;
    Status status = shard.add(std::move(config), std::move(options).value(), metrics);
    if (status.ok()) shard.find(name)->set_event_sink(options_.event_sink);
    return status;
  });
}

ControlReply ResourceRouter::up(const std::string& name) {
  if (placement_.count(name) != 0) return {10, "error: resource '" + name + "' is already up\n"};
  auto configs = load_node_resources(options_.config_paths, options_.node_name, name);
  if (!configs.ok()) return {10, "error: " + configs.error().message + "\n"};
  const unsigned shard = least_loaded_shard();
  if (Status status = add_on_shard(shard, std::move(configs.value().front()));
      !status.ok()) {
    return {10, "error: " + status.error().message + "\n"};
  }
  placement_[name] = shard;
  std::fprintf(stderr, "dittod: resource %s up on shard %u\n", name.c_str(), shard);
  return {0, ""};
}

ControlReply ResourceRouter::down(const std::string& name) {
  const auto found = placement_.find(name);
  if (found == placement_.end()) {
    return {10, "error: resource '" + name + "' is not up on this daemon\n"};
  }
  DaemonShard& shard = *shards_[found->second];
  ControlReply reply = shard.call([&shard, &name] { return shard.remove(name); });
  if (reply.exit_status == 0) {
    placement_.erase(found);
    std::fprintf(stderr, "dittod: resource %s down\n", name.c_str());
  }
  return reply;
}

}  // namespace ditto::datapath
