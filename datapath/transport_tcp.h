// The peer-to-peer TCP transport of the ditto daemon: one connection per pair of nodes, carrying
// frames of core's wire codec.
//
// Connection rules:
// - The node with the lower node id dials the node with the higher id; the higher id only
//   accepts. A dialer that loses its connection redials with a backoff that doubles from
//   reconnect_delay_min to reconnect_delay_max (reset when the peer's Hello arrives).
// - Both sides must send a wire::Hello as their first frame. An accepted connection stays
//   anonymous (invisible to the handler) until its first frame is a Hello whose sender is a
//   configured peer with a lower id, whose receiver is this node and whose resource name is
//   ours; anything else is logged to stderr and closed. A dialed connection is announced with
//   on_peer_connected as soon as TCP connects (the daemon then sends its Hello); the peer's first
//   frame must be a Hello from that peer to this node for our resource, or the connection is
//   dropped as a protocol error.
// - A new valid connection from a peer replaces the existing one (the peer restarted).
//
// Threading: everything runs on the io_context's single thread; no locks. Callbacks are never
// made from inside send() or disconnect() (no re-entry into the daemon); they come from
// completion handlers.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "core/wire.h"

namespace ditto::datapath {

struct TransportPeer {
  NodeId node_id;
  std::string name;
  std::string host;  // an IPv4 or IPv6 address literal, as in a .res "address" line
  std::uint16_t port = 0;
};

struct TransportConfig {
  NodeId self;
  std::string resource_name;
  std::string listen_host;
  std::uint16_t listen_port = 0;  // 0 = ephemeral (tests)
  std::vector<TransportPeer> peers;
  Duration reconnect_delay_min = Duration::from_ms(100);
  Duration reconnect_delay_max = Duration::from_ms(2000);
  std::size_t send_queue_bytes_max = 64 * 1024 * 1024;
  // A dial that has not connected by then is abandoned (and retried with backoff).
  Duration connect_timeout = Duration::from_ms(5000);
  // A connection whose peer has not sent its Hello by then is closed.
  Duration hello_timeout = Duration::from_ms(10000);
  // Accepted connections that have not identified themselves yet; more are refused.
  std::size_t anonymous_connections_max = 64;
};

// Implemented by the daemon; all calls on the io_context thread.
class TransportHandler {
 public:
  virtual ~TransportHandler() = default;
  virtual void on_peer_connected(NodeId peer) = 0;
  virtual void on_peer_disconnected(NodeId peer, std::string_view reason) = 0;
  // `payload` points into the receive buffer and is valid only during the call.
  virtual void on_peer_message(NodeId peer, const wire::Message& message,
                               std::span<const std::uint8_t> payload) = 0;
};

class TcpTransport {
 public:
  TcpTransport(boost::asio::io_context& io, TransportConfig config, TransportHandler& handler);
  ~TcpTransport();
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  // Validates the configuration, binds and listens, and starts dialing the higher-id peers.
  [[nodiscard]] Status start();
  // Closes everything; no handler callbacks after it returns. Idempotent.
  void stop();
  // The bound port (useful with listen_port = 0); 0 before start().
  std::uint16_t listen_port() const;
  // Changes a peer's port (tests with ephemeral ports); dials it now if this node is the dialer
  // and it is not connected.
  void set_peer_port(NodeId peer, std::uint16_t port);

  // Queues one frame for a connected peer (prefix encoded with wire::encode_prefix, then the
  // payload, which is copied). Returns false if the peer is not connected or its send queue
  // already holds data and this frame would take it over send_queue_bytes_max (backpressure as
  // a value).
  [[nodiscard]] bool send(NodeId peer, const wire::Message& message,
                          std::span<const std::uint8_t> payload = {});
  // Drops the connection to `peer` (the dialer re-establishes it later). If the handler had
  // been told the peer was connected, on_peer_disconnected(peer, reason) follows from the
  // io_context, not from inside this call.
  void disconnect(NodeId peer, std::string_view reason);
  bool is_connected(NodeId peer) const;
  // Bytes queued (or being written) for `peer`; 0 if not connected.
  std::size_t send_queue_bytes(NodeId peer) const;

 private:
  struct Connection;  // defined in transport_tcp.cpp
  struct PeerSlot {
    TransportPeer config;
    boost::asio::ip::address address;
    std::shared_ptr<Connection> connection;  // dialing, or known to be this peer
    std::unique_ptr<boost::asio::steady_timer> redial_timer;
    Duration redial_delay;
    // disconnect() defers on_peer_disconnected; it is delivered before any later callback.
    bool disconnect_notice_pending = false;
    std::string disconnect_notice_reason;
  };
  struct Lifetime {
    bool alive = true;
  };

  Status validate_and_index_peers();
  PeerSlot* slot_of(NodeId peer);
  const PeerSlot* slot_of(NodeId peer) const;
  bool is_dialer_for(NodeId peer) const { return config_.self < peer; }

  void accept_next();
  void on_accepted(const boost::system::error_code& error, boost::asio::ip::tcp::socket socket);
  void dial(PeerSlot& slot);
  void on_dialed(const std::shared_ptr<Connection>& connection,
                 const boost::system::error_code& error);
  void schedule_redial(PeerSlot& slot);
  void arm_deadline(const std::shared_ptr<Connection>& connection, Duration timeout);

  void read_next(const std::shared_ptr<Connection>& connection);
  void on_read(const std::shared_ptr<Connection>& connection,
               const boost::system::error_code& error, std::size_t size_bytes);
  void process_frames(const std::shared_ptr<Connection>& connection);
  bool handle_first_frame(const std::shared_ptr<Connection>& connection, wire::Frame& frame);
  bool accept_hello(const std::shared_ptr<Connection>& connection, const wire::Hello& hello);

  void write_next(const std::shared_ptr<Connection>& connection);
  void on_written(const std::shared_ptr<Connection>& connection,
                  const boost::system::error_code& error);

  // Closes `connection`; tells the handler (with `reason`) if it had been announced, logs the
  // reason otherwise, and schedules a redial if this node is the dialer.
  void fail(const std::shared_ptr<Connection>& connection, std::string_view reason);
  void refuse_anonymous(const std::shared_ptr<Connection>& connection, std::string_view reason);
  void deliver_disconnect_notice(PeerSlot& slot);
  void log(std::string_view text) const;

  boost::asio::io_context& io_;
  TransportConfig config_;
  TransportHandler& handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_timer_;
  std::vector<PeerSlot> peers_;
  std::vector<std::shared_ptr<Connection>> anonymous_;
  std::shared_ptr<Lifetime> lifetime_;
  std::uint16_t listen_port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace ditto::datapath
