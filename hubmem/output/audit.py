"""`hubmem audit`: one row per repo, raw values for json/jsonl/csv, humanised columns for tables."""

from __future__ import annotations

from hubmem.fit.verdicts import Target
from hubmem.jobs.audit import COLUMNS, AuditRow
from hubmem.output.tables import human, render_rows, seq_limit, signed


def render_audit(
    rows: list[AuditRow],
    fmt: str = "table",
    units: str = "GiB",
    target: Target | None = None,
    stored: bool = False,
) -> str:
    """`hubmem audit` output: raw values for json/jsonl/csv, humanised columns for table/markdown.
    `stored` (--db): a last column `reused` (json/csv), status `ok (reused)` (tables)."""
    if fmt in ("json", "jsonl", "csv"):
        extra = ["reused"] if stored else []
        table_rows = [[r.fields()[c] for c in COLUMNS] + ([r.reused] if stored else []) for r in rows]
        return render_rows([*COLUMNS, *extra], table_rows, fmt)
    training = any(r.is_training for r in rows)  # --train: --gpus sets the count
    fit_header = (
        "fits on" if target is None else f"fits {target.name}" if training else f"fits {target.describe()}"
    )
    headers = ["repo", "params", "active", "dtype", "context", "precision", f"weights {units}"]
    headers += [f"total {units}", "KV B/token", fit_header]
    if target is not None:
        headers += ["max seq len", "max batch"]
    headers += [f"download {units}", "status"]
    table = []
    for r in rows:
        f = r.fields()
        if not r.ok:
            cells = [f["repo"]] + [""] * (len(headers) - 2)
            table.append(cells + [f"error {f['exit_code']}: {f['error']}"])
            continue
        cells = [
            f["repo"],
            f"{f['params']:,}" + ("" if f["exact"] else " (est.)"),
            f"{f['active_params']:,}",
            f["dtype"] or "-",
            "-" if f["context"] is None else f"{f['context']:,}",
            r.row_label,
            human(f["weights"], units),
            human(f["total"], units),
            f"{f['kv_per_token']:,}",
            fit_text(f, units) if target is not None and not r.is_training else f["fits_on"],
        ]
        if target is not None and r.is_training:
            cells += ["n/a", "n/a"]  # the reverse solve is for inference
        elif target is not None:
            cells += [
                seq_limit(f["max_seq_len"], f["context"]),
                "n/a" if f["max_batch"] is None else f"{f['max_batch']:,}",
            ]
        cells += [human(f["download"], units), "ok (reused)" if r.reused else "ok"]
        table.append(cells)
    numeric = (1, 2, 4, 6, 7, 8) + ((10, 11, 12) if target is not None else (10,))
    return render_rows(headers, table, fmt, numeric=numeric)


def fit_text(f: dict, units: str) -> str:
    """hubmem.output.tables.fit_cell from a row's plain values (a row read back from a database has no
    Verdict): 'yes, +62.59 GiB free' / 'no, 1.92 GiB short (needs 2)'."""
    if f["fits"] is None or f.get("headroom") is None:  # a GGUF row: its fits_on says it (output/gguf.py)
        return f["fits_on"]
    if f["fits"]:
        return f"yes, {signed(f['headroom'], units)} {units} free"
    need = f"needs {f['gpus_needed']}" if f["gpus_needed"] else "not on any number of them"
    return f"no, {human(-f['headroom'], units)} {units} short ({need})"
