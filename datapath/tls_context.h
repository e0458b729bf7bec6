// TLS for the daemon's sockets (peer transport and NBD export): OpenSSL through
// boost::asio::ssl, TLS 1.3 only, mutual certificate authentication.
//
// One context serves both ends of a connection (the dialer's client handshake and the
// acceptor's server handshake): it holds our certificate chain and private key, trusts exactly
// the certificates signed by the configured CA, and requires the peer to present one
// (verify_peer | verify_fail_if_no_peer_cert). Any certificate the CA signed is accepted: the
// certificate proves membership, not which node or client it is (the peer transport's
// shared-secret handshake and Hello checks still run on top).
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace ditto::datapath {

// PEM files. All three are required.
struct TlsFiles {
  std::string ca_file;           // CA certificate(s) that sign the peers' certificates
  std::string certificate_file;  // our certificate (chain), leaf first
  std::string private_key_file;  // the key of our certificate (not encrypted)

  bool empty() const {
    return ca_file.empty() && certificate_file.empty() && private_key_file.empty();
  }
  friend bool operator==(const TlsFiles&, const TlsFiles&) = default;
};

// The layout of a qemu-nbd / nbdkit --tls-certificates directory for a server:
// DIR/ca-cert.pem, DIR/server-cert.pem, DIR/server-key.pem.
TlsFiles nbd_server_tls_files(std::string_view directory);

// Loads the files and builds the context. An error names the file and OpenSSL's reason, e.g.
// "tls certificate /etc/ditto/alpha.pem: cannot read it: No such file or directory" or
// "tls private key /etc/ditto/beta.key: it does not match the certificate
// /etc/ditto/alpha.pem (key values mismatch)".
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_context(const TlsFiles& files);

// A failed handshake's reason for a log line: OpenSSL's reason ("peer did not return a
// certificate", "certificate verify failed", "wrong version number", ...) plus, when the
// peer's certificate was rejected, why (`verify_result` from SSL_get_verify_result; 0 = none).
std::string tls_failure_text(const boost::system::error_code& error, long verify_result);

}  // namespace ditto::datapath
