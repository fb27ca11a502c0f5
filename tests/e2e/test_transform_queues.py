"""
Lua transformations with the queue sinks (docs/TRANSFORMS.md, "What each
sink does with it"), through their batch paths (submit_batch): the route
replaces the zmq topic, the AMQP routing key and the SQS FIFO message
group; AMQP also takes the content type and the headers.
"""

import json

import zmq

from conftest import event, free_ports
from queue_helpers import Fauxqs, amqp_peer, fauxqs, rabbit  # noqa: F401 (fixtures)

# Failed jobs: a JSON body, a route and a header; the others: plain text.
SCRIPT = """
function transform(e)
  if e.data.status == "failed" then
    return {job = e.data.job_id, org = e.org_id},
           {route = "alerts." .. e.org_id, headers = {["x-job-id"] = e.data.job_id}}
  end
  return "ok " .. e.event_id, "text/plain"
end
"""


def script(tmp_path):
    p = tmp_path / "route.lua"
    p.write_text(SCRIPT)
    return str(p)


def jobs(n):
    """n job events, every third one failed, all of org acme."""
    return [event(f"e-{i}", data={"job_id": f"j{i}", "status": "failed" if i % 3 == 0 else "ok"})
            for i in range(n)]


def test_zmq_topic_is_the_route(switchyard, tmp_path):
    (port,) = free_ports(1)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(f"tcp://127.0.0.1:{port}")
    try:
        d = switchyard(sinks={"fwd": {"plugin": "zmq", "connect": f"tcp://127.0.0.1:{port}"}},
                       endpoints={"z": {"sink": "fwd", "transform": script(tmp_path)}})
        d.push(jobs(30))
        got = []
        while len(got) < 30 and pull.poll(30000):
            got.append(pull.recv_multipart())
        assert sorted(got) == sorted(
            [[b"alerts.acme", json.dumps({"job": f"j{i}", "org": "acme"},
                                         separators=(",", ":")).encode()]
             if i % 3 == 0 else [b"job.completed", f"ok e-{i}".encode()] for i in range(30)])
        d.wait_for("deliveries.ok", 30)
    finally:
        pull.close(0)
        ctx.term()


def test_amqp_routing_key_content_type_and_headers(switchyard, rabbit, amqp_peer,  # noqa: F811
                                                  tmp_path):
    amqp_peer.declare("tf_alerts", "amq.topic", "alerts.#")
    amqp_peer.declare("tf_jobs", "amq.topic", "tfjobs.#")
    d = switchyard(sinks={"rmq": {"plugin": "amqp", "url": rabbit.url,
                                  "routing_key": "tfjobs.{event_type}"}},
                   endpoints={"q": {"sink": "rmq", "transform": script(tmp_path)}})
    d.push(jobs(30))
    d.wait_for("deliveries.ok", 30)
    alerts = amqp_peer.consume("tf_alerts", 10)
    assert sorted((m["message_id"], m["routing_key"], m["content_type"], m["body"],
                   tuple(sorted(m["headers"].items()))) for m in alerts) == sorted(
        (f"e-{i}", "alerts.acme", "application/json",
         json.dumps({"job": f"j{i}", "org": "acme"}, separators=(",", ":")).encode(),
         (("event_type", "job.completed"), ("org_id", "acme"), ("x-job-id", f"j{i}")))
        for i in range(0, 30, 3))
    rest = amqp_peer.consume("tf_jobs", 20)
    assert sorted((m["message_id"], m["routing_key"], m["content_type"], m["body"],
                   tuple(sorted(m["headers"].items()))) for m in rest) == sorted(
        (f"e-{i}", "tfjobs.job.completed", "text/plain", f"ok e-{i}".encode(),
         (("event_type", "job.completed"), ("org_id", "acme")))
        for i in range(30) if i % 3)


def test_sqs_fifo_group_is_the_route(switchyard, fauxqs, tmp_path):  # noqa: F811
    url = fauxqs.create_queue("tf1.fifo", {"FifoQueue": "true"})
    sink = {"plugin": "sqs", "queue_url": url, "endpoint_url": fauxqs.endpoint,
            "region": "us-east-1", "access_key_id": Fauxqs.KEY_ID,
            "secret_access_key": Fauxqs.SECRET, "message_group_id": "{event_type}"}
    d = switchyard(sinks={"sq": sink}, endpoints={"q": {"sink": "sq", "transform": script(tmp_path)}})
    d.push(jobs(30))
    d.wait_for("deliveries.ok", 30)
    got = fauxqs.drain(url, 30)
    assert sorted((m["dedup"], m["group"], m["body"]) for m in got) == sorted(
        (f"e-{i}", "alerts.acme", json.dumps({"job": f"j{i}", "org": "acme"},
                                             separators=(",", ":")))
        if i % 3 == 0 else (f"e-{i}", "job.completed", f"ok e-{i}") for i in range(30))
