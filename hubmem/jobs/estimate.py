"""The estimate pipeline: hub (a snapshot) -> model (architecture, counts) -> memory (rows) -> fit
(labels, verdicts) -> one result per job (hubmem.jobs.results). Pure once the snapshot is fetched."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from hubmem.acyclic import collector_paused
from hubmem.errors import InvalidInputError
from hubmem.fit.training import TrainingFit, training_fit, training_fit_label
from hubmem.fit.verdicts import Target, fits_on_label, verdict
from hubmem.hub import fetch as hub
from hubmem.jobs.options import InferenceOptions, TrainingOptions, job_options
from hubmem.jobs.results import InferenceEstimate, ModelFacts, TrainingEstimate
from hubmem.memory import inference as memory
from hubmem.memory import training
from hubmem.model import architecture as arch_mod
from hubmem.model.architecture import Architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.moe import active_parameters
from hubmem.model.tensors import CheckpointCounts, count_tensors, encoder_decoder_split

FALLBACK_SEQ_LEN = 2048


@collector_paused()  # counting a large checkpoint's tensors: hubmem.acyclic
def estimate_snapshot(
    snapshot: hub.RepoSnapshot,
    options: InferenceOptions | TrainingOptions | None = None,
    *,
    target: Target | None = None,
    train: str | None = None,
    **given: Any,
) -> InferenceEstimate | TrainingEstimate:
    """The estimate for metadata already fetched (pure: no network): inference rows, or with training
    options (`train="full"|"lora"|"qlora"` and plain values, or `TrainingOptions`) training rows.

    `given` are plain option values as `hubmem.jobs.options.job_options` takes them (seq_len=8192,
    overhead="2GiB", precisions=["bf16"], ...). `target`: the GPUs a verdict is asked about (--gpu).
    """
    if options is None:
        options = job_options(train, given)
    elif given or train is not None:
        raise TypeError("estimate_snapshot: pass options or plain values, not both")
    if isinstance(options, TrainingOptions):
        return training_estimate(snapshot, options, target)
    return inference_estimate(snapshot, options, target)


def inference_estimate(
    snapshot: hub.RepoSnapshot, options: InferenceOptions, target: Target | None = None
) -> InferenceEstimate:
    facts, notes = _model_facts(snapshot, options.params, options.total_len)
    arch, counts = facts.architecture, facts.counts
    encoder_len, warning = _encoder_len(arch, options.encoder_len, facts.seq_len)
    notes += [warning] if warning else []
    if options.image_tokens and "vision" not in arch.towers:
        raise InvalidInputError(
            f"--image-tokens: '{snapshot.repo_id}' has no vision tower (no vision_config)"
        )
    o = options
    settings = memory.InferenceSettings(
        seq_len=facts.seq_len,
        batch=o.batch,
        kv_dtype=o.kv_dtype,
        attn=o.attn,
        overhead_bytes=o.overhead,
        all_logits=o.all_logits,
        serving_factor=o.serving_factor,
        encoder_len=encoder_len,
        image_tokens=o.image_tokens,
        state_dtype=o.state_dtype,
        prompt_len=o.prompt_at(facts.seq_len),
        num_beams=o.num_beams,
        generate_cache=o.generate_cache,
        bnb_compute_dtype=o.bnb_compute_dtype,
        bnb_double_quant=o.bnb_double_quant,
        bnb_quantize_lm_head=o.bnb_quantize_lm_head,
        gptq_kernel=o.gptq_kernel,
        gptq_desc_act=o.gptq_desc_act,
        gpu_capability=_capability(target),
        gpu_sms=o.gpu_sms,
        overhead_model=o.overhead_model,
    )
    keys = list(o.precision_keys) or list(memory.DEFAULT_PRECISIONS)
    if not o.precisions and _is_stored_distinct(counts):
        keys.append("stored")
    rows = tuple(memory.inference_row(arch, counts, key, settings) for key in dict.fromkeys(keys))
    rule = o.serving_factor is not None
    kv_format = memory.kv_format(settings)
    est = InferenceEstimate(
        **_fields(
            facts,
            notes,
            state_bytes_16bit=_state_16bit(arch, settings),
            state_label=memory.state_dtype_label(settings, "bf16"),
        ),
        settings=settings,
        rows=rows,
        fits_on={
            r.precision: fits_on_label(r, arch, rule, counts, _bf16_row(rows, arch, counts, settings))
            for r in rows
        },
        kv_bytes_per_token={
            r.precision: memory.kv_bytes_per_token(
                arch, memory.kv_element_bytes(settings, r.precision), kv_format
            )
            for r in rows
        },
        state_bytes_per_sequence={
            r.precision: memory.state_bytes_per_sequence(
                arch, *memory.state_element_bytes(settings, r.precision)
            )
            for r in rows
        },
    )
    if target is None:
        return est
    return replace(est, verdicts=tuple(verdict(est, r.precision, target) for r in rows), target=target)


def training_estimate(
    snapshot: hub.RepoSnapshot, options: TrainingOptions, target: Target | None = None
) -> TrainingEstimate:
    facts, notes = _model_facts(snapshot, options.params, options.seq_len)
    if facts.seq_len_source != "option":
        notes.append(
            f"training at {facts.seq_len:,} tokens per sequence ({facts.seq_len_source}); pass --seq-len for your data"
        )
    settings, seq_len = options.settings, facts.seq_len
    shape = training.ModelShape(
        facts.architecture, facts.counts, *training.dropout_from_config(snapshot.config)
    )
    rows = tuple(training.training_rows(shape, seq_len, settings))
    fit: dict[str, TrainingFit] = {}
    if target is not None:
        fit = {
            r.regime: training_fit(shape, r, seq_len, settings, target.name, target.usable_bytes)
            for r in rows
        }
        fits_on = {regime: f.label for regime, f in fit.items()}
    else:
        fits_on = {r.regime: training_fit_label(shape, r, seq_len, settings) for r in rows}
    return TrainingEstimate(**_fields(facts, notes), settings=settings, rows=rows, fits_on=fits_on, fit=fit)


def _capability(target: Target | None) -> tuple[int, int] | None:
    """The compute capability of the catalogue card a verdict is asked about (None without one)."""
    if target is None or target.key is None:
        return None
    from hubmem.fit.gpus import find_gpu

    return find_gpu(target.key).compute_capability


def _bf16_row(
    rows: tuple[memory.InferenceRow, ...],
    arch: Architecture,
    counts: CheckpointCounts,
    settings: memory.InferenceSettings,
) -> memory.InferenceRow:
    """The 16-bit row: what transformers loads an FP8 / MXFP4 row as on a GPU without it."""
    return next((r for r in rows if r.precision == "bf16"), None) or memory.inference_row(
        arch, counts, "bf16", settings
    )


def _fields(facts: ModelFacts, notes: list[str], **changes: Any) -> dict[str, Any]:
    return {
        **{f.name: getattr(facts, f.name) for f in fields(ModelFacts)},
        "warnings": tuple(notes),
        **changes,
    }


def _state_16bit(arch: Architecture, settings: memory.InferenceSettings) -> int:
    """The SSM state per sequence at 16-bit compute (the summary's figure), with the settings' state dtype."""
    return memory.state_bytes_per_sequence(arch, *memory.state_element_bytes(settings, "bf16"))


def _model_facts(
    snapshot: hub.RepoSnapshot, parameters: int | None, seq_len: int | None
) -> tuple[ModelFacts, list[str]]:
    """What the repo is, whatever the job: architecture, exact (or estimated) counts, the download, the
    sequence length; and the warnings so far."""
    warnings = list(snapshot.notes)
    arch = arch_mod.parse_architecture(snapshot.config)
    if snapshot.headers:
        counts = count_tensors(snapshot.headers, snapshot.config)
        arch = arch_mod.refine_with_counts(arch, counts.by_component.get("mlp"))
        if arch.moe is not None and not counts.routed_expert_params:
            warnings.append(
                f"config.json describes {arch.moe.num_experts} experts but no routed-expert tensors "
                "('.experts.' in the name) were found; active parameters not computed"
            )
    else:
        counts = estimate_counts(arch)
        warnings.append(
            f"no safetensors weights in '{snapshot.repo_id}' (found: {_found_weights(snapshot)}); "
            "parameters estimated from config.json, not exact"
        )
    params_source = "checkpoint" if counts.exact else "config.json"
    if parameters is not None:
        counts = with_parameters(counts, parameters)
        params_source = "option"
        warnings.append(f"parameter count set by --params to {parameters:,}; dimensions from config.json")

    if seq_len is not None:
        seq_source = "option"
        if arch.max_context and seq_len > arch.max_context:
            warnings.append(f"--seq-len {seq_len:,} exceeds the model's max context {arch.max_context:,}")
    elif arch.max_context:
        seq_len, seq_source = arch.max_context, "model max context"
    else:
        seq_len, seq_source = FALLBACK_SEQ_LEN, "fallback"
        warnings.append(f"config.json gives no max context; assuming --seq-len {FALLBACK_SEQ_LEN}")

    moe = arch.moe
    active = None
    if moe is not None and counts.routed_expert_params:
        active = active_parameters(
            counts.parameters - counts.by_component.get("mtp", 0), counts.routed_expert_params, moe
        )
    files = _download_files(snapshot)
    facts = ModelFacts(
        repo_id=snapshot.repo_id,
        revision=snapshot.revision,
        sha=snapshot.sha,
        source=snapshot.source,
        weights_format=snapshot.weights_format,
        architecture=arch,
        counts=counts,
        parameters_source=params_source,
        active_parameters=active,
        weight_files=files,
        download_bytes=sum(size or 0 for size in files.values()),
        stack_split=encoder_decoder_split(snapshot.headers) if arch.encoder and snapshot.headers else {},
        seq_len=seq_len,
        seq_len_source=seq_source,
        warnings=(),
        state_bytes_16bit=_state_16bit(arch, memory.InferenceSettings(seq_len=seq_len)),
        state_label=memory.state_dtype_label(memory.InferenceSettings(seq_len=seq_len), "bf16"),
    )
    return facts, warnings


def with_parameters(counts: CheckpointCounts, parameters: int) -> CheckpointCounts:
    """The counts rescaled to `parameters` (--params): every per-component and Linear figure keeps its
    share, so weights at each precision and the training terms follow the stated total."""
    old = max(counts.parameters, 1)

    def scaled(n: int) -> int:
        return n * parameters // old

    return replace(
        counts,
        parameters=parameters,
        parameter_bytes=scaled(counts.parameter_bytes),
        by_component={k: scaled(v) for k, v in counts.by_component.items()},
        linear_params=scaled(counts.linear_params),
        linear_rows=scaled(counts.linear_rows),
        linear_groups_128=scaled(counts.linear_groups_128),
        linear_blocks_128=scaled(counts.linear_blocks_128),
        linear_blocks_64=scaled(counts.linear_blocks_64),
        routed_expert_params=scaled(counts.routed_expert_params),
        exact=False,
    )


def _encoder_len(arch: Architecture, encoder_len: int | None, seq_len: int) -> tuple[int, str | None]:
    """The encoder length of an encoder-decoder model (0 for decoder-only), and a warning if any."""
    if arch.encoder is None:
        if encoder_len is not None:
            raise InvalidInputError(f"--encoder-len: '{arch.model_type}' is not an encoder-decoder model")
        return 0, None
    if encoder_len is not None:
        limit = arch.encoder.source_len
        # Whisper's and BART's encoders hold a learned position table of `source_len` rows
        # (transformers WhisperEncoder.embed_positions, BartLearnedPositionalEmbedding): no input is
        # longer. T5's positions are relative buckets, so its n_positions is no limit.
        if limit and arch.encoder.source_len_from != "n_positions" and encoder_len > limit:
            raise InvalidInputError(
                f"--encoder-len {encoder_len:,} exceeds {arch.model_type}'s {arch.encoder.source_len_from} "
                f"{limit:,} (a learned position table: the encoder takes no more)"
            )
        return encoder_len, None
    if arch.encoder.source_len:
        return arch.encoder.source_len, None
    return seq_len, f"config.json gives no encoder length; assuming --encoder-len {seq_len} (= --seq-len)"


def _is_stored_distinct(counts: CheckpointCounts) -> bool:
    """Show an 'as stored' row when the checkpoint is not plainly fp32 or 16-bit (quantized, mixed)."""
    if not counts.exact:
        return False
    return counts.stored_bytes not in (
        memory.weight_bytes(counts, "fp32"),
        memory.weight_bytes(counts, "bf16"),
    )


def _found_weights(snapshot: hub.RepoSnapshot) -> str:
    files = snapshot.weight_files()
    if not files:
        return "no weight files"
    shown = sorted(files)[:3]
    more = f", … {len(files) - 3} more" if len(files) > 3 else ""
    return ", ".join(shown) + more


def _download_files(snapshot: hub.RepoSnapshot) -> dict[str, int | None]:
    """The weight files a safetensors download would pull (the set whose headers were read)."""
    if snapshot.headers:
        names = set(snapshot.headers)
        if hub.INDEX_FILE in snapshot.files:
            names.add(hub.INDEX_FILE)
        return {n: snapshot.files.get(n) for n in sorted(names)}
    return dict(sorted(hub.unreadable_weight_files(snapshot.files, snapshot.weights_format).items()))
