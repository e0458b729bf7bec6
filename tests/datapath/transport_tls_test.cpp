// The peer transport over TLS checks that a peer's certificate names the peer it claims to be
// (its `on HOST` name): the dialer checks the node it dialed, the acceptor the node a connection
// identifies itself as (by its Hello, or by its AuthChallenge with a shared secret). A
// certificate from the right CA for another host is refused with a logged reason naming the
// resource, the peer and the names found, and the handler never hears of the connection.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "tls_test_certificates.h"
#include "transport_test_fixture.h"

namespace ditto::datapath {
namespace {

class TransportTlsTest : public TransportTest, public ::testing::WithParamInterface<bool> {
 protected:
  static void SetUpTestSuite() {
    directory_ = std::filesystem::temp_directory_path().string() + "/ditto-transport-tls-" +
                 std::to_string(::getpid());
    std::string error;
    ASSERT_TRUE(testing::make_test_certificates(directory_, error)) << error;
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(directory_); }

  // Node 0 is alpha, node 1 is beta; `certificates[id]` is the certificate each presents.
  void start_pair(const std::string& certificate0, const std::string& certificate1) {
    const std::string good = directory_ + "/good/";
    start_cluster({0, 1}, [&](TransportConfig& config) {
      for (TransportPeer& peer : config.peers)
        peer.name = peer.node_id.value == 0 ? "alpha" : "beta";
      const std::string& own = config.self.value == 0 ? certificate0 : certificate1;
      config.tls = {good + "ca-cert.pem", good + own + "-cert.pem", good + own + "-key.pem"};
      if (GetParam()) {
        config.cram_hmac_algorithm = "sha256";
        config.shared_secret = "secret";
      }
    });
  }
  static inline std::string directory_;
};

TEST_P(TransportTlsTest, PeersWhoseCertificatesNameThemConnect) {
  start_pair("alpha", "beta");
  EXPECT_TRUE(run_until([&] { return pair_ready(0, 1); }));
}

TEST_P(TransportTlsTest, TheDialerRefusesAPeerWhoseCertificateNamesAnotherHost) {
  ::testing::internal::CaptureStderr();
  start_pair("alpha", "gamma");
  run_for(400ms);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(handler(0).count(EventKind::connected, 1), 0);
  EXPECT_EQ(handler(1).count(EventKind::connected, 0), 0);
  EXPECT_TRUE(handler(1).messages_from(0).empty());
  EXPECT_NE(log.find("ditto transport [r0 node 0]: connection to node 1 refused: TLS "
                     "certificate refused: 127.0.0.1:"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("claims to be node 1 ('beta') but its certificate names DNS:gamma, "
                     "DNS:localhost, CN=gamma, not 'beta'"),
            std::string::npos)
      << log;
}

TEST_P(TransportTlsTest, TheAcceptorRefusesAPeerWhoseCertificateNamesAnotherHost) {
  ::testing::internal::CaptureStderr();
  start_pair("gamma", "beta");
  run_for(400ms);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(handler(1).count(EventKind::connected, 0), 0);
  EXPECT_TRUE(handler(1).messages_from(0).empty());
  EXPECT_NE(log.find("ditto transport [r0 node 1]: refused connection from 127.0.0.1:"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("claims to be node 0 ('alpha') but its certificate names DNS:gamma, "
                     "DNS:localhost, CN=gamma, not 'alpha'"),
            std::string::npos)
      << log;
}

INSTANTIATE_TEST_SUITE_P(WithAndWithoutSharedSecret, TransportTlsTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? std::string("SharedSecret")
                                                   : std::string("NoSecret");
                         });

}  // namespace
}  // namespace ditto::datapath
