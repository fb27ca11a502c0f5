"""
Identifiers that must travel unchanged (issue 10, item 11):

- an event_id outside printable ASCII without spaces (0x21-0x7E) is
  refused as bad_value, with the reason in the ack answer, and nothing is
  delivered (it would go raw into svix-id, which receivers read as Latin-1);
- an ack tag over 256 bytes is refused with an error frame carrying the
  whole tag, so the publisher can match the answer (it used to come back
  cut short);
- a config string holding \\u0000 is refused (cJSON would read
  "beta\\u0000acme" as "beta").
"""

import zmq

from conftest import PLUGIN_DIR, cli, event, free_ports, write_config
from test_ops_helpers import file_sink, ops_daemon, sink_ids  # noqa: F401 (fixture)

ALPHABET_ERROR = ("error bad_value: event_id: byte {} is 0x{:02X}; only printable ASCII "
                  "without spaces (0x21-0x7E) is allowed")


def ack_exchange(addr, messages, timeout_ms=20000):
    """Sends each [tag, body] over one DEALER; returns {tag: answer text} once all are answered."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(addr)
    answers = {}
    try:
        for m in messages:
            s.send_multipart(m)
        while len(answers) < len(messages):
            assert s.poll(timeout_ms), f"no answer within {timeout_ms}ms; got {answers}"
            frames = s.recv_multipart()
            assert len(frames) == 2, frames
            assert frames[0] not in answers, f"two answers for tag {frames[0]!r}"
            answers[frames[0]] = frames[1].decode()
    finally:
        s.close()
        ctx.term()
    return answers


def test_event_id_outside_printable_ascii_refused(ops_daemon, tmp_path):
    out = tmp_path / "out.jsonl"
    d = ops_daemon(sinks={"files": file_sink(out)}, endpoints={"all": {"sink": "files"}})
    every = "".join(map(chr, range(0x21, 0x7F)))  # the whole alphabet, quotes included
    sent = [
        (b"t-utf8", event("caf\u00e9-1"), ALPHABET_ERROR.format(3, 0xC3)),
        (b"t-space", event("job 1"), ALPHABET_ERROR.format(3, 0x20)),
        (b"t-crlf", event("id\r\nX-Injected: 1"), ALPHABET_ERROR.format(2, 0x0D)),
        (b"t-del", event("\x7f"), ALPHABET_ERROR.format(0, 0x7F)),
        (b"t-nbsp", event("a\u00a0b"), ALPHABET_ERROR.format(1, 0xC2)),
        (b"t-every", event(every), f"ok {every}"),
        (b"t-plain", event("evt_01J9-x.y:z"), "ok evt_01J9-x.y:z"),
    ]
    answers = ack_exchange(d.ack_addr, [[tag, body] for tag, body, _ in sent])
    assert answers == {tag: want for tag, _, want in sent}
    d.wait_stats(lambda s: s["deliveries"]["ok"] >= 2, "the two valid events delivered")
    assert d.stop() == 0
    s = d.final_stats
    assert (s["events"]["received"], s["events"]["accepted"], s["events"]["rejected"]) == (7, 2, 5)
    assert s["rejected"]["bad_value"] == 5
    assert sorted(sink_ids(out)) == sorted([every, "evt_01J9-x.y:z"])
    assert d.run_log().count('reason=bad_value detail="event_id: byte ') == 5


def test_ack_tag_over_256_bytes_refused_with_the_whole_tag(ops_daemon, tmp_path):
    out = tmp_path / "out.jsonl"
    d = ops_daemon(sinks={"files": file_sink(out)}, endpoints={"all": {"sink": "files"}})
    t256, t257, t4k = b"a" * 255 + b"Z", b"b" * 256 + b"Z", bytes(range(256)) * 16
    answers = ack_exchange(d.ack_addr, [[t256, event("tag-256")], [t257, event("tag-257")],
                                        [t4k, event("tag-4k")]])
    long_tag = "error bad_frames: the tag is longer than 256 bytes"
    assert answers == {t256: "ok tag-256", t257: long_tag, t4k: long_tag}
    d.wait_stats(lambda s: s["deliveries"]["ok"] >= 1, "the 256-byte-tag event delivered")
    assert d.stop() == 0
    s = d.final_stats
    assert (s["events"]["received"], s["events"]["accepted"], s["events"]["rejected"]) == (3, 1, 2)
    assert s["rejected"]["bad_frames"] == 2 and s["events"]["quarantined"] == 2
    assert sink_ids(out) == ["tag-256"]


def test_nul_in_a_config_string_refused(tmp_path):
    port = free_ports(1)[0]
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull", "bind": f"tcp://127.0.0.1:{port}"}]},
                 {"files": {"plugin": "file", "path": str(tmp_path / "x.jsonl")}},
                 {"beta-only": {"sink": "files", "org_id": "beta\u0000acme"}})
    # json.dumps writes the NUL as \u0000, as an operator's editor would.
    assert b'"beta\\u0000acme"' in (conf / "30-endpoints.json").read_bytes()
    for cmd in ("check", "run"):
        r = cli(cmd, "-c", conf, timeout=30)
        assert r.returncode == 2, (cmd, r.returncode, r.stdout, r.stderr)
        assert r.stderr.decode().startswith(
            f"{conf}/30-endpoints.json: \\u0000 in a string near line 5 column 22: config "
            "strings must not contain NUL (it would cut them short)\n"), r.stderr
