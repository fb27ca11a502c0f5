"""
Routing: event type patterns, tenant (org) isolation, payload filters.
Each endpoint writes to its own folder ({endpoint_id} in the path), so the
files show exactly which endpoint got which event.
"""

import json

from conftest import event, files_under, read_lines


def by_endpoint_sinks(d_tmp_out):
    return {"files": {"plugin": "file", "fsync": "never",
                      "path": f"{d_tmp_out}/{{endpoint_id}}/{{event_type}}.jsonl"}}


def ids_in(path):
    return [json.loads(l)["event_id"] for l in read_lines(path)]


def start(switchyard, tmp_path, endpoints):
    out = tmp_path / "routed"
    d = switchyard(sinks=by_endpoint_sinks(out), endpoints=endpoints)
    d.routed = out
    return d


def endpoint_ids(d, ep):
    """event_id -> count over every file of one endpoint."""
    got = {}
    for rel in files_under(d.routed / ep):
        for eid in ids_in(d.routed / ep / rel):
            got[eid] = got.get(eid, 0) + 1
    return got


def test_type_patterns_exact_and_prefix(switchyard, tmp_path):
    d = start(switchyard, tmp_path, {
        "completed": {"sink": "files", "enabled_events": ["job.completed"]},
        "jobs": {"sink": "files", "enabled_events": ["job.*"]},
    })
    kinds = {
        "job.completed": 30,
        "job.created": 20,
        "job.step.finished": 5,   # job.* covers deeper types too
        "artifact.ready": 10,     # nobody
        "jobs.completed": 5,      # "job.*" is a segment prefix, not a string prefix
        "job": 5,                 # "job.*" needs a segment after "job"
        "job.completed.extra": 4, # "job.completed" is exact
    }
    sent = {}
    msgs = []
    for t, n in kinds.items():
        sent[t] = [f"{t}-{i}" for i in range(n)]
        msgs += [event(eid, event_type=t) for eid in sent[t]]
    want_completed = set(sent["job.completed"])
    want_jobs = set(sent["job.completed"] + sent["job.created"] + sent["job.step.finished"] +
                    sent["job.completed.extra"])
    total = sum(kinds.values())
    d.push(msgs)
    d.wait_stats(lambda s: s["events"]["accepted"] == total, f"{total} events accepted")
    d.wait_for("deliveries.ok", len(want_completed) + len(want_jobs))
    assert d.stop() == 0
    s = d.final_stats

    assert endpoint_ids(d, "completed") == {e: 1 for e in want_completed}
    assert endpoint_ids(d, "jobs") == {e: 1 for e in want_jobs}
    assert files_under(d.routed) == [
        "completed/job.completed.jsonl",
        "jobs/job.completed.extra.jsonl",
        "jobs/job.completed.jsonl",
        "jobs/job.created.jsonl",
        "jobs/job.step.finished.jsonl",
    ]
    unrouted = kinds["artifact.ready"] + kinds["jobs.completed"] + kinds["job"]
    assert s["events"]["unrouted"] == unrouted
    assert s["events"]["accepted"] == total
    assert s["endpoints"]["completed"]["routed"] == 30
    assert s["endpoints"]["jobs"]["routed"] == len(want_jobs)
    assert s["deliveries"]["created"] == 30 + len(want_jobs)
    assert s["deliveries"]["ok"] == 30 + len(want_jobs)


def test_org_isolation(switchyard, tmp_path):
    d = start(switchyard, tmp_path, {
        "acme": {"sink": "files", "org_id": "acme", "enabled_events": ["*"]},
        "everyone": {"sink": "files", "enabled_events": ["*"]},
    })
    msgs, acme, everything = [], [], []

    def add(eid, body):
        msgs.append(body)
        everything.append(eid)

    for i in range(10):
        add(f"acme-{i}", event(f"acme-{i}", org="acme"))
        acme.append(f"acme-{i}")
    for i in range(10):
        # Same slug, other org: routing goes by org_id, never by the slug.
        add(f"umb-{i}", event(f"umb-{i}", org="umbrella", org_slug="acme"))
    for i in range(5):
        add(f"noorg-{i}", event(f"noorg-{i}", org=None))
    for i in range(5):
        add(f"null-{i}", event(f"null-{i}", org=None, org_id=None))
    for i, other in enumerate(["ACME", "acme ", "acmecorp", "acm", "acme.inc"]):
        add(f"near-{i}", event(f"near-{i}", org=other))
    for i in range(3):
        # The org inside data is payload, not the envelope's org.
        add(f"data-{i}", event(f"data-{i}", org="umbrella", data={"org_id": "acme"}))
    d.push(msgs)
    want = len(acme) + len(everything)
    d.wait_for("deliveries.ok", want)
    assert d.stop() == 0
    s = d.final_stats
    assert endpoint_ids(d, "acme") == {e: 1 for e in acme}
    assert endpoint_ids(d, "everyone") == {e: 1 for e in everything}
    assert s["endpoints"]["acme"]["routed"] == 10
    assert s["endpoints"]["everyone"]["routed"] == len(everything)
    assert s["events"]["unrouted"] == 0
    assert s["deliveries"]["created"] == want


def test_org_endpoint_alone_never_sees_other_orgs(switchyard, tmp_path):
    """With only an org endpoint, events of other orgs and without org are unrouted."""
    d = start(switchyard, tmp_path, {
        "acme": {"sink": "files", "org_id": "acme", "enabled_events": ["*"]},
    })
    msgs = [event("a-1", org="acme"), event("u-1", org="umbrella"), event("n-1", org=None),
            event("a-2", org="acme", event_type="artifact.ready")]
    d.push(msgs)
    d.wait_stats(lambda s: s["events"]["accepted"] == 4 and s["deliveries"]["ok"] == 2,
                 "4 accepted, 2 delivered")
    assert d.stop() == 0
    assert endpoint_ids(d, "acme") == {"a-1": 1, "a-2": 1}
    assert d.final_stats["events"]["unrouted"] == 2
    assert d.final_stats["deliveries"]["created"] == 2


def test_payload_filter_in(switchyard, tmp_path):
    d = start(switchyard, tmp_path, {
        "succeeded": {"sink": "files", "enabled_events": ["job.*"],
                      "filter": {"data.status": {"$in": ["succeeded"]}}},
        "everyone": {"sink": "files", "enabled_events": ["*"]},
    })
    cases = [
        ("ok", 10, {"status": "succeeded", "job_id": "j"}, True),
        ("failed", 10, {"status": "failed"}, False),
        ("upper", 3, {"status": "SUCCEEDED"}, False),
        ("space", 2, {"status": "succeeded "}, False),
        ("missing", 3, {"job_id": "j"}, False),
        ("nested", 2, {"result": {"status": "succeeded"}}, False),
        ("number", 2, {"status": 1}, False),
        ("null", 2, {"status": None}, False),
    ]
    msgs, want, everything = [], [], []
    for name, n, data, passes in cases:
        for i in range(n):
            eid = f"{name}-{i}"
            msgs.append(event(eid, data=data))
            everything.append(eid)
            if passes:
                want.append(eid)
    for i in range(3):
        # status outside data does not count
        eid = f"toplevel-{i}"
        msgs.append(event(eid, data={"status": "failed"}, status="succeeded"))
        everything.append(eid)
    for i in range(2):
        eid = f"nodata-{i}"
        msgs.append(json.dumps({"event_id": eid, "event_type": "job.completed",
                                "org_id": "acme"}).encode())
        everything.append(eid)
    for i in range(2):
        # passes the filter but not the type pattern
        eid = f"othertype-{i}"
        msgs.append(event(eid, event_type="artifact.ready", data={"status": "succeeded"}))
        everything.append(eid)
    d.push(msgs)
    d.wait_for("deliveries.ok", len(want) + len(everything))
    assert d.stop() == 0
    assert endpoint_ids(d, "succeeded") == {e: 1 for e in want}
    assert endpoint_ids(d, "everyone") == {e: 1 for e in everything}
    assert d.final_stats["endpoints"]["succeeded"]["routed"] == 10
    assert d.final_stats["events"]["rejected"] == 0
