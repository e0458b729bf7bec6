// Real NBD clients against a real two-node ditto cluster (protocol C, nobody promoted by hand:
// the writers auto-promote alpha). Every test ends by checking that the two replicas hold
// byte-identical data, whatever commands the client used (WRITE, WRITE_ZEROES, TRIM, FUA).
// qemu-img, qemu-io, nbdinfo, nbdcopy and fio are Debian packages; a missing one skips its test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libnbd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 48u << 20;

bool tool_exists(const std::string& name) {
  return run_command("command -v " + name + " >/dev/null 2>&1").exit_status == 0;
}

class NbdClients : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(cluster_.start_all_connected(error)) << error;
    const CommandOutcome size = run_command("nbdinfo --size " + uri() + " 2>&1");
    ASSERT_EQ(size.exit_status, 0) << size.output;
    export_size_bytes_ = std::stoull(size.output);
    ASSERT_GT(export_size_bytes_, 32u << 20);
  }

  std::string uri() const { return cluster_.nbd_uri(0); }
  std::string file(const std::string& name) const { return cluster_.directory() + "/" + name; }

  // The exported range of both backing files (the metadata at their ends differs by design).
  void expect_replicas_identical() const {
    const CommandOutcome compare =
        run_command("cmp -n " + std::to_string(export_size_bytes_) + " " + cluster_.disk_path(0) +
                    " " + cluster_.disk_path(1) + " 2>&1");
    EXPECT_EQ(compare.exit_status, 0) << "replicas differ: " << compare.output;
  }

  // A file of the export's size: random data with zero runs (so converters send WRITE_ZEROES).
  void write_source(const std::string& path) const {
    std::mt19937_64 random(7);
    std::vector<std::uint8_t> bytes(export_size_bytes_, 0);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      const bool zero_run = (i / (3u << 20)) % 2 == 1;
      if (!zero_run) bytes[i] = static_cast<std::uint8_t>(random());
    }
    FILE* out = std::fopen(path.c_str(), "wb");
    ASSERT_NE(out, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), out), bytes.size());
    std::fclose(out);
  }

  LocalCluster cluster_{2, disk_size_bytes};
  std::uint64_t export_size_bytes_ = 0;
};

TEST_F(NbdClients, NbdinfoShowsTheSizeAndEveryCommandTheExportHonours) {
  const CommandOutcome result = run_command("nbdinfo --json " + uri() + " 2>&1");
  ASSERT_EQ(result.exit_status, 0) << result.output;
  const auto json = nlohmann::json::parse(result.output, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << result.output;
  const auto& info = json["exports"][0];
  EXPECT_EQ(info["export-size"], export_size_bytes_);
  EXPECT_EQ(info["is_read_only"], false);
  for (const char* flag : {"can_flush", "can_fua", "can_trim", "can_zero", "can_fast_zero",
                           "can_cache", "can_multi_conn"}) {
    EXPECT_EQ(info[flag], true) << flag << " in " << result.output;
  }
}

TEST_F(NbdClients, QemuImgConvertsInAndOutUnchangedAndTheReplicasMatch) {
  if (!tool_exists("qemu-img")) GTEST_SKIP() << "qemu-img is not installed";
  write_source(file("in.img"));
  const CommandOutcome in =
      run_command("qemu-img convert -n -f raw -O raw " + file("in.img") + " " + uri() + " 2>&1");
  ASSERT_EQ(in.exit_status, 0) << in.output;
  const CommandOutcome out =
      run_command("qemu-img convert -f raw -O raw " + uri() + " " + file("out.img") + " 2>&1");
  ASSERT_EQ(out.exit_status, 0) << out.output;
  const CommandOutcome compare = run_command("cmp " + file("in.img") + " " + file("out.img"));
  EXPECT_EQ(compare.exit_status, 0) << compare.output;
  expect_replicas_identical();
}

TEST_F(NbdClients, NbdcopyOverSeveralConnectionsWritesWhatQemuImgReadsBack) {
  if (!tool_exists("nbdcopy") || !tool_exists("qemu-img")) GTEST_SKIP() << "tools missing";
  write_source(file("in.img"));
  // CAN_MULTI_CONN lets nbdcopy open several connections; --flush flushes each at the end.
  const CommandOutcome in =
      run_command("nbdcopy --flush --connections=2 " + file("in.img") + " " + uri() + " 2>&1");
  ASSERT_EQ(in.exit_status, 0) << in.output;
  const CommandOutcome compare =
      run_command("qemu-img compare -f raw -F raw " + file("in.img") + " " + uri() + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << compare.output;
  expect_replicas_identical();
}

TEST_F(NbdClients, QemuIoZeroesDiscardsAndReadsBack) {
  if (!tool_exists("qemu-io")) GTEST_SKIP() << "qemu-io is not installed";
  // 32 MiB of zeroes: 32 replicated chunks; then a FUA zero, a discard, and a fast zero (which
  // must fail with ENOTSUP and leave the data alone).
  const CommandOutcome result = run_command(
      "qemu-io -f raw -c 'write -P 0x55 0 34M' -c 'write -z 1M 32M' -c 'read -P 0 1M 32M' "
      "-c 'read -P 0x55 0 1M' -c 'read -P 0x55 33M 1M' -c 'write -z -f 0 64k' "
      "-c 'read -P 0 0 64k' -c 'discard 33M 1M' -c 'write -z -n 64k 64k' "
      "-c 'read -P 0x55 64k 64k' -c 'flush' " +
      uri() + " 2>&1");
  EXPECT_THAT(result.output, ::testing::Not(::testing::HasSubstr("Pattern verification")))
      << result.output;
  EXPECT_THAT(result.output, ::testing::HasSubstr("write failed: Operation not supported"))
      << "FAST_ZERO is refused: " << result.output;
  EXPECT_THAT(result.output, ::testing::HasSubstr("discard 1048576/1048576 bytes"))
      << result.output;
  EXPECT_THAT(result.output, ::testing::HasSubstr("read 33554432/33554432 bytes")) << result.output;
  expect_replicas_identical();
}

TEST_F(NbdClients, FioTrimsAndWritesWithVerification) {
  if (!tool_exists("fio")) GTEST_SKIP() << "fio is not installed";
  const CommandOutcome result =
      run_command("fio --name=trimwrite --ioengine=nbd --uri=" + uri() +
                  " --rw=trimwrite --bs=64k --size=8M --iodepth=8 --output-format=json 2>&1");
  ASSERT_EQ(result.exit_status, 0) << result.output;
  const auto json =
      nlohmann::json::parse(result.output.substr(result.output.find('{')), nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << result.output;
  const auto& job = json["jobs"][0];
  EXPECT_EQ(job["error"], 0) << result.output;
  EXPECT_EQ(job["trim"]["io_bytes"], 8u << 20) << "every trim was answered";
  EXPECT_EQ(job["write"]["io_bytes"], 8u << 20);
  const CommandOutcome verify =
      run_command("fio --name=verify --ioengine=nbd --uri=" + uri() +
                  " --rw=randwrite --bs=4k --size=8M --iodepth=16 --verify=crc32c"
                  " --verify_state_save=0 --output-format=terse 2>&1");
  EXPECT_EQ(verify.exit_status, 0) << verify.output;
  expect_replicas_identical();
}

// Regression: a write not aligned to the advertised minimum block size (at least 512 here, the
// O_DIRECT alignment) used to reach the core with its offset rounded down to a sector — written
// to the wrong place — or, 512-aligned but not 4096-aligned, to fail in the O_DIRECT disk and
// detach the node's disk. It must be EINVAL and change nothing.
TEST_F(NbdClients, AMisalignedWriteIsEinvalAndChangesNothing) {
  nbd_handle* handle = nbd_create();
  ASSERT_NE(handle, nullptr);
  ASSERT_EQ(nbd_set_strict_mode(handle, 0), 0);  // let the bad request reach the server
  ASSERT_EQ(nbd_connect_uri(handle, uri().c_str()), 0) << nbd_get_error();
  const std::vector<std::uint8_t> zeroes(8192, 0);
  ASSERT_EQ(nbd_pwrite(handle, zeroes.data(), zeroes.size(), 0, 0), 0) << nbd_get_error();
  const std::vector<std::uint8_t> data(4096, 0x11);
  EXPECT_EQ(nbd_pwrite(handle, data.data(), data.size(), 1, 0), -1);
  EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_get_error();
  const std::int64_t minimum = nbd_get_block_size(handle, LIBNBD_SIZE_MINIMUM);
  if (minimum > 512) {
    EXPECT_EQ(nbd_pwrite(handle, data.data(), 512, 512, 0), -1);
    EXPECT_EQ(nbd_get_errno(), EINVAL) << nbd_get_error();
  }
  std::vector<std::uint8_t> back(8192, 0xFF);
  EXPECT_EQ(nbd_pread(handle, back.data(), back.size(), 0, 0), 0) << nbd_get_error();
  EXPECT_EQ(back, zeroes) << "a refused write must not land anywhere";
  nbd_shutdown(handle, 0);
  nbd_close(handle);
  const std::string status = cluster_.control(0, "status r0").text;
  EXPECT_THAT(status, ::testing::HasSubstr("disk:UpToDate")) << status;
  EXPECT_THAT(status, ::testing::Not(::testing::HasSubstr("Diskless"))) << status;
  expect_replicas_identical();
}

}  // namespace
}  // namespace ditto::testing
