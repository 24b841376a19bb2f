#!/usr/bin/env python3
"""bench/slow_mx_memory.py: peak memory of sealgate relaying large messages
to a slow MX (issue 12, finding 17), for one or more builds in the same run.

N messages of SIZE MiB each go through the gateway to an MX (Python, on
127.0.6.50) that reads each connection's content at RATE bytes per second, so
that every transfer is in flight at once. The gateway's peak resident memory
(VmHWM) is printed per binary. A build that holds each message in memory
during its pass needs about N x SIZE MiB; one that streams from the spool file
needs about its baseline.

Usage (root: unbound and nsd are started as in the integration tests):
    bench/slow_mx_memory.py [BINARY ...]          # default build/gateway/sealgate
    BENCH_MESSAGES=20 BENCH_MIB=20 BENCH_RATE=2000000 bench/slow_mx_memory.py old/sealgate build/gateway/sealgate
Timing never fails it; it exits 1 only when a message was not delivered.
"""
import os
import shutil
import smtplib
import socket
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(here)
sys.path.insert(0, os.path.join(repo, "tests", "integration"))
import harness  # noqa: E402
import probe_peers as peers  # noqa: E402

N = int(os.environ.get("BENCH_MESSAGES", "20"))
MIB = int(os.environ.get("BENCH_MIB", "20"))
RATE = int(os.environ.get("BENCH_RATE", "2000000"))
MX = "127.0.6.50"


class SlowMx:
    """Takes every message, reading its content at RATE bytes per second."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((MX, port))
        self.sock.listen(64)
        self.delivered = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        buf = b""
        try:
            conn.sendall(b"220 slow ESMTP\r\n")
            while True:
                while b"\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                line, buf = buf.split(b"\r\n", 1)
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-slow\r\n250-PIPELINING\r\n250 SIZE 100000000\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    start, got = time.time(), 0
                    while b"\r\n.\r\n" not in buf[-5:] and not buf.endswith(b"\r\n.\r\n"):
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        got += len(chunk)
                        buf = (buf + chunk)[-8:]
                        ahead = got / RATE - (time.time() - start)
                        if ahead > 0:
                            time.sleep(ahead)
                    buf = b""
                    with self.lock:
                        self.delivered += 1
                    conn.sendall(b"250 2.0.0 Ok\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()


class Cleanups:
    """Stands in for the unittest.TestCase that harness.Gateway registers its cleanups with."""

    def __init__(self):
        self.items = []

    def id(self):  # named in SEALGATE_KEEP_TMP's message
        return "slow_mx_memory"

    def addCleanup(self, f, *a):
        self.items.append((f, a))

    def run(self):
        for f, a in reversed(self.items):
            try:
                f(*a)
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass


def vm(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run(binary, dns, port, mx):
    harness.BIN = binary
    c = Cleanups()
    try:
        gw = harness.Gateway(c, listeners=[{"name": "smarthost", "tls": "none", "auth": "none"}],
                             limits={"message_size": "%dMiB" % (MIB + 1)}, queue="{destination_concurrency: %d}" % N,
                             expect_clean_exit=False)
        with open(os.path.join(gw.dir, "policy.yaml"), "w") as f:
            f.write("rules:\n  - name: default\n    methods: [plain]\n")
        gw.add_config("policy_file: policy.yaml\n"
                      'dns: {servers: ["127.0.0.1:%d"], timeout: 5s}\n'
                      "delivery: {port: %d}\n" % (dns.port, port))
        gw.start()
        mx.delivered = 0
        body = "".join("%07d %s\r\n" % (i, "m" * 90) for i in range(MIB * 1024 * 1024 // 100))
        msg = "From: a@bench.test\r\nTo: b@slow.bench.test\r\nSubject: large\r\n\r\n" + body
        baseline = vm(gw.proc.pid, "VmRSS")
        start = time.time()
        senders = []
        for i in range(N):
            def send():
                with smtplib.SMTP("127.0.0.1", gw.port, timeout=300) as s:
                    s.sendmail("a@bench.test", ["r%d@slow.bench.test" % i], msg)
            t = threading.Thread(target=send)
            t.start()
            senders.append(t)
        for t in senders:
            t.join()
        peak_rss = 0
        while mx.delivered < N and time.time() - start < 900:
            peak_rss = max(peak_rss, vm(gw.proc.pid, "VmRSS"))
            time.sleep(0.1)
        hwm = vm(gw.proc.pid, "VmHWM")
        elapsed = time.time() - start
        ok = mx.delivered >= N
        gw.stop()
        return ok, baseline, hwm, elapsed
    finally:
        c.run()


def main():
    binaries = sys.argv[1:] or [os.path.join(repo, "build", "gateway", "sealgate")]
    d = tempfile.mkdtemp(prefix="sealgate-bench-mem-")
    cleanups = []
    try:
        port = peers.free_port_on([MX])
        data = ["bench.test. 600 IN SOA ns.bench.test. h.bench.test. 1 3600 600 86400 60",
                "mx.slow.bench.test. 300 IN A " + MX, "slow.bench.test. 300 IN MX 10 mx.slow.bench.test."]
        os.makedirs(os.path.join(d, "dns"))
        # The harness waits for a signed zone to validate before it returns: a tiny one.
        signed = {"sig.test": "$ORIGIN sig.test.\n$TTL 300\n@ IN SOA ns.sig.test. h.sig.test. 1 3600 600 86400 60\n"
                              "@ IN NS ns.sig.test.\nns IN A 127.0.0.1\n"}
        dns = peers.Dns(os.path.join(d, "dns"), signed, {}, "bench.test", data, cleanups)
        mx = SlowMx(port)  # one for every run: its address stays bound
        print("%d messages of %d MiB to one MX reading %.1f MB/s per connection" % (N, MIB, RATE / 1e6))
        print("%-50s %10s %10s %10s %8s" % ("binary", "base MiB", "peak MiB", "growth", "seconds"))
        failed = False
        for b in binaries:
            ok, base, hwm, elapsed = run(os.path.abspath(b), dns, port, mx)
            failed |= not ok
            print("%-50s %10.1f %10.1f %10.1f %8.1f%s" % (b[-50:], base / 1024, hwm / 1024, (hwm - base) / 1024, elapsed,
                                                          "" if ok else "  NOT ALL DELIVERED"))
        return 1 if failed else 0
    finally:
        for f in reversed(cleanups):
            try:
                f()
            except Exception:  # noqa: BLE001
                pass
        shutil.rmtree(d, True)


if __name__ == "__main__":
    sys.exit(main())
