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

namespace ditto::datapath {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t receive_buffer_size_initial_bytes = 64 * 1024;
// A buffer grown for a large frame is given back once it is empty again.
constexpr std::size_t receive_buffer_size_keep_bytes = 1024 * 1024;
// The largest possible Hello frame: header, fixed fields and a 64-byte resource name.
constexpr std::size_t hello_frame_size_max_bytes =
    wire::header_size_bytes + 2 + 2 + 1 + 1 + 8 + 1 + wire::resource_name_size_max;
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

struct TcpTransport::Connection {
  explicit Connection(tcp::socket connected_socket)
      : socket(std::move(connected_socket)), deadline(socket.get_executor()) {}

  void close() {
    closed = true;
    error_code ignored;
    socket.close(ignored);
    deadline.cancel();
  }

  tcp::socket socket;
  asio::steady_timer deadline;
  std::uint64_t deadline_generation = 0;  // a fired wait for an older generation is stale
  std::string remote;                     // for log lines
  bool dialed = false;
  bool has_peer = false;  // dialed, or accepted and identified by its Hello
  NodeId peer;
  bool announced = false;  // on_peer_connected was called for it
  bool hello_received = false;
  bool closed = false;

  std::vector<std::uint8_t> receive_buffer;
  std::size_t received_bytes = 0;

  std::deque<std::vector<std::uint8_t>> send_queue;  // whole frames; the first ones in flight
  std::size_t send_queue_bytes = 0;
  std::size_t frames_in_flight = 0;
  std::vector<asio::const_buffer> write_buffers;
};

TcpTransport::TcpTransport(asio::io_context& io, TransportConfig config, TransportHandler& handler)
    : io_(io),
      config_(std::move(config)),
      handler_(handler),
      acceptor_(io),
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
    error_code error;
    const asio::ip::address address = asio::ip::make_address(peer.host, error);
    if (error) return Error{which + ": address '" + peer.host + "' is not an IP address"};
    PeerSlot slot;
    slot.config = peer;
    slot.address = address;
    slot.redial_timer = std::make_unique<asio::steady_timer>(io_);
    slot.redial_delay = config_.reconnect_delay_min;
    peers_.push_back(std::move(slot));
  }
  return Status::success();
}

Status TcpTransport::start() {
  DITTO_ASSERT(!started_);
  DITTO_ASSERT(!stopped_);
  if (Status status = validate_and_index_peers(); !status.ok()) return status;
  error_code error;
  const asio::ip::address address = asio::ip::make_address(config_.listen_host, error);
  if (error) {
    return Error{"transport: listen address '" + config_.listen_host + "' is not an IP address"};
  }
  const tcp::endpoint endpoint(address, config_.listen_port);
  const std::string where = config_.listen_host + ":" + std::to_string(config_.listen_port);
  acceptor_.open(endpoint.protocol(), error);
  if (!error) acceptor_.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor_.bind(endpoint, error);
  if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) return Error{"transport: cannot listen on " + where + ": " + error.message()};
  listen_port_ = acceptor_.local_endpoint(error).port();
  if (error) return Error{"transport: cannot read the listening port: " + error.message()};

  started_ = true;
  accept_next();
  for (PeerSlot& slot : peers_) {
    if (is_dialer_for(slot.config.node_id) && slot.config.port != 0) dial(slot);
  }
  return Status::success();
}

void TcpTransport::stop() {
  if (stopped_) return;
  stopped_ = true;
  lifetime_->alive = false;  // every pending completion handler now returns at once
  error_code ignored;
  acceptor_.close(ignored);
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
  if (slot->connection == nullptr) {
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

std::size_t TcpTransport::send_queue_bytes(NodeId peer) const {
  if (!is_connected(peer)) return 0;
  return slot_of(peer)->connection->send_queue_bytes;
}

// ---- Accepting and dialing ----

void TcpTransport::accept_next() {
  acceptor_.async_accept([this, lifetime = lifetime_](const error_code& error, tcp::socket socket) {
    if (!lifetime->alive) return;
    on_accepted(error, std::move(socket));
  });
}

void TcpTransport::on_accepted(const error_code& error, tcp::socket socket) {
  DITTO_ASSERT(started_ && !stopped_);
  if (error) {
    if (error == asio::error::operation_aborted) return;
    // E.g. out of file descriptors: back off instead of spinning on the error.
    log("accept failed: " + error.message() + "; retrying in 100 ms");
    accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
    accept_retry_timer_.async_wait([this, lifetime = lifetime_](const error_code& wait_error) {
      if (lifetime->alive && !wait_error) accept_next();
    });
    return;
  }
  accept_next();
  const std::string remote = endpoint_text(socket);
  if (anonymous_.size() >= config_.anonymous_connections_max) {
    log("refused connection from " + remote + ": too many unidentified connections");
    return;  // `socket` closes as it goes out of scope
  }
  auto connection = std::make_shared<Connection>(std::move(socket));
  connection->remote = remote;
  error_code ignored;
  connection->socket.set_option(tcp::no_delay(true), ignored);
  anonymous_.push_back(connection);
  arm_deadline(connection, config_.hello_timeout);
  read_next(connection);
}

void TcpTransport::dial(PeerSlot& slot) {
  DITTO_ASSERT(slot.connection == nullptr);
  DITTO_ASSERT(is_dialer_for(slot.config.node_id) && !stopped_);
  auto connection = std::make_shared<Connection>(tcp::socket(io_));
  connection->dialed = true;
  connection->has_peer = true;
  connection->peer = slot.config.node_id;
  const tcp::endpoint endpoint(slot.address, slot.config.port);
  connection->remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  slot.connection = connection;
  arm_deadline(connection, config_.connect_timeout);
  connection->socket.async_connect(
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
  connection->socket.set_option(tcp::no_delay(true), ignored);
  PeerSlot& slot = *slot_of(connection->peer);
  DITTO_ASSERT(slot.connection == connection);
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
  if (stopped_) return;
  const Duration delay = slot.redial_delay;
  slot.redial_delay = std::min(Duration{delay.ns * 2}, config_.reconnect_delay_max);
  slot.redial_timer->expires_after(to_chrono(delay));
  slot.redial_timer->async_wait(
      [this, lifetime = lifetime_, peer = slot.config.node_id](const error_code& error) {
        if (!lifetime->alive || error) return;
        PeerSlot& waiting = *slot_of(peer);
        // A stale wake-up (the timer was re-armed after it fired) finds a connection: no-op.
        if (waiting.connection == nullptr && waiting.config.port != 0) dial(waiting);
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
        if (connection->dialed && !connection->announced) {
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
  connection->socket.async_read_some(
      asio::buffer(buffer.data() + connection->received_bytes,
                   buffer.size() - connection->received_bytes),
      [this, lifetime = lifetime_, connection](const error_code& error, std::size_t size_bytes) {
        if (!lifetime->alive || connection->closed) return;
        on_read(connection, error, size_bytes);
      });
}

void TcpTransport::on_read(const std::shared_ptr<Connection>& connection, const error_code& error,
                           std::size_t size_bytes) {
  if (error) {
    if (error == asio::error::eof) {
      fail(connection, "connection closed by the peer");
    } else {
      fail(connection, "receive failed: " + error.message());
    }
    return;
  }
  connection->received_bytes += size_bytes;
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
      if (!connection->hello_received) {
        if (!handle_first_frame(connection, *frame)) return;
        continue;
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
  // Until it has identified itself, a peer may not make us buffer more than one Hello.
  if (!connection->hello_received && needed_bytes > hello_frame_size_max_bytes) {
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
  if (connection->dialed) {
    std::string problem = hello_problem(*hello, config_);
    if (problem.empty() && hello->sender != connection->peer) {
      problem = "Hello comes from node " + node_text(hello->sender) + ", we dialed node " +
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
  std::erase(anonymous_, connection);
  connection->has_peer = true;
  connection->peer = hello.sender;
  connection->hello_received = true;
  ++connection->deadline_generation;
  connection->deadline.cancel();
  deliver_disconnect_notice(*slot);
  if (std::shared_ptr<Connection> old = std::move(slot->connection)) {
    old->close();
    if (old->announced) {
      handler_.on_peer_disconnected(hello.sender, "replaced by a new connection from the peer");
    }
  }
  if (connection->closed || stopped_) return false;
  DITTO_ASSERT(slot->connection == nullptr);
  slot->connection = connection;
  connection->announced = true;
  handler_.on_peer_connected(hello.sender);
  return !connection->closed && !stopped_;
}

// ---- Sending ----

bool TcpTransport::send(NodeId peer, const wire::Message& message,
                        std::span<const std::uint8_t> payload) {
  if (!is_connected(peer)) return false;
  const std::shared_ptr<Connection>& connection = slot_of(peer)->connection;
  DITTO_ASSERT(!connection->closed);
  const std::size_t prefix_size_bytes = wire::encoded_prefix_size_bytes(message);
  const std::size_t frame_size_bytes = prefix_size_bytes + payload.size();
  // An empty queue always takes one frame, so a frame larger than the limit is not stuck.
  if (connection->send_queue_bytes > 0 &&
      connection->send_queue_bytes + frame_size_bytes > config_.send_queue_bytes_max) {
    return false;
  }
  std::vector<std::uint8_t> frame(frame_size_bytes);
  const std::size_t written_bytes = wire::encode_prefix(message, payload, frame);
  DITTO_ASSERT_EQ(written_bytes, prefix_size_bytes);
  std::copy(payload.begin(), payload.end(),
            frame.begin() + static_cast<std::ptrdiff_t>(prefix_size_bytes));
  connection->send_queue.push_back(std::move(frame));
  connection->send_queue_bytes += frame_size_bytes;
  if (connection->frames_in_flight == 0) write_next(connection);
  return true;
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
  asio::async_write(connection->socket, connection->write_buffers,
                    [this, lifetime = lifetime_, connection](const error_code& error, std::size_t) {
                      if (!lifetime->alive || connection->closed) return;
                      on_written(connection, error);
                    });
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
  if (!connection->send_queue.empty()) write_next(connection);
}

// ---- Closing ----

void TcpTransport::disconnect(NodeId peer, std::string_view reason) {
  PeerSlot* slot = slot_of(peer);
  if (slot == nullptr || slot->connection == nullptr || stopped_) return;
  const std::shared_ptr<Connection> connection = std::move(slot->connection);
  connection->close();
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
  if (!connection->has_peer) {
    std::erase(anonymous_, connection);
    log("refused connection from " + connection->remote + ": " + std::string(reason));
    return;
  }
  PeerSlot& slot = *slot_of(connection->peer);
  if (slot.connection == connection) {
    slot.connection.reset();
    if (is_dialer_for(connection->peer)) schedule_redial(slot);
  }
  if (!connection->announced) return;  // a failed dial: the handler never saw it
  log("connection to node " + node_text(connection->peer) + " lost: " + std::string(reason));
  deliver_disconnect_notice(slot);
  handler_.on_peer_disconnected(connection->peer, reason);
}

void TcpTransport::log(std::string_view text) const {
  std::fprintf(stderr, "ditto transport [%s node %u]: %.*s\n", config_.resource_name.c_str(),
               unsigned{config_.self.value}, static_cast<int>(text.size()), text.data());
}

}  // namespace ditto::datapath
