"""The soak driver behind bench/soak.sh (Python standard library only).

    soak.py --work DIR --bin SEALGATE --full-fs MOUNTPOINT

Starts on loopback: a local unbound (the soak.test zone), smtp-sink instances
(the counting MX on 127.0.7.1, a slow one on 127.0.7.8 that waits before its
reply to the final dot), a hostile MX (one behaviour per address on
127.0.7.2-7), and one sealgate per phase. Every message carries a unique
X-Soak-Id (also its recipient's local part), so what sealgate acknowledged
with 250 can be compared with what the sink received: lost = acknowledged
but never delivered, duplicated = delivered more than once.

The phases (each bounded in time and count, settings from the environment,
see soak.sh): baseline, kill9, diskfull, fdexhaust, slowloris, authflood,
hostile. A legitimate client measures the banner latency (connect -> 220)
every SOAK_PROBE_INTERVAL seconds in every phase.

Exit 0 when nothing was lost and nothing impossible happened, 1 otherwise
(SOAK_STRICT=1: also when a phase is DEGRADED). Nothing here talks to any
address outside 127.0.0.0/8; everything started here is stopped here
(and its process ids are listed in WORK/pids for the wrapper's trap)."""
import argparse
import base64
import collections
import glob
import json
import os
import random
import re
import resource
import selectors
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import threading
import time

# free_port and make_cert: those of the integration tests (tests/integration/harness.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "integration"))
from harness import free_port, make_cert  # noqa: E402

# ----------------------------------------------------------------- settings --


def env_num(name, default, kind=float):
    v = os.environ.get(name, "")
    if v == "":
        return default
    try:
        x = kind(v)
    except ValueError:
        sys.exit("soak: %s=%r is not a number" % (name, v))
    if x < 0:
        sys.exit("soak: %s=%r must not be negative" % (name, v))
    return x


S = dict(
    duration=env_num("SOAK_DURATION", 40),          # seconds of attack per phase (kill9: 1.5x)
    messages=env_num("SOAK_MESSAGES", 200, int),    # load messages per phase, spread over the phase
    sessions=env_num("SOAK_SESSIONS", 4, int),      # parallel load sessions
    drain=env_num("SOAK_DRAIN", 45),                # seconds to wait for the queue to drain
    probe_interval=env_num("SOAK_PROBE_INTERVAL", 0.5),
    probe_timeout=env_num("SOAK_PROBE_TIMEOUT", 10),
    banner_slo=env_num("SOAK_BANNER_SLO", 2),      # a worst banner latency above this is DEGRADED
    auth_slo=env_num("SOAK_AUTH_SLO", 2),          # the same for the legitimate AUTH reply
    kill_every=env_num("SOAK_KILL_EVERY", 5),      # seconds between SIGKILLs (randomised +-40%)
    fd_limit=env_num("SOAK_FD_LIMIT", 256, int),
    fd_conns=env_num("SOAK_FD_CONNS", 400, int),
    max_conns=env_num("SOAK_MAX_CONNECTIONS", 300, int),  # sealgate limits.connections
    slowloris=env_num("SOAK_SLOWLORIS", 400, int),
    trickle=env_num("SOAK_TRICKLE", 3),            # seconds between a slow client's bytes
    auth_flood=env_num("SOAK_AUTH_FLOOD", 8, int),
    hostile_msgs=env_num("SOAK_HOSTILE_MESSAGES", 3, int),
    full_size=env_num("SOAK_FULL_MB", 64, int),
)
STRICT = os.environ.get("SOAK_STRICT", "0") == "1"
PHASES = os.environ.get("SOAK_PHASES", "baseline kill9 diskfull fdexhaust slowloris authflood hostile").split()

DOMAIN = "soak.test"
SINK = "127.0.7.1"
SLOW_SINK = "127.0.7.8"
HOSTILE = collections.OrderedDict([
    # behaviour: (address, what it does)
    ("data250", ("127.0.7.2", "answers 250 to DATA (no 354), then 250 to the dot")),
    ("dot354", ("127.0.7.3", "answers 354 to DATA and 354 again after the dot")),
    ("trickle", ("127.0.7.4", "trickles its banner a byte every 2 s, then behaves")),
    ("hang", ("127.0.7.5", "takes the whole message, then never answers the dot")),
    ("mute", ("127.0.7.6", "accepts the connection and never says anything")),
    ("drop", ("127.0.7.7", "takes the whole message, then closes without a reply")),
])
PASSWORD = "soak-correct-horse"
USER = "soak"

# --------------------------------------------------------------- bookkeeping --

WORK = None
procs = []          # Popen objects we started
stop_event = threading.Event()


def log(msg):
    print(msg, flush=True)


def note_pid(pid):
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write("%d\n" % pid)


def spawn(argv, logfile, **kw):
    f = open(logfile, "ab")
    p = subprocess.Popen(argv, stdout=f, stderr=f, stdin=subprocess.DEVNULL, **kw)
    f.close()
    procs.append(p)
    note_pid(p.pid)
    return p


def stop_proc(p, grace=15):
    if p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def cleanup():
    stop_event.set()
    for p in reversed(procs):
        try:
            stop_proc(p, 10)
        except Exception:
            pass


def on_signal(signum, _frame):
    log("soak: interrupted (signal %d)" % signum)
    cleanup()
    os._exit(130)


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def log_range(path, start, end):
    """(lines, warning or error lines) in bytes [start, end) of a log."""
    lines = warnings = 0
    try:
        with open(path, "rb") as f:
            f.seek(start)
            left = end - start
            tail = b""
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
                chunk = tail + chunk
                cut = chunk.rfind(b"\n") + 1
                tail, chunk = chunk[cut:], chunk[:cut]
                lines += chunk.count(b"\n")
                warnings += chunk.count(b": warning: ") + chunk.count(b": error: ")
    except OSError:
        pass
    return lines, warnings


# -------------------------------------------------------------- SMTP pieces --


class Conn:
    """A byte-exact SMTP client over a raw socket."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                code = int(line[:3]) if line[:3].isdigit() else 0
                return code, b"\n".join(lines).decode(errors="replace")

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def starttls(self):
        code, text = self.cmd("STARTTLS")
        if code != 220:
            raise ConnectionError("STARTTLS: " + text)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def message(mid, rcpt):
    body = "".join("soak line %02d %s\r\n" % (i, "abcdefghij" * 6) for i in range(28))
    return ("From: soak <load@soak.example>\r\nTo: <%s>\r\nSubject: soak %s\r\n"
            "Message-ID: <%s@soak.example>\r\nX-Soak-Id: %s\r\n\r\n%ssoak-end %s\r\n"
            % (rcpt, mid, mid, mid, body, mid)).encode()


class Ledger:
    """What the gateway answered for each message id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.outcome = {}     # id -> acked | rejected NNN | indoubt | notsent
        self.dest = {}        # id -> domain
        self.acked_at = {}    # id -> time of the 250
        self.reasons = collections.Counter()

    def set(self, mid, outcome, reason=None):
        with self.lock:
            self.outcome[mid] = outcome
            if outcome == "acked":
                self.acked_at[mid] = time.time()
            if reason:
                self.reasons[reason] += 1

    def ids(self, what=None, domains=None):
        with self.lock:
            return [m for m, o in self.outcome.items()
                    if (what is None or o == what) and (domains is None or self.dest[m] in domains)]


def send_one(port, ledger, mid, domain, source=None):
    """One message in one SMTP session. Records the outcome."""
    rcpt = "%s@%s" % (mid, domain)
    with ledger.lock:
        ledger.dest[mid] = domain
        ledger.outcome[mid] = "notsent"
    c = None
    stage = "connect"
    try:
        c = Conn(port, source=source, timeout=30)
        stage = "banner"
        code, text = c.reply()
        if code != 220:
            return ledger.set(mid, "notsent", "banner %d" % code)
        for stage, line, want in (("EHLO", "EHLO load.soak.example", 250), ("MAIL", "MAIL FROM:<load@soak.example>", 250),
                                  ("RCPT", "RCPT TO:<%s>" % rcpt, 250), ("DATA", "DATA", 354)):
            code, text = c.cmd(line)
            if code != want:
                return ledger.set(mid, "notsent", "%s %d" % (stage, code))
        stage = "content"
        c.sock.sendall(message(mid, rcpt) + b".\r\n")
        stage = "dot"
        try:
            code, text = c.reply()
        except (OSError, ConnectionError) as e:
            return ledger.set(mid, "indoubt", "no reply to the dot: %s" % (type(e).__name__))
        if code == 250:
            ledger.set(mid, "acked")
        else:
            ledger.set(mid, "rejected %d" % code, "dot %d %s" % (code, text[4:60]))
        try:
            c.cmd("QUIT")
        except (OSError, ConnectionError):
            pass
    except (OSError, ConnectionError) as e:
        ledger.set(mid, "notsent", "%s: %s" % (stage, type(e).__name__))
    finally:
        if c:
            c.close()


class Load:
    """SOAK_SESSIONS threads sending `count` messages to `domain`, evenly
    spread over `duration` seconds."""

    def __init__(self, port, ledger, prefix, count, duration, domain="sink." + DOMAIN, sessions=None):
        self.port, self.ledger, self.prefix, self.count = port, ledger, prefix, count
        self.domains = domain if isinstance(domain, list) else [domain]
        self.rate = count / max(duration, 1)
        self.n = 0
        self.lock = threading.Lock()
        self.t0 = time.time()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(sessions or S["sessions"])]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.halt.is_set() and not stop_event.is_set():
            with self.lock:
                if self.n >= self.count:
                    return
                k = self.n
                self.n += 1
            due = self.t0 + k / self.rate
            while time.time() < due and not self.halt.is_set():
                time.sleep(min(0.2, due - time.time()))
            if self.halt.is_set():
                return
            mid = "%s-%05d-%04x" % (self.prefix, k, random.getrandbits(16))
            send_one(self.port, self.ledger, mid, self.domains[k % len(self.domains)])

    def stop(self, wait=40):
        self.halt.set()
        end = time.time() + wait
        for t in self.threads:
            t.join(max(0.1, end - time.time()))


class Prober:
    """The legitimate client: connect -> 220 every interval, from 127.0.0.1."""

    def __init__(self, port):
        self.port = port
        self.samples = []   # (time, seconds, result): result 'ok', 'refused', 'timeout', '421 ...'
        self.halt = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def one(self):
        t0 = time.time()
        try:
            c = Conn(self.port, timeout=S["probe_timeout"])
        except ConnectionRefusedError:
            return t0, time.time() - t0, "refused"
        except socket.timeout:
            return t0, time.time() - t0, "timeout"
        except OSError as e:
            return t0, time.time() - t0, type(e).__name__
        try:
            c.sock.settimeout(max(0.1, S["probe_timeout"] - (time.time() - t0)))
            code, text = c.reply()
            dt = time.time() - t0
            if code == 220:
                try:
                    c.sock.sendall(b"QUIT\r\n")
                except OSError:
                    pass
                return t0, dt, "ok"
            return t0, dt, "%d" % code
        except socket.timeout:
            return t0, time.time() - t0, "timeout"
        except (OSError, ConnectionError) as e:
            return t0, time.time() - t0, "closed" if isinstance(e, ConnectionError) else type(e).__name__
        finally:
            c.close()

    def run(self):
        while not self.halt.is_set() and not stop_event.is_set():
            start = time.time()
            self.samples.append(self.one())
            self.halt.wait(max(0.0, S["probe_interval"] - (time.time() - start)))

    def stop(self):
        self.halt.set()
        self.t.join(S["probe_timeout"] + 2)

    def summary(self, since=None, until=None, ignore=()):
        ss = [s for s in self.samples if (since is None or s[0] >= since) and (until is None or s[0] <= until)]
        ok = [s[1] for s in ss if s[2] == "ok"]
        bad = collections.Counter(s[2] for s in ss if s[2] != "ok" and s[2] not in ignore)
        ignored = collections.Counter(s[2] for s in ss if s[2] in ignore)
        worst_fail = max((s[1] for s in ss if s[2] != "ok" and s[2] not in ignore), default=0.0)
        return dict(n=len(ss), ok=len(ok), median=statistics.median(ok) if ok else None,
                    worst=max(ok) if ok else None, bad=bad, ignored=ignored, worst_fail=worst_fail)


# -------------------------------------------------------------------- sinks --


class SinkIndex:
    """Deliveries counted from smtp-sink's dump files: one file per transaction;
    a file counts when it holds the message's last line (soak-end ID)."""

    def __init__(self, dirs):
        self.dirs = dirs
        self.done = {}   # path -> id (complete files only)
        self.mtime = {}  # path -> modification time (the content's arrival)

    def times(self, mid):
        return sorted(self.mtime[p] for p, m in self.done.items() if m == mid)

    def scan(self):
        for d in self.dirs:
            for path in glob.glob(os.path.join(d, "*")):
                if path in self.done:
                    continue
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                m = re.search(rb"^X-Soak-Id: (\S+)", data, re.M)
                if m and b"soak-end " + m.group(1) in data:
                    self.done[path] = m.group(1).decode()
                    try:
                        self.mtime[path] = os.path.getmtime(path)
                    except OSError:
                        self.mtime[path] = 0.0
        return collections.Counter(self.done.values())


class HostileMX:
    """One thread per connection; the behaviour is chosen by the address."""

    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.proper = collections.Counter()     # id -> messages accepted properly (354, content, dot, 250)
        self.seen = collections.Counter()       # id -> messages whose content it saw
        self.connections = collections.Counter()
        self.socks = []
        self.conns = []
        for name, (addr, _) in HOSTILE.items():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((addr, port))
            s.listen(64)
            self.socks.append(s)
            threading.Thread(target=self.serve, args=(s, name), daemon=True).start()

    def serve(self, s, name):
        while not stop_event.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.connections[name] += 1
                self.conns.append(c)
            threading.Thread(target=self.session, args=(c, name), daemon=True).start()

    def session(self, c, name):
        buf = b""
        c.settimeout(120)

        def line():
            nonlocal buf
            while b"\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    raise ConnectionError
                buf += chunk
            ln, buf = buf.split(b"\n", 1)
            return ln.rstrip(b"\r")

        def say(text):
            c.sendall(text.encode() + b"\r\n")

        try:
            if name == "mute":
                while c.recv(4096):
                    pass
                return
            if name == "trickle":
                for ch in b"220 mx-trickle.soak.test ESMTP\r\n":
                    c.sendall(bytes([ch]))
                    if stop_event.wait(2):
                        return
            else:
                say("220 mx-%s.soak.test ESMTP" % name)
            while True:
                cmd = line()
                verb = cmd[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    say("250-mx-%s.soak.test\r\n250-PIPELINING\r\n250 8BITMIME" % name)
                elif verb == b"QUIT":
                    say("221 bye")
                    return
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    say("250 ok")
                elif verb == b"DATA":
                    say("250 2.0.0 ok" if name == "data250" else "354 go ahead")
                    content = []
                    while True:
                        ln = line()
                        if ln == b".":
                            break
                        content.append(ln)
                        # data250: a client that did not wait for a 354 may
                        # send commands here; they look like content lines.
                    m = re.search(rb"^X-Soak-Id: (\S+)", b"\n".join(content), re.M)
                    mid = m.group(1).decode() if m else None
                    if mid:
                        with self.lock:
                            self.seen[mid] += 1
                    if name == "hang":
                        while c.recv(4096):
                            pass
                        return
                    if name == "drop":
                        return
                    if name == "dot354":
                        say("354 go ahead")
                        continue
                    if name == "data250":
                        say("250 2.0.0 ok")
                        continue
                    say("250 2.0.0 queued")   # trickle: properly accepted
                    if mid:
                        with self.lock:
                            self.proper[mid] += 1
                else:
                    say("502 5.5.1 no")
        except (OSError, ConnectionError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close_connections(self):
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    c.close()
                except OSError:
                    pass
            self.conns = []


# ----------------------------------------------------------------- gateway --


class Gateway:
    def __init__(self, env, name, spool_root=None, fd_limit=None):
        self.env, self.name = env, name
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        root = spool_root or self.dir
        self.spool = os.path.join(root, "spool")
        self.db = os.path.join(root, "sealgate.db")
        self.port = free_port()
        self.fd_limit = fd_limit
        self.config = os.path.join(self.dir, "sealgate.yaml")
        self.log_path = os.path.join(self.dir, "sealgate.log")
        with open(self.config, "w") as f:
            f.write("""hostname: gw.soak.test
listeners:
  - {name: soak, address: 127.0.0.1, port: %d, tls: starttls, auth: optional}
tls: {certificate: %s, private_key: %s}
relay: {networks: [127.0.0.0/8], users_file: %s}
spool: %s
database: %s
policy_file: %s
limits: {connections: %d}
dns: {servers: ["127.0.0.1:%d"], timeout: 5s}
delivery:
  port: %d
  probe_cache_ttl: 10m
  timeouts: {connect: 5s, helo: 10s, mail: 10s, rcpt: 10s, data_init: 10s, data_xfer: 10s, data_done: 10s, quit: 5s}
queue: {retry_min: 1s, retry_max: 2s}
""" % (self.port, env.cert, env.key, env.users, self.spool, self.db, env.policy, S["max_conns"], env.dns_port,
                env.mx_port))
        self.proc = None
        self.starts = 0

    def start(self, wait=20):
        argv = [self.env.bin, "run", "--config", self.config]
        if self.fd_limit:
            argv = ["prlimit", "--nofile=%d:%d" % (self.fd_limit, self.fd_limit), "--"] + argv
        self.proc = spawn(argv, self.log_path)
        self.starts += 1
        deadline = time.time() + wait
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sealgate (%s) exited %s: %s" % (self.name, self.proc.returncode, self.tail()))
            try:
                c = Conn(self.port, timeout=2)
                try:
                    c.sock.settimeout(2)
                    if c.reply()[0] == 220:
                        c.sock.sendall(b"QUIT\r\n")
                        return self
                finally:
                    c.close()
            except (OSError, ConnectionError):
                pass
            time.sleep(0.05)
        raise RuntimeError("sealgate (%s) did not answer 220 within %d s: %s" % (self.name, wait, self.tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc:
            stop_proc(self.proc, 30)
        return self.proc.returncode if self.proc else None

    def tail(self, n=5):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - 4000))
                return " | ".join(f.read().decode(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cpu(self):
        return cpu_seconds(self.proc.pid) if self.alive() else 0.0

    def queued(self):
        n = 0
        for sub in ("queue", "incoming"):
            try:
                n += len(os.listdir(os.path.join(self.spool, sub)))
            except OSError:
                pass
        return n

    def db_rows(self, sql, args=()):
        try:
            con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.Error as e:
            return [("sqlite error: %s" % e,)]

    def log_problems(self, top=3):
        c = collections.Counter()
        seen = {}   # the line without its time stamp -> its normalised form (a log flood repeats one line)
        try:
            with open(self.log_path, "r", errors="replace") as f:
                for ln in f:
                    if ": warning: " in ln or ": error: " in ln:
                        raw = ln.strip().split(" ", 1)[-1]
                        t = seen.get(raw)
                        if t is None:
                            t = re.sub(r"^sealgate\[\d+\]: ", "", raw)
                            t = re.sub(r"[A-Z0-9]{10,}", "ID", t)
                            t = re.sub(r"\[[0-9.:]+\]", "[ADDR]", t)
                            t = re.sub(r"\d+", "N", t)[:110]
                            if len(seen) < 100000:
                                seen[raw] = t
                        c[t] += 1
        except OSError:
            pass
        return c.most_common(top)


# ------------------------------------------------------------------- phases --


class Result:
    def __init__(self, name, what):
        self.name, self.what = name, what
        self.acked = self.lost = self.dup = self.indoubt = self.rejected = self.notsent = 0
        self.banner = None
        self.notes = []
        self.fail = []       # loss or something impossible
        self.degraded = []   # the legitimate client or the machine suffered
        self.key = ""        # the phase's own figure, for the table

    def verdict(self):
        return "FAIL" if self.fail else ("DEGRADED" if self.degraded else "ok")


def fmt_s(x):
    if x is None:
        return "-"
    return "%.3f" % x if x < 10 else "%.1f" % x


def account(res, env, ledger, domains, dup_allowed=0, kills=0, kill_times=()):
    """Fills acked/lost/dup from the ledger and the sinks' dumps."""
    delivered = env.sinks.scan()
    ids = ledger.ids(domains=domains)
    acked = [m for m in ids if ledger.outcome[m] == "acked"]
    res.acked = len(acked)
    res.indoubt = sum(1 for m in ids if ledger.outcome[m] == "indoubt")
    res.rejected = sum(1 for m in ids if ledger.outcome[m].startswith("rejected"))
    res.notsent = sum(1 for m in ids if ledger.outcome[m] == "notsent")
    lost = [m for m in acked if delivered[m] == 0]
    dups = [m for m in ids if delivered[m] > 1]
    res.lost = len(lost)
    res.dup = len(dups)
    extra = sum(delivered[m] - 1 for m in dups)
    bad_rej = [m for m in ids if ledger.outcome[m].startswith("rejected") and delivered[m] > 0]
    indoubt_deliv = sum(1 for m in ids if ledger.outcome[m] == "indoubt" and delivered[m] > 0)
    res.notes.append("sent %d: acked %d, rejected %d, no reply to the dot %d (%d of them delivered), not sent %d"
                     % (len(ids), res.acked, res.rejected, res.indoubt, indoubt_deliv, res.notsent))
    if ledger.reasons:
        res.notes.append("client-side outcomes: " + ", ".join("%s x%d" % kv for kv in ledger.reasons.most_common(4)))
    if lost:
        res.fail.append("%d acknowledged messages never delivered (e.g. %s)" % (len(lost), ", ".join(lost[:3])))
    if bad_rej:
        res.fail.append("%d messages refused at the dot (client will resend) were delivered anyway (e.g. %s: %s)"
                        % (len(bad_rej), bad_rej[0], ledger.outcome[bad_rej[0]]))
    if dups:
        msg = "%d messages delivered more than once (%d extra copies; e.g. %s x%d)" % (
            len(dups), extra, dups[0], delivered[dups[0]])
        # At-least-once: a copy is explained by a kill between the sink's
        # receipt of the content and sealgate's record of its 250 (the slow
        # sink answers 2 s after the content; 3 s of margin).
        unexplained = [m for m in dups if not any(t - 1 <= k <= t + 5 for t in env.sinks.times(m)[:-1]
                                                  for k in kill_times)]
        if kills and len(dups) <= dup_allowed and not unexplained:
            res.notes.append(msg + ": each within 5 s after a kill, SMTP's at-least-once window")
        elif kills:
            res.fail.append(msg + "; %d of them with no kill within 5 s after a delivery (e.g. %s at %s)"
                            % (len(unexplained), unexplained[0] if unexplained else "-",
                               ", ".join(time.strftime("%H:%M:%S", time.localtime(t))
                                         for t in env.sinks.times(unexplained[0])) if unexplained else "-"))
        else:
            res.fail.append(msg + ("" if kills else " without any crash"))
    return delivered


def drain(env, gw, ledger, domains, timeout):
    """Waits until every acknowledged message for domains has reached a sink."""
    end = time.time() + timeout
    while time.time() < end:
        delivered = env.sinks.scan()
        if all(delivered[m] > 0 for m in ledger.ids("acked", domains)):
            return time.time() - (end - timeout)
        if gw is not None and not gw.alive():
            break
        time.sleep(0.5)
    return None


def banner_check(res, prober, since=None, until=None, ignore=(), label="legit banner", excuse=None):
    """excuse=(t0, t1): failures in that window are counted and shown, but do
    not make the phase DEGRADED (the descriptor exhaustion, where no server
    can serve a new client until descriptors free up)."""
    b = prober.summary(since, until, ignore)
    res.banner = b
    if excuse:
        inside = prober.summary(excuse[0], excuse[1], ignore)
        res.notes.append("legit client while descriptors were held (failures expected): %d of %d got 220%s"
                         % (inside["ok"], inside["n"], " (%s)" % ", ".join("%s x%d" % kv for kv in
                                                                       inside["bad"].most_common())
                            if inside["bad"] else ""))
        bad = collections.Counter(s[2] for s in prober.samples if s[2] != "ok" and s[2] not in ignore
                                  and not excuse[0] <= s[0] <= excuse[1])
        worst = max((s[1] for s in prober.samples if s[2] == "ok" and not excuse[0] <= s[0] <= excuse[1]),
                    default=None)
        d = dict(b, bad=bad, worst=worst)
        label += " outside that window"
    else:
        d = b
    if d["bad"]:
        res.degraded.append("%s: %d of %d connections got no 220 within %g s (%s)"
                            % (label, sum(d["bad"].values()), d["n"], S["probe_timeout"],
                               ", ".join("%s x%d" % kv for kv in d["bad"].most_common())))
    elif d["worst"] is not None and d["worst"] > S["banner_slo"]:
        res.degraded.append("%s: worst %.2f s > %g s" % (label, d["worst"], S["banner_slo"]))
    if b["ignored"]:
        res.notes.append("legit client while sealgate was down (expected): %s"
                         % ", ".join("%s x%d" % kv for kv in b["ignored"].most_common()))
    return b


def gateway_exit(res, gw):
    rc = gw.stop()
    if rc not in (0, None):
        res.degraded.append("sealgate exited %s on SIGTERM (%s)" % (rc, gw.tail(2)))
    probs = gw.log_problems()
    if probs:
        res.notes.append("sealgate log, most frequent warnings: " + "; ".join("%dx %s" % (n, t) for t, n in probs))


def phase_baseline(env):
    res = Result("baseline", "steady load, nothing hostile")
    gw = Gateway(env, "baseline").start()
    ledger = Ledger()
    prober = Prober(gw.port)
    load = Load(gw.port, ledger, "base", S["messages"], S["duration"] * 0.75)
    time.sleep(S["duration"])
    load.stop()
    prober.stop()
    d = drain(env, gw, ledger, ["sink." + DOMAIN], S["drain"])
    res.notes.append("drained %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    account(res, env, ledger, ["sink." + DOMAIN])
    banner_check(res, prober)
    gateway_exit(res, gw)
    return res


def phase_kill9(env):
    res = Result("kill9", "SIGKILL every ~%gs under load, restart on the same spool" % S["kill_every"])
    gw = Gateway(env, "kill9").start()
    ledger = Ledger()
    prober = Prober(gw.port)
    dur = S["duration"] * 1.5
    # Half the messages go to the slow sink (2 s before its 250 to the dot),
    # so that kills land while deliveries are in flight.
    load = Load(gw.port, ledger, "kill", S["messages"] * 2, dur, domain=["sink." + DOMAIN, "slow." + DOMAIN])
    t_end = time.time() + dur
    kills, downtime, kill_times = 0, [], []
    while time.time() < t_end - 3:
        time.sleep(S["kill_every"] * random.uniform(0.6, 1.4))
        if time.time() >= t_end - 2:
            break
        gw.kill9()
        kill_times.append(time.time())
        kills += 1
        t = time.time()
        try:
            gw.start(wait=30)
        except RuntimeError as e:
            res.fail.append("restart %d after kill -9 failed: %s" % (kills, e))
            break
        downtime.append(time.time() - t)
    rest = t_end - time.time()
    if rest > 0:
        time.sleep(rest)
    load.stop()
    prober.stop()
    if gw.alive():
        d = drain(env, gw, ledger, ["sink." + DOMAIN, "slow." + DOMAIN], S["drain"])
        res.notes.append("drained %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    account(res, env, ledger, ["sink." + DOMAIN, "slow." + DOMAIN], dup_allowed=kills * 20, kills=kills,
            kill_times=kill_times)
    res.key = "%d kills" % kills
    res.notes.insert(0, "%d kills, restarts took %s s (until the first 220)"
                     % (kills, "/".join("%.1f" % x for x in downtime)))
    # A probe that meets the kill (reset, closed) or the restart (refused) is expected.
    banner_check(res, prober, ignore=("refused", "closed", "ConnectionResetError", "BrokenPipeError"))
    if gw.alive():
        gateway_exit(res, gw)
    return res


def fill_fs(path):
    """Writes PATH until the file system is full; returns bytes written."""
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 4096, 512):
            chunk = b"\0" * size
            while True:
                try:
                    n += os.write(fd, chunk)
                except OSError:
                    break
        try:
            os.fsync(fd)
        except OSError:
            pass
    finally:
        os.close(fd)
    return n


def phase_diskfull(env):
    res = Result("diskfull", "spool fs (%d MiB ext4) filled for half the phase, deliveries in flight" % S["full_size"])
    if not env.full_fs:
        res.notes.append("skipped: no small file system (soak.sh mounts one)")
        return res
    root = os.path.join(env.full_fs, "gw")
    os.makedirs(root, exist_ok=True)
    gw = Gateway(env, "diskfull", spool_root=root).start()
    ledger = Ledger()
    prober = Prober(gw.port)
    dom = "slow." + DOMAIN   # the slow sink: each delivery waits 2 s for the 250 to its dot
    dur = S["duration"]
    load = Load(gw.port, ledger, "full", S["messages"], dur, domain=dom)
    time.sleep(dur * 0.25)
    filler = os.path.join(env.full_fs, "filler")
    t_full = time.time()
    wrote = fill_fs(filler)
    st = os.statvfs(env.full_fs)
    res.notes.append("filled at t=%.0fs with %.1f MiB; %d KiB left" % (dur * 0.25, wrote / 1048576.0,
                                                                      st.f_bavail * st.f_frsize // 1024))
    acked_before = set(ledger.ids("acked"))
    time.sleep(dur * 0.5)
    t_free = time.time()
    os.unlink(filler)
    os.sync()
    acked_full = set(ledger.ids("acked")) - acked_before
    rej_full = [m for m in ledger.ids() if ledger.outcome[m].startswith("rejected")]
    res.notes.append("while full (%.0f s): %d acked, %d refused at the dot; gateway %s"
                     % (t_free - t_full, len(acked_full), len(rej_full), "alive" if gw.alive() else "DEAD"))
    sent_free = set(ledger.ids())
    time.sleep(dur * 0.25)
    load.stop()
    prober.stop()
    after = [m for m in ledger.ids() if m not in sent_free]
    acked_after = [m for m in after if ledger.outcome[m] == "acked"]
    res.notes.append("after space was freed: %d of %d acked" % (len(acked_after), len(after)))
    if after and not acked_after:
        res.degraded.append("nothing was acknowledged after space was freed")
    crashed = not gw.alive()
    if crashed:
        res.degraded.append("sealgate died while the disk was full: %s" % gw.tail(2))
        try:
            gw.start()
        except RuntimeError as e:
            res.fail.append("could not restart: %s" % e)
    if gw.alive():
        d = drain(env, gw, ledger, [dom], S["drain"])
        res.notes.append("drained %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    delivered = account(res, env, ledger, [dom])
    res.key = "%d acked while full; %d extra copies" % (len(acked_full), sum(max(0, delivered[m] - 1)
                                                                          for m in ledger.ids(domains=[dom])))
    banner_check(res, prober)
    if gw.alive():
        gateway_exit(res, gw)
    return res


class Holder:
    """Opens connections and says nothing (the descriptor exhaustion)."""

    def __init__(self, port, n, sources):
        self.socks = []
        self.errors = collections.Counter()
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.bind((sources[i % len(sources)], 0))
                s.connect_ex(("127.0.0.1", port))
                self.socks.append(s)
            except OSError as e:
                self.errors[type(e).__name__] += 1
                s.close()

    def established(self):
        n = 0
        for s in self.socks:
            try:
                s.getpeername()
                n += 1
            except OSError:
                pass
        return n

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


def phase_fdexhaust(env):
    res = Result("fdexhaust", "ulimit -n %d, %d silent connections held" % (S["fd_limit"], S["fd_conns"]))
    gw = Gateway(env, "fdexhaust", fd_limit=S["fd_limit"]).start()
    ledger = Ledger()
    prober = Prober(gw.port)
    dur = S["duration"]
    load = Load(gw.port, ledger, "fd", max(1, S["messages"] // 2), dur * 0.8, sessions=2)
    time.sleep(dur * 0.15)
    sources = ["127.0.11.%d" % i for i in range(1, 17)]
    holder = Holder(gw.port, S["fd_conns"], sources)
    time.sleep(2)
    t_hold = time.time()
    cpu0, size0 = gw.cpu(), os.path.getsize(gw.log_path)
    time.sleep(dur * 0.5)
    t_rel = time.time()
    cpu1, size1 = gw.cpu(), os.path.getsize(gw.log_path)
    held = holder.established()
    holder.close()
    span = t_rel - t_hold
    cpu_pct = 100.0 * (cpu1 - cpu0) / span
    lines, warnings = log_range(gw.log_path, size0, size1)
    lps = warnings / span
    res.notes.append("held %d connections (%d established) for %.0f s: sealgate CPU %.0f%% of one core, "
                     "%.1f warning/error log lines/s (%d lines in all, %.1f MB)"
                     % (S["fd_conns"], held, span, cpu_pct, lps, lines, (size1 - size0) / 1e6))
    res.key = "CPU %.0f%%, %.0f warnings/s" % (cpu_pct, lps)
    if cpu_pct > 50:
        res.degraded.append("sealgate spun at %.0f%% CPU while out of descriptors" % cpu_pct)
    if lps > 1:
        res.degraded.append("log flood: %.0f warning/error lines/s while out of descriptors" % lps)
    time.sleep(dur * 0.35)
    load.stop()
    prober.stop()
    after = [s for s in prober.samples if s[0] >= t_rel]
    first_ok = next((s for s in after if s[2] == "ok"), None)
    if first_ok is None:
        res.degraded.append("the legitimate client got no 220 after the connections were closed")
    else:
        rec = first_ok[0] + first_ok[1] - t_rel
        res.notes.append("legit client's first 220 %.2f s after the release" % rec)
        res.key += ", 220 %.1f s after release" % rec
        if rec > 5:
            res.degraded.append("legit client waited %.1f s after the release for a 220" % rec)
    if gw.alive():
        d = drain(env, gw, ledger, ["sink." + DOMAIN], S["drain"])
        res.notes.append("drained %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    else:
        res.fail.append("sealgate died: %s" % gw.tail(2))
    account(res, env, ledger, ["sink." + DOMAIN])
    banner_check(res, prober, excuse=(t_hold - 2, t_rel))
    if gw.alive():
        gateway_exit(res, gw)
    return res


class Slowloris:
    """n connections from 127.0.9.x: half trickle commands, half trickle DATA,
    one byte every `every` seconds; a closed one is opened again."""

    def __init__(self, port, n, every):
        self.port, self.n, self.every = port, n, every
        self.lock = threading.Lock()
        self.live = {}          # sock -> [mode, next_time, payload, pos]
        self.stats = collections.Counter()
        self.halt = threading.Event()
        self.sel = selectors.DefaultSelector()
        self.pending = 0
        threading.Thread(target=self.trickle, daemon=True).start()
        self.openers = [threading.Thread(target=self.opener, args=(i,), daemon=True) for i in range(6)]
        for t in self.openers:
            t.start()

    def opener(self, k):
        i = k
        while not self.halt.is_set():
            with self.lock:
                if len(self.live) + self.pending >= self.n:
                    want = False
                else:
                    self.pending += 1
                    want = True
            if not want:
                self.halt.wait(0.2)
                continue
            mode = "data" if i % 2 else "cmd"
            src = "127.0.9.%d" % (1 + i % 16)
            i += 6
            c = None
            try:
                c = Conn(self.port, source=src, timeout=5)
                code, _ = c.reply()
                if code != 220:
                    self.stats["refused %d" % code] += 1
                    raise ConnectionError
                if mode == "data":
                    for line, want in (("EHLO slow.example", 250), ("MAIL FROM:<slow@soak.example>", 250),
                                       ("RCPT TO:<slow-%d@sink.soak.test>" % i, 250), ("DATA", 354)):
                        if c.cmd(line)[0] != want:
                            raise ConnectionError
                    payload = b"Subject: slow\r\n\r\n" + b"x" * 60 + b"\r\n"
                else:
                    payload = b"EHLO slow.example\r\n"
                c.sock.setblocking(False)
                with self.lock:
                    self.live[c.sock] = [mode, time.time() + random.uniform(0, self.every), payload, 0]
                    self.sel.register(c.sock, selectors.EVENT_READ)
                    self.stats["opened " + mode] += 1
                c = None
            except (OSError, ConnectionError):
                self.stats["open failed"] += 1
                self.halt.wait(0.5)
            finally:
                if c:
                    c.close()
                with self.lock:
                    self.pending -= 1

    def drop(self, s, why):
        with self.lock:
            if s in self.live:
                del self.live[s]
                try:
                    self.sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                self.stats["closed by server (%s)" % why] += 1
        try:
            s.close()
        except OSError:
            pass

    def trickle(self):
        while not self.halt.is_set():
            with self.lock:
                has = bool(self.live)
            if not has:
                self.halt.wait(0.1)
                continue
            try:
                events = self.sel.select(0.1)
            except (OSError, ValueError):
                events = []
            for key, _ in events:
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.drop(s, "EOF")
                elif data[:3] == b"421":
                    self.drop(s, "421")
            now = time.time()
            with self.lock:
                items = [(s, st) for s, st in self.live.items() if st[1] <= now]
            for s, st in items:
                mode, _, payload, pos = st
                try:
                    s.send(payload[pos:pos + 1])
                except OSError:
                    self.drop(s, "send error")
                    continue
                pos += 1
                if pos >= len(payload):
                    pos = 0
                    if mode == "cmd":
                        st[2] = b"NOOP\r\n"
                    else:
                        st[2] = b"x" * 60 + b"\r\n"
                st[3] = pos
                st[1] = now + self.every

    def held(self):
        with self.lock:
            return len(self.live)

    def stop(self):
        self.halt.set()
        for t in self.openers:
            t.join(6)
        with self.lock:
            socks = list(self.live)
            self.live.clear()
        for s in socks:
            try:
                s.close()
            except OSError:
                pass


def phase_slowloris(env):
    res = Result("slowloris", "%d clients, a byte every %gs (commands and DATA), limits.connections %d"
                 % (S["slowloris"], S["trickle"], S["max_conns"]))
    gw = Gateway(env, "slowloris").start()
    ledger = Ledger()
    prober = Prober(gw.port)
    dur = S["duration"]
    load = Load(gw.port, ledger, "slow", max(1, S["messages"] // 2), dur * 0.9, sessions=2)
    attack = Slowloris(gw.port, S["slowloris"], S["trickle"])
    held = []
    t_end = time.time() + dur
    while time.time() < t_end:
        time.sleep(2)
        held.append(attack.held())
    attack.stop()
    load.stop()
    time.sleep(1)
    prober.stop()
    res.key = "attackers held %d of %d slots" % (max(held or [0]), S["max_conns"])
    res.notes.append("attackers holding a connection: max %d, at the end %d; %s"
                     % (max(held or [0]), held[-1] if held else 0,
                        ", ".join("%s %d" % kv for kv in sorted(attack.stats.items()))))
    if gw.alive():
        d = drain(env, gw, ledger, ["sink." + DOMAIN], S["drain"])
        res.notes.append("drained %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    account(res, env, ledger, ["sink." + DOMAIN])
    banner_check(res, prober)
    if gw.alive():
        gateway_exit(res, gw)
    return res


class AuthFlood:
    def __init__(self, port, n):
        self.port = port
        self.stats = collections.Counter()
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def run(self, i):
        src = "127.0.10.%d" % (1 + i % 16)
        guess = 0
        while not self.halt.is_set():
            c = None
            try:
                c = Conn(self.port, source=src, timeout=30)
                if c.reply()[0] != 220:
                    self.stats["no 220"] += 1
                    raise ConnectionError
                c.cmd("EHLO flood.example")
                c.starttls()
                c.cmd("EHLO flood.example")
                while not self.halt.is_set():
                    # As fast as answered, at most 10 guesses a second per
                    # client: the harness must not eat the 2 CPUs itself.
                    self.halt.wait(0.1)
                    guess += 1
                    tok = base64.b64encode(("\0%s\0wrong-%d-%d" % (USER, i, guess)).encode()).decode()
                    code, _ = c.cmd("AUTH PLAIN " + tok)
                    self.stats["reply %d" % code] += 1
                    if code == 235:
                        self.stats["WRONG PASSWORD ACCEPTED"] += 1
                    if code == 421 or code == 0:
                        break
            except (OSError, ConnectionError, ssl.SSLError):
                self.stats["disconnected"] += 1
                self.halt.wait(0.2)
            finally:
                if c:
                    c.close()

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(35)


def legit_auth(port):
    """One correct AUTH PLAIN inside STARTTLS: (seconds for the AUTH reply, total seconds, result)."""
    t0 = time.time()
    c = None
    try:
        c = Conn(port, timeout=30)
        if c.reply()[0] != 220:
            return None, time.time() - t0, "no 220"
        c.cmd("EHLO legit.example")
        c.starttls()
        c.cmd("EHLO legit.example")
        tok = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
        t1 = time.time()
        code, text = c.cmd("AUTH PLAIN " + tok)
        t2 = time.time()
        try:
            c.cmd("QUIT")
        except (OSError, ConnectionError):
            pass
        return t2 - t1, t2 - t0, "ok" if code == 235 else "%d" % code
    except (OSError, ConnectionError, ssl.SSLError) as e:
        return None, time.time() - t0, type(e).__name__
    finally:
        if c:
            c.close()


def phase_authflood(env):
    res = Result("authflood", "%d clients guessing AUTH PLAIN passwords in parallel (STARTTLS), at most 10/s each"
                 % S["auth_flood"])
    gw = Gateway(env, "authflood").start()
    # The legitimate AUTH before the flood: the reference.
    ref = [legit_auth(gw.port) for _ in range(3)]
    ledger = Ledger()
    prober = Prober(gw.port)
    dur = S["duration"]
    load = Load(gw.port, ledger, "auth", max(1, S["messages"] // 2), dur * 0.9, sessions=2)
    flood = AuthFlood(gw.port, S["auth_flood"])
    samples = []
    t_end = time.time() + dur
    time.sleep(2)
    while time.time() < t_end:
        start = time.time()
        samples.append(legit_auth(gw.port))
        stop_event.wait(max(0, 1.0 - (time.time() - start)))
    flood.stop()
    load.stop()
    prober.stop()
    ok = [s[0] for s in samples if s[2] == "ok"]
    refok = [s[0] for s in ref if s[2] == "ok"]
    res.notes.append("legit AUTH (reply to AUTH): before the flood median %s s; during: %d of %d ok, "
                     "median %s s, worst %s s (whole session worst %s s)"
                     % (fmt_s(statistics.median(refok)) if refok else "-", len(ok), len(samples),
                        fmt_s(statistics.median(ok)) if ok else "-", fmt_s(max(ok)) if ok else "-",
                        fmt_s(max(s[1] for s in samples)) if samples else "-"))
    res.notes.append("flood: " + ", ".join("%s %d" % kv for kv in sorted(flood.stats.items())))
    res.key = "legit AUTH %s / %s s (before: %s)" % (fmt_s(statistics.median(ok)) if ok else "-",
                                                      fmt_s(max(ok)) if ok else "-",
                                                      fmt_s(statistics.median(refok)) if refok else "-")
    if flood.stats["WRONG PASSWORD ACCEPTED"]:
        res.fail.append("a wrong password got 235")
    if len(ok) < len(samples):
        bad = collections.Counter(s[2] for s in samples if s[2] != "ok")
        res.degraded.append("legit AUTH failed %d times (%s)" % (len(samples) - len(ok),
                                                                 ", ".join("%s x%d" % kv for kv in bad.items())))
    if ok and max(ok) > S["auth_slo"]:
        res.degraded.append("legit AUTH worst %.2f s > %g s" % (max(ok), S["auth_slo"]))
    if gw.alive():
        d = drain(env, gw, ledger, ["sink." + DOMAIN], S["drain"])
        res.notes.append("drained %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    account(res, env, ledger, ["sink." + DOMAIN])
    banner_check(res, prober)
    if gw.alive():
        gateway_exit(res, gw)
    return res


def phase_hostile(env):
    res = Result("hostile", "deliveries to 6 hostile MX behaviours (%d messages each) beside the sink"
                 % S["hostile_msgs"])
    gw = Gateway(env, "hostile").start()
    ledger = Ledger()
    prober = Prober(gw.port)
    dur = S["duration"]
    load = Load(gw.port, ledger, "host", max(1, S["messages"] // 2), dur * 0.8, sessions=2)
    hostile_ids = {}
    for name in HOSTILE:
        for k in range(S["hostile_msgs"]):
            mid = "hx-%s-%d-%04x" % (name, k, random.getrandbits(16))
            send_one(gw.port, ledger, mid, "%s.%s" % (name, DOMAIN))
            hostile_ids[mid] = name
    time.sleep(dur)
    load.stop()
    prober.stop()
    if gw.alive():
        d = drain(env, gw, ledger, ["sink." + DOMAIN], S["drain"])
        res.notes.append("drained (sink) %s" % ("in %.1f s" % d if d is not None else "NOT within %g s" % S["drain"]))
    account(res, env, ledger, ["sink." + DOMAIN])
    banner_check(res, prober)
    gateway_exit(res, gw)
    env.hostile.close_connections()
    # What sealgate recorded, per behaviour (the database the report reads).
    rows = gw.db_rows("SELECT r.address, r.status, r.reply,"
                      " (SELECT count(*) FROM attempts a WHERE a.queue_id=r.queue_id AND a.idx=r.idx"
                      "  AND a.outcome='delivered') FROM recipients r WHERE r.domain != ?", ("sink." + DOMAIN,))
    if rows and len(rows[0]) == 1:
        res.fail.append("cannot read sealgate's database: %s" % rows[0][0])
        rows = []
    per = collections.OrderedDict((n, collections.Counter()) for n in HOSTILE)
    replies = {}
    for address, status, reply, ndeliv in rows:
        mid = address.split("@")[0]
        name = hostile_ids.get(mid)
        if name is None:
            continue
        per[name][status] += 1
        if status == "delivered" or ndeliv:
            if env.hostile.proper[mid] == 0:
                per[name]["FALSELY delivered"] += 1
                replies[name] = reply
    res.key = "falsely delivered %d" % sum(c["FALSELY delivered"] for c in per.values())
    env.hostile_table = []
    for name, (addr, what) in HOSTILE.items():
        ids = [m for m, n in hostile_ids.items() if n == name]
        acked = sum(1 for m in ids if ledger.outcome[m] == "acked")
        proper = sum(env.hostile.proper[m] for m in ids)
        seen = sum(env.hostile.seen[m] for m in ids)
        rec = ", ".join("%s %d" % kv for kv in sorted(per[name].items())) or "nothing"
        env.hostile_table.append((name, what, acked, env.hostile.connections[name], seen, proper, rec))
        if per[name]["FALSELY delivered"]:
            res.fail.append("%s: %d recipients recorded delivered, but the MX never accepted them properly "
                            "(recorded reply: %s)" % (name, per[name]["FALSELY delivered"], replies.get(name)))
    try:
        r = subprocess.run([env.bin, "report", "--config", gw.config, "--by", "recipient-domain", "--format", "json"],
                           capture_output=True, text=True, timeout=60)
        env.hostile_report = r.stdout.strip() if r.returncode == 0 else "report failed: " + r.stderr.strip()[:200]
    except (OSError, subprocess.TimeoutExpired) as e:
        env.hostile_report = "report failed: %s" % e
    return res


# -------------------------------------------------------------- environment --


class Env:
    pass


def setup(args):
    env = Env()
    env.bin = args.bin
    env.full_fs = args.full_fs
    env.hostile_table = None
    env.hostile_report = None
    d = WORK
    # TLS certificate, policy, users file.
    env.cert, env.key = make_cert(d)
    os.chmod(env.key, 0o600)
    env.policy = os.path.join(d, "policy.yaml")
    with open(env.policy, "w") as f:
        f.write("rules:\n  - name: default\n    methods: [tls, plain]\n"
                "    tls: {min_version: \"1.2\", verify: none}\n    on_failure: next\n")
    env.users = os.path.join(d, "users")
    # MX port: one port on every MX address (delivery.port is global).
    addrs = [SINK, SLOW_SINK] + [a for a, _ in HOSTILE.values()]
    env.mx_port = free_port(*addrs)
    # DNS: unbound with local data.
    env.dns_port = free_port()
    dns = os.path.join(d, "dns")
    os.makedirs(dns)
    data = ["%s. 3600 IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 60" % (DOMAIN, DOMAIN, DOMAIN),
            "sink.%s. 300 IN MX 10 mx-sink.%s." % (DOMAIN, DOMAIN), "mx-sink.%s. 300 IN A %s" % (DOMAIN, SINK),
            "slow.%s. 300 IN MX 10 mx-slow.%s." % (DOMAIN, DOMAIN), "mx-slow.%s. 300 IN A %s" % (DOMAIN, SLOW_SINK)]
    for name, (addr, _) in HOSTILE.items():
        data += ["%s.%s. 300 IN MX 10 mx-%s.%s." % (name, DOMAIN, name, DOMAIN),
                 "mx-%s.%s. 300 IN A %s" % (name, DOMAIN, addr)]
    with open(os.path.join(dns, "unbound.conf"), "w") as f:
        f.write("server:\n  interface: 127.0.0.1\n  port: %d\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n"
                "  directory: \"%s\"\n  pidfile: \"%s/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  do-ip6: no\n"
                "  verbosity: 1\n  local-zone: \"test.\" nodefault\n  domain-insecure: \"test.\"\n"
                "  local-zone: \"%s.\" static\n%sremote-control:\n  control-enable: no\n"
                % (env.dns_port, dns, dns, DOMAIN, "".join("  local-data: \"%s\"\n" % x for x in data)))
    spawn(["unbound", "-d", "-c", os.path.join(dns, "unbound.conf")], os.path.join(dns, "unbound.log"))
    # Sinks: smtp-sink dumps one file per transaction.
    dumps = []
    for name, addr, extra in (("sink", SINK, []), ("slow", SLOW_SINK, ["-W", ".:2"])):
        dump = os.path.join(d, "dump-" + name)
        os.makedirs(dump)
        os.chmod(dump, 0o777)
        dumps.append(dump)
        spawn(["smtp-sink", "-u", "nobody", *extra, "-d", os.path.join(dump, "%H%M%S."), "%s:%d" % (addr, env.mx_port),
               "256"], os.path.join(d, "smtp-sink-%s.log" % name))
    env.sinks = SinkIndex(dumps)
    env.hostile = HostileMX(env.mx_port)
    # A throw-away gateway config to run `sealgate passwd` and `dns lookup` with.
    g = Gateway(env, "setup")
    r = subprocess.run([env.bin, "passwd", "--config", g.config, USER], input=PASSWORD + "\n", capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("sealgate passwd failed: " + r.stderr)
    deadline = time.time() + 20
    while True:
        r = subprocess.run([env.bin, "dns", "lookup", "--config", g.config, "MXHOSTS", "sink." + DOMAIN],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and "mx-sink" in r.stdout:
            break
        if time.time() > deadline:
            raise RuntimeError("unbound does not answer: %s %s" % (r.stdout, r.stderr))
        time.sleep(0.2)
    for addr in (SINK, SLOW_SINK):
        deadline = time.time() + 20
        while True:
            try:
                c = Conn(env.mx_port, host=addr, timeout=2)
                c.sock.settimeout(2)
                if c.reply()[0] == 220:
                    c.sock.sendall(b"QUIT\r\n")
                    c.close()
                    break
                c.close()
            except (OSError, ConnectionError):
                pass
            if time.time() > deadline:
                raise RuntimeError("smtp-sink on %s does not answer" % addr)
            time.sleep(0.1)
    return env


PHASE_FUNCS = collections.OrderedDict([
    ("baseline", phase_baseline), ("kill9", phase_kill9), ("diskfull", phase_diskfull),
    ("fdexhaust", phase_fdexhaust), ("slowloris", phase_slowloris), ("authflood", phase_authflood),
    ("hostile", phase_hostile)])


def print_summary(results, env, t_start):
    log("")
    log("== soak summary (%s; %.0f s)" % (os.path.basename(env.bin), time.time() - t_start))
    hdr = "%-10s %6s %5s %5s %8s  %-24s %-9s %s" % ("phase", "acked", "lost", "dup", "no-reply",
                                                   "legit banner med/worst", "verdict", "phase figure")
    log(hdr)
    log("-" * (len(hdr) + 30))
    for r in results:
        b = r.banner
        if b is None:
            lat = "-"
        else:
            lat = "%s / %s s" % (fmt_s(b["median"]), fmt_s(b["worst"]))
            if b["bad"]:
                lat += " +%d fail" % sum(b["bad"].values())
        log("%-10s %6d %5d %5d %8d  %-24s %-9s %s" % (r.name, r.acked, r.lost, r.dup, r.indoubt, lat, r.verdict(),
                                                   r.key))
    log("")
    for r in results:
        log("%s: %s" % (r.name, r.what))
        for x in r.fail:
            log("  FAIL: " + x)
        for x in r.degraded:
            log("  DEGRADED: " + x)
        if r.banner:
            b = r.banner
            log("  legit banner: %d probes, %d got 220, median %s s, worst %s s%s"
                % (b["n"], b["ok"], fmt_s(b["median"]), fmt_s(b["worst"]),
                   ", worst failed probe %.1f s" % b["worst_fail"] if b["bad"] else ""))
        for x in r.notes:
            log("  " + x)
    if env.hostile_table:
        log("")
        log("hostile MX: what each behaviour did and what sealgate recorded")
        log("%-8s %5s %5s %5s %6s  %-28s %s" % ("MX", "acked", "conns", "saw", "proper", "sealgate recorded", "behaviour"))
        for name, what, acked, conns, seen, proper, rec in env.hostile_table:
            log("%-8s %5d %5d %5d %6d  %-28s %s" % (name, acked, conns, seen, proper, rec, what))
        if env.hostile_report:
            log("sealgate report --by recipient-domain --format json: %s" % env.hostile_report[:600].replace("\n", " "))


def main():
    global WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--full-fs", default="")
    args = ap.parse_args()
    WORK = args.work
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, 8192))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    for p in PHASES:
        if p not in PHASE_FUNCS:
            sys.exit("soak: unknown phase %r in SOAK_PHASES (valid: %s)" % (p, " ".join(PHASE_FUNCS)))
    t_start = time.time()
    results = []
    env = None
    try:
        env = setup(args)
        log("soak: MX port %d (sink %s, slow sink %s, hostile %s), unbound on 127.0.0.1:%d"
            % (env.mx_port, SINK, SLOW_SINK, " ".join(a for a, _ in HOSTILE.values()), env.dns_port))
        log("soak: settings " + " ".join("%s=%g" % kv for kv in S.items()))
        for p in PHASES:
            log("")
            log("== phase %s (%s)" % (p, time.strftime("%H:%M:%S")))
            t = time.time()
            try:
                r = PHASE_FUNCS[p](env)
            except Exception as e:  # one broken phase does not hide the others
                r = Result(p, "crashed")
                r.fail.append("the phase itself failed: %s: %s" % (type(e).__name__, e))
            results.append(r)
            log("   %s: %s, acked %d, lost %d, dup %d (%.0f s)" % (p, r.verdict(), r.acked, r.lost, r.dup,
                                                                 time.time() - t))
            for x in r.fail + r.degraded:
                log("   " + x)
    finally:
        if env is not None and results:
            print_summary(results, env, t_start)
        cleanup()
    bad = any(r.fail for r in results) or (STRICT and any(r.degraded for r in results))
    return 1 if bad or not results else 0


if __name__ == "__main__":
    sys.exit(main())
