"""
Which thread does a webhook's I/O (`io_on_shards`, sink ABI 2.4 pollers).

By default the shard that owns an endpoint sends its requests and reads
the answers itself; the instance's HTTP threads (named sy-http) then sleep
through the deliveries. With `io_on_shards: false` every request goes
through an HTTP thread, which wakes for each. Either way the receiver
gets the same signed requests over one kept-alive connection, and a
reload or a shutdown with a request still open at the receiver ends
cleanly: the poller is let go of on the main thread while the shard runs,
or after it stopped.
"""

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from conftest import event, wait_until, write_config
from test_webhook import S1, hooks, receiver  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver, verify_like_the_docs  # noqa: E402


def thread_stats(pid, name):
    """{tid: voluntary context switches} of the daemon's threads called name."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        out[tid] = int(line.split()[1])
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return out


@pytest.mark.parametrize("on_shards", [True, False], ids=["shard", "threads"])
def test_requests_go_out_from_the_shard_unless_told_otherwise(switchyard, receiver, on_shards):
    sink = hooks(threads=1) if on_shards else hooks(threads=1, io_on_shards=False)
    d = switchyard(sinks=sink, endpoints={
        "ep": {"sink": "hooks", "url": receiver.url("/io"), "secrets": [S1], "concurrency": 1}})
    before = thread_stats(d.pid(), "sy-http")
    assert len(before) == 1, before  # threads: 1
    n = 200
    d.push([event(f"evt-io-{i}") for i in range(n)])
    s = d.wait_for("deliveries.ok", n)
    after = thread_stats(d.pid(), "sy-http")
    woke = sum(after[t] - before[t] for t in before)

    reqs = receiver.got("/io")
    assert sorted(r.headers["svix-id"] for r in reqs) == sorted(f"evt-io-{i}" for i in range(n))
    verify_like_the_docs(S1, reqs[0].headers, reqs[0].body)
    assert len({r.client_port for r in reqs}) == 1  # one connection, kept alive
    assert s["sinks"]["hooks"]["requests"] == n
    assert s["sinks"]["hooks"]["delivered"] == n
    assert s["deliveries"]["attempts"] == n
    if on_shards:
        # Asleep throughout: its loop's safety-net timeout is 1 s.
        assert woke <= 10, woke
    else:
        # One request at a time (concurrency 1): woken for most of them (257 of 200
        # requests on a quiet machine: for a request, or for its answer).
        assert woke >= n // 2, woke
    assert d.stop() == 0


def test_reloads_and_shutdown_with_a_request_open_at_the_receiver(switchyard):
    """
    The shard's loop holds a request the receiver has not answered while two
    reloads replace the sink instance: the instances in between go at once,
    the first one (its loop on the shard) only after the answer settled its
    delivery, once. A second request is open at SIGTERM: the daemon stops
    within its drain timeout and keeps the delivery pending for the next
    start.
    """
    gate = threading.Event()
    arrived = threading.Event()

    def answer(body, headers):
        arrived.set()
        return Answer(status=200, gate=gate)

    r = Receiver(default=answer)
    try:
        ep = {"sink": "hooks", "url": r.url("/hold"), "secrets": [S1]}
        d = switchyard(sinks=hooks(threads=1, timeout="120s"), endpoints={"ep": ep},
                       core={"drain_timeout": "300ms"})
        d.push([event("evt-hold-1")])
        assert arrived.wait(10)
        for n, t in enumerate(("60s", "90s"), 1):
            write_config(d.conf_dir, sinks=hooks(threads=1, timeout=t))
            d.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: d.log().count("reload applied") == n, what=f"reload {n} applied",
                       on_timeout=lambda: d.log()[-3000:])
        gate.set()
        s = d.wait_for("deliveries.ok", 1)
        assert s["deliveries"]["attempts"] == 1
        assert [q.headers["svix-id"] for q in r.got("/hold")] == ["evt-hold-1"]

        # The newest instance's loop carries the next one; it stays open at the receiver.
        gate.clear()
        arrived.clear()
        d.push([event("evt-hold-2")])
        assert arrived.wait(10)
        assert d.stop() == 0, d.log()[-4000:]
        assert "drain timeout reached with deliveries still in flight" in d.log()
    finally:
        gate.set()
        r.close()
