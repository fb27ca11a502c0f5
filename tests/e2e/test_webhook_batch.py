"""
Webhook batches (docs/WEBHOOKS.md, "Batches"), at a receiver that checks
every request with the official `standardwebhooks` npm package
(tests/e2e/peers/webhook_node_receiver.js):

  - one POST per batch, its body the JSON array of the events as published,
    one signature over it, the batch id as svix-id; exact POST and element
    counts, and a partial batch goes out when its linger ends;
  - 500 then 200: the whole batch again, same id, same body;
  - 400 listed in permanent_statuses: every member dead after one POST;
  - killed with SIGKILL while the receiver fails the batch, the restarted
    daemon delivers every member (at least once) from the spool;
  - the form sink refuses the key.

Exact request counts are read after the daemon stopped and the receiver
closed, so a request that should not have come would be seen.
"""

import hashlib
import json

from conftest import PLUGIN_DIR, cli, event, write_config
from durability_helpers import spool_daemon  # noqa: F401 (fixture)

S1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def hooks():
    return {"hooks": {"plugin": "webhook", "allow_private_networks": True}}


def batch_endpoint(node, path, batch, **extra):
    return {"sink": "hooks", "url": node.url(path), "secrets": [S1], "batch": batch, **extra}


def batch_id(endpoint, ids):
    h = hashlib.sha256(endpoint.encode() + b"\0" + b"".join(i.encode() + b"\0" for i in ids))
    return "batch_" + h.hexdigest()[:32]


def all_requests(node):
    """Every request the receiver got, once it has stopped (call after the daemon stopped)."""
    node.proc.terminate()
    out, _ = node.proc.communicate(timeout=10)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def ids_of(req):
    return [e["event_id"] for e in json.loads(req["body"])]


def test_batches_are_single_posts_the_official_verifier_accepts(switchyard, node_receiver):
    node = node_receiver([S1])
    d = switchyard(sinks=hooks(), endpoints={
        "ep": batch_endpoint(node, "/b", {"max": 5, "linger": "2s"})})
    bodies = [event(f"evt-b{i}", data={"job_id": f"j{i}", "note": "caf\u00e9"}) for i in range(12)]
    d.push(bodies)
    s = d.wait_for("deliveries.ok", 12)
    assert s["endpoints"]["ep"]["attempts"] == 12
    assert d.stop() == 0
    # Batches run side by side (concurrency 4): put them in publish order.
    reqs = sorted(all_requests(node), key=lambda r: int(ids_of(r)[0][5:]))
    # 12 events, batches of 5: two full ones at once, the rest when the linger ends.
    assert [len(json.loads(r["body"])) for r in reqs] == [5, 5, 2]
    want_ids = [f"evt-b{i}" for i in range(12)]
    assert sum((ids_of(r) for r in reqs), []) == want_ids
    at = 0
    for r in reqs:
        n = len(json.loads(r["body"]))
        assert r["results"] == ["ok"], r
        assert r["style"] == "svix" and len(r["signatures"]) == 1
        # The exact published bytes, in publish order, as one JSON array.
        assert r["body"] == "[" + ",".join(b.decode() for b in bodies[at:at + n]) + "]"
        assert r["id"] == batch_id("ep", want_ids[at:at + n])
        at += n
    assert d.final_stats["sinks"]["hooks"]["batches"] == 3
    assert d.final_stats["sinks"]["hooks"]["requests"] == 3
    assert d.final_stats["deliveries"]["plugin_calls"] == 3


def test_linger_sends_a_partial_batch(switchyard, node_receiver):
    node = node_receiver([S1])
    d = switchyard(sinks=hooks(), endpoints={
        "ep": batch_endpoint(node, "/p", {"max": 100, "linger": "200ms"},
                             header_prefix="webhook")})
    d.push([event(f"evt-p{i}") for i in range(3)])
    d.wait_for("deliveries.ok", 3)
    assert d.stop() == 0
    (req,) = all_requests(node)
    assert req["style"] == "webhook" and req["results"] == ["ok"]
    assert ids_of(req) == ["evt-p0", "evt-p1", "evt-p2"]
    assert req["id"] == batch_id("ep", ["evt-p0", "evt-p1", "evt-p2"])


def test_500_then_200_retries_the_whole_batch_with_its_id(switchyard, node_receiver):
    node = node_receiver([S1], answers={"/r": [500]})
    d = switchyard(sinks=hooks(), endpoints={
        "ep": batch_endpoint(node, "/r", {"max": 10, "linger": "300ms"},
                             retry={"schedule": ["200ms"]})})
    d.push([event(f"evt-r{i}") for i in range(4)])
    s = d.wait_for("deliveries.ok", 4)
    ep = s["endpoints"]["ep"]
    assert (ep["attempts"], ep["attempts_retry"], ep["attempts_ok"], ep["retries"]) == (8, 4, 4, 4)
    assert d.stop() == 0
    first, second = all_requests(node)
    assert (first["status"], second["status"]) == (500, 200)
    assert first["results"] == second["results"] == ["ok"]
    assert first["id"] == second["id"] == batch_id("ep", [f"evt-r{i}" for i in range(4)])
    assert first["body"] == second["body"]
    assert ids_of(first) == [f"evt-r{i}" for i in range(4)]


def test_a_permanent_status_fails_every_member(switchyard, node_receiver):
    node = node_receiver([S1], answers={"/f": [400]})
    d = switchyard(sinks=hooks(), endpoints={
        "ep": batch_endpoint(node, "/f", {"max": 10, "linger": "300ms"},
                             permanent_statuses="400", retry={"schedule": ["100ms"]})})
    d.push([event(f"evt-f{i}") for i in range(3)])
    s = d.wait_for("deliveries.dead", 3)
    ep = s["endpoints"]["ep"]
    assert (ep["attempts"], ep["failed"], ep["ok"]) == (3, 3, 0)
    assert d.stop() == 0
    (req,) = all_requests(node)
    assert req["status"] == 400 and ids_of(req) == ["evt-f0", "evt-f1", "evt-f2"]


def test_members_survive_a_kill_and_are_batched_again(spool_daemon, node_receiver):
    failing = node_receiver([S1], answers={"/k": [503] * 1000})
    ids = [f"evt-k{i}" for i in range(4)]
    d = spool_daemon(sinks=hooks(), endpoints={
        "ep": batch_endpoint(failing, "/k", {"max": 10, "linger": "300ms"},
                             retry={"schedule": ["1s"]})})
    d.push([event(i) for i in ids])
    d.wait_for("endpoints.ep.attempts_retry", 4)
    d.kill9()
    lost = all_requests(failing)
    assert lost and all(r["status"] == 503 and ids_of(r) == ids for r in lost)
    # Restarted on the same spool against a healthy receiver: the members,
    # pending in the spool, go out again when due, batched, each delivered.
    healthy = node_receiver([S1])
    d.endpoints = {"ep": batch_endpoint(healthy, "/k", {"max": 10, "linger": "300ms"},
                                        retry={"schedule": ["1s"]})}
    d.start()
    d.wait_for("deliveries.ok", 4)
    assert d.stop() == 0
    reqs = all_requests(healthy)
    assert all(r["results"] == ["ok"] and r["status"] == 200 for r in reqs)
    got = sum((ids_of(r) for r in reqs), [])
    assert sorted(got) == ids
    # Each batch's id names its members, whatever batch the restart formed.
    assert all(r["id"] == batch_id("ep", ids_of(r)) for r in reqs)


def test_form_endpoints_refuse_the_batch_key(tmp_path):
    write_config(tmp_path,
                 {"plugin_dir": str(PLUGIN_DIR),
                  "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:5999"}]},
                 {"legacy": {"plugin": "form"}},
                 {"wsc": {"sink": "legacy", "url": "https://example.com/notify",
                          "fields": {"scrapingjob_id": "data.job_id"},
                          "batch": {"max": 10}}})
    r = cli("check", "-c", tmp_path)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "endpoints.wsc.batch: the form plugin does not send batches; remove the key (only " \
           "sinks that take it, such as webhook, batch per endpoint)" in err, err
