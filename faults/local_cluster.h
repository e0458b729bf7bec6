// Runs real dittod processes on loopback (integration tests and the real-cluster fault injector,
// faults/real_injector.h): writes a drbd.conf-grammar resource file, creates file-backed disks,
// starts and kills daemons, and talks to them over their control sockets. Disks live under
// /var/tmp by default (ext4; tmpfs refuses O_DIRECT).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ditto::faults {

struct ControlResult {
  int exit_status = -1;
  std::string text;
};

class LocalCluster {
 public:
  // node_count daemons named alpha, beta, gamma...; each disk holds disk_size_bytes of data (the
  // NBD export's size) plus DRBD v09 internal metadata with max-peers node_count - 1 (at least
  // 1), written by `dittoadm create-md` (create_backing_disk).
  LocalCluster(int node_count, std::uint64_t disk_size_bytes);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // Starts daemon `index`; returns false (with a message in `error`) if it exits early.
  bool start(int index, std::string& error);
  void kill(int index, int signal_number);  // and reap it
  bool running(int index) const;
  // The daemon's process id (-1 when not running), e.g. to SIGSTOP it without reaping it.
  pid_t pid(int index) const { return pids_[index]; }

  ControlResult control(int index, const std::string& line) const;
  // Waits until node `index` reports every peer Connected (or `peers` of them).
  bool wait_connected(int index, int peers, int timeout_ms) const;
  // Starts every node and waits until each is Connected to all the others.
  bool start_all_connected(std::string& error, int timeout_ms = 10'000);
  // `primary r0` on node `index`, then waits until its status says Primary (a promotion is a
  // cluster-wide state change and may finish after the command returns). False with the reason.
  bool promote(int index, std::string& error, int timeout_ms = 10'000) const;
  std::string nbd_uri(int index) const;
  std::string name(int index) const { return names_[index]; }
  std::string disk_path(int index) const { return directory_ + "/" + names_[index] + ".img"; }
  std::string config_path() const { return directory_ + "/r0.res"; }
  std::string log_path(int index) const { return directory_ + "/" + names_[index] + ".log"; }
  const std::string& directory() const { return directory_; }
  std::uint16_t peer_port(int index) const { return peer_ports_[index]; }
  std::string control_socket(int index) const { return control_path(index); }
  // The `on NAME { ... }` block of node `index`, as the default configuration has it.
  std::string host_block(int index) const;
  // Replaces the configuration file (before start) with `text`.
  void write_config(const std::string& text) const;
  // Node `index` reads its own configuration file from then on (e.g. one that routes its peer
  // connections through impairment proxies); empty: the shared one again.
  void use_node_config(int index, const std::string& path) { node_configs_[index] = path; }
  std::uint16_t nbd_port(int index) const { return nbd_ports_[index]; }
  // Leaves the directory (disks, configurations, logs) behind when destroyed.
  void keep_directory() { keep_directory_ = true; }
  int size() const { return static_cast<int>(names_.size()); }
  // start() with more dittod arguments (e.g. --metrics HOST:PORT).
  bool start_with(int index, const std::vector<std::string>& extra_arguments, std::string& error);

 private:
  std::string control_path(int index) const { return directory_ + "/" + names_[index] + ".sock"; }

  std::string directory_;
  std::vector<std::string> names_;
  std::vector<std::uint16_t> peer_ports_;
  std::vector<std::uint16_t> nbd_ports_;
  std::vector<pid_t> pids_;
  std::vector<std::string> node_configs_;
  bool keep_directory_ = false;
};

// Runs a shell command and returns its exit status and standard output (append 2>&1 to the
// command to capture standard error too).
struct CommandOutcome {
  int exit_status = -1;
  std::string output;
};
CommandOutcome run_command(const std::string& command);

// Path of a built program: under the DITTO_BUILD_DIR environment variable (set by ctest), else
// under the build directory of the running program (BUILD/faults/ditto-faults).
std::string build_program(const std::string& relative_path);
// A TCP port that was free a moment ago on 127.0.0.1.
std::uint16_t free_port();

// Makes `path` a backing disk dittod attaches: sized so its data area is exactly data_size_bytes
// (a multiple of 4096), with fresh DRBD v09 internal metadata (`dittoadm create-md --max-peers
// max_peers --force`) at its end. False with the reason in `error`.
bool create_backing_disk(const std::string& path, std::uint64_t data_size_bytes, int max_peers,
                         std::string& error);

// Writes `size_bytes` of pseudo-random bytes (from `seed`) to `path`; false if it cannot.
bool write_random_file(const std::string& path, std::uint64_t size_bytes, std::uint64_t seed);

// The whole text of a file (a daemon's log), empty if it cannot be read.
std::string file_text(const std::string& path);

// Polls `status r0` on node `index` every 20 ms until it contains `text`.
bool wait_for_status(const LocalCluster& cluster, int index, const std::string& text,
                     int timeout_ms = 15'000);

}  // namespace ditto::faults
