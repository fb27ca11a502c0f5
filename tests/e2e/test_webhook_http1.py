"""
Plain http:// receivers that speak HTTP/1.1 the less common ways, against
the transport's own HTTP/1.1 client (plugins/_http/http_h1.c): a raw
socket server here decides every byte of its answers.

- keep-alive connections the receiver drops after taking a request, without
  a word (its keep-alive timeout crossing our request): the request goes
  again on a new connection, and no attempt fails;
- answers framed every way: Content-Length, chunked with extensions and
  trailers, read-to-close, after a 100 Continue and a 103 Early Hints;
- a receiver that answers HTTP/1.0 and closes.
"""

import socket
import threading
import time

from conftest import event, wait_until

S1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class RawReceiver:
    """
    A loopback HTTP server on raw sockets. answer(n, conn_index) returns the
    bytes to send for the n-th request overall (on the conn_index-th request
    of its connection), or None to close the connection without answering.
    """

    def __init__(self, answer):
        self.answer = answer
        self.lock = threading.Lock()
        self.requests = []      # (connection number, request number on it, event id)
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                k = self.connections
            threading.Thread(target=self._serve, args=(c, k), daemon=True).start()

    def _read_request(self, c, buf):
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(65536)
            if not chunk:
                return None, buf
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = c.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        return (head, rest[:length]), rest[length:]

    def _serve(self, c, k):
        buf = b""
        on_conn = 0
        with c:
            while True:
                req, buf = self._read_request(c, buf)
                if req is None:
                    return
                on_conn += 1
                body = req[1]
                eid = body.split(b'"event_id":"', 1)[1].split(b'"', 1)[0].decode()
                with self.lock:
                    self.requests.append((k, on_conn, eid))
                    n = len(self.requests)
                out = self.answer(n, on_conn)
                if out is None:
                    return
                c.sendall(out)
                if b"Connection: close" in out or out.startswith(b"HTTP/1.0"):
                    return

    def close(self):
        self.stopping = True
        self.sock.close()


def hooks():
    return {"hooks": {"plugin": "webhook", "allow_private_networks": True, "threads": 1}}


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_dropped_keep_alive_connections_are_retried_on_new_ones(switchyard):
    # Every connection takes two requests and drops on the third, unanswered.
    r = RawReceiver(lambda n, on_conn: None if on_conn == 3 else OK)
    try:
        d = switchyard(sinks=hooks(), endpoints={
            "ep": {"sink": "hooks", "url": r.url("/in"), "secrets": [S1], "concurrency": 1}})
        n = 30
        for i in range(n):
            d.push([event(f"ka-{i}")])
        s = d.wait_stats(lambda s: s["deliveries"]["ok"] == n, f"{n} delivered")
        ep = s["endpoints"]["ep"]
        # The drops cost no attempt: each was sent again at once, on a new connection.
        assert ep["attempts"] == n and ep["failed"] == 0 and s["deliveries"]["retries"] == 0
        with r.lock:
            reqs = list(r.requests)
        dropped = [x for x in reqs if x[1] == 3]
        assert len(dropped) >= 9
        # Each dropped request came again as the first of a new connection.
        for conn, _, eid in dropped:
            again = [x for x in reqs if x[2] == eid and x[0] != conn]
            assert len(again) == 1 and again[0][1] == 1, (eid, reqs)
        assert len(reqs) == n + len(dropped)
    finally:
        r.close()


def test_a_connection_dropped_twice_is_one_failed_attempt(switchyard):
    # A new connection dropped as well: the request is not sent a third time.
    r = RawReceiver(lambda n, on_conn: OK if n == 1 else None)
    try:
        d = switchyard(sinks=hooks(), endpoints={
            "ep": {"sink": "hooks", "url": r.url("/in"), "secrets": [S1], "concurrency": 1,
                   "retry": {"schedule": ["1h"]}}}, core={"log_level": "debug"})
        d.push([event("first")])
        d.wait_stats(lambda s: s["deliveries"]["ok"] == 1, "the first delivered")
        d.push([event("second")])
        s = d.wait_stats(lambda s: s["endpoints"]["ep"]["attempts_retry"] == 1,
                         "the second attempt to be retried")
        assert s["endpoints"]["ep"]["attempts"] == 2 and s["sinks"]["hooks"]["transport_errors"] == 1
        with r.lock:
            reqs = list(r.requests)
        assert [x[2] for x in reqs] == ["first", "second", "second"]
        assert reqs[2][1] == 1  # the retry went on a new connection
        wait_until(lambda: "error: Empty reply from server" in d.log(),
                   what="the failure logged", on_timeout=lambda: d.log()[-3000:])
    finally:
        r.close()


ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;x=y\r\nabc\r\n0\r\nTrailer: t\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 202 Accepted\r\nConnection: close\r\n\r\nread to the end",
    b"HTTP/1.0 200 OK\r\n\r\nten four",
]


def test_answers_framed_every_way_are_read_whole(switchyard):
    r = RawReceiver(lambda n, on_conn: ANSWERS[(n - 1) % len(ANSWERS)])
    try:
        d = switchyard(sinks=hooks(), endpoints={
            "ep": {"sink": "hooks", "url": r.url("/in"), "secrets": [S1], "concurrency": 1}})
        n = 3 * len(ANSWERS)
        for i in range(n):
            d.push([event(f"fr-{i}")])
        s = d.wait_stats(lambda s: s["deliveries"]["ok"] == n, f"{n} delivered")
        assert s["endpoints"]["ep"]["attempts"] == n and s["endpoints"]["ep"]["failed"] == 0
        with r.lock:
            reqs = list(r.requests)
        assert len(reqs) == n  # nothing sent twice: every answer was complete where it ended
        # A connection is kept after the framed answers and closed after the other two:
        # per cycle of five, answers 1-4 share one (4 ends it) and 5 has one of its own.
        assert r.connections == 3 * 2, reqs
    finally:
        r.close()
