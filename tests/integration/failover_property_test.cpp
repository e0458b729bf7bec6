// The walking skeleton's end-to-end property, on real processes: two dittod daemons on
// loopback, a real NBD client (libnbd) writing to the Primary, SIGKILL of the Primary, promotion
// of the other node, and every acknowledged write read back from it with the same bytes.
// The same property runs against the simulator in tests/sim/.
#include <gtest/gtest.h>
#include <libnbd.h>
#include <rapidcheck.h>
#include <signal.h>

#include <cstring>
#include <map>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t disk_size_bytes = 16u << 20;
constexpr std::uint32_t block_size_bytes = 4096;
constexpr std::uint32_t blocks = disk_size_bytes / block_size_bytes;

struct Write {
  std::uint32_t block = 0;
  std::uint32_t block_count = 1;
  std::uint8_t seed = 0;
};

std::vector<std::uint8_t> pattern(const Write& write, std::size_t write_index) {
  std::vector<std::uint8_t> bytes(std::size_t{write.block_count} * block_size_bytes);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::uint8_t>(write.seed + i * 131 + write_index * 7 + (i >> 12));
  }
  return bytes;
}

class NbdClient {
 public:
  explicit NbdClient(const std::string& uri) : handle_(nbd_create()) {
    if (handle_ != nullptr && nbd_connect_uri(handle_, uri.c_str()) == -1) {
      error_ = nbd_get_error();
      nbd_close(handle_);
      handle_ = nullptr;
    }
  }
  ~NbdClient() {
    if (handle_ != nullptr) {
      nbd_shutdown(handle_, 0);
      nbd_close(handle_);
    }
  }
  bool ok() const { return handle_ != nullptr; }
  const std::string& error() const { return error_; }
  bool write(const std::vector<std::uint8_t>& bytes, std::uint64_t offset) {
    return nbd_pwrite(handle_, bytes.data(), bytes.size(), offset, 0) == 0;
  }
  bool read(std::vector<std::uint8_t>& bytes, std::uint64_t offset) {
    return nbd_pread(handle_, bytes.data(), bytes.size(), offset, 0) == 0;
  }
  bool flush() { return nbd_flush(handle_, 0) == 0; }

 private:
  nbd_handle* handle_;
  std::string error_;
};

// Runs one failover case and returns an empty string or the first violation.
std::string run_failover(const std::vector<Write>& writes) {
  LocalCluster cluster(2, disk_size_bytes);
  std::string error;
  if (!cluster.start(0, error) || !cluster.start(1, error)) return error;
  if (!cluster.wait_connected(0, 1, 10000)) return "nodes did not connect";
  if (cluster.control(0, "primary r0").exit_status != 0) return "promotion of alpha failed";

  // The model: for every block, the bytes of the last acknowledged write.
  std::map<std::uint32_t, std::vector<std::uint8_t>> expected;
  {
    NbdClient client(cluster.nbd_uri(0));
    if (!client.ok()) return "NBD connect to alpha failed: " + client.error();
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const Write& write = writes[i];
      const auto bytes = pattern(write, i);
      if (!client.write(bytes, std::uint64_t{write.block} * block_size_bytes)) {
        return "write " + std::to_string(i) + " failed: " + nbd_get_error();
      }
      for (std::uint32_t b = 0; b < write.block_count; ++b) {
        expected[write.block + b].assign(bytes.begin() + b * block_size_bytes,
                                         bytes.begin() + (b + 1) * block_size_bytes);
      }
    }
    cluster.kill(0, SIGKILL);  // with the NBD connection still open
  }
  // The survivor must notice and accept promotion.
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (cluster.control(1, "primary r0").exit_status == 0) break;
    if (attempt == 199) return "promotion of beta failed: " + cluster.control(1, "primary r0").text;
    usleep(25000);
  }
  NbdClient client(cluster.nbd_uri(1));
  if (!client.ok()) return "NBD connect to beta failed: " + client.error();
  std::vector<std::uint8_t> found(block_size_bytes);
  for (const auto& [block, bytes] : expected) {
    if (!client.read(found, std::uint64_t{block} * block_size_bytes)) {
      return "read of block " + std::to_string(block) + " failed: " + nbd_get_error();
    }
    if (found != bytes) return "block " + std::to_string(block) + " differs on the survivor";
  }
  return "";
}

TEST(Failover, EveryAcknowledgedWriteIsOnTheSurvivorAfterThePrimaryIsKilled) {
  const bool passed = rc::check(
      "every write acknowledged over NBD is read back from the other node after SIGKILL",
      [] {
        const auto writes = *rc::gen::container<std::vector<Write>>(
            *rc::gen::inRange<std::size_t>(1, 40), rc::gen::build<Write>(
                rc::gen::set(&Write::block, rc::gen::inRange<std::uint32_t>(0, blocks - 8)),
                rc::gen::set(&Write::block_count, rc::gen::inRange<std::uint32_t>(1, 9)),
                rc::gen::set(&Write::seed, rc::gen::arbitrary<std::uint8_t>())));
        const std::string violation = run_failover(writes);
        RC_ASSERT(violation == "");
      });
  EXPECT_TRUE(passed);
}

}  // namespace
}  // namespace ditto::testing
