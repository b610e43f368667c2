"""`hubmem REPO --train`: the per-GPU training table, one row per precision regime."""

from __future__ import annotations

from hubmem.jobs.results import TrainingEstimate
from hubmem.output.model import explanation, summary
from hubmem.output.tables import human, render_rows
from hubmem.units import UNIT_NOTES

TRAINING_COLUMNS = (
    "weights",
    "gradients",
    "optimizer",
    "master",
    "activations",
    "logits",
    "overhead",
    "total",
)


def render_training(est: TrainingEstimate, fmt: str, units: str, explain: bool) -> str:
    """The per-GPU training table: one row per precision regime, one column per component."""
    t = est.settings
    offload = t.offload is not None
    if fmt == "csv":
        headers = ["regime", *(f"{c}_bytes" for c in TRAINING_COLUMNS), "host_ram_bytes", "pipeline_stage"]
        rows = [
            [r.regime, *(getattr(r, c) for c in TRAINING_COLUMNS), r.host, r.stage, est.fits_on[r.regime]]
            for r in est.rows
        ]
        return render_rows([*headers, "fits_on"], rows, "csv")
    headers = ["regime", *(f"{c} {units}" for c in TRAINING_COLUMNS)]
    headers += [f"host RAM {units}"] if offload else []
    rows = [
        [r.label, *(human(getattr(r, c), units) for c in TRAINING_COLUMNS)]
        + ([human(r.host, units)] if offload else [])
        + [est.fits_on[r.regime]]
        for r in est.rows
    ]
    table = render_rows([*headers, "fits on"], rows, fmt, numeric=tuple(range(1, len(headers))))
    unit_note = UNIT_NOTES[units]
    head = summary(est, units) + "\n" + training_summary(est, units)
    parts = [
        f"```\n{head}\n```" if fmt == "markdown" else head,
        "",
        table.rstrip("\n"),
        f"{unit_note}; per GPU"
        + (f" (pipeline stage: {est.rows[0].stage})" if t.pp > 1 and est.rows else "")
        + ".",
    ]
    if explain:
        parts += ["", explanation(est, units)]
    return "\n".join(parts) + "\n"


def training_summary(est: TrainingEstimate, units: str = "GiB") -> str:
    t = est.settings
    trainable = est.rows[0].trainable if est.rows else 0
    mode = t.mode if t.mode == "full" else f"{t.mode} rank {t.lora_rank} on {','.join(t.lora_targets)}"
    parallel = f"{t.world} GPU{'s' * (t.world > 1)}"
    if t.world > 1:
        shard = f"FSDP {t.fsdp}" if t.fsdp else (f"ZeRO-{t.zero}" if t.zero else "no sharding")
        parallel += f" = tp {t.tp} × pp {t.pp} × dp {t.dp} · {shard}"
    if t.offload:
        parallel += f" · offload {t.offload} to host"
    line = (
        f"training      {mode} · {trainable:,} trainable"
        + (" per tp×pp rank" if t.tp * t.pp > 1 else "")
        + f" · {t.optimizer} · micro-batch {t.micro_batch} · "
        f"seq {est.seq_len:,} · attention {t.attn} · "
        + ("gradient checkpointing · " if t.grad_checkpointing else "")
        + f"{t.objective} loss · activations {t.activation_rule}"
        + (f" · mixed grads {t.grad_dtype}" if "mixed" in t.regimes else "")
    )
    return line + f"\n              {parallel} · overhead {human(t.overhead_bytes, units)} {units}/GPU"
