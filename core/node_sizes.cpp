// Volume sizes (DRBD's P_SIZES, drbd9-semantics.md §3.5): every StateReport carries the
// sender's usable size (the data area of its backing disk, 0 while diskless) and the size it
// exposes now. The rules, applied to every StateReport before anything else in it:
// - a Primary never changes its size under its clients: a diskful peer whose disk is smaller
//   than a Primary's current size is refused (StandAlone, a `connect-refused` event with the
//   reason), by the Primary and by the peer alike;
// - a diskless client configured with a size (NodeConfig::volume_size_bytes, `size` in its disk
//   section) refuses a diskful peer that exposes a different one;
// - a diskless client without one learns the current size of the first diskful peer it
//   handshakes with; until then it exposes 0 and refuses client I/O (out_of_range);
// - otherwise a node exposes the smallest size it hears from a diskful peer (that peer's
//   current size, at most its usable one): two diskful nodes agree on the smaller disk, and
//   the smaller size propagates without dropping connections. It shrinks only while neither it
//   nor another of its peers is Primary (else the connection is refused, as above) and while no
//   resync or verify runs (else the connection is retried once it ended).
// A node never grows here: growing is an explicit resize.
#include <algorithm>
#include <string>

#include "core/assert.h"
#include "core/node.h"

namespace ditto::core {

std::uint64_t Node::usable_size_bytes() const {
  if (config_.intentional_diskless || local_disk_detached()) return 0;
  return config_.volume_size_bytes;
}

bool Node::primary_besides(const Peer& peer) const {
  if (role_ == Role::primary) return true;
  for (const Peer& other : configured_peers()) {
    if (&other == &peer || other.status.connection != ConnectionState::connected) continue;
    if (other.status.role == Role::primary) return true;
  }
  return false;
}

bool Node::agree_on_size(Peer& peer, const wire::StateReport& state) {
  peer.usable_size_sectors = state.usable_size_sectors;
  peer.current_size_sectors = state.current_size_sectors;
  // A StateReport the peer sent before it committed the resize we committed (node_resize.cpp):
  // it voted yes, so its disk holds the new size even if this (older) report says otherwise.
  if (peer.resize_committed_sectors != 0) {
    if (state.current_size_sectors < peer.resize_committed_sectors) return true;
    peer.resize_committed_sectors = 0;
  }
  const std::uint64_t ours = size_bytes_ / sector_size_bytes;
  const std::uint64_t our_usable = usable_size_bytes() / sector_size_bytes;
  const auto sectors = [](std::uint64_t count) { return std::to_string(count) + " sectors"; };
  // A Primary peer's size binds us, diskless or not.
  if (state.role == Role::primary && our_usable != 0 && our_usable < state.current_size_sectors) {
    refuse_to_connect(peer, "our disk is too small for the Primary peer (" + sectors(our_usable) +
                              " < " + sectors(state.current_size_sectors) + ")");
    return false;
  }
  // A diskless peer exposes what it learned; nothing else of it binds us.
  if (state.usable_size_sectors == 0) return true;
  const std::uint64_t theirs =
      state.current_size_sectors == 0
          ? state.usable_size_sectors
          : std::min(state.current_size_sectors, state.usable_size_sectors);
  if (role_ == Role::primary && state.usable_size_sectors < ours) {
    refuse_to_connect(peer, "the peer's disk is too small for this Primary (" +
                              sectors(state.usable_size_sectors) + " < " + sectors(ours) + ")");
    return false;
  }
  if (config_.intentional_diskless && config_.volume_size_bytes != 0 && theirs != ours) {
    refuse_to_connect(peer, "the configured size (" + sectors(ours) +
                              ") differs from the peer's (" + sectors(theirs) + ")");
    return false;
  }
  if (ours != 0 && theirs >= ours) return true;
  if (ours != 0 && primary_besides(peer)) {
    refuse_to_connect(peer, "the peer's size (" + sectors(theirs) + ") is smaller than " +
                              sectors(ours) + " while a node is Primary");
    return false;
  }
  for (const Peer& other : configured_peers()) {
    if (ours == 0) break;  // a client learning its size has nothing to resync
    if (is_syncing(other.status.replication) || is_verifying(other.status.replication)) {
      actions_.push_back(Disconnect{peer.status.node_id,
                                    "the volume shrinks to the peer's size (" + sectors(theirs) +
                                        ") once the running resync or verify ended"});
      peer_lost(peer, ConnectionState::protocol_error);
      return false;
    }
  }
  set_size(theirs * sector_size_bytes);
  // The other connected peers learn the smaller size from our next StateReport.
  for (const Peer& other : configured_peers()) {
    if (&other != &peer && other.status.connection == ConnectionState::connected &&
        other.state_received) {
      send_state(other);
    }
  }
  return true;
}

// The bitmaps cover the exposed size: a block beyond it is never written, resynced or verified.
void Node::set_size(std::uint64_t size_bytes) {
  DITTO_ASSERT(size_bytes % sector_size_bytes == 0);
  DITTO_ASSERT(size_bytes != 0);
  if (size_bytes == size_bytes_) return;
  size_bytes_ = size_bytes;
  for (Peer& peer : configured_peers()) {
    Bitmap resized(size_bytes / sector_size_bytes);
    resized.import_words(peer.bitmap->export_words());
    peer.bitmap = std::move(resized);
  }
  actions_.push_back(Event{"change device name:" + config_.resource_name +
                           " volume:0 minor:0 size:" + std::to_string(size_bytes / 1024)});
}

}  // namespace ditto::core
