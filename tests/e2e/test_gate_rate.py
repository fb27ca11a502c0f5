"""
Per-endpoint rate limit ("rate_limit": "N/s"): a sliding window, so at most
N deliveries *start* in ANY window of that length, not only in aligned
ones. Measured where a receiver would see it: the flaky sink's
CLOCK_MONOTONIC stamp at the start of each deliver() call (start_us), and
a webhook receiver's arrival times: an attempt counts from its start until
one window after it completes, so arrivals stay within the limit too,
however long connections take to set up or answers to come.
"""

import sys
from pathlib import Path

from durability_helpers import (event, flaky_calls, flaky_sink, max_starts_in_window,
                                spool_daemon)  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver  # noqa: E402


def rate_daemon(spool_daemon, tmp_path, rate, **ep):
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log)},
                     endpoints={"ep": {"sink": "flaky", "enabled_events": ["*"],
                                       "rate_limit": rate, **ep}})
    d.flaky_log = log
    return d


def windows_report(starts_us, window_us, limit):
    """The starts that make a window exceed the limit, for the failure message."""
    s = sorted(starts_us)
    bad = []
    for i in range(len(s) - limit):
        if s[i + limit] - s[i] < window_us:
            bad.append(f"starts {i + 1}..{i + limit + 1} within {(s[i + limit] - s[i])}us")
    return bad


def test_rate_limit_10_per_second(spool_daemon, tmp_path):
    d = rate_daemon(spool_daemon, tmp_path, "10/s")
    ids = [f"evt-rl{i:02d}" for i in range(50)]
    d.push([event(i) for i in ids])
    # While the limit holds deliveries back, the stats show them as held.
    d.wait_stats(lambda s: s["deliveries"]["held"] > 0, "deliveries held by the rate limit")
    s = d.wait_for("deliveries.ok", 50, timeout=60)
    calls = flaky_calls(d.flaky_log)
    assert sorted(c["event_id"] for c in calls) == ids  # each exactly once
    assert s["endpoints"]["ep"]["gate_waits"] >= 40
    assert s["deliveries"]["held"] == 0
    starts = [c["start_us"] for c in calls]
    took = (max(starts) - min(starts)) / 1e6
    # 50 at 10/s: starts in five rounds, the last no sooner than 4 s after the first.
    assert took >= 3.99, f"50 deliveries at 10/s started within {took:.3f}s"
    assert took < 4 + 2.0, f"50 deliveries at 10/s took {took:.3f}s"
    # Coarse first (a broken limiter fails here), then exact.
    assert max_starts_in_window(starts, 990_000) <= 10
    most = max_starts_in_window(starts, 1_000_000)
    assert most <= 10, (f"{most} deliveries started within one second (limit 10/s): "
                        + "; ".join(windows_report(starts, 1_000_000, 10)))
    assert most == 10  # and the limit is used, not undershot


def test_rate_limit_with_slow_receiver_and_concurrency(spool_daemon, tmp_path):
    """
    The window counts starts even when calls take long and queue behind
    the concurrency cap: 5 per 500 ms, each call 120 ms, concurrency 3.
    """
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log, sleep="120ms")},
                     endpoints={"ep": {"sink": "flaky", "rate_limit": "5/500ms",
                                       "concurrency": 3}})
    ids = [f"evt-rs{i:02d}" for i in range(20)]
    d.push([event(i) for i in ids])
    d.wait_for("deliveries.ok", 20, timeout=60)
    calls = flaky_calls(log)
    assert sorted(c["event_id"] for c in calls) == ids
    starts = [c["start_us"] for c in calls]
    assert max_starts_in_window(starts, 490_000) <= 5
    most = max_starts_in_window(starts, 500_000)
    assert most <= 5, (f"{most} deliveries started within 500 ms (limit 5/500ms): "
                       + "; ".join(windows_report(starts, 500_000, 5)))
    # Never more than 3 calls at once.
    events = sorted([(c["start_us"], 1) for c in calls] + [(c["end_us"], -1) for c in calls],
                    key=lambda x: (x[0], x[1]))
    cur = peak = 0
    for _, k in events:
        cur += k
        peak = max(peak, cur)
    assert peak <= 3, f"{peak} calls at once with concurrency 3"


def test_rate_limit_as_the_receiver_counts_arrivals(spool_daemon, tmp_path):
    """
    5 per second, as a receiver counts arrivals: new connections take
    300 ms before their first request is read, and every answer 200 ms.
    Counting starts only, the first five requests would arrive 300 ms late
    and the next five, on the kept-alive connections, at once a second
    after the first starts: ten arrivals within one second.
    """
    r = Receiver(default=Answer(status=204, delay=0.2), connect_delay=0.3)
    try:
        d = spool_daemon(sinks={"hooks": {"plugin": "webhook", "allow_private_networks": True}},
                         endpoints={"ep": {"sink": "hooks", "url": r.url("/in"),
                                           "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                                           "rate_limit": "5/s", "concurrency": 10}})
        ids = [f"evt-ra{i:02d}" for i in range(20)]
        d.push([event(i) for i in ids])
        got = r.wait(20, "/in", timeout=60)
        d.wait_for("deliveries.ok", 20)
    finally:
        r.close()
    assert sorted(q.headers["svix-id"] for q in got) == ids  # each exactly once
    arrivals = [q.t_arrive for q in got]
    most = max_starts_in_window(arrivals, 1.0)
    assert most <= 5, (f"{most} requests arrived within one second (limit 5/s): "
                       + "; ".join(windows_report([int(t * 1e6) for t in arrivals],
                                                  1_000_000, 5)))
    assert most == 5  # and the limit is used, not undershot
