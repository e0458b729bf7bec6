#!/usr/bin/env bash
# The simulator benchmark: simulated node-seconds per CPU-second on the reference workload
# (3 nodes, protocol C, 4 KiB random writes at queue depth 8, every fault class enabled), in a
# release build (optimised, assertions on, no sanitizers). One worker process, so the figure is
# per core. Runs with violations or aborts (known core bugs, tests/sim/regression_test.cpp) still
# count: the speed of the simulator is what is measured, not the correctness of the core.
# Usage: bench/sim_bench.sh [--build-dir DIR] [--seeds N] [--ops M]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=build/release
seeds=50
ops=5000
while (($#)); do
  case "$1" in
    --build-dir) build_dir="$2"; shift ;;
    --seeds) seeds="$2"; shift ;;
    --ops) ops="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
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
summary=$("$build_dir/sim/ditto-sim" campaign --seeds "$seeds" --nodes 3 --ops "$ops" \
  --reference-workload --faults all --jobs 1 --shrink-seconds 0 --schedule-dir "$scratch" \
  --json 2>/dev/null || true)
python3 - "$summary" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"seeds {s['seeds']} (each run twice), simulated node-seconds {s['sim_node_seconds']:.1f}, "
      f"CPU seconds {s['cpu_seconds']:.2f}")
print(f"sim_node_seconds_per_cpu_second {s['sim_node_seconds_per_cpu_second']:.0f}")
PY
