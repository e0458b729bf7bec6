// resync-after with real dittod processes: two resources on the same two daemons, r1's disk
// section says `resync-after r0`. Both are invalidated on the Secondary; r1 waits PausedSyncT
// with resync-suspended:dependency while r0 resyncs, and resyncs once r0 is UpToDate.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

std::string status_of(const LocalCluster& cluster, int index, const std::string& resource) {
  return cluster.control(index, "status " + resource).text;
}

// Whether `status` shows resync-suspended with `reason` among its reasons.
bool suspended_by(const std::string& status, const std::string& reason) {
  const std::size_t at = status.find("resync-suspended:");
  if (at == std::string::npos) return false;
  const std::size_t start = at + 17;
  const std::string value = status.substr(start, status.find_first_of(" \n", start) - start);
  return ("," + value + ",").find("," + reason + ",") != std::string::npos;
}

bool wait_suspended_by(const LocalCluster& cluster, int index, const std::string& resource,
                       const std::string& reason, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (suspended_by(status_of(cluster, index, resource), reason)) return true;
    ::usleep(20'000);
  }
  return false;
}

bool wait_for(const LocalCluster& cluster, int index, const std::string& resource,
              const std::string& text, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (status_of(cluster, index, resource).find(text) != std::string::npos) return true;
    ::usleep(20'000);
  }
  return false;
}

// Adds r1 (after r0) to the cluster's configuration, with disks next to r0's, and slows r0's
// resync down (2 MiB/s, a few seconds for its 8 MiB) so that the wait can be seen.
void add_r1_after_r0(const LocalCluster& cluster) {
  const std::string directory = std::filesystem::path(cluster.disk_path(0)).parent_path();
  std::string config = file_text(cluster.config_path());
  const std::string net = "net { protocol C; }";
  config.replace(config.find(net), net.size(),
                 net + "\n  disk { c-plan-ahead 0; resync-rate 2M; }");
  config += "resource r1 {\n  net { protocol C; }\n"
            "  disk { resync-after r0; c-plan-ahead 0; resync-rate 1M; }\n";
  for (int node = 0; node < 2; ++node) {
    const std::string disk = directory + "/" + cluster.name(node) + "-r1.img";
    std::string error;
    ASSERT_TRUE(create_backing_disk(disk, 1u << 20, 1, error)) << error;
    config += "  on " + cluster.name(node) + " { node-id " + std::to_string(node) +
              "; address 127.0.0.1:" + std::to_string(free_port()) + "; device /dev/drbd" +
              std::to_string(110 + node) + "; disk " + disk + "; meta-disk internal; }\n";
  }
  config += "}\n";
  cluster.write_config(config);
}

TEST(ResyncAfter, AResourceWaitsPausedByItsDependencyUntilTheResourceItNamesIsUpToDate) {
  LocalCluster cluster(2, 8u << 20);
  add_r1_after_r0(cluster);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(wait_for(cluster, 1, "r1", "peer-disk:UpToDate", 10'000))
      << status_of(cluster, 1, "r1");
  ASSERT_EQ(cluster.control(1, "invalidate r0").exit_status, 0);
  ASSERT_EQ(cluster.control(1, "invalidate r1").exit_status, 0);

  EXPECT_TRUE(wait_suspended_by(cluster, 1, "r1", "dependency", 5'000))
      << status_of(cluster, 1, "r1");
  // The suspension shows already in WFBitMapT; PausedSyncT follows the bitmap exchange.
  EXPECT_TRUE(wait_for(cluster, 1, "r1", "replication:PausedSyncT", 5'000))
      << status_of(cluster, 1, "r1");
  EXPECT_TRUE(wait_suspended_by(cluster, 0, "r1", "peer", 5'000))
      << status_of(cluster, 0, "r1");
  EXPECT_TRUE(wait_for(cluster, 1, "r0", "replication:SyncTarget", 5'000))
      << status_of(cluster, 1, "r0");

  ASSERT_TRUE(wait_for(cluster, 1, "r0", "\n  disk:UpToDate", 30'000)) << status_of(cluster, 1, "r0");
  EXPECT_TRUE(wait_for(cluster, 1, "r1", "\n  disk:UpToDate", 10'000)) << status_of(cluster, 1, "r1");
  // r1 finished after r0 did: its resync-finished line comes later in the log.
  const std::string log = file_text(cluster.log_path(1));
  const std::size_t r0_done = log.find("resync-finished name:r0");
  const std::size_t r1_done = log.find("resync-finished name:r1");
  ASSERT_NE(r0_done, std::string::npos) << log;
  ASSERT_NE(r1_done, std::string::npos) << log;
  EXPECT_LT(r0_done, r1_done);
  EXPECT_NE(log.find("resync-after r0: resyncs wait (dependency)"), std::string::npos);
}

}  // namespace
}  // namespace ditto::testing
