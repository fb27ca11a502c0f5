"""
`make install` into a staging folder (DESTDIR), and the example plugin
built from that staged SDK exactly as docs/PLUGINS.md says.

The install runs once per module (PREFIX=/usr), from the build folder the
other tests use (SY_BUILD). It installs the plugins that folder holds
(PLUGINS=<their names> on the make command line), so a plugin someone is
still writing, and that does not compile yet, does not break this test;
SY_INSTALL_PLUGINS="file webhook" picks them explicitly.
"""

import configparser
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, PLUGIN_DIR, ROOT
from test_ops_helpers import ack_all, event, ops_daemon, wait_until  # noqa: F401 (fixture)

VERSION = "0.1.0"


def built_plugins():
    names = os.environ.get("SY_INSTALL_PLUGINS")
    if names:
        return names.split()
    return sorted(p.stem for p in PLUGIN_DIR.glob("*.so"))


def make_install(stage, prefix, target="install"):
    r = subprocess.run(["make", "-s", "-C", str(ROOT), target, f"DESTDIR={stage}",
                        f"PREFIX={prefix}", f"BUILD={BUILD}",
                        f"PLUGINS={' '.join(built_plugins())}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout}\n{r.stderr}"
    return r


def mode(path):
    return stat.S_IMODE(Path(path).stat().st_mode)


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    s = tmp_path_factory.mktemp("stage")
    make_install(s, "/usr")
    return s


# --------------------------------------------------------------------------
# what make install puts where
# --------------------------------------------------------------------------

def test_binary_plugins_headers_and_pc(stage):
    sy = stage / "usr/bin/switchyard"
    assert mode(sy) == 0o755
    r = subprocess.run([str(sy), "version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith(f"switchyard {VERSION} "), r

    plugins = stage / "usr/lib/switchyard/plugins"
    assert mode(plugins) == 0o755
    assert built_plugins(), f"no plugin in {PLUGIN_DIR}"
    assert sorted(p.name for p in plugins.iterdir()) == sorted(f"{n}.so" for n in built_plugins())
    for n in built_plugins():
        assert mode(plugins / f"{n}.so") == 0o755
        assert (plugins / f"{n}.so").read_bytes() == (PLUGIN_DIR / f"{n}.so").read_bytes()

    inc = stage / "usr/include/switchyard"
    headers = sorted(p.name for p in (ROOT / "sdk/include/switchyard").glob("*.h"))
    assert "sink.h" in headers
    assert sorted(p.name for p in inc.iterdir()) == headers
    for h in headers:
        assert mode(inc / h) == 0o644
        assert (inc / h).read_bytes() == (ROOT / "sdk/include/switchyard" / h).read_bytes()

    pc = stage / "usr/lib/pkgconfig/switchyard.pc"
    assert mode(pc) == 0o644
    text = pc.read_text()
    assert "prefix=/usr\n" in text and f"Version: {VERSION}\n" in text and "@" not in text

    env = {**os.environ, "PKG_CONFIG_PATH": str(stage / "usr/lib/pkgconfig"),
           "PKG_CONFIG_SYSROOT_DIR": str(stage)}
    r = subprocess.run(["pkg-config", "--cflags", "switchyard"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.split() == [f"-I{stage}/usr/include"], r
    r = subprocess.run(["pkg-config", "--modversion", "switchyard"], env=env,
                       capture_output=True, text=True)
    assert r.stdout.strip() == VERSION


def test_systemd_unit(stage):
    unit = stage / "usr/lib/systemd/system/switchyard.service"
    assert mode(unit) == 0o644
    text = unit.read_text()
    assert "@" not in text, "a template placeholder was left in the unit"
    ini = configparser.ConfigParser(interpolation=None, strict=True)
    ini.optionxform = str  # systemd keys are case-sensitive
    ini.read_string(text)
    assert ini.sections() == ["Unit", "Service", "Install"]
    svc = ini["Service"]
    assert svc["Type"] == "simple"
    assert svc["Restart"] == "on-failure"
    assert svc["ExecStart"] == "/usr/bin/switchyard run -c /etc/switchyard/conf.d"
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert svc["RestartPreventExitStatus"] == "2"  # config errors: restarting cannot help
    assert svc["StateDirectory"] == "switchyard"
    assert "User" not in svc  # a dedicated user is optional (a drop-in)
    assert ini["Install"]["WantedBy"] == "multi-user.target"
    # The template in the tree is what was installed, with the prefix filled in.
    src = (ROOT / "scripts/switchyard.service").read_text()
    assert src.replace("@PREFIX@", "/usr") == text


def test_example_config(stage):
    etc = stage / "etc/switchyard/conf.d"
    assert mode(etc) == 0o755
    names = sorted(p.name for p in (ROOT / "conf.d").glob("*.json"))
    assert sorted(p.name for p in etc.glob("*.json")) == names

    def rewrite(v, key=None):
        if isinstance(v, dict):
            return {k: rewrite(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [rewrite(x) for x in v]
        if key == "plugin_dir":
            return "/usr/lib/switchyard/plugins"
        if isinstance(v, str) and v.startswith("var/"):
            return "/var/lib/switchyard/" + v[len("var/"):]
        return v

    for n in names:
        assert mode(etc / n) == 0o644
        installed = json.loads((etc / n).read_text())
        assert installed == rewrite(json.loads((ROOT / "conf.d" / n).read_text())), n
    core = json.loads((etc / "10-core.json").read_text())["core"]
    assert core["plugin_dir"] == "/usr/lib/switchyard/plugins"
    assert core["spool"] == "/var/lib/switchyard/spool.db"
    assert core["quarantine"] == "/var/lib/switchyard/quarantine.jsonl"
    sinks = json.loads((etc / "20-sinks.json").read_text())["sinks"]
    assert sinks["files"]["path"] == "/var/lib/switchyard/events/{org_slug}/{event_type}.jsonl"
    assert mode(stage / "var/lib/switchyard") == 0o750


def test_installed_check_passes_with_plugin_dir_in_the_stage(stage, tmp_path):
    # A copy, so the other tests keep seeing the pristine staged config;
    # the override file is how the docs say to change one core key.
    conf = tmp_path / "conf.d"
    shutil.copytree(stage / "etc/switchyard/conf.d", conf)
    (conf / "90-local.json").write_text(json.dumps(
        {"core": {"plugin_dir": str(stage / "usr/lib/switchyard/plugins")}}))
    r = subprocess.run([str(stage / "usr/bin/switchyard"), "check", "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("configuration OK\n")
    so = re.escape(f"{stage}/usr/lib/switchyard/plugins/file.so")
    assert re.search(r"^  files +plugin file \S+ \(" + so + r"\)$", r.stdout, re.M), r.stdout
    # As installed (plugin_dir /usr/lib/switchyard/plugins, not there on this
    # machine), check fails naming the key.
    r = subprocess.run([str(stage / "usr/bin/switchyard"), "check", "-c",
                        str(stage / "etc/switchyard/conf.d")], capture_output=True, text=True)
    if not Path("/usr/lib/switchyard/plugins/file.so").exists():
        assert r.returncode == 2 and "/usr/lib/switchyard/plugins/file.so" in r.stderr, r


def test_reinstall_keeps_the_operators_config_and_uninstall_leaves_it(tmp_path):
    s = tmp_path / "stage"
    make_install(s, "/usr/local")
    etc = s / "etc/switchyard/conf.d"
    unit = (s / "usr/local/lib/systemd/system/switchyard.service").read_text()
    assert "\nExecStart=/usr/local/bin/switchyard run -c /etc/switchyard/conf.d\n" in unit
    assert json.loads((etc / "10-core.json").read_text())["core"]["plugin_dir"] == \
        "/usr/local/lib/switchyard/plugins"

    # The operator edits one file and removes another: a second install
    # touches neither (no example file comes back into a conf.d in use).
    mine = '{"core": {"workers": 2}}\n'
    (etc / "10-core.json").write_text(mine)
    (etc / "30-endpoints.json").unlink()
    r = make_install(s, "/usr/local")
    assert "keeping the config in" in r.stdout
    assert (etc / "10-core.json").read_text() == mine
    assert not (etc / "30-endpoints.json").exists()

    make_install(s, "/usr/local", "uninstall")
    for gone in ("usr/local/bin/switchyard", "usr/local/lib/switchyard",
                 "usr/local/include/switchyard", "usr/local/lib/pkgconfig/switchyard.pc",
                 "usr/local/lib/systemd/system/switchyard.service"):
        assert not (s / gone).exists(), gone
    assert (etc / "10-core.json").read_text() == mine


# --------------------------------------------------------------------------
# the example plugin, built from the staged SDK as docs/PLUGINS.md says
# --------------------------------------------------------------------------

def test_docs_give_the_commands_this_test_runs():
    doc = (ROOT / "docs/PLUGINS.md").read_text()
    for cmd in ("cp -r sdk/example my-sink",
                "PKG_CONFIG_PATH=$STAGE/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$STAGE make",
                "switchyard plugins --describe",
                "switchyard check -c"):
        assert cmd in doc, f"docs/PLUGINS.md no longer says {cmd!r}: update this test with it"


@pytest.fixture(scope="module")
def example_so(stage, tmp_path_factory):
    work = tmp_path_factory.mktemp("plugin")
    src = work / "my-sink"
    shutil.copytree(ROOT / "sdk/example", src,
                    ignore=shutil.ignore_patterns("*.so", "*.o"))
    env = {**os.environ, "PKG_CONFIG_PATH": f"{stage}/usr/lib/pkgconfig",
           "PKG_CONFIG_SYSROOT_DIR": str(stage)}
    r = subprocess.run(["make"], cwd=src, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    # The headers came from the stage, not from the source tree.
    assert f"-I{stage}/usr/include" in r.stdout, r.stdout
    so = src / "example_sink.so"
    assert so.exists()
    plugins = work / "plugins"
    plugins.mkdir(mode=0o755)
    dst = plugins / "example_sink.so"
    shutil.copy(so, dst)
    dst.chmod(0o755)
    return stage / "usr/bin/switchyard", dst


def test_example_plugin_describe(example_so):
    sy, so = example_so
    r = subprocess.run([str(sy), "plugins", "--describe", str(so)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # The file is example_sink.so; its descriptor is named "example".
    assert lines[0] == "example_sink 1.0.0 - example: appends event id, type and attempt to a file"
    assert f"file: {so}" in lines
    assert ('descriptor name: example (logs and check name the plugin so; a config loads the '
            f'file as "{so}")') in lines
    assert "style: blocking (deliver)" in lines
    assert "  output             string, required" in lines


def test_example_plugin_loads_and_receives_events(example_so, ops_daemon, tmp_path):
    sy, so = example_so
    out = tmp_path / "audit.log"
    d = ops_daemon(sinks={"audit": {"plugin": str(so), "output": str(out)}},
                   endpoints={"audit-everything": {"sink": "audit", "enabled_events": ["*"]}},
                   binary=sy, start=False)
    d._write_config()
    r = subprocess.run([str(sy), "check", "-c", str(d.conf_dir)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert f"plugin example 1.0.0 ({so})" in r.stdout

    d.start()
    sent = [("x-1", "job.completed"), ("x-2", "artifact.ready"), ("x-3", "job.failed")]
    answers = ack_all(d.ack_addr, [(i, event(i, t)) for i, t in sent])
    assert answers == {i: f"ok {i}" for i, _ in sent}
    want = sorted(f"{i} {t} 1" for i, t in sent)

    def lines():
        return sorted(out.read_text().splitlines()) if out.exists() else []
    wait_until(lambda: len(lines()) >= 3, what="3 lines in the example's output")
    assert lines() == want
    assert f"component=example/audit msg=\"writing to {out}\"" in d.run_log()
    # pending is read from the spool, whose commit of the outcomes may trail the counters.
    e = d.wait_endpoint("audit-everything", lambda e: e["ok"] >= 3 and e["pending"] == 0,
                        "3 deliveries ok and none pending in the spool")
    assert (e["ok"], e["attempts"], e["dead"], e["pending"]) == (3, 3, 0, 0)


def test_example_plugin_refused_when_group_writable(example_so, tmp_path):
    sy, so = example_so
    bad = tmp_path / "p"
    bad.mkdir(mode=0o755)
    (bad / "x.so").write_bytes(so.read_bytes())
    (bad / "x.so").chmod(0o775)
    r = subprocess.run([str(sy), "plugins", "--describe", str(bad / "x.so")],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert f"plugin {bad}/x.so is group-writable; refusing to load it (chmod go-w " \
           f"{bad}/x.so)" in r.stderr, r.stderr
