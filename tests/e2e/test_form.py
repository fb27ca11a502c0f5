"""
The legacy form sink end to end: the exact form body a receiver parses
(Web Scraper Cloud field map and value map by default, custom maps), the
token in the query, status >= 300 and timeouts retried, the legacy retry
policy by default, the SSRF guard, and the token kept out of logs.
"""

import re
import sys
import urllib.parse
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, cli, event, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver  # noqa: E402

TOKEN = "s3cr&t tok+en/\u00e9"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def form_sink(**extra):
    return {"legacy": {"plugin": "form", "allow_private_networks": True, **extra}}


def parse(body):
    return urllib.parse.parse_qs(body.decode(), keep_blank_values=True, strict_parsing=True)


def test_default_field_map_value_map_and_token(switchyard, receiver):
    d = switchyard(sinks=form_sink(), endpoints={
        "wsc": {"sink": "legacy", "url": receiver.url("/notify?source=sy"), "token": TOKEN}})
    data = {"job_id": "j 1&x=2", "status": "succeeded", "sitemap_id": 7,
            "sitemap_name": "shop/\u00fc", "pages": 12}
    d.push([event("evt-form-1", data=data)])
    (req,) = receiver.wait(1)
    assert req.method == "POST" and req.path == "/notify"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert req.headers["user-agent"].startswith("Switchyard/")
    # Exact bytes: field-map order, form encoding, "finished" for "succeeded",
    # custom_id absent from the event and so empty.
    assert req.body == (b"scrapingjob_id=j+1%26x%3D2&status=finished&sitemap_id=7"
                        b"&sitemap_name=shop%2F%C3%BC&custom_id=")
    assert parse(req.body) == {"scrapingjob_id": ["j 1&x=2"], "status": ["finished"],
                               "sitemap_id": ["7"], "sitemap_name": ["shop/\u00fc"],
                               "custom_id": [""]}
    assert req.query == {"source": ["sy"], "token": [TOKEN]}
    s = d.wait_for("deliveries.ok", 1)
    assert s["sinks"]["legacy"]["plugin"] == "form"
    assert s["sinks"]["legacy"]["requests"] == 1
    assert s["sinks"]["legacy"]["delivered"] == 1
    assert s["endpoints"]["wsc"]["last_status"] == 200


def test_custom_field_map_value_map_and_omitted_fields(switchyard, receiver):
    d = switchyard(sinks=form_sink(), endpoints={
        "custom": {"sink": "legacy", "url": receiver.url("/c"), "token": "abc",
                   "token_param": "api_key", "missing": "omit",
                   "headers": {"X-Legacy": "yes"},
                   "fields": {"id": "event_id", "state": "data.status", "org": "org_slug",
                              "count": "data.stats.pages", "tags": "data.tags",
                              "nothing": "data.absent", "nul": "data.nul"},
                   "value_map": {"state:failed": "error", "state:succeeded": "done"}}})
    d.push([event("evt-form-2", data={"status": "failed", "stats": {"pages": 3},
                                      "tags": ["a", "b"], "nul": None}),
            event("evt-form-3", data={"status": "stopped"})])
    reqs = receiver.wait(2)
    bodies = {parse(r.body)["id"][0]: r for r in reqs}
    r2, r3 = bodies["evt-form-2"], bodies["evt-form-3"]
    assert r2.body == (b"id=evt-form-2&state=error&org=acme&count=3"
                       b"&tags=%5B%22a%22%2C%22b%22%5D")
    assert parse(r3.body) == {"id": ["evt-form-3"], "state": ["stopped"], "org": ["acme"]}
    for r in (r2, r3):
        assert r.query == {"api_key": ["abc"]}
        assert r.headers["x-legacy"] == "yes"


def test_status_300_and_up_and_timeouts_retry(switchyard, receiver):
    receiver.on("/r", Answer(302, {"Location": "/elsewhere"}), Answer(410), Answer(200, delay=1.0),
                Answer(200))
    d = switchyard(sinks=form_sink(timeout="300ms"), endpoints={
        "ep": {"sink": "legacy", "url": receiver.url("/r"),
               "retry": {"schedule": ["100ms", "100ms", "100ms"]}}})
    d.push([event("evt-form-r", data={"job_id": "j9", "status": "failed"})])
    s = d.wait_for("deliveries.ok", 1)
    assert s["deliveries"]["attempts"] == 4
    assert s["deliveries"]["retries"] == 3
    assert s["sinks"]["legacy"]["timeouts"] == 1
    assert s["sinks"]["legacy"]["retried"] == 3
    reqs = receiver.wait(4, "/r", timeout=10)
    assert len({r.body for r in reqs}) == 1
    assert receiver.got("/elsewhere") == []


def test_default_retry_policy_is_legacy(tmp_path):
    conf = tmp_path / "conf.d"
    write_config(conf, core={"plugin_dir": str(PLUGIN_DIR),
                             "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
                             "quarantine": None},
                 sinks={"legacy": {"plugin": "form"}},
                 endpoints={"ep": {"sink": "legacy", "url": "https://example.com/n",
                                   "token": TOKEN}})
    r = cli("check", "-c", conf)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    m = re.search(r"^    retry:\s+(.*)$", out, re.M)
    assert m and m.group(1).startswith("5s, 10s"), out
    assert TOKEN not in out + r.stderr.decode()


def test_ssrf_refused_and_token_never_logged(switchyard, receiver):
    d = switchyard(sinks={"legacy": {"plugin": "form"}}, endpoints={
        "ep": {"sink": "legacy", "url": receiver.url("/x"), "token": TOKEN}})
    d.push([event("evt-form-s")])
    s = d.wait_for("deliveries.dead", 1)
    assert s["deliveries"]["attempts"] == 1
    assert s["sinks"]["legacy"]["ssrf_refused"] == 1
    assert s["sinks"]["legacy"]["failed"] == 1
    assert receiver.got() == []
    log = d.log()
    assert "refused to connect to 127.0.0.1: loopback address" in log
    enc = urllib.parse.quote_plus(TOKEN)
    assert TOKEN not in log and enc not in log and "s3cr" not in log


@pytest.mark.parametrize("ep, says", [
    ({"url": "http://h/x", "missing": "skip"}, "missing: \"skip\" is not \"empty\" or \"omit\""),
    ({"url": "http://h/x", "fields": {}}, "fields: the map is empty"),
    ({"url": "http://h/x", "fields": {"a": "data.a"}, "value_map": {"b:x": "y"}},
     "value_map.b:x: b is not a field of \"fields\""),
    ({"url": "http://h/x", "value_map": {"nocolon": "y"}}, "value_map.nocolon: keys are"),
    ({"url": "http://h/x", "token": "t", "token_param": "a b"}, "token_param: use letters"),
    ({"url": "mailto:x@example.com"}, "url: "),
])
def test_config_errors(tmp_path, ep, says):
    conf = tmp_path / "conf.d"
    write_config(conf, core={"plugin_dir": str(PLUGIN_DIR),
                             "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
                             "quarantine": None},
                 sinks={"legacy": {"plugin": "form"}},
                 endpoints={"ep": {"sink": "legacy", **ep}})
    r = cli("check", "-c", conf)
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert "endpoints.ep." + says in err, err
