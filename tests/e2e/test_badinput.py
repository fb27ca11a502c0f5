"""
The bad-input corpus (scripts/gen_badinput.py: 10,000 seeded messages,
truncations, type swaps, huge strings, deep nesting, invalid UTF-8, NUL
bytes, duplicate keys, bad types and dates, oversized, empty, wrong frame
counts, valid ones mixed in) pushed whole through each ingress socket type
of one daemon with a spool: PULL, SUB and ACK, 30,000 messages in all.

Asserted: the daemon never dies and exits 0 on SIGTERM; every message is
counted (received == sent, accepted + rejected == received, each
rejection reason's counter == 3x the corpus's count of it, duplicates ==
accepted messages - distinct accepted ids); every ACK reply says what the
corpus expects ("ok <id>" / "dup <id>", or "error <reason>: ..."); each
distinct accepted event is delivered exactly once, byte for byte; and a
valid event sent on each socket afterwards is still delivered.
"""

import importlib.util
import json
import time
from collections import Counter

import zmq

from conftest import ROOT, event, free_ports, publish, push, read_lines

_spec = importlib.util.spec_from_file_location("gen_badinput", ROOT / "scripts" / "gen_badinput.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

REPLY_TIMEOUT = 60.0


def test_corpus_is_deterministic_and_covers_every_reason():
    a, b = gen.generate(), gen.generate()
    assert len(a) == 10000
    assert [c["frames"] for c in a] == [c["frames"] for c in b]
    assert [c["expect"] for c in a] == [c["expect"] for c in b]
    assert gen.generate(seed=1)[0]["frames"] != a[0]["frames"] or \
        gen.generate(seed=1)[1]["frames"] != a[1]["frames"]
    got = Counter(c["expect"] for c in a)
    for reason in ("accepted", *gen.REASONS):
        assert got[reason] >= 50, f"only {got[reason]} messages expected as {reason}"
    cats = Counter(c["category"] for c in a)
    assert len(cats) == len(gen.MIX) and min(cats.values()) >= 100


def ack_exchange(addr, cases):
    """
    Sends every case over a DEALER to the daemon's ACK socket and collects
    the replies. A case of one or two frames goes as [tag, body] and is
    answered [tag, text]; one of three or more frames goes as [tag, *frames]
    and, there being no single tag to echo, is answered [text] alone.
    Returns ({index: text}, [untagged texts]).
    """
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    # Unbounded on our side: replies pile up while we send, and a ROUTER
    # drops (does not block on) replies to a peer whose queue is full.
    s.setsockopt(zmq.RCVHWM, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(addr)
    tagged, untagged = {}, []

    def take(block_ms):
        while s.poll(block_ms, zmq.POLLIN):
            parts = s.recv_multipart()
            if len(parts) == 2:
                i = int(parts[0][1:])
                assert i not in tagged, f"two replies for message {i}: {tagged[i]!r}, {parts[1]!r}"
                tagged[i] = parts[1].decode("utf-8", "replace")
            else:
                assert len(parts) == 1, f"reply of {len(parts)} frames: {parts!r}"
                untagged.append(parts[0].decode("utf-8", "replace"))
            block_ms = 0

    try:
        for i, c in enumerate(cases):
            tag = b"t%d" % i
            f = c["frames"]
            s.send_multipart([tag, f[-1]] if len(f) <= 2 else [tag, *f])
            if i % 256 == 0:
                take(0)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while len(tagged) + len(untagged) < len(cases) and time.monotonic() < deadline:
            take(100)
    finally:
        s.close()
        ctx.term()
    return tagged, untagged


def check_ack_replies(cases, tagged, untagged):
    wrong = []
    for i, c in enumerate(cases):
        if len(c["frames"]) >= 3:
            continue
        text = tagged.get(i)
        if c["expect"] == "accepted":
            ok = text in (f"ok {c['event_id']}", f"dup {c['event_id']}")
        else:
            ok = text is not None and text.startswith(f"error {c['expect']}: ")
        if not ok:
            wrong.append(f"#{i} {c['category']}: expected {c['expect']}, got {text!r}; "
                         f"body {c['frames'][-1][:120]!r}")
    n3 = sum(1 for c in cases if len(c["frames"]) >= 3)
    assert len(untagged) == n3, f"{len(untagged)} untagged replies for {n3} multi-frame messages"
    assert all(t.startswith("error bad_frames: ") for t in untagged), Counter(untagged)
    assert not wrong, f"{len(wrong)} wrong ACK replies, e.g.:\n" + "\n".join(wrong[:20])


def ack_one(addr, body):
    """One [tag, body] over a fresh DEALER; returns the reply text."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(addr)
    try:
        s.send_multipart([b"last", body])
        assert s.poll(int(REPLY_TIMEOUT * 1000)), "no ACK reply"
        tag, text = s.recv_multipart()
        assert tag == b"last"
        return text.decode()
    finally:
        s.close()
        ctx.term()


def test_badinput_corpus_through_every_ingress(switchyard, tmp_path):
    t0 = time.monotonic()
    cases = gen.generate()
    pull_port, sub_port, ack_port = free_ports(3)
    pull, sub, ack = (f"tcp://127.0.0.1:{p}" for p in (pull_port, sub_port, ack_port))
    out = tmp_path / "out" / "all.jsonl"
    d = switchyard(
        sinks={"files": {"plugin": "file", "path": str(out), "fsync": "never"}},
        endpoints={"all": {"sink": "files", "enabled_events": ["*"]}},
        core={"ingress": [{"type": "pull", "bind": pull},
                          # SUB drops at its high-water mark; unbounded here so every
                          # message is counted (the publisher side is unbounded too).
                          {"type": "sub", "bind": sub, "rcvhwm": 0},
                          {"type": "ack", "bind": ack}],
              "spool": str(tmp_path / "spool.db"), "spool_sync": "normal",
              "max_event_bytes": gen.DEFAULT_MAX_BYTES, "max_depth": gen.DEFAULT_MAX_DEPTH})

    # PULL and SUB take the frames as they are: [body], [topic, body] or 3+ frames.
    push(pull, [c["frames"][0] if len(c["frames"]) == 1 else list(c["frames"]) for c in cases])
    assert d.alive(), d.log()[-4000:]
    publish(sub, [c["frames"][0] if len(c["frames"]) == 1 else list(c["frames"]) for c in cases])
    assert d.alive(), d.log()[-4000:]
    tagged, untagged = ack_exchange(ack, cases)
    assert d.alive(), d.log()[-4000:]
    check_ack_replies(cases, tagged, untagged)

    n = len(cases)
    want = Counter(c["expect"] for c in cases)
    accepted_ids = [c["event_id"] for c in cases if c["expect"] == "accepted"]
    distinct = len(set(accepted_ids))
    def settled(st):
        # Every message read has its outcome: a message is counted as read before it is
        # accepted or rejected, a rejection before its quarantine outcome, and an
        # accepted event before the spool stores it (deliveries created) or finds it a
        # duplicate. Then every delivery is done.
        ev, dl = st["events"], st["deliveries"]
        return (ev["received"] >= 3 * n and ev["accepted"] + ev["rejected"] == ev["received"]
                and ev["quarantined"] + ev["quarantine_dropped"] + ev["quarantine_errors"]
                == ev["rejected"]
                and dl["created"] + ev["duplicates"] + ev["spool_errors"] + ev["unrouted"]
                >= ev["accepted"]
                and dl["ok"] + dl["dead"] >= dl["created"] >= distinct)
    s = d.wait_stats(settled, f"{3 * n} messages received and each settled, "
                              f"{distinct} events delivered")
    ev = s["events"]
    assert ev["received"] == 3 * n
    assert ev["accepted"] + ev["rejected"] == ev["received"]
    assert ev["accepted"] == 3 * want["accepted"]
    assert {r: s["rejected"][r] for r in gen.REASONS} == {r: 3 * want[r] for r in gen.REASONS}
    assert ev["duplicates"] == 3 * len(accepted_ids) - distinct
    # Each rejection is kept in the quarantine or, past core.quarantine_rate, counted.
    assert ev["quarantined"] + ev["quarantine_dropped"] == ev["rejected"]
    assert ev["quarantined"] > 0
    assert (ev["quarantine_errors"], ev["spool_errors"], ev["unrouted"]) == (0, 0, 0)
    assert s["deliveries"]["ok"] == s["deliveries"]["created"] == distinct
    assert s["deliveries"]["dead"] == 0

    # Still serving: a valid event on each socket is accepted and delivered.
    last = [event(f"after-{k}") for k in ("pull", "sub", "ack")]
    push(pull, [last[0]])
    publish(sub, [last[1]])
    assert ack_one(ack, last[2]) == "ok after-ack"
    d.wait_for("deliveries.ok", distinct + 3)
    assert d.stop() == 0
    assert "level=error" not in d.log(), d.log()[-4000:]

    # Each distinct accepted event once. An id carried by a single body must
    # arrive as exactly those bytes (the file sink writes raw CR/LF, only
    # possible as JSON whitespace, as spaces); for an id several bodies
    # share, whichever was committed first wins.
    lines = read_lines(out)
    ids = [json.loads(l.decode("utf-8-sig"))["event_id"] for l in lines]
    assert len(ids) == len(set(ids)) == distinct + 3
    assert set(ids) == set(accepted_ids) | {"after-pull", "after-sub", "after-ack"}
    bodies = {}
    for c in cases:
        if c["expect"] == "accepted":
            bodies.setdefault(c["event_id"], set()).add(c["frames"][-1])
    written = dict(zip(ids, lines))
    for eid, b in bodies.items():
        if len(b) == 1:
            body = next(iter(b))
            assert written[eid] == body.replace(b"\r", b" ").replace(b"\n", b" "), eid
    assert time.monotonic() - t0 < 120, "the corpus run should take well under a minute"
