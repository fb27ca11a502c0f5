"""
Helpers for the operations end-to-end tests (test_admin*.py, test_ops*.py,
test_install*.py). This module holds no tests; it is named test_ops_* only
so that it sits with the files it serves.

Everything builds on conftest.py (Daemon, free_ports, wait_until, event,
...), which is not modified:

  OpsDaemon   conftest.Daemon plus an admin API (listen address and token),
              an `ack` ingress and a spool file, ports and spool kept
              across restarts, extra command-line arguments (--log-format,
              --log-level), the log of every run kept in one file, and
              reload(): rewrite conf.d and send SIGHUP.
  ops_daemon  the factory fixture; at teardown every daemon still running
              gets SIGTERM and must exit 0.
  http()      one HTTP request to the admin API (urllib, no proxies).
  Metrics     a strict parser of the Prometheus text format.
  AckStream   a background publisher over a DEALER: event id as the tag,
              resends what is unanswered, records when each id was acked.
"""

import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import zmq

from conftest import (BIN, FLAKY, PLUGIN_DIR, READY_TIMEOUT, STOP_TIMEOUT, Daemon, _require,
                      stall_report,
                      event, free_ports, read_lines, wait_until, write_config)

TOKEN = "ops-test-token-0123456789abcdef"
READY_LOGFMT = 'msg="switchyard ready"'
READY_JSON = '"msg":"switchyard ready"'

PENDING, DONE, DEAD = 0, 1, 2


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode()

    def json(self):
        assert self.headers.get("Content-Type", "").startswith("application/json"), \
            f"Content-Type {self.headers.get('Content-Type')!r}, body {self.body[:300]!r}"
        return json.loads(self.body)

    def __repr__(self):
        return f"<HTTP {self.status} {self.body[:300]!r}>"


def http(base, method, path, token=None, auth=None, timeout=10.0):
    """
    One request to base (e.g. "http://127.0.0.1:5580"). token sets
    `Authorization: Bearer <token>`; auth sets the whole header value.
    Returns Resp whatever the status.
    """
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if auth is not None:
        headers["Authorization"] = auth
    data = b"" if method in ("POST", "PUT") else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


# --------------------------------------------------------------------------
# Prometheus text format
# --------------------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(r"^(" + _NAME + r")(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Metrics:
    """
    Parses Prometheus text format 0.0.4 strictly: every line is a HELP, a
    TYPE or a sample; every sample belongs to a family whose TYPE came
    first; HELP and TYPE at most once per family; the lines of a family
    form one group; no sample appears twice; values are floats.
    """

    def __init__(self, text):
        assert text.endswith("\n"), "metrics text must end with a newline"
        self.types = {}
        self.samples = {}
        helps = set()
        done = set()  # families whose group has ended
        current = None

        def enter(fam, n):
            nonlocal current
            if fam != current:
                assert fam not in done, f"line {n}: the lines of {fam} are not one group"
                if current:
                    done.add(current)
                current = fam

        for n, line in enumerate(text.split("\n")[:-1], 1):
            if line.startswith("# HELP "):
                assert re.match(r"^# HELP " + _NAME + " .+$", line), f"line {n}: {line!r}"
                name = line.split(" ")[2]
                assert name not in helps, f"line {n}: HELP of {name} twice"
                helps.add(name)
                enter(name, n)
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ")
                assert typ in _TYPES, f"line {n}: unknown type {typ!r}"
                assert name not in self.types, f"line {n}: TYPE of {name} twice"
                self.types[name] = typ
                enter(name, n)
                continue
            m = _SAMPLE.match(line)
            assert m, f"line {n} is not a sample: {line!r}"
            name, labels_text, value = m.groups()
            labels = {}
            rest = labels_text or ""
            while rest:
                lm = _LABEL.match(rest)
                assert lm, f"line {n}: bad labels {labels_text!r}"
                labels[lm.group(1)] = lm.group(2)
                rest = rest[lm.end():]
            fam = self.family(name)
            assert fam in self.types, f"line {n}: sample {name} before the TYPE of its family"
            enter(fam, n)
            key = (name, tuple(sorted(labels.items())))
            assert key not in self.samples, f"line {n}: duplicate sample {line!r}"
            self.samples[key] = float(value)

    def family(self, name):
        if name in self.types:
            return name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and self.types.get(name[: -len(suffix)]) == "histogram":
                return name[: -len(suffix)]
        return name

    def get(self, name, **labels):
        """The value of the sample with exactly these labels, or None."""
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def series(self, name):
        """[(labels dict, value)] of every sample of that name."""
        return [(dict(k[1]), v) for k, v in self.samples.items() if k[0] == name]


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

class OpsDaemon(Daemon):
    """
    conftest.Daemon plus: an admin API on a loopback port with TOKEN (admin
    = False leaves it out, token=None configures no token), an `ack`
    ingress, a spool file (spool=False: in memory), extra command-line
    arguments, another binary (binary=PATH, e.g. an installed one), extra
    environment variables (env={"NAME": "value"}), and one log file across
    restarts (self.log() is every run, self.run_log() the current one).
    """

    def __init__(self, tmp, sinks=None, endpoints=None, core=None, spool=True, admin=True,
                 token=TOKEN, args=(), binary=None, env=None):
        super().__init__(tmp, sinks, endpoints, core)
        self.binary = Path(binary) if binary else BIN
        self.env = {**os.environ, **env} if env else None
        self.spool_path = self.tmp / "spool.db" if spool else None
        self.admin_on = admin
        self.token = token
        self.args = list(args)
        self.ack_port, self.admin_port = free_ports(2)
        self.user_core = core or {}
        self.runs = 0
        self.log_start = 0
        self.extra_files = {}  # name -> JSON document, written with the config

    # -- config --------------------------------------------------------------

    @property
    def ack_addr(self):
        return f"tcp://127.0.0.1:{self.ack_port}"

    @property
    def admin_listen(self):
        return f"127.0.0.1:{self.admin_port}"

    @property
    def base(self):
        return f"http://{self.admin_listen}"

    def _write_config(self):
        extra = {}
        if self.spool_path:
            extra["spool"] = str(self.spool_path)
        if self.admin_on:
            admin = {"listen": self.admin_listen}
            if self.token is not None:
                admin["token"] = self.token
            extra["admin"] = admin
        self.core_extra = {**extra, **self.user_core}
        super()._write_config()
        p = self.conf_dir / "10-core.json"
        doc = json.loads(p.read_text())
        doc["core"]["ingress"].append({"type": "ack", "bind": self.ack_addr})
        p.write_text(json.dumps(doc, indent=2) + "\n")
        for name, doc in self.extra_files.items():
            (self.conf_dir / name).write_text(json.dumps(doc, indent=2) + "\n")

    # -- process ---------------------------------------------------------

    def run_log(self):
        return self.log()[self.log_start:]

    def _ready(self):
        log = self.run_log()
        if READY_LOGFMT in log or READY_JSON in log:
            return True
        # --log-level warn hides the ready line; the admin API still tells.
        if self.admin_on and "--log-level" in self.args:
            try:
                return http(self.base, "GET", "/readyz", timeout=1).status == 200
            except OSError:
                return False
        return False

    def start(self):
        _require(self.binary)
        self.stats_path.unlink(missing_ok=True)  # an old snapshot is not this run's
        self.returncode = None
        self.final_stats = None
        for tries in range(3):
            if self.runs == 0 and tries:
                self.ack_port, self.admin_port = free_ports(2)
            self._write_config()
            self.log_start = len(self.log())
            with open(self.log_path, "ab") as logf:
                self.proc = subprocess.Popen(
                    [str(self.binary), "run", "-c", str(self.conf_dir), *self.args],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=logf,
                    env=self.env)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if self._ready():
                    self.runs += 1
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.01)
            if self.proc.poll() is None:
                where = stall_report(self.proc.pid)
                self.kill()
                pytest.fail(f"switchyard not ready within {READY_TIMEOUT:.0f}s; log:\n"
                            f"{self.run_log()}\nits threads then:\n{where}", pytrace=False)
            if "Address already in use" not in self.run_log():
                break
        self.returncode = self.proc.returncode
        pytest.fail(f"switchyard exited with {self.proc.returncode} before it was ready; "
                    f"log:\n{self.run_log()}", pytrace=False)

    def terminate(self):
        """SIGTERM; waits for the exit and returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"switchyard did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM; "
                        f"log:\n{self.run_log()[-4000:]}", pytrace=False)
        self.returncode = self.proc.returncode
        return self.returncode

    def restart(self):
        rc = self.terminate()
        assert rc == 0, f"switchyard exited with {rc} on SIGTERM; log:\n{self.run_log()[-4000:]}"
        return self.start()

    def reload(self, files=None, remove=()):
        """
        Writes files ({name: JSON document or raw str}) into conf.d, removes
        the names in remove, then sends SIGHUP. Returns the log offset at
        the moment of the signal (for run_log()[offset:] checks).
        """
        for name, doc in (files or {}).items():
            text = doc if isinstance(doc, str) else json.dumps(doc, indent=2) + "\n"
            (self.conf_dir / name).write_text(text)
        for name in remove:
            (self.conf_dir / name).unlink()
        mark = len(self.log())
        self.proc.send_signal(signal.SIGHUP)
        return mark

    # -- admin API -------------------------------------------------------

    def api(self, method, path, token=None):
        return http(self.base, method, path, token=self.token if token is None else token)

    def get_json(self, path):
        r = self.api("GET", path)
        assert r.status == 200, f"GET {path}: {r}"
        return r.json()

    def metrics(self):
        r = http(self.base, "GET", "/metrics")
        assert r.status == 200, r
        return Metrics(r.text)

    def api_endpoints(self):
        """GET /api/v1/endpoints as {id: object}."""
        return {e["id"]: e for e in self.get_json("/api/v1/endpoints")}

    def wait_endpoint(self, ep, cond, what, timeout=60.0):
        """Waits until cond(GET /api/v1/endpoints[ep]) holds; returns that object."""
        def check():
            if not self.alive():
                pytest.fail(f"switchyard exited ({self.proc.returncode}) while waiting for "
                            f"{what}\n{self.run_log()[-4000:]}", pytrace=False)
            e = self.api_endpoints().get(ep)
            return e if e is not None and cond(e) else None
        return wait_until(check, timeout=timeout, what=what,
                          on_timeout=lambda: json.dumps(self.api_endpoints(), indent=1))

    def wait_metric(self, name, value, timeout=60.0, **labels):
        """Waits until the sample reaches value, then asserts it is exactly value."""
        def check():
            if not self.alive():
                pytest.fail(f"switchyard exited ({self.proc.returncode}) while waiting for "
                            f"{name}{labels}\n{self.run_log()[-4000:]}", pytrace=False)
            v = self.metrics().get(name, **labels)
            return v is not None and v >= value
        wait_until(check, timeout=timeout, what=f"{name}{labels} >= {value}",
                   on_timeout=lambda: self.run_log()[-4000:])
        got = self.metrics().get(name, **labels)
        assert got == value, f"{name}{labels}: expected {value}, got {got}"


@pytest.fixture
def ops_daemon(tmp_path):
    """
    Factory: ops_daemon(sinks=..., endpoints=..., core=..., spool=True,
    admin=True, token=TOKEN, args=(), binary=None, env=None, start=True) -> OpsDaemon. At teardown
    every daemon still running gets SIGTERM and must exit 0.
    """
    made = []

    def make(sinks=None, endpoints=None, core=None, start=True, **kw):
        d = OpsDaemon(tmp_path / f"o{len(made)}", sinks, endpoints, core, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    problems = []
    for d in made:
        if not d.alive():
            continue
        try:
            rc = d.stop()
        except BaseException as e:  # pytest.fail inside stop
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append(f"switchyard exited with {rc}, expected 0; log:\n"
                            f"{d.run_log()[-4000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------
# sinks and what they wrote
# --------------------------------------------------------------------------

def file_sink(path, **keys):
    """A file sink instance writing every event to one file (no template)."""
    return {"plugin": "file", "path": str(path), "fsync": "never", **keys}


def flaky_sink(log, **keys):
    return {"plugin": str(FLAKY), "log": str(log), **keys}


def sink_events(path):
    """The events a file sink wrote, parsed, in file order ([] when there is no file)."""
    try:
        return [json.loads(l) for l in read_lines(path)]
    except FileNotFoundError:
        return []


def sink_ids(path):
    return [e["event_id"] for e in sink_events(path)]


def flaky_lines(path):
    try:
        return [json.loads(l) for l in read_lines(path)]
    except FileNotFoundError:
        return []


def spool_rows(path, endpoint=None):
    """[{id, event_id, endpoint, state, attempt}] of the spool's deliveries."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        sql = ("SELECT d.id, e.event_id, d.endpoint, d.state, d.attempt FROM deliveries d "
               "JOIN events e ON e.id = d.event_rowid")
        args = ()
        if endpoint:
            sql += " WHERE d.endpoint = ?"
            args = (endpoint,)
        rows = db.execute(sql + " ORDER BY d.id", args).fetchall()
    finally:
        db.close()
    return [dict(zip(("id", "event_id", "endpoint", "state", "attempt"), r)) for r in rows]


# --------------------------------------------------------------------------
# an acknowledging publisher running in the background
# --------------------------------------------------------------------------

class AckStream:
    """
    Publishes events to an ack ingress from a background thread over one
    DEALER, the event id as the tag, at most `window` unanswered at once,
    resending anything unanswered after `resend_after` seconds (a stopped
    daemon answers nothing; the DEALER reconnects to the restarted one).

      acked[id]    (monotonic time of the first answer, its text)
      sent_at[id]  monotonic time of the first send
      errors       answers that were neither "ok <id>" nor "dup <id>"

    finish() stops taking new ids and waits until every sent id is answered.
    """

    def __init__(self, addr, prefix, window=100, resend_after=1.0, pace=0.0,
                 make=lambda eid, n: event(eid, data={"n": n})):
        self.addr = addr
        self.prefix = prefix
        self.window = window
        self.resend_after = resend_after
        self.pace = pace  # seconds between new events (0: as fast as the window allows)
        self.make = make
        self.lock = threading.Lock()
        self.acked = {}
        self.sent_at = {}
        self.errors = []
        self.sends = 0
        self._more = threading.Event()
        self._more.set()
        self._quit = threading.Event()
        self._exc = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def ids_acked_before(self, t):
        with self.lock:
            return {i for i, (at, _) in self.acked.items() if at < t}

    def ids_sent_after(self, t):
        with self.lock:
            return {i for i, at in self.sent_at.items() if at > t}

    def wait_acked(self, n, timeout=60.0):
        wait_until(lambda: self._check() or self.acked_count() >= n, timeout=timeout,
                   what=f"{n} events acknowledged (have {self.acked_count()})")

    def _check(self):
        if self._exc:
            raise self._exc
        return False

    def finish(self, timeout=90.0):
        """Stops new ids; waits until every id sent is answered; returns acked."""
        with self.lock:  # after this, no id is sent that sent_at does not hold
            self._more.clear()
        wait_until(lambda: self._check() or self._all_answered(), timeout=timeout,
                   what="an answer for every event sent",
                   on_timeout=lambda: f"{len(self.sent_at) - len(self.acked)} unanswered")
        self._quit.set()
        self.thread.join(timeout=10)
        self._check()
        return dict(self.acked)

    def abort(self):
        self._more.clear()
        self._quit.set()
        self.thread.join(timeout=10)

    def _all_answered(self):
        with self.lock:
            return len(self.acked) == len(self.sent_at)

    def _run(self):
        ctx = zmq.Context()
        s = ctx.socket(zmq.DEALER)
        for opt, v in ((zmq.LINGER, 0), (zmq.SNDHWM, 0), (zmq.RCVHWM, 0)):
            s.setsockopt(opt, v)
        s.connect(self.addr)
        pending = {}  # id -> last send
        bodies = {}
        n = 0
        last_new = 0.0
        try:
            while not self._quit.is_set():
                now = time.monotonic()
                while len(pending) < self.window and now - last_new >= self.pace:
                    eid = f"{self.prefix}-{n:06d}"
                    # Recorded before it is sent, and under the lock finish() clears _more
                    # with: finish() either waits for this id's answer or it is never sent.
                    with self.lock:
                        if not self._more.is_set():
                            break
                        self.sent_at[eid] = now
                        self.sends += 1
                    bodies[eid] = self.make(eid, n)
                    n += 1
                    s.send_multipart([eid.encode(), bodies[eid]])
                    pending[eid] = now
                    last_new = now
                    if self.pace:
                        break
                if s.poll(10, zmq.POLLIN):
                    while True:
                        try:
                            frames = s.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        eid, text = frames[0].decode(), frames[-1].decode()
                        t = time.monotonic()
                        with self.lock:
                            if text not in (f"ok {eid}", f"dup {eid}"):
                                self.errors.append((eid, text))
                            self.acked.setdefault(eid, (t, text))
                        pending.pop(eid, None)
                now = time.monotonic()
                for eid, t in list(pending.items()):
                    if now - t >= self.resend_after:
                        s.send_multipart([eid.encode(), bodies[eid]])
                        pending[eid] = now
                        with self.lock:
                            self.sends += 1
        except Exception as e:  # surfaced by the main thread's waits
            self._exc = e
        finally:
            s.close()
            ctx.term()


def ack_one(addr, body, tag=b"t", timeout=10.0):
    """Sends one event to an ack ingress and returns the answer text."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(addr)
    try:
        s.send_multipart([tag, body])
        assert s.poll(int(timeout * 1000), zmq.POLLIN), f"no answer within {timeout}s"
        frames = s.recv_multipart()
        assert frames[0] == tag, frames
        return frames[1].decode()
    finally:
        s.close()
        ctx.term()


def ack_all(addr, bodies, timeout=30.0):
    """Publishes (id, body) pairs over one DEALER; returns {id: answer}; fails on a timeout."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.connect(addr)
    answers = {}
    try:
        for eid, body in bodies:
            s.send_multipart([eid.encode(), body])
        end = time.monotonic() + timeout
        while len(answers) < len(bodies):
            left = end - time.monotonic()
            assert left > 0 and s.poll(int(left * 1000), zmq.POLLIN), \
                f"only {len(answers)} of {len(bodies)} answered within {timeout}s"
            f = s.recv_multipart()
            answers[f[0].decode()] = f[1].decode()
    finally:
        s.close()
        ctx.term()
    return answers


__all__ = ["TOKEN", "PENDING", "DONE", "DEAD", "http", "Resp", "Metrics", "OpsDaemon",
           "ops_daemon", "file_sink", "flaky_sink", "sink_events", "sink_ids", "flaky_lines",
           "spool_rows", "AckStream", "ack_one", "ack_all", "event", "wait_until", "BIN",
           "PLUGIN_DIR", "FLAKY", "write_config"]
