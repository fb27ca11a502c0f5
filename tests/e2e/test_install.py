"""
`make install` into a staging folder (DESTDIR) and into a prefix of its
own (no DESTDIR), and the example plugin built from that staged SDK
exactly as docs/PLUGINS.md says. The build and the staged tree are
conftest.py's install_build and install_stage (install_helpers.py says
how they are made); test_unit.py checks the staged systemd unit and
test_man.py the man pages.

Nothing may be written outside the stage or the prefix: every path with
"switchyard" in it under /etc, /var, /usr and /opt that changed during an
install fails the test.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, ROOT
from install_helpers import built_plugins, files_in, make, make_install, mode, written_outside
from test_ops_helpers import ack_all, event, ops_daemon, wait_until  # noqa: F401 (fixture)

VERSION = (ROOT / "VERSION").read_text().strip()


@pytest.fixture(scope="module")
def build(install_build):
    return install_build


@pytest.fixture(scope="module")
def stage(install_stage):
    return install_stage


# --------------------------------------------------------------------------
# what make install puts where
# --------------------------------------------------------------------------

def test_binary_plugins_headers_and_pc(stage, build):
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
        assert (plugins / f"{n}.so").read_bytes() == \
            (build / "plugins" / f"{n}.so").read_bytes()

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
    # libswitchyard.a is static: what it needs comes with --static.
    lib = stage / "usr/lib/libswitchyard.a"
    assert mode(lib) == 0o644
    assert lib.read_bytes() == (build / "libswitchyard.a").read_bytes()
    r = subprocess.run(["pkg-config", "--libs", "switchyard"], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.split() == [f"-L{stage}/usr/lib", "-lswitchyard"], r
    r = subprocess.run(["pkg-config", "--static", "--libs", "switchyard"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == [f"-L{stage}/usr/lib", "-lswitchyard",
                                                      "-lcrypto", "-lzmq"], r


def test_everything_is_in_its_place(stage):
    """The whole staged tree, file by file: nothing missing, nothing extra."""
    want = (["etc/switchyard/conf.d/" + p.name for p in (ROOT / "conf.d").glob("*.json")] +
            ["usr/bin/switchyard", "usr/lib/libswitchyard.a", "usr/lib/pkgconfig/switchyard.pc",
             "usr/lib/systemd/system/switchyard.service", "usr/lib/sysusers.d/switchyard.conf",
             "usr/lib/tmpfiles.d/switchyard.conf", "usr/share/man/man3/switchyard-sink.3",
             "usr/share/man/man5/switchyard.conf.5", "usr/share/man/man8/switchyard.8"] +
            [f"usr/include/switchyard/{p.name}"
             for p in (ROOT / "sdk/include/switchyard").glob("*.h")] +
            [f"usr/lib/switchyard/plugins/{n}.so" for n in built_plugins()] +
            [f"usr/share/switchyard/portal/{p.name}" for p in (ROOT / "core/portal").iterdir()])
    assert files_in(stage) == sorted(want)
    assert (stage / "var/lib/switchyard").is_dir()


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
        if key == "portal_dir":
            return "/usr/share/switchyard/portal"
        if isinstance(v, str) and v.startswith("var/"):
            return "/var/lib/switchyard/" + v[len("var/"):]
        return v

    for n in names:
        assert mode(etc / n) == 0o640  # config files may hold secrets
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


def test_reinstall_keeps_the_operators_config_and_uninstall_leaves_it(build, tmp_path):
    s = tmp_path / "stage"
    s.mkdir()
    make_install(build, s, "/usr/local")
    # Outside PREFIX=/usr, config and state stay under the prefix.
    etc = s / "usr/local/etc/switchyard/conf.d"
    assert sorted(p.name for p in s.iterdir()) == ["usr"]
    assert mode(s / "usr/local/var/lib/switchyard") == 0o750
    unit = (s / "usr/local/lib/systemd/system/switchyard.service").read_text()
    assert "\nExecStart=/usr/local/bin/switchyard run -c /usr/local/etc/switchyard/conf.d\n" \
        in unit
    assert "\nWorkingDirectory=/usr/local/var/lib/switchyard\n" in unit
    # StateDirectory= and ConfigurationDirectory= would make /var/lib/switchyard
    # and /etc/switchyard; ProtectSystem=strict needs the state folder opened.
    assert "\nStateDirectory" not in unit and "\nConfigurationDirectory" not in unit
    assert "\nReadWritePaths=/usr/local/var/lib/switchyard\n" in unit
    assert (s / "usr/local/lib/sysusers.d/switchyard.conf").read_text().endswith(
        '\nu switchyard - "Switchyard event router" /usr/local/var/lib/switchyard '
        '/usr/sbin/nologin\n')
    assert (s / "usr/local/lib/tmpfiles.d/switchyard.conf").read_text().endswith(
        "\nd /usr/local/var/lib/switchyard 0750 switchyard switchyard -\n")
    core = json.loads((etc / "10-core.json").read_text())["core"]
    assert core["plugin_dir"] == "/usr/local/lib/switchyard/plugins"
    assert core["spool"] == "/usr/local/var/lib/switchyard/spool.db"

    # The operator edits one file and removes another: a second install
    # touches neither (no example file comes back into a conf.d in use).
    mine = '{"core": {"workers": 2}}\n'
    (etc / "10-core.json").write_text(mine)
    (etc / "30-endpoints.json").unlink()
    r = make_install(build, s, "/usr/local")
    assert "keeping the config in" in r.stdout
    assert (etc / "10-core.json").read_text() == mine
    assert not (etc / "30-endpoints.json").exists()

    make_install(build, s, "/usr/local", "uninstall")
    for gone in ("usr/local/bin/switchyard", "usr/local/lib/switchyard",
                 "usr/local/include/switchyard", "usr/local/lib/pkgconfig/switchyard.pc",
                 "usr/local/lib/systemd/system/switchyard.service",
                 "usr/local/lib/sysusers.d/switchyard.conf",
                 "usr/local/lib/tmpfiles.d/switchyard.conf",
                 "usr/local/share/man/man3/switchyard-sink.3",
                 "usr/local/share/man/man5/switchyard.conf.5",
                 "usr/local/share/man/man8/switchyard.8"):
        assert not (s / gone).exists(), gone
    assert (etc / "10-core.json").read_text() == mine


def test_install_into_a_prefix_without_destdir_stays_there(build, tmp_path):
    """
    make install PREFIX=X alone: everything under X (config in X/etc, state
    in X/var), and the installed binary, built before with the default
    PREFIX, finds its plugins both ways: from the installed config's
    plugin_dir, and from the folder compiled into it.
    """
    px = tmp_path / "px"
    marker = tmp_path / "before"
    marker.write_text("")
    make(build, "install", f"PREFIX={px}")
    assert written_outside(marker, tmp_path) == []
    assert sorted(p.name for p in px.iterdir()) == ["bin", "etc", "include", "lib", "share", "var"]
    assert mode(px / "var/lib/switchyard") == 0o750
    conf = px / "etc/switchyard/conf.d"
    assert sorted(p.name for p in conf.iterdir()) == \
        sorted(p.name for p in (ROOT / "conf.d").glob("*.json"))
    core = json.loads((conf / "10-core.json").read_text())["core"]
    assert core["plugin_dir"] == f"{px}/lib/switchyard/plugins"
    assert core["spool"] == f"{px}/var/lib/switchyard/spool.db"
    unit = (px / "lib/systemd/system/switchyard.service").read_text()
    assert f"\nExecStart={px}/bin/switchyard run -c {conf}\n" in unit

    sy = px / "bin/switchyard"
    r = subprocess.run([str(sy), "check", "-c", str(conf)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^  files +plugin file \S+ \({re.escape(str(px))}/lib/switchyard/"
                     rf"plugins/file\.so\)$", r.stdout, re.M), r.stdout
    # No -c, no ./build/plugins: the folder compiled in, which followed PREFIX.
    r = subprocess.run([str(sy), "plugins"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == f"plugins in {px}/lib/switchyard/plugins:"
    assert sorted(l.split()[0] for l in lines[1:]) == built_plugins()


def test_a_new_prefix_rebuilds_and_the_same_one_does_not(build):
    """PREFIX is not a file; the stamp makes it one for make."""
    r = make(build, "all", "PREFIX=/opt/sy-elsewhere")
    assert "  CC      core/config.c\n" in r.stdout and "  LD      " in r.stdout, r.stdout
    r = make(build, "all", "PREFIX=/opt/sy-elsewhere")
    assert not re.search(r"^  (CC|LD|PLUGIN) ", r.stdout, re.M), r.stdout
    assert "SY_PLUGIN_DIR=/opt/sy-elsewhere/lib/switchyard/plugins" in \
        (build / "paths.stamp").read_text()


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
    # An author's first addition: a POSIX function, which -std=c11 hides
    # unless the Makefile asks for it (-Werror makes a missing one fail).
    with open(src / "example_sink.c", "a") as f:
        f.write("\nchar *example_copy(const char *s);\n"
                "char *example_copy(const char *s) { return strdup(s); }\n")
    env = {**os.environ, "PKG_CONFIG_PATH": f"{stage}/usr/lib/pkgconfig",
           "PKG_CONFIG_SYSROOT_DIR": str(stage)}
    env.pop("MAKEFLAGS", None)  # an author's make, not this tree's
    env.pop("MFLAGS", None)
    r = subprocess.run(["make", "CFLAGS=-O2 -g -Werror"], cwd=src, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    # Headers and library came from the stage, through pkg-config --cflags --libs.
    assert f"-I{stage}/usr/include" in r.stdout, r.stdout
    assert f"-L{stage}/usr/lib -lswitchyard" in r.stdout, r.stdout
    so = src / "example_sink.so"
    assert so.exists() and (src / "example_batch_sink.so").exists()
    plugins = work / "plugins"
    plugins.mkdir(mode=0o755)
    for name in ("example_sink.so", "example_batch_sink.so"):
        shutil.copy(src / name, plugins / name)
        (plugins / name).chmod(0o755)
    return stage / "usr/bin/switchyard", plugins / "example_sink.so"


def test_example_plugin_describe(example_so):
    sy, so = example_so
    r = subprocess.run([str(sy), "plugins", "--describe", str(so)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # The file is example_sink.so; its descriptor is named "example".
    assert lines[0] == "example_sink 2.0.0 - example: appends event id, type and attempt to a file"
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
    assert f"plugin example 2.0.0 ({so})" in r.stdout

    d.start()
    sent = [("x-1", "job.completed"), ("x-2", "artifact.ready"), ("x-3", "job.failed")]
    answers = ack_all(d.ack_addr, [(i, event(i, t)) for i, t in sent])
    assert answers == {i: f"ok {i}" for i, _ in sent}
    want = sorted(f"{i} {t} 1" for i, t in sent)

    def lines():
        return sorted(out.read_text().splitlines()) if out.exists() else []
    wait_until(lambda: len(lines()) >= 3, what="3 lines in the example's output")
    assert lines() == want
    assert f"msg=\"writing to {out}\" plugin=example instance=audit\n" in d.run_log()
    # pending is read from the spool, whose commit of the outcomes may trail the counters.
    e = d.wait_endpoint("audit-everything", lambda e: e["ok"] >= 3 and e["pending"] == 0,
                        "3 deliveries ok and none pending in the spool")
    assert (e["ok"], e["attempts"], e["dead"], e["pending"]) == (3, 3, 0, 0)


def test_example_batch_plugin_takes_batches(example_so, ops_daemon, tmp_path):
    sy, so = example_so
    batch = so.parent / "example_batch_sink.so"
    r = subprocess.run([str(sy), "plugins", "--describe", str(batch)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "style: blocking, in batches (deliver_batch)" in r.stdout.splitlines()
    assert "batches: up to 64 deliveries, linger 20ms" in r.stdout.splitlines()
    out = tmp_path / "batch.log"
    d = ops_daemon(sinks={"audit": {"plugin": str(batch), "output": str(out)}},
                   endpoints={"all": {"sink": "audit"}}, binary=sy)
    ids = [f"b-{i}" for i in range(50)]
    assert ack_all(d.ack_addr, [(i, event(i)) for i in ids]) == {i: f"ok {i}" for i in ids}
    s = d.wait_stats(lambda s: s["endpoints"]["all"]["ok"] == 50, "50 delivered")
    assert sorted(out.read_text().splitlines()) == sorted(f"{i} job.completed 1" for i in ids)
    # The 20 ms linger gathers what arrives together: far fewer calls than events.
    assert s["deliveries"]["plugin_calls"] < 50, s["deliveries"]


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
