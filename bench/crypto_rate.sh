#!/usr/bin/env bash
# Encryption rate of sealgate's crypto/ (PGP through GPGME, S/MIME through
# OpenSSL CMS) beside the gpg and openssl cms command lines on the same input,
# same keys, same machine, same run. Prints messages per second and ratios.
# Not a test: timing never fails it; it exits 1 only when something broke.
# Everything it makes lives in one temporary directory, removed at the end
# (gpg-agents stopped with gpgconf --kill all), also on Ctrl-C.
#
#   bench/crypto_rate.sh                 # about a minute
#   BENCH_SCALE=0.2 bench/crypto_rate.sh # quick look
#   BENCH_CONCURRENCY=1 bench/crypto_rate.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
bench=$build/bench/crypto_bench
scale=${BENCH_SCALE:-1}
conc=${BENCH_CONCURRENCY:-2}
for tool in gpg gpgconf openssl python3 xargs; do
  command -v "$tool" >/dev/null || { echo "crypto_rate: $tool is missing (scripts/setup.sh)" >&2; exit 1; }
done
[ -x "$bench" ] || { echo "crypto_rate: $bench is missing: scripts/build.sh" >&2; exit 1; }
if [ -n "$(find "$here/crypto" -newer "$bench" -name '*.cpp' | head -1)" ]; then
  echo "crypto_rate: warning: $bench is older than crypto/ sources" >&2
fi

dir=$(mktemp -d /tmp/sgb.XXXXXX)   # short: gpg-agent's socket path has a length limit
cleanup() {
  for h in "$dir/g" "$dir/g/discovered"; do
    [ -d "$h" ] && GNUPGHOME=$h gpgconf --kill all 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

n() { python3 -c "import sys; print(max(1, int(float(sys.argv[1]) * float(sys.argv[2]))))" "$1" "$scale"; }

# --- keys: one home for both sides (the gpg command line and sealgate use the same keyring)
export GNUPGHOME=$dir/g
mkdir -m 700 "$GNUPGHOME"
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'Bench <bench@example.test>' \
    future-default default never 2>/dev/null
fpr=$(gpg --with-colons --list-keys bench@example.test | awk -F: '/^fpr:/ {print $10; exit}')
(cd "$dir" &&
 openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca \
   -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null &&
 openssl req -new -newkey rsa:2048 -nodes -keyout r.key -out r.csr -subj /CN=bench 2>/dev/null &&
 printf 'subjectAltName=email:bench@example.test\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\n' > r.ext &&
 openssl x509 -req -in r.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile r.ext -out r.pem 2>/dev/null)
mkdir "$dir/certs" && cp "$dir/r.pem" "$dir/certs/"
cat > "$dir/sealgate.yaml" <<EOF
listeners:
  - {name: a, address: 127.0.0.1, port: 2525, tls: none, auth: none}
crypto:
  gnupg_home: g
  smime_certificates: certs
  smime_ca_file: ca.pem
  sources: {dns_openpgpkey: false, dns_smimea: false}
EOF

# --- messages: 4 KiB and 1 MiB of text with ordinary headers, CRLF
python3 - "$dir" <<'EOF'
import sys, random
random.seed(1)
words = "patient appointment results laboratory invoice reminder clinic report".split()
for name, size in (("4k", 4096), ("1m", 1 << 20)):
    head = ("From: app@example.org\r\nTo: bench@example.test\r\nSubject: bench\r\nMessage-ID: <b@example.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
    body, line = [], ""
    while len(head) + sum(map(len, body)) < size:
        w = random.choice(words)
        if len(line) + len(w) > 72:
            body.append(line + "\r\n"); line = ""
        line += w + " "
    open("%s/%s.eml" % (sys.argv[1], name), "wb").write((head + "".join(body))[:size].encode())
EOF

now() { date +%s.%N; }
rate() { python3 -c "import sys; print('%.1f' % (float(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2]))))" "$@"; }

# The command lines, $conc at a time (as sealgate's worker pool), one process per message.
cli_rate() {  # cli_rate COUNT FILE pgp|smime
  local count=$1 file=$2 kind=$3 t0 t1
  export file fpr dir
  t0=$(now)
  if [ "$kind" = pgp ]; then
    seq "$count" | xargs -P "$conc" -I{} sh -c \
      'gpg --batch --no-tty --trust-model always --armor -r "$fpr" --encrypt < "$file" > /dev/null' || return 1
  else
    seq "$count" | xargs -P "$conc" -I{} sh -c \
      'openssl cms -encrypt -binary -aes-256-cbc -recip "$dir/r.pem" -keyopt rsa_padding_mode:oaep < "$file" > /dev/null' || return 1
  fi
  t1=$(now)
  rate "$count" "$t0" "$t1"
}

ours_rate() {  # ours_rate COUNT FILE pgp|smime
  "$bench" --config "$dir/sealgate.yaml" --method "$3" --to bench@example.test --count "$1" --concurrency "$conc" \
    < "$2" | sed -n 's/.*: \([0-9.]*\) msg\/s.*/\1/p'
}

printf '%-26s %12s %14s %8s\n' "case (concurrency $conc)" "sealgate/s" "command line/s" "ratio"
status=0
for size in 4k 1m; do
  for kind in pgp smime; do
    case "$kind-$size" in
      pgp-4k) ours=$(n 600); cli=$(n 300) ;;
      pgp-1m) ours=$(n 60); cli=$(n 40) ;;
      smime-4k) ours=$(n 20000); cli=$(n 300) ;;
      smime-1m) ours=$(n 400); cli=$(n 100) ;;
    esac
    a=$(ours_rate "$ours" "$dir/$size.eml" "$kind") || { echo "crypto_rate: crypto_bench failed" >&2; status=1; continue; }
    b=$(cli_rate "$cli" "$dir/$size.eml" "$kind") || { echo "crypto_rate: $kind command line failed" >&2; status=1; continue; }
    [ -n "$a" ] || { echo "crypto_rate: crypto_bench printed no rate" >&2; status=1; continue; }
    label=$([ "$kind" = pgp ] && echo "PGP vs gpg" || echo "S/MIME vs openssl cms")
    printf '%-26s %12s %14s %7sx\n' "$label $size" "$a" "$b" "$(python3 -c "print('%.2f' % ($a / $b))")"
  done
done
echo "targets (issue 6): S/MIME 4k >= 2000 msg/s; PGP at least as fast as gpg"
exit $status
