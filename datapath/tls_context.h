// TLS for the daemon's sockets (peer transport and NBD export): OpenSSL through
// boost::asio::ssl, TLS 1.3 only, mutual certificate authentication.
//
// One context serves both ends of a connection (the dialer's client handshake and the
// acceptor's server handshake): it holds our certificate chain and private key, trusts exactly
// the certificates signed by the configured CA, and requires the peer to present one
// (verify_peer | verify_fail_if_no_peer_cert). The context accepts any certificate the CA
// signed; which node a certificate belongs to is checked by the peer transport once it knows
// which peer the connection claims to be (certificate_name_problem below: the certificate must
// name the peer's `on HOST` name). NBD clients' certificates prove membership only.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>
#include <openssl/x509.h>
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

// The names a certificate carries, for log lines: its subjectAltName DNS entries, then its
// subject CN, e.g. "DNS:gamma, DNS:localhost, CN=gamma"; "no names" when it has neither.
std::string certificate_names_text(X509* certificate);

// Empty when `certificate` names `host_name`, else why not (with the names it carries).
// Matching is OpenSSL's X509_check_host: the subjectAltName DNS entries, or the subject CN
// when the certificate has no DNS entry; no partial-label wildcards ("a*.example").
std::string certificate_name_problem(X509* certificate, std::string_view host_name);

}  // namespace ditto::datapath
