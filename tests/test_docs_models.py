"""The README's model tables must match what the code produces now (`make docs` refreshes them); the
other generated blocks are tests/test_docs.py's."""

from __future__ import annotations

from scripts import docs

from .test_docs import invoke


def test_readme_model_tables_are_current(fake_hub):
    current = docs.current_blocks(docs.README.read_text())
    generated = docs.model_blocks(invoke)
    assert set(generated) == set(docs.MODEL_BLOCKS)
    stale = [name for name, body in generated.items() if current[name] != body]
    assert not stale, f"README blocks {stale} are stale: run `make docs`"
