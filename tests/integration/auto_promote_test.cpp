// Auto-promote for NBD on real daemons (DRBD 9 `options { auto-promote yes; }`, the default):
// nobody is promoted by hand; the first write through a node's NBD export makes that node
// Primary (a two-phase commit with its peer), the last writing connection's disconnect makes it
// Secondary again, and a write on a node that cannot become Primary fails with EPERM at once —
// not a hang. With `auto-promote no` the export refuses the connection with the reason.
#include <gtest/gtest.h>
#include <libnbd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;

// One libnbd connection; closed (without DISC, like fio) or shut down in the destructor.
class Client {
 public:
  explicit Client(const std::string& uri) : handle_(nbd_create()) {
    if (handle_ != nullptr && nbd_connect_uri(handle_, uri.c_str()) == -1) {
      error_ = nbd_get_error();
      nbd_close(handle_);
      handle_ = nullptr;
    }
  }
  ~Client() { close(); }
  void close() {
    if (handle_ == nullptr) return;
    nbd_shutdown(handle_, 0);
    nbd_close(handle_);
    handle_ = nullptr;
  }
  bool ok() const { return handle_ != nullptr; }
  const std::string& error() const { return error_; }
  // 0 on success, else the errno the server answered.
  int write(std::uint64_t offset, std::uint8_t fill, std::size_t bytes = 4096) {
    const std::vector<std::uint8_t> data(bytes, fill);
    if (nbd_pwrite(handle_, data.data(), data.size(), offset, 0) == 0) return 0;
    error_ = nbd_get_error();
    return nbd_get_errno();
  }
  std::vector<std::uint8_t> read(std::uint64_t offset, std::size_t bytes) {
    std::vector<std::uint8_t> data(bytes);
    if (nbd_pread(handle_, data.data(), data.size(), offset, 0) != 0) data.clear();
    return data;
  }

 private:
  nbd_handle* handle_;
  std::string error_;
};

std::string role(const LocalCluster& cluster, int index) {
  const std::string status = cluster.control(index, "status r0").text;
  const std::size_t at = status.find("role:");
  if (at == std::string::npos) return "?";
  return status.substr(at + 5, status.find_first_of(" \n", at) - at - 5);
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

bool wait_role(const LocalCluster& cluster, int index, const std::string& wanted) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (role(cluster, index) == wanted) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Until `index`'s status names no Primary, neither itself nor a peer: it has learned of a
// demotion elsewhere (that node's own status says so first).
bool wait_no_primary_seen(const LocalCluster& cluster, int index) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cluster.control(index, "status r0").text.find("role:Primary") == std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

class AutoPromote : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(cluster_.start_all_connected(error)) << error;
  }
  LocalCluster cluster_{2, disk_size_bytes};
};

TEST_F(AutoPromote, FirstWritePromotesTheNodeAndTheLastWritersDisconnectDemotesIt) {
  Client alpha(cluster_.nbd_uri(0));
  ASSERT_TRUE(alpha.ok()) << "a Secondary with auto-promote accepts the connection: "
                          << alpha.error();
  EXPECT_EQ(role(cluster_, 0), "Secondary") << "opening alone does not promote";
  ASSERT_EQ(alpha.write(0, 0xA1), 0) << alpha.error();
  EXPECT_EQ(role(cluster_, 0), "Primary");
  EXPECT_EQ(role(cluster_, 1), "Secondary");

  // Meanwhile the peer cannot become Primary: its writer gets EPERM, promptly.
  Client beta(cluster_.nbd_uri(1));
  ASSERT_TRUE(beta.ok()) << beta.error();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(beta.write(8192, 0xB2), EPERM) << beta.error();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(role(cluster_, 1), "Secondary");
  const std::string beta_log = read_file(cluster_.log_path(1));
  EXPECT_NE(beta_log.find("auto-promote for an NBD write"), std::string::npos) << beta_log;
  EXPECT_NE(beta_log.find("SS_"), std::string::npos) << "the log names DRBD's reason";
  beta.close();

  alpha.close();
  EXPECT_TRUE(wait_role(cluster_, 0, "Secondary")) << "role is " << role(cluster_, 0);
  // Node 1 learns of the demotion a moment later (node 0's StateReport): a write before that
  // would be refused as with a Primary elsewhere.
  EXPECT_TRUE(wait_no_primary_seen(cluster_, 1)) << cluster_.control(1, "status r0").text;

  // Now beta may: its write promotes it, and it sees alpha's replicated data.
  Client beta_again(cluster_.nbd_uri(1));
  ASSERT_TRUE(beta_again.ok()) << beta_again.error();
  ASSERT_EQ(beta_again.write(8192, 0xB3), 0) << beta_again.error();
  EXPECT_EQ(role(cluster_, 1), "Primary");
  EXPECT_EQ(beta_again.read(0, 4096), std::vector<std::uint8_t>(4096, 0xA1));
  EXPECT_EQ(role(cluster_, 0), "Secondary");
}

TEST_F(AutoPromote, AReaderDoesNotPromoteAndAWriterStaysPrimaryWhileAnotherWriterLeaves) {
  Client reader(cluster_.nbd_uri(0));
  ASSERT_TRUE(reader.ok()) << reader.error();
  EXPECT_EQ(reader.read(0, 4096).size(), 4096u);
  EXPECT_EQ(role(cluster_, 0), "Secondary") << "reads do not promote";

  Client first(cluster_.nbd_uri(0));
  Client second(cluster_.nbd_uri(0));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first.write(0, 1), 0) << first.error();
  ASSERT_EQ(second.write(4096, 2), 0) << second.error();
  first.close();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(role(cluster_, 0), "Primary") << "one writer is still connected";
  second.close();
  EXPECT_TRUE(wait_role(cluster_, 0, "Secondary")) << "the last writer left";
  EXPECT_EQ(reader.read(4096, 4096), std::vector<std::uint8_t>(4096, 2))
      << "the reader keeps working on the Secondary";
}

TEST(AutoPromoteOff, ASecondaryRefusesTheNbdConnectionWithTheReason) {
  LocalCluster cluster(1, disk_size_bytes);
  cluster.write_config("resource r0 {\n  options { auto-promote no; }\n" + cluster.host_block(0) +
                       "}\n");
  std::string error;
  ASSERT_TRUE(cluster.start(0, error)) << error;
  Client client(cluster.nbd_uri(0));
  EXPECT_FALSE(client.ok()) << "the export must refuse a connection on a Secondary";
  EXPECT_EQ(role(cluster, 0), "Secondary");
  ASSERT_EQ(cluster.control(0, "primary r0").exit_status, 0);
  Client after(cluster.nbd_uri(0));
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(after.write(0, 7), 0) << after.error();
}

}  // namespace
}  // namespace ditto::testing
