"""
Retries that wait on disk: with a spool, a retry due later than
core.spill_after leaves memory and the pager brings it back when it falls
due, at most core.memory_deliveries in memory at once. And since waiting
deliveries are safe in the spool, a receiver that is down must not stop the
daemon from accepting events for everyone else.
"""

import time

from durability_helpers import (both_backends, DONE, AckClient, event, file_sink, flaky_calls, flaky_sink,
                                sink_ids, spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends


def in_memory(s):
    dl = s["deliveries"]
    return dl["ready"] + dl["inflight"] + dl["scheduled"]


def test_spilled_retries_come_back_through_a_bounded_window(spool_daemon, tmp_path):
    """
    1,000 deliveries fail once; their retry (1.5 s) is beyond spill_after
    (1 s), so all of them wait on disk. When they fall due the pager brings
    them back at most memory_deliveries (100) at a time.
    """
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log, fail_times=1)},
                     endpoints={"ep": {"sink": "flaky", "breaker": False, "concurrency": 16,
                                       "retry": {"schedule": ["1500ms"]}}},
                     core={"spill_after": "1s", "memory_deliveries": 100,
                           "stats_interval": "20ms"})
    n = 1000
    d.push([event(f"evt-p{i:04d}") for i in range(n)])
    s = d.wait_for("deliveries.retries", n)
    # Every retry waits on disk: nothing of them in memory.
    s = d.wait_stats(lambda s: in_memory(s) == 0, "no delivery in memory")
    assert s["deliveries"]["ok"] == 0
    peak = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        s = d.stats()
        if s:
            peak = max(peak, in_memory(s))
            if s["deliveries"]["ok"] == n:
                break
        time.sleep(0.005)
    assert s["deliveries"]["ok"] == n, s["deliveries"]
    assert peak <= 100, f"{peak} deliveries in memory at once; memory_deliveries is 100"
    assert peak > 0
    calls = flaky_calls(log)
    assert len(calls) == 2 * n
    wait_until(lambda: d.spool.states("ep") == {DONE: n}, timeout=10,
               what="all done in the spool", on_timeout=lambda: d.spool.states())


def test_a_down_receiver_does_not_stop_ingress(spool_daemon, tmp_path):
    """
    One endpoint's receiver is down (every attempt fails, next retry in
    20 s); another endpoint takes every event too. 1,000 events published
    with acknowledgements must all be stored and reach the healthy
    endpoint promptly: the failing deliveries are safe in the spool, so
    there is no reason to stop reading. core.max_pending is 200 here, the
    backlog limit of the in-memory dispatcher.
    """
    up = tmp_path / "up.jsonl"
    d = spool_daemon(sinks={"down": flaky_sink(tmp_path / "down.log", fail_times=10**6),
                            "up": file_sink(up)},
                     endpoints={"down": {"sink": "down", "breaker": False,
                                         "retry": {"schedule": ["20s"]}},
                                "up": {"sink": "up"}},
                     core={"max_pending": 200})
    n = 1000
    t0 = time.monotonic()
    with AckClient(d.ack_addr) as c:
        answers = c.publish_all([(f"evt-u{i:04d}", event(f"evt-u{i:04d}")) for i in range(n)],
                                window=100, resend_after=2.0, deadline=10)
    took = time.monotonic() - t0
    s = d.stats() or {}
    assert len(answers) == n, (
        f"only {len(answers)} of {n} events acknowledged within {took:.1f}s while one receiver "
        f"is down; backpressure_pauses={s.get('events', {}).get('backpressure_pauses')}, "
        f"deliveries={s.get('deliveries')}")
    wait_until(lambda: len(sink_ids(up)) == n, timeout=10, what="all events at the healthy "
               "endpoint", on_timeout=lambda: f"{len(sink_ids(up))} delivered")
