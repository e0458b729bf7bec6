// A socket that may be switched to TLS in place: plain reads and writes until start_tls(), then
// the same calls go through an OpenSSL stream layered on the same socket. It models Asio's
// AsyncReadStream and AsyncWriteStream, so asio::async_read / async_write work on it either way
// (the NBD server switches after NBD_OPT_STARTTLS; the peer transport right after connect).
//
// One read and one write may be outstanding at a time (as for ssl::stream). The socket and the
// context must outlive the stream's TLS layer; close() closes the socket without a TLS
// close_notify (the peers of both users tolerate that; async_shutdown() sends one first).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <memory>
#include <utility>

#include "core/assert.h"

namespace ditto::datapath {

template <typename Socket>
class TlsStream {
 public:
  using executor_type = typename Socket::executor_type;
  using TlsLayer = boost::asio::ssl::stream<Socket&>;

  explicit TlsStream(Socket socket) : socket_(std::move(socket)) {}
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  Socket& socket() { return socket_; }
  bool is_tls() const { return tls_ != nullptr; }
  // The TLS layer (for the handshake and SSL_* queries); only after start_tls().
  TlsLayer& tls() {
    DITTO_ASSERT(tls_ != nullptr);
    return *tls_;
  }
  // From now on reads and writes are TLS records; run tls().async_handshake() first.
  void start_tls(boost::asio::ssl::context& context) {
    DITTO_ASSERT(tls_ == nullptr);
    tls_ = std::make_unique<TlsLayer>(socket_, context);
  }
  void close(boost::system::error_code& error) { socket_.close(error); }

  template <typename MutableBuffers, typename Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }
  template <typename ConstBuffers, typename Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  Socket socket_;
  std::unique_ptr<TlsLayer> tls_;
};

}  // namespace ditto::datapath
