#include "faults/local_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <thread>

#include "datapath/metadata_store.h"

namespace ditto::faults {
namespace {

const char* const node_names[] = {"alpha", "beta", "gamma", "delta", "epsilon"};

}  // namespace

std::string build_program(const std::string& relative_path) {
  const char* build = std::getenv("DITTO_BUILD_DIR");
  if (build != nullptr) return std::string(build) + "/" + relative_path;
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) throw std::runtime_error("DITTO_BUILD_DIR is not set and /proc/self/exe unreadable");
  return (self.parent_path().parent_path() / relative_path).string();
}

CommandOutcome run_command(const std::string& command) {
  CommandOutcome outcome;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  std::array<char, 65536> chunk{};
  std::size_t got = 0;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), pipe)) > 0) {
    outcome.output.append(chunk.data(), got);
  }
  const int status = ::pclose(pipe);
  outcome.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

bool create_backing_disk(const std::string& path, std::uint64_t data_size_bytes, int max_peers,
                         std::string& error) {
  metadata::LayoutOptions options;
  options.max_peers = static_cast<std::uint32_t>(max_peers);
  const Result<std::uint64_t> size_bytes =
      datapath::backing_bytes_for_data(data_size_bytes, options);
  if (!size_bytes.ok()) {
    error = path + ": " + size_bytes.error().message;
    return false;
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc).close();
  std::filesystem::resize_file(path, size_bytes.value());
  const CommandOutcome created =
      run_command(build_program("datapath/dittoadm") + " create-md " + path + " --max-peers " +
                  std::to_string(max_peers) + " --force 2>&1");
  if (created.exit_status != 0) {
    error = "dittoadm create-md " + path + " failed: " + created.output;
    return false;
  }
  return true;
}

// Ports come from below the kernel's ephemeral range (32768..60999 here): a port the kernel
// handed out by bind(0) is also what it hands to the next outgoing connection, so a daemon
// dialling its peers could take a port another daemon of the same test is about to listen on.
// Each test process scans its own window (by pid), never returns a port twice, and skips ports
// something else holds.
std::uint16_t free_port() {
  constexpr std::uint32_t first_port = 20'000;
  constexpr std::uint32_t port_count = 12'000;
  static std::uint32_t next = static_cast<std::uint32_t>(::getpid()) % 250 * 48;
  for (std::uint32_t attempt = 0; attempt < port_count; ++attempt) {
    const auto port = static_cast<std::uint16_t>(first_port + next % port_count);
    next += 1;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (free) return port;
  }
  throw std::runtime_error("no free TCP port in 20000..31999 on 127.0.0.1");
}

LocalCluster::LocalCluster(int node_count, std::uint64_t disk_size_bytes) {
  // Disks need a file system that takes O_DIRECT (tmpfs does not): /var/tmp by default.
  const char* chosen = std::getenv("DITTO_TEST_DIR");
  std::string base = chosen != nullptr ? chosen : "/var/tmp/ditto-test-clusters";
  std::filesystem::create_directories(base);
  std::string pattern = base + "/cluster-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  directory_ = pattern;
  std::string config = "resource r0 {\n  net { protocol C; }\n";
  for (int i = 0; i < node_count; ++i) {
    names_.emplace_back(node_names[i]);
    peer_ports_.push_back(free_port());
    nbd_ports_.push_back(free_port());
    pids_.push_back(-1);
    node_configs_.emplace_back();
    std::string error;
    if (!create_backing_disk(disk_path(i), disk_size_bytes, std::max(node_count - 1, 1), error)) {
      throw std::runtime_error(error);
    }
    config += "  on " + names_[i] + " {\n    node-id " + std::to_string(i) +
              ";\n    address 127.0.0.1:" + std::to_string(peer_ports_[i]) +
              ";\n    device /dev/drbd" + std::to_string(100 + i) + ";\n    disk " +
              disk_path(i) + ";\n    meta-disk internal;\n  }\n";
  }
  if (node_count > 2) {
    config += "  connection-mesh {\n    hosts";
    for (const std::string& name : names_) config += " " + name;
    config += ";\n  }\n";
  }
  config += "}\n";
  std::ofstream(config_path()) << config;
}

LocalCluster::~LocalCluster() {
  for (std::size_t i = 0; i < pids_.size(); ++i) {
    if (pids_[i] > 0) kill(static_cast<int>(i), SIGKILL);
  }
  if (!keep_directory_ && std::getenv("DITTO_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
}

bool LocalCluster::start(int index, std::string& error) { return start_with(index, {}, error); }

void LocalCluster::kill(int index, int signal_number) {
  if (pids_[index] <= 0) return;
  ::kill(pids_[index], signal_number);
  int status = 0;
  ::waitpid(pids_[index], &status, 0);
  pids_[index] = -1;
}

bool LocalCluster::running(int index) const { return pids_[index] > 0; }

ControlResult LocalCluster::control(int index, const std::string& line) const {
  ControlResult result;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string path = control_path(index);
  std::memcpy(address.sun_path, path.c_str(), std::min(path.size() + 1, sizeof(address.sun_path)));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return result;
  }
  const std::string request = line + "\n";
  if (::write(fd, request.data(), request.size()) < 0) {
    ::close(fd);
    return result;
  }
  std::string reply;
  char chunk[4096];
  ssize_t got = 0;
  while ((got = ::read(fd, chunk, sizeof(chunk))) > 0) reply.append(chunk, static_cast<std::size_t>(got));
  ::close(fd);
  const auto newline = reply.find('\n');
  if (newline == std::string::npos) return result;
  result.exit_status = std::atoi(reply.substr(0, newline).c_str());
  result.text = reply.substr(newline + 1);
  return result;
}

bool LocalCluster::wait_connected(int index, int peers, int timeout_ms) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const ControlResult status = control(index, "status r0 --json");
    std::size_t connected = 0;
    std::size_t position = 0;
    while ((position = status.text.find("\"connection-state\": \"Connected\"", position)) !=
           std::string::npos) {
      ++connected;
      ++position;
    }
    if (static_cast<int>(connected) >= peers) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool LocalCluster::start_all_connected(std::string& error, int timeout_ms) {
  const int count = static_cast<int>(names_.size());
  for (int index = 0; index < count; ++index) {
    if (!start(index, error)) return false;
  }
  for (int index = 0; index < count; ++index) {
    if (!wait_connected(index, count - 1, timeout_ms)) {
      error = names_[index] + " did not connect to its " + std::to_string(count - 1) +
              " peers within " + std::to_string(timeout_ms) + " ms";
      return false;
    }
  }
  return true;
}

bool LocalCluster::promote(int index, std::string& error, int timeout_ms) const {
  const ControlResult promoted = control(index, "primary r0");
  if (promoted.exit_status != 0) {
    error = "primary r0 on " + names_[index] + " failed: " + promoted.text;
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (control(index, "status r0").text.rfind("r0 role:Primary", 0) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  error = names_[index] + " is not Primary " + std::to_string(timeout_ms) + " ms after promotion";
  return false;
}

std::string LocalCluster::nbd_uri(int index) const {
  return "nbd://127.0.0.1:" + std::to_string(nbd_ports_[index]) + "/r0";
}

std::string LocalCluster::host_block(int index) const {
  return "  on " + names_[index] + " {\n    node-id " + std::to_string(index) +
         ";\n    address 127.0.0.1:" + std::to_string(peer_ports_[index]) +
         ";\n    device /dev/drbd" + std::to_string(100 + index) + ";\n    disk " +
         disk_path(index) + ";\n    meta-disk internal;\n  }\n";
}

void LocalCluster::write_config(const std::string& text) const {
  std::ofstream(config_path(), std::ios::trunc) << text;
}

bool LocalCluster::start_with(int index, const std::vector<std::string>& extra_arguments,
                              std::string& error) {
  const std::string program = build_program("datapath/dittod");
  const std::string nbd = "127.0.0.1:" + std::to_string(nbd_ports_[index]);
  const std::string config =
      node_configs_[index].empty() ? config_path() : node_configs_[index];
  std::vector<std::string> arguments{program,         "--config", config,
                                     "--node",        names_[index], "--nbd", nbd,
                                     "--control",     control_path(index)};
  arguments.insert(arguments.end(), extra_arguments.begin(), extra_arguments.end());
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int log = ::open(log_path(index).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, 1);
      ::dup2(log, 2);
    }
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  pids_[index] = pid;
  for (int attempt = 0; attempt < 200; ++attempt) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pids_[index] = -1;
      std::ifstream log(log_path(index));
      error = "dittod " + names_[index] + " exited early: " +
              std::string(std::istreambuf_iterator<char>(log), {});
      return false;
    }
    if (control(index, "status r0").exit_status == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  error = "dittod " + names_[index] + " did not open its control socket";
  return false;
}

bool write_random_file(const std::string& path, std::uint64_t size_bytes, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<char> bytes(size_bytes);
  for (char& byte : bytes) byte = static_cast<char>(random());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out.good();
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool wait_for_status(const LocalCluster& cluster, int index, const std::string& text,
                     int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    if (cluster.control(index, "status r0").text.find(text) != std::string::npos) return true;
    ::usleep(20'000);
  }
  return false;
}

}  // namespace ditto::faults
