// Node: the bitmap-based resync (§5.1) with its rate control (§5.4).
//
// The resync is driven by the SyncTarget. Every 100 ms step its controller (core/
// resync_controller.h, DRBD's dynamic resync speed controller) decides how many blocks the step
// may request (step_allowance_blocks): what came back during the last step plus a correction
// toward c-fill-target in flight, at most c-max-rate. Within the step, requests go out as runs
// come back, so the disks and the link never wait for the next step, as long as the allowance
// lasts and at most resync_in_flight_max_blocks() are in flight. When everything requested came
// back before the step was over (the allowance is used up, nothing in flight), the next step is
// taken at once (DRBD reschedules its resync work early the same way): its duration is
// measured, so the controller sees the rate the peer really delivered and c-max-rate still
// holds. That is how the resync ramps up to the speed of the hardware within a few round trips.
//
// Like DRBD's make_resync_request it asks for runs of adjacent out-of-sync blocks, each in one
// ResyncRequest of at most resync_run_blocks_max blocks (1 MiB) that never crosses a multiple
// of that size, and at most half the fill target, so that two requests are in flight: the
// source reads one while the target writes the other. (A checksum resync asks block by block.)
// The SyncSource reads a requested run in one read once no local application write to it is in
// flight and answers with one Data{data_flag_resync}; the target writes it in one write, clears
// the run's bits and sends ResyncAck so the source clears its bits too. An application write
// that reaches the target while a run is requested or being written makes the whole run stale:
// it is discarded (its bits stay set) and requested again later.
//
// The target writes without FUA (on a disk without FUA every FUA write costs a cache flush).
// That is safe because nothing durable says "in sync" for a run before a flush covered it:
// the bitmap pages written before the next flush completed keep such runs marked
// (resync_unflushed_, resync_flushing_: every bitmap write-back is preceded by a flush, see
// node_activity_log.cpp), and the resync finishes (the disk turns UpToDate) only after a flush
// that covers every run written. A crash before that loses nothing a restart would trust.
//
// c-min-rate (§5.4): while this node sees application I/O (a client request, or a write received
// from a Primary, in the last step), a step requests at most c-min-rate's share and is never
// taken early, so the resync does not crowd out the application (DRBD throttles when the resync
// runs faster than c-min-rate while the backing device sees application I/O).
//
// Known limitation: with a Secondary as SyncSource while a Primary elsewhere keeps writing, the
// two streams are not ordered against each other (DRBD orders them with dagtags).
#include <algorithm>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

constexpr std::uint64_t fence_mask = (std::uint64_t{1} << 56) - 1;

// DRBD's default max-buffers: 2048 pages of 4 KiB.
constexpr std::uint64_t max_buffers_default_blocks = 2048;

// A rate's share of one 100 ms step, in blocks (rate 0: no cap).
std::uint64_t blocks_per_step(std::uint32_t rate_kib) {
  if (rate_kib == 0) return std::uint64_t{1} << 40;
  const std::uint64_t kib_per_step = rate_kib / 10;
  return std::max<std::uint64_t>(1, kib_per_step / (Bitmap::bytes_per_bit / 1024));
}

std::uint64_t blocks_of_length(std::uint32_t length_bytes) {
  return (length_bytes + Bitmap::bytes_per_bit - 1) / Bitmap::bytes_per_bit;
}

}  // namespace

// ---- Rate control -----------------------------------------------------------------------------

// Online verify's allowance per step: c-max-rate's (resync-rate's without the controller),
// throttled to c-min-rate's under application I/O like the resync's.
std::uint64_t Node::resync_step_blocks(Instant now) const {
  const std::uint32_t rate_kib =
      config_.c_plan_ahead_deciseconds == 0 ? config_.resync_rate_kib : config_.c_max_rate_kib;
  const std::uint64_t blocks = blocks_per_step(rate_kib);
  if (config_.c_min_rate_kib == 0 || !application_io_recent(now)) return blocks;
  return std::min(blocks, blocks_per_step(config_.c_min_rate_kib));
}

// A step of the resync with `peer` ends now: the controller's allowance for the next one, from
// the blocks that came back during it and those still in flight.
std::uint64_t Node::resync_controller_blocks(Instant now, Peer& peer) {
  const ResyncControllerSettings settings{config_.resync_rate_kib,
                                          config_.c_plan_ahead_deciseconds,
                                          config_.c_fill_target_sectors,
                                          config_.c_delay_target_deciseconds,
                                          config_.c_max_rate_kib};
  const std::uint64_t sectors = peer.resync_controller.step(
      settings, peer.resync_blocks_in * Bitmap::sectors_per_bit,
      resync_blocks_in_flight(peer) * Bitmap::sectors_per_bit, now - peer.resync_step_started);
  peer.resync_blocks_in = 0;
  peer.resync_step_started = now;
  const std::uint64_t blocks = sectors / Bitmap::sectors_per_bit;
  if (config_.c_min_rate_kib == 0 || !application_io_recent(now)) return blocks;
  return std::min(blocks, blocks_per_step(config_.c_min_rate_kib));
}

// The fill target in blocks (at least one); with c-fill-target 0 (the delay target), DRBD's
// default max-buffers. Online verify keeps at most this many requests in flight.
std::uint64_t Node::resync_fill_blocks() const {
  if (config_.c_fill_target_sectors == 0) return max_buffers_default_blocks;
  return std::max<std::uint64_t>(1, config_.c_fill_target_sectors / Bitmap::sectors_per_bit);
}

// The most resync data in flight toward one peer: twice the fill target (the controller aims
// at the fill target when a step starts; within a step more may go out as runs come back), and
// at least DRBD's default max-buffers, which bounds a delay-target resync.
std::uint64_t Node::resync_in_flight_max_blocks() const {
  return std::max(2 * (config_.c_fill_target_sectors / Bitmap::sectors_per_bit),
                  max_buffers_default_blocks);
}

// Application I/O in flight here, or started during the last step.
bool Node::application_io_recent(Instant now) const {
  if (!requests_.empty() || !peer_ios_.empty()) return true;
  return last_application_io_ && now < *last_application_io_ + resync_step;
}

// A client request or a write from a Primary: the running steps drop to c-min-rate's share at
// once (the next step starts from it too).
void Node::note_application_io(Instant now) {
  last_application_io_ = now;
  if (config_.c_min_rate_kib == 0) return;
  const std::uint64_t throttled = blocks_per_step(config_.c_min_rate_kib);
  for (Peer& peer : configured_peers()) {
    if (!is_resync_target(peer.status.replication)) continue;
    peer.step_allowance_blocks = std::min(peer.step_allowance_blocks, throttled);
  }
}

// ---- SyncTarget -------------------------------------------------------------------------------

std::uint64_t Node::resync_run_blocks(const Peer& peer) const {
  if (peer.resync_checksums) return 1;
  if (config_.c_fill_target_sectors == 0) return resync_run_blocks_max;  // delay target
  return std::min(resync_run_blocks_max, std::max<std::uint64_t>(1, resync_fill_blocks() / 2));
}

std::uint64_t Node::resync_blocks_in_flight(const Peer& peer) const {
  return peer.resync_runs_blocks;
}

std::map<std::uint64_t, Node::ResyncRun>::iterator Node::first_run_from(
    std::map<std::uint64_t, ResyncRun>& runs, std::uint64_t block) {
  auto it = runs.upper_bound(block);
  if (it != runs.begin() && std::prev(it)->first + std::prev(it)->second.blocks > block) --it;
  return it;
}

void Node::on_resync_step(Instant now, NodeId peer_id) {
  Peer& peer = peers_[peer_id.value];
  if (!peer.configured || !is_resync_target(peer.status.replication)) return;
  latest_input_ = std::max(latest_input_, now);
  peer.step_allowance_blocks = resync_controller_blocks(now, peer);
  arm_timer(TimerId{timer_resync_step_base + peer_id.value}, now + resync_step);
  pump_resync(peer);
  maybe_finish_resync(peer);
}

// A run left peer.resync_runs because its reply came back (written, discarded as stale, or in
// sync): the controller counts it as having come in during this step.
void Node::resync_run_came_back(Peer& peer, std::map<std::uint64_t, ResyncRun>::iterator run) {
  DITTO_ASSERT(run != peer.resync_runs.end());
  peer.resync_blocks_in += run->second.blocks;
  DITTO_ASSERT(peer.resync_runs_blocks >= run->second.blocks);
  peer.resync_runs_blocks -= run->second.blocks;
  peer.resync_runs.erase(run);
}

// Everything this step allowed came back before the step was over: the next step now (not
// under application I/O, where c-min-rate's share is per 100 ms, and not twice at one instant).
void Node::maybe_step_early(Peer& peer) {
  if (peer.status.replication != ReplicationState::sync_target) return;
  if (peer.step_allowance_blocks != 0 || !peer.resync_runs.empty()) return;
  if (peer.resync_blocks_in == 0 || latest_input_ <= peer.resync_step_started) return;
  if (config_.c_min_rate_kib != 0 && application_io_recent(latest_input_)) return;
  on_resync_step(latest_input_, peer.status.node_id);
}

void Node::pump_resync(Peer& peer) {
  if (peer.status.replication != ReplicationState::sync_target) return;
  const std::uint64_t fill = resync_in_flight_max_blocks();
  std::uint64_t in_flight = resync_blocks_in_flight(peer);
  bool wrapped = false;
  // The cursor only moves forward within a pass, so the run at or after the next set bit is
  // found by walking on from the last one looked at (no lookup per run already requested: near
  // the end of a resync every completion walks all runs in flight).
  std::optional<std::map<std::uint64_t, ResyncRun>::iterator> walk;
  while (peer.step_allowance_blocks > 0 && in_flight < fill) {
    const std::optional<std::uint64_t> next = peer.bitmap->find_next_set(peer.resync_cursor);
    if (!next) {
      if (wrapped || peer.resync_cursor == 0) return;
      wrapped = true;  // stale blocks behind the cursor are requested again
      peer.resync_cursor = 0;
      walk.reset();
      continue;
    }
    auto requested = walk ? *walk : first_run_from(peer.resync_runs, *next);
    while (requested != peer.resync_runs.end() &&
           requested->first + requested->second.blocks <= *next) {
      ++requested;
    }
    if (requested != peer.resync_runs.end() && requested->first <= *next) {
      peer.resync_cursor = requested->first + requested->second.blocks;  // already requested
      walk = std::next(requested);
      continue;
    }
    walk = requested;  // the new run goes before it and ends at the new cursor
    // Adjacent set bits, within the limits, not across a multiple of the largest run (requests
    // stay aligned) and not into a run already requested.
    const std::uint64_t limit =
        std::min({resync_run_blocks(peer), fill - in_flight, peer.step_allowance_blocks});
    std::uint64_t end = std::min({*next + limit, peer.bitmap->bit_count(),
                                  (*next / resync_run_blocks_max + 1) * resync_run_blocks_max});
    if (requested != peer.resync_runs.end()) end = std::min(end, requested->first);
    std::uint64_t blocks = 1;
    while (*next + blocks < end && peer.bitmap->test(*next + blocks)) blocks += 1;
    peer.resync_cursor = *next + blocks;
    peer.resync_runs[*next].blocks = blocks;
    peer.resync_runs_blocks += blocks;
    peer.step_allowance_blocks -= blocks;
    in_flight += blocks;
    request_resync_run(peer, *next);
  }
  maybe_step_early(peer);
}

void Node::maybe_finish_resync(Peer& peer) {
  if (peer.status.replication != ReplicationState::sync_target) return;
  if (peer.bitmap->count_set() != 0 || !peer.resync_runs.empty()) return;
  if (!resync_unflushed_.empty() || !resync_flushing_.empty()) {
    // The runs written without FUA must be durable before the disk says UpToDate: a flush
    // (queued behind the metadata writes, whose completion calls us again).
    const bool queued =
        std::any_of(metadata_queue_.begin(), metadata_queue_.end(),
                    [](const MetadataJob& job) { return job.kind == MetadataJob::Kind::flush; });
    if (!queued) metadata_queue_.push_back(MetadataJob{MetadataJob::Kind::flush, 0, 0, {}});
    return issue_metadata_write();
  }
  const std::uint64_t left = comparable_current(generations_.uuids.current);
  // A Primary keeps its generations when the source was in its generation as the resync
  // began (asked in place, or its report then named our current): every write since went
  // through the source, and so did every generation we started meanwhile, which the source
  // adopted without reporting it (node_attach.cpp, primary_disk_caught_up; quorum swarm seed
  // 2673: the Primary took back the generation it had left, and the peers that went on with the
  // new one met it later as a split brain). A source that was behind us is taken at its word.
  const bool source_followed_us =
      role_ == Role::primary &&
      (peer.in_place_source_of_primary ||
       comparable_current(peer.uuids.current) == comparable_current(peer.rs_start_uuid));
  if (source_followed_us) {
    primary_disk_caught_up(peer);
  } else {
    resync_target_finished(generations_.uuids, peer.uuids, config_.node_id.value,
                           peer.status.node_id.value, peer.rs_start_uuid);
  }
  peer.in_place_source_of_primary = false;
  ClusterState proposed = cluster_state();
  proposed.peers[peer.status.node_id.value].replication = ReplicationState::established;
  proposed.disk =
      peer.status.disk == DiskState::up_to_date ? DiskState::up_to_date : DiskState::outdated;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());
  actions_.push_back(Event{"resync-finished name:" + config_.resource_name +
                           " peer-node-id:" + std::to_string(peer.status.node_id.value) +
                           " conn-name:" + peer.status.name +
                           " blocks:" + std::to_string(peer.status.resync_done_blocks)});
  adopt_source_dagtag(peer);
  // A rerun that brought us this resync is used up: should we be outdated again later, an
  // UpToDate peer may be asked once more (diskless swarm seed 886: the flag set by the rerun
  // outlived the reconnect it caused, and the node stayed Outdated for good).
  allow_handshake_reruns();
  send_state_to_connected_peers();
  resume_deferred_resyncs();
  offer_resync_to_peers_left_behind(peer, left);
  reconcile_with_peers_of_our_generation(peer);
  // A peer forwarded that the Primary calls us weak (it does not replicate to us): UpToDate now
  // in its generation, we would miss its next writes yet count as current. We outdate
  // ourselves at once (DRBD: a Secondary that learns of a Primary it is not connected to), not
  // at the next StateReport, which may never come before a handshake picks us as a source over
  // a node that has those writes (swarm seed 871 with attach).
  outdate_if_weak();
  // A Primary UpToDate again resyncs the peers it could not give its data before.
  resync_outdated_peers();
}

// Our blocks are now the source's wherever we differed: we hold what it held of the Primary's
// writes, so its dagtag is ours (a later reconciliation compares it; with our own older dagtag
// a peer that received fewer of that Primary's writes than the source would be taken for
// newer, and would overwrite blocks we got from the source).
void Node::adopt_source_dagtag(const Peer& source) {
  if (source.dagtag_node == wire::dagtag_node_none) return;
  if (dagtag_node_ == source.dagtag_node && dagtag_ >= source.dagtag) return;
  dagtag_node_ = source.dagtag_node;
  dagtag_ = source.dagtag;
}

// We became UpToDate in the generation of an UpToDate peer we stayed Established with
// throughout our resync from another node, and that peer holds bits toward us: writes of a lost
// Primary that it received and we may not have (mark_unacked_peer_writes; we were not UpToDate
// when it lost the Primary, so reconcile_after_lost_primary passed us by). No handshake between
// us would compare them, and we would stay Established with different blocks (diskless swarm
// seed 871). The reconnect runs the same-generation handshake, which reconciles from the side
// with bits, else from the one with more of the lost Primary's writes (dagtag, adopted from our
// source).
void Node::reconcile_with_peers_of_our_generation(const Peer& source) {
  if (disk_state_ != DiskState::up_to_date || role_ == Role::primary) return;
  // A Primary we follow resyncs what it marked toward each of us itself; between two of its
  // Secondaries the same-generation rule could only guess (neither has its dagtag, and one of us
  // may have received its newest writes before the other: swarm seed 618).
  for (const Peer& other : configured_peers()) {
    if (other.status.connection == ConnectionState::connected &&
        other.status.role == Role::primary) {
      return;
    }
  }
  const std::uint64_t current = comparable_current(generations_.uuids.current);
  for (Peer& other : configured_peers()) {
    if (&other == &source || !other.state_received) continue;
    if (other.status.connection != ConnectionState::connected ||
        other.status.replication != ReplicationState::established ||
        other.intentional_diskless || other.status.disk != DiskState::up_to_date) {
      continue;
    }
    if (comparable_current(other.uuids.current) != current) continue;
    if (other.peer_dirty_bits == 0) continue;
    actions_.push_back(Disconnect{other.status.node_id,
                                  "reconnecting to reconcile with " + other.status.name +
                                      " the blocks marked between us while we resynced"});
    peer_lost(other, ConnectionState::protocol_error);
  }
}

// The resync moved us from generation `left` to the source's. A peer we are connected to that
// is still in `left` (consistent, so no SyncTarget elsewhere) is now behind us, although its
// handshake with us found nothing to do: it runs the handshake again to get its resync (DRBD's
// resync offer to all peers once a SyncTarget is stable, UUID_FLAG_GOT_STABLE). Otherwise it
// stays Established in the old generation, and a promotion on our side branches from a
// generation it never had (quorum swarm seed 856).
void Node::offer_resync_to_peers_left_behind(const Peer& source, std::uint64_t left) {
  const std::uint64_t current = comparable_current(generations_.uuids.current);
  if (current == left || disk_state_ != DiskState::up_to_date) return;
  for (Peer& other : configured_peers()) {
    if (&other == &source || !other.state_received) continue;
    if (other.status.connection != ConnectionState::connected) continue;
    if (other.status.replication != ReplicationState::established) continue;
    if (other.status.disk < DiskState::outdated || other.status.disk == DiskState::dunknown) {
      continue;
    }
    if (comparable_current(other.uuids.current) != left) continue;
    actions_.push_back(
        Disconnect{other.status.node_id, "reconnecting to resync peer " + other.status.name +
                                             " left in the generation we resynced away from"});
    peer_lost(other, ConnectionState::protocol_error);
  }
}

// A flush was issued: it covers every run written so far.
void Node::resync_flush_started() {
  resync_flushing_.insert(resync_flushing_.end(), resync_unflushed_.begin(),
                          resync_unflushed_.end());
  resync_unflushed_.clear();
}

// That flush completed: its runs are durable; a resync waiting for it may finish.
void Node::resync_flush_done() {
  resync_flushing_.clear();
  for (Peer& peer : configured_peers()) maybe_finish_resync(peer);
}

// Our resync as SyncTarget ended (finished, or its source was lost): connections whose resync
// was deferred meanwhile run the handshake again.
void Node::resume_deferred_resyncs() {
  for (Peer& peer : configured_peers()) {
    if (!peer.resync_deferred) continue;
    if (peer.status.connection != ConnectionState::connected) continue;
    actions_.push_back(
        Disconnect{peer.status.node_id, "reconnecting to run the resync that was deferred"});
    peer_lost(peer, ConnectionState::protocol_error);
  }
}

void Node::stop_resync(Peer& peer) {
  peer.resync_runs.clear();
  peer.resync_runs_blocks = 0;
  bool target = false;
  for (const Peer& other : configured_peers()) {
    target = target || (&other != &peer && receives_resync(other.status.replication));
  }
  if (!target) resync_write_fences_.clear();
  peer.step_allowance_blocks = 0;
  peer.resync_blocks_in = 0;
  peer.reconcile_resync = false;
  cancel_timer(TimerId{timer_resync_step_base + peer.status.node_id.value});
}

void Node::on_resync_data(Peer& peer, const wire::Data& data, PayloadHandle payload) {
  if (!is_resync_target(peer.status.replication)) {
    actions_.push_back(ReleasePayload{payload});  // late: the resync stopped
    return;
  }
  const std::uint64_t block = data.sector.value / Bitmap::sectors_per_bit;
  auto found = peer.resync_runs.find(block);
  if (found == peer.resync_runs.end() || found->second.write_io ||
      data.sector.value != block_sector(block) ||
      data.length_bytes != run_length(block, found->second.blocks)) {
    actions_.push_back(ReleasePayload{payload});
    return protocol_error(peer, "resync reply for sector " + std::to_string(data.sector.value) +
                                    " of " + std::to_string(data.length_bytes) +
                                    " bytes that was not requested");
  }
  peer.status.received_bytes += data.length_bytes;
  const std::uint64_t blocks = found->second.blocks;
  if (resync_reply_fenced_out(block, blocks, data.sequence)) found->second.stale = true;
  if (found->second.stale) {
    actions_.push_back(ReleasePayload{payload});
    resync_run_came_back(peer, found);
    pump_resync(peer);
    return;
  }
  const IoId io = next_io();
  found->second.write_io = io;
  resync_writes_[io.value] = ResyncIo{
      peer.status.node_id, block, connection_epochs_[peer.status.node_id.value], payload, 0,
      std::nullopt,        blocks};
  // No FUA: see the file comment.
  actions_.push_back(DiskWrite{io, data.sector, data.length_bytes, payload, false});
}

// A resync reply (Data or ResyncInSync) must reflect the newest application write this node
// received for each block of the run (the source may be a Secondary that has not received it).
bool Node::resync_reply_fenced_out(std::uint64_t block, std::uint64_t blocks,
                                   std::uint64_t reply_fence) const {
  for (auto fence = resync_write_fences_.lower_bound(block);
       fence != resync_write_fences_.end() && fence->first < block + blocks; ++fence) {
    const bool same_writer = (fence->second >> 56) == (reply_fence >> 56);
    if (!same_writer || (reply_fence & fence_mask) < (fence->second & fence_mask)) return true;
  }
  return false;
}

// An application write reached this node (from `writer`, a Primary): resync runs in flight
// for it are stale, and a later reply must show (by its fence) that its source had the write.
void Node::resync_overtaken(Peer& writer, const wire::Data& data) {
  writer.last_data_sequence = data.sequence;
  const std::uint64_t first = data.sector.value / Bitmap::sectors_per_bit;
  const std::uint64_t last =
      (data.sector.value + data.length_bytes / sector_size_bytes - 1) / Bitmap::sectors_per_bit;
  bool target = false;
  for (const Peer& peer : configured_peers()) {
    target = target || receives_resync(peer.status.replication);
  }
  if (target) {
    const std::uint64_t fence =
        (std::uint64_t{writer.status.node_id.value} << 56) | (data.sequence & fence_mask);
    for (std::uint64_t block = first; block <= last; ++block) resync_write_fences_[block] = fence;
  }
  resync_runs_stale(data.sector, data.length_bytes);
}

// Resync runs in flight over these sectors may carry older data: their replies are dropped and
// the blocks requested again.
void Node::resync_runs_stale(Sector sector, std::uint32_t length_bytes) {
  const std::uint64_t first = sector.value / Bitmap::sectors_per_bit;
  const std::uint64_t last =
      (sector.value + length_bytes / sector_size_bytes - 1) / Bitmap::sectors_per_bit;
  for (Peer& peer : configured_peers()) {
    for (auto it = first_run_from(peer.resync_runs, first);
         it != peer.resync_runs.end() && it->first <= last; ++it) {
      it->second.stale = true;
    }
  }
}

// A completed application write that covered whole blocks makes them current whatever the
// resync source holds: their bits toward every SyncSource are cleared (unless requested: the
// run's reply decides).
void Node::application_write_done(Sector sector, std::uint32_t length_bytes, bool ok) {
  if (resync_write_fences_.empty()) return;
  const std::uint64_t end = sector.value + length_bytes / sector_size_bytes;
  const std::uint64_t first =
      (sector.value + Bitmap::sectors_per_bit - 1) / Bitmap::sectors_per_bit;
  const std::uint64_t last_end = end / Bitmap::sectors_per_bit;  // blocks fully covered
  for (std::uint64_t block = first; block < last_end && ok; ++block) {
    resync_write_fences_.erase(block);
    for (Peer& peer : configured_peers()) {
      if (!is_resync_target(peer.status.replication)) continue;
      const auto run = first_run_from(peer.resync_runs, block);
      if (run != peer.resync_runs.end() && run->first <= block) continue;
      if (peer.bitmap->test(block)) {
        peer.bitmap->clear_bits(block, 1);
        peer.status.resync_done_blocks += 1;
      }
    }
  }
  for (Peer& peer : configured_peers()) maybe_finish_resync(peer);
}

// ---- SyncSource -------------------------------------------------------------------------------

void Node::on_resync_request(Peer& peer, const wire::ResyncRequest& request) {
  // Late (we stopped being the source): the target learns why from our StateReport.
  if (!is_resync_source(peer.status.replication) || disk_state_ < DiskState::outdated) return;
  if (!block_message_valid(peer, request.sector, request.length_bytes, "ResyncRequest",
                           resync_run_blocks_max)) {
    return;
  }
  issue_resync_read(peer, request.sector.value / Bitmap::sectors_per_bit,
                    blocks_of_length(request.length_bytes));
}

// A read waits while a local application write to the same range is in flight, so the reply
// never carries data older than a write the target may already have received. With the
// target's digest (a ChecksumResyncRequest) it reads a digest instead of the data.
void Node::issue_resync_read(Peer& peer, std::uint64_t block, std::uint64_t blocks,
                             std::optional<std::uint64_t> peer_digest) {
  const std::uint64_t first = block_sector(block);
  const std::uint32_t length = run_length(block, blocks);
  const std::uint64_t end = first + length / sector_size_bytes;
  bool wait = peer_write_pending(Sector{first}, length);
  for (const auto& [sequence, entry] : requests_) {
    if (wait) break;
    if (entry.kind != RequestKind::write || !entry.local_pending) continue;
    const std::uint64_t write_end = entry.sector.value + entry.length_bytes / sector_size_bytes;
    wait = entry.sector.value < end && first < write_end;
  }
  if (wait) {
    peer.deferred_reads.push_back(DeferredRead{block, blocks, peer_digest});
    return;
  }
  const IoId io = next_io();
  const ResyncIo read{
      peer.status.node_id, block, connection_epochs_[peer.status.node_id.value], {}, resync_fence(),
      peer_digest,         blocks};
  if (peer_digest) {
    checksum_reads_[io.value] = read;
    actions_.push_back(DiskRead{io, Sector{first}, length, std::nullopt, false, true});
    return;
  }
  resync_reads_[io.value] = read;
  actions_.push_back(DiskRead{io, Sector{first}, length, std::nullopt, true});
}

// True while a write received from a peer for the range is queued or on its way to the disk.
bool Node::peer_write_pending(Sector sector, std::uint32_t length_bytes) const {
  return overlapping_peer_write(sector, length_bytes, false).has_value();
}

// What this node's disk reflects of the current Primary's writes: its id and the newest
// sequence it issued (as Primary) or received (as Secondary); 0 without a Primary.
std::uint64_t Node::resync_fence() const {
  if (role_ == Role::primary) {
    return (std::uint64_t{config_.node_id.value} << 56) | ((next_sequence_ - 1) & fence_mask);
  }
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected && peer.status.role == Role::primary) {
      return (std::uint64_t{peer.status.node_id.value} << 56) |
             (peer.last_data_sequence & fence_mask);
    }
  }
  return 0;
}

void Node::retry_deferred_reads() {
  for (Peer& peer : configured_peers()) {
    if (peer.deferred_reads.empty()) continue;
    std::deque<DeferredRead> waiting;
    waiting.swap(peer.deferred_reads);
    for (const DeferredRead& read : waiting) {
      issue_resync_read(peer, read.block, read.blocks, read.peer_digest);
    }
  }
  retry_deferred_read_requests();  // a peer's client read may have waited too
}

void Node::on_resync_ack(Peer& peer, const wire::ResyncAck& ack) {
  if (!is_resync_source(peer.status.replication) || !ack.ok) return;
  if (!in_range(ack.sector, ack.length_bytes)) {
    return protocol_error(peer, "ResyncAck beyond the end of the volume");
  }
  peer.bitmap->clear_sectors(ack.sector.value, ack.length_bytes / sector_size_bytes);
}

// ---- Completions ------------------------------------------------------------------------------

bool Node::on_resync_io_completed(IoId io, IoStatus status, PayloadHandle payload) {
  if (auto read = resync_reads_.find(io.value); read != resync_reads_.end()) {
    const ResyncIo entry = read->second;
    resync_reads_.erase(read);
    Peer& peer = peers_[entry.peer.value];
    if (status != IoStatus::ok) {
      if (!local_disk_detached()) detach_local_disk();
      return true;
    }
    const bool same = peer.status.connection == ConnectionState::connected &&
                      connection_epochs_[entry.peer.value] == entry.connection_epoch;
    if (!same || !is_resync_source(peer.status.replication)) {
      actions_.push_back(ReleasePayload{payload});
      return true;
    }
    const std::uint32_t length = run_length(entry.block, entry.blocks);
    peer.status.sent_bytes += length;
    send_peers_in_sync(peer, entry.block, entry.blocks);
    actions_.push_back(Send{
        entry.peer,
        wire::Data{entry.fence, Sector{block_sector(entry.block)}, length, wire::data_flag_resync},
        payload});
    actions_.push_back(ReleasePayload{payload});  // the driver copied it while sending
    return true;
  }
  auto write = resync_writes_.find(io.value);
  if (write == resync_writes_.end()) return false;
  const ResyncIo entry = write->second;
  resync_writes_.erase(write);
  DITTO_ASSERT(entry.payload.has_value());
  actions_.push_back(ReleasePayload{*entry.payload});
  Peer& peer = peers_[entry.peer.value];
  const bool same = peer.status.connection == ConnectionState::connected &&
                    connection_epochs_[entry.peer.value] == entry.connection_epoch;
  auto run = peer.resync_runs.find(entry.block);
  const bool ours = same && run != peer.resync_runs.end() && run->second.write_io == io;
  if (ours) {
    const ResyncRun done = run->second;
    resync_run_came_back(peer, run);
    resync_run_written(peer, entry, done, status == IoStatus::ok);
  } else if (status == IoStatus::ok) {
    // The source left while the write was in flight: its bits toward the source stay set, but
    // the disk holds the source's version now, which the other nodes may lack (swarm seed
    // 2801: a target later resynced from a node of another branch kept it).
    ResyncRun orphan;
    orphan.blocks = entry.blocks;
    resynced_run_toward_others(peer, entry.block, orphan, true);
  }
  if (status != IoStatus::ok && !local_disk_detached()) detach_local_disk();
  if (ours) {
    pump_resync(peer);
    maybe_finish_resync(peer);
  }
  return true;
}

// Our write of a requested run completed (`ok`) or failed: its bits and the source's.
void Node::resync_run_written(Peer& peer, const ResyncIo& entry, const ResyncRun& done, bool ok) {
  if (done.stale) return;  // an application write overtook it: asked again later
  const std::uint32_t length = run_length(entry.block, entry.blocks);
  if (ok) {
    for (std::uint64_t block = entry.block; block < entry.block + entry.blocks; ++block) {
      if (peer.bitmap->test(block)) peer.status.resync_done_blocks += 1;
    }
    peer.bitmap->clear_bits(entry.block, entry.blocks);
    // The run now holds the source's version, which other nodes may lack (they were cut off
    // from it like us): out of sync toward them unless the source said otherwise.
    resynced_run_toward_others(peer, entry.block, done, true);
    resync_unflushed_.push_back(UnflushedRun{entry.block, entry.blocks});
  }
  actions_.push_back(Send{
      entry.peer, wire::ResyncAck{Sector{block_sector(entry.block)}, length, ok}, std::nullopt});
}

}  // namespace ditto::core
