#!/usr/bin/python3
"""
One node on PostgreSQL against one node on SQLite: the same events, in the
same run, on the same machine.

  (a) PULL: N distinct ~1 KiB events (100,000 by default) into one file sink
      (fsync "never"); events/s = N / (first send -> deliveries.ok == N).
  (b) acknowledged: `switchyard publish --ack --file` of --ack-events
      (50,000); events/s = events answered ok / wall time of the CLI.

SQLite runs with spool_sync "full" (the default: fsync at every commit);
PostgreSQL (scripts/pgserver.py, a throwaway server on a free loopback
port) with fsync on and synchronous_commit on (its defaults), so both pay
for durability at every group commit. ratio = postgres / sqlite; the goal
is >= 0.5. CPU seconds are the daemon's and, for PostgreSQL, its server's
(every backend process), read from /proc: the figures a machine with
spare cores would see as the cost of one event.

Prints figures; asserts nothing. `make bench` runs it as
/usr/bin/python3 bench/bench_store.py --build build
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import bench_spool as bs  # its Daemon, event files and publisher (it has a main guard)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import pgserver  # noqa: E402

CLK_TCK = 100


def cpu_s(pid):
    """utime + stime of a process (all its threads), in seconds; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    f = stat[stat.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


def pg_cpu_s(server):
    """CPU seconds of the postmaster and every process it started (backends, writers)."""
    try:
        master = int((server.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = cpu_s(master)
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[1]) == master:
            total += (int(f[11]) + int(f[12])) / CLK_TCK
    return total


def stores(tmp, server):
    yield "sqlite (sync full)", lambda part: {
        "spool": str(Path(tmp) / f"{part}-sqlite" / "spool.db"), "spool_sync": "full"}
    yield "postgres (fsync on)", lambda part: {
        "spool": None, "store": {"type": "postgres",
                                 "conninfo": server.create_db(f"bench_{part}")}}


def run(build, tmp, server, part, events_file, n, ack):
    rows = []
    for label, core in stores(tmp, server):
        folder = Path(tmp) / f"{part}-{label.split()[0]}-run"
        out = folder / "out.jsonl"
        d = bs.Daemon(build, folder, {"files": {"plugin": "file", "path": str(out),
                                                "fsync": "never"}},
                      {"all": {"sink": "files", "enabled_events": ["*"]}}, core(part))
        try:
            cpu0, pg0 = cpu_s(d.proc.pid), pg_cpu_s(server)
            t0 = time.monotonic()
            if ack:
                took, r = bs.publish_file(build / "switchyard", d.ack, events_file, ack=True)
                ok, _ = d.wait("ok", n, timeout=max(120, n / 500))
            else:
                _, r = bs.publish_file(build / "switchyard", d.pull, events_file)
                ok, _ = d.wait("ok", n, timeout=max(120, n / 500))
                took = time.monotonic() - t0
            cpu, pg = cpu_s(d.proc.pid) - cpu0, pg_cpu_s(server) - pg0
        finally:
            rc = d.stop()
        if "sqlite" in label:
            pg = 0.0
        note = [] if ok == n and rc == 0 and r.returncode == 0 else \
            [f"ok={ok} exit={rc} publish exit={r.returncode}"]
        if ack:
            err = r.stderr.decode().strip().splitlines()
            note.append(err[-1] if err else "")
        rows.append({"label": label, "n": ok, "s": took, "rate": ok / took if took else 0,
                     "cpu": cpu, "pg": pg, "note": "; ".join(x for x in note if x)})
    return rows


def show(title, rows):
    print(f"\n{title}")
    print(f"  {'store':<22} {'events':>8} {'s':>7} {'events/s':>9} {'daemon CPU s':>13} "
          f"{'postgres CPU s':>15} {'events/CPU s':>13}")
    for r in rows:
        per_cpu = r["n"] / (r["cpu"] + r["pg"]) if r["cpu"] + r["pg"] else 0
        print(f"  {r['label']:<22} {r['n']:>8} {r['s']:>7.2f} {r['rate']:>9.0f} "
              f"{r['cpu']:>13.2f} {r['pg']:>15.2f} {per_cpu:>13.0f}  {r['note']}")
    sq, pg = rows[0]["rate"], rows[1]["rate"]
    print(f"  ratio postgres / sqlite: {pg / sq if sq else 0:.2f} (goal >= 0.5)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--build", default="build")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--ack-events", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--tmp", default=None, help="folder for spools and outputs")
    a = ap.parse_args()
    build = Path(a.build).resolve()
    tmp = tempfile.mkdtemp(prefix="sy-bench-store-", dir=a.tmp)
    print(f"bench_store: {a.events} events (PULL), {a.ack_events} (ack), ~{a.size} B each; "
          f"files on {bs.fs_type(tmp)} ({tmp})")
    server = pgserver.PgServer(fsync=True).start()
    print(f"postgres: {server.bin.parent.name} on 127.0.0.1:{server.port}, data on "
          f"{bs.fs_type(str(server.dir))}, fsync on, synchronous_commit on")
    try:
        t0 = time.monotonic()
        f = Path(tmp) / "a-events.jsonl"
        bs.write_events_file(f, a.events, a.size, "st")
        show("(a) PULL into a file sink", run(build, tmp, server, "a", f, a.events, False))
        f = Path(tmp) / "b-events.jsonl"
        bs.write_events_file(f, a.ack_events, a.size, "ack")
        show("(b) publish --ack", run(build, tmp, server, "b", f, a.ack_events, True))
        print(f"\nbench_store took {time.monotonic() - t0:.0f}s")
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
