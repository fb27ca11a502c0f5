"""
Helpers for the admin API's endpoint tests (test_epapi_*.py): requests with
JSON bodies and any token, a daemon with a webhook sink that may reach the
loopback receivers, and signature checks with the official standardwebhooks
npm package. Builds on test_ops_helpers (OpsDaemon, the ops_daemon fixture).
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT
from test_ops_helpers import TOKEN, Resp, file_sink

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Answer, Receiver  # noqa: E402,F401 (Answer: for the tests)

NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
SW_VERIFY = Path(__file__).resolve().parent / "peers" / "sw_verify.js"

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(d, method, path, body=None, token=TOKEN, ctype="application/json", raw=None,
         timeout=30.0):
    """
    One request to d's admin API. body: a value sent as JSON; raw: bytes sent
    as they are; ctype: the Content-Type (None: none). Returns Resp.
    """
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if data is not None and ctype is not None:
        headers["Content-Type"] = ctype
    if data is None and method in ("POST", "PUT", "PATCH"):
        data = b""
    req = urllib.request.Request(d.base + path, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.headers, e.read())


def ok(r, status=200):
    """Asserts r has status with a JSON body; returns the body."""
    assert r.status == status, r
    return r.json()


def refused(r, status, error, path=None):
    """Asserts r is status with exactly {"error": error} (and "path" when given)."""
    assert r.status == status, r
    want = {"error": error}
    if path is not None:
        want["path"] = path
    assert r.json() == want, r


@pytest.fixture
def receiver():
    """A loopback webhook receiver (peers/webhook_receiver.py), closed after the test."""
    r = Receiver()
    yield r
    r.close()


def hooks_sink(**extra):
    """A webhook sink instance that may reach the tests' loopback receivers."""
    return {"plugin": "webhook", "allow_private_networks": True, "timeout": "5s", **extra}


def epapi_daemon(ops_daemon, tmp_path, endpoints=None, core=None, **kw):
    """An ops daemon with sinks "hooks" (webhook) and "files" (file), spool and admin API."""
    sinks = {"hooks": hooks_sink(), "files": file_sink(tmp_path / "files.jsonl")}
    return ops_daemon(sinks=sinks, endpoints=endpoints if endpoints is not None else {},
                      core=core, **kw)


def sw_verify(checks):
    """
    Runs the official standardwebhooks verifier over checks: a list of
    (secret, request) with request a webhook_receiver.Request signed with
    svix-* or webhook-* headers. Returns "ok" or the verifier's message for each.
    """
    if not (NODE_MODULES / "standardwebhooks").is_dir():
        pytest.fail(f"{NODE_MODULES}/standardwebhooks missing: run `make deps`", pytrace=False)
    items = []
    for secret, req in checks:
        p = "svix" if "svix-id" in req.headers else "webhook"
        items.append({"secret": secret, "id": req.headers[f"{p}-id"],
                      "timestamp": req.headers[f"{p}-timestamp"],
                      "signature": req.headers[f"{p}-signature"],
                      "body": req.body.decode()})
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    r = subprocess.run(["node", str(SW_VERIFY)], input=json.dumps(items).encode(),
                       capture_output=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout)


__all__ = ["call", "ok", "refused", "hooks_sink", "epapi_daemon", "sw_verify"]
