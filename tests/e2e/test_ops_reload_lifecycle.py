"""
Reload as one owned step (issue 12), checked where the first design broke:

  - an attempt that hangs inside a plugin across two reloads: the
    configuration in between is freed first, the attempt still settles
    once, on the endpoint of its id, and its own configuration is freed
    only after it (the first design followed `successor` into the freed
    runtime: a use-after-free that make check's ASan build reports);
  - an endpoint removed while its attempt hangs, whose breaker opens when
    the attempt fails: nothing of the removed endpoint may outlive it (a
    breaker wake-up left on the shard's timer heap was read after free);
  - an endpoint removed while an asynchronous plugin holds its attempt: the
    attempt still meets its deadline (the removal dropped it), and a
    shutdown that expires it frees the endpoint's record only after its
    sweep (it read the record after freeing it);
  - admin test events while SIGHUPs keep coming (the first design took the
    runtime's read lock twice per test event and froze when a reload
    queued in between);
  - 1,000 deliveries pending at an endpoint a reload removes: none goes
    anywhere while it is gone, and all are delivered soon after another
    reload adds it back (the first design kept them leased to the running
    process: stuck until a restart).
"""

import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from conftest import TEST_PLUGIN_DIR, cli
from test_ops_helpers import (DONE, PENDING, ack_all, event, file_sink, flaky_lines, flaky_sink,
                              http, ops_daemon, sink_events, sink_ids, spool_rows,
                              wait_until)  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver  # noqa: E402

RELEASED = 'msg="a replaced configuration was released"'
APPLIED = 'msg="reload applied"'
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MISBEHAVE = TEST_PLUGIN_DIR / "misbehave.so"


def count_logged(d, mark, text):
    return d.log()[mark:].count(text)


def wait_logged(d, mark, text, n, what):
    """Waits until text appears n times in the log after mark, then asserts exactly n."""
    wait_until(lambda: count_logged(d, mark, text) >= n or not d.alive(), timeout=30, what=what,
               on_timeout=lambda: d.log()[mark:][-4000:])
    assert d.alive(), f"switchyard exited ({d.proc.returncode})\n{d.log()[mark:][-4000:]}"
    assert count_logged(d, mark, text) == n, d.log()[mark:][-4000:]


def send(d, *ids, type_="job.completed"):
    answers = ack_all(d.ack_addr, [(i, event(i, type_)) for i in ids])
    assert answers == {i: f"ok {i}" for i in ids}


def leased(d, endpoint):
    """Pending deliveries of endpoint that a running process holds (lease != 0)."""
    db = sqlite3.connect(f"file:{d.spool_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM deliveries WHERE endpoint = ? AND state = 0 "
                          "AND lease != 0", (endpoint,)).fetchone()[0]
    finally:
        db.close()


def inflight(d):
    return d.metrics().get("switchyard_queue_depth", state="inflight")


def wait_alive(d, cond, what):
    """wait_until, failing at once with the log when the daemon exits meanwhile."""
    def check():
        if not d.alive():
            pytest.fail(f"switchyard exited ({d.proc.returncode}) while waiting for {what}\n"
                        f"{d.run_log()[-6000:]}", pytrace=False)
        return cond()
    wait_until(check, what=what, on_timeout=lambda: d.run_log()[-4000:])


def lease_rows(d, endpoint):
    """[(event_id, state, attempt, leased)] of endpoint's deliveries."""
    db = sqlite3.connect(f"file:{d.spool_path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT e.event_id, d.state, d.attempt, d.lease != 0 FROM deliveries d "
                          "JOIN events e ON e.id = d.event_rowid WHERE d.endpoint = ? "
                          "ORDER BY d.id", (endpoint,)).fetchall()
    finally:
        db.close()


class Hang:
    """
    An attempt that stays inside its plugin until release(): a blocking
    plugin (the flaky sink waiting for its hold file) or an asynchronous one
    (the webhook sink, whose receiver does not answer).
    """

    def __init__(self, style, tmp_path):
        self.style = style
        self.arrived = threading.Event()
        if style == "blocking":
            self.hold = tmp_path / "hold"
            self.log = tmp_path / "flaky.log"
            self.sinks = {"s": flaky_sink(self.log, hold=str(self.hold))}
            self.endpoint = {"sink": "s", "enabled_events": ["job.*"]}
            self.receiver = None
        else:
            self.receiver = Receiver(default=self._answer)
            self.sinks = {"s": {"plugin": "webhook", "allow_private_networks": True,
                                "timeout": "120s"}}
            self.endpoint = {"sink": "s", "enabled_events": ["job.*"],
                             "url": self.receiver.url("/hook"), "secrets": [SECRET]}

    def _answer(self, body, headers):
        self.arrived.set()
        return Answer(status=200, delay=120.0)  # until release(): receiver.hold

    def wait_inside(self, d):
        if self.receiver:
            wait_until(self.arrived.is_set, what="the request at the receiver")
        wait_until(lambda: inflight(d) == 1, what="one attempt inside the plugin")

    def release(self):
        if self.receiver:
            self.receiver.hold.set()  # every waiting answer goes out now, later ones at once
        else:
            self.hold.write_text("")

    def calls(self, event_id):
        """How many times the plugin was called with the event."""
        if self.receiver:
            return sum(1 for r in self.receiver.got("/hook") if r.headers["svix-id"] == event_id)
        return sum(1 for c in flaky_lines(self.log) if c["event_id"] == event_id)

    def close(self):
        if self.receiver:
            self.receiver.close()


@pytest.fixture(params=["blocking", "async"])
def hang(request, tmp_path):
    h = Hang(request.param, tmp_path)
    yield h
    h.release()
    h.close()


def test_two_reloads_while_an_attempt_hangs_settle_it_once(ops_daemon, tmp_path, hang):
    d = ops_daemon(sinks={**hang.sinks, "files": file_sink(tmp_path / "x.jsonl")},
                   endpoints={"ep": hang.endpoint}, args=("--log-level", "debug"))
    send(d, "h-1")
    hang.wait_inside(d)

    # Two reloads. The runtime between them (R1) has nothing in flight, so it
    # is released (and freed) at once, while the boot runtime (R0) stays:
    # the hanging attempt still holds it.
    mark = d.reload({"40-x.json": {"endpoints": {"x1": {"sink": "files"}}}})
    wait_logged(d, mark, APPLIED, 1, "the first reload applied")
    d.reload({"40-x.json": {"endpoints": {"x2": {"sink": "files"}}}})
    wait_logged(d, mark, APPLIED, 2, "the second reload applied")
    wait_logged(d, mark, RELEASED, 1, "the configuration between the reloads released")
    assert inflight(d) == 1
    assert sorted(d.api_endpoints()) == ["ep", "x2"]

    # The attempt comes back now: settled once, on the endpoint of its id,
    # and only then is its own runtime released.
    hang.release()
    wait_until(lambda: [(r["event_id"], r["state"]) for r in spool_rows(d.spool_path, "ep")]
               == [("h-1", DONE)], what="h-1 done",
               on_timeout=lambda: str(spool_rows(d.spool_path)) + d.run_log()[-3000:])
    wait_logged(d, mark, RELEASED, 2, "the boot configuration released after its attempt")
    rows = spool_rows(d.spool_path, "ep")
    assert rows[0]["attempt"] == 1
    assert hang.calls("h-1") == 1
    e = d.wait_endpoint("ep", lambda e: e["ok"] == 1, "ep: h-1 counted")
    assert {k: e[k] for k in ("routed", "attempts", "ok", "dead", "pending")} == \
        {"routed": 1, "attempts": 1, "ok": 1, "dead": 0, "pending": 0}
    assert d.stat("deliveries.completions_ignored") == 0

    # The endpoint keeps working on the newest configuration.
    send(d, "h-2")
    wait_until(lambda: [(r["event_id"], r["state"]) for r in spool_rows(d.spool_path, "ep")]
               == [("h-1", DONE), ("h-2", DONE)], what="h-2 done")
    assert hang.calls("h-2") == 1
    assert d.terminate() == 0


def test_an_endpoint_removed_while_its_attempt_hangs_leaves_nothing_behind(ops_daemon, tmp_path):
    """
    The attempt of a removed endpoint fails when it comes back and opens
    the endpoint's breaker, which arms a wake-up for the probe. The record
    of the endpoint goes with its last attempt; its wake-up must go too.
    """
    hold, log = tmp_path / "hold", tmp_path / "flaky.log"
    d = ops_daemon(
        sinks={"s": flaky_sink(log, hold=str(hold), fail_times=1000000),
               "files": file_sink(tmp_path / "keep.jsonl")},
        endpoints={"ep": {"sink": "s", "retry": {"schedule": ["50ms"], "max_age": "1h"},
                          "breaker": {"failures": 1, "probe": "50ms", "probe_max": "50ms"}},
                   "keep": {"sink": "files"}})
    send(d, "g-1")
    wait_until(lambda: inflight(d) == 1, what="g-1 inside the plugin")
    mark = d.reload({"30-endpoints.json": {"endpoints": {"keep": {"sink": "files"}}}})
    wait_logged(d, mark, APPLIED, 1, "ep removed")
    hold.write_text("")
    wait_until(lambda: inflight(d) == 0, what="g-1 back from the plugin")
    # The failed attempt went back to the spool for the endpoint's next owner...
    wait_until(lambda: [(r["event_id"], r["state"], r["attempt"])
                        for r in spool_rows(d.spool_path, "ep")] == [("g-1", PENDING, 1)],
               what="g-1 pending after its attempt",
               on_timeout=lambda: str(spool_rows(d.spool_path, "ep")))
    assert [(c["event_id"], c["attempt"]) for c in flaky_lines(log)] == [("g-1", 1)]
    assert 'msg="breaker open: holding deliveries, probing with one" endpoint=ep' in \
        d.log()[mark:]
    # ...and the shards run on well past the probe time (50 ms).
    for i in range(5):
        send(d, f"k-{i}")
        wait_alive(d, lambda: f"k-{i}" in sink_ids(tmp_path / "keep.jsonl"), f"k-{i} delivered")
    assert d.terminate() == 0


def removed_while_inside(ops_daemon, tmp_path, event_id, timeout, core):
    """
    A daemon whose endpoint mb (a plugin that never completes, stating
    `timeout` for its attempts) holds event_id inside the plugin when a
    reload removes it. Returns the daemon and the log offset of the reload.
    """
    d = ops_daemon(sinks={"mb": {"plugin": str(MISBEHAVE), "mode": "never", "timeout": timeout},
                          "files": file_sink(tmp_path / "keep.jsonl")},
                   endpoints={"mb": {"sink": "mb"}, "keep": {"sink": "files"}}, core=core)
    send(d, event_id)
    wait_alive(d, lambda: inflight(d) == 1, f"{event_id} inside the plugin")
    mark = d.reload({"30-endpoints.json": {"endpoints": {"keep": {"sink": "files"}}}})
    wait_logged(d, mark, APPLIED, 1, "mb removed")
    return d, mark


def test_a_removed_endpoints_attempt_still_meets_its_deadline(ops_daemon, tmp_path):
    d, mark = removed_while_inside(ops_daemon, tmp_path, "m-1", "300ms",
                                   {"complete_grace": "100ms"})
    # At its deadline the attempt leaves the plugin's count; the delivery
    # goes back to the spool, held by nobody, for the endpoint's next owner.
    wait_alive(d, lambda: inflight(d) == 0, "m-1 past its deadline")
    assert d.metrics().get("switchyard_queue_depth", state="expired") == 1
    assert ('msg="plugin did not complete an attempt before its deadline; retrying" '
            'endpoint=mb event_id=m-1 plugin=misbehave') in d.log()[mark:]
    wait_alive(d, lambda: lease_rows(d, "mb") == [("m-1", PENDING, 1, 0)], "m-1 released")
    # destroy() completes what it held: late, ignored.
    assert d.terminate() == 0
    assert lease_rows(d, "mb") == [("m-1", PENDING, 1, 0)]


def test_shutdown_with_a_removed_endpoints_attempt_inside_a_plugin(ops_daemon, tmp_path):
    d, mark = removed_while_inside(ops_daemon, tmp_path, "q-1", "1h", {"drain_timeout": "300ms"})
    assert inflight(d) == 1
    # SIGTERM: past the drain the attempt expires, its endpoint's record goes.
    assert d.terminate() == 0, d.run_log()[-6000:]
    assert "drain timeout reached with deliveries still in flight" in d.log()[mark:]
    assert lease_rows(d, "mb") == [("q-1", PENDING, 1, 0)]


def test_admin_test_events_during_a_reload_storm(ops_daemon, tmp_path):
    """
    Test events from a few clients at once keep the admin thread busy while
    200 reloads apply one after the other; neither waits for the other.
    """
    out = tmp_path / "ep.jsonl"
    d = ops_daemon(sinks={"files": file_sink(out), "other": file_sink(tmp_path / "o.jsonl")},
                   endpoints={"ep": {"sink": "files", "enabled_events": ["webhook.test"]}})
    accepted, problems = [], []
    stop = threading.Event()

    def tester():
        while not stop.is_set():
            try:
                r = d.api("POST", "/api/v1/endpoints/ep/test")
            except OSError as e:  # a timeout: the admin API froze
                problems.append(f"test event: {e!r}")
                return
            if r.status != 202:
                problems.append(f"test event answered {r}")
                return
            accepted.append(r.json()["event_id"])

    testers = [threading.Thread(target=tester, daemon=True) for _ in range(4)]
    for t in testers:
        t.start()
    mark = len(d.log())
    try:
        for i in range(200):
            # Each configuration a little different; each reload applies before the next
            # SIGHUP (signals would merge), and a frozen main thread applies none.
            d.reload({"40-x.json": {"endpoints": {f"x{i % 3}": {"sink": "other"}}}})
            wait_until(lambda: count_logged(d, mark, APPLIED) == i + 1 or problems, timeout=30,
                       what=f"reload {i + 1} applied", on_timeout=lambda: d.log()[mark:][-3000:])
            assert problems == []
            if i % 20 == 0:
                assert http(d.base, "GET", "/healthz", timeout=10).status == 200
                assert d.metrics().get("switchyard_events_received_total") is not None
    finally:
        stop.set()
        for t in testers:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in testers), "a test-event client is stuck"
    assert problems == []
    assert sorted(d.api_endpoints()) == ["ep", "x1"]
    assert len(accepted) >= 200, f"only {len(accepted)} test events during 200 reloads"
    # Every accepted test event reaches the endpoint, once.
    wait_until(lambda: len(sink_ids(out)) >= len(accepted), what="every test event delivered",
               on_timeout=lambda: f"{len(set(accepted) - set(sink_ids(out)))} missing")
    assert sorted(sink_ids(out)) == sorted(accepted)
    assert {e["event_type"] for e in sink_events(out)} == {"webhook.test"}
    assert d.terminate() == 0


def test_removed_endpoint_keeps_its_deliveries_until_it_is_added_back(ops_daemon, tmp_path):
    n = 1000
    log, plog, out = tmp_path / "failing.log", tmp_path / "probe.log", tmp_path / "ep.jsonl"
    failing = {"sink": "failing", "enabled_events": ["job.*"],
               "retry": {"schedule": ["1s"], "max_age": "1h"},
               "breaker": {"failures": 3, "probe": "1s", "probe_max": "1s"}}
    probe = {"sink": "probe", "enabled_events": ["probe.*"]}
    d = ops_daemon(sinks={"failing": flaky_sink(log, fail_times=1000000),
                          "probe": flaky_sink(plog, fail_times=1000000, fail_mode="fail"),
                          "files": file_sink(out)},
                   endpoints={"ep": failing, "probe": probe})
    ids = [f"p-{i:04d}" for i in range(n)]
    answers = ack_all(d.ack_addr, [(i, event(i)) for i in ids], timeout=120)
    assert answers == {i: f"ok {i}" for i in ids}
    d.wait_endpoint("ep", lambda e: e["state"] == "breaker_open" and e["pending"] == n,
                    "ep failing with its breaker open, every delivery pending")
    # The probe endpoint's one delivery dies at once (fail_mode fail).
    send(d, "probe-1", type_="probe.x")
    d.wait_endpoint("probe", lambda e: e["dead"] == 1, "probe-1 dead")

    # Removed: its deliveries leave memory and this process's hold.
    mark = d.reload({"30-endpoints.json": {"endpoints": {"probe": probe}}})
    wait_logged(d, mark, APPLIED, 1, "ep removed")
    wait_until(lambda: inflight(d) == 0, what="nothing inside a plugin")
    wait_until(lambda: leased(d, "ep") == 0, what="ep's deliveries released",
               on_timeout=lambda: f"{leased(d, 'ep')} still leased")
    calls = len(flaky_lines(log))
    before = [(r["event_id"], r["state"], r["attempt"]) for r in spool_rows(d.spool_path, "ep")]
    assert len(before) == n and {s for _, s, _ in before} == {PENDING}
    # Proof that the pager looked again after that: a replayed dead delivery
    # (unleased and due, like ep's) is paged in and attempted (afresh: it
    # fails again, which is all this needs).
    r = cli("replay", "-c", d.conf_dir, "--endpoint", "probe")
    assert (r.returncode, r.stdout) == (0, b"1 dead delivery put back to pending\n"), r
    wait_until(lambda: [(c["event_id"], c["attempt"]) for c in flaky_lines(plog)]
               == [("probe-1", 1), ("probe-1", 1)], what="probe-1 replayed and attempted")
    assert len(flaky_lines(log)) == calls
    assert [(r["event_id"], r["state"], r["attempt"])
            for r in spool_rows(d.spool_path, "ep")] == before
    assert not out.exists()

    # Added back with a working sink: every one of them is delivered, once.
    mark = d.reload({"30-endpoints.json": {"endpoints": {
        "probe": probe, "ep": {"sink": "files", "enabled_events": ["job.*"]}}}})
    wait_logged(d, mark, APPLIED, 1, "ep added back")
    wait_until(lambda: len(sink_ids(out)) >= n, timeout=30, what="all 1000 delivered",
               on_timeout=lambda: f"{len(sink_ids(out))} delivered; "
                                  f"{leased(d, 'ep')} leased")
    assert sorted(sink_ids(out)) == ids
    wait_until(lambda: {r["state"] for r in spool_rows(d.spool_path, "ep")} == {DONE},
               what="every row of ep done")
    assert len(flaky_lines(log)) == calls
    assert d.terminate() == 0
