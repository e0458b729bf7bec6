// Two Primaries with real dittod processes (allow-two-primaries, for live migration; LINBIT's
// drbd9-tests `migrate` and `two-primaries-reject`): three nodes, alpha Primary writes through
// NBD, beta is promoted too, the writer moves to beta, alpha demotes, and every replica ends
// byte-identical. With the option off beta's promotion is refused with SS_TWO_PRIMARIES.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 8u << 20;

CommandOutcome dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  return run_command(build_program("datapath/dittoadm") + " --control " +
                     cluster.control_socket(index) + " " + arguments + " 2>&1");
}

void allow_two_primaries(const LocalCluster& cluster) {
  std::string text = file_text(cluster.config_path());
  const std::string from = "protocol C;";
  const std::size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, from.size(), "protocol C; allow-two-primaries yes;");
  cluster.write_config(text);
}

// Writes `pattern` over [offset, offset + length) of the export of node `index` (qemu-io) and
// of the file `expected`.
void write_pattern(const LocalCluster& cluster, int index, const std::string& expected,
                   char pattern, std::uint64_t offset, std::uint64_t length) {
  char command[128];
  std::snprintf(command, sizeof command, "write -P 0x%02x %llu %llu",
                static_cast<unsigned>(static_cast<unsigned char>(pattern)),
                static_cast<unsigned long long>(offset), static_cast<unsigned long long>(length));
  const CommandOutcome written = run_command("qemu-io -f raw -c '" + std::string(command) + "' " +
                                             cluster.nbd_uri(index) + " 2>&1");
  ASSERT_EQ(written.exit_status, 0) << written.output;
  std::fstream file(expected, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(offset));
  const std::string bytes(length, pattern);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(file.good()) << expected;
}

bool replica_matches(const LocalCluster& cluster, int index, const std::string& expected,
                     std::string& output) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const CommandOutcome compare = run_command("cmp -n " + std::to_string(disk_size_bytes) + " " +
                                               expected + " " + cluster.disk_path(index) + " 2>&1");
    output = compare.output;
    if (compare.exit_status == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(TwoPrimaries, ALiveMigrationFromAlphaToBetaLeavesEveryReplicaIdentical) {
  LocalCluster cluster(3, disk_size_bytes);
  allow_two_primaries(cluster);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const std::string expected = cluster.directory() + "/expected.img";
  {
    const CommandOutcome zeroes =
        run_command("truncate -s " + std::to_string(disk_size_bytes) + " " + expected + " 2>&1");
    ASSERT_EQ(zeroes.exit_status, 0) << zeroes.output;
  }
  // The initial sync is skipped as the LINBIT tests do; the disks start zeroed alike.
  const CommandOutcome fresh = dittoadm(cluster, 0, "new-current-uuid --clear-bitmap r0");
  ASSERT_EQ(fresh.exit_status, 0) << fresh.output;

  const CommandOutcome alpha_primary = dittoadm(cluster, 0, "primary r0");
  ASSERT_EQ(alpha_primary.exit_status, 0) << alpha_primary.output;
  write_pattern(cluster, 0, expected, '\x11', 0, 4u << 20);

  // The migration target promotes while alpha is still Primary.
  const CommandOutcome beta_primary = dittoadm(cluster, 1, "primary r0");
  ASSERT_EQ(beta_primary.exit_status, 0) << beta_primary.output;
  EXPECT_TRUE(wait_for_status(cluster, 2, "alpha role:Primary"))
      << cluster.control(2, "status r0").text;
  EXPECT_TRUE(wait_for_status(cluster, 2, "beta role:Primary"))
      << cluster.control(2, "status r0").text;
  const std::string alpha_status = cluster.control(0, "status r0").text;
  EXPECT_EQ(alpha_status.rfind("r0 role:Primary", 0), 0u) << alpha_status;
  EXPECT_NE(alpha_status.find("beta role:Primary"), std::string::npos) << alpha_status;
  const std::string events = cluster.control(1, "events2 r0 --now").text;
  EXPECT_NE(events.find("exists resource name:r0 role:Primary"), std::string::npos) << events;
  EXPECT_NE(events.find("conn-name:alpha connection:Connected role:Primary"), std::string::npos)
      << events;

  // Both write (different blocks) while both are Primary, then the writer moves to beta.
  write_pattern(cluster, 0, expected, '\x22', 4u << 20, 1u << 20);
  write_pattern(cluster, 1, expected, '\x33', 6u << 20, 1u << 20);
  const CommandOutcome alpha_secondary = dittoadm(cluster, 0, "secondary r0");
  ASSERT_EQ(alpha_secondary.exit_status, 0) << alpha_secondary.output;
  write_pattern(cluster, 1, expected, '\x44', 1u << 20, 2u << 20);

  for (int index = 0; index < 3; ++index) {
    std::string output;
    EXPECT_TRUE(replica_matches(cluster, index, expected, output))
        << cluster.name(index) << " differs: " << output;
    const std::string status = cluster.control(index, "status r0 --statistics").text;
    EXPECT_EQ(status.find("StandAlone"), std::string::npos) << status;
    EXPECT_EQ(status.find("Connecting"), std::string::npos) << status;
    EXPECT_EQ(status.find("out-of-sync:"), std::string::npos) << status;
  }
  EXPECT_EQ(file_text(cluster.log_path(0)).find("concurrent writes"), std::string::npos);
}

TEST(TwoPrimaries, WithoutAllowTwoPrimariesBetasPromotionIsRefusedUntilAdjustTurnsItOn) {
  LocalCluster cluster(3, disk_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const CommandOutcome alpha_primary = dittoadm(cluster, 0, "primary r0");
  ASSERT_EQ(alpha_primary.exit_status, 0) << alpha_primary.output;
  const CommandOutcome refused = dittoadm(cluster, 1, "primary r0");
  EXPECT_NE(refused.exit_status, 0) << refused.output;
  EXPECT_NE(refused.output.find("SS_TWO_PRIMARIES"), std::string::npos) << refused.output;
  EXPECT_EQ(cluster.control(1, "status r0").text.rfind("r0 role:Secondary", 0), 0u);

  // `adjust` turns the option on live (no restart): then beta may promote beside alpha.
  allow_two_primaries(cluster);
  for (int index = 0; index < 3; ++index) {
    const CommandOutcome adjusted = dittoadm(cluster, index, "adjust r0");
    ASSERT_EQ(adjusted.exit_status, 0) << adjusted.output;
    EXPECT_NE(adjusted.output.find("allow-two-primaries no -> yes"), std::string::npos)
        << adjusted.output;
  }
  const CommandOutcome promoted = dittoadm(cluster, 1, "primary r0");
  EXPECT_EQ(promoted.exit_status, 0) << promoted.output;
  EXPECT_TRUE(wait_for_status(cluster, 0, "beta role:Primary"))
      << cluster.control(0, "status r0").text;
}

TEST(TwoPrimaries, DittodRefusesAllowTwoPrimariesWithProtocolAWithALocatedError) {
  LocalCluster cluster(2, disk_size_bytes);
  std::string text = file_text(cluster.config_path());
  const std::size_t at = text.find("protocol C;");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 11, "protocol A; allow-two-primaries yes;");
  cluster.write_config(text);
  std::string error;
  EXPECT_FALSE(cluster.start(0, error));
  const std::string log = file_text(cluster.log_path(0)) + error;
  EXPECT_NE(log.find("r0.res:2:"), std::string::npos) << log;
  EXPECT_NE(log.find("allow-two-primaries requires protocol C"), std::string::npos) << log;
}

}  // namespace
}  // namespace ditto::testing
