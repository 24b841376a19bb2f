"""Integration tests of the inbound relay: the built gateway against real peers
(swaks, smtp-source, Python's ssl) on 127.0.0.1. Every test asserts the reply
codes and enhanced status codes that say why something happened."""
import base64
import os
import sqlite3
import stat
import subprocess
import threading
import time
import unittest
import warnings

from gateway_harness import BIN, Client, Gateway, parse_spool

warnings.simplefilter("ignore", ResourceWarning)  # sockets of refused sessions close at exit

LOAD_BODY = ("y" * 78 + "\r\n") * 50  # 4 KiB
MESSAGE = "From: a@example.org\r\nTo: b@example.com\r\nSubject: test\r\n\r\nhello\r\n"


def swaks(port, *args):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port, "--from", "app@example.org",
                        "--to", "someone@example.com", "--hide-informational", *args],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def transaction(c, rcpts=("someone@example.com",), body=MESSAGE, mail="MAIL FROM:<app@example.org>"):
    assert c.cmd(mail)[0] == 250
    for r in rcpts:
        code, text = c.cmd("RCPT TO:<%s>" % r)
        assert code == 250, text
    assert c.cmd("DATA")[0] == 354
    c.send(body + ".\r\n")
    return c.reply()


class Delivery(unittest.TestCase):
    def test_plain_swaks_is_spooled_with_envelope_and_received_header(self):
        gw = Gateway(self).start()
        rc, out = swaks(gw.port)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as [0-9A-F]{16}")
        [qid] = gw.queued()
        self.assertIn("queued as " + qid, out)
        env, content = parse_spool(gw.spool_file(qid))
        self.assertEqual(env["sender"], ["app@example.org"])
        self.assertEqual(env["rcpt"], ["someone@example.com - -"])
        self.assertTrue(content.startswith(b"Received: from "), content[:80])
        self.assertIn(b"with ESMTP id " + qid.encode(), content)
        self.assertIn(b"(listener smarthost, not authenticated)", content)
        mode = os.stat(os.path.join(gw.queue_dir, qid)).st_mode
        self.assertEqual(stat.S_IMODE(mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(gw.queue_dir).st_mode), 0o700)
        gw.stop()  # the audit row is written after the 250; a clean stop flushes nothing more
        db = sqlite3.connect(os.path.join(gw.dir, "sealgate.db"))
        row = db.execute("SELECT listener, client_address, sender, recipients, tls_protocol FROM messages"
                         " WHERE queue_id=?", (qid,)).fetchone()
        self.assertEqual(row, ("smarthost", "127.0.0.1", "app@example.org", 1, None))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(gw.dir, "sealgate.db")).st_mode), 0o600)

    def test_starttls_received_header_names_protocol_and_cipher(self):
        gw = Gateway(self).start()
        rc, out = swaks(gw.port, "-tls")
        self.assertEqual(rc, 0, out)
        [qid] = gw.queued()
        env, content = parse_spool(gw.spool_file(qid))
        self.assertRegex(content.decode(), r"with ESMTPS id %s\r\n" % qid)
        self.assertRegex(content.decode(), r"\(using TLSv1\.3 with cipher TLS_[A-Z0-9_]+ \(\d+/\d+ bits\)\)")
        self.assertTrue(env["tls"][0].startswith("TLSv1.3 "))

    def test_implicit_tls_listener(self):
        gw = Gateway(self, listeners=[{"name": "submissions", "tls": "implicit", "auth": "optional"}]).start()
        rc, out = swaks(gw.port, "--tlsc")
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(gw.queued()), 1)

    def test_pipelined_transaction_gets_batched_replies(self):
        gw = Gateway(self).start()
        c = Client(gw.port)
        self.assertEqual(c.reply()[0], 220)
        code, ehlo = c.cmd("EHLO client.test")
        for ext in ("PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "STARTTLS"):
            self.assertIn(ext, ehlo)
        self.assertNotIn("AUTH", ehlo)  # never offered before TLS
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        c.send(MESSAGE + ".\r\nQUIT\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 221)
        rc, out = swaks(gw.port, "--pipeline")
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(gw.queued()), 2)

    def test_dsn_parameters_are_kept(self):
        gw = Gateway(self).start()
        c2 = Client(gw.port)
        c2.reply()
        c2.cmd("EHLO client.test")
        self.assertEqual(c2.cmd("MAIL FROM:<app@example.org> RET=HDRS ENVID=abc123 BODY=8BITMIME")[0], 250)
        self.assertEqual(c2.cmd("RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.com")[0], 250)
        self.assertEqual(c2.cmd("DATA")[0], 354)
        c2.send(MESSAGE + ".\r\n")
        self.assertEqual(c2.reply()[0], 250)
        [qid] = gw.queued()
        env, _ = parse_spool(gw.spool_file(qid))
        self.assertEqual(env["ret"], ["HDRS"])
        self.assertEqual(env["envid"], ["abc123"])
        self.assertEqual(env["body"], ["8BITMIME"])
        self.assertEqual(env["rcpt"], ["b@example.com SUCCESS,FAILURE rfc822;b+40example.com"])

    def test_smtputf8(self):
        gw = Gateway(self).start()
        c = Client(gw.port)
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("MAIL FROM:<app@example.org>")
        code, text = c.cmd("RCPT TO:<j\u00f6rg@example.com>")
        self.assertEqual((code, text[:9]), (553, "553 5.6.7"))
        c.cmd("RSET")
        self.assertEqual(c.cmd("MAIL FROM:<app@example.org> SMTPUTF8")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<j\u00f6rg@example.com>")[0], 250)


class Authentication(unittest.TestCase):
    def outside(self, **kw):
        # 127.0.0.1 is not in 127.0.0.2/32: this client may relay only after AUTH.
        gw = Gateway(self, networks=("127.0.0.2/32",), **kw)
        gw.add_user("alice", "s3cret")
        return gw.start()

    def test_auth_plain_and_login_over_tls_allow_relay(self):
        gw = self.outside()
        for mech in ("PLAIN", "LOGIN"):
            rc, out = swaks(gw.port, "-tls", "-a", mech, "-au", "alice", "-ap", "s3cret")
            self.assertEqual(rc, 0, out)
            self.assertIn("235 2.7.0", out)
        self.assertEqual(len(gw.queued()), 2)
        env, content = parse_spool(gw.spool_file(gw.queued()[0]))
        self.assertEqual(env["auth"], ["alice"])
        self.assertIn(b"with ESMTPSA id", content)
        self.assertNotIn(b"alice", content)  # the Received header does not name the user

    def test_wrong_password_is_refused_and_relay_stays_denied(self):
        gw = self.outside()
        c = Client(gw.port)
        c.reply()
        c.cmd("EHLO client.test")
        c.starttls()
        c.cmd("EHLO client.test")
        code, text = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong").decode())
        self.assertEqual(text[:9], "535 5.7.8")
        c.cmd("MAIL FROM:<app@example.org>")
        code, text = c.cmd("RCPT TO:<someone@example.com>")
        self.assertEqual(text, "554 5.7.1 <someone@example.com>: Relay access denied")
        self.assertIn("authentication failed", gw.read_log())
        self.assertNotIn("wrong", gw.read_log())

    def test_auth_before_tls_is_refused(self):
        gw = self.outside()
        c = Client(gw.port)
        c.reply()
        c.cmd("EHLO client.test")
        code, text = c.cmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0s3cret").decode())
        self.assertEqual(text[:10], "538 5.7.11")

    def test_relay_denied_without_auth_from_outside_networks(self):
        gw = self.outside()
        rc, out = swaks(gw.port)
        self.assertNotEqual(rc, 0)
        self.assertIn("554 5.7.1 <someone@example.com>: Relay access denied", out)
        self.assertEqual(gw.queued(), [])

    def test_auth_required_listener(self):
        gw = Gateway(self, listeners=[{"name": "submission", "tls": "starttls", "auth": "required"}])
        gw.add_user("alice", "s3cret")
        gw.start()
        rc, out = swaks(gw.port, "-tls")
        self.assertIn("530 5.7.0 Authentication required", out)
        rc, out = swaks(gw.port, "-tls", "-au", "alice", "-ap", "s3cret")
        self.assertEqual(rc, 0, out)


class Refusals(unittest.TestCase):
    def session(self, gw):
        c = Client(gw.port)
        c.reply()
        c.cmd("EHLO client.test")
        return c

    def test_open_relay_tricks(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        c.cmd("MAIL FROM:<app@example.org>")
        for rcpt, reason in (("user%other.example@example.com", "Percent-hack"),
                             ("host!user@example.com", "Bang-path"),
                             ("@relay.example:user@example.com", "Source routes"),
                             ('"user@other.example"@example.com', "Quoted local parts holding @"),
                             ("user@[192.0.2.1]", "Address literals")):
            code, text = c.cmd("RCPT TO:<%s>" % rcpt)
            self.assertEqual(text[:9], "554 5.7.1", rcpt)
            self.assertIn(reason, text)

    def test_bare_lf_smuggling_is_refused_and_nothing_is_spooled(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        c.send("MAIL FROM:<app@example.org>\r\nRCPT TO:<someone@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 250, 354])
        c.send("Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\n"
               "DATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n")
        code, text = c.reply()
        self.assertEqual(text[:9], "554 5.5.2")
        self.assertIn("bare", text)
        self.assertTrue(c.closed())
        self.assertNotIn(b"250", c.buf)  # the smuggled MAIL got no reply
        self.assertEqual(gw.queued(), [])

    def test_bare_cr_is_refused(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        c.send("MAIL FROM:<app@example.org>\r\nRCPT TO:<someone@example.com>\r\nDATA\r\n")
        [c.reply() for _ in range(3)]
        c.send("Subject: x\r\n\r\nbad\rline\r\n.\r\n")
        self.assertEqual(c.reply()[1][:9], "554 5.5.2")
        self.assertEqual(gw.queued(), [])

    def test_oversize_declared_and_actual(self):
        gw = Gateway(self, limits={"message_size": "10KB"}).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("MAIL FROM:<app@example.org> SIZE=20000")[1][:9], "552 5.3.4")
        code, text = transaction(c, body="Subject: big\r\n\r\n" + ("x" * 70 + "\r\n") * 300)
        self.assertEqual(text[:9], "552 5.3.4")
        self.assertEqual(c.cmd("NOOP")[0], 250)  # the session goes on after the refusal
        self.assertEqual(gw.queued(), [])

    def test_too_many_recipients(self):
        gw = Gateway(self, limits={"recipients": 3}).start()
        c = self.session(gw)
        c.cmd("MAIL FROM:<app@example.org>")
        codes = [c.cmd("RCPT TO:<r%d@example.com>" % i)[1][:9] for i in range(4)]
        self.assertEqual(codes, ["250 2.1.5"] * 3 + ["452 4.5.3"])

    def test_silent_client_is_timed_out(self):
        gw = Gateway(self, timeouts={"command": "2s"}).start()
        c = Client(gw.port, timeout=15)
        c.reply()
        started = time.time()
        code, text = c.reply()
        self.assertEqual(text, "421 4.4.2 gw.test Error: timeout exceeded")
        self.assertTrue(c.closed())
        self.assertLess(time.time() - started, 12)

    def test_too_many_errors_disconnects(self):
        gw = Gateway(self, limits={"errors": 3}).start()
        c = self.session(gw)
        c.cmd("BOGUS")
        c.cmd("BOGUS")
        self.assertEqual(c.cmd("BOGUS")[1], "500 5.5.2 Error: command not recognized")
        self.assertEqual(c.reply()[1], "421 4.7.0 gw.test Error: too many errors")
        self.assertTrue(c.closed())

    def test_line_too_long(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("NOOP " + "x" * 5000)[1], "500 5.5.2 Error: line too long")
        self.assertEqual(c.cmd("NOOP")[0], 250)

    def test_plaintext_pipelined_behind_starttls_is_discarded(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        # An attacker's injection: commands glued behind STARTTLS in clear.
        c.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        self.assertEqual(c.reply()[0], 220)
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost")
        c.buf = b""
        code, text = c.cmd("EHLO client.test")
        self.assertEqual(code, 250)
        self.assertTrue(text.startswith("250-gw.test"), text)  # not a reply to the injected MAIL
        self.assertEqual(c.cmd("RCPT TO:<b@example.com>")[1][:9], "503 5.5.1")  # no MAIL survived

    def test_connection_limit(self):
        gw = Gateway(self, limits={"connections": 2}).start()
        time.sleep(0.5)  # let the start-up probe connection's session end
        held = [Client(gw.port) for _ in range(2)]
        for h in held:
            self.assertEqual(h.reply()[0], 220)
        extra = Client(gw.port)
        self.assertEqual(extra.reply()[1][:9], "421 4.7.0")


class Durability(unittest.TestCase):
    def test_kill_9_during_load_loses_no_acknowledged_message(self):
        gw = Gateway(self).start()
        acknowledged, lock, stop = [], threading.Lock(), threading.Event()

        def sender():
            while not stop.is_set():
                try:
                    c = Client(gw.port, timeout=5)
                    c.reply()
                    c.cmd("EHLO load.test")
                    while not stop.is_set():
                        code, text = transaction(c, body="Subject: load\r\n\r\n" + LOAD_BODY)
                        if code == 250:
                            with lock:
                                acknowledged.append(text.rsplit(" ", 1)[1])
                except (OSError, ConnectionError, AssertionError):
                    time.sleep(0.01)

        threads = [threading.Thread(target=sender) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(2)
        gw.kill9()
        stop.set()
        for t in threads:
            t.join(10)
        self.assertGreater(len(acknowledged), 50)
        gw.start()
        queued = set(gw.queued())
        missing = [q for q in acknowledged if q not in queued]
        self.assertEqual(missing, [], "acknowledged but not in the spool after kill -9")
        for qid in acknowledged:
            env, content = parse_spool(gw.spool_file(qid))
            self.assertTrue(content.endswith(b"\r\n\r\n" + LOAD_BODY.encode()), qid)
        self.assertEqual(os.listdir(os.path.join(gw.dir, "spool", "incoming")), [])
        # Listeners are bound before the spool is scanned: wait for the scan's log line.
        expected = "%d messages waiting" % len(queued)
        deadline = time.time() + 10
        while expected not in gw.read_log() and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(expected in gw.read_log(), "no '%s' line in the log" % expected)

    def test_kill_9_during_smtp_source_run(self):
        gw = Gateway(self).start()
        # -v makes smtp-source print every reply, so we learn each queue id that got a 250.
        load = subprocess.Popen(["smtp-source", "-v", "-s", "20", "-m", "1000000", "-l", "4096",
                                 "-f", "src@example.org", "-t", "dst@example.com", "127.0.0.1:%d" % gw.port],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: load.poll() is None and load.kill())
        time.sleep(2)
        gw.kill9()
        _, err = load.communicate(timeout=60)
        acknowledged = [line.rsplit(" ", 1)[1] for line in err.splitlines() if "250 2.0.0 Ok: queued as" in line]
        self.assertGreater(len(acknowledged), 50)
        gw.start()
        queued = set(gw.queued())
        self.assertEqual([q for q in acknowledged if q not in queued], [])
        for qid in acknowledged:
            env, content = parse_spool(gw.spool_file(qid))
            self.assertEqual(env["rcpt"], ["dst@example.com - -"])
            self.assertTrue(content.endswith(b"\r\n"), qid)
        self.assertEqual(os.listdir(os.path.join(gw.dir, "spool", "incoming")), [])

    def test_smtp_source_load_is_all_spooled(self):
        gw = Gateway(self).start()
        r = subprocess.run(["smtp-source", "-s", "10", "-m", "300", "-l", "4096", "-f", "src@example.org",
                            "-t", "dst@example.com", "127.0.0.1:%d" % gw.port], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(gw.queued()), 300)


class CommandLine(unittest.TestCase):
    def run_bin(self, *args, stdin=""):
        return subprocess.run([BIN, *args], capture_output=True, text=True, input=stdin, timeout=30)

    def test_usage_and_version(self):
        r = self.run_bin("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: sealgate", r.stderr)
        r = self.run_bin("run", "--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown option --bogus", r.stderr)
        r = self.run_bin("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sealgate \d+\.\d+\.\d+")

    def test_bad_config_is_refused_with_position(self):
        gw = Gateway(self)
        with open(gw.config, "a") as f:
            f.write("limits: {recipents: 5}\n")
        r = self.run_bin("run", "--config", gw.config)
        self.assertEqual(r.returncode, 1)
        self.assertIn("sealgate.yaml:", r.stderr)
        self.assertRegex(r.stderr, r"sealgate\.yaml:\d+:\d+: limits\.recipents: unknown key \(valid: message_size, "
                                   r"recipients, ")

    def test_passwd_writes_private_scrypt_hash(self):
        gw = Gateway(self)
        gw.add_user("alice", "s3cret")
        path = os.path.join(gw.dir, "users")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            self.assertRegex(f.read(), r"^alice:\$scrypt\$ln=15,r=8,p=1\$")
        r = self.run_bin("passwd", "--config", gw.config, "bad:name", stdin="x\n")
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
