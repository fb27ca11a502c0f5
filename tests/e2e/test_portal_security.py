"""
The customer portal's security in a real browser (chromium, headless):
markup in event data and in config values is shown as text and no script
runs (a JS hook that would set a flag stays unset); a session for one org
sees nothing of another org's endpoints, deliveries or events whatever URL
it is pointed at; a reused, expired or unknown link gets a clear page, and
so does a session that has ended.
"""

import time

from epapi_helpers import call, ok, receiver  # noqa: F401 (fixture)
from portal_helpers import browser, chromium, link, portal_daemon, skip_sanitized  # noqa: F401
from test_ops_helpers import event, ops_daemon, wait_until  # noqa: F401 (fixture)

pytestmark = skip_sanitized

HOSTILE = ['<script>window.__pwned = "script"</script>',
           '<img src="x" onerror="window.__pwned = \'img\'">',
           '"><svg onload="window.__pwned=\'svg\'">']


def test_markup_in_events_and_config_is_text_and_never_runs(ops_daemon, tmp_path, browser):
    eps = {"acme-files": {"sink": "files", "org_id": "acme", "description": HOSTILE[1]}}
    d = portal_daemon(ops_daemon, tmp_path, endpoints=eps)
    d.push([event("<b>evt</b>", "job.completed",
                  data={"title": HOSTILE[0], "note": HOSTILE[1], "x": HOSTILE[2]})])
    wait_until(lambda: ok(call(d, "GET", "/api/v1/deliveries?state=done")), what="the delivery")
    b = browser
    b.open(link(d, "acme"), "endpoints")
    # The hook: anything that runs sets window.__pwned.
    assert b.js("return window.__pwned === undefined")
    b.go("#/events", "events")
    pre = b.text("article.event pre")
    for h in HOSTILE:
        assert h.replace('"', '\\"') in pre, h
    assert b.text("article.event h3").startswith("job.completed · <b>evt</b> · ")
    b.shot("events")
    b.go("#/deliveries", "deliveries")
    assert "<b>evt</b>" in b.text("main tbody")
    b.go("#/endpoints/acme-files", "endpoints")
    assert b.text("main > p") == HOSTILE[1]
    b.shot("endpoint")
    # Nothing parsed as markup: no element from the data exists, and nothing ran.
    assert b.all("main img, main svg, main script, main b") == []
    assert b.js("return window.__pwned === undefined")
    assert b.console_errors() == []


def org_data(d, receiver):
    """Org acme: an API endpoint, a config endpoint, deliveries and events; beta: one endpoint."""
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "acme-secret-hook", "sink": "hooks",
                                             "org_id": "acme", "url": receiver.url("/a")}), 201)
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "beta-hook", "sink": "hooks",
                                             "org_id": "beta", "url": receiver.url("/b")}), 201)
    d.push([event("acme-evt-1", "acme.private"), event("acme-evt-2", "acme.private"),
            event("beta-evt-1", "beta.visible", org="beta")])
    receiver.wait(3)
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries?state=done"))) == 5,
               what="five deliveries done")
    return [x["id"] for x in ok(call(d, "GET", "/api/v1/deliveries"))
            if x["endpoint"].startswith("acme")]


def test_org_b_sees_nothing_of_org_a_whatever_the_url(ops_daemon, tmp_path, receiver, browser):
    eps = {"acme-archive": {"sink": "files", "org_id": "acme"}}
    d = portal_daemon(ops_daemon, tmp_path, endpoints=eps)
    acme_deliveries = org_data(d, receiver)
    assert len(acme_deliveries) == 4
    acme_words = ("acme", "acme-secret-hook", "acme-archive", "acme-evt", "acme.private")
    b = browser
    b.open(link(d, "beta"), "endpoints")
    assert [r.get_attribute("data-endpoint") for r in b.all("main tbody tr")] == ["beta-hook"]
    pages = [("#/endpoints", "endpoints"), ("#/deliveries", "deliveries"),
             ("#/events", "events"), ("#/endpoints/new", "endpoints")]
    for h, view in pages:
        b.go(h, view)
        for w in acme_words:
            assert w not in b.driver.page_source, (h, w)
    b.go("#/deliveries", "deliveries")
    assert [r.find_elements("css selector", "td")[2].text
            for r in b.all("main tbody tr[data-delivery]")] == ["beta-hook"]
    b.go("#/events", "events")
    assert [a.text.split(" · ")[1] for a in b.all("article.event h3")] == ["beta-evt-1"]
    b.shot("beta-events")
    # Pointed at acme's objects by URL: the API's 404s, and nothing of theirs shown.
    probes = [("#/endpoints/acme-secret-hook", "endpoints", "no endpoint with that id"),
              ("#/endpoints/acme-archive", "endpoints", "no endpoint with that id"),
              ("#/deliveries?endpoint=acme-secret-hook", "deliveries", "no endpoint with that id"),
              ("#/deliveries?endpoint=acme-archive&state=done", "deliveries",
               "no endpoint with that id")]
    for h, view, msg in probes:
        b.go(h, view)
        assert b.text("main .notice") == msg, h
        assert "acme-evt" not in b.driver.page_source
    b.shot("beta-probe")
    # The session's token, used by a script of the page against acme's ids, gets 404s too.
    got = b.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const ids = arguments[0];
        import('./app.js').then(async m => {
          const out = [];
          for (const [method, path] of ids) out.push((await m.api(method, path)).status);
          done(out);
        });""", [["GET", f"/deliveries/{i}/attempts"] for i in acme_deliveries] +
        [["POST", f"/deliveries/{i}/replay"] for i in acme_deliveries] +
        [["POST", "/endpoints/acme-secret-hook/replay-dead"],
         ["POST", "/endpoints/acme-secret-hook/rotate-secret"],
         ["DELETE", "/endpoints/acme-secret-hook"], ["GET", "/events?org_id=acme"],
         ["POST", "/portal-sessions"], ["GET", "/tokens"]])
    assert got == [404] * (2 * len(acme_deliveries) + 6)
    assert ok(call(d, "GET", "/api/v1/endpoints/acme-secret-hook"))["org_id"] == "acme"
    assert ok(call(d, "GET", "/api/v1/event-types")) == \
        {"event_types": ["acme.private", "beta.visible"]}


def test_reused_expired_and_unknown_links_are_refused(ops_daemon, tmp_path, browser):
    d = portal_daemon(ops_daemon, tmp_path)
    b = browser
    url = link(d, "acme")
    b.open(url, "endpoints")
    b.open(url.replace("#", "?x=1#"), "message")  # the same code again, from a fresh load
    assert b.text("main h2") == "This link cannot be used"
    assert b.text("main p") == "this portal link was already used: ask for a new one"
    assert b.css("#nav").is_displayed() is False
    b.shot("reused")
    short = ok(call(d, "POST", "/api/v1/portal-sessions", {"org_id": "acme", "ttl": "1s"}), 201)
    wait_until(lambda: time.time() * 1000 > iso_ms(short["expires_at"]) + 50,
               what="the short link expired")
    b.open(short["url"], "message")
    assert b.text("main p") == "this portal link has expired: ask for a new one"
    b.shot("expired")
    b.open(url.split("#")[0] + "#code=syp_unknown", "message")
    assert b.text("main p") == "this portal link is not valid: ask for a new one"
    b.open(url.split("#")[0], "message")
    assert b.text("main h2") == "Open the portal from your platform"
    b.shot("no-link")
    # A session ends with its link's time: the next call shows so.
    brief = ok(call(d, "POST", "/api/v1/portal-sessions", {"org_id": "acme", "ttl": "2s"}), 201)
    b.open(brief["url"], "endpoints")
    wait_until(lambda: time.time() * 1000 > iso_ms(brief["expires_at"]) + 50,
               what="the session's end")
    b.go("#/events", "message")
    assert b.text("main h2") == "Your session has ended"
    b.shot("ended")


def iso_ms(text):
    """RFC 3339 UTC with milliseconds -> ms since 1970."""
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
