#!/usr/bin/python3
"""
Webhook sink throughput and latency against a local receiver: nginx from
Debian answering 204, started by the benchmark on its own prefix and port.

  1. nginx (one worker) on a free loopback port, `return 204;`, an access
     log of "$msec $http_svix_id" (buffered) so each delivery's arrival time
     is known;
  2. the daemon with one webhook endpoint pointing at nginx (HMAC-signed,
     per-endpoint concurrency = wrk's connections, the sink's default HTTP
     threads unless --threads), started once and idle between rounds;
  3. --rounds rounds, each: wrk -t1 -c16 (by default) against that nginx for
     a few seconds (POSTs of the same ~1 KiB body), the receiver's own
     request rate; then a burst of N distinct ~1 KiB events pushed as fast
     as a pyzmq PUSH loop can: deliveries/s = N / (first send -> stats file
     says deliveries.ok == all so far). Rounds interleave the two so that a
     busy neighbour on a shared machine weighs on both alike; the ratio of
     each round and their median are printed;
  4. the daemon's CPU time and context switches per delivery over the
     bursts (from /proc, all its threads): figures that a shared machine
     disturbs less than rates;
  5. latency, publish -> 2xx at nginx, p50 and p99, for the bursts
     (queueing included) and for a paced run (--rate events/s for --paced-s
     seconds): the send time is taken just before each event goes to
     ZeroMQ, the 2xx time is nginx's $msec for the request carrying that
     event's svix-id.

Prints figures; asserts nothing. `make bench` runs every bench/bench_*.py.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"


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
    pad = "x" * max(0, size - len(head % (prefix, 0, 0)) - len(tail))
    return [(f"{prefix}-{i:08d}", ((head % (prefix, i, i)) + pad + tail).encode())
            for i in range(n)]


def read_stats(path):
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Nginx:
    def __init__(self, tmp):
        self.dir = Path(tmp) / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.log = self.dir / "access.log"
        temp = "".join(f"    {k}_temp_path {self.dir}/{k};\n"
                       for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(f"""{user}worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
{temp}    log_format bench '$msec $http_svix_id';
    access_log {self.log} bench buffer=256k flush=200ms;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{self.port} reuseport;
        location / {{ return 204; }}
    }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-e", str(self.dir / "error.log"),
                                      "-c", str(self.dir / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: " + self.proc.stderr.read().decode())
                time.sleep(0.02)

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def arrivals(self):
        """{svix-id: arrival time} from the access log (after a flush)."""
        out = {}
        try:
            for line in self.log.read_text().splitlines():
                t, _, ident = line.partition(" ")
                if ident and ident != "-":
                    out[ident] = float(t)
        except FileNotFoundError:
            pass
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: flushes the log buffer
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_wrk(url, seconds, threads, conns, body_file):
    script = body_file.with_suffix(".lua")
    script.write_text('wrk.method = "POST"\n'
                      f'wrk.body = io.open("{body_file}", "rb"):read("*a")\n'
                      'wrk.headers["Content-Type"] = "application/json"\n')
    r = subprocess.run([WRK, f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "-s", str(script),
                        url], capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError(f"wrk output not understood: {r.stdout}{r.stderr}")
    return float(m.group(1))


class Daemon:
    def __init__(self, build, tmp, url, concurrency, workers, threads):
        self.dir = Path(tmp) / "daemon"
        self.dir.mkdir()
        # The stats file is the stopwatch (rewritten every 20 ms): on tmpfs when
        # there is one, since a disk file system's journal made its writes a
        # tenth of the daemon's CPU time in the profile.
        shm = Path("/dev/shm")
        self.shm = Path(tempfile.mkdtemp(prefix="sy-bench-webhook-", dir=shm)) \
            if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.stats = (self.shm or self.dir) / "stats.json"
        self.addr = f"tcp://127.0.0.1:{free_port()}"
        conf = self.dir / "conf.d"
        conf.mkdir()
        (conf / "10-core.json").write_text(json.dumps({"core": {
            "plugin_dir": str(build / "plugins"),
            "ingress": [{"type": "pull", "bind": self.addr}],
            "quarantine": str(self.dir / "quarantine.jsonl"),
            "stats_file": str(self.stats), "stats_interval": "20ms",
            "workers": workers, "log_level": "warn"}}))
        sink = {"plugin": "webhook", "allow_private_networks": True}
        if threads:
            sink["threads"] = threads
        (conf / "20-sinks.json").write_text(json.dumps({"sinks": {"hooks": sink}}))
        (conf / "30-endpoints.json").write_text(json.dumps({"endpoints": {"nginx": {
            "sink": "hooks", "url": url, "secrets": [SECRET], "concurrency": concurrency}}}))
        self.logf = open(self.dir / "daemon.log", "wb")
        self.proc = subprocess.Popen([str(build / "switchyard"), "run", "-c", str(conf)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.logf)
        deadline = time.monotonic() + 10
        while read_stats(self.stats) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daemon did not start:\n" +
                                   (self.dir / "daemon.log").read_text())
            time.sleep(0.01)

    def usage(self):
        """(CPU seconds, context switches) of the daemon so far, all threads."""
        tick = os.sysconf("SC_CLK_TCK")
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        switches = 0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                for line in (task / "status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            except FileNotFoundError:
                pass  # a thread that just ended
        return cpu, switches

    def ok(self):
        s = read_stats(self.stats)
        return s["deliveries"]["ok"] if s else 0

    def wait_ok(self, n, timeout):
        deadline = time.monotonic() + timeout
        while True:
            ok = self.ok()
            if ok >= n or time.monotonic() > deadline or self.proc.poll() is not None:
                return ok
            time.sleep(0.005)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        if self.shm:
            shutil.rmtree(self.shm, ignore_errors=True)
        return self.proc.returncode


def push(addr, events, rate=None):
    """Sends (id, body) pairs; returns {id: wall time just before the send}."""
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.LINGER, 600000)
    s.connect(addr)
    sent = {}
    now, send = time.time, s.send
    t0 = time.monotonic()
    for i, (ident, body) in enumerate(events):
        if rate:
            wait = t0 + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        sent[ident] = now()
        send(body, copy=False)
    s.close()
    ctx.term()
    return sent


def latencies(sent, arrivals):
    """
    Milliseconds, as upper bounds: nginx truncates $msec to the millisecond,
    so the answer went out in [$msec, $msec + 1 ms).
    """
    return [(arrivals[i] - t) * 1000 + 1.0 for i, t in sent.items() if i in arrivals]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=30_000,
                    help="burst size per round (default 30000)")
    ap.add_argument("--rounds", type=int, default=3, help="wrk + burst rounds (default 3)")
    ap.add_argument("--size", type=int, default=1024, help="bytes per event (default 1024)")
    ap.add_argument("--connections", type=int, default=16,
                    help="wrk connections and the endpoint's concurrency (default 16)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--wrk-seconds", type=int, default=4, help="wrk duration (default 4)")
    ap.add_argument("--workers", type=int, default=4, help="core.workers (default 4)")
    ap.add_argument("--threads", type=int, default=0,
                    help="the webhook sink's HTTP threads (default: the plugin's default)")
    ap.add_argument("--rate", type=int, default=1000, help="paced run, events/s (default 1000)")
    ap.add_argument("--paced-s", type=float, default=3, help="paced run, seconds (default 3)")
    a = ap.parse_args()

    build = Path(a.build)
    if not build.is_absolute():
        build = (Path.cwd() / build) if (Path.cwd() / build).exists() else ROOT / build
    for need in (build / "switchyard", build / "plugins" / "webhook.so", Path(NGINX), Path(WRK)):
        if not need.exists():
            print(f"bench_webhook: {need} missing (make all; make deps installs nginx-light "
                  "and wrk)", file=sys.stderr)
            return 1
    cmd = ["/usr/bin/python3", "bench/bench_webhook.py", "--build", a.build, "--events",
           str(a.events), "--rounds", str(a.rounds), "--connections", str(a.connections),
           "--wrk-threads", str(a.wrk_threads)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    version = subprocess.run([str(build / "switchyard"), "version"], capture_output=True,
                             text=True).stdout.strip()
    print(f"switchyard webhook throughput: PULL -> webhook sink (HMAC, 1 secret) -> nginx "
          f"return 204, {a.size}-byte events, {os.cpu_count()} CPUs")
    print(f"  {version}; {subprocess.run([NGINX, '-v'], capture_output=True, text=True).stderr.strip()}")

    with tempfile.TemporaryDirectory(prefix="sy-bench-webhook-") as tmp:
        nginx = Nginx(tmp)
        daemon = None
        try:
            body = Path(tmp) / "body.json"
            body.write_bytes(make_events(1, a.size, "wrk")[0][1])
            daemon = Daemon(build, tmp, nginx.url("/hook"), a.connections, a.workers, a.threads)
            print(f"  daemon: endpoint concurrency {a.connections}, {a.workers} workers, HTTP "
                  f"threads {a.threads or 'the default'}, spool off (in memory)")
            print()
            print(f"  round  wrk -t{a.wrk_threads} -c{a.connections} req/s  deliveries/s  ratio"
                  f"   ({a.events} events a burst; pushed in / delivered in)")
            sent, ratios, cpu, switches, delivered = {}, [], 0.0, 0, 0
            for r in range(a.rounds):
                wrk_rate = run_wrk(nginx.url("/wrk"), a.wrk_seconds, a.wrk_threads,
                                   a.connections, body)
                burst = make_events(a.events, a.size, f"burst{r}")
                cpu0, sw0 = daemon.usage()
                t0 = time.monotonic()
                sent.update(push(daemon.addr, burst))
                publish_s = time.monotonic() - t0
                ok = daemon.wait_ok(delivered + a.events, max(120, a.events / 200)) - delivered
                total_s = time.monotonic() - t0
                cpu1, sw1 = daemon.usage()
                cpu, switches, delivered = cpu + cpu1 - cpu0, switches + sw1 - sw0, delivered + ok
                rate = ok / total_s if total_s > 0 else 0
                ratios.append(rate / wrk_rate)
                print(f"  {r + 1:>5}  {wrk_rate:>18,.0f}  {rate:>12,.0f}  {rate / wrk_rate:>5.2f}"
                      f"   ({publish_s:.2f} s / {ok} in {total_s:.2f} s)")
            print(f"  median ratio {percentile(ratios, 50):.2f}   (goal: >= 0.5)")
            if delivered:
                print(f"  daemon over the bursts: {cpu / delivered * 1e6:.1f} us CPU and "
                      f"{switches / delivered:.3f} context switches per delivery")

            paced_n = int(a.rate * a.paced_s)
            paced = make_events(paced_n, a.size, "paced")
            paced_sent = push(daemon.addr, paced, rate=a.rate)
            paced_ok = daemon.wait_ok(delivered + paced_n, 60) - delivered
            s = read_stats(daemon.stats) or {}
            rc = daemon.stop()
            daemon = None
            nginx.stop()  # flushes the access log
            arrivals = nginx.arrivals()
            lat_burst = latencies(sent, arrivals)
            lat_paced = latencies(paced_sent, arrivals)
            print(f"  latency publish -> 2xx, bursts (queueing included): "
                  f"p50 {percentile(lat_burst, 50):.0f} ms, p99 {percentile(lat_burst, 99):.0f} ms "
                  f"({len(lat_burst)} matched)")
            print(f"  latency publish -> 2xx, paced {a.rate}/s for {a.paced_s:g} s: "
                  f"p50 <= {percentile(lat_paced, 50):.1f} ms, p99 <= {percentile(lat_paced, 99):.1f} ms "
                  f"({len(lat_paced)} of {paced_n} matched, {paced_ok} ok)")
            hooks = s.get("sinks", {}).get("hooks", {})
            print(f"  sink counters: requests {hooks.get('requests')}, delivered "
                  f"{hooks.get('delivered')}, retried {hooks.get('retried')}, transport errors "
                  f"{hooks.get('transport_errors')}; daemon exit code {rc}")
        except Exception as e:  # a figure we could not take is reported, not raised
            print(f"bench_webhook: run failed: {e}", file=sys.stderr)
        finally:
            if daemon:
                daemon.stop()
            nginx.stop()
    print()
    print("deliveries/s: events / (first send -> deliveries.ok == events so far in the stats "
          "file, polled every 5 ms, written every 20 ms)")
    print("latency: nginx's $msec when it logged the 204, + 1 ms ($msec is truncated to the "
          "millisecond, so these are upper bounds), minus the wall time just before the event "
          "went to ZeroMQ")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
