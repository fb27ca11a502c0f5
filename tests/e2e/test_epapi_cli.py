"""
`switchyard endpoints list|get|create|update|delete|rotate` (core/cli/
endpoints.c): the admin API's endpoint routes from a shell, human output
and --json, the API's refusals with the key they concern, and mistakes of
usage with exit 2 before anything is asked.
"""

import json

from conftest import cli
from epapi_helpers import call, epapi_daemon, ok
from test_ops_helpers import ops_daemon  # noqa: F401 (fixture)


def eps(d, *args, input_bytes=None):
    r = cli("endpoints", *args, "-c", d.conf_dir, input_bytes=input_bytes)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_endpoints_command(ops_daemon, tmp_path):
    d = epapi_daemon(ops_daemon, tmp_path, endpoints={"cfg": {"sink": "files"}})

    # create with the shortcuts: the fresh secret is printed this once.
    rc, out, err = eps(d, "create", "acme.hook", "--sink", "hooks", "--org", "acme",
                       "--url", "https://hooks.example.com/in",
                       "--data", '{"enabled_events": ["job.*"], "url": "https://x.example.com"}')
    assert (rc, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == "endpoint acme.hook created" and lines[2] == "(shown this once: keep it now)"
    secret = lines[1].removeprefix("secret ")
    assert secret.startswith("whsec_") and len(secret) == 50
    got = ok(call(d, "GET", "/api/v1/endpoints/acme.hook"))
    assert (got["url"], got["org_id"], got["enabled_events"]) == \
        ("https://hooks.example.com/in", "acme", ["job.*"])
    assert got["secrets"] == [{"prefix": secret[:10], "expires_at": None}]

    # create from a file on stdin, --json: the API's answer as it is.
    rc, out, err = eps(d, "create", "files.one", "--file", "-", "--json",
                       input_bytes=b'{"sink": "files", "description": "from stdin"}')
    assert (rc, err) == (0, "")
    made = json.loads(out)
    assert (made["id"], made["source"], made["description"]) == ("files.one", "api", "from stdin")

    # list: config and API endpoints, with their source.
    rc, out, err = eps(d, "list")
    assert (rc, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["ENDPOINT", "SOURCE", "ORG", "SINK", "STATE"]
    assert sorted(rows[1:]) == [["acme.hook", "api", "acme", "hooks", "active"],
                                ["cfg", "config", "-", "files", "active"],
                                ["files.one", "api", "-", "files", "active"]]
    rc, out, _ = eps(d, "list", "--json")
    assert rc == 0 and json.loads(out) == ok(call(d, "GET", "/api/v1/endpoints"))

    # get: pretty JSON, only the secret's prefix.
    rc, out, err = eps(d, "get", "acme.hook")
    assert (rc, err) == (0, "") and json.loads(out) == ok(call(d, "GET", "/api/v1/endpoints/"
                                                                        "acme.hook"))
    assert secret not in out

    # update merges (null removes a key); --replace puts the object in its place.
    assert eps(d, "update", "files.one", "--data", '{"description": null, "concurrency": 3}') \
        == (0, "endpoint files.one updated\n", "")
    got = ok(call(d, "GET", "/api/v1/endpoints/files.one"))
    assert "description" not in got and got["concurrency"] == 3
    assert eps(d, "update", "files.one", "--replace", "--sink", "files") == \
        (0, "endpoint files.one updated\n", "")
    assert "concurrency" not in ok(call(d, "GET", "/api/v1/endpoints/files.one"))

    # rotate: the new secret once, and until when the previous one signs.
    rc, out, err = eps(d, "rotate", "acme.hook", "--grace", "2h")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("endpoint acme.hook: new secret whsec_")
    assert lines[0].removeprefix("endpoint acme.hook: new secret ") != secret
    assert lines[1] == "(shown this once: keep it now)"
    assert lines[2].startswith("the previous secret keeps signing beside it until 20")
    assert lines[2].endswith("Z")

    # The API's refusals: its error, with the key it concerns; --json prints the body too.
    assert eps(d, "create", "bad", "--sink", "files", "--data", '{"colour": 1}') == (
        1, "", "switchyard endpoints create: admin API answered 400: unknown key "
               "(at endpoints.bad.colour)\n")
    rc, out, err = eps(d, "update", "cfg", "--json", "--data", '{"description": "x"}')
    assert rc == 1 and json.loads(out) == {
        "error": "endpoint cfg is defined in the config files: change it there and reload"}
    assert err.startswith("switchyard endpoints update: admin API answered 409: endpoint cfg ")
    assert eps(d, "get", "nope") == (
        1, "", "switchyard endpoints get: admin API answered 404: no endpoint with that id\n")

    # delete.
    assert eps(d, "delete", "files.one") == (
        0, "endpoint files.one deleted; its pending deliveries are dead letters\n", "")
    assert call(d, "GET", "/api/v1/endpoints/files.one").status == 404

    # Mistakes of usage: exit 2, nothing asked.
    for args, msg in (
            (["get"], "switchyard endpoints get: which endpoint? (switchyard endpoints get ID; "
                      "switchyard endpoints list lists them)\n"),
            (["get", "a/b"], "switchyard endpoints get: \"a/b\" is not an endpoint id (letters, "
                             "digits, '_', '-' and '.', at most 128)\n"),
            (["get", "x", "--grace", "1h"], "switchyard endpoints get: --grace is not an option "
                                            "of get (switchyard endpoints --help)\n"),
            (["create", "x", "--data", "[1]"], "switchyard endpoints create: --data is not a "
                                               "JSON object\n"),
            (["update", "x", "--data", '{"a": 1} }'], "switchyard endpoints update: --data is "
                                                       "not a JSON object\n"),
            (["create", "x", "--data", "{}", "--file", "-"], "switchyard endpoints create: "
                                                             "--data or --file, not both\n"),
            (["delete", "x", "y"], "switchyard endpoints delete: unexpected argument \"y\" "
                                   "(switchyard endpoints delete --help)\n")):
        assert eps(d, *args) == (2, "", msg), args
    r = cli("endpoints", "frobnicate")
    assert r.returncode == 2
    assert r.stderr.decode().startswith('switchyard endpoints: unknown action "frobnicate"\n'
                                        "usage: switchyard endpoints ")


def test_endpoints_help():
    r = cli("endpoints", "--help")
    assert (r.returncode, r.stderr) == (0, b"")
    out = r.stdout.decode()
    assert out.startswith("usage: switchyard endpoints ACTION") and "Exit status: " in out
    for word in ("list", "get ID", "create ID", "update ID", "delete ID", "rotate ID", "--json",
                 "--data", "--file", "--sink", "--url", "--org", "--replace", "--grace",
                 "--config", "--admin"):
        assert word in out, word
    assert "  endpoints " in cli("--help").stdout.decode()
