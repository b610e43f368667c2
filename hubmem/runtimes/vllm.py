"""vLLM (V1 engine) start-up plan: what `vllm serve` allocates on each GPU, whether it starts, and how
many requests its KV pool holds. Pure: architecture, per-rank weights and options in, bytes out.

Source read: vllm-project/vllm, the v0.12 line (commits 35d5cda1 for gpu_worker.py / arg_utils.py,
001cabc1 for kv_cache_interface.py / kv_cache_utils.py). Each rule below names its file.

Start-up, per GPU (vllm/v1/worker/gpu_worker.py):
1. `init_device`: requested = total_memory × --gpu-memory-utilization; the engine refuses to start if
   the free memory (total − CUDA context) is below it.
2. `load_model`: the weights of this rank ("Loading model weights took X GiB").
3. `determine_available_memory`: one forward pass of `max_num_batched_tokens` dummy tokens
   (`profile_run`) and a sampler run for min(max_num_seqs, max_num_batched_tokens) requests;
   available KV = requested − (weights + torch peak increase + non-torch increase)
   ("Available KV cache memory: X GiB"). CUDA graphs are captured *after* the KV cache is allocated,
   from the memory left outside the requested share (vLLM ≥ 0.21 estimates them first and subtracts
   them: `cuda_graph_in_budget`).
4. `kv_cache_utils.get_kv_cache_config`: the layers' KV specs are grouped, the budget cut into blocks
   ("GPU KV cache size: N tokens", "Maximum concurrency for L tokens per request: X×"); if one request
   of max_model_len does not fit, start-up fails with the estimated maximum model length.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hubmem.errors import EngineRefusedError
from hubmem.memory.inference import Term
from hubmem.model.architecture import Architecture
from hubmem.model.variants import BIDIRECTIONAL, MLP_ONLY
from hubmem.units import GiB, MiB

ENGINE = "vllm"
VERSION = "vLLM 0.12 (V1 engine)"

# vllm/engine/arg_utils.py (EngineArgs fields and get_batch_defaults)
DEFAULT_UTILIZATION = 0.9
DEFAULT_BLOCK_SIZE = 16  # CacheConfig.block_size default on CUDA
MLA_BLOCK_SIZE = 64  # vllm/platforms/cuda.py: FlashMLA (compute capability 9.x / 10.x) forces 64
GPUS_PER_NODE = 8
KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla")
FP8_DS_MLA_TOKEN_BYTES = 656  # MLAAttentionSpec.real_page_size_bytes: block_size × 656 (fp8_ds_mla)

# Assumptions vLLM measures at start-up and hubmem cannot: each an option with this default.
# Non-torch memory that appears during loading and profiling (cuBLAS / attention workspaces;
# memory_profiling's non_torch_increase), as vLLM's own profile lines print it ("non_torch_memory takes
# X GiB"): 0.35 GiB (vllm#10517, TP 1, RTX 3090), 0.25 GiB (vllm#13061, TP 2, RTX 4090), 0.34 / 0.43 /
# 0.38 GiB (vllm#16570, TP 4, A100 40GB), 0.03 GiB (vllm#13882, TP 1, RTX 4060): median 0.345 GiB, no
# trend with TP (NCCL is set up before the baseline snapshot). 352 MiB = 0.34375 GiB.
DEFAULT_NON_TORCH = 352 * MiB
# NCCL and custom all-reduce buffers set up before the start-up check when TP > 1 (an assumption:
# no log prints them; vllm/distributed/device_communicators/custom_all_reduce.py).
DEFAULT_NON_TORCH_TP = 768 * MiB
# The CUDA context and the driver's share outside torch (not in vLLM's budget, but it must leave
# room for the requested share): pytorch/pytorch#86509 measures 0.29-0.67 GB.
DEFAULT_CUDA_CONTEXT = 512 * MiB
# The profile's sampler run (gpu_model_runner._dummy_sampler_run: min(max_num_seqs, batched tokens)
# requests with top_p 0.9 and top_k V − 1, so the top-k/top-p path runs) holds, per (request × padded
# vocabulary entry), besides the model-dtype logits of compute_logits (e bytes):
# - native (vllm/v1/sample/ops/topk_topp_sampler.py apply_top_k_top_p, the PyTorch path): the fp32 copy
#   of Sampler.forward (4), logits.sort's values (4) and int64 indices (8), and while the sort runs
#   PyTorch's CUDA segmented sort's own buffers (an int64 iota of the input indices, 8, and cub's
#   double buffers of keys and values, 4 + 8): 36 bytes + e. The masks (1 + 1) and the in-place softmax /
#   cumsum / scatter that follow stay below the sort's peak. Two gpt-oss-120b logs on one H100
#   (vllm#23278, vllm#27508; 1,024 requests × 201,088 entries) imply 37.0 and 37.6 bytes: e + 36 = 38; llm-d's
#   H100 profiles log the peak itself (fixtures/reference/vllm_logs.csv, llmd-*: within 1.3-4 %).
# - flashinfer (VLLM_USE_FLASHINFER_SAMPLER=1: flashinfer.sampling.top_k_top_p_sampling_from_logits
#   on the fp32 logits, which keeps its fp32 probabilities): 4 + 4 bytes + e.
# Which path runs: FlashInfer's only where flashinfer is installed and enabled; vllm#26859 (October 2025)
# disabled it by default, so the v0.12 line samples natively (the pip wheels of the 0.10 line shipped
# without flashinfer: the gpt-oss logs above); vllm#40376 (April 2026) enables it by default again and
# later lines also have a Triton top-k/top-p kernel that does not sort (not modelled): `--sampler flashinfer`.
SAMPLERS = ("native", "flashinfer")
SAMPLER_BYTES = {"native": 36, "flashinfer": 8}  # + e, per request × vocabulary entry


@dataclass(frozen=True)
class VllmOptions:
    """`vllm serve` options, named as vLLM names them (underscores), with vLLM's defaults."""

    gpu_memory_utilization: float = DEFAULT_UTILIZATION
    max_model_len: int | None = None  # None: the model's (config); -1: auto (the largest that fits)
    max_num_batched_tokens: int | None = None  # None: get_batch_defaults (by GPU)
    max_num_seqs: int | None = None  # None: get_batch_defaults (by GPU)
    kv_cache_dtype: str = "auto"
    block_size: int | None = None  # None: 16 (64 for MLA on Hopper / Blackwell)
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    enforce_eager: bool = False
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32
    quantization: str | None = None  # None: as the checkpoint is; fp8: online FP8 of Linear weights
    non_torch_memory: int | None = None  # bytes; None: DEFAULT_NON_TORCH
    cuda_context: int = DEFAULT_CUDA_CONTEXT
    cuda_graph_in_budget: bool = False  # vLLM >= 0.21: CUDA graph memory estimated and subtracted
    sampler: str = "native"  # the top-k/top-p path the profile's sampler run takes (SAMPLER_BYTES)
    mxfp4_backend: str = "auto"  # MXFP4 MoE experts (gpt-oss): hubmem.runtimes.mxfp4_moe.BACKENDS

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class GpuSpec:
    name: str
    key: str | None
    total_bytes: int  # torch total_memory (hubmem.fit.gpus usable_bytes)
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True)
class KvGroup:
    """One vLLM KV cache group: layers sharing a block table."""

    kind: str  # full | sliding | chunked | mla | mamba
    layers: int
    page_bytes: int  # one block of one layer
    block_size: int
    max_bytes_per_request: int  # KVCacheSpec.max_memory_usage_bytes of one layer at max_model_len

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StagePlan:
    """One pipeline stage: the plan of each of its TP ranks."""

    stage: int
    layers: int
    weights: int
    activation_peak: int
    non_torch: int
    cuda_graphs: int
    requested: int
    kv_budget: int
    kv_bytes_per_token: int  # over this rank's attention layers, below any window
    state_bytes_per_sequence: int  # Mamba / linear-attention layers
    groups: tuple[KvGroup, ...]
    num_blocks: int

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "groups"}
        d["groups"] = [g.to_dict() for g in self.groups]
        return d


@dataclass(frozen=True)
class ServePlan:
    engine: str
    version: str
    gpu: GpuSpec
    options: VllmOptions  # as resolved (defaults filled in)
    num_gpus: int
    stages: tuple[StagePlan, ...]
    num_blocks: int  # the engine's: the smallest over stages
    kv_tokens: int  # "GPU KV cache size: N tokens"
    max_model_len: int
    max_concurrency: float  # "Maximum concurrency for max_model_len tokens per request"
    starts: bool
    reason: str  # why it refuses ("" when it starts)
    largest_max_model_len: int  # the longest max_model_len that would start (0: none)
    suggestions: tuple[str, ...]
    terms: tuple[Term, ...]
    notes: tuple[str, ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)  # option -> where its value came from

    @property
    def worst(self) -> StagePlan:
        return min(self.stages, key=lambda s: s.num_blocks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "version": self.version,
            "gpu": {"name": self.gpu.name, "key": self.gpu.key, "total_bytes": self.gpu.total_bytes},
            "num_gpus": self.num_gpus,
            "options": self.options.to_dict(),
            "defaults": dict(self.defaults),
            "stages": [s.to_dict() for s in self.stages],
            "num_blocks": self.num_blocks,
            "kv_tokens": self.kv_tokens,
            "max_model_len": self.max_model_len,
            "max_concurrency": self.max_concurrency,
            "starts": self.starts,
            "reason": self.reason,
            "largest_max_model_len": self.largest_max_model_len,
            "suggestions": list(self.suggestions),
            "terms": [t.to_dict() for t in self.terms],
            "notes": list(self.notes),
        }


EngineRefusal = EngineRefusedError


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def batch_defaults(gpu: GpuSpec) -> tuple[int, int, str]:
    """(max_num_batched_tokens, max_num_seqs) for `vllm serve` (UsageContext.OPENAI_API_SERVER),
    EngineArgs.get_batch_defaults: ≥ 70 GiB and not an A100 -> 8192 / 1024, else 2048 / 256."""
    big = gpu.total_bytes >= 70 * GiB and "a100" not in gpu.name.lower()
    if big:
        return 8192, 1024, "≥ 70 GiB GPU, not A100: 8192 tokens, 1024 seqs"
    return 2048, 256, "< 70 GiB GPU or A100: 2048 tokens, 256 seqs"


def kv_heads_per_rank(arch: Architecture, tp: int) -> int:
    """ModelConfig.get_num_kv_heads: max(1, k // TP) (KV heads replicated once TP > k); MLA: 1."""
    if arch.mla is not None:
        return 1
    return max(1, arch.num_kv_heads // tp)


def validate_layout(arch: Architecture, tp: int, pp: int) -> None:
    """ModelConfig.verify_with_parallel_config: the attention heads must divide by TP; PP ≤ layers."""
    if tp < 1 or pp < 1:
        raise EngineRefusal("--tensor-parallel-size and --pipeline-parallel-size must be at least 1")
    if arch.num_heads and arch.num_heads % tp:
        raise EngineRefusal(
            f"vLLM refuses --tensor-parallel-size {tp}: total number of attention heads "
            f"({arch.num_heads}) must be divisible by tensor parallel size ({tp})"
            f"; valid sizes: {', '.join(map(str, valid_tp_sizes(arch)))}"
        )
    if pp > arch.num_layers:
        raise EngineRefusal(f"--pipeline-parallel-size {pp} exceeds the model's {arch.num_layers} layers")


def valid_tp_sizes(arch: Architecture, limit: int = GPUS_PER_NODE) -> list[int]:
    heads = arch.num_heads or 1
    return [t for t in range(1, limit + 1) if heads % t == 0]


def kv_page_per_token(arch: Architecture, tp: int, kv_bytes: int, kv_dtype: str) -> int:
    """Bytes one token adds to one attention layer's cache on one rank (kv_cache_interface.py):
    AttentionSpec 2 × heads_per_rank × head_size × e; MLAAttentionSpec head_size × e with
    head_size = kv_lora_rank + qk_rope_head_dim, num_kv_heads 1; fp8_ds_mla 656."""
    if arch.mla is not None:
        if kv_dtype == "fp8_ds_mla":
            return FP8_DS_MLA_TOKEN_BYTES
        return (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * kv_bytes
    return 2 * kv_heads_per_rank(arch, tp) * arch.head_dim * kv_bytes


def layer_kinds(arch: Architecture) -> list[str]:
    """vLLM's spec kind of each decoder layer, in order: full, sliding, chunked, mla, mamba, or none
    (encoder-only bidirectional and MLP-only layers keep nothing)."""
    kinds = []
    for t in arch.layer_types or ("full",) * arch.num_layers:
        if t == "ssm":
            kinds.append("mamba")
        elif t in (BIDIRECTIONAL, MLP_ONLY):
            kinds.append("none")
        elif t == "full" and arch.mla is not None:
            kinds.append("mla")
        else:
            kinds.append(t)
    return kinds


def _max_tokens(kind: str, arch: Architecture, max_model_len: int, batched: int) -> int:
    """Tokens one layer keeps at most for one request (KVCacheSpec.max_memory_usage_bytes):
    SlidingWindowSpec min(window − 1 + max_num_batched_tokens, max_model_len) (+1 block, below);
    ChunkedLocalAttentionSpec min(chunk + max_num_batched_tokens, max_model_len); full / MLA max_model_len."""
    if kind == "sliding":
        return min((arch.sliding_window or max_model_len) - 1 + batched, max_model_len)
    if kind == "chunked":
        return min((arch.attention_chunk or max_model_len) + batched, max_model_len)
    return max_model_len


def kv_groups(
    arch: Architecture,
    kinds: list[str],
    *,
    tp: int,
    kv_bytes: int,
    kv_dtype: str,
    state_bytes: tuple[int, int],
    block_size: int,
    max_model_len: int,
    batched: int,
) -> tuple[KvGroup, ...]:
    """vllm/v1/core/kv_cache_utils.py get_kv_cache_groups for the layers `kinds` of one stage.

    - one spec for every layer: one group of all layers;
    - several kinds (hybrid allocator): the page sizes are unified (`unify_kv_cache_spec_page_size`:
      a smaller page's block_size is multiplied up; Mamba pages are padded to the attention page, the
      attention block_size raised until its page holds the Mamba state, HybridAttentionMambaModelConfig),
      then each kind's layers are split into groups of `group_size` layers (the smallest kind's count,
      or the largest's when that is < 1.5 × the smallest), padding the last group of a kind.
    """
    counts: dict[str, int] = {}
    for k in kinds:
        if k != "none":
            counts[k] = counts.get(k, 0) + 1
    if not counts:
        return ()
    per_token = kv_page_per_token(arch, tp, kv_bytes, kv_dtype)
    mamba_page = 0
    if "mamba" in counts and arch.ssm is not None:
        conv, temporal = state_bytes
        ssm = arch.ssm
        mamba_page = (ssm.conv_elements * conv + ssm.temporal_elements * temporal) // tp
    # a page of 0 bytes (hidden_size 7 over 20 heads: head_dim 0) divides by zero in vLLM's own block
    # arithmetic; no engine allocates a cache for it
    if per_token <= 0 and any(k != "mamba" for k in counts) or "mamba" in counts and mamba_page <= 0:
        raise EngineRefusedError(
            f"vLLM would keep a KV cache of 0 bytes per token for '{arch.model_type}' (head_dim "
            f"{arch.head_dim}, {kv_heads_per_rank(arch, tp)} KV heads per rank): the config describes no cache"
        )
    attn_block = block_size
    if mamba_page and len(counts) > 1:
        # vllm/model_executor/models/config.py HybridAttentionMambaModelConfig: attention block size =
        # the smallest multiple of 16 whose page holds one Mamba state
        attn_block = max(block_size, _cdiv(_cdiv(mamba_page, per_token), 16) * 16)
    pages = {k: (mamba_page if k == "mamba" else per_token * attn_block) for k in counts}
    blocks = {k: (max_model_len if k == "mamba" and len(counts) == 1 else attn_block) for k in counts}
    if len(counts) > 1:
        top = max(pages.values())
        for k in counts:  # Mamba pages are padded; attention pages grow by their block size
            if k == "mamba":
                pages[k] = top
            elif pages[k] != top:
                ratio = top // pages[k]
                blocks[k] *= ratio
                pages[k] = top
    groups: list[KvGroup] = []
    sizes = list(counts.values())
    group_size = min(sizes) if max(sizes) >= 1.5 * min(sizes) else max(sizes)
    for k, n in counts.items():
        if k == "mamba":
            per_request = pages[k]  # MambaSpec (mamba_cache_mode none): one page per request
        else:
            tokens = _max_tokens(k, arch, max_model_len, batched)
            per_request = (_cdiv(tokens, blocks[k]) + (1 if k == "sliding" else 0)) * pages[k]
        for i in range(_cdiv(n, group_size)):
            layers = len(range(i, n, _cdiv(n, group_size)))
            groups.append(KvGroup(k, layers, pages[k], blocks[k], per_request))
    if len(counts) == 1:
        (k,) = counts
        g = groups[0]
        return (replace(g, layers=sum(x.layers for x in groups)),)
    return tuple(groups)


def num_blocks(groups: tuple[KvGroup, ...], budget: int) -> int:
    """get_num_blocks: budget // page_size // group_size (layers per group; one group: all layers)."""
    if not groups or budget <= 0:
        return 0
    group_size = max(g.layers for g in groups)
    return budget // groups[0].page_bytes // group_size


def token_capacity(groups: tuple[KvGroup, ...], blocks: int) -> int:
    """_report_kv_cache_config: num_blocks // number of groups × the smallest block size."""
    if not groups:
        return 0
    return blocks // len(groups) * min(g.block_size for g in groups)


def max_concurrency(groups: tuple[KvGroup, ...], blocks: int) -> float:
    """get_max_concurrency_for_kv_cache_config: num_blocks / cdiv(group_size × Σ_groups per-request
    bytes, page × group_size)."""
    if not groups:
        return 0.0
    group_size = max(g.layers for g in groups)
    per_request = group_size * sum(g.max_bytes_per_request for g in groups)
    per_block = groups[0].page_bytes * group_size
    return blocks / _cdiv(per_request, per_block)


def needed_bytes(groups: tuple[KvGroup, ...]) -> int:
    """check_enough_kv_cache_memory: Σ over the layers of max_memory_usage_bytes at max_model_len."""
    return sum(g.layers * g.max_bytes_per_request for g in groups)


def activation_peak(
    arch: Architecture,
    *,
    tokens: int,
    num_reqs: int,
    tp: int,
    e: int,
    vocab_padded: int,
    sampler: str = "native",
) -> tuple[int, str]:
    """The torch peak increase of `profile_run` on one rank: one layer's transient tensors at `tokens`
    batched tokens (chunked prefill), or the sampler run's logits, whichever is larger.

    - hidden states, residual and the normed input: 3·T·h (vLLM's fused_add_rms_norm keeps residual
      and output beside the layer input);
    - dense MLP: gate_up output 2·T·i/TP + SiluAndMul output T·i/TP (LlamaMLP.forward); plain MLP 2·T·i/TP;
    - MoE (fused_moe.py fused_experts_impl): intermediate_cache1 T·k·2·i_e/TP, cache2 T·k·i_e/TP,
      cache3 T·k·h, plus the shared expert's dense MLP;
    - attention: the qkv output (a/TP + 2·kv/TP)·d·T and the attention output a·d·T/TP; MLA: the
      up-projected q, k (nope + rope) and v of a/TP heads at prefill;
    - sampler (`_dummy_sampler_run`): min(max_num_seqs, T) requests × padded V × (e + SAMPLER_BYTES):
      e + 36 on the PyTorch-native top-k/top-p path (its sort), e + 8 with FlashInfer's (see SAMPLERS).
    All in the model dtype e. Checked against published V1 logs (fixtures/reference/vllm_logs.csv).
    """
    t, h = tokens, arch.hidden_size
    base = 3 * t * h * e
    m = 3 if arch.gated_mlp else 2
    mlp = m * t * arch.intermediate_size // tp * e
    detail = [f"dense mlp {m}·T·i/TP"]
    if arch.moe is not None:
        moe = arch.moe
        routed = t * moe.experts_per_token * (3 * moe.expert_intermediate_size // tp + h) * e
        shared = 3 * t * moe.shared_intermediate_size // tp * e
        if len(moe.moe_layers) == arch.num_layers:
            mlp = routed + shared
        else:
            mlp = max(mlp, routed + shared)
        detail = [
            f"moe T·k·(3·i_e/TP + h) = {t}·{moe.experts_per_token}·(3·{moe.expert_intermediate_size}/{tp} + {h})"
        ]
    heads = max(arch.num_heads // tp, 1) if arch.num_heads else 0
    if arch.mla is not None:
        attention = t * heads * (2 * arch.mla.qk_head_dim + 2 * arch.mla.v_head_dim) * e
    else:
        kv = kv_heads_per_rank(arch, tp) if arch.num_kv_heads else 0
        attention = t * (heads + 2 * kv + heads) * arch.head_dim * e
    ssm = 0
    if arch.ssm is not None:
        ssm = t * (arch.ssm.in_proj_width + arch.ssm.conv_state[-1] + arch.ssm.inner) // tp * e
    forward = base + max(mlp, attention, ssm)
    extra = SAMPLER_BYTES[sampler]
    sampled = min(num_reqs, t) * vocab_padded * (e + extra)
    text = (
        f"max(forward 3·T·h·e + max(mlp {mlp:,}, attention {attention:,}"
        + (f", ssm {ssm:,}" if ssm else "")
        + f") = {forward:,}, {sampler} sampler min(seqs, T)·V·(e + {extra}) = {sampled:,}); T = {t:,}, "
        f"{detail[0]}, e = {e}"
    )
    return max(forward, sampled), text


def cuda_graph_sizes(max_num_seqs: int) -> list[int]:
    """CompilationConfig capture sizes: [1, 2, 4] + range(8, 256, 8) + range(256, max + 1, 16) up to
    max_cudagraph_capture_size = min(2 × max_num_seqs, 512) (vllm/config/compilation.py)."""
    top = min(2 * max_num_seqs, 512)
    sizes = [1, 2, 4, *range(8, 256, 8), *range(256, top + 1, 16)]
    return [s for s in sizes if s <= top]


def plan(
    arch: Architecture,
    stage_weights: list[int],
    stage_layers: list[int],
    gpu: GpuSpec,
    options: VllmOptions,
    *,
    linear_bytes_per_rank: int = 0,
    state_bytes: tuple[int, int] = (2, 2),
    weight_terms: tuple[Term, ...] = (),
) -> ServePlan:
    """The start-up plan for weights already split per stage (hubmem.runtimes.sharding)."""
    o = options
    tp, pp = o.tensor_parallel_size, o.pipeline_parallel_size
    validate_layout(arch, tp, pp)
    defaults: dict[str, str] = {}
    notes: list[str] = []
    if o.kv_cache_dtype not in KV_DTYPES:
        raise EngineRefusal(f"--kv-cache-dtype {o.kv_cache_dtype!r}: vLLM takes {', '.join(KV_DTYPES)}")
    if o.kv_cache_dtype == "fp8_ds_mla":
        if arch.mla is None:
            raise EngineRefusal(
                "--kv-cache-dtype fp8_ds_mla needs an MLA model (DeepSeek V2/V3 kv_lora_rank)"
            )
        cc = gpu.compute_capability
        if cc is not None and cc < (9, 0):
            raise EngineRefusal(
                f"--kv-cache-dtype fp8_ds_mla needs FlashMLA (compute capability 9.0+); {gpu.name} has "
                f"{cc[0]}.{cc[1]}"
            )
    if not 0 < o.gpu_memory_utilization <= 1:
        raise EngineRefusal("--gpu-memory-utilization must be in (0, 1]")
    e = 4 if o.dtype == "float32" else 2
    if o.dtype == "bfloat16" or (o.dtype == "auto" and arch.dtype not in ("float16", "half")):
        cc = gpu.compute_capability
        if cc is not None and cc < (8, 0):
            raise EngineRefusal(
                f"Bfloat16 is only supported on GPUs with compute capability of at least 8.0; {gpu.name} has "
                f"{cc[0]}.{cc[1]} (vLLM's check; serve with --dtype float16)"
            )
    kv_bytes = 1 if o.kv_cache_dtype != "auto" else e
    batched_default, seqs_default, why = batch_defaults(gpu)
    model_max = arch.max_context or 2048
    auto_len = o.max_model_len == -1
    max_model_len = model_max if o.max_model_len in (None, -1) else o.max_model_len
    if o.max_model_len is None:
        defaults["max_model_len"] = "the model's max context (config.json)"
    if o.max_model_len not in (None, -1) and o.max_model_len > model_max:
        raise EngineRefusal(
            f"--max-model-len {o.max_model_len:,} is greater than the model's derived max_model_len "
            f"({model_max:,}); vLLM refuses it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"
        )
    seqs = o.max_num_seqs if o.max_num_seqs is not None else seqs_default
    if o.max_num_batched_tokens is not None:
        batched = o.max_num_batched_tokens
    else:
        # _set_default_max_num_seqs_and_batched_tokens_args: capped at max_num_seqs × max_model_len
        batched = min(batched_default, seqs * max_model_len)
        defaults["max_num_batched_tokens"] = f"get_batch_defaults ({why})"
    if o.max_num_seqs is None:
        seqs = min(seqs, batched)
        defaults["max_num_seqs"] = f"get_batch_defaults ({why})"
    block = o.block_size or DEFAULT_BLOCK_SIZE
    if o.block_size is None and arch.mla is not None and (gpu.compute_capability or (0, 0)) >= (9, 0):
        block = MLA_BLOCK_SIZE
        defaults["block_size"] = "64: FlashMLA on compute capability 9.x/10.x (vllm/platforms/cuda.py)"
    elif o.block_size is None:
        defaults["block_size"] = "16 (CacheConfig default on CUDA)"
    o = replace(o, max_num_batched_tokens=batched, max_num_seqs=seqs, block_size=block)

    total = gpu.total_bytes
    requested = int(total * o.gpu_memory_utilization)
    non_torch = o.non_torch_memory
    if non_torch is None:
        non_torch = DEFAULT_NON_TORCH
    kinds_all = layer_kinds(arch)
    vocab_padded = _cdiv(arch.vocab_size, 64) * 64
    stages: list[StagePlan] = []
    if o.sampler not in SAMPLERS:
        raise EngineRefusal(f"--sampler {o.sampler!r}: choose from {', '.join(SAMPLERS)}")
    peak, peak_text = activation_peak(
        arch, tokens=batched, num_reqs=seqs, tp=tp, e=e, vocab_padded=vocab_padded, sampler=o.sampler
    )
    graph_sizes = [] if o.enforce_eager else cuda_graph_sizes(seqs)
    graphs = 0
    if graph_sizes:
        graphs, _ = activation_peak(
            arch, tokens=max(graph_sizes), num_reqs=0, tp=tp, e=e, vocab_padded=vocab_padded
        )
    quant_saving = 0
    if o.quantization == "fp8":
        quant_saving = linear_bytes_per_rank * (e - 1) // e
    elif o.quantization not in (None, "none"):
        raise EngineRefusal(f"--quantization {o.quantization!r}: hubmem models none and fp8 only")

    def build(
        length: int, stage_index: int, first: int, n_layers: int, budget_only: bool = False
    ) -> StagePlan:
        kinds = kinds_all[first : first + n_layers]
        weights = stage_weights[stage_index] - (quant_saving * n_layers // max(arch.num_layers, 1))
        graph_term = graphs if o.cuda_graph_in_budget else 0
        budget = requested - weights - peak - non_torch - graph_term
        groups = kv_groups(
            arch,
            kinds,
            tp=tp,
            kv_bytes=kv_bytes,
            kv_dtype=o.kv_cache_dtype,
            state_bytes=state_bytes,
            block_size=block,
            max_model_len=length,
            batched=batched,
        )
        attn_layers = sum(1 for k in kinds if k not in ("none", "mamba"))
        state = 0
        if arch.ssm is not None:
            conv, temporal = state_bytes
            state = (
                sum(1 for k in kinds if k == "mamba")
                * (arch.ssm.conv_elements * conv + arch.ssm.temporal_elements * temporal)
                // tp
            )
        return StagePlan(
            stage=stage_index,
            layers=n_layers,
            weights=weights,
            activation_peak=peak,
            non_torch=non_torch,
            cuda_graphs=graphs,
            requested=requested,
            kv_budget=budget,
            kv_bytes_per_token=attn_layers * kv_page_per_token(arch, tp, kv_bytes, o.kv_cache_dtype),
            state_bytes_per_sequence=state,
            groups=groups,
            num_blocks=num_blocks(groups, budget),
        )

    def all_stages(length: int) -> list[StagePlan]:
        out, first = [], 0
        for s, n in enumerate(stage_layers):
            out.append(build(length, s, first, n))
            first += n
        return out

    def fits(length: int) -> bool:
        return all(needed_bytes(st.groups) <= st.kv_budget and st.kv_budget > 0 for st in all_stages(length))

    def largest_fitting() -> int:
        """kv_cache_utils.estimate_max_model_len: binary search 1 .. max_model_len."""
        lo, hi, best = 1, model_max if auto_len else max_model_len, 0
        if not fits(1):
            return 0
        while lo <= hi:
            mid = (lo + hi) // 2
            if fits(mid):
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best

    if auto_len:
        found = largest_fitting()
        max_model_len = found or 1
        defaults["max_model_len"] = "auto: the largest that fits (estimate_max_model_len)"
    stages = all_stages(max_model_len)
    o = replace(o, max_model_len=max_model_len)
    worst = min(stages, key=lambda s: s.num_blocks)
    blocks = worst.num_blocks
    tokens = token_capacity(worst.groups, blocks)
    concurrency = max_concurrency(worst.groups, blocks)

    reason = ""
    largest = 0
    free_at_start = total - o.cuda_context - (DEFAULT_NON_TORCH_TP if tp > 1 else 0)
    if free_at_start < requested:
        reason = (
            f"free memory on startup ({free_at_start / GiB:.2f}/{total / GiB:.2f} GiB) is less than desired "
            f"GPU memory utilization ({o.gpu_memory_utilization}, {requested / GiB:.2f} GiB)"
        )
    elif any(s.kv_budget <= 0 for s in stages) and any(s.groups for s in stages):
        reason = (
            "No available memory for the cache blocks (weights + profile peak + non-torch memory exceed "
            f"{o.gpu_memory_utilization} × the GPU)"
        )
    elif not fits(max_model_len):
        st = min(stages, key=lambda s: s.kv_budget - needed_bytes(s.groups))
        largest = largest_fitting()
        reason = (
            f"To serve at least one request with the model's max seq len ({max_model_len}), "
            f"({needed_bytes(st.groups) / GiB:.2f} GiB KV cache is needed, which is larger than the available "
            f"KV cache memory ({st.kv_budget / GiB:.2f} GiB)"
            + (f"; the estimated maximum model length is {largest}" if largest else "")
        )
    elif not o.cuda_graph_in_budget and graphs and total - requested - o.cuda_context < graphs:
        reason = (
            f"CUDA graphs (~{graphs / GiB:.2f} GiB) do not fit in the {(total - requested) / GiB:.2f} GiB "
            f"left outside --gpu-memory-utilization {o.gpu_memory_utilization} beside the CUDA context: "
            "capture runs out of memory"
        )
    starts = not reason
    if starts:
        largest = max_model_len  # it starts at the length asked (or found, with auto)
    suggestions = _suggestions(arch, o, starts, largest, reason, tp) if not starts else ()
    terms = _terms(arch, o, worst, tokens, concurrency, peak_text, graph_sizes, e, kv_bytes, tp, pp, total)
    terms = (*terms[:2], *weight_terms, *terms[2:])  # the parts already in "weights", after it
    return ServePlan(
        engine=ENGINE,
        version=VERSION,
        gpu=gpu,
        options=o,
        num_gpus=tp * pp,
        stages=tuple(stages),
        num_blocks=blocks,
        kv_tokens=tokens,
        max_model_len=max_model_len,
        max_concurrency=concurrency,
        starts=starts,
        reason=reason,
        largest_max_model_len=largest,
        suggestions=suggestions,
        terms=terms,
        notes=tuple(notes),
        defaults=defaults,
    )


def _suggestions(
    arch: Architecture, o: VllmOptions, starts: bool, largest: int, reason: str, tp: int
) -> tuple[str, ...]:
    out = []
    if largest:
        out.append(f"--max-model-len {largest}")
    if o.kv_cache_dtype == "auto" and arch.attention_layers:
        out.append("--kv-cache-dtype fp8")
    bigger = [t for t in valid_tp_sizes(arch) if t > tp]
    if bigger:
        out.append(f"--tensor-parallel-size {bigger[0]}")
    if "free memory on startup" in reason:
        out.append("--gpu-memory-utilization 0.9")
    return tuple(x for x in out if x)


def _terms(
    arch: Architecture,
    o: VllmOptions,
    st: StagePlan,
    tokens: int,
    concurrency: float,
    peak_text: str,
    graph_sizes: list[int],
    e: int,
    kv_bytes: int,
    tp: int,
    pp: int,
    total: int,
) -> tuple[Term, ...]:
    src_w = "vllm gpu_worker.py init_device / determine_available_memory (v0.12)"
    terms = [
        Term(
            "requested",
            st.requested,
            f"total_memory × --gpu-memory-utilization = {total:,} × {o.gpu_memory_utilization}",
            src_w,
        ),
        Term(
            "weights",
            st.weights,
            f"this rank's tensors at TP {tp}, PP {pp} (stage {st.stage}: {st.layers} layers): 1/TP of each "
            "parallel Linear, vocab padded to 64 and split, norms / routers / MLA down-projections whole, "
            "+ RoPE cos_sin_cache"
            + (" − fp8 online quantization of Linear weights" if o.quantization == "fp8" else ""),
            "hubmem.runtimes.sharding (vLLM parallel linear layers, VocabParallelEmbedding, get_pp_indices)",
        ),
        Term(
            "activation_peak",
            st.activation_peak,
            peak_text,
            "vLLM gpu_model_runner.profile_run at max_num_batched_tokens",
        ),
        Term(
            "non_torch",
            st.non_torch,
            "cuBLAS / attention workspaces appearing during load and profile (--non-torch-memory; vLLM "
            "measures it; default: the median of published profiles)",
            "vllm/utils/mem_utils.py memory_profiling non_torch_increase; vllm#10517, #13061, #16570, #13882",
        ),
        Term(
            "cuda_graphs",
            st.cuda_graphs if graph_sizes else 0,
            (
                f"{len(graph_sizes)} capture sizes up to {max(graph_sizes)}: the graph pool holds the largest "
                "size's forward transients (estimate); "
                + (
                    "subtracted from the KV budget (vLLM ≥ 0.21)"
                    if o.cuda_graph_in_budget
                    else "captured after the KV cache, outside the requested share"
                )
            )
            if graph_sizes
            else "--enforce-eager: no CUDA graphs",
            "vllm/config/compilation.py cudagraph_capture_sizes; gpu_worker.compile_or_warm_up_model",
        ),
        Term(
            "kv_budget",
            st.kv_budget,
            "requested − weights − activation_peak − non_torch"
            + (" − cuda_graphs" if o.cuda_graph_in_budget else ""),
            src_w + ' ("Available KV cache memory")',
        ),
    ]
    for g in st.groups:
        terms.append(
            Term(
                f"kv_group_{g.kind}",
                g.page_bytes,
                f"{g.layers} layers · page = {g.block_size} tokens × "
                + ("state (padded)" if g.kind == "mamba" else f"{g.page_bytes // g.block_size:,} B/token")
                + f"; one request at max_model_len {o.max_model_len:,}: {g.max_bytes_per_request:,} B per layer",
                "vllm/v1/kv_cache_interface.py (Full/SlidingWindow/ChunkedLocal/MLA/Mamba Spec); "
                "kv_cache_utils.get_kv_cache_groups",
            )
        )
    if st.groups:
        terms.append(
            Term(
                "kv_blocks",
                st.num_blocks,
                f"kv_budget // page // layers per group = {st.kv_budget:,} // {st.groups[0].page_bytes:,} // "
                f"{max(g.layers for g in st.groups)}; tokens = blocks // {len(st.groups)} groups × block = {tokens:,}; "
                f"max concurrency at {o.max_model_len:,} tokens = {concurrency:.2f}×",
                "vllm/v1/core/kv_cache_utils.py get_num_blocks, _report_kv_cache_config, "
                "get_max_concurrency_for_kv_cache_config",
            )
        )
    return tuple(terms)
