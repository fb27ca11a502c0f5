"""
Receiver down, then up: every event is delivered in the end, and no attempt
starts earlier than the retry schedule allows, whether the retry waited in
memory, on disk (spill_after, brought back by the pager), or across a
restart of the daemon (SIGTERM, and SIGKILL).

"Earlier than allowed" is measured with the flaky sink's CLOCK_MONOTONIC
stamps (system-wide, so they compare across daemon processes): attempt n+1
must start at least delay(n) after attempt n *ended* (the policy delay runs
from the failure). The breaker is off: the failures here are expected and
its probing is tested in test_gate_breaker.py.
"""

from durability_helpers import (both_backends, DONE, AckClient, event, flaky_calls, flaky_sink,
                                spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends

SLACK_MS = 1500  # upper bound only, for a loaded 2-CPU box


def by_event(calls):
    per = {}
    for c in calls:
        per.setdefault(c["event_id"], []).append(c)
    return per


def check_schedule(calls, delays_ms, slack_ms=SLACK_MS):
    """
    calls of one event: attempts 1..n in order, none much later than its
    delay. Returns the attempts that started *earlier* than the schedule
    allows, as strings, so a test can check everything else first.
    """
    assert [c["attempt"] for c in calls] == list(range(1, len(delays_ms) + 2)), calls
    early = []
    for prev, nxt, delay in zip(calls, calls[1:], delays_ms):
        waited = nxt["start_us"] - prev["end_us"]
        if waited < delay * 1000:
            early.append(f"{nxt['event_id']} attempt {nxt['attempt']} started {waited}us after "
                         f"attempt {prev['attempt']} ended ({delay * 1000 - waited}us early; "
                         f"the schedule says {delay}ms)")
        assert waited < (delay + slack_ms) * 1000, (
            f"{nxt['event_id']} attempt {nxt['attempt']} came {waited}us after attempt "
            f"{prev['attempt']}; expected about {delay}ms")
    return early


def assert_none_early(early, path):
    assert not early, (f"{len(early)} retries ({path}) started before their delay had "
                       f"passed:\n  " + "\n  ".join(early))


def down_then_up(spool_daemon, tmp_path, schedule, fail_times, core=None):
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log, fail_times=fail_times)},
                     endpoints={"ep": {"sink": "flaky", "enabled_events": ["*"],
                                       "breaker": False, "concurrency": 8,
                                       "retry": {"schedule": schedule}}},
                     core=core)
    d.flaky_log = log
    return d


def publish_acked(d, ids):
    with AckClient(d.ack_addr) as c:
        answers = c.publish_all([(i, event(i)) for i in ids], deadline=30)
    assert {k: v[0] for k, v in answers.items()} == {i: f"ok {i}" for i in ids}


def test_receiver_down_then_up_in_memory_and_spilled(spool_daemon, tmp_path):
    """
    30 events, the receiver fails the first 3 attempts of each. Schedule
    200 ms, 600 ms, 1.2 s with spill_after 400 ms: the first retry waits in
    memory, the other two on disk until the pager brings them back.
    """
    delays = [200, 600, 1200]
    d = down_then_up(spool_daemon, tmp_path, [f"{x}ms" for x in delays], 3,
                     core={"spill_after": "400ms"})
    ids = [f"evt-du{i:02d}" for i in range(30)]
    publish_acked(d, ids)
    s = d.wait_for("deliveries.ok", 30)
    assert s["deliveries"]["attempts"] == 120
    assert s["deliveries"]["retries"] == 90
    assert s["deliveries"]["dead"] == 0
    per = by_event(flaky_calls(d.flaky_log))
    assert sorted(per) == ids
    early = {1: [], 2: []}  # by where the retry waited: 1 in memory, 2 on disk
    for eid in ids:
        for e in check_schedule(per[eid], delays):
            # attempt 2 follows the 200 ms retry (in memory), 3 and 4 the spilled ones
            early[1 if e.split()[2] == "2" else 2].append(e)
    wait_until(lambda: d.spool.states() == {DONE: 30}, timeout=10,
               what="every delivery done in the spool", on_timeout=lambda: d.spool.states())
    rows = d.spool.attempts("ep")
    assert len(rows) == 120
    for dl in d.spool.deliveries("ep"):
        mine = [r for r in rows if r["delivery_id"] == dl["id"]]
        assert [(r["attempt"], r["result"], r["status"]) for r in mine] == \
            [(1, 1, 503), (2, 1, 503), (3, 1, 503), (4, 0, 200)], (dl, mine)
        assert dl["attempt"] == 4 and dl["last_status"] == 200
    assert_none_early(early[1], "waiting in memory")
    assert_none_early(early[2], "spilled to the spool, brought back by the pager")


def test_retries_survive_a_restart(spool_daemon, tmp_path):
    """
    Retries pending when the daemon stops (SIGTERM) come back after the
    restart at their scheduled time, with their attempt count: attempt 2
    still waits the full 1.5 s after attempt 1 even though a new process
    runs it, and attempt 3 follows 300 ms after attempt 2.
    """
    delays = [1500, 300]
    d = down_then_up(spool_daemon, tmp_path, [f"{x}ms" for x in delays], 2)
    ids = [f"evt-rs{i}" for i in range(10)]
    publish_acked(d, ids)
    # Every first attempt failed and its retry is scheduled. ("attempts" alone moves
    # when an attempt starts: one still in the plugin at SIGTERM would come back during
    # the drain, and a retry decided while stopping is due at once, not 1.5 s later.)
    d.wait_for("deliveries.retries", 10)
    assert d.restart() is d
    s = d.wait_for("deliveries.ok", 10)
    # The new process made attempts 2 and 3 only.
    assert s["deliveries"]["attempts"] == 20
    per = by_event(flaky_calls(d.flaky_log))
    assert sorted(per) == ids
    early = [e for eid in ids for e in check_schedule(per[eid], delays)]
    wait_until(lambda: d.spool.states() == {DONE: 10}, timeout=10,
               what="every delivery done in the spool", on_timeout=lambda: d.spool.states())
    assert_none_early(early, "loaded from the spool by the restarted daemon")


def test_retries_survive_kill9(spool_daemon, tmp_path):
    """
    The same with SIGKILL while retries wait in memory (leased by the dead
    process): the new process takes them over (the leases are void) and
    keeps the schedule.
    """
    delays = [1500, 300]
    d = down_then_up(spool_daemon, tmp_path, [f"{x}ms" for x in delays], 2)
    ids = [f"evt-rk{i}" for i in range(10)]
    publish_acked(d, ids)
    d.wait_for("deliveries.retries", 10)
    # The retry outcomes are on disk (group commit) before we pull the plug.
    wait_until(lambda: all(r["attempt"] == 1 for r in d.spool.deliveries("ep")) and
               len(d.spool.deliveries("ep")) == 10, timeout=10,
               what="attempt 1 of every delivery recorded in the spool")
    d.kill9()
    d.start()
    d.wait_for("deliveries.ok", 10)
    per = by_event(flaky_calls(d.flaky_log))
    assert sorted(per) == ids
    early = [e for eid in ids for e in check_schedule(per[eid], delays)]
    wait_until(lambda: d.spool.states() == {DONE: 10}, timeout=10,
               what="every delivery done in the spool", on_timeout=lambda: d.spool.states())
    assert_none_early(early, "loaded from the spool after SIGKILL, leases void")
