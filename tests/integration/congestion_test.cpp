// Congestion with protocol A on real dittod processes (drbd9-semantics.md §11): with a tiny
// congestion-fill, the Primary pulls ahead under nbdcopy's writes (events2 shows Ahead on it
// and Behind on the peer), and once the writes stop the resync of the gap brings both back to
// Established/UpToDate with byte-identical replicas. The peer is stopped (SIGSTOP) during the
// copy, so no barrier acknowledgement can drain the first write before the second: the
// connection congests whatever the loopback's timing.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;

// The configuration LocalCluster wrote, with `protocol C;` replaced by `net`.
void use_net(const LocalCluster& cluster, const std::string& net) {
  std::string text = file_text(cluster.config_path());
  const std::string from = "protocol C;";
  const std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, from.size(), net);
  cluster.write_config(text);
}

std::string dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  return build_program("datapath/dittoadm") + " --control " + cluster.control_socket(index) + " " +
         arguments;
}

// Starts `events2 r0` of node `index` in the background into `log`; returns its pid file.
std::string start_events(const LocalCluster& cluster, int index, const std::string& log) {
  const std::string pid_file = log + ".pid";
  const CommandOutcome started = run_command(dittoadm(cluster, index, "events2 r0") + " > " + log +
                                             " 2>&1 & echo $! > " + pid_file);
  EXPECT_EQ(started.exit_status, 0) << started.output;
  return pid_file;
}

void stop_events(const std::string& pid_file) {
  (void)run_command("kill $(cat " + pid_file + ") 2>/dev/null");
}

// Polls until both nodes are UpToDate and Established with each other (the status shows no
// `replication:` field then, and no disk below UpToDate).
bool settled(const LocalCluster& cluster, std::string& last) {
  for (int attempt = 0; attempt < 300; ++attempt) {
    bool all = true;
    last.clear();
    for (int index = 0; index < 2; ++index) {
      const std::string status = cluster.control(index, "status r0").text;
      last += status;
      all = all && status.find("replication:") == std::string::npos &&
            status.find("Outdated") == std::string::npos &&
            status.find("Inconsistent") == std::string::npos &&
            status.find("connection:") == std::string::npos;
    }
    if (all) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(Congestion, PullAheadOnACongestedProtocolALinkGoesAheadAndResyncsToIdenticalReplicas) {
  LocalCluster cluster(2, disk_size_bytes);
  // 64 sectors: one of nbdcopy's 256 KiB writes in flight congests the connection. The ping
  // and request timeouts outlast the peer's pause.
  use_net(cluster,
          "protocol A; on-congestion pull-ahead; congestion-fill 64; ping-timeout 100; "
          "timeout 100;");
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  const std::string alpha_events = cluster.directory() + "/alpha-events.log";
  const std::string beta_events = cluster.directory() + "/beta-events.log";
  const std::string alpha_pid = start_events(cluster, 0, alpha_events);
  const std::string beta_pid = start_events(cluster, 1, beta_events);

  const std::string source = cluster.directory() + "/source.img";
  ASSERT_TRUE(write_random_file(source, disk_size_bytes, 3)) << source;
  ASSERT_EQ(::kill(cluster.pid(1), SIGSTOP), 0);
  const CommandOutcome copy =
      run_command("nbdcopy --flush " + source + " " + cluster.nbd_uri(0) + " 2>&1");
  ASSERT_EQ(::kill(cluster.pid(1), SIGCONT), 0);
  ASSERT_EQ(copy.exit_status, 0) << copy.output;

  std::string status;
  EXPECT_TRUE(settled(cluster, status)) << status;
  stop_events(alpha_pid);
  stop_events(beta_pid);
  const std::string alpha = file_text(alpha_events);
  const std::string beta = file_text(beta_events);
  EXPECT_NE(alpha.find("change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 "
                       "replication:Ahead"),
            std::string::npos)
      << alpha;
  EXPECT_NE(alpha.find("replication:SyncSource"), std::string::npos) << alpha;
  EXPECT_NE(beta.find("replication:Behind"), std::string::npos) << beta;
  EXPECT_NE(beta.find("replication:SyncTarget"), std::string::npos) << beta;
  EXPECT_EQ(alpha.find("connection:Connecting"), std::string::npos) << alpha;  // never dropped

  for (int index = 0; index < 2; ++index) {
    const CommandOutcome compare = run_command("cmp -n " + std::to_string(disk_size_bytes) + " " +
                                               source + " " + cluster.disk_path(index) + " 2>&1");
    EXPECT_EQ(compare.exit_status, 0) << cluster.name(index) << " differs: " << compare.output;
  }
}

}  // namespace
}  // namespace ditto::testing
