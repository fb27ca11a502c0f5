"""
The admin API (core/admin.c): /metrics, /healthz, /readyz, the bearer
token, /api/v1/endpoints, /api/v1/endpoints/{id}/test, /api/v1/events,
and the errors (401, 404, 405, 400, 501 as JSON). Deliveries and replay
are in test_admin_replay.py.
"""

import json


from conftest import PLUGIN_DIR, cli, write_config
from test_ops_helpers import (TOKEN, Metrics, ack_all, event, file_sink, flaky_sink, http,
                              ops_daemon, sink_events, wait_until)  # noqa: F401 (fixture)

REASONS = ["too_big", "empty", "invalid_utf8", "too_deep", "not_json", "not_object",
           "missing_field", "wrong_type", "bad_value", "bad_frames"]
ATTEMPT_OUTCOMES = ["ok", "retry", "fail"]
END_STATES = ["delivered", "dead"]
ENDPOINT_FIELDS = {"id", "org_id", "source", "sink", "plugin", "state", "success_rate", "routed",
                   "attempts", "ok", "dead", "pending", "last_status", "last_error"}


def error_of(r, status):
    """Asserts r is status with a JSON {"error": "..."} body; returns the message."""
    assert r.status == status, r
    body = r.json()
    assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"], body
    return body["error"]


# --------------------------------------------------------------------------
# health and metrics
# --------------------------------------------------------------------------

def test_healthz_and_readyz(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    for path, body in (("/healthz", b"ok\n"), ("/readyz", b"ready\n")):
        r = http(d.base, "GET", path)
        assert (r.status, r.body) == (200, body)
        assert r.headers["Content-Type"] == "text/plain"
        assert r.headers["Cache-Control"] == "no-store"


def test_metrics_counters_move_as_events_flow(ops_daemon, tmp_path):
    d = ops_daemon(
        sinks={"files": file_sink(tmp_path / "out.jsonl"),
               "fl": flaky_sink(tmp_path / "flaky.log", fail_times=1)},
        endpoints={"all": {"sink": "files", "enabled_events": ["*"]},
                   "jobs": {"sink": "fl", "enabled_events": ["job.*"],
                            "retry": {"schedule": ["10ms"]}}})
    r = http(d.base, "GET", "/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    m0 = Metrics(r.text)
    assert m0.types["switchyard_events_received_total"] == "counter"
    assert m0.types["switchyard_events_rejected_total"] == "counter"
    assert m0.types["switchyard_attempts_total"] == "counter"
    assert m0.types["switchyard_deliveries_finished_total"] == "counter"
    assert "switchyard_deliveries_total" not in m0.types  # mixed attempts and end states
    assert m0.types["switchyard_build_info"] == "gauge"
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds", "process_start_time_seconds"):
        assert name in m0.types, name
    assert m0.types["switchyard_attempt_duration_seconds"] == "histogram"
    assert m0.types["switchyard_queue_depth"] == "gauge"
    assert m0.get("switchyard_events_received_total") == 0
    for reason in REASONS:
        assert m0.get("switchyard_events_rejected_total", reason=reason) == 0, reason
    for ep, sink in (("all", "files"), ("jobs", "fl")):
        for outcome in ATTEMPT_OUTCOMES:
            assert m0.get("switchyard_attempts_total", endpoint=ep, sink=sink,
                          outcome=outcome) == 0, (ep, outcome)
        for state in END_STATES:
            assert m0.get("switchyard_deliveries_finished_total", endpoint=ep, sink=sink,
                          state=state) == 0, (ep, state)
        assert m0.get("switchyard_attempt_duration_seconds_count", endpoint=ep) == 0

    # 5 job events (both endpoints; the flaky one fails each once, then
    # succeeds), 3 other events (the file endpoint only), 3 rejects.
    msgs = [event(f"j{i}", "job.completed") for i in range(5)]
    msgs += [event(f"a{i}", "artifact.ready") for i in range(3)]
    msgs += [b"not json", b"{also not json", b'{"event_type":"job.completed"}']
    d.push(msgs)

    d.wait_metric("switchyard_deliveries_finished_total", 8, endpoint="all", sink="files",
                  state="delivered")
    d.wait_metric("switchyard_deliveries_finished_total", 5, endpoint="jobs", sink="fl",
                  state="delivered")
    wait_until(lambda: d.metrics().get("switchyard_queue_depth", state="scheduled") == 0,
               what="no retry left scheduled")
    m = d.metrics()
    assert m.get("switchyard_events_received_total") == 11
    assert m.get("switchyard_events_accepted_total") == 8
    assert m.get("switchyard_events_unrouted_total") == 0
    want_rejects = {r: 0 for r in REASONS}
    want_rejects.update(not_json=2, missing_field=1)
    assert {r: m.get("switchyard_events_rejected_total", reason=r) for r in REASONS} == \
        want_rejects
    # Attempts and end states apart: 10 attempts to "jobs" are 5 ok and 5 retry, and
    # 5 deliveries; nothing is counted twice.
    assert {o: m.get("switchyard_attempts_total", endpoint="all", sink="files", outcome=o)
            for o in ATTEMPT_OUTCOMES} == {"ok": 8, "retry": 0, "fail": 0}
    assert {o: m.get("switchyard_attempts_total", endpoint="jobs", sink="fl", outcome=o)
            for o in ATTEMPT_OUTCOMES} == {"ok": 5, "retry": 5, "fail": 0}
    assert {st: m.get("switchyard_deliveries_finished_total", endpoint="jobs", sink="fl",
                      state=st) for st in END_STATES} == {"delivered": 5, "dead": 0}
    for ep, n in (("all", 8), ("jobs", 10)):
        assert m.get("switchyard_attempt_duration_seconds_count", endpoint=ep) == n
        buckets = [(labels["le"], v) for labels, v in
                   m.series("switchyard_attempt_duration_seconds_bucket")
                   if labels["endpoint"] == ep]
        assert buckets[-1] == ("+Inf", n)
        les = [float(le) for le, _ in buckets[:-1]]
        assert les == sorted(les) and len(set(les)) == len(les)
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), f"histogram buckets must be cumulative: {buckets}"
        assert m.get("switchyard_attempt_duration_seconds_sum", endpoint=ep) >= 0
        assert m.get("switchyard_endpoint_state", endpoint=ep, state="active") == 1
    for state in ("ready", "held", "inflight", "scheduled", "expired"):
        assert m.get("switchyard_queue_depth", state=state) == 0, state
    assert m.get("switchyard_dead_letters") == 0
    # A plugin's own counters (host->counter) are exported per instance.
    assert m.get("switchyard_plugin_flaky_calls_total", instance="fl") == 10
    assert m.get("switchyard_plugin_flaky_failures_total", instance="fl") == 5


def test_metrics_dead_and_failed_outcomes(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"fl": flaky_sink(tmp_path / "flaky.log", fail_times=1,
                                           fail_mode="fail")},
                   endpoints={"bad": {"sink": "fl"}})
    d.push([event("e1"), event("e2")])
    d.wait_metric("switchyard_deliveries_finished_total", 2, endpoint="bad", sink="fl",
                  state="dead")
    m = d.metrics()
    # A permanent failure is one attempt (fail) and one end state (dead), not two outcomes.
    assert {o: m.get("switchyard_attempts_total", endpoint="bad", sink="fl", outcome=o)
            for o in ATTEMPT_OUTCOMES} == {"ok": 0, "retry": 0, "fail": 2}
    assert {st: m.get("switchyard_deliveries_finished_total", endpoint="bad", sink="fl",
                      state=st) for st in END_STATES} == {"delivered": 0, "dead": 2}
    # The gauge reads the spool, whose writer commits the dead rows after the counters moved.
    d.wait_metric("switchyard_dead_letters", 2)


def test_metrics_with_two_instances_of_one_plugin(ops_daemon, tmp_path):
    """
    Each plugin counter is one metric family with one sample per instance:
    one HELP and one TYPE line, its samples together. Prometheus refuses a
    second TYPE line for a name ("second TYPE line for metric name") and
    families split in pieces.
    """
    d = ops_daemon(sinks={"a": file_sink(tmp_path / "a.jsonl"),
                          "b": file_sink(tmp_path / "b.jsonl")},
                   endpoints={"ea": {"sink": "a"}, "eb": {"sink": "b"}})
    d.push([event("e1")])
    d.wait_endpoint("eb", lambda e: e["ok"] == 1, "eb: 1 ok")
    text = http(d.base, "GET", "/metrics").text
    n = text.count("# TYPE switchyard_plugin_file_writes_total counter\n")
    assert n == 1, f"{n} TYPE lines for switchyard_plugin_file_writes_total"
    m = Metrics(text)  # also checks that each family's lines form one group
    assert m.get("switchyard_plugin_file_writes_total", instance="a") == 1
    assert m.get("switchyard_plugin_file_writes_total", instance="b") == 1


def test_received_total_counts_only_messages_read_from_sockets(ops_daemon, tmp_path):
    """
    HELP says "Messages read from ingress sockets". System events
    (webhook.delivery_failed) and admin test events are not read from a
    socket and must not be counted there (switchyard_events_accepted_total
    may count them: they are routed like published events).
    """
    d = ops_daemon(sinks={"fl": flaky_sink(tmp_path / "flaky.log", fail_times=1,
                                           fail_mode="fail"),
                          "files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"bad": {"sink": "fl"}, "all": {"sink": "files"}})
    d.push([event("e1")])
    d.wait_metric("switchyard_deliveries_finished_total", 1, endpoint="bad", sink="fl",
                  state="dead")
    assert d.api("POST", "/api/v1/endpoints/all/test").status == 202
    d.wait_metric("switchyard_deliveries_finished_total", 2, endpoint="all", sink="files",
                  state="delivered")
    assert d.metrics().get("switchyard_events_received_total") == 1


# --------------------------------------------------------------------------
# the token
# --------------------------------------------------------------------------

API_CALLS = [("GET", "/api/v1/endpoints"), ("GET", "/api/v1/deliveries?state=dead"),
             ("GET", "/api/v1/events?after=0&limit=10"), ("POST", "/api/v1/deliveries/1/replay"),
             ("POST", "/api/v1/endpoints/all/test"), ("GET", "/api/v1/nowhere")]


def test_api_refuses_missing_or_wrong_token(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    wrong = [None, "", "wrong-token-wrong-token-wrong", TOKEN[:-1], TOKEN + "x",
             TOKEN.upper()]
    for method, path in API_CALLS:
        for tok in wrong:
            auth = None if tok is None else f"Bearer {tok}"
            r = http(d.base, method, path, auth=auth)
            assert error_of(r, 401) == "missing or wrong bearer token", (method, path, tok)
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="switchyard"'
        for auth in (f"Basic {TOKEN}", TOKEN, f"Token {TOKEN}"):
            r = http(d.base, method, path, auth=auth)
            assert error_of(r, 401) == "missing or wrong bearer token", (method, path, auth)
    # Nothing happened: no test event was sent.
    assert d.metrics().get("switchyard_events_accepted_total") == 0
    # The right token opens it; /metrics and health need none.
    assert http(d.base, "GET", "/api/v1/endpoints", token=TOKEN).status == 200
    assert http(d.base, "GET", "/metrics").status == 200
    assert http(d.base, "GET", "/healthz").status == 200


def test_api_is_off_without_a_configured_token(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}}, token=None)
    for tok in (None, TOKEN, ""):
        r = http(d.base, "GET", "/api/v1/endpoints", token=tok)
        assert error_of(r, 401) == "the API is off: set core.admin.token or token_file"
    assert http(d.base, "GET", "/metrics").status == 200
    assert (f'level=warn msg="admin API on {d.admin_listen} without a token: /metrics and '
            f'health only"') in d.run_log()


def test_token_file(ops_daemon, tmp_path):
    tf = tmp_path / "admin.token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}}, start=False)
    d.user_core = {"admin": {"listen": d.admin_listen, "token_file": str(tf)}}
    d.start()
    assert TOKEN not in (d.conf_dir / "10-core.json").read_text()
    assert http(d.base, "GET", "/api/v1/endpoints", token=TOKEN).status == 200
    assert http(d.base, "GET", "/api/v1/endpoints", token=TOKEN + "x").status == 401


def test_short_token_is_a_config_error(tmp_path):
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:5999"}],
                        "admin": {"listen": "127.0.0.1:5998", "token": "tiny-secret"}})
    r = cli("check", "-c", conf)
    assert r.returncode == 2
    assert (f"{conf}/10-core.json: core.admin.token: expected a string of at least 16 "
            f"characters\n").encode() in r.stderr
    assert b"tiny-secret" not in r.stderr, "the token must not be echoed"


# --------------------------------------------------------------------------
# GET /api/v1/endpoints
# --------------------------------------------------------------------------

def test_endpoints_list(ops_daemon, tmp_path):
    d = ops_daemon(
        sinks={"files": file_sink(tmp_path / "out.jsonl"),
               "half": flaky_sink(tmp_path / "half.log", fail_times=1),
               "bad": flaky_sink(tmp_path / "bad.log", fail_times=1, fail_mode="fail"),
               "later": flaky_sink(tmp_path / "later.log", fail_times=1)},
        endpoints={"good": {"sink": "files", "org_id": "acme"},
                   "half": {"sink": "half", "retry": {"schedule": ["10ms"]}},
                   "bad": {"sink": "bad"},
                   "later": {"sink": "later", "retry": {"schedule": ["1h"]}},
                   "never": {"sink": "files", "enabled_events": ["nothing.ever"]},
                   "off": {"sink": "files", "enabled": False}})
    answers = ack_all(d.ack_addr, [(f"e{i}", event(f"e{i}")) for i in range(4)])
    assert set(answers.values()) == {f"ok e{i}" for i in range(4)}
    # "pending" is counted in the spool, which records a delivery's end one
    # commit (a few ms) after the live "ok" counter moved: wait for both.
    d.wait_endpoint("good", lambda e: e["ok"] == 4 and e["pending"] == 0, "good: 4 ok")
    d.wait_endpoint("half", lambda e: e["ok"] == 4 and e["pending"] == 0, "half: 4 ok")
    d.wait_endpoint("bad", lambda e: e["dead"] == 4, "bad: 4 dead")
    # "attempts" moves when an attempt starts, last_status and last_error once it
    # came back: wait for the answer too.
    d.wait_endpoint("later", lambda e: e["attempts"] == 4 and e["last_status"] == 503 and
                    e["last_error"] == "flaky: attempt 1 of 1 fails", "later: 4 attempts answered")

    r = d.api("GET", "/api/v1/endpoints")
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    arr = r.json()
    assert isinstance(arr, list)
    eps = {e["id"]: e for e in arr}
    assert sorted(eps) == ["bad", "good", "half", "later", "never", "off"]
    for e in arr:
        assert set(e) == ENDPOINT_FIELDS, e
    assert eps["good"] == {"id": "good", "org_id": "acme", "source": "config",
                           "sink": "files", "plugin": "file", "state": "active",
                           "success_rate": 1, "routed": 4, "attempts": 4, "ok": 4, "dead": 0, "pending": 0, "last_status": 0,
                           "last_error": ""}
    assert eps["half"] == {"id": "half", "org_id": None, "source": "config",
                           "sink": "half", "plugin": "flaky",
                           "state": "active", "success_rate": 0.5, "routed": 4,
                           "attempts": 8, "ok": 4, "dead": 0, "pending": 0,
                           "last_status": 200, "last_error": ""}
    assert eps["bad"] == {"id": "bad", "org_id": None, "source": "config",
                          "sink": "bad", "plugin": "flaky",
                          "state": "active", "success_rate": 0, "routed": 4, "attempts": 4,
                          "ok": 0, "dead": 4, "pending": 0, "last_status": 400,
                          "last_error": "flaky: attempt 1 of 1 fails"}
    assert eps["later"] == {"id": "later", "org_id": None, "source": "config",
                            "sink": "later", "plugin": "flaky",
                            "state": "active", "success_rate": 0, "routed": 4, "attempts": 4,
                            "ok": 0, "dead": 0, "pending": 4, "last_status": 503,
                            "last_error": "flaky: attempt 1 of 1 fails"}
    assert eps["never"]["success_rate"] is None and eps["never"]["routed"] == 0
    assert eps["never"]["state"] == "active"
    assert eps["off"]["state"] == "off" and eps["off"]["routed"] == 0


# --------------------------------------------------------------------------
# POST /api/v1/endpoints/{id}/test
# --------------------------------------------------------------------------

def test_test_event_reaches_exactly_that_endpoint(ops_daemon, tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "unused.jsonl")},
                   endpoints={
                       # The test event skips the endpoint's own filters...
                       "target": {"sink": "files", "path": str(a), "org_id": "acme",
                                  "enabled_events": ["job.*"]},
                       # ...and is routed to no other endpoint, not even one
                       # that asks for every event or for webhook.test.
                       "other": {"sink": "files", "path": str(b), "enabled_events": ["*"]},
                       "watch": {"sink": "files", "path": str(c),
                                 "enabled_events": ["webhook.test", "webhook.*"]}})
    r = d.api("POST", "/api/v1/endpoints/target/test")
    assert r.status == 202, r
    body = r.json()
    assert set(body) == {"event_id", "endpoint"} and body["endpoint"] == "target"
    assert body["event_id"].startswith("sys_")

    d.wait_endpoint("target", lambda e: e["ok"] == 1, "the test event delivered")
    got = sink_events(a)
    assert len(got) == 1
    ev = got[0]
    assert ev["event_id"] == body["event_id"]
    assert ev["event_type"] == "webhook.test"
    assert ev["org_id"] == "acme"
    assert ev["data"] == {"endpoint_id": "target",
                          "message": "test event sent from the Switchyard admin API"}
    eps = d.api_endpoints()
    assert (eps["other"]["routed"], eps["watch"]["routed"]) == (0, 0)
    assert not b.exists() and not c.exists()
    m = d.metrics()
    assert m.get("switchyard_events_unrouted_total") == 0

    # Unknown endpoint, wrong method.
    assert error_of(d.api("POST", "/api/v1/endpoints/nope/test"), 404) == \
        "no endpoint with that id"
    assert error_of(d.api("GET", "/api/v1/endpoints/target/test"), 405) == "use POST"


# --------------------------------------------------------------------------
# GET /api/v1/events
# --------------------------------------------------------------------------

def test_event_feed_pages_with_cursors(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    bodies = [(f"f{i}", event(f"f{i}", org="acme" if i % 2 == 0 else "beta", data={"n": i}))
              for i in range(7)]
    # One at a time, so the spool's order is the publishing order.
    for eid, body in bodies:
        assert ack_all(d.ack_addr, [(eid, body)]) == {eid: f"ok {eid}"}
    want = [json.loads(b) for _, b in bodies]
    # The feed reads the spool's database, which has an event once the hot log is folded.
    wait_until(lambda: len(d.get_json("/api/v1/events?limit=10")["events"]) == 7,
               what="the seven events in the feed")

    pages, after, seen = [], 0, []
    while True:
        page = d.get_json(f"/api/v1/events?after={after}&limit=3")
        assert set(page) == {"events", "next"}
        pages.append(len(page["events"]))
        if not page["events"]:
            assert page["next"] == after  # an empty page keeps the cursor
            break
        cursors = [e["cursor"] for e in page["events"]]
        assert all(c > after for c in cursors) and cursors == sorted(cursors)
        assert page["next"] == cursors[-1]
        for e in page["events"]:
            assert set(e) == {"cursor", "event"}
            seen.append(e["event"])
        after = page["next"]
    assert pages == [3, 3, 1, 0]
    assert seen == want  # every accepted event, in order, exactly as published

    # Default limit, and the org filter.
    assert [e["event"] for e in d.get_json("/api/v1/events")["events"]] == want
    beta = d.get_json("/api/v1/events?org_id=beta&limit=100")["events"]
    assert [e["event"]["event_id"] for e in beta] == ["f1", "f3", "f5"]
    # A cursor from the middle resumes after it.
    mid = d.get_json("/api/v1/events?limit=2")["next"]
    assert [e["event"]["event_id"] for e in d.get_json(f"/api/v1/events?after={mid}")["events"]] \
        == [f"f{i}" for i in range(2, 7)]

    for bad in ("limit=0", "limit=1001", "limit=abc", "after=-1", "after=x"):
        assert error_of(d.api("GET", f"/api/v1/events?{bad}"), 400) == \
            "limit must be 1-1000 and after a cursor >= 0", bad
    assert error_of(d.api("POST", "/api/v1/events"), 405) == "use GET"


def test_spool_less_daemon_answers_501(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}}, spool=False)
    assert error_of(d.api("GET", "/api/v1/events"), 501) == \
        "the event feed reads the spool; this daemon runs with spool: null"
    assert error_of(d.api("GET", "/api/v1/deliveries?state=dead"), 501) == \
        "deliveries are listed from the spool; this daemon runs with spool: null"
    assert error_of(d.api("POST", "/api/v1/deliveries/1/replay"), 501) == \
        "replay needs a spool; this daemon runs with spool: null"
    assert d.api("GET", "/api/v1/endpoints").status == 200


# --------------------------------------------------------------------------
# unknown paths and wrong methods
# --------------------------------------------------------------------------

def test_unknown_paths_are_404_json(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    for path in ("/", "/nope", "/metrics/x", "/api", "/api/v2/endpoints"):
        assert error_of(http(d.base, "GET", path), 404) == \
            "no such path (try /metrics, /healthz, /readyz, /api/v1/...)", path
    for path in ("/api/v1/nope", "/api/v1/endpoints/all/x", "/api/v1/deliveries/1",
                 "/api/v1/deliveries/1/replay/x", "/api/v1/endpoints/all/test/x",
                 "/api/v1/endpoints/all/enable/x", "/api/v1/endpoints/al/test/x/"):
        assert error_of(d.api("GET", path), 404) == "no such API path", path
        # Without a token, the API does not even say whether a path exists.
        assert error_of(http(d.base, "GET", path), 401) == "missing or wrong bearer token"


def test_wrong_methods_are_405_json(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    for method, path, msg in (("PUT", "/api/v1/endpoints", "use GET, POST"),
                              ("DELETE", "/api/v1/endpoints", "use GET, POST"),
                              ("POST", "/api/v1/endpoints/all", "use GET, PUT, PATCH, DELETE"),
                              ("PUT", "/api/v1/deliveries", "use GET"),
                              ("POST", "/api/v1/events", "use GET"),
                              ("GET", "/api/v1/deliveries/1/replay", "use POST"),
                              ("DELETE", "/api/v1/endpoints/all/test", "use POST")):
        assert error_of(d.api(method, path), 405) == msg, (method, path)


def test_405_names_the_allowed_method(ops_daemon, tmp_path):
    """RFC 9110 15.5.6: a 405 response MUST carry an Allow header."""
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    for method, path, allow in (("PUT", "/api/v1/endpoints", "GET, POST"),
                                ("GET", "/api/v1/deliveries/1/replay", "POST")):
        r = d.api(method, path)
        assert r.status == 405
        assert r.headers.get("Allow") == allow, (method, path, dict(r.headers))


def test_metrics_and_health_refuse_other_methods(ops_daemon, tmp_path):
    """POST /metrics is a wrong method on a path that exists: 405, not 404 "no such path"."""
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    for path in ("/metrics", "/healthz", "/readyz"):
        assert error_of(http(d.base, "POST", path), 405) == "use GET", path
