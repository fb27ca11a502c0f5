"""
Building and installing the tree from the tests: `make` in a build folder
of the tests' own, `make install` into a staging folder (DESTDIR), and the
check that nothing was written outside it. conftest.py's install_build and
install_stage fixtures use these, once per session, for test_install.py
(what goes where), test_unit.py (the systemd unit) and test_man.py (the
man pages).

The build folder is the tests' own, first built with the default PREFIX as
a user would before installing: a PREFIX compiled into the daemon must
follow the install's, and rebuilding the shared build folder (SY_BUILD)
with another PREFIX would change the binary the other tests run. It builds
and installs the plugins SY_BUILD holds (PLUGINS=<their names> on the make
command line), so a plugin someone is still writing, and that does not
compile yet, does not break these tests; SY_INSTALL_PLUGINS="file webhook"
picks them explicitly.
"""

import os
import stat
import subprocess
from pathlib import Path

from conftest import PLUGIN_DIR, ROOT

SYSTEM_DIRS = ["/etc", "/var", "/usr", "/opt"]


def built_plugins():
    names = os.environ.get("SY_INSTALL_PLUGINS")
    if names:
        return names.split()
    return sorted(p.stem for p in PLUGIN_DIR.glob("*.so"))


def make(build, *args):
    r = subprocess.run(["make", "-s", "-j2", "--no-print-directory", "-C", str(ROOT),
                        f"BUILD={build}",
                        f"PLUGINS={' '.join(built_plugins())}", *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"make {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


def written_outside(since, *allowed):
    """Paths with "switchyard" in them under SYSTEM_DIRS changed after the file since."""
    r = subprocess.run(["find", *SYSTEM_DIRS, "-xdev", "-path", "*switchyard*", "-newer",
                        str(since)], capture_output=True, text=True, timeout=120)
    return sorted(p for p in r.stdout.split()
                  if not any(p == str(a) or p.startswith(f"{a}/") for a in allowed))


def make_install(build, stage, prefix, target="install"):
    """make TARGET with DESTDIR=stage PREFIX=prefix; fails on anything written outside stage."""
    marker = stage.parent / f".{stage.name}.before"
    marker.write_text("")
    r = make(build, target, f"DESTDIR={stage}", f"PREFIX={prefix}")
    assert written_outside(marker, stage) == []
    return r


def mode(path):
    return stat.S_IMODE(Path(path).stat().st_mode)


def files_in(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if not p.is_dir())
