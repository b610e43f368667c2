"""NVFP4 checkpoints as stored (hubmem.fit.capability.nvfp4_note / runnable): no runtime dequantizes them,
so the row keeps its stored cost; the GPU decides what runs it, or that nothing does."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.fit import capability

REPO = "nvidia/Qwen3-30B-A3B-NVFP4"
NO_TRANSFORMERS = "transformers 5.25 cannot load pre-quantized NVFP4 (quantizer_nvfp4.py)"


@pytest.mark.parametrize(
    ("gpu", "note", "runnable"),
    [
        (
            "b200",
            f"NVFP4 weights on B200 180GB: FP4 tensor cores run them natively (vLLM); {NO_TRANSFORMERS}",
            True,
        ),
        (
            "a100-80gb",
            "NVFP4 weights on A100 80GB (compute capability 8.0 < 10.0, no FP4 tensor cores): vLLM runs them "
            f"weight-only through Marlin FP4 at the stored size (marlin_utils_fp4.py, CC >= 7.5); {NO_TRANSFORMERS}",
            True,
        ),
        (
            "v100-32gb",
            "NVFP4 weights on V100 32GB (compute capability 7.0 < 7.5): no kernel runs them, refused "
            "(vLLM's Marlin FP4 needs CC >= 7.5)",
            False,
        ),
    ],
)
def test_nvfp4_as_stored_per_gpu(fake_hub, gpu, note, runnable):
    result = CliRunner().invoke(
        main, ["check", REPO, "--gpu", gpu, "--precision", "stored", "--format", "json"]
    )
    assert result.exit_code == (0 if runnable else 40), result.stderr
    fit = json.loads(result.stdout)["fit"]
    assert (fit["note"], fit["runnable"], fit["judged_as"]) == (note, runnable, "stored")
    assert fit["fits"] is runnable  # 25,033,833,856 B per GPU fits each of these three by memory
    assert fit["per_gpu_bytes"] < fit["usable_bytes_per_gpu"]


def test_refused_row_says_so_in_the_table(fake_hub):
    result = CliRunner().invoke(main, ["check", REPO, "--gpu", "v100-32gb", "--precision", "stored"])
    assert result.exit_code == 40
    assert "per GPU: refused: this GPU cannot run the format (below)" in result.stdout


def test_nvfp4_is_one_e4m3_scale_per_16_packed_weights():
    from hubmem.model.tensors import CheckpointCounts

    c = CheckpointCounts()
    c.stored_by_dtype = {"BF16": 10, "U8": 800, "F8_E4M3": 100}
    assert capability.is_nvfp4(c)
    c.stored_by_dtype = {"U8": 800, "F8_E4M3": 101}  # an FP8 checkpoint with some U8: not NVFP4
    assert not capability.is_nvfp4(c)
