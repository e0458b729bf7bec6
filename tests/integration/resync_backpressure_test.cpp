// A resync read that finds the buffer pool busy waits for a buffer instead of failing (which
// would be a local I/O error and detach the SyncSource's disk). A SyncSource with a 1 MiB pool
// (dittod --buffer-pool-mib 1) and a SyncTarget asking for up to 16 MiB of 1 MiB runs at once:
// every second read finds the pool busy, and the resync still completes with the right bytes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <string>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;

TEST(ResyncBackpressure, ASyncSourceWithABusyBufferPoolWaitsAndTheResyncCompletes) {
  if (run_command("command -v nbdcopy >/dev/null 2>&1").exit_status != 0) {
    GTEST_SKIP() << "nbdcopy missing";
  }
  LocalCluster cluster(2, disk_size_bytes);
  cluster.write_config("resource r0 {\n  net { protocol C; }\n"
                       "  disk { c-fill-target 16M; c-max-rate 4G; c-min-rate 0; }\n" +
                       cluster.host_block(0) + cluster.host_block(1) + "}\n");
  std::string error;
  ASSERT_TRUE(cluster.start_with(0, {"--buffer-pool-mib", "1"}, error)) << error;

  // Alpha alone takes 16 MiB of new data: beta, fresh, becomes its SyncTarget for all of it.
  const std::string source = cluster.directory() + "/source.img";
  ASSERT_TRUE(write_random_file(source, disk_size_bytes, 5)) << source;
  const CommandOutcome copy =
      run_command("nbdcopy --flush " + source + " " + cluster.nbd_uri(0) + " 2>&1");
  ASSERT_EQ(copy.exit_status, 0) << copy.output;

  ASSERT_TRUE(cluster.start(1, error)) << error;
  // Beta (fresh, day 0) connects, becomes SyncTarget of alpha's newer generation, and says when
  // the resync is done.
  bool finished = false;
  for (int waited_ms = 0; waited_ms < 60'000 && !finished; waited_ms += 50) {
    finished = file_text(cluster.log_path(1)).find("resync-finished") != std::string::npos;
    if (!finished) ::usleep(50'000);
  }
  ASSERT_TRUE(finished) << file_text(cluster.log_path(0)) << file_text(cluster.log_path(1));
  EXPECT_NE(cluster.control(1, "status r0").text.find(" disk:UpToDate"), std::string::npos);
  const std::string alpha_status = cluster.control(0, "status r0").text;
  EXPECT_NE(alpha_status.find(" disk:UpToDate"), std::string::npos) << alpha_status;

  const std::string alpha_log = file_text(cluster.log_path(0));
  // The pool was busy (else this test proves nothing), and no read failed because of it.
  EXPECT_NE(alpha_log.find("buffer pool busy"), std::string::npos) << alpha_log;
  EXPECT_EQ(alpha_log.find("I/O error"), std::string::npos) << alpha_log;
  EXPECT_EQ(alpha_log.find("detach"), std::string::npos) << alpha_log;

  cluster.kill(0, SIGTERM);
  cluster.kill(1, SIGTERM);
  const CommandOutcome same = run_command("cmp -n " + std::to_string(disk_size_bytes) + " " +
                                          source + " " + cluster.disk_path(1) + " 2>&1");
  EXPECT_EQ(same.exit_status, 0) << same.output;
}

}  // namespace
}  // namespace ditto::testing
