#!/usr/bin/python3
"""
What batches buy a sink that writes to a file: the SDK's two example
plugins, built here against sdk/include, on the same events, side by side.

  one at a time   sdk/example/example_sink.c: deliver(), one fprintf and
                  fflush (one write) per event, under the instance's mutex
  batches         sdk/example/example_batch_sink.c: deliver_batch(), up to
                  64 events per call, one writev per batch, linger 20 ms

Both append "event_id event_type attempt" per event to their file, so the
work per event is the same apart from the batching. A third run per round,
the daemon's own file sink (batches of up to 256, whole events, no linger),
is there for reference.

Every run is a fresh daemon on its own folder and free port (one PULL
ingress, one endpoint taking every event, no spool), fed the same N
distinct ~1 KiB events by the same pyzmq PUSH loop; rounds alternate the
runs. The clock runs from the first send until the output file holds every
line (the expected size is known); the line count is checked afterwards.
Prints figures and the ratio batches / one at a time; asserts nothing.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import (ROOT, ProcSample, Switchyard, build_dir, count_lines, load_figures,
                      make_events, median, push, read_stats, version, wait_output)

EXAMPLES = {"single": "example_sink", "batch": "example_batch_sink"}
LABELS = {"single": "example_sink (one at a time)", "batch": "example_batch_sink (64)",
          "file": "file sink (256, reference)"}


def build_example(build, name):
    """build/bench/NAME.so from sdk/example/NAME.c, against the tree's own headers."""
    src = ROOT / "sdk" / "example" / f"{name}.c"
    out = build / "bench" / f"{name}.so"
    headers = list((ROOT / "sdk" / "include" / "switchyard").glob("*.h"))
    newest = max(p.stat().st_mtime for p in [src, *headers])
    if out.exists() and out.stat().st_mtime > newest:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # The daemon refuses plugins in group- or world-writable places.
    os.chmod(out.parent, 0o755)
    cmd = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Werror",
           "-D_POSIX_C_SOURCE=200809L", "-O2", "-g", f"-I{ROOT / 'sdk' / 'include'}", "-fPIC",
           "-shared", "-fvisibility=hidden", "-pthread", "-o", str(out), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building {name} failed:\n{shlex.join(cmd)}\n{r.stderr}")
    os.chmod(out, 0o755)
    return out


def run(build, tmp, name, kind, events, ids, plugins, workers):
    folder = Path(tmp) / name
    out = folder / "out.log"
    if kind == "file":
        sink = {"plugin": "file", "path": str(out), "fsync": "never"}
        want = sum(len(e) + 1 for e in events)
    else:
        sink = {"plugin": str(plugins[kind]), "output": str(out)}
        want = sum(len(f"{i} job.completed 1\n") for i in ids)
    d = Switchyard(build, folder, {"s": sink}, {"all": {"sink": "s", "enabled_events": ["*"]}},
                   {"workers": workers, "spool": None}).start()
    try:
        before = ProcSample(d.proc.pid)
        t0 = time.monotonic()
        send_s = push(d.addr, events)
        publish_s = time.monotonic() - t0
        size = wait_output(out, want, d.proc)
        res = {"total_s": time.monotonic() - t0, "send_s": send_s, "publish_s": publish_s,
               "complete": size >= want}
        if d.proc.poll() is None:
            res.update(load_figures(before, ProcSample(d.proc.pid), len(events)))
    finally:
        rc = d.stop()
    s = read_stats(d.stats) or {}
    dl = s.get("deliveries", {})
    res.update(exit=rc, lines=count_lines(out), ok=dl.get("ok"),
               batch=(dl["attempts"] / dl["plugin_calls"]) if dl.get("plugin_calls") else None,
               log=d.log_tail() if rc else "")
    shutil.rmtree(folder, ignore_errors=True)
    return res


def rate(r, n):
    return n / r["total_s"] if r["complete"] and r["total_s"] > 0 else 0.0


def row(rnd, kind, r, n, ratio=None):
    notes = []
    if not r["complete"]:
        notes.append(f"STALLED: {r['lines']} of {n} lines after {r['total_s']:.1f}s")
    elif r["lines"] != n:
        notes.append(f"{r['lines']} lines, not {n}")
    if r["ok"] != n:
        notes.append(f"deliveries.ok {r['ok']}")
    if r["exit"]:
        notes.append(f"exit code {r['exit']}")
    cs = f"{r['cs_per_event']:.3f}" if "cs_per_event" in r else "?"
    cpu = f"{r['cpu_us_per_event']:.1f}" if "cpu_us_per_event" in r else "?"
    batch = f"{r['batch']:.1f}" if r["batch"] else "?"
    rt = f"{ratio:.2f}x" if ratio is not None else ""
    print(f"{rnd:>5}  {LABELS[kind]:<30} {rate(r, n):>10,.0f} {rt:>6} {batch:>7} "
          f"{r['send_s']:>6.2f} {r['publish_s']:>7.2f} {r['total_s']:>7.2f} {cs:>9} {cpu:>9}  "
          f"{'; '.join(notes) or 'ok'}", flush=True)
    if r["log"]:
        print("       daemon log: " + r["log"].replace("\n", "\n       "))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build folder (default: build)")
    ap.add_argument("--events", type=int, default=100_000, help="events per run (default 100000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--size", type=int, default=1024, help="bytes per event (default 1024)")
    ap.add_argument("--workers", type=int, default=4, help="core.workers (default 4)")
    ap.add_argument("--no-file-sink", action="store_true",
                    help="leave out the reference run of the file sink")
    ap.add_argument("--tmp", help="parent of the run folders (default: the system's temp folder)")
    a = ap.parse_args()

    build = build_dir(a.build)
    if not (build / "switchyard").exists():
        print(f"bench_batch: {build}/switchyard missing; run `make all`", file=sys.stderr)
        return 1
    plugins = {k: build_example(build, v) for k, v in EXAMPLES.items()}
    kinds = ["single", "batch"] + ([] if a.no_file_sink else ["file"])
    cmd = ["/usr/bin/python3", "bench/bench_batch.py", "--build", a.build, "--events",
           str(a.events), "--rounds", str(a.rounds), "--size", str(a.size), "--workers",
           str(a.workers)] + (["--no-file-sink"] if a.no_file_sink else [])
    print(f"batches: PULL -> example sinks, {a.size}-byte events, {a.events} per run, "
          f"{a.rounds} rounds, {os.cpu_count()} CPUs")
    print(f"  {version(build)}, core.workers {a.workers}, endpoint concurrency 4 (the default), "
          "no spool")
    print(f"  plugins built from sdk/example into {plugins['single'].parent}")

    prefix = "batch"
    events = make_events(a.events, a.size, prefix)
    ids = [f"{prefix}-{i:08d}" for i in range(a.events)]
    results = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="sy-bench-batch-", dir=a.tmp) as tmp:
        print()
        hdr = (f"{'round':>5}  {'run':<30} {'events/s':>10} {'ratio':>6} {'ev/call':>7} "
               f"{'send s':>6} {'taken s':>7} {'total s':>7} {'cs/event':>9} {'CPU us/ev':>9}  "
               "notes")
        print(hdr)
        print("-" * len(hdr))
        for rnd in range(1, a.rounds + 1):
            single = None
            for k in kinds:
                try:
                    r = run(build, tmp, f"r{rnd}-{k}", k, events, ids, plugins, a.workers)
                except Exception as e:  # a figure we could not take is reported, not raised
                    print(f"{rnd:>5}  {LABELS[k]}: run failed: {e}", flush=True)
                    continue
                if k == "single":
                    single = r
                ratio = (rate(r, a.events) / rate(single, a.events)
                         if k != "single" and single and rate(single, a.events) else None)
                row(rnd, k, r, a.events, ratio)
                results[k].append((r, ratio))

    print()
    print(f"summary (medians over {a.rounds} rounds; ratio = median of each round's run / "
          "one at a time in the same round)")
    for k in kinds:
        runs = results[k]
        line = f"  {LABELS[k]:<30} {median([rate(r, a.events) for r, _ in runs]):>10,.0f}/s"
        ratios = [x for _, x in runs if x is not None]
        if ratios:
            line += f"  ratio {median(ratios):.2f}x"
        cs = [r["cs_per_event"] for r, _ in runs if "cs_per_event" in r]
        cpu = [r["cpu_us_per_event"] for r, _ in runs if "cpu_us_per_event" in r]
        line += f"  context switches/event {median(cs):.3f}  CPU {median(cpu):.1f} us/event"
        print(line)
    print()
    print("events/s: events / (first send -> the output file holds every line), polled every "
          "2 ms; ev/call: deliveries.attempts / deliveries.plugin_calls")
    print("send s: the pyzmq loop's own time; taken s: until the daemon had taken every event "
          "off the publisher")
    print("cs/event, CPU us/ev: the daemon's context switches (all threads) and user + system "
          "time per event during the run")
    print("reproduce: " + " ".join(shlex.quote(c) for c in cmd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
