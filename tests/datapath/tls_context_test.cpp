// make_tls_context: good files give a context; each bad file gives an error naming the file
// and OpenSSL's reason, never an abort.
#include "datapath/tls_context.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

}  // namespace
}  // namespace ditto::datapath
