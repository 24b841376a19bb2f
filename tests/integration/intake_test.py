"""Mail from cloud tenants (issue 15) end to end on 127.0.7.0/24: relay classes
with a Microsoft 365 tenant pin and a client-certificate class, the loop
checks, and DKIM signatures on everything the gateway sends, verified by
dkimpy (Debian's python3-dkim): plain TLS delivery, PGP/MIME, S/MIME, a portal
notification, a DSN, 8-bit and SMTPUTF8 messages, long header lines. The MX is
a Postfix with TLS that holds what it gets (read back with postcat); DNS is
unbound with local data (the DKIM key records too, for `sealgate dkim check`).
Keys come from `sealgate dkim keygen`. Every process is started here and
stopped at the end. Postfix needs root."""
import email
import email.policy
import os
import re
import shutil
import sqlite3
import ssl
import stat
import subprocess
import time
import unittest

import dkim

import probe_peers as peers
from harness import BIN, Client, Gateway, dot_stuff, run_sealgate

A_MX = "127.0.7.11"     # the recipients' MX (Postfix, TLS, holds everything)
A_EOP = "127.0.7.20"    # stands for Exchange Online Protection: in the m365 class's ranges file
A_OTHER = "127.0.7.21"  # a stranger
A_PARTNER = "127.0.7.22"  # relays with a client certificate
TENANT = "72f988bf-0000-4000-8000-00000000c0de"
OTHER_TENANT = "0d2c8a55-1111-4222-8333-444455556666"
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

POLICY = """\
rules:
  - name: pgp
    match: {recipients: pgp@rcpt.itk.test}
    methods: [pgp]
  - name: smime
    match: {recipients: smime@rcpt.itk.test}
    methods: [smime]
  - name: portal
    match: {recipients: portal@rcpt.itk.test, listeners: smarthost}
    methods: [portal]
  - name: default
    methods: [tls, plain]
    tls: {min_version: "1.2", verify: none}
"""


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, timeout=120, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), r.stderr.decode(errors="replace")))
    return r


def issue_client_cert(ca_dir, ca_cert, ca_key, name, subject_cn, dns_name):
    """A TLS client certificate (extendedKeyUsage clientAuth) from the given CA."""
    key, csr, crt, ext = (os.path.join(ca_dir, name + e) for e in (".key", ".csr", ".crt", ".ext"))
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
         "/CN=" + subject_cn, "-keyout", key, "-out", csr])
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n" % dns_name)
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
         "-extfile", ext, "-out", crt])
    return crt, key


def keygen(directory, domain, selector, algorithm):
    """`sealgate dkim keygen`: the key file and the record text (its strings joined)."""
    out = os.path.join(directory, "%s.%s.pem" % (domain, selector))
    r = run_sealgate("dkim", "keygen", "--domain", domain, "--selector", selector, "--algorithm", algorithm,
                     "--out", out)
    if r.returncode != 0:
        raise RuntimeError("dkim keygen failed: " + r.stderr)
    assert os.stat(out).st_mode & 0o777 == 0o600, oct(os.stat(out).st_mode)
    line = r.stdout.strip()
    assert line.startswith("%s._domainkey.%s. IN TXT (" % (selector, domain)), line
    return out, "".join(re.findall(r'"([^"]*)"', line)), line


class Intake(peers.PeersTestCase, unittest.TestCase):
    @classmethod
    def start_peers(cls):
        d = cls.dir = peers.tempdir("sealgate-intake-")
        if os.environ.get("SEALGATE_KEEP_TMP") != "1":
            cls.cleanups.append(lambda: shutil.rmtree(d, True))
        # Certificates: the MX's, and client certificates from two CAs.
        os.makedirs(os.path.join(d, "ca"))
        ca = peers.TestCA(os.path.join(d, "ca"))
        mx_cert = ca.issue("mx", ["mx.itk.test"])
        other_dir = os.path.join(d, "other-ca")
        os.makedirs(other_dir)
        other = peers.TestCA(other_dir)
        cls.client_ca = ca.cert
        cls.good_cert = issue_client_cert(ca.dir, ca.cert, ca.key, "partner", "relay.partner.itk.test",
                                          "relay.partner.itk.test")
        cls.wrong_subject = issue_client_cert(ca.dir, ca.cert, ca.key, "intruder", "intruder.itk.test",
                                              "intruder.itk.test")
        cls.wrong_issuer = issue_client_cert(other_dir, other.cert, other.key, "partner", "relay.partner.itk.test",
                                             "relay.partner.itk.test")
        cls.ca_subject = run(["openssl", "x509", "-in", ca.cert, "-noout", "-subject", "-nameopt", "RFC2253"]
                             ).stdout.decode().strip().split("=", 1)[1]

        # DKIM keys, made by the CLI; their records go into the DNS.
        keys = os.path.join(d, "dkim")
        os.makedirs(keys)
        cls.records = {}
        for domain, selector, algorithm in (("contoso.itk.test", "sg-rsa", "rsa"),
                                            ("contoso.itk.test", "sg-ed", "ed25519"),
                                            ("gw.itk.test", "sg-rsa", "rsa")):
            path, record, zone_line = keygen(keys, domain, selector, algorithm)
            cls.records["%s._domainkey.%s." % (selector, domain)] = (path, record, zone_line)
        # The tenant's own key (Microsoft signs with the customer's selector1).
        cls.tenant_key = run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]).stdout
        tenant_pub = run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=cls.tenant_key).stdout
        cls.records["selector1._domainkey.contoso.itk.test."] = (
            None, "v=DKIM1; k=rsa; p=" + __import__("base64").b64encode(tenant_pub).decode(), None)

        cls.port = peers.free_port_on([A_MX])
        cls.postfix = peers.Postfix(os.path.join(d, "postfix"), cls.port, [
            {"address": A_MX, "hostname": "mx.itk.test",
             "options": {"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": mx_cert[0],
                         "smtpd_tls_key_file": mx_cert[1]}}])
        cls.cleanups.append(cls.postfix.stop)
        cls.postfix.start()

        local = ["itk.test. 600 IN SOA ns.itk.test. hostmaster.itk.test. 1 3600 600 86400 60",
                 "mx.itk.test. 300 IN A %s" % A_MX,
                 "rcpt.itk.test. 300 IN MX 10 mx.itk.test.",
                 "contoso.itk.test. 300 IN MX 10 mx.itk.test.",
                 "gw.itk.test. 300 IN MX 10 mx.itk.test.",
                 "nomail.itk.test. 300 IN MX 0 ."]
        for name, (_, record, _) in cls.records.items():
            strings = " ".join('"%s"' % record[i:i + 250] for i in range(0, len(record), 250))
            local.append("%s 300 IN TXT %s" % (name, strings))
        os.makedirs(os.path.join(d, "dns"))
        cls.dns = peers.Dns(os.path.join(d, "dns"), {}, {}, "itk.test", local, cls.cleanups)

        class ClassScope:
            addCleanup = cls.addClassCleanup
            id = staticmethod(lambda: cls.__name__)
        cls.gw = gw = Gateway(ClassScope, listeners=[{"name": "smarthost", "tls": "starttls", "auth": "none"}],
                              networks=("127.0.0.1/32",), hostname="gw.itk.test",
                              queue="{retry_min: 1s, retry_max: 2s}", expect_clean_exit=False)
        with open(os.path.join(gw.dir, "policy.yaml"), "w") as f:
            f.write(POLICY)
        with open(os.path.join(gw.dir, "eop.txt"), "w") as f:
            f.write("# sealgate-ranges: shared-infrastructure\n# stands for Exchange Online here\n%s/32\n" % A_EOP)
        shutil.copy(cls.client_ca, os.path.join(gw.dir, "client-ca.pem"))
        gw.relay_extra = (
            "  client_ca: client-ca.pem\n"
            "  classes:\n"
            "    - {name: m365, networks_file: eop.txt, tenant_ids: [%s]}\n"
            "    - name: partner\n"
            "      networks: [127.0.7.22/32]\n"
            "      certificate: {issuer: '%s', subject: 'CN=relay.partner.itk.test', san: relay.partner.itk.test}\n"
            % (TENANT, cls.ca_subject))
        cls.make_crypto(gw.dir)
        keyconf = "".join("    - {domain: %s, selector: %s, private_key: %s}\n"
                          % (name.split("._domainkey.")[1].rstrip("."), name.split(".")[0], path)
                          for name, (path, _, _) in cls.records.items() if path)
        gw.add_config(
            "policy_file: policy.yaml\n"
            'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
            "delivery: {port: %d, probe_cache_ttl: 10m, timeouts: {connect: 5s}}\n"
            "crypto:\n  gnupg_home: gnupg\n  smime_certificates: smime\n  smime_ca_file: smime-ca.pem\n"
            "  sources: {keyring: true, smime_directory: true, dns_openpgpkey: false, dns_smimea: false, wkd: false}\n"
            "portal:\n  base_url: https://127.0.0.1:8443\n  from: secure@contoso.itk.test\n"
            "  organisation: Contoso Health\n"
            "loop: {max_passes: 1}\n"
            "dkim:\n  keys:\n%s" % (cls.dns.port, cls.port, keyconf))
        gw.start()
        cls.cleanups.append(gw.stop)

    @classmethod
    def make_crypto(cls, gwdir):
        """A PGP key for pgp@rcpt.itk.test in the gateway's keyring and an
        S/MIME certificate for smime@rcpt.itk.test with its CA."""
        home = os.path.join(gwdir, "gnupg")
        rhome = os.path.join(cls.dir, "recipient-gnupg")
        for h in (home, rhome):
            os.mkdir(h, 0o700)
        env = dict(os.environ, GNUPGHOME=rhome)
        gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
        run(gpg + ["--quick-gen-key", "Pat <pgp@rcpt.itk.test>", "future-default", "default", "never"], env=env)
        exported = run(gpg + ["--export", "pgp@rcpt.itk.test"], env=env).stdout
        run(gpg + ["--import"], input=exported, env=dict(os.environ, GNUPGHOME=home))
        for h in (home, rhome):
            cls.cleanups.append(lambda h=h: subprocess.run(["gpgconf", "--kill", "all"], env=dict(os.environ, GNUPGHOME=h)))
        smime = os.path.join(gwdir, "smime")
        os.mkdir(smime)
        ca_key, ca_crt = os.path.join(cls.dir, "smime-ca.key"), os.path.join(gwdir, "smime-ca.pem")
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt, "-days",
             "2", "-subj", "/CN=intake smime CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        key, csr, crt, ext = (os.path.join(cls.dir, "smime" + e) for e in (".key", ".csr", ".crt", ".ext"))
        run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
             "/CN=smime recipient"])
        with open(ext, "w") as f:
            f.write("subjectAltName=email:smime@rcpt.itk.test\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=emailProtection\nbasicConstraints=CA:FALSE\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
             "-extfile", ext, "-out", crt])
        shutil.copy(crt, os.path.join(smime, "recipient.pem"))

    # ------------------------------------------------------------ helpers --
    def dnsfunc(self, name, timeout=5):
        entry = self.records.get(name.decode())
        return entry[1].encode() if entry else None

    def wait_until(self, what, predicate, timeout=60):
        return peers.wait_until(self, what, predicate, timeout,
                                lambda: self.gw.read_log()[-5000:] + "\n" + self.postfix.log())

    def held(self):
        return self.postfix.held()

    def arrived(self, marker, seen=()):
        """The raw bytes of the held message whose content holds marker."""
        def find():
            for m in self.held():
                if m["queue_id"] in seen:
                    continue
                raw = self.postfix.message(m["queue_id"])
                if marker.encode() in raw:
                    return raw
            return None
        return self.wait_until("a message with %s at the MX" % marker, find)

    def our_signatures(self, raw):
        """Each DKIM-Signature of the message, (d, s, a) -> whether dkimpy verifies it."""
        parsed = email.message_from_bytes(raw)
        sigs = parsed.get_all("DKIM-Signature") or []
        results = {}
        for i, s in enumerate(sigs):
            tags = dict(t.strip().split("=", 1) for t in re.sub(r"\s+", " ", s).split(";") if "=" in t)
            try:
                ok = dkim.DKIM(raw).verify(idx=i, dnsfunc=self.dnsfunc)
            except dkim.ValidationError:
                ok = False
            results[(tags["d"].strip(), tags["s"].strip(), tags["a"].strip())] = ok
        return results

    def assert_signed(self, raw, domain, with_ed25519=True):
        results = self.our_signatures(raw)
        self.assertTrue(results.get((domain, "sg-rsa", "rsa-sha256")), (results, raw[:3000]))
        if with_ed25519:
            self.assertTrue(results.get((domain, "sg-ed", "ed25519-sha256")), (results, raw[:3000]))
        return results

    def send(self, content, sender, rcpts, source="127.0.0.1", starttls=False, mail_params="", cert=None):
        """One transaction; returns the replies to MAIL, each RCPT, DATA and the
        final one (content None: no DATA, only the envelope)."""
        with Client(self.gw.port, source=source) as c:
            c.greeting()
            c.ehlo()
            if starttls or cert:
                ctx = ssl.create_default_context(cafile=self.gw.cert)
                ctx.check_hostname = False
                if cert:
                    ctx.load_cert_chain(*cert)
                c.starttls(context=ctx)
                c.ehlo()
            replies = [c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params))]
            replies += [c.cmd("RCPT TO:<%s>" % r) for r in rcpts]
            if content is None or not any(r.code == 250 for r in replies[1:]):
                return replies
            data = c.cmd("DATA")
            replies.append(data)
            if data.code != 354:
                return replies
            c.send(dot_stuff(content))
            replies.append(c.reply())
            c.cmd("QUIT")
            return replies

    def m365_message(self, tenant, marker, subject_extra=""):
        with open(os.path.join(DATA, "m365-outbound-headers.txt")) as f:
            head = f.read().replace("contoso.test", "contoso.itk.test").replace("recipient.test", "rcpt.itk.test")
        head = head.replace(TENANT, tenant)
        body = __import__("base64").encodebytes(("Your results are ready. %s\n" % marker).encode()).decode()
        return (head.rstrip("\n") + "\n\n" + body).replace("\n", "\r\n")

    # -------------------------------------------------------------- tests --
    def test_tenant_pin(self):
        wrong = self.send(self.m365_message(OTHER_TENANT, "WRONG-TENANT-41"), "ana.example@contoso.itk.test",
                          ["patient@rcpt.itk.test"], source=A_EOP, starttls=True)
        self.assertEqual(wrong[-1].code, 550, wrong)
        self.assertIn("5.7.1 Relay access denied: tenant %s may not relay through class m365" % OTHER_TENANT,
                      wrong[-1].text)
        # Nothing stored: no spool file anywhere names the refused tenant.
        self.gw.wait_for_log("refused message from [%s] class=m365: Relay access denied: tenant %s"
                             % (A_EOP, OTHER_TENANT))
        for root, _, files in os.walk(self.gw.spool_dir):
            for name in files:
                if not stat.S_ISREG(os.lstat(os.path.join(root, name)).st_mode):
                    continue  # the control socket
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(OTHER_TENANT.encode(), f.read(), os.path.join(root, name))

        stranger = self.send(self.m365_message(TENANT, "STRANGER-42"), "ana.example@contoso.itk.test",
                             ["patient@rcpt.itk.test"], source=A_OTHER)
        self.assertEqual(stranger[1].code, 554, stranger)
        self.assertIn("Relay access denied", stranger[1].text)

        right = self.send(self.m365_message(TENANT, "RIGHT-TENANT-43"), "ana.example@contoso.itk.test",
                          ["patient@rcpt.itk.test"], source=A_EOP, starttls=True)
        self.assertEqual(right[-1].code, 250, right)
        qid = re.search(r"queued as (\S+)", right[-1].text).group(1)
        raw = self.arrived("DM4PR12MB6012A072BFCC6CE7FBBD52736")  # its Message-ID (the body is base64)
        # Our two signatures verify; the tenant's own stays (the message was
        # not changed), and the loop stamp is on it.
        self.assert_signed(raw, "contoso.itk.test")
        self.assertIn(b"d=contoso.itk.test; s=selector1", re.sub(rb"\s+", b" ", raw))
        self.assertIn(b"Sealgate-Loop: v=1; h=gw.itk.test; t=", raw)
        with sqlite3.connect(os.path.join(self.gw.dir, "sealgate.db")) as db:
            self.wait_until("the record", lambda: db.execute(
                "SELECT relay_class FROM messages WHERE queue_id=?", (qid,)).fetchone())
            self.assertEqual(db.execute("SELECT relay_class FROM messages WHERE queue_id=?", (qid,)).fetchone()[0],
                             "m365")
        show = run_sealgate("queue", "show", "--config", self.gw.config, qid)
        self.assertIn("relay_class:    m365", show.stdout)

    def test_connector_validation_message_relays(self):
        with open(os.path.join(DATA, "m365-connector-validation-headers.txt")) as f:
            head = f.read().replace("recipient.test", "rcpt.itk.test")
        content = (head.rstrip("\n") + "\n\nThis is a test message for connector validation VALIDATION-51.\n").replace(
            "\n", "\r\n")
        r = self.send(content, "", ["patient@rcpt.itk.test"], source=A_EOP, starttls=True)
        self.assertEqual(r[-1].code, 250, r)
        self.arrived("VALIDATION-51")

    def test_client_certificate_classes(self):
        ok = self.send(None, "app@partner.itk.test", ["x@rcpt.itk.test"], source=A_PARTNER, cert=self.good_cert)
        self.assertEqual(ok[1].code, 250, ok)
        for name, cert in (("wrong subject", self.wrong_subject), ("wrong issuer", self.wrong_issuer),
                           ("none", None)):
            r = self.send(None, "app@partner.itk.test", ["x@rcpt.itk.test"], source=A_PARTNER, cert=cert,
                          starttls=True)
            self.assertEqual(r[1].code, 554, (name, r))
            self.assertIn("5.7.1 <x@rcpt.itk.test>: Relay access denied", r[1].text, name)
        self.gw.wait_for_log("client certificate from [127.0.7.22]: subject=CN=intruder.itk.test")

    def test_received_limit(self):
        hops = "".join("Received: from h%d.example by h%d.example; Mon, 1 Dec 2026 10:00:00 +0000\r\n" % (i, i + 1)
                       for i in range(51))
        msg = hops + "From: a@contoso.itk.test\r\nTo: b@rcpt.itk.test\r\nSubject: hops\r\n\r\nbody\r\n"
        r = self.send(msg, "a@contoso.itk.test", ["b@rcpt.itk.test"])
        self.assertEqual(r[-1].code, 554, r)
        self.assertIn("5.4.6 Too many Received header fields (51)", r[-1].text)
        r = self.send(msg[msg.index("\r\n") + 2:].replace("hops", "fifty hops HOPS-50"), "a@contoso.itk.test",
                      ["b@rcpt.itk.test"])
        self.assertEqual(r[-1].code, 250, r)

    def test_loop_is_refused_and_forged_stamps_ignored(self):
        msg = ("From: a@contoso.itk.test\r\nTo: loop@rcpt.itk.test\r\nSubject: round LOOP-61\r\n"
               "Message-ID: <loop61@contoso.itk.test>\r\n\r\nround and round\r\n")
        self.assertEqual(self.send(msg, "a@contoso.itk.test", ["loop@rcpt.itk.test"])[-1].code, 250)
        first = self.arrived("LOOP-61")
        self.assertEqual(first.count(b"Sealgate-Loop:"), 1)
        # The output fed back in: one stamp of ours is allowed (max_passes 1) ...
        again = first.replace(b"\n", b"\r\n").decode()
        seen = {m["queue_id"] for m in self.held()}
        self.assertEqual(self.send(again, "a@contoso.itk.test", ["loop@rcpt.itk.test"])[-1].code, 250)
        second = self.arrived("LOOP-61", seen)
        self.assertEqual(second.count(b"Sealgate-Loop:"), 2)
        # ... two are a loop.
        r = self.send(second.replace(b"\n", b"\r\n").decode(), "a@contoso.itk.test", ["loop@rcpt.itk.test"])
        self.assertEqual(r[-1].code, 554, r)
        self.assertIn("5.4.6 Mail loop: this message has passed this gateway 2 times already", r[-1].text)
        # Forged stamps (another key, a changed host) count for nothing.
        forged = "".join("Sealgate-Loop: v=1; h=gw.itk.test; t=%d; m=AAAAAAAAAAAAAAAAAAAAAA\r\n" % int(time.time())
                         for _ in range(5))
        stamp = re.search(rb"Sealgate-Loop: (v=1; h=gw\.itk\.test; t=\d+; m=\S+)", first).group(1).decode()
        altered = "Sealgate-Loop: " + stamp.replace("h=gw.itk.test", "h=gx.itk.test") + "\r\n"
        r = self.send(forged + altered * 3 + msg.replace("LOOP-61", "FORGED-62"), "a@contoso.itk.test",
                      ["loop@rcpt.itk.test"])
        self.assertEqual(r[-1].code, 250, r)

    def test_dkim_on_every_variant(self):
        base = ("From: Ana <ana@contoso.itk.test>\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
                "Message-ID: <%s@contoso.itk.test>\r\nMIME-Version: 1.0\r\n")
        plain = "Content-Type: text/plain; charset=us-ascii\r\n\r\n%s body\r\n"
        # The tenant signed it: kept where nothing changed, gone where encryption changed it.
        tenant_signed = lambda m: (dkim.sign(m.encode(), b"selector1", b"contoso.itk.test", self.tenant_key,
                                             include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
                                   .decode() + m)
        cases = {
            "tls": ("tls@rcpt.itk.test", tenant_signed(base % ("tls@rcpt.itk.test", "plain VAR-TLS", "v1") +
                                                       plain % "VAR-TLS"), ""),
            "pgp": ("pgp@rcpt.itk.test", tenant_signed(base % ("pgp@rcpt.itk.test", "enc VAR-PGP", "v2") +
                                                       plain % "secret"), ""),
            "smime": ("smime@rcpt.itk.test", base % ("smime@rcpt.itk.test", "enc VAR-SMIME", "v3") + plain % "secret",
                      ""),
            "8bit": ("eight@rcpt.itk.test", base % ("eight@rcpt.itk.test", "VAR-8BIT", "v4") +
                     "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                     "Grüße aus Zürich, naïve café  \r\n\r\n\r\n", " BODY=8BITMIME"),
            "long": ("long@rcpt.itk.test", base % ("long@rcpt.itk.test", "VAR-LONG " + "x" * 900, "v5") +
                     "X-Long: " + ", ".join("r%03d@rcpt.itk.test" % i for i in range(60)).replace(", r0", ",\r\n\tr0")
                     + "\r\n" + plain % "long", ""),
        }
        for name, (rcpt, content, params) in cases.items():
            r = self.send(content, "ana@contoso.itk.test", [rcpt], mail_params=params)
            self.assertEqual(r[-1].code, 250, (name, r))
        utf8 = ("From: Jörg <jörg@contoso.itk.test>\r\nTo: <jörg@rcpt.itk.test>\r\nSubject: Grüße VAR-UTF8\r\n"
                "Message-ID: <v6@contoso.itk.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 8bit\r\n\r\nHallo Jörg\r\n")
        r = self.send(utf8, "jörg@contoso.itk.test", ["jörg@rcpt.itk.test"], mail_params=" SMTPUTF8 BODY=8BITMIME")
        self.assertEqual(r[-1].code, 250, r)
        # A DSN: the recipient's domain accepts no mail (null MX), the bounce
        # goes to the sender's domain, signed for the gateway's own name.
        r = self.send(base % ("nobody@nomail.itk.test", "VAR-DSN", "v7") + plain % "bounce me",
                      "ana@contoso.itk.test", ["nobody@nomail.itk.test"])
        self.assertEqual(r[-1].code, 250, r)
        # A portal notification, signed for portal.from's domain.
        r = self.send(base % ("portal@rcpt.itk.test", "VAR-PORTAL", "v8") + plain % "for the portal",
                      "ana@contoso.itk.test", ["portal@rcpt.itk.test"])
        self.assertEqual(r[-1].code, 250, r)

        tls = self.arrived("VAR-TLS")
        self.assert_signed(tls, "contoso.itk.test")
        sigs = self.our_signatures(tls)
        self.assertTrue(sigs.get(("contoso.itk.test", "selector1", "rsa-sha256")), sigs)  # the tenant's, still valid

        pgp = self.arrived("-----BEGIN PGP MESSAGE-----")
        self.assert_signed(pgp, "contoso.itk.test")
        self.assertNotIn(("contoso.itk.test", "selector1", "rsa-sha256"), self.our_signatures(pgp))
        self.gw.wait_for_log("dkim: 1 existing signature(s) the changes broke removed")

        smime = self.arrived("application/pkcs7-mime")
        self.assert_signed(smime, "contoso.itk.test")
        for marker in ("VAR-8BIT", "VAR-LONG", "VAR-UTF8"):
            self.assert_signed(self.arrived(marker), "contoso.itk.test")
        self.assertIn("Grüße aus Zürich".encode(), self.arrived("VAR-8BIT"))
        dsn = self.arrived("multipart/report")
        self.assert_signed(dsn, "gw.itk.test", with_ed25519=False)
        self.assertIn(b"From: Mail Delivery System <MAILER-DAEMON@gw.itk.test>", dsn)
        notice = self.arrived("secure@contoso.itk.test>")
        self.assert_signed(notice, "contoso.itk.test")

    def test_dkim_check_compares_the_published_record(self):
        r = run_sealgate("dkim", "check", "--config", self.gw.config, "contoso.itk.test", "sg-rsa")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("sg-rsa._domainkey.contoso.itk.test: the published key is the configured key", r.stdout)
        r = run_sealgate("dkim", "check", "--config", self.gw.config, "contoso.itk.test", "missing")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no key for selector missing of contoso.itk.test", r.stderr)
        # gw.itk.test's rsa record is published; compare it against the
        # contoso key by configuring that key under gw's selector.
        other = os.path.join(self.gw.dir, "mismatch.yaml")
        with open(self.gw.config) as f:
            text = f.read()
        contoso = self.records["sg-rsa._domainkey.contoso.itk.test."][0]
        gw_key = self.records["sg-rsa._domainkey.gw.itk.test."][0]
        with open(other, "w") as f:
            f.write(text.replace(gw_key, contoso))
        r = run_sealgate("dkim", "check", "--config", other, "gw.itk.test", "sg-rsa")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("the published key differs from the configured one", r.stdout)


if __name__ == "__main__":
    unittest.main()
