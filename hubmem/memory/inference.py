"""Pure memory formulas: plain numbers in, integer bytes out. No network, no torch.

Notation (DESIGN.md): b batch, s sequence length, h hidden, i intermediate, L layers, a heads,
k KV heads, d head_dim, V vocab, e bytes per element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubmem.dtypes import DTYPE_BYTES, FP8_DS_MLA, compute_dtype_bytes
from hubmem.memory.kv import (  # noqa: F401  (kv_tokens, kv_bytes_per_token: part of this module's API)
    cross_attention_bytes,
    kv_bytes_per_token,
    kv_cache_bytes,
    kv_tokens,
    state_bytes_per_sequence,
    token_bytes,
)
from hubmem.model.architecture import Architecture
from hubmem.model.tensors import CheckpointCounts
from hubmem.model.variants import BIDIRECTIONAL, SSM_ONLY_TYPES
from hubmem.runtimes.bitsandbytes import (
    BNB_4BIT,
    dequant_applies,
    dequant_bytes,
    four_bit_bytes,
    lm_head_params,
)
from hubmem.runtimes.gptq import KernelBuffers, kernel_buffers, select_kernel
from hubmem.units import GiB

# Default per-GPU overhead: CUDA context + framework reserve. Measured context alone is
# 287 MB with lazy module loading and 667 MB eager (pytorch/pytorch#86509); the seed article
# measured 1343 MB for context + kernels on CUDA 11 (transformers docs, model_memory_anatomy).
# 1 GiB covers a lazily loaded context, cuBLAS workspaces and caching-allocator slack.
DEFAULT_OVERHEAD_BYTES = 1 * GiB


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
        Precision(
            "nf4",
            "nf4 (bnb)",
            "bitsandbytes 4-bit NF4: block Linear weights 4 bits + fp32 absmax per 64 (4.5 bits; 4.127 with "
            "double quant); embeddings, norms, lm_head, biases stay 16-bit",
        ),
        Precision(
            "fp4",
            "fp4 (bnb)",
            "bitsandbytes 4-bit FP4 (load_in_4bit's default quant type): storage as nf4",
        ),
        Precision(
            "gptq",
            "gptq",
            "GPTQ 4-bit g128 sym (GPTQConfig defaults) through GPTQModel: qweight 4 bits + fp16 scale per "
            "group of 128, then what the kernel keeps of g_idx / qzeros and its workspace; embeddings, "
            "norms, lm_head, biases stay 16-bit",
        ),
        Precision(
            "awq",
            "awq",
            "AWQ 4-bit g128 with zero points (GEMM) through GPTQModel: qweight 4 bits + fp16 scale per group "
            "of 128, then the kernel's zero points and workspace; embeddings, norms, lm_head, biases stay 16-bit",
        ),
        Precision("stored", "as stored", "the checkpoint's own dtypes and quantization, byte for byte"),
    )
}
DEFAULT_PRECISIONS = ("fp32", "bf16", "fp8", "int8", "int4")


def weight_bytes(
    counts: CheckpointCounts, precision: str, double_quant: bool = False, quantize_lm_head: bool = False
) -> int:
    """Bytes of the model's weights once loaded at `precision` (`double_quant`: bitsandbytes 4-bit's
    nested absmax quantization; `quantize_lm_head`: the 4-bit rows quantize lm_head too)."""
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
    if precision in ("gptq", "awq"):
        # qweight + fp16 scales only: g_idx, qzeros and workspaces as the kernel keeps them (gptq_buffers)
        return (linear + 1) // 2 + counts.linear_groups_128 * 2 + kept16
    if precision in BNB_4BIT:
        head = lm_head_params(counts) if quantize_lm_head else 0
        return four_bit_bytes(counts, double_quant, quantize_lm_head) + kept16 - head * 2
    if precision == "stored":
        return counts.stored_bytes
    raise ValueError(f"unknown precision {precision!r}")


@dataclass(frozen=True)
class ActivationTerms:
    attention_phase: int
    mlp_phase: int
    logits: int
    ssm_phase: int = 0  # Mamba / linear-attention mixer of one layer
    encoder_phase: int = 0  # the encoder's own layer peak (encoder-decoder models)

    @property
    def total(self) -> int:
        return max(self.attention_phase, self.mlp_phase, self.ssm_phase, self.encoder_phase) + self.logits


def activation_bytes(
    arch: Architecture,
    *,
    batch: int,
    seq_len: int,
    e: int,
    attn: str = "sdpa",
    all_logits: bool = False,
    encoder_len: int = 0,
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
    - MLA (DeepSeek): queries and expanded keys of a·(nope + rope) and values and output of a·v_head
      per token (`kv_b_proj` expands the cached latent at prefill; only the latent is cached).
    - SSM mixer: 2·b·s·h + b·s·(in_proj width + conv width + scan output width): the input
      projection, the convolved x(BC) and the scan output live together (MambaMixer.forward).
      Mamba-only models have no MLP phase.
    - encoder-decoder: the encoder layer's own peak at the encoder length, same formulas.
    The KV written by the layer is counted in the KV cache, not here.
    """
    b, s, h, i = batch, seq_len, arch.hidden_size, arch.intermediate_size
    if arch.mla is not None:
        per_token = arch.num_heads * (2 * arch.mla.qk_head_dim + 2 * arch.mla.v_head_dim)
    else:
        per_token = 2 * arch.num_heads * arch.head_dim
    attention_phase = (2 * b * s * h + b * s * per_token) * e if arch.num_heads else 0
    if attn == "eager":
        attention_phase += b * arch.num_heads * s * s * (e + 4)
    m = 3 if arch.gated_mlp else 2
    if arch.moe is not None:
        i = max(arch.moe.token_mlp_widths(arch.num_layers))
    mlp_phase = 0 if arch.model_type in SSM_ONLY_TYPES else (2 * b * s * h + m * b * s * i) * e
    logits = b * (s if all_logits else 1) * arch.vocab_size * 4
    ssm_phase = 0
    if arch.ssm is not None:
        widths = arch.ssm.in_proj_width + arch.ssm.conv_state[-1] + arch.ssm.inner
        ssm_phase = (2 * b * s * h + b * s * widths) * e
    encoder_phase = 0
    if arch.encoder is not None and encoder_len:
        enc, n = arch.encoder, encoder_len
        enc_attention = (2 * b * n * enc.hidden_size + 2 * b * n * enc.num_heads * enc.head_dim) * e
        if attn == "eager":
            enc_attention += b * enc.num_heads * n * n * (e + 4)
        enc_mlp = (2 * b * n * enc.hidden_size + m * b * n * enc.intermediate_size) * e
        encoder_phase = max(enc_attention, enc_mlp)
    return ActivationTerms(attention_phase, mlp_phase, logits, ssm_phase, encoder_phase)


@dataclass(frozen=True)
class InferenceSettings:
    seq_len: int
    batch: int = 1
    kv_dtype: str = "auto"  # auto = the row's compute dtype (an int4 model still keeps a 16-bit cache)
    attn: str = "sdpa"
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
    all_logits: bool = False
    serving_factor: float | None = None  # S4 rule of thumb: total = weights × factor
    encoder_len: int = 0  # encoder-decoder: tokens (frames) the encoder sees; fixes the cross-attention KV
    image_tokens: int = 0  # multimodal: image tokens added to the sequence (tokens per image × images)
    state_dtype: str = "auto"  # SSM temporal state (vLLM --mamba-ssm-cache-dtype); auto = compute dtype
    # generate (hubmem.runtimes.generate): seq_len = prompt + new tokens; None = all prompt, no decode
    prompt_len: int | None = None
    num_beams: int = 1
    generate_cache: str = "dynamic"  # dynamic (transformers >= 4.45) | legacy (4.3x tuple past_key_values)
    # bitsandbytes 4-bit rows (hubmem.runtimes.bitsandbytes): BitsAndBytesConfig's defaults
    bnb_compute_dtype: str = "fp32"
    bnb_double_quant: bool = False
    bnb_quantize_lm_head: bool = False  # transformers keeps lm_head 16-bit; Lightning / litgpt quantize it
    overhead_model: str = ""  # a named --overhead model (hubmem.runtimes.overhead): its parts for --explain
    # gptq / awq rows (hubmem.runtimes.gptq): the kernel GPTQModel picks for the GPU's compute capability
    gptq_kernel: str = "auto"
    gptq_desc_act: bool = False  # GPTQConfig's default
    gpu_capability: tuple[int, int] | None = None  # --gpu's compute capability (None: no GPU named)
    gpu_sms: int = 128  # streaming multiprocessors (Marlin's workspace: max(SMs, 128) int32 per Linear)

    @property
    def generating(self) -> bool:
        """Whether the row is a generate call's peak (prefill vs decode) rather than one prefill."""
        return (
            (self.prompt_len is not None and self.prompt_len < self.seq_len)
            or self.num_beams > 1
            or self.generate_cache != "dynamic"
        )

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        cc = self.gpu_capability
        out["gpu_capability"] = None if cc is None else f"{cc[0]}.{cc[1]}"  # as the catalogue writes it
        return out


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
    if settings.kv_dtype == FP8_DS_MLA:
        return 1
    return DTYPE_BYTES[settings.kv_dtype]


def kv_format(settings: InferenceSettings) -> str | None:
    """A cache layout that is not plain elements (vLLM's fp8_ds_mla), or None."""
    return FP8_DS_MLA if settings.kv_dtype == FP8_DS_MLA else None


def state_element_bytes(settings: InferenceSettings, precision: str) -> tuple[int, int]:
    """(conv, temporal) bytes per element of the SSM state: the compute dtype unless --state-dtype."""
    conv = compute_dtype_bytes(precision)
    return conv, conv if settings.state_dtype == "auto" else DTYPE_BYTES[settings.state_dtype]


def state_dtype_label(settings: InferenceSettings, precision: str) -> str:
    """The dtypes `state_element_bytes` sizes the SSM state with, in words: the compute dtype ('16-bit')
    when --state-dtype is auto, else '16-bit conv + fp32 ssm state' (vLLM's --mamba-ssm-cache-dtype sets
    the temporal state only; the conv state stays at the cache dtype, MambaStateDtypeCalculator)."""
    conv = {4: "fp32", 2: "16-bit", 1: "8-bit"}[state_element_bytes(settings, precision)[0]]
    return conv if settings.state_dtype == "auto" else f"{conv} conv + {settings.state_dtype} ssm state"


def _kv_formula(b: int, tokens: int, shape: str) -> str:
    """'b × Σ_layers tokens × 2 × k × d × e = 1 × 2,048 × 2 × 2 × 16 × 2' from 'formula = values'."""
    formula, values = shape.split(" = ")
    return f"b × Σ_layers tokens × {formula} = {b} × {tokens:,} × {values}"


def cache_terms(arch: Architecture, precision: str, settings: InferenceSettings) -> tuple[Term, ...]:
    """The KV cache (self-attention, cross-attention) and recurrent state terms of one row."""
    b = settings.batch
    s = settings.seq_len + settings.image_tokens
    e_kv = kv_element_bytes(settings, precision)
    fmt = kv_format(settings)
    per_layer = token_bytes(arch, e_kv, fmt)
    if fmt == FP8_DS_MLA:
        shape, source = (
            "656 B (fp8_ds_mla) = 512 fp8 latent + 4 fp32 scales + 64 bf16 rope",
            "vLLM MLAAttentionSpec (fp8_ds_mla: block_size × 656; backends/mla/flashmla_sparse.py)",
        )
    elif arch.mla is not None:
        shape = (
            f"(kv_lora_rank + rope) × e = ({arch.mla.kv_lora_rank} + {arch.mla.qk_rope_head_dim}) × {e_kv}"
        )
        source = "vLLM MLAAttentionSpec (one latent per token, num_kv_heads 1, no ×2)"
    else:
        shape = f"2 × k × d × e = 2 × {arch.num_kv_heads} × {arch.head_dim} × {e_kv}"
        source = "vLLM kv_cache_interface FullAttentionSpec / SlidingWindowSpec / ChunkedLocalAttentionSpec"
    tokens = kv_tokens(arch, s)
    terms = []
    if arch.attention_layers:
        terms.append(
            Term(
                "kv_cache",
                b * tokens * per_layer,
                _kv_formula(b, tokens, shape)
                + f" (attention: {arch.attention_pattern()}, s={s:,}"
                + (f" incl. {settings.image_tokens:,} image tokens" if settings.image_tokens else "")
                + ")",
                source,
            )
        )
    if BIDIRECTIONAL in arch.layer_types:
        terms.append(
            Term(
                "kv_cache",
                0,
                f"encoder-only ({arch.model_type}): {len(arch.layer_types)} bidirectional layers attend over "
                "the whole input in one pass; nothing is cached between steps",
                "vLLM kv_cache_interface EncoderOnlyAttentionSpec (max_memory_usage_bytes = 0)",
            )
        )
    if arch.encoder is not None:
        n = settings.encoder_len
        terms.append(
            Term(
                "cross_kv",
                cross_attention_bytes(arch, batch=b, encoder_len=n, kv_bytes=e_kv),
                f"b × L_decoder × encoder_len × 2 × k × d × e = {b} × {arch.num_layers} × {n:,} × 2 × "
                f"{arch.num_kv_heads} × {arch.head_dim} × {e_kv} (fixed while decoding)",
                "vLLM CrossAttentionSpec; transformers EncoderDecoderCache.cross_attention_cache",
            )
        )
    if arch.ssm is not None:
        conv, temporal = state_element_bytes(settings, precision)
        ssm = arch.ssm
        terms.append(
            Term(
                "state",
                b * state_bytes_per_sequence(arch, conv, temporal),
                f"b × {ssm.kind} layers × (conv {'×'.join(map(str, ssm.conv_state))} × {conv} + "
                f"ssm {'×'.join(map(str, ssm.temporal_state))} × {temporal}) = {b} × {ssm.num_layers} × "
                f"({ssm.conv_elements:,} × {conv} + {ssm.temporal_elements:,} × {temporal}) (per sequence, any s)",
                "vLLM MambaSpec; mamba_utils MambaStateShapeCalculator / MambaStateDtypeCalculator",
            )
        )
    return tuple(terms)


def inference_row(
    arch: Architecture, counts: CheckpointCounts, precision: str, settings: InferenceSettings
) -> InferenceRow:
    """Weights + KV cache + activations + overhead for one precision, each with its formula."""
    spec = PRECISIONS[precision]
    weights = weight_bytes(counts, precision, settings.bnb_double_quant, settings.bnb_quantize_lm_head)
    b, s = settings.batch, settings.seq_len
    w_term = Term(
        "weights",
        weights,
        f"{spec.description}: {counts.parameters:,} parameters ({counts.linear_params:,} in block Linear layers)",
        "hubmem.memory.inference.weight_bytes; QLoRA paper §3 / GPTQ / LLM.int8 storage layouts",
    )
    k_terms = gptq_terms(counts, precision, settings)
    weights += sum(t.bytes for t in k_terms)
    if settings.serving_factor is not None:
        margin = round(weights * (settings.serving_factor - 1))
        m_term = Term(
            "rule-of-thumb margin",
            margin,
            f"weights × ({settings.serving_factor} − 1): M = P × 4 B / (32 / Q) × {settings.serving_factor}",
            "seed article S4 (serving formula with a 20 % margin)",
        )
        return InferenceRow(precision, spec.label, weights, 0, 0, margin, (w_term, *k_terms, m_term))

    e = compute_dtype_bytes(precision)
    if settings.generating:
        return _generation_row(arch, counts, precision, settings, w_term, k_terms)
    s += settings.image_tokens
    kv_terms = cache_terms(arch, precision, settings)
    kv = sum(t.bytes for t in kv_terms)
    act = activation_bytes(
        arch,
        batch=b,
        seq_len=s,
        e=e,
        attn=settings.attn,
        all_logits=settings.all_logits,
        encoder_len=settings.encoder_len,
    )
    dq = bnb_dequant(counts, precision, settings, b * s)
    m = 3 if arch.gated_mlp else 2
    extra = "".join(
        f", {name} {value:,}"
        for name, value in (("ssm mixer", act.ssm_phase), ("encoder", act.encoder_phase))
        if value
    )
    act_term = Term(
        "activations",
        act.total + dq,
        f"max(attention {act.attention_phase:,}, mlp {act.mlp_phase:,}{extra}) + logits {act.logits:,}; "
        f"mlp = (2·b·s·h + {m}·b·s·i) × {e}{_moe_width_note(arch)}, attention = (2·b·s·h + "
        + ("b·s·a·(2·d_qk + 2·d_v)" if arch.mla is not None else "2·b·s·a·d")
        + f") × {e}"
        # eager scores in e bytes + their fp32 softmax: already bytes, outside the × e (as activation_bytes)
        + (f" + b·a·s²·({e} + 4)" if settings.attn == "eager" else "")
        + f" [attn={settings.attn}], logits = b × {'s' if settings.all_logits else '1'} × V × 4"
        + (dequant_note(counts, settings, dq) if dq else ""),
        "hubmem.memory.inference.activation_bytes (one layer's prefill peak; FlashAttention §3 for sdpa)"
        + ("; bitsandbytes autograd/_functions.py matmul_4bit" if dq else ""),
    )
    o_term = overhead_term(settings)
    return InferenceRow(
        precision,
        spec.label,
        weights,
        kv,
        act.total + dq,
        settings.overhead_bytes,
        (w_term, *k_terms, *kv_terms, act_term, o_term),
    )


def gptq_buffers(counts: CheckpointCounts, precision: str, settings: InferenceSettings) -> KernelBuffers:
    """What the GPTQ / AWQ kernel chosen for the settings' GPU keeps beside qweight and scales."""
    kernel = select_kernel(precision, settings.gpu_capability, settings.gptq_kernel)
    return kernel_buffers(
        precision, kernel, counts.linear_shapes, desc_act=settings.gptq_desc_act, sms=settings.gpu_sms
    )


def gptq_terms(counts: CheckpointCounts, precision: str, settings: InferenceSettings) -> tuple[Term, ...]:
    """The gptq / awq rows' kernel term (g_idx, zero points, workspace); () for every other row."""
    if precision not in ("gptq", "awq"):
        return ()
    k = gptq_buffers(counts, precision, settings)
    cc = settings.gpu_capability
    why = (
        f"--gptq-kernel {settings.gptq_kernel}"
        if settings.gptq_kernel != "auto"
        else f"auto for compute capability {cc[0]}.{cc[1]}"
        if cc
        else "auto without --gpu: Marlin assumed (CC 7.5-8.9, 12.x)"
    )
    return (
        Term(
            "kernel buffers",
            k.total,
            f"{k.kernel} ({why}): {k.formula}" + (", desc_act" if settings.gptq_desc_act else ""),
            "hubmem.runtimes.gptq; " + ("GPTQModel 7.3.4 nn_modules/qlinear"),
        ),
    )


def bnb_dequant(counts: CheckpointCounts, precision: str, settings: InferenceSettings, rows: int) -> int:
    """bitsandbytes 4-bit: the largest Linear dequantized by a forward over `rows` input rows (0 for one
    row, which takes gemv_4bit, and for every other precision)."""
    if precision not in BNB_4BIT or not dequant_applies(rows):
        return 0
    return dequant_bytes(counts, settings.bnb_compute_dtype, settings.bnb_quantize_lm_head)


def dequant_note(counts: CheckpointCounts, settings: InferenceSettings, dq: int) -> str:
    c = settings.bnb_compute_dtype
    per = "2" if c != "fp32" else "(2 + 4)"
    return (
        f" + the largest Linear dequantized by MatMul4Bit: {dq // (2 if c != 'fp32' else 6):,} × {per} = {dq:,}"
        f" (16-bit, then the {c} compute copy; --bnb-compute-dtype)"
    )


def overhead_term(settings: InferenceSettings) -> Term:
    """The per-GPU overhead: a figure (--overhead 1GiB), or a named model's parts (--overhead torch-lazy)."""
    if settings.overhead_model:
        from hubmem.runtimes.overhead import MODELS

        model = MODELS[settings.overhead_model]
        return Term("overhead", settings.overhead_bytes, model.formula(), "hubmem.runtimes.overhead")
    return Term(
        "overhead",
        settings.overhead_bytes,
        "CUDA context + framework reserve per GPU (--overhead)",
        OVERHEAD_SOURCE,
    )


OVERHEAD_SOURCE = "pytorch/pytorch#86509 (context 0.29–0.67 GB); transformers model_memory_anatomy (1.34 GB)"


def _generation_row(
    arch: Architecture,
    counts: CheckpointCounts,
    precision: str,
    settings: InferenceSettings,
    w_term: Term,
    k_terms: tuple[Term, ...] = (),
) -> InferenceRow:
    """A generate call: the larger of the prefill peak and the decode step(s), each shown by --explain."""
    from hubmem.runtimes.generate import generation_phases, peak

    spec = PRECISIONS[precision]
    e = compute_dtype_bytes(precision)
    phases = generation_phases(arch, precision, settings, e, counts)
    top = peak(phases)
    weights = w_term.bytes + sum(t.bytes for t in k_terms)
    terms = [w_term, *k_terms]
    if settings.generate_cache == "legacy" and counts.buffer_bytes:
        weights += counts.buffer_bytes
        terms.append(
            Term(
                "buffers",
                counts.buffer_bytes,
                f"{counts.buffers:,} stored buffer elements (causal masks, inv_freq) loaded with the weights",
                "transformers 4.3x: persistent `attn.bias` / `rotary_emb.inv_freq` buffers (e.g. GPTNeoXAttention._init_bias)",
            )
        )
    beams = f", num_beams {settings.num_beams}" if settings.num_beams > 1 else ""
    terms.append(
        Term(
            "kv_cache",
            top.kv,
            f"cache live at the peak ({top.name}, {top.tokens:,} tokens × b·k = {settings.batch}·{settings.num_beams}"
            f" sequences): self-attention KV + cross-attention KV + state, as hubmem.memory.kv",
            "hubmem.runtimes.generate (transformers generate; vLLM kv_cache_interface shapes)",
        )
    )
    terms.append(
        Term(
            "activations",
            top.transient,
            f"peak = {top.name} of [{'; '.join(f'{ph.name} {ph.total:,} = {ph.formula}' for ph in phases)}]"
            f" [attn={settings.attn}, cache={settings.generate_cache}{beams}]",
            "hubmem.runtimes.generate (transformers generation/utils.py, cache_utils.py)",
        )
    )
    terms.append(overhead_term(settings))
    return InferenceRow(
        precision, spec.label, weights, top.kv, top.transient, settings.overhead_bytes, tuple(terms)
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
