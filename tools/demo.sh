#!/usr/bin/env bash
# Starts a local ditto cluster on loopback and shows it doing its job:
#   3 dittod daemons with file-backed disks, one resource replicated with protocol C,
#   an NBD export on the Primary, real clients writing and reading through it (nbdcopy, fio),
#   the status of every node, and a byte-for-byte comparison of the replicas.
# Usage: tools/demo.sh [--keep] [--nodes 2|3]
#   --keep   leave the cluster running and print how to reach and stop it
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

keep=0
nodes=3
while (($#)); do
  case "$1" in
    --keep) keep=1 ;;
    --nodes) nodes="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [[ "$nodes" != 2 && "$nodes" != 3 ]]; then
  echo "demo: --nodes must be 2 or 3" >&2; exit 2
fi

tools/bootstrap.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
echo "==> building (release preset)"
cmake --preset release >/dev/null
if ! cmake --build --preset release -j "$(nproc)" --target dittod dittoadm >"${TMPDIR:-/tmp}/ditto-demo-build.log" 2>&1; then
  tail -30 "${TMPDIR:-/tmp}/ditto-demo-build.log" >&2
  echo "demo: build failed (full log: ${TMPDIR:-/tmp}/ditto-demo-build.log)" >&2
  exit 1
fi
bin="$root/build/release/datapath"

work="${DITTO_DEMO_DIR:-/var/tmp/ditto-demo}"
if [[ -f "$work/pids" ]]; then
  echo "==> stopping the previous demo cluster"
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
  sleep 0.5
fi
rm -rf "$work"
mkdir -p "$work"
names=(alpha beta gamma)
size_mib=256
port_base=${DITTO_DEMO_PORT_BASE:-7789}
nbd_port=${DITTO_DEMO_NBD_PORT:-10809}

{
  echo "resource r0 {"
  echo "  net { protocol C; }"
  for ((i = 0; i < nodes; i++)); do
    cat <<HOST
  on ${names[i]} {
    node-id $i;
    address 127.0.0.1:$((port_base + i));
    device /dev/drbd$((100 + i));
    disk $work/${names[i]}.img;
    meta-disk internal;
  }
HOST
  done
  if ((nodes > 2)); then echo "  connection-mesh { hosts ${names[*]:0:$nodes}; }"; fi
  echo "}"
} >"$work/r0.res"

echo "==> $nodes nodes, ${size_mib} MiB file-backed disks in $work, DRBD v09 metadata at their ends"
max_peers=$((nodes > 1 ? nodes - 1 : 1))
for ((i = 0; i < nodes; i++)); do
  fallocate -l "${size_mib}M" "$work/${names[i]}.img"
  # dittod attaches only a disk with metadata (like drbdadm create-md); it exports the data area.
  created=$("$bin/dittoadm" create-md "$work/${names[i]}.img" --max-peers "$max_peers" --force) ||
    { echo "demo: dittoadm create-md failed" >&2; exit 1; }
  data_bytes=$(sed -n 's/^data area: \([0-9]*\) bytes.*/\1/p' <<<"$created")
  nbd_args=()
  if ((i == 0)); then nbd_args=(--nbd "127.0.0.1:$nbd_port"); fi
  "$bin/dittod" --config "$work/r0.res" --node "${names[i]}" --control "$work/${names[i]}.sock" \
    "${nbd_args[@]}" >"$work/${names[i]}.log" 2>&1 &
  echo $! >>"$work/pids"
done

adm() { local node=$1; shift; "$bin/dittoadm" --control "$work/$node.sock" "$@"; }
stop_cluster() {
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$work/pids"
  wait 2>/dev/null || true
  rm -f "$work/pids"
}
fail() {
  echo "demo: $*" >&2
  for ((i = 0; i < nodes; i++)); do echo "--- ${names[i]}.log"; tail -20 "$work/${names[i]}.log"; done >&2
  stop_cluster
  exit 1
}

echo "==> waiting for the nodes to connect"
for attempt in $(seq 1 200); do
  connected=$(adm alpha status r0 --json 2>/dev/null | grep -c '"connection-state": "Connected"' || true)
  if ((connected == nodes - 1)); then break; fi
  if ((attempt == 200)); then fail "nodes did not connect within 10 s"; fi
  sleep 0.05
done
adm alpha primary r0 || fail "promotion failed"
uri="nbd://127.0.0.1:$nbd_port/r0"

echo "==> nbdinfo $uri"
nbdinfo "$uri" | sed 's/^/    /'

echo "==> writing 64 MiB of random data through NBD (nbdcopy) and reading it back"
head -c 64M /dev/urandom >"$work/input.bin"
nbdcopy --flush "$work/input.bin" "$uri" || fail "nbdcopy into the export failed"
nbdcopy "$uri" "$work/output.bin" || fail "nbdcopy out of the export failed"
cmp -n 64M "$work/input.bin" "$work/output.bin" || fail "data read back differs from data written"
echo "    read back identical"

echo "==> fio: 4 KiB random writes, queue depth 16, with crc32c verification"
fio --name=demo --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 \
  --offset=64M --size=64M --verify=crc32c --do_verify=1 --verify_state_save=0 \
  --output-format=terse \
  --terse-version=3 >"$work/fio.out" || fail "fio failed (see $work/fio.out)"
awk -F';' 'NF >= 49 {printf "    write: %s IOPS, %s KiB/s; verify read: %s IOPS\n", $49, $48, $8}' "$work/fio.out"

echo "==> status"
for ((i = 0; i < nodes; i++)); do
  echo "--- ${names[i]}"
  adm "${names[i]}" status r0 --statistics | sed 's/^/    /'
done

echo "==> comparing the replicas' data areas byte for byte (each node's metadata is its own)"
for ((i = 1; i < nodes; i++)); do
  if cmp -s -n "$data_bytes" "$work/alpha.img" "$work/${names[i]}.img"; then
    echo "    alpha and ${names[i]}: identical"
  else
    fail "replica ${names[i]} differs from alpha"
  fi
done

if ((keep)); then
  cat <<EOF2
==> the cluster keeps running
    NBD export:   $uri        (try: nbdinfo $uri)
    status:       $bin/dittoadm --control $work/alpha.sock status r0
    logs:         $work/*.log
    stop it:      kill \$(cat $work/pids)      (or run tools/demo.sh again)
EOF2
  exit 0
fi
echo "==> stopping the cluster"
stop_cluster
echo "demo: ok"
