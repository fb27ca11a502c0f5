"""
Helpers shared by the durability end-to-end tests (test_durability*.py,
test_spool*.py, test_gate*.py): a daemon with a spool file and an `ack`
(ROUTER) ingress, an acknowledging publisher built on a pyzmq DEALER, and
readers for the spool database, the file sink and the flaky sink's log.

Everything builds on conftest.py (Daemon, free_ports, wait_until, event,
flaky_calls, ...): SpoolDaemon only adds the ack socket to the config the
base class writes, and keeps that socket's port across restarts so a
publisher's DEALER reconnects to a restarted daemon on its own, exactly as
a real platform's publisher would.

Both stores: a test module that sets `STORE_BACKENDS = both_backends` runs
every test using spool_daemon twice, its daemons keeping their events in a SQLite file and then in a
database of their own on a real PostgreSQL (pg_helpers.py); `d.spool` reads
either the same way.
"""

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
import zmq

from conftest import (BIN, FLAKY, PLUGIN_DIR, Daemon, cli, event, flaky_calls, free_ports, get,
                      read_lines, wait_until, write_config)
from pg_helpers import PgSpool, fresh_db, shared_server

__all__ = ["both_backends", "BIN", "DONE", "PENDING", "DEAD", "SPOOL_V1_SQL", "SpoolDaemon", "spool_daemon",
           "AckClient", "Spool", "flaky_sink", "file_sink", "sink_ids", "sink_events",
           "max_starts_in_window", "event", "flaky_calls", "cli", "get", "wait_until", "FLAKY",
           "PLUGIN_DIR", "read_lines", "replay", "write_config"]

SPOOL_V1_SQL = (
    # schema_v1 of core/spool.c, verbatim: what a version-1 spool file holds.
    "CREATE TABLE IF NOT EXISTS events ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id TEXT NOT NULL UNIQUE,"
    "  received_ms INTEGER NOT NULL,"
    "  body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  event_rowid INTEGER NOT NULL REFERENCES events(id),"
    "  endpoint TEXT NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL DEFAULT 0,"
    "  first_ms INTEGER NOT NULL DEFAULT 0,"
    "  next_ms INTEGER NOT NULL,"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_detail TEXT NOT NULL DEFAULT '',"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_ms);"
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event_rowid);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    "  id INTEGER PRIMARY KEY,"
    "  delivery_id INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at_ms INTEGER NOT NULL,"
    "  result INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  detail TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts(delivery_id);")

PENDING, DONE, DEAD = 0, 1, 2

# `STORE_BACKENDS = both_backends` in a module runs its spool daemons on each store in turn.
both_backends = ("sqlite", "postgres")


# --------------------------------------------------------------------------
# sinks
# --------------------------------------------------------------------------

def flaky_sink(log, **keys):
    """A flaky sink instance config logging to `log`."""
    return {"plugin": str(FLAKY), "log": str(log), **keys}


def file_sink(path, **keys):
    """A file sink instance writing every event to one file (no template)."""
    return {"plugin": "file", "path": str(path), "fsync": "never", **keys}


def sink_ids(path):
    """event_id of every line of a file sink's output, in file order (torn lines fail)."""
    try:
        lines = read_lines(path)
    except FileNotFoundError:
        return []
    return [json.loads(l)["event_id"] for l in lines]


def sink_events(path):
    try:
        return [json.loads(l) for l in read_lines(path)]
    except FileNotFoundError:
        return []


def max_starts_in_window(starts, window):
    """The most starts inside any half-open window [t, t + window) (same unit as starts)."""
    s = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(s):
        while t - s[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


# --------------------------------------------------------------------------
# the spool file, read from the test (WAL: readers never block the daemon)
# --------------------------------------------------------------------------

class Spool:
    def __init__(self, path):
        self.path = Path(path)

    def _q(self, sql, args=()):
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def user_version(self):
        return self._q("PRAGMA user_version")[0][0]

    def hot_log(self):
        """The bytes of the hot log's segments beside the file (core.spool_log), in order."""
        p = Path(self.path)
        return b"".join(f.read_bytes() for f in sorted(p.parent.glob(p.name + "-hot.*")))

    def columns(self, table):
        return [r[1] for r in self._q(f"PRAGMA table_info({table})")]

    def deliveries(self, endpoint=None):
        """[{event_id, endpoint, state, attempt, last_status, last_detail, lease?}]"""
        cols = self.columns("deliveries")
        lease = ", d.lease" if "lease" in cols else ""
        sql = ("SELECT e.event_id, d.endpoint, d.state, d.attempt, d.last_status, "
               "d.last_detail, d.next_ms, d.id" + lease +
               " FROM deliveries d JOIN events e ON e.id = d.event_rowid")
        args = ()
        if endpoint is not None:
            sql += " WHERE d.endpoint = ?"
            args = (endpoint,)
        keys = ["event_id", "endpoint", "state", "attempt", "last_status", "last_detail",
                "next_ms", "id"] + (["lease"] if lease else [])
        return [dict(zip(keys, r)) for r in self._q(sql + " ORDER BY d.id", args)]

    def states(self, endpoint=None):
        """{state: count} of deliveries (optionally of one endpoint)."""
        sql = "SELECT state, count(*) FROM deliveries"
        args = ()
        if endpoint is not None:
            sql += " WHERE endpoint = ?"
            args = (endpoint,)
        return dict(self._q(sql + " GROUP BY state", args))

    def attempts(self, endpoint=None):
        """Rows of the attempts log in the order the dispatcher recorded them."""
        sql = ("SELECT a.id, a.delivery_id, a.attempt, a.at_ms, a.result, a.status, a.detail, "
               "a.latency_ms, d.endpoint FROM attempts a JOIN deliveries d ON d.id = "
               "a.delivery_id")
        args = ()
        if endpoint is not None:
            sql += " WHERE d.endpoint = ?"
            args = (endpoint,)
        keys = ["id", "delivery_id", "attempt", "at_ms", "result", "status", "detail",
                "latency_ms", "endpoint"]
        return [dict(zip(keys, r)) for r in self._q(sql + " ORDER BY a.id", args)]

    def count_events(self):
        return self._q("SELECT count(*) FROM events")[0][0]


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

class SpoolDaemon(Daemon):
    """
    conftest.Daemon plus an `ack` ingress (ROUTER) on a port picked once and
    kept across restarts, and (unless core says otherwise) a spool file in
    the daemon's folder that also survives restarts.
    """

    def __init__(self, tmp, sinks=None, endpoints=None, core=None, pg=None):
        super().__init__(tmp, sinks, endpoints, core)
        self.spool_path = self.tmp / "spool.db"
        if pg is None:
            self.core_extra = {"spool": str(self.spool_path), **(core or {})}
            self.spool = Spool(self.spool_path)
        else:
            self.db, self.conninfo = fresh_db(pg)
            self.core_extra = {"spool": None, "store": {"type": "postgres",
                                                        "conninfo": self.conninfo},
                               **(core or {})}
            self.spool = PgSpool(pg, self.db)
        self.ack_port = free_ports(1)[0]
        self.ack_addr = f"tcp://127.0.0.1:{self.ack_port}"
        self.runs = 0

    def _write_config(self):
        super()._write_config()
        p = self.conf_dir / "10-core.json"
        doc = json.loads(p.read_text())
        doc["core"]["ingress"].append({"type": "ack", "bind": self.ack_addr})
        p.write_text(json.dumps(doc, indent=2) + "\n")

    def start(self):
        # A stats file left by an earlier process must not be read as this one's.
        self.stats_path.unlink(missing_ok=True)
        self.returncode = None
        self.final_stats = None
        self.runs += 1
        return super().start()

    def kill9(self):
        """SIGKILL, as a crash: nothing of the process's shutdown path runs."""
        assert self.alive(), "kill9 of a daemon that is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self):
        """SIGTERM (must exit 0), then start again on the same config folder and spool."""
        rc = self.stop()
        assert rc == 0, f"switchyard exited with {rc}; log:\n{self.log()[-4000:]}"
        return self.start()

    def replay(self, *args):
        return replay(self.conf_dir, *args)


def replay(conf_dir, *args):
    """Runs `switchyard replay -c conf_dir ARGS`; returns (exit code, stdout, stderr)."""
    r = cli("replay", "-c", conf_dir, *args)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


@pytest.fixture
def spool_daemon(tmp_path, store_backend, request):
    """
    Factory like conftest's `switchyard`, for SpoolDaemon:
    spool_daemon(sinks=..., endpoints=..., core=..., start=True), on the
    store the test's store_backend names. At teardown every daemon still
    running gets SIGTERM and must exit 0.
    """
    made = []
    pg = shared_server(request) if store_backend == "postgres" else None

    def make(sinks=None, endpoints=None, core=None, start=True):
        d = SpoolDaemon(tmp_path / f"s{len(made)}", sinks, endpoints, core, pg)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    problems = []
    for d in made:
        if not d.alive():
            continue
        try:
            rc = d.stop()
        except BaseException as e:  # pytest.fail inside stop
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append(f"switchyard exited with {rc}, expected 0; log:\n{d.log()[-4000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# an acknowledging publisher
# --------------------------------------------------------------------------

class AckClient:
    """
    A DEALER connected to an ack ingress. Messages go out as [tag, body];
    the daemon answers [tag, text]. Tags are the event ids here, so every
    answer names the event it is about, whatever the order and however
    many copies were sent.
    """

    def __init__(self, addr):
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        for opt, v in ((zmq.LINGER, 0), (zmq.SNDHWM, 0), (zmq.RCVHWM, 0)):
            self.s.setsockopt(opt, v)
        self.s.connect(addr)

    def close(self):
        self.s.close()
        self.ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, body, tag=None):
        if tag is None:
            self.s.send(body)
        else:
            self.s.send_multipart([tag, body])

    def recv(self, timeout=10.0):
        """The next answer as a list of frames, or None after timeout seconds."""
        if not self.s.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return self.s.recv_multipart()

    def request(self, body, tag=b"t", timeout=10.0):
        """Sends one event and returns the answer text (fails on timeout)."""
        self.send(body, tag)
        r = self.recv(timeout)
        assert r is not None, f"no answer within {timeout}s"
        if tag is None:
            assert len(r) == 1, r
            return r[0].decode()
        assert len(r) == 2 and r[0] == tag, r
        return r[1].decode()

    def publish_all(self, items, window=500, resend_after=1.0, deadline=120.0, on_answer=None):
        """
        Publishes (event_id, body) pairs, at most `window` unanswered at
        once, resending any event without an answer after resend_after
        seconds (forever, until the deadline: a crashed daemon comes back).
        Returns {event_id: [answers in arrival order]}; every id has at
        least one answer unless the deadline passed (then it is missing).
        """
        bodies = dict(items)
        order = [i for i, _ in items]
        answers = {}
        pending = {}  # id -> last send (monotonic)
        nxt = 0
        end = time.monotonic() + deadline
        sends = 0
        while (nxt < len(order) or pending) and time.monotonic() < end:
            while nxt < len(order) and len(pending) < window:
                eid = order[nxt]
                nxt += 1
                self.send(bodies[eid], eid.encode())
                sends += 1
                pending[eid] = time.monotonic()
            now = time.monotonic()
            oldest = min(pending.values()) if pending else now
            wait = max(0.0, oldest + resend_after - now)
            if self.s.poll(int(wait * 1000) + 1, zmq.POLLIN):
                while True:
                    try:
                        frames = self.s.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    assert len(frames) == 2, f"bad answer {frames!r}"
                    eid, text = frames[0].decode(), frames[1].decode()
                    assert eid in bodies, f"answer for an id never sent: {frames!r}"
                    answers.setdefault(eid, []).append(text)
                    pending.pop(eid, None)
                    if on_answer:
                        on_answer(eid, text)
            now = time.monotonic()
            for eid, t in list(pending.items()):
                if now - t >= resend_after:
                    self.send(bodies[eid], eid.encode())
                    sends += 1
                    pending[eid] = now
        self.sends = sends
        return answers
