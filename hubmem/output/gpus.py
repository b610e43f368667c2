"""`hubmem gpus`: the GPU catalogue as a table or raw records."""

from __future__ import annotations

from typing import Any

from hubmem.output.tables import render_rows
from hubmem.units import UNITS


def render_gpus(fmt: str = "table", units: str = "GiB") -> str:
    """`hubmem gpus`: the catalogue, raw bytes for json/jsonl/csv, humanised for table/markdown."""
    from hubmem.fit.gpus import CATALOGUE

    if fmt in ("json", "jsonl", "csv"):
        headers = [
            "key",
            "name",
            "memory_bytes",
            "usable_bytes",
            "vendor",
            "aliases",
            "source",
            "usable_source",
            "compute_capability",
            "supports",
        ]
        data: list[list[Any]] = [
            [
                g.key,
                g.name,
                g.memory_bytes,
                g.usable_bytes,
                g.vendor,
                " ".join(g.aliases),
                g.source,
                g.usable_source,
                g.to_dict()["compute_capability"] or "",
                " ".join(f for f in ("bf16", "fp8", "fp4") if g.supports(f)),
            ]
            for g in CATALOGUE
        ]
        return render_rows(headers, data, fmt)
    headers = ["key", "name", f"memory {units}", f"usable {units}", "compute", "vendor", "aliases", "source"]
    data = [
        [
            g.key,
            g.name,
            f"{g.memory_bytes / UNITS[units]:,.1f}",
            f"{g.usable_bytes / UNITS[units]:,.2f}",
            g.capability_label,
            g.vendor,
            ", ".join(g.aliases),
            g.source,
        ]
        for g in CATALOGUE
    ]
    return render_rows(headers, data, fmt, numeric=(2, 3))
