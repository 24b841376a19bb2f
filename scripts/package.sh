#!/usr/bin/env bash
# Builds the Debian package (debian/, dpkg-buildpackage) into build-deb/ (or the
# directory given as $1), runs lintian on it and fails on any error or warning,
# and prints the .deb's path and sizes. The source tree is never written to:
# dpkg-buildpackage works in, and leaves its artefacts beside, a copy of the
# committed and modified files made under the output directory.
# SEALGATE_PACKAGE_JOBS: parallel compile jobs (default 2: CI's machine has 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/build-deb}
jobs=${SEALGATE_PACKAGE_JOBS:-2}

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/work
rm -rf "$work"
mkdir -p "$work/sealgate"
# Tracked and new (not ignored) files only: no build trees, no var/.
(cd "$here" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$here" && xargs -0 cp --parents -t "$work/sealgate" 2>/dev/null || true)
# A file deleted in the work tree but still in the index is not copied above
# (cp fails for it); everything debian/ needs must be there.
for f in debian/rules debian/control CMakeLists.txt scripts/manpages.py; do
  [ -e "$work/sealgate/$f" ] || { echo "package: $f missing from the copy" >&2; exit 1; }
done

# nocheck: the test suite is not run inside the package build (debian/rules
# says why); parallel= caps the compile jobs.
(cd "$work/sealgate" &&
  DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
  tail -n 25 "$out/build.log" | cut -c1-400 >&2
  echo "package: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}

rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes
mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
deb=$(ls "$out"/sealgate_*.deb)
changes=$(ls "$out"/sealgate_*.changes)

# Every warning fails, as every error does; tags we accept are overridden in
# debian/source/lintian-overrides or debian/sealgate.lintian-overrides, each
# with its reason. Info and pedantic tags are shown, not fatal.
lintian --fail-on error,warning --display-info "$changes" | tee "$out/lintian.log"
echo "package: lintian clean (errors and warnings), log in $out/lintian.log"

rm -rf "$work"
echo "package: $deb"
echo "package: size $(du -h "$deb" | cut -f1), installed size $(dpkg-deb -f "$deb" Installed-Size) KiB"
