#!/usr/bin/env bash
# The resync benchmark, in one run on one machine:
#   - raw sequential read and write of the backing file (fio, io_uring, O_DIRECT, 1 MiB, QD 8),
#   - a loopback TCP stream (ditto-bench-tcp-rtt stream, 1 MiB writes, default socket buffers),
#   - two dittod daemons on loopback (protocol C, --size-mib file-backed volumes with DRBD v09
#     internal metadata, the resync controller at its defaults unless --disk-options says
#     otherwise), alpha Primary with an NBD export:
#       full resync: `dittoadm invalidate r0` on beta, timed until both report UpToDate,
#       fio 4 KiB random write QD 32 through NBD on alpha without a resync, then again while a
#       full resync runs (the resync must outlast fio: the report says if it did not).
# Goals (issue 7): resync >= 0.8 x min(raw read, raw write, TCP stream); QD 32 IOPS during the
# resync >= 0.7 x without. The load average is reported next to every figure, and for the
# resync the daemons' CPU time, the time their threads waited for a CPU (the machine's other
# load) and the backing device's I/O rate and size. The work directory is under /var/tmp.
# Usage: bench/resync_bench.sh [--size-mib N] [--fio-seconds S] [--build DIR]
#                              [--disk-options 'c-max-rate 4G; c-fill-target 1M;'] [--out FILE]
#   --size-mib N: volume (backing file) size, default 4096
#   --fio-seconds S: length of each fio run, default 20
#   --build DIR: a configured build directory (release, benchmarks on) to build dittod, dittoadm
#     and ditto-bench-tcp-rtt in (default: the release preset, build/release)
#   --disk-options TEXT: put into the resource's `disk { }` section (default: empty)
#   --out FILE: also write the report there
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

size_mib=4096
fio_seconds=20
build=""
disk_options=""
out=""
usage() { sed -n '2,22p' "$0"; }
while (($#)); do
  case "$1" in
    --size-mib) size_mib="$2"; shift ;;
    --fio-seconds) fio_seconds="$2"; shift ;;
    --build) build="$2"; shift ;;
    --disk-options) disk_options="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "resync_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for number in "$size_mib" "$fio_seconds"; do
  if ! [[ "$number" =~ ^[1-9][0-9]*$ ]]; then
    echo "resync_bench: '$number' is not a positive whole number" >&2; exit 2
  fi
done

if [[ -z "$build" ]]; then
  cmake --preset release >/dev/null
  build="$root/build/release"
fi
if ! cmake --build "$build" --target dittod dittoadm ditto-bench-tcp-rtt \
    >/tmp/ditto-resync-build.log 2>&1; then
  tail -30 /tmp/ditto-resync-build.log >&2; echo "resync_bench: build failed" >&2; exit 1
fi
dittod="$build/datapath/dittod"
dittoadm="$build/datapath/dittoadm"
work=/var/tmp/ditto-resync-bench  # fixed: disk_counters reads the device of /var/tmp
nbd_port=20909
rm -rf "$work"; mkdir -p "$work"
ticks=$(getconf CLK_TCK)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'cleanup; rm -f "$work"/*.img' EXIT

load() { cut -d' ' -f1 /proc/loadavg; }
# The backing device's /sys/class/block/*/stat (reads, sectors read, writes, sectors written), to
# show what the resync asks of the disk; "0 0 0 0" when the work directory is on no such device.
block_stat="/sys/class/block/$(basename "$(df --output=source /var/tmp | tail -1)")/stat"
disk_counters() {
  if [[ -r "$block_stat" ]]; then awk '{print $1, $3, $5, $7}' "$block_stat"; else echo 0 0 0 0; fi
}
now_ns() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }
run_delay_ns() {  # time the daemons' threads waited for a CPU (schedstat), machine load shows here
  local total=0 file
  for pid in "${pids[@]}"; do
    for file in /proc/"$pid"/task/*/schedstat; do
      total=$((total + $(cut -d' ' -f2 "$file" 2>/dev/null || echo 0)))
    done
  done
  echo "$total"
}
cpu_ticks() {  # utime + stime of both daemons
  local total=0 pid
  for pid in "${pids[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}
adm() { "$dittoadm" --control "$work/$1.sock" "${@:2}"; }
field_count() {  # occurrences of "$2": "$3" in `status r0 --json` of node $1
  adm "$1" status r0 --json 2>/dev/null | grep -c "\"$2\": \"$3\"" || true
}
replicas_up_to_date() {  # both disks and both peer disks UpToDate, the connection Established
  local total=0 node
  for node in alpha beta; do
    total=$((total + $(field_count "$node" disk-state UpToDate) +
      $(field_count "$node" peer-disk-state UpToDate) +
      $(field_count "$node" replication-state Established)))
  done
  ((total == 6))
}
wait_up_to_date() {  # $1: seconds at most
  local deadline=$((SECONDS + $1))
  until replicas_up_to_date; do
    if ((SECONDS >= deadline)); then
      echo "resync_bench: not UpToDate after $1 s:" >&2; adm beta status r0 --verbose >&2
      exit 1
    fi
    for pid in "${pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "resync_bench: a dittod exited; logs in $work" >&2; exit 1
      fi
    done
    sleep 0.1
  done
}

# fio $1 (name) with the rest as job arguments; prints "iops MiB/s" of the job's reads or writes.
run_fio() {
  local name=$1; shift
  fio --name="$name" --group_reporting --output-format=json "$@" \
    2>"$work/$name.err" | sed -n '/^{/,$p' >"$work/$name.json" || true
  if ! jq -e '.jobs[0].error == 0' "$work/$name.json" >/dev/null 2>&1; then
    echo "resync_bench: fio $name failed:" >&2; cat "$work/$name.err" >&2; exit 1
  fi
  jq -r '.jobs[0] as $j | (if $j.write.total_ios > 0 then $j.write else $j.read end) |
    "\(.iops | floor) \(.bw_bytes / 1048576 | floor)"' "$work/$name.json"
}

echo "resync_bench: writing two ${size_mib} MiB disks" >&2
for node in alpha beta; do  # fully written, so no allocating writes distort the numbers
  dd if=/dev/zero of="$work/$node.img" bs=1M count="$size_mib" oflag=direct status=none
done

# (a) raw sequential read and write of the backing file, (b) the loopback TCP stream.
raw_engine=(--ioengine=io_uring --direct=1 --filename="$work/alpha.img" --bs=1M --iodepth=8
  --size="${size_mib}M" --runtime=10 --time_based --ramp_time=1)
load_raw=$(load)
raw_read=$(run_fio raw-read --rw=read "${raw_engine[@]}")
raw_write=$(run_fio raw-write --rw=write "${raw_engine[@]}")
raw_read_mibs=${raw_read#* }
raw_write_mibs=${raw_write#* }
tcp_line=$("$build/bench/ditto-bench-tcp-rtt" stream 5)
tcp_mibs=$(sed -n 's/.*tcp_stream_mib_per_s=\([0-9]*\).*/\1/p' <<<"$tcp_line")

# (c) two daemons; both disks are zeroed, so fresh metadata (UpToDate, day 0) is truthful.
{
  echo "resource r0 {"
  echo "  net { protocol C; }"
  echo "  disk { $disk_options }"
  for node in 0 1; do
    name=$([[ $node == 0 ]] && echo alpha || echo beta)
    echo "  on $name { node-id $node; address 127.0.0.1:$((17889 + node));" \
      "device /dev/drbd$((210 + node)); disk $work/$name.img; meta-disk internal; }"
  done
  echo "}"
} >"$work/r0.res"
for node in alpha beta; do
  "$dittoadm" create-md "$work/$node.img" --max-peers 1 --force >/dev/null
done
"$dittod" --config "$work/r0.res" --node alpha --control "$work/alpha.sock" \
  --nbd "127.0.0.1:$nbd_port" >"$work/alpha.log" 2>&1 &
pids+=($!)
"$dittod" --config "$work/r0.res" --node beta --control "$work/beta.sock" \
  >"$work/beta.log" 2>&1 &
pids+=($!)
sleep 0.5
wait_up_to_date 60
adm alpha primary r0
nbd_uri="nbd://127.0.0.1:$nbd_port/r0"
volume_bytes=$(nbdinfo --size "$nbd_uri")
volume_mib=$((volume_bytes / 1048576))
nbd_qd32=(--ioengine=nbd --uri="$nbd_uri" --rw=randwrite --bs=4k --iodepth=32
  --size="$((volume_bytes / 4096 * 4096))" --runtime="$fio_seconds" --time_based)

# (d) QD 32 without a resync.
load_idle=$(load)
iops_idle=$(run_fio nbd-qd32-idle "${nbd_qd32[@]}")
iops_idle=${iops_idle% *}

# (c) the full resync alone, timed from invalidate until both nodes report UpToDate.
load_resync=$(load)
cpu_before=$(cpu_ticks)
run_delay_before=$(run_delay_ns)
disk_before=$(disk_counters)
start_ns=$(now_ns)
adm beta invalidate r0
wait_up_to_date 3600
resync_s=$(seconds_since "$start_ns")
disk_line=$(awk -v s="$resync_s" 'BEGIN {split(ARGV[1], a, " "); split(ARGV[2], b, " ");
  ios = b[1] - a[1] + b[3] - a[3]; sectors = b[2] - a[2] + b[4] - a[4]; ARGC = 1
  printf "%.0f I/Os per s (%.0f reads, %.0f writes), %.0f KiB per I/O", ios / s,
    (b[1] - a[1]) / s, (b[3] - a[3]) / s, (ios > 0 ? sectors / 2 / ios : 0)}' \
  "$disk_before" "$(disk_counters)")
resync_cpu_s=$(awk -v t="$(($(cpu_ticks) - cpu_before))" -v hz="$ticks" \
  'BEGIN {printf "%.1f", t / hz}')
run_delay_s=$(awk -v t="$(($(run_delay_ns) - run_delay_before))" 'BEGIN {printf "%.1f", t / 1e9}')
resync_mibs=$(awk -v m="$volume_mib" -v s="$resync_s" 'BEGIN {printf "%.0f", m / s}')

# (d) QD 32 during a full resync (started 1 s before fio, so the controller has ramped up).
load_both=$(load)
start_ns=$(now_ns)
adm beta invalidate r0
sleep 1
iops_resync=$(run_fio nbd-qd32-resync "${nbd_qd32[@]}")
iops_resync=${iops_resync% *}
outlasted=yes
replicas_up_to_date && outlasted="NO: the resync ended before fio, the figure is not valid"
wait_up_to_date 3600
resync_with_fio_s=$(seconds_since "$start_ns")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
ceiling_mibs=$(printf '%s\n' "$raw_read_mibs" "$raw_write_mibs" "$tcp_mibs" | sort -n | head -1)
report=$(
  echo "| measurement | figure | load average |"
  echo "|---|---:|---:|"
  echo "| raw sequential read, 1 MiB QD 8 (io_uring, O_DIRECT) | $raw_read_mibs MiB/s |" \
    "$load_raw |"
  echo "| raw sequential write, 1 MiB QD 8 | $raw_write_mibs MiB/s | (same) |"
  echo "| loopback TCP stream, 1 MiB writes | $tcp_mibs MiB/s | (same) |"
  echo "| full resync of $volume_mib MiB (invalidate → UpToDate) | $resync_mibs MiB/s" \
    "($resync_s s; daemons' CPU $resync_cpu_s s, waiting for a CPU $run_delay_s s) |" \
    "$load_resync |"
  echo "| backing disk during the resync ($(basename "$(dirname "$block_stat")")," \
    "both replicas) | $disk_line | |"
  echo "| resync / min(raw read, raw write, TCP) (goal ≥ 0.8) |" \
    "$(ratio "$resync_mibs" "$ceiling_mibs") | |"
  echo "| QD 32 4 KiB random write through NBD, no resync | $iops_idle IOPS | $load_idle |"
  echo "| QD 32 4 KiB random write during a full resync | $iops_resync IOPS | $load_both |"
  echo "| during / without (goal ≥ 0.7) | $(ratio "$iops_resync" "$iops_idle") | |"
  echo "| resync with fio running: invalidate → UpToDate | $resync_with_fio_s s | |"
  echo
  echo "resync outlasted the ${fio_seconds} s fio run: $outlasted"
  echo "disk options: '${disk_options}' (empty: ditto's defaults, c-fill-target 8M," \
    "c-max-rate 4G, c-plan-ahead 20, c-min-rate 250k)"
  # shellcheck disable=SC2016  # the single quotes are literal text around the expansion
  echo "command: bench/resync_bench.sh --size-mib $size_mib --fio-seconds $fio_seconds" \
    "${disk_options:+--disk-options '$disk_options'}"
)
echo "$report"
if [[ -n "$out" ]]; then echo "$report" >"$out"; fi
