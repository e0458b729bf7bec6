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

}  // namespace
}  // namespace ditto::testing
