"""Operations (issue 16): the status listener's /metrics, /healthz and /readyz
on a real gateway. /metrics must parse by Prometheus's text-format rules
(python3-prometheus-client's parser) and its counters must move with what the
gateway does."""
import json
import os
import shutil
import signal
import socket
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from harness import Client, Gateway, dot_stuff, free_port, message


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(text):
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class StatusListener(unittest.TestCase):
    def setUp(self):
        self.gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}],
                          networks=("127.0.0.1/32",))
        self.status_port = free_port("127.0.0.1")
        self.gw.add_config("metrics: {listen: 127.0.0.1, port: %d}\n" % self.status_port)
        self.gw.start()

    def test_health_readiness_and_counters(self):
        self.assertEqual(get(self.status_port, "/healthz")[0], 200)
        status, _, body = get(self.status_port, "/readyz")
        self.assertEqual((status, body), (200, "ready\n"))
        status, ctype, _ = get(self.status_port, "/nowhere")
        self.assertEqual(status, 404)

        with Client(self.gw.port) as c:
            c.greeting()
            c.ehlo()
            self.assertEqual(c.cmd("MAIL FROM:<a@example.org>").code, 250)
            self.assertEqual(c.cmd("RCPT TO:<b@example.com>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            c.send(dot_stuff(message()))
            self.assertEqual(c.reply().code, 250)
        with Client(self.gw.port, source="127.0.0.9") as c:  # not in relay.networks
            c.greeting()
            c.ehlo()
            c.cmd("MAIL FROM:<a@example.org>")
            self.assertEqual(c.cmd("RCPT TO:<b@example.com>").code, 554)

        status, ctype, text = get(self.status_port, "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        s = samples(text)
        self.assertEqual(s[("sealgate_messages_accepted_total", (("listener", "smarthost"),))], 1)
        self.assertEqual(s[("sealgate_messages_refused_total", (("listener", "smarthost"), ("reason", "relay_denied")))],
                         1)
        self.assertIn(("sealgate_recipients_total", (("method", "tls"), ("status", "delivered"))), s)
        self.assertIn(("sealgate_delivery_latency_seconds_count", ()), s)
        # Both sessions are over (the gateway may still be closing the second).
        open_now = lambda: samples(get(self.status_port, "/metrics")[2])[
            ("sealgate_connections_open", (("listener", "smarthost"),))]
        deadline = time.time() + 5
        while open_now() != 0 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(open_now(), 0)
        # The queue is paused (the harness's default): the message waits,
        # queued, and its age is that of the 250 a moment ago. The queue
        # learns of it just after the 250 (the spool's commit callback), so
        # on a busy machine the first scrape may come before it.
        deadline = time.time() + 5
        while time.time() < deadline:
            s = samples(get(self.status_port, "/metrics")[2])
            if s[("sealgate_queue_messages", (("state", "queued"),))] == 1:
                break
            time.sleep(0.05)
        queue = lambda state: s[("sealgate_queue_messages", (("state", state),))]
        self.assertEqual([queue(q) for q in ("queued", "active", "deferred", "held")], [1, 0, 0, 0])
        age = s[("sealgate_queue_oldest_message_age_seconds", (("state", "queued"),))]
        self.assertTrue(0 <= age < 60, age)
        self.assertEqual(s[("sealgate_queue_oldest_message_age_seconds", (("state", "deferred"),))], 0)
        # The group's journal append and fdatasync are in the histogram.
        self.assertGreaterEqual(s[("sealgate_journal_fsync_seconds_count", ())], 1)
        # No label names a domain or an address.
        for (name, labels) in s:
            for _, value in labels:
                self.assertNotIn("@", value)
                self.assertNotIn("example", value)


    def test_the_shipped_alert_rules_name_only_series_the_gateway_exports(self):
        import re
        import yaml
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "conf", "prometheus", "sealgate-alerts.yml")) as f:
            rules = yaml.safe_load(f)["groups"][0]["rules"]
        exported = {family.name for family in text_string_to_metric_families(get(self.status_port, "/metrics")[2])}
        named = set()
        for rule in rules:
            for name in re.findall(r"\bsealgate_[a-z_]+", rule["expr"]):
                # A histogram's series are its family's name with a suffix;
                # the client library names a counter's family without _total.
                named.add(re.sub(r"_(bucket|count|sum|total)$", "", name))
        self.assertGreaterEqual(len(named), 6, named)
        self.assertEqual(named - exported, set())


class JsonLogs(unittest.TestCase):
    def test_every_line_is_a_json_object_with_the_queue_id(self):
        gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}])
        gw.add_config("log: {format: json}\n")
        gw.start()
        with Client(gw.port) as c:
            c.greeting()
            # A hostile HELO: a quote, a backslash, a control character and bytes that are not UTF-8.
            c.send(b'EHLO bad"name\\\x01\xff\xc3\r\n')
            c.reply()
            c.ehlo()
            c.cmd("MAIL FROM:<a@example.org>")
            c.cmd("RCPT TO:<b@example.com>")
            self.assertEqual(c.cmd("DATA").code, 354)
            # The Message-ID goes into the queued line: make it hostile too.
            c.send(dot_stuff(b'From: <a@example.org>\r\nMessage-ID: <q"u\\o\x01t\xfee@client.test>\r\n\r\nhi\r\n'))
            qid = c.reply().text.split()[-1]
        gw.wait_for_log("(queued)")
        gw.signal_stop()
        gw.wait_stopped()
        lines = [l for l in open(gw.log_path, "rb").read().split(b"\n") if l]
        records = [json.loads(l.decode("utf-8")) for l in lines]  # strict UTF-8, strict JSON
        for r in records:
            self.assertEqual(set(r) - {"queue_id"}, {"time", "level", "pid", "msg"}, r)
        queued = [r for r in records if r.get("queue_id") == qid and "(queued)" in r["msg"]]
        self.assertEqual(len(queued), 1, records)
        self.assertIn('message-id=<q"u\\o\x01t\ufffde@client.test>', queued[0]["msg"])


class ServiceNotify(unittest.TestCase):
    """sd_notify through a NOTIFY_SOCKET of our own, as systemd gives Type=notify services."""

    def test_ready_after_recovery_reloading_and_stopping(self):
        d = tempfile.mkdtemp(prefix="sealgate-notify-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(15)
        self.addCleanup(sock.close)
        gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}])
        with open(os.path.join(gw.dir, "policy.yaml"), "w") as f:
            f.write("rules:\n  - name: default\n    methods: [tls]\n")
        gw.add_config("policy_file: policy.yaml\n")
        gw.env = {"NOTIFY_SOCKET": path}
        gw.start()
        ready = sock.recv(4096).decode()
        self.assertTrue(ready.startswith("READY=1\nSTATUS="), ready)
        # READY only after the spool's recovery and the listeners: the log says so first.
        log = gw.read_log()
        self.assertIn("messages waiting for delivery", log)
        self.assertIn(" started, hostname=", log)
        gw.proc.send_signal(signal.SIGHUP)
        self.assertEqual(sock.recv(4096).decode(), "RELOADING=1")
        self.assertTrue(sock.recv(4096).decode().startswith("READY=1"))
        gw.proc.send_signal(signal.SIGTERM)
        self.assertEqual(sock.recv(4096).decode(), "STOPPING=1")
        gw.wait_stopped()


if __name__ == "__main__":
    unittest.main()
