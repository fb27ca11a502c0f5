"""
Helpers for the cluster end-to-end tests (test_cluster.py): several real
switchyard processes sharing one database on a real PostgreSQL
(pg_helpers.py), each with its node id, ack ingress and outputs of its
own; a publisher whose DEALER connects to every node (ZeroMQ spreads the
events), also in a process of its own (Publisher); readers of the
partitions table and of each node's deliveries.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import zmq

from durability_helpers import AckClient, SpoolDaemon
from pg_helpers import PgSpool, fresh_db

__all__ = ["ClusterNode", "Cluster", "MultiAck", "read_ids", "partition_owners", "fnv_part"]


class ClusterNode(SpoolDaemon):
    """A SpoolDaemon on a shared database, as node `name` of the cluster."""

    def __init__(self, tmp, name, server, db, conninfo, sinks, endpoints, lease="3s",
                 core=None):
        super().__init__(tmp, sinks, endpoints, core)
        self.name = name
        self.core_extra = {"spool": None,
                           "store": {"type": "postgres", "conninfo": conninfo},
                           "cluster": {"node_id": name, "lease_timeout": lease},
                           **(core or {})}
        self.spool = PgSpool(server, db)


class Cluster:
    """N nodes on one fresh database; node i is named n<i+1>."""

    def __init__(self, tmp, server, n, sinks_of, endpoints, lease="3s", core=None):
        self.server = server
        self.db, self.conninfo = fresh_db(server, "cl")
        self.lease = lease
        self.nodes = [ClusterNode(Path(tmp) / f"n{i + 1}", f"n{i + 1}", server, self.db,
                                  self.conninfo, sinks_of(f"n{i + 1}"), endpoints, lease, core)
                      for i in range(n)]
        self.spool = PgSpool(server, self.db)

    def start(self):
        for node in self.nodes:
            node.start()
        return self

    def alive(self):
        return [n for n in self.nodes if n.alive()]

    def stop(self):
        for n in self.nodes:
            if n.alive():
                rc = n.stop()
                assert rc == 0, f"{n.name} exited with {rc}; log:\n{n.log()[-3000:]}"

    def query(self, sql):
        return self.server.query(self.db, sql)


def partition_owners(cl):
    """{node id: partitions held under a valid lease} as the database sees it now."""
    rows = cl.query("SELECT owner, count(*) AS n FROM partitions WHERE owner IS NOT NULL "
                    "AND expires_at > now() GROUP BY owner")
    return {r["owner"]: r["n"] for r in rows}


class MultiAck(AckClient):
    """An AckClient whose DEALER connects to every node (and only queues to live ones)."""

    def __init__(self, addrs):
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.DEALER)
        for opt, v in ((zmq.LINGER, 0), (zmq.SNDHWM, 0), (zmq.RCVHWM, 0), (zmq.IMMEDIATE, 1)):
            self.s.setsockopt(opt, v)
        for a in addrs:
            self.s.connect(a)


class Publisher:
    """
    MultiAck.publish_all in a child process (ack_publisher.py), so a libzmq
    abort under load fails the test that saw it, with the child's stderr,
    rather than killing the pytest process.
    """

    def __init__(self, folder, addrs, items, window=500, resend_after=1.0, deadline=240):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.acked_path, self.result_path = folder / "acked.txt", folder / "answers.json"
        self.stderr_path = folder / "publisher.stderr"
        spec = {"addrs": list(addrs), "items": [[i, b.decode()] for i, b in items],
                "window": window, "resend_after": resend_after, "deadline": deadline,
                "acked": str(self.acked_path), "result": str(self.result_path)}
        (folder / "publisher.json").write_text(json.dumps(spec))
        self.acked_path.write_text("")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("ack_publisher.py")),
             str(folder / "publisher.json")], stdout=subprocess.DEVNULL, stderr=self._err)

    def acked(self):
        """How many events have had an answer so far."""
        return self.acked_path.read_bytes().count(b"\n")

    def alive(self):
        return self.proc.poll() is None

    def answers(self, timeout):
        """Waits for the child; its {event_id: [answers]}, or the test fails with its stderr."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the publisher did not finish within {timeout} s", pytrace=False)
        self._err.close()
        if rc != 0:
            pytest.fail(f"the publisher process exited with {rc}:\n"
                        f"{self.stderr_path.read_text(errors='replace')[-4000:]}", pytrace=False)
        return json.loads(self.result_path.read_text())

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def read_ids(path):
    """event_id of every complete line of a file sink's output (a node killed mid-line
    may leave a torn last line: it was not delivered)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    ids = []
    for line in data.split(b"\n")[:-1]:
        ids.append(json.loads(line)["event_id"])
    return ids


def fnv_part(endpoint):
    """cluster_part() of core/cluster.c: FNV-1a 64 of the id, modulo 256."""
    h = 1469598103934665603
    for b in endpoint.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h % 256
