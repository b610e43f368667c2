"""Text output shared by every view: byte counts humanised with an explicit unit (GiB = 1024³
bytes, GB = 10⁹ bytes), one tabular renderer for every format, JSON documents, verdict cells.
Bytes stay integers until here."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hubmem.fit.verdicts import Verdict
from hubmem.units import UNITS

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


def signed(n: int, units: str) -> str:
    return ("+" if n >= 0 else "-") + human(abs(n), units)


def seq_limit(limit: int | None, max_context: int | None) -> str:
    """A reverse-solved sequence length, capped at the model's own max context (said so)."""
    if limit is None:
        return "n/a"
    if max_context and limit >= max_context:
        return f"{max_context:,} (model max)"
    return f"{limit:,}"


def headroom_text(v: Verdict, units: str = "GiB") -> str:
    """'+62.59 GiB free' / '3.20 GiB short (needs 2)'."""
    if v.fits:
        return f"{signed(v.headroom, units)} {units} free"
    need = f"needs {v.gpus_needed}" if v.gpus_needed else "not on any number of them"
    return f"{human(-v.headroom, units)} {units} short ({need})"


def fit_cell(v: Verdict, units: str = "GiB") -> str:
    return ("yes, " if v.fits else "no, ") + headroom_text(v, units)


def document(data: object, fmt: str) -> str:
    """A result's `to_dict()` as --format json (indented) or jsonl (one line)."""
    return json.dumps(data, indent=2 if fmt == "json" else None) + "\n"
