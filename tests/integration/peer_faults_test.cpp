// Faults a daemon must act on by itself: a peer that stops answering while writes to it are
// pending is disconnected after ko-count × timeout (DRBD's ko-count), and a disk whose metadata
// can no longer be written is detached (on-io-error detach; DRBD treats a meta-data I/O error
// as a disk error).
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cluster_harness.h"
#include "nbd_test_client.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t data_size_bytes = 16u << 20;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 5);
  return bytes;
}

TEST(PeerFaults, APeerThatAnswersNothingForKoCountTimesTimeoutIsDisconnectedAndWritesGoOn) {
  LocalCluster cluster(2, data_size_bytes);
  // timeout 0.3 s, ko-count 2: expelled after 0.6 to 0.9 s of silence. Pings (every 60 s)
  // would take far longer to notice.
  cluster.write_config(
      "resource r0 {\n  net { protocol C; timeout 3; ko-count 2; ping-int 60; }\n" +
      cluster.host_block(0) + cluster.host_block(1) + "}\n");
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;  // no two-phase commit with a frozen peer
  ASSERT_EQ(::kill(cluster.pid(1), SIGSTOP), 0);
  const auto started = std::chrono::steady_clock::now();
  const bool written = nbd_write(cluster.nbd_uri(0), pattern(256 << 10, 1), 0);
  const auto waited = std::chrono::steady_clock::now() - started;
  ::kill(cluster.pid(1), SIGCONT);
  ASSERT_TRUE(written);
  EXPECT_LT(waited, std::chrono::seconds(10)) << "the write waited for the frozen peer";
  const std::string log = file_text(cluster.log_path(0));
  EXPECT_NE(log.find("ko-count: no answer to"), std::string::npos) << log;
  // Thawed, beta comes back and catches up.
  ASSERT_TRUE(cluster.wait_connected(0, 1, 15'000)) << cluster.control(0, "status r0").text;
  EXPECT_TRUE(wait_for_status(cluster, 0, "peer-disk:UpToDate"))
      << cluster.control(0, "status r0").text;
}

// A loop device over beta's disk file: shrinking it under the running daemon takes away the
// superblock (the last 4 KiB) while the data area stays writable.
struct LoopDevice {
  std::string device;
  explicit LoopDevice(const std::string& file) {
    const CommandOutcome setup = run_command("losetup --find --show " + file + " 2>/dev/null");
    if (setup.exit_status == 0) device = setup.output.substr(0, setup.output.find('\n'));
  }
  ~LoopDevice() {
    if (!device.empty()) (void)run_command("losetup -d " + device + " 2>&1");
  }
};

TEST(PeerFaults, AMetadataWriteThatFailsDetachesTheDiskAndThePrimaryWritesOn) {
  LocalCluster cluster(2, data_size_bytes);
  LoopDevice loop(cluster.disk_path(1));
  if (loop.device.empty()) GTEST_SKIP() << "losetup does not work here";
  std::string beta = cluster.host_block(1);
  beta.replace(beta.find(cluster.disk_path(1)), cluster.disk_path(1).size(), loop.device);
  cluster.write_config("resource r0 {\n  net { protocol C; }\n" + cluster.host_block(0) + beta +
                       "}\n");
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const auto size_bytes = std::filesystem::file_size(cluster.disk_path(1));
  std::filesystem::resize_file(cluster.disk_path(1), size_bytes - 4096);
  const CommandOutcome shrunk = run_command("losetup -c " + loop.device + " 2>&1");
  ASSERT_EQ(shrunk.exit_status, 0) << shrunk.output;

  // alpha's promotion changes what beta's superblock must say (a Primary is known): beta's
  // metadata write fails and beta detaches at once, before any data I/O would have failed.
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  EXPECT_TRUE(wait_for_status(cluster, 1, "disk:Diskless", 3'000))
      << cluster.control(1, "status r0").text;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 2), 0));
  EXPECT_TRUE(wait_for_status(cluster, 0, "peer-disk:Diskless"))
      << cluster.control(0, "status r0").text;
  const std::string log = file_text(cluster.log_path(1));
  EXPECT_NE(log.find("metadata write failed"), std::string::npos) << log;
  EXPECT_NE(log.find("detaching the disk"), std::string::npos) << log;
  // alpha keeps its data and keeps writing; beta stays connected, without a disk.
  EXPECT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 3), 4u << 20));
  EXPECT_TRUE(cluster.wait_connected(0, 1, 1'000));
  EXPECT_NE(cluster.control(0, "status r0").text.find("disk:UpToDate"), std::string::npos);
  cluster.kill(1, SIGTERM);
  EXPECT_NE(file_text(cluster.log_path(1)).find("metadata left marked in use"), std::string::npos);
}

}  // namespace
}  // namespace ditto::testing
