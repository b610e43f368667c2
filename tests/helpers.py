"""Shared test helpers: load fixture configs and layouts as plain data (no network)."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "repos"


def fixture_dir(repo_id: str) -> Path:
    return FIXTURES / repo_id.replace("/", "__", 1)


def config(repo_id: str) -> dict:
    return json.loads((fixture_dir(repo_id) / "config.json").read_text())


def layout(repo_id: str) -> dict:
    return json.loads((fixture_dir(repo_id) / "layout.json").read_text())


def headers(repo_id: str) -> dict:
    """{file: {tensor: (dtype, shape)}} exactly as hubmem.hub hands it to hubmem.checkpoint."""
    return {
        name: {t[0]: (t[1], tuple(t[2])) for t in spec["tensors"]}
        for name, spec in layout(repo_id)["files"].items()
    }


def published_repos() -> list[str]:
    """Fixture repos whose layout.json carries the Hub's published safetensors total (and whose derived
    layout was reconciled with it: a `mismatch_note` marks one that was not)."""
    out = []
    for path in sorted(FIXTURES.glob("*/layout.json")):
        data = json.loads(path.read_text())
        if data.get("published") and not data.get("mismatch_note"):
            out.append(data["repo_id"])
    return out
