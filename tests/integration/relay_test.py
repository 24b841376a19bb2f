"""Integration tests of sealgate's inbound relay.

The real gateway binary runs on 127.0.0.1 (each test with its own temporary
directory: configuration, TLS certificate, spool, database, users file) and is
driven by real peers: swaks, smtp-source, openssl s_client and byte-exact raw
Python sockets. Every test asserts the reasons (SMTP reply codes and enhanced
status codes, spool and database contents), not just that something failed.

Run:  cd tests/integration && SEALGATE_BIN=.../sealgate python3 -m unittest -v relay_test
"""
import base64
import hashlib
import os
import random
import re
import socket
import sqlite3
import ssl
import stat
import subprocess
import threading
import time
import unittest
import uuid
import warnings

from harness import (BIN, HOST, Client, Gateway, PeerClosed, dot_stuff, make_tempdir, message,
                     queue_id_of, run_sealgate, swaks, swaks_server_lines, xtext_decode)

warnings.simplefilter("ignore", ResourceWarning)

SENDER = "app@example.org"
RCPT = "someone@example.com"
QUEUED_RE = r"^250 2\.0\.0 Ok: queued as ([0-9A-F]{16})$"
BARE_NEWLINE_REPLY = "554 5.5.2 Error: bare <CR> or <LF> received in message content; closing"
EHLO_EXTENSIONS = ["PIPELINING", "SIZE 26214400", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN"]
TLS_EXTENSIONS = EHLO_EXTENSIONS + ["REQUIRETLS"]  # RFC 8689: offered only inside TLS


def content_of_size(n, subject="sized"):
    """Message content of exactly n octets, with lines of at most 80 octets."""
    head = "Subject: %s\r\n\r\n" % subject
    rest = n - len(head)
    assert rest >= 3
    lines = []
    while rest > 0:
        take = min(80, rest)
        if rest - take in (1, 2):  # never leave a remainder too short for a line
            take -= 3
        lines.append("y" * (take - 2) + "\r\n")
        rest -= take
    content = head + "".join(lines)
    assert len(content) == n
    return content


class GatewayTestCase(unittest.TestCase):
    """Helpers shared by the tests: clients that are closed at cleanup, and one transaction."""

    def client(self, gw, port=None, **kw):
        kw.setdefault("tls_cafile", gw.cert)
        c = Client(port or gw.port, **kw)
        self.addCleanup(c.close)
        return c

    def session(self, gw, port=None, **kw):
        """A client past the greeting and EHLO."""
        c = self.client(gw, port, **kw)
        self.assertEqual(c.greeting().text, "220 gw.test ESMTP sealgate")
        self.assertEqual(c.ehlo().code, 250)
        return c

    def tls_session(self, gw, port=None, **kw):
        """A client past greeting, EHLO, STARTTLS (certificate verified) and the second EHLO."""
        c = self.session(gw, port, **kw)
        self.assertEqual(c.starttls().text, "220 2.0.0 Ready to start TLS")
        r = c.ehlo()
        self.assertEqual(r.code, 250, r)
        return c, r

    def send_message(self, c, content, sender=SENDER, rcpts=(RCPT,), mail_params="", rcpt_params=""):
        """One MAIL/RCPT/DATA transaction whose envelope must be accepted; returns the reply to the final dot."""
        r = c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))
        self.assertEqual(r.text, "250 2.1.0 Ok")
        for rcpt in rcpts:
            r = c.cmd("RCPT TO:<%s>%s" % (rcpt, rcpt_params))
            self.assertEqual(r.text, "250 2.1.5 Ok", rcpt)
        r = c.cmd("DATA")
        self.assertEqual(r.text, "354 End data with <CR><LF>.<CR><LF>")
        c.send(dot_stuff(content))
        return c.reply()

    def assertQueued(self, reply):
        m = re.match(QUEUED_RE, reply.text)
        self.assertIsNotNone(m, "expected '250 2.0.0 Ok: queued as <ID>', got %r" % reply.text)
        return m.group(1)

    def assertNothingSpooled(self, gw):
        self.assertEqual(gw.queued(), [], "spool/queue must be empty")
        self.assertEqual(gw.incoming(), [], "spool/incoming must be empty")

    def audit_row(self, gw, qid, timeout=10):
        """The messages row of qid; the committer writes it right after the 250, so wait for it."""
        deadline = time.monotonic() + timeout
        while True:
            db = sqlite3.connect("file:%s?mode=ro" % gw.database, uri=True, timeout=5)
            try:
                row = db.execute("SELECT queue_id, received_at, listener, client_address, helo, auth_user,"
                                 " tls_protocol, tls_cipher, sender, recipients, size FROM messages"
                                 " WHERE queue_id=?", (qid,)).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                db.close()
            if row is not None or time.monotonic() > deadline:
                return row
            time.sleep(0.05)

    def swaks_queue_id(self, out):
        ids = re.findall(r"250 2\.0\.0 Ok: queued as ([0-9A-F]{16})", out)
        self.assertEqual(len(ids), 1, out)
        return ids[0]


# ---------------------------------------------------------------------------
class Delivery(GatewayTestCase):
    def test_plain_swaks_delivery(self):
        gw = Gateway(self).start()
        rc, out = swaks(gw.port)
        self.assertEqual(rc, 0, out)
        lines = swaks_server_lines(out)
        self.assertEqual(lines[0], "220 gw.test ESMTP sealgate")
        ehlo = lines[1:lines.index("250 STARTTLS") + 1]
        self.assertEqual(ehlo, ["250-gw.test"] + ["250-" + e for e in EHLO_EXTENSIONS] + ["250 STARTTLS"])
        self.assertNotIn("AUTH", out.split("250 STARTTLS")[0])  # AUTH is never offered before TLS
        qid = self.swaks_queue_id(out)
        self.assertEqual(lines[len(ehlo) + 1:], ["250 2.1.0 Ok", "250 2.1.5 Ok", "354 End data with <CR><LF>.<CR><LF>",
                                                 "250 2.0.0 Ok: queued as " + qid, "221 2.0.0 Bye"])
        self.assertEqual(gw.queued(), [qid])
        sf = gw.spool_file(qid)
        self.assertEqual(sf.lines[:1], ["id " + qid])
        self.assertEqual(sf.one("listener"), "smarthost")
        self.assertEqual(sf.one("client"), "127.0.0.1")
        self.assertEqual(sf.one("helo"), "client.test")
        self.assertEqual(sf.one("sender"), SENDER)
        self.assertEqual(sf.env["rcpt"], ["someone@example.com - -"])
        self.assertNotIn("tls", sf.env)
        self.assertNotIn("auth", sf.env)
        self.assertRegex(sf.received_header(),
                         r"^Received: from client\.test \(unknown \[127\.0\.0\.1\]\) by gw\.test \(sealgate\) "
                         r"with ESMTP id %s \(listener smarthost, not authenticated\) ; "
                         r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$" % qid)
        body = sf.body_after_received()
        self.assertIn(b"\r\nSubject: test ", body)
        self.assertIn(b"\r\n\r\nThis is a test mailing\r\n", body)
        self.assertNotIn(b"\n", body.replace(b"\r\n", b""), "content must have CRLF line ends only")

    def test_starttls_swaks_delivery_received_header_names_protocol_and_cipher(self):
        gw = Gateway(self).start()
        rc, out = swaks(gw.port, "-tls")
        self.assertEqual(rc, 0, out)
        m = re.search(r"=== TLS started with cipher (TLSv1\.3):(\S+):(\d+)", out)
        self.assertIsNotNone(m, out)
        proto, cipher, bits = m.groups()
        lines = swaks_server_lines(out)
        self.assertIn("220 2.0.0 Ready to start TLS", lines)
        # After TLS: AUTH offered, STARTTLS no longer.
        after = lines[lines.index("220 2.0.0 Ready to start TLS") + 1:]
        self.assertEqual(after[:9], ["250-gw.test"] + ["250-" + e for e in TLS_EXTENSIONS] + ["250 AUTH PLAIN LOGIN"])
        qid = self.swaks_queue_id(out)
        self.assertIn("<~  250 2.0.0 Ok: queued as " + qid, out)  # the 250 came inside TLS
        sf = gw.spool_file(qid)
        self.assertEqual(sf.one("tls"), "%s %s" % (proto, cipher))
        received = sf.received_header()
        self.assertIn("with ESMTPS id %s " % qid, received)
        self.assertIn("(using %s with cipher %s (%s/%s bits))" % (proto, cipher, bits, bits), received)
        # The toolchain here negotiates the strongest TLS 1.3 suite (as in the specification's example).
        self.assertIn("(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))", received)

    def test_implicit_tls_listener(self):
        gw = Gateway(self, listeners=[{"name": "submissions", "tls": "implicit", "auth": "optional"}]).start()
        rc, out = swaks(gw.port, "--tlsc")
        self.assertEqual(rc, 0, out)
        self.assertIn("=== TLS started with cipher TLSv1.3:", out)
        lines = swaks_server_lines(out)
        self.assertEqual(lines[0], "220 gw.test ESMTP sealgate")
        self.assertIn("<~  220 gw.test ESMTP sealgate", out)  # even the greeting is inside TLS
        self.assertEqual(lines[1:10], ["250-gw.test"] + ["250-" + e for e in TLS_EXTENSIONS] + ["250 AUTH PLAIN LOGIN"])
        self.assertNotIn("STARTTLS", out)
        qid = self.swaks_queue_id(out)
        sf = gw.spool_file(qid)
        self.assertEqual(sf.one("listener"), "submissions")
        self.assertIn("with ESMTPS id %s (listener submissions, not authenticated)" % qid, sf.received_header())
        # Python's ssl client verifying the test certificate, too.
        c = self.client(gw, implicit_tls=True)
        self.assertEqual(c.greeting().text, "220 gw.test ESMTP sealgate")
        # A client speaking plaintext SMTP to the implicit TLS port gets no SMTP dialogue.
        p = Client(gw.port)
        self.addCleanup(p.close)
        p.send("EHLO client.test\r\n")
        data, closed = p.read_until_closed(10)
        self.assertTrue(closed, "the gateway must hang up on a client that does not speak TLS")
        self.assertNotIn(b"220 ", data)
        self.assertNotIn(b"250", data)
        self.assertEqual(gw.queued(), [qid])

    def test_openssl_s_client_starttls(self):
        gw = Gateway(self).start()
        r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, gw.port), "-starttls", "smtp",
                            "-CAfile", gw.cert, "-verify_hostname", "localhost", "-verify_return_error",
                            "-crlf", "-quiet"],
                           input=b"EHLO client.test\nQUIT\n", capture_output=True, timeout=30)
        out, err = r.stdout.decode(), r.stderr.decode()
        self.assertIn("verify return:1", err)  # the gateway presented the configured certificate
        self.assertIn("250 STARTTLS", err)     # s_client's own plaintext EHLO saw STARTTLS
        # Inside TLS: AUTH offered, STARTTLS gone, and the dialogue ends with 221.
        self.assertEqual(out, "250-gw.test\r\n" + "".join("250-%s\r\n" % e for e in TLS_EXTENSIONS)
                         + "250 AUTH PLAIN LOGIN\r\n221 2.0.0 Bye\r\n")

    def test_tls_session_ends_with_close_notify(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        c.starttls(strict_eof=True)
        c.ehlo()
        self.assertEqual(c.cmd("QUIT").text, "221 2.0.0 Bye")
        c.sock.settimeout(10)
        try:
            tail = c.sock.recv(100)  # with suppress_ragged_eofs=False only a close_notify gives b""
        except ssl.SSLError as e:  # SSLEOFError, or SSLError(UNEXPECTED_EOF_WHILE_READING) on some builds
            self.fail("TLS connection closed without close_notify after 221: %s" % e)
        self.assertEqual(tail, b"")
        r = subprocess.run(["openssl", "s_client", "-connect", "%s:%d" % (HOST, gw.port), "-starttls", "smtp",
                            "-CAfile", gw.cert, "-crlf", "-quiet"],
                           input=b"EHLO client.test\nQUIT\n", capture_output=True, timeout=30)
        self.assertIn(b"221 2.0.0 Bye", r.stdout)
        self.assertNotIn(b"unexpected eof", r.stderr)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    def test_pipelining_swaks(self):
        gw = Gateway(self).start()
        rc, out = swaks(gw.port, "--pipeline")
        self.assertEqual(rc, 0, out)
        self.assertIn("250-PIPELINING", swaks_server_lines(out))
        qid = self.swaks_queue_id(out)
        self.assertEqual(gw.queued(), [qid])

    def test_pipelining_raw_batched_replies(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        # One write holding a whole command group (RFC 2920 3.1); the gateway answers
        # the group in one batch, flushed when it has to wait for the client.
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n" % SENDER)
        batch = c.sock.recv(65536)
        self.assertEqual(batch, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                                b"354 End data with <CR><LF>.<CR><LF>\r\n")
        c.send(dot_stuff(message()) + b"QUIT\r\n")
        r = c.reply()
        qid = self.assertQueued(r)
        self.assertEqual(c.reply().text, "221 2.0.0 Bye")
        data, closed = c.read_until_closed()
        self.assertEqual((data, closed), (b"", True))
        sf = gw.spool_file(qid)
        self.assertEqual(sf.env["rcpt"], ["b@example.com - -", "c@example.com - -"])
        self.assertEqual(sf.body_after_received(), message().encode())
        # A group with a refused recipient in the middle: each command gets its own reply, in order.
        c = self.session(gw)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<host!user@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n" % SENDER)
        self.assertEqual([r.status for r in c.replies(4)], ["250 2.1.0", "554 5.7.1", "250 2.1.5", "354"])
        c.send(dot_stuff(message()))
        self.assertQueued(c.reply())
        self.assertEqual(len(gw.queued()), 2)

    def test_dsn_parameters_kept(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("MAIL FROM:<%s> RET=HDRS ENVID=abc123" % SENDER).text, "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<x@y.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y.example").text,
                         "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<plain@example.com>").text, "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RCPT TO:<never@example.com> NOTIFY=NEVER").text, "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message()))
        qid = self.assertQueued(c.reply())
        sf = gw.spool_file(qid)
        keys = [l.split(" ", 1)[0] for l in sf.lines]
        self.assertEqual(keys, ["id", "received", "listener", "client", "helo", "class", "sender", "ret", "envid",
                                "rcpt", "rcpt", "rcpt"])
        self.assertEqual(sf.one("ret"), "HDRS")
        self.assertEqual(sf.one("envid"), "abc123")
        self.assertEqual(sf.env["rcpt"], ["x@y.example SUCCESS,FAILURE rfc822;x+40y.example",
                                          "plain@example.com - -",
                                          "never@example.com NEVER -"])
        self.assertEqual(xtext_decode(sf.env["rcpt"][0].split(" ")[2]), "rfc822;x@y.example")
        # Malformed DSN parameters are refused with their reason.
        self.assertEqual(c.cmd("MAIL FROM:<%s> RET=BODY" % SENDER).text,
                         "501 5.5.4 Bad RET parameter (FULL or HDRS)")
        self.assertEqual(c.cmd("MAIL FROM:<%s> ENVID=a=b" % SENDER).text,
                         "501 5.5.4 Bad ENVID parameter (xtext, at most 100 characters)")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<x@y.example> NOTIFY=SOMETIMES").text, "501 5.5.4 Bad NOTIFY parameter")
        self.assertEqual(c.cmd("RCPT TO:<x@y.example> ORCPT=x@y.example").text,
                         "501 5.5.4 Bad ORCPT parameter (addr-type;xtext)")

    def test_smtputf8_address_needs_the_smtputf8_parameter(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("MAIL FROM:<j\u00f6rg@example.org>").text,
                         "553 5.6.7 Non-ASCII address requires SMTPUTF8 (RFC 6531)")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<j\u00f6rg@example.com>").text,
                         "553 5.6.7 Non-ASCII address requires SMTPUTF8 (RFC 6531)")
        self.assertEqual(c.cmd("RSET").text, "250 2.0.0 Ok")
        self.assertEqual(c.cmd("MAIL FROM:<s\u00e9nder@example.org> SMTPUTF8").text, "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<j\u00f6rg@example.com>").text, "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message(subject="utf8", body="Gr\u00fc\u00dfe\r\n")))
        qid = self.assertQueued(c.reply())
        sf = gw.spool_file(qid)
        self.assertEqual(sf.one("smtputf8"), "1")
        self.assertEqual(sf.one("sender"), "s+C3+A9nder@example.org")
        self.assertEqual(xtext_decode(sf.one("sender")), "s\u00e9nder@example.org")
        self.assertEqual(sf.env["rcpt"], ["j+C3+B6rg@example.com - -"])
        self.assertIn("with UTF8SMTP id " + qid, sf.received_header())
        self.assertTrue(sf.body_after_received().endswith("Gr\u00fc\u00dfe\r\n".encode()))

    def test_spool_file_modes_and_database_row(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        content = message(subject="audit")
        before = int(time.time())
        qid = self.assertQueued(self.send_message(c, content, rcpts=("r1@example.com", "r2@example.com")))
        path = gw.spool_path(qid)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        for d in (gw.spool_dir, gw.queue_dir, gw.incoming_dir):
            self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700, d)
        self.assertEqual(stat.S_IMODE(os.stat(gw.database).st_mode), 0o600)
        sf = gw.spool_file(qid)
        received = int(sf.one("received"))
        self.assertTrue(before - 1 <= received <= int(time.time()) + 1)
        row = self.audit_row(gw, qid)
        # size: the message as spooled, our Received: header included (as Postfix's size=).
        self.assertEqual(sf.body_after_received(), content.encode())
        self.assertEqual(row, (qid, received, "smarthost", "127.0.0.1", "client.test", None, None, None,
                               SENDER, 2, len(sf.content)))
        gw.stop()
        db = sqlite3.connect(gw.database)
        self.addCleanup(db.close)
        self.assertEqual(db.execute("SELECT count(*) FROM messages").fetchone(), (1,))
        # The Message-ID from the content's header, and one row per recipient, queued.
        self.assertEqual(db.execute("SELECT message_id FROM messages").fetchone(), ("<audit@client.test>",))
        self.assertEqual(db.execute("SELECT idx, address, domain, status FROM recipients ORDER BY idx").fetchall(),
                         [(0, "r1@example.com", "example.com", "queued"), (1, "r2@example.com", "example.com", "queued")])
        self.assertIn("message-id=<audit@client.test> (queued)", gw.read_log())

    def test_dot_stuffing_and_null_sender(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        content = "Subject: dots\r\n\r\n.hidden\r\n..\r\n.\r\nx.y\r\n. \r\nend\r\n"
        self.assertEqual(c.cmd("MAIL FROM:<>").text, "250 2.1.0 Ok")  # bounces have the null sender
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "250 2.1.5 Ok")
        self.assertEqual(c.cmd("DATA").code, 354)
        wire = dot_stuff(content)
        self.assertIn(b"\r\n..hidden\r\n...\r\n..\r\n", wire)
        c.send(wire)
        qid = self.assertQueued(c.reply())
        sf = gw.spool_file(qid)
        self.assertIn("sender ", sf.lines)
        self.assertEqual(sf.one("sender"), "")
        self.assertEqual(sf.body_after_received(), content.encode())  # transparency undone exactly

    def test_large_message_and_split_reads_keep_content_exact(self):
        gw = Gateway(self).start()
        rnd = random.Random(5321)
        lines = []
        for i in range(40000):  # ~3 MB, with dot-leading, empty and 8-bit lines
            kind = i % 7
            if kind == 0:
                lines.append("." * rnd.randint(1, 3) + "line %d" % i)
            elif kind == 1:
                lines.append("")
            elif kind == 2:
                lines.append("\u00e9t\u00e9 %d" % i)
            else:
                lines.append("".join(rnd.choice("abcdefghij .:-") for _ in range(rnd.randint(1, 120))))
        content = "Subject: large\r\n\r\n" + "\r\n".join(lines) + "\r\n"
        c = self.session(gw, timeout=60)
        qid = self.assertQueued(self.send_message(c, content))
        self.assertEqual(gw.spool_file(qid).body_after_received(), content.encode())
        # The same framing when the bytes arrive in small pieces, split anywhere
        # (inside CRLF, between the dot and its CRLF, ...).
        small = "Subject: split\r\n\r\n.a\r\n..\r\nb\r\n.\r\n..c\r\nend\r\n"
        wire = dot_stuff(small)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        for i in range(len(wire)):
            c.send(wire[i:i + 1])
            time.sleep(0.003)  # pacing only, so that the gateway sees separate reads
        qid2 = self.assertQueued(c.reply())
        self.assertEqual(gw.spool_file(qid2).body_after_received(), small.encode())
        self.assertEqual(len(gw.queued()), 2)

    def test_several_listeners_each_with_its_own_policy(self):
        gw = Gateway(self, listeners=[{"name": "mx", "tls": "none", "auth": "none"},
                                      {"name": "submission", "tls": "starttls", "auth": "required"},
                                      {"name": "submissions", "tls": "implicit", "auth": "optional"}])
        gw.add_user("alice", "s3cret pass")
        gw.start()
        c = self.client(gw, gw.port_of("mx"))
        c.greeting()
        self.assertEqual(c.ehlo().lines, ["gw.test"] + EHLO_EXTENSIONS)  # no STARTTLS, no AUTH
        self.assertEqual(c.cmd("STARTTLS").text, "502 5.5.1 Error: command not implemented")
        self.assertEqual(c.cmd("AUTH PLAIN").text, "502 5.5.1 Error: authentication not enabled")
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertEqual(gw.spool_file(qid).one("listener"), "mx")
        c, ehlo = self.tls_session(gw, gw.port_of("submission"))
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "530 5.7.0 Authentication required")
        c = self.client(gw, gw.port_of("submissions"), implicit_tls=True)
        c.greeting()
        self.assertEqual(c.ehlo().lines, ["gw.test"] + TLS_EXTENSIONS + ["AUTH PLAIN LOGIN"])
        self.assertEqual(c.cmd("STARTTLS").text, "502 5.5.1 Error: command not implemented")
        qid2 = self.assertQueued(self.send_message(c, message()))
        sf = gw.spool_file(qid2)
        self.assertEqual(sf.one("listener"), "submissions")
        self.assertTrue(sf.one("tls").startswith("TLSv1.3 "))
        self.assertEqual(gw.queued(), sorted([qid, qid2]))

    def test_command_sequence_errors(self):
        gw = Gateway(self, limits={"errors": 100}).start()
        c = self.client(gw)
        self.assertEqual(c.greeting().text, "220 gw.test ESMTP sealgate")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).text, "503 5.5.1 Error: send HELO/EHLO first")
        self.assertEqual(c.cmd("HELO client.test").text, "250 gw.test")
        self.assertEqual(c.cmd("MAIL FROM:<%s> SIZE=100" % SENDER).text, "555 5.5.4 Parameters require EHLO")
        self.assertEqual(c.cmd("DATA").text, "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).text, "250 2.1.0 Ok")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).text, "503 5.5.1 Error: nested MAIL command")
        self.assertEqual(c.cmd("DATA").text, "554 5.5.1 Error: no valid recipients")
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "250 2.1.5 Ok")
        self.assertEqual(c.cmd("RSET").text, "250 2.0.0 Ok")
        self.assertEqual(c.cmd("DATA").text, "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<%s> FOO=BAR" % SENDER).text, "555 5.5.4 Unsupported MAIL parameter FOO")
        self.assertEqual(c.cmd("NOOP\0x").text, "500 5.5.2 Error: bad character in command")
        self.assertEqual(c.cmd("VRFY root").text, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery")
        self.assertEqual(c.cmd("EXPN staff").text, "502 5.5.1 EXPN not implemented")
        self.assertEqual(c.cmd("BDAT 10 LAST").text, "500 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("QUIT").text, "221 2.0.0 Bye")
        self.assertEqual(c.read_until_closed(10), (b"", True))
        # A message sent with HELO (not EHLO) is recorded as SMTP, not ESMTP.
        c = self.client(gw)
        c.greeting()
        self.assertEqual(c.cmd("HELO old.client").text, "250 gw.test")
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertIn("Received: from old.client (unknown [127.0.0.1]) by gw.test (sealgate) with SMTP id " + qid,
                      gw.spool_file(qid).received_header())

    def test_tls12_client_is_recorded_with_its_cipher(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        ctx = ssl.create_default_context(cafile=gw.cert)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.assertEqual(c.cmd("STARTTLS").code, 220)
        c.wrap_tls(context=ctx)
        name, proto, bits = c.sock.cipher()
        self.assertEqual(proto, "TLSv1.2")
        self.assertEqual(c.ehlo().code, 250)
        qid = self.assertQueued(self.send_message(c, message()))
        sf = gw.spool_file(qid)
        self.assertEqual(sf.one("tls"), "TLSv1.2 " + name)
        self.assertIn("(using TLSv1.2 with cipher %s (%d/%d bits))" % (name, bits, bits), sf.received_header())


# ---------------------------------------------------------------------------
class Authentication(GatewayTestCase):
    def outside(self, **kw):
        """A gateway whose relay.networks does not hold 127.0.0.1 (only 127.0.0.2), with user alice."""
        gw = Gateway(self, networks=("127.0.0.2/32",), **kw)
        gw.add_user("alice", "s3cret pass")
        return gw.start()

    def check_authenticated_message(self, gw, out):
        qid = self.swaks_queue_id(out)
        sf = gw.spool_file(qid)
        self.assertEqual(sf.one("auth"), "alice")
        self.assertEqual(sf.one("client"), "127.0.0.1")
        received = sf.received_header()
        self.assertIn("with ESMTPSA id %s (listener smarthost, authenticated)" % qid, received)
        self.assertNotIn("alice", received)
        return qid

    def test_auth_plain_over_tls_from_outside_relay_networks(self):
        gw = self.outside()
        rc, out = swaks(gw.port, "-tls", "-a", "PLAIN", "-au", "alice", "-ap", "s3cret pass")
        self.assertEqual(rc, 0, out)
        self.assertIn("<~  235 2.7.0 Authentication successful", out)
        qid = self.check_authenticated_message(gw, out)
        sf = gw.spool_file(qid)
        proto, cipher = sf.one("tls").split(" ")
        row = self.audit_row(gw, qid)
        self.assertIsNotNone(row)
        self.assertEqual(row[2:10], ("smarthost", "127.0.0.1", "client.test", "alice", proto, cipher,
                                     SENDER, 1))
        self.assertNotIn("s3cret", gw.read_log())

    def test_auth_login_over_tls_from_outside_relay_networks(self):
        gw = self.outside()
        rc, out = swaks(gw.port, "-tls", "-a", "LOGIN", "-au", "alice", "-ap", "s3cret pass")
        self.assertEqual(rc, 0, out)
        lines = swaks_server_lines(out)
        self.assertIn("334 VXNlcm5hbWU6", lines)
        self.assertIn("334 UGFzc3dvcmQ6", lines)
        self.assertIn("235 2.7.0 Authentication successful", lines)
        self.check_authenticated_message(gw, out)

    def test_wrong_password_is_refused_and_relay_stays_denied(self):
        gw = self.outside()
        rc, out = swaks(gw.port, "-tls", "-a", "PLAIN", "-au", "alice", "-ap", "wrong")
        self.assertEqual(rc, 28, out)  # swaks: AUTH failed
        self.assertIn("<~* 535 5.7.8 Error: authentication failed", out)
        c, ehlo = self.tls_session(gw)
        started = time.monotonic()
        self.assertEqual(c.auth_plain("alice", "wrong").text, "535 5.7.8 Error: authentication failed")
        self.assertGreaterEqual(time.monotonic() - started, 0.9, "a wrong password costs the client a second")
        self.assertEqual(c.auth_login("alice", "s3cret").text, "535 5.7.8 Error: authentication failed")
        self.assertEqual(c.auth_plain("mallory", "s3cret pass").text, "535 5.7.8 Error: authentication failed")
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).text, "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "554 5.7.1 <someone@example.com>: Relay access denied")
        self.assertEqual(c.cmd("DATA").text, "554 5.5.1 Error: no valid recipients")
        self.assertEqual(c.cmd("RSET").code, 250)
        # The right password in the same session still works afterwards.
        self.assertEqual(c.auth_plain("alice", "s3cret pass").text, "235 2.7.0 Authentication successful")
        self.assertQueued(self.send_message(c, message()))
        self.assertEqual(len(gw.queued()), 1)
        self.assertIn("authentication failed", gw.read_log())
        self.assertNotIn("wrong", gw.read_log())

    def test_auth_before_tls_is_refused(self):
        gw = self.outside()
        c = self.client(gw)
        c.greeting()
        ehlo = c.ehlo()
        self.assertIn("STARTTLS", ehlo.lines)
        self.assertNotIn("AUTH PLAIN LOGIN", ehlo.lines)
        expected = "538 5.7.11 Encryption required for requested authentication mechanism"
        self.assertEqual(c.auth_plain("alice", "s3cret pass").text, expected)
        self.assertEqual(c.cmd("AUTH LOGIN").text, expected)
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "554 5.7.1 <someone@example.com>: Relay access denied")

    def test_relay_denied_without_auth_from_outside_networks(self):
        gw = self.outside()
        rc, out = swaks(gw.port)
        self.assertEqual(rc, 24, out)  # swaks: every recipient refused
        self.assertIn("<** 554 5.7.1 <someone@example.com>: Relay access denied", out)
        rc, out = swaks(gw.port, "-tls")  # TLS alone does not authorize relaying
        self.assertEqual(rc, 24, out)
        self.assertIn("<~* 554 5.7.1 <someone@example.com>: Relay access denied", out)
        # 127.0.0.3 is outside 127.0.0.2/32 too.
        c = self.session(gw, source="127.0.0.3")
        c.cmd("MAIL FROM:<%s>" % SENDER)
        self.assertEqual(c.cmd("RCPT TO:<other@example.net>").text, "554 5.7.1 <other@example.net>: Relay access denied")
        self.assertNothingSpooled(gw)
        # 127.0.0.2 is the listed network: it relays without AUTH.
        c = self.session(gw, source="127.0.0.2")
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertEqual(gw.spool_file(qid).one("client"), "127.0.0.2")
        self.assertEqual(gw.queued(), [qid])

    def test_auth_required_listener(self):
        # 127.0.0.1 is in relay.networks, but the listener requires AUTH anyway.
        gw = Gateway(self, listeners=[{"name": "submission", "tls": "starttls", "auth": "required"}])
        gw.add_user("alice", "s3cret pass")
        gw.start()
        c = self.session(gw)
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "530 5.7.0 Authentication required")
        c, ehlo = self.tls_session(gw)
        self.assertIn("AUTH PLAIN LOGIN", ehlo.lines)
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "530 5.7.0 Authentication required")
        rc, out = swaks(gw.port, "-tls")
        self.assertEqual(rc, 24, out)
        self.assertIn("<~* 530 5.7.0 Authentication required", out)
        self.assertNothingSpooled(gw)
        rc, out = swaks(gw.port, "-tls", "-a", "LOGIN", "-au", "alice", "-ap", "s3cret pass")
        self.assertEqual(rc, 0, out)
        qid = self.swaks_queue_id(out)
        self.assertEqual(gw.spool_file(qid).one("auth"), "alice")
        self.assertEqual(gw.queued(), [qid])

    def test_auth_exchanges_and_failed_attempts_count_as_errors(self):
        gw = Gateway(self, networks=("127.0.0.2/32",), limits={"errors": 3})
        gw.add_user("alice", "s3cret pass")
        gw.start()
        # PLAIN without an initial response: an empty 334 challenge, then the response.
        c, _ = self.tls_session(gw)
        self.assertEqual(c.cmd("AUTH PLAIN").text, "334 ")
        self.assertEqual(c.cmd(base64.b64encode(b"\0alice\0s3cret pass").decode()).text,
                         "235 2.7.0 Authentication successful")
        self.assertNotIn("AUTH PLAIN LOGIN", c.ehlo().lines)  # not offered once authenticated
        self.assertEqual(c.cmd("AUTH LOGIN").text, "503 5.5.1 Error: already authenticated")
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertEqual(gw.spool_file(qid).one("auth"), "alice")
        # LOGIN with the user name as initial response (RFC 4954 4).
        c, _ = self.tls_session(gw)
        self.assertEqual(c.cmd("AUTH LOGIN " + base64.b64encode(b"alice").decode()).text, "334 UGFzc3dvcmQ6")
        self.assertEqual(c.cmd(base64.b64encode(b"s3cret pass").decode()).text, "235 2.7.0 Authentication successful")
        # Cancel, unknown mechanism, foreign authorization identity.
        c, _ = self.tls_session(gw)
        self.assertEqual(c.cmd("AUTH PLAIN").text, "334 ")
        self.assertEqual(c.cmd("*").text, "501 5.0.0 Authentication aborted")
        self.assertEqual(c.cmd("AUTH CRAM-MD5").text, "504 5.5.4 Error: unsupported authentication mechanism")
        c, _ = self.tls_session(gw)
        token = base64.b64encode(b"bob\0alice\0s3cret pass").decode()
        self.assertEqual(c.cmd("AUTH PLAIN " + token).text,
                         "535 5.7.8 Error: authentication failed: authorization identity not allowed")
        # An over-long response line ends the exchange with its own reason.
        c, _ = self.tls_session(gw)
        self.assertEqual(c.cmd("AUTH LOGIN").text, "334 VXNlcm5hbWU6")
        self.assertEqual(c.cmd("QUFB" * 1000).text, "500 5.5.6 Authentication exchange line is too long")
        self.assertEqual(c.cmd("NOOP").text, "250 2.0.0 Ok")  # a command again, not a response
        # Guessing passwords: the third failure ends the session (limits.errors: 3).
        c, _ = self.tls_session(gw)
        self.assertEqual(c.auth_plain("alice", "guess1").text, "535 5.7.8 Error: authentication failed")
        self.assertEqual(c.auth_login("alice", "guess2").text, "535 5.7.8 Error: authentication failed")
        r = c.auth_plain("alice", "guess3")
        self.assertEqual(r.text, "535 5.7.8 Error: authentication failed")
        self.assertEqual(c.reply().text, "421 4.7.0 gw.test Error: too many errors")
        self.assertEqual(c.read_until_closed(10), (b"", True))


# ---------------------------------------------------------------------------
class RelayTricks(GatewayTestCase):
    TRICKS = (("user%other.example@example.com", "554 5.7.1 Percent-hack addresses are not accepted"),
              ("host!user@example.com", "554 5.7.1 Bang-path addresses are not accepted"),
              ("@relay.example:user@example.com", "554 5.7.1 Source routes are not accepted"),
              ('"user@other.example"@example.com', "554 5.7.1 Quoted local parts holding @ are not accepted"),
              ("user@[192.0.2.1]", "554 5.7.1 Address literals are not accepted as recipients"),
              ("user@[IPv6:2001:db8::1]", "554 5.7.1 Address literals are not accepted as recipients"),
              ("user@other.example@example.com", "554 5.7.1 Multiple @ in address are not accepted"))

    def test_open_relay_tricks_are_refused_for_everyone(self):
        gw = Gateway(self, limits={"errors": 100})
        gw.add_user("alice", "s3cret pass")
        gw.start()
        inside = self.session(gw)  # 127.0.0.1 is in relay.networks
        authed, _ = self.tls_session(gw)
        self.assertEqual(authed.auth_plain("alice", "s3cret pass").code, 235)
        for who, c in (("relay network client", inside), ("authenticated client", authed)):
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
            for rcpt, expected in self.TRICKS:
                with self.subTest(who=who, rcpt=rcpt):
                    self.assertEqual(c.cmd("RCPT TO:<%s>" % rcpt).text, expected)
            # The transaction survives the refusals: only the honest recipient is spooled.
            self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "250 2.1.5 Ok")
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(dot_stuff(message()))
            qid = self.assertQueued(c.reply())
            self.assertEqual(gw.spool_file(qid).env["rcpt"], ["someone@example.com - -"])
        self.assertEqual(len(gw.queued()), 2)
        # Swaks, for the record: the percent hack is refused on the wire.
        rc, out = swaks(gw.port, to="user%other.example@example.com")
        self.assertEqual(rc, 24, out)
        self.assertIn("<** 554 5.7.1 Percent-hack addresses are not accepted", out)


# ---------------------------------------------------------------------------
class Smuggling(GatewayTestCase):
    def open_data(self, gw):
        c = self.session(gw)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        self.assertEqual([r.status for r in c.replies(3)], ["250 2.1.0", "250 2.1.5", "354"])
        return c

    def test_bare_lf_smuggling_attempt(self):
        gw = Gateway(self).start()
        smuggled = ("MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
                    "Subject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n")
        for name, ending in (("LF.LF", "\n.\n"), ("CRLF.LF", "\r\n.\n"), ("LF.CRLF", "\n.\r\n")):
            with self.subTest(ending=name):
                c = self.open_data(gw)
                # One write: the gateway reads the whole attempt at once.
                c.send("Subject: first\r\n\r\nfirst" + ending + smuggled)
                self.assertEqual(c.reply().text, BARE_NEWLINE_REPLY)
                rest, closed = c.read_until_closed(10)
                self.assertTrue(closed, "the gateway must close the connection")
                # The smuggled MAIL FROM / RCPT / DATA / QUIT never got a reply.
                self.assertEqual(c.buf + rest, b"")
                self.assertNothingSpooled(gw)
        self.assertNotIn("evil@example.org", gw.read_log())
        # The gateway is fine afterwards.
        c = self.session(gw)
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertEqual(gw.queued(), [qid])
        self.assertEqual(gw.spool_file(qid).one("sender"), SENDER)

    def test_bare_cr_is_refused(self):
        gw = Gateway(self).start()
        for name, content in (("CR in a line", "Subject: x\r\n\r\nbad\rline\r\n.\r\n"),
                              ("CR.CRLF", "Subject: x\r\n\r\nbad\r.\r\n.\r\n"),
                              (".CR then text", "Subject: x\r\n\r\nok\r\n.\rMAIL FROM:<evil@example.org>\r\n.\r\n")):
            with self.subTest(variant=name):
                c = self.open_data(gw)
                c.send(content)
                self.assertEqual(c.reply().text, BARE_NEWLINE_REPLY)
                rest, closed = c.read_until_closed(10)
                self.assertTrue(closed)
                self.assertEqual(c.buf + rest, b"")
                self.assertNothingSpooled(gw)


# ---------------------------------------------------------------------------
class Limits(GatewayTestCase):
    def test_oversize_message_is_refused_after_the_final_dot(self):
        gw = Gateway(self, limits={"message_size": "10KB"}).start()
        c = self.client(gw)
        c.greeting()
        self.assertIn("SIZE 10000", c.ehlo().lines)
        big = "Subject: big\r\n\r\n" + ("x" * 78 + "\r\n") * 256  # ~20 KB
        self.assertGreater(len(big), 20000)
        r = self.send_message(c, big)
        self.assertEqual(r.text, "552 5.3.4 Message size exceeds fixed limit")
        self.assertNothingSpooled(gw)
        self.assertEqual(c.cmd("NOOP").text, "250 2.0.0 Ok")  # the session goes on
        # The limit is inclusive: exactly 10000 octets of content pass, 10001 do not.
        exact = content_of_size(10000)
        qid = self.assertQueued(self.send_message(c, exact))
        self.assertEqual(gw.spool_file(qid).body_after_received(), exact.encode())
        self.assertEqual(self.send_message(c, content_of_size(10001)).text,
                         "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(gw.queued(), [qid])
        self.assertEqual(gw.incoming(), [])

    def test_declared_size_too_big(self):
        gw = Gateway(self, limits={"message_size": "10KB"}).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("MAIL FROM:<%s> SIZE=20000" % SENDER).text,
                         "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(c.cmd("MAIL FROM:<%s> SIZE=10001" % SENDER).text,
                         "552 5.3.4 Message size exceeds fixed limit")
        self.assertEqual(c.cmd("MAIL FROM:<%s> SIZE=10000" % SENDER).text, "250 2.1.0 Ok")
        rc, out = swaks(gw.port, "--pipeline", "--add-header", "X-Pad: " + "p" * 200)
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(gw.queued()), 1)

    def test_too_many_recipients(self):
        gw = Gateway(self, limits={"recipients": 3}).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).code, 250)
        replies = [c.cmd("RCPT TO:<r%d@example.com>" % i).text for i in range(4)]
        self.assertEqual(replies, ["250 2.1.5 Ok"] * 3 + ["452 4.5.3 Error: too many recipients"])
        self.assertEqual(c.cmd("DATA").code, 354)
        c.send(dot_stuff(message()))
        qid = self.assertQueued(c.reply())
        self.assertEqual(gw.spool_file(qid).env["rcpt"], ["r%d@example.com - -" % i for i in range(3)])

    def test_errors_limit(self):
        gw = Gateway(self, limits={"errors": 3}).start()
        c = self.session(gw)
        self.assertEqual(c.cmd("BOGUS").text, "500 5.5.2 Error: command not recognized")
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("NOOP").text, "250 2.0.0 Ok")  # successes do not reset the count
        c.send("MAIL FROM:<missing-bracket@example.org\r\n")
        self.assertEqual(c.reply().text, "501 5.5.4 Syntax: missing closing >")
        self.assertEqual(c.reply().text, "421 4.7.0 gw.test Error: too many errors")
        rest, closed = c.read_until_closed(10)
        self.assertEqual((c.buf + rest, closed), (b"", True))

    def test_line_too_long(self):
        gw = Gateway(self).start()  # command_line_length: 2048 (default)
        c = self.session(gw)
        exact = "NOOP " + "x" * (2048 - 5)
        self.assertEqual(c.cmd(exact).text, "250 2.0.0 Ok")
        self.assertEqual(c.cmd(exact + "x").text, "500 5.5.2 Error: line too long")
        self.assertEqual(c.cmd("NOOP " + "x" * 100000).text, "500 5.5.2 Error: line too long")
        # The session resynchronises on the next line.
        self.assertEqual(c.cmd("NOOP").text, "250 2.0.0 Ok")
        self.assertQueued(self.send_message(c, message()))

    def test_data_line_too_long(self):
        gw = Gateway(self).start()  # data_line_length: 998 (RFC 5322 2.1.1)
        c = self.session(gw)
        ok = "Subject: long\r\n\r\n" + "z" * 998 + "\r\n"
        self.assertQueued(self.send_message(c, ok))
        bad = "Subject: long\r\n\r\n" + "z" * 999 + "\r\n"
        self.assertEqual(self.send_message(c, bad).text,
                         "554 5.6.0 Message has a line longer than 998 characters (RFC 5322 2.1.1)")
        self.assertEqual(len(gw.queued()), 1)
        self.assertEqual(gw.incoming(), [])

    def test_data_line_limit_does_not_count_the_transparency_dot(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        content = "Subject: dot\r\n\r\n." + "z" * 997 + "\r\n"  # a 998-character content line
        self.assertIn(b"\r\n.." + b"z" * 997 + b"\r\n", dot_stuff(content))  # 999 on the wire, stuffed
        qid = self.assertQueued(self.send_message(c, content))
        self.assertEqual(gw.spool_file(qid).body_after_received(), content.encode())

    def test_data_line_reply_names_the_configured_limit(self):
        gw = Gateway(self, limits={"data_line_length": 100}).start()
        c = self.session(gw)
        self.assertQueued(self.send_message(c, "Subject: x\r\n\r\n" + "z" * 100 + "\r\n"))
        r = self.send_message(c, "Subject: x\r\n\r\n" + "z" * 101 + "\r\n")
        self.assertEqual(r.status, "554 5.6.0")
        self.assertEqual(len(gw.queued()), 1)
        self.assertNotIn("998", r.text)
        self.assertIn("100", r.text)

    def test_connection_limit(self):
        gw = Gateway(self, limits={"connections": 2}).start()
        held = [self.client(gw) for _ in range(2)]
        for h in held:
            self.assertEqual(h.greeting().text, "220 gw.test ESMTP sealgate")
        extra = self.client(gw)
        self.assertEqual(extra.reply().text, "421 4.7.0 gw.test Error: too many connections")
        rest, closed = extra.read_until_closed(10)
        self.assertEqual((extra.buf + rest, closed), (b"", True))
        # A freed slot is available again (once the gateway has seen the QUIT).
        self.assertEqual(held[0].cmd("QUIT").text, "221 2.0.0 Bye")
        self.assertTrue(held[0].read_until_closed(10)[1])
        deadline, greeting = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            c = self.client(gw)
            greeting = c.reply().text
            if greeting.startswith("220"):
                break
            time.sleep(0.1)
        self.assertEqual(greeting, "220 gw.test ESMTP sealgate")


# ---------------------------------------------------------------------------
class Timeouts(GatewayTestCase):
    """The only tests where time is a pass/fail criterion: each configured
    deadline (1-2 s) must end the stalled stage well within 10 s."""

    def test_silent_client_is_timed_out(self):
        gw = Gateway(self, timeouts={"command": "2s"}).start()
        c = self.client(gw, timeout=15)
        self.assertEqual(c.greeting().code, 220)
        started = time.monotonic()
        r = c.reply()
        elapsed = time.monotonic() - started
        self.assertEqual(r.text, "421 4.4.2 gw.test Error: timeout exceeded")
        rest, closed = c.read_until_closed(10)
        self.assertEqual((c.buf + rest, closed), (b"", True))
        # 2 s configured: not before it (with slack for clock granularity), well within 10 s.
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 10)
        # Also in the middle of a session (after EHLO, with half a command sent).
        c = self.session(gw, timeout=15)
        c.send("NOO")
        started = time.monotonic()
        self.assertEqual(c.reply().text, "421 4.4.2 gw.test Error: timeout exceeded")
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(c.read_until_closed(10)[1], True)

    def test_data_timeout_drops_the_partial_message(self):
        gw = Gateway(self, timeouts={"command": "30s", "data": "1s"}).start()
        c = self.session(gw, timeout=15)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        self.assertEqual([r.code for r in c.replies(3)], [250, 250, 354])
        c.send("Subject: partial\r\n\r\nhalf a mess")
        started = time.monotonic()
        self.assertEqual(c.reply().text, "421 4.4.2 gw.test Error: timeout exceeded")
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(c.read_until_closed(10), (b"", True))
        self.assertNothingSpooled(gw)
        self.assertIn("timeout after DATA from [127.0.0.1]", gw.read_log())

    def test_timeout_inside_tls(self):
        gw = Gateway(self, timeouts={"command": "1s"}).start()
        c, _ = self.tls_session(gw, timeout=15)
        started = time.monotonic()
        self.assertEqual(c.reply().text, "421 4.4.2 gw.test Error: timeout exceeded")  # read through TLS
        self.assertLess(time.monotonic() - started, 10)
        self.assertTrue(c.read_until_closed(10)[1])

    def test_tls_handshake_timeout(self):
        gw = Gateway(self, timeouts={"tls_handshake": "1s", "command": "30s"}, limits={"connections": 2},
                     listeners=[{"name": "smarthost", "tls": "starttls", "auth": "optional"},
                                {"name": "submissions", "tls": "implicit", "auth": "optional"}]).start()
        c = self.session(gw, timeout=15)
        self.assertEqual(c.cmd("STARTTLS").text, "220 2.0.0 Ready to start TLS")
        silent = self.client(gw, gw.port_of("submissions"), timeout=15)  # never says ClientHello
        started = time.monotonic()
        self.assertEqual(c.read_until_closed(10), (b"", True))
        self.assertEqual(silent.read_until_closed(10), (b"", True))
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(gw.read_log().count("TLS handshake failed from [127.0.0.1]: timeout"), 2)
        # Both connection slots are free again.
        held = [self.session(gw) for _ in range(2)]
        self.assertEqual(len(held), 2)

    def test_client_that_does_not_read_is_dropped(self):
        gw = Gateway(self, timeouts={"reply": "1s", "command": "60s"}, limits={"connections": 1}).start()
        s = socket.socket()
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, gw.port))
        s.settimeout(1)
        sent, flood = 0, b"NOOP\r\n" * 100000
        try:
            while sent < 100_000_000:  # pipelined NOOPs whose replies are never read
                sent += s.send(flood)
        except socket.timeout:
            pass  # both directions are full: the gateway is stuck writing replies
        except OSError:
            pass  # already dropped
        self.assertLess(sent, 100_000_000, "the gateway kept reading without being able to reply")
        # The stuck session must give up after timeouts.reply and free the only connection slot.
        deadline, greeting = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            c = self.client(gw)
            greeting = c.reply().text
            if greeting.startswith("220"):
                break
            self.assertEqual(greeting, "421 4.7.0 gw.test Error: too many connections")
            time.sleep(0.1)
        self.assertEqual(greeting, "220 gw.test ESMTP sealgate")


# ---------------------------------------------------------------------------
class StartTLS(GatewayTestCase):
    def test_plaintext_pipelined_behind_starttls_is_discarded(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        # An injection in clear text glued behind STARTTLS, in one write (CVE-2011-0411 class).
        c.send("STARTTLS\r\nNOOP\r\n")
        self.assertEqual(c.reply().text, "220 2.0.0 Ready to start TLS")
        self.assertEqual(c.buf, b"", "nothing may follow the 220 in clear text")
        c.wrap_tls()  # verifies the certificate against the test CA (localhost)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        c.send("EHLO client.test\r\n")
        r = c.reply()  # the first reply over TLS must be the EHLO reply, not the injected NOOP's
        self.assertEqual(r.raw_lines[0], "250-gw.test")
        self.assertEqual(r.lines[1:], TLS_EXTENSIONS + ["AUTH PLAIN LOGIN"])
        self.assertEqual(c.cmd("NOOP").text, "250 2.0.0 Ok")
        self.assertEqual(c.cmd("QUIT").text, "221 2.0.0 Bye")
        self.assertEqual(c.buf, b"")

    def test_injected_mail_behind_starttls_is_not_executed(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        c.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\n")
        self.assertEqual(c.reply().text, "220 2.0.0 Ready to start TLS")
        self.assertEqual(c.buf, b"")
        c.wrap_tls()
        # TLS starts a new session (RFC 3207 4.2): EHLO first, no MAIL in progress.
        self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER).text, "503 5.5.1 Error: send HELO/EHLO first")
        self.assertEqual(c.ehlo().raw_lines[0], "250-gw.test")
        self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "503 5.5.1 Error: need MAIL command")
        self.assertEqual(c.cmd("STARTTLS").text, "502 5.5.1 Error: command not implemented")
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertEqual(gw.spool_file(qid).one("sender"), SENDER)
        self.assertEqual(gw.queued(), [qid])


# ---------------------------------------------------------------------------
class Durability(GatewayTestCase):
    def check_spool_file(self, gw, qid):
        sf = gw.spool_file(qid)  # raises unless the magic line and the '.' separator are there
        self.assertEqual(sf.lines[0], "id " + qid)
        self.assertTrue(sf.content.startswith(b"Received: from "), qid)
        self.assertIn(b" id " + qid.encode() + b"\r\n", sf.content)
        self.assertTrue(sf.content.endswith(b"\r\n"), qid)
        return sf

    def test_kill_9_in_the_middle_of_load_loses_no_acknowledged_message(self):
        self.kill_9_during_load(None)

    def test_kill_9_during_load_with_filesystem_sync(self):
        self.kill_9_during_load("filesystem")

    def test_kill_9_during_load_with_file_sync(self):
        self.kill_9_during_load("file")

    def test_power_loss_after_kill_9_is_repaired_from_the_journal(self):
        # A power loss is simulated on top of the kill: the journal's segments
        # are marked as written in another boot, and the queue files their
        # records cover (written unsynced) are deleted or cut short, as a power
        # loss can leave them. The restart must restore every one of them.
        damaged = []
        # Records of the group in flight at the kill whose queue files were not
        # written yet (they are written while the journal flushes): no 250
        # covered them, and a replay restores them too (a duplicate of what
        # the client sends again, never a loss).
        unwritten = []

        def lose_unsynced_files(gw):
            journal_dir = os.path.join(gw.spool_dir, "journal")
            for name in sorted(os.listdir(journal_dir)):
                if name.startswith("spare-"):
                    continue  # retired files kept for reuse: never replayed
                path = os.path.join(journal_dir, name)
                with open(path, "rb") as f:
                    data = f.read()
                header, _, rest = data.partition(b"\n")
                self.assertTrue(header.startswith(b"sealgate-journal 2 "), header)
                boot, nonce = header.split(b" ")[2:4]
                ids = []
                while len(rest) >= 16 and rest[:4] == b"SGJR":
                    id_len = int.from_bytes(rest[4:8], "little")
                    size = int.from_bytes(rest[8:16], "little")
                    end = 16 + id_len + size + 32
                    # A torn tail (a group in flight at the kill), or what an
                    # earlier use of a recycled file left: the digest tells.
                    if end > len(rest) or hashlib.sha256(nonce + rest[:end - 32]).digest() != rest[end - 32:end]:
                        break
                    ids.append(rest[16:16 + id_len].decode())
                    rest = rest[end:]
                with open(path, "wb") as f:
                    f.write(data.replace(boot, b"00000000-0000-0000-0000-000000000000", 1))
                for i, qid in enumerate(ids):
                    qpath = os.path.join(gw.queue_dir, qid)
                    if not os.path.exists(qpath):
                        unwritten.append(qid)
                        continue
                    if i % 2:
                        os.truncate(qpath, 100)
                    else:
                        os.unlink(qpath)
                    damaged.append(qid)
            self.assertGreater(len(damaged), 0, "no journal record to lose")

        gw = self.kill_9_during_load(None, before_restart=lose_unsynced_files)
        self.assertTrue(gw.wait_for_log("%d queue files restored from the spool journal"
                                        % (len(damaged) + len(unwritten))), gw.log_tail())
        self.assertLessEqual(len(unwritten), 64, "more than one group in flight at the kill?")

    def kill_9_during_load(self, spool_sync, before_restart=None):
        gw = Gateway(self, spool_sync=spool_sync).start()
        stop = threading.Event()
        self.addCleanup(stop.set)
        lock = threading.Lock()
        acked = {}  # queue id -> exact content sent (raw Python clients)
        errors = []

        def raw_sender(n):
            seq = 0
            while not stop.is_set():
                try:
                    c = Client(gw.port, timeout=10)
                except OSError:
                    time.sleep(0.02)
                    continue
                try:
                    c.greeting()
                    c.ehlo("load%d.test" % n)
                    while not stop.is_set():
                        seq += 1
                        content = ("Subject: crash %d-%d\r\nMessage-ID: <%s@load.test>\r\n\r\n" % (n, seq, uuid.uuid4())
                                   + ("%d-%d " % (n, seq) + "z" * 70 + "\r\n") * 55)
                        c.send("MAIL FROM:<load%d@example.org>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n" % n)
                        if [r.code for r in c.replies(3)] != [250, 250, 354]:
                            break
                        c.send(dot_stuff(content))
                        r = c.reply()
                        qid = queue_id_of(r.text)
                        if qid:
                            with lock:
                                acked[qid] = content.encode()
                        elif not stop.is_set():
                            errors.append(r.text)
                except (OSError, PeerClosed, AssertionError, ValueError):
                    pass  # the gateway was killed under this client
                finally:
                    c.close()

        threads = [threading.Thread(target=raw_sender, args=(i,), daemon=True) for i in range(6)]
        err_path = os.path.join(gw.dir, "smtp-source.log")
        err = open(err_path, "w")
        self.addCleanup(err.close)
        # -v prints every server reply, so smtp-source's acknowledged queue ids are known too.
        load = subprocess.Popen(["smtp-source", "-v", "-c", "-s", "20", "-m", "2000", "-l", "4096",
                                 "-f", "sender@example.org", "-t", "rcpt@example.com", "%s:%d" % (HOST, gw.port)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(lambda: load.poll() is None and (load.kill(), load.wait()))
        for t in threads:
            t.start()

        def source_acks():
            with open(err_path, errors="replace") as f:
                return re.findall(r"<<< 250 2\.0\.0 Ok: queued as ([0-9A-F]{16})", f.read())

        # Kill when both kinds of client have had a good number of messages acknowledged.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                n_raw = len(acked)
            if n_raw >= 60 and len(source_acks()) >= 200:
                break
            time.sleep(0.01)
        self.assertIsNone(load.poll(), "smtp-source finished before the kill: not 'in the middle'")
        gw.kill9()
        stop.set()
        load.kill()
        load.wait(10)
        for t in threads:
            t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads))
        err.close()
        raw = dict(acked)
        source = source_acks()
        self.assertGreaterEqual(len(raw), 60)
        self.assertGreaterEqual(len(source), 200)
        self.assertLess(len(source), 2000)
        self.assertEqual(errors, [], "refusals during the load")
        left_incoming = gw.incoming()
        journal_dir = os.path.join(gw.spool_dir, "journal")
        if spool_sync is None:
            # The default journal mode: the kill left the segment of the last
            # second's groups, not yet checkpointed.
            self.assertTrue([n for n in os.listdir(journal_dir) if not n.startswith("spare-")],
                            "no journal segment at the kill")
        if before_restart:
            before_restart(gw)

        gw.start()
        queued = set(gw.queued())
        if spool_sync is None:
            # The old segments are retired at once. In the same boot the page
            # cache holds every queue file: nothing is replayed.
            self.assertEqual([n for n in os.listdir(journal_dir) if not n.startswith("spare-")], [])
            if not before_restart:
                self.assertNotIn("restored from the spool journal", gw.log_tail(100000))
        self.assertEqual(gw.incoming(), [], "spool/incoming must be emptied at start (%d left by the kill)"
                         % len(left_incoming))
        missing = sorted(q for q in list(raw) + source if q not in queued)
        self.assertEqual(missing, [], "acknowledged with 250 but not in spool/queue after kill -9 and restart")
        for qid, content in raw.items():
            sf = self.check_spool_file(gw, qid)
            self.assertEqual(sf.body_after_received(), content, qid)
            self.assertEqual(sf.env["rcpt"], ["rcpt@example.com - -"])
        for qid in source:
            sf = self.check_spool_file(gw, qid)
            self.assertEqual(sf.one("sender"), "sender@example.org")
            self.assertEqual(sf.env["rcpt"], ["rcpt@example.com - -"])
            self.assertGreaterEqual(len(sf.body_after_received()), 4096)
        # Everything in queue/ is complete (nothing half-written was ever renamed there).
        for qid in queued:
            self.check_spool_file(gw, qid)
        self.assertFalse(os.path.exists(os.path.join(gw.spool_dir, "corrupt")), "damaged spool files after kill -9")
        self.assertTrue(gw.wait_for_log("%d messages waiting for delivery" % len(queued)), gw.log_tail())
        # Audit rows of the group in flight at the kill are written after its 250s; the
        # restart restores them from the spool, so every queued message has its row.
        deadline = time.time() + 10
        while True:
            db = sqlite3.connect(gw.database)
            rows = {r[0] for r in db.execute("SELECT queue_id FROM messages")}
            db.close()
            if queued <= rows or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(sorted(queued - rows), [], "queued messages without an audit row after restart")
        # And the restarted gateway accepts mail again, under a new queue id.
        c = self.session(gw)
        qid = self.assertQueued(self.send_message(c, message()))
        self.assertNotIn(qid, queued)
        self.assertEqual(len(gw.queued()), len(queued) + 1)
        return gw

    def test_client_disconnect_during_data_leaves_nothing(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
        self.assertEqual([r.code for r in c.replies(3)], [250, 250, 354])
        c.send("Subject: cut\r\n\r\n" + "x" * 70 + "\r\n")
        c.close()
        self.assertTrue(gw.wait_for_log("lost connection after DATA from [127.0.0.1]"), gw.log_tail())
        self.assertNothingSpooled(gw)

    def test_restart_recovers_the_spool(self):
        gw = Gateway(self).start()
        c = self.session(gw)
        ids = [self.assertQueued(self.send_message(c, message(subject="keep%d" % i))) for i in range(2)]
        c.cmd("QUIT")
        gw.stop()
        # A partial file of a message that never got its 250, and a damaged queue file.
        with open(os.path.join(gw.incoming_dir, "00000000000000AA"), "wb") as f:
            f.write(b"sealgate-spool 1\nid 00000000000000AA\n")
        with open(os.path.join(gw.queue_dir, "00000000000000BB"), "wb") as f:
            f.write(b"not a spool file\n")
        gw.start()
        self.assertEqual(gw.incoming(), [])
        self.assertEqual(gw.queued(), sorted(ids))
        self.assertEqual(os.listdir(os.path.join(gw.spool_dir, "corrupt")), ["00000000000000BB"])
        self.assertIn("2 messages waiting for delivery", gw.read_log())
        self.assertIn("00000000000000BB", gw.read_log())
        self.assertIn("damaged spool file moved to corrupt/", gw.read_log())
        for i, qid in enumerate(ids):
            self.assertIn(b"Subject: keep%d" % i, gw.spool_file(qid).content)

    def test_sigterm_stops_cleanly_with_clients_connected(self):
        gw = Gateway(self).start()
        idle = self.session(gw)
        stalled = self.session(gw)
        finishing = self.session(gw)
        for c in (stalled, finishing):
            c.send("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, RCPT))
            self.assertEqual([r.code for r in c.replies(3)], [250, 250, 354])
        # An unfinished message, large enough to be streamed to spool/incoming/ (> 256 KiB).
        stalled.send("Subject: unfinished\r\n\r\n" + ("x" * 70 + "\r\n") * 5000)
        finishing.send("Subject: finished after SIGTERM\r\n\r\n")
        self.assertEqual(idle.cmd("NOOP").text, "250 2.0.0 Ok")  # the gateway is up and serving
        started = time.monotonic()
        gw.signal_stop()
        # A client waiting between commands hears why at once (RFC 5321 3.8).
        data, closed = idle.read_until_closed(3)
        self.assertTrue(closed)
        self.assertTrue(data.startswith(b"421 4.3.2 gw.test Service shutting down"), data)
        # A message being received when the signal came is finished: 250, then 421.
        finishing.send("body\r\n.\r\n")
        qid = self.assertQueued(finishing.reply())
        self.assertTrue(finishing.reply().text.startswith("421 4.3.2 "))
        self.assertTrue(finishing.read_until_closed(3)[1])
        # One that stalls is dropped after the grace period, and nothing of it is kept.
        self.assertTrue(stalled.read_until_closed(10)[1])
        self.assertGreater(time.monotonic() - started, 4)
        gw.wait_stopped()  # exit status 0 within 15 s
        self.assertEqual(gw.queued(), [qid])
        self.assertEqual(gw.incoming(), [])
        log = gw.read_log()
        self.assertIn("signal 15: stopping", log)
        self.assertIn("1 connections dropped at shutdown", log)

    def test_smtp_source_load_is_all_spooled(self):
        gw = Gateway(self).start()
        r = subprocess.run(["smtp-source", "-s", "10", "-m", "300", "-l", "4096", "-f", "sender@example.org",
                            "-t", "rcpt@example.com", "%s:%d" % (HOST, gw.port)],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        queued = gw.queued()
        self.assertEqual(len(queued), 300)
        for qid in queued:
            sf = gw.spool_file(qid)
            self.assertEqual(sf.one("sender"), "sender@example.org")
            self.assertEqual(sf.env["rcpt"], ["rcpt@example.com - -"])
        # Same with -d: many messages over each connection.
        r = subprocess.run(["smtp-source", "-d", "-s", "5", "-m", "100", "-l", "4096", "-f", "sender@example.org",
                            "-t", "rcpt@example.com", "%s:%d" % (HOST, gw.port)],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(gw.queued()), 400)


# ---------------------------------------------------------------------------
class Configuration(unittest.TestCase):
    VALID = ["hostname: gw.test",                                        # 1
             "listeners:",                                               # 2
             "  - name: smarthost",                                      # 3
             "    address: 127.0.0.1",                                   # 4
             "    port: 2525",                                           # 5
             "    tls: starttls",                                        # 6
             "    auth: optional",                                       # 7
             "tls: {certificate: cert.pem, private_key: key.pem}",       # 8
             "relay:",                                                   # 9
             "  networks: [127.0.0.0/8, 10.0.0.0/8]",                    # 10
             "  users_file: users",                                      # 11
             "spool: spool",                                             # 12
             "database: sealgate.db"]                                    # 13

    def run_config(self, replace):
        d = make_tempdir(self)
        lines = list(self.VALID)
        for lineno, text in replace.items():
            lines[lineno - 1] = text
        path = os.path.join(d, "cfg.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = run_sealgate("run", "--config", path, timeout=30)
        return path, r

    def test_unknown_key(self):
        path, r = self.run_config({5: "    prot: 2525"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "%s:5:5: listeners[0].prot: unknown key (valid: name, address, port, tls, auth, "
                         "proxy_protocol, proxy_from, proxy_timeout)\n" % path)

    def test_bad_enum(self):
        path, r = self.run_config({6: "    tls: maybe"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "%s:6:10: listeners[0].tls: unknown value 'maybe' (valid: none, starttls, implicit)\n"
                         % path)

    def test_bad_cidr(self):
        path, r = self.run_config({10: "  networks: [127.0.0.0/8, 10.0.0.1/33]"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "%s:10:27: relay.networks[1]: '10.0.0.1/33' is not a CIDR network: bad prefix length\n"
                         % path)

    def test_all_errors_at_once(self):
        path, r = self.run_config({5: "    prot: 2525", 6: "    tls: maybe",
                                   10: "  networks: [10.0.0.1/33]"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(sorted(r.stderr.splitlines()), sorted([
            "%s:5:5: listeners[0].prot: unknown key (valid: name, address, port, tls, auth, proxy_protocol, "
            "proxy_from, proxy_timeout)" % path,
            "%s:6:10: listeners[0].tls: unknown value 'maybe' (valid: none, starttls, implicit)" % path,
            "%s:10:14: relay.networks[0]: '10.0.0.1/33' is not a CIDR network: bad prefix length" % path]))

    def test_unreadable_file_and_yaml_syntax_error(self):
        d = make_tempdir(self)
        missing = os.path.join(d, "missing.yaml")
        r = run_sealgate("run", "--config", missing)
        self.assertEqual((r.returncode, r.stderr), (1, "%s: cannot read file\n" % missing))
        path, r = self.run_config({10: "  networks: [127.0.0.0/8"})
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"^%s:\d+:\d+: YAML syntax: .+\n$" % re.escape(path))

    def test_relative_config_path_in_messages(self):
        d = make_tempdir(self)
        with open(os.path.join(d, "cfg.yaml"), "w") as f:
            f.write("hostname: gw.test\nlistener: []\n")
        r = subprocess.run([BIN, "run", "--config", "cfg.yaml"], cwd=d, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        # The message names the file as given (relative), and the valid top-level keys.
        self.assertRegex(r.stderr.splitlines()[0],
                         r"^cfg\.yaml:2:1: listener: unknown key; did you mean 'listeners'\? \(valid: hostname, "
                         r"listeners, tls, relay, spool, "
                         r"spool_sync, database, .*limits, timeouts, dns, .*threads, loop, dkim, metrics, log, tlsrpt, audit, records, node\)$")


class CommandLine(unittest.TestCase):
    def test_unknown_command_prints_usage_and_exits_2(self):
        r = run_sealgate("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assertTrue(r.stderr.startswith("sealgate: unknown command frobnicate\nusage: sealgate COMMAND"), r.stderr)
        for args, problem in ((["run", "--bogus"], "unknown option --bogus"),
                              (["run"], "--config FILE is required"),
                              ([], "no command given")):
            with self.subTest(args=args):
                r = run_sealgate(*args)
                self.assertEqual(r.returncode, 2)
                self.assertTrue(r.stderr.startswith("sealgate: %s\nusage: sealgate" % problem), r.stderr)

    def test_version(self):
        r = run_sealgate("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^sealgate \d+\.\d+\.\d+\S*\n$")
        self.assertEqual(r.stderr, "")

    def test_passwd_writes_private_scrypt_hash(self):
        gw = Gateway(self)  # not started: passwd works on the configuration alone
        r = run_sealgate("passwd", "--config", gw.config, "alice", stdin="s3cret pass\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(gw.users_file).st_mode), 0o600)
        with open(gw.users_file) as f:
            first = f.read()
        self.assertEqual(len(first.splitlines()), 1)
        self.assertTrue(first.startswith("alice:$scrypt$"), first)
        self.assertNotIn("s3cret", first)
        # A second user is added; a new password for alice replaces her line (new salt).
        self.assertEqual(run_sealgate("passwd", "--config", gw.config, "bob", stdin="other\n").returncode, 0)
        self.assertEqual(run_sealgate("passwd", "--config", gw.config, "alice", stdin="new pass\n").returncode, 0)
        with open(gw.users_file) as f:
            lines = f.read().splitlines()
        self.assertEqual(sorted(l.split(":")[0] for l in lines), ["alice", "bob"])
        self.assertNotIn(first.strip(), lines)
        self.assertEqual(stat.S_IMODE(os.stat(gw.users_file).st_mode), 0o600)
        r = run_sealgate("passwd", "--config", gw.config, "bad:name", stdin="x\n")
        self.assertEqual((r.returncode, r.stderr),
                         (1, "sealgate: invalid user name (no ':' or control characters, 1-256 octets)\n"))
        r = run_sealgate("passwd", "--config", gw.config, "carol", stdin="\n")
        self.assertEqual((r.returncode, r.stderr), (1, "sealgate: empty password refused\n"))
        r = run_sealgate("passwd", "--config", gw.config)
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith("sealgate: passwd takes one USER\nusage:"), r.stderr)


if __name__ == "__main__":
    unittest.main()
