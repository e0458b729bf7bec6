// Throughput of the replication core alone: replicated 4 KiB protocol C writes per second
// through one Primary and 1, 2 or 4 Secondaries, with no I/O at all. Messages are encoded and
// decoded with the real wire codec (the payload is an 8-byte tag, as in the simulator), disk
// operations complete immediately (bench/bench_cluster.h).
// Run: build/release/bench/ditto-bench-core --benchmark_filter=replicated
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "bench/bench_cluster.h"

namespace {

using namespace ditto;

void replicated_writes(benchmark::State& state) {
  bench::BenchCluster cluster(static_cast<int>(state.range(0)) + 1);
  if (!cluster.node(0).on_admin(Instant{}, core::Promote{}).ok) std::abort();
  cluster.run();
  std::uint64_t request = 1;
  constexpr int batch = 8;  // writes in flight at once (QD 8)
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      cluster.node(0).on_client_write(Instant{}, RequestId{request}, Sector{(request % 4096) * 8},
                                      4096, PayloadHandle{request}, {});
      ++request;
    }
    cluster.run();
  }
  if (cluster.completed() < static_cast<std::uint64_t>(state.iterations()) * batch) std::abort();
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(std::to_string(state.range(0)) + " peers, protocol C, 4 KiB");
}

BENCHMARK(replicated_writes)->Arg(1)->Arg(2)->Arg(4);

}  // namespace
