"""
Helpers for the cluster end-to-end tests (test_cluster.py): several real
switchyard processes sharing one database on a real PostgreSQL
(pg_helpers.py), each with its node id, ack ingress and outputs of its
own; a publisher whose DEALER connects to every node (ZeroMQ spreads the
events); readers of the partitions table and of each node's deliveries.
"""

import json
from pathlib import Path

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
