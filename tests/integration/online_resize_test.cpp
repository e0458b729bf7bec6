// Online grow with real dittod processes (dittoadm resize, core/node_resize.cpp): the operator
// grows every node's backing file, `dittoadm resize r0` moves each node's metadata to the new
// end and commits the new size on both, the new area is resynced from the Primary, new NBD
// connections see the new size and can write past the old end, and drbdmeta reads the grown
// metadata with la-size-sect at the new size.
#include <libnbd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "cluster_harness.h"
#include "core/metadata.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t mib = 1024 * 1024;
constexpr std::uint64_t old_data_bytes = 8 * mib;
constexpr int alpha = 0;
constexpr int beta = 1;

bool tool_exists(const std::string& name) {
  return run_command("command -v " + name + " >/dev/null 2>&1").exit_status == 0;
}

CommandOutcome dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  return run_command(build_program("datapath/dittoadm") + " --control " +
                     cluster.control_socket(index) + " " + arguments + " 2>&1");
}

std::uint64_t file_bytes(const std::string& path) {
  return std::stoull(run_command("stat -c %s " + path).output);
}

// The data area of a one-peer internal-metadata device of `device_bytes`.
std::uint64_t data_bytes_of(std::uint64_t device_bytes) {
  const auto layout = metadata::internal_layout(device_bytes, metadata::LayoutOptions{});
  EXPECT_TRUE(layout.ok());
  return layout.ok() ? layout.value().usable_sectors * metadata::sector_bytes : 0;
}

// Writes `bytes` at `offset` through a new NBD connection and flushes; false with the reason.
bool nbd_write(const std::string& uri, std::uint64_t offset, const std::vector<std::uint8_t>& bytes,
               std::string& error) {
  nbd_handle* handle = nbd_create();
  const bool ok = nbd_connect_uri(handle, uri.c_str()) == 0 &&
                  nbd_pwrite(handle, bytes.data(), bytes.size(), offset, 0) == 0 &&
                  nbd_flush(handle, 0) == 0;
  if (!ok) error = nbd_get_error() != nullptr ? nbd_get_error() : "unknown NBD error";
  nbd_shutdown(handle, 0);
  nbd_close(handle);
  return ok;
}

TEST(OnlineResize, GrowingBothFilesThenResizeExposesTheNewAreaResyncedAndPersistsLaSize) {
  if (!tool_exists("nbdinfo")) GTEST_SKIP() << "nbdinfo missing";
  LocalCluster cluster(2, old_data_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(alpha, error)) << error;
  std::vector<std::uint8_t> head(mib);
  for (std::size_t i = 0; i < head.size(); ++i) head[i] = static_cast<std::uint8_t>(i * 7 + 1);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(alpha), 0, head, error)) << error;

  // Only alpha's file grew: beta refuses, naming itself, and nothing changes.
  const std::uint64_t old_file_bytes = file_bytes(cluster.disk_path(alpha));
  const std::uint64_t new_file_bytes = old_file_bytes + 8 * mib;
  ASSERT_EQ(run_command("truncate -s " + std::to_string(new_file_bytes) + " " +
                        cluster.disk_path(alpha)).exit_status, 0);
  const CommandOutcome refused = dittoadm(cluster, alpha, "resize r0");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find("ERR_DISK_TOO_SMALL"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("beta"), std::string::npos) << refused.output;
  CommandOutcome size = run_command("nbdinfo --size " + cluster.nbd_uri(alpha) + " 2>&1");
  ASSERT_EQ(size.exit_status, 0) << size.output;
  EXPECT_EQ(std::stoull(size.output), old_data_bytes);

  // Both grew: resize (run on the Secondary) commits on both.
  ASSERT_EQ(run_command("truncate -s " + std::to_string(new_file_bytes) + " " +
                        cluster.disk_path(beta)).exit_status, 0);
  const CommandOutcome resized = dittoadm(cluster, beta, "resize r0");
  ASSERT_EQ(resized.exit_status, 0) << resized.output << file_text(cluster.log_path(beta));
  const std::uint64_t new_data_bytes = data_bytes_of(new_file_bytes);
  ASSERT_GT(new_data_bytes, old_data_bytes);
  size = run_command("nbdinfo --size " + cluster.nbd_uri(alpha) + " 2>&1");
  ASSERT_EQ(size.exit_status, 0) << size.output;
  EXPECT_EQ(std::stoull(size.output), new_data_bytes);

  // A write past the old end, through a new connection.
  std::vector<std::uint8_t> tail(2 * mib);
  for (std::size_t i = 0; i < tail.size(); ++i) tail[i] = static_cast<std::uint8_t>(i * 13 + 5);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(alpha), old_data_bytes + mib, tail, error)) << error;

  // The new area's resync ends; both UpToDate, nothing out of sync.
  EXPECT_TRUE(wait_for_status(cluster, beta, "disk:UpToDate", 15'000));
  for (int attempt = 0; attempt < 750; ++attempt) {
    const std::string status = cluster.control(alpha, "status r0").text;
    if (status.find("replication:Sync") == std::string::npos) break;
    run_command("sleep 0.02");
  }
  for (int index : {alpha, beta}) {
    const std::string status = cluster.control(index, "status r0").text;
    EXPECT_NE(status.find("disk:UpToDate"), std::string::npos) << status;
    EXPECT_EQ(status.find("out-of-sync"), std::string::npos) << status;
  }
  // The grown volume is the running configuration now: adjust takes the file's live options.
  const CommandOutcome adjusted = dittoadm(cluster, beta, "adjust r0");
  EXPECT_EQ(adjusted.exit_status, 0) << adjusted.output;
  for (int index : {alpha, beta}) cluster.kill(index, SIGTERM);

  // Identical data areas, with the write past the old end on both.
  const CommandOutcome same =
      run_command("cmp -n " + std::to_string(new_data_bytes) + " " + cluster.disk_path(alpha) +
                  " " + cluster.disk_path(beta) + " 2>&1");
  EXPECT_EQ(same.exit_status, 0) << same.output;
  const std::string tail_file = cluster.directory() + "/tail.bin";
  {
    std::FILE* file = std::fopen(tail_file.c_str(), "wb");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(tail.data(), 1, tail.size(), file), tail.size());
    std::fclose(file);
  }
  const CommandOutcome tail_there = run_command(
      "cmp -n " + std::to_string(tail.size()) + " -i 0:" + std::to_string(old_data_bytes + mib) +
      " " + tail_file + " " + cluster.disk_path(beta) + " 2>&1");
  EXPECT_EQ(tail_there.exit_status, 0) << tail_there.output;

  // drbdmeta reads the moved metadata; la-size-sect is the new size.
  if (!tool_exists("drbdmeta")) GTEST_SKIP() << "drbdmeta (drbd-utils) is not installed";
  for (int index : {alpha, beta}) {
    const CommandOutcome dump = run_command("drbdmeta --force 0 v09 " + cluster.disk_path(index) +
                                            " internal dump-md 2>&1");
    ASSERT_EQ(dump.exit_status, 0) << dump.output;
    EXPECT_NE(dump.output.find("la-size-sect " + std::to_string(new_data_bytes / 512) + ";"),
              std::string::npos)
        << dump.output;
  }
}

}  // namespace
}  // namespace ditto::testing
