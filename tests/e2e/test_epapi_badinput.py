"""
Bad input to the admin API's endpoint routes: each gets a 4xx with an
exact JSON error (and the key's path where one is at fault), and nothing
is half applied: the endpoints, what GET shows and what the store holds are
as before every refused request.
"""

import json
import sqlite3

from epapi_helpers import call, epapi_daemon, hooks_sink, ok, refused
from test_ops_helpers import TOKEN, file_sink, ops_daemon  # noqa: F401 (fixture)

GOOD = {"id": "good", "sink": "hooks", "url": "https://hooks.example.com/in",
        "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], "org_id": "acme"}
SSRF = ("127.0.0.1 is a loopback address: the SSRF guard refuses it "
        "(allow_private_networks on the sink allows it)")


def store_rows(d):
    db = sqlite3.connect(f"file:{d.spool_path}?mode=ro", uri=True, timeout=10)
    try:
        return (db.execute("SELECT id, org_id, config, updated_ms FROM api_endpoints "
                           "ORDER BY id").fetchall(),
                db.execute("SELECT endpoint, position, secret, expires_ms FROM "
                           "api_endpoint_secrets ORDER BY endpoint, position").fetchall())
    finally:
        db.close()


def snapshot(d):
    """Everything a refused request must leave as it was."""
    return (ok(call(d, "GET", "/api/v1/endpoints")), ok(call(d, "GET", "/api/v1/endpoints/good")),
            store_rows(d))


def test_bad_bodies_change_nothing(ops_daemon, tmp_path):
    sinks = {"hooks": hooks_sink(), "strict": {"plugin": "webhook"},
             "files": file_sink(tmp_path / "f.jsonl")}
    d = ops_daemon(sinks=sinks, endpoints={"cfg": {"sink": "files"}})
    ok(call(d, "POST", "/api/v1/endpoints", GOOD), 201)
    before = snapshot(d)
    ep = "/api/v1/endpoints"
    cases = [
        # (method, path, body, status, error, path of the key)
        ("POST", ep, {**GOOD, "id": "x", "colour": "red"}, 400, "unknown key",
         "endpoints.x.colour"),
        ("POST", ep, {**GOOD, "id": "x", "concurrency": "many"}, 400,
         "expected integer, got string", "endpoints.x.concurrency"),
        ("POST", ep, {**GOOD, "id": "x", "enabled_events": "job.*"}, 400,
         "expected array of strings, got string", "endpoints.x.enabled_events"),
        ("POST", ep, {**GOOD, "id": "x", "enabled_events": ["Job!"]}, 400,
         "\"Job!\" is not an event type pattern (job.completed, job.*, *)",
         "endpoints.x.enabled_events[0]"),
        ("POST", ep, {**GOOD, "id": "x", "secrets": "whsec_x"}, 400,
         "expected array of strings, got string", "endpoints.x.secrets"),
        ("POST", ep, {**GOOD, "id": "x", "secrets": ["whsec_bad"]}, 400,
         "webhook: endpoint x: secrets[0]: malformed secret (expected whsec_ + base64 of "
         "24-64 bytes, or whsk_/whpk_ + base64 of a 32-byte ed25519 key)", "endpoints.x"),
        ("POST", ep, {**GOOD, "id": "x", "sink": "nope"}, 400,
         "no sink named \"nope\" (defined: hooks, strict, files)", "endpoints.x.sink"),
        ("POST", ep, {"id": "x", "sink": "hooks"}, 400, "required key is missing",
         "endpoints.x.url"),
        ("POST", ep, {**GOOD, "id": "x", "url": "ftp://example.com/"}, 400,
         "scheme must be http or https", "endpoints.x.url"),
        # The SSRF guard: a literal loopback address on a sink that does not allow it...
        ("POST", ep, {**GOOD, "id": "x", "sink": "strict", "url": "http://127.0.0.1:9/h"},
         400, SSRF, "endpoints.x.url"),
        ("POST", ep, {**GOOD, "id": "x", "sink": "strict",
                      "fallback_urls": ["https://ok.example.com/", "http://[::1]/h"]}, 400,
         "::1 is a loopback address: the SSRF guard refuses it (allow_private_networks on the "
         "sink allows it)", "endpoints.x.fallback_urls[1]"),
        # ...which no endpoint made through the API may lift for itself.
        ("POST", ep, {**GOOD, "id": "x", "allow_private_networks": True}, 400,
         "set on the sink instance in the config files, not through the API",
         "endpoints.x.allow_private_networks"),
        ("POST", ep, {**GOOD, "id": "x", "secrets_file": "/etc/shadow"}, 400,
         "files on the daemon's host are for the config files; give the value itself",
         "endpoints.x.secrets_file"),
        # Ids.
        ("POST", ep, {**GOOD, "id": "good"}, 409, "an endpoint with id good exists", "id"),
        ("POST", ep, {**GOOD, "id": "cfg"}, 409, "an endpoint with id cfg exists", "id"),
        ("POST", ep, {**GOOD, "id": "a b"}, 400,
         "give the endpoint's id: 1-128 letters, digits, '.', '_' or '-'", "id"),
        ("POST", ep, {**GOOD, "id": ""}, 400,
         "give the endpoint's id: 1-128 letters, digits, '.', '_' or '-'", "id"),
        ("POST", ep, {**GOOD, "id": "x" * 129}, 400,
         "give the endpoint's id: 1-128 letters, digits, '.', '_' or '-'", "id"),
        ("POST", ep, {k: v for k, v in GOOD.items() if k != "id"}, 400,
         "give the endpoint's id: 1-128 letters, digits, '.', '_' or '-'", "id"),
        ("PUT", ep + "/a%20b", {"sink": "files"}, 400,
         "endpoint ids are 1-128 letters, digits, '.', '_' or '-'", "id"),
        ("PUT", ep + "/good", {**GOOD, "id": "other"}, 400,
         "the id of an endpoint cannot change (it is good)", "id"),
        ("POST", ep, {**GOOD, "id": "x", "source": "config"}, 400,
         "an endpoint created through the API has source \"api\"", "source"),
        # A PATCH or PUT that would make the endpoint invalid.
        ("PATCH", ep + "/good", {"url": "ftp://example.com/"}, 400,
         "scheme must be http or https", "endpoints.good.url"),
        ("PATCH", ep + "/good", {"url": None}, 400, "required key is missing",
         "endpoints.good.url"),
        ("PATCH", ep + "/good", {"sink": "strict", "url": "http://10.0.0.7/"}, 400,
         "10.0.0.7 is a private address: the SSRF guard refuses it (allow_private_networks on "
         "the sink allows it)", "endpoints.good.url"),
        ("PATCH", ep + "/good", {"retry": {"schedule": "soon"}}, 400, None,
         "endpoints.good.retry"),
        ("PATCH", ep + "/good", ["not", "an", "object"], 400,
         "a merge patch of an endpoint is a JSON object", None),
        ("PUT", ep + "/good", {"sink": "hooks"}, 400, "required key is missing",
         "endpoints.good.url"),
        ("POST", ep + "/good/rotate-secret", {"grace": "a while"}, 400,
         "expected a duration like \"24h\", \"30m\" or \"0s\"", "grace"),
        ("POST", ep + "/good/rotate-secret", {"grace": "1h", "secret": "mine"}, 400,
         "unknown key (expected grace)", "secret"),
        ("POST", ep, [GOOD], 400, "the body must be a JSON object: an endpoint with its \"id\"",
         None),
    ]
    for method, path, body, status, error, key in cases:
        r = call(d, method, path, body)
        assert r.status == status, (method, path, body, r)
        got = r.json()
        if error is None:
            assert set(got) == {"error", "path"} and got["path"] == key, got
        else:
            refused(r, status, error, key)
        assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in r.text
    assert snapshot(d) == before


def test_malformed_requests(ops_daemon, tmp_path):
    d = epapi_daemon(ops_daemon, tmp_path)
    ep = "/api/v1/endpoints"
    ok(call(d, "POST", ep, {"id": "good", "sink": "files"}), 201)
    before = snapshot(d)
    not_json = "the body is not valid JSON (UTF-8, at most 64 levels deep, no NUL in strings)"
    for raw in (b"{", b'{"id": "x",}', b"{'id': 'x'}", b'{"id": "x"} trailing',
                b'{"id": "\xff"}', b'{"id": "a\\u0000b", "sink": "files"}',
                b"[" * 65 + b"]" * 65, b"\x00"):
        refused(call(d, "POST", ep, raw=raw), 400, not_json)
    for ctype in (None, "text/plain", "application/x-www-form-urlencoded",
                  "application/jsonx"):
        refused(call(d, "POST", ep, raw=b'{"id": "x", "sink": "files"}', ctype=ctype), 415,
                "send the body as Content-Type: application/json")
    refused(call(d, "POST", ep, raw=b""), 400, "this request takes a JSON body")
    refused(call(d, "PATCH", ep + "/good", raw=b""), 400, "this request takes a JSON body")
    big = json.dumps({"id": "x", "sink": "files", "description": "d" * (1 << 20)}).encode()
    refused(call(d, "POST", ep, raw=big), 413, "the body is larger than 1 MiB")
    # Exactly 1 MiB is still read (and judged on its content).
    pad = (1 << 20) - len(b'{"id": "x", "sink": "files", "description": ""}')
    exact = b'{"id": "x", "sink": "files", "description": "' + b"d" * pad + b'"}'
    assert len(exact) == 1 << 20
    assert ok(call(d, "POST", ep, raw=exact), 201)["description"] == "d" * pad
    ok(call(d, "DELETE", ep + "/x"))
    # PATCH with the merge-patch media type works as JSON.
    r = call(d, "PATCH", ep + "/good", {"description": "mp"}, ctype="application/merge-patch+json")
    assert ok(r)["description"] == "mp"
    ok(call(d, "PATCH", ep + "/good", {"description": None}))
    # Unknown tokens: 401 whatever the route.
    for tok in ("syt_" + "A" * 43, "nope", TOKEN + "x"):
        refused(call(d, "GET", ep, token=tok), 401, "missing or wrong bearer token")
        refused(call(d, "POST", ep, {"id": "y", "sink": "files"}, token=tok), 401,
                "missing or wrong bearer token")
    now = snapshot(d)
    assert now[0] == before[0] and now[2][0][0][:3] == before[2][0][0][:3]
