#include "datapath/transport_tcp.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <utility>

#include "core/assert.h"
#include "datapath/transport_connection.h"

namespace ditto::datapath {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t receive_buffer_size_initial_bytes = 64 * 1024;
// A buffer grown for a large frame is given back once it is empty again, unless it is small
// enough to keep: a Data frame of 1 MiB (the NBD clients' usual largest request; sequential
// writes) is slightly larger than 1 MiB, and with a 1 MiB limit every such frame reallocated
// and zero-filled the buffer (about a tenth of the Secondary's CPU per 1 MiB write).
constexpr std::size_t receive_buffer_size_keep_bytes = 2 * 1024 * 1024 + 64 * 1024;
// The largest frame an unidentified peer may make us buffer: an AuthChallenge (the largest
// handshake frame: header, fixed fields, a 64-byte resource name and the challenge).
constexpr std::size_t handshake_frame_size_max_bytes =
    wire::header_size_bytes + 2 + 2 + 1 + 1 + 8 + 1 + wire::resource_name_size_max +
    wire::auth_challenge_size_bytes;
// Gather at most this many queued frames (and about this many bytes) into one write.
constexpr std::size_t write_frames_max = 64;
constexpr std::size_t write_batch_bytes_max = 4 * 1024 * 1024;

std::chrono::nanoseconds to_chrono(Duration duration) {
  return std::chrono::nanoseconds(duration.ns);
}

std::string node_text(NodeId node) {
  return std::to_string(unsigned{node.value});
}

std::string endpoint_text(const tcp::socket& socket) {
  error_code error;
  const tcp::endpoint endpoint = socket.remote_endpoint(error);
  if (error) return "an unknown address";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// The checks every Hello must pass, whichever side dialed. Empty when it passes.
std::string hello_problem(const wire::Hello& hello, const TransportConfig& config) {
  if (hello.protocol_version_min > wire::protocol_version ||
      hello.protocol_version_max < wire::protocol_version) {
    return "peer speaks protocol versions " + std::to_string(hello.protocol_version_min) + ".." +
           std::to_string(hello.protocol_version_max) + ", we speak " +
           std::to_string(wire::protocol_version);
  }
  if (hello.receiver != config.self) {
    return "Hello is addressed to node " + node_text(hello.receiver) + ", this is node " +
           node_text(config.self);
  }
  if (hello.resource_name != config.resource_name) {
    return "Hello is for resource '" + hello.resource_name + "', this is resource '" +
           config.resource_name + "'";
  }
  return {};
}

}  // namespace


TcpTransport::TcpTransport(asio::io_context& io, TransportConfig config, TransportHandler& handler)
    : io_(io),
      config_(std::move(config)),
      handler_(handler),
      accept_retry_timer_(io),
      lifetime_(std::make_shared<Lifetime>()) {}

TcpTransport::~TcpTransport() {
  stop();
}

Status TcpTransport::validate_and_index_peers() {
  if (config_.self.value > node_id_max) return Error{"transport: own node id is above 31"};
  if (config_.resource_name.empty() ||
      config_.resource_name.size() > wire::resource_name_size_max) {
    return Error{"transport: resource name must be 1 to 64 bytes"};
  }
  if (config_.reconnect_delay_min.ns <= 0 ||
      config_.reconnect_delay_max < config_.reconnect_delay_min) {
    return Error{"transport: reconnect delays must satisfy 0 < min <= max"};
  }
  for (const TransportPeer& peer : config_.peers) {
    const std::string which =
        "transport: peer '" + peer.name + "' (node " + node_text(peer.node_id) + ")";
    if (peer.node_id.value > node_id_max || peer.node_id == config_.self) {
      return Error{which + " has an id above 31 or equal to our own"};
    }
    if (slot_of(peer.node_id) != nullptr) return Error{which + " is configured twice"};
    PeerSlot slot;
    std::vector<TransportAddress> paths{{peer.host, peer.port}};
    paths.insert(paths.end(), peer.more_paths.begin(), peer.more_paths.end());
    for (const TransportAddress& path : paths) {
      error_code error;
      slot.addresses.push_back(asio::ip::make_address(path.host, error));
      if (error) return Error{which + ": address '" + path.host + "' is not an IP address"};
    }
    slot.config = peer;
    slot.redial_timer = std::make_unique<asio::steady_timer>(io_);
    slot.redial_delay = config_.reconnect_delay_min;
    peers_.push_back(std::move(slot));
  }
  if (config_.cram_hmac_algorithm.empty() != config_.shared_secret.empty()) {
    return Error{"transport: cram-hmac-alg and shared-secret must be set together"};
  }
  if (!config_.shared_secret.empty()) {
    auto key = AuthKey::create(config_.cram_hmac_algorithm, config_.shared_secret);
    if (!key.ok()) return Error{"transport: " + key.error().message};
    auth_key_.emplace(std::move(key).value());
  }
  if (!config_.tls.empty()) {
    auto context = make_tls_context(config_.tls);
    if (!context.ok()) return Error{"transport: " + context.error().message};
    tls_context_ = std::move(context).value();
  }
  if (config_.ping_interval.ns <= 0 || config_.ping_timeout.ns <= 0) {
    return Error{"transport: ping-int and ping-timeout must be positive"};
  }
  return Status::success();
}

Status TcpTransport::listen_on(const TransportAddress& where) {
  error_code error;
  const asio::ip::address address = asio::ip::make_address(where.host, error);
  if (error) return Error{"transport: listen address '" + where.host + "' is not an IP address"};
  const tcp::endpoint endpoint(address, where.port);
  const std::string text = where.host + ":" + std::to_string(where.port);
  auto acceptor = std::make_unique<tcp::acceptor>(io_);
  acceptor->open(endpoint.protocol(), error);
  if (!error) acceptor->set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor->bind(endpoint, error);
  if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
  if (error) return Error{"transport: cannot listen on " + text + ": " + error.message()};
  const std::uint16_t port = acceptor->local_endpoint(error).port();
  if (error) return Error{"transport: cannot read the listening port: " + error.message()};
  if (acceptors_.empty()) listen_port_ = port;
  acceptors_.push_back(std::move(acceptor));
  return Status::success();
}

Status TcpTransport::start() {
  DITTO_ASSERT(!started_);
  DITTO_ASSERT(!stopped_);
  if (Status status = validate_and_index_peers(); !status.ok()) return status;
  if (Status status = listen_on({config_.listen_host, config_.listen_port}); !status.ok()) {
    return status;
  }
  for (const TransportAddress& extra : config_.more_listen) {
    if (extra.host == config_.listen_host && extra.port == config_.listen_port) continue;
    // A path whose local address is gone (a NIC down) must not keep the other paths down.
    if (Status status = listen_on(extra); !status.ok()) log(status.error().message);
  }

  started_ = true;
  for (std::size_t index = 0; index < acceptors_.size(); ++index) accept_next(index);
  for (PeerSlot& slot : peers_) {
    if (is_dialer_for(slot.config.node_id) && slot.config.port != 0 && !slot.standalone) {
      dial(slot);
    }
  }
  return Status::success();
}

void TcpTransport::stop() {
  if (stopped_) return;
  stopped_ = true;
  lifetime_->alive = false;  // every pending completion handler now returns at once
  error_code ignored;
  for (const auto& acceptor : acceptors_) acceptor->close(ignored);
  accept_retry_timer_.cancel();
  for (PeerSlot& slot : peers_) {
    slot.redial_timer->cancel();
    slot.disconnect_notice_pending = false;
    if (slot.connection) slot.connection->close();
    slot.connection.reset();
  }
  for (const auto& connection : anonymous_) connection->close();
  anonymous_.clear();
}

std::uint16_t TcpTransport::listen_port() const {
  return listen_port_;
}

void TcpTransport::set_peer_port(NodeId peer, std::uint16_t port) {
  PeerSlot* slot = slot_of(peer);
  DITTO_ASSERT(slot != nullptr);
  slot->config.port = port;
  if (!started_ || stopped_ || !is_dialer_for(peer) || port == 0) return;
  if (slot->connection == nullptr && !slot->standalone) {
    slot->redial_timer->cancel();
    dial(*slot);
  }
}

TcpTransport::PeerSlot* TcpTransport::slot_of(NodeId peer) {
  for (PeerSlot& slot : peers_) {
    if (slot.config.node_id == peer) return &slot;
  }
  return nullptr;
}

const TcpTransport::PeerSlot* TcpTransport::slot_of(NodeId peer) const {
  for (const PeerSlot& slot : peers_) {
    if (slot.config.node_id == peer) return &slot;
  }
  return nullptr;
}

bool TcpTransport::is_connected(NodeId peer) const {
  const PeerSlot* slot = slot_of(peer);
  return slot != nullptr && slot->connection != nullptr && slot->connection->announced;
}

int TcpTransport::connected_path(NodeId peer) const {
  if (!is_connected(peer)) return -1;
  const PeerSlot* slot = slot_of(peer);
  // An accepted connection's path is the peer's choice; report the one it would dial first.
  return slot->connection->dialed ? static_cast<int>(slot->connection->path_index) : 0;
}

std::size_t TcpTransport::send_queue_bytes(NodeId peer) const {
  if (!is_connected(peer)) return 0;
  return slot_of(peer)->connection->send_queue_bytes;
}

// ---- Accepting and dialing ----

void TcpTransport::accept_next(std::size_t acceptor_index) {
  DITTO_ASSERT(acceptor_index < acceptors_.size());
  acceptors_[acceptor_index]->async_accept(
      [this, lifetime = lifetime_, acceptor_index](const error_code& error, tcp::socket socket) {
        if (!lifetime->alive) return;
        on_accepted(acceptor_index, error, std::move(socket));
      });
}

void TcpTransport::on_accepted(std::size_t acceptor_index, const error_code& error,
                               tcp::socket socket) {
  DITTO_ASSERT(started_ && !stopped_);
  if (error) {
    if (error == asio::error::operation_aborted) return;
    // E.g. out of file descriptors: back off instead of spinning on the error. One timer per
    // retry, since several acceptors may be backing off at once.
    log("accept failed: " + error.message() + "; retrying in 100 ms");
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(100));
    timer->async_wait(
        [this, lifetime = lifetime_, acceptor_index, timer](const error_code& wait_error) {
          if (lifetime->alive && !wait_error) accept_next(acceptor_index);
        });
    return;
  }
  accept_next(acceptor_index);
  const std::string remote = endpoint_text(socket);
  if (anonymous_.size() >= config_.anonymous_connections_max) {
    log("refused connection from " + remote + ": too many unidentified connections");
    return;  // `socket` closes as it goes out of scope
  }
  auto connection = std::make_shared<Connection>(std::move(socket));
  connection->remote = remote;
  error_code ignored;
  connection->socket().set_option(tcp::no_delay(true), ignored);
  anonymous_.push_back(connection);
  arm_deadline(connection, config_.hello_timeout);
  if (tls_context_) {
    start_tls_handshake(connection);  // reading starts once it succeeds
    return;
  }
  read_next(connection);
}

void TcpTransport::dial(PeerSlot& slot) {
  DITTO_ASSERT(slot.connection == nullptr);
  DITTO_ASSERT(is_dialer_for(slot.config.node_id) && !stopped_);
  auto connection = std::make_shared<Connection>(tcp::socket(io_));
  connection->dialed = true;
  connection->has_peer = true;
  connection->peer = slot.config.node_id;
  connection->path_index = slot.path_index;
  const std::uint16_t port = slot.path_index == 0
                                 ? slot.config.port
                                 : slot.config.more_paths[slot.path_index - 1].port;
  const tcp::endpoint endpoint(slot.addresses[slot.path_index], port);
  connection->remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  slot.connection = connection;
  arm_deadline(connection, config_.connect_timeout);
  connection->socket().async_connect(
      endpoint, [this, lifetime = lifetime_, connection](const error_code& error) {
        if (!lifetime->alive || connection->closed) return;
        on_dialed(connection, error);
      });
}

void TcpTransport::on_dialed(const std::shared_ptr<Connection>& connection,
                             const error_code& error) {
  DITTO_ASSERT(connection->dialed && !connection->announced);
  if (error) {
    fail(connection, "connect to " + connection->remote + " failed: " + error.message());
    return;
  }
  error_code ignored;
  connection->socket().set_option(tcp::no_delay(true), ignored);
  connection->tcp_connected = true;
  PeerSlot& slot = *slot_of(connection->peer);
  DITTO_ASSERT(slot.connection == connection);
  if (slot.addresses.size() > 1) {
    log("connected to node " + node_text(connection->peer) + " over path " +
        std::to_string(connection->path_index + 1) + " (" + connection->remote + ")");
  }
  if (tls_context_) {
    arm_deadline(connection, config_.hello_timeout);
    start_tls_handshake(connection);  // on_dialed_ready follows once it succeeds
    return;
  }
  on_dialed_ready(connection);
}

void TcpTransport::on_dialed_ready(const std::shared_ptr<Connection>& connection) {
  DITTO_ASSERT(connection->dialed && connection->tcp_connected && !connection->announced);
  PeerSlot& slot = *slot_of(connection->peer);
  DITTO_ASSERT(slot.connection == connection);
  if (auth_key_) {
    // The handler hears of the peer only once it has proven the shared secret.
    arm_deadline(connection, config_.hello_timeout);
    start_authentication(connection);
    if (!connection->closed && !stopped_) read_next(connection);
    return;
  }
  deliver_disconnect_notice(slot);  // keeps disconnected-before-connected order
  if (connection->closed || stopped_) return;
  connection->announced = true;
  arm_deadline(connection, config_.hello_timeout);
  handler_.on_peer_connected(connection->peer);
  if (connection->closed || stopped_) return;
  read_next(connection);
}

void TcpTransport::schedule_redial(PeerSlot& slot) {
  DITTO_ASSERT(is_dialer_for(slot.config.node_id));
  if (stopped_ || slot.standalone) return;
  const Duration delay = slot.redial_delay;
  slot.redial_delay = std::min(Duration{delay.ns * 2}, config_.reconnect_delay_max);
  slot.redial_timer->expires_after(to_chrono(delay));
  slot.redial_timer->async_wait(
      [this, lifetime = lifetime_, peer = slot.config.node_id](const error_code& error) {
        if (!lifetime->alive || error) return;
        PeerSlot& waiting = *slot_of(peer);
        // A stale wake-up (the timer was re-armed after it fired) finds a connection: no-op.
        if (waiting.connection == nullptr && waiting.config.port != 0 && !waiting.standalone) {
          dial(waiting);
        }
      });
}

void TcpTransport::arm_deadline(const std::shared_ptr<Connection>& connection, Duration timeout) {
  DITTO_ASSERT(!connection->closed);
  const std::uint64_t generation = ++connection->deadline_generation;
  connection->deadline.expires_after(to_chrono(timeout));
  connection->deadline.async_wait(
      [this, lifetime = lifetime_, connection, generation, timeout](const error_code& error) {
        if (!lifetime->alive || error || connection->closed) return;
        if (generation != connection->deadline_generation) return;  // re-armed or disarmed
        const std::string limit = std::to_string(timeout.ns / 1'000'000) + " ms";
        if (tls_context_ && (connection->tcp_connected || !connection->dialed) &&
            !connection->tls_done) {
          fail(connection, "TLS handshake with " + connection->remote + " not finished within " +
                               limit);
        } else if (connection->dialed && !connection->announced) {
          fail(connection, "connect to " + connection->remote + " timed out after " + limit);
        } else {
          fail(connection, "no Hello from " + connection->remote + " within " + limit);
        }
      });
}

// ---- Receiving ----

void TcpTransport::read_next(const std::shared_ptr<Connection>& connection) {
  DITTO_ASSERT(!connection->closed);
  std::vector<std::uint8_t>& buffer = connection->receive_buffer;
  if (buffer.empty()) buffer.resize(receive_buffer_size_initial_bytes);
  DITTO_ASSERT(connection->received_bytes < buffer.size());
  connection->stream.async_read_some(
      asio::buffer(buffer.data() + connection->received_bytes,
                   buffer.size() - connection->received_bytes),
      [this, lifetime = lifetime_, connection](const error_code& error, std::size_t size_bytes) {
        if (!lifetime->alive || connection->closed) return;
        on_read(connection, error, size_bytes);
      });
}

void TcpTransport::on_read(const std::shared_ptr<Connection>& connection, const error_code& error,
                           std::size_t size_bytes) {
  if (connection->draining) return;  // dropped: only its queued frames still go out
  if (error) {
    if (error == asio::error::eof && authenticating(*connection)) {
      fail(connection, "connection closed by the peer before it proved the shared secret");
    } else if (error == asio::error::eof) {
      fail(connection, "connection closed by the peer");
    } else {
      fail(connection, "receive failed: " + error.message());
    }
    return;
  }
  connection->received_bytes += size_bytes;
  connection->received_since_ping = true;
  DITTO_ASSERT(connection->received_bytes <= connection->receive_buffer.size());
  process_frames(connection);
  if (connection->closed || stopped_) return;
  read_next(connection);
}

void TcpTransport::process_frames(const std::shared_ptr<Connection>& connection) {
  std::vector<std::uint8_t>& buffer = connection->receive_buffer;
  std::size_t offset = 0;
  std::size_t needed_bytes = 0;
  while (!connection->closed && !stopped_) {
    const std::span<const std::uint8_t> available(buffer.data() + offset,
                                                  connection->received_bytes - offset);
    wire::DecodeResult result = wire::decode(available);
    if (auto* frame = std::get_if<wire::Frame>(&result)) {
      offset += frame->frame_size_bytes;
      if (authenticating(*connection)) {
        if (!handle_auth_frame(connection, *frame)) return;
        continue;
      }
      if (handle_keepalive_frame(connection, frame->message)) continue;
      if (!connection->hello_received) {
        if (!handle_first_frame(connection, *frame)) return;
        continue;
      }
      if (std::holds_alternative<wire::AuthChallenge>(frame->message) ||
          std::holds_alternative<wire::AuthResponse>(frame->message)) {
        fail(connection, std::string("protocol error: ") +
                             wire::to_string(wire::type_of(frame->message)) + " after the Hello");
        return;
      }
      handler_.on_peer_message(connection->peer, frame->message, frame->payload);
      continue;
    }
    if (auto* wire_error = std::get_if<wire::WireError>(&result)) {
      fail(connection, "protocol error: " + wire_error->message);
      return;
    }
    needed_bytes = std::get<wire::NeedMore>(result).frame_size_bytes;
    break;
  }
  if (connection->closed || stopped_) return;
  // Until it has identified itself, a peer may not make us buffer more than one handshake frame.
  if (!connection->hello_received && needed_bytes > handshake_frame_size_max_bytes) {
    fail(connection, "protocol error: first frame announces " + std::to_string(needed_bytes) +
                         " bytes, more than any Hello");
    return;
  }
  const std::size_t remaining_bytes = connection->received_bytes - offset;
  if (offset > 0 && remaining_bytes > 0) {
    std::memmove(buffer.data(), buffer.data() + offset, remaining_bytes);
  }
  connection->received_bytes = remaining_bytes;
  if (remaining_bytes == 0 && buffer.size() > receive_buffer_size_keep_bytes) {
    buffer.resize(receive_buffer_size_initial_bytes);
    buffer.shrink_to_fit();
  }
  // decode() rejects bodies above wire::body_size_max_bytes, so this growth is bounded.
  if (buffer.size() < needed_bytes) buffer.resize(needed_bytes);
  DITTO_ASSERT(connection->received_bytes < buffer.size());
}

bool TcpTransport::handle_first_frame(const std::shared_ptr<Connection>& connection,
                                      wire::Frame& frame) {
  DITTO_ASSERT(!connection->hello_received);
  const auto* hello = std::get_if<wire::Hello>(&frame.message);
  if (hello == nullptr) {
    fail(connection, std::string("protocol error: first frame is a ") +
                         wire::to_string(wire::type_of(frame.message)) + ", not a Hello");
    return false;
  }
  if (connection->has_peer) {  // dialed, or accepted and authenticated
    std::string problem = hello_problem(*hello, config_);
    if (problem.empty() && hello->sender != connection->peer) {
      problem = "Hello comes from node " + node_text(hello->sender) +
                (connection->dialed ? ", we dialed node " : ", which authenticated as node ") +
                node_text(connection->peer);
    }
    if (!problem.empty()) {
      fail(connection, "protocol error: " + problem);
      return false;
    }
    connection->hello_received = true;
    ++connection->deadline_generation;
    connection->deadline.cancel();
    slot_of(connection->peer)->redial_delay = config_.reconnect_delay_min;
  } else if (!accept_hello(connection, *hello)) {
    return false;
  }
  start_keepalive(connection);
  handler_.on_peer_message(connection->peer, frame.message, {});
  return !connection->closed && !stopped_;
}

bool TcpTransport::accept_hello(const std::shared_ptr<Connection>& connection,
                                const wire::Hello& hello) {
  DITTO_ASSERT(!connection->dialed && !connection->has_peer);
  std::string problem = hello_problem(hello, config_);
  PeerSlot* slot = slot_of(hello.sender);
  if (problem.empty() && slot == nullptr) {
    problem = "Hello comes from node " + node_text(hello.sender) + ", not a configured peer";
  } else if (problem.empty() && is_dialer_for(hello.sender)) {
    problem = "Hello comes from node " + node_text(hello.sender) +
              ", which has the higher id and must wait for us to dial";
  }
  if (!problem.empty()) {
    fail(connection, "protocol error: " + problem);
    return false;
  }
  connection->hello_received = true;
  ++connection->deadline_generation;
  connection->deadline.cancel();
  return adopt(connection, hello.sender);
}

// An accepted connection has identified itself (Hello, or authentication): it becomes the
// peer's connection, replacing any older one, and the handler hears of it.
bool TcpTransport::adopt(const std::shared_ptr<Connection>& connection, NodeId peer) {
  DITTO_ASSERT(!connection->dialed && !connection->has_peer);
  PeerSlot* slot = slot_of(peer);
  DITTO_ASSERT(slot != nullptr && !is_dialer_for(peer));
  if (slot->standalone) {
    fail(connection, "node " + node_text(peer) + " is StandAlone here (until dittoadm connect)");
    return false;
  }
  if (!certificate_names_peer(connection, peer)) return false;  // a TLS peer's name
  std::erase(anonymous_, connection);
  connection->has_peer = true;
  connection->peer = peer;
  deliver_disconnect_notice(*slot);
  if (std::shared_ptr<Connection> old = std::move(slot->connection)) {
    old->close();
    if (old->announced) {
      handler_.on_peer_disconnected(peer, "replaced by a new connection from the peer");
    }
  }
  if (connection->closed || stopped_) return false;
  DITTO_ASSERT(slot->connection == nullptr);
  slot->connection = connection;
  connection->announced = true;
  handler_.on_peer_connected(peer);
  return !connection->closed && !stopped_;
}

// ---- Sending ----

bool TcpTransport::send(NodeId peer, const wire::Message& message,
                        std::span<const std::uint8_t> payload) {
  if (!is_connected(peer)) return false;
  const std::shared_ptr<Connection>& connection = slot_of(peer)->connection;
  DITTO_ASSERT(!connection->closed);
  const std::size_t frame_size_bytes = wire::encoded_prefix_size_bytes(message) + payload.size();
  // An empty queue always takes one frame, so a frame larger than the limit is not stuck.
  if (connection->send_queue_bytes > 0 &&
      connection->send_queue_bytes + frame_size_bytes > config_.send_queue_bytes_max) {
    return false;
  }
  enqueue(connection, message, payload);
  return true;
}

void TcpTransport::enqueue(const std::shared_ptr<Connection>& connection,
                           const wire::Message& message, std::span<const std::uint8_t> payload) {
  DITTO_ASSERT(!connection->closed);
  const std::size_t prefix_size_bytes = wire::encoded_prefix_size_bytes(message);
  const std::size_t frame_size_bytes = prefix_size_bytes + payload.size();
  // The payload is appended, not written over a zero-filled frame: a 1 MiB Data frame was
  // zeroed, then copied.
  std::vector<std::uint8_t> frame;
  frame.reserve(frame_size_bytes);
  frame.resize(prefix_size_bytes);
  const std::size_t written_bytes = wire::encode_prefix(message, payload, frame);
  DITTO_ASSERT_EQ(written_bytes, prefix_size_bytes);
  frame.insert(frame.end(), payload.begin(), payload.end());
  connection->send_queue.push_back(std::move(frame));
  connection->send_queue_bytes += frame_size_bytes;
  schedule_write(connection);
}

// The write starts once the handlers that are ready now have run, not at the first frame: the
// frames one batch of input produces (the Data of every NBD write in one read, the acks of
// every disk completion in one reap) then leave in one gathered system call rather than in
// two (the first frame alone, then the rest once its write completed).
void TcpTransport::schedule_write(const std::shared_ptr<Connection>& connection) {
  if (connection->frames_in_flight > 0 || connection->write_scheduled) return;
  connection->write_scheduled = true;
  asio::post(io_, [this, lifetime = lifetime_, connection] {
    connection->write_scheduled = false;
    if (!lifetime->alive || connection->closed) return;
    if (connection->frames_in_flight == 0 && !connection->send_queue.empty()) {
      write_next(connection);
    }
  });
}

void TcpTransport::write_next(const std::shared_ptr<Connection>& connection) {
  DITTO_ASSERT(connection->frames_in_flight == 0);
  DITTO_ASSERT(!connection->send_queue.empty());
  connection->write_buffers.clear();
  std::size_t batch_bytes = 0;
  for (const std::vector<std::uint8_t>& frame : connection->send_queue) {
    if (connection->write_buffers.size() == write_frames_max) break;
    if (batch_bytes > 0 && batch_bytes + frame.size() > write_batch_bytes_max) break;
    connection->write_buffers.push_back(asio::buffer(frame));
    batch_bytes += frame.size();
  }
  connection->frames_in_flight = connection->write_buffers.size();
  auto on_done = [this, lifetime = lifetime_, connection](const error_code& error, std::size_t) {
    if (!lifetime->alive || connection->closed) return;
    on_written(connection, error);
  };
  if (!connection->stream.is_tls()) {
    asio::async_write(connection->stream, connection->write_buffers, std::move(on_done));
    return;
  }
  // Nothing is queued on a TLS connection before its handshake completed.
  DITTO_ASSERT(connection->tls_done);
  std::vector<std::uint8_t>& batch = connection->tls_write_batch;
  batch.resize(batch_bytes);
  std::size_t offset = 0;
  for (const asio::const_buffer& buffer : connection->write_buffers) {
    std::memcpy(batch.data() + offset, buffer.data(), buffer.size());
    offset += buffer.size();
  }
  asio::async_write(connection->stream, asio::buffer(batch), std::move(on_done));
}

void TcpTransport::on_written(const std::shared_ptr<Connection>& connection,
                              const error_code& error) {
  if (error) {
    fail(connection, "send failed: " + error.message());
    return;
  }
  DITTO_ASSERT(connection->frames_in_flight <= connection->send_queue.size());
  for (std::size_t i = 0; i < connection->frames_in_flight; ++i) {
    connection->send_queue_bytes -= connection->send_queue.front().size();
    connection->send_queue.pop_front();
  }
  connection->frames_in_flight = 0;
  if (connection->draining && connection->send_queue.empty()) return connection->close();
  if (connection->tls_write_batch.capacity() > receive_buffer_size_keep_bytes) {
    connection->tls_write_batch = {};  // give a large batch's memory back
  }
  if (!connection->send_queue.empty()) write_next(connection);
}

// ---- Closing ----

void TcpTransport::disconnect(NodeId peer, std::string_view reason) {
  drop_connection(peer, reason, false);
}

void TcpTransport::drop_connection(NodeId peer, std::string_view reason, bool drain) {
  PeerSlot* slot = slot_of(peer);
  if (slot == nullptr || slot->connection == nullptr || stopped_) return;
  const std::shared_ptr<Connection> connection = std::move(slot->connection);
  if (drain && connection->announced && !connection->send_queue.empty()) {
    // What is queued still goes out (the peer learns why, e.g. the StateReport that shows it
    // the split brain too); nothing more is read. Closed when the queue is empty, or after
    // the timeout at the latest.
    connection->draining = true;
    arm_deadline(connection, config_.connect_timeout);
  } else {
    connection->close();
  }
  if (is_dialer_for(peer)) schedule_redial(*slot);
  if (!connection->announced) return;
  // Only one announced connection per peer exists, and announcing flushes the notice first.
  DITTO_ASSERT(!slot->disconnect_notice_pending);
  slot->disconnect_notice_pending = true;
  slot->disconnect_notice_reason = std::string(reason);
  asio::post(io_, [this, lifetime = lifetime_, peer] {
    if (lifetime->alive) deliver_disconnect_notice(*slot_of(peer));
  });
}

void TcpTransport::deliver_disconnect_notice(PeerSlot& slot) {
  if (!slot.disconnect_notice_pending) return;
  slot.disconnect_notice_pending = false;
  const std::string reason = std::move(slot.disconnect_notice_reason);
  handler_.on_peer_disconnected(slot.config.node_id, reason);
}

void TcpTransport::fail(const std::shared_ptr<Connection>& connection, std::string_view reason) {
  if (connection->closed) return;
  connection->close();
  if (connection->draining) return;  // already taken from its slot, the handler was told
  if (!connection->has_peer) {
    std::erase(anonymous_, connection);
    log("refused connection from " + connection->remote + ": " + std::string(reason));
    return;
  }
  PeerSlot& slot = *slot_of(connection->peer);
  // A dial that failed, or an established connection that broke (the peer went silent, reset
  // it): the path it ran on is suspect, so the next dial takes the next path. Were it the
  // dark path again, a dial would wait out the whole connect timeout before moving on.
  if (connection->dialed && (!connection->tcp_connected || connection->announced) &&
      slot.addresses.size() > 1) {
    slot.path_index = (connection->path_index + 1) % slot.addresses.size();
    log("path " + std::to_string(connection->path_index + 1) + " to node " +
        node_text(connection->peer) + (connection->announced ? " lost (" : " failed (") +
        std::string(reason) + "); trying path " + std::to_string(slot.path_index + 1) +
        " next");
  }
  if (slot.connection == connection) {
    slot.connection.reset();
    if (is_dialer_for(connection->peer)) schedule_redial(slot);
  }
  if (!connection->announced) {  // a failed dial or handshake: the handler never saw it
    if (connection->tcp_connected) {
      log("connection to node " + node_text(connection->peer) + " refused: " +
          std::string(reason));
    }
    return;
  }
  log("connection to node " + node_text(connection->peer) + " lost: " + std::string(reason));
  deliver_disconnect_notice(slot);
  handler_.on_peer_disconnected(connection->peer, reason);
}

void TcpTransport::log(std::string_view text) const {
  std::fprintf(stderr, "ditto transport [%s node %u]: %.*s\n", config_.resource_name.c_str(),
               unsigned{config_.self.value}, static_cast<int>(text.size()), text.data());
}

}  // namespace ditto::datapath
