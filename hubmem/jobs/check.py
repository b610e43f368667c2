"""Jobs that judge one precision (or one training regime) on given GPUs: `hubmem check` (and the
rows of `hubmem audit`, hubmem.jobs.audit). Pure once the snapshot is fetched, but for the disk."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hubmem import errors
from hubmem.fit.verdicts import Target, default_precision
from hubmem.hub import disk
from hubmem.hub import fetch as hub
from hubmem.jobs.estimate import estimate_snapshot
from hubmem.jobs.options import InferenceOptions, TrainingOptions, job_options, normalise_precision
from hubmem.jobs.results import CheckResult, InferenceEstimate, TrainingEstimate

# audit and check judge one training regime: mixed precision with fp32 master weights unless the
# options say otherwise (what the HF Trainer's bf16=True runs).
DEFAULT_TRAINING_REGIME = "mixed"


def judged_options(
    train: str | None, given: Mapping[str, Any], precision: str, what: str
) -> tuple[InferenceOptions | TrainingOptions, str | None]:
    """The options of a job that judges one precision (`precision`, "auto": as loaded) or, with
    `train`, one regime (`regimes`, default mixed); and the precision key chosen (None: auto)."""
    given = dict(given)
    if "precisions" in given:
        raise errors.InvalidInputError(f"{what} judges one precision: use --precision (precision=) once")
    if train is not None:
        regimes = given.get("regimes") or (DEFAULT_TRAINING_REGIME,)
        regimes = (regimes,) if isinstance(regimes, str) else tuple(dict.fromkeys(regimes))
        if len(regimes) > 1:
            raise errors.InvalidInputError(f"{what} shows one training regime: pass --regime once")
        if precision != "auto":
            raise errors.InvalidInputError("--precision is for inference; with --train use --regime")
        return job_options(train, {**given, "regimes": regimes}), None
    chosen = None if precision == "auto" else normalise_precision(precision)
    if chosen is not None:
        given["precisions"] = (chosen,)
    return job_options(None, given), chosen


def judged_key(est: InferenceEstimate | TrainingEstimate, chosen: str | None) -> str:
    """The row a judged job reports: the chosen precision, the one `from_pretrained` loads, or the regime."""
    if isinstance(est, TrainingEstimate):
        return est.rows[0].regime
    return default_precision(est) if chosen is None else chosen


def check_snapshot(
    snapshot: hub.RepoSnapshot,
    options: InferenceOptions | TrainingOptions,
    target: Target,
    chosen: str | None = None,
    cache_dir: str | None = None,
) -> CheckResult:
    """Will the model fit on `target`, and is there disk for the download? (checked in that order)"""
    est = estimate_snapshot(snapshot, options, target=target)
    key = judged_key(est, chosen)
    if isinstance(est, TrainingEstimate):
        fit = est.fit[key]
        per_gpu, fits = est.row(key).total, fit.fits
    else:
        verdict = est.verdict(key)
        assert verdict is not None
        per_gpu, fits = verdict.per_gpu_bytes, verdict.fits
    where = disk.cache_dir(cache_dir)
    if os.path.exists(where) and not os.path.isdir(where):
        raise errors.InvalidInputError(f"--cache-dir '{where}' is not a folder")
    files = disk.files_to_download(dict(est.weight_files)) if est.source != "local" else {}
    plan = disk.plan_download(est.repo_id, est.sha, files, where)
    outcome = errors.WillNotFitError if not fits else errors.NotEnoughDiskError if not plan.enough else None
    return CheckResult(est, key, per_gpu, fits, plan, outcome)
