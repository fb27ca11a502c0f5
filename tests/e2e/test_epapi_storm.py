"""
A storm of endpoint changes through the admin API while events flow:
PATCHes of endpoints that keep receiving, and DELETE/POST of one that
comes and goes. Every acknowledged event reaches every endpoint that was
there all along (at least once), their counters run on across the changes,
and every delivery of the deleted endpoint ends as a dead letter with the
detail "endpoint deleted", none left pending for no endpoint.
"""

from epapi_helpers import Answer, call, epapi_daemon, ok, receiver  # noqa: F401 (fixture)
from test_ops_helpers import AckStream, event, ops_daemon, spool_rows  # noqa: F401 (fixture)
from test_ops_helpers import DEAD, wait_until

STABLE = ["stable-1", "stable-2", "stable-3"]


def test_changes_while_events_flow(ops_daemon, tmp_path, receiver):
    receiver.on("/churn", *([Answer(503)] * 100000))
    d = epapi_daemon(ops_daemon, tmp_path)
    for i in STABLE:
        ok(call(d, "POST", "/api/v1/endpoints",
                {"id": i, "sink": "hooks", "url": receiver.url(f"/{i}"),
                 "retry": {"schedule": ["50ms"]}}), 201)
    churn = {"id": "churn", "sink": "hooks", "url": receiver.url("/churn"),
             "retry": {"schedule": ["1h"]}}
    ok(call(d, "POST", "/api/v1/endpoints", churn), 201)
    stream = AckStream(d.ack_addr, "storm", window=50, pace=0.004).start()
    changes = 0
    n = 0
    while stream.acked_count() < 500:
        n += 1
        i = STABLE[n % 3]
        # A config change of an endpoint that keeps receiving...
        body = {"description": f"v{n}", "concurrency": 1 + n % 4}
        if n % 5 == 0:
            body["rate_limit"] = f"{1000 + n}/s"
        ok(call(d, "PATCH", f"/api/v1/endpoints/{i}", body))
        # ...and one that goes and comes back.
        if n % 2:
            assert ok(call(d, "DELETE", "/api/v1/endpoints/churn"))["deleted"] is True
        else:
            ok(call(d, "POST", "/api/v1/endpoints", churn), 201)
        changes += 2
    acked = stream.finish()
    assert not stream.errors, stream.errors[:5]
    assert changes >= 20, changes
    ids = set(acked)
    # At least once to every endpoint that was there all along.
    for i in STABLE:
        wait_until(lambda: ids <= {r.headers["svix-id"] for r in receiver.got(f"/{i}")},
                   what=f"every acknowledged event at {i}")
    # The shard kept each one's record across every change: its counters ran on.
    eps = {e["id"]: e for e in ok(call(d, "GET", "/api/v1/endpoints"))}
    for i in STABLE:
        assert eps[i]["routed"] == len(ids), (i, eps[i])
        assert eps[i]["source"] == "api"
    # The last word on churn: deleted. Nothing of it stays pending for no endpoint.
    if "churn" in eps:
        ok(call(d, "DELETE", "/api/v1/endpoints/churn"))
    d.push([event("after-the-storm")])
    wait_until(lambda: all("after-the-storm" in {r.headers["svix-id"]
                                                 for r in receiver.got(f"/{i}")}
                           for i in STABLE), what="a later event at the stable endpoints")
    rows = spool_rows(d.spool_path, "churn")
    assert rows, "churn got no delivery during the storm"
    assert [r for r in rows if r["state"] != DEAD] == []
    dead = []
    after = 0
    while True:
        page = ok(call(d, "GET", f"/api/v1/deliveries?state=dead&endpoint=churn&after={after}"
                                 f"&limit=1000"))
        if not page:
            break
        dead += page
        after = page[-1]["id"]
    assert len(dead) == len(rows)
    assert {x["last_detail"] for x in dead} == {"endpoint deleted"}
    assert "after-the-storm" not in {x["event_id"] for x in dead}
