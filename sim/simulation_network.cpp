// The simulated network: one TCP-like connection per node pair, a FIFO link per direction.
// Messages are encoded with core's wire codec when sent and decoded when delivered, so every
// simulated message exercises the same bytes as the daemon's transport.
//
// TCP semantics: a message is delivered in order or the connection resets; nothing is lost
// silently inside a connection. A blocked direction (partition, clog) holds its messages; a
// clog releases them in order, a partition resets the connection after a user timeout unless
// it heals first (then they are released too).
#include <algorithm>

#include "core/assert.h"
#include "sim/sim_node.h"
#include "sim/simulation.h"

namespace ditto::sim {
namespace {
constexpr std::size_t tag_size_bytes = 8;
}  // namespace

Simulation::Connection& Simulation::connection(std::uint8_t first, std::uint8_t second) {
  DITTO_ASSERT(first != second && first < options_.nodes && second < options_.nodes);
  return connections_[std::min(first, second)][std::max(first, second)];
}

bool Simulation::blocked(std::uint8_t from, std::uint8_t to) const {
  const Link& link = links_[from][to];
  return link.partitions + link.clogs > 0;
}

void Simulation::start_connecting(std::uint8_t first, std::uint8_t second, Duration delay) {
  Connection& entry = connection(first, second);
  DITTO_ASSERT(entry.state == Connection::State::down);
  entry.state = Connection::State::connecting;
  SimEvent event = make_event(EventKind::connection_up, first, second);
  event.epoch = entry.epoch;
  schedule(delay, event);
}

void Simulation::on_connection_up(const SimEvent& event) {
  Connection& entry = connection(event.node, event.peer);
  if (entry.epoch != event.epoch || entry.state != Connection::State::connecting) return;
  if (!alive(event.node) || !alive(event.peer)) {
    entry.state = Connection::State::down;
    return;
  }
  if (standalone(event.node, event.peer) || standalone(event.peer, event.node)) {
    // The connection waits for the operator (drbdsetup connect): no attempts, no retry.
    entry.state = Connection::State::down;
    return;
  }
  const Link& forward = links_[event.node][event.peer];
  const Link& backward = links_[event.peer][event.node];
  if (forward.partitions + backward.partitions > 0) {
    // The SYN or its answer is blackholed: try again later.
    entry.state = Connection::State::down;
    start_connecting(event.node, event.peer, options_.reconnect_delay);
    return;
  }
  entry.state = Connection::State::up;
  for (const auto& [node, peer] :
       {std::pair{event.node, event.peer}, std::pair{event.peer, event.node}}) {
    DITTO_ASSERT(links_[node][peer].held.empty());
    if (side_up_[node][peer]) {
      // The reset of the old connection was not noticed yet (a paused or slow side): the new
      // connection's arrival tells it first, as a real transport would.
      side_up_[node][peer] = false;
      nodes_[node]->core->on_connection_down(clock_of(node), NodeId{peer});
      drain(node);
    }
    side_up_[node][peer] = true;
    trace(node, "transport up peer:" + node_name(peer));
    side_epoch_[node][peer] = entry.epoch;
    links_[node][peer].last_delivery = now_;
    nodes_[node]->core->on_connection_up(clock_of(node), NodeId{peer});
    drain(node);
  }
}

void Simulation::drop_held(Link& link) {
  for (const SimEvent& held : link.held) {
    free_frame(static_cast<std::uint32_t>(held.first));
    result_.messages_dropped += 1;
  }
  link.held.clear();
}

// Drops the connection: messages in flight on it are lost, each live side hears about it after
// a detection delay, and (if asked and both sides live) it reconnects after that.
void Simulation::break_connection(std::uint8_t first, std::uint8_t second, bool reconnect) {
  Connection& entry = connection(first, second);
  if (entry.state == Connection::State::down) return;
  const bool was_up = entry.state == Connection::State::up;
  entry.epoch += 1;
  entry.state = Connection::State::down;
  drop_held(links_[first][second]);
  drop_held(links_[second][first]);
  Duration latest{0};
  for (const auto& [node, peer] : {std::pair{first, second}, std::pair{second, first}}) {
    if (!was_up || !side_up_[node][peer] || !alive(node)) continue;
    const Duration delay = detection_delay();
    latest = std::max(latest, delay);
    SimEvent event = make_event(EventKind::connection_down, node, peer);
    event.epoch = entry.epoch;
    schedule(delay, event);
  }
  if (reconnect && alive(first) && alive(second)) {
    start_connecting(first, second, Duration{latest.ns + options_.reconnect_delay.ns});
  }
}

void Simulation::on_connection_down(const SimEvent& event) {
  if (!alive(event.node) || !side_up_[event.node][event.peer]) return;
  // A newer connection may already be up again: this down is for older epochs only.
  if (side_epoch_[event.node][event.peer] >= event.epoch) return;
  side_up_[event.node][event.peer] = false;
  trace(event.node, "transport down peer:" + node_name(event.peer));
  nodes_[event.node]->core->on_connection_down(clock_of(event.node), NodeId{event.peer});
  drain(event.node);
}

// TCP user timeout on a connection with a blackholed direction: it resets.
void Simulation::on_link_timeout(const SimEvent& event) {
  const Connection& entry = connection(event.node, event.peer);
  if (entry.epoch != event.epoch || entry.state != Connection::State::up) return;
  if (links_[event.node][event.peer].partitions + links_[event.peer][event.node].partitions == 0) {
    return;  // healed in time: the held messages went through
  }
  break_connection(event.node, event.peer, true);
}

std::uint32_t Simulation::allocate_frame() {
  if (!free_frames_.empty()) {
    const std::uint32_t slot = free_frames_.back();
    free_frames_.pop_back();
    return slot;
  }
  frames_.emplace_back();
  return static_cast<std::uint32_t>(frames_.size() - 1);
}

void Simulation::free_frame(std::uint32_t slot) {
  free_frames_.push_back(slot);
}

void Simulation::send(std::uint8_t from, const core::Send& message) {
  const std::uint8_t to = message.peer.value;
  DITTO_ASSERT(to < options_.nodes && to != from);  // core sends to configured peers only
  Connection& entry = connection(from, to);
  if (entry.state != Connection::State::up) {
    result_.messages_dropped += 1;  // written to a dead socket
    return;
  }
  if (const auto* data = std::get_if<wire::Data>(&message.message); data != nullptr) {
    if ((data->flags & wire::data_flag_resync) != 0) result_.resync_data_messages += 1;
    if ((data->flags & wire::data_flag_read_reply) != 0) result_.read_replies_sent[from] += 1;
  }
  const bool cut_read = std::holds_alternative<wire::ReadRequest>(message.message) && from == 0 &&
                        ++read_requests_sent_ == options_.cut_read_peer_at;
  if (std::holds_alternative<wire::ResyncInSync>(message.message)) {
    result_.resync_in_sync_messages += 1;
  }
  // The payload is its tags, 8 bytes each.
  payload_bytes_.clear();
  if (message.payload) {
    for (const std::uint64_t tag : nodes_[from]->tags_of(*message.payload)) {
      for (std::size_t index = 0; index < tag_size_bytes; ++index) {
        payload_bytes_.push_back(static_cast<std::uint8_t>(tag >> (8 * index)));
      }
    }
  }
  const std::span<const std::uint8_t> payload_bytes = payload_bytes_;
  const std::uint32_t slot = allocate_frame();
  std::vector<std::uint8_t>& frame = frames_[slot];
  const std::size_t prefix_size = wire::encoded_prefix_size_bytes(message.message);
  frame.resize(prefix_size + payload_bytes.size());
  const std::size_t written = wire::encode_prefix(message.message, payload_bytes, frame);
  DITTO_ASSERT_EQ(written, prefix_size);
  std::copy(payload_bytes.begin(), payload_bytes.end(), frame.begin() + written);

  Link& link = links_[from][to];
  const bool slow = now_ < link.slow_until;
  if (slow) count_fired(netem::FaultClass::slow_link);
  const Duration delay =
      (slow ? netem::slowed(link.model, link.slow_factor) : link.model).sample(network_prng_);
  const Instant delivery = std::max(now_ + delay, link.last_delivery);
  link.last_delivery = delivery;
  SimEvent event = make_event(EventKind::message_delivered, to, from);
  event.epoch = entry.epoch;
  event.size = static_cast<std::uint32_t>(frame.size());
  event.first = slot;
  schedule(delivery - now_, event);
  if (now_ < link.duplicate_until && effect_prng_.chance(link.duplicate_percent, 100)) {
    event.at = delivery;
    duplicate_message(event);
  }
  if (cut_read) {
    // The peer serving this read is cut off before it can answer (cut_read_peer_at).
    trace(from, "cut off peer " + node_name(to) + " mid-read");
    break_connection(from, to, true);
  }
}

void Simulation::on_message_delivered(const SimEvent& event) {
  const Connection& entry = connection(event.node, event.peer);
  if (alive(event.node) && entry.epoch == event.epoch && entry.state == Connection::State::up &&
      blocked(event.peer, event.node)) {
    // Held in the network, in order, until the direction unblocks or the connection resets.
    links_[event.peer][event.node].held.push_back(event);
    if (links_[event.peer][event.node].clogs > 0) count_fired(netem::FaultClass::link_clog);
    return;
  }
  deliver(event);
}

// Delivers the messages a direction held, in order, now that it is unblocked.
void Simulation::release_held(std::uint8_t from, std::uint8_t to) {
  Link& link = links_[from][to];
  if (blocked(from, to) || link.held.empty()) return;
  std::vector<SimEvent> held;
  held.swap(link.held);
  for (const SimEvent& event : held) {
    hash_.add(0x4e1dull);
    if (!defer_if_paused(event)) deliver(event);
  }
}

void Simulation::deliver(const SimEvent& event) {
  const std::uint32_t slot = static_cast<std::uint32_t>(event.first);
  const std::vector<std::uint8_t>& frame = frames_[slot];
  // Release the slot on every path; the decoded message copies what it needs first.
  struct Release {
    Simulation* simulation;
    std::uint32_t slot;
    ~Release() { simulation->free_frame(slot); }
  } release{this, slot};
  const Connection& entry = connection(event.node, event.peer);
  if (!alive(event.node) || entry.epoch != event.epoch || entry.state != Connection::State::up) {
    result_.messages_dropped += 1;
    return;
  }
  wire::DecodeResult decoded = wire::decode(frame);
  const auto* decoded_frame = std::get_if<wire::Frame>(&decoded);
  if (decoded_frame == nullptr || decoded_frame->frame_size_bytes != frame.size()) {
    const auto* error = std::get_if<wire::WireError>(&decoded);
    violations_.add("message from node" + std::to_string(event.peer) + " to node" +
                    std::to_string(event.node) + " did not decode: " +
                    (error != nullptr ? error->message : std::string("incomplete frame")));
    return;
  }
  // The CRC (header bytes 12..15) digests the whole frame for the trace hash.
  hash_.add((std::uint64_t{frame[12]} << 24) | (std::uint64_t{frame[13]} << 16) |
            (std::uint64_t{frame[14]} << 8) | frame[15]);
  PayloadHandle payload{0};
  if (std::holds_alternative<wire::Data>(decoded_frame->message)) {
    // We encoded tags: one for a write, one per block for a read reply.
    const std::span<const std::uint8_t> bytes = decoded_frame->payload;
    DITTO_ASSERT(!bytes.empty() && bytes.size() % tag_size_bytes == 0);
    received_tags_.assign(bytes.size() / tag_size_bytes, 0);
    for (std::size_t index = 0; index < bytes.size(); ++index) {
      received_tags_[index / tag_size_bytes] |= std::uint64_t{bytes[index]}
                                                << (8 * (index % tag_size_bytes));
    }
    payload = nodes_[event.node]->hold_tags(received_tags_);
  }
  result_.messages_delivered += 1;
  if (trace_) {
    trace(event.node, "recv " +
                          std::string(wire::to_string(wire::type_of(decoded_frame->message))) +
                          " from " + node_name(event.peer));
  }
  nodes_[event.node]->core->on_message(clock_of(event.node), NodeId{event.peer},
                                       decoded_frame->message, payload);
  drain(event.node);
}

}  // namespace ditto::sim
