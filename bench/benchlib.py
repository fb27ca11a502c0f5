"""
Helpers shared by the benchmarks (bench/bench_*.py): events, the
publisher, a throwaway Switchyard, and readings of a process in /proc.

Not a benchmark itself (make bench runs bench/bench_*.py only).
"""

import json
import os
import signal
import socket
import statistics
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def build_dir(arg):
    """The --build folder as an absolute path (relative to the cwd, else to the tree)."""
    build = Path(arg)
    if build.is_absolute():
        return build
    return (Path.cwd() / build) if (Path.cwd() / build).exists() else ROOT / build


def make_events(n, size, prefix, start=0):
    """n distinct compact envelopes of about `size` bytes each, numbered from start."""
    head = ('{"event_id":"%s-%08d","event_type":"job.completed",'
            '"occurred_at":"2026-11-25T19:09:02Z","version":"1","org_id":"acme",'
            '"org_slug":"acme","data":{"job_id":"j%d","status":"succeeded","pad":"')
    tail = '"}}'
    pad = "x" * max(0, size - len(head % (prefix, 0, 0)) - len(tail))
    return [((head % (prefix, i, i)) + pad + tail).encode() for i in range(start, start + n)]


def push(addr, events, hwm=None):
    """
    Sends every event over one pyzmq PUSH socket, as fast as the loop goes,
    and returns once all of them left the process (the receiver took them).
    hwm defaults to the number of events, so the loop never waits for the
    receiver. Returns the seconds the send loop took: the publisher's own
    pace. copy=True: for 1 KiB messages it is the faster send.
    """
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, len(events) if hwm is None else hwm)
    s.setsockopt(zmq.LINGER, 600000)
    s.connect(addr)
    send = s.send
    t0 = time.monotonic()
    for e in events:
        send(e)
    loop_s = time.monotonic() - t0
    s.close()
    ctx.term()
    return loop_s


def file_size(path):
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def wait_output(path, want, proc, stall_s=10):
    """
    Polls path every 2 ms until it holds want bytes; gives up when the
    process exits or the file stops growing for stall_s. Returns its size.
    """
    last, since = -1, time.monotonic()
    while True:
        size = file_size(path)
        if size >= want or proc.poll() is not None:
            return size
        now = time.monotonic()
        if size != last:
            last, since = size, now
        elif now - since > stall_s:
            return size
        time.sleep(0.002)


def wait_port(port, proc, timeout=20):
    """Waits until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} (exit {proc.poll()})")
            time.sleep(0.02)


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


class ProcSample:
    """
    Context switches per thread and CPU time of a process, at one instant.

    /proc/PID/status counts the main thread only, so the switches are summed
    over /proc/PID/task/*/status, keyed by thread id: a thread that ends
    between two samples takes its switches with it, and delta() says so.
    CPU time comes from /proc/PID/stat, which covers every thread, ended
    ones included.
    """

    def __init__(self, pid):
        self.switches = {}
        for task in Path(f"/proc/{pid}/task").iterdir():
            vol = nonvol = 0
            try:
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        nonvol = int(line.split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            self.switches[task.name] = (vol, nonvol)
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        self.cpu_s = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def delta(self, before):
        """(voluntary, nonvoluntary, CPU seconds, threads that ended) since before."""
        vol = nonvol = 0
        for tid, (v, n) in self.switches.items():
            v0, n0 = before.switches.get(tid, (0, 0))
            vol += v - v0
            nonvol += n - n0
        ended = len(set(before.switches) - set(self.switches))
        return vol, nonvol, self.cpu_s - before.cpu_s, ended


def load_figures(before, after, events):
    """What a process cost per event between two ProcSamples."""
    vol, nonvol, cpu, ended = after.delta(before)
    return {"cs_per_event": (vol + nonvol) / events, "vol": vol, "nonvol": nonvol,
            "cpu_us_per_event": cpu * 1e6 / events, "threads_ended": ended}


def stop_process(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Switchyard:
    """
    A daemon on its own folder: one PULL ingress on a free port (addr), with
    ack=True an ack ingress too (self.ack), the given core keys, sinks and
    endpoints, and a stats file. start() returns once the stats file exists:
    the daemon writes it right after it is ready.
    """

    def __init__(self, build, folder, sinks, endpoints, core=None, ack=False):
        self.build = build
        self.dir = Path(folder)
        self.dir.mkdir(parents=True)
        # The stats file is the benches' stopwatch, rewritten every few ms: on
        # tmpfs when there is one, since on a journalling file system its
        # writes were a tenth of the daemon's CPU time in a profile.
        shm = Path("/dev/shm")
        self.shm = (Path(tempfile.mkdtemp(prefix="sy-bench-stats-", dir=shm))
                    if shm.is_dir() and os.access(shm, os.W_OK) else None)
        self.stats = (self.shm or self.dir) / "stats.json"
        self.port = free_port()
        self.addr = f"tcp://127.0.0.1:{self.port}"
        ingress = [{"type": "pull", "bind": self.addr}]
        if ack:
            self.ack = f"tcp://127.0.0.1:{free_port()}"
            ingress.append({"type": "ack", "bind": self.ack})
        self.conf = self.dir / "conf.d"
        self.conf.mkdir()
        c = {"plugin_dir": str(build / "plugins"), "ingress": ingress,
             "quarantine": str(self.dir / "quarantine.jsonl"),
             "stats_file": str(self.stats), "stats_interval": "1s",
             "workers": 4, "log_level": "warn"}
        c.update(core or {})
        (self.conf / "10-core.json").write_text(json.dumps({"core": c}))
        (self.conf / "20-sinks.json").write_text(json.dumps({"sinks": sinks}))
        (self.conf / "30-endpoints.json").write_text(json.dumps({"endpoints": endpoints}))
        self.proc = None

    def start(self, timeout=20):
        self.log = open(self.dir / "daemon.log", "wb")
        self.proc = subprocess.Popen([str(self.build / "switchyard"), "run", "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        deadline = time.monotonic() + timeout
        while read_stats(self.stats) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("switchyard did not start:\n" +
                                   (self.dir / "daemon.log").read_text()[-2000:])
            time.sleep(0.01)
        return self

    def deliveries(self, key="ok"):
        s = read_stats(self.stats)
        return s["deliveries"][key] if s else 0

    def wait_deliveries(self, n, timeout, key="ok"):
        """Polls the stats file every 5 ms until deliveries[key] >= n; returns the value."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.deliveries(key)
            if v >= n or time.monotonic() > deadline or self.proc.poll() is not None:
                return v
            time.sleep(0.005)

    def stop(self, timeout=120):
        rc = stop_process(self.proc, timeout=timeout) if self.proc else None
        self.log.close()
        if self.shm:
            # The final figures stay readable: the benches read them after stop().
            if self.stats.exists():
                shutil.copy(self.stats, self.dir / "stats.json")
            self.stats = self.dir / "stats.json"
            shutil.rmtree(self.shm, ignore_errors=True)
            self.shm = None
        return rc

    def log_tail(self, n=1500):
        try:
            return (self.dir / "daemon.log").read_text()[-n:]
        except FileNotFoundError:
            return ""


def version(build):
    return subprocess.run([str(build / "switchyard"), "version"], capture_output=True,
                          text=True).stdout.strip()


def median(values):
    return statistics.median(values) if values else 0.0


def compare_runs(modes, rounds, run, baseline, n):
    """
    Runs run(round, mode) for every mode, rounds times, alternating modes
    within each round, and prints one row per run and medians. run returns
    a dict with total_s, complete and optionally cpu_us_per_event,
    cs_per_event and notes. The ratio of a run is its rate over the
    baseline mode's rate in the same round. Returns {mode: [result, ...]}.
    """
    results = {m: [] for m in modes}
    hdr = (f"{'round':>5}  {'run':<28} {'events/s':>10} {'ratio':>6} {'total s':>7} "
           f"{'cs/event':>9} {'CPU us/ev':>9}  notes")
    print(hdr)
    print("-" * len(hdr))

    def rate(r):
        return n / r["total_s"] if r.get("complete") and r["total_s"] > 0 else 0.0

    for rnd in range(1, rounds + 1):
        base = None
        for m in modes:
            try:
                r = run(rnd, m)
            except Exception as e:  # a figure we could not take is reported, not raised
                print(f"{rnd:>5}  {m}: run failed: {e}", flush=True)
                continue
            if m == baseline:
                base = r
            r["ratio"] = rate(r) / rate(base) if base and rate(base) else None
            results[m].append(r)
            cs = f"{r['cs_per_event']:.3f}" if "cs_per_event" in r else "?"
            cpu = f"{r['cpu_us_per_event']:.1f}" if "cpu_us_per_event" in r else "?"
            ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else ""
            print(f"{rnd:>5}  {m:<28} {rate(r):>10,.0f} {ratio:>6} {r['total_s']:>7.2f} {cs:>9} "
                  f"{cpu:>9}  {r.get('notes') or 'ok'}", flush=True)
    print()
    print(f"summary (medians over {rounds} rounds; ratio = each round's run / {baseline} in "
          "the same round)")
    for m in modes:
        runs = results[m]
        if not runs:
            continue
        line = f"  {m:<28} {median([rate(r) for r in runs]):>10,.0f}/s"
        ratios = [r["ratio"] for r in runs if r["ratio"] is not None]
        if ratios:
            line += f"  ratio {median(ratios):.2f}x"
        cpu = [r["cpu_us_per_event"] for r in runs if "cpu_us_per_event" in r]
        if cpu:
            line += f"  CPU {median(cpu):.1f} us/event"
        print(line)
    return results
