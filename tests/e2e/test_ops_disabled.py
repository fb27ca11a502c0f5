"""
An endpoint that disable_after stopped stays stopped (issue 12): across a
restart, a reload that changes it, and a reload that removes it and one
that adds it back, until the admin API (POST /api/v1/endpoints/ID/enable)
or `switchyard endpoint enable ID` enables it. Then events reach it again
and the spool's endpoint_state table no longer holds it.

"Not routed" is checked against a second endpoint that gets the same
event: once that one has it, the event was routed, and the spool holds a
delivery row for every endpoint it went to.
"""

import json
import sqlite3

from conftest import cli
from test_ops_helpers import (DEAD, TOKEN, ack_all, event, file_sink, flaky_sink, ops_daemon,
                              sink_ids, spool_rows, wait_until)  # noqa: F401 (fixture)

DISABLED = 'msg="endpoint disabled: failing for too long" endpoint=ep'
STAYS = 'msg="endpoint stays disabled (switchyard endpoint enable ID re-enables it)" endpoint=ep'
ENABLED = 'msg="endpoint enabled" endpoint=ep'
APPLIED = 'msg="reload applied"'
KILLED = "endpoint disabled after failing for too long"

FAILING_EP = {"sink": "failing", "enabled_events": ["job.*"], "breaker": False,
              "retry": {"schedule": ["100ms"], "max_age": "1h"}, "disable_after": "1s"}
OTHER = {"sink": "files", "enabled_events": ["job.*"]}


def endpoint_state(d):
    """The spool's endpoint_state rows as [(endpoint, reason)]."""
    db = sqlite3.connect(f"file:{d.spool_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT endpoint, reason FROM endpoint_state ORDER BY 1").fetchall()
    finally:
        db.close()


def send(d, *ids):
    assert ack_all(d.ack_addr, [(i, event(i)) for i in ids]) == {i: f"ok {i}" for i in ids}


def routed_to(d, other_out, event_id):
    """Sends event_id; once `other` delivered it, the endpoints it was routed to."""
    send(d, event_id)
    wait_until(lambda: event_id in sink_ids(other_out), what=f"{event_id} at other")
    # The spool's database has the rows once the hot log is folded, moments later.
    wait_until(lambda: any(r["event_id"] == event_id for r in spool_rows(d.spool_path)),
               what=f"{event_id} in the spool's database")
    return sorted(r["endpoint"] for r in spool_rows(d.spool_path) if r["event_id"] == event_id)


def reload_applied(d, files=None, remove=()):
    mark = d.reload(files, remove)
    wait_until(lambda: APPLIED in d.log()[mark:] or not d.alive(), timeout=30,
               what="the reload applied", on_timeout=lambda: d.log()[mark:])
    assert d.alive(), d.log()[mark:]
    return mark


def state(d):
    return d.api_endpoints()["ep"]["state"]


def wait_state(d, want):
    """ep's state in the API once its shard took the reload or restart in (it follows at once)."""
    return d.wait_endpoint("ep", lambda e: e["state"] == want, f"ep {want}")


def disabled_daemon(ops_daemon, tmp_path):
    """A daemon whose endpoint ep failed for disable_after and is now disabled."""
    other_out = tmp_path / "other.jsonl"
    d = ops_daemon(sinks={"failing": flaky_sink(tmp_path / "failing.log", fail_times=1000000),
                          "good": file_sink(tmp_path / "ep.jsonl"),
                          "files": file_sink(other_out)},
                   endpoints={"ep": FAILING_EP, "other": OTHER})
    d.other_out, d.ep_out = other_out, tmp_path / "ep.jsonl"
    send(d, "d-1")
    d.wait_endpoint("ep", lambda e: e["state"] == "disabled", "ep disabled")
    # The shard marks the endpoint disabled, then logs it.
    wait_until(lambda: DISABLED in d.run_log(), what="the disabled line",
               on_timeout=lambda: d.run_log()[-4000:])
    wait_until(lambda: endpoint_state(d) == [("ep", "failing continuously for disable_after")],
               what="the disabled state in the spool")
    wait_until(lambda: [(r["event_id"], r["state"]) for r in spool_rows(d.spool_path, "ep")]
               == [("d-1", DEAD)], what="d-1 dead")
    (dl,) = d.get_json("/api/v1/deliveries?endpoint=ep")
    assert dl["last_detail"] == KILLED
    return d


def set_endpoints(d, endpoints):
    """Reloads with these endpoints (restarts keep them: start() writes d.endpoints)."""
    d.endpoints = endpoints
    return reload_applied(d, {"30-endpoints.json": {"endpoints": endpoints}})


def good_ep(d):
    """ep keeps its id and settings, with a sink that works."""
    return set_endpoints(d, {"ep": {**FAILING_EP, "sink": "good"}, "other": OTHER})


def test_disabled_endpoint_survives_restart_and_reloads_until_enabled(ops_daemon, tmp_path):
    d = disabled_daemon(ops_daemon, tmp_path)

    # A restart: disabled before the first event is read.
    d.restart()
    assert STAYS in d.run_log()
    wait_state(d, "disabled")
    assert routed_to(d, d.other_out, "d-2") == ["other"]

    # A reload that gives it a working sink: still disabled.
    mark = good_ep(d)
    wait_state(d, "disabled")
    assert routed_to(d, d.other_out, "d-3") == ["other"]

    # A reload that removes it, and one that adds it back: still disabled.
    set_endpoints(d, {"other": OTHER})
    assert "ep" not in d.api_endpoints()
    good_ep(d)
    wait_state(d, "disabled")
    assert d.metrics().get("switchyard_endpoint_state", endpoint="ep", state="disabled") == 1
    assert routed_to(d, d.other_out, "d-4") == ["other"]
    assert not d.ep_out.exists()
    assert ENABLED not in d.log()[mark:]
    assert endpoint_state(d) == [("ep", "failing continuously for disable_after")]
    # A test event would go nowhere: refused, not accepted and dropped.
    r = d.api("POST", "/api/v1/endpoints/ep/test")
    assert (r.status, r.json()) == (409, {"error": "endpoint ep is disabled: enable it first "
                                                   "(POST /api/v1/endpoints/ep/enable, or "
                                                   "switchyard endpoint enable ep)"})

    # Enabled through the admin API: the spool forgets, events flow again.
    r = d.api("POST", "/api/v1/endpoints/ep/enable")
    assert (r.status, r.json()) == (200, {"endpoint": "ep", "state": "enabled"})
    wait_until(lambda: endpoint_state(d) == [], what="the state gone from the spool")
    wait_until(lambda: ENABLED in d.run_log(), what="the enabled line")
    assert state(d) == "active"
    assert routed_to(d, d.other_out, "d-5") == ["ep", "other"]
    wait_until(lambda: sink_ids(d.ep_out) == ["d-5"], what="d-5 delivered to ep")
    r = d.api("POST", "/api/v1/endpoints/ep/test")
    assert r.status == 202
    test_id = r.json()["event_id"]
    wait_until(lambda: sink_ids(d.ep_out) == ["d-5", test_id], what="the test event at ep")

    # And it stays enabled across a restart.
    d.restart()
    assert STAYS not in d.run_log()
    wait_state(d, "active")
    assert routed_to(d, d.other_out, "d-6") == ["ep", "other"]
    wait_until(lambda: sink_ids(d.ep_out) == ["d-5", test_id, "d-6"], what="d-6 delivered to ep")
    # What died while it was disabled stays dead (replay brings it back).
    assert [(r["event_id"], r["state"]) for r in spool_rows(d.spool_path, "ep")][0] == \
        ("d-1", DEAD)


def conf_copy(d, folder, admin):
    """A copy of d's config folder with another core.admin."""
    folder.mkdir()
    for f in d.conf_dir.iterdir():
        doc = json.loads(f.read_text())
        if "core" in doc:
            doc["core"]["admin"] = admin
        (folder / f.name).write_text(json.dumps(doc))
    return folder


def enable_cli(d, *args):
    r = cli("endpoint", "enable", *args)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_switchyard_endpoint_enable(ops_daemon, tmp_path):
    d = disabled_daemon(ops_daemon, tmp_path)
    good_ep(d)
    conf = str(d.conf_dir)

    # Mistakes say what is wrong, with the documented exit codes.
    assert enable_cli(d, "nope", "-c", conf) == (
        1, "", 'switchyard endpoint enable: the running daemon has no endpoint "nope" '
               "(switchyard status lists them)\n")
    rc, out, err = enable_cli(d, "ep", "-c", conf, "--admin", "127.0.0.1:1")
    assert (rc, out) == (1, "")
    assert err == ("switchyard endpoint enable: cannot connect to the admin API at 127.0.0.1:1: "
                   "Connection refused (is the daemon running?)\n")
    assert enable_cli(d, "-c", conf) == (
        2, "", "switchyard endpoint enable: which endpoint? (switchyard endpoint enable ID; "
               "switchyard status lists them)\n")
    assert enable_cli(d, "ep", "extra", "-c", conf) == (
        2, "", 'switchyard endpoint enable: unexpected argument "extra" '
               "(switchyard endpoint enable --help)\n")
    assert enable_cli(d, "../x", "-c", conf) == (
        2, "", "switchyard endpoint enable: \"../x\" is not an endpoint id (letters, digits, "
               "'_', '-' and '.', at most 128)\n")
    r = cli("endpoint", "disable", "ep")
    assert r.returncode == 2
    assert r.stderr.decode().startswith('switchyard endpoint: unknown action "disable"\n'
                                        "usage: switchyard endpoint enable ID")
    r = cli("endpoint", "enable", "--help")
    assert r.returncode == 0 and r.stderr == b""
    assert r.stdout.decode().startswith("usage: switchyard endpoint enable ID [-c DIR] "
                                        "[--admin HOST:PORT]\n")
    assert "Exit status: 0 when the endpoint is enabled" in r.stdout.decode()
    r = cli("help")
    assert "  endpoint  enable an endpoint that disable_after stopped" in r.stdout.decode()
    # A config without the admin token: nothing to ask with.
    bare = conf_copy(d, tmp_path / "bare", {"listen": d.admin_listen})
    assert enable_cli(d, "ep", "-c", bare) == (
        2, "", f"switchyard endpoint enable: {bare} has no core.admin listen address and "
               "token\n")
    # A wrong token: the API's refusal, and never the token.
    wrong = conf_copy(d, tmp_path / "wrong", {"listen": d.admin_listen, "token": "x" * 20})
    assert enable_cli(d, "ep", "-c", wrong) == (
        1, "", "switchyard endpoint enable: admin API answered 401: missing or wrong bearer "
               "token\n")
    wait_state(d, "disabled")
    assert endpoint_state(d) != []

    # The real thing.
    assert enable_cli(d, "ep", "-c", conf) == (0, "endpoint ep enabled\n", "")
    wait_until(lambda: endpoint_state(d) == [], what="the state gone from the spool")
    wait_state(d, "active")
    assert routed_to(d, d.other_out, "c-1") == ["ep", "other"]
    wait_until(lambda: sink_ids(d.ep_out) == ["c-1"], what="c-1 delivered to ep")
    # Enabling an enabled endpoint is not an error.
    assert enable_cli(d, "ep", "-c", conf) == (0, "endpoint ep enabled\n", "")
    assert TOKEN not in d.log()
