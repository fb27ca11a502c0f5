"""
`switchyard status -c DIR`: the endpoint table from the running daemon's
admin API; exit 1 with a clear message when no daemon answers. Also the
routing table `switchyard check` prints (what an operator reads before a
reload).
"""

import json

from conftest import PLUGIN_DIR, cli, write_config
from test_ops_helpers import (ack_all, event, file_sink, flaky_sink,
                              ops_daemon)  # noqa: F401 (fixture)

HEADER = f"{'ENDPOINT':<24} {'STATE':<13} {'SUCCESS':>8} {'PENDING':>8} {'DEAD':>8} " \
         f"{'LAST':>6}  LAST ERROR"


def row(ep, state, success, pending, dead, last, error=""):
    return f"{ep:<24} {state:<13} {success:>8} {pending:>8} {dead:>8} {last:>6}  {error}"


def test_status_table(ops_daemon, tmp_path):
    d = ops_daemon(
        sinks={"files": file_sink(tmp_path / "out.jsonl"),
               "bad": flaky_sink(tmp_path / "bad.log", fail_times=1, fail_mode="fail"),
               "later": flaky_sink(tmp_path / "later.log", fail_times=1)},
        endpoints={"good": {"sink": "files"},
                   "bad": {"sink": "bad"},
                   "later": {"sink": "later", "retry": {"schedule": ["1h"]}},
                   "never": {"sink": "files", "enabled_events": ["nothing.ever"]},
                   "off": {"sink": "files", "enabled": False}})
    assert ack_all(d.ack_addr, [(f"e{i}", event(f"e{i}")) for i in range(3)]) == \
        {f"e{i}": f"ok e{i}" for i in range(3)}
    # "pending" is counted in the spool, which records a delivery's end one commit
    # after the live "ok" counter moved; "attempts" moves when an attempt starts,
    # last_status and last_error once it came back: wait for all of it.
    d.wait_endpoint("good", lambda e: e["ok"] == 3 and e["pending"] == 0, "good: 3 ok")
    d.wait_endpoint("bad", lambda e: e["dead"] == 3, "bad: 3 dead")
    d.wait_endpoint("later", lambda e: e["attempts"] == 3 and e["last_status"] == 503 and
                    e["last_error"] == "flaky: attempt 1 of 1 fails", "later: 3 attempts answered")

    r = cli("status", "-c", d.conf_dir)
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    lines = r.stdout.decode().splitlines()
    assert lines[0] == HEADER
    assert sorted(lines[1:]) == sorted([
        row("good", "active", "100.0%", 0, 0, 0),
        row("bad", "active", "0.0%", 0, 3, 400, "flaky: attempt 1 of 1 fails"),
        row("later", "active", "0.0%", 3, 0, 503, "flaky: attempt 1 of 1 fails"),
        row("never", "active", "-", 0, 0, 0),
        row("off", "off", "-", 0, 0, 0),
    ])

    # --json: the API's answer as it is.
    r = cli("status", "-c", d.conf_dir, "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == d.get_json("/api/v1/endpoints")

    # --admin points at another address (here the same daemon).
    r = cli("status", "-c", d.conf_dir, "--admin", d.admin_listen)
    assert r.returncode == 0 and r.stdout.decode().splitlines()[0] == HEADER


def test_status_when_the_daemon_is_not_running(ops_daemon, tmp_path):
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    assert d.terminate() == 0
    r = cli("status", "-c", d.conf_dir)
    assert r.returncode == 1
    assert r.stdout == b""
    assert r.stderr.decode() == (f"switchyard status: cannot connect to the admin API at "
                                 f"{d.admin_listen}: Connection refused (is the daemon "
                                 f"running?)\n")


def test_status_without_admin_config(tmp_path):
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:5999"}]})
    r = cli("status", "-c", conf)
    assert r.returncode == 2
    assert r.stderr.decode() == \
        f"switchyard status: {conf} has no core.admin listen address and token\n"


def test_check_names_every_ingress_type(tmp_path):
    """The routing table `check` prints names an ack socket "ack", not "sub"."""
    conf = tmp_path / "conf.d"
    write_config(conf,
                 {"plugin_dir": str(PLUGIN_DIR),
                  "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:5991"},
                              {"type": "sub", "bind": "tcp://127.0.0.1:5992"},
                              {"type": "ack", "bind": "tcp://127.0.0.1:5993"}]},
                 {"files": file_sink(tmp_path / "out.jsonl")},
                 {"all": {"sink": "files"}})
    r = cli("check", "-c", conf)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    ingress = lines[1:lines.index("sinks:")]
    assert [l.split()[:3] for l in ingress] == [["pull", "bind", "tcp://127.0.0.1:5991"],
                                                ["sub", "bind", "tcp://127.0.0.1:5992"],
                                                ["ack", "bind", "tcp://127.0.0.1:5993"]]


def test_status_after_a_restart_shows_what_the_spool_holds(ops_daemon, tmp_path):
    """
    PENDING and DEAD describe the endpoint's deliveries, not what this
    process happened to count since it started: after a restart on the same
    spool, 2 dead letters and 2 deliveries waiting for a retry are still
    there (`switchyard replay --list` shows the dead ones), and status must
    say so.
    """
    d = ops_daemon(
        sinks={"bad": flaky_sink(tmp_path / "bad.log", fail_times=1, fail_mode="fail"),
               "later": flaky_sink(tmp_path / "later.log", fail_times=1)},
        endpoints={"bad": {"sink": "bad"},
                   "later": {"sink": "later", "retry": {"schedule": ["1h"]}}})
    assert ack_all(d.ack_addr, [(f"e{i}", event(f"e{i}")) for i in range(2)]) == \
        {"e0": "ok e0", "e1": "ok e1"}
    d.wait_endpoint("bad", lambda e: e["dead"] == 2, "bad: 2 dead")
    d.wait_endpoint("later", lambda e: e["pending"] == 2, "later: 2 pending")
    d.restart()
    eps = d.api_endpoints()
    assert (eps["bad"]["dead"], eps["bad"]["pending"]) == (2, 0), eps["bad"]
    assert (eps["later"]["dead"], eps["later"]["pending"]) == (0, 2), eps["later"]
