// One dittod with several resources serves them behind one address each for metrics and NBD:
// `--metrics HOST:PORT` exposes every resource's drbd-reactor series labelled with its name, and
// `--nbd HOST:PORT` lets a client pick the resource by export name (LIST shows all of them).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cluster_harness.h"
#include "network_test_support.h"

namespace ditto::testing {
namespace {

constexpr std::uint64_t data_size_bytes = 4u << 20;
const std::vector<std::string> resources = {"red", "blue"};

// One daemon (node alpha, no peers) running the resources red and blue.
class OneDaemonTwoResources : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories("/var/tmp/ditto-test-clusters");
    std::string pattern = "/var/tmp/ditto-test-clusters/endpoints-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    directory_ = pattern;
    std::string config;
    for (std::size_t index = 0; index < resources.size(); ++index) {
      std::string error;
      ASSERT_TRUE(create_backing_disk(disk(index), data_size_bytes, 1, error)) << error;
      config += "resource " + resources[index] + " {\n  on alpha { node-id 0; address 127.0.0.1:" +
                std::to_string(free_port()) + "; device /dev/drbd" + std::to_string(index + 1) +
                "; disk " + disk(index) + "; meta-disk internal; }\n}\n";
    }
    std::ofstream(directory_ + "/two.res") << config;
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (std::getenv("DITTO_KEEP_TEST_DIRS") == nullptr) {
      std::error_code ignored;
      std::filesystem::remove_all(directory_, ignored);
    }
  }

  std::string disk(std::size_t index) const {
    return directory_ + "/" + resources[index] + ".img";
  }
  std::string log() const { return directory_ + "/alpha.log"; }

  // Starts dittod with `extra` arguments; true once it is ready.
  bool start(const std::vector<std::string>& extra) {
    const std::string program = build_program("datapath/dittod");
    std::vector<std::string> arguments{program,  "--config", directory_ + "/two.res", "--node",
                                       "alpha",  "--shards", "2",
                                       "--control", directory_ + "/alpha.sock"};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& argument : arguments) argv.push_back(argument.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int descriptor = ::open(log().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(descriptor, 2);
      ::execv(program.c_str(), argv.data());
      ::_exit(127);
    }
    return wait_for_log(log(), "ready; control socket");
  }

  std::string directory_;
  pid_t pid_ = -1;
};

// Every sample line of `body` whose metric is `metric`, keyed by its `name` label.
std::map<std::string, std::string> samples_by_resource(const std::string& body,
                                                       const std::string& metric) {
  std::map<std::string, std::string> found;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    const std::size_t start = line.find("name=\"");
    if (start == std::string::npos) continue;
    const std::size_t end = line.find('"', start + 6);
    found[line.substr(start + 6, end - start - 6)] = line;
  }
  return found;
}

TEST_F(OneDaemonTwoResources, OneMetricsEndpointServesEveryResourceLabelledWithItsName) {
  const std::uint16_t port = free_port();
  ASSERT_TRUE(start({"--metrics", "127.0.0.1:" + std::to_string(port)})) << read_file(log());
  const CommandOutcome scrape =
      run_command("curl -sf http://127.0.0.1:" + std::to_string(port) + "/metrics");
  ASSERT_EQ(scrape.exit_status, 0) << read_file(log());
  EXPECT_NE(scrape.output.find("\ndrbd_resource_resources 2\n"), std::string::npos)
      << scrape.output;
  for (const char* metric : {"drbd_resource_maypromote", "drbd_device_size_bytes"}) {
    const auto samples = samples_by_resource(scrape.output, metric);
    EXPECT_EQ(samples.size(), 2u) << metric << "\n" << scrape.output;
    for (const std::string& resource : resources) {
      EXPECT_EQ(samples.count(resource), 1u) << metric << " of " << resource;
    }
  }
  EXPECT_NE(scrape.output.find("drbd_device_size_bytes{name=\"blue\",volume=\"0\",minor=\"2\"} " +
                               std::to_string(data_size_bytes)),
            std::string::npos)
      << scrape.output;
  // The exposition format allows each family's HELP and TYPE once.
  std::istringstream in(scrape.output);
  std::map<std::string, int> type_lines;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) ++type_lines[line.substr(7, line.find(' ', 7) - 7)];
  }
  for (const auto& [family, count] : type_lines) EXPECT_EQ(count, 1) << family;
}

TEST_F(OneDaemonTwoResources, OneNbdPortServesEveryResourceByExportName) {
  const std::uint16_t port = free_port();
  const std::string address = "nbd://127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(start({"--nbd", "127.0.0.1:" + std::to_string(port)})) << read_file(log());

  const CommandOutcome list = run_command("nbdinfo --list " + address + " 2>&1");
  ASSERT_EQ(list.exit_status, 0) << list.output;
  for (const std::string& resource : resources) {
    EXPECT_NE(list.output.find("export=\"" + resource + "\""), std::string::npos) << list.output;
  }

  // Different bytes into each resource through the one port, read back through it.
  for (std::size_t index = 0; index < resources.size(); ++index) {
    SCOPED_TRACE(resources[index]);
    const std::string source = directory_ + "/source-" + resources[index];
    const std::string back = directory_ + "/back-" + resources[index];
    const std::string uri = address + "/" + resources[index];
    ASSERT_EQ(run_command("head -c " + std::to_string(data_size_bytes) + " /dev/urandom > " +
                          source).exit_status, 0);
    const CommandOutcome in = run_command("nbdcopy " + source + " " + uri + " 2>&1");
    ASSERT_EQ(in.exit_status, 0) << in.output << read_file(log());
    const CommandOutcome out = run_command("nbdcopy " + uri + " " + back + " 2>&1");
    ASSERT_EQ(out.exit_status, 0) << out.output;
    EXPECT_EQ(run_command("cmp " + source + " " + back).exit_status, 0);
    // And it is that resource's disk that holds them.
    EXPECT_EQ(run_command("cmp -n " + std::to_string(data_size_bytes) + " " + source + " " +
                          disk(index)).exit_status, 0);
  }

  const CommandOutcome unknown = run_command("nbdinfo " + address + "/green 2>&1");
  EXPECT_NE(unknown.exit_status, 0) << unknown.output;
  // libnbd reports NBD_REP_ERR_UNKNOWN as ENOENT.
  EXPECT_NE(unknown.output.find("No such file or directory for export: green"), std::string::npos)
      << unknown.output;
}

}  // namespace
}  // namespace ditto::testing
