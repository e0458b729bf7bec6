// The rules for attaching DRBD v09 metadata and for leaving it clean (metadata_store.h): pure
// functions of the superblock, the activity log and this node's configuration.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/activity_log.h"
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

// apply-al (§4.3) for metadata left in use: with PRIMARY_IND and extents in the log, the core
// marks them out of sync toward every peer (AttachPlan::hot_extents) and the ring continues
// after its newest transaction; otherwise there is nothing to apply and the ring is reset.
void apply_activity_log(const md::Superblock& on_disk,
                        std::span<const md::AlTransaction> activity_log,
                        std::span<const NodeId> peers, AttachPlan& plan) {
  const std::vector<std::optional<md::AlTransaction>> ring(activity_log.begin(),
                                                           activity_log.end());
  std::vector<std::uint32_t> hot = replay_activity_log(ring);
  if ((on_disk.flags & md::md_flag::primary_ind) == 0 || hot.empty() || peers.empty()) {
    plan.initialize_activity_log = true;
    plan.note = "metadata was left in use (no clean shutdown); the activity log holds nothing to "
                "apply, reinitializing it";
    return;
  }
  bool any = false;
  std::uint32_t newest = 0;
  for (const md::AlTransaction& transaction : activity_log) {
    if (transaction.transaction_type != md::al_type_update) continue;
    if (!any || static_cast<std::int32_t>(transaction.tr_number - newest) > 0) {
      newest = transaction.tr_number;
    }
    any = true;
  }
  plan.al_next_transaction = newest + 1;
  plan.note = "metadata was left in use by a Primary (no clean shutdown); apply-al: " +
              std::to_string(hot.size()) + " extents of the activity log (" +
              std::to_string(hot.size() * 4) + " MiB) marked out of sync toward every peer";
  plan.hot_extents = std::move(hot);
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
    apply_activity_log(on_disk, activity_log, peers, plan);
  }
  plan.initial_disk = attach_disk_state(on_disk, !peers.empty(), plan.disk_reason);
  plan.initial_generations = generations_of(on_disk);
  plan.initial_unconfirmed = unconfirmed_of(on_disk);
  // A bitmap that had bits at a clean shutdown was not written (PEER_FULL_SYNC): its bitmap
  // UUID goes to the history, so the handshake with that peer finds its generation there and
  // syncs every block (uuid_compare's history rules: full sync) instead of an empty bitmap.
  for (std::uint32_t node = 0; node < md::peer_slot_count; ++node) {
    const md::PeerSlot& slot = on_disk.peers[node];
    if ((slot.flags & md::peer_flag::full_sync) == 0 || slot.bitmap_uuid == 0) continue;
    plan.initial_generations.bitmap[node] = 0;
    push_history(plan.initial_generations, slot.bitmap_uuid);
  }
  // The record stays until the node's first metadata write replaces it: a crash before that
  // finds it again.
  plan.superblock =
      with_generations(plan.superblock, plan.initial_generations, plan.initial_unconfirmed);
  const bool left_in_use = (on_disk.flags & md::md_flag::al_clean) == 0;
  // Left in use while this node was Primary: PRIMARY_IND, and the Primary bit of its current
  // UUID (a Secondary whose peer was Primary has PRIMARY_IND alone).
  const bool was_primary = (on_disk.flags & md::md_flag::primary_ind) != 0 &&
                           (on_disk.current_uuid & uuid_primary_bit) != 0;
  plan.crashed_primary =
      (on_disk.flags & md::md_flag::crashed_primary) != 0 || (left_in_use && was_primary);
  if (plan.crashed_primary) plan.superblock.flags |= md::md_flag::crashed_primary;
  // ditto writes every bitmap at a clean shutdown; after a crash as Primary the on-disk bitmap
  // plus the activity log (applied above) cover every block that may differ.
  if (!left_in_use || (was_primary && !plan.hot_extents.empty())) {
    for (const NodeId peer : peers) {
      if ((on_disk.peers[peer.value].flags & md::peer_flag::full_sync) != 0) continue;
      plan.trusted_bitmaps |= 1u << peer.value;
    }
  }
  for (md::PeerSlot& slot : plan.superblock.peers) slot.flags &= ~md::peer_flag::full_sync;
  plan.superblock.flags &= ~md::md_flag::al_clean;  // in use until the clean shutdown
  plan.superblock.node_id = self.value;
  plan.superblock.effective_size_sectors = layout.usable_sectors;
  DITTO_ASSERT(check_identity(plan.superblock, self).ok());
  return plan;
}

Generations generations_of(const md::Superblock& superblock) {
  Generations generations;
  generations.current = superblock.current_uuid;
  for (std::uint32_t node = 0; node < md::peer_slot_count; ++node) {
    generations.bitmap[node] = superblock.peers[node].bitmap_uuid;
  }
  static_assert(md::history_uuid_count == generation_node_slots);
  for (std::uint32_t index = 0; index < md::history_uuid_count; ++index) {
    generations.history[index] = superblock.history_uuids[index];
  }
  return generations;
}

UnconfirmedGeneration unconfirmed_of(const md::Superblock& superblock) {
  UnconfirmedGeneration unconfirmed;
  unconfirmed.current = superblock.unconfirmed_current;
  unconfirmed.previous_current = superblock.unconfirmed_previous;
  // Node ids 0..31: higher bits name no node (the core ignores the record if it is not ours).
  unconfirmed.rotated_nodes = static_cast<std::uint32_t>(superblock.unconfirmed_rotated_nodes);
  return unconfirmed;
}

md::Superblock with_generations(const md::Superblock& superblock, const Generations& generations,
                                const UnconfirmedGeneration& unconfirmed) {
  md::Superblock updated = superblock;
  updated.unconfirmed_current = unconfirmed.current;
  updated.unconfirmed_previous = unconfirmed.previous_current;
  updated.unconfirmed_rotated_nodes = unconfirmed.rotated_nodes;
  updated.current_uuid = generations.current;
  for (std::uint32_t node = 0; node < md::peer_slot_count; ++node) {
    updated.peers[node].bitmap_uuid = generations.bitmap[node];
  }
  for (std::uint32_t index = 0; index < md::history_uuid_count; ++index) {
    updated.history_uuids[index] = generations.history[index];
  }
  DITTO_ASSERT(generations_of(updated) == generations);
  return updated;
}

DiskState attach_disk_state(const md::Superblock& on_disk, bool has_peers, std::string& reason) {
  const Generations generations = generations_of(on_disk);
  bool any_uuid = false;
  for (std::uint32_t node = 0; node < generation_node_slots; ++node) {
    any_uuid = any_uuid || generations.bitmap[node] != 0 || generations.history[node] != 0;
  }
  const bool fresh = on_disk.node_id == -1 && !any_uuid &&
                     comparable_current(on_disk.current_uuid) == uuid_just_created_value;
  if (fresh) {
    reason = "fresh metadata (never attached, no data generation yet): UpToDate (day 0)";
    return DiskState::up_to_date;
  }
  if ((on_disk.flags & md::md_flag::consistent) == 0) {
    reason = "CONSISTENT clear: Inconsistent";
    return DiskState::inconsistent;
  }
  if ((on_disk.flags & md::md_flag::was_up_to_date) == 0) {
    reason = "WAS_UP_TO_DATE clear: Outdated";
    return DiskState::outdated;
  }
  if (!has_peers) {
    reason = "WAS_UP_TO_DATE and no peers (no bitmap to lose): UpToDate";
    return DiskState::up_to_date;
  }
  if ((on_disk.flags & md::md_flag::al_clean) == 0) {
    reason = "WAS_UP_TO_DATE but no clean shutdown (unwritten bitmaps and activity log): "
             "Outdated, every block out of sync until a resync";
    return DiskState::outdated;
  }
  for (const md::PeerSlot& slot : on_disk.peers) {
    // With a bitmap UUID the lost bitmap becomes a full sync (plan_attach moves the UUID to
    // the history); without one both sides are in one generation and the peer vouches.
    if ((slot.flags & md::peer_flag::full_sync) != 0 && slot.bitmap_uuid == 0) {
      reason = "WAS_UP_TO_DATE, but a peer slot has PEER_FULL_SYNC in the same generation (its "
               "bitmap was not written): Outdated, every block out of sync until a resync";
      return DiskState::outdated;
    }
  }
  reason = "WAS_UP_TO_DATE after a clean shutdown: UpToDate";
  return DiskState::up_to_date;
}

md::Superblock superblock_for_state(const md::Superblock& attached, const MetadataState& state) {
  md::Superblock superblock = attached;
  constexpr std::uint32_t derived = md::md_flag::consistent | md::md_flag::was_up_to_date |
                                    md::md_flag::primary_ind | md::md_flag::crashed_primary |
                                    md::md_flag::al_clean;
  superblock.flags &= ~derived;
  if (state.disk >= DiskState::outdated) superblock.flags |= md::md_flag::consistent;
  if (state.disk > DiskState::outdated) superblock.flags |= md::md_flag::was_up_to_date;
  if (state.primary_known) superblock.flags |= md::md_flag::primary_ind;
  if (state.crashed_primary) superblock.flags |= md::md_flag::crashed_primary;
  if (state.clean) superblock.flags |= md::md_flag::al_clean;
  for (std::uint32_t node = 0; node < md::peer_slot_count; ++node) {
    md::PeerSlot& slot = superblock.peers[node];
    slot.flags &= ~md::peer_flag::full_sync;
    if ((state.full_sync_peers >> node) & 1u) slot.flags |= md::peer_flag::full_sync;
  }
  return superblock;
}

md::Superblock clean_shutdown_superblock(const md::Superblock& attached,
                                         const ShutdownState& state) {
  MetadataState full;
  full.disk = state.disk;
  full.primary_known = state.primary_known;
  full.crashed_primary = (attached.flags & md::md_flag::crashed_primary) != 0;
  full.clean = true;
  for (std::uint32_t node = 0; node < md::peer_slot_count; ++node) {
    if ((attached.peers[node].flags & md::peer_flag::full_sync) != 0) {
      full.full_sync_peers |= 1u << node;
    }
  }
  return superblock_for_state(attached, full);
}

}  // namespace ditto::datapath
