"""
Retries, dead letters, Retry-After, concurrency caps and drain, observed
through the flaky test sink (tests/plugins/flaky), which logs every call
with the wall-clock time and fails the first fail_times attempts.

Timing bounds: a retry may never come early and must come within
delay + 400 ms (a loaded CI box). "Early" is checked two ways:
  - t_ms (the host's wall clock, ms) of attempt n+1 minus that of attempt n
    is >= delay: since floor(a + x) >= floor(a) + floor(x), a real gap of at
    least delay can never read as less;
  - start_us of attempt n+1 minus end_us of attempt n (CLOCK_MONOTONIC, as
    the core's timers) is >= delay: the policy delay runs from the moment
    the attempt failed, and it ended no later than end_us.
"""

import time

from conftest import event, flaky_calls

SLACK_MS = 400


def flaky_daemon(switchyard, tmp_path, flaky_so, sink_keys, endpoint_keys=None):
    log = tmp_path / "flaky.log"
    sinks = {"flaky": {"plugin": flaky_so, "log": str(log), **sink_keys}}
    endpoints = {"ep": {"sink": "flaky", "enabled_events": ["*"], **(endpoint_keys or {})}}
    d = switchyard(sinks=sinks, endpoints=endpoints)
    d.flaky_log = log
    return d


def gaps(calls):
    return [b["t_ms"] - a["t_ms"] for a, b in zip(calls, calls[1:])]


def waits_us(calls):
    """Microseconds from the end of each call to the start of the next."""
    return [b["start_us"] - a["end_us"] for a, b in zip(calls, calls[1:])]


def check_delays(calls, delays_ms):
    """Attempt n+1 came delays_ms[n-1] after attempt n: not earlier, not much later."""
    g, w = gaps(calls), waits_us(calls)
    assert len(g) == len(delays_ms)
    for i, delay in enumerate(delays_ms):
        assert delay <= g[i] < delay + SLACK_MS, f"t_ms gaps {g}, expected {delays_ms}"
        assert w[i] >= delay * 1000, (
            f"retry {i + 1} started {w[i]}us after attempt {i + 1} ended; "
            f"the policy says {delay}ms (all waits: {w}us)")


def test_retry_schedule_then_ok(switchyard, tmp_path, flaky_so):
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 2},
                     {"retry": {"schedule": ["300ms", "600ms"]}})
    d.push([event("evt-r1")])
    s = d.wait_for("deliveries.ok", 1)
    calls = flaky_calls(d.flaky_log)
    assert [(c["event_id"], c["attempt"], c["endpoint"]) for c in calls] == [
        ("evt-r1", 1, "ep"), ("evt-r1", 2, "ep"), ("evt-r1", 3, "ep")]
    check_delays(calls, [300, 600])
    assert s["deliveries"]["attempts"] == 3
    assert s["deliveries"]["retries"] == 2
    assert s["deliveries"]["ok"] == 1
    assert s["deliveries"]["failed"] == 0
    assert s["deliveries"]["dead"] == 0
    assert s["endpoints"]["ep"]["attempts"] == 3
    assert s["endpoints"]["ep"]["retries"] == 2
    assert s["endpoints"]["ep"]["ok"] == 1
    assert s["endpoints"]["ep"]["last_status"] == 200
    assert s["sinks"]["flaky"]["calls"] == 3
    assert s["sinks"]["flaky"]["failures"] == 2
    assert d.stop() == 0
    assert len(flaky_calls(d.flaky_log)) == 3
    assert d.final_stats["deliveries"]["ok"] == 1


def test_fail_mode_fail_is_dead_after_one_call(switchyard, tmp_path, flaky_so):
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 5, "fail_mode": "fail"},
                     {"retry": {"schedule": ["100ms", "100ms"]}})
    d.push([event("evt-f1")])
    s = d.wait_for("deliveries.dead", 1)
    assert s["deliveries"]["attempts"] == 1
    assert s["deliveries"]["failed"] == 1
    assert s["deliveries"]["retries"] == 0
    assert s["deliveries"]["ok"] == 0
    assert s["endpoints"]["ep"]["dead"] == 1
    assert s["endpoints"]["ep"]["last_status"] == 400
    assert d.stop() == 0
    assert [(c["event_id"], c["attempt"]) for c in flaky_calls(d.flaky_log)] == [("evt-f1", 1)]
    assert 'msg="delivery dead" endpoint=ep event_id=evt-f1 attempts=1 status=400' in d.log()
    assert "flaky: attempt 1 of 5 fails" in d.log()


def test_custom_schedule_exhausted_is_dead(switchyard, tmp_path, flaky_so):
    """schedule of 2 delays, no max_attempts: 3 attempts, then dead."""
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 10},
                     {"retry": {"schedule": ["100ms", "100ms"]}})
    d.push([event("evt-x1")])
    s = d.wait_for("deliveries.dead", 1)
    assert s["deliveries"]["attempts"] == 3
    assert s["deliveries"]["retries"] == 2
    assert s["deliveries"]["failed"] == 0
    assert s["deliveries"]["ok"] == 0
    assert s["endpoints"]["ep"]["last_status"] == 503
    calls = flaky_calls(d.flaky_log)
    assert [c["attempt"] for c in calls] == [1, 2, 3]
    check_delays(calls, [100, 100])
    assert d.stop() == 0
    assert len(flaky_calls(d.flaky_log)) == 3
    assert 'msg="delivery dead" endpoint=ep event_id=evt-x1 attempts=3 status=503' in d.log()


def test_max_attempts_caps_a_schedule(switchyard, tmp_path, flaky_so):
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 10},
                     {"retry": {"schedule": ["50ms"], "max_attempts": 4}})
    d.push([event("evt-m1")])
    s = d.wait_for("deliveries.dead", 1)
    assert s["deliveries"]["attempts"] == 4
    assert s["deliveries"]["retries"] == 3
    calls = flaky_calls(d.flaky_log)
    assert [c["attempt"] for c in calls] == [1, 2, 3, 4]
    check_delays(calls, [50, 50, 50])


def test_retry_after_wins_when_larger(switchyard, tmp_path, flaky_so):
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 1, "retry_after": "800ms"},
                     {"retry": {"schedule": ["100ms"]}})
    d.push([event("evt-ra")])
    s = d.wait_for("deliveries.ok", 1)
    calls = flaky_calls(d.flaky_log)
    assert [c["attempt"] for c in calls] == [1, 2]
    check_delays(calls, [800])
    assert s["deliveries"]["retries"] == 1


def test_retry_after_smaller_than_policy_is_ignored(switchyard, tmp_path, flaky_so):
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 1, "retry_after": "50ms"},
                     {"retry": {"schedule": ["500ms"]}})
    d.push([event("evt-rs")])
    d.wait_for("deliveries.ok", 1)
    calls = flaky_calls(d.flaky_log)
    assert [c["attempt"] for c in calls] == [1, 2]
    check_delays(calls, [500])


def test_retries_of_many_events_are_independent(switchyard, tmp_path, flaky_so):
    """50 events, each failing twice: 150 calls, 3 per event, attempts 1-2-3 in order.

    The breaker is off: 50 first attempts failing in a row would open it,
    which test_durability.py covers on its own."""
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"fail_times": 2},
                     {"retry": {"schedule": ["100ms", "100ms"]}, "concurrency": 8,
                      "breaker": False})
    ids = [f"evt-many-{i}" for i in range(50)]
    d.push([event(i) for i in ids])
    s = d.wait_for("deliveries.ok", 50)
    assert s["deliveries"]["attempts"] == 150
    assert s["deliveries"]["retries"] == 100
    per = {}
    for c in flaky_calls(d.flaky_log):
        per.setdefault(c["event_id"], []).append(c)
    assert sorted(per) == sorted(ids)
    for eid, cs in per.items():
        assert [c["attempt"] for c in cs] == [1, 2, 3], eid
        # No upper bound here: 100 retries share 8 slots and 4 workers.
        assert all(g >= 100 for g in gaps(cs)), (eid, gaps(cs))
        assert all(w >= 100_000 for w in waits_us(cs)), (eid, waits_us(cs))


def test_endpoint_concurrency_cap(switchyard, tmp_path, flaky_so):
    """concurrency 2, each call 300 ms: never more than 2 calls at once, but 2 do overlap."""
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"sleep": "300ms"}, {"concurrency": 2})
    d.push([event(f"evt-c{i}") for i in range(6)])
    d.wait_for("deliveries.ok", 6)
    t = sorted(c["t_ms"] for c in flaky_calls(d.flaky_log))
    assert len(t) == 6
    # Call i+2 can only start once call i has finished.
    assert all(t[i + 2] - t[i] >= 300 for i in range(4)), t
    # Two run side by side (4 workers, cap 2), so 6 calls take ~900 ms, not 1800.
    assert t[-1] - t[0] < 1800 - 300, t


def test_sigterm_drains_in_flight_deliveries(switchyard, tmp_path, flaky_so):
    d = flaky_daemon(switchyard, tmp_path, flaky_so, {"sleep": "1s"})
    d.push([event(f"evt-d{i}") for i in range(4)])
    s = d.wait_for("deliveries.attempts", 4)  # all four are inside the plugin now
    assert s["deliveries"]["ok"] == 0
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 10
    assert d.final_stats["deliveries"]["ok"] == 4
    assert d.final_stats["sinks"]["flaky"]["calls"] == 4
    assert "unfinished deliveries dropped" not in d.log()
