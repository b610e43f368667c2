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
    """{file: {tensor: (dtype, shape)}} exactly as hubmem.hub.fetch hands it to hubmem.model.tensors."""
    return {
        name: {t[0]: (t[1], tuple(t[2])) for t in spec["tensors"]}
        for name, spec in layout(repo_id)["files"].items()
    }


def layout_totals(data: dict, hub_counting: bool = False) -> dict[str, int]:
    """Elements per dtype summed straight from a layout.json (independent of hubmem's code).

    `hub_counting`: weigh each tensor as the layout's own `hub_counting` table says the Hub counted it
    when it published the figure (MXFP4 `U8 *_blocks` ×2, `U8 *_scales` ×1 or ×0).
    """
    weights = data.get("hub_counting") or {} if hub_counting else {}
    totals: dict[str, int] = {}
    for spec in data["files"].values():
        for name, dtype, shape in spec["tensors"]:
            n = 1
            for x in shape:
                n *= x
            suffix = next((s for s in ("_blocks", "_scales") if name.endswith(s)), None)
            n *= weights.get(f"{dtype} *{suffix}", 1) if suffix else 1
            totals[dtype] = totals.get(dtype, 0) + n
    return totals


def published_repos() -> list[str]:
    """Fixture repos whose layout.json carries the Hub's published safetensors total (a byte scan at
    collection: parsing every layout there cost each test process a second). That the layout itself
    adds up to the published figure is `layout_reconciles`, asserted by the test."""
    from .fakehub import repo_id_from_dirname

    return [
        repo_id_from_dirname(path.parent.name)
        for path in sorted(FIXTURES.glob("*/layout.json"))
        if _PUBLISHED in path.read_bytes() and _UNPUBLISHED not in path.read_bytes()
    ]


_PUBLISHED, _UNPUBLISHED = b'"published":', b'"published": null'


def layout_reconciles(data: dict) -> str | None:
    """None when a layout's tensors add up to its `published` figures, counted the way its
    `hub_counting` says the Hub counted them; else why not."""
    published = data["published"]
    totals = layout_totals(data, hub_counting=True)
    by_dtype = published.get("by_dtype")
    if sum(totals.values()) == published["total"] and (not by_dtype or totals == by_dtype):
        return None
    return f"layout sums to {totals}, Hub publishes {by_dtype or published['total']}"


# DeepSeek-V2-Lite(-Chat)'s dimensions as transformers logs print its loaded config (stored public logs,
# search-index ids 62526029280 and 36729022437), with MoE fields from a stored Megatron-style re-typing
# of it (64 routed experts of 1408, 2 shared, first layer dense) and the DeepSeek-V2 paper (6 routed
# experts per token); a hand-written subset: no verbatim config.json of this repo was found.
DEEPSEEK_V2_LITE = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "hidden_size": 2048,
    "intermediate_size": 10944,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "vocab_size": 102400,
    "max_position_embeddings": 163840,
    "kv_lora_rank": 512,
    "q_lora_rank": None,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "moe_intermediate_size": 1408,
    "num_experts_per_tok": 6,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "tie_word_embeddings": False,
}


def cli_json(*args: str) -> dict:
    """`hubmem ARGS --format json` through click's runner, parsed; fails the test on a non-zero exit."""
    from click.testing import CliRunner

    from hubmem.cli import main

    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return json.loads(result.stdout)
