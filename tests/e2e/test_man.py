"""
The man pages `make install` puts in place (conftest.py's install_stage),
rendered with `man -l` as a reader sees them:

- switchyard(8) names every command `switchyard --help` lists and every
  option each command's --help gives;
- switchyard.conf(5) lists every key of every section `switchyard keys`
  prints, and every key of every plugin installed beside it, in order,
  each with its own entry;
- switchyard-sink(3) names every type, struct field, constant, macro and
  inline function of the sink ABI header.
"""

import re
import shutil
import subprocess

import pytest

from conftest import ROOT

PAGES = {"switchyard.8": "man8", "switchyard.conf.5": "man5", "switchyard-sink.3": "man3"}


@pytest.fixture(scope="module")
def rendered(install_stage):
    """Each page as `man -l` renders it: plain ASCII, no hyphenation, wide lines."""
    if not shutil.which("man"):
        pytest.skip("man is missing: scripts/deps.sh test installs man-db")
    out = {}
    for page, sect in PAGES.items():
        path = install_stage / "usr/share/man" / sect / page
        r = subprocess.run(["man", "--no-hyphenation", "--no-justification", "-l", str(path)],
                           capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "LC_ALL": "C", "MANWIDTH": "200",
                                "MAN_KEEP_FORMATTING": ""})
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        out[page] = r.stdout
    return out


def sy(install_stage, *args):
    r = subprocess.run([str(install_stage / "usr/bin/switchyard"), *args], capture_output=True,
                       text=True, timeout=60, cwd=install_stage)
    assert r.returncode == 0, r
    return r.stdout


def has_word(text, word):
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def test_each_page_renders_with_its_name_and_section(rendered):
    for page, text in rendered.items():
        name, sect = page.rsplit(".", 1)
        first = text.splitlines()[0].split()
        assert first[0] == first[-1] == f"{name}({sect})", (page, first)
        assert "NAME" in text.splitlines() and "SEE ALSO" in text.splitlines(), page


def commands(install_stage):
    """The commands `switchyard --help` lists, and the options of each one's --help."""
    top = sy(install_stage, "--help")
    cmds = re.findall(r"^  ([a-z]+) ", top.split("commands:\n", 1)[1], re.M)
    assert "run" in cmds and "version" in cmds, top
    opts = {}
    for c in cmds:
        if c == "version":
            opts[c] = re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", sy(install_stage, c, "--help")
                                 .split("\n", 1)[0])
            continue
        text = sy(install_stage, c, "--help")
        # Options are what the help's option lines (and the usage lines) name.
        opts[c] = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])(?![\w-])",
                                        text)))
    return cmds, opts


def test_switchyard_8_has_every_command_and_option(install_stage, rendered):
    text = rendered["switchyard.8"]
    cmds, opts = commands(install_stage)
    section = text.split("\nCOMMANDS\n", 1)[1].split("\nOPTIONS\n", 1)[0]
    for c in cmds:
        # Each command has its own entry under COMMANDS, and its options appear in the page.
        assert re.search(rf"^       {c}\b", section, re.M), f"switchyard(8) has no entry for {c}"
        for o in opts[c]:
            assert has_word(text, o), f"switchyard(8) does not name {o} of switchyard {c}"
    assert sum(len(o) for o in opts.values()) > 40  # the parse found the options


def sections(install_stage):
    """[(section path, [key, ...])] as `switchyard keys` prints them."""
    out = []
    for block in sy(install_stage, "keys").split("\n\n"):
        lines = block.splitlines()
        head = re.match(r"^(\S+): ", lines[0])
        assert head, lines[0]
        keys = [re.match(r"^  (\S+) ", l).group(1) for l in lines[1:]
                if re.match(r"^  \S", l)]
        out.append((head.group(1), keys))
    return out


def entries(text):
    """Key entries of switchyard.conf(5) in order: lines `       KEY (TYPE...)`."""
    return [(i, m.group(1)) for i, l in enumerate(text.splitlines())
            for m in [re.match(r"^       (\S+) \(", l)] if m]


def test_switchyard_conf_5_has_every_core_key(install_stage, rendered):
    text = rendered["switchyard.conf.5"]
    lines = text.splitlines()
    found = entries(text)
    secs = sections(install_stage)
    assert [s for s, _ in secs] == ["core", "core.ingress[]", "core.admin", "core.store",
                                    "core.cluster", "sinks.NAME",
                                    "endpoints.ID", "endpoints.ID.breaker", "endpoints.ID.batch"]
    for path, keys in secs:
        # Each section's keys follow its heading (CORE for core, "   core.admin" ...), in order.
        heading = {"core": "CORE", "sinks.NAME": "SINKS", "endpoints.ID": "ENDPOINTS"}.get(
            path, f"   {path}")
        at = lines.index(heading)
        after = [k for i, k in found if i > at][:len(keys)]
        assert after == keys, f"switchyard.conf(5) {path}: {after} != {keys}"


def test_switchyard_conf_5_has_every_plugin_key(install_stage, rendered):
    text = rendered["switchyard.conf.5"]
    lines = text.splitlines()
    found = entries(text)
    plugin_dir = install_stage / "usr/lib/switchyard/plugins"
    names = sorted(p.stem for p in plugin_dir.glob("*.so"))
    assert names
    for name in names:
        desc = sy(install_stage, "plugins", "--dir", str(plugin_dir), "--describe", name)
        inst, eps = desc.split("\nsink instance keys", 1)[1].split("\nendpoint keys", 1)
        want = [re.match(r"^  (\S+) ", l).group(1) for part in (inst, eps)
                for l in part.splitlines() if re.match(r"^  \S", l) and l != "  (no keys)"]
        at = lines.index(f"   {name}")
        got = [k for i, k in found if i > at][:len(want)]
        assert got == want, f"switchyard.conf(5) plugin {name}: {got} != {want}"


def sink_h_names():
    """Every name the sink ABI header declares for plugin authors."""
    h = (ROOT / "sdk/include/switchyard/sink.h").read_text()
    h = re.sub(r"/\*.*?\*/", "", h, flags=re.S)
    names = set(re.findall(r"^#define (SY_\w+)", h, re.M))
    names |= set(re.findall(r"static inline \w+ (\w+)\(", h))
    names |= set(re.findall(r"^typedef (?:struct|enum) (\w+)", h, re.M))
    for body in re.findall(r"^typedef (?:struct|enum) \w+ \{(.*?)^\}", h, re.M | re.S):
        body = re.sub(r"SY_PRINTF\(\d+, \d+\)", "", body)
        body = re.sub(r"\([^()]*\)\s*;", ";", body)        # parameter lists
        names |= set(re.findall(r"\(\*(\w+)\)", body))       # function pointers
        names |= set(re.findall(r"(\w+)(?:\[\w*\])?\s*[;,=]", body))  # fields, constants
        names |= set(re.findall(r"(\w+)\s*$", body.strip()))  # an enum's last constant
    return sorted(n for n in names - {"SWITCHYARD_SINK_H"} if not n.isdigit())


def test_switchyard_sink_3_has_the_whole_abi(rendered):
    text = rendered["switchyard-sink.3"]
    names = sink_h_names()
    for n in ("sy_sink", "deliver_batch", "submit_batch", "sy_host", "complete", "emit",
              "SY_HOST_HAS", "SY_OUTCOME_INIT", "sy_outcome_set", "SY_FIELD_ARRAY",
              "SY_CFG_STRING_MAP", "attempt_timeout_ms", "reserved", "min", "max"):
        assert n in names, f"the header parse missed {n}"
    missing = [n for n in names if not has_word(text, n)]
    assert missing == [], f"switchyard-sink(3) does not name {missing}"
