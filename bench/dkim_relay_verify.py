"""Verifies DKIM signatures of messages an smtp-sink dumped (-d), for bench/dkim_relay.sh.

    dkim_relay_verify.py RECORD_FILE DOMAIN SELECTOR SAMPLE < list of dump files

RECORD_FILE holds the key record ("v=DKIM1; k=rsa; p=...", the strings of
`sealgate dkim keygen`'s TXT record joined); it is the only DNS answer dkimpy
gets. Of the files named on standard input (sorted), SAMPLE are checked: the
first, the last and some evenly between. Each must carry a DKIM-Signature with
d=DOMAIN s=SELECTOR that dkimpy verifies. Prints one line per file and then
"verified K of N"; exits 1 when any fails.

An smtp-sink dump is the client's message with LF line ends, after lines of its
own (X-Client-Addr, X-Client-Proto, X-Helo-Args, X-Mail-Args, X-Rcpt-Args and
a three-line Received field) and before one empty line; the message is taken
back out of it with CRLF line ends (what was sent; relaxed body
canonicalisation ignores the trailing empty line)."""
import re
import sys

import dkim

SINK_FIELDS = ("x-client-addr:", "x-client-proto:", "x-helo-args:", "x-mail-args:", "x-rcpt-args:")


def message_of(dump):
    lines = dump.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].lower().startswith(tuple(f.encode() for f in SINK_FIELDS)):
        i += 1
    if i < len(lines) and lines[i].lower().startswith(b"received:"):  # smtp-sink's own, with its folded lines
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\r\n".join(lines[i:])


def tags_of(msg):
    m = re.search(rb"^DKIM-Signature:(.*?)\r\n(?![ \t])", msg, re.S | re.M | re.I)
    if not m:
        return {}
    value = re.sub(rb"\s+", b"", m.group(1)).decode(errors="replace")
    return dict(t.split("=", 1) for t in value.split(";") if "=" in t)


def main(argv):
    record = open(argv[1], "rb").read().strip()
    domain, selector, sample = argv[2], argv[3], int(argv[4])
    want = ("%s._domainkey.%s" % (selector, domain)).encode()

    def dnsfunc(name, timeout=5):
        return record if name.rstrip(b".").lower() == want else None

    files = [l.strip() for l in sys.stdin if l.strip()]
    if not files:
        print("no messages at the sink")
        return 1
    n = min(sample, len(files))
    picks = sorted({round(k * (len(files) - 1) / max(1, n - 1)) for k in range(n)})
    ok = 0
    for k in picks:
        msg = message_of(open(files[k], "rb").read())
        t = tags_of(msg)
        try:
            good = (t.get("d") == domain and t.get("s") == selector and
                    dkim.verify(msg, dnsfunc=dnsfunc, minkey=1024))
        except Exception as e:  # dkim.ValidationError and parse errors: a failure, told
            print("%s: %s: %s" % (files[k], type(e).__name__, e))
            good = False
        ok += bool(good)
        print("%s: %s (a=%s c=%s d=%s s=%s, h=%s)" % (files[k].rsplit("/", 2)[-2] + "/" + files[k].rsplit("/", 1)[-1],
                                                     "ok" if good else "FAILED", t.get("a"), t.get("c"), t.get("d"),
                                                     t.get("s"), t.get("h")))
    print("verified %d of %d" % (ok, len(picks)))
    return 0 if ok == len(picks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
