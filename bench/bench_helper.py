"""Socket and memory helpers for the bench/ scripts (Python standard library only).

    bench_helper.py free-port [ADDRESS]            a free TCP port on ADDRESS (127.0.0.1)
    bench_helper.py probe PORT TIMEOUT [ADDRESS]   exit 0 once ADDRESS:PORT answers 220
    bench_helper.py idle PORT ROOTPID N [NEXT]     hold N idle connections (see idle())
    bench_helper.py cpu PID                        CPU seconds of PID (user + system, all threads)
    bench_helper.py cpu-postfix ETC                CPU seconds of the Postfix instance ETC (see cpu())

Nothing here talks to any address outside 127.0.0.0/8."""
import os
import socket
import sys
import time


def free_port(address="127.0.0.1"):
    s = socket.socket()
    s.bind((address, 0))
    print(s.getsockname()[1])


def banner(s, deadline):
    """The server's whole greeting (multi-line replies included)."""
    buf = b""
    while not buf.endswith(b"\r\n") or not buf.split(b"\r\n")[-2][3:4] == b" ":
        s.settimeout(max(0.01, deadline - time.time()))
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the banner")
        buf += chunk
    return buf


def probe(port, timeout, address="127.0.0.1"):
    """Exit 0 once a server on address:port answers 220 (and QUIT)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((address, port), timeout=2) as s:
                if banner(s, time.time() + 5).startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    s.settimeout(2)
                    try:
                        s.recv(512)
                    except OSError:
                        pass
                    return 0
        except OSError:
            pass
        time.sleep(0.1)
    return 1


def tree(root):
    """root and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def field(path, name):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(root):
    """(processes, VmRSS KiB summed, Pss KiB summed) over root's tree."""
    pids = tree(root)
    rss = sum(field(f"/proc/{p}/status", "VmRSS") for p in pids)
    pss = sum(field(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
    return len(pids), rss, pss


def cpu_ticks(pid, children):
    """utime + stime of pid, and with children also cutime + cstime: the CPU of
    the children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # fields[0] is the state (field 3 of stat): utime is field 14.
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def cpu(pids, children=False):
    """CPU seconds used by pids (and the children they have reaped)."""
    hz = os.sysconf("SC_CLK_TCK")
    print("%.2f" % (sum(cpu_ticks(p, children) for p in pids) / hz))


def postfix_pids(etc):
    """The processes of one Postfix instance: they carry MAIL_CONFIG=etc."""
    want = ("MAIL_CONFIG=" + etc).encode()
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if want in f.read().split(b"\0"):
                        out.append(int(d))
            except OSError:
                pass
    return out


def idle(port, root, n, check_next=False):
    """Hold n connections that read the 220 banner and then stay silent;
    print process count, RSS and PSS of root's tree before and with them.
    check_next: while they are held, open one more connection and print the
    reply code of its greeting (next_code=220, or 421 when it was refused,
    0 when it got none)."""
    before = memory(root)
    socks, ok, errors = [], 0, {}
    deadline = time.time() + 60 + n / 200

    def count(e):
        errors[e] = errors.get(e, 0) + 1

    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        except OSError as e:
            count(str(e))
    for s in socks:
        try:
            if banner(s, deadline).startswith(b"220"):
                ok += 1
            else:
                count("no 220 banner")
        except (OSError, ConnectionError) as e:
            count(str(e) or type(e).__name__)
    time.sleep(1.0)  # let the server settle
    after = memory(root)
    line = (f"idle_ok={ok} before_procs={before[0]} before_rss={before[1]} before_pss={before[2]} "
            f"after_procs={after[0]} after_rss={after[1]} after_pss={after[2]}")
    if check_next:
        code, text = 0, ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                reply = banner(s, time.time() + 10)
                text = reply.decode("utf-8", "replace").strip().splitlines()[0]
                code = int(reply[:3]) if reply[:3].isdigit() else 0
                if code == 220:
                    s.sendall(b"QUIT\r\n")
        except (OSError, ConnectionError) as e:
            text = str(e) or type(e).__name__
        line += f" next_code={code}\nnext_reply={text}"
    print(line, flush=True)
    for e, c in errors.items():
        print(f"idle_error={c}x {e}", file=sys.stderr)
    for s in socks:
        s.close()


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "free-port":
        free_port(*argv[2:3])
    elif cmd == "probe":
        sys.exit(probe(int(argv[2]), float(argv[3]), *argv[4:5]))
    elif cmd == "cpu":
        cpu([int(argv[2])])
    elif cmd == "cpu-postfix":
        # Live processes plus what the master (and any other) has reaped from
        # the ones that already exited: the whole instance's CPU so far.
        cpu(postfix_pids(argv[2]), children=True)
    elif cmd == "idle":
        idle(int(argv[2]), int(argv[3]), int(argv[4]), len(argv) > 5 and argv[5] == "1")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
