"""
The core's config keys are declared once (core/config_keys.c) and printed by
`switchyard keys`; docs/CONFIG.md carries the same tables (`make docs`), so
the reference cannot drift from what the daemon checks. The plugins'
sections of CONFIG.md likewise match `switchyard plugins --describe`.
"""

import re

from conftest import PLUGIN_DIR, ROOT, cli

CONFIG_MD = ROOT / "docs" / "CONFIG.md"


def sections():
    """{path: Markdown table} from `switchyard keys --format markdown`."""
    r = cli("keys", "--format", "markdown")
    assert (r.returncode, r.stderr) == (0, b""), r
    parts = re.split(r"^## (\S+)\n\n", r.stdout.decode(), flags=re.M)
    assert parts[0] == "", parts[0]
    return {parts[i]: parts[i + 1].rstrip("\n") + "\n" for i in range(1, len(parts), 2)}


def test_every_section_is_printed():
    assert list(sections()) == ["core", "core.ingress[]", "core.admin", "core.store", "core.cluster",
                                "sinks.NAME", "endpoints.ID", "endpoints.ID.breaker",
                                "endpoints.ID.batch"]


def test_config_md_has_the_core_tables():
    doc = CONFIG_MD.read_text()
    for path, table in sections().items():
        r = cli("keys", "--format", "markdown", path)
        assert (r.returncode, r.stdout.decode()) == (0, table), path
        assert table in doc, f"docs/CONFIG.md lacks the {path} table as `switchyard keys " \
                             f"--format markdown {path}` prints it: run `make docs`"


def test_config_md_has_the_plugin_tables():
    doc = CONFIG_MD.read_text()
    plugins = sorted(p.stem for p in PLUGIN_DIR.glob("*.so"))
    assert "webhook" in plugins and "file" in plugins, plugins
    for name in plugins:
        r = cli("plugins", "--dir", PLUGIN_DIR, "--describe", name)
        assert r.returncode == 0, r
        text = "".join(l + "\n" for l in r.stdout.decode().splitlines()
                       if not l.startswith("file: "))
        assert f"\n### {name}\n\n```\n{text}```\n" in doc, \
            f"docs/CONFIG.md lacks {name}'s keys as plugins --describe prints them: run `make docs`"


def test_keys_text():
    r = cli("keys", "core")
    assert (r.returncode, r.stderr) == (0, b""), r
    out = r.stdout.decode()
    assert out.startswith('core: {"core": {...}}\n'), out
    assert "\n  workers            integer, default 4, 1 to 256, restart to change\n" in out
    assert "\n  spool              string or null, default null, restart to change\n" in out
    assert "\n  log_level          string, default \"info\", one of \"error\", \"warn\", " \
           "\"info\", \"debug\"\n" in out
    r = cli("keys", "core.admin")
    assert "\n  token              string, secret; or token_file: a file holding it\n" in \
        r.stdout.decode()
    r = cli("keys")
    assert (r.returncode, r.stderr) == (0, b""), r
    heads = re.findall(r"^(\S+): ", r.stdout.decode(), flags=re.M)
    assert heads == list(sections()), heads


def test_keys_refuses_unknown_sections_and_formats():
    r = cli("keys", "core.nope")
    assert (r.returncode, r.stdout, r.stderr.decode()) == \
        (2, b"", 'switchyard keys: no section "core.nope" (switchyard keys --help lists them)\n')
    r = cli("keys", "--format", "roff")
    assert (r.returncode, r.stderr.decode()) == \
        (2, "switchyard keys: --format is text, markdown or scdoc\n")
    r = cli("keys", "core", "stray")
    assert (r.returncode, r.stderr.decode()) == \
        (2, 'switchyard keys: unexpected argument "stray" (switchyard keys --help)\n')
    r = cli("keys", "--help")
    help_text = r.stdout.decode()
    for path in sections():
        assert re.search(rf"^  {re.escape(path)} ", help_text, re.M), path
