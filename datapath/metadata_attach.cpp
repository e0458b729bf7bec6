// The rules for attaching DRBD v09 metadata and for leaving it clean (metadata_store.h): pure
// functions of the superblock, the activity log and this node's configuration.
#include <array>
#include <string>

#include "core/assert.h"
#include "datapath/metadata_store.h"

namespace ditto::datapath {
namespace {

namespace md = ditto::metadata;

Error field_error(const std::string& field, const std::string& problem) {
  return Error{"superblock field " + field + " " + problem};
}

std::string peer_field(std::uint32_t node, const char* name) {
  return "peer[" + std::to_string(node) + "] " + name;
}

// Extents an `apply-al` would mark out of sync: every extent an update transaction names.
std::uint32_t hot_extent_entries(std::span<const md::AlTransaction> activity_log) {
  std::uint32_t hot = 0;
  for (const md::AlTransaction& transaction : activity_log) {
    if (transaction.transaction_type != md::al_type_update) continue;
    for (std::uint16_t update = 0; update < transaction.n_updates; ++update) {
      if (transaction.update_extents[update] != md::al_free_extent) ++hot;
    }
    for (std::uint32_t extent : transaction.context) {
      if (extent != md::al_free_extent) ++hot;
    }
  }
  return hot;
}

// node-id and the bitmap slots as they are on disk: the kernel's attach checks (§12.4).
Status check_identity(const md::Superblock& superblock, NodeId self) {
  const std::int32_t self_id = self.value;
  if (superblock.node_id != -1 && superblock.node_id != self_id) {
    return field_error("node-id", std::to_string(superblock.node_id) +
                                      " does not match this node's node-id " +
                                      std::to_string(self_id) +
                                      " (the disk was attached by another node)");
  }
  if (const std::int32_t own = superblock.peers[self.value].bitmap_index; own != -1) {
    return field_error(peer_field(self.value, "bitmap-index"),
                       std::to_string(own) + " gives this node (node-id " +
                           std::to_string(self_id) + ") a bitmap slot toward itself");
  }
  std::array<std::int32_t, md::peer_slot_count> owner;
  owner.fill(-1);
  for (std::uint32_t node = 0; node < md::peer_slot_count; ++node) {
    const std::int32_t index = superblock.peers[node].bitmap_index;
    if (index < 0) continue;
    if (owner[static_cast<std::size_t>(index)] != -1) {
      return field_error(peer_field(node, "bitmap-index"),
                         std::to_string(index) + " is also the slot of peer[" +
                             std::to_string(owner[static_cast<std::size_t>(index)]) + "]");
    }
    owner[static_cast<std::size_t>(index)] = static_cast<std::int32_t>(node);
  }
  return Status::success();
}

// Gives every configured peer without a bitmap slot the lowest free one (DRBD's
// allocate_bitmap_index), marking the node as existing.
Status assign_bitmap_slots(md::Superblock& superblock, std::span<const NodeId> peers) {
  for (NodeId peer : peers) {
    md::PeerSlot& slot = superblock.peers[peer.value];
    if (slot.bitmap_index != -1) continue;
    std::int32_t free_index = -1;
    for (std::int32_t index = 0; index < static_cast<std::int32_t>(superblock.max_peers); ++index) {
      bool used = false;
      for (const md::PeerSlot& other : superblock.peers) used = used || other.bitmap_index == index;
      if (!used) {
        free_index = index;
        break;
      }
    }
    if (free_index == -1) {
      return field_error("max-peers", std::to_string(superblock.max_peers) +
                                          " leaves no free bitmap slot for peer node-id " +
                                          std::to_string(peer.value) + " (the resource has " +
                                          std::to_string(peers.size()) +
                                          " peers; create the metadata with --max-peers " +
                                          std::to_string(peers.size()) + " or more)");
    }
    slot.bitmap_index = free_index;
    slot.flags |= md::peer_flag::node_exists;
  }
  return Status::success();
}

}  // namespace

Result<AttachPlan> plan_attach(const md::Superblock& on_disk, const md::Layout& layout,
                               std::span<const md::AlTransaction> activity_log, NodeId self,
                               std::span<const NodeId> peers) {
  DITTO_ASSERT(self.value < md::peer_slot_count);
  DITTO_ASSERT(on_disk.effective_size_sectors <= layout.usable_sectors);  // checked at open
  if (Status status = check_identity(on_disk, self); !status.ok()) return status.error();
  AttachPlan plan;
  plan.superblock = on_disk;
  if (Status status = assign_bitmap_slots(plan.superblock, peers); !status.ok()) {
    return status.error();
  }
  if ((on_disk.flags & md::md_flag::al_clean) == 0) {
    const std::uint32_t hot = hot_extent_entries(activity_log);
    if ((on_disk.flags & md::md_flag::primary_ind) != 0 && hot > 0) {
      return field_error("flags", "has AL_CLEAN clear and PRIMARY_IND set (a Primary stopped "
                                  "without a clean shutdown) and the activity log names " +
                                      std::to_string(hot) +
                                      " extents that must be marked out of sync first; run "
                                      "`drbdmeta --force 0 v09 DISK internal apply-al`");
    }
    plan.initialize_activity_log = true;
    plan.note = "metadata was left in use (no clean shutdown); the activity log holds nothing to "
                "apply, reinitializing it";
  }
  plan.superblock.flags &= ~md::md_flag::al_clean;  // in use until the clean shutdown
  plan.superblock.node_id = self.value;
  plan.superblock.effective_size_sectors = layout.usable_sectors;
  DITTO_ASSERT(check_identity(plan.superblock, self).ok());
  return plan;
}

md::Superblock clean_shutdown_superblock(const md::Superblock& attached,
                                         const ShutdownState& state) {
  md::Superblock superblock = attached;
  constexpr std::uint32_t derived = md::md_flag::consistent | md::md_flag::was_up_to_date |
                                    md::md_flag::primary_ind;
  superblock.flags &= ~derived;
  if (state.disk >= DiskState::outdated) superblock.flags |= md::md_flag::consistent;
  if (state.disk > DiskState::outdated) superblock.flags |= md::md_flag::was_up_to_date;
  if (state.primary_known) superblock.flags |= md::md_flag::primary_ind;
  superblock.flags |= md::md_flag::al_clean;
  return superblock;
}

}  // namespace ditto::datapath
