"""
The webhook sink's verification handshake: a signed webhook.verification
event with a random challenge, which the receiver must echo before the
endpoint gets deliveries; then a webhook.verified system event. The
handshake starts with the endpoint's first delivery (`switchyard check`
runs endpoint_init too, and must not contact receivers).
"""

import json
import sys
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, cli, event, read_lines, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver, verify_like_the_docs  # noqa: E402

S1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def echo_json(body, headers):
    challenge = json.loads(body)["data"]["challenge"]
    return Answer(200, {"Content-Type": "application/json"},
                  json.dumps({"challenge": challenge}).encode())


def echo_plain(body, headers):
    return Answer(200, body=json.loads(body)["data"]["challenge"].encode())


def verifying_daemon(switchyard, receiver, tmp_path, **ep):
    out = tmp_path / "verified.jsonl"
    d = switchyard(
        sinks={"hooks": {"plugin": "webhook", "allow_private_networks": True},
               "sys": {"plugin": "file", "path": str(out)}},
        endpoints={"ep": {"sink": "hooks", "url": receiver.url("/h"), "secrets": [S1],
                          "verify": True, "verify_retry": "300ms", "org_id": "acme",
                          "enabled_events": ["job.*"], **ep},
                   "watch": {"sink": "sys", "enabled_events": ["webhook.verified"]}})
    d.sys_out = out
    return d


@pytest.mark.parametrize("echo", [echo_json, echo_plain])
def test_handshake_retries_until_the_challenge_is_echoed(switchyard, receiver, tmp_path, echo):
    # First answer: 200 without the challenge (a catch-all receiver), then a real echo.
    receiver.on("/h", Answer(200, body=b"ok"), echo)
    d = verifying_daemon(switchyard, receiver, tmp_path,
                         retry={"schedule": ["200ms"], "max_attempts": 20})
    d.push([event("evt-first")])
    s = d.wait_for("endpoints.ep.ok", 1)
    assert s["sinks"]["hooks"]["verify_failed"] == 1
    assert s["sinks"]["hooks"]["verified"] == 1
    # Held back until verified: every earlier attempt was answered by the sink itself.
    assert s["sinks"]["hooks"]["not_verified"] == s["endpoints"]["ep"]["attempts"] - 1 >= 1
    first, second, delivery = receiver.got("/h")
    challenges = []
    for r in (first, second):
        body = json.loads(r.body)
        assert body["event_type"] == "webhook.verification"
        assert body["data"]["endpoint_id"] == "ep"
        assert len(body["data"]["challenge"]) == 32
        assert verify_like_the_docs(S1, r.headers, r.body) == body["event_id"]
        assert r.headers["svix-id"].startswith("msg_verify_")
        challenges.append(body["data"]["challenge"])
    assert challenges[0] != challenges[1]
    assert 0.3 - 0.002 <= second.t_arrive - first.t_done < 0.3 + 0.4
    assert delivery.headers["svix-id"] == "evt-first"
    assert verify_like_the_docs(S1, delivery.headers, delivery.body) == "evt-first"
    d.wait_for("endpoints.watch.ok", 1)
    (ev,) = [json.loads(l) for l in read_lines(d.sys_out)]
    assert ev["event_type"] == "webhook.verified"
    assert ev["org_id"] == "acme"
    assert ev["data"] == {"endpoint_id": "ep", "attempts": 2}
    # Verified once: later events go straight through.
    d.push([event("evt-later")])
    s = d.wait_for("endpoints.ep.ok", 2)
    assert receiver.got("/h")[-1].headers["svix-id"] == "evt-later"
    assert s["sinks"]["hooks"]["verified"] == 1
    assert "endpoint ep: verification attempt 1 failed: HTTP 200 without the challenge" in d.log()
    assert "endpoint ep: verified after 2 attempt(s)" in d.log()


def test_check_does_not_contact_the_receiver(receiver, tmp_path):
    conf = tmp_path / "conf.d"
    write_config(conf, core={"plugin_dir": str(PLUGIN_DIR),
                             "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
                             "quarantine": None},
                 sinks={"hooks": {"plugin": "webhook", "allow_private_networks": True}},
                 endpoints={"ep": {"sink": "hooks", "url": receiver.url("/h"),
                                   "secrets": [S1], "verify": True}})
    r = cli("check", "-c", conf)
    assert r.returncode == 0, r.stderr.decode()
    assert receiver.got() == []


def test_unverified_endpoint_gets_no_deliveries(switchyard, receiver, tmp_path):
    receiver.default = Answer(404)
    # One handshake attempt in the test's time (the next is a minute away), so
    # none can be in flight, answered but not yet counted, when the daemon stops.
    d = verifying_daemon(switchyard, receiver, tmp_path, verify_retry="60s",
                         retry={"schedule": ["100ms", "100ms"]})
    d.push([event("evt-held")])
    d.wait_for("sinks.hooks.verify_failed", 1)
    s = d.wait_for("deliveries.dead", 1)
    assert s["endpoints"]["ep"]["attempts"] == 3
    assert s["sinks"]["hooks"]["not_verified"] == 3
    assert s["sinks"]["hooks"]["verified"] == 0
    assert d.stop() == 0
    got = receiver.got("/h")
    assert len(got) == 1, "one verification attempt, and nothing else, reaches the receiver"
    assert json.loads(got[0].body)["event_type"] == "webhook.verification"
    assert got[0].headers["svix-id"] != "evt-held"
    assert d.final_stats["sinks"]["hooks"]["verify_failed"] == 1
    assert 'detail="endpoint not verified yet' in d.log()
