"""`hubmem audit --engine vllm` rows and `hubmem check --engine vllm` exit codes: the same plan as
`hubmem serve` (tests/test_serve_vllm.py derives its numbers)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.hub import disk

LLAMA8 = "meta-llama/Llama-3.1-8B"
GIB = 2**30


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def free(monkeypatch):
    class Free:
        value = 500 * GIB

        def __call__(self, path: str) -> int:
            return self.value

    fake = Free()
    monkeypatch.setattr(disk, "free_bytes", fake)
    return fake


def test_audit_rows_carry_the_engines_verdict_tokens_and_concurrency(fake_hub):
    result = run(
        "audit", LLAMA8, "Qwen/Qwen3-8B", "--engine", "vllm", "--gpu", "h100", "--max-model-len", "32768",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    for row, repo in zip(rows, (LLAMA8, "Qwen/Qwen3-8B"), strict=True):
        plan = hubmem.serve(repo, engine="vllm", gpu="h100", max_model_len=32768).plan
        assert (row["repo"], row["kv_tokens"], row["max_concurrency"], row["starts"]) == (
            repo,
            plan.kv_tokens,
            round(plan.max_concurrency, 2),
            True,
        )
        assert row["weights"] == plan.worst.weights and row["engine"] == "vllm"


def test_audit_row_of_a_refusing_model_says_why_and_the_batch_goes_on(fake_hub):
    result = run(
        "audit", LLAMA8, "google-t5/t5-small", "--engine", "vllm", "--gpu", "4090", "--format", "json"
    )
    assert result.exit_code == 30  # one repo failed (the engine refuses T5): BatchFailedError
    llama, t5 = json.loads(result.stdout)
    assert llama["starts"] is False
    assert llama["reason"].startswith("To serve at least one request with the model's max seq len (131072)")
    assert llama["fewest_gpus"] == "2× RTX 4090 24GB: --tensor-parallel-size 2"
    assert (t5["status"], t5["exit_code"]) == ("error", 19)
    assert t5["error"].startswith("vLLM does not serve 'google-t5/t5-small' (t5)")


def test_check_exit_code_follows_the_engines_verdict(fake_hub, free, tmp_path):
    ok = run(
        "check",
        LLAMA8,
        "--engine",
        "vllm",
        "--gpu",
        "4090",
        "--max-model-len",
        "32768",
        "--cache-dir",
        str(tmp_path),
    )
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.endswith("outcome   ready to pull (exit 0)\n")
    refused = run("check", LLAMA8, "--engine", "vllm", "--gpu", "4090", "--cache-dir", str(tmp_path))
    assert refused.exit_code == 40
    assert "outcome   the engine will not start on the GPUs (exit 40)\n" in refused.stdout
    free.value = 1 * GIB  # 16 GB of shards to pull
    short = run(
        "check",
        LLAMA8,
        "--engine",
        "vllm",
        "--gpu",
        "4090",
        "--max-model-len",
        "32768",
        "--cache-dir",
        str(tmp_path),
    )
    assert short.exit_code == 41


def test_engine_with_generic_options_is_refused(fake_hub):
    result = run("check", LLAMA8, "--engine", "vllm", "--gpu", "h100", "--seq-len", "4096")
    assert result.exit_code == 3
    assert result.stderr == "Error: --engine vllm does not take --seq-len\n"


def test_serve_makes_the_same_requests_as_the_estimate(fake_hub):
    """The plan reads the estimate's snapshot (config.json + safetensors headers): no request of its own."""
    for args in (
        [LLAMA8],
        ["serve", LLAMA8, "--gpu", "h100"],
        ["serve", LLAMA8, "--engine", "sglang", "--gpu", "h100"],
    ):
        fake_hub.reset()
        assert run(*args).exit_code == 0
        requests = sorted((r.method, r.path) for r in fake_hub.requests)
        if args == [LLAMA8]:
            estimate_requests = requests
            assert ("GET", "/api/models/meta-llama/Llama-3.1-8B") in [
                (m, p.split("?")[0]) for m, p in requests
            ]
        assert requests == estimate_requests


def test_audit_and_check_take_sglangs_own_options(fake_hub, free, tmp_path):
    """--engine sglang on audit / check: SGLang's flags (and the shared --tp) reach the same plan as serve."""
    result = run(
        "audit", LLAMA8, "Qwen/Qwen3-8B", "--engine", "sglang", "--gpu", "h100", "--mem-fraction-static", "0.8",
        "--context-length", "32768", "--tp", "2", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for row, repo in zip(json.loads(result.stdout), (LLAMA8, "Qwen/Qwen3-8B"), strict=True):
        plan = hubmem.serve(
            repo, engine="sglang", gpu="h100", mem_fraction_static=0.8, context_length=32768, tp=2
        ).plan
        assert (row["engine"], row["tp"], row["kv_tokens"]) == ("sglang", 2, plan.kv_tokens)
        assert plan.options.mem_fraction_static == 0.8
    small = run(
        "check", LLAMA8, "--engine", "sglang", "--gpu", "4090", "--mem-fraction-static", "0.6",
        "--cache-dir", str(tmp_path),
    )  # fmt: skip
    assert small.exit_code == 40  # 0.6 of a 4090 does not hold Llama-3.1-8B's 15 GiB of weights
    assert "outcome   the engine will not start on the GPUs (exit 40)\n" in small.stdout
    wrong = run("check", LLAMA8, "--engine", "vllm", "--gpu", "h100", "--mem-fraction-static", "0.8")
    assert wrong.exit_code == 3
    assert wrong.stderr == "Error: --engine vllm does not take --mem-fraction-static\n"
