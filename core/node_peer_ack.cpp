// Node: peer-acks (drbd9-semantics.md §2.3). A Secondary cannot tell from a write alone whether
// the other nodes got it too. It keeps the writes it received from its Primary, by epoch, until
// the Primary's PeerAck{epoch, nodes} says which nodes stored every write of that epoch; toward
// the nodes not named it marks them out of sync. If the Primary vanishes first, every write not
// yet peer-acked is marked out of sync toward every other node (the Primary may have been cut
// off from them while the write was in flight). The Primary sends PeerAck for an epoch once
// each peer that got its writes acknowledged its barrier or was lost.
//
// The marks are set lazily, as DRBD does: a Secondary that crashes before they are set comes
// back marking every block out of sync (Node::Node), which covers them.
#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {
namespace {

std::uint32_t bit(NodeId node) {
  return 1u << node.value;
}

}  // namespace

// ---- Primary side -----------------------------------------------------------------------------

void Node::send_peer_acks() {
  while (!peer_ack_epochs_.empty()) {
    const auto oldest = peer_ack_epochs_.begin();
    const PeerAckEpoch& epoch = oldest->second;
    if ((epoch.sent_mask & ~epoch.acked_mask) != 0) return;  // a BarrierAck is still due
    const std::uint32_t stored = epoch.acked_mask & ~epoch.partial_mask;
    for (const Peer& peer : peers_) {
      if (!peer.configured || (epoch.acked_mask & bit(peer.status.node_id)) == 0) continue;
      if (peer.status.connection != ConnectionState::connected) continue;
      actions_.push_back(
          Send{peer.status.node_id, wire::PeerAck{oldest->first, stored}, std::nullopt});
    }
    peer_ack_epochs_.erase(oldest);
  }
}

// ---- Secondary side ---------------------------------------------------------------------------

void Node::mark_for_others(const WriteRange& range, std::uint32_t stored_mask, NodeId primary) {
  for (Peer& other : peers_) {
    if (!other.configured || other.status.node_id == primary) continue;
    if ((stored_mask & bit(other.status.node_id)) != 0) continue;
    other.bitmap->set_sectors(range.sector.value, range.length_bytes / sector_size_bytes);
  }
}

void Node::on_peer_ack(Peer& peer, const wire::PeerAck& ack) {
  // Epochs older than the acked one (a PeerAck we never got) stay unconfirmed: marked for all.
  while (!peer.unacked_epochs.empty() && peer.unacked_epochs.begin()->first != ack.barrier) {
    const auto oldest = peer.unacked_epochs.begin();
    if (oldest->first > ack.barrier) return;  // acks for epochs we do not hold: a new stream
    for (const WriteRange& range : oldest->second) mark_for_others(range, 0, peer.status.node_id);
    peer.unacked_epochs.erase(oldest);
  }
  if (peer.unacked_epochs.empty()) return;
  const auto acked = peer.unacked_epochs.begin();
  for (const WriteRange& range : acked->second) {
    mark_for_others(range, ack.node_mask, peer.status.node_id);
  }
  peer.unacked_epochs.erase(acked);
}

// The Primary `peer` is gone: no PeerAck will come for what it sent us.
void Node::mark_unacked_peer_writes(Peer& peer) {
  for (const auto& [barrier, ranges] : peer.unacked_epochs) {
    for (const WriteRange& range : ranges) mark_for_others(range, 0, peer.status.node_id);
  }
  for (const WriteRange& range : peer.open_epoch_writes) {
    mark_for_others(range, 0, peer.status.node_id);
  }
  peer.unacked_epochs.clear();
  peer.open_epoch_writes.clear();
}

}  // namespace ditto::core
