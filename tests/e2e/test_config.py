"""
Configuration errors: `switchyard check -c DIR` and `switchyard run -c DIR`
refuse a broken folder with exit code 2 and one exact line per mistake,
`file: path.to.key: message`, and `run` binds nothing before refusing.
Plugins from writable files or folders are refused too.
"""

import os
import shutil
import socket
import stat

import pytest

from conftest import PLUGIN_DIR, cli, free_ports, write_config


def base(tmp, port=None):
    """A valid config (core, sinks, endpoints) to break one piece at a time."""
    port = port or free_ports(1)[0]
    core = {"plugin_dir": str(PLUGIN_DIR),
            "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}],
            "quarantine": str(tmp / "quarantine.jsonl"),
            "stats_file": str(tmp / "stats.json"), "stats_interval": "100ms"}
    sinks = {"files": {"plugin": "file", "path": f"{tmp}/out/{{org_slug}}/{{event_type}}.jsonl",
                       "fsync": "never"}}
    endpoints = {"x": {"sink": "files", "enabled_events": ["job.*"]}}
    return core, sinks, endpoints


def errors_text(*lines):
    n = len(lines)
    return "".join(l + "\n" for l in lines) + \
        f"{n} configuration error{'' if n == 1 else 's'}; not starting\n"


# Each case breaks a valid config: case(core, sinks, endpoints, conf_dir)
# edits the sections in place or writes one file of raw text, and returns
# the exact error lines expected, with {core} {sinks} {endpoints} standing
# for the files 10-core.json, 20-sinks.json and 30-endpoints.json.

def unknown_sink(core, sinks, eps, d):
    eps["x"]["sink"] = "nope"
    return ['{endpoints}: endpoints.x.sink: no sink named "nope" (defined: files)']


def unknown_sink_key(core, sinks, eps, d):
    sinks["files"]["pathh"] = "/tmp/typo.jsonl"
    return ["{sinks}: sinks.files.pathh: unknown key"]


def missing_sink_key(core, sinks, eps, d):
    del sinks["files"]["path"]
    return ["{sinks}: sinks.files.path: required key is missing"]


def bad_retry_name(core, sinks, eps, d):
    eps["x"]["retry"] = "fast"
    return ['{endpoints}: endpoints.x.retry: unknown policy "fast" '
            '(expected standard, legacy or an object)']


def bad_retry_schedule(core, sinks, eps, d):
    eps["x"]["retry"] = {"schedule": ["1s", "5x"]}
    return ['{endpoints}: endpoints.x.retry: schedule[1]: bad duration "5x"']


def bad_sink_retry(core, sinks, eps, d):
    sinks["files"]["retry"] = {"schedule": ["1s"], "base": "1s"}
    return ["{sinks}: sinks.files.retry: schedule and base exclude each other"]


def bad_filter_operator(core, sinks, eps, d):
    eps["x"]["filter"] = {"data.status": {"$foo": ["succeeded"]}}
    return ["{endpoints}: endpoints.x.filter.data.status.$foo: unknown operator"]


def bad_filter_in_arg(core, sinks, eps, d):
    eps["x"]["filter"] = {"data.status": {"$in": "succeeded"}}
    return ["{endpoints}: endpoints.x.filter.data.status.$in: expected an array"]


def bad_event_pattern(core, sinks, eps, d):
    eps["x"]["enabled_events"] = ["job.*", "Job Completed"]
    return ['{endpoints}: endpoints.x.enabled_events[1]: "Job Completed" is not an event type '
            'pattern (job.completed, job.*, *)']


def several_mistakes(core, sinks, eps, d):
    """Every mistake is reported, not only the first."""
    eps["x"]["retry"] = "fast"
    eps["y"] = {"sink": "files", "filter": {"data.n": {"$gt": [1]}}}
    core["workers"] = 0
    return ["{core}: core.workers: must be between 1 and 256",
            '{endpoints}: endpoints.x.retry: unknown policy "fast" '
            "(expected standard, legacy or an object)",
            "{endpoints}: endpoints.y.filter.data.n.$gt: expected a number or a string"]


def unknown_admin_key(core, sinks, eps, d):
    core["admin"] = {"listen": "127.0.0.1:1", "tokn": "0123456789abcdef"}
    return ["{core}: core.admin.tokn: unknown key (expected listen, token, token_file, portal_dir, portal_url, frame_ancestors)"]


def unknown_ingress_key(core, sinks, eps, d):
    core["ingress"][0]["hwm"] = 5
    return ["{core}: core.ingress[0].hwm: unknown key "
            "(expected type, bind, connect, topics, rcvhwm)"]


def unknown_breaker_key(core, sinks, eps, d):
    eps["x"]["breaker"] = {"failure": 3}
    return ["{endpoints}: endpoints.x.breaker.failure: unknown key "
            "(expected failures, probe, probe_max)"]


def core_choice_and_empty_path(core, sinks, eps, d):
    core["spool_sync"] = "fast"
    core["spool"] = ""
    return ["{core}: core.spool: must not be empty",
            '{core}: core.spool_sync: "fast" is not one of "full", "normal"']


def invalid_json_value(core, sinks, eps, d):
    (d / "20-sinks.json").write_text(
        '{\n  "sinks": {\n    "files": {"plugin": "file", "path": tru}\n  }\n}\n')
    return ["{sinks}: not valid JSON near line 3 column 41"]


def invalid_json_trailing(core, sinks, eps, d):
    (d / "20-sinks.json").write_text('{"sinks": {}}\n\n  }\n')
    return ["{sinks}: not valid JSON near line 3 column 3"]


def invalid_json_double_comma(core, sinks, eps, d):
    # The offending character is the second comma at column 17; cJSON's error
    # pointer lands one past it, hence "near".
    (d / "20-sinks.json").write_text(
        '{\n  "sinks": {\n    "files": {},,\n  }\n}\n')
    return ["{sinks}: not valid JSON near line 3 column 18"]


def not_an_object(core, sinks, eps, d):
    (d / "20-sinks.json").write_text('["sinks"]\n')
    return ["{sinks}: expected a JSON object with core, sinks and/or endpoints"]


def plugin_init_bad_fsync(core, sinks, eps, d):
    """Only the plugin can judge this value; `check` must still catch it."""
    sinks["files"]["fsync"] = "sometimes"
    return ['{sinks}: sinks.files.fsync: "sometimes" is not "always", "never" or an '
            'interval ("1s", "250ms")']


def plugin_init_bad_placeholder(core, sinks, eps, d):
    sinks["files"]["path"] = "/tmp/out/{orgslug}.jsonl"
    return ["{sinks}: sinks.files.path: unknown placeholder {orgslug} "
            "(known: {org_slug} {org_id} {event_type} {date} {endpoint_id})"]


CASES = [unknown_sink, unknown_sink_key, missing_sink_key, bad_retry_name, bad_retry_schedule,
         bad_sink_retry, bad_filter_operator, bad_filter_in_arg, bad_event_pattern,
         several_mistakes, unknown_admin_key, unknown_ingress_key, unknown_breaker_key,
         core_choice_and_empty_path, invalid_json_value, invalid_json_trailing, invalid_json_double_comma,
         not_an_object,
         plugin_init_bad_fsync, plugin_init_bad_placeholder]


@pytest.fixture
def good_config(tmp_path):
    d = tmp_path / "conf.d"
    write_config(d, *base(tmp_path))
    return d


def test_check_accepts_the_base_config(good_config):
    r = cli("check", "-c", good_config)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b""
    out = r.stdout.decode()
    assert out.endswith("\nconfiguration OK\n")
    assert "job.*" in out


def build_case(tmp_path, case, port=None):
    """Writes the broken folder; returns (dir, expected stderr)."""
    d = tmp_path / "conf.d"
    d.mkdir(parents=True, exist_ok=True)
    core, sinks, eps = base(tmp_path, port)
    names = {"core": d / "10-core.json", "sinks": d / "20-sinks.json",
             "endpoints": d / "30-endpoints.json"}
    # The case edits the sections or writes a file of raw text itself; the
    # sections it did not write as raw text are written afterwards.
    lines = case(core, sinks, eps, d)
    raw = {k for k, p in names.items() if p.exists()}
    sections = {"core": core, "sinks": sinks, "endpoints": eps}
    write_config(d, **{k: (None if k in raw else v) for k, v in sections.items()})
    files = {k: str(p) for k, p in names.items()}

    def fill(line):
        for k, v in files.items():
            line = line.replace("{%s}" % k, v)
        return line
    return d, errors_text(*map(fill, lines))


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_check_reports_exact_errors(tmp_path, case):
    d, want = build_case(tmp_path, case)
    r = cli("check", "-c", d)
    assert (r.returncode, r.stderr.decode()) == (2, want)
    assert r.stdout == b""


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_run_refuses_broken_config_before_binding(tmp_path, case):
    # Hold the ingress port: a daemon that tried to bind would fail with a
    # bind error (exit 1) instead of the config errors (exit 2).
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        port = holder.getsockname()[1]
        d, want = build_case(tmp_path, case, port)
        r = cli("run", "-c", d, timeout=20)
    finally:
        holder.close()
    assert (r.returncode, r.stderr.decode()) == (2, want)
    assert not (tmp_path / "stats.json").exists()
    assert not (tmp_path / "quarantine.jsonl").exists()
    assert not (tmp_path / "out").exists()


def test_run_exits_when_a_later_ingress_cannot_bind(tmp_path):
    # The first ingress binds, the second's port is held: the daemon says so
    # and exits 1 (it used to hang in zmq_ctx_term on the failed socket's
    # monitor, never exiting).
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        busy = holder.getsockname()[1]
        core, sinks, eps = base(tmp_path)
        core["ingress"].append({"type": "ack", "bind": f"tcp://127.0.0.1:{busy}"})
        d = tmp_path / "conf.d"
        write_config(d, core, sinks, eps)
        r = cli("run", "-c", d, timeout=20)
    finally:
        holder.close()
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert f'msg="core.ingress[1]: cannot bind tcp://127.0.0.1:{busy}: Address already in use"' \
        in err, err


def so_copy(folder, mode, folder_mode=0o700):
    folder.mkdir(parents=True, exist_ok=True)
    so = folder / "file.so"
    shutil.copy(PLUGIN_DIR / "file.so", so)
    os.chmod(so, mode)
    os.chmod(folder, folder_mode)
    return so


def plugin_config(tmp_path, so):
    d = tmp_path / "conf.d"
    core, sinks, eps = base(tmp_path)
    sinks["files"]["plugin"] = str(so)
    write_config(d, core, sinks, eps)
    return d, str(d / "20-sinks.json")


def test_plugin_copy_with_safe_mode_loads(tmp_path):
    """The control for the refusals below: the same copy, mode 0644, is fine."""
    so = so_copy(tmp_path / "plugins", 0o644)
    d, _ = plugin_config(tmp_path, so)
    r = cli("check", "-c", d)
    assert r.returncode == 0, r.stderr.decode()
    assert f"plugin file 2.1.0 ({so})" in r.stdout.decode()


@pytest.mark.parametrize("mode,who", [(0o666, "world"), (0o664, "group")])
def test_writable_plugin_file_is_refused(tmp_path, mode, who):
    so = so_copy(tmp_path / "plugins", mode)
    assert stat.S_IMODE(os.stat(so).st_mode) == mode
    d, f = plugin_config(tmp_path, so)
    want = errors_text(f"{f}: sinks.files.plugin: plugin {so} is {who}-writable; "
                       f"refusing to load it (chmod go-w {so})")
    r = cli("check", "-c", d)
    assert (r.returncode, r.stderr.decode()) == (2, want)
    assert f"{who}-writable; refusing to load it" in r.stderr.decode()
    r = cli("run", "-c", d, timeout=20)
    assert (r.returncode, r.stderr.decode()) == (2, want)


def test_plugin_in_world_writable_folder_is_refused(tmp_path):
    folder = tmp_path / "plugins"
    so = so_copy(folder, 0o644, folder_mode=0o777)
    d, f = plugin_config(tmp_path, so)
    want = errors_text(f"{f}: sinks.files.plugin: plugin folder {folder} is world-writable; "
                       f"refusing to load {so} from it (chmod go-w {folder})")
    r = cli("check", "-c", d)
    assert (r.returncode, r.stderr.decode()) == (2, want)
