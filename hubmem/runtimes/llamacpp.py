"""llama.cpp's memory model for a GGUF file: what `llama-server` / `llama-cli` allocate on each GPU
and in host RAM, with llama.cpp's own option names and defaults. Pure integers, no I/O.

Sources (llama.cpp master as stored at commit 001d906a, 2026; the rules below have held since b4xxx):

- defaults, common/common.h `common_params`: n_ctx 0 (= the model's context_length), n_batch 2048,
  n_ubatch 512, n_parallel 1, n_gpu_layers -1 (auto: every layer, then `fit` below),
  flash_attn_type AUTO, cache_type_k/v GGML_TYPE_F16, use_mmap true, no_kv_offload false,
  kv_unified false, fit_params true (fit_params_target 1024 MiB, fit_params_min_ctx 4096).
- --fit, common/fit.cpp `common_params_fit_impl`: see `fit`.
- offload, src/llama-model.cpp `load_tensors`: the input embedding stays on the CPU ("there is very
  little benefit to offloading the input layer"); with -ngl N the last N repeating layers go to the GPUs
  (i_gpu_start = max(n_layer - N, 0)) and the output layer too when N > n_layer (`ngl_output` "extra",
  builds before 2026); 2026 builds count the output layer among the N (`ngl_output` "counted":
  i_gpu_start = max(n_layer + 1 - N, 0), src/llama-model.cpp `load_tensors`, so -ngl 30 of a 48-layer
  model holds layers 19..47 and the output); layers are spread
  over the GPUs by the cumulative -ts fractions (`std::upper_bound(splits, (il - i_gpu_start) / act_gpu_layers)`).
- KV cache, src/llama-kv-cache.cpp: per layer K = ggml_row_size(type_k, n_embd_k_gqa) × kv_size ×
  n_stream and V likewise (no V for MLA, `has_v = !is_mla`), on the layer's device unless
  --no-kv-offload; kv_size = n_ctx padded (`get_padding`: 256 with flash attention, 32 without);
  SWA layers keep GGML_PAD(min(n_ctx_seq, n_swa · n_seq + n_ubatch), 256) cells unless --swa-full
  (llama-kv-cache-iswa.cpp); a quantized V cache needs flash attention (llama-context.cpp:
  "V cache quantization requires flash_attn").
- recurrent state, src/llama-memory-recurrent.cpp: per sequence and SSM layer r (conv) + s (ssm)
  rows of n_embd_r() / n_embd_s() elements in f32 (type_r = type_s = GGML_TYPE_F32).
- compute buffer: ggml's graph allocator sizes it by placing every tensor of the worst-case prompt
  graph (llama-context.cpp `sched_reserve`), so it has no closed form. For the `llama` (dense or
  Mixtral-style MoE), `qwen2`, `qwen3` and `qwen3moe` graphs with at most one GPU, at any -ngl, hubmem
  replays the prompt and one-token graphs through ggml's scheduler (which backend runs each node, the
  weight copies of partial offload) and allocator (hubmem/runtimes/llamacpp_graph.py, ggml_sched.py,
  ggml_alloc.py): the GPU's buffer and the CPU's ("CUDA_Host compute buffer size"). Two
  version-dependent choices are options: how many output rows the reserve has (`reserve_outputs`:
  "ubatch" = every token of the ubatch, llama.cpp before 2026, llama-cli and Ollama; "parallel" =
  one per sequence, llama-server since ggml-org/llama.cpp PR #23861 "limit max outputs of
  llama_context": n_outputs_max = -np × (1 + draft tokens), tools/server/server-context.cpp
  `server_output_limits`, and llama-context.cpp `n_outputs_pp = std::min(n_tokens,
  cparams.n_outputs_max)`) and the type of the KQ-mask input under flash attention (`kq_mask`: "f32"
  = made f32 and cast to f16 in the graph, before 2026; "f16" = an f16 input, llama-graph.cpp
  `build_attn_inp_kq_mask` at 00395eb2). -ngl 0 is a CPU-only run. Elsewhere (MLA, sliding window,
  SSM, other architectures, several GPUs, --no-kv-offload) hubmem keeps Ollama's estimate (fs/ggml/ggml.go
  `GraphSize`, llama family): max(4·ub·(1 + 4·n_embd + n_kv·(1 + n_head)), 4·ub·(n_embd + n_vocab)),
  without the n_kv·n_head KQ term under flash attention, and --explain says why. Checked against
  published logs in
  fixtures/reference/llamacpp_logs.json (README "GGUF repos").
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field, replace

from hubmem.errors import InvalidInputError
from hubmem.model.gguf.arch import GGUFModel
from hubmem.runtimes import llamacpp_graph
from hubmem.units import round_up

# llama.cpp's cache types (common/arg.cpp `kv_cache_types`) -> (block size, bytes per block), the
# values of gguf.GGML_QUANT_SIZES for the GGML types of the same names
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
FLASH_ATTN = ("auto", "on", "off")
RESERVE_OUTPUTS = ("ubatch", "parallel")
NGL_OUTPUTS = ("extra", "counted")
KQ_MASKS = ("f32", "f16")
# the GGUF architectures whose graph hubmem.runtimes.llamacpp_graph replays (src/models/llama.cpp,
# qwen2.cpp, qwen3.cpp: the same tensors; biases, qk-norm and rope freq factors change none of them)
REPLAYED_GRAPHS = ("llama", "qwen2", "qwen3", "qwen3moe")
BLOCK_NAME = re.compile(r"^blk\.(\d+)\.")
# the replay is pure Python (~20 ms for a 28-layer graph): beyond this many nodes (llama.cpp's own limits,
# LLAMA_MAX_LAYERS 512 and LLAMA_MAX_EXPERTS, allow larger) a plan keeps Ollama's rule, so that --fit
# and the reverse solves, which plan dozens of times, stay quick; real models are far below it
# (Qwen3-235B-A22B: 94 layers × (40 + 2 × 8) = 5,264)
MAX_REPLAY_NODES = 50_000
DEFAULT_UBATCH = 512
DEFAULT_BATCH = 2048
FIT_TARGET = 1024 * 1024**2
FIT_CTX = 4096
# ggml-backend.c GGML_SCHED_MAX_COPIES: with pipeline parallelism the scheduler keeps this many copies
# of each graph split's inputs, so that several ubatches can be in flight over the GPUs
SCHED_COPIES = 4


def check_cache_type(name: str) -> str:
    """`name`, or an InvalidInputError when llama.cpp has no such cache type (without importing gguf, whose
    numpy import costs 0.25 s: options are checked on every audit, GGUF repos in it or not)."""
    if name not in CACHE_TYPES:
        raise InvalidInputError(f"cache type '{name}' is not one of llama.cpp's: {', '.join(CACHE_TYPES)}")
    return name


def cache_type_size(name: str) -> tuple[int, int]:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    check_cache_type(name)
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[name.upper()]]
    return int(block), int(size)


def row_size(cache_type: str, n: int) -> int:
    """ggml_row_size(type, n): bytes of n elements = n / block × type size."""
    block, size = cache_type_size(cache_type)
    if n % block:
        raise InvalidInputError(
            f"a {cache_type} cache needs rows that are a multiple of {block}, this model's are {n}"
        )
    return n // block * size


@dataclass(frozen=True)
class LlamaCppOptions:
    """llama.cpp's flags, by their long names; None = llama.cpp's default (see the module docstring)."""

    ctx_size: int | None = None  # -c: total context over all sequences; None = the model's context_length
    parallel: int = 1  # -np
    n_gpu_layers: int | None = None  # -ngl: None = all (llama.cpp's auto offloads every layer that fits)
    cache_type_k: str = "f16"  # -ctk
    cache_type_v: str = "f16"  # -ctv
    flash_attn: str = "auto"  # -fa on|off|auto (auto: on, as CUDA/Metal/Vulkan support it)
    ubatch_size: int = DEFAULT_UBATCH  # -ub
    batch_size: int = DEFAULT_BATCH  # -b
    swa_full: bool = False  # --swa-full
    no_kv_offload: bool = False  # --no-kv-offload / -nkvo
    tensor_split: tuple[float, ...] = ()  # -ts: fraction per GPU (default: equal over the GPUs)
    mmap: bool = True  # --no-mmap turns it off
    kv_unified: bool = False  # --kv-unified: one KV stream shared by all sequences
    # the compute buffer's version-dependent parts (module docstring): output rows of the reserved graph
    # ("ubatch": llama.cpp before 2026, llama-cli, Ollama; "parallel": llama-server since PR #23861) and
    # the flash-attention KQ-mask input ("f32" cast in the graph before 2026; "f16" since)
    reserve_outputs: str = "ubatch"
    kq_mask: str = "f32"
    # -ngl and the output layer: "extra" = offloaded beyond the repeating layers (-ngl > n_layer, before
    # 2026); "counted" = one of the -ngl (2026: i_gpu_start = n_layer + 1 - ngl)
    ngl_output: str = "extra"
    overhead: int = 512 * 1024**2  # CUDA context + cuBLAS workspace per GPU (not a llama.cpp buffer)
    preset: str = "llama.cpp"
    # --fit (common/common.h: fit_params true, fit_params_target 1024 MiB per device, fit_params_min_ctx
    # 4096): with a target GPU, lower -c (when not given) and -ngl (when not given) as common/fit.cpp does
    fit: bool = True
    fit_target: int = FIT_TARGET  # -fitt, bytes left free on each GPU
    fit_ctx: int = FIT_CTX  # -fitc, the smallest context --fit lowers -c to

    @property
    def flash(self) -> bool:
        return self.flash_attn != "off"

    def checked(self) -> LlamaCppOptions:
        for name in ("parallel", "ubatch_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1 << 20:
                raise InvalidInputError(
                    f"--{name.replace('_', '-')} must be a whole number from 1 to {1 << 20}, not {value!r}"
                )
        if self.ctx_size is not None and (
            isinstance(self.ctx_size, bool)
            or not isinstance(self.ctx_size, int)
            or not 0 <= self.ctx_size <= 1 << 24
        ):
            raise InvalidInputError(
                f"--ctx-size must be a whole number from 0 to {1 << 24}, not {self.ctx_size!r}"
            )
        if self.n_gpu_layers is not None and (
            isinstance(self.n_gpu_layers, bool)
            or not isinstance(self.n_gpu_layers, int)
            or self.n_gpu_layers < -1
        ):
            raise InvalidInputError(
                f"--n-gpu-layers must be a whole number (or -1 for all), not {self.n_gpu_layers!r}"
            )
        if self.flash_attn not in FLASH_ATTN:
            raise InvalidInputError(
                f"--flash-attn must be one of {', '.join(FLASH_ATTN)}, not {self.flash_attn!r}"
            )
        if self.reserve_outputs not in RESERVE_OUTPUTS:
            raise InvalidInputError(
                f"--reserve-outputs must be one of {', '.join(RESERVE_OUTPUTS)}, not {self.reserve_outputs!r}"
            )
        if self.ngl_output not in NGL_OUTPUTS:
            raise InvalidInputError(
                f"--ngl-output must be one of {', '.join(NGL_OUTPUTS)}, not {self.ngl_output!r}"
            )
        if self.kq_mask not in KQ_MASKS:
            raise InvalidInputError(f"--kq-mask must be one of {', '.join(KQ_MASKS)}, not {self.kq_mask!r}")
        check_cache_type(self.cache_type_k)
        check_cache_type(self.cache_type_v)
        if self.cache_type_v not in ("f32", "f16", "bf16") and not self.flash:
            # llama.cpp src/llama-context.cpp: "V cache quantization requires flash_attn"
            raise InvalidInputError(
                f"-ctv {self.cache_type_v}: a quantized V cache needs flash attention (-fa on)"
            )
        for name, low in (("fit_target", 0), ("fit_ctx", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1 << 50:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be a whole number, not {value!r}")
        if any(not (isinstance(f, int | float) and 0 <= f < math.inf) for f in self.tensor_split) or (
            self.tensor_split and sum(self.tensor_split) <= 0
        ):
            raise InvalidInputError("--tensor-split takes non-negative fractions, e.g. 3,1")
        return self


@dataclass(frozen=True)
class Device:
    name: str  # "CUDA0", "CPU"
    weights: int = 0
    kv: int = 0
    state: int = 0
    compute: int = 0
    overhead: int = 0
    layers: tuple[int, ...] = ()
    output: bool = False

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.state + self.compute + self.overhead


@dataclass(frozen=True)
class LlamaCppPlan:
    """Where everything goes for one model file with one set of options."""

    quant: str
    n_ctx: int  # -c as resolved (the model's context when 0)
    kv_cells: int  # cells per stream of a full-attention layer (padded)
    swa_cells: int  # cells per stream of a sliding-window layer
    n_stream: int
    n_gpu_layers: int  # as resolved: 0..n_layer+1
    gpus: tuple[Device, ...]
    host: Device  # host RAM: weights kept on the CPU (mapped or loaded), KV of CPU layers, CPU compute
    kv_bytes: int  # all layers, wherever they are
    k_bytes: int
    v_bytes: int
    state_bytes: int
    weights_bytes: int
    terms: list[tuple[str, str]] = field(
        default_factory=list
    )  # (term, formula with its inputs) for --explain

    @property
    def vram(self) -> int:
        return max((d.total for d in self.gpus), default=0)

    @property
    def vram_total(self) -> int:
        return sum(d.total for d in self.gpus)


def plan(model: GGUFModel, options: LlamaCppOptions, num_gpus: int = 1) -> LlamaCppPlan:
    o = options.checked()
    n_layer = model.architecture.num_layers
    n_ctx = o.ctx_size or model.context_length or 4096  # llama.cpp n_ctx 0: n_ctx_train
    n_pad = 256 if o.flash else 32  # llama-kv-cache.cpp get_padding
    n_ctx = round_up(n_ctx, n_pad)
    n_stream = 1 if o.kv_unified else o.parallel
    ubatch = min(o.ubatch_size, o.batch_size)  # llama-context.cpp: n_ubatch = min(n_batch, n_ubatch)
    cells = n_ctx // n_stream if n_stream > 1 else n_ctx  # n_ctx_seq per stream
    if n_stream > 1:
        cells = round_up(cells, n_pad)
    window = model.architecture.sliding_window or 0
    swa_cells = cells
    if window and not o.swa_full:
        swa_cells = min(cells, round_up(window * (o.parallel if o.kv_unified else 1) + ubatch, 256))

    ngl = n_layer + 1 if o.n_gpu_layers is None or o.n_gpu_layers < 0 else min(o.n_gpu_layers, n_layer + 1)
    if num_gpus < 1:
        raise InvalidInputError(f"--num-gpus must be at least 1, not {num_gpus}")
    if o.tensor_split and len(o.tensor_split) > num_gpus:
        raise InvalidInputError(f"--tensor-split names {len(o.tensor_split)} GPUs, --num-gpus is {num_gpus}")
    fractions = (
        list(o.tensor_split) + [0.0] * (num_gpus - len(o.tensor_split))
        if o.tensor_split
        else [1.0] * num_gpus
    )
    total = sum(fractions)
    splits, acc = [], 0.0
    for f in fractions:
        acc += f / total
        splits.append(acc)
    i_gpu_start = max(n_layer + (1 if o.ngl_output == "counted" else 0) - ngl, 0)
    act = min(ngl, n_layer + 1)

    def device_of(il: int) -> int | None:  # None: the CPU (llama-model.cpp get_layer_buft_list)
        if il < i_gpu_start or il - i_gpu_start >= act:
            return None
        return min(bisect.bisect_right(splits, (il - i_gpu_start) / act), num_gpus - 1)

    k_row = [row_size(o.cache_type_k, lk.k_width) if lk.k_width else 0 for lk in model.layer_kv]
    v_row = [row_size(o.cache_type_v, lk.v_width) if lk.v_width else 0 for lk in model.layer_kv]
    layer_cells = [swa_cells if lk.sliding else cells for lk in model.layer_kv]
    k_layer = [k_row[i] * layer_cells[i] * n_stream for i in range(n_layer)]
    v_layer = [v_row[i] * layer_cells[i] * n_stream for i in range(n_layer)]
    ssm_layers = [t == "ssm" for t in model.architecture.layer_types]
    n_ssm = sum(ssm_layers)
    state_per_layer = (model.state_f32_elements // n_ssm * 4 * o.parallel) if n_ssm else 0

    gpu_w = [0] * num_gpus
    gpu_kv = [0] * num_gpus
    gpu_state = [0] * num_gpus
    gpu_layers: list[list[int]] = [[] for _ in range(num_gpus)]
    host_w = model.embedding_bytes + model.other_bytes
    host_kv = host_state = 0
    for il in range(n_layer):
        d = device_of(il)
        kv = k_layer[il] + v_layer[il]
        st = state_per_layer if ssm_layers[il] else 0
        if d is None:
            host_w += model.layer_bytes[il]
            host_kv += kv
            host_state += st
        else:
            gpu_w[d] += model.layer_bytes[il]
            gpu_layers[d].append(il)
            if o.no_kv_offload:
                host_kv += kv
                host_state += st
            else:
                gpu_kv[d] += kv
                gpu_state[d] += st
    out_dev = device_of(n_layer)
    full = out_dev is not None and i_gpu_start == 0  # every layer and the output on the GPUs
    # a tied model has no output.weight: llama.cpp loads the output matrix as a second copy of
    # token_embd on the output layer's device (src/llama-model.cpp load_tensors: `output =
    # create_tensor(tn(LLM_TENSOR_TOKEN_EMBD, "weight"), {n_embd, n_vocab}, TENSOR_DUPLICATED)`), so a
    # full offload holds it on the GPU while the input copy stays mapped on the CPU (published logs:
    # Llama 3.2 3B Q4_K_M "CPU_Mapped model buffer size = 308.23 MiB", "CUDA0 ... = 1918.35 MiB");
    # on the CPU both copies are the same mapped file bytes
    dup = model.embedding_bytes if model.architecture.tie_word_embeddings and out_dev is not None else 0
    if out_dev is None:
        host_w += model.output_bytes
    else:
        gpu_w[out_dev] += model.output_bytes + dup

    arch = model.architecture
    h, vocab, heads = arch.hidden_size, model.vocab_size, arch.num_heads
    attn = 4 * ubatch * (1 + 4 * h + cells * (1 + (0 if o.flash else heads)))
    logits = 4 * ubatch * (h + vocab)
    compute = max(attn, logits)
    # several GPUs: each computes its own layers' part of the graph, and only the one holding the output
    # layer holds the f32 logits of a ubatch. llama.cpp turns pipeline parallelism on (src/llama-context.cpp:
    # more than one device, every layer and the output offloaded, layer split, KV offloaded, no tensor
    # overrides), and ggml's scheduler then keeps SCHED_COPIES copies of each split's inputs: the hidden
    # state entering the GPU (f32, ub × n_embd) and the KQ mask (ub × n_kv; f16 with flash attention, f32
    # without)
    used = [i for i in range(num_gpus) if gpu_layers[i] or out_dev == i]
    pipeline = len(used) > 1 and full and not o.no_kv_offload
    copies = (SCHED_COPIES - 1) * ubatch * (4 * h + (2 if o.flash else 4) * cells) if pipeline else 0
    replayed = (
        replayed_compute(model, o, n_ctx, cells, ubatch, n_stream, i_gpu_start, ngl, out_dev is not None)
        if len(used) <= 1
        else None
    )
    gpus = tuple(
        Device(
            f"GPU{i}",
            weights=gpu_w[i],
            kv=gpu_kv[i],
            state=gpu_state[i],
            compute=(
                replayed.gpu if replayed is not None else compute if out_dev == i or len(used) == 1 else attn
            )
            + copies
            if i in used
            else 0,
            overhead=o.overhead,
            layers=tuple(gpu_layers[i]),
            output=out_dev == i,
        )
        for i in range(num_gpus)
    )
    # the CPU computes the layers it keeps: its compute buffer is the same graph's (CPU backend); beside a
    # GPU that runs everything, only the inputs and the input embedding rows (replayed: the inputs too)
    host_compute = replayed.cpu if replayed is not None else compute if not full else 4 * ubatch * h
    host = Device(
        "CPU",
        weights=host_w,
        kv=host_kv,
        state=host_state,
        compute=host_compute,
        layers=tuple(il for il in range(n_layer) if device_of(il) is None),
        output=out_dev is None,
    )
    k_total, v_total = sum(k_layer), sum(v_layer)
    terms = [
        (
            "n_ctx",
            f"{o.ctx_size or 0} -> {n_ctx:,} (0 = context_length {model.context_length}; padded to {n_pad})",
        ),
        (
            "kv cells",
            f"{cells:,} per stream × {n_stream} stream(s); sliding layers {swa_cells:,}"
            + ("" if window else " (no SWA)"),
        ),
        ("K cache", f"Σ_layers row_size({o.cache_type_k}, n_embd_k_gqa) × cells × streams = {k_total:,} B"),
        (
            "V cache",
            f"Σ_layers row_size({o.cache_type_v}, n_embd_v_gqa) × cells × streams = {v_total:,} B"
            + (" (MLA: none)" if not v_total and k_total else ""),
        ),
        (
            "offload",
            f"-ngl {ngl}: layers {i_gpu_start}..{n_layer - 1} on GPU"
            + (" (the output layer counted among them)" if o.ngl_output == "counted" else "")
            + (", output layer too" if out_dev is not None else "")
            + (f" (tied: token_embd copied to the GPU as output, {dup:,} B)" if dup else "")
            + "; token_embd on CPU",
        ),
        (
            "compute",
            f"ggml-sched + ggml-alloc replay of the {model.gguf_arch}{' MoE' if arch.moe else ''} prompt and "
            f"one-token graphs (ub {ubatch}, n_kv {cells:,}, {_outputs(o, n_ctx, ubatch)} output rows, "
            f"fa {'on, ' + o.kq_mask + ' mask' if o.flash else 'off'}, "
            + (
                "CPU only"
                if ngl == 0
                else f"layers {i_gpu_start}.. on the GPU{', output too' if out_dev is not None else ''}"
                + ("" if full else "; ops with host weights offloaded, their weights copied")
            )
            + f"): GPU {replayed.gpu:,} B, CPU {replayed.cpu:,} B"
            if replayed is not None
            else f"max(4·ub·(1 + 4·h + n_kv·(1 + {'0' if o.flash else 'a'})), 4·ub·(h + V)) = max({attn:,}, {logits:,}) B (ub {ubatch}, h {h}, a {heads}, V {vocab}, fa {'on' if o.flash else 'off'}); "
            f"Ollama's rule: the replay does not reach {_not_replayed(model, len(used), o.no_kv_offload)}",
        ),
        ("overhead", f"{o.overhead:,} B per GPU (CUDA context; not a llama.cpp buffer)"),
    ]
    if len(used) > 1:
        terms.append(
            (
                "several GPUs",
                "the logits part on the output layer's GPU only, the others max of the attention part"
                + (
                    f"; pipeline parallelism: + {SCHED_COPIES - 1} copies of each GPU's split inputs "
                    f"(ub·(4·h + {'2' if o.flash else '4'}·n_kv)) = {copies:,} B each"
                    if pipeline
                    else ""
                ),
            )
        )
    return LlamaCppPlan(
        quant=model.quant, n_ctx=n_ctx, kv_cells=cells, swa_cells=swa_cells, n_stream=n_stream, n_gpu_layers=ngl,
        gpus=gpus, host=host, kv_bytes=k_total + v_total, k_bytes=k_total, v_bytes=v_total,
        state_bytes=state_per_layer * n_ssm, weights_bytes=model.tensor_bytes, terms=terms,
    )  # fmt: skip


def _outputs(o: LlamaCppOptions, n_ctx: int, ubatch: int) -> int:
    """Output rows of the reserved prompt graph (llama-context.cpp `sched_reserve`: n_outputs_pp =
    min(n_tokens, n_outputs_max); n_outputs_max = n_batch unless the caller sets it; llama-server sets
    -np × (1 + draft tokens), hubmem models no draft model)."""
    n_tokens = min(n_ctx, ubatch)
    return n_tokens if o.reserve_outputs == "ubatch" else min(n_tokens, o.parallel)


def _graph_nodes(n_layer: int, moe: object) -> int:
    """About how many nodes the reserved graph has: ~40 a layer, plus two per used expert (a view and an add)."""
    used = getattr(moe, "experts_per_token", 0) or 0
    return n_layer * (40 + 2 * used)


def _not_replayed(model: GGUFModel, gpus_used: int, no_kv_offload: bool = False) -> str:
    """Why the compute buffer is not replayed, for --explain (None of these: it is)."""
    arch, kv = model.architecture, model.layer_kv
    if model.gguf_arch not in REPLAYED_GRAPHS:
        return f"the {model.gguf_arch} graph (replayed: {', '.join(REPLAYED_GRAPHS)})"
    if no_kv_offload:
        return "--no-kv-offload (llama.cpp's graph callback pins the attention to the CPU)"
    if gpus_used > 1:
        return "several GPUs (the scheduler's pipeline copies)"
    if arch.mla is not None or arch.ssm is not None or arch.sliding_window:
        return "MLA, SSM or sliding-window attention"
    if _graph_nodes(arch.num_layers, arch.moe) > MAX_REPLAY_NODES:
        return f"a graph of more than {MAX_REPLAY_NODES:,} nodes (kept to Ollama's rule for speed)"
    if arch.moe is not None:
        return "MoE with shared experts or dense layers"
    if not kv or any(lk.sliding or lk.k_width != kv[0].k_width or lk.v_width != kv[0].v_width for lk in kv):
        return "layers of different attention widths"
    return "this model's shapes"


def replayed_compute(
    model: GGUFModel,
    o: LlamaCppOptions,
    n_ctx: int,
    cells: int,
    ubatch: int,
    n_stream: int = 1,
    i_gpu_start: int = 0,
    ngl: int | None = None,
    output_gpu: bool | None = None,
) -> llamacpp_graph.Buffers | None:
    """The compute buffers of the GPU and the CPU from a replay of the prompt and one-token graphs
    through ggml's scheduler and allocator, for the graphs of REPLAYED_GRAPHS (dense, or MoE with every
    layer routed and no shared expert) with at most one GPU; None elsewhere (Ollama's estimate).
    -ngl 0 is taken as a CPU-only run (no GPU backend)."""
    arch = model.architecture
    kv = model.layer_kv
    n_layer = arch.num_layers
    moe = arch.moe
    if (
        model.gguf_arch not in REPLAYED_GRAPHS
        # llama-context.cpp graph_get_cb: without KV offload the attention is pinned to the CPU
        # (ggml_backend_sched_set_tensor_backend), which the scheduler replay does not model
        or o.no_kv_offload
        or (moe is not None and (moe.shared_intermediate_size or len(moe.moe_layers) != n_layer))
        or arch.mla is not None
        or arch.ssm is not None
        or arch.sliding_window
        or not arch.gated_mlp
        or not kv
        or any(lk.sliding or lk.k_width != kv[0].k_width or lk.v_width != kv[0].v_width for lk in kv)
        or not arch.num_kv_heads
        or not arch.num_heads
        or _graph_nodes(n_layer, moe) > MAX_REPLAY_NODES
        or kv[0].k_width % arch.num_kv_heads
        or kv[0].v_width % arch.num_kv_heads
    ):
        return None
    ngl = n_layer + 1 if ngl is None else ngl
    output_gpu = ngl > n_layer if output_gpu is None else output_gpu
    n_seqs = o.parallel
    n_tokens = round_up(min(n_ctx, ubatch), n_seqs)  # llama-context.cpp graph_reserve: a multiple of n_seqs
    offloaded = ngl > 0
    host: list[tuple[str, int, int]] = []
    if offloaded:
        table = {name: (size, pad) for name, size, pad in model.tensor_table}
        for name, size, pad in model.tensor_table:
            m = BLOCK_NAME.match(name)
            if (m and int(m.group(1)) < i_gpu_start) or (
                not output_gpu and name.startswith(("output.", "output_norm."))
            ):
                host.append((name, size, pad))
        if not output_gpu and "output.weight" not in table and "token_embd.weight" in table:
            host.append(("output.weight", *table["token_embd.weight"]))  # tied: the output is token_embd
    names = {name for name, _, _ in model.tensor_table}
    shape = llamacpp_graph.Shape(
        n_embd=arch.hidden_size, n_ff=arch.intermediate_size, n_head=arch.num_heads, n_head_kv=arch.num_kv_heads,
        head_dim_k=kv[0].k_width // arch.num_kv_heads, head_dim_v=kv[0].v_width // arch.num_kv_heads,
        n_layer=n_layer, n_vocab=model.vocab_size, n_kv=cells, n_tokens=n_tokens,
        n_outputs=_outputs(o, n_ctx, ubatch), flash=o.flash, f16_mask=o.kq_mask == "f16", offloaded=offloaded,
        n_seqs=n_seqs, gpu_start=min(i_gpu_start, n_layer), output_gpu=output_gpu, kv_offload=not o.no_kv_offload,
        qk_norm="blk.0.attn_q_norm.weight" in names, bias="blk.0.attn_q.bias" in names,
        n_expert=moe.num_experts if moe else 0, n_expert_used=moe.experts_per_token if moe else 0,
        n_ff_exp=moe.expert_intermediate_size if moe else 0, norm_w=moe is not None,
        k_row=row_size(o.cache_type_k, kv[0].k_width) * n_stream,
        v_row=row_size(o.cache_type_v, kv[0].v_width) * n_stream, cpu_weights=tuple(host),
    )  # fmt: skip
    return llamacpp_graph.compute_buffers(shape)


def max_gpu_layers(model: GGUFModel, options: LlamaCppOptions, usable: int, num_gpus: int = 1) -> int | None:
    """The largest -ngl whose every GPU fits in `usable` bytes, or None when not even -ngl 0 does. A binary
    search (each plan replays the graph): a GPU's use grows with -ngl (each step adds a layer's weights and
    KV; the compute buffer of a partial offload is flat, the copy of the largest host-held tensor)."""

    def fits(ngl: int) -> bool:
        p = plan(model, replace(options, n_gpu_layers=ngl), num_gpus)
        return all(d.total <= usable for d in p.gpus)

    if not fits(0):
        return None
    lo, hi = 0, model.architecture.num_layers + 1  # fits(lo) holds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def max_context(model: GGUFModel, options: LlamaCppOptions, usable: int, num_gpus: int = 1) -> int | None:
    """The largest -c (a multiple of 256, up to the model's context_length × parallel) that fits fully
    offloaded (or at options' -ngl), or None when not even 256 does."""
    limit = (model.context_length or 4096) * options.parallel
    lo, hi, best = 1, max(1, limit // 256), None
    while lo <= hi:
        mid = (lo + hi) // 2
        p = plan(model, replace(options, ctx_size=mid * 256), num_gpus)
        if all(d.total <= usable for d in p.gpus):
            best, lo = mid * 256, mid + 1
        else:
            hi = mid - 1
    return best


@dataclass(frozen=True)
class Fitted:
    """What llama.cpp's --fit made of the options for one model file on one target."""

    options: LlamaCppOptions
    notes: tuple[str, ...]


def fit(model: GGUFModel, options: LlamaCppOptions, free: int, num_gpus: int = 1) -> Fitted:
    """llama.cpp's automatic fitting (common/fit.cpp `common_params_fit_impl`, run by llama-server and
    llama-cli unless `--fit off`), on GPUs of `free` bytes each, leaving `fit_target` free on each:

    1. the plan fits every GPU's target: no change;
    2. -c not given (0: the model's context): lower it between context_length × streams and --fit-ctx ×
       streams by linear interpolation of the memory used at both ends, rounded down to 256 × streams;
       one GPU that now fits: done;
    3. -ngl not given: the most layers, filled back to front, that fit each GPU's target (llama.cpp also
       moves a MoE model's expert tensors to the CPU first and fits partial layers; hubmem offloads whole
       layers only, so for MoE it is a lower bound).
    With several GPUs llama.cpp also chooses the layers per GPU (tensor split); hubmem keeps -ts."""
    o = options
    if not o.fit:
        return Fitted(o, ())
    target = free - o.fit_target

    def used(opts: LlamaCppOptions) -> tuple[int, bool]:
        p = plan(model, opts, num_gpus)
        return sum(d.total for d in p.gpus), all(d.total <= target for d in p.gpus)

    total, fits = used(o)
    if fits:
        return Fitted(o, (f"--fit: {o.fit_target // 1024**2:,} MiB stay free on each GPU, no change",))
    notes = []
    streams = 1 if o.kv_unified else o.parallel
    if not o.ctx_size:
        ctx_max = (model.context_length or 4096) * streams
        ctx_min = o.fit_ctx * streams
        if ctx_max > ctx_min:
            at_max, _ = used(replace(o, ctx_size=ctx_max))
            at_min, _ = used(replace(o, ctx_size=ctx_min))
            want = target * num_gpus
            if num_gpus > 1:  # fit.cpp: whole layers per GPU waste ~half a layer each; be conservative
                per_layer = sum(model.layer_bytes) // max(1, model.architecture.num_layers)
                want -= (num_gpus + 1) * per_layer // (6 if model.architecture.moe else 2)
            if want > at_min and at_max > at_min:
                n_ctx = ctx_min + (ctx_max - ctx_min) * (want - at_min) // (at_max - at_min)
                align = 256 * streams
                n_ctx = max(n_ctx - n_ctx % align, ctx_min)
                o = replace(o, ctx_size=n_ctx)
                notes.append(f"--fit: -c {ctx_max:,} -> {n_ctx:,}")
                if num_gpus == 1:
                    return Fitted(o, tuple(notes))
            else:
                o = replace(o, ctx_size=ctx_min)
                notes.append(f"--fit: -c {ctx_max:,} -> {ctx_min:,} (--fit-ctx), not enough alone")
    if o.n_gpu_layers is not None:
        notes.append(f"--fit: -ngl {o.n_gpu_layers} given, not changed")
        return Fitted(o, tuple(notes))
    ngl = max_gpu_layers(model, o, target, num_gpus)
    o = replace(o, n_gpu_layers=0 if ngl is None else ngl)
    notes.append(f"--fit: -ngl {o.n_gpu_layers} of {model.architecture.num_layers + 1}")
    return Fitted(o, tuple(notes))
