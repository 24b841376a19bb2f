#!/usr/bin/env bash
# bench/portal_rate.sh: the secure portal's figures (the portal issue's benchmark).
#
#   1. Deposits per second: portal_bench runs N deposits of a 4 KiB and of a
#      1 MiB message through portal_service::deposit (the hop to the portal's
#      worker pool, AES-256-GCM seal, the SQLite insert in WAL mode with
#      synchronous=FULL, the notification composed), BENCH_CONCURRENCY at a
#      time, with the store on the work directory's disk, on a fresh
#      journaled ext4 (loop) and on tmpfs. Also: fsyncs per deposit (strace)
#      and the time of each step of a deposit, one at a time.
#   2. Acceptance to notification: portal_latency.py starts unbound, a sink
#      that timestamps each final dot, and the gateway with a policy that
#      picks the portal; it sends K messages one at a time and measures from
#      the gateway's 250 to the notification's arrival at the sink.
#   3. HTTPS requests per second with 100 connections: `sealgate portal run`
#      on the gateway's configuration, the code page (GET /m/TOKEN without a
#      cookie) and the message page (with a session made through the code
#      flow), each with `wrk -t2 -c100 -d10s`, beside a private nginx serving
#      the same two pages as static files with the same certificate and the
#      same security headers.
#
# Not a test: timings never fail it. It exits 1 only when something broke (a
# failed deposit, a notification that never came, a server that did not
# start, a wrk run with socket errors or non-2xx answers).
#
# Usage (as root: it mounts a tmpfs and a loop file system):
#   bench/portal_rate.sh
#   BENCH_SCALE=0.1 BENCH_WRK_DURATION=3 bench/portal_rate.sh    # quick run
# Settings (environment):
#   BENCH_SCALE         multiplies every count (deposits, latency messages)   (1)
#   BENCH_DEPOSITS      4 KiB deposits per run                               (5000)
#   BENCH_DEPOSITS_1M   1 MiB deposits per run                                (300)
#   BENCH_CONCURRENCY   deposits in flight at once (the gateway's queue runs
#                       up to queue.concurrency = 100 deliveries)              (16)
#   BENCH_POOL_THREADS  portal_bench's worker pool (the gateway's has 8)        (8)
#   BENCH_LATENCY_MESSAGES  messages for the latency (after 3 warm-up ones)   (200)
#   BENCH_LATENCY_CONCURRENCY  senders, each waiting for its notification      (1)
#   BENCH_WRK_DURATION  seconds per wrk run                                    (10)
#   BENCH_WRK_CONNECTIONS  wrk -c                                             (100)
#   BENCH_WRK_THREADS   wrk -t                                                  (2)
#   BENCH_NGINX_WORKERS nginx worker_processes                        (nproc: 2)
#   BENCH_PORTAL_THREADS  portal.threads (the portal's io threads and pool)     (2)
#   BENCH_FRESH_FS      1: also a store on a fresh journaled ext4 (loop)        (1)
#   BENCH_PARTS         which parts to run: any of "deposit latency https"   (all)
#   SEALGATE, PORTAL_BENCH  the binaries    (build/gateway/sealgate, build/bench/portal_bench)
#   BENCH_TMPDIR        where the temporary directory goes                  (/tmp)
#   BENCH_KEEP          1: keep the temporary directory
# shellcheck disable=SC2317,SC2154  # functions called through the EXIT trap; globals of lib.sh and the driver's state file
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cmdline="$0${*:+ $*}"
for v in BENCH_SCALE BENCH_DEPOSITS BENCH_DEPOSITS_1M BENCH_CONCURRENCY BENCH_POOL_THREADS BENCH_LATENCY_MESSAGES \
  BENCH_LATENCY_CONCURRENCY BENCH_WRK_DURATION BENCH_WRK_CONNECTIONS BENCH_WRK_THREADS BENCH_NGINX_WORKERS \
  BENCH_PORTAL_THREADS BENCH_FRESH_FS BENCH_PARTS; do
  [ -n "${!v:-}" ] && cmdline="$v=${!v} $cmdline"
done

SCALE=${BENCH_SCALE:-1}
CONC=${BENCH_CONCURRENCY:-16}
POOL=${BENCH_POOL_THREADS:-8}
LAT_CONC=${BENCH_LATENCY_CONCURRENCY:-1}
WRK_D=${BENCH_WRK_DURATION:-10}
WRK_C=${BENCH_WRK_CONNECTIONS:-100}
WRK_T=${BENCH_WRK_THREADS:-2}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-$(nproc)}
PORTAL_THREADS=${BENCH_PORTAL_THREADS:-2}
PARTS=${BENCH_PARTS:-deposit latency https}
SEALGATE=${SEALGATE:-$repo/build/gateway/sealgate}
PORTAL_BENCH=${PORTAL_BENCH:-$repo/build/bench/portal_bench}
TMPPARENT=${BENCH_TMPDIR:-/tmp}
KEEP=${BENCH_KEEP:-0}
PY=/usr/bin/python3
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WRK=$(command -v wrk || echo /usr/bin/wrk)

bench_name=portal_rate
sg_pid=
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

scaled() { awk "BEGIN { n = int($1 * $SCALE); print (n < 1 ? 1 : n) }"; }
N4K=$(scaled "${BENCH_DEPOSITS:-5000}")
N1M=$(scaled "${BENCH_DEPOSITS_1M:-300}")
LAT_N=$(scaled "${BENCH_LATENCY_MESSAGES:-200}")
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_SCALE=$SCALE is not a number"
for v in CONC POOL LAT_CONC WRK_D WRK_C WRK_T NGINX_WORKERS PORTAL_THREADS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v=${!v} is not a whole number of at least 1"
done
want() { [[ " $PARTS " == *" $1 "* ]]; }

[ "$(id -u)" -eq 0 ] || die "run as root (it mounts a tmpfs and a loop file system for the store)"
[ -x "$SEALGATE" ] || die "$SEALGATE not found: ninja -C build sealgate (or set SEALGATE)"
[ -x "$PORTAL_BENCH" ] || die "$PORTAL_BENCH not found: ninja -C build portal_bench (or set PORTAL_BENCH)"
[ -x "$PY" ] || die "$PY not found"
if want https; then
  [ -x "$NGINX" ] || die "nginx not found (Debian package nginx-light)"
  [ -x "$WRK" ] || die "wrk not found (Debian package wrk)"
fi
if want latency || want https; then command -v unbound >/dev/null || die "unbound not found"; fi
command -v strace >/dev/null || warn "strace not found: no fsync count"
for b in "$SEALGATE" "$PORTAL_BENCH"; do
  newer=$(find "$repo/portal" "$repo/gateway/methods" "$repo/gateway/daemon" "$repo/common" -newer "$b" \
    \( -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | head -3 | tr '\n' ' ')
  [ -z "$newer" ] || warn "$b is older than $newer(rebuild it)"
done

# ---------------------------------------------------------------- cleanup ---
driver_pid=
nginx_pid=
sleep_pid=
# Stops the driver (it stops the portal, the gateway, unbound and its sink),
# then whatever it listed in its pids file that is still there, nginx, and
# the rest through lib.sh's bench_cleanup (mounts, the work directory).
portal_cleanup() {
  local i p
  if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
    kill -TERM "$driver_pid" 2>/dev/null
    for ((i = 0; i < 400; i++)); do kill -0 "$driver_pid" 2>/dev/null || break; sleep 0.1; done
    stop_pid "$driver_pid"
  fi
  if [ -n "$work" ] && [ -f "$work/lat/pids" ]; then
    while read -r p; do stop_pid "$p"; done <"$work/lat/pids"
  fi
  stop_pid "$nginx_pid"
  stop_pid "$sleep_pid"
  bench_cleanup
}
trap portal_cleanup EXIT
trap 'echo "$bench_name: interrupted" >&2; exit 130' INT TERM HUP

make_work "$SEALGATE" "$repo"
cp "$PORTAL_BENCH" "$work/portal_bench" || die "cannot copy $PORTAL_BENCH"
started=$(now)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# A file system with a journal has an entry in /proc/fs/jbd2 named after its device.
journal_of() {
  local dev
  dev=$(findmnt -n -o SOURCE -T "$1" 2>/dev/null)
  dev=${dev##*/}
  if [ -z "$dev" ]; then
    echo "?"
  elif compgen -G "/proc/fs/jbd2/$dev-*" >/dev/null; then
    echo "journal"
  else
    echo "no journal"
  fi
}
disk_desc="$fstype, $(journal_of "$work")"

say "portal_rate: $(nproc) CPUs, $(uname -r), load average $load_start"
say "  command: $cmdline"
say "  sealgate: $SEALGATE (built $sg_built; tree $sg_rev)"
say "  work directory $work ($disk_desc)"

# Figures for the summary, filled as the parts run.
rows=()
row() { rows+=("$(printf '%-54s %s' "$1" "$2")"); }

# ---------------------------------------------------------------- deposits ---
# Messages as the gateway's spool hands them over: text with ordinary headers, CRLF.
make_message() { # FILE SIZE
  "$PY" - "$1" "$2" <<'EOF'
import sys, random
random.seed(1)
words = "patient appointment results laboratory invoice reminder clinic report".split()
size = int(sys.argv[2])
head = ("Received: from client.example.org by gw.example.test with ESMTP id BENCH; Sun, 6 Dec 2026 07:00:00 +0000\r\n"
        "From: \"Bench Sender\" <sender@example.org>\r\nTo: rcpt@example.test\r\nSubject: bench\r\n"
        "Message-ID: <b@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
body, line = [], ""
while len(head) + sum(map(len, body)) < size:
    w = random.choice(words)
    if len(line) + len(w) > 72:
        body.append(line + "\r\n"); line = ""
    line += w + " "
open(sys.argv[1], "wb").write((head + "".join(body))[:size].encode())
EOF
}

# deposit_run LABEL DIR COUNT FILE CONCURRENCY: one portal_bench run with a
# fresh store in DIR; sets dep_line (its output) and adds a summary row.
deposit_run() {
  local label=$1 dir=$2 count=$3 file=$4 c=$5 out rate
  mkdir -p "$dir"
  sync
  if ! out=$("$work/portal_bench" --store "$dir/portal.db" --outbox-key "$dir/outbox.key" --message "$file" \
    --count "$count" --concurrency "$c" --threads "$POOL" 2>"$dir/err"); then
    fail "deposits $label: portal_bench failed: $(head -3 "$dir/err" | tr '\n' ' ')"
    row "deposits $label" "n/a (failed)"
    return 1
  fi
  rate=$(sed -n 's/.* rate=\([0-9.]*\).*/\1/p' <<<"$out")
  say "  $label: $count deposits, concurrency $c: $rate deposits/s, latency p50 $(kv_f p50_ms "$out") ms, p99 $(kv_f p99_ms "$out") ms, max $(kv_f max_ms "$out") ms"
  row "deposits/s $label, c=$c" "$(printf '%8s /s   p50 %7s ms   p99 %7s ms' "$rate" "$(kv_f p50_ms "$out")" "$(kv_f p99_ms "$out")")"
  rm -rf "$dir" # a 1 MiB run leaves hundreds of MiB
}
# vm FIELD PID: a VmXXX value (KiB) from /proc/PID/status.
vm() { sed -n "s/^$1:[[:space:]]*\\([0-9]*\\) kB/\\1/p" "/proc/$2/status" 2>/dev/null; }
kv_f() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }

if want deposit; then
  say ""
  say "== 1. deposits: portal_service::deposit as the gateway calls it (pool of $POOL threads, the message read from a file)"
  make_message "$work/4k.eml" 4096
  make_message "$work/1m.eml" 1048576
  stores=("disk:$work/store-disk:$disk_desc")
  if [ "${BENCH_FRESH_FS:-1}" = 1 ]; then
    N=$N1M SIZE=1048576 fresh_fs ext4j # lib.sh: sized from N and SIZE
    stores+=("ext4j:$work/ext4j:fresh ext4 with journal, loop")
  fi
  mkdir -p "$work/tmpfs"
  if mount -t tmpfs -o size=$((N1M * 3 + 512))m,mode=0755 tmpfs "$work/tmpfs"; then
    mounts+=("$work/tmpfs")
    stores+=("tmpfs:$work/tmpfs:tmpfs")
  else
    warn "cannot mount a tmpfs: no tmpfs figures"
  fi
  for s in "${stores[@]}"; do
    IFS=: read -r name dir desc <<<"$s"
    say ""
    say "-- store on $desc ($dir)"
    deposit_run "4 KiB, $name" "$dir/4k" "$N4K" "$work/4k.eml" "$CONC"
    [ "$name" = disk ] && deposit_run "4 KiB, $name" "$dir/4k-c1" "$(scaled 1000)" "$work/4k.eml" 1
    deposit_run "1 MiB, $name" "$dir/1m" "$N1M" "$work/1m.eml" "$CONC"
  done

  # Where a deposit's time goes: its steps one at a time on one thread, with
  # the store's own code (same pragmas) on the disk and on tmpfs.
  say ""
  say "-- the steps of one deposit, one at a time (median of $(scaled 300) for 4 KiB, $(scaled 50) for 1 MiB)"
  for s in "${stores[@]}"; do
    IFS=: read -r name dir desc <<<"$s"
    for size in 4k 1m; do
      n=$(scaled 300)
      [ $size = 1m ] && n=$(scaled 50)
      mkdir -p "$dir/b-$size"
      if out=$("$work/portal_bench" --store "$dir/b-$size/portal.db" --outbox-key "$dir/b-$size/outbox.key" \
        --message "$work/$size.eml" --breakdown "$n" 2>&1); then
        line=$(grep '^breakdown_ms' <<<"$out")
        say "  $size on $name: ${line#breakdown_ms } (ms, p50)"
        row "deposit steps $size, $name (ms, p50)" "${line#breakdown_ms }"
      else
        fail "breakdown $size on $name: $(tail -2 <<<"$out" | tr '\n' ' ')"
      fi
      rm -rf "$dir/b-$size"
    done
  done

  # What the disk itself costs: a 4 KiB write and its fdatasync, as a WAL
  # commit makes them (the file grows, as a WAL does until its checkpoint).
  for s in "${stores[@]}"; do
    IFS=: read -r name dir desc <<<"$s"
    mkdir -p "$dir"
    line=$("$PY" - "$dir/sync.test" "$(scaled 500)" <<'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block, t = os.urandom(4096), []
for i in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    os.pwrite(fd, block, i * 4096)
    os.fdatasync(fd)
    t.append((time.perf_counter() - t0) * 1000)
os.close(fd)
os.unlink(sys.argv[1])
t.sort()
print("p50 %.3f ms, p99 %.3f ms" % (t[len(t) // 2], t[min(len(t) - 1, int(len(t) * 0.99))]))
EOF
)
    say "  4 KiB write + fdatasync on $name: $line"
    row "4 KiB write + fdatasync alone, $name" "$line"
  done

  # fsyncs per deposit, counted by strace (which slows everything: no rate here).
  if command -v strace >/dev/null; then
    for size in 4k 1m; do
      n=$(scaled 200)
      [ $size = 1m ] && n=$(scaled 50)
      mkdir -p "$work/store-disk/strace"
      if strace -f -c -e trace=fsync,fdatasync -o "$work/strace.$size" "$work/portal_bench" \
        --store "$work/store-disk/strace/portal.db" --outbox-key "$work/store-disk/strace/outbox.key" \
        --message "$work/$size.eml" --count "$n" --concurrency "$CONC" --threads "$POOL" >/dev/null 2>&1; then
        syncs=$(awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$work/strace.$size")
        # Minus the ones the service makes once at its start (store creation, outbox key).
        mkdir -p "$work/store-disk/strace0"
        strace -f -c -e trace=fsync,fdatasync -o "$work/strace0.$size" "$work/portal_bench" \
          --store "$work/store-disk/strace0/portal.db" --outbox-key "$work/store-disk/strace0/outbox.key" \
          --message "$work/$size.eml" --count 1 --concurrency 1 >/dev/null 2>&1
        syncs0=$(awk '$NF == "fsync" || $NF == "fdatasync" { n += $4 } END { print n + 0 }' "$work/strace0.$size")
        per=$(calc "($syncs - $syncs0) / ($n - 1)" 2)
        say "  fsync+fdatasync per $size deposit: $per ($syncs in $n deposits, $syncs0 for a run of one)"
        row "fsync+fdatasync per deposit, $size" "$per"
      else
        warn "strace run failed"
      fi
      rm -rf "$work/store-disk/strace" "$work/store-disk/strace0"
    done
  fi
fi

# ------------------------------------------------- latency and the portal ---
state=$work/lat/state
lat_line=
if want latency || want https; then
  say ""
  say "== 2. acceptance to notification: $LAT_N messages of 4 KiB, $LAT_CONC at a time (each sender waits for its notification), after 3 warm-up messages"
  mkdir -p "$work/lat"
  serve=()
  want https && serve=(--serve "$state")
  lat_n=$LAT_N
  want latency || lat_n=1
  SEALGATE_BIN=$work/sealgate.bin "$PY" "$here/portal_latency.py" --dir "$work/lat" --messages "$lat_n" \
    --concurrency "$LAT_CONC" --portal-threads "$PORTAL_THREADS" --requests-per-minute 100000 "${serve[@]}" \
    >"$work/lat/driver.out" 2>"$work/lat/driver.err" &
  driver_pid=$!
  # Until the driver is done (latency only) or has the portal ready (https).
  while kill -0 "$driver_pid" 2>/dev/null; do
    [ -f "$state" ] && break
    sleep 0.2
  done
  if [ ! -f "$state" ]; then
    wait "$driver_pid"
    rc=$?
    driver_pid=
    [ "$rc" = 0 ] || fail "portal_latency.py exited $rc: $(tail -3 "$work/lat/driver.err" | tr '\n' ' ')"
  fi
  sed 's/^/  /' "$work/lat/driver.out"
  lat_line=$(grep '^latency ' "$work/lat/driver.out")
  if want latency && [ -n "$lat_line" ]; then
    row "acceptance -> notification at the MX (ms)" \
      "p50 $(kv_f p50_ms "$lat_line")   p90 $(kv_f p90_ms "$lat_line")   p99 $(kv_f p99_ms "$lat_line")   max $(kv_f max_ms "$lat_line")   ($(kv_f n "$lat_line") messages)"
  fi
fi

# ------------------------------------------------------------------ HTTPS ---
# pid_cpu PID...: CPU seconds (user + system) of the processes so far.
pid_cpu() {
  "$PY" -c '
import os, sys
hz = os.sysconf("SC_CLK_TCK"); t = 0
for p in sys.argv[1:]:
    try: t += sum(int(x) for x in open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[11:13])
    except OSError: pass
print("%.2f" % (t / hz))' "$@"
}
nginx_pids() { echo "$nginx_pid $(pgrep -P "$nginx_pid" 2>/dev/null | tr '\n' ' ')"; }
# tls_of PORT: the protocol and cipher a client gets.
tls_of() {
  "$PY" -c '
import socket, ssl, sys
c = ssl.create_default_context(); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
with c.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)) as s:
    print(s.version(), s.cipher()[0])' "$1" 2>/dev/null || echo "?"
}
# Every request from 127.0.0.1 counts against the portal's per-address limit
# per clock minute (requests_per_minute, here 100000, its maximum): each
# sealgate run has a clock minute to itself (it starts early enough in one to
# end inside it, and in another minute than the run before), so up to 10000
# requests/s over 10 s never meet a 429.
last_minute=
fresh_minute() {
  local t s
  t=$(date +%s)
  s=$((t % 60))
  if [ "$((t / 60))" = "$last_minute" ] || ((s + WRK_D + 2 > 59)); then
    sleep $((61 - s)) & # in the background: a signal's trap runs at once
    sleep_pid=$!
    wait "$sleep_pid"
    sleep_pid=
  fi
  last_minute=$(($(date +%s) / 60))
}
# wrk_run NAME URL [COOKIE]: sets wrk_rps, wrk_bad (non-2xx/3xx + socket
# errors), wrk_p50, wrk_p99, wrk_cpu (CPU seconds of the server meanwhile).
wrk_run() {
  local name=$1 url=$2 cookie=${3:-} out cpu0 pids=()
  local args=(-t"$WRK_T" -c"$WRK_C" -d"${WRK_D}s" --latency)
  [ -n "$cookie" ] && args+=(-H "Cookie: __Host-sg=$cookie")
  if [[ $name == sealgate* ]]; then
    pids=("$portal_pid")
    fresh_minute
  else
    read -ra pids <<<"$(nginx_pids)"
  fi
  cpu0=$(pid_cpu "${pids[@]}")
  out=$("$WRK" "${args[@]}" "$url" 2>&1)
  wrk_cpu=$(calc "$(pid_cpu "${pids[@]}") - $cpu0" 2)
  echo "$out" >"$work/wrk.$name.out"
  wrk_rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' <<<"$out")
  local non2xx sock
  non2xx=$(sed -n 's/.*Non-2xx or 3xx responses:[[:space:]]*\([0-9]*\).*/\1/p' <<<"$out")
  sock=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' <<<"$out")
  wrk_requests=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in .*/\1/p' <<<"$out")
  wrk_p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
  wrk_p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  wrk_bad="non-2xx ${non2xx:-0}, socket errors ${sock:-0 0 0 0} (connect read write timeout)"
  say "  $name: ${wrk_rps:-?} requests/s ($wrk_requests in ${WRK_D} s), latency p50 $wrk_p50 p99 $wrk_p99; $wrk_bad; server CPU $wrk_cpu s"
  [ -n "$wrk_rps" ] || { fail "$name: wrk printed no rate: $(tail -3 <<<"$out" | tr '\n' ' ')"; wrk_rps=; return 1; }
  if [ "${non2xx:-0}" != 0 ] || { [ -n "$sock" ] && [ "$sock" != "0 0 0 0" ]; }; then
    fail "$name: $wrk_bad"
  fi
  return 0
}

if want https && [ -f "$state" ]; then
  # shellcheck source=/dev/null
  . "$state" # portal_port portal_pid link_path cookie cert key www code_bytes message_bytes portal_log
  say ""
  say "== 3. HTTPS: wrk -t$WRK_T -c$WRK_C -d${WRK_D}s, sealgate portal run (portal.threads $PORTAL_THREADS, requests_per_minute 100000) beside nginx ($NGINX_WORKERS workers), same certificate"
  ngx=$work/nginx
  mkdir -p "$ngx/tmp"
  nginx_port=$(helper free-port)
  chmod 755 "$work/lat" "$www"
  chmod 644 "$www"/*.html
  cat >"$ngx/nginx.conf" <<EOF
# Private instance made by bench/portal_rate.sh: the portal's two pages as
# static files, with the portal's certificate and security headers.
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  types { text/html html; }
  default_type text/html;
  server_tokens off;
  # The portal keeps a connection as long as the client wants; nginx would
  # close it after 1000 requests (its default), which costs a handshake.
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    # TLS 1.3 as the portal offers it (nginx 1.22's default stops at 1.2).
    ssl_protocols TLSv1.2 TLSv1.3;
    root $www;
    include $www/headers.conf;
  }
}
EOF
  "$NGINX" -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" >"$ngx/stdout" 2>&1 </dev/null &
  nginx_pid=$!
  for ((i = 0; i < 100; i++)); do
    curl -sk -o /dev/null "https://127.0.0.1:$nginx_port/code.html" && break
    kill -0 "$nginx_pid" 2>/dev/null || break
    sleep 0.1
  done
  portal_base=https://127.0.0.1:$portal_port
  ok=1
  for check in "$portal_base$link_path" "https://127.0.0.1:$nginx_port/code.html" "https://127.0.0.1:$nginx_port/message.html"; do
    code=$(curl -sk -o /dev/null -w '%{http_code}' "$check")
    [ "$code" = 200 ] || { fail "GET $check: $code (nginx: $(tail -2 "$ngx/error.log" 2>/dev/null | tr '\n' ' '))"; ok=0; }
  done
  code=$(curl -sk -o "$work/message.check" -w '%{http_code}' -H "Cookie: __Host-sg=$cookie" "$portal_base$link_path")
  { [ "$code" = 200 ] && grep -q BENCH-PORTAL-MARKER "$work/message.check"; } || { fail "the session cookie does not open the message page ($code)"; ok=0; }
  say "  pages: code page $code_bytes bytes, message page $message_bytes bytes (a 4 KiB text message)"
  say "  TLS: sealgate $(tls_of "$portal_port"), nginx $(tls_of "$nginx_port")"
  say "  portal memory before: VmRSS $(vm VmRSS "$portal_pid") KiB"
  if ((ok)); then
    for page in code message; do
      if [ $page = code ]; then
        wrk_run "sealgate-$page" "$portal_base$link_path" && sg_rps=$wrk_rps sg_cpu=$wrk_cpu sg_req=$wrk_requests sg_lat="$wrk_p50/$wrk_p99" || sg_rps=
      else
        wrk_run "sealgate-$page" "$portal_base$link_path" "$cookie" && sg_rps=$wrk_rps sg_cpu=$wrk_cpu sg_req=$wrk_requests sg_lat="$wrk_p50/$wrk_p99" || sg_rps=
      fi
      sg_bad=$wrk_bad
      wrk_run "nginx-$page" "https://127.0.0.1:$nginx_port/$page.html" && nx_rps=$wrk_rps nx_cpu=$wrk_cpu nx_req=$wrk_requests nx_lat="$wrk_p50/$wrk_p99" || nx_rps=
      nx_bad=$wrk_bad
      ratio=n/a
      [ -n "$sg_rps" ] && [ -n "$nx_rps" ] && ratio=$(calc "$sg_rps / $nx_rps" 2)x
      label=$([ $page = code ] && echo 'code page ("Send me a code", no cookie)' || echo "message page (session cookie)")
      row "HTTPS $label" "sealgate ${sg_rps:-n/a} req/s, nginx ${nx_rps:-n/a} req/s, ratio $ratio"
      [ -n "$sg_rps" ] && row "   p50/p99 latency; server CPU per request" \
        "sealgate $sg_lat, $(calc "$sg_cpu * 1000000 / $sg_req" 0) us; nginx ${nx_lat:-n/a}, $([ -n "$nx_rps" ] && calc "$nx_cpu * 1000000 / $nx_req" 0) us"
      row "   errors" "sealgate: $sg_bad; nginx: $nx_bad"
    done
    # A session that had lapsed would get the code page, with 200 too: the
    # cookie must still open the message after the run.
    code=$(curl -sk -o "$work/message.check" -w '%{http_code}' -H "Cookie: __Host-sg=$cookie" "$portal_base$link_path")
    { [ "$code" = 200 ] && grep -q BENCH-PORTAL-MARKER "$work/message.check"; } ||
      fail "after the run, the session cookie no longer opens the message page ($code)"
    hwm=$(vm VmHWM "$portal_pid")
    rss=$(vm VmRSS "$portal_pid")
    say "  portal memory after: VmHWM $hwm KiB, VmRSS $rss KiB"
    row "portal memory (VmHWM peak / VmRSS after)" "$(calc "$hwm / 1024" 1) / $(calc "$rss / 1024" 1) MiB"
    n=$(grep -cE ': (warning|error): ' "$portal_log" || true)
    if [ "${n:-0}" -gt 0 ]; then
      warn "the portal logged $n warning/error lines, e.g.: $(grep -m2 -E ': (warning|error): ' "$portal_log" | tr '\n' ' ')"
    fi
    row "portal log warning/error lines" "${n:-0}"
  fi
  kill -0 "$portal_pid" 2>/dev/null || fail "the portal process is gone: $(tail -3 "$portal_log" | tr '\n' ' ')"
  stop_pid "$nginx_pid"
  nginx_pid=
fi

# The driver stops the portal, the gateway, unbound and the sink.
if [ -n "$driver_pid" ]; then
  kill -TERM "$driver_pid" 2>/dev/null
  wait "$driver_pid"
  rc=$?
  driver_pid=
  [ "$rc" = 0 ] || fail "portal_latency.py exited $rc: $(tail -3 "$work/lat/driver.err" | tr '\n' ' ')"
fi
[ -s "$work/lat/driver.err" ] && warn "portal_latency.py: $(head -3 "$work/lat/driver.err" | tr '\n' ' ')"

# ---------------------------------------------------------------- summary ---
say ""
say "== summary ($(nproc) CPUs, $(uname -r); work directory on $disk_desc; load average $load_start before, $(cut -d' ' -f1-3 /proc/loadavg) after)"
say "   command: $cmdline"
printf '  %s\n' "${rows[@]}"
say "  targets: deposits >= 1000/s for 4 KiB; HTTPS sealgate/nginx >= 0.5x"
say "  total run time: $(calc "$(now) - $started" 0) s"
finish_failures
