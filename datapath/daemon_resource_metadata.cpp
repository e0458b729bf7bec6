// ResourceRunner and the DRBD v09 metadata of its disk: checked in create(), marked in use by
// start() before any data I/O, written back by a clean stop() (metadata_store.h has the rules).
#include <string>
#include <vector>

#include "core/assert.h"
#include "datapath/daemon_resource.h"

namespace ditto::datapath {

Result<AttachPlan> ResourceRunner::check_metadata(const DaemonConfig& config,
                                                  MetadataStore& metadata) {
  const std::string where = config.resource.name + ": " + config.disk_path + ": ";
  auto activity_log = metadata.read_activity_log();
  if (!activity_log.ok()) return Error{config.resource.name + ": " + activity_log.error().message};
  std::vector<NodeId> peers;
  for (const core::PeerConfig& peer : config.node.peers) peers.push_back(peer.node_id);
  auto plan = plan_attach(metadata.superblock(), metadata.layout(), activity_log.value(),
                          config.self.node_id, peers);
  if (!plan.ok()) return Error{where + plan.error().message};
  return plan;
}

Status ResourceRunner::attach_metadata() {
  DITTO_ASSERT(!metadata_attached_);
  if (!attach_.note.empty()) log(config_.disk_path + ": " + attach_.note);
  if (attach_.initialize_activity_log) {
    if (Status status = metadata_->initialize_activity_log(); !status.ok()) {
      return Error{config_.resource.name + ": " + status.error().message};
    }
  }
  if (Status status = metadata_->write_superblock(attach_.superblock); !status.ok()) {
    return Error{config_.resource.name + ": " + status.error().message};
  }
  metadata_attached_ = true;
  return Status::success();
}

void ResourceRunner::write_clean_metadata() {
  if (!metadata_attached_) return;
  metadata_attached_ = false;
  const DiskState disk = node_.disk_state();
  if (disk <= DiskState::failed) {
    // Detached after an I/O error: the metadata stays marked in use, as after a crash.
    log(config_.disk_path + ": disk detached, metadata left marked in use");
    return;
  }
  ShutdownState state;
  state.disk = disk;
  state.primary_known = node_.role() == Role::primary;
  for (const core::PeerStatus& peer : node_.peers()) {
    if (peer.connection == ConnectionState::connected && peer.role == Role::primary) {
      state.primary_known = true;
    }
  }
  const Status status =
      metadata_->write_superblock(clean_shutdown_superblock(metadata_->superblock(), state));
  if (!status.ok()) {
    log("clean shutdown could not write the metadata: " + status.error().message);
    return;
  }
  log(config_.disk_path + ": metadata written back clean");
}

}  // namespace ditto::datapath
