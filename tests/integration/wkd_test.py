"""WKD key discovery through `sealgate keys lookup` and `sealgate keys encrypt`:
keys served over HTTPS on loopback (probe_peers.HttpsServer, a certificate from
probe_peers.TestCA) at the names the test DNS gives; gpg decrypts what sealgate
encrypted to a key found only by WKD. HTTPS on 127.0.7.0/24 only (the test DNS
helper listens on 127.0.0.1, as everywhere). Every process started here is
stopped, gpg-agents included (gpgconf --kill all per GNUPGHOME)."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import crypto_test as ct
import probe_peers as peers

from harness import BIN

A_SERVER = "127.0.7.1"  # the WKD server for every name that has one
A_DOWN = "127.0.7.3"    # nothing listens here
F = {}
CLEANUPS = []

def zbase32_sha1(local):
    """draft-koch-openpgp-webkey-service 3.1: z-base-32 of SHA-1 of the lower-cased local part,
    written here independently of crypto/wkd.cpp."""
    alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"
    n = int.from_bytes(hashlib.sha1(local.lower().encode()).digest(), "big")
    return "".join(alphabet[(n >> (155 - 5 * i)) & 31] for i in range(32))


def advanced(local, domain):
    return ("openpgpkey." + domain, "/.well-known/openpgpkey/%s/hu/%s?l=%s" % (domain, zbase32_sha1(local), local))


def direct(local, domain):
    return (domain, "/.well-known/openpgpkey/hu/%s?l=%s" % (zbase32_sha1(local), local))


def stop_all():
    for fn in reversed(CLEANUPS):
        fn()
    for home in (F.get("r"), F.get("g"), F.get("g") and os.path.join(F["g"], "discovered")):
        if home and os.path.isdir(home):
            ct.run(["gpgconf", "--kill", "all"], env_home=home, check=False)


def setUpModule():
    d = tempfile.mkdtemp(prefix="sw", dir="/tmp")  # short: gpg-agent's socket path must fit in sun_path
    unittest.addModuleCleanup(shutil.rmtree, d, True)
    unittest.addModuleCleanup(stop_all)
    F["dir"] = d
    r, g = os.path.join(d, "r"), os.path.join(d, "g")
    for h in (r, g):
        os.mkdir(h, 0o700)
    F["r"], F["g"] = r, g
    for name, domain in (("wendy", "adv.test"), ("victor", "dir.test")):
        ct.gpg(r, "--quick-gen-key", "%s <%s@%s>" % (name.title(), name, domain), "future-default", "default", "never")
        F[name] = ct.fingerprint(r, "%s@%s" % (name, domain))
        # WKD serves the binary key, not the armored one (draft 3.1).
        F[name + "_key"] = ct.gpg(r, "--export", "--export-options", "export-minimal", F[name]).stdout
    # The gateway's own home: empty, so a key found is found by WKD alone.
    ct.gpg(g, "--list-keys")

    os.mkdir(os.path.join(d, "ca"))
    ca = peers.TestCA(os.path.join(d, "ca"))
    F["ca"] = ca.cert
    # Names the server's certificate covers; openpgpkey.badtls.test is not one of them.
    cert, key = ca.issue("wkd", ["openpgpkey.adv.test", "dir.test", "openpgpkey.down.test"])
    port = peers.free_port_on([A_SERVER, A_DOWN])
    F["port"] = port
    files = {
        advanced("wendy", "adv.test"): (200, "application/octet-stream", F["wendy_key"]),
        advanced("mallory", "adv.test"): (200, "application/octet-stream", F["wendy_key"]),  # not mallory's key
        advanced("oops", "adv.test"): (503, "text/plain", "try later\n"),
        advanced("junk", "adv.test"): (200, "application/octet-stream", bytes([1, 2, 3, 4])),
        direct("victor", "dir.test"): (200, "application/octet-stream", F["victor_key"]),
        # The direct method of adv.test has victor's key for wendy: it must never be asked.
        direct("wendy", "adv.test"): (200, "application/octet-stream", F["victor_key"]),
        advanced("wendy", "badtls.test"): (200, "application/octet-stream", F["wendy_key"]),
    }
    server = peers.HttpsServer(A_SERVER, port, cert, key, {}, files)
    CLEANUPS.append(server.stop)
    F["server"] = server

    zone = ["$ORIGIN adv.test.", "$TTL 300", "@ IN SOA ns.adv.test. hostmaster.adv.test. 1 3600 600 86400 60",
            "@ IN NS ns.adv.test.", "ns IN A 127.0.0.1", "openpgpkey IN A " + A_SERVER, "@ IN A " + A_SERVER]
    local = ["dir.test. 300 IN A " + A_SERVER,  # no openpgpkey.dir.test: the direct method
             "openpgpkey.down.test. 300 IN A " + A_DOWN,
             "down.test. 300 IN A " + A_SERVER,  # a direct server that must not be tried when advanced fails
             "openpgpkey.badtls.test. 300 IN A " + A_SERVER]
    os.mkdir(os.path.join(d, "dns"))
    dns = peers.Dns(os.path.join(d, "dns"), {"adv.test": "\n".join(zone) + "\n"}, {},
                    ["dir.test", "down.test", "badtls.test", "none.test"], local, CLEANUPS)
    F["dns"] = "127.0.0.1:%d" % dns.port


def config(**crypto):
    settings = {"gnupg_home": F["g"], "wkd_port": F["port"], "wkd_ca_file": F["ca"], "wkd_timeout": "5s",
                "sources": "{wkd: true, dns_openpgpkey: false, dns_smimea: false}"}
    settings.update(crypto)
    fd, path = tempfile.mkstemp(prefix="cfg", suffix=".yaml", dir=F["dir"])
    with os.fdopen(fd, "w") as f:
        f.write("listeners:\n  - {name: a, address: 127.0.7.1, port: 2525, tls: none, auth: none}\n"
                "dns: {servers: [\"%s\"], timeout: 3s}\ncrypto:\n" % F["dns"])
        for k, v in settings.items():
            f.write("  %s: %s\n" % (k, v))
    return path


def lookup(cfg, address, text=False):
    r = subprocess.run([BIN, "keys", "lookup", "--config", cfg, address] + ([] if text else ["--json"]),
                       capture_output=True, timeout=60)
    if text:
        return r.returncode, r.stdout.decode(), r.stderr.decode()
    return r.returncode, (json.loads(r.stdout) if r.stdout else None), r.stderr.decode()


def wkd(result):
    return ct.source(result, "pgp", "wkd")


class Wkd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cfg = config()

    def setUp(self):
        F["server"].requests.clear()

    def test_advanced_method_found_and_kept_out_of_the_operator_keyring(self):
        rc, j, err = lookup(self.cfg, "wendy@adv.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["pgp"]["outcome"], j["pgp"]["key"], j["pgp"]["discovered"]), ("found", F["wendy"], True))
        src = wkd(j)
        self.assertEqual((src["outcome"], src["method"], src["host"]), ("found", "advanced", "openpgpkey.adv.test"))
        self.assertEqual(ct.source(j, "pgp", "keyring")["outcome"], "absent")
        # Only the advanced URL was asked, even though the direct one would have answered.
        self.assertEqual(F["server"].requests, [advanced("wendy", "adv.test")])
        self.assertNotEqual(ct.gpg(F["g"], "--list-keys", F["wendy"], check=False).returncode, 0)

    def test_direct_method_when_the_openpgpkey_name_does_not_exist(self):
        rc, j, err = lookup(self.cfg, "victor@dir.test")
        self.assertEqual(rc, 0, err)
        src = wkd(j)
        self.assertEqual((j["pgp"]["outcome"], j["pgp"]["key"]), ("found", F["victor"]))
        self.assertEqual((src["outcome"], src["method"], src["host"]), ("found", "direct", "dir.test"))
        self.assertEqual(F["server"].requests, [direct("victor", "dir.test")])

    def test_404_is_absent(self):
        rc, j, err = lookup(self.cfg, "nobody@adv.test")
        self.assertEqual(rc, 0, err)
        src = wkd(j)
        self.assertEqual((j["pgp"]["outcome"], src["outcome"], src["method"], src["detail"]),
                         ("absent", "absent", "advanced", "HTTP 404: no key published"))

    def test_no_wkd_host_at_all_is_absent(self):
        rc, j, err = lookup(self.cfg, "x@none.test")
        src = wkd(j)
        self.assertEqual((rc, src["outcome"], src["method"], src["host"]), (0, "absent", "", "none.test"), err)
        self.assertEqual(src["detail"], "openpgpkey.none.test: no address (nxdomain); none.test: no address (nxdomain)")

    def test_server_down_is_a_temporary_failure_not_no_key(self):
        rc, j, err = lookup(self.cfg, "wendy@down.test")
        self.assertEqual(rc, 1, err)
        src = wkd(j)
        self.assertEqual((j["pgp"]["outcome"], src["outcome"], src["method"], src["host"]),
                         ("tempfail", "tempfail", "advanced", "openpgpkey.down.test"))
        self.assertEqual(src["detail"], "connect: Connection refused")
        self.assertEqual(F["server"].requests, [])  # no fallback to down.test's direct method
        # (That such a lookup is never cached is checked in process: crypto_keys_test.cpp.)

    def test_5xx_is_a_temporary_failure(self):
        rc, j, err = lookup(self.cfg, "oops@adv.test")
        self.assertEqual((rc, j["pgp"]["outcome"], wkd(j)["detail"]), (1, "tempfail", "HTTP 503"))

    def test_unverified_certificate_is_a_temporary_failure(self):
        rc, j, err = lookup(self.cfg, "wendy@badtls.test")
        src = wkd(j)
        self.assertEqual((rc, src["outcome"]), (1, "tempfail"), err)
        self.assertTrue(src["detail"].startswith("TLS: certificate not verified: "), src["detail"])
        # Nor does a trust store without the test CA accept the right name.
        rc, j, err = lookup(config(wkd_ca_file=os.path.join(F["dir"], "ca", "wkd.crt")), "wendy@adv.test")
        self.assertEqual((rc, wkd(j)["outcome"]), (1, "tempfail"), err)
        self.assertTrue(wkd(j)["detail"].startswith("TLS: certificate not verified: "), wkd(j)["detail"])

    def test_key_for_another_address_is_refused_with_the_reason(self):
        rc, j, err = lookup(self.cfg, "mallory@adv.test")
        src = wkd(j)
        self.assertEqual((rc, j["pgp"]["outcome"], src["outcome"], src["detail"]),
                         (0, "absent", "absent", "no usable key in the WKD answer"), err)
        self.assertEqual(ct.refusals(src), [(F["wendy"], "no valid user ID for mallory@adv.test")])

    def test_an_answer_that_is_not_a_key_is_refused(self):
        rc, j, err = lookup(self.cfg, "junk@adv.test")
        src = wkd(j)
        self.assertEqual((rc, src["outcome"]), (0, "absent"), err)
        self.assertEqual(ct.refusals(src), [("", "the answer holds no importable OpenPGP key")])

    def test_off_by_default_and_says_so(self):
        rc, j, err = lookup(config(sources="{dns_openpgpkey: false, dns_smimea: false}"), "wendy@adv.test")
        src = wkd(j)
        self.assertEqual((rc, j["pgp"]["outcome"], src["enabled"], src["detail"]),
                         (0, "absent", False, "crypto.sources.wkd is off"), err)
        self.assertEqual(F["server"].requests, [])

    def test_text_report_names_method_and_host(self):
        rc, out, err = lookup(self.cfg, "victor@dir.test", text=True)
        self.assertEqual(rc, 0, err)
        self.assertIn("  wkd: found (direct method, dir.test)\n", out)
        rc, out, err = lookup(self.cfg, "mallory@adv.test", text=True)
        self.assertIn("  wkd: absent (advanced method, openpgpkey.adv.test): no usable key in the WKD answer\n", out)
        self.assertIn("    refused %s " % F["wendy"], out)

    def test_end_to_end_pgp_mime_that_gpg_decrypts(self):
        to = "wendy@adv.test"
        r = subprocess.run([BIN, "keys", "encrypt", "--config", self.cfg, "--to", to, "--method", "pgp"],
                           input=ct.message(to), capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        armor = ct.pgp_payload(self, r.stdout, to)
        d = ct.gpg(F["r"], "--status-fd", "2", "--decrypt", input=armor, check=False)
        self.assertEqual(d.returncode, 0, d.stderr.decode(errors="replace"))
        self.assertEqual(d.stdout, ct.expected_inner(to))


if __name__ == "__main__":
    unittest.main()
