"""
The zmq sink: forwards every event as [event_type, body] to a PULL consumer
(PUSH), retries while no consumer is there and delivers once one binds,
and publishes to subscribers with the event type as the topic (PUB).
"""

import time

import zmq

from conftest import event, free_ports, get, wait_until

TYPES = ["job.completed", "job.failed", "scrape.page_done"]


def sent_events(prefix, n):
    return [(TYPES[i % 3], event(f"{prefix}-{i:05d}", TYPES[i % 3],
                                 data={"i": i, "note": "caf\u00e9 \U0001F680"}))
            for i in range(n)]


def recv_all(sock, n, timeout=30):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        if sock.poll(200):
            got.append(sock.recv_multipart())
    return got


def test_push_to_pull_every_event_once(switchyard):
    (port,) = free_ports(1)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(f"tcp://127.0.0.1:{port}")
    try:
        d = switchyard(sinks={"fwd": {"plugin": "zmq", "connect": f"tcp://127.0.0.1:{port}"}},
                       endpoints={"all": {"sink": "fwd", "concurrency": 100}})
        sent = sent_events("z1", 3000)
        d.push([b for _, b in sent])
        got = recv_all(pull, len(sent))
        assert sorted(map(tuple, got)) == sorted((t.encode(), b) for t, b in sent)
        s = d.wait_for("deliveries.ok", len(sent))
        assert get(s, "sinks.fwd.sent") == len(sent)
        assert get(s, "deliveries.retries") == 0
        assert not pull.poll(200), "more messages than events"
    finally:
        pull.close(0)
        ctx.term()


def test_push_without_peer_retries_then_delivers(switchyard):
    (port,) = free_ports(1)
    d = switchyard(sinks={"fwd": {"plugin": "zmq", "connect": f"tcp://127.0.0.1:{port}",
                                  "send_timeout": "50ms"}},
                   endpoints={"all": {"sink": "fwd", "concurrency": 50, "breaker": False,
                                      "retry": {"schedule": ["200ms"], "max_age": "1m"}}})
    sent = sent_events("z2", 200)
    d.push([b for _, b in sent])
    d.wait_stats(lambda s: get(s, "deliveries.retries", 0) >= 200, "retries while no peer")
    s = d.stats()
    assert get(s, "deliveries.ok") == 0
    assert get(s, "sinks.fwd.timeouts") >= 200
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(f"tcp://127.0.0.1:{port}")
    try:
        got = recv_all(pull, len(sent))
        ids = {b for _, b in got}
        assert ids == {b for _, b in sent}, f"{len(sent) - len(ids)} events never arrived"
        d.wait_for("deliveries.ok", len(sent))
        assert get(d.stats(), "deliveries.dead") == 0
    finally:
        pull.close(0)
        ctx.term()


def test_pub_topics_reach_subscribers(switchyard):
    (port,) = free_ports(1)
    d = switchyard(sinks={"fwd": {"plugin": "zmq", "socket": "pub",
                                  "bind": f"tcp://127.0.0.1:{port}"}},
                   endpoints={"all": {"sink": "fwd"}})
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"job.")
    sub.connect(f"tcp://127.0.0.1:{port}")
    try:
        # PUB drops what is sent before a subscription arrives: warm up until one lands.
        n = [0]

        def warm():
            n[0] += 1
            d.push([event(f"warm-{n[0]}", "job.warmup")])
            return sub.poll(100)
        wait_until(warm, timeout=20, what="the subscription to reach the sink")
        while sub.poll(300):
            sub.recv_multipart()
        sent = sent_events("z3", 600)
        d.push([b for _, b in sent])
        want = sorted((t.encode(), b) for t, b in sent if t.startswith("job."))
        got = recv_all(sub, len(want))
        assert sorted(map(tuple, got)) == want
        d.wait_stats(lambda s: get(s, "deliveries.ok", 0) >= len(sent) + n[0], "all sent")
    finally:
        sub.close(0)
        ctx.term()
