"""GPU capabilities in verdicts (hubmem.fit.capability, the catalogue's compute capability / dtypes).

transformers loads an FP8 checkpoint dequantized to bf16 on a GPU below compute capability 8.9
(quantizers/quantizer_finegrained_fp8.py), an MXFP4 one below 7.5 (quantizer_mxfp4.py): the verdict
is judged at the bf16 row's cost and says so in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.fit.gpus import find_gpu

FP8 = "Qwen/Qwen3-32B-FP8"
# Qwen3-32B-FP8 at 4,096 tokens, bf16 row: weights 32,762,123,264 × 2 = 65,524,246,528; KV 64 layers ×
# 4,096 × 2 × 8 × 128 × 2 = 1,073,741,824; activations (16-bit, as the stored row's) 713,639,424;
# overhead 1 GiB.
BF16_TOTAL = 65_524_246_528 + 1_073_741_824 + 713_639_424 + 1024**3  # 68,385,369,600
STORED_TOTAL = 34_322_434_048 + 1_073_741_824 + 713_639_424 + 1024**3  # the checkpoint's own bytes
NOTE = (
    "FP8 weights on A100 40GB (compute capability 8.0 < 8.9): transformers dequantizes them to bf16, judged "
    "at the bf16 cost (transformers quantizers/quantizer_finegrained_fp8.py: compute capability >= 8.9)"
)


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("key", "bf16", "fp8", "fp4", "mxfp4"),
    [
        ("v100-16gb", False, False, False, False),  # 7.0
        ("t4-16gb", False, False, False, True),  # 7.5
        ("a100-40gb", True, False, False, True),  # 8.0
        ("l4-24gb", True, True, False, True),  # 8.9
        ("h100-80gb", True, True, False, True),  # 9.0
        ("b200-180gb", True, True, True, True),  # 10.0
        ("mi300x-192gb", True, True, False, False),  # CDNA3: bf16, fp8; no CUDA MXFP4 kernels
        ("tpu-v5e", True, False, False, False),
    ],
)
def test_what_each_card_runs_natively(key, bf16, fp8, fp4, mxfp4):
    gpu = find_gpu(key)
    assert [gpu.supports(f) for f in ("bf16", "fp8", "fp4", "mxfp4")] == [bf16, fp8, fp4, mxfp4]


def test_an_fp8_checkpoint_on_an_a100_is_judged_at_its_bf16_cost(fake_hub, tmp_path):
    result = cli("check", FP8, "--gpu", "a100-40gb", "--seq-len", "4096", "--cache-dir", str(tmp_path))
    assert result.exit_code == 40  # will not fit (it said "ready to pull" at 34.63 GiB before)
    assert "precision  as stored (as bf16) · batch 1 · seq 4,096 (option)\n" in result.stdout
    assert f"           {NOTE}\n" in result.stdout
    data = json.loads(
        cli(
            FP8, "--seq-len", "4096", "--precision", "stored", "--gpu", "a100-40gb", "--format", "json"
        ).stdout
    )
    (v,) = data["fit"]
    assert (v["per_gpu_bytes"], v["judged_as"], v["note"], v["fits"]) == (BF16_TOTAL, "bf16", NOTE, False)


def test_on_an_h100_the_fp8_checkpoint_keeps_its_own_bytes(fake_hub):
    data = json.loads(
        cli(FP8, "--seq-len", "4096", "--precision", "stored", "--gpu", "h100", "--format", "json").stdout
    )
    (v,) = data["fit"]
    assert (v["per_gpu_bytes"], v["judged_as"], v["note"], v["fits"]) == (STORED_TOTAL, "stored", "", True)


def test_fits_on_costs_each_card_at_what_it_would_load(fake_hub):
    # fp8 row 37,183,557,120 B (34.63 GiB): too big for the 24 GB cards that run FP8 (L4, RTX 4090); the
    # A100 40GB would hold it as FP8 but loads bf16 (63.69 GiB): the smallest card is the L40S 48GB.
    # A model small enough for a T4 at its bf16 cost is shown there "(as bf16)" (tests/test_cli.py).
    result = cli(FP8, "--seq-len", "4096", "--precision", "fp8", "--precision", "stored", "--format", "csv")
    rows = {line.split(",")[0]: line.split(",")[-1] for line in result.stdout.splitlines()[1:]}
    assert rows == {"fp8": "L40S 48GB", "stored": "L40S 48GB"}


def test_mxfp4_on_a_v100_is_dequantized_but_a_t4_runs_it(fake_hub):
    def verdict(gpu: str) -> dict:
        out = cli(
            "openai/gpt-oss-20b",
            "--seq-len",
            "4096",
            "--precision",
            "stored",
            "--gpu",
            gpu,
            "--format",
            "json",
        )
        (v,) = json.loads(out.stdout)["fit"]
        return v

    v100, t4 = verdict("v100-32gb"), verdict("t4")
    assert v100["judged_as"] == "bf16" and v100["note"].startswith(
        "MXFP4 weights on V100 32GB (compute capability 7.0 < 7.5): transformers dequantizes them to bf16"
    )
    assert (t4["judged_as"], t4["note"]) == ("stored", "")
    assert v100["per_gpu_bytes"] > t4["per_gpu_bytes"]


def test_a_size_without_a_card_has_no_capability_rule(fake_hub):
    data = json.loads(
        cli(
            FP8, "--seq-len", "4096", "--precision", "stored", "--gpu-memory", "40GiB", "--format", "json"
        ).stdout
    )
    (v,) = data["fit"]
    assert (v["per_gpu_bytes"], v["judged_as"], v["note"]) == (STORED_TOTAL, "stored", "")
