#!/usr/bin/python3
"""
Nodes sharing one PostgreSQL: 1, 2 and 3 nodes on the same events, in one run.

Each run gets a fresh database on one throwaway server (scripts/pgserver.py,
fsync on, synchronous_commit on) and N nodes (core.store postgres,
core.cluster with a 3 s lease), each with a PULL ingress and a file sink
(fsync "never") behind 32 endpoints; the endpoints' partitions are shared
fairly before the events go. The events (~1 KiB, 60,000 by default, each
for one endpoint: data.k = i % 32) are split into one file per node and
published to every node at once with `switchyard publish` (PUSH), so each
node stores a share; a delivery whose endpoint another node owns is stored
unleased and that node loads it (woken by NOTIFY).

  events/s      N / (first send -> the nodes' deliveries.ok add up to N)
  CPU s         the nodes' CPU time, and the server's (every backend)
  events/CPU s  N / (nodes' + server's CPU seconds): on a machine where the
                nodes and the database fight for 2 CPUs, this is the figure
                that shows whether anything serialises on a cluster-wide
                lock (it would fall as nodes are added) or not

Prints figures; asserts nothing. `make bench` runs it as
/usr/bin/python3 bench/bench_cluster.py --build build
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_store import cpu_s, pg_cpu_s
from benchlib import Switchyard, fs_type

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import pgserver  # noqa: E402

ENDPOINTS = 32
PARTS = 256


def write_events(path, start, stop, size):
    head = ('{"event_id":"cl-%08d","event_type":"job.completed",'
            '"occurred_at":"2026-11-25T19:09:02Z","version":"1","org_id":"acme",'
            '"org_slug":"acme","data":{"k":%d,"pad":"')
    tail = '"}}'
    pad = "x" * max(0, size - len(head % (0, 0)) - len(tail))
    with open(path, "w") as f:
        for i in range(start, stop):
            f.write(head % (i, i % ENDPOINTS) + pad + tail + "\n")


def shares(n):
    return sorted([PARTS // n + (1 if r < PARTS % n else 0) for r in range(n)], reverse=True)


def run(build, tmp, server, nodes, total, size):
    db = f"cluster_{nodes}"
    conninfo = server.create_db(db)
    sinks = lambda name: {"files": {"plugin": "file", "path": str(Path(tmp) / f"{db}-{name}.jsonl"),  # noqa: E731
                                    "fsync": "never"}}
    endpoints = {f"ep{j:02d}": {"sink": "files", "enabled_events": ["*"], "filter": {"data.k": j}}
                 for j in range(ENDPOINTS)}
    ds = []
    try:
        for i in range(nodes):
            name = f"n{i + 1}"
            core = {"spool": None, "stats_interval": "20ms",
                    "store": {"type": "postgres", "conninfo": conninfo},
                    "cluster": {"node_id": name, "lease_timeout": "3s"}}
            ds.append(Switchyard(build, Path(tmp) / f"{db}-{name}", sinks(name), endpoints,
                                 core).start())
        want, deadline = shares(nodes), time.monotonic() + 60
        while True:
            got = sorted((r["n"] for r in server.query(
                db, "SELECT count(*) AS n FROM partitions WHERE owner IS NOT NULL "
                    "AND expires_at > now() GROUP BY owner")), reverse=True)
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        files = []
        per = (total + nodes - 1) // nodes
        for i in range(nodes):
            f = Path(tmp) / f"{db}-part{i}.jsonl"
            write_events(f, i * per, min(total, (i + 1) * per), size)
            files.append(f)
        cpu0 = [cpu_s(d.proc.pid) for d in ds]
        pg0 = pg_cpu_s(server)
        t0 = time.monotonic()
        pubs = [subprocess.Popen([str(build / "switchyard"), "publish", "--connect", d.addr,
                                  "--file", str(f), "--quiet", "--timeout", "900000"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for d, f in zip(ds, files)]
        ok, end = 0, time.monotonic() + max(180, total / 200)
        while ok < total and time.monotonic() < end and all(d.proc.poll() is None for d in ds):
            ok = sum(d.deliveries() for d in ds)
            time.sleep(0.005)
        took = time.monotonic() - t0
        cpu = sum(cpu_s(d.proc.pid) - c for d, c in zip(ds, cpu0))
        pg = pg_cpu_s(server) - pg0
        for p in pubs:
            p.wait(timeout=60)
        per_node = [d.deliveries() for d in ds]
        note = "" if ok == total and got == want else f"ok={ok} shares={got}"
    finally:
        for d in ds:
            d.stop()
    return {"nodes": nodes, "n": ok, "s": took, "rate": ok / took if took else 0, "cpu": cpu,
            "pg": pg, "per_node": per_node, "note": note}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--build", default="build")
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--nodes", default="1,2,3", help="node counts to run, in order")
    ap.add_argument("--tmp", default=None, help="folder for outputs")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    tmp = tempfile.mkdtemp(prefix="sy-bench-cluster-", dir=a.tmp)
    server = pgserver.PgServer(fsync=True).start()
    print(f"bench_cluster: {a.events} events (~{a.size} B) to {ENDPOINTS} endpoints, PUSH to "
          f"every node; files on {fs_type(tmp)}; postgres {server.bin.parent.name} on "
          f"127.0.0.1:{server.port}, fsync on, synchronous_commit on")
    rows = []
    try:
        for n in (int(x) for x in a.nodes.split(",")):
            rows.append(run(build, tmp, server, n, a.events, a.size))
    finally:
        server.destroy()
    print(f"  {'nodes':>5} {'events':>8} {'s':>7} {'events/s':>9} {'nodes CPU s':>12} "
          f"{'postgres CPU s':>15} {'events/CPU s':>13}  delivered per node")
    for r in rows:
        per_cpu = r["n"] / (r["cpu"] + r["pg"]) if r["cpu"] + r["pg"] else 0
        print(f"  {r['nodes']:>5} {r['n']:>8} {r['s']:>7.2f} {r['rate']:>9.0f} {r['cpu']:>12.2f} "
              f"{r['pg']:>15.2f} {per_cpu:>13.0f}  {r['per_node']} {r['note']}")
    base = rows[0]["rate"] if rows else 0
    for r in rows[1:]:
        print(f"  {r['nodes']} nodes / {rows[0]['nodes']}: {r['rate'] / base if base else 0:.2f}x "
              f"events/s")
    print(f"reproduce: /usr/bin/python3 bench/bench_cluster.py --build {a.build} "
          f"--events {a.events} --size {a.size} --nodes {a.nodes}")


if __name__ == "__main__":
    main()
