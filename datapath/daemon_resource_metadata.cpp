// ResourceRunner and the DRBD v09 metadata of its disk: checked in create(), marked in use by
// start() before any data I/O, written through whenever the core's generations or the flags
// derived from its state change (before the actions that follow the change run), and written
// back by a clean stop() (metadata_store.h has the rules).
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
  log(config_.disk_path + ": " + attach_.disk_reason +
      (crashed_primary_ ? "; CRASHED_PRIMARY (left Primary without a clean shutdown)" : ""));
  // The flags of the state the core starts in.
  if (!write_metadata_if_changed(true)) {
    return Error{config_.resource.name + ": " + config_.disk_path +
                 ": cannot write the metadata at attach"};
  }
  return Status::success();
}

MetadataState ResourceRunner::metadata_state(bool clean) const {
  MetadataState state;
  state.disk = node_.disk_state();
  state.primary_known = node_.role() == Role::primary;
  for (const core::PeerStatus& peer : node_.peers()) {
    if (peer.connection == ConnectionState::connected && peer.role == Role::primary) {
      state.primary_known = true;
    }
    // Bitmaps live in memory only: a clean shutdown records which ones had bits.
    if (clean && peer.out_of_sync_bytes > 0) state.full_sync_peers |= 1u << peer.node_id.value;
  }
  state.crashed_primary = crashed_primary_;
  state.clean = clean;
  return state;
}

// DRBD writes the metadata synchronously on every UUID change and on every change of the flags
// derived from the state, before it acts on the change (§3.2, §4.3). pump() calls this after
// taking the actions of an input and before executing them: a write in a new generation, a
// resync write on a disk that just became Inconsistent, reach the disk only after the
// superblock that says so is durable.
// `state_changed`: the actions carry an Event (every state change emits one); otherwise only
// the generations can have changed, and comparing them is all a data I/O costs here.
bool ResourceRunner::write_metadata_if_changed(bool state_changed) {
  if (!metadata_attached_ || node_.disk_state() <= DiskState::failed) return true;
  if (!state_changed && node_.generations() == metadata_generations_) return true;
  metadata_generations_ = node_.generations();
  if (crashed_primary_ &&
      comparable_current(node_.generations().current) != crashed_generation_) {
    crashed_primary_ = false;  // the crashed generation is superseded (resync or new data)
  }
  const metadata::Superblock wanted = superblock_for_state(
      with_generations(metadata_->superblock(), node_.generations()), metadata_state(false));
  if (wanted == metadata_->superblock()) return true;
  if (Status status = metadata_->write_superblock(wanted); !status.ok()) {
    log("metadata write failed: " + status.error().message);
    return false;  // pump() detaches the disk
  }
  return true;
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
  const Status status = metadata_->write_superblock(superblock_for_state(
      with_generations(metadata_->superblock(), node_.generations()), metadata_state(true)));
  if (!status.ok()) {
    log("clean shutdown could not write the metadata: " + status.error().message);
    return;
  }
  log(config_.disk_path + ": metadata written back clean");
}

}  // namespace ditto::datapath
