#!/usr/bin/python3
"""
Throughput of the queue sinks, end to end, next to each peer's own ceiling:

  amqp  events/s from a PUSH publisher through switchyard into RabbitMQ with
        publisher confirms (an event counts once the broker confirmed it),
        then the broker's ceiling: a raw rabbitmq-c publisher with confirms
        (tests/e2e/peers/amqp_peer.c), same message size, same window; once
        with bare messages, once with the properties and headers the sink
        puts on every message (message_id, timestamp, app_id, event_type,
        org_id), which cost the broker about a quarter more CPU. Before
        anything is timed, the broker takes a warm-up run (its first
        messages cost more), and the sink's figures show how the core's
        batches arrived (deliveries per batch, messages per TCP push).
  sqs   events/s into the fauxqs SQS emulator (SendMessageBatch, SigV4
        checked by the verifying proxy), then the emulator's ceiling with
        the official @aws-sdk/client-sqs sending batches of ten, straight
        to the emulator.
  zmq   events/s forwarded over PUSH to a PULL consumer (counted when the
        consumer has them all).

Each run: start the peer (RabbitMQ, fauxqs) and the daemon on free ports,
pre-build N distinct ~1 KiB events, start the clock, publish them, stop it
when the stats file says deliveries.ok == N. Prints figures; asserts
nothing. Usage: bench_queues.py --build build [--events N] [--only amqp,sqs,zmq]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from benchlib import ROOT, make_events


def run_daemon(tmp, sinks, endpoints):
    """
    The stats file tells when the run is over. Writing it costs the daemon
    about half a millisecond of CPU each time (measured: a quarter of its
    CPU in the amqp run at 20 ms), which on two cores the broker then
    lacks; every 100 ms costs little and ends a run of seconds at most
    100 ms late, against switchyard.
    """
    from conftest import Daemon
    d = Daemon(tmp, sinks=sinks, endpoints=endpoints,
               core={"stats_interval": "100ms", "workers": 4, "max_pending": 200000})
    return d.start()


def timed(d, events):
    """Seconds from the first send to deliveries.ok == len(events)."""
    from conftest import get
    t0 = time.monotonic()
    d.push(events)
    d.wait_stats(lambda s: get(s, "deliveries.ok", 0) >= len(events), "all delivered",
                 timeout=600)
    return time.monotonic() - t0


def line(what, n, seconds, extra=""):
    print(f"  {what:<52} {n:>7} events {seconds:7.2f} s {n / seconds:>9.0f} events/s {extra}",
          flush=True)
    return n / seconds


def bench_amqp(tmp, n, size):
    from conftest import get
    from queue_helpers import PEERS, AmqpPeer, RabbitBroker, build_c_peer
    broker = RabbitBroker(tmp / "rabbit")
    try:
        broker.start()
        peer = AmqpPeer(build_c_peer(PEERS / "amqp_peer.c", tmp, ["-lrabbitmq"]), broker)
        window = 1000
        peer.declare("bench_warm", "amq.topic", "bench.warm")
        peer.publish_ceiling(min(n, 5000), size, window, "bench.warm")
        peer.declare("bench_sy", "amq.topic", "bench.sy.#")
        peer.declare("bench_raw", "amq.topic", "bench.ceiling")
        peer.declare("bench_props", "amq.topic", "bench.props.#")
        d = run_daemon(tmp / "amqp", {"rmq": {"plugin": "amqp", "url": broker.url,
                                              "routing_key": "bench.sy.{event_type}",
                                              "max_unconfirmed": window}},
                       {"q": {"sink": "rmq", "concurrency": 5000}})
        try:
            secs = timed(d, make_events(n, size, "amqp"))
            s = d.stats()
        finally:
            d.stop()
        batches, flushes = get(s, "sinks.rmq.batches") or 0, get(s, "sinks.rmq.flushes") or 0
        shape = (f", {n / batches:.0f} per batch, {n / flushes:.0f} per push"
                 if batches and flushes else "")
        sy = line("switchyard -> RabbitMQ (confirms, persistent)", n, secs,
                  f"(queue holds {peer.count('bench_sy')}{shape})")
        r = peer.publish_ceiling(n, size, window)
        raw = line(f"raw rabbitmq-c publisher (confirms, window {window})", r["count"],
                   r["seconds"])
        r = peer.publish_ceiling(n, size, window, "bench.props.job.completed", sink_props=True)
        props = line("raw rabbitmq-c, the sink's message properties", r["count"], r["seconds"])
        print(f"  switchyard / raw: {sy / raw:.2f}x bare, {sy / props:.2f}x same properties",
              flush=True)
    finally:
        broker.close()


def bench_sqs(tmp, n, size):
    import subprocess
    from queue_helpers import NODE_ENV, PEERS, Fauxqs
    fq = Fauxqs(tmp)
    try:
        fq.start()
        url = fq.create_queue("bench1")
        d = run_daemon(tmp / "sqs", {"sq": {"plugin": "sqs", "queue_url": url,
                                            "endpoint_url": fq.endpoint, "region": "us-east-1",
                                            "access_key_id": Fauxqs.KEY_ID,
                                            "secret_access_key": Fauxqs.SECRET,
                                            "max_requests": 16}},
                       {"q": {"sink": "sq", "concurrency": 5000}})
        try:
            secs = timed(d, make_events(n, size, "sqs"))
            from conftest import get
            reqs = get(d.stats(), "sinks.sq.requests")
        finally:
            d.stop()
        sy = line("switchyard -> fauxqs (batches, SigV4 proxy)", n, secs,
                  f"({n / max(reqs, 1):.1f} entries per request)")
        url2 = fq.create_queue("bench2")
        r = subprocess.run(["node", str(PEERS / "sqs_client.mjs"), f"http://127.0.0.1:{fq.port}",
                            "bench", url2, str(n), str(size), "16"], capture_output=True,
                           text=True, env=NODE_ENV, timeout=600)
        if r.returncode != 0:
            print(f"  emulator ceiling failed: {r.stderr[-500:]}")
        else:
            import json
            c = json.loads(r.stdout)
            sdk = line("@aws-sdk/client-sqs -> fauxqs directly (16 par.)", c["count"],
                       c["seconds"])
            print(f"  switchyard / AWS SDK: {sy / sdk:.2f}x", flush=True)
    finally:
        fq.close()


def bench_zmq(tmp, n, size):
    import zmq
    from conftest import free_ports
    (port,) = free_ports(1)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(f"tcp://127.0.0.1:{port}")
    try:
        d = run_daemon(tmp / "zmq", {"fwd": {"plugin": "zmq", "connect": f"tcp://127.0.0.1:{port}",
                                             "sndhwm": 100000}},
                       {"q": {"sink": "fwd", "concurrency": 5000}})
        try:
            events = make_events(n, size, "zmq")
            t0 = time.monotonic()
            import threading
            t = threading.Thread(target=d.push, args=(events,))
            t.start()
            for _ in range(n):
                pull.recv_multipart()
            secs = time.monotonic() - t0
            t.join()
        finally:
            d.stop()
        line("switchyard -> ZeroMQ PUSH -> PULL", n, secs)
    finally:
        pull.close(0)
        ctx.term()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--only", default="amqp,sqs,zmq")
    a = ap.parse_args()
    os.environ["SY_BUILD"] = str(Path(a.build).resolve())
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    print(f"queue sinks: {a.events} events of ~{a.size} bytes, 2-core machine, "
          "everything on loopback", flush=True)
    for name in a.only.split(","):
        with tempfile.TemporaryDirectory(prefix=f"sy-bench-{name}-") as tmp:
            print(f"{name}:", flush=True)
            try:
                {"amqp": bench_amqp, "sqs": bench_sqs, "zmq": bench_zmq}[name](
                    Path(tmp), a.events, a.size)
            except BaseException as e:  # pytest.fail/skip from the helpers, or a peer error
                if isinstance(e, KeyboardInterrupt):
                    raise
                print(f"  skipped: {type(e).__name__}: {str(e)[:300]}", flush=True)


if __name__ == "__main__":
    main()
