# bench/lib.sh: shell functions shared by the bench/ scripts (sourced, not run).
#
# The sourcing script sets, before calling anything here:
#   bench_name  prefix of warnings and failures ("accept_rate")
#   here        the bench/ directory (bench_helper.py lives there)
#   work        its temporary directory
#   PY POSTFIX  python3 and postfix binaries
#   UNBOUND     the unbound binary (dns_start)
#   started     when the run began, date +%s.%N (finish_summary)
#   sg_pid      the running sealgate's process id (empty when none), also
#               for the script's cleanup trap
# shellcheck shell=bash disable=SC2154,SC2034  # globals of the sourcing script, results for it

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$bench_name" "$*" >&2; }
die() { printf '%s: FAILED: %s\n' "$bench_name" "$*" >&2; exit 1; }
# fail TEXT: a failure that does not stop the run; the summary lists them all.
failures=()
fail() { failures+=("$1"); printf '%s: FAILED: %s\n' "$bench_name" "$1" >&2; }

now() { date +%s.%N; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
# kv NAME TEXT: the number after NAME= in TEXT.
kv() { sed -n "s/.*\\b$1=\\([0-9]*\\).*/\\1/p" <<<"$2"; }
helper() { "$PY" "$here/bench_helper.py" "$@"; }

# check_tools SEALGATE SMTP_SOURCE: the prerequisites every script shares.
check_tools() {
  [ "$(id -u)" -eq 0 ] || die "run as root (a private Postfix instance is started as root)"
  [ -x "$1" ] || die "$1 not found; build it with scripts/build.sh (or set SEALGATE)"
  [ -x "$2" ] || die "smtp-source not found (Debian package postfix; scripts/setup.sh installs it)"
  [ -x "$POSTFIX" ] || die "postfix not found (scripts/setup.sh installs it)"
  [ -x "$PY" ] || die "$PY not found"
  [ -r "$here/bench_helper.py" ] || die "$here/bench_helper.py not found"
  if ! getent passwd postfix >/dev/null || ! getent group postdrop >/dev/null; then
    die "user postfix / group postdrop missing (the postfix package creates them)"
  fi
}

# warn_if_stale BINARY REPO: a binary older than the sources measures old code.
warn_if_stale() {
  local newer
  newer=$(find "$2/gateway" "$2/crypto" "$2/policy" "$2/dns" -newer "$1" \
    \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | head -3 | tr '\n' ' ')
  [ -z "$newer" ] || warn "$1 is older than $newer(rebuild with scripts/build.sh)"
}

# raise_fd_limit WANT: raises the soft open-file limit towards WANT (at most
# the hard limit); the caller checks what it got with ulimit -n.
raise_fd_limit() {
  if (($(ulimit -n) < $1)); then
    ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  fi
}

# fs_type_checked DIR: prints DIR's file system type, and warns on a RAM one.
fs_type_checked() {
  local t
  t=$(findmnt -n -o FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1")
  case $t in tmpfs | ramfs) warn "$1 is on $t: fsync costs nothing there, the comparison is meaningless (set BENCH_TMPDIR)" ;; esac
  echo "$t"
}

# make_work SEALGATE REPO: the temporary directory ($work, in BENCH_TMPDIR), a
# private copy of the binary in it ($work/sealgate.bin: a rebuild during the
# run must not change what is measured), what is known about that binary
# (sg_built, sg_rev) and the file system type ($fstype).
make_work() {
  work=$(mktemp -d "$TMPPARENT/sealgate-$bench_name.XXXXXX") || die "cannot create a directory in $TMPPARENT"
  chmod 755 "$work" # Postfix daemons run as user postfix
  sg_built=$(date -r "$1" '+%Y-%m-%d %H:%M:%S')
  cp "$1" "$work/sealgate.bin" || die "cannot copy $1"
  sg_rev=$(git -C "$2" describe --always --dirty 2>/dev/null || echo unknown)
  fstype=$(fs_type_checked "$work")
}

# fresh_fs NAME: $work/NAME as a new, empty journaled ext4 of its own (a
# sparse image in $work, loop-mounted), for one server's queue, so that each
# server starts from the same state: no inodes freed moments before by an
# earlier run (on an ext4 without a journal, such as this machine's root, the
# allocator walks past every inode freed in the last ~40 s, which can double
# the cost of creating a file), no fragmentation, nothing dirty from the other
# server. BENCH_FRESH_FS=0: a plain directory in $work instead.
fresh_fs() {
  local dir=$work/$1 img=$work/$1.img size_mb
  mkdir -p "$dir"
  [ "${BENCH_FRESH_FS:-1}" = 1 ] || return 0
  # Room for three copies of the load (queue files, journal, database) and 1 GiB.
  size_mb=$((N * (SIZE + 2048) * 3 / 1048576 + 1024))
  truncate -s "${size_mb}M" "$img" &&
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img" >"$work/$1.mkfs.log" 2>&1 &&
    mount -o loop "$img" "$dir" ||
    die "cannot make a file system for $1 (BENCH_FRESH_FS=0 runs without): $(tail -2 "$work/$1.mkfs.log" 2>/dev/null)"
  mounts+=("$dir")
  chmod 755 "$dir"
}

# The EXIT trap: stops every process the script started (source_pid,
# idle_pid, sg_pid, the pids in other_pids, the Postfix instances in pf_dirs),
# unmounts what fresh_fs mounted and removes $work unless KEEP=1. Ctrl-C and
# SIGTERM end the script through it.
work=
source_pid=
idle_pid=
other_pids=()
pf_dirs=()
mounts=()
# shellcheck disable=SC2317  # called through the EXIT trap
bench_cleanup() {
  trap - EXIT INT TERM HUP
  local p d
  for p in "$source_pid" "$idle_pid" "$sg_pid" "${other_pids[@]}"; do stop_pid "$p"; done
  for d in "${pf_dirs[@]}"; do pf_stop "$d"; done
  for d in "${mounts[@]}"; do umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null; done
  if [ -z "$work" ]; then
    :
  elif [ "$KEEP" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
}
install_cleanup() {
  trap bench_cleanup EXIT
  trap 'echo "$bench_name: interrupted" >&2; exit 130' INT TERM HUP
}

# stop_pid PID: TERM, wait up to 10 s, then KILL.
stop_pid() {
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

# ------------------------------------------------- private Postfix instances ---
# An instance is a directory D with D/etc (main.cf, master.cf), D/queue,
# D/data and D/maillog. Its daemons carry MAIL_CONFIG=D/etc in their
# environment: that finds exactly the processes of this instance, never the
# system's or another instance's.
pf_pids() { # D
  grep -lzxF "MAIL_CONFIG=$1/etc" /proc/[0-9]*/environ 2>/dev/null | sed 's#^/proc/##; s#/environ$##'
}
pf_master_pid() { # D
  local p
  [ -r "$1/queue/pid/master.pid" ] || return 1
  p=$(tr -d ' \n' <"$1/queue/pid/master.pid")
  [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null && echo "$p"
}
pf_stop() { # D
  [ -f "$1/etc/main.cf" ] || return 0
  local master i p
  master=$(pf_master_pid "$1") || master=
  if [ -n "$master" ]; then
    "$POSTFIX" -c "$1/etc" stop >/dev/null 2>&1 || kill -TERM "$master" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      kill -0 "$master" 2>/dev/null || break
      sleep 0.1
    done
  fi
  # The daemons leave when the master is gone; whatever is left gets killed.
  for ((i = 0; i < 20; i++)); do
    [ -z "$(pf_pids "$1")" ] && return 0
    sleep 0.25
  done
  for p in $(pf_pids "$1"); do kill -KILL "$p" 2>/dev/null; done
}

# pf_create D HOSTNAME INTERFACE MADE_BY: makes the directories and writes the
# part of main.cf every instance shares (no DNS, no chroot, no local
# delivery, a log file of its own); the caller appends its own settings.
pf_create() {
  local d=$1
  mkdir -p "$d/etc" "$d/queue" "$d/data"
  chown postfix:postfix "$d/data" # master.lock and caches
  chmod 700 "$d/data"
  cat >"$d/etc/main.cf" <<EOF
# Private benchmark instance made by $4.
compatibility_level = 3.6
config_directory = $d/etc
queue_directory = $d/queue
data_directory = $d/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $d/maillog
maillog_file_prefixes = $work
myhostname = $2
mydomain = bench.test
myorigin = bench.test
mydestination =
inet_interfaces = $3
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# No DNS anywhere: no client name lookup, no DNS for the SMTP client.
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
lmtp_host_lookup = native
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_client_connection_count_limit = 0
EOF
}

# pf_master_cf D LISTEN_LINE...: master.cf with the given inet services and
# the usual internal ones (none chrooted).
pf_master_cf() {
  local d=$1
  shift
  {
    echo "# service type  private unpriv  chroot  wakeup  maxproc command"
    printf '%s\n' "$@"
    cat <<'EOF'
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
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  } >"$d/etc/master.cf"
}

# pf_start D ADDRESS PORT: starts the instance and waits for its smtpd on
# ADDRESS:PORT; false (with a warning) on failure.
pf_start() {
  if ! "$POSTFIX" -c "$1/etc" start >>"$1/start.log" 2>&1; then
    warn "postfix start ($1) failed: $(tail -5 "$1/start.log" | tr '\n' ' ')"
    return 1
  fi
  if ! helper probe "$3" 20 "$2"; then
    warn "Postfix does not answer on $2:$3; $(tail -5 "$1/maillog" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
}

# pf_log_problems MAILLOG NAME: warns about warning/error lines in a Postfix log.
pf_log_problems() {
  local n
  n=$(grep -cE '(warning|error|fatal|panic):' "$1" 2>/dev/null || true)
  if [ "${n:-0}" -gt 0 ]; then
    warn "$2 logged $n warning/error lines, e.g.:"
    grep -E '(warning|error|fatal|panic):' "$1" | sed -E 's/^.*postfix\//    postfix\//' |
      sort | uniq -c | sort -rn | head -5 >&2
  fi
}

# pf_sent_check MAILLOG NAME: after a relay run, counts status=sent and
# status=deferred/bounced/expired in the Postfix log (and says both); false,
# after fail, unless all N were sent and none deferred, bounced or expired.
pf_sent_check() {
  local sent bad
  sleep 0.5 # the last log lines
  sent=$(grep -c ' status=sent ' "$1")
  bad=$(grep -cE ' status=(deferred|bounced|expired) ' "$1")
  say "  log: status=sent $sent, deferred/bounced/expired $bad"
  ((sent == N && bad == 0)) || { fail "$2: $sent of $N messages sent, $bad deferred or bounced"; return 1; }
}

# ------------------------------------------------------------------ sealgate ---
# sg_start BINARY CONFIG LOG PORT: starts sealgate in the background (sets
# sg_pid) and waits for its 220 on 127.0.0.1:PORT. On failure it stops it,
# clears sg_pid, sets sg_why and returns 1.
sg_start() {
  local rc
  "$1" run --config "$2" 2>"$3" </dev/null &
  sg_pid=$!
  if helper probe "$4" 20 && kill -0 "$sg_pid" 2>/dev/null; then
    return 0
  fi
  sg_why="no answer on 127.0.0.1:$4 within 20 s"
  if ! kill -0 "$sg_pid" 2>/dev/null; then
    wait "$sg_pid" 2>/dev/null
    rc=$?
    sg_why="it exited with status $rc"
    ((rc > 128)) && sg_why+=" (signal $((rc - 128)): $(kill -l $((rc - 128)) 2>/dev/null))"
  fi
  stop_pid "$sg_pid"
  sg_pid=
  sg_why+="; log: $(tail -5 "$3" | tr '\n' ' ')"
  return 1
}

# sg_stop: SIGTERM, then up to 30 s for a clean exit; clears sg_pid. Sets
# sg_why and returns 1 when it did not stop in time or exited non-zero.
sg_stop() {
  local i rc
  [ -n "$sg_pid" ] || return 0
  kill -TERM "$sg_pid" 2>/dev/null
  for ((i = 0; i < 300; i++)); do kill -0 "$sg_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$sg_pid" 2>/dev/null; then
    stop_pid "$sg_pid"
    sg_pid=
    sg_why="sealgate did not stop within 30 s of SIGTERM"
    return 1
  fi
  wait "$sg_pid"
  rc=$?
  sg_pid=
  ((rc == 0)) || { sg_why="sealgate exited $rc after SIGTERM"; return 1; }
}

# sg_log_problems LOG: warns about the most frequent warning/error lines.
sg_log_problems() {
  local n
  n=$(grep -cE ': (warning|error): ' "$1" || true)
  if [ "${n:-0}" -gt 0 ]; then
    warn "sealgate logged $n warning/error lines; most frequent:"
    grep -E ': (warning|error): ' "$1" | sed -E 's/^[^ ]+ sealgate\[[0-9]+\]: //; s/[A-Z0-9]{10,}/ID/g; s/\[[0-9.:]+\]/[ADDR]/g' |
      sort | uniq -c | sort -rn | head -5 >&2
  fi
}

# sg_relay_problem LOG: what went wrong so far with a relaying sealgate
# (sg_pid, logging to LOG): its process gone, a recipient not delivered at
# once; nothing when all is well.
sg_relay_problem() {
  local line
  if ! kill -0 "$sg_pid" 2>/dev/null; then
    echo "the gateway process is gone; log: $(tail -3 "$1" | tr '\n' ' ')"
  elif line=$(grep -m1 -E 'status=(deferred|bounced|expired)' "$1"); then
    echo "a recipient was not delivered at once: ${line#*: }"
  fi
}

# idle_test NAME PORT ROOTPID COUNT [CHECK_NEXT]: holds COUNT idle connections
# (bench_helper.py idle) and sets idle_line; sets idle_pid while it runs.
idle_test() {
  local name=$1 port=$2 root=$3 n=$4
  helper idle "$port" "$root" "$n" "${5:-0}" >"$work/$name.idle.out" 2>"$work/$name.idle.err" &
  idle_pid=$!
  wait "$idle_pid"
  idle_pid=
  idle_line=$(cat "$work/$name.idle.out")
  [ -s "$work/$name.idle.err" ] && warn "$name idle connections: $(head -3 "$work/$name.idle.err" | tr '\n' ' ')"
  [ -n "$idle_line" ]
}

# run_source NAME PORT: runs smtp-source "${source_args[@]}" against
# 127.0.0.1:PORT, stopped after LOAD_TIMEOUT seconds (sets source_pid while it
# runs); sets t0 and t1 (its start and end, date +%s.%N) and load_before.
# False, with a warning, when it reported an error or hung.
run_source() {
  local name=$1 port=$2 rc
  say "  smtp-source ${source_args[*]} 127.0.0.1:$port"
  # Nothing dirty is left from the run before (the other server's 80 MB of
  # queue files): otherwise this run pays for that one's writeback, on the
  # disk and in every fsync or syncfs it makes.
  sync
  load_before=$(loadavg)
  t0=$(now)
  timeout --kill-after=5 "$LOAD_TIMEOUT" "$SMTP_SOURCE" "${source_args[@]}" "127.0.0.1:$port" \
    >"$work/$name.source.out" 2>"$work/$name.source.err" &
  source_pid=$!
  wait "$source_pid"
  rc=$?
  t1=$(now)
  source_pid=
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    warn "$name: smtp-source still running after $LOAD_TIMEOUT s (a hung session?); stopped it"
    return 1
  elif [ "$rc" -ne 0 ]; then
    warn "$name: smtp-source exited $rc: $(tr '\r' '\n' <"$work/$name.source.err" | tail -3 | tr '\n' ' ')"
    return 1
  fi
}

# ----------------------------------------------------------------------- DNS ---
# dns_start DIR PORT LINE...: starts unbound on 127.0.0.1:PORT in the
# background, its unbound.conf and unbound.log in DIR, answering test. names
# from the local-zone/local-data LINEs given (other_pids gets it; sets
# unbound_pid and unbound_log). dns_wait tells when it answers.
dns_start() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  {
    cat <<EOF
server:
  interface: 127.0.0.1
  port: $port
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  use-syslog: no
  logfile: ""
  do-ip6: no
  verbosity: 1
  # test. is answered by unbound itself (RFC 6761) unless told otherwise.
  local-zone: "test." nodefault
  domain-insecure: "test."
EOF
    printf '  %s\n' "$@"
    cat <<'EOF'
remote-control:
  control-enable: no
EOF
  } >"$dir/unbound.conf"
  unbound_log=$dir/unbound.log
  "$UNBOUND" -d -c "$dir/unbound.conf" >"$unbound_log" 2>&1 </dev/null &
  unbound_pid=$!
  other_pids+=("$unbound_pid")
}

# dns_wait CONFIG DOMAIN [ADDRESS]: waits up to 20 s until `sealgate dns
# lookup` ($work/sealgate.bin, with CONFIG) gets mx.DOMAIN as DOMAIN's MX (and,
# with ADDRESS, ADDRESS as mx.DOMAIN's A) from the unbound of dns_start; sets
# dns_answer (what it printed). False, after fail, when it never did.
dns_wait() {
  local i
  dns_answer=
  for ((i = 0; i < 100; i++)); do
    if dns_answer=$("$work/sealgate.bin" dns lookup --config "$1" MX "$2" 2>&1) &&
      grep -q " mx.$2" <<<"$dns_answer" &&
      { [ -z "${3:-}" ] ||
        { dns_answer+=$'\n'$("$work/sealgate.bin" dns lookup --config "$1" A "mx.$2" 2>&1) &&
          grep -q "$3" <<<"$dns_answer"; }; }; then
      return 0
    fi
    kill -0 "$unbound_pid" 2>/dev/null || break
    sleep 0.2
  done
  fail "unbound did not answer: $dns_answer; $(tail -3 "$unbound_log" | tr '\n' ' ')"
  return 1
}

# ------------------------------------------------------------------- summary ---
# ratio_of A B: A / B to two places; n/a when either is empty or B is 0.
ratio_of() {
  if [ -n "$1" ] && [ -n "$2" ] && [ "$2" != 0 ]; then calc "$1 / $2" 2; else echo n/a; fi
}

# finish_summary WIDTH [LOAD_START]: the summary's last rows, labels padded to
# WIDTH: the load average before (LOAD_START, when given) and now, the total
# run time since $started; then finish_failures.
finish_summary() {
  [ -z "${2:-}" ] || printf "  %-${1}s %s\n" "load average (1, 5, 15 min):" "$2 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
  printf "  %-${1}s %s\n" "total run time:" "$(calc "$(now) - $started" 0) s"
  finish_failures
}

# finish_failures: ends the script: exit 1 after listing the failures (fail),
# exit 0 when there were none.
finish_failures() {
  if ((${#failures[@]})); then
    say ""
    say "FAILED:"
    printf '  %s\n' "${failures[@]}"
    exit 1
  fi
  exit 0
}
