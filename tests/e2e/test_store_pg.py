"""
The PostgreSQL store on one node (core.store {"type": "postgres"}), against
a real PostgreSQL (pg_helpers.py):

  - a conninfo that does not parse, or names a server nobody runs, is a
    clear error at `check` (exit 2) and at start (exit 1), and the
    conninfo, which may hold a password, is never shown;
  - core.store postgres and a core.spool file exclude each other;
  - conninfo_file keeps the string out of the config;
  - a database from a newer switchyard is refused;
  - PostgreSQL stopped for 10 s: acknowledged publishers hear an error,
    never "ok", while it is down; once it is back the daemon takes events
    again on its own and every acknowledged event is delivered, none lost.

The spool and durability tests run on this store too (both_backends).
"""

import threading
import time

import pytest

from conftest import PLUGIN_DIR, cli, write_config
from cluster_helpers import fnv_part
from durability_helpers import (DONE, PENDING, AckClient, SpoolDaemon, event, file_sink,
                                sink_ids, spool_daemon, wait_until)  # noqa: F401 (fixture)
from pg_helpers import PgServer, fresh_db, lit, pg_server  # noqa: F401 (fixture)
from test_ops_helpers import ops_daemon  # noqa: F401 (fixture)

SECRET = "s3cr3t-Passw0rd-never-shown"


def pg_config(tmp_path, conninfo=None, conninfo_file=None, spool=None):
    conf = tmp_path / "conf.d"
    store = {"type": "postgres"}
    if conninfo is not None:
        store["conninfo"] = conninfo
    if conninfo_file is not None:
        store["conninfo_file"] = str(conninfo_file)
    core = {"plugin_dir": str(PLUGIN_DIR), "ingress": [{"type": "pull",
                                                        "bind": "tcp://127.0.0.1:1"}],
            "store": store, "quarantine": None}
    if spool is not None:
        core["spool"] = spool
    write_config(conf, core, {"f": {"plugin": "file", "path": str(tmp_path / "out.jsonl")}},
                 {"e": {"sink": "f"}})
    return conf


def run_briefly(conf):
    """`switchyard run` on a config that must fail before it is ready."""
    return cli("run", "-c", conf, timeout=60)


def test_conninfo_that_does_not_parse(tmp_path):
    conf = pg_config(tmp_path, f"host=127.0.0.1 password={SECRET} garbage")
    for cmd in ("check", "run"):
        r = cli(cmd, "-c", conf)
        err = r.stderr.decode()
        assert r.returncode == 2, (cmd, err)
        assert (f"{conf}/10-core.json: core.store.conninfo: not a valid PostgreSQL connection "
                "string (key=value pairs, or a postgresql:// URI); its text is not shown, it may "
                "hold a password\n") in err, err
        assert SECRET not in err and "garbage" not in err, err


def test_server_that_is_not_there(tmp_path):
    from conftest import free_ports
    port = free_ports(1)[0]
    conf = pg_config(tmp_path, f"host=127.0.0.1 port={port} dbname=x user=sy password={SECRET}")
    r = cli("check", "-c", conf)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert err.startswith("core.store: cannot connect to PostgreSQL: connection to server at "
                          f"\"127.0.0.1\", port {port} failed: Connection refused"), err
    assert err.endswith("1 configuration error; not starting\n"), err
    assert SECRET not in err
    r = run_briefly(conf)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert 'level=error msg="core.store: cannot connect to PostgreSQL: connection to server at ' \
           f'\\"127.0.0.1\\", port {port} failed: Connection refused' in err, err
    assert SECRET not in err


def test_spool_file_and_postgres_exclude_each_other(tmp_path):
    conf = pg_config(tmp_path, "host=127.0.0.1 dbname=x", spool=str(tmp_path / "s.db"))
    r = cli("check", "-c", conf)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert (f"{conf}: core.spool: with core.store of type postgres the events live in "
            "PostgreSQL: set core.spool to null or remove it\n") in err, err
    conf = pg_config(tmp_path / "b")
    r = cli("check", "-c", conf)
    assert "core.store.conninfo: type postgres needs a conninfo (or conninfo_file)" in \
        r.stderr.decode()


def test_check_connects_and_conninfo_file(tmp_path, pg_server):
    db, conninfo = fresh_db(pg_server)
    f = tmp_path / "conninfo"
    f.write_text(conninfo + "\n")
    f.chmod(0o600)
    conf = pg_config(tmp_path, conninfo_file=f)
    r = cli("check", "-c", conf)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().endswith("configuration OK\n")


def test_database_from_a_newer_switchyard_is_refused(tmp_path, pg_server):
    db, conninfo = fresh_db(pg_server)
    pg_server.psql(db, "CREATE TABLE switchyard_schema (version integer NOT NULL);"
                       "INSERT INTO switchyard_schema VALUES (99)")
    conf = pg_config(tmp_path, conninfo)
    where = f"postgresql://127.0.0.1:{pg_server.port}/{db}"
    r = cli("check", "-c", conf)
    assert r.returncode == 2
    assert f"{where} has schema version 99, newer than this switchyard (" in r.stderr.decode()
    r = run_briefly(conf)
    assert r.returncode == 1
    assert f"{where} has schema version 99, newer than this switchyard (" in r.stderr.decode()
    assert pg_server.query(db, "SELECT version FROM switchyard_schema") == [{"version": 99}]


@pytest.mark.parametrize("store_backend", ["postgres"])
def test_postgres_stopped_for_10s(spool_daemon, tmp_path, request):
    """
    A publisher sends one event every 20 ms throughout. While PostgreSQL is
    down every answer is an error, and the publisher sends that event again
    later; once it is back the daemon reconnects by itself and answers ok.
    """
    server = PgServer().start()
    request.addfinalizer(server.destroy)
    out = tmp_path / "received.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out)},
                     endpoints={"all": {"sink": "files", "enabled_events": ["*"]}},
                     start=False)
    d.db, d.conninfo = fresh_db(server)
    d.core_extra["store"]["conninfo"] = d.conninfo
    d.spool.server, d.spool.db = server, d.db
    d.start()
    answers = {}       # event id -> [(answer, sent and answered while the server was down)]
    phase = {"down": False, "stop": False}
    sent = []
    oks_after = []     # monotonic times of "ok" answers

    def publisher():
        with AckClient(d.ack_addr) as c:
            i = 0
            retry = []
            while not phase["stop"]:
                eid = retry.pop(0) if retry and not phase["down"] else f"evt-o{i:05d}"
                if eid == f"evt-o{i:05d}":
                    i += 1
                down = phase["down"]
                text = c.request(event(eid), tag=eid.encode(), timeout=30)
                # Down for the whole request: one sent just before the restart may be stored
                # once the server is back, and then "ok" is the right answer.
                answers.setdefault(eid, []).append((text, down and phase["down"]))
                sent.append(eid)
                if text.startswith("ok "):
                    oks_after.append(time.monotonic())
                if not text.startswith(("ok ", "dup ")):
                    retry.append(eid)
                time.sleep(0.02)
            while retry:  # what is left after the end
                eid = retry.pop(0)
                text = c.request(event(eid), tag=eid.encode(), timeout=30)
                answers.setdefault(eid, []).append((text, False))
                if not text.startswith(("ok ", "dup ")):
                    retry.append(eid)
                    time.sleep(0.1)

    t = threading.Thread(target=publisher)
    t.start()
    wait_until(lambda: len(sent) >= 50, timeout=30, what="50 events before the outage")
    server.stop()
    phase["down"] = True
    t_down = time.monotonic()
    time.sleep(10)
    phase["down"] = False
    server.start()
    t_up = time.monotonic()
    wait_until(lambda: oks_after and oks_after[-1] > t_up, timeout=60,
               what="an ok after PostgreSQL came back", on_timeout=d._diag)
    time.sleep(1)
    phase["stop"] = True
    t.join(timeout=120)
    assert not t.is_alive()
    down_answers = [(e, a) for e, v in answers.items() for a, down in v if down]
    assert len(down_answers) >= 20, f"only {len(down_answers)} events sent in 10 s of outage"
    # The first events sent while the server stopped may have been committed just before.
    late = [(e, a) for e, a in down_answers[5:] if not a.startswith("error ")]
    assert not late, f"answers other than error while PostgreSQL was down: {late[:5]}"
    assert all(a == "error spool_failed: the event was not stored; send it again"
               for _, a in down_answers[5:]), down_answers[5:8]
    acked = {e for e, v in answers.items() if any(a.startswith(("ok ", "dup ")) for a, _ in v)}
    assert acked == set(answers), set(answers) - acked
    wait_until(lambda: set(sink_ids(out)) >= acked, timeout=60,
               what="every acknowledged event delivered",
               on_timeout=lambda: f"missing {sorted(acked - set(sink_ids(out)))[:10]}")
    wait_until(lambda: d.spool.states("all").get(PENDING, 0) == 0, timeout=30,
               what="nothing pending", on_timeout=lambda: str(d.spool.states("all")))
    assert d.spool.states("all") == {DONE: len(acked)}
    assert "spool transaction failed" in d.log()
    assert "reconnected to PostgreSQL" in d.log()
    print(f"\n{len(acked)} events acknowledged, {len(down_answers)} answered while PostgreSQL "
          f"was down for {t_up - t_down:.1f}s")


def test_a_row_leased_under_an_older_tenure_is_delivered(tmp_path, pg_server):
    """
    A pending row whose lease names an older tenure of a partition the node
    holds now (the pager leased it under the tenure a take was replacing,
    and that tenure's records are refused) is loaded and delivered, not left
    pending for ever.
    """
    out = tmp_path / "received.jsonl"
    d = SpoolDaemon(tmp_path / "d", {"files": file_sink(out)},
                    {"all": {"sink": "files", "enabled_events": ["*"]}}, pg=pg_server)
    d.start()
    try:
        epoch = d.spool._rows("SELECT min(epoch) AS e FROM partitions WHERE owner IS NOT NULL")
        assert epoch[0]["e"] is not None, "the node holds no partition"
        stale = epoch[0]["e"] - 1000  # an epoch no tenure of this run has
        body = event("evt-stale").decode()
        pg_server.psql(d.db, (
            "WITH e AS (INSERT INTO events(event_id, received_ms, event_type, org_id, body) "
            f"VALUES ('evt-stale', 1, 'job.completed', 'acme', convert_to({lit(body)}, 'UTF8')) "
            "RETURNING id) "
            "INSERT INTO deliveries(event_rowid, endpoint, part, state, next_ms, updated_ms, "
            f"lease) SELECT id, 'all', {fnv_part('all')}, 0, 0, 0, {stale} FROM e;"
            "NOTIFY switchyard_due"))
        wait_until(lambda: sink_ids(out) == ["evt-stale"], timeout=30,
                   what="the stale-leased row delivered")
        wait_until(lambda: d.spool.states() == {DONE: 1}, timeout=10, what="recorded done")
    finally:
        assert d.stop() == 0


def test_rows_edited_by_hand_are_read_as_on_sqlite(ops_daemon, tmp_path, pg_server):
    """
    Rows the daemon did not write, put in with psql (as tests/unit/
    test_store_rows.c does on SQLite): a delivery with a state of no name
    (3, or -1) is counted nowhere and listed nowhere, as on SQLite, and an
    event that arrived at a negative time or at the largest one is listed
    when the listing has no arrival filter (open ends are not bounds).
    """
    db, conninfo = fresh_db(pg_server)
    d = ops_daemon(sinks={"f": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"e": {"sink": "f", "enabled_events": ["job.*"]}},
                   core={"spool": None, "store": {"type": "postgres", "conninfo": conninfo}},
                   spool=False)
    rows = [("hand-early", -5, 1), ("hand-late", 9223372036854775807, 1),
            ("hand-three", 1, 3), ("hand-minus", 1, -1), ("hand-dead", 1, 2)]
    sql = ""
    for eid, received, state in rows:
        body = event(eid).decode()
        sql += ("WITH e AS (INSERT INTO events(event_id, received_ms, event_type, org_id, body) "
                f"VALUES ({lit(eid)}, {received}, 'job.completed', 'acme', "
                f"convert_to({lit(body)}, 'UTF8')) RETURNING id) "
                "INSERT INTO deliveries(event_rowid, endpoint, part, state, next_ms, updated_ms) "
                f"SELECT id, 'e', {fnv_part('e')}, {state}, 0, 0 FROM e;")
    pg_server.psql(db, sql)
    assert [x["event_id"] for x in d.get_json("/api/v1/deliveries")] == \
        ["hand-early", "hand-late", "hand-dead"]
    assert [x["event_id"] for x in d.get_json("/api/v1/deliveries?state=done")] == \
        ["hand-early", "hand-late"]
    assert [x["event_id"] for x in d.get_json("/api/v1/deliveries?state=dead")] == ["hand-dead"]
    assert d.metrics().get("switchyard_dead_letters") == 1
    ep = d.api_endpoints()["e"]
    assert (ep["pending"], ep["dead"]) == (0, 1)
