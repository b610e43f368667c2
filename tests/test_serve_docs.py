"""The README's serve blocks (`<!-- generated-serve:... -->`) match what the code produces now."""

from __future__ import annotations

from scripts import docs, serve_docs


def test_readme_serve_blocks_are_current(fake_hub):
    current = serve_docs.current(docs.README.read_text())
    assert set(current) == {"serve-demo", "serve-logs"}
    generated = serve_docs.blocks(lambda args: "")
    stale = [name for name, body in generated.items() if current[name] != body]
    assert not stale, f"README serve blocks {stale} are stale: run `make docs`"
