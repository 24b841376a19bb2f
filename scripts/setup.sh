#!/usr/bin/env bash
# Installs, idempotently, every Debian 12 package that sealgate's build, tests and
# benchmarks need, and makes the development TLS certificate the shipped config uses.
# Never downloads anything but Debian packages.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  # build
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libssl-dev libc-ares-dev libgpgme-dev libyaml-cpp-dev
  libsqlite3-dev sqlite3 libgtest-dev googletest libre2-dev libidn2-dev
  # operations (issue 16): metrics registry, sd_notify, gzip of TLS reports; the metrics test's
  # text-format parser and YAML reader (the shipped alert rules)
  prometheus-cpp-dev libsystemd-dev zlib1g-dev python3-prometheus-client python3-yaml
  # the Debian package (scripts/package.sh): dpkg-buildpackage's helpers, the
  # man pages' Markdown-to-roff converter, the package checker; and its install
  # test (tests/package/install_test.sh), which makes a Debian 12 root
  debhelper go-md2man lintian debootstrap
  # fuzzing (scripts/fuzz.sh): clang++ and its libFuzzer runtime (libclang_rt.fuzzer)
  clang libclang-rt-14-dev
  # test peers and checkers
  postfix swaks libnet-ssleay-perl unbound nsd gnupg openssl python3 dnsutils ldnsutils procps
  # the portal's end-to-end tests (tests/integration/browser.py): headless Chromium
  # driven over the DevTools protocol from Python; chromium depends on no font and
  # recommends are not installed, so a font for legible screenshots
  chromium python3-websockets fonts-dejavu-core
  # DKIM (tests/integration/intake_test.py): dkimpy verifies what the gateway signs,
  # PyNaCl for its Ed25519 (RFC 8463) signatures
  python3-dkim python3-nacl
  # benchmarks (bench/portal_rate.sh): the HTTPS load generator and the peer it compares with
  wrk nginx-light
  # bench/dkim_relay.sh: Postfix with Debian's OpenDKIM milter signing the same load
  opendkim opendkim-tools
  # more than one machine (issue 18): libpq for the PostgreSQL record and portal store; the
  # server the tests start in a temporary directory (tests/integration/pg_peer.py); HAProxy in
  # front of two gateway nodes (PROXY protocol v2) and the portal (X-Forwarded-For)
  libpq-dev postgresql-15 haproxy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # Postfix asks how to configure the system MTA; the tests run their own instances.
  echo "postfix postfix/main_mailer_type select No configuration" | "${sudo_cmd[@]}" debconf-set-selections
  # postgresql-common would create and start a cluster on port 5432; the tests start their own.
  "${sudo_cmd[@]}" mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" | "${sudo_cmd[@]}" tee /etc/postgresql-common/createcluster.d/sealgate-tests.conf >/dev/null
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Development certificate for the shipped conf/sealgate.yaml (var/ is git-ignored).
mkdir -p "$here/var/tls"
if [ ! -s "$here/var/tls/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$here/var/tls/key.pem" -out "$here/var/tls/cert.pem" 2>/dev/null
  chmod 600 "$here/var/tls/key.pem"
fi
