// dittod attaches DRBD v09 internal metadata: a disk drbdmeta prepared is attached, only its
// data area is exported, the metadata is marked in use while dittod runs and written back on a
// clean stop so drbdmeta reads it; data I/O never reaches the metadata; a disk without metadata
// or with a damaged superblock stops dittod with the device and the field named, unchanged.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "cluster_harness.h"
#include "core/metadata.h"

namespace ditto::testing {
namespace {

namespace md = ditto::metadata;

constexpr std::uint64_t data_size_bytes = 16u << 20;

std::vector<std::uint8_t> file_bytes(const std::string& path, std::uint64_t offset,
                                     std::uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::vector<std::uint8_t> bytes(length);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(length));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

void write_file_bytes(const std::string& path, std::uint64_t offset,
                      const std::vector<std::uint8_t>& bytes) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(offset));
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::uint64_t superblock_offset(const std::string& path) {
  return (std::filesystem::file_size(path) - 4096) & ~std::uint64_t{4095};
}

md::Superblock superblock_of(const std::string& path) {
  const auto decoded = md::decode_superblock(file_bytes(path, superblock_offset(path), 4096));
  EXPECT_TRUE(decoded.ok()) << decoded.error().message;
  return decoded.ok() ? decoded.value() : md::Superblock{};
}

CommandOutcome drbdmeta(const std::string& path, const std::string& command) {
  return run_command("drbdmeta --force 0 v09 " + path + " internal " + command + " 2>&1");
}

// Replaces the metadata dittoadm wrote with drbdmeta's own create-md (same file size).
void recreate_with_drbdmeta(const std::string& path, int max_peers) {
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, 0);
  std::filesystem::resize_file(path, size);
  const CommandOutcome created = drbdmeta(path, "create-md " + std::to_string(max_peers));
  ASSERT_EQ(created.exit_status, 0) << created.output;
}

class NbdClient {
 public:
  explicit NbdClient(const std::string& uri) : handle_(nbd_create()) {
    nbd_set_strict_mode(handle_, 0);  // let out-of-range requests reach the server
    connected_ = nbd_connect_uri(handle_, uri.c_str()) == 0;
  }
  ~NbdClient() {
    if (connected_) nbd_shutdown(handle_, 0);
    nbd_close(handle_);
  }
  bool connected() const { return connected_; }
  std::int64_t size() { return nbd_get_size(handle_); }
  bool write(const std::vector<std::uint8_t>& bytes, std::uint64_t offset) {
    return nbd_pwrite(handle_, bytes.data(), bytes.size(), offset, 0) == 0 &&
           nbd_flush(handle_, 0) == 0;
  }
  bool read(std::vector<std::uint8_t>& bytes, std::uint64_t offset) {
    return nbd_pread(handle_, bytes.data(), bytes.size(), offset, 0) == 0;
  }

 private:
  nbd_handle* handle_;
  bool connected_ = false;
};

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 7);
  return bytes;
}

bool wait_for_role(const LocalCluster& cluster, int index, const std::string& role) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (cluster.control(index, "status r0").text.rfind("r0 role:" + role, 0) == 0) return true;
    ::usleep(20'000);
  }
  return false;
}

TEST(MetadataAttach, ADiskDrbdmetaPreparedIsAttachedAndOnlyItsDataAreaIsExported) {
  LocalCluster cluster(1, data_size_bytes);
  const std::string disk = cluster.disk_path(0);
  recreate_with_drbdmeta(disk, 1);
  const md::Superblock created = superblock_of(disk);
  const std::uint64_t md_area_bytes = std::filesystem::file_size(disk) - data_size_bytes;
  const std::vector<std::uint8_t> md_before = file_bytes(disk, data_size_bytes, md_area_bytes);

  std::string error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  EXPECT_EQ(superblock_of(disk).flags & md::md_flag::al_clean, 0u)
      << "a running dittod marks the metadata in use";
  {
    NbdClient client(cluster.nbd_uri(0));
    ASSERT_TRUE(client.connected()) << nbd_get_error();
    EXPECT_EQ(client.size(), static_cast<std::int64_t>(data_size_bytes));
    const std::vector<std::uint8_t> first = pattern(64 * 1024, 1);
    const std::vector<std::uint8_t> last = pattern(4096, 2);
    ASSERT_TRUE(client.write(first, 0)) << nbd_get_error();
    ASSERT_TRUE(client.write(last, data_size_bytes - 4096)) << nbd_get_error();
    EXPECT_FALSE(client.write(pattern(4096, 3), data_size_bytes))
        << "a write at the end of the data area (into the metadata) was accepted";
    EXPECT_FALSE(client.write(pattern(8192, 4), data_size_bytes - 4096))
        << "a write across the end of the data area was accepted";
    std::vector<std::uint8_t> found(first.size());
    ASSERT_TRUE(client.read(found, 0));
    EXPECT_EQ(found, first);
    found.resize(last.size());
    ASSERT_TRUE(client.read(found, data_size_bytes - 4096));
    EXPECT_EQ(found, last);
  }
  // The writer's disconnect demotes the auto-promoted node; then a clean shutdown.
  ASSERT_TRUE(wait_for_role(cluster, 0, "Secondary"));
  // The first write started a data generation (get-gi's first line: "current-uuid 0x...").
  const std::string generations = cluster.control(0, "get-gi r0").text;
  ASSERT_EQ(generations.rfind("current-uuid 0x", 0), 0u) << generations;
  const std::uint64_t current_uuid = std::stoull(generations.substr(15, 16), nullptr, 16);
  cluster.kill(0, SIGTERM);

  // drbdmeta reads what dittod wrote back.
  const CommandOutcome dump = drbdmeta(disk, "dump-md");
  ASSERT_EQ(dump.exit_status, 0) << dump.output;
  EXPECT_NE(dump.output.find("node-id 0;"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("flags 0x00000091;"), std::string::npos)  // AL_CLEAN|WAS_UP|CONS
      << dump.output;
  EXPECT_NE(dump.output.find("la-size-sect " + std::to_string(data_size_bytes / 512) + ";"),
            std::string::npos)
      << dump.output;
  // The metadata area: activity log and bitmap byte for byte as drbdmeta left them, the
  // superblock changed only in the fields attach, the generations and shutdown own.
  const std::vector<std::uint8_t> md_after = file_bytes(disk, data_size_bytes, md_area_bytes);
  ASSERT_EQ(md_after.size(), md_before.size());
  const std::size_t superblock_start = md_area_bytes - 4096;
  EXPECT_TRUE(std::equal(md_before.begin(), md_before.begin() + superblock_start,
                         md_after.begin()))
      << "the bitmap or activity log changed";
  EXPECT_TRUE(std::equal(md_before.begin() + superblock_start + 0x570, md_before.end(),
                         md_after.begin() + superblock_start + 0x570));
  md::Superblock expected = created;
  expected.node_id = 0;
  expected.effective_size_sectors = data_size_bytes / 512;
  expected.flags = md::md_flag::al_clean | md::md_flag::consistent | md::md_flag::was_up_to_date;
  expected.current_uuid = current_uuid;
  expected.al_extents = 1237;  // the activity log's slots (al-extents), as drbd_md_write records
  EXPECT_NE(current_uuid, md::uuid_just_created);
  EXPECT_EQ(superblock_of(disk), expected);

  // And attaches it again.
  ASSERT_TRUE(cluster.start(0, error)) << error;
  NbdClient client(cluster.nbd_uri(0));
  std::vector<std::uint8_t> found(4096);
  ASSERT_TRUE(client.read(found, data_size_bytes - 4096));
  EXPECT_EQ(found, pattern(4096, 2));
}

TEST(MetadataAttach, PeersGetBitmapSlotsAndBothNodesWriteTheirMetadataBackOnAStop) {
  LocalCluster cluster(2, data_size_bytes);
  for (int node = 0; node < 2; ++node) recreate_with_drbdmeta(cluster.disk_path(node), 1);
  std::string error;
  ASSERT_TRUE(cluster.start_all_connected(error)) << error;
  ASSERT_TRUE(cluster.promote(0, error)) << error;
  {
    NbdClient client(cluster.nbd_uri(0));
    ASSERT_TRUE(client.connected()) << nbd_get_error();
    ASSERT_TRUE(client.write(pattern(1 << 20, 5), data_size_bytes - (1 << 20)));
  }
  cluster.kill(1, SIGTERM);  // beta while alpha is its connected Primary
  cluster.kill(0, SIGTERM);  // alpha, still Primary
  for (int node = 0; node < 2; ++node) {
    SCOPED_TRACE(cluster.name(node));
    const CommandOutcome dump = drbdmeta(cluster.disk_path(node), "dump-md");
    ASSERT_EQ(dump.exit_status, 0) << dump.output;
    EXPECT_NE(dump.output.find("node-id " + std::to_string(node) + ";"), std::string::npos);
    // AL_CLEAN | WAS_UP_TO_DATE | PRIMARY_IND | CONSISTENT: a Primary was known at the stop.
    EXPECT_NE(dump.output.find("flags 0x00000093;"), std::string::npos) << dump.output;
    const int peer = 1 - node;
    EXPECT_NE(dump.output.find("peer[" + std::to_string(peer) +
                               "] {\n    bitmap-index 0;\n    bitmap-uuid 0x0000000000000000;"
                               "\n    bitmap-dagtag 0x0000000000000000;\n    flags 0x00010000;"),
              std::string::npos)
        << dump.output;
  }
  const CommandOutcome compare =
      run_command("cmp -n " + std::to_string(data_size_bytes) + " " + cluster.disk_path(0) + " " +
                  cluster.disk_path(1) + " 2>&1");
  EXPECT_EQ(compare.exit_status, 0) << "replicas differ: " << compare.output;
}

// DRBD's drbd_al_extents_max: a 32 KiB activity log (create-md's default) names 8 × 919 slots,
// half of which may be in use, so al-extents 5000 becomes 3676; 2000 fits and stays.
TEST(MetadataAttach, AlExtentsIsLoweredToWhatTheActivityLogHoldsAndWrittenToTheSuperblock) {
  for (const auto& [configured, effective] : {std::pair{5000u, 3676u}, std::pair{2000u, 2000u}}) {
    SCOPED_TRACE("al-extents " + std::to_string(configured));
    LocalCluster cluster(2, data_size_bytes);
    std::string text = file_text(cluster.config_path());
    const std::string net = "  net { protocol C; }\n";
    ASSERT_NE(text.find(net), std::string::npos) << text;
    text.replace(text.find(net), net.size(),
                 net + "  disk { al-extents " + std::to_string(configured) + "; }\n");
    cluster.write_config(text);
    std::string error;
    ASSERT_TRUE(cluster.start(0, error)) << error;
    ASSERT_TRUE(wait_for_status(cluster, 0, "disk:UpToDate"))
        << cluster.control(0, "status r0").text;
    cluster.kill(0, SIGTERM);
    EXPECT_EQ(superblock_of(cluster.disk_path(0)).al_extents, effective);
    const bool lowered = file_text(cluster.log_path(0)).find(
        "al-extents " + std::to_string(configured) + " lowered to 3676") != std::string::npos;
    EXPECT_EQ(lowered, configured != effective) << file_text(cluster.log_path(0));
  }
}

TEST(MetadataAttach, MetadataLeftInUseByAKilledDaemonIsAttachedAgainAndCleanedOnTheNextStop) {
  LocalCluster cluster(1, data_size_bytes);
  std::string error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  ASSERT_TRUE(NbdClient(cluster.nbd_uri(0)).write(pattern(4096, 9), 0));
  cluster.kill(0, SIGKILL);
  EXPECT_EQ(superblock_of(cluster.disk_path(0)).flags & md::md_flag::al_clean, 0u);
  ASSERT_TRUE(cluster.start(0, error)) << error;
  std::ifstream log(cluster.log_path(0));
  const std::string text{std::istreambuf_iterator<char>(log), {}};
  EXPECT_NE(text.find("metadata was left in use"), std::string::npos) << text;
  cluster.kill(0, SIGTERM);
  EXPECT_NE(superblock_of(cluster.disk_path(0)).flags & md::md_flag::al_clean, 0u);
}

// ---- Refusals ---------------------------------------------------------------------------------

class MetadataRefusal : public ::testing::Test {
 protected:
  // dittod on node alpha of a one-node cluster; returns its exit status and output.
  CommandOutcome run_dittod() {
    return run_command(build_program("datapath/dittod") + " --config " + cluster_.config_path() +
                       " --node alpha --control " + cluster_.directory() + "/refusal.sock 2>&1");
  }
  // dittod must exit 1 naming the resource, the disk and `field`, and leave the disk unchanged.
  void expect_refused(const std::string& field) {
    const std::vector<std::uint8_t> before = whole_disk();
    const CommandOutcome outcome = run_dittod();
    EXPECT_EQ(outcome.exit_status, 1) << outcome.output;
    EXPECT_NE(outcome.output.find("dittod: r0: " + disk() + ": "), std::string::npos)
        << outcome.output;
    EXPECT_NE(outcome.output.find(field), std::string::npos) << outcome.output;
    EXPECT_TRUE(whole_disk() == before) << "the disk was changed";
  }
  void poke_superblock(std::uint64_t field_offset, const std::vector<std::uint8_t>& bytes) {
    write_file_bytes(disk(), superblock_offset(disk()) + field_offset, bytes);
  }
  std::string disk() const { return cluster_.disk_path(0); }
  std::vector<std::uint8_t> whole_disk() const {
    return file_bytes(disk(), 0, std::filesystem::file_size(disk()));
  }

  LocalCluster cluster_{1, 4u << 20};
};

TEST_F(MetadataRefusal, ADiskWithoutMetadataNamesTheMagicItsOffsetAndHowToCreateIt) {
  const auto size = std::filesystem::file_size(disk());
  std::filesystem::resize_file(disk(), 0);
  std::filesystem::resize_file(disk(), size);
  expect_refused("no DRBD v09 metadata (magic 0x0 at byte offset " +
                 std::to_string(superblock_offset(disk()) + 0x3c) + ", expected 0x8374026d); " +
                 "create it with `dittoadm create-md " + disk());
}

TEST_F(MetadataRefusal, ACorruptedMagicIsRefused) {
  poke_superblock(0x3f, {0x6c});
  expect_refused("no DRBD v09 metadata (magic 0x8374026c");
}

TEST_F(MetadataRefusal, ALastAgreedSizeBeyondTheDeviceIsRefused) {
  poke_superblock(0x00, {0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00});
  expect_refused("superblock field la-size-sect 1048576 exceeds the data area");
}

TEST_F(MetadataRefusal, AMetadataSizeThatDoesNotFitTheDeviceIsRefused) {
  // md_size_sect and bm_offset moved together: consistent with each other, not with the device.
  poke_superblock(0x40, {0x00, 0x00, 0x01, 0x00});
  poke_superblock(0x4c, {0xff, 0xff, 0xff, 0x08});
  expect_refused("md_size_sect 256 does not fit a device");
}

TEST_F(MetadataRefusal, MetadataOfAnotherNodeIsRefused) {
  poke_superblock(0x5c, {0x00, 0x00, 0x00, 0x03});
  expect_refused("superblock field node-id 3 does not match this node's node-id 0");
}

TEST_F(MetadataRefusal, AMetaDiskOtherThanInternalIsALocatedConfigurationError) {
  std::ifstream in(cluster_.config_path());
  std::string text{std::istreambuf_iterator<char>(in), {}};
  const std::string internal = "meta-disk internal;";
  text.replace(text.find(internal), internal.size(), "meta-disk /dev/sdb1;");
  cluster_.write_config(text);
  const CommandOutcome outcome = run_dittod();
  EXPECT_EQ(outcome.exit_status, 1) << outcome.output;
  EXPECT_NE(outcome.output.find(cluster_.config_path() + ":8:"), std::string::npos)
      << outcome.output;
  EXPECT_NE(outcome.output.find("meta-disk '/dev/sdb1'"), std::string::npos) << outcome.output;
}

}  // namespace
}  // namespace ditto::testing
