#include "faults/real_injector.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "faults/impairment_proxy.h"
#include "faults/local_cluster.h"
#include "faults/real_client.h"

namespace ditto::faults {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// One live view of a node: its `status r0 --json`, parsed.
struct NodeView {
  bool reachable = false;
  std::string role;
  std::string disk;
  bool quorum = true;
  // By peer node id: connection state, peer disk state, replication state.
  std::map<int, std::array<std::string, 3>> peers;
};

class RealRun {
 public:
  RealRun(const Scenario& scenario, std::uint64_t seed, const RealOptions& options)
      : scenario_(scenario), seed_(seed), options_(options), plan_(plan_operations(scenario, seed)) {}

  RunReport run();

 private:
  int nodes() const { return static_cast<int>(scenario_.cluster.nodes); }
  void progress(const std::string& line) const {
    if (options_.progress) options_.progress(line);
  }
  bool set_up(std::string& error);
  std::string node_config(int node) const;
  NodeView view(int node) const;
  // Polls until `holds` is true of the cluster, or the timeout; false with what was last seen.
  bool wait(const Step& step, std::string& detail);
  bool condition_holds(const Step& step, std::string& detail) const;
  bool connect_client(std::string& error);
  // The steps; each fills the report entry's outcome and returns false on failure.
  bool run_step(std::size_t index, StepReport& report);
  bool write_step(std::size_t index, const Step& step, StepReport& report);
  bool read_verify(std::size_t index, StepReport& report);
  bool check_acknowledged(std::string& detail);
  bool check_identical(std::string& detail);
  bool admin(const Step& step, StepReport& report);
  void impair(const DirectedLink& link, const DirectionImpairment& impairment);
  DirectionImpairment& current(const DirectedLink& link) {
    return impairments_[link.from][link.to];
  }

  const Scenario& scenario_;
  std::uint64_t seed_;
  const RealOptions& options_;
  OperationPlan plan_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<ImpairmentLayer> layer_;
  std::map<std::pair<int, int>, int> proxies_;  // (dialer, acceptor) -> proxy
  std::map<std::pair<int, int>, std::uint16_t> proxy_ports_;
  std::array<std::array<DirectionImpairment, nodes_max>, nodes_max> impairments_{};
  std::optional<int> primary_ = 0;
  std::vector<bool> alive_;
  NbdClient client_;
  BlockModel model_;
  RunReport report_;
};

std::string RealRun::node_config(int node) const {
  const ClusterShape& shape = scenario_.cluster;
  std::string text = "resource r0 {\n  net { protocol " + std::string(ditto::to_string(shape.protocol)) +
                     "; ping-int 1; ping-timeout 5; connect-int 1; }\n";
  if (shape.diskless_node) {  // the client needs the size its peers export
    text += "  disk { size " + std::to_string(shape.volume_size_bytes >> 20) + "M; }\n";
  }
  if (shape.quorum == Quorum::majority) {
    text += "  options { quorum majority; on-no-quorum io-error; }\n";
  }
  for (int other = 0; other < nodes(); ++other) {
    // Node `node` dials the nodes above it: through the proxy of that connection.
    const std::uint16_t port = other > node ? proxy_ports_.at({node, other})
                                            : cluster_->peer_port(other);
    text += "  on " + cluster_->name(other) + " {\n    node-id " + std::to_string(other) +
            ";\n    address 127.0.0.1:" + std::to_string(port) + ";\n    device /dev/drbd" +
            std::to_string(100 + other) + ";\n";
    if (!shape.diskful(static_cast<std::uint8_t>(other))) {
      text += "    disk none;\n  }\n";
    } else {
      text += "    disk " + cluster_->disk_path(other) + ";\n    meta-disk internal;\n  }\n";
    }
  }
  if (nodes() > 2) {
    text += "  connection-mesh {\n    hosts";
    for (int other = 0; other < nodes(); ++other) text += " " + cluster_->name(other);
    text += ";\n  }\n";
  }
  return text + "}\n";
}

bool RealRun::set_up(std::string& error) {
  try {
    cluster_ = std::make_unique<LocalCluster>(nodes(), scenario_.cluster.volume_size_bytes);
  } catch (const std::exception& failure) {
    error = failure.what();
    return false;
  }
  layer_ = std::make_unique<ImpairmentLayer>();
  for (int dialer = 0; dialer < nodes(); ++dialer) {
    for (int acceptor = dialer + 1; acceptor < nodes(); ++acceptor) {
      const std::uint16_t port = free_port();
      proxy_ports_[{dialer, acceptor}] = port;
      proxies_[{dialer, acceptor}] = layer_->add_proxy(
          port, cluster_->peer_port(acceptor), Prng::derive(seed_, 0x9e0 + proxies_.size()).next_u64());
    }
  }
  for (int node = 0; node < nodes(); ++node) {
    const std::string path = cluster_->directory() + "/" + cluster_->name(node) + ".res";
    std::ofstream(path) << node_config(node);
    cluster_->use_node_config(node, path);
  }
  alive_.assign(static_cast<std::size_t>(nodes()), true);
  for (int node = 0; node < nodes(); ++node) {
    if (!cluster_->start(node, error)) return false;
  }
  Step connected;
  connected.kind = StepKind::wait;
  connected.condition = WaitCondition::connected;
  connected.timeout_ms = 20'000;
  if (!wait(connected, error)) return false;
  if (!cluster_->promote(0, error)) return false;
  Step up_to_date = connected;
  up_to_date.condition = WaitCondition::up_to_date;
  if (!wait(up_to_date, error)) return false;
  return connect_client(error);
}

NodeView RealRun::view(int node) const {
  NodeView view;
  const ControlResult status = cluster_->control(node, "status r0 --json");
  if (status.exit_status != 0) return view;
  const json document = json::parse(status.text, nullptr, false);
  if (document.is_discarded() || !document.is_array() || document.empty()) return view;
  const json& resource = document[0];
  view.reachable = true;
  view.role = resource.value("role", "");
  if (resource.contains("devices") && !resource["devices"].empty()) {
    view.disk = resource["devices"][0].value("disk-state", "");
    view.quorum = resource["devices"][0].value("quorum", true);
  }
  for (const json& connection : resource.value("connections", json::array())) {
    std::array<std::string, 3> entry{connection.value("connection-state", ""), "", ""};
    if (connection.contains("peer_devices") && !connection["peer_devices"].empty()) {
      entry[1] = connection["peer_devices"][0].value("peer-disk-state", "");
      entry[2] = connection["peer_devices"][0].value("replication-state", "");
    }
    view.peers[connection.value("peer-node-id", -1)] = entry;
  }
  return view;
}

bool RealRun::condition_holds(const Step& step, std::string& detail) const {
  if (step.condition == WaitCondition::primary || step.condition == WaitCondition::quorum_lost) {
    const NodeView node = view(step.wait_node);
    detail = cluster_->name(step.wait_node) + " role " + node.role + ", quorum " +
             (node.quorum ? "yes" : "no");
    return step.condition == WaitCondition::primary ? node.role == "Primary" : !node.quorum;
  }
  for (int node = 0; node < nodes(); ++node) {
    if (!alive_[static_cast<std::size_t>(node)]) continue;
    const NodeView mine = view(node);
    const bool diskful = scenario_.cluster.diskful(static_cast<std::uint8_t>(node));
    if (step.condition == WaitCondition::up_to_date && diskful && mine.disk != "UpToDate") {
      detail = cluster_->name(node) + " is " + mine.disk;
      return false;
    }
    for (int peer = 0; peer < nodes(); ++peer) {
      if (peer == node || !alive_[static_cast<std::size_t>(peer)]) continue;
      const auto found = mine.peers.find(peer);
      if (found == mine.peers.end() || found->second[0] != "Connected") {
        detail = cluster_->name(node) + " to " + cluster_->name(peer) + ": " +
                 (found == mine.peers.end() ? "unknown" : found->second[0]);
        return false;
      }
      if (step.condition == WaitCondition::up_to_date &&
          found->second[2] != "Established") {
        detail = cluster_->name(node) + " to " + cluster_->name(peer) + ": " + found->second[2];
        return false;
      }
    }
  }
  detail.clear();
  return true;
}

bool RealRun::wait(const Step& step, std::string& detail) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(step.timeout_ms);
  for (;;) {
    if (condition_holds(step, detail)) return true;
    if (Clock::now() > deadline) {
      detail = "not " + std::string(name(step.condition)) + " after " +
               std::to_string(step.timeout_ms) + " ms: " + detail;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool RealRun::connect_client(std::string& error) {
  if (!primary_) {
    client_.close();
    return true;
  }
  return client_.connect(cluster_->nbd_uri(*primary_), error);
}

void RealRun::impair(const DirectedLink& link, const DirectionImpairment& impairment) {
  current(link) = impairment;
  const int low = std::min(link.from, link.to);
  const int high = std::max(link.from, link.to);
  layer_->set(proxies_.at({low, high}), link.from < link.to ? 0 : 1, impairment);
}


bool RealRun::write_step(std::size_t index, const Step& step, StepReport& report) {
  const StepOperations range = plan_.steps[index];
  const std::vector<PlannedOperation> operations(
      plan_.operations.begin() + static_cast<std::ptrdiff_t>(range.first),
      plan_.operations.begin() + static_cast<std::ptrdiff_t>(range.first + range.count));
  if (!client_.connected()) {
    std::string error;
    if (!connect_client(error)) {
      report.outcome = error;
      return step.expect != Expect::ok;
    }
  }
  auto crash = [&](std::uint64_t issued) {
    if (!step.crash_node || issued != step.crash_after) return;
    cluster_->kill(*step.crash_node, SIGKILL);
    alive_[*step.crash_node] = false;
    if (primary_ == *step.crash_node) primary_.reset();
  };
  const NbdClient::WriteOutcome outcome =
      client_.write(operations, step.queue_depth, model_, crash, 60'000);
  if (step.crash_node && !primary_) client_.close();
  report.outcome = std::to_string(outcome.acknowledged) + " acknowledged, " +
                   std::to_string(outcome.failed) + " failed" +
                   (outcome.timed_out ? " (timed out after 60 s)" : "");
  if (outcome.timed_out) return false;
  if (step.expect == Expect::ok && outcome.failed > 0 && !step.crash_node) return false;
  if (step.expect == Expect::fail && outcome.acknowledged > 0) return false;
  return true;
}

bool RealRun::read_verify(std::size_t index, StepReport& report) {
  const StepOperations range = plan_.steps[index];
  std::vector<char> bytes;
  std::string error;
  for (std::uint64_t position = range.first; position < range.first + range.count; ++position) {
    const std::uint64_t block = plan_.operations[position].block;
    if (!client_.read(block, 1, bytes, error)) {
      report.outcome = error;
      return false;
    }
    const std::string wrong = model_.judge(block, tag_of(bytes.data(), block));
    if (!wrong.empty()) {
      report.outcome = wrong;
      report_.verdicts.push_back({"acknowledged-writes", false, "read-verify: " + wrong});
      return false;
    }
  }
  report.outcome = std::to_string(range.count) + " blocks read back";
  return true;
}

bool RealRun::check_acknowledged(std::string& detail) {
  constexpr std::uint64_t blocks_per_read = 256;
  const std::uint64_t blocks = scenario_.cluster.blocks();
  std::vector<char> bytes;
  std::uint64_t wrong = 0;
  for (std::uint64_t first = 0; first < blocks; first += blocks_per_read) {
    const std::uint64_t count = std::min(blocks_per_read, blocks - first);
    if (!client_.read(first, count, bytes, detail)) return false;
    for (std::uint64_t offset = 0; offset < count; ++offset) {
      const std::string problem =
          model_.judge(first + offset, tag_of(bytes.data() + offset * block_size_bytes,
                                              first + offset));
      if (problem.empty()) continue;
      if (wrong++ == 0) detail = problem;
    }
  }
  if (wrong > 0) {
    detail = std::to_string(wrong) + " blocks wrong on the Primary, first: " + detail;
    return false;
  }
  detail = "all " + std::to_string(blocks) + " blocks as acknowledged, from " +
           cluster_->name(*primary_);
  return true;
}

bool RealRun::check_identical(std::string& detail) {
  Step up_to_date;
  up_to_date.kind = StepKind::wait;
  up_to_date.condition = WaitCondition::up_to_date;
  up_to_date.timeout_ms = 30'000;
  if (!wait(up_to_date, detail)) return false;
  std::vector<int> replicas;
  for (int node = 0; node < nodes(); ++node) {
    if (alive_[static_cast<std::size_t>(node)] &&
        scenario_.cluster.diskful(static_cast<std::uint8_t>(node))) {
      replicas.push_back(node);
    }
  }
  const std::uint64_t size = scenario_.cluster.volume_size_bytes;
  std::vector<std::ifstream> files;
  for (const int node : replicas) files.emplace_back(cluster_->disk_path(node), std::ios::binary);
  constexpr std::size_t chunk = 1 << 20;
  std::vector<std::vector<char>> buffers(replicas.size(), std::vector<char>(chunk));
  std::uint64_t differing = 0;
  for (std::uint64_t offset = 0; offset < size; offset += chunk) {
    for (std::size_t replica = 0; replica < replicas.size(); ++replica) {
      files[replica].read(buffers[replica].data(), chunk);
    }
    for (std::size_t replica = 1; replica < replicas.size(); ++replica) {
      for (std::size_t block = 0; block < chunk / block_size_bytes; ++block) {
        if (std::memcmp(buffers[0].data() + block * block_size_bytes,
                        buffers[replica].data() + block * block_size_bytes,
                        block_size_bytes) == 0) {
          continue;
        }
        if (differing++ == 0) {
          detail = "block " + std::to_string(offset / block_size_bytes + block) + " differs between " +
                   cluster_->name(replicas[0]) + " and " + cluster_->name(replicas[replica]);
        }
      }
    }
  }
  if (differing > 0) {
    detail = std::to_string(differing) + " blocks differ; first: " + detail;
    return false;
  }
  detail = std::to_string(replicas.size()) + " replicas identical over " +
           std::to_string(size >> 20) + " MiB";
  return true;
}

bool RealRun::admin(const Step& step, StepReport& report) {
  const int node = step.node;
  std::string error;
  switch (step.kind) {
    case StepKind::crash:
      cluster_->kill(node, SIGKILL);
      alive_[static_cast<std::size_t>(node)] = false;
      if (primary_ == node) {
        primary_.reset();
        client_.close();
      }
      report.outcome = "SIGKILL";
      return true;
    case StepKind::restart:
      if (!cluster_->start(node, error)) {
        report.outcome = error;
        return false;
      }
      alive_[static_cast<std::size_t>(node)] = true;
      return true;
    case StepKind::primary: {
      // A survivor may refuse until it noticed the crash: retry for a while, as an operator would.
      const auto deadline = Clock::now() + std::chrono::seconds(15);
      ControlResult result;
      while ((result = cluster_->control(node, "primary r0")).exit_status != 0 &&
             Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (result.exit_status != 0) {
        report.outcome = "primary r0 refused: " + result.text;
        return false;
      }
      Step primary;
      primary.condition = WaitCondition::primary;
      primary.wait_node = step.node;
      if (!wait(primary, report.outcome)) return false;
      primary_ = node;
      if (!connect_client(report.outcome)) return false;
      return true;
    }
    case StepKind::secondary: {
      client_.close();
      primary_.reset();
      const ControlResult result = cluster_->control(node, "secondary r0");
      report.outcome = result.exit_status == 0 ? "" : "secondary r0 refused: " + result.text;
      return result.exit_status == 0;
    }
    default: {  // disconnect, connect
      const std::string line = std::string(name(step.kind)) + " r0 " + cluster_->name(step.peer);
      const ControlResult result = cluster_->control(node, line);
      report.outcome = result.exit_status == 0 ? "" : line + " refused: " + result.text;
      return result.exit_status == 0;
    }
  }
}

bool RealRun::run_step(std::size_t index, StepReport& report) {
  const Step& step = scenario_.steps[index];
  switch (step.kind) {
    case StepKind::write:
      return write_step(index, step, report);
    case StepKind::read_verify:
      return read_verify(index, report);
    case StepKind::partition:
      for (const DirectedLink& link : step.blocked) {
        DirectionImpairment impairment = current(link);
        impairment.blocked = true;
        impair(link, impairment);
      }
      return true;
    case StepKind::heal:
      for (std::uint8_t from = 0; from < nodes(); ++from) {
        for (std::uint8_t to = 0; to < nodes(); ++to) {
          if (from != to) impair({from, to}, DirectionImpairment{});
        }
      }
      return true;
    case StepKind::link:
      for (const DirectedLink& link : step.links) {
        DirectionImpairment impairment = current(link);
        impairment.delay = step.impairment.delay;
        impairment.loss_percent = step.impairment.loss_percent;
        impairment.rate_bytes_per_second = step.impairment.rate_bytes_per_second;
        impair(link, impairment);
      }
      return true;
    case StepKind::wait:
      return wait(step, report.outcome);
    case StepKind::check: {
      bool held = true;
      if (step.check_acknowledged) {
        Verdict verdict{"acknowledged-writes", true, ""};
        verdict.held = check_acknowledged(verdict.detail);
        held = held && verdict.held;
        report_.verdicts.push_back(verdict);
      }
      if (step.check_identical) {
        Verdict verdict{"replicas-identical", true, ""};
        verdict.held = check_identical(verdict.detail);
        held = held && verdict.held;
        report_.verdicts.push_back(verdict);
      }
      return held;
    }
    default:
      return admin(step, report);
  }
}

RunReport RealRun::run() {
  report_.scenario = scenario_.name;
  report_.target = "real";
  report_.seed = seed_;
  std::string error;
  const auto setup_start = Clock::now();
  if (!set_up(error)) {
    report_.error = "setting up the cluster: " + error;
    report_.notes.push_back("daemon logs and disks in " +
                            (cluster_ ? cluster_->directory() : std::string("(none)")));
    if (cluster_) cluster_->keep_directory();
    return report_;
  }
  progress("cluster of " + std::to_string(nodes()) + " up in " +
           std::to_string(seconds_since(setup_start)) + " s, in " + cluster_->directory());
  bool failed = false;
  for (std::size_t index = 0; index < scenario_.steps.size(); ++index) {
    StepReport step;
    step.description = describe(scenario_.steps[index]);
    if (failed) {
      report_.steps.push_back(step);
      continue;
    }
    const auto start = Clock::now();
    step.executed = true;
    step.failed = !run_step(index, step);
    step.seconds = seconds_since(start);
    failed = step.failed;
    progress("[" + std::to_string(index) + "] " + (step.failed ? "FAIL " : "ok   ") +
             step.description + (step.outcome.empty() ? "" : " -- " + step.outcome));
    report_.steps.push_back(step);
  }
  for (const auto& [pair, proxy] : proxies_) {
    const ProxyStatistics statistics = layer_->statistics(proxy);
    report_.notes.push_back("proxy " + cluster_->name(pair.first) + "->" +
                            cluster_->name(pair.second) + ": " +
                            std::to_string(statistics.connections) + " connections, " +
                            std::to_string(statistics.resets) + " reset by the proxy, " +
                            std::to_string(statistics.bytes[0]) + " bytes forward, " +
                            std::to_string(statistics.bytes[1]) + " back");
  }
  report_.writes_acknowledged = model_.acknowledged_count();
  report_.writes_failed = model_.failed_count();
  if (options_.keep_directory || !report_.passed()) {
    cluster_->keep_directory();
    report_.notes.push_back("daemon logs, configurations and disks kept in " +
                            cluster_->directory());
  }
  client_.close();
  return report_;
}

}  // namespace

RunReport run_on_real(const Scenario& scenario, std::uint64_t seed, const RealOptions& options) {
  RealRun run(scenario, seed, options);
  return run.run();
}

}  // namespace ditto::faults
