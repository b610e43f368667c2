"""The model part of every estimate's output: the summary lines (architecture, parameters, download,
assumptions) and --explain's terms with their formulas and sources."""

from __future__ import annotations

from hubmem.jobs.results import InferenceEstimate, ModelFacts, TrainingEstimate
from hubmem.memory.training import REGIMES, TrainingRow
from hubmem.output.tables import human

Estimate = InferenceEstimate | TrainingEstimate


def summary(est: Estimate, units: str = "GiB", markdown: bool = False) -> str:
    a, c = est.architecture, est.counts
    ref = est.repo_id + (f" @ {est.revision}" if est.revision else "")
    sha = f" ({est.sha[:7]})" if est.sha else ""
    files = list(est.weight_files)  # what a download pulls, the shards' index included (as `check` counts)
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
    ]
    if isinstance(est, InferenceEstimate):
        s = est.settings
        lines.append(
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
            )
        )  # a training estimate states its own assumptions (training_summary)
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"{k:<{width}}  {v}".rstrip() for k, v in lines)
    return f"```\n{text}\n```" if markdown else text


PARAMETER_SOURCES = {
    "checkpoint": "sum of tensor elements in the safetensors headers",
    "config.json": "estimated from config.json (no safetensors)",
    "option": "set by --params (component shares kept from the checkpoint or config.json)",
}


def variant_lines(est: ModelFacts) -> list[tuple[str, str]]:
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
        lines.append(
            (
                "state",
                f"{a.ssm.kind} in {a.ssm.num_layers} layers · {est.state_bytes_16bit:,} bytes per sequence at {est.state_label} "
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


def _file_sizes(est: ModelFacts, units: str, limit: int = 4) -> str:
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
    for r in est.rows:
        out.append(f"[{r.label}] total {r.total:,} bytes = {human(r.total, units)} {units}")
        if isinstance(r, TrainingRow):
            out.append(f"  regime: {REGIMES[r.regime].description}")
        for t in r.terms:
            out.append(f"  {t.name:<12} {t.bytes:>18,} B  {t.formula}")
            out.append(f"  {'':<12} {'':>18}    source: {t.source}")
    return "\n".join(out)
