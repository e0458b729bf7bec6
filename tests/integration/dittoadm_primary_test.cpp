// `dittoadm primary` answers only once the promotion is decided (a two-phase commit across the
// connected peers), as `drbdadm primary` does: right after it returns 0 the node is Primary,
// and a refused promotion returns the rule's reason.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

using Outcome = CommandOutcome;

Outcome dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  const std::string command = build_program("datapath/dittoadm") + " --control " +
                              cluster.control_socket(index) + " " + arguments + " 2>&1";
  return run_command(command);
}

TEST(DittoadmPrimary, ReturnsOnlyOnceTheNodeIsPrimaryAndAPeerSeesIt) {
  LocalCluster cluster(3, 8u << 20);
  std::string error;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cluster.start(i, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(0, 2, 10000));
  ASSERT_TRUE(cluster.wait_connected(1, 2, 10000));

  const Outcome promoted = dittoadm(cluster, 0, "primary r0");
  ASSERT_EQ(promoted.exit_status, 0) << promoted.output;
  const Outcome status = dittoadm(cluster, 0, "status r0");
  EXPECT_EQ(status.output.rfind("r0 role:Primary", 0), 0u) << status.output;

  // The second promotion must be refused with DRBD's reason, not queued or ignored.
  const Outcome refused = dittoadm(cluster, 1, "primary r0");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find("State change failed"), std::string::npos) << refused.output;
  const Outcome beta = dittoadm(cluster, 1, "status r0");
  EXPECT_EQ(beta.output.rfind("r0 role:Secondary", 0), 0u) << beta.output;
}

}  // namespace
}  // namespace ditto::testing
