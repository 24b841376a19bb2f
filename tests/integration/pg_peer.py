"""A real PostgreSQL 15 (Debian's postgresql-15) for the tests, in a directory of
its own: initdb and pg_ctl run as an unprivileged user (PostgreSQL refuses
root), the server listens on a Unix socket in that directory and, if asked, on
one loopback TCP port, and it is stopped by the tests themselves.

As a module: PostgreSQL(directory).start() / .stop() / .kill() / .psql().
As a command (the unit tests' ctest fixture):
    pg_peer.py start DIR      # prints the connection string, also in DIR/conninfo
    pg_peer.py stop DIR
"""
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

BIN = "/usr/lib/postgresql/15/bin"
USER = "nobody"  # the server's Unix user; the database superuser is "sealgate"


def _runuser(*argv, **kw):
    if os.getuid() == 0:
        argv = ("runuser", "-u", USER, "--") + argv
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


class PostgreSQL:
    def __init__(self, directory=None, port=None, host="127.0.0.1", durable=True):
        """port: also listen on host:port (TCP, loopback only); None: the Unix
        socket only. durable=False turns fsync off (unit tests; never for a
        test that stops the server abruptly and counts what survived)."""
        self.owned = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="sealgate-pg-")
        self.port = port
        self.host = host
        self.durable = durable
        self.data = os.path.join(self.directory, "data")
        self.socket_dir = os.path.join(self.directory, "sock")
        self.log = os.path.join(self.directory, "log", "postgresql.log")

    def conninfo(self, dbname="postgres", tcp=None):
        if tcp or (tcp is None and self.port):
            return f"host={self.host} port={self.port} user=sealgate dbname={dbname}"
        return f"host={self.socket_dir} user=sealgate dbname={dbname}"

    def _chown(self, path):
        if os.getuid() == 0:
            entry = pwd.getpwnam(USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o755)
        for d in (self.data, self.socket_dir, os.path.dirname(self.log)):
            os.makedirs(d, exist_ok=True)
            self._chown(d)
        if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
            os.chmod(self.data, 0o700)
            _runuser(f"{BIN}/initdb", "-D", self.data, "-U", "sealgate", "--auth=trust", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-sync")
        self._ctl_start()
        return self

    def _ctl_start(self):
        listen = f"-h {self.host} -p {self.port}" if self.port else "-h '' -p 5432"
        options = f"-k {self.socket_dir} {listen} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _runuser(f"{BIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options, "start")

    def restart(self):
        """Starts a stopped or killed server again on the same data."""
        self._ctl_start()

    def stop(self, mode="fast"):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                _runuser(f"{BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")
            except subprocess.CalledProcessError:
                pass

    def kill(self):
        """As a crash: no shutdown checkpoint, recovery at the next start."""
        self.stop("immediate")

    def close(self):
        self.stop()
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)

    def psql(self, sql, dbname="postgres"):
        out = subprocess.run([f"{BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                              self.conninfo(dbname, tcp=False), "-c", sql],
                             check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return out.stdout.strip()

    def create_database(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return self.conninfo(name)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    directory = os.path.abspath(argv[2])
    pg = PostgreSQL(directory, durable=False)
    if argv[1] == "start":
        pg.stop("immediate")  # a server left by an interrupted run
        pg.start()
        info = pg.conninfo()
        with open(os.path.join(directory, "conninfo"), "w") as f:
            f.write(info + "\n")
        print(info)
    else:
        pg.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
