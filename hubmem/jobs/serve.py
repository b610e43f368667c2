"""The serve job: a snapshot -> architecture and counts -> per-rank weights -> the engine's start-up
plan (hubmem.runtimes.vllm). Pure once the snapshot is fetched; no request beyond the estimate's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubmem.bounds import at_most
from hubmem.errors import EngineRefusedError, HubmemError, InvalidInputError
from hubmem.fit.gpus import UnknownGpuError, find_gpu
from hubmem.hub.fetch import RepoSnapshot
from hubmem.jobs.options import memory_bytes
from hubmem.memory.inference import Term
from hubmem.model.architecture import Architecture
from hubmem.runtimes import marlin_int, mxfp4_moe, sharding
from hubmem.runtimes import sglang as sglang_rt
from hubmem.runtimes import vllm as vllm_rt

ENGINES = ("vllm", "sglang")
# vLLM V1 runs decoder-only generation; these it does not (vllm/model_executor/models/registry.py has
# no T5ForConditionalGeneration; BERT-style encoders are pooling models with no KV cache).
UNSUPPORTED = {
    "t5": "vLLM's V1 engine has no T5 (encoder-decoder) implementation",
    "bert": "vLLM serves BERT only as a pooling (embedding) model: no generation, no KV cache",
}
OPTION_NAMES = tuple(f for f in vllm_rt.VllmOptions.__dataclass_fields__)
SGLANG_OPTION_NAMES = tuple(f for f in sglang_rt.SglangOptions.__dataclass_fields__)


@dataclass(frozen=True)
class ServeResult:
    repo_id: str
    sha: str | None
    architecture: Architecture
    parameters: int
    plan: vllm_rt.ServePlan
    fewest: str | None  # the smallest TP×PP layout that starts, e.g. "TP 8 × PP 1" (None: none ≤ 64 GPUs)
    warnings: tuple[str, ...] = ()
    weight_files: dict[str, int | None] = field(default_factory=dict)  # what a download pulls (check)
    source: str = "hub"

    @property
    def exit_code(self) -> int:
        from hubmem.errors import WillNotFitError

        return 0 if self.plan.starts else WillNotFitError.exit_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "sha": self.sha,
            "parameters": self.parameters,
            "architecture": {
                "model_type": self.architecture.model_type,
                "attention_pattern": self.architecture.attention_pattern(),
                "num_heads": self.architecture.num_heads,
                "num_kv_heads": self.architecture.num_kv_heads,
                "num_layers": self.architecture.num_layers,
            },
            "plan": self.plan.to_dict(),
            "fewest_gpus": self.fewest,
            "warnings": list(self.warnings),
        }


def gpu_spec(gpu: str | None, gpu_memory: int | str | None) -> vllm_rt.GpuSpec:
    if gpu is not None and gpu_memory is not None:
        raise InvalidInputError("give --gpu or --gpu-memory, not both")
    if gpu_memory is not None:
        size = memory_bytes(gpu_memory, "--gpu-memory")
        if size < 1:
            raise InvalidInputError("--gpu-memory must be more than 0 bytes")
        return vllm_rt.GpuSpec("custom GPU", None, size, None)
    if gpu is None:
        raise InvalidInputError("serve needs --gpu NAME or --gpu-memory SIZE")
    try:
        found = find_gpu(gpu)
    except UnknownGpuError as e:
        raise InvalidInputError(str(e)) from e
    return vllm_rt.GpuSpec(found.name, found.key, found.usable_bytes, found.compute_capability)


def engine_options(num_gpus: int | None, given: dict[str, Any], engine: str = "vllm") -> Any:
    """Plain values (the CLI's, the API's) -> VllmOptions or SglangOptions; bad values and options of the
    other engine are InvalidInputError (exit 3)."""
    if engine == "sglang":
        return sglang_options(num_gpus, given)
    unknown = sorted(set(given) - set(OPTION_NAMES))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise InvalidInputError(f"--engine vllm does not take {flags}")
    values = dict(given)
    for name in (
        "max_num_batched_tokens",
        "max_num_seqs",
        "block_size",
        "tensor_parallel_size",
        "pipeline_parallel_size",
    ):
        v = values.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InvalidInputError(
                f"--{name.replace('_', '-')} must be a whole number of at least 1, not {v!r}"
            )
        if v is not None:
            at_most(v, name)
    mml = values.get("max_model_len")
    if isinstance(mml, str):
        if mml.strip().lower() in ("auto", "-1"):
            values["max_model_len"] = -1
        else:
            try:
                values["max_model_len"] = int(mml.replace("_", "").replace(",", ""))
            except ValueError:
                raise InvalidInputError(
                    f"--max-model-len takes a number of tokens or auto, not {mml!r}"
                ) from None
    mml = values.get("max_model_len")
    if mml is not None and (isinstance(mml, bool) or not isinstance(mml, int) or (mml < 1 and mml != -1)):
        raise InvalidInputError(f"--max-model-len takes a number of tokens or auto, not {mml!r}")
    if mml is not None:
        at_most(mml, "max_model_len")
    util = values.get("gpu_memory_utilization")
    if util is not None:
        if isinstance(util, bool) or not isinstance(util, int | float) or not 0 < util <= 1:
            raise InvalidInputError(f"--gpu-memory-utilization must be in (0, 1], not {util!r}")
        values["gpu_memory_utilization"] = float(util)
    for name in ("non_torch_memory", "cuda_context"):
        if values.get(name) is not None:
            values[name] = memory_bytes(values[name], "--" + name.replace("_", "-"))
    kv = values.get("kv_cache_dtype")
    if kv is not None and kv not in vllm_rt.KV_DTYPES:
        raise InvalidInputError(f"--kv-cache-dtype {kv!r}: choose from {', '.join(vllm_rt.KV_DTYPES)}")
    sampler = values.get("sampler")
    if sampler is not None and sampler not in vllm_rt.SAMPLERS:
        raise InvalidInputError(f"--sampler {sampler!r}: choose from {', '.join(vllm_rt.SAMPLERS)}")
    backend = values.get("mxfp4_backend")
    if backend is not None and backend not in mxfp4_moe.BACKENDS:
        raise InvalidInputError(f"--mxfp4-backend {backend!r}: choose from {', '.join(mxfp4_moe.BACKENDS)}")
    dtype = values.get("dtype")
    aliases = {
        "bf16": "bfloat16",
        "half": "float16",
        "fp16": "float16",
        "float": "float32",
        "fp32": "float32",
    }
    if dtype is not None:
        dtype = aliases.get(dtype, dtype)
        if dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise InvalidInputError(f"--dtype {dtype!r}: choose from auto, bfloat16, float16, float32")
        values["dtype"] = dtype
    tp = values.get("tensor_parallel_size")
    pp = values.get("pipeline_parallel_size")
    if num_gpus is not None:
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
            raise InvalidInputError(f"--num-gpus takes a whole number of at least 1, not {num_gpus!r}")
        at_most(num_gpus, "num_gpus")
        if tp is None and pp is None:
            # one node holds 8 GPUs: TP inside it, PP across nodes beyond that
            tp = min(num_gpus, vllm_rt.GPUS_PER_NODE)
            pp = num_gpus // tp
            if tp * pp != num_gpus:
                raise InvalidInputError(
                    f"--num-gpus {num_gpus}: more than {vllm_rt.GPUS_PER_NODE} GPUs must be whole nodes "
                    f"(a multiple of {vllm_rt.GPUS_PER_NODE}); or give --tensor-parallel-size and "
                    "--pipeline-parallel-size"
                )
        elif (tp or 1) * (pp or 1) != num_gpus:
            raise InvalidInputError(
                f"--num-gpus {num_gpus} is not --tensor-parallel-size {tp or 1} × --pipeline-parallel-size {pp or 1}"
            )
        values["tensor_parallel_size"], values["pipeline_parallel_size"] = tp, pp
    return vllm_rt.VllmOptions(**{k: v for k, v in values.items() if v is not None})


def sglang_options(num_gpus: int | None, given: dict[str, Any]) -> sglang_rt.SglangOptions:
    unknown = sorted(set(given) - set(SGLANG_OPTION_NAMES))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise InvalidInputError(f"--engine sglang does not take {flags}")
    values = dict(given)
    for name in ("context_length", "chunked_prefill_size", "max_running_requests", "tp", "cuda_graph_max_bs"):
        v = values.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise InvalidInputError(
                f"--{name.replace('_', '-')} must be a whole number of at least 1, not {v!r}"
            )
        if v is not None:
            at_most(v, name)
    for name in ("swa_full_tokens_ratio", "mamba_full_memory_ratio"):
        r = values.get(name)
        if r is not None:
            if (
                isinstance(r, bool)
                or not isinstance(r, int | float)
                or not 0 < r <= (1 if "swa" in name else 100)
            ):
                raise InvalidInputError(
                    f"--{name.replace('_', '-')} must be in (0, {1 if 'swa' in name else 100}], not {r!r}"
                )
            values[name] = float(r)
    m = values.get("max_mamba_cache_size")
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
        raise InvalidInputError(f"--max-mamba-cache-size must be a whole number of at least 1, not {m!r}")
    if m is not None:
        at_most(m, "max_mamba_cache_size")
    ssm = values.get("mamba_ssm_dtype")
    if ssm is not None and ssm not in sglang_rt.MAMBA_SSM_DTYPES:
        raise InvalidInputError(
            f"--mamba-ssm-dtype {ssm!r}: SGLang takes {', '.join(sglang_rt.MAMBA_SSM_DTYPES)}"
        )
    f = values.get("mem_fraction_static")
    if f is not None:
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f < 1:
            raise InvalidInputError(f"--mem-fraction-static must be in (0, 1), not {f!r}")
        values["mem_fraction_static"] = float(f)
    if values.get("cuda_context") is not None:
        values["cuda_context"] = memory_bytes(values["cuda_context"], "--cuda-context")
    kv = values.get("kv_cache_dtype")
    if kv is not None and kv not in sglang_rt.KV_DTYPES:
        raise InvalidInputError(f"--kv-cache-dtype {kv!r}: SGLang takes {', '.join(sglang_rt.KV_DTYPES)}")
    if num_gpus is not None:
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, int) or num_gpus < 1:
            raise InvalidInputError(f"--num-gpus takes a whole number of at least 1, not {num_gpus!r}")
        at_most(num_gpus, "num_gpus")
        if values.get("tp") not in (None, num_gpus):
            raise InvalidInputError(f"--num-gpus {num_gpus} is not --tp {values['tp']}")
        values["tp"] = num_gpus
    return sglang_rt.SglangOptions(**{k: v for k, v in values.items() if v is not None})


def serve_snapshot(
    snapshot: RepoSnapshot,
    engine: str,
    gpu: vllm_rt.GpuSpec,
    options: vllm_rt.VllmOptions,
) -> ServeResult:
    if engine not in ENGINES:
        raise InvalidInputError(f"--engine {engine!r}: choose from {', '.join(ENGINES)}")
    from hubmem.jobs.estimate import _model_facts

    facts, warnings = _model_facts(snapshot, None, None)
    arch, counts = facts.architecture, facts.counts
    why = UNSUPPORTED.get(arch.model_type)
    if why or arch.encoder is not None and arch.model_type != "whisper":
        raise EngineRefusedError(
            f"vLLM does not serve '{snapshot.repo_id}' ({arch.model_type}): {why or 'encoder-decoder'}"
        )
    plan = plan_for(snapshot, arch, counts.linear_params, gpu, options)
    fewest = None
    if (
        engine == "vllm"
        and options.tensor_parallel_size == 1
        and options.pipeline_parallel_size == 1
        and not plan.starts
    ):
        fewest = fewest_layout(snapshot, arch, counts.linear_params, gpu, options)
    if fewest and not plan.starts:
        from dataclasses import replace

        flags = fewest.split(": ", 1)[1]
        kept = tuple(x for x in plan.suggestions if not x.startswith("--tensor-parallel-size"))
        plan = replace(plan, suggestions=(*kept, flags))
    return ServeResult(
        repo_id=snapshot.repo_id,
        sha=snapshot.sha,
        architecture=arch,
        parameters=counts.parameters,
        plan=plan,
        fewest=fewest,
        warnings=tuple(warnings),
        weight_files=dict(facts.weight_files),
        source=facts.source,
    )


def plan_for(
    snapshot: RepoSnapshot,
    arch: Architecture,
    linear_params: int,
    gpu: vllm_rt.GpuSpec,
    options: Any,
) -> vllm_rt.ServePlan:
    if isinstance(options, sglang_rt.SglangOptions):
        return sglang_plan_for(snapshot, arch, gpu, options)
    tp, pp = options.tensor_parallel_size, options.pipeline_parallel_size
    vllm_rt.validate_layout(arch, tp, pp)
    e = 4 if options.dtype == "float32" else 2
    if snapshot.headers:
        ranks = sharding.rank_weights(snapshot.headers, snapshot.config, arch, tp=tp, pp=pp, float_bytes=e)
    else:
        raise EngineRefusedError(
            f"serve needs the safetensors headers of '{snapshot.repo_id}' (per-rank weights are read from them)"
        )
    rope = sharding.rotary_cache_bytes(arch, snapshot.config, e)
    weights = [r.bytes + rope for r in ranks]
    layers = [r.layers for r in ranks]
    extra, terms = mxfp4_experts(snapshot, arch, gpu, options, e)
    weights = [w + x for w, x in zip(weights, extra, strict=True)]
    extra, marlin_terms = marlin_repack(snapshot, arch, gpu, tp, pp, e)
    weights = [w + x for w, x in zip(weights, extra, strict=True)]
    terms = (*terms, *marlin_terms)
    state = (e, e)
    return vllm_rt.plan(
        arch,
        weights,
        layers,
        gpu,
        options,
        linear_bytes_per_rank=linear_params * e // tp,
        state_bytes=state,
        weight_terms=terms,
    )


def marlin_repack(
    snapshot: RepoSnapshot, arch: Architecture, gpu: vllm_rt.GpuSpec, tp: int, pp: int, e: int
) -> tuple[list[int], tuple[Term, ...]]:
    """Per stage: what vLLM's gptq_marlin / awq_marlin allocate beyond the stored GPTQ / AWQ tensors
    (hubmem.runtimes.marlin_int), and its term."""
    plan = marlin_int.marlin_method(snapshot.config, gpu.compute_capability)
    if plan is None:
        return [0] * pp, ()
    total, parts = marlin_int.stage_deltas(
        snapshot.headers, snapshot.config, arch, plan, tp=tp, pp=pp, float_bytes=e
    )
    worst = max(range(pp), key=lambda s: abs(total[s]))
    said = {
        "qzeros": "qzeros dropped (sym: no zero points)",
        "g_idx": "g_idx sorted + g_idx_sort_indices" if plan.desc_act else "g_idx dropped (no act order)",
        "scales": "row-parallel scales whole on every rank",
    }
    detail = "; ".join(f"{said[k]} {v[worst]:+,} B" for k, v in parts.items()) or "the same bytes as stored"
    term = Term(
        "marlin_repack",
        total[worst],
        f"in weights: {plan.method} (group {plan.group_size}, desc_act {plan.desc_act}): qweight repacked and "
        f"scales permuted at the same bytes; {detail}",
        "vllm quantization/gptq_marlin.py, awq_marlin.py, kernels/mixed_precision/marlin.py "
        "MarlinLinearKernel.process_weights_after_loading (commit 04aa528e)",
    )
    return total, (term,)


def mxfp4_experts(
    snapshot: RepoSnapshot, arch: Architecture, gpu: vllm_rt.GpuSpec, options: vllm_rt.VllmOptions, e: int
) -> tuple[list[int], tuple[Term, ...]]:
    """Per stage: what vLLM's MXFP4 MoE backend allocates for the experts beyond the checkpoint's bytes
    that sharding counted (padding, scale copies, wider biases: hubmem.runtimes.mxfp4_moe), and its term."""
    tp, pp = options.tensor_parallel_size, options.pipeline_parallel_size
    stages = sharding.pp_layers(arch.num_layers, pp)
    if not mxfp4_moe.is_mxfp4_moe(snapshot.config):
        return [0] * pp, ()
    cc = gpu.compute_capability
    if cc is not None and cc < mxfp4_moe.MIN_CAPABILITY:
        raise EngineRefusedError(
            f"The quantization method mxfp4 is not supported for {gpu.name}: minimum capability 80, current "
            f"capability {cc[0]}{cc[1]} (vLLM Mxfp4Config.get_min_capability)"
        )
    backend, why = options.mxfp4_backend, "--mxfp4-backend"
    if backend == "auto":
        backend, why = mxfp4_moe.choose_backend(cc)
    experts, hidden, intermediate = mxfp4_moe.experts_of(snapshot.config)
    one = mxfp4_moe.layer_bytes(experts, hidden, intermediate, tp, backend, e)
    only = {
        f: {n: v for n, v in tensors.items() if mxfp4_moe.EXPERT_TENSOR_RE.search(n)}
        for f, tensors in snapshot.headers.items()
    }
    counted = sharding.rank_weights(only, snapshot.config, arch, tp=tp, pp=pp, float_bytes=e)
    extra = [n * one.bytes - c.bytes for n, c in zip(stages, counted, strict=True)]
    worst = max(range(pp), key=lambda s: stages[s] * one.bytes)
    term = Term(
        "mxfp4_moe",
        stages[worst] * one.bytes,
        f"in weights: {stages[worst]} layers × ({experts} experts: w13 [{2 * one.intermediate}, {one.hidden}] + "
        f"w2 [{one.hidden}, {one.intermediate}] at 4 bits = {one.weights:,} B, E8M0 scales {one.scales:,} B, "
        f"biases {one.biases:,} B) with {backend} ({why}): I/TP padded to {one.intermediate}, hidden to "
        f"{one.hidden}; the checkpoint's expert tensors on this rank were {counted[worst].bytes:,} B",
        "vllm quantization/mxfp4.py Mxfp4MoEMethod.create_weights / process_weights_after_loading, "
        "utils/marlin_utils_fp4.py prepare_moe_fp4_layer_for_marlin (commit 007d5005)",
    )
    return extra, (term,)


def sglang_plan_for(
    snapshot: RepoSnapshot, arch: Architecture, gpu: vllm_rt.GpuSpec, options: sglang_rt.SglangOptions
) -> vllm_rt.ServePlan:
    vllm_rt.validate_layout(arch, options.tp, 1)
    e = 4 if options.dtype == "float32" else 2
    if not snapshot.headers:
        raise EngineRefusedError(
            f"serve needs the safetensors headers of '{snapshot.repo_id}' (per-rank weights are read from them)"
        )
    (rank,) = sharding.rank_weights(
        snapshot.headers, snapshot.config, arch, tp=options.tp, pp=1, float_bytes=e
    )
    weights = rank.bytes + sharding.rotary_cache_bytes(arch, snapshot.config, e)
    architectures = tuple(str(a) for a in snapshot.config.get("architectures") or ())
    return sglang_rt.plan(arch, weights, gpu, options, architectures=architectures)


def fewest_layout(
    snapshot: RepoSnapshot,
    arch: Architecture,
    linear_params: int,
    gpu: vllm_rt.GpuSpec,
    options: vllm_rt.VllmOptions,
) -> str | None:
    """The fewest GPUs that start: TP sizes dividing the heads up to 8 per node, then PP across nodes."""
    from dataclasses import replace

    layouts = [(t, 1) for t in vllm_rt.valid_tp_sizes(arch)]
    top = max(t for t, _ in layouts)
    layouts += [(top, p) for p in range(2, 9) if p <= arch.num_layers]
    for t, p in sorted(layouts, key=lambda x: (x[0] * x[1], x[1])):
        try:
            trial = plan_for(
                snapshot,
                arch,
                linear_params,
                gpu,
                replace(options, tensor_parallel_size=t, pipeline_parallel_size=p),
            )
        except EngineRefusedError:
            continue
        if trial.starts:
            return f"{t * p}× {gpu.name}: --tensor-parallel-size {t}" + (
                f" --pipeline-parallel-size {p}" if p > 1 else ""
            )
    return None


def normalise_engine(engine: str) -> str:
    e = str(engine).lower()
    if e not in ENGINES:
        raise InvalidInputError(f"--engine {engine!r}: choose from {', '.join(ENGINES)}")
    return e


# `hubmem audit --engine`: one row per repo with the engine's verdict (json / csv keep these columns).
SERVE_COLUMNS = (
    "repo", "sha", "params", "engine", "gpu", "num_gpus", "tp", "pp", "max_model_len", "weights", "kv_budget",
    "kv_tokens", "max_concurrency", "starts", "reason", "fewest_gpus", "status", "exit_code", "error",
)  # fmt: skip


def serve_values(ref: str, result: ServeResult) -> dict[str, Any]:
    p = result.plan
    out: dict[str, Any] = dict.fromkeys(SERVE_COLUMNS)
    st = p.worst
    out.update(
        repo=ref,
        sha=result.sha,
        params=result.parameters,
        engine=p.engine,
        gpu=p.gpu.name,
        num_gpus=p.num_gpus,
        tp=p.options.tensor_parallel_size,
        pp=p.options.pipeline_parallel_size,
        max_model_len=p.max_model_len,
        weights=st.weights,
        kv_budget=st.kv_budget,
        kv_tokens=p.kv_tokens,
        max_concurrency=round(p.max_concurrency, 2),
        starts=p.starts,
        reason=p.reason or None,
        fewest_gpus=result.fewest,
        status="ok",
        exit_code=0,  # as every audit row that was judged: `starts` says whether it would start
    )
    return out


def serve_error_values(ref: str, error: Exception) -> dict[str, Any]:
    from hubmem.errors import HubmemError, InternalError

    err = error if isinstance(error, HubmemError) else InternalError.of(error)
    out: dict[str, Any] = dict.fromkeys(SERVE_COLUMNS)
    out.update(repo=ref, status="error", exit_code=err.exit_code, error=str(err))
    return out


@dataclass(frozen=True)
class ServeCheck:
    """`hubmem check --engine`: will the engine start on the GPUs (exit 40 if not), then is there disk (41)."""

    serve: ServeResult
    disk: Any  # hubmem.hub.disk.DiskPlan
    outcome: type[HubmemError] | None

    OUTCOMES = {
        "WillNotFitError": "the engine will not start on the GPUs",
        "NotEnoughDiskError": "it starts, but not enough disk for the download",
    }

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome is None else self.outcome.exit_code

    @property
    def outcome_text(self) -> str:
        return "ready to pull" if self.outcome is None else self.OUTCOMES[self.outcome.__name__]

    @property
    def estimate(self) -> ServeResult:  # the CLI prints `result.estimate.warnings`
        return self.serve

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.serve.repo_id,
            "sha": self.serve.sha,
            "ready": self.outcome is None,
            "outcome": self.outcome_text,
            "exit_code": self.exit_code,
            "serve": self.serve.to_dict(),
            "disk": self.disk.to_dict(),
        }


def serve_check(result: ServeResult, cache_dir: str | None) -> ServeCheck:
    """The engine's verdict first (as `check` judges the fit first), then the download against free disk."""
    import os

    from hubmem.errors import NotEnoughDiskError, WillNotFitError
    from hubmem.hub import disk

    where = disk.cache_dir(cache_dir)
    if os.path.exists(where) and not os.path.isdir(where):
        raise InvalidInputError(f"--cache-dir '{where}' is not a folder")
    files = disk.files_to_download(dict(result.weight_files)) if result.source != "local" else {}
    plan = disk.plan_download(result.repo_id, result.sha, files, where)
    outcome = WillNotFitError if not result.plan.starts else NotEnoughDiskError if not plan.enough else None
    return ServeCheck(result, plan, outcome)
