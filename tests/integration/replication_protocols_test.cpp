// Protocols A and B with real dittod processes: three nodes (a connection mesh), alpha writes
// through NBD, and every replica ends byte-identical. The simulator checks when each protocol
// acknowledges a write (tests/sim); this checks that dittod runs them end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;

// The configuration LocalCluster wrote, with `protocol C` replaced.
void use_protocol(const LocalCluster& cluster, const std::string& protocol) {
  std::string text = file_text(cluster.config_path());
  const std::string from = "protocol C;";
  const std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, from.size(), "protocol " + protocol + ";");
  cluster.write_config(text);
}

// Polls until the exported range of `index`'s backing file equals `expected` (protocol A and B
// acknowledge before a peer's disk has the data, so the peers may lag briefly).
bool replica_matches(const LocalCluster& cluster, int index, const std::string& expected,
                     std::string& output) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const CommandOutcome compare =
        run_command("cmp -n " + std::to_string(disk_size_bytes) + " " + expected + " " +
                    cluster.disk_path(index) + " 2>&1");
    output = compare.output;
    if (compare.exit_status == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

class ReplicationProtocols : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplicationProtocols, EveryWriteThroughTheExportReachesBothPeers) {
  LocalCluster cluster(3, disk_size_bytes);
  use_protocol(cluster, GetParam());
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  // `show` prints the running configuration as drbdadm dump does ("protocol         A;").
  const std::string show = cluster.control(1, "show r0").text;
  std::string words = show;
  words.erase(std::remove(words.begin(), words.end(), ' '), words.end());
  EXPECT_NE(words.find("protocol" + GetParam() + ";"), std::string::npos) << show;

  const std::string source = cluster.directory() + "/source.img";
  ASSERT_TRUE(write_random_file(source, disk_size_bytes, GetParam() == "A" ? 1 : 2)) << source;
  const CommandOutcome copy = run_command("nbdcopy --flush " + source + " " +
                                          cluster.nbd_uri(0) + " 2>&1");
  ASSERT_EQ(copy.exit_status, 0) << copy.output;
  // Overwrite a part again, so that later writes to the same blocks must win on every replica.
  const CommandOutcome again = run_command(
      "qemu-io -f raw -c 'write -P 0x5a 1M 2M' " + cluster.nbd_uri(0) + " 2>&1");
  ASSERT_EQ(again.exit_status, 0) << again.output;
  {
    std::fstream expected(source, std::ios::binary | std::ios::in | std::ios::out);
    expected.seekp(1 << 20);
    const std::string pattern(2u << 20, '\x5a');
    expected.write(pattern.data(), static_cast<std::streamsize>(pattern.size()));
    ASSERT_TRUE(expected.good()) << source;
  }

  for (int index = 0; index < 3; ++index) {
    std::string output;
    EXPECT_TRUE(replica_matches(cluster, index, source, output))
        << cluster.name(index) << " differs: " << output;
  }
  for (int index = 0; index < 3; ++index) {
    const std::string status = cluster.control(index, "status r0").text;
    EXPECT_EQ(status.find("Inconsistent"), std::string::npos) << status;
    EXPECT_EQ(status.find("StandAlone"), std::string::npos) << status;
  }
}

INSTANTIATE_TEST_SUITE_P(AAndB, ReplicationProtocols, ::testing::Values("A", "B"),
                         [](const auto& parameter) { return "Protocol" + parameter.param; });

// DRBD's P_PROTOCOL check: a node configured with another protocol than its peer refuses the
// connection at the handshake, both sides log which option differs, and the connection stays
// StandAlone instead of replicating with two different ideas of when a write is done.
TEST(ReplicationProtocolMismatch, DaemonsWithDifferentProtocolsStayStandAloneAndSayWhy) {
  LocalCluster cluster(2, disk_size_bytes);
  const std::string protocol_c = file_text(cluster.config_path());
  use_protocol(cluster, "A");
  const std::string protocol_a = cluster.directory() + "/protocol-a.res";
  {
    std::ofstream out(protocol_a);
    out << file_text(cluster.config_path());
  }
  cluster.write_config(protocol_c);
  cluster.use_node_config(1, protocol_a);
  std::string error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  ASSERT_TRUE(cluster.start(1, error)) << error;
  EXPECT_TRUE(wait_for_status(cluster, 0, cluster.name(1) + " connection:StandAlone", 10'000))
      << cluster.control(0, "status r0").text;
  EXPECT_TRUE(wait_for_status(cluster, 1, cluster.name(0) + " connection:StandAlone", 10'000))
      << cluster.control(1, "status r0").text;
  const std::string log0 = file_text(cluster.log_path(0));
  EXPECT_NE(log0.find("incompatible protocol settings: local C, peer A"), std::string::npos)
      << log0;
  const std::string log1 = file_text(cluster.log_path(1));
  EXPECT_NE(log1.find("incompatible protocol settings: local A, peer C"), std::string::npos)
      << log1;
}

}  // namespace
}  // namespace ditto::testing
