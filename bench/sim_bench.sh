#!/usr/bin/env bash
# The simulator benchmark: simulated node-seconds per CPU-second on the reference workload
# (3 nodes, protocol C, 4 KiB random writes at queue depth 8, every fault class enabled), in a
# release build (optimised, assertions on, no sanitizers). One worker process, so the figure is
# per core. Runs with violations or aborts (known core bugs, tests/sim/regression_test.cpp) still
# count: the speed of the simulator is what is measured, not the correctness of the core.
# It also prints seeds per minute on 2 cores (--jobs 2: the reference campaign and the CI swarm
# campaign) and, per fault class, the share of seeds in which it fired.
# Usage: bench/sim_bench.sh [--build-dir DIR] [--seeds N] [--ops M] [--swarm-seeds K]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build/release
seeds=50
ops=5000
swarm_seeds=1000
while (($#)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --ops) ops="$2"; shift ;;
    --swarm-seeds) swarm_seeds="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "sim_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  # The release preset's settings (CMakePresets.json): -O2 -g, assertions on, no sanitizers.
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g" -DDITTO_SANITIZE=OFF -DDITTO_BUILD_BENCH=OFF \
    >/dev/null
fi
cmake --build "$build_dir" --target ditto-sim >/dev/null ||
  { echo "sim_bench: building ditto-sim in $build_dir failed" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sim="$build_dir/sim/ditto-sim"
# 1. Speed: the reference workload in one worker process (per core).
reference=$("$sim" campaign --seeds "$seeds" --nodes 3 --ops "$ops" \
  --reference-workload --faults all --jobs 1 --shrink-seconds 0 --schedule-dir "$scratch" \
  --json 2>/dev/null || true)
# 2. Throughput on 2 cores: the same campaign and the CI swarm campaign with --jobs 2.
reference_2=$("$sim" campaign --seeds "$seeds" --nodes 3 --ops "$ops" \
  --reference-workload --faults all --jobs 2 --shrink-seconds 0 --schedule-dir "$scratch" \
  --json 2>/dev/null || true)
swarm_2=$("$sim" campaign --seeds "$swarm_seeds" --swarm --ops 400 --jobs 2 --shrink-seconds 0 \
  --schedule-dir "$scratch" --json 2>/dev/null || true)
python3 - "$reference" "$reference_2" "$swarm_2" <<'PY'
import json, sys
s, s2, w2 = (json.loads(text) for text in sys.argv[1:4])
print(f"reference workload: seeds {s['seeds']} (each run twice), simulated node-seconds "
      f"{s['sim_node_seconds']:.1f}, CPU seconds {s['cpu_seconds']:.2f}, "
      f"violations {s['violations']}")
print(f"sim_node_seconds_per_cpu_second {s['sim_node_seconds_per_cpu_second']:.0f}")
for label, c in (("reference workload", s2), ("swarm --ops 400", w2)):
    print(f"seeds_per_minute_2_cores ({label}) {60 * c['seeds'] / c['wall_seconds']:.0f}"
          f"  (seeds {c['seeds']}, wall {c['wall_seconds']:.1f} s, violations {c['violations']})")
print("share of seeds in which each fault class fired (reference workload, every class on; "
      "swarm):")
for name in sorted(s["faults_fired"]):
    print(f"  {name:24s} {100 * s['faults_fired'][name] / s['seeds']:5.1f} %"
          f"  {100 * w2['faults_fired'].get(name, 0) / w2['seeds']:5.1f} %")
PY
