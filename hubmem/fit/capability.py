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
- an NVFP4 checkpoint as stored (NVIDIA ModelOpt: U8 packed weights, one F8_E4M3 scale per 16): no
  runtime dequantizes it to bf16, so the row keeps its stored cost and says in one line what runs it.
  transformers 5.25 cannot load a pre-quantized NVFP4 checkpoint on any GPU (quantizers/quantizer_nvfp4.py
  `validate_environment`: "Loading pre-quantized NVFP4 checkpoints is not supported yet"; its on-the-fly
  NVFP4 needs "Blackwell (sm100+)"); vLLM runs it natively on FP4 tensor cores (compute capability >= 10.0)
  and weight-only through its Marlin FP4 kernel from 7.5 (model_executor/layers/quantization/utils/
  marlin_utils_fp4.py `is_fp4_marlin_supported`: `has_device_capability(75)`), nothing below.
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


MARLIN_FP4_CAPABILITY = (7, 5)  # vLLM marlin_utils_fp4.py is_fp4_marlin_supported


def is_nvfp4(counts: CheckpointCounts) -> bool:
    """An NVFP4 checkpoint: U8 weights (2 per byte) with one F8_E4M3 scale per 16 weights = per 8 bytes."""
    packed, scales = counts.stored_by_dtype.get("U8", 0), counts.stored_by_dtype.get("F8_E4M3", 0)
    return bool(packed) and not counts.mxfp4_scale_elements and scales * 8 == packed


def _nvfp4_row(gpu: Gpu | None, precision: str, counts: CheckpointCounts) -> bool:
    """An NVFP4 checkpoint's as-stored row judged on a GPU: what `runnable` and `nvfp4_note` speak of."""
    return gpu is not None and precision == "stored" and is_nvfp4(counts)


def _marlin_fp4(gpu: Gpu) -> bool:
    cc = gpu.compute_capability
    return cc is not None and cc >= MARLIN_FP4_CAPABILITY


def runnable(gpu: Gpu | None, precision: str, counts: CheckpointCounts) -> bool:
    """False when no kernel runs the row's format on `gpu`: NVFP4 below compute capability 7.5 (or off CUDA)."""
    if gpu is None or not _nvfp4_row(gpu, precision, counts):
        return True
    return gpu.supports("fp4") or _marlin_fp4(gpu)


def nvfp4_note(gpu: Gpu | None, precision: str, counts: CheckpointCounts) -> str:
    """The NVFP4 as-stored row on `gpu`: which runtime runs it there, in one line (empty otherwise)."""
    if gpu is None or not _nvfp4_row(gpu, precision, counts):
        return ""
    cc = gpu.compute_capability
    no_transformers = "transformers 5.25 cannot load pre-quantized NVFP4 (quantizer_nvfp4.py)"
    if gpu.supports("fp4"):
        return f"NVFP4 weights on {gpu.name}: FP4 tensor cores run them natively (vLLM); {no_transformers}"
    if cc is not None and _marlin_fp4(gpu):
        return (
            f"NVFP4 weights on {gpu.name} (compute capability {cc[0]}.{cc[1]} < 10.0, no FP4 tensor cores): vLLM "
            f"runs them weight-only through Marlin FP4 at the stored size (marlin_utils_fp4.py, CC >= 7.5); "
            f"{no_transformers}"
        )
    have = f"compute capability {cc[0]}.{cc[1]} < 7.5" if cc is not None else f"no CUDA on {gpu.vendor}"
    return f"NVFP4 weights on {gpu.name} ({have}): no kernel runs them, refused (vLLM's Marlin FP4 needs CC >= 7.5)"
