// Helpers of the network security tests (network_safety_test.cpp, tls_security_test.cpp):
// raw loopback sockets that play hostile peers, a recording proxy, log and disk inspection.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <libnbd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster_harness.h"

namespace ditto::testing {

using namespace std::chrono_literals;

inline int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Writes `bytes` and waits (up to 5 s) for the other side to close; true if it did.
inline bool send_and_wait_for_close(std::uint16_t port, const std::vector<std::uint8_t>& bytes) {
  const int fd = connect_loopback(port);
  if (fd < 0) return false;
  if (::write(fd, bytes.data(), bytes.size()) < 0) {
    ::close(fd);
    return true;  // already closed on us
  }
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool closed = false;
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd waiting{fd, POLLIN, 0};
    if (::poll(&waiting, 1, 100) <= 0) continue;
    char chunk[4096];
    closed = ::read(fd, chunk, sizeof(chunk)) <= 0;  // answers (AuthChallenge) are discarded
  }
  ::close(fd);
  return closed;
}

// Forwards the first connection on `port()` to 127.0.0.1:upstream and records what the client
// sent (up to 1 MiB).
class RecordingProxy {
 public:
  explicit RecordingProxy(std::uint16_t upstream) : upstream_(upstream) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    ::listen(listener_, 4);
    thread_ = std::thread([this] { run(); });
  }
  ~RecordingProxy() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }
  std::uint16_t port() const { return port_; }
  std::vector<std::uint8_t> recorded() {
    std::lock_guard lock(mutex_);
    return recorded_;
  }

 private:
  void run() {
    int client = -1;
    while (!stop_ && client < 0) {
      pollfd waiting{listener_, POLLIN, 0};
      if (::poll(&waiting, 1, 50) > 0) client = ::accept(listener_, nullptr, nullptr);
    }
    if (client < 0) return;
    const int server = connect_loopback(upstream_);
    while (!stop_ && server >= 0) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 50) <= 0) continue;
      char chunk[65536];
      if (fds[0].revents != 0) {
        const ssize_t got = ::read(client, chunk, sizeof(chunk));
        if (got <= 0 || ::write(server, chunk, static_cast<std::size_t>(got)) < 0) break;
        std::lock_guard lock(mutex_);
        if (recorded_.size() < (1u << 20)) recorded_.insert(recorded_.end(), chunk, chunk + got);
      }
      if (fds[1].revents != 0) {
        const ssize_t got = ::read(server, chunk, sizeof(chunk));
        if (got <= 0 || ::write(client, chunk, static_cast<std::size_t>(got)) < 0) break;
      }
    }
    ::close(client);
    if (server >= 0) ::close(server);
  }

  std::uint16_t upstream_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::uint8_t> recorded_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline bool wait_for_log(const std::string& path, const std::string& needle) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_file(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

inline std::vector<std::uint8_t> disk_bytes(const std::string& path, std::size_t offset,
                                     std::size_t size) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::vector<std::uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  return bytes;
}

inline bool nbd_write(const std::string& uri, std::uint64_t offset, std::uint8_t fill,
               std::size_t size) {
  nbd_handle* handle = nbd_create();
  if (handle == nullptr) return false;
  // Local files in the URI are allowed: nbds:// URIs name the client's certificate directory
  // (?tls-certificates=DIR).
  bool ok = nbd_set_uri_allow_local_file(handle, true) != -1;
  ok = ok && nbd_connect_uri(handle, uri.c_str()) != -1;
  const std::vector<std::uint8_t> bytes(size, fill);
  ok = ok && nbd_pwrite(handle, bytes.data(), bytes.size(), offset, 0) == 0;
  ok = ok && nbd_flush(handle, 0) == 0;
  if (ok) nbd_shutdown(handle, 0);
  nbd_close(handle);
  return ok;
}

// Drops every TCP packet to or from one loopback port with an nftables table of its own, as a
// path whose address became unreachable (cable pulled, route gone): an established connection on
// it goes silent and a new SYN to it is never answered. The table is deleted on destruction.
class PortBlackhole {
 public:
  explicit PortBlackhole(std::uint16_t port)
      : table_("ditto_blackhole_" + std::to_string(::getpid()) + "_" + std::to_string(port)) {
    const std::string rule = "nft add rule inet " + table_ + " input tcp ";
    const std::string script =
        "nft add table inet " + table_ + " && nft add chain inet " + table_ +
        " input '{ type filter hook input priority -10; policy accept; }' && " + rule +
        "dport " + std::to_string(port) + " drop && " + rule + "sport " + std::to_string(port) +
        " drop 2>&1";
    const CommandOutcome outcome = run_command(script);
    if (outcome.exit_status != 0) error_ = "nft failed: " + outcome.output;
  }
  ~PortBlackhole() { run_command("nft delete table inet " + table_ + " 2>/dev/null"); }
  PortBlackhole(const PortBlackhole&) = delete;
  PortBlackhole& operator=(const PortBlackhole&) = delete;

  // Empty when the rules are in place.
  const std::string& error() const { return error_; }

 private:
  std::string table_;
  std::string error_;
};

struct Attacker {
  pid_t pid = -1;
  ~Attacker() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

}  // namespace ditto::testing
