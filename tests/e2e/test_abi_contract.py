"""
The sink ABI 2.0 contract as the running daemon keeps it, with test
plugins that push it:

  - a blocking batch plugin (tests/plugins/mixed) gets several deliveries
    of one endpoint in one call, and each follows its own outcome (OK,
    RETRY and FAIL side by side in one batch);
  - an asynchronous plugin that never completes (tests/plugins/misbehave,
    mode "never") gets a deadline: each attempt is retried with "plugin did
    not complete", then dead, and the daemon still stops cleanly (destroy
    completes what it held, late, and that is ignored);
  - one that completes every delivery twice gets each settled once: the
    second complete is counted and ignored;
  - one that completes after the deadline has the late complete ignored,
    never a crash nor a second settle.

Under `make check` the same tests run against the ASan/UBSan build, which
is where a double settle or a use after free would show.
"""

import json
from pathlib import Path

from conftest import TEST_PLUGIN_DIR, event, get, read_lines, wait_until

MIXED = TEST_PLUGIN_DIR / "mixed.so"
MISBEHAVE = TEST_PLUGIN_DIR / "misbehave.so"


def calls(log):
    try:
        return [json.loads(line) for line in read_lines(log)]
    except FileNotFoundError:
        return []


def test_batch_with_mixed_outcomes(switchyard, tmp_path):
    log = tmp_path / "mixed.log"
    d = switchyard(sinks={"mx": {"plugin": str(MIXED), "log": str(log)}},
                   endpoints={"ep": {"sink": "mx", "retry": {"schedule": ["50ms"],
                                                             "max_attempts": 2}}})
    outcomes = ["ok", "retry", "fail"] * 4
    d.push([event(f"m{i}", data={"outcome": o}) for i, o in enumerate(outcomes)])
    # 4 delivered, 4 retried once then dead, 4 failed at once.
    s = d.wait_stats(lambda s: get(s, "endpoints.ep.ok", 0) + get(s, "endpoints.ep.dead", 0) == 12,
                     "every delivery finished")
    ep = s["endpoints"]["ep"]
    assert (ep["ok"], ep["dead"], ep["attempts"]) == (4, 8, 16), ep
    assert (ep["attempts_ok"], ep["attempts_retry"], ep["failed"]) == (4, 8, 4), ep
    c = calls(log)
    # The twelve came in one call (linger 200 ms, batch_max 16), in publish order.
    assert c[0]["n"] == 12 and c[0]["ids"] == [f"m{i}" for i in range(12)], c[0]
    assert c[0]["attempts"] == [1] * 12
    # Only the four that asked to retry came back, as attempt 2, again in one call.
    assert c[1]["ids"] == [f"m{i}" for i in range(1, 12, 3)] and c[1]["attempts"] == [2] * 4, c
    assert len(c) == 2
    assert get(s, "deliveries.plugin_calls") == 2


def test_never_completed_attempts_hit_their_deadline(switchyard, tmp_path):
    d = switchyard(sinks={"mb": {"plugin": str(MISBEHAVE), "mode": "never", "timeout": "100ms"}},
                   endpoints={"ep": {"sink": "mb", "retry": {"schedule": ["50ms"],
                                                             "max_attempts": 2}}},
                   core={"complete_grace": "100ms"})
    d.push([event(f"n{i}") for i in range(3)])
    s = d.wait_stats(lambda s: get(s, "endpoints.ep.dead", 0) == 3, "three dead deliveries")
    assert get(s, "deliveries.deadline_expired") == 6
    assert get(s, "endpoints.ep.attempts") == 6
    assert get(s, "endpoints.ep.ok") == 0
    assert "plugin did not complete an attempt before its deadline" in d.log()
    # destroy() completes all six attempts it still holds: late, each ignored.
    assert d.stop() == 0
    assert get(d.final_stats, "deliveries.completions_ignored", 0) <= 6
    assert "msg=stopped" in d.log()


def test_a_second_complete_is_ignored_and_counted(switchyard, tmp_path):
    d = switchyard(sinks={"mb": {"plugin": str(MISBEHAVE), "mode": "twice"}},
                   endpoints={"ep": {"sink": "mb"}})
    d.push([event(f"t{i}") for i in range(20)])
    s = d.wait_stats(lambda s: get(s, "deliveries.completions_ignored", 0) == 20,
                     "twenty second completes ignored")
    s = d.wait_for("endpoints.ep.ok", 20)
    ep = s["endpoints"]["ep"]
    # Settled once each: no retry was scheduled from the second (RETRY) complete.
    assert (ep["attempts"], ep["ok"], ep["retries"], ep["dead"]) == (20, 20, 0, 0), ep


def test_a_complete_after_the_deadline_is_ignored(switchyard, tmp_path):
    d = switchyard(sinks={"mb": {"plugin": str(MISBEHAVE), "mode": "late", "timeout": "100ms",
                                 "delay": "600ms"}},
                   endpoints={"ep": {"sink": "mb", "retry": {"schedule": ["1s"],
                                                             "max_attempts": 2}}},
                   core={"complete_grace": "100ms"})
    d.push([event(f"l{i}") for i in range(5)])
    # Each attempt expires at ~200 ms and its late OK comes at ~600 ms: ignored.
    s = d.wait_stats(lambda s: get(s, "deliveries.completions_ignored", 0) >= 5,
                     "the late completes ignored")
    assert get(s, "deliveries.deadline_expired") >= 5
    assert get(s, "endpoints.ep.ok") == 0
    s = d.wait_stats(lambda s: get(s, "endpoints.ep.dead", 0) == 5, "all dead after two attempts")
    assert get(s, "endpoints.ep.attempts") == 10
