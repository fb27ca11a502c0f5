"""
End-to-end harness: start the real switchyard binary on a throwaway config
folder, talk to it over ZeroMQ, and read what it wrote (sink files, the
quarantine file, the stats file).

Nothing here sleeps for a fixed time to "let things settle": every wait
polls a condition (a ready line in the log, a counter in the stats file, a
subscription arriving on an XPUB socket) against a deadline, so the tests
are as fast as the machine allows and tolerant of a loaded CI box.

Environment:
  SY_BUILD   build folder holding switchyard, plugins/*.so and
             tests/plugins/*.so (default "build", relative to the repo root)
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import zmq

ROOT = Path(__file__).resolve().parents[2]
_build = Path(os.environ.get("SY_BUILD", "build"))
BUILD = _build if _build.is_absolute() else (ROOT / _build)
BIN = BUILD / "switchyard"
PLUGIN_DIR = BUILD / "plugins"
TEST_PLUGIN_DIR = BUILD / "tests" / "plugins"
FLAKY = TEST_PLUGIN_DIR / "flaky.so"


def _sanitized():
    """True when the daemon under test is an AddressSanitizer build (make check)."""
    try:
        return b"__asan_init" in BIN.read_bytes()
    except OSError:
        return False


# ASan keeps freed memory in quarantine and its allocator ignores malloc_trim:
# tests about the daemon's RSS only mean something on the normal build.
SANITIZED = _sanitized()

READY_MSG = 'msg="switchyard ready"'
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 20.0
WAIT_TIMEOUT = 60.0  # generous: a loaded 2-core CI box must not fail a test


def _require(path):
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make all` and `make e2e` first", pytrace=False)


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def free_ports(n):
    """n distinct loopback TCP ports that were free a moment ago (bind port 0)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def get(d, dotted, default=None):
    """get(stats, "deliveries.ok") -> value, or default when a step is missing."""
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return default
        cur = cur[part]
    return cur


def event(event_id, event_type="job.completed", org="acme", data=None, **extra):
    """A compact JSON envelope as bytes. org=None leaves org_id/org_slug out."""
    e = {"event_id": event_id, "event_type": event_type,
         "occurred_at": "2026-11-25T19:09:02Z", "version": "1"}
    if org is not None:
        e["org_id"] = org
        e["org_slug"] = org
    e.update(extra)
    e["data"] = {} if data is None else data
    return json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()


def wait_until(cond, timeout=WAIT_TIMEOUT, interval=0.02, what="condition", on_timeout=None):
    """Polls cond() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            extra = on_timeout() if on_timeout else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{extra}",
                        pytrace=False)
        time.sleep(interval)


def read_lines(path):
    """The lines of a file as bytes, checking it ends with a newline."""
    data = Path(path).read_bytes()
    if not data:
        return []
    assert data.endswith(b"\n"), f"{path} does not end with a newline"
    return data[:-1].split(b"\n")


def files_under(folder):
    """Every regular file under folder, as paths relative to it (sorted strings)."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def push(addr, messages, hwm=0):
    """
    Sends messages over a PUSH socket connected to addr. A message is bytes
    ([body]) or a list of frames. Returns once every message left the
    process (the context term waits for the linger period).
    """
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, hwm)
    s.setsockopt(zmq.LINGER, 60000)
    s.connect(addr)
    for m in messages:
        if isinstance(m, (list, tuple)):
            s.send_multipart(m)
        else:
            s.send(m)
    s.close()
    ctx.term()


def publish(addr, messages, settle_timeout=10.0):
    """
    Sends messages over a publisher socket connected to addr (the daemon's
    bound SUB). A message is (topic, body) -> [topic, body] frames, bytes ->
    [body], or a list of frames. PUB drops everything sent before the
    subscription arrives, so instead of a fixed settle delay this uses XPUB
    (a PUB that also reports subscriptions) and waits until the daemon's
    subscription has been received. SNDHWM 0 (no limit) so nothing is
    dropped when the daemon reads slower than we send.
    """
    ctx = zmq.Context()
    s = ctx.socket(zmq.XPUB)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.LINGER, 60000)
    s.connect(addr)
    try:
        if not s.poll(int(settle_timeout * 1000), zmq.POLLIN):
            pytest.fail(f"no subscription from the daemon's SUB socket at {addr} "
                        f"within {settle_timeout}s", pytrace=False)
        sub = s.recv()
        assert sub[:1] == b"\x01", f"unexpected XPUB message {sub!r}"
        for m in messages:
            if isinstance(m, tuple):
                s.send_multipart(list(m))
            elif isinstance(m, list):
                s.send_multipart(m)
            else:
                s.send(m)
    finally:
        s.close()
        ctx.term()


def cli(*args, timeout=60, input_bytes=None):
    """Runs the switchyard binary; returns CompletedProcess with text output."""
    _require(BIN)
    return subprocess.run([str(BIN), *map(str, args)], input=input_bytes,
                          capture_output=True, timeout=timeout)


def write_config(conf_dir, core=None, sinks=None, endpoints=None):
    """Writes a config folder as three files, like conf.d/. Returns the paths."""
    conf_dir = Path(conf_dir)
    conf_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, key, value in (("10-core.json", "core", core), ("20-sinks.json", "sinks", sinks),
                             ("30-endpoints.json", "endpoints", endpoints)):
        if value is None:
            continue
        p = conf_dir / name
        p.write_text(json.dumps({key: value}, indent=2) + "\n")
        paths[key] = p
    return paths


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

def stall_report(pid):
    """Where each thread of a process that stopped making progress waits: its name,
    kernel wait channel and current system call (from /proc), and its user-space
    stack when gdb is installed. For the failure message of a daemon not ready."""
    lines = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*"), key=lambda p: int(p.name)):
        def read(name):
            try:
                return (task / name).read_text(errors="replace").strip()
            except OSError as e:
                return f"({e.strerror})"
        lines.append(f"  thread {task.name} {read('comm')}: wchan={read('wchan')} "
                     f"syscall={read('syscall').split(' ')[0]}")
    try:
        bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                             "thread apply all bt 12"], capture_output=True, timeout=30)
        lines.append(bt.stdout.decode(errors="replace")[-6000:])
    except (OSError, subprocess.TimeoutExpired):
        lines.append("  (no gdb: user-space stacks not taken)")
    return "\n".join(lines)


class Daemon:
    """One switchyard process on its own folder and ports."""

    def __init__(self, tmp, sinks=None, endpoints=None, core=None):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.conf_dir = self.tmp / "conf.d"
        self.out = self.tmp / "out"
        self.quarantine = self.tmp / "quarantine.jsonl"
        self.stats_path = self.tmp / "stats.json"
        self.log_path = self.tmp / "daemon.log"
        self.sinks = sinks if sinks is not None else {
            "files": {"plugin": "file",
                      "path": f"{self.out}/{{org_slug}}/{{event_type}}.jsonl",
                      "fsync": "never"}}
        self.endpoints = endpoints if endpoints is not None else {
            "all": {"sink": "files", "enabled_events": ["*"]}}
        self.core_extra = core or {}
        self.proc = None
        self.returncode = None
        self.final_stats = None

    # -- config and process ------------------------------------------------

    def _write_config(self):
        self.pull_port, self.sub_port = free_ports(2)
        self.pull_addr = f"tcp://127.0.0.1:{self.pull_port}"
        self.sub_addr = f"tcp://127.0.0.1:{self.sub_port}"
        core = {
            "plugin_dir": str(PLUGIN_DIR),
            "ingress": [{"type": "pull", "bind": self.pull_addr},
                        {"type": "sub", "bind": self.sub_addr}],
            "quarantine": str(self.quarantine),
            "stats_file": str(self.stats_path),
            "stats_interval": "100ms",
            "workers": 4,
        }
        core.update(self.core_extra)
        write_config(self.conf_dir, core, self.sinks, self.endpoints)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self):
        _require(BIN)
        for tries in range(3):
            self._write_config()
            with open(self.log_path, "wb") as logf:
                self.proc = subprocess.Popen([str(BIN), "run", "-c", str(self.conf_dir)],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=logf)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if READY_MSG in self.log():
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.01)
            if self.proc.poll() is None:
                where = stall_report(self.proc.pid)
                self.kill()
                pytest.fail(f"switchyard not ready within {READY_TIMEOUT:.0f}s; log:\n{self.log()}"
                            f"\nits threads then:\n{where}", pytrace=False)
            # A port picked by free_ports() may have been taken in between.
            if "Address already in use" not in self.log():
                break
        self.returncode = self.proc.returncode
        pytest.fail(f"switchyard exited with {self.proc.returncode} before it was ready; "
                    f"log:\n{self.log()}", pytrace=False)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        """SIGTERM, wait for the drain; returns the exit code (kill -9 on timeout)."""
        if self.proc is None:
            return None
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
                self.returncode = -9
                pytest.fail(f"switchyard did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM "
                            f"(killed with SIGKILL); log:\n{self.log()}", pytrace=False)
        self.returncode = self.proc.returncode
        self.final_stats = self.stats()
        return self.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid

    # -- observing -----------------------------------------------------------

    def stats(self):
        """The last stats snapshot, or None when there is none (yet)."""
        try:
            return json.loads(self.stats_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def stat(self, dotted, default=None):
        return get(self.stats() or {}, dotted, default)

    def _diag(self):
        return (f"last stats: {json.dumps(self.stats(), sort_keys=True)}\n"
                f"daemon log (tail):\n{self.log()[-4000:]}")

    def wait_stats(self, cond, what, timeout=WAIT_TIMEOUT):
        """Waits until cond(stats) holds; returns that snapshot. Fails if the daemon dies."""
        def check():
            if not self.alive():
                pytest.fail(f"switchyard exited ({self.proc.returncode}) while waiting for "
                            f"{what}\n{self._diag()}", pytrace=False)
            s = self.stats()
            return s if s is not None and cond(s) else None
        return wait_until(check, timeout=timeout, what=what, on_timeout=self._diag)

    def wait_for(self, dotted, value, timeout=WAIT_TIMEOUT):
        """Waits until stats[dotted] >= value, then asserts it is exactly value."""
        s = self.wait_stats(lambda st: get(st, dotted, 0) >= value, f"{dotted} == {value}",
                            timeout)
        assert get(s, dotted) == value, f"{dotted}: expected {value}, got {get(s, dotted)}"
        return s

    # -- feeding -----------------------------------------------------------

    def push(self, messages):
        push(self.pull_addr, messages)

    def publish(self, messages):
        publish(self.sub_addr, messages)


@pytest.fixture
def switchyard(tmp_path):
    """
    Factory: switchyard(sinks=..., endpoints=..., core=...) starts a daemon
    (waits for its ready line) and returns the Daemon. At teardown every
    daemon still running gets SIGTERM and must exit 0.
    """
    started = []

    def start(sinks=None, endpoints=None, core=None):
        d = Daemon(tmp_path / f"d{len(started)}", sinks, endpoints, core)
        started.append(d)
        return d.start()

    yield start
    problems = []
    for d in started:
        try:
            rc = d.stop()
        except BaseException as e:  # pytest.fail inside stop
            problems.append(str(e))
            continue
        if rc != 0:
            problems.append(f"switchyard exited with {rc}, expected 0; log:\n{d.log()[-4000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def store_backend():
    """
    The store a spool daemon (durability_helpers) keeps its events in:
    "sqlite", unless the module sets STORE_BACKENDS (see below).
    """
    return "sqlite"


def pytest_generate_tests(metafunc):
    """A module with STORE_BACKENDS = ("sqlite", "postgres") runs each test that
    uses a spool daemon once per store."""
    backends = getattr(metafunc.module, "STORE_BACKENDS", None)
    if backends and "store_backend" in metafunc.fixturenames:
        metafunc.parametrize("store_backend", backends)


@pytest.fixture
def flaky_so():
    _require(FLAKY)
    return str(FLAKY)


def flaky_calls(log_path):
    """The flaky plugin's log as a list of dicts, in call order."""
    try:
        return [json.loads(l) for l in read_lines(log_path)]
    except FileNotFoundError:
        return []


NODE_PEER = ROOT / "tests" / "e2e" / "peers" / "webhook_node_receiver.js"
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"


class NodeReceiver:
    """The official standardwebhooks verifier behind a Node HTTP server."""

    def __init__(self, secrets, public_keys=(), answers=None):
        env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
        self.proc = subprocess.Popen(
            ["node", str(NODE_PEER), json.dumps({"secrets": secrets,
                                                 "public_keys": list(public_keys),
                                                 "answers": answers or {}})],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        first = json.loads(self.proc.stdout.readline() or "{}")
        if "listening" not in first:
            self.proc.kill()
            pytest.fail(f"node receiver did not start: {self.proc.stderr.read()}",
                        pytrace=False)
        self.port = first["listening"]

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def lines(self, n):
        return [json.loads(self.proc.stdout.readline()) for _ in range(n)]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def node_receiver():
    """start(secrets, public_keys=(), answers=None) -> a NodeReceiver, closed after the test."""
    started = []

    def start(secrets, public_keys=(), answers=None):
        if not (NODE_MODULES / "standardwebhooks").is_dir():
            pytest.fail(f"{NODE_MODULES}/standardwebhooks missing: run `make deps`",
                        pytrace=False)
        r = NodeReceiver(secrets, public_keys, answers)
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


# --------------------------------------------------------------------------
# an installed tree, once per session (install_helpers.py)
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def install_build(tmp_path_factory):
    """A build folder of the tests' own, built with the default PREFIX."""
    from install_helpers import make
    b = tmp_path_factory.mktemp("build")
    make(b, "all")
    return b


@pytest.fixture(scope="session")
def install_stage(install_build, tmp_path_factory):
    """`make install DESTDIR=<stage> PREFIX=/usr` from install_build."""
    from install_helpers import make_install
    s = tmp_path_factory.mktemp("stage")
    make_install(install_build, s, "/usr")
    return s
