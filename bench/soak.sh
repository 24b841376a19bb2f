#!/usr/bin/env bash
# bench/soak.sh: the soak test of issue 12 (not in CI). Repeats under load,
# each phase bounded in time and count: a baseline, kill -9 loops, a full
# spool disk, descriptor exhaustion, slowloris, an AUTH flood and a hostile
# MX. For each it prints what sealgate acknowledged (250), what was lost
# (acknowledged, never delivered), what was duplicated (delivered more than
# once), and the banner latency a legitimate client saw meanwhile.
#
# The work is done by soak.py (Python standard library only); this wrapper
# checks the prerequisites, makes the temporary directory and the small
# loop-mounted ext4 for the disk-full phase, and cleans up everything on exit
# (also on Ctrl-C): processes, the mount, the directory.
#
# Usage (as root: loop mounts, and smtp-sink drops to nobody):
#   sudo bench/soak.sh                              # about 10 minutes
#   sudo SOAK_DURATION=15 SOAK_MESSAGES=80 bench/soak.sh        # quick look
#   sudo SOAK_PHASES="kill9 hostile" bench/soak.sh  # some phases only
# Settings (environment): see bench/README.md. SEALGATE_BIN: the binary
# (default build/gateway/sealgate of this repository); a private copy of it
# is run, so a rebuild during the run changes nothing.
#
# Exit 0: nothing acknowledged was lost and nothing impossible happened
# (a duplicate without a crash, a refused message delivered, a hostile MX's
# non-acceptance recorded as delivered). 1 otherwise; SOAK_STRICT=1 also
# fails on a DEGRADED phase (a starved legitimate client, a spinning or
# log-flooding gateway, a slow legitimate AUTH).
# shellcheck disable=SC2317  # functions called through the EXIT trap
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

SEALGATE=${SEALGATE_BIN:-${SEALGATE:-$repo/build/gateway/sealgate}}
TMPPARENT=${SOAK_TMPDIR:-${BENCH_TMPDIR:-/tmp}}
KEEP=${SOAK_KEEP:-0}
FULL_MB=${SOAK_FULL_MB:-64}
PY=/usr/bin/python3

bench_name=soak
sg_pid=
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root (loop mount for the disk-full phase; smtp-sink drops to nobody)"
[ -x "$SEALGATE" ] || die "$SEALGATE not found; build it with scripts/build.sh (or set SEALGATE_BIN)"
[ -x "$PY" ] || die "$PY not found"
for t in smtp-sink unbound openssl mkfs.ext4 prlimit mount umount; do
  command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh installs postfix, unbound, openssl)"
done
[[ $FULL_MB =~ ^[0-9]+$ ]] && ((FULL_MB >= 16)) || die "SOAK_FULL_MB=$FULL_MB: a whole number of MiB, at least 16"
[ "$SEALGATE" -ef "$repo/build/gateway/sealgate" ] && warn_if_stale "$SEALGATE" "$repo"

# soak.py writes the ids of the processes it starts here; whatever is still
# running when it is gone (killed hard) is stopped by the trap.
py_pid=
soak_cleanup() {
  stop_pid "$py_pid"
  local p
  if [ -n "$work" ] && [ -f "$work/pids" ]; then
    while read -r p; do
      [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done <"$work/pids"
  fi
  bench_cleanup
}
trap soak_cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM HUP

make_work "$SEALGATE" "$repo"
chmod 755 "$work"

# The disk-full phase's spool and database: a small ext4 of their own, no
# blocks reserved for root (sealgate runs as root here and would use them).
full=$work/full
mkdir -p "$full"
truncate -s "${FULL_MB}M" "$work/full.img" &&
  mkfs.ext4 -q -F -m 0 -E lazy_itable_init=0,lazy_journal_init=0 "$work/full.img" >"$work/full.mkfs.log" 2>&1 &&
  mount -o loop "$work/full.img" "$full" ||
  die "cannot make the small file system: $(tail -2 "$work/full.mkfs.log" 2>/dev/null)"
mounts+=("$full")

say "soak: sealgate $SEALGATE ($("$SEALGATE" --version 2>/dev/null | head -1), built $sg_built, sha256 $(sha256sum "$SEALGATE" | cut -c1-12)); this repository: $sg_rev"
say "soak: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "soak: work directory $work; disk-full phase on a ${FULL_MB} MiB ext4 at $full"
"$PY" "$here/soak.py" --work "$work" --bin "$work/sealgate.bin" --full-fs "$full" &
py_pid=$!
wait "$py_pid"
rc=$?
py_pid=
exit "$rc"
