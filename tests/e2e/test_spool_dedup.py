"""
De-duplication of event ids at ingress (core.dedup_window, default 24 h):
an id already in the spool is answered "dup <id>" and delivered no second
time, within one process, within one group-commit batch, over PULL, and
across a restart (SIGTERM or SIGKILL).
"""

from durability_helpers import (both_backends, DONE, AckClient, event, flaky_calls, flaky_sink,
                                spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends


def dedup_daemon(spool_daemon, tmp_path, core=None):
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log)},
                     endpoints={"ep": {"sink": "flaky", "enabled_events": ["*"]}}, core=core)
    d.flaky_log = log
    return d


def delivered(d):
    return sorted(c["event_id"] for c in flaky_calls(d.flaky_log))


def test_same_id_twice_ok_then_dup_delivered_once(spool_daemon, tmp_path):
    d = dedup_daemon(spool_daemon, tmp_path)
    with AckClient(d.ack_addr) as c:
        assert c.request(event("evt-d1"), tag=b"a") == "ok evt-d1"
        # Same id, different body: still the same event to the daemon.
        assert c.request(event("evt-d1", data={"x": 1}), tag=b"b") == "dup evt-d1"
        assert c.request(event("evt-d1"), tag=None) == "dup evt-d1"
        assert c.request(event("evt-d2"), tag=b"c") == "ok evt-d2"
    s = d.wait_for("deliveries.ok", 2)
    assert s["events"]["duplicates"] == 2
    assert s["events"]["accepted"] == 4
    assert s["deliveries"]["created"] == 2
    assert s["endpoints"]["ep"]["routed"] == 2
    assert d.stop() == 0
    assert delivered(d) == ["evt-d1", "evt-d2"]
    assert d.spool.count_events() == 2
    assert d.spool.states() == {DONE: 2}


def test_duplicates_inside_one_batch(spool_daemon, tmp_path):
    """Copies sent back to back land in the same group commit: one ok, the rest dup."""
    d = dedup_daemon(spool_daemon, tmp_path)
    with AckClient(d.ack_addr) as c:
        for k in range(5):
            for i in range(50):
                c.send(event(f"evt-b{i}"), f"{k}:{i}".encode())
        answers = {}
        while len(answers) < 250:
            r = c.recv(10)
            assert r is not None, f"only {len(answers)} of 250 answers"
            answers[r[0].decode()] = r[1].decode()
    for i in range(50):
        texts = sorted(answers[f"{k}:{i}"] for k in range(5))
        assert texts == [f"dup evt-b{i}"] * 4 + [f"ok evt-b{i}"], texts
    d.wait_for("deliveries.ok", 50)
    s = d.wait_for("events.duplicates", 200)
    assert d.stop() == 0
    assert delivered(d) == sorted(f"evt-b{i}" for i in range(50))
    assert d.final_stats["deliveries"]["created"] == 50
    assert s["events"]["accepted"] == 250


def test_dedup_over_pull_ingress(spool_daemon, tmp_path):
    d = dedup_daemon(spool_daemon, tmp_path)
    d.push([event("evt-p1"), event("evt-p2"), event("evt-p1"), event("evt-p1")])
    d.wait_for("events.duplicates", 2)
    d.wait_for("deliveries.ok", 2)
    assert d.stop() == 0
    assert delivered(d) == ["evt-p1", "evt-p2"]


def test_dedup_across_restart(spool_daemon, tmp_path):
    d = dedup_daemon(spool_daemon, tmp_path)
    with AckClient(d.ack_addr) as c:
        assert c.request(event("evt-r1"), tag=b"1") == "ok evt-r1"
    d.wait_for("deliveries.ok", 1)
    d.restart()
    with AckClient(d.ack_addr) as c:
        assert c.request(event("evt-r1"), tag=b"2") == "dup evt-r1"
        assert c.request(event("evt-r2"), tag=b"3") == "ok evt-r2"
    s = d.wait_for("deliveries.ok", 1)
    assert s["events"]["duplicates"] == 1
    assert d.stop() == 0
    assert delivered(d) == ["evt-r1", "evt-r2"]


def test_dedup_across_kill9(spool_daemon, tmp_path):
    """An id answered "ok" is known after a crash: "dup", and at least (here: exactly) one delivery."""
    d = dedup_daemon(spool_daemon, tmp_path)
    with AckClient(d.ack_addr) as c:
        assert c.request(event("evt-k1"), tag=b"1") == "ok evt-k1"
        d.wait_for("deliveries.ok", 1)
        wait_until(lambda: d.spool.states() == {DONE: 1}, timeout=10,
                   what="the delivery recorded done")
        d.kill9()
        d.start()
        # The same DEALER, reconnected to the new process on its own.
        assert c.request(event("evt-k1"), tag=b"2", timeout=20) == "dup evt-k1"
    s = d.wait_for("events.duplicates", 1)
    assert s["deliveries"]["created"] == 0
    assert d.stop() == 0
    assert delivered(d) == ["evt-k1"]

