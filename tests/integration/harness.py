"""The integration tests' harness: starts the real gateway binary on loopback
(127.0.0.0/8 only), each instance in its own temporary directory holding its
configuration, TLS certificate, spool, database, users file and log, and stops
everything it started when the test ends, also when the test fails (every
Gateway registers a cleanup with its test case).

Peers: swaks, smtp-source, openssl, and a byte-exact raw-socket SMTP client
(Client) for what those tools cannot do. Python standard library only.

Environment:
  SEALGATE_BIN       the gateway binary (default: ../../build/gateway/sealgate)
  SEALGATE_KEEP_TMP  when set to 1, temporary directories are kept (their paths
                     are printed) so that a failure can be inspected.
"""
import base64
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SEALGATE_BIN") or os.path.normpath(os.path.join(HERE, "../../build/gateway/sealgate"))
HOST = "127.0.0.1"
KEEP_TMP = os.environ.get("SEALGATE_KEEP_TMP") == "1"


def free_port(*addresses):
    """A TCP port that was free a moment ago on every one of addresses (default
    127.0.0.1): bound to port 0 on the first, then tried on the others, all
    released again. Several addresses when one port must serve them all (the
    gateway's delivery.port is the same for every MX)."""
    addresses = addresses or (HOST,)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        if all(_bindable(address, port) for address in addresses[1:]):
            return port
    raise RuntimeError("no TCP port free on all of %s" % (addresses,))


def _bindable(address, port):
    # Without SO_REUSEADDR: a port that only binds with it (a connection in
    # TIME_WAIT) would fail a server that does not set it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
            return True
        except OSError:
            return False


def stop_process(proc, timeout=10):
    """SIGTERM to a peer we started (by its Popen, so by its PID), SIGKILL when
    it has not exited within timeout seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def make_tempdir(testcase, prefix="sealgate-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    if KEEP_TMP:
        sys.stderr.write("\n[kept %s for %s]\n" % (d, testcase.id()))
    else:
        testcase.addCleanup(shutil.rmtree, d, True)
    return d


def make_cert(directory):
    """A fresh self-signed P-256 certificate for localhost / 127.0.0.1 in directory."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def run_sealgate(*args, stdin=None, timeout=60):
    """Runs the binary to completion (CLI tests); returns CompletedProcess with text output."""
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# xtext (RFC 3461 4) and the spool file format


def xtext_decode(s):
    """Decodes xtext ('+HH' hex escapes) to str (UTF-8)."""
    raw = re.sub(rb"\+([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), s.encode("utf-8"))
    return raw.decode("utf-8")


class SpoolFile:
    """A parsed spool/queue file.

    lines:   the envelope lines as written (between the magic line and '.')
    env:     key -> list of raw (still xtext-encoded) values
    content: the message content (bytes) after the '.' separator line
    """

    MAGIC = "sealgate-spool 1"

    def __init__(self, data):
        self.raw = data
        nl = data.find(b"\n")
        if nl < 0 or data[:nl].decode("ascii", "replace") != self.MAGIC:
            raise ValueError("spool file does not start with %r: %r" % (self.MAGIC, data[:40]))
        sep = data.find(b"\n.\n")
        if sep < 0:
            raise ValueError("spool file has no '.' separator line")
        self.lines = data[nl + 1:sep].decode("ascii").split("\n") if sep > nl else []
        self.content = data[sep + 3:]
        self.env = {}
        for line in self.lines:
            key, _, value = line.partition(" ")
            self.env.setdefault(key, []).append(value)

    def one(self, key):
        """The single value of key (raw); fails when absent or repeated."""
        values = self.env.get(key, [])
        if len(values) != 1:
            raise AssertionError("spool key %r: expected one value, got %r" % (key, values))
        return values[0]

    def received_header(self):
        """The first header (the gateway's Received:), unfolded to one str line."""
        m = re.match(rb"(Received:.*?\r\n)(?![ \t])", self.content, re.S)
        if not m:
            raise AssertionError("content does not start with a Received: header: %r" % self.content[:200])
        return re.sub(r"\r\n[ \t]+", " ", m.group(1).decode()).rstrip("\r\n")

    def body_after_received(self):
        """The content the client sent (the content minus the prepended Received: header)."""
        m = re.match(rb"Received:.*?\r\n(?![ \t])", self.content, re.S)
        if not m:
            raise AssertionError("content does not start with a Received: header")
        return self.content[m.end():]


# ---------------------------------------------------------------------------
# The gateway process


class Gateway:
    """One sealgate process with its own temporary directory and ports.

    listeners:  list of dicts with name, tls, auth and optionally address
                (default 127.0.0.1) and extra (more keys of the listener as
                YAML flow text: "proxy_protocol: true, proxy_from: [...]");
                ports are assigned here
    networks:   relay.networks
    limits, timeouts: dicts of key -> YAML scalar text
    hostname:   the gateway's hostname (greeting, Received:)
    spool_sync: the spool_sync setting; None leaves the gateway's default
    queue:      the queue section as YAML flow text. The default pauses
                delivery: accepted mail stays in the spool where a test looks
                at it, and nothing is sent anywhere. A test of delivery gives
                its own (retry times, concurrency); None leaves the section out.
    expect_clean_exit: stop() and the cleanup at the end of the test fail when
                the gateway died by itself (unless kill9() killed it), did not
                exit 0 within 15 s of SIGTERM, or logged a sanitizer report.
                False: they only make sure that it is gone.
    """

    def __init__(self, testcase, listeners=None, networks=("127.0.0.0/8",), limits=None, timeouts=None,
                 hostname="gw.test", spool_sync=None, queue="{paused: true}", expect_clean_exit=True):
        self.testcase = testcase
        self.spool_sync = spool_sync
        self.queue = queue
        self.expect_clean_exit = expect_clean_exit
        self.dir = make_tempdir(testcase)
        self.cert, self.key = make_cert(self.dir)
        self.hostname = hostname
        self.listeners = [dict(l) for l in (listeners or [{"name": "smarthost", "tls": "starttls", "auth": "optional"}])]
        self.networks = list(networks)
        self.limits = dict(limits or {})
        self.timeouts = dict(timeouts or {})
        self.extra_config = ""
        self.relay_extra = ""  # more keys of relay: (client_ca, classes), indented two spaces
        self.env = None  # extra environment variables for the gateway process (NOTIFY_SOCKET)
        self.config = os.path.join(self.dir, "sealgate.yaml")
        self.log_path = os.path.join(self.dir, "sealgate.log")
        self.users_file = os.path.join(self.dir, "users")
        self.database = os.path.join(self.dir, "sealgate.db")
        self.spool_dir = os.path.join(self.dir, "spool")
        self.proc = None
        self._log = None
        self._killed = False
        self.starts = 0
        self._assign_ports()
        testcase.addCleanup(self._cleanup)

    # -- configuration --------------------------------------------------------
    def _assign_ports(self):
        for l in self.listeners:
            l["port"] = free_port(l.get("address", HOST))
        self.write_config()

    def write_config(self):
        """(Re)writes the configuration file from the attributes and add_config()'s
        text; start() does so with new ports when one was taken meanwhile."""
        lines = ["hostname: %s" % self.hostname, "listeners:"]
        for l in self.listeners:
            lines.append("  - {name: %s, address: %s, port: %d, tls: %s, auth: %s%s}"
                         % (l["name"], l.get("address", HOST), l["port"], l["tls"], l["auth"],
                            ", " + l["extra"] if l.get("extra") else ""))
        lines += ["tls: {certificate: cert.pem, private_key: key.pem}",
                  "relay:", "  networks: [%s]" % ", ".join('"%s"' % n for n in self.networks), "  users_file: users",
                  *([self.relay_extra.rstrip("\n")] if self.relay_extra else []),
                  "spool: spool",
                  "database: sealgate.db"]
        if self.spool_sync:
            lines.append("spool_sync: %s" % self.spool_sync)
        if self.queue is not None:
            lines.append("queue: %s" % self.queue)
        if self.limits:
            lines.append("limits: {%s}" % ", ".join("%s: %s" % kv for kv in self.limits.items()))
        if self.timeouts:
            lines.append("timeouts: {%s}" % ", ".join("%s: %s" % kv for kv in self.timeouts.items()))
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_config)

    def add_config(self, text):
        """Appends top-level YAML (policy_file, dns, delivery, crypto ...) to the
        configuration. Text appended to the file directly would be lost when
        start() rewrites it with new ports."""
        if not text.endswith("\n"):
            text += "\n"
        self.extra_config += text
        self.write_config()

    @property
    def port(self):
        return self.listeners[0]["port"]

    def port_of(self, name):
        return next(l["port"] for l in self.listeners if l["name"] == name)

    def add_user(self, user, password):
        r = run_sealgate("passwd", "--config", self.config, user, stdin=password + "\n")
        if r.returncode != 0:
            raise AssertionError("sealgate passwd failed (%d): %s" % (r.returncode, r.stderr))
        return r

    # -- process --------------------------------------------------------------
    def start(self, timeout=20, nofile=None):
        """Starts the gateway and waits for its 'started' log line (after the
        spool recovery and with every listener bound). Retries with new ports
        when one was taken meanwhile. nofile: RLIMIT_NOFILE (soft and hard) for
        the gateway process. Returns self."""
        for attempt in range(3):
            if self._start_once(timeout, nofile):
                return self
            if "Address already in use" not in self.log_tail() or attempt == 2:
                break
            self._assign_ports()
        raise AssertionError("gateway did not start:\n" + self.log_tail())

    def _start_once(self, timeout, nofile):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self._log = open(self.log_path, "ab")
        self._killed = False
        limit_descriptors = None
        if nofile:
            def limit_descriptors():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([BIN, "run", "--config", self.config], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, preexec_fn=limit_descriptors,
                                     env=dict(os.environ, **self.env) if self.env else None)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " started, hostname=" in self.read_log()[offset:]:
                return True
            if self.proc.poll() is not None:
                self._close_log()
                return False
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait(10)
        self._close_log()
        raise AssertionError("gateway did not log 'started' within %ds:\n%s" % (timeout, self.log_tail()))

    def kill9(self):
        """SIGKILL: no chance to flush or clean up anything."""
        self._killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close_log()

    def stop(self):
        """SIGTERM and wait up to 15 s (then SIGKILL). With expect_clean_exit the
        gateway must exit 0 and must not have died on its own before."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        died = proc.poll()
        if died is not None:
            self._close_log()
            if self._killed or not self.expect_clean_exit:
                return
            raise AssertionError("gateway died by itself during the test (exit %s):\n%s" % (died, self.log_tail()))
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            self._close_log()
            if not self.expect_clean_exit:
                return
            raise AssertionError("gateway did not stop within 15 s of SIGTERM:\n" + self.log_tail())
        self._close_log()
        if rc != 0 and self.expect_clean_exit:
            raise AssertionError("gateway exited %d after SIGTERM:\n%s" % (rc, self.log_tail()))

    def signal_stop(self):
        """SIGTERM without waiting; wait_stopped() then expects exit status 0."""
        self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout=15):
        """Waits for the exit after signal_stop(); fails unless it is 0 (whatever
        expect_clean_exit says: a test calls this to check just that)."""
        proc, self.proc = self.proc, None
        rc = proc.wait(timeout)
        self._close_log()
        if rc != 0:
            raise AssertionError("gateway exited %d after SIGTERM:\n%s" % (rc, self.log_tail()))

    SANITIZER_MARKERS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer")

    def _cleanup(self):
        try:
            self.stop()
            if self.expect_clean_exit:
                log = self.read_log()
                for marker in self.SANITIZER_MARKERS:  # for sanitizer builds of the gateway
                    if marker in log:
                        raise AssertionError("sanitizer report in the gateway log:\n"
                                             + log[log.index(marker) - 200:][:3000])
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._close_log()

    def _close_log(self):
        if self._log:
            self._log.close()
            self._log = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.read_log().splitlines()[-n:])

    # -- spool and database ---------------------------------------------------
    @property
    def queue_dir(self):
        return os.path.join(self.spool_dir, "queue")

    @property
    def incoming_dir(self):
        return os.path.join(self.spool_dir, "incoming")

    def queued(self):
        return sorted(os.listdir(self.queue_dir)) if os.path.isdir(self.queue_dir) else []

    def incoming(self):
        return sorted(os.listdir(self.incoming_dir)) if os.path.isdir(self.incoming_dir) else []

    def spool_path(self, queue_id):
        return os.path.join(self.queue_dir, queue_id)

    def spool_file(self, queue_id):
        with open(self.spool_path(queue_id), "rb") as f:
            return SpoolFile(f.read())

    def wait_for_log(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.read_log():
                return True
            time.sleep(0.05)
        return False


# ---------------------------------------------------------------------------
# Peers


class Reply:
    """One SMTP reply: code (int), lines (text after 'NNN-' / 'NNN '), text (all lines, '\\n' joined, with codes)."""

    def __init__(self, raw_lines):
        self.raw_lines = raw_lines
        self.code = int(raw_lines[-1][:3])
        self.lines = [l[4:] for l in raw_lines]
        self.text = "\n".join(raw_lines)

    @property
    def status(self):
        """'NNN X.Y.Z' of the first line (code plus enhanced status code), or 'NNN' without one."""
        m = re.match(r"(\d{3})[ -](\d\.\d{1,3}\.\d{1,3})\b", self.raw_lines[0])
        return "%s %s" % (m.group(1), m.group(2)) if m else self.raw_lines[0][:3]

    def __repr__(self):
        return "Reply(%r)" % self.text


class PeerClosed(ConnectionError):
    pass


def tls_client_context(cafile):
    """A client context that verifies the gateway's test certificate (CN/SAN localhost)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    return ctx


class Client:
    """A byte-exact SMTP client on a raw socket (optionally bound to a source
    address in 127.0.0.0/8). Replies are read line by line; bytes received
    beyond the last reply read stay in self.buf."""

    def __init__(self, port, host=HOST, source=None, timeout=10, tls_cafile=None, implicit_tls=False):
        assert host.startswith("127."), "loopback only"
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.timeout = timeout
        self.buf = b""
        self.cafile = tls_cafile
        self.tls = False
        if implicit_tls:
            self.wrap_tls()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw bytes --------------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode("utf-8"))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise PeerClosed("connection closed by the gateway; unparsed bytes: %r" % self.buf)
        self.buf += chunk
        return chunk

    def reply(self):
        """Reads one complete (possibly multi-line) reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode("utf-8", errors="replace")
            if not re.match(r"\d{3}[ -]", text + " "):
                raise AssertionError("malformed reply line %r" % text)
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                return Reply(lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def read_until_closed(self, timeout=10):
        """Reads until EOF (or a reset); returns (bytes read, closed?). closed is
        False when the peer kept the connection open for timeout seconds."""
        self.sock.settimeout(timeout)
        data = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        except ssl.SSLError:
            return data, True
        except socket.timeout:
            return data, False
        finally:
            self.sock.settimeout(self.timeout)

    # -- SMTP conveniences ----------------------------------------------------
    def greeting(self):
        return self.reply()

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name)

    def wrap_tls(self, strict_eof=False, context=None):
        """TLS handshake on the socket. strict_eof: a TCP close without close_notify
        raises ssl.SSLEOFError instead of reading as an ordinary EOF."""
        ctx = context or (tls_client_context(self.cafile) if self.cafile else ssl._create_unverified_context())
        if strict_eof and hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
            ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # some builds set it by default
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost", suppress_ragged_eofs=not strict_eof)
        self.tls = True

    def starttls(self, **kw):
        r = self.cmd("STARTTLS")
        if r.code != 220:
            raise AssertionError("STARTTLS refused: %r" % r)
        if self.buf:
            raise AssertionError("plaintext bytes after the 220 to STARTTLS: %r" % self.buf)
        self.wrap_tls(**kw)
        return r

    def auth_plain(self, user, password):
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return self.cmd("AUTH PLAIN " + token)

    def auth_login(self, user, password):
        r = self.cmd("AUTH LOGIN")
        if r.code != 334:
            return r
        r = self.cmd(base64.b64encode(user.encode()).decode())
        if r.code != 334:
            return r
        return self.cmd(base64.b64encode(password.encode()).decode())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def message(subject="test", body="hello\r\n", sender="app@example.org", rcpt="someone@example.com", extra=""):
    """A small RFC 5322 message with CRLF line ends (not dot-stuffed, no final dot)."""
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n%s\r\n%s"
            % (sender, rcpt, subject, re.sub(r"\W", "", subject) or "m", extra, body))


def dot_stuff(content):
    """Dot-stuffs CRLF content (RFC 5321 4.5.2) and appends the final CRLF.CRLF."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in content.split(b"\r\n"))
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def swaks(port, *args, sender="app@example.org", to="someone@example.com", timeout=60):
    """Runs swaks against 127.0.0.1:port. Returns (exit code, transcript)."""
    cmd = ["swaks", "--server", "%s:%d" % (HOST, port), "--helo", "client.test", "--timeout", "20",
           "--from", sender, "--to", to, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def swaks_server_lines(transcript):
    """The server's reply lines in a swaks transcript ('<-' plain, '<~' TLS, '<**'/'<~*' errors)."""
    out = []
    for line in transcript.splitlines():
        m = re.match(r"^\s*<(?:-|~|\*\*|~\*)\s+(\d{3}[ -].*)$", line)
        if m:
            out.append(m.group(1))
    return out


def queue_id_of(reply_text):
    m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-F]+)\s*$", reply_text)
    return m.group(1) if m else None
