// The NBD server: fixed-newstyle handshake, then transmission with several requests in flight
// per connection (replies may go out of order), a bound on requests in flight per connection
// (the socket is not read while the bound is reached), and many connections at once. Runs on
// ONE io_context thread: no locks. The storage behind an export is an NbdBackend.
#pragma once

#include <boost/asio.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "datapath/nbd_protocol.h"
#include "datapath/tls_context.h"

namespace ditto::datapath {

// A buffer the backend hands out (so the daemon can give 4096-aligned memory suitable for
// O_DIRECT and avoid copies). `token` identifies it to the backend.
struct NbdBuffer {
  std::uint8_t* data = nullptr;
  std::size_t size_bytes = 0;
  std::uint64_t token = 0;
};

class NbdBackend {
 public:
  virtual ~NbdBackend() = default;
  virtual std::vector<NbdExportInfo> list_exports() = 0;
  // A client selected an export (OPT_GO / OPT_EXPORT_NAME). An error reaches the client as
  // NBD_REP_ERR_POLICY with the message text for OPT_GO, or a closed connection for
  // EXPORT_NAME. Returns a session id.
  virtual Result<std::uint64_t> open_export(std::string_view name) = 0;
  virtual void close_export(std::uint64_t session) = 0;  // connection ended, no I/O in flight
  virtual NbdBuffer allocate_buffer(std::size_t size_bytes) = 0;  // data == nullptr → busy
  virtual void release_buffer(const NbdBuffer& buffer) = 0;
  // Start one I/O. For reads the backend fills `buffer`; for writes it reads it. The backend
  // calls `done(error)` exactly once (0 or an NBD errno value such as EIO = 5), on the same
  // io_context thread — possibly before submit returns. Flush, trim, write_zeroes and cache
  // get an empty buffer.
  virtual void submit(std::uint64_t session, const NbdIo& io, const NbdBuffer& buffer,
                      std::function<void(std::uint32_t nbd_error)> done) = 0;
  // Bracket the submit() calls a connection makes for the requests of one read from its socket
  // (they nest): the backend may hold its own submissions back until the end, so a batch of
  // requests reaches the disk with one system call, in the handler that parsed them.
  virtual void begin_submissions() {}
  virtual void end_submissions() {}
};

// A connection in negotiation moving to another NbdServer (a daemon-wide listener handing a
// client to the shard of the resource it asked for): the socket, the input not yet processed
// (starting with the OPT_GO / EXPORT_NAME that chose the export) and what was negotiated.
struct NbdHandOff {
  std::string export_name;
  int descriptor = -1;  // the socket, released from the first server; the receiver owns it
  int family = 0;       // socket(2) family and protocol, to adopt it
  int protocol = 0;
  std::vector<std::uint8_t> input;
  bool fixed_newstyle = false;
  bool no_zeroes = false;
  bool structured_replies = false;
  std::uint32_t options_count = 0;
};

struct NbdServerOptions {
  // Requests parsed but not yet answered, per connection. At the bound the socket is not read.
  std::uint32_t requests_in_flight_max = 64;
  std::uint32_t connections_max = 1024;
  // Handshake DoS caps (§6): longer options close the connection; so do too many options.
  std::uint32_t option_length_max_bytes = 1024 * 1024;
  std::uint32_t options_per_connection_max = 1024;
  // Advertised in NBD_INFO_BLOCK_SIZE and enforced on READ/WRITE.
  std::uint32_t block_size_minimum_bytes = 1;
  std::uint32_t block_size_preferred_bytes = 4096;
  std::uint32_t payload_size_max_bytes = nbd::payload_size_max_bytes;
  // A WRITE above the maximum but at most this large is consumed and answered EINVAL; above
  // it the connection is closed.
  std::uint32_t write_skip_max_bytes = 2 * nbd::payload_size_max_bytes;
  std::size_t receive_buffer_bytes = 64 * 1024;
  // How long to wait before retrying allocate_buffer after the backend said busy.
  std::uint32_t buffer_retry_us = 200;
  // TLS required when set (the "FORCEDTLS" mode, reference/nbd-protocol.md §8): before
  // NBD_OPT_STARTTLS every option but ABORT gets NBD_REP_ERR_TLS_REQD and EXPORT_NAME closes
  // the connection; after it negotiation and transmission run over TLS 1.3 with a client
  // certificate signed by the context's CA (make_tls_context). Null: no TLS (STARTTLS gets
  // NBD_REP_ERR_UNSUP).
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  // A daemon-wide listener: an OPT_GO or EXPORT_NAME for an export `routes_export` says lives
  // elsewhere goes to `hand_off` (after the replies to earlier options are written) instead of
  // being answered here; this server then forgets the connection. Unset: every export is local.
  // Not combined with tls_context (a TLS session is not moved).
  std::function<bool(const std::string& export_name)> routes_export;
  std::function<void(NbdHandOff)> hand_off;
};

namespace nbd_detail {
class Connection;
}

class NbdServer {
 public:
  NbdServer(boost::asio::io_context& io_context, NbdBackend& backend, NbdServerOptions options);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  [[nodiscard]] Status listen_tcp(std::string address, std::uint16_t port);  // 0 → ephemeral
  [[nodiscard]] Status listen_unix(std::string path);
  std::uint16_t tcp_port() const;
  // Takes over a connection another server handed off (NbdHandOff) and continues its
  // negotiation here. On a stopped server the socket is closed.
  void adopt(NbdHandOff hand_off);
  // Closes the listeners and every connection. In-flight backend I/Os still complete; each
  // connection calls close_export after its last one.
  void stop();

  std::size_t connection_count() const { return connections_.size(); }

 private:
  using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;
  friend class nbd_detail::Connection;

  [[nodiscard]] Status listen(const boost::asio::generic::stream_protocol::endpoint& endpoint,
                              std::string_view what);
  void accept(Acceptor& acceptor);
  void forget(nbd_detail::Connection* connection);

  boost::asio::io_context& io_context_;
  NbdBackend& backend_;
  NbdServerOptions options_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;
  std::uint16_t tcp_port_ = 0;
  std::string unix_path_;
  std::uint64_t connections_accepted_ = 0;  // numbers connections in log lines
  std::unordered_set<std::shared_ptr<nbd_detail::Connection>> connections_;
  bool stopped_ = false;
};

}  // namespace ditto::datapath
