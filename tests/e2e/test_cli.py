"""
Command-line conventions: --help on every command, -V/--version, check's
log options, replay's unknown endpoints, and the name --describe and the
plugin list give a plugin whose file is named unlike its descriptor.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, PLUGIN_DIR, ROOT, cli, event, free_ports, wait_until, write_config
from durability_helpers import DEAD, flaky_sink, spool_daemon  # noqa: F401 (fixture)
from test_ops_helpers import Metrics, http, ops_daemon  # noqa: F401 (fixture)

# Each command and the long options its --help must name.
COMMANDS = {
    "run": ["--config", "--log-level", "--log-format", "--help"],
    "check": ["--config", "--log-level", "--log-format", "--help"],
    "publish": ["--connect", "--bind", "--type", "--org", "--org-slug", "--data", "--id",
                "--count", "--file", "--socket", "--frames", "--settle", "--ack", "--timeout",
                "--retries", "--quiet", "--help"],
    "plugins": ["--config", "--dir", "--describe", "--help"],
    "keys": ["--format", "--help"],
    "replay": ["--config", "--spool", "--endpoint", "--event", "--since", "--until", "--list",
               "--help"],
    "status": ["--config", "--admin", "--json", "--help"],
}


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(cmd, flag):
    r = cli(cmd, flag)
    assert (r.returncode, r.stderr) == (0, b""), r
    out = r.stdout.decode()
    assert out.startswith(f"usage: switchyard {cmd} "), out
    assert "Exit status: " in out, out
    for opt in COMMANDS[cmd]:
        assert re.search(rf"(^|[\s\[(|]){opt}\b", out), f"{cmd} --help does not name {opt}"


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_bad_option_prints_the_commands_usage_and_exits_2(cmd):
    r = cli(cmd, "--no-such-option")
    assert r.returncode == 2, r
    assert r.stdout == b""
    err = r.stderr.decode()
    assert "unrecognized option '--no-such-option'" in err, err
    assert f"usage: switchyard {cmd} " in err, err


@pytest.mark.parametrize("cmd", ["run", "check", "plugins", "replay", "status", "publish"])
def test_stray_argument_is_refused(cmd):
    r = cli(cmd, "-c", "conf.d", "stray") if cmd != "publish" else \
        cli(cmd, "--connect", "tcp://127.0.0.1:1", "--type", "a.b", "stray")
    assert r.returncode == 2, r
    assert r.stderr.decode() == (f'switchyard {cmd}: unexpected argument "stray" '
                                 f'(switchyard {cmd} --help)\n')


def git_head():
    """The commit the tree is at (12 hex digits), or None outside a git checkout of it."""
    r = subprocess.run(["git", "rev-parse", "--show-toplevel", "--short=12", "HEAD"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode != 0 or Path(r.stdout.split()[0]) != ROOT:
        return None
    return r.stdout.split()[1]


VERSION_LINE = re.compile(r"switchyard (\S+) \(commit (\S+), sink ABI (\d+)\.(\d+)\)\n")


def test_version_flags():
    outs = set()
    for args in (["version"], ["-V"], ["--version"]):
        r = cli(*args)
        assert (r.returncode, r.stderr) == (0, b""), r
        outs.add(r.stdout.decode())
    assert len(outs) == 1, outs
    m = VERSION_LINE.fullmatch(outs.pop())
    assert m
    # The version is the VERSION file's; the commit the tree's, "-dirty"
    # when it was built with changes not committed; the ABI the header's.
    assert m.group(1) == (ROOT / "VERSION").read_text().strip()
    head = git_head()
    assert m.group(2) in ((head, f"{head}-dirty") if head else ("unknown",)), m.group(2)
    sink_h = (ROOT / "sdk/include/switchyard/sink.h").read_text()
    assert f"#define SY_ABI_VERSION_MAJOR {m.group(3)}\n" in sink_h
    assert f"#define SY_ABI_VERSION_MINOR {m.group(4)}\n" in sink_h


def test_build_info_metric_says_what_version_says(ops_daemon):
    m = VERSION_LINE.fullmatch(cli("version").stdout.decode())
    d = ops_daemon()
    metrics = Metrics(http(d.base, "GET", "/metrics").text)
    assert metrics.get("switchyard_build_info", version=m.group(1), commit=m.group(2),
                       abi=f"{m.group(3)}.{m.group(4)}") == 1


def test_top_level_help():
    r = cli("--help")
    assert r.returncode == 0 and r.stdout.startswith(b"usage: switchyard COMMAND"), r
    out = r.stdout.decode()
    for cmd in list(COMMANDS) + ["version"]:
        assert re.search(rf"^  {cmd} ", out, re.M), f"--help does not list {cmd}"
    assert "-V, --version" in out
    r = cli()
    assert r.returncode == 2 and r.stderr.startswith(b"usage: switchyard COMMAND"), r


# --------------------------------------------------------------------------
# check and the log options
# --------------------------------------------------------------------------

@pytest.fixture
def zmq_conf(tmp_path):
    """A config whose zmq sink logs one info line in init (where it connects)."""
    if not (PLUGIN_DIR / "zmq.so").exists():
        pytest.skip("the zmq plugin is not built")
    pull, fwd = free_ports(2)
    conf = tmp_path / "conf.d"
    write_config(conf,
                 {"plugin_dir": str(PLUGIN_DIR), "quarantine": None,
                  "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{pull}"}]},
                 {"fwd": {"plugin": "zmq", "socket": "push",
                          "connect": f"tcp://127.0.0.1:{fwd}"}},
                 {"all": {"sink": "fwd", "enabled_events": ["*"]}})
    return conf, f"tcp://127.0.0.1:{fwd}"


def check_log(conf, *opts):
    r = cli("check", "-c", conf, *opts)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().endswith("configuration OK\n")
    return r.stderr.decode().splitlines()


def test_check_follows_the_log_options(zmq_conf):
    zmq_conf, fwd = zmq_conf
    msg = f"forwarding over push; connects to {fwd} on the first delivery"
    lines = check_log(zmq_conf)
    assert len(lines) == 1 and lines[0].endswith(
        f' level=info msg="{msg}" plugin=zmq instance=fwd'), lines
    lines = check_log(zmq_conf, "--log-format", "json")
    assert len(lines) == 1, lines
    rec = json.loads(lines[0])
    assert (rec["level"], rec["plugin"], rec["instance"], rec["msg"]) == \
        ("info", "zmq", "fwd", msg), rec
    assert check_log(zmq_conf, "--log-level", "warn") == []
    assert check_log(zmq_conf, "--log-level", "warn", "--log-format", "json") == []


def test_check_follows_the_configs_log_settings(zmq_conf):
    zmq_conf, _ = zmq_conf
    # The override file, as the docs say to change one core key.
    (zmq_conf / "90-local.json").write_text('{"core": {"log_format": "json"}}')
    rec = json.loads(check_log(zmq_conf)[0])
    assert (rec["plugin"], rec["instance"]) == ("zmq", "fwd"), rec
    (zmq_conf / "90-local.json").write_text('{"core": {"log_level": "error"}}')
    assert check_log(zmq_conf) == []
    # The command line wins over the config.
    assert len(check_log(zmq_conf, "--log-level", "info")) == 1


@pytest.mark.parametrize("cmd", ["check", "run"])
def test_bad_log_options_exit_2(cmd, tmp_path):
    r = cli(cmd, "-c", tmp_path, "--log-format", "xml")
    assert (r.returncode, r.stderr.decode()) == (2, "switchyard: --log-format is logfmt or json\n")
    r = cli(cmd, "-c", tmp_path, "--log-level", "loud")
    assert (r.returncode, r.stderr.decode()) == (
        2, "switchyard: --log-level is error, warn, info or debug\n")


# --------------------------------------------------------------------------
# replay --endpoint
# --------------------------------------------------------------------------

def test_replay_unknown_endpoint_exits_1(spool_daemon, tmp_path):
    log = tmp_path / "bad.log"
    d = spool_daemon(sinks={"bad": flaky_sink(log, fail_times=1000, fail_mode="fail")},
                     endpoints={"ep": {"sink": "bad", "enabled_events": ["job.*"]},
                                "quiet": {"sink": "bad", "enabled_events": ["none.*"]}})
    d.push([event("evt-u1")])
    d.wait_for("deliveries.dead", 1)
    wait_until(lambda: d.spool.states("ep") == {DEAD: 1}, timeout=10,
               what="a dead delivery in the spool", on_timeout=lambda: d.spool.states())

    rc, out, err = d.replay("--endpoint", "nope")
    assert (rc, out) == (1, ""), err
    assert err == (f'switchyard replay: no endpoint "nope": {d.conf_dir} defines ep, quiet, '
                   f'and {d.spool_path} holds no pending or dead delivery for it\n')
    rc, out, err = d.replay("--list", "--endpoint", "nope")
    assert (rc, out) == (1, ""), err
    # Defined but without dead deliveries: nothing to do, and no error.
    assert d.replay("--endpoint", "quiet") == (0, "0 dead deliveries put back to pending\n", "")

    # With --spool there is no config: the spool says which endpoints exist.
    r = cli("replay", "--spool", d.spool_path, "--endpoint", "nope")
    assert (r.returncode, r.stdout) == (1, b""), r
    assert r.stderr.decode() == (f'switchyard replay: no endpoint "nope": {d.spool_path} holds '
                                 f'no pending or dead delivery for it\n')
    r = cli("replay", "--spool", d.spool_path, "--endpoint", "ep", "--list")
    assert r.returncode == 0, r
    assert r.stdout.decode().endswith("\n1 dead delivery match\n"), r.stdout
    assert d.spool.states("ep") == {DEAD: 1}  # nothing was replayed by the refused calls


# --------------------------------------------------------------------------
# the name a plugin loads by
# --------------------------------------------------------------------------

@pytest.fixture
def renamed_plugin(tmp_path):
    """build/plugins/file.so copied as journal.so: file name and descriptor differ."""
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755)
    so = folder / "journal.so"
    shutil.copy(PLUGIN_DIR / "file.so", so)
    so.chmod(0o755)
    return folder


def test_describe_names_the_plugin_as_configs_load_it(renamed_plugin, tmp_path):
    r = cli("plugins", "--dir", renamed_plugin, "--describe", "journal")
    assert (r.returncode, r.stderr) == (0, b""), r
    lines = r.stdout.decode().splitlines()
    assert re.fullmatch(r"journal \S+ - appends events as JSON Lines .*", lines[0]), lines[0]
    assert lines[1] == f"file: {renamed_plugin}/journal.so"
    assert lines[2] == ('descriptor name: file (logs and check name the plugin so; a config '
                        'loads the file as "journal")')
    assert 'sink instance keys ("sinks": {"NAME": {"plugin": "journal", ...}}):' in lines

    path = renamed_plugin / "journal.so"
    r = cli("plugins", "--describe", path)
    out = r.stdout.decode().splitlines()
    assert r.returncode == 0 and out[0].startswith("journal "), r
    assert f'descriptor name: file (logs and check name the plugin so; a config loads the ' \
           f'file as "{path}")' in out
    assert f'sink instance keys ("sinks": {{"NAME": {{"plugin": "{path}", ...}}}}):' in out

    # The name it printed is the one a config loads the plugin by.
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(renamed_plugin), "quarantine": None,
                        "ingress": [{"type": "pull",
                                     "bind": f"tcp://127.0.0.1:{free_ports(1)[0]}"}]},
                 {"j": {"plugin": "journal", "path": str(tmp_path / "out.jsonl")}},
                 {"all": {"sink": "j", "enabled_events": ["*"]}})
    r = cli("check", "-c", conf)
    assert r.returncode == 0, r.stderr


def test_describe_of_a_plugin_named_like_its_file_has_no_extra_line():
    r = cli("plugins", "--dir", PLUGIN_DIR, "--describe", "file")
    assert r.returncode == 0, r
    out = r.stdout.decode()
    assert out.startswith("file ") and "descriptor name:" not in out, out
    assert 'sink instance keys ("sinks": {"NAME": {"plugin": "file", ...}}):' in out


def test_plugin_list_gives_the_file_name_and_a_differing_descriptor(renamed_plugin):
    r = cli("plugins", "--dir", renamed_plugin)
    assert r.returncode == 0, r
    lines = r.stdout.decode().splitlines()
    assert lines[0] == f"plugins in {renamed_plugin}:"
    assert re.fullmatch(r"  journal +\S+ +appends events .* \(descriptor name: file\)",
                        lines[1]), lines
    assert len(lines) == 2
