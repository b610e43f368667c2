"""Bars in the terminal under `hubmem REPO`'s table: exact text, the GPU marker, colours only on a
terminal without NO_COLOR, none in a pipe unless --bars, none with --no-bars."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from hubmem import api
from hubmem.cli import main
from hubmem.output import bars

QWEN = "Qwen/Qwen2.5-7B-Instruct"
ARGS = [QWEN, "--seq-len", "32768", "--gpu", "4090"]

# The rows' bytes (hubmem QWEN --seq-len 32768 --format json; each term pinned in tests/test_docs.py's demo
# block and tests/test_fit.py): weights, KV cache, activations, overhead. The bars' scale is the largest of
# the fp32 total, 43,683,520,512, and the RTX 4090's 25,756,172,288 usable bytes: 60 cells for 43.68e9 B.
# bf16: running totals 15,231,233,024 / 17,110,281,216 / 21,305,193,472 / 22,378,935,296 -> ×60/43.68e9 =
# 20.92 / 23.50 / 29.26 / 30.74 -> cells 21 / 24 / 29 / 31: 21 █, 3 ▓, 5 ▒, 2 ░, then spaces; the marker at
# round(25,756,172,288 × 60 / 43,683,520,512) = round(35.38) = cell 35.
# fp32: 41.84 / 47.00 / 58.52 / 60.0 -> 42 █ (the marker replaces the 36th), 5 ▓, 12 ▒, 1 ░.
# int4: 7.65 / 10.23 / 15.99 / 17.47 -> 8 █, 2 ▓, 6 ▒, 1 ░.
EXPECTED = (
    "█ weights  ▓ KV cache  ▒ activations  ░ overhead  | 23.99 GiB usable on one RTX 4090 24GB\n"
    "fp32       " + "█" * 35 + "|" + "█" * 6 + "▓" * 5 + "▒" * 12 + "░" + "  40.68 GiB\n"
    "bf16/fp16  " + "█" * 21 + "▓" * 3 + "▒" * 5 + "░" * 2 + " " * 4 + "|" + " " * 24 + "  20.84 GiB\n"
    "fp8        " + "█" * 12 + "▓" * 3 + "▒" * 5 + "░" * 2 + " " * 13 + "|" + " " * 24 + "  14.77 GiB\n"
    "int8       " + "█" * 12 + "▓" * 3 + "▒" * 5 + "░" * 2 + " " * 13 + "|" + " " * 24 + "  14.77 GiB\n"
    "int4       " + "█" * 8 + "▓" * 2 + "▒" * 6 + "░" + " " * 18 + "|" + " " * 24 + "  11.84 GiB\n"
)


def test_bars_under_the_table_exact_text(fake_hub):
    result = CliRunner().invoke(main, [*ARGS, "--bars"])
    assert result.exit_code == 0, result.output
    table_end = result.stdout.index("GiB = 1024³ bytes; per GPU.\n") + len("GiB = 1024³ bytes; per GPU.\n")
    assert result.stdout[table_end:].startswith("\n" + EXPECTED + "\non 1× RTX 4090 24GB")


def test_without_a_gpu_the_largest_row_sets_the_scale(fake_hub):
    est = api.estimate(QWEN, seq_len=32768, precisions=["bf16", "fp32"])
    lines = bars.render_bars(est).splitlines()
    assert lines[0] == "█ weights  ▓ KV cache  ▒ activations  ░ overhead"
    # fp32 fills the 60 cells; bf16's cells as above, without the marker
    assert lines[1] == "bf16/fp16  " + "█" * 21 + "▓" * 3 + "▒" * 5 + "░" * 2 + " " * 29 + "  20.84 GiB"
    assert lines[2] == "fp32       " + "█" * 42 + "▓" * 5 + "▒" * 12 + "░" + "  40.68 GiB"


def test_colours_are_ansi_runs_around_the_same_characters(fake_hub):
    est = api.estimate(QWEN, seq_len=32768, precisions=["int4"], gpu_memory="12GiB")
    # scale: 12 GiB = 12,884,901,888 > int4's 12,718,449,664 total; 60 cells: 25.94 / 34.69 / 54.23 / 59.22
    # -> 26 █, 9 ▓, 19 ▒, 5 ░, one space, the marker at round(60.0) -> min(59, 60) = the last cell
    line = bars.render_bars(est, colour=True).splitlines()[1]
    assert line == (
        "int4  \x1b[34m" + "█" * 26 + "\x1b[0m\x1b[32m" + "▓" * 9 + "\x1b[0m\x1b[33m" + "▒" * 19
        + "\x1b[0m\x1b[90m" + "░" * 5 + "\x1b[0m\x1b[31m|\x1b[0m  11.84 GiB"
    )  # fmt: skip


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "env, expected",
    [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False), ({"NO_COLOR": ""}, True)],
)
def test_colour_only_on_a_terminal_without_no_color(monkeypatch, env, expected):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert bars.colour_wanted(Tty()) is expected
    assert bars.colour_wanted(io.StringIO()) is False  # a pipe, a file: never


def test_bars_by_default_on_a_terminal_only_and_never_with_no_bars():
    assert bars.bars_wanted(None, "table", Tty()) is True
    assert bars.bars_wanted(None, "table", io.StringIO()) is False
    assert bars.bars_wanted(None, "markdown", Tty()) is False
    assert bars.bars_wanted(False, "table", Tty()) is False
    assert bars.bars_wanted(True, "table", io.StringIO()) is True


def test_a_pipe_gets_no_bars_and_other_formats_none_even_asked(fake_hub):
    plain = CliRunner().invoke(main, ARGS)
    assert "█" not in plain.stdout
    assert CliRunner().invoke(main, [*ARGS, "--no-bars"]).stdout == plain.stdout
    for fmt in ("json", "csv", "markdown"):
        assert "█" not in CliRunner().invoke(main, [*ARGS, "--bars", "--format", fmt]).stdout
