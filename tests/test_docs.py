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
    """Every block but the model tables (tests/test_docs_models.py, on another worker)."""
    current = docs.current_blocks(docs.README.read_text())
    assert set(current) == {
        "demo", "help", "exit-codes", "input-limits", "s2", "models", "families", "moe-models", "training-demo", "measured",
        "audit", "audit-help", "fit", "check", "check-help", "gpus", "db-schema", "bars", "gguf-demo", "gguf-explain",
        "gguf-reference", "gguf-reads",
    }  # fmt: skip
    generated = docs.usage_blocks(invoke)
    assert set(generated) == set(current) - set(docs.MODEL_BLOCKS)
    stale = [name for name, body in generated.items() if current[name] != body]
    assert not stale, f"README blocks {stale} are stale: run `make docs`"


def test_readme_starts_with_the_two_commands():
    head = docs.README.read_text().splitlines()[:12]
    assert any(line.strip() == "make demo" for line in head)
    assert any(line.strip() == "make test" for line in head)
