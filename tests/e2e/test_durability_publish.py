"""
The acknowledged ingress (`ack`, a ROUTER) and `switchyard publish --ack`:
the reply protocol, the CLI's summary and exit code, and whether an
acknowledgement the CLI counts really belongs to the event it counts it for.
"""

import subprocess
import threading
import time

import zmq

from conftest import free_ports
from durability_helpers import (both_backends, BIN, DONE, AckClient, event, file_sink, sink_ids,
                                spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends


def ack_daemon(spool_daemon, tmp_path):
    out = tmp_path / "received.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out)},
                     endpoints={"all": {"sink": "files", "enabled_events": ["*"]}})
    d.received = out
    return d


def test_ack_replies_echo_the_tag_and_name_the_event(spool_daemon, tmp_path):
    d = ack_daemon(spool_daemon, tmp_path)
    with AckClient(d.ack_addr) as c:
        assert c.request(event("evt-a1"), tag=b"\x00\x01tag") == "ok evt-a1"
        # [body] alone: the answer is a single frame.
        assert c.request(event("evt-a2"), tag=None) == "ok evt-a2"
        assert c.request(b"{not json", tag=b"t3").startswith("error not_json: ")
        assert c.request(b'{"event_id":"x"}', tag=b"t4").startswith("error missing_field: ")
        # Three payload frames: refused, and the reply comes without a tag.
        c.s.send_multipart([b"a", b"b", event("evt-a5")])
        r = c.recv(10)
        assert r is not None and len(r) == 1, r
        assert r[0].decode().startswith("error bad_frames: "), r
    s = d.wait_for("deliveries.ok", 2)
    assert s["events"]["rejected"] == 3
    assert s["events"]["quarantined"] == 3
    assert sorted(sink_ids(d.received)) == ["evt-a1", "evt-a2"]
    # The spool records a delivery's end one commit after the "ok" counter moved.
    wait_until(lambda: d.spool.states() == {DONE: 2}, timeout=10,
               what="both deliveries done in the spool", on_timeout=lambda: d.spool.states())
    assert d.spool.count_events() == 2  # refused input is never stored


def test_ok_comes_only_after_the_commit(spool_daemon, tmp_path):
    """Whatever was answered "ok" is on disk at that moment (read by another process): in the
    spool's database, or (SQLite) in its hot log, folded into the database moments later."""
    d = ack_daemon(spool_daemon, tmp_path)
    with AckClient(d.ack_addr) as c:
        for i in range(20):
            eid = f"evt-c{i}"
            assert c.request(event(eid), tag=eid.encode()) == f"ok {eid}"
            ids = {r["event_id"] for r in d.spool.deliveries("all")}
            logged = getattr(d.spool, "hot_log", bytes)()
            assert eid in ids or event(eid) in logged, f"{eid} answered ok but not on disk"
    # ... and the database has every one of them soon after.
    wait_until(lambda: len(d.spool.deliveries("all")) == 20, timeout=10,
               what="every event folded into the database",
               on_timeout=lambda: d.spool.deliveries("all"))


def test_without_the_hot_log_ok_comes_after_the_database_commit(spool_daemon, tmp_path,
                                                               store_backend):
    """core.spool_log false: each "ok" waits for the SQLite commit, and no log is written."""
    if store_backend != "sqlite":
        return  # the hot log is the SQLite spool's; PostgreSQL commits every batch
    out = tmp_path / "received.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out)},
                     endpoints={"all": {"sink": "files", "enabled_events": ["*"]}},
                     core={"spool_log": False})
    with AckClient(d.ack_addr) as c:
        for i in range(10):
            eid = f"evt-n{i}"
            assert c.request(event(eid), tag=eid.encode()) == f"ok {eid}"
            assert eid in {r["event_id"] for r in d.spool.deliveries("all")}, eid
    assert d.spool.hot_log() == b""
    assert not list(tmp_path.rglob("*-hot.*"))


def run_publish(addr, path, *extra, timeout=60):
    return subprocess.run([str(BIN), "publish", "--ack", "--connect", addr, "--file", str(path),
                           *extra], capture_output=True, timeout=timeout)


def test_publish_ack_summary_and_exit_code(spool_daemon, tmp_path):
    d = ack_daemon(spool_daemon, tmp_path)
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"\n".join([event("evt-p1"), event("evt-p2"), b"{broken", event("evt-p1"),
                              event("evt-p3")]) + b"\n")
    r = run_publish(d.ack_addr, f)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert f"published 5 events to {d.ack_addr}: 3 stored, 1 duplicates, 1 refused, " \
           f"0 unanswered" in err, err
    assert "event 3 refused: error not_json: " in err, err
    # All good: exit 0.
    f.write_bytes(event("evt-p4") + b"\n" + event("evt-p5") + b"\n")
    r = run_publish(d.ack_addr, f)
    assert r.returncode == 0, r.stderr
    assert f"published 2 events to {d.ack_addr}: 2 stored, 0 duplicates, 0 refused, " \
           f"0 unanswered" in r.stderr.decode()
    d.wait_for("deliveries.ok", 5)
    assert sorted(sink_ids(d.received)) == [f"evt-p{i}" for i in range(1, 6)]


def test_publish_ack_counts_only_answers_about_the_event(tmp_path):
    """
    A late second answer (to a resent copy) must not acknowledge a different event.

    A stand-in ROUTER plays a slow daemon: it leaves the first 1,000 events
    (the CLI's window) unanswered until they are resent, then answers event
    1's resend "ok", which frees a slot: event 1001 goes out in it. The
    stand-in then answers event 1's *original* copy "dup evt-00001" (what a
    daemon does for a copy it sees twice) and answers events 2..1000, but
    never event 1001, which it pretends it never stored.

    Expected: the CLI reports event 1001 unanswered and exits 1, because
    nothing ever acknowledged it. sdk/src/publisher.c tags messages with
    their slot number, not the event, so "dup evt-00001" arriving on the
    slot now used by event 1001 counts as event 1001's acknowledgement.
    """
    port = free_ports(1)[0]
    addr = f"tcp://127.0.0.1:{port}"
    n = 1001
    ids = [f"evt-{i:05d}" for i in range(1, n + 1)]
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"\n".join(event(i) for i in ids) + b"\n")

    ctx = zmq.Context()
    srv = ctx.socket(zmq.ROUTER)
    for opt in (zmq.LINGER, zmq.SNDHWM, zmq.RCVHWM):
        srv.setsockopt(opt, 0)  # the stand-in itself must never drop an answer
    srv.bind(addr)
    log = []
    stop = threading.Event()

    def eid_of(body):
        import json
        return json.loads(body)["event_id"]

    def stand_in():
        seen = {}          # event id -> [(ident, tag)] copies received
        first_round = True
        while not stop.is_set():
            if not srv.poll(50):
                continue
            ident, tag, body = srv.recv_multipart()
            eid = eid_of(body)
            seen.setdefault(eid, []).append((ident, tag))
            log.append((eid, len(seen[eid])))
            if eid == "evt-00001" and len(seen[eid]) == 2 and first_round:
                # The resend of event 1: answer it; the CLI reuses its slot.
                srv.send_multipart([ident, tag, b"ok evt-00001"])
                first_round = False
            elif eid == ids[-1] and len(seen[eid]) == 1:
                # Event 1001 went out in event 1's old slot. Now the
                # answer to event 1's first copy arrives, late.
                i0, t0_ = seen["evt-00001"][0]
                srv.send_multipart([i0, t0_, b"dup evt-00001"])
                for other in ids[1:-1]:
                    i, t = seen[other][-1]
                    srv.send_multipart([i, t, f"ok {other}".encode()])

    th = threading.Thread(target=stand_in, daemon=True)
    th.start()
    try:
        r = run_publish(addr, f, "--timeout", "300", "--retries", "2", timeout=60)
    finally:
        stop.set()
        th.join(5)
        srv.close()
        ctx.term()
    err = r.stderr.decode()
    copies_1001 = sum(1 for e, _ in log if e == ids[-1])
    assert ("evt-00001", 2) in log, "the stand-in never saw event 1 resent"
    assert r.returncode == 1 and f"event {n}: no answer after every resend" in err, (
        f"event {n} ({ids[-1]}) was never acknowledged (the stand-in received it "
        f"{copies_1001} time(s) and never answered it), yet switchyard publish exited "
        f"{r.returncode} with: {err.strip()}")


def test_every_stored_event_is_answered(spool_daemon, tmp_path):
    """
    A publisher that pipelines 20,000 events before reading gets 20,000 answers.

    Expected: one "ok <id>" per event, since each was stored. The ack
    ROUTER socket keeps ZeroMQ's default send high-water mark (1000), and a
    ROUTER silently drops messages to a peer whose pipe is full, so
    acknowledgements of committed events can vanish; the publisher then
    waits out its timeout and resends (the daemon answers "dup").
    """
    d = ack_daemon(spool_daemon, tmp_path)
    n = 20_000
    ids = [f"evt-h{i:05d}" for i in range(n)]
    with AckClient(d.ack_addr) as c:
        for eid in ids:
            c.send(event(eid), eid.encode())
        answers = {}
        deadline = time.monotonic() + 60
        while len(answers) < n and time.monotonic() < deadline:
            r = c.recv(timeout=2.0)
            if r is None:
                if d.spool.count_events() == n:
                    break  # all stored, and 2 s without a single answer more
                continue
            answers.setdefault(r[0].decode(), []).append(r[1].decode())
    # Answered from the hot log: the database has them all once it is folded.
    wait_until(lambda: d.spool.count_events() == n, timeout=30,
               what="every event in the spool's database",
               on_timeout=lambda: d.spool.count_events())
    missing = [i for i in ids if i not in answers]
    assert not missing, (f"{len(missing)} of {n} stored events were never answered "
                         f"(e.g. {missing[:5]}); got {len(answers)} answers")
    assert all(v == [f"ok {k}"] for k, v in answers.items())
