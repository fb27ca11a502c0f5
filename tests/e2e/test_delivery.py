"""
Every accepted event reaches the file sink exactly once, byte for byte,
whichever way it came in: PULL [body], SUB [topic, body], or the real
`switchyard publish` CLI.
"""

import json
import re
from collections import Counter

from conftest import cli, event, files_under, get, read_lines

N = 10_000
PAD = "x" * 960  # with the envelope around it, each event is about 1.1 KiB


def bodies(prefix, n):
    """n distinct 1 KiB-ish events with a few shapes the daemon must not touch."""
    out = []
    for i in range(n):
        eid = f"{prefix}-{i:05d}"
        data = {"job_id": f"j{i}", "status": "succeeded", "i": i, "pad": PAD}
        if i % 7 == 0:
            data["note"] = "caf\u00e9 \u2603 \U0001F680 \"quoted\" back\\slash tab\tnl\n"
        if i % 11 == 0:
            data["nums"] = [1.5, -0.0, 1e300, 12345678901234567890]
        b = event(eid, data=data)
        if i % 13 == 0:
            # Insignificant whitespace (no newlines) must survive as sent.
            b = b.replace(b'{"event_id"', b'{  "event_id"').replace(b',"data":', b' , "data" :  ')
        out.append(b)
    return out


def check_exact(d, sent, path_rel="acme/job.completed.jsonl"):
    """The sink file holds exactly the sent bodies (as a multiset) and nothing else."""
    assert files_under(d.out) == [path_rel]
    lines = read_lines(d.out / path_rel)
    got, want = Counter(lines), Counter(sent)
    missing = want - got
    extra = got - want
    assert not missing and not extra, (
        f"{len(lines)} lines for {len(sent)} events; {sum(missing.values())} missing "
        f"(e.g. {list(missing)[:1]!r:.200}), {sum(extra.values())} unexpected "
        f"(e.g. {list(extra)[:1]!r:.200})")
    assert len(lines) == len(sent)


def check_counters(s, n, nbytes):
    assert s["events"]["received"] == n
    assert s["events"]["accepted"] == n
    assert s["events"]["rejected"] == 0
    assert s["events"]["unrouted"] == 0
    assert s["deliveries"]["created"] == n
    assert s["deliveries"]["attempts"] == n
    assert s["deliveries"]["ok"] == n
    assert s["deliveries"]["retries"] == 0
    assert s["deliveries"]["failed"] == 0
    assert s["deliveries"]["dead"] == 0
    assert s["endpoints"]["all"]["routed"] == n
    assert s["endpoints"]["all"]["ok"] == n
    assert s["sinks"]["files"]["writes"] == n
    assert s["sinks"]["files"]["bytes"] == nbytes
    assert s["sinks"]["files"]["errors"] == 0


def test_pull_10k_events_land_once_byte_identical(switchyard):
    d = switchyard()
    sent = bodies("pull", N)
    assert len(set(sent)) == N
    d.push(sent)
    d.wait_for("deliveries.ok", N)
    assert d.stop() == 0
    check_exact(d, sent)
    check_counters(d.final_stats, N, sum(len(b) + 1 for b in sent))


def test_sub_10k_events_land_once_byte_identical(switchyard):
    d = switchyard()
    sent = bodies("sub", N)
    d.publish([(b"job.completed", b) for b in sent])
    d.wait_for("deliveries.ok", N)
    assert d.stop() == 0
    check_exact(d, sent)
    check_counters(d.final_stats, N, sum(len(b) + 1 for b in sent))


def test_raw_newlines_between_tokens_become_spaces(switchyard):
    """A raw CR/LF can only be JSON whitespace; the file sink writes it as a space."""
    d = switchyard()
    sent = [event(f"nl-{i}", data={"i": i}).replace(b',"data":', b',\r\n  "data":\n')
            for i in range(20)]
    d.push(sent)
    d.wait_for("deliveries.ok", 20)
    assert d.stop() == 0
    check_exact(d, [b.replace(b"\r", b" ").replace(b"\n", b" ") for b in sent])
    for line in read_lines(d.out / "acme/job.completed.jsonl"):
        json.loads(line)


def test_cli_publish_built_event(switchyard):
    d = switchyard()
    r = d_cli_publish(d, "--type", "job.completed", "--org", "acme",
                      "--data", '{"job_id":"j1","status":"succeeded"}')
    out = r.stdout.decode()
    assert re.fullmatch(r"evt_[0-9a-f]{24}\n", out), out
    eid = out.strip()
    assert r.stderr.decode() == f"published 1 event to {d.pull_addr}\n"
    d.wait_for("deliveries.ok", 1)
    assert d.stop() == 0
    assert files_under(d.out) == ["acme/job.completed.jsonl"]
    lines = read_lines(d.out / "acme/job.completed.jsonl")
    assert len(lines) == 1
    line = lines[0]
    ev = json.loads(line)
    assert ev["event_id"] == eid
    assert set(ev) == {"event_id", "event_type", "occurred_at", "version", "org_id",
                       "org_slug", "data"}
    assert ev["event_type"] == "job.completed"
    assert ev["org_id"] == "acme" and ev["org_slug"] == "acme"
    assert ev["version"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev["occurred_at"])
    assert ev["data"] == {"job_id": "j1", "status": "succeeded"}
    # The CLI sends compact JSON; the line is exactly those bytes.
    assert line == json.dumps(ev, separators=(",", ":"), ensure_ascii=False).encode()


def test_cli_publish_file_sends_each_line_byte_for_byte(switchyard, tmp_path):
    d = switchyard()
    sent = [event(f"file-{i:04d}", event_type="job.created" if i % 2 else "job.completed",
                  data={"i": i, "pad": PAD[: i % 500]}) for i in range(2000)]
    src = tmp_path / "events.jsonl"
    # Blank lines are skipped by the CLI; the last line has no newline.
    src.write_bytes(b"\n".join(sent[:1000]) + b"\n\n\n" + b"\n".join(sent[1000:]))
    r = d_cli_publish(d, "--file", src)
    assert r.stdout == b""
    assert r.stderr.decode() == f"published 2000 events to {d.pull_addr}\n"
    d.wait_for("deliveries.ok", 2000)
    assert d.stop() == 0
    assert files_under(d.out) == ["acme/job.completed.jsonl", "acme/job.created.jsonl"]
    got = Counter(read_lines(d.out / "acme/job.completed.jsonl")) + \
        Counter(read_lines(d.out / "acme/job.created.jsonl"))
    assert got == Counter(sent)
    assert Counter(read_lines(d.out / "acme/job.created.jsonl")) == Counter(sent[1::2])
    assert d.final_stats["events"]["received"] == 2000
    assert d.final_stats["deliveries"]["ok"] == 2000


def d_cli_publish(d, *args):
    r = cli("publish", "--connect", d.pull_addr, *args)
    assert r.returncode == 0, r.stderr.decode()
    return r


def test_many_endpoints_of_one_file_sink_share_its_calls(switchyard, tmp_path):
    """
    120 endpoints on one file sink, each event matching all of them: the core
    joins the endpoints' batches into the sink's calls (SY_SINK_BATCH_ACROSS),
    and each delivery still lands in its own endpoint's file, the endpoints
    with their own path template included. Without joining, every endpoint
    needs a call of its own: at least 120.
    """
    out = tmp_path / "joined"
    eps = {}
    for i in range(120):
        e = {"sink": "files", "enabled_events": ["*"]}
        if i % 10 == 0:
            e["path"] = f"{out}/own/{{endpoint_id}}.jsonl"  # the endpoint's own template
        eps[f"ep{i:03d}"] = e
    # concurrency 1: one call per endpoint at a time, so its file keeps the publish order.
    d = switchyard(sinks={"files": {"plugin": "file", "path": f"{out}/{{endpoint_id}}.jsonl",
                                    "fsync": "never", "concurrency": 1}},
                   endpoints=eps)
    sent = [event(f"j-{i}", data={"i": i}) for i in range(10)]
    d.push(sent)
    d.wait_for("deliveries.ok", 1200)
    s = d.stats()
    calls = get(s, "deliveries.plugin_calls")
    assert get(s, "deliveries.attempts") == 1200
    assert calls < 120, f"{calls} plugin calls for 120 endpoints: batches were not joined"
    want = sorted([f"own/ep{i:03d}.jsonl" for i in range(0, 120, 10)] +
                  [f"ep{i:03d}.jsonl" for i in range(120) if i % 10])
    assert files_under(out) == want
    for f in want:
        # One endpoint's deliveries keep their order inside a joined call.
        assert read_lines(out / f) == sent, f
