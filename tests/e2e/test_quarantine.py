"""
The quarantine file stays bounded under a flood of oversized messages:
each record keeps the message's size, its SHA-256 and a 4 KiB prefix; the
file rotates at core.quarantine_max with one older file (PATH.1); and past
core.quarantine_rate bytes a second records are counted in
switchyard_events_quarantine_dropped_total instead of written.

Messages are one byte over core.max_event_bytes, so that ZeroMQ's own size
cap (a margin above max_event_bytes) never cuts the connection first.
"""

import base64
import hashlib
import json
import re

from test_ops_helpers import ops_daemon, wait_until  # noqa: F401 (fixture)

MAX_EVENT = 8192
PREFIX = 4096


def oversized(i):
    """Message i: distinct bytes from the first one on, MAX_EVENT + 1 long."""
    seed = hashlib.sha256(b"%d" % i).digest()
    return (seed * (MAX_EVENT // len(seed) + 1))[:MAX_EVENT + 1]


def records(path):
    if not path.exists():
        return []
    data = path.read_bytes()
    assert data.endswith(b"\n"), path
    return [json.loads(l) for l in data[:-1].split(b"\n")]


def counted(d, n):
    """Waits until n messages were rejected as too_big and each has its quarantine
    outcome counted (kept, dropped or failed); returns the metrics then. The
    ingress thread counts the rejection before it writes the record, so a
    snapshot taken between the two shows one outcome fewer."""
    def done():
        m = d.metrics()
        outcomes = sum(m.get(k) or 0 for k in ("switchyard_events_quarantined_total",
                                               "switchyard_events_quarantine_dropped_total",
                                               "switchyard_events_quarantine_errors_total"))
        return m if (m.get("switchyard_events_rejected_total", reason="too_big") == n
                     and outcomes == n) else None
    return wait_until(done, what=f"{n} messages rejected as too_big and their quarantine counted")


def test_flood_rotates_and_keeps_prefix_size_and_hash(ops_daemon, tmp_path):
    max_file = 64 * 1024
    d = ops_daemon(core={"max_event_bytes": MAX_EVENT, "quarantine_max": "64KiB",
                         "quarantine_rate": 0})
    msgs = [oversized(i) for i in range(200)]
    d.push(msgs)
    m = counted(d, len(msgs))
    assert m.get("switchyard_events_quarantined_total") == len(msgs)
    assert m.get("switchyard_events_quarantine_dropped_total") == 0

    live, old = d.quarantine, d.quarantine.with_name(d.quarantine.name + ".1")
    assert live.stat().st_size <= max_file
    assert old.stat().st_size <= max_file
    assert sorted(p.name for p in d.quarantine.parent.glob("quarantine.jsonl*")) == \
        ["quarantine.jsonl", "quarantine.jsonl.1"]
    kept = records(old) + records(live)
    # Records of equal length L: a file rotates when the next one would pass max_file.
    size = old.stat().st_size
    per_file = len(records(old))
    assert size % per_file == 0
    rec_len = size // per_file
    assert rec_len * per_file <= max_file < rec_len * (per_file + 1)
    assert live.stat().st_size == rec_len * len(records(live))
    assert 0 < len(records(live)) <= per_file
    # The newest records, in the order sent.
    by_hash = {hashlib.sha256(b).hexdigest(): i for i, b in enumerate(msgs)}
    assert [by_hash[r["sha256"]] for r in kept] == list(range(len(msgs) - len(kept), len(msgs)))
    for r in kept:
        body = msgs[by_hash[r["sha256"]]]
        assert (r["reason"], r["size"], r["truncated"]) == ("too_big", MAX_EVENT + 1, True)
        assert base64.b64decode(r["body_base64"]) == body[:PREFIX]
        assert set(r) == {"ts", "reason", "detail", "size", "sha256", "truncated", "body_base64"}


def test_flood_over_the_rate_is_counted_not_kept(ops_daemon, tmp_path):
    # One byte a second: the first record overdraws the budget by hours.
    d = ops_daemon(core={"max_event_bytes": MAX_EVENT, "quarantine_rate": 1})
    msgs = [oversized(i) for i in range(100)]
    d.push(msgs)
    m = counted(d, len(msgs))
    assert m.get("switchyard_events_quarantined_total") == 1
    assert m.get("switchyard_events_quarantine_dropped_total") == len(msgs) - 1
    [r] = records(d.quarantine)
    assert r["sha256"] == hashlib.sha256(msgs[0]).hexdigest()
    assert r["size"] == MAX_EVENT + 1
    s = d.wait_stats(lambda st: st["events"]["rejected"] == len(msgs), "the stats file")
    assert (s["events"]["quarantined"], s["events"]["quarantine_dropped"],
            s["events"]["quarantine_errors"]) == (1, len(msgs) - 1, 0)
    assert d.terminate() == 0
    # Said in the log once per dropped record, rate-limited like any repeated line:
    # lines written plus the counts of the summaries make up every drop.
    said = repeated = 0
    for line in d.run_log().splitlines():
        if 'msg="quarantine write rate reached: rejected messages are counted, not kept' in line:
            if line.endswith('" rate_bytes_per_second=1'):
                said += 1
            else:
                m = re.search(r' \(repeated (\d+) times\)" repeated=(\d+)$', line)
                assert m and m.group(1) == m.group(2), line
                repeated += int(m.group(1))
    assert 1 <= said and said + repeated == len(msgs) - 1, (said, repeated)
