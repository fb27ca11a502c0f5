"""
Logs on stderr: logfmt by default, one JSON object per line with
--log-format json (or core.log_format), levels with --log-level (or
core.log_level). Every line of a whole run is parsed, from start to stop.
"""

import json
import re
import signal

from conftest import cli
from test_ops_helpers import (ack_all, event, file_sink, flaky_sink,
                              ops_daemon, wait_until)  # noqa: F401 (fixture)

LEVELS = {"error", "warn", "info", "debug"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|[^\s"=\\]+)(?: |$)')


def logfmt(line):
    """A logfmt line as a dict (quoted values unescaped); fails on anything else."""
    out, pos = {}, 0
    while pos < len(line):
        m = _PAIR.match(line, pos)
        assert m, f"not logfmt at column {pos}: {line!r}"
        k, v = m.groups()
        assert k not in out, f"key {k} twice: {line!r}"
        out[k] = json.loads(v) if v.startswith('"') else v
        pos = m.end()
    assert not line.endswith(" "), line
    return out


def check_record(rec, line, json_types=False):
    assert list(rec)[:3] == ["ts", "level", "msg"], line
    assert TS.match(rec["ts"]), line
    assert rec["level"] in LEVELS, line
    # Fields are typed in JSON: numbers and booleans bare; logfmt has only text.
    types = (str, int, float, bool) if json_types else (str,)
    assert all(isinstance(v, types) for v in rec.values()), line
    assert isinstance(rec["msg"], str), line


def counters_logged(text):
    """The counters record (SIGUSR1), in either format."""
    return "msg=counters received=" in text or '"msg":"counters","received":' in text


def exercise(d, tmp_path):
    """A run touching many log sites: a reject, a dead letter, SIGUSR1, SIGHUP, SIGTERM."""
    d.push([b"not json"])
    assert ack_all(d.ack_addr, [("e1", event("e1"))]) == {"e1": "ok e1"}
    d.wait_endpoint("bad", lambda e: e["dead"] == 1, "a dead letter")
    d.wait_endpoint("all", lambda e: e["ok"] == 1, "a delivery")
    wait_until(lambda: d.metrics().get("switchyard_events_quarantined_total") == 1,
               what="the reject quarantined")
    # The dead letter's webhook.delivery_failed is raised after its record went to the
    # spool (what the API's "dead" reads): wait until it is accepted too, as the
    # counters line below must show it.
    wait_until(lambda: d.metrics().get("switchyard_events_accepted_total") == 2,
               what="the delivery_failed event accepted")
    d.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: counters_logged(d.run_log()), what="the counters line")
    mark = d.reload()  # the same config again: whatever it logs must be well-formed
    wait_until(lambda: len(d.log()) > mark, what="a log line after SIGHUP")
    assert d.terminate() == 0


def daemon(ops_daemon, tmp_path, **kw):
    return ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl"),
                             "fl": flaky_sink(tmp_path / "flaky.log", fail_times=1,
                                              fail_mode="fail")},
                      endpoints={"all": {"sink": "files"}, "bad": {"sink": "fl"}}, **kw)


def test_log_format_json_one_object_per_line(ops_daemon, tmp_path):
    d = daemon(ops_daemon, tmp_path, args=["--log-format", "json"])
    exercise(d, tmp_path)
    text = d.run_log()
    assert text.endswith("\n")
    recs = []
    for line in text.splitlines():
        rec = json.loads(line)  # every line, not just most
        assert isinstance(rec, dict), line
        check_record(rec, line, json_types=True)
        recs.append(rec)
    msgs = [r["msg"] for r in recs]
    assert "switchyard ready" in msgs and msgs[-1] == "stopped"
    ready = recs[msgs.index("switchyard ready")]
    assert ready["level"] == "info" and ready["version"] and ready["endpoints"] == 2
    assert ready["ingress"] == 3 and ready["sinks"] == 2
    dead = [r for r in recs if r["msg"] == "delivery dead"]
    assert len(dead) == 1
    assert {k: dead[0][k] for k in ("level", "endpoint", "event_id", "attempts", "status",
                                    "detail")} == \
        {"level": "warn", "endpoint": "bad", "event_id": "e1", "attempts": 1,
         "status": 400, "detail": "flaky: attempt 1 of 1 fails"}
    # Plugin lines (host->log) carry the plugin and instance as fields.
    opened = [r for r in recs if r.get("plugin") == "file"]
    assert opened and all(r["instance"] == "files" for r in opened), msgs
    assert opened[0]["msg"] == f"opened {tmp_path / 'out.jsonl'} (0 bytes)", opened
    # Counters are numbers. Accepted counts the webhook.delivery_failed system event too.
    counters = [r for r in recs if r["msg"] == "counters"]
    assert counters, msgs
    assert {k: counters[-1][k] for k in ("received", "accepted", "rejected", "deliveries", "ok",
                                         "dead")} == \
        {"received": 2, "accepted": 2, "rejected": 1, "deliveries": 2, "ok": 1, "dead": 1}
    # A rejected message: its size is a number.
    rejected = [r for r in recs if r["msg"] == "event rejected"]
    assert [(r["reason"], r["size"]) for r in rejected] == [("not_json", 8)], rejected
    assert not any(line.startswith("ts=") for line in text.splitlines())


def test_logfmt_by_default(ops_daemon, tmp_path):
    d = daemon(ops_daemon, tmp_path)
    exercise(d, tmp_path)
    recs = []
    for line in d.run_log().splitlines():
        rec = logfmt(line)
        check_record(rec, line)
        recs.append(rec)
    assert [r["msg"] for r in recs][-1] == "stopped"
    dead = [r for r in recs if r["msg"] == "delivery dead"]
    assert dead and dead[0]["detail"] == "flaky: attempt 1 of 1 fails"


def test_log_format_from_config_and_the_flag_wins(ops_daemon, tmp_path):
    d = daemon(ops_daemon, tmp_path, core={"log_format": "json"})
    assert d.terminate() == 0
    for line in d.run_log().splitlines():
        check_record(json.loads(line), line, json_types=True)
    d.args = ["--log-format", "logfmt"]
    d.start()
    assert d.terminate() == 0
    for line in d.run_log().splitlines():
        check_record(logfmt(line), line)


def test_log_level_warn_hides_info(ops_daemon, tmp_path):
    d = daemon(ops_daemon, tmp_path, args=["--log-level", "warn"])
    d.push([b"not json"])
    assert ack_all(d.ack_addr, [("e1", event("e1"))]) == {"e1": "ok e1"}
    d.wait_endpoint("bad", lambda e: e["dead"] == 1, "a dead letter")
    assert d.terminate() == 0
    recs = [logfmt(line) for line in d.run_log().splitlines()]
    assert recs, "no line at all"
    assert {r["level"] for r in recs} <= {"warn", "error"}, recs
    assert [r["event_id"] for r in recs if r["msg"] == "delivery dead"] == ["e1"]


def test_log_level_debug_from_config(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"fl": flaky_sink(tmp_path / "flaky.log", fail_times=1)},
                   endpoints={"ep": {"sink": "fl", "retry": {"schedule": ["10ms"]}}},
                   core={"log_level": "debug"})
    assert ack_all(d.ack_addr, [("e1", event("e1"))]) == {"e1": "ok e1"}
    d.wait_endpoint("ep", lambda e: e["ok"] == 1, "delivered after one retry")
    assert d.terminate() == 0
    recs = [logfmt(line) for line in d.run_log().splitlines()]
    debug = [r for r in recs if r["level"] == "debug"]
    # The retry's particulars are fields, not text inside the message.
    retries = [r for r in debug if r["msg"] == "retry"]
    assert [(r["endpoint"], r["event_id"], r["attempt"], r["delay_ms"], r["detail"])
            for r in retries] == [("ep", "e1", "1", "10", "flaky: attempt 1 of 1 fails")], debug


def test_bad_log_flags_exit_2(tmp_path):
    r = cli("run", "-c", tmp_path, "--log-format", "xml")
    assert (r.returncode, r.stderr) == (2, b"switchyard: --log-format is logfmt or json\n")
    r = cli("run", "-c", tmp_path, "--log-level", "loud")
    assert (r.returncode, r.stderr) == (2, b"switchyard: --log-level is error, warn, info or "
                                           b"debug\n")
