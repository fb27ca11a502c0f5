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
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (Switchyard, build_dir, count_lines, fs_type, make_events, proc_status,
                      read_stats)


def write_events_file(path, n, size, prefix):
    """Writes n events, one per line, in chunks (1M events never sit in a list)."""
    with open(path, "wb") as f:
        for start in range(0, n, 100_000):
            chunk = make_events(min(100_000, n - start), size, prefix, start)
            f.write(b"\n".join(chunk) + b"\n")


class Daemon(Switchyard):
    """One switchyard on a throwaway folder: PULL and ack ingress, stats every 20 ms; started."""

    def __init__(self, build, folder, sinks, endpoints, core):
        super().__init__(build, folder, sinks, endpoints, {"stats_interval": "20ms", **core},
                         ack=True)
        self.pull = self.addr
        self.start()

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


def publish_file(binary, addr, path, ack=False, extra=()):
    # Without --ack, --timeout also bounds the wait at close for the events
    # still queued (5 s by default): a daemon slower than the publisher
    # would lose the rest, so it is as long as any part may take.
    cmd = [str(binary), "publish", "--connect", addr, "--file", str(path)]
    cmd += ["--ack"] if ack else ["--quiet", "--timeout", "900000"]
    t0 = time.monotonic()
    r = subprocess.run(cmd + list(extra), capture_output=True)
    return time.monotonic() - t0, r


# ---- (a) ---------------------------------------------------------------------

def part_a(build, tmp, n, size, rounds):
    """Rounds alternating null, full, normal on the same events; one row per run."""
    events_file = Path(tmp) / "a-events.jsonl"
    write_events_file(events_file, n, size, "thr")
    rows = []
    for rnd in range(1, rounds + 1):
        for label, core in (("spool: null", {"spool": None}),
                            ("spool, sync full", {"spool_sync": "full"}),
                            ("spool, sync normal", {"spool_sync": "normal"})):
            folder = Path(tmp) / f"a{rnd}-{label.split()[-1]}"
            if "spool_sync" in core:
                core["spool"] = str(folder / "spool.db")
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
            lines = count_lines(out)
            shutil.rmtree(folder, ignore_errors=True)
            rows.append({"round": rnd, "label": label, "ok": ok, "total": total,
                         "publish": pub_s, "rate": ok / total if total else 0, "hwm": hwm,
                         "rc": rc, "lines": lines, "pub_rc": r.returncode})
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
    # fail_times at its maximum: with a retry schedule of 1h no delivery gets
    # a second attempt during the run, so every one fails.
    d = Daemon(build, folder,
               {"down": {"plugin": str(build / "tests" / "plugins" / "flaky.so"),
                         "log": "/dev/null", "fail_times": 1000000}},
               {"down": {"sink": "down", "enabled_events": ["*"], "breaker": False,
                         "disable_after": False, "concurrency": 64,
                         "retry": {"schedule": ["1h"]}}},
               {"spool": str(spool), "spill_after": "1s", "spool_sync": "normal",
                "stats_interval": "200ms"})
    res = {"n": n, "gen_s": gen_s}
    try:
        t0 = time.monotonic()
        # Each send, and the wait at close for the events still queued, may
        # take as long as the whole part: a daemon slower than the publisher
        # must slow it down, not make it give up (the default is 5 s).
        pub = subprocess.Popen([str(build / "switchyard"), "publish", "--connect", d.pull,
                                "--file", str(events_file), "--quiet", "--timeout",
                                str(int(timeout * 1000))],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # The longest time events.received stood still before all arrived:
        # how long ingress stayed paused at worst.
        retries, s, last, since, res["longest_pause_s"] = 0, None, -1, t0, 0.0
        while retries < n and time.monotonic() - t0 < timeout and d.proc.poll() is None:
            time.sleep(0.05)
            s = read_stats(d.stats) or s
            if not s:
                continue
            retries, now = s["deliveries"]["retries"], time.monotonic()
            if s["events"]["received"] != last:
                last, since = s["events"]["received"], now
            elif last < n:
                res["longest_pause_s"] = max(res["longest_pause_s"], now - since)
        res["s"] = time.monotonic() - t0
        res["retries"] = retries
        res["hwm_kb"] = d.hwm_kb()
        res["rss_kb"] = proc_status(d.proc.pid, "VmRSS")
        res["in_memory"] = (sum(s["deliveries"].get(k, 0) for k in ("ready", "inflight",
                                                                     "scheduled", "held"))
                            if s else None)
        if pub.poll() is None:
            pub.kill()
        pub.wait()
        res["publish_exit"] = pub.returncode
        res["publish_err"] = pub.stderr.read().decode(errors="replace").strip()
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
    ap.add_argument("--rounds", type=int, default=2,
                    help="(a) rounds of null, full, normal (default 2)")
    ap.add_argument("--size", type=int, default=1024, help="(a), (b) bytes per event")
    ap.add_argument("--ack-events", type=int, default=50_000, help="(b) events (default 50000)")
    ap.add_argument("--pending", type=int, default=1_000_000,
                    help="(c) pending retries (default 1000000)")
    ap.add_argument("--pending-timeout", type=float, default=600,
                    help="(c) give up after this many seconds (default 600)")
    ap.add_argument("--parts", default="abc", help="which parts to run (default abc)")
    ap.add_argument("--tmp", help="parent folder for the run folders (default: system temp)")
    a = ap.parse_args()

    build = build_dir(a.build)
    need = [build / "switchyard", build / "plugins" / "file.so"]
    if "c" in a.parts:
        need.append(build / "tests" / "plugins" / "flaky.so")
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        print(f"bench_spool: missing {', '.join(missing)}; run `make all` and `make e2e`",
              file=sys.stderr)
        return 1
    cmd = ["/usr/bin/python3", "bench/bench_spool.py", "--build", a.build, "--events",
           str(a.events), "--rounds", str(a.rounds), "--ack-events", str(a.ack_events),
           "--pending", str(a.pending), "--size", str(a.size)]
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
                rows = part_a(build, tmp, a.events, a.size, a.rounds)
                print(f"  {'round':>5} {'mode':<20} {'delivered':>9} {'total s':>8} "
                      f"{'events/s':>10} {'ratio':>6} {'peak RSS':>10}  notes")
                base, ratios = 0, {}
                for r in rows:
                    if r["label"] == "spool: null":
                        base = r["rate"]
                    ratio = r["rate"] / base if base else 0
                    ratios.setdefault(r["label"], []).append(ratio)
                    notes = []
                    if r["ok"] != a.events:
                        notes.append(f"only {r['ok']} delivered")
                    if r["lines"] != r["ok"]:
                        notes.append(f"{r['lines']} lines in the file")
                    if r["rc"] != 0 or r["pub_rc"] != 0:
                        notes.append(f"exit codes daemon {r['rc']} publish {r['pub_rc']}")
                    rss = f"{r['hwm'] / 1024:.1f} MiB" if r["hwm"] else "?"
                    print(f"  {r['round']:>5} {r['label']:<20} {r['ok']:>9} {r['total']:>8.2f} "
                          f"{r['rate']:>10,.0f} {ratio:>6.2f} {rss:>10}  "
                          f"{'; '.join(notes) or 'ok'}")
                for label in ("spool, sync full", "spool, sync normal"):
                    m = statistics.median(ratios.get(label, [0]))
                    goal = (f" (goal >= 0.7: {'meets' if m >= 0.7 else 'below'})"
                            if label.endswith("full") else "")
                    print(f"  {label}: median ratio {m:.2f}{goal}")
                print("  ratio = events/s with the spool / events/s with spool: null in the same "
                      "round (goal >= 0.7 for the default, sync full)")
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
                print(f"  ingress stood still for {r['longest_pause_s']:.1f}s at the longest "
                      "(events.received not growing, back-pressure); publisher exit "
                      f"{r['publish_exit']}"
                      + (f": {r['publish_err']}" if r["publish_err"] else ""))
            except Exception as e:
                print(f"  (c) failed: {e}")
            print(f"  (c) took {time.monotonic() - t:.1f}s")
    print(f"\ntotal {time.monotonic() - t_all:.1f}s; reproduce: "
          + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
