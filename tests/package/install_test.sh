#!/usr/bin/env bash
# The Debian package, installed as an administrator would: a fresh Debian 12
# root (debootstrap from deb.debian.org; root only), apt-get install of the
# .deb, the gateway started there with the shipped configuration as the
# package's user and sent one message with swaks, the conffile kept over a
# reinstall, and nothing left after a purge. Never touches the host's own
# packages; leaves no process, mount or directory behind, even on failure.
#
# usage: tests/package/install_test.sh [DEB]   (default: build-deb/sealgate_*.deb)
# SEALGATE_TEST_CACHE: where debootstrap's and apt's downloads are kept between
# runs (default /var/cache/sealgate-test); the root itself is made fresh.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
mirror=http://deb.debian.org/debian

fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
step() { echo "install_test: $*"; }

# The gateway's part runs in a network namespace of its own (only loopback,
# brought up here): port 25 on 127.0.0.1 is free whatever the host and the
# other tests listen on, and the delivery attempt after the message cannot
# reach the internet (it is deferred, which is what the test expects).
if [ "${1:-}" = --in-netns ]; then
  root=$2
  ip link set lo up
  log=$root/tmp/sealgate.log
  # What sealgate.service gives it: the user and group, only
  # CAP_NET_BIND_SERVICE (ambient, for port 25), no new privileges, umask 077.
  # systemd is not PID 1 in a chroot, so setpriv stands in for the unit.
  (umask 077 && exec chroot "$root" setpriv --reuid=sealgate --regid=sealgate --init-groups \
     --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
     --bounding-set=-all,+net_bind_service --no-new-privs \
     /usr/sbin/sealgate run --config /etc/sealgate/sealgate.yaml) >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    grep -q ' started, hostname=' "$log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "the gateway exited before it started"; }
    sleep 0.2
  done
  grep -q ' started, hostname=' "$log" || { cat "$log" >&2; kill -KILL "$pid"; fail "no 'started' line within 20 s"; }
  step "gateway started as sealgate on 127.0.0.1:25 (pid $pid)"

  # STARTTLS with the certificate postinst made, as an application would.
  reply=$(swaks --server 127.0.0.1:25 --tls --from app@example.org --to someone@example.com \
            --header "Subject: package install test" --body "sent by tests/package/install_test.sh" 2>&1) ||
    { echo "$reply" >&2; kill -KILL "$pid"; fail "swaks failed"; }
  id=$(sed -n 's/^<~  250 2\.0\.0 Ok: queued as \([^ ]*\)$/\1/p' <<<"$reply" | tr -d '\r')
  [ -n "$id" ] || { echo "$reply" >&2; kill -KILL "$pid"; fail "no '250 2.0.0 Ok: queued as ID' after DATA"; }
  step "message accepted, queue id $id"

  listing=$(chroot "$root" runuser -u sealgate -- sealgate queue list --config /etc/sealgate/sealgate.yaml 2>&1) ||
    { echo "$listing" >&2; kill -KILL "$pid"; fail "sealgate queue list failed"; }
  grep -q "$id" <<<"$listing" || { echo "$listing" >&2; kill -KILL "$pid"; fail "message $id not in sealgate queue list"; }
  grep -q "someone@example.com" <<<"$listing" || { echo "$listing" >&2; kill -KILL "$pid"; fail "recipient not in the queue listing"; }
  step "sealgate queue list shows $id for someone@example.com"

  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || { cat "$log" >&2; fail "the gateway exited $rc after SIGTERM, not 0"; }
  step "gateway stopped by SIGTERM, exit 0; its log:"
  sed 's/^/    /' "$log"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mounts)"
deb=${1:-$(ls "$here"/build-deb/sealgate_*.deb 2>/dev/null | head -n 1)}
[ -f "$deb" ] || fail "no package: run scripts/package.sh first, or name the .deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
cache=${SEALGATE_TEST_CACHE:-/var/cache/sealgate-test}
mkdir -p "$cache/debootstrap" "$cache/apt-archives/partial"

work=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-install.XXXXXX")
root=$work/root

cleanup() {
  local rc=$? p
  # Only what runs inside this test's root: processes started by this test.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
  # Innermost first; lazily, in case a killed process still holds one.
  findmnt -rn -o TARGET | grep -F "$root/" | sort -r | while read -r m; do umount -l "$m" || true; done
  if findmnt -rn -o TARGET | grep -qF "$root/"; then
    echo "install_test: mounts still under $root, not deleting it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "debootstrap bookworm (minbase) into $root"
debootstrap --variant=minbase --cache-dir="$cache/debootstrap" bookworm "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap"; }
mount -t proc proc "$root/proc"
# apt's downloads survive the root, as debootstrap's do.
mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"
# No service starts inside a chroot (invoke-rc.d; deb-systemd-invoke sees no systemd).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"

in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@" </dev/null; }

step "apt-get install $(basename "$deb")"
cp "$deb" "$root/tmp/"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt-get update"; }
in_root apt-get install -y -q "/tmp/$(basename "$deb")" >>"$work/apt.log" 2>&1 ||
  { tail -n 40 "$work/apt.log" >&2; fail "apt-get install of the package"; }

# What the package must have made.
entry=$(in_root getent passwd sealgate) || fail "no user sealgate"
IFS=: read -r _ _ uid _ _ home shell <<<"$entry"
[ "$uid" -lt 1000 ] || fail "sealgate is not a system user (uid $uid)"
[ "$home" = /var/lib/sealgate ] || fail "sealgate's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "sealgate's shell is $shell"
in_root getent group sealgate >/dev/null || fail "no group sealgate"
# Names as the root's own passwd and group files give them.
mode() { in_root stat -c '%a %U:%G' "$1"; }
[ "$(mode /var/spool/sealgate)" = "700 sealgate:sealgate" ] || fail "/var/spool/sealgate is $(mode /var/spool/sealgate), not 700 sealgate:sealgate"
[ "$(mode /var/lib/sealgate)" = "700 sealgate:sealgate" ] || fail "/var/lib/sealgate is $(mode /var/lib/sealgate), not 700 sealgate:sealgate"
[ "$(mode /etc/sealgate/tls/key.pem)" = "600 sealgate:sealgate" ] || fail "the TLS key is $(mode /etc/sealgate/tls/key.pem)"
conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' sealgate)
for f in /etc/sealgate/sealgate.yaml /etc/sealgate/policy.yaml /etc/sealgate/ranges/microsoft-365.txt; do
  grep -q "^ $f " <<<"$conffiles" || fail "$f is not a conffile of the package"
done
for f in /usr/sbin/sealgate /lib/systemd/system/sealgate.service /lib/systemd/system/sealgate-portal.service \
         /usr/share/man/man8/sealgate.8.gz /usr/share/man/man5/sealgate.yaml.5.gz; do
  [ -e "$root$f" ] || fail "$f not installed"
done
[ -L "$root/etc/systemd/system/multi-user.target.wants/sealgate.service" ] || fail "sealgate.service not enabled"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/sealgate-portal.service" ] || fail "the portal is enabled, unconfigured"
in_root runuser -u sealgate -- sealgate policy check --config /etc/sealgate/sealgate.yaml >"$work/check.log" 2>&1 ||
  { cat "$work/check.log" >&2; fail "sealgate policy check refuses the shipped configuration"; }
step "user, directories, key, conffiles, units, man pages and policy check as expected"

# The units as systemd reads them: systemd-analyze verify (a unit that does
# not parse, a command that is not there) and the sandbox's exposure score
# (issue 16: 2.0 or less), with systemd installed in the root for it (it is
# not PID 1 here; nothing is started).
in_root apt-get install -y -q --no-install-recommends systemd >>"$work/apt.log" 2>&1 ||
  { tail -n 40 "$work/apt.log" >&2; fail "apt-get install systemd (for systemd-analyze)"; }
for unit in sealgate.service sealgate-portal.service; do
  in_root systemd-analyze verify --man=no "/lib/systemd/system/$unit" >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log" >&2; fail "systemd-analyze verify $unit"; }
  score=$(in_root systemd-analyze security --offline=true "/lib/systemd/system/$unit" 2>&1 | tail -n 1)
  in_root systemd-analyze security --offline=true --threshold=20 "/lib/systemd/system/$unit" >/dev/null 2>&1 ||
    fail "$unit: exposure above 2.0: $score"
  step "$unit: systemd-analyze verify clean; ${score#→ }"
done

unshare --net -- "$0" --in-netns "$root"

# An upgrade (here: the same version again) keeps a changed conffile and the
# data; postinst keeps the existing key.
echo "# changed by install_test" >>"$root/etc/sealgate/sealgate.yaml"
key_before=$(sha256sum <"$root/etc/sealgate/tls/key.pem")
in_root apt-get install -y -q --reinstall "/tmp/$(basename "$deb")" >>"$work/apt.log" 2>&1 ||
  { tail -n 40 "$work/apt.log" >&2; fail "reinstall"; }
grep -q '^# changed by install_test$' "$root/etc/sealgate/sealgate.yaml" || fail "the reinstall overwrote the changed conffile"
[ "$(sha256sum <"$root/etc/sealgate/tls/key.pem")" = "$key_before" ] || fail "the reinstall replaced the TLS key"
[ -n "$(ls -A "$root/var/spool/sealgate/queue" 2>/dev/null)" ] || fail "the reinstall lost the queued message"
step "reinstall kept the changed conffile, the key and the spool"

in_root apt-get purge -y -q sealgate >>"$work/apt.log" 2>&1 || { tail -n 40 "$work/apt.log" >&2; fail "purge"; }
for d in /var/spool/sealgate /var/lib/sealgate /etc/sealgate; do
  [ ! -e "$root$d" ] || fail "$d left after purge: $(ls -A "$root$d" | head -n 5 | tr '\n' ' ')"
done
! in_root getent passwd sealgate >/dev/null || fail "user sealgate left after purge"
! in_root getent group sealgate >/dev/null || fail "group sealgate left after purge"
step "purge removed the spool, the record, /etc/sealgate, the user and the group"
step "PASS"
