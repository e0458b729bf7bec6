// Node: what a resynced block means toward the other peers (DRBD's P_PEERS_IN_SYNC).
//
// A SyncTarget that writes a block from its source holds the source's version of it, which a
// third node may lack: by default the block becomes out of sync toward every other peer. That
// alone resyncs a restarted node once per peer: its first resync marks every block toward the
// second peer, and the handshake with that peer (deferred while the first resync ran) finds
// both at the same generation with the whole volume marked, and moves it again.
//
// So the source says, just before each answer, toward which other nodes that run is in sync
// on its side (PeersInSync): the node is connected, Established and UpToDate, the source's bit
// toward it is clear, its bitmap UUID toward it is 0 (both track the same generation), its last
// report shows no write of our Primary that has not reached us (a clear bit says nothing of
// those: quorum+reads+diskless swarm seed 6875), and no write to the block is pending toward it
// (a write sent to it and not yet confirmed by a BarrierAck, or a write received from a Primary
// that no PeerAck has confirmed yet: either may still be marked out of sync toward it). The
// target, once its copy equals the source's, clears its bits toward those nodes instead of
// setting them, unless it marked the block toward one of them itself while the block was in
// flight (its own view of a newer write wins).
#include "core/assert.h"
#include <algorithm>

#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

bool overlaps(Sector sector, std::uint32_t length_bytes, std::uint64_t first,
              std::uint64_t end) {
  return sector.value < end && first < sector.value + length_bytes / sector_size_bytes;
}

}  // namespace

// Every write-derived out-of-sync mark goes through here, so a resync run in flight learns
// that its target marked a block of it toward `toward` meanwhile. A write recorded before the
// volume shrank (node_sizes.cpp; a peer's StateReport can shrink it while writes still wait for
// their PeerAck) is marked only up to the new end: what lies beyond no longer exists.
void Node::mark_out_of_sync(Peer& toward, Sector sector, std::uint32_t length_bytes) {
  DITTO_ASSERT(toward.configured && toward.bitmap.has_value());
  const std::uint64_t sectors = toward.bitmap->sectors();
  if (sector.value >= sectors) return;
  length_bytes = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(length_bytes, (sectors - sector.value) * sector_size_bytes));
  toward.bitmap->set_sectors(sector.value, length_bytes / sector_size_bytes);
  tell_resync_target(toward, sector, length_bytes);
  const std::uint64_t first = sector.value / Bitmap::sectors_per_bit;
  const std::uint64_t last =
      (sector.value + length_bytes / sector_size_bytes - 1) / Bitmap::sectors_per_bit;
  for (Peer& source : peers_) {
    for (auto it = first_run_from(source.resync_runs, first);
         it != source.resync_runs.end() && it->first <= last; ++it) {
      it->second.marked_nodes |= bit(toward.status.node_id);
    }
  }
}

// ---- SyncSource -------------------------------------------------------------------------------

// The other nodes toward which every block of the run is in sync here and stays so (see the
// file comment).
std::uint32_t Node::peers_in_sync_mask(const Peer& target, std::uint64_t block,
                                       std::uint64_t blocks) const {
  const std::uint64_t first = block_sector(block);
  const std::uint64_t end = first + run_length(block, blocks) / sector_size_bytes;
  for (const Peer& primary : peers_) {
    for (const WriteRange& range : primary.open_epoch_writes) {
      if (overlaps(range.sector, range.length_bytes, first, end)) return 0;
    }
    for (const auto& [barrier, ranges] : primary.unacked_epochs) {
      for (const WriteRange& range : ranges) {
        if (overlaps(range.sector, range.length_bytes, first, end)) return 0;
      }
    }
  }
  std::uint32_t mask = 0;
  for (const Peer& other : peers_) {
    if (!other.configured || &other == &target) continue;
    // Only a node we replicate to with an UpToDate disk: an Inconsistent one (a SyncTarget
    // elsewhere, its resync with us deferred) may hold anything where our bit is clear.
    if (other.status.connection != ConnectionState::connected ||
        other.status.replication != ReplicationState::established ||
        other.status.disk != DiskState::up_to_date) {
      continue;
    }
    if (generations_.uuids.bitmap[other.status.node_id.value] != 0) continue;
    // It received writes of our Primary that have not reached us (its report says so): our
    // clear bit toward it says nothing of those blocks.
    if (other.dagtag_node != wire::dagtag_node_none && other.dagtag_node == dagtag_node_ &&
        other.dagtag > dagtag_) {
      continue;
    }
    const std::optional<std::uint64_t> set = other.bitmap->find_next_set(block);
    if (set && *set < block + blocks) continue;
    bool pending = false;
    for (const WriteRange& range : other.unconfirmed_writes) {
      pending = pending || overlaps(range.sector, range.length_bytes, first, end);
    }
    if (!pending) mask |= bit(other.status.node_id);
  }
  DITTO_ASSERT((mask & (bit(config_.node_id) | bit(target.status.node_id))) == 0);
  return mask;
}

// Sent just before the answer (resync Data or ResyncInSync) for the run: the same stream.
void Node::send_peers_in_sync(const Peer& target, std::uint64_t block, std::uint64_t blocks) {
  const std::uint32_t mask = peers_in_sync_mask(target, block, blocks);
  if (mask == 0) return;  // the target's default
  actions_.push_back(
      Send{target.status.node_id,
           wire::PeersInSync{Sector{block_sector(block)}, run_length(block, blocks), mask},
           std::nullopt});
}

// ---- SyncTarget -------------------------------------------------------------------------------

void Node::on_peers_in_sync(Peer& peer, const wire::PeersInSync& in_sync) {
  if (!receives_resync(peer.status.replication)) return;  // late: the resync stopped
  if (!block_message_valid(peer, in_sync.sector, in_sync.length_bytes, "PeersInSync",
                           resync_run_blocks_max)) {
    return;
  }
  const std::uint64_t block = in_sync.sector.value / Bitmap::sectors_per_bit;
  auto found = peer.resync_runs.find(block);
  // Not asked for (or already answered): the answer that follows is checked on its own.
  if (found == peer.resync_runs.end() || found->second.write_io ||
      in_sync.length_bytes != run_length(block, found->second.blocks)) {
    return;
  }
  found->second.peers_in_sync =
      in_sync.node_mask & ~bit(config_.node_id) & ~bit(peer.status.node_id);
}

// The run from `block` now holds the source's version (`replaced`: written from its Data;
// otherwise it was already equal, ResyncInSync): toward the nodes the source named it is in
// sync, toward the others a replaced run may differ.
void Node::resynced_run_toward_others(const Peer& source, std::uint64_t block,
                                      const ResyncRun& entry, bool replaced) {
  const std::uint32_t in_sync = entry.peers_in_sync & ~entry.marked_nodes;
  for (Peer& other : peers_) {
    if (!other.configured || &other == &source) continue;
    if ((in_sync & bit(other.status.node_id)) != 0) {
      other.bitmap->clear_bits(block, entry.blocks);
    } else if (replaced) {
      other.bitmap->set_bits(block, entry.blocks);
    }
  }
}

}  // namespace ditto::core
