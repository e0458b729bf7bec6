#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang (-fsanitize=fuzzer,address,undefined)
# as their own CMake project and runs each for a bounded time, starting from the committed seed
# corpus tests/fuzz/corpus/<target>/ (new inputs go to BUILD_DIR/corpus/<target>/, never into
# the repository). A crash stops the run: the input is saved under BUILD_DIR/artifacts/ and
# the script says how to turn it into a regression seed.
#
#   tools/fuzz.sh [--seconds N] [--build-dir DIR] [--jobs J] [TARGET...]
#
# Defaults: 60 seconds per target, build/fuzz, 2 build jobs, every target. CI runs
# `tools/fuzz.sh --seconds 20` through ctest (test fuzz_run, label fuzz).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds=60
build_dir="$root/build/fuzz"
jobs=2
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "fuzz.sh: --seconds needs a positive number, got '$seconds'" >&2
  exit 2
fi

clang_cxx="$(command -v clang++-14 || command -v clang++ || true)"
if [[ -z "$clang_cxx" ]]; then
  echo "fuzz.sh: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi

start=$(date +%s)
mkdir -p "$build_dir"
cmake -S "$root/tests/fuzz" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_COMPILER=$clang_cxx" > "$build_dir/configure.log" 2>&1 ||
  { cat "$build_dir/configure.log" >&2; exit 1; }
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(cd "$root/tests/fuzz" && ls ./*_fuzz.cpp | sed 's|^\./||; s|_fuzz\.cpp$||')
fi
cmake --build "$build_dir" -j "$jobs" --target "${targets[@]/%/_fuzz}"
built=$(date +%s)
echo "fuzz.sh: built ${#targets[@]} targets in $((built - start)) s"

for target in "${targets[@]}"; do
  seeds="$root/tests/fuzz/corpus/$target"
  work="$build_dir/corpus/$target"
  artifacts="$build_dir/artifacts"
  mkdir -p "$work" "$artifacts"
  [[ -d "$seeds" ]] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 1; }
  echo "fuzz.sh: $target for $seconds s"
  if ! "$build_dir/${target}_fuzz" -max_total_time="$seconds" -max_len=16384 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
      "$work" "$seeds" > "$build_dir/$target.log" 2>&1; then
    tail -n 60 "$build_dir/$target.log" >&2
    echo "fuzz.sh: $target FAILED. Reproduce with: $build_dir/${target}_fuzz ARTIFACT" >&2
    echo "fuzz.sh: add the input to tests/fuzz/corpus/$target/ as a regression seed, then fix" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_runs|^#[0-9]+.*DONE" "$build_dir/$target.log" | tail -n 2
done
echo "fuzz.sh: all targets clean; total $(( $(date +%s) - start )) s"
