// HelperRunner runs handler commands as DRBD's drbdadm does (/bin/sh -c, extra environment) and
// reports their exit codes later on the io_context, without blocking it.
#include "datapath/daemon_helpers.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ditto::datapath {
namespace {

// Runs `command` and the io_context until it reports; nullopt after 10 s.
std::optional<int> exit_code_of(const std::string& command,
                                const std::vector<std::string>& environment = {}) {
  boost::asio::io_context io;
  HelperRunner runner(io);
  std::optional<int> code;
  runner.run(command, environment, [&](int exit_code) { code = exit_code; });
  EXPECT_FALSE(code.has_value()) << "done was called from inside run()";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!code && std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(20));
    io.restart();
  }
  return code;
}

TEST(HelperRunner, ReportsTheCommandsExitCode) {
  EXPECT_EQ(exit_code_of("exit 0"), 0);
  EXPECT_EQ(exit_code_of("exit 4"), 4);
}

TEST(HelperRunner, ACommandThatDoesNotExistReports127) {
  EXPECT_EQ(exit_code_of("/nonexistent/fence-peer-handler"), helper_exit_cannot_start);
}

TEST(HelperRunner, ACommandKilledByASignalReports128PlusTheSignal) {
  EXPECT_EQ(exit_code_of("kill -KILL $$"), 128 + SIGKILL);
}

TEST(HelperRunner, TheCommandSeesTheExtraEnvironmentOverridingTheDaemons) {
  ::setenv("DRBD_RESOURCE", "inherited", 1);
  EXPECT_EQ(exit_code_of("test \"$DRBD_RESOURCE\" = r0 && test \"$UP_TO_DATE_NODES\" = 0x00000005",
                         {"DRBD_RESOURCE=r0", "UP_TO_DATE_NODES=0x00000005"}),
            0);
  ::unsetenv("DRBD_RESOURCE");
}

TEST(HelperRunner, TheIoContextKeepsRunningWhileAHandlerRuns) {
  boost::asio::io_context io;
  HelperRunner runner(io);
  std::optional<int> code;
  runner.run("sleep 0.3; exit 6", {}, [&](int exit_code) { code = exit_code; });
  int ticks = 0;
  boost::asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    timer.expires_after(std::chrono::milliseconds(10));
    timer.async_wait([&](boost::system::error_code error) {
      if (error || code) return;
      ++ticks;
      tick();
    });
  };
  tick();
  io.run_for(std::chrono::seconds(5));
  EXPECT_EQ(code, 6);
  EXPECT_GE(ticks, 10) << "the io_context was blocked while the handler ran";
  EXPECT_EQ(runner.running(), 0u);
}

TEST(HelperRunner, NoReportAfterStop) {
  boost::asio::io_context io;
  HelperRunner runner(io);
  bool called = false;
  runner.run("exit 0", {}, [&](int) { called = true; });
  runner.stop();
  io.run_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace ditto::datapath
