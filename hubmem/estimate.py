"""The pipeline: hub -> checkpoint / architecture -> memory. `estimate()` is the Python API the CLI renders."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from . import architecture as arch_mod
from . import hub, memory
from .architecture import Architecture
from .checkpoint import CheckpointCounts, count_tensors
from .errors import InvalidInputError
from .estimated import estimate_counts
from .gpus import fit_label
from .moe import active_parameters

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

    @property
    def download_bytes(self) -> int:
        return sum(size or 0 for size in self.weight_files.values())

    @property
    def active_parameters(self) -> int | None:
        """Parameters one token uses (MoE models; MTP modules left out), else None (hubmem.moe)."""
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
                    self.architecture, memory.kv_element_bytes(self.settings, r.precision)
                )
                for r in self.rows
            },
            "rows": [{**r.to_dict(), "fits_on": self.fits_on[r.precision]} for r in self.rows],
            "weight_files": self.weight_files,
            "download_bytes": self.download_bytes,
            "warnings": list(self.warnings),
        }


def normalise_precision(name: str) -> str:
    key = {
        "fp16": "bf16",
        "float16": "bf16",
        "bfloat16": "bf16",
        "float32": "fp32",
        "as-stored": "stored",
    }.get(name.lower(), name.lower())
    if key not in memory.PRECISIONS:
        raise InvalidInputError(f"unknown precision '{name}' (choose from {', '.join(memory.PRECISIONS)})")
    return key


def estimate(
    repo: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    timeout: float = hub.DEFAULT_TIMEOUT,
    **options: Any,
) -> Estimate:
    """Fetch a repo's metadata and estimate inference memory at each precision. Raises HubmemError.

    `options` are those of `estimate_snapshot` (seq_len, batch, kv_dtype, attn, overhead_bytes,
    precisions, all_logits, serving_factor).
    """
    # transformers' config import (~1.7 s) overlaps the network round trips.
    threading.Thread(target=_quiet_warm_up, daemon=True).start()
    snapshot = hub.fetch(repo, revision=revision, token=token, timeout=timeout)
    return estimate_snapshot(snapshot, **options)


def _quiet_warm_up() -> None:
    try:
        arch_mod.warm_up()
    except Exception:  # the real import happens again (and reports) when it is needed
        pass


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
) -> Estimate:
    """The memory estimate for metadata already fetched (pure: no network)."""
    if batch < 1:
        raise InvalidInputError("--batch must be at least 1")
    if attn not in ("sdpa", "eager"):
        raise InvalidInputError(f"unknown attention implementation '{attn}' (sdpa or eager)")
    if kv_dtype != "auto" and kv_dtype not in memory.DTYPE_BYTES:
        raise InvalidInputError(
            f"unknown KV cache dtype '{kv_dtype}' (auto, {', '.join(memory.DTYPE_BYTES)})"
        )
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

    settings = memory.InferenceSettings(
        seq_len=seq_len,
        batch=batch,
        kv_dtype=kv_dtype,
        attn=attn,
        overhead_bytes=overhead_bytes,
        all_logits=all_logits,
        serving_factor=serving_factor,
    )
    keys = [normalise_precision(p) for p in precisions] if precisions else list(memory.DEFAULT_PRECISIONS)
    if not precisions and _is_stored_distinct(counts):
        keys.append("stored")
    keys = list(dict.fromkeys(keys))
    rows = [memory.inference_row(arch, counts, key, settings) for key in keys]
    fits = {r.precision: fit_label(r.total, r.overhead) for r in rows}
    weight_files = _download_files(snapshot)
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
        weight_files=weight_files,
        seq_len_source=seq_source,
        warnings=warnings,
    )


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
