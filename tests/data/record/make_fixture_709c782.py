#!/usr/bin/env python3
"""Regenerates records-709c782.sqlite: the audit database written by the sealgate
release at commit 709c782 (schema_version 2), for a test that proves newer
code opens and upgrades an old database.

    python3 make_fixture_709c782.py /path/to/709c782/build/gateway/sealgate [--out DIR] [--keep]

It runs that binary for real (`sealgate run`) on loopback only, with peers
modelled on tests/integration/delivery_test.py at 709c782:

  - a private Postfix smtpd with STARTTLS and a certificate from a throw-away
    test CA (mail held in its queue, never delivered on), on A_TLS;
  - smtp-sink instances: plain 250 (A_PLAIN), 550 to RCPT (A_BOUNCE), 451 to
    RCPT (A_FLAKY), the sender's own MX collecting DSNs (A_DSN), and one that
    answers 451 first and is then replaced by a 250 sink (A_LATER);
  - unbound on 127.0.0.1 serving the MX and A records of dlv.test (local-data);

submits messages with swaks (one over STARTTLS + AUTH on a second listener),
drives `sealgate queue flush` and `sealgate queue delete`, stops the gateway
with SIGTERM, then checks that the database holds exactly the expected
recipients per outcome (see README). Exit 0 only when it does.

Nothing here talks to any address outside 127.0.0.0/8. Needs root (Postfix,
smtp-sink -u nobody), postfix, smtp-sink, unbound, dig, openssl, swaks.
Python standard library only. Takes about a minute.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

# 127.0.9.0/24: no integration suite of sealgate uses it (delivery_test uses
# 127.0.5.x, the probe tests 127.0.3.x), so this can run beside them.
A_TLS, A_PLAIN, A_BOUNCE, A_FLAKY, A_DSN, A_LATER = ("127.0.9.11", "127.0.9.14", "127.0.9.18", "127.0.9.17",
                                                     "127.0.9.19", "127.0.9.21")
SENDER = "app@ours.dlv.test"
AUTH_USER, AUTH_PASSWORD = "clinic-app", "fixture-password-709c782"
MAX_AGE = 30  # queue.max_age, seconds: short, so that one recipient can expire during the run

POLICY = """\
# The delivery policy of the fixture run: delivery_test.py's rules, plus the
# shipped conf/policy.yaml's restricted (reject) and PHI (hold) handling.
classes:
  - name: restricted
    description: marked restricted by the sender
    when: {header: {name: X-Sensitivity, equals: restricted}}
  - name: phi
    description: protected health information
    when:
      any:
        - header: {name: X-Sensitivity, matches: '^(phi|hipaa)$'}
        - dlp: [ssn, mrn, dob]
rules:
  - name: restricted
    match: {classes: restricted}
    methods: [reject]
    reject_text: "Restricted messages may not be sent outside the organisation."
  - name: sensitive
    match: {classes: phi}
    methods: [tls, hold]
    tls: {min_version: "1.2", verify: ca}
    on_failure: next
  - name: clear-ok
    match: {domains: [plain.dlv.test, flaky.dlv.test, bounce.dlv.test, ours.dlv.test, later.dlv.test]}
    methods: [tls, plain]
    tls: {min_version: "1.2", verify: none}
    on_failure: next
  - name: default
    methods: [tls]
    tls: {min_version: "1.2", verify: ca}
    on_failure: defer
"""

# What the database must hold when the run is over, per recipient of the
# messages submitted here, in submission order: (address, status, method, rule,
# recipients.attempts, outcomes of its rows in `attempts` in order). Plus one
# DSN message (sender '', listener 'dsn') to SENDER per failure notice, each
# recipient delivered plain by rule clear-ok in one attempt.
EXPECTED = [
    ("old@flaky.dlv.test", "expired", "plain", "clear-ok", 2, ["deferred", "expired"]),
    ("pat@tls.dlv.test", "delivered", "tls", "default", 1, ["delivered"]),
    ("a@tls.dlv.test", "delivered", "tls", "default", 1, ["delivered"]),
    ("b@plain.dlv.test", "delivered", "plain", "clear-ok", 1, ["delivered"]),
    ("c@plain.dlv.test", "delivered", "plain", "clear-ok", 1, ["delivered"]),
    ("gone@bounce.dlv.test", "bounced", "plain", "clear-ok", 1, ["bounced"]),
    ("later@flaky.dlv.test", "deferred", "plain", "clear-ok", 2, ["deferred", "deferred"]),
    ("x@nullmx.dlv.test", "bounced", "none", None, 0, []),
    ("r@plain.dlv.test", "bounced", "reject", "restricted", 0, []),
    ("phi@plain.dlv.test", "held", "hold", "sensitive", 0, []),
    ("secure@strict.dlv.test", "deferred", "defer", "default", 0, []),
    ("del@flaky.dlv.test", "deleted", "plain", "clear-ok", 1, ["deferred"]),
    ("nomid@plain.dlv.test", "delivered", "plain", "clear-ok", 1, ["delivered"]),
    ("pat@later.dlv.test", "delivered", "plain", "clear-ok", 2, ["deferred", "delivered"]),
]
EXPECTED_MESSAGES = 11  # submitted here (M2 has 2 recipients, M3 has 3)
EXPECTED_DSNS = 4  # expired old@, bounced gone@, x@nullmx, r@ (policy reject)


def log(msg):
    print("make_fixture: " + msg, flush=True)


def run(argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60, **kw)


def free_port_on(addresses):
    """A TCP port free on every address (sealgate uses one port for every MX)."""
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


def free_udp_tcp_port(address="127.0.0.1"):
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        with socket.socket() as t:
            t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                t.bind((address, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for UDP and TCP on %s" % address)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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


class Process:
    """A foreground process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv, log_path, cwd=None):
        self.log_path = log_path
        self.out = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self.out, stderr=self.out, stdin=subprocess.DEVNULL)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


def make_ca(d):
    cert, key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=sealgate fixture test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", key, "-out", cert])
    return cert, key


def issue(d, ca, name, dns_names):
    key, csr, crt, ext = (os.path.join(d, name + e) for e in (".key", ".csr", ".crt", ".ext"))
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=" + dns_names[0], "-keyout", key, "-out", csr])
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in dns_names) + "\n"
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
         "-extfile", ext, "-out", crt])
    os.chmod(key, 0o600)
    return crt, key


class Postfix:
    """One private Postfix instance (as tests/integration/probe_peers.py makes it):
    an smtpd with STARTTLS on address:port; everything it receives is held in its queue."""

    def __init__(self, directory, address, port, hostname, cert, key):
        self.etc, self.queue, self.data = (os.path.join(directory, x) for x in ("etc", "queue", "data"))
        self.maillog = os.path.join(directory, "maillog")
        for d in (self.etc, self.queue, self.data):
            os.makedirs(d)
        os.chmod(directory, 0o755)
        shutil.chown(self.data, "postfix", "postfix")
        os.chmod(self.data, 0o700)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write("\n".join([
                "compatibility_level = 3.6", "config_directory = " + self.etc, "queue_directory = " + self.queue,
                "data_directory = " + self.data, "command_directory = /usr/sbin",
                "daemon_directory = /usr/lib/postfix/sbin", "meta_directory = /etc/postfix",
                "shlib_directory = /usr/lib/postfix", "mail_owner = postfix", "setgid_group = postdrop",
                "maillog_file = " + self.maillog, "maillog_file_prefixes = " + directory,
                "myhostname = postfix.fixture.test", "mydestination =", "inet_interfaces = 127.0.0.1",
                "inet_protocols = ipv4", "mynetworks = 127.0.0.0/8",
                "smtpd_relay_restrictions = permit_mynetworks, reject", "smtpd_peername_lookup = no",
                "smtp_dns_support_level = disabled", "smtp_host_lookup = native", "alias_maps =",
                "alias_database =", "local_recipient_maps =", "biff = no",
                "smtpd_client_restrictions = check_client_access static:HOLD", "smtpd_tls_loglevel = 1",
            ]) + "\n")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write("\n".join([
                "%s:%d inet n - n - - smtpd -o myhostname=%s -o smtpd_tls_security_level=may"
                " -o smtpd_tls_cert_file=%s -o smtpd_tls_key_file=%s" % (address, port, hostname, cert, key),
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
            ]) + "\n")
        self.address, self.port, self.started = address, port, False

    def start(self):
        self.started = True
        r = subprocess.run(["postfix", "-c", self.etc, "start"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix start failed: %s %s" % (r.stdout, r.stderr))
        if not wait_for_banner(self.address, self.port):
            raise RuntimeError("Postfix does not answer on %s:%d" % (self.address, self.port))

    def pids(self):
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
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
        subprocess.run(["postfix", "-c", self.etc, "stop"], capture_output=True, timeout=60)
        deadline = time.time() + 10
        while self.pids() and time.time() < deadline:
            time.sleep(0.1)
        for p in self.pids():  # only this instance's daemons (MAIL_CONFIG is ours)
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


def local_data():
    hosts = {"mx-tls": A_TLS, "mx-plain": A_PLAIN, "mx-flaky": A_FLAKY, "mx-bounce": A_BOUNCE, "mx-dsn": A_DSN,
             "mx-later": A_LATER}
    rr = ["dlv.test. 600 IN SOA ns.dlv.test. hostmaster.dlv.test. 1 3600 600 86400 60"]
    rr += ["%s.dlv.test. 300 IN A %s" % kv for kv in hosts.items()]
    for domain, mx in (("tls", "mx-tls"), ("plain", "mx-plain"), ("flaky", "mx-flaky"), ("bounce", "mx-bounce"),
                       ("ours", "mx-dsn"), ("later", "mx-later"), ("strict", "mx-plain")):
        rr.append("%s.dlv.test. 300 IN MX 10 %s.dlv.test." % (domain, mx))
    rr.append("nullmx.dlv.test. 300 IN MX 0 .")
    return rr


class Fixture:
    def __init__(self, binary, out_dir, work):
        self.bin, self.out, self.dir = binary, out_dir, work
        self.db_path = os.path.join(out_dir, "records-709c782.sqlite")
        self.stops = []
        self.dumps = {}

    # ------------------------------------------------------------- peers --
    def start_sink(self, name, address, flags):
        dump = os.path.join(self.dir, "dump-" + name)
        os.makedirs(dump, exist_ok=True)
        os.chmod(dump, 0o777)
        self.dumps[name] = dump
        p = Process(["smtp-sink", "-u", "nobody"] + flags + ["-d", os.path.join(dump, "%H%M%S."),
                     "%s:%d" % (address, self.mx_port), "100"], os.path.join(self.dir, "sink-%s.log" % name))
        self.stops.append(p.stop)
        if not wait_for_banner(address, self.mx_port):
            raise RuntimeError("smtp-sink %s did not start: %s" % (name, p.log()))
        return p

    def start_peers(self):
        d = self.dir
        self.ca = make_ca(d)
        tls_cert = issue(d, self.ca, "mx-tls", ["mx-tls.dlv.test"])
        self.mx_port = free_port_on([A_TLS, A_PLAIN, A_BOUNCE, A_FLAKY, A_DSN, A_LATER])
        self.postfix = Postfix(os.path.join(d, "postfix"), A_TLS, self.mx_port, "mx-tls.dlv.test", *tls_cert)
        self.stops.append(self.postfix.stop)
        self.postfix.start()
        self.start_sink("plain", A_PLAIN, [])
        self.start_sink("bounce", A_BOUNCE, ["-f", "RCPT"])  # 550 to every RCPT
        self.start_sink("flaky", A_FLAKY, ["-r", "RCPT"])  # 451 to every RCPT
        self.start_sink("dsn", A_DSN, [])
        self.later = self.start_sink("later", A_LATER, ["-r", "RCPT"])  # 451 now, replaced by a 250 sink later
        dns = os.path.join(d, "dns")
        os.makedirs(dns)
        self.dns_port = free_udp_tcp_port()
        with open(os.path.join(dns, "unbound.conf"), "w") as f:
            lines = ["server:", "  interface: 127.0.0.1", "  port: %d" % self.dns_port, "  do-daemonize: no",
                     '  username: ""', '  chroot: ""', '  directory: "%s"' % dns, '  pidfile: "%s/unbound.pid"' % dns,
                     "  use-syslog: no", '  logfile: ""', "  do-ip6: no", "  verbosity: 1",
                     '  local-zone: "test." nodefault', '  domain-insecure: "test."',
                     '  local-zone: "dlv.test." static']
            lines += ["  local-data: '%s'" % rr for rr in local_data()]
            f.write("\n".join(lines) + "\n")
        unbound = Process(["unbound", "-d", "-c", "unbound.conf"], os.path.join(dns, "unbound.out"), cwd=dns)
        self.stops.append(unbound.stop)
        deadline = time.time() + 20
        while time.time() < deadline:
            r = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.dns_port), "+time=1", "+tries=1", "+short",
                                "tls.dlv.test", "MX"], capture_output=True, text=True)
            if r.returncode == 0 and "mx-tls.dlv.test." in r.stdout:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("unbound does not answer: " + unbound.log())

    # ----------------------------------------------------------- gateway --
    def start_gateway(self):
        d = self.dir
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", os.path.join(d, "key.pem"), "-out", os.path.join(d, "cert.pem")])
        self.port, self.sub_port = free_port(), free_port()
        with open(os.path.join(d, "policy.yaml"), "w") as f:
            f.write(POLICY)
        self.config = os.path.join(d, "sealgate.yaml")
        with open(self.config, "w") as f:
            f.write("\n".join([
                "hostname: gw.test",
                "listeners:",
                "  - {name: smarthost, address: 127.0.0.1, port: %d, tls: none, auth: none}" % self.port,
                "  - {name: submission, address: 127.0.0.1, port: %d, tls: starttls, auth: required}" % self.sub_port,
                "tls: {certificate: cert.pem, private_key: key.pem}",
                "relay:", '  networks: ["127.0.0.0/8"]', "  users_file: users",
                "spool: spool",
                "database: %s" % self.db_path,
                "policy_file: policy.yaml",
                'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}' % self.dns_port,
                "delivery: {port: %d, ca_file: %s, probe_cache_ttl: 10m, timeouts: {connect: 5s}}"
                % (self.mx_port, self.ca[0]),
                # No automatic retry during the run (retries come from `queue flush`);
                # a short max_age so that one recipient expires.
                "queue: {retry_min: 10m, retry_max: 1h, max_age: %ds}" % MAX_AGE,
                "threads: 2",
            ]) + "\n")
        r = subprocess.run([self.bin, "passwd", "--config", self.config, AUTH_USER], input=AUTH_PASSWORD + "\n",
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("sealgate passwd: " + r.stderr)
        self.gw_log = os.path.join(d, "sealgate.log")
        self.gw = Process([self.bin, "run", "--config", self.config], self.gw_log)
        self.stops.append(self.stop_gateway)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.gw.proc.poll() is not None:
                raise RuntimeError("gateway exited: " + self.gw.log())
            if wait_for_banner("127.0.0.1", self.port, 1) and wait_for_banner("127.0.0.1", self.sub_port, 1):
                return
            time.sleep(0.1)
        raise RuntimeError("gateway did not start: " + self.gw.log())

    def stop_gateway(self):
        """SIGTERM, as an operator's systemctl stop: the writer thread commits what is queued."""
        if self.gw.proc.poll() is None:
            self.gw.proc.send_signal(signal.SIGTERM)
            try:
                self.gw.proc.wait(30)
            except subprocess.TimeoutExpired:
                raise RuntimeError("gateway did not stop on SIGTERM")
        if not self.gw.out.closed:
            self.gw.out.close()
        return self.gw.proc.returncode

    # ----------------------------------------------------------- helpers --
    @staticmethod
    def message(subject, rcpt, extra="", message_id=True):
        mid = "Message-ID: <%s@ours.dlv.test>\r\n" % subject.replace(" ", "-") if message_id else ""
        return ("From: Clinic App <app@ours.dlv.test>\r\nTo: <%s>\r\nSubject: %s\r\n%s"
                "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n%s\r\n"
                "Dear patient,\r\nyour appointment is confirmed.\r\n.leading dot stays\r\nGr\u00fc\u00dfe\r\n"
                % (rcpt, subject, mid, extra))

    def send(self, rcpts, content, submission=False):
        argv = ["swaks", "--from", SENDER, "--to", ",".join(rcpts), "--data", "-", "--helo", "app.ours.dlv.test"]
        if submission:
            argv += ["--server", "127.0.0.1:%d" % self.sub_port, "--tls", "--auth", "PLAIN", "--auth-user", AUTH_USER,
                     "--auth-password", AUTH_PASSWORD]
        else:
            argv += ["--server", "127.0.0.1:%d" % self.port]
        r = subprocess.run(argv, input=content.replace("\r\n", "\n"), capture_output=True, text=True, timeout=60)
        m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-F]{16})", r.stdout)
        if r.returncode != 0 or not m:
            raise RuntimeError("swaks failed:\n" + r.stdout + r.stderr)
        log("queued %s for %s" % (m.group(1), ", ".join(rcpts)))
        return m.group(1)

    def cli(self, *args):
        r = subprocess.run([self.bin, "queue", *args, "--config", self.config], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError("sealgate queue %s: %s" % (" ".join(args), r.stderr))
        log("sealgate queue %s: %s" % (" ".join(args), r.stdout.strip()))
        return r.stdout

    def db(self, sql, args=()):
        if not os.path.exists(self.db_path):
            return []
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
        finally:
            con.close()

    def status(self, qid, idx=0):
        rows = self.db("SELECT status, attempts FROM recipients WHERE queue_id=? AND idx=?", (qid, idx))
        return rows[0] if rows else (None, 0)

    def wait_until(self, what, predicate, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise RuntimeError("timed out waiting for %s\n%s" % (what, self.gw.log()[-6000:]))

    def wait_status(self, qid, idx, status, attempts=None):
        self.wait_until("%s[%d] %s" % (qid, idx, status),
                        lambda: self.status(qid, idx)[0] == status
                        and (attempts is None or self.status(qid, idx)[1] == attempts))

    def dsn_count(self):
        rows = self.db("SELECT count(*) FROM messages m JOIN recipients r USING (queue_id)"
                       " WHERE m.listener='dsn' AND r.status='delivered'")
        return rows[0][0] if rows else 0

    # ---------------------------------------------------------- scenario --
    def scenario(self):
        # 1. A recipient that expires: 451, then (older than queue.max_age) 451 again.
        t0 = time.time()
        old = self.send(["old@flaky.dlv.test"], self.message("fixture expired", "old@flaky.dlv.test"))
        self.wait_status(old, 0, "deferred", 1)
        time.sleep(max(0.0, t0 + MAX_AGE + 2 - time.time()))
        self.cli("flush", old)
        self.wait_status(old, 0, "expired")
        self.wait_until("its failure DSN", lambda: self.dsn_count() >= 1)

        # 2. Verified TLS to the Postfix MX.
        m1 = self.send(["pat@tls.dlv.test"], self.message("fixture tls", "pat@tls.dlv.test"))
        self.wait_status(m1, 0, "delivered")
        # 3. Over STARTTLS with AUTH: TLS and auth_user on the message row; two methods, two transactions.
        m2 = self.send(["a@tls.dlv.test", "b@plain.dlv.test"], self.message("fixture submission", "a@tls.dlv.test"),
                       submission=True)
        self.wait_status(m2, 0, "delivered")
        self.wait_status(m2, 1, "delivered")
        # 4. Three recipients, three outcomes: 250, 550, 451 (the 451 is retried once by flush: 2 attempts).
        m3 = self.send(["c@plain.dlv.test", "gone@bounce.dlv.test", "later@flaky.dlv.test"],
                       self.message("fixture mixed", "c@plain.dlv.test"))
        self.wait_status(m3, 0, "delivered")
        self.wait_status(m3, 1, "bounced")
        self.wait_status(m3, 2, "deferred", 1)
        self.cli("flush", m3)
        self.wait_status(m3, 2, "deferred", 2)
        # 5. Null MX: bounced without a connection.
        m4 = self.send(["x@nullmx.dlv.test"], self.message("fixture nullmx", "x@nullmx.dlv.test"))
        self.wait_status(m4, 0, "bounced")
        # 6. Refused by policy (reject): bounced without a connection.
        m5 = self.send(["r@plain.dlv.test"], self.message("fixture restricted", "r@plain.dlv.test",
                                                          "X-Sensitivity: restricted\r\n"))
        self.wait_status(m5, 0, "bounced")
        # 7. PHI to a domain whose MX offers no STARTTLS: held by policy.
        m6 = self.send(["phi@plain.dlv.test"], self.message("fixture phi", "phi@plain.dlv.test",
                                                            "X-Sensitivity: phi\r\n"))
        self.wait_status(m6, 0, "held")
        # 8. Verified TLS demanded, MX without STARTTLS: deferred by policy (method defer, no MX contacted).
        m7 = self.send(["secure@strict.dlv.test"], self.message("fixture strict", "secure@strict.dlv.test"))
        self.wait_status(m7, 0, "deferred")
        # 9. Deferred by a 451, then deleted by an operator.
        m8 = self.send(["del@flaky.dlv.test"], self.message("fixture deleted", "del@flaky.dlv.test"))
        self.wait_status(m8, 0, "deferred", 1)
        self.cli("delete", m8)
        self.wait_status(m8, 0, "deleted")
        # 10. No Message-ID header: messages.message_id stays NULL.
        m9 = self.send(["nomid@plain.dlv.test"], self.message("fixture nomid", "nomid@plain.dlv.test",
                                                              message_id=False))
        self.wait_status(m9, 0, "delivered")
        # 11. 451 first, then (sink replaced by one that answers 250, flush) delivered.
        m11 = self.send(["pat@later.dlv.test"], self.message("fixture later", "pat@later.dlv.test"))
        self.wait_status(m11, 0, "deferred", 1)
        self.later.stop()
        self.start_sink("later-ok", A_LATER, [])
        self.cli("flush", m11)
        self.wait_status(m11, 0, "delivered", 2)

        self.wait_until("%d delivered DSNs" % EXPECTED_DSNS, lambda: self.dsn_count() >= EXPECTED_DSNS)
        self.wait_until("nothing left queued", lambda: not self.db("SELECT 1 FROM recipients WHERE status='queued'"))
        self.cli("list")
        return [old, m1, m2, m3, m4, m5, m6, m7, m8, m9, m11]

    def check(self):
        """The database after SIGTERM: exactly the expected content. Opened
        immutable: a read-only WAL connection would leave -wal and -shm files."""
        con = sqlite3.connect("file:%s?mode=ro&immutable=1" % self.db_path, uri=True)
        try:
            q = lambda sql: con.execute(sql).fetchall()
            rows = q("SELECT r.queue_id, r.idx, r.address, r.status, r.method, r.rule, r.attempts, m.listener, m.sender"
                     " FROM recipients r JOIN messages m USING (queue_id) ORDER BY m.received_at, m.rowid, r.idx")
            outcomes = {}
            for qid, idx, outcome in q("SELECT queue_id, idx, outcome FROM attempts ORDER BY rowid"):
                outcomes.setdefault((qid, idx), []).append(outcome)
            got = [(a, st, me, ru, n, outcomes.get((qid, idx), []))
                   for qid, idx, a, st, me, ru, n, listener, _ in rows if listener != "dsn"]
            dsns = [(a, st, me, ru, n, outcomes.get((qid, idx), []), sender)
                    for qid, idx, a, st, me, ru, n, listener, sender in rows if listener == "dsn"]
            problems = []
            if q("SELECT version FROM schema_version") != [(2,)]:
                problems.append("schema_version is not one row 2")
            if sorted(got, key=str) != sorted(EXPECTED, key=str):
                problems.append("recipients:\n  %s" % "\n  ".join(map(str, got)))
            if dsns != [(SENDER, "delivered", "plain", "clear-ok", 1, ["delivered"], "")] * EXPECTED_DSNS:
                problems.append("DSNs: %s" % dsns)
            if q("SELECT count(*) FROM messages") != [(EXPECTED_MESSAGES + EXPECTED_DSNS,)]:
                problems.append("messages: %s" % q("SELECT count(*) FROM messages"))
            if q("SELECT count(*) FROM messages WHERE message_id IS NULL") != [(1,)]:
                problems.append("not exactly one message without a Message-ID")
            if q("SELECT auth_user, tls_protocol IS NOT NULL FROM messages WHERE listener='submission'") != [
                    (AUTH_USER, 1)]:
                problems.append("the submission message has no auth_user or TLS")
            if q("SELECT count(*) FROM recipients WHERE certificate='verified' AND tls_protocol IS NOT NULL") != [(2,)]:
                problems.append("not two recipients delivered over verified TLS")
            if problems:
                raise RuntimeError("the database is not as expected:\n" + "\n".join(problems))
        finally:
            con.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binary", help="sealgate built from commit 709c782 (build/gateway/sealgate)")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="directory for records-709c782.sqlite (default: beside this script)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, spool, peers)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make_fixture: needs root (a private Postfix, smtp-sink -u nobody)")
    binary = os.path.abspath(a.binary)
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(os.path.join(out, "records-709c782.sqlite" + suffix))
        except FileNotFoundError:
            pass
    work = tempfile.mkdtemp(prefix="sealgate-fixture-")
    os.chmod(work, 0o755)
    f = Fixture(binary, out, work)
    ok = False
    try:
        f.start_peers()
        f.start_gateway()
        f.scenario()
        rc = f.stop_gateway()
        if rc != 0:
            raise RuntimeError("gateway exited %s on SIGTERM:\n%s" % (rc, f.gw.log()[-3000:]))
        for suffix in ("-wal", "-shm"):
            if os.path.exists(f.db_path + suffix):
                raise RuntimeError(f.db_path + suffix + " left behind: the database was not closed cleanly")
        f.check()
        ok = True
    finally:
        for stop in reversed(f.stops):
            try:
                stop()
            except Exception as e:  # keep stopping the others
                log("stopping: %s" % e)
        if ok and not a.keep:
            shutil.rmtree(work, True)
        else:
            log("work directory kept: " + work)
    log("wrote %s" % f.db_path)


if __name__ == "__main__":
    main()
