#!/usr/bin/env bash
# The whole test suite: installs what is needed, builds with -Werror, runs every
# unit and integration test, then again under AddressSanitizer and UBSan, then
# every libFuzzer target for a bounded time (scripts/fuzz.sh, 60 s each by
# default: SEALGATE_FUZZ_SECONDS). SEALGATE_SKIP_SANITIZE=1 skips the second
# pass and SEALGATE_SKIP_FUZZ=1 the fuzzing (for quick local runs). Between the
# first pass and the second, the Debian package is built and checked with
# lintian (scripts/package.sh) and installed, run and purged in a fresh Debian
# 12 root (tests/package/install_test.sh); SEALGATE_SKIP_PACKAGE=1 skips both.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"

"$here/scripts/build.sh" "$here/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd "$here/build" && ctest --output-on-failure --timeout 900)

if [ "${SEALGATE_SKIP_PACKAGE:-0}" != 1 ]; then
  "$here/scripts/package.sh" "$here/build-deb"
  "$here/tests/package/install_test.sh" "$(ls "$here"/build-deb/sealgate_*.deb)"
fi

if [ "${SEALGATE_SKIP_SANITIZE:-0}" != 1 ]; then
  "$here/scripts/build.sh" "$here/build-asan" -DCMAKE_BUILD_TYPE=Debug -DSEALGATE_SANITIZE=ON
  (cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure --timeout 900)
fi

if [ "${SEALGATE_SKIP_FUZZ:-0}" != 1 ]; then
  "$here/scripts/fuzz.sh"
fi
