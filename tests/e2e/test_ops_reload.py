"""
SIGHUP reloads conf.d atomically:
  - a broken config is refused, its errors logged as `file: path: message`,
    and the old routing keeps running (no part of the new config applies);
  - a good one applies: an added endpoint gets the events accepted after
    the reload, and none of the events acknowledged before, during or
    after the reload is lost at the old endpoints;
  - deliveries in flight when the signal comes finish (once).
"""

import time

from test_ops_helpers import (DONE, AckStream, ack_all, event, file_sink, flaky_lines,
                              flaky_sink, http, ops_daemon, sink_ids, spool_rows,
                              wait_until)  # noqa: F401 (fixture)


def logged(d, mark, text):
    return text in d.log()[mark:]


def wait_logged(d, mark, text, what):
    wait_until(lambda: logged(d, mark, text) or not d.alive(), timeout=15, what=what,
               on_timeout=lambda: d.log()[mark:][-3000:])
    assert d.alive(), f"switchyard exited ({d.proc.returncode}) on SIGHUP\n{d.log()[mark:]}"
    assert logged(d, mark, text), d.log()[mark:]


def send(d, *ids, type_="job.completed"):
    answers = ack_all(d.ack_addr, [(i, event(i, type_)) for i in ids])
    assert answers == {i: f"ok {i}" for i in ids}


def test_reload_with_a_broken_config_keeps_the_old_routing(ops_daemon, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    d = ops_daemon(sinks={"files": file_sink(a)},
                   endpoints={"old": {"sink": "files", "enabled_events": ["job.*"]}})
    send(d, "e1")
    wait_until(lambda: sink_ids(a) == ["e1"], what="e1 at the old endpoint")
    conf = d.conf_dir

    # 1. Errors the config loader finds. 30-endpoints.json changes "old" in
    #    a valid way; 40-broken.json is wrong. Neither may apply.
    mark = d.reload({
        "30-endpoints.json": {"endpoints": {"old": {"sink": "files",
                                                    "enabled_events": ["nothing.*"]}}},
        "40-broken.json": {"sinks": {"more": file_sink(b)},
                           "endpoints": {"broken": {"sink": "nope"},
                                         "new": {"sink": "more"}}}})
    wait_logged(d, mark, f"{conf}/40-broken.json: endpoints.broken.sink: no sink named ",
                "the reload error logged as file: path: message")
    send(d, "e2")
    wait_until(lambda: sink_ids(a) == ["e1", "e2"], what="e2 at the old endpoint, as before")
    assert sorted(d.api_endpoints()) == ["old"]
    assert http(d.base, "GET", "/readyz").status == 200

    # 2. Errors only plugins find (init, plugin keys): refused as well.
    mark = d.reload({"40-broken.json": {
        "sinks": {"fl": flaky_sink(tmp_path / "fl.log", fail_mode="sometimes")},
        "endpoints": {"new": {"sink": "fl"},
                      "typo": {"sink": "files", "colour": "red"}}}})
    wait_logged(d, mark, f"{conf}/40-broken.json: endpoints.typo.colour: unknown key",
                "the plugin key error logged")
    assert logged(d, mark, f"{conf}/40-broken.json: sinks.fl.fail_mode: ")
    assert logged(d, mark, "is not one of")
    send(d, "e3")
    wait_until(lambda: sink_ids(a) == ["e1", "e2", "e3"], what="e3 at the old endpoint")
    assert sorted(d.api_endpoints()) == ["old"]
    assert not b.exists()

    # 3. Fixed: the next SIGHUP applies all of it.
    mark = d.reload({"40-broken.json": {"sinks": {"more": file_sink(b)},
                                        "endpoints": {"new": {"sink": "more"}}}})
    wait_until(lambda: sorted(d.api_endpoints()) == ["new", "old"], timeout=15,
               what="the fixed config applied", on_timeout=lambda: d.log()[mark:])
    send(d, "e4", "a4")
    send(d, "x5", type_="artifact.ready")
    wait_until(lambda: sorted(sink_ids(b)) == ["a4", "e4", "x5"], what="the new endpoint fed")
    # "old" now wants nothing.*: the reloaded 30-endpoints.json applied too.
    assert sink_ids(a) == ["e1", "e2", "e3"]


def test_reload_adding_an_endpoint_routes_new_events_and_loses_none(ops_daemon, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    d = ops_daemon(sinks={"files": file_sink(a)},
                   endpoints={"old": {"sink": "files"}})
    stream = AckStream(d.ack_addr, "rl", window=20).start()
    try:
        stream.wait_acked(500)
        t_signal = time.monotonic()
        mark = d.reload({"40-new.json": {"sinks": {"newfiles": file_sink(b)},
                                         "endpoints": {"new": {"sink": "newfiles"}}}})
        wait_until(lambda: "new" in d.api_endpoints() or not d.alive(), timeout=15,
                   what="the new endpoint listed", on_timeout=lambda: d.log()[mark:])
        assert d.alive(), d.log()[mark:]
        t_applied = time.monotonic()
        stream.wait_acked(stream.acked_count() + 500)
        acked = stream.finish()
    finally:
        stream.abort()
    assert stream.errors == [], stream.errors[:5]
    before = stream.ids_acked_before(t_signal)
    after = stream.ids_sent_after(t_applied)
    assert len(before) >= 500 and len(after) >= 400

    # Every acknowledged event reached the old endpoint, exactly once.
    wait_until(lambda: set(sink_ids(a)) == set(acked), what="every acked event at the old one",
               on_timeout=lambda: f"{len(set(acked) - set(sink_ids(a)))} missing")
    assert len(sink_ids(a)) == len(acked), "an event was delivered twice"
    # Everything published after the reload also reached the new endpoint;
    # nothing accepted before the signal did (it was routed by the old config).
    wait_until(lambda: after <= set(sink_ids(b)), what="every later event at the new one",
               on_timeout=lambda: f"{len(after - set(sink_ids(b)))} missing")
    got_b = sink_ids(b)
    assert len(got_b) == len(set(got_b)), "an event was delivered twice to the new endpoint"
    assert set(got_b) <= set(acked)
    assert not (set(got_b) & before), sorted(set(got_b) & before)[:5]
    # The events in between went to one or both, but never got lost.
    e = d.wait_endpoint("new", lambda e: e["ok"] == len(got_b), "new: all ok")
    assert e["dead"] == 0


def test_reload_lets_in_flight_deliveries_finish(ops_daemon, tmp_path):
    log, b = tmp_path / "slow.log", tmp_path / "b.jsonl"
    d = ops_daemon(sinks={"slow": flaky_sink(log, sleep="1s")},
                   endpoints={"slow": {"sink": "slow"}})
    send(d, "s-1")
    wait_until(lambda: d.metrics().get("switchyard_queue_depth", state="inflight") == 1,
               what="s-1 in flight")
    mark = d.reload({"40-new.json": {"sinks": {"files": file_sink(b)},
                                     "endpoints": {"new": {"sink": "files"}}}})
    wait_until(lambda: "new" in d.api_endpoints() or not d.alive(), timeout=15,
               what="the reload applied", on_timeout=lambda: d.log()[mark:])
    wait_until(lambda: [r["state"] for r in spool_rows(d.spool_path)] == [DONE],
               what="s-1 done", on_timeout=lambda: str(spool_rows(d.spool_path)))
    assert [(c["event_id"], c["attempt"]) for c in flaky_lines(log)] == [("s-1", 1)]

    d.sinks["slow"]["sleep"] = "0"
    send(d, "s-2")
    wait_until(lambda: sink_ids(b) == ["s-2"], what="s-2 at the new endpoint")
    wait_until(lambda: len(flaky_lines(log)) == 2, what="s-2 at the slow endpoint")
    assert [(c["event_id"], c["attempt"]) for c in flaky_lines(log)] == [("s-1", 1), ("s-2", 1)]
    wait_until(lambda: all(r["state"] == DONE for r in spool_rows(d.spool_path)),
               what="every delivery done")
    assert sorted((r["event_id"], r["endpoint"]) for r in spool_rows(d.spool_path)) == \
        [("s-1", "slow"), ("s-2", "new"), ("s-2", "slow")]


def test_reload_removing_an_endpoint_stops_routing_to_it(ops_daemon, tmp_path):
    a, g = tmp_path / "a.jsonl", tmp_path / "gone.jsonl"
    d = ops_daemon(sinks={"files": file_sink(a)},
                   endpoints={"keep": {"sink": "files"},
                              "gone": {"sink": "files", "path": str(g)}})
    send(d, "r-1")
    wait_until(lambda: sink_ids(g) == ["r-1"] and sink_ids(a) == ["r-1"], what="r-1 at both")
    mark = d.reload({"30-endpoints.json": {"endpoints": {"keep": {"sink": "files"}}}})
    wait_until(lambda: sorted(d.api_endpoints()) == ["keep"], timeout=15,
               what="gone removed", on_timeout=lambda: d.log()[mark:])
    send(d, "r-2")
    wait_until(lambda: sink_ids(a) == ["r-1", "r-2"], what="r-2 at keep")
    assert sink_ids(g) == ["r-1"]
    wait_until(lambda: any(r["event_id"] == "r-2" for r in spool_rows(d.spool_path)),
               what="r-2 folded into the spool's database")
    assert [r["endpoint"] for r in spool_rows(d.spool_path) if r["event_id"] == "r-2"] == ["keep"]


def test_endpoint_counters_continue_across_a_reload(ops_daemon, tmp_path):
    """
    Counters of an endpoint that survives a reload continue (Prometheus
    counters never go back), including the outcome and the latency of the
    attempt that was in flight during the reload.
    """
    log, b = tmp_path / "slow.log", tmp_path / "b.jsonl"
    d = ops_daemon(sinks={"slow": flaky_sink(log, sleep="1s")},
                   endpoints={"slow": {"sink": "slow"}})
    send(d, "c-1")
    d.wait_endpoint("slow", lambda e: e["ok"] == 1, "c-1 delivered")
    send(d, "c-2")
    wait_until(lambda: d.metrics().get("switchyard_queue_depth", state="inflight") == 1,
               what="c-2 in flight")
    d.reload({"40-new.json": {"sinks": {"files": file_sink(b)},
                              "endpoints": {"new": {"sink": "files"}}}})
    wait_until(lambda: "new" in d.api_endpoints(), timeout=15, what="the reload applied")
    wait_until(lambda: [r["state"] for r in spool_rows(d.spool_path, "slow")] == [DONE, DONE],
               what="c-2 done")
    e = d.api_endpoints()["slow"]
    assert {k: e[k] for k in ("routed", "attempts", "ok", "dead", "pending")} == \
        {"routed": 2, "attempts": 2, "ok": 2, "dead": 0, "pending": 0}
    m = d.metrics()
    assert m.get("switchyard_deliveries_finished_total", endpoint="slow", sink="slow",
                 state="delivered") == 2
    assert m.get("switchyard_attempt_duration_seconds_count", endpoint="slow") == 2
    assert m.get("switchyard_attempt_duration_seconds_bucket", endpoint="slow", le="+Inf") == 2


def test_reload_applies_log_level_and_names_restart_only_keys(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "a.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    mark = d.reload({"90-local.json": {"core": {"workers": 2, "log_level": "debug"}}})
    wait_logged(d, mark, 'msg="reload applied" sinks=1 endpoints=1', "the reload applied")
    # The restart-only keys are named right after the reload applied, not before it.
    wait_logged(d, mark, 'level=warn msg="reload: core.workers changed; it takes effect at the '
                'next restart"', "the restart-only warning")
    # log_level is not restart-only: debug lines appear from now on.
    wait_until(lambda: "level=debug" in d.log()[mark:], timeout=10, what="a debug line")
    send(d, "l-1")
    wait_until(lambda: sink_ids(tmp_path / "a.jsonl") == ["l-1"], what="l-1 delivered")


def test_reload_changing_drain_timeout_applies_it_or_says_it_does_not(ops_daemon, tmp_path):
    """
    Every core key a reload does not apply must be named in a "takes effect
    at the next restart" warning; drain_timeout is read from the boot config
    at SIGTERM and is neither (the same holds for stats_interval,
    retention, dedup_window and dead_letter_max).
    """
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "a.jsonl")},
                   endpoints={"all": {"sink": "files"}}, core={"drain_timeout": "10s"})
    mark = d.reload({"90-local.json": {"core": {"drain_timeout": "1234ms"}}})
    wait_logged(d, mark, 'msg="reload applied"', "the reload applied")
    assert d.terminate() == 0
    log = d.log()[mark:]
    assert "draining deliveries (up to 1234ms)" in log or \
        "reload: core.drain_timeout changed; it takes effect at the next restart" in log, log
