"""Rendering: estimates and plain rows -> table / JSON / CSV / markdown text. Bytes stay integers
until here; tables humanise them with an explicit unit (GiB = 1024³ bytes, GB = 10⁹ bytes)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hubmem.fit.verdicts import Verdict
from hubmem.jobs.estimate import Estimate
from hubmem.memory.training import REGIMES

FORMATS = ("table", "json", "jsonl", "csv", "markdown")
UNITS = {"GiB": 1024**3, "GB": 10**9}
_TABULATE_FMT = {"table": "simple", "markdown": "github"}


def human(n: int, units: str = "GiB") -> str:
    return f"{n / UNITS[units]:,.2f}"


def render_rows(headers: list[str], rows: list[list[Any]], fmt: str, numeric: tuple[int, ...] = ()) -> str:
    """One renderer for every tabular output (estimates, the GPU catalogue, audits).

    `numeric`: column indexes right-aligned in table and markdown output.
    """
    if fmt == "json":
        return json.dumps([dict(zip(headers, r)) for r in rows], indent=2) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(dict(zip(headers, r))) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return buf.getvalue()
    from tabulate import tabulate

    align = ["right" if i in numeric else "left" for i in range(len(headers))]
    return (
        tabulate(rows, headers=headers, tablefmt=_TABULATE_FMT[fmt], disable_numparse=True, colalign=align)
        + "\n"
    )


def render_estimate(
    est: Estimate,
    fmt: str = "table",
    units: str = "GiB",
    explain: bool = False,
    verdicts: list[Verdict] | None = None,
) -> str:
    if fmt in ("json", "jsonl"):
        data = est.to_dict()
        if verdicts is not None:
            data["fit"] = [v.to_dict() for v in verdicts]
        return json.dumps(data, indent=2 if fmt == "json" else None) + "\n"
    if est.training_settings is not None:
        return render_training(est, fmt, units, explain)
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
    unit_note = "GiB = 1024³ bytes" if units == "GiB" else "GB = 10⁹ bytes"
    parts = [
        summary(est, units, markdown=fmt == "markdown"),
        "",
        table.rstrip("\n"),
        f"{unit_note}; per GPU.",
    ]
    if verdicts:
        parts += ["", render_verdicts(verdicts, est, fmt, units).rstrip("\n")]
    if explain:
        parts += ["", explanation(est, units)]
    return "\n".join(parts) + "\n"


def summary(est: Estimate, units: str = "GiB", markdown: bool = False) -> str:
    a, c, s = est.architecture, est.counts, est.settings
    ref = est.repo_id + (f" @ {est.revision}" if est.revision else "")
    sha = f" ({est.sha[:7]})" if est.sha else ""
    files = [f for f in est.weight_files if f.endswith((".safetensors", ".bin", ".gguf", ".pt", ".pth"))]
    download = f"{human(est.download_bytes, units)} {units} in {len(files)} file{'s' * (len(files) != 1)}"
    kind = {"option": "set by --params", "config.json": "ESTIMATED from config.json"}.get(
        est.parameters_source, "exact"
    )
    dtypes = " · ".join(f"{d} {n:,}" for d, n in c.stored_by_dtype.items())
    param_line = f"{c.parameters:,} {kind}" + (f" (stored elements: {dtypes})" if dtypes else "")
    if c.hub_by_dtype != c.stored_by_dtype:  # MXFP4 blocks: the Hub counts two values per byte
        param_line += "; as the Hub counts them: " + " · ".join(
            f"{d} {n:,}" for d, n in c.hub_by_dtype.items()
        )
    if c.buffers:
        param_line += f"; {c.buffers:,} non-parameter buffer elements not counted"
    if est.active_parameters is not None and a.moe is not None:
        param_line += f"; active per token {est.active_parameters:,}"
    comps = " · ".join(f"{k} {v:,}" for k, v in c.by_component.items())
    mlp = "gated MLP" if a.gated_mlp else "plain MLP"
    heads = f"heads {a.num_heads} · kv heads {a.num_kv_heads} · head dim {a.head_dim}"
    if not a.attention_layers and a.ssm is not None:  # Mamba: SSM mixers only, `intermediate` = mixer width
        mlp, heads = "SSM inner width, no MLP", "no attention"
    lines = [
        ("model", f"{ref}{sha} · {est.source} · {est.weights_format} · download {download}"),
        ("parameters", param_line),
        (
            "components",
            comps + ("" if c.has_lm_head or not a.tie_word_embeddings else " · lm_head tied to embeddings"),
        ),
        (
            "architecture",
            f"{a.model_type} · hidden {a.hidden_size} · intermediate {a.intermediate_size} ({mlp}) · "
            f"layers {a.num_layers} · {heads}",
        ),
        (
            "",
            (f"context {a.max_context:,}" if a.max_context else "context unknown")
            + f" · vocab {a.vocab_size:,} · tied embeddings {'yes' if a.tie_word_embeddings else 'no'} · "
            f"dtype {a.dtype or 'unspecified'} · attention {a.attention_pattern()}",
        ),
        *([("experts", f"{a.moe.describe(a.num_layers)} ({a.moe.layer_rule})")] if a.moe is not None else []),
        *variant_lines(est),
        *(
            [("weight files", _file_sizes(est, units))]
            if est.parameters_source == "config.json" and est.weight_files
            else []
        ),
        (
            "assumptions",
            f"batch {s.batch} · seq {s.seq_len:,} ({est.seq_len_source}) · KV cache "
            + ("at each row's compute dtype" if s.kv_dtype == "auto" else s.kv_dtype)
            + f" · attention {s.attn} · overhead {human(s.overhead_bytes, units)} {units}/GPU"
            + (f" · rule of thumb × {s.serving_factor}" if s.serving_factor else "")
            + (" · logits for all positions" if s.all_logits else "")
            + (f" · encoder {s.encoder_len:,} tokens" if a.encoder else "")
            + (f" · {s.image_tokens:,} image tokens" if s.image_tokens else "")
            + (f" · SSM state {s.state_dtype}" if a.ssm and s.state_dtype != "auto" else ""),
        ),
    ]
    if est.training_settings is not None:
        lines.pop()  # the inference assumptions; training_summary() states the training ones
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in lines)
    return f"```\n{text}\n```" if markdown else text


PARAMETER_SOURCES = {
    "checkpoint": "sum of tensor elements in the safetensors headers",
    "config.json": "estimated from config.json (no safetensors)",
    "option": "set by --params (component shares kept from the checkpoint or config.json)",
}


def variant_lines(est: Estimate) -> list[tuple[str, str]]:
    """Summary lines for MLA, SSM state, encoder-decoder and multimodal towers (none for plain decoders)."""
    a, lines = est.architecture, []
    if a.mla:
        m = a.mla
        lines.append(
            (
                "MLA",
                f"kv_lora_rank {m.kv_lora_rank} · rope {m.qk_rope_head_dim} · nope {m.qk_nope_head_dim} · "
                f"v head {m.v_head_dim} · q_lora_rank {m.q_lora_rank or 'none'}",
            )
        )
    if a.ssm:
        from hubmem.memory.inference import state_bytes_per_sequence, state_dtype_label, state_element_bytes

        per_seq = state_bytes_per_sequence(a, *state_element_bytes(est.settings, "bf16"))
        lines.append(
            (
                "state",
                f"{a.ssm.kind} in {a.ssm.num_layers} layers · {per_seq:,} bytes per sequence at "
                f"{state_dtype_label(est.settings, 'bf16')} "
                f"(fixed, any length) · KV only in {a.attention_layers} attention layers",
            )
        )
    if a.encoder:
        e, split = a.encoder, est.stack_split
        lines.append(
            (
                "encoder",
                f"layers {e.num_layers} · hidden {e.hidden_size} · heads {e.num_heads} · "
                f"source length {e.source_len or 'none'}"
                + (f" ({e.source_len_from})" if e.source_len else "")
                + " · decoder = the architecture line",
            )
        )
        if split:
            lines.append(("", " · ".join(f"{k} {v:,}" for k, v in split.items()) + " parameters"))
    if a.towers:
        lines.append(
            (
                "towers",
                " · ".join(a.towers) + " (weights counted; KV and activations from the language model)",
            )
        )
    return lines


def _file_sizes(est: Estimate, units: str, limit: int = 4) -> str:
    """'pytorch_model-00001-of-00002.bin 9.29 GiB · …': what a download of an unreadable format pulls."""
    files = sorted(est.weight_files.items())
    shown = " · ".join(f"{name} {human(size or 0, units)} {units}" for name, size in files[:limit])
    return shown + (f" · … {len(files) - limit} more" if len(files) > limit else "")


def explanation(est: Estimate, units: str = "GiB") -> str:
    a = est.architecture
    out = [
        "How each number is computed",
        f"  config normalised by {a.normalised_by}",
        f"  parameters: {PARAMETER_SOURCES[est.parameters_source]}"
        f"; {est.counts.tensors:,} tensors; buffers and quantization metadata excluded",
    ]
    if a.moe is not None and est.active_parameters is not None:
        c, (inactive, experts) = est.counts, a.moe.routed_share_inactive
        mtp = c.by_component.get("mtp", 0)
        out.append(
            f"  active per token = (parameters − MTP) − routed experts × (E − k) / E = "
            f"({c.parameters:,} − {mtp:,}) − {c.routed_expert_params:,} × {inactive} / {experts} "
            f"= {est.active_parameters:,} (hubmem.model.moe)"
        )
    for r in [*est.rows, *est.training_rows]:
        out.append(f"[{r.label}] total {r.total:,} bytes = {human(r.total, units)} {units}")
        if r in est.training_rows:
            out.append(f"  regime: {REGIMES[r.regime].description}")
        for t in r.terms:
            out.append(f"  {t.name:<12} {t.bytes:>18,} B  {t.formula}")
            out.append(f"  {'':<12} {'':>18}    source: {t.source}")
    return "\n".join(out)


def _signed(n: int, units: str) -> str:
    return ("+" if n >= 0 else "-") + human(abs(n), units)


def _seq_limit(limit: int | None, max_context: int | None) -> str:
    """A reverse-solved sequence length, capped at the model's own max context (said so)."""
    if limit is None:
        return "n/a"
    if max_context and limit >= max_context:
        return f"{max_context:,} (model max)"
    return f"{limit:,}"


def headroom_text(v: Verdict, units: str = "GiB") -> str:
    """'+62.59 GiB free' / '3.20 GiB short (needs 2)'."""
    if v.fits:
        return f"{_signed(v.headroom, units)} {units} free"
    need = f"needs {v.gpus_needed}" if v.gpus_needed else "not on any number of them"
    return f"{human(-v.headroom, units)} {units} short ({need})"


def fit_cell(v: Verdict, units: str = "GiB") -> str:
    return ("yes, " if v.fits else "no, ") + headroom_text(v, units)


def render_verdicts(verdicts: list[Verdict], est: Estimate, fmt: str = "table", units: str = "GiB") -> str:
    """The fit table for `estimate --gpu`: one row per precision on the target GPUs."""
    tgt = verdicts[0].target
    headers = ["precision", f"per GPU {units}", "fits", "GPUs needed", "max seq len", "max batch"]
    rows = [
        [
            v.label,
            human(v.per_gpu_bytes, units),
            fit_cell(v, units),
            "-" if v.gpus_needed is None else str(v.gpus_needed),
            _seq_limit(v.max_seq_len, est.architecture.max_context),
            "n/a" if v.max_batch is None else f"{v.max_batch:,}",
        ]
        for v in verdicts
    ]
    s = est.settings
    title = (
        f"on {tgt.describe()} ({human(tgt.usable_bytes, units)} {units} usable each, tensor parallel; "
        f"max seq len at batch {s.batch}, max batch at seq {s.seq_len:,})"
    )
    return title + "\n" + render_rows(headers, rows, fmt, numeric=(1, 3, 4, 5))


def render_audit(rows: list, fmt: str = "table", units: str = "GiB", target: Any = None) -> str:
    """`hubmem audit` output: raw values for json/jsonl/csv, humanised columns for table/markdown."""
    from hubmem.jobs.audit import COLUMNS

    if fmt in ("json", "jsonl", "csv"):
        return render_rows(list(COLUMNS), [list(r.fields().values()) for r in rows], fmt)
    training = any(r.ok and r.estimate.training_rows for r in rows)  # --train: --gpus sets the count
    fit_header = (
        "fits on" if target is None else f"fits {target.name}" if training else f"fits {target.describe()}"
    )
    headers = ["repo", "params", "active", "dtype", "context", "precision", f"weights {units}"]
    headers += [f"total {units}", "KV B/token", fit_header]
    if target is not None:
        headers += ["max seq len", "max batch"]
    headers += [f"download {units}", "status"]
    table = []
    for r in rows:
        f = r.fields()
        if not r.ok:
            cells = [f["repo"]] + [""] * (len(headers) - 2)
            table.append(cells + [f"error {f['exit_code']}: {f['error']}"])
            continue
        est = r.estimate
        cells = [
            f["repo"],
            f"{f['params']:,}" + ("" if f["exact"] else " (est.)"),
            f"{f['active_params']:,}",
            f["dtype"] or "-",
            "-" if f["context"] is None else f"{f['context']:,}",
            r.row_label,
            human(f["weights"], units),
            human(f["total"], units),
            f"{f['kv_per_token']:,}",
            fit_cell(r.verdict, units) if r.verdict is not None else f["fits_on"],
        ]
        if target is not None and est.training_rows:
            cells += ["n/a", "n/a"]  # the reverse solve is for inference
        elif target is not None:
            cells += [
                _seq_limit(f["max_seq_len"], f["context"]),
                "n/a" if f["max_batch"] is None else f"{f['max_batch']:,}",
            ]
        cells += [human(f["download"], units), "ok"]
        table.append(cells)
    numeric = (1, 2, 4, 6, 7, 8) + ((10, 11, 12) if target is not None else (10,))
    return render_rows(headers, table, fmt, numeric=numeric)


CHECK_OUTCOMES = {
    None: "ready to pull",
    "WillNotFitError": "will not fit on the GPUs",
    "NotEnoughDiskError": "fits, but not enough disk for the download",
}


def render_check(
    est: Estimate, v: Verdict | None, plan: Any, outcome: Any, fmt: str = "table", units: str = "GiB"
) -> str:
    """`hubmem check`: the fit verdict (inference `v`, or with --train the training verdict of the
    estimate's one regime), the download against free disk, and the outcome with its exit code."""
    name = outcome.__name__ if outcome is not None else None
    code = outcome.exit_code if outcome is not None else 0
    trained = est.training_rows[0] if v is None else None
    if fmt in ("json", "jsonl", "csv"):
        if trained is not None:
            fit_data = {
                **est.training_fit[trained.regime],
                "regime": trained.regime,
                "per_gpu_bytes": trained.total,
            }
            settings = {**est.training_settings.to_dict(), "seq_len": est.settings.seq_len}  # type: ignore[union-attr]
        else:
            assert v is not None
            fit_data, settings = v.to_dict(), est.settings.to_dict()
        data = {
            "repo_id": est.repo_id,
            "revision": est.revision,
            "sha": est.sha,
            "ready": outcome is None,
            "outcome": CHECK_OUTCOMES[name],
            "exit_code": code,
            "fit": fit_data,
            "disk": plan.to_dict(),
            "settings": settings,
        }
        if fmt == "csv":
            flat = {k: val for k, val in data.items() if not isinstance(val, dict)}
            flat.update({f"fit_{k}": val for k, val in data["fit"].items()})
            flat.update({f"disk_{k}": val for k, val in data["disk"].items() if not isinstance(val, dict)})
            return render_rows(list(flat), [list(flat.values())], "csv")
        return json.dumps(data, indent=2 if fmt == "json" else None) + "\n"
    s = est.settings
    sha = f" ({est.sha[:7]})" if est.sha else ""
    pulled = len(plan.to_pull)
    cached = (
        f", {len(plan.cached)} already cached ({human(sum(plan.cached.values()), units)} {units})"
        if plan.cached
        else ""
    )
    if trained is not None:
        t, tf = est.training_settings, est.training_fit[trained.regime]
        assert t is not None
        judged = [
            (
                "training",
                f"{t.mode} · {trained.label} · micro-batch {t.micro_batch} · seq {s.seq_len:,} ({est.seq_len_source})",
            ),
            ("gpus", f"{t.world}× {tf['gpu']} · {human(tf['usable_bytes'], units)} {units} usable each"),
            (
                "memory",
                f"{human(trained.total, units)} {units} per GPU: {'fits' if tf['fits'] else 'does not fit'}, "
                + (
                    f"{_signed(tf['headroom_bytes'], units)} {units} free"
                    if tf["fits"]
                    else f"{human(-tf['headroom_bytes'], units)} {units} short"
                ),
            ),
            ("", tf["label"]),
        ]
    else:
        assert v is not None
        tgt = v.target
        judged = [
            ("precision", f"{v.label} · batch {s.batch} · seq {s.seq_len:,} ({est.seq_len_source})"),
            ("gpus", f"{tgt.describe()} · {human(tgt.usable_bytes, units)} {units} usable each"),
            (
                "memory",
                f"{human(v.per_gpu_bytes, units)} {units} per GPU: {'fits' if v.fits else 'does not fit'}, "
                + headroom_text(v, units),
            ),
            (
                "",
                f"max seq len {_seq_limit(v.max_seq_len, est.architecture.max_context)} at batch {s.batch} · "
                f"max batch {'n/a' if v.max_batch is None else f'{v.max_batch:,}'} at seq {s.seq_len:,} · "
                f"fewest GPUs that fit: {v.gpus_needed if v.gpus_needed else 'none'}",
            ),
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
        ("verdict", f"{CHECK_OUTCOMES[name]} (exit {code})"),
    ]
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"{k:<{width}}  {val}".rstrip() for k, val in lines) + "\n"
    return f"```\n{text}```\n" if fmt == "markdown" else text


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


def render_training(est: Estimate, fmt: str, units: str, explain: bool) -> str:
    """The per-GPU training table: one row per precision regime, one column per component."""
    t = est.training_settings
    assert t is not None
    offload = t.offload is not None
    if fmt == "csv":
        headers = ["regime", *(f"{c}_bytes" for c in TRAINING_COLUMNS), "host_ram_bytes", "pipeline_stage"]
        rows = [
            [r.regime, *(getattr(r, c) for c in TRAINING_COLUMNS), r.host, r.stage, est.fits_on[r.regime]]
            for r in est.training_rows
        ]
        return render_rows([*headers, "fits_on"], rows, "csv")
    headers = ["regime", *(f"{c} {units}" for c in TRAINING_COLUMNS)]
    headers += [f"host RAM {units}"] if offload else []
    rows = [
        [r.label, *(human(getattr(r, c), units) for c in TRAINING_COLUMNS)]
        + ([human(r.host, units)] if offload else [])
        + [est.fits_on[r.regime]]
        for r in est.training_rows
    ]
    table = render_rows([*headers, "fits on"], rows, fmt, numeric=tuple(range(1, len(headers))))
    unit_note = "GiB = 1024³ bytes" if units == "GiB" else "GB = 10⁹ bytes"
    head = summary(est, units) + "\n" + training_summary(est, units)
    parts = [
        f"```\n{head}\n```" if fmt == "markdown" else head,
        "",
        table.rstrip("\n"),
        f"{unit_note}; per GPU"
        + (f" (pipeline stage: {est.training_rows[0].stage})" if t.pp > 1 and est.training_rows else "")
        + ".",
    ]
    if explain:
        parts += ["", explanation(est, units)]
    return "\n".join(parts) + "\n"


def training_summary(est: Estimate, units: str = "GiB") -> str:
    t = est.training_settings
    assert t is not None
    trainable = est.training_rows[0].trainable if est.training_rows else 0
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
        f"seq {est.settings.seq_len:,} · attention {t.attn} · "
        + ("gradient checkpointing · " if t.grad_checkpointing else "")
        + f"{t.objective} loss · activations {t.activation_rule}"
        + (f" · mixed grads {t.grad_dtype}" if "mixed" in t.regimes else "")
    )
    return line + f"\n              {parallel} · overhead {human(t.overhead_bytes, units)} {units}/GPU"
