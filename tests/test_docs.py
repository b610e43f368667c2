"""The README's generated blocks must match what the code produces now (`make docs` refreshes them)."""

from __future__ import annotations

from click.testing import CliRunner

from hubmem.cli import main
from scripts import docs


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, terminal_width=120)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_readme_generated_blocks_are_current(fake_hub):
    readme = docs.README.read_text()
    names = {m.group("name") for m in docs.BLOCK_RE.finditer(readme)}
    assert names == {
        "demo", "help", "exit-codes", "input-limits", "s2", "models", "families", "moe-models", "training-demo", "measured",
        "audit", "audit-help", "fit", "check", "check-help", "gpus",
    }  # fmt: skip
    assert docs.render(readme, docs.blocks(invoke)) == readme, "README is stale: run `make docs`"


def test_readme_starts_with_the_two_commands():
    head = docs.README.read_text().splitlines()[:12]
    assert any(line.strip() == "make demo" for line in head)
    assert any(line.strip() == "make test" for line in head)
