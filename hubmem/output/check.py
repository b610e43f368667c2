"""`hubmem check`: the verdict, the download against free disk, and the outcome."""

from __future__ import annotations

from hubmem.jobs.results import CheckResult, TrainingEstimate
from hubmem.output.tables import document, headroom_text, human, render_rows, seq_limit, signed


def render_check(result: CheckResult, fmt: str = "table", units: str = "GiB") -> str:
    """`hubmem check`: the fit verdict (or with --train the training verdict of the one regime), the
    download against free disk, and the outcome with its exit code."""
    if fmt in ("json", "jsonl", "csv"):
        data = result.to_dict()
        if fmt == "csv":
            flat = {k: val for k, val in data.items() if not isinstance(val, dict)}
            flat.update({f"fit_{k}": val for k, val in data["fit"].items()})
            flat.update({f"disk_{k}": val for k, val in data["disk"].items() if not isinstance(val, dict)})
            return render_rows(list(flat), [list(flat.values())], "csv")
        return document(data, fmt)
    est, plan = result.estimate, result.disk
    sha = f" ({est.sha[:7]})" if est.sha else ""
    pulled = len(plan.to_pull)
    cached = (
        f", {len(plan.cached)} already cached ({human(sum(plan.cached.values()), units)} {units})"
        if plan.cached
        else ""
    )
    if isinstance(est, TrainingEstimate):
        t, trained, tf = est.settings, est.row(result.precision), est.fit[result.precision]
        judged = [
            (
                "training",
                f"{t.mode} · {trained.label} · micro-batch {t.micro_batch} · seq {est.seq_len:,} ({est.seq_len_source})",
            ),
            ("gpus", f"{t.world}× {tf.gpu} · {human(tf.usable_bytes, units)} {units} usable each"),
            (
                "memory",
                f"{human(trained.total, units)} {units} per GPU: {'fits' if tf.fits else 'does not fit'}, "
                + (
                    f"{signed(tf.headroom_bytes, units)} {units} free"
                    if tf.fits
                    else f"{human(-tf.headroom_bytes, units)} {units} short"
                ),
            ),
            ("", tf.label),
        ]
    else:
        s, v = est.settings, est.verdict(result.precision)
        assert v is not None
        tgt = v.target
        auto = ""
        if len(est.rows) > 1 and result.precision in ("fp32", "bf16"):  # --precision auto: every row
            from hubmem.fit.verdicts import auto_dtype

            auto = f" · dtype auto: {auto_dtype(est)[1]}"
        judged = [
            ("precision", f"{v.label} · batch {s.batch} · seq {s.seq_len:,} ({est.seq_len_source}){auto}"),
            ("gpus", f"{tgt.describe()} · {human(tgt.usable_bytes, units)} {units} usable each"),
            (
                "memory",
                f"{human(v.per_gpu_bytes, units)} {units} per GPU: "
                + (
                    f"{'fits' if v.fits else 'does not fit'}, " + headroom_text(v, units)
                    if v.runnable
                    else "refused: this GPU cannot run the format (below)"
                ),
            ),
            (
                "",
                f"max seq len {seq_limit(v.max_seq_len, est.architecture.max_context)} at batch {s.batch} · "
                f"max batch {'n/a' if v.max_batch is None else f'{v.max_batch:,}'} at seq {s.seq_len:,} · "
                f"fewest GPUs that fit: {v.gpus_needed if v.gpus_needed else 'none'}",
            ),
            *([("", v.note)] if v.note else []),
        ]
    lines = [
        ("repo", f"{est.repo_id}{sha}"),
        *judged,
        (
            "download",
            f"{human(plan.needed_bytes, units)} {units} ({plan.needed_bytes:,} bytes) in {pulled} "
            f"file{'s' * (pulled != 1)}{cached}",
        ),
        (
            "disk",
            f"{human(plan.free_bytes, units)} {units} free at {plan.cache_dir}: "
            + (
                "enough"
                if plan.enough
                else f"{human(plan.needed_bytes - plan.free_bytes, units)} {units} short"
            ),
        ),
        ("verdict", f"{result.outcome_text} (exit {result.exit_code})"),
    ]
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"{k:<{width}}  {val}".rstrip() for k, val in lines) + "\n"
    return f"```\n{text}```\n" if fmt == "markdown" else text
