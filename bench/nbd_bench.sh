#!/usr/bin/env bash
# The data-path benchmark: the same fio jobs against every target, in one run, on one machine.
#   raw       fio's io_uring engine on the backing file (O_DIRECT): the ceiling
#   qemu-nbd  qemu-nbd --cache=none --aio=io_uring on the same kind of file
#   nbdkit    nbdkit's file plugin (cache=none)
#   ditto1/2/3  dittod with 1, 2 and 3 nodes, protocol C, NBD export on the Primary
# Jobs: 4 KiB random write QD1 (p50/p99 latency), QD32 (IOPS), 1 MiB sequential write (MiB/s),
# 4 KiB random read QD32 (IOPS), 4 KiB random write QD1 with fdatasync after each write (the
# durability cost; fio's nbd engine sends NBD_CMD_FLUSH for it). For each target it also reports the
# CPU time of the target's own processes per I/O (not fio's), from /proc/PID/stat.
# Usage: bench/nbd_bench.sh [--runtime S] [--size-mib N] [--targets a,b,...] [--jobs a,b,...]
#                           [--build DIR] [--out FILE]
#   --build DIR  use the dittod/dittoadm already built in DIR (an A/B run against another
#                worktree's build) instead of building the release preset
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

runtime=10
size_mib=1024
targets="raw,qemu-nbd,nbdkit,ditto1,ditto2,ditto3"
out=""
build=""
job_filter=""
while (($#)); do
  case "$1" in
    --runtime) runtime="$2"; shift ;;
    --size-mib) size_mib="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --out) out="$2"; shift ;;
    --build) build="$2"; shift ;;
    --jobs) job_filter="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "nbd_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [[ -n "$build" ]]; then
  bin=$(cd "$build" && pwd)
else
  tools/bootstrap.sh
  cmake --preset release >/dev/null
  if ! cmake --build --preset release -j "$(nproc)" --target dittod dittoadm ditto-bench-tcp-rtt \
      >/tmp/ditto-bench-build.log 2>&1; then
    tail -30 /tmp/ditto-bench-build.log >&2; echo "nbd_bench: build failed" >&2; exit 1
  fi
  bin="$root/build/release"
fi
work=/var/tmp/ditto-bench
rm -rf "$work"; mkdir -p "$work"
ticks=$(getconf CLK_TCK)
pids=()

cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap cleanup EXIT

make_disk() {  # fully written, so no allocating writes distort the numbers
  dd if=/dev/zero of="$1" bs=1M count="$size_mib" oflag=direct status=none
}

cpu_ticks() {  # utime+stime of the given pids (and their threads)
  local total=0 pid
  for pid in "$@"; do
    if [[ -r /proc/$pid/stat ]]; then
      total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    fi
  done
  echo "$total"
}

wait_port() {
  for _ in $(seq 1 200); do
    if (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nbd_bench: nothing listens on port $1" >&2; return 1
}

start_ditto() {  # $1 = node count
  local nodes=$1 i names=(alpha beta gamma)
  {
    echo "resource r0 {"; echo "  net { protocol C; }"
    for ((i = 0; i < nodes; i++)); do
      echo "  on ${names[i]} { node-id $i; address 127.0.0.1:$((17789 + i)); device /dev/drbd$((200 + i)); disk $work/disk$i.img; meta-disk internal; }"
    done
    if ((nodes > 2)); then echo "  connection-mesh { hosts ${names[*]:0:$nodes}; }"; fi
    echo "}"
  } >"$work/r0.res"
  for ((i = 0; i < nodes; i++)); do
    [[ -f "$work/disk$i.img" ]] || make_disk "$work/disk$i.img"
    # dittod attaches only a disk with DRBD v09 metadata at its end (one bitmap slot per peer);
    # fio's jobs (size-mib / 2) stay inside the data area below it.
    "$bin/datapath/dittoadm" create-md "$work/disk$i.img" --force \
      --max-peers $((nodes > 1 ? nodes - 1 : 1)) >/dev/null
    local nbd=()
    ((i == 0)) && nbd=(--nbd 127.0.0.1:20809)
    "$bin/datapath/dittod" --config "$work/r0.res" --node "${names[i]}" \
      --control "$work/${names[i]}.sock" "${nbd[@]}" >"$work/${names[i]}.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 200); do  # the control socket first: with 1 node nothing else is awaited
    [[ -S "$work/alpha.sock" ]] && break
    sleep 0.05
  done
  for _ in $(seq 1 200); do
    local connected
    connected=$("$bin/datapath/dittoadm" --control "$work/alpha.sock" status r0 --json 2>/dev/null |
      grep -c '"connection-state": "Connected"' || true)
    ((connected == nodes - 1)) && break
    sleep 0.05
  done
  "$bin/datapath/dittoadm" --control "$work/alpha.sock" primary r0
}

declare -A job_args=(
  [qd1]="--rw=randwrite --bs=4k --iodepth=1"
  [qd32]="--rw=randwrite --bs=4k --iodepth=32"
  [seq1m]="--rw=write --bs=1M --iodepth=8"
  [randread]="--rw=randread --bs=4k --iodepth=32"
  [fsync]="--rw=randwrite --bs=4k --iodepth=1 --fsync=1"
)
jobs=(qd1 qd32 seq1m randread fsync)
if [[ -n "$job_filter" ]]; then IFS=, read -r -a jobs <<<"$job_filter"; fi

run_jobs() {  # $1 target name, $2 fio engine args, rest: server pids
  local target=$1 engine=$2; shift 2
  local job json before after ios cpu_us
  for job in "${jobs[@]}"; do
    before=$(cpu_ticks "$@")
    # shellcheck disable=SC2086
    fio --name="$target-$job" $engine ${job_args[$job]} --size="$((size_mib / 2))M" \
      --runtime="$runtime" --time_based --ramp_time=1 --group_reporting --output-format=json \
      2>"$work/$target-$job.err" | sed -n '/^{/,$p' >"$work/$target-$job.json" || true
    after=$(cpu_ticks "$@")
    json="$work/$target-$job.json"
    if ! jq -e '.jobs[0].error == 0' "$json" >/dev/null 2>&1; then
      printf '%s\t%s\tfailed (see %s)\t-\t-\t-\t-\n' "$target" "$job" "$work/$target-$job.err" \
        >>"$work/results.tsv"
      continue
    fi
    ios=$(jq '[.jobs[0].read.total_ios, .jobs[0].write.total_ios] | add' "$json")
    if (($# > 0)) && ((ios > 0)); then
      cpu_us=$(awk -v t=$((after - before)) -v hz="$ticks" -v n="$ios" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
    else
      cpu_us="-"
    fi
    jq -r --arg target "$target" --arg job "$job" --arg cpu "$cpu_us" '
      .jobs[0] as $j | ($j.write.total_ios > 0) as $w | (if $w then $j.write else $j.read end) as $d |
      [$target, $job, ($d.iops | floor), (($d.bw_bytes / 1048576) * 10 | floor / 10),
       (($d.clat_ns.percentile["50.000000"] // 0) / 1000 | floor),
       (($d.clat_ns.percentile["99.000000"] // 0) / 1000 | floor), $cpu] | @tsv' "$json" \
      >>"$work/results.tsv"
  done
}

IFS=, read -r -a target_list <<<"$targets"
for target in "${target_list[@]}"; do
  echo "==> $target" >&2
  case "$target" in
    raw)
      [[ -f "$work/disk0.img" ]] || make_disk "$work/disk0.img"
      run_jobs raw "--ioengine=io_uring --direct=1 --filename=$work/disk0.img" ;;
    qemu-nbd)
      [[ -f "$work/disk0.img" ]] || make_disk "$work/disk0.img"
      qemu-nbd --cache=none --aio=io_uring --format=raw --persistent --shared=8 \
        --bind=127.0.0.1 --port=20810 "$work/disk0.img" >"$work/qemu-nbd.log" 2>&1 &
      pids+=($!); wait_port 20810
      run_jobs qemu-nbd "--ioengine=nbd --uri=nbd://127.0.0.1:20810" "${pids[-1]}"
      cleanup ;;
    nbdkit)
      [[ -f "$work/disk0.img" ]] || make_disk "$work/disk0.img"
      nbdkit --foreground --exit-with-parent --ipaddr 127.0.0.1 --port 20811 file \
        "$work/disk0.img" cache=none >"$work/nbdkit.log" 2>&1 &
      pids+=($!); wait_port 20811
      run_jobs nbdkit "--ioengine=nbd --uri=nbd://127.0.0.1:20811" "${pids[-1]}"
      cleanup ;;
    ditto1|ditto2|ditto3)
      start_ditto "${target#ditto}"
      run_jobs "$target" "--ioengine=nbd --uri=nbd://127.0.0.1:20809/r0" "${pids[@]}"
      cleanup ;;
    *) echo "nbd_bench: unknown target '$target'" >&2; exit 2 ;;
  esac
done

rtt="-"
if [[ -x "$bin/bench/ditto-bench-tcp-rtt" ]]; then rtt=$("$bin/bench/ditto-bench-tcp-rtt" 20000 4096); fi
{
  echo "| target | job | IOPS | MiB/s | p50 µs | p99 µs | server CPU µs/IO |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$work/results.tsv"
  echo
  echo "loopback TCP round trip (4 KiB): $rtt"
  echo "command: bench/nbd_bench.sh --runtime $runtime --size-mib $size_mib --targets $targets${job_filter:+ --jobs $job_filter}${build:+ --build $build}"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "${out:-/dev/null}"
