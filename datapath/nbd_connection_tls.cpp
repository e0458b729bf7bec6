// NBD_OPT_STARTTLS and the TLS-required mode of one NBD connection (reference/nbd-protocol.md
// §8). The STARTTLS ACK is the last plain byte the server sends; once it is written the TLS
// handshake runs on the same socket (bytes the client sent early are handed to it), then the
// option haggling starts over inside TLS with the negotiated state forgotten.
#include <openssl/ssl.h>

#include <cstdio>

#include "core/assert.h"
#include "datapath/nbd_connection.h"
#include "datapath/tls_context.h"

namespace ditto::datapath::nbd_detail {

namespace asio = boost::asio;

bool Connection::refuse_before_tls(const nbd::OptionRequest& request) {
  if (options_.tls_context == nullptr || tls_active_) return false;
  switch (request.kind) {
    case nbd::OptionKind::abort:
    case nbd::OptionKind::starttls:
      return false;
    case nbd::OptionKind::export_name:
      // EXPORT_NAME cannot carry an error: the only refusal is a hard disconnect (§8).
      die("EXPORT_NAME before STARTTLS: this server requires TLS");
      return true;
    default:
      if (!tls_refusal_logged_) {
        tls_refusal_logged_ = true;
        std::fprintf(stderr, "nbd: connection %llu: option %u refused: TLS is required and the "
                     "client has not sent NBD_OPT_STARTTLS\n",
                     static_cast<unsigned long long>(number_), unsigned{request.option});
      }
      queue_bytes(nbd::encode_option_error(
          request.option, nbd::rep_err_tls_reqd,
          "this server requires TLS: send NBD_OPT_STARTTLS first (nbds:// with a client "
          "certificate)"));
      return true;
  }
}

void Connection::handle_starttls(const nbd::OptionRequest& request) {
  DITTO_ASSERT(phase_ == Phase::options);
  if (options_.tls_context == nullptr) {
    return queue_bytes(nbd::encode_option_error(request.option, nbd::rep_err_unsup,
                                                "TLS is not enabled on this server"));
  }
  if (tls_active_) {
    return queue_bytes(nbd::encode_option_error(request.option, nbd::rep_err_invalid,
                                                "TLS is already active"));
  }
  queue_bytes(nbd::encode_option_ack(request.option));
  // Stop parsing at this option boundary: what follows is the client's TLS handshake.
  phase_ = Phase::tls_handshake;
  if (!writing_) start_tls_handshake();
}

void Connection::start_tls_handshake() {
  DITTO_ASSERT(phase_ == Phase::tls_handshake && outgoing_.empty() && !writing_);
  if (socket_.is_tls()) return;  // already running
  DITTO_ASSERT(!reading_);
  socket_.start_tls(*options_.tls_context);
  // The handshake is this connection's outstanding read: maybe_finish waits for it.
  reading_ = true;
  socket_.tls().async_handshake(
      asio::ssl::stream_base::server, asio::buffer(available().data(), available().size()),
      [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
        self->on_tls_handshake(error);
      });
}

void Connection::on_tls_handshake(const boost::system::error_code& error) {
  reading_ = false;
  if (phase_ == Phase::dead) return maybe_finish();
  consume(available().size());  // the early bytes went into the handshake
  if (error) {
    // No downgrade after the ACK (§8): the connection ends here.
    const long verify_result = SSL_get_verify_result(socket_.tls().native_handle());
    return die("TLS handshake failed: " + tls_failure_text(error, verify_result));
  }
  tls_active_ = true;
  structured_replies_ = false;  // STARTTLS wipes what was negotiated before it
  phase_ = Phase::options;
  read_some();
}

}  // namespace ditto::datapath::nbd_detail
