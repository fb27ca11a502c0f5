#!/usr/bin/python3
"""
Deterministic corpus of bad and borderline ingress messages, each with the
classification the daemon must give it.

    scripts/gen_badinput.py                     summary of the default corpus
    scripts/gen_badinput.py --out corpus.jsonl  one JSON line per message:
        {"n": 17, "category": "bad_date", "expect": "bad_value",
         "event_id": null, "frames": ["<base64>", ...]}

The same seed always gives the same bytes (random.Random(seed), no clock,
no dict-order dependence). `expect` is "accepted" or a rejection reason as
counted under `rejected` in the stats file (core/envelope.c,
envelope_reason_name). It is computed for every message by classify(), a
re-statement of the checks in core/envelope.c, in their order:

    empty, too_big, invalid_utf8 (NUL bytes too), too_deep (a bracket count
    outside strings, before parsing), not_json, not_object, bad_value for a
    \\u0000 escape in a top-level string, then the fields: event_id,
    event_type, occurred_at, version, schema_ref, org_id, org_slug, data
    (duplicate key -> bad_value, absent -> missing_field, wrong JSON type ->
    wrong_type, bad content -> bad_value)

plus bad_frames for messages of three or more frames (decided by ingress).
Each category also states what it means to produce, and generation fails
if classify() disagrees, so the two descriptions check each other; the
end-to-end test (tests/e2e/test_badinput.py) then checks both against the
daemon. The generator only emits JSON on which Python's parser and cJSON
agree: no control bytes between tokens, no surrogate escapes, no numbers
like 01 or 1. (cJSON's strtod reads them, Python refuses them);
classify() raises Ambiguous on any of these, and random noise that hits
one is drawn again.

Categories (per 10,000): valid and borderline-valid events, duplicates of
accepted ids, truncations of valid events, type swaps, missing fields,
huge strings, deep nesting, invalid UTF-8, NUL bytes (raw and escaped),
duplicate keys, bad event ids (outside printable ASCII), bad event types, bad dates, oversized, empty, not JSON /
not an object, wrong frame counts.
"""

import argparse
import base64
import json
import random
import re
import sys
from collections import Counter

DEFAULT_SEED = 20261125
DEFAULT_N = 10000
# The e2e test runs the daemon with these limits; oversized messages stay
# under ingress's ZMQ_MAXMSGSIZE (4 * max_event_bytes + 4096), above which
# ZeroMQ drops the connection instead of delivering the message.
DEFAULT_MAX_BYTES = 16384
DEFAULT_MAX_DEPTH = 32

FIELD_MAX = 255
TYPE_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
ID_RE = re.compile(r"[\x21-\x7e]+")  # event ids: printable ASCII without spaces
REASONS = ("too_big", "empty", "invalid_utf8", "too_deep", "not_json", "not_object",
           "missing_field", "wrong_type", "bad_value", "bad_frames")


# --------------------------------------------------------------------------
# classification (core/envelope.c restated)
# --------------------------------------------------------------------------

class Ambiguous(ValueError):
    """Input where Python's json and cJSON could disagree: never generated."""


class Pairs(list):
    """A JSON object as its (key, value) pairs, duplicates and order kept."""


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")  # cJSON has no NaN / Infinity


def scan_structure(b, max_depth):
    """(too_deep, offset of a \\u0000 escape in a top-level string or None)."""
    depth, in_str, nul_esc, i, n = 0, False, None, 0, len(b)
    while i < n:
        c = b[i]
        if in_str:
            if c == 0x5C:
                if depth == 1 and nul_esc is None and n - i > 5 and b[i + 1:i + 6] == b"u0000":
                    nul_esc = i
                i += 2
                continue
            if c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > max_depth:
                return True, None
        elif c in (0x5D, 0x7D) and depth > 0:
            depth -= 1
        elif c < 0x20 and c not in (0x09, 0x0A, 0x0D):
            raise Ambiguous("control byte between tokens: cJSON skips it, Python refuses it")
        i += 1
    return False, nul_esc


def _days_in_month(y, m):
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    return 29 if m == 2 and leap else [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]


def _digits(s, at, n):
    part = s[at:at + n]
    return int(part) if len(part) == n and all(48 <= ch <= 57 for ch in part) else -1


def rfc3339_valid(text):
    """envelope_rfc3339_valid() on the UTF-8 bytes of text."""
    s = text.encode()
    if len(s) < 20:
        return False
    year, mon, day = _digits(s, 0, 4), _digits(s, 5, 2), _digits(s, 8, 2)
    hour, mnt, sec = _digits(s, 11, 2), _digits(s, 14, 2), _digits(s, 17, 2)
    if year < 0 or mon < 1 or mon > 12 or day < 1 or s[4:5] != b"-" or s[7:8] != b"-":
        return False
    if day > _days_in_month(year, mon):
        return False
    if s[10:11] not in (b"T", b"t"):
        return False
    if hour < 0 or hour > 23 or mnt < 0 or mnt > 59 or sec < 0 or sec > 60:
        return False
    if s[13:14] != b":" or s[16:17] != b":":
        return False
    p = 19
    if s[p:p + 1] == b".":
        p += 1
        f = p
        while p < len(s) and 48 <= s[p] <= 57:
            p += 1
        if p == f:
            return False
    rest = s[p:]
    if rest in (b"Z", b"z"):
        return True
    if rest[:1] not in (b"+", b"-") or len(rest) != 6 or rest[3:4] != b":":
        return False
    oh, om = _digits(rest, 1, 2), _digits(rest, 4, 2)
    return 0 <= oh <= 23 and 0 <= om <= 59


def _jtype(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Pairs):
        return "object"
    return "array"


def _check_fields(obj):
    """(reason, event_id) for a parsed top-level object."""
    def field(name):
        vals = [v for k, v in obj if k == name]
        if len(vals) > 1:
            return "dup", None
        return ("ok", vals[0]) if vals else ("absent", None)

    def id_field(name, required, null_ok):
        st, v = field(name)
        if st == "dup":
            return "bad_value"
        if st == "absent" or (null_ok and v is None):
            return "missing_field" if required else None
        if _jtype(v) != "string":
            return "wrong_type"
        if v == "" or len(v.encode()) > FIELD_MAX:
            return "bad_value"
        return None

    r = id_field("event_id", True, False)
    if r:
        return r, None
    if not ID_RE.fullmatch(field("event_id")[1]):
        return "bad_value", None
    event_id = field("event_id")[1]
    st, v = field("event_type")
    if st == "dup":
        return "bad_value", None
    if st == "absent":
        return "missing_field", None
    if _jtype(v) != "string":
        return "wrong_type", None
    if len(v.encode()) > FIELD_MAX or not TYPE_RE.fullmatch(v):
        return "bad_value", None
    for name, ok_types, content in (("occurred_at", ("string",), rfc3339_valid),
                                    ("version", ("string", "number"), None),
                                    ("schema_ref", ("string",), None)):
        st, v = field(name)
        if st == "dup":
            return "bad_value", None
        if st == "ok":
            if _jtype(v) not in ok_types:
                return "wrong_type", None
            if content and not content(v):
                return "bad_value", None
    for name in ("org_id", "org_slug"):
        r = id_field(name, False, True)
        if r:
            return r, None
    st, v = field("data")
    if st == "dup":
        return "bad_value", None
    if st == "ok" and _jtype(v) != "object":
        return "wrong_type", None
    return "accepted", event_id


_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
# Numbers cJSON's strtod takes and Python refuses: 01, -01, 1., 1.e5 (outside strings).
_ODD_NUMBER = re.compile(rb"(?<![0-9.eE+-])-?0[0-9]|[0-9]\.(?![0-9])")


def classify(body, max_bytes=DEFAULT_MAX_BYTES, max_depth=DEFAULT_MAX_DEPTH):
    """("accepted", event_id) or (reason, None) for a one-frame message body."""
    if len(body) == 0:
        return "empty", None
    if len(body) > max_bytes:
        return "too_big", None
    if b"\x00" in body:
        return "invalid_utf8", None
    try:
        text = body.decode("utf-8")  # strict: no overlongs, surrogates or > U+10FFFF
    except UnicodeDecodeError:
        return "invalid_utf8", None
    too_deep, nul_esc = scan_structure(body, max_depth)
    if too_deep:
        return "too_deep", None
    if _LONE_SURROGATE.search(body):
        raise Ambiguous("surrogate escape: cJSON refuses lone ones, Python takes them")
    if _ODD_NUMBER.search(_STRING.sub(b'""', body)):
        raise Ambiguous("a number cJSON reads and Python refuses (01, 1.)")
    if text.startswith("\ufeff"):
        text = text[1:]  # cJSON skips a UTF-8 byte order mark at the start
    try:
        doc = json.loads(text, strict=False, parse_constant=_no_constants,
                         object_pairs_hook=Pairs)
    except (ValueError, RecursionError):
        return "not_json", None
    if not isinstance(doc, Pairs):
        return "not_object", None
    if nul_esc is not None:
        return "bad_value", None
    return _check_fields(doc)


# --------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------

def dumps(obj):
    """Compact JSON, non-ASCII kept as UTF-8 (what publishers send)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def obj_bytes(pairs):
    """
    An object from (key, raw JSON value bytes) pairs, so duplicates and odd
    values are possible. A str key is JSON-encoded; a bytes key is used as
    is, quotes included (for escaped key names).
    """
    def key(k):
        return k if isinstance(k, bytes) else json.dumps(k, ensure_ascii=False).encode()
    return b"{" + b",".join(key(k) + b":" + v for k, v in pairs) + b"}"


TYPES = ["job.completed", "job.failed", "job.created", "artifact.ready", "sitemap.updated",
         "a", "job.step.finished", "x-1.y_2", "0.1.2"]
ORGS = ["acme", "umbrella", "initech", "h\u00e9llo", "org_\u6771\u4eac"]


class Gen:
    def __init__(self, seed, max_bytes, max_depth):
        self.r = random.Random(seed)
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.seq = 0
        self.accepted_ids = []

    def eid(self, tag):
        self.seq += 1
        return f"{tag}-{self.seq:06d}"

    def data(self):
        r = self.r
        d = {"job_id": r.randrange(10 ** 9), "status": r.choice(["succeeded", "failed", "running"])}
        k = r.randrange(4)
        if k == 1:
            d["items"] = [{"i": i, "v": r.random()} for i in range(r.randrange(1, 5))]
        elif k == 2:
            d["text"] = "".join(r.choice("ab\u00e9\u6771 \"\\/\n\t\U0001f600") for _ in range(40))
        elif k == 3:
            d["nested"] = {"a": {"b": [None, True, False, -0.5, 1e300]}}
        return d

    def envelope(self, tag="ok", **over):
        """A valid envelope as an ordered dict; override or drop (value ...) fields."""
        r = self.r
        e = {"event_id": self.eid(tag), "event_type": r.choice(TYPES),
             "occurred_at": "2026-11-25T19:09:02Z", "version": "1"}
        if r.random() < 0.8:
            org = r.choice(ORGS)
            e["org_id"] = org
            e["org_slug"] = org
        if r.random() < 0.3:
            e["schema_ref"] = "https://schemas.example.com/" + e["event_type"] + "/1"
        e["data"] = self.data()
        for k, v in over.items():
            if v is ...:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def valid_body(self, tag="ok"):
        return dumps(self.envelope(tag))

    # Each category: fn(gen) -> (frames, intended) where intended is a reason,
    # "accepted", or None (classify() decides: truncations, random bytes).

    def c_valid(self):
        r = self.r
        k = r.randrange(16)
        if k == 0:
            e = self.envelope(occurred_at="2024-02-29T23:59:60.123456+05:30")
        elif k == 1:
            e = self.envelope(occurred_at="2026-01-01t00:00:00z", version=2)
        elif k == 2:
            e = self.envelope(org_id=None, org_slug=None)
        elif k == 3:
            e = self.envelope(event_id=self.eid("long").ljust(FIELD_MAX, "x"))
        elif k == 4:
            e = self.envelope(event_type=".".join(["s"] * 128))  # 255 bytes exactly
        elif k == 5:
            e = self.envelope(data=..., version=..., occurred_at=..., org_id=..., org_slug=...)
        elif k == 6:
            # Every byte the event id alphabet allows.
            e = self.envelope(event_id=self.eid("".join(map(chr, range(0x21, 0x7f)))))
        elif k == 7:
            # Brackets inside strings do not count as nesting.
            e = self.envelope(data={"s": "[" * 500 + "{" * 500})
        elif k == 8:
            # Nesting exactly at the limit: the object is level 1, then max_depth - 1 arrays.
            d = self.max_depth - 1
            body = dumps(self.envelope())[:-1] + b',"x":' + b"[" * d + b"]" * d + b"}"
            return [body], "accepted"
        elif k == 9:
            # An escaped NUL below the top level is data, not routing input.
            e = self.envelope(data={"s": "a\u0000b"})
        elif k == 10:
            # Duplicate keys below the top level, and unknown top-level keys twice.
            eid = self.eid("dupdata")
            body = obj_bytes([("event_id", dumps(eid)), ("event_type", b'"job.x"'),
                              ("extra", b"1"), ("extra", b"2"),
                              ("data", b'{"a":1,"a":2}')])
            return [body], "accepted"
        elif k == 11:
            # Whitespace around the object and a byte order mark (cJSON skips it).
            pre = r.choice([b" \n\t", b"\xef\xbb\xbf", b"\r\n"])
            return [pre + self.valid_body("ws") + b" \n"], "accepted"
        elif k == 12:
            # Escaped key names and values decode to the real names.
            eid = self.eid("esc")
            body = (b'{"event\\u005fid":' + dumps(eid) + b',"event_type":"job.\\u0063ompleted",'
                    b'"org_id":"\\u0061cme","data":{}}')
            return [body], "accepted"
        elif k == 13:
            # Exactly max_bytes.
            e = self.envelope(data={"pad": ""})
            body = dumps(e)
            pad = self.max_bytes - len(body)
            e["data"]["pad"] = "p" * pad
            return [dumps(e)], "accepted"
        elif k == 14:
            # [topic, body]: the topic is not the type; routing uses the body.
            return [b"some.topic", self.valid_body("topic")], "accepted"
        else:
            e = self.envelope()
        return [dumps(e)], "accepted"

    def c_duplicate_id(self):
        """A new body reusing the id of an event accepted earlier: accepted, then "dup"."""
        if not self.accepted_ids:
            return self.c_valid()
        eid = self.r.choice(self.accepted_ids)
        return [dumps(self.envelope(event_id=eid))], "accepted"

    def c_truncated(self):
        body = self.valid_body("trunc")
        cut = self.r.randrange(0, len(body))
        return [body[:cut]], None

    def c_type_swap(self):
        r = self.r
        swaps = {
            "event_id": [1, 1.5, True, None, [], {}, ["a"]],
            "event_type": [7, False, None, ["job.completed"], {"t": "job"}],
            "occurred_at": [1764097742, None, True, [], {}],
            "version": [None, True, [], {"v": 1}],
            "schema_ref": [1, None, False, [], {}],
            "org_id": [1, True, [], {}, ["acme"]],
            "org_slug": [0, False, [], {}],
            "data": ["x", 1, None, True, [], [{}]],
        }
        name = r.choice(sorted(swaps))
        val = r.choice(swaps[name])
        e = self.envelope("swap", **{name: val})
        return [dumps(e)], "wrong_type"

    def c_missing(self):
        r = self.r
        k = r.randrange(4)
        if k == 0:
            e = self.envelope("miss", event_id=...)
        elif k == 1:
            e = self.envelope("miss", event_type=...)
        elif k == 2:
            e = self.envelope("miss", event_id=..., event_type=...)
        else:
            return [b"{}"], "missing_field"
        return [dumps(e)], "missing_field"

    def c_huge(self):
        r = self.r
        k = r.randrange(6)
        if k == 0:
            return [dumps(self.envelope(event_id="i" * (FIELD_MAX + 1 + r.randrange(2000))))], "bad_value"
        if k == 1:
            return [dumps(self.envelope(event_type="t" * (FIELD_MAX + 1)))], "bad_value"
        if k == 2:
            # 128 two-byte characters: 256 bytes, too long although 128 characters.
            return [dumps(self.envelope(org_id="\u00e9" * 128))], "bad_value"
        if k == 3:
            return [dumps(self.envelope(org_slug="s" * 4000))], "bad_value"
        if k == 4:
            # A big string that still fits.
            return [dumps(self.envelope("big", data={"blob": "b" * (self.max_bytes // 2)}))], "accepted"
        return [dumps(self.envelope(data={"blob": "b" * (self.max_bytes * 2)}))], "too_big"

    def c_deep(self):
        r = self.r
        k = r.randrange(5)
        md = self.max_depth
        if k == 0:
            # One level past the limit: the object (1) and md arrays.
            n = md
            body = dumps(self.envelope())[:-1] + b',"x":' + b"[" * n + b"]" * n + b"}"
            return [body], "too_deep"
        if k == 1:
            n = min(5000, self.max_bytes // 2 - 100)
            return [b'{"event_id":"d","event_type":"job.x","data":{"x":' + b"[" * n + b"]" * n + b"}}"], "too_deep"
        if k == 2:
            # Unbalanced: only openers (the scan runs before the parser).
            return [b"{" * (md + 1 + r.randrange(100))], "too_deep"
        if k == 3:
            # Objects, not arrays.
            body = b'{"a":' * (md + 1) + b"1" + b"}" * (md + 1)
            return [body], "too_deep"
        # Deep but closers first: depth never rises, so it reaches the parser.
        return [b"]" * 100 + b"[" * (md - 1)], "not_json"

    def c_bad_utf8(self):
        r = self.r
        bad = r.choice([b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf",
                        b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
                        b"\xf8\x88\x80\x80\x80", b"\x80", b"\xbf", b"\xe2\x82", b"\xf0\x9f\x98",
                        b"\xc3", b"\xe2\x28\xa1"])
        body = dumps(self.envelope(data={"s": "@"}))
        where = r.randrange(4)
        if where == 0:
            body = body.replace(b"@", bad)
        elif where == 1:
            body = body.replace(b'"event_id"', b'"event_' + bad + b'id"')
        elif where == 2:
            body = bad + body
        else:
            body = body + bad
        return [body], "invalid_utf8"

    def c_nul(self):
        r = self.r
        k = r.randrange(7)
        body = dumps(self.envelope(data={"s": "@"}))
        if k == 0:
            return [body.replace(b"@", b"\x00")], "invalid_utf8"
        if k == 1:
            return [body + b"\x00"], "invalid_utf8"
        if k == 2:
            return [b"\x00" * r.randrange(1, 64)], "invalid_utf8"
        if k == 3:
            # Escaped NUL in a top-level value: receivers would see another id than we routed on.
            eid = self.eid("nul")
            return [obj_bytes([("event_id", dumps(eid)[:-1] + b'\\u0000x"'),
                               ("event_type", b'"job.x"')])], "bad_value"
        if k == 4:
            return [obj_bytes([("event_id", b'"a"'), ("event_type", b'"job.x\\u0000"')])], "bad_value"
        if k == 5:
            # Escaped NUL in a top-level key.
            return [b'{"event_id":"a","event_type":"job.x","org_id\\u0000x":"acme"}'], "bad_value"
        # Nested: accepted (the envelope's own fields are not affected).
        eid = self.eid("nulnest")
        return [obj_bytes([("event_id", dumps(eid)), ("event_type", b'"job.x"'),
                           ("data", b'{"k\\u0000":"v\\u0000"}')])], "accepted"

    def c_dup_key(self):
        r = self.r
        name = r.choice(["event_id", "event_type", "occurred_at", "version", "schema_ref",
                         "org_id", "org_slug", "data"])
        good = {"event_id": dumps(self.eid("dup")), "event_type": b'"job.completed"',
                "occurred_at": b'"2026-11-25T19:09:02Z"', "version": b'"1"',
                "schema_ref": b'"s"', "org_id": b'"acme"', "org_slug": b'"acme"',
                "data": b"{}"}
        pairs = [(k, v) for k, v in good.items()]
        # The same value twice, or another one: both refused (parsers differ on which wins).
        second = good[name] if r.random() < 0.5 else {
            "event_id": b'"other"', "event_type": b'"job.failed"',
            "occurred_at": b'"2020-01-01T00:00:00Z"', "version": b"2", "schema_ref": b'"t"',
            "org_id": b'"umbrella"', "org_slug": b'"u"', "data": b'{"a":1}'}[name]
        key = name
        if r.random() < 0.3:
            # The second copy spelled with an escape: it decodes to the same name.
            esc = "\\u%04x" % ord(name[0]) + name[1:]
            key = b'"' + esc.encode() + b'"'
        pairs.insert(r.randrange(len(pairs) + 1), (key, second))
        return [obj_bytes(pairs)], "bad_value"

    def c_bad_id(self):
        """Event ids outside printable ASCII without spaces (core/envelope.c)."""
        r = self.r
        bad = r.choice(["\u00e9\u6771", " ", "\t", "\x7f", "\n", "\u00a0", "\U0001f600",
                        "\r\nX-Injected: 1", "\x1b[31m", "\u0085"])
        eid = self.eid("id")
        return [dumps(self.envelope(event_id=r.choice([bad + eid, eid + bad])))], "bad_value"

    def c_bad_type(self):
        r = self.r
        t = r.choice(["Job.completed", "job completed", ".job", "job.", "job..completed", "*",
                      "job.*", "j\u00f6b.done", "job/completed", "JOB", "job.Completed", "",
                      " job", "job\t", "job.completed\n", "a.b.", "\u0130", "job:done",
                      "job.completed.", "job\\u002ecompleted"])
        if t == "job\\u002ecompleted":  # an escaped dot decodes to a valid type
            eid = self.eid("esctype")
            return [obj_bytes([("event_id", dumps(eid)), ("event_type", b'"job\\u002ecompleted"')])], "accepted"
        return [dumps(self.envelope(event_type=t))], "bad_value"

    def c_bad_date(self):
        r = self.r
        bad = ["2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
               "2026-11-31T00:00:00Z", "2026-11-25T24:00:00Z", "2026-11-25T23:60:00Z",
               "2026-11-25T23:59:61Z", "2026-11-25T19:09:02", "2026-11-25 19:09:02Z",
               "2026-11-25", "19:09:02Z", "2026-11-25T19:09:02.Z", "2026-11-25T19:09:02+24:00",
               "2026-11-25T19:09:02+01:60", "2026-11-25T19:09:02+0100", "2026-11-25T19:09:02Z ",
               "1900-02-29T00:00:00Z", "26-11-25T19:09:02Z", "2026-1-25T19:09:02Z",
               "yesterday", "", "2026-11-25T19:09:02ZZ", "+2026-11-25T19:09:02Z",
               "2026-11-25T19:09:02.123+01:00x", "\u0662026-11-25T19:09:02Z"]
        good = ["2000-02-29T12:00:00Z", "2026-11-25T19:09:02.5-00:00", "0000-01-01T00:00:00Z",
                "9999-12-31T23:59:60.999999999+23:59"]
        if r.random() < 0.12:
            return [dumps(self.envelope(occurred_at=r.choice(good)))], "accepted"
        if r.random() < 0.08:
            return [dumps(self.envelope(occurred_at=1764097742))], "wrong_type"
        return [dumps(self.envelope(occurred_at=r.choice(bad)))], "bad_value"

    def c_oversized(self):
        r = self.r
        e = self.envelope(data={"pad": ""})
        base = len(dumps(e))
        extra = r.choice([1, 2, 100, self.max_bytes, 2 * self.max_bytes])
        e["data"]["pad"] = "p" * (self.max_bytes - base + extra)
        return [dumps(e)], "too_big"

    def c_empty(self):
        return [b""], "empty"

    def c_not_json(self):
        r = self.r
        k = r.randrange(14)
        if k == 0:
            return [r.choice([b"hello", b"{event_id: 1}", b"{'event_id': 'a'}", b"nul",
                              b'{"a":1,}', b'{"a" 1}', b"NaN", b"Infinity", b"undefined",
                              b'{"a":.5}', b'{"a":"\\x"}', b'{"a":"\\u12"}'])], "not_json"
        if k == 1:
            return [self.valid_body("trail") + b" x"], "not_json"
        if k == 2:
            return [self.valid_body("two") + self.valid_body("two")], "not_json"
        if k == 3:
            return [r.choice([b"[]", b"[{}]", b"1", b"-0.5", b'"event"', b"null", b"true",
                              b"false", b" [1,2,3] "])], "not_object"
        if k == 4:
            return [b"[" + self.valid_body("arr") + b"]"], "not_object"
        if k == 5:
            # Printable ASCII noise (no control bytes: see classify()).
            n = r.randrange(1, 200)
            return [bytes(r.randrange(0x20, 0x7F) for _ in range(n))], None
        if k == 6:
            # Random bytes: usually invalid UTF-8, occasionally something else.
            n = r.randrange(1, 300)
            b = bytes(r.randrange(256) for _ in range(n))
            return [b], None
        if k == 7:
            return [self.valid_body("unclosed")[:-1]], "not_json"
        if k == 8:
            return [b'{"event_id":"a","event_type":"b",' + b'"k":' * 3 + b"}"], "not_json"
        if k == 9:
            return [b"\xef\xbb\xbf\xef\xbb\xbf{}"], "not_json"  # only one BOM is skipped
        if k == 10:
            # A missing closing quote inside data.
            return [self.valid_body("quote").replace(b'"status":"', b'"status":', 1)], "not_json"
        if k == 11:
            return [b"{" + b" " * r.randrange(1, 1000)], "not_json"
        if k == 12:
            return [b'{"event_id":"a","event_type":"b"}' + b"}"], "not_json"
        # Value separators swapped.
        return [self.valid_body("sep").replace(b",", b";", 1)], "not_json"

    def c_bad_frames(self):
        r = self.r
        n = r.choice([3, 3, 4, 5])
        body = self.valid_body("frames")
        frames = [b"topic", body] + [b"extra%d" % i for i in range(n - 2)]
        return frames, "bad_frames"


# Share of each category, per 10,000 messages.
MIX = [
    ("valid", 1800), ("bad_event_id", 100), ("duplicate_id", 150), ("truncated", 1200), ("type_swap", 950),
    ("missing_field", 350), ("huge_string", 450), ("deep", 600), ("invalid_utf8", 800),
    ("nul", 600), ("duplicate_key", 600), ("bad_event_type", 550), ("bad_date", 550),
    ("oversized", 200), ("empty", 150), ("not_json", 700), ("bad_frames", 250),
]
_METHOD = {"valid": "c_valid", "duplicate_id": "c_duplicate_id", "truncated": "c_truncated",
           "type_swap": "c_type_swap", "missing_field": "c_missing", "huge_string": "c_huge",
           "deep": "c_deep", "invalid_utf8": "c_bad_utf8", "nul": "c_nul",
           "duplicate_key": "c_dup_key", "bad_event_type": "c_bad_type", "bad_event_id": "c_bad_id", "bad_date": "c_bad_date",
           "oversized": "c_oversized", "empty": "c_empty", "not_json": "c_not_json",
           "bad_frames": "c_bad_frames"}


def generate(n=DEFAULT_N, seed=DEFAULT_SEED, max_bytes=DEFAULT_MAX_BYTES,
             max_depth=DEFAULT_MAX_DEPTH):
    """
    A list of n dicts: {"n", "category", "frames" (list of bytes), "expect",
    "event_id" (accepted only)}, in a seeded shuffled order. Raises
    AssertionError when a category's intent and classify() disagree.
    """
    g = Gen(seed, max_bytes, max_depth)
    total = sum(w for _, w in MIX)
    plan = []
    for cat, w in MIX:
        plan += [cat] * (n * w // total)
    while len(plan) < n:
        plan.append("valid")
    g.r.shuffle(plan)
    cases = []
    for i, cat in enumerate(plan):
        for _attempt in range(50):
            try:
                frames, intended = getattr(g, _METHOD[cat])()
                if len(frames) >= 3:
                    expect, eid = "bad_frames", None
                else:
                    expect, eid = classify(frames[-1], max_bytes, max_depth)
                break
            except Ambiguous:
                continue  # only random noise can hit this; draw again
        else:
            raise AssertionError(f"category {cat}: 50 ambiguous draws in a row")
        if intended is not None and intended != expect:
            raise AssertionError(f"message {i} ({cat}): meant {intended}, classify() says "
                                 f"{expect}: {frames[-1][:200]!r}")
        if expect == "accepted":
            g.accepted_ids.append(eid)
        cases.append({"n": i, "category": cat, "frames": frames, "expect": expect,
                      "event_id": eid})
    return cases


def summary(cases):
    """Counts by expectation and by category, as printable text."""
    by_expect = Counter(c["expect"] for c in cases)
    by_cat = Counter((c["category"], c["expect"]) for c in cases)
    ids = [c["event_id"] for c in cases if c["expect"] == "accepted"]
    lines = [f"{len(cases)} messages, {sum(len(f) for c in cases for f in c['frames'])} bytes; "
             f"{len(ids)} accepted ({len(set(ids))} distinct event ids)"]
    lines += [f"  {k:<14} {by_expect[k]:>6}" for k in ["accepted", *REASONS] if by_expect[k]]
    lines.append("by category:")
    lines += [f"  {c:<16} {e:<14} {by_cat[(c, e)]:>6}" for c, e in sorted(by_cat)]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=DEFAULT_N)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                    help="core.max_event_bytes of the daemon under test")
    ap.add_argument("--max-depth", type=int, default=DEFAULT_MAX_DEPTH,
                    help="core.max_depth of the daemon under test")
    ap.add_argument("--out", help="write JSON Lines here (frames base64-encoded)")
    a = ap.parse_args()
    cases = generate(a.n, a.seed, a.max_bytes, a.max_depth)
    if a.out:
        with open(a.out, "w") as f:
            for c in cases:
                f.write(json.dumps({"n": c["n"], "category": c["category"], "expect": c["expect"],
                                    "event_id": c["event_id"],
                                    "frames": [base64.b64encode(x).decode() for x in c["frames"]]})
                        + "\n")
    print(summary(cases), file=sys.stderr if a.out is None else sys.stdout)


if __name__ == "__main__":
    main()
