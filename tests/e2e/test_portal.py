"""
The customer portal (core/portal, docs/PORTAL.md) in a real browser:
Debian's chromium, headless, through chromium-driver. A portal link opens a
session for one org; through the page an endpoint is created and receives a
signed delivery whose attempts the page shows; dead deliveries are replayed
from the page and arrive; a secret rotated in the page leaves both secrets
verifying (the official standardwebhooks npm package) during the grace.
Every page is saved as a screenshot (tmp folder and build/portal-screenshots/).
"""

import json

from epapi_helpers import Answer, call, ok, receiver, sw_verify  # noqa: F401 (fixture)
from portal_helpers import browser, chromium, link, portal_daemon, skip_sanitized  # noqa: F401
from test_ops_helpers import event, ops_daemon, wait_until  # noqa: F401 (fixture)

pytestmark = skip_sanitized

ARCHIVE = {"acme-archive": {"sink": "files", "org_id": "acme"}}

# Every form control of the page that no label names (label[for], aria-label, aria-labelledby).
UNLABELLED = """
return [...document.querySelectorAll('main input, main select, main textarea, main button')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML);
"""


def test_link_form_create_publish_delivery_with_attempts(ops_daemon, tmp_path, receiver, browser):
    d = portal_daemon(ops_daemon, tmp_path, endpoints=ARCHIVE)
    # Event types the org has seen, for the form to offer; another org's are not offered.
    d.push([event("seen-1", "job.completed"), event("seen-2", "invoice.paid"),
            event("beta-1", "beta.secret", org="beta")])
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries"))) == 2, what="2 deliveries")
    b = browser
    b.open(link(d, "acme"), "endpoints")
    assert b.text("#session").startswith("Organization acme · session ends ")
    rows = b.all("main tbody tr")
    assert [r.get_attribute("data-endpoint") for r in rows] == ["acme-archive"]
    assert rows[0].text.split("\n")[0].split(" ") == ["acme-archive", "active", "100.0", "%",
                                                       "none", "0", "0"]
    b.shot("endpoints")
    # The code left the address bar before anything else.
    assert b.driver.current_url.endswith("/portal/#/endpoints")

    b.css("a[href='#/endpoints/new']").click()
    b.wait_view("endpoints")
    boxes = [i.get_attribute("value") for i in b.all("input[name=event_type]")]
    assert boxes == ["*", "invoice.paid", "job.completed"]
    assert b.js(UNLABELLED) == []
    b.css("input[name=id]").send_keys("acme-hook")
    b.css("input[name=url]").send_keys(receiver.url("/acme"))
    b.css("input[name=event_type][value='job.completed']").click()
    # A filter the API refuses is reported at its key, and nothing is saved.
    b.css("textarea[name=filter]").send_keys('{"data.status": {"$eq": "done", "$bogus": 1}}')
    b.button("Create endpoint").click()
    b.until(lambda: b.text("#filter-check"), "the filter check")
    assert b.text("#filter-check") == \
        "The filter is refused at filter.data.status.$bogus: unknown operator"
    b.shot("filter-refused")
    assert [e["id"] for e in ok(call(d, "GET", "/api/v1/endpoints"))] == ["acme-archive"]
    b.css("textarea[name=filter]").clear()
    b.css("textarea[name=filter]").send_keys('{"data.status": {"$eq": "done"}}')
    b.button("Check filter").click()
    b.until(lambda: b.text("#filter-check") == "The filter is valid.", "the filter accepted")
    b.button("Create endpoint").click()
    b.until(lambda: b.all("#new-secret"), "the new endpoint's secret")
    secret = b.text("#new-secret")
    assert secret.startswith("whsec_") and len(secret) == 50
    assert b.text("main h2") == "Endpoint acme-hook created"
    b.shot("created")
    made = ok(call(d, "GET", "/api/v1/endpoints/acme-hook"))
    assert {k: made[k] for k in ("org_id", "sink", "url", "enabled_events", "filter",
                                 "header_prefix")} == \
        {"org_id": "acme", "sink": "hooks", "url": receiver.url("/acme"),
         "enabled_events": ["job.completed"], "filter": {"data.status": {"$eq": "done"}},
         "header_prefix": "svix"}

    d.push([event("evt-skip", data={"status": "running"}), event("evt-done", data={"status": "done"})])
    (req,) = receiver.wait(1, "/acme")
    assert req.headers["svix-id"] == "evt-done"
    assert sw_verify([(secret, req)]) == ["ok"]
    wait_until(lambda: any(x["state"] == "done" for x in
                           ok(call(d, "GET", "/api/v1/deliveries?endpoint=acme-hook"))),
               what="the delivery recorded as done")

    b.go("#/deliveries?endpoint=acme-hook", "deliveries")
    rows = b.all("main tbody tr[data-delivery]")
    assert len(rows) == 1
    cells = [c.text for c in rows[0].find_elements("css selector", "td")]
    assert cells[2:8] == ["acme-hook", "job.completed", "evt-done", "done", "1", "HTTP 200"]
    assert b.js(UNLABELLED) == []
    rows[0].find_element("xpath", ".//button[normalize-space()='Attempts']").click()
    b.until(lambda: b.all("tr.attempts-row tbody tr"), "the attempt history")
    att = [c.text for c in b.all("tr.attempts-row tbody tr td")]
    assert att[0] == "1" and att[2].endswith(" ms") and att[3:5] == ["200", "ok"]
    b.shot("deliveries-attempts")

    # The endpoint's page: health, and how to verify with its header prefix.
    b.go("#/endpoints/acme-hook", "endpoints")
    health = b.text("dl.health")
    assert "Success rate, 24 h\n100.0 % of 1 attempts" in health
    assert 'headers["svix-signature"]' in b.text("section")
    assert "sy_webhook_verify(secret, id, timestamp, signature" in b.text("section")
    b.shot("endpoint")

    # Keyboard: the skip link comes first, then the sections, in order.
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    assert b.js("return document.querySelector('a, button, input, select, textarea')"
                ".textContent") == "Skip to content"
    b.js("document.querySelector('.skip').focus()")
    seen = []
    for _ in range(3):
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
        seen.append(b.js("return document.activeElement.textContent.trim()"))
    assert seen == ["Endpoints", "Deliveries", "Events"]
    ActionChains(b.driver).send_keys(Keys.ENTER).perform()
    b.wait_view("events")
    b.shot("events")

    b.driver.refresh()
    b.wait_view("message")  # a reload forgets the session: the token was in memory only
    assert b.text("main h2") == "Open the portal from your platform"


def test_dead_deliveries_replayed_from_the_page_arrive(ops_daemon, tmp_path, receiver, browser):
    receiver.on("/flaky", Answer(410), Answer(410))  # then 200
    d = portal_daemon(ops_daemon, tmp_path)
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "flaky", "sink": "hooks", "org_id": "acme",
                                             "url": receiver.url("/flaky")}), 201)
    d.push([event("dead-1"), event("dead-2")])
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries?state=dead"))) == 2,
               what="two dead deliveries")
    b = browser
    b.open(link(d, "acme"), "endpoints")
    assert b.css("tr[data-endpoint=flaky]").text.split("\n")[0].endswith(" 0 2")
    b.shot("endpoints")
    b.go("#/deliveries?state=dead", "deliveries")
    rows = b.all("main tbody tr[data-delivery]")
    assert [r.find_elements("css selector", "td")[4].text for r in rows] == ["dead-2", "dead-1"]
    assert "HTTP 410" in rows[0].text
    b.shot("dead")
    rows[1].find_element("xpath", ".//button[normalize-space()='Replay']").click()
    got = receiver.wait(3, "/flaky")
    assert got[2].headers["svix-id"] == "dead-1" and got[2].status == 200
    wait_until(lambda: [x["event_id"] for x in
                        ok(call(d, "GET", "/api/v1/deliveries?state=done"))] == ["dead-1"],
               what="dead-1 delivered")
    # The other one, with every dead delivery of the endpoint, from its page.
    b.go("#/endpoints/flaky", "endpoints")
    b.button("Replay all dead (1)").click()
    b.until(lambda: b.text("#action-result"), "the replay's answer")
    assert b.text("#action-result") == "1 dead deliveries go out again."
    got = receiver.wait(4, "/flaky")
    assert got[3].headers["svix-id"] == "dead-2" and got[3].status == 200
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries?state=done"))) == 2,
               what="both delivered")
    b.go("#/deliveries?endpoint=flaky", "deliveries")
    assert [r.find_elements("css selector", "td")[5].text
            for r in b.all("main tbody tr[data-delivery]")] == ["done", "done"]
    b.all("main tbody tr[data-delivery]")[1].find_element(
        "xpath", ".//button[normalize-space()='Attempts']").click()
    b.until(lambda: len(b.all("tr.attempts-row tbody tr")) == 2, "two attempts")
    outcomes = [r.find_elements("css selector", "td")[4].text
                for r in b.all("tr.attempts-row tbody tr")]
    assert outcomes == ["fail", "ok"]
    b.shot("replayed")


def test_secret_rotated_in_the_page_both_verify_in_grace(ops_daemon, tmp_path, receiver, browser):
    d = portal_daemon(ops_daemon, tmp_path)
    s1 = ok(call(d, "POST", "/api/v1/endpoints",
                 {"id": "rot", "sink": "hooks", "org_id": "acme", "url": receiver.url("/rot"),
                  "header_prefix": "webhook"}), 201)["secret"]
    b = browser
    b.open(link(d, "acme"), "endpoints")
    b.go("#/endpoints/rot", "endpoints")
    assert 'headers["webhook-signature"]' in b.text("section")
    grace = b.css("#grace")
    grace.clear()
    grace.send_keys("1h")
    b.button("Rotate secret").click()
    b.until(lambda: b.all("#new-secret"), "the rotated secret")
    s2 = b.text("#new-secret")
    assert s2.startswith("whsec_") and s2 != s1
    meta = ok(call(d, "GET", "/api/v1/endpoints/rot"))["secrets"]
    assert [m["prefix"] for m in meta] == [s2[:10], s1[:10]]
    assert b.css("#old-expires time").get_attribute("datetime") == meta[1]["expires_at"]
    assert b.button("Copy secret").is_enabled()
    b.shot("rotated")
    d.push([event("evt-rot")])
    (req,) = receiver.wait(1, "/rot")
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    assert sw_verify([(s1, req), (s2, req)]) == ["ok", "ok"]
    # The page shows the secret once: after a new look only prefixes remain.
    b.go("#/endpoints", "endpoints")
    b.go("#/endpoints/rot", "endpoints")
    assert b.all("#new-secret") == [] and s2[10:] not in b.driver.page_source
    assert json.dumps(meta[0]["prefix"])[1:-1] in b.text("dl.health")


def test_delivery_pages_and_filters_from_the_form(ops_daemon, tmp_path, browser):
    d = portal_daemon(ops_daemon, tmp_path, endpoints=ARCHIVE)
    d.push([event(f"p-{i:03d}", "job.completed" if i % 2 else "job.started")
            for i in range(120)])
    wait_until(lambda: len(ok(call(d, "GET", "/api/v1/deliveries?state=done&limit=1000"))) == 120,
               what="120 deliveries")
    b = browser
    b.open(link(d, "acme"), "endpoints")
    b.go("#/deliveries", "deliveries")

    def shown():
        return [r.find_elements("css selector", "td")[4].text
                for r in b.all("main tbody tr[data-delivery]")]

    def follow(label):
        b.js("delete document.body.dataset.view")
        b.driver.find_element("xpath", f"//nav[@aria-label='Pages of deliveries']"
                                       f"//a[normalize-space()='{label}']").click()
        b.wait_view("deliveries")
    assert shown() == [f"p-{i:03d}" for i in range(119, 69, -1)]
    follow("Older")
    assert shown() == [f"p-{i:03d}" for i in range(69, 19, -1)]
    follow("Older")
    assert shown() == [f"p-{i:03d}" for i in range(19, -1, -1)]
    assert b.driver.find_elements("xpath", "//nav[@aria-label='Pages of deliveries']"
                                           "//a[normalize-space()='Older']") == []
    follow("Newer")
    assert shown() == [f"p-{i:03d}" for i in range(69, 19, -1)]
    follow("Newer")
    assert shown()[0] == "p-119"
    # The filter form: event type and state, by keyboard-reachable selects.
    from selenium.webdriver.support.ui import Select
    Select(b.css("#flt-event_type")).select_by_value("job.started")
    Select(b.css("#flt-state")).select_by_value("done")
    b.js("delete document.body.dataset.view")
    b.button("Filter").click()
    b.wait_view("deliveries")
    assert b.driver.current_url.endswith("#/deliveries?state=done&event_type=job.started")
    assert shown() == [f"p-{i:03d}" for i in range(118, 18, -2)]
    follow("Older")
    assert shown() == [f"p-{i:03d}" for i in range(18, -1, -2)]
    b.shot("filtered")


def test_edit_test_event_and_delete_from_the_page(ops_daemon, tmp_path, receiver, browser):
    d = portal_daemon(ops_daemon, tmp_path)
    ok(call(d, "POST", "/api/v1/endpoints", {"id": "ed", "sink": "hooks", "org_id": "acme",
                                             "url": receiver.url("/one"),
                                             "enabled_events": ["job.*"]}), 201)
    b = browser
    b.open(link(d, "acme"), "endpoints")
    b.go("#/endpoints/ed", "endpoints")
    assert b.css("input[name=more_types]").get_attribute("value") == "job.*"
    url = b.css("input[name=url]")
    url.clear()
    url.send_keys(receiver.url("/two"))
    b.css("input[name=description]").send_keys("orders <b>feed</b>")
    b.css("input[name=event_type][value='*']").click()
    b.css("input[name=more_types]").clear()
    b.js("delete document.body.dataset.view")
    b.button("Save changes").click()
    b.wait_view("endpoints")
    got = ok(call(d, "GET", "/api/v1/endpoints/ed"))
    assert (got["url"], got["description"], got["enabled_events"]) == \
        (receiver.url("/two"), "orders <b>feed</b>", ["*"])
    assert b.text("main > p") == "orders <b>feed</b>"
    b.button("Send test event").click()
    b.until(lambda: b.text("#action-result"), "the test event's answer")
    (req,) = receiver.wait(1, "/two")
    assert b.text("#action-result") == f"Test event {req.headers['svix-id']} sent."
    assert req.body.startswith(b'{"event_id":"') and b'"event_type":"webhook.test"' in req.body
    b.button("Delete").click()
    b.shot("delete-confirm")
    assert b.text("#action-result").startswith("Delete endpoint ed? Its pending deliveries")
    b.js("delete document.body.dataset.view")
    b.css("#confirm-delete").click()
    b.wait_view("endpoints")
    assert b.driver.current_url.endswith("#/endpoints")
    assert b.all("main tbody tr") == [] and b.text("main p") == "No endpoints yet."
    refused_get = call(d, "GET", "/api/v1/endpoints/ed")
    assert refused_get.status == 404
