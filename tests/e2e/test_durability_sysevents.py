"""
System events raised by the durability features, routed like published
events but never matched by "*" and never sent to the endpoint they are
about:

  - webhook.delivery_failed: one per dead delivery, data {endpoint_id,
    event_id, event_type, attempts, last_status, last_detail}, org_id of
    the failed event;
  - endpoint.disabled: once, when an endpoint has failed without a single
    success for disable_after; its pending deliveries die and new events
    are no longer routed to it.
"""

import time

from durability_helpers import (both_backends, DEAD, event, file_sink, flaky_calls, flaky_sink, sink_events,
                                spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends


def test_delivery_failed_one_per_death(spool_daemon, tmp_path):
    out = tmp_path / "out"
    logs = {k: tmp_path / f"{k}.log" for k in ("bad", "slow")}
    d = spool_daemon(
        sinks={"bad": flaky_sink(logs["bad"], fail_times=1000, fail_mode="fail"),
               "slow": flaky_sink(logs["slow"], fail_times=1000),
               "watch": file_sink(out / "watch.jsonl"),
               "wild": file_sink(out / "wild.jsonl"),
               "all": file_sink(out / "all.jsonl")},
        endpoints={
            # Dies at once (SY_FAIL); it also asks for failure notices, but
            # must never get the ones about itself.
            "bad": {"sink": "bad", "enabled_events": ["job.*", "webhook.delivery_failed"]},
            # Dies when its schedule runs out: 2 attempts, last 503.
            "slow": {"sink": "slow", "enabled_events": ["job.*"],
                     "retry": {"schedule": ["50ms"]}},
            "watch": {"sink": "watch", "enabled_events": ["webhook.delivery_failed"]},
            "wild": {"sink": "wild", "enabled_events": ["webhook.*"]},
            "all": {"sink": "all", "enabled_events": ["*"]},
        })
    jobs = [event("evt-1", org="acme"), event("evt-2", org="globex"), event("evt-3", org=None)]
    d.push(jobs)
    # 6 deaths of job deliveries (3 bad, 3 slow) + 3 notices about "slow"
    # that "bad" received and failed; a dying notice announces nothing.
    # ok: 3 job events to "all", 6 notices to "watch", 6 to "wild".
    d.wait_for("deliveries.dead", 9)
    d.wait_for("deliveries.ok", 15)
    assert d.stop() == 0
    st = d.final_stats
    assert st["deliveries"]["dead"] == 9 and st["deliveries"]["ok"] == 15, st["deliveries"]
    assert st["endpoints"]["watch"]["routed"] == 6
    assert st["endpoints"]["wild"]["routed"] == 6
    assert st["endpoints"]["all"]["routed"] == 3
    assert st["endpoints"]["bad"]["routed"] == 6

    expected = set()
    for eid, org in (("evt-1", "acme"), ("evt-2", "globex"), ("evt-3", None)):
        expected.add(("bad", eid, org, 1, 400, "flaky: attempt 1 of 1000 fails"))
        expected.add(("slow", eid, org, 2, 503, "flaky: attempt 2 of 1000 fails"))

    def notices(path):
        got = []
        for e in sink_events(path):
            assert e["event_type"] == "webhook.delivery_failed", e
            assert e["event_id"].startswith("sys_"), e
            data = e["data"]
            assert set(data) == {"endpoint_id", "event_id", "event_type", "attempts",
                                 "last_status", "last_detail"}, data
            assert data["event_type"] == "job.completed", data
            got.append((data["endpoint_id"], data["event_id"], e.get("org_id"),
                        data["attempts"], data["last_status"], data["last_detail"]))
        return got

    for name in ("watch", "wild"):
        got = notices(out / f"{name}.jsonl")
        assert len(got) == 6 and set(got) == expected, (name, got)
    # "*" means published events only.
    assert sorted(e["event_id"] for e in sink_events(out / "all.jsonl")) == \
        ["evt-1", "evt-2", "evt-3"]
    # "bad" got the notices about "slow" (it asked for them), none about itself.
    bad_calls = flaky_calls(logs["bad"])
    assert sorted(c["event_id"] for c in bad_calls if not c["event_id"].startswith("sys_")) \
        == ["evt-1", "evt-2", "evt-3"]
    sys_to_bad = [c["event_id"] for c in bad_calls if c["event_id"].startswith("sys_")]
    watch_ids = {e["event_id"]: e["data"]["endpoint_id"]
                 for e in sink_events(out / "watch.jsonl")}
    assert len(sys_to_bad) == 3 and all(watch_ids[i] == "slow" for i in sys_to_bad), \
        (sys_to_bad, watch_ids)


def _mono_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_endpoint_disabled_after_failing_for_disable_after(spool_daemon, tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "dying.log"
    d = spool_daemon(
        sinks={"dying": flaky_sink(log, fail_times=1000000),
               "watch": file_sink(out / "watch.jsonl"),
               "good": file_sink(out / "good.jsonl")},
        endpoints={
            "dying": {"sink": "dying", "org_id": "acme", "enabled_events": ["job.*"],
                      "breaker": False, "disable_after": "1s",
                      "retry": {"schedule": ["100ms"], "max_attempts": 1000}},
            "watch": {"sink": "watch", "enabled_events": ["endpoint.disabled"]},
            "good": {"sink": "good", "enabled_events": ["*"]},
        })
    # Two events whose retries (every 100 ms) interleave ~50 ms apart, so
    # no two calls overlap and the log order is the order of outcomes.
    d.push([event("evt-d1")])
    wait_until(lambda: flaky_calls(log), timeout=10, what="the first call")
    t_first = flaky_calls(log)[0]["end_us"]
    time.sleep(max(0.0, (t_first + 50_000 - _mono_us()) / 1e6))
    d.push([event("evt-d2")])
    s = d.wait_stats(lambda s: s["endpoints"]["dying"]["state"] == "disabled",
                     "endpoint dying disabled", timeout=20)
    d.wait_for("deliveries.ok", 3)  # evt-d1, evt-d2 to good + the notice to watch
    calls = flaky_calls(log)
    notes = sink_events(out / "watch.jsonl")
    assert len(notes) == 1, notes
    n = notes[0]
    # Every call failed, and the endpoint was disabled by the last of them:
    # no call started after it.
    assert n["data"]["consecutive_failures"] == len(calls), (n, calls[-3:])
    first = calls[0]
    # The last call came at least 1 s after the first failure; the one
    # before it less than 1 s after (1 ms for the millisecond clock).
    span_ms = (calls[-1]["end_us"] - first["end_us"]) / 1000
    before_ms = (calls[-2]["end_us"] - first["end_us"]) / 1000
    assert span_ms >= 999, f"disabled after {span_ms:.1f} ms of failures"
    assert before_ms < 1001, f"still enabled after {before_ms:.1f} ms of failures"
    assert span_ms < 1500, f"disabled only after {span_ms:.1f} ms of failures"

    # Both pending deliveries died; nothing is pending or delivered for "dying".
    wait_until(lambda: d.spool.states("dying") == {DEAD: 2}, timeout=10,
               what="dying's deliveries dead", on_timeout=lambda: d.spool.states("dying"))
    assert s["endpoints"]["dying"]["routed"] == 2, s["endpoints"]["dying"]

    # The notice, with the endpoint's org.
    assert n["event_type"] == "endpoint.disabled" and n["org_id"] == "acme", n
    assert n["data"]["endpoint_id"] == "dying", n
    assert 0 <= n["data"]["failing_since_ms"] - first["t_ms"] < 50, (n, first)

    # Later events are not routed to it, and it gets no more calls.
    n_calls = len(calls)
    d.push([event("evt-d3"), event("evt-d4")])
    d.wait_for("deliveries.ok", 5)
    s = d.stats()
    assert s["endpoints"]["dying"]["routed"] == 2, s["endpoints"]["dying"]
    assert s["endpoints"]["dying"]["state"] == "disabled"
    assert {r["event_id"] for r in d.spool.deliveries("dying")} == {"evt-d1", "evt-d2"}
    assert d.stop() == 0
    assert len(flaky_calls(log)) == n_calls
    assert sorted(e["event_id"] for e in sink_events(out / "good.jsonl")) == \
        ["evt-d1", "evt-d2", "evt-d3", "evt-d4"]
    assert len(sink_events(out / "watch.jsonl")) == 1
