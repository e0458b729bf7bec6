// dittod keeps its data generations on disk (drbd9-semantics.md §3, §4.3, §12): the UUIDs it
// holds are in the superblock (drbdmeta dump-md shows them), a node restarted after missing
// writes resyncs instead of coming back with its old data as UpToDate, and a Primary that is
// killed leaves PRIMARY_IND behind, which the restart turns into CRASHED_PRIMARY.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cluster_harness.h"
#include "nbd_test_client.h"
#include "core/metadata.h"

namespace ditto::testing {
namespace {

namespace md = ditto::metadata;

constexpr std::uint64_t data_size_bytes = 16u << 20;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 13);
  return bytes;
}

md::Superblock superblock_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  std::vector<std::uint8_t> block(4096);
  in.seekg(static_cast<std::streamoff>((size - 4096) & ~std::uint64_t{4095}));
  in.read(reinterpret_cast<char*>(block.data()), 4096);
  const auto decoded = md::decode_superblock(block);
  EXPECT_TRUE(decoded.ok()) << decoded.error().message;
  return decoded.ok() ? decoded.value() : md::Superblock{};
}

bool wait_for(const LocalCluster& cluster, int index, const std::string& text) {
  for (int attempt = 0; attempt < 750; ++attempt) {
    if (cluster.control(index, "status r0").text.find(text) != std::string::npos) return true;
    ::usleep(20'000);
  }
  return false;
}

bool wait_for_log(const LocalCluster& cluster, int index, const std::string& text) {
  for (int attempt = 0; attempt < 750; ++attempt) {
    if (file_text(cluster.log_path(index)).find(text) != std::string::npos) return true;
    ::usleep(20'000);
  }
  return false;
}

// "current-uuid 0x…" from `dittoadm get-gi`: the first line.
std::string current_uuid_line(const LocalCluster& cluster, int index) {
  const std::string text = cluster.control(index, "get-gi r0").text;
  return text.substr(0, text.find('\n'));
}

std::string dump_md(const std::string& disk) {
  const CommandOutcome dump = run_command("drbdmeta --force 0 v09 " + disk +
                                          " internal dump-md 2>&1");
  EXPECT_EQ(dump.exit_status, 0) << dump.output;
  return dump.output;
}

TEST(MetadataGenerations, ANodeStoppedWhileThePeerWroteResyncsOnRestartAndDumpMdShowsTheUuids) {
  LocalCluster cluster(2, data_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 1), 0));
  ASSERT_TRUE(wait_for(cluster, 0, "r0 role:Secondary"));
  cluster.kill(1, SIGTERM);  // beta stops cleanly, UpToDate
  const std::string beta_before = dump_md(cluster.disk_path(1));

  // alpha writes without beta: a new data generation, beta's slot remembers the old one.
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 2), 4u << 20));
  ASSERT_TRUE(wait_for(cluster, 0, "r0 role:Secondary"));
  const std::string alpha_gi = cluster.control(0, "get-gi r0").text;
  ASSERT_EQ(alpha_gi.rfind("current-uuid 0x", 0), 0u) << alpha_gi;
  const std::string alpha_current = alpha_gi.substr(15, 16);
  EXPECT_EQ(beta_before.find(alpha_current), std::string::npos)
      << "alpha's new generation was already beta's:\n" << beta_before;
  EXPECT_EQ(alpha_gi.find("bitmap-uuid peer-node-id:1 0x0000000000000000"), std::string::npos)
      << "alpha does not track beta's missing writes in a bitmap generation:\n" << alpha_gi;
  // The superblock has what the running node holds (written when it changed, not at a stop).
  const std::string alpha_running = dump_md(cluster.disk_path(0));
  EXPECT_NE(alpha_running.find("current-uuid 0x" + alpha_current + ";"), std::string::npos)
      << alpha_gi << "\n" << alpha_running;

  ASSERT_TRUE(cluster.start(1, error)) << error;
  ASSERT_TRUE(cluster.wait_connected(1, 1, 10'000));
  EXPECT_TRUE(wait_for_log(cluster, 1, "resync-finished name:r0 peer-node-id:0"))
      << "beta came back without a resync:\n" << file_text(cluster.log_path(1));
  ASSERT_TRUE(wait_for(cluster, 1, "r0 role:Secondary\n  disk:UpToDate"));
  EXPECT_EQ(current_uuid_line(cluster, 1), current_uuid_line(cluster, 0))
      << "after the resync beta has alpha's generation";

  const std::string alpha_final = cluster.control(0, "get-gi r0").text;
  const std::string beta_final = cluster.control(1, "get-gi r0").text;
  cluster.kill(0, SIGTERM);
  cluster.kill(1, SIGTERM);
  for (int node = 0; node < 2; ++node) {
    SCOPED_TRACE(cluster.name(node));
    const std::string gi = node == 0 ? alpha_final : beta_final;
    const std::string dump = dump_md(cluster.disk_path(node));
    EXPECT_NE(dump.find("current-uuid 0x" + gi.substr(15, 16) + ";"), std::string::npos)
        << gi << "\n" << dump;
  }
  const CommandOutcome compare =
      run_command("cmp -n " + std::to_string(data_size_bytes) + " " + cluster.disk_path(0) + " " +
                  cluster.disk_path(1) + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << "replicas differ after the resync: " << compare.output;
}

TEST(MetadataGenerations, WhenBothNodesRestartTheGenerationsOnDiskSendTheNewerDataToTheOther) {
  LocalCluster cluster(2, data_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 6), 0));
  ASSERT_TRUE(wait_for(cluster, 0, "r0 role:Secondary"));
  cluster.kill(1, SIGTERM);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 7), 2u << 20));  // beta misses it
  ASSERT_TRUE(wait_for(cluster, 0, "r0 role:Secondary"));
  cluster.kill(0, SIGTERM);
  // Nothing in memory survives: only the superblocks know that alpha's data is newer.
  ASSERT_TRUE(cluster.start(1, error)) << error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  EXPECT_TRUE(wait_for_log(cluster, 1, "resync-finished name:r0 peer-node-id:0"))
      << "beta did not get alpha's newer data:\n" << file_text(cluster.log_path(1));
  cluster.kill(0, SIGTERM);
  cluster.kill(1, SIGTERM);
  const CommandOutcome compare =
      run_command("cmp -n " + std::to_string(data_size_bytes) + " " + cluster.disk_path(0) + " " +
                  cluster.disk_path(1) + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << "replicas differ: " << compare.output;
}

TEST(MetadataGenerations, ASecondaryKilledWithoutAShutdownComesBackOutdatedAndResyncs) {
  LocalCluster cluster(2, data_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 3), 0));
  cluster.kill(1, SIGKILL);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), pattern(1 << 20, 4), 8u << 20));
  ASSERT_TRUE(cluster.start(1, error)) << error;
  const std::string log = file_text(cluster.log_path(1));
  EXPECT_NE(log.find("no clean shutdown"), std::string::npos) << log;
  ASSERT_TRUE(wait_for(cluster, 1, "r0 role:Secondary\n  disk:UpToDate"));
  cluster.kill(0, SIGTERM);
  cluster.kill(1, SIGTERM);
  const CommandOutcome compare =
      run_command("cmp -n " + std::to_string(data_size_bytes) + " " + cluster.disk_path(0) + " " +
                  cluster.disk_path(1) + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << "replicas differ after the resync: " << compare.output;
}

TEST(MetadataGenerations, AKilledPrimaryLeavesPrimaryIndAndItsRestartSetsCrashedPrimary) {
  LocalCluster cluster(1, 4u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  nbd_handle* handle = nbd_create();
  ASSERT_EQ(nbd_connect_uri(handle, cluster.nbd_uri(0).c_str()), 0) << nbd_get_error();
  const std::vector<std::uint8_t> bytes = pattern(4096, 5);
  ASSERT_EQ(nbd_pwrite(handle, bytes.data(), bytes.size(), 0, 0), 0) << nbd_get_error();
  ASSERT_TRUE(wait_for(cluster, 0, "r0 role:Primary"));
  const md::Superblock running = superblock_of(cluster.disk_path(0));
  EXPECT_NE(running.flags & md::md_flag::primary_ind, 0u)
      << "PRIMARY_IND must be on disk before a Primary's write reaches it";
  EXPECT_NE(running.current_uuid & 1, 0u) << "the current UUID of a Primary has bit 0 set";

  cluster.kill(0, SIGKILL);  // with the writer still connected: the node is Primary
  nbd_close(handle);
  const md::Superblock killed = superblock_of(cluster.disk_path(0));
  EXPECT_NE(killed.flags & md::md_flag::primary_ind, 0u);
  EXPECT_EQ(killed.flags & md::md_flag::al_clean, 0u);
  EXPECT_EQ(killed.flags & md::md_flag::crashed_primary, 0u);

  ASSERT_TRUE(cluster.start(0, error)) << error;
  EXPECT_NE(superblock_of(cluster.disk_path(0)).flags & md::md_flag::crashed_primary, 0u)
      << "the restart of a killed Primary must set CRASHED_PRIMARY";
  EXPECT_NE(file_text(cluster.log_path(0)).find("CRASHED_PRIMARY"), std::string::npos);
  cluster.kill(0, SIGTERM);
  const std::string dump = dump_md(cluster.disk_path(0));
  // AL_CLEAN | CRASHED_PRIMARY | WAS_UP_TO_DATE | CONSISTENT: the crash stays recorded until a
  // new generation supersedes it.
  EXPECT_NE(dump.find("flags 0x000000D1;"), std::string::npos) << dump;
}

}  // namespace
}  // namespace ditto::testing
