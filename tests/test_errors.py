"""Every failure: one line on stderr, a documented exit code, no traceback; through the real CLI and HTTP."""

from __future__ import annotations

import json
import struct

import pytest
from click.testing import CliRunner

from hubmem import errors
from hubmem.cli import main
from hubmem.hub import fetch as hub

from .helpers import config, layout

TINY = "test/tiny"


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(hub, "_sleep", waits.append)
    return waits


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_error(result, code: int, message: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert "Traceback" not in result.stderr


def tiny_with(**overrides):
    """A copy of the tiny fixture's layout with overrides (for building broken repos)."""
    return {**layout(TINY), **overrides}


def safetensors_bytes(header: dict | bytes, claimed_length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if claimed_length is None else claimed_length) + raw


def test_invalid_repo_id(fake_hub):
    assert_error(
        run("not/a/valid/id"), 3, "'not/a/valid/id' is neither a Hub repo id (org/name) nor a local folder"
    )


def test_repo_not_found(fake_hub):
    assert_error(run("nobody/nothing"), 10, "repository 'nobody/nothing' not found")


def test_private_repo_without_token_reads_as_not_found(fake_hub):
    fake_hub.add_repo(
        "acme/secret",
        layout=layout(TINY),
        config=config(TINY),
        hub={"private": True, "token": "hf_test_token"},
    )
    assert_error(run("acme/secret"), 10, "private repos need --token or HF_TOKEN")
    ok = run("acme/secret", "--token", "hf_test_token", "--format", "json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout)["parameters"]["parameters"] == 202_048


def test_gated_repo_without_token(fake_hub):
    fake_hub.add_repo(
        "meta/gated",
        layout=layout(TINY),
        config=config(TINY),
        hub={"gated": "manual", "token": "hf_test_token"},
    )
    assert_error(run("meta/gated"), 11, "'meta/gated' is gated (accept its terms on the Hub page")
    ok = run("meta/gated", "--token", "hf_test_token", "--format", "json")
    assert ok.exit_code == 0, ok.stderr


def test_revision_not_found(fake_hub):
    assert_error(run(TINY, "--revision", "v9"), 12, "revision 'v9' not found in 'test/tiny'")
    assert_error(run(f"{TINY}@v9"), 12, "revision 'v9' not found in 'test/tiny'")


def test_no_config_json(fake_hub):
    fake_hub.add_repo("acme/noconfig", layout=layout(TINY))
    assert_error(
        run("acme/noconfig"),
        13,
        "'acme/noconfig' has no config.json (files: .gitattributes, README.md, model.safetensors)",
    )


def test_config_not_json(fake_hub):
    fake_hub.add_repo("acme/badjson", layout=layout(TINY), config=b'{"hidden_size": 64,')
    assert_error(run("acme/badjson"), 14, "config.json of 'acme/badjson' is not valid JSON")


def test_config_missing_required_field(fake_hub):
    broken = {k: v for k, v in config(TINY).items() if k != "hidden_size"}
    fake_hub.add_repo("acme/nohidden", layout=layout(TINY), config=broken)
    assert_error(
        run("acme/nohidden"), 14, "config.json lacks a usable hidden_size (looked for: hidden_size, n_embd"
    )


def test_malformed_header(fake_hub):
    fake_hub.add_repo(
        "acme/garbage",
        config=config(TINY),
        files={"model.safetensors": safetensors_bytes(b"{not json at all}")},
    )
    assert_error(
        run("acme/garbage"), 16, "malformed safetensors header in 'model.safetensors': not valid JSON"
    )


def test_truncated_header(fake_hub):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    fake_hub.add_repo(
        "acme/truncated",
        config=config(TINY),
        files={"model.safetensors": safetensors_bytes(header[:20], len(header))},
    )
    assert_error(
        run("acme/truncated"),
        16,
        f"malformed safetensors header in 'model.safetensors': file is truncated (header of {len(header)} bytes, 20 present)",
    )


def test_header_offsets_disagree_with_shape(fake_hub):
    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}
    fake_hub.add_repo(
        "acme/offsets", config=config(TINY), files={"model.safetensors": safetensors_bytes(header) + bytes(8)}
    )
    assert_error(run("acme/offsets"), 16, "tensor 'w' (F32 [4]) spans 8 bytes, expected 16")


@pytest.mark.parametrize(
    "shape, offsets",
    [
        (["2", "2"], [0, 16]),
        ([-2, -2], [0, 16]),
        ([2.0, 2], [0, 16]),
        ([True, 4], [0, 16]),
        ([4], [0, "16"]),
        ([4], [0, 8, 16]),
    ],
)
def test_header_shape_or_offsets_not_naturals(fake_hub, shape, offsets):
    header = {"w": {"dtype": "F32", "shape": shape, "data_offsets": offsets}}
    fake_hub.add_repo(
        "acme/shape", config=config(TINY), files={"model.safetensors": safetensors_bytes(header) + bytes(16)}
    )
    assert_error(
        run("acme/shape"),
        16,
        f"tensor 'w' has shape {shape!r} and data_offsets {offsets!r}; both must be lists of non-negative integers",
    )


@pytest.mark.parametrize(
    "entry, reason",
    [
        (
            {"dtype": "F32", "shape": [4], "data_offsets": 16},
            "tensor 'w' has shape [4] and data_offsets 16; both must be lists of non-negative integers",
        ),
        ("not an object", "tensor 'w' is 'not an object', not an object with dtype, shape and data_offsets"),
    ],
)
def test_header_entries_of_the_wrong_json_type(fake_hub, entry, reason):
    fake_hub.add_repo(
        "acme/entry",
        config=config(TINY),
        files={"model.safetensors": safetensors_bytes({"w": entry}) + bytes(16)},
    )
    assert_error(run("acme/entry"), 16, f"malformed safetensors header in 'model.safetensors': {reason}")


def test_oversized_header(fake_hub):
    fake_hub.add_repo(
        "acme/huge", config=config(TINY), files={"model.safetensors": safetensors_bytes(b"{}", 30_000_000)}
    )
    assert_error(
        run("acme/huge"),
        18,
        "refusing to parse safetensors header for 'model.safetensors': safetensors header is too big "
        "(30,000,000 bytes; huggingface_hub's limit is 25,000,000)",
    )


def test_unknown_dtype(fake_hub):
    tensors = [["model.embed_tokens.weight", "Q4_K", [1000, 64]]]
    fake_hub.add_repo(
        "acme/q4k",
        layout={"files": {"model.safetensors": {"tensors": tensors}}, "dtype_sizes": {"Q4_K": 1}},
        config=config(TINY),
    )
    assert_error(run("acme/q4k"), 17, "unknown safetensors dtype 'Q4_K'")


def test_server_error_after_retries(fake_hub, no_retry_waits):
    fake_hub.fail("/api/models/test/tiny?blobs", 503, times=None)
    assert_error(run(TINY), 20, "the Hub answered HTTP 503 for 'test/tiny'")
    assert no_retry_waits == [0.5, 1.0, 2.0]
    assert fake_hub.count("GET", "/api/models/test/tiny?blobs") == 4  # first attempt + 3 retries


def test_transient_server_error_is_retried(fake_hub, no_retry_waits):
    fake_hub.fail("/api/models/test/tiny?blobs", 503, times=2)
    result = run(TINY, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert no_retry_waits == [0.5, 1.0]


def test_timeout(fake_hub):
    fake_hub.hang("/resolve/main/config.json", 2.0)
    assert_error(run(TINY, "--timeout", "0.3"), 21, "the Hub did not answer in time for 'test/tiny'")


def test_connection_refused(fake_hub, monkeypatch):
    import socket

    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    assert_error(run(TINY), 22, "cannot reach the Hub for 'test/tiny'")


def test_offline_with_nothing_cached(fake_hub, monkeypatch):
    from huggingface_hub import constants

    # a repo no other test uses: a request left in flight by an earlier test cannot be mistaken for one
    fake_hub.add_repo("acme/offline-only", layout=layout(TINY), config=config(TINY))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert_error(
        run("acme/offline-only"),
        23,
        "offline mode (HF_HUB_OFFLINE=1) and 'acme/offline-only' was never fetched (run once online first)",
    )
    assert [r.path for r in fake_hub.requests if "offline-only" in r.path] == []


def test_offline_after_one_online_run_makes_no_request(fake_hub, monkeypatch):
    from huggingface_hub import constants

    online = run(TINY, "--format", "json")
    assert online.exit_code == 0, online.stderr
    fake_hub.reset()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = run(TINY, "--format", "json")
    assert offline.exit_code == 0, offline.stderr
    assert fake_hub.requests == []
    assert json.loads(offline.stdout)["source"] == "cache"
    assert json.loads(offline.stdout)["rows"] == json.loads(online.stdout)["rows"]


def test_unexpected_exception_is_one_line_with_debug_hint(fake_hub, monkeypatch):
    import hubmem.jobs.estimate as est

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(est, "estimate_snapshot", boom)
    assert_error(
        run(TINY),
        1,
        "internal error: RuntimeError: kaboom (set HUBMEM_DEBUG=1 for the traceback and report it)",
    )


def test_exit_codes_are_distinct():
    table = errors.exit_code_table()
    codes = [code for code, _, _ in table]
    assert len(codes) == len(set(codes))
    assert (11, "GatedRepoError", errors.GatedRepoError.meaning) in table


def test_unreachable_hub_falls_back_to_the_metadata_cached_earlier(fake_hub, monkeypatch):
    from huggingface_hub import constants

    online = hub.fetch(TINY)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: connection refused
    fallback = hub.fetch(TINY)
    assert (fallback.source, fallback.sha, fallback.headers) == ("cache", online.sha, online.headers)
    assert fallback.notes == ["the Hub could not be reached: using metadata cached earlier"]


def test_unreachable_hub_with_nothing_cached_is_a_connection_error(fake_hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(errors.HubConnectionError, match="cannot reach the Hub for 'test/tiny'"):
        hub.fetch(TINY)
