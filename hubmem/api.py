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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from hubmem.bounds import at_most
from hubmem.errors import InvalidInputError
from hubmem.fit.verdicts import Target, target
from hubmem.hub.fetch import DEFAULT_TIMEOUT, RepoSnapshot
from hubmem.jobs.audit import DEFAULT_JOBS, AuditRow
from hubmem.jobs.options import memory_bytes
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


def _fetch(repo: str, revision: str | None, token: str | None, timeout: float, beside: bool) -> RepoSnapshot:
    from hubmem.hub.fetch import clean_token
    from hubmem.jobs.estimate import fetch_snapshot

    if not (isinstance(timeout, int | float) and 0 < timeout < float("inf")):
        raise InvalidInputError(f"--timeout must be a positive number of seconds, not {timeout!r}")
    at_most(timeout, "timeout")
    token = clean_token(token)  # before a helper forks: it inherits the secret to redact
    repo, revision = split_revision(repo, revision)
    return fetch_snapshot(repo, revision=revision, token=token, timeout=timeout, beside=beside)


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
    result carries a verdict per row (`est.verdict("bf16")`)."""
    from hubmem.jobs.estimate import estimate_snapshot
    from hubmem.jobs.options import job_options

    job = job_options(train, options)
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)
    return estimate_snapshot(_fetch(repo, revision, token, timeout, _beside), job, target=tgt)


def train(repo: str, mode: str = "full", **options: Any) -> TrainingEstimate:
    """Per-GPU training memory per precision regime: `mode` full, lora or qlora. Options: regimes,
    optimizer, micro_batch, grad_checkpointing, lora_rank, lora_targets, grad_dtype, objective,
    activation_rule, gpus, zero, fsdp, tp, pp, offload, and seq_len, attn, overhead, params;
    `gpu` / `gpu_memory`: a verdict per regime on `gpus` of them."""
    result = estimate(repo, train=mode, **options)
    assert isinstance(result, TrainingEstimate)
    return result


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

    job, chosen = judged_options(train, options, precision, "check")
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)
    if tgt is None:
        raise InvalidInputError("check needs --gpu NAME or --gpu-memory SIZE")
    return check_snapshot(_fetch(repo, revision, token, timeout, _beside), job, tgt, chosen, cache_dir)


def audit(ids: Iterable[str], **options: Any) -> Iterator[AuditRow]:
    """One row per repo id (`org/name[@rev]` or a local folder), in input order, fetched `jobs` (default
    16, at most 256) at a time. A repo that fails is a row with `.error` (and `.ok` False); the others
    go on. Options as `check` (precision, gpu, gpu_memory, num_gpus, token, timeout, train, ...); bad
    options raise before anything is fetched."""
    from hubmem.jobs.audit import ordered_rows

    plan = audit_plan(ids, **options)
    return ordered_rows(plan.refs, plan.fetch, plan.evaluate, jobs=plan.jobs)


@dataclass(frozen=True)
class AuditPlan:
    refs: list[str]
    fetch: Callable[[str], RepoSnapshot]
    evaluate: Callable[[str, Any], AuditRow]
    jobs: int
    target: Target | None


def audit_plan(
    ids: Iterable[str],
    *,
    jobs: int = DEFAULT_JOBS,
    precision: str = "auto",
    gpu: str | None = None,
    gpu_memory: int | str | None = None,
    num_gpus: int = 1,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    train: str | None = None,
    **options: Any,
) -> AuditPlan:
    """The refs, the fetch and the evaluation of an audit, validated before anything is fetched (the CLI
    runs them with a progress bar, `audit()` as an iterator)."""
    from hubmem.hub import fetch as hub
    from hubmem.jobs.audit import MAX_JOBS, audit_row
    from hubmem.jobs.check import judged_options

    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise InvalidInputError(f"--jobs must be a whole number from 1 to {MAX_JOBS}, not {jobs!r}")
    token = hub.clean_token(token)  # before the helpers fork: they inherit the secret to redact
    refs = [ids] if isinstance(ids, str) else list(ids)
    if not refs:
        raise InvalidInputError("no repo ids given (arguments, -f FILE, or - for stdin)")
    job, chosen = judged_options(train, options, precision, "an audit row")
    tgt = gpu_target(gpu, gpu_memory, num_gpus, train)

    def fetch(ref: str) -> RepoSnapshot:
        repo, revision = split_revision(ref, None)
        return hub.fetch(repo, revision=revision, token=token, timeout=timeout)

    def evaluate(ref: str, fetched: Any) -> AuditRow:
        return audit_row(ref, fetched, job, chosen, tgt)

    return AuditPlan(refs, fetch, evaluate, jobs, tgt)


def gpus() -> list[Any]:
    """The GPU catalogue used for "fits on" and `gpu=` names (`hubmem gpus`)."""
    from hubmem.fit.gpus import CATALOGUE

    return list(CATALOGUE)
