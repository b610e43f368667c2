"""`hubmem diff A B`: what changed between two repos, or one repo at two revisions — parameters per dtype
and per component, architecture fields, memory per precision, download size. Pure: it compares two
estimates made with the same options (hubmem.api.diff fetches them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hubmem.jobs.results import InferenceEstimate

SECTIONS = ("repo", "parameters", "architecture", "memory")


@dataclass(frozen=True)
class DiffLine:
    section: str  # one of SECTIONS
    field: str  # e.g. "dtype BF16", "component mlp", "hidden_size", "bf16 total"
    a: Any  # None: A has no such field
    b: Any
    kind: str = "value"  # "count" (an integer count), "bytes" (a byte count) or "value"

    @property
    def changed(self) -> bool:
        return self.a != self.b

    @property
    def delta(self) -> int | None:
        """B - A for counts and bytes present on both sides (a field one side lacks counts as 0)."""
        if self.kind == "value":
            return None
        return (self.b or 0) - (self.a or 0)

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "field": self.field, "a": self.a, "b": self.b, "delta": self.delta}


@dataclass(frozen=True)
class DiffResult:
    a: InferenceEstimate
    b: InferenceEstimate
    a_ref: str
    b_ref: str
    lines: tuple[DiffLine, ...]

    @property
    def changes(self) -> tuple[DiffLine, ...]:
        return tuple(line for line in self.lines if line.changed)

    @property
    def same(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": {"ref": self.a_ref, "repo_id": self.a.repo_id, "sha": self.a.sha},
            "b": {"ref": self.b_ref, "repo_id": self.b.repo_id, "sha": self.b.sha},
            "same": self.same,
            "changes": [line.to_dict() for line in self.changes],
        }


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Nested dicts as dotted keys (moe.num_experts); lists and tuples as JSON text."""
    if isinstance(value, dict):
        for key in value:
            _flat(f"{prefix}.{key}" if prefix else str(key), value[key], out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value)
    else:
        out[prefix] = value


def _pairs(section: str, a: dict[str, Any], b: dict[str, Any], kind: str, label: str = "") -> list[DiffLine]:
    keys = list(a) + [k for k in b if k not in a]
    return [DiffLine(section, f"{label}{k}", a.get(k), b.get(k), kind) for k in keys]


def diff_estimates(a: InferenceEstimate, b: InferenceEstimate, a_ref: str, b_ref: str) -> DiffResult:
    lines: list[DiffLine] = [
        DiffLine("repo", "repo", a.repo_id, b.repo_id),
        DiffLine("repo", "sha", a.sha, b.sha),
        DiffLine("repo", "weights format", a.weights_format, b.weights_format),
        DiffLine("repo", "download", a.download_bytes, b.download_bytes, "bytes"),
        DiffLine("repo", "weight files", len(a.weight_files), len(b.weight_files), "count"),
    ]
    ca, cb = a.counts, b.counts
    lines += [
        DiffLine("parameters", "total", ca.parameters, cb.parameters, "count"),
        DiffLine("parameters", "active", a.active_parameters, b.active_parameters, "count"),
        DiffLine("parameters", "exact", ca.exact, cb.exact),
        DiffLine("parameters", "tensors", ca.tensors, cb.tensors, "count"),
    ]
    lines += _pairs("parameters", ca.stored_by_dtype, cb.stored_by_dtype, "count", "dtype ")
    lines += _pairs("parameters", ca.by_component, cb.by_component, "count", "component ")
    lines += [
        DiffLine("parameters", "buffers", ca.buffers, cb.buffers, "count"),
        DiffLine(
            "parameters", "quantization metadata", ca.quant_metadata_bytes, cb.quant_metadata_bytes, "bytes"
        ),
    ]
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    _flat("", a.architecture.to_dict(), fa)
    _flat("", b.architecture.to_dict(), fb)
    for name in (
        "layer_types",
        "normalised_by",
    ):  # attention_pattern says the first in words; the second is provenance
        fa.pop(name, None)
        fb.pop(name, None)
    lines += _pairs("architecture", fa, fb, "value")
    rows_a = {r.precision: r for r in a.rows}
    rows_b = {r.precision: r for r in b.rows}
    for precision in list(rows_a) + [p for p in rows_b if p not in rows_a]:
        ra, rb = rows_a.get(precision), rows_b.get(precision)
        label = (ra or rb).label  # type: ignore[union-attr]
        for part in ("weights", "kv_cache", "activations", "overhead", "total"):
            lines.append(
                DiffLine(
                    "memory",
                    f"{label} {part.replace('_', ' ')}",
                    getattr(ra, part) if ra else None,
                    getattr(rb, part) if rb else None,
                    "bytes",
                )
            )
    return DiffResult(a, b, a_ref, b_ref, tuple(lines))
