"""
The sqs sink against a real SQS-compatible server: the fauxqs emulator
(npm), behind a proxy that checks every request's SigV4 signature with the
official AWS signer, which also records what each SendMessageBatch
carried. Messages are read back with the official @aws-sdk/client-sqs:
bodies byte-identical, attributes present, FIFO group and deduplication
ids set; the core's batches reach SQS as SendMessageBatch calls of up to
ten entries, cut only by max_batch_bytes; a batch with one oversize entry
retries only that entry; credentials from config, environment and file; a
wrong secret is refused and never logged; `switchyard check` sends no
request; the old private batching keys are refused.
"""

import math
from collections import Counter

from conftest import event, get, wait_until
from queue_helpers import Fauxqs, check_config, fauxqs, silent_peer  # noqa: F401 (fixtures)

TYPES = ["job.completed", "job.failed", "scrape.page_done"]


def bodies(prefix, n, pad=200):
    """
    n events with text SQS must carry unchanged. No characters beyond
    U+FFFF: real SQS takes them, but fauxqs 2.4 tests bodies with a regular
    expression that sees them as lone surrogates and refuses them.
    """
    out = []
    for i in range(n):
        org = None if i % 4 == 3 else ("acme" if i % 2 else "globex")
        data = {"i": i, "pad": "x" * pad,
                "note": "caf\u00e9 \u2603 \"quoted\" back\\slash tab\tnl\n\u0001 \ud7ff\ue000"}
        b = event(f"{prefix}-{i:05d}", TYPES[i % 3], org=org, data=data)
        if i % 5 == 0:
            b = b.replace(b',"data":', b' ,\t"data" :  ')  # whitespace must survive as sent
        out.append((f"{prefix}-{i:05d}", TYPES[i % 3], org, b))
    return out


def sqs_sink(fq, queue_url, **extra):
    s = {"plugin": "sqs", "queue_url": queue_url, "endpoint_url": fq.endpoint,
         "region": "us-east-1", "access_key_id": Fauxqs.KEY_ID,
         "secret_access_key": Fauxqs.SECRET}
    s.update(extra)
    return s


def test_check_contacts_no_queue_service(tmp_path, silent_peer):
    # Three instances, three chances: none may send a request before its first delivery.
    sink = {"plugin": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
            "endpoint_url": f"http://127.0.0.1:{silent_peer.port}", "region": "us-east-1",
            "access_key_id": Fauxqs.KEY_ID, "secret_access_key": Fauxqs.SECRET}
    r = check_config(tmp_path / "conf.d", {f"sq{i}": sink for i in range(3)},
                     {f"q{i}": {"sink": f"sq{i}"} for i in range(3)})
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().endswith("\nconfiguration OK\n")
    assert silent_peer.connections() == 0


def test_standard_queue_bodies_and_attributes(switchyard, fauxqs):
    url = fauxqs.create_queue("std1")
    before = fauxqs.sigcheck()
    d = switchyard(sinks={"sq": sqs_sink(fauxqs, url)},
                   endpoints={"q": {"sink": "sq", "concurrency": 100}})
    sent = bodies("s1", 500)
    # U+FFFF is valid UTF-8 (the envelope accepts it) but no SQS message may hold it:
    # that entry fails for good at once, and its batch-mates are not affected.
    never = event("s1-never", data={"bad": "\uffff"})
    d.push([b for _, _, _, b in sent[:250]] + [never] + [b for _, _, _, b in sent[250:]])
    s = d.wait_stats(lambda s: get(s, "deliveries.ok", 0) + get(s, "deliveries.dead", 0)
                     >= len(sent) + 1, "every delivery settled")
    assert get(s, "deliveries.ok") == len(sent)
    assert get(s, "endpoints.q.failed") == 1 and get(s, "deliveries.dead") == 1
    assert get(s, "deliveries.retries") == 0
    assert get(s, "sinks.sq.entries_failed") == 1
    # Only its "delivery dead" line names the cause, logged after the death is counted.
    wait_until(lambda: "InvalidMessageContents" in d.log(), what="the dead letter logged",
               on_timeout=lambda: d.log()[-4000:])
    assert get(s, "sinks.sq.entries_ok") == len(sent)
    assert get(s, "sinks.sq.entries") == len(sent) + 1
    reqs = get(s, "sinks.sq.requests")
    assert math.ceil((len(sent) + 1) / 10) <= reqs < len(sent) / 2, f"{reqs} requests: no batching"
    # One request per batch of the core's (none of these pass max_batch_bytes).
    assert get(s, "sinks.sq.batches") == reqs

    got = fauxqs.drain(url, len(sent))
    assert len(got) == len(sent)
    assert Counter(m["body"].encode() for m in got) == Counter(b for _, _, _, b in sent)
    by_body = {m["body"].encode(): m for m in got}
    for eid, t, org, b in sent:
        attrs = by_body[b]["attributes"]
        want = {"event_type": {"type": "String", "value": t}}
        if org:
            want["org_id"] = {"type": "String", "value": org}
        assert attrs == want, eid
        assert by_body[b]["group"] is None

    after = fauxqs.sigcheck()
    assert after["rejected"] == before["rejected"], after["last_error"]
    assert after["verified"] - before["verified"] >= reqs
    # What SQS saw: SendMessageBatch calls carrying several entries, ten at most.
    seen = [n for n, _ in after["batches"][len(before["batches"]):]]
    assert len(seen) == reqs and sum(seen) == len(sent) + 1
    assert max(seen) == 10 and min(seen) >= 1
    assert sum(1 for n in seen if n > 1) > len(seen) / 2, f"mostly single entries: {seen}"


def test_fifo_group_and_dedup_ids_with_env_credentials(switchyard, fauxqs, monkeypatch):
    url = fauxqs.create_queue("fifo1.fifo", {"FifoQueue": "true"})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", Fauxqs.KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", Fauxqs.SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    sink = sqs_sink(fauxqs, url, message_group_id="{org_id}")
    del sink["access_key_id"], sink["secret_access_key"]
    # One worker: the core then submits in arrival order, and the order within
    # a group checks the sink's part (one batch at a time per FIFO queue).
    d = switchyard(sinks={"sq": sink}, endpoints={"q": {"sink": "sq", "concurrency": 50}},
                   core={"workers": 1})
    assert "credentials from environment" in d.log()
    sent = bodies("f1", 60)
    # An id SQS would refuse as a deduplication id (over 128 bytes; the envelope
    # allows 255, of SQS's own alphabet): it gets the SHA-256 of the id instead.
    long_id = "long-" + "x" * 200
    odd = event(long_id, "job.completed", org="acme")
    d.push([b for _, _, _, b in sent] + [odd])
    d.wait_for("deliveries.ok", len(sent) + 1)
    got = fauxqs.drain(url, len(sent) + 1)
    assert len(got) == len(sent) + 1
    by_body = {m["body"].encode(): m for m in got}
    for eid, _, org, b in sent:
        assert by_body[b]["dedup"] == eid
        assert by_body[b]["group"] == (org or "none")
    import hashlib
    assert by_body[odd]["dedup"] == hashlib.sha256(long_id.encode()).hexdigest()
    assert by_body[odd]["group"] == "acme"
    # FIFO order within a group is the publishing order.
    for org in ("acme", "globex"):
        ids = [m["dedup"] for m in got if m["group"] == org and m["dedup"].startswith("f1-")]
        assert ids == sorted(ids), f"group {org} out of order"

    # Publishing the same events again: SQS drops them by deduplication id, the sink reports OK.
    d.push([b for _, _, _, b in sent[:10]])
    d.wait_for("deliveries.ok", len(sent) + 11)
    assert fauxqs.drain(url, 10, idle_s=1) == []


def test_oversize_entry_retries_alone(switchyard, fauxqs, tmp_path):
    url = fauxqs.create_queue("small1", {"MaximumMessageSize": "1024"})
    creds = tmp_path / "credentials"
    creds.write_text(f"[other]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
                     f"[sy]\n# rotated by a sidecar\naws_access_key_id = {Fauxqs.KEY_ID}\n"
                     f"aws_secret_access_key = {Fauxqs.SECRET}\n")
    sink = sqs_sink(fauxqs, url, credentials_file=str(creds), profile="sy")
    del sink["access_key_id"], sink["secret_access_key"]
    d = switchyard(sinks={"sq": sink},
                   endpoints={"q": {"sink": "sq", "concurrency": 20,
                                    "retry": {"schedule": ["100ms"], "max_attempts": 3}}})
    assert f"credentials from file {creds} [sy]" in d.log()
    small = [event(f"o1-{i}", data={"i": i}) for i in range(9)]
    big = event("o1-big", data={"pad": "y" * 3000})
    d.push(small[:4] + [big] + small[4:])
    s = d.wait_stats(lambda s: get(s, "deliveries.ok", 0) + get(s, "deliveries.dead", 0) >= 10,
                     "all settled")
    assert get(s, "deliveries.ok") == 9
    assert get(s, "deliveries.dead") == 1
    assert get(s, "deliveries.attempts") == 9 + 3, "only the oversize entry is retried"
    assert get(s, "endpoints.q.attempts") == 12
    assert get(s, "sinks.sq.entries_failed") == 3
    assert get(s, "sinks.sq.entries_ok") == 9
    assert get(s, "sinks.sq.entries") == 12
    assert get(s, "sinks.sq.request_errors") == 0
    assert get(s, "sinks.sq.requests") == 1 + 2, "one batch of ten, then the big one alone twice"
    seen = fauxqs.sigcheck()["batches"][-3:]
    assert [n for n, _ in seen] == [10, 1, 1]
    got = fauxqs.drain(url, 10, idle_s=1)
    assert sorted(m["body"].encode() for m in got) == sorted(small)
    # Only its "delivery dead" line names the cause, logged after the death is counted.
    wait_until(lambda: "Message must be shorter than 1024 bytes" in d.log(),
               what="the dead letter logged", on_timeout=lambda: d.log()[-4000:])


def test_wrong_secret_is_refused_retried_and_never_logged(switchyard, fauxqs):
    url = fauxqs.create_queue("std2")
    wrong = "Wrong-Secret-4f8a/zz"
    before = fauxqs.sigcheck()
    d = switchyard(sinks={"sq": sqs_sink(fauxqs, url, secret_access_key=wrong)},
                   endpoints={"q": {"sink": "sq",
                                    "retry": {"schedule": ["100ms"], "max_attempts": 2}}})
    d.push([event("w1-1"), event("w1-2")])
    s = d.wait_for("deliveries.dead", 2)
    assert get(s, "deliveries.ok") == 0
    assert get(s, "sinks.sq.request_errors") >= 1
    assert fauxqs.sigcheck()["rejected"] > before["rejected"]
    assert "InvalidSignatureException" in d.log()
    d.stop()
    log = d.log()
    assert wrong not in log and Fauxqs.SECRET not in log
    assert fauxqs.drain(url, 2, idle_s=1) == []


def test_batch_over_max_batch_bytes_is_split(switchyard, fauxqs):
    """Ten deliveries of about 400 bytes as SQS counts them, max_batch_bytes
    1KiB: the core's batches are cut into requests that each stay within
    the limit, and every event arrives once."""
    url = fauxqs.create_queue("split1")
    before = fauxqs.sigcheck()
    d = switchyard(sinks={"sq": sqs_sink(fauxqs, url, max_batch_bytes="1KiB")},
                   endpoints={"q": {"sink": "sq", "concurrency": 10}})
    sent = [event(f"sp-{i}", data={"pad": "p" * 300}) for i in range(10)]
    d.push(sent)
    s = d.wait_for("deliveries.ok", 10)
    assert get(s, "deliveries.retries") == 0
    seen = fauxqs.sigcheck()["batches"][len(before["batches"]):]
    assert sum(n for n, _ in seen) == 10
    assert all(1 <= n <= 2 and size <= 1024 for n, size in seen), seen
    assert get(s, "sinks.sq.requests") == len(seen) > get(s, "sinks.sq.batches")
    got = fauxqs.drain(url, 10, idle_s=1)
    assert sorted(m["body"].encode() for m in got) == sorted(sent)


def test_old_batching_keys_are_refused(tmp_path):
    """max_batch and linger belonged to the plugin's own batching timer; the
    core batches now, so a config still naming them is told so at start."""
    for key, value in (("max_batch", 5), ("linger", "20ms")):
        sink = {"plugin": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/1/q",
                "region": "us-east-1", "access_key_id": Fauxqs.KEY_ID,
                "secret_access_key": Fauxqs.SECRET, key: value}
        r = check_config(tmp_path / f"conf-{key}", {"sq": sink}, {"q": {"sink": "sq"}})
        assert r.returncode != 0
        assert f"sinks.sq.{key}: unknown key" in r.stderr.decode(), r.stderr.decode()


def test_batches_past_their_deadline_are_not_sent(switchyard, silent_peer):
    """
    A queue service that never answers, one request at a time: the first
    batch waits request_timeout (1s); the next one starts then, already
    past its deadline by the second (request_timeout + connect_timeout,
    and no grace) or just before it, and the third finds its deadline long
    passed. A batch past its deadline has been retried by the core, so it
    is handed back unsent: at most two requests, and every entry either
    sent or counted as expired.
    """
    sink = {"plugin": "sqs", "queue_url": "https://sqs.us-east-1.amazonaws.com/1/q",
            "endpoint_url": f"http://127.0.0.1:{silent_peer.port}", "region": "us-east-1",
            "access_key_id": Fauxqs.KEY_ID, "secret_access_key": Fauxqs.SECRET,
            "request_timeout": "1s", "connect_timeout": "100ms", "max_requests": 1}
    d = switchyard(sinks={"sq": sink},
                   endpoints={"q": {"sink": "sq", "concurrency": 10, "retry": {"schedule": ["1h"]}}},
                   core={"complete_grace": "0ms"})
    d.push([event(f"dl-{i}") for i in range(30)])
    s = d.wait_stats(lambda s: get(s, "sinks.sq.entries", 0) + get(s, "sinks.sq.expired", 0) >= 30,
                     "every entry sent or expired", timeout=30)
    sent, expired = get(s, "sinks.sq.entries"), get(s, "sinks.sq.expired")
    assert sent + expired == 30
    assert expired >= 10 and sent <= 20
    assert get(s, "sinks.sq.requests") == silent_peer.connections() <= 2
    assert get(s, "deliveries.ok") == 0
