"""
A throwaway PostgreSQL server from Debian's postgresql package, for the
end-to-end tests (tests/e2e/pg_helpers.py) and the benchmarks
(bench/bench_store.py, bench/bench_cluster.py): initdb into a temporary
folder, run as an unprivileged user (`nobody` when the caller is root:
PostgreSQL refuses root), listening on 127.0.0.1 and a free port only, and
removed by destroy().

    s = PgServer(fsync=False).start()
    conninfo = s.create_db("t1")
    rows = s.query("t1", "SELECT 1 AS one")     # [{"one": 1}]
    s.stop(); s.start()                          # same port, same data
    s.destroy()

Failures raise RuntimeError with the command's output.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin holding initdb, or None."""
    root = Path("/usr/lib/postgresql")
    found = sorted((p for p in root.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgServer:
    """
    One server in a throwaway folder on 127.0.0.1:port. fsync=False suits
    tests (they kill processes, never the machine's power); benchmarks keep
    it on, so a commit costs what it costs in production.
    """

    def __init__(self, port=None, fsync=True, settings=None):
        self.bin = pg_bindir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed: run `bash scripts/deps.sh test` "
                               "(Debian package postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="sy-pg-"))
        self.data = self.dir / "data"
        self.port = port or free_port()
        self.fsync = fsync
        self.settings = settings or {}
        self.user = None
        if os.geteuid() == 0:
            self.user = "nobody"
            os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, -1)
        self._as_user([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                       "--auth=trust", "-E", "UTF8", "--no-sync"], timeout=120)
        self.running = False

    def _as_user(self, argv, timeout=60, check=True):
        if self.user:
            argv = ["runuser", "-u", self.user, "--"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           cwd=str(self.dir))
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n"
                               f"{r.stderr}")
        return r

    def start(self):
        settings = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.dir),
                    "max_connections": "200"}
        if not self.fsync:
            settings.update({"fsync": "off", "full_page_writes": "off"})
        settings.update(self.settings)
        opts = f"-p {self.port} " + " ".join(f"-c {k}={v}" for k, v in settings.items())
        self._as_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts,
                       "-l", str(self.dir / "server.log"), "-w", "-t", "60", "start"],
                      timeout=90)
        self.running = True
        return self

    def stop(self, mode="fast"):
        if self.running:
            self._as_user([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                           "-t", "60", "stop"], timeout=90, check=False)
            self.running = False

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self, db):
        return f"host=127.0.0.1 port={self.port} dbname={db} user=postgres"

    def psql(self, db, sql, timeout=60):
        r = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return r.stdout

    def query(self, db, sql):
        """The rows of sql as a list of dicts (column name -> value)."""
        return json.loads(self.psql(db, f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t"))

    def create_db(self, name):
        """An empty database `name` (dropped first if it exists); returns its conninfo."""
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}"')
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.conninfo(name)
