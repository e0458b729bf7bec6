#!/usr/bin/env bash
# Installs what is missing, builds ditto (dev preset: Debug, ASan+UBSan, -Werror) and runs every
# test: unit, property, simulator and integration tests with real daemons and NBD clients.
#   tools/test.sh            everything in the default tier
#   tools/test.sh -L unit    only tests with a ctest label (unit, core, sim, datapath, integration)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/bootstrap.sh

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
jobs=$(nproc)

echo "==> configure (dev preset)"
cmake --preset dev >/dev/null
echo "==> build"
cmake --build --preset dev -j "$jobs"
echo "==> tests"
ctest --preset dev -j "$jobs" --timeout 900 "$@"
