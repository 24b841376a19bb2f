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
# A failed build must not leave the last good .deb for the install test to find.
rm -f "$out"/*.deb "$out"/*.buildinfo "$out"/*.changes "$out"/lintian.log
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

# The source package too, from the pristine copy, only for lintian's source
# checks (debian/ itself: control, copyright, rules); it is not kept.
(cd "$work" && dpkg-source -b sealgate >"$out/source.log" 2>&1) || {
  cat "$out/source.log" >&2
  echo "package: dpkg-source failed" >&2
  exit 1
}

# nocheck: the test suite is not run inside the package build (debian/rules
# says why); parallel= caps the compile jobs.
(cd "$work/sealgate" &&
  DEB_BUILD_OPTIONS="nocheck parallel=$jobs" dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
  tail -n 25 "$out/build.log" | cut -c1-400 >&2
  echo "package: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
}

mv "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
deb=$(ls "$out"/sealgate_*.deb)
changes=$(ls "$out"/sealgate_*.changes)

# Every warning fails, as every error does, in the source and the binary
# packages; a tag we accept would be overridden in debian/source/lintian-overrides
# or debian/sealgate.lintian-overrides with its reason (there are none). Info
# tags are shown, not fatal.
lintian --fail-on error,warning --display-info "$work"/sealgate_*.dsc "$changes" | tee "$out/lintian.log"
echo "package: lintian clean (errors and warnings), log in $out/lintian.log"

rm -rf "$work"
echo "package: $deb"
echo "package: size $(du -h "$deb" | cut -f1), installed size $(dpkg-deb -f "$deb" Installed-Size) KiB"
