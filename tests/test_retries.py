"""Retries: slow answers and dropped connections are retried as 5xx answers are (3 more attempts,
0.5, 1 and 2 s apart); a silent Hub still fails, after the last."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.hub import fetch as hub

TINY = "test/tiny"


@pytest.fixture
def waits(monkeypatch):
    seen: list[float] = []
    monkeypatch.setattr(hub, "_sleep", seen.append)
    return seen


def test_one_slow_answer_is_retried_once(fake_hub, waits):
    fake_hub.hang("/api/models/test/tiny?blobs", 2.0, times=1)  # the first model_info outlasts --timeout
    result = CliRunner().invoke(main, [TINY, "--timeout", "0.4", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert len(fake_hub.filter("GET", "/api/models/test/tiny?blobs")) == 2
    assert waits == [hub.RETRY_WAITS[0]] == [0.5]


def test_two_slow_answers_in_a_row_are_retried(fake_hub, waits):
    fake_hub.hang("/api/models/test/tiny?blobs", 2.0, times=2)  # under load: issue 11 lost audit rows so
    result = CliRunner().invoke(main, [TINY, "--timeout", "0.3", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert len(fake_hub.filter("GET", "/api/models/test/tiny?blobs")) == 3
    assert waits == [0.5, 1.0]


def test_a_hub_that_stays_silent_fails_after_the_last_retry(fake_hub, waits):
    fake_hub.hang("/api/models/test/tiny?blobs", 3.0)  # every attempt
    result = CliRunner().invoke(main, [TINY, "--timeout", "0.3"])
    assert result.exit_code == 21
    assert result.stderr.startswith("Error: the Hub did not answer in time for 'test/tiny'")
    assert result.stderr.count("\n") == 1
    assert len(fake_hub.filter("GET", "/api/models/test/tiny?blobs")) == 4  # not more
    assert waits == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("status", [400, 404, 405, 410, 422, 501])
def test_a_refused_sharded_metadata_endpoint_falls_back_to_per_shard_reads(fake_hub, waits, status):
    fake_hub.fail("safetensors-metadata", status)
    result = CliRunner().invoke(main, ["Qwen/Qwen2.5-7B", "--precision", "bf16", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    import json

    assert json.loads(result.stdout)["parameters"]["parameters"] == 7_615_616_512  # the Hub's total
    assert len(fake_hub.filter("GET", "model.safetensors.index.json")) >= 1  # the index, then each shard


@pytest.mark.parametrize("status, code", [(401, 20), (403, 20)])
def test_an_auth_refusal_of_the_endpoint_is_not_papered_over(fake_hub, waits, status, code):
    fake_hub.fail("safetensors-metadata", status)
    result = CliRunner().invoke(main, ["Qwen/Qwen2.5-7B", "--precision", "bf16"])
    assert result.exit_code == code
    assert result.stderr.count("\n") == 1


def test_an_audit_under_load_loses_no_row_to_two_slow_answers(fake_hub, waits):
    """Issue 11: 1 in 4 audits of 30 large repos lost rows to a ReadTimeout, retried once at most. Here
    every repo's model_info outlasts --timeout twice in a row; each is retried and every row comes back."""
    from .helpers import config, layout

    repos = [f"acme/loaded{i}" for i in range(4)]
    for repo in repos:
        fake_hub.add_repo(repo, layout=layout(TINY), config=config(TINY))
        fake_hub.hang(f"/api/models/{repo}", 2.0, times=2)
    result = CliRunner().invoke(main, ["audit", *repos, "--timeout", "0.3", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    import json

    rows = json.loads(result.stdout)
    assert [r["repo"] for r in rows] == repos and all(not r.get("error") for r in rows)
    assert all(len(fake_hub.filter("GET", f"/api/models/{repo}")) == 3 for repo in repos)
