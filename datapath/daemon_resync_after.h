// resync-after across the resources of one dittod (drbd9-semantics.md §5.5). Each resource runs
// on its own shard thread; every resync_after_poll it publishes here whether its resyncs hold
// the resources that name it in `resync-after` (core::Node::resync_holds_dependents), and asks
// whether the chain it names holds it (then core::Node::on_resync_dependency pauses its
// resyncs). The lock is taken only by those polls, never on the I/O path.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace ditto::datapath {

inline constexpr std::chrono::milliseconds resync_after_poll{100};

class ResyncAfterRegistry {
 public:
  // `name` runs here, waits for `after` (empty: for nothing) and holds its dependents or not.
  void publish(const std::string& name, const std::string& after, bool holds);
  // `name` stopped (dittoadm down): a missing resource ends a chain, as in DRBD.
  void remove(const std::string& name);
  // Whether a resource on the chain `name` names (followed transitively, at most once around)
  // holds its dependents now.
  bool dependency_active(const std::string& name) const;

 private:
  struct Entry {
    std::string after;
    bool holds = false;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

}  // namespace ditto::datapath
