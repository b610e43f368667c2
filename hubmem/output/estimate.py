"""`hubmem REPO`: the per-precision table and fit verdicts under the model summary (hubmem.output.model);
training estimates are drawn by hubmem.output.training."""

from __future__ import annotations

from hubmem.errors import InvalidInputError
from hubmem.fit.verdicts import Verdict
from hubmem.jobs.results import InferenceEstimate, TrainingEstimate
from hubmem.output.model import explanation, summary
from hubmem.output.tables import document, fit_cell, human, render_rows, seq_limit
from hubmem.output.training import render_training
from hubmem.units import UNIT_NOTES


def render_estimate(
    est: InferenceEstimate | TrainingEstimate,
    fmt: str = "table",
    units: str = "GiB",
    explain: bool = False,
    bars: str | None = None,
) -> str:
    """`bars`: hubmem.output.bars' lines, drawn under the precision table (table format only)."""
    if explain and fmt not in ("table", "markdown"):
        raise InvalidInputError(
            f"--explain prints text: use --format table or markdown (--format {fmt} rows carry each term "
            "with its formula and source)"
            if fmt != "csv"
            else "--explain prints text: use --format table or markdown (CSV has no room for the terms)"
        )
    if fmt in ("json", "jsonl"):
        return document(est.to_dict(), fmt)
    if isinstance(est, TrainingEstimate):
        return render_training(est, fmt, units, explain)
    verdicts = est.verdicts
    if fmt == "csv":
        headers = [
            "precision",
            "weights_bytes",
            "kv_cache_bytes",
            "activations_bytes",
            "overhead_bytes",
            "total_bytes",
            "fits_on",
        ]
        rows = [
            [r.precision, r.weights, r.kv_cache, r.activations, r.overhead, r.total, est.fits_on[r.precision]]
            for r in est.rows
        ]
        if verdicts:  # --gpu: the verdict's fields after the row's, prefixed fit_
            keys = [k for k in verdicts[0].to_dict() if k != "precision"]
            headers += [f"fit_{k}" for k in keys]
            rows = [row + [v.to_dict()[k] for k in keys] for row, v in zip(rows, verdicts)]
        return render_rows(headers, rows, "csv")
    headers = ["precision", f"weights {units}", f"KV cache {units}", f"activations {units}"]
    headers += [f"overhead {units}", f"total {units}", "fits on"]
    rows = [
        [
            r.label,
            human(r.weights, units),
            human(r.kv_cache, units),
            human(r.activations, units),
            human(r.overhead, units),
            human(r.total, units),
            est.fits_on[r.precision],
        ]
        for r in est.rows
    ]
    table = render_rows(headers, rows, fmt, numeric=(1, 2, 3, 4, 5))
    unit_note = UNIT_NOTES[units]
    parts = [
        summary(est, units, markdown=fmt == "markdown"),
        "",
        table.rstrip("\n"),
        f"{unit_note}; per GPU.",
    ]
    if bars is not None and fmt == "table":
        parts += ["", bars.rstrip("\n")]
    if verdicts:
        parts += ["", render_verdicts(verdicts, est, fmt, units).rstrip("\n")]
    if explain:
        parts += ["", explanation(est, units)]
    return "\n".join(parts) + "\n"


def render_verdicts(
    verdicts: tuple[Verdict, ...], est: InferenceEstimate, fmt: str = "table", units: str = "GiB"
) -> str:
    """The fit table for `estimate --gpu`: one row per precision on the target GPUs."""
    tgt = verdicts[0].target
    headers = ["precision", f"per GPU {units}", "fits", "GPUs needed", "max seq len", "max batch"]
    rows = [
        [
            v.label,
            human(v.per_gpu_bytes, units),
            fit_cell(v, units),
            "-" if v.gpus_needed is None else str(v.gpus_needed),
            seq_limit(v.max_seq_len, est.architecture.max_context),
            "n/a" if v.max_batch is None else f"{v.max_batch:,}",
        ]
        for v in verdicts
    ]
    s = est.settings
    title = (
        f"on {tgt.describe()} ({human(tgt.usable_bytes, units)} {units} usable each, tensor parallel; "
        f"max seq len at batch {s.batch}, max batch at seq {s.seq_len:,})"
    )
    notes = "".join(f"{v.label}: {v.note}\n" for v in verdicts if v.note)
    return title + "\n" + render_rows(headers, rows, fmt, numeric=(1, 3, 4, 5)) + notes
