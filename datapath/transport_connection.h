// TcpTransport's per-connection state, shared by transport_tcp.cpp and transport_handshake.cpp.
// Private to the transport: include only from transport_*.cpp.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "datapath/tls_stream.h"
#include "datapath/transport_tcp.h"

namespace ditto::datapath {

struct TcpTransport::Connection {
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;
  explicit Connection(tcp::socket connected_socket)
      : stream(std::move(connected_socket)),
        deadline(stream.get_executor()),
        keepalive(stream.get_executor()) {}

  tcp::socket& socket() { return stream.socket(); }

  void close() {
    closed = true;
    error_code ignored;
    stream.close(ignored);
    deadline.cancel();
    keepalive.cancel();
  }

  // The TCP socket; with TLS configured, a TLS 1.3 stream over it from right after connect.
  TlsStream<tcp::socket> stream;
  boost::asio::steady_timer deadline;
  std::uint64_t deadline_generation = 0;  // a fired wait for an older generation is stale
  std::string remote;                     // for log lines
  bool dialed = false;
  bool has_peer = false;  // dialed, or accepted and identified by its Hello
  NodeId peer;
  bool announced = false;  // on_peer_connected was called for it
  bool hello_received = false;
  bool closed = false;
  bool draining = false;  // dropped; closes once its queued frames are written
  bool tcp_connected = false;  // a dial that never connected moves on to the next path
  bool tls_done = false;       // the TLS handshake completed (only with TLS configured)
  std::size_t path_index = 0;

  // Authentication (only with a shared secret).
  bool auth_done = false;
  bool challenge_received = false;
  NodeId claimed_peer;  // an accepted connection's AuthChallenge sender, before adoption
  std::vector<std::uint8_t> local_challenge;
  std::vector<std::uint8_t> peer_challenge;

  // Keepalive.
  boost::asio::steady_timer keepalive;
  std::uint64_t keepalive_generation = 0;
  std::uint64_t ping_sequence = 0;
  bool ping_outstanding = false;
  bool received_since_ping = false;

  std::vector<std::uint8_t> receive_buffer;
  std::size_t received_bytes = 0;

  std::deque<std::vector<std::uint8_t>> send_queue;  // whole frames; the first ones in flight
  std::size_t send_queue_bytes = 0;
  std::size_t frames_in_flight = 0;
  bool write_scheduled = false;  // a posted write_next is pending (schedule_write)
  std::vector<boost::asio::const_buffer> write_buffers;
  // With TLS a batch of frames is copied into one buffer: one record and one system call
  // rather than one per frame (ssl::stream writes one buffer per call).
  std::vector<std::uint8_t> tls_write_batch;
};

}  // namespace ditto::datapath
