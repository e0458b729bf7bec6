// dittoadm disconnect / connect [--discard-my-data] against real daemons (drbd9-semantics.md
// §6, §13.1): a disconnected connection is StandAlone on the side that disconnected, Connecting
// on the other, and stays down (no redial, inbound connections refused) until `connect`; a split
// brain runs the configured split-brain handler with DRBD's environment, leaves both sides
// StandAlone, and `connect --discard-my-data` on the victim makes it a copy of the survivor.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

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
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 7);
  return bytes;
}

bool wait_for_log(const LocalCluster& cluster, int index, const std::string& text) {
  for (int attempt = 0; attempt < 750; ++attempt) {
    if (file_text(cluster.log_path(index)).find(text) != std::string::npos) return true;
    ::usleep(20'000);
  }
  return false;
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

bool data_identical(const LocalCluster& cluster, std::string& output) {
  const CommandOutcome compare =
      run_command("cmp -n " + std::to_string(data_size_bytes) + " " + cluster.disk_path(0) + " " +
                  cluster.disk_path(1) + " 2>&1");
  output = compare.output;
  return compare.exit_status == 0;
}

TEST(ConnectionAdmin, DisconnectKeepsThePeerAwayUntilConnectThenItResyncsWhatItMissed) {
  LocalCluster cluster(2, data_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  // beta (the higher id, which only accepts) disconnects: alpha keeps dialing and is refused.
  const ControlResult disconnected = cluster.control(1, "disconnect r0 alpha");
  ASSERT_EQ(disconnected.exit_status, 0) << disconnected.text;
  EXPECT_TRUE(wait_for_status(cluster, 1, "  alpha connection:StandAlone"))
      << cluster.control(1, "status r0").text;
  EXPECT_TRUE(wait_for_status(cluster, 0, "  beta connection:Connecting"))
      << cluster.control(0, "status r0").text;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 3), 2u << 20));  // beta misses it
  ::usleep(2'500'000);  // longer than the longest redial delay (2 s)
  EXPECT_NE(cluster.control(1, "status r0").text.find("  alpha connection:StandAlone"),
            std::string::npos) << cluster.control(1, "status r0").text;
  EXPECT_NE(cluster.control(0, "status r0").text.find("  beta connection:Connecting"),
            std::string::npos) << "alpha got back in while beta was StandAlone";
  EXPECT_TRUE(wait_for_log(cluster, 1, "node 0 is StandAlone here"))
      << "alpha's dials were not refused:\n" << file_text(cluster.log_path(1));
  // A second disconnect is a no-op; connect of a connection that is not StandAlone is refused.
  EXPECT_EQ(cluster.control(1, "disconnect r0 alpha").exit_status, 0);
  EXPECT_NE(cluster.control(0, "connect r0 beta").exit_status, 0);
  EXPECT_NE(cluster.control(0, "connect r0 nosuchpeer").exit_status, 0);

  const ControlResult connected = cluster.control(1, "connect r0 alpha");
  ASSERT_EQ(connected.exit_status, 0) << connected.text;
  ASSERT_TRUE(cluster.wait_connected(0, 1, 10'000));
  ASSERT_TRUE(cluster.wait_connected(1, 1, 10'000));
  EXPECT_TRUE(wait_for_status(cluster, 1, "r0 role:Secondary\n  disk:UpToDate"))
      << cluster.control(1, "status r0").text;
  EXPECT_TRUE(wait_for_status(cluster, 0, "peer-disk:UpToDate"))
      << cluster.control(0, "status r0").text;
  std::string differences;
  EXPECT_TRUE(data_identical(cluster, differences)) << differences;
}

TEST(ConnectionAdmin, ASplitBrainRunsItsHandlerAndConnectDiscardMyDataMakesTheVictimACopy) {
  LocalCluster cluster(2, data_size_bytes);
  // The split-brain handler records its environment, one file per node.
  const std::string script = cluster.directory() + "/split-brain.sh";
  std::ofstream(script) << "#!/bin/sh\nenv | grep -E '^(DRBD_|UP_TO_DATE_NODES)' | sort > "
                        << cluster.directory() << "/split-brain-$DRBD_NODE_ID.env\nexit 3\n";
  ::chmod(script.c_str(), 0755);
  cluster.write_config("resource r0 {\n  net { protocol C; }\n  handlers { split-brain \"" +
                       script + "\"; }\n" + cluster.host_block(0) + cluster.host_block(1) +
                       "}\n");
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_EQ(cluster.control(0, "disconnect r0 beta").exit_status, 0);
  ASSERT_EQ(cluster.control(1, "disconnect r0").exit_status, 0);  // every connection
  ASSERT_TRUE(wait_for_status(cluster, 0, "  beta connection:StandAlone"));
  ASSERT_TRUE(wait_for_status(cluster, 1, "  alpha connection:StandAlone"));
  // Both are promoted (auto-promote) and written while apart: the data diverges.
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 5), 1u << 20));
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(1), pattern(1 << 20, 9), 1536u << 10));
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(1), pattern(64 << 10, 11), 8u << 20));
  std::string differences;
  ASSERT_FALSE(data_identical(cluster, differences));

  // Reconnected without a victim: split brain, the handler runs, both end StandAlone.
  ASSERT_EQ(cluster.control(0, "connect r0 beta").exit_status, 0);
  ASSERT_EQ(cluster.control(1, "connect r0 alpha").exit_status, 0);
  for (int node = 0; node < 2; ++node) {
    SCOPED_TRACE(cluster.name(node));
    EXPECT_TRUE(wait_for_log(cluster, node, "helper:split-brain"));
    EXPECT_TRUE(wait_for_log(cluster, node, "handler split-brain (peer " +
                                                std::to_string(1 - node) + ") exited with 3"))
        << file_text(cluster.log_path(node));
    EXPECT_TRUE(wait_for_status(cluster, node,
                                "  " + cluster.name(1 - node) + " connection:StandAlone"));
    const std::string environment = file_text(cluster.directory() + "/split-brain-" +
                                              std::to_string(node) + ".env");
    EXPECT_NE(environment.find("DRBD_RESOURCE=r0\n"), std::string::npos) << environment;
    EXPECT_NE(environment.find("DRBD_NODE_ID=" + std::to_string(node) + "\n"),
              std::string::npos) << environment;
    EXPECT_NE(environment.find("DRBD_PEER_NODE_ID=" + std::to_string(1 - node) + "\n"),
              std::string::npos) << environment;
    EXPECT_NE(environment.find("DRBD_MINOR=" + std::to_string(100 + node) + "\n"),
              std::string::npos) << environment;
    EXPECT_NE(environment.find("DRBD_VOLUME=0\n"), std::string::npos) << environment;
    // Both are UpToDate in their own eyes: the mask (0x + 8 hex digits) names this node.
    const std::size_t mask_at = environment.find("UP_TO_DATE_NODES=0x");
    ASSERT_NE(mask_at, std::string::npos) << environment;
    const std::string mask_text = environment.substr(mask_at + 19, 9);
    ASSERT_EQ(mask_text.size(), 9u);
    EXPECT_EQ(mask_text[8], '\n') << environment;
    EXPECT_NE(std::stoul(mask_text.substr(0, 8), nullptr, 16) & (1ul << node), 0u)
        << environment;
  }
  EXPECT_EQ(count_of(file_text(cluster.log_path(0)), "handler split-brain (peer 1)"), 1u);
  ASSERT_FALSE(data_identical(cluster, differences)) << "a split brain merged data silently";

  // beta is the victim: its changes go, alpha's win, beta resyncs from alpha. (dittoadm's
  // RES:PEER form, as drbdadm takes it.)
  const CommandOutcome victim = run_command(
      build_program("datapath/dittoadm") + " --control " + cluster.control_socket(1) +
      " connect --discard-my-data r0:alpha 2>&1");
  ASSERT_EQ(victim.exit_status, 0) << victim.output;
  ASSERT_EQ(cluster.control(0, "connect r0 beta").exit_status, 0);
  ASSERT_TRUE(cluster.wait_connected(0, 1, 10'000)) << cluster.control(0, "status r0").text;
  ASSERT_TRUE(cluster.wait_connected(1, 1, 10'000)) << cluster.control(1, "status r0").text;
  EXPECT_TRUE(wait_for_log(cluster, 1, "resync-finished name:r0 peer-node-id:0"))
      << file_text(cluster.log_path(1));
  EXPECT_TRUE(wait_for_status(cluster, 1, "r0 role:Secondary\n  disk:UpToDate"))
      << cluster.control(1, "status r0").text;
  cluster.kill(0, SIGTERM);
  cluster.kill(1, SIGTERM);
  EXPECT_TRUE(data_identical(cluster, differences))
      << "the victim is not a copy of the survivor: " << differences;
}

}  // namespace
}  // namespace ditto::testing
