"""
A scriptable HTTP receiver for the webhook and form sink tests, plus the
signature check receivers write from providers' docs.

Receiver() listens on 127.0.0.1, a free port, in a background thread
(HTTP/1.1, keep-alive, so connection reuse is exercised). Each request is
recorded with its arrival and completion times (time.monotonic(), and the
wall clock), method, path, query, headers (lower-case names), raw body and
the peer's address and port. seq_arrive and seq_done number arrivals and
answers on one counter, so tests can tell what was answered while another
request was still open without comparing times. The answer comes from a
per-path script: a list of Answer, used in order; once it runs out, the
default answer applies.

A request is recorded once its answer has been sent, so the daemon may act
on an answer (count it, settle the delivery) before the record exists.
got() therefore first waits for the answers already being written to be
recorded: whatever the daemon did after reading an answer, the request it
answered is in got() when the test looks.
"""

import base64
import hashlib
import hmac
import http.server
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before answering
    gate: threading.Event = None  # when set: answer only once the test sets it


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    t_arrive: float  # monotonic, when the request head was read
    t_done: float    # monotonic, when the answer was sent
    wall: float      # time.time() at arrival
    status: int      # what was answered
    client: str      # the peer's address
    client_port: int # and port: the same port means the same (reused) connection
    seq_arrive: int = 0  # the receiver's event counter when the head was read
    seq_done: int = 0    # and when the answer was sent


class Receiver:
    """
    tls: None for plain HTTP, or (certfile, keyfile, client_ca): serve HTTPS
    with that certificate, and when client_ca is set require a client
    certificate signed by it (mutual TLS). connect_delay: seconds each new
    connection waits before its first request is read, as behind a slow
    connection set-up (a far peer, a TLS handshake); requests on a kept-alive
    connection are read at once. port: 0 for a free one, or the port of a
    receiver that was closed (a receiver restart).
    """

    def __init__(self, script=None, default=None, tls=None, connect_delay=0.0, port=0):
        self.script = {p: list(a) for p, a in (script or {}).items()}
        self.default = default or Answer()
        self.requests = []
        self.arrived = []  # (seq, path) of every request head read, answered or not
        self.seq = 0
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.hold = threading.Event()  # set at close: answers that wait give up
        self.conns = set()  # open connections, for kill()
        self.answering = set()  # ids of answers being written, not yet recorded
        self.answers_started = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with outer.lock:
                    outer.conns.add(self.connection)
                if connect_delay:
                    outer.hold.wait(connect_delay)

            def _serve(self):
                t0, wall = time.monotonic(), time.time()
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                with outer.cond:
                    outer.seq += 1
                    seq_arrive = outer.seq
                    outer.arrived.append((seq_arrive, u.path))
                    outer.cond.notify_all()
                    queue = outer.script.get(u.path)
                    ans = queue.pop(0) if queue else outer.default
                    if callable(ans):
                        ans = ans(body, {k.lower(): v for k, v in self.headers.items()})
                if ans.delay:
                    outer.hold.wait(ans.delay)
                while ans.gate and not ans.gate.wait(0.05) and not outer.hold.is_set():
                    pass
                with outer.cond:
                    outer.answers_started += 1
                    me = outer.answers_started
                    outer.answering.add(me)
                try:
                    self.send_response(ans.status)
                    for k, v in ans.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(ans.body)))
                    self.end_headers()
                    self.wfile.write(ans.body)
                    self.wfile.flush()
                except OSError:
                    pass  # the client gave up (a timeout test)
                req = Request(self.command, u.path, urllib.parse.parse_qs(u.query),
                              {k.lower(): v for k, v in self.headers.items()}, body, t0,
                              time.monotonic(), wall, ans.status, self.client_address[0],
                              self.client_address[1])
                with outer.cond:
                    outer.seq += 1
                    req.seq_arrive, req.seq_done = seq_arrive, outer.seq
                    outer.requests.append(req)
                    outer.answering.discard(me)
                    outer.cond.notify_all()

            def finish(self):
                with outer.lock:
                    outer.conns.discard(self.connection)
                super().finish()

            do_POST = _serve
            do_GET = _serve

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 1024  # many connections at once are accepted, not retried

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            certfile, keyfile, client_ca = tls
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certfile, keyfile)
            if client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(client_ca)
            # The handshake happens in the handler thread, not in accept().
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path="/hook", host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}{path}"

    def on(self, path, *answers):
        """Adds answers for path (used in order, then the default)."""
        with self.lock:
            self.script.setdefault(path, []).extend(answers)
        return self

    def got(self, path=None, timeout=10.0):
        """The requests (to path) answered so far, including every answer that was
        already being written when got() was called."""
        with self.cond:
            started = set(self.answering)
            self.cond.wait_for(lambda: not (started & self.answering), timeout)
            return [r for r in self.requests if path is None or r.path == path]

    def wait(self, n, path=None, timeout=30.0):
        """Waits until at least n requests (to path) were answered; returns them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [r for r in self.requests if path is None or r.path == path]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: {len(got)} of {n} requests to "
                                         f"{path or 'any path'} after {timeout}s")
                self.cond.wait(left)

    def wait_arrived(self, n, path, timeout=30.0):
        """Waits until at least n requests to path arrived, answered or not."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for _, p in self.arrived if p == path) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver: fewer than {n} requests to {path} "
                                         f"arrived after {timeout}s")
                self.cond.wait(left)

    def close(self):
        """Stops listening; connections already open are still served."""
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    def kill(self):
        """Like the receiver's process dying: the open connections are cut too."""
        self.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def verify_like_the_docs(secret, headers, body, prefix="svix", tolerance=300, now=None):
    """
    The check a receiver writes from a provider's docs: raw body, HMAC-SHA256
    over "id.timestamp.body" with the base64-decoded secret after whsec_,
    timestamp within 300 s, any of the space-separated v1 signatures
    matching (compared in constant time). Returns the id; raises ValueError.
    """
    msg_id = headers[f"{prefix}-id"]
    ts = headers[f"{prefix}-timestamp"]
    sigs = headers[f"{prefix}-signature"]
    now = time.time() if now is None else now
    if abs(now - int(ts)) > tolerance:
        raise ValueError(f"timestamp {ts} outside tolerance")
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(mac).decode()
    for s in sigs.split(" "):
        version, _, sig = s.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return msg_id
    raise ValueError("no matching signature")
