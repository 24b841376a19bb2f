#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/):
valid DNS answers and the hostile ones of tests/unit/dns_message_test.cpp
(truncations, compression-pointer loops, wrong rdlength, oversized names and
labels), MTA-STS records and policies, SMTP replies and DSN parameters,
inbound SMTP conversations (STARTTLS, AUTH, relay tricks, smuggling), DATA
streams, MIME messages, configurations and policies, and what the portal's
web process reads (forms, uploads, cookies, messages, HTML) and composes (a
reply), and PROXY protocol v2 headers. Deterministic: rerun it
after changing a seed and commit the result. The corpus replay unit test
(tests/unit/fuzz_corpus_test.cpp) runs every file through its target's feed.
Each target's input layout (the leading switch bytes) is described in its
tests/fuzz/feed_*.cpp."""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
ROOT = os.path.dirname(os.path.dirname(HERE))


class Wire:
    def __init__(self):
        self.b = bytearray()

    def u8(self, v):
        self.b.append(v & 0xFF)
        return self

    def u16(self, v):
        self.b += struct.pack(">H", v & 0xFFFF)
        return self

    def u32(self, v):
        self.b += struct.pack(">I", v & 0xFFFFFFFF)
        return self

    def raw(self, data):
        self.b += data if isinstance(data, (bytes, bytearray)) else data.encode()
        return self

    def name(self, n):
        for label in [l for l in n.split(".") if l]:
            self.u8(len(label)).raw(label)
        return self.u8(0)

    def pointer(self, offset):
        return self.u16(0xC000 | offset)

    def header(self, flags=0, rcode=0, an=0, ns=0, ar=0):
        return self.u16(0x1234).u16(0x8180 | flags | rcode).u16(1).u16(an).u16(ns).u16(ar)

    def question(self, n, qtype):
        return self.name(n).u16(qtype).u16(1)

    def rr_at_question(self, rtype, ttl, rdlength):
        return self.pointer(12).u16(rtype).u16(1).u32(ttl).u16(rdlength)


def mx_answer(flags=0):
    w = Wire().header(flags, 0, 2).question("example.test", 15)
    w.rr_at_question(15, 300, 8).u16(10).u8(3).raw("mx1").pointer(12)
    w.rr_at_question(15, 200, 8).u16(20).u8(3).raw("mx2").pointer(12)
    return bytes(w.b)


def negative(qname, qtype, rcode, soa_ttl=900, minimum=60):
    w = Wire().header(0, rcode, 0, 1).question(qname, qtype)
    rdata = Wire().name("ns.test").name("hostmaster.test").u32(1).u32(3600).u32(600).u32(86400).u32(minimum)
    w.name("test").u16(6).u16(1).u32(soa_ttl).u16(len(rdata.b)).raw(rdata.b)
    return bytes(w.b)


def dns_and_sts_seeds():
    s = {}
    m = mx_answer()
    s["dns-mx"] = m
    s["dns-mx-ad"] = mx_answer(0x0020)
    s["dns-mx-tc"] = mx_answer(0x0200)
    for n in (0, 5, 12, 20, len(m) - 9, len(m) - 1):
        s["dns-mx-truncated-%d" % n] = m[:n]
    s["dns-nxdomain-soa"] = negative("gone.test", 1, 3)
    s["dns-nodata-tlsa"] = negative("_25._tcp.mx.test", 52, 0)
    s["dns-servfail"] = bytes(Wire().header(0, 2, 0).question("example.test", 15).b)
    w = Wire().header(0, 0, 0, 0, 1).question("example.test", 15)
    s["dns-extended-rcode"] = bytes(w.u8(0).u16(41).u16(1232).u32(0x01000000).u16(0).b)

    w = Wire().header(0, 0, 1).question("a.test", 1)
    s["dns-pointer-to-itself"] = bytes(w.pointer(len(w.b)).u16(1).u16(1).u32(1).u16(4).u32(0).b)
    w = Wire().header(0, 0, 1).question("a.test", 1)
    s["dns-forward-pointer"] = bytes(w.pointer(len(w.b) + 2).u8(0).u16(1).u16(1).u32(1).u16(4).u32(0).b)
    w = Wire().header(0, 0, 1).question("a.test", 1)
    p = len(w.b)
    s["dns-pointer-loop"] = bytes(w.u8(1).raw("x").pointer(p + 4).pointer(p).u16(1).u16(1).u32(1).u16(4).u32(0).b)
    s["dns-question-points-into-header"] = bytes(Wire().header(0, 0, 0).pointer(2).u16(1).u16(1).b)

    s["dns-rdlength-past-end"] = bytes(Wire().header(0, 0, 1).question("a.test", 1).rr_at_question(1, 60, 400).u32(0x7F000001).b)
    s["dns-rdlength-short-a"] = bytes(Wire().header(0, 0, 1).question("a.test", 1).rr_at_question(1, 60, 3).u8(1).u8(2).u8(3).b)
    s["dns-rdlength-long-a"] = bytes(Wire().header(0, 0, 1).question("a.test", 1).rr_at_question(1, 60, 6).u32(0x7F000001).u16(0).b)
    s["dns-label-past-end"] = bytes(Wire().header(0, 0, 0).u8(60).raw("short").b)
    s["dns-answer-count-too-high"] = bytes(Wire().header(0, 0, 5).question("a.test", 1).rr_at_question(1, 60, 4).u32(1).b)
    s["dns-txt-string-past-rdata"] = bytes(Wire().header(0, 0, 1).question("t.test", 16).rr_at_question(16, 60, 3).u8(9).raw("ab").b)
    s["dns-mx-name-past-rdata"] = bytes(Wire().header(0, 0, 1).question("m.test", 15).rr_at_question(15, 60, 4).u16(10).u8(3).raw("mx").raw("x").u8(0).b)
    s["dns-tlsa-rdlength-2"] = bytes(Wire().header(0, 0, 1).question("_25._tcp.mx.test", 52).rr_at_question(52, 60, 2).u8(3).u8(1).b)
    s["dns-tlsa"] = bytes(Wire().header(0x0020, 0, 1).question("_25._tcp.mx.test", 52).rr_at_question(52, 60, 35).u8(3).u8(1).u8(1).raw(bytes(range(32))).b)
    s["dns-openpgpkey"] = bytes(Wire().header(0, 0, 1).question("h._openpgpkey.test", 61).rr_at_question(61, 60, 3).u8(1).u8(2).u8(3).b)
    s["dns-txt"] = bytes(Wire().header(0, 0, 1).question("_mta-sts.example.test", 16).rr_at_question(16, 60, 16).u8(15).raw("v=STSv1; id=42;").b)

    # > 255 octets through a chain of pointers to 60-octet labels.
    w = Wire().header(0, 0, 1).question("a.test", 1)
    starts = []
    for i in range(5):
        starts.append(len(w.b))
        w.u8(60).raw("a" * 60)
        if i == 0:
            w.u8(0)
        else:
            w.pointer(starts[i - 1])
    s["dns-name-over-255-via-pointers"] = bytes(w.pointer(starts[-1]).u16(1).u16(1).u32(1).u16(4).u32(0).b)
    # Label type bits 01 and 10 (RFC 6891 / obsolete extended labels) and a 63+ label.
    s["dns-label-type-01"] = bytes(Wire().header(0, 0, 1).question("a.test", 1).u8(0x41).raw("x" * 65).u8(0).b)
    s["dns-label-type-10"] = bytes(Wire().header(0, 0, 1).question("a.test", 1).u8(0x80).u8(0).b)
    # CNAME loop a -> b -> a.
    w = Wire().header(0, 0, 2).question("a.test", 1)
    b_at = len(w.b) + 12
    w.rr_at_question(5, 100, 8).name("b.test")
    s["dns-cname-loop"] = bytes(w.pointer(b_at).u16(5).u16(1).u32(100).u16(2).pointer(12).b)

    s["sts-policy-rfc"] = b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n"
    s["sts-policy-none"] = b"version: STSv1\nmode: none\nmax_age: 0\n"
    s["sts-policy-bad-mode"] = b"version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n"
    s["sts-policy-huge-max-age"] = b"version: STSv1\nmode: testing\nmx: a.example\nmax_age: 99999999999\n"
    s["sts-txt"] = b"v=STSv1; id=20160831085700Z;"
    s["sts-txt-bad"] = b"v=STSv1; id=" + b"x" * 40 + b"; id=2"
    return s




def smtp_reply_seeds():
    s = {}
    s["smtp-ehlo"] = (b"250-mx.example.net\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                      b"250-SMTPUTF8\r\n250-REQUIRETLS\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n")
    s["smtp-mixed-codes"] = b"250-a\r\n251 b\r\n"
    s["smtp-enhanced"] = b"550 5.7.1 Relaying denied\r\n421 4.4.2 timeout\r\n250 2.1000.1 bad\r\n"
    s["smtp-garbage"] = b"hello\r\n\x00\xff\r\n2200\r\n"
    # A transaction with every DSN parameter, then the reply that bounces it:
    # enough for the feed to build a report (with the original headers).
    s["dsn-transaction"] = (b"FROM:<app@example.org> RET=HDRS ENVID=QQ+2B7x+3D1 SIZE=1000 BODY=8BITMIME\r\n"
                            b"TO:<pat@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;pat+40example.com\r\n"
                            b"TO:<bob@example.net> NOTIFY=NEVER\r\n"
                            b"Subject: results\r\nMessage-ID: <1@example.org>\r\n"
                            b"550-5.1.1 <pat@example.com>: Recipient address rejected:\r\n550 5.1.1 \x1b[31m user unknown\r\n")
    s["dsn-utf8"] = ("FROM:<app@example.org> SMTPUTF8 RET=FULL\r\nTO:<jürgen@bücher.example> ORCPT=utf-8;j+C3+BCrgen\r\n"
                     "452 4.2.2 mailbox full\r\n").encode()
    s["dsn-bad-params"] = (b"FROM:<a@b.example> RET=BODY\r\nFROM:<a@b.example> ENVID=a=b\r\nFROM:<a@b.example> SIZE=1 SIZE=2\r\n"
                           b"TO:<c@d.example> NOTIFY=SUCCESS,\r\nTO:<c@d.example> ORCPT=;x\r\nTO:<c@d.example> ORCPT=rfc822;+4\r\n"
                           b"TO:<a%b@c.example>\r\nTO:<@r.example:a@b.example>\r\nTO:<\"a@b\"@c.example>\r\nTO:<x@[192.0.2.1]>\r\n")
    # Found by the fuzzer: inet_pton stopped at the NUL and the sender kept it.
    s["dsn-literal-with-nul"] = b"FROM:<a@[192.0.2.1" + b"\x00" * 8 + b"]>\r\nFROM:<a@[IPv6:::1\x00]>\r\n"
    return s


def inbound_seeds():
    # First byte: bits 0-1 TLS (none, starttls, implicit), bits 2-3 AUTH (none,
    # optional, required), 0x10 client in relay.networks, 0x20 small limits,
    # 0x40 the spool fails. Then the client's lines; DATA content follows its 354.
    none, starttls, implicit = 0, 1, 2
    optional, required = 4, 8
    relay, small, spool_fails = 0x10, 0x20, 0x40
    plain_b64 = b"AGFsaWNlAHNlY3JldA=="  # "\0alice\0secret"
    s = {}
    s["relay-network"] = bytes([none | relay]) + (
        b"EHLO client.example\r\nMAIL FROM:<app@example.org> SIZE=100 BODY=8BITMIME\r\n"
        b"RCPT TO:<pat@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;pat@example.com\r\n"
        b"RCPT TO:<bob@example.net>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n..stuffed\r\n.\r\n"
        b"RSET\r\nNOOP\r\nVRFY x\r\nHELP\r\nQUIT\r\n")
    s["starttls-auth-plain"] = bytes([starttls | optional]) + (
        b"EHLO c.example\r\nAUTH PLAIN " + plain_b64 + b"\r\nSTARTTLS\r\nEHLO c.example\r\nAUTH PLAIN " + plain_b64 +
        b"\r\nMAIL FROM:<a@example.org> REQUIRETLS SMTPUTF8\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")
    s["implicit-auth-login"] = bytes([implicit | required]) + (
        b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRSET\r\n"
        b"AUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nMAIL FROM:<>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n.\r\n"
        b"AUTH LOGIN YWxpY2U=\r\n")
    s["auth-wrong-and-aborted"] = bytes([implicit | optional]) + (
        b"EHLO c\r\nAUTH PLAIN\r\nAGJvYgB4\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n"
        b"AUTH CRAM-MD5\r\nAUTH PLAIN !!!\r\n")
    s["smuggling"] = bytes([none | relay]) + (
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        b"one\r\n\n.\n\r\nMAIL FROM:<evil@example.org>\r\n.\r\n")
    s["smuggling-cr-dot"] = bytes([none | relay]) + (
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\none\r\n.\r\r\n.\r\n")
    s["relay-denied-tricks"] = bytes([none | small]) + (
        b"HELO c\r\nMAIL FROM:<a@example.org> SIZE=10\r\nRCPT TO:<a%b@c.example>\r\nRCPT TO:<@r.example:a@b.example>\r\n"
        b"RCPT TO:<\"a@b\"@c.example>\r\nRCPT TO:<x@[192.0.2.1]>\r\nRCPT TO:<b!c@d.example>\r\nRCPT TO:<ok@example.com>\r\n"
        b"DATA\r\nEXPN x\r\n")
    s["limits-small"] = bytes([none | relay | small]) + (
        b"EHLO c\r\nMAIL FROM:<a@example.org> SIZE=65\r\nMAIL FROM:<a@example.org> SIZE=64\r\nRCPT TO:<a@example.com>\r\n"
        b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n"
        b"a line that is much longer than twenty octets\r\n.\r\n"
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<a@example.com>\r\nDATA\r\n" + b"x" * 70 + b"\r\n.\r\n" +
        b"EHLO " + b"h" * 100 + b"\r\n")
    s["spool-fails"] = bytes([implicit | optional | spool_fails]) + (
        b"EHLO c\r\nAUTH PLAIN " + plain_b64 + b"\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n")
    s["errors-and-events"] = bytes([starttls | relay]) + (
        b"MAIL FROM:<a@example.org>\r\nFOO\r\nDATA\r\nRSET x\r\nEHLO\r\nHELO <bad>\r\nEHLO ok\r\nMAIL FROM:<a@example.org>\r\n"
        b"MAIL FROM:<a@example.org>\r\nSTARTTLS x\r\nbad\x00char\r\nbad\rchar\r\nMAIL FROM:<a@example.org> REQUIRETLS\r\n"
        b"\x1bshutdown\r\n")
    s["timeout"] = bytes([none]) + b"EHLO c\r\n\x1btimeout\r\n"
    # The user "mallory" stands for a throttled client or user (454, no password check).
    s["auth-throttled"] = bytes([implicit | optional]) + (
        b"EHLO c\r\nAUTH PLAIN AG1hbGxvcnkAeA==\r\nAUTH LOGIN bWFsbG9yeQ==\r\neA==\r\nAUTH PLAIN " + plain_b64 + b"\r\n")
    return s


def data_reader_seeds():
    # First byte: 0x80 the session's 25 MiB size limit (else 16 + 8 * (b & 0x3f)),
    # 0x40 the 998-octet line limit (else 4 + (b & 0x0f)). Second byte: how many
    # of the next bytes give the lengths (each + 1) of the pieces the stream is
    # fed in. Then the stream.
    roomy = 0x80 | 0x40

    def seed(limits, cuts, stream):
        return bytes([limits, len(cuts)]) + bytes(cuts) + stream

    s = {}
    s["message"] = seed(roomy, [], b"Subject: x\r\n\r\nline\r\n..dot\r\n.\r\nQUIT\r\n")
    s["message-cut"] = seed(roomy, [0, 2, 6], b"a\r\n.b\r\n\r\n.\r\n")
    s["empty"] = seed(roomy, [], b".\r\n")
    s["lf-dot-lf"] = seed(roomy, [1], b"a\n.\nb\r\n.\r\n")
    s["crlf-dot-lf"] = seed(roomy, [], b"a\r\n.\nb\r\n.\r\n")
    s["lf-dot-crlf"] = seed(roomy, [3], b"a\n.\r\nb\r\n.\r\n")
    s["dot-cr-x"] = seed(roomy, [], b"a\r\n.\rx\r\n.\r\n")
    s["bare-cr"] = seed(roomy, [0], b"a\rb\r\n.\r\n")
    s["too-big"] = seed(0x40 | 1, [7], b"0123456789" * 4 + b"\r\n.\r\n")
    s["line-too-long"] = seed(0x80 | 2, [], b"short\r\n" + b"y" * 12 + b"\r\n.\r\n")
    s["eight-bit"] = seed(roomy, [1, 1], "Grüße\r\n.\r\n".encode())
    s["unterminated"] = seed(roomy, [], b"no end\r\n.")
    return s


def mime_seeds():
    # First byte: bit 0 small walk limits, bit 1 a sender in example.org, bit 2
    # a recipient in lab.example.org, bit 3 an AUTH user, bit 4 a PGP key found,
    # bit 5 STARTTLS unknown. Then the message as the client sent it.
    s = {}
    s["phi-multipart"] = bytes([0x16]) + (
        b"From: App <app@example.org>\r\nSubject: =?utf-8?q?Results_=5Bsecure=5D?=\r\nX-Sensitivity: phi\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"SSN 078-05-1120 and DOB 12/31/1980, diagnos=\r\nis attached.=20\r\n--b1\r\n"
        b"Content-Type: application/dicom; name=\"scan.dcm\"\r\nContent-Disposition: attachment; filename=\"scan.dcm\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b1--\r\nepilogue\r\n")
    s["nested-rfc822"] = bytes([0x01]) + (
        b"Subject: fwd\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=\"in\"\r\n\r\n"
        b"--in\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nQ2FyZCA0MTExIDExMTEgMTExMSAxMTEx\r\n"
        b"--in\r\nContent-Type: text/plain\r\n\r\nMRN: 12345678\r\n--in--\r\n--outer\r\n"
        b"Content-Type: application/pdf; name*=scan1.pdf\r\nContent-Disposition: attachment; filename=\"=?utf-8?b?c2NhbjEucGRm?=\"\r\n"
        b"\r\n%PDF\r\n--outer--\r\n")
    s["bulk-list"] = bytes([0x0a]) + (
        b"Precedence: bulk\r\nList-Unsubscribe: <mailto:u@example.org>\r\nSensitivity: Company-Confidential\r\n"
        b"Subject:\r\n folded [SECURE]\r\n\r\nprescriptions inside\r\n")
    s["deep-nesting"] = bytes([0x00]) + b"".join(
        b"Content-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n--d%d\r\n" % (i, i) for i in range(24)) + b"x\r\n"
    s["unterminated-multipart"] = bytes([0x01]) + (
        b"Content-Type: multipart/mixed; boundary=\"u\"\r\n\r\n--u\r\nContent-Type: text/plain\r\n\r\n4111111111111111\r\n--u\r\n")
    s["subject-tag-rewrite"] = bytes([0x00]) + (
        b"From: a@example.org\r\nSubject: =?iso-8859-1?q?Befund_=5Bsecure=5D_f=FCr?= Patient (PHI)\r\n"
        b"  " + b"long folded words " * 8 + b"[SECURE]\r\n =?utf-8?b?W3NlY3VyZV0gw6TDtsO8?=\r\nX-Other: [secure]\r\n\r\n"
        b"[secure] stays in the body\r\n")
    s["bad-encodings"] = bytes([0x20]) + (
        b"Subject: =?x?q?=ZZ?= =?utf-8?b?####?= =?utf-8?q?\r\nContent-Type: text/plain; charset=\"unterminated\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n====A===\r\n")
    return s


def config_seeds():
    s = {}
    with open(os.path.join(ROOT, "conf", "sealgate.yaml"), "rb") as f:
        s["shipped"] = f.read()
    s["minimal"] = b"listeners:\n  - {name: a, tls: none, auth: none}\n"
    s["every-section"] = (
        b"hostname: gw.example.org\nthreads: 2\nspool_sync: file\nuser: sealgate\n"
        b"listeners:\n  - {name: submit, address: '::1', port: 587, tls: implicit, auth: required}\n"
        b"  - {name: relay, address: 127.0.0.1, port: 2525, tls: none, auth: none}\n"
        b"tls: {certificate: /etc/c.pem, private_key: /etc/k.pem}\n"
        b"relay: {networks: [10.0.0.0/8, 'fd00::/8'], users_file: users}\n"
        b"limits: {message_size: 10MB, recipients: 100, command_line_length: 4096, data_line_length: 998,"
        b" connections: 10, errors: 3}\n"
        b"timeouts: {command: 5m, data: 10m, tls_handshake: 60s, reply: 1h}\n"
        b"dns: {servers: ['127.0.0.1:5353', '[::1]:53'], cache_max_ttl: 1d, negative_ttl: 5m, timeout: 5s}\n"
        b"queue: {retry_min: 5m, retry_max: 1h, max_age: 5d, delay_warning: 4h, concurrency: 10,"
        b" destination_concurrency: 2, paused: true}\n"
        b"delivery: {port: 25, helo_name: '[192.0.2.1]', probe_max_mx: 3, probe_cache_ttl: 10m, mta_sts_port: 443,"
        b" timeouts: {connect: 30s, https: 10s}}\n"
        b"crypto: {}\n")
    s["bad-values"] = (
        b"listeners: [{name: a, tls: none, auth: optional}, {name: a, port: 0, address: nowhere}]\n"
        b"limits: {message_size: 10XB, recipients: -1}\nrelay: {networks: [300.1.1.1/8]}\n"
        b"queue: {retry_min: 2h, retry_max: 1h}\nunknown_key: 1\nhostname: 'a b'\n")
    s["intake-sections"] = (
        b"listeners:\n  - {name: a, tls: none, auth: none}\n"
        b"relay:\n  client_ca: /nonexistent/ca.pem\n  classes:\n"
        b"    - {name: m365, networks_file: /nonexistent/ranges.txt, tenant_ids: [72f988bf-0000-4000-8000-00000000c0de]}\n"
        b"    - {name: p, networks: [127.0.0.1/32, 10.0.0.1/8], certificate: {issuer: 'CN=x', san: A.example},"
        b" users: [u], sender_domains: [b\xc3\xbccher.example, '-bad']}\n"
        b"    - {name: p, tenant_ids: [nope]}\n"
        b"loop: {secret: short, secret_file: x, max_passes: 0, max_age: 90d}\n"
        b"limits: {received_headers: 5}\n"
        b"dkim:\n  keys:\n    - {domain: example.org, selector: s1, private_key: /nonexistent/k.pem}\n"
        b"    - {domain: 'a b', selector: '', private_key: k}\n"
        b"  domains: {example.net: example.org, x: [1]}\n  existing_signatures: sometimes\n  headers: [subject]\n")
    # Found by the fuzzer: a class without a name key (yaml-cpp throws on a missing key's node).
    s["intake-missing-keys"] = (b"listeners:\n  - {name: a, tls: none, auth: none}\nrelay:\n  classes:\n"
                                b"    - {name:m 365, networks: [10.0.0.0/8]}\n"
                                b"dkim:\n  keys:\n    - {domain: example.org}\n")
    s["yaml-aliases"] = b"base: &b {tls: none, auth: none, name: x}\nlisteners: [*b, *b]\nhostname: &h a\nuser: *h\n"
    s["yaml-duplicate-keys"] = b"hostname: a\nhostname: b\nlisteners:\n  - {name: a, tls: none, auth: none, tls: starttls}\n"
    s["yaml-merge"] = b"x: &x {tls: none, auth: none}\nlisteners:\n  - <<: *x\n    name: m\n"
    s["yaml-syntax"] = b"listeners: [\n  - {name: a\n\t: %\n"
    s["yaml-deep"] = b"listeners: " + b"[" * 200 + b"]" * 200 + b"\n"
    return s


def policy_seeds():
    s = {}
    with open(os.path.join(ROOT, "conf", "policy.yaml"), "rb") as f:
        s["shipped"] = f.read()
    s["minimal"] = b"rules:\n  - name: default\n    methods: [tls, plain]\n"
    s["every-condition"] = (
        b"classes:\n  - name: c1\n    description: all tests\n    when:\n      all:\n"
        b"        - any: [{header: {name: X-A}}, {header: {name: X-B, equals: v}}, {header: {name: X-C, matches: '^a+$'}}]\n"
        b"        - not: {subject_tag: '[secure]'}\n        - sender: ['*@example.org', 'a?b@*']\n"
        b"        - recipient: '*'\n        - auth_user: u*\n        - listener: smarthost\n"
        b"        - body: ['diagnos(is|es)', '\\d{3}-\\d{2}']\n        - attachment: '\\.pdf$'\n"
        b"        - dlp: [ssn, mrn, dob, card]\n        - size_over: 1KiB\n        - size_under: 10MB\n"
        b"rules:\n  - name: r1\n    description: d\n    match: {recipients: '*@a.example', domains: ['b.example'], senders: '*',"
        b" listeners: smarthost, classes: c1}\n    methods: [pgp, smime, tls, portal, reject]\n    reject_text: no\n"
        b"    tls: {min_version: '1.3', verify: dane-or-mta-sts}\n    on_failure: bounce\n    strip_subject_tag: true\n"
        b"  - name: r2\n    match: {classes: [c1]}\n    methods: [hold]\n    on_failure: defer\n"
        b"  - name: default\n    methods: [tls, plain]\n    tls: {verify: none}\n")
    s["bad"] = (
        b"classes:\n  - name: 'bad name'\n    when: {body: '(unclosed'}\n  - name: c\n    when: {nope: 1}\n"
        b"rules:\n  - name: r\n    match: {classes: missing}\n    methods: [defer, reject, tls, tls]\n"
        b"  - name: r\n    methods: []\n")
    s["no-default"] = b"rules:\n  - name: r\n    match: {senders: a}\n    methods: [tls]\n"
    s["yaml-aliases"] = (b"classes:\n  - name: a\n    when: &w {header: {name: X}}\n  - name: b\n    when: *w\n"
                         b"rules:\n  - &r {name: d, methods: [tls]}\n")
    s["yaml-duplicate-keys"] = b"rules:\n  - name: a\n    name: b\n    methods: [tls]\n    methods: [plain]\n"
    s["regex-heavy"] = (b"classes:\n  - name: x\n    when: {body: '(a|aa)*b'}\n  - name: y\n    when: {attachment: '^(\\w+\\s?)*$'}\n"
                        b"rules:\n  - name: d\n    methods: [plain]\n")
    s["deep-not"] = (b"classes:\n  - name: n\n    when: " + b"{not: " * 60 + b"{dlp: ssn}" + b"}" * 60 +
                     b"\nrules:\n  - name: d\n    methods: [tls]\n")
    return s


def portal_web_seeds():
    # First byte: bits 0-2 the parser (0 urlencoded, 1 multipart, 2 cookie,
    # 3 message view, 4 HTML, 5 reply, 6 every text parser), 0x08 small limits.
    # See tests/fuzz/feed_portal_web.cpp for what follows.
    urlencoded, multipart, cookie, view, html, reply, text = range(7)
    small = 0x08
    s = {}
    s["form-good"] = bytes([urlencoded]) + b"csrf=3q2%2B7w%3D%3D&code=12+34%2056&&next=%2Fm%2Fabc"
    s["form-utf8"] = bytes([urlencoded]) + b"text=Gr%C3%BC%C3%9Fe+aus+M%C3%BCnchen&empty=&flag"
    s["form-bad-percent"] = bytes([urlencoded]) + b"csrf=abc&code=%zz"
    s["form-duplicate-name"] = bytes([urlencoded]) + b"csrf=a&code=1&csrf=b"
    s["form-bad-utf8"] = bytes([urlencoded]) + b"text=%C3%28&n%00ame=1"
    s["form-too-many"] = bytes([urlencoded | small]) + b"a=1&b=2&c=3&d=4"

    b = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
    upload = (b"--" + b + b"\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nZm9vYmFy\r\n"
              b"--" + b + b"\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nDanke,\r\nanbei der Befund.\r\n"
              b"--" + b + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"Befund M\xc3\xbcller.pdf\"\r\n"
              b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj\r\n"
              b"--" + b + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n"
              b"Content-Type: application/octet-stream\r\n\r\n"
              b"\r\n--" + b + b"--\r\n")
    s["multipart-upload"] = bytes([multipart]) + b"multipart/form-data; boundary=" + b + b"\r\n" + upload
    s["multipart-hostile-names"] = bytes([multipart]) + (
        b"Multipart/Form-Data; boundary=\"x y'z\"\r\n"
        b"--x y'z  \r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../etc/passwd\"; "
        b"filename*=UTF-8''invoice%E2%80%AEfdp.exe\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<script>x</script>\r\n"
        b"--x y'z\r\nContent-Disposition: form-data; name=\"g\"; filename=\"..\\\\C:\\\\a:b|c?.txt\"\r\n"
        b"Content-Transfer-Encoding: binary\r\nX-Ignored: 1\r\n\r\n\x00\x01\x02\r\n--x y'z--\r\nepilogue")
    s["multipart-bad-unterminated"] = bytes([multipart]) + (
        b"multipart/form-data; boundary=abc\r\n--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue")
    s["multipart-bad-header"] = bytes([multipart]) + (
        b"multipart/form-data; boundary=abc\r\n--abc\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nv\r\n"
        b"--abc--\r\n")
    s["multipart-bad-encoding"] = bytes([multipart]) + (
        b"multipart/form-data; boundary=abc; boundary=def\r\n--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nYQ==\r\n--abc--\r\n")
    s["multipart-bad-lf"] = bytes([multipart]) + (
        b"multipart/form-data; boundary=abc\n--abc\nContent-Disposition: form-data; name=\"a\"\n\nv\n--abc--\n")
    s["multipart-over-limits"] = bytes([multipart | small]) + (
        b"multipart/form-data; boundary=q\r\n--q\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n\r\n" +
        b"B" * 80 + b"\r\n--q--\r\n")

    s["cookie-header"] = bytes([cookie]) + b"__Host-sg\n_ga=GA1.2.3; theme=dark;  __Host-sg=\"Zm9vYmFy.YmF6\" ; lang=de"
    s["cookie-tossed"] = bytes([cookie]) + b"__Host-sg\n__Host-sg=ours; path=/; __Host-sg=tossed"
    s["cookie-absent"] = bytes([cookie]) + b"sid\nsidx=1; xsid=2; sid; =3"

    outlook = (
        b"Received: from mx.example.de by gw.example.org; Tue, 04 Mar 2025 08:59:58 +0000\r\n"
        b"From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen@example.de>\r\nTo: Alice <alice@example.org>\r\n"
        b"Cc: =?utf-8?B?w4RyenRpbg==?= <aerztin@example.de>\r\n"
        b"Subject: =?utf-8?q?Befund_f=C3=BCr_Sie?=\r\n =?utf-8?q?_=28vertraulich=29?=\r\nDate: Tue, 4 Mar 2025 09:59:58 +0100\r\n"
        b"Message-ID: <AM0PR01MB1234@example.de>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed;\r\n\tboundary=\"_004_AM0PR01MB1234_\"\r\n\r\n"
        b"--_004_AM0PR01MB1234_\r\nContent-Type: multipart/alternative; boundary=\"_000_alt_\"\r\n\r\n"
        b"--_000_alt_\r\nContent-Type: text/plain; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Guten Tag,\r\nanbei Ihr Befund f=FCr die Untersuchung vom 3.=\r\n M=E4rz.\r\n"
        b"--_000_alt_\r\nContent-Type: text/html; charset=\"iso-8859-1\"\r\n\r\n<p>Guten Tag,</p><script>x()</script>\r\n"
        b"--_000_alt_--\r\n\r\n"
        b"--_004_AM0PR01MB1234_\r\nContent-Type: application/pdf; name=\"Befund.pdf\"\r\n"
        b"Content-Disposition: attachment; filename=\"Befund.pdf\"; size=12\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQKJeLjz9MK\r\n"
        b"--_004_AM0PR01MB1234_\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=\r\n"
        b"--_004_AM0PR01MB1234_\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''R%C3%B6ntgen%E2%80%AEgpj.exe\r\n\r\nMZ\x90\x00\r\n"
        b"--_004_AM0PR01MB1234_\r\nContent-Type: text/plain; name=\"=?utf-8?b?bm90ZXMudHh0?=\"\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nline=0D=0Aone=\r\n\r\n"
        b"--_004_AM0PR01MB1234_\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nforwarded\r\n"
        b"--_004_AM0PR01MB1234_--\r\n")
    s["message-attachments"] = bytes([view]) + outlook
    s["message-attachments-small"] = bytes([view | small]) + outlook
    s["message-html-only"] = bytes([view]) + (
        b"From: news@example.com\r\nSubject: =?utf-8?b?8J+OiQ==?= News\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"PGh0bWw+PGhlYWQ+PHRpdGxlPlQ8L3RpdGxlPjwvaGVhZD48Ym9keT48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+\r\n"
        b"PHA+SGVsbG8gJmFtcDsgd2VsY29tZTwvcD48L2JvZHk+PC9odG1sPg==\r\n")
    s["message-hostile"] = bytes([view]) + (
        b"Subject: \x1b[31mred\x00\r\nFrom: a\r\n\t\xff\xfe\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
        b"--o\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n--o\r\nContent-Type: /\r\n"
        b"Content-Transfer-Encoding: BASE64\r\nContent-Disposition: attachment; filename=\"\x07.\"\r\n\r\nQU=JD\x00RE\r\n"
        b"--o\r\nContent-Disposition: attachment; filename*0*=utf-8''%F0%9F; filename*1*=%98%80.txt\r\n\r\nx\r\n--o")
    s["message-deep"] = bytes([view | small]) + b"".join(
        b"Content-Type: multipart/mixed; boundary=\"d%d\"\r\n\r\n--d%d\r\n" % (i, i) for i in range(8)) + b"x\r\n"
    s["message-header-block-too-long"] = bytes([view | small]) + b"Subject: " + b"long " * 300 + b"\r\n\r\nbody\r\n"
    s["message-no-header"] = bytes([view]) + b"just text, no header block\r\nsecond line\r\n"

    s["html-script"] = bytes([html]) + (
        b"<!DOCTYPE html><html><head><title>t</title><style>p{}</style><meta charset=utf-8>"
        b"<script>document.write('<p>hidden</p>')</script></head><body onload='x()'>"
        b"<p>Hello &amp; welcome &#x1F600; &eacute;&nbsp;&lt;b&gt;</p><!-- comment --><div>line<br>break</div>"
        b"<pre>  keep\r\n   this</pre><table><tr><td>a<td>b</table><a href=\"javascript:alert('>')\">link</a>"
        b"<scr<script>ipt>alert(1)</script><noscript>n</noscript>&#0;&#x110000;&#99999999999;&#150;&amp</body></html>")
    s["html-small-limit"] = bytes([html | small, 20]) + "<p>Grüße</p><p>aus München 😀😀😀</p>".encode()
    s["html-unclosed"] = bytes([html]) + b"<head><title>never closed <p>x</p><script>y"

    def reply_seed(date, fields):
        return bytes([reply]) + struct.pack("<q", date) + b"\x1f".join(fields)

    s["reply-plain"] = reply_seed(1741078800, [
        b"portal@example.org", b"Alice Example", b"juergen@example.de", "Jürgen Müller".encode(), b"alice@example.org",
        b"Befund f\xc3\xbcr Sie", b"<AM0PR01MB1234@example.de>", b"<root@example.de> <mid@example.de>", b"",
        b"portal.example.org", b"Danke!\nFrom here on.\n\n-- \nAlice"])
    s["reply-attachments"] = reply_seed(0, [
        b"portal@example.org", b"", b"juergen@example.de", b"", b"", b"RE: already a reply", b"", b"", b"<fixed@example.org>",
        b"", b"text", b"Antwort.pdf", b"%PDF-1.4\n", "Röntgen \u202egpj.exe".encode(), b"MZ\x00\x01", b"", b""])
    s["reply-injection"] = reply_seed(-5, [
        b"alice@example.org\r\nBcc: spy@evil.example", b"Alice\r\nBcc: spy@evil.example",
        b"bob@example.org, victim@example.net <x@y>", b"\"Bob\\\" <evil@x>", b"x\ny@z",
        b"Hi\r\nBcc: spy@evil.example\r\n\r\nbody injection =?utf-8?q?x?=", b"<ok@x>\r\nBcc: spy@evil.example",
        b"<a@b>\r\nBcc: <spy@evil.example>" + b" <r@x>" * 30, b"<x\r\nBcc: y@z>", b"evil\r\nBcc: spy",
        b"line \r\n.\r\nFrom me\r\n" + b"w" * 200 + b"\t\n\x00\x1b",
        b"a\r\nContent-Type: text/html\r\n\r\n<script>.txt", b"data"])
    # Addresses of invalid UTF-8 (each byte comes back as three) and a name of
    # quotes (each escaped): once lines over 998 octets.
    s["reply-long-address"] = reply_seed(1, [
        b"a" * 600 + b"@example.org", b"\"" * 300, b"\xff" * 400 + b"@example.org", b"\\" * 300, b"\x80" * 400,
        b"x", b"", b"", b"", b"", b"t"])
    s["reply-long-subject"] = reply_seed(2 ** 62, [
        b"a@example.org", b"\xff\xfe", b"b@example.org", b"x" * 300, b"", b"w" * 300 + b" " + b"v" * 1000, b"", b"", b"",
        b"", b""])

    s["text-mixed"] = bytes([text]) + (
        b"a=1&b=%41; __Host-sg=v; <p>x</p>\xc3\x28\xe2\x80\xae\x1b ../..\\name.exe")
    return s


def intake_seeds():
    """fuzz_intake: two switch bytes (the body cut, whether the body changes),
    then a message: what relay_access reads after DATA and what the outgoing
    finisher judges and signs (see tests/fuzz/feed_intake.cpp)."""
    here = os.path.join(ROOT, "tests", "integration", "data")
    with open(os.path.join(here, "m365-outbound-headers.txt"), "rb") as f:
        m365 = f.read().rstrip(b"\n") + b"\n\nWW91ciByZXN1bHRz\n"
    with open(os.path.join(ROOT, "tests", "unit", "data", "dkim", "rfc8463-signed.eml"), "rb") as f:
        rfc = f.read()
    s = {}
    s["m365-right-tenant"] = bytes([1, 0]) + m365
    s["m365-other-tenant"] = bytes([1, 0]) + m365.replace(b"72f988bf-0000-4000-8000-00000000c0de",
                                                         b"0d2c8a55-1111-4222-8333-444455556666")
    s["m365-two-tenants"] = bytes([3, 0]) + b"X-MS-Exchange-CrossTenant-Id: a\nX-MS-Exchange-CrossTenant-Id: b\n\nx\n"
    s["rfc8463-unchanged"] = bytes([7, 0]) + rfc
    s["rfc8463-body-changed"] = bytes([7, 1]) + rfc
    s["signed-by-us"] = bytes([4, 0]) + (b"From: a@example.org\r\nSubject: s  \r\n\tfolded\r\n"
                                         b"DKIM-Signature: v=1; a=rsa-sha256; c=simple; d=x; s=y; h=from; bh=; b=\r\n"
                                         b"DKIM-Signature: garbage\r\n\r\nbody \t \r\n\r\n\r\n")
    s["received-51"] = bytes([0, 0]) + b"Received: x\n" * 51 + b"\nbody\n"
    s["loop-stamps"] = bytes([0, 0]) + b"Sealgate-Loop: v=1; h=gw.fuzz.test; t=1800000000; m=AAAAAAAAAAAAAAAAAAAAAA\n" * 4 + b"\n"
    # Found by the fuzzer: a first line without a colon, the colon further down.
    s["name-across-lines"] = bytes([0, 0]) + b"garbage line\r\n  X  Y : v\r\nFrom: a@example.org\r\n\r\nb\r\n"
    s["no-header"] = bytes([0, 0]) + b"\r\nbody only\r\n"
    s["no-body"] = bytes([0, 0]) + b"From: a@b.example.org\r\nTo: c@d\r\n"
    # Found by the fuzzer in CI: only the empty line was taken for a header
    # block cut short at 1 MiB and left unstamped.
    s["only-empty-line"] = bytes([0, 0]) + b"\r\n"
    return s


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def proxy_protocol_seeds():
    """fuzz_proxy_protocol: the bytes a load balancer sends before a client's
    (PROXY protocol v2, HAProxy's doc/proxy-protocol.txt): what HAProxy's
    send-proxy-v2 writes, and the refusals (see tests/fuzz/feed_proxy_protocol.cpp)."""
    sig = b"\r\n\r\n\x00\r\nQUIT\n"

    def v2(ver_cmd, fam, rest, length=None):
        return sig + bytes([ver_cmd, fam]) + struct.pack(">H", len(rest) if length is None else length) + rest

    tcp4 = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack(">HH", 40000, 25)
    tcp6 = (bytes.fromhex("20010db8000000000000000000000007") + bytes.fromhex("20010db8000000000000000000000001")
            + struct.pack(">HH", 40000, 465))
    s = {}
    s["local"] = v2(0x20, 0x00, b"")
    s["unspec"] = v2(0x21, 0x00, b"\x00" * 4)
    s["tcp4"] = v2(0x21, 0x11, tcp4)
    s["tcp6"] = v2(0x21, 0x21, tcp6)
    s["tcp4-tlvs"] = v2(0x21, 0x11, tcp4 + b"\x01\x00\x02h2" + b"\x02\x00\x0bexample.org" + b"\x04\x00\x00")
    with_crc = v2(0x21, 0x11, tcp4 + b"\x03\x00\x04\x00\x00\x00\x00")
    good = with_crc[:-4] + struct.pack(">I", crc32c(with_crc))
    s["tcp4-crc32c"] = good
    s["tcp4-crc32c-bad"] = good[:-1] + bytes([good[-1] ^ 1])
    s["tcp4-then-ehlo"] = v2(0x21, 0x11, tcp4) + b"EHLO client.example\r\n"
    s["tcp6-then-clienthello"] = v2(0x21, 0x21, tcp6) + bytes.fromhex("160301020001000001fc0303")
    s["v1-text"] = b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 25\r\n"
    s["unix"] = v2(0x21, 0x31, b"\x00" * 216)
    s["udp4"] = v2(0x21, 0x12, tcp4)
    s["length-past-cap"] = v2(0x21, 0x11, tcp4 + b"\x20\x03\xf2" + b"\x00" * 1010)
    s["truncated"] = v2(0x21, 0x11, tcp4[:6], 12)
    s["tlv-past-end"] = v2(0x21, 0x11, tcp4 + b"\x05\x00\x20abc")
    s["plain-smtp"] = b"EHLO client.example\r\n"
    return s


def corpora():
    dns, sts = {}, {}
    for name, data in dns_and_sts_seeds().items():
        (dns if name.startswith("dns-") else sts)[name] = data
    return {
        "fuzz_dns": dns,
        "fuzz_mta_sts": sts,
        "fuzz_smtp_reply": smtp_reply_seeds(),
        "fuzz_smtp_inbound": inbound_seeds(),
        "fuzz_data_reader": data_reader_seeds(),
        "fuzz_mime_classify": mime_seeds(),
        "fuzz_config": config_seeds(),
        "fuzz_policy": policy_seeds(),
        "fuzz_portal_web": portal_web_seeds(),
        "fuzz_intake": intake_seeds(),
        "fuzz_proxy_protocol": proxy_protocol_seeds(),
    }


def main():
    # Seeds of the same name keep their bytes; files the generator no longer
    # writes (and any fuzzer-found ones added by hand) are left alone.
    total = 0
    for target, seeds in sorted(corpora().items()):
        out = os.path.join(OUT, target)
        os.makedirs(out, exist_ok=True)
        for name, data in sorted(seeds.items()):
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
        total += len(seeds)
    print("%d seeds in %s" % (total, OUT))


if __name__ == "__main__":
    main()
