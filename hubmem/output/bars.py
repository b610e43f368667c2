"""Bars in the terminal: under `hubmem REPO`'s table, one stacked bar per precision row, where the memory
goes (weights, KV cache, activations, overhead), against the chosen GPU's usable memory.

Each part has its own character, so the bars read without colour (NO_COLOR, a pipe); on a colour
terminal each part also has its colour. The bar is BAR_WIDTH cells for the larger of the largest row
and, with --gpu / --gpu-memory, one GPU's usable memory, which a `|` marks. A part's cells are where
its running total falls (rounded to the nearest cell), so the parts always add up to the row's total.
Bars are drawn on a terminal (stdout a TTY) in table format, unless --no-bars; `--bars` draws them
anywhere (a file, a test).
"""

from __future__ import annotations

import os
from typing import IO, Any

from hubmem.jobs.results import InferenceEstimate
from hubmem.output.tables import human

BAR_WIDTH = 60
# part -> (character, ANSI colour); characters of decreasing density, so that order reads in black and white
PARTS = (
    ("weights", "█", "34"),  # blue
    ("KV cache", "▓", "32"),  # green
    ("activations", "▒", "33"),  # yellow
    ("overhead", "░", "90"),  # grey
)
MARK, MARK_COLOUR = "|", "31"  # red


def colour_wanted(stream: IO[Any]) -> bool:
    """Colours only on a terminal, and never with NO_COLOR set (no-color.org: any non-empty value) or
    TERM=dumb."""
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def bars_wanted(flag: bool | None, fmt: str, stream: IO[Any]) -> bool:
    """--bars / --no-bars, else: in table format on a terminal."""
    if flag is not None:
        return flag
    return fmt == "table" and stream.isatty()


def render_bars(
    est: InferenceEstimate, units: str = "GiB", colour: bool = False, width: int = BAR_WIDTH
) -> str:
    """The bars of every row of an inference estimate, a legend line first."""
    usable = est.target.usable_bytes if est.target is not None else None
    scale = max([r.total for r in est.rows] + ([usable] if usable else []))
    mark = None if usable is None else min(width - 1, round(usable / scale * width))

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if colour and text.strip() else text

    legend = "  ".join(paint(char, code) + f" {name}" for name, char, code in PARTS)
    if est.target is not None and usable is not None:
        legend += (
            f"  {paint(MARK, MARK_COLOUR)} {human(usable, units)} {units} usable on one {est.target.name}"
        )
    label_width = max(len(r.label) for r in est.rows)
    lines = [legend]
    for row in est.rows:
        cells: list[tuple[str, str]] = []  # (character, colour) per cell
        running, edge = 0, 0
        for (_, char, code), part in zip(PARTS, (row.weights, row.kv_cache, row.activations, row.overhead)):
            running += part
            end = round(running / scale * width) if scale else 0
            cells += [(char, code)] * (end - edge)
            edge = end
        cells += [(" ", "")] * (width - len(cells))
        if mark is not None:  # a row reaching past the GPU: the marker cuts through it
            cells[mark] = (MARK, MARK_COLOUR)
        runs: list[tuple[str, str]] = []  # one colour code per run of equal cells
        for char, code in cells:
            if runs and runs[-1][1] == code and runs[-1][0][-1] == char:
                runs[-1] = (runs[-1][0] + char, code)
            else:
                runs.append((char, code))
        bar = "".join(paint(text, code) for text, code in runs)
        lines.append(f"{row.label:<{label_width}}  {bar}  {human(row.total, units)} {units}")
    return "\n".join(lines) + "\n"
