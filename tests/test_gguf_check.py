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
    # on 4.5 GiB at -c 4096 the largest file that fits is Q8_0 (tests/test_gguf.py derives its 4,689,653,760 bytes)
    result = check(
        LLAMA, "-c", "4096", "--gpu-memory", "4.5GiB", "--cache-dir", str(tmp_path), "--format", "json"
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


def test_audit_rows_for_gguf_repos_beside_safetensors_ones(fake_hub):
    result = CliRunner().invoke(
        main,
        [
            "audit",
            LLAMA + ":Q8_0",
            "unsloth/Qwen3-30B-A3B-GGUF",
            "openai-community/gpt2",
            "-c",
            "4096",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["precision"] for r in rows[:2]] == ["Q8_0", "Q4_K_M"]
    # Q8_0 at -c 4096: 3,414,061,312 weights, 469,762,048 KV (tests/test_gguf.py); total = VRAM
    assert rows[0]["weights"] == 3_414_061_312 and rows[0]["kv_per_token"] == 469_762_048 // 4096
    assert rows[1]["params"] == 30_532_122_624 and rows[1]["active_params"] == 3_353_032_704
    # gpt2 is judged as transformers >= 5 loads it: its F32 checkpoint (dtype auto)
    assert rows[2]["precision"] == "fp32" and rows[2]["status"] == "ok"


def test_audit_table_with_a_target(fake_hub):
    result = CliRunner().invoke(main, ["audit", LLAMA, "-c", "4096", "--gpu-memory", "4.5GiB"])
    assert result.exit_code == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith(LLAMA)]
    assert " Q8_0 " in line and line.rstrip().endswith("ok")  # the largest file that fits 4.5 GiB
