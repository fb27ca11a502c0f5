"""
A real PostgreSQL for the end-to-end tests, from Debian's postgresql
package: initdb into a temporary folder, run as an unprivileged user
(`nobody` when the tests run as root: PostgreSQL refuses root), listening
on a free loopback port only, stopped at the end. No mock.

  PgServer      one server (scripts/pgserver.py, fsync off): start(),
                stop(), create_db(name) -> conninfo, query(db, sql) -> rows
  shared_server one server for every test that needs one, started on first
                use, destroyed at the end of the session (each daemon gets a
                database of its own); the pg_server fixture returns it
  PgSpool       what durability_helpers.Spool reads from a SQLite spool,
                read from a database instead

The server runs with fsync off: the tests kill daemons and stop the
server, they never cut the machine's power, so the operating system's
cache holds everything they check, and CREATE DATABASE stays fast.
"""

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import pgserver  # noqa: E402  (scripts/pgserver.py: shared with the benchmarks)


class PgServer(pgserver.PgServer):
    """scripts/pgserver.py's server with fsync off, failing the test on errors."""

    def __init__(self, port=None):
        try:
            super().__init__(port=port, fsync=False)
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)

    def start(self):
        try:
            return super().start()
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)


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
