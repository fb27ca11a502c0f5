"""
GET /api/v1/deliveries and POST /api/v1/deliveries/{id}/replay: a dead
delivery, replayed once its cause is gone, is delivered.

Two ways to make a delivery die and then heal:
  - a file sink whose folder is blocked by a plain file (the sink answers
    retry; max_attempts 1 makes the first failure final), the file then
    removed, all in one daemon;
  - the flaky test sink failing permanently (fail_mode "fail"), then a
    restart on the same spool with a config where it succeeds.
"""

from test_ops_helpers import (DONE, ack_all, event, file_sink, flaky_lines, flaky_sink,
                              ops_daemon, sink_ids, spool_rows, wait_until)  # noqa: F401

DELIVERY_FIELDS = {"id", "endpoint", "event_id", "event_type", "state", "attempts",
                   "next_attempt_ms", "last_status", "last_detail", "updated_ms", "received_ms"}


def error_of(r, status):
    assert r.status == status, r
    body = r.json()
    assert list(body) == ["error"], body
    return body["error"]


def dead_list(d, endpoint=None):
    q = "/api/v1/deliveries?state=dead" + (f"&endpoint={endpoint}" if endpoint else "")
    return d.get_json(q)


def test_replay_of_a_dead_delivery_delivers_it(ops_daemon, tmp_path):
    blocker = tmp_path / "blocked"
    blocker.write_text("a plain file where the sink wants a folder\n")
    out = blocker / "out.jsonl"
    d = ops_daemon(
        sinks={"files": file_sink(out, retry={"schedule": ["10ms"], "max_attempts": 1}),
               "fl": flaky_sink(tmp_path / "flaky.log", fail_times=1, fail_mode="fail")},
        endpoints={"dest": {"sink": "files", "enabled_events": ["job.*"]},
                   "side": {"sink": "fl", "enabled_events": ["job.*"]}})
    answers = ack_all(d.ack_addr, [("r-1", event("r-1")), ("r-2", event("r-2"))])
    assert answers == {"r-1": "ok r-1", "r-2": "ok r-2"}
    wait_until(lambda: len(dead_list(d)) == 4, what="4 dead deliveries",
               on_timeout=lambda: str(d.get_json("/api/v1/deliveries")))

    dead = dead_list(d, "dest")
    assert [x["event_id"] for x in dead] == ["r-1", "r-2"]
    for x in dead:
        assert set(x) == DELIVERY_FIELDS, x
        assert (x["endpoint"], x["event_type"], x["state"], x["attempts"]) == \
            ("dest", "job.completed", "dead", 1)
        assert "Not a directory" in x["last_detail"], x
    side = dead_list(d, "side")
    assert [(x["event_id"], x["last_status"], x["last_detail"]) for x in side] == \
        [("r-1", 400, "flaky: attempt 1 of 1 fails"), ("r-2", 400, "flaky: attempt 1 of 1 fails")]
    assert {x["id"] for x in dead} | {x["id"] for x in side} == {x["id"] for x in dead_list(d)}
    assert dead_list(d, "nobody") == []
    assert [x["event_id"] for x in d.get_json("/api/v1/deliveries?state=done")] == []
    # Paging by row id.
    first = d.get_json("/api/v1/deliveries?state=dead&limit=1")
    assert len(first) == 1
    rest = d.get_json(f"/api/v1/deliveries?state=dead&after={first[0]['id']}")
    assert [x["id"] for x in first + rest] == sorted(x["id"] for x in dead_list(d))

    # The cause goes away; replay one of the two.
    blocker.unlink()
    r1 = dead[0]["id"]
    r = d.api("POST", f"/api/v1/deliveries/{r1}/replay")
    assert r.status == 200 and r.json() == {"replayed": r1}
    wait_until(lambda: sink_ids(out) == ["r-1"], what="r-1 delivered after the replay")
    wait_until(lambda: [x["id"] for x in d.get_json("/api/v1/deliveries?state=done")] == [r1],
               what="the replayed delivery done")
    done = d.get_json("/api/v1/deliveries?state=done")[0]
    assert (done["event_id"], done["endpoint"], done["attempts"]) == ("r-1", "dest", 1)
    assert [x["event_id"] for x in dead_list(d, "dest")] == ["r-2"]  # the other one stays
    assert len(dead_list(d, "side")) == 2
    assert sink_ids(out) == ["r-1"]

    # Once is enough: it is no longer dead.
    assert error_of(d.api("POST", f"/api/v1/deliveries/{r1}/replay"), 404) == \
        "no dead delivery with that id"
    assert error_of(d.api("POST", "/api/v1/deliveries/999999/replay"), 404) == \
        "no dead delivery with that id"
    for bad in ("abc", "0", "-3", "1x"):
        assert error_of(d.api("POST", f"/api/v1/deliveries/{bad}/replay"), 400) == \
            "the delivery id must be a positive integer", bad
    assert error_of(d.api("GET", "/api/v1/deliveries?state=buried"), 400) == \
        "state must be pending, done or dead"
    assert error_of(d.api("GET", "/api/v1/deliveries?limit=0"), 400) == \
        "limit must be 1-10000 and after a row id >= 0"


def test_replay_after_a_restart_with_a_fixed_config(ops_daemon, tmp_path):
    log = tmp_path / "flaky.log"
    d = ops_daemon(sinks={"fl": flaky_sink(log, fail_times=1, fail_mode="fail")},
                   endpoints={"ep": {"sink": "fl"}})
    assert ack_all(d.ack_addr, [("x-1", event("x-1"))]) == {"x-1": "ok x-1"}
    wait_until(lambda: len(dead_list(d, "ep")) == 1, what="x-1 dead")
    did = dead_list(d, "ep")[0]["id"]
    assert [(c["event_id"], c["attempt"]) for c in flaky_lines(log)] == [("x-1", 1)]

    # The receiver is fixed: restart on the same spool with a config that works.
    d.sinks["fl"]["fail_times"] = 0
    d.restart()
    assert dead_list(d, "ep")[0]["id"] == did  # dead letters survive restarts
    r = d.api("POST", f"/api/v1/deliveries/{did}/replay")
    assert r.status == 200 and r.json() == {"replayed": did}
    wait_until(lambda: len(flaky_lines(log)) == 2, what="the replayed attempt")
    assert [(c["event_id"], c["attempt"]) for c in flaky_lines(log)] == [("x-1", 1), ("x-1", 1)]
    wait_until(lambda: [r["state"] for r in spool_rows(d.spool_path, "ep")] == [DONE],
               what="the delivery done in the spool",
               on_timeout=lambda: str(spool_rows(d.spool_path)))
    assert dead_list(d, "ep") == []
    e = d.wait_endpoint("ep", lambda e: e["ok"] == 1, "ep: 1 ok")
    assert (e["ok"], e["attempts"]) == (1, 1)
