"""
The systemd unit as `make install` stages it (conftest.py's install_stage,
PREFIX=/usr): what it says, that `systemd-analyze verify` finds nothing
wrong with it, that `systemd-analyze security --offline=yes` rates it 2.5
or lower, and that its sysusers.d and tmpfiles.d files make the user and
the state folder it runs with.

systemd-analyze runs on the unit files without a running systemd (this
container has none): `--root` points it at a scratch root holding the
staged tree and the host's own system units (targets such as
sysinit.target, which verify loads), and MANPATH at the staged man pages,
so verify also finds the pages Documentation= names.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT
from install_helpers import mode

UNIT = "usr/lib/systemd/system/switchyard.service"
HOST_UNITS = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 2.5
CHECK = "/usr/bin/switchyard check -c /etc/switchyard/conf.d"


def parse_unit(text):
    """[(section, key, value)] in file order; keys repeat (ExecReload=, SystemCallFilter=)."""
    out, section = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key, value))
    return out


def values(entries, section, key):
    return [v for s, k, v in entries if s == section and k == key]


@pytest.fixture(scope="module")
def unit(install_stage):
    return parse_unit((install_stage / UNIT).read_text())


@pytest.fixture(scope="module")
def analyze_root(install_stage, tmp_path_factory):
    """The staged tree plus the host's system units, for systemd-analyze --root."""
    if not shutil.which("systemd-analyze") or not HOST_UNITS.is_dir():
        pytest.skip("systemd-analyze or the host's system units are missing: "
                    "scripts/deps.sh test installs the systemd package")
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(install_stage, root, dirs_exist_ok=True, symlinks=True)
    for u in HOST_UNITS.iterdir():
        dest = root / "usr/lib/systemd/system" / u.name
        if not dest.exists() and not dest.is_symlink():
            if u.is_symlink():
                dest.symlink_to(u.readlink())
            elif u.is_dir():
                shutil.copytree(u, dest, symlinks=True)
            else:
                shutil.copy2(u, dest)
    return root


def analyze(root, *args):
    return subprocess.run(["systemd-analyze", f"--root={root}", *args], capture_output=True,
                          text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
                               "MANPATH": str(root / "usr/share/man"), "SYSTEMD_COLORS": "0"})


def test_the_unit_is_the_template_with_the_paths_filled_in(install_stage):
    text = (install_stage / UNIT).read_text()
    assert mode(install_stage / UNIT) == 0o644
    assert not re.search(r"@[A-Z]+@", text), "a template placeholder was left in the unit"
    src = (ROOT / "scripts/switchyard.service").read_text()
    # PREFIX=/usr: state under /var/lib, so StateDirectory= and no ReadWritePaths=.
    src = "".join(l for l in src.splitlines(True) if not l.startswith("ReadWritePaths="))
    assert src.replace("@PREFIX@", "/usr").replace("@CONFDIR@", "/etc/switchyard") \
        .replace("@STATEDIR@", "/var/lib/switchyard") == text


def test_service_settings(unit):
    assert sorted({s for s, _, _ in unit}) == ["Install", "Service", "Unit"]
    svc = {k: values(unit, "Service", k) for _, k, _ in unit}
    one = {k: v[0] for k, v in svc.items() if len(v) == 1}
    assert values(unit, "Unit", "Documentation") == ["man:switchyard(8) man:switchyard.conf(5)"]
    assert (one["Type"], one["NotifyAccess"]) == ("notify", "main")
    assert (one["User"], one["Group"]) == ("switchyard", "switchyard")
    # check before every start and every reload: a broken config never
    # stops a running daemon, and is not restarted in a loop (exit 2).
    assert one["ExecStartPre"] == CHECK
    assert one["ExecStart"] == "/usr/bin/switchyard run -c /etc/switchyard/conf.d"
    assert svc["ExecReload"] == [CHECK, "/bin/kill -HUP $MAINPID"]
    assert (one["Restart"], one["RestartPreventExitStatus"]) == ("on-failure", "2")
    assert one["WatchdogSec"] == "30s"
    assert (one["StateDirectory"], one["RuntimeDirectory"], one["ConfigurationDirectory"]) == \
        ("switchyard", "switchyard", "switchyard")
    assert one["WorkingDirectory"] == "/var/lib/switchyard"
    assert "ReadWritePaths" not in svc
    assert values(unit, "Install", "WantedBy") == ["multi-user.target"]


def test_sandbox_settings(unit):
    svc = {k: values(unit, "Service", k) for _, k, _ in unit}
    want = {
        "CapabilityBoundingSet": [""], "AmbientCapabilities": [""], "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
        "PrivateDevices": ["yes"], "PrivateIPC": ["yes"], "PrivateMounts": ["yes"],
        "ProtectHostname": ["yes"], "ProtectClock": ["yes"], "ProtectKernelTunables": ["yes"],
        "ProtectKernelModules": ["yes"], "ProtectKernelLogs": ["yes"],
        "ProtectControlGroups": ["yes"], "ProtectProc": ["invisible"], "ProcSubset": ["pid"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
        "RestrictNamespaces": ["yes"], "RestrictRealtime": ["yes"], "RestrictSUIDSGID": ["yes"],
        "LockPersonality": ["yes"], "MemoryDenyWriteExecute": ["yes"], "RemoveIPC": ["yes"],
        "SystemCallArchitectures": ["native"],
        "SystemCallFilter": ["@system-service", "~@privileged @resources"],
        "SystemCallErrorNumber": ["EPERM"], "UMask": ["0027"],
    }
    assert {k: svc.get(k) for k in want} == want
    # Root-owned plugins would look owned by "nobody" in a user namespace,
    # and the daemon refuses those: PrivateUsers= stays off.
    assert "PrivateUsers" not in svc


def test_systemd_analyze_verify(analyze_root):
    r = analyze(analyze_root, "verify", "switchyard.service")
    # verify warns (unknown keys, missing man pages, a binary that is not
    # there) on stderr and may still exit 0: both must be clean.
    assert (r.returncode, r.stderr, r.stdout) == (0, "", ""), r


def test_systemd_analyze_verify_catches_a_broken_unit(analyze_root, tmp_path):
    """The verify above can fail: a misspelt key in a copy of the unit is reported."""
    root = tmp_path / "root"
    shutil.copytree(analyze_root, root, symlinks=True)
    unit = root / UNIT
    unit.write_text(unit.read_text().replace("\nLockPersonality=yes\n",
                                             "\nLockPersonalty=yes\n"))
    r = analyze(root, "verify", "switchyard.service")
    assert "Unknown key 'LockPersonalty' in section [Service], ignoring." in r.stderr, r


def test_systemd_analyze_security_score(analyze_root):
    r = analyze(analyze_root, "security", "--offline=yes", "switchyard.service")
    assert r.returncode == 0, r
    m = re.search(r"Overall exposure level for switchyard\.service: (\d+\.\d) ", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout
    # What is left open is what a network daemon that loads plugins needs.
    failed = sorted(re.findall(r"^✗ (\S+)", r.stdout, re.M))
    assert failed == sorted([
        "RootDirectory=/RootImage=",             # plugins and libraries from the host
        "RestrictAddressFamilies=~AF_NETLINK",   # getaddrinfo(AI_ADDRCONFIG), ZeroMQ interfaces
        "RestrictAddressFamilies=~AF_UNIX",      # ipc://, NOTIFY_SOCKET
        "RestrictAddressFamilies=~AF_(INET|INET6)",  # ingress, admin API, sinks
        "PrivateNetwork=",                       # it is a network daemon
        "PrivateUsers=",                         # see test_sandbox_settings
        "DeviceAllow=",                          # ProtectClock= leaves char-rtc readable
        "IPAddressDeny=",                        # receivers can be anywhere
        "UMask=",                                # 0027: the group reads state files
    ]), r.stdout


def test_sysusers_and_tmpfiles_make_the_user_and_the_state_folder(install_stage, tmp_path):
    if not (shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles")):
        pytest.skip("systemd-sysusers or systemd-tmpfiles is missing: scripts/deps.sh test "
                    "installs the systemd package")
    if os.geteuid() != 0:
        pytest.skip("giving the state folder to the user takes root (chown)")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for f in ("passwd", "group"):
        (root / "etc" / f).write_text(f"root:x:0:0:root:/root:/bin/sh\n" if f == "passwd"
                                      else "root:x:0:\n")
    users = install_stage / "usr/lib/sysusers.d/switchyard.conf"
    r = subprocess.run(["systemd-sysusers", f"--root={root}", str(users)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    passwd = [l.split(":") for l in (root / "etc/passwd").read_text().splitlines()]
    me = [p for p in passwd if p[0] == "switchyard"]
    assert len(me) == 1, passwd
    name, _, uid, gid, gecos, home, shell = me[0]
    assert (gecos, home, shell) == ("Switchyard event router", "/var/lib/switchyard",
                                    "/usr/sbin/nologin")
    assert int(uid) < 1000  # a system user
    groups = [l.split(":") for l in (root / "etc/group").read_text().splitlines()]
    assert [g[2] for g in groups if g[0] == "switchyard"] == [gid]

    tmpfiles = install_stage / "usr/lib/tmpfiles.d/switchyard.conf"
    r = subprocess.run(["systemd-tmpfiles", f"--root={root}", "--create", str(tmpfiles)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    st = (root / "var/lib/switchyard").stat()
    assert (mode(root / "var/lib/switchyard"), st.st_uid, st.st_gid) == (0o750, int(uid), int(gid))
