#!/usr/bin/env bash
# Configures and builds sealgate into build/ (or the directory given as $1).
# Extra arguments go to cmake, e.g. -DSEALGATE_SANITIZE=ON.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$here/build}
shift || true
cmake -S "$here" -B "$dir" -G Ninja -DSEALGATE_WERROR=ON "$@" >/dev/null
ninja -C "$dir"
