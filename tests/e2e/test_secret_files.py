"""
Secrets kept out of conf.d (issue 10, item 9): every secret key x of a
plugin (webhook secrets, form token, amqp url and password, sqs
credentials) and core.admin.token may be given as x_file, the path of a
file holding it: the first line for one secret, one per non-empty line for
a list. The daemon behaves exactly as with the inline value (a webhook
signs with the file's secrets), and the secret shows nowhere: not in
`check` output, the log, the stats file or the notices of dead letters.
Both x and x_file, an unreadable file, or an empty one are config errors
naming the file and the key; a file other users can read is a warning.
"""

import os
import sys
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, cli, event, free_ports, write_config
from test_security import (ADMIN_TOKEN, assert_no_secrets, echo_server,  # noqa: F401
                           need_plugin, quiet_daemon, secret_config)

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from webhook_receiver import Receiver, verify_like_the_docs  # noqa: E402

S1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
S2 = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24="
# The keys each plugin flags secret (the *_file variants exist for these).
SECRET_KEYS = {"secrets", "token", "url", "password", "access_key_id", "secret_access_key",
               "session_token"}


def secret_file(path, value, mode=0o600):
    """Writes value (a string, or a list: one per line) the way an operator would."""
    text = "\n".join(value) if isinstance(value, list) else value
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return str(path)


def to_files(folder, objects):
    """Moves every secret key of each object (sink or endpoint) into a 0600 file: x -> x_file."""
    folder.mkdir(exist_ok=True)
    for name, obj in objects.items():
        for key in sorted(SECRET_KEYS & set(obj)):
            if key == "url" and obj.get("plugin") != "amqp":
                continue  # only the amqp URL is a secret key (it carries a password)
            obj[key + "_file"] = secret_file(folder / f"{name}.{key}", obj.pop(key))


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_webhook_secrets_file_signs_with_every_line(switchyard, receiver, tmp_path):
    keys = secret_file(tmp_path / "hook.keys", ["", S1, "", S2 + "\r", ""])
    d = switchyard(sinks={"hooks": {"plugin": "webhook", "allow_private_networks": True}},
                   endpoints={"ep": {"sink": "hooks", "url": receiver.url("/in"),
                                     "secrets_file": keys}})
    body = event("evt-file-1")
    d.push([body])
    (req,) = receiver.wait(1)
    assert req.body == body
    assert len(req.headers["svix-signature"].split(" ")) == 2
    assert verify_like_the_docs(S1, req.headers, body) == "evt-file-1"
    assert verify_like_the_docs(S2, req.headers, body) == "evt-file-1"
    assert d.stop() == 0
    assert_no_secrets("the daemon log", d.log_path.read_bytes(), {"s1": S1, "s2": S2})
    assert "secret file" not in d.log()  # 0600: no warning


def test_every_secret_key_from_a_file(quiet_daemon, tmp_path, echo_server):  # noqa: F811
    """secret_config() of test_security with every secret moved into files: same behaviour."""
    closed = free_ports(1)[0]
    sinks, endpoints, secrets = secret_config(tmp_path, echo_server, closed)
    to_files(tmp_path / "secrets", sinks)
    to_files(tmp_path / "secrets", endpoints)
    token_file = secret_file(tmp_path / "secrets" / "admin.token", ADMIN_TOKEN)
    secrets["admin_token"] = ADMIN_TOKEN
    admin = {"listen": f"127.0.0.1:{free_ports(1)[0]}", "token_file": token_file}
    conf = tmp_path / "check.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR), "log_level": "debug", "admin": admin,
                        "ingress": [{"type": "pull",
                                     "bind": f"tcp://127.0.0.1:{free_ports(1)[0]}"}]},
                 sinks, endpoints)
    assert not any(k in json_keys(sinks) | json_keys(endpoints) for k in SECRET_KEYS - {"url"})
    r = cli("check", "-c", conf)
    assert r.returncode == 0, r.stderr.decode()
    assert b"configuration OK" in r.stdout
    assert_no_secrets("`switchyard check` output", r.stdout + r.stderr, secrets)

    d = quiet_daemon(sinks=sinks, endpoints=endpoints,
                     core={"log_level": "debug", "admin": admin})
    n = 3
    d.push([event(f"f-{i}", org="acme") for i in range(n)])
    failing = len(endpoints) - 1
    d.wait_stats(lambda s: s["deliveries"]["dead"] >= n * failing and
                 s["deliveries"]["ok"] >= n * failing, f"{n * failing} dead letters and notices")
    assert d.stop() == 0
    assert_no_secrets("the debug log", d.log_path.read_bytes(), secrets)
    assert_no_secrets("the stats file", d.stats_path.read_bytes(), secrets)
    notices = (tmp_path / "notices.jsonl").read_bytes()
    assert notices.count(b"webhook.delivery_failed") == n * failing
    assert_no_secrets("delivery_failed notices", notices, secrets)


def json_keys(objects):
    return {k for o in objects.values() for k in o}


def check_conf(tmp_path, endpoint):
    """`switchyard check` of one webhook endpoint; returns (exit code, stdout + stderr)."""
    need_plugin("webhook")
    conf = tmp_path / "conf.d"
    write_config(conf, {"plugin_dir": str(PLUGIN_DIR),
                        "ingress": [{"type": "pull",
                                     "bind": f"tcp://127.0.0.1:{free_ports(1)[0]}"}]},
                 {"hooks": {"plugin": "webhook"}},
                 {"ep": {"sink": "hooks", "url": "https://example.com/hook", **endpoint}})
    r = cli("check", "-c", conf)
    return r.returncode, (r.stdout + r.stderr).decode(), conf


SEKRIT = "whsec_U2VrcmV0RmlsZUNvbnRlbnRzMTIzNDU2"


@pytest.mark.parametrize("case", ["both", "missing", "empty", "folder"])
def test_secrets_file_errors_name_the_file_never_the_content(tmp_path, case):
    path = tmp_path / "hook.keys"
    endpoint = {"secrets_file": str(path)}
    if case == "both":
        secret_file(path, SEKRIT)
        endpoint["secrets"] = [SEKRIT + "x"]
        want = "endpoints.ep.secrets_file: give either secrets or secrets_file, not both"
    elif case == "missing":
        want = f"endpoints.ep.secrets_file: cannot read {path}: No such file or directory"
    elif case == "empty":
        secret_file(path, "\n\r\n")
        want = f"endpoints.ep.secrets_file: {path} holds no secret (every line is empty)"
    else:
        path.mkdir()
        want = f"endpoints.ep.secrets_file: {path} is not a regular file"
    rc, out, conf = check_conf(tmp_path, endpoint)
    assert rc == 2, out
    assert f"{conf}/30-endpoints.json: {want}\n" in out
    assert "U2VjcmV0RmlsZUNvbnRlbnRz" not in out and "SecretFileContents" not in out


def test_world_readable_secret_file_is_a_warning(tmp_path):
    path = tmp_path / "hook.keys"
    secret_file(path, SEKRIT, mode=0o644)
    rc, out, _ = check_conf(tmp_path, {"secrets_file": str(path)})
    assert rc == 0, out
    assert (f'level=warn msg="secret file readable by every user" file={path} mode=0644 '
            'fix="chmod o-rwx (0600, or 0640 for the daemon\'s group)"') in out
    assert "U2VjcmV0RmlsZUNvbnRlbnRz" not in out
    # Group-readable is the intended layout (root:switchyard 0640): no warning.
    os.chmod(path, 0o640)
    rc, out, _ = check_conf(tmp_path, {"secrets_file": str(path)})
    assert rc == 0 and "secret file" not in out, out
