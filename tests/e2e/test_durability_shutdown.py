"""
A clean stop (SIGTERM) with a spool: exit 0, and what was not finished stays
pending in the spool for the next start.

The daemon runs with MALLOC_PERTURB_ set, so glibc fills freed memory with
a pattern: code that reads memory after freeing it then fails every time
instead of once in a while.
"""

from durability_helpers import (both_backends, DONE, PENDING, event, flaky_calls, flaky_sink,
                                spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends


def test_sigterm_with_pending_retries_exits_0_and_keeps_them(spool_daemon, tmp_path,
                                                             monkeypatch):
    monkeypatch.setenv("MALLOC_PERTURB_", "165")
    log = tmp_path / "flaky.log"
    d = spool_daemon(sinks={"flaky": flaky_sink(log, fail_times=1)},
                     endpoints={"ep": {"sink": "flaky", "retry": {"schedule": ["300ms"]},
                                       "rate_limit": "100/s"}})
    d.push([event(f"evt-s{i}") for i in range(5)])
    d.wait_for("deliveries.retries", 5)
    rc = d.stop()
    assert rc == 0, f"SIGTERM: switchyard exited with {rc} (-11 = SIGSEGV); log tail:\n" \
                    f"{d.log()[-1500:]}"
    assert d.spool.states("ep") == {PENDING: 5}
    # The next start delivers them (attempt 2 succeeds).
    d.start()
    d.wait_for("deliveries.ok", 5)
    wait_until(lambda: d.spool.states("ep") == {DONE: 5}, timeout=10,
               what="all 5 done in the spool")
    assert sorted((c["event_id"], c["attempt"]) for c in flaky_calls(log)) == sorted(
        [(f"evt-s{i}", 1) for i in range(5)] + [(f"evt-s{i}", 2) for i in range(5)])
    rc = d.stop()
    assert rc == 0, f"SIGTERM: switchyard exited with {rc} (-11 = SIGSEGV); log tail:\n" \
                    f"{d.log()[-1500:]}"
