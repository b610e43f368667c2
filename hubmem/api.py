"""The Python API: what `hubmem` on the command line calls, with the same plain values.

    import hubmem
    est = hubmem.estimate("Qwen/Qwen2.5-7B-Instruct", seq_len=8192, overhead="2GiB", gpu="4090")
    est.row("bf16").total, est.verdict("bf16").fits, est.to_dict()

Options are the CLI's long options with underscores (`--seq-len` -> `seq_len`, `--precision` ->
`precisions`, `--regime` -> `regimes`, `--activations` -> `activation_rule`); memory sizes take
"24GiB" / "80GB" strings or byte counts, `params` "7B" or a number. An option that does not apply to
the job, or a bad value, raises `hubmem.errors.InvalidInputError` (exit code 3 on the CLI); Hub and
model problems raise the other `HubmemError` subclasses (README, "Exit codes").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hubmem.bounds import at_most
from hubmem.errors import InvalidInputError
from hubmem.fit.verdicts import Target, target
from hubmem.hub.fetch import DEFAULT_TIMEOUT, RepoSnapshot
from hubmem.jobs.options import memory_bytes

# Each job's modules are imported by the call that needs them: one model's estimate imports its
# pipeline while its requests are in flight (jobs.snapshot), not before the first one leaves.
if TYPE_CHECKING:
    from hubmem.jobs.audit import AuditRow
    from hubmem.jobs.results import CheckResult, InferenceEstimate, TrainingEstimate


def gpu_target(
    gpu: str | None = None, gpu_memory: int | str | None = None, num_gpus: int = 1, train: str | None = None
) -> Target | None:
    """The GPUs a verdict is asked about: a catalogue name (`gpu="4090"`) or a size (`gpu_memory="24GiB"`),
    `num_gpus` of them (with `train`, the training option `gpus` counts them instead)."""
    if train is not None and num_gpus != 1:
        raise InvalidInputError("with --train, --gpus N sets the number of GPUs (tp × pp × replicas)")
    size = None if gpu_memory is None else memory_bytes(gpu_memory, "--gpu-memory")
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, int):
        raise InvalidInputError(f"--num-gpus takes a whole number, not {num_gpus!r}")
    return target(gpu, size, num_gpus)


def _fetch(
    repo: str,
    revision: str | None,
    token: str | None,
    timeout: float,
    beside: bool,
    prefer_gguf: bool = False,
    meanwhile: Callable[[], object] | None = None,
) -> RepoSnapshot:
    from hubmem.hub.fetch import clean_token
    from hubmem.jobs.snapshot import fetch_snapshot

    if not (isinstance(timeout, int | float) and 0 < timeout < float("inf")):
        raise InvalidInputError(f"--timeout must be a positive number of seconds, not {timeout!r}")
    at_most(timeout, "timeout")
    token = clean_token(token)  # before a helper forks: it inherits the secret to redact
    repo, revision = split_revision(repo, revision)
    return fetch_snapshot(
        repo,
        revision=revision,
        token=token,
        timeout=timeout,
        beside=beside,
        prefer_gguf=prefer_gguf,
        meanwhile=meanwhile,
    )


def split_revision(repo: str, revision: str | None) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); an explicit revision wins over the suffix."""
    import os

    if "@" in repo and not os.path.exists(repo):
        repo, _, suffix = repo.partition("@")
        if revision is None:
            revision = suffix or None
    return repo, revision


def estimate(
    repo: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    train: str | None = None,
    gpu: str | None = None,
    num_gpus: int = 1,
    gpu_memory: int | str | None = None,
    _beside: bool = False,
    **options: Any,
) -> InferenceEstimate | TrainingEstimate:
    """Inference memory per precision for a Hub repo id (`org/name`, `org/name@rev`) or a local folder;
    with `train="full"|"lora"|"qlora"` the per-GPU training memory per regime (as `train()`).

    Inference options: seq_len, batch, precisions, kv_dtype, state_dtype, encoder_len, image_tokens,
    attn, overhead, all_logits, serving_factor, params. With `gpu`/`gpu_memory` (and `num_gpus`) the
    result carries a verdict per row (`est.verdict("bf16")`).

    A GGUF repo (llama.cpp / Ollama; `REPO:Q4_K_M` picks one file) returns a `GGUFEstimate`, one row
    per quant file, under llama.cpp's options: ctx_size, parallel, n_gpu_layers, cache_type_k,
    cache_type_v, flash_attn, ubatch_size, batch_size, swa_full, no_kv_offload, tensor_split,
    kv_unified, reserve_outputs, kq_mask, ngl_output, mmap, overhead, quant, runtime ("llama.cpp" or "ollama")."""
    from hubmem.jobs.options import job_options

    repo, gguf_given = _gguf_split(repo, options)
    if gguf_given or _is_gguf_path(repo):
        return _gguf(
            repo, revision, token, timeout, _beside, gguf_given, options, gpu, gpu_memory, num_gpus, train
        )
    job = job_options(train, options)
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)
    snapshot = _fetch(repo, revision, token, timeout, _beside, meanwhile=_estimate_pipeline)
    if snapshot.weights_format == "gguf" and snapshot.gguf:
        return _gguf_of(snapshot, {}, options, tgt, train)
    from hubmem.jobs.estimate import estimate_snapshot

    return estimate_snapshot(snapshot, job, target=tgt)


def _estimate_pipeline() -> None:
    """Import the estimate's pipeline (model, memory, fit) and read the config table: ~60 ms of CPU that
    runs while the requests are in flight (jobs.snapshot.fetch_snapshot's `meanwhile`)."""
    from hubmem.jobs import estimate  # noqa: F401
    from hubmem.model.config_table import usable_table

    usable_table()


def _gguf_split(repo: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(repo, the GGUF options popped from `options`); `REPO:QUANT` is `--quant QUANT`."""
    given = _pop_gguf_options(options)
    if ":" in repo and not _is_gguf_path(repo):
        import os

        if not os.path.exists(repo):
            repo, _, quant = repo.rpartition(":")
            if quant:
                given.setdefault("quant", quant)
    return repo, given


def _pop_gguf_options(options: dict[str, Any]) -> dict[str, Any]:
    """The llama.cpp options of `options`, popped. None given, nothing imported (jobs.gguf and the
    llama.cpp model: ~10-15 ms before the first request)."""
    if not options:
        return {}
    from hubmem.jobs.gguf import GGUF_KEYS

    return {k: options.pop(k) for k in list(options) if k in GGUF_KEYS}


def _is_gguf_path(repo: str) -> bool:
    import os

    return repo.lower().endswith(".gguf") and os.path.isfile(repo)


def _gguf(
    repo, revision, token, timeout, beside, gguf_given, options, gpu, gpu_memory, num_gpus, train
) -> Any:
    from hubmem.jobs.gguf import gguf_options

    gguf_options(gguf_given)  # bad values fail before anything is fetched
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)
    snapshot = _fetch(repo, revision, token, timeout, beside, prefer_gguf=True)
    if snapshot.weights_format != "gguf" or not snapshot.gguf:
        names = ", ".join(sorted(gguf_given)) or "a GGUF path"
        raise InvalidInputError(f"{names}: '{repo}' has no GGUF files (these options are llama.cpp's)")
    return _gguf_of(snapshot, gguf_given, options, tgt, train)


def _gguf_of(
    snapshot: RepoSnapshot, gguf_given: dict[str, Any], options: dict[str, Any], tgt: Any, train: Any
) -> Any:
    from hubmem.jobs.gguf import gguf_estimate, gguf_options

    opts, quant = gguf_options(_gguf_given(gguf_given, options, train))
    return gguf_estimate(snapshot, opts, quant, tgt)


def _gguf_given(gguf_given: dict[str, Any], options: dict[str, Any], train: Any) -> dict[str, Any]:
    """The GGUF options, with --overhead and --seq-len (as -c) taken over; any other option is an error."""
    if train is not None:
        raise InvalidInputError("--train: a GGUF repo is estimated for llama.cpp inference only")
    options = dict(options)
    if "overhead" in options:
        gguf_given = {**gguf_given, "overhead": options.pop("overhead")}
    if "seq_len" in options:  # --seq-len means llama.cpp's -c here
        gguf_given = {"ctx_size": options.pop("seq_len"), **gguf_given}
    if options:
        raise InvalidInputError(
            f"{', '.join('--' + k.replace('_', '-') for k in sorted(options))}: not an option for a GGUF repo "
            "(llama.cpp's: -c, -np, -ngl, -ctk, -ctv, -fa, -ub, -b, --swa-full, -nkvo, -ts, --quant, --runtime)"
        )
    return gguf_given


def train(repo: str, mode: str = "full", **options: Any) -> TrainingEstimate:
    """Per-GPU training memory per precision regime: `mode` full, lora or qlora. Options: regimes,
    optimizer, micro_batch, grad_checkpointing, lora_rank, lora_targets, grad_dtype, objective,
    activation_rule, gpus, zero, fsdp, tp, pp, offload, loss_dtype, modules_to_save, lora_experts, lora_dropout,
    lora_fused_qkv, DeepSpeed's zero_buckets, reduce_bucket_size, prefetch_bucket_size, param_persistence_threshold, max_live_parameters,
    max_reuse_distance, overlap_comm, and seq_len, attn, overhead, params;
    `gpu` / `gpu_memory`: a verdict per regime on `gpus` of them."""
    from hubmem.jobs.results import TrainingEstimate

    result = estimate(repo, train=mode, **options)
    assert isinstance(result, TrainingEstimate)
    return result


def _engine_args(
    options: dict[str, Any], num_gpus: int, precision: str, train: str | None
) -> tuple[str, dict, int | None]:
    """check / audit with `engine=`: the engine's name, its options, and the GPU count it is given."""
    from hubmem.jobs import serve as serve_job

    if train is not None or precision != "auto":
        raise InvalidInputError("--engine judges the engine's own start-up: drop --train and --precision")
    opts = dict(options)
    name = serve_job.normalise_engine(opts.pop("engine"))
    layout = ("tensor_parallel_size", "pipeline_parallel_size", "tp")
    count = None if num_gpus == 1 and any(k in opts for k in layout) else num_gpus
    return name, opts, count


def _serve_check(
    repo: str, options: dict[str, Any], gpu: str | None, gpu_memory: int | str | None, num_gpus: int,
    precision: str, cache_dir: str | None, revision: str | None, token: str | None, timeout: float,
    train: str | None, beside: bool,
) -> Any:  # fmt: skip
    from hubmem.jobs import serve as serve_job

    name, opts, count = _engine_args(options, num_gpus, precision, train)
    spec = serve_job.gpu_spec(gpu, gpu_memory)
    engine_opts = serve_job.engine_options(count, opts, name)
    result = serve_job.serve_snapshot(_fetch(repo, revision, token, timeout, beside), name, spec, engine_opts)
    return serve_job.serve_check(result, cache_dir)


def check(
    repo: str,
    *,
    gpu: str | None = None,
    gpu_memory: int | str | None = None,
    num_gpus: int = 1,
    precision: str = "auto",
    cache_dir: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    train: str | None = None,
    _beside: bool = False,
    **options: Any,
) -> CheckResult:
    """Before pulling `repo`: will it fit on the GPUs (`gpu` or `gpu_memory`, required), and is there
    disk where the Hugging Face cache (or `cache_dir`) lives? `result.exit_code`: 0 ready, 40 will not
    fit, 41 not enough disk. `precision` "auto" judges what `from_pretrained` loads; with `train`, one
    regime (default mixed)."""
    from hubmem.jobs.check import check_snapshot, judged_options

    if options.get("engine") is not None:  # the engine's start-up verdict instead of the generic total
        return _serve_check(
            repo,
            options,
            gpu,
            gpu_memory,
            num_gpus,
            precision,
            cache_dir,
            revision,
            token,
            timeout,
            train,
            _beside,
        )
    repo, gguf_given = _gguf_split(repo, options)
    if gguf_given or _is_gguf_path(repo):
        from hubmem.jobs.gguf import gguf_options

        gguf_options(gguf_given)  # bad values fail before anything is fetched
    else:
        job, chosen = judged_options(train, options, precision, "check")
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)
    if tgt is None:
        raise InvalidInputError("check needs --gpu NAME or --gpu-memory SIZE")
    snapshot = _fetch(repo, revision, token, timeout, _beside, prefer_gguf=bool(gguf_given))
    if snapshot.weights_format == "gguf" and snapshot.gguf:
        from hubmem.jobs.gguf import gguf_check, gguf_options

        if precision != "auto":
            raise InvalidInputError("--precision: a GGUF repo is judged per quant file (--quant)")
        opts, quant = gguf_options(_gguf_given(gguf_given, options, train))
        return gguf_check(snapshot, opts, quant, tgt, cache_dir)  # type: ignore[return-value]
    if gguf_given:
        raise InvalidInputError(
            f"{', '.join(sorted(gguf_given))}: '{repo}' has no GGUF files (these options are llama.cpp's)"
        )
    return check_snapshot(snapshot, job, tgt, chosen, cache_dir)


def audit(ids: Iterable[str], *, db: str | None = None, **options: Any) -> Iterator[AuditRow]:
    """One row per repo id (`org/name[@rev]` or a local folder; a GGUF repo: one per quant file, each
    named `REPO:QUANT`, unless --quant picks one), in input order, fetched `jobs` (default 16, at most
    256) at a time. A repo that fails is a row with `.error` (and `.ok` False); the others
    go on. Options as `check` (precision, gpu, gpu_memory, num_gpus, token, timeout, train, ...) and the
    listing sources of `audit_plan` (author, search, filters, list_sort, limit, collection); bad options
    raise before anything is fetched.

    `db`: a results database file (hubmem.store.db): each row is stored as it finishes, and a repo
    whose commit has not changed since its stored row under the same settings is not fetched (its row
    comes back with `.reused` True)."""
    from hubmem.jobs.audit import ordered_rows

    plan = audit_plan(ids, **options)
    if db is None:
        return ordered_rows(plan.refs, plan.fetch, plan.evaluate, jobs=plan.jobs)
    return stored_audit(plan, db).iterate()


def stored_audit(plan: AuditPlan, db: str) -> Any:
    """The plan's audit against a results database (hubmem.jobs.stored.StoredAudit)."""
    from hubmem.jobs.stored import StoredAudit
    from hubmem.store.db import ResultsDB

    return StoredAudit(plan, ResultsDB(db), plan.probe)


@dataclass(frozen=True)
class AuditPlan:
    refs: list[str]
    fetch: Callable[[str], RepoSnapshot]
    evaluate: Callable[[str, Any], AuditRow]
    jobs: int
    target: Target | None
    listed: dict[str, Any] = field(default_factory=dict)  # ref -> hubmem.hub.listing.Listed (its sha)
    settings: dict[str, Any] = field(default_factory=dict)  # what the figures depend on (hubmem.store)
    probe: Callable[[str], str | None] = lambda ref: None  # ref -> its current commit (hubmem.store)
    # refs -> their commits into `listed`, where one listing says many (hubmem.hub.listing)
    list_commits: Callable[[list[str]], None] = lambda refs: None
    engine: str | None = None  # --engine: rows carry the engine's verdict (hubmem.jobs.serve.SERVE_COLUMNS)


def _serve_audit_plan(
    refs: list[str], jobs: int, options: dict[str, Any], gpu: str | None, gpu_memory: int | str | None,
    num_gpus: int, precision: str, token: str | None, timeout: float, train: str | None,
) -> AuditPlan:  # fmt: skip
    from hubmem import errors
    from hubmem.hub import fetch as hub
    from hubmem.jobs import serve as serve_job
    from hubmem.jobs.audit import AuditRow

    name, opts, count = _engine_args(options, num_gpus, precision, train)
    spec = serve_job.gpu_spec(gpu, gpu_memory)
    engine_opts = serve_job.engine_options(count, opts, name)

    def fetch(ref: str) -> RepoSnapshot:
        repo, revision = split_revision(ref, None)
        return hub.fetch(repo, revision=revision, token=token, timeout=timeout)

    def evaluate(ref: str, fetched: Any) -> AuditRow:
        if isinstance(fetched, errors.HubmemError):
            return AuditRow(ref, error=fetched, values=serve_job.serve_error_values(ref, fetched))
        try:
            result = serve_job.serve_snapshot(fetched, name, spec, engine_opts)
        except Exception as e:  # a refusal (or a bug) on one repo must not sink the batch
            err = e if isinstance(e, errors.HubmemError) else errors.InternalError.of(e)
            return AuditRow(ref, error=err, values=serve_job.serve_error_values(ref, err))
        return AuditRow(ref, values=serve_job.serve_values(ref, result))

    return AuditPlan(refs, fetch, evaluate, jobs, None, engine=name)


def audit_plan(
    ids: Iterable[str],
    *,
    jobs: int | None = None,
    precision: str = "auto",
    gpu: str | None = None,
    gpu_memory: int | str | None = None,
    num_gpus: int = 1,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    train: str | None = None,
    author: str | None = None,
    collection: str | None = None,
    search: str | None = None,
    filters: Iterable[str] = (),
    list_sort: str | None = None,
    limit: int | None = None,
    max_rps: float | None = None,
    **options: Any,
) -> AuditPlan:
    """The refs, the fetch and the evaluation of an audit, validated before anything is fetched (the CLI
    runs them with a progress bar, `audit()` as an iterator).

    Listing sources (hubmem.hub.listing) add their repos after `ids`, each repo once: `author`, `search`,
    `filters` (tags, all of them), `list_sort` (downloads, likes, trending, lastModified) and `limit`
    make one `list_models` query; `collection` a collection's models. `max_rps`: at most that many Hub
    calls a second over all workers (hubmem.hub.pace; a 429 pauses them all whatever it is)."""
    from hubmem.hub import fetch as hub
    from hubmem.hub.listing import ListingQuery, commits_by_author, current_commit, list_repos
    from hubmem.jobs.audit import DEFAULT_JOBS, MAX_JOBS, audit_row, fetch_listed, settings_of
    from hubmem.jobs.check import judged_options

    jobs = DEFAULT_JOBS if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise InvalidInputError(f"--jobs must be a whole number from 1 to {MAX_JOBS}, not {jobs!r}")
    from hubmem.hub import pace

    if max_rps is not None and (
        isinstance(max_rps, bool) or not isinstance(max_rps, int | float) or not 0 < max_rps <= pace.MAX_RPS
    ):
        raise InvalidInputError(
            f"--max-rps must be a number above 0 and at most {pace.MAX_RPS:,.0f}, not {max_rps!r}"
        )
    pace.configure(max_rps)  # before the helpers fork: they share the pace
    token = hub.clean_token(token)  # before the helpers fork: they inherit the secret to redact
    refs = [ids] if isinstance(ids, str) else list(ids)
    tags = (filters,) if isinstance(filters, str) else tuple(filters)
    query = ListingQuery(author, search, tags, list_sort, limit, collection).check()
    if not refs and query.empty:
        raise InvalidInputError("no repo ids given (arguments, -f FILE, or - for stdin)")
    if options.get("engine") is not None:
        return _serve_audit_plan(
            refs, jobs, options, gpu, gpu_memory, num_gpus, precision, token, timeout, train
        )
    gguf_given = _pop_gguf_options(options)

    @functools.cache
    def llama_options() -> Any:  # llama.cpp's options, for the GGUF repos of the list
        from hubmem.jobs.gguf import gguf_options

        return gguf_options(gguf_given)

    if gguf_given:
        llama_options()  # bad values fail before anything is fetched
    job, chosen = judged_options(train, options, precision, "an audit row")
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)
    listed: dict[str, Any] = {}
    if not query.empty:
        given_refs = set(refs)
        for item in list_repos(query, token, timeout):
            if item.repo_id not in given_refs:
                refs.append(item.repo_id)
                listed[item.repo_id] = item
        if not refs:
            raise InvalidInputError(f"the listing {query.describe()} matched no models")

    def fetch(ref: str) -> RepoSnapshot:
        repo, revision = split_revision(ref, None)
        repo, quant = _gguf_split(repo, {})
        known = listed.get(ref)
        return fetch_listed(
            repo,
            revision,
            known.sha if known else None,
            token=token,
            timeout=timeout,
            prefer_gguf=bool(gguf_given or quant),
        )

    def evaluate(ref: str, fetched: Any) -> AuditRow:
        if isinstance(fetched, RepoSnapshot) and fetched.weights_format == "gguf" and fetched.gguf:
            from hubmem.jobs.gguf import gguf_audit_row

            opts, default_quant = llama_options()
            quant = _gguf_split(split_revision(ref, None)[0], {})[1].get("quant") or default_quant
            return gguf_audit_row(ref, fetched, opts, quant, tgt)
        return audit_row(ref, fetched, job, chosen, tgt)

    def probe(ref: str) -> str | None:
        known = listed.get(ref)
        if known is not None and known.sha:
            return known.sha
        repo, revision = split_revision(ref, None)
        return current_commit(repo, revision, token=token, timeout=timeout)

    def list_commits(stored: list[str]) -> None:
        unlisted = [ref for ref in stored if ref not in listed]
        listed.update(commits_by_author(unlisted, token=token, timeout=timeout))

    return AuditPlan(
        refs, fetch, evaluate, jobs, tgt, listed, settings_of(job, chosen, tgt), probe=probe,
        list_commits=list_commits,
    )  # fmt: skip


def diff(a: str, b: str, **options: Any) -> Any:
    """What changed from repo `a` to repo `b` (each `org/name[@rev]` or a local folder; `b` "@rev": `a`'s
    repo at that revision): a hubmem.jobs.diff.DiffResult of two inference estimates made with the same
    options (seq_len, batch, precisions, kv_dtype, ..., token, timeout)."""
    from hubmem.jobs.diff import diff_estimates

    if not isinstance(b, str) or not isinstance(a, str):
        raise InvalidInputError("diff takes two repo ids")
    if b.startswith("@"):
        b = split_revision(a, None)[0] + b
    if "train" in options:
        raise InvalidInputError("diff compares inference estimates: --train does not apply")
    from hubmem.jobs.results import InferenceEstimate

    first = estimate(a, **options)
    second = estimate(b, **options)
    assert isinstance(first, InferenceEstimate) and isinstance(second, InferenceEstimate)
    return diff_estimates(first, second, a, b)


def serve(
    repo: str,
    *,
    engine: str = "vllm",
    gpu: str | None = None,
    gpu_memory: int | str | None = None,
    num_gpus: int | None = None,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    _beside: bool = False,
    **options: Any,
) -> Any:
    """What `engine` (vllm) allocates on each GPU at start-up, whether it starts, and how many requests
    its KV pool holds (`hubmem.jobs.serve.ServeResult`; `.plan.starts`, `.plan.kv_tokens`,
    `.plan.max_concurrency`, `.to_dict()`). Options are vLLM's own names with underscores:
    gpu_memory_utilization, max_model_len (a number or "auto"), max_num_batched_tokens, max_num_seqs,
    kv_cache_dtype, block_size, tensor_parallel_size, pipeline_parallel_size, enforce_eager, dtype,
    quantization, and hubmem's assumptions non_torch_memory, cuda_context, cuda_graph_in_budget, sampler,
    mxfp4_backend.
    engine="sglang": mem_fraction_static, context_length, chunked_prefill_size, max_running_requests,
    tp, kv_cache_dtype, cuda_graph_max_bs, dtype, cuda_context, swa_full_tokens_ratio,
    disable_hybrid_swa_memory, mamba_full_memory_ratio, max_mamba_cache_size, mamba_ssm_dtype."""
    from hubmem.jobs import serve as serve_job

    name = serve_job.normalise_engine(engine)
    spec = serve_job.gpu_spec(gpu, gpu_memory)
    opts = serve_job.engine_options(num_gpus, options, name)
    return serve_job.serve_snapshot(_fetch(repo, revision, token, timeout, _beside), name, spec, opts)


def gpus() -> list[Any]:
    """The GPU catalogue used for "fits on" and `gpu=` names (`hubmem gpus`)."""
    from hubmem.fit.gpus import CATALOGUE

    return list(CATALOGUE)
