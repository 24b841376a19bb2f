#!/usr/bin/env python3
"""Writes the seed corpus of the parsers' fuzz target (tests/fuzz/corpus/):
valid DNS answers and the hostile ones of tests/unit/dns_message_test.cpp
(truncations, compression-pointer loops, wrong rdlength, oversized names and
labels), MTA-STS records and policies, SMTP replies. Deterministic: rerun it
after changing a seed and commit the result. The corpus replay unit test
(tests/unit/fuzz_corpus_test.cpp) runs every file through the parsers."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


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


def seeds():
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
    s["smtp-ehlo"] = (b"250-mx.example.net\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                      b"250-SMTPUTF8\r\n250-REQUIRETLS\r\n250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES\r\n")
    s["smtp-mixed-codes"] = b"250-a\r\n251 b\r\n"
    s["smtp-enhanced"] = b"550 5.7.1 Relaying denied\r\n421 4.4.2 timeout\r\n250 2.1000.1 bad\r\n"
    s["smtp-garbage"] = b"hello\r\n\x00\xff\r\n2200\r\n"
    return s


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds()), OUT))


if __name__ == "__main__":
    main()
