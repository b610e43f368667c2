"""Llama 4 Scout as served by the fake Hub: verbatim config, layout derived on the meta device.

Everything below is derived by hand from the config's dimensions and checked against the Hub's
published total (108,641,793,536 BF16, see the layout's `published.source`) and Meta's model card
("17B active parameters, 16 experts, 109B total").
"""

from __future__ import annotations

from .helpers import cli_json, config

SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"


def _text_params(t: dict) -> tuple[int, int]:
    """(all text-model parameters, routed-expert parameters) from `text_config`."""
    h, i, e, layers = t["hidden_size"], t["intermediate_size"], t["num_local_experts"], t["num_hidden_layers"]
    q = t["num_attention_heads"] * t["head_dim"]
    kv = t["num_key_value_heads"] * t["head_dim"]
    attention = 2 * h * q + 2 * h * kv  # q, o and k, v; no biases (attention_bias false)
    routed = e * (h * 2 * i + i * h)  # fused gate_up_proj [E, h, 2i] + down_proj [E, i, h]
    layer = attention + routed + e * h + 3 * h * i + 2 * h  # + router, shared expert, two RMSNorms
    return 2 * t["vocab_size"] * h + layers * layer + h, layers * routed  # untied embeddings, final norm


def _vision_params(v: dict, text_hidden: int) -> int:
    """Vision encoder + adapter + projector, from `vision_config` (transformers llama4 vision model)."""
    d, f, p, c = v["hidden_size"], v["intermediate_size"], v["patch_size"], v["num_channels"]
    positions = (v["image_size"] // p) ** 2 + 1  # patches + class token
    shuffled = int(d / v["pixel_shuffle_ratio"] ** 2)  # pixel shuffle folds 2×2 patches into one
    layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 4 * d  # q,k,v,o with bias; fc1, fc2; 2 LayerNorms
    return (
        d  # class embedding
        + positions * d
        + d * c * p * p  # patch embedding (linear, no bias)
        + 4 * d  # layernorm_pre, layernorm_post (weight + bias)
        + v["num_hidden_layers"] * layer
        + shuffled * v["projector_input_dim"]  # vision_adapter fc1 (no bias)
        + v["projector_input_dim"] * v["projector_output_dim"]  # vision_adapter fc2
        + v["vision_output_dim"] * text_hidden  # multi_modal_projector.linear_1
    )


def test_scout_total_equals_the_published_total_and_the_hand_count(fake_hub):
    raw = config(SCOUT)
    text, routed = _text_params(raw["text_config"])
    vision = _vision_params(raw["vision_config"], raw["text_config"]["hidden_size"])
    data = cli_json(SCOUT, "--seq-len", "8192")
    p = data["parameters"]
    assert text + vision == p["parameters"] == 108_641_793_536  # the Hub's published BF16 total
    assert p["hub_by_dtype"] == {"BF16": 108_641_793_536}
    assert p["by_component"]["vision"] == vision == 871_932_416
    assert p["routed_expert_params"] == routed == 96_636_764_160
    assert p["stored_bytes"] == 2 * 108_641_793_536


def test_scout_active_parameters_match_meta_17b_active_109b_total(fake_hub):
    raw = config(SCOUT)
    text, routed = _text_params(raw["text_config"])
    vision = _vision_params(raw["vision_config"], raw["text_config"]["hidden_size"])
    p = cli_json(SCOUT, "--seq-len", "8192")["parameters"]
    # one of 16 routed experts per token; the shared expert always runs
    assert p["active"] == text + vision - routed * 15 // 16 == 18_044_827_136
    # Meta's "17B active" counts the text model only; "109B total" everything
    assert round((p["active"] - vision) / 1e9) == 17
    assert round(p["parameters"] / 1e9) == 109


def test_scout_kv_keeps_one_chunk_in_36_layers_and_everything_in_12_nope_layers(fake_hub):
    data = cli_json(SCOUT, "--seq-len", "131072", "--precision", "bf16")
    per_token_layer = 2 * 8 * 128 * 2  # K and V, 8 KV heads of 128, bf16
    assert data["architecture"]["attention_pattern"] == "36 chunked 8192 + 12 full"
    assert data["kv_bytes_per_token"]["bf16"] == 48 * per_token_layer == 196_608
    row = next(r for r in data["rows"] if r["precision"] == "bf16")
    assert row["kv_cache"] == (36 * 8192 + 12 * 131072) * per_token_layer == 7_650_410_496
    assert row["weights"] == 2 * 108_641_793_536


def _linear_matrices(t: dict) -> list[tuple[int, int]]:
    """(out, in) of every Linear matrix in one text layer; each fused expert counts as its E matrices."""
    h, i, e = t["hidden_size"], t["intermediate_size"], t["num_local_experts"]
    q, kv = t["num_attention_heads"] * t["head_dim"], t["num_key_value_heads"] * t["head_dim"]
    attention = [(q, h), (kv, h), (kv, h), (h, q)]
    routed = e * [(2 * i, h), (h, i)]  # gate_up_proj [E, h, 2i] and down_proj [E, i, h] are [in, out]
    return attention + routed + [(e, h)] + [(i, h), (i, h), (h, i)]  # router, shared expert


def test_scout_precision_table_counts_fused_experts_as_one_matrix_per_expert(fake_hub):
    t = config(SCOUT)["text_config"]
    layers = t["num_hidden_layers"]
    mats = _linear_matrices(t)
    linear = layers * sum(o * n for o, n in mats)
    rows = layers * sum(o for o, _ in mats)
    blocks = layers * sum(-(-o // 128) * -(-n // 128) for o, n in mats)
    assert (rows, blocks) == (48 * 377_872, 48 * 134_440)
    data = cli_json(SCOUT, "--seq-len", "8192")
    p = data["parameters"]
    assert p["linear_params"] == linear
    kept16 = 2 * (p["parameters"] - linear)  # embeddings, lm_head, norms and the vision tower stay 16-bit
    weights = {r["precision"]: r["weights"] for r in data["rows"]}
    assert weights["bf16"] == 2 * p["parameters"]
    assert weights["fp8"] == linear + 4 * blocks + kept16  # fp32 scale per 128×128 block
    assert weights["int8"] == linear + 4 * rows + kept16  # fp32 SCB per output feature
