"""
Security properties, end to end.

1. Tenant isolation: an endpoint of org A, even with "*", never receives
   an event of org B or one without org; events without org reach only
   endpoints without org; look-alike orgs, an org named only in the slug,
   the payload or the ZeroMQ topic, and ambiguous envelopes (duplicate,
   escaped-NUL, non-string org_id) never cross over. System events
   (webhook.delivery_failed) follow the org of the event they are about.
2. Secrets (webhook signing keys, the form token, AMQP passwords in the URL
   and in their own key, SQS credentials, the admin token) never appear in
   the daemon's log at any level and format, in the stats file, in the
   dead-letter notices other endpoints receive, or in `switchyard check`
   output, whether the config is valid or the secret itself is malformed:
   neither as written, nor base64-decoded, nor URL-encoded.
3. Plugins: a plugin file or folder that another user could write is
   refused before it is loaded, whether named in plugin_dir or by path.

Plugins that are not built are skipped with a reason.
"""

import base64
import http.server
import json
import os
import shutil
import stat
import subprocess
import threading
import urllib.parse
from collections import Counter

import pytest

from conftest import (BIN, PLUGIN_DIR, READY_TIMEOUT, Daemon, cli, event, files_under,
                      free_ports, read_lines, wait_until, write_config)


def plugin_so(name):
    return PLUGIN_DIR / f"{name}.so"


def need_plugin(name):
    if not plugin_so(name).exists():
        pytest.skip(f"plugin {name} is not built ({plugin_so(name)} missing)")


# --------------------------------------------------------------------------
# 1. tenant isolation
# --------------------------------------------------------------------------

def lines_by_endpoint(root):
    """{endpoint_id: [parsed events]} from files named <endpoint_id>.jsonl."""
    got = {}
    for rel in files_under(root):
        got[rel[:-len(".jsonl")]] = [json.loads(l) for l in read_lines(root / rel)]
    return got


def test_cross_org_routing(switchyard, tmp_path, flaky_so):
    out = tmp_path / "routed"
    sinks = {"files": {"plugin": "file", "fsync": "never", "path": f"{out}/{{endpoint_id}}.jsonl"},
             "broken": {"plugin": flaky_so, "log": str(tmp_path / "flaky.log"),
                        "fail_times": 1000, "fail_mode": "fail"}}
    endpoints = {
        "a-all": {"sink": "files", "org_id": "acme", "enabled_events": ["*"]},
        "a-jobs": {"sink": "files", "org_id": "acme", "enabled_events": ["job.*"]},
        "a-exact": {"sink": "files", "org_id": "acme", "enabled_events": ["job.completed"]},
        "a-sys": {"sink": "files", "org_id": "acme",
                  "enabled_events": ["*", "webhook.delivery_failed"]},
        "b-all": {"sink": "files", "org_id": "beta", "enabled_events": ["*"]},
        "b-sys": {"sink": "files", "org_id": "beta", "enabled_events": ["webhook.*"]},
        "platform": {"sink": "files", "enabled_events": ["*"]},
        "platform-sys": {"sink": "files", "enabled_events": ["webhook.delivery_failed"]},
        # Their deliveries fail for good: each dead letter raises a system
        # event carrying the org of the event it is about.
        "a-broken": {"sink": "broken", "org_id": "acme", "enabled_events": ["job.failed"]},
        "b-broken": {"sink": "broken", "org_id": "beta", "enabled_events": ["job.failed"]},
    }
    d = switchyard(sinks=sinks, endpoints=endpoints)

    sent = {}   # accepted event id -> (the org routing must use or None, event type)
    msgs = []

    def send(eid, org, topic=None, event_type="job.completed", **kw):
        body = event(eid, event_type=event_type, org=org, **kw)
        msgs.append([topic, body] if topic else body)
        sent[eid] = (org, event_type)

    for i in range(5):
        send(f"acme-c{i}", "acme")
        send(f"beta-c{i}", "beta")
    for i in range(3):
        send(f"acme-f{i}", "acme", event_type="job.failed")
        send(f"beta-f{i}", "beta", event_type="job.failed")
    send("acme-art", "acme", event_type="artifact.ready")
    for i in range(3):
        send(f"none-{i}", None)
        send(f"null-{i}", None, org_id=None, org_slug=None)
    # Org named only where routing must not look.
    send("slug-only", None, org_slug="acme")
    send("slug-acme", "beta", org_slug="acme")
    send("data-acme", "beta", data={"org_id": "acme", "org": {"org_id": "acme"}})
    send("topic-acme", "beta", topic=b"acme")
    send("topic-acme-none", None, topic=b"acme.job.completed")
    # Look-alikes: other orgs, byte for byte.
    for i, other in enumerate(["ACME", "acme ", " acme", "acme\u200b", "\u0430cme", "acm",
                               "acmeacme", "acme.beta", "*", "beta\t"]):
        send(f"alike-{i}", other)
    # Ambiguous envelopes: refused, so never routed at all.
    rejected = [
        b'{"event_id":"dup-1","event_type":"job.completed","org_id":"beta","org_id":"acme","data":{}}',
        b'{"event_id":"dup-2","event_type":"job.completed","org_id":"acme","org\\u005fid":"beta"}',
        b'{"event_id":"nul-1","event_type":"job.completed","org_id":"acme\\u0000beta"}',
        b'{"event_id":"nul-2","event_type":"job.completed","org_id":"beta\\u0000"}',
        b'{"event_id":"arr-1","event_type":"job.completed","org_id":["acme"]}',
        b'{"event_id":"num-1","event_type":"job.completed","org_id":1}',
        b'{"event_id":"obj-1","event_type":"job.completed","org_id":{"id":"acme"}}',
        b'{"event_id":"empty-1","event_type":"job.completed","org_id":""}',
        b'{"event_id":"bool-1","event_type":"job.completed","org_id":true}',
    ]
    msgs += rejected
    d.push(msgs)

    def wanted(ep_org, patterns):
        """The documented rule, applied to what was sent."""
        ids = set()
        for eid, (org, t) in sent.items():
            if ep_org is not None and org != ep_org:
                continue
            if any(p == "*" or p == t or (p.endswith(".*") and t.startswith(p[:-1]))
                   for p in patterns):
                ids.add(eid)
        return ids

    want = {
        "a-all": wanted("acme", ["*"]), "a-jobs": wanted("acme", ["job.*"]),
        "a-exact": wanted("acme", ["job.completed"]), "a-sys": wanted("acme", ["*"]),
        "b-all": wanted("beta", ["*"]), "b-sys": set(), "platform": wanted(None, ["*"]),
        "platform-sys": set(),
    }
    # Each job.failed of acme or beta dies once at its org's broken endpoint;
    # its notice goes to that org's *-sys endpoint and to platform-sys.
    n_dead = sum(1 for org, t in sent.values() if t == "job.failed" and org in ("acme", "beta"))
    n_files = sum(len(v) for v in want.values()) + 2 * n_dead
    d.wait_stats(lambda s: s["deliveries"]["dead"] >= n_dead and s["deliveries"]["ok"] >= n_files,
                 f"{n_dead} dead letters and {n_files} file deliveries")
    assert d.stop() == 0
    s = d.final_stats
    assert s["events"]["rejected"] == len(rejected)
    assert s["rejected"]["bad_value"] == 5 and s["rejected"]["wrong_type"] == 4
    assert s["deliveries"]["dead"] == n_dead and s["deliveries"]["ok"] == n_files

    got = lines_by_endpoint(out)
    published = {ep: {e["event_id"] for e in evs if not e["event_id"].startswith("sys_")}
                 for ep, evs in got.items()}
    for ep, ids in want.items():
        assert published.get(ep, set()) == ids, ep
    # Every event an org endpoint got is of that org, exactly.
    for ep, evs in got.items():
        org = endpoints[ep].get("org_id")
        for e in evs:
            if org is not None:
                assert e.get("org_id") == org, (ep, e)
    # Dead-letter notices: about the endpoint's own org only; the platform sees both.
    notices = {ep: Counter((e["org_id"], e["data"]["endpoint_id"]) for e in evs
                           if e["event_type"] == "webhook.delivery_failed")
               for ep, evs in got.items()}
    assert notices["a-sys"] == Counter({("acme", "a-broken"): 3})
    assert notices["b-sys"] == Counter({("beta", "b-broken"): 3})
    assert notices["platform-sys"] == Counter({("acme", "a-broken"): 3, ("beta", "b-broken"): 3})
    for ep in ("a-all", "a-jobs", "a-exact", "b-all", "platform"):
        assert not notices.get(ep), f"{ep} got system events through '*' or job.*"


# --------------------------------------------------------------------------
# 2. secrets
# --------------------------------------------------------------------------

WH_HMAC_RAW = b"webhook-hmac-key-material-0123"   # printable, so a decoded leak is visible
WH_ED_RAW = b"ed25519-seed-32-bytes-long-abcd!"
WH_HMAC = "whsec_" + base64.b64encode(WH_HMAC_RAW).decode()
WH_ED = "whsk_" + base64.b64encode(WH_ED_RAW).decode()
FORM_TOKEN = "FormToken-x8y7Q2w9"
AMQP_URL_PW = "AmqpUrlPw-7f3k%2Fx"    # percent-escaped in the URL: "AmqpUrlPw-7f3k/x"
AMQP_KEY_PW = "AmqpKeyPw-9q2zR5t"
SQS_KEY_ID = "AKIASECRETKEYID12345"
SQS_SECRET = "SqsSecretAccessKey/abcdef0123456789"
SQS_TOKEN = "SqsSessionToken-zz99Xy"
ADMIN_TOKEN = "AdminBearerToken-4k2j9x0"


def secret_forms(secret):
    """The spellings of a secret to look for: as written, decoded, re-encoded."""
    forms = {secret.encode(), urllib.parse.unquote(secret).encode(),
             urllib.parse.quote(secret, safe="").encode(),
             base64.b64encode(secret.encode())}
    for prefix in ("whsec_", "whsk_", "whpk_"):
        if secret.startswith(prefix):
            b64 = secret[len(prefix):]
            forms |= {b64.encode(), base64.b64decode(b64), base64.b64decode(b64).hex().encode()}
    return {f for f in forms if len(f) >= 8}


def assert_no_secrets(where, data, secrets):
    for name, secret in secrets.items():
        for form in secret_forms(secret):
            assert form not in data, f"{name} ({form!r}) appears in {where}"


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """
    The worst receiver for secrets: every answer is an error whose body and
    Location header repeat the request line (URL with its query: the form
    token) and every request header (signatures, AWS credentials).
    """
    statuses = [500, 302, 400, 429, 401, 404]
    count = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        echo = (f"rejected {self.command} {self.path}\n" +
                "".join(f"{k}: {v}\n" for k, v in self.headers.items())).encode() + body
        EchoHandler.count += 1
        self.send_response(self.statuses[EchoHandler.count % len(self.statuses)])
        self.send_header("Content-Type", "text/plain")
        self.send_header("Location", "http://receiver.invalid" + self.path)
        self.send_header("WWW-Authenticate", f'Bearer error="{self.path}"')
        self.send_header("Content-Length", str(len(echo)))
        self.end_headers()
        self.wfile.write(echo)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def admin_supported(tmp_path):
    """Whether this build knows core.admin (the admin API is being added)."""
    d = tmp_path / "probe"
    port = free_ports(1)[0]
    write_config(d, {"plugin_dir": str(PLUGIN_DIR),
                     "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}],
                     "admin": {"listen": f"127.0.0.1:{port}", "token": ADMIN_TOKEN}},
                 {"files": {"plugin": "file", "path": str(tmp_path / "x.jsonl")}}, {})
    r = cli("check", "-c", d)
    return b"core.admin" not in r.stderr


def secret_config(tmp_path, http_port, closed_port):
    """Sinks and endpoints of every built plugin that takes a secret; every delivery fails."""
    fail_fast = {"schedule": ["20ms"], "max_attempts": 2}
    sinks = {"notices": {"plugin": "file", "path": str(tmp_path / "notices.jsonl")}}
    endpoints = {"notices": {"sink": "notices", "enabled_events": ["webhook.delivery_failed"]}}
    secrets = {}
    if plugin_so("webhook").exists():
        sinks["hooks"] = {"plugin": "webhook", "allow_private_networks": True, "timeout": "1s"}
        endpoints["wh"] = {"sink": "hooks", "url": f"http://127.0.0.1:{http_port}/hook",
                           "secrets": [WH_HMAC, WH_ED], "retry": fail_fast}
        secrets.update(webhook_hmac=WH_HMAC, webhook_ed25519=WH_ED)
    if plugin_so("form").exists():
        sinks["forms"] = {"plugin": "form", "allow_private_networks": True, "timeout": "1s"}
        endpoints["fm"] = {"sink": "forms", "url": f"http://127.0.0.1:{http_port}/form?site=1",
                           "token": FORM_TOKEN, "retry": fail_fast}
        secrets.update(form_token=FORM_TOKEN)
    if plugin_so("amqp").exists():
        amqp = {"plugin": "amqp", "connect_timeout": "200ms", "reconnect_min": "20ms",
                "reconnect_max": "100ms"}
        # One talks to an HTTP server (a broken handshake), one to a closed port.
        sinks["mq1"] = dict(amqp, url=f"amqp://sy:{AMQP_URL_PW}@127.0.0.1:{http_port}/vh")
        sinks["mq2"] = dict(amqp, url=f"amqp://sy@127.0.0.1:{closed_port}/vh",
                            password=AMQP_KEY_PW)
        endpoints["mq1e"] = {"sink": "mq1", "retry": fail_fast}
        endpoints["mq2e"] = {"sink": "mq2", "retry": fail_fast}
        secrets.update(amqp_url_password=AMQP_URL_PW, amqp_password=AMQP_KEY_PW)
    if plugin_so("sqs").exists():
        sinks["q"] = {"plugin": "sqs", "region": "us-east-1",
                      "queue_url": f"http://127.0.0.1:{http_port}/000000000000/events",
                      "access_key_id": SQS_KEY_ID, "secret_access_key": SQS_SECRET,
                      "session_token": SQS_TOKEN, "request_timeout": "1s"}
        endpoints["qe"] = {"sink": "q", "retry": fail_fast}
        secrets.update(sqs_access_key_id=SQS_KEY_ID, sqs_secret_access_key=SQS_SECRET,
                       sqs_session_token=SQS_TOKEN)
    if len(secrets) == 0:
        pytest.skip("no plugin taking secrets (webhook, form, amqp, sqs) is built")
    return sinks, endpoints, secrets


class QuietDaemon(Daemon):
    """
    The conftest Daemon, ready when its stats file appears: at warn and
    error the "switchyard ready" line is not logged, and in JSON it is
    spelled differently. The stats file is first written right after it.
    """

    def start(self):
        self._write_config()
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen([str(BIN), "run", "-c", str(self.conf_dir)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=logf)
        wait_until(lambda: self.stats_path.exists() or self.proc.poll() is not None,
                   timeout=READY_TIMEOUT, what="the first stats file", on_timeout=self.log)
        assert self.alive(), f"switchyard exited with {self.proc.returncode}:\n{self.log()}"
        return self


@pytest.fixture
def quiet_daemon(tmp_path):
    """Factory like conftest's switchyard fixture: every daemon must exit 0 on SIGTERM."""
    started = []

    def start(**kw):
        d = QuietDaemon(tmp_path / f"q{len(started)}", **kw)
        started.append(d)
        return d.start()

    yield start
    for d in started:
        rc = d.stop()
        assert rc == 0, f"switchyard exited with {rc}; log:\n{d.log()[-4000:]}"


@pytest.mark.parametrize("level,fmt", [("debug", "logfmt"), ("debug", "json"),
                                       ("info", "logfmt"), ("warn", "json"),
                                       ("error", "logfmt")])
def test_secrets_absent_from_logs(quiet_daemon, tmp_path, echo_server, level, fmt):
    closed = free_ports(1)[0]
    sinks, endpoints, secrets = secret_config(tmp_path, echo_server, closed)
    core = {"log_level": level, "log_format": fmt}
    if admin_supported(tmp_path):
        core["admin"] = {"listen": f"127.0.0.1:{free_ports(1)[0]}", "token": ADMIN_TOKEN}
        secrets["admin_token"] = ADMIN_TOKEN
    d = quiet_daemon(sinks=sinks, endpoints=endpoints, core=core)
    n = 4
    d.push([event(f"s-{i}", org="acme", data={"i": i}) for i in range(n)])
    failing = len(endpoints) - 1
    d.wait_stats(lambda s: s["deliveries"]["dead"] >= n * failing and
                 s["deliveries"]["ok"] >= n * failing,
                 f"{n * failing} dead letters and their notices")
    assert d.stop() == 0
    log = d.log_path.read_bytes()
    # The grep below saw what it should: this level's lines and nothing chattier.
    seen = {lv for lv in ("error", "warn", "info", "debug")
            if f"level={lv} ".encode() in log or f'"level":"{lv}"'.encode() in log}
    order = ["error", "warn", "info", "debug"]
    assert level in seen or level == "error", f"no {level} lines in the log"
    assert all(order.index(lv) <= order.index(level) for lv in seen), seen
    assert_no_secrets(f"the {level}/{fmt} log", log, secrets)
    assert_no_secrets("the stats file", d.stats_path.read_bytes(), secrets)
    notices = (tmp_path / "notices.jsonl").read_bytes()
    assert notices.count(b"webhook.delivery_failed") == n * failing
    assert_no_secrets("delivery_failed notices", notices, secrets)


def test_secrets_absent_from_check_output(tmp_path, echo_server):
    closed = free_ports(1)[0]
    sinks, endpoints, secrets = secret_config(tmp_path, echo_server, closed)
    port = free_ports(1)[0]
    core = {"plugin_dir": str(PLUGIN_DIR), "log_level": "debug",
            "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}]}
    write_config(tmp_path / "conf.d", core, sinks, endpoints)
    r = cli("check", "-c", tmp_path / "conf.d")
    assert r.returncode == 0, r.stderr.decode()
    assert b"configuration OK" in r.stdout
    assert_no_secrets("`switchyard check` output", r.stdout + r.stderr, secrets)


def _bad_webhook(s, e):
    e["wh"]["secrets"] = ["whsec_!!SekritHmacNotBase64!!", "whsk_U2Vrcml0U2hvcnRTZWVk"]
    return "wh", ["SekritHmacNotBase64", "whsk_U2Vrcml0U2hvcnRTZWVk", "SekritShortSeed"]


def _bad_form_token(s, e):
    e["fm"]["token"] = 1234567890123
    return "fm", ["1234567890123"]


def _bad_amqp_port(s, e):
    s["mq1"]["url"] = "amqp://sy:SekritAmqpPw1@127.0.0.1:99999/vh"
    return "mq1", ["SekritAmqpPw1"]


def _bad_amqp_scheme(s, e):
    s["mq1"]["url"] = "http://sy:SekritAmqpPw2@127.0.0.1/vh"
    return "mq1", ["SekritAmqpPw2"]


def _bad_amqp_escape(s, e):
    s["mq1"]["url"] = "amqp://sy:SekritAmqpPw3%zz@127.0.0.1/vh"
    return "mq1", ["SekritAmqpPw3"]


def _bad_amqp_host(s, e):
    s["mq1"]["url"] = "amqps://sy:SekritAmqpPw4@[::1/vh"
    return "mq1", ["SekritAmqpPw4"]


def _bad_amqp_password_type(s, e):
    s["mq2"]["password"] = ["SekritAmqpPw5"]
    return "mq2", ["SekritAmqpPw5"]


def _bad_sqs_types(s, e):
    s["q"]["secret_access_key"] = {"v": "SekritSqsKey1"}
    s["q"]["session_token"] = ["SekritSqsTok1"]
    return "q", ["SekritSqsKey1", "SekritSqsTok1"]


BROKEN_SECRETS = [("webhook", _bad_webhook), ("form", _bad_form_token),
                  ("amqp", _bad_amqp_port), ("amqp", _bad_amqp_scheme),
                  ("amqp", _bad_amqp_escape), ("amqp", _bad_amqp_host),
                  ("amqp", _bad_amqp_password_type), ("sqs", _bad_sqs_types)]


@pytest.mark.parametrize("plugin,breaker", BROKEN_SECRETS,
                         ids=[b.__name__[5:] for _, b in BROKEN_SECRETS])
def test_malformed_secret_not_echoed_in_errors(tmp_path, plugin, breaker):
    need_plugin(plugin)
    sinks, endpoints, _ = secret_config(tmp_path, free_ports(1)[0], free_ports(1)[0])
    name, leaks = breaker(sinks, endpoints)
    port = free_ports(1)[0]
    core = {"plugin_dir": str(PLUGIN_DIR),
            "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}]}
    write_config(tmp_path / "conf.d", core, sinks, endpoints)
    for cmd in ("check", "run"):
        r = cli(cmd, "-c", tmp_path / "conf.d", timeout=30)
        out = (r.stdout + r.stderr).decode()
        assert r.returncode == 2, f"{cmd}: expected exit 2, got {r.returncode}\n{out}"
        assert name in out, f"{cmd}: the error does not name {name}:\n{out}"
        for leak in leaks:
            assert leak not in out, f"{cmd} echoes the secret {leak!r}:\n{out}"


def test_admin_token_not_echoed(tmp_path):
    if not admin_supported(tmp_path):
        pytest.skip("this build has no core.admin (admin API not built yet)")
    port = free_ports(1)[0]
    short = "SekritAdmin1"  # under 16 characters: refused
    token_file = tmp_path / "admin.token"
    token_file.write_text("SekritAdmin2\n")
    for admin in ({"listen": f"127.0.0.1:{port}", "token": short},
                  {"listen": f"127.0.0.1:{port}", "token_file": str(token_file)}):
        write_config(tmp_path / "conf.d", {"plugin_dir": str(PLUGIN_DIR), "admin": admin,
                                           "ingress": [{"type": "pull",
                                                        "bind": f"tcp://127.0.0.1:{port}"}]},
                     {"files": {"plugin": "file", "path": str(tmp_path / "x.jsonl")}}, {})
        r = cli("check", "-c", tmp_path / "conf.d")
        out = (r.stdout + r.stderr).decode()
        assert r.returncode == 2 and "core.admin.token" in out, out
        assert "SekritAdmin" not in out, out


# --------------------------------------------------------------------------
# 3. plugin file permissions
# --------------------------------------------------------------------------

def plugin_setup(tmp_path, folder, mode=0o644, folder_mode=0o755, by_path=True):
    """
    Copies file.so into folder (created, chmod folder_mode) with mode, and
    writes a config loading it by path (by_path) or by name from plugin_dir.
    Returns (conf_dir, so path).
    """
    folder.mkdir(parents=True, exist_ok=True)
    so = folder / "file.so"
    shutil.copy(plugin_so("file"), so)
    os.chmod(so, mode)
    os.chmod(folder, folder_mode)
    port = free_ports(1)[0]
    core = {"plugin_dir": str(folder if not by_path else PLUGIN_DIR),
            "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}],
            "stats_file": str(tmp_path / "stats.json")}
    sinks = {"files": {"plugin": str(so) if by_path else "file",
                       "path": str(tmp_path / "out.jsonl")}}
    d = tmp_path / "conf.d"
    write_config(d, core, sinks, {"x": {"sink": "files"}})
    return d, so


def assert_refused(conf_dir, tmp_path, *needles):
    """check and run both refuse (exit 2), naming what is wrong; run binds nothing."""
    for cmd in ("check", "run"):
        r = cli(cmd, "-c", conf_dir, timeout=30)
        err = r.stderr.decode()
        assert r.returncode == 2, f"switchyard {cmd} loaded an unsafe plugin (exit " \
                                  f"{r.returncode}):\n{r.stdout.decode()}{err}"
        assert "refusing to load" in err, err
        for n in needles:
            assert str(n) in err, err
    assert not (tmp_path / "stats.json").exists()


def test_safe_plugin_copy_loads(tmp_path):
    """The control for the refusals: the same copy in a 0755 folder, mode 0644."""
    d, so = plugin_setup(tmp_path, tmp_path / "safe")
    r = cli("check", "-c", d)
    assert r.returncode == 0, r.stderr.decode()
    assert str(so) in r.stdout.decode()


@pytest.mark.parametrize("mode,who", [(0o664, "group"), (0o666, "world"), (0o646, "world"),
                                      (0o775, "group"), (0o777, "world")])
@pytest.mark.parametrize("by_path", [True, False], ids=["by_path", "by_name"])
def test_writable_plugin_file_refused(tmp_path, mode, who, by_path):
    d, so = plugin_setup(tmp_path, tmp_path / "plugins", mode=mode, by_path=by_path)
    assert stat.S_IMODE(os.stat(so).st_mode) == mode
    assert_refused(d, tmp_path, so, f"{who}-writable")


@pytest.mark.parametrize("folder_mode,who", [(0o775, "group"), (0o777, "world"),
                                             (0o757, "world")])
@pytest.mark.parametrize("by_path", [True, False], ids=["by_path", "by_name"])
def test_writable_plugin_folder_refused(tmp_path, folder_mode, who, by_path):
    folder = tmp_path / "plugins"
    d, so = plugin_setup(tmp_path, folder, folder_mode=folder_mode, by_path=by_path)
    assert_refused(d, tmp_path, folder, f"{who}-writable")
    # `switchyard plugins` lists it as refused too.
    r = cli("plugins", "--dir", folder)
    assert "REFUSED" in r.stdout.decode() and f"{who}-writable" in r.stdout.decode()


def test_plugin_path_in_world_writable_dir_refused(tmp_path):
    """A config's "plugin" naming a file in a /tmp-like folder anybody can write to."""
    folder = tmp_path / "shared"
    d, so = plugin_setup(tmp_path, folder, folder_mode=0o777)
    assert_refused(d, tmp_path, folder)


def test_plugin_under_world_writable_ancestor_refused(tmp_path):
    """
    ww/ (0777) / lib/ (0755) / file.so (0644): anybody can rename lib/ away
    and put their own lib/file.so in its place, so the plugin is no safer
    than ww/ itself. Every folder up to the root must be safe.
    """
    ww = tmp_path / "ww"
    ww.mkdir()
    d, so = plugin_setup(tmp_path, ww / "lib")
    os.chmod(ww, 0o777)
    assert_refused(d, tmp_path, ww)


def test_plugin_symlink_into_world_writable_dir_refused(tmp_path):
    """safe/file.so -> ww/file.so: the file actually loaded lives where anybody can replace it."""
    ww = tmp_path / "ww"
    d, target = plugin_setup(tmp_path, ww, folder_mode=0o777)
    safe = tmp_path / "safe"
    safe.mkdir(mode=0o755)
    link = safe / "file.so"
    link.symlink_to(target)
    sinks = {"files": {"plugin": str(link), "path": str(tmp_path / "out.jsonl")}}
    write_config(d, None, sinks, None)
    assert_refused(d, tmp_path, ww)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_plugin_owned_by_another_user_refused(tmp_path):
    """
    A 0644 plugin owned by another (non-root) user: its owner can rewrite
    it at will. In a sticky world-writable folder like /tmp, that is how
    another user plants a library for us to load.
    """
    sticky = tmp_path / "tmp"
    d, so = plugin_setup(tmp_path, sticky, folder_mode=0o1777)
    os.chown(so, 65534, 65534)
    assert_refused(d, tmp_path, so)

