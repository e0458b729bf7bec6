#!/usr/bin/env bash
# Installs every Debian package that ditto's build, demo and tests need, only when missing.
# Safe to run repeatedly; does nothing (and needs no network) when all packages are present.
set -euo pipefail

PACKAGES=(
  g++ clang cmake ninja-build ccache pkg-config git
  liburing-dev libboost-dev libboost-system-dev libssl-dev
  libnl-3-dev libnl-route-3-dev
  librapidcheck-dev libgtest-dev libgmock-dev libbenchmark-dev libclang-rt-14-dev
  libnbd-dev libnbd-bin fio qemu-utils nbdkit drbd-utils openssl
  nlohmann-json3-dev libcli11-dev
  iproute2 procps jq nftables
)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "bootstrap: installing missing packages: ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done" >&2
