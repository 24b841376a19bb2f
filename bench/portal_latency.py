#!/usr/bin/env python3
"""bench/portal_latency.py: the portal's notification latency, and the portal
set up for a load test (for bench/portal_rate.sh; not a test).

Starts, all on loopback: unbound with local data (patient.bench.test MX ->
127.0.8.1), a small SMTP sink in this process on 127.0.8.1 that timestamps
each message's final dot (smtp-sink's dump files carry the kernel's coarse
file times, 4 ms steps here: too coarse for this), and the gateway (the
integration tests' harness) with a portal section and a policy that picks
the portal for messages marked X-Sensitivity: phi.

1. Latency: sends WARMUP + K messages of SIZE bytes, each to its own
   recipient, CONCURRENCY at a time (each sender waits for its notification
   before the next), and measures from the gateway's 250 to the final dot of
   the notification at the sink. Prints one line:
     latency n=K p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. mean_ms=..
2. With --serve STATE: starts `sealgate portal run` on the gateway's
   configuration, opens the last deposit's link as a person would (GET, the
   "Send me a code" form, the code read from the code mail at the sink, the
   verify form), saves the code page and the message page as static files,
   writes STATE (shell assignments: the portal's port and pid, the link's
   path, the session cookie, the certificate), then waits until SIGTERM or
   SIGINT and stops everything it started.

Every process it starts is also listed in DIR/pids as it starts, so that the
calling script can stop what is left if this driver dies. Exit 1 when
something broke (a notification that never came, the portal refusing the
code flow), 0 otherwise; timings never fail it.
"""
import argparse
import http.client
import os
import re
import shlex
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import probe_peers  # noqa: E402

SINK_ADDR = "127.0.8.1"
DOMAIN = "bench.test"
RCPT_DOMAIN = "patient." + DOMAIN
MARKER = "BENCH-PORTAL-MARKER"

POLICY = """\
classes:
  - name: phi
    when: {header: {name: X-Sensitivity, equals: phi}}
rules:
  - name: sensitive
    match: {classes: phi}
    methods: [portal]
  - name: default
    methods: [tls, plain]
    tls: {min_version: "1.2", verify: none}
"""


def say(text):
    print(text, flush=True)


class Broken(Exception):
    """Something that makes the run's figures meaningless."""


# ------------------------------------------------------------------ sink ---
class Sink(socketserver.ThreadingTCPServer):
    """A plain SMTP server that keeps every message in memory with the time
    its final dot arrived (time.time(), the clock the sender uses too)."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address):
        super().__init__(address, SinkHandler)
        self.cond = threading.Condition()
        self.mail = {}  # recipient -> [(time, data)]

    def add(self, when, rcpts, data):
        with self.cond:
            for r in rcpts:
                self.mail.setdefault(r.lower(), []).append((when, data))
            self.cond.notify_all()

    def wait_for(self, rcpt, predicate, timeout):
        """The first (time, data) for rcpt that predicate accepts, or None after timeout."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for item in self.mail.get(rcpt.lower(), []):
                    if predicate(item[1]):
                        return item
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(left)


class SinkHandler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        # Each reply is its own write: without this, a reply that follows
        # another unacknowledged one waits for the client's delayed ACK
        # (Nagle), 40 ms here, which would be the sink's delay, not the gateway's.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.reply("220 mx.%s ESMTP bench sink" % RCPT_DOMAIN)
        rcpts = []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("ascii", "replace").strip()
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-mx.%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600" % RCPT_DOMAIN
                           if verb == "EHLO" else "250 mx.%s" % RCPT_DOMAIN)
            elif verb == "MAIL":
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.search(r"<([^>]*)>", cmd)
                rcpts.append(m.group(1) if m else "")
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    part = self.rfile.readline(1 << 20)
                    if not part:
                        return
                    if part in (b".\r\n", b".\n"):
                        break
                    chunks.append(part[1:] if part.startswith(b"..") else part)
                self.server.add(time.time(), rcpts, b"".join(chunks))
                rcpts = []
                self.reply("250 2.0.0 Ok: queued")
            elif verb == "RSET":
                rcpts = []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


# -------------------------------------------------------------- messages ---
def message(rcpt, size, n):
    head = ("From: \"Bench Sender\" <sender@ours.%s>\r\nTo: <%s>\r\nSubject: Bench results %d\r\n"
            "Message-ID: <bench-%d-%s@ours.%s>\r\nDate: %s\r\nX-Sensitivity: phi\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s\r\n"
            % (DOMAIN, rcpt, n, n, str(time.time()).replace(".", ""), DOMAIN,
               time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), MARKER))
    words = "patient appointment results laboratory invoice reminder clinic report".split()
    body, line, i = [], "", 0
    while len(head) + sum(map(len, body)) < size:
        w = words[i % len(words)]
        i += 7
        if len(line) + len(w) > 72:
            body.append(line + "\r\n")
            line = ""
        line += w + " "
    return (head + "".join(body))[:size - 2].rstrip("\r") + "\r\n"


def is_notification(data):
    return b"/m/" in data and b"code is" not in data


def is_code_mail(data):
    return b"Your code is" in data


def percentile(values, p):
    v = sorted(values)
    if not v:
        return 0.0
    return v[min(len(v) - 1, int(p / 100.0 * (len(v) - 1) + 0.5))]


# ---------------------------------------------------------------- driver ---
class Driver:
    def __init__(self, args):
        self.args = args
        self.dir = args.dir
        self.cleanups = []
        self.pids_file = os.path.join(self.dir, "pids")
        self.sent = 0

    def note_pid(self, pid):
        with open(self.pids_file, "a") as f:
            f.write("%d\n" % pid)

    def stop_all(self):
        while self.cleanups:
            fn = self.cleanups.pop()
            try:
                fn()
            except Exception as e:  # keep stopping the others
                sys.stderr.write("portal_latency: while stopping: %s\n" % e)

    # -- peers ------------------------------------------------------------
    def start_sink(self):
        port = harness.free_port(SINK_ADDR)
        self.sink = Sink((SINK_ADDR, port))
        t = threading.Thread(target=self.sink.serve_forever, daemon=True)
        t.start()
        self.cleanups.append(self.sink.server_close)
        self.cleanups.append(self.sink.shutdown)
        return port

    def start_dns(self):
        d = os.path.join(self.dir, "dns")
        os.makedirs(d)
        self.dns_port = probe_peers.free_udp_tcp_port("127.0.0.1")
        lines = ["server:", "  interface: 127.0.0.1", "  port: %d" % self.dns_port, "  do-daemonize: no",
                 '  username: ""', '  chroot: ""', '  directory: "%s"' % d, '  pidfile: "%s/unbound.pid"' % d,
                 "  use-syslog: no", '  logfile: ""', "  do-ip6: no", "  verbosity: 1",
                 # test. is answered by unbound itself (RFC 6761) unless told otherwise.
                 '  local-zone: "test." nodefault', '  domain-insecure: "test."',
                 '  local-zone: "%s." static' % DOMAIN,
                 "  local-data: '%s. 3600 IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 3600'" % ((DOMAIN,) * 3),
                 "  local-data: '%s. 3600 IN MX 10 mx.%s.'" % (RCPT_DOMAIN, RCPT_DOMAIN),
                 "  local-data: 'mx.%s. 3600 IN A %s'" % (RCPT_DOMAIN, SINK_ADDR),
                 "remote-control:", "  control-enable: no"]
        with open(os.path.join(d, "unbound.conf"), "w") as f:
            f.write("\n".join(lines) + "\n")
        self.unbound = probe_peers.Process(["unbound", "-d", "-c", "unbound.conf"], os.path.join(d, "unbound.log"),
                                           cwd=d)
        self.note_pid(self.unbound.proc.pid)
        self.cleanups.append(self.unbound.stop)

    def start_gateway(self, sink_port):
        driver = self

        class Scope:  # what the harness registers its cleanups with
            @staticmethod
            def addCleanup(fn, *a):
                driver.cleanups.append(lambda: fn(*a))

            @staticmethod
            def id():
                return "portal_latency"

        tempfile.tempdir = self.dir  # the gateway's directory lives in ours
        self.gw = harness.Gateway(Scope, listeners=[{"name": "bench", "tls": "none", "auth": "none"}],
                                  hostname="gw." + DOMAIN, queue="{retry_min: 1s, retry_max: 2s}",
                                  expect_clean_exit=False)
        with open(os.path.join(self.gw.dir, "policy.yaml"), "w") as f:
            f.write(POLICY)
        self.portal_port = harness.free_port("127.0.0.1")
        self.gw.add_config(
            "policy_file: policy.yaml\n"
            'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
            "delivery: {port: %d, timeouts: {connect: 5s}}\n"
            "crypto: {sources: {keyring: false, smime_directory: false, dns_openpgpkey: false, dns_smimea: false,"
            " wkd: false}}\n"
            "portal:\n"
            "  base_url: https://127.0.0.1:%d\n"
            "  port: %d\n"
            "  from: secure@ours.%s\n"
            "  organisation: Bench Health\n"
            # The load test sends every request from 127.0.0.1: the per-address
            # limit (at most 100000) must not answer 429 during it.
            "  requests_per_minute: %d\n"
            "  threads: %d\n" % (self.dns_port, sink_port, self.portal_port, self.portal_port, DOMAIN,
                                 self.args.requests_per_minute, self.args.portal_threads))
        # DNS first: the gateway's first lookups must find unbound answering.
        deadline = time.time() + 20
        while True:
            r = subprocess.run([harness.BIN, "dns", "lookup", "--config", self.gw.config, "MX", RCPT_DOMAIN],
                               capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and ("mx." + RCPT_DOMAIN) in r.stdout:
                break
            if time.time() > deadline:
                raise Broken("unbound does not answer: %s %s" % (r.stdout, r.stderr))
            time.sleep(0.2)
        self.gw.start()
        self.note_pid(self.gw.proc.pid)

    # -- latency ----------------------------------------------------------
    def send_one(self, smtp, n):
        rcpt = "p%d@%s" % (n, RCPT_DOMAIN)
        data = message(rcpt, self.args.size, n)
        smtp.sendmail("sender@ours." + DOMAIN, [rcpt], data.encode())
        accepted = time.time()  # just after the 250 to the final dot
        got = self.sink.wait_for(rcpt, is_notification, self.args.timeout)
        if got is None:
            raise Broken("no notification for %s within %d s; gateway log: %s"
                         % (rcpt, self.args.timeout, self.gw.log_tail(8)))
        return rcpt, got[0] - accepted, got[1]

    def sender(self, numbers, out, errors):
        import smtplib
        try:
            smtp = smtplib.SMTP("127.0.0.1", self.gw.port, timeout=60)
            smtp.ehlo("client." + DOMAIN)
            for n in numbers:
                out.append(self.send_one(smtp, n))
            smtp.quit()
        except Exception as e:  # reported by the caller
            errors.append(e)

    def latency(self):
        a = self.args
        # Warm-up: the first delivery looks up the MX, probes it, opens the store's pages.
        warm, errors = [], []
        self.sender(range(1, a.warmup + 1), warm, errors)
        if errors:
            raise Broken("warm-up: %s" % errors[0])
        results = []
        threads = []
        first = a.warmup + 1
        for c in range(a.concurrency):
            mine = list(range(first + c, first + a.messages, a.concurrency))
            t = threading.Thread(target=self.sender, args=(mine, results, errors))
            t.start()
            threads.append(t)
        t0 = time.time()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        if errors:
            raise Broken("latency run: %s" % errors[0])
        ms = [r[1] * 1000 for r in results]
        say("latency n=%d size=%d concurrency=%d p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f min_ms=%.1f "
            "mean_ms=%.1f seconds=%.1f" % (len(ms), a.size, a.concurrency, percentile(ms, 50), percentile(ms, 90),
                                           percentile(ms, 99), max(ms), min(ms), sum(ms) / len(ms), elapsed))
        log = self.gw.read_log()
        deposited = log.count("deposited in the portal")
        if deposited < a.warmup + a.messages:
            raise Broken("the gateway logged %d deposits for %d messages" % (deposited, a.warmup + a.messages))
        return results[-1]

    # -- the portal -------------------------------------------------------
    def start_portal(self):
        self.portal_log = os.path.join(self.dir, "portal.log")
        self.portal = probe_peers.Process([harness.BIN, "portal", "run", "--config", self.gw.config],
                                          self.portal_log)
        self.note_pid(self.portal.proc.pid)
        self.cleanups.append(self.portal.stop)
        self.tls = ssl.create_default_context(cafile=self.gw.cert)
        self.tls.check_hostname = False
        deadline = time.time() + 20
        while True:
            try:
                status, _, _ = self.request("GET", "/")
                if status == 200:
                    return
            except OSError:
                pass
            if time.time() > deadline or self.portal.proc.poll() is not None:
                raise Broken("the portal did not answer: " + self.portal.log()[-2000:])
            time.sleep(0.1)

    def request(self, method, path, cookie=None, form=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.portal_port, context=self.tls, timeout=20)
        try:
            headers = {}
            body = None
            if cookie:
                headers["Cookie"] = "__Host-sg=" + cookie
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.getheaders(), r.read()
        finally:
            c.close()

    def open_session(self, rcpt, notification):
        m = re.search(rb"https://[^/\s]+(/m/[A-Za-z0-9_-]{43})", notification)
        if not m:
            raise Broken("no link in the notification to %s" % rcpt)
        path = m.group(1).decode()
        status, headers, code_page = self.request("GET", path)
        if status != 200 or b"Send me a code" not in code_page:
            raise Broken("GET of the link: %d, not the code page" % status)
        cookie = re.search(r"__Host-sg=([A-Za-z0-9_-]+)", dict(headers).get("Set-Cookie", ""))
        csrf = re.search(rb'name="csrf" value="([^"]+)"', code_page)
        if not cookie or not csrf:
            raise Broken("the code page set no cookie or has no form token")
        cookie, csrf = cookie.group(1), csrf.group(1).decode()
        status, _, _ = self.request("POST", path + "/code", cookie, {"csrf": csrf})
        if status != 303:
            raise Broken("POST %s/code: %d" % ("/m/TOKEN", status))
        got = self.sink.wait_for(rcpt, is_code_mail, self.args.timeout)
        if got is None:
            raise Broken("no code mail for %s within %d s" % (rcpt, self.args.timeout))
        code = re.search(rb"Your code is: (\d{6})", got[1]).group(1).decode()
        status, headers, _ = self.request("POST", path + "/verify", cookie, {"csrf": csrf, "code": code})
        if status != 303:
            raise Broken("POST /m/TOKEN/verify: %d" % status)
        # The accepted code gets a new session token (no fixation): the old one reads nothing.
        renewed = re.search(r"__Host-sg=([A-Za-z0-9_-]+)", dict(headers).get("Set-Cookie", ""))
        if not renewed:
            raise Broken("POST /m/TOKEN/verify set no new session cookie")
        cookie = renewed.group(1)
        status, headers, message_page = self.request("GET", path, cookie)
        if status != 200 or MARKER.encode() not in message_page:
            raise Broken("GET with the session: %d, not the message page" % status)
        # A fresh code page (a browser without a cookie), as wrk will get it.
        status, headers, code_page = self.request("GET", path)
        www = os.path.join(self.dir, "www")
        os.makedirs(www, exist_ok=True)
        for name, page in (("code.html", code_page), ("message.html", message_page)):
            with open(os.path.join(www, name), "wb") as f:
                f.write(page)
        # The portal's security headers, for nginx to send the same.
        with open(os.path.join(www, "headers.conf"), "w") as f:
            for name, value in headers:
                if name.lower() in ("strict-transport-security", "content-security-policy", "x-frame-options",
                                    "x-content-type-options", "referrer-policy", "cache-control",
                                    "cross-origin-opener-policy", "cross-origin-resource-policy",
                                    "permissions-policy"):
                    f.write('add_header %s "%s" always;\n' % (name, value.replace('"', "")))
        return path, cookie, len(code_page), len(message_page)

    def serve(self, state, rcpt, notification):
        self.start_portal()
        path, cookie, code_len, message_len = self.open_session(rcpt, notification)
        values = {"portal_port": self.portal_port, "portal_pid": self.portal.proc.pid, "gateway_pid": self.gw.proc.pid,
                  "link_path": path, "cookie": cookie, "cert": self.gw.cert, "key": self.gw.key,
                  "www": os.path.join(self.dir, "www"), "code_bytes": code_len, "message_bytes": message_len,
                  "portal_log": self.portal_log, "gateway_log": self.gw.log_path}
        with open(state + ".tmp", "w") as f:
            for k, v in values.items():
                f.write("%s=%s\n" % (k, shlex.quote(str(v))))
        os.rename(state + ".tmp", state)
        say("portal ready on https://127.0.0.1:%d (session made through the code flow; pages: %d and %d bytes)"
            % (self.portal_port, code_len, message_len))
        while True:  # until SIGTERM or SIGINT
            time.sleep(1)
            if self.portal.proc.poll() is not None:
                raise Broken("the portal exited (%s): %s" % (self.portal.proc.returncode, self.portal.log()[-1000:]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True, help="the working directory (everything goes here)")
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--timeout", type=int, default=60, help="seconds to wait for one notification")
    p.add_argument("--requests-per-minute", type=int, default=100000)
    p.add_argument("--portal-threads", type=int, default=2)
    p.add_argument("--serve", metavar="STATE", help="then run the portal for a load test (see above)")
    args = p.parse_args()
    if not os.access(harness.BIN, os.X_OK):
        sys.exit("portal_latency: %s is not built (set SEALGATE_BIN)" % harness.BIN)

    def terminate(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminate)
    d = Driver(args)
    status = 0
    try:
        sink_port = d.start_sink()
        d.start_dns()
        d.start_gateway(sink_port)
        say("gateway on 127.0.0.1:%d, sink on %s:%d, unbound on 127.0.0.1:%d"
            % (d.gw.port, SINK_ADDR, sink_port, d.dns_port))
        rcpt, _, notification = d.latency()
        if args.serve:
            d.serve(args.serve, rcpt, notification)
    except KeyboardInterrupt:
        pass
    except Broken as e:
        sys.stderr.write("portal_latency: FAILED: %s\n" % e)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, log in (("gateway", getattr(getattr(d, "gw", None), "log_path", None)),
                          ("portal", getattr(d, "portal_log", None))):
            if log and os.path.exists(log):
                with open(log, errors="replace") as f:
                    bad = [l for l in f if re.search(r": (warning|error): ", l)]
                if bad:
                    sys.stderr.write("portal_latency: the %s logged %d warning/error lines, e.g. %s"
                                     % (name, len(bad), bad[0]))
        d.stop_all()
    sys.exit(status)


if __name__ == "__main__":
    main()
