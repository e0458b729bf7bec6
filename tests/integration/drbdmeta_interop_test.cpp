// On-disk compatibility with drbd-utils: what `drbdmeta create-md` writes, `dittoadm dump-md`
// reads and prints exactly as `drbdmeta dump-md` does; what `dittoadm create-md` writes,
// drbdmeta reads with the same generation identifiers and flags (and the bytes are identical).
// Damaged superblocks are refused with a message naming the device and the field.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

using Outcome = CommandOutcome;

Outcome run(const std::string& command) {
  return run_command(command);
}

bool have_drbdmeta() {
  return run("command -v drbdmeta >/dev/null 2>&1").exit_status == 0;
}

// Both tools start with "# DRBD meta data dump", a time, the command line and "#": drop them.
std::string without_header(const std::string& dump) {
  std::size_t position = 0;
  for (int line = 0; line < 4 && position != std::string::npos; ++line) {
    position = dump.find('\n', position);
    if (position != std::string::npos) ++position;
  }
  return position == std::string::npos ? std::string{} : dump.substr(position);
}

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const std::size_t position = text.find(from);
  ASSERT_NE(position, std::string::npos) << "missing: " << from;
  text.replace(position, from.size(), to);
}

class DrbdmetaInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_drbdmeta()) GTEST_SKIP() << "drbdmeta (drbd-utils) is not installed";
    directory_ = "/var/tmp/ditto-drbdmeta-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(directory_);
    dittoadm_ = build_program("datapath/dittoadm");
  }
  void TearDown() override {
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  std::string sparse_file(const std::string& name, std::uint64_t size_bytes) {
    const std::string path = directory_ + "/" + name;
    std::filesystem::remove(path);
    { std::ofstream create(path); }
    std::filesystem::resize_file(path, size_bytes);
    return path;
  }
  Outcome drbdmeta(const std::string& path, const std::string& command) {
    return run("drbdmeta --force 0 v09 " + path + " internal " + command + " 2>/dev/null");
  }
  Outcome dittoadm(const std::string& arguments) {
    return run(dittoadm_ + " " + arguments + " 2>&1");
  }
  // Both dumps of `path` must succeed and agree after the header.
  void expect_same_dump(const std::string& path) {
    const Outcome theirs = drbdmeta(path, "dump-md");
    const Outcome ours = run(dittoadm_ + " dump-md " + path + " 2>/dev/null");
    ASSERT_EQ(theirs.exit_status, 0) << theirs.output;
    ASSERT_EQ(ours.exit_status, 0) << ours.output;
    EXPECT_EQ(without_header(ours.output), without_header(theirs.output));
    EXPECT_NE(ours.output.find("version \"v09\";"), std::string::npos);
  }

  std::string directory_;
  std::string dittoadm_;
};

constexpr std::uint64_t mib = 1024 * 1024;
constexpr std::uint64_t sizes[] = {64 * mib, 1024 * mib, 4096 * mib};
constexpr int peer_counts[] = {1, 3, 7};

TEST_F(DrbdmetaInterop, DittoadmReadsWhatDrbdmetaCreatesForEverySizeAndPeerCount) {
  for (std::uint64_t size : sizes) {
    for (int peers : peer_counts) {
      SCOPED_TRACE("size " + std::to_string(size) + " max-peers " + std::to_string(peers));
      const std::string path = sparse_file("theirs.img", size);
      ASSERT_EQ(drbdmeta(path, "create-md " + std::to_string(peers)).exit_status, 0);
      expect_same_dump(path);
    }
  }
}

TEST_F(DrbdmetaInterop, DrbdmetaReadsWhatDittoadmCreatesAndTheBytesAreIdentical) {
  for (std::uint64_t size : sizes) {
    for (int peers : peer_counts) {
      SCOPED_TRACE("size " + std::to_string(size) + " max-peers " + std::to_string(peers));
      const std::string ours = sparse_file("ours.img", size);
      const std::string theirs = sparse_file("theirs.img", size);
      const Outcome created =
          dittoadm("create-md " + ours + " --max-peers " + std::to_string(peers));
      ASSERT_EQ(created.exit_status, 0) << created.output;
      ASSERT_EQ(drbdmeta(theirs, "create-md " + std::to_string(peers)).exit_status, 0);
      expect_same_dump(ours);
      // The metadata (< 1 MiB here) sits in the last 4 MiB; the data area is never written.
      const std::string skip = std::to_string(size - 4 * mib);
      EXPECT_EQ(run("cmp -s -i " + skip + " " + ours + " " + theirs).exit_status, 0)
          << "metadata bytes differ";
    }
  }
}

TEST_F(DrbdmetaInterop, GenerationIdentifiersFlagsAndBitmapsDumpTheSameInBothTools) {
  const std::string path = sparse_file("restored.img", 64 * mib);
  ASSERT_EQ(drbdmeta(path, "create-md 3").exit_status, 0);
  std::string dump = without_header(drbdmeta(path, "dump-md").output);
  replace_once(dump, "node-id -1;", "node-id 1;");
  replace_once(dump, "current-uuid 0x0000000000000004;", "current-uuid 0xABCDEF0123456789;");
  replace_once(dump, "flags 0x00000080;\npeer[0]", "flags 0x000000D3;\npeer[0]");
  replace_once(dump,
               "peer[2] {\n    bitmap-index -1;\n    bitmap-uuid 0x0000000000000000;\n"
               "    bitmap-dagtag 0x0000000000000000;\n    flags 0x00000000;",
               "peer[2] {\n    bitmap-index 1;\n    bitmap-uuid 0x1111111111111110;\n"
               "    bitmap-dagtag 0x0000000000000042;\n    flags 0x00010015;");
  replace_once(dump, "history-uuids {\n        0x0000000000000000;",
               "history-uuids {\n        0x2222222222222222;");
  replace_once(dump, "la-size-sect 0;", "la-size-sect 130984;");
  replace_once(dump, "device-uuid 0x0000000000000000;", "device-uuid 0x0123456789ABCDEF;");
  replace_once(dump, "bitmap[0] {\n}",
               "bitmap[0] {\n 0xFFFFFFFFFFFFFFFF; 0x0000000000000001; 20 times 0x00000000000000FF;"
               "\n}");
  // Line 2 of slot 1 is one line of identical words: printed as is, not folded.
  replace_once(dump, "bitmap[1] {\n}",
               "bitmap[1] {\n 0x8000000000000000; 3 times 0x0000000000000000;"
               " 4 times 0x0000000000000000; 0x0000000000000003;\n}");
  // drbdmeta only writes the bitmap when the last slot has words.
  replace_once(dump, "bitmap[2] {\n}", "bitmap[2] {\n 300 times 0x1000000000000000;\n}");
  const std::string dump_path = directory_ + "/restore.txt";
  std::ofstream(dump_path) << dump;
  ASSERT_EQ(drbdmeta(path, "restore-md " + dump_path).exit_status, 0);
  expect_same_dump(path);
  const Outcome ours = dittoadm("dump-md " + path);
  EXPECT_NE(ours.output.find("current-uuid 0xABCDEF0123456789;"), std::string::npos);
  EXPECT_NE(ours.output.find("flags 0x00010015; # connected | fencing | seen | exists"),
            std::string::npos);
  EXPECT_NE(ours.output.find("# bits-set 300;"), std::string::npos) << ours.output;
}

TEST_F(DrbdmetaInterop, NodeIdGivenToCreateMdIsWhatDrbdmetaSees) {
  const std::string path = sparse_file("node.img", 64 * mib);
  ASSERT_EQ(dittoadm("create-md " + path + " --max-peers 2 --node-id 5").exit_status, 0);
  const Outcome theirs = drbdmeta(path, "dump-md");
  EXPECT_NE(theirs.output.find("\nnode-id 5;\n"), std::string::npos) << theirs.output;
  expect_same_dump(path);
}

TEST_F(DrbdmetaInterop, ACorruptedSuperblockIsRefusedNamingTheDeviceAndTheField) {
  const std::string path = sparse_file("corrupt.img", 64 * mib);
  ASSERT_EQ(dittoadm("create-md " + path + " --max-peers 3").exit_status, 0);
  const std::uint64_t md_offset = 64 * mib - 4096;
  struct Damage {
    std::uint64_t offset;
    char byte;
    std::string field;
  };
  const Damage damages[] = {
      {md_offset + 0x3c, 0x12, "magic 0x1274026d is not DRBD v09 (0x8374026d)"},
      {md_offset + 0x58, 0x7f, "max-peers"},
      {md_offset + 0x47, 0x00, "al_offset"},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.field);
    ASSERT_EQ(dittoadm("create-md " + path + " --max-peers 3 --force").exit_status, 0);
    {
      std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
      file.seekp(static_cast<std::streamoff>(damage.offset));
      file.put(damage.byte);
    }
    const Outcome dumped = dittoadm("dump-md " + path);
    EXPECT_NE(dumped.exit_status, 0);
    EXPECT_NE(dumped.output.find("dittoadm dump-md: " + path + ": superblock: "), std::string::npos)
        << dumped.output;
    EXPECT_NE(dumped.output.find(damage.field), std::string::npos) << dumped.output;
    EXPECT_NE(drbdmeta(path, "dump-md").exit_status, 0) << "drbdmeta accepted it too";
  }
}

TEST_F(DrbdmetaInterop, CreateMdRefusesExistingOrDamagedMetadataWithoutForce) {
  const std::string path = sparse_file("refuse.img", 64 * mib);
  ASSERT_EQ(drbdmeta(path, "create-md 3").exit_status, 0);
  const Outcome again = dittoadm("create-md " + path + " --max-peers 1");
  EXPECT_EQ(again.exit_status, 40);
  EXPECT_NE(again.output.find("already holds valid DRBD v09 metadata"), std::string::npos);
  expect_same_dump(path);  // untouched: still max-peers 3
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(64 * mib - 4096 + 0x5b));
    file.put(0);  // max-peers 0
  }
  const Outcome damaged = dittoadm("create-md " + path + " --max-peers 1");
  EXPECT_EQ(damaged.exit_status, 40);
  EXPECT_NE(damaged.output.find("damaged DRBD v09 metadata (superblock: max-peers 0"),
            std::string::npos)
      << damaged.output;
  ASSERT_EQ(dittoadm("create-md " + path + " --max-peers 1 --force").exit_status, 0);
  EXPECT_NE(drbdmeta(path, "dump-md").output.find("max-peers 1;"), std::string::npos);
}

}  // namespace
}  // namespace ditto::testing
