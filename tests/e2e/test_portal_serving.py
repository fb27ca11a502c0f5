"""
How the admin listener serves the portal (core/portal.c) and makes its
links (core/api_portal.c), over plain HTTP, no browser: content types,
security headers, frame ancestors from config, revalidation with ETag, no
way out of the portal folder (traversal, encoded dots, hidden files,
sub-folders, symlinks), and the exact answers of the link routes.
"""

import http.client
import shutil

from epapi_helpers import call, ok, refused
from portal_helpers import PORTAL_DIR, portal_daemon
from test_ops_helpers import TOKEN, ops_daemon  # noqa: F401 (fixture)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors ")


def raw(d, method, path, headers=None):
    """One request with the path sent byte for byte (no client-side normalising)."""
    c = http.client.HTTPConnection("127.0.0.1", d.admin_port, timeout=10)
    c.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.headers, body


def test_files_types_headers_and_revalidation(ops_daemon, tmp_path):
    d = portal_daemon(ops_daemon, tmp_path)
    want = {"": ("index.html", "text/html; charset=utf-8"),
            "app.js": ("app.js", "text/javascript; charset=utf-8"),
            "portal.css": ("portal.css", "text/css; charset=utf-8"),
            "favicon.svg": ("favicon.svg", "image/svg+xml")}
    for path, (name, ctype) in want.items():
        status, h, body = raw(d, "GET", "/portal/" + path)
        assert status == 200, path
        assert body == (PORTAL_DIR / name).read_bytes()
        assert h["Content-Type"] == ctype
        assert h["Content-Security-Policy"] == CSP + "'none'"
        assert h["X-Frame-Options"] == "DENY"
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["Cache-Control"] == "no-cache"
        etag = h["ETag"]
        status, h2, body = raw(d, "GET", "/portal/" + path, {"If-None-Match": etag})
        assert (status, body, h2["ETag"]) == (304, b"", etag)
        status, _, body = raw(d, "GET", "/portal/" + path, {"If-None-Match": '"other"'})
        assert status == 200 and body
    status, h, body = raw(d, "HEAD", "/portal/app.js")
    assert status == 200 and body == b"" and h["Content-Type"].startswith("text/javascript")
    status, h, _ = raw(d, "GET", "/portal")
    assert (status, h["Location"]) == (301, "/portal/")
    status, h, body = raw(d, "POST", "/portal/")
    assert (status, h["Allow"], body) == (405, "GET, HEAD", b"use GET\n")
    # Every module the page loads is one the folder has (no build step, nothing remote).
    page = (PORTAL_DIR / "index.html").read_text()
    assert "http:" not in page and "https:" not in page and "<style" not in page
    assert 'onclick=' not in page and "<script>" not in page


def test_nothing_outside_the_portal_folder(ops_daemon, tmp_path):
    portal = tmp_path / "portal"
    shutil.copytree(PORTAL_DIR, portal)
    (tmp_path / "secret.js").write_text("SECRET")
    (portal / "evil.js").symlink_to(tmp_path / "secret.js")
    (portal / "sub").mkdir()
    (portal / "sub" / "x.js").write_text("SUB")
    (portal / ".hidden.js").write_text("HIDDEN")
    (portal / "notes.txt").write_text("TXT")
    (portal / "dir.js").mkdir()
    d = portal_daemon(ops_daemon, tmp_path, admin={"portal_dir": str(portal)})
    assert raw(d, "GET", "/portal/app.js")[0] == 200
    for path in ("/portal/../secret.js", "/portal/%2e%2e/secret.js", "/portal/..%2fsecret.js",
                 "/portal/%2E%2E%2Fsecret.js", "/portal/evil.js", "/portal/sub/x.js",
                 "/portal/sub%2fx.js", "/portal/.hidden.js", "/portal/notes.txt",
                 "/portal/dir.js", "/portal//etc/passwd",
                 "/portal/..", "/portal/missing.js", "/portal/app.js/"):
        status, h, body = raw(d, "GET", path)
        assert (status, body) == (404, b"no such portal file\n"), path
        assert h["Content-Security-Policy"] == CSP + "'none'"
    # libmicrohttpd ends the decoded path at a NUL: the name before it, with its own type.
    status, h, body = raw(d, "GET", "/portal/app.js%00.html")
    assert (status, h["Content-Type"], body) == (200, "text/javascript; charset=utf-8",
                                                 (portal / "app.js").read_bytes())
    # Whatever a client asks, the daemon never read outside its folder.
    for word in (b"SECRET", b"SUB", b"HIDDEN", b"TXT"):
        assert word not in b"".join(raw(d, "GET", p)[2] for p in
                                    ("/portal/evil.js", "/portal/sub/x.js"))


def test_frame_ancestors_from_config_and_missing_files(ops_daemon, tmp_path):
    d = portal_daemon(ops_daemon, tmp_path,
                      admin={"frame_ancestors": "https://app.example.com https://*.example.org"})
    _, h, _ = raw(d, "GET", "/portal/")
    assert h["Content-Security-Policy"] == CSP + "https://app.example.com https://*.example.org"
    assert "X-Frame-Options" not in h  # no list form: browsers read frame-ancestors
    d2 = portal_daemon(ops_daemon, tmp_path / "self",
                       admin={"frame_ancestors": "'self'", "portal_dir": str(tmp_path / "none")})
    status, h, body = raw(d2, "GET", "/portal/")
    assert (status, body) == (404, b"the portal's files are not in core.admin.portal_dir\n")
    assert h["X-Frame-Options"] == "SAMEORIGIN"
    assert h["Content-Security-Policy"] == CSP + "'self'"


def test_frame_ancestors_and_portal_url_cannot_split_headers(tmp_path):
    import json
    import subprocess
    from conftest import BIN
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10.json").write_text(json.dumps({"core": {
        "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
        "admin": {"listen": "127.0.0.1:1", "frame_ancestors": "'self'; script-src *",
                  "portal_url": "https://x.example/\r\nSet-Cookie: a=b"}}}))
    r = subprocess.run([str(BIN), "check", "-c", str(conf)], capture_output=True, text=True)
    assert r.returncode != 0
    f = conf / "10.json"
    assert (f"{f}: core.admin.frame_ancestors: expected printable ASCII without ';', ',' or "
            "'\"'") in r.stderr
    assert (f"{f}: core.admin.portal_url: expected printable ASCII without ';', ',' or '\"'") \
        in r.stderr


def test_portal_session_and_exchange_answers(ops_daemon, tmp_path):
    d = portal_daemon(ops_daemon, tmp_path, admin={"portal_url": "https://hooks.example.com/p/"})
    made = ok(call(d, "POST", "/api/v1/portal-sessions", {"org_id": "acme", "ttl": "30m"}), 201)
    assert sorted(made) == ["expires_at", "org_id", "url"] and made["org_id"] == "acme"
    assert made["url"].startswith("https://hooks.example.com/p/#code=syp_")
    code = made["url"].split("#code=")[1]
    assert len(code) == 4 + 43
    for body, path, msg in (({}, "org_id", "a portal session shows one org: give org_id"),
                            ({"org_id": ""}, "org_id",
                             "expected the org's id: 1-128 printable characters"),
                            ({"org_id": "a", "ttl": "0s"}, "ttl",
                             "expected a duration from \"1s\" to \"7d\", like \"1h\""),
                            ({"org_id": "a", "ttl": "8d"}, "ttl",
                             "expected a duration from \"1s\" to \"7d\", like \"1h\""),
                            ({"org_id": "a", "scope": "all"}, "scope",
                             "unknown key (expected org_id, ttl)")):
        refused(call(d, "POST", "/api/v1/portal-sessions", body), 400, msg, path)
    # Only the admin token makes links; an org token does not see the route.
    tok = ok(call(d, "POST", "/api/v1/tokens", {"org_id": "acme"}), 201)["token"]
    refused(call(d, "POST", "/api/v1/portal-sessions", {"org_id": "acme"}, token=tok), 404,
            "no such API path")
    refused(call(d, "POST", "/api/v1/portal-sessions", {"org_id": "acme"}, token=None), 401,
            "missing or wrong bearer token")
    # The exchange needs no token; the code works once.
    got = ok(call(d, "POST", "/api/v1/portal-sessions/exchange", {"code": code}, token=None))
    assert sorted(got) == ["expires_at", "org_id", "sinks", "token", "token_id"]
    assert (got["org_id"], got["expires_at"], got["sinks"]) == ("acme", made["expires_at"],
                                                                ["hooks"])
    assert got["token"].startswith("syt_")
    assert [e["id"] for e in ok(call(d, "GET", "/api/v1/endpoints", token=got["token"]))] == []
    listed = [t for t in ok(call(d, "GET", "/api/v1/tokens")) if t["id"] == got["token_id"]]
    assert [(t["org_id"], t["name"], t["expires_at"]) for t in listed] == \
        [("acme", "portal session", made["expires_at"])]
    refused(call(d, "POST", "/api/v1/portal-sessions/exchange", {"code": code}, token=None), 410,
            "this portal link was already used: ask for a new one")
    refused(call(d, "POST", "/api/v1/portal-sessions/exchange", {"code": "syp_x"}, token=None),
            404, "this portal link is not valid: ask for a new one")
    for body in ({}, {"code": 1}, {"code": code, "x": 1}, []):
        refused(call(d, "POST", "/api/v1/portal-sessions/exchange", body, token=None), 400,
                'expected {"code": "syp_..."}', "code")
    # Revoking the session's token ends the session.
    ok(call(d, "DELETE", f"/api/v1/tokens/{got['token_id']}"))
    refused(call(d, "GET", "/api/v1/endpoints", token=got["token"]), 401,
            "missing or wrong bearer token")
    # The code is in no log; neither is the session's token.
    assert code not in d.log() and got["token"] not in d.log()
    assert 'msg="portal link made" org=acme' in d.log()
    # Without portal_url the link follows the Host the request came to.
    d2 = portal_daemon(ops_daemon, tmp_path / "host")
    url = ok(call(d2, "POST", "/api/v1/portal-sessions", {"org_id": "acme"}), 201)["url"]
    assert url.startswith(f"http://127.0.0.1:{d2.admin_port}/portal/#code=syp_")


def test_filter_check_event_types_and_delivery_filters(ops_daemon, tmp_path):
    from test_ops_helpers import event, wait_until
    eps = {"a": {"sink": "files", "org_id": "acme"}, "b": {"sink": "files", "org_id": "beta"}}
    d = portal_daemon(ops_daemon, tmp_path, endpoints=eps)
    assert ok(call(d, "POST", "/api/v1/filters/validate",
                   {"filter": {"data.n": {"$gt": 3}}})) == {"valid": True}
    refused(call(d, "POST", "/api/v1/filters/validate", {"filter": {"data.n": {"$in": 3}}}),
            400, "expected an array", "filter.data.n.$in")
    refused(call(d, "POST", "/api/v1/filters/validate", {"filter": 3}), 400,
            "expected an object", "filter")
    refused(call(d, "POST", "/api/v1/filters/validate", {"spec": {}}), 400,
            'expected {"filter": {...}}', "filter")
    import time
    d.push([event("e1", "job.started"), event("e2", "job.completed")])
    done = wait_until(lambda: (lambda x: len(x) == 2 and x)(
        ok(call(d, "GET", "/api/v1/deliveries?state=done"))), what="2 deliveries")
    # e3 arrives in a later millisecond than e1 and e2: the time filters split there.
    wait_until(lambda: time.time() * 1000 > done[1]["received_ms"] + 2, what="a later ms")
    d.push([event("e3", "job.completed"), event("b1", "beta.x", org="beta")])
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries?state=done"))) == 4,
               what="4 deliveries")
    tok = ok(call(d, "POST", "/api/v1/tokens", {"org_id": "acme"}), 201)["token"]
    assert ok(call(d, "GET", "/api/v1/event-types", token=tok)) == \
        {"event_types": ["job.completed", "job.started"]}

    def ids(q, token=TOKEN):
        return [x["event_id"] for x in ok(call(d, "GET", "/api/v1/deliveries" + q, token=token))]
    assert ids("?order=desc", tok) == ["e3", "e2", "e1"]
    assert ids("?order=desc&limit=2", tok) == ["e3", "e2"]
    first = ok(call(d, "GET", "/api/v1/deliveries?order=desc&limit=2", token=tok))
    assert ids(f"?order=desc&limit=2&before={first[1]['id']}", tok) == ["e1"]
    assert ids("?event_type=job.completed", tok) == ["e2", "e3"]
    t = first[0]["received_ms"]
    assert ids(f"?since={t}&event_type=job.completed", tok) == ["e3"]
    assert ids(f"?until={t}", tok) == ["e1", "e2"]
    assert ids("?event_type=beta.x", tok) == []
    refused(call(d, "GET", "/api/v1/deliveries?order=up"), 400,
            "order must be asc (after the cursor) or desc (before it)")
    refused(call(d, "GET", "/api/v1/deliveries?since=-1"), 400,
            "since and until are milliseconds since 1970 (>= 0)")
    events = ok(call(d, "GET", "/api/v1/events?order=desc&limit=2", token=tok))
    assert [e["event"]["event_id"] for e in events["events"]] == ["e3", "e2"]
    more = ok(call(d, "GET", f"/api/v1/events?order=desc&before={events['next']}", token=tok))
    assert [e["event"]["event_id"] for e in more["events"]] == ["e1"]
