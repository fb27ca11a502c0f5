"""
Ordered delivery ("ordering": "key" / "endpoint", docs/CONFIG.md): per
key, the receiver's first successful copies arrive in the order the
events were published, and never two of one key in flight at once; a
failing head holds only its key; a dead head lets its key move on and
says so in its webhook.delivery_failed event; the order survives a
receiver restart, a daemon restart (deliveries loaded back from the
spool, retries due later than younger ones) and a reload.
"""

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import BIN, PLUGIN_DIR, SANITIZED, event, get, read_lines, wait_until, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from pg_helpers import fresh_db, shared_server  # noqa: E402
from webhook_receiver import Answer, Receiver  # noqa: E402

FAST_RETRY = {"base": "20ms", "factor": 1, "cap": "20ms", "jitter": 0, "max_attempts": 1000}


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def hooks():
    return {"hooks": {"plugin": "webhook", "allow_private_networks": True}}


class Flaky:
    """
    Answers 503 to a share of requests, picked by a seeded generator, and
    watches that no two requests of one key are inside the receiver at
    once: a key still marked busy when the next of it arrives had not been
    answered yet, so the daemon had both in flight.
    """

    def __init__(self, share, seed=16):
        self.share = share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.busy = set()
        self.overlaps = []

    def __call__(self, body, headers):
        key = json.loads(body)["data"]["key"]
        with self.lock:
            if key in self.busy:
                self.overlaps.append(key)
            self.busy.add(key)
            fail = self.rng.random() < self.share
        time.sleep(0.001)  # widens the window in which an overlap would show
        with self.lock:
            self.busy.discard(key)
        return Answer(status=503 if fail else 200)


def reload(d, endpoints):
    """Rewrites the endpoints file, sends SIGHUP and waits until the reload applied."""
    (d.conf_dir / "30-endpoints.json").write_text(json.dumps({"endpoints": endpoints}))
    n = d.log().count("reload applied")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count("reload applied") > n, what="reload applied",
               on_timeout=lambda: d.log()[-3000:])


def body_of(req):
    return json.loads(req.body)


def check_order(requests, n_per_key):
    """Per key: the first successful copies in publish order, every event once."""
    first = defaultdict(list)
    seen = set()
    for r in sorted(requests, key=lambda r: r.t_arrive):
        b = body_of(r)
        if r.status == 200 and b["event_id"] not in seen:
            seen.add(b["event_id"])
            first[b["data"]["key"]].append(b["data"]["n"])
    assert set(first) == set(n_per_key)
    for key, ns in first.items():
        assert ns == sorted(ns), f"key {key}: first successes out of order: {ns}"
        assert len(ns) == n_per_key[key], (key, len(ns))
    return seen


@pytest.mark.skipif(SANITIZED, reason="10,000 events at a sanitizer's speed take minutes; the "
                    "smaller ordering tests below cover the same paths under make check")
def test_ten_thousand_events_over_a_hundred_keys_stay_in_order(switchyard, tmp_path):
    flaky = Flaky(0.2)
    r1 = Receiver(default=flaky)
    port = r1.port
    d = switchyard(sinks=hooks(), core={"spool": str(tmp_path / "spool.db")},
                   endpoints={"jobs": {"sink": "hooks", "secrets": [SECRET], "url": r1.url("/jobs"),
                                       "ordering": "key", "ordering_key": "data.key",
                                       "concurrency": 32, "retry": FAST_RETRY,
                                       "breaker": False}})
    total, keys = 10000, 100
    evs = [event(f"o-{n}", data={"key": f"k{n % keys}", "n": n}) for n in range(total)]
    d.push(evs)
    # The receiver restarts once, in the middle of the stream.
    wait_until(lambda: len(r1.got()) >= total // 3, what="a third of the requests")
    r1.kill()
    # Its own overlap watch: r1's handler threads may still be finishing
    # requests whose connections were cut, attempts the daemon already retries.
    flaky2 = Flaky(0.2, seed=17)
    r2 = Receiver(default=flaky2, port=port)
    try:
        s = d.wait_for("endpoints.jobs.ok", total, timeout=120)
        assert get(s, "endpoints.jobs.dead") == 0
        seen = check_order(r1.got() + r2.got(), {f"k{k}": total // keys for k in range(keys)})
        assert len(seen) == total
        assert len(r2.got()) > 0
        assert flaky.overlaps == [] and flaky2.overlaps == []
        # Failures happened, and were retried: the order held across them.
        assert get(s, "endpoints.jobs.retries") > 0
    finally:
        r2.close()


def test_a_failing_head_holds_only_its_own_key(switchyard, tmp_path):
    r = Receiver()
    # k0's first event fails until the test lets it through; k1 flows meanwhile.
    gate = threading.Event()

    def answer(body, headers):
        b = json.loads(body)
        if b["data"]["key"] == "k0" and b["data"]["n"] == 0 and not gate.is_set():
            return Answer(status=503)
        return Answer(status=200)

    r.default = answer
    try:
        d = switchyard(sinks=hooks(), endpoints={
            "jobs": {"sink": "hooks", "secrets": [SECRET], "url": r.url("/jobs"), "ordering": "key",
                     "ordering_key": "data.key", "retry": FAST_RETRY, "breaker": False}})
        d.push([event(f"h-{n}", data={"key": f"k{n % 2}", "n": n}) for n in range(10)])
        # k1's five arrive while k0's head keeps failing: k0's others wait.
        wait_until(lambda: sorted(body_of(q)["data"]["n"] for q in r.got()
                                  if q.status == 200) == [1, 3, 5, 7, 9],
                   what="k1 delivered")
        wait_until(lambda: sum(1 for q in r.got() if q.status == 503) >= 3,
                   what="k0's head retried")
        assert all(body_of(q)["data"]["n"] == 0 for q in r.got() if body_of(q)["data"]["key"] == "k0")
        # The stats file is written every 100ms: wait for a snapshot taken since.
        d.wait_stats(lambda s: get(s, "deliveries.waiting") == 4
                     and get(s, "endpoints.jobs.ok") == 5, "k0's four waiting, k1's five ok")
        gate.set()
        d.wait_for("endpoints.jobs.ok", 10)
        check_order(r.got(), {"k0": 5, "k1": 5})
    finally:
        r.close()


def test_a_dead_head_lets_its_key_move_on_and_says_so(switchyard, tmp_path):
    r = Receiver()
    r.default = lambda body, headers: Answer(
        status=410 if json.loads(body)["data"]["n"] == 0 else 200)
    failed = tmp_path / "failed.jsonl"
    try:
        d = switchyard(
            sinks={**hooks(), "files": {"plugin": "file", "path": str(failed), "fsync": "never"}},
            endpoints={"jobs": {"sink": "hooks", "secrets": [SECRET], "url": r.url("/jobs"), "ordering": "key",
                                "ordering_key": "data.key", "enabled_events": ["job.completed"]},
                       "failures": {"sink": "files",
                                    "enabled_events": ["webhook.delivery_failed"]}})
        d.push([event(f"d-{n}", data={"key": "k", "n": n}) for n in range(3)])
        d.wait_for("endpoints.jobs.ok", 2)
        # In arrival order: the receiver records a request after writing its answer, so the
        # next one (sent once that answer arrived) can be recorded first.
        assert [(body_of(q)["data"]["n"], q.status)
                for q in sorted(r.got(), key=lambda q: q.seq_arrive)] == \
            [(0, 410), (1, 200), (2, 200)]
        wait_until(lambda: failed.exists() and read_lines(failed), what="delivery_failed")
        (line,) = read_lines(failed)
        data = json.loads(line)["data"]
        assert {k: data[k] for k in ("endpoint_id", "event_id", "last_status",
                                     "ordering_moved_past", "ordering_key")} == \
            {"endpoint_id": "jobs", "event_id": "d-0", "last_status": 410,
             "ordering_moved_past": True, "ordering_key": "k"}
    finally:
        r.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_order_survives_a_daemon_restart_with_retries_due_later(switchyard, tmp_path, request,
                                                                 backend):
    """
    Every fifth event fails its first attempt and is retried a few seconds
    later; the daemon stops while those retries wait and younger events of
    their keys are pending and due now. After the restart the spool hands
    the younger ones out first (they are due first); ordering must still
    wait for the older heads. On both stores: the restarted shard's
    catch-up (store_catchup) loads every pending row of the endpoint.
    """
    tries = defaultdict(int)
    lock = threading.Lock()

    def answer(body, headers):
        b = json.loads(body)
        with lock:
            tries[b["event_id"]] += 1
            first = tries[b["event_id"]] == 1
        return Answer(status=503 if first and b["data"]["n"] % 5 == 0 else 200)

    if backend == "postgres":
        core = {"spool": None, "store": {"type": "postgres",
                                         "conninfo": fresh_db(shared_server(request))[1]}}
    else:
        core = {"spool": str(tmp_path / "spool.db")}
    r = Receiver(default=answer)
    eps = {"jobs": {"sink": "hooks", "secrets": [SECRET], "url": r.url("/jobs"), "ordering": "key",
                    "ordering_key": "data.key", "breaker": False,
                    "retry": {"schedule": ["3s"], "max_attempts": 100}}}
    try:
        d = switchyard(sinks=hooks(), core=core, endpoints=eps)
        d.push([event(f"r-{n}", data={"key": f"k{n % 4}", "n": n}) for n in range(40)])
        # Events with n % 5 == 0 fail their first attempt: wait until two heads wait.
        wait_until(lambda: sum(1 for q in r.got() if q.status == 503) >= 2,
                   what="heads waiting for their retry")
        assert d.stop() == 0
        before = len(r.got())
        d.returncode = None
        d.start()
        wait_until(lambda: len({body_of(q)["event_id"] for q in r.got() if q.status == 200}) == 40,
                   what="every event delivered")
        assert len(r.got()) > before  # the restarted daemon delivered the rest
        assert "ordered endpoint: pending deliveries loaded" in d.log()
        check_order(r.got(), {f"k{k}": 10 for k in range(4)})
    finally:
        r.close()


def test_ordering_by_endpoint_sends_one_at_a_time_in_order(switchyard, tmp_path):
    flaky = Flaky(0.3, seed=7)
    r = Receiver(default=flaky)
    try:
        d = switchyard(sinks=hooks(), endpoints={
            "all": {"sink": "hooks", "secrets": [SECRET], "url": r.url("/all"), "ordering": "endpoint",
                    "concurrency": 8, "retry": FAST_RETRY, "breaker": False}})
        d.push([event(f"a-{n}", data={"key": "all", "n": n}) for n in range(200)])
        d.wait_for("endpoints.all.ok", 200)
        check_order(r.got(), {"all": 200})
        assert flaky.overlaps == []
    finally:
        r.close()


def test_ordering_key_requires_ordering_by_key(tmp_path):
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}]},
                 hooks(),
                 {"a": {"sink": "hooks", "secrets": [SECRET], "url": "http://127.0.0.1:1/", "ordering": "key"},
                  "b": {"sink": "hooks", "secrets": [SECRET], "url": "http://127.0.0.1:1/",
                        "ordering_key": "data.x"},
                  "c": {"sink": "hooks", "secrets": [SECRET], "url": "http://127.0.0.1:1/", "ordering": "time"}})
    r = subprocess.run([str(BIN), "check", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode == 2
    f = conf / "30-endpoints.json"
    assert r.stderr.splitlines()[:3] == [
        f'{f}: endpoints.a.ordering_key: required with "ordering": "key" (a field path like '
        f'data.job_id)',
        f'{f}: endpoints.b.ordering_key: only used with "ordering": "key"',
        f'{f}: endpoints.c.ordering: "time" is not one of "endpoint", "key"']


def test_order_holds_across_reloads(switchyard, tmp_path):
    """
    Reloads while an ordered endpoint works through a backlog with a flaky
    receiver: one that changes nothing about ordering, one that adds an
    unrelated endpoint. The shard keeps the endpoint's keys across both.
    """
    flaky = Flaky(0.2, seed=3)
    r = Receiver(default=flaky)
    ep = {"sink": "hooks", "secrets": [SECRET], "url": r.url("/jobs"), "ordering": "key",
          "ordering_key": "data.key", "concurrency": 8, "retry": FAST_RETRY, "breaker": False}
    try:
        d = switchyard(sinks=hooks(), core={"spool": str(tmp_path / "spool.db")},
                       endpoints={"jobs": ep})
        d.push([event(f"l-{n}", data={"key": f"k{n % 10}", "n": n}) for n in range(1000)])

        wait_until(lambda: len(r.got()) >= 200, what="200 requests")
        reload(d, {"jobs": {**ep, "description": "same ordering"}})
        wait_until(lambda: len(r.got()) >= 400, what="400 requests")
        reload(d, {"jobs": {**ep, "description": "same ordering"},
                   "other": {"sink": "hooks", "secrets": [SECRET], "url": r.url("/other"),
                             "enabled_events": ["nothing.here"]}})
        d.wait_for("endpoints.jobs.ok", 1000)
        check_order(r.got(), {f"k{k}": 100 for k in range(10)})
        assert flaky.overlaps == []
    finally:
        r.close()


def test_retries_due_later_keep_their_time_when_a_reload_changes_ordering(switchyard, tmp_path):
    """
    Five retries wait on disk (due in a minute) when a reload orders the
    endpoint: the spool hands all five back, the oldest goes out to wait
    for its time, the others wait behind it. A reload that stops ordering
    again must schedule the four for their due time, not send them now.
    """
    r = Receiver(default=lambda body, headers: Answer(status=503))
    ep = {"sink": "hooks", "secrets": [SECRET], "url": r.url("/jobs"), "breaker": False,
          "retry": {"schedule": ["1m"], "max_attempts": 100}}
    try:
        d = switchyard(sinks=hooks(), endpoints={"jobs": ep},
                       core={"spool": str(tmp_path / "spool.db"), "spill_after": "1s"})
        d.push([event(f"t-{n}", data={"key": "k", "n": n}) for n in range(5)])
        d.wait_stats(lambda s: get(s, "endpoints.jobs.retries") == 5
                     and get(s, "deliveries.scheduled") == 0, "five retries spilled")
        reload(d, {"jobs": {**ep, "ordering": "endpoint"}})
        wait_until(lambda: "ordered endpoint: pending deliveries loaded" in d.log(),
                   what="the spool's pending rows loaded")
        d.wait_stats(lambda s: get(s, "deliveries.waiting") == 4
                     and get(s, "deliveries.scheduled") == 1, "one out, four waiting")
        reload(d, {"jobs": ep})
        s = d.wait_stats(lambda s: get(s, "deliveries.waiting") == 0
                         and get(s, "deliveries.scheduled") == 5, "five scheduled")
        assert get(s, "deliveries.ready") == 0
        assert get(s, "deliveries.inflight") == 0
        assert sorted(body_of(q)["event_id"] for q in r.got()) == [f"t-{n}" for n in range(5)]
    finally:
        r.close()
