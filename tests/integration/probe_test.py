"""Integration tests of `sealgate probe` against real peers on 127.0.3.0/24:
Postfix smtpd with STARTTLS limited to TLS 1.2, with TLS 1.3, with a
self-signed certificate, with a certificate from a test CA (chain included for
DANE-TA), smtp-sink without STARTTLS, a DNSSEC-signed zone for DANE behind a
validating unbound, a bogus zone (SERVFAIL), a resolver that never answers,
and MTA-STS policies over HTTPS. Every peer is started here and stopped at the
end, also when a test fails. Postfix needs root to start its private instance."""
import json
import os
import re
import shutil
import socket
import subprocess
import time
import unittest

import probe_peers as peers
from harness import BIN

A_TLS12, A_TLS13, A_SELF, A_PLAIN, A_DOWN, A_HTTPS = ("127.0.3.11", "127.0.3.12", "127.0.3.13", "127.0.3.14",
                                                        "127.0.3.15", "127.0.3.20")
A_DNS, A_NSD = "127.0.3.2", "127.0.3.3"  # the validating unbound sealgate asks; nsd behind it
A_SILENT = ("127.0.3.16", "127.0.3.17")
A_OLDTLS = "127.0.3.18"  # STARTTLS offered, but only TLS 1.0/1.1, below our floor  # accept TCP (the kernel's backlog), never say a word
STS_ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx-tls13.probe.test\r\nmax_age: 86400\r\n"
STS_ELSEWHERE = "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n"
STS_TESTING = "version: STSv1\nmode: testing\nmx: *.probe.test\nmax_age: 600\n"


def local_data():
    rr = lambda *lines: list(lines)
    return (
        rr("probe.test. 600 IN SOA ns.probe.test. hostmaster.probe.test. 1 3600 600 86400 60",
           "mx-tls12.probe.test. 300 IN A " + A_TLS12,
           "mx-tls13.probe.test. 300 IN A " + A_TLS13,
           "mx-self.probe.test. 300 IN A " + A_SELF,
           "mx-plain.probe.test. 300 IN A " + A_PLAIN,
           "mx-down.probe.test. 300 IN A " + A_DOWN,
           "tls12.probe.test. 300 IN MX 10 mx-tls12.probe.test.",
           "tls13.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "selfsigned.probe.test. 300 IN MX 10 mx-self.probe.test.",
           "plain.probe.test. 300 IN MX 10 mx-plain.probe.test.",
           "down.probe.test. 300 IN MX 10 mx-down.probe.test.",
           "nullmx.probe.test. 300 IN MX 0 .",
           "implicit.probe.test. 300 IN A " + A_TLS13,
           "multi.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "multi.probe.test. 300 IN MX 20 mx-tls12.probe.test.",
           "mx-oldtls.probe.test. 300 IN A " + A_OLDTLS,
           "oldtls.probe.test. 300 IN MX 10 mx-oldtls.probe.test.",
           "mx-silent1.probe.test. 300 IN A " + A_SILENT[0],
           "mx-silent2.probe.test. 300 IN A " + A_SILENT[1],
           "silent.probe.test. 300 IN MX 10 mx-silent1.probe.test.",
           "silent.probe.test. 300 IN MX 20 mx-silent2.probe.test.",
           "fallback.probe.test. 300 IN MX 10 mx-down.probe.test.",
           "fallback.probe.test. 300 IN MX 20 mx-tls13.probe.test.",
           "sts.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "_mta-sts.sts.probe.test. 300 IN TXT \"v=STSv1; id=20261125a;\"",
           "mta-sts.sts.probe.test. 300 IN A " + A_HTTPS,
           "stsbad.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "_mta-sts.stsbad.probe.test. 300 IN TXT \"v=STSv1; id=1\"",
           "mta-sts.stsbad.probe.test. 300 IN A " + A_HTTPS,
           "ststest.probe.test. 300 IN MX 10 mx-tls12.probe.test.",
           "_mta-sts.ststest.probe.test. 300 IN TXT \"v=STSv1; id=7\"",
           "mta-sts.ststest.probe.test. 300 IN A " + A_HTTPS,
           "stsbig.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "_mta-sts.stsbig.probe.test. 300 IN TXT \"v=STSv1; id=4\"",
           "mta-sts.stsbig.probe.test. 300 IN A " + A_HTTPS,
           # The policy host's certificate does not name mta-sts.stsname.probe.test.
           "stsname.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "_mta-sts.stsname.probe.test. 300 IN TXT \"v=STSv1; id=5\"",
           "mta-sts.stsname.probe.test. 300 IN A " + A_HTTPS,
           # A TXT record but no policy served: the fetch fails, which is an error, never "none".
           "stsgone.probe.test. 300 IN MX 10 mx-tls13.probe.test.",
           "_mta-sts.stsgone.probe.test. 300 IN TXT \"v=STSv1; id=3\"",
           "mta-sts.stsgone.probe.test. 300 IN A " + A_HTTPS))


def signed_zone(port, tlsa_good, tlsa_ca):
    return "\n".join([
        "$ORIGIN dane.test.", "$TTL 300",
        "@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 60",
        "@ IN NS ns.dane.test.", "ns IN A 127.0.3.3",
        "@ IN MX 10 mx.dane.test.", "mx IN A " + A_TLS13,
        "_%d._tcp.mx IN TLSA 3 1 1 %s" % (port, tlsa_good),
        "bad IN MX 10 mxbad.dane.test.", "mxbad IN A " + A_TLS13,
        "_%d._tcp.mxbad IN TLSA 3 1 1 %s" % (port, "00" * 32),
        "ta IN MX 10 mxta.dane.test.", "mxta IN A " + A_TLS13,
        "_%d._tcp.mxta IN TLSA 2 0 1 %s" % (port, tlsa_ca),
        "old IN MX 10 mxold.dane.test.", "mxold IN A " + A_TLS13,
        "_%d._tcp.mxold IN TLSA 1 1 1 %s" % (port, tlsa_good),
        "notlsa IN MX 10 mxnotlsa.dane.test.", "mxnotlsa IN A " + A_TLS13,
        # The TLSA name of mxq lies in a child zone that the parent says is
        # signed (a DS) but that is served unsigned: its answers are bogus.
        "q IN MX 10 mxq.dane.test.", "mxq IN A " + A_TLS13,
        "_tcp.mxq IN NS ns.dane.test.", "_tcp.mxq IN DS 12345 13 2 " + "cd" * 32, ""])


def bogus_tlsa_zone(port):
    return "\n".join(["$ORIGIN _tcp.mxq.dane.test.", "$TTL 300",
                      "@ IN SOA ns.dane.test. hostmaster.dane.test. 1 3600 600 86400 60",
                      "@ IN NS ns.dane.test.", "_%d IN TLSA 3 1 1 %s" % (port, "00" * 32), ""])


BOGUS_ZONE = "\n".join(["$ORIGIN bogus.test.", "$TTL 300",
                        "@ IN SOA ns.bogus.test. hostmaster.bogus.test. 1 3600 600 86400 60",
                        "@ IN NS ns.bogus.test.", "ns IN A 127.0.3.3", "@ IN MX 10 mx.bogus.test.",
                        "mx IN A " + A_TLS13, ""])


@unittest.skipUnless(os.geteuid() == 0, "a private Postfix instance needs root to start")
class Probe(peers.PeersTestCase, unittest.TestCase):
    @classmethod
    def start_peers(cls):
        d = cls.dir = peers.tempdir("sealgate-probe-")
        if os.environ.get("SEALGATE_KEEP_TMP") != "1":
            cls.cleanups.append(lambda: shutil.rmtree(d, True))
        ca = cls.ca = peers.TestCA(d)
        cls.tls12 = ca.issue("mx-tls12", ["mx-tls12.probe.test"])
        cls.tls13 = ca.issue("mx-tls13", ["mx-tls13.probe.test", "mxta.dane.test"], with_chain=True)
        cls.selfsigned = peers.self_signed(d, "mx-self", "mx-self.probe.test")
        https_cert = ca.issue("mta-sts", ["mta-sts.sts.probe.test", "mta-sts.stsbad.probe.test",
                                          "mta-sts.ststest.probe.test", "mta-sts.stsgone.probe.test",
                                          "mta-sts.stsbig.probe.test"])
        cls.port = peers.free_port_on([A_TLS12, A_TLS13, A_SELF, A_PLAIN, A_DOWN, *A_SILENT, A_OLDTLS])
        tls = lambda cert, **extra: dict({"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": cert[0],
                                          "smtpd_tls_key_file": cert[1]}, **extra)
        cls.postfix = peers.Postfix(os.path.join(d, "postfix"), cls.port, [
            {"address": A_TLS12, "hostname": "mx-tls12.probe.test",
             "options": tls(cls.tls12, smtpd_tls_protocols="!SSLv2,!SSLv3,!TLSv1,!TLSv1.1,!TLSv1.3")},
            {"address": A_TLS13, "hostname": "mx-tls13.probe.test", "options": tls(cls.tls13)},
            {"address": A_SELF, "hostname": "mx-self.probe.test", "options": tls(cls.selfsigned)},
            {"address": A_OLDTLS, "hostname": "mx-oldtls.probe.test",
             "options": tls(cls.tls12, smtpd_tls_protocols="!SSLv2,!SSLv3,!TLSv1.2,!TLSv1.3")},
        ])
        cls.cleanups.append(cls.postfix.stop)
        cls.postfix.start()
        sink = peers.SmtpSink(A_PLAIN, cls.port, os.path.join(d, "smtp-sink.log"))
        cls.cleanups.append(sink.stop)
        os.makedirs(os.path.join(d, "dns"))
        signed = {"dane.test": signed_zone(cls.port, peers.spki_sha256(cls.tls13[0]), peers.cert_sha256(ca.cert))}
        bogus = {"bogus.test": BOGUS_ZONE, "_tcp.mxq.dane.test": bogus_tlsa_zone(cls.port)}
        cls.dns = peers.Dns(os.path.join(d, "dns"), signed, bogus, "probe.test", local_data(), cls.cleanups,
                            address=A_DNS, nsd_address=A_NSD)
        cls.sts_port = peers.free_port_on([A_HTTPS])
        cls.https = peers.HttpsServer(A_HTTPS, cls.sts_port, https_cert[0], https_cert[1], {
            "mta-sts.sts.probe.test": (200, "text/plain", STS_ENFORCE),
            "mta-sts.stsbad.probe.test": (200, "text/plain; charset=utf-8", STS_ELSEWHERE),
            "mta-sts.ststest.probe.test": (200, "text/plain", STS_TESTING),
            "mta-sts.stsbig.probe.test": (200, "text/plain", STS_ENFORCE + "x-padding: " + "x" * 100000 + "\n"),
            "mta-sts.stsname.probe.test": (200, "text/plain", STS_ENFORCE),
        })
        cls.cleanups.append(cls.https.stop)
        cls.config = cls.write_config("%s:%d" % (cls.dns.address, cls.dns.port))

    @classmethod
    def write_config(cls, server, timeout="5s", extra=""):
        path = os.path.join(cls.dir, "sealgate-%d.yaml" % len(os.listdir(cls.dir)))
        with open(path, "w") as f:
            f.write("hostname: probe-client.test\n"
                    "listeners:\n  - {name: a, address: 127.0.0.1, port: 2525, tls: none, auth: none}\n"
                    "dns: {servers: [\"%s\"], timeout: %s}\n"
                    "delivery:\n  port: %d\n  ca_file: %s\n  mta_sts_port: %d\n"
                    "  timeouts: {connect: 3s, helo: 10s, starttls: 10s, quit: 5s, https: 10s}\n%s"
                    % (server, timeout, cls.port, cls.ca.cert, cls.sts_port, extra))
        return path

    def probe(self, domain, *extra, config=None, expect_rc=0):
        r = subprocess.run([BIN, "probe", "--config", config or self.config, domain, "--json", *extra],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, expect_rc, r.stdout + r.stderr)
        return json.loads(r.stdout), r.stderr

    def only_mx(self, j):
        self.assertEqual(len(j["mx"]), 1, j)
        return j["mx"][0]

    # -- TLS variants -----------------------------------------------------------
    def test_tls12_only_server(self):
        j, _ = self.probe("tls12.probe.test")
        mx = self.only_mx(j)
        self.assertEqual((mx["host"], mx["address"], mx["reached"], mx["starttls"]),
                         ("mx-tls12.probe.test", A_TLS12, "found", "found"))
        self.assertTrue(mx["banner"].startswith("220 mx-tls12.probe.test"), mx["banner"])
        self.assertIn("STARTTLS", mx["extensions"])
        self.assertEqual(mx["tls"]["protocol"], "TLSv1.2")
        self.assertTrue(mx["tls"]["ok"])
        self.assertTrue(mx["tls"]["chain_verified"], mx["tls"])
        self.assertTrue(mx["tls"]["host_matched"])
        self.assertEqual(j["summary"], {"best_tls_version": "TLSv1.2", "starttls": "found", "verified": "yes",
                                        "dane": "insecure", "dane_match": None, "mta_sts": "none"})
        self.assertEqual(j["policy_facts"], {"starttls": "found", "tls_version": 12, "cert_verified": "found",
                                             "dane": "none", "mta_sts": "none"})

    def test_tls13_server_with_test_ca_certificate(self):
        j, _ = self.probe("tls13.probe.test")
        mx = self.only_mx(j)
        self.assertEqual(mx["tls"]["protocol"], "TLSv1.3")
        self.assertTrue(mx["tls"]["cipher"].startswith("TLS_"), mx["tls"])
        self.assertEqual((mx["tls"]["chain_verified"], mx["tls"]["chain_error"], mx["tls"]["host_matched"]),
                         (True, "", True))
        self.assertEqual((j["summary"]["best_tls_version"], j["summary"]["verified"]), ("TLSv1.3", "yes"))
        self.assertEqual(j["policy_facts"]["tls_version"], 13)

    def test_self_signed_certificate_is_tls_but_not_verified(self):
        j, _ = self.probe("selfsigned.probe.test")
        mx = self.only_mx(j)
        self.assertTrue(mx["tls"]["ok"])
        self.assertFalse(mx["tls"]["chain_verified"])
        self.assertEqual(mx["tls"]["chain_error"], "self-signed certificate")
        self.assertTrue(mx["tls"]["host_matched"], "the name is right; only the chain fails")
        self.assertEqual((j["summary"]["verified"], j["policy_facts"]["cert_verified"]), ("no", "absent"))
        self.assertEqual(j["policy_facts"]["starttls"], "found")

    def test_starttls_offered_but_no_common_protocol(self):
        j, _ = self.probe("oldtls.probe.test")
        mx = self.only_mx(j)
        self.assertEqual((mx["starttls"], mx["tls"]["ok"], mx["tls"]["protocol"]), ("found", False, ""))
        # OpenSSL's reason: the server's alert to our ClientHello (TLS 1.2 at least).
        self.assertEqual(mx["tls"]["error"], "STARTTLS: tlsv1 alert protocol version (SSL routines)")
        # Offered but not negotiable: the version is unknown, so a TLS rule defers rather than sends.
        self.assertEqual((j["summary"]["starttls"], j["summary"]["verified"], j["summary"]["best_tls_version"]),
                         ("found", "unknown", None))
        self.assertEqual(j["policy_facts"]["tls_version"], 0)

    def test_no_starttls_is_a_proven_absence(self):
        j, _ = self.probe("plain.probe.test")
        mx = self.only_mx(j)
        self.assertEqual((mx["reached"], mx["starttls"], mx["tls"]), ("found", "absent", None))
        self.assertIn("PIPELINING", mx["extensions"])
        self.assertNotIn("STARTTLS", mx["extensions"])
        self.assertEqual((j["summary"]["starttls"], j["summary"]["verified"], j["summary"]["best_tls_version"]),
                         ("absent", "no", None))

    def test_wrong_host_name_in_a_valid_chain(self):
        # No MX: the domain itself is the host (RFC 5321 5.1); the certificate names mx-tls13 only.
        j, _ = self.probe("implicit.probe.test")
        self.assertTrue(j["implicit_mx"])
        mx = self.only_mx(j)
        self.assertEqual((mx["host"], mx["preference"]), ("implicit.probe.test", 0))
        self.assertEqual((mx["tls"]["chain_verified"], mx["tls"]["host_matched"]), (True, False))
        self.assertEqual(j["summary"]["verified"], "no")

    # -- DNS outcomes ---------------------------------------------------------------
    def test_null_mx(self):
        j, _ = self.probe("nullmx.probe.test")
        self.assertEqual((j["mx_status"], j["mx"], j["mx_total"]), ("null MX", [], 0))
        self.assertIn("RFC 7505", j["mx_error"])

    def test_servfail_from_a_bogus_zone_is_a_temporary_failure(self):
        j, _ = self.probe("bogus.test", expect_rc=1)
        self.assertEqual(j["mx_status"], "temporary failure")
        self.assertIn("SERVFAIL", j["mx_error"])
        self.assertEqual(j["policy_facts"], {"starttls": "tempfail", "tls_version": 0, "cert_verified": "tempfail",
                                             "dane": "unknown", "mta_sts": "unknown"})
        self.assertEqual((j["summary"]["dane"], j["summary"]["mta_sts"]), ("bogus", "error"))

    def test_resolver_that_never_answers(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.3.30", 0))
            config = self.write_config("127.0.3.30:%d" % silent.getsockname()[1], timeout="1s")
            start = time.monotonic()
            j, _ = self.probe("tls13.probe.test", config=config, expect_rc=1)
            elapsed = time.monotonic() - start
        self.assertEqual((j["mx_status"], j["mx_error"]), ("temporary failure", "timeout"))
        self.assertLess(elapsed, 5)
        self.assertEqual(j["policy_facts"]["starttls"], "tempfail")

    def test_unreachable_mx_is_unknown_not_absent(self):
        j, _ = self.probe("down.probe.test")  # the probe ran: exit 0
        mx = self.only_mx(j)
        self.assertEqual((mx["reached"], mx["starttls"]), ("tempfail", "tempfail"))
        self.assertIn("Connection refused", mx["error"])
        self.assertEqual((j["summary"]["starttls"], j["summary"]["verified"]), ("tempfail", "unknown"))

    def test_second_mx_answers_when_the_first_does_not(self):
        j, _ = self.probe("fallback.probe.test")
        self.assertEqual([m["host"] for m in j["mx"]], ["mx-down.probe.test", "mx-tls13.probe.test"])
        self.assertEqual([m["reached"] for m in j["mx"]], ["tempfail", "found"])
        self.assertEqual((j["summary"]["starttls"], j["summary"]["verified"]), ("found", "yes"))

    def test_silent_mx_hosts_are_probed_in_parallel(self):
        # Two MX hosts that accept TCP and never send a banner: each costs one
        # delivery.timeouts.helo (2 s here); probed in parallel, the domain costs one.
        listeners = []
        for a in A_SILENT:
            s = socket.socket()
            self.addCleanup(s.close)
            s.bind((a, self.port))
            s.listen(8)
            listeners.append(s)
        config = self.write_config("%s:%d" % (self.dns.address, self.dns.port), extra="  probe_max_mx: 2\n")
        with open(config) as f:
            text = f.read().replace("helo: 10s", "helo: 2s")
        with open(config, "w") as f:
            f.write(text)
        start = time.monotonic()
        j, _ = self.probe("silent.probe.test", config=config)
        elapsed = time.monotonic() - start
        self.assertEqual([m["host"] for m in j["mx"]], ["mx-silent1.probe.test", "mx-silent2.probe.test"])
        for m in j["mx"]:
            self.assertEqual((m["reached"], m["error"], m["starttls"]), ("found", "banner: timeout", "tempfail"))
        self.assertEqual((j["summary"]["starttls"], j["policy_facts"]["starttls"]), ("tempfail", "tempfail"))
        self.assertGreater(elapsed, 1.9)
        self.assertLess(elapsed, 3.5, "the two hosts were probed one after the other")

    def test_probe_max_mx_limits_the_hosts_probed(self):
        config = self.write_config("%s:%d" % (self.dns.address, self.dns.port), extra="  probe_max_mx: 1\n")
        j, _ = self.probe("multi.probe.test", config=config)
        self.assertEqual((j["mx_total"], [m["host"] for m in j["mx"]]), (2, ["mx-tls13.probe.test"]))

    # -- DANE -------------------------------------------------------------------------
    def test_dane_ee_match(self):
        j, _ = self.probe("dane.test")
        mx = self.only_mx(j)
        self.assertTrue(j["mx_secure"])
        self.assertEqual(mx["dane"]["tlsa"], "secure")
        self.assertEqual(mx["dane"]["match"], "match", mx["dane"])
        self.assertIn("DANE-EE 3 1 1", mx["dane"]["detail"])
        self.assertEqual((j["summary"]["dane"], j["summary"]["dane_match"], j["policy_facts"]["dane"]),
                         ("secure", "match", "secure"))

    def test_dane_ta_match_through_the_chain(self):
        j, _ = self.probe("ta.dane.test")
        mx = self.only_mx(j)
        self.assertEqual(mx["dane"]["match"], "match", mx["dane"])
        self.assertIn("DANE-TA 2 0 1", mx["dane"]["detail"])

    def test_dane_mismatch(self):
        j, _ = self.probe("bad.dane.test")
        mx = self.only_mx(j)
        self.assertEqual((mx["dane"]["tlsa"], mx["dane"]["match"]), ("secure", "mismatch"))
        self.assertEqual(mx["dane"]["detail"], "no usable TLSA record matches the server's certificate chain")
        self.assertEqual((j["summary"]["dane_match"], j["policy_facts"]["dane"]), ("mismatch", "mismatch"))

    def test_dane_usage_1_is_unusable_for_smtp(self):
        j, _ = self.probe("old.dane.test")
        mx = self.only_mx(j)
        self.assertEqual((mx["dane"]["tlsa"], mx["dane"]["match"]), ("secure", "unusable"))
        self.assertEqual(j["policy_facts"]["dane"], "none")

    def test_bogus_tlsa_answer_is_unknown_never_none(self):
        # RFC 7672 2.2: a TLSA lookup that fails must not be taken for "no TLSA" (Postfix defers).
        j, _ = self.probe("q.dane.test")
        mx = self.only_mx(j)
        self.assertTrue(j["mx_secure"])
        self.assertEqual((mx["dane"]["tlsa"], mx["dane"]["match"]), ("bogus", None))
        self.assertIn("SERVFAIL", mx["dane"]["error"])
        self.assertTrue(mx["tls"]["ok"], "the SMTP probe itself still ran")
        self.assertEqual((j["summary"]["dane"], j["policy_facts"]["dane"]), ("bogus", "unknown"))

    def test_signed_absence_of_tlsa_is_none(self):
        j, _ = self.probe("notlsa.dane.test")
        mx = self.only_mx(j)
        self.assertEqual((mx["dane"]["tlsa"], mx["dane"]["match"]), ("none", None))
        self.assertEqual((j["summary"]["dane"], j["policy_facts"]["dane"]), ("none", "none"))

    # -- MTA-STS ------------------------------------------------------------------------
    def test_mta_sts_enforce_with_matching_mx(self):
        j, _ = self.probe("sts.probe.test")
        sts = j["mta_sts"]
        self.assertEqual((sts["status"], sts["id"], sts["mode"], sts["max_age"], sts["mx"]),
                         ("found", "20261125a", "enforce", 86400, ["mx-tls13.probe.test"]))
        self.assertEqual((j["summary"]["mta_sts"], j["summary"]["verified"]), ("enforce", "yes"))
        self.assertEqual((j["policy_facts"]["mta_sts"], j["policy_facts"]["cert_verified"]), ("enforce", "found"))
        self.assertIn(("mta-sts.sts.probe.test", "/.well-known/mta-sts.txt"), self.https.requests)

    def test_mta_sts_enforce_with_mx_not_in_the_policy(self):
        j, _ = self.probe("stsbad.probe.test")
        self.assertEqual((j["mta_sts"]["mode"], j["mta_sts"]["mx"]), ("enforce", ["*.elsewhere.test"]))
        mx = self.only_mx(j)
        self.assertTrue(mx["tls"]["chain_verified"] and mx["tls"]["host_matched"], "the certificate itself is fine")
        self.assertEqual((j["summary"]["verified"], j["policy_facts"]["cert_verified"]), ("no", "absent"))

    def test_mta_sts_testing(self):
        j, _ = self.probe("ststest.probe.test")
        self.assertEqual((j["summary"]["mta_sts"], j["policy_facts"]["mta_sts"]), ("testing", "testing"))

    def test_mta_sts_fetch_failure_is_an_error_not_none(self):
        j, _ = self.probe("stsgone.probe.test")
        self.assertEqual(j["mta_sts"]["status"], "temporary failure")
        self.assertEqual(j["mta_sts"]["error"], "policy fetch: HTTP 404")
        self.assertEqual((j["summary"]["mta_sts"], j["policy_facts"]["mta_sts"]), ("error", "unknown"))

    def test_mta_sts_policy_over_64_kib_is_refused(self):
        j, _ = self.probe("stsbig.probe.test")
        self.assertEqual(j["mta_sts"]["error"], "policy fetch: response: body larger than 65536 octets")
        self.assertEqual(j["summary"]["mta_sts"], "error")

    def test_mta_sts_policy_host_must_be_verified(self):
        j, _ = self.probe("stsname.probe.test")
        self.assertEqual(j["mta_sts"]["status"], "temporary failure")
        self.assertEqual(j["mta_sts"]["error"], "policy fetch: TLS: certificate not verified: hostname mismatch")
        self.assertNotIn(("mta-sts.stsname.probe.test", "/.well-known/mta-sts.txt"), self.https.requests,
                         "nothing may be asked of an unverified server")

    def test_no_mta_sts_record(self):
        j, _ = self.probe("tls13.probe.test")
        self.assertEqual((j["mta_sts"]["status"], j["mta_sts"]["error"]), ("absent", "no _mta-sts TXT record"))

    # -- against Postfix's own tool ---------------------------------------------------------
    def test_protocol_and_cipher_agree_with_posttls_finger(self):
        env = dict(os.environ, MAIL_CONFIG=self.postfix.etc)
        for domain, address in (("tls12.probe.test", A_TLS12), ("tls13.probe.test", A_TLS13)):
            # Level verify: at "may" posttls-finger offers anonymous (aNULL) ciphers, which
            # sealgate never does (it wants the certificate to record and check).
            r = subprocess.run(["posttls-finger", "-c", "-l", "verify", "-F", self.ca.cert,
                                "[%s]:%d" % (address, self.port)],
                               capture_output=True, text=True, timeout=60, env=env)
            m = re.search(r"TLS connection established to \S+: (\S+) with cipher (\S+)", r.stdout + r.stderr)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            mx = self.only_mx(self.probe(domain)[0])
            self.assertEqual((mx["tls"]["protocol"], mx["tls"]["cipher"]), (m.group(1), m.group(2)), domain)

    # -- cost -----------------------------------------------------------------------------
    def test_a_burst_of_1000_requests_costs_one_probe_per_mx(self):
        j, err = self.probe("multi.probe.test", "--burst", "1000")
        m = re.search(r"burst: (\d+) concurrent probes of multi\.probe\.test in [\d.]+ ms: (\d+) domain probes, (\d+) host"
                      r" probes", err)
        self.assertIsNotNone(m, err)
        self.assertEqual(m.groups(), ("1000", "1", "2"))
        # The probe printed afterwards is served from the cache, and still only 2 probes ran.
        self.assertEqual((j["domain_probes"], j["host_probes"]), (2, 2))
        self.assertEqual([m["from_cache"] for m in j["mx"]], [True, True])
        self.assertEqual([m["tls"]["protocol"] for m in j["mx"]], ["TLSv1.3", "TLSv1.2"])

    def test_text_output(self):
        r = subprocess.run([BIN, "probe", "--config", self.config, "tls12.probe.test"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^tls12\.probe\.test: 1 MX host\(s\), insecure, probed 1 in [\d.]+ ms$")
        self.assertRegex(lines[1], r"^  10 mx-tls12\.probe\.test \[127\.0\.3\.11\]: STARTTLS TLSv1\.2 \S+, chain verified,"
                                   r" host name matches; TLSA insecure \(address records not DNSSEC-secure\)$")
        self.assertEqual(lines[-1], "summary: best TLS TLSv1.2, verified yes, DANE insecure, MTA-STS none")

    def test_usage_errors_exit_2(self):
        for args, message in ((["probe", "tls12.probe.test"], "--config FILE is required"),
                              (["probe", "--config", self.config], "probe takes one DOMAIN"),
                              (["probe", "--config", self.config, "a..b"], "invalid domain a..b"),
                              (["probe", "--config", self.config, "x.test", "--burst", "0"],
                               "--burst takes a number from 1 to 100000")):
            r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(message, r.stderr)


if __name__ == "__main__":
    unittest.main()
