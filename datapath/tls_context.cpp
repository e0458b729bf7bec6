#include "datapath/tls_context.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ditto::datapath {
namespace {

namespace ssl = boost::asio::ssl;

// OpenSSL's reason for the last failure on this thread, and an empty error queue after it.
std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  std::string reason;
  if (code != 0) {
    const char* text = ERR_reason_error_string(code);
    reason = text != nullptr ? text : "OpenSSL error " + std::to_string(code);
  } else {
    reason = "unknown OpenSSL error";
  }
  ERR_clear_error();
  return reason;
}

// Empty when `path` can be opened for reading; otherwise why not.
std::string unreadable(const std::string& path) {
  if (path.empty()) return "no file named";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot read it: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

Status load_ca(SSL_CTX* context, const std::string& path) {
  const std::string what = "tls CA file " + path + ": ";
  if (std::string problem = unreadable(path); !problem.empty()) return Error{what + problem};
  if (SSL_CTX_load_verify_locations(context, path.c_str(), nullptr) != 1) {
    return Error{what + "not a PEM CA certificate (" + openssl_reason() + ")"};
  }
  return Status::success();
}

Status load_certificate(SSL_CTX* context, const std::string& path) {
  const std::string what = "tls certificate " + path + ": ";
  if (std::string problem = unreadable(path); !problem.empty()) return Error{what + problem};
  if (SSL_CTX_use_certificate_chain_file(context, path.c_str()) != 1) {
    return Error{what + "not a usable PEM certificate (" + openssl_reason() + ")"};
  }
  return Status::success();
}

Status load_private_key(SSL_CTX* context, const TlsFiles& files) {
  const std::string& path = files.private_key_file;
  const std::string what = "tls private key " + path + ": ";
  if (std::string problem = unreadable(path); !problem.empty()) return Error{what + problem};
  if (SSL_CTX_use_PrivateKey_file(context, path.c_str(), SSL_FILETYPE_PEM) != 1) {
    const unsigned long code = ERR_peek_last_error();
    if (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH) {
      return Error{what + "it does not match the certificate " + files.certificate_file + " (" +
                   openssl_reason() + ")"};
    }
    return Error{what + "not a usable unencrypted PEM private key (" + openssl_reason() + ")"};
  }
  if (SSL_CTX_check_private_key(context) != 1) {
    return Error{what + "it does not match the certificate " + files.certificate_file + " (" +
                 openssl_reason() + ")"};
  }
  return Status::success();
}

}  // namespace

TlsFiles nbd_server_tls_files(std::string_view directory) {
  const std::string base = std::string(directory) + "/";
  return TlsFiles{base + "ca-cert.pem", base + "server-cert.pem", base + "server-key.pem"};
}

Result<std::shared_ptr<ssl::context>> make_tls_context(const TlsFiles& files) {
  ERR_clear_error();
  auto context = std::make_shared<ssl::context>(ssl::context::tls);
  SSL_CTX* native = context->native_handle();
  // TLS 1.3 only: no downgrade to protocol versions with weaker handshakes.
  if (SSL_CTX_set_min_proto_version(native, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(native, TLS1_3_VERSION) != 1) {
    return Error{"tls: this OpenSSL cannot restrict itself to TLS 1.3 (" + openssl_reason() +
                 ")"};
  }
  // No 0-RTT early data (replayable by design) and no renegotiation.
  SSL_CTX_set_max_early_data(native, 0);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  if (Status status = load_ca(native, files.ca_file); !status.ok()) return status.error();
  if (Status status = load_certificate(native, files.certificate_file); !status.ok()) {
    return status.error();
  }
  if (Status status = load_private_key(native, files); !status.ok()) return status.error();
  context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return context;
}

std::string tls_failure_text(const boost::system::error_code& error, long verify_result) {
  std::string text = error.message();
  if (error.category() == boost::asio::error::get_ssl_category() &&
      verify_result != X509_V_OK) {
    text += std::string(" (certificate: ") + X509_verify_cert_error_string(verify_result) + ")";
  }
  if (error == boost::asio::error::eof || error == boost::asio::ssl::error::stream_truncated) {
    text = "the peer closed the connection during the handshake (" + error.message() + ")";
  }
  return text;
}

}  // namespace ditto::datapath
