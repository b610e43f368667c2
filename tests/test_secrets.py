"""A Hub token is never echoed, in any form (as given, trimmed, with a trailing newline, carriage return
or space): not on stderr, not in JSON or CSV, not in audit rows' `error`, not in `--explain`, not in the
cache. Surrounding whitespace is trimmed (as huggingface_hub trims HF_TOKEN); an empty token is exit 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubmem import api, errors
from hubmem.cli import main
from hubmem.hub import fetch as hub

from .fakehub import OTHER_TOKEN, TEST_TOKEN
from .helpers import config, layout

TINY = "test/tiny"
ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = "hf_UnknownToTheHubXq7Zr2"  # the Hub answers 401 "Invalid credentials"
FORMS = ["{}", "{}\n", "{}\r", "{}\r\n", "{} ", " {}\t\n"]  # as given: the secret is the trimmed form


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    monkeypatch.setattr(hub, "_sleep", lambda s: None)


@pytest.fixture(autouse=True)
def own_secrets(monkeypatch):
    """The tokens these tests give stay secret in these tests only."""
    monkeypatch.setattr(errors, "_secrets", set(), raising=False)


def hostile_repos(fake_hub, secret: str) -> list[str]:
    """Repos whose failures could carry the token back: gated, private, missing, a server echoing the
    Authorization header in its error, a hang, config.json that is not JSON or that names the token."""
    tiny = {"layout": layout(TINY), "config": config(TINY)}
    fake_hub.add_repo("acme/gated", **tiny, hub={"gated": "manual"})
    fake_hub.add_repo("acme/private", **tiny, hub={"private": True})
    fake_hub.add_repo("acme/echo", **tiny)
    fake_hub.fail(
        "/acme/echo", 500, times=None, headers={"X-Error-Message": f"Authorization: Bearer {secret}"}
    )
    fake_hub.add_repo("acme/reflect", **tiny)
    fake_hub.fail("/acme/reflect", 400, times=None, headers={"X-Error-Message": f"bad token {secret}!"})
    fake_hub.add_repo("acme/slow", **tiny)
    fake_hub.hang("/acme/slow", 5)
    fake_hub.add_repo("acme/badjson", layout=layout(TINY), config=b'{"model_type": "' + secret.encode())
    fake_hub.add_repo("acme/named", layout=layout(TINY), config={**config(TINY), "model_type": secret})
    fake_hub.add_repo("acme/arch", layout=layout(TINY), config={**config(TINY), "architectures": secret})
    return [
        "acme/gated",
        "acme/private",
        "nobody/nothing",
        "acme/echo",
        "acme/reflect",
        "acme/slow",
        "acme/badjson",
        "acme/named",
        "acme/arch",
        f"{TINY}@nope",  # a revision the Hub does not know
    ]


def cache_text() -> str:
    from huggingface_hub import constants

    home = Path(constants.HF_HOME)
    return "".join(p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())


@pytest.mark.parametrize("secret", [UNKNOWN, OTHER_TOKEN], ids=["unknown-token", "token-without-access"])
def test_no_failing_run_echoes_the_token(fake_hub, secret):
    refs = hostile_repos(fake_hub, secret)
    runs = []
    for ref in refs:
        for extra in ([], ["--format", "json"], ["--explain"]):
            runs.append(["estimate", ref, "--timeout", "0.25", *extra])
    for fmt in ("csv", "json", "table"):
        runs.append(["audit", *refs, TINY, "--timeout", "0.25", "--format", fmt])
    runs.append(["check", "acme/named", "--gpu", "T4"])
    runs.append([TINY, "--explain", "--format", "json"])
    codes, outputs = set(), []
    for n, args in enumerate(runs):
        given = FORMS[n % len(FORMS)].format(secret)  # every form, in turn
        result = CliRunner().invoke(main, [*args, "--token", given])
        codes.add(result.exit_code)
        outputs.append(result.stdout + result.stderr)
        assert secret not in outputs[-1], (args, outputs[-1])
        assert result.exit_code != 1, (args, result.stderr)  # each a typed error, not a crash
    # the catalogue did reach the failures it is about (an unknown token: 401 for everything)
    assert codes >= ({20, 21, 30} if secret == UNKNOWN else {0, 10, 11, 12, 14, 20, 21, 30}), codes
    if secret == OTHER_TOKEN:  # acme/named's config.json reflects the token: it is shown redacted
        assert any("architecture  ***" in text for text in outputs)
    assert secret not in cache_text()


def test_a_helper_process_audit_echoes_no_token(fake_hub):
    """The same through a real `hubmem audit` process, whose rows come from forked helpers. Less
    acme/echo, whose 500s that process retries with real waits (3.5 s): acme/reflect's 400 echoes the
    token in the error message as well, and is not retried."""
    refs = [ref for ref in hostile_repos(fake_hub, UNKNOWN) if ref != "acme/echo"]
    done = subprocess.run(
        [sys.executable, "-m", "hubmem.cli", "audit", *refs, "--timeout", "0.25", "--format", "json"]
        + ["--token", UNKNOWN + "\r\n"],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 30, done.stderr
    assert UNKNOWN not in done.stdout + done.stderr
    assert UNKNOWN not in cache_text()


@pytest.mark.parametrize("form", ["{}\n", "{}\x01x", " {}\t\r\n"], ids=["LF", "control", "padded"])
def test_hf_token_from_the_environment_is_never_echoed(fake_hub, monkeypatch, form):
    """No --token: huggingface_hub sends HF_TOKEN (trimmed, not checked); it is kept secret as well."""
    refs = hostile_repos(fake_hub, UNKNOWN)
    monkeypatch.setenv("HF_TOKEN", form.format(UNKNOWN))
    for args in (["audit", *refs, "--timeout", "0.25", "--format", "csv"], ["acme/named", "--explain"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (20, 30), result.stderr  # 401 for that token
        assert UNKNOWN not in result.stdout + result.stderr
    assert UNKNOWN not in cache_text()


@pytest.mark.parametrize("given", ["", " ", "\n", "\r\n\t "])
def test_an_empty_token_is_invalid_input_not_a_connection_error(fake_hub, given):
    for args in ([TINY], ["audit", TINY, "acme/x"], ["check", TINY, "--gpu", "T4"]):
        result = CliRunner().invoke(main, [*args, "--token", given])
        assert result.exit_code == 3, result.stderr
        assert result.stderr == "Error: --token is empty (leave it out to use HF_TOKEN or the saved login)\n"
    assert fake_hub.requests == []  # rejected before any request


@pytest.mark.parametrize(
    "given", ["hf_in side", "hf_ctl\x01x", "hf_é_token", "hf_a\nb", 'hf_"q"', "hf_a,b", "hf_a\\b"]
)
def test_a_token_with_inner_whitespace_or_control_characters_is_rejected_unechoed(fake_hub, given):
    result = CliRunner().invoke(main, [TINY, "--token", given])
    assert result.exit_code == 3
    assert result.stderr == (
        "Error: --token is not a bearer token (letters, digits and -._~+/ then any =, RFC 6750)\n"
    )
    assert fake_hub.requests == []


def test_a_token_is_sent_trimmed(fake_hub):
    fake_hub.add_repo("acme/gated", layout=layout(TINY), config=config(TINY), hub={"gated": "manual"})
    for given in (TEST_TOKEN, TEST_TOKEN + "\n", TEST_TOKEN + "\r\n", f"  {TEST_TOKEN}\t"):
        fake_hub.clear_log()
        api.estimate("acme/gated", token=given)
        assert {r.token for r in fake_hub.requests if r.server == "hub"} == {TEST_TOKEN}


def test_library_callers_get_the_same_checks():
    with pytest.raises(errors.InvalidInputError, match="--token is empty"):
        api.estimate(TINY, token=" ")
    with pytest.raises(errors.InvalidInputError, match="must be a string, not bytes"):
        api.audit_plan([TINY], token=b"hf_x")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidInputError, match="--token is empty"):
        hub.fetch(TINY, token="")


def test_every_error_message_and_hint_is_redacted():
    errors.keep_secret("hf_RedactMe123\n")
    e = errors.HubmemError("got b'Bearer hf_RedactMe123\\n' back", hint="the server said hf_RedactMe123")
    assert str(e) == "got b'Bearer ***\\n' back (the server said ***)"
    assert errors.redact("x hf_RedactMe123 y") == "x *** y"
