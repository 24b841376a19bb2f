"""The secure portal end to end, with real peers on 127.0.6.0/24: the gateway
deposits a sensitive message for a recipient whose MX (a Postfix without TLS,
holding what it gets) cannot be trusted with it, the notification and the
one-time code arrive there, `sealgate portal run` serves the link over HTTPS,
headless Chromium opens it, the recipient's reply reaches the sender's MX (an
smtp-sink). DNS from unbound with local data. Every process is started here
and stopped at the end. Postfix needs root."""
import email
import email.policy
import glob
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import time
import unittest
import urllib.error
import urllib.request

import probe_peers as peers
from browser import Browser, spki_pin
from harness import BIN, Gateway, free_port, stop_process

A_PATIENT, A_OURS = "127.0.6.11", "127.0.6.12"
MARKER = "PHI-MARKER-7c41"  # stands for content that must never be readable outside the portal
SUBJECT = "Lab results SUBJECT-SECRET-93"
ARTIFACTS = os.environ.get("SEALGATE_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                                                   "test-artifacts"))

# The shipped policy (conf/policy.yaml: sensitive mail goes pgp, smime, tls,
# portal, hold), with two rules in front: one for the expiry test, and one
# that sends replies from the portal to the sender's MX here, an smtp-sink
# without TLS (under the shipped default rule a reply to a server without
# TLS is itself deposited in the portal, as any mail would be).
SHORT_RULE = """\
  - name: short
    match: {classes: phi, recipients: "short@patient.ptl.test"}
    methods: [portal]
    portal: {expire: 2s}
  - name: replies-to-staff
    match: {listeners: portal-reply, domains: ours.ptl.test}
    methods: [tls, plain]
"""


def shipped_policy():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "policy.yaml")) as f:
        text = f.read()
    head, rules = text.split("\nrules:\n", 1)
    return head + "\nrules:\n" + SHORT_RULE + rules


def local_data():
    return ["ptl.test. 600 IN SOA ns.ptl.test. hostmaster.ptl.test. 1 3600 600 86400 60",
            "mx-patient.ptl.test. 300 IN A %s" % A_PATIENT,
            "mx-ours.ptl.test. 300 IN A %s" % A_OURS,
            "patient.ptl.test. 300 IN MX 10 mx-patient.ptl.test.",
            "ours.ptl.test. 300 IN MX 10 mx-ours.ptl.test."]


ATTACHMENT = bytes(range(256)) * 37 + b"end-of-attachment-5d2e"


def tiny_png():
    """A 24x8 PNG (a dark bar), made here: no file in the tree."""
    import struct
    import zlib
    width, height = 24, 8
    raw = b"".join(b"\x00" + b"\x12\x34\x56" * width for _ in range(height))
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def sensitive_message(rcpt, subject=SUBJECT):
    import base64
    b64 = base64.encodebytes(ATTACHMENT).decode().replace("\n", "\r\n")
    return ("From: Dr. Ada Clinic <ada@ours.ptl.test>\r\nTo: <%s>\r\nSubject: %s\r\n"
            "Message-ID: <%s@ours.ptl.test>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
            "X-Sensitivity: phi\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDear patient,\r\nyour result: %s\r\n"
            "--b1\r\nContent-Type: application/pdf; name=\"result.pdf\"\r\n"
            "Content-Disposition: attachment; filename=\"result.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "%s--b1--\r\n" % (rcpt, subject, str(time.time()).replace(".", ""), MARKER, b64))


class Portal(peers.PeersTestCase, unittest.TestCase):
    @classmethod
    def start_peers(cls):
        d = cls.dir = peers.tempdir("sealgate-portal-")
        if os.environ.get("SEALGATE_KEEP_TMP") != "1":
            cls.cleanups.append(lambda: shutil.rmtree(d, True))
        cls.port = peers.free_port_on([A_PATIENT, A_OURS])
        cls.postfix = peers.Postfix(os.path.join(d, "postfix"), cls.port, [
            {"address": A_PATIENT, "hostname": "mx-patient.ptl.test", "options": {"smtpd_tls_security_level": "none"}}])
        cls.cleanups.append(cls.postfix.stop)
        cls.postfix.start()
        cls.sink_dir = os.path.join(d, "dump-ours")
        os.makedirs(cls.sink_dir)
        os.chmod(cls.sink_dir, 0o777)
        sink = peers.Process([peers.SMTP_SINK, "-u", "nobody", "-d", os.path.join(cls.sink_dir, "%H%M%S."),
                              "%s:%d" % (A_OURS, cls.port), "100"], os.path.join(d, "sink.log"))
        cls.cleanups.append(sink.stop)
        if not peers.wait_for_banner(A_OURS, cls.port):
            raise RuntimeError("smtp-sink did not start")
        os.makedirs(os.path.join(d, "dns"))
        cls.dns = peers.Dns(os.path.join(d, "dns"), {}, {}, "ptl.test", local_data(), cls.cleanups)
        # One gateway and one portal process for the whole class: the harness
        # registers its cleanups on whatever it is given, here the class.
        class ClassScope:
            addCleanup = cls.addClassCleanup
            id = staticmethod(lambda: cls.__name__)
        cls.gw = Gateway(ClassScope, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}],
                         queue="{retry_min: 1s, retry_max: 2s}", expect_clean_exit=False)
        with open(os.path.join(cls.gw.dir, "policy.yaml"), "w") as f:
            f.write(shipped_policy())
        cls.portal_port = free_port("127.0.0.1")
        # A logo: shown in the pages' header and in the notification's HTML.
        with open(os.path.join(cls.gw.dir, "logo.png"), "wb") as f:
            f.write(tiny_png())
        # Master-key mode, so that a lost link can be replaced (portal resend).
        master = os.path.join(cls.gw.dir, "portal-master.key")
        with open(os.open(master, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(__import__("base64").b64encode(os.urandom(32)).decode() + "\n")
        cls.base = "https://127.0.0.1:%d" % cls.portal_port
        cls.gw.add_config(
            "policy_file: policy.yaml\n"
            'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
            "delivery: {port: %d, probe_cache_ttl: 10m, timeouts: {connect: 5s}}\n"
            "crypto: {sources: {keyring: false, smime_directory: false, dns_openpgpkey: false, dns_smimea: false,"
            " wkd: false}}\n"
            "portal:\n"
            "  base_url: %s\n"
            "  port: %d\n"
            "  from: secure@ours.ptl.test\n"
            "  organisation: Example Health\n"
            "  requests_per_minute: 10000\n"
            "  code: {per_hour: 50}\n"
            "  master_key: portal-master.key\n"
            "  logo: logo.png\n" % (cls.dns.port, cls.port, cls.base, cls.portal_port))
        cls.gw.start()
        cls.cleanups.append(cls.gw.stop)
        cls.portal_log = open(os.path.join(d, "portal.log"), "wb")
        cls.portal = subprocess.Popen([BIN, "portal", "run", "--config", cls.gw.config], stdout=cls.portal_log,
                                      stderr=subprocess.STDOUT)
        cls.cleanups.append(cls.stop_portal)
        deadline = time.time() + 15
        while time.time() < deadline and not cls.portal_answers():
            time.sleep(0.1)
        if not cls.portal_answers():
            raise RuntimeError("portal did not start: " + open(os.path.join(d, "portal.log")).read())
        os.makedirs(ARTIFACTS, exist_ok=True)

    @classmethod
    def stop_portal(cls):
        stop_process(cls.portal)
        cls.portal_log.close()

    @classmethod
    def portal_answers(cls):
        try:
            cls.fetch("/")
            return True
        except (OSError, urllib.error.URLError):
            return False

    @classmethod
    def fetch(cls, path, method="GET"):
        ctx = ssl.create_default_context(cafile=cls.gw.cert)
        ctx.check_hostname = False
        req = urllib.request.Request(cls.base + path, method=method)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()

    # ------------------------------------------------------------ helpers --
    def send(self, rcpt, content):
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.gw.port, "--from", "ada@ours.ptl.test",
                            "--to", rcpt, "--data", "-"], input=content.replace("\r\n", "\n"), capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return re.search(r"queued as ([0-9A-F]{16})", r.stdout).group(1)

    def wait_until(self, what, predicate, timeout=60):
        return peers.wait_until(self, what, predicate, timeout, lambda: self.gw.read_log()[-5000:])

    def held(self):
        return self.postfix.held()

    def held_message(self, queue_id):
        return email.message_from_bytes(self.postfix.message(queue_id), policy=email.policy.default)

    def mails_to(self, rcpt, seen=()):
        out = []
        for m in self.held():
            if m["queue_id"] in seen:
                continue
            if any(r["address"] == rcpt for r in m["recipients"]):
                out.append((m["queue_id"], self.held_message(m["queue_id"])))
        return out

    def notification_link(self, rcpt):
        mails = self.wait_until("the notification to " + rcpt, lambda: self.mails_to(rcpt))
        self.assertEqual(len(mails), 1, [str(m) for _, m in mails])
        qid, notice = mails[0]
        text = notice.get_body(("plain",)).get_content()
        return qid, notice, re.search(r"https://\S+/m/[A-Za-z0-9_-]{43}", text).group(0)

    def store_rows(self):
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.gw.dir, "portal.db"), uri=True, timeout=10)
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return {t: con.execute("SELECT * FROM %s" % t).fetchall() for t in tables}
        finally:
            con.close()

    def recipient_row(self, address, queue_id):
        con = sqlite3.connect("file:%s?mode=ro" % self.gw.database, uri=True, timeout=10)
        try:
            rows = con.execute("SELECT status, method, rule FROM recipients WHERE address=? AND queue_id=?"
                               " ORDER BY rowid DESC", (address, queue_id)).fetchall()
        finally:
            con.close()
        return rows[0] if rows else None

    def browser(self):
        return Browser(spki_pins=[spki_pin(self.gw.cert)], width=1280, height=900)

    def check_security_headers(self, responses):
        for r in responses:
            if not r.url.startswith(self.base):
                continue
            h = r.headers
            self.assertIn("max-age=", h.get("strict-transport-security", ""), r.url)
            self.assertIn("frame-ancestors 'none'", h.get("content-security-policy", ""), r.url)
            self.assertNotIn("unsafe-inline", h.get("content-security-policy", ""), r.url)
            self.assertEqual(h.get("x-content-type-options"), "nosniff", r.url)
            self.assertEqual(h.get("referrer-policy"), "no-referrer", r.url)
            if not r.url.endswith(("/style.css", "/logo")):  # the two static files, nothing of a message
                self.assertEqual(h.get("cache-control"), "no-store", r.url)

    def code_for(self, rcpt, seen):
        mails = self.wait_until("a code mail to " + rcpt, lambda: [m for m in self.mails_to(rcpt, seen)
                                                                     if "code" in m[1]["Subject"].lower()])
        qid, m = mails[-1]
        seen.add(qid)
        return re.search(r"\b(\d{6})\b", m.get_content()).group(1)

    # -------------------------------------------------------------- tests --
    def test_portal_delivery_end_to_end_in_a_browser(self):
        rcpt = "alice@patient.ptl.test"
        qid = self.send(rcpt, sensitive_message(rcpt))
        self.wait_until("the portal deposit", lambda: (self.recipient_row(rcpt, qid) or ("",))[0] == "delivered")
        self.assertEqual(self.recipient_row(rcpt, qid)[1:], ("portal", "sensitive"))
        notice_qid, notice, link = self.notification_link(rcpt)
        # The notification is a delivery of its own, by the default rule (it holds nothing sensitive).
        notice_id = self.wait_until("the notification's record", lambda: sqlite3.connect(self.gw.database).execute(
            "SELECT queue_id FROM recipients WHERE address=? AND queue_id!=? AND status='delivered'",
            (rcpt, qid)).fetchone())[0]
        self.assertEqual(self.recipient_row(rcpt, notice_id)[1:], ("plain", "default"))
        raw = notice.as_string()
        self.assertNotIn(MARKER, raw)
        self.assertNotIn("SUBJECT-SECRET", raw)
        self.assertNotIn("result.pdf", raw)
        self.assertIn("ada@ours.ptl.test", str(notice["Reply-To"]))
        self.assertIn("Dr. Ada Clinic", raw)
        # The HTML version shows the logo from the message itself, and the link as a link.
        html = notice.get_body(("html",)).get_content()
        self.assertIn('src="cid:logo@sealgate"', html)
        self.assertIn('<a href="https://', html)
        logos = [p for p in notice.walk() if p.get("Content-ID") == "<logo@sealgate>"]
        self.assertEqual([p.get_content() for p in logos], [tiny_png()])
        path = link[len(self.base):]

        # Link scanners: GETs and HEADs change no row and send no mail.
        before_rows, before_mail = self.store_rows(), len(self.held())
        for i in range(10):
            status, headers, body = self.fetch(path, "HEAD" if i % 2 else "GET")
            self.assertEqual(status, 200)
        time.sleep(1.5)  # an outbox item would reach the queue within 0.5 s
        self.assertEqual(self.store_rows(), before_rows)
        self.assertEqual(len(self.held()), before_mail)

        seen = {notice_qid}
        with self.browser() as b:
            b.goto(link)
            self.assertIn("Send me a code", b.text())
            self.assertTrue(b.evaluate("document.querySelector('header img').naturalWidth === 24"))
            self.assertNotIn(MARKER, b.text())
            b.screenshot(os.path.join(ARTIFACTS, "portal-1-landing.png"))
            b.click("form[action$='/code'] button")
            code = self.code_for(rcpt, seen)
            self.assertIn("Enter your code", b.text())
            b.fill("input[name=code]", code)
            b.click("form[action$='/verify'] button")
            text = b.text()
            self.assertIn(MARKER, text)
            self.assertIn(SUBJECT, text)
            self.assertIn("result.pdf", text)
            b.screenshot(os.path.join(ARTIFACTS, "portal-2-message.png"))
            cookies = [c for c in b.cookies() if c["name"] == "__Host-sg"]
            self.assertEqual(len(cookies), 1)
            self.assertTrue(cookies[0]["secure"] and cookies[0]["httpOnly"])
            self.assertEqual(cookies[0]["sameSite"], "Strict")
            download = b.download("a[href*='/a/']")
            self.assertEqual(download.data, ATTACHMENT)
            # A phone screen: nothing wider than the viewport.
            b.set_viewport(375, 740, mobile=True)
            b.goto(link)
            self.assertLessEqual(b.scroll_width(), 375)
            b.screenshot(os.path.join(ARTIFACTS, "portal-3-phone.png"))
            b.set_viewport(1280, 900)
            # The reply reaches the original sender's MX, with its attachment.
            upload = os.path.join(self.dir, "reply-attachment.txt")
            with open(upload, "wb") as f:
                f.write(b"reply attachment bytes 0412\n")
            b.fill("textarea[name=text]", "Thank you, REPLY-MARKER-881")
            b.set_file_input("input[name=files]", [upload])
            b.click("form[action$='/reply'] button")
            self.assertIn("Your reply was sent", b.text())
            self.check_security_headers(b.responses)

        def reply_dump():
            for f in glob.glob(os.path.join(self.sink_dir, "*")):
                with open(f, "rb") as fh:
                    data = fh.read()
                if b"REPLY-MARKER-881" in data:
                    return data
            return None
        data = self.wait_until("the reply at the sender's MX", reply_dump)
        # smtp-sink's dump: the envelope lines, then the message as received.
        reply = email.message_from_bytes(data[data.index(b"From:"):] if b"\nFrom:" in data else data,
                                         policy=email.policy.default)
        self.assertIn("secure@ours.ptl.test", str(reply["From"]))
        self.assertIn(rcpt, str(reply["Reply-To"]))
        self.assertIn("ada@ours.ptl.test", str(reply["To"]))
        self.assertTrue(str(reply["Subject"]).startswith("Re: "), reply["Subject"])
        parts = {p.get_filename(): p.get_content() for p in reply.iter_attachments()}
        self.assertEqual(parts.get("reply-attachment.txt"), b"reply attachment bytes 0412\n"
                         if isinstance(parts.get("reply-attachment.txt"), bytes) else "reply attachment bytes 0412\n")

        # Nothing of the message in the store: database, WAL, every file beside it.
        for f in glob.glob(os.path.join(self.gw.dir, "portal.db*")):
            with open(f, "rb") as fh:
                blob = fh.read()
            self.assertNotIn(MARKER.encode(), blob, f)
            self.assertNotIn(ATTACHMENT[1000:1064], blob, f)
            self.assertNotIn(b"REPLY-MARKER-881", blob, f)

        # Events for the report.
        r = subprocess.run([BIN, "portal", "list", "--config", self.gw.config, "--message", qid, "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        entries = json.loads(r.stdout)
        self.assertEqual([e["recipient"] for e in entries], [rcpt])
        kinds = {row[0] for row in sqlite3.connect(os.path.join(self.gw.dir, "portal.db")).execute(
            "SELECT kind FROM events")}
        for k in ("deposited", "notified", "code-sent", "opened", "downloaded", "replied"):
            self.assertIn(k, kinds)

        # `sealgate report --message` tells who opened what and when (from the store, read-only).
        r = subprocess.run([BIN, "report", "--config", self.gw.config, "--message", qid], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("<%s> delivered method=portal rule=sensitive" % rcpt, r.stdout)
        deposit = re.search(r"^portal:\n  <%s> entry \d+ active created=\S+Z expires=\S+Z notification=%s\n"
                            r"((?:    .*\n)+)" % (re.escape(rcpt), notice_id), r.stdout, re.M)
        self.assertTrue(deposit, r.stdout)
        lines = deposit.group(1).splitlines()
        # In time order (events of the same second keep the order they happened in).
        times = [line.split()[0] for line in lines]
        self.assertEqual(times, sorted(times), "events in time order")
        events = [re.match(r"    (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) (\S+)(?: (.*))?$", l).groups() for l in lines]
        seen_kinds = [k for _, k, _ in events]
        for k in ("deposited", "notified", "code-sent", "opened", "downloaded", "replied"):
            self.assertIn(k, seen_kinds, r.stdout)
        self.assertLess(seen_kinds.index("opened"), seen_kinds.index("downloaded"))
        self.assertIn(("notified", "notification " + notice_id), [(k, d) for _, k, d in events])
        self.assertEqual([d for _, k, d in events if k == "opened"], ["127.0.0.1"], "the client address")
        for leak in (MARKER, "SUBJECT-SECRET", "result.pdf", "REPLY-MARKER"):
            self.assertNotIn(leak, r.stdout)
        r = subprocess.run([BIN, "report", "--config", self.gw.config, "--message", qid, "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        story = json.loads(r.stdout)
        self.assertEqual([(d["recipient"], d["state"], d["notification"]) for d in story["portal"]],
                         [(rcpt, "active", notice_id)])
        self.assertEqual([e["kind"] for e in story["portal"][0]["events"]], seen_kinds)
        # The gateway copies the portal's events into its audit chain within seconds.
        deadline = time.time() + 20
        while True:
            r = subprocess.run([BIN, "report", "--config", self.gw.config, "--message", qid, "--json"],
                               capture_output=True, text=True, timeout=30)
            chained = [e["kind"] for e in json.loads(r.stdout)["audit"]["entries"]]
            if "portal-replied" in chained or time.time() > deadline:
                break
            time.sleep(0.5)
        for k in ("deposited", "notified", "code-sent", "opened", "downloaded", "replied"):
            self.assertIn("portal-" + k, chained)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(json.loads(r.stdout)["audit"]["intact"])

        # `sealgate report --by method` counts the portal's deposits and opens (every test's, so far).
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.gw.dir, "portal.db"), uri=True, timeout=10)
        try:
            deposits = con.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            opened = con.execute("SELECT COUNT(DISTINCT entry_id) FROM events WHERE kind = 'opened'").fetchone()[0]
        finally:
            con.close()
        self.assertGreaterEqual(opened, 1)
        r = subprocess.run([BIN, "report", "--config", self.gw.config, "--by", "method", "--json"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual((report["portal"]["deposits"], report["portal"]["opened"]), (deposits, opened))
        self.assertGreaterEqual(report["portal"]["downloads"], 1)
        self.assertGreaterEqual(report["portal"]["replies"], 1)
        portal_group = next(g for g in report["groups"] if g["key"] == "portal")
        self.assertGreaterEqual(portal_group["delivered"], 1)
        r = subprocess.run([BIN, "report", "--config", self.gw.config, "--by", "method"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\nportal +%d +%d " % (portal_group["recipients"], portal_group["delivered"]))
        self.assertRegex(r.stdout, r"\n\nportal: %d deposits?, %d opened \(\d+\.\d%%\), \d+ downloads?, \d+ repl"
                         % (deposits, opened))
        r = subprocess.run([BIN, "report", "--config", self.gw.config, "--by", "method", "--since", "2099-01-01",
                            "--json"], capture_output=True, text=True, timeout=30)
        self.assertEqual(json.loads(r.stdout)["portal"],
                         {"deposits": 0, "opened": 0, "opened_percent": 0.0, "downloads": 0, "replies": 0})

    def test_five_wrong_codes_lock_the_entry(self):
        rcpt = "bob@patient.ptl.test"
        self.send(rcpt, sensitive_message(rcpt))
        _, _, link = self.notification_link(rcpt)
        with self.browser() as b:
            # Without JavaScript and with the keyboard alone: Tab to the button, Enter.
            b.set_javascript(False)
            b.goto(link)
            for _ in range(10):
                b.press("Tab")
                f = b.focused()
                if f and f["tag"].lower() == "button":
                    break
            self.assertEqual(b.focused()["tag"].lower(), "button")
            b.press("Enter", wait_navigation=True)
            self.assertIn("Enter your code", b.text())
            for i in range(5):
                b.fill("input[name=code]", "000000" if i % 2 else "999999")
                b.click("form[action$='/verify'] button")
            self.assertIn("Too many wrong codes", b.text())
            self.check_security_headers(b.responses)

    def test_retracted_and_expired_links_say_so(self):
        rcpt = "carol@patient.ptl.test"
        qid = self.send(rcpt, sensitive_message(rcpt))
        _, _, link = self.notification_link(rcpt)
        r = subprocess.run([BIN, "portal", "retract", "--config", self.gw.config, qid], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, headers, body = self.fetch(link[len(self.base):])
        self.assertEqual(status, 410)
        self.assertIn(b"withdrawn", body)
        self.assertEqual(headers.get("cache-control"), "no-store")

        short = "short@patient.ptl.test"
        self.send(short, sensitive_message(short))
        _, _, link = self.notification_link(short)
        time.sleep(2.5)
        status, _, body = self.fetch(link[len(self.base):])
        self.assertEqual(status, 410)
        self.assertIn(b"expired", body)

        status, _, body = self.fetch("/m/" + "A" * 43)
        self.assertEqual(status, 404)
        self.assertIn(b"not valid", body)

    def test_a_lost_link_is_replaced_and_the_old_one_stops_working(self):
        rcpt = "dave@patient.ptl.test"
        qid = self.send(rcpt, sensitive_message(rcpt))
        first_qid, _, old_link = self.notification_link(rcpt)
        r = subprocess.run([BIN, "portal", "resend", "--config", self.gw.config, qid, "--recipient", rcpt],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        mails = self.wait_until("the new notification", lambda: self.mails_to(rcpt, {first_qid}))
        new_link = re.search(r"https://\S+/m/[A-Za-z0-9_-]{43}",
                             mails[0][1].get_body(("plain",)).get_content()).group(0)
        self.assertNotEqual(new_link, old_link)
        self.assertEqual(self.fetch(old_link[len(self.base):])[0], 404)
        status, _, body = self.fetch(new_link[len(self.base):])
        self.assertEqual(status, 200)
        self.assertIn(b"Send me a code", body)
        # Without portal.master_key a deposit cannot be reopened, so nothing can be resent: the store alone
        # never reads a message (a usage of the command shows the refusal).
        r = subprocess.run([BIN, "portal", "resend", "--config", self.gw.config, qid], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_bad_requests_get_a_4xx_and_the_portal_keeps_running(self):
        for path, method, expect in (("/m/short", "GET", 404), ("/nothing", "GET", 404), ("/m/" + "A" * 43, "PUT", 404),
                                     ("/style.css", "POST", 405)):
            status, headers, _ = self.fetch(path, method)
            self.assertEqual(status, expect, path)
            self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        # A header block over the limit, and garbage.
        import socket
        ctx = ssl.create_default_context(cafile=self.gw.cert)
        ctx.check_hostname = False
        for payload in (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", b"\x00\x01garbage\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.portal_port), timeout=10) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(payload)
                    answer = s.recv(200)
                    self.assertRegex(answer, rb"^HTTP/1\.1 4\d\d")
        self.assertIsNone(self.portal.poll())
        self.assertEqual(self.fetch("/")[0], 200)


if __name__ == "__main__":
    unittest.main()
