"""Training fit: does one regime's per-GPU memory fit a GPU, and how many GPUs would ZeRO-3 need.
Pure: no network; bytes are ints. The per-GPU totals come from hubmem.memory.training."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hubmem.fit.gpus import COMMON, MULTI_GPU_REFERENCE, find_gpu, smallest_fitting
from hubmem.fit.verdicts import fewest_gpus
from hubmem.memory.training import ModelShape, TrainingRow, TrainingSettings, training_row


@dataclass(frozen=True)
class TrainingFit:
    """Does one regime's per-GPU total fit the target GPU (`--train --gpu`)? If not, how many such
    GPUs ZeRO-3 would need (hubmem.fit.training)."""

    gpu: str
    usable_bytes: int
    fits: bool
    headroom_bytes: int
    gpus_needed: int | None
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "usable_bytes": self.usable_bytes,
            "fits": self.fits,
            "headroom_bytes": self.headroom_bytes,
            "gpus_needed": self.gpus_needed,
            "label": self.label,
        }


def replicas_to_fit(
    shape: ModelShape, regime: str, seq_len: int, settings: TrainingSettings, capacity: int, limit: int = 4096
) -> int | None:
    """Smallest data-parallel degree N whose per-GPU total fits `capacity` bytes when the model states are
    sharded ZeRO-3-style over N (the user's tp, pp, batch and offload kept); None when even `limit` is not
    enough (activations, logits and the gathered layers do not shrink with N). Per-GPU totals only fall as
    N grows, so a binary search finds it."""

    def fits(n: int) -> bool:
        trial = replace(settings, gpus=n * settings.tp * settings.pp, zero=3, fsdp=None)
        return training_row(shape, regime, seq_len, trial).total <= capacity

    return fewest_gpus(fits, limit)


def training_fit_label(shape: ModelShape, row: TrainingRow, seq_len: int, settings: TrainingSettings) -> str:
    """The smallest common GPU that holds the per-GPU total; else how many 80 GB GPUs ZeRO-3 would need."""
    gpu = smallest_fitting(row.total, catalogue=COMMON)
    if gpu is not None:
        return gpu.name
    reference = find_gpu(MULTI_GPU_REFERENCE)
    n = replicas_to_fit(shape, row.regime, seq_len, settings, reference.usable_bytes)
    if n is None:
        return "none: activations too large (try --grad-checkpointing, --tp)"
    return f"{n * settings.tp * settings.pp}× {reference.name} with ZeRO-3"


def training_fit(
    shape: ModelShape,
    row: TrainingRow,
    seq_len: int,
    settings: TrainingSettings,
    gpu_name: str,
    usable_bytes: int,
) -> TrainingFit:
    """Does this regime's per-GPU total fit the named GPU (`--train --gpu`)? If not, how many such GPUs
    ZeRO-3 would need at the same micro-batch, sequence length, tp and pp (`replicas_to_fit`)."""
    fits = row.total <= usable_bytes
    needed = None
    if not fits:
        n = replicas_to_fit(shape, row.regime, seq_len, settings, usable_bytes)
        needed = None if n is None else n * settings.tp * settings.pp
    if fits:
        label = f"yes: {settings.world}× {gpu_name}"
    elif needed is None:
        label = f"no: not on any number of {gpu_name} (activations; try --grad-checkpointing, --tp)"
    else:
        label = f"no: {needed}× {gpu_name} with ZeRO-3"
    return TrainingFit(
        gpu=gpu_name,
        usable_bytes=usable_bytes,
        fits=fits,
        headroom_bytes=usable_bytes - row.total,
        gpus_needed=settings.world if fits else needed,
        label=label,
    )
