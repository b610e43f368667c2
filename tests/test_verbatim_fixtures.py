"""Fixture repos built from verbatim Hub configs found in stored public material (issue 3).

- Qwen/Qwen3-32B-FP8: block-wise FP8 (quant_method fp8, 128×128 blocks); the Hub's published
  per-dtype figure is BF16 1,558,406,144 + F8_E4M3 31,205,621,760 (layout.json `published`).
- nvidia/Nemotron-H-56B-Base-8K: hybrid Mamba2 / attention / MLP layers from
  `hybrid_override_pattern`; no published total was found, so it is derived by hand below.
- a real AWQ checkpoint's tensor list (a stored report of a local Qwen3-32B-AWQ directory): its
  config is not a verbatim Hub file, so it is a header dict in the test, not a fixture repo.
Every expected number is derived from the config's dimensions in the test, not read from hubmem.
"""

from __future__ import annotations

from hubmem.model.architecture import parse_architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.tensors import count_tensors

from .helpers import cli_json, config, headers, layout

QWEN_FP8 = "Qwen/Qwen3-32B-FP8"
NEMOTRON_H = "nvidia/Nemotron-H-56B-Base-8K"


# ---------------------------------------------------------------------------- Qwen3-32B-FP8


def _qwen3_32b_linear_shapes() -> list[tuple[int, int]]:
    c = config(QWEN_FP8)
    h, i = c["hidden_size"], c["intermediate_size"]
    q, kv = c["num_attention_heads"] * c["head_dim"], c["num_key_value_heads"] * c["head_dim"]
    return [(q, h), (kv, h), (kv, h), (h, q), (i, h), (i, h), (h, i)]


def test_qwen3_32b_fp8_unpacks_to_the_base_models_parameters_and_stores_the_published_dtypes(fake_hub):
    c = config(QWEN_FP8)
    layers, h, V = c["num_hidden_layers"], c["hidden_size"], c["vocab_size"]
    shapes = _qwen3_32b_linear_shapes()
    linear = layers * sum(o * n for o, n in shapes)
    blocks = layers * sum(-(-o // 128) * -(-n // 128) for o, n in shapes)  # weight_scale_inv elements
    other = 2 * V * h + layers * (2 * h + 2 * c["head_dim"]) + h  # embeddings, lm_head, norms + q/k norms
    published = layout(QWEN_FP8)["published"]["by_dtype"]
    assert published == {"F8_E4M3": linear, "BF16": other + blocks}  # scales are BF16 in the Hub file
    p = cli_json(QWEN_FP8, "--seq-len", "4096")["parameters"]
    # the scales are quantization metadata, not parameters: the count is the BF16 original's
    assert (
        p["parameters"] == linear + other == layout("Qwen/Qwen3-32B")["published"]["total"] == 32_762_123_264
    )
    assert p["hub_by_dtype"] == published
    assert p["stored_bytes"] == linear + 2 * (other + blocks) == 34_322_434_048
    assert p["quant_metadata_bytes"] == 2 * blocks == 2 * 64 * 29_760


def test_qwen3_32b_fp8_rows_and_kv(fake_hub):
    data = cli_json(QWEN_FP8, "--seq-len", "4096")
    p = data["parameters"]
    shapes = _qwen3_32b_linear_shapes()
    blocks = 64 * sum(-(-o // 128) * -(-n // 128) for o, n in shapes)
    weights = {r["precision"]: r["weights"] for r in data["rows"]}
    assert weights["stored"] == p["stored_bytes"]
    # hubmem's generic fp8 row keeps fp32 block scales (DeepSeek-V3 style), the Hub file BF16 ones
    assert weights["fp8"] == p["stored_bytes"] + 2 * blocks
    assert data["kv_bytes_per_token"]["bf16"] == 64 * 2 * 8 * 128 * 2 == 262_144


# ---------------------------------------------------------------------------- Nemotron-H 56B


def _nemotron_blocks() -> dict[str, int]:
    c = config(NEMOTRON_H)
    h, i = c["hidden_size"], c["intermediate_size"]
    heads, hd, g, n = c["mamba_num_heads"], c["mamba_head_dim"], c["n_groups"], c["ssm_state_size"]
    inner = heads * hd
    conv_dim = inner + 2 * g * n
    mamba = h * (2 * inner + 2 * g * n + heads) + conv_dim * c["conv_kernel"] + conv_dim + 3 * heads + inner
    mamba += inner * h  # in_proj (z, x, B, C, dt), conv1d + bias, dt_bias / A_log / D, gated norm, out_proj
    q, kv = (
        c["num_attention_heads"] * c["attention_head_dim"],
        c["num_key_value_heads"] * c["attention_head_dim"],
    )
    attention = 2 * h * q + 2 * h * kv
    mlp = 2 * h * i  # relu2: up_proj, down_proj
    return {"M": mamba, "*": attention, "-": mlp}


def test_nemotron_h_parameters_by_hand_from_the_hybrid_pattern(fake_hub):
    c = config(NEMOTRON_H)
    pattern, h, V = c["hybrid_override_pattern"], c["hidden_size"], c["vocab_size"]
    assert (pattern.count("M"), pattern.count("*"), pattern.count("-")) == (54, 10, 54)
    blocks = _nemotron_blocks()
    total = 2 * V * h + sum(blocks[ch] + h for ch in pattern) + h  # one norm per layer, final norm_f
    data = cli_json(NEMOTRON_H, "--seq-len", "8192")
    assert data["parameters"]["parameters"] == total == 56_324_350_464
    assert round(total / 1e9) == 56  # the repo name's 56B
    by = data["parameters"]["by_component"]
    assert by["attention"] == 10 * blocks["*"] and by["mlp"] == 54 * blocks["-"]
    assert data["architecture"]["attention_pattern"] == "54 mamba2 + 10 full + 54 MLP-only"


def test_nemotron_h_kv_only_in_attention_layers_and_mamba2_state_per_sequence(fake_hub):
    data = cli_json(NEMOTRON_H, "--seq-len", "8192", "--precision", "bf16")
    per_token = 10 * 2 * 8 * 128 * 2  # 10 attention layers, 8 KV heads of 128, K and V, bf16
    # vLLM mamba2_state_shape: conv (kernel − 1, inner + 2·g·n), temporal (heads, head_dim, n)
    state = 54 * (3 * (16384 + 2 * 8 * 256) + 256 * 64 * 256) * 2
    assert data["kv_bytes_per_token"]["bf16"] == per_token == 40_960
    assert data["state_bytes_per_sequence"]["bf16"] == state == 459_620_352
    row = data["rows"][0]
    assert row["kv_cache"] == 8192 * per_token + state


def test_nemotron_h_config_only_estimate_is_exact():
    cfg = config(NEMOTRON_H)
    assert (
        estimate_counts(parse_architecture(cfg)).parameters
        == count_tensors(headers(NEMOTRON_H), cfg).parameters
    )


# ---------------------------------------------------------------------------- a real AWQ tensor list


def _qwen3_32b_awq_headers() -> dict:
    """The tensor list of a local `Qwen3-32B-AWQ` checkpoint as a stored public model report prints it
    (search-index id 62727925985: 4 safetensors files, 1,603 tensors, 5,731,472,384 elements, 18.00 GB;
    per Linear `qweight` I32 [in, out/8], `qzeros` I32 [in/128, out/8], `scales` BF16 [in/128, out],
    AutoAWQ GEMM layout). Its config is printed by transformers 5.7 (quant_method awq, bits 4,
    group_size 128, version gemm, zero_point true), so it is no verbatim Hub file and no fixture repo.
    """
    h, i, q, kv, V = 5120, 25600, 8192, 1024, 151936
    linear = {
        "self_attn.q_proj": (h, q),
        "self_attn.k_proj": (h, kv),
        "self_attn.v_proj": (h, kv),
        "self_attn.o_proj": (q, h),
        "mlp.gate_proj": (h, i),
        "mlp.up_proj": (h, i),
        "mlp.down_proj": (i, h),
    }
    tensors = {"model.embed_tokens.weight": ("BF16", (V, h)), "lm_head.weight": ("BF16", (V, h))}
    tensors["model.norm.weight"] = ("BF16", (h,))
    for n in range(64):
        p = f"model.layers.{n}."
        for name, (fan_in, fan_out) in linear.items():
            tensors[p + name + ".qweight"] = ("I32", (fan_in, fan_out // 8))
            tensors[p + name + ".qzeros"] = ("I32", (fan_in // 128, fan_out // 8))
            tensors[p + name + ".scales"] = ("BF16", (fan_in // 128, fan_out))
        for norm, width in (("input_layernorm", h), ("post_attention_layernorm", h)):
            tensors[p + norm + ".weight"] = ("BF16", (width,))
        for norm in ("self_attn.q_norm", "self_attn.k_norm"):
            tensors[p + norm + ".weight"] = ("BF16", (128,))
    return {"model.safetensors": tensors}


def test_a_real_awq_checkpoint_unpacks_to_the_bf16_models_parameters_and_matches_the_int4_row(fake_hub):
    awq = {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm", "zero_point": True}
    hdrs = _qwen3_32b_awq_headers()
    assert sum(len(t) for t in hdrs.values()) == 1603  # the report's tensor count
    counts = count_tensors(hdrs, {**config("Qwen/Qwen3-32B"), "quantization_config": awq})
    assert counts.stored_total == 5_731_472_384  # the report's element total (packed words as stored)
    assert counts.parameters == layout("Qwen/Qwen3-32B")["published"]["total"] == 32_762_123_264
    assert counts.stored_bytes == 19_325_298_688 and round(counts.stored_bytes / 2**30, 2) == 18.00
    # hubmem's int4 row for the BF16 model (4 bits + fp16 scale and 4-bit zero per 128 inputs) predicts
    # exactly the bytes this real AWQ checkpoint stores
    rows = {r["precision"]: r["weights"] for r in cli_json("Qwen/Qwen3-32B", "--seq-len", "4096")["rows"]}
    assert rows["int4"] == counts.stored_bytes
