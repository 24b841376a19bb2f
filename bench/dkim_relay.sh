#!/usr/bin/env bash
# bench/dkim_relay.sh: DKIM signing (issue 15), in one run:
#
#   1. relay with DKIM signing (RSA-2048), sealgate against Postfix +
#      OpenDKIM: the same smtp-source load (N messages of 4 KiB from
#      sender@bench.test), relayed by each to an smtp-sink of its own on
#      127.0.7.1, both signing with the same RSA-2048 key for bench.test
#      (relaxed/relaxed, rsa-sha256). Rate = N / (from the start of smtp-source
#      until the sink has received the Nth message). Every message at the sink
#      must carry a DKIM-Signature, and a sample of them must verify with
#      dkimpy against the record `sealgate dkim keygen` printed.
#   2. signing cost per message beside the raw signature: `openssl speed
#      rsa2048` (sign/s, one thread) and bench/dkim_bench (one thread):
#      crypto::dkim_private_key::sign() on 600 bytes and
#      gateway::outgoing_finisher::finish() on a 4 KiB message in memory.
#      Both per second of CPU time (openssl speed divides by its user time).
#
# Timing never fails the script. It exits 1 only when something broke: a
# message lost, deferred or unsigned, a signature that does not verify, a
# server that did not start, smtp-source reporting an error, a relay that
# stopped making progress, dkim_bench or openssl speed failing.
#
# Usage (as root: Postfix instances need root to start):
#   bench/dkim_relay.sh                      # 10000 messages per relay, 5 s per signing figure
#   BENCH_SCALE=0.2 bench/dkim_relay.sh      # quick: 2000 messages, 1 s per signing figure
# Settings (environment):
#   BENCH_SCALE        scales the message count and the signing timings   (1)
#   BENCH_MESSAGES     messages per relay                 (10000 x BENCH_SCALE)
#   BENCH_SESSIONS     parallel SMTP sessions (smtp-source -s)             (20)
#   BENCH_DEST_CONCURRENCY  connections to the sink at once, for both relays:
#                      Postfix default_destination_concurrency_limit and
#                      sealgate queue.destination_concurrency              (20)
#   BENCH_CONCURRENCY  sealgate queue.concurrency                         (100)
#   BENCH_SAMPLE       messages per relay verified with dkimpy              (5)
#   BENCH_SIGN         0: skip part 2 (openssl speed and dkim_bench)        (1)
#   SEALGATE           the binary                  (build/gateway/sealgate)
#   DKIM_BENCH         the signing benchmark         (build/bench/dkim_bench)
#   BENCH_TMPDIR       where the temporary directory goes; a disk file
#                      system (both relays fsync their queues)           (/tmp)
#   BENCH_TIMEOUT      seconds one smtp-source run may take               (600)
#   BENCH_STALL        seconds without progress at the sink after which a
#                      relay counts as stuck (a failure)                  (120)
#   BENCH_KEEP         1: keep the temporary directory (logs, queues, dumps)
# shellcheck disable=SC2317  # functions called by name and through the EXIT trap
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

SCALE=${BENCH_SCALE:-1}
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "dkim_relay: BENCH_SCALE=$SCALE is not a number" >&2; exit 1; }
N=${BENCH_MESSAGES:-$(awk "BEGIN { n = int(10000 * $SCALE + 0.5); print (n < 1 ? 1 : n) }")}
SIGN_SECONDS=$(awk "BEGIN { s = int(5 * $SCALE + 0.5); print (s < 1 ? 1 : s) }")
SESSIONS=${BENCH_SESSIONS:-20}
SIZE=4096 # the prepared message; fresh_fs sizes its file systems with it
DEST_CONC=${BENCH_DEST_CONCURRENCY:-20}
CONC=${BENCH_CONCURRENCY:-100}
SAMPLE=${BENCH_SAMPLE:-5}
DO_SIGN=${BENCH_SIGN:-1}
SEALGATE=${SEALGATE:-$repo/build/gateway/sealgate}
DKIM_BENCH=${DKIM_BENCH:-$repo/build/bench/dkim_bench}
TMPPARENT=${BENCH_TMPDIR:-/tmp}
KEEP=${BENCH_KEEP:-0}
LOAD_TIMEOUT=${BENCH_TIMEOUT:-600}
STALL=${BENCH_STALL:-120}
PY=/usr/bin/python3 # Debian's: python3-dkim lives there
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
SMTP_SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
OPENDKIM=$(command -v opendkim || echo /usr/sbin/opendkim)
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
SINK_ADDR=127.0.7.1 # everything here is on 127.0.7.1 and 127.0.0.1
DOMAIN=bench.test    # the signing domain (the sender's)
SELECTOR=s1
RCPT_DOMAIN=sink.test
SENDER=sender@$DOMAIN
RCPT=rcpt@$RCPT_DOMAIN

bench_name=dkim_relay
sg_pid=
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

for v in N SESSIONS DEST_CONC CONC SAMPLE LOAD_TIMEOUT STALL; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a whole number"
done
((N > 0 && SESSIONS > 0 && DEST_CONC > 0 && CONC > 0 && SAMPLE > 0)) ||
  die "BENCH_MESSAGES, BENCH_SESSIONS, BENCH_DEST_CONCURRENCY, BENCH_CONCURRENCY and BENCH_SAMPLE must be at least 1"
((DEST_CONC <= CONC)) || die "BENCH_DEST_CONCURRENCY ($DEST_CONC) must not exceed BENCH_CONCURRENCY ($CONC)"
check_tools "$SEALGATE" "$SMTP_SOURCE"
[ -x "$SMTP_SINK" ] || die "smtp-sink not found (Debian package postfix)"
[ -x "$OPENDKIM" ] || die "opendkim not found (scripts/setup.sh installs it)"
getent passwd opendkim >/dev/null || die "user opendkim missing (the opendkim package creates it)"
getent passwd nobody >/dev/null || die "user nobody missing (smtp-sink runs as it)"
[ -x "$UNBOUND" ] || die "unbound not found (scripts/setup.sh installs it)"
command -v sqlite3 >/dev/null || die "sqlite3 not found (scripts/setup.sh installs it)"
command -v openssl >/dev/null || die "openssl not found"
"$PY" -c 'import dkim' 2>/dev/null || die "$PY cannot import dkim (Debian package python3-dkim; scripts/setup.sh installs it)"
if [ "$DO_SIGN" = 1 ]; then
  [ -x "$DKIM_BENCH" ] || die "$DKIM_BENCH not found: build it (scripts/build.sh, or ninja -C build dkim_bench), set DKIM_BENCH, or BENCH_SIGN=0"
  if [ -n "$(find "$repo/crypto/dkim.cpp" "$repo/gateway/methods/outgoing.cpp" "$here/dkim_bench.cpp" -newer "$DKIM_BENCH" 2>/dev/null | head -1)" ]; then
    warn "$DKIM_BENCH is older than its sources (crypto/dkim.cpp, gateway/methods/outgoing.cpp or bench/dkim_bench.cpp)"
  fi
fi
warn_if_stale "$SEALGATE" "$repo"

install_cleanup
make_work "$SEALGATE" "$repo"
pf_dir=$work/postfix
fresh_fs postfix
dns_dir=$work/dns
pf_dirs=("$pf_dir")

started=$(now)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------ key and message ---
keydir=$work/dkim
mkdir -p "$keydir"
if ! "$work/sealgate.bin" dkim keygen --domain "$DOMAIN" --selector "$SELECTOR" --out "$keydir/s1.pem" \
  >"$keydir/record.zone" 2>"$keydir/keygen.log"; then
  die "sealgate dkim keygen failed: $(tail -3 "$keydir/keygen.log")"
fi
# The TXT record's character-strings joined: what a resolver hands dkimpy.
"$PY" -c 'import re, sys; print("".join(re.findall(r"\"([^\"]*)\"", open(sys.argv[1]).read())))' \
  "$keydir/record.zone" >"$keydir/record.txt"
grep -q '^v=DKIM1; k=rsa; p=' "$keydir/record.txt" || die "no key record in the output of dkim keygen: $(head -c 200 "$keydir/record.zone")"
key_bits=$(openssl pkey -in "$keydir/s1.pem" -noout -text 2>/dev/null | sed -n 's/.*Private-Key: (\([0-9]*\) bit.*/\1/p')

# A 4 KiB text message with ordinary headers; LF line ends (smtp-source -F
# sends CRLF after each line). The same bytes for both relays.
"$PY" - "$work/message.txt" "$SENDER" "$RCPT" <<'EOF'
import random, sys
random.seed(15)
words = "patient appointment results laboratory invoice reminder clinic report".split()
lines = ["From: Bench Sender <%s>" % sys.argv[2], "To: <%s>" % sys.argv[3], "Subject: DKIM relay benchmark",
         "Date: Sat, 6 Dec 2025 10:00:00 +0000", "Message-ID: <dkim-relay.1@bench.test>", "MIME-Version: 1.0",
         "Content-Type: text/plain; charset=us-ascii", ""]
wire = lambda: sum(len(l) + 2 for l in lines)  # CRLF after each line
line = ""
while wire() + len(line) + 2 < 4096 - 80:
    w = random.choice(words)
    if len(line) + len(w) > 72:
        lines.append(line.rstrip())
        line = ""
    line += w + " "
lines.append(line.rstrip())
lines.append("x" * (4096 - wire() - 2))  # exactly 4096 bytes on the wire
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
EOF
msg_bytes=$(($(wc -c <"$work/message.txt") + $(wc -l <"$work/message.txt")))
source_args=(-c -s "$SESSIONS" -m "$N" -F "$work/message.txt" -f "$SENDER" -t "$RCPT")

say "dkim_relay: $N messages of $msg_bytes bytes (with CRLF), $SESSIONS parallel sessions (one message per SMTP session), from $SENDER, relayed with DKIM signing (RSA-${key_bits:-?}, d=$DOMAIN s=$SELECTOR) to an smtp-sink"
say "  machine: $(nproc) CPUs, $(uname -r), work directory $work ($fstype); $([ "${BENCH_FRESH_FS:-1}" = 1 ] && echo "each relay's queue on a fresh journaled ext4 (loop)" || echo "queues in the work directory")"
say "  load average now: $load_start (anything well above 0 on $(nproc) CPUs makes the rates noisy)"
say "  sealgate: $SEALGATE (built $sg_built; tree $sg_rev); Postfix $(postconf -d -h mail_version 2>/dev/null); $("$OPENDKIM" -V 2>&1 | head -1); $(openssl version)"

# -------------------------------------------------------------- part 2 ---
# First, while nothing of ours runs. openssl speed twice, around dkim_bench,
# so that a change in the machine's load shows up as a difference between them.
ossl_a='' ossl_b='' ossl_sign='' db_sign='' db_finish=''
# openssl_sign_rate: sign/s of `openssl speed -seconds S rsa2048`, found by the
# column named sign/s in its header (OpenSSL 3.2 added encrypt/decrypt columns).
openssl_sign_rate() {
  openssl speed -seconds "$SIGN_SECONDS" rsa2048 2>"$work/speed.err" | tee -a "$work/speed.out" | awk '
    /sign\/s/ { for (i = 1; i <= NF; i++) if ($i == "sign/s") col = i + 3 }
    col && $1 == "rsa" && $2 == "2048" && $3 == "bits" { print $col; exit }'
}
if [ "$DO_SIGN" = 1 ]; then
  say ""
  say "== part 2: signing cost per message, one thread, per second of CPU time ($SIGN_SECONDS s per figure)"
  ossl_a=$(openssl_sign_rate)
  [ -n "$ossl_a" ] || fail "openssl speed rsa2048 printed no sign/s: $(tail -3 "$work/speed.err" "$work/speed.out" 2>/dev/null | tr '\n' ' ')"
  say "  openssl speed -seconds $SIGN_SECONDS rsa2048: ${ossl_a:-n/a} sign/s"
  if "$DKIM_BENCH" --key "$keydir/s1.pem" --message <(sed 's/$/\r/' "$work/message.txt") --seconds "$SIGN_SECONDS" \
    >"$work/dkim_bench.out" 2>"$work/dkim_bench.err"; then
    sed 's/^/  dkim_bench: /' "$work/dkim_bench.out"
    db_sign=$(sed -n 's/^sign ([^)]*): \([0-9.]*\)\/s.*/\1/p' "$work/dkim_bench.out")
    db_finish=$(sed -n 's/^finish ([^)]*): \([0-9.]*\)\/s.*/\1/p' "$work/dkim_bench.out")
    if [ -z "$db_sign" ] || [ -z "$db_finish" ]; then
      fail "dkim_bench printed no rates: $(tr '\n' ' ' <"$work/dkim_bench.out")"
    fi
  else
    fail "dkim_bench failed: $(tail -3 "$work/dkim_bench.err" | tr '\n' ' ')"
  fi
  ossl_b=$(openssl_sign_rate)
  say "  openssl speed -seconds $SIGN_SECONDS rsa2048 again: ${ossl_b:-n/a} sign/s"
  [ -n "$ossl_a" ] && [ -n "$ossl_b" ] && ossl_sign=$(calc "($ossl_a + $ossl_b) / 2" 1)
fi

# --------------------------------------------------------------- the sink ---
# One smtp-sink per relay (the same options, a fresh port and dump
# directory): it answers 250 to everything and dumps each message to a file
# of its own (the sample to verify); -c prints running counters (mesg=N) that
# tell when the Nth message has arrived.
sink_pid=
sink_out=
sink_dir=
# sink_start NAME: starts it on SINK_ADDR (sets sink_port, sink_pid, sink_out, sink_dir).
sink_start() {
  sink_dir=$work/sink-$1
  sink_out=$sink_dir.out
  mkdir -p "$sink_dir"
  chown nobody "$sink_dir"
  sink_port=$(helper free-port "$SINK_ADDR")
  # %H%M%S/: a directory per second, so that the 32-bit random suffixes of
  # one second's files cannot plausibly collide.
  "$SMTP_SINK" -c -u nobody -d "$sink_dir/%H%M%S/m." "$SINK_ADDR:$sink_port" 1024 \
    >"$sink_out" 2>"$sink_dir.err" </dev/null &
  sink_pid=$!
  other_pids+=("$sink_pid")
  helper probe "$sink_port" 20 "$SINK_ADDR" || { fail "$1: smtp-sink did not answer on $SINK_ADDR:$sink_port: $(tail -3 "$sink_dir.err" | tr '\n' ' ')"; return 1; }
}
sink_stop() { stop_pid "$sink_pid"; sink_pid=; }
# sink_count: messages the sink has received so far (its last mesg= counter).
sink_count() {
  local n
  n=$(tail -c 120 "$sink_out" 2>/dev/null | tr '\r' '\n' | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1)
  echo "${n:-0}"
}
sink_cpu() { helper cpu "$sink_pid"; }

# wait_arrived NAME BAD_FN: after smtp-source, waits until the sink has
# received N messages and sets t_end to that moment. BAD_FN (every 2 s)
# prints what went wrong (a deferral, a dead server) or nothing; no new
# arrival for STALL seconds is a failure. False (after fail) when not all
# arrived.
wait_arrived() {
  local name=$1 bad_fn=$2 i=0 bad got last=-1 last_change
  last_change=$(now)
  while :; do
    got=$(sink_count)
    if ((got >= N)); then
      t_end=$(now)
      return 0
    fi
    if ((i % 20 == 0)); then
      bad=$($bad_fn)
      [ -z "$bad" ] || { fail "$name: $bad"; return 1; }
      kill -0 "$sink_pid" 2>/dev/null || { fail "$name: smtp-sink is gone: $(tail -3 "$sink_dir.err" | tr '\n' ' ')"; return 1; }
    fi
    if [ "$got" != "$last" ]; then
      last=$got
      last_change=$(now)
    elif (($(calc "$(now) - $last_change >= $STALL" 0))); then
      fail "$name: no message arrived at the sink for $STALL s; $got of $N arrived"
      return 1
    fi
    i=$((i + 1))
    sleep 0.1
  done
}

# relay_load NAME PORT FN: smtp-source against 127.0.0.1:PORT, then waits
# until the sink has received N messages. Sets elapsed and rate (from the
# start of smtp-source to the Nth arrival), relay_ms and sink_ms: the CPU
# milliseconds per message the relay (FN_cpu) and the sink used meanwhile.
relay_load() {
  local cpu_fn=$3_cpu cpu0 sink0
  cpu0=$($cpu_fn)
  sink0=$(sink_cpu)
  run_source "$1" "$2" || { fail "$1: smtp-source reported an error"; return 1; }
  say "  smtp-source done after $(calc "$t1 - $t0" 3) s; waiting for the sink to receive all $N"
  wait_arrived "$1" "$3_bad" || return 1
  elapsed=$(calc "$t_end - $t0" 3)
  rate=$(calc "$N / ($t_end - $t0)" 0)
  relay_ms=$(calc "($($cpu_fn) - $cpu0) * 1000 / $N" 2)
  sink_ms=$(calc "($(sink_cpu) - $sink0) * 1000 / $N" 2)
  say "  $N messages at the sink $elapsed s after the first was sent: $rate messages/s (load average $load_before before, $(loadavg) after)"
  say "  CPU per message: $1 $relay_ms ms, the sink $sink_ms ms"
}

# sink_check NAME: once the relay has passed everything on, the sink must
# hold exactly N messages, every one with a DKIM-Signature field, and
# BENCH_SAMPLE of them (the first, the last and some between) must verify
# with dkimpy against the record keygen printed. Sets verified ("k of n").
sink_check() {
  local name=$1 got files signed out
  sleep 0.3 # the last dump file closed
  got=$(sink_count)
  files=$(find "$sink_dir" -type f | wc -l)
  signed=$(find "$sink_dir" -type f -print0 | xargs -0 -r grep -l -i '^DKIM-Signature:' | wc -l)
  say "  sink: $got messages received, $files dumped, $signed of them with a DKIM-Signature"
  ((got == N)) || fail "$name: the sink received $got messages, not $N"
  ((files == N)) || fail "$name: the sink dumped $files messages, not $N"
  ((signed == files)) || fail "$name: $((files - signed)) of $files messages at the sink carry no DKIM-Signature"
  out=$(find "$sink_dir" -type f | sort | "$PY" "$here/dkim_relay_verify.py" "$keydir/record.txt" "$DOMAIN" "$SELECTOR" "$SAMPLE" 2>&1)
  local rc=$?
  say "$out" | sed 's/^/  dkimpy: /'
  verified=$(sed -n 's/^verified \([0-9]* of [0-9]*\).*/\1/p' <<<"$out" | tail -1)
  ((rc == 0)) || fail "$name: a signature at the sink did not verify with dkimpy (the benchmark is broken)"
}

# ------------------------------------------------------ Postfix + OpenDKIM ---
pf_rate='' pf_ms='' pf_elapsed='' pf_verified=''
pf_port=$(helper free-port)
od_port=$(helper free-port)
od_dir=$work/opendkim
od_pid=
pf_maxproc=$((SESSIONS + DEST_CONC + 100))
mkdir -p "$od_dir"
# The key as keygen wrote it (PKCS#8 PEM, which OpenDKIM reads as it is),
# owned by the user OpenDKIM runs as, 0600.
cp "$keydir/s1.pem" "$od_dir/s1.pem"
chown opendkim:opendkim "$od_dir" "$od_dir/s1.pem"
chmod 600 "$od_dir/s1.pem"
cat >"$od_dir/opendkim.conf" <<EOF
# Private benchmark instance made by bench/dkim_relay.sh: sign only.
Mode                 s
Domain               $DOMAIN
Selector             $SELECTOR
KeyFile              $od_dir/s1.pem
Canonicalization     relaxed/relaxed
SignatureAlgorithm   rsa-sha256
Socket               inet:$od_port@127.0.0.1
UserID               opendkim:opendkim
InternalHosts        127.0.0.0/8
Syslog               no
LogWhy               no
# The key lives under /tmp (mode 1777), which OpenDKIM's path check rejects.
RequireSafeKeys      false
EOF
pf_create "$pf_dir" relay.$DOMAIN 127.0.0.1 bench/dkim_relay.sh
pf_sink_main_cf() {
  cat <<EOF
# The relay: everything to the sink (TLS when offered: the sink offers none),
# queue on disk, every message through OpenDKIM; the queue manager's defaults
# otherwise (slow start, in_flow_delay).
relayhost = [$SINK_ADDR]:$1
default_transport = smtp
relay_transport = smtp
smtp_tls_security_level = may
default_destination_concurrency_limit = $DEST_CONC
qmgr_clog_warn_time = 0
default_process_limit = $pf_maxproc
smtpd_milters = inet:127.0.0.1:$od_port
non_smtpd_milters = inet:127.0.0.1:$od_port
milter_default_action = tempfail
EOF
}
pf_master_cf "$pf_dir" "127.0.0.1:$pf_port inet n - n - $((SESSIONS + 20)) smtpd"
pf_queue_dirs=("$pf_dir/queue/maildrop" "$pf_dir/queue/incoming" "$pf_dir/queue/active" "$pf_dir/queue/deferred"
  "$pf_dir/queue/hold" "$pf_dir/queue/corrupt")
pf_cpu() { calc "$(helper cpu-postfix "$pf_dir/etc") + $(helper cpu "$od_pid")" 2; }
pf_bad() {
  local line
  if ! pf_master_pid "$pf_dir" >/dev/null; then
    echo "its master process is gone"
  elif ! kill -0 "$od_pid" 2>/dev/null; then
    echo "opendkim is gone: $(tail -3 "$od_dir/opendkim.log" | tr '\n' ' ')"
  elif [ -n "$(find "$pf_dir/queue/deferred" -type f -print -quit 2>/dev/null)" ]; then
    line=$(grep -m1 -E ' status=(deferred|bounced)' "$pf_dir/maillog")
    echo "deferred mail (${line#*: }); see $pf_dir/maillog"
  elif line=$(grep -m1 -E 'milter-reject|warning: milter' "$pf_dir/maillog"); then
    echo "the milter failed: ${line#*: }"
  fi
}

say ""
say "== Postfix $(postconf -d -h mail_version 2>/dev/null) + OpenDKIM relaying from 127.0.0.1:$pf_port to [$SINK_ADDR] (smtpd_milters = inet:127.0.0.1:$od_port, milter_default_action = tempfail)"
if ! sink_start postfix; then
  :
else
  pf_sink_main_cf "$sink_port" >>"$pf_dir/etc/main.cf"
  "$OPENDKIM" -f -x "$od_dir/opendkim.conf" >"$od_dir/opendkim.log" 2>&1 </dev/null &
  od_pid=$!
  other_pids+=("$od_pid")
  od_up=0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$od_pid" 2>/dev/null || break
    if (echo >"/dev/tcp/127.0.0.1/$od_port") 2>/dev/null; then od_up=1; break; fi
    sleep 0.1
  done
  if ((!od_up)); then
    fail "opendkim did not listen on 127.0.0.1:$od_port: $(tail -3 "$od_dir/opendkim.log" | tr '\n' ' ')"
  elif ! pf_start "$pf_dir" 127.0.0.1 "$pf_port"; then
    fail "Postfix did not start"
  else
    say "  opendkim $od_pid: Mode s, d=$DOMAIN s=$SELECTOR, relaxed/relaxed, rsa-sha256, KeyFile = the PKCS#8 PEM of dkim keygen"
    od_cpu0=$(helper cpu "$od_pid")
    if relay_load Postfix "$pf_port" pf; then
      pf_elapsed=$elapsed
      pf_rate=$rate
      od_ms=$(calc "($(helper cpu "$od_pid") - $od_cpu0) * 1000 / $N" 2)
      say "  of which opendkim: $od_ms ms"
      pf_ms="$relay_ms ms, Postfix and opendkim together, opendkim $od_ms ms of it (the sink: $sink_ms ms)"
      for ((i = 0; i < 100; i++)); do
        [ -z "$(find "${pf_queue_dirs[@]}" -type f -print -quit 2>/dev/null)" ] && break
        sleep 0.1
      done
      pf_sent_check "$pf_dir/maillog" Postfix || pf_rate=
      sink_check "Postfix + OpenDKIM"
      pf_verified=$verified
    fi
  fi
  pf_log_problems "$pf_dir/maillog" "Postfix (relay)"
  pf_stop "$pf_dir"
  stop_pid "$od_pid"
  sink_stop
fi

# -------------------------------------------------------------- sealgate ---
sg_rate='' sg_ms='' sg_elapsed='' sg_verified=''
sg_dir=$work/sealgate
sg_log=$sg_dir/sealgate.log
fresh_fs sealgate
cat >"$sg_dir/policy.yaml" <<EOF
# Opportunistic, as Postfix's smtp_tls_security_level = may: TLS when the MX
# offers it (the sink does not), clear text otherwise.
rules:
  - name: default
    methods: [plain]
    on_failure: defer
EOF
sg_cpu() { helper cpu "$sg_pid"; }
sg_bad() { sg_relay_problem "$sg_log"; }
sql() { sqlite3 -readonly -cmd '.timeout 10000' "$sg_dir/sealgate.db" "$1"; }

dns_port=$(helper free-port)
say ""
say "== DNS: unbound on 127.0.0.1:$dns_port ($RCPT_DOMAIN MX 10 mx.$RCPT_DOMAIN, mx.$RCPT_DOMAIN A $SINK_ADDR)"
dns_start "$dns_dir" "$dns_port" \
  "local-zone: \"$RCPT_DOMAIN.\" static" \
  "local-data: \"$RCPT_DOMAIN. 3600 IN SOA ns.$RCPT_DOMAIN. hostmaster.$RCPT_DOMAIN. 1 3600 600 86400 3600\"" \
  "local-data: \"$RCPT_DOMAIN. 3600 IN MX 10 mx.$RCPT_DOMAIN.\"" \
  "local-data: \"mx.$RCPT_DOMAIN. 3600 IN A $SINK_ADDR\"" \
  "local-zone: \"$DOMAIN.\" static" \
  "local-data: \"$DOMAIN. 3600 IN SOA ns.$DOMAIN. hostmaster.$DOMAIN. 1 3600 600 86400 3600\""

say ""
say "== sealgate relaying to $RCPT_DOMAIN (MX $SINK_ADDR), policy methods: [plain], dkim.keys: d=$DOMAIN s=$SELECTOR (the same PEM)"
say "  queue: {concurrency: $CONC, destination_concurrency: $DEST_CONC}, threads: default ($(nproc)), signing: its own pool"
if sink_start sealgate; then
  sg_port=$(helper free-port)
  cat >"$sg_dir/sealgate.yaml" <<EOF
hostname: gw.$DOMAIN
listeners:
  - {name: bench, address: 127.0.0.1, port: $sg_port, tls: none, auth: none}
relay: {networks: [127.0.0.0/8]}
spool: $sg_dir/spool
database: $sg_dir/sealgate.db
policy_file: policy.yaml
limits: {connections: $((SESSIONS + 100))}
dns: {servers: ["127.0.0.1:$dns_port"]}
delivery: {port: $sink_port}
queue: {concurrency: $CONC, destination_concurrency: $DEST_CONC}
dkim:
  keys:
    - {domain: $DOMAIN, selector: $SELECTOR, private_key: $keydir/s1.pem}
EOF
  if ! dns_wait "$sg_dir/sealgate.yaml" "$RCPT_DOMAIN"; then
    : # dns_wait has said why
  elif ! sg_start "$work/sealgate.bin" "$sg_dir/sealgate.yaml" "$sg_log" "$sg_port"; then
    fail "sealgate did not start: $sg_why"
  else
    say "  listening on 127.0.0.1:$sg_port; sink on $SINK_ADDR:$sink_port"
    if relay_load sealgate "$sg_port" sg; then
      sg_elapsed=$elapsed
      sg_rate=$rate
      sg_ms="$relay_ms ms (the sink: $sink_ms ms)"
      # The records commit before the queue files go.
      for ((i = 0; i < 300; i++)); do
        [ -z "$(find "$sg_dir/spool/queue" "$sg_dir/spool/incoming" -type f -print -quit 2>/dev/null)" ] && break
        sleep 0.1
      done
      statuses=$(sql "SELECT status || '=' || count(*) FROM recipients GROUP BY status ORDER BY status" | tr '\n' ' ')
      delivered=$(sql "SELECT count(*) FROM recipients WHERE status = 'delivered'")
      say "  database: recipients by status: ${statuses:-none}"
      [ "$delivered" = "$N" ] || { fail "sealgate: $delivered of $N recipients delivered ($statuses)"; sg_rate=; }
      sink_check sealgate
      sg_verified=$verified
    fi
    sg_stop || fail "$sg_why"
    sg_log_problems "$sg_log"
  fi
  sink_stop
fi

# ---------------------------------------------------------------- summary ---
say ""
say "== summary, part 1 ($N x $msg_bytes-byte messages, $SESSIONS smtp-source sessions, DKIM RSA-${key_bits:-?} relaxed/relaxed, to one smtp-sink, $DEST_CONC connections to it at most)"
printf '  %-44s %s\n' "Postfix + OpenDKIM relayed messages/s:" "${pf_rate:-n/a}${pf_rate:+  ($pf_elapsed s)}"
printf '  %-44s %s\n' "sealgate relayed messages/s:" "${sg_rate:-n/a}${sg_rate:+  ($sg_elapsed s)}"
printf '  %-44s %s\n' "ratio sealgate / (Postfix + OpenDKIM):" "$(ratio_of "$sg_rate" "$pf_rate")  (issue 15 target: at least 3)"
printf '  %-44s %s\n' "Postfix + OpenDKIM CPU per message:" "${pf_ms:-n/a}"
printf '  %-44s %s\n' "sealgate CPU per message:" "${sg_ms:-n/a}"
printf '  %-44s %s\n' "dkimpy verified (sample at the sink):" "Postfix + OpenDKIM ${pf_verified:-n/a}, sealgate ${sg_verified:-n/a}"
if [ "$DO_SIGN" = 1 ]; then
  say ""
  say "== summary, part 2 (one thread, RSA-${key_bits:-?}, per second of CPU time, $SIGN_SECONDS s per figure)"
  printf '  %-44s %s\n' "openssl speed rsa2048 sign/s:" "${ossl_sign:-n/a}  (mean of ${ossl_a:-n/a} and ${ossl_b:-n/a})"
  printf '  %-44s %s\n' "dkim_private_key::sign (600 bytes)/s:" "${db_sign:-n/a}"
  printf '  %-44s %s\n' "outgoing_finisher::finish (4 KiB)/s:" "${db_finish:-n/a}"
  r1=n/a r2=n/a
  [ -n "$ossl_sign" ] && [ -n "$db_sign" ] && r1=$(calc "$ossl_sign / $db_sign" 2)
  [ -n "$ossl_sign" ] && [ -n "$db_finish" ] && r2=$(calc "$ossl_sign / $db_finish" 2)
  printf '  %-44s %s\n' "ratio openssl sign/s / sign()/s:" "$r1"
  printf '  %-44s %s\n' "ratio openssl sign/s / finish()/s:" "$r2  (issue 15 target: at most 1.2)"
fi
finish_summary 44 "$load_start"
