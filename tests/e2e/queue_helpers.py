"""
Real queue peers for the queue sinks' end-to-end tests and benchmark:

- RabbitBroker: a throwaway rabbitmq-server (Debian's) on free ports with
  its own data folder, Erlang cookie ($HOME) and epmd, started and stopped
  by us (SIGTERM is a graceful stop, so no rabbitmqctl and no cookie
  sharing are needed). restart() keeps the data folder: durable queues and
  persistent messages survive it, as on a real broker.
- AmqpPeer: tests/e2e/peers/amqp_peer.c built against rabbitmq-c, to
  declare queues and consume what the sink published.
- Fauxqs: the fauxqs SQS emulator (npm) behind an optional SigV4-checking
  proxy, plus the official @aws-sdk/client-sqs to create queues and read
  messages back (tests/e2e/peers/sqs_*.mjs).
- SilentPeer: a TCP listener that answers nothing and counts who connected,
  to prove that `switchyard check` (check_config) contacts no peer and that
  a sink connects on its first delivery.

Every wait polls a condition against a deadline; nothing sleeps blindly.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, ROOT, cli, free_ports, wait_until, write_config

PEERS = ROOT / "tests" / "e2e" / "peers"
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
NODE_ENV = dict(os.environ, NODE_NO_WARNINGS="1")


def _tcp_amqp_ready(port):
    """True when something on port answers the AMQP 0-9-1 header with connection.start."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            s.settimeout(2)
            return s.recv(1)[:1] == b"\x01"  # a method frame
    except OSError:
        return False


class RabbitBroker:
    """One RabbitMQ node of our own; see the module docstring."""

    USER = "sytest"
    PASSWORD = "Pw-9f3kQ7zR2xL"

    def __init__(self, base):
        self.base = Path(base)
        self.proc = None
        self.epmd = None
        self.starts = 0

    def _env(self):
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        conf = self.base / "rabbitmq.conf"
        # A user of our own with a password no other text contains, so tests
        # can check it never reaches a log. Nothing listens beyond loopback.
        conf.write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
                        f"default_user = {self.USER}\n"
                        f"default_pass = {self.PASSWORD}\n"
                        "log.console = false\n")
        plugins = self.base / "enabled_plugins"
        plugins.write_text("[].\n")
        return dict(os.environ,
                    HOME=str(home),
                    RABBITMQ_NODENAME=self.node,
                    RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                    RABBITMQ_NODE_PORT=str(self.port),
                    RABBITMQ_DIST_PORT=str(self.dist_port),
                    ERL_EPMD_PORT=str(self.epmd_port),
                    RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
                    RABBITMQ_LOG_BASE=str(self.base / "log"),
                    RABBITMQ_LOGS=str(self.base / "log" / "rabbit.log"),
                    RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
                    RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
                    RABBITMQ_PID_FILE=str(self.base / "rabbit.pid"))

    def start(self, timeout=60):
        if not RABBIT_BIN.exists():
            pytest.skip("rabbitmq-server is not installed (scripts/deps.sh installs it)")
        if self.epmd is None:
            self.port, self.dist_port, self.epmd_port = free_ports(3)
            self.node = f"sytest{os.getpid()}@localhost"
            self.env = self._env()
            self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port)], env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.out = open(self.base / "server.out", "ab")
        self.proc = subprocess.Popen([str(RABBIT_BIN)], env=self.env, stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.starts += 1

        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"rabbitmq-server exited with {self.proc.returncode}:\n"
                            f"{self.log_tail()}", pytrace=False)
            return _tcp_amqp_ready(self.port)
        wait_until(up, timeout=timeout, interval=0.1, what="rabbitmq-server to accept AMQP",
                   on_timeout=self.log_tail)
        return self

    def stop(self, timeout=30, kill=False):
        """Graceful stop (SIGTERM: the node closes connections, flushes queues and exits),
        or kill=True: SIGKILL, a crash; only what the broker had confirmed is on disk."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        self.stop()
        if self.epmd and self.epmd.poll() is None:
            self.epmd.kill()
            self.epmd.wait()
        self.epmd = None

    def log_tail(self):
        try:
            return (self.base / "server.out").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    @property
    def url(self):
        return f"amqp://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/"


class SilentPeer:
    """
    A listener on a free loopback port that accepts nobody: the kernel
    completes each TCP handshake and keeps the connection in the backlog
    (also once the other side closed it), where connections() counts it.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.accepted = []

    def connections(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except BlockingIOError:
                return len(self.accepted)

    def close(self):
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def silent_peer():
    p = SilentPeer()
    yield p
    p.close()


def check_config(conf_dir, sinks, endpoints):
    """Writes a config folder with these sinks and endpoints and runs `switchyard check` on it."""
    (port,) = free_ports(1)
    core = {"plugin_dir": str(PLUGIN_DIR), "ingress": [{"type": "pull",
                                                       "bind": f"tcp://127.0.0.1:{port}"}]}
    write_config(conf_dir, core, sinks, endpoints)
    return cli("check", "-c", conf_dir)


def build_c_peer(src, out_dir, libs):
    """Compiles one tests/e2e/peers C file; returns the binary's path."""
    out = Path(out_dir) / Path(src).stem
    r = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-o", str(out), str(src),
                        *libs], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot build {src}:\n{r.stderr}", pytrace=False)
    return out


class AmqpPeer:
    def __init__(self, binary, broker):
        self.bin = str(binary)
        self.broker = broker

    def _run(self, *args, timeout=120):
        env = dict(os.environ, AMQP_USER=self.broker.USER, AMQP_PASSWORD=self.broker.PASSWORD)
        r = subprocess.run([self.bin, "127.0.0.1", str(self.broker.port), *map(str, args)],
                           capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            pytest.fail(f"amqp_peer {' '.join(map(str, args))}: {r.stderr}", pytrace=False)
        return r.stdout

    def declare(self, queue, exchange="amq.topic", binding="#", max_length=None):
        """A durable queue bound to exchange; with max_length, the broker nacks
        publishes once it holds that many messages (x-overflow reject-publish)."""
        self._run("declare", queue, exchange, binding,
                  *([max_length] if max_length is not None else []))

    def count(self, queue):
        return json.loads(self._run("count", queue))["messages"]

    def consume(self, queue, count, idle_ms=3000):
        """Up to count messages (dicts, body as bytes under "body"), acked."""
        lines = self._run("consume", queue, count, idle_ms).splitlines()
        msgs = [json.loads(l) for l in lines]
        assert msgs and msgs[-1].get("done"), lines[-1:]
        out = msgs[:-1]
        for m in out:
            m["body"] = bytes.fromhex(m.pop("body_hex"))
        return out

    def publish_ceiling(self, count, size, window, routing_key="bench.ceiling", sink_props=False):
        """The broker's ceiling with confirms; sink_props: messages carry the
        properties and headers the amqp sink sets."""
        return json.loads(self._run("publish", "amq.topic", routing_key, count, size, window,
                                    *(["sink"] if sink_props else []), timeout=600))


class Fauxqs:
    """The SQS emulator, with a SigV4-verifying proxy in front of it."""

    KEY_ID = "AKIDSWITCHYARDTEST"
    SECRET = "sy-test-secret/with+odd=chars"

    def __init__(self, base):
        self.base = Path(base)
        self.proc = None

    def start(self, timeout=30):
        if not shutil.which("node"):
            pytest.skip("node is not installed (scripts/deps.sh installs it)")
        if not (ROOT / "tests/node/node_modules/fauxqs").exists():
            pytest.skip("tests/node/node_modules is missing (scripts/deps.sh runs npm ci)")
        self.port, self.verify_port = free_ports(2)
        self.log = open(self.base / "fauxqs.out", "wb")
        self.proc = subprocess.Popen(["node", str(PEERS / "sqs_server.mjs"), str(self.port),
                                      str(self.verify_port), self.KEY_ID, self.SECRET],
                                     env=NODE_ENV, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

        def up():
            if self.proc.poll() is not None:
                pytest.fail(f"fauxqs exited: {self.log_tail()}", pytrace=False)
            return "verifying" in self.log_tail()
        wait_until(up, timeout=timeout, what="fauxqs to listen", on_timeout=self.log_tail)
        return self

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self):
        try:
            return (self.base / "fauxqs.out").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    @property
    def endpoint(self):
        """Where the sink sends: the verifying proxy."""
        return f"http://127.0.0.1:{self.verify_port}"

    def _client(self, *args, timeout=120):
        r = subprocess.run(["node", str(PEERS / "sqs_client.mjs"), f"http://127.0.0.1:{self.port}",
                            *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           env=NODE_ENV)
        if r.returncode != 0:
            pytest.fail(f"sqs_client {' '.join(map(str, args))}: {r.stderr[-2000:]}", pytrace=False)
        return r.stdout

    def create_queue(self, name, attributes=None):
        args = ["create", name] + ([json.dumps(attributes)] if attributes else [])
        return self._client(*args).strip()

    def drain(self, queue_url, count, idle_s=3):
        lines = [json.loads(l) for l in self._client("drain", queue_url, count, idle_s).splitlines()]
        assert lines and lines[-1].get("done")
        return lines[:-1]

    def sigcheck(self):
        import urllib.request
        with urllib.request.urlopen(f"{self.endpoint}/sigcheck", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture(scope="session")
def rabbit():
    """A running RabbitMQ node for the whole session."""
    base = Path(tempfile.mkdtemp(prefix="sy-rabbit-"))
    broker = RabbitBroker(base)
    try:
        broker.start()
        yield broker
    finally:
        broker.close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def amqp_peer(rabbit, tmp_path_factory):
    binary = build_c_peer(PEERS / "amqp_peer.c", tmp_path_factory.mktemp("peers"), ["-lrabbitmq"])
    return AmqpPeer(binary, rabbit)


@pytest.fixture(scope="session")
def fauxqs(tmp_path_factory):
    f = Fauxqs(tmp_path_factory.mktemp("fauxqs"))
    try:
        f.start()
        yield f
    finally:
        f.close()


def plugin(name):
    """Path of a built sink plugin, as a sink's "plugin" value (contains '/')."""
    from conftest import PLUGIN_DIR
    p = PLUGIN_DIR / f"{name}.so"
    if not p.exists():
        pytest.fail(f"{p} is missing: run `make all`", pytrace=False)
    return str(p)


# A retry policy for tests: quick, and patient enough to ride out a broker restart.
FAST_RETRY = {"schedule": ["200ms", "500ms", "1s"], "max_age": "2m"}
