// Node: checksum-based resync (csums-alg, drbd9-semantics.md §5.2).
//
// With NodeConfig::csums_algorithm the SyncTarget does not ask for a block's data at once: it
// first reads the digest of its own copy (DiskRead::digest, computed by the driver) and sends it
// in a ChecksumResyncRequest (DRBD's P_CSUM_RS_REQUEST). The SyncSource reads the digest of its
// copy (deferred behind a local write to the block, like a data read, and fenced the same way):
//   - equal: it clears its bit and answers ResyncInSync{fence} (P_RS_IS_IN_SYNC, no payload);
//     the target clears its bit too (the block did not change, so the bits toward its other
//     peers stay as they were). Both sides count the block in resync_same_checksum_blocks.
//   - different: it reads the data as for a ResyncRequest and answers with resync Data; the
//     rest is the bitmap-based resync of node_resync.cpp (write, ResyncAck).
// A differing block costs the source two reads (digest, then data): the drivers hand a read
// either a digest or a payload, never both.
//
// Overtaking writes are handled as for data replies: an application write that reaches the
// target while its digest read or its request is in flight makes the block stale (resync_
// overtaken), and a stale block is not requested (after the digest read) or its answer is
// discarded (an in-sync answer whose fence predates a write this node received, too); its bit
// stays set and it is requested again later.
//
// csums-after-crash-only: checksums only for the resync after a Primary crash (either side
// started with apply-al's hot extents: uuid_flag::after_primary_crash) and for reconciliation
// resyncs (§3.5 step 3), where most blocks are expected to be equal.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {

// Decided by the SyncTarget when its resync starts (the source answers either kind).
bool Node::use_checksum_resync(const Peer& peer) const {
  if (config_.csums_algorithm.empty()) return false;
  if (!config_.csums_after_crash_only) return true;
  return after_primary_crash_ || (peer.uuid_flags & uuid_flag::after_primary_crash) != 0 ||
         peer.reconcile_resync;
}

// ---- SyncTarget -------------------------------------------------------------------------------

// The run from `block` was just entered in peer.resync_runs: ask the source for it, by data or
// (one block) by digest.
void Node::request_resync_run(Peer& peer, std::uint64_t block) {
  auto found = peer.resync_runs.find(block);
  DITTO_ASSERT(found != peer.resync_runs.end() && !found->second.write_io);
  const Sector sector{block_sector(block)};
  const std::uint32_t length = run_length(block, found->second.blocks);
  if (!peer.resync_checksums) {
    actions_.push_back(
        Send{peer.status.node_id, wire::ResyncRequest{sector, length}, std::nullopt});
    return;
  }
  DITTO_ASSERT(found->second.blocks == 1);
  const IoId io = next_io();
  checksum_reads_[io.value] =
      ResyncIo{peer.status.node_id, block, connection_epochs_[peer.status.node_id.value], {}};
  found->second.digest_io = io;
  actions_.push_back(DiskRead{io, sector, length, std::nullopt, false, true});
}

void Node::target_digest_read_done(const ResyncIo& entry, IoId io, std::uint64_t digest) {
  Peer& peer = peers_[entry.peer.value];
  const bool same = peer.status.connection == ConnectionState::connected &&
                    connection_epochs_[entry.peer.value] == entry.connection_epoch;
  auto found = peer.resync_runs.find(entry.block);
  if (!same || found == peer.resync_runs.end() || found->second.digest_io != io) return;
  found->second.digest_io.reset();
  if (found->second.stale || !is_resync_target(peer.status.replication)) {
    // An application write overtook the read: the digest may predate it. Ask again later.
    resync_run_came_back(peer, found);
    pump_resync(peer);
    return maybe_finish_resync(peer);
  }
  actions_.push_back(Send{entry.peer,
                          wire::ChecksumResyncRequest{Sector{block_sector(entry.block)},
                                                      run_length(entry.block, 1), digest},
                          std::nullopt});
}

void Node::on_resync_in_sync(Peer& peer, const wire::ResyncInSync& in_sync) {
  if (!is_resync_target(peer.status.replication)) return;  // late: the resync stopped
  const std::uint64_t block = in_sync.sector.value / Bitmap::sectors_per_bit;
  auto found = peer.resync_runs.find(block);
  if (found == peer.resync_runs.end() || found->second.write_io || found->second.digest_io ||
      in_sync.sector.value != block_sector(block) ||
      in_sync.length_bytes != run_length(block, found->second.blocks)) {
    return protocol_error(peer, "ResyncInSync for sector " + std::to_string(in_sync.sector.value) +
                                    " of " + std::to_string(in_sync.length_bytes) +
                                    " bytes that was not requested");
  }
  const ResyncRun done = found->second;
  const bool stale = done.stale || resync_reply_fenced_out(block, done.blocks, in_sync.sequence);
  resync_run_came_back(peer, found);
  if (!stale) {
    DITTO_ASSERT(block + done.blocks <= peer.bitmap->bit_count());
    for (std::uint64_t each = block; each < block + done.blocks; ++each) {
      if (peer.bitmap->test(each)) peer.status.resync_done_blocks += 1;
    }
    peer.bitmap->clear_bits(block, done.blocks);
    resynced_run_toward_others(peer, block, done, false);
    peer.status.resync_same_checksum_blocks += done.blocks;
  }
  pump_resync(peer);
  maybe_finish_resync(peer);
}

// ---- SyncSource -------------------------------------------------------------------------------

void Node::on_checksum_resync_request(Peer& peer, const wire::ChecksumResyncRequest& request) {
  // Late (we stopped being the source): the target learns why from our StateReport.
  if (!is_resync_source(peer.status.replication) || disk_state_ < DiskState::outdated) return;
  if (!block_message_valid(peer, request.sector, request.length_bytes,
                           "ChecksumResyncRequest")) {
    return;
  }
  issue_resync_read(peer, request.sector.value / Bitmap::sectors_per_bit, 1, request.digest);
}

void Node::source_digest_read_done(const ResyncIo& entry, std::uint64_t digest) {
  DITTO_ASSERT(entry.peer_digest.has_value());
  Peer& peer = peers_[entry.peer.value];
  const bool same = peer.status.connection == ConnectionState::connected &&
                    connection_epochs_[entry.peer.value] == entry.connection_epoch;
  if (!same || !is_resync_source(peer.status.replication)) return;
  if (digest != *entry.peer_digest) return issue_resync_read(peer, entry.block, entry.blocks);
  peer.bitmap->clear_bits(entry.block, entry.blocks);
  peer.status.resync_same_checksum_blocks += entry.blocks;
  send_peers_in_sync(peer, entry.block, entry.blocks);
  actions_.push_back(Send{entry.peer,
                          wire::ResyncInSync{Sector{block_sector(entry.block)},
                                             run_length(entry.block, entry.blocks), entry.fence},
                          std::nullopt});
}

// ---- Completions ------------------------------------------------------------------------------

bool Node::on_checksum_io_completed(IoId io, IoStatus status, std::uint64_t digest) {
  auto read = checksum_reads_.find(io.value);
  if (read == checksum_reads_.end()) return false;
  const ResyncIo entry = read->second;
  checksum_reads_.erase(read);
  if (status != IoStatus::ok) {
    // on-io-error detach: the resync stops with the disk (sanitize); the peer learns it from
    // our StateReport. The target's block stays requested until stop_resync forgets it.
    if (!local_disk_detached()) detach_local_disk();
    return true;
  }
  if (entry.peer_digest) {
    source_digest_read_done(entry, digest);
  } else {
    target_digest_read_done(entry, io, digest);
  }
  return true;
}

}  // namespace ditto::core
