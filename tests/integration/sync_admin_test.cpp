// dittoadm new-current-uuid --clear-bitmap, pause-sync / resume-sync, detach and attach with real
// dittod processes: a just-created pair skips its initial sync, a paused resync makes no progress
// until it is resumed, a detached Primary keeps writing through its peer, and an attach after a
// detach resyncs exactly what the disk missed.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <nlohmann/json.hpp>
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

CommandOutcome dittoadm(const LocalCluster& cluster, int index, const std::string& arguments) {
  return run_command(build_program("datapath/dittoadm") + " --control " +
                     cluster.control_socket(index) + " " + arguments + " 2>&1");
}

std::string status_of(const LocalCluster& cluster, int index) {
  return cluster.control(index, "status r0").text;
}

// The superblock sits in the last 4 KiB block of the file.
std::uint64_t superblock_offset(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  return (static_cast<std::uint64_t>(in.tellg()) - 4096) & ~std::uint64_t{4095};
}

// What DRBD's create-md followed by an attach leaves: the node's id recorded, CONSISTENT clear
// (Inconsistent), current UUID still 4 (just created).
void make_created_and_inconsistent(const std::string& path, std::int32_t node_id) {
  const std::uint64_t offset = superblock_offset(path);
  std::vector<std::uint8_t> block(4096);
  {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(reinterpret_cast<char*>(block.data()), 4096);
  }
  auto decoded = md::decode_superblock(block);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  md::Superblock superblock = decoded.value();
  superblock.node_id = node_id;
  superblock.flags &= ~(md::md_flag::consistent | md::md_flag::was_up_to_date);
  const auto bytes = md::encode_superblock(superblock);
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(offset));
  out.write(reinterpret_cast<const char*>(bytes.data()), 4096);
  ASSERT_TRUE(out.good()) << path;
}

// "current-uuid 0x…" from `dittoadm get-gi`: the first line.
std::string current_uuid_line(const LocalCluster& cluster, int index) {
  const CommandOutcome gi = dittoadm(cluster, index, "get-gi r0");
  EXPECT_EQ(gi.exit_status, 0) << gi.output;
  return gi.output.substr(0, gi.output.find('\n'));
}

// The `done:` value of the first peer device in `status`, or "" when none is shown.
std::string done_of(const std::string& status) {
  const std::size_t at = status.find(" done:");
  if (at == std::string::npos) return {};
  return status.substr(at + 6, status.find_first_of(" \n", at + 6) - at - 6);
}

TEST(SyncAdmin, NewCurrentUuidClearBitmapMakesAFreshInconsistentPairUpToDateWithoutAResync) {
  LocalCluster cluster(2, 8u << 20);
  make_created_and_inconsistent(cluster.disk_path(0), 0);
  make_created_and_inconsistent(cluster.disk_path(1), 1);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_NE(status_of(cluster, 0).find("disk:Inconsistent"), std::string::npos)
      << status_of(cluster, 0);
  ASSERT_NE(status_of(cluster, 1).find("disk:Inconsistent"), std::string::npos)
      << status_of(cluster, 1);
  const CommandOutcome refused = dittoadm(cluster, 0, "new-current-uuid r0");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find("ERR_CONNECTED"), std::string::npos) << refused.output;

  const CommandOutcome done = dittoadm(cluster, 0, "new-current-uuid --clear-bitmap r0");
  ASSERT_EQ(done.exit_status, 0) << done.output;
  EXPECT_TRUE(wait_for_status(cluster, 1, "disk:UpToDate", 10'000)) << status_of(cluster, 1);
  EXPECT_TRUE(wait_for_status(cluster, 0, "peer-disk:UpToDate", 10'000)) << status_of(cluster, 0);
  EXPECT_NE(status_of(cluster, 0).find("  disk:UpToDate"), std::string::npos);
  const std::string current = current_uuid_line(cluster, 0);
  EXPECT_NE(current, "current-uuid 0x0000000000000004");
  EXPECT_EQ(current_uuid_line(cluster, 1), current);
  for (int index = 0; index < 2; ++index) {
    const std::string log = file_text(cluster.log_path(index));
    EXPECT_EQ(log.find("replication:SyncTarget"), std::string::npos) << log;
    EXPECT_EQ(log.find("replication:SyncSource"), std::string::npos) << log;
  }
}

TEST(SyncAdmin, APausedResyncShowsResyncSuspendedAndMakesNoProgressUntilResumeSync) {
  LocalCluster cluster(2, 64u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const CommandOutcome refused = dittoadm(cluster, 0, "resume-sync r0:beta");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find("ERR_PAUSE_IS_CLEAR"), std::string::npos) << refused.output;
  ASSERT_EQ(dittoadm(cluster, 0, "invalidate-remote r0:beta").exit_status, 0);
  const CommandOutcome paused = dittoadm(cluster, 0, "pause-sync r0:beta");
  ASSERT_EQ(paused.exit_status, 0) << paused.output;
  EXPECT_TRUE(wait_for_status(cluster, 1, "resync-suspended:peer", 10'000))
      << status_of(cluster, 1);
  const std::string source = status_of(cluster, 0);
  EXPECT_NE(source.find("replication:PausedSyncS"), std::string::npos) << source;
  EXPECT_NE(source.find("resync-suspended:user"), std::string::npos) << source;
  ::usleep(200'000);  // the requests already in flight are answered
  const std::string before = done_of(status_of(cluster, 1));
  ::usleep(500'000);
  const std::string target = status_of(cluster, 1);
  EXPECT_NE(target.find("replication:PausedSyncT"), std::string::npos) << target;
  EXPECT_FALSE(before.empty()) << target;
  EXPECT_EQ(done_of(target), before) << target;
  EXPECT_NE(before, "100.00");
  // What status --json and --verbose --statistics show of the paused resync: its size in
  // sectors, the time paused so far, the rate since the last mark and the ETA.
  const auto json = nlohmann::json::parse(cluster.control(1, "status r0 --json").text, nullptr,
                                          false);
  ASSERT_FALSE(json.is_discarded());
  const nlohmann::json& details = json[0]["connections"][0]["peer_devices"][0];
  EXPECT_TRUE(details["has-sync-details"].get<bool>()) << details;
  EXPECT_EQ(details["rs-total"].get<std::uint64_t>(), (64u << 20) / 512) << details;
  EXPECT_GE(details["rs-paused-ms"].get<std::int64_t>(), 500) << details;
  // The same progress as the text status (0 when the pause came before the first block, which
  // a loaded machine allows: pause-sync follows invalidate-remote at once).
  ASSERT_FALSE(before.empty());
  EXPECT_NEAR(details["percent-resync-done"].get<double>(), std::stod(before), 0.01) << details;
  EXPECT_LT(details["percent-resync-done"].get<double>(), 100.0) << details;
  const std::string verbose = cluster.control(1, "status r0 --verbose --statistics").text;
  EXPECT_NE(verbose.find(" dbdt1:"), std::string::npos) << verbose;
  EXPECT_NE(verbose.find(" eta:"), std::string::npos) << verbose;

  ASSERT_EQ(dittoadm(cluster, 0, "resume-sync r0:beta").exit_status, 0);
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (file_text(cluster.log_path(1)).find("resync-finished name:r0") != std::string::npos) {
      break;
    }
    ::usleep(20'000);
  }
  EXPECT_TRUE(wait_for_status(cluster, 1, "r0 role:Secondary\n  disk:UpToDate", 10'000))
      << status_of(cluster, 1);
  EXPECT_EQ(status_of(cluster, 1).find("resync-suspended"), std::string::npos);
}

TEST(SyncAdmin, ADetachedPrimaryIsDisklessAndItsWritesStillReachThePeer) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  const CommandOutcome detached = dittoadm(cluster, 0, "detach r0");
  ASSERT_EQ(detached.exit_status, 0) << detached.output;
  EXPECT_NE(status_of(cluster, 0).find("disk:Diskless"), std::string::npos)
      << status_of(cluster, 0);
  EXPECT_TRUE(wait_for_status(cluster, 1, "peer-disk:Diskless", 10'000)) << status_of(cluster, 1);
  const std::string log = file_text(cluster.log_path(0));
  EXPECT_NE(log.find("disk:Detaching"), std::string::npos) << log;
  EXPECT_NE(log.find("metadata written back clean after detach"), std::string::npos) << log;

  const std::vector<std::uint8_t> bytes(8192, 0x5a);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), bytes, 1 << 20));
  // The write is on beta's disk, at the same offset of its data area.
  std::vector<std::uint8_t> stored(bytes.size());
  std::ifstream in(cluster.disk_path(1), std::ios::binary);
  in.seekg(1 << 20);
  in.read(reinterpret_cast<char*>(stored.data()), static_cast<std::streamsize>(stored.size()));
  EXPECT_EQ(stored, bytes);
}

// `length` bytes of the data area of a node's disk from `offset`.
std::vector<std::uint8_t> disk_bytes(const LocalCluster& cluster, int index, std::uint64_t offset,
                                     std::size_t length) {
  std::vector<std::uint8_t> bytes(length);
  std::ifstream in(cluster.disk_path(index), std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(length));
  return bytes;
}

// The blocks of the newest `resync-finished` line in a node's log, or -1.
long resync_finished_blocks(const LocalCluster& cluster, int index) {
  const std::string log = file_text(cluster.log_path(index));
  const std::size_t line = log.rfind("resync-finished name:r0");
  if (line == std::string::npos) return -1;
  const std::size_t at = log.find(" blocks:", line);
  return std::stol(log.substr(at + 8, log.find_first_of(" \n", at + 8) - at - 8));
}

bool wait_resync_finished(const LocalCluster& cluster, int index) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (resync_finished_blocks(cluster, index) >= 0) return true;
    ::usleep(20'000);
  }
  return false;
}

// The first 6 MiB of the data areas (every write of these tests) are equal on both disks.
void expect_disks_identical(const LocalCluster& cluster) {
  EXPECT_TRUE(disk_bytes(cluster, 0, 0, 6u << 20) == disk_bytes(cluster, 1, 0, 6u << 20));
}

TEST(SyncAdmin, ADetachedSecondaryAttachesAgainAndResyncsExactlyTheBlocksWrittenMeanwhile) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), std::vector<std::uint8_t>(4096, 0x11), 0));
  ASSERT_EQ(dittoadm(cluster, 1, "detach r0").exit_status, 0);
  ASSERT_TRUE(wait_for_status(cluster, 0, "peer-disk:Diskless", 10'000)) << status_of(cluster, 0);
  // 16 + 2 blocks of 4 KiB the detached disk misses.
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), std::vector<std::uint8_t>(64 << 10, 0x5a), 1 << 20));
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), std::vector<std::uint8_t>(8 << 10, 0x6b), 3 << 20));
  const auto statistics = [&] {
    return cluster.control(0, "status r0 --verbose --statistics").text;
  };
  EXPECT_NE(statistics().find("out-of-sync:72"), std::string::npos) << statistics();

  const CommandOutcome attached = dittoadm(cluster, 1, "attach r0");
  ASSERT_EQ(attached.exit_status, 0) << attached.output;
  ASSERT_TRUE(wait_resync_finished(cluster, 1)) << file_text(cluster.log_path(1));
  EXPECT_TRUE(wait_for_status(cluster, 1, "r0 role:Secondary\n  disk:UpToDate", 10'000))
      << status_of(cluster, 1);
  EXPECT_EQ(resync_finished_blocks(cluster, 1), 18);
  const std::string log = file_text(cluster.log_path(1));
  EXPECT_NE(log.find("disk:Attaching"), std::string::npos) << log;
  EXPECT_NE(log.find("disk:Inconsistent"), std::string::npos) << log;
  expect_disks_identical(cluster);
  EXPECT_NE(statistics().find("out-of-sync:0"), std::string::npos) << statistics();
}

TEST(SyncAdmin, ADetachedPrimaryAttachesAgainWhileWritingAndStaysPrimary) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  ASSERT_EQ(dittoadm(cluster, 0, "detach r0").exit_status, 0);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), std::vector<std::uint8_t>(32 << 10, 0x21), 1 << 20));
  const CommandOutcome attached = dittoadm(cluster, 0, "attach r0");
  ASSERT_EQ(attached.exit_status, 0) << attached.output;
  // Written while the disk catches up (or just after): through the peer, then resynced.
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), std::vector<std::uint8_t>(16 << 10, 0x42), 2 << 20));
  EXPECT_TRUE(wait_for_status(cluster, 0, "r0 role:Primary\n  disk:UpToDate", 10'000))
      << status_of(cluster, 0);
  ASSERT_TRUE(wait_resync_finished(cluster, 0)) << file_text(cluster.log_path(0));
  expect_disks_identical(cluster);
  EXPECT_EQ(disk_bytes(cluster, 0, 2 << 20, 16 << 10), std::vector<std::uint8_t>(16 << 10, 0x42));
  EXPECT_EQ(disk_bytes(cluster, 0, 1 << 20, 32 << 10), std::vector<std::uint8_t>(32 << 10, 0x21));
}

TEST(SyncAdmin, AttachIsRefusedOnANodeWhoseDiskIsAttached) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  const CommandOutcome refused = dittoadm(cluster, 1, "attach r0");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find("ERR_DISK_CONFIGURED"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("detach first"), std::string::npos) << refused.output;
}

TEST(SyncAdmin, AttachOfADamagedDiskFailsWithItsPathAndThePrimaryKeepsServingDiskless) {
  LocalCluster cluster(2, 8u << 20);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  ASSERT_EQ(dittoadm(cluster, 0, "detach r0").exit_status, 0);
  ASSERT_TRUE(wait_for_status(cluster, 1, "peer-disk:Diskless", 10'000)) << status_of(cluster, 1);
  {  // the superblock's magic is gone
    std::fstream out(cluster.disk_path(0), std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(static_cast<std::streamoff>(superblock_offset(cluster.disk_path(0))));
    const std::vector<char> zeros(64, 0);
    out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
  }
  const CommandOutcome refused = dittoadm(cluster, 0, "attach r0");
  EXPECT_EQ(refused.exit_status, 11) << refused.output;
  EXPECT_NE(refused.output.find(cluster.disk_path(0)), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("ERR_MD_INVALID"), std::string::npos) << refused.output;
  EXPECT_NE(status_of(cluster, 0).find("disk:Diskless"), std::string::npos)
      << status_of(cluster, 0);
  ASSERT_TRUE(nbd_write(cluster.nbd_uri(0), std::vector<std::uint8_t>(4096, 0x33), 0));
  EXPECT_EQ(disk_bytes(cluster, 1, 0, 4096), std::vector<std::uint8_t>(4096, 0x33));
}

}  // namespace
}  // namespace ditto::testing
