// Node: online verify (drbd9-semantics.md §5.3), invalidate and invalidate-remote.
//
// Online verify runs between two established peers: the node where the administrator starts it
// is VerifyS, the peer VerifyT (SyncControl{verify_start}). VerifyS walks the blocks from the
// start sector to the end of the volume, paced like a resync (resync_step_blocks() per 100 ms
// step, at most resync_fill_blocks() in flight): it reads each block as a digest read
// (DiskRead::digest, the driver computes the digest with the verify-alg) and sends
// VerifyRequest{digest}; VerifyT reads its own copy the same way, compares, and answers
// VerifyReply{in_sync}. A block whose digests differ is marked out of sync in both nodes'
// bitmaps toward each other and counted on both sides (DRBD's ov_out_of_sync). When every block
// was compared VerifyS sends SyncControl{verify_end}; both sides return to Established and emit
//   verify-finished name:<res> peer-node-id:<id> conn-name:<name> role:<VerifyS|VerifyT>
//       result:<finished|stopped> blocks:<compared> out-of-sync-blocks:<n>
// As in DRBD the data is not repaired by the verify itself: the marked blocks move with the next
// resync (disconnect/connect: both UpToDate with the same generation and bits set, so the
// handshake reconciles them, the Primary, else the lower node id, being the source), or with
// invalidate / invalidate-remote.
//
// Known limitation: blocks written by the application while a verify runs may be reported out
// of sync although the write reaches both (DRBD skips them, ov-skipped); the extra resync is
// harmless.
//
// Invalidate: this node marks every block out of sync toward an UpToDate peer, goes
// Inconsistent, tells the peer (SyncControl{become_sync_source}) and starts the bitmap exchange
// as target; the peer becomes its SyncSource and the bitmap-based resync (node_resync.cpp) moves
// every block. Invalidate-remote asks the peer to do the same toward us
// (SyncControl{become_sync_target}).
#include <string>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

template <typename Value>
std::string text(Value value) {
  return std::string(to_string(value));
}

}  // namespace

// ---- Admin commands ---------------------------------------------------------------------------

// Ok when `peer_id` is a configured peer with an established connection (the handshake done,
// no resync or verify running).
AdminResult Node::admin_peer_check(NodeId peer_id, const char* what) const {
  if (peer_id.value > node_id_max || !peers_[peer_id.value].configured) {
    return {false, "SS_NEED_CONNECTION",
            std::string(what) + ": node " + std::to_string(peer_id.value) +
                " is not a peer of resource " + config_.resource_name};
  }
  const Peer& peer = peers_[peer_id.value];
  if (peer.status.connection != ConnectionState::connected || !peer.state_received) {
    return {false, "SS_NEED_CONNECTION",
            std::string(what) + " needs a connection to " + peer.status.name + ", which is " +
                text(peer.status.connection)};
  }
  if (peer.status.replication != ReplicationState::established) {
    return {false, "SS_RESYNC_RUNNING",
            std::string(what) + ": replication with " + peer.status.name + " is " +
                text(peer.status.replication) + ", not Established"};
  }
  return {};
}

AdminResult Node::start_verify(Instant now, const Verify& command) {
  if (AdminResult refused = admin_peer_check(command.peer, "verify"); !refused.ok) {
    return refused;
  }
  Peer& peer = peers_[command.peer.value];
  const std::uint64_t blocks = peer.bitmap->bit_count();
  const std::uint64_t start = command.start_sector.value / Bitmap::sectors_per_bit;
  if (start >= blocks) {
    return {false, "SS_INVALID_START_SECTOR",
            "verify: start sector " + std::to_string(command.start_sector.value) +
                " is beyond the end of the volume (" +
                std::to_string(size_bytes_ / sector_size_bytes) + " sectors)"};
  }
  ClusterState proposed = cluster_state();
  proposed.peers[command.peer.value].replication = ReplicationState::verify_source;
  const StateChangeResult result = change_state(proposed, false);
  if (!result.ok()) return {false, text(result.code), result.message};
  peer.verify_cursor = start;
  peer.verify_end = blocks;
  peer.verify_in_flight = 0;
  peer.status.verify_total_blocks = blocks - start;
  peer.status.verify_done_blocks = 0;
  peer.status.verify_out_of_sync_blocks = 0;
  peer.status.sync_progress = SyncProgress{};  // noted from the next message
  actions_.push_back(Send{peer.status.node_id,
                          wire::SyncControl{wire::SyncCommand::verify_start,
                                            Sector{block_sector(start)}},
                          std::nullopt});
  on_verify_step(now, peer);
  return {};
}

AdminResult Node::stop_verify(const StopVerify& command) {
  if (command.peer.value > node_id_max || !peers_[command.peer.value].configured) {
    return {false, "SS_NEED_CONNECTION",
            "verify --stop: node " + std::to_string(command.peer.value) + " is not a peer"};
  }
  Peer& peer = peers_[command.peer.value];
  if (!is_verifying(peer.status.replication)) {
    return {true, "", "no online verify is running with " + peer.status.name};
  }
  finish_verify(peer, true, "stopped");
  return {};
}

AdminResult Node::invalidate(const Invalidate& command) {
  Peer* source = nullptr;
  if (command.peer) {
    if (AdminResult refused = admin_peer_check(*command.peer, "invalidate"); !refused.ok) {
      return refused;
    }
    source = &peers_[command.peer->value];
  } else {
    for (Peer& peer : configured_peers()) {
      if (!admin_peer_check(peer.status.node_id, "").ok) continue;
      if (peer.status.disk != DiskState::up_to_date) continue;
      source = &peer;
      break;
    }
  }
  if (source == nullptr || source->status.disk != DiskState::up_to_date ||
      (source->uuid_flags & uuid_flag::sync_target) != 0) {
    return {false, "SS_NO_UP_TO_DATE_DISK",
            "invalidate needs an established UpToDate peer to resync from" +
                (source ? ", and " + source->status.name + " is " +
                              text(source->status.disk) +
                              ((source->uuid_flags & uuid_flag::sync_target) != 0
                                   ? " and a SyncTarget itself"
                                   : "")
                        : std::string())};
  }
  const StateChangeResult result = invalidate_toward(*source);
  if (!result.ok()) return {false, text(result.code), result.message};
  return {};
}

AdminResult Node::invalidate_remote(const InvalidateRemote& command) {
  if (AdminResult refused = admin_peer_check(command.peer, "invalidate-remote"); !refused.ok) {
    return refused;
  }
  if (disk_state_ != DiskState::up_to_date) {
    return {false, "SS_NO_UP_TO_DATE_DISK",
            "invalidate-remote makes this node the SyncSource, and its disk is " +
                std::string(text(disk_state_))};
  }
  if ((local_uuid_flags() & uuid_flag::sync_target) != 0) {
    return {false, "SS_RESYNC_RUNNING", "invalidate-remote: this node is a SyncTarget itself"};
  }
  actions_.push_back(Send{command.peer,
                          wire::SyncControl{wire::SyncCommand::become_sync_target, Sector{0}},
                          std::nullopt});
  return {};
}

// Every block from `from_sector` on out of sync toward `peer`, the disk Inconsistent, `peer`
// asked to be the source. `marker` is the SyncControl's sector: 0, or after a resize the new
// size (on_sync_control).
StateChangeResult Node::invalidate_toward(Peer& peer, std::uint64_t from_sector, Sector marker) {
  for (const Peer& other : configured_peers()) {
    if (other.status.replication > ReplicationState::established) {
      return {StateChangeCode::resync_running,
              "invalidate: replication with " + other.status.name + " is " +
                  text(other.status.replication)};
    }
  }
  ClusterState proposed = cluster_state();
  proposed.disk = DiskState::inconsistent;
  const StateChangeResult result = change_state(proposed, false);
  if (!result.ok()) return result;
  peer.bitmap->set_sectors(from_sector, peer.bitmap->sectors() - from_sector);
  actions_.push_back(Send{peer.status.node_id,
                          wire::SyncControl{wire::SyncCommand::become_sync_source, marker},
                          std::nullopt});
  start_bitmap_exchange(peer, false);
  return result;
}

// ---- Peer requests ----------------------------------------------------------------------------

void Node::on_sync_control(Instant now, Peer& peer, const wire::SyncControl& control) {
  switch (control.command) {
    case wire::SyncCommand::verify_start:
      return on_verify_start(now, peer, control.sector);
    case wire::SyncCommand::verify_end:
      if (!is_verifying(peer.status.replication)) return;  // we stopped it first
      return finish_verify(peer, false,
                           peer.status.verify_done_blocks == peer.status.verify_total_blocks
                               ? "finished"
                               : "stopped");
    case wire::SyncCommand::become_sync_source:
      // After a resize the sector is the new size: the peer committed it, so the resize we
      // prepared (if its commit has not reached us yet) did commit (node_resize.cpp).
      if (control.sector.value != 0) commit_resize_early(control.sector.value);
      // The peer already went Inconsistent and sent its bitmap: we must serve it or drop the
      // connection (the reconnect's handshake then finds a source for it).
      if (disk_state_ != DiskState::up_to_date ||
          peer.status.replication != ReplicationState::established) {
        return protocol_error(peer, "cannot be the SyncSource of invalidated peer " +
                                        peer.status.name + ": disk " + text(disk_state_) +
                                        ", replication " + text(peer.status.replication));
      }
      // An attached disk of an older generation than our bitmap covers: every block.
      if (!bitmap_covers_peer_disk(peer)) peer.bitmap->set_all();
      return start_bitmap_exchange(peer, true);
    case wire::SyncCommand::ahead:
      return on_peer_ahead(peer);
    case wire::SyncCommand::resync_after_ahead:
      return on_resync_after_ahead(peer);
    case wire::SyncCommand::become_sync_target: {
      const StateChangeResult result =
          peer.status.replication == ReplicationState::established
              ? invalidate_toward(peer)
              : StateChangeResult{StateChangeCode::resync_running, "a resync or verify runs"};
      if (result.ok()) return;
      actions_.push_back(Event{"invalidate-refused name:" + config_.resource_name +
                               " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                               " conn-name:" + peer.status.name + " result:" +
                               text(result.code) + " message:\"" + result.message + "\""});
      return;
    }
  }
}

void Node::on_verify_start(Instant now, Peer& peer, Sector start) {
  (void)now;
  const std::uint64_t blocks = peer.bitmap->bit_count();
  const std::uint64_t start_block = start.value / Bitmap::sectors_per_bit;
  if (start.value % Bitmap::sectors_per_bit != 0 || start_block >= blocks) {
    return protocol_error(peer, "verify start sector " + std::to_string(start.value) +
                                    " is not a bitmap block of the volume");
  }
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].replication = ReplicationState::verify_target;
  const StateChangeResult result = change_state(proposed, false);
  if (!result.ok()) {
    actions_.push_back(Send{peer.status.node_id,
                            wire::SyncControl{wire::SyncCommand::verify_end, Sector{0}},
                            std::nullopt});
    actions_.push_back(Event{"verify-refused name:" + config_.resource_name + " peer-node-id:" +
                             std::to_string(peer.status.node_id.value) + " conn-name:" +
                             peer.status.name + " result:" + text(result.code) +
                             " message:\"" + result.message + "\""});
    return;
  }
  peer.status.verify_total_blocks = blocks - start_block;
  peer.status.verify_done_blocks = 0;
  peer.status.verify_out_of_sync_blocks = 0;
  peer.status.sync_progress = SyncProgress{};
}

// ---- VerifyS ----------------------------------------------------------------------------------

void Node::on_verify_step(Instant now, Peer& peer) {
  if (peer.status.replication != ReplicationState::verify_source) return;
  peer.step_allowance_blocks = resync_step_blocks(now);
  arm_timer(TimerId{timer_resync_step_base + peer.status.node_id.value}, now + resync_step);
  pump_verify(peer);
}

void Node::pump_verify(Peer& peer) {
  DITTO_ASSERT(peer.status.replication == ReplicationState::verify_source);
  const std::uint64_t fill = resync_fill_blocks();
  while (peer.step_allowance_blocks > 0 && peer.verify_in_flight < fill &&
         peer.verify_cursor < peer.verify_end) {
    const std::uint64_t block = peer.verify_cursor++;
    const IoId io = next_io();
    verify_reads_[io.value] = VerifyIo{peer.status.node_id, block,
                                       connection_epochs_[peer.status.node_id.value], true, 0};
    actions_.push_back(DiskRead{io, Sector{block_sector(block)}, block_length(block),
                                std::nullopt, false, true});
    peer.verify_in_flight += 1;
    peer.step_allowance_blocks -= 1;
  }
  if (peer.verify_cursor == peer.verify_end && peer.verify_in_flight == 0) {
    finish_verify(peer, true, "finished");
  }
}

void Node::on_verify_reply(Peer& peer, const wire::VerifyReply& reply) {
  if (peer.status.replication != ReplicationState::verify_source) return;  // late
  if (!block_message_valid(peer, reply.sector, reply.length_bytes, "VerifyReply")) return;
  if (peer.verify_in_flight == 0) return protocol_error(peer, "VerifyReply nobody asked for");
  peer.verify_in_flight -= 1;
  peer.status.verify_done_blocks += 1;
  if (!reply.in_sync) verify_block_out_of_sync(peer, reply.sector.value / Bitmap::sectors_per_bit);
  pump_verify(peer);
}

// ---- VerifyT ----------------------------------------------------------------------------------

void Node::on_verify_request(Peer& peer, const wire::VerifyRequest& request) {
  if (peer.status.replication != ReplicationState::verify_target) return;  // late
  if (!block_message_valid(peer, request.sector, request.length_bytes, "VerifyRequest")) {
    return;
  }
  const std::uint64_t block = request.sector.value / Bitmap::sectors_per_bit;
  const IoId io = next_io();
  verify_reads_[io.value] = VerifyIo{peer.status.node_id, block,
                                     connection_epochs_[peer.status.node_id.value], false,
                                     request.digest};
  actions_.push_back(
      DiskRead{io, request.sector, request.length_bytes, std::nullopt, false, true});
}

// Network input: one whole bitmap block of the volume, else a protocol error.
bool Node::block_message_valid(Peer& peer, Sector sector, std::uint32_t length_bytes,
                               const char* what, std::uint64_t blocks_max) {
  const std::uint64_t block = sector.value / Bitmap::sectors_per_bit;
  const std::uint64_t blocks =
      (std::uint64_t{length_bytes} + Bitmap::bytes_per_bit - 1) / Bitmap::bytes_per_bit;
  if (in_range(sector, length_bytes) && block < peer.bitmap->bit_count() && blocks >= 1 &&
      blocks <= blocks_max && sector.value == block_sector(block) &&
      length_bytes == run_length(block, blocks)) {
    return true;
  }
  const std::string expected =
      blocks_max == 1 ? "one bitmap block"
                      : "a run of at most " + std::to_string(blocks_max) + " bitmap blocks";
  protocol_error(peer, std::string(what) + " for sector " + std::to_string(sector.value) + " of " +
                           std::to_string(length_bytes) + " bytes is not " + expected +
                           " of the volume");
  return false;
}

// ---- Both sides -------------------------------------------------------------------------------

bool Node::on_verify_io_completed(IoId io, IoStatus status, std::uint64_t digest) {
  auto found = verify_reads_.find(io.value);
  if (found == verify_reads_.end()) return false;
  const VerifyIo entry = found->second;
  verify_reads_.erase(found);
  // on-io-error detach: the failed disk ends the verify (sanitize), and the peer learns it
  // from our StateReport.
  if (status != IoStatus::ok) {
    if (!local_disk_detached()) detach_local_disk();
    return true;
  }
  Peer& peer = peers_[entry.peer.value];
  const bool same = peer.status.connection == ConnectionState::connected &&
                    connection_epochs_[entry.peer.value] == entry.connection_epoch;
  const Sector sector{block_sector(entry.block)};
  const std::uint32_t length = block_length(entry.block);
  if (entry.source) {
    if (!same || peer.status.replication != ReplicationState::verify_source) return true;
    actions_.push_back(Send{entry.peer, wire::VerifyRequest{sector, length, digest},
                            std::nullopt});
    return true;
  }
  if (!same || peer.status.replication != ReplicationState::verify_target) return true;
  const bool in_sync = digest == entry.peer_digest;
  peer.status.verify_done_blocks += 1;
  if (!in_sync) verify_block_out_of_sync(peer, entry.block);
  actions_.push_back(Send{entry.peer, wire::VerifyReply{sector, length, in_sync}, std::nullopt});
  return true;
}

void Node::verify_block_out_of_sync(Peer& peer, std::uint64_t block) {
  DITTO_ASSERT(block < peer.bitmap->bit_count());
  peer.bitmap->set_bits(block, 1);
  peer.status.verify_out_of_sync_blocks += 1;
}

void Node::finish_verify(Peer& peer, bool notify_peer, const char* outcome) {
  const ReplicationState role = peer.status.replication;
  DITTO_ASSERT(is_verifying(role));
  if (notify_peer) {
    actions_.push_back(Send{peer.status.node_id,
                            wire::SyncControl{wire::SyncCommand::verify_end, Sector{0}},
                            std::nullopt});
  }
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].replication = ReplicationState::established;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());
  peer.step_allowance_blocks = 0;
  cancel_timer(TimerId{timer_resync_step_base + peer.status.node_id.value});
  actions_.push_back(Event{
      "verify-finished name:" + config_.resource_name + " peer-node-id:" +
      std::to_string(peer.status.node_id.value) + " conn-name:" + peer.status.name +
      " role:" + text(role) + " result:" + outcome +
      " blocks:" + std::to_string(peer.status.verify_done_blocks) +
      " out-of-sync-blocks:" + std::to_string(peer.status.verify_out_of_sync_blocks)});
}

}  // namespace ditto::core
