// Reads through peers with real dittod processes (drbd9-semantics.md §9): a node whose disk is
// detached still exports its volume over NBD, and a real NBD client reads back through it what
// was written, served by the UpToDate peers. (A `disk none` client reads the same way:
// diskless_client_test.cpp.)
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;

bool tool_exists(const std::string& name) {
  return run_command("command -v " + name + " >/dev/null 2>&1").exit_status == 0;
}

TEST(RemoteReads, ADetachedNodeExportsTheVolumeAndAnNbdClientReadsBackWhatWasWritten) {
  if (!tool_exists("nbdcopy") || !tool_exists("qemu-img")) GTEST_SKIP() << "tools missing";
  LocalCluster cluster(3, disk_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const CommandOutcome size = run_command("nbdinfo --size " + cluster.nbd_uri(0) + " 2>&1");
  ASSERT_EQ(size.exit_status, 0) << size.output;
  const std::uint64_t export_size_bytes = std::stoull(size.output);

  // Random data through alpha (auto-promoted for the copy, demoted when it closes).
  const std::string source = cluster.directory() + "/source.img";
  ASSERT_TRUE(write_random_file(source, export_size_bytes, 11)) << source;
  const CommandOutcome copy =
      run_command("nbdcopy --flush " + source + " " + cluster.nbd_uri(0) + " 2>&1");
  ASSERT_EQ(copy.exit_status, 0) << copy.output;

  // Alpha loses its disk; its export stays, and every read goes to beta or gamma.
  const CommandOutcome detached = run_command(build_program("datapath/dittoadm") +
                                              " --control " + cluster.control_socket(0) +
                                              " detach r0 2>&1");
  ASSERT_EQ(detached.exit_status, 0) << detached.output;
  ASSERT_TRUE(wait_for_status(cluster, 0, "disk:Diskless", 10'000))
      << cluster.control(0, "status r0").text;
  const CommandOutcome compare = run_command("qemu-img compare -f raw -F raw " + source + " " +
                                             cluster.nbd_uri(0) + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << compare.output;
}

}  // namespace
}  // namespace ditto::testing
