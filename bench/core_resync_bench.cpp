// Resync throughput of the replication core alone: 4 KiB blocks per second of a full resync
// (invalidate on node 1, node 0 its SyncSource) between two core::Nodes with no I/O at all
// (bench/bench_cluster.h: real wire codec, disk operations complete at once, no rate limit,
// 256 blocks in flight). One iteration resyncs the whole 64 MiB volume (16384 blocks):
//   bitmap    - bitmap-based resync: ResyncRequest, Data, write, ResyncAck per block;
//   csums-equal  - csums-alg, every digest equal: a digest read on each side, ResyncInSync;
//   csums-differ - csums-alg, every digest differs: both digest reads, then the bitmap path.
// Run: build-rel/bench/ditto-bench-core --benchmark_filter=resync
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "bench/bench_cluster.h"

namespace {

using namespace ditto;

constexpr std::uint64_t volume_blocks = 16384;

enum Mode : std::int64_t { bitmap = 0, csums_equal = 1, csums_differ = 2 };

void full_resync(benchmark::State& state) {
  const auto mode = static_cast<Mode>(state.range(0));
  bench::BenchCluster cluster(2, [&](core::NodeConfig& config) {
    config.volume_size_bytes = volume_blocks * 4096;
    config.c_max_rate_kib = 0;               // no cap per 100 ms step
    config.c_fill_target_sectors = 256 * 8;  // 256 blocks in flight
    if (mode != bitmap) config.csums_algorithm = "crc32c";
  });
  cluster.set_digest_of([mode](std::uint8_t node, const core::DiskRead& read) {
    return mode == csums_differ ? read.sector.value * 2 + node : read.sector.value;
  });
  for (auto _ : state) {
    if (!cluster.node(1).on_admin(Instant{}, core::Invalidate{NodeId{0}}).ok) std::abort();
    cluster.run();
    const auto peer = cluster.node(1).peer(NodeId{0});
    if (cluster.node(1).disk_state() != DiskState::up_to_date ||
        peer->resync_done_blocks != volume_blocks) {
      std::abort();  // the resync did not finish inside run(): the figure would be wrong
    }
    const std::uint64_t same = mode == csums_equal ? volume_blocks : 0;
    if (peer->resync_same_checksum_blocks != same) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(volume_blocks));
  state.SetLabel(mode == bitmap        ? "bitmap-based, 4 KiB blocks"
                 : mode == csums_equal ? "csums-alg, every block equal"
                                       : "csums-alg, every block differs");
}

BENCHMARK(full_resync)->Arg(bitmap)->Arg(csums_equal)->Arg(csums_differ)
    ->Unit(benchmark::kMillisecond);

}  // namespace
