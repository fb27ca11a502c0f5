"""
At-least-once across crashes: 20,000 events published with acknowledgements
while the daemon is killed with SIGKILL three times at random moments and
restarted on the same config and spool. Every event the daemon answered
"ok" or "dup" for must reach the receiver (a file sink) at least once;
duplicates are allowed and reported.

Two publishers:
  - test_kill9_while_publishing_pyzmq drives a DEALER itself, with the event
    id as the message tag, so it knows exactly which ids were acknowledged
    and resends anything unanswered after 1 s (a killed daemon never
    answers what it had not committed);
  - test_kill9_while_publishing_cli runs `switchyard publish --ack --timeout
    1000 --retries 60` and relies on its summary and exit code: exit 0 and
    "20000 stored+duplicates" mean every id was acknowledged.

The kill moments come from a seeded RNG (SY_CRASH_SEED to replay a run);
the seed, kill points and duplicate counts are printed (pytest -s).
"""

import os
import random
import subprocess
import threading
import time

from durability_helpers import (both_backends, AckClient, DONE, BIN, event, file_sink, get, sink_ids,
                                spool_daemon, wait_until)  # noqa: F401 (fixture)

STORE_BACKENDS = both_backends

N = 20_000
KILLS = 3


def seed():
    s = int(os.environ.get("SY_CRASH_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
    return s, random.Random(s)


def crash_daemon(spool_daemon, tmp_path):
    out = tmp_path / "received.jsonl"
    d = spool_daemon(sinks={"files": file_sink(out)},
                     endpoints={"all": {"sink": "files", "enabled_events": ["*"]}})
    d.received = out
    return d


def bodies(prefix):
    return [(f"{prefix}-{i:05d}", event(f"{prefix}-{i:05d}", data={"n": i})) for i in range(N)]


def check_all_delivered(d, acked, published_ids, label):
    """Waits until every acknowledged id is in the receiver's file; returns the duplicates."""
    acked = set(acked)

    def missing():
        return acked - set(sink_ids(d.received))

    wait_until(lambda: not missing(), timeout=90,
               what=f"every acknowledged event delivered ({label})",
               on_timeout=lambda: f"{len(missing())} acknowledged ids never delivered, e.g. "
                                  f"{sorted(missing())[:10]}\n{d._diag()}")
    got = sink_ids(d.received)
    assert set(got) <= set(published_ids), f"delivered ids never published: " \
        f"{sorted(set(got) - set(published_ids))[:10]}"
    # Nothing is left behind in the spool either: every delivery is done. The
    # database has a row once the hot log is folded, which lags behind the
    # sink (far behind under the sanitizers): wait for the fold to catch up.
    d.wait_stats(lambda s: get(s, "deliveries.spool_unfolded", 0) == 0,
                 "the spool's hot log folded", timeout=60)
    wait_until(lambda: d.spool.states("all") == {DONE: len(acked)}, timeout=60,
               what="every delivery done in the spool",
               on_timeout=lambda: f"{d.spool.states('all')}, stats {d.stats()}")
    assert d.spool.states("all") == {DONE: len(acked)}
    assert d.spool.count_events() == len(acked)
    dups = len(got) - len(set(got))
    return dups


def test_kill9_while_publishing_pyzmq(spool_daemon, tmp_path):
    s, rng = seed()
    d = crash_daemon(spool_daemon, tmp_path)
    items = bodies("crash")
    # Kill when the number of acknowledged events passes these marks, plus
    # a random few milliseconds so a kill can land anywhere in a batch.
    marks = sorted(rng.sample(range(N // 20, N - N // 10), KILLS))
    jitter = [rng.uniform(0, 0.03) for _ in range(KILLS)]
    pause = [rng.uniform(0, 0.3) for _ in range(KILLS)]  # down time before the restart
    print(f"\ncrash test (pyzmq): seed {s}, kill after ~{marks} acks "
          f"(+{[round(j * 1000) for j in jitter]} ms), down {[round(p * 1000) for p in pause]} ms")

    acked = {}
    result = {}
    lock = threading.Lock()

    def on_answer(eid, text):
        with lock:
            acked.setdefault(eid, text)

    def publisher():
        with AckClient(d.ack_addr) as c:
            result["answers"] = c.publish_all(items, window=500, resend_after=1.0,
                                              deadline=150, on_answer=on_answer)
            result["sends"] = c.sends

    t = threading.Thread(target=publisher)
    t0 = time.monotonic()
    t.start()
    kills = []
    for k in range(KILLS):
        # ... and only once the restarted daemon has acknowledged something.
        floor = kills[-1] + 100 if kills else 0
        wait_until(lambda: len(acked) >= max(marks[k], floor) or not t.is_alive(),
                   timeout=120, interval=0.001, what=f"{marks[k]} acknowledgements")
        time.sleep(jitter[k])
        with lock:
            n_acked = len(acked)
        d.kill9()
        kills.append(n_acked)
        time.sleep(pause[k])
        d.start()
    t.join(timeout=180)
    assert not t.is_alive(), "the publisher did not finish"
    answers = result["answers"]
    print(f"  killed at {kills} acknowledgements; {result['sends']} sends for {N} events; "
          f"published in {time.monotonic() - t0:.1f}s")
    assert len(kills) == KILLS and all(0 < k < N for k in kills), \
        f"a kill did not land while publishing: {kills}"

    # Every event got an answer, and every answer is ok or dup for that id.
    assert len(answers) == N, f"{N - len(answers)} events never answered"
    for eid, texts in answers.items():
        assert all(x in (f"ok {eid}", f"dup {eid}") for x in texts), (eid, texts)
    first_ok = sum(1 for texts in answers.values() if texts[0].startswith("ok "))
    dups = check_all_delivered(d, answers.keys(), [i for i, _ in items], "pyzmq")
    got = sink_ids(d.received)
    print(f"  {N} acknowledged ({first_ok} first answered ok, {N - first_ok} dup); "
          f"{len(got)} deliveries, {len(set(got))} distinct, {dups} duplicates "
          f"({100.0 * dups / N:.2f}%)")
    assert d.runs == KILLS + 1


def test_kill9_while_publishing_cli(spool_daemon, tmp_path):
    s, rng = seed()
    d = crash_daemon(spool_daemon, tmp_path)
    items = bodies("cli")
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join(b for _, b in items) + b"\n")
    # The CLI tells nothing while it runs, so kills are timed by what the
    # spool holds: the first once it has `first` events, each later one once
    # the restarted daemon has stored `steps[k]` more than at the kill before
    # (+ a random delay). Small marks: the poll sees the count late (it reads
    # the sink's file and the database) while the daemon stores thousands of
    # events a second, and every kill must land before the last is stored.
    first = rng.randrange(N // 40, N // 8)
    steps = [rng.randrange(200, 1200) for _ in range(KILLS - 1)]
    jitter = [rng.uniform(0, 0.03) for _ in range(KILLS)]
    print(f"\ncrash test (switchyard publish --ack): seed {s}, kill after ~{first} stored "
          f"events, then {steps} more each")

    p = subprocess.Popen([str(BIN), "publish", "--ack", "--connect", d.ack_addr, "--file", str(f),
                          "--timeout", "1000", "--retries", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kills = []

    def stored():
        # Delivered implies stored; with the SQLite hot log the database itself lags what
        # is stored (acknowledged from the log, folded behind), the sink's file does not.
        try:
            delivered = d.received.read_bytes().count(b"\n")
        except FileNotFoundError:
            delivered = 0
        try:
            return max(d.spool.count_events(), delivered)
        except Exception:  # the file is being created
            return delivered

    try:
        for k in range(KILLS):
            mark = kills[-1] + steps[k - 1] if kills else first
            wait_until(lambda: stored() >= mark or p.poll() is not None,
                       timeout=120, interval=0.002, what=f"{mark} events in the spool")
            time.sleep(jitter[k])
            if p.poll() is not None:
                break
            d.kill9()
            kills.append(stored())
            d.start()
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = err.decode()
    print(f"  killed with {kills} events stored; publish said: {err.strip()}")
    assert len(kills) == KILLS, f"the publisher finished before kill {len(kills) + 1}: {err}"
    assert p.returncode == 0, f"switchyard publish exited {p.returncode}: {err}"
    summary = [l for l in err.splitlines() if l.startswith("published ")]
    assert len(summary) == 1, err
    # "published N events to ADDR: X stored, Y duplicates, Z refused, W unanswered"
    words = summary[0].replace(",", "").split()
    assert words[1] == str(N), summary
    stored_n, dup_n, refused, unanswered = (int(words[i]) for i in (5, 7, 9, 11))
    assert (stored_n + dup_n, refused, unanswered) == (N, 0, 0), summary
    dups = check_all_delivered(d, [i for i, _ in items], [i for i, _ in items], "cli")
    got = sink_ids(d.received)
    print(f"  {len(got)} deliveries of {N} events, {dups} duplicates ({100.0 * dups / N:.2f}%)")
