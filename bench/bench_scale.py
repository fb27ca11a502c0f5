#!/usr/bin/python3
"""
Routing with many endpoints: throughput with 10, 1,000 and 10,000
endpoints, its ratio (goal: 10,000 >= 0.8x of 10), and start-up time.

The endpoint set (the same for both measurements):
  - "platform": no org, ["job.completed"]   matches every event
  - "audit":    no org, ["audit.*"]         looked up, never matches
  - the rest in orgs of three, "org00000", "org00001", ...: one endpoint
    with ["job.completed"], one with ["job.*"], one with ["*"]; every
    ninth also has a payload filter that holds.
Events are job.completed envelopes of the fully populated orgs, round
robin, so each one matches exactly 4 endpoints however many exist: the
router's index should make the cost per event independent of N.

Two measurements, labelled apart:
  1. router (C harness bench/bench_router.c, built here against
     $BUILD/libsycore.a): router_match calls per second on pre-parsed
     events, nothing else; the best of --repeat runs of --seconds each.
  2. daemon (end to end): a real switchyard with one PULL ingress and all
     endpoints on one file sink instance writing one file (fsync never);
     events/s = events / (first send -> the file holds all 4 x events
     lines, by size; the stats file confirms deliveries.ok after SIGTERM).
     Ingress, envelope check, routing, dispatch to 4 endpoints and 4
     writes per event are all inside the figure.
Start-up: time from exec to the "switchyard ready" log line (config
load, plugin load and init, router build, sockets bound), best of
--repeat.

    /usr/bin/python3 bench/bench_scale.py --build build
    /usr/bin/python3 bench/bench_scale.py --build build --events 100000 --sizes 10,1000,10000,50000

Prints figures; asserts nothing. `make bench` runs every bench/bench_*.py.
"""

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchlib import ROOT, build_dir, free_port, proc_status, push, read_stats

MATCHES_PER_EVENT = 4
READY = b'msg="switchyard ready"'


def endpoints(n):
    """The endpoint set described above, as a config "endpoints" object."""
    eps = {"platform": {"sink": "files", "enabled_events": ["job.completed"]},
           "audit": {"sink": "files", "enabled_events": ["audit.*"]}}
    pats = [["job.completed"], ["job.*"], ["*"]]
    for i in range(n - 2):
        e = {"sink": "files", "org_id": f"org{i // 3:05d}", "enabled_events": pats[i % 3]}
        if i % 9 == 0:
            e["filter"] = {"data.status": "succeeded"}
        eps[f"ep{i:05d}"] = e
    return eps


def full_orgs(n):
    return (n - 2) // 3


def make_events(count, n):
    orgs = full_orgs(n)
    return [('{"event_id":"e%d","event_type":"job.completed","occurred_at":"2026-11-25T19:09:02Z",'
             '"org_id":"org%05d","data":{"status":"succeeded","i":%d}}' % (i, i % orgs, i)).encode()
            for i in range(count)]


# --------------------------------------------------------------------------
# 1. the C harness
# --------------------------------------------------------------------------

def build_harness(build):
    out = build / "bench" / "bench_router"
    src = ROOT / "bench" / "bench_router.c"
    lib = build / "libsycore.a"
    if not lib.exists():
        raise RuntimeError(f"{lib} is missing: run `make` first")
    if out.exists() and out.stat().st_mtime > max(src.stat().st_mtime, lib.stat().st_mtime):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE",
           f"-I{ROOT / 'core'}", f"-I{ROOT / 'sdk' / 'include'}", "-o", str(out), str(src),
           str(lib), "-lzmq", "-lcjson", "-lsqlite3", "-ldl", "-lm", "-lpthread"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building the harness failed:\n{shlex.join(cmd)}\n{r.stderr}")
    return out


def run_harness(binary, n, events, seconds):
    """(routed/s, ns per event) of one harness run."""
    r = subprocess.run([str(binary), str(n), str(events), str(seconds)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"bench_router {n}: {r.stderr}")
    f = dict(kv.split("=") for kv in r.stdout.split())
    return float(f["matches_per_s"]), float(f["ns_per_match"])


# --------------------------------------------------------------------------
# 2. the daemon
# --------------------------------------------------------------------------

class Daemon:
    def __init__(self, build, tmp, n, workers):
        self.build = build
        self.dir = Path(tempfile.mkdtemp(prefix=f"scale-{n}-", dir=tmp))
        self.out = self.dir / "out" / "events.jsonl"
        self.stats = self.dir / "stats.json"
        self.addr = f"tcp://127.0.0.1:{free_port()}"
        self.conf = self.dir / "conf.d"
        self.conf.mkdir()
        (self.conf / "10-core.json").write_text(json.dumps({"core": {
            "plugin_dir": str(build / "plugins"),
            "ingress": [{"type": "pull", "bind": self.addr}],
            # The stats file lists every endpoint: rewriting it often would cost
            # more with 10,000 endpoints than with 10 and skew the comparison,
            # so completion is read from the sink file's size instead.
            "quarantine": None, "stats_file": str(self.stats), "stats_interval": "1s",
            "workers": workers, "log_level": "info"}}))
        (self.conf / "20-sinks.json").write_text(json.dumps({"sinks": {"files": {
            "plugin": "file", "path": str(self.out), "fsync": "never"}}}))
        (self.conf / "30-endpoints.json").write_text(json.dumps({"endpoints": endpoints(n)}))
        self.proc = None

    def start(self):
        """Starts the daemon; returns seconds from exec to the ready line."""
        self.log = open(self.dir / "daemon.log", "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([str(self.build / "switchyard"), "run", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # Read stderr line by line until the ready line, copying it to the log.
        for line in self.proc.stderr:
            self.log.write(line)
            if READY in line:
                took = time.monotonic() - t0
                break
        else:
            raise RuntimeError("daemon exited before it was ready:\n" +
                               (self.dir / "daemon.log").read_text())
        # Keep draining stderr so the daemon never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return took

    def _drain(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None


def run_daemon(build, tmp, n, events, workers):
    d = Daemon(build, tmp, n, workers)
    res = {"n": n}
    try:
        res["startup_s"] = d.start()
        evs = make_events(events, n)
        want = events * MATCHES_PER_EVENT
        # Every delivery appends the event and a newline to the one sink file.
        want_bytes = MATCHES_PER_EVENT * sum(len(e) + 1 for e in evs)
        t0 = time.monotonic()
        push(d.addr, evs)
        deadline = t0 + max(120, events / 100)
        size = 0
        while True:
            try:
                size = d.out.stat().st_size
            except FileNotFoundError:
                pass
            if size >= want_bytes or time.monotonic() > deadline or d.proc.poll() is not None:
                break
            time.sleep(0.002)
        res["total_s"] = time.monotonic() - t0
        res["events_s"] = events / res["total_s"] if size >= want_bytes else None
        res["hwm_kb"] = proc_status(d.proc.pid, "VmHWM")
    finally:
        res["exit"] = d.stop()
        d.log.close()
    s = read_stats(d.stats) or {}
    dl = s.get("deliveries", {})
    res["delivered"] = dl.get("ok", 0)
    res["per_call"] = dl["attempts"] / dl["plugin_calls"] if dl.get("plugin_calls") else None
    shutil.rmtree(d.dir, ignore_errors=True)  # 4 x events lines: keep /tmp from filling up
    if res["events_s"] is not None and res["delivered"] != want:
        res["events_s"] = None  # the bytes arrived but the count is off: report it
    return res


def run_startup(build, tmp, n, repeat):
    best = None
    for _ in range(repeat):
        d = Daemon(build, tmp, n, 4)
        try:
            took = d.start()
        finally:
            d.stop()
            if getattr(d, "log", None):
                d.log.close()
        best = took if best is None else min(best, took)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--sizes", default="10,1000,10000",
                    help="endpoint counts, comma-separated (default 10,1000,10000)")
    ap.add_argument("--events", type=int, default=100000,
                    help="events per daemon run (default 100000; 4 deliveries each)")
    ap.add_argument("--harness-events", type=int, default=4096,
                    help="distinct pre-parsed events the harness cycles through (default 4096)")
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="duration of each harness run (default 1)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="harness runs, daemon runs and start-ups per size; the best counts "
                         "(default 3)")
    ap.add_argument("--workers", type=int, default=4, help="core.workers (default 4)")
    ap.add_argument("--tmp", default=None,
                    help="parent of the daemons' run folder (default: the system's temp folder)")
    ap.add_argument("--skip-daemon", action="store_true", help="only the C harness")
    a = ap.parse_args()
    build = build_dir(a.build)
    sizes = [int(x) for x in a.sizes.split(",")]
    if min(sizes) < 5:
        sys.exit("--sizes: at least 5 endpoints (2 without org, then orgs of 3)")
    cpus = os.cpu_count()
    print(f"bench_scale: {cpus} CPUs, {MATCHES_PER_EVENT} matching endpoints per event, "
          f"build {build}")

    print("\n1. router (C harness bench/bench_router.c, router_match only, "
          f"best of {a.repeat} x {a.seconds:g}s)")
    harness = build_harness(build)
    # Rounds alternate the sizes (10, 1000, 10000, 10, ...) so that a noisy
    # moment of the shared machine does not fall on one size only.
    hruns = {n: [] for n in sizes}
    for _ in range(a.repeat):
        for n in sizes:
            hruns[n].append(run_harness(harness, n, a.harness_events, a.seconds))
    hres = {n: max(hruns[n]) for n in sizes}
    print(f"   {'endpoints':>9} {'routed/s':>12} {'ns/event':>9} {'vs ' + str(sizes[0]):>8}")
    for n in sizes:
        rate, ns = hres[n]
        print(f"   {n:>9} {rate:>12,.0f} {ns:>9.1f} {rate / hres[sizes[0]][0]:>8.2f}")

    if a.skip_daemon:
        return
    with tempfile.TemporaryDirectory(prefix="sy-bench-scale-", dir=a.tmp) as tmp:
        daemon_parts(build, tmp, sizes, hres, a)


def daemon_parts(build, tmp, sizes, hres, a):
    print(f"\n2. daemon (end to end, PULL -> file sink, {a.events} events, "
          f"{a.events * MATCHES_PER_EVENT} deliveries per run, best of {a.repeat}, "
          "rounds alternating the sizes)")
    druns = {n: [] for n in sizes}
    for _ in range(a.repeat):
        for n in sizes:
            druns[n].append(run_daemon(build, tmp, n, a.events, a.workers))
    dres = {}
    for n in sizes:
        done = [r for r in druns[n] if r["events_s"]]
        dres[n] = max(done, key=lambda r: r["events_s"]) if done else druns[n][0]
        print(f"   runs with {n} endpoints: " +
              ", ".join(f"{r['events_s']:,.0f}" if r["events_s"] else "incomplete"
                        for r in druns[n]) + " events/s")
    print(f"   {'endpoints':>9} {'events/s':>10} {'deliv/s':>10} {'vs ' + str(sizes[0]):>8} "
          f"{'peak RSS':>9} {'ev/call':>7} {'notes'}")
    base = dres[sizes[0]].get("events_s")
    for n in sizes:
        r = dres[n]
        notes = []
        if r["exit"] != 0:
            notes.append(f"exit {r['exit']}")
        if r["events_s"] is None:
            notes.append(f"only {r['delivered']} of {a.events * MATCHES_PER_EVENT} delivered")
        ev = r["events_s"]
        print(f"   {n:>9} {ev or 0:>10,.0f} {(ev or 0) * MATCHES_PER_EVENT:>10,.0f} "
              f"{(ev / base) if ev and base else 0:>8.2f} "
              f"{(r['hwm_kb'] or 0) / 1024:>7.0f}MB {r['per_call'] or 0:>7.1f} {'; '.join(notes)}")

    print("   ev/call: deliveries per file sink call (attempts / plugin_calls); batches form "
          "per endpoint, then the file sink's are joined across endpoints (SY_SINK_BATCH_ACROSS)")
    print(f"\n3. start-up (exec -> ready line, best of {a.repeat})")
    for n in sizes:
        print(f"   {n:>9} endpoints: {run_startup(build, tmp, n, a.repeat) * 1000:8.1f} ms")

    big, small = max(sizes), min(sizes)
    print(f"\nratio {big} vs {small} endpoints (goal >= 0.80): "
          f"router {hres[big][0] / hres[small][0]:.2f}", end="")
    if dres[big].get("events_s") and dres[small].get("events_s"):
        ratio = dres[big]["events_s"] / dres[small]["events_s"]
        print(f", daemon {ratio:.2f} ({'meets' if ratio >= 0.8 else 'below'})")
    else:
        print(", daemon n/a")


if __name__ == "__main__":
    main()
