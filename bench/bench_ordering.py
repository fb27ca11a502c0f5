#!/usr/bin/python3
"""
What ordering costs with a healthy receiver: the same signed-webhook
endpoint unordered, ordered by key, and ordered by endpoint, against one
nginx answering 204 (bench_webhook.py's), on the same events.

Every run is a fresh daemon on its own folder and free port (one PULL
ingress, one endpoint with concurrency 32, a spool unless --no-spool),
fed the same N distinct ~512-byte events spread over K keys
(data.job_id), by the same pyzmq PUSH loop; rounds alternate the runs.
The clock runs from the first send until deliveries.ok reaches N. Ordered
by key, each key has one delivery in flight: up to 32 keys at a time, so
with K >= 32 the figure should stay near the unordered one; ordered by
endpoint, one delivery at a time, so the rate is about one per round trip.
Asserts nothing.
"""

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_webhook import NGINX, Nginx
from benchlib import (ProcSample, Switchyard, build_dir, compare_runs, load_figures, push,
                      version)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MODES = ["unordered", "ordered by key", "ordered by endpoint"]


def events(n, keys, size):
    out = []
    for i in range(n):
        e = {"event_id": f"ord-{i:08d}", "event_type": "job.completed", "org_id": "acme",
             "data": {"job_id": f"j{i % keys}", "n": i, "pad": ""}}
        e["data"]["pad"] = "x" * max(0, size - len(json.dumps(e)))
        out.append(json.dumps(e, separators=(",", ":")).encode())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=20_000, help="events per run (default 20000)")
    ap.add_argument("--endpoint-events", type=int, default=2_000,
                    help="events of the ordered-by-endpoint run (default 2000: it is slow)")
    ap.add_argument("--keys", type=int, default=100, help="distinct keys (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--size", type=int, default=512, help="bytes per event (default 512)")
    ap.add_argument("--no-spool", action="store_true", help="run without a spool")
    ap.add_argument("--tmp", help="parent of the run folders (default: the system's temp folder)")
    a = ap.parse_args()
    build = build_dir(a.build)
    if not (build / "switchyard").exists() or not Path(NGINX).exists():
        print(f"bench_ordering: {build}/switchyard or {NGINX} missing (make all; make bench "
              "installs nginx-light)", file=sys.stderr)
        return 1
    cmd = ["/usr/bin/python3", "bench/bench_ordering.py", "--build", a.build, "--events",
           str(a.events), "--endpoint-events", str(a.endpoint_events), "--keys", str(a.keys),
           "--rounds", str(a.rounds), "--size", str(a.size)] + \
        (["--no-spool"] if a.no_spool else [])
    print(f"ordering: PULL -> webhook sink (HMAC) -> nginx return 204, {a.size}-byte events over "
          f"{a.keys} keys, {a.events} per run ({a.endpoint_events} ordered by endpoint), "
          f"{a.rounds} rounds")
    print(f"  {version(build)}, endpoint concurrency 32, spool {'off' if a.no_spool else 'on'}")
    evs = events(a.events, a.keys, a.size)
    with tempfile.TemporaryDirectory(prefix="sy-bench-ordering-", dir=a.tmp) as tmp:
        nginx = Nginx(tmp)

        def run(rnd, mode):
            folder = Path(tmp) / f"r{rnd}-{MODES.index(mode)}"
            ep = {"sink": "hooks", "url": nginx.url("/hook"), "secrets": [SECRET],
                  "concurrency": 32}
            batch = evs
            if mode == MODES[1]:
                ep.update(ordering="key", ordering_key="data.job_id")
            elif mode == MODES[2]:
                ep.update(ordering="endpoint")
                batch = evs[:a.endpoint_events]
            core = {"stats_interval": "100ms"}
            core["spool"] = None if a.no_spool else str(folder / "spool.db")
            folder.mkdir(parents=True)
            d = Switchyard(build, folder / "d", {"hooks": {"plugin": "webhook",
                                                          "allow_private_networks": True}},
                           {"ep": ep}, core).start()
            try:
                before = ProcSample(d.proc.pid)
                t0 = time.monotonic()
                push(d.addr, batch)
                got = d.wait_deliveries(len(batch), timeout=600)
                # Rates are per event of the run; compare_runs divides by --events.
                res = {"total_s": (time.monotonic() - t0) * a.events / len(batch),
                       "complete": got >= len(batch)}
                if d.proc.poll() is None:
                    res.update(load_figures(before, ProcSample(d.proc.pid), len(batch)))
                notes = [] if res["complete"] else [f"STALLED at {got}"]
                if len(batch) != len(evs):
                    notes.append(f"{len(batch)} events, time scaled to {a.events}")
                res["notes"] = "; ".join(notes)
            finally:
                d.stop()
                shutil.rmtree(folder, ignore_errors=True)
            return res

        print()
        try:
            compare_runs(MODES, a.rounds, run, MODES[0], a.events)
        finally:
            nginx.stop()
    print("events/s: events / (first send -> deliveries.ok == events), stats polled every 5 ms "
          "(written every 100 ms)")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
