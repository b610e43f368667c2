"""The results of each job, one type per job. Every derived number is computed once, when the result
is built (hubmem.jobs.estimate, hubmem.jobs.check); `to_dict()` and the renderers only read fields.

- `InferenceEstimate`: memory per precision for inference (`hubmem REPO`, `hubmem.estimate`).
- `TrainingEstimate`: per-GPU memory per training regime (`hubmem REPO --train`, `hubmem.train`).
- `CheckResult`: a pre-download check (`hubmem check`, `hubmem.check`): the verdict and the disk plan.

The first two share `ModelFacts`: what the repo is, independent of the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hubmem.errors import HubmemError
from hubmem.fit.training import TrainingFit
from hubmem.fit.verdicts import Target, Verdict
from hubmem.hub.disk import DiskPlan
from hubmem.memory.inference import InferenceRow, InferenceSettings
from hubmem.memory.training import TrainingRow, TrainingSettings
from hubmem.model.architecture import Architecture
from hubmem.model.tensors import CheckpointCounts


@dataclass(frozen=True)
class ModelFacts:
    repo_id: str
    revision: str | None
    sha: str | None
    source: str  # hub | cache | local
    weights_format: str  # safetensors | pytorch | gguf | none
    architecture: Architecture
    counts: CheckpointCounts
    parameters_source: str  # "checkpoint", "config.json", or "option" (--params)
    active_parameters: int | None  # parameters one token uses (MoE models; MTP left out), else None
    weight_files: dict[str, int | None]  # every file a download would pull (index included), with sizes
    download_bytes: int  # their total (unknown sizes count 0)
    stack_split: dict[str, int]  # encoder-decoder: parameters of the encoder, the decoder, shared
    seq_len: int
    seq_len_source: str  # "option", "model max context", "fallback"
    warnings: tuple[str, ...]
    state_bytes_16bit: int  # SSM / linear-attention state per sequence at 16-bit compute (0: none)
    state_label: str  # the dtypes it was sized with: "16-bit", or "16-bit conv + fp32 ssm state"

    def facts_dict(self) -> dict[str, Any]:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "sha": self.sha,
            "source": self.source,
            "weights_format": self.weights_format,
            "architecture": self.architecture.to_dict(),
            "parameters": {**self.counts.to_dict(), "active": self.active_parameters},
            "weight_files": dict(self.weight_files),
            "download_bytes": self.download_bytes,
            "warnings": list(self.warnings),
            "stack_split": dict(self.stack_split),
        }


@dataclass(frozen=True)
class InferenceEstimate(ModelFacts):
    settings: InferenceSettings
    rows: tuple[InferenceRow, ...]
    fits_on: dict[str, str]  # precision -> smallest GPU (or N× GPU) that holds the total
    kv_bytes_per_token: dict[str, int]  # precision -> KV bytes one token adds (all layers)
    state_bytes_per_sequence: dict[str, int]  # precision -> fixed SSM state per sequence
    verdicts: tuple[Verdict, ...] | None = None  # with a target (--gpu): one per row
    target: Target | None = None

    def row(self, precision: str) -> InferenceRow:
        return next(r for r in self.rows if r.precision == precision)

    def verdict(self, precision: str) -> Verdict | None:
        return next((v for v in self.verdicts or () if v.precision == precision), None)

    def to_dict(self) -> dict[str, Any]:
        data = {
            **self.facts_dict(),
            "settings": {**self.settings.to_dict(), "seq_len_source": self.seq_len_source},
            "kv_bytes_per_token": dict(self.kv_bytes_per_token),
            "state_bytes_per_sequence": dict(self.state_bytes_per_sequence),
            "rows": [{**r.to_dict(), "fits_on": self.fits_on[r.precision]} for r in self.rows],
        }
        if self.verdicts is not None:
            data["fit"] = [v.to_dict() for v in self.verdicts]
        return data


@dataclass(frozen=True)
class TrainingEstimate(ModelFacts):
    settings: TrainingSettings
    rows: tuple[TrainingRow, ...]
    fits_on: dict[str, str]  # regime -> smallest GPU, or N× GPU with ZeRO-3, or the --gpu verdict
    fit: dict[str, TrainingFit] = field(default_factory=dict)  # with --gpu: per regime

    def row(self, regime: str) -> TrainingRow:
        return next(r for r in self.rows if r.regime == regime)

    def to_dict(self) -> dict[str, Any]:
        training = {
            "settings": {
                **self.settings.to_dict(),
                "seq_len": self.seq_len,
                "seq_len_source": self.seq_len_source,
            },
            "parameters_source": self.parameters_source,
            "rows": [{**r.to_dict(), "fits_on": self.fits_on[r.regime]} for r in self.rows],
        }
        if self.fit:
            training["fit"] = {k: f.to_dict() for k, f in self.fit.items()}
        return {**self.facts_dict(), "training": training}


@dataclass(frozen=True)
class CheckResult:
    """`hubmem check`: will the model fit on the GPUs, and is there disk for the download?
    `outcome` is None (ready to pull) or the error class whose exit code the CLI returns."""

    estimate: InferenceEstimate | TrainingEstimate
    precision: str  # the judged precision, or the training regime
    per_gpu_bytes: int
    fits: bool
    disk: DiskPlan
    outcome: type[HubmemError] | None

    OUTCOMES = {
        None: "ready to pull",
        "WillNotFitError": "will not fit on the GPUs",
        "NotEnoughDiskError": "fits, but not enough disk for the download",
    }

    @property
    def ready(self) -> bool:
        return self.outcome is None

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome is None else self.outcome.exit_code

    @property
    def outcome_text(self) -> str:
        return self.OUTCOMES[None if self.outcome is None else self.outcome.__name__]

    def fit_dict(self) -> dict[str, Any]:
        est = self.estimate
        if isinstance(est, TrainingEstimate):
            return {
                **est.fit[self.precision].to_dict(),
                "regime": self.precision,
                "per_gpu_bytes": self.per_gpu_bytes,
            }
        verdict = est.verdict(self.precision)
        assert verdict is not None
        return verdict.to_dict()

    def settings_dict(self) -> dict[str, Any]:
        est = self.estimate
        if isinstance(est, TrainingEstimate):
            return {**est.settings.to_dict(), "seq_len": est.seq_len}
        return est.settings.to_dict()

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "repo_id": est.repo_id,
            "revision": est.revision,
            "sha": est.sha,
            "ready": self.ready,
            "outcome": self.outcome_text,
            "exit_code": self.exit_code,
            "fit": self.fit_dict(),
            "disk": self.disk.to_dict(),
            "settings": self.settings_dict(),
        }
