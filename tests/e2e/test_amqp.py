"""
The amqp sink against a real rabbitmq-server (started by queue_helpers on
free ports with its own data folder): routing keys and message properties,
publisher confirms, the core's batches published whole before their
confirms are read, mandatory returns and nacks settling only their own
delivery inside a batch, a broker restart mid-stream with no event lost,
and credentials kept out of the log. Before all that: the sink
connects on its first delivery, so `switchyard check` and a daemon that
has delivered nothing yet contact no broker.
"""

import threading
import time
from collections import Counter

import pytest

from conftest import event, get, wait_until
from queue_helpers import (FAST_RETRY, RabbitBroker, amqp_peer, check_config,  # noqa: F401
                           rabbit, silent_peer)

TYPES = ["job.completed", "job.failed", "scrape.page_done"]
ORGS = ["acme", "globex", None]


def events(prefix, n):
    """n events cycling through types, orgs (one in three has none) and data.kind."""
    out = []
    for i in range(n):
        t, org = TYPES[i % 3], ORGS[(i // 3) % 3]
        data = {"kind": f"k{i % 2}", "i": i, "note": "caf\u00e9 \"q\" \\ \U0001F680"}
        out.append((f"{prefix}-{i:05d}", t, org, event(f"{prefix}-{i:05d}", t, org=org, data=data)))
    return out


def amqp_sink(broker, **extra):
    s = {"plugin": "amqp", "url": broker.url, "reconnect_max": "1s", "heartbeat": "2s"}
    s.update(extra)
    return s


def test_check_contacts_no_broker(tmp_path, silent_peer):
    # Three instances, three chances: each would connect as soon as its init ran.
    url = f"amqp://{RabbitBroker.USER}:{RabbitBroker.PASSWORD}@127.0.0.1:{silent_peer.port}/"
    r = check_config(tmp_path / "conf.d",
                     {f"rmq{i}": {"plugin": "amqp", "url": url} for i in range(3)},
                     {f"q{i}": {"sink": f"rmq{i}"} for i in range(3)})
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().endswith("\nconfiguration OK\n")
    assert silent_peer.connections() == 0
    assert RabbitBroker.PASSWORD not in r.stderr.decode()


def test_first_delivery_opens_the_connection(switchyard, silent_peer):
    url = f"amqp://{RabbitBroker.USER}:{RabbitBroker.PASSWORD}@127.0.0.1:{silent_peer.port}/"
    # A long reconnect pause: one connection attempt is all this test may see.
    d = switchyard(sinks={"rmq": {"plugin": "amqp", "url": url, "connect_timeout": "200ms",
                                  "reconnect_min": "30s", "reconnect_max": "30s"}},
                   endpoints={"q": {"sink": "rmq"}})
    s = d.wait_stats(lambda s: get(s, "sinks.rmq.connects") is not None, "the sink's counters")
    assert get(s, "sinks.rmq.connect_failures") == 0
    assert silent_peer.connections() == 0, "connected before any delivery"
    d.push([event("t0-1")])
    wait_until(silent_peer.connections, what="the first delivery to connect")
    # The peer never answers the AMQP handshake: the attempt fails after connect_timeout.
    s = d.wait_stats(lambda s: get(s, "sinks.rmq.connect_failures", 0) >= 1, "the failed login")
    assert get(s, "sinks.rmq.connects") == 0
    assert silent_peer.connections() == 1


def test_connects_on_first_delivery_then_publishes(switchyard, rabbit, amqp_peer):
    amqp_peer.declare("t0", "amq.topic", "t0.#")
    d = switchyard(sinks={"rmq": amqp_sink(rabbit, routing_key="t0.{event_type}")},
                   endpoints={"q": {"sink": "rmq"}})
    s = d.wait_stats(lambda s: get(s, "sinks.rmq.connects") is not None, "the sink's counters")
    assert get(s, "sinks.rmq.connects") == 0
    sent = events("t0", 20)
    d.push([b for _, _, _, b in sent])
    s = d.wait_for("deliveries.ok", len(sent))
    assert get(s, "sinks.rmq.connects") == 1
    assert get(s, "deliveries.retries") == 0
    got = amqp_peer.consume("t0", len(sent))
    assert sorted(m["message_id"] for m in got) == sorted(eid for eid, _, _, _ in sent)


def test_routing_keys_and_properties(switchyard, rabbit, amqp_peer):
    amqp_peer.declare("t1_all", "amq.topic", "t1.#")
    amqp_peer.declare("t1_org", "amq.topic", "t1org.#")
    d = switchyard(
        sinks={"rmq": amqp_sink(rabbit, routing_key="t1.{event_type}")},
        endpoints={
            "all": {"sink": "rmq"},
            "byorg": {"sink": "rmq", "enabled_events": ["job.*"],
                      "routing_key": "t1org.{org_id}.{data.kind}"},
        })
    sent = events("t1", 300)
    d.push([b for _, _, _, b in sent])
    n_jobs = sum(1 for _, t, _, _ in sent if t.startswith("job."))
    d.wait_for("deliveries.ok", len(sent) + n_jobs)

    got = amqp_peer.consume("t1_all", len(sent))
    assert len(got) == len(sent)
    by_id = {m["message_id"]: m for m in got}
    assert len(by_id) == len(sent), "a message arrived twice without a retry"
    now = time.time()
    for eid, t, org, body in sent:
        m = by_id[eid]
        assert m["body"] == body, f"{eid}: body changed"
        assert m["exchange"] == "amq.topic"
        assert m["routing_key"] == f"t1.{t}"
        assert m["content_type"] == "application/json"
        assert m["delivery_mode"] == 2
        assert m["app_id"] == "switchyard"
        assert abs(m["timestamp"] - now) < 120
        want = {"event_type": t} if org is None else {"event_type": t, "org_id": org}
        assert m["headers"] == want

    got = amqp_peer.consume("t1_org", n_jobs)
    assert len(got) == n_jobs
    keys = Counter(m["routing_key"] for m in got)
    want = Counter(f"t1org.{org or ''}.k{int(eid[-5:]) % 2}" for eid, t, org, _ in sent
                   if t.startswith("job."))
    assert keys == want

    s = d.stats()
    assert get(s, "sinks.rmq.published") == len(sent) + n_jobs
    assert get(s, "sinks.rmq.acked") == len(sent) + n_jobs
    assert get(s, "sinks.rmq.connects") == 1
    assert get(s, "deliveries.retries") == 0
    # The core's deliveries came in batches, and each run of publishes (one or
    # more whole batches) went out before the thread read confirms.
    batches, flushes = get(s, "sinks.rmq.batches"), get(s, "sinks.rmq.flushes")
    print(f"\namqp: {len(sent) + n_jobs} deliveries in {batches} batches, {flushes} pushes")
    assert 2 <= batches <= (len(sent) + n_jobs) / 2, f"{batches} batches: no batching"
    assert 1 <= flushes <= batches
    assert get(s, "deliveries.plugin_calls") == batches


def test_mandatory_unroutable_is_dead_routable_is_ok(switchyard, rabbit, amqp_peer):
    amqp_peer.declare("t2_ok", "amq.topic", "t2.ok.#")
    d = switchyard(
        sinks={"rmq": amqp_sink(rabbit, mandatory=True)},
        endpoints={
            "routed": {"sink": "rmq", "routing_key": "t2.ok.{event_type}"},
            "nowhere": {"sink": "rmq", "routing_key": "t2.nobody.{event_type}"},
        })
    sent = events("t2", 50)
    d.push([b for _, _, _, b in sent])
    s = d.wait_stats(lambda s: get(s, "deliveries.ok", 0) + get(s, "deliveries.dead", 0) >= 100,
                     "every delivery settled")
    assert get(s, "endpoints.routed.ok") == 50
    assert get(s, "endpoints.nowhere.failed") == 50, "unroutable mandatory messages are permanent"
    assert get(s, "endpoints.nowhere.dead") == 50
    assert get(s, "endpoints.nowhere.retries") == 0
    assert get(s, "sinks.rmq.returned") == 50
    assert get(s, "sinks.rmq.acked") == 50
    assert "unroutable" in d.log()
    got = amqp_peer.consume("t2_ok", 50)
    assert sorted(m["message_id"] for m in got) == sorted(eid for eid, _, _, _ in sent)


def test_nack_and_return_settle_only_their_own_delivery(switchyard, rabbit, amqp_peer):
    """
    One endpoint, one batch of mixed fates: half the events route nowhere
    (mandatory: returned, permanent), the other half go to a queue that
    holds five messages and then rejects publishes (x-overflow
    reject-publish: the broker nacks). Each delivery follows its own
    outcome: five OK, five nacked twice and dead after their two attempts,
    ten failed at once.
    """
    amqp_peer.declare("t6_small", "amq.topic", "t6.k0", max_length=5)
    d = switchyard(
        sinks={"rmq": amqp_sink(rabbit, mandatory=True, routing_key="t6.{data.kind}")},
        endpoints={"q": {"sink": "rmq", "concurrency": 100,
                         "retry": {"schedule": ["100ms"], "max_attempts": 2}}})
    sent = events("t6", 20)  # data.kind alternates k0, k1
    d.push([b for _, _, _, b in sent])
    s = d.wait_stats(lambda s: get(s, "deliveries.ok", 0) + get(s, "deliveries.dead", 0) >= 20,
                     "every delivery settled")
    assert get(s, "deliveries.ok") == 5
    assert get(s, "endpoints.q.failed") == 10, "returned messages fail alone, at once"
    assert get(s, "deliveries.dead") == 15
    assert get(s, "deliveries.retries") == 5, "only the nacked ones are retried"
    assert get(s, "sinks.rmq.acked") == 5
    assert get(s, "sinks.rmq.returned") == 10
    assert get(s, "sinks.rmq.nacked") == 10
    assert get(s, "sinks.rmq.published") == 25
    assert get(s, "sinks.rmq.lost") == 0 and get(s, "sinks.rmq.disconnects") == 0
    assert get(s, "sinks.rmq.connects") == 1
    got = amqp_peer.consume("t6_small", 20, idle_ms=1000)
    kinds = {eid: int(eid[-5:]) % 2 for eid, _, _, _ in sent}
    assert len(got) == 5 and all(kinds[m["message_id"]] == 0 for m in got)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_broker_restart_loses_nothing(switchyard, rabbit, amqp_peer, how):
    """
    Stop and start the broker mid-stream: every event id arrives at least
    once. SIGTERM is a clean shutdown (the broker closes our connection);
    SIGKILL is a crash, which leaves published but unconfirmed messages in
    doubt: the sink must retry them, so duplicates are allowed (reported).
    """
    q = f"t3{how}"
    amqp_peer.declare(q, "amq.topic", f"{q}.#")
    d = switchyard(
        sinks={"rmq": amqp_sink(rabbit, routing_key=q + ".{event_type}", reconnect_min="100ms")},
        endpoints={"q": {"sink": "rmq", "retry": FAST_RETRY, "concurrency": 200}})
    n = 4000
    sent = events(q, n)
    down = threading.Event()
    def feed():
        # The first half in small batches; the second half only once the
        # broker is down, so the restart lands mid-stream however long the
        # broker takes to stop.
        for i in range(0, n, 100):
            if i == n // 2:
                down.wait(60)
            d.push([b for _, _, _, b in sent[i:i + 100]])
            time.sleep(0.03)
    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        d.wait_stats(lambda s: get(s, "sinks.rmq.acked", 0) >= 500, "some events confirmed")
        rabbit.stop(kill=how == "sigkill")
        d.wait_stats(lambda s: get(s, "sinks.rmq.disconnects", 0) >= 1, "the sink to notice")
        fed_while_down = get(d.stats(), "events.accepted")
        down.set()
        time.sleep(0.5)  # some events arrive while the broker is away
        rabbit.start()
    finally:
        down.set()
        feeder.join()
    print(f"\naccepted when the loss was seen: {fed_while_down}")
    assert fed_while_down < n, "the restart should land mid-stream"
    s = d.wait_stats(lambda s: get(s, "deliveries.ok", 0) >= n, f"{n} deliveries OK", timeout=90)
    assert get(s, "deliveries.dead") == 0
    assert get(s, "sinks.rmq.connects") >= 2
    # Every confirmed message is in the queue: count it first (a queue the
    # broker recovered after a crash may pause between its recovered and its
    # new messages, longer than consume's idle limit).
    in_queue = []
    def all_in_queue():
        in_queue.append(amqp_peer.count(q))
        return in_queue[-1] >= n
    wait_until(all_in_queue, timeout=30, interval=0.5, what=f"{n} messages in {q}",
               on_timeout=lambda: f"{in_queue[-1]} in the queue after {get(s, 'sinks.rmq.acked')} "
                                  f"confirms; broker log:\n{rabbit.log_tail()}")
    got = amqp_peer.consume(q, 2 * n, idle_ms=5000)
    ids = Counter(m["message_id"] for m in got)
    missing = {eid for eid, _, _, _ in sent} - set(ids)
    dups = sum(c - 1 for c in ids.values())
    print(f"\nbroker restart ({how}): {n} events, {len(got)} messages consumed, {dups} duplicates, "
          f"{get(s, 'sinks.rmq.lost')} unconfirmed at the loss, "
          f"{get(s, 'sinks.rmq.refused')} refused while down, "
          f"{get(s, 'deliveries.retries')} retries")
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    assert get(s, "deliveries.retries") > 0, "the restart should have cost some retries"
    for m in got:
        assert m["routing_key"].startswith(q + ".")


def test_bad_password_is_retried_and_never_logged(switchyard, rabbit):
    wrong = "Wr0ng-Pa55-zz81"
    url = f"amqp://{RabbitBroker.USER}:{wrong}@127.0.0.1:{rabbit.port}/"
    d = switchyard(
        sinks={"rmq": {"plugin": "amqp", "url": url, "reconnect_min": "50ms",
                       "reconnect_max": "200ms"}},
        endpoints={"q": {"sink": "rmq", "retry": {"schedule": ["100ms"], "max_attempts": 3}}})
    d.push([event("t4-1")])
    s = d.wait_for("deliveries.dead", 1)
    assert get(s, "deliveries.attempts") == 3
    assert get(s, "sinks.rmq.connect_failures") >= 1
    assert get(s, "sinks.rmq.connects") == 0
    log = d.log()
    assert "ACCESS_REFUSED" in log
    assert f"{RabbitBroker.USER}:***@127.0.0.1:{rabbit.port}" in log
    assert wrong not in log and RabbitBroker.PASSWORD not in log
    d.stop()
    assert wrong not in d.log()


def test_hung_broker_is_detected_by_heartbeats(switchyard, rabbit, amqp_peer):
    """A broker that stops answering (SIGSTOP) is declared dead after two missed
    heartbeats; what was unconfirmed is retried and arrives once it resumes."""
    import os
    import signal
    amqp_peer.declare("t5", "amq.topic", "t5.#")
    d = switchyard(
        sinks={"rmq": amqp_sink(rabbit, routing_key="t5.{event_type}", heartbeat="1s",
                                reconnect_min="100ms")},
        endpoints={"q": {"sink": "rmq", "retry": FAST_RETRY, "concurrency": 100}})
    d.push([event("t5-first")])
    d.wait_for("deliveries.ok", 1)
    os.killpg(rabbit.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        d.push([event(f"t5-{i}") for i in range(20)])
        d.wait_stats(lambda s: get(s, "sinks.rmq.disconnects", 0) >= 1, "the hang to be noticed",
                     timeout=20)
        noticed = time.monotonic() - t0
    finally:
        os.killpg(rabbit.proc.pid, signal.SIGCONT)
    assert noticed < 6, f"took {noticed:.1f}s with a 1s heartbeat"
    s = d.wait_for("deliveries.ok", 21)
    assert get(s, "deliveries.dead") == 0
    got = amqp_peer.consume("t5", 100, idle_ms=1500)
    assert {m["message_id"] for m in got} == {"t5-first"} | {f"t5-{i}" for i in range(20)}
