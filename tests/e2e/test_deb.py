"""
The Debian packages `make deb` builds (debian/), once per session:

- they are switchyard_<VERSION>_<arch>.deb and switchyard-dev_..., built in
  a build folder of the tests' own, and the source tree is left as it was
  (no debian/ build files, no packages beside it);
- lintian finds nothing (debian/switchyard.lintian-overrides explains the
  two tags it overrides);
- each holds exactly its files, /etc/switchyard/conf.d/*.json are
  conffiles, and the binary's compiled-in plugin folder is the packaged one;
- dpkg installs both into a scratch root (--root with chrootless
  maintainer scripts, so nothing outside it changes): the postinst makes
  the system user switchyard and the state folder, gives the config to its
  group, enables the unit; the installed binary prints VERSION and the
  commit and checks the packaged config; purge removes state and modes.

Building takes a minute and tells nothing about sanitizers: under
`make check` (SANITIZED) the module is skipped; `make test` runs it once.
"""

import grp
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, SANITIZED
from install_helpers import mode, written_outside

pytestmark = pytest.mark.skipif(
    SANITIZED, reason="the packages are built with the Debian flags, not the sanitizer build "
                      "under test; make test builds and checks them once")

VERSION = (ROOT / "VERSION").read_text().strip()
# The sink ABI the headers declare ("2.1"), as `switchyard version` prints it.
ABI = ".".join(re.search(rf"#define SY_ABI_VERSION_{p} (\d+)",
                         (ROOT / "sdk/include/switchyard/sink.h").read_text()).group(1)
               for p in ("MAJOR", "MINOR"))
CONF = ["10-core.json", "15-admin.json", "20-sinks.json", "30-endpoints.json"]


def git(*args):
    r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def tree_commit():
    """The commit the Makefile compiles in: git describe in a checkout, else "unknown"."""
    if git("rev-parse", "--show-toplevel") != str(ROOT):
        return "unknown"
    return git("describe", "--always", "--dirty", "--abbrev=12", "--match=NONE")


def arch():
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()


def tree_state():
    """What make deb must not change: git's view of the tree, debian/, and the folder above."""
    return (git("status", "--porcelain", "--untracked-files=all"),
            sorted(str(p.relative_to(ROOT)) for p in (ROOT / "debian").rglob("*")),
            sorted(p.name for p in ROOT.parent.glob("switchyard*_*")))


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    if not (shutil.which("dpkg-buildpackage") and shutil.which("dh")):
        pytest.fail("debhelper is missing: scripts/deps.sh test installs it", pytrace=False)
    build = tmp_path_factory.mktemp("debbuild")
    before = tree_state()
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"BUILD={build}", "deb"],
                       capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, f"make deb failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    assert tree_state() == before, "make deb changed the source tree"
    # The copy built in its own build folder, not in the BUILD given to make deb.
    assert sorted(p.name for p in build.iterdir()) == ["deb"]
    return build / "deb", r


def deb(debs, name):
    return debs[0] / f"{name}_{VERSION}_{arch()}.deb"


def contents(path):
    """Paths in a .deb (directories end in /) with their modes, from dpkg-deb -c."""
    r = subprocess.run(["dpkg-deb", "-c", str(path)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        perms, _, _, _, _, name = line.split(None, 5)
        if name != "./":
            out[name[2:]] = perms  # "./usr/bin/x" -> "usr/bin/x"
    return out


def test_make_deb_builds_both_packages_and_leaves_the_tree_alone(debs):
    folder, r = debs
    a = arch()
    assert sorted(p.name for p in folder.glob("*.deb")) == sorted([
        f"switchyard_{VERSION}_{a}.deb", f"switchyard-dev_{VERSION}_{a}.deb",
        f"switchyard-dbgsym_{VERSION}_{a}.deb"])
    # The version is VERSION's, in the package and its changelog.
    for name in ("switchyard", "switchyard-dev"):
        field = subprocess.run(["dpkg-deb", "-f", str(deb(debs, name)), "Version"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert field == VERSION, name
    changelog = (folder / f"switchyard-{VERSION}/debian/changelog").read_text()
    assert changelog.startswith(f"switchyard ({VERSION}) unstable; urgency=medium\n\n"
                                f"  * Switchyard {VERSION}, built from commit {tree_commit()}.\n")


def test_lintian_finds_nothing_but_the_override(debs):
    if not shutil.which("lintian"):
        pytest.fail("lintian is missing: scripts/deps.sh test installs it", pytrace=False)
    changes = debs[0] / f"switchyard_{VERSION}_{arch()}.changes"
    # Every tag down to pedantic and info, and the overridden ones (O:): the
    # one override must still match (an unused one is a tag of its own).
    r = subprocess.run(["lintian", "--pedantic", "--display-info", "--show-overrides",
                        "--fail-on", "error,warning", str(changes)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r
    # N: lines are the override's comment.
    tags = "".join(l for l in r.stdout.splitlines(True) if not l.startswith("N:"))
    assert len(tags.splitlines()) == 2 and re.fullmatch(
        r"O: switchyard: package-contains-documentation-outside-usr-share-doc "
        r"\[usr/share/switchyard/portal/index\.html\]\n"
        r"O: switchyard: package-supports-alternative-init-but-no-init\.d-script "
        r"\[(usr/)?lib/systemd/system/switchyard\.service\]\n", tags), r.stdout


def test_switchyard_package_contents(debs):
    files = contents(deb(debs, "switchyard"))
    # Every plugin the package's build made (debian/rules: make all in the copy).
    plugins = sorted(p.name for p in (debs[0] / f"switchyard-{VERSION}/build/plugins").glob("*.so"))
    assert plugins
    unit = next(p for p in files if p.endswith("systemd/system/switchyard.service"))
    docs = ["CONFIG.md", "HARDENING.md", "OPERATIONS.md", "PLUGINS.md", "PORTAL.md", "QUEUES.md",
            "README.md", "WEBHOOKS.md"]
    want = ([f"etc/switchyard/conf.d/{c}" for c in CONF] +
            [unit, "usr/bin/switchyard", "usr/lib/sysusers.d/switchyard.conf",
             "usr/lib/tmpfiles.d/switchyard.conf", "usr/share/man/man5/switchyard.conf.5.gz",
             "usr/share/man/man8/switchyard.8.gz", "usr/share/doc/switchyard/copyright",
             "usr/share/doc/switchyard/changelog.gz", "usr/share/lintian/overrides/switchyard"] +
            [f"usr/share/doc/switchyard/{d}.gz" for d in docs] +
            [f"usr/lib/switchyard/plugins/{p}" for p in plugins] +
            [f"usr/share/switchyard/portal/{p.name}" for p in (ROOT / "core/portal").iterdir()])
    assert sorted(p for p in files if not p.endswith("/")) == sorted(want)
    assert unit in ("lib/systemd/system/switchyard.service",
                    "usr/lib/systemd/system/switchyard.service")
    assert files["usr/bin/switchyard"] == "-rwxr-xr-x"
    # The unit is the staged one (test_unit.py checks that): PREFIX=/usr paths.
    r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb(debs, "switchyard"))],
                       capture_output=True, check=True)
    r = subprocess.run(["tar", "-xO", f"./{unit}"], input=r.stdout, capture_output=True,
                       check=True)
    assert b"\nExecStartPre=/usr/bin/switchyard check -c /etc/switchyard/conf.d\n" in r.stdout

    conffiles = subprocess.run(["dpkg-deb", "--info", str(deb(debs, "switchyard")),
                                "conffiles"], capture_output=True, text=True, check=True)
    assert conffiles.stdout.split() == [f"/etc/switchyard/conf.d/{c}" for c in CONF]
    depends = subprocess.run(["dpkg-deb", "-f", str(deb(debs, "switchyard")), "Depends"],
                             capture_output=True, text=True, check=True).stdout
    for lib in ("libsystemd0", "libzmq5", "libsqlite3-0", "libcjson1", "liblua5.4-0",
                "systemd | systemd-standalone-sysusers | systemd-sysusers"):
        assert lib in depends, depends


def test_switchyard_dev_package_contents(debs):
    files = contents(deb(debs, "switchyard-dev"))
    multiarch = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"],
                               capture_output=True, text=True, check=True).stdout.strip()
    want = ([f"usr/include/switchyard/{h.name}"
             for h in (ROOT / "sdk/include/switchyard").glob("*.h")] +
            [f"usr/lib/{multiarch}/libswitchyard.a", f"usr/lib/{multiarch}/pkgconfig/switchyard.pc",
             "usr/share/man/man3/switchyard-sink.3.gz", "usr/share/doc/switchyard-dev/copyright",
             "usr/share/doc/switchyard-dev/changelog.gz"] +
            [f"usr/share/doc/switchyard-dev/examples/{p.name}"
             for p in (ROOT / "sdk/example").iterdir()
             if p.is_file() and p.suffix not in (".so", ".o")])
    assert sorted(p for p in files if not p.endswith("/")) == sorted(want)


# --------------------------------------------------------------------------
# installed with dpkg into a scratch root
# --------------------------------------------------------------------------

def dpkg(root, *args):
    # chrootless: the maintainer scripts run with DPKG_ROOT=root and the
    # host's tools, which the root (no libc, no shell) could not run.
    # --force-depends: the root's dpkg database knows none of the libraries.
    return subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless",
                           "--force-depends", "--log=/dev/null", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(debs, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("installing a package, even into a scratch root, takes root (chown)")
    work = tmp_path_factory.mktemp("dpkgroot")
    root = work / "root"
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc"):
        (root / d).mkdir(parents=True)
    for f in ("status", "available"):
        (root / "var/lib/dpkg" / f).write_text("")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    marker = work / "before"
    marker.write_text("")
    r = dpkg(root, "-i", str(deb(debs, "switchyard")), str(deb(debs, "switchyard-dev")))
    assert r.returncode == 0, r
    assert written_outside(marker, root) == []
    return root, marker


def user(root, name, db="passwd"):
    rows = [l.split(":") for l in (root / "etc" / db).read_text().splitlines()]
    return next((r for r in rows if r[0] == name), None)


def test_dpkg_installs_and_configures_both(installed):
    root, _ = installed
    r = subprocess.run(["dpkg-query", f"--root={root}", "-W", "-f=${Package} ${Status}\n"],
                       capture_output=True, text=True, check=True)
    assert sorted(r.stdout.splitlines()) == ["switchyard install ok installed",
                                             "switchyard-dev install ok installed"]


def test_postinst_makes_the_user_the_state_folder_and_the_config_modes(installed):
    root, _ = installed
    name, _, uid, gid, gecos, home, shell = user(root, "switchyard")
    assert (gecos, home, shell) == ("Switchyard event router", "/var/lib/switchyard",
                                    "/usr/sbin/nologin")
    assert int(uid) < 1000  # a system user
    assert user(root, "switchyard", "group")[2] == gid
    uid, gid = int(uid), int(gid)

    state = root / "var/lib/switchyard"
    assert (mode(state), state.stat().st_uid, state.stat().st_gid) == (0o750, uid, gid)
    conf = root / "etc/switchyard/conf.d"
    assert (mode(conf), conf.stat().st_uid, conf.stat().st_gid) == (0o750, 0, gid)
    assert sorted(p.name for p in conf.iterdir()) == CONF
    for c in CONF:
        st = (conf / c).stat()
        assert (mode(conf / c), st.st_uid, st.st_gid) == (0o640, 0, gid), c
    # Kept by dpkg-statoverride, so an upgrade does not undo them.
    r = subprocess.run(["dpkg-statoverride", f"--root={root}", "--list"], capture_output=True,
                       text=True, check=True)
    # It names the group as this machine does (the gid may have a name here).
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = f"#{gid}"
    assert sorted(r.stdout.splitlines()) == sorted(
        [f"root {group} 750 /etc/switchyard/conf.d"] +
        [f"root {group} 640 /etc/switchyard/conf.d/{c}" for c in CONF])
    # The unit is enabled (dh_installsystemd); nothing starts without systemd.
    wants = root / "etc/systemd/system/multi-user.target.wants/switchyard.service"
    assert wants.is_symlink()
    assert os.readlink(wants) in ("/lib/systemd/system/switchyard.service",
                                  "/usr/lib/systemd/system/switchyard.service")


def test_installed_binary_prints_the_version_and_the_commit(installed):
    root, _ = installed
    for arg in ("version", "--version"):
        r = subprocess.run([str(root / "usr/bin/switchyard"), arg], capture_output=True,
                           text=True)
        assert r.returncode == 0, r
        assert r.stdout == f"switchyard {VERSION} (commit {tree_commit()}, sink ABI {ABI})\n"


def test_installed_plugin_folder_is_the_compiled_in_one(installed, tmp_path):
    root, _ = installed
    # Without -c the binary opens the folder compiled into it: the packaged
    # one, which is not on this machine (only in the scratch root).
    if Path("/usr/lib/switchyard/plugins").exists():
        pytest.skip("a switchyard package is installed on this machine")
    r = subprocess.run([str(root / "usr/bin/switchyard"), "plugins"], capture_output=True,
                       text=True, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (
        1, "switchyard: cannot open plugin folder /usr/lib/switchyard/plugins\n"), r
    assert sorted(p.name for p in (root / "usr/lib/switchyard/plugins").iterdir())


def test_installed_binary_checks_the_packaged_config(installed, tmp_path):
    root, _ = installed
    conf = tmp_path / "conf.d"
    shutil.copytree(root / "etc/switchyard/conf.d", conf)
    # The packaged config names /usr/lib/switchyard/plugins; here that is in
    # the scratch root, which one override file says, as an operator would.
    (conf / "90-local.json").write_text(
        '{"core": {"plugin_dir": "%s"}}' % (root / "usr/lib/switchyard/plugins"))
    r = subprocess.run([str(root / "usr/bin/switchyard"), "check", "-c", str(conf)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r
    assert r.stdout.endswith("configuration OK\n")
    so = re.escape(f"{root}/usr/lib/switchyard/plugins/file.so")
    assert re.search(r"^  files +plugin file \S+ \(" + so + r"\)$", r.stdout, re.M), r.stdout


def test_the_man_pages_are_installed(installed):
    root, _ = installed
    for page in ("man8/switchyard.8.gz", "man5/switchyard.conf.5.gz", "man3/switchyard-sink.3.gz"):
        r = subprocess.run(["man", "-l", str(root / "usr/share/man" / page)],
                           capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "MANWIDTH": "100"})
        assert r.returncode == 0 and "NAME" in r.stdout.splitlines(), (page, r)


def test_purge_removes_state_and_modes_and_keeps_the_user(installed):
    root, marker = installed
    (root / "var/lib/switchyard/spool.db").write_text("x")
    r = dpkg(root, "--purge", "switchyard-dev", "switchyard")
    assert r.returncode == 0, r
    assert written_outside(marker, root) == []
    assert not (root / "var/lib/switchyard").exists()
    assert not (root / "etc/switchyard").exists()
    assert not (root / "usr/bin/switchyard").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/switchyard.service").exists()
    r = subprocess.run(["dpkg-statoverride", f"--root={root}", "--list"], capture_output=True,
                       text=True)
    assert r.stdout == ""
    assert user(root, "switchyard") is not None
