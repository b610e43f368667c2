"""`hubmem audit --html`: the page is self-contained and renders in a real headless browser (Debian's
chromium, which `.ci/run` installs when missing): no script or console error, one table row per repo,
the three charts drawn, the table sorted by clicks on its headers, nothing fetched from outside."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.output import html as report

from .helpers import config, layout

TINY = "test/tiny"
REPOS = ["Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B", TINY, "nobody/nothing"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: `apt-get install chromium` (.ci/run does it)"
    return found


def rendered_dom(page: Path) -> str:
    """The DOM after the page's scripts ran, with every host name unresolvable: a page that needed the
    network would miss its scripts."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def page(fake_hub, tmp_path) -> Path:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        main, ["audit", *REPOS, "--gpu", "h100", "--seq-len", "8192", "--html", str(out)]
    )
    assert result.exit_code == 30  # nobody/nothing failed; the report still has its row
    assert result.stderr.splitlines()[0] == f"Wrote {out} (4 rows)."
    return out


def test_the_page_needs_nothing_from_outside(page):
    text = page.read_text()
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text
    assert text.count("<script>") == 4  # the error hook, plotly.js, the figures, the sort
    assert "<script src" not in text


def test_it_renders_in_headless_chromium_without_errors(page):
    dom = rendered_dom(page)
    assert 'data-errors=""' in dom  # no script error, nothing written to console.error
    body = dom.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert body.count("<tr>") == len(REPOS)
    assert "error 10: repository 'nobody/nothing' not found" in body
    for i in range(3):  # each chart div holds plotly's drawing
        chart = dom.split(f'id="chart{i}"', 1)[1].split('id="chart', 1)[0]
        assert 'class="main-svg"' in chart
    # the stacked bars: weights, KV cache, activations, overhead; the matrix: 3 models × 10 GPUs labelled
    assert dom.count('class="trace bars"') == 4
    assert dom.count('class="heatmap-label"') == 3 * len(report.MATRIX_GPUS)
    assert dom.count('class="point"') >= 3  # parameters vs memory: a marker per model
    assert "H100 SXM 80GB: 79.19 GiB usable" in dom  # the GPU line's label on the bars chart


def test_table_cells_carry_raw_values_for_sorting(fake_hub):
    from hubmem import api

    rows = list(api.audit([TINY], gpu="t4"))
    page = report.render_html(rows, rows[0].estimate.target if rows[0].estimate else None)
    # tiny at bf16, 2,048 tokens: total 1,076,771,360 bytes = 1.00 GiB (tests/test_audit.py's tiny_row)
    assert "<td data-v='1076771360'>1.00</td>" in page
    assert "<td data-v='202048'>202,048</td>" in page


def test_a_training_row_shows_its_states(fake_hub):
    fake_hub.add_repo("acme/tiny", layout=layout(TINY), config=config(TINY))
    from hubmem import api

    (row,) = api.audit(["acme/tiny"], train="full")
    parts = report._parts(row)
    assert (
        parts["states"] == row.fields()["total"] - parts["weights"] - parts["activations"] - parts["overhead"]
    )
    assert parts["states"] > 0 and "kv_cache" not in parts


_CLICKS = """<script>
(function () {
  var th = document.querySelectorAll("#rows th");
  function order() {
    return Array.prototype.map.call(document.querySelectorAll("#rows tbody tr"), function (r) {
      return r.cells[0].textContent;
    }).join(",");
  }
  var seen = [];
  [4, 4, 0, 1].forEach(function (col) { th[col].click(); seen.push(th[col].textContent + ": " + order()); });
  var out = document.createElement("pre");
  out.id = "clicked";
  out.textContent = seen.join("\\n");
  document.body.appendChild(out);
})();
</script>"""


def test_clicking_a_column_sorts_the_table_in_the_browser(page, tmp_path):
    """Real clicks (HTMLElement.click() dispatches the event the page's own handler listens for) on the
    headers of the report, in headless chromium: numbers sort by value (the cells' raw data-v), text
    alphabetically, a second click reverses; the error row has no value and sorts first going up."""
    text = page.read_text()
    assert text.count("</body>") == 1
    clicked = tmp_path / "clicked.html"
    clicked.write_text(text.replace("</body>", _CLICKS + "</body>"))
    dom = rendered_dom(clicked)
    assert 'data-errors=""' in dom
    seen = dom.split('<pre id="clicked">', 1)[1].split("</pre>", 1)[0].splitlines()
    qwen, llama, none = "Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B", "nobody/nothing"
    # totals at 8,192 tokens: tiny 1.00 GiB < Qwen 16.60 < Llama 17.74 (the README's audit example)
    assert seen == [
        f"total GiB: {none},{TINY},{qwen},{llama}",
        f"total GiB: {llama},{qwen},{TINY},{none}",
        f"repo: {llama},{none},{qwen},{TINY}",
        f"params: {none},{TINY},{qwen},{llama}",  # 202,048 < 7,615,616,512 < 8,030,261,248
    ]
