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
// - Authentication (when TransportConfig::shared_secret is set; transport_auth.h): before the
//   Hello each side sends a wire::AuthChallenge and answers the other's with a wire::AuthResponse.
//   The handler hears of the peer (on_peer_connected) only after the peer's response verified;
//   a wrong response, a missing one, a wrong protocol version or garbage closes the connection
//   with a logged reason. Auth frames never reach the handler.
// - TLS (when TransportConfig::tls names the files; tls_context.h): right after TCP connects,
//   before any frame, the dialer runs a TLS 1.3 client handshake and the acceptor a server
//   handshake, each requiring the other's certificate signed by the configured CA. A peer
//   without one, with one from another CA, or speaking anything but TLS is closed with a logged
//   reason before a single frame of it is decoded. The peer's certificate must name the peer
//   (its `on HOST` name in subjectAltName DNS, or the CN without one): the dialer checks the
//   peer it dialed, the acceptor the peer an identified connection claims to be, before the
//   handler hears of it. The shared-secret handshake, Hello and everything after run inside
//   TLS.
// - Keepalive: every ping_interval a wire::Ping goes out; a peer that sends nothing at all for
//   ping_timeout after it is disconnected. Ping/PingAck never reach the handler.
// - Multi-path: a peer may have several addresses (paths). A dial that fails, or an established
//   connection that breaks, moves the next dial to the next path; the acceptor listens on its
//   own address and on every path's local address.
// - StandAlone (set_standalone; drbdsetup disconnect, a split brain left to the administrator):
//   the connection to that peer is dropped and stays down: no dial, and an inbound connection
//   that identifies itself as that peer is closed, until set_standalone(peer, false).
//
// Threading: everything runs on the io_context's single thread; no locks. Callbacks are never
// made from inside send() or disconnect() (no re-entry into the daemon); they come from
// completion handlers.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/types.h"
#include "core/wire.h"
#include "datapath/tls_context.h"
#include "datapath/transport_auth.h"

namespace ditto::datapath {

struct TransportAddress {
  std::string host;  // an IPv4 or IPv6 address literal
  std::uint16_t port = 0;
};

struct TransportPeer {
  NodeId node_id;
  std::string name;
  std::string host;  // an IPv4 or IPv6 address literal, as in a .res "address" line
  std::uint16_t port = 0;
  // Further paths to the peer, tried in order after host:port when a dial fails.
  std::vector<TransportAddress> more_paths;
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
  // Further local addresses to listen on (the local ends of multi-path connections). One that
  // cannot be bound is logged and skipped; listen_host:listen_port must bind.
  std::vector<TransportAddress> more_listen;
  // Peer authentication: both empty = off; otherwise both required (cram-hmac-alg, secret).
  std::string cram_hmac_algorithm;
  std::string shared_secret;
  // Keepalive (DRBD ping-int / ping-timeout).
  Duration ping_interval = Duration::from_ms(10'000);
  Duration ping_timeout = Duration::from_ms(500);
  // DRBD ko-count (0 = off) and timeout: a peer that answers none of the requests it has
  // pending for ko_count × request_timeout is disconnected. Enforced by the daemon, which knows
  // what is pending (ResourceRunner::check_ko_count); stored and adjusted here with the rest.
  std::uint32_t ko_count = 7;
  Duration request_timeout = Duration::from_ms(6'000);
  // TLS 1.3 with mutual certificates: all empty = off; otherwise all three required.
  TlsFiles tls;
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
  // Applies a changed configuration to the running transport (dittoadm adjust;
  // transport_adjust.cpp): keepalive and reconnect timings, deadlines, ko-count, the shared
  // secret (for handshakes from now on) and the paths of each peer (new local addresses are
  // listened on, removed ones closed; a connection over a removed path is dropped and redialed).
  // Everything else (own id and address, resource name, the set of peers, TLS files) must be
  // unchanged: otherwise an error, and nothing changed.
  [[nodiscard]] Status adjust(const TransportConfig& updated);
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
  // StandAlone on (drbdsetup disconnect, core::Disconnect without reconnect): drops the
  // connection as disconnect() does and keeps the peer away until it is turned off again, which
  // dials at once if this node is the dialer (transport_adjust.cpp).
  void set_standalone(NodeId peer, bool standalone, std::string_view reason = "StandAlone");
  bool is_standalone(NodeId peer) const;
  bool is_connected(NodeId peer) const;
  // The index of the path (0 = host:port, then more_paths) the peer is connected over, or -1.
  int connected_path(NodeId peer) const;
  // Bytes queued (or being written) for `peer`; 0 if not connected.
  std::size_t send_queue_bytes(NodeId peer) const;

 private:
  struct Connection;  // defined in transport_tcp.cpp
  struct PeerSlot {
    TransportPeer config;
    std::vector<boost::asio::ip::address> addresses;  // [0] = config.host, then more_paths
    std::size_t path_index = 0;                        // the path the next dial uses
    std::shared_ptr<Connection> connection;  // dialing, or known to be this peer
    std::unique_ptr<boost::asio::steady_timer> redial_timer;
    Duration redial_delay;
    bool standalone = false;  // set_standalone: no dial, inbound connections refused
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

  Status listen_on(const TransportAddress& address);
  // adjust() helpers (transport_adjust.cpp).
  Status check_adjustable(const TransportConfig& updated) const;
  void adjust_listening(const TransportConfig& updated);
  void adjust_paths(PeerSlot& slot, const TransportPeer& updated);
  void accept_next(std::size_t acceptor_index);
  void on_accepted(std::size_t acceptor_index, const boost::system::error_code& error,
                   boost::asio::ip::tcp::socket socket);
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
  bool adopt(const std::shared_ptr<Connection>& connection, NodeId peer);

  // Authentication (transport_handshake.cpp).
  bool authenticating(const Connection& connection) const;
  void start_authentication(const std::shared_ptr<Connection>& connection);
  bool handle_auth_frame(const std::shared_ptr<Connection>& connection, wire::Frame& frame);
  bool on_auth_challenge(const std::shared_ptr<Connection>& connection,
                         const wire::AuthChallenge& challenge);
  bool on_auth_response(const std::shared_ptr<Connection>& connection,
                        const wire::AuthResponse& response);
  std::string challenge_problem(const Connection& connection,
                                const wire::AuthChallenge& challenge) const;
  // TLS (transport_tls.cpp).
  void start_tls_handshake(const std::shared_ptr<Connection>& connection);
  void on_tls_handshake(const std::shared_ptr<Connection>& connection,
                        const boost::system::error_code& error);
  // With TLS: true when the peer's certificate names `peer`; otherwise fails the connection
  // with the reason (the names found) and returns false.
  bool certificate_names_peer(const std::shared_ptr<Connection>& connection, NodeId peer);
  // A dialed connection is connected (and through TLS, if on): authenticate or announce it.
  void on_dialed_ready(const std::shared_ptr<Connection>& connection);
  // Keepalive (transport_handshake.cpp).
  void start_keepalive(const std::shared_ptr<Connection>& connection);
  void arm_keepalive(const std::shared_ptr<Connection>& connection, Duration delay);
  void on_keepalive_timer(const std::shared_ptr<Connection>& connection);
  bool handle_keepalive_frame(const std::shared_ptr<Connection>& connection,
                              const wire::Message& message);
  // Queues a frame on any open connection (announced or not).
  void enqueue(const std::shared_ptr<Connection>& connection, const wire::Message& message,
               std::span<const std::uint8_t> payload = {});

  void schedule_write(const std::shared_ptr<Connection>& connection);
  void write_next(const std::shared_ptr<Connection>& connection);
  void on_written(const std::shared_ptr<Connection>& connection,
                  const boost::system::error_code& error);

  // Closes `connection`; tells the handler (with `reason`) if it had been announced, logs the
  // reason otherwise, and schedules a redial if this node is the dialer.
  void fail(const std::shared_ptr<Connection>& connection, std::string_view reason);
  void refuse_anonymous(const std::shared_ptr<Connection>& connection, std::string_view reason);
  void deliver_disconnect_notice(PeerSlot& slot);
  // disconnect(), optionally letting the queued frames go out first (drain).
  void drop_connection(NodeId peer, std::string_view reason, bool drain);
  void log(std::string_view text) const;

  boost::asio::io_context& io_;
  TransportConfig config_;
  TransportHandler& handler_;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  std::optional<AuthKey> auth_key_;
  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // null: TLS off
  boost::asio::steady_timer accept_retry_timer_;
  std::vector<PeerSlot> peers_;
  std::vector<std::shared_ptr<Connection>> anonymous_;
  std::shared_ptr<Lifetime> lifetime_;
  std::uint16_t listen_port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace ditto::datapath
