"""
Lua transformations (docs/TRANSFORMS.md) with the real daemon: what the
sink delivers is what the script returned; nil drops the delivery
(counted as filtered, not failed); scripts that loop, allocate without
end, reach for os or io, throw, or return what cannot be delivered fail
their own delivery with the Lua message and nothing else; `check`
reports syntax errors as file:line; SIGHUP picks up an edited script.
"""

import json
import signal
import subprocess
import sys
from pathlib import Path

from conftest import BIN, PLUGIN_DIR, event, get, read_lines, wait_until, write_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Receiver, verify_like_the_docs  # noqa: E402

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def sinks(tmp):
    return {"files": {"plugin": "file", "path": str(tmp / "out.jsonl"), "fsync": "never"},
            "failed": {"plugin": "file", "path": str(tmp / "failed.jsonl"), "fsync": "never"}}


def script(tmp, name, text):
    p = tmp / name
    p.write_text(text)
    return str(p)


def endpoints(path, **extra):
    """The transformed endpoint, plus one that keeps the delivery_failed events."""
    return {"t": {"sink": "files", "transform": path, "enabled_events": ["job.completed"],
                  **extra},
            "failures": {"sink": "failed", "enabled_events": ["webhook.delivery_failed"]}}


def lines(path):
    try:
        return [json.loads(l) for l in read_lines(path)]
    except FileNotFoundError:
        return []


def failures(tmp, n):
    """The data of the first n delivery_failed events, by event id."""
    got = wait_until(lambda: len(lines(tmp / "failed.jsonl")) >= n and lines(tmp / "failed.jsonl"),
                     what=f"{n} delivery_failed events")
    assert len(got) == n, got
    return {e["data"]["event_id"]: e["data"] for e in got}


def job(i, **data):
    return event(f"e-{i}", data={"job_id": f"j{i}", "status": "succeeded", **data})


SLACK = """
-- A Slack incoming-webhook message from a job event.
local icons = {succeeded = ":white_check_mark:", failed = ":x:"}
function transform(event)
  local d = event.data
  return {
    text = string.format("%s Job %s %s", icons[d.status] or ":grey_question:", d.job_id, d.status),
    blocks = {
      {type = "section", text = {type = "mrkdwn", text = "*" .. d.job_id .. "* " .. d.status}},
      {type = "context", elements = {{type = "mrkdwn", text = "org " .. event.org_id}}},
    },
  }
end
"""


def test_reshapes_an_event_into_a_slack_message(switchyard, tmp_path):
    d = switchyard(sinks=sinks(tmp_path), endpoints=endpoints(script(tmp_path, "slack.lua", SLACK)))
    d.push([job(1), job(2, status="failed")])
    d.wait_for("deliveries.ok", 2)
    assert read_lines(tmp_path / "out.jsonl") == [
        b'{"blocks":[{"text":{"text":"*j1* succeeded","type":"mrkdwn"},"type":"section"},'
        b'{"elements":[{"text":"org acme","type":"mrkdwn"}],"type":"context"}],'
        b'"text":":white_check_mark: Job j1 succeeded"}',
        b'{"blocks":[{"text":{"text":"*j2* failed","type":"mrkdwn"},"type":"section"},'
        b'{"elements":[{"text":"org acme","type":"mrkdwn"}],"type":"context"}],'
        b'"text":":x: Job j2 failed"}']


def test_the_webhook_signature_covers_the_transformed_body(switchyard, tmp_path):
    r = Receiver()
    try:
        d = switchyard(sinks={"hooks": {"plugin": "webhook", "allow_private_networks": True}},
                       endpoints={"slack": {"sink": "hooks", "url": r.url("/slack"),
                                            "secrets": [SECRET],
                                            "transform": script(tmp_path, "slack.lua", SLACK)}})
        d.push([job(7)])
        (req,) = r.wait(1)
        assert json.loads(req.body)["text"] == ":white_check_mark: Job j7 succeeded"
        assert verify_like_the_docs(SECRET, req.headers, req.body) == "e-7"
    finally:
        r.close()


def test_the_webhook_sends_the_transforms_content_type_and_headers(switchyard, tmp_path):
    """
    A string body goes out with the transform's content type (replacing
    application/json) and its headers beside the endpoint's own; a header
    the signature or the endpoint's configuration sets fails the delivery.
    """
    path = script(tmp_path, "text.lua", """
local extra = {[2] = "X-Team", [3] = "svix-signature"}
function transform(e)
  local n = tonumber(e.data.job_id:sub(2))
  local h = {["X-Job-Id"] = e.data.job_id}
  if extra[n] then h[extra[n]] = "mine" end
  return "job " .. e.data.job_id .. " " .. e.data.status, {content_type = "text/plain", headers = h}
end
""")
    r = Receiver()
    hooks = {"sink": "hooks", "url": r.url("/t"), "secrets": [SECRET], "transform": path,
             "headers": {"X-Team": "ops"}, "enabled_events": ["job.completed"]}
    try:
        d = switchyard(sinks={**sinks(tmp_path),
                              "hooks": {"plugin": "webhook", "allow_private_networks": True}},
                       endpoints={**endpoints(path), "t": hooks})
        d.push([job(1), job(2), job(3)])
        (req,) = r.wait(1)
        assert req.body == b"job j1 succeeded"
        assert (req.headers["content-type"], req.headers["x-job-id"], req.headers["x-team"]) == \
            ("text/plain", "j1", "ops")
        assert verify_like_the_docs(SECRET, req.headers, req.body) == "e-1"
        got = failures(tmp_path, 2)
        assert {k: v["last_detail"] for k, v in got.items()} == {
            "e-2": "transform: header X-Team is set by the endpoint's headers",
            "e-3": "transform: header svix-signature is set by the signature"}
        assert len(r.got()) == 1
    finally:
        r.close()


def test_nil_drops_the_delivery_as_filtered(switchyard, tmp_path):
    path = script(tmp_path, "failed_only.lua", """
function transform(e)
  if e.data.status ~= "failed" then return nil end
  return e.data
end
""")
    d = switchyard(sinks=sinks(tmp_path), endpoints=endpoints(path))
    d.push([job(i, status="failed" if i % 3 == 0 else "succeeded") for i in range(1, 10)])
    s = d.wait_for("deliveries.filtered", 6)
    d.wait_for("deliveries.ok", 3)
    assert [l["job_id"] for l in lines(tmp_path / "out.jsonl")] == ["j3", "j6", "j9"]
    s = d.stats()
    assert get(s, "endpoints.t.filtered") == 6
    assert get(s, "endpoints.t.ok") == 3
    assert get(s, "endpoints.t.dead") == 0
    assert get(s, "endpoints.t.attempts") == 3
    assert get(s, "deliveries.failed") == 0


def fails_with(switchyard, tmp_path, name, text, detail, core=None):
    """The script fails its deliveries with detail; the daemon goes on serving another endpoint."""
    path = script(tmp_path, name, text)
    eps = endpoints(path)
    eps["plain"] = {"sink": "files", "enabled_events": ["other.event"]}
    d = switchyard(sinks=sinks(tmp_path), endpoints=eps, core=core)
    d.push([job(1), job(2)])
    got = failures(tmp_path, 2)
    assert {k: (v["endpoint_id"], v["attempts"], v["last_detail"]) for k, v in got.items()} == {
        "e-1": ("t", 1, detail), "e-2": ("t", 1, detail)}
    d.push([event("o-1", event_type="other.event")])
    d.wait_stats(lambda s: get(s, "endpoints.plain.ok") == 1, "the other endpoint served")
    assert get(d.stats(), "endpoints.t.dead") == 2
    assert get(d.stats(), "deliveries.transform_errors") == 2
    assert d.alive()
    return d


def test_an_infinite_loop_fails_on_its_budget(switchyard, tmp_path):
    fails_with(switchyard, tmp_path, "loop.lua",
               "function transform(e)\n  while true do end\nend\n",
               "transform: loop.lua:2: instruction budget of 100000 exceeded",
               core={"transform_instructions": 100000})


def test_allocating_a_gigabyte_fails_on_the_memory_cap(switchyard, tmp_path):
    fails_with(switchyard, tmp_path, "big.lua",
               "function transform(e)\n  return string.rep('x', 1 << 30)\nend\n",
               "transform: memory limit of 16777216 bytes exceeded",
               core={"transform_memory": "16MiB"})


def test_os_execute_is_not_there(switchyard, tmp_path):
    fails_with(switchyard, tmp_path, "os.lua",
               "function transform(e)\n  os.execute('touch /tmp/pwned')\nend\n",
               "transform: os.lua:2: attempt to index a nil value (global 'os')")


def test_io_open_is_not_there(switchyard, tmp_path):
    fails_with(switchyard, tmp_path, "io.lua",
               "function transform(e)\n  return io.open('/etc/passwd'):read('a')\nend\n",
               "transform: io.lua:2: attempt to index a nil value (global 'io')")


def test_a_value_that_is_neither_table_nor_string_fails(switchyard, tmp_path):
    fails_with(switchyard, tmp_path, "num.lua", "function transform(e) return 42 end\n",
               "transform: transform returned a number; expected a table, a string or nil")


def test_an_error_on_every_tenth_event_fails_only_those(switchyard, tmp_path):
    path = script(tmp_path, "tenth.lua", """
function transform(e)
  if e.data.n % 10 == 0 then error("no tens: " .. e.data.n) end
  return {n = e.data.n}
end
""")
    d = switchyard(sinks=sinks(tmp_path), endpoints=endpoints(path))
    d.push([event(f"e-{n}", data={"n": n}) for n in range(1, 31)])  # job.completed
    got = failures(tmp_path, 3)
    assert {k: v["last_detail"] for k, v in got.items()} == {
        f"e-{n}": f"transform: tenth.lua:3: no tens: {n}" for n in (10, 20, 30)}
    d.wait_for("deliveries.ok", 27 + 3)  # and the three delivery_failed events
    assert [l["n"] for l in lines(tmp_path / "out.jsonl")] == \
        [n for n in range(1, 31) if n % 10]
    s = d.stats()
    assert get(s, "endpoints.t.dead") == 3
    assert get(s, "endpoints.t.breaker_opens") == 0  # never 10 failures in a row


def test_a_script_that_keeps_failing_opens_the_breaker(switchyard, tmp_path):
    path = script(tmp_path, "broken.lua", "function transform(e) error('broken') end\n")
    d = switchyard(sinks=sinks(tmp_path),
                   endpoints=endpoints(path, breaker={"failures": 3, "probe": "1h", "probe_max": "1h"}))
    d.push([job(i) for i in range(1, 7)])
    d.wait_stats(lambda s: get(s, "endpoints.t.breaker_opens") == 1, "the breaker open")
    s = d.wait_stats(lambda s: get(s, "endpoints.t.dead") == 3, "three dead")
    # The rest wait behind the breaker instead of dying one after another.
    assert get(s, "endpoints.t.state") == "breaker_open"
    assert get(s, "endpoints.t.attempts") == 3


def check(conf_dir):
    return subprocess.run([str(BIN), "check", "-c", str(conf_dir)], capture_output=True,
                          text=True, timeout=60)


def test_check_reports_a_syntax_error_as_file_and_line(tmp_path):
    path = script(tmp_path, "bad.lua", "function transform(e)\n  return {a = 1,,}\nend\n")
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull", "bind": "tcp://127.0.0.1:1"}]},
                 sinks(tmp_path), endpoints(path))
    r = check(conf)
    assert r.returncode == 2, r
    assert f"{conf}/30-endpoints.json: endpoints.t.transform: {path}:2: unexpected symbol " \
           f"near ','\n" in r.stderr
    (tmp_path / "bad.lua").write_text("function transform(e) return e end\n")
    r = check(conf)
    assert r.returncode == 0, r.stderr
    assert f"    transform:   {path}\n" in r.stdout


def reload(d, mark_text="reload applied"):
    n = d.log().count(mark_text)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count(mark_text) > n, what="the reload applied",
               on_timeout=lambda: d.log()[-3000:])


def test_reload_picks_up_an_edited_script(switchyard, tmp_path):
    path = script(tmp_path, "v.lua", "function transform(e) return {v = 1, id = e.event_id} end\n")
    d = switchyard(sinks=sinks(tmp_path), endpoints=endpoints(path))
    d.push([job(1)])
    d.wait_for("deliveries.ok", 1)
    (tmp_path / "v.lua").write_text("function transform(e) return {v = 2, id = e.event_id} end\n")
    reload(d)
    d.push([job(2)])
    d.wait_for("deliveries.ok", 2)
    # A broken edit is refused as a whole: the running script stays.
    (tmp_path / "v.lua").write_text("function transform(e) return {v = 3,, } end\n")
    n = d.log().count("reload refused with")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count("reload refused with") > n, what="the reload refused")
    assert f"endpoints.t.transform: {path}:1: unexpected symbol near ','" in d.log()
    d.push([job(3)])
    d.wait_for("deliveries.ok", 3)
    assert lines(tmp_path / "out.jsonl") == [{"id": "e-1", "v": 1}, {"id": "e-2", "v": 2},
                                             {"id": "e-3", "v": 2}]
