"""
Endpoints as data (core/api_endpoints.c, core/reloader.c): endpoints
created, changed and deleted through the admin API apply live, sign with a
secret the API made (checked with the official standardwebhooks npm
package), rotate with a grace period, survive restarts, and leave their
pending deliveries as dead letters when deleted. Endpoints of the config
files are listed with source "config" and answer 409 to changes.
"""

from epapi_helpers import Answer, call, epapi_daemon, ok, receiver, refused, sw_verify  # noqa: F401
from test_ops_helpers import event, ops_daemon, wait_until  # noqa: F401 (fixture)

CONFIG_EP = {"cfg": {"sink": "files", "org_id": "acme", "enabled_events": ["audit.*"]}}


def test_created_endpoint_signs_with_the_returned_secret(ops_daemon, tmp_path, receiver):
    d = epapi_daemon(ops_daemon, tmp_path, endpoints=CONFIG_EP)
    url = receiver.url("/h")
    created = ok(call(d, "POST", "/api/v1/endpoints",
                      {"id": "acme.hook", "sink": "hooks", "url": url, "org_id": "acme",
                       "enabled_events": ["job.*"]}), 201)
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    stamp = created["created_at"]
    assert created == {"id": "acme.hook", "source": "api", "sink": "hooks", "url": url,
                       "org_id": "acme", "enabled_events": ["job.*"],
                       "secrets": [{"prefix": secret[:10], "expires_at": None}],
                       "created_at": stamp, "updated_at": stamp, "secret": secret}
    # Later reads show the prefix only.
    r = call(d, "GET", "/api/v1/endpoints/acme.hook")
    got = ok(r)
    assert "secret" not in got and secret[10:] not in r.text
    assert got["secrets"] == [{"prefix": secret[:10], "expires_at": None}]
    listed = {e["id"]: e for e in ok(call(d, "GET", "/api/v1/endpoints"))}
    assert (listed["acme.hook"]["source"], listed["cfg"]["source"]) == ("api", "config")
    assert listed["acme.hook"]["state"] == "active"

    d.push([event("evt-api-1", "job.completed"), event("evt-api-other", "audit.read")])
    (req,) = receiver.wait(1, "/h")
    assert req.headers["svix-id"] == "evt-api-1"
    wrong = "whsec_" + "A" * 44
    assert sw_verify([(secret, req), (wrong, req)]) == ["ok", "No matching signature found"]
    assert secret not in d.log() and secret[6:] not in d.log()
    assert ('msg="endpoint changed through the admin API" change=create endpoint=acme.hook '
            'org="(admin token)"') in d.log()


def test_rotation_keeps_the_old_secret_signing_for_the_grace(ops_daemon, tmp_path, receiver):
    d = epapi_daemon(ops_daemon, tmp_path)
    s1 = ok(call(d, "POST", "/api/v1/endpoints",
                 {"id": "rot", "sink": "hooks", "url": receiver.url("/rot")}), 201)["secret"]
    rot = ok(call(d, "POST", "/api/v1/endpoints/rot/rotate-secret", {"grace": "5s"}))
    s2 = rot["secret"]
    assert s2 != s1 and s2.startswith("whsec_")
    expires = rot["previous_expires_at"]
    assert rot == {"id": "rot", "secret": s2, "previous_expires_at": expires,
                   "secrets": [{"prefix": s2[:10], "expires_at": None},
                               {"prefix": s1[:10], "expires_at": expires}]}
    assert ok(call(d, "GET", "/api/v1/endpoints/rot"))["secrets"] == rot["secrets"]
    d.push([event("evt-during")])
    (during,) = receiver.wait(1, "/rot")
    # Signed while both were live: two signatures, each verifies with its secret.
    assert len(during.headers["svix-signature"].split(" ")) == 2
    assert sw_verify([(s1, during), (s2, during)]) == ["ok", "ok"]
    # The grace ends on its own: the old secret goes without a request.
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/endpoints/rot"))["secrets"]) == 1,
               what="the old secret dropped after its grace")
    assert ok(call(d, "GET", "/api/v1/endpoints/rot"))["secrets"] == \
        [{"prefix": s2[:10], "expires_at": None}]
    d.push([event("evt-after")])
    after = receiver.wait(2, "/rot")[1]
    assert len(after.headers["svix-signature"].split(" ")) == 1
    assert sw_verify([(s1, after), (s2, after)]) == ["No matching signature found", "ok"]
    assert 'msg="rotated-out secrets expired" secrets=1' in d.log()


def test_restart_keeps_endpoints_secrets_and_rotation(ops_daemon, tmp_path, receiver):
    d = epapi_daemon(ops_daemon, tmp_path)
    long_s1 = ok(call(d, "POST", "/api/v1/endpoints",
                      {"id": "long", "sink": "hooks", "url": receiver.url("/long"),
                       "description": "kept"}), 201)["secret"]
    long_s2 = ok(call(d, "POST", "/api/v1/endpoints/long/rotate-secret", {"grace": "1h"}))["secret"]
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "short", "sink": "hooks",
                                             "url": receiver.url("/short")}), 201)
    ok(call(d, "POST", "/api/v1/endpoints/short/rotate-secret", {"grace": "2s"}))
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "plain", "sink": "files"}), 201)
    before = {i: ok(call(d, "GET", f"/api/v1/endpoints/{i}")) for i in ("long", "plain")}
    d.restart()
    assert 'msg="endpoints from the admin API" endpoints=3' in d.run_log()
    for i in ("long", "plain"):
        assert ok(call(d, "GET", f"/api/v1/endpoints/{i}")) == before[i]
    # The rotation goes on: both long secrets sign, and short's grace still ends by itself.
    d.push([event("evt-restarted")])
    (req,) = receiver.wait(1, "/long")
    assert sw_verify([(long_s1, req), (long_s2, req)]) == ["ok", "ok"]
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/endpoints/short"))["secrets"]) == 1,
               what="short's old secret dropped after the restart")


def test_change_and_delete(ops_daemon, tmp_path, receiver):
    receiver.default = Answer(503)
    d = epapi_daemon(ops_daemon, tmp_path, endpoints=CONFIG_EP)
    # Config endpoints are read-only here, and their ids are taken.
    for method, path, body in (("PUT", "/api/v1/endpoints/cfg", {"sink": "files"}),
                               ("PATCH", "/api/v1/endpoints/cfg", {"description": "x"}),
                               ("DELETE", "/api/v1/endpoints/cfg", None),
                               ("POST", "/api/v1/endpoints/cfg/rotate-secret", None)):
        refused(call(d, method, path, body), 409,
                "endpoint cfg is defined in the config files: change it there and reload")
    refused(call(d, "POST", "/api/v1/endpoints", {"id": "cfg", "sink": "files"}), 409,
            "an endpoint with id cfg exists", "id")
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "f1", "sink": "files", "org_id": "acme",
                                             "description": "first"}), 201)
    refused(call(d, "POST", "/api/v1/endpoints", {"id": "f1", "sink": "files"}), 409,
            "an endpoint with id f1 exists", "id")
    # PATCH merges; PUT replaces (the id in a PUT body may repeat the path's).
    p = ok(call(d, "PATCH", "/api/v1/endpoints/f1",
                {"enabled_events": ["job.*"], "description": None, "concurrency": 2}))
    assert {k: p[k] for k in ("sink", "org_id", "enabled_events", "concurrency")} == \
        {"sink": "files", "org_id": "acme", "enabled_events": ["job.*"], "concurrency": 2}
    assert "description" not in p and p["updated_at"] >= p["created_at"]
    put = ok(call(d, "PUT", "/api/v1/endpoints/f1", {"id": "f1", "sink": "files"}))
    assert {k: v for k, v in put.items() if not k.endswith("_at")} == \
        {"id": "f1", "source": "api", "sink": "files"}
    # A webhook endpoint whose receiver keeps failing: its deliveries stay pending...
    ok(call(d, "POST", "/api/v1/endpoints",
            {"id": "gone", "sink": "hooks", "url": receiver.url("/gone"),
             "retry": {"schedule": ["1h"]}}), 201)
    d.push([event(f"evt-del-{i}") for i in range(3)])
    receiver.wait(3, "/gone")
    # Pending from the start; their first attempt is in the spool once "attempts" says so.
    wait_until(lambda: [x["attempts"] for x in ok(call(
                   d, "GET", "/api/v1/deliveries?state=pending&endpoint=gone"))] == [1, 1, 1],
               what="3 pending deliveries to gone, each attempted once")
    # ...and become dead letters when it is deleted, before DELETE answers.
    assert ok(call(d, "DELETE", "/api/v1/endpoints/gone")) == {"id": "gone", "deleted": True}
    dead = ok(call(d, "GET", "/api/v1/deliveries?state=dead&endpoint=gone"))
    assert [(x["event_id"], x["state"], x["last_detail"]) for x in dead] == \
        [(f"evt-del-{i}", "dead", "endpoint deleted") for i in range(3)]
    assert ok(call(d, "GET", "/api/v1/deliveries?state=pending&endpoint=gone")) == []
    refused(call(d, "GET", "/api/v1/endpoints/gone"), 404, "no endpoint with that id")
    refused(call(d, "DELETE", "/api/v1/endpoints/gone"), 404, "no endpoint with that id")
    assert ('msg="deleted endpoint\'s pending deliveries are dead letters" endpoint=gone '
            'deliveries=3') in d.log()
    # Attempts of a delivery, page by page.
    first = dead[0]["id"]
    att = ok(call(d, "GET", f"/api/v1/deliveries/{first}/attempts"))
    assert [(a["attempt"], a["status"], a["outcome"], a["detail"]) for a in att] == \
        [(1, 503, "retry", "HTTP 503")]
    assert ok(call(d, "GET", f"/api/v1/deliveries/{first}/attempts?after={att[0]['id']}")) == []
    # f1 (every event type since the PUT) wrote the three events to its file.
    wait_until(lambda: ok(call(d, "GET", "/api/v1/endpoints/f1/stats"))["attempts_24h"] == 3,
               what="f1's 3 attempts logged")
    assert ok(call(d, "GET", "/api/v1/endpoints/f1/stats")) == \
        {"id": "f1", "state": "active", "success_rate_1h": 1, "success_rate_24h": 1,
         "attempts_1h": 3, "attempts_24h": 3, "last_error": None, "pending": 0, "dead": 0}
    # The id is free again.
    again = ok(call(d, "POST", "/api/v1/endpoints", {"id": "gone", "sink": "files"}), 201)
    assert again["source"] == "api" and "secret" not in again


def test_endpoint_stats(ops_daemon, tmp_path, receiver):
    receiver.on("/st", Answer(500), Answer(200), Answer(200), Answer(410))
    d = epapi_daemon(ops_daemon, tmp_path)
    ok(call(d, "POST", "/api/v1/endpoints",
            {"id": "st", "sink": "hooks", "url": receiver.url("/st"), "concurrency": 1,
             "retry": {"schedule": ["10ms"]}}), 201)
    d.push([event("evt-st-1"), event("evt-st-2"), event("evt-st-3")])
    wait_until(lambda: ok(call(d, "GET", "/api/v1/endpoints/st/stats"))["attempts_24h"] == 4,
               what="4 attempts logged")
    s = ok(call(d, "GET", "/api/v1/endpoints/st/stats"))
    assert s["last_error"]["status"] == 410 and s["last_error"]["outcome"] == "fail"
    at = s.pop("last_error")["at"]
    assert at.endswith("Z")
    assert s == {"id": "st", "state": "active", "success_rate_1h": 0.5, "success_rate_24h": 0.5,
                 "attempts_1h": 4, "attempts_24h": 4, "pending": 0, "dead": 1}
