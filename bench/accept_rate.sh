#!/usr/bin/env bash
# bench/accept_rate.sh: message acceptance rate of sealgate against Postfix on
# the same machine, in one run, with the same load generator (smtp-source).
#
#   1. Postfix: a private instance in a temporary directory (its own main.cf,
#      master.cf, queue and data directories), smtpd on 127.0.0.1 only, no DNS,
#      accepted mail kept in the queue (nothing is delivered), then counted.
#   2. sealgate: the same smtp-source command; every message must be in
#      spool/queue/ afterwards.
#   3. sealgate fsyncs per message: (fdatasync + dir_fsync) / commits from the
#      "spool stats" line it logs on SIGTERM.
#   4. memory per idle connection: RSS growth of sealgate with BENCH_IDLE idle
#      connections (banner read, then silence); the same for Postfix's process
#      tree (PSS, because each connection is one smtpd process).
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
#   POSTFIX_MODE    hold: accepted mail goes to the hold queue (default);
#                   defer: queue manager runs, defer_transports keeps it queued
#   SEALGATE        the binary                (build/gateway/sealgate)
#   BENCH_TMPDIR    where the temporary directory goes; must be a real disk
#                   file system, as the servers' fsyncs are what is measured (/tmp)
#   BENCH_TIMEOUT   seconds one smtp-source run may take before it counts as
#                   hung (a failure)                       (240)
#   BENCH_KEEP      1: keep the temporary directory (logs, queues) for inspection
#   BENCH_SPOOL_SYNC  sealgate's spool_sync: file (default) or filesystem
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
SPOOL_SYNC=${BENCH_SPOOL_SYNC:-file}
LOAD_TIMEOUT=${BENCH_TIMEOUT:-240}
PY=/usr/bin/python3
SMTP_SOURCE=$(command -v smtp-source || echo /usr/sbin/smtp-source)
POSTFIX=$(command -v postfix || echo /usr/sbin/postfix)
SENDER=sender@example.org
RCPT=rcpt@example.com

say() { printf '%s\n' "$*"; }
warn() { printf 'accept_rate: warning: %s\n' "$*" >&2; }
die() { printf 'accept_rate: FAILED: %s\n' "$*" >&2; exit 1; }

for v in N SESSIONS SIZE IDLE PF_IDLE LOAD_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a whole number"
done
((N > 0 && SESSIONS > 0)) || die "BENCH_MESSAGES and BENCH_SESSIONS must be at least 1"
case $PF_MODE in hold | defer) ;; *) die "POSTFIX_MODE=$PF_MODE (valid: hold, defer)" ;; esac
case $REUSE in 0 | 1) ;; *) die "BENCH_REUSE=$REUSE (valid: 0, 1)" ;; esac
[ "$(id -u)" -eq 0 ] || die "run as root (a private Postfix instance is started as root)"
[ -x "$SEALGATE" ] || die "$SEALGATE not found; build it with scripts/build.sh (or set SEALGATE)"
[ -x "$SMTP_SOURCE" ] || die "smtp-source not found (Debian package postfix; scripts/setup.sh installs it)"
[ -x "$POSTFIX" ] || die "postfix not found (scripts/setup.sh installs it)"
[ -x "$PY" ] || die "$PY not found"
if ! getent passwd postfix >/dev/null || ! getent group postdrop >/dev/null; then
  die "user postfix / group postdrop missing (the postfix package creates them)"
fi

# A binary older than the sources measures old code: say so.
newer=$(find "$repo/gateway" "$repo/crypto" "$repo/policy" "$repo/dns" -newer "$SEALGATE" \
  \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | head -3 | tr '\n' ' ')
[ -z "$newer" ] || warn "$SEALGATE is older than $newer(rebuild with scripts/build.sh)"

# 1000 idle sockets on each side need file descriptors.
want_fds=$((IDLE + PF_IDLE + 256))
if (($(ulimit -n) < want_fds)); then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if (($(ulimit -n) < IDLE + 64)); then
  IDLE=$(($(ulimit -n) - 64))
  warn "open-file limit $(ulimit -n): holding only $IDLE idle connections"
fi

work=$(mktemp -d "$TMPPARENT/sealgate-bench.XXXXXX") || die "cannot create a directory in $TMPPARENT"
chmod 755 "$work" # Postfix daemons run as user postfix
# A private copy: a rebuild during the run must not change what is measured.
sg_built=$(date -r "$SEALGATE" '+%Y-%m-%d %H:%M:%S')
cp "$SEALGATE" "$work/sealgate.bin" || die "cannot copy $SEALGATE"
sg_rev=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
fstype=$(findmnt -n -o FSTYPE -T "$work" 2>/dev/null || stat -f -c %T "$work")
case $fstype in tmpfs | ramfs) warn "$work is on $fstype: fsync costs nothing there, the comparison is meaningless (set BENCH_TMPDIR)" ;; esac

pf_etc=$work/postfix/etc
pf_queue=$work/postfix/queue
sg_pid=
idle_pid=
source_pid=

# Postfix daemons carry MAIL_CONFIG=<our config directory> in their environment:
# that finds exactly the processes of our instance, never the system's.
postfix_pids() {
  grep -lzxF "MAIL_CONFIG=$pf_etc" /proc/[0-9]*/environ 2>/dev/null | sed 's#^/proc/##; s#/environ$##'
}
postfix_master_pid() {
  local p
  [ -r "$pf_queue/pid/master.pid" ] || return 1
  p=$(tr -d ' \n' <"$pf_queue/pid/master.pid")
  [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}
postfix_stop() {
  [ -f "$pf_etc/main.cf" ] || return 0
  local master i p
  master=$(postfix_master_pid) || master=
  if [ -n "$master" ]; then
    "$POSTFIX" -c "$pf_etc" stop >/dev/null 2>&1 || kill -TERM "$master" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$master" 2>/dev/null || break
      sleep 0.1
    done
  fi
  # The daemons leave when the master is gone; whatever is left gets killed.
  for ((i = 0; i < 20; i++)); do
    [ -z "$(postfix_pids)" ] && return 0
    sleep 0.25
  done
  for p in $(postfix_pids); do kill -KILL "$p" 2>/dev/null; done
}
stop_pid() { # pid: TERM, wait up to 10 s, then KILL
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  trap - EXIT INT TERM HUP
  stop_pid "$source_pid"
  stop_pid "$idle_pid"
  stop_pid "$sg_pid"
  postfix_stop
  if [ "$KEEP" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'echo "accept_rate: interrupted" >&2; exit 130' INT TERM HUP

# ---------------------------------------------------------------- helpers ---
cat >"$work/helper.py" <<'PY'
import os, socket, sys, time

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])

def banner(s, deadline):
    buf = b""
    while not buf.endswith(b"\r\n") or not buf.split(b"\r\n")[-2][3:4] == b" ":
        s.settimeout(max(0.01, deadline - time.time()))
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the banner")
        buf += chunk
    return buf

def probe(port, timeout):
    """Exit 0 once a server on 127.0.0.1:port answers 220 (and QUIT)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if banner(s, time.time() + 5).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    s.settimeout(2)
                    try:
                        s.recv(512)
                    except OSError:
                        pass
                    return 0
        except OSError:
            pass
        time.sleep(0.1)
    return 1

def tree(root):
    """root and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out

def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def memory(root):
    """(processes, VmRSS KiB summed, Pss KiB summed) over root's tree."""
    pids = tree(root)
    rss = sum(field(f"/proc/{p}/status", "VmRSS") for p in pids)
    pss = sum(field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
    return len(pids), rss, pss

def idle(port, root, n):
    """Hold n connections that read the 220 banner and then stay silent;
    print process count, RSS and PSS of root's tree before and with them."""
    before = memory(root)
    socks, ok, errors = [], 0, {}
    deadline = time.time() + 60
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError as e:
            errors[str(e)] = errors.get(str(e), 0) + 1
    for s in socks:
        try:
            if banner(s, deadline).startswith(b"220"):
                ok += 1
            else:
                errors["no 220 banner"] = errors.get("no 220 banner", 0) + 1
        except (OSError, ConnectionError) as e:
            errors[str(e) or type(e).__name__] = errors.get(str(e) or type(e).__name__, 0) + 1
    time.sleep(1.0)  # let the server settle
    after = memory(root)
    print(f"idle_ok={ok} before_procs={before[0]} before_rss={before[1]} before_pss={before[2]} "
          f"after_procs={after[0]} after_rss={after[1]} after_pss={after[2]}", flush=True)
    for e, c in errors.items():
        print(f"idle_error={c}x {e}", file=sys.stderr)
    for s in socks:
        s.close()

cmd = sys.argv[1]
if cmd == "free-port":
    free_port()
elif cmd == "probe":
    sys.exit(probe(int(sys.argv[2]), float(sys.argv[3])))
elif cmd == "idle":
    idle(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
PY
helper() { "$PY" "$work/helper.py" "$@"; }

now() { date +%s.%N; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
started=$(now)
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

source_args=(-c -s "$SESSIONS" -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT")
per_session="one message per SMTP session (no -d: a new connection for every message)"
if [ "$REUSE" = 1 ]; then
  source_args=(-c -d -s "$SESSIONS" -m "$N" -l "$SIZE" -f "$SENDER" -t "$RCPT")
  per_session="several messages per SMTP session (-d: each of the $SESSIONS sessions stays connected)"
fi

# run_load NAME PORT: runs smtp-source, sets elapsed and rate; false on error.
run_load() {
  local name=$1 port=$2 t0 t1 rc
  say "  smtp-source ${source_args[*]} 127.0.0.1:$port"
  load_before=$(loadavg)
  t0=$(now)
  timeout --kill-after=5 "$LOAD_TIMEOUT" "$SMTP_SOURCE" "${source_args[@]}" "127.0.0.1:$port" \
    >"$work/$name.source.out" 2>"$work/$name.source.err" &
  source_pid=$!
  wait "$source_pid"
  rc=$?
  t1=$(now)
  source_pid=
  elapsed=$(calc "$t1 - $t0" 3)
  rate=$(calc "$N / ($t1 - $t0)" 0)
  say "  $N messages in $elapsed s: $rate messages/s (load average $load_before before, $(loadavg) after)"
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    warn "$name: smtp-source still running after $LOAD_TIMEOUT s (a hung session?); stopped it"
    return 1
  elif [ "$rc" -ne 0 ]; then
    warn "$name: smtp-source exited $rc: $(tr '\r' '\n' <"$work/$name.source.err" | tail -3 | tr '\n' ' ')"
    return 1
  fi
  return 0
}

# idle_test NAME PORT ROOTPID COUNT: sets idle_line.
idle_test() {
  local name=$1 port=$2 root=$3 n=$4
  "$PY" "$work/helper.py" idle "$port" "$root" "$n" >"$work/$name.idle.out" 2>"$work/$name.idle.err" &
  idle_pid=$!
  wait "$idle_pid"
  idle_pid=
  idle_line=$(cat "$work/$name.idle.out")
  [ -s "$work/$name.idle.err" ] && warn "$name idle connections: $(head -3 "$work/$name.idle.err" | tr '\n' ' ')"
  [ -n "$idle_line" ]
}
kv() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }

failures=()
fail() { failures+=("$1"); printf 'accept_rate: FAILED: %s\n' "$1" >&2; }

say "accept_rate: $N messages of $SIZE bytes, $SESSIONS parallel sessions, $per_session"
say "  machine: $(nproc) CPUs, $(uname -r), work directory $work ($fstype)"
say "  load average now: $(cut -d' ' -f1-3 /proc/loadavg) (anything well above 0 on $(nproc) CPUs makes the rates noisy)"
say "  sealgate: $SEALGATE (built $sg_built; tree $sg_rev); Postfix $(postconf -d -h mail_version 2>/dev/null); smtp-source $SMTP_SOURCE"

# ---------------------------------------------------------------- Postfix ---
pf_rate=
pf_kib=
pf_port=$(helper free-port)
mkdir -p "$pf_etc" "$pf_queue" "$work/postfix/data"
chown postfix:postfix "$work/postfix/data" # master.lock and caches
chmod 700 "$work/postfix/data"
pf_maxproc=$((SESSIONS + PF_IDLE + 20))
cat >"$pf_etc/main.cf" <<EOF
# Private benchmark instance made by bench/accept_rate.sh.
compatibility_level = 3.6
config_directory = $pf_etc
queue_directory = $pf_queue
data_directory = $work/postfix/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $work/postfix/maillog
maillog_file_prefixes = $work
myhostname = bench.test
mydomain = bench.test
myorigin = bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# No DNS anywhere: no client name lookup, no DNS for the (never started) SMTP client.
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
# Nothing is delivered: only acceptance is measured.
default_transport = smtp
relay_transport = smtp
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_client_connection_count_limit = 0
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
cat >"$pf_etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$pf_port inet n - n - $pf_maxproc smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# postfix_start: starts the instance and waits for its smtpd; false on failure.
postfix_start() {
  if ! "$POSTFIX" -c "$pf_etc" start >>"$work/postfix/start.log" 2>&1; then
    warn "postfix start failed: $(tail -5 "$work/postfix/start.log" | tr '\n' ' ')"
    return 1
  fi
  if ! helper probe "$pf_port" 20; then
    warn "Postfix does not answer on 127.0.0.1:$pf_port; $(tail -5 "$work/postfix/maillog" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
}

say ""
say "== Postfix $(postconf -d -h mail_version 2>/dev/null) on 127.0.0.1:$pf_port (private instance, queue mode: $PF_MODE)"
if ! postfix_start; then
  fail "Postfix did not start"
else
  # Memory per idle connection on a fresh instance (no smtpd processes yet).
  if ((PF_IDLE > 0)); then
    master=$(postfix_master_pid)
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
    postfix_stop
    postfix_start || fail "Postfix did not restart"
  fi
  if master=$(postfix_master_pid); then
    if run_load postfix "$pf_port"; then
      pf_rate=$rate
      pf_elapsed=$elapsed
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
    pf_errors=$(grep -cE '(warning|error|fatal|panic):' "$work/postfix/maillog" 2>/dev/null || true)
    if [ "${pf_errors:-0}" -gt 0 ]; then
      warn "Postfix logged $pf_errors warning/error lines, e.g.:"
      grep -E '(warning|error|fatal|panic):' "$work/postfix/maillog" | sed -E 's/^.*postfix\//    postfix\//' | sort | uniq -c | sort -rn | head -5 >&2
    fi
  fi
  postfix_stop
fi

# --------------------------------------------------------------- sealgate ---
sg_rate=
sg_kib=
sg_fsyncs=
sg_port=$(helper free-port)
sg_dir=$work/sealgate
mkdir -p "$sg_dir"
cat >"$sg_dir/sealgate.yaml" <<EOF
hostname: bench.test
listeners:
  - {name: bench, address: 127.0.0.1, port: $sg_port, tls: none, auth: none}
relay: {networks: [127.0.0.0/8]}
spool: $sg_dir/spool
spool_sync: $SPOOL_SYNC
database: $sg_dir/sealgate.db
limits: {connections: $((IDLE + SESSIONS + 100 > 5000 ? IDLE + SESSIONS + 100 : 5000))}
EOF
sg_log=$sg_dir/sealgate.log

say ""
say "== sealgate on 127.0.0.1:$sg_port"
"$work/sealgate.bin" run --config "$sg_dir/sealgate.yaml" 2>"$sg_log" </dev/null &
sg_pid=$!
if ! helper probe "$sg_port" 20 || ! kill -0 "$sg_pid" 2>/dev/null; then
  why="no answer on 127.0.0.1:$sg_port within 20 s"
  if ! kill -0 "$sg_pid" 2>/dev/null; then
    wait "$sg_pid" 2>/dev/null
    rc=$?
    why="it exited with status $rc"
    ((rc > 128)) && why+=" (signal $((rc - 128)): $(kill -l $((rc - 128)) 2>/dev/null))"
  fi
  stop_pid "$sg_pid"
  sg_pid=
  fail "sealgate did not start: $why; log: $(tail -5 "$sg_log" | tr '\n' ' ')"
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
  if run_load sealgate "$sg_port"; then
    sg_rate=$rate
    sg_elapsed=$elapsed
  else
    fail "sealgate: smtp-source reported an error"
  fi
  kill -TERM "$sg_pid"
  for ((i = 0; i < 300; i++)); do kill -0 "$sg_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$sg_pid" 2>/dev/null; then
    fail "sealgate did not stop within 30 s of SIGTERM"
    stop_pid "$sg_pid"
  else
    wait "$sg_pid"
    rc=$?
    ((rc == 0)) || fail "sealgate exited $rc after SIGTERM"
  fi
  sg_pid=
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
    dirs=$((dirs + ${fss:-0}))  # filesystem mode: one syncfs per group instead
    say "  $stats"
    ((commits == N)) || fail "sealgate: spool stats say commits=$commits, expected $N"
    ((commits > 0)) && sg_fsyncs=$(calc "($fds + $dirs) / $commits" 3) &&
      say "  fsyncs per message: ($fds + $dirs) / $commits = $sg_fsyncs ($(calc "$commits / ($dirs > 0 ? $dirs : 1)" 1) messages per group commit)"
  fi
  # Every accepted message also gets an audit record (informational).
  if command -v sqlite3 >/dev/null && [ -f "$sg_dir/sealgate.db" ]; then
    audited=$(sqlite3 "$sg_dir/sealgate.db" 'SELECT count(*) FROM messages' 2>/dev/null || echo '?')
    say "  audit database: $audited message records"
    [ "$audited" = "$N" ] || warn "sealgate: $audited audit records for $N accepted messages"
  fi
  sg_problems=$(grep -cE ': (warning|error): ' "$sg_log" || true)
  if [ "${sg_problems:-0}" -gt 0 ]; then
    warn "sealgate logged $sg_problems warning/error lines; most frequent:"
    grep -E ': (warning|error): ' "$sg_log" | sed -E 's/^[^ ]+ sealgate\[[0-9]+\]: //; s/[A-Z0-9]{10,}/ID/g; s/\[[0-9.:]+\]/[ADDR]/g' |
      sort | uniq -c | sort -rn | head -5 >&2
  fi
fi

# ---------------------------------------------------------------- summary ---
say ""
say "== summary ($N x $SIZE-byte messages, $SESSIONS sessions, $per_session)"
printf '  %-36s %s\n' "Postfix accepted messages/s:" "${pf_rate:-n/a}${pf_rate:+  ($pf_elapsed s)}"
printf '  %-36s %s\n' "sealgate accepted messages/s:" "${sg_rate:-n/a}${sg_rate:+  ($sg_elapsed s)}"
ratio=n/a
[ -n "$pf_rate" ] && [ -n "$sg_rate" ] && [ "$pf_rate" != 0 ] && ratio=$(calc "$sg_rate / $pf_rate" 2)
printf '  %-36s %s\n' "ratio sealgate/Postfix:" "$ratio"
printf '  %-36s %s\n' "sealgate fsyncs per message:" "${sg_fsyncs:-n/a}  (Postfix: 1 fsync per queue file, no directory fsync)"
((IDLE > 0)) && printf '  %-36s %s\n' "sealgate KiB per idle connection:" "${sg_kib:-n/a}  (VmRSS growth / $IDLE)"
((PF_IDLE > 0)) && printf '  %-36s %s\n' "Postfix KiB per idle connection:" "${pf_kib:-n/a}  (PSS growth of its process tree / $PF_IDLE; one smtpd per connection)"
printf '  %-36s %s\n' "total run time:" "$(calc "$(now) - $started" 0) s"
if ((${#failures[@]})); then
  say ""
  say "FAILED:"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
exit 0
