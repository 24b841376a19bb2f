"""Starts a real sealgate process on loopback for integration tests and stops it.

Each Gateway gets its own temporary directory (config, TLS certificate, spool,
database, users file) and a free port on 127.0.0.1. Nothing here talks to any
address outside 127.0.0.0/8.
"""
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

BIN = os.environ.get("SEALGATE_BIN", os.path.join(os.path.dirname(__file__), "../../build/gateway/sealgate"))


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class Gateway:
    """One gateway process. listeners: list of dicts (name, tls, auth); ports are assigned."""

    def __init__(self, testcase, listeners=None, networks=("127.0.0.0/8",), limits=None, timeouts=None):
        self.dir = tempfile.mkdtemp(prefix="sealgate-it-")
        testcase.addCleanup(shutil.rmtree, self.dir, True)
        testcase.addCleanup(self.stop)
        self.cert, self.key = make_cert(self.dir)
        self.listeners = listeners or [{"name": "smarthost", "tls": "starttls", "auth": "optional"}]
        for l in self.listeners:
            l["port"] = free_port()
        lines = ["hostname: gw.test", "listeners:"]
        for l in self.listeners:
            lines.append("  - {name: %s, address: 127.0.0.1, port: %d, tls: %s, auth: %s}"
                         % (l["name"], l["port"], l["tls"], l["auth"]))
        lines += ["tls: {certificate: cert.pem, private_key: key.pem}",
                  "relay:", "  networks: [%s]" % ", ".join('"%s"' % n for n in networks), "  users_file: users",
                  "spool: spool", "database: sealgate.db"]
        if limits:
            lines.append("limits: {%s}" % ", ".join("%s: %s" % kv for kv in limits.items()))
        if timeouts:
            lines.append("timeouts: {%s}" % ", ".join("%s: %s" % kv for kv in timeouts.items()))
        self.config = os.path.join(self.dir, "sealgate.yaml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.log_path = os.path.join(self.dir, "sealgate.log")

    @property
    def port(self):
        return self.listeners[0]["port"]

    def port_of(self, name):
        return next(l["port"] for l in self.listeners if l["name"] == name)

    @property
    def queue_dir(self):
        return os.path.join(self.dir, "spool", "queue")

    def add_user(self, user, password):
        r = subprocess.run([BIN, "passwd", "--config", self.config, user], input=password + "\n",
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr

    def start(self, nofile=None):
        """nofile: RLIMIT_NOFILE (soft and hard) for the gateway process."""
        self.log = open(self.log_path, "ab")
        limit = None
        if nofile:
            import resource
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([BIN, "run", "--config", self.config], stdout=self.log, stderr=self.log,
                                     preexec_fn=limit)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited: " + self.read_log())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not start: " + self.read_log())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def read_log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def queued(self):
        return sorted(os.listdir(self.queue_dir)) if os.path.isdir(self.queue_dir) else []

    def spool_file(self, queue_id):
        with open(os.path.join(self.queue_dir, queue_id), "rb") as f:
            return f.read()


def parse_spool(data):
    """Returns (envelope dict of lists, content bytes) of a spool file."""
    head, sep, content = data.partition(b"\n.\n")
    assert sep, "no envelope separator"
    lines = head.decode().split("\n")
    assert lines[0] == "sealgate-spool 1"
    env = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        env.setdefault(key, []).append(value)
    return env, content


class Client:
    """A byte-exact SMTP client over a raw socket, for what swaks cannot do."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, text of all lines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed; got %r" % (b"".join(lines) + self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), b"\n".join(lines).decode(errors="replace")

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self):
        code, text = self.cmd("STARTTLS")
        assert code == 220, text
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""

    def closed(self, timeout=5):
        """True when the server closed the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
