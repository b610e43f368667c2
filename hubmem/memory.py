"""Pure memory formulas: plain numbers in, integer bytes out. No network, no torch.

Notation (DESIGN.md): b batch, s sequence length, h hidden, i intermediate, L layers, a heads,
k KV heads, d head_dim, V vocab, e bytes per element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .architecture import Architecture
from .checkpoint import CheckpointCounts

GiB = 1024**3
GB = 10**9

# Default per-GPU overhead: CUDA context + framework reserve. Measured context alone is
# 287 MB with lazy module loading and 667 MB eager (pytorch/pytorch#86509); the seed article
# measured 1343 MB for context + kernels on CUDA 11 (transformers docs, model_memory_anatomy).
# 1 GiB covers a lazily loaded context, cuBLAS workspaces and caching-allocator slack.
DEFAULT_OVERHEAD_BYTES = 1 * GiB

# Bytes per element of activations / KV cache for each dtype name hubmem accepts.
DTYPE_BYTES = {
    "fp32": 4,
    "float32": 4,
    "bf16": 2,
    "bfloat16": 2,
    "fp16": 2,
    "float16": 2,
    "fp8": 1,
    "int8": 1,
}


@dataclass(frozen=True)
class Precision:
    key: str
    label: str
    description: str  # what is quantized and which overhead is added (shown by --explain)


PRECISIONS: dict[str, Precision] = {
    p.key: p
    for p in (
        Precision("fp32", "fp32", "every parameter in 4 bytes"),
        Precision("bf16", "bf16/fp16", "every parameter in 2 bytes"),
        Precision(
            "fp8",
            "fp8",
            "block Linear weights 1 byte + fp32 scale per 128x128 block (DeepSeek-V3 FP8 layout); "
            "embeddings, norms, lm_head, biases stay 16-bit",
        ),
        Precision(
            "int8",
            "int8",
            "bitsandbytes LLM.int8: block Linear weights 1 byte + fp32 scale per output row (SCB); "
            "embeddings, norms, lm_head, biases stay 16-bit",
        ),
        Precision(
            "int4",
            "int4",
            "GPTQ/AWQ 4-bit, group size 128: fp16 scale + 4-bit zero per group (4.16 bits/weight); "
            "embeddings, norms, lm_head, biases stay 16-bit",
        ),
        Precision("stored", "as stored", "the checkpoint's own dtypes and quantization, byte for byte"),
    )
}
DEFAULT_PRECISIONS = ("fp32", "bf16", "fp8", "int8", "int4")


def weight_bytes(counts: CheckpointCounts, precision: str) -> int:
    """Bytes of the model's weights once loaded at `precision`."""
    kept16 = (counts.parameters - counts.linear_params) * 2  # embeddings, norms, lm_head, biases
    linear = counts.linear_params
    if precision == "fp32":
        return counts.parameters * 4
    if precision == "bf16":
        return counts.parameters * 2
    if precision == "fp8":
        # 1 byte per weight + one fp32 scale per 128x128 block (DeepSeek-V3 `weight_scale_inv`).
        return linear + counts.linear_blocks_128 * 4 + kept16
    if precision == "int8":
        # bitsandbytes Int8Params: int8 weight + fp32 row scale `SCB` per output feature.
        return linear + counts.linear_rows * 4 + kept16
    if precision == "int4":
        # GPTQ/AWQ g128: 4 bits per weight + per group of 128 inputs an fp16 scale and a 4-bit zero
        # (2.5 bytes): 4 + 20/128 = 4.156 bits per weight.
        return (linear + 1) // 2 + counts.linear_groups_128 * 5 // 2 + kept16
    if precision == "stored":
        return counts.stored_bytes
    raise ValueError(f"unknown precision {precision!r}")


def compute_dtype_bytes(precision: str) -> int:
    """Activations are computed in fp32 for the fp32 row and in 16-bit for every other row."""
    return 4 if precision == "fp32" else 2


def kv_tokens(arch: Architecture, seq_len: int) -> int:
    """Σ over layers of the tokens each layer keeps: s for full attention, min(s, window) for sliding."""
    window = arch.sliding_window or seq_len
    return sum(min(seq_len, window) if kind == "sliding" else seq_len for kind in arch.layer_types)


def kv_cache_bytes(arch: Architecture, *, batch: int, seq_len: int, kv_bytes: int) -> int:
    """KV cache = b × Σ_layers tokens(layer) × 2 (K and V) × k × d × e.

    Source: vLLM `FullAttentionSpec.page_size_bytes` (2 · block · k · d · e per layer) and
    `SlidingWindowSpec` (min(s, window) tokens kept per sliding layer).
    """
    return batch * kv_tokens(arch, seq_len) * 2 * arch.num_kv_heads * arch.head_dim * kv_bytes


def kv_bytes_per_token(arch: Architecture, kv_bytes: int) -> int:
    """KV bytes one token adds over all layers (while below any sliding window)."""
    return arch.num_layers * 2 * arch.num_kv_heads * arch.head_dim * kv_bytes


@dataclass(frozen=True)
class ActivationTerms:
    attention_phase: int
    mlp_phase: int
    logits: int

    @property
    def total(self) -> int:
        return max(self.attention_phase, self.mlp_phase) + self.logits


def activation_bytes(
    arch: Architecture, *, batch: int, seq_len: int, e: int, attn: str = "sdpa", all_logits: bool = False
) -> ActivationTerms:
    """Peak transient memory of one decoder layer at prefill, plus the logits buffer.

    Inference keeps no activations for backward, so only one layer's temporaries are live:
    - attention phase: residual + normed input (2·b·s·h), queries and attention output
      (2·b·s·a·d); eager attention adds the score matrix in e bytes and its fp32 softmax
      (b·a·s²·(e + 4), transformers `eager_attention_forward` upcasts softmax to fp32);
      SDPA / flash kernels never materialise it (FlashAttention, Dao et al. 2022 §3).
    - MLP phase: 2·b·s·h + m·b·s·i with m = 3 for gated MLPs (act(gate), up, and their product
      live together in LlamaMLP.forward) and m = 2 for plain MLPs (fc1 output and activation).
      Mixture of experts: i = k·i_moe + i_shared in MoE layers (each token runs k experts), the
      dense layers' own i elsewhere; the larger of the two (`MoE.token_mlp_widths`).
    - logits: fp32 b·V·4 for the last position only, as `generate` computes at prefill
      (`logits_to_keep=1`), or b·s·V·4 when every position is kept (`all_logits`).
    The KV written by the layer is counted in the KV cache, not here.
    """
    b, s, h, i = batch, seq_len, arch.hidden_size, arch.intermediate_size
    ad = arch.num_heads * arch.head_dim
    attention_phase = (2 * b * s * h + 2 * b * s * ad) * e
    if attn == "eager":
        attention_phase += b * arch.num_heads * s * s * (e + 4)
    m = 3 if arch.gated_mlp else 2
    if arch.moe is not None:
        i = max(arch.moe.token_mlp_widths(arch.num_layers))
    mlp_phase = (2 * b * s * h + m * b * s * i) * e
    logits = b * (s if all_logits else 1) * arch.vocab_size * 4
    return ActivationTerms(attention_phase, mlp_phase, logits)


@dataclass(frozen=True)
class InferenceSettings:
    seq_len: int
    batch: int = 1
    kv_dtype: str = "auto"  # auto = the row's compute dtype (an int4 model still keeps a 16-bit cache)
    attn: str = "sdpa"
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
    all_logits: bool = False
    serving_factor: float | None = None  # S4 rule of thumb: total = weights × factor

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Term:
    """One addend of a total, with what it was computed from (for --explain)."""

    name: str
    bytes: int
    formula: str
    source: str

    def to_dict(self) -> dict:
        return {"name": self.name, "bytes": self.bytes, "formula": self.formula, "source": self.source}


@dataclass(frozen=True)
class InferenceRow:
    precision: str
    label: str
    weights: int
    kv_cache: int
    activations: int
    overhead: int
    terms: tuple[Term, ...] = field(default=())

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations + self.overhead

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "label": self.label,
            "weights": self.weights,
            "kv_cache": self.kv_cache,
            "activations": self.activations,
            "overhead": self.overhead,
            "total": self.total,
            "terms": [t.to_dict() for t in self.terms],
        }


def kv_element_bytes(settings: InferenceSettings, precision: str) -> int:
    if settings.kv_dtype == "auto":
        return compute_dtype_bytes(precision)
    return DTYPE_BYTES[settings.kv_dtype]


def inference_row(
    arch: Architecture, counts: CheckpointCounts, precision: str, settings: InferenceSettings
) -> InferenceRow:
    """Weights + KV cache + activations + overhead for one precision, each with its formula."""
    spec = PRECISIONS[precision]
    weights = weight_bytes(counts, precision)
    b, s = settings.batch, settings.seq_len
    w_term = Term(
        "weights",
        weights,
        f"{spec.description}: {counts.parameters:,} parameters ({counts.linear_params:,} in block Linear layers)",
        "hubmem.memory.weight_bytes; QLoRA paper §3 / GPTQ / LLM.int8 storage layouts",
    )
    if settings.serving_factor is not None:
        margin = round(weights * (settings.serving_factor - 1))
        m_term = Term(
            "rule-of-thumb margin",
            margin,
            f"weights × ({settings.serving_factor} − 1): M = P × 4 B / (32 / Q) × {settings.serving_factor}",
            "seed article S4 (serving formula with a 20 % margin)",
        )
        return InferenceRow(precision, spec.label, weights, 0, 0, margin, (w_term, m_term))

    e = compute_dtype_bytes(precision)
    e_kv = kv_element_bytes(settings, precision)
    kv = kv_cache_bytes(arch, batch=b, seq_len=s, kv_bytes=e_kv)
    tokens = kv_tokens(arch, s)
    kv_term = Term(
        "kv_cache",
        kv,
        f"b × Σ_layers tokens × 2 × k × d × e = {b} × {tokens:,} × 2 × {arch.num_kv_heads} × {arch.head_dim} × {e_kv}"
        f" (attention: {arch.attention_pattern()}, s={s:,})",
        "vLLM kv_cache_interface FullAttentionSpec / SlidingWindowSpec",
    )
    act = activation_bytes(arch, batch=b, seq_len=s, e=e, attn=settings.attn, all_logits=settings.all_logits)
    m = 3 if arch.gated_mlp else 2
    act_term = Term(
        "activations",
        act.total,
        f"max(attention {act.attention_phase:,}, mlp {act.mlp_phase:,}) + logits {act.logits:,}; "
        f"mlp = (2·b·s·h + {m}·b·s·i) × {e}{_moe_width_note(arch)}, attention = (2·b·s·h + 2·b·s·a·d"
        + (" + b·a·s²·(e+4)" if settings.attn == "eager" else "")
        + f") × {e} [attn={settings.attn}], logits = b × {'s' if settings.all_logits else '1'} × V × 4",
        "hubmem.memory.activation_bytes (one layer's prefill peak; FlashAttention §3 for sdpa)",
    )
    o_term = Term(
        "overhead",
        settings.overhead_bytes,
        "CUDA context + framework reserve per GPU (--overhead)",
        "pytorch/pytorch#86509 (context 0.29–0.67 GB); transformers model_memory_anatomy (1.34 GB)",
    )
    return InferenceRow(
        precision,
        spec.label,
        weights,
        kv,
        act.total,
        settings.overhead_bytes,
        (w_term, kv_term, act_term, o_term),
    )


def _moe_width_note(arch: Architecture) -> str:
    if arch.moe is None:
        return ""
    moe = arch.moe
    shared = f" + {moe.shared_intermediate_size}" if moe.shared_intermediate_size else ""
    return (
        f" with i = max over layer kinds of k·i_moe{' + i_shared' if shared else ''} = "
        f"{moe.experts_per_token}×{moe.expert_intermediate_size}{shared}"
        + (f", dense {moe.dense_intermediate_size}" if len(moe.moe_layers) < arch.num_layers else "")
    )


def rule_of_thumb_bytes(parameters: int, bits: int, factor: float = 1.2) -> int:
    """Seed S4: M = P × 4 bytes / (32 / Q) × factor (e.g. 70e9 at 16 bits × 1.2 = 168 GB)."""
    return round(parameters * 4 * bits / 32 * factor)
