#!/usr/bin/env bash
# bench/accept_rate.sh: message acceptance rate of sealgate against Postfix on
# the same machine, in one run, with the same load generator (smtp-source).
#
#   1. Postfix: a private instance in a temporary directory (its own main.cf,
#      master.cf, queue and data directories), smtpd on 127.0.0.1 only, no DNS,
#      accepted mail kept in the queue (nothing is delivered), then counted.
#   2. sealgate: the same smtp-source command; every message must be in
#      spool/queue/ afterwards. Its queue is paused (accepted mail waits, as in
#      Postfix's hold queue); with POSTFIX_MODE=defer the queue runs instead
#      and a policy that holds every recipient keeps the mail, the counterpart
#      of Postfix's queue manager deferring everything.
#   3. sealgate fsyncs per message: (fdatasync + dir_fsync + syncfs) / commits
#      from the "spool stats" line it logs on SIGTERM.
#   4. memory per idle connection: RSS growth of sealgate with BENCH_IDLE idle
#      connections (banner read, then silence); the same for Postfix's process
#      tree (PSS, because each connection is one smtpd process).
#   5. CPU per message during the load (user + system): sealgate's process; for
#      Postfix every process of the instance plus what its master reaped.
#
# Timing never fails the script. It exits 1 only when something broke: a lost
# message, a server that did not start, smtp-source reporting an error.
#
# Usage (as root: a Postfix instance needs root to start):
#   bench/accept_rate.sh
#   BENCH_MESSAGES=2000 bench/accept_rate.sh        # quick run
# Settings (environment):
#   BENCH_MESSAGES  messages per server                  (20000)
#   BENCH_SESSIONS  parallel SMTP sessions (smtp-source -s) (20)
#   BENCH_SIZE      payload bytes per message (-l)        (4096)
#   BENCH_REUSE     1: several messages per connection (smtp-source -d);
#                   0: one message per connection          (0)
#   BENCH_IDLE      idle connections held open to sealgate (1000)
#   BENCH_PF_IDLE   idle connections to Postfix, 0 skips   (200; one smtpd each)
#   POSTFIX_MODE    hold: accepted mail goes to the hold queue, and sealgate's
#                   queue is paused (default);
#                   defer: Postfix's queue manager runs and defer_transports
#                   keeps the mail queued; sealgate's queue runs and a policy
#                   holds every recipient (status file and records for each)
#   SEALGATE        the binary                (build/gateway/sealgate)
#   BENCH_TMPDIR    where the temporary directory goes; must be a real disk
#                   file system, as the servers' fsyncs are what is measured (/tmp)
#   BENCH_TIMEOUT   seconds one smtp-source run may take before it counts as
#                   hung (a failure)                       (240)
#   BENCH_KEEP      1: keep the temporary directory (logs, queues) for inspection
#   BENCH_SPOOL_SYNC  sealgate's spool_sync: journal (default), file or filesystem
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

N=${BENCH_MESSAGES:-20000}
SESSIONS=${BENCH_SESSIONS:-20}
SIZE=${BENCH_SIZE:-4096}
REUSE=${BENCH_REUSE:-0}
IDLE=${BENCH_IDLE:-1000}
PF_IDLE=${BENCH_PF_IDLE:-200}
PF_MODE=${POSTFIX_MODE:-hold}
SEALGATE=${SEALGATE:-$repo/build/gateway/sealgate}
TMPPARENT=${BENCH_TMPDIR:-/tmp}
KEEP=${BENCH_KEEP:-0}
SPOOL_SYNC=${BENCH_SPOOL_SYNC:-journal}
LOAD_TIMEOUT=${BENCH_TIMEOUT:-240}
PY=/usr/bin/python3
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
SENDER=sender@example.org
RCPT=rcpt@example.com

bench_name=accept_rate
sg_pid=
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

for v in N SESSIONS SIZE IDLE PF_IDLE LOAD_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a whole number"
done
((N > 0 && SESSIONS > 0)) || die "BENCH_MESSAGES and BENCH_SESSIONS must be at least 1"
case $PF_MODE in hold | defer) ;; *) die "POSTFIX_MODE=$PF_MODE (valid: hold, defer)" ;; esac
case $REUSE in 0 | 1) ;; *) die "BENCH_REUSE=$REUSE (valid: 0, 1)" ;; esac
check_tools "$SEALGATE" "$SMTP_SOURCE"
# A binary older than the sources measures old code: say so.
warn_if_stale "$SEALGATE" "$repo"

# 1000 idle sockets on each side need file descriptors.
raise_fd_limit $((IDLE + PF_IDLE + 256))
if (($(ulimit -n) < IDLE + 64)); then
  IDLE=$(($(ulimit -n) - 64))
  warn "open-file limit $(ulimit -n): holding only $IDLE idle connections"
fi

install_cleanup
make_work "$SEALGATE" "$repo"
pf_dir=$work/postfix
fresh_fs postfix
pf_etc=$pf_dir/etc
pf_queue=$pf_dir/queue
pf_dirs=("$pf_dir")

started=$(now)

source_args=(-c -s "$SESSIONS" -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT")
per_session="one message per SMTP session (no -d: a new connection for every message)"
if [ "$REUSE" = 1 ]; then
  source_args=(-c -d -s "$SESSIONS" -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT")
  per_session="several messages per SMTP session (-d: each of the $SESSIONS sessions stays connected)"
fi

# run_load NAME PORT: runs smtp-source, sets elapsed and rate; false on error.
run_load() {
  local ok=0
  run_source "$1" "$2" || ok=1
  elapsed=$(calc "$t1 - $t0" 3)
  rate=$(calc "$N / ($t1 - $t0)" 0)
  say "  $N messages in $elapsed s: $rate messages/s (load average $load_before before, $(loadavg) after)"
  return $ok
}

say "accept_rate: $N messages of $SIZE bytes, $SESSIONS parallel sessions, $per_session"
say "  machine: $(nproc) CPUs, $(uname -r), work directory $work ($fstype); $([ "${BENCH_FRESH_FS:-1}" = 1 ] && echo "each server's queue on a fresh journaled ext4 (loop)" || echo "queues in the work directory")"
say "  load average now: $(cut -d' ' -f1-3 /proc/loadavg) (anything well above 0 on $(nproc) CPUs makes the rates noisy)"
say "  sealgate: $SEALGATE (built $sg_built; tree $sg_rev); Postfix $(postconf -d -h mail_version 2>/dev/null); smtp-source $SMTP_SOURCE"

# ---------------------------------------------------------------- Postfix ---
pf_rate=
pf_ms=
pf_kib=
pf_port=$(helper free-port)
pf_maxproc=$((SESSIONS + PF_IDLE + 20))
pf_create "$pf_dir" bench.test 127.0.0.1 bench/accept_rate.sh
cat >>"$pf_etc/main.cf" <<EOF
# Nothing is delivered: only acceptance is measured.
default_transport = smtp
relay_transport = smtp
default_process_limit = $pf_maxproc
EOF
if [ "$PF_MODE" = hold ]; then
  cat >>"$pf_etc/main.cf" <<'EOF'
# Every accepted message goes to the hold queue (written and fsync'd by cleanup
# like any queue file, then never touched by the queue manager). in_flow_delay
# paces smtpd by the queue manager's progress, and the queue manager has nothing
# to do here: switched off so that it cannot add sleeps.
smtpd_client_restrictions = check_client_access static:HOLD
in_flow_delay = 0
EOF
else
  cat >>"$pf_etc/main.cf" <<'EOF'
# The queue manager runs; every message is deferred (kept in the queue).
defer_transports = smtp, relay
EOF
fi
pf_master_cf "$pf_dir" "127.0.0.1:$pf_port inet n - n - $pf_maxproc smtpd"
postfix_start() { pf_start "$pf_dir" 127.0.0.1 "$pf_port"; }

say ""
say "== Postfix $(postconf -d -h mail_version 2>/dev/null) on 127.0.0.1:$pf_port (private instance, queue mode: $PF_MODE)"
if ! postfix_start; then
  fail "Postfix did not start"
else
  # Memory per idle connection on a fresh instance (no smtpd processes yet).
  if ((PF_IDLE > 0)); then
    master=$(pf_master_pid "$pf_dir")
    if idle_test postfix "$pf_port" "$master" "$PF_IDLE"; then
      ok=$(kv idle_ok "$idle_line")
      d_pss=$(($(kv after_pss "$idle_line") - $(kv before_pss "$idle_line")))
      d_rss=$(($(kv after_rss "$idle_line") - $(kv before_rss "$idle_line")))
      d_procs=$(($(kv after_procs "$idle_line") - $(kv before_procs "$idle_line")))
      if ((ok > 0)); then
        pf_kib=$(calc "$d_pss / $ok" 0)
        say "  idle: $ok of $PF_IDLE connections, +$d_procs processes, PSS +$d_pss KiB (RSS summed +$d_rss KiB): $pf_kib KiB PSS per idle connection"
      fi
      ((ok == PF_IDLE)) || warn "Postfix: only $ok of $PF_IDLE idle connections got a banner"
    fi
    # Restart so that the load does not meet $PF_IDLE idle smtpd processes.
    pf_stop "$pf_dir"
    postfix_start || fail "Postfix did not restart"
  fi
  if master=$(pf_master_pid "$pf_dir"); then
    cpu0=$(helper cpu-postfix "$pf_etc")
    if run_load postfix "$pf_port"; then
      pf_rate=$rate
      pf_elapsed=$elapsed
      pf_ms=$(calc "($(helper cpu-postfix "$pf_etc") - $cpu0) * 1000 / $N" 3)
      say "  CPU per message: $pf_ms ms (every process of the instance, and what its master reaped)"
    else
      fail "Postfix: smtp-source reported an error"
    fi
    # Count what Postfix holds. Defer mode: wait until the queue manager has
    # moved everything out of incoming/ and active/.
    if [ "$PF_MODE" = hold ]; then
      pf_count=$(find "$pf_queue/hold" -type f | wc -l)
    else
      for ((i = 0; i < 600; i++)); do
        moving=$(find "$pf_queue/incoming" "$pf_queue/active" -type f | wc -l)
        ((moving == 0)) && break
        sleep 0.1
      done
      pf_count=$(find "$pf_queue/incoming" "$pf_queue/active" "$pf_queue/deferred" -type f | wc -l)
    fi
    say "  queue: $pf_count messages ($(
      cd "$pf_queue" && for q in incoming active deferred hold; do printf '%s=%s ' $q "$(find $q -type f | wc -l)"; done
    ))"
    ((pf_count == N)) || { fail "Postfix: $pf_count of $N messages in its queue"; pf_rate=; }
    pf_log_problems "$pf_dir/maillog" Postfix
  fi
  pf_stop "$pf_dir"
fi

# --------------------------------------------------------------- sealgate ---
sg_rate=
sg_ms=
sg_kib=
sg_fsyncs=
sg_port=$(helper free-port)
sg_dir=$work/sealgate
fresh_fs sealgate
cat >"$sg_dir/sealgate.yaml" <<EOF
hostname: bench.test
listeners:
  - {name: bench, address: 127.0.0.1, port: $sg_port, tls: none, auth: none}
relay: {networks: [127.0.0.0/8]}
spool: $sg_dir/spool
spool_sync: $SPOOL_SYNC
database: $sg_dir/sealgate.db
limits: {connections: $((IDLE + SESSIONS + 100 > 5000 ? IDLE + SESSIONS + 100 : 5000))}
# Keep every message. POSTFIX_MODE=hold: the queue is paused, as Postfix's
# hold queue is never scanned. defer: the queue runs and the policy holds every
# recipient for an operator. The resolver is a closed port on 127.0.0.1, so
# that nothing is looked up or sent outside this machine.
queue: {paused: $([ "$PF_MODE" = hold ] && echo true || echo false)}
policy_file: policy.yaml
dns: {servers: ["127.0.0.1:$(helper free-port)"], timeout: 2s}
EOF
cat >"$sg_dir/policy.yaml" <<EOF
rules:
  - name: hold-everything
    methods: [hold]
EOF
sg_log=$sg_dir/sealgate.log

say ""
say "== sealgate on 127.0.0.1:$sg_port"
if ! sg_start "$work/sealgate.bin" "$sg_dir/sealgate.yaml" "$sg_log" "$sg_port"; then
  fail "sealgate did not start: $sg_why"
else
  if ((IDLE > 0)); then
    if idle_test sealgate "$sg_port" "$sg_pid" "$IDLE"; then
      ok=$(kv idle_ok "$idle_line")
      before=$(kv before_rss "$idle_line")
      after=$(kv after_rss "$idle_line")
      if ((ok > 0)); then
        sg_kib=$(calc "($after - $before) / $ok" 1)
        say "  idle: $ok of $IDLE connections, VmRSS $before -> $after KiB: $sg_kib KiB per idle connection"
      fi
      ((ok == IDLE)) || fail "sealgate: only $ok of $IDLE idle connections got a 220 banner"
    else
      fail "sealgate: idle-connection test failed"
    fi
  fi
  cpu0=$(helper cpu "$sg_pid")
  if run_load sealgate "$sg_port"; then
    sg_rate=$rate
    sg_elapsed=$elapsed
    sg_ms=$(calc "($(helper cpu "$sg_pid") - $cpu0) * 1000 / $N" 3)
    say "  CPU per message: $sg_ms ms"
  else
    fail "sealgate: smtp-source reported an error"
  fi
  sg_stop || fail "$sg_why"
  sg_count=$(find "$sg_dir/spool/queue" -type f 2>/dev/null | wc -l)
  sg_incoming=$(find "$sg_dir/spool/incoming" -type f 2>/dev/null | wc -l)
  say "  spool: $sg_count messages in queue/, $sg_incoming left in incoming/"
  ((sg_count == N)) || { fail "sealgate: $sg_count of $N messages in spool/queue"; sg_rate=; }
  stats=$(grep -o 'spool stats: .*' "$sg_log" | tail -1)
  if [ -z "$stats" ]; then
    fail "sealgate logged no 'spool stats' line"
  else
    commits=$(kv commits "$stats")
    fds=$(kv fdatasync "$stats")
    dirs=$(kv dir_fsync "$stats")
    fss=$(kv syncfs "$stats")
    fss=${fss:-0}
    # Group commits: journal mode syncs each group's journal append (fdatasync);
    # file mode fsyncs queue/ once per group; filesystem mode does one syncfs.
    case $SPOOL_SYNC in journal) groups=$fds ;; file) groups=$dirs ;; *) groups=$fss ;; esac
    say "  $stats"
    ((commits == N)) || fail "sealgate: spool stats say commits=$commits, expected $N"
    ((commits > 0)) && sg_fsyncs=$(calc "($fds + $dirs + $fss) / $commits" 3) &&
      say "  fsyncs per message: ($fds + $dirs + $fss) / $commits = $sg_fsyncs ($(calc "$commits / ($groups > 0 ? $groups : 1)" 1) messages per group commit)"
  fi
  # Every accepted message also gets an audit record (informational).
  if command -v sqlite3 >/dev/null && [ -f "$sg_dir/sealgate.db" ]; then
    audited=$(sqlite3 "$sg_dir/sealgate.db" 'SELECT count(*) FROM messages' 2>/dev/null || echo '?')
    say "  audit database: $audited message records"
    [ "$audited" = "$N" ] || warn "sealgate: $audited audit records for $N accepted messages"
  fi
  sg_log_problems "$sg_log"
fi

# ---------------------------------------------------------------- summary ---
say ""
say "== summary ($N x $SIZE-byte messages, $SESSIONS sessions, $per_session)"
printf '  %-36s %s\n' "Postfix accepted messages/s:" "${pf_rate:-n/a}${pf_rate:+  ($pf_elapsed s)}"
printf '  %-36s %s\n' "sealgate accepted messages/s:" "${sg_rate:-n/a}${sg_rate:+  ($sg_elapsed s)}"
printf '  %-36s %s\n' "ratio sealgate/Postfix:" "$(ratio_of "$sg_rate" "$pf_rate")"
printf '  %-36s %s\n' "CPU per message, Postfix / sealgate:" "${pf_ms:-n/a} / ${sg_ms:-n/a} ms  (user + system; steadier than the rates on a busy machine)"
printf '  %-36s %s\n' "sealgate fsyncs per message:" "${sg_fsyncs:-n/a}  (Postfix: 1 fsync per queue file, no directory fsync)"
((IDLE > 0)) && printf '  %-36s %s\n' "sealgate KiB per idle connection:" "${sg_kib:-n/a}  (VmRSS growth / $IDLE)"
((PF_IDLE > 0)) && printf '  %-36s %s\n' "Postfix KiB per idle connection:" "${pf_kib:-n/a}  (PSS growth of its process tree / $PF_IDLE; one smtpd per connection)"
finish_summary 36
