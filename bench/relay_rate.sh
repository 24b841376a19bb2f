#!/usr/bin/env bash
# bench/relay_rate.sh: relay rate of sealgate against Postfix on the same
# machine, in one run: the same smtp-source load, relayed by each to the same
# STARTTLS sink with forced TLS (issue 4's delivery benchmark).
#
#   1. sink: a private Postfix smtpd on 127.0.6.1 with STARTTLS (a certificate
#      made here with openssl) that accepts every message with 250 and throws
#      it away (DISCARD), so that it costs both relays the same.
#   2. Postfix as the relay: a second private instance on 127.0.0.1, queue on
#      disk, relayhost = the sink, smtp_tls_security_level = encrypt. Rate = N
#      / (from the start of smtp-source until its queue is empty and its log
#      says status=sent N times).
#   3. sealgate as the relay: listener on 127.0.0.1, a local unbound answering
#      bench.test MX -> mx.bench.test A 127.0.6.1, delivery.port = the sink's
#      port, a policy with one rule `methods: [tls]`, TLS 1.2 or better,
#      certificate not verified (the same requirement as Postfix's encrypt).
#      Rate = N / (from the start of smtp-source until spool/queue/ is empty
#      and the database records every recipient as delivered over TLS).
#      Then its peak memory (VmHWM) and resident memory (VmRSS).
#   4. idle connections: a fresh sealgate holds BENCH_IDLE (10000) silent
#      connections (banner read, then nothing); one more must still get 220.
#      Memory per idle connection = VmRSS growth / BENCH_IDLE.
#
# Timing never fails the script. It exits 1 only when something broke: a
# message lost, bounced or deferred, a server that did not start, smtp-source
# reporting an error, a relay that stopped making progress, a refused idle
# connection.
#
# Usage (as root: Postfix instances need root to start):
#   bench/relay_rate.sh
#   BENCH_MESSAGES=2000 BENCH_IDLE=1000 bench/relay_rate.sh   # quick run
# Settings (environment):
#   BENCH_MESSAGES     messages per relay                          (20000)
#   BENCH_SESSIONS     parallel SMTP sessions (smtp-source -s)      (20)
#   BENCH_SIZE         payload bytes per message (-l)              (4096)
#   BENCH_IDLE         idle connections held open to sealgate      (10000)
#   BENCH_DEST_CONCURRENCY  connections to the sink at once, for both relays:
#                      Postfix default_destination_concurrency_limit and
#                      sealgate queue.destination_concurrency       (20)
#   BENCH_CONCURRENCY  sealgate queue.concurrency: messages in delivery at
#                      once over all destinations                  (100)
#   BENCH_PF_TLS_REUSE 1: Postfix reuses TLS connections to the sink
#                      (smtp_tls_connection_reuse, through tlsproxy)  (0)
#   SEALGATE           the binary                  (build/gateway/sealgate)
#   BENCH_TMPDIR       where the temporary directory goes; must be a real
#                      disk file system (both relays fsync their queues)   (/tmp)
#   BENCH_TIMEOUT      seconds one smtp-source run may take            (600)
#   BENCH_STALL        seconds without progress after which a relay counts as
#                      stuck (a failure)                               (120)
#   BENCH_KEEP         1: keep the temporary directory (logs, queues, database)
#   BENCH_SPOOL_SYNC   sealgate's spool_sync: journal (default), file or filesystem
#   BENCH_METRICS      1: relay the same load once more through a fresh sealgate
#                      with its status listener on (metrics:) and /metrics
#                      scraped every second (Prometheus scrapes every 15-60 s),
#                      and print the rate with metrics beside the rate without (0)
#   BENCH_BASELINE     another sealgate binary (a build of an earlier commit):
#                      relay the same load once more through it, on a fresh file
#                      system, and print its rate and CPU per message beside
#                      SEALGATE's (issue 17: the audit chain's cost, with
#                      BENCH_BASELINE built from the commit before it)      (none)
# shellcheck disable=SC2317  # functions called by name through wait_drained and the EXIT trap
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

N=${BENCH_MESSAGES:-20000}
SESSIONS=${BENCH_SESSIONS:-20}
SIZE=${BENCH_SIZE:-4096}
IDLE=${BENCH_IDLE:-10000}
DEST_CONC=${BENCH_DEST_CONCURRENCY:-20}
CONC=${BENCH_CONCURRENCY:-100}
PF_TLS_REUSE=${BENCH_PF_TLS_REUSE:-0}
SEALGATE=${SEALGATE:-$repo/build/gateway/sealgate}
TMPPARENT=${BENCH_TMPDIR:-/tmp}
KEEP=${BENCH_KEEP:-0}
SPOOL_SYNC=${BENCH_SPOOL_SYNC:-journal}
LOAD_TIMEOUT=${BENCH_TIMEOUT:-600}
STALL=${BENCH_STALL:-120}
METRICS=${BENCH_METRICS:-0}
BASELINE=${BENCH_BASELINE:-}
PY=/usr/bin/python3
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
SINK_ADDR=127.0.6.1 # everything here is on 127.0.6.0/24 and 127.0.0.1
DOMAIN=bench.test
SENDER=sender@example.org
RCPT=rcpt@$DOMAIN

bench_name=relay_rate
sg_pid=
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

for v in N SESSIONS SIZE IDLE DEST_CONC CONC LOAD_TIMEOUT STALL; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a whole number"
done
((N > 0 && SESSIONS > 0 && DEST_CONC > 0 && CONC > 0)) ||
  die "BENCH_MESSAGES, BENCH_SESSIONS, BENCH_DEST_CONCURRENCY and BENCH_CONCURRENCY must be at least 1"
((DEST_CONC <= CONC)) || die "BENCH_DEST_CONCURRENCY ($DEST_CONC) must not exceed BENCH_CONCURRENCY ($CONC)"
case $PF_TLS_REUSE in 0 | 1) ;; *) die "BENCH_PF_TLS_REUSE=$PF_TLS_REUSE (valid: 0, 1)" ;; esac
check_tools "$SEALGATE" "$SMTP_SOURCE"
[ -x "$UNBOUND" ] || die "unbound not found (scripts/setup.sh installs it)"
command -v sqlite3 >/dev/null || die "sqlite3 not found (scripts/setup.sh installs it)"
command -v openssl >/dev/null || die "openssl not found"
warn_if_stale "$SEALGATE" "$repo"

# The idle test holds BENCH_IDLE sockets in this script's helper and as many in
# sealgate, which inherits the limit.
raise_fd_limit $((IDLE + SESSIONS + 1024))
if (($(ulimit -n) < IDLE + 256)); then
  IDLE=$(($(ulimit -n) - 256))
  warn "open-file limit $(ulimit -n) (hard $(ulimit -Hn)): holding only $IDLE idle connections"
fi

install_cleanup
make_work "$SEALGATE" "$repo"
sink_dir=$work/sink
pf_dir=$work/postfix
fresh_fs postfix
dns_dir=$work/dns
pf_dirs=("$pf_dir" "$sink_dir")

started=$(now)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
source_args=(-c -s "$SESSIONS" -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT")

# wait_drained NAME DONE_FN BAD_FN LEFT_FN: after smtp-source, waits until
# DONE_FN succeeds (called every 0.1 s, so it must be cheap) and sets t_end to
# that moment. BAD_FN (every 2 s) prints what went wrong (a deferral, a
# bounce, a dead server) or nothing; LEFT_FN (every 5 s) prints how many
# messages are left, to notice a relay that stopped: no change for STALL
# seconds is a failure. False (after fail) when it did not drain.
wait_drained() {
  local name=$1 done_fn=$2 bad_fn=$3 left_fn=$4 i=0 bad left last=-1 last_change
  last_change=$(now)
  while :; do
    if $done_fn; then
      t_end=$(now)
      return 0
    fi
    if ((i % 20 == 0)); then
      bad=$($bad_fn)
      [ -z "$bad" ] || { fail "$name: $bad"; return 1; }
    fi
    if ((i % 50 == 0)); then
      left=$($left_fn)
      if [ "$left" != "$last" ]; then
        last=$left
        last_change=$(now)
      elif (($(calc "$(now) - $last_change >= $STALL" 0))); then
        fail "$name: no progress for $STALL s, $left messages still queued"
        return 1
      fi
    fi
    i=$((i + 1))
    sleep 0.1
  done
}
# relay_load NAME PORT FN: smtp-source against 127.0.0.1:PORT, then waits
# (wait_drained with FN_done, FN_bad, FN_left) until the relay has passed
# everything on. Sets elapsed and rate (from the start of smtp-source to
# then), sink_before, and relay_ms and sink_ms: the CPU milliseconds per
# message that the relay (FN_cpu: its CPU seconds so far) and the sink used
# meanwhile. False, after fail, when something broke.
relay_load() {
  local left_fn=$3_left cpu_fn=$3_cpu cpu0 sink0
  sink_before=$(sink_counts)
  cpu0=$($cpu_fn)
  sink0=$(sink_cpu)
  run_source "$1" "$2" || { fail "$1: smtp-source reported an error"; return 1; }
  say "  smtp-source done after $(calc "$t1 - $t0" 3) s; waiting for $1 to pass everything on"
  wait_drained "$1" "$3_done" "$3_bad" "$left_fn" || { say "  $($left_fn) messages still queued"; return 1; }
  elapsed=$(calc "$t_end - $t0" 3)
  rate=$(calc "$N / ($t_end - $t0)" 0)
  relay_ms=$(calc "($($cpu_fn) - $cpu0) * 1000 / $N" 2)
  sink_ms=$(calc "($(sink_cpu) - $sink0) * 1000 / $N" 2)
  say "  $N messages relayed in $elapsed s: $rate messages/s (load average $load_before before, $(loadavg) after)"
  say "  CPU per message: $1 $relay_ms ms, the sink $sink_ms ms"
}
# empty_dirs DIR...: true when no regular file is below any of them.
empty_dirs() { [ -z "$(find "$@" -type f -print -quit 2>/dev/null)" ]; }
count_files() { find "$@" -type f 2>/dev/null | wc -l; }
# vm FIELD PID: a VmXXX value (KiB) from /proc/PID/status.
vm() { sed -n "s/^$1:[[:space:]]*\\([0-9]*\\) kB/\\1/p" "/proc/$2/status"; }

say "relay_rate: $N messages of $SIZE bytes, $SESSIONS parallel sessions (one message per SMTP session), relayed with forced TLS to a Postfix sink"
say "  machine: $(nproc) CPUs, $(uname -r), work directory $work ($fstype); $([ "${BENCH_FRESH_FS:-1}" = 1 ] && echo "each server's queue on a fresh journaled ext4 (loop)" || echo "queues in the work directory")"
say "  load average now: $load_start (anything well above 0 on $(nproc) CPUs makes the rates noisy)"
say "  sealgate: $SEALGATE (built $sg_built; tree $sg_rev); Postfix $(postconf -d -h mail_version 2>/dev/null); $($UNBOUND -V 2>/dev/null | head -1)"

# ------------------------------------------------------------------- sink ---
# DISCARD as a client restriction: smtpd still runs the whole transaction
# (STARTTLS, MAIL, RCPT, DATA, the content through cleanup) and answers 250,
# but cleanup removes the queue file instead of fsyncing and queueing it, so
# nothing is fsync'd and nothing is delivered: the sink's cost per message is the
# TLS handshake and the SMTP dialogue, the same for both relays. (smtp-sink
# would be cheaper still, but it has no STARTTLS.)
sink_port=$(helper free-port "$SINK_ADDR")
sink_maxproc=$((CONC + 20))
# inet_interfaces must name an address some interface has (lo has 127.0.0.1/8,
# not 127.0.6.1 itself); the smtpd service in master.cf binds 127.0.6.1.
pf_create "$sink_dir" mx.$DOMAIN 127.0.0.1 bench/relay_rate.sh
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=mx.$DOMAIN" \
  -addext "subjectAltName=DNS:mx.$DOMAIN" -keyout "$sink_dir/key.pem" -out "$sink_dir/cert.pem" \
  >"$sink_dir/openssl.log" 2>&1 || die "openssl could not make the sink's certificate: $(tail -3 "$sink_dir/openssl.log")"
chmod 600 "$sink_dir/key.pem"
cat >>"$sink_dir/etc/main.cf" <<EOF
# The sink: STARTTLS offered, every message accepted and thrown away.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $sink_dir/cert.pem
smtpd_tls_key_file = $sink_dir/key.pem
# One line per TLS session: how the script counts them.
smtpd_tls_loglevel = 1
smtpd_client_restrictions = check_client_access static:DISCARD
in_flow_delay = 0
default_process_limit = $sink_maxproc
EOF
pf_master_cf "$sink_dir" "$SINK_ADDR:$sink_port inet n - n - $sink_maxproc smtpd"

# sink_counts: "TLS-sessions discarded-messages" so far, from the sink's log.
sink_counts() {
  awk '/TLS connection established from/ { t++ } /: discard: / { d++ } END { print t + 0, d + 0 }' \
    "$sink_dir/maillog" 2>/dev/null || echo "0 0"
}
sink_cpu() { helper cpu-postfix "$sink_dir/etc"; }
# sink_check NAME BEFORE: the sink must have discarded N more messages.
sink_check() {
  local after tls msgs
  after=$(sink_counts)
  tls=$((${after% *} - ${2% *}))
  msgs=$((${after#* } - ${2#* }))
  say "  sink: $msgs messages received and discarded over $tls TLS sessions"
  ((msgs == N)) || fail "$1: the sink received $msgs of $N messages"
}

say ""
say "== sink: Postfix smtpd on $SINK_ADDR:$sink_port with STARTTLS (self-signed P-256 certificate), every message discarded"
pf_start "$sink_dir" "$SINK_ADDR" "$sink_port" || die "the sink did not start"

# ---------------------------------------------------------------- Postfix ---
pf_rate=
pf_ms=
pf_port=$(helper free-port)
pf_maxproc=$((SESSIONS + DEST_CONC + 100))
pf_create "$pf_dir" relay.$DOMAIN 127.0.0.1 bench/relay_rate.sh
cat >>"$pf_dir/etc/main.cf" <<EOF
# The relay: everything to the sink, TLS or nothing (not verified, like
# sealgate's verify: none), queue on disk, the queue manager's defaults
# otherwise (slow start from initial_destination_concurrency, in_flow_delay).
relayhost = [$SINK_ADDR]:$sink_port
default_transport = smtp
relay_transport = smtp
smtp_tls_security_level = encrypt
smtp_tls_mandatory_protocols = >=TLSv1.2
default_destination_concurrency_limit = $DEST_CONC
# One destination takes the whole active queue here, by design: no warnings
# about it (they change nothing else).
qmgr_clog_warn_time = 0
default_process_limit = $pf_maxproc
EOF
pf_services=("127.0.0.1:$pf_port inet n - n - $((SESSIONS + 20)) smtpd")
if [ "$PF_TLS_REUSE" = 1 ]; then
  echo "smtp_tls_connection_reuse = yes" >>"$pf_dir/etc/main.cf"
  pf_services+=("tlsproxy  unix  -       -       n       -       0       tlsproxy")
fi
pf_master_cf "$pf_dir" "${pf_services[@]}"

pf_queue_dirs=("$pf_dir/queue/maildrop" "$pf_dir/queue/incoming" "$pf_dir/queue/active" "$pf_dir/queue/deferred"
  "$pf_dir/queue/hold" "$pf_dir/queue/corrupt")
pf_cpu() { helper cpu-postfix "$pf_dir/etc"; }
pf_done() { empty_dirs "${pf_queue_dirs[@]}"; }
pf_left() { count_files "${pf_queue_dirs[@]}"; }
pf_bad() {
  local line
  if ! pf_master_pid "$pf_dir" >/dev/null; then
    echo "its master process is gone"
  elif ! empty_dirs "$pf_dir/queue/deferred"; then
    line=$(grep -m1 -E ' status=(deferred|bounced)' "$pf_dir/maillog")
    echo "deferred mail (${line#*: }); see $pf_dir/maillog"
  fi
}

say ""
say "== Postfix $(postconf -d -h mail_version 2>/dev/null) relaying from 127.0.0.1:$pf_port to [$SINK_ADDR]:$sink_port (smtp_tls_security_level = encrypt$([ "$PF_TLS_REUSE" = 1 ] && echo ", smtp_tls_connection_reuse = yes"))"
if ! pf_start "$pf_dir" 127.0.0.1 "$pf_port"; then
  fail "Postfix did not start"
else
  if relay_load Postfix "$pf_port" pf; then
    pf_elapsed=$elapsed
    pf_rate=$rate
    pf_ms="$relay_ms ms (the sink: $sink_ms ms)"
    pf_sent_check "$pf_dir/maillog" Postfix || pf_rate=
    sink_check Postfix "$sink_before"
  fi
  pf_log_problems "$pf_dir/maillog" "Postfix (relay)"
  pf_stop "$pf_dir"
fi

# -------------------------------------------------------------- sealgate ---
dns_port=$(helper free-port) # unbound (dns_start), in sealgate.yaml
sg_rate=
sg_ms=
sg_cpu_ms=
sg_hwm=
sg_rss=
sg_kib=
next_reply=
sg_dir=$work/sealgate
sg_log=$sg_dir/sealgate.log
fresh_fs sealgate
# sg_config PORT: the gateway's configuration, listening on 127.0.0.1:PORT.
sg_config() {
  cat <<EOF
hostname: gw.$DOMAIN
listeners:
  - {name: bench, address: 127.0.0.1, port: $1, tls: none, auth: none}
relay: {networks: [127.0.0.0/8]}
spool: $sg_dir/spool
spool_sync: $SPOOL_SYNC
database: $sg_dir/sealgate.db
policy_file: policy.yaml
limits: {connections: $((IDLE + SESSIONS + 100))}
dns: {servers: ["127.0.0.1:$dns_port"]}
delivery: {port: $sink_port}
queue: {concurrency: $CONC, destination_concurrency: $DEST_CONC}
EOF
}
cat >"$sg_dir/policy.yaml" <<EOF
# Forced TLS, as Postfix's smtp_tls_security_level = encrypt: STARTTLS with
# TLS 1.2 or better, certificate not checked; otherwise wait and retry.
rules:
  - name: default
    methods: [tls]
    tls: {min_version: "1.2", verify: none}
    on_failure: defer
EOF
sg_port=$(helper free-port)
sg_config "$sg_port" >"$sg_dir/sealgate.yaml"

sg_cpu() { helper cpu "$sg_pid"; }
sg_done() { empty_dirs "$sg_dir/spool/queue" "$sg_dir/spool/incoming"; }
sg_left() { count_files "$sg_dir/spool/queue" "$sg_dir/spool/incoming"; }
sg_bad() { sg_relay_problem "$sg_log"; }
sql() { sqlite3 -readonly -cmd '.timeout 10000' "$sg_dir/sealgate.db" "$1"; }

say ""
say "== DNS: unbound on 127.0.0.1:$dns_port ($DOMAIN MX 10 mx.$DOMAIN, mx.$DOMAIN A $SINK_ADDR)"
dns_start "$dns_dir" "$dns_port" \
  "local-zone: \"$DOMAIN.\" static" \
  "local-data: \"$DOMAIN. 3600 IN SOA ns.$DOMAIN. hostmaster.$DOMAIN. 1 3600 600 86400 3600\"" \
  "local-data: \"$DOMAIN. 3600 IN MX 10 mx.$DOMAIN.\"" \
  "local-data: \"mx.$DOMAIN. 3600 IN A $SINK_ADDR\""
dns_ok=0
if dns_wait "$sg_dir/sealgate.yaml" "$DOMAIN" "$SINK_ADDR"; then
  dns_ok=1
  say "  sealgate dns lookup: $(tr '\n' ' ' <<<"$dns_answer")"
fi

say ""
say "== sealgate relaying from 127.0.0.1:$sg_port to $DOMAIN (MX $SINK_ADDR:$sink_port), policy methods: [tls], TLS >= 1.2, verify: none"
say "  queue: {concurrency: $CONC, destination_concurrency: $DEST_CONC}, spool_sync: $SPOOL_SYNC, threads: default ($(nproc))"
if ((!dns_ok)); then
  :
elif ! sg_start "$work/sealgate.bin" "$sg_dir/sealgate.yaml" "$sg_log" "$sg_port"; then
  fail "sealgate did not start: $sg_why"
else
  if relay_load sealgate "$sg_port" sg; then
    sg_elapsed=$elapsed
    sg_rate=$rate
    sg_ms="$relay_ms ms (the sink: $sink_ms ms)"
    sg_cpu_ms=$relay_ms
    sg_hwm=$(vm VmHWM "$sg_pid")
    sg_rss=$(vm VmRSS "$sg_pid")
    say "  memory: VmHWM $sg_hwm KiB (peak), VmRSS $sg_rss KiB now"
    # The records commit before the files go, so the database is complete.
    statuses=$(sql "SELECT status || '=' || count(*) FROM recipients GROUP BY status ORDER BY status" | tr '\n' ' ')
    delivered=$(sql "SELECT count(*) FROM recipients WHERE status = 'delivered'")
    total=$(sql "SELECT count(*) FROM recipients")
    over_tls=$(sql "SELECT count(*) FROM recipients WHERE status = 'delivered' AND method = 'tls'
                    AND tls_protocol IN ('TLSv1.2', 'TLSv1.3')")
    protocols=$(sql "SELECT coalesce(tls_protocol, 'none') || '=' || count(*) FROM recipients GROUP BY tls_protocol" | tr '\n' ' ')
    say "  database: recipients by status: ${statuses:-none}; TLS: ${protocols:-none}"
    if [ "$delivered" != "$N" ] || [ "$total" != "$N" ]; then
      fail "sealgate: $delivered of $N recipients delivered ($total recorded: $statuses)"
      sg_rate=
    fi
    [ "$over_tls" = "$N" ] || { fail "sealgate: only $over_tls of $N delivered with method tls over TLS 1.2 or 1.3"; sg_rate=; }
    sink_check sealgate "$sink_before"
  fi
  sg_stop || fail "$sg_why"
  sg_log_problems "$sg_log"

  # Idle connections, on a fresh process and another port (the load's
  # connections from 127.0.0.1 to the first one are still in TIME_WAIT).
  if ((IDLE > 0)); then
    idle_port=$(helper free-port)
    sg_config "$idle_port" >"$sg_dir/sealgate-idle.yaml"
    if ! sg_start "$work/sealgate.bin" "$sg_dir/sealgate-idle.yaml" "$sg_dir/sealgate-idle.log" "$idle_port"; then
      fail "sealgate (idle test) did not start: $sg_why"
    else
      say ""
      say "== sealgate: $IDLE idle connections to 127.0.0.1:$idle_port (limits.connections $((IDLE + SESSIONS + 100)), open-file limit $(ulimit -n)), then one more"
      if idle_test sealgate "$idle_port" "$sg_pid" "$IDLE" 1; then
        ok=$(kv idle_ok "$idle_line")
        before=$(kv before_rss "$idle_line")
        after=$(kv after_rss "$idle_line")
        next_code=$(kv next_code "$idle_line")
        next_reply=$(sed -n 's/^next_reply=//p' <<<"$idle_line")
        if ((ok > 0)); then
          sg_kib=$(calc "($after - $before) / $ok" 1)
          say "  idle: $ok of $IDLE connections got 220 and stayed open; VmRSS $before -> $after KiB: $sg_kib KiB per idle connection"
        fi
        say "  connection $((IDLE + 1)): $next_reply"
        ((ok == IDLE)) || fail "sealgate: only $ok of $IDLE idle connections got a 220 banner"
        [ "$next_code" = 220 ] || fail "sealgate: connection $((IDLE + 1)) got '$next_reply' instead of 220"
      else
        fail "sealgate: idle-connection test failed"
      fi
      sg_stop || fail "$sg_why (idle test)"
      sg_log_problems "$sg_dir/sealgate-idle.log"
    fi
  fi
fi

# ------------------------------------------------- sealgate with metrics ---
# The same relay with the status listener on and scraped every second, on a
# fresh file system of its own: what the counters and the scrapes cost.
sm_rate=
sm_ms=
sm_scrapes=0
if [ "$METRICS" = 1 ] && ((dns_ok)) && [ -n "$sg_rate" ]; then
  sg_dir=$work/sealgate-metrics
  sg_log=$sg_dir/sealgate.log
  fresh_fs sealgate-metrics
  cp "$work/sealgate/policy.yaml" "$sg_dir/policy.yaml"
  metrics_port=$(helper free-port)
  sg_port=$(helper free-port)
  { sg_config "$sg_port"; echo "metrics: {listen: 127.0.0.1, port: $metrics_port}"; } >"$sg_dir/sealgate.yaml"
  say ""
  say "== sealgate again, with metrics on 127.0.0.1:$metrics_port scraped every second"
  if ! sg_start "$work/sealgate.bin" "$sg_dir/sealgate.yaml" "$sg_log" "$sg_port"; then
    fail "sealgate (metrics) did not start: $sg_why"
  else
    "$PY" - "$metrics_port" "$sg_dir/scrapes" <<'PYEOF' &
import sys, time, urllib.request
port, out = sys.argv[1], sys.argv[2]
n = 0
while True:
    with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=5) as r:
        r.read()
    n += 1
    with open(out, "w") as f:
        f.write(str(n))
    time.sleep(1)
PYEOF
    scraper_pid=$!
    other_pids+=("$scraper_pid")
    if relay_load "sealgate+metrics" "$sg_port" sg; then
      sm_rate=$rate
      sm_elapsed=$elapsed
      sm_ms=$relay_ms
    fi
    kill "$scraper_pid" 2>/dev/null
    sm_scrapes=$(cat "$sg_dir/scrapes" 2>/dev/null || echo 0)
    say "  /metrics scraped $sm_scrapes times during the load"
    ((sm_scrapes > 0)) || fail "sealgate (metrics): /metrics never answered"
    sg_stop || fail "$sg_why (metrics)"
    sg_log_problems "$sg_log"
  fi
fi

# ------------------------------------------------------ baseline sealgate ---
# The same relay through another build (BENCH_BASELINE), on a fresh file
# system of its own, with the same configuration.
sb_rate=
sb_ms=
if [ -n "$BASELINE" ] && ((dns_ok)) && [ -n "$sg_rate" ]; then
  [ -x "$BASELINE" ] || die "BENCH_BASELINE=$BASELINE is not an executable"
  cp "$BASELINE" "$work/baseline.bin"
  sg_dir=$work/sealgate-baseline
  sg_log=$sg_dir/sealgate.log
  fresh_fs sealgate-baseline
  cp "$work/sealgate/policy.yaml" "$sg_dir/policy.yaml"
  sg_port=$(helper free-port)
  sg_config "$sg_port" >"$sg_dir/sealgate.yaml"
  say ""
  say "== the baseline sealgate ($BASELINE)"
  if ! sg_start "$work/baseline.bin" "$sg_dir/sealgate.yaml" "$sg_log" "$sg_port"; then
    fail "the baseline sealgate did not start: $sg_why"
  else
    if relay_load "baseline" "$sg_port" sg; then
      sb_rate=$rate
      sb_elapsed=$elapsed
      sb_ms=$relay_ms
    fi
    sg_stop || fail "$sg_why (baseline)"
    sg_log_problems "$sg_log"
  fi
fi

# ---------------------------------------------------------------- summary ---
say ""
say "== summary ($N x $SIZE-byte messages, $SESSIONS smtp-source sessions, forced TLS to one Postfix sink, $DEST_CONC connections to it at most)"
printf '  %-40s %s\n' "Postfix relayed messages/s:" "${pf_rate:-n/a}${pf_rate:+  ($pf_elapsed s)}"
printf '  %-40s %s\n' "sealgate relayed messages/s:" "${sg_rate:-n/a}${sg_rate:+  ($sg_elapsed s)}"
printf '  %-40s %s\n' "ratio sealgate/Postfix:" "$(ratio_of "$sg_rate" "$pf_rate")  (issue 4 target: at least 3)"
printf '  %-40s %s\n' "Postfix CPU per message:" "${pf_ms:-n/a}"
printf '  %-40s %s\n' "sealgate CPU per message:" "${sg_ms:-n/a}"
mib() { [ -n "$1" ] && calc "$1 / 1024" 1 || echo n/a; }
printf '  %-40s %s\n' "sealgate peak memory (VmHWM):" "$(mib "$sg_hwm") MiB  (VmRSS after the load: $(mib "$sg_rss") MiB)"
if ((IDLE > 0)); then
  printf '  %-40s %s\n' "sealgate KiB per idle connection:" "${sg_kib:-n/a}  (VmRSS growth / $IDLE; issue 4 target: at most 64)"
  printf '  %-40s %s\n' "connection $((IDLE + 1)) while $IDLE are idle:" "${next_reply:-n/a}"
fi
if [ "$METRICS" = 1 ]; then
  printf '  %-40s %s\n' "sealgate with metrics, messages/s:" "${sm_rate:-n/a}${sm_rate:+  ($sm_elapsed s, $sm_scrapes scrapes)}"
  printf '  %-40s %s\n' "ratio with/without metrics:" "$(ratio_of "$sm_rate" "$sg_rate")  (issue 16 target: a cost under 3%, ratio 0.97 or more)"
  # The rate moves with whatever else the machine does; CPU per message less so.
  printf '  %-40s %s\n' "CPU per message with/without metrics:" "${sm_ms:-n/a} / ${sg_cpu_ms:-n/a} ms: $(ratio_of "${sm_ms:-}" "${sg_cpu_ms:-}")"
fi
if [ -n "$BASELINE" ]; then
  printf '  %-40s %s\n' "baseline sealgate, messages/s:" "${sb_rate:-n/a}${sb_rate:+  ($sb_elapsed s)}"
  printf '  %-40s %s\n' "ratio sealgate/baseline:" "$(ratio_of "$sg_rate" "$sb_rate")  (issue 17 target: a cost of at most 5%, ratio 0.95 or more)"
  printf '  %-40s %s\n' "CPU per message sealgate/baseline:" "${sg_cpu_ms:-n/a} / ${sb_ms:-n/a} ms: $(ratio_of "${sg_cpu_ms:-}" "${sb_ms:-}")"
fi
finish_summary 40 "$load_start"
