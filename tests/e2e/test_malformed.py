"""
Hostile input: 200 malformed messages of eight kinds. Each is rejected with
the right reason, counted, quarantined with its size, SHA-256 and bytes (a
4 KiB prefix of oversized ones), never crashes the daemon, and a valid
event sent afterwards is still delivered.
"""

import base64
import hashlib
import json
from collections import Counter

from conftest import event, files_under, read_lines

MAX_EVENT_BYTES = 1024 * 1024  # the default core.max_event_bytes
QUARANTINE_PREFIX = 4096  # what the quarantine keeps of a message over it


def malformed():
    """[(reason, frames, quarantined body)] for 200 messages, 8 categories."""
    cases = []

    def add(reason, frames, body=None):
        if body is None:
            body = frames[-1] if len(frames) <= 2 else frames[1]
        cases.append((reason, frames, body))

    for i in range(30):  # not JSON
        bad = [b"hello %d" % i, b'{"event_id": "x%d", ' % i, b"{'event_id': 'single'}",
               b'{"event_id":"a","event_type":"job.completed"} trailing', b"nul",
               b'{"event_id":"a",,}'][i % 6]
        add("not_json", [bad])
    for i in range(30):  # event_id (or event_type) missing
        bad = event(f"m{i}").replace(b'"event_id":"m%d",' % i, b"")
        if i % 3 == 0:
            bad = json.dumps({"event_id": f"m{i}", "data": {}}).encode()  # no event_type
        add("missing_field", [bad])
    for i in range(10):  # 1 MiB + 1 KiB, otherwise a valid envelope: read, then refused
        big = event(f"big{i}", data={"blob": "b" * (1024 * 1024 + 1024)})
        add("too_big", [big])
    for i in range(25):  # invalid UTF-8 inside a string
        # stray bytes, overlong "/", a surrogate, a truncated sequence, a 5-byte form
        bad = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82",
               b"\xf8\x88\x80\x80\x80"][i % 5]
        add("invalid_utf8", [event(f"u{i}", data={"s": "@"}).replace(b"@", bad)])
    for i in range(15):  # 10,000 levels deep
        deep = (b'{"event_id":"d%d","event_type":"job.completed","data":{"x":' % i +
                b"[" * 10000 + b"]" * 10000 + b"}}")
        add("too_deep", [deep])
    for i in range(40):  # right field, wrong JSON type
        if i % 2:
            bad = (b'{"event_id":%d,"event_type":"job.completed","org_id":"acme","data":{}}'
                   % (1000 + i))
        else:
            bad = (b'{"event_id":"w%d","event_type":"job.completed","org_id":"acme",'
                   b'"data":"not an object"}' % i)
        add("wrong_type", [bad])
    for i in range(20):  # zero bytes
        add("empty", [b""])
    for i in range(30):  # three frames
        add("bad_frames", [b"job.completed", event(f"f{i}"), b"extra"])
    return cases


def test_malformed_input_is_rejected_counted_and_quarantined(switchyard):
    d = switchyard()
    cases = malformed()
    assert len(cases) == 200
    want_reasons = Counter(r for r, _, _ in cases)

    # One frame over PULL, except a share of the 1-frame ones sent as
    # [topic, body] over SUB, and 3-frame messages over both.
    via_pull, via_sub = [], []
    for n, (reason, frames, _) in enumerate(cases):
        if reason == "bad_frames" and n % 2:
            via_sub.append(list(frames))
        elif reason in ("not_json", "wrong_type") and n % 2:
            via_sub.append((b"job.completed", frames[0]))
        elif len(frames) == 1:
            via_pull.append(frames[0])
        else:
            via_pull.append(list(frames))
    d.push(via_pull)
    d.publish(via_sub)

    # quarantined is the last counter a rejection bumps.
    s = d.wait_for("events.quarantined", 200)
    assert s["events"]["received"] == 200
    assert s["events"]["accepted"] == 0
    assert s["events"]["quarantined"] == 200
    assert s["events"]["quarantine_errors"] == 0
    assert {k: v for k, v in s["rejected"].items() if v} == dict(want_reasons)
    assert sum(s["rejected"].values()) == 200
    assert s["deliveries"]["created"] == 0

    # The daemon still works.
    good = event("still-alive", data={"status": "succeeded"})
    d.push([good])
    d.wait_for("deliveries.ok", 1)
    assert d.stop() == 0
    assert files_under(d.out) == ["acme/job.completed.jsonl"]
    assert read_lines(d.out / "acme/job.completed.jsonl") == [good]
    fs = d.final_stats
    assert fs["events"]["received"] == 201
    assert fs["events"]["accepted"] == 1
    assert fs["events"]["rejected"] == 200

    # Quarantine: one record per rejected message, with the reason, the size,
    # the hash and the bytes (the first 4 KiB of a message over the limit).
    records = [json.loads(l) for l in read_lines(d.quarantine)]
    assert len(records) == 200
    assert Counter(r["reason"] for r in records) == want_reasons
    for r in records:
        assert set(r) == {"ts", "reason", "detail", "size", "sha256", "truncated",
                          "body_base64"}, r
        assert r["detail"], r
    want_bodies = Counter()
    for reason, _, body in cases:
        kept = body[:QUARANTINE_PREFIX] if len(body) > MAX_EVENT_BYTES else body
        want_bodies[(reason, len(body), hashlib.sha256(body).hexdigest(), len(kept) < len(body),
                     kept)] += 1
    got_bodies = Counter((r["reason"], r["size"], r["sha256"], r["truncated"],
                          base64.b64decode(r["body_base64"])) for r in records)
    assert got_bodies == want_bodies
