"""The pipeline: hub -> checkpoint / architecture -> memory. `estimate()` is the Python API the CLI renders."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from hubmem import dtypes
from hubmem.errors import HubmemError, InvalidInputError
from hubmem.fit.gpus import COMMON, MULTI_GPU_REFERENCE, find_gpu, smallest_fitting
from hubmem.fit.verdicts import fits_on_label
from hubmem.hub import fetch as hub
from hubmem.memory import inference as memory
from hubmem.memory import training
from hubmem.model import architecture as arch_mod
from hubmem.model.architecture import Architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.moe import active_parameters
from hubmem.model.tensors import CheckpointCounts, count_tensors, encoder_decoder_split

FALLBACK_SEQ_LEN = 2048


@dataclass
class Estimate:
    repo_id: str
    revision: str | None
    sha: str | None
    source: str  # hub | cache | local
    weights_format: str  # safetensors | pytorch | gguf | none
    architecture: Architecture
    counts: CheckpointCounts
    settings: memory.InferenceSettings
    rows: list[memory.InferenceRow]
    fits_on: dict[str, str]  # precision -> smallest GPU (or N× GPU) that holds the total
    weight_files: dict[str, int | None]  # files a download would pull, with sizes
    seq_len_source: str  # "option", "model max context", "fallback"
    warnings: list[str] = field(default_factory=list)
    training_settings: training.TrainingSettings | None = None  # set with --train: rows are then empty
    training_rows: list[training.TrainingRow] = field(default_factory=list)
    parameters_source: str = "checkpoint"  # "checkpoint", "config.json", or "option" (--params)
    # with --train --gpu: per regime {gpu, usable_bytes, fits, headroom_bytes, gpus_needed}
    training_fit: dict[str, dict] = field(default_factory=dict)
    # encoder-decoder: parameters of the encoder, the decoder and what they share
    stack_split: dict[str, int] = field(default_factory=dict)

    @property
    def download_bytes(self) -> int:
        return sum(size or 0 for size in self.weight_files.values())

    @property
    def active_parameters(self) -> int | None:
        """Parameters one token uses (MoE models; MTP modules left out), else None (hubmem.model.moe)."""
        moe, c = self.architecture.moe, self.counts
        if moe is None or not c.routed_expert_params:
            return None
        return active_parameters(c.parameters - c.by_component.get("mtp", 0), c.routed_expert_params, moe)

    def row(self, precision: str) -> memory.InferenceRow:
        return next(r for r in self.rows if r.precision == precision)

    def to_dict(self) -> dict:
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "sha": self.sha,
            "source": self.source,
            "weights_format": self.weights_format,
            "architecture": self.architecture.to_dict(),
            "parameters": {**self.counts.to_dict(), "active": self.active_parameters},
            "settings": {**self.settings.to_dict(), "seq_len_source": self.seq_len_source},
            "kv_bytes_per_token": {
                r.precision: memory.kv_bytes_per_token(
                    self.architecture,
                    memory.kv_element_bytes(self.settings, r.precision),
                    memory.kv_format(self.settings),
                )
                for r in self.rows
            },
            "state_bytes_per_sequence": {
                r.precision: memory.state_bytes_per_sequence(
                    self.architecture, *memory.state_element_bytes(self.settings, r.precision)
                )
                for r in self.rows
            },
            "rows": [{**r.to_dict(), "fits_on": self.fits_on[r.precision]} for r in self.rows],
            "weight_files": self.weight_files,
            "download_bytes": self.download_bytes,
            "warnings": list(self.warnings),
            "stack_split": dict(self.stack_split),
            **({"training": self.training_dict()} if self.training_settings else {}),
        }

    def training_dict(self) -> dict:
        assert self.training_settings is not None
        return {
            "settings": {**self.training_settings.to_dict(), "seq_len": self.settings.seq_len},
            "parameters_source": self.parameters_source,
            "rows": [{**r.to_dict(), "fits_on": self.fits_on[r.regime]} for r in self.training_rows],
            **({"fit": self.training_fit} if self.training_fit else {}),
        }


def normalise_precision(name: str) -> str:
    key = dtypes.PRECISION_ALIASES.get(name.lower(), name.lower())
    if key not in memory.PRECISIONS:
        raise InvalidInputError(f"unknown precision '{name}' (choose from {', '.join(memory.PRECISIONS)})")
    return key


def estimate(
    repo: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = hub.DEFAULT_TIMEOUT,
    fetch_beside: bool = False,
    **options: Any,
) -> Estimate:
    """Fetch a repo's metadata and estimate inference memory at each precision. Raises HubmemError.

    `options` are those of `estimate_snapshot` (seq_len, batch, kv_dtype, attn, overhead_bytes,
    precisions, all_logits, serving_factor). `fetch_beside` (the CLI): fetch in a forked helper
    process where hubmem.hub.batch finds one pays, so that parsing a large checkpoint's headers and
    huggingface_hub's import run on another core than transformers' import.
    """
    if not fetch_beside:
        start_warm_up()
        return estimate_snapshot(hub.fetch(repo, revision=revision, token=token, timeout=timeout), **options)
    from hubmem.hub import batch

    def fetch(ref: str) -> hub.RepoSnapshot:
        return hub.fetch(ref, revision=revision, token=token, timeout=timeout)

    stream = batch.outcomes([repo], fetch, jobs=1, overlap=True)  # forks first: no thread may run before it
    start_warm_up()
    ((_, fetched),) = list(stream)
    if isinstance(fetched, HubmemError):
        raise fetched
    return estimate_snapshot(fetched, **options)


def start_warm_up() -> None:
    """Import transformers' config machinery (~1.7 s) in a background thread, so that it overlaps the
    network round trips of `hub.fetch` (one call serves a whole audit)."""

    def quiet() -> None:
        try:
            arch_mod.warm_up()
        except Exception:  # the real import happens again (and reports) when it is needed
            pass

    threading.Thread(target=quiet, daemon=True).start()


def estimate_snapshot(
    snapshot: hub.RepoSnapshot,
    *,
    seq_len: int | None = None,
    batch: int = 1,
    kv_dtype: str = "auto",
    attn: str = "sdpa",
    overhead_bytes: int = memory.DEFAULT_OVERHEAD_BYTES,
    precisions: list[str] | tuple[str, ...] | None = None,
    all_logits: bool = False,
    serving_factor: float | None = None,
    parameters: int | None = None,
    train: training.TrainingSettings | None = None,
    train_gpu: tuple[str, int] | None = None,
    encoder_len: int | None = None,
    image_tokens: int = 0,
    state_dtype: str = "auto",
) -> Estimate:
    """The memory estimate for metadata already fetched (pure: no network).

    `parameters` replaces the parameter count (the seeds' "6B" / "1B" models); `train` switches to
    training rows (hubmem.memory.training) instead of inference rows; `train_gpu` (name, usable bytes per GPU)
    turns their fits-on column into a verdict for that GPU (`--train --gpu`).
    encoder_len: encoder-decoder models only; default the model's natural source length
    (Whisper 1500 frames, T5 512, BART 1024), else the decoder length. image_tokens: tokens per
    image × images, added to the sequence (KV cache, activations) of models with a vision tower.
    state_dtype: dtype of the SSM (temporal) state, as vLLM's --mamba-ssm-cache-dtype.
    """
    if batch < 1:
        raise InvalidInputError("--batch must be at least 1")
    if attn not in ("sdpa", "eager"):
        raise InvalidInputError(f"unknown attention implementation '{attn}' (sdpa or eager)")
    if kv_dtype not in ("auto", dtypes.FP8_DS_MLA) and kv_dtype not in dtypes.DTYPE_BYTES:
        raise InvalidInputError(
            f"unknown KV cache dtype '{kv_dtype}' (auto, {', '.join(dtypes.DTYPE_BYTES)}, {dtypes.FP8_DS_MLA})"
        )
    if state_dtype != "auto" and state_dtype not in dtypes.DTYPE_BYTES:
        raise InvalidInputError(
            f"unknown state dtype '{state_dtype}' (auto, {', '.join(dtypes.DTYPE_BYTES)})"
        )
    if image_tokens < 0:
        raise InvalidInputError("--image-tokens must be at least 0")
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
        found = _found_weights(snapshot)
        warnings.append(
            f"no safetensors weights in '{snapshot.repo_id}' (found: {found}); "
            "parameters estimated from config.json, not exact"
        )

    params_source = "checkpoint" if counts.exact else "config.json"
    if parameters is not None:
        if parameters < 1:
            raise InvalidInputError("--params must be at least 1")
        counts = with_parameters(counts, parameters)
        params_source = "option"
        warnings.append(f"parameter count set by --params to {parameters:,}; dimensions from config.json")

    if seq_len is not None:
        if seq_len < 1:
            raise InvalidInputError("--seq-len must be at least 1")
        seq_source = "option"
        if arch.max_context and seq_len > arch.max_context:
            warnings.append(f"--seq-len {seq_len:,} exceeds the model's max context {arch.max_context:,}")
    elif arch.max_context:
        seq_len, seq_source = arch.max_context, "model max context"
    else:
        seq_len, seq_source = FALLBACK_SEQ_LEN, "fallback"
        warnings.append(f"config.json gives no max context; assuming --seq-len {FALLBACK_SEQ_LEN}")

    encoder_len, warning = _encoder_len(arch, encoder_len, seq_len)
    warnings += [warning] if warning else []
    if image_tokens and "vision" not in arch.towers:
        raise InvalidInputError(
            f"--image-tokens: '{snapshot.repo_id}' has no vision tower (no vision_config)"
        )

    settings = memory.InferenceSettings(
        seq_len=seq_len,
        batch=batch,
        kv_dtype=kv_dtype,
        attn=attn,
        overhead_bytes=overhead_bytes,
        all_logits=all_logits,
        serving_factor=serving_factor,
        encoder_len=encoder_len,
        image_tokens=image_tokens,
        state_dtype=state_dtype,
    )
    rows: list[memory.InferenceRow] = []
    train_rows: list[training.TrainingRow] = []
    train_fit: dict[str, dict] = {}
    if train is not None:
        if seq_source != "option":
            warnings.append(
                f"training at {seq_len:,} tokens per sequence ({seq_source}); pass --seq-len for your data"
            )
        shape = training.ModelShape(arch, counts, *training.dropout_from_config(snapshot.config))
        train_rows = training.training_rows(shape, seq_len, train)
        if train_gpu is not None:
            train_fit = {r.regime: training_fit(shape, r, seq_len, train, *train_gpu) for r in train_rows}
            fits = {regime: f["label"] for regime, f in train_fit.items()}
        else:
            fits = {r.regime: training_fit_label(shape, r, seq_len, train) for r in train_rows}
    else:
        keys = [normalise_precision(p) for p in precisions] if precisions else list(memory.DEFAULT_PRECISIONS)
        if not precisions and _is_stored_distinct(counts):
            keys.append("stored")
        keys = list(dict.fromkeys(keys))
        rows = [memory.inference_row(arch, counts, key, settings) for key in keys]
        fits = {r.precision: fits_on_label(r, arch, serving_factor is not None) for r in rows}
    return Estimate(
        repo_id=snapshot.repo_id,
        revision=snapshot.revision,
        sha=snapshot.sha,
        source=snapshot.source,
        weights_format=snapshot.weights_format,
        architecture=arch,
        counts=counts,
        settings=settings,
        rows=rows,
        fits_on=fits,
        weight_files=_download_files(snapshot),
        seq_len_source=seq_source,
        warnings=warnings,
        stack_split=encoder_decoder_split(snapshot.headers) if arch.encoder and snapshot.headers else {},
        training_settings=train,
        training_rows=train_rows,
        parameters_source=params_source,
        training_fit=train_fit,
    )


def training_fit_label(
    shape: training.ModelShape, row: training.TrainingRow, seq_len: int, settings: training.TrainingSettings
) -> str:
    """The smallest common GPU that holds the per-GPU total; else how many 80 GB GPUs ZeRO-3 would need."""
    gpu = smallest_fitting(row.total, catalogue=COMMON)
    if gpu is not None:
        return gpu.name
    reference = find_gpu(MULTI_GPU_REFERENCE)
    n = training.replicas_to_fit(shape, row.regime, seq_len, settings, reference.usable_bytes)
    if n is None:
        return "none: activations too large (try --grad-checkpointing, --tp)"
    return f"{n * settings.tp * settings.pp}× {reference.name} with ZeRO-3"


def training_fit(
    shape: training.ModelShape,
    row: training.TrainingRow,
    seq_len: int,
    settings: training.TrainingSettings,
    gpu_name: str,
    usable_bytes: int,
) -> dict:
    """Does this regime's per-GPU total fit the named GPU (`--train --gpu`)? If not, how many such GPUs
    ZeRO-3 would need at the same micro-batch, sequence length, tp and pp (`training.replicas_to_fit`)."""
    fits = row.total <= usable_bytes
    needed = None
    if not fits:
        n = training.replicas_to_fit(shape, row.regime, seq_len, settings, usable_bytes)
        needed = None if n is None else n * settings.tp * settings.pp
    if fits:
        label = f"yes: {settings.world}× {gpu_name}"
    elif needed is None:
        label = f"no: not on any number of {gpu_name} (activations; try --grad-checkpointing, --tp)"
    else:
        label = f"no: {needed}× {gpu_name} with ZeRO-3"
    return {
        "gpu": gpu_name,
        "usable_bytes": usable_bytes,
        "fits": fits,
        "headroom_bytes": usable_bytes - row.total,
        "gpus_needed": settings.world if fits else needed,
        "label": label,
    }


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
        if encoder_len < 1:
            raise InvalidInputError("--encoder-len must be at least 1")
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
