#!/usr/bin/env bash
# The scale benchmark: N resources (default 1000, small file-backed volumes with DRBD v09
# internal metadata) on each of two dittod daemons on loopback, every resource replicated
# between the two (protocol C) and exported over NBD (--nbd-base). Reports
#   - the time from starting both daemons until every resource is Connected on both and every
#     disk and peer disk is UpToDate,
#   - the resident memory (VmRSS) of each daemon, its open descriptors and threads,
#   - the idle CPU of each daemon over --idle-seconds (keepalive pings of N connections only).
# Usage: bench/scale_bench.sh [--resources N] [--shards S] [--size-mib M] [--idle-seconds T]
#                             [--build DIR] [--port-base P] [--out FILE]
#   --build DIR: a configured build directory to build dittod/dittoadm in (default: the
#   release preset, build/release).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

resources=1000
shards=""
size_mib=4
idle_seconds=10
build=""
port_base=20000
out=""
while (($#)); do
  case "$1" in
    --resources) resources="$2"; shift ;;
    --shards) shards="$2"; shift ;;
    --size-mib) size_mib="$2"; shift ;;
    --idle-seconds) idle_seconds="$2"; shift ;;
    --build) build="$2"; shift ;;
    --port-base) port_base="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "scale_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if ((port_base + 4 * resources > 32768)); then
  echo "scale_bench: ports $port_base..$((port_base + 4 * resources)) reach the ephemeral range" >&2
  exit 2
fi

if [[ -z "$build" ]]; then
  cmake --preset release >/dev/null
  build="$root/build/release"
fi
if ! cmake --build "$build" --target dittod dittoadm >/tmp/ditto-scale-build.log 2>&1; then
  tail -30 /tmp/ditto-scale-build.log >&2; echo "scale_bench: build failed" >&2; exit 1
fi
dittod="$build/datapath/dittod"
dittoadm="$build/datapath/dittoadm"
work=/var/tmp/ditto-scale
rm -rf "$work"; mkdir -p "$work"
ticks=$(getconf CLK_TCK)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap cleanup EXIT

names=(alpha beta)
# Ports: peers of alpha at port_base+i, of beta at port_base+N+i; NBD exports of alpha at
# port_base+2N+i, of beta at port_base+3N+i (resource i is device minor i).
echo "scale_bench: creating $((2 * resources)) disks of $size_mib MiB with metadata" >&2
config="$work/scale.res"
: >"$config"
for ((i = 0; i < resources; i++)); do
  printf 'resource s%04d {\n  net { protocol C; }\n' "$i" >>"$config"
  for node in 0 1; do
    printf '  on %s { node-id %d; address 127.0.0.1:%d; device /dev/drbd%d; disk %s/%s-%04d.img; meta-disk internal; }\n' \
      "${names[$node]}" "$node" $((port_base + node * resources + i)) "$i" "$work" \
      "${names[$node]}" "$i" >>"$config"
    truncate -s "${size_mib}M" "$(printf '%s/%s-%04d.img' "$work" "${names[$node]}" "$i")"
  done
  printf '}\n' >>"$config"
done
ls "$work"/*.img | xargs -P "$(nproc)" -I{} "$dittoadm" create-md {} --max-peers 1 --force \
  >/dev/null

count() {  # occurrences of a JSON field value in `status all --json` of daemon $1
  "$dittoadm" --control "$work/${names[$1]}.sock" status all --json 2>/dev/null |
    grep -c "\"$2\": \"$3\"" || true
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

shard_arguments=()
[[ -n "$shards" ]] && shard_arguments=(--shards "$shards")
start_ns=$(date +%s%N)
for node in 0 1; do
  "$dittod" --config "$config" --node "${names[$node]}" "${shard_arguments[@]}" \
    --nbd-base "127.0.0.1:$((port_base + (2 + node) * resources))" \
    --control "$work/${names[$node]}.sock" 2>"$work/${names[$node]}.log" &
  pids+=($!)
done
deadline=$((SECONDS + 300))
connected_ns=""
while ((SECONDS < deadline)); do
  for node in 0 1; do
    if ! kill -0 "${pids[$node]}" 2>/dev/null; then
      echo "scale_bench: dittod ${names[$node]} exited:" >&2; tail -20 "$work/${names[$node]}.log" >&2
      exit 1
    fi
  done
  c0=$(count 0 connection-state Connected); c1=$(count 1 connection-state Connected)
  if [[ -z "$connected_ns" && "$c0" == "$resources" && "$c1" == "$resources" ]]; then
    connected_ns=$(date +%s%N)
  fi
  if [[ -n "$connected_ns" ]]; then
    u0=$(count 0 disk-state UpToDate); u1=$(count 1 disk-state UpToDate)
    p0=$(count 0 peer-disk-state UpToDate); p1=$(count 1 peer-disk-state UpToDate)
    if ((u0 + u1 + p0 + p1 == 4 * resources)); then break; fi
  fi
  sleep 0.2
done
ready_ns=$(date +%s%N)
if [[ -z "$connected_ns" ]] || ((u0 + u1 + p0 + p1 != 4 * resources)); then
  echo "scale_bench: not all Connected/UpToDate after 300 s (connected $c0/$c1 of $resources)" >&2
  exit 1
fi
connected_s=$(awk -v a="$start_ns" -v b="$connected_ns" 'BEGIN {printf "%.2f", (b - a) / 1e9}')
ready_s=$(awk -v a="$start_ns" -v b="$ready_ns" 'BEGIN {printf "%.2f", (b - a) / 1e9}')

sleep 2  # let the start-up settle before measuring idle
declare -a before after
for node in 0 1; do before[$node]=$(cpu_ticks "${pids[$node]}"); done
sleep "$idle_seconds"
for node in 0 1; do after[$node]=$(cpu_ticks "${pids[$node]}"); done

shard_count=$(grep -o 'on [0-9]* shards\? ready' "$work/alpha.log" | awk '{print $2}')
report=$(
  echo "| | alpha | beta |"
  echo "|---|---|---|"
  echo "| resources (shards) | $resources ($shard_count) | $resources ($shard_count) |"
  echo "| start → all Connected | $connected_s s | (both) |"
  echo "| start → all Connected and UpToDate (disk and peer disk) | $ready_s s | (both) |"
  echo "| VmRSS | $(( $(rss_kib "${pids[0]}") / 1024 )) MiB | $(( $(rss_kib "${pids[1]}") / 1024 )) MiB |"
  echo "| VmRSS per resource | $(( $(rss_kib "${pids[0]}") / resources )) KiB | $(( $(rss_kib "${pids[1]}") / resources )) KiB |"
  echo "| open descriptors | $(ls "/proc/${pids[0]}/fd" | wc -l) | $(ls "/proc/${pids[1]}/fd" | wc -l) |"
  echo "| threads | $(ls "/proc/${pids[0]}/task" | wc -l) | $(ls "/proc/${pids[1]}/task" | wc -l) |"
  for node in 0 1; do
    idle[$node]=$(awk -v t="$((after[node] - before[node]))" -v hz="$ticks" -v s="$idle_seconds" \
      'BEGIN {printf "%.2f", 100 * t / hz / s}')
  done
  echo "| idle CPU over ${idle_seconds} s (% of one core) | ${idle[0]} % | ${idle[1]} % |"
)
echo "$report"
if [[ -n "$out" ]]; then echo "$report" >"$out"; fi
