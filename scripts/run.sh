#!/usr/bin/env bash
# Quick start: installs what is needed, builds, and runs the gateway on the
# shipped configuration (conf/sealgate.yaml: 127.0.0.1:2525, spool and SQLite under var/).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
"$here/scripts/build.sh" "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
exec "$here/build/gateway/sealgate" run --config "$here/conf/sealgate.yaml"
