"""HAProxy (Debian's 2.6) as a test peer: the load balancer in front of a
gateway or a portal (issue 18). Writes its configuration into a temporary
directory of the test, runs `haproxy -f CFG -db` (foreground, no daemon, its
log on stdout into haproxy.log there), waits until every frontend's port is
bound (without connecting: a test connection would reach the backend as a
client), and stops it by its PID when the test ends, failed or not.
Loopback addresses only (127.0.0.0/8)."""
import os
import subprocess
import time

from harness import _bindable, make_tempdir, stop_process

# Logs to stdout (captured in haproxy.log); timeouts long enough for a test
# that holds a connection, short enough that nothing outlives the test.
GLOBAL = """\
global
    maxconn 200
    log stdout format raw local0
defaults
    mode tcp
    log global
    option dontlognull
    timeout connect 5s
    timeout client 60s
    timeout server 60s
"""


class Haproxy:
    """frontends: the (address, port) pairs the configuration binds, waited for
    at start. config: everything after the global and defaults sections."""

    def __init__(self, testcase, config, frontends):
        for address, _ in frontends:
            assert address.startswith("127."), "loopback only"
        self.dir = make_tempdir(testcase, prefix="sealgate-haproxy-")
        self.config_path = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.frontends = list(frontends)
        with open(self.config_path, "w") as f:
            f.write(GLOBAL + config)
        check = subprocess.run(["haproxy", "-c", "-f", self.config_path], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise AssertionError("haproxy refused its configuration:\n%s%s" % (check.stdout, check.stderr))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["haproxy", "-f", self.config_path, "-db"], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        testcase.addCleanup(self.stop)
        deadline = time.monotonic() + 15
        while not all(self._bound(a, p) for a, p in self.frontends):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("haproxy did not start:\n" + self.read_log())
            time.sleep(0.05)

    @staticmethod
    def _bound(address, port):
        return not _bindable(address, port)

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """SIGTERM to our PID, SIGKILL after 10 s."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        stop_process(proc)
        self._log.close()
