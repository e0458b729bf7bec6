#include "datapath/tls_context.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/assert.h"

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

std::string certificate_names_text(X509* certificate) {
  DITTO_ASSERT(certificate != nullptr);
  std::string text;
  // The names come from the peer: control characters would forge log lines.
  auto add = [&text](std::string name) {
    for (char& c : name) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    text += (text.empty() ? "" : ", ") + name;
  };
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    add("DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                             static_cast<std::size_t>(ASN1_STRING_length(dns))));
  }
  GENERAL_NAMES_free(names);
  const X509_NAME* subject = X509_get_subject_name(certificate);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    const ASN1_STRING* common_name = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, common_name);
    if (length >= 0) {
      add("CN=" + std::string(reinterpret_cast<const char*>(utf8),
                              static_cast<std::size_t>(length)));
    }
    OPENSSL_free(utf8);
  }
  return text.empty() ? "no names" : text;
}

std::string certificate_name_problem(X509* certificate, std::string_view host_name) {
  if (certificate == nullptr) return "it presented no certificate";
  const int matched = X509_check_host(certificate, host_name.data(), host_name.size(),
                                      X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr);
  if (matched == 1) return {};
  ERR_clear_error();
  return "its certificate names " + certificate_names_text(certificate) + ", not '" +
         std::string(host_name) + "'";
}

}  // namespace ditto::datapath
