"""hubmem's GGUF figures against published llama.cpp logs (fixtures/reference/llamacpp_logs.json, each
with its source): KV within ±2 %, weights and parameters within ±1 %, compute buffers within ±10 %,
tensor-type counts exact."""

from __future__ import annotations

from click.testing import CliRunner

from hubmem.cli import main
from scripts import gguf_reference


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_every_published_figure_within_its_tolerance(fake_hub):
    rows = gguf_reference.comparison(invoke)
    assert len(rows) == len(gguf_reference.entries()) == 9
    off = [
        (r["repo"], r["quantity"], r["published"], r["hubmem"])
        for r in rows
        if abs(r["error_pct"]) > r["tolerance_pct"]
    ]
    assert not off
    # the tolerances are the issue's: KV ±2 %, weights ±1 %
    assert {r["tolerance_pct"] for r in rows if r["quantity"] == "kv"} == {2}
    assert {r["tolerance_pct"] for r in rows if r["quantity"] == "weights"} == {1}


def test_exact_where_the_log_is_exact(fake_hub):
    by = {(r["repo"], r["quantity"]): r for r in gguf_reference.comparison(invoke)}
    # 36 layers × 4,096 cells × (256 K + 256 V) × 2 bytes = 144 MiB; 4·512·(2048 + 151936) bytes = 300.75 MiB
    assert by[("Qwen/Qwen2.5-3B-Instruct-GGUF", "kv")]["hubmem"] == 144.0
    assert by[("Qwen/Qwen2.5-3B-Instruct-GGUF", "compute")]["hubmem"] == 300.75
    assert by[("bartowski/Llama-3.2-3B-Instruct-GGUF", "tensor_types")]["hubmem"] == {
        "F32": 58,
        "Q4_K": 168,
        "Q6_K": 29,
    }
