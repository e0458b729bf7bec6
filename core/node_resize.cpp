// Online grow (drbdsetup resize, drbd9-semantics.md §3.5), a two-phase commit through the same
// steps as a promotion (node_state.cpp: send_prepare, note_reply, send_decision):
//
// 1. The initiator asks its driver for its backing size (CheckDiskSize → on_disk_size; the
//    daemon moves the internal metadata to the end of a grown device first), checks what it can
//    alone (every configured peer connected, no resync or verify, no shrink, its own disk big
//    enough) and picks the resync source: a connected UpToDate Primary, else itself when
//    UpToDate, else the lowest UpToDate peer.
// 2. TwoPcPrepare{resize, requested size (0: the largest possible), assume-clean, source} to
//    every connected peer. A participant busy with another transaction answers retry; else it
//    asks its own driver for its backing size and votes: no with ERR_DISK_TOO_SMALL when its
//    disk cannot hold the requested size (or, without one, has no room beyond the current
//    size: it was not grown), ERR_RESIZE_RESYNC while a resync or verify runs,
//    ERR_IMPLICIT_SHRINK for a smaller size; else yes with its usable size.
// 3. The initiator decides the size (the requested one, else the smallest usable size of the
//    diskful nodes) and sends TwoPcCommit{size}; any `no` aborts, and the command fails with the
//    refusing node's name and reason. Retry votes back off as a promotion does.
// 4. On commit every node exposes the new size and grows its bitmaps. Unless assume-clean, each
//    diskful node but the source marks the new area out of sync toward the source, goes
//    Inconsistent and asks the source for a resync of it (SyncControl{become_sync_source},
//    its sector the new size: a source that has not seen the commit yet takes it as the commit,
//    since the commit is the only way the peer learned that size). The source marks the new
//    area out of sync toward every diskful peer, so a resync cut short resumes later.
//
// A resize needs every configured peer connected (SS_NEED_CONNECTION otherwise): a node that
// misses the commit would expose the old size, and the handshake does not grow a node (see
// node_sizes.cpp). Until a participant's StateReport shows the new size, a StateReport it sent
// before its commit does not make the others shrink back (Peer::resize_committed_sectors).
//
// Known limitation: with two or more SyncTargets, each marks the new area out of sync toward
// the other while it receives it (node_peers_in_sync.cpp: the other target is not UpToDate, so
// the source cannot vouch for it). Both end UpToDate with the source's data; the marks between
// them move (a no-op copy of the new area) at their next handshake.
#include <string>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::string sectors(std::uint64_t count) {
  return std::to_string(count) + " sectors";
}

AdminResult resize_admin_result(const StateChangeResult& result) {
  if (result.ok()) return {};
  return {false, to_string(result.code), result.message};
}

}  // namespace

// ---- Initiator --------------------------------------------------------------------------------

AdminResult Node::resize(Instant now, const Resize& request) {
  if (resize_) return {true, "", "a resize is already in progress", true};
  if (promotion_) {
    return {false, to_string(StateChangeCode::concurrent_state_change),
            "a promotion is in progress"};
  }
  if (request.size_bytes % sector_size_bytes != 0) {
    return {false, "ERR_INVALID_REQUEST",
            "resize: --size must be a multiple of 512 bytes, not " +
                std::to_string(request.size_bytes)};
  }
  resize_outcome_.reset();
  resize_ = ResizeChange{};
  resize_->request = request;
  resize_->give_up_at = now + Duration{2 * config_.twopc_timeout.ns};
  if (usable_size_bytes() != 0) {
    resize_->checking_disk = true;
    actions_.push_back(CheckDiskSize{});
    return {true, "", "resize in progress: checking the backing disk", true};
  }
  start_resize_attempt(now);
  if (!resize_) return *resize_outcome_;
  return {true, "", "resize in progress", true};
}

// What keeps this node from taking part in a resize to `size_sectors` (0: the largest its disk
// allows); success when nothing does.
StateChangeResult Node::resize_refusal(std::uint64_t size_sectors) const {
  for (const Peer& peer : configured_peers()) {
    if (is_syncing(peer.status.replication) || is_verifying(peer.status.replication)) {
      return {StateChangeCode::resize_resync,
              "a resync or verify with " + peer.status.name + " runs"};
    }
  }
  const std::uint64_t current = size_bytes_ / sector_size_bytes;
  if (size_sectors != 0 && size_sectors < current) {
    return {StateChangeCode::implicit_shrink,
            "shrinking from " + sectors(current) + " to " + sectors(size_sectors) +
                " is not supported"};
  }
  const std::uint64_t usable = usable_size_bytes() / sector_size_bytes;
  if (usable == 0) return {};  // a diskless node takes any size
  if (size_sectors != 0 ? usable < size_sectors : usable <= current) {
    return {StateChangeCode::disk_too_small,
            "the disk of " + config_.node_name + " holds " + sectors(usable) +
                (size_sectors != 0 ? ", less than " + sectors(size_sectors)
                                   : ", nothing beyond the current " + sectors(current)) +
                ": grow its backing device first"};
  }
  return {};
}

void Node::start_resize_attempt(Instant now) {
  DITTO_ASSERT(resize_.has_value() && !resize_->checking_disk);
  resize_->backing_off = false;
  if (prepared_) return resize_timer(now);  // busy with a foreign transaction: back off
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected || !peer.state_received) {
      return finish_resize({StateChangeCode::need_connection,
                            "resize needs every peer connected, and " + peer.status.name +
                                " is " + std::string(to_string(peer.status.connection))});
    }
  }
  const std::uint64_t requested = resize_->request.size_bytes / sector_size_bytes;
  if (StateChangeResult refusal = resize_refusal(requested); !refusal.ok()) {
    return finish_resize(refusal);
  }
  // The resync source: an UpToDate Primary, else this node, else the lowest UpToDate peer.
  std::optional<NodeId> source;
  if (disk_state_ == DiskState::up_to_date) source = config_.node_id;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.disk != DiskState::up_to_date) continue;
    if (peer.status.role == Role::primary && role_ != Role::primary) source = peer.status.node_id;
    if (!source) source = peer.status.node_id;
  }
  if (!source && !resize_->request.assume_clean) {
    return finish_resize({StateChangeCode::no_up_to_date_disk,
                          "no node with an UpToDate disk could resync the new area"});
  }
  resize_->resync_source = source.value_or(config_.node_id);
  const std::uint32_t peers = handshaken_peers_mask();
  if (peers == 0) return decide_resize(now);
  const std::uint8_t flags = resize_->request.assume_clean ? wire::twopc_flag_assume_clean : 0;
  const wire::TwoPcPrepare prepare{config_.node_id, 0,         wire::TwoPcChange::resize,
                                   requested,       flags,     resize_->resync_source};
  send_prepare(now, resize_->round, peers, prepare);
}

void Node::decide_resize(Instant now) {
  DITTO_ASSERT(resize_.has_value() && resize_->round.waiting_mask == 0);
  TwoPcRound& round = resize_->round;
  if (!round.refusal.ok()) {
    send_decision(round, false);
    return finish_resize(round.refusal);
  }
  if (round.retry) {
    send_decision(round, false);
    return resize_timer(now);
  }
  const std::uint64_t requested = resize_->request.size_bytes / sector_size_bytes;
  StateChangeResult refusal = resize_refusal(requested);
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected) {
      refusal = {StateChangeCode::need_connection,
                 "the connection to " + peer.status.name + " was lost during the resize"};
    }
  }
  std::uint64_t size = requested;
  if (size == 0) {
    size = usable_size_bytes() / sector_size_bytes;
    if (round.smallest_usable_sectors != 0 && (size == 0 || round.smallest_usable_sectors < size)) {
      size = round.smallest_usable_sectors;
    }
  }
  if (refusal.ok() && size == 0) {
    refusal = {StateChangeCode::no_local_disk, "no diskful node took part in the resize"};
  }
  if (!refusal.ok()) {
    send_decision(round, false);
    return finish_resize(refusal);
  }
  send_decision(round, true, size);
  commit_resize(size, resize_->request.assume_clean, resize_->resync_source);
  finish_resize({});
}

void Node::finish_resize(StateChangeResult result) {
  DITTO_ASSERT(resize_.has_value());
  resize_.reset();
  cancel_timer(timer_twopc_initiator);
  resize_outcome_ = resize_admin_result(result);
  std::string line =
      "response resize name:" + config_.resource_name + " result:" + to_string(result.code);
  if (!result.ok()) line += " message:\"" + result.message + "\"";
  actions_.push_back(Event{std::move(line)});
}

// timer_twopc_initiator while a resize runs: the retry after a back-off, or the attempt's
// timeout. Also the back-off itself (called with no timer armed for it).
void Node::resize_timer(Instant now) {
  DITTO_ASSERT(resize_.has_value());
  if (resize_->backing_off) return start_resize_attempt(now);
  if (resize_->round.waiting_mask != 0) {
    send_decision(resize_->round, false);
    return finish_resize(
        {StateChangeCode::timeout, "peers did not answer the resize within twopc-timeout"});
  }
  if (!arm_twopc_retry(now, resize_->give_up_at)) {
    return finish_resize({StateChangeCode::concurrent_state_change,
                          "concurrent state changes kept the resize from committing within "
                          "twice twopc-timeout"});
  }
  resize_->backing_off = true;
  resize_->round = TwoPcRound{};
}

// ---- Participant ------------------------------------------------------------------------------

void Node::on_resize_prepare(Instant now, Peer& peer, const wire::TwoPcPrepare& prepare) {
  if (initiating_twopc() || prepared_) {
    if (prepared_for(prepare)) return;  // a duplicate: the vote follows (or was sent)
    actions_.push_back(Send{peer.status.node_id,
                            wire::TwoPcReply{prepare.initiator, prepare.transaction_id,
                                             wire::TwoPcVote::retry,
                                             static_cast<std::int8_t>(StateChangeCode::success),
                                             0},
                            std::nullopt});
    return;
  }
  prepared_ = Prepared{prepare.initiator, prepare.transaction_id, prepare.change, prepare};
  arm_timer(timer_twopc_participant, now + config_.twopc_timeout);
  if (usable_size_bytes() != 0) {
    prepared_->checking_disk = true;
    actions_.push_back(CheckDiskSize{});
    return;
  }
  vote_on_resize(peer);
}

void Node::vote_on_resize(Peer& initiator) {
  DITTO_ASSERT(prepared_.has_value() && prepared_->change == wire::TwoPcChange::resize);
  const wire::TwoPcPrepare& prepare = prepared_->prepare;
  StateChangeResult refusal = resize_refusal(prepare.size_sectors);
  const bool assume_clean = (prepare.flags & wire::twopc_flag_assume_clean) != 0;
  if (refusal.ok() && !assume_clean && usable_size_bytes() != 0 &&
      prepare.resync_source != config_.node_id) {
    const Peer& source = peers_[prepare.resync_source.value];
    if (!source.configured || source.status.connection != ConnectionState::connected) {
      refusal = {StateChangeCode::need_connection, "the resync source is not connected"};
    }
  }
  wire::TwoPcReply reply{prepare.initiator, prepare.transaction_id, wire::TwoPcVote::yes,
                         static_cast<std::int8_t>(StateChangeCode::success),
                         usable_size_bytes() / sector_size_bytes};
  if (!refusal.ok()) {
    reply.vote = wire::TwoPcVote::no;
    reply.code = static_cast<std::int8_t>(refusal.code);
    prepared_.reset();
    cancel_timer(timer_twopc_participant);
  }
  actions_.push_back(Send{initiator.status.node_id, reply, std::nullopt});
}

void Node::on_disk_size(Instant now, std::uint64_t usable_size_bytes) {
  DITTO_ASSERT(usable_size_bytes % sector_size_bytes == 0);
  // A disk never shrinks under a running node; a smaller answer is a driver that lost its
  // metadata move, and the old size stays.
  if (!config_.intentional_diskless && !local_disk_detached() &&
      usable_size_bytes > config_.volume_size_bytes) {
    config_.volume_size_bytes = usable_size_bytes;
  }
  if (resize_ && resize_->checking_disk) {
    resize_->checking_disk = false;
    start_resize_attempt(now);
  }
  if (prepared_ && prepared_->checking_disk) {
    prepared_->checking_disk = false;
    vote_on_resize(peers_[prepared_->initiator.value]);
  }
  apply_quorum_changes(now);
  pump_activity_log();
  invariants();
}

// ---- Commit (initiator and participants) ------------------------------------------------------

void Node::commit_resize(std::uint64_t size_sectors, bool assume_clean, NodeId source) {
  const std::uint64_t old_sectors = size_bytes_ / sector_size_bytes;
  DITTO_ASSERT(size_sectors >= old_sectors);
  if (size_sectors == old_sectors) return;
  set_size(size_sectors * sector_size_bytes);
  const std::uint64_t grown = size_sectors - old_sectors;
  for (Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected) {
      peer.resize_committed_sectors = size_sectors;
    }
  }
  send_state_to_connected_peers();
  if (assume_clean || usable_size_bytes() == 0) return;
  if (source == config_.node_id) {
    for (Peer& peer : configured_peers()) {
      if (peer.usable_size_sectors != 0) peer.bitmap->set_sectors(old_sectors, grown);
    }
    return;
  }
  Peer& from = peers_[source.value];
  if (from.status.connection != ConnectionState::connected ||
      from.status.replication != ReplicationState::established) {
    // The source is gone: the new area is out of sync toward it, resynced at the reconnect.
    from.bitmap->set_sectors(old_sectors, grown);
    return;
  }
  const StateChangeResult result = invalidate_toward(from, old_sectors, Sector{size_sectors});
  if (!result.ok()) from.bitmap->set_sectors(old_sectors, grown);
}

// A resize target asked us for the resync of the new area before the initiator's commit
// reached us: the target only learned `size_sectors` from that commit.
void Node::commit_resize_early(std::uint64_t size_sectors) {
  if (!prepared_ || prepared_->change != wire::TwoPcChange::resize || prepared_->checking_disk ||
      size_sectors <= size_bytes_ / sector_size_bytes) {
    return;
  }
  on_twopc_decision(peers_[prepared_->initiator.value], prepared_->initiator,
                    prepared_->transaction_id, true, size_sectors);
}

}  // namespace ditto::core
