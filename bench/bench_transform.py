#!/usr/bin/python3
"""
What an endpoint's Lua transform costs per delivery: the same file-sink
endpoint with and without a 10-line script (docs/TRANSFORMS.md), on the
same events.

Every run is a fresh daemon on its own folder and free port (one PULL
ingress, one endpoint, no spool, one shard so the transform's thread is
the one that matters), fed the same N distinct ~512-byte events by the
same pyzmq PUSH loop; rounds alternate the two runs. The clock runs from
the first send until deliveries.ok reaches N. The cost per delivery is
the difference of the daemon's CPU time per event (user + system, all
threads) between the two runs of a round: the script, turning the event
into a Lua table, and the result back into JSON. Asserts nothing.
"""

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (ProcSample, Switchyard, build_dir, compare_runs, load_figures, make_events,
                      median, push, version)

SCRIPT = """\
function transform(e)
  local d = e.data
  local status = d.status == "succeeded" and "ok" or "failed"
  return {
    id = e.event_id,
    type = e.event_type,
    org = e.org_id,
    job = d.job_id,
    status = status,
  }
end
"""

MODES = ["without transform", "with a 10-line transform"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=100_000, help="events per run (default 100000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--size", type=int, default=512, help="bytes per event (default 512)")
    ap.add_argument("--tmp", help="parent of the run folders (default: the system's temp folder)")
    a = ap.parse_args()
    build = build_dir(a.build)
    if not (build / "switchyard").exists():
        print(f"bench_transform: {build}/switchyard missing; run `make all`", file=sys.stderr)
        return 1
    cmd = ["/usr/bin/python3", "bench/bench_transform.py", "--build", a.build, "--events",
           str(a.events), "--rounds", str(a.rounds), "--size", str(a.size)]
    print(f"transforms: PULL -> file sink, {a.size}-byte events, {a.events} per run, "
          f"{a.rounds} rounds; {version(build)}, core.shards 1, no spool")
    events = make_events(a.events, a.size, "tf")
    with tempfile.TemporaryDirectory(prefix="sy-bench-transform-", dir=a.tmp) as tmp:
        script = Path(tmp) / "ten.lua"
        script.write_text(SCRIPT)

        def run(rnd, mode):
            folder = Path(tmp) / f"r{rnd}-{MODES.index(mode)}"
            ep = {"sink": "s", "enabled_events": ["*"]}
            if mode == MODES[1]:
                ep["transform"] = str(script)
            d = Switchyard(build, folder, {"s": {"plugin": "file", "path": str(folder / "out"),
                                                 "fsync": "never"}},
                           {"all": ep}, {"spool": None, "shards": 1,
                                         "stats_interval": "100ms"}).start()
            try:
                before = ProcSample(d.proc.pid)
                t0 = time.monotonic()
                push(d.addr, events)
                got = d.wait_deliveries(a.events, timeout=600)
                res = {"total_s": time.monotonic() - t0, "complete": got >= a.events}
                if d.proc.poll() is None:
                    res.update(load_figures(before, ProcSample(d.proc.pid), a.events))
                if not res["complete"]:
                    res["notes"] = f"STALLED at {got}"
            finally:
                d.stop()
                shutil.rmtree(folder, ignore_errors=True)
            return res

        print()
        results = compare_runs(MODES, a.rounds, run, MODES[0], a.events)
    costs = [w["cpu_us_per_event"] - o["cpu_us_per_event"]
             for o, w in zip(results[MODES[0]], results[MODES[1]])
             if "cpu_us_per_event" in o and "cpu_us_per_event" in w]
    if costs:
        print(f"\ncost of the transform: {median(costs):.1f} us of CPU per delivery (median of "
              f"each round's difference: {', '.join(f'{c:.1f}' for c in costs)})")
    print("events/s: events / (first send -> deliveries.ok == events), stats polled every 5 ms "
          "(written every 100 ms)")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
