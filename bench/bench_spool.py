#!/usr/bin/python3
"""
What durability costs, and what it holds: three figures for the SQLite spool.

  (a) throughput with the spool vs `spool: null`, same run, same events:
      N distinct ~1 KiB events (100,000 by default) over PULL into one file
      sink (fsync "never"); the clock runs from the first send until the
      stats file says deliveries.ok == N. Ratio = spool / null (goal >= 0.7).
      Run for spool_sync "full" (the default) and "normal".
  (b) acknowledged publishing: `switchyard publish --ack --file` of 50,000
      events; events/s = events acknowledged ("ok") / wall time of the CLI,
      which exits when every event has its answer.
  (c) peak RSS (VmHWM) of the daemon holding 1,000,000 pending retries
      (goal < 256 MiB): a flaky sink that always fails, a retry schedule of
      ["1h"] and spill_after "1s" (so every retry waits on disk), 1,000,000
      small events over PULL; VmHWM is read once the stats file says
      deliveries.retries == N. --pending sets N; if the run cannot finish in
      --pending-timeout seconds, the figure is printed for the retries
      reached and marked as such.

Every part prints how long it took. Prints figures; asserts nothing.
`make bench` runs it as: /usr/bin/python3 bench/bench_spool.py --build build
"""

import argparse
import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def make_events(n, size, prefix, start=0):
    head = ('{"event_id":"%s-%08d","event_type":"job.completed",'
            '"occurred_at":"2026-11-25T19:09:02Z","version":"1","org_id":"acme",'
            '"org_slug":"acme","data":{"job_id":"j%d","pad":"')
    tail = '"}}'
    pad = "x" * max(0, size - len(head % (prefix, 0, 0)) - len(tail))
    return [((head % (prefix, i, i)) + pad + tail).encode() for i in range(start, start + n)]


def write_events_file(path, n, size, prefix):
    """Writes n events, one per line, in chunks (1M events never sit in a list)."""
    with open(path, "wb") as f:
        for start in range(0, n, 100_000):
            chunk = make_events(min(100_000, n - start), size, prefix, start)
            f.write(b"\n".join(chunk) + b"\n")


def read_stats(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def proc_status(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return None


def fs_type(path):
    path = os.path.realpath(path)
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mnt = parts[1]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


class Daemon:
    """One switchyard on a throwaway folder: PULL and ack ingress, stats every 20 ms."""

    def __init__(self, build, folder, sinks, endpoints, core):
        self.build = build
        self.dir = Path(folder)
        self.dir.mkdir(parents=True)
        self.stats = self.dir / "stats.json"
        self.pull = f"tcp://127.0.0.1:{free_port()}"
        self.ack = f"tcp://127.0.0.1:{free_port()}"
        conf = self.dir / "conf.d"
        conf.mkdir()
        c = {"plugin_dir": str(build / "plugins"),
             "ingress": [{"type": "pull", "bind": self.pull}, {"type": "ack", "bind": self.ack}],
             "quarantine": str(self.dir / "quarantine.jsonl"),
             "stats_file": str(self.stats), "stats_interval": "20ms",
             "workers": 4, "log_level": "warn"}
        c.update(core)
        (conf / "10-core.json").write_text(json.dumps({"core": c}))
        (conf / "20-sinks.json").write_text(json.dumps({"sinks": sinks}))
        (conf / "30-endpoints.json").write_text(json.dumps({"endpoints": endpoints}))
        self.conf = conf
        self.log = open(self.dir / "daemon.log", "wb")
        self.proc = subprocess.Popen([str(build / "switchyard"), "run", "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        deadline = time.monotonic() + 20
        while read_stats(self.stats) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("daemon did not start:\n" +
                                   (self.dir / "daemon.log").read_text()[-2000:])
            time.sleep(0.01)

    def wait(self, key, n, timeout):
        """Polls stats[deliveries][key] until >= n; returns (value, seconds waited)."""
        t0 = time.monotonic()
        v = 0
        while True:
            s = read_stats(self.stats)
            if s:
                v = s["deliveries"][key]
            if v >= n or time.monotonic() - t0 > timeout or self.proc.poll() is not None:
                return v, s
            time.sleep(0.005)

    def hwm_kb(self):
        return proc_status(self.proc.pid, "VmHWM")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


def publish_file(binary, addr, path, ack=False, extra=()):
    cmd = [str(binary), "publish", "--connect", addr, "--file", str(path), "--quiet"]
    if ack:
        cmd[2:2] = ["--ack"]
        cmd.remove("--quiet")
    t0 = time.monotonic()
    r = subprocess.run(cmd + list(extra), capture_output=True)
    return time.monotonic() - t0, r


# ---- (a) ---------------------------------------------------------------------

def part_a(build, tmp, n, size):
    events_file = Path(tmp) / "a-events.jsonl"
    write_events_file(events_file, n, size, "thr")
    rows = []
    for label, core in (("spool: null", {"spool": None}),
                        ("spool, sync full", {"spool": str(Path(tmp) / "a-full" / "spool.db"),
                                              "spool_sync": "full"}),
                        ("spool, sync normal", {"spool": str(Path(tmp) / "a-normal" / "spool.db"),
                                                "spool_sync": "normal"})):
        folder = Path(tmp) / ("a-" + label.split()[-1])
        out = folder / "out.jsonl"
        d = Daemon(build, folder, {"files": {"plugin": "file", "path": str(out),
                                             "fsync": "never"}},
                   {"all": {"sink": "files", "enabled_events": ["*"]}}, core)
        try:
            t0 = time.monotonic()
            pub_s, r = publish_file(build / "switchyard", d.pull, events_file)
            ok, _ = d.wait("ok", n, timeout=max(120, n / 500))
            total = time.monotonic() - t0
            hwm = d.hwm_kb()
        finally:
            rc = d.stop()
        lines = sum(1 for _ in open(out, "rb")) if out.exists() else 0
        rows.append({"label": label, "ok": ok, "total": total, "publish": pub_s,
                     "rate": ok / total if total else 0, "hwm": hwm, "rc": rc, "lines": lines,
                     "pub_rc": r.returncode})
    return rows


# ---- (b) ---------------------------------------------------------------------

def part_b(build, tmp, n, size):
    events_file = Path(tmp) / "b-events.jsonl"
    write_events_file(events_file, n, size, "ack")
    res = {}
    for label, sync in (("sync full", "full"), ("sync normal", "normal")):
        folder = Path(tmp) / f"b-{sync}"
        d = Daemon(build, folder, {"files": {"plugin": "file", "path": str(folder / "out.jsonl"),
                                             "fsync": "never"}},
                   {"all": {"sink": "files", "enabled_events": ["*"]}},
                   {"spool": str(folder / "spool.db"), "spool_sync": sync})
        try:
            took, r = publish_file(build / "switchyard", d.ack, events_file, ack=True)
        finally:
            rc = d.stop()
        err = r.stderr.decode().strip().splitlines()
        summary = err[-1] if err else ""
        stored = 0
        try:
            w = summary.replace(",", "").split()
            stored = int(w[5]) + int(w[7])
        except (IndexError, ValueError):
            pass
        res[label] = {"took": took, "stored": stored, "summary": summary,
                      "exit": r.returncode, "rc": rc}
    return res


# ---- (c) ---------------------------------------------------------------------

def part_c(build, tmp, n, timeout):
    folder = Path(tmp) / "c"
    events_file = Path(tmp) / "c-events.jsonl"
    t_gen = time.monotonic()
    with open(events_file, "wb") as f:
        for start in range(0, n, 100_000):
            f.write(b"".join(b'{"event_id":"p%08d","event_type":"job.completed",'
                             b'"occurred_at":"2026-11-25T19:09:02Z","version":"1","data":{}}\n'
                             % i for i in range(start, min(n, start + 100_000))))
    gen_s = time.monotonic() - t_gen
    spool = folder / "spool.db"
    d = Daemon(build, folder,
               {"down": {"plugin": str(build / "tests" / "plugins" / "flaky.so"),
                         "log": "/dev/null", "fail_times": 1000000000}},
               {"down": {"sink": "down", "enabled_events": ["*"], "breaker": False,
                         "disable_after": False, "concurrency": 64,
                         "retry": {"schedule": ["1h"]}}},
               {"spool": str(spool), "spill_after": "1s", "spool_sync": "normal",
                "stats_interval": "200ms"})
    res = {"n": n, "gen_s": gen_s}
    try:
        t0 = time.monotonic()
        pub = subprocess.Popen([str(build / "switchyard"), "publish", "--connect", d.pull,
                                "--file", str(events_file), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        retries, s = d.wait("retries", n, timeout=timeout)
        res["s"] = time.monotonic() - t0
        res["retries"] = retries
        res["hwm_kb"] = d.hwm_kb()
        res["rss_kb"] = proc_status(d.proc.pid, "VmRSS")
        res["in_memory"] = (sum(s["deliveries"][k] for k in ("ready", "waiting", "inflight",
                                                             "scheduled", "held"))
                            if s else None)
        if pub.poll() is None:
            pub.kill()
        pub.wait()
        t_stop = time.monotonic()
    finally:
        res["rc"] = d.stop()
    res["stop_s"] = time.monotonic() - t_stop
    try:
        db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True)
        res["pending_rows"] = db.execute(
            "SELECT count(*) FROM deliveries WHERE state = 0").fetchone()[0]
        db.close()
    except sqlite3.Error as e:
        res["pending_rows"] = f"? ({e})"
    res["spool_mb"] = sum(p.stat().st_size for p in folder.glob("spool.db*")) / 1e6
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=100_000, help="(a) events (default 100000)")
    ap.add_argument("--size", type=int, default=1024, help="(a), (b) bytes per event")
    ap.add_argument("--ack-events", type=int, default=50_000, help="(b) events (default 50000)")
    ap.add_argument("--pending", type=int, default=1_000_000,
                    help="(c) pending retries (default 1000000)")
    ap.add_argument("--pending-timeout", type=float, default=600,
                    help="(c) give up after this many seconds (default 600)")
    ap.add_argument("--parts", default="abc", help="which parts to run (default abc)")
    ap.add_argument("--tmp", help="parent folder for the run folders (default: system temp)")
    a = ap.parse_args()

    build = Path(a.build)
    if not build.is_absolute():
        build = (Path.cwd() / build) if (Path.cwd() / build).exists() else ROOT / build
    need = [build / "switchyard", build / "plugins" / "file.so"]
    if "c" in a.parts:
        need.append(build / "tests" / "plugins" / "flaky.so")
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        print(f"bench_spool: missing {', '.join(missing)}; run `make all` and `make e2e`",
              file=sys.stderr)
        return 1
    cmd = ["/usr/bin/python3", "bench/bench_spool.py", "--build", a.build, "--events",
           str(a.events), "--ack-events", str(a.ack_events), "--pending", str(a.pending),
           "--size", str(a.size)]
    version = subprocess.run([str(build / "switchyard"), "version"], capture_output=True,
                             text=True).stdout.strip()
    print(f"switchyard spool benchmark ({version}, {os.cpu_count()} CPUs)")
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sy-bench-spool-", dir=a.tmp) as tmp:
        print(f"  run folder: {tmp} ({fs_type(tmp)})")
        if "a" in a.parts:
            t = time.monotonic()
            print(f"\n(a) PULL -> file sink, {a.events} events of {a.size} bytes, "
                  "same events in each run")
            try:
                rows = part_a(build, tmp, a.events, a.size)
                base = next(r["rate"] for r in rows if r["label"] == "spool: null")
                print(f"  {'mode':<20} {'delivered':>9} {'total s':>8} {'events/s':>10} "
                      f"{'ratio':>6} {'peak RSS':>10}  notes")
                for r in rows:
                    notes = []
                    if r["ok"] != a.events:
                        notes.append(f"only {r['ok']} delivered")
                    if r["lines"] != r["ok"]:
                        notes.append(f"{r['lines']} lines in the file")
                    if r["rc"] != 0 or r["pub_rc"] != 0:
                        notes.append(f"exit codes daemon {r['rc']} publish {r['pub_rc']}")
                    rss = f"{r['hwm'] / 1024:.1f} MiB" if r["hwm"] else "?"
                    print(f"  {r['label']:<20} {r['ok']:>9} {r['total']:>8.2f} "
                          f"{r['rate']:>10,.0f} {r['rate'] / base if base else 0:>6.2f} "
                          f"{rss:>10}  {'; '.join(notes) or 'ok'}")
                print("  ratio = events/s with the spool / events/s with spool: null "
                      "(goal >= 0.7 for the default, sync full)")
            except Exception as e:  # a figure we could not take is reported, not raised
                print(f"  (a) failed: {e}")
            print(f"  (a) took {time.monotonic() - t:.1f}s")
        if "b" in a.parts:
            t = time.monotonic()
            print(f"\n(b) switchyard publish --ack --file, {a.ack_events} events of "
                  f"{a.size} bytes, spool on")
            try:
                res = part_b(build, tmp, a.ack_events, a.size)
                for label, r in res.items():
                    rate = r["stored"] / r["took"] if r["took"] else 0
                    print(f"  {label:<12} {r['stored']:>7} acknowledged in {r['took']:6.2f}s "
                          f"= {rate:>9,.0f} events/s  (publish exit {r['exit']}: "
                          f"{r['summary']})")
            except Exception as e:
                print(f"  (b) failed: {e}")
            print(f"  (b) took {time.monotonic() - t:.1f}s")
        if "c" in a.parts:
            t = time.monotonic()
            print(f"\n(c) peak RSS with {a.pending} pending retries (flaky sink failing "
                  "always, retry [\"1h\"], spill_after 1s, spool_sync normal)")
            try:
                r = part_c(build, tmp, a.pending, a.pending_timeout)
                hwm = r["hwm_kb"] / 1024 if r["hwm_kb"] else 0
                reached = r["retries"] >= a.pending
                label = (f"{r['retries']} pending retries" if reached else
                         f"ONLY {r['retries']} of {a.pending} pending retries reached within "
                         f"{a.pending_timeout:.0f}s; figure for that N")
                print(f"  {label}: VmHWM {hwm:.1f} MiB (goal < 256 MiB), VmRSS "
                      f"{(r['rss_kb'] or 0) / 1024:.1f} MiB, deliveries in memory "
                      f"{r['in_memory']}")
                print(f"  reached in {r['s']:.1f}s ({r['retries'] / r['s']:,.0f} events/s "
                      f"stored+attempted+spilled); events file written in {r['gen_s']:.1f}s; "
                      f"spool {r['spool_mb']:.0f} MB, {r['pending_rows']} pending rows after "
                      f"stop; SIGTERM took {r['stop_s']:.1f}s, exit {r['rc']}")
            except Exception as e:
                print(f"  (c) failed: {e}")
            print(f"  (c) took {time.monotonic() - t:.1f}s")
    print(f"\ntotal {time.monotonic() - t_all:.1f}s; reproduce: "
          + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
