"""SGLang start-up plan: what `python -m sglang.launch_server` allocates on each GPU, how many tokens its
KV pool holds, and whether it starts. Pure: architecture, per-rank weights and options in, bytes out.

Source read: sgl-project/sglang python/sglang/srt (the v0.5 line):

- server_args.py `_handle_gpu_memory_settings`: with no --chunked-prefill-size / --cuda-graph-max-bs,
  both come from the GPU's memory (MiB) in buckets (< 20 GiB: 2048 / 8; < 35: 2048 / 24 (80 at TP ≥ 4);
  < 60: 4096 / 32 (160); < 90 and < 160: 8192 / 256 (512); else 16384 / 512); with no
  --mem-fraction-static, reserved = 512 + max(chunked, 2048) × 1.5 + cuda_graph_max_bs × 2 +
  TP × PP / 8 × 1024 MiB, at least 10 GiB on cards over 60 GiB, and
  mem_fraction_static = round((gpu_mem − reserved) / gpu_mem, 3).
- model_executor/model_runner.py `profile_max_num_token`: rest = free memory after loading the weights
  − total × (1 − mem_fraction_static), where total is the free memory measured before loading;
  max_total_num_tokens = rest // cell_size, cell_size = kv_heads_per_rank × head_dim × layers × 2 × e
  (MLA: (kv_lora_rank + qk_rope_head_dim) × layers × e). "KV Cache is allocated. #tokens: N, K size:
  X GB" (GB = 2**30 bytes there). Start-up fails ("Not enough memory. Please try to increase
  --mem-fraction-static.") when N ≤ 0.
- `init_memory_pool`: max_running_requests = min(max(N / context_len × 512, 2048), 4096) unless given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hubmem.errors import EngineRefusedError
from hubmem.memory.inference import Term
from hubmem.model.architecture import Architecture
from hubmem.runtimes import vllm as vrt
from hubmem.units import GiB, MiB

ENGINE = "sglang"
VERSION = "SGLang 0.5"
KV_DTYPES = ("auto", "fp8_e4m3", "fp8_e5m2")
DEFAULT_CUDA_CONTEXT = vrt.DEFAULT_CUDA_CONTEXT
DEFAULT_DISTRIBUTED = vrt.DEFAULT_NON_TORCH_TP  # NCCL + custom all-reduce buffers before the profile (TP > 1)


@dataclass(frozen=True)
class SglangOptions:
    """SGLang server arguments (underscores), with SGLang's defaults (None: derived as the module says)."""

    mem_fraction_static: float | None = None
    context_length: int | None = None
    chunked_prefill_size: int | None = None
    max_running_requests: int | None = None
    tp: int = 1
    kv_cache_dtype: str = "auto"
    cuda_graph_max_bs: int | None = None
    dtype: str = "auto"
    cuda_context: int = DEFAULT_CUDA_CONTEXT

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    # the renderer reads these names (vLLM's) for the layout
    @property
    def tensor_parallel_size(self) -> int:
        return self.tp

    @property
    def pipeline_parallel_size(self) -> int:
        return 1


def memory_defaults(gpu_mib: int, tp: int) -> tuple[int, int, str]:
    """(chunked_prefill_size, cuda_graph_max_bs) by GPU memory, server_args._handle_gpu_memory_settings."""
    small = tp < 4
    if gpu_mib < 20 * 1024:
        return 2048, 8, "< 20 GiB GPU"
    if gpu_mib < 35 * 1024:
        return 2048, 24 if small else 80, "< 35 GiB GPU"
    if gpu_mib < 60 * 1024:
        return 4096, 32 if small else 160, "< 60 GiB GPU"
    if gpu_mib < 160 * 1024:
        return 8192, 256 if small else 512, "60-160 GiB GPU"
    return 16384, 512, "≥ 160 GiB GPU"


def mem_fraction_default(gpu_mib: int, chunked: int, graph_bs: int, tp: int) -> tuple[float, float]:
    """(mem_fraction_static, reserved MiB): reserved = 512 + max(chunked, 2048) × 1.5 + graph_bs × 2 +
    TP / 8 × 1024, at least 10 GiB above 60 GiB; fraction = round((gpu_mem − reserved) / gpu_mem, 3)."""
    reserved = 512 + max(chunked, 2048) * 1.5 + graph_bs * 2 + tp / 8 * 1024
    if gpu_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((gpu_mib - reserved) / gpu_mib, 3), reserved


def cell_size(arch: Architecture, tp: int, e: int) -> int:
    """Bytes one token takes in the pool on one rank (K and V over every attention layer)."""
    layers = arch.attention_layers
    if arch.mla is not None:
        return (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * layers * e
    return vrt.kv_heads_per_rank(arch, tp) * arch.head_dim * layers * 2 * e


def plan(arch: Architecture, weights: int, gpu: vrt.GpuSpec, options: SglangOptions) -> vrt.ServePlan:
    o = options
    tp = o.tp
    vrt.validate_layout(arch, tp, 1)
    if arch.ssm is not None:
        raise EngineRefusedError(
            "hubmem does not model SGLang's Mamba / linear-attention state pool (use --engine vllm)"
        )
    if not arch.attention_layers:
        raise EngineRefusedError("SGLang generation needs attention layers; this model has no KV cache")
    if o.kv_cache_dtype not in KV_DTYPES:
        raise EngineRefusedError(
            f"--kv-cache-dtype {o.kv_cache_dtype!r}: SGLang takes {', '.join(KV_DTYPES)}"
        )
    cc = gpu.compute_capability
    if (
        o.dtype in ("auto", "bfloat16")
        and arch.dtype not in ("float16", "half")
        and cc is not None
        and cc < (8, 0)
    ):
        raise EngineRefusedError(
            f"bfloat16 needs compute capability 8.0+; {gpu.name} has {cc[0]}.{cc[1]} (serve with --dtype float16)"
        )
    e = 4 if o.dtype == "float32" else 2
    kv_e = e if o.kv_cache_dtype == "auto" else 1
    model_max = arch.max_context or 2048
    if o.context_length is not None and o.context_length > model_max:
        raise EngineRefusedError(
            f"--context-length {o.context_length:,} is longer than the model's {model_max:,}; SGLang refuses it "
            "unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1"
        )
    context = o.context_length or model_max
    defaults: dict[str, str] = {}
    gpu_mib = gpu.total_bytes // MiB
    chunked_default, graph_default, bucket = memory_defaults(gpu_mib, tp)
    chunked = o.chunked_prefill_size if o.chunked_prefill_size is not None else chunked_default
    graph_bs = o.cuda_graph_max_bs if o.cuda_graph_max_bs is not None else graph_default
    if o.chunked_prefill_size is None:
        defaults["chunked_prefill_size"] = f"{chunked} ({bucket})"
    if o.cuda_graph_max_bs is None:
        defaults["cuda_graph_max_bs"] = f"{graph_bs} ({bucket})"
    fraction = o.mem_fraction_static
    reserved_note = ""
    if fraction is None:
        fraction, reserved = mem_fraction_default(gpu_mib, chunked, graph_bs, tp)
        if fraction <= 0:  # SGLang would start with a fraction of nothing (or less) for the pool
            raise EngineRefusedError(
                f"SGLang reserves {reserved:,.0f} MiB beside its static pool, more than the GPU's "
                f"{gpu_mib:,} MiB (give --mem-fraction-static)"
            )
        reserved_note = f"reserved {reserved:,.0f} MiB of {gpu_mib:,} MiB"
        defaults["mem_fraction_static"] = f"{fraction} ({reserved_note})"
    if o.context_length is None:
        defaults["context_length"] = "the model's max context (config.json)"
    free_at_start = gpu.total_bytes - o.cuda_context - (DEFAULT_DISTRIBUTED if tp > 1 else 0)
    after_weights = free_at_start - weights
    rest = after_weights - int(free_at_start * (1 - fraction))
    cell = cell_size(arch, tp, kv_e)
    if cell <= 0:  # head_dim 0 (hidden_size 7 over 20 heads): the pool's token count divides by it
        raise EngineRefusedError(
            f"SGLang would keep a KV cache of 0 bytes per token for '{arch.model_type}' (head_dim "
            f"{arch.head_dim}): the config describes no cache"
        )
    tokens = max(rest // cell, 0) if rest > 0 else 0
    running = o.max_running_requests
    if running is None:
        running = min(max(int(tokens / context * 512), 2048), 4096)
        defaults["max_running_requests"] = "min(max(tokens / context × 512, 2048), 4096)"
    starts = tokens > 0
    reason = "" if starts else "Not enough memory. Please try to increase --mem-fraction-static."
    suggestions: tuple[str, ...] = ()
    if not starts:
        bigger = [t for t in vrt.valid_tp_sizes(arch) if t > tp]
        suggestions = tuple(
            x
            for x in (
                "--kv-cache-dtype fp8_e4m3" if o.kv_cache_dtype == "auto" else "",
                f"--tp {bigger[0]}" if bigger else "",
            )
            if x
        )
    concurrency = tokens / context if context else 0.0
    group = vrt.KvGroup("pool", arch.attention_layers, cell, 1, cell * context)
    stage = vrt.StagePlan(
        stage=0,
        layers=arch.num_layers,
        weights=weights,
        activation_peak=0,
        non_torch=o.cuda_context,
        cuda_graphs=0,
        requested=int(free_at_start * fraction),
        kv_budget=max(rest, 0) if starts else rest,
        kv_bytes_per_token=cell,
        state_bytes_per_sequence=0,
        groups=(group,),
        num_blocks=tokens,
    )
    resolved = replace(
        o,
        mem_fraction_static=fraction,
        context_length=context,
        chunked_prefill_size=chunked,
        max_running_requests=running,
        cuda_graph_max_bs=graph_bs,
    )
    src = "sglang python/sglang/srt/model_executor/model_runner.py profile_max_num_token (v0.5)"
    terms = (
        Term(
            "free_at_start",
            free_at_start,
            f"total_memory − CUDA context {o.cuda_context:,}"
            + (f" − NCCL / all-reduce {DEFAULT_DISTRIBUTED:,}" if tp > 1 else ""),
            "sglang get_available_gpu_memory before loading (model_runner.init_torch_distributed)",
        ),
        Term(
            "weights",
            weights,
            f"this rank's tensors at TP {tp} (as vLLM splits them; SGLang's layers are the same)",
            "hubmem.runtimes.sharding",
        ),
        Term(
            "static",
            int(free_at_start * fraction),
            f"free_at_start × mem_fraction_static {fraction}"
            + (f" ({reserved_note})" if reserved_note else ""),
            "sglang server_args._handle_gpu_memory_settings",
        ),
        Term("kv_pool", max(rest, 0), "free after weights − free_at_start × (1 − mem_fraction_static)", src),
        Term(
            "kv_tokens",
            tokens,
            f"kv_pool // cell_size {cell:,} B ("
            + (
                "(kv_lora_rank + rope) × layers × e"
                if arch.mla is not None
                else "kv_heads/TP × head_dim × layers × 2 × e"
            )
            + (
                f"); KV size {tokens * cell / GiB:.2f} GB (2**30, one MLA latent)"
                if arch.mla is not None
                else f"); K size = V size = {tokens * cell // 2 / GiB:.2f} GB (2**30)"
            ),
            src + ' ("KV Cache is allocated. #tokens")',
        ),
    )
    return vrt.ServePlan(
        engine=ENGINE,
        version=VERSION,
        gpu=gpu,
        options=resolved,  # type: ignore[arg-type]
        num_gpus=tp,
        stages=(stage,),
        num_blocks=tokens,
        kv_tokens=tokens,
        max_model_len=context,
        max_concurrency=concurrency,
        starts=starts,
        reason=reason,
        largest_max_model_len=min(tokens, model_max) if starts else 0,
        suggestions=suggestions,
        terms=terms,
        defaults=defaults,
    )
