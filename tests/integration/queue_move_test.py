"""A node that does not come back (issue 18): gateway A accepts mail for a
destination that is down, is killed with SIGKILL, its spool is exported with
`sealgate queue export` and imported into a running gateway B with `queue
import`; B delivers each waiting recipient exactly once (counted by a sink
per recipient), a recipient A had delivered is not sent again, a second
import is refused per message, an export while A runs is refused, and A
started again on its old spool delivers nothing. Peers: unbound for the MX
records, two counting SMTP sinks on 127.0.7.0/24, all started here."""
import json
import os
import shutil
import socketserver
import sqlite3
import subprocess
import threading
import time
import unittest

import probe_peers as peers
from harness import BIN, Gateway

A_DONE, A_WAIT = "127.0.7.2", "127.0.7.3"  # the MX that takes mail from the start, the one that is down at first

# The sinks speak no STARTTLS: plain is what every recipient of this test gets.
POLICY = """\
rules:
  - name: test-sinks
    methods: [plain]
"""


class CountingSink:
    """A plain SMTP server that counts, per recipient, the messages whose DATA
    it accepted (250 after the final dot)."""

    def __init__(self, address, port):
        self.counts = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                def reply(text):
                    self.wfile.write((text + "\r\n").encode())

                reply("220 sink.mv.test ESMTP")
                rcpts = []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    verb = line.decode("ascii", "replace").strip()
                    upper = verb.upper()
                    if upper.startswith(("EHLO", "HELO")):
                        reply("250 sink.mv.test")
                    elif upper.startswith("MAIL FROM:"):
                        rcpts = []
                        reply("250 2.1.0 ok")
                    elif upper.startswith("RCPT TO:"):
                        rcpts.append(verb[8:].strip().strip("<>").split(">")[0].lower())
                        reply("250 2.1.5 ok")
                    elif upper == "DATA":
                        reply("354 go ahead")
                        while self.rfile.readline() not in (b".\r\n", b""):
                            pass
                        with outer.lock:
                            for r in rcpts:
                                outer.counts[r] = outer.counts.get(r, 0) + 1
                        reply("250 2.0.0 ok")
                    elif upper == "QUIT":
                        reply("221 bye")
                        return
                    else:
                        reply("250 ok")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer((address, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return dict(self.counts)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def sealgate(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=120)


class QueueMove(peers.PeersTestCase, unittest.TestCase):
    @classmethod
    def start_peers(cls):
        d = cls.dir = peers.tempdir("sealgate-move-")
        if os.environ.get("SEALGATE_KEEP_TMP") != "1":
            cls.cleanups.append(lambda: shutil.rmtree(d, True))
        cls.port = peers.free_port_on([A_DONE, A_WAIT])
        data = ["mv.test. 600 IN SOA ns.mv.test. hostmaster.mv.test. 1 3600 600 86400 60",
                "mx-done.mv.test. 300 IN A " + A_DONE, "mx-wait.mv.test. 300 IN A " + A_WAIT,
                "done.mv.test. 300 IN MX 10 mx-done.mv.test.", "wait.mv.test. 300 IN MX 10 mx-wait.mv.test."]
        os.makedirs(os.path.join(d, "dns"))
        cls.dns = peers.Dns(os.path.join(d, "dns"), {}, {}, "mv.test", data, cls.cleanups)
        cls.done_sink = CountingSink(A_DONE, cls.port)
        cls.cleanups.append(cls.done_sink.stop)

    def gateway(self):
        gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}],
                     queue="{retry_min: 1s, retry_max: 2s}", expect_clean_exit=False)
        with open(os.path.join(gw.dir, "policy.yaml"), "w") as f:
            f.write(POLICY)
        gw.add_config("policy_file: policy.yaml\n"
                      'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
                      "delivery: {port: %d, probe_cache_ttl: 1s, timeouts: {connect: 2s}}\n"
                      % (self.dns.port, self.port))
        return gw.start()

    def send(self, gw, rcpts, subject):
        argv = ["swaks", "--server", "127.0.0.1:%d" % gw.port, "--from", "app@example.org", "--to", ",".join(rcpts),
                "--header", "Subject: " + subject]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for line in r.stdout.splitlines():
            if "Ok: queued as " in line:
                return line.split("Ok: queued as ")[1].strip()
        self.fail("no queue id in " + r.stdout)

    def wait_until(self, what, predicate, timeout=60, gw=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        self.fail("timed out waiting for " + what + ("\n" + gw.log_tail() if gw else ""))

    def queue_list(self, gw):
        r = sealgate("queue", "list", "--config", gw.config, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_a_dead_nodes_spool_is_delivered_once_by_another(self):
        a = self.gateway()
        messages = {
            self.send(a, ["a1@done.mv.test", "a1@wait.mv.test"], "one"): 1,
            self.send(a, ["b1@wait.mv.test", "b2@wait.mv.test"], "two"): 2,
            self.send(a, ["c1@wait.mv.test"], "three"): 1,
            self.send(a, ["d1@wait.mv.test", "d2@wait.mv.test", "d3@wait.mv.test"], "four"): 3,
        }
        waiting = ["a1@wait.mv.test", "b1@wait.mv.test", "b2@wait.mv.test", "c1@wait.mv.test", "d1@wait.mv.test",
                   "d2@wait.mv.test", "d3@wait.mv.test"]
        # A delivers what it can, and tries the rest: every message waits with
        # its recipients for wait.mv.test pending after an attempt.
        self.wait_until("a1@done delivered by A", lambda: self.done_sink.count().get("a1@done.mv.test") == 1, gw=a)

        def all_tried():
            q = self.queue_list(a)
            return (len(q["messages"]) == 4 and q["total"]["recipients"] == 7 and
                    all(r["attempts"] >= 1 for m in q["messages"] for r in m["recipients"]))
        self.wait_until("every waiting recipient tried by A", all_tried, gw=a)
        export = os.path.join(self.dir, "a.export")

        # Refused while A runs: nothing written, nothing moved.
        r = sealgate("queue", "export", "--spool", a.spool_dir, "--out", export)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("a gateway is running on " + a.spool_dir, r.stderr)
        self.assertFalse(os.path.exists(export))
        self.assertEqual(len(a.queued()), 4)

        a.kill9()
        b = self.gateway()
        wait_sink = CountingSink(A_WAIT, self.port)
        self.addCleanup(wait_sink.stop)

        r = sealgate("queue", "export", "--spool", a.spool_dir, "--out", export, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        summary = json.loads(r.stdout)
        with open(os.path.join(a.spool_dir, "node-id")) as f:
            a_node = f.read().strip()
        self.assertEqual(summary["node"], a_node)
        self.assertEqual(sorted(summary["ids"]), sorted(messages))
        self.assertEqual(a.queued(), [])
        self.assertEqual(sorted(f for f in os.listdir(os.path.join(a.spool_dir, "exported")) if "." not in f),
                         sorted(messages))
        with open(export, "rb") as f:
            self.assertTrue(f.readline().startswith(b"sealgate-export 1 " + a_node.encode()))

        r = sealgate("queue", "import", "--config", b.config, export, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        imported = json.loads(r.stdout)
        self.assertEqual(sorted(imported["imported"]), sorted(messages))
        self.assertEqual((imported["refused"], imported["gateway_running"], imported["from"]), ([], True, a_node))

        # B delivers each waiting recipient once, and only those.
        self.wait_until("B's deliveries", lambda: all(wait_sink.count().get(r) for r in waiting), gw=b)
        self.wait_until("B's queue empty", lambda: b.queued() == [], gw=b)
        time.sleep(2)  # room for a duplicate to show
        self.assertEqual(wait_sink.count(), {r: 1 for r in waiting})
        self.assertEqual(self.done_sink.count(), {"a1@done.mv.test": 1})

        # The record of B has the messages and who moved them.
        db = sqlite3.connect(b.database)
        try:
            rows = db.execute("SELECT queue_id FROM messages").fetchall()
            self.assertEqual(sorted(q for (q,) in rows), sorted(messages))
            moved = db.execute("SELECT queue_id, entry FROM audit_events WHERE kind = 'moved'").fetchall()
        finally:
            db.close()
        self.assertEqual(sorted(q for q, _ in moved), sorted(messages))
        self.assertIn('"from":"%s"' % a_node, moved[0][1])

        # A second import of the same file: every message refused.
        r = sealgate("queue", "import", "--config", b.config, export)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for queue_id in messages:
            self.assertIn(queue_id + ": refused: already imported", r.stdout)
        self.assertIn("imported 0 messages", r.stdout)

        # A damaged copy is refused whole.
        with open(export, "rb") as f:
            data = bytearray(f.read())
        data[data.index(b"Subject: three") + 9] ^= 1
        damaged = os.path.join(self.dir, "damaged.export")
        with open(damaged, "wb") as f:
            f.write(data)
        r = sealgate("queue", "import", "--config", b.config, damaged)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("damaged", r.stderr)

        # A comes back on its old spool: nothing of it is left to deliver.
        before = len(a.read_log())
        a.start()
        self.assertIn("0 messages waiting for delivery", a.read_log()[before:])
        time.sleep(3)
        self.assertEqual(wait_sink.count(), {r: 1 for r in waiting})
        self.assertEqual(self.done_sink.count(), {"a1@done.mv.test": 1})
        a.stop()
        b.stop()


if __name__ == "__main__":
    unittest.main()
