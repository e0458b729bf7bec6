// Throughput of the replication core alone: replicated 4 KiB protocol C writes per second
// through one Primary and 1, 2 or 4 Secondaries, with no I/O at all. Messages are encoded and
// decoded with the real wire codec (the payload is an 8-byte tag, as in the simulator), disk
// operations complete immediately. Run: build/release/bench/ditto-bench-core
#include <benchmark/benchmark.h>

#include <deque>
#include <vector>

#include "core/node.h"

namespace {

using namespace ditto;

struct BenchCluster {
  std::vector<core::Node> nodes;
  struct Pending {
    std::uint8_t from;
    std::uint8_t to;
    std::vector<std::uint8_t> frame;
  };
  std::deque<Pending> network;
  std::deque<std::pair<std::uint8_t, IoId>> disk;
  std::uint64_t completed = 0;

  explicit BenchCluster(int peers) {
    for (int i = 0; i <= peers; ++i) {
      core::NodeConfig config;
      config.resource_name = "r0";
      config.node_id = NodeId{static_cast<std::uint8_t>(i)};
      config.volume_size_bytes = 1u << 30;
      for (int j = 0; j <= peers; ++j) {
        if (j != i) config.peers.push_back({NodeId{static_cast<std::uint8_t>(j)}, "n"});
      }
      nodes.emplace_back(config);
    }
    for (int i = 1; i <= peers; ++i) {
      nodes[0].on_connection_up(Instant{}, NodeId{static_cast<std::uint8_t>(i)});
      nodes[i].on_connection_up(Instant{}, NodeId{0});
    }
    run();
    if (!nodes[0].on_admin(Instant{}, core::Promote{}).ok) std::abort();
    run();
  }

  void collect(std::uint8_t index) {
    for (core::Action& action : nodes[index].take_actions()) {
      if (auto* send = std::get_if<core::Send>(&action)) {
        std::uint8_t tag[8] = {};
        std::span<const std::uint8_t> payload;
        if (send->payload) payload = std::span<const std::uint8_t>(tag, 8);
        network.push_back({index, send->peer.value, wire::encode(send->message, payload)});
      } else if (auto* write = std::get_if<core::DiskWrite>(&action)) {
        disk.emplace_back(index, write->io);
      } else if (auto* flush = std::get_if<core::DiskFlush>(&action)) {
        disk.emplace_back(index, flush->io);
      } else if (std::holds_alternative<core::CompleteClient>(action)) {
        ++completed;
      }
    }
  }

  void run() {
    for (std::uint8_t i = 0; i < nodes.size(); ++i) collect(i);
    while (!network.empty() || !disk.empty()) {
      while (!disk.empty()) {
        auto [index, io] = disk.front();
        disk.pop_front();
        nodes[index].on_disk_completed(Instant{}, io, core::IoStatus::ok);
        collect(index);
      }
      while (!network.empty()) {
        Pending message = std::move(network.front());
        network.pop_front();
        const auto decoded = wire::decode(message.frame);
        const auto& frame = std::get<wire::Frame>(decoded);
        nodes[message.to].on_message(Instant{}, NodeId{message.from}, frame.message,
                                     PayloadHandle{1});
        collect(message.to);
      }
    }
  }
};

void replicated_writes(benchmark::State& state) {
  BenchCluster cluster(static_cast<int>(state.range(0)));
  std::uint64_t request = 1;
  constexpr int batch = 8;  // writes in flight at once (QD 8)
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      cluster.nodes[0].on_client_write(Instant{}, RequestId{request}, Sector{(request % 4096) * 8},
                                       4096, PayloadHandle{request}, {});
      ++request;
    }
    cluster.run();
  }
  if (cluster.completed < static_cast<std::uint64_t>(state.iterations()) * batch) std::abort();
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(std::to_string(state.range(0)) + " peers, protocol C, 4 KiB");
}

BENCHMARK(replicated_writes)->Arg(1)->Arg(2)->Arg(4);

}  // namespace

BENCHMARK_MAIN();
