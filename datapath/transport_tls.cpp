// TcpTransport's TLS handshake (see transport_tcp.h for the rules): it runs right after TCP
// connects and before any frame; a failure closes the connection with OpenSSL's reason. The
// peer's certificate must also name the peer (its `on HOST` name): the dialer checks the peer
// it dialed as soon as the handshake completes, the acceptor checks the peer a connection
// claims to be before adopting it (certificate_names_peer).
#include <openssl/ssl.h>

#include <string>

#include "core/assert.h"
#include "datapath/transport_connection.h"
#include "datapath/transport_tcp.h"

namespace ditto::datapath {

void TcpTransport::start_tls_handshake(const std::shared_ptr<Connection>& connection) {
  DITTO_ASSERT(tls_context_ != nullptr);
  DITTO_ASSERT(!connection->closed && !connection->tls_done && !connection->announced);
  connection->stream.start_tls(*tls_context_);
  const auto type = connection->dialed ? boost::asio::ssl::stream_base::client
                                       : boost::asio::ssl::stream_base::server;
  connection->stream.tls().async_handshake(
      type, [this, lifetime = lifetime_, connection](const boost::system::error_code& error) {
        if (!lifetime->alive || connection->closed) return;
        on_tls_handshake(connection, error);
      });
}

void TcpTransport::on_tls_handshake(const std::shared_ptr<Connection>& connection,
                                    const boost::system::error_code& error) {
  DITTO_ASSERT(!connection->closed && !connection->tls_done);
  if (error) {
    const long verify_result = SSL_get_verify_result(connection->stream.tls().native_handle());
    fail(connection, "TLS handshake failed: " + tls_failure_text(error, verify_result));
    return;
  }
  connection->tls_done = true;
  if (connection->dialed && !certificate_names_peer(connection, connection->peer)) return;
  if (connection->dialed) {
    on_dialed_ready(connection);  // authenticates or announces, and starts reading
    return;
  }
  read_next(connection);  // the first frame must now be an AuthChallenge or a Hello
}

bool TcpTransport::certificate_names_peer(const std::shared_ptr<Connection>& connection,
                                          NodeId peer) {
  if (tls_context_ == nullptr) return true;
  DITTO_ASSERT(connection->tls_done && !connection->closed);
  const PeerSlot* slot = slot_of(peer);
  DITTO_ASSERT(slot != nullptr);
  X509* certificate = SSL_get0_peer_certificate(connection->stream.tls().native_handle());
  const std::string problem = certificate_name_problem(certificate, slot->config.name);
  if (problem.empty()) return true;
  fail(connection, "TLS certificate refused: " + connection->remote + " claims to be node " +
                       std::to_string(unsigned{peer.value}) + " ('" + slot->config.name +
                       "') but " + problem);
  return false;
}

}  // namespace ditto::datapath
