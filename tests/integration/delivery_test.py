"""End-to-end delivery through the built gateway to real peers on 127.0.5.0/24:
a Postfix smtpd with STARTTLS and a test-CA certificate (mail held in its
queue and read back with postcat), smtp-sink instances (plain, 451-then-250,
550, the sender's own MX collecting DSNs), a STARTTLS-stripping
man-in-the-middle in front of the Postfix, and a DNS (nsd with a signed zone
behind a validating unbound, plus unsigned local data). Every peer is started
here and stopped at the end, also when a test fails. Postfix needs root."""
import email
import email.policy
import glob
import hashlib
import json
import os
import re
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

import probe_peers as peers
from browser import Browser
from harness import BIN, Gateway

A_TLS, A_PLAIN, A_STRIP, A_FLAKY, A_BOUNCE, A_DSN, A_LOAD = ("127.0.5.11", "127.0.5.14", "127.0.5.16", "127.0.5.17",
                                                             "127.0.5.18", "127.0.5.19", "127.0.5.20")
A_EARLY, A_LATE = "127.0.5.21", "127.0.5.22"  # hostile MX hosts: 250 to DATA, 354 after the final dot
# spare.dlv.test: a first MX that answers 451 to MAIL, a second that counts connections (in front of the Postfix)
A_BUSY, A_COUNT = "127.0.5.23", "127.0.5.24"
A_REPORT = "127.0.5.25"  # an HTTPS receiver of TLS reports (RFC 8460 5.2)
A_RPT_STRIP = "127.0.5.26"  # rpt.dlv.test's first MX: a proxy that strips STARTTLS from every connection
MARKER = "BODY-MARKER-4b1d"  # stands for content that must never travel in clear

# Pages a person sees are kept here with their screenshots (as compliance_report_test does).
ARTIFACTS = os.environ.get("SEALGATE_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                                               "test-artifacts"))

POLICY = """\
rules:
  - name: end-to-end
    match: {domains: pgp.dlv.test}
    methods: [pgp, tls, plain]
    tls: {min_version: "1.2", verify: none}
    on_failure: next
  - name: smime-first
    match: {domains: smime.dlv.test}
    methods: [smime, tls, plain]
    tls: {min_version: "1.2", verify: none}
    on_failure: next
  - name: clear-ok
    match: {domains: [plain.dlv.test, flaky.dlv.test, bounce.dlv.test, ours.dlv.test, load.dlv.test, early.dlv.test,
                      late.dlv.test, spare.dlv.test]}
    methods: [tls, plain]
    tls: {min_version: "1.2", verify: none}
    on_failure: next
  - name: default
    methods: [tls]
    tls: {min_version: "1.2", verify: ca}
    on_failure: defer
"""


def local_data(port):
    hosts = {"report": A_REPORT, "mx-rpt-strip": A_RPT_STRIP, "mx-tls": A_TLS, "mx-plain": A_PLAIN, "mx-strip": A_STRIP, "mx-flaky": A_FLAKY, "mx-bounce": A_BOUNCE,
             "mx-dsn": A_DSN, "mx-load": A_LOAD, "mx-early": A_EARLY, "mx-late": A_LATE, "mx-busy": A_BUSY,
             "mx-count": A_COUNT}
    rr = ["dlv.test. 600 IN SOA ns.dlv.test. hostmaster.dlv.test. 1 3600 600 86400 60"]
    rr += ["%s.dlv.test. 300 IN A %s" % kv for kv in hosts.items()]
    for domain, mx in (("tls", "mx-tls"), ("plain", "mx-plain"), ("strip", "mx-strip"), ("flaky", "mx-flaky"),
                       ("bounce", "mx-bounce"), ("ours", "mx-dsn"), ("load", "mx-load"), ("pgp", "mx-plain"),
                       ("smime", "mx-plain"),
                       ("early", "mx-early"), ("late", "mx-late")):
        rr.append("%s.dlv.test. 300 IN MX 10 %s.dlv.test." % (domain, mx))
    rr.append("nullmx.dlv.test. 300 IN MX 0 .")
    # rpt.dlv.test: a first MX without STARTTLS (a stripping proxy of its
    # own), a second with verified TLS; it asks for TLS reports (RFC 8460) by
    # mail to the plain sink and by HTTPS POST to the report receiver.
    rr.append("rpt.dlv.test. 300 IN MX 10 mx-rpt-strip.dlv.test.")
    rr.append("rpt.dlv.test. 300 IN MX 20 mx-tls.dlv.test.")
    rr.append('_smtp._tls.rpt.dlv.test. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@plain.dlv.test,'
              'https://report.dlv.test:%d/v1/tlsrpt"' % port)
    rr.append("spare.dlv.test. 300 IN MX 10 mx-busy.dlv.test.")
    rr.append("spare.dlv.test. 300 IN MX 20 mx-count.dlv.test.")
    return rr


def signed_zone(port, tlsa_good):
    return "\n".join([
        "$ORIGIN dane.test.", "$TTL 300",
        "@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 60",
        "@ IN NS ns.dane.test.", "ns IN A 127.0.0.1",
        "@ IN MX 10 mx.dane.test.", "mx IN A " + A_TLS,
        "_%d._tcp.mx IN TLSA 3 1 1 %s" % (port, tlsa_good),
        "bad IN MX 10 mxbad.dane.test.", "mxbad IN A " + A_TLS,
        "_%d._tcp.mxbad IN TLSA 3 1 1 %s" % (port, "00" * 32), ""])


class StripProxy:
    """A man in the middle in front of an MX: relays both ways, and from its
    connection number strip_from on (the first is the gateway's probe) replaces
    STARTTLS in the server's replies, as a downgrade attacker does; with
    strip_from None it only counts connections. Keeps every octet the client
    sent, so a test can prove what crossed in clear."""

    def __init__(self, address, port, upstream, strip_from=2):
        self.upstream = upstream
        self.strip_from = strip_from
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.connections = 0
        self.from_client = bytearray()
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopping:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            strip = self.strip_from is not None and self.connections >= self.strip_from
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self.pump, args=(client, server, False, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, strip, False), daemon=True).start()

    def pump(self, src, dst, strip, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if strip:
                    data = data.replace(b"STARTTLS", b"XXXXXXXX")
                if record:
                    with self.lock:
                        self.from_client += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


class HostileMx:
    """An MX that lies about DATA: `early` answers 250 to the DATA command
    itself, `late` answers 354 again after the final dot. Counts the DATA
    commands and the final dots it saw. `busy` answers 451 to MAIL, which
    sends a client on to the next MX."""

    def __init__(self, address, port, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.data_commands = 0
        self.final_dots = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")
        try:
            conn.sendall(b"220 hostile ESMTP\r\n")
            in_data = False
            for line in f:
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        self.final_dots += 1
                        conn.sendall(b"354 send it again\r\n" if self.mode == "late" else b"250 ok\r\n")
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-hostile\r\n250 PIPELINING\r\n")
                elif verb == b"MAIL" and self.mode == "busy":
                    conn.sendall(b"451 4.3.2 busy, try another MX\r\n")
                elif verb == b"DATA":
                    self.data_commands += 1
                    if self.mode == "early":
                        conn.sendall(b"250 2.0.0 Ok: queued as NOTHING\r\n")
                    else:
                        in_data = True
                        conn.sendall(b"354 go ahead\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.sock.close()


@unittest.skipUnless(os.geteuid() == 0, "a private Postfix instance needs root to start")
class ReportReceiver:
    """An HTTPS server that takes RFC 8460 5.2 report POSTs and keeps them
    (path, Content-Type, body); 201 to each."""

    def __init__(self, address, port, cert):
        import http.server
        import ssl
        self.posts = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert[0], cert[1])
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Delivery(peers.PeersTestCase, unittest.TestCase):
    @classmethod
    def start_peers(cls):
        d = cls.dir = peers.tempdir("sealgate-delivery-")
        if os.environ.get("SEALGATE_KEEP_TMP") != "1":
            cls.cleanups.append(lambda: shutil.rmtree(d, True))
        ca = cls.ca = peers.TestCA(d)
        cls.tls_cert = ca.issue("mx-tls", ["mx-tls.dlv.test", "mx.dane.test", "mxbad.dane.test", "mx-strip.dlv.test"])
        cls.port = peers.free_port_on([A_TLS, A_PLAIN, A_STRIP, A_FLAKY, A_BOUNCE, A_DSN, A_LOAD, A_EARLY, A_LATE,
                                       A_BUSY, A_COUNT, A_REPORT, A_RPT_STRIP])
        cls.postfix = peers.Postfix(os.path.join(d, "postfix"), cls.port, [
            {"address": A_TLS, "hostname": "mx-tls.dlv.test",
             "options": {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": cls.tls_cert[0],
                         "smtpd_tls_key_file": cls.tls_cert[1]}}])
        cls.cleanups.append(cls.postfix.stop)
        cls.postfix.start()
        cls.dumps = {}
        for name, address, flags in (("plain", A_PLAIN, []), ("bounce", A_BOUNCE, ["-f", "RCPT"]),
                                     ("dsn", A_DSN, []), ("load", A_LOAD, None)):
            cls.start_sink(name, address, flags)
        cls.proxy = StripProxy(A_STRIP, cls.port, (A_TLS, cls.port))
        cls.cleanups.append(cls.proxy.stop)
        cls.counter = StripProxy(A_COUNT, cls.port, (A_TLS, cls.port), strip_from=None)
        cls.cleanups.append(cls.counter.stop)
        cls.rpt_strip = StripProxy(A_RPT_STRIP, cls.port, (A_TLS, cls.port), strip_from=1)
        cls.cleanups.append(cls.rpt_strip.stop)
        cls.reports = ReportReceiver(A_REPORT, cls.port, ca.issue("report", ["report.dlv.test"]))
        cls.cleanups.append(cls.reports.stop)
        cls.hostile = {mode: HostileMx(address, cls.port, mode) for mode, address in (("early", A_EARLY),
                                                                                     ("late", A_LATE),
                                                                                     ("busy", A_BUSY))}
        for h in cls.hostile.values():
            cls.cleanups.append(h.stop)
        os.makedirs(os.path.join(d, "dns"))
        signed = {"dane.test": signed_zone(cls.port, peers.spki_sha256(cls.tls_cert[0]))}
        cls.dns = peers.Dns(os.path.join(d, "dns"), signed, {}, "dlv.test", local_data(cls.port), cls.cleanups)

    @classmethod
    def start_sink(cls, name, address, flags, dump=True):
        """smtp-sink on address; flags None: no dump files (the load sink only counts)."""
        dump_dir = os.path.join(cls.dir, "dump-" + name)
        os.makedirs(dump_dir, exist_ok=True)
        os.chmod(dump_dir, 0o777)
        cls.dumps[name] = dump_dir
        argv = [peers.SMTP_SINK, "-u", "nobody"]
        if flags is not None:
            argv += flags + ["-d", os.path.join(dump_dir, "%H%M%S.")]
        argv += ["%s:%d" % (address, cls.port), "100"]
        p = peers.Process(argv, os.path.join(cls.dir, "sink-%s.log" % name))
        cls.cleanups.append(p.stop)
        if not peers.wait_for_banner(address, cls.port):
            raise RuntimeError("smtp-sink %s did not start: %s" % (name, p.log()))
        return p

    # ------------------------------------------------------------ helpers --
    def gateway(self, queue="{retry_min: 1s, retry_max: 2s}", extra="", delivery=""):
        gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}], queue=queue,
                     expect_clean_exit=False)
        with open(os.path.join(gw.dir, "policy.yaml"), "w") as f:
            f.write(POLICY)
        gw.add_config("policy_file: policy.yaml\n"
                      'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
                      "delivery: {port: %d, ca_file: %s, probe_cache_ttl: 10m, timeouts: {connect: 5s}%s}\n%s"
                      % (self.dns.port, self.port, self.ca.cert, delivery, extra))
        return gw.start()

    def send(self, gw, sender, rcpts, content):
        argv = ["swaks", "--server", "127.0.0.1:%d" % gw.port, "--from", sender, "--to", ",".join(rcpts),
                "--data", "-"]
        r = subprocess.run(argv, input=content.replace("\r\n", "\n"), capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = re.search(r"250 2\.0\.0 Ok: queued as ([0-9A-F]{16})", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        return m.group(1)

    def tls_reports(self, gw, day):
        """`sealgate tlsrpt show --json` of a day, by policy domain."""
        r = subprocess.run([BIN, "tlsrpt", "show", "--config", gw.config, "--day", day, "--json"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {rep["policies"][0]["policy"]["policy-domain"]: rep for rep in json.loads(r.stdout)}

    def queue_json(self, gw):
        r = subprocess.run([BIN, "queue", "list", "--config", gw.config, "--json"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def wait_until(self, what, predicate, timeout=60, gw=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        self.fail("timed out waiting for %s\n%s" % (what, gw.read_log()[-6000:] if gw else ""))

    def db(self, gw, sql, args=()):
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(gw.dir, "sealgate.db"), uri=True, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def recipient(self, gw, address):
        rows = self.db(gw, "SELECT status, method, rule, mx_host, tls_protocol, certificate, reply, policy_sha256"
                           " FROM recipients WHERE address=? ORDER BY rowid DESC LIMIT 1", (address,))
        return rows[0] if rows else None

    def delivered(self, gw, address):
        r = self.recipient(gw, address)
        return r is not None and r[0] == "delivered"

    def dump_files(self, name):
        return sorted(glob.glob(os.path.join(self.dumps[name], "*")))

    def postfix_held(self):
        return self.postfix.held()

    def postcat(self, queue_id):
        return self.postfix.message(queue_id)

    @staticmethod
    def message(subject, rcpt, extra=""):
        return ("From: App <app@ours.dlv.test>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@ours.dlv.test>\r\n"
                "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
                "%s\r\nDear patient,\r\n%s\r\n.leading dot stays\r\nGr\u00fc\u00dfe\r\n"
                % (rcpt, subject, subject.replace(" ", "-"), extra, MARKER))

    # -------------------------------------------------------------- tests --
    def test_verified_tls_delivery_arrives_identical_and_is_recorded(self):
        gw = self.gateway()
        before = {m["queue_id"] for m in self.postfix_held()}
        content = self.message("tls one", "pat@tls.dlv.test")
        self.send(gw, "app@ours.dlv.test", ["pat@tls.dlv.test"], content)
        self.wait_until("delivery to the TLS MX", lambda: self.delivered(gw, "pat@tls.dlv.test"), gw=gw)
        status, method, rule, mx, proto, cert, reply, sha = self.recipient(gw, "pat@tls.dlv.test")
        self.assertEqual((method, rule, mx, proto, cert), ("tls", "default", "mx-tls.dlv.test", "TLSv1.3", "verified"))
        self.assertRegex(sha, "^[0-9a-f]{64}$")
        self.assertTrue(reply.startswith("250"), reply)
        new = [m for m in self.postfix_held() if m["queue_id"] not in before]
        self.assertEqual(len(new), 1, new)
        self.assertEqual(new[0]["recipients"][0]["address"], "pat@tls.dlv.test")
        got = self.postcat(new[0]["queue_id"]).replace(b"\r\n", b"\n")
        # Apart from the Received: headers added on the way, the content is what was sent.
        self.assertIn(content.replace("\r\n", "\n").encode("utf-8"), got)
        self.assertIn(b"by gw.test (sealgate)", got)
        # Postfix saw TLS from the gateway.
        self.assertRegex(self.postfix.log(), r"Anonymous TLS connection established from \S+\[127\.0\.0\.1\]|"
                                             r"TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3")
        self.wait_until("the spool to empty", lambda: gw.queued() == [], gw=gw)
        # The message's "queued" line comes before any line about its delivery,
        # although a session and the delivery side run on different threads.
        lines = [l for l in gw.read_log().splitlines() if "<tls-one@ours.dlv.test>" in l or "to=<pat@tls.dlv.test>" in l]
        self.assertTrue(lines and lines[0].endswith("(queued)"), lines)

    def test_tls_reports_reach_mailto_and_https_once_with_the_counts_of_both_mx(self):
        import gzip
        gw = self.gateway()
        self.send(gw, "app@ours.dlv.test", ["pat@rpt.dlv.test"], self.message("tlsrpt", "pat@rpt.dlv.test"))
        self.wait_until("delivery by the second MX", lambda: self.delivered(gw, "pat@rpt.dlv.test"), gw=gw)
        self.assertEqual(self.recipient(gw, "pat@rpt.dlv.test")[3], "mx-tls.dlv.test")
        self.assertGreater(self.rpt_strip.connections, 0, "the first MX was tried")
        # The day's reports, as after the day ended (--day names it).
        day = time.strftime("%Y-%m-%d", time.gmtime())
        before = set(self.dump_files("plain"))
        posts_before = len(self.reports.posts)
        send = lambda: subprocess.run([BIN, "tlsrpt", "send", "--config", gw.config, "--day", day],
                                      capture_output=True, text=True, timeout=120)
        r = send()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("1 reports for %s: 1 queued, 1 posted" % day, r.stdout)
        mails = []

        def arrived():
            for f in self.dump_files("plain"):
                if f in before:
                    continue
                with open(f, "rb") as fh:
                    m = email.message_from_binary_file(fh, policy=email.policy.default)
                if m["TLS-Report-Domain"] == "rpt.dlv.test":
                    mails.append(m)
            return mails

        self.wait_until("the report mail", arrived, gw=gw)
        m = mails[0]
        self.assertEqual((m["TLS-Report-Submitter"], m["TLS-Required"]), ("gw.test", "No"))
        self.assertTrue(m["Subject"].startswith("Report Domain: rpt.dlv.test Submitter: gw.test Report-ID: <"), m["Subject"])
        self.assertEqual((m.get_content_type(), m.get_param("report-type")), ("multipart/report", "tlsrpt"))
        part = next(p for p in m.iter_attachments() if p.get_content_type() == "application/tlsrpt+gzip")
        self.assertRegex(part.get_filename(), r"^gw\.test!rpt\.dlv\.test!\d+!\d+\.json\.gz$")
        mailed = json.loads(gzip.decompress(part.get_content()))
        # The same report by HTTPS POST (RFC 8460 5.2).
        self.assertEqual(len(self.reports.posts), posts_before + 1)
        path, ctype, body = self.reports.posts[posts_before]
        self.assertEqual((path, ctype), ("/v1/tlsrpt", "application/tlsrpt+gzip"))
        posted = json.loads(gzip.decompress(body))
        self.assertEqual(posted, mailed)
        # RFC 8460 4.4's fields and types.
        self.assertEqual(set(posted), {"organization-name", "date-range", "contact-info", "report-id", "policies"})
        self.assertEqual(posted["date-range"], {"start-datetime": day + "T00:00:00Z", "end-datetime": day + "T23:59:59Z"})
        self.assertEqual(posted["contact-info"], "mailto:postmaster@gw.test")
        policy = posted["policies"][0]
        self.assertEqual(policy["policy"], {"policy-type": "no-policy-found", "policy-domain": "rpt.dlv.test",
                                            "mx-host": ["mx-rpt-strip.dlv.test", "mx-tls.dlv.test"]})
        # One session to each MX: the stripped one failed, the other carried the message.
        self.assertEqual(policy["summary"], {"total-successful-session-count": 1, "total-failure-session-count": 1})
        details = policy["failure-details"]
        self.assertEqual([(d["result-type"], d["receiving-mx-hostname"], d["failed-session-count"]) for d in details],
                         [("starttls-not-supported", "mx-rpt-strip.dlv.test", 1)])
        self.assertEqual(details[0]["receiving-ip"], A_RPT_STRIP)
        self.assertEqual(sum(d["failed-session-count"] for d in details),
                         policy["summary"]["total-failure-session-count"])
        # A second run sends nothing twice.
        r = send()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 queued, 0 posted, 2 sent before", r.stdout)
        self.assertEqual(len(self.reports.posts), posts_before + 1)
        bad = subprocess.run([BIN, "tlsrpt", "send", "--config", gw.config, "--day", "2026-13-01"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(bad.returncode, 2, bad.stderr)

    def test_one_connection_carries_several_messages_to_one_mx(self):
        gw = self.gateway()
        self.send(gw, "app@ours.dlv.test", ["warm@tls.dlv.test"], self.message("warm", "warm@tls.dlv.test"))
        self.wait_until("the first delivery", lambda: self.delivered(gw, "warm@tls.dlv.test"), gw=gw)
        def connects():
            with open(self.postfix.maillog, errors="replace") as f:
                return f.read().count("]: connect from")
        before = connects()
        for i in range(3):
            self.send(gw, "app@ours.dlv.test", ["r%d@tls.dlv.test" % i], self.message("reuse %d" % i, "r%d@tls.dlv.test" % i))
            self.wait_until("delivery %d" % i, lambda: self.delivered(gw, "r%d@tls.dlv.test" % i), gw=gw)
        # The kept connection (RSET after each transaction) carried them all,
        # and once idle for 5 s it is closed with QUIT.
        self.assertEqual(connects(), before)

        def closed_politely():
            with open(self.postfix.maillog, errors="replace") as f:
                lines = [l for l in f.read().splitlines() if "]: disconnect from" in l and " quit=1 " in l]
            return any(int(m.group(1)) >= 3 for l in lines for m in [re.search(r" mail=(\d+)", l)] if m)
        self.wait_until("the idle connection's QUIT", closed_politely, timeout=15, gw=gw)
        for i in range(3):
            self.assertEqual(self.recipient(gw, "r%d@tls.dlv.test" % i)[4:6], ("TLSv1.3", "verified"))

    def test_recipients_needing_different_methods_get_separate_transactions(self):
        gw = self.gateway()
        plain_before = set(self.dump_files("plain"))
        qid = self.send(gw, "app@ours.dlv.test", ["a@tls.dlv.test", "b@plain.dlv.test"],
                        self.message("split", "a@tls.dlv.test"))
        self.wait_until("both recipients", lambda: self.delivered(gw, "a@tls.dlv.test")
                        and self.delivered(gw, "b@plain.dlv.test"), gw=gw)
        rows = self.db(gw, "SELECT address, method, rule, mx_host, certificate FROM recipients WHERE queue_id=?"
                           " ORDER BY idx", (qid,))
        self.assertEqual(rows, [("a@tls.dlv.test", "tls", "default", "mx-tls.dlv.test", "verified"),
                                ("b@plain.dlv.test", "plain", "clear-ok", "mx-plain.dlv.test", "none")])
        new = [f for f in self.dump_files("plain") if f not in plain_before]
        self.assertEqual(len(new), 1)
        with open(new[0], "rb") as f:
            dump = f.read()
        self.assertIn(b"X-Rcpt-Args: <b@plain.dlv.test>", dump)
        self.assertEqual(re.findall(rb"^X-Rcpt-Args: (.*)$", dump, re.M), [b"<b@plain.dlv.test>"])

    def test_an_mx_the_probe_did_not_see_gets_only_the_delivery_connection(self):
        # mx-busy answers 451 to MAIL, so the transport moves on to mx-count,
        # which the probe never saw (probe_max_mx: 1). Its TLSA state comes
        # from the DNS: the one connection it gets is the delivery's (before
        # issue 13 a probe connection went first, only to learn TLSA records).
        gw = self.gateway(delivery=", probe_max_mx: 1")
        before = self.counter.connections
        self.send(gw, "app@ours.dlv.test", ["pat@spare.dlv.test"], self.message("spare", "pat@spare.dlv.test"))
        self.wait_until("delivery through the second MX", lambda: self.delivered(gw, "pat@spare.dlv.test"), gw=gw)
        self.assertEqual(self.recipient(gw, "pat@spare.dlv.test")[3], "mx-count.dlv.test")
        self.assertEqual(self.counter.connections - before, 1, "the delivery alone")

    def test_dsn_parameters_go_on_to_the_next_hop(self):
        # RFC 3461: RET and ENVID on MAIL, NOTIFY and ORCPT on each RCPT, as the
        # client gave them, to a next hop that offers DSN (smtp-sink does).
        gw = self.gateway()
        before = set(self.dump_files("plain"))
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=30) as c:
            c.ehlo("app.test")
            c.sendmail("app@ours.dlv.test", ["n1@plain.dlv.test", "n2@plain.dlv.test"],
                       self.message("dsn params", "n1@plain.dlv.test").encode("utf-8"),
                       mail_options=["RET=HDRS", "ENVID=batch+2B42"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;clinic+2Bn1@ours.dlv.test"])
        self.wait_until("both recipients", lambda: self.delivered(gw, "n1@plain.dlv.test")
                        and self.delivered(gw, "n2@plain.dlv.test"), gw=gw)
        new = [f for f in self.dump_files("plain") if f not in before]
        self.assertEqual(len(new), 1)
        with open(new[0], "rb") as f:
            dump = f.read()
        mail_args = re.findall(rb"^X-Mail-Args: (.*)$", dump, re.M)
        self.assertEqual(len(mail_args), 1)
        self.assertIn(b"RET=HDRS", mail_args[0])
        self.assertIn(b"ENVID=batch+2B42", mail_args[0])
        self.assertEqual(re.findall(rb"^X-Rcpt-Args: (.*)$", dump, re.M),
                         [b"<n%d@plain.dlv.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;clinic+2Bn1@ours.dlv.test" % i
                          for i in (1, 2)])

    def test_starttls_stripping_man_in_the_middle_never_sees_the_body(self):
        # No retry within the test: the count below is one attempt's.
        gw = self.gateway(queue="{retry_min: 10m, retry_max: 20m}")
        connections_before = self.proxy.connections
        qid = self.send(gw, "app@ours.dlv.test", ["pat@strip.dlv.test"], self.message("strip", "pat@strip.dlv.test"))
        self.wait_until("the stripped attempt", lambda: "does not offer STARTTLS" in gw.read_log(), gw=gw)
        time.sleep(0.5)
        with self.proxy.lock:
            seen = bytes(self.proxy.from_client)
        # The default rule reads the domain's facts: one probe connection, then
        # the delivery attempt. TLSA records come from the DNS, not a third.
        self.assertEqual(self.proxy.connections - connections_before, 2, "the probe and the delivery attempt")
        self.assertNotIn(MARKER.encode(), seen)
        self.assertNotIn(b"DATA", seen)
        self.assertNotIn(b"MAIL FROM", seen)
        q = self.queue_json(gw)
        msg = next(m for m in q["messages"] if m["id"] == qid)
        r = msg["recipients"][0]
        self.assertEqual(r["state"], "deferred")
        self.assertIn("does not offer STARTTLS", r["last_reply"])
        self.assertIsNone(self.recipient(gw, "pat@strip.dlv.test")[3], "nothing was sent to any MX")
        # The domain's TLS report counts the failed session, by its RFC 8460 name.
        report = self.tls_reports(gw, time.strftime("%Y-%m-%d", time.gmtime()))["strip.dlv.test"]["policies"][0]
        self.assertEqual(report["policy"]["policy-type"], "no-policy-found")
        self.assertEqual(report["summary"], {"total-successful-session-count": 0, "total-failure-session-count": 1})
        detail = report["failure-details"][0]
        self.assertEqual((detail["result-type"], detail["receiving-mx-hostname"]),
                         ("starttls-not-supported", "mx-strip.dlv.test"))
        self.assertTrue(detail["receiving-ip"].startswith("127."), detail)

    def test_a_hostile_mx_never_gets_a_message_recorded_as_delivered(self):
        # 250 to DATA (the content never sent) or 354 after the final dot: both
        # were recorded "delivered" and the message removed from the spool.
        gw = self.gateway(queue="{retry_min: 300s, retry_max: 600s}")
        for mode in ("early", "late"):
            rcpt = "x@%s.dlv.test" % mode
            self.send(gw, "app@ours.dlv.test", [rcpt], self.message("hostile " + mode, rcpt))
            self.wait_until("the attempt on " + mode, lambda: (self.recipient(gw, rcpt) or ("queued",))[0] != "queued",
                            gw=gw)
            status, _, _, mx, _, _, reply, _ = self.recipient(gw, rcpt)
            self.assertEqual(status, "deferred", reply)
            self.assertIn("unexpected reply", reply)
            self.assertEqual(mx, "mx-%s.dlv.test" % mode)
        self.assertEqual(self.hostile["early"].final_dots, 0, "no content after a 250 to DATA")
        self.assertGreaterEqual(self.hostile["late"].final_dots, 1)
        self.assertEqual(len(gw.queued()), 2, "both messages stay in the spool for another try")

    def test_a_large_message_streams_from_the_spool_and_arrives_identical(self):
        # Over 1 MiB a transfer reads the spool file as it sends, piece by piece.
        gw = self.gateway()
        before = set(self.dump_files("plain"))
        lines = "".join("%06d %s\r\n" % (i, "x" * 70) for i in range(40000))  # 3.1 MB
        content = self.message("large", "big@plain.dlv.test", extra="X-Size: large\r\n") + lines
        self.send(gw, "app@ours.dlv.test", ["big@plain.dlv.test"], content)
        self.wait_until("delivery of the large message", lambda: self.delivered(gw, "big@plain.dlv.test"), gw=gw)
        new = set(self.dump_files("plain")) - before
        self.assertEqual(len(new), 1)
        with open(new.pop(), "rb") as f:
            got = f.read().replace(b"\r\n", b"\n")
        self.assertIn(content.replace("\r\n", "\n").encode("utf-8"), got)

    def test_a_451_then_250_is_delivered_on_retry(self):
        sink = self.start_sink("flaky", A_FLAKY, ["-r", "RCPT"])
        self.addCleanup(sink.stop)
        gw = self.gateway()
        self.send(gw, "app@ours.dlv.test", ["x@flaky.dlv.test"], self.message("flaky", "x@flaky.dlv.test"))
        self.wait_until("the 4xx", lambda: (self.recipient(gw, "x@flaky.dlv.test") or ("",))[0] == "deferred", gw=gw)
        sink.stop()
        self.addCleanup(self.start_sink("flaky", A_FLAKY, []).stop)  # the address is free for the next test
        self.wait_until("the retry", lambda: self.delivered(gw, "x@flaky.dlv.test"), gw=gw)
        attempts = self.db(gw, "SELECT a.outcome, a.reply FROM attempts a JOIN recipients r USING (queue_id, idx)"
                               " WHERE r.address='x@flaky.dlv.test' ORDER BY a.rowid")
        self.assertEqual(attempts[0][0], "deferred")
        self.assertTrue(attempts[0][1].startswith("4"), attempts)
        self.assertEqual(attempts[-1][0], "delivered")

    def test_a_550_bounces_with_a_dsn_that_holds_no_content(self):
        gw = self.gateway()
        dsn_before = set(self.dump_files("dsn"))
        qid = self.send(gw, "app@ours.dlv.test", ["gone@bounce.dlv.test"],
                        self.message("Lab results for Jane Doe", "gone@bounce.dlv.test"))
        self.wait_until("the DSN", lambda: len(set(self.dump_files("dsn")) - dsn_before) == 1, gw=gw)
        self.assertEqual(self.recipient(gw, "gone@bounce.dlv.test")[0], "bounced")
        path = (set(self.dump_files("dsn")) - dsn_before).pop()
        with open(path, "rb") as f:
            raw = f.read()
        self.assertIn(b"X-Mail-Args: <>", raw, "DSNs come from the null sender")
        self.assertIn(b"X-Rcpt-Args: <app@ours.dlv.test>", raw)
        self.assertNotIn(MARKER.encode(), raw)
        self.assertNotIn(b"Jane Doe", raw)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        parts = [p.get_content_type() for p in msg.iter_parts()]
        self.assertEqual(parts, ["text/plain", "message/delivery-status"])
        status = msg.get_payload()[1].get_payload()
        fields = {k.lower(): v for block in status for k, v in block.items()}
        self.assertEqual(fields["final-recipient"], "rfc822; gone@bounce.dlv.test")
        self.assertEqual(fields["action"], "failed")
        self.assertTrue(fields["status"].startswith("5."), fields)
        self.assertIn("smtp; 5", fields["diagnostic-code"])
        self.assertEqual(fields["x-sealgate-queue-id"], qid)

    def test_null_mx_bounces_at_once(self):
        gw = self.gateway()
        self.send(gw, "app@ours.dlv.test", ["x@nullmx.dlv.test"], self.message("nullmx", "x@nullmx.dlv.test"))
        self.wait_until("the bounce", lambda: (self.recipient(gw, "x@nullmx.dlv.test") or ("",))[0] == "bounced", gw=gw)
        self.assertIn("null MX", self.recipient(gw, "x@nullmx.dlv.test")[6])

    def test_dane_match_delivers_and_a_mismatch_waits(self):
        gw = self.gateway()
        self.send(gw, "app@ours.dlv.test", ["ok@dane.test", "no@bad.dane.test"], self.message("dane", "ok@dane.test"))
        self.wait_until("the DANE delivery", lambda: self.delivered(gw, "ok@dane.test"), gw=gw)
        self.assertEqual(self.recipient(gw, "ok@dane.test")[5], "dane")
        bad = self.recipient(gw, "no@bad.dane.test")
        self.assertNotEqual(bad[0], "delivered")
        self.wait_until("the mismatch reason", lambda: "does not match them" in (self.recipient(gw, "no@bad.dane.test")[6] or ""),
                        gw=gw)
        # The session is in today's TLS reports (RFC 8460), as a DANE one.
        day = time.strftime("%Y-%m-%d", time.gmtime())
        reports = self.tls_reports(gw, day)
        ok = reports["dane.test"]["policies"][0]
        self.assertEqual(ok["policy"]["policy-type"], "tlsa")
        self.assertGreaterEqual(ok["summary"]["total-successful-session-count"], 1)
        # The mismatch was the probe's finding: the policy deferred without a
        # delivery session, and a probe is not one (RFC 8460 counts deliveries).
        self.assertNotIn("bad.dane.test", reports)
        self.assertEqual(reports["dane.test"]["date-range"]["start-datetime"], day + "T00:00:00Z")

    def test_policy_explain_uses_live_probe_facts(self):
        gw = self.gateway()
        r = subprocess.run([BIN, "policy", "explain", "--config", gw.config, "--from", "app@ours.dlv.test",
                            "--to", "pat@tls.dlv.test", "--to", "x@plain.dlv.test", "--to", "y@bad.dane.test", "--json"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        got = {x["recipient"]: x for x in doc["recipients"]}
        tls = got["pat@tls.dlv.test"]
        self.assertEqual(tls["facts_source"], "probe")
        self.assertIn("starttls=yes tls-version=1.3 verified=yes", tls["facts"])
        self.assertEqual((tls["rule"], tls["method"], tls["transport"]), ("default", "tls", "verified"))
        plain = got["x@plain.dlv.test"]
        self.assertIn("starttls=no", plain["facts"])
        self.assertEqual((plain["rule"], plain["method"]), ("clear-ok", "plain"))
        dane = got["y@bad.dane.test"]
        self.assertIn("dane=mismatch", dane["facts"])
        self.assertEqual(dane["method"], "defer")
        self.assertIn("does not match", " ".join(c["why"] for c in dane["considered"]))

    def test_queue_list_show_flush_delete(self):
        sink = self.start_sink("flaky", A_FLAKY, ["-r", "RCPT"])  # 451 to every RCPT
        self.addCleanup(sink.stop)
        gw = self.gateway(queue="{retry_min: 10m, retry_max: 1h}")  # no automatic retry during the test
        qid = self.send(gw, "app@ours.dlv.test", ["x@flaky.dlv.test"], self.message("queue", "x@flaky.dlv.test"))
        self.wait_until("the first deferral", lambda: gw.read_log().count("status=deferred") == 1, gw=gw)
        q = self.queue_json(gw)
        self.assertEqual([m["id"] for m in q["messages"]], [qid])
        r = q["messages"][0]["recipients"][0]
        self.assertEqual((r["address"], r["state"], r["attempts"], r["method"]), ("x@flaky.dlv.test", "deferred", 1, "plain"))
        self.assertTrue(r["last_reply"].startswith("4"), r)
        self.assertIn("next_try", r)
        text = subprocess.run([BIN, "queue", "list", "--config", gw.config], capture_output=True, text=True).stdout
        self.assertIn("<x@flaky.dlv.test> deferred, 1 attempt, next ", text)
        self.assertIn("-- 1 message, 1 recipient waiting", text)
        show = subprocess.run([BIN, "queue", "show", "--config", gw.config, qid, "--json"], capture_output=True,
                              text=True)
        self.assertEqual(show.returncode, 0, show.stderr)
        story = json.loads(show.stdout)
        self.assertEqual(story["message_id"], "<queue@ours.dlv.test>")
        self.assertEqual([a["outcome"] for a in story["attempts"]], ["deferred"])
        self.assertNotIn(MARKER, show.stdout, "queue show never prints content")
        # flush: the running gateway tries again at once.
        r = subprocess.run([BIN, "queue", "flush", "--config", gw.config, qid], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout), (0, "flush requested for %s\n" % qid), r.stderr)
        self.wait_until("the flushed attempt", lambda: gw.read_log().count("status=deferred") == 2, gw=gw)
        # delete: gone from the spool, recorded as deleted, and no DSN (an operator's act).
        r = subprocess.run([BIN, "queue", "delete", "--config", gw.config, qid], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("deleted (1 recipient recorded as deleted)", r.stdout)
        self.assertEqual(gw.queued(), [])
        self.assertEqual(self.recipient(gw, "x@flaky.dlv.test")[0], "deleted")
        self.assertEqual(self.queue_json(gw)["messages"], [])
        r = subprocess.run([BIN, "queue", "delete", "--config", gw.config, qid], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no such message in the queue", r.stderr)
        r = subprocess.run([BIN, "queue", "show", "--config", gw.config, "../../etc/passwd"], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)

    def gpg(self, home, *args, input=None):
        r = subprocess.run(["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                            *args], input=input, capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
        return r.stdout

    def test_a_recipient_with_a_key_gets_pgp_mime_that_gpg_decrypts(self):
        # Short paths: gpg-agent's socket must fit in sun_path.
        recipient, gateway_home = (tempfile.mkdtemp(prefix="sgr", dir="/tmp"), tempfile.mkdtemp(prefix="sgg", dir="/tmp"))
        for home in (recipient, gateway_home):
            os.chmod(home, 0o700)
            self.addCleanup(shutil.rmtree, home, True)
            self.addCleanup(subprocess.run, ["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        self.gpg(recipient, "--quick-gen-key", "Pat <pat@pgp.dlv.test>", "future-default", "default", "1d")
        self.gpg(gateway_home, "--import", input=self.gpg(recipient, "--export", "pat@pgp.dlv.test"))
        gw = self.gateway(extra="crypto: {gnupg_home: %s}\n" % gateway_home)
        plain_before = set(self.dump_files("plain"))
        content = self.message("pgp one", "pat@pgp.dlv.test")
        qid = self.send(gw, "app@ours.dlv.test", ["pat@pgp.dlv.test"], content)
        self.wait_until("the PGP delivery", lambda: self.delivered(gw, "pat@pgp.dlv.test"), gw=gw)
        self.assertEqual(self.recipient(gw, "pat@pgp.dlv.test")[1:3], ("pgp", "end-to-end"))
        # The evidence names the key it was encrypted to.
        fingerprint = re.search(r"^fpr:+([0-9A-F]{40}):", self.gpg(recipient, "--with-colons", "--list-keys").decode(),
                                re.M).group(1)
        r = subprocess.run([BIN, "report", "--config", gw.config, "--message", qid, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        (rcpt,) = json.loads(r.stdout)["recipients"]
        self.assertEqual((rcpt["method"], rcpt["key_fingerprint"]), ("pgp", fingerprint))
        new = [f for f in self.dump_files("plain") if f not in plain_before]
        self.assertEqual(len(new), 1)
        with open(new[0], "rb") as f:
            raw = f.read()
        self.assertNotIn(MARKER.encode(), raw, "the body never travels in clear")
        self.assertNotIn(b"pgp one", raw, "nor the real Subject")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(msg.get_content_type(), "multipart/encrypted")
        self.assertEqual(msg.get_param("protocol"), "application/pgp-encrypted")
        version, payload = msg.get_payload()
        self.assertEqual(version.get_content_type(), "application/pgp-encrypted")
        inner = self.gpg(recipient, "--decrypt", input=payload.get_payload(decode=True))
        self.assertIn(MARKER.encode(), inner)
        self.assertIn(b"pgp one", inner, "the Subject travels inside, as a protected header")

    def audit(self, gw, *args):
        return subprocess.run([BIN, "audit", args[0], "--config", gw.config] + list(args[1:]), capture_output=True,
                              text=True, timeout=60)

    def test_the_audit_chain_verifies_names_a_tampered_entry_and_keeps_every_policy(self):
        witness = os.path.join(tempfile.mkdtemp(prefix="sgw", dir="/tmp"), "checkpoints.log")
        self.addCleanup(shutil.rmtree, os.path.dirname(witness), True)
        plain_before = set(self.dump_files("plain"))
        gw = self.gateway(extra="audit: {checkpoint_interval: 2s, witness: {file: %s, mail: audit@plain.dlv.test}}\n"
                          % witness)
        qid = self.send(gw, "app@ours.dlv.test", ["pat@tls.dlv.test", "ann@plain.dlv.test", "nobody@bounce.dlv.test"],
                        self.message("audit one", "pat@tls.dlv.test"))
        self.wait_until("two deliveries and a bounce", lambda: self.delivered(gw, "pat@tls.dlv.test") and
                        self.delivered(gw, "ann@plain.dlv.test") and
                        (self.recipient(gw, "nobody@bounce.dlv.test") or ("",))[0] == "bounced", gw=gw)
        first_policy = self.recipient(gw, "pat@tls.dlv.test")[7]
        # A checkpoint every 2 s here: its witness mail reaches the compliance mailbox.
        def witness_mail():
            for name in set(self.dump_files("plain")) - plain_before:
                with open(name, "rb") as f:
                    if b"sealgate-audit-checkpoint v1 seq=" in f.read():
                        return True
            return False
        self.wait_until("a checkpoint's witness mail", witness_mail, gw=gw)
        # A policy edit while running: the file watch reloads it, and the
        # record keeps both versions.
        with open(os.path.join(gw.dir, "policy.yaml"), "a") as f:
            f.write("# edited for the audit test\n")
        gw.wait_for_log("policy reloaded")
        # Operator commands on the control socket are recorded with who sent them.
        r = subprocess.run([BIN, "policy", "reload", "--config", gw.config], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        gw.wait_for_log("sealgate policy reload by uid %d" % os.getuid())
        r = subprocess.run([BIN, "queue", "flush", "--config", gw.config, qid], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.audit(gw, "checkpoint").returncode, 0)
        gw.stop()  # a clean stop signs the tail
        kinds = [k for (k,) in self.db(gw, "SELECT json_extract(entry, '$.kind') FROM audit_events ORDER BY seq")]
        for kind in ("policy-loaded", "accepted", "delivered", "bounced"):
            self.assertIn(kind, kinds)
        self.assertEqual(kinds.count("policy-loaded"), 3, kinds)
        triggers = [t for (t,) in self.db(gw, "SELECT json_extract(entry, '$.trigger') FROM audit_events"
                                              " WHERE json_extract(entry, '$.kind') = 'policy-loaded' ORDER BY seq")]
        self.assertEqual(triggers[:2], ["start", "policy file changed"])
        self.assertRegex(triggers[2], r"^sealgate policy reload by uid %d \(\S+\) pid \d+$" % os.getuid())
        flushes = self.db(gw, "SELECT json_extract(entry, '$.actor') FROM audit_events WHERE queue_id = ?"
                              " AND json_extract(entry, '$.kind') = 'operator-command'", (qid,))
        self.assertEqual(len(flushes), 1)
        self.assertRegex(flushes[0][0], r"^uid %d \(\S+\) pid \d+$" % os.getuid())
        mine = [k for (k,) in self.db(gw, "SELECT json_extract(entry, '$.kind') FROM audit_events WHERE queue_id = ?"
                                          " ORDER BY seq", (qid,))]
        self.assertEqual((mine.count("accepted"), mine.count("delivered"), mine.count("bounced")), (1, 2, 1), mine)
        with open(witness) as f:
            lines = f.read().splitlines()
        self.assertGreaterEqual(len(lines), 1)
        r = self.audit(gw, "verify", "--witness", witness)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("intact", r.stdout)
        r = self.audit(gw, "verify", "--json")
        report = json.loads(r.stdout)
        self.assertTrue(report["intact"])
        self.assertEqual(report["unsigned_entries"], 0, "the stop signed the tail")

        # policy show --hash: exactly the bytes that decided, though replaced since.
        r = subprocess.run([BIN, "policy", "show", "--config", gw.config, "--hash", first_policy], capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, POLICY.encode())
        r = subprocess.run([BIN, "policy", "show", "--config", gw.config, "--hash", first_policy[:12]],
                           capture_output=True, timeout=30)
        self.assertEqual(r.stdout, POLICY.encode(), "a prefix names it too")
        with open(os.path.join(gw.dir, "policy.yaml"), "rb") as f:
            current = f.read()
        r = subprocess.run([BIN, "policy", "show", "--config", gw.config, "--hash",
                            hashlib.sha256(current).hexdigest()], capture_output=True, timeout=30)
        self.assertEqual(r.stdout, current)

        # The evidence of the message, as an auditor gets it: every field, and
        # the proof that its entries are intact and signed.
        r = subprocess.run([BIN, "report", "--config", gw.config, "--message", qid, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        ev = json.loads(r.stdout)
        for key in ("received", "listener", "client", "helo", "sender", "message_id", "size"):
            self.assertTrue(ev[key], key)
        self.assertEqual(ev["message_id"], "<audit-one@ours.dlv.test>")
        by_address = {x["address"]: x for x in ev["recipients"]}
        tls = by_address["pat@tls.dlv.test"]
        self.assertEqual((tls["status"], tls["method"], tls["rule"]), ("delivered", "tls", "default"))
        self.assertEqual(tls["policy_sha256"], first_policy)
        self.assertEqual((tls["mx_host"], tls["mx_address"]), ("mx-tls.dlv.test", A_TLS))
        self.assertTrue(tls["tls_protocol"].startswith("TLSv1.") and tls["tls_cipher"], tls)
        self.assertEqual(tls["certificate"], "verified")
        plain = by_address["ann@plain.dlv.test"]
        self.assertEqual((plain["status"], plain["method"], plain["tls_protocol"]), ("delivered", "plain", ""))
        self.assertEqual(by_address["nobody@bounce.dlv.test"]["status"], "bounced")
        self.assertTrue(all(a["at"] and a["outcome"] and a["reply"] for a in ev["attempts"]), ev["attempts"])
        audit = ev["audit"]
        self.assertTrue(audit["checked"] and audit["intact"] and audit["signed"], audit)
        self.assertEqual([e["kind"] for e in audit["entries"]], mine)
        self.assertEqual(audit["checkpoint"]["key_id"], report["key_id"])
        r = subprocess.run([BIN, "report", "--config", gw.config, "--message", qid, "--format", "html"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Intact: these entries are part of the hash chain", r.stdout)
        self.assertIn("pat@tls.dlv.test", r.stdout)
        self.assertNotIn("http://", r.stdout.replace("http-equiv", ""))
        self.assertNotIn(MARKER, r.stdout, "no content in the evidence")
        # The page an auditor is handed, as a browser shows it (kept as an artifact).
        os.makedirs(ARTIFACTS, exist_ok=True)
        page = os.path.join(ARTIFACTS, "evidence-page.html")
        with open(page, "w") as f:
            f.write(r.stdout)
        with Browser(javascript=False) as b:
            url = "file://" + os.path.abspath(page)
            b.goto(url)
            self.assertEqual(b.title(), "Message %s: delivery evidence" % qid)
            self.assertEqual(b.evaluate("performance.getEntriesByType('resource').length"), 0, "nothing fetched")
            self.assertLessEqual(b.scroll_width(), 1280, "nothing wider than the window")
            b.screenshot(os.path.join(ARTIFACTS, "evidence-page.png"))

        # --find: by Message-ID, by recipient (any case), by sender and time.
        def find(*args):
            r = subprocess.run([BIN, "report", "--config", gw.config, "--find", "--json"] + list(args),
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [m["id"] for m in json.loads(r.stdout)["messages"]]
        self.assertEqual(find("--message-id", "<audit-one@ours.dlv.test>"), [qid])
        self.assertEqual(find("--recipient", "PAT@tls.dlv.test"), [qid])
        self.assertIn(qid, find("--sender", "app@ours.dlv.test", "--since", "1h"))
        self.assertEqual(find("--sender", "app@ours.dlv.test", "--until", "2000-01-01"), [])
        self.assertEqual(find("--recipient", "nobody@elsewhere.test"), [])

        # Tampering with the sqlite3 command line, as anyone with the file could:
        # the delivery to pat@tls.dlv.test claimed as PGP.
        database = os.path.join(gw.dir, "sealgate.db")
        (seq,) = self.db(gw, "SELECT seq FROM audit_events WHERE queue_id = ? AND json_extract(entry, '$.kind') ="
                             " 'delivered' AND json_extract(entry, '$.address') = 'pat@tls.dlv.test'", (qid,))[0]
        subprocess.run(["sqlite3", database, "UPDATE audit_events SET entry = replace(entry, '\"method\":\"tls\"',"
                        " '\"method\":\"pgp\"') WHERE seq = %d" % seq], check=True, timeout=30)
        r = self.audit(gw, "verify")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("entry %d: altered" % seq, r.stdout)
        self.assertIn("NOT INTACT", r.stdout)
        r = subprocess.run([BIN, "report", "--config", gw.config, "--message", qid, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, "evidence that does not verify fails")
        self.assertFalse(json.loads(r.stdout)["audit"]["intact"])

        # Retention: a purge never signs over an altered chain (it would
        # take the evidence away); once the entry is put back, a purge of
        # everything before tomorrow leaves a chain (the purge's own entry,
        # anchored by a signed checkpoint) that verifies.
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        r = self.audit(gw, "purge", "--before", tomorrow)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("purge refused", r.stderr)
        subprocess.run(["sqlite3", database, "UPDATE audit_events SET entry = replace(entry, '\"method\":\"pgp\"',"
                        " '\"method\":\"tls\"') WHERE seq = %d" % seq], check=True, timeout=30)
        r = self.audit(gw, "purge", "--before", tomorrow)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^purged [1-9]\d* messages and [1-9]\d* chain entries")
        self.assertEqual(self.db(gw, "SELECT COUNT(*) FROM messages WHERE queue_id = ?", (qid,))[0][0], 0)
        r = self.audit(gw, "verify", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        after = json.loads(r.stdout)
        self.assertTrue(after["intact"] and after["purged_up_to"] > seq, after)

    def test_a_recipient_with_a_certificate_gets_smime_and_the_evidence_names_it(self):
        certs = tempfile.mkdtemp(prefix="sgc", dir="/tmp")
        self.addCleanup(shutil.rmtree, certs, True)
        cert, key = os.path.join(certs, "sam.pem"), os.path.join(certs, "sam.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=Sam", "-addext", "subjectAltName=email:sam@smime.dlv.test",
                        "-addext", "keyUsage=critical,keyEncipherment,keyCertSign"],
                       check=True, capture_output=True, timeout=60)
        os.remove(key)  # the gateway needs only the certificate
        gw = self.gateway(extra="crypto: {smime_certificates: %s, smime_ca_file: %s}\n" % (certs, cert))
        qid = self.send(gw, "app@ours.dlv.test", ["sam@smime.dlv.test"], self.message("smime one", "sam@smime.dlv.test"))
        self.wait_until("the S/MIME delivery", lambda: self.delivered(gw, "sam@smime.dlv.test"), gw=gw)
        r = subprocess.run([BIN, "report", "--config", gw.config, "--message", qid, "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        (rcpt,) = json.loads(r.stdout)["recipients"]
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True, capture_output=True,
                             timeout=30).stdout
        self.assertEqual((rcpt["method"], rcpt["rule"], rcpt["key_fingerprint"]),
                         ("smime", "smime-first", hashlib.sha256(der).hexdigest()))

    def test_kill_9_during_5000_messages_loses_nothing_and_records_each_delivery_once(self):
        gw = self.gateway(queue="{retry_min: 1s, retry_max: 2s, concurrency: 100}")
        load = subprocess.Popen(["smtp-source", "-m", "5000", "-s", "20", "-l", "2048", "-f", "app@ours.dlv.test",
                                 "-t", "rcpt@load.dlv.test", "127.0.0.1:%d" % gw.port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.addCleanup(lambda: load.poll() is None and load.kill())
        self.wait_until("some deliveries", lambda: gw.read_log().count("status=delivered") >= 300, timeout=120, gw=gw)
        gw.kill9()
        load.kill()
        load.wait(10)
        acked = set(re.findall(r": ([0-9A-F]{16}): client=\S+ .*\(queued\)$", gw.read_log(), re.M))
        self.assertGreaterEqual(len(acked), 300)
        gw.start()
        self.wait_until("the queue to drain", lambda: gw.queued() == [], timeout=300, gw=gw)
        time.sleep(1)  # the last records commit before the files go, so this is margin only
        rows = dict(self.db(gw, "SELECT queue_id, status FROM recipients WHERE address='rcpt@load.dlv.test'"))
        missing = sorted(q for q in acked if rows.get(q) != "delivered")
        self.assertEqual(missing, [], "acknowledged but not recorded as delivered")
        twice = self.db(gw, "SELECT queue_id, idx, count(*) FROM attempts WHERE outcome='delivered'"
                            " GROUP BY queue_id, idx HAVING count(*) > 1")
        self.assertEqual(twice, [], "a recipient recorded as delivered twice")
        # The report adds up: every group's statuses sum to its recipients.
        r = subprocess.run([BIN, "report", "--config", gw.config, "--by", "recipient-domain", "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        for g in report["groups"]:
            self.assertEqual(g["recipients"], g["delivered"] + g["queued"] + g["deferred"] + g["bounced"] + g["deleted"],
                             g)
        load_group = next(g for g in report["groups"] if g["key"] == "load.dlv.test")
        self.assertGreaterEqual(load_group["delivered"], len(acked))
        self.assertEqual(report["total"], sum(g["recipients"] for g in report["groups"]))


if __name__ == "__main__":
    unittest.main()
