#include "datapath/daemon_helpers.h"

#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "core/assert.h"

extern char** environ;

namespace ditto::datapath {

namespace asio = boost::asio;

namespace {

constexpr auto poll_interval = std::chrono::milliseconds(20);

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// posix_spawn of /bin/sh -c `command`; the pid, or -1 if it could not start.
pid_t spawn_shell(const std::string& command, const std::vector<std::string>& environment) {
  std::vector<std::string> entries;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const std::string key = text.substr(0, text.find('=') + 1);
    const bool overridden = std::any_of(environment.begin(), environment.end(),
                                        [&](const std::string& e) { return e.rfind(key, 0) == 0; });
    if (!overridden) entries.push_back(text);
  }
  entries.insert(entries.end(), environment.begin(), environment.end());
  std::vector<char*> envp;
  for (std::string& entry : entries) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string shell = "/bin/sh";
  std::string dash_c = "-c";
  std::string command_copy = command;
  char* argv[] = {shell.data(), dash_c.data(), command_copy.data(), nullptr};

  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, shell.c_str(), &actions, &attributes, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return error == 0 ? pid : -1;
}

}  // namespace

struct HelperRunner::Child {
  explicit Child(asio::io_context& io) : descriptor(io), poll_timer(io) {}
  pid_t pid = -1;
  asio::posix::stream_descriptor descriptor;  // the pidfd, when there is one
  asio::steady_timer poll_timer;              // without a pidfd
  Done done;
  bool finished = false;
};

int helper_exit_code(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return helper_exit_cannot_start;
}

HelperRunner::HelperRunner(asio::io_context& io) : io_(io) {}

HelperRunner::~HelperRunner() {
  stop();
}

void HelperRunner::run(const std::string& command, const std::vector<std::string>& environment,
                       Done done) {
  DITTO_ASSERT(done != nullptr);
  if (!*alive_) return;
  const pid_t pid = spawn_shell(command, environment);
  if (pid < 0) {
    asio::post(io_, [alive = alive_, done = std::move(done)] {
      if (*alive) done(helper_exit_cannot_start);
    });
    return;
  }
  auto child = std::make_shared<Child>(io_);
  child->pid = pid;
  child->done = std::move(done);
  children_.push_back(child);
  running_ += 1;
  const int pidfd = open_pidfd(pid);
  if (pidfd < 0) return poll_later(child);
  child->descriptor.assign(pidfd);
  watch(child);
}

// A pidfd becomes readable when the process exits.
void HelperRunner::watch(const std::shared_ptr<Child>& child) {
  child->descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                               [this, alive = alive_, child](boost::system::error_code error) {
                                 if (!*alive || child->finished) return;
                                 if (error) return poll_later(child);
                                 finish(child);
                               });
}

void HelperRunner::poll_later(const std::shared_ptr<Child>& child) {
  child->poll_timer.expires_after(poll_interval);
  child->poll_timer.async_wait([this, alive = alive_, child](boost::system::error_code error) {
    if (!*alive || error || child->finished) return;
    finish(child);
  });
}

void HelperRunner::finish(const std::shared_ptr<Child>& child) {
  int status = 0;
  pid_t reaped = 0;
  do {
    reaped = ::waitpid(child->pid, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == 0) return poll_later(child);  // not exited yet (a spurious wake-up)
  child->finished = true;
  running_ -= 1;
  boost::system::error_code ignored;
  child->descriptor.close(ignored);
  std::erase(children_, child);
  const int exit_code = reaped < 0 ? helper_exit_cannot_start : helper_exit_code(status);
  child->done(exit_code);
}

void HelperRunner::stop() {
  if (!*alive_) return;
  *alive_ = false;
  for (const std::shared_ptr<Child>& child : children_) {
    boost::system::error_code ignored;
    child->descriptor.close(ignored);
    child->poll_timer.cancel();
  }
  children_.clear();
}

}  // namespace ditto::datapath
