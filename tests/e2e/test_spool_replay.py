"""
Dead letters and `switchyard replay`: deliveries that fail permanently stay
in the spool as dead (state 2); `replay --list` shows them; after the
receiver is fixed, `replay` with filters puts exactly the matching ones back
to pending and a running daemon delivers them (its pager looks every 200 ms).
The admin API's reads the portal uses (filters, newest first, event types,
an endpoint's dead letters replayed) give the same answers on both stores.
"""

import re
import time

from conftest import free_ports
from durability_helpers import (both_backends, DEAD, DONE, event, flaky_calls, flaky_sink, replay,
                                spool_daemon, wait_until, write_config)  # noqa: F401
from test_ops_helpers import http

STORE_BACKENDS = both_backends



def first_two(log):
    """The first attempts of the two events: they may run side by side, in either order."""
    return sorted(calls(log)[:2])

def replay_daemon(spool_daemon, tmp_path):
    bad_log, good_log = tmp_path / "bad.log", tmp_path / "good.log"
    d = spool_daemon(sinks={"bad": flaky_sink(bad_log, fail_times=1000, fail_mode="fail"),
                            "good": flaky_sink(good_log)},
                     endpoints={"ep": {"sink": "bad", "enabled_events": ["job.*"]},
                                "other": {"sink": "good", "enabled_events": ["job.*"]}})
    d.bad_log, d.good_log = bad_log, good_log
    return d


def calls(log):
    return [(c["event_id"], c["attempt"]) for c in flaky_calls(log)]


def test_dead_then_list_then_replay_after_fix(spool_daemon, tmp_path):
    d = replay_daemon(spool_daemon, tmp_path)
    d.push([event("evt-r1"), event("evt-r2", org="globex")])
    d.wait_for("deliveries.dead", 2)
    d.wait_for("deliveries.ok", 2)
    wait_until(lambda: d.spool.states("ep") == {DEAD: 2}, timeout=10,
               what="two dead deliveries in the spool", on_timeout=lambda: d.spool.states())
    for row in d.spool.deliveries("ep"):
        assert (row["state"], row["attempt"], row["last_status"], row["last_detail"]) == \
            (DEAD, 1, 400, "flaky: attempt 1 of 1000 fails"), row

    # --list, running daemon: one line per dead delivery, then the count.
    rc, out, err = d.replay("--list")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[-1] == "2 dead deliveries match", out
    assert len(lines) == 3, out
    # Listed in the order they died; the two run side by side, so either order.
    for line, eid in zip(sorted(lines[:2], key=lambda l: "evt-r2" in l), ["evt-r1", "evt-r2"]):
        assert re.match(rf"^ep\s+{eid}\s+attempts=1\s+status=400\s+died=\d{{4}}-\d\d-\d\dT"
                        rf"\d\d:\d\d:\d\dZ\s+flaky: attempt 1 of 1000 fails$", line), line
    assert d.replay("--list", "--endpoint", "other")[1] == "0 dead deliveries match\n"
    assert d.replay("--list", "--event", "evt-r2")[1].splitlines()[-1] == \
        "1 dead delivery match"
    assert d.replay("--list", "--since", "1h")[1].splitlines()[-1] == "2 dead deliveries match"

    # Filters that match nothing put nothing back.
    for args in (["--endpoint", "other"], ["--event", "evt-none"],
                 ["--endpoint", "ep", "--event", "evt-none"], ["--until", "1h"],
                 ["--since", "2099-01-01T00:00:00Z"],
                 ["--until", "2001-01-01T00:00:00Z"]):
        rc, out, err = d.replay(*args)
        assert (rc, out) == (0, "0 dead deliveries put back to pending\n"), (args, out, err)
    assert d.spool.states("ep") == {DEAD: 2}
    # An endpoint neither the config nor the spool knows is a mistake (test_cli.py).
    assert d.replay("--endpoint", "nope")[0] == 1
    rc, out, err = d.replay("--since", "yesterday")
    assert rc == 2 and "neither a duration" in err, (rc, out, err)

    # Fix the receiver: a config where ep's sink succeeds, and restart.
    assert d.stop() == 0
    d.sinks["bad"]["fail_times"] = 0
    d.start()
    time.sleep(0.5)  # a dead delivery is not retried by itself
    assert first_two(d.bad_log) == [("evt-r1", 1), ("evt-r2", 1)]

    # One event, by id and endpoint: delivered within moments, attempt count fresh.
    t0 = time.monotonic()
    rc, out, err = d.replay("--endpoint", "ep", "--event", "evt-r1")
    assert (rc, out) == (0, "1 dead delivery put back to pending\n"), (out, err)
    d.wait_for("deliveries.ok", 1, timeout=10)
    took = time.monotonic() - t0
    assert first_two(d.bad_log) == [("evt-r1", 1), ("evt-r2", 1)]
    assert calls(d.bad_log)[2:] == [("evt-r1", 1)]
    wait_until(lambda: d.spool.states("ep") == {DEAD: 1, DONE: 1}, timeout=10,
               what="evt-r1 done, evt-r2 still dead", on_timeout=lambda: d.spool.states())
    # The rest of the endpoint.
    rc, out, err = d.replay("--endpoint", "ep")
    assert (rc, out) == (0, "1 dead delivery put back to pending\n"), (out, err)
    d.wait_for("deliveries.ok", 2, timeout=10)
    wait_until(lambda: d.spool.states("ep") == {DONE: 2}, timeout=10,
               what="both replayed deliveries done", on_timeout=lambda: d.spool.states())
    assert d.replay("--endpoint", "ep")[1] == "0 dead deliveries put back to pending\n"
    assert d.replay("--list")[1] == "0 dead deliveries match\n"
    assert first_two(d.bad_log) == [("evt-r1", 1), ("evt-r2", 1)]
    assert calls(d.bad_log)[2:] == [("evt-r1", 1), ("evt-r2", 1)]
    # "other" was never touched by any of this.
    assert sorted(calls(d.good_log)) == [("evt-r1", 1), ("evt-r2", 1)]
    print(f"\nreplayed delivery made {took * 1000:.0f} ms after `switchyard replay` returned")


def test_replay_while_the_receiver_still_fails_dies_again(spool_daemon, tmp_path):
    d = replay_daemon(spool_daemon, tmp_path)
    d.push([event("evt-a1")])
    d.wait_for("deliveries.dead", 1)
    wait_until(lambda: d.spool.states("ep") == {DEAD: 1}, timeout=10, what="dead in the spool")
    assert d.replay("--endpoint", "ep")[1] == "1 dead delivery put back to pending\n"
    d.wait_for("deliveries.dead", 2)
    wait_until(lambda: d.spool.states("ep") == {DEAD: 1}, timeout=10, what="dead again")
    assert calls(d.bad_log) == [("evt-a1", 1), ("evt-a1", 1)]


def test_replay_needs_a_spool(tmp_path):
    conf = tmp_path / "conf.d"
    write_config(conf, {"ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
                        "spool": None},
                 {"f": {"plugin": "file", "path": str(tmp_path / "x")}},
                 {"e": {"sink": "f"}})
    rc, out, err = replay(conf, "--list")
    assert rc == 2 and "spool: null" in err, (rc, out, err)


def test_portal_reads_through_the_store(spool_daemon, tmp_path):
    """
    The admin API's reads the portal uses, on either store: deliveries by
    event type and arrival time, newest first by a `before` keyset, each with
    received_ms; the event feed newest first; the event types seen; and every
    dead delivery of one endpoint replayed at once.
    """
    token = "portal-reads-token-0123456789"
    admin = f"127.0.0.1:{free_ports(1)[0]}"
    bad_log, good_log = tmp_path / "bad.log", tmp_path / "good.log"
    d = spool_daemon(sinks={"bad": flaky_sink(bad_log, fail_times=1000, fail_mode="fail"),
                            "good": flaky_sink(good_log)},
                     endpoints={"ep": {"sink": "bad", "enabled_events": ["job.*"]},
                                "other": {"sink": "good", "enabled_events": ["job.*"]}},
                     core={"admin": {"listen": admin, "token": token}})
    for eid, etype in (("p-1", "job.a"), ("p-2", "job.b"), ("p-3", "job.a")):
        d.push([event(eid, event_type=etype)])
        d.wait_for("deliveries.ok", int(eid[-1]))
    d.wait_for("deliveries.dead", 3)
    # The spool records a death one commit after the counter moved; what follows reads it.
    wait_until(lambda: d.spool.states("ep") == {DEAD: 3}, timeout=10,
               what="the three deaths in the spool", on_timeout=lambda: d.spool.states())

    def get(path):
        r = http(f"http://{admin}", "GET", path, token=token)
        assert r.status == 200, (path, r)
        return r.json()

    every = get("/api/v1/deliveries")
    assert len(every) == 6 and [x["id"] for x in every] == sorted(x["id"] for x in every)
    arrived = {x["event_id"]: x["received_ms"] for x in every}
    assert sorted(arrived) == ["p-1", "p-2", "p-3"] and all(v > 0 for v in arrived.values())
    # Newest first, two a page, each page below the last one's id.
    pages, before = [], 0
    while True:
        page = get(f"/api/v1/deliveries?order=desc&limit=2&before={before}")
        if not page:
            break
        pages.append([x["id"] for x in page])
        before = page[-1]["id"]
    ids = [x["id"] for x in every]
    assert pages == [ids[::-1][i:i + 2] for i in range(0, 6, 2)]
    typed = get("/api/v1/deliveries?event_type=job.a&endpoint=ep")
    assert [x["event_id"] for x in typed] == ["p-1", "p-3"]
    t2 = arrived["p-2"]
    window = get(f"/api/v1/deliveries?since={t2}&until={t2 + 1}&state=dead")
    assert sorted(x["event_id"] for x in window) == \
        sorted(e for e, t in arrived.items() if t == t2)
    # (each death also raised a webhook.delivery_failed system event, stored like the others)
    assert get("/api/v1/event-types") == {"event_types": ["job.a", "job.b",
                                                          "webhook.delivery_failed"]}
    # Newest first is the oldest-first feed backwards (which, on PostgreSQL, shows events
    # stored two seconds ago and earlier), page by page below the last cursor.
    asc = wait_until(lambda: (lambda f: f if len(f) == 6 else None)(
        get("/api/v1/events?limit=100")["events"]), timeout=30, what="six events in the feed")
    assert [e["event"]["event_id"] for e in asc if e["event"]["event_type"] != \
            "webhook.delivery_failed"] == ["p-1", "p-2", "p-3"]
    desc, before = [], 0
    while True:
        page = get(f"/api/v1/events?order=desc&limit=4&before={before}")
        if not page["events"]:
            assert page["next"] == before
            break
        assert page["next"] == page["events"][-1]["cursor"]
        desc.append([e["cursor"] for e in page["events"]])
        before = page["next"]
    assert desc == [[e["cursor"] for e in asc[::-1][:4]], [e["cursor"] for e in asc[::-1][4:]]]

    r = http(f"http://{admin}", "POST", "/api/v1/endpoints/ep/replay-dead", token=token)
    assert (r.status, r.json()) == (200, {"endpoint": "ep", "replayed": 3})
    wait_until(lambda: len(calls(bad_log)) == 6, timeout=30, what="the three replayed attempts")
    wait_until(lambda: d.spool.states("ep") == {DEAD: 3}, timeout=30,
               what="the replayed deliveries dead again", on_timeout=lambda: d.spool.states())
    assert sorted(calls(bad_log)) == sorted([("p-1", 1), ("p-2", 1), ("p-3", 1)] * 2)
