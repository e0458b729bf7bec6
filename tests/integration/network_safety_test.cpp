// dittod on a hostile network: peers authenticate with cram-hmac-alg + shared-secret; a wrong
// secret, garbage bytes and a replayed handshake (recorded by a proxy from a real, successful
// one) are each refused, nothing reaches the victim's disk, and the victim keeps serving its
// real peer. Multi-path: with the first path's address refusing, the connection comes up on the
// second; when the path in use goes dark, it moves to the other one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "cluster_harness.h"
#include "network_test_support.h"

namespace ditto::testing {
namespace {

TEST(NetworkSafety,
     WrongSecretGarbageAndReplayAreRefusedNothingReachesTheVictimAndItKeepsServingItsPeer) {
  LocalCluster cluster(2, 8u << 20);
  const std::uint16_t victim_port = cluster.peer_port(1);
  RecordingProxy proxy(victim_port);
  // alpha's first path to beta goes through the recording proxy (beta cannot bind that
  // address, the proxy holds it, and carries on with its other path).
  const std::string alpha_address = "127.0.0.1:" + std::to_string(cluster.peer_port(0));
  cluster.write_config(
      "resource r0 {\n  net { protocol C; cram-hmac-alg sha256; shared-secret \"s3cret\"; }\n" +
      cluster.host_block(0) + cluster.host_block(1) + "  connection {\n" +
      "    path { host alpha address " + alpha_address + "; host beta address 127.0.0.1:" +
      std::to_string(proxy.port()) + "; }\n" + "    path { host alpha address " +
      alpha_address + "; host beta address 127.0.0.1:" + std::to_string(victim_port) +
      "; }\n  }\n}\n");
  std::string error;
  ASSERT_TRUE(cluster.start(1, error)) << error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(1, 1, 10'000)) << read_file(cluster.log_path(1));
  const std::vector<std::uint8_t> recorded = proxy.recorded();
  ASSERT_GT(recorded.size(), 16u);
  const std::vector<std::uint8_t> victim_before = disk_bytes(cluster.disk_path(1), 0, 1u << 20);

  // 1. An impostor that knows everything but the secret, promoted and writing.
  const std::string attacker_disk = cluster.directory() + "/attacker.img";
  std::string disk_error;
  ASSERT_TRUE(create_backing_disk(attacker_disk, 8u << 20, 1, disk_error)) << disk_error;
  std::string attacker_block = cluster.host_block(0);
  attacker_block.replace(attacker_block.find(cluster.disk_path(0)), cluster.disk_path(0).size(),
                         attacker_disk);
  attacker_block.replace(attacker_block.find(alpha_address), alpha_address.size(),
                         "127.0.0.1:" + std::to_string(free_port()));
  const std::string attacker_config = cluster.directory() + "/attacker.res";
  std::ofstream(attacker_config)
      << "resource r0 {\n  net { protocol C; cram-hmac-alg sha256; shared-secret \"guess\"; }\n"
      << attacker_block << cluster.host_block(1) << "}\n";
  const std::string attacker_nbd = "127.0.0.1:" + std::to_string(free_port());
  Attacker attacker;
  attacker.pid = ::fork();
  if (attacker.pid == 0) {
    const int log = ::open((cluster.directory() + "/attacker.log").c_str(),
                           O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 2);
    const std::string program = build_program("datapath/dittod");
    ::execl(program.c_str(), program.c_str(), "--config", attacker_config.c_str(), "--node",
            "alpha", "--nbd", attacker_nbd.c_str(), "--control",
            (cluster.directory() + "/attacker.sock").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // The impostor's dialer is the first to check (the victim answers its challenge first) and
  // gives up; the victim logs a connection that never proved the secret.
  EXPECT_TRUE(wait_for_log(cluster.directory() + "/attacker.log",
                           "node 1 does not know the shared secret"));
  EXPECT_TRUE(wait_for_log(cluster.log_path(1), "before it proved the shared secret"))
      << read_file(cluster.log_path(1));

  // 2. Garbage bytes.
  std::vector<std::uint8_t> garbage(4096);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 131);
  EXPECT_TRUE(send_and_wait_for_close(victim_port, garbage));
  EXPECT_TRUE(wait_for_log(cluster.log_path(1), "does not start with the ditto magic"));

  // 3. The recorded bytes of alpha's successful handshake, replayed.
  EXPECT_TRUE(send_and_wait_for_close(victim_port, recorded));
  EXPECT_TRUE(wait_for_log(cluster.log_path(1), "replayed handshake"));

  const std::string victim_log = read_file(cluster.log_path(1));
  EXPECT_EQ(victim_log.find("replaced by a new connection"), std::string::npos) << victim_log;
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 0, 1u << 20), victim_before);
  // The victim still serves its real peer: alpha's writes arrive on beta's disk.
  ASSERT_TRUE(cluster.wait_connected(1, 1, 1000));
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), 1u << 20, 0x5a, 64 * 1024))
      << nbd_get_error() << "\n" << read_file(cluster.log_path(0))
      << cluster.control(0, "status r0").text;
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 1u << 20, 64 * 1024),
            std::vector<std::uint8_t>(64 * 1024, 0x5a));
}

TEST(NetworkSafety, WhenTheFirstPathRefusesTheConnectionComesUpOnTheSecond) {
  LocalCluster cluster(2, 4u << 20);
  // A bound socket that does not listen: connecting to it is refused at once, and beta cannot
  // listen there either.
  const int blocker = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(blocker, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  ::getsockname(blocker, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string alpha = "127.0.0.1:" + std::to_string(cluster.peer_port(0));
  cluster.write_config("resource r0 {\n" + cluster.host_block(0) + cluster.host_block(1) +
                       "  connection {\n    path { host alpha address " + alpha +
                       "; host beta address 127.0.0.1:" +
                       std::to_string(ntohs(address.sin_port)) + "; }\n" +
                       "    path { host alpha address " + alpha + "; host beta address " +
                       "127.0.0.1:" + std::to_string(cluster.peer_port(1)) + "; }\n  }\n}\n");
  std::string error;
  ASSERT_TRUE(cluster.start(1, error)) << error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  EXPECT_TRUE(cluster.wait_connected(0, 1, 10'000)) << read_file(cluster.log_path(0));
  EXPECT_NE(read_file(cluster.log_path(0)).find("over path 2"), std::string::npos);
  const ControlResult status = cluster.control(0, "status r0 --json");
  EXPECT_NE(status.text.find("\"established\": true"), std::string::npos) << status.text;
  ::close(blocker);
}

// A path whose address goes dark while the connection runs on it (every packet to and from
// beta's first-path port dropped by nftables): the silence is noticed by the keepalive
// (ping-int 1 s + ping-timeout 0.5 s), alpha dials again on the other path, and replication
// goes on there. A write issued into the silence completes once the dead path is dropped, and
// the resync after the reconnect brings it to beta.
TEST(NetworkSafety, WhenThePathInUseGoesDarkReplicationMovesToTheOtherPath) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for nftables";
  LocalCluster cluster(2, 8u << 20);
  const std::uint16_t beta_first = free_port();
  const std::uint16_t alpha_second = free_port();
  const auto address = [](std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); };
  cluster.write_config(
      "resource r0 {\n  net { protocol C; timeout 10; ping-int 1; ping-timeout 5; }\n" +
      cluster.host_block(0) + cluster.host_block(1) + "  connection {\n    path { host alpha address " +
      address(cluster.peer_port(0)) + "; host beta address " + address(beta_first) + "; }\n" +
      "    path { host alpha address " + address(alpha_second) + "; host beta address " +
      address(cluster.peer_port(1)) + "; }\n  }\n}\n");
  std::string error;
  ASSERT_TRUE(cluster.start(1, error)) << error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(0, 1, 10'000)) << read_file(cluster.log_path(0));
  ASSERT_NE(read_file(cluster.log_path(0)).find("over path 1"), std::string::npos)
      << read_file(cluster.log_path(0));
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), 0, 0x11, 256 * 1024)) << nbd_get_error();

  const PortBlackhole dark(beta_first);
  ASSERT_EQ(dark.error(), "");
  const auto went_dark = std::chrono::steady_clock::now();
  // Protocol C: this write waits for beta's ack until the dead path is given up.
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), 1u << 20, 0x22, 256 * 1024)) << nbd_get_error();
  ASSERT_TRUE(wait_for_log(cluster.log_path(0), "over path 2")) << read_file(cluster.log_path(0));
  ASSERT_TRUE(cluster.wait_connected(0, 1, 10'000)) << read_file(cluster.log_path(0));
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - went_dark);
  std::printf("connected again over path 2 %.2f s after path 1 went dark\n", seconds.count());
  // Detection (ping-int + ping-timeout, 1.5 s), one redial after the reconnect delay, and room
  // for a loaded machine; a dialer that kept retrying the dark path would never get here.
  EXPECT_LT(seconds.count(), 8.0) << read_file(cluster.log_path(0));
  // The redial after the loss went straight to path 2, without a dial into the dark path first.
  const std::string log = read_file(cluster.log_path(0));
  EXPECT_NE(log.find("path 1 to node 1 lost"), std::string::npos) << log;
  EXPECT_EQ(log.find("path 1 to node 1 failed"), std::string::npos) << log;

  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), 2u << 20, 0x33, 256 * 1024)) << nbd_get_error();
  ASSERT_TRUE(wait_for_status(cluster, 1, "disk:UpToDate")) << cluster.control(1, "status r0").text;
  ASSERT_TRUE(wait_for_status(cluster, 0, "peer-disk:UpToDate"))
      << cluster.control(0, "status r0").text;
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 0, 256 * 1024),
            std::vector<std::uint8_t>(256 * 1024, 0x11));
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 1u << 20, 256 * 1024),
            std::vector<std::uint8_t>(256 * 1024, 0x22));
  EXPECT_EQ(disk_bytes(cluster.disk_path(1), 2u << 20, 256 * 1024),
            std::vector<std::uint8_t>(256 * 1024, 0x33));
}

}  // namespace
}  // namespace ditto::testing
