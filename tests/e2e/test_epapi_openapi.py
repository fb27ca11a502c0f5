"""
The OpenAPI 3.1 document of /api/v1 (docs/openapi.json): the server serves
it as it is in the repository, a real validator (@apidevtools/swagger-parser
from npm) accepts it, and it matches the routes both ways: the server
answers every documented operation with a documented status, and for every
documented path its Allow header (made from the server's own route table)
names exactly the documented methods. tests/unit/test_admin_routes.c holds
the table and the document to each other too.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, SANITIZED
from epapi_helpers import NODE_MODULES, Answer, call, epapi_daemon, ok, receiver  # noqa: F401
from test_ops_helpers import event, http, ops_daemon, wait_until  # noqa: F401 (fixture)

DOC = ROOT / "docs" / "openapi.json"
VALIDATE = Path(__file__).resolve().parent / "peers" / "openapi_validate.js"
METHODS = ("get", "put", "post", "patch", "delete")


def validate(path):
    if not (NODE_MODULES / "@apidevtools" / "swagger-parser").is_dir():
        pytest.fail(f"{NODE_MODULES}/@apidevtools/swagger-parser missing: run `make deps`",
                    pytrace=False)
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    r = subprocess.run(["node", str(VALIDATE), str(path)], capture_output=True, env=env,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


def test_served_document_is_the_repositorys(ops_daemon, tmp_path):
    d = epapi_daemon(ops_daemon, tmp_path)
    r = http(d.base, "GET", "/api/v1/openapi.json")  # no token: the document is public
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    assert r.body == DOC.read_bytes()


# The document is the same bytes under sanitizers; node's start-up is what would be slow.
@pytest.mark.skipif(SANITIZED, reason="checks a document, not the daemon: the normal build does")
def test_document_validates(tmp_path):
    doc = json.loads(DOC.read_text())
    assert validate(DOC) == {"ok": True, "openapi": "3.1.0", "paths": len(doc["paths"])}
    # The validator does judge: a reference to a schema that is not there, and an
    # operation with an unknown member, are refused.
    for name, spoil in (("ref", lambda doc: doc["components"]["schemas"].pop("EventsPage")),
                        ("member", lambda doc: doc["paths"]["/api/v1/events"]["get"]
                         .__setitem__("answers", {}))):
        broken = json.loads(DOC.read_text())
        spoil(broken)
        bad = tmp_path / f"broken-{name}.json"
        bad.write_text(json.dumps(broken))
        got = validate(bad)
        assert got["ok"] is False and got["error"], (name, got)


def test_routes_match_the_document_both_ways(ops_daemon, tmp_path, receiver):
    doc = json.loads(DOC.read_text())
    receiver.on("/dead", Answer(410))
    d = epapi_daemon(ops_daemon, tmp_path, endpoints={"cfg": {"sink": "files"}})
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "doc-ep", "sink": "hooks",
                                             "url": "https://hooks.example.com/x",
                                             "enabled_events": ["none.*"]}), 201)
    # A dead delivery, for the attempts and replay routes.
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "doc-dead", "sink": "hooks",
                                             "url": receiver.url("/dead")}), 201)
    d.push([event("evt-doc")])
    wait_until(lambda: ok(call(d, "GET", "/api/v1/deliveries?endpoint=doc-dead&state=dead")),
               what="a dead delivery to doc-dead")
    delivery = ok(call(d, "GET", "/api/v1/deliveries?endpoint=doc-dead"))[0]["id"]
    token = ok(call(d, "POST", "/api/v1/tokens", {"org_id": "acme"}), 201)["id"]
    ids = {"/api/v1/endpoints/": "doc-ep", "/api/v1/deliveries/": str(delivery),
           "/api/v1/tokens/": token}
    bodies = {("post", "/api/v1/endpoints"): {"id": "doc-ep2", "sink": "files"},
              ("put", "/api/v1/endpoints/{id}"): {"sink": "hooks",
                                                  "url": "https://hooks.example.com/y"},
              ("patch", "/api/v1/endpoints/{id}"): {"description": "patched"},
              ("post", "/api/v1/endpoints/{id}/rotate-secret"): {"grace": "1h"},
              ("post", "/api/v1/tokens"): {"org_id": "beta"},
              ("post", "/api/v1/filters/validate"): {"filter": {"data.n": {"$gt": 1}}},
              ("post", "/api/v1/portal-sessions"): {"org_id": "acme"}}
    link = ok(call(d, "POST", "/api/v1/portal-sessions", {"org_id": "acme"}), 201)["url"]
    bodies[("post", "/api/v1/portal-sessions/exchange")] = {"code": link.split("#code=")[1]}
    answered = 0
    # Deletions last, so the other routes find their objects.
    ops = [(p, m) for p, item in doc["paths"].items() for m in METHODS if m in item]
    ops.sort(key=lambda pm: pm[1] == "delete")
    for path, method in ops:
        url = path
        for prefix, oid in ids.items():
            url = url.replace(prefix + "{id}", prefix + oid)
        r = call(d, method.upper(), url, bodies.get((method, path)))
        documented = doc["paths"][path][method]["responses"]
        assert str(r.status) in documented, (method, url, r, sorted(documented))
        assert r.status < 300, (method, url, r)
        answered += 1
    assert answered == sum(m in item for item in doc["paths"].values() for m in METHODS)
    # The other way: what the server allows on each documented path is what the document says.
    for path, item in doc["paths"].items():
        documented = [m.upper() for m in METHODS if m in item]
        url = path.replace("{id}", "x")
        for m in METHODS:
            if m in item:
                continue
            r = call(d, m.upper(), url, {} if m in ("put", "patch", "post") else None)
            assert r.status == 405, (m, url, r)
            assert sorted(r.headers["Allow"].split(", ")) == sorted(documented), (m, url)
    # And paths the document does not have are not there.
    for url in ("/api/v1/endpoint", "/api/v1/endpoints/x/y", "/api/v1/deliveries/1",
                "/api/v1/tokens/x/y", "/api/v1/openapi", "/api/v1/attempts"):
        r = call(d, "GET", url)
        assert (r.status, r.json()) == (404, {"error": "no such API path"}), url
