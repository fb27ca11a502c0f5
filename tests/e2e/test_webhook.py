"""
The webhook sink end to end: what a receiver gets (body, headers,
signatures), interop with the official `standardwebhooks` npm verifier for
both header styles and two active secrets, ed25519, the SSRF guard, and
config errors for malformed secrets, and how requests share connections
(a hanging request holds up no other; source addresses never share one).

Receivers are real HTTP servers on loopback (tests/e2e/peers/), so every
sink here opts into allow_private_networks except where the guard itself is
under test.
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, cli, event, wait_until, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver, verify_like_the_docs  # noqa: E402

# Two 24-byte HMAC secrets (the first is the spec's test-vector secret).
S1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
S2 = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
# The spec's ed25519 test seed and its public key.
SK = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
PK = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="

@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def version_of(d):
    m = re.search(r'msg="switchyard ready" version=(\S+)', d.log())
    assert m, d.log()
    return m.group(1)


def hooks(**extra):
    return {"hooks": {"plugin": "webhook", "allow_private_networks": True, **extra}}


def test_delivery_is_the_raw_body_signed_with_every_secret(switchyard, receiver):
    d = switchyard(sinks=hooks(), endpoints={
        "ep": {"sink": "hooks", "url": receiver.url("/in"), "secrets": [S1, S2],
               "headers": {"X-Tenant": "acme", "Authorization": "Bearer abc"}}})
    body = event("evt-sig-1", data={"job_id": "j1", "note": "caf\u00e9 \u2603", "n": 1.50})
    t0 = int(time.time())
    d.push([body])
    (req,) = receiver.wait(1)
    t1 = int(time.time()) + 1
    assert req.method == "POST" and req.path == "/in"
    assert req.body == body  # the exact bytes, nothing re-encoded
    h = req.headers
    assert h["content-type"] == "application/json"
    assert h["user-agent"] == f"Switchyard/{version_of(d)}"
    assert h["x-tenant"] == "acme" and h["authorization"] == "Bearer abc"
    assert h["svix-id"] == "evt-sig-1"
    assert t0 <= int(h["svix-timestamp"]) <= t1
    assert "webhook-id" not in h and "expect" not in h
    sigs = h["svix-signature"].split(" ")
    assert len(sigs) == 2 and all(s.startswith("v1,") and len(s) == 47 for s in sigs)
    # Each secret alone verifies, the way providers' docs tell receivers to check.
    assert verify_like_the_docs(S1, h, req.body) == "evt-sig-1"
    assert verify_like_the_docs(S2, h, req.body) == "evt-sig-1"
    with pytest.raises(ValueError):
        verify_like_the_docs("whsec_" + "A" * 32, h, req.body)
    with pytest.raises(ValueError):
        verify_like_the_docs(S1, h, req.body + b" ")
    s = d.wait_for("deliveries.ok", 1)
    assert s["deliveries"]["attempts"] == 1
    assert s["endpoints"]["ep"]["last_status"] == 200
    assert s["sinks"]["hooks"]["plugin"] == "webhook"
    assert s["sinks"]["hooks"]["requests"] == 1
    assert s["sinks"]["hooks"]["delivered"] == 1
    assert s["sinks"]["hooks"]["retried"] == 0


def test_connections_are_kept_alive(switchyard, receiver):
    d = switchyard(sinks=hooks(threads=1), endpoints={
        "ep": {"sink": "hooks", "url": receiver.url("/ka"), "secrets": [S1], "concurrency": 1}})
    d.push([event(f"evt-ka-{i}") for i in range(20)])
    d.wait_for("deliveries.ok", 20)
    reqs = receiver.got("/ka")
    assert len(reqs) == 20
    assert len({r.client_port for r in reqs}) == 1  # one connection, reused 19 times


def test_header_prefixes(switchyard, receiver):
    d = switchyard(sinks=hooks(), endpoints={
        "spec": {"sink": "hooks", "url": receiver.url("/spec"), "secrets": [S1],
                 "header_prefix": "webhook"},
        "custom": {"sink": "hooks", "url": receiver.url("/custom"), "secrets": [S1],
                   "header_prefix": "X-Acme"}})
    d.push([event("evt-px")])
    d.wait_for("deliveries.ok", 2)
    (spec,) = receiver.got("/spec")
    (custom,) = receiver.got("/custom")
    assert spec.headers["webhook-id"] == "evt-px" and "svix-id" not in spec.headers
    assert verify_like_the_docs(S1, spec.headers, spec.body, prefix="webhook") == "evt-px"
    assert custom.headers["x-acme-id"] == "evt-px" and "svix-id" not in custom.headers
    assert verify_like_the_docs(S1, custom.headers, custom.body, prefix="x-acme") == "evt-px"


def test_official_verifier_accepts_both_styles_and_both_secrets(switchyard, node_receiver):
    node = node_receiver([S1, S2], [PK])
    d = switchyard(sinks=hooks(), endpoints={
        "svix": {"sink": "hooks", "url": node.url("/svix"), "secrets": [S1, S2]},
        "spec": {"sink": "hooks", "url": node.url("/spec"), "secrets": [S1, S2],
                 "header_prefix": "webhook"},
        "ed": {"sink": "hooks", "url": node.url("/ed"), "secrets": [SK],
               "header_prefix": "webhook"},
        "mixed": {"sink": "hooks", "url": node.url("/mixed"), "secrets": [S2, SK]}})
    bodies = [event(f"evt-node-{i}", data={"i": i, "s": "\u00e9\u00e8"}) for i in range(3)]
    d.push(bodies)
    got = node.lines(12)
    d.wait_for("deliveries.ok", 12)
    by_path = {}
    for line in got:
        by_path.setdefault(line["path"], []).append(line)
    assert sorted(by_path) == ["/ed", "/mixed", "/spec", "/svix"]
    for path, lines in by_path.items():
        assert sorted(l["id"] for l in lines) == ["evt-node-0", "evt-node-1", "evt-node-2"]
        for l in lines:
            assert l["body"].encode() in bodies
    for l in by_path["/svix"] + by_path["/spec"]:
        assert l["results"] == ["ok", "ok"], l
        assert [s.split(",")[0] for s in l["signatures"]] == ["v1", "v1"]
    assert {l["style"] for l in by_path["/svix"]} == {"svix"}
    assert {l["style"] for l in by_path["/spec"]} == {"webhook"}
    for l in by_path["/ed"]:
        assert l["v1a"] == ["ok"] and l["results"] == ["No matching signature found"] * 2
        assert [s.split(",")[0] for s in l["signatures"]] == ["v1a"]
    for l in by_path["/mixed"]:
        # Only the second secret is configured there, alongside the ed25519 key.
        assert l["results"] == ["No matching signature found", "ok"] and l["v1a"] == ["ok"]
        assert [s.split(",")[0] for s in l["signatures"]] == ["v1", "v1a"]


def test_ssrf_guard_refuses_private_destinations_and_counts_them(switchyard, receiver):
    d = switchyard(
        sinks={"strict": {"plugin": "webhook"},
               "open": {"plugin": "webhook", "allow_private_networks": True}},
        endpoints={
            "ip": {"sink": "strict", "url": receiver.url("/ip"), "secrets": [S1]},
            "name": {"sink": "strict", "secrets": [S1],
                     "url": f"http://localhost:{receiver.port}/name"},
            "off": {"sink": "open", "url": receiver.url("/off"), "secrets": [S1],
                    "allow_private_networks": False},
            "on": {"sink": "strict", "url": receiver.url("/on"), "secrets": [S1],
                   "allow_private_networks": True}})
    d.push([event("evt-ssrf")])
    s = d.wait_stats(lambda s: s["deliveries"]["dead"] == 3 and s["deliveries"]["ok"] == 1,
                     "3 refused, 1 delivered")
    for ep in ("ip", "name", "off"):
        assert s["endpoints"][ep]["attempts"] == 1, ep
        assert s["endpoints"][ep]["failed"] == 1, ep
        assert s["endpoints"][ep]["dead"] == 1, ep
    assert s["endpoints"]["on"]["ok"] == 1
    assert s["sinks"]["strict"]["ssrf_refused"] == 2
    assert s["sinks"]["open"]["ssrf_refused"] == 1
    assert s["sinks"]["strict"]["failed"] == 2
    assert [r.path for r in receiver.got()] == ["/on"]
    # The shard counts a death before it logs it: wait for the line of the one about "name".
    dead_name = re.compile(r"delivery dead.* endpoint=name .*refused to connect to "
                           r"(127\.0\.0\.1|::1): loopback address")
    wait_until(lambda: dead_name.search(d.log()), what="the dead letter of name logged",
               on_timeout=lambda: d.log()[-4000:])
    assert ("refused to connect to 127.0.0.1: loopback address (SSRF guard; set "
            "allow_private_networks to allow it)") in d.log()


@pytest.mark.parametrize("secret, says", [
    ("whsec_not base64!", "secrets[1]: malformed secret"),
    ("whsec_c2hvcnQ=", "secrets[1]: malformed secret"),  # 5 bytes: under the spec's 24
    ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secrets[1]: malformed secret"),  # no prefix
    (PK, "secrets[1] is a whpk_ public key, which cannot sign"),
])
def test_malformed_secret_is_a_config_error_naming_the_endpoint(tmp_path, secret, says):
    conf = tmp_path / "conf.d"
    write_config(conf, core={"plugin_dir": str(PLUGIN_DIR),
                             "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
                             "quarantine": None},
                 sinks={"hooks": {"plugin": "webhook"}},
                 endpoints={"acme-hook": {"sink": "hooks", "url": "https://example.com/h",
                                          "secrets": [S1, secret]}})
    r = cli("run", "-c", conf, timeout=20)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 2, out
    assert "endpoints.acme-hook" in out and "endpoint acme-hook: " + says in out, out
    assert secret not in out and secret[6:] not in out and S1 not in out
    assert "switchyard ready" not in out


@pytest.mark.parametrize("key, value, says", [
    ("url", "ftp://example.com/x", "url: scheme must be http or https"),
    ("url", "example.com/hook", "url: not an absolute http:// or https:// URL"),
    ("url", "https://user:pw@example.com/", "url: URL carries credentials"),
    ("header_prefix", "bad prefix", "header_prefix: must be a header-name token"),
    ("headers", {"Content-Length": "1"}, "headers.Content-Length: set by the sink itself"),
    ("headers", {"svix-id": "x"}, "headers.svix-id: set by the sink itself"),
    ("headers", {"X-A": "a\r\nInjected: 1"}, "headers.X-A: a header needs a token name"),
    ("permanent_statuses", "200", "permanent_statuses: 200-200 is outside 300-599"),
    ("permanent_statuses", "4xx", "permanent_statuses: \"4xx\" is not a list"),
    ("fallback_after", 0, "fallback_after: 0 is outside 1-1000"),
])
def test_endpoint_config_errors(tmp_path, key, value, says):
    conf = tmp_path / "conf.d"
    ep = {"sink": "hooks", "url": "https://example.com/h", "secrets": [S1], key: value}
    write_config(conf, core={"plugin_dir": str(PLUGIN_DIR),
                             "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}],
                             "quarantine": None},
                 sinks={"hooks": {"plugin": "webhook"}}, endpoints={"e1": ep})
    r = cli("run", "-c", conf, timeout=20)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 2, out
    assert "endpoints.e1." + says in out, out


def test_sigterm_with_a_request_in_flight_exits_cleanly(switchyard, receiver):
    """A receiver that hangs past the drain: the sink ends the request on destroy."""
    receiver.on("/slow", Answer(200, delay=30))
    d = switchyard(sinks=hooks(timeout="60s"), core={"drain_timeout": "300ms"},
                   endpoints={"ep": {"sink": "hooks", "url": receiver.url("/slow"),
                                     "secrets": [S1]}})
    d.push([event("evt-hang")])
    d.wait_for("sinks.hooks.requests", 1)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 5
    assert d.final_stats["deliveries"]["ok"] == 0
    assert "drain timeout reached" in d.log()


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=sy-test-ca",
            "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", cwd=d)
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                 "extendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        (d / f"{name}.ext").write_text(ext)
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)
    return d


def test_tls_is_verified_against_the_configured_ca(switchyard, pki):
    r = Receiver(tls=(str(pki / "server.pem"), str(pki / "server.key"), None))
    try:
        d = switchyard(sinks=hooks(), endpoints={
            "trusted": {"sink": "hooks", "url": r.url("/t"), "secrets": [S1],
                        "ca_file": str(pki / "ca.pem")},
            "system-cas": {"sink": "hooks", "url": r.url("/s"), "secrets": [S1],
                           "retry": {"schedule": ["50ms"]}}})
        d.push([event("evt-tls")])
        s = d.wait_stats(lambda s: s["deliveries"]["ok"] == 1 and s["deliveries"]["dead"] == 1,
                         "one delivered over TLS, one refused")
        assert s["endpoints"]["trusted"]["ok"] == 1
        assert s["endpoints"]["system-cas"]["attempts"] == 2  # a TLS failure is retried
        assert s["sinks"]["hooks"]["transport_errors"] == 2
        assert [q.path for q in r.got()] == ["/t"]
        assert verify_like_the_docs(S1, r.got()[0].headers, r.got()[0].body) == "evt-tls"
        # Counted dead before the line is logged: wait for the line.
        wait_until(lambda: 'endpoint=system-cas event_id=evt-tls attempts=2 status=0 '
                           'detail="tls: ' in d.log(), what="the dead letter logged",
                   on_timeout=lambda: d.log()[-4000:])
    finally:
        r.close()


def test_mutual_tls_client_certificate(switchyard, pki):
    r = Receiver(tls=(str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem")))
    try:
        ca = str(pki / "ca.pem")
        d = switchyard(sinks=hooks(ca_file=ca), endpoints={
            "with-cert": {"sink": "hooks", "url": r.url("/m"), "secrets": [S1],
                          "client_cert": str(pki / "client.pem"),
                          "client_key": str(pki / "client.key")},
            "no-cert": {"sink": "hooks", "url": r.url("/n"), "secrets": [S1],
                        "retry": {"schedule": ["50ms"]}}})
        d.push([event("evt-mtls")])
        s = d.wait_stats(lambda s: s["deliveries"]["ok"] == 1 and s["deliveries"]["dead"] == 1,
                         "the client with a certificate delivered, the other refused")
        assert s["endpoints"]["with-cert"]["ok"] == 1
        assert s["endpoints"]["no-cert"]["ok"] == 0
        assert [q.path for q in r.got()] == ["/m"]
    finally:
        r.close()


def test_outbound_source_address(switchyard, receiver):
    d = switchyard(sinks=hooks(), endpoints={
        "ep": {"sink": "hooks", "url": receiver.url("/src"), "secrets": [S1],
               "source_address": "127.0.0.2"}})
    d.push([event("evt-src")])
    (req,) = receiver.wait(1)
    assert req.client == "127.0.0.2"


# How requests share connections (plugins/_http). The sinks below run one HTTP
# thread, so every request goes through the same libcurl multi handle and
# connection cache: the case where one request can stand in another's way.

def typed_endpoint(receiver, path, types, **extra):
    return {"sink": "hooks", "url": receiver.url(path), "secrets": [S1],
            "enabled_events": types, **extra}


def test_a_hanging_request_does_not_hold_up_others_to_the_same_host(switchyard, receiver):
    """
    The first request to the receiver hangs until the test lets it go; four
    deliveries of another endpoint to the same host:port are answered while
    it is still open, and then the hanging one completes with its 200.
    """
    gate = threading.Event()
    receiver.on("/hang", Answer(200, gate=gate))
    d = switchyard(sinks=hooks(threads=1, timeout="120s"), endpoints={
        "slow": typed_endpoint(receiver, "/hang", ["job.slow"]),
        "fast": typed_endpoint(receiver, "/fast", ["job.fast"])})
    d.push([event("evt-hang", "job.slow")])
    receiver.wait_arrived(1, "/hang")
    d.push([event(f"evt-fast-{i}", "job.fast") for i in range(4)])
    try:
        fast = receiver.wait(4, "/fast")
    finally:
        gate.set()
    (hang,) = receiver.wait(1, "/hang")
    s = d.wait_for("deliveries.ok", 5)
    # All four were answered before the hanging request was, and that one
    # still ended in its 200 (it had not timed out): they passed it while open.
    assert sorted(json.loads(r.body)["event_id"] for r in fast) == [
        f"evt-fast-{i}" for i in range(4)]
    assert max(r.seq_done for r in fast) < hang.seq_done
    assert hang.seq_arrive < min(r.seq_arrive for r in fast)
    assert hang.status == 200
    assert s["endpoints"]["slow"]["ok"] == 1 and s["endpoints"]["fast"]["ok"] == 4
    assert s["deliveries"]["attempts"] == 5
    assert s["sinks"]["hooks"]["timeouts"] == 0
    assert hang.client_port not in {r.client_port for r in fast}


def test_connections_are_not_shared_across_source_addresses(switchyard, receiver):
    """
    Three endpoints on one receiver: from 127.0.0.2, from 127.0.0.3, and
    with no source address. One at a time first, so each finds only the
    others' idle connections in the cache, then many interleaved. Every
    request arrives from its endpoint's own address, no connection carries
    two endpoints' requests, and each still reuses its own connection.
    """
    want = {"/bound": "127.0.0.2", "/other": "127.0.0.3", "/plain": "127.0.0.1"}
    d = switchyard(sinks=hooks(threads=1), endpoints={
        "bound": typed_endpoint(receiver, "/bound", ["job.bound", "job.all"],
                                source_address="127.0.0.2", concurrency=1),
        "other": typed_endpoint(receiver, "/other", ["job.other", "job.all"],
                                source_address="127.0.0.3", concurrency=1),
        "plain": typed_endpoint(receiver, "/plain", ["job.plain", "job.all"],
                                concurrency=1)})
    order = ["bound", "plain", "other", "plain", "bound", "other"]
    for n, name in enumerate(order, 1):
        d.push([event(f"evt-{n}", f"job.{name}")])
        d.wait_for("deliveries.ok", n)
    d.push([event(f"evt-all-{i}", "job.all") for i in range(30)])
    s = d.wait_for("deliveries.ok", len(order) + 90)
    assert s["deliveries"]["attempts"] == len(order) + 90
    reqs = receiver.got()
    assert len(reqs) == len(order) + 90
    assert [r.path for r in reqs[:len(order)]] == [f"/{name}" for name in order]
    assert sorted({(r.path, r.client) for r in reqs}) == sorted(want.items())
    paths_by_conn = {}
    for r in reqs:
        paths_by_conn.setdefault((r.client, r.client_port), set()).add(r.path)
    assert all(len(paths) == 1 for paths in paths_by_conn.values()), paths_by_conn
    # Keep-alive still works within each source address: one connection each.
    for path in want:
        assert len({r.client_port for r in receiver.got(path)}) == 1, path


def test_idle_connections_outlast_a_quiet_moment(switchyard, receiver):
    """
    Sixteen requests held open at once need sixteen connections; once all are
    answered and nothing is in flight, those connections stay open, and the
    next sixteen held at once reuse them all (no new connection).
    """
    n = 16
    first, second = threading.Event(), threading.Event()
    receiver.on("/b", *[Answer(200, gate=first)] * n, *[Answer(200, gate=second)] * n)
    d = switchyard(sinks=hooks(threads=1), endpoints={
        "ep": {"sink": "hooks", "url": receiver.url("/b"), "secrets": [S1], "concurrency": n}})
    for burst, gate in ((1, first), (2, second)):
        d.push([event(f"evt-{burst}-{i}") for i in range(n)])
        try:
            receiver.wait_arrived(n * burst, "/b")
        finally:
            gate.set()
        d.wait_for("deliveries.ok", n * burst)
    reqs = receiver.got("/b")
    assert len(reqs) == 2 * n
    assert len({r.client_port for r in reqs[:n]}) == n
    assert {r.client_port for r in reqs[n:]} == {r.client_port for r in reqs[:n]}


def test_a_connection_the_receiver_closed_while_idle_is_replaced(switchyard, receiver):
    """
    Between requests the HTTP thread keeps an idle connection's socket in its
    poll set. When the receiver closes that connection meanwhile, the next
    deliveries go over a new connection at the first attempt: nothing is
    retried, and that new connection is reused in turn.
    """
    d = switchyard(sinks=hooks(threads=1), endpoints={
        "ep": {"sink": "hooks", "url": receiver.url("/idle"), "secrets": [S1],
               "concurrency": 1}})
    d.push([event("evt-idle-1")])
    d.wait_for("deliveries.ok", 1)
    with receiver.lock:
        conns = list(receiver.conns)
    assert len(conns) == 1
    for c in conns:
        c.shutdown(socket.SHUT_RDWR)  # the receiver's side of the idle connection
    deadline = time.monotonic() + 10
    while receiver.conns and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not receiver.conns
    d.push([event(f"evt-idle-{i}") for i in (2, 3, 4)])
    s = d.wait_for("deliveries.ok", 4)
    reqs = receiver.got("/idle")
    assert [r.headers["svix-id"] for r in reqs] == [f"evt-idle-{i}" for i in (1, 2, 3, 4)]
    assert reqs[1].client_port != reqs[0].client_port
    assert {r.client_port for r in reqs[1:]} == {reqs[1].client_port}
    assert s["sinks"]["hooks"]["requests"] == 4
    assert s["sinks"]["hooks"]["retried"] == 0


def test_http_threads_follow_the_cpus_the_daemon_may_run_on(switchyard, receiver):
    """
    Without `threads`, one HTTP thread per two CPUs in the daemon's affinity
    mask, at least one: started on one CPU, and on two, the daemon has as
    many threads as with threads=1, and threads=3 adds two. (Shards follow
    the CPUs too, so counts are compared within one mask.)
    """
    mask = os.sched_getaffinity(0)
    masks = [{min(mask)}] + ([set(sorted(mask)[:2])] if len(mask) >= 2 else [])
    tasks = {}
    try:
        for m in masks:
            os.sched_setaffinity(0, m)
            for threads in (None, 1, 3):
                sink = hooks() if threads is None else hooks(threads=threads)
                d = switchyard(sinks=sink, endpoints={
                    "ep": {"sink": "hooks", "url": receiver.url("/t"), "secrets": [S1]}})
                tasks[len(m), threads] = len(os.listdir(f"/proc/{d.pid()}/task"))
                assert d.stop() == 0
    finally:
        os.sched_setaffinity(0, mask)
    for m in masks:
        n = len(m)
        assert tasks[n, None] == tasks[n, 1] == tasks[n, 3] - 2, tasks
