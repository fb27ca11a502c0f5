#!/usr/bin/python3
"""
Throughput and memory of the whole pipeline: ZeroMQ PULL ingress ->
envelope check -> router -> dispatcher -> file sink -> disk.

For each fsync policy of the file sink ("never", then "always" with fewer
events, since every event then waits for the disk), the benchmark

  1. writes a config folder in a temporary directory (one PULL ingress, one
     file sink, one endpoint taking every event, stats every 20 ms) and
     starts the daemon;
  2. pre-generates N distinct ~1 KiB events (not timed);
  3. starts the clock, publishes all N as fast as the publisher can, and
     stops the clock when the stats file says deliveries.ok == N;
  4. reads the daemon's peak RSS (VmHWM in /proc/PID/status) just before
     SIGTERM, then checks the sink file holds N lines.

Events/s = N / (time from the first send to deliveries.ok == N), so it is
end-to-end: an event counts only once it is in the file. Prints figures;
asserts nothing. `make bench` runs every bench/bench_*.py.
"""

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHERS = ("cli", "pyzmq")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_events(n, size, prefix):
    """n distinct compact envelopes of about `size` bytes each."""
    head = ('{"event_id":"%s-%08d","event_type":"job.completed",'
            '"occurred_at":"2026-11-25T19:09:02Z","version":"1","org_id":"acme",'
            '"org_slug":"acme","data":{"job_id":"j%d","status":"succeeded","pad":"')
    tail = '"}}'
    base_len = len(head % (prefix, 0, 0)) + len(tail)
    pad = "x" * max(0, size - base_len)
    return [((head % (prefix, i, i)) + pad + tail).encode() for i in range(n)]


def fs_type(path):
    """The file system type of the mount holding path (from /proc/mounts)."""
    path = os.path.realpath(path)
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mnt = parts[1].replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def read_stats(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def proc_status(pid, key):
    """A kB value from /proc/PID/status (VmHWM, VmRSS), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return None


def publish_pyzmq(addr, events):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, 100000)
    s.setsockopt(zmq.LINGER, 600000)
    s.connect(addr)
    send = s.send
    for e in events:
        send(e, copy=False)
    s.close()
    ctx.term()  # returns once every event left the process


def publish_cli(binary, addr, events_file):
    r = subprocess.run([str(binary), "publish", "--connect", addr, "--file", str(events_file),
                        "--quiet"], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"switchyard publish failed ({r.returncode}): {r.stderr.decode()}")


class Run:
    def __init__(self, build, tmp, fsync, n, size, publisher, workers):
        self.build, self.fsync, self.n, self.size = build, fsync, n, size
        self.publisher, self.workers = publisher, workers
        self.dir = Path(tmp) / f"fsync-{fsync}"
        self.dir.mkdir()
        self.out = self.dir / "out" / "events.jsonl"
        self.stats = self.dir / "stats.json"
        self.addr = f"tcp://127.0.0.1:{free_port()}"
        conf = self.dir / "conf.d"
        conf.mkdir()
        (conf / "10-core.json").write_text(json.dumps({"core": {
            "plugin_dir": str(build / "plugins"),
            "ingress": [{"type": "pull", "bind": self.addr}],
            "quarantine": str(self.dir / "quarantine.jsonl"),
            "stats_file": str(self.stats), "stats_interval": "20ms",
            "workers": workers, "log_level": "warn"}}))
        (conf / "20-sinks.json").write_text(json.dumps({"sinks": {"files": {
            "plugin": "file", "path": str(self.out), "fsync": fsync}}}))
        (conf / "30-endpoints.json").write_text(json.dumps({"endpoints": {"all": {
            "sink": "files", "enabled_events": ["*"]}}}))
        self.conf = conf

    def go(self):
        events = make_events(self.n, self.size, f"bench-{self.fsync}")
        events_file = self.dir / "events.jsonl"
        if self.publisher == "cli":
            events_file.write_bytes(b"\n".join(events) + b"\n")
        log = open(self.dir / "daemon.log", "wb")
        # log_level warn: the ready line is info, so wait for the first stats file.
        proc = subprocess.Popen([str(self.build / "switchyard"), "run", "-c", str(self.conf)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        res = {"fsync": self.fsync, "events": self.n, "publisher": self.publisher,
               "bytes": sum(map(len, events)) // self.n}
        try:
            deadline = time.monotonic() + 10
            while read_stats(self.stats) is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("daemon did not start:\n" +
                                       (self.dir / "daemon.log").read_text())
                time.sleep(0.01)
            t0 = time.monotonic()
            if self.publisher == "cli":
                publish_cli(self.build / "switchyard", self.addr, events_file)
            else:
                publish_pyzmq(self.addr, events)
            res["publish_s"] = time.monotonic() - t0
            ok = 0
            deadline = t0 + max(120, self.n / 50)
            while True:
                s = read_stats(self.stats)
                ok = s["deliveries"]["ok"] if s else ok
                if ok >= self.n or time.monotonic() > deadline or proc.poll() is not None:
                    break
                time.sleep(0.005)
            res["total_s"] = time.monotonic() - t0
            res["delivered"] = ok
            res["hwm_kb"] = proc_status(proc.pid, "VmHWM")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        res["exit"] = proc.returncode
        try:
            with open(self.out, "rb") as f:
                res["lines"] = sum(1 for _ in f)
        except FileNotFoundError:
            res["lines"] = 0
        return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=100_000,
                    help="events for the fsync \"never\" run (default 100000)")
    ap.add_argument("--always-events", type=int, default=5_000,
                    help="events for the fsync \"always\" run (default 5000)")
    ap.add_argument("--size", type=int, default=1024, help="bytes per event (default 1024)")
    ap.add_argument("--workers", type=int, default=4, help="core.workers (default 4)")
    ap.add_argument("--publisher", choices=PUBLISHERS, default="cli",
                    help="cli: `switchyard publish --file` from a pre-generated file (default; "
                         "the faster one here); pyzmq: a Python PUSH loop")
    ap.add_argument("--tmp", help="keep the run folders here instead of a throwaway one")
    a = ap.parse_args()

    build = Path(a.build)
    if not build.is_absolute():
        build = (Path.cwd() / build) if (Path.cwd() / build).exists() else ROOT / build
    if not (build / "switchyard").exists() or not (build / "plugins" / "file.so").exists():
        print(f"bench: {build}/switchyard or plugins/file.so missing; run `make all`",
              file=sys.stderr)
        return 1

    cmd = ["/usr/bin/python3", "bench/bench_throughput.py", "--build", a.build, "--events",
           str(a.events), "--always-events", str(a.always_events), "--size", str(a.size),
           "--workers", str(a.workers), "--publisher", a.publisher]
    version = subprocess.run([str(build / "switchyard"), "version"], capture_output=True,
                             text=True).stdout.strip()
    print(f"switchyard throughput: PULL -> file sink, {a.size}-byte events, "
          f"{a.workers} workers, {os.cpu_count()} CPUs")
    print(f"  {version}")
    print("  publisher: " + ("`switchyard publish --file` (C, from a pre-generated file; "
                             "a little faster than a pyzmq PUSH loop, --publisher pyzmq)"
                             if a.publisher == "cli" else
                             "pyzmq PUSH loop (--publisher cli uses `switchyard publish --file`)"))
    print(f"  fsync \"always\" uses {a.always_events} events instead of {a.events}: "
          "every event waits for the disk")

    runs = [("never", a.events), ("always", a.always_events)]
    results = []
    with tempfile.TemporaryDirectory(prefix="sy-bench-", dir=a.tmp) as tmp:
        kind = fs_type(tmp)
        print(f"  run folder: {tmp} ({kind})")
        if kind in ("tmpfs", "ramfs"):
            print("  warning: fsync does nothing on tmpfs; pass --tmp DIR on a real disk")
        print()
        for fsync, n in runs:
            if n <= 0:
                continue
            try:
                results.append(Run(build, tmp, fsync, n, a.size, a.publisher, a.workers).go())
            except Exception as e:  # a figure we could not take is reported, not raised
                print(f"fsync {fsync}: run failed: {e}", file=sys.stderr)
                results.append({"fsync": fsync, "events": n, "error": str(e)})

    hdr = f"{'fsync':<8} {'events':>8} {'bytes/ev':>8} {'publish s':>10} {'total s':>8} " \
          f"{'events/s':>10} {'MB/s':>7} {'peak RSS':>10}  notes"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        if "error" in r:
            print(f"{r['fsync']:<8} {r['events']:>8}  failed: {r['error'].splitlines()[0]}")
            continue
        notes = []
        if r["delivered"] != r["events"]:
            notes.append(f"only {r['delivered']} delivered (timeout)")
        if r["lines"] != r["delivered"]:
            notes.append(f"{r['lines']} lines in the file")
        if r["exit"] != 0:
            notes.append(f"exit code {r['exit']}")
        rate = r["delivered"] / r["total_s"] if r["total_s"] > 0 else 0
        mbs = rate * r["bytes"] / 1e6
        rss = f"{r['hwm_kb'] / 1024:.1f} MiB" if r["hwm_kb"] else "?"
        print(f"{r['fsync']:<8} {r['events']:>8} {r['bytes']:>8} {r['publish_s']:>10.2f} "
              f"{r['total_s']:>8.2f} {rate:>10,.0f} {mbs:>7.1f} {rss:>10}  "
              f"{'; '.join(notes) or 'ok'}")
    print()
    print("events/s: events / (first send -> deliveries.ok == events in the stats file, "
          "polled every 5 ms, written every 20 ms)")
    print("publish s: time the publisher took to hand every event to ZeroMQ; "
          "peak RSS: VmHWM of the daemon just before SIGTERM")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
