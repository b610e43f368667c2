"""`hubmem audit`: one row per repo, raw values for json/jsonl/csv (every column, streamable row by row),
chosen columns humanised for table/markdown.

The table (`--format table`, the default) fits in `TABLE_WIDTH` columns with its default columns: a
handful of the JSON row's (`default_columns`; `--columns` picks others, by their JSON names), an error
row's message across the columns after the repo (wrapped), and, where ids or verdicts are long, the fit
verdict wrapped first, then the repo column cut in the middle ("…"), down to 20 characters. Markdown has the same
columns, uncut (a renderer wraps it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubmem import errors
from hubmem.fit.verdicts import Target
from hubmem.jobs.audit import COLUMNS, AuditRow
from hubmem.output.tables import RowStream, fitted_table, human, render_rows, seq_limit, signed

TABLE_WIDTH = 120

# columns right-aligned in tables
NUMERIC = {"params", "active_params", "context", "weights", "total", "kv_per_token", "headroom",
           "gpus_needed", "max_seq_len", "max_batch", "download", "exit_code"}  # fmt: skip


def default_columns(target: Target | None, training: bool) -> list[str]:
    """The table's columns when --columns is not given: what each row answers, within TABLE_WIDTH."""
    if target is None:
        return ["repo", "params", "precision", "weights", "total", "fits_on", "status"]
    if training:  # the training verdict; the reverse solve is for inference (n/a)
        return ["repo", "params", "precision", "total", "fits", "status"]
    return ["repo", "precision", "total", "fits", "max_seq_len", "status"]


def parse_columns(text: str | None) -> list[str] | None:
    """`--columns repo,params,total` (JSON column names; `all`: every one), or None for the default."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(COLUMNS)
    unknown = [n for n in names if n not in COLUMNS]
    if unknown or not names:
        raise errors.InvalidInputError(
            f"--columns takes JSON column names, not '{','.join(unknown) or text}' (choose from "
            f"{', '.join(COLUMNS)}, or all)"
        )
    return list(dict.fromkeys(["repo", *names]))  # the repo first, each column once


def stream_columns(stored: bool) -> list[str]:
    return [*COLUMNS, *(["reused"] if stored else [])]


def stream_values(row: AuditRow, stored: bool) -> list[Any]:
    f = row.fields()
    return [f[c] for c in COLUMNS] + ([row.reused] if stored else [])


def row_stream(fmt: str, stored: bool) -> RowStream:
    """json/jsonl/csv text of audit rows, one at a time (`hubmem audit` prints each as it finishes)."""
    return RowStream(stream_columns(stored), fmt, lambda row: stream_values(row, stored))


def render_audit(
    rows: list[AuditRow],
    fmt: str = "table",
    units: str = "GiB",
    target: Target | None = None,
    stored: bool = False,
    columns: list[str] | None = None,
) -> str:
    """`hubmem audit` output: raw values for json/jsonl/csv, humanised columns for table/markdown.
    `stored` (--db): a last column `reused` (json/csv), status `ok (reused)` (tables). `columns`: the
    table's (JSON names; None: `default_columns`)."""
    if fmt in ("json", "jsonl", "csv"):
        return render_rows(stream_columns(stored), [stream_values(r, stored) for r in rows], fmt)
    training = any(r.is_training for r in rows)  # --train: --gpus sets the count
    chosen = columns or default_columns(target, training)
    headers = [_header(c, units, target, training) for c in chosen]
    numeric = tuple(i for i, c in enumerate(chosen) if c in NUMERIC)
    cells = [_cells(r, chosen, units, target) for r in rows]
    if fmt == "markdown":
        return render_rows(headers, [_markdown_row(r, c, chosen) for r, c in zip(rows, cells)], fmt, numeric)
    table: list[list[str] | tuple[str, str]] = [
        c if r.ok else (r.ref, _error_text(r)) for r, c in zip(rows, cells)
    ]
    fits = next((i for i, c in enumerate(chosen) if c in ("fits", "fits_on")), None)
    fitted = columns is None  # --columns: whatever was picked, whole (error messages still wrapped)
    return fitted_table(
        headers,
        table,
        numeric,
        width=TABLE_WIDTH,
        shorten=0 if fitted else None,
        wrap=fits if fitted else None,
    )


def _header(column: str, units: str, target: Target | None, training: bool) -> str:
    if column == "fits":
        return (
            "fits" if target is None else f"fits {target.name}" if training else f"fits {target.describe()}"
        )
    return _HEADERS.get(column, column).format(units=units)


_HEADERS = {
    "active_params": "active",
    "weights": "weights {units}",
    "total": "total {units}",
    "kv_per_token": "KV B/token",
    "fits_on": "fits on",
    "headroom": "headroom {units}",
    "gpus_needed": "GPUs needed",
    "max_seq_len": "max seq len",
    "max_batch": "max batch",
    "download": "download {units}",
    "exit_code": "exit code",
}


def _error_text(r: AuditRow) -> str:
    f = r.fields()
    return f"error {f['exit_code']}: {f['error']}"


def _markdown_row(r: AuditRow, cells: list[str], chosen: list[str]) -> list[str]:
    """An error row's message in the last column (status, by default): markdown cells cannot span."""
    if r.ok or len(chosen) < 2:
        return cells
    return [r.ref] + [""] * (len(chosen) - 2) + [_error_text(r)]


def _cells(r: AuditRow, chosen: list[str], units: str, target: Target | None) -> list[str]:
    f = r.fields()
    if not r.ok:
        return [f["repo"]] + [""] * (len(chosen) - 1)
    return [_CELLS.get(c, _plain)(c, r, f, units, target) for c in chosen]


def _plain(column: str, r: AuditRow, f: dict, units: str, target: Target | None) -> str:
    value = f[column]
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _inference_only(column: str, r: AuditRow, f: dict, units: str, target: Target | None) -> str:
    if target is not None and r.is_training:
        return "n/a"  # the reverse solve is for inference
    if column == "max_seq_len":
        return seq_limit(f["max_seq_len"], f["context"])
    return _plain(column, r, f, units, target)


def _bytes(column: str, r: AuditRow, f: dict, units: str, target: Target | None) -> str:
    return "n/a" if f[column] is None else human(f[column], units)


_CELLS: dict[str, Callable[[str, AuditRow, dict, str, Target | None], str]] = {
    "params": lambda c, r, f, u, t: f"{f['params']:,}" + ("" if f["exact"] else " (est.)"),
    "dtype": lambda c, r, f, u, t: f["dtype"] or "-",
    "context": lambda c, r, f, u, t: "-" if f["context"] is None else f"{f['context']:,}",
    "precision": lambda c, r, f, u, t: r.row_label,
    "weights": _bytes,
    "total": _bytes,
    "download": _bytes,
    "headroom": lambda c, r, f, u, t: "n/a" if f["headroom"] is None else signed(f["headroom"], u),
    "fits": lambda c, r, f, u, t: (
        _plain(c, r, f, u, t) if t is None else f["fits_on"] if r.is_training else fit_text(f, u)
    ),
    "max_seq_len": _inference_only,
    "max_batch": _inference_only,
    "status": lambda c, r, f, u, t: "ok (reused)" if r.reused else "ok",
    "error": lambda c, r, f, u, t: "",
}


def fit_text(f: dict, units: str) -> str:
    """hubmem.output.tables.fit_cell from a row's plain values (a row read back from a database has no
    Verdict): 'yes, +62.59 GiB free' / 'no, 1.92 GiB short (needs 2)'."""
    if f["fits"] is None or f.get("headroom") is None:  # a GGUF row: its fits_on says it (output/gguf.py)
        return f["fits_on"]
    if f["fits"]:
        return f"yes, {signed(f['headroom'], units)} {units} free"
    need = f"needs {f['gpus_needed']}" if f["gpus_needed"] else "not on any number of them"
    return f"no, {human(-f['headroom'], units)} {units} short ({need})"
