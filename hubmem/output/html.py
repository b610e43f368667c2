"""`hubmem audit --html report.html`: one self-contained page — a sortable table of every row and three
charts (plotly, its JavaScript inlined once: nothing is fetched when the page is viewed):

1. per model, a stacked bar of weights / KV cache / activations / overhead (training rows: weights,
   gradients + optimizer states, activations, overhead) against the chosen GPU's usable memory;
2. fits-on matrix, models × common GPUs: whether the judged row's total fits on one of them, with the
   headroom (total ≤ usable memory as torch reports it, hubmem.fit.gpus);
3. parameters against memory (log axes).

The table sorts by any column on a click (a few lines of plain JavaScript). The page records any script
error in `<body data-errors>`, which the headless-browser test reads.
"""

from __future__ import annotations

import html
import json
from typing import Any

from hubmem.fit.verdicts import Target
from hubmem.jobs.audit import AuditRow
from hubmem.output.audit import fit_text
from hubmem.units import UNITS

# The matrix's GPUs (hubmem.fit.gpus catalogue keys): the cards people rent, smallest first.
MATRIX_GPUS = (
    "t4-16gb",
    "l4-24gb",
    "rtx4090-24gb",
    "a100-40gb",
    "l40s-48gb",
    "a100-80gb",
    "h100-80gb",
    "h200-141gb",
    "b200-180gb",
    "mi300x-192gb",
)
COLOURS = {
    "weights": "#4c78a8",
    "kv_cache": "#54a24b",
    "states": "#b279a2",
    "activations": "#eeca3b",
    "overhead": "#9d9d9d",
}

_ERROR_HOOK = """<script>
document.body.dataset.errors = "";
window.addEventListener("error", function (e) { document.body.dataset.errors += (e.message || "error") + "\\n"; });
(function (original) {
  console.error = function () {
    document.body.dataset.errors += Array.prototype.join.call(arguments, " ") + "\\n";
    return original.apply(console, arguments);
  };
})(console.error);
</script>"""

_SORT = """<script>
document.querySelectorAll("#rows th").forEach(function (th, col) {
  th.addEventListener("click", function () {
    var body = document.querySelector("#rows tbody");
    var rows = Array.prototype.slice.call(body.rows);
    var down = th.dataset.dir !== "asc";
    th.dataset.dir = down ? "asc" : "desc";
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return down ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
</script>"""

_STYLE = """<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
td:first-child, th:first-child { text-align: left; }
.error { color: #b00; text-align: left; }
</style>"""


def _gib(n: int | None, units: str) -> float | None:
    return None if n is None else round(n / UNITS[units], 4)


def _parts(row: AuditRow) -> dict[str, int]:
    f = row.fields()
    parts = row.parts or {}
    kv, act, over = parts.get("kv_cache"), parts.get("activations") or 0, parts.get("overhead") or 0
    out = {"weights": f["weights"]}
    if kv is not None:
        out["kv_cache"] = kv
    else:  # a training row: what is neither weights, activations nor overhead are the training states
        out["states"] = f["total"] - f["weights"] - act - over
    out["activations"], out["overhead"] = act, over
    return out


def _figures(rows: list[AuditRow], target: Target | None, units: str) -> list[dict[str, Any]]:
    import plotly.graph_objects as go

    from hubmem.fit.gpus import find_gpu as lookup

    ok = [r for r in rows if r.ok]
    names = [r.ref for r in ok]
    names_parts = [_parts(r) for r in ok]
    labels = {"weights": "weights", "kv_cache": "KV cache", "states": "gradients + optimizer", "activations": "activations", "overhead": "overhead"}  # fmt: skip
    bars = go.Figure()
    for key in labels:
        values = [_gib(p.get(key), units) for p in names_parts]
        if any(v for v in values):
            bars.add_bar(y=names, x=values, name=labels[key], orientation="h", marker_color=COLOURS[key])
    bars.update_layout(
        barmode="stack", title=f"Where the memory goes ({units}, per GPU)", height=120 + 28 * len(ok)
    )
    bars.update_xaxes(title=units)
    if target is not None:
        usable = target.usable_bytes / UNITS[units]
        bars.add_vline(x=usable, line_color="#d62728", line_dash="dash")
        bars.add_annotation(
            x=usable,
            y=1.02,
            yref="paper",
            text=f"{target.name}: {usable:,.2f} {units} usable",
            showarrow=False,
        )
    bars.update_yaxes(autorange="reversed")

    gpus = [lookup(key) for key in MATRIX_GPUS]
    z, text = [], []
    for r in ok:
        total = r.fields()["total"]
        z.append([1 if total <= g.usable_bytes else 0 for g in gpus])
        text.append([f"{(g.usable_bytes - total) / UNITS[units]:+,.1f}" for g in gpus])
    matrix = go.Figure(
        go.Heatmap(
            z=z,
            x=[g.name for g in gpus],
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#f4b6b6"], [1, "#b6e3b6"]],
            zmin=0,
            zmax=1,
            showscale=False,
            hovertemplate="%{y} on one %{x}: %{text} " + units + "<extra></extra>",
        )
    )
    matrix.update_layout(title=f"Fits on one GPU? (headroom {units}; green: fits)", height=160 + 28 * len(ok))
    matrix.update_yaxes(autorange="reversed")

    scatter = go.Figure(
        go.Scatter(
            x=[r.fields()["params"] for r in ok],
            y=[_gib(r.fields()["total"], units) for r in ok],
            text=names,
            mode="markers",
            hovertemplate="%{text}<br>%{x:,} parameters<br>%{y:,.2f} " + units + "<extra></extra>",
        )
    )
    scatter.update_layout(title=f"Parameters vs memory ({units})", height=480)
    scatter.update_xaxes(type="log", title="parameters")
    scatter.update_yaxes(type="log", title=f"total {units}")
    return [bars.to_plotly_json(), matrix.to_plotly_json(), scatter.to_plotly_json()]


def _table(rows: list[AuditRow], target: Target | None, units: str) -> str:
    headers = [
        "repo",
        "params",
        "precision",
        f"weights {units}",
        f"total {units}",
        "fits",
        "download",
        "status",
    ]
    out = [
        "<table id='rows'><thead><tr>"
        + "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        + "</tr></thead><tbody>"
    ]
    for r in rows:
        f = r.fields()

        def cell(value: Any, shown: str | None = None, cls: str = "") -> str:
            v = "" if value is None else str(value)
            klass = f" class='{cls}'" if cls else ""
            return f"<td data-v='{html.escape(v, quote=True)}'{klass}>{html.escape(v if shown is None else shown)}</td>"

        if not r.ok:
            out.append(
                "<tr>" + cell(f["repo"]) + "".join(cell(None) for _ in headers[1:-1])
                + cell(f"error {f['exit_code']}: {f['error']}", cls="error") + "</tr>"
            )  # fmt: skip
            continue
        fits = fit_text(f, units) if target is not None and not r.is_training else f["fits_on"]
        out.append(
            "<tr>"
            + cell(f["repo"])
            + cell(f["params"], f"{f['params']:,}")
            + cell(r.row_label)
            + cell(f["weights"], f"{f['weights'] / UNITS[units]:,.2f}")
            + cell(f["total"], f"{f['total'] / UNITS[units]:,.2f}")
            + cell(fits)
            + cell(f["download"], f"{f['download'] / UNITS[units]:,.2f}")
            + cell("ok (reused)" if r.reused else "ok")
            + "</tr>"
        )
    return "\n".join(out) + "</tbody></table>"


def render_html(
    rows: list[AuditRow], target: Target | None = None, units: str = "GiB", title: str = "hubmem audit"
) -> str:
    """The whole page as one string (about 5 MB: plotly.js is inlined)."""
    from plotly.offline import get_plotlyjs

    figures = _figures(rows, target, units)
    divs = "".join(f"<div id='chart{i}' class='chart'></div>" for i in range(len(figures)))
    data = json.dumps(figures, default=str).replace("</", "<\\/")
    draw = (
        "<script>var figures = " + data + ";"
        "figures.forEach(function (f, i) { Plotly.newPlot('chart' + i, f.data, f.layout, {displaylogo: false}); });"
        "</script>"
    )
    where = f" on {html.escape(target.describe())}" if target is not None else ""
    failed = sum(not r.ok for r in rows)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>{_STYLE}</head><body>{_ERROR_HOOK}"
        f"<h1>{html.escape(title)}</h1><p>{len(rows)} repos{where}, {failed} failed; {units} = "
        f"{'1024³' if units == 'GiB' else '10⁹'} bytes. Click a column to sort.</p>"
        + _table(rows, target, units)
        + divs
        + "<script>"
        + get_plotlyjs()
        + "</script>"
        + draw
        + _SORT
        + "</body></html>"
    )
