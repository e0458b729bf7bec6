// Runs DRBD handlers (fence-peer, split-brain, ...) as child processes, the way drbdadm runs
// the command of a resource's handlers{} section: `/bin/sh -c COMMAND` with extra environment
// variables. The exit code comes back on the io_context, never from inside run():
// - the child is started with posix_spawn (signal mask and dispositions reset, descriptors
//   above stderr closed: a handler must not inherit the daemon's sockets);
// - its exit is watched through a pidfd (pidfd_open) registered with the io_context, so the
//   I/O thread never blocks in waitpid; where pidfd_open is missing it polls with WNOHANG;
// - a command that cannot be started reports 127, one killed by a signal 128 + the signal.
// Children still running when the runner is stopped are left to finish (DRBD does not kill its
// helpers either); they are no longer watched.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio.hpp>

namespace ditto::datapath {

inline constexpr int helper_exit_cannot_start = 127;

class HelperRunner {
 public:
  using Done = std::function<void(int exit_code)>;

  explicit HelperRunner(boost::asio::io_context& io);
  ~HelperRunner();
  HelperRunner(const HelperRunner&) = delete;
  HelperRunner& operator=(const HelperRunner&) = delete;

  // Starts `/bin/sh -c command` with `environment` ("KEY=VALUE" entries) added to the daemon's
  // own; `done` receives the exit code later on the io_context.
  void run(const std::string& command, const std::vector<std::string>& environment, Done done);
  // No `done` is called after this. Idempotent.
  void stop();
  std::size_t running() const { return running_; }

 private:
  struct Child;  // daemon_helpers.cpp
  void watch(const std::shared_ptr<Child>& child);
  void poll_later(const std::shared_ptr<Child>& child);
  void finish(const std::shared_ptr<Child>& child);

  boost::asio::io_context& io_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<std::shared_ptr<Child>> children_;
  std::size_t running_ = 0;
};

// The exit code a handler's wait status stands for (exit status, or 128 + signal).
int helper_exit_code(int wait_status);

}  // namespace ditto::datapath
