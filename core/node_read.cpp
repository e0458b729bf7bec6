// Node: client reads, from the local disk or through peers (drbd9-semantics.md §9).
//
// A read goes to the local disk when it is UpToDate and the read-balancing policy keeps it
// there; otherwise to a connected peer whose disk is UpToDate (ReadRequest, DRBD's
// P_DATA_REQUEST). The peer answers with its data (Data with data_flag_read_reply, P_DATA_REPLY)
// or ReadFailed (P_NEG_DREPLY) when its disk is no longer UpToDate or its read failed. A read
// whose peer fails it or disconnects is retried on a peer not yet tried, and a failed local read
// is retried on a peer; with none left it fails with io_error. A read never waits for a peer to
// come back, so it never hangs.
//
// The local disk is tried at most once: a failed local read detached it anyway. A read that
// comes back to it after a peer failed it takes a new sequence first, so that, as the
// invariants expect, requests hold their local IoIds in the order of their sequences.
//
// Serving side: a read waits behind writes received from peers that overlap it and are not yet
// on disk (as resync reads do), so a Primary reading through us after its protocol A or B write
// completed still sees that write; at most requests_in_flight_max reads per peer are served at
// once, beyond that the peer gets ReadFailed.
#include <array>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

void Node::on_client_read(Instant now, RequestId request, Sector sector, std::uint32_t length_bytes,
                          std::optional<PayloadHandle> buffer) {
  note_application_io(now);
  if (!in_range(sector, length_bytes)) {
    actions_.push_back(
        CompleteClient{request, ClientStatus::out_of_range, std::nullopt, std::nullopt});
    return invariants();
  }
  if (client_requests() >= config_.requests_in_flight_max) {
    actions_.push_back(CompleteClient{request, ClientStatus::busy, std::nullopt, std::nullopt});
    return invariants();
  }
  const std::uint64_t sequence = next_sequence_++;
  Request& entry = requests_[sequence];
  entry.kind = RequestKind::read;
  entry.client = request;
  entry.sector = sector;
  entry.length_bytes = length_bytes;
  entry.read_buffer = buffer;
  statistics_.read_bytes += length_bytes;
  statistics_.upper_pending += 1;
  place_read(sequence);
  invariants();
}

bool Node::may_serve_reads(const Peer& peer) const {
  return peer.status.connection == ConnectionState::connected && peer.state_received &&
         peer.status.disk == DiskState::up_to_date;
}

// Sends the read to the local disk or a peer, or fails it: no_data when nothing could ever
// serve it, io_error when every place tried failed.
void Node::place_read(std::uint64_t sequence) {
  Request& entry = requests_.at(sequence);
  DITTO_ASSERT(entry.kind == RequestKind::read && !entry.read_peer && !entry.local_pending);
  const bool first = !entry.io && entry.read_tried_mask == 0;
  const bool local_possible = !entry.io && disk_state_ == DiskState::up_to_date;
  std::array<ReadCandidate, nodes_max> candidates{};
  std::size_t count = 0;
  for (const Peer& peer : configured_peers()) {
    if (!may_serve_reads(peer) || (entry.read_tried_mask & bit(peer.status.node_id)) != 0) {
      continue;
    }
    candidates[count++] = ReadCandidate{peer.status.node_id,
                                        peer.status.pending_writes + peer.reads_pending};
  }
  if (!local_possible && count == 0) {
    return complete(sequence, first ? ClientStatus::no_data : ClientStatus::io_error);
  }
  const std::optional<NodeId> source = choose_read_source(ReadChoice{
      config_.read_balancing, local_possible, static_cast<std::uint32_t>(requests_by_io_.size()),
      entry.sector, std::span(candidates.data(), count), read_rotation_++});
  if (!source) {
    if (!first) {
      auto moved = requests_.extract(sequence);  // the entry stays where it is in memory
      sequence = next_sequence_++;
      moved.key() = sequence;
      requests_.insert(std::move(moved));
    }
    entry.local_pending = true;
    entry.io = next_io();
    requests_by_io_[entry.io->value] = sequence;
    actions_.push_back(DiskRead{*entry.io, entry.sector, entry.length_bytes, entry.read_buffer});
    return;
  }
  Peer& peer = peers_[source->value];
  entry.read_peer = *source;
  peer.reads_pending += 1;
  actions_.push_back(
      Send{*source, wire::ReadRequest{sequence, entry.sector, entry.length_bytes}, std::nullopt});
}

// ---- Serving a peer's read --------------------------------------------------------------------

void Node::on_read_request(Peer& peer, const wire::ReadRequest& request) {
  if (!in_range(request.sector, request.length_bytes)) {
    return protocol_error(peer, "ReadRequest beyond the end of the volume at sector " +
                                    std::to_string(request.sector.value));
  }
  if (peer.reads_serving + peer.deferred_read_requests.size() >=
      config_.requests_in_flight_max) {
    actions_.push_back(Send{peer.status.node_id,
                            wire::ReadFailed{request.id, request.sector, request.length_bytes},
                            std::nullopt});
    return;
  }
  serve_read(peer, request);
}

void Node::serve_read(Peer& peer, const wire::ReadRequest& request) {
  if (disk_state_ != DiskState::up_to_date) {
    actions_.push_back(Send{peer.status.node_id,
                            wire::ReadFailed{request.id, request.sector, request.length_bytes},
                            std::nullopt});
    return;
  }
  if (peer_write_pending(request.sector, request.length_bytes)) {
    peer.deferred_read_requests.push_back(request);
    return;
  }
  const IoId io = next_io();
  served_reads_[io.value] =
      ServedRead{peer.status.node_id, request, connection_epochs_[peer.status.node_id.value]};
  peer.reads_serving += 1;
  actions_.push_back(DiskRead{io, request.sector, request.length_bytes, std::nullopt, true});
}

// A write from a peer reached the disk: reads that waited for it may go now.
void Node::retry_deferred_read_requests() {
  for (Peer& peer : configured_peers()) {
    if (peer.deferred_read_requests.empty()) continue;
    std::deque<wire::ReadRequest> waiting;
    waiting.swap(peer.deferred_read_requests);
    for (const wire::ReadRequest& request : waiting) serve_read(peer, request);
  }
}

bool Node::on_served_read_completed(IoId io, IoStatus status, PayloadHandle payload) {
  auto found = served_reads_.find(io.value);
  if (found == served_reads_.end()) return false;
  const ServedRead served = found->second;
  served_reads_.erase(found);
  Peer& peer = peers_[served.peer.value];
  const bool same = peer.status.connection == ConnectionState::connected &&
                    connection_epochs_[served.peer.value] == served.connection_epoch;
  if (same) {
    DITTO_ASSERT(peer.reads_serving > 0);
    peer.reads_serving -= 1;
  }
  // on-io-error detach, as for every failed read of ours; the peer tries elsewhere.
  if (status != IoStatus::ok && !local_disk_detached()) detach_local_disk();
  const wire::ReadRequest& request = served.request;
  if (status == IoStatus::ok && !same) actions_.push_back(ReleasePayload{payload});
  if (!same) return true;
  // The disk may have left UpToDate while the read was on its way: its data may be stale.
  if (status != IoStatus::ok || disk_state_ != DiskState::up_to_date) {
    if (status == IoStatus::ok) actions_.push_back(ReleasePayload{payload});
    actions_.push_back(Send{served.peer,
                            wire::ReadFailed{request.id, request.sector, request.length_bytes},
                            std::nullopt});
    return true;
  }
  actions_.push_back(Send{served.peer,
                          wire::Data{request.id, request.sector, request.length_bytes,
                                     wire::data_flag_read_reply},
                          payload});
  actions_.push_back(ReleasePayload{payload});
  peer.status.sent_bytes += request.length_bytes;
  return true;
}

// ---- Answers ----------------------------------------------------------------------------------

// The read request `id` names, if it is a read this node asked `peer` for with that range; else
// the connection is dropped (a peer answering what we never asked is broken) and null.
Node::Request* Node::answered_read(Peer& peer, std::uint64_t id, Sector sector,
                                   std::uint32_t length_bytes) {
  auto found = requests_.find(id);
  if (found == requests_.end() || found->second.kind != RequestKind::read ||
      found->second.read_peer != peer.status.node_id || found->second.sector != sector ||
      found->second.length_bytes != length_bytes) {
    protocol_error(peer, "read answer for request " + std::to_string(id) +
                             ", which is not a read this node asked it for");
    return nullptr;
  }
  DITTO_ASSERT(peer.reads_pending > 0);
  peer.reads_pending -= 1;
  found->second.read_peer.reset();
  return &found->second;
}

void Node::on_read_reply(Peer& peer, const wire::Data& data, PayloadHandle payload) {
  Request* entry = answered_read(peer, data.sequence, data.sector, data.length_bytes);
  if (entry == nullptr) {
    actions_.push_back(ReleasePayload{payload});
    return;
  }
  peer.status.received_bytes += data.length_bytes;
  entry->payload = payload;
  complete(data.sequence, ClientStatus::ok);
}

void Node::on_read_failed(Peer& peer, const wire::ReadFailed& failed) {
  Request* entry = answered_read(peer, failed.id, failed.sector, failed.length_bytes);
  if (entry == nullptr) return;
  entry->read_tried_mask |= bit(peer.status.node_id);
  place_read(failed.id);
}

// The connection to `peer` broke: its reads go to another peer, or fail.
void Node::reroute_reads_from(Peer& peer) {
  peer.reads_pending = 0;
  peer.reads_serving = 0;
  peer.deferred_read_requests.clear();
  std::vector<std::uint64_t> lost;
  for (auto& [sequence, entry] : requests_) {
    if (entry.read_peer != peer.status.node_id) continue;
    entry.read_peer.reset();
    entry.read_tried_mask |= bit(peer.status.node_id);
    lost.push_back(sequence);
  }
  for (const std::uint64_t sequence : lost) place_read(sequence);
}

}  // namespace ditto::core
