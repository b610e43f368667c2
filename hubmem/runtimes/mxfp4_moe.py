"""The bytes vLLM allocates for MXFP4 MoE experts (gpt-oss) on one GPU, by the backend it picks. Pure:
expert count, hidden size, intermediate size per rank, backend and dtype in, bytes out.

Read in vllm-project/vllm at commit 007d5005 (vllm/model_executor/layers/quantization/mxfp4.py,
utils/marlin_utils_fp4.py, utils/mxfp4_utils.py):

- `Mxfp4MoEMethod.create_weights` allocates, per layer and rank, w13 (gate_up) [E, 2·I', H'/2] uint8,
  its scales [E, 2·I', H'/32] uint8, w13_bias [E, 2·I'] bf16, w2 (down) [E, H', I'/2] uint8, its scales
  [E, H', I'/32] uint8, w2_bias [E, H'] bf16, where I' / H' are the intermediate size per TP partition and
  the hidden size *padded* as the backend's kernel needs:
    marlin              I' = round_up(I/TP, 128), H' = round_up(H, 256)  ("n % 256 == 0 and k % 128 == 0")
    flashinfer-trtllm   I' = round_up(I/TP, 256), H' = round_up(H, 256)  (SM100_FI_MXFP4_BF16 / _MXFP8_TRTLLM)
    flashinfer-cutlass  I' = round_up(I/TP, 128), H' = round_up(H, 128)  (SM100_FI_MXFP4_MXFP8_CUTLASS,
                                                                          SM90_FI_MXFP4_BF16)
    triton              I' = round_up(I/TP, 64),  H' = H                 (the `else` branch)
  The checkpoint (gate_up_proj_blocks [E, 2I, H/32, 16] ...) is copied into the top-left corner; the
  padding stays allocated. w2_bias is [E, H'] whole on every rank (the row-parallel output is not split).
- `process_weights_after_loading` then:
    marlin   `prepare_moe_fp4_layer_for_marlin`: gptq_marlin_repack keeps 4 bits per weight (the same
             bytes), the scales go bf16 → marlin_permute_scales → float8_e8m0fnu (1 byte each again), the
             biases to the model dtype; each replaces its parameter (the old one is freed). Plus a
             workspace of SMs × 4 int32 per layer (marlin_make_workspace_new(device, 4): < 3 KiB, not
             counted).
    triton   `_swizzle_mxfp4` converts the weights' layout (assumed the same bytes) and the old
             parameters are deleted, but the swizzled *scales* are a new tensor held in the precision
             config while `layer.w13_weight_scale` / `w2_weight_scale` stay registered: the scales twice;
             the biases become float32. (On Hopper with torch < 2.8.1 `_swizzle_mxfp4` keeps StridedLayout;
             whether that copies the scales is not checked: the llm-d H100 logs fit the copy, −0.3/−0.5 %.)
    flashinfer-trtllm  shuffled weights / scales (same bytes), biases float32.
    flashinfer-cutlass interleaved scales (same bytes), biases bf16.
- vLLM's "Model loading took X GiB" is the allocated memory after all of that (DeviceMemoryProfiler:
  torch.cuda.max_memory_allocated after reset_peak_memory_stats), so the temporaries do not count.

Which backend (`get_mxfp4_backend`, no VLLM_* environment flags): compute capability 10.x with
FlashInfer (a vLLM dependency on CUDA) → flashinfer-trtllm; 9.0–10.x with triton_kernels and torch ≥ 2.8
→ triton; otherwise marlin (Ampere, Ada, Blackwell consumer 12.x). vLLM 0.10.1 wheels ran Marlin on
Hopper (vllm#23278's log: "Weight-only FP4 compression will be used leveraging the Marlin kernel"):
`--mxfp4-backend marlin` there. The padding rules were read at 007d5005; the vLLM 0.10.1 logs (vllm#23278 H100,
dennislee22 4× A100 TP 4) match them within 0.25 %, so 0.10.1 is taken to pad the same way.
Mxfp4Config.get_min_capability is 80: below it vLLM refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubmem.units import round_up

BACKENDS = ("auto", "marlin", "triton", "flashinfer-trtllm", "flashinfer-cutlass")
MIN_CAPABILITY = (8, 0)  # Mxfp4Config.get_min_capability() == 80
MXFP4_BLOCK = 32  # mxfp4.py mxfp4_block

# backend: (intermediate multiple, hidden multiple or 1, bias bytes (None: the model dtype), scale copies)
_LAYOUT = {
    "marlin": (128, 256, None, 1),
    "triton": (64, 1, 4, 2),
    "flashinfer-trtllm": (256, 256, 4, 1),
    "flashinfer-cutlass": (128, 128, 2, 1),
}

EXPERT_TENSOR_RE = re.compile(r"\.experts\.(gate_up_proj|down_proj)_(blocks|scales|bias)$")


@dataclass(frozen=True)
class Mxfp4Experts:
    """One layer's MXFP4 experts on one rank, as the backend allocates them."""

    backend: str
    num_experts: int
    hidden: int  # H' (padded)
    intermediate: int  # I' per rank (padded)
    weights: int  # w13 + w2, 4 bits each
    scales: int  # E8M0 scales (× copies)
    biases: int

    @property
    def bytes(self) -> int:
        return self.weights + self.scales + self.biases


def choose_backend(compute_capability: tuple[int, int] | None) -> tuple[str, str]:
    """vLLM's get_mxfp4_backend on CUDA with its default environment: the backend and why."""
    cc = compute_capability
    if cc is not None and (10, 0) <= cc < (11, 0):
        return "flashinfer-trtllm", "compute capability 10.x with FlashInfer: SM100_FI_MXFP4_BF16"
    if cc is not None and (9, 0) <= cc < (11, 0):
        return "triton", "compute capability 9.x with triton_kernels and torch >= 2.8 (vLLM >= 0.11)"
    return (
        "marlin",
        "no FlashInfer / triton_kernels path for this compute capability: Marlin (weight-only FP4)",
    )


def layer_bytes(
    num_experts: int, hidden: int, intermediate: int, tp: int, backend: str, e: int
) -> Mxfp4Experts:
    """One layer's experts on one of `tp` ranks (e: the model dtype's bytes, Marlin's bias dtype)."""
    i_mult, h_mult, bias_bytes, copies = _LAYOUT[backend]
    i_r = round_up(-(-intermediate // tp), i_mult)
    h = round_up(hidden, h_mult)
    n = num_experts
    weights = n * 2 * i_r * h // 2 + n * h * i_r // 2
    scales = copies * (n * 2 * i_r * (h // MXFP4_BLOCK) + n * h * (i_r // MXFP4_BLOCK))
    biases = (n * 2 * i_r + n * h) * (e if bias_bytes is None else bias_bytes)
    return Mxfp4Experts(backend, n, h, i_r, weights, scales, biases)


def is_mxfp4_moe(config: dict) -> bool:
    """A checkpoint whose experts vLLM loads through Mxfp4MoEMethod (quantization_config quant_method mxfp4)."""
    text = config.get("text_config") or config
    quant = config.get("quantization_config") or text.get("quantization_config") or {}
    return isinstance(quant, dict) and quant.get("quant_method") == "mxfp4" and bool(_num_experts(text))


def experts_of(config: dict) -> tuple[int, int, int]:
    """(experts, hidden size, intermediate size) of an MXFP4 MoE config (gpt-oss: num_local_experts)."""
    text = config.get("text_config") or config
    return _num_experts(text), int(text["hidden_size"]), int(text.get("intermediate_size") or 0)


def _num_experts(text: dict) -> int:
    n = text.get("num_local_experts") or text.get("num_experts") or 0
    return int(n) if isinstance(n, int) and not isinstance(n, bool) else 0
