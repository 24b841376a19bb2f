"""The compliance report (issue 17) end to end, with real peers on
127.0.8.0/24: the gateway relays a few messages to a Postfix with STARTTLS
and a test-CA certificate (verified TLS), to an smtp-sink without TLS (mail in
clear) and to an smtp-sink that refuses every recipient (a bounce, whose DSN
goes back to the sender's domain through the plain sink). Then
`sealgate report --format html` is opened in headless Chromium from a file://
URL: it loads nothing but itself, a screenshot and a PDF print of it are kept
as test artifacts, and every number the page shows equals the one at the same
place in `sealgate report --format json` (each carries its JSON pointer in
data-json), and every number of the JSON's "compliance" member is on the page.
DNS from unbound with local data. Every process is started here and stopped at
the end. Postfix needs root."""
import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import unittest

import probe_peers as peers
from browser import Browser
from harness import BIN, Gateway

A_TLS, A_PLAIN, A_BOUNCE = "127.0.8.11", "127.0.8.14", "127.0.8.18"
ARTIFACTS = os.environ.get("SEALGATE_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                                                   "test-artifacts"))

POLICY = """\
rules:
  - name: verified
    match: {domains: tls.cmp.test}
    methods: [tls]
    tls: {min_version: "1.2", verify: ca}
    on_failure: defer
  - name: clear-ok
    methods: [tls, plain]
    tls: {min_version: "1.2", verify: none}
    on_failure: next
"""


def local_data():
    rr = ["cmp.test. 600 IN SOA ns.cmp.test. hostmaster.cmp.test. 1 3600 600 86400 60",
          "mx-tls.cmp.test. 300 IN A " + A_TLS, "mx-plain.cmp.test. 300 IN A " + A_PLAIN,
          "mx-bounce.cmp.test. 300 IN A " + A_BOUNCE]
    for domain, mx in (("tls", "mx-tls"), ("plain", "mx-plain"), ("bounce", "mx-bounce"), ("ours", "mx-plain")):
        rr.append("%s.cmp.test. 300 IN MX 10 %s.cmp.test." % (domain, mx))
    return rr


def resolve(document, pointer):
    """The value a JSON pointer (RFC 6901) names."""
    value = document
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


def number_pointers(value, pointer):
    """The pointer of every number under value."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return set()
    if isinstance(value, (int, float)):
        return {pointer}
    items = enumerate(value) if isinstance(value, list) else value.items()
    out = set()
    for key, v in items:
        out |= number_pointers(v, pointer + "/" + str(key).replace("~", "~0").replace("/", "~1"))
    return out


@unittest.skipUnless(os.geteuid() == 0, "a private Postfix instance needs root to start")
class ComplianceReport(peers.PeersTestCase, unittest.TestCase):
    @classmethod
    def start_peers(cls):
        d = cls.dir = peers.tempdir("sealgate-compliance-")
        if os.environ.get("SEALGATE_KEEP_TMP") != "1":
            cls.cleanups.append(lambda: shutil.rmtree(d, True))
        cls.ca = peers.TestCA(d)
        cert = cls.ca.issue("mx-tls", ["mx-tls.cmp.test"])
        cls.port = peers.free_port_on([A_TLS, A_PLAIN, A_BOUNCE])
        cls.postfix = peers.Postfix(os.path.join(d, "postfix"), cls.port, [
            {"address": A_TLS, "hostname": "mx-tls.cmp.test",
             "options": {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": cert[0],
                         "smtpd_tls_key_file": cert[1]}}])
        cls.cleanups.append(cls.postfix.stop)
        cls.postfix.start()
        for name, address, flags in (("plain", A_PLAIN, []), ("bounce", A_BOUNCE, ["-f", "RCPT"])):
            dump = os.path.join(d, "dump-" + name)
            os.makedirs(dump)
            os.chmod(dump, 0o777)
            sink = peers.Process([peers.SMTP_SINK, "-u", "nobody", *flags, "-d", os.path.join(dump, "%H%M%S."),
                                  "%s:%d" % (address, cls.port), "100"], os.path.join(d, "sink-%s.log" % name))
            cls.cleanups.append(sink.stop)
            if not peers.wait_for_banner(address, cls.port):
                raise RuntimeError("smtp-sink %s did not start: %s" % (name, sink.log()))
        os.makedirs(os.path.join(d, "dns"))
        cls.dns = peers.Dns(os.path.join(d, "dns"), {}, {}, "cmp.test", local_data(), cls.cleanups)
        os.makedirs(ARTIFACTS, exist_ok=True)

    def setUp(self):
        self.gw = Gateway(self, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}],
                          queue="{retry_min: 1s, retry_max: 2s}", expect_clean_exit=False)
        with open(os.path.join(self.gw.dir, "policy.yaml"), "w") as f:
            f.write(POLICY)
        self.gw.add_config("policy_file: policy.yaml\n"
                           'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
                           "delivery: {port: %d, ca_file: %s, probe_cache_ttl: 10m, timeouts: {connect: 5s}}\n"
                           "tlsrpt: {organization: Example Clinic & Co}\n"
                           % (self.dns.port, self.port, self.ca.cert))
        self.gw.start()

    def send(self, rcpts):
        argv = ["swaks", "--server", "127.0.0.1:%d" % self.gw.port, "--from", "app@ours.cmp.test",
                "--to", ",".join(rcpts), "--header", "Subject: compliance report test"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"250 2\.0\.0 Ok: queued as [0-9A-F]{16}")

    def db(self, sql):
        con = sqlite3.connect("file:%s?mode=ro" % self.gw.database, uri=True, timeout=10)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def report(self, *args):
        r = subprocess.run([BIN, "report", "--config", self.gw.config, *args], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_the_page_shows_the_numbers_of_the_json_and_loads_nothing(self):
        self.send(["a@tls.cmp.test", "b@tls.cmp.test"])
        self.send(["c@plain.cmp.test"])
        self.send(["d@bounce.cmp.test", "e@tls.cmp.test"])
        # Every recipient final, the bounce's DSN included; then the gateway
        # stops, so that both reports read the same record.
        deadline = time.time() + 90
        while time.time() < deadline:
            rows = self.db("SELECT COUNT(*), COUNT(final_at) FROM recipients")[0]
            if rows[0] == 6 and rows[1] == 6:
                break
            time.sleep(0.2)
        self.assertEqual(self.db("SELECT address, status FROM recipients WHERE final_at IS NULL"), [],
                         self.gw.read_log()[-4000:])
        self.gw.stop()

        report = json.loads(self.report("--format", "json", "--since", "1d"))
        self.assertEqual(report["by"], "method", "the fields that were there are still there")
        self.assertEqual(report["total"], 6)
        c = report["compliance"]
        self.assertEqual(c["organisation"], "Example Clinic & Co")
        self.assertEqual((c["totals"]["messages"], c["totals"]["recipients"], c["totals"]["delivered"]), (4, 6, 5))
        self.assertEqual(c["totals"]["bounced"], 1)
        self.assertEqual(c["methods"], {"tls": 3, "plain": 3})
        self.assertEqual(c["tls_versions"], {"TLSv1.3": 3, "none": 2})
        self.assertEqual(c["certificates"], {"dane": 0, "mta-sts": 0, "verified": 3, "unverified": 0, "none": 2})
        self.assertEqual(c["clear_domains"], [{"domain": "ours.cmp.test", "recipients": 1},
                                              {"domain": "plain.cmp.test", "recipients": 1}])
        self.assertEqual(c["totals"]["in_clear"], 2)
        self.assertEqual(c["trouble_domains"], [{"domain": "bounce.cmp.test", "deferrals": 0, "bounced": 1}])
        self.assertIsNone(c["portal"], "no portal configured")
        self.assertEqual(len(c["days"]), 2, "since 1d: yesterday and today (UTC)")
        self.assertEqual(sum(day["recipients"] for day in c["days"]), 6)
        # The existing groups and the compliance numbers agree.
        self.assertEqual(sum(g["delivered"] for g in report["groups"]), c["totals"]["delivered"])
        self.assertEqual(sum(g["secured"] for g in report["groups"]), c["totals"]["secured"])

        html = self.report("--format", "html", "--since", "1d", "--by", "sender")
        page = os.path.join(ARTIFACTS, "compliance-report.html")
        with open(page, "wb") as f:
            f.write(html)
        text = html.decode()
        self.assertNotIn("http:", text)
        self.assertNotIn("https:", text)
        self.assertIn("Example Clinic &amp; Co", text)

        with Browser(javascript=False) as b:
            url = "file://" + os.path.abspath(page)
            b.goto(url)
            self.assertEqual(b.title(), "Outbound mail compliance report: Example Clinic & Co")
            # Nothing but the document itself was asked for.
            self.assertEqual(b.evaluate("performance.getEntriesByType('resource').length"), 0)
            self.assertEqual({r.url for r in b.responses} - {url}, set())
            self.assertLessEqual(b.scroll_width(), 1280, "nothing wider than the window")
            self.assertEqual(b.evaluate("document.querySelectorAll('svg.chart').length"), 4)
            shown = b.evaluate("Array.from(document.querySelectorAll('[data-json]'))"
                               ".map(e => [e.dataset.json, e.textContent])")
            b.screenshot(os.path.join(ARTIFACTS, "compliance-report.png"))
            pdf = base64.b64decode(b.cdp("Page.printToPDF", {"printBackground": False, "preferCSSPageSize": True})
                                   ["data"])
            with open(os.path.join(ARTIFACTS, "compliance-report.pdf"), "wb") as f:
                f.write(pdf)
            self.assertTrue(pdf.startswith(b"%PDF-"))
            self.assertGreaterEqual(len(re.findall(rb"/Type\s*/Page[^s]", pdf)), 1)

        self.assertGreater(len(shown), 40)
        for pointer, text in shown:
            expected = resolve(report, pointer)
            if isinstance(expected, int):
                self.assertEqual(int(text), expected, pointer)
            else:
                self.assertEqual(float(text), expected, pointer)
        self.assertEqual({p for p, _ in shown}, number_pointers(c, "/compliance"),
                         "every number of the JSON is on the page, and nothing else is tagged")

    def test_an_empty_period_says_so(self):
        self.gw.stop()
        html = self.report("--format", "html", "--since", "2099-01-01").decode()
        self.assertIn("No mail in this period.", html)
        self.assertIn('data-json="/compliance/totals/recipients">0<', html)
        report = json.loads(self.report("--format", "json", "--since", "2099-01-01"))
        self.assertEqual(report["compliance"]["days"], [])
        self.assertEqual(report["compliance"]["totals"]["recipients"], 0)


if __name__ == "__main__":
    unittest.main()
