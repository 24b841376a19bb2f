"""Operations (issue 16): the status listener's /metrics, /healthz and /readyz
on a real gateway. /metrics must parse by Prometheus's text-format rules
(python3-prometheus-client's parser) and its counters must move with what the
gateway does."""
import os
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
        # The group's journal append and fdatasync are in the histogram.
        self.assertGreaterEqual(s[("sealgate_journal_fsync_seconds_count", ())], 1)
        # No label names a domain or an address.
        for (name, labels) in s:
            for _, value in labels:
                self.assertNotIn("@", value)
                self.assertNotIn("example", value)


if __name__ == "__main__":
    unittest.main()
