#!/usr/bin/python3
"""
Throughput of the whole pipeline next to rsyslog's: ZeroMQ PULL ingress ->
envelope check -> router -> dispatcher -> file sink -> disk, against
rsyslog 8 from Debian reading the same ZeroMQ PUSH stream (imczmq, PULL)
into a file (omfile, asyncWriting on, no fsync).

Both get the same N distinct ~1 KiB events from the same pyzmq PUSH loop,
in rounds that alternate the two (rsyslog, switchyard, rsyslog, ...), each
run on a fresh process, folder, output file and free port. A run's clock
starts at the first send and stops when its output file holds every event
(both write each event's bytes plus a newline, so the expected size is
known); the line count is checked afterwards. Modes compared:

  file    the file sink, fsync "never", no spool (goal: >= 1.5x rsyslog)
  spool   the same with core.spool on, spool_sync "full" (goal: >= 1.2x); also
          when the database itself held every delivery (the hot log is folded
          into it behind the deliveries)

For every run it also prints the process's context switches per event
(summed over /proc/PID/task/*/status, before the first send and after the
last line; goal for switchyard < 0.05) and its CPU time per event. A last
switchyard-only figure runs the file sink with fsync "always".

Prints figures and ratios; asserts nothing. `make bench` runs every
bench/bench_*.py.
"""

import argparse
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (ProcSample, Switchyard, build_dir, count_lines, free_port, fs_type,
                      load_figures, make_events, median, proc_status, push, read_stats,
                      stop_process, version, wait_output, wait_port)

RSYSLOGD = "/usr/sbin/rsyslogd"
# Debian's multiarch folder: /usr/lib/<triplet>/rsyslog/imczmq.so
IMCZMQ = next(iter(sorted(Path("/usr/lib").glob("*/rsyslog/imczmq.so"))), None)
GOALS = {"file": 1.5, "spool": 1.2}
MODES = {"file": "file sink, fsync never, no spool",
         "spool": "file sink, fsync never, spool on (sync full)"}


class Rsyslog:
    """rsyslogd -n on its own folder, config, pid file and port; output via omfile."""

    def __init__(self, folder, max_bytes):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.addr = f"tcp://127.0.0.1:{self.port}"
        self.out = self.dir / "out.log"
        self.conf = self.dir / "rsyslog.conf"
        # %rawmsg% is the frame as received; omfile writes it plus "\n", as the
        # file sink writes an event. The action sits in the default ruleset:
        # imczmq 8.2302 frees the ruleset object of an input with ruleset=
        # when it stops (a use-after-free: rsyslogd dies of SIGSEGV or SIGABRT
        # at every SIGTERM). rsyslogd -n logs nothing of its own there.
        # main_queue: room for every event of a run, so that a burst never
        # meets a full queue (imczmq's messages cannot be delayed: on a full
        # queue rsyslog waits, then discards).
        self.conf.write_text(f"""\
global(workDirectory="{self.dir}" maxMessageSize="{max(max_bytes, 8192)}")
main_queue(queue.size="{1_000_000}")
module(load="imczmq")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{self.out}" template="raw" asyncWriting="on")
input(type="imczmq" endpoints="@{self.addr}" socktype="PULL")
""")
        self.proc = None

    def start(self):
        self.log = open(self.dir / "rsyslogd.log", "wb")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.conf), "-i",
                                      str(self.dir / "rsyslogd.pid")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        try:
            wait_port(self.port, self.proc)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"rsyslogd did not start: {e}\n" +
                               (self.dir / "rsyslogd.log").read_text()[-1500:])
        return self

    def stop(self):
        rc = stop_process(self.proc, timeout=60)
        self.log.close()
        return rc


def timed(proc, addr, out, events, want_bytes):
    """Publishes, waits for the output; the figures of one run."""
    before = ProcSample(proc.pid)
    t0 = time.monotonic()
    send_s = push(addr, events)
    publish_s = time.monotonic() - t0
    size = wait_output(out, want_bytes, proc)
    total_s = time.monotonic() - t0
    res = {"send_s": send_s, "publish_s": publish_s, "total_s": total_s,
           "complete": size >= want_bytes, "t0": t0}
    if proc.poll() is None:
        res.update(load_figures(before, ProcSample(proc.pid), len(events)))
        res["hwm_kb"] = proc_status(proc.pid, "VmHWM")
    return res


def run_rsyslog(tmp, name, events, want_bytes):
    r = Rsyslog(Path(tmp) / name, max(map(len, events)) + 1024).start()
    try:
        res = timed(r.proc, r.addr, r.out, events, want_bytes)
    finally:
        rc = r.stop()
    res.update(who="rsyslog", exit=rc, lines=count_lines(r.out))
    shutil.rmtree(r.dir, ignore_errors=True)
    return res


def run_switchyard(build, tmp, name, events, want_bytes, mode, workers, fsync="never"):
    folder = Path(tmp) / name
    out = folder / "out" / "events.jsonl"
    core = {"workers": workers, "spool": None}
    if mode == "spool":
        core.update(spool=str(folder / "spool.db"), spool_sync="full")
    d = Switchyard(build, folder, {"files": {"plugin": "file", "path": str(out), "fsync": fsync}},
                   {"all": {"sink": "files", "enabled_events": ["*"]}}, core).start()
    try:
        res = timed(d.proc, d.addr, out, events, want_bytes)
        if mode == "spool" and res["complete"]:
            res["folded_s"] = wait_folded(folder / "spool.db", len(events), res["t0"])
    finally:
        rc = d.stop()
    s = read_stats(d.stats) or {}
    dl = s.get("deliveries", {})
    res.update(who="switchyard", exit=rc, lines=count_lines(out), ok=dl.get("ok"),
               batch=(dl["attempts"] / dl["plugin_calls"]) if dl.get("plugin_calls") else None)
    if rc != 0:
        res["log"] = d.log_tail()
    shutil.rmtree(folder, ignore_errors=True)
    return res


def wait_folded(db, n, t0, timeout=120):
    """Seconds from the first send until the spool's database (not only its hot log) holds
    every delivery as done, read by another process as an operator's tools would; None on
    timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                done = c.execute("SELECT count(*) FROM deliveries WHERE state = 1").fetchone()[0]
            finally:
                c.close()
        except sqlite3.Error:
            done = 0
        if done >= n:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def rate(r, n):
    return n / r["total_s"] if r.get("complete") and r["total_s"] > 0 else 0.0


def notes(r, n):
    out = []
    if not r.get("complete"):
        out.append(f"STALLED: {r['lines']} of {n} lines after {r['total_s']:.1f}s")
    elif r["lines"] != n:
        out.append(f"{r['lines']} lines in the file, not {n}")
    if r.get("ok") is not None and r["ok"] != n:
        out.append(f"deliveries.ok {r['ok']}")
    if r.get("exit"):
        out.append(f"exit code {r['exit']}")
    if r.get("threads_ended"):
        out.append(f"{r['threads_ended']} threads ended mid-run (their switches are missing)")
    if r["total_s"] < 1.1 * r["send_s"]:
        out.append("kept pace with the publisher")
    if r.get("batch"):
        out.append(f"{r['batch']:.0f} events per plugin call")
    if "folded_s" in r:
        out.append(f"database complete at {r['folded_s']:.2f}s" if r["folded_s"] is not None
                   else "database NOT complete 120 s after the run")
    return "; ".join(out) or "ok"


def row(rnd, label, r, n, ratio=None):
    cs = f"{r['cs_per_event']:.3f}" if "cs_per_event" in r else "?"
    cpu = f"{r['cpu_us_per_event']:.1f}" if "cpu_us_per_event" in r else "?"
    rss = f"{r['hwm_kb'] / 1024:.0f} MiB" if r.get("hwm_kb") else "?"
    rt = f"{ratio:.2f}x" if ratio is not None else ""
    print(f"{rnd:>5}  {label:<34} {rate(r, n):>10,.0f} {rt:>6} {r['send_s']:>6.2f} "
          f"{r['publish_s']:>7.2f} {r['total_s']:>7.2f} {cs:>9} {cpu:>9} {rss:>8}  "
          f"{notes(r, n)}", flush=True)


def peer_problem():
    if not Path(RSYSLOGD).exists():
        return f"{RSYSLOGD} is missing"
    if not IMCZMQ:
        return "imczmq.so is missing (package rsyslog-czmq)"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=100_000, help="events per run (default 100000)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; each runs rsyslog then switchyard, for each mode (default 3)")
    ap.add_argument("--modes", default="file,spool", help="file, spool or both (default both)")
    ap.add_argument("--always-events", type=int, default=5_000,
                    help="events for the switchyard-only fsync \"always\" run; 0 skips it "
                         "(default 5000)")
    ap.add_argument("--size", type=int, default=1024, help="bytes per event (default 1024)")
    ap.add_argument("--workers", type=int, default=4, help="core.workers (default 4)")
    ap.add_argument("--tmp", help="parent of the run folders (default: the system's temp folder)")
    a = ap.parse_args()

    build = build_dir(a.build)
    if not (build / "switchyard").exists() or not (build / "plugins" / "file.so").exists():
        print(f"bench_throughput: {build}/switchyard or plugins/file.so missing; run `make all`",
              file=sys.stderr)
        return 1
    modes = [m for m in a.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        ap.error("--modes: file, spool or file,spool")
    cmd = ["/usr/bin/python3", "bench/bench_throughput.py", "--build", a.build, "--events",
           str(a.events), "--rounds", str(a.rounds), "--modes", a.modes, "--always-events",
           str(a.always_events), "--size", str(a.size), "--workers", str(a.workers)]
    problem = peer_problem()
    rs_version = "" if problem else subprocess.run(
        [RSYSLOGD, "-v"], capture_output=True, text=True).stdout.split(" compiled")[0].split()
    rs_version = " ".join(rs_version)

    print(f"throughput: PULL -> file, {a.size}-byte events, {a.events} per run, {a.rounds} rounds, "
          f"{os.cpu_count()} CPUs")
    print(f"  {version(build)}, core.workers {a.workers}, stats_interval 1s")
    if problem:
        print(f"  rsyslog peer skipped: {problem}; `make bench` installs it "
              "(scripts/deps.sh bench)")
    else:
        print(f"  peer: {rs_version}: imczmq PULL -> omfile (asyncWriting on, no fsync, "
              "template %rawmsg%\\n), main queue 1,000,000")
    print("  publisher: one pyzmq PUSH loop in this process, the same events for every run")

    events = make_events(a.events, a.size, "bench")
    want = sum(len(e) + 1 for e in events)
    results = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="sy-bench-thr-", dir=a.tmp) as tmp:
        kind = fs_type(tmp)
        print(f"  run folders under {tmp} ({kind})")
        if kind in ("tmpfs", "ramfs"):
            print("  warning: tmpfs: spool_sync full and fsync cost nothing here; "
                  "--tmp DIR on a real disk")
        print()
        hdr = (f"{'round':>5}  {'run':<34} {'events/s':>10} {'ratio':>6} {'send s':>6} "
               f"{'taken s':>7} {'total s':>7} {'cs/event':>9} {'CPU us/ev':>9} {'peak RSS':>8}  "
               "notes")
        print(hdr)
        print("-" * len(hdr))
        for rnd in range(1, a.rounds + 1):
            for m in modes:
                try:
                    peer = None if problem else run_rsyslog(tmp, f"r{rnd}-{m}-rsyslog", events,
                                                            want)
                    if peer:
                        row(rnd, "rsyslog imczmq -> omfile", peer, a.events)
                    sy = run_switchyard(build, tmp, f"r{rnd}-{m}-sy", events, want, m, a.workers)
                    ratio = (rate(sy, a.events) / rate(peer, a.events)
                             if peer and rate(peer, a.events) else None)
                    row(rnd, f"switchyard {m}", sy, a.events, ratio)
                    if sy.get("log"):
                        print("       daemon log: " + sy["log"].replace("\n", "\n       "))
                    results[m].append((peer, sy, ratio))
                except Exception as e:  # a figure we could not take is reported, not raised
                    print(f"{rnd:>5}  {m}: run failed: {e}", flush=True)

        always = None
        if a.always_events > 0:
            ev = events[:a.always_events]
            try:
                always = run_switchyard(build, tmp, "always", ev, sum(len(e) + 1 for e in ev),
                                        "file", a.workers, fsync="always")
                row("-", "switchyard fsync always (no peer)", always, len(ev))
            except Exception as e:
                print(f"    -  fsync always: run failed: {e}", flush=True)

    print()
    print(f"summary (medians over {a.rounds} rounds; ratio = median of each round's "
          "switchyard / rsyslog)")
    for m in modes:
        runs = results[m]
        sy_rate = median([rate(s, a.events) for _, s, _ in runs])
        cs = median([s["cs_per_event"] for _, s, _ in runs if "cs_per_event" in s])
        cpu = median([s["cpu_us_per_event"] for _, s, _ in runs if "cpu_us_per_event" in s])
        line = f"  {MODES[m]:<44} switchyard {sy_rate:>9,.0f}/s"
        ratios = [r for _, _, r in runs if r is not None]
        if ratios:
            peer_rate = median([rate(p, a.events) for p, _, _ in runs])
            ratio = median(ratios)
            verdict = "meets" if ratio >= GOALS[m] else "below"
            line += (f"  rsyslog {peer_rate:>9,.0f}/s  ratio {ratio:.2f}x "
                     f"(goal >= {GOALS[m]}x: {verdict})")
        print(line)
        print(f"  {'':<44} switchyard context switches per event {cs:.3f} "
              f"(goal < 0.05: {'meets' if cs < 0.05 else 'above'}), CPU {cpu:.1f} us per event")
        if ratios:
            pcs = median([p["cs_per_event"] for p, _, _ in runs if p and "cs_per_event" in p])
            pcpu = median([p["cpu_us_per_event"] for p, _, _ in runs
                           if p and "cpu_us_per_event" in p])
            print(f"  {'':<44} rsyslog    context switches per event {pcs:.3f}, "
                  f"CPU {pcpu:.1f} us per event; CPU per event rsyslog / switchyard "
                  f"{pcpu / cpu if cpu else 0:.2f}x")
    print()
    print("events/s: events / (first send -> the output file holds every event), polled every "
          "2 ms; ratio: against the rsyslog run just before, in the same round")
    print("send s: the pyzmq loop's own time to hand every event to ZeroMQ (its send buffer "
          "holds the whole run, so it never waits); taken s: until the daemon had taken every "
          "event off the publisher (rsyslog queues a whole run at once; switchyard reads on "
          "while its backlog is under core.max_pending); total s within 10% of send s: the "
          "daemon kept pace with the publisher, which shares the 2 CPUs with it")
    print("cs/event: voluntary + involuntary context switches of the daemon's threads during "
          "the run, per event; CPU us/ev: its user + system time per event (the steadiest "
          "figure on a shared machine); peak RSS: VmHWM")
    print("spool: acknowledged once in the hot log (core.spool_log, synced as spool_sync says); "
          "'database complete at': from the first send until the SQLite file itself held "
          "every delivery as done (the fold runs behind; CPU figures stop at the last line, "
          "before the fold's tail)")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
