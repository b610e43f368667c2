"""GPTQ / AWQ checkpoints as vLLM loads them through Marlin: what changes from the stored tensors. Pure:
tensor names and shapes, the quantization config, TP / PP in, bytes out.

vLLM converts a GPTQ (4/8-bit, sym) or AWQ (4-bit, zero point) checkpoint to `gptq_marlin` / `awq_marlin`
on compute capability ≥ 8.0 (GPTQMarlinConfig / AWQMarlinConfig.override_quantization_method; read in
vllm-project/vllm quantization/gptq_marlin.py, awq_marlin.py, kernels/mixed_precision/marlin.py
MarlinLinearKernel.process_weights_after_loading at commit 04aa528e, utils/marlin_utils.py):

- qweight: `gptq_marlin_repack` / `awq_marlin_repack` → [K/16, N·16/pack] int32: the same bytes.
- scales: `marlin_permute_scales`, the same shape, in the model dtype (2 bytes, as stored).
- g_idx ([K] int32 per Linear; RowvLLMParameter: split on row-parallel layers, whole on column-parallel):
  without act order (desc_act false) replaced by an empty tensor (`marlin_make_empty_g_idx`); with it
  `marlin_sort_g_idx` keeps the sorted g_idx *and* `g_idx_sort_indices`, both [K] int32.
- qzeros: GPTQ sym has no zero points in Marlin (uint4b8 / uint8b128): replaced by an empty tensor;
  AWQ's become `marlin_zero_points` [K/group, N/pack] int32: the same bytes.
- scales of row-parallel layers (o_proj, down_proj) are whole on every rank when act order is on or
  the quantization is channelwise (group_size −1): `marlin_repeat_scales_on_all_ranks`.
- A workspace of SMs int32 per Linear (`marlin_make_workspace_new`): < 1 KiB each, not counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubmem.model.architecture import Architecture
from hubmem.runtimes.sharding import rank_weights

MIN_CAPABILITY = (8, 0)  # MarlinLinearKernel.get_min_capability() == 80
GROUP_SIZES = (-1, 32, 64, 128)  # marlin_utils.MARLIN_SUPPORTED_GROUP_SIZES

_ROW_PARALLEL_RE = re.compile(r"\.(o_proj|down_proj|out_proj|dense_4h_to_h|c_proj|wo|w2)\.")


@dataclass(frozen=True)
class MarlinPlan:
    method: str  # gptq_marlin | awq_marlin
    desc_act: bool
    group_size: int


def marlin_method(config: dict, compute_capability: tuple[int, int] | None) -> MarlinPlan | None:
    """The Marlin method vLLM converts this checkpoint to, or None (another kernel keeps it as stored)."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return None
    if compute_capability is not None and compute_capability < MIN_CAPABILITY:
        return None
    method = str(qc.get("quant_method") or "").lower()
    bits = qc.get("bits") or qc.get("w_bit")
    group = qc.get("group_size") or qc.get("q_group_size") or -1
    if group not in GROUP_SIZES:
        return None
    if method == "gptq" and bits in (4, 8) and qc.get("sym", True):  # GPTQMarlinConfig.TYPE_MAP
        return MarlinPlan("gptq_marlin", bool(qc.get("desc_act")), int(group))
    if method == "awq" and bits == 4 and qc.get("zero_point", True):  # AWQMarlinConfig.TYPE_MAP
        return MarlinPlan("awq_marlin", False, int(group))
    return None


def subset(headers: dict, pattern: str, row_parallel: bool | None = None) -> dict:
    """The headers of the tensors whose names end in `pattern` (row-parallel layers only, or none of them)."""
    out = {}
    for f, tensors in headers.items():
        out[f] = {
            n: v
            for n, v in tensors.items()
            if n.endswith(pattern)
            and (row_parallel is None or bool(_ROW_PARALLEL_RE.search(n)) == row_parallel)
        }
    return out


def stage_deltas(
    headers: dict, config: dict, arch: Architecture, plan: MarlinPlan, *, tp: int, pp: int, float_bytes: int
) -> tuple[list[int], dict[str, list[int]]]:
    """Per pipeline stage: Marlin's allocation − the stored tensors hubmem.runtimes.sharding counted, and its
    parts (qzeros dropped, g_idx dropped or doubled, row-parallel scales made whole)."""

    def counted(pattern: str, row: bool | None = None, ranks: int = tp) -> list[int]:
        return [
            r.bytes
            for r in rank_weights(
                subset(headers, pattern, row), config, arch, tp=ranks, pp=pp, float_bytes=float_bytes
            )
        ]

    zero = [0] * pp
    parts: dict[str, list[int]] = {}
    if plan.method == "gptq_marlin":
        parts["qzeros"] = [-b for b in counted(".qzeros")]
        stored = counted(".g_idx")
        if plan.desc_act:  # sorted g_idx + g_idx_sort_indices: column-parallel whole, row-parallel split
            kept = [c + r for c, r in zip(counted(".g_idx", False, 1), counted(".g_idx", True), strict=True)]
            parts["g_idx"] = [2 * k - s for k, s in zip(kept, stored, strict=True)]
        else:
            parts["g_idx"] = [-s for s in stored]
    if tp > 1 and (plan.desc_act or plan.group_size == -1):
        whole, split = counted(".scales", True, 1), counted(".scales", True)
        parts["scales"] = [w - s for w, s in zip(whole, split, strict=True)]
    total = list(zero)
    for v in parts.values():
        total = [t + x for t, x in zip(total, v, strict=True)]
    return total, parts
