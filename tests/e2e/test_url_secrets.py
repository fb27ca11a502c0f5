"""
Tokens in URLs (issue 10, item 8). A webhook or form URL may carry a token
in its query (the form sink puts its own there), and a receiver may answer
with a redirect whose Location repeats the URL, token and all, or adds user
info. No detail, error or log line may hold a URL with a query or user info:
scheme, host, port and path are enough. Details travel far (the spool's
deliveries and attempts, /api/v1/deliveries, /api/v1/endpoints, `switchyard
status`, `switchyard replay --list`, webhook.delivery_failed events other
endpoints receive), so every one of those is scanned for the tokens, as
test_security.py does for declared secrets. URLs with user info are refused
in config, without echoing them.
"""

import http.server
import json
import threading

import pytest

from conftest import PLUGIN_DIR, cli, event, free_ports, write_config
from test_ops_helpers import file_sink, ops_daemon, sink_events  # noqa: F401 (fixture)
from test_security import FORM_TOKEN, assert_no_secrets, need_plugin

QUERY_TOKEN = "QueryToken-5f2Kx9Wq"
USER_TOKEN = "UserInfoPw-8h3Lq1Zr"
TOKENS = {"query_token": QUERY_TOKEN, "userinfo_password": USER_TOKEN, "form_token": FORM_TOKEN}


class RedirectHandler(http.server.BaseHTTPRequestHandler):
    """
    /abs: 302 to our own URL with user info added; /rel: 307 to the request
    path (query included); /nolocation: 303 without Location; anything
    else: 500 whose body and WWW-Authenticate repeat the request path.
    """

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?")[0]
        port = self.server.server_address[1]
        if path == "/abs":
            self.answer(302, {"Location": f"http://sy:{USER_TOKEN}@127.0.0.1:{port}{self.path}"})
        elif path == "/rel":
            self.answer(307, {"Location": self.path + "#frag-" + QUERY_TOKEN})
        elif path == "/nolocation":
            self.answer(303, {})
        else:
            self.answer(500, {"WWW-Authenticate": f'Bearer error="{self.path}"'},
                        f"no such hook: {self.path}".encode())

    def answer(self, status, headers, body=b""):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def redirector():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RedirectHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_url_tokens_appear_in_no_output(ops_daemon, tmp_path, redirector):
    need_plugin("webhook")
    need_plugin("form")
    base = f"http://127.0.0.1:{redirector}"
    closed = free_ports(1)[0]
    fail_fast = {"schedule": ["20ms"], "max_attempts": 2}
    q = f"?token={QUERY_TOKEN}&site=7"
    secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    hooks = {"sink": "hooks", "secrets": secrets, "retry": fail_fast}
    endpoints = {
        "wh-abs": {**hooks, "url": f"{base}/abs{q}"},
        "wh-rel": {**hooks, "url": f"{base}/rel{q}"},
        "wh-none": {**hooks, "url": f"{base}/nolocation{q}"},
        "wh-500": {**hooks, "url": f"{base}/err{q}"},
        "wh-down": {**hooks, "url": f"http://127.0.0.1:{closed}/down{q}"},
        "fm-abs": {"sink": "forms", "url": f"{base}/abs?site=7", "token": FORM_TOKEN,
                   "retry": fail_fast},
        "fm-down": {"sink": "forms", "url": f"http://127.0.0.1:{closed}/down{q}",
                    "token": FORM_TOKEN, "retry": fail_fast},
        "notices": {"sink": "notices", "enabled_events": ["webhook.delivery_failed"]},
    }
    sinks = {"hooks": {"plugin": "webhook", "allow_private_networks": True, "timeout": "2s"},
             "forms": {"plugin": "form", "allow_private_networks": True, "timeout": "2s"},
             "notices": file_sink(tmp_path / "notices.jsonl")}
    d = ops_daemon(sinks=sinks, endpoints=endpoints, core={"log_level": "debug"})
    n, failing = 2, len(endpoints) - 1
    d.push([event(f"u-{i}") for i in range(n)])
    d.wait_stats(lambda s: s["deliveries"]["dead"] >= n * failing and
                 s["deliveries"]["ok"] >= n * failing, f"{n * failing} dead letters and notices")

    # The details say where the redirect went, without what travelled with it.
    dead = d.get_json("/api/v1/deliveries?state=dead&limit=1000")
    details = {x["endpoint"]: x["last_detail"] for x in dead}
    assert details["wh-abs"] == f"HTTP 302 redirect to {base}/abs not followed"
    assert details["wh-rel"] == "HTTP 307 redirect to /rel not followed"
    assert details["wh-none"] == "HTTP 303 redirect to (no Location) not followed"
    assert details["wh-500"] == "HTTP 500"
    assert details["fm-abs"] == "HTTP 302"
    assert details["wh-down"].startswith("connect: ") and details["fm-down"].startswith("connect: ")

    outputs = {
        "/api/v1/deliveries": d.api("GET", "/api/v1/deliveries?limit=10000").body,
        "/api/v1/endpoints": d.api("GET", "/api/v1/endpoints").body,
        "switchyard status": cli("status", "-c", d.conf_dir).stdout,
        "switchyard status --json": cli("status", "-c", d.conf_dir, "--json").stdout,
        "/metrics": d.api("GET", "/metrics").body,
    }
    for name in ("spool.db", "spool.db-wal"):
        outputs[f"{name} (running)"] = (d.spool_path.parent / name).read_bytes()
    assert d.stop() == 0
    r = cli("replay", "-c", d.conf_dir, "--list")
    assert r.returncode == 0 and r.stdout.endswith(f"\n{n * failing} dead deliveries match\n"
                                                   .encode()), r
    outputs["switchyard replay --list"] = r.stdout + r.stderr
    outputs["spool.db (stopped)"] = d.spool_path.read_bytes()
    outputs["daemon log"] = d.log_path.read_bytes()
    outputs["stats file"] = d.stats_path.read_bytes()
    notices = sink_events(tmp_path / "notices.jsonl")
    assert len(notices) == n * failing
    assert {e["data"]["last_detail"] for e in notices} == set(details.values())
    outputs["webhook.delivery_failed notices"] = (tmp_path / "notices.jsonl").read_bytes()
    # The scan sees what it should: the details are there, the tokens are not.
    assert f"redirect to {base}/abs not followed".encode() in outputs["spool.db (stopped)"]
    for where, data in outputs.items():
        assert_no_secrets(where, data, TOKENS)
    assert json.loads(outputs["switchyard status --json"]) is not None


def test_user_info_in_a_url_is_refused_without_echo(tmp_path):
    need_plugin("webhook")
    need_plugin("form")
    port = free_ports(1)[0]
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}]},
                 {"hooks": {"plugin": "webhook"}, "forms": {"plugin": "form"}},
                 {"wh": {"sink": "hooks", "url": f"https://sy:{USER_TOKEN}@example.com/h",
                         "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]},
                  "fm": {"sink": "forms", "url": f"https://sy:{USER_TOKEN}@example.com/f"}})
    for cmd in ("check", "run"):
        r = cli(cmd, "-c", conf, timeout=30)
        out = (r.stdout + r.stderr).decode()
        assert r.returncode == 2, out
        for ep in ("wh", "fm"):
            assert (f"endpoints.{ep}.url: URL carries credentials (user@host): use headers "
                    "instead") in out, out
        assert_no_secrets(f"`switchyard {cmd}` output", out.encode(), TOKENS)
