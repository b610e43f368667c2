"""Text output shared by every view: byte counts humanised with an explicit unit (GiB = 1024³
bytes, GB = 10⁹ bytes), one tabular renderer for every format, JSON documents, verdict cells.
Bytes stay integers until here."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
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


def _shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters in the middle ("meta-llama/Lla…-70B-Instruct"), whole when it fits."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def fitted_table(
    headers: list[str],
    rows: list[list[str] | tuple[str, str]],
    numeric: tuple[int, ...] = (),
    *,
    width: int | None = None,
    shorten: int | None = None,
    wrap: int | None = None,
    shortest: int = 20,
) -> str:
    """tabulate's "simple" layout (the headers, a line of dashes, columns two spaces apart, `numeric` ones
    right-aligned), with what tabulate lacks for a table that must fit a terminal:

    - a row given as `(first cell, text)` (an error row) puts `text` across every column after the first,
      wrapped at spaces so that no line is longer than the table (or `width`), instead of widening a column;
    - with `width`, when the columns are wider in all: column `wrap` is narrowed first (down to its header
      and its longest word; its cells wrapped at spaces onto more lines), then column `shorten` (down to
      `shortest` characters; longer cells cut in the middle with "…": an id cut is the last resort).
    Lines carry no trailing spaces."""
    import textwrap

    count = len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        if isinstance(row, list):
            widths = [max(w, len(c)) for w, c in zip(widths, row)]
        else:
            widths[0] = max(widths[0], len(row[0]))
    if width is not None:
        over = sum(widths) + 2 * (count - 1) - width
        if over > 0 and wrap is not None:
            words = [len(w) for r in rows if isinstance(r, list) for w in r[wrap].split()]
            least = max([len(headers[wrap]), *words])
            cut = min(over, max(widths[wrap] - least, 0))
            widths[wrap] -= cut
            over -= cut
        if over > 0 and shorten is not None:
            least = max(shortest, len(headers[shorten]))
            widths[shorten] -= min(over, max(widths[shorten] - least, 0))
    total = sum(widths) + 2 * (count - 1)
    span = max(width or 0, total) - widths[0] - 2

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(padded).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    for row in rows:
        first = _shorten(row[0], widths[0]) if shorten == 0 else row[0]
        if isinstance(row, tuple):
            text = textwrap.wrap(row[1], max(span, 20), break_on_hyphens=False) or [""]
            out.append((first.ljust(widths[0]) + "  " + text[0]).rstrip())
            out += [" " * (widths[0] + 2) + more for more in text[1:]]
            continue
        cells = [first, *row[1:]]
        if shorten is not None and shorten != 0:
            cells[shorten] = _shorten(cells[shorten], widths[shorten])
        parts = [[c] for c in cells]
        if wrap is not None and len(cells[wrap]) > widths[wrap]:
            parts[wrap] = textwrap.wrap(cells[wrap], widths[wrap], break_on_hyphens=False)
        for n in range(max(len(p) for p in parts)):
            out.append(line([p[n] if n < len(p) else "" for p in parts]))
    return "\n".join(out) + "\n"


class RowStream:
    """json / jsonl / csv text of rows handed over one at a time, the same bytes as `render_rows` writes for
    all of them at once: `start()`, then `row(item)` for each (`values(item)`: its cells, in `headers`'
    order), then `end()` (json's closing bracket)."""

    def __init__(self, headers: list[str], fmt: str, values: Callable[[Any], list[Any]]) -> None:
        if fmt not in ("json", "jsonl", "csv"):
            raise ValueError(f"rows stream as json, jsonl or csv, not {fmt}")
        self.headers, self.fmt, self.values, self.count = headers, fmt, values, 0

    def start(self) -> str:
        if self.fmt != "csv":
            return ""
        return render_rows(self.headers, [], "csv")

    def row(self, item: Any) -> str:
        values = self.values(item)
        self.count += 1
        if self.fmt == "csv":
            return render_rows(self.headers, [values], "csv").split("\n", 1)[1]
        if self.fmt == "jsonl":
            return json.dumps(dict(zip(self.headers, values))) + "\n"
        item = json.dumps(dict(zip(self.headers, values)), indent=2).replace("\n", "\n  ")
        return ("[\n  " if self.count == 1 else ",\n  ") + item

    def end(self) -> str:
        if self.fmt != "json":
            return ""
        return "\n]\n" if self.count else "[]\n"
