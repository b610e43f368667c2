"""The GGUF pipeline: a snapshot's header records -> one model per quant file (hubmem.model.gguf) ->
llama.cpp's plan for each (hubmem.runtimes.llamacpp) -> verdicts and reverse solves. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from hubmem.errors import InvalidInputError
from hubmem.fit.verdicts import Target
from hubmem.model.gguf.arch import GGUFModel, model_from_records
from hubmem.model.gguf.files import group_files
from hubmem.runtimes import llamacpp
from hubmem.runtimes.llamacpp import LlamaCppOptions, LlamaCppPlan

# option name (API keyword) -> the llama.cpp flag it mirrors, for messages
FLAGS = {
    "ctx_size": "-c/--ctx-size", "parallel": "-np/--parallel", "n_gpu_layers": "-ngl/--n-gpu-layers",
    "cache_type_k": "-ctk/--cache-type-k", "cache_type_v": "-ctv/--cache-type-v", "flash_attn": "-fa/--flash-attn",
    "ubatch_size": "-ub/--ubatch-size", "batch_size": "-b/--batch-size", "swa_full": "--swa-full",
    "no_kv_offload": "-nkvo/--no-kv-offload", "tensor_split": "-ts/--tensor-split", "mmap": "--no-mmap",
    "kv_unified": "-kvu/--kv-unified", "quant": "--quant", "runtime": "--runtime", "fit": "-fit/--fit",
    "fit_target": "-fitt/--fit-target", "fit_ctx": "-fitc/--fit-ctx", "reserve_outputs": "--reserve-outputs",
    "kq_mask": "--kq-mask", "ngl_output": "--ngl-output",
}  # fmt: skip
GGUF_KEYS = frozenset(FLAGS)

# Ollama's defaults, versions 0.6 to 0.12 (ollama/ollama envconfig/config.go: `ContextLength =
# Uint("OLLAMA_CONTEXT_LENGTH", 4096)`, `NumParallel = Uint("OLLAMA_NUM_PARALLEL", 1)`, `KvCacheType =
# String("OLLAMA_KV_CACHE_TYPE")` (empty = f16), `FlashAttention = Bool("OLLAMA_FLASH_ATTENTION")`
# (off); api/types.go DefaultOptions NumBatch 512, passed as both n_batch and n_ubatch; num_gpu -1:
# every layer that fits). Earlier versions defaulted to 2048 tokens; later ones (ContextLength 0)
# pick 4k/32k/256k by VRAM: pass -c for those. Ollama users never type llama.cpp flags.
OLLAMA = LlamaCppOptions(
    ctx_size=4096, parallel=1, cache_type_k="f16", cache_type_v="f16", flash_attn="off",
    ubatch_size=512, batch_size=512, preset="ollama", fit=False,  # Ollama places layers itself (llm/memory.go)
)  # fmt: skip
RUNTIMES = ("llama.cpp", "ollama")


def gguf_options(given: dict[str, Any]) -> tuple[LlamaCppOptions, str | None]:
    """(llama.cpp options, --quant) from plain values; unknown keys are the caller's."""
    given = dict(given)
    quant = given.pop("quant", None)
    runtime = given.pop("runtime", None) or "llama.cpp"
    if runtime not in RUNTIMES:
        raise InvalidInputError(f"--runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    base = OLLAMA if runtime == "ollama" else LlamaCppOptions()
    if "tensor_split" in given:
        given["tensor_split"] = _split(given["tensor_split"])
    if "fit" in given:
        value = given["fit"]
        if value not in ("on", "off", True, False):
            raise InvalidInputError(f"--fit must be on or off, not {value!r}")
        given["fit"] = value in ("on", True)
    if "fit_target" in given:  # llama.cpp -fitt takes MiB
        value = given["fit_target"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1 << 30:
            raise InvalidInputError(f"--fit-target takes MiB (a whole number), not {value!r}")
        given["fit_target"] = value * 1024**2
    if "overhead" in given:
        from hubmem.jobs.options import memory_bytes

        given["overhead"] = memory_bytes(given["overhead"], "--overhead")
    opts = replace(base, **given)
    if quant is not None and (not isinstance(quant, str) or not quant.strip()):
        raise InvalidInputError(f"--quant takes a quantization name such as Q4_K_M, not {quant!r}")
    return opts.checked(), quant


def _split(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            return tuple(float(x) for x in value.replace("/", ",").split(",") if x.strip())
        except ValueError as e:
            raise InvalidInputError(f"--tensor-split takes fractions such as 3,1, not {value!r}") from e
    if isinstance(value, list | tuple):
        return tuple(float(x) for x in value)
    raise InvalidInputError(f"--tensor-split takes fractions such as 3,1, not {value!r}")


@dataclass(frozen=True)
class GGUFRow:
    model: GGUFModel
    plan: LlamaCppPlan
    fits: bool | None = None  # on the target, as planned
    max_gpu_layers: int | None = None  # largest -ngl that fits the target
    max_ctx_size: int | None = None  # largest -c that fits the target at the plan's -ngl
    fit_notes: tuple[str, ...] = ()  # what llama.cpp's --fit changed for this file on the target

    @property
    def label(self) -> str:
        return self.model.quant

    def to_dict(self) -> dict[str, Any]:
        m, p = self.model, self.plan
        return {
            "quant": m.quant,
            "files": list(m.paths),
            "file_bytes": m.file_bytes,
            "parameters": m.parameters,
            "active_parameters": m.active_parameters,
            "bits_per_weight": round(m.bits_per_weight, 4),
            "weights_bytes": m.tensor_bytes,
            "bytes_by_type": m.bytes_by_type,
            "params_by_type": m.params_by_type,
            "tensors_by_type": m.tensors_by_type,
            "repeating_parameters": m.repeating_parameters,
            "projector": None if m.projector is None else {"file": m.projector[0], "bytes": m.projector[1]},
            "n_ctx": p.n_ctx,
            "n_gpu_layers": p.n_gpu_layers,
            "kv_bytes": p.kv_bytes,
            "k_bytes": p.k_bytes,
            "v_bytes": p.v_bytes,
            "state_bytes": p.state_bytes,
            "vram_bytes": p.vram,
            "gpus": [_device(d) for d in p.gpus],
            "host": _device(p.host),
            "host_ram_bytes": p.host.total,
            "fits": self.fits,
            "max_gpu_layers": self.max_gpu_layers,
            "max_ctx_size": self.max_ctx_size,
            "fit": list(self.fit_notes),
            "requests": m.requests,
            "bytes_read": m.bytes_read,
        }


def _device(d: llamacpp.Device) -> dict[str, Any]:
    return {
        "name": d.name, "weights": d.weights, "kv": d.kv, "state": d.state, "compute": d.compute,
        "overhead": d.overhead, "total": d.total, "layers": len(d.layers), "output_layer": d.output,
    }  # fmt: skip


@dataclass(frozen=True)
class GGUFEstimate:
    repo_id: str
    revision: str | None
    sha: str | None
    source: str
    options: LlamaCppOptions
    rows: tuple[GGUFRow, ...]
    projectors: tuple[str, ...] = ()
    target: Target | None = None
    num_gpus: int = 1
    best: str | None = None  # the largest quant that fits the target fully offloaded
    warnings: tuple[str, ...] = ()
    weights_format: str = "gguf"
    terms: list[tuple[str, str]] = field(default_factory=list)

    def row(self, quant: str) -> GGUFRow:
        for r in self.rows:
            if r.model.quant.lower() == quant.lower():
                return r
        raise KeyError(quant)

    @property
    def requests(self) -> int:
        return sum(r.model.requests for r in self.rows)

    @property
    def bytes_read(self) -> int:
        return sum(r.model.bytes_read for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        first = self.rows[0].model if self.rows else None
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "sha": self.sha,
            "source": self.source,
            "weights_format": "gguf",
            "runtime": self.options.preset,
            "architecture": None if first is None else first.architecture.to_dict(),
            "gguf_architecture": None if first is None else first.gguf_arch,
            "options": {
                "ctx_size": self.options.ctx_size,
                "parallel": self.options.parallel,
                "n_gpu_layers": self.options.n_gpu_layers,
                "cache_type_k": self.options.cache_type_k,
                "cache_type_v": self.options.cache_type_v,
                "flash_attn": self.options.flash_attn,
                "ubatch_size": self.options.ubatch_size,
                "batch_size": self.options.batch_size,
                "swa_full": self.options.swa_full,
                "no_kv_offload": self.options.no_kv_offload,
                "tensor_split": list(self.options.tensor_split),
                "mmap": self.options.mmap,
                "kv_unified": self.options.kv_unified,
                "reserve_outputs": self.options.reserve_outputs,
                "kq_mask": self.options.kq_mask,
                "ngl_output": self.options.ngl_output,
                "overhead": self.options.overhead,
                "fit": self.options.fit,
                "fit_target": self.options.fit_target,
                "fit_ctx": self.options.fit_ctx,
            },  # fmt: skip
            "target": None
            if self.target is None
            else {
                "name": self.target.name,
                "usable_bytes": self.target.usable_bytes,
                "count": self.target.count,
            },
            "best": self.best,
            "rows": [r.to_dict() for r in self.rows],
            "projectors": list(self.projectors),
            "requests": self.requests,
            "bytes_read": self.bytes_read,
            "warnings": list(self.warnings),
        }


def models_of(records: dict[str, dict[str, Any]]) -> tuple[list[GGUFModel], list[str]]:
    """The models (one per quant file or split set) and projector paths of a snapshot's GGUF records."""
    groups, projectors = group_files(list(records))
    proj = (projectors[0].first, records[projectors[0].first]) if projectors else None
    models = [
        model_from_records(g.quant, [(p, records[p]) for p in g.paths if p in records], proj) for g in groups
    ]
    return models, [g.first for g in projectors]


def pick(models: list[GGUFModel], quant: str | None) -> list[GGUFModel]:
    if quant is None:
        return models
    wanted = quant.strip().lower()
    chosen = [m for m in models if m.quant.lower() == wanted or any(p.lower() == wanted for p in m.paths)]
    if not chosen:
        names = ", ".join(m.quant for m in models) or "none"
        raise InvalidInputError(f"--quant {quant}: no such GGUF file in the repo (quants: {names})")
    return chosen


def gguf_estimate(
    snapshot: Any, options: LlamaCppOptions, quant: str | None = None, target: Target | None = None
) -> GGUFEstimate:
    models, projectors = models_of(snapshot.gguf)
    chosen = pick(models, quant)
    n = target.count if target is not None else 1
    rows = []
    for m in chosen:
        if target is None:
            rows.append(GGUFRow(m, llamacpp.plan(m, options, n)))
            continue
        usable = target.usable_bytes
        fitted = llamacpp.fit(m, options, usable, n)  # llama.cpp's --fit on this target (off: unchanged)
        p = llamacpp.plan(m, fitted.options, n)
        fits = all(d.total <= usable for d in p.gpus)
        rows.append(
            GGUFRow(
                m, p, fits,
                llamacpp.max_gpu_layers(m, options, usable, n),
                llamacpp.max_context(m, options, usable, n),
                fitted.notes,
            )
        )  # fmt: skip
    best = None
    if target is not None:
        fitting = [r for r in rows if r.fits and r.plan.n_gpu_layers > r.model.architecture.num_layers]
        if fitting:
            best = max(fitting, key=lambda r: r.model.tensor_bytes).model.quant
    warnings = list(snapshot.notes)
    if options.flash_attn == "auto":
        warnings.append("-fa auto: taken as on (llama.cpp turns it on where the GPU backend supports it)")
    terms = rows[0].plan.terms if rows else []
    return GGUFEstimate(
        snapshot.repo_id, snapshot.revision, snapshot.sha, snapshot.source, options, tuple(rows),
        tuple(projectors), target, n, best, tuple(warnings), terms=terms,
    )  # fmt: skip


@dataclass(frozen=True)
class GGUFCheckResult:
    """`hubmem check` on a GGUF repo: one quant file judged (--quant, else the best that fits, else the
    smallest), and the disk for that file alone (its split parts and attached mmproj: what
    `llama-server -hf REPO:QUANT` pulls), never the repo's other quant files."""

    estimate: GGUFEstimate
    row: GGUFRow
    disk: Any  # hubmem.hub.disk.DiskPlan
    outcome: type[Exception] | None

    @property
    def ready(self) -> bool:
        return self.outcome is None

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome is None else int(getattr(self.outcome, "exit_code", 1))

    @property
    def outcome_text(self) -> str:
        if self.outcome is None:
            return "ready to pull"
        return (
            "will not fit on the GPUs"
            if self.outcome.__name__ == "WillNotFitError"
            else "fits, but not enough disk for the download"
        )

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "repo_id": est.repo_id, "revision": est.revision, "sha": est.sha, "ready": self.ready,
            "outcome": self.outcome_text, "exit_code": self.exit_code, "quant": self.row.model.quant,
            "fit": self.row.to_dict(), "disk": self.disk.to_dict(), "options": est.to_dict()["options"],
        }  # fmt: skip


def gguf_check(
    snapshot: Any, options: LlamaCppOptions, quant: str | None, target: Target, cache_dir: str | None = None
) -> GGUFCheckResult:
    import os

    from hubmem import errors
    from hubmem.hub import disk

    est = gguf_estimate(snapshot, options, quant, target)
    row = judged_row(est, quant)
    where = disk.cache_dir(cache_dir)
    if os.path.exists(where) and not os.path.isdir(where):
        raise errors.InvalidInputError(f"--cache-dir '{where}' is not a folder")
    paths = list(row.model.paths) + ([row.model.projector[0]] if row.model.projector else [])
    files = {p: int(snapshot.files.get(p) or 0) for p in paths} if est.source != "local" else {}
    plan = disk.plan_download(est.repo_id, est.sha, files, where)
    outcome = (
        errors.WillNotFitError if not row.fits else errors.NotEnoughDiskError if not plan.enough else None
    )
    return GGUFCheckResult(est, row, plan, outcome)


def judged_row(est: GGUFEstimate, quant: str | None) -> GGUFRow:
    """The quant file a one-row job judges: --quant, else the largest that fits the target, else (no
    target) Q4_K_M, the common default of llama.cpp users (`llama-server -hf REPO` picks it), else the smallest."""
    if quant is not None or len(est.rows) == 1:
        return est.rows[0]
    if est.best is not None:
        return est.row(est.best)
    if est.target is None and any(r.model.quant == "Q4_K_M" for r in est.rows):
        return est.row("Q4_K_M")
    return min(est.rows, key=lambda r: r.model.tensor_bytes)


def gguf_audit_row(
    ref: str, snapshot: Any, options: LlamaCppOptions, quant: str | None, target: Target | None
) -> Any:
    """The audit rows of a GGUF repo: one per quant file (the first row carries the others in `more`,
    each named `REF:QUANT`, the syntax that picks that file), or the chosen file alone with --quant; in
    the audit's columns (precision = the quant, context = -c, total = VRAM on the fullest GPU, download =
    that file)."""
    from hubmem import errors
    from hubmem.jobs.audit import _error_row

    try:
        est = gguf_estimate(snapshot, options, quant, target)
        rows = [
            _audit_values(ref if len(est.rows) == 1 else f"{ref}:{r.model.quant}", est, r) for r in est.rows
        ]
        return replace(rows[0], more=tuple(rows[1:]))
    except errors.HubmemError as e:
        return _error_row(ref, e)
    except Exception as e:  # a bug on one repo must not sink the batch
        return _error_row(ref, errors.InternalError.of(e))


def _audit_values(ref: str, est: GGUFEstimate, row: GGUFRow) -> Any:
    from hubmem.jobs.audit import COLUMNS, AuditRow

    m, p = row.model, row.plan
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    values.update(
        repo=ref, sha=est.sha, params=m.parameters, active_params=m.active_parameters, exact=True,
        dtype=m.quant, context=p.n_ctx, precision=m.quant, weights=m.tensor_bytes, total=p.vram,
        kv_per_token=p.kv_bytes // p.n_ctx if p.n_ctx else 0,
        fits_on="-" if row.fits is None else ("yes" if row.fits else "no"),
        fits=row.fits, max_seq_len=row.max_ctx_size,
        download=m.file_bytes,
        status="ok", exit_code=0,
    )  # fmt: skip
    return AuditRow(ref, est, m.quant, None, values=values)  # type: ignore[arg-type]
