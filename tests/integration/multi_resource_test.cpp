// One dittod runs many resources over several shards: two real daemons with 20 resources each
// on 2 shards, NBD writes to two resources, a failover of one, and `down`/`up` of one resource
// while the others stay Connected.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster_harness.h"
#include "network_test_support.h"

namespace ditto::testing {
namespace {

using namespace std::chrono_literals;

constexpr int resource_count = 20;
constexpr std::uint64_t data_size_bytes = 1 << 20;
const char* const names[] = {"alpha", "beta"};

std::string resource_name(int index) {
  char name[8];
  std::snprintf(name, sizeof(name), "r%02d", index);
  return name;
}

// Two daemons, each with every resource; resource i is device minor i, so its NBD export is on
// nbd_base(node) + i (--nbd-base).
class TwoDaemons {
 public:
  TwoDaemons() {
    std::filesystem::create_directories("/var/tmp/ditto-test-clusters");
    std::string pattern = "/var/tmp/ditto-test-clusters/multi-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    directory_ = pattern;
    // Below the ephemeral range (32768+) and below free_port()'s 20000..31999.
    nbd_base_ = static_cast<std::uint16_t>(12000 + (::getpid() % 200) * 40);
    std::string config;
    for (int resource = 0; resource < resource_count; ++resource) {
      config += "resource " + resource_name(resource) + " {\n  net { protocol C; }\n";
      for (int node = 0; node < 2; ++node) {
        std::string error;
        if (!create_backing_disk(disk(node, resource), data_size_bytes, 1, error)) {
          throw std::runtime_error(error);
        }
        config += "  on " + std::string(names[node]) + " { node-id " + std::to_string(node) +
                  "; address 127.0.0.1:" + std::to_string(free_port()) + "; device /dev/drbd" +
                  std::to_string(resource) + "; disk " + disk(node, resource) +
                  "; meta-disk internal; }\n";
      }
      config += "}\n";
    }
    std::ofstream(directory_ + "/cluster.res") << config;
  }
  ~TwoDaemons() {
    for (pid_t pid : pids_) {
      if (pid <= 0) continue;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (std::getenv("DITTO_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ignored;
      std::filesystem::remove_all(directory_, ignored);
    }
  }

  std::string disk(int node, int resource) const {
    return directory_ + "/" + names[node] + "-" + resource_name(resource) + ".img";
  }
  std::string log(int node) const { return directory_ + "/" + names[node] + ".log"; }
  std::string socket(int node) const { return directory_ + "/" + names[node] + ".sock"; }
  pid_t pid(int node) const { return pids_[node]; }
  std::string nbd_uri(int node, int resource) const {
    return "nbd://127.0.0.1:" + std::to_string(nbd_base_ + node * resource_count + resource) +
           "/" + resource_name(resource);
  }

  bool start(int node) {
    const std::string program = build_program("datapath/dittod");
    std::vector<std::string> arguments{
        program,     "--config",  directory_ + "/cluster.res",
        "--node",    names[node], "--shards",
        "2",         "--nbd-base", "127.0.0.1:" + std::to_string(nbd_base_ + node * resource_count),
        "--control", socket(node)};
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int descriptor = ::open(log(node).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(descriptor, 2);
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    pids_[node] = pid;
    return wait_for_log(log(node), "ready; control socket");
  }

  ControlResult control(int node, const std::string& line) const {
    const CommandOutcome outcome =
        run_command(build_program("datapath/dittoadm") + " --control " + socket(node) + " " +
                    line + " 2>&1");
    return {outcome.exit_status, outcome.output};
  }

  // Connected connections over every resource of `node` (one peer per resource).
  int connected(int node) const {
    const std::string text = control(node, "status all --json").text;
    int count = 0;
    for (std::size_t at = 0; (at = text.find("\"connection-state\": \"Connected\"", at)) !=
                             std::string::npos;
         ++at) {
      ++count;
    }
    return count;
  }

  bool wait_connected(int node, int expected) const {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (connected(node) == expected) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Whether the daemon has `path` open (its /proc/PID/fd links).
  bool has_open(int node, const std::string& path) const {
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pids_[node]) + "/fd",
                                             error)) {
      if (std::filesystem::read_symlink(entry.path(), error) == path) return true;
    }
    return false;
  }

 private:
  std::string directory_;
  std::uint16_t nbd_base_ = 0;
  pid_t pids_[2] = {-1, -1};
};

std::vector<std::uint8_t> nbd_read(const std::string& uri, std::uint64_t offset,
                                   std::size_t size) {
  std::vector<std::uint8_t> bytes(size);
  nbd_handle* handle = nbd_create();
  const bool ok = handle != nullptr && nbd_connect_uri(handle, uri.c_str()) != -1 &&
                  nbd_pread(handle, bytes.data(), size, offset, 0) == 0;
  if (handle != nullptr) nbd_close(handle);
  if (!ok) bytes.clear();
  return bytes;
}

bool primary_when_possible(const TwoDaemons& daemons, int node, const std::string& resource) {
  // The former writer demotes itself when its last NBD connection closes; until then the
  // promotion is refused (two Primaries).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (daemons.control(node, "primary " + resource).exit_status == 0) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

TEST(MultiResourceDaemon, TwentyResourcesOnTwoShardsReplicateFailOverAndGoDownAndUpAlone) {
  TwoDaemons daemons;
  ASSERT_TRUE(daemons.start(0)) << read_file(daemons.log(0));
  ASSERT_TRUE(daemons.start(1)) << read_file(daemons.log(1));
  EXPECT_NE(read_file(daemons.log(0)).find("20 resources on 2 shards ready"), std::string::npos);
  ASSERT_TRUE(daemons.wait_connected(0, resource_count)) << daemons.control(0, "status all").text;
  ASSERT_TRUE(daemons.wait_connected(1, resource_count)) << daemons.control(1, "status all").text;

  // Writes to two resources (on different shards: placement is round-robin) through alpha.
  constexpr std::size_t size = 64 * 1024;
  ASSERT_TRUE(nbd_write(daemons.nbd_uri(0, 3), 8192, 0xA3, size)) << read_file(daemons.log(0));
  ASSERT_TRUE(nbd_write(daemons.nbd_uri(0, 16), 8192, 0x5C, size)) << read_file(daemons.log(0));

  // Failover of r03 alone: beta promotes and serves what alpha wrote.
  ASSERT_TRUE(primary_when_possible(daemons, 1, "r03")) << daemons.control(1, "status r03").text;
  EXPECT_EQ(nbd_read(daemons.nbd_uri(1, 3), 8192, size), std::vector<std::uint8_t>(size, 0xA3));
  // r16 stays with alpha, and its replica on beta's disk has the data.
  EXPECT_EQ(nbd_read(daemons.nbd_uri(0, 16), 8192, size), std::vector<std::uint8_t>(size, 0x5C));
  EXPECT_EQ(disk_bytes(daemons.disk(1, 16), 8192, size), std::vector<std::uint8_t>(size, 0x5C));

  // down refuses a resource in use: an NBD client holds r03 open on beta.
  {
    nbd_handle* holder = nbd_create();
    ASSERT_NE(nbd_connect_uri(holder, daemons.nbd_uri(1, 3).c_str()), -1);
    const ControlResult refused = daemons.control(1, "down r03");
    EXPECT_NE(refused.exit_status, 0);
    EXPECT_NE(refused.text.find("SS_DEVICE_IN_USE"), std::string::npos) << refused.text;
    nbd_close(holder);
  }

  // down r07 on beta: its disk is closed, every other resource stays Connected on both nodes.
  ASSERT_TRUE(daemons.has_open(1, daemons.disk(1, 7)));
  const ControlResult down = daemons.control(1, "down r07");
  ASSERT_EQ(down.exit_status, 0) << down.text;
  // Closed at once for I/O; the rest of the stopped resource goes within its retire delay.
  const auto closed_by = std::chrono::steady_clock::now() + 5s;
  while (daemons.has_open(1, daemons.disk(1, 7)) && std::chrono::steady_clock::now() < closed_by) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(daemons.has_open(1, daemons.disk(1, 7)));
  EXPECT_EQ(daemons.control(1, "status r07").exit_status, 10);
  EXPECT_TRUE(daemons.wait_connected(0, resource_count - 1));
  std::this_thread::sleep_for(500ms);  // nothing else drops meanwhile
  EXPECT_EQ(daemons.connected(0), resource_count - 1) << daemons.control(0, "status all").text;
  EXPECT_EQ(daemons.connected(1), resource_count - 1) << daemons.control(1, "status all").text;

  // up r07 brings it back and it reconnects; the data written before is still readable.
  const ControlResult up = daemons.control(1, "up r07");
  ASSERT_EQ(up.exit_status, 0) << up.text << read_file(daemons.log(1));
  EXPECT_TRUE(daemons.wait_connected(0, resource_count)) << daemons.control(0, "status all").text;
  EXPECT_TRUE(daemons.wait_connected(1, resource_count)) << daemons.control(1, "status all").text;
  EXPECT_EQ(daemons.control(1, "up r07").exit_status, 10) << "already up";
  EXPECT_EQ(nbd_read(daemons.nbd_uri(1, 3), 8192, size), std::vector<std::uint8_t>(size, 0xA3));
}

}  // namespace
}  // namespace ditto::testing
