// Node: attach after a detach (drbdsetup attach, drbd9-semantics.md §1.2, §1.6, §9).
//
// A node that detached its disk (dittoadm detach, or on-io-error detach) stays in the cluster as
// Diskless and its peers keep marking every write it misses in their bitmap toward it
// (mark_out_of_sync_for_absent: a peer without a disk is absent for the data). Attach gives the
// core the disk's metadata again (the driver reads it as at a start) and walks the disk
// Diskless → Attaching → Negotiating → ... on the live connections:
// - with a connected UpToDate peer (the lowest one that is no SyncTarget itself), the disk's
//   generations are compared with that peer's (uuid_compare). The same generation, or the peer's
//   bitmap UUID toward us being our disk's current UUID (rule 11), means the peer's bitmap
//   toward us holds every block the disk missed: the disk goes Inconsistent and resyncs exactly
//   the union of both bitmaps from that peer (SyncControl become_sync_source and the bitmap
//   exchange, as invalidate does, without the full bitmap). Any other "peer is newer" rule
//   (history, another node's slot, a just-created disk) is a full sync. A split brain or
//   unrelated data refuses the attach and the node stays Diskless: the disk would fork the data
//   the cluster serves. A disk newer than the UpToDate peer (it got writes the peer missed) is
//   attached as if there were no such peer (below): a resync from it would lose those writes;
// - without one, the disk takes the state its metadata gives (§1.6) and connected peers with a
//   disk rerun the handshake (a reconnect, as other handshake reruns do), whose rules decide.
//   A Primary without an UpToDate peer attaches only the disk holding the data it exposes (its
//   current UUID): DRBD's ERR_DATA_NOT_CURRENT.
// A Primary keeps its role throughout: while its disk is below UpToDate it reads from and writes
// through its UpToDate peers (as when it was Diskless), and every block it writes is marked
// toward its resync source on both sides, so the resync fetches it (again) once the peer has it.
#include <algorithm>
#include <span>
#include <string>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::string text(DiskState disk) {
  return std::string(to_string(disk));
}

}  // namespace

// The peer a re-attached disk resyncs from: connected, handshaken, Established, UpToDate and no
// SyncTarget of another node (its data is whole); the lowest node id.
Node::Peer* Node::attach_source() {
  for (Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected || !peer.state_received) continue;
    if (peer.status.replication != ReplicationState::established) continue;
    if (peer.status.disk != DiskState::up_to_date || peer.intentional_diskless) continue;
    if ((peer.uuid_flags & uuid_flag::sync_target) != 0) continue;
    return &peer;
  }
  return nullptr;
}

// The freshest generations of the data the cluster serves: this node's own while Primary (a
// diskless Primary carries them, §3.2), else a connected Primary's (it reports every new one),
// else the source's last report (a Secondary does not report the generations it adopts, so
// they may be older than its data: the source checks again, bitmap_covers_peer_disk).
const Generations& Node::attach_reference(const Peer& source) const {
  if (role_ == Role::primary) return generations_.uuids;
  for (const Peer& peer : configured_peers()) {
    if (peer.status.connection == ConnectionState::connected && peer.state_received &&
        peer.status.role == Role::primary) {
      return peer.uuids;
    }
  }
  return source.uuids;
}

// Why the disk of `command` may not be attached now (ok when it may); `full_sync` says whether
// the resync from `source` must copy every block.
AdminResult Node::attach_refusal(const Attach& command, Peer*& source, bool& full_sync) const {
  full_sync = false;
  if (config_.intentional_diskless) {
    return {false, "SS_ATTACH_NO_BITMAP",
            "attach: volume 0 is configured `disk none` (a diskless client): its peers keep no "
            "bitmap for it"};
  }
  if (!local_disk_detached()) {
    // drbdsetup's ERR_DISK_CONFIGURED: "Device is attached to a disk (use detach first)".
    return {false, "ERR_DISK_CONFIGURED",
            "attach: the device is attached to a disk (disk " + text(disk_state_) +
                "); use detach first"};
  }
  if (metadata_writes_pending()) {
    return {false, "SS_IN_TRANSIENT_STATE",
            "attach: a metadata write to the detached disk is still in flight; try again"};
  }
  const std::uint64_t disk_current = comparable_current(command.generations.current);
  if (source != nullptr && disk_newer_than(command, *source)) source = nullptr;
  if (source == nullptr) {
    if (role_ == Role::primary && disk_current != comparable_current(generations_.uuids.current)) {
      return {false, "ERR_DATA_NOT_CURRENT",
              "attach: this Primary exposes generations " + generations_text(generations_.uuids) +
                  " and the disk holds " + generations_text(command.generations) +
                  "; without a connected UpToDate peer to resync from it can only attach the "
                  "disk holding the data it exposes"};
    }
    return {};
  }
  const Generations& reference = attach_reference(*source);
  if (disk_current == comparable_current(reference.current)) return {};
  const UuidCompareResult compared = compare_attached_disk(command, *source, reference);
  switch (compared.strategy) {
    case SyncStrategy::unrelated_data:
    case SyncStrategy::split_brain_auto_recover:
    case SyncStrategy::split_brain_disconnect:
      return {false, "ERR_DATA_NOT_CURRENT",
              "attach: the disk's data (generations " + generations_text(command.generations) +
                  ") is not an ancestor of the data the cluster serves (" +
                  generations_text(reference) + ", UpToDate on " + source->status.name +
                  "): uuid_compare rule " + std::string(to_string(compared.rule)) + " says " +
                  std::string(to_string(compared.strategy)) +
                  "; the node stays Diskless (to use this disk's data, take the resource down "
                  "and resolve it as a split brain)"};
    default:
      // The peer's bitmap toward us holds what the disk missed only when its bitmap UUID toward
      // us is the disk's current (rule 11); any other relation copies every block.
      full_sync = compared.rule != UuidRule::bitmap_peer;
      return {};
  }
}

// The disk's generations against `reference` as the generations of `source`'s node.
UuidCompareResult Node::compare_attached_disk(const Attach& command, const Peer& source,
                                              const Generations& reference) const {
  UuidCompareInput input;
  input.self = command.generations;
  input.peer = reference;
  input.self_node = config_.node_id.value;
  input.peer_node = source.status.node_id.value;
  input.self_flags = uuid_flag::stable;
  input.peer_flags = uuid_flag::stable;
  input.protocol = config_.protocol;
  return uuid_compare(input);
}

// The disk holds a newer generation than the data the cluster serves (attach_reference), or, on
// a Secondary, than the UpToDate peer reported: writes reached it that the peer missed (the peer
// was cut off from the Primary while this node still got its writes, though it may not have
// noticed yet). A resync in place from that peer would overwrite them; the disk attaches as its
// metadata says and the handshake with each peer decides the direction, as at a restart. A
// Primary's UpToDate peers hold its data (it replicates to them), whatever they last reported
// (a Secondary does not report the generations it adopts), and it keeps their connections.
bool Node::disk_newer_than(const Attach& command, const Peer& source) const {
  const Generations* references[] = {&attach_reference(source), &source.uuids};
  for (const Generations* reference : std::span(references, role_ == Role::primary ? 1 : 2)) {
    if (comparable_current(command.generations.current) ==
        comparable_current(reference->current)) {
      continue;
    }
    switch (compare_attached_disk(command, source, *reference).strategy) {
      case SyncStrategy::source_use_bitmap:
      case SyncStrategy::source_set_bitmap:
      case SyncStrategy::source_copy_bitmap:
        return true;
      default:
        break;
    }
  }
  return false;
}

// The SyncSource side of an attach (or an invalidate): our bitmap toward `peer` holds every
// block its disk lacks only when it is of our generation, or our bitmap UUID toward it is its
// current UUID (rule 13); otherwise (a disk from an older branch of our history) every block
// is marked. `peer.uuids` is its report of the disk it resyncs, sent before its SyncControl.
bool Node::bitmap_covers_peer_disk(const Peer& peer) const {
  if (comparable_current(peer.uuids.current) == comparable_current(generations_.uuids.current)) {
    return true;
  }
  UuidCompareInput input;
  input.self = generations_.uuids;
  input.peer = peer.uuids;
  input.self_node = config_.node_id.value;
  input.peer_node = peer.status.node_id.value;
  input.self_flags = uuid_flag::stable;
  input.peer_flags = uuid_flag::stable;
  input.protocol = config_.protocol;
  return uuid_compare(input).rule == UuidRule::bitmap_self;
}

AdminResult Node::attach(const Attach& command) {
  Peer* source = attach_source();
  bool full_sync = false;
  if (AdminResult refused = attach_refusal(command, source, full_sync); !refused.ok) {
    return refused;
  }
  DITTO_ASSERT(disk_state_ == DiskState::diskless);
  load_attached_disk(command);
  attach_disk_step(DiskState::attaching);
  bool diskful_peer = false;
  for (const Peer& peer : configured_peers()) {
    diskful_peer = diskful_peer || (peer.status.connection == ConnectionState::connected &&
                                    peer.state_received && !peer.intentional_diskless &&
                                    peer.status.disk > DiskState::diskless &&
                                    peer.status.disk != DiskState::dunknown);
  }
  if (diskful_peer) attach_disk_step(DiskState::negotiating);
  if (source != nullptr) {
    if (full_sync) source->bitmap->set_all();
    detached_disk_missed_writes_ = false;  // the resync catches the disk up
    detached_under_primary_ = false;
    resync_in_place_from(*source);
    return {};
  }
  attach_disk_step(attached_disk_state(command));
  detached_disk_missed_writes_ = false;
  detached_under_primary_ = false;
  for (Peer& peer : configured_peers()) {
    if (peer.status.connection != ConnectionState::connected || !peer.state_received) continue;
    if (peer.intentional_diskless || peer.status.disk <= DiskState::diskless) continue;
    actions_.push_back(Disconnect{peer.status.node_id,
                                  "reconnecting to negotiate the attached disk with " +
                                      peer.status.name});
    peer_lost(peer, ConnectionState::protocol_error);
  }
  send_state_to_connected_peers();
  DITTO_ASSERT(!local_disk_detached());
  return {};
}

// The disk's metadata replaces what the node kept while Diskless: its generations and its
// bitmaps toward every peer, and the activity log starts again (apply_initial_metadata, the
// mechanism a start uses).
void Node::load_attached_disk(const Attach& command) {
  config_.initial_disk_state = command.disk;
  config_.initial_generations = command.generations;
  config_.initial_bitmap_words = command.bitmap_words;
  config_.initial_hot_extents = command.hot_extents;
  config_.al_first_transaction_number = command.al_first_transaction_number;
  // A Primary keeps the generations of the data it serves (its peers hold them; a diskless
  // Primary carried them on) and what it marked toward its peers while Diskless: the disk only
  // catches up with them, by the resync that attach_refusal sized from the disk's own
  // generations. Taking the disk's would move the Primary back to an older generation, and its
  // next one would fork from there (swarm seed 95).
  const bool primary = role_ == Role::primary;
  const Generations served = generations_.uuids;
  std::vector<Bitmap> marked;
  if (primary) {
    for (const Peer& peer : configured_peers()) marked.push_back(*peer.bitmap);
  }
  generations_.uuids = command.generations;
  if (comparable_current(generations_.uuids.current) == uuid_just_created_value) {
    generations_.uuids.current = uuid_just_created_value;
  }
  for (Peer& peer : configured_peers()) peer.bitmap->clear_all();
  restarted_behind_ = command.disk != DiskState::up_to_date;
  after_primary_crash_ = !command.hot_extents.empty();
  apply_initial_metadata();
  if (!primary) return;
  generations_.uuids = served;
  auto kept = marked.begin();
  for (Peer& peer : configured_peers()) peer.bitmap->merge(*kept++);
}

// The state of a disk attached without an UpToDate peer to resync from: what its metadata says
// (a detach leaves it Outdated: the activity log was in use), except on a Primary whose disk
// holds the generation it serves while the next one is still pending since the detach: no
// write went through its peers since the disk left (the first would have started that
// generation), so the disk holds every block the Primary exposes and is UpToDate, as DRBD's
// disk_state_from_md says for a disk that was UpToDate. Left Outdated, it would become the
// SyncTarget of a peer that lacks the writes only this disk got (swarm seed 605: protocol A,
// the peer lost them with its connection).
// Unless writes the disk failed or never got when it left may have reached the peers since
// (quorum swarm seed 3349: the failing write, frozen for quorum, went out to node 2 and was
// acknowledged after the stale disk came back UpToDate and resynced node 2 over it).
DiskState Node::attached_disk_state(const Attach& command) const {
  // A Secondary's disk that left while a Primary wrote (or that a Primary wrote without since)
  // lacks what that Primary may have written: with no UpToDate peer to resync from, it is
  // behind, whatever its metadata says (quorum+diskless swarm seeds 8143, 8772: taken
  // UpToDate, it gave the vote a stale node needed for quorum over the lost Primary's writes).
  if (role_ == Role::secondary && detached_under_primary_) {
    return std::min(command.disk, DiskState::outdated);
  }
  const bool holds_served = role_ == Role::primary && generations_.new_current_pending &&
                            !detached_disk_missed_writes_ &&
                            comparable_current(command.generations.current) ==
                                comparable_current(generations_.uuids.current);
  if (holds_served && command.disk >= DiskState::outdated) return DiskState::up_to_date;
  return command.disk;
}

void Node::attach_disk_step(DiskState step) {
  ClusterState proposed = cluster_state();
  proposed.disk = step;
  const StateChangeResult result = change_state(proposed, true);
  DITTO_ASSERT(result.ok());  // Diskless → Attaching → Negotiating → any: the §1.4 walk
  DITTO_ASSERT(disk_state_ == step);
}

// The disk goes Inconsistent and asks `source` to be its SyncSource on the live connection
// (SyncControl become_sync_source and the bitmap exchange, as invalidate does).
void Node::resync_in_place_from(Peer& source) {
  if (disk_state_ != DiskState::inconsistent) attach_disk_step(DiskState::inconsistent);
  // The source must see our disk before it takes the SyncSource role (SS_NO_REMOTE_DISK).
  send_state_to_connected_peers();
  actions_.push_back(Send{source.status.node_id,
                          wire::SyncControl{wire::SyncCommand::become_sync_source, Sector{0}},
                          std::nullopt});
  start_bitmap_exchange(source, false);
  source.in_place_source_of_primary = role_ == Role::primary;
  DITTO_ASSERT(disk_state_ == DiskState::inconsistent);
}

// The end of a resync on a Primary whose source followed its generations (asked in place, or
// in its generation when the resync began): its disk holds the generation it serves now. It
// keeps its generations (its source followed them; the source's last report may name an older
// one: a Secondary does not report the generations it adopts, and taking it would move us back
// to it, dropping our bitmap UUIDs toward the peers we missed: quorum swarm seed 768). Only two
// slots are done with: our own disk's (the generation it held while we wrote through our
// peers) and the source's (it has every block we have).
void Node::primary_disk_caught_up(const Peer& source) {
  DITTO_ASSERT(role_ == Role::primary);
  set_bitmap_uuid(generations_.uuids, config_.node_id.value, 0);
  set_bitmap_uuid(generations_.uuids, source.status.node_id.value, 0);
  DITTO_ASSERT((generations_.uuids.current & uuid_primary_bit) != 0);
}

// A Primary whose attached disk is below UpToDate and not resyncing (it resynced from a peer
// that was not UpToDate, or attached without one) fetches every block from an UpToDate peer
// as soon as one is established with it, on the live connection: nothing else would bring it
// up (a Secondary reruns the handshake instead, resync_from_up_to_date_peer; a Primary must
// not drop the connection that serves its I/O). Every block, because its disk may hold an
// older copy of blocks neither bitmap names.
void Node::resync_primary_disk_from_up_to_date_peer() {
  if (role_ != Role::primary) return;
  if (disk_state_ != DiskState::outdated && disk_state_ != DiskState::inconsistent) return;
  for (const Peer& peer : configured_peers()) {
    if (receives_resync(peer.status.replication) || peer.resync_deferred) return;
  }
  Peer* source = attach_source();
  if (source == nullptr) return;
  source->bitmap->set_all();
  resync_in_place_from(*source);
}

void Node::mark_for_resync_sources(Sector sector, std::uint32_t length_bytes) {
  DITTO_ASSERT(role_ == Role::primary && !local_disk_detached());
  const std::uint64_t first = sector.value / Bitmap::sectors_per_bit;
  const std::uint64_t last =
      (sector.value + length_bytes / sector_size_bytes - 1) / Bitmap::sectors_per_bit;
  for (Peer& peer : configured_peers()) {
    if (!receives_resync(peer.status.replication)) continue;
    mark_out_of_sync(peer, sector, length_bytes);
    // A run in flight may come back without this write: it is requested again.
    for (auto it = first_run_from(peer.resync_runs, first);
         it != peer.resync_runs.end() && it->first <= last; ++it) {
      it->second.stale = true;
    }
  }
}

}  // namespace ditto::core
