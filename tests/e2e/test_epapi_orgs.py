"""
Per-org API tokens (core/api_tokens.c): the admin token makes, lists and
revokes them; an org token sees and manages only its org's endpoints,
deliveries, attempts and events. Every documented route is probed with
another org's ids, and every probe gets the same 404 an unknown id gets.
"""

import json
import sqlite3

from conftest import ROOT
from epapi_helpers import call, epapi_daemon, ok, refused
from test_ops_helpers import event, ops_daemon, wait_until  # noqa: F401 (fixture)

OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())
METHODS = ("get", "put", "post", "patch", "delete")


def setup_orgs(ops_daemon, tmp_path):
    d = epapi_daemon(ops_daemon, tmp_path, endpoints={
        "acme-cfg": {"sink": "files", "org_id": "acme"},
        "beta-cfg": {"sink": "files", "org_id": "beta"},
        "platform": {"sink": "files"}})
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "beta-api", "sink": "files",
                                             "org_id": "beta"}), 201)
    tokens = {}
    for org in ("acme", "beta"):
        t = ok(call(d, "POST", "/api/v1/tokens", {"org_id": org, "name": f"{org} portal",
                                                  "expires": "90d"}), 201)
        assert t["token"].startswith("syt_") and len(t["token"]) == 4 + 43
        assert t["org_id"] == org and t["name"] == f"{org} portal"
        tokens[org] = t
    d.push([event("a-1", org="acme"), event("b-1", org="beta"), event("n-1", org=None)])
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries?state=done"))) == 6,
               what="6 deliveries done")
    return d, tokens


def test_tokens_are_made_listed_and_revoked_by_the_admin_only(ops_daemon, tmp_path):
    d, tokens = setup_orgs(ops_daemon, tmp_path)
    listed = ok(call(d, "GET", "/api/v1/tokens"))
    assert [(t["id"], t["org_id"], t["name"], t["expired"]) for t in listed] == \
        [(tokens[o]["id"], o, f"{o} portal", False) for o in ("acme", "beta")]
    assert all("token" not in t for t in listed)
    assert tokens["acme"]["token"] not in d.log() and tokens["acme"]["token"] not in \
        call(d, "GET", "/api/v1/tokens").text
    # Only the hash is stored.
    db = sqlite3.connect(f"file:{d.spool_path}?mode=ro", uri=True)
    raw = db.execute("SELECT group_concat(quote(hash)) FROM api_tokens").fetchone()[0]
    db.close()
    assert tokens["acme"]["token"] not in raw
    acme = tokens["acme"]["token"]
    for method, path, body in (("GET", "/api/v1/tokens", None),
                               ("POST", "/api/v1/tokens", {"org_id": "acme"}),
                               ("DELETE", f"/api/v1/tokens/{tokens['beta']['id']}", None)):
        refused(call(d, method, path, body, token=acme), 404, "no such API path")
    for body, key, msg in (({"name": "x"}, "org_id", "a token belongs to one org: give org_id"),
                           ({"org_id": ""}, "org_id",
                            "expected the org's id: 1-128 printable characters"),
                           ({"org_id": "a", "expires": "soon"}, "expires",
                            "expected a duration like \"90d\" or \"12h\", or null for never"),
                           ({"org_id": "a", "scope": "all"}, "scope",
                            "unknown key (expected org_id, name, expires)")):
        refused(call(d, "POST", "/api/v1/tokens", body), 400, msg, key)
    # Revoked and expired tokens are unknown tokens.
    assert ok(call(d, "DELETE", f"/api/v1/tokens/{tokens['beta']['id']}")) == \
        {"id": tokens["beta"]["id"], "deleted": True}
    refused(call(d, "DELETE", f"/api/v1/tokens/{tokens['beta']['id']}"), 404,
            "no token with that id")
    refused(call(d, "GET", "/api/v1/endpoints", token=tokens["beta"]["token"]), 401,
            "missing or wrong bearer token")
    short = ok(call(d, "POST", "/api/v1/tokens", {"org_id": "acme", "expires": "300ms"}), 201)
    wait_until(lambda: call(d, "GET", "/api/v1/endpoints", token=short["token"]).status == 401,
               what="the short token expired")
    assert [t["expired"] for t in ok(call(d, "GET", "/api/v1/tokens"))
            if t["id"] == short["id"]] == [True]


def test_an_org_token_sees_only_its_org(ops_daemon, tmp_path):
    d, tokens = setup_orgs(ops_daemon, tmp_path)
    acme = tokens["acme"]["token"]
    # Creating forces the org; naming another org is refused.
    made = ok(call(d, "POST", "/api/v1/endpoints", {"id": "acme-api", "sink": "files"},
                   token=acme), 201)
    assert made["org_id"] == "acme"
    refused(call(d, "POST", "/api/v1/endpoints",
                 {"id": "sneaky", "sink": "files", "org_id": "beta"}, token=acme), 400,
            "this token manages the endpoints of org \"acme\" only", "endpoints.sneaky.org_id")
    refused(call(d, "POST", "/api/v1/endpoints",
                 {"id": "sneaky", "sink": "files", "org_id": None}, token=acme), 400,
            "this token manages the endpoints of org \"acme\" only", "endpoints.sneaky.org_id")
    assert [e["id"] for e in ok(call(d, "GET", "/api/v1/endpoints", token=acme))] == \
        ["acme-cfg", "acme-api"]
    mine = ok(call(d, "GET", "/api/v1/deliveries", token=acme))
    assert [(x["endpoint"], x["event_id"]) for x in mine] == [("acme-cfg", "a-1")]
    events = ok(call(d, "GET", "/api/v1/events", token=acme))
    assert [e["event"]["event_id"] for e in events["events"]] == ["a-1"]
    assert ok(call(d, "GET", f"/api/v1/deliveries/{mine[0]['id']}/attempts", token=acme))[0][
        "outcome"] == "ok"
    # Config endpoints of its org answer 409 to changes, as for the admin.
    refused(call(d, "PATCH", "/api/v1/endpoints/acme-cfg", {"description": "x"}, token=acme),
            409, "endpoint acme-cfg is defined in the config files: change it there and reload")
    assert ok(call(d, "POST", "/api/v1/endpoints/acme-cfg/test", token=acme), 202)["endpoint"] \
        == "acme-cfg"


def test_every_route_answers_404_to_another_orgs_ids(ops_daemon, tmp_path):
    d, tokens = setup_orgs(ops_daemon, tmp_path)
    acme = tokens["acme"]["token"]
    # What belongs to beta, or to no org (the platform's own endpoint).
    beta_dlv = [x["id"] for x in ok(call(d, "GET", "/api/v1/deliveries"))
                if x["endpoint"] in ("beta-api", "beta-cfg", "platform")]
    assert len(beta_dlv) == 5  # beta-api, beta-cfg and platform (all three events)
    others = {"endpoint": ["beta-api", "beta-cfg", "platform", "nobody"],
              "delivery": [str(i) for i in beta_dlv] + ["999999"],
              "token": [tokens["beta"]["id"], tokens["acme"]["id"]]}
    not_found = {"endpoint": "no endpoint with that id", "delivery": "no delivery with that id",
                 "token": "no such API path"}
    probes = 0
    for path, item in OPENAPI["paths"].items():
        kind = ("token" if path.startswith("/api/v1/tokens") else
                "delivery" if path.startswith("/api/v1/deliveries/") else "endpoint")
        for method in METHODS:
            if method not in item:
                continue
            if "{id}" not in path:
                if path in ("/api/v1/tokens", "/api/v1/portal-sessions"):
                    body = {"org_id": "beta"} if method == "post" else None
                    refused(call(d, method.upper(), path, body, token=acme), 404,
                            "no such API path")
                    probes += 1
                continue
            for oid in others[kind]:
                body = {"sink": "files"} if method in ("put", "patch") else None
                r = call(d, method.upper(), path.replace("{id}", oid), body, token=acme)
                want = not_found[kind]
                if path.endswith("/replay"):
                    want = "no dead delivery with that id"
                refused(r, 404, want)
                probes += 1
    # The lists, filtered by another org's objects.
    for path, want in (("/api/v1/deliveries?endpoint=beta-api", "no endpoint with that id"),
                       ("/api/v1/deliveries?endpoint=platform&state=done",
                        "no endpoint with that id"),
                       ("/api/v1/events?org_id=beta", "no such org")):
        refused(call(d, "GET", path, token=acme), 404, want)
        probes += 1
    # 9 endpoint routes x 4 ids, 2 delivery routes x 6 ids, the 3 token routes, the
    # portal-sessions route, 3 lists.
    assert probes == 9 * 4 + 2 * 6 + 2 + 2 + 1 + 3
    # None of that changed anything of beta's.
    admin_view = {e["id"]: e for e in ok(call(d, "GET", "/api/v1/endpoints"))}
    assert sorted(admin_view) == ["acme-cfg", "beta-api", "beta-cfg", "platform"]
    assert all(e["state"] == "active" for e in admin_view.values())
    assert ok(call(d, "GET", "/api/v1/endpoints/beta-api"))["org_id"] == "beta"
    assert len(ok(call(d, "GET", "/api/v1/deliveries?state=done"))) == 6
