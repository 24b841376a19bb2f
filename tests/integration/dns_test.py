"""Integration tests of the dns/ library through `sealgate dns lookup`: a real
unbound on 127.0.0.1 (a free port, its config in a temporary directory) serves
test.  records; the tests assert outcomes, TTLs, records and exit codes.
Nothing here talks to any address outside 127.0.0.0/8."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import probe_peers as peers

from harness import BIN, free_port

TLSA_DATA = "0123456789abcdef" * 4
OPENPGPKEY_B64 = "mDMEZQ0AABYJKwYBBAHaRw8BAQdA"  # any octets: the resolver does not interpret them

LOCAL_DATA = [
    "example.test. 600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 120",
    "example.test. 300 IN MX 10 mx1.example.test.",
    "example.test. 300 IN MX 10 mx2.example.test.",
    "example.test. 300 IN MX 20 backup.example.test.",
    "mx1.example.test. 300 IN A 127.0.0.2",
    "mx2.example.test. 250 IN A 127.0.0.3",
    "mx2.example.test. 250 IN AAAA ::1",
    "nullmx.example.test. 300 IN MX 0 .",
    "implicit.example.test. 300 IN A 127.0.0.4",
    "noaddr.example.test. 300 IN TXT \"no mail here\"",
    "alias.example.test. 100 IN CNAME mx1.example.test.",
    "txt.example.test. 300 IN TXT \"v=spf1 \" \"-all\"",
    "_25._tcp.mx1.example.test. 300 IN TLSA 3 1 1 " + TLSA_DATA,
    "user._smimecert.example.test. 300 IN SMIMEA 3 0 1 " + TLSA_DATA,
    "user._openpgpkey.example.test. 300 IN OPENPGPKEY " + OPENPGPKEY_B64,
    # 12 strings of 250 octets: over the 1232-octet EDNS size, so the UDP
    # answer is truncated and c-ares asks again over TCP.
    "big.example.test. 300 IN TXT " + " ".join('"%s"' % (chr(ord("a") + i) * 250) for i in range(12)),
    # The generic syntax (RFC 3597) for a type unbound might not know by name.
    "generic._openpgpkey.example.test. 300 IN TYPE61 \\# 4 01020304",
]


class Unbound:
    """One unbound on 127.0.0.1:PORT, in the foreground (-d), stopped at cleanup."""

    def __init__(self, testcase, local_data):
        self.dir = tempfile.mkdtemp(prefix="sealgate-dns-")
        testcase.addCleanup(shutil.rmtree, self.dir, True)
        self.port = free_port()
        lines = ["server:", "  interface: 127.0.0.1", "  port: %d" % self.port, "  do-daemonize: no",
                 '  username: ""', '  chroot: ""', '  directory: "%s"' % self.dir,
                 '  pidfile: "%s/pid"' % self.dir, "  use-syslog: no", '  logfile: ""', "  do-ip6: no",
                 "  verbosity: 1", '  local-zone: "test." nodefault', '  domain-insecure: "test."',
                 '  local-zone: "example.test." static']
        lines += ["  local-data: '%s'" % d for d in local_data]
        self.conf = os.path.join(self.dir, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = open(os.path.join(self.dir, "unbound.log"), "wb")
        self.proc = subprocess.Popen(["unbound", "-d", "-c", self.conf], stdout=self.log, stderr=self.log)
        testcase.addCleanup(self.stop)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited: " + self.read_log())
            r = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.port), "+time=1", "+tries=1", "+short",
                                "mx1.example.test", "A"], capture_output=True, text=True)
            if r.returncode == 0 and "127.0.0.2" in r.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError("unbound did not start: " + self.read_log())

    def read_log(self):
        with open(os.path.join(self.dir, "unbound.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def write_config(testcase, servers, timeout="5s"):
    d = tempfile.mkdtemp(prefix="sealgate-dnscfg-")
    testcase.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, "sealgate.yaml")
    with open(path, "w") as f:
        f.write("listeners:\n  - {name: a, address: 127.0.0.1, port: 2525, tls: none, auth: none}\n"
                "dns: {servers: [%s], timeout: %s, negative_ttl: 7m}\n"
                % (", ".join('"%s"' % s for s in servers), timeout))
    return path


def lookup(config, rtype, name, json_output=False):
    args = [BIN, "dns", "lookup", "--config", config, rtype, name] + (["--json"] if json_output else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


class Lookups(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._cleanups_cls = []
        try:
            cls.unbound = Unbound(cls, LOCAL_DATA)
            cls.config = write_config(cls, ["127.0.0.1:%d" % cls.unbound.port])
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def addCleanup(cls, fn, *args):  # class-level resources, cleaned up in tearDownClass
        cls._cleanups_cls.append((fn, args))

    @classmethod
    def tearDownClass(cls):
        for fn, args in reversed(cls._cleanups_cls):
            fn(*args)
        cls._cleanups_cls = []

    def run_json(self, rtype, name):
        rc, out, err = lookup(self.config, rtype, name, json_output=True)
        self.assertIn(rc, (0, 1), err)
        return rc, json.loads(out)

    def test_mx_found_with_all_records(self):
        rc, out, err = lookup(self.config, "MX", "example.test")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0], "example.test MX found ttl=300 insecure")
        self.assertEqual(sorted(lines[1:]), ["10 mx1.example.test.", "10 mx2.example.test.", "20 backup.example.test."])

    def test_mx_hosts_in_preference_order_random_among_equals(self):
        # Each run is a new process with a fresh random seed. With 12 runs the
        # same order every time had a 1 in 2048 chance, and it happened once in
        # CI; with 40 it is about 1 in 5*10^11.
        firsts = set()
        for _ in range(40):
            rc, j = self.run_json("MXHOSTS", "example.test")
            self.assertEqual(rc, 0)
            self.assertEqual(j["status"], "hosts")
            self.assertFalse(j["implicit"])
            self.assertEqual(sorted(j["records"][:2]), ["10 mx1.example.test.", "10 mx2.example.test."])
            self.assertEqual(j["records"][2], "20 backup.example.test.")
            firsts.add(j["records"][0])
        self.assertEqual(len(firsts), 2, "equal preferences never changed order in 40 runs")

    def test_null_mx_is_its_own_permanent_outcome(self):
        rc, out, err = lookup(self.config, "MXHOSTS", "nullmx.example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines()[0],
                         "nullmx.example.test MXHOSTS null MX: null MX (RFC 7505): the domain accepts no mail"
                         " ttl=300 insecure")
        rc, out, _ = lookup(self.config, "MX", "nullmx.example.test")
        self.assertEqual(out.splitlines()[1:], ["0 ."])

    def test_no_mx_means_the_domain_itself(self):
        rc, j = self.run_json("MXHOSTS", "implicit.example.test")
        self.assertEqual(rc, 0)
        self.assertEqual((j["status"], j["implicit"], j["records"]), ("hosts", True, ["0 implicit.example.test."]))
        # No MX and no address records: nowhere to deliver, permanently.
        rc, j = self.run_json("MXHOSTS", "noaddr.example.test")
        self.assertEqual((rc, j["status"], j["error"]), (0, "no such domain", "no MX and no address records"))
        rc, j = self.run_json("MXHOSTS", "nothere.example.test")
        self.assertEqual((rc, j["status"], j["error"]), (0, "no such domain", "NXDOMAIN"))

    def test_nxdomain_and_nodata_are_proven_absence_with_soa_ttl(self):
        rc, out, err = lookup(self.config, "A", "nothere.example.test")
        self.assertEqual(rc, 0, err)
        # RFC 2308: min(SOA TTL 600, SOA MINIMUM 120).
        self.assertEqual(out, "nothere.example.test A absent (nxdomain) ttl=120 insecure\n")
        rc, out, err = lookup(self.config, "AAAA", "mx1.example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "mx1.example.test AAAA absent (nodata) ttl=120 insecure\n")
        rc, j = self.run_json("TLSA", "_25._tcp.mx2.example.test")
        self.assertEqual((rc, j["status"], j["absent"]), (0, "absent", "nxdomain"))

    def test_addresses_and_cname(self):
        rc, out, _ = lookup(self.config, "A", "mx2.example.test")
        self.assertEqual((rc, out), (0, "mx2.example.test A found ttl=250 insecure\n127.0.0.3\n"))
        rc, out, _ = lookup(self.config, "AAAA", "mx2.example.test")
        self.assertEqual((rc, out), (0, "mx2.example.test AAAA found ttl=250 insecure\n::1\n"))
        rc, out, _ = lookup(self.config, "A", "alias.example.test")
        self.assertEqual((rc, out), (0, "alias.example.test A found ttl=100 insecure\n127.0.0.2\n"))

    def test_txt_strings_are_joined(self):
        rc, j = self.run_json("TXT", "txt.example.test")
        self.assertEqual((rc, j["status"], j["records"]), (0, "found", ["v=spf1 -all"]))

    def test_large_answer_over_tcp(self):
        udp = subprocess.run(["dig", "@127.0.0.1", "-p", str(self.unbound.port), "+ignore", "+notcp", "+bufsize=1232",
                              "big.example.test", "TXT"], capture_output=True, text=True).stdout
        self.assertRegex(udp, r"flags:[^;]* tc\b", "the premise: over UDP the answer is truncated")
        rc, j = self.run_json("TXT", "big.example.test")
        self.assertEqual((rc, j["status"]), (0, "found"), j)
        self.assertEqual(j["records"], ["".join(chr(ord("a") + i) * 250 for i in range(12))])

    def test_tlsa_and_smimea(self):
        rc, out, err = lookup(self.config, "TLSA", "_25._tcp.mx1.example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines(), ["_25._tcp.mx1.example.test TLSA found ttl=300 insecure",
                                            "3 1 1 " + TLSA_DATA])
        rc, j = self.run_json("SMIMEA", "user._smimecert.example.test")
        self.assertEqual((rc, j["records"], j["secure"]), (0, ["3 0 1 " + TLSA_DATA], False))

    def test_openpgpkey(self):
        rc, j = self.run_json("OPENPGPKEY", "user._openpgpkey.example.test")
        self.assertEqual((rc, j["status"], j["records"]), (0, "found", [OPENPGPKEY_B64]))
        rc, j = self.run_json("OPENPGPKEY", "generic._openpgpkey.example.test")
        self.assertEqual((rc, j["records"]), (0, ["AQIDBA=="]))

    def test_usage_errors_exit_2(self):
        self.assertEqual(lookup(self.config, "SRV", "example.test")[0], 2)
        self.assertEqual(lookup(self.config, "A", "a..b")[0], 2)
        r = subprocess.run([BIN, "dns", "lookup", "A", "example.test"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--config FILE is required", r.stderr)


SIGNED_ZONE = """$ORIGIN signed.test.
$TTL 300
@ IN SOA ns.signed.test. hostmaster.signed.test. 1 3600 600 86400 60
@ IN NS ns.signed.test.
ns IN A 127.0.0.1
@ IN MX 10 mx.signed.test.
mx IN A 127.0.0.5
_25._tcp.mx IN TLSA 3 1 1 %s
""" % TLSA_DATA


class Dnssec(peers.PeersTestCase, unittest.TestCase):
    """signed.test, signed with ldns-signzone, served by nsd; a validating
    unbound in front holds its DS as trust anchor and sets the AD bit. The
    resolver is on loopback, so sealgate believes it."""

    @classmethod
    def start_peers(cls):
        d = tempfile.mkdtemp(prefix="sealgate-dnssec-")
        cls.cleanups.append(lambda: shutil.rmtree(d, True))
        dns = peers.Dns(d, {"signed.test": SIGNED_ZONE}, {}, [], [], cls.cleanups)
        cls.config = write_config(cls, ["127.0.0.1:%d" % dns.port])

    @classmethod
    def addCleanup(cls, fn, *args):  # write_config registers its temporary directory here
        cls.cleanups.append(lambda: fn(*args))

    def test_signed_answers_are_secure(self):
        rc, out, err = lookup(self.config, "MX", "signed.test")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^signed\.test MX found ttl=\d+ secure\n10 mx\.signed\.test\.\n$")
        rc, out, err = lookup(self.config, "TLSA", "_25._tcp.mx.signed.test")
        # The validating unbound caches and counts TTLs down: a range, not a value.
        self.assertEqual(rc, 0, err)
        head, data = out.splitlines()
        self.assertRegex(head, r"^_25\._tcp\.mx\.signed\.test TLSA found ttl=(2[89]\d|300) secure$")
        self.assertEqual(data, "3 1 1 " + TLSA_DATA)

    def test_signed_absence_is_secure(self):
        # NXDOMAIN and NODATA proven by NSEC: the only absences DANE may rely on (RFC 7672 2.2).
        # TTL: RFC 2308 min(SOA TTL 300, MINIMUM 60), counted down by unbound's cache.
        rc, out, _ = lookup(self.config, "TLSA", "_25._tcp.nothere.signed.test")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^_25\._tcp\.nothere\.signed\.test TLSA absent \(nxdomain\) ttl=([45]\d|60) secure\n$")
        rc, out, _ = lookup(self.config, "AAAA", "mx.signed.test")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^mx\.signed\.test AAAA absent \(nodata\) ttl=([45]\d|60) secure\n$")

    def test_mx_hosts_carry_security(self):
        rc, j = (lambda r: (r[0], json.loads(r[1])))(lookup(self.config, "MXHOSTS", "signed.test", json_output=True))
        self.assertEqual((rc, j["status"], j["records"], j["secure"]), (0, "hosts", ["10 mx.signed.test."], True))


class TemporaryFailures(unittest.TestCase):
    def test_silent_server_times_out(self):
        # A UDP socket that never answers: the lookup must give up after dns.timeout.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            config = write_config(self, ["127.0.0.1:%d" % silent.getsockname()[1]], timeout="1s")
            start = time.monotonic()
            rc, out, err = lookup(config, "MX", "example.test")
            elapsed = time.monotonic() - start
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out, "example.test MX temporary failure: timeout\n")
        self.assertLess(elapsed, 4.0)
        self.assertGreater(elapsed, 0.8)

    def test_nothing_listening_is_temporary(self):
        config = write_config(self, ["127.0.0.1:%d" % free_port()], timeout="1s")
        rc, out, err = lookup(config, "MXHOSTS", "example.test")
        self.assertEqual(rc, 1, out + err)
        self.assertEqual(out, "example.test MXHOSTS temporary failure: no server answered"
                              " (SERVFAIL, REFUSED or connection refused)\n")

    def test_servfail_is_temporary(self):
        # A server that answers SERVFAIL to everything (as a validating resolver does for a bogus zone).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind(("127.0.0.1", 0))
            server.settimeout(0.1)
            config = write_config(self, ["127.0.0.1:%d" % server.getsockname()[1]], timeout="2s")
            proc = subprocess.Popen([BIN, "dns", "lookup", "--config", config, "TLSA", "_25._tcp.mx.example.test"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            queries = 0
            deadline = time.time() + 20
            while proc.poll() is None and time.time() < deadline:
                try:
                    q, peer = server.recvfrom(4096)
                except socket.timeout:
                    continue
                queries += 1
                end = 12
                while q[end]:
                    end += 1 + q[end]
                end += 5
                reply = bytearray(q[:end])
                reply[2], reply[3] = 0x81, 0x82  # QR RD, RA, RCODE 2
                reply[6:12] = bytes(6)
                server.sendto(bytes(reply), peer)
            out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, out + err)
        self.assertGreaterEqual(queries, 1)
        self.assertEqual(out, "_25._tcp.mx.example.test TLSA temporary failure: no server answered"
                              " (SERVFAIL, REFUSED or connection refused)\n")

    def test_bad_config_exits_1_with_position(self):
        d = tempfile.mkdtemp(prefix="sealgate-dnscfg-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "sealgate.yaml")
        with open(path, "w") as f:
            f.write("listeners:\n  - {name: a, tls: none, auth: none}\ndns: {servers: [dns.example]}\n")
        rc, out, err = lookup(path, "A", "example.test")
        self.assertEqual(rc, 1)
        self.assertIn(path + ":3:17: dns.servers[0]: 'dns.example' is not a resolver address", err)


if __name__ == "__main__":
    unittest.main()
