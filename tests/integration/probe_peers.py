"""Real peers for the probe's integration tests (probe_test.py), all on
127.0.3.0/24 (other suites use other 127.0.x.y ranges) and started and
stopped by the tests, also when a test fails:

- TestCA:      a test certificate authority and certificates it issues (openssl CLI);
- Postfix:     one private Postfix instance (own config and queue directories,
               `postfix -c DIR start`) with one smtpd service per TLS variant,
               each on its own 127.0.3.x address and the same port;
- SmtpSink:    smtp-sink, which offers no STARTTLS;
- Dns:         nsd serving DNSSEC-signed and deliberately bogus zones, behind a
               validating unbound that also answers unsigned local-data names;
- HttpsServer: MTA-STS policies over HTTPS (Python's http.server and ssl).

Python standard library only. Nothing here talks to any address outside
127.0.0.0/8."""
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60, **kw)


def free_port_on(addresses):
    """A TCP port free on every address (the probe uses one port for every MX)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        ok = True
        for a in addresses:
            with socket.socket() as t:
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    t.bind((a, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % addresses)


def free_udp_tcp_port(address="127.0.0.1", avoid=()):
    """A port free for both UDP and TCP on address (a DNS server binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        if port in avoid:
            continue
        with socket.socket() as t:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                t.bind((address, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for UDP and TCP on %s" % address)


def wait_for_banner(address, port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((address, port), timeout=2) as s:
                s.settimeout(5)
                if s.recv(512).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


class TestCA:
    def __init__(self, directory):
        self.dir = directory
        self.cert = os.path.join(directory, "ca.pem")
        self.key = os.path.join(directory, "ca.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=sealgate probe test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", self.key, "-out", self.cert])

    def issue(self, name, dns_names, with_chain=False):
        """A leaf for dns_names signed by the CA; returns (cert file, key file). with_chain: the
        cert file holds the CA certificate after the leaf (for DANE-TA)."""
        key, csr, crt = (os.path.join(self.dir, name + ext) for ext in (".key", ".csr", ".crt"))
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-subj", "/CN=" + dns_names[0], "-keyout", key, "-out", csr])
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in dns_names) + "\n"
                    "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
             "-days", "2", "-extfile", ext, "-out", crt])
        if with_chain:
            with open(crt, "a") as out, open(self.cert) as ca:
                out.write(ca.read())
        os.chmod(key, 0o600)
        return crt, key


def self_signed(directory, name, dns_name):
    key, crt = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".crt")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=" + dns_name, "-addext", "subjectAltName=DNS:" + dns_name, "-keyout", key, "-out", crt])
    os.chmod(key, 0o600)
    return crt, key


def first_cert_der(pem_file):
    with open(pem_file) as f:
        pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", f.read(), re.S).group(0)
    return ssl.PEM_cert_to_DER_cert(pem)


def spki_sha256(pem_file):
    """TLSA 3 1 1 data: SHA-256 of the leaf's SubjectPublicKeyInfo."""
    pub = subprocess.run(["openssl", "x509", "-in", pem_file, "-pubkey", "-noout"], check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                         capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def cert_sha256(pem_file):
    """TLSA x 0 1 data: SHA-256 of the whole certificate."""
    return hashlib.sha256(first_cert_der(pem_file)).hexdigest()


class Postfix:
    """One private Postfix instance; services: list of dicts with address, hostname and
    the smtpd_tls_* overrides (-o) for that address."""

    def __init__(self, directory, port, services):
        self.etc = os.path.join(directory, "etc")
        self.queue = os.path.join(directory, "queue")
        self.data = os.path.join(directory, "data")
        self.maillog = os.path.join(directory, "maillog")
        for d in (self.etc, self.queue, self.data):
            os.makedirs(d)
        os.chmod(directory, 0o755)
        shutil.chown(self.data, "postfix", "postfix")
        os.chmod(self.data, 0o700)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join([
                "# Private test instance made by tests/integration/probe_peers.py.",
                "compatibility_level = 3.6",
                "config_directory = " + self.etc,
                "queue_directory = " + self.queue,
                "data_directory = " + self.data,
                "command_directory = /usr/sbin",
                "daemon_directory = /usr/lib/postfix/sbin",
                "meta_directory = /etc/postfix",
                "shlib_directory = /usr/lib/postfix",
                "mail_owner = postfix",
                "setgid_group = postdrop",
                "maillog_file = " + self.maillog,
                "maillog_file_prefixes = " + directory,
                "myhostname = postfix.probe.test",
                "mydestination =",
                "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4",
                "mynetworks = 127.0.0.0/8",
                "smtpd_relay_restrictions = permit_mynetworks, reject",
                "smtpd_peername_lookup = no",
                "smtp_dns_support_level = disabled",
                "smtp_host_lookup = native",
                "alias_maps =",
                "alias_database =",
                "local_recipient_maps =",
                "biff = no",
                # Nothing is ever delivered: the probe sends no mail, and anything else is held.
                "smtpd_client_restrictions = check_client_access static:HOLD",
                "smtpd_tls_loglevel = 1",
            ]) + "\n")
        lines = ["# service type  private unpriv  chroot  wakeup  maxproc command"]
        for s in services:
            opts = " ".join("-o %s=%s" % kv for kv in s["options"].items())
            lines.append("%s:%d inet n - n - - smtpd -o myhostname=%s %s" % (s["address"], port, s["hostname"], opts))
        lines += [
            "cleanup   unix  n       -       n       -       0       cleanup",
            "qmgr      unix  n       -       n       300     1       qmgr",
            "rewrite   unix  -       -       n       -       -       trivial-rewrite",
            "bounce    unix  -       -       n       -       0       bounce",
            "defer     unix  -       -       n       -       0       bounce",
            "trace     unix  -       -       n       -       0       bounce",
            "verify    unix  -       -       n       -       1       verify",
            "proxymap  unix  -       -       n       -       -       proxymap",
            "smtp      unix  -       -       n       -       -       smtp",
            "showq     unix  n       -       n       -       -       showq",
            "error     unix  -       -       n       -       -       error",
            "anvil     unix  -       -       n       -       1       anvil",
            "scache    unix  -       -       n       -       1       scache",
            "tlsmgr    unix  -       -       n       1000?   1       tlsmgr",
            "postlog   unix-dgram n  -       n       -       1       postlogd",
        ]
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.services = services
        self.port = port
        self.started = False

    def start(self):
        r = subprocess.run([POSTFIX, "-c", self.etc, "start"], capture_output=True, text=True, timeout=60)
        self.started = True
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: %s %s\n%s" % (r.stdout, r.stderr, self.log()))
        for s in self.services:
            if not wait_for_banner(s["address"], self.port):
                raise RuntimeError("Postfix does not answer on %s:%d\n%s" % (s["address"], self.port, self.log()))

    def log(self):
        try:
            with open(self.maillog, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def held(self):
        """The messages this instance holds (its configuration holds everything), as postqueue -j lists them."""
        r = subprocess.run(["postqueue", "-c", self.etc, "-j"], capture_output=True, text=True, timeout=30)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def message(self, queue_id):
        """One held message, header and body, as postcat prints it (LF line ends)."""
        return subprocess.run(["postcat", "-c", self.etc, "-bh", "-q", queue_id], capture_output=True,
                              timeout=30).stdout

    def pids(self):
        """Processes of this instance: Postfix daemons carry MAIL_CONFIG=<our etc> in their environment."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if ("MAIL_CONFIG=" + self.etc).encode() in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
        return out

    def stop(self):
        if not self.started:
            return
        self.started = False
        subprocess.run([POSTFIX, "-c", self.etc, "stop"], capture_output=True, timeout=60)
        deadline = time.time() + 10
        while self.pids() and time.time() < deadline:
            time.sleep(0.1)
        for p in self.pids():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def wait_until(testcase, what, predicate, timeout=60, log=lambda: ""):
    """predicate()'s first true value, tried every 0.2 s; fails testcase with
    what and log() after timeout seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    testcase.fail("timed out waiting for %s\n%s" % (what, log()))


class Process:
    """A foreground process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv, log_path, cwd=None):
        self.log_path = log_path
        self.out = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=self.out, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


class Dns:
    """nsd (signed zones and bogus zones) behind a validating unbound on 127.0.0.1,
    which also serves unsigned local-data (local_zone: one zone name or a list).
    signed: {zone: zone text}; bogus: {zone:
    zone text} served unsigned while unbound holds a trust anchor for it, so that
    every answer from it fails validation (SERVFAIL)."""

    def __init__(self, directory, signed, bogus, local_zone, local_data, cleanups, address="127.0.0.1",
                 nsd_address="127.0.0.1"):
        # address: where unbound listens (on loopback, so that sealgate believes
        # its AD bit); nsd_address: where nsd listens, for unbound alone.
        self.dir = directory
        self.address = address
        anchors = []
        zones = []
        for zone, text in signed.items():
            path = os.path.join(directory, zone + ".zone")
            with open(path, "w") as f:
                f.write(text)
            keygen = lambda *a: run(["ldns-keygen", "-a", "ECDSAP256SHA256", *a, zone], cwd=directory).stdout.strip()
            zsk, ksk = keygen(), keygen("-k")
            run(["ldns-signzone", os.path.basename(path), zsk, ksk], cwd=directory)
            with open(os.path.join(directory, ksk + ".ds")) as f:
                anchors.append(" ".join(f.read().split()))
            zones.append((zone, path + ".signed"))
        for zone, text in bogus.items():
            path = os.path.join(directory, zone + ".zone")
            with open(path, "w") as f:
                f.write(text)
            anchors.append("%s. IN DS 12345 13 2 %s" % (zone, "ab" * 32))
            zones.append((zone, path))
        nsd_port = free_udp_tcp_port(nsd_address)
        self.port = free_udp_tcp_port(address, avoid=(nsd_port,))
        with open(os.path.join(directory, "nsd.conf"), "w") as f:
            lines = ["server:", "  ip-address: " + nsd_address, "  port: %d" % nsd_port, "  do-ip6: no", '  username: ""',
                     '  chroot: ""', '  zonesdir: "%s"' % directory, '  database: ""',
                     '  zonelistfile: "%s/zone.list"' % directory, '  xfrdfile: "%s/xfrd.state"' % directory,
                     '  xfrdir: "%s"' % directory, '  pidfile: "%s/nsd.pid"' % directory,
                     '  logfile: "%s/nsd.log"' % directory, "  server-count: 1", "remote-control:",
                     "  control-enable: no"]
            for zone, path in zones:
                lines += ["zone:", '  name: "%s"' % zone, '  zonefile: "%s"' % path]
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(directory, "unbound.conf"), "w") as f:
            lines = ["server:", "  interface: " + address, "  port: %d" % self.port, "  do-daemonize: no",
                     '  username: ""', '  chroot: ""', '  directory: "%s"' % directory,
                     '  pidfile: "%s/unbound.pid"' % directory, "  use-syslog: no", '  logfile: ""', "  do-ip6: no",
                     "  do-not-query-localhost: no", "  verbosity: 1", '  local-zone: "test." nodefault',
                     '  domain-insecure: "test."']
            for z in ([local_zone] if isinstance(local_zone, str) else local_zone):
                lines.append('  local-zone: "%s." static' % z)
            lines += ['  trust-anchor: "%s"' % a for a in anchors]
            lines += ["  local-data: '%s'" % d for d in local_data]
            for zone, _ in zones:
                lines += ["stub-zone:", '  name: "%s"' % zone, "  stub-addr: %s@%d" % (nsd_address, nsd_port)]
            f.write("\n".join(lines) + "\n")
        self.nsd = Process(["nsd", "-d", "-c", "nsd.conf"], os.path.join(directory, "nsd.out"), cwd=directory)
        cleanups.append(self.nsd.stop)
        self.unbound = Process(["unbound", "-d", "-c", "unbound.conf"], os.path.join(directory, "unbound.out"),
                               cwd=directory)
        cleanups.append(self.unbound.stop)
        # Ready when a signed zone validates (AD), or, without signed zones,
        # when the local data answers.
        probe = next(iter(signed)) if signed else ([local_zone] if isinstance(local_zone, str) else local_zone)[0]
        ready = r"flags:[^;]* ad\b" if signed else r"status: NOERROR"
        deadline = time.time() + 20
        while time.time() < deadline:
            r = subprocess.run(["dig", "@" + address, "-p", str(self.port), "+time=1", "+tries=1", "+dnssec",
                                probe, "SOA"], capture_output=True, text=True)
            if r.returncode == 0 and re.search(ready, r.stdout):
                return
            time.sleep(0.2)
        raise RuntimeError("unbound never answered for %s:\n%s\n%s" % (probe, self.unbound.log(),
                                                                                 self.nsd.log()))


class HttpsServer:
    """HTTPS on address:port in a thread of the test process; policies: {Host header
    name: (status, content type, body)} for /.well-known/mta-sts.txt; files: {(Host header
    name, path with query): (status, content type, body as str or bytes)} for any other
    path (WKD keys)."""

    def __init__(self, address, port, cert, key, policies, files=None):
        self.policies = policies
        self.files = files or {}
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = (self.headers.get("Host") or "").split(":")[0]
                outer.requests.append((host, self.path))
                status, ctype, body = outer.policies.get(host, (404, "text/plain", "no such policy\n"))
                if self.path != "/.well-known/mta-sts.txt":
                    status, ctype, body = outer.files.get((host, self.path), (404, "text/plain", "not found\n"))
                data = body if isinstance(body, bytes) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((address, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class SmtpSink(Process):
    def __init__(self, address, port, log_path):
        # As root, smtp-sink wants a user to become after binding.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        super().__init__([SMTP_SINK, *user, "%s:%d" % (address, port), "10"], log_path)
        if not wait_for_banner(address, port):
            self.stop()
            raise RuntimeError("smtp-sink did not start: " + self.log())


def tempdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


class PeersTestCase:
    """Mixin for a unittest.TestCase whose peers live as long as the class:
    start_peers() (a classmethod) appends a stop function to cls.cleanups for
    each peer it starts; they are stopped in reverse order, also when starting
    one of them failed."""

    @classmethod
    def setUpClass(cls):
        cls.cleanups = []
        try:
            cls.start_peers()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        errors = []
        for fn in reversed(cls.cleanups):
            try:
                fn()
            except Exception as e:  # keep stopping the others
                errors.append(e)
        cls.cleanups = []
        if errors:
            raise errors[0]
