"""
Several nodes on one database (core.store postgres, core.cluster), on a
real PostgreSQL (pg_helpers.py), with a lease timeout of 3 s.

  - Three nodes share the 256 partitions fairly (86, 85, 85). 20,000 events
    published with acknowledgements to all three at once; one node is
    killed with SIGKILL, then a second. Every acknowledged event is
    delivered; its partitions are taken over within lease_timeout and a
    few seconds; an event delivered twice is one the killed node had
    delivered but not yet recorded (an attempt in flight at the kill),
    and there are no more duplicates than those. The publisher runs in a
    process of its own (cluster_helpers.Publisher): a libzmq abort under
    this load fails this test with its stderr, not the whole run.
  - A rate limit of "600/min" holds across the cluster and across a
    takeover: the new owner counts the old owner's attempts of the last
    minute, and those it may have had in flight.
  - A node that joins takes a fair share; one that stops (SIGTERM) gives
    its partitions back at once.
  - Any node answers for the cluster: dead letters, replay, attempts, an
    endpoint's health and the feed of events published to another node,
    and cluster gauges in /metrics.
  - Fencing: an owner paused (SIGSTOP) past its lease has the outcome of
    its attempt in flight refused by the database when it resumes.

Under the sanitizers (make check) only the fencing test runs: the others
are minutes of real nodes, and the normal build runs them.
"""

import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from cluster_helpers import (Cluster, MultiAck, Publisher, fnv_part, partition_owners,
                             read_ids)
from durability_helpers import (DEAD, DONE, event, file_sink, flaky_calls, flaky_sink,
                                max_starts_in_window, wait_until)
from conftest import SANITIZED, free_ports
from pg_helpers import pg_server  # noqa: F401 (fixture)

LONG = pytest.mark.skipif(SANITIZED, reason="minutes of real nodes: the normal build runs it")

LEASE_S = 3


def wait_fair(cl, names, what):
    shares = {3: [86, 85, 85], 2: [128, 128], 1: [256]}[len(names)]
    want = dict(zip(sorted(names), shares))
    return wait_until(lambda: partition_owners(cl) == want, timeout=LEASE_S + 10,
                      what=f"{what}: partitions shared {want}",
                      on_timeout=lambda: str(partition_owners(cl)))


def done_ids(cl):
    return {r["event_id"] for r in cl.query(
        "SELECT e.event_id FROM deliveries d JOIN events e ON e.id = d.event_rowid "
        "WHERE d.state = 1")}


@LONG
def test_three_nodes_kill9_one_then_another(tmp_path, pg_server):
    n_events, n_eps = 20_000, 20
    out = tmp_path / "out"
    endpoints = {f"ep{i:02d}": {"sink": "files", "enabled_events": ["*"],
                                "filter": {"data.k": i}} for i in range(n_eps)}
    cl = Cluster(tmp_path, pg_server, 3, lambda n: {"files": file_sink(out / f"{n}.jsonl")},
                 endpoints, lease=f"{LEASE_S}s").start()
    try:
        wait_fair(cl, ["n1", "n2", "n3"], "three nodes")
        items = [(f"c-{i:05d}", event(f"c-{i:05d}", data={"k": i % n_eps, "n": i}))
                 for i in range(n_events)]
        # In a child process: a libzmq abort under this load fails this test, not the run.
        pub = Publisher(tmp_path / "publisher", [n.ack_addr for n in cl.nodes], items)
        in_flight, took = [], []
        try:
            for victim, mark in ((cl.nodes[1], 6000), (cl.nodes[2], 12000)):
                wait_until(lambda: pub.acked() >= mark or not pub.alive(), timeout=120,
                           interval=0.02, what=f"{mark} acknowledgements")
                victim.kill9()
                t_kill = time.monotonic()
                # What the killed node delivered but had not recorded: its attempts in flight.
                delivered = set(read_ids(out / f"{victim.name}.jsonl"))
                in_flight.append(delivered - done_ids(cl))
                survivors = [n.name for n in cl.alive()]
                wait_fair(cl, survivors, f"after killing {victim.name}")
                took.append(time.monotonic() - t_kill)
            answers = pub.answers(timeout=240)
        finally:
            pub.kill()
        assert len(answers) == n_events, f"{n_events - len(answers)} events never answered"
        for eid, texts in answers.items():
            assert all(x in (f"ok {eid}", f"dup {eid}") for x in texts), (eid, texts)

        def all_ids():
            return [i for n in cl.nodes for i in read_ids(out / f"{n.name}.jsonl")]

        wait_until(lambda: set(all_ids()) >= set(answers), timeout=120,
                   what="every acknowledged event delivered",
                   on_timeout=lambda: f"missing {len(set(answers) - set(all_ids()))}")
        wait_until(lambda: cl.spool.states() == {DONE: n_events}, timeout=60,
                   what="every delivery done in the store", on_timeout=lambda: cl.spool.states())
        got = all_ids()
        seen, dups = set(), []
        for i in got:
            if i in seen:
                dups.append(i)
            seen.add(i)
        bound = set().union(*in_flight)
        print(f"\n3 nodes, {n_events} events: takeovers in {[round(x, 1) for x in took]} s "
              f"(lease {LEASE_S} s); attempts in flight at the kills "
              f"{[len(x) for x in in_flight]}; {len(dups)} duplicates")
        assert set(dups) <= bound, f"duplicates the kills do not explain: {set(dups) - bound}"
        assert len(dups) <= sum(len(x) for x in in_flight)
        assert set(got) == set(answers)
    finally:
        cl.stop()


@LONG
def test_rate_limit_holds_across_the_cluster_and_a_takeover(tmp_path, pg_server):
    logs = {}

    def sinks(name):
        logs[name] = tmp_path / f"flaky-{name}.log"
        return {"flaky": flaky_sink(logs[name])}

    endpoints = {"limited": {"sink": "flaky", "enabled_events": ["*"], "breaker": False,
                             "rate_limit": "600/min"}}
    cl = Cluster(tmp_path, pg_server, 3, sinks, endpoints, lease=f"{LEASE_S}s").start()
    try:
        wait_fair(cl, ["n1", "n2", "n3"], "three nodes")
        part = fnv_part("limited")
        owner = cl.query(f"SELECT owner FROM partitions WHERE id = {part}")[0]["owner"]
        n = 700
        with MultiAck([x.ack_addr for x in cl.nodes]) as c:
            answers = c.publish_all([(f"r-{i:03d}", event(f"r-{i:03d}")) for i in range(n)],
                                    deadline=60)
        assert all(v[0].startswith("ok ") for v in answers.values()) and len(answers) == n

        def calls():
            return [x for name in logs for x in flaky_calls(logs[name])]

        wait_until(lambda: len(calls()) >= 600, timeout=60, what="600 deliveries")
        wait_until(lambda: cl.spool.states().get(DONE, 0) >= 600, timeout=30,
                   what="600 recorded done")
        victim = next(x for x in cl.nodes if x.name == owner)
        assert len(flaky_calls(logs[owner])) == 600  # the owner made them all
        victim.kill9()
        wait_fair(cl, [x.name for x in cl.alive()], f"after killing {owner}")
        new_owner = cl.query(f"SELECT owner FROM partitions WHERE id = {part}")[0]["owner"]
        assert new_owner != owner
        wait_until(lambda: len(calls()) >= n, timeout=120, what=f"all {n} delivered",
                   on_timeout=lambda: f"{len(calls())} delivered")
        got = calls()
        assert sorted(x["event_id"] for x in got) == sorted(answers)  # each exactly once
        starts = [x["start_us"] for x in got]
        ends = [x["end_us"] for x in got]
        most = max_starts_in_window(starts, 60_000_000)
        assert most <= 600, f"{most} deliveries started within one minute (limit 600/min)"
        assert max_starts_in_window(ends, 60_000_000) <= 600
        late = [x for x in got if x["event_id"] not in
                {y["event_id"] for y in flaky_calls(logs[owner])}]
        assert len(late) == n - 600 and {x["endpoint"] for x in late} == {"limited"}
        first_end = min(ends)
        assert min(x["start_us"] for x in late) - first_end >= 60_000_000 - 1000
    finally:
        cl.stop()


def api(node, path, method="GET", body=None):
    req = urllib.request.Request(f"http://{node.admin}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {node.token}",
                                          "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@LONG
def test_leaving_node_hands_over_and_any_node_answers(tmp_path, pg_server):
    out = tmp_path / "out"
    logs = {}
    token = "cluster-test-token-0123456789"

    def sinks(name):
        logs[name] = tmp_path / f"bad-{name}.log"
        return {"files": file_sink(out / f"{name}.jsonl"),
                "bad": flaky_sink(logs[name], fail_times=1, fail_mode="fail")}

    endpoints = {"good": {"sink": "files", "enabled_events": ["*"]},
                 "bad": {"sink": "bad", "enabled_events": ["*"]}}
    cl = Cluster(tmp_path, pg_server, 2, sinks, endpoints, lease=f"{LEASE_S}s")
    for node in cl.nodes:
        node.admin = f"127.0.0.1:{free_ports(1)[0]}"
        node.token = token
        node.core_extra["admin"] = {"listen": node.admin, "token": token}
    cl.start()
    try:
        wait_fair(cl, ["n1", "n2"], "two nodes")
        n1, n2 = cl.nodes
        part = fnv_part("bad")
        owner = cl.query(f"SELECT owner FROM partitions WHERE id = {part}")[0]["owner"]
        own, other = (n1, n2) if owner == "n1" else (n2, n1)
        # Published to the node that does not own "bad": the owner delivers it (a NOTIFY
        # wakes it), the dead letter is listed and replayed through the other node, and
        # the owner attempts it again (attempt 1 of a replayed delivery fails once more).
        with MultiAck([other.ack_addr]) as c:
            assert c.request(event("evt-x1"), tag=b"x") == "ok evt-x1"
        wait_until(lambda: cl.spool.states("bad") == {DEAD: 1}, timeout=30, what="a dead letter")
        assert [x["event_id"] for x in flaky_calls(logs[own.name])] == ["evt-x1"]
        status, body = api(other, "/api/v1/deliveries?state=dead")
        dead = json.loads(body)
        assert status == 200 and [(d["endpoint"], d["event_id"]) for d in dead] == \
            [("bad", "evt-x1")]
        status, body = api(other, f"/api/v1/deliveries/{dead[0]['id']}/replay", "POST")
        assert status == 200
        wait_until(lambda: len(flaky_calls(logs[own.name])) == 2, timeout=30,
                   what="the replayed delivery attempted by the partition's owner")
        wait_until(lambda: cl.spool.states("bad") == {DEAD: 1}, timeout=30,
                   what="the replayed delivery dead again")
        assert [(x["event_id"], x["attempt"]) for x in flaky_calls(logs[own.name])] == \
            [("evt-x1", 1), ("evt-x1", 1)]
        assert flaky_calls(logs[other.name]) == []
        # Its attempts log and the endpoint's health, from the store, answered by the other node.
        status, body = api(other, f"/api/v1/deliveries/{dead[0]['id']}/attempts")
        assert status == 200
        assert [(a["attempt"], a["status"], a["outcome"], a["detail"])
                for a in json.loads(body)] == [(1, 400, "fail", "flaky: attempt 1 of 1 fails")] * 2
        status, body = api(other, "/api/v1/endpoints/bad/stats")
        st = json.loads(body)
        assert status == 200 and (st["attempts_1h"], st["attempts_24h"], st["success_rate_1h"],
                                  st["pending"], st["dead"]) == (2, 2, 0, 0, 1), st
        assert (st["last_error"]["status"], st["last_error"]["outcome"],
                st["last_error"]["detail"]) == (400, "fail", "flaky: attempt 1 of 1 fails"), st
        assert sorted(read_ids(out / "n1.jsonl") + read_ids(out / "n2.jsonl")) == ["evt-x1"]
        feed = wait_until(lambda: json.loads(api(n2, "/api/v1/events")[1])["events"],
                          timeout=30, what="the event in n2's feed")
        # (and the system events of its deaths, published by the owner)
        assert [e["event"]["event_id"] for e in feed
                if e["event"]["event_type"] == "job.completed"] == ["evt-x1"]
        metrics = api(n2, "/metrics")[1]
        for line in ("switchyard_cluster_nodes 2", 'switchyard_cluster_partitions{node="n1"} 128',
                     'switchyard_cluster_partitions{node="n2"} 128',
                     "switchyard_cluster_partitions_unowned 0",
                     "switchyard_cluster_partitions_owned 128"):
            assert line + "\n" in metrics, (line, metrics)
        # The endpoint store (API endpoints, org tokens, portal links) lives only in a SQLite
        # spool, and the answer says so rather than blaming a spool: null.
        no_store = ("; this daemon's store is PostgreSQL, and the endpoint store (API endpoints, "
                    "org tokens, portal links) is kept only in a SQLite spool")
        status, body = api(n2, "/api/v1/endpoints", "POST",
                           {"id": "api-made", "sink": "files", "enabled_events": ["*"]})
        assert (status, json.loads(body)["error"]) == \
            (501, "endpoints are stored in the spool" + no_store)
        status, body = api(n2, "/api/v1/portal-sessions", "POST", {"org_id": "acme"})
        assert (status, json.loads(body)["error"]) == \
            (501, "portal sessions are org tokens, stored in the spool" + no_store)
        # n2 stops: its partitions go back and n1 takes them without waiting for the lease.
        t0 = time.monotonic()
        assert n2.stop() == 0
        wait_fair(cl, ["n1"], "after n2 left")
        handover = time.monotonic() - t0
        assert "cluster left" in n2.log() and "given_back=128" in n2.log(), n2.log()[-2000:]
        print(f"\nn2 left; n1 held every partition {handover:.1f}s after SIGTERM")
        assert handover < LEASE_S, "the partitions waited for the lease to run out"
    finally:
        cl.stop()


def test_paused_owner_is_fenced_after_its_lease_expired(tmp_path, pg_server):
    """
    The owner of an endpoint's partition is paused (SIGSTOP) while an attempt is
    inside its plugin. Its lease runs out, the other node takes the partition and
    delivers the event itself. When the paused node resumes, its plugin returns
    and it tries to record the outcome: the database refuses it (the epoch it
    holds is no longer the partition's), and the store keeps the new owner's.
    """
    holds = {}

    def sinks(name):
        holds[name] = tmp_path / f"hold-{name}"
        return {"flaky": flaky_sink(tmp_path / f"flaky-{name}.log", hold=str(holds[name]))}

    endpoints = {"held": {"sink": "flaky", "enabled_events": ["*"]}}
    cl = Cluster(tmp_path, pg_server, 2, sinks, endpoints, lease=f"{LEASE_S}s").start()
    paused = None
    try:
        wait_fair(cl, ["n1", "n2"], "two nodes")
        part = fnv_part("held")
        owner = cl.query(f"SELECT owner FROM partitions WHERE id = {part}")[0]["owner"]
        old, new = (cl.nodes[0], cl.nodes[1]) if owner == "n1" else (cl.nodes[1], cl.nodes[0])
        holds[new.name].touch()  # the other node's calls return at once
        old_epoch = cl.query(f"SELECT epoch FROM partitions WHERE id = {part}")[0]["epoch"]
        with MultiAck([new.ack_addr]) as c:
            assert c.request(event("evt-f1"), tag=b"f") == "ok evt-f1"
        old.wait_for("sinks.flaky.calls", 1)  # inside the plugin, held there
        old.proc.send_signal(signal.SIGSTOP)
        paused = old
        wait_fair(cl, [new.name], f"after pausing {old.name}")
        wait_until(lambda: cl.spool.states() == {DONE: 1}, timeout=30,
                   what="the event delivered by the new owner")
        assert [x["event_id"] for x in flaky_calls(tmp_path / f"flaky-{new.name}.log")] == \
            ["evt-f1"]
        new_epoch = cl.query(f"SELECT epoch FROM partitions WHERE id = {part}")[0]["epoch"]
        assert new_epoch > old_epoch
        holds[old.name].touch()
        old.proc.send_signal(signal.SIGCONT)
        paused = None
        old.wait_for("deliveries.fenced", 1)
        # The store counts the refused outcome, then logs it.
        wait_until(lambda: "outcomes refused: their partition passed to another tenure"
                   in old.log(), what="the refusal logged", on_timeout=lambda: old.log()[-3000:])
        # The old owner's call returned too (the attempt it had in flight at the pause),
        # but the store holds only the new owner's record of it.
        wait_until(lambda: len(flaky_calls(tmp_path / f"flaky-{old.name}.log")) == 1,
                   what="the paused call's return")
        rows = cl.spool.deliveries()
        assert [(r["event_id"], r["state"], r["attempt"]) for r in rows] == \
            [("evt-f1", DONE, 1)]
        assert [(a["attempt"], a["result"]) for a in cl.spool.attempts()] == [(1, 0)]
        # The paused node rejoins and takes a fair share again, under new epochs.
        wait_fair(cl, ["n1", "n2"], f"{old.name} back")
        with MultiAck([old.ack_addr]) as c:
            assert c.request(event("evt-f2"), tag=b"f") == "ok evt-f2"
        wait_until(lambda: cl.spool.states() == {DONE: 2}, timeout=30, what="evt-f2 delivered")
        calls = [x["event_id"] for n in cl.nodes
                 for x in flaky_calls(tmp_path / f"flaky-{n.name}.log")]
        assert sorted(calls) == ["evt-f1", "evt-f1", "evt-f2"]
        assert old.stat("deliveries.fenced") == 1
    finally:
        if paused is not None:
            paused.proc.send_signal(signal.SIGCONT)
        cl.stop()
