// dittod refuses bad input before doing anything: each case stops the daemon with exit status 1
// and a message that names the file, the line and the problem.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cluster_harness.h"

namespace ditto::testing {
namespace {

using Outcome = CommandOutcome;

Outcome run_dittod(const std::string& config_path, const std::string& node) {
  const std::string command = build_program("datapath/dittod") + " --config " + config_path +
                              " --node " + node + " --control " + config_path + ".sock 2>&1";
  return run_command(command);
}

class DittodBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::path("/var/tmp") /
                 ("ditto-bad-input-" + std::to_string(::getpid()));
    std::filesystem::create_directories(directory_);
    disk_ = (directory_ / "alpha.img").string();
    std::ofstream(disk_).close();
    std::filesystem::resize_file(disk_, 1 << 20);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string write_config(const std::string& text) {
    const std::string path = (directory_ / "r0.res").string();
    std::ofstream(path) << text;
    return path;
  }

  std::string host_block(const std::string& name, int node_id, int port,
                         const std::string& disk) const {
    return "  on " + name + " {\n    node-id " + std::to_string(node_id) +
           ";\n    address 127.0.0.1:" + std::to_string(port) + ";\n    device /dev/drbd" +
           std::to_string(node_id) + ";\n    disk " + disk + ";\n    meta-disk internal;\n  }\n";
  }

  std::filesystem::path directory_;
  std::string disk_;
};

TEST_F(DittodBadInput, AnUnknownKeywordNamesFileLineAndKeyword) {
  const std::string path = write_config("resource r0 {\n  net { protocl C; }\n" +
                                        host_block("alpha", 0, 7000, disk_) +
                                        host_block("beta", 1, 7001, disk_) + "}\n");
  const Outcome outcome = run_dittod(path, "alpha");
  EXPECT_EQ(outcome.exit_status, 1);
  EXPECT_NE(outcome.output.find(path + ":2:9: unknown keyword 'protocl'"), std::string::npos)
      << outcome.output;
}

TEST_F(DittodBadInput, AMissingNodeIdNamesTheHost) {
  std::string alpha = host_block("alpha", 0, 7000, disk_);
  alpha.replace(alpha.find("    node-id 0;\n"), 15, "");
  const std::string path =
      write_config("resource r0 {\n" + alpha + host_block("beta", 1, 7001, disk_) + "}\n");
  const Outcome outcome = run_dittod(path, "alpha");
  EXPECT_EQ(outcome.exit_status, 1);
  EXPECT_NE(outcome.output.find(path + ":2:3: host 'alpha' has no node-id"), std::string::npos)
      << outcome.output;
}

TEST_F(DittodBadInput, AnUnreadableDiskNamesTheConfigLocationAndThePath) {
  const std::string missing = (directory_ / "missing.img").string();
  const std::string path = write_config("resource r0 {\n" + host_block("alpha", 0, 7000, missing) +
                                        host_block("beta", 1, 7001, disk_) + "}\n");
  const Outcome outcome = run_dittod(path, "alpha");
  EXPECT_EQ(outcome.exit_status, 1);
  EXPECT_NE(outcome.output.find(path + ":"), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find("cannot use disk '" + missing + "'"), std::string::npos)
      << outcome.output;
}

TEST_F(DittodBadInput, AHostThatIsNotInTheFileIsRefused) {
  const std::string path = write_config("resource r0 {\n" + host_block("alpha", 0, 7000, disk_) +
                                        host_block("beta", 1, 7001, disk_) + "}\n");
  const Outcome outcome = run_dittod(path, "gamma");
  EXPECT_EQ(outcome.exit_status, 1);
  EXPECT_NE(outcome.output.find("has no 'on gamma' section"), std::string::npos) << outcome.output;
}

TEST_F(DittodBadInput, AMissingConfigFileIsRefused) {
  const Outcome outcome = run_dittod((directory_ / "nope.res").string(), "alpha");
  EXPECT_EQ(outcome.exit_status, 1);
  EXPECT_NE(outcome.output.find("nope.res: cannot read configuration"), std::string::npos)
      << outcome.output;
}

}  // namespace
}  // namespace ditto::testing
