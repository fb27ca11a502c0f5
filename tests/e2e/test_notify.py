"""
sd_notify, without systemd: the test owns a unix datagram socket, hands
its path to the daemon as NOTIFY_SOCKET (as systemd does for a
Type=notify service), and reads every message the daemon sends, in order:

- READY=1 (with the first STATUS=) once the sockets are bound and the
  spool is open;
- RELOADING=1 with MONOTONIC_USEC= on SIGHUP, then READY=1 again, with a
  STATUS= that says so when the reload was refused;
- STATUS= with events/s and deliveries pending, only when it changes;
- STOPPING=1 on SIGTERM, then nothing: the process exits;
- WATCHDOG=1 every half of WATCHDOG_USEC, never without it.

Each message is one datagram, so the order the socket gives is the order
the daemon sent them in.
"""

import os
import re
import signal
import socket
import time

import pytest

from test_ops_helpers import ack_all, event, file_sink, ops_daemon, wait_until  # noqa: F401

IDLE = "running: 0.0 events/s, 0 deliveries pending"
READY = f"READY=1\nSTATUS={IDLE}"
RELOADING = re.compile(r"RELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=reloading the configuration")


def mono_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class NotifySocket:
    """The service manager's end: a bound AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=30.0, skip_watchdog=False):
        """The next message (watchdog pings skipped when asked); fails after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no notification within {timeout}s", pytrace=False)
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            if not (skip_watchdog and msg == "WATCHDOG=1"):
                return msg

    def rest(self):
        """Every message already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return out

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify.sock")
    yield n
    n.close()


def start(ops_daemon, tmp_path, notify, env=None, **kw):
    env = {"NOTIFY_SOCKET": notify.path, **(env or {})}
    return ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                      endpoints={"all": {"sink": "files"}},
                      core={"drain_timeout": "2s"}, env=env, **kw)


def test_ready_reload_and_stop_in_order(ops_daemon, tmp_path, notify):
    d = start(ops_daemon, tmp_path, notify, start=False)
    d.start()
    assert notify.next() == READY
    # READY came after the sockets were bound: both accept a connection now.
    for port in (d.ack_port, d.admin_port):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert d.spool_path.exists()

    before = mono_usec()
    d.proc.send_signal(signal.SIGHUP)
    m = RELOADING.fullmatch(notify.next())
    assert m, "not a RELOADING=1 message"
    assert before <= int(m.group(1)) <= mono_usec()
    assert notify.next() == READY

    # A refused reload: READY=1 all the same (the old configuration runs),
    # and STATUS= says so until a reload applies.
    (d.conf_dir / "40-bad.json").write_text('{"core": {"no_such_key": 1}}')
    d.proc.send_signal(signal.SIGHUP)
    assert RELOADING.fullmatch(notify.next())
    assert notify.next() == (f"READY=1\nSTATUS={IDLE}; the last reload was refused (1 error, "
                             f"see the log)")
    (d.conf_dir / "40-bad.json").unlink()
    d.proc.send_signal(signal.SIGHUP)
    assert RELOADING.fullmatch(notify.next())
    assert notify.next() == READY
    assert "reload applied" in d.run_log()

    assert d.terminate() == 0
    assert notify.rest() == ["STOPPING=1\nSTATUS=stopping: draining deliveries for up to 2000ms"]
    assert "WATCHDOG=1" not in d.run_log()


def test_status_follows_events_and_pending(ops_daemon, tmp_path, notify):
    d = start(ops_daemon, tmp_path, notify)
    assert notify.next() == READY
    ids = [f"n-{i}" for i in range(40)]
    assert ack_all(d.ack_addr, [(i, event(i)) for i in ids]) == {i: f"ok {i}" for i in ids}
    d.wait_stats(lambda s: s["deliveries"]["ok"] == 40, "40 delivered")
    # STATUS= changes with the rate, then settles back to idle once the
    # events are delivered; an unchanged status is not sent again.
    seen, busy = [], False
    while not (busy and seen[-1] == f"STATUS={IDLE}"):
        seen.append(notify.next())
        m = re.fullmatch(r"STATUS=running: (\d+\.\d) events/s, (\d+) deliveries pending",
                         seen[-1])
        assert m, seen
        busy = busy or float(m.group(1)) > 0
    assert all(a != b for a, b in zip(seen, seen[1:])), seen
    assert d.terminate() == 0
    assert notify.rest() == ["STOPPING=1\nSTATUS=stopping: draining deliveries for up to 2000ms"]


def test_watchdog_pings_with_watchdog_usec(ops_daemon, tmp_path, notify):
    # 200 ms: a ping every 100 ms, the first on the main loop's first turn.
    d = start(ops_daemon, tmp_path, notify, env={"WATCHDOG_USEC": "200000"})
    assert notify.next() == READY
    for _ in range(3):
        assert notify.next() == "WATCHDOG=1"
    d.proc.send_signal(signal.SIGHUP)
    assert RELOADING.fullmatch(notify.next(skip_watchdog=True))
    assert notify.next(skip_watchdog=True) == READY
    assert d.terminate() == 0
    rest = notify.rest()
    # No ping after STOPPING=1: the loop that sends them has ended.
    assert rest[-1] == "STOPPING=1\nSTATUS=stopping: draining deliveries for up to 2000ms"
    assert set(rest[:-1]) <= {"WATCHDOG=1"}, rest


def test_no_watchdog_for_another_process(ops_daemon, tmp_path, notify):
    """WATCHDOG_PID names the process the watchdog is for: not this one, no pings."""
    d = start(ops_daemon, tmp_path, notify,
              env={"WATCHDOG_USEC": "100000", "WATCHDOG_PID": str(os.getpid())})
    assert notify.next() == READY
    # The loop has turned (a reload went through it) long after a ping
    # would have been due on its first turn.
    d.proc.send_signal(signal.SIGHUP)
    assert RELOADING.fullmatch(notify.next())
    assert notify.next() == READY
    assert d.terminate() == 0
    assert notify.rest() == ["STOPPING=1\nSTATUS=stopping: draining deliveries for up to 2000ms"]


def test_a_notify_socket_that_is_gone_is_logged_once(ops_daemon, tmp_path):
    gone = tmp_path / "gone.sock"
    d = ops_daemon(sinks={"files": file_sink(tmp_path / "out.jsonl")},
                   endpoints={"all": {"sink": "files"}},
                   env={"NOTIFY_SOCKET": str(gone), "WATCHDOG_USEC": "100000"})
    # Pings every 50 ms fail too; the daemon keeps working and says so once.
    assert ack_all(d.ack_addr, [("g-1", event("g-1"))]) == {"g-1": "ok g-1"}
    d.wait_stats(lambda s: s["deliveries"]["ok"] == 1, "1 delivered")
    line = (f'level=warn msg="cannot notify the service manager" '
            f'error="No such file or directory" socket={gone}')
    wait_until(lambda: line in d.run_log(), what="the warning")
    assert d.terminate() == 0
    assert d.run_log().count("cannot notify the service manager") == 1
