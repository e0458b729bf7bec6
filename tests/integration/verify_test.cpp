// Online verify with real dittod processes: `dittoadm verify r0:beta` on alpha compares CRC32C
// digests of every block of the two replicas (verify-alg crc32c) and reports the blocks that
// differ in its `verify-finished` event line (the daemon logs every event line).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

CommandOutcome dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  const std::string command = build_program("datapath/dittoadm") + " --control " +
                              cluster.control_socket(index) + " " + arguments + " 2>&1";
  return run_command(command);
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The node's first `verify-finished` line with role:VerifyS, waiting up to timeout_ms.
std::string wait_verify_finished(const LocalCluster& cluster, int index, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string log = read_file(cluster.log_path(index));
    const std::size_t at = log.find("verify-finished name:r0");
    if (at != std::string::npos && log.find('\n', at) != std::string::npos) {
      return log.substr(at, log.find('\n', at) - at);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return {};
}

void start_with_verify_alg(LocalCluster& cluster) {
  cluster.write_config("resource r0 {\n  net { protocol C; verify-alg crc32c; }\n" +
                       cluster.host_block(0) + cluster.host_block(1) + "}\n");
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
}

TEST(OnlineVerify, VerifyOfTwoFreshReplicasFinishesWithNoBlockOutOfSync) {
  LocalCluster cluster(2, 16u << 20);
  start_with_verify_alg(cluster);
  const CommandOutcome started = dittoadm(cluster, 0, "verify r0:beta");
  ASSERT_EQ(started.exit_status, 0) << started.output;
  // While it runs, status shows VerifyS with its progress.
  const CommandOutcome status = dittoadm(cluster, 0, "status r0");
  if (status.output.find("replication:VerifyS") != std::string::npos) {
    EXPECT_NE(status.output.find(" done:"), std::string::npos) << status.output;
  }
  const std::string line = wait_verify_finished(cluster, 0, 30'000);
  ASSERT_FALSE(line.empty()) << read_file(cluster.log_path(0));
  EXPECT_NE(line.find("role:VerifyS result:finished blocks:4096 out-of-sync-blocks:0"),
            std::string::npos)
      << line;
  const std::string target = wait_verify_finished(cluster, 1, 10'000);
  EXPECT_NE(target.find("role:VerifyT result:finished blocks:4096 out-of-sync-blocks:0"),
            std::string::npos)
      << target;
  const CommandOutcome after = dittoadm(cluster, 0, "status r0");
  EXPECT_EQ(after.output.find("Verify"), std::string::npos) << after.output;
}

TEST(OnlineVerify, VerifyFindsTheOneBlockOverwrittenBehindTheDaemonsBack) {
  LocalCluster cluster(2, 16u << 20);
  start_with_verify_alg(cluster);
  // Block 100 of beta's data area (offset 0 of the file: the metadata is at its end).
  const CommandOutcome corrupted =
      run_command("dd if=/dev/urandom of=" + cluster.disk_path(1) +
                  " bs=4096 seek=100 count=1 conv=notrunc oflag=direct 2>&1");
  ASSERT_EQ(corrupted.exit_status, 0) << corrupted.output;
  const CommandOutcome started = dittoadm(cluster, 0, "verify r0:beta");
  ASSERT_EQ(started.exit_status, 0) << started.output;
  const std::string line = wait_verify_finished(cluster, 0, 30'000);
  EXPECT_NE(line.find("result:finished blocks:4096 out-of-sync-blocks:1"), std::string::npos)
      << line << "\n" << read_file(cluster.log_path(0));
}

TEST(OnlineVerify, InvalidateRemoteResyncsEveryBlockOfThePeerWhichEndsUpToDate) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const CommandOutcome started = dittoadm(cluster, 0, "invalidate-remote r0:beta");
  ASSERT_EQ(started.exit_status, 0) << started.output;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string log;
  while (std::chrono::steady_clock::now() < deadline) {
    log = read_file(cluster.log_path(1));
    if (log.find("resync-finished name:r0") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(log.find("disk:Inconsistent"), std::string::npos) << log;
  EXPECT_NE(log.find("resync-finished name:r0 peer-node-id:0 conn-name:alpha blocks:2048"),
            std::string::npos)
      << log;
  const CommandOutcome status = dittoadm(cluster, 1, "status r0");
  EXPECT_EQ(status.output.rfind("r0 role:Secondary\n  disk:UpToDate", 0), 0u) << status.output;
}

TEST(OnlineVerify, VerifyWithoutVerifyAlgIsRefusedWithDrbdsReason) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const CommandOutcome refused = dittoadm(cluster, 0, "verify r0:beta");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find("SS_NO_VERIFY_ALG"), std::string::npos) << refused.output;
  const CommandOutcome unknown_peer = dittoadm(cluster, 0, "verify r0:gamma");
  EXPECT_EQ(unknown_peer.exit_status, 2) << unknown_peer.output;
  EXPECT_NE(unknown_peer.output.find("no peer named 'gamma'"), std::string::npos)
      << unknown_peer.output;
}

TEST(OnlineVerify, AVerifyAlgOtherThanCrc32cStopsDittodWithItsLocation) {
  LocalCluster cluster(2, 8u << 20);
  cluster.write_config("resource r0 {\n  net { protocol C; verify-alg sha1; }\n" +
                       cluster.host_block(0) + cluster.host_block(1) + "}\n");
  std::string error;
  EXPECT_FALSE(cluster.start(0, error));
  const std::string log = read_file(cluster.log_path(0));
  EXPECT_NE(log.find("r0.res:2:"), std::string::npos) << log << error;
  EXPECT_NE(log.find("verify-alg 'sha1' is not supported"), std::string::npos) << log << error;
}

}  // namespace
}  // namespace ditto::testing
