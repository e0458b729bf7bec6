// make_tls_context: good files give a context; each bad file gives an error naming the file
// and OpenSSL's reason, never an abort. certificate_name_problem: a certificate names a host by
// its subjectAltName DNS entries, or by its CN when it has none.
#include "datapath/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "tls_test_certificates.h"

namespace ditto::datapath {
namespace {

class TlsContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = std::filesystem::temp_directory_path().string() + "/ditto-tls-context-" +
                 std::to_string(::getpid());
    std::string error;
    ASSERT_TRUE(testing::make_test_certificates(directory_, error)) << error;
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(directory_); }
  static std::string path(const std::string& name) { return directory_ + "/" + name; }
  static TlsFiles alpha() {
    return {path("good/ca-cert.pem"), path("good/alpha-cert.pem"), path("good/alpha-key.pem")};
  }
  static std::string error_of(const TlsFiles& files) {
    auto context = make_tls_context(files);
    EXPECT_FALSE(context.ok());
    return context.ok() ? std::string() : context.error().message;
  }
  static inline std::string directory_;
};

TEST_F(TlsContextTest, AMatchingCertificateKeyAndCaGiveAContext) {
  auto context = make_tls_context(alpha());
  ASSERT_TRUE(context.ok()) << context.error().message;
  EXPECT_NE(context.value(), nullptr);
}

TEST_F(TlsContextTest, TheNbdDirectoryLayoutIsTheOneQemuNbdAndNbdkitUse) {
  const TlsFiles files = nbd_server_tls_files(path("nbd"));
  EXPECT_EQ(files.ca_file, path("nbd/ca-cert.pem"));
  EXPECT_EQ(files.certificate_file, path("nbd/server-cert.pem"));
  EXPECT_EQ(files.private_key_file, path("nbd/server-key.pem"));
  auto context = make_tls_context(files);
  EXPECT_TRUE(context.ok()) << (context.ok() ? "" : context.error().message);
}

TEST_F(TlsContextTest, AMissingFileIsNamedWithTheSystemsReason) {
  for (int which = 0; which < 3; ++which) {
    TlsFiles files = alpha();
    std::string& missing = which == 0   ? files.ca_file
                           : which == 1 ? files.certificate_file
                                        : files.private_key_file;
    missing = path("no-such.pem");
    const std::string error = error_of(files);
    EXPECT_NE(error.find(path("no-such.pem")), std::string::npos) << error;
    EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
  }
}

TEST_F(TlsContextTest, AKeyThatDoesNotMatchTheCertificateIsRefused) {
  TlsFiles files = alpha();
  files.private_key_file = path("good/beta-key.pem");
  const std::string error = error_of(files);
  EXPECT_NE(error.find("beta-key.pem: it does not match the certificate"), std::string::npos)
      << error;
  EXPECT_NE(error.find("alpha-cert.pem"), std::string::npos) << error;
}

TEST_F(TlsContextTest, AFileThatIsNotPemIsRefusedWithOpenSslsReason) {
  std::ofstream(path("garbage.pem")) << "this is not a certificate\n";
  for (int which = 0; which < 3; ++which) {
    TlsFiles files = alpha();
    std::string& bad = which == 0   ? files.ca_file
                       : which == 1 ? files.certificate_file
                                    : files.private_key_file;
    bad = path("garbage.pem");
    const std::string error = error_of(files);
    EXPECT_NE(error.find(path("garbage.pem") + ": not a"), std::string::npos) << error;
    EXPECT_NE(error.find("("), std::string::npos) << error;  // OpenSSL's reason follows
  }
}

TEST_F(TlsContextTest, AnEmptyFileNameIsAnErrorNotACrash) {
  TlsFiles files = alpha();
  files.ca_file.clear();
  EXPECT_NE(error_of(files).find("no file named"), std::string::npos);
}

// ---- Certificate names ----

struct X509Deleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
using Certificate = std::unique_ptr<X509, X509Deleter>;

Certificate load_certificate(const std::string& file) {
  std::FILE* in = std::fopen(file.c_str(), "r");
  EXPECT_NE(in, nullptr) << file;
  if (in == nullptr) return nullptr;
  Certificate certificate(PEM_read_X509(in, nullptr, nullptr, nullptr));
  std::fclose(in);
  EXPECT_NE(certificate, nullptr) << file;
  return certificate;
}

TEST_F(TlsContextTest, ACertificateNamesTheHostInItsSubjectAltNameDnsEntries) {
  const Certificate alpha = load_certificate(path("good/alpha-cert.pem"));
  EXPECT_EQ(certificate_name_problem(alpha.get(), "alpha"), "");
  EXPECT_EQ(certificate_name_problem(alpha.get(), "localhost"), "");
}

TEST_F(TlsContextTest, ACertificateForAnotherHostIsRefusedNamingWhatItCarries) {
  const Certificate gamma = load_certificate(path("good/gamma-cert.pem"));
  EXPECT_EQ(certificate_name_problem(gamma.get(), "alpha"),
            "its certificate names DNS:gamma, DNS:localhost, CN=gamma, not 'alpha'");
  // A name is a whole label sequence: neither a prefix nor a suffix of one matches.
  EXPECT_NE(certificate_name_problem(gamma.get(), "gam"), "");
  EXPECT_NE(certificate_name_problem(gamma.get(), "gamma.example"), "");
}

TEST_F(TlsContextTest, WithoutSubjectAltNameTheCommonNameNamesTheHost) {
  const Certificate beta = load_certificate(path("good/beta-cn-cert.pem"));
  EXPECT_EQ(certificate_name_problem(beta.get(), "beta"), "");
  EXPECT_EQ(certificate_name_problem(beta.get(), "alpha"),
            "its certificate names CN=beta, not 'alpha'");
}

TEST_F(TlsContextTest, ASubjectAltNameDnsEntryOverridesTheCommonName) {
  // CN=alpha, SAN DNS:gamma: the SAN is what names the host (RFC 6125), so not alpha.
  const Certificate mixed = load_certificate(path("good/alpha-cn-cert.pem"));
  EXPECT_EQ(certificate_name_problem(mixed.get(), "alpha"),
            "its certificate names DNS:gamma, CN=alpha, not 'alpha'");
  EXPECT_EQ(certificate_name_problem(mixed.get(), "gamma"), "");
}

TEST_F(TlsContextTest, NoCertificateIsAProblemNotACrash) {
  EXPECT_EQ(certificate_name_problem(nullptr, "alpha"), "it presented no certificate");
}

}  // namespace
}  // namespace ditto::datapath
