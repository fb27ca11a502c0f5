"""
The modes of what the daemon creates (issue 10, item 10), whatever the
umask it starts with: the spool (with its -wal and -shm files) and the
quarantine hold event bodies, so only the daemon's user reads them (0600);
the stats file is for monitoring in the daemon's group (0640); folders
created for any of them are 0750; the admin token file is 0600; the file
sink writes 0640 (its file_mode) in 0750 folders. A stricter umask still
narrows them (the operator asked for that); a looser one no longer widens
them, as fopen(3) and SQLite's 0644 default did.
"""

import os
import stat

import pytest

from conftest import event
from test_ops_helpers import file_sink, ops_daemon  # noqa: F401 (fixture)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """umask(m) sets the test process's umask, which the daemon inherits; restored after."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask,private,group,folder", [
    (0o022, 0o600, 0o640, 0o750),
    (0o000, 0o600, 0o640, 0o750),
    (0o077, 0o600, 0o600, 0o700),
], ids=["umask022", "umask000", "umask077"])
def test_state_file_modes(ops_daemon, tmp_path, umask, mask, private, group, folder):
    state = tmp_path / "state"          # does not exist: the daemon creates it and below
    d = ops_daemon(start=False, sinks={"files": file_sink(state / "out" / "all.jsonl")},
                   endpoints={"all": {"sink": "files"}})
    d.spool_path = state / "spool" / "spool.db"
    d.quarantine = state / "quarantine" / "quarantine.jsonl"
    d.stats_path = state / "stats" / "stats.json"
    token = state / "admin" / "admin.token"
    d.user_core = {"admin": {"listen": d.admin_listen, "token_file": str(token)}}
    umask(mask)
    d.start()
    os.umask(0o022)
    d.push([event("m-1"), b"not json"])
    d.wait_stats(lambda s: s["deliveries"]["ok"] >= 1 and s["events"]["quarantined"] >= 1,
                 "one delivery and one quarantined message")
    # While it runs, the spool is in WAL mode: its -wal and -shm files exist.
    files = {"spool.db": d.spool_path, "spool.db-wal": state / "spool" / "spool.db-wal",
             "spool.db-shm": state / "spool" / "spool.db-shm",
             "quarantine.jsonl": d.quarantine, "stats.json": d.stats_path,
             "admin.token": token, "out/all.jsonl": state / "out" / "all.jsonl"}
    got = {name: oct(mode(p)) for name, p in files.items()}
    sink_file = 0o640 & ~mask
    assert got == {"spool.db": oct(private), "spool.db-wal": oct(private),
                   "spool.db-shm": oct(private), "quarantine.jsonl": oct(private),
                   "stats.json": oct(group), "admin.token": oct(0o600),
                   "out/all.jsonl": oct(sink_file)}
    folders = {p.name: oct(mode(p)) for p in [state, *state.iterdir()]}
    assert folders == {n: oct(folder) for n in ("state", "spool", "quarantine", "stats",
                                               "admin", "out")}
    assert d.stop() == 0
    # The stats file is rewritten (a new file renamed over it) at exit: same mode.
    assert oct(mode(d.stats_path)) == oct(group)
