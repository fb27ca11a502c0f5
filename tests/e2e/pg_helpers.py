"""
A real PostgreSQL for the end-to-end tests, from Debian's postgresql
package: initdb into a temporary folder, run as an unprivileged user
(`nobody` when the tests run as root: PostgreSQL refuses root), listening
on a free loopback port only, stopped at the end. No mock.

  PgServer      one server: start(), stop(), create_db(name) -> conninfo,
                query(db, sql) -> rows (through psql, as JSON)
  shared_server one server for every test that needs one, started on first
                use, destroyed at the end of the session (each daemon gets a
                database of its own); the pg_server fixture returns it
  PgSpool       what durability_helpers.Spool reads from a SQLite spool,
                read from a database instead

The server runs with fsync off: the tests kill daemons and stop the
server, they never cut the machine's power, so the operating system's
cache holds everything they check, and CREATE DATABASE stays fast.
"""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_ports


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin with initdb, or None."""
    root = Path("/usr/lib/postgresql")
    found = sorted((p for p in root.glob("*/bin") if (p / "initdb").exists()),
                   key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


class PgServer:
    """One PostgreSQL server in a throwaway folder, on 127.0.0.1:port."""

    def __init__(self, port=None):
        bindir = pg_bindir()
        if bindir is None:
            pytest.fail("PostgreSQL is not installed: run `bash scripts/deps.sh test` "
                        "(Debian package postgresql)", pytrace=False)
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="sy-pg-"))
        self.data = self.dir / "data"
        self.port = port or free_ports(1)[0]
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
            pytest.fail(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}",
                        pytrace=False)
        return r

    def start(self):
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.dir} -c fsync=off "
                f"-c synchronous_commit=on -c full_page_writes=off -c max_connections=200")
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

    def psql(self, db, sql, timeout=30):
        r = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", sql],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {r.stderr.strip()}")
        return r.stdout

    def query(self, db, sql):
        """The rows of sql as a list of dicts (column name -> value)."""
        out = self.psql(db, f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t")
        return json.loads(out)

    def create_db(self, name):
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}"')
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.conninfo(name)


_shared = [None]


def shared_server(request):
    """The session's one server, started on first use and destroyed when the session ends."""
    if _shared[0] is None:
        _shared[0] = PgServer().start()
        request.config.add_cleanup(_shared[0].destroy)
    return _shared[0]


@pytest.fixture
def pg_server(request):
    """The session's server (see shared_server)."""
    return shared_server(request)


_dbs = [0]


def fresh_db(server, prefix="sy"):
    """A new, empty database on server: (name, conninfo)."""
    _dbs[0] += 1
    name = f"{prefix}_{os.getpid()}_{_dbs[0]}_{int(time.time() * 1000) % 100000}"
    return name, server.create_db(name)


def lit(v):
    """A SQL literal for a test's own value."""
    if v is None:
        return "NULL"
    if isinstance(v, int):
        return str(v)
    return "'" + str(v).replace("'", "''") + "'"


class PgSpool:
    """durability_helpers.Spool's reads, from a PostgreSQL database."""

    def __init__(self, server, db):
        self.server = server
        self.db = db

    def _rows(self, sql):
        return self.server.query(self.db, sql)

    def user_version(self):
        return self._rows("SELECT version FROM switchyard_schema")[0]["version"]

    def columns(self, table):
        return [r["column_name"] for r in self._rows(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            f"{lit(table)} ORDER BY ordinal_position")]

    def deliveries(self, endpoint=None):
        where = f" WHERE d.endpoint = {lit(endpoint)}" if endpoint is not None else ""
        return self._rows("SELECT e.event_id, d.endpoint, d.state, d.attempt, d.last_status, "
                          "d.last_detail, d.next_ms, d.id, d.lease FROM deliveries d JOIN events "
                          f"e ON e.id = d.event_rowid{where} ORDER BY d.id")

    def states(self, endpoint=None):
        where = f" WHERE endpoint = {lit(endpoint)}" if endpoint is not None else ""
        return {r["state"]: r["n"] for r in self._rows(
            f"SELECT state, count(*) AS n FROM deliveries{where} GROUP BY state")}

    def attempts(self, endpoint=None):
        where = f" WHERE d.endpoint = {lit(endpoint)}" if endpoint is not None else ""
        return self._rows("SELECT a.id, a.delivery_id, a.attempt, a.at_ms, a.result, a.status, "
                          "a.detail, a.latency_ms, d.endpoint FROM attempts a JOIN deliveries d "
                          f"ON d.id = a.delivery_id{where} ORDER BY a.id")

    def count_events(self):
        return self._rows("SELECT count(*) AS n FROM events")[0]["n"]
