"""
The webhook sink's outcome table and retries, observed at a real receiver:
attempt counts, the webhook id across attempts, delays per a test-sized
retry schedule, Retry-After, 410, timeouts, abort-message, redirects, the
permanent_statuses override and fallback URLs.

Delay bounds: the receiver stamps each request when its head has been read
and each answer once it is sent (time.monotonic). The core starts a retry's
delay only after it has the outcome, which is after the answer was sent, so
"arrival of attempt n+1 - answer to attempt n" is never below the delay but
for the core's millisecond clock (at most 1 ms early, hence EARLY_S), and a
loaded CI box may add up to SLACK_S.
"""

import json
import sys
from pathlib import Path

import pytest

from conftest import event, read_lines, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver, verify_like_the_docs  # noqa: E402

S1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EARLY_S = 0.002
SLACK_S = 0.4


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hooks(**extra):
    return {"hooks": {"plugin": "webhook", "allow_private_networks": True, **extra}}


def endpoint(receiver, path, schedule, **extra):
    return {"sink": "hooks", "url": receiver.url(path), "secrets": [S1],
            "retry": {"schedule": schedule}, **extra}


def check_gaps(reqs, delays_s):
    gaps = [b.t_arrive - a.t_done for a, b in zip(reqs, reqs[1:])]
    assert len(gaps) == len(delays_s), gaps
    for g, want in zip(gaps, delays_s):
        assert want - EARLY_S <= g < want + SLACK_S, f"gaps {gaps}, schedule {delays_s}"


def test_500_500_200_is_three_attempts_with_one_id(switchyard, receiver):
    receiver.on("/r", Answer(500), Answer(500), Answer(200))
    d = switchyard(sinks=hooks(), endpoints={"ep": endpoint(receiver, "/r", ["300ms", "600ms"])})
    d.push([event("evt-r3")])
    s = d.wait_for("deliveries.ok", 1)
    reqs = receiver.got("/r")
    assert [r.status for r in reqs] == [500, 500, 200]
    assert [r.headers["svix-id"] for r in reqs] == ["evt-r3"] * 3
    for r in reqs:  # each attempt carries its own timestamp, signed afresh
        assert verify_like_the_docs(S1, r.headers, r.body) == "evt-r3"
    assert len({r.body for r in reqs}) == 1
    check_gaps(reqs, [0.3, 0.6])
    assert s["deliveries"]["attempts"] == 3
    assert s["deliveries"]["retries"] == 2
    assert s["deliveries"]["dead"] == 0
    assert s["endpoints"]["ep"]["last_status"] == 200
    assert s["sinks"]["hooks"]["requests"] == 3
    assert s["sinks"]["hooks"]["retried"] == 2
    assert s["sinks"]["hooks"]["delivered"] == 1
    assert d.stop() == 0
    assert len(receiver.got()) == 3


def test_retry_after_seconds_is_honoured(switchyard, receiver):
    receiver.on("/ra", Answer(503, {"Retry-After": "2"}), Answer(200))
    d = switchyard(sinks=hooks(), endpoints={"ep": endpoint(receiver, "/ra", ["100ms"])})
    d.push([event("evt-ra")])
    d.wait_for("deliveries.ok", 1)
    reqs = receiver.got("/ra")
    assert [r.status for r in reqs] == [503, 200]
    check_gaps(reqs, [2.0])


def test_410_is_one_attempt_and_reports_the_endpoint_gone(switchyard, receiver, tmp_path):
    receiver.on("/gone", Answer(410), Answer(410))
    out = tmp_path / "sys.jsonl"
    d = switchyard(
        sinks={**hooks(), "sys": {"plugin": "file", "path": str(out)}},
        endpoints={"ep": endpoint(receiver, "/gone", ["100ms", "100ms"],
                                  enabled_events=["job.*"]),
                   "watch": {"sink": "sys", "enabled_events": ["webhook.endpoint_gone"]}})
    d.push([event("evt-410")])
    s = d.wait_stats(lambda s: s["deliveries"]["dead"] == 1 and s["endpoints"]["watch"]["ok"] == 1,
                     "dead letter and gone report")
    assert s["endpoints"]["ep"]["attempts"] == 1
    assert s["endpoints"]["ep"]["failed"] == 1
    assert s["endpoints"]["ep"]["retries"] == 0
    assert s["endpoints"]["ep"]["last_status"] == 410
    assert s["sinks"]["hooks"]["gone"] == 1
    # A second event to the gone endpoint fails too, without a second report.
    d.push([event("evt-410b")])
    s = d.wait_for("endpoints.ep.dead", 2)
    assert d.stop() == 0
    assert [r.headers["svix-id"] for r in receiver.got("/gone")] == ["evt-410", "evt-410b"]
    reports = [json.loads(l) for l in read_lines(out)]
    assert [(r["event_type"], r["data"]) for r in reports] == [
        ("webhook.endpoint_gone", {"endpoint_id": "ep", "status": 410})]
    assert "endpoint ep: the receiver answered 410 Gone" in d.log()
    assert 'detail="HTTP 410 Gone: the endpoint is gone"' in d.log()


def test_timeout_then_retry(switchyard, receiver):
    receiver.on("/slow", Answer(200, delay=1.0), Answer(200))
    d = switchyard(sinks=hooks(timeout="300ms"),
                   endpoints={"ep": endpoint(receiver, "/slow", ["200ms"])})
    d.push([event("evt-to")])
    s = d.wait_for("deliveries.ok", 1)
    assert s["deliveries"]["attempts"] == 2
    assert s["deliveries"]["retries"] == 1
    assert s["sinks"]["hooks"]["timeouts"] == 1
    assert s["sinks"]["hooks"]["retried"] == 1
    reqs = receiver.wait(2, "/slow", timeout=10)
    first, second = sorted(reqs, key=lambda r: r.t_arrive)
    # The retry came 300 ms (timeout) + 200 ms (schedule) after the first send.
    # The timeout runs from the attempt's start, and the first request reaches
    # the receiver only after the connection is set up (milliseconds on a busy
    # sanitizer build): its arrival may be that much closer to the retry's.
    connect_s = 0.02
    assert 0.5 - EARLY_S - connect_s <= second.t_arrive - first.t_arrive < 0.5 + SLACK_S
    assert first.headers["svix-id"] == second.headers["svix-id"] == "evt-to"


# (answers, attempts, delivered?) per case; the schedule is one 100 ms retry.
CASES = {
    "ok200": ([200], 1, True),
    "ok201": ([201], 1, True),
    "ok204": ([204], 1, True),
    "ok-abort": ([(200, {"webhook-delivery": "abort-message"})], 1, True),
    "redirect": ([(301, {"Location": "/elsewhere"}), 200], 2, True),
    "r307": ([(307, {"Location": "/elsewhere"}), 200], 2, True),
    "bad400": ([400, 200], 2, True),
    "auth401": ([401, 200], 2, True),
    "nf404": ([404, 200], 2, True),
    "to408": ([408, 200], 2, True),
    "lim429": ([429, 200], 2, True),
    "err500": ([500, 200], 2, True),
    "bgw502": ([502, 200], 2, True),
    "una503": ([503, 200], 2, True),
    "gone410": ([410, 200], 1, False),
    "abort": ([(422, {"Webhook-Delivery": "abort-message"}), 200], 1, False),
    "abort500": ([(500, {"webhook-delivery": "ABORT-MESSAGE"}), 200], 1, False),
    "perm404": ([404, 200], 1, False),   # permanent_statuses "404,500-599"
    "perm-not410": ([410, 200], 2, True),  # 410 is no longer in the set
    "perm503": ([503, 200], 1, False),
}


def answer(a):
    return Answer(a[0], a[1]) if isinstance(a, tuple) else Answer(a)


def test_outcome_table_case_by_case(switchyard, receiver):
    eps = {}
    for name, (answers, _, _) in CASES.items():
        receiver.on("/" + name, *[answer(a) for a in answers])
        extra = {"permanent_statuses": "404,500-599"} if name.startswith("perm") else {}
        eps[name] = endpoint(receiver, "/" + name, ["100ms"], **extra)
    d = switchyard(sinks=hooks(), endpoints=eps)
    d.push([event("evt-table")])
    n = len(CASES)
    s = d.wait_stats(lambda s: s["deliveries"]["ok"] + s["deliveries"]["dead"] == n,
                     "every case settled")
    for name, (answers, attempts, delivered) in CASES.items():
        e = s["endpoints"][name]
        assert e["attempts"] == attempts, (name, e)
        assert (e["ok"], e["dead"]) == ((1, 0) if delivered else (0, 1)), (name, e)
        assert len(receiver.got("/" + name)) == attempts, name
    assert s["endpoints"]["gone410"]["last_status"] == 410
    assert s["endpoints"]["abort"]["last_status"] == 422
    assert receiver.got("/elsewhere") == []  # redirects are not followed
    assert s["sinks"]["hooks"]["gone"] == 1
    assert s["sinks"]["hooks"]["failed"] == 5
    # A death is counted before its "delivery dead" line is logged: wait for the lines.
    want = ['detail="HTTP 422 with webhook-delivery: abort-message: the receiver stopped retries"',
            'detail="HTTP 404: permanent by permanent_statuses"']
    wait_until(lambda: all(w in d.log() for w in want), what="the dead letters logged",
               on_timeout=lambda: d.log()[-4000:])


def test_fallback_url_after_consecutive_failures(switchyard, receiver):
    receiver.on("/primary", *[Answer(500)] * 10)
    d = switchyard(sinks=hooks(), endpoints={
        "ep": endpoint(receiver, "/primary", ["50ms", "50ms", "50ms"],
                       fallback_urls=[receiver.url("/fallback")], fallback_after=2)})
    d.push([event("evt-fb1")])
    s = d.wait_for("deliveries.ok", 1)
    assert [r.headers["svix-id"] for r in receiver.got("/primary")] == ["evt-fb1"] * 2
    assert [r.headers["svix-id"] for r in receiver.got("/fallback")] == ["evt-fb1"]
    assert s["sinks"]["hooks"]["fallbacks"] == 1
    # Later deliveries go straight to the fallback.
    d.push([event("evt-fb2")])
    d.wait_for("deliveries.ok", 2)
    assert len(receiver.got("/primary")) == 2
    assert [r.headers["svix-id"] for r in receiver.got("/fallback")] == ["evt-fb1", "evt-fb2"]
    port = receiver.port
    assert (f"endpoint ep: 2 consecutive failures on 127.0.0.1:{port} (url #0); deliveries "
            f"go to 127.0.0.1:{port} (url #1) now") in d.log()


def test_connection_refused_is_retried(switchyard, receiver):
    closed = Receiver()
    dead_url = closed.url("/x")
    closed.close()  # nothing listens there any more
    d = switchyard(sinks=hooks(), endpoints={
        "ep": {"sink": "hooks", "url": dead_url, "secrets": [S1],
               "retry": {"schedule": ["50ms"]}}})
    d.push([event("evt-cr")])
    s = d.wait_for("deliveries.dead", 1)
    assert s["deliveries"]["attempts"] == 2
    assert s["deliveries"]["retries"] == 1
    assert s["sinks"]["hooks"]["transport_errors"] == 2
    # Counted dead before the "delivery dead" line is logged: wait for the line.
    wait_until(lambda: "detail=\"connect: " in d.log(), what="the dead letter logged",
               on_timeout=lambda: d.log()[-4000:])
