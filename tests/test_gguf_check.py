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
        LLAMA,
        "-c",
        "4096",
        "--gpu-memory",
        "4.5GiB",
        "--fit",
        "off",
        "--cache-dir",
        str(tmp_path),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["quant"] == "Q8_0"


def test_check_will_not_fit_exits_40(fake_hub, free, tmp_path):
    result = check(LLAMA, "-c", "4096", "--gpu-memory", "2GiB", "--fit", "off", "--cache-dir", str(tmp_path))
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


def test_audit_gives_one_row_per_quant_file(fake_hub):
    """No --quant: one row per quant file, each named REPO:QUANT (the syntax that picks it), in every
    format; the fits column judges each file on the target."""
    result = CliRunner().invoke(
        main, ["audit", LLAMA, "-c", "4096", "--gpu-memory", "4.5GiB", "--fit", "off"]
    )
    assert result.exit_code == 0, result.stderr
    lines = [x for x in result.stdout.splitlines() if x.startswith(LLAMA)]
    assert [x.split()[0] for x in lines] == [
        f"{LLAMA}:{q}" for q in ("F16", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
    ]
    assert all(x.rstrip().endswith("ok") for x in lines)
    rows = json.loads(
        CliRunner()
        .invoke(
            main, ["audit", LLAMA, "-c", "4096", "--gpu-memory", "4.5GiB", "--fit", "off", "--format", "json"]
        )
        .stdout
    )
    # F16 does not fit 4.5 GiB, the others do (Q8_0: 4,689,653,760 bytes, tests/test_gguf.py)
    assert [(r["precision"], r["fits"]) for r in rows] == [
        ("F16", False), ("Q4_K_M", True), ("Q5_K_M", True), ("Q6_K", True), ("Q8_0", True)
    ]  # fmt: skip
    assert rows[4]["total"] == 4_689_653_760 and rows[4]["weights"] == 3_414_061_312
    csv_out = CliRunner().invoke(main, ["audit", LLAMA, "-c", "4096", "--format", "csv"]).stdout
    assert [line.split(",")[0] for line in csv_out.splitlines()[1:]] == [
        f"{LLAMA}:{q}" for q in ("F16", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
    ]


def test_audit_with_quant_gives_the_chosen_file_alone(fake_hub):
    result = CliRunner().invoke(main, ["audit", LLAMA, "--quant", "Q6_K", "-c", "4096", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["repo"], row["precision"]) == (LLAMA, "Q6_K")


def test_audit_api_rows_per_quant_file(fake_hub):
    import hubmem

    rows = list(hubmem.audit([LLAMA, "unsloth/Qwen3-30B-A3B-GGUF"], ctx_size=4096))
    assert [r.ref for r in rows] == [f"{LLAMA}:{q}" for q in ("F16", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")] + [
        "unsloth/Qwen3-30B-A3B-GGUF"
    ]
    assert [r.row_label for r in rows][:2] == ["F16", "Q4_K_M"]
    assert rows[1].to_dict()["kv_per_token"] == 28 * 2048 * 2


def test_audit_db_stores_a_row_per_quant_file(fake_hub, tmp_path):
    import hubmem
    from hubmem.store.db import ResultsDB

    db = str(tmp_path / "a.db")
    first = [r.ref for r in hubmem.audit([LLAMA], ctx_size=4096, db=db)]
    again = [r.ref for r in hubmem.audit([LLAMA], ctx_size=4096, db=db)]
    assert first == again == [f"{LLAMA}:{q}" for q in ("F16", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")]
    repos = [r[0] for r in ResultsDB(db).conn.execute("SELECT repo FROM results ORDER BY repo")]
    assert repos == sorted(first)
