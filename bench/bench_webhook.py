#!/usr/bin/python3
"""
Webhook sink throughput and latency next to wrk, against the same local
receiver: nginx from Debian answering 204, started by the benchmark on its
own prefix and a free port.

  1. nginx (one worker) on a free loopback port, `return 204;`, an access
     log of "$msec $http_svix_id" (buffered) so each delivery's arrival time
     is known;
  2. rounds that alternate the peer and switchyard (wrk, switchyard, wrk,
     ...): wrk -t1 -c16 for a few seconds (POSTs of the same ~1 KiB body),
     then a burst of N distinct ~1 KiB events through the daemon (one
     webhook endpoint, HMAC-signed, endpoint concurrency = wrk's
     connections) pushed by a pyzmq PUSH loop: deliveries/s = N / (first
     send -> stats file says deliveries.ok reached the burst's end), and the
     round's ratio to wrk (goal >= 0.5), with the daemon's context switches
     and CPU per event;
  3. latency, publish -> 2xx at nginx, p50 and p99, for the bursts
     (queueing included) and for a paced run at half the highest burst rate
     (goal: p99 < 5 ms): the send time is taken just before each event goes
     to ZeroMQ, the 2xx time is nginx's $msec for the request carrying that
     event's svix-id.
  4. with --batch N (default 100; 0 turns it off): a second daemon whose
     endpoint has "batch": {"max": N, "linger": --linger}, each round a
     burst through it after the unbatched one: deliveries/s and POSTs/s
     (the sink's `requests` counter over the burst), beside the unbatched
     burst's and wrk's requests/s.
  5. with --against BUILD: a daemon of another build (the code before a
     change, say) beside this one, one burst each per round, in turns (A
     then B, then B then A): on a noisy machine two builds are only
     comparable side by side. The summary gives the median of the rounds'
     rate ratios (this build / BUILD) and both builds' CPU per event.

  6. with --pin: nginx's worker on the last CPU the bench may use, the
     daemons on the others (publisher and wrk unpinned). On a 2-CPU
     machine the daemon then has one CPU, so the rate falls; what it
     shows is the daemon's own context switches, without the receiver
     preempting its threads on a shared CPU.

Prints figures; asserts nothing. `make bench` runs every bench/bench_*.py.
"""

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (ProcSample, Switchyard, build_dir, free_port, load_figures, make_events,
                      median, read_stats, stop_process, version)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
GOAL_RATIO = 0.5
GOAL_P99_MS = 5.0


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

    def pin(self, cpus):
        """Puts nginx's processes (master and worker) on cpus."""
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        for pid in [self.proc.pid] + [int(k) for k in kids]:
            os.sched_setaffinity(pid, cpus)

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
        stop_process(self.proc, signal.SIGQUIT, timeout=10)  # graceful: flushes the log buffer


def pin_daemon(d, cpus):
    """Puts every thread of a started daemon on cpus (threads made later inherit it)."""
    if d:
        for tid in os.listdir(f"/proc/{d.proc.pid}/task"):
            os.sched_setaffinity(int(tid), cpus)


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


def push_timed(addr, events, rate=None):
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
        send(body)
    s.close()
    ctx.term()
    return sent


def latencies(sent, arrivals):
    """
    Milliseconds, as upper bounds: nginx truncates $msec to the millisecond,
    so the answer went out in [$msec, $msec + 1 ms).
    """
    return [(arrivals[i] - t) * 1000 + 1.0 for i, t in sent.items() if i in arrivals]


def events_with_ids(n, size, prefix):
    return [(f"{prefix}-{i:08d}", body) for i, body in enumerate(make_events(n, size, prefix))]


def burst(d, n, size, prefix, done_before):
    """One burst through the daemon; its figures and send times."""
    evs = events_with_ids(n, size, prefix)
    before = ProcSample(d.proc.pid)
    t0 = time.monotonic()
    sent = push_timed(d.addr, evs)
    publish_s = time.monotonic() - t0
    ok = d.wait_deliveries(done_before + n, max(120, n / 200)) - done_before
    total_s = time.monotonic() - t0
    res = {"ok": ok, "publish_s": publish_s, "total_s": total_s,
           "rate": ok / total_s if total_s > 0 else 0.0, "sent": sent}
    if d.proc.poll() is None:
        res.update(load_figures(before, ProcSample(d.proc.pid), n))
    return res


def batched_burst(d, n, size, prefix, done_before):
    """A burst through the batched daemon; burst()'s figures plus its POSTs and POSTs/s."""
    def requests():
        return ((read_stats(d.stats) or {}).get("sinks", {}).get("hooks", {})
                .get("requests", 0))
    before = requests()
    res = burst(d, n, size, prefix, done_before)
    res.pop("sent")
    time.sleep(0.1)  # the stats file is written every 20 ms
    res["posts"] = requests() - before
    res["posts_rate"] = res["posts"] / res["total_s"] if res["total_s"] > 0 else 0.0
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=30_000, help="events per burst (default 30000)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of wrk then a switchyard burst (default 3)")
    ap.add_argument("--size", type=int, default=1024, help="bytes per event (default 1024)")
    ap.add_argument("--connections", type=int, default=16,
                    help="wrk connections and the endpoint's concurrency (default 16)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--wrk-seconds", type=int, default=3, help="wrk duration (default 3)")
    ap.add_argument("--workers", type=int, default=4, help="core.workers (default 4)")
    ap.add_argument("--threads", type=int, default=0,
                    help="the webhook sink's HTTP threads (default: the plugin's default)")
    ap.add_argument("--rate", type=int, default=0,
                    help="paced run, events/s (default: half the highest burst rate)")
    ap.add_argument("--paced-s", type=float, default=3, help="paced run, seconds (default 3)")
    ap.add_argument("--batch", type=int, default=100,
                    help="batched run: the endpoint's batch max (default 100; 0: no batched run)")
    ap.add_argument("--linger", default="200ms", help="batched run: batch linger (default 200ms)")
    ap.add_argument("--against", default=None, metavar="BUILD",
                    help="another build folder, run beside this one in every round (A/B)")
    ap.add_argument("--pin", action="store_true",
                    help="nginx on the last CPU, the daemons on the others (see 6. above)")
    a = ap.parse_args()

    build = build_dir(a.build)
    other = build_dir(a.against) if a.against else None
    needs = [build / "switchyard", build / "plugins" / "webhook.so", Path(NGINX), Path(WRK)]
    if other:
        needs += [other / "switchyard", other / "plugins" / "webhook.so"]
    for need in needs:
        if not need.exists():
            print(f"bench_webhook: {need} missing (make all; make bench installs nginx-light "
                  "and wrk)", file=sys.stderr)
            return 1
    cmd = ["/usr/bin/python3", "bench/bench_webhook.py", "--build", a.build, "--events",
           str(a.events), "--rounds", str(a.rounds), "--connections", str(a.connections),
           "--wrk-threads", str(a.wrk_threads), "--wrk-seconds", str(a.wrk_seconds)]
    cmd += ["--threads", str(a.threads)] if a.threads else []
    cmd += ["--rate", str(a.rate)] if a.rate else []
    cmd += ["--batch", str(a.batch), "--linger", a.linger]
    cmd += ["--against", a.against] if a.against else []
    cmd += ["--pin"] if a.pin else []
    nginx_v = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    print(f"webhooks: PULL -> webhook sink (HMAC, 1 secret) -> nginx return 204, {a.size}-byte "
          f"events, {a.events} per burst, {a.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"  {version(build)}; {nginx_v}; endpoint concurrency {a.connections}, "
          f"core.workers {a.workers}, HTTP threads {a.threads or f'default ({max(1, len(os.sched_getaffinity(0)) // 2)})'}, no spool")
    if other:
        print(f"  against: {version(other)} ({a.against})")

    with tempfile.TemporaryDirectory(prefix="sy-bench-webhook-") as tmp:
        nginx = Nginx(tmp)
        d = db = dx = None
        rounds, sent_burst, batched, versus = [], {}, [], []
        try:
            body = Path(tmp) / "body.json"
            body.write_bytes(make_events(1, a.size, "wrk")[0])
            sink = {"plugin": "webhook", "allow_private_networks": True}
            if a.threads:
                sink["threads"] = a.threads
            d = Switchyard(build, Path(tmp) / "daemon", {"hooks": sink},
                           {"nginx": {"sink": "hooks", "url": nginx.url("/hook"),
                                      "secrets": [SECRET], "concurrency": a.connections}},
                           {"workers": a.workers, "spool": None,
                            "stats_interval": "20ms"}).start()
            if other:
                dx = Switchyard(other, Path(tmp) / "against", {"hooks": sink},
                                {"nginx": {"sink": "hooks", "url": nginx.url("/against"),
                                           "secrets": [SECRET], "concurrency": a.connections}},
                                {"workers": a.workers, "spool": None,
                                 "stats_interval": "20ms"}).start()
            if a.batch:
                db = Switchyard(build, Path(tmp) / "batched", {"hooks": sink},
                                {"nginx": {"sink": "hooks", "url": nginx.url("/batch"),
                                           "secrets": [SECRET], "concurrency": a.connections,
                                           "batch": {"max": a.batch, "linger": a.linger}}},
                                {"workers": a.workers, "spool": None,
                                 "stats_interval": "20ms"}).start()
            if a.pin:
                cpus = sorted(os.sched_getaffinity(0))
                if len(cpus) < 2:
                    raise RuntimeError("--pin needs at least 2 CPUs")
                nginx.pin({cpus[-1]})
                for x in (d, dx, db):
                    pin_daemon(x, set(cpus[:-1]))
                print(f"  pinned: nginx on CPU {cpus[-1]}, switchyard on CPU "
                      f"{','.join(map(str, cpus[:-1]))}")
            print()
            hdr = (f"{'round':>5}  {'run':<34} {'per s':>10} {'ratio':>6} {'taken s':>9} "
                   f"{'total s':>8} {'cs/event':>9} {'CPU us/ev':>9}  notes")
            print(hdr)
            print("-" * len(hdr))
            done = done_x = 0

            def against(rnd, wrk_rate):
                nonlocal done_x
                x = burst(dx, a.events, a.size, f"against{rnd}", done_x)
                done_x += x["ok"]
                x.pop("sent")
                note = "ok" if x["ok"] == a.events else f"only {x['ok']} delivered"
                print(f"{rnd:>5}  {'against: signed webhooks':<34} {x['rate']:>10,.0f} "
                      f"{x['rate'] / wrk_rate if wrk_rate else 0:>5.2f}x {x['publish_s']:>9.2f} "
                      f"{x['total_s']:>8.2f} {x.get('cs_per_event', 0):>9.3f} "
                      f"{x.get('cpu_us_per_event', 0):>9.1f}  {note}", flush=True)
                return x

            for rnd in range(1, a.rounds + 1):
                wrk_rate = run_wrk(nginx.url("/wrk"), a.wrk_seconds, a.wrk_threads,
                                   a.connections, body)
                print(f"{rnd:>5}  {f'wrk -t{a.wrk_threads} -c{a.connections} POST':<34} "
                      f"{wrk_rate:>10,.0f}", flush=True)
                x = against(rnd, wrk_rate) if dx and rnd % 2 == 0 else None
                b = burst(d, a.events, a.size, f"burst{rnd}", done)
                done += b["ok"]
                sent_burst.update(b.pop("sent"))
                ratio = b["rate"] / wrk_rate if wrk_rate else 0.0
                note = "ok" if b["ok"] == a.events else f"only {b['ok']} delivered"
                print(f"{rnd:>5}  {'switchyard signed webhooks':<34} {b['rate']:>10,.0f} "
                      f"{ratio:>5.2f}x {b['publish_s']:>9.2f} {b['total_s']:>8.2f} "
                      f"{b.get('cs_per_event', 0):>9.3f} {b.get('cpu_us_per_event', 0):>9.1f}  "
                      f"{note}", flush=True)
                rounds.append((wrk_rate, b, ratio))
                if dx and x is None:
                    x = against(rnd, wrk_rate)
                if x:
                    versus.append(x)
                if db:
                    bb = batched_burst(db, a.events, a.size, f"batch{rnd}",
                                       a.events * (rnd - 1))
                    print(f"{rnd:>5}  {f'switchyard batches of {a.batch}':<34} "
                          f"{bb['rate']:>10,.0f} {bb['rate'] / wrk_rate if wrk_rate else 0:>5.2f}x "
                          f"{bb['publish_s']:>9.2f} {bb['total_s']:>8.2f} "
                          f"{bb.get('cs_per_event', 0):>9.3f} {bb.get('cpu_us_per_event', 0):>9.1f}  "
                          f"{bb['posts_rate']:,.0f} POSTs/s, {bb['posts']} POSTs", flush=True)
                    batched.append(bb)

            if dx:  # gone before the paced run, which measures this build alone
                dx.stop()
                dx = None
            best = max(b["rate"] for _, b, _ in rounds)
            pace = a.rate or max(1, int(best / 2))
            paced_n = int(pace * a.paced_s)
            paced_sent = push_timed(d.addr, events_with_ids(paced_n, a.size, "paced"), rate=pace)
            paced_ok = d.wait_deliveries(done + paced_n, 60) - done
            s = read_stats(d.stats) or {}
            rc = d.stop()
            d = None
            if db:
                db.stop()
                db = None
            nginx.stop()  # flushes the access log
            arrivals = nginx.arrivals()
            lat_burst = latencies(sent_burst, arrivals)
            lat_paced = latencies(paced_sent, arrivals)

            print()
            print(f"summary (medians over {a.rounds} rounds; ratio = median of each round's "
                  f"switchyard / wrk); daemon exit code {rc}")
            ratio = median([r for _, _, r in rounds])
            print(f"  wrk requests/s            {median([w for w, _, _ in rounds]):>10,.0f}")
            print(f"  switchyard deliveries/s   {median([b['rate'] for _, b, _ in rounds]):>10,.0f}"
                  f"   ratio {ratio:.2f}x (goal >= {GOAL_RATIO}x: "
                  f"{'meets' if ratio >= GOAL_RATIO else 'below'})")
            cs = median([b["cs_per_event"] for _, b, _ in rounds if "cs_per_event" in b])
            cpu = median([b["cpu_us_per_event"] for _, b, _ in rounds if "cpu_us_per_event" in b])
            print(f"  context switches per event {cs:.3f} (goal < 0.05: "
                  f"{'meets' if cs < 0.05 else 'above'}), CPU {cpu:.1f} us per event")
            print(f"  latency publish -> 2xx, bursts (queueing included): "
                  f"p50 {percentile(lat_burst, 50):.0f} ms, p99 {percentile(lat_burst, 99):.0f} ms "
                  f"({len(lat_burst)} matched)")
            p99 = percentile(lat_paced, 99)
            print(f"  latency publish -> 2xx, paced {pace:,}/s for {a.paced_s:g} s "
                  f"({'--rate' if a.rate else 'half the highest burst rate'}): "
                  f"p50 <= {percentile(lat_paced, 50):.1f} ms, p99 <= {p99:.1f} ms "
                  f"(goal p99 < {GOAL_P99_MS:g} ms: {'meets' if p99 < GOAL_P99_MS else 'above'}; "
                  f"{len(lat_paced)} of {paced_n} matched, {paced_ok} ok)")
            if batched:
                print(f"  batched (max {a.batch}, linger {a.linger}) deliveries/s "
                      f"{median([b['rate'] for b in batched]):>10,.0f}, POSTs/s "
                      f"{median([b['posts_rate'] for b in batched]):>8,.0f} "
                      f"(unbatched: one POST per delivery), CPU "
                      f"{median([b['cpu_us_per_event'] for b in batched if 'cpu_us_per_event' in b]):.1f}"
                      f" us per event")
            if versus:
                per_round = [b["rate"] / x["rate"] for (_, b, _), x in zip(rounds, versus)
                             if x["rate"]]
                cpu_x = median([x["cpu_us_per_event"] for x in versus
                                if "cpu_us_per_event" in x])
                print(f"  against {a.against}: deliveries/s "
                      f"{median([x['rate'] for x in versus]):>10,.0f}, CPU {cpu_x:.1f} us per "
                      f"event; this build / against, median of the rounds' rates "
                      f"{median(per_round):.3f} (rounds: "
                      f"{', '.join(f'{r:.2f}' for r in per_round)})")
            hooks = s.get("sinks", {}).get("hooks", {})
            print(f"  sink counters: requests {hooks.get('requests')}, delivered "
                  f"{hooks.get('delivered')}, retried {hooks.get('retried')}, transport errors "
                  f"{hooks.get('transport_errors')}")
        except Exception as e:  # a figure we could not take is reported, not raised
            print(f"bench_webhook: run failed: {e}", file=sys.stderr)
            if d:
                print(d.log_tail(), file=sys.stderr)
        finally:
            if d:
                d.stop()
            if dx:
                dx.stop()
            if db:
                db.stop()
            nginx.stop()
    print()
    print("per s: wrk's requests/s, switchyard's deliveries/s = events / (first send -> "
          "deliveries.ok reached the burst's end in the stats file, polled every 5 ms, written "
          "every 20 ms)")
    print("taken s: until the daemon had taken every event of the burst off the publisher; "
          "cs/event, CPU us/ev: the daemon's context switches (all threads) and user + system "
          "time per event during the burst")
    print("latency: nginx's $msec when it logged the 204, + 1 ms ($msec is truncated to the "
          "millisecond, so these are upper bounds), minus the wall time just before the event "
          "went to ZeroMQ")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
