"""
scripts/deps.sh installs by purpose: `make run` asks only for what the
daemon needs, `make test`/`make check` for the tests' tools and peers,
`make bench` for the benchmarks' too; services Debian starts on install
are stopped and disabled when the script installed them.

The install itself runs against stand-ins on PATH (dpkg-query, apt-get,
service, ...), which record their calls: nothing is installed for real.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

DEPS = ROOT / "scripts/deps.sh"
TEST_ONLY = {"libcmocka-dev", "valgrind", "gdb", "python3-pytest", "python3-zmq", "rabbitmq-server",
             "postgresql", "openssl", "lintian", "man-db", "systemd", "chromium",
             "chromium-driver", "python3-selenium"}
DEB_ONLY = {"debhelper"}
BENCH_ONLY = {"nginx-light", "wrk", "rsyslog", "rsyslog-czmq"}


def listed(mode):
    r = subprocess.run(["bash", str(DEPS), "--list", mode], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pkgs = r.stdout.split()
    assert len(pkgs) == len(set(pkgs)), pkgs
    return set(pkgs)


def test_run_needs_only_what_builds_and_runs_the_daemon():
    run = listed("run")
    assert run == {"build-essential", "pkg-config", "libzmq3-dev", "libcjson-dev", "libssl-dev",
                   "libcurl4-openssl-dev", "libsqlite3-dev", "libpq-dev", "libmicrohttpd-dev",
                   "librabbitmq-dev", "liblua5.4-dev", "libsystemd-dev", "zlib1g-dev", "scdoc"}


def test_deb_test_and_bench_add_to_run():
    run, deb, test, bench = listed("run"), listed("deb"), listed("test"), listed("bench")
    assert deb - run == DEB_ONLY
    assert TEST_ONLY <= test and deb <= test
    assert not (BENCH_ONLY & test)
    assert bench - test == BENCH_ONLY and test <= bench
    # Node.js comes from the image when it has node and npm, else from Debian.
    assert test - deb - TEST_ONLY <= {"python3", "nodejs", "npm"}


def test_debian_build_depends_are_what_deb_installs():
    """debian/control's Build-Depends, less debhelper-compat, are the deb set less debhelper."""
    control = (ROOT / "debian/control").read_text()
    field = re.search(r"^Build-Depends:(.*?)^\S", control, re.M | re.S).group(1)
    deps = {d.strip().split()[0] for d in field.split(",") if d.strip()}
    assert deps - {"debhelper-compat"} == listed("deb") - DEB_ONLY - {"build-essential"}


@pytest.mark.parametrize("args", [[], ["all"], ["--list"], ["run", "test"], ["--list", "x"]])
def test_bad_mode(args):
    r = subprocess.run(["bash", str(DEPS), *args], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("usage: scripts/deps.sh run|deb|test|bench   "
                        "(or --list run|deb|test|bench)\n")


@pytest.mark.parametrize("target,mode", [("run", "run"), ("test", "test"), ("check", "test"),
                                         ("valgrind", "test"), ("bench", "bench"),
                                         ("deps", "test"), ("deb", "deb"),
                                         ("test-deb", "test")])
def test_make_targets_ask_for_their_set(target, mode):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")}
    r = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT,
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    calls = [l.strip() for l in r.stdout.splitlines() if "scripts/deps.sh" in l]
    assert calls and set(calls) == {f"bash scripts/deps.sh {mode}"}, calls
    # The packages come before anything is built.
    first = next(l for l in r.stdout.splitlines() if l.strip())
    assert first.strip() == f"bash scripts/deps.sh {mode}", r.stdout[:500]


@pytest.fixture
def fake_system(tmp_path):
    """
    A copy of deps.sh in a tree without tests/node, and stand-ins for the
    system's tools that append their argv to calls.log. dpkg-query reports
    the packages in $INSTALLED as installed.
    """
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    (tree / "scripts/deps.sh").write_bytes(DEPS.read_bytes())
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls.log"
    record = f'echo "$(basename "$0") $*" >> {log}\n'
    # apt-get also tells whether services may start while it runs.
    policy = tmp_path / "policy-rc.d"
    tools = {
        "dpkg-query": 'for p in $INSTALLED; do [ "$p" = "${@: -1}" ] && '
                      'echo "install ok installed" && exit 0; done; exit 1\n',
        "apt-get": record + f'[ "$1" = update ] || [ ! -e {policy} ] || '
                            f'echo "policy-rc.d: $({policy} rabbitmq-server start; echo $?)" '
                            f'>> {log}\n',
        "service": record, "update-rc.d": record, "epmd": record,
        "systemctl": record, "node": "exit 0\n", "npm": record,
    }
    for name, body in tools.items():
        p = bin_ / name
        p.write_text("#!/bin/bash\n" + body)
        p.chmod(0o755)

    def run(mode, installed, policy_exists=False):
        if policy_exists:
            policy.write_text("#!/bin/sh\nexit 0\n")
            policy.chmod(0o755)
        env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}",
               "INSTALLED": " ".join(installed), "POLICY_RC_D": str(policy)}
        r = subprocess.run(["bash", str(tree / "scripts/deps.sh"), mode], capture_output=True,
                           text=True, env=env, timeout=60)
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        # The script's own policy-rc.d never outlives it; the system's stays.
        assert policy.exists() == policy_exists
        return r, calls
    return run


def test_nothing_to_do_when_everything_is_there(fake_system):
    r, calls = fake_system("bench", listed("bench"))
    assert (r.returncode, r.stderr, calls) == (0, "", [])


@pytest.mark.skipif(os.geteuid() != 0, reason="deps.sh installs only as root")
def test_run_installs_only_its_missing_packages(fake_system):
    have = listed("run") - {"libzmq3-dev", "librabbitmq-dev"}
    r, calls = fake_system("run", have)
    assert r.returncode == 0, r.stderr
    assert calls == ["apt-get update -q",
                     "apt-get install -y -q --no-install-recommends libzmq3-dev librabbitmq-dev"]


@pytest.mark.skipif(os.geteuid() != 0, reason="deps.sh installs only as root")
def test_services_it_installed_are_stopped_and_disabled(fake_system):
    r, calls = fake_system("bench", listed("run") | {"valgrind"})
    assert r.returncode == 0, r.stderr
    assert calls[0] == "apt-get update -q"
    assert calls[1].startswith("apt-get install -y -q --no-install-recommends ")
    installed = calls[1].split()[5:]
    assert set(installed) == listed("bench") - listed("run") - {"valgrind"}
    # While apt-get ran, invoke-rc.d was told starting is forbidden (101).
    assert calls[2] == "policy-rc.d: 101"
    calls = calls[:2] + calls[3:]
    if Path("/run/systemd/system").is_dir():
        want = ["systemctl disable --now rabbitmq-server.service",
                "systemctl disable --now epmd.service", "systemctl disable --now epmd.socket",
                "systemctl disable --now postgresql.service",
                "systemctl disable --now nginx.service",
                "systemctl disable --now rsyslog.service"]
    else:
        want = ["service rabbitmq-server stop", "update-rc.d rabbitmq-server disable",
                "epmd -kill", "service postgresql stop", "update-rc.d postgresql disable",
                "service nginx stop", "update-rc.d nginx disable",
                "service rsyslog stop", "update-rc.d rsyslog disable"]
    assert calls[2:] == want
    assert "rabbitmq-server is for the tests' own instances: stopping it and disabling it " \
           "at boot" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="deps.sh installs only as root")
def test_the_systems_own_policy_rc_d_is_kept(fake_system):
    r, calls = fake_system("test", listed("run"), policy_exists=True)
    assert r.returncode == 0, r.stderr
    assert "policy-rc.d: 0" in calls  # the administrator's, untouched
    assert "service rabbitmq-server stop" in calls or \
        "systemctl disable --now rabbitmq-server.service" in calls


@pytest.mark.skipif(os.geteuid() != 0, reason="deps.sh installs only as root")
def test_services_installed_before_are_left_alone(fake_system):
    r, calls = fake_system("bench", listed("bench") - {"wrk"})
    assert r.returncode == 0, r.stderr
    assert calls == ["apt-get update -q",
                     "apt-get install -y -q --no-install-recommends wrk"]
