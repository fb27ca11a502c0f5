"""
The spool file across versions, and the in-memory mode:

  - a version-1 spool (no deliveries.lease, no attempts.latency_ms), crafted
    here with Python's sqlite3 from schema_v1 of core/spool.c, is migrated
    on start (PRAGMA user_version 1 -> 2 -> 3 -> 4 -> 5) and its pending delivery is made;
  - a spool from a newer switchyard (user_version 6) is refused, untouched;
  - `spool: null` (and no spool key at all) runs in memory and says so.
"""

import sqlite3
import subprocess
import time

from durability_helpers import (BIN, DEAD, DONE, SPOOL_V1_SQL, AckClient, Spool, event, flaky_calls,
                                flaky_sink, spool_daemon, wait_until)  # noqa: F401

V1_COLUMNS = {
    "deliveries": ["id", "event_rowid", "endpoint", "state", "attempt", "first_ms", "next_ms",
                   "last_status", "last_detail", "updated_ms"],
    "attempts": ["id", "delivery_id", "attempt", "at_ms", "result", "status", "detail"],
}


def make_v1_spool(path, rows):
    """rows: (event_id, endpoint, state, attempt, next_ms). Returns nothing."""
    db = sqlite3.connect(path)
    db.executescript(SPOOL_V1_SQL)
    now = int(time.time() * 1000)
    for eid, endpoint, state, attempt, next_ms in rows:
        cur = db.execute("INSERT INTO events(event_id, received_ms, body) VALUES (?, ?, ?)",
                         (eid, now - 60_000, event(eid)))
        db.execute("INSERT INTO deliveries(event_rowid, endpoint, state, attempt, first_ms, "
                   "next_ms, last_status, last_detail, updated_ms) VALUES (?,?,?,?,?,?,?,?,?)",
                   (cur.lastrowid, endpoint, state, attempt, now - 50_000 if attempt else 0,
                    next_ms, 503 if attempt else 0, "old" if attempt else "", now - 50_000))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()


def test_migrates_a_version_1_spool_and_delivers_its_pending_delivery(spool_daemon, tmp_path):
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log)},
                     endpoints={"ep": {"sink": "flaky", "enabled_events": ["*"]}}, start=False)
    now = int(time.time() * 1000)
    make_v1_spool(d.spool_path, [("evt-v1a", "ep", 0, 0, now - 1000),   # never tried
                                 ("evt-v1b", "ep", 0, 2, now - 500),    # a due retry
                                 ("evt-v1c", "ep", DEAD, 3, 0),          # dead
                                 ("evt-v1d", "ep", DONE, 1, 0)])         # delivered
    sp = Spool(d.spool_path)
    assert sp.user_version() == 1
    assert sp.columns("deliveries") == V1_COLUMNS["deliveries"]
    assert sp.columns("attempts") == V1_COLUMNS["attempts"]

    d.start()
    assert "migrated from schema version 1 to 2" in d.log(), d.log()
    assert "migrated from schema version 2 to 3" in d.log(), d.log()
    assert "migrated from schema version 3 to 4" in d.log(), d.log()
    assert "migrated from schema version 4 to 5" in d.log(), d.log()
    s = d.wait_for("deliveries.ok", 2)
    assert s["deliveries"]["attempts"] == 2
    assert sorted((c["event_id"], c["attempt"]) for c in flaky_calls(log)) == \
        [("evt-v1a", 1), ("evt-v1b", 3)]
    assert sp.user_version() == 5
    assert sp.columns("deliveries") == V1_COLUMNS["deliveries"] + ["lease"]
    assert sp.columns("endpoint_state") == ["endpoint", "disabled_ms", "reason"]
    assert sp.columns("attempts") == V1_COLUMNS["attempts"] + ["latency_ms"]
    assert sp.columns("hot_log") == ["seg", "off"]
    wait_until(lambda: {r["event_id"]: r["state"] for r in sp.deliveries()} ==
               {"evt-v1a": DONE, "evt-v1b": DONE, "evt-v1c": DEAD, "evt-v1d": DONE},
               timeout=10, what="the migrated rows' states", on_timeout=lambda: sp.deliveries())
    # The old events are still known: their ids are duplicates.
    with AckClient(d.ack_addr) as c:
        assert c.request(event("evt-v1d"), tag=b"x") == "dup evt-v1d"
    # The dead one can be replayed now that the file is version 2.
    rc, out, err = d.replay("--endpoint", "ep")
    assert (rc, out) == (0, "1 dead delivery put back to pending\n"), (out, err)
    d.wait_for("deliveries.ok", 3)
    assert d.stop() == 0
    assert sorted((c["event_id"], c["attempt"]) for c in flaky_calls(log)) == \
        [("evt-v1a", 1), ("evt-v1b", 3), ("evt-v1c", 1)]
    # A second start has nothing to migrate.
    d.start()
    assert "migrated" not in d.log()
    assert sp.user_version() == 5


def test_replay_refuses_an_unmigrated_spool(spool_daemon, tmp_path):
    d = spool_daemon(sinks={"flaky": flaky_sink(tmp_path / "f.log")},
                     endpoints={"ep": {"sink": "flaky"}}, start=False)
    make_v1_spool(d.spool_path, [("evt-x", "ep", DEAD, 1, 0)])
    d._write_config()
    rc, out, err = d.replay("--endpoint", "ep")
    assert rc == 1 and "schema version 1" in err, (rc, out, err)
    assert Spool(d.spool_path).user_version() == 1


def test_refuses_a_spool_from_a_newer_version(spool_daemon, tmp_path):
    d = spool_daemon(sinks={"flaky": flaky_sink(tmp_path / "f.log")},
                     endpoints={"ep": {"sink": "flaky"}}, start=False)
    db = sqlite3.connect(d.spool_path)
    db.executescript(SPOOL_V1_SQL)
    db.execute("PRAGMA user_version = 6")
    db.commit()
    db.close()
    d._write_config()
    r = subprocess.run([str(BIN), "run", "-c", str(d.conf_dir)], capture_output=True,
                       timeout=20)
    err = r.stderr.decode()
    assert r.returncode != 0, err
    assert "schema version 6, newer than this switchyard (5)" in err, err
    assert Spool(d.spool_path).user_version() == 6


def test_spool_null_says_running_in_memory(switchyard, tmp_path):
    for core in ({"spool": None}, {}):
        d = switchyard(core=core)
        assert "spool: null - running in memory" in d.log(), d.log()
        assert "level=warn" in [l for l in d.log().splitlines()
                                if "spool: null - running in memory" in l][0]
        # It still works, from memory: no file anywhere in its folder.
        d.push([event("evt-m1")])
        d.wait_for("deliveries.ok", 1)
        assert d.stop() == 0
        assert not list(d.tmp.rglob("*.db")), list(d.tmp.rglob("*"))


def test_with_a_spool_no_in_memory_warning(spool_daemon, tmp_path):
    d = spool_daemon(sinks={"flaky": flaky_sink(tmp_path / "f.log")},
                     endpoints={"ep": {"sink": "flaky"}})
    assert "spool: null" not in d.log()
    assert f'msg="spool open" path={d.spool_path} pending=0 dead=0' in d.log(), d.log()
    assert Spool(d.spool_path).user_version() == 5
