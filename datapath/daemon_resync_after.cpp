#include "datapath/daemon_resync_after.h"

namespace ditto::datapath {

void ResyncAfterRegistry::publish(const std::string& name, const std::string& after, bool holds) {
  const std::lock_guard lock(mutex_);
  entries_[name] = Entry{after, holds};
}

void ResyncAfterRegistry::remove(const std::string& name) {
  const std::lock_guard lock(mutex_);
  entries_.erase(name);
}

bool ResyncAfterRegistry::dependency_active(const std::string& name) const {
  const std::lock_guard lock(mutex_);
  auto self = entries_.find(name);
  if (self == entries_.end()) return false;
  std::string next = self->second.after;
  // The configuration refuses cycles; the bound keeps a changed file from looping here.
  for (std::size_t steps = 0; !next.empty() && steps < entries_.size(); ++steps) {
    auto found = entries_.find(next);
    if (found == entries_.end() || found->first == name) return false;
    if (found->second.holds) return true;
    next = found->second.after;
  }
  return false;
}

}  // namespace ditto::datapath
