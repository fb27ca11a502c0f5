"""
Circuit breaker: after `failures` consecutive failed attempts the endpoint
holds its deliveries and lets one probe through at growing intervals
(probe, doubling, at most probe_max); a successful probe closes it and
everything flows again.

The receiver is a file sink writing into a folder that does not exist
(mkdir: false), so every attempt fails with a retry until the test creates
the folder: a receiver that is down for a while and then comes back. The
attempts are read from the spool's attempts log, which the dispatcher
writes in the order outcomes arrive: at_ms is the wall clock when the
attempt ended, latency_ms its duration, so it started at at_ms - latency_ms
(millisecond resolution: timing checks allow 2 ms for rounding).
"""

import json

from durability_helpers import (DONE, event, file_sink, flaky_calls, flaky_sink, sink_ids,
                                spool_daemon,
                                wait_until)  # noqa: F401 (fixture)

ROUND_MS = 2
FAILURES, PROBE_MS, PROBE_MAX_MS = 3, 300, 1000
CONCURRENCY = 4


def intervals():
    """The breaker's waits before each probe: 300, 600, 1000, 1000, ..."""
    i = PROBE_MS
    while True:
        yield i
        i = min(i * 2, PROBE_MAX_MS)


def test_breaker_probes_only_while_open(spool_daemon, tmp_path):
    """
    Receiver down: 3 failures open the breaker, 17 more events arrive while
    it is open, probes follow at 300 ms, 600 ms, 1 s, 1 s... (at most one
    call in flight, none in between); the receiver comes back after the
    third failed probe; the next probe succeeds and the 19 others flow.
    The breaker opened once.
    """
    down = tmp_path / "receiver"           # missing until the receiver "comes back"
    out = down / "events.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out, mkdir=False)},
                     endpoints={"ep": {"sink": "files", "enabled_events": ["*"],
                                       "concurrency": CONCURRENCY,
                                       "breaker": {"failures": FAILURES, "probe": f"{PROBE_MS}ms",
                                                   "probe_max": f"{PROBE_MAX_MS}ms"},
                                       "retry": {"schedule": ["100ms"], "max_attempts": 100}}})
    ids = [f"evt-b{i:02d}" for i in range(20)]
    # Three events open the breaker; the other 17 arrive while it is open.
    # (What was already queued when it opened: see the next test.)
    d.push([event(i) for i in ids[:FAILURES]])
    # The gate opens before the shard counts the opening: wait for both.
    s = d.wait_stats(lambda s: s["endpoints"]["ep"]["state"] == "breaker_open" and
                     s["endpoints"]["ep"]["breaker_opens"] >= 1, "the breaker open")
    assert s["endpoints"]["ep"]["breaker_opens"] == 1
    d.push([event(i) for i in ids[FAILURES:]])
    # All 20 wait: the 3 retries (due after 100 ms) and the 17 new ones.
    d.wait_stats(lambda s: s["deliveries"]["held"] == 20, "20 deliveries held by the breaker")

    def rows():
        r = d.spool.attempts("ep")
        for a in r:
            a["start"] = a["at_ms"] - a["latency_ms"]
            a["end"] = a["at_ms"]
        return r

    def t_open(r):
        # The breaker opens with the FAILURES-th failed attempt (no success before).
        fails = [a for a in r if a["result"] != 0]
        return fails[FAILURES - 1]["end"] if len(fails) >= FAILURES else None

    # Let three probes fail (300 ms, 600 ms, then 1 s, the cap), then bring
    # the receiver back: the fourth probe succeeds.
    def probes_so_far():
        r = rows()
        t = t_open(r)
        return t is not None and len([a for a in r if a["start"] > t + ROUND_MS]) >= 3

    wait_until(probes_so_far, timeout=20, what="three attempts after the breaker opened",
               on_timeout=lambda: json.dumps(rows(), indent=1))
    down.mkdir()
    s = d.wait_for("deliveries.ok", 20, timeout=30)
    assert s["endpoints"]["ep"]["breaker_opens"] == 1
    assert s["endpoints"]["ep"]["state"] == "active"
    assert s["deliveries"]["held"] == 0
    wait_until(lambda: d.spool.states("ep") == {DONE: 20}, timeout=10,
               what="all deliveries done in the spool")
    assert sorted(sink_ids(out)) == ids  # each exactly once

    r = rows()
    topen = t_open(r)
    ok = [a for a in r if a["result"] == 0]
    tclose = ok[0]["end"]          # the successful probe
    first_ok = ok[0]
    dump = "\n".join(f"  start {a['start'] - topen:+6d}ms end {a['end'] - topen:+6d}ms "
                     f"delivery {a['delivery_id']} attempt {a['attempt']} result {a['result']}"
                     for a in r)
    # Before the breaker opened: the failures that opened it, nothing else.
    before = [a for a in r if a["start"] <= topen + ROUND_MS]
    assert len(before) == FAILURES, (
        f"{len(before)} attempts started before the breaker could act (expected "
        f"{FAILURES}); times relative to the opening:\n{dump}")
    # While open: probes only, one at a time, each after its interval. Rows
    # are in the order outcomes arrived, so the probes are the attempts that
    # started after the opening and settled up to the successful probe.
    k_ok = r.index(first_ok)
    probes = [a for a in r[:k_ok] if a["start"] > topen + ROUND_MS] + [first_ok]
    assert len(probes) >= 4, f"expected at least 3 failed probes and a good one:\n{dump}"
    prev_end, waits = topen, intervals()
    for p in probes:
        w = next(waits)
        gap = p["start"] - prev_end
        assert gap >= w - ROUND_MS, (
            f"a call started {gap}ms after the previous one ended while the breaker was open; "
            f"the probe interval was {w}ms:\n{dump}")
        assert gap < w + 500, f"probe {gap}ms after the previous one; expected ~{w}ms:\n{dump}"
        prev_end = p["end"]
    # After the successful probe everything flows: the 19 others finish at once.
    after = r[k_ok + 1:]
    assert all(a["result"] == 0 for a in after), dump
    assert len(after) == 19, dump
    assert max(a["end"] for a in after) - tclose < 1000, dump


def test_breaker_holds_what_was_queued_before_it_opened(spool_daemon, tmp_path):
    """
    Serial calls (concurrency 1) of 50 ms each, every event's first attempt
    fails: events 1-3 open the breaker; events 4-6 were already queued
    behind the concurrency cap. While the breaker is open they must wait
    for probes like everything else: after the third failure the next call
    is a probe, 300 ms later, then one every 400 ms (probe_max) while
    probes fail, until one succeeds (a retry, attempt 2).
    """
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log, fail_times=1, sleep="50ms")},
                     endpoints={"ep": {"sink": "flaky", "concurrency": 1,
                                       "breaker": {"failures": 3, "probe": "300ms",
                                                   "probe_max": "400ms"},
                                       "retry": {"schedule": ["100ms"], "max_attempts": 20}}})
    ids = [f"evt-q{i}" for i in range(1, 7)]
    d.push([event(i) for i in ids])
    s = d.wait_for("deliveries.ok", 6, timeout=30)
    calls = flaky_calls(log)
    dump = "\n".join(f"  {c['event_id']} attempt {c['attempt']}: start "
                     f"{(c['start_us'] - calls[2]['end_us']) / 1000:+.1f} ms, end "
                     f"{(c['end_us'] - calls[2]['end_us']) / 1000:+.1f} ms" for c in calls)
    assert [(c["event_id"], c["attempt"]) for c in calls[:3]] == \
        [("evt-q1", 1), ("evt-q2", 1), ("evt-q3", 1)], dump
    # Serial: each call starts after the previous one ended.
    assert all(b["start_us"] >= a["end_us"] for a, b in zip(calls, calls[1:])), dump
    # From the opening (end of call 3) to the first success: probes only.
    first_ok = next(i for i, c in enumerate(calls) if c["attempt"] > 1)
    prev_end, waits = calls[2]["end_us"], [300, 400, 400, 400, 400, 400, 400]
    for k, c in enumerate(calls[3:first_ok + 1]):
        gap = (c["start_us"] - prev_end) / 1000
        assert gap >= waits[k] - 1, (
            f"call {k + 4} ({c['event_id']} attempt {c['attempt']}) started {gap:.1f} ms after "
            f"the previous call ended, with the breaker open: the next probe was due "
            f"{waits[k]} ms after it (calls relative to the opening):\n{dump}")
        prev_end = c["end_us"]
    assert s["endpoints"]["ep"]["breaker_opens"] == 1, dump
    assert sorted({c["event_id"] for c in calls}) == ids
