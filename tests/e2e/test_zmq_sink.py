"""
The zmq sink: forwards every event as [event_type, body] to a PULL consumer
(PUSH), retries while no consumer is there and delivers once one binds,
and publishes to subscribers with the event type as the topic (PUB).
A bound sink opens its socket on the first delivery: `switchyard check`
beside the running daemon binds nothing, a reload hands the bound socket
to the new instance (its consumers are never disconnected), and a reload
to another address binds that one and frees the old.
"""

import signal
import socket
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from conftest import cli, event, free_ports, get, wait_until, write_config

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
        # The core handed them over in batches: one call, one wake-up of the sender each.
        batches = get(s, "sinks.fwd.batches")
        print(f"\nzmq: {len(sent)} events in {batches} batches")
        assert 1 <= batches <= len(sent) / 2, f"{batches} batches for {len(sent)} events"
        assert get(s, "deliveries.plugin_calls") == batches
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


RELOAD_APPLIED = 'msg="reload applied"'


def reload(d, sinks):
    """Rewrites the sinks file, sends SIGHUP and waits until the reload applied."""
    n = d.log().count(RELOAD_APPLIED)
    write_config(d.conf_dir, sinks=sinks)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count(RELOAD_APPLIED) > n or "reload refused" in d.log(),
               timeout=20, what="the reload", on_timeout=lambda: d.log()[-3000:])
    assert "reload refused" not in d.log(), d.log()[-3000:]


def pull_socket(ctx, addr, monitor=False):
    """A PULL consumer connected to addr (ZeroMQ reconnects until something binds it)."""
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    mon = pull.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED) if monitor \
        else None
    pull.connect(addr)
    return pull, mon


def connection_events(mon):
    """The consumer's monitor events so far, as names."""
    out = []
    while mon.poll(0):
        out.append(zmq.Event(recv_monitor_message(mon)["event"]).name)
    return out


def test_check_beside_the_running_daemon_binds_nothing(switchyard):
    (port,) = free_ports(1)
    addr = f"tcp://127.0.0.1:{port}"
    d = switchyard(sinks={"fwd": {"plugin": "zmq", "bind": addr, "send_timeout": "5s"}},
                   endpoints={"all": {"sink": "fwd"}})
    ctx = zmq.Context()
    pull, mon = pull_socket(ctx, addr, monitor=True)
    try:
        first = sent_events("c1", 50)
        d.push([b for _, b in first])
        assert sorted(map(tuple, recv_all(pull, 50))) == sorted((t.encode(), b) for t, b in first)

        # The daemon holds the address; check runs the plugin's init and destroy beside it.
        r = cli("check", "-c", d.conf_dir)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout.decode().endswith("\nconfiguration OK\n")
        err = r.stderr.decode()
        assert f"forwarding over push; binds {addr} on the first delivery" in err
        assert "Address already in use" not in err

        then = sent_events("c2", 50)
        d.push([b for _, b in then])
        assert sorted(map(tuple, recv_all(pull, 50))) == sorted((t.encode(), b) for t, b in then)
        s = d.wait_for("deliveries.ok", 100)
        assert get(s, "deliveries.retries") == 0
        assert connection_events(mon) == ["CONNECTED"]
    finally:
        mon.close(0)
        pull.close(0)
        ctx.term()


def test_reloads_hand_the_bound_socket_over(switchyard):
    (port,) = free_ports(1)
    addr = f"tcp://127.0.0.1:{port}"
    sink = {"plugin": "zmq", "bind": addr, "send_timeout": "5s"}
    d = switchyard(sinks={"fwd": sink},
                   endpoints={"all": {"sink": "fwd", "concurrency": 20}})
    ctx = zmq.Context()
    pull, mon = pull_socket(ctx, addr, monitor=True)
    try:
        sent = sent_events("r0", 100)
        d.push([b for _, b in sent])
        got = recv_all(pull, 100)
        # Events arrive while the configuration changes under them: reload 1 keeps the
        # sink's config, reload 2 changes a setting of it, but not the address.
        for n, new_sink in enumerate((sink, dict(sink, send_timeout="4s")), 1):
            before = sent_events(f"r{n}a", 200)
            d.push([b for _, b in before])
            reload(d, {"fwd": new_sink})
            after = sent_events(f"r{n}b", 200)
            d.push([b for _, b in after])
            sent += before + after
        got += recv_all(pull, len(sent) - len(got))
        assert sorted(map(tuple, got)) == sorted((t.encode(), b) for t, b in sent)
        s = d.wait_for("deliveries.ok", len(sent))
        assert get(s, "deliveries.retries") == 0
        assert not pull.poll(200), "more messages than events"
        # One connection all along: the socket was handed over, never closed and bound again.
        assert connection_events(mon) == ["CONNECTED"]
        log = d.log()
        assert log.count(f"through the socket already bound to {addr} (taken over)") == 2
        assert "Address already in use" not in log
    finally:
        mon.close(0)
        pull.close(0)
        ctx.term()


def test_reload_to_another_address_binds_it_and_frees_the_old(switchyard):
    p1, p2 = free_ports(2)
    a1, a2 = f"tcp://127.0.0.1:{p1}", f"tcp://127.0.0.1:{p2}"
    d = switchyard(sinks={"fwd": {"plugin": "zmq", "bind": a1, "send_timeout": "5s"}},
                   endpoints={"all": {"sink": "fwd"}})
    ctx = zmq.Context()
    pull1, _ = pull_socket(ctx, a1)
    pull2, _ = pull_socket(ctx, a2)
    try:
        first = sent_events("m1", 50)
        d.push([b for _, b in first])
        assert sorted(map(tuple, recv_all(pull1, 50))) == sorted((t.encode(), b) for t, b in first)

        reload(d, {"fwd": {"plugin": "zmq", "bind": a2, "send_timeout": "5s"}})
        then = sent_events("m2", 50)
        d.push([b for _, b in then])
        assert sorted(map(tuple, recv_all(pull2, 50))) == sorted((t.encode(), b) for t, b in then)
        assert not pull1.poll(0), "the old address still gets events"

        # The old instance goes once its deliveries are done, and the old address with it.
        # (SO_REUSEADDR, as ZeroMQ binds: the closed connections linger in TIME_WAIT.)
        def a1_free():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", p1))
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until(a1_free, timeout=20, what=f"{a1} to be closed", on_timeout=d.log)
        assert f"bound to {a2}" in d.log()
    finally:
        pull1.close(0)
        pull2.close(0)
        ctx.term()
