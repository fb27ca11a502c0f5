"""
`switchyard publish` ends within its deadline and tells what happened: it
neither hangs (--ack pointed at a pull port) nor says "published" when
nothing took the event (plain publish with nothing listening).

Every run has a subprocess timeout far beyond the deadline it was given,
so a hang fails the test instead of stalling the suite.
"""

import contextlib
import subprocess

import zmq

from conftest import BIN, event, free_ports
from durability_helpers import file_sink, sink_ids, spool_daemon  # noqa: F401 (fixture)

HANG = 60  # seconds: only a hang gets near this


def publish(*args):
    return subprocess.run([str(BIN), "publish", *map(str, args)], capture_output=True,
                          timeout=HANG)


def nowhere():
    """A loopback address nothing listens on."""
    return f"tcp://127.0.0.1:{free_ports(1)[0]}"


def marker_delivered(d, out, eid="evt-marker"):
    """
    Pushes one good event through the daemon's pull socket and waits for it:
    proof that the daemon was running and reading while the publish before
    it had its chance to deliver something.
    """
    d.push([event(eid)])
    d.wait_for("deliveries.ok", 1)
    return sink_ids(out)


def daemon_with_file(spool_daemon, tmp_path):
    out = tmp_path / "received.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out)},
                     endpoints={"all": {"sink": "files", "enabled_events": ["*"]}})
    return d, out


def test_ack_to_a_pull_port_ends_and_says_nothing_was_sent(spool_daemon, tmp_path):
    d, out = daemon_with_file(spool_daemon, tmp_path)
    f = tmp_path / "in.jsonl"
    f.write_bytes(event("evt-k1") + b"\n")
    r = publish("--ack", "--connect", d.pull_addr, "--file", f, "--timeout", 500,
                "--retries", 1)
    assert r.returncode == 1, r.stderr
    assert r.stdout == b""
    assert r.stderr.decode() == (
        f"switchyard publish: 1 event not sent: no ack ingress took the connection to "
        f"{d.pull_addr} within 1000 ms (is the daemon running, and is that its ack socket?)\n")
    assert marker_delivered(d, out) == ["evt-marker"]
    assert d.stat("events.received") == 1


def test_ack_nobody_listening_sends_nothing(tmp_path):
    addr = nowhere()
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"".join(event(f"evt-n{i}") + b"\n" for i in range(1, 2001)))
    # 2,000 events, a window of 1,000: the second half ends at once after the
    # first half found no peer for its whole deadline.
    r = publish("--ack", "--connect", addr, "--file", f, "--timeout", 200, "--retries", 2)
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode() == (
        f"switchyard publish: 2000 events not sent: no ack ingress took the connection to "
        f"{addr} within 600 ms (is the daemon running, and is that its ack socket?)\n")


def test_ack_waits_for_a_daemon_that_starts_late(spool_daemon, tmp_path):
    out = tmp_path / "received.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out)},
                     endpoints={"all": {"sink": "files", "enabled_events": ["*"]}}, start=False)
    f = tmp_path / "in.jsonl"
    f.write_bytes(event("evt-l1") + b"\n" + event("evt-l2") + b"\n")
    p = subprocess.Popen([str(BIN), "publish", "--ack", "--connect", d.ack_addr, "--file",
                          str(f), "--timeout", "2000", "--retries", "20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        d.start()
        _, err = p.communicate(timeout=HANG)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    assert err.decode() == (f"published 2 events to {d.ack_addr}: 2 stored, 0 duplicates, "
                            f"0 refused, 0 unanswered\n")
    d.wait_for("deliveries.ok", 2)
    assert sorted(sink_ids(out)) == ["evt-l1", "evt-l2"]


def test_plain_publish_nobody_listening_fails(tmp_path):
    addr = nowhere()
    r = publish("--connect", addr, "--type", "job.completed", "--timeout", 300)
    assert r.returncode == 1, r.stderr
    assert r.stdout == b""  # no event id: nothing was sent
    assert r.stderr.decode() == (
        f"switchyard publish: nothing took the connection to {addr} within 300 ms (is the "
        f"daemon running, with a pull ingress there?); nothing was sent\n")

    f = tmp_path / "in.jsonl"
    f.write_bytes(event("evt-f1") + b"\n")
    r = publish("--connect", addr, "--file", f, "--timeout", 300)
    assert r.returncode == 1, r.stderr
    assert "nothing was sent\n" in r.stderr.decode() and "published" not in r.stderr.decode()


def test_plain_publish_to_an_ack_port_fails(spool_daemon, tmp_path):
    """A PUSH cannot talk to the ack ROUTER: the handshake fails, nothing is sent."""
    d, out = daemon_with_file(spool_daemon, tmp_path)
    r = publish("--connect", d.ack_addr, "--type", "job.completed", "--timeout", 300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode() == (
        f"switchyard publish: nothing took the connection to {d.ack_addr} within 300 ms (is "
        f"the daemon running, with a pull ingress there?); nothing was sent\n")
    assert marker_delivered(d, out) == ["evt-marker"]
    assert d.stat("events.received") == 1


def test_plain_publish_bound_with_no_peer_fails():
    addr = nowhere()
    r = publish("--bind", addr, "--type", "job.completed", "--timeout", 300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode() == (f"switchyard publish: no peer connected to {addr} within "
                                 f"300 ms; nothing was sent\n")


def test_pub_without_subscriber_fails():
    addr = nowhere()
    r = publish("--socket", "pub", "--connect", addr, "--type", "job.completed",
                "--timeout", 300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode() == (
        f"switchyard publish: no subscriber at {addr} within 300 ms (is the daemon running, "
        f"with a sub ingress there?); nothing was sent\n")


def test_pub_reaches_the_sub_ingress(switchyard):
    d = switchyard()
    r = publish("--socket", "pub", "--connect", d.sub_addr, "--type", "job.completed",
                "--org", "acme", "--id", "evt-pub1", "--settle", 0)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"evt-pub1\n"
    assert r.stderr.decode() == f"published 1 event to {d.sub_addr}\n"
    d.wait_for("deliveries.ok", 1)


@contextlib.contextmanager
def stalled_peer():
    """The address of a PULL socket that connects peers but never reads."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 1)
    pull.setsockopt(zmq.LINGER, 0)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        pull.close()
        ctx.term()


def test_plain_publish_says_when_queued_events_did_not_leave(tmp_path):
    """
    A peer that connects but never reads: publish queues what the socket
    buffers cannot hold, and at the end waits --timeout for it to leave.
    It did not, so publish says so and exits 1 instead of "published".
    """
    n = 400  # 400 x 100 KB: far more than the loopback socket buffers hold
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"".join(event(f"evt-q{i}", data={"pad": "x" * 100_000}) + b"\n"
                           for i in range(n)))
    with stalled_peer() as addr:
        r = publish("--connect", addr, "--file", f, "--timeout", 300)
    assert r.returncode == 1, r.stderr
    assert r.stderr.decode() == (
        f"switchyard publish: {addr} did not take the queued events within 300 ms; some of "
        f"the {n} may not have left (use --ack to know what was stored)\n")


def test_plain_publish_stops_when_the_peer_stops_reading(tmp_path):
    """
    Past the send queue's 100,000 events, a peer that never reads blocks
    the next send: publish gives up after --timeout without progress.
    """
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"".join(event(f"evt-h{i}") + b"\n" for i in range(150_000)))
    with stalled_peer() as addr:
        r = publish("--connect", addr, "--file", f, "--timeout", 300)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert err.startswith(f"switchyard publish: {addr} took no event for 300 ms; "), err
    assert err.endswith(" events were sent before that (without --ack, whether they were "
                        "stored is unknown)\n"), err
