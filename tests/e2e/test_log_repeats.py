"""
Repeated log lines are rate-limited by the log itself: per message (the
format of printf-style lines, a plugin's instance too) at most 10 records
in a 5 s window, then one summary "<first line left out> (repeated K
times)" with a field repeated=K, written when the next line of that kind
comes after the window, on the daemon's periodic wake-up, or at exit.

Two floods: malformed messages (one warning each), and a spool that can
no longer grow (RLIMIT_FSIZE, with SIGXFSZ ignored, the way a full disk
refuses writes), where every refused event used to write an error line.
"""

import re
import sys

from conftest import BIN, event
from test_ops_helpers import ack_all, ops_daemon  # noqa: F401 (fixture)

BURST = 10
SUMMARY = re.compile(r'^ts=\S+ level=(\w+) msg="(.*) \(repeated (\d+) times\)" repeated=(\d+)$')


def tally(log, msg):
    """(records of msg written, [K of each summary of msg]) in a logfmt log."""
    written, summaries = 0, []
    for line in log.splitlines():
        if f' msg="{msg}" ' in line or line.endswith(f' msg="{msg}"'):
            written += 1
        m = SUMMARY.match(line)
        if m and m.group(2) == msg:
            assert m.group(3) == m.group(4), line
            summaries.append(int(m.group(3)))
    return written, summaries


def test_rejected_messages_are_summed_up(ops_daemon):
    d = ops_daemon()
    n = 300
    d.push([b"not json %d" % i for i in range(n)])
    d.wait_stats(lambda s: s["events"]["rejected"] == n, f"{n} rejected messages")
    assert d.terminate() == 0
    log = d.run_log()
    written, summaries = tally(log, "event rejected")
    # Every rejection is either a record or counted in a summary; the first window writes 10.
    assert written + sum(summaries) == n, (written, summaries)
    assert BURST <= written < n and summaries, (written, summaries)
    first = [l for l in log.splitlines() if ' msg="event rejected" ' in l][:2]
    assert first[0].endswith(' msg="event rejected" reason=not_json detail="not JSON: parse '
                             'error near offset 0" size=10'), first
    assert re.search(r' level=warn msg="event rejected \(repeated \d+ times\)" repeated=\d+\n',
                     log), log[-2000:]
    # The summary comes before the exit's last line.
    assert log.splitlines()[-1].endswith("msg=stopped")


def test_spool_write_failures_are_summed_up(ops_daemon, tmp_path):
    # The spool's write-ahead log may not grow past 300 kB: after a few events
    # every transaction fails, as on a full disk. Nothing is routed, so only
    # events are written (no delivery outcomes to retry).
    wrapper = tmp_path / "limited-switchyard"
    wrapper.write_text(f"#!{sys.executable}\n"
                       "import os, resource, signal, sys\n"
                       "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                       "resource.setrlimit(resource.RLIMIT_FSIZE, (300000, 300000))\n"
                       f"os.execv({str(BIN)!r}, [{str(BIN)!r}] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    d = ops_daemon(endpoints={"none": {"sink": "files", "enabled_events": ["nothing.matches"]}},
                   binary=wrapper)
    n = 200
    pad = "x" * 20000
    # Over the ack socket: each event is answered once stored or refused.
    answers = ack_all(d.ack_addr, [(f"e{i}", event(f"e{i}", data={"pad": pad}))
                                   for i in range(n)], timeout=60.0)
    refused = [i for i, a in answers.items()
               if a == "error spool_failed: the event was not stored; send it again"]
    assert len(refused) + sum(a == f"ok {i}" for i, a in answers.items()) == n, answers
    failed = len(refused)
    assert failed > n // 2, answers
    d.wait_stats(lambda s: s["events"]["spool_errors"] == failed, "the spool errors counted")
    assert d.terminate() == 0
    log = d.run_log()
    written, summaries = tally(log, "event not stored: spool write failed")
    assert written + sum(summaries) == failed, (written, summaries, failed)
    assert BURST <= written < failed and summaries, (written, summaries)
    assert re.search(r' level=error msg="event not stored: spool write failed" event_id=e\d+\n',
                     log), log[-2000:]
    # The database's transaction, or (core.spool_log) the hot log's write, failed.
    assert re.search(r' level=error msg="(spool transaction failed|spool log write failed; '
                     r'publishers are told to send again)" spool=\S+ error="', log), log[-2000:]
