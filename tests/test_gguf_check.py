"""`hubmem check` on GGUF repos: one quant file judged, and the disk for that file alone."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.hub import disk
from tests import gguf_fixtures

LLAMA = "bartowski/Llama-3.2-3B-Instruct-GGUF"
GIB = 1024**3


@pytest.fixture
def free(monkeypatch):
    monkeypatch.setattr(disk, "free_bytes", lambda path: 100 * GIB)


def check(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def test_check_counts_only_the_chosen_file(fake_hub, free, tmp_path):
    _, sizes = gguf_fixtures.built_repo(LLAMA)
    result = check(
        LLAMA + ":Q4_K_M", "-c", "8192", "--gpu", "4090", "--cache-dir", str(tmp_path), "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["quant"] == "Q4_K_M" and data["outcome"] == "ready to pull"
    assert data["disk"]["files_to_pull"] == {
        "Llama-3.2-3B-Instruct-Q4_K_M.gguf": sizes["Llama-3.2-3B-Instruct-Q4_K_M.gguf"]
    }


def test_check_without_quant_judges_the_best_file_that_fits(fake_hub, free, tmp_path):
    # on 4 GiB at -c 4096 the largest file that fits is Q8_0 (tests/test_gguf.py derives its 4,270,025,216 bytes)
    result = check(
        LLAMA, "-c", "4096", "--gpu-memory", "4GiB", "--cache-dir", str(tmp_path), "--format", "json"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["quant"] == "Q8_0"


def test_check_will_not_fit_exits_40(fake_hub, free, tmp_path):
    result = check(LLAMA, "-c", "4096", "--gpu-memory", "2GiB", "--cache-dir", str(tmp_path))
    assert result.exit_code == 40, result.stderr
    lines = result.stdout.splitlines()
    # nothing fits: the smallest file is judged, with the largest -ngl that would fit
    assert lines[0].startswith(f"{LLAMA} (") and lines[0].endswith(
        "): Q4_K_M (Llama-3.2-3B-Instruct-Q4_K_M.gguf)"
    )
    assert "does not fit (largest -ngl that fits: " in lines[3]
    assert lines[-1] == "  outcome     will not fit on the GPUs (exit 40)"
