"""Behind a load balancer (issue 18): HAProxy 2.6 in front of one gateway
(send-proxy-v2, TCP) and in front of the portal (http mode, TLS at both ends,
option forwardfor). On 127.0.18.0/24: HAProxy at .20, the gateway and the
portal at .1, two clients at .66 (in relay.networks) and .67 (not). The
gateway must authorise, stamp and record the client HAProxy names, never
HAProxy itself; the portal's rate limit must count the client X-Forwarded-For
names. Every process is started here and stopped at the end."""
import http.client
import os
import re
import socket
import sqlite3
import ssl
import struct
import subprocess
import time
import unittest

from harness import BIN, Client, Gateway, free_port, message, stop_process
from haproxy_peer import Haproxy

PROXY = "127.0.18.20"
SERVER = "127.0.18.1"
CLIENT_IN, CLIENT_OUT = "127.0.18.66", "127.0.18.67"  # inside relay.networks / outside
RCPT = "someone@example.com"
PROXY_EXTRA = "proxy_protocol: true, proxy_from: [%s/32], proxy_timeout: 2s" % PROXY
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(source, destination, source_port, destination_port):
    """A PROXY v2 header for a TCP4 client, as send-proxy-v2 writes it."""
    block = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack(">HH", source_port, destination_port)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack(">H", len(block)) + block


class SmtpBehindHaproxy(unittest.TestCase):
    def setUp(self):
        self.gw = Gateway(self, networks=(CLIENT_IN + "/32",), listeners=[
            {"name": "mx", "tls": "none", "auth": "none", "address": SERVER, "extra": PROXY_EXTRA},
            {"name": "smtps", "tls": "implicit", "auth": "none", "address": SERVER, "extra": PROXY_EXTRA}])
        self.gw.start()
        self.smtp_port, self.smtps_port = free_port(PROXY), free_port(PROXY)
        # HAProxy's connections to the gateway leave from PROXY (source), the
        # one address in proxy_from. The mx backend is health-checked with a
        # PROXY header of its own (check-send-proxy: the LOCAL command).
        self.haproxy = Haproxy(self, """\
frontend smtp
    bind %(proxy)s:%(smtp)d
    default_backend gateway_mx
frontend smtps
    bind %(proxy)s:%(smtps)d
    default_backend gateway_smtps
backend gateway_mx
    server a %(server)s:%(mx)d send-proxy-v2 source %(proxy)s check check-send-proxy inter 1s
backend gateway_smtps
    server a %(server)s:%(smtps_gw)d send-proxy-v2 source %(proxy)s
""" % {"proxy": PROXY, "server": SERVER, "smtp": self.smtp_port, "smtps": self.smtps_port,
       "mx": self.gw.port_of("mx"), "smtps_gw": self.gw.port_of("smtps")}, [(PROXY, self.smtp_port), (PROXY, self.smtps_port)])

    def record_client(self, queue_id, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            db = sqlite3.connect("file:%s?mode=ro" % self.gw.database, uri=True, timeout=5)
            try:
                row = db.execute("SELECT client_address FROM messages WHERE queue_id=?", (queue_id,)).fetchone()
            except sqlite3.OperationalError:
                row = None
            finally:
                db.close()
            if row is not None or time.monotonic() > deadline:
                return row and row[0]
            time.sleep(0.05)

    def assertClosedWithoutBanner(self, c, timeout=10):
        data, closed = c.read_until_closed(timeout)
        self.assertTrue(closed, "the gateway kept the connection open")
        self.assertEqual(data, b"", "nothing may be said before a valid PROXY header")

    def test_relay_decision_received_header_and_record_use_the_real_client(self):
        # .66 is in relay.networks and HAProxy (.20) is not: relaying works
        # only if the gateway judged the client HAProxy named.
        with Client(self.smtp_port, host=PROXY, source=CLIENT_IN) as c:
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.ehlo().code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<app@example.org>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "250 2.1.5 Ok")
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(message(subject="through haproxy") + ".\r\n")
            reply = c.reply()
            self.assertEqual(reply.code, 250, reply.text)
            queue_id = re.search(r"queued as ([0-9A-F]{16})", reply.text).group(1)
        self.assertIn("(unknown [%s])" % CLIENT_IN, self.gw.spool_file(queue_id).received_header())
        self.assertEqual(self.record_client(queue_id), CLIENT_IN)
        self.assertTrue(self.gw.wait_for_log("connect from [%s] via [%s] listener=mx" % (CLIENT_IN, PROXY)),
                        self.gw.log_tail())
        # .67 through the same HAProxy: refused, because of who it is.
        with Client(self.smtp_port, host=PROXY, source=CLIENT_OUT) as c:
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.ehlo().code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<app@example.org>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "554 5.7.1 <%s>: Relay access denied" % RCPT)

    def test_implicit_tls_works_behind_the_proxy(self):
        # The header precedes the ClientHello; the session's handshake reads
        # what follows it.
        with Client(self.smtps_port, host=PROXY, source=CLIENT_IN, implicit_tls=True, tls_cafile=self.gw.cert) as c:
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.ehlo().code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<app@example.org>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "250 2.1.5 Ok")
        self.assertTrue(self.gw.wait_for_log("connect from [%s] via [%s] listener=smtps" % (CLIENT_IN, PROXY)),
                        self.gw.log_tail())

    def test_health_checks_are_the_proxys_own_connections(self):
        # LOCAL: the socket's endpoints, HAProxy itself, and no "via".
        self.assertTrue(self.gw.wait_for_log("connect from [%s] listener=mx" % PROXY, timeout=15), self.gw.log_tail())

    def test_a_peer_outside_proxy_from_gets_no_banner(self):
        # .66 may relay, but not by talking to the gateway past the proxy: it
        # could write a header naming anyone.
        with Client(self.gw.port_of("mx"), host=SERVER, source=CLIENT_IN) as c:
            c.send(v2_header(CLIENT_IN, SERVER, 40000, 25))
            self.assertClosedWithoutBanner(c)
        self.assertTrue(self.gw.wait_for_log("[%s]: not in proxy_from of mx (a PROXY protocol listener); closed without "
                                             "a banner" % CLIENT_IN), self.gw.log_tail())
        self.assertNotIn("connect from [%s]" % CLIENT_IN, self.gw.read_log())

    def test_garbage_v1_and_silence_are_closed_without_banner(self):
        # From the proxy's own address, straight to the gateway.
        with Client(self.gw.port_of("mx"), host=SERVER, source=PROXY) as c:
            c.send(b"EHLO client.test\r\n\r\n\r\n")
            self.assertClosedWithoutBanner(c)
        self.assertTrue(self.gw.wait_for_log("[%s]: PROXY header refused on mx: no PROXY protocol version 2 signature; "
                                             "closed without a banner" % PROXY), self.gw.log_tail())
        # The rate-limited line: ten seconds must pass before the next one is
        # logged, so the other refusals are checked by their effect only.
        with Client(self.gw.port_of("mx"), host=SERVER, source=PROXY) as c:
            c.send(b"PROXY TCP4 %s %s 40000 25\r\n" % (CLIENT_IN.encode(), SERVER.encode()))
            self.assertClosedWithoutBanner(c)
        with Client(self.gw.port_of("mx"), host=SERVER, source=PROXY) as c:
            started = time.monotonic()
            self.assertClosedWithoutBanner(c)
            self.assertGreaterEqual(time.monotonic() - started, 1.5, "proxy_timeout is 2 s")
        with Client(self.gw.port_of("mx"), host=SERVER, source=PROXY) as c:
            c.send(v2_header(CLIENT_IN, SERVER, 40000, 25)[:20])  # cut inside the address block
            self.assertClosedWithoutBanner(c)

    def test_the_header_and_the_first_command_in_one_segment(self):
        # Exactly the header is read: EHLO right behind it stays the session's.
        with Client(self.gw.port_of("mx"), host=SERVER, source=PROXY) as c:
            c.send(v2_header(CLIENT_OUT, SERVER, 40000, 25) + b"EHLO client.test\r\n")
            self.assertEqual(c.greeting().code, 220)
            self.assertEqual(c.reply().code, 250)
            self.assertEqual(c.cmd("MAIL FROM:<app@example.org>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT).text, "554 5.7.1 <%s>: Relay access denied" % RCPT)
        self.assertIn("connect from [%s] via [%s] listener=mx" % (CLIENT_OUT, PROXY), self.gw.read_log())


class PortalBehindHaproxy(unittest.TestCase):
    """HAProxy terminates the visitors' TLS, adds X-Forwarded-For and speaks TLS
    again to the portal (ssl verify required). The portal trusts .20 only."""

    PER_MINUTE = 3

    def setUp(self):
        gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}])
        self.portal_port, self.front_port = free_port(SERVER), free_port(PROXY)
        gw.add_config("portal:\n  base_url: https://%s:%d\n  listen: %s\n  port: %d\n  requests_per_minute: %d\n"
                      "  trusted_proxies: [%s/32]\n" % (PROXY, self.front_port, SERVER, self.portal_port,
                                                      self.PER_MINUTE, PROXY))
        self.cafile = gw.cert
        self.log_path = os.path.join(gw.dir, "portal.log")
        self.log = open(self.log_path, "wb")
        self.portal = subprocess.Popen([BIN, "portal", "run", "--config", gw.config], stdout=self.log,
                                       stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_portal)
        deadline = time.monotonic() + 15
        while "portal: listening on" not in self.portal_log():
            if self.portal.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("portal did not start:\n" + self.portal_log())
            time.sleep(0.05)
        # HAProxy's certificate for the visitors: the gateway's, key appended.
        pem = os.path.join(gw.dir, "haproxy.pem")
        with open(pem, "w") as out:
            for part in (gw.cert, gw.key):
                with open(part) as f:
                    out.write(f.read())
        self.haproxy = Haproxy(self, """\
frontend portal
    mode http
    timeout client 30s
    bind %(proxy)s:%(front)d ssl crt %(pem)s
    option forwardfor
    default_backend portals
backend portals
    mode http
    timeout server 30s
    server p %(server)s:%(portal)d ssl verify required ca-file %(ca)s source %(proxy)s
""" % {"proxy": PROXY, "front": self.front_port, "pem": pem, "server": SERVER, "portal": self.portal_port,
       "ca": self.cafile}, [(PROXY, self.front_port)])

    def stop_portal(self):
        stop_process(self.portal)
        self.log.close()

    def portal_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def get(self, host, port, source, headers=None):
        """One GET of a link page from source; the status. A connection each,
        as separate visitors would."""
        ctx = ssl.create_default_context(cafile=self.cafile)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10, source_address=(source, 0))
        try:
            conn.request("GET", "/m/" + "A" * 43, headers=headers or {})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def wait_for_a_fresh_minute(self):
        # The limiter counts per wall-clock minute: a test that straddles one
        # would see its count reset.
        if time.time() % 60 > 45:
            time.sleep(60 - time.time() % 60 + 0.5)

    def test_the_rate_limit_counts_the_forwarded_client(self):
        self.wait_for_a_fresh_minute()
        front = (PROXY, self.front_port)
        statuses = [self.get(*front, CLIENT_IN) for _ in range(self.PER_MINUTE)]
        self.assertNotIn(429, statuses)
        self.assertEqual(self.get(*front, CLIENT_IN), 429)
        # What a visitor writes itself is left of what HAProxy appends: not believed.
        self.assertEqual(self.get(*front, CLIENT_IN, {"X-Forwarded-For": CLIENT_OUT}), 429)
        # Another visitor through the same HAProxy has a minute of its own:
        # keyed by HAProxy's address, it would be refused here.
        self.assertNotEqual(self.get(*front, CLIENT_OUT), 429)

    def test_the_header_from_an_untrusted_peer_is_ignored(self):
        # Straight to the portal from .67, naming a fresh client each time:
        # the minute is still .67's own.
        self.wait_for_a_fresh_minute()
        statuses = [self.get(SERVER, self.portal_port, CLIENT_OUT, {"X-Forwarded-For": "198.51.100.%d" % i})
                    for i in range(self.PER_MINUTE + 1)]
        self.assertEqual(statuses[-1], 429, statuses)


if __name__ == "__main__":
    unittest.main()
