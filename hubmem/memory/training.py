"""Training memory per GPU: pure formulas, plain numbers in, integer bytes out. No network, no torch.

Per GPU, training holds (ZeRO paper, Rajbhandari et al. 2020, §3.1; transformers docs
`model_memory_anatomy`): weights + gradients + optimizer states (+ fp32 master weights in mixed
precision) + the activations kept for backward + the logits / loss buffers + overhead.

Notation (DESIGN.md): b micro-batch, s sequence length, h hidden, i intermediate, L layers, a heads,
k KV heads, d head_dim, V vocab, e bytes per activation element, t tensor-parallel size, p pipeline
stages, N data-parallel replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from hubmem.bounds import at_most
from hubmem.choices import (
    ACTIVATION_RULES,
    LORA_EXPERTS,
    LORA_MODULES,
    LOSS_DTYPES,
    OBJECTIVES,
    OPTIMIZERS,
    TRAIN_MODES,
)
from hubmem.errors import InvalidInputError
from hubmem.memory.inference import DEFAULT_OVERHEAD_BYTES, Term
from hubmem.model.architecture import Architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.tensors import CheckpointCounts
from hubmem.runtimes.collectives import (
    DDP_SOURCE,
    LL128_BUFFSIZE,
    LL_BUFFSIZE,
    NCCL_SOURCE,
    SIMPLE_BUFFSIZE,
    ddp_bucket_bytes,
    nccl_bytes,
)
from hubmem.runtimes.sharded_training import (
    DEEPSPEED_SOURCE,
    FSDP_SOURCE,
    MAX_LIVE_PARAMETERS,
    MAX_REUSE_DISTANCE,
    Trace,
    ZeroBuckets,
    persistent_elements,
    zero3_live,
)

ZERO_OPTIONS = (
    "zero_buckets",
    "reduce_bucket_size",
    "prefetch_bucket_size",
    "param_persistence_threshold",
    "max_live_parameters",
    "max_reuse_distance",
    "overlap_comm",
)
ZERO3_OPTIONS = (
    "prefetch_bucket_size",
    "param_persistence_threshold",
    "max_live_parameters",
    "max_reuse_distance",
)


@dataclass(frozen=True)
class Regime:
    """Bytes per parameter of each training tensor under one precision regime."""

    key: str
    label: str
    weight: int  # the weights the forward pass reads
    grad: int
    master: int  # fp32 master copy kept by the optimizer (0 when the weights are the master)
    state: int  # one optimizer state element (torch.optim allocates states like the parameter)
    act: int  # activation element (e)
    description: str


REGIMES: dict[str, Regime] = {
    r.key: r
    for r in (
        Regime(
            key="fp32", label="fp32", weight=4, grad=4, master=0, state=4, act=4,
            description="weights, gradients, optimizer states and activations in fp32",
        ),
        Regime(
            key="bf16", label="bf16/fp16 pure", weight=2, grad=2, master=0, state=2, act=2,
            description="everything in 16-bit; torch.optim creates the states like the parameter (zeros_like)",
        ),
        Regime(
            key="mixed", label="mixed (fp32 master)", weight=2, grad=4, master=4, state=4, act=2,
            description="16-bit compute copy + fp32 master weights, gradients and optimizer states: torch.autocast "
            "as the HF Trainer's fp16/bf16=True, 2 + 4 + 4 + 8 = 18 B/param with AdamW (--grad-dtype 16bit: "
            "DeepSpeed/Megatron's 2 + 2 + 12 = 16, ZeRO paper §3.1)",
        ),
        Regime(
            key="int8", label="int8 (S0 article)", weight=1, grad=1, master=0, state=1, act=1,
            description="every tensor in 1 byte: the S0 article's assumption, not something a framework trains with",
        ),
    )
}  # fmt: skip
DEFAULT_REGIMES = ("fp32", "bf16", "mixed")
SAVABLE_MODULES = ("embed", "lm_head")

# bitsandbytes 8-bit optimizers quantize each state blockwise with one fp32 absmax per 2048 values
# (bitsandbytes `Optimizer2State.init_state`: blocks = ceil(n / 2048), absmax1/absmax2 float32).
BNB_STATE_BLOCK = 2048
# QLoRA §3: NF4 blocks of 64 weights; their absmax quantized to 8 bits in blocks of 256 with one
# fp32 second-level constant: 4 + 8/64 + 32/(64·256) = 4.127 bits per weight.
NF4_BLOCK = 64
NF4_BLOCK2 = 256


@dataclass(frozen=True)
class TrainingSettings:
    mode: str = "full"  # full | lora | qlora
    optimizer: str = "adamw"
    micro_batch: int = 1
    grad_checkpointing: bool = False
    attn: str = "sdpa"
    lora_rank: int = 16
    lora_targets: tuple[str, ...] = LORA_MODULES
    grad_dtype: str = "fp32"  # gradients in the mixed regime: fp32 (torch.autocast) or 16bit (DeepSpeed)
    objective: str = "causal-lm"
    activation_rule: str = "korthikanti"
    gpus: int | None = None  # None = tp × pp (one data-parallel replica)
    zero: int = 0  # ZeRO stage; FSDP full = 3, grad-op = 2
    fsdp: str | None = None
    tp: int = 1
    pp: int = 1
    offload: str | None = None  # optimizer | params
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES
    regimes: tuple[str, ...] = DEFAULT_REGIMES
    loss_dtype: str = "fp32"  # fp32: transformers ForCausalLMLoss upcasts; 16bit: litgpt's bf16-true loss
    modules_to_save: tuple[str, ...] = ()  # PEFT modules_to_save: embed, lm_head trained in full beside LoRA
    lora_experts: str = (
        "auto"  # MoE routed experts: auto (PEFT's own conversion) | none | params (lora_matrices)
    )
    lora_dropout: float = 0.0  # PEFT LoraConfig's default; > 0: each adapted Linear's dropout keeps a copy
    lora_fused_qkv: bool = False  # litgpt's LoRAQKVLinear: one adapter and one dropout for the fused q, k, v
    # DeepSpeed ZeRO buffers (hubmem.runtimes.sharded_training): None = DeepSpeed's default / the preset's
    zero_buckets: str | None = None  # deepspeed (DeepSpeed's defaults) | hf-auto (the HF Trainer's "auto")
    reduce_bucket_size: int | None = None
    prefetch_bucket_size: int | None = None
    param_persistence_threshold: int | None = None
    max_live_parameters: int | None = None
    max_reuse_distance: int | None = None
    overlap_comm: bool | None = None
    # data-parallel communication (hubmem.runtimes.collectives): DDP's bucket copy, NCCL's ring FIFOs
    ddp_bucket_view: bool = False  # DistributedDataParallel(gradient_as_bucket_view=...): torch's default off
    nccl_channels: int = 0  # NCCL ring channels per GPU; 0 = not counted (inside --overhead)

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        """Reject values and combinations no framework runs, whatever the model."""
        s = self
        for name in ("micro_batch", "lora_rank", "tp", "pp", "zero", "nccl_channels"):
            value = getattr(s, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"--{name.replace('_', '-')} takes a whole number, not {value!r}")
        if s.gpus is not None and (isinstance(s.gpus, bool) or not isinstance(s.gpus, int)):
            raise InvalidInputError(f"--gpus takes a whole number, not {s.gpus!r}")
        if s.mode not in TRAIN_MODES:
            raise InvalidInputError(f"unknown --train mode '{s.mode}' ({', '.join(TRAIN_MODES)})")
        if s.optimizer not in OPTIMIZERS:
            raise InvalidInputError(f"unknown --optimizer '{s.optimizer}' ({', '.join(OPTIMIZERS)})")
        for key in s.regimes:
            if key not in REGIMES:
                raise InvalidInputError(f"unknown --regime '{key}' ({', '.join(REGIMES)})")
        if s.objective not in OBJECTIVES:
            raise InvalidInputError(f"unknown --objective '{s.objective}' ({', '.join(OBJECTIVES)})")
        if s.activation_rule not in ACTIVATION_RULES:
            raise InvalidInputError(
                f"unknown --activations '{s.activation_rule}' ({', '.join(ACTIVATION_RULES)})"
            )
        if s.micro_batch < 1:
            raise InvalidInputError("--micro-batch must be at least 1")
        if s.nccl_channels < 0:
            raise InvalidInputError("--nccl-channels must be at least 0")
        if not isinstance(s.lora_fused_qkv, bool):
            raise InvalidInputError(f"--lora-fused-qkv is a flag (True or False), not {s.lora_fused_qkv!r}")
        if not isinstance(s.ddp_bucket_view, bool):
            raise InvalidInputError(f"--ddp-bucket-view is a flag (True or False), not {s.ddp_bucket_view!r}")
        if s.mode in ("lora", "qlora") and s.lora_rank < 1:
            raise InvalidInputError("--lora-rank must be at least 1")
        p = s.lora_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise InvalidInputError(f"--lora-dropout takes a probability in [0, 1), not {p!r}")
        unknown = [t for t in s.lora_targets if t not in LORA_MODULES]
        if unknown or not s.lora_targets:
            raise InvalidInputError(
                f"unknown --lora-targets '{','.join(unknown)}' (choose from {','.join(LORA_MODULES)})"
            )
        if s.lora_experts not in LORA_EXPERTS:
            raise InvalidInputError(f"unknown --lora-experts '{s.lora_experts}' ({', '.join(LORA_EXPERTS)})")
        if s.loss_dtype not in LOSS_DTYPES:
            raise InvalidInputError(f"unknown --loss-dtype '{s.loss_dtype}' ({', '.join(LOSS_DTYPES)})")
        bad = [m for m in s.modules_to_save if m not in SAVABLE_MODULES]
        if bad:
            raise InvalidInputError(
                f"unknown --modules-to-save '{','.join(bad)}' (choose from {','.join(SAVABLE_MODULES)})"
            )
        if s.zero and s.fsdp:
            raise InvalidInputError("--zero and --fsdp are alternatives: give one of them")
        if s.zero not in (0, 1, 2, 3):
            raise InvalidInputError("--zero must be 0, 1, 2 or 3")
        if min(s.world, s.tp, s.pp) < 1:
            raise InvalidInputError("--gpus, --tp and --pp must be at least 1")
        for name in ("micro_batch", "lora_rank", "tp", "pp", "gpus"):
            if getattr(s, name) is not None:
                at_most(getattr(s, name), name)
        if s.world % (s.tp * s.pp):
            raise InvalidInputError(f"--gpus {s.gpus} is not divisible by --tp × --pp = {s.tp * s.pp}")
        if s.offload and not s.shard_stage:
            raise InvalidInputError(
                f"--offload {s.offload} needs --zero 1-3 or --fsdp (DeepSpeed ZeRO-Offload / FSDP)"
            )
        self._check_buckets()
        if s.offload == "params" and s.shard_stage != 3:
            raise InvalidInputError(
                "--offload params needs --zero 3 or --fsdp full (parameters must be sharded)"
            )

    def _check_buckets(self) -> None:
        """DeepSpeed's bucket options need --zero (stage 3 for the parameter ones); values are elements ≥ 0."""
        s = self
        for name in ZERO_OPTIONS:
            value = getattr(s, name)
            if value is None:
                continue
            flag = "--" + name.replace("_", "-")
            if name == "overlap_comm":
                if not isinstance(value, bool):
                    raise InvalidInputError(f"{flag} is a flag (True or False), not {value!r}")
            elif name != "zero_buckets" and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidInputError(f"{flag} takes a number of elements (e.g. 5e8), not {value!r}")
            if not s.zero:
                raise InvalidInputError(f"{flag} sets a DeepSpeed ZeRO buffer: add --zero 1, 2 or 3")
            if name in ZERO3_OPTIONS and s.zero != 3:
                raise InvalidInputError(f"{flag} is a ZeRO-3 setting: it needs --zero 3")
        self.buckets  # noqa: B018 - validates the preset

    @property
    def buckets(self) -> ZeroBuckets:
        """DeepSpeed's bucket settings, DeepSpeed's defaults where not given."""
        given = {
            k: getattr(self, k)
            for k in (
                "reduce_bucket_size",
                "prefetch_bucket_size",
                "param_persistence_threshold",
                "overlap_comm",
            )
        }
        return ZeroBuckets(
            preset=self.zero_buckets or "deepspeed",
            max_live_parameters=MAX_LIVE_PARAMETERS
            if self.max_live_parameters is None
            else self.max_live_parameters,
            max_reuse_distance=MAX_REUSE_DISTANCE
            if self.max_reuse_distance is None
            else self.max_reuse_distance,
            **given,
        )

    @property
    def world(self) -> int:
        return self.tp * self.pp if self.gpus is None else self.gpus

    @property
    def dp(self) -> int:
        return self.world // (self.tp * self.pp)

    @property
    def shard_stage(self) -> int:
        """ZeRO stage in effect: FSDP FULL_SHARD shards like ZeRO-3, SHARD_GRAD_OP like ZeRO-2."""
        if self.fsdp:
            return {"full": 3, "grad-op": 2}[self.fsdp]
        return self.zero

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["lora_targets"] = list(self.lora_targets)
        d["modules_to_save"] = list(self.modules_to_save)
        d["regimes"] = list(self.regimes)
        d["gpus"] = self.world
        d["data_parallel"] = self.dp
        d["shard_stage"] = self.shard_stage
        return d


def validate(settings: TrainingSettings, arch: Architecture) -> None:
    """Reject settings this model cannot take (the value checks ran when the settings were made:
    `TrainingSettings._check`), each with one clear sentence (InvalidInputError, exit 3)."""
    s = settings
    if arch.num_heads % s.tp:
        raise InvalidInputError(f"--tp {s.tp} does not divide the {arch.num_heads} attention heads")
    if arch.num_kv_heads % s.tp and s.tp % arch.num_kv_heads:
        raise InvalidInputError(
            f"--tp {s.tp} and the {arch.num_kv_heads} KV heads: one must divide the other"
        )
    if s.pp > arch.num_layers:
        raise InvalidInputError(f"--pp {s.pp} exceeds the model's {arch.num_layers} layers")


# ---------------------------------------------------------------------------------------------
# Parameters: the matrices of a decoder, LoRA adapters, QLoRA base


def linear_shapes(arch: Architecture) -> dict[str, tuple[int, int]]:
    """(out_features, in_features) of each block projection, by module name, as transformers holds them.
    Llama/GPT attention: q_proj (a·d × h), k_proj and v_proj (k·d × h), o_proj (h × a·d). MLA
    (DeepseekV3Attention, transformers models/deepseek_v3/modeling_deepseek_v3.py; DeepSeek-V2 paper
    §2.1.2): q_a_proj (q_lora_rank × h) and q_b_proj (a·(nope + rope) × q_lora_rank), or q_proj
    (a·(nope + rope) × h) when q_lora_rank is null (DeepSeek-V2-Lite); kv_a_proj_with_mqa
    ((kv_lora_rank + rope) × h), kv_b_proj (a·(nope + v_head) × kv_lora_rank), o_proj (h × a·v_head).
    MLP: gate_proj and up_proj (i × h), down_proj (h × i)."""
    h, a, i = arch.hidden_size, arch.num_heads, arch.intermediate_size
    if arch.mla is None:
        q_out, kv_out = a * arch.head_dim, arch.num_kv_heads * arch.head_dim
        shapes = {"q_proj": (q_out, h), "k_proj": (kv_out, h), "v_proj": (kv_out, h), "o_proj": (h, q_out)}
    else:
        m = arch.mla
        if m.q_lora_rank:
            shapes = {"q_a_proj": (m.q_lora_rank, h), "q_b_proj": (a * m.qk_head_dim, m.q_lora_rank)}
        else:
            shapes = {"q_proj": (a * m.qk_head_dim, h)}
        shapes |= {
            "kv_a_proj_with_mqa": (m.kv_lora_rank + m.qk_rope_head_dim, h),
            "kv_b_proj": (a * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank),
            "o_proj": (h, a * m.v_head_dim),
        }
    shapes |= {"up_proj": (i, h), "down_proj": (h, i)}
    if arch.gated_mlp:
        shapes["gate_proj"] = (i, h)
    return shapes


# --lora-targets -> the modules PEFT's target_modules would name. MLA models have no k_proj / v_proj:
# keys and values both come from the latent projections, so k and v adapt kv_a_proj_with_mqa + kv_b_proj.
LORA_TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "q": ("q_proj", "q_a_proj", "q_b_proj"),
    "k": ("k_proj", "kv_a_proj_with_mqa", "kv_b_proj"),
    "v": ("v_proj", "kv_a_proj_with_mqa", "kv_b_proj"),
    "o": ("o_proj",),
    "gate": ("gate_proj",),
    "up": ("up_proj",),
    "down": ("down_proj",),
}


def lora_shapes(arch: Architecture, targets: tuple[str, ...]) -> list[tuple[int, int]]:
    """(out, in) of each projection the targets adapt in one layer, each module once (k and v share
    MLA's latent projections). A target the model lacks (gate on a plain MLP) adapts nothing."""
    shapes = linear_shapes(arch)
    names = dict.fromkeys(m for t in targets for m in LORA_TARGET_MODULES[t] if m in shapes)
    return [shapes[m] for m in names]


# PEFT ≥ 0.19 on transformers 5 (peft utils/transformers_weight_conversion.py `_convert_peft_config_moe`, called
# by BaseTuner.inject_adapter): for the model types whose experts transformers 5 fuses into 3-D parameters
# (transformers 5.25 conversion_mapping.py `_MODEL_TO_CONVERSION_PATTERN` → "mixtral" / "qwen2_moe", plus
# mixtral itself), target_modules naming gate_proj + up_proj (Mixtral: w1 + w3) become target_parameters
# `experts.gate_up_proj` at rank 2r (rank_pattern r × 2, the two fused), down_proj (w2) becomes
# `experts.down_proj` at rank r, and those names leave target_modules (dense MLPs and shared experts then keep
# no adapter). Naming only one of gate / up is PEFT's ValueError.
PEFT_FUSED_MOE_TYPES = frozenset(
    {
        "mixtral", "minimax", "minimax_m2", "Dots3NoteTextModel", "afmoe", "deepseek_v2", "deepseek_v3",
        "deepseek_v32", "dots1", "ernie4_5_moe", "glm4_moe", "glm4_moe_lite", "glm_moe_dsa", "glm4v_moe",
        "longcat_flash", "solar_open", "mellum", "qwen3_moe", "beam", "qwen3_omni_moe", "qwen3_omni_moe_thinker",
        "qwen3_omni_moe_text", "qwen3_next", "hunyuan_v1_moe", "flex_olmo", "olmoe", "sarvam_mla", "exaone_moe",
        "cohere2_moe",
    }
)  # fmt: skip
MLP_TARGETS = ("gate", "up", "down")


def lora_parameters(arch: Architecture, rank: int, targets: tuple[str, ...], experts: str = "auto") -> int:
    """LoRA (Hu et al. 2021, §4): each adapted W (out × in) gains A (r × in) and B (out × r):
    r·(in + out) trainable parameters; fused experts E·r·(in + out) (`lora_matrices`)."""
    return sum(rows * cols * count for rows, cols, count in lora_matrices(arch, rank, targets, experts))


def lora_matrices(
    arch: Architecture, rank: int, targets: tuple[str, ...], experts: str = "auto"
) -> list[tuple[int, int, int]]:
    """(rows, cols, count) of the LoRA A and B matrices over the model (also Adafactor's factored shapes).

    Attention projections: every layer. The MLP targets (gate, up, down) adapt the Linear MLPs: every layer
    of a dense model; of an MoE model, its dense layers (dense width) and shared experts (shared width).
    Routed experts are fused 3-D parameters in transformers 5 (MixtralExperts `gate_up_proj` [E, 2i, h],
    `down_proj` [E, h, i]), which only PEFT's target_parameters reaches: peft tuners/lora/layer.py
    ParamWrapper (PEFT 0.20) makes lora_A = Linear(in, r·E) and lora_B = Linear(r·E, out), so E·r·(in + out):
    r·(h + 2i) per expert for gate_up_proj, r·(i + h) for down_proj. `experts`:
    - auto: what PEFT does with the MLP targets by itself (PEFT_FUSED_MOE_TYPES: the experts at rank 2r for
      gate_up, r for down, the Linear MLPs dropped; other MoE types: Linear MLPs only, experts untouched);
    - none: target_modules only (Linear MLPs; experts untouched);
    - params: target_parameters on both expert tensors at rank r, beside the Linear MLPs."""
    out: list[tuple[int, int, int]] = []

    def add(shapes: list[tuple[int, int]], layers: int) -> None:
        for rows, cols in shapes:
            out.extend([(rank, cols, layers), (rows, rank, layers)])

    moe = arch.moe
    if moe is None or not moe.moe_layers:
        add(lora_shapes(arch, targets), arch.num_layers)
        return out
    attention = tuple(t for t in targets if t not in MLP_TARGETS)
    mlp = tuple(t for t in targets if t in MLP_TARGETS)
    add(lora_shapes(arch, attention), arch.num_layers)
    n_moe = len(moe.moe_layers)
    fused = experts == "auto" and arch.model_type in PEFT_FUSED_MOE_TYPES and bool(mlp)
    if fused and arch.gated_mlp and len({"gate", "up"} & set(mlp)) == 1:
        one, other = ("gate", "up") if "gate" in mlp else ("up", "gate")
        raise InvalidInputError(
            f"PEFT cannot adapt {one} without {other} on {arch.model_type}: transformers 5 fuses them into the "
            "experts' gate_up_proj (add both to --lora-targets)"
        )
    if not fused:
        for width, layers in (
            (moe.dense_intermediate_size, arch.num_layers - n_moe),
            (moe.shared_intermediate_size, n_moe),
        ):
            if width and layers:
                add(lora_shapes(replace(arch, intermediate_size=width), mlp), layers)
    e, h, i = moe.num_experts, arch.hidden_size, moe.expert_intermediate_size
    up_rows = (2 if arch.gated_mlp else 1) * i
    tensors: list[tuple[int, int, int]] = []  # (out, in) of one expert, PEFT's rank for it
    if fused and {"gate", "up"} & set(mlp):
        tensors.append((up_rows, h, 2 * rank if arch.gated_mlp else rank))
    if fused and "down" in mlp:
        tensors.append((h, i, rank))
    if experts == "params":
        tensors = [(up_rows, h, rank), (h, i, rank)]
    for rows, cols, r in tensors:
        out.extend([(r * e, cols, n_moe), (rows, r * e, n_moe)])
    return out


def adafactor_matrices(shapes: dict[tuple[int, ...], int]) -> list[tuple[int, int, int]]:
    """(rows, cols, count) for `optimizer_state_bytes` from parameter shapes -> number of such tensors.

    transformers Adafactor (transformers 5.24 optimization.py): `_get_options` factors a gradient when
    `len(grad_shape) >= 2`, and `step` allocates `exp_avg_sq_row = zeros(grad_shape[:-1])` and
    `exp_avg_sq_col = zeros(grad_shape[:-2] + grad_shape[-1:])`. The leading dims stay in both factors, so
    a tensor [E, r, c] (fused experts) keeps E·r + E·c elements: E matrices of r × c. 1-D shapes are left
    out (their second moment is whole)."""
    return [
        (shape[-2], shape[-1], math.prod(shape[:-2]) * n) for shape, n in shapes.items() if len(shape) >= 2
    ]


def model_matrices(arch: Architecture, counts: CheckpointCounts) -> list[tuple[int, int, int]]:
    """(rows, cols, count) of the model's parameters of 2+ dimensions: the checkpoint's own tensor shapes
    (per-expert 2-D matrices or fused 3-D experts, as stored), else those config.json implies
    (hubmem.model.config_counts.estimate_counts: experts one 2-D matrix each)."""
    return adafactor_matrices(counts.matrix_shapes or estimate_counts(arch).matrix_shapes)


def nf4_bytes(n: int) -> int:
    """bitsandbytes NF4 with double quantization (QLoRA §3): 4-bit values, one 8-bit absmax per 64
    weights, one fp32 constant per 256 absmaxes: n/2 + n/64 + 4·n/(64·256) bytes ≈ 4.127 bits/weight."""
    blocks = -(-n // NF4_BLOCK)
    return -(-n // 2) + blocks + 4 * -(-blocks // NF4_BLOCK2)


# ---------------------------------------------------------------------------------------------
# Optimizer states


def optimizer_state_bytes(
    optimizer: str, trainable: int, state_bytes: int, matrices: list[tuple[int, int, int]]
) -> tuple[int, str]:
    """Bytes of the optimizer's states for `trainable` parameters, and the formula shown by --explain.

    - AdamW: exp_avg + exp_avg_sq, 2 states per parameter (torch.optim.AdamW; 8 B/param in fp32).
    - 8-bit AdamW (bitsandbytes, Dettmers et al. 2022 §2): 2 × 1 byte + one fp32 absmax per 2048 per state.
    - SGD: no state; SGD with momentum: one momentum buffer per parameter (torch.optim.SGD).
    - Adafactor (Shazeer & Stern 2018, §3; transformers.Adafactor with beta1=None, the HF default): a
      factored second moment, rows + cols per matrix (`matrices`: (rows, cols, count), see
      `adafactor_matrices` for tensors of 3+ dims), a full one for 1-D parameters; no momentum.
    """
    n, e = trainable, state_bytes
    if optimizer == "adamw":
        return 2 * n * e, f"2 states × {n:,} params × {e} B"
    if optimizer == "adamw-8bit":
        absmax = 2 * 4 * -(-n // BNB_STATE_BLOCK)
        return (
            2 * n + absmax,
            f"2 states × {n:,} params × 1 B + fp32 absmax per {BNB_STATE_BLOCK} ({absmax:,} B)",
        )
    if optimizer == "sgd":
        return 0, "plain SGD keeps no state"
    if optimizer == "sgd-momentum":
        return n * e, f"1 momentum buffer × {n:,} params × {e} B"
    if optimizer == "adafactor":
        factored = sum((r + c) * count for r, c, count in matrices)
        in_matrices = sum(r * c * count for r, c, count in matrices)
        vectors = max(0, n - in_matrices)
        return (factored + vectors) * e, (
            f"(Σ row + col factors over params of 2+ dims {factored:,} + 1-D params {vectors:,}) × {e} B"
            " (factored 2nd moment)"
        )
    raise ValueError(f"unknown optimizer {optimizer!r}")


# ---------------------------------------------------------------------------------------------
# Activations


def dropout_from_config(config: dict) -> tuple[bool, bool]:
    """(attention dropout, hidden dropout) > 0 in a config.json (BERT, GPT-2 keep both at 0.1; Llama 0)."""
    text: dict = config["text_config"] if isinstance(config.get("text_config"), dict) else config

    def positive(*names: str) -> bool:
        return any(isinstance(v := text.get(n), (int, float)) and v > 0 for n in names)

    return (
        positive("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop", "attn_dropout"),
        positive("hidden_dropout_prob", "hidden_dropout", "resid_pdrop", "dropout"),
    )


@dataclass(frozen=True)
class LayerActivations:
    replicated: int  # bytes not split by tensor parallelism (Korthikanti §4.2.2: LN and linear inputs, masks)
    sharded: int  # bytes split by t
    scores: int  # eager attention's a·s² tensors (split by t)
    formula: str

    def per_gpu(self, tp: int) -> int:
        return self.replicated + (self.sharded + self.scores) // tp


def layer_activations(
    arch: Architecture,
    *,
    b: int,
    s: int,
    e: int,
    attn: str,
    attn_dropout: bool,
    hidden_dropout: bool,
    softmax_bytes: int,
    norm_bytes: int | None = None,
    tp: int = 1,
    moe_layer: bool = False,
) -> LayerActivations:
    """Activations one transformer layer keeps for backward (Korthikanti et al. 2022, arXiv 2205.05198 §4.1),
    generalised to GQA, gated MLPs, mixture-of-experts blocks, any element size and transformers' fp32 softmax.

    Derivation. The paper counts, per layer, in 16-bit with a = h/d query heads and k = a:
      attention 11sbh + 5as²b: QKV input 2sbh, Q and K 4sbh, V 2sbh, output-projection input 2sbh,
        dropout mask sbh; softmax output 2as²b, its dropout mask as²b, dropout output 2as²b;
      MLP 19sbh: first linear input 2sbh, GeLU input 8sbh and output 8sbh (i = 4h), dropout mask sbh;
      two LayerNorm inputs 4sbh;  total sbh·(34 + 5as/h).
    Written per element with e bytes, GQA and any MLP:
      replicated = e·sb·(2h LN inputs + 2h inputs of QKV and of the MLP) + sb·h per hidden dropout mask (×2)
      sharded    = e·sb·(a·d Q + 2·k·d K,V + a·d o_proj input + m·i), m = 2 (plain: act input, fc2 input)
                   or 4 (gated: gate out, up out, act(gate), product = down input);
                   SDPA/flash stores no s² tensor but keeps its own output (e·sb·a·d, beside the o_proj input
                   copy) and an fp32 log-sum-exp 4·b·a·s for its backward (FlashAttention-2 §3.1)
      scores     = b·a·s² · (f + [1 + f if attention dropout] + [e if f ≠ e]) with eager attention, f the
                   softmax output's bytes: 4 when the softmax runs in fp32 (transformers' eager path and
                   torch.autocast both do), plus the e-byte copy the matmul with V saves.
    Check: e = 2, f = 2, a·d = h, k = a, m = 2, i = 4h, both dropouts: replicated 10sbh, sharded 24sbh,
    scores 5as²b — the paper's sbh(10 + 24/t + 5as/(ht)) of §4.2.2 with t = 1.
    Mixture of experts (`moe_layer`; transformers MixtralExperts/MixtralTopKRouter, the same shape in
    Qwen-MoE, DeepSeek, gpt-oss): each token runs k routed experts, so i becomes k·i_moe + i_shared
    (the shared experts run on every token), and each of its k copies keeps the gathered expert input
    and the down-projection output that is multiplied by its routing weight: + 2·k·e·sb·h; the router
    keeps its fp32 softmax: + 4·sb·E. The layers of an MoE model without an MoE block use its dense
    width. (Router logits, top-k values and indices are O(sb·(E + k)) and left in the softmax term.)
    Tensor parallel (Megatron, no sequence parallelism) splits heads and i by t; KV heads below t are
    replicated (k/t, at least 1).
    `norm_bytes` (default e) sizes the replicated 4h: under torch.autocast with an fp32 model, layer_norm
    runs in fp32 (autocast's fp32 op list) and RMSNorm multiplies by its fp32 weight, so the norm inputs
    (the fp32 residual stream) and outputs are 4 bytes while the Linear outputs are 16-bit.
    """
    h, i, a, d = arch.hidden_size, arch.intermediate_size, arch.num_heads, arch.head_dim
    kv = arch.num_kv_heads
    kv_per_rank = max(1, kv // tp)
    m = 4 if arch.gated_mlp else 2
    sb = s * b
    masks = 2 if hidden_dropout else 0
    n_b = e if norm_bytes is None else norm_bytes
    replicated = n_b * sb * 4 * h + sb * h * masks
    routed, moe_text = 0, ""
    if arch.moe is not None and moe_layer:
        mo = arch.moe
        k, experts = mo.experts_per_token, mo.num_experts
        i = k * mo.expert_intermediate_size + mo.shared_intermediate_size
        routed = e * sb * 2 * k * h
        replicated += 4 * sb * experts
        moe_text = (
            f" + MoE, top {k} of {experts} experts: i = top_k·i_moe + i_shared = {i}, routed copies"
            " 2·top_k·e·s·b·h, router 4·s·b·E"
        )
    elif arch.moe is not None:
        i = arch.moe.dense_intermediate_size
    # K and V per rank: k/t heads (at least one) — scale back by t since `sharded` is divided by t later.
    sharded = e * sb * (2 * a * d + 2 * kv_per_rank * tp * d + m * i) + routed
    scores = 0
    if attn == "eager":
        f = softmax_bytes
        per_element = f + ((1 + f) if attn_dropout else 0) + (e if f != e else 0)
        scores = b * a * s * s * per_element
        attn_text = (
            f"eager: b·a·s²·{per_element} (softmax {f} B"
            + (", dropout mask + output" if attn_dropout else "")
            + (f", {e} B copy for ·V" if f != e else "")
            + ")"
        )
    else:
        # Flash / memory-efficient backward re-reads its output and fp32 log-sum-exp (FlashAttention-2 §3.1,
        # torch `_scaled_dot_product_flash_attention` saves out and logsumexp); the o_proj input is a
        # separate contiguous copy (transformers: attn_output.transpose(1, 2).contiguous()).
        sharded += e * sb * a * d + 4 * b * a * s
        attn_text = "sdpa/flash: no s² tensor; saved output e·s·b·a·d + fp32 log-sum-exp 4·b·a·s"
    formula = (
        f"{n_b}·s·b·4h + {masks}·s·b·h masks (replicated) + [{e}·s·b·(2·a·d + 2·k·d + {m}·i)"
        f" + {attn_text}] / t{moe_text}; s={s}, b={b}, h={h}, i={i}, a={a}, k={kv}, d={d}, t={tp}"
    )
    return LayerActivations(replicated, sharded, scores, formula)


def simple_activation_bytes(arch: Architecture, *, b: int, s: int, e: int, layers: int) -> int:
    """The S0 article's rule: (hidden + intermediate) × context × layers × bytes, per instance."""
    return b * (arch.hidden_size + arch.intermediate_size) * s * layers * e


def logits_bytes(
    objective: str, *, b: int, s: int, vocab: int, e: int, tp: int = 1, loss_e: int = 4
) -> tuple[int, str]:
    """Logits and loss buffers at their peak (the start of backward), split by t (vocab-parallel).

    causal-lm: transformers' ForCausalLMLoss upcasts the logits to fp32 and cross_entropy keeps the fp32
    log-softmax (b·s·V·4); its backward adds the gradient w.r.t. the log-softmax and w.r.t. the logits
    (b·s·V·4 each): b·s·V·12. classifier: b × labels, negligible. logits-sum (transformers' SDPA
    training benchmark, loss = logits.sum()): the e-byte logits stay referenced, the gradient is a view.
    """
    if objective == "causal-lm" and loss_e != 4:
        # --loss-dtype 16bit: cross_entropy on the e-byte logits, no upcast (litgpt utils.py
        # chunked_cross_entropy under --precision bf16-true): log-softmax and both gradients in e bytes
        return (
            3 * loss_e * b * s * vocab // tp,
            f"16-bit log-softmax + 2 16-bit gradients: b·s·V·({loss_e} + {loss_e} + {loss_e}) / t = "
            f"{b}·{s}·{vocab}·{3 * loss_e} / {tp} (--loss-dtype 16bit)",
        )
    if objective == "causal-lm":
        return (
            12 * b * s * vocab // tp,
            f"fp32 log-softmax + 2 fp32 gradients: b·s·V·(4 + 4 + 4) / t = {b}·{s}·{vocab}·12 / {tp}",
        )
    if objective == "logits-sum":
        return e * b * s * vocab // tp, f"logits kept in {e} B: b·s·V·{e} / t"
    return 0, "classification head: b × labels, negligible"


# ---------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class TrainingRow:
    regime: str
    label: str
    weights: int
    gradients: int
    optimizer: int
    master: int
    activations: int
    logits: int
    overhead: int
    host: int  # host RAM per GPU process for offloaded states
    stage: str  # pipeline stage reported ("only", "first", "last")
    trainable: int
    terms: tuple[Term, ...] = field(default=())

    @property
    def total(self) -> int:
        return (
            self.weights
            + self.gradients
            + self.optimizer
            + self.master
            + self.activations
            + self.logits
            + self.overhead
        )

    def to_dict(self) -> dict:
        return {
            "regime": self.regime,
            "label": self.label,
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "master": self.master,
            "activations": self.activations,
            "logits": self.logits,
            "overhead": self.overhead,
            "total": self.total,
            "host_ram": self.host,
            "pipeline_stage": self.stage,
            "trainable_parameters": self.trainable,
            "terms": [t.to_dict() for t in self.terms],
        }


@dataclass(frozen=True)
class ModelShape:
    """What the training formulas read from the model: counts, dimensions, dropout."""

    arch: Architecture
    counts: CheckpointCounts
    attn_dropout: bool = False
    hidden_dropout: bool = False


def _stage_params(counts: CheckpointCounts, arch: Architecture, pp: int, stage: str) -> int:
    """Parameters held by one pipeline stage: ceil(L/p) layers' share of the blocks, the embeddings on the
    first stage, the lm_head (or the tied embedding's copy, as Megatron keeps it) on the last."""
    if pp == 1:
        return counts.parameters
    comp = counts.by_component
    embeddings = comp.get("embeddings", 0)
    head = comp.get("lm_head", 0) or (embeddings if arch.tie_word_embeddings else 0)
    blocks = _block_params(counts)
    share = blocks * math.ceil(arch.num_layers / pp) // arch.num_layers
    return share + (embeddings if stage == "first" else head)


def _block_params(counts: CheckpointCounts) -> int:
    """Parameters in the decoder blocks: everything but the embeddings and the lm_head."""
    comp = counts.by_component
    return counts.parameters - comp.get("embeddings", 0) - comp.get("lm_head", 0)


def training_row(shape: ModelShape, regime_key: str, seq_len: int, settings: TrainingSettings) -> TrainingRow:
    """Per-GPU memory for one regime: the larger of the first and last pipeline stage."""
    stages = ("only",) if settings.pp == 1 else ("first", "last")
    rows = [_stage_row(shape, regime_key, seq_len, settings, stage) for stage in stages]
    return max(rows, key=lambda r: r.total)


@dataclass(frozen=True)
class _Layout:
    """Where one GPU sits: its pipeline stage, its share of the parameters, its data-parallel sharding."""

    stage: str
    params: int  # parameters on this GPU before data-parallel sharding (stage share / t)
    stage_params: int  # parameters on this pipeline stage before tensor parallelism
    layers: int  # decoder layers on this stage
    inflight: int  # micro-batches whose activations this stage holds (1F1B: p on the first stage)
    replicas: int
    zero: int

    def shard(self, nbytes: int, from_stage: int) -> tuple[int, str]:
        """`nbytes` divided over the data-parallel replicas once ZeRO reaches `from_stage`."""
        if self.zero >= from_stage and self.replicas > 1:
            return -(-nbytes // self.replicas), f" / N={self.replicas} (ZeRO-{self.zero})"
        return nbytes, ""


def _stage_row(
    shape: ModelShape, regime_key: str, seq_len: int, st: TrainingSettings, stage: str
) -> TrainingRow:
    arch, counts, regime = shape.arch, shape.counts, REGIMES[regime_key]
    stage_params = _stage_params(counts, arch, st.pp, stage)
    at = _Layout(
        stage=stage,
        params=-(-stage_params // st.tp),
        stage_params=stage_params,
        layers=math.ceil(arch.num_layers / st.pp),
        inflight=st.pp if stage == "first" else 1,
        replicas=st.dp,
        zero=st.shard_stage,
    )
    weights, trainable, w_term = _weight_term(shape, regime, st, at)
    runtime = _runtime_terms(shape, regime, st, at)
    grad_b = 2 if regime.key == "mixed" and st.grad_dtype == "16bit" else regime.grad
    gradients, gdiv = at.shard(trainable * grad_b, 2)
    optimizer, o_text = _optimizer(shape, regime, st, at, trainable)
    master, mdiv = at.shard(trainable * regime.master, 1)
    activations, a_term = _activation_term(shape, regime, st, at, seq_len)
    logits, l_text = _logits(arch, regime, st, at, seq_len)

    host, moved = 0, ""
    if st.offload:  # DeepSpeed ZeRO-Offload / ZeRO-Infinity, FSDP CPUOffload: states live in host RAM
        host, optimizer, master = optimizer + master, 0, 0
        moved = "optimizer states + master weights"
        if st.offload == "params":
            host, weights, gradients = host + weights + gradients, 0, 0
            moved = "weights, gradients, optimizer states + master weights"
    ddp = ddp_bucket_bytes(gradients, st.dp, bucket_view=st.ddp_bucket_view, sharded=bool(st.shard_stage))
    if ddp:
        runtime.append(
            Term(
                "ddp buckets",
                ddp,
                f"DDP all-reduce buckets: a copy of the {gradients:,} B of gradients across {st.dp} replicas "
                "(gradient_as_bucket_view=False, torch's default; --ddp-bucket-view: 0)",
                DDP_SOURCE + " (in the gradients column)",
            )
        )
    nccl = nccl_bytes(st.nccl_channels, st.world)
    terms = [
        replace(w_term, bytes=weights),
        *(t for t in runtime if t.name not in GRADIENT_BUFFERS),
        Term(
            "gradients",
            gradients,
            f"{trainable:,} trainable × {grad_b} B{gdiv}",
            "ZeRO paper §3.1, §5.2 (P_os+g)",
        ),
        *(t for t in runtime if t.name in GRADIENT_BUFFERS),
        Term("optimizer", optimizer, o_text, "torch.optim / bitsandbytes / Adafactor §3; ZeRO §5.1 (P_os)"),
        Term(
            "master",
            master,
            f"{trainable:,} × {regime.master} B fp32 master{mdiv}",
            "ZeRO paper §3.1 (mixed precision keeps an fp32 copy)",
        ),
        a_term,
        Term("logits", logits, l_text, "transformers ForCausalLMLoss (fp32 upcast) + torch cross_entropy"),
        *(
            [
                Term(
                    "offloaded",
                    0,
                    f"{moved} in host RAM: {host:,} B per GPU",
                    "DeepSpeed ZeRO-Offload; FSDP CPUOffload",
                )
            ]
            if st.offload
            else []
        ),
        Term(
            "overhead",
            st.overhead_bytes,
            "CUDA context + framework reserve per GPU (--overhead)",
            "pytorch/pytorch#86509; transformers model_memory_anatomy (1343 MB)",
        ),
        *(
            [
                Term(
                    "nccl buffers",
                    nccl,
                    f"--nccl-channels {st.nccl_channels} ring channels × one receiving connection × (LL "
                    f"{LL_BUFFSIZE:,} + LL128 {LL128_BUFFSIZE:,} + Simple {SIMPLE_BUFFSIZE:,}) = {nccl:,} "
                    "(in the overhead column)",
                    NCCL_SOURCE,
                )
            ]
            if nccl
            else []
        ),
    ]
    grad_buffers = sum(t.bytes for t in runtime if t.name in GRADIENT_BUFFERS)
    gathered = sum(t.bytes for t in runtime) - grad_buffers
    return TrainingRow(
        regime.key, regime.label, weights + gathered, gradients + grad_buffers, optimizer, master, activations,
        logits, st.overhead_bytes + nccl, host, stage, trainable, tuple(terms),
    )  # fmt: skip


# runtime terms counted in the gradients column (the rest of them, gathered parameters, in the weights column)
GRADIENT_BUFFERS = ("reduce bucket", "unsharded gradient", "ddp buckets")


def _weight_term(
    shape: ModelShape, regime: Regime, st: TrainingSettings, at: _Layout
) -> tuple[int, int, Term]:
    """(weights on this GPU, trainable parameters on this GPU, term). Full fine-tuning trains every weight in
    the regime's dtype; LoRA keeps the frozen base at the compute dtype, QLoRA its Linear weights in NF4."""
    arch, counts = shape.arch, shape.counts
    where = (
        f"{at.stage_params:,} params"
        + (f" on the {at.stage} pipeline stage" if st.pp > 1 else "")
        + (f" / t={st.tp}" if st.tp > 1 else "")
    )
    if st.mode == "full":
        weights, wdiv = at.shard(at.params * regime.weight, 3)
        return (
            weights,
            at.params,
            Term("weights", weights, f"{where} × {regime.weight} B{wdiv}", _WEIGHT_SOURCE),
        )
    adapters = lora_parameters(arch, st.lora_rank, st.lora_targets, st.lora_experts)
    trainable = -(-adapters * at.layers // arch.num_layers // st.tp) + saved_parameters(counts, st) // st.tp
    if st.mode == "qlora":
        linear = counts.linear_params * at.stage_params // max(counts.parameters, 1) // st.tp
        rest_b = min(regime.weight, 2)
        base = nf4_bytes(linear) + (at.params - linear) * rest_b
        text = f"frozen {linear:,} Linear weights in NF4 (4.127 bits) + {at.params - linear:,} others × {rest_b} B"
    else:
        base = at.params * regime.weight
        text = f"frozen {where} × {regime.weight} B"
    weights, wdiv = at.shard(base + trainable * regime.weight, 3)
    saved = saved_parameters(counts, st) // st.tp
    experts = (
        f" (routed experts: --lora-experts {st.lora_experts}, PEFT ParamWrapper E·r·(in + out))"
        if arch.moe is not None and arch.moe.moe_layers
        else ""
    )
    formula = f"{text} + adapters {trainable - saved:,}{experts} × {regime.weight} B{wdiv}" + (
        f" + modules_to_save copies ({','.join(st.modules_to_save)}) {saved:,} × {regime.weight} B "
        "(PEFT ModulesToSaveWrapper keeps the frozen original and a trained copy)"
        if saved
        else ""
    )
    return weights, trainable, Term("weights", weights, formula, _WEIGHT_SOURCE)


_WEIGHT_SOURCE = "ZeRO paper §3.1, §5.3; QLoRA §3 (NF4 + double quantization)"


def _runtime_terms(shape: ModelShape, regime: Regime, st: TrainingSettings, at: _Layout) -> list[Term]:
    """What the sharding framework keeps beside the sharded states (hubmem.runtimes.sharded_training):
    DeepSpeed ZeRO's gradient buckets, ZeRO-3's persistent and still-gathered parameters, FSDP's gathered
    units and unsharded gradient. One replica without parameter offload gathers nothing."""
    if st.fsdp:
        return _fsdp_terms(shape, regime, st, at)
    if not st.zero:
        return []
    return _zero_terms(shape, regime, st, at)


def _element_bytes(n: int, regime: Regime, st: TrainingSettings) -> int:
    """Bytes of `n` gathered base parameters: NF4 (4.127 bits) under QLoRA, else the regime's weight dtype."""
    return nf4_bytes(n) if st.mode == "qlora" else n * regime.weight


def _zero_terms(shape: ModelShape, regime: Regime, st: TrainingSettings, at: _Layout) -> list[Term]:
    arch, counts, b = shape.arch, shape.counts, st.buckets
    reduce, prefetch, threshold = b.resolved(arch.hidden_size)
    preset = f"--zero-buckets {b.preset}"
    buffers = 2 if b.overlap(st.zero) and st.zero < 3 else 1
    bucket = buffers * reduce * regime.weight
    terms = [
        Term(
            "reduce bucket",
            bucket,
            f"{buffers} × reduce_bucket_size {reduce:,} elements × {regime.weight} B ({preset}"
            + (", overlap_comm double buffer" if buffers == 2 else "")
            + "; allgather_bucket_size allocates nothing: all_gather_into_tensor in place)",
            DEEPSPEED_SOURCE + ": contiguous_gradients bucket (in the gradients column)",
        )
    ]
    if st.zero != 3 or (at.replicas == 1 and st.offload != "params"):
        return terms
    # the checkpoint's own shapes, else those config.json implies (with their own total: --params may differ)
    ref = counts if counts.matrix_shapes else estimate_counts(arch)
    persistent = persistent_elements(ref.parameters, ref.matrix_shapes, threshold)
    trace = zero3_trace(shape, persistent)
    kept, fetched = zero3_live(
        trace,
        checkpointing=st.grad_checkpointing,
        max_reuse=b.max_reuse_distance,
        prefetch=prefetch,
        max_live=b.max_live_parameters,
        persistent=persistent,
    )
    gathered = _element_bytes(-(-(kept + fetched) // st.tp), regime, st)
    persist_bytes = -(-persistent // st.tp) * regime.weight
    return terms + [
        Term(
            "persistent params",
            persist_bytes,
            f"{persistent:,} elements in parameters of ≤ stage3_param_persistence_threshold {threshold:,} "
            f"(norms, biases) kept whole × {regime.weight} B" + (f" / t={st.tp}" if st.tp > 1 else ""),
            DEEPSPEED_SOURCE + ": ds_persist",
        ),
        Term(
            "gathered params",
            gathered,
            f"at the forward→backward turn: {kept:,} elements reused within stage3_max_reuse_distance "
            f"{b.max_reuse_distance:,} (the model's tail) + {fetched:,} prefetched (stage3_prefetch_bucket_size "
            f"{prefetch:,}, stage3_max_live_parameters {b.max_live_parameters:,})"
            + (", checkpointed layers recomputed in backward" if st.grad_checkpointing else "")
            + (" in NF4" if st.mode == "qlora" else f" × {regime.weight} B")
            + (f" / t={st.tp}" if st.tp > 1 else ""),
            DEEPSPEED_SOURCE
            + ": __params_to_release, fetch_sub_module prefetch (the weights column includes it)",
        ),
    ]


def zero3_trace(shape: ModelShape, persistent: int) -> Trace:
    """The modules ZeRO-3 gathers, by numel in forward order: the embeddings, each decoder layer's
    projections in call order (q, k, v, o, then gate, up, down — transformers LlamaAttention / LlamaMLP;
    one module for an MoE block's experts, or for a layer whose matrices are not those), the lm_head
    (the tied embedding's weight again when tied). The persistent elements (norms, biases) are left out:
    never released, they are their own term."""
    arch, counts = shape.arch, shape.counts
    comp = counts.by_component
    embeddings = comp.get("embeddings", 0)
    head = comp.get("lm_head", 0) or (embeddings if arch.tie_word_embeddings else 0)
    blocks = max(0, _block_params(counts) - persistent)
    n = arch.num_layers
    moe_layers = set(arch.moe.moe_layers) if arch.moe is not None else set()
    routed = counts.routed_expert_params if moe_layers else 0
    dense = max(0, blocks - routed) // n
    shapes = linear_shapes(arch)
    attention = [
        r * c for name, (r, c) in shapes.items() if name not in ("gate_proj", "up_proj", "down_proj")
    ]
    mlp = [
        r * c for name in ("gate_proj", "up_proj", "down_proj") if name in shapes for r, c in [shapes[name]]
    ]

    def layer(index: int) -> tuple[int, ...]:
        numel = dense + (routed // len(moe_layers) if index in moe_layers else 0)
        if sum(attention) + sum(mlp) == numel and index not in moe_layers:
            return (*attention, *mlp)
        if sum(attention) < numel:
            return (*attention, numel - sum(attention))
        return (numel,)

    return Trace(
        pre=(embeddings,) if embeddings else (),
        layers=tuple(layer(i) for i in range(n)),
        post=(head,) if head else (),
    )


def _fsdp_terms(shape: ModelShape, regime: Regime, st: TrainingSettings, at: _Layout) -> list[Term]:
    """FSDP wrapped per decoder layer: the largest layer unit, the root unit (everything outside the layers:
    embeddings, lm_head) and, in backward, the unit's unsharded gradient (hubmem.runtimes.sharded_training)."""
    if at.replicas == 1 and st.offload != "params":
        return []
    counts = shape.counts
    unit = -(-largest_layer(shape) // st.tp)
    grad = Term(
        "unsharded gradient",
        unit * regime.weight,
        f"the largest layer unit's gradient before its reduce-scatter: {unit:,} params × {regime.weight} B",
        FSDP_SOURCE,
    )
    if st.fsdp == "grad-op":  # SHARD_GRAD_OP: the weights column holds every unit unsharded already
        return [grad]
    root = -(-(counts.parameters - _block_params(counts)) // st.tp)
    gathered = _element_bytes(root + 2 * unit, regime, st)
    return [
        Term(
            "gathered units",
            gathered,
            f"root unit {root:,} (embeddings, lm_head: not resharded after forward) + 2 layer units × {unit:,} "
            "(current + BACKWARD_PRE prefetch), all-gathered in full"
            + (" in NF4" if st.mode == "qlora" else f" × {regime.weight} B"),
            FSDP_SOURCE + " (the weights column includes it)",
        ),
        grad,
    ]


def largest_layer(shape: ModelShape) -> int:
    """Parameters of the largest decoder layer: the blocks' share per layer, plus one layer's routed experts
    on an MoE layer (routed experts / MoE layers)."""
    arch, counts = shape.arch, shape.counts
    blocks = _block_params(counts)
    if arch.moe is None or not arch.moe.moe_layers or not counts.routed_expert_params:
        return blocks // arch.num_layers
    routed = counts.routed_expert_params
    return (blocks - routed) // arch.num_layers + routed // len(arch.moe.moe_layers)


def _optimizer(
    shape: ModelShape, regime: Regime, st: TrainingSettings, at: _Layout, trainable: int
) -> tuple[int, str]:
    """The whole model's optimizer states, then this GPU's share (as its share of trainable parameters)."""
    total = _trainable_total(shape, st)
    if st.mode == "full":
        matrices = model_matrices(shape.arch, shape.counts)
    else:
        matrices = lora_matrices(shape.arch, st.lora_rank, st.lora_targets, st.lora_experts) + [
            (shape.arch.vocab_size, shape.arch.hidden_size, 1)
            for m in st.modules_to_save
            if saved_parameters(shape.counts, replace(st, modules_to_save=(m,)))
        ]
    states, text = optimizer_state_bytes(st.optimizer, total, regime.state, matrices)
    if trainable != total:
        states = states * trainable // total
        text += f" × {trainable:,}/{total:,} on this GPU"
    states, div = at.shard(states, 1)
    return states, f"{st.optimizer}: {text}{div}"


def _activation_term(
    shape: ModelShape, regime: Regime, st: TrainingSettings, at: _Layout, seq_len: int
) -> tuple[int, Term]:
    """Activations kept for backward: micro-batches in flight on this stage × its layers."""
    arch, b, s, e, t = shape.arch, st.micro_batch, seq_len, regime.act, st.tp
    if st.activation_rule == "simple":
        total = simple_activation_bytes(arch, b=b, s=s, e=e, layers=at.layers) * at.inflight // t
        formula = f"b·(h + i)·s·L·e = {b}·({arch.hidden_size} + {arch.intermediate_size})·{s}·{at.layers}·{e}"
        return total, Term("activations", total, formula, "seed article S0 (simple activation rule)")
    softmax = 4 if e in (2, 4) else e  # fp32 softmax (transformers eager, autocast); S0's int8 keeps e

    def layer(moe_layer: bool) -> LayerActivations:
        return layer_activations(
            arch,
            b=b,
            s=s,
            e=e,
            attn=st.attn,
            attn_dropout=shape.attn_dropout,
            hidden_dropout=shape.hidden_dropout,
            softmax_bytes=softmax,
            norm_bytes=4 if _autocast(regime, st) else e,
            tp=t,
            moe_layer=moe_layer,
        )

    # per kind of layer on this stage: (layers, activations of one)
    moe_count = _stage_moe_layers(arch, at)
    kinds = [  # (layers on this stage, one layer's activations, "MoE " / "dense " / "") per kind of layer
        (n, layer(is_moe), (label + " ") if moe_count else "")
        for n, is_moe, label in ((moe_count, True, "MoE"), (at.layers - moe_count, False, "dense"))
        if n
    ]
    dropout, dropout_text = lora_dropout_bytes(
        arch, st, b=b, s=s, e=e, norm_bytes=4 if _autocast(regime, st) else e
    )
    one = max(lay.per_gpu(t) for _, lay, _ in kinds) + dropout
    counted = " + ".join(f"{n} {label}layers × {lay.per_gpu(t) + dropout:,} B" for n, lay, label in kinds)
    text = "; ".join(f"{label}layer = {lay.formula}" for _, lay, label in kinds) + dropout_text
    if st.grad_checkpointing:
        # each layer's input (the residual stream: fp32 under autocast), replicated across TP ranks (§4.3)
        kept = (4 if _autocast(regime, st) else e) * s * b * arch.hidden_size
        total = kept * at.layers * at.inflight + one
        formula = (
            f"checkpointed: layer input s·b·h = {kept:,} B × {at.layers} layers × {at.inflight} in flight"
            f" + one layer recomputed {one:,}; {text}"
        )
    else:
        total = sum(n * (lay.per_gpu(t) + dropout) for n, lay, _ in kinds) * at.inflight
        formula = f"({counted}) × {at.inflight} micro-batch(es) in flight; {text}"
    source = "Korthikanti et al. 2022 §4 (arXiv 2205.05198), generalised (hubmem.memory.training.layer_activations)"
    return total, Term("activations", total, formula, source)


def lora_dropout_bytes(
    arch: Architecture, st: TrainingSettings, *, b: int, s: int, e: int, norm_bytes: int
) -> tuple[int, str]:
    """What `lora_dropout` > 0 adds to one layer's activations, and its formula (empty when nothing).

    PEFT (peft/tuners/lora/layer.py `Linear.forward`, as in the peft > 0.13 its DeepSpeed/FSDP guides use:
    `lora_B(lora_A(dropout(x)))`, `lora_dropout` an nn.Dropout per adapted module, nn.Identity at p = 0) runs each adapted Linear's own dropout on its
    input: the dropped-out copy, which lora_A saves for its weight gradient, and the dropout's bool mask
    (torch `native_dropout`), so s·b·in·(bytes of the input + 1) per adapted dense projection. At p = 0
    lora_A saves x itself, which the frozen Linear keeps anyway. q, k, v, gate and up read a norm output
    (`norm_bytes`: fp32 under autocast), o and down a 16-bit one. Fused MoE experts (ParamWrapper) are not
    counted. `lora_fused_qkv` (litgpt lit_gpt/lora.py `LoRAQKVLinear.forward`: `F.linear(self.lora_dropout(x),
    self.lora_A)` over the fused qkv Linear): one dropout for q, k and v together, one copy of x."""
    if st.mode not in ("lora", "qlora") or not st.lora_dropout:
        return 0, ""
    shapes = linear_shapes(arch)
    names = dict.fromkeys(m for t in st.lora_targets for m in LORA_TARGET_MODULES[t] if m in shapes)
    if st.lora_fused_qkv and {"q_proj", "k_proj", "v_proj"} & names.keys():
        first = next(m for m in names if m in ("q_proj", "k_proj", "v_proj"))
        names = {m: None for m in names if m == first or m not in ("q_proj", "k_proj", "v_proj")}
    parts = [(shapes[m][1], e if m in ("o_proj", "down_proj") else norm_bytes) for m in names]
    total = sum(s * b * cols * (nbytes + 1) for cols, nbytes in parts)
    terms = " + ".join(f"{cols}·({nbytes} + 1)" for cols, nbytes in parts)
    return (
        total,
        f"; + lora_dropout {st.lora_dropout}: s·b·Σ in·(bytes + 1 mask) = {s}·{b}·({terms}) = {total:,} B",
    )


def _stage_moe_layers(arch: Architecture, at: _Layout) -> int:
    """MoE layers among this pipeline stage's: the first stage holds layers [0, n), the last [L − n, L)."""
    if arch.moe is None:
        return 0
    total, n = arch.num_layers, at.layers
    held = range(0, min(n, total)) if at.stage == "first" else range(max(0, total - n), total)
    return sum(1 for index in arch.moe.moe_layers if index in held)


def _autocast(regime: Regime, st: TrainingSettings) -> bool:
    """Mixed precision with fp32 gradients is torch.autocast over an fp32 model (the HF Trainer's fp16/bf16)."""
    return regime.key == "mixed" and st.grad_dtype == "fp32"


def _logits(
    arch: Architecture, regime: Regime, st: TrainingSettings, at: _Layout, seq_len: int
) -> tuple[int, str]:
    if at.stage == "first":
        return 0, "the loss lives on the last pipeline stage"
    if st.activation_rule == "simple":
        return 0, "included in the simple rule"
    return logits_bytes(
        st.objective,
        b=st.micro_batch,
        s=seq_len,
        vocab=arch.vocab_size,
        e=regime.act,
        tp=st.tp,
        loss_e=4 if st.loss_dtype == "fp32" else regime.act,
    )


def _trainable_total(shape: ModelShape, st: TrainingSettings) -> int:
    if st.mode == "full":
        return shape.counts.parameters
    return lora_parameters(shape.arch, st.lora_rank, st.lora_targets, st.lora_experts) + saved_parameters(
        shape.counts, st
    )


def saved_parameters(counts: CheckpointCounts, st: TrainingSettings) -> int:
    """Parameters PEFT trains in full beside the adapters (`modules_to_save`): peft utils/other.py
    ModulesToSaveWrapper deep-copies each named module (`original_module` stays frozen, the copy in
    `modules_to_save` trains), so each costs a second copy of its weights plus gradients and optimizer
    states. embed = the input embeddings, lm_head = the output head (0 when tied to the embeddings:
    then the embeddings are the module to name)."""
    names = {"embed": "embeddings", "lm_head": "lm_head"}
    return sum(counts.by_component.get(names[m], 0) for m in st.modules_to_save)


def training_rows(shape: ModelShape, seq_len: int, settings: TrainingSettings) -> list[TrainingRow]:
    validate(settings, shape.arch)
    return [training_row(shape, key, seq_len, settings) for key in settings.regimes]
