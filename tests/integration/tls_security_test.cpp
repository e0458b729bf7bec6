// dittod with TLS 1.3 and mutual certificates (tls yes + the ditto file keywords; --nbd-tls):
// two peers with certificates from the cluster's CA replicate; a peer with a certificate from
// another CA, a peer with a certificate from the right CA for another host (a certificate must
// name the `on HOST` its owner claims to be), a client without a certificate, garbage bytes and
// the replayed bytes of a real handshake are each refused with a logged reason, nothing
// reaches the victim's disk, and the real peers stay Connected. The NBD export requires TLS:
// nbdinfo with a client certificate from the CA works; without one, with one from another CA,
// or in plain nbd:// it is refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../datapath/tls_test_certificates.h"
#include "cluster_harness.h"
#include "network_test_support.h"

namespace ditto::testing {
namespace {

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// Waits until `needle` occurs more than `before` times in the log at `path`.
bool wait_for_more(const std::string& path, const std::string& needle, std::size_t before) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (count_of(read_file(path), needle) > before) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string tls_net(const std::string& certificates, const std::string& node,
                    const std::string& ca = "good") {
  return "  net { protocol C; tls yes; tls-ca-file " + certificates + "/good/ca-cert.pem; " +
         "tls-certificate-file " + certificates + "/" + ca + "/" + node + "-cert.pem; " +
         "tls-privkey-file " + certificates + "/" + ca + "/" + node + "-key.pem; }\n";
}

struct Process {
  pid_t pid = -1;
  ~Process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Starts a dittod that claims to be alpha (its own address and disk, the given net section)
// and dials beta; its log is DIRECTORY/NAME.log. Returns its pid.
pid_t start_impostor(const LocalCluster& cluster, const std::string& alpha_address,
                     const std::string& net, const std::string& name) {
  std::string block = cluster.host_block(0);
  block.replace(block.find(alpha_address), alpha_address.size(),
                "127.0.0.1:" + std::to_string(free_port()));
  const std::string disk = cluster.directory() + "/" + name + ".img";
  block.replace(block.find(cluster.disk_path(0)), cluster.disk_path(0).size(), disk);
  std::string error;
  EXPECT_TRUE(create_backing_disk(disk, 8u << 20, 1, error)) << error;
  const std::string config = cluster.directory() + "/" + name + ".res";
  std::ofstream(config) << "resource r0 {\n" << net << block << cluster.host_block(1) << "}\n";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int log = ::open((cluster.directory() + "/" + name + ".log").c_str(),
                           O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 2);
    const std::string program = build_program("datapath/dittod");
    const std::string control = cluster.directory() + "/" + name + ".sock";
    ::execl(program.c_str(), program.c_str(), "--config", config.c_str(), "--node", "alpha",
            "--control", control.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

std::string nbds_uri(const LocalCluster& cluster, int index, const std::string& directory) {
  std::string uri = cluster.nbd_uri(index);  // nbd://127.0.0.1:PORT/r0
  return "nbds" + uri.substr(3) + "?tls-certificates=" + directory;
}

TEST(TlsSecurity, CertifiedPeersReplicateAndEveryImpostorIsRefusedWithoutWritingAnything) {
  LocalCluster cluster(2, 8u << 20);
  const std::string certificates = cluster.directory() + "/tls";
  std::string error;
  ASSERT_TRUE(make_test_certificates(certificates, error)) << error;
  const std::uint16_t victim_port = cluster.peer_port(1);
  RecordingProxy proxy(victim_port);
  // alpha's first path to beta goes through the recording proxy (as in network_safety_test).
  const std::string alpha_address = "127.0.0.1:" + std::to_string(cluster.peer_port(0));
  const std::string connection =
      "  connection {\n    path { host alpha address " + alpha_address +
      "; host beta address 127.0.0.1:" + std::to_string(proxy.port()) + "; }\n" +
      "    path { host alpha address " + alpha_address + "; host beta address 127.0.0.1:" +
      std::to_string(victim_port) + "; }\n  }\n";
  const auto config_for = [&](const std::string& node) {
    return "resource r0 {\n" + tls_net(certificates, node) + cluster.host_block(0) +
           cluster.host_block(1) + connection + "}\n";
  };
  // Each node has its own certificate: dittod reads its configuration once, at start.
  cluster.write_config(config_for("beta"));
  ASSERT_TRUE(cluster.start(1, error)) << error;
  cluster.write_config(config_for("alpha"));
  ASSERT_TRUE(cluster.start_with(0, {"--nbd-tls", certificates + "/nbd"}, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(1, 1, 10'000)) << read_file(cluster.log_path(1));
  const std::vector<std::uint8_t> recorded = proxy.recorded();
  ASSERT_GT(recorded.size(), 16u);
  const std::vector<std::uint8_t> victim_before = disk_bytes(cluster.disk_path(1), 0, 1u << 20);
  const std::string victim_log = cluster.log_path(1);
  const std::string refused = "TLS handshake failed";

  // 1. An impostor dittod as alpha whose certificate another CA signed.
  std::size_t before = count_of(read_file(victim_log), refused);
  Process impostor;
  impostor.pid =
      start_impostor(cluster, alpha_address, tls_net(certificates, "alpha", "evil"), "impostor");
  EXPECT_TRUE(wait_for_more(victim_log, "certificate verify failed", 0)) << read_file(victim_log);

  // 1b. An impostor dittod as alpha with a certificate from the right CA, but for gamma.
  Process wrong_name;
  wrong_name.pid =
      start_impostor(cluster, alpha_address, tls_net(certificates, "gamma"), "wrong-name");
  EXPECT_TRUE(wait_for_more(victim_log,
                            "claims to be node 0 ('alpha') but its certificate names DNS:gamma, "
                            "DNS:localhost, CN=gamma, not 'alpha'",
                            0))
      << read_file(victim_log);
  EXPECT_NE(read_file(victim_log).find("ditto transport [r0 node 1]: refused connection from"),
            std::string::npos);

  // 2. A TLS client without a certificate.
  before = count_of(read_file(victim_log), refused);
  const CommandOutcome anonymous = run_command(
      "timeout 10 openssl s_client -tls1_3 -CAfile " + certificates +
      "/good/ca-cert.pem -connect 127.0.0.1:" + std::to_string(victim_port) +
      " < /dev/null 2>&1");
  EXPECT_TRUE(wait_for_more(victim_log, "peer did not return a certificate", 0))
      << anonymous.output << read_file(victim_log);

  // 3. Garbage bytes.
  before = count_of(read_file(victim_log), refused);
  std::vector<std::uint8_t> garbage(4096);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 131);
  EXPECT_TRUE(send_and_wait_for_close(victim_port, garbage));
  EXPECT_TRUE(wait_for_more(victim_log, refused, before)) << read_file(victim_log);

  // 4. The recorded client bytes of alpha's successful handshake, replayed.
  before = count_of(read_file(victim_log), refused);
  EXPECT_TRUE(send_and_wait_for_close(victim_port, recorded));
  EXPECT_TRUE(wait_for_more(victim_log, refused, before)) << read_file(victim_log);

  const std::string log_text = read_file(victim_log);
  EXPECT_EQ(log_text.find("replaced by a new connection"), std::string::npos) << log_text;
  EXPECT_EQ(count_of(log_text, "peer 0 connected"), 1u) << log_text;
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 0, 1u << 20), victim_before);
  ASSERT_TRUE(cluster.wait_connected(1, 1, 1000));
  ASSERT_TRUE(cluster.wait_connected(0, 1, 1000));

  // The real peers still replicate, and the TLS export takes a client with a certificate.
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  const std::string client_uri = nbds_uri(cluster, 0, certificates + "/client");
  ASSERT_TRUE(nbd_write(client_uri, 1u << 20, 0x5a, 64 * 1024))
      << nbd_get_error() << "\n" << read_file(cluster.log_path(0));
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 1u << 20, 64 * 1024),
            std::vector<std::uint8_t>(64 * 1024, 0x5a));
}

TEST(TlsSecurity, TheNbdExportRequiresTlsWithAClientCertificateFromItsCa) {
  LocalCluster cluster(1, 4u << 20);
  const std::string certificates = cluster.directory() + "/tls";
  std::string error;
  ASSERT_TRUE(make_test_certificates(certificates, error)) << error;
  ASSERT_TRUE(cluster.start_with(0, {"--nbd-tls", certificates + "/nbd"}, error)) << error;
  const std::string log = cluster.log_path(0);

  const CommandOutcome good =
      run_command("nbdinfo '" + nbds_uri(cluster, 0, certificates + "/client") + "' 2>&1");
  EXPECT_EQ(good.exit_status, 0) << good.output;
  EXPECT_NE(good.output.find("with TLS"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find("export-size: 4"), std::string::npos) << good.output;

  const CommandOutcome no_certificate =
      run_command("nbdinfo '" + nbds_uri(cluster, 0, certificates + "/noclient") + "' 2>&1");
  EXPECT_NE(no_certificate.exit_status, 0) << no_certificate.output;
  EXPECT_TRUE(wait_for_more(log, "peer did not return a certificate", 0)) << read_file(log);

  const CommandOutcome wrong_ca =
      run_command("nbdinfo '" + nbds_uri(cluster, 0, certificates + "/evilclient") + "' 2>&1");
  EXPECT_NE(wrong_ca.exit_status, 0) << wrong_ca.output;
  EXPECT_TRUE(wait_for_more(log, "certificate verify failed", 0)) << read_file(log);

  // A plain client is told why: every option before STARTTLS gets NBD_REP_ERR_TLS_REQD.
  const CommandOutcome plain =
      run_command("LIBNBD_DEBUG=1 nbdinfo '" + cluster.nbd_uri(0) + "' 2>&1");
  EXPECT_NE(plain.exit_status, 0) << plain.output;
  EXPECT_NE(plain.output.find("this server requires TLS"), std::string::npos) << plain.output;
  EXPECT_EQ(plain.output.find("export-size"), std::string::npos) << plain.output;
  EXPECT_TRUE(wait_for_more(log, "client has not sent NBD_OPT_STARTTLS", 0)) << read_file(log);
}

TEST(TlsSecurity, BadTlsSettingsStopDittodWithTheLocationAndTheReason) {
  LocalCluster cluster(2, 4u << 20);
  const std::string certificates = cluster.directory() + "/tls";
  std::string error;
  ASSERT_TRUE(make_test_certificates(certificates, error)) << error;
  const std::string hosts = cluster.host_block(0) + cluster.host_block(1) + "}\n";
  const std::string good = certificates + "/good/";
  cluster.write_config("resource r0 {\n  net { tls yes; tls-ca-file " + good +
                       "ca-cert.pem; }\n" + hosts);
  EXPECT_FALSE(cluster.start(0, error));
  EXPECT_NE(error.find("r0.res:2:"), std::string::npos) << error;
  EXPECT_NE(error.find("tls yes needs tls-ca-file, tls-certificate-file and tls-privkey-file"),
            std::string::npos)
      << error;
  cluster.write_config("resource r0 {\n  net { tls yes; tls-ca-file " + good +
                       "ca-cert.pem; tls-certificate-file " + good +
                       "alpha-cert.pem; tls-privkey-file " + good + "beta-key.pem; }\n" + hosts);
  EXPECT_FALSE(cluster.start(0, error));
  EXPECT_NE(error.find("beta-key.pem: it does not match the certificate"), std::string::npos)
      << error;
  cluster.write_config("resource r0 {\n" + hosts);
  EXPECT_FALSE(cluster.start_with(0, {"--nbd-tls", certificates + "/missing"}, error));
  EXPECT_NE(error.find("missing/ca-cert.pem: cannot read it"), std::string::npos) << error;
}

}  // namespace
}  // namespace ditto::testing
