"""What a precision row needs from the GPU, and what transformers does on a GPU without it.

A row needs a feature when its weights are in a format the matrix units must run natively:
- the fp8 row, and an FP8 checkpoint as stored (F8_E4M3 weights): FP8 matmuls, compute capability
  >= 8.9. Below it transformers loads the checkpoint *dequantized to bf16* (quantizers/
  quantizer_finegrained_fp8.py `validate_environment`: "FP8 quantized models is only supported on GPUs
  with compute capability >= 8.9 ... We will default to dequantizing the model to bf16"; the
  compressed-tensors quantizer does the same for its FP8 schemes);
- an MXFP4 checkpoint as stored (gpt-oss `*_blocks` / `*_scales`): transformers' MXFP4 Triton kernels,
  compute capability >= 7.5, else dequantized to bf16 (quantizers/quantizer_mxfp4.py);
- the bf16 row on a GPU without bf16 (V100, T4): it runs as fp16, the same bytes (a note only).
Every other row (fp32, int8 / nf4 / fp4 bitsandbytes, GPTQ / AWQ int4) has no rule here.

A verdict on such a GPU is judged at the cost the load will really have (the bf16 row), and says so
in one line; "fits on" picks the smallest GPU by the cost on each GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hubmem.fit.gpus import Gpu
    from hubmem.model.tensors import CheckpointCounts

DEQUANTIZED_TO = "bf16"


@dataclass(frozen=True)
class Requirement:
    feature: str  # a key of hubmem.fit.gpus.CAPABILITY_RULES
    what: str  # the format, in words


def requirement(precision: str, counts: CheckpointCounts) -> Requirement | None:
    """The feature a precision row's weights need natively, or None."""
    if precision == "fp8":
        return Requirement("fp8", "FP8")
    if precision == "stored":
        if counts.mxfp4_scale_elements:
            return Requirement("mxfp4", "MXFP4")
        # FP8 *weights*: most stored elements are F8 (NVFP4 checkpoints store F8_E4M3 too, but only as
        # one scale per 16 weights)
        fp8 = sum(n for d, n in counts.stored_by_dtype.items() if d in ("F8_E4M3", "F8_E5M2"))
        if fp8 * 2 > counts.stored_total:
            return Requirement("fp8", "FP8")
    return None


def dequantized_on(gpu: Gpu | None, precision: str, counts: CheckpointCounts) -> Requirement | None:
    """The requirement `gpu` lacks for this row (the load is dequantized to bf16), or None."""
    need = requirement(precision, counts)
    if gpu is None or need is None or gpu.supports(need.feature):
        return None
    return need


def note(gpu: Gpu, need: Requirement) -> str:
    """One line: why the row is judged at its bf16 cost on this GPU."""
    from hubmem.fit.gpus import CAPABILITY_RULES

    (major, minor), source = CAPABILITY_RULES[need.feature]
    have = (
        f"compute capability {gpu.compute_capability[0]}.{gpu.compute_capability[1]} < {major}.{minor}"
        if gpu.compute_capability is not None
        else f"no native {need.what} on {gpu.vendor}"
    )
    return (
        f"{need.what} weights on {gpu.name} ({have}): transformers dequantizes them to bf16, "
        f"judged at the bf16 cost ({source})"
    )


def fp16_note(gpu: Gpu | None, precision: str) -> str:
    """The bf16 row on a GPU without bf16: the same bytes as fp16, in words (empty otherwise)."""
    if gpu is None or precision != "bf16" or gpu.supports("bf16"):
        return ""
    return f"{gpu.name} has no bf16 (compute capability < 8.0): the 16-bit row runs as fp16, the same bytes"
