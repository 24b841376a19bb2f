"""Interoperability tests of crypto/ through `sealgate keys lookup` and
`sealgate keys encrypt`: what sealgate produces is decrypted by the gpg and
openssl command lines with the recipients' private keys and compared octet for
octet with the original entity; Python's email package checks the structure.
Keys and certificates are made here (gpg, openssl); OPENPGPKEY and SMIMEA come
from a DNSSEC-signed zone (nsd behind a validating unbound) and from an
unsigned one. Addresses: 127.0.4.0/24 only. Every process started here is
stopped, gpg-agents included (gpgconf --kill all per GNUPGHOME)."""
import base64
import email
import email.policy
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import probe_peers as peers

from harness import BIN, free_port

SILENT_DNS_ADDR = "127.0.4.11"  # nothing listens here: a resolver that never answers
F = {}  # the fixture: paths, fingerprints, ports (built once in setUpModule)


def run(argv, env_home=None, check=True, input=None, cwd=None):
    env = dict(os.environ)
    if env_home:
        env["GNUPGHOME"] = env_home
    r = subprocess.run(argv, env=env, input=input, capture_output=True, cwd=cwd, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), r.stderr.decode(errors="replace")))
    return r


def gpg(home, *args, **kw):
    return run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args], env_home=home, **kw)


def fingerprint(home, uid, secret=False):
    out = gpg(home, "--with-colons", "--list-secret-keys" if secret else "--list-keys", uid).stdout.decode()
    return next(l.split(":")[9] for l in out.splitlines() if l.startswith("fpr:"))


def hashed(address, label):
    local, domain = address.rsplit("@", 1)
    return hashlib.sha256(local.encode()).hexdigest()[:56] + "." + label + "." + domain


def generic_rr(rtype, data):
    return "TYPE%d \\# %d %s" % (rtype, len(data), data.hex())


# --- keys and certificates ------------------------------------------------------------------

def make_pgp_keys(d):
    r, g = os.path.join(d, "r"), os.path.join(d, "g")
    for h in (r, g):
        os.mkdir(h, 0o700)
    F["r"], F["g"] = r, g
    # RSA-3072: a signing primary and an encryption subkey, as gpg makes by default.
    gpg(r, "--quick-gen-key", "Alice <alice@example.test>", "rsa3072", "sign", "never")
    F["alice"] = fingerprint(r, "alice@example.test")
    gpg(r, "--quick-add-key", F["alice"], "rsa3072", "encr", "never")
    for name in ("carol", "fay", "rob", "dan", "ian"):  # Curve25519: ed25519 primary, cv25519 subkey
        domain = {"dan": "signed.test", "ian": "plain.test"}.get(name, "example.test")
        gpg(r, "--quick-gen-key", "%s <%s@%s>" % (name.title(), name, domain), "future-default", "default", "never")
        F[name] = fingerprint(r, "%s@%s" % (name, domain))
    # Expired: made in 2020 with one day of validity.
    gpg(r, "--faked-system-time", "20200101T000000!", "--quick-gen-key", "Eve <eve@example.test>",
        "future-default", "default", "1d")
    F["eve"] = fingerprint(r, "eve@example.test")
    # Revoked: the revocation certificate gpg made at generation, imported.
    with open(os.path.join(r, "openpgp-revocs.d", F["rob"] + ".rev")) as f:
        gpg(r, "--import", input=f.read().replace(":-----BEGIN", "-----BEGIN").encode())
    gpg(r, "--quick-gen-key", "Sam <sam@example.test>", "ed25519", "sign", "never")  # sign-only
    F["sam"] = fingerprint(r, "sam@example.test")
    # A user ID that merely contains bob@example.test (gpg's substring search finds it).
    gpg(r, "--quick-gen-key", "Bob <bob@example.test.other.test>", "future-default", "default", "never")
    F["bob"] = fingerprint(r, "bob@example.test.other.test")
    # The operator imports the recipients' public keys (not dan's and ian's: those come from DNS).
    for who in ("alice", "carol", "fay", "rob", "eve", "sam", "bob"):
        gpg(g, "--import", input=gpg(r, "--export", F[who]).stdout)
    # The gateway's own signing key, and the recipients trust nothing but can check it.
    gpg(g, "--quick-gen-key", "Gateway <gateway@gw.test>", "ed25519", "sign", "never")
    F["gateway"] = fingerprint(g, "gateway@gw.test", secret=True)
    gpg(r, "--import", input=gpg(g, "--export", F["gateway"]).stdout)
    F["dan_pgp"] = gpg(r, "--export", "--export-options", "export-minimal", F["dan"]).stdout
    F["ian_pgp"] = gpg(r, "--export", "--export-options", "export-minimal", F["ian"]).stdout


CA_CNF = """[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
"""


def make_certificates(d):
    ca = os.path.join(d, "ca")
    os.mkdir(ca)
    F["ca_dir"] = ca
    with open(os.path.join(ca, "ca.cnf"), "w") as f:
        f.write(CA_CNF)
    open(os.path.join(ca, "index.txt"), "w").close()
    with open(os.path.join(ca, "serial"), "w") as f:
        f.write("1000\n")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "30", "-subj", "/CN=sealgate test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], cwd=ca)
    F["ca"] = os.path.join(ca, "ca.pem")

    def issue(name, address, key="rsa:2048", usage="digitalSignature,keyEncipherment", dates=None, self_signed=False):
        keyfile, certfile = os.path.join(ca, name + ".key"), os.path.join(ca, name + ".pem")
        ext = os.path.join(ca, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=email:%s\nkeyUsage=critical,%s\nextendedKeyUsage=emailProtection\n"
                    "basicConstraints=CA:FALSE\n" % (address, usage))
        newkey = ["-newkey", key] if key.startswith("rsa") else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + key]
        if self_signed:
            run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", keyfile, "-out", certfile, "-days", "30",
                 "-subj", "/CN=" + name, "-addext", "subjectAltName=email:" + address,
                 "-addext", "keyUsage=critical," + usage], cwd=ca)
        else:
            run(["openssl", "req", "-new", *newkey, "-nodes", "-keyout", keyfile, "-out", name + ".csr",
                 "-subj", "/CN=" + name], cwd=ca)
            period = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "30"]
            run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
                 "-in", name + ".csr", "-out", certfile, "-extfile", ext, "-notext", *period], cwd=ca)
        F[name + "_cert"], F[name + "_key"] = certfile, keyfile
        return certfile

    issue("alice", "alice@example.test")                                       # RSA
    issue("carol", "carol@example.test", key="prime256v1", usage="digitalSignature,keyAgreement")  # EC
    issue("eve", "eve@example.test", dates=("20200101000000Z", "20210101000000Z"))  # expired
    issue("sam", "sam@example.test", usage="digitalSignature")                 # sign-only
    issue("ursula", "ursula@example.test", self_signed=True)                   # no chain to the CA
    issue("dan", "dan@signed.test", key="prime256v1", usage="digitalSignature,keyAgreement", self_signed=True)
    issue("ian", "ian@plain.test", self_signed=True)
    issue("gateway", "gateway@gw.test", usage="digitalSignature")
    issue("pam", "pam@signed.test")                                            # SMIMEA PKIX-EE, chains to the CA
    # The operator's directory: any file names.
    certs = os.path.join(d, "certs")
    os.mkdir(certs)
    F["certs"] = certs
    for i, who in enumerate(("alice", "carol", "eve", "sam", "ursula")):
        shutil.copy(F[who + "_cert"], os.path.join(certs, "recipient-%d.crt" % i))
    with open(os.path.join(certs, "notes.txt"), "w") as f:
        f.write("not a certificate\n")
    F["der"] = {who: run(["openssl", "x509", "-in", F[who + "_cert"], "-outform", "DER"]).stdout
                for who in ("alice", "dan", "ian", "pam")}


# --- DNS: a signed zone (nsd + validating unbound) and an unsigned one (unbound local-data) ----

def start_dns(d):
    dns = os.path.join(d, "dns")
    os.mkdir(dns)
    zone = ["$ORIGIN signed.test.", "$TTL 300",
            "@ IN SOA ns.signed.test. hostmaster.signed.test. 1 3600 600 86400 60",
            "@ IN NS ns.signed.test.", "ns IN A 127.0.0.1",
            hashed("dan@signed.test", "_openpgpkey") + ". IN " + generic_rr(61, F["dan_pgp"]),
            # mal's record holds dan's key: the user ID does not match.
            hashed("mal@signed.test", "_openpgpkey") + ". IN " + generic_rr(61, F["dan_pgp"]),
            hashed("dan@signed.test", "_smimecert") + ". IN " + generic_rr(53, bytes([3, 0, 0]) + F["der"]["dan"]),
            # PKIX-EE with alice's certificate under mal's name: the address does not match.
            hashed("mal@signed.test", "_smimecert") + ". IN " + generic_rr(53, bytes([1, 0, 0]) + F["der"]["alice"]),
            hashed("pam@signed.test", "_smimecert") + ". IN " + generic_rr(53, bytes([1, 0, 0]) + F["der"]["pam"]),
            # Not an OpenPGP key at all.
            hashed("junk@signed.test", "_openpgpkey") + ". IN " + generic_rr(61, bytes([1, 2, 3, 4])),
            # A digest only: nothing to encrypt to.
            hashed("dig@signed.test", "_smimecert") + ". IN " + generic_rr(53, bytes([3, 0, 1]) + hashlib.sha256(F["der"]["dan"]).digest())]
    with open(os.path.join(dns, "signed.test.zone"), "w") as f:
        f.write("\n".join(zone) + "\n")
    plain = [hashed("ian@plain.test", "_openpgpkey") + ". 300 IN " + generic_rr(61, F["ian_pgp"]),
             hashed("ian@plain.test", "_smimecert") + ". 300 IN " + generic_rr(53, bytes([3, 0, 0]) + F["der"]["ian"]),
             "plain.test. 300 IN SOA ns.plain.test. hostmaster.plain.test. 1 3600 600 86400 60"]
    F["dns_cleanups"] = []
    server = peers.Dns(dns, {"signed.test": "\n".join(zone) + "\n"}, {}, ["plain.test", "example.test"], plain,
                       F["dns_cleanups"])
    F["dns_server"] = "127.0.0.1:%d" % server.port


def stop_dns():
    for fn in reversed(F.get("dns_cleanups", [])):
        fn()


def kill_agents():
    for home in (F.get("r"), F.get("g"), F.get("g") and os.path.join(F["g"], "discovered")):
        if home and os.path.isdir(home):
            run(["gpgconf", "--kill", "all"], env_home=home, check=False)


def setUpModule():
    # Short paths: gpg-agent's socket path must fit in sun_path.
    d = tempfile.mkdtemp(prefix="sg", dir="/tmp")
    unittest.addModuleCleanup(shutil.rmtree, d, True)
    unittest.addModuleCleanup(kill_agents)
    unittest.addModuleCleanup(stop_dns)
    F["dir"] = d
    make_pgp_keys(d)
    make_certificates(d)
    start_dns(d)


# --- running sealgate ----------------------------------------------------------------------

def config(**crypto):
    """A config file with a crypto: section; crypto values are YAML snippets."""
    settings = {"gnupg_home": F["g"], "smime_certificates": F["certs"], "smime_ca_file": F["ca"]}
    settings.update(crypto)
    fd, path = tempfile.mkstemp(prefix="cfg", suffix=".yaml", dir=F["dir"])
    with os.fdopen(fd, "w") as f:
        f.write("listeners:\n  - {name: a, address: 127.0.4.1, port: 2525, tls: none, auth: none}\n"
                "dns: {servers: [\"%s\"], timeout: 3s}\ncrypto:\n" % crypto.pop("_dns", F["dns_server"]))
        for k, v in settings.items():
            if k != "_dns":
                f.write("  %s: %s\n" % (k, v))
    return path


def lookup(cfg, address):
    r = subprocess.run([BIN, "keys", "lookup", "--config", cfg, address, "--json"], capture_output=True, timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.stdout else None), r.stderr.decode()


def encrypt(cfg, message, *args):
    r = subprocess.run([BIN, "keys", "encrypt", "--config", cfg, *args], input=message, capture_output=True, timeout=60)
    return r.returncode, r.stdout, r.stderr.decode()


def source(result, kind, name):
    return next(s for s in result[kind]["sources"] if s["source"] == name)


def refusals(src):
    return [(c["id"], c["why"]) for c in src["candidates"] if not c["usable"]]


# --- the test message ----------------------------------------------------------------------

random.seed(7)
ATTACHMENT = bytes(random.randrange(256) for _ in range(3000))
ROUTING = [b"From: App <app@example.org>", b"To: %s", b"Cc: other@example.org",
           b"Date: Wed, 25 Nov 2026 21:00:00 +0000", b"Message-ID: <t1@example.org>",
           b"Subject: Lab results for patient 4711", b"X-Mailer: sealgate-test",
           b"Received: from app (app [127.0.4.1])\r\n\tby gw.test; Wed, 25 Nov 2026 21:00:00 +0000"]
BODY = (b"--outer\r\n"
        b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
        b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"Gr\xc3\xbc\xc3\x9fe \xe2\x80\x93 trailing space   \r\n" + b"x" * 990 + b"\r\n"
        b"--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"<p>Gr\xc3\xbc\xc3\x9fe</p>\r\n--inner--\r\n\r\n"
        b"--outer\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\n"
        b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.bin\"\r\n\r\n"
        + b"".join(base64.b64encode(ATTACHMENT)[i:i + 76] + b"\r\n" for i in range(0, 4000, 76)) +
        b"--outer--\r\n")
CONTENT_TYPE = b"Content-Type: multipart/mixed;\r\n boundary=\"outer\""


def message(to):
    head = [h.replace(b"%s", to.encode()) if b"%s" in h else h for h in ROUTING]
    return b"\r\n".join(head + [b"MIME-Version: 1.0", CONTENT_TYPE]) + b"\r\n\r\n" + BODY


def expected_inner(to, protected=True):
    """What crypto/mime.cpp promises to encrypt: copies of the user-facing fields,
    the content fields (Content-Type marked), the empty line, the body unchanged."""
    fields = [h.replace(b"%s", to.encode()) if b"%s" in h else h for h in ROUTING]
    user = [h for h in fields if h.split(b":")[0].lower() in
            (b"from", b"to", b"cc", b"date", b"message-id", b"subject")] if protected else []
    ct = CONTENT_TYPE + (b"; protected-headers=\"v1\"" if protected else b"")
    return b"".join(h + b"\r\n" for h in user) + ct + b"\r\n\r\n" + BODY


# A binary part (RFC 3030 BINARYMIME content): every octet but CR and LF, then CRLF.
BINARY = bytes(b for b in range(256) if b not in (10, 13)) * 4 + b"\r\n"


def binary_message(to):
    return (b"From: app@example.org\r\nTo: " + to.encode() + b"\r\nSubject: scan\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" + BINARY)


def binary_inner(to):
    return (b"From: app@example.org\r\nTo: " + to.encode() + b"\r\nSubject: scan\r\n"
            b"Content-Type: application/octet-stream; protected-headers=\"v1\"\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n" + BINARY)


def check_outer(test, out, to, content_type, subject=b"..."):
    """The routing headers survive, the Subject is neutral, the structure is as the RFC says."""
    test.assertTrue(out.endswith(b"\r\n"))
    test.assertNotIn(b"\n", out.replace(b"\r\n", b""), "bare LF in the output")
    test.assertNotIn(b"Lab results", out, "the real subject leaked outside")
    m = email.message_from_bytes(out, policy=email.policy.compat32)
    test.assertEqual(m.get_content_type(), content_type)
    test.assertEqual(m["Subject"], subject.decode())
    for name, value in (("From", "App <app@example.org>"), ("To", to), ("Cc", "other@example.org"),
                        ("Message-ID", "<t1@example.org>"), ("X-Mailer", "sealgate-test")):
        test.assertEqual(m[name], value)
    test.assertIn(b"\r\nReceived: from app (app [127.0.4.1])\r\n\tby gw.test;", out)
    test.assertEqual(m.get_all("MIME-Version"), ["1.0"])
    return m


def pgp_payload(test, out, to):
    m = check_outer(test, out, to, "multipart/encrypted")
    test.assertEqual(m.get_param("protocol"), "application/pgp-encrypted")
    parts = m.get_payload()
    test.assertEqual(len(parts), 2)  # RFC 3156 4
    test.assertEqual(parts[0].get_content_type(), "application/pgp-encrypted")
    test.assertEqual(parts[0].get_payload().strip(), "Version: 1")
    test.assertEqual(parts[1].get_content_type(), "application/octet-stream")
    armor = parts[1].get_payload()
    test.assertTrue(armor.startswith("-----BEGIN PGP MESSAGE-----"))
    return armor.encode()


def gpg_decrypt(armor):
    r = gpg(F["r"], "--status-fd", "2", "--decrypt", input=armor, check=False)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def cms(*args, input=None, check=True):
    return run(["openssl", "cms", *args], input=input, check=check)


class Pgp(unittest.TestCase):
    def encrypt_and_decrypt(self, to, fpr_of_key_used, *extra):
        rc, out, err = encrypt(config(), message(to), "--to", to, "--method", "pgp", *extra)
        self.assertEqual(rc, 0, err)
        rc, plain, status = gpg_decrypt(pgp_payload(self, out, to))
        self.assertEqual(rc, 0, status)
        self.assertEqual(plain, expected_inner(to))
        # Which key gpg used: the recipient's encryption subkey.
        subkeys = [l.split(":")[9] for l in gpg(F["r"], "--with-colons", "--list-keys", fpr_of_key_used)
                   .stdout.decode().splitlines() if l.startswith("fpr:")]
        self.assertTrue(any("ENC_TO " + fp[-16:] in status for fp in subkeys), status)
        return plain, status

    def test_rsa3072_round_trip_through_gpg(self):
        plain, status = self.encrypt_and_decrypt("alice@example.test", F["alice"])
        self.assertIn("[GNUPG:] DECRYPTION_OKAY", status)
        # An independent MIME parser reads the decrypted entity: nested parts, 8-bit text, the attachment.
        inner = email.message_from_bytes(plain, policy=email.policy.default)
        self.assertEqual(inner["Subject"], "Lab results for patient 4711")
        self.assertEqual(inner.get_param("protected-headers"), "v1")
        alt, att = inner.get_payload()
        self.assertEqual(alt.get_content_type(), "multipart/alternative")
        self.assertEqual(alt.get_payload()[0].get_payload(decode=True).decode().splitlines()[1], "x" * 990)
        self.assertEqual(att.get_payload(decode=True), ATTACHMENT)

    def test_curve25519_round_trip_through_gpg(self):
        _, status = self.encrypt_and_decrypt("carol@example.test", F["carol"])
        self.assertIn("[GNUPG:] DECRYPTION_OKAY", status)

    def test_signed_then_encrypted(self):
        cfg = config(pgp_signing_key=F["gateway"])
        to = "alice@example.test"
        rc, out, err = encrypt(cfg, message(to), "--to", to, "--method", "pgp", "--sign")
        self.assertEqual(rc, 0, err)
        rc, plain, status = gpg_decrypt(pgp_payload(self, out, to))
        self.assertEqual((rc, plain), (0, expected_inner(to)), status)
        self.assertIn("[GNUPG:] VALIDSIG " + F["gateway"], status)
        self.assertIn("[GNUPG:] GOODSIG", status)

    def test_two_recipients_each_decrypt(self):
        rc, out, err = encrypt(config(), message("alice@example.test"), "--to", "alice@example.test",
                               "--to", "carol@example.test", "--method", "pgp")
        self.assertEqual(rc, 0, err)
        rc, plain, status = gpg_decrypt(pgp_payload(self, out, "alice@example.test"))
        self.assertEqual((rc, plain), (0, expected_inner("alice@example.test")), status)
        self.assertEqual(status.count("[GNUPG:] ENC_TO "), 2, status)

    def test_sign_without_a_signing_key_is_refused(self):
        rc, out, err = encrypt(config(), message("alice@example.test"), "--to", "alice@example.test",
                               "--method", "pgp", "--sign")
        self.assertEqual((rc, out), (1, b""))
        self.assertIn("signing asked for, but crypto.pgp_signing_key is not set", err)

    def test_protected_headers_off_keeps_the_subject(self):
        to = "carol@example.test"
        rc, out, err = encrypt(config(protected_headers="false"), message(to), "--to", to, "--method", "pgp")
        self.assertEqual(rc, 0, err)
        m = email.message_from_bytes(out)
        self.assertEqual(m["Subject"], "Lab results for patient 4711")
        armor = m.get_payload()[1].get_payload().encode()
        rc, plain, status = gpg_decrypt(armor)
        self.assertEqual(plain, expected_inner(to, protected=False))

    def test_configured_subject_text(self):
        to = "carol@example.test"
        rc, out, err = encrypt(config(subject='"Encrypted message"'), message(to), "--to", to, "--method", "pgp")
        self.assertEqual(rc, 0, err)
        check_outer(self, out, to, "multipart/encrypted", subject=b"Encrypted message")

    def test_already_encrypted_is_not_encrypted_again(self):
        to = "alice@example.test"
        rc, once, err = encrypt(config(), message(to), "--to", to, "--method", "pgp")
        self.assertEqual(rc, 0, err)
        rc, twice, err = encrypt(config(), once, "--to", to, "--method", "pgp")
        self.assertEqual((rc, twice), (0, once))
        self.assertIn("already encrypted; unchanged", err)

    def test_binary_content_survives_exactly(self):
        to = "carol@example.test"
        rc, out, err = encrypt(config(), binary_message(to), "--to", to, "--method", "pgp")
        self.assertEqual(rc, 0, err)
        m = email.message_from_bytes(out)
        rc, plain, status = gpg_decrypt(m.get_payload()[1].get_payload().encode())
        self.assertEqual((rc, plain), (0, binary_inner(to)), status)

    def test_lf_input_is_made_crlf(self):
        to = "carol@example.test"
        rc, out, err = encrypt(config(), message(to).replace(b"\r\n", b"\n"), "--to", to, "--method", "pgp")
        self.assertEqual(rc, 0, err)
        rc, plain, status = gpg_decrypt(pgp_payload(self, out, to))
        self.assertEqual(plain, expected_inner(to))


class Smime(unittest.TestCase):
    def encrypt(self, to, cfg=None, *extra):
        rc, out, err = encrypt(cfg or config(), message(to), "--to", to, "--method", "smime", *extra)
        self.assertEqual(rc, 0, err)
        return out

    def decrypt(self, out, who):
        return cms("-decrypt", "-binary", "-recip", F[who + "_cert"], "-inkey", F[who + "_key"], input=out).stdout

    def structure(self, out):
        return cms("-cmsout", "-print", input=out).stdout.decode()

    def test_rsa_oaep_aes256_cbc_by_default(self):
        to = "alice@example.test"
        out = self.encrypt(to)
        m = check_outer(self, out, to, "application/pkcs7-mime")
        self.assertEqual(m.get_param("smime-type"), "enveloped-data")
        self.assertEqual(m["Content-Transfer-Encoding"], "base64")
        self.assertEqual(self.decrypt(out, "alice"), expected_inner(to))
        printed = self.structure(out)
        # RSAES-OAEP with SHA-256 (RFC 8551 2.3), AES-256-CBC content encryption.
        self.assertTrue(re.search(r"rsaesOaep.*OBJECT +:sha256.*mgf1.*:sha256.*aes-256-cbc", printed, re.S), printed[:2000])

    def test_rsa_pkcs1v15_by_config(self):
        to = "alice@example.test"
        out = self.encrypt(to, config(rsa_padding="pkcs1v15"))
        self.assertEqual(self.decrypt(out, "alice"), expected_inner(to))
        printed = self.structure(out)
        self.assertTrue("rsaEncryption" in printed and "rsaesOaep" not in printed, printed[:2000])

    def test_ec_certificate_gets_ecdh(self):
        to = "carol@example.test"
        out = self.encrypt(to)
        self.assertEqual(self.decrypt(out, "carol"), expected_inner(to))
        printed = self.structure(out)
        self.assertTrue("d.kari" in printed and "dhSinglePass-stdDH" in printed, printed[:2000])  # RFC 5753

    def test_aes256_gcm_is_auth_enveloped_data(self):
        to = "alice@example.test"
        out = self.encrypt(to, config(smime_cipher="aes-256-gcm"))
        m = email.message_from_bytes(out)
        self.assertEqual(m.get_param("smime-type"), "authEnveloped-data")
        self.assertEqual(self.decrypt(out, "alice"), expected_inner(to))
        printed = self.structure(out)
        self.assertTrue("id-smime-ct-authEnvelopedData" in printed and "aes-256-gcm" in printed, printed[:2000])

    def test_signed_then_encrypted_verifies_with_openssl(self):
        to = "carol@example.test"
        cfg = config(smime_signing_certificate=F["gateway_cert"], smime_signing_key=F["gateway_key"])
        out = self.encrypt(to, cfg, "--sign")
        signed = self.decrypt(out, "carol")
        inner = email.message_from_bytes(signed)
        self.assertEqual((inner.get_content_type(), inner.get_param("smime-type")),
                         ("application/pkcs7-mime", "signed-data"))
        r = cms("-verify", "-binary", "-CAfile", F["ca"], "-purpose", "any", input=signed, check=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"Verification successful", r.stderr)
        self.assertEqual(r.stdout, expected_inner(to))

    def test_two_recipients_each_decrypt(self):
        rc, out, err = encrypt(config(), message("alice@example.test"), "--to", "alice@example.test",
                               "--to", "carol@example.test", "--method", "smime")
        self.assertEqual(rc, 0, err)
        for who in ("alice", "carol"):  # one RSA key transport, one ECDH key agreement
            self.assertEqual(self.decrypt(out, who), expected_inner("alice@example.test"))

    def test_binary_content_survives_exactly(self):
        to = "alice@example.test"
        rc, out, err = encrypt(config(), binary_message(to), "--to", to, "--method", "smime")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.decrypt(out, "alice"), binary_inner(to))

    def test_already_encrypted_is_not_encrypted_again(self):
        to = "alice@example.test"
        once = self.encrypt(to)
        rc, twice, err = encrypt(config(), once, "--to", to, "--method", "smime")
        self.assertEqual((rc, twice), (0, once))
        self.assertIn("already encrypted; unchanged", err)


class Refusals(unittest.TestCase):
    """Each unfit key or certificate is refused, with its reason."""

    @classmethod
    def setUpClass(cls):
        cls.cfg = config()

    def refused(self, address, kind, src):
        rc, j, err = lookup(self.cfg, address)
        self.assertEqual(rc, 0, err)
        self.assertEqual(j[kind]["outcome"], "absent")
        return refusals(source(j, kind, src))

    def test_expired(self):
        self.assertEqual(self.refused("eve@example.test", "pgp", "keyring"), [(F["eve"], "expired")])
        (_, why), = self.refused("eve@example.test", "smime", "smime_directory")
        self.assertEqual(why, "expired on 2021-01-01")

    def test_revoked(self):
        self.assertEqual(self.refused("rob@example.test", "pgp", "keyring"), [(F["rob"], "revoked")])

    def test_sign_only(self):
        self.assertEqual(self.refused("sam@example.test", "pgp", "keyring"),
                         [(F["sam"], "cannot encrypt (sign-only key)")])
        (_, why), = self.refused("sam@example.test", "smime", "smime_directory")
        self.assertEqual(why, "key usage lacks keyEncipherment (RFC 8550 4.4.2)")

    def test_address_mismatch(self):
        self.assertEqual(self.refused("bob@example.test", "pgp", "keyring"),
                         [(F["bob"], "no valid user ID for bob@example.test")])

    def test_certificate_without_chain(self):
        (_, why), = self.refused("ursula@example.test", "smime", "smime_directory")
        self.assertEqual(why, "no chain to the trust store: self-signed certificate")

    def test_encrypting_to_an_unfit_key_fails_with_the_reason(self):
        rc, out, err = encrypt(self.cfg, message("eve@example.test"), "--to", "eve@example.test", "--method", "pgp")
        self.assertEqual((rc, out), (1, b""))
        self.assertIn("pgp: no usable key for eve@example.test; keyring: absent (no usable key)", err)

    def test_text_report(self):
        r = subprocess.run([BIN, "keys", "lookup", "--config", self.cfg, "eve@example.test"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[:3], ["eve@example.test", "pgp: absent", "  keyring: absent: no usable key"])
        self.assertEqual(lines[3], "    refused %s cv25519 <eve@example.test>: expired" % F["eve"])
        self.assertIn("  dns_openpgpkey: absent insecure: no OPENPGPKEY record (nxdomain)", lines)

    def test_usable_keys_are_found(self):
        rc, j, err = lookup(self.cfg, "alice@example.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["pgp"]["outcome"], j["pgp"]["key"], j["pgp"]["discovered"]), ("found", F["alice"], False))
        self.assertEqual(j["smime"]["outcome"], "found")
        kr = source(j, "pgp", "keyring")
        self.assertEqual(kr["candidates"][0]["description"], "rsa3072")
        rc, j, err = lookup(self.cfg, "carol@example.test")
        self.assertEqual(source(j, "pgp", "keyring")["candidates"][0]["description"], "cv25519")
        self.assertIn("ec prime256v1", source(j, "smime", "smime_directory")["candidates"][0]["description"])

    def test_plus_tag_folded_only_when_configured(self):
        rc, j, _ = lookup(self.cfg, "fay+news@example.test")
        self.assertEqual((rc, j["pgp"]["outcome"]), (0, "absent"))
        rc, j, _ = lookup(config(fold_plus_tag="true"), "fay+news@example.test")
        self.assertEqual((rc, j["pgp"]["outcome"], j["pgp"]["key"]), (0, "found", F["fay"]))

    def test_domain_is_case_insensitive_local_part_is_not(self):
        rc, j, _ = lookup(self.cfg, "alice@EXAMPLE.Test")
        self.assertEqual(j["pgp"]["outcome"], "found")
        rc, j, _ = lookup(self.cfg, "Alice@example.test")
        self.assertEqual(j["pgp"]["outcome"], "absent")
        self.assertEqual(refusals(source(j, "pgp", "keyring")), [(F["alice"], "no valid user ID for Alice@example.test")])
        # A local part that gpg would read as another kind of key specification is still an address.
        for odd in ("=alice@example.test", "0x204C4C5B@example.test", "#1@example.test", "<alice@example.test"):
            rc, j, err = lookup(self.cfg, odd)
            self.assertEqual((rc, j["pgp"]["outcome"]), (0, "absent"), odd + err)

    def test_sources_can_be_switched_off(self):
        rc, j, _ = lookup(config(sources="{keyring: false, smime_directory: false}"), "alice@example.test")
        self.assertEqual((j["pgp"]["outcome"], j["smime"]["outcome"]), ("absent", "absent"))
        self.assertEqual(source(j, "pgp", "keyring")["detail"], "crypto.sources.keyring is off")
        self.assertFalse(source(j, "smime", "smime_directory")["enabled"])


class Dns(unittest.TestCase):
    """OPENPGPKEY and SMIMEA from DNS: secure answers usable, insecure ones refused unless relaxed."""

    @classmethod
    def setUpClass(cls):
        cls.cfg = config()

    def test_secure_openpgpkey_is_used_and_kept_out_of_the_operator_keyring(self):
        rc, j, err = lookup(self.cfg, "dan@signed.test")
        self.assertEqual(rc, 0, err)
        self.assertEqual((j["pgp"]["outcome"], j["pgp"]["key"], j["pgp"]["discovered"]), ("found", F["dan"], True))
        src = source(j, "pgp", "dns_openpgpkey")
        self.assertEqual((src["outcome"], src["secure"]), ("found", True))
        self.assertEqual(source(j, "pgp", "keyring")["outcome"], "absent")
        rc, out, err = encrypt(self.cfg, message("dan@signed.test"), "--to", "dan@signed.test", "--method", "pgp")
        self.assertEqual(rc, 0, err)
        rc, plain, status = gpg_decrypt(pgp_payload(self, out, "dan@signed.test"))
        self.assertEqual((rc, plain), (0, expected_inner("dan@signed.test")), status)
        # The operator's keyring does not hold it: it went to gnupg_home/discovered.
        self.assertNotEqual(gpg(F["g"], "--list-keys", F["dan"], check=False).returncode, 0)

    def test_secure_openpgpkey_signed_then_encrypted(self):
        cfg = config(pgp_signing_key=F["gateway"])
        rc, out, err = encrypt(cfg, message("dan@signed.test"), "--to", "dan@signed.test", "--method", "pgp", "--sign")
        self.assertEqual(rc, 0, err)
        rc, plain, status = gpg_decrypt(pgp_payload(self, out, "dan@signed.test"))
        self.assertEqual((rc, plain), (0, expected_inner("dan@signed.test")), status)
        self.assertIn("[GNUPG:] VALIDSIG " + F["gateway"], status)

    def test_insecure_openpgpkey_refused_unless_relaxed(self):
        rc, j, err = lookup(self.cfg, "ian@plain.test")
        src = source(j, "pgp", "dns_openpgpkey")
        self.assertEqual((rc, j["pgp"]["outcome"], src["secure"]), (0, "absent", False))
        self.assertEqual(refusals(src), [(F["ian"], "answer not DNSSEC-secure (crypto.dns_require_secure)")])
        rc, j, err = lookup(config(dns_require_secure="false"), "ian@plain.test")
        self.assertEqual((j["pgp"]["outcome"], j["pgp"]["key"]), ("found", F["ian"]))

    def test_openpgpkey_for_another_address_is_refused(self):
        rc, j, _ = lookup(self.cfg, "mal@signed.test")
        self.assertEqual(refusals(source(j, "pgp", "dns_openpgpkey")), [(F["dan"], "no valid user ID for mal@signed.test")])

    def test_secure_absence(self):
        rc, j, _ = lookup(self.cfg, "nobody@signed.test")
        self.assertEqual(rc, 0)
        src = source(j, "pgp", "dns_openpgpkey")
        self.assertEqual((src["outcome"], src["secure"], src["detail"]), ("absent", True, "no OPENPGPKEY record (nxdomain)"))
        self.assertEqual(source(j, "smime", "dns_smimea")["detail"], "no SMIMEA record (nxdomain)")

    def test_secure_smimea_dane_ee_is_used(self):
        rc, j, err = lookup(self.cfg, "dan@signed.test")
        src = source(j, "smime", "dns_smimea")
        self.assertEqual((j["smime"]["outcome"], src["secure"], src["candidates"][0]["usable"]), ("found", True, True))
        self.assertTrue(src["candidates"][0]["description"].startswith("SMIMEA 3 0 0 ec prime256v1"))
        rc, out, err = encrypt(self.cfg, message("dan@signed.test"), "--to", "dan@signed.test", "--method", "smime")
        self.assertEqual(rc, 0, err)
        plain = cms("-decrypt", "-binary", "-recip", F["dan_cert"], "-inkey", F["dan_key"], input=out).stdout
        self.assertEqual(plain, expected_inner("dan@signed.test"))

    def test_smimea_refusals(self):
        rc, j, _ = lookup(self.cfg, "ian@plain.test")
        self.assertEqual([w for _, w in refusals(source(j, "smime", "dns_smimea"))],
                         ["answer not DNSSEC-secure (crypto.dns_require_secure)"])
        rc, j, _ = lookup(self.cfg, "mal@signed.test")
        self.assertEqual([w for _, w in refusals(source(j, "smime", "dns_smimea"))],
                         ["address mal@signed.test not in subjectAltName rfc822Name or emailAddress"])
        rc, j, _ = lookup(self.cfg, "dig@signed.test")
        self.assertEqual([w for _, w in refusals(source(j, "smime", "dns_smimea"))],
                         ["a digest or public key only: no certificate to encrypt to"])

    def test_secure_smimea_pkix_ee_chains_to_the_trust_store(self):
        rc, j, err = lookup(self.cfg, "pam@signed.test")
        src = source(j, "smime", "dns_smimea")
        self.assertEqual((rc, j["smime"]["outcome"], src["candidates"][0]["usable"]), (0, "found", True), err)
        self.assertTrue(src["candidates"][0]["description"].startswith("SMIMEA 1 0 0 rsa2048 CN=pam"))
        rc, out, err = encrypt(self.cfg, message("pam@signed.test"), "--to", "pam@signed.test", "--method", "smime")
        self.assertEqual(rc, 0, err)
        plain = cms("-decrypt", "-binary", "-recip", F["pam_cert"], "-inkey", F["pam_key"], input=out).stdout
        self.assertEqual(plain, expected_inner("pam@signed.test"))
        # Without the CA in the trust store the same record is refused.
        rc, j, err = lookup(config(smime_ca_file=F["dan_cert"]), "pam@signed.test")
        self.assertEqual([w for _, w in refusals(source(j, "smime", "dns_smimea"))],
                         ["no chain to the trust store: unable to get local issuer certificate"])

    def test_openpgpkey_that_is_not_a_key(self):
        rc, j, _ = lookup(self.cfg, "junk@signed.test")
        src = source(j, "pgp", "dns_openpgpkey")
        self.assertEqual((rc, src["outcome"], src["secure"]), (0, "absent", True))
        self.assertEqual(refusals(src), [("", "the record holds no importable OpenPGP key")])

    def test_failed_lookup_is_a_temporary_failure_not_no_key(self):
        cfg = config(_dns="%s:%d" % (SILENT_DNS_ADDR, free_port(SILENT_DNS_ADDR)))
        rc, j, err = lookup(cfg, "dan@signed.test")
        self.assertEqual(rc, 1, err)
        self.assertEqual((j["pgp"]["outcome"], j["smime"]["outcome"]), ("tempfail", "tempfail"))
        src = source(j, "pgp", "dns_openpgpkey")
        self.assertTrue(src["detail"].startswith("OPENPGPKEY lookup failed: "), src["detail"])
        # A key the operator imported still wins: found is found.
        rc, j, err = lookup(cfg, "alice@example.test")
        self.assertEqual((rc, j["pgp"]["outcome"]), (1, "found"))
        rc, out, err = encrypt(cfg, message("dan@signed.test"), "--to", "dan@signed.test", "--method", "pgp")
        self.assertEqual((rc, out), (1, b""))
        self.assertIn("dns_openpgpkey: tempfail (OPENPGPKEY lookup failed", err)


class Usage(unittest.TestCase):
    def test_usage_errors_exit_2(self):
        for argv in (["keys"], ["keys", "lookup", "a@b.test"], ["keys", "lookup", "--config", "x", "not-an-address"],
                     ["keys", "encrypt", "--config", "x"], ["keys", "encrypt", "--config", "x", "--to", "a@b.test",
                                                            "--method", "rot13"]):
            r = subprocess.run([BIN, *argv], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn("usage:", r.stderr)

    def test_missing_gnupg_home_exits_1_with_the_reason(self):
        cfg = config(gnupg_home=os.path.join(F["dir"], "nothere"))
        rc, j, err = lookup(cfg, "alice@example.test")
        self.assertEqual((rc, j), (1, None))
        self.assertEqual(err, "sealgate: keys: crypto.gnupg_home %s: not a directory\n" % os.path.join(F["dir"], "nothere"))

    def test_bad_crypto_config_exits_1_with_position(self):
        path = os.path.join(F["dir"], "bad.yaml")
        with open(path, "w") as f:
            f.write("listeners:\n  - {name: a, tls: none, auth: none}\ncrypto:\n  smime_cipher: des\n")
        r = subprocess.run([BIN, "keys", "lookup", "--config", path, "a@b.test"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn(path + ":4:17: crypto.smime_cipher: unknown value 'des' (valid: aes-256-cbc, aes-256-gcm)", r.stderr)


if __name__ == "__main__":
    unittest.main()
