"""`hubmem diff A B`: the changed fields (or with --all every field) of two estimates, one line each."""

from __future__ import annotations

from typing import Any

from hubmem.jobs.diff import DiffLine, DiffResult
from hubmem.output.tables import document, human, render_rows


def _cell(line: DiffLine, value: Any, units: str) -> str:
    if value is None:
        return "-"
    if line.field == "sha":
        return str(value)[:12]
    if line.kind == "bytes":
        return f"{human(value, units)} {units}"
    if line.kind == "count":
        return f"{value:,}"
    return str(value)


def _change(line: DiffLine, units: str) -> str:
    delta = line.delta
    if delta is None or not line.changed:
        return "" if line.changed or delta is None else "="
    sign = "+" if delta >= 0 else "-"
    text = f"{sign}{human(abs(delta), units)} {units}" if line.kind == "bytes" else f"{sign}{abs(delta):,}"
    if line.a:
        text += f" ({delta / line.a * 100:+.1f} %)"
    return text


def _short(sha: str | None) -> str:
    return sha[:7] if sha else "local"


def render_diff(result: DiffResult, fmt: str = "table", units: str = "GiB", show_all: bool = False) -> str:
    if fmt in ("json", "jsonl"):
        data = result.to_dict()
        if show_all:
            data["lines"] = [line.to_dict() for line in result.lines]
        return document(data, fmt)
    lines = result.lines if show_all else result.changes
    if fmt == "csv":
        return render_rows(
            ["section", "field", "a", "b", "delta"],
            [[x.section, x.field, x.a, x.b, x.delta] for x in lines],
            "csv",
        )
    head = [
        f"A  {result.a_ref} ({_short(result.a.sha)})",
        f"B  {result.b_ref} ({_short(result.b.sha)})",
        "",
    ]
    if not lines:
        return (
            "\n".join([*head, "no differences: parameters, architecture, memory and download are the same"])
            + "\n"
        )
    rows = [
        [x.section, x.field, _cell(x, x.a, units), _cell(x, x.b, units), _change(x, units)] for x in lines
    ]
    table = render_rows(["section", "field", "A", "B", "change"], rows, fmt)
    note = (
        f"{units} = {'1024³' if units == 'GiB' else '10⁹'} bytes; memory per GPU, same options on both sides."
    )
    return "\n".join([*head, table.rstrip("\n"), note]) + "\n"
