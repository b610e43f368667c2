"""Pure formulas, checked against numbers worked out by hand from each model's config.json."""

from __future__ import annotations

import pytest

from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture
from hubmem.model.tensors import count_tensors

from .helpers import config, headers


def arch(repo_id: str):
    return parse_architecture(config(repo_id))


@pytest.mark.parametrize(
    ("repo_id", "per_token"),
    [
        ("meta-llama/Llama-3.1-8B", 32 * 2 * 8 * 128 * 2),  # GQA: 8 KV heads
        ("meta-llama/Llama-3.1-70B", 80 * 2 * 8 * 128 * 2),
        ("openai-community/gpt2", 12 * 2 * 12 * 64 * 2),  # MHA: KV heads = heads
        ("tiiuae/falcon-40b", 60 * 2 * 8 * 64 * 2),  # num_kv_heads 8 (new decoder architecture)
        ("Qwen/Qwen2.5-7B-Instruct", 28 * 2 * 4 * 128 * 2),
    ],
)
def test_kv_bytes_per_token_at_16_bit(repo_id, per_token):
    assert memory.kv_bytes_per_token(arch(repo_id), 2) == per_token


def test_kv_cache_full_attention_llama_8b_8k_is_one_gib():
    a = arch("meta-llama/Llama-3.1-8B")
    assert memory.kv_cache_bytes(a, batch=1, seq_len=8192, kv_bytes=2) == 1024**3
    assert memory.kv_cache_bytes(a, batch=4, seq_len=8192, kv_bytes=1) == 2 * 1024**3


def test_kv_cache_mistral_sliding_window_caps_every_layer_at_4096():
    a = arch("mistralai/Mistral-7B-v0.1")
    assert a.layer_types == ("sliding",) * 32 and a.sliding_window == 4096
    # 32 layers × min(32768, 4096) tokens × 2 × 8 × 128 × 2 bytes
    assert memory.kv_cache_bytes(a, batch=1, seq_len=32768, kv_bytes=2) == 32 * 4096 * 2 * 8 * 128 * 2
    # below the window every token is kept
    assert memory.kv_cache_bytes(a, batch=1, seq_len=2048, kv_bytes=2) == 32 * 2048 * 2 * 8 * 128 * 2


def test_kv_cache_gemma2_alternates_sliding_and_full_layers():
    a = arch("google/gemma-2-9b")
    assert a.sliding_layers == 21 and a.num_layers == 42 and a.sliding_window == 4096
    tokens = 21 * 4096 + 21 * 8192
    assert memory.kv_cache_bytes(a, batch=1, seq_len=8192, kv_bytes=2) == tokens * 2 * 8 * 256 * 2


def test_qwen2_ships_a_window_it_does_not_use():
    a = arch("Qwen/Qwen2.5-7B-Instruct")
    assert a.sliding_layers == 0
    assert memory.kv_cache_bytes(a, batch=1, seq_len=32768, kv_bytes=2) == 32768 * 28 * 2 * 4 * 128 * 2


def test_activations_llama_8b_sdpa_and_eager():
    a = arch("meta-llama/Llama-3.1-8B")
    s, h, i = 4096, 4096, 14336
    sdpa = memory.activation_bytes(a, batch=1, seq_len=s, e=2, attn="sdpa")
    assert sdpa.mlp_phase == (2 * s * h + 3 * s * i) * 2 == 419_430_400  # gated MLP: 3 b·s·i tensors
    assert sdpa.attention_phase == (2 * s * h + 2 * s * 32 * 128) * 2
    assert sdpa.logits == 128256 * 4  # fp32 logits, last position only
    assert sdpa.total == 419_430_400 + 513_024
    eager = memory.activation_bytes(a, batch=1, seq_len=s, e=2, attn="eager")
    assert eager.attention_phase == sdpa.attention_phase + 32 * s * s * (2 + 4)
    assert eager.total == eager.attention_phase + eager.logits
    every = memory.activation_bytes(a, batch=2, seq_len=s, e=2, all_logits=True)
    assert every.logits == 2 * s * 128256 * 4


def test_plain_mlp_holds_two_intermediate_tensors():
    a = arch("openai-community/gpt2")
    assert not a.gated_mlp and a.intermediate_size == 4 * 768
    act = memory.activation_bytes(a, batch=1, seq_len=1024, e=2)
    assert act.mlp_phase == (2 * 1024 * 768 + 2 * 1024 * 3072) * 2


def test_weight_bytes_llama_8b_every_precision():
    counts = count_tensors(headers("meta-llama/Llama-3.1-8B"))
    params = 8_030_261_248
    linear = 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336)  # q,o + k,v + gate,up,down
    kept = params - linear  # embeddings, lm_head, norms
    assert counts.parameters == params and counts.linear_params == linear
    assert memory.weight_bytes(counts, "fp32") == params * 4
    assert memory.weight_bytes(counts, "bf16") == params * 2
    rows = 32 * (4096 + 1024 + 1024 + 4096 + 14336 + 14336 + 4096)
    assert memory.weight_bytes(counts, "int8") == linear + rows * 4 + kept * 2
    groups = 32 * (32 * (4096 + 1024 + 1024 + 4096 + 14336 + 14336) + 112 * 4096)  # in_features / 128 per row
    assert memory.weight_bytes(counts, "int4") == linear // 2 + groups * 5 // 2 + kept * 2 == 5_727_854_592
    bits = (linear // 2 + groups * 5 // 2) * 8 / linear
    assert round(bits, 3) == 4.156  # GPTQ g128 ≈ 4.16 bits per weight
    blocks = 32 * (32 * 32 + 8 * 32 + 8 * 32 + 32 * 32 + 3 * 112 * 32)
    assert memory.weight_bytes(counts, "fp8") == linear + blocks * 4 + kept * 2


def test_seed_s4_rule_of_thumb_70b_16_bit_is_168_gb():
    assert memory.rule_of_thumb_bytes(70_000_000_000, 16) == 168_000_000_000
    assert (
        memory.rule_of_thumb_bytes(70_000_000_000, 32) == 336_000_000_000
    )  # the article's "42 GB" is a slip


def test_inference_row_totals_add_up():
    a = arch("meta-llama/Llama-3.1-8B")
    counts = count_tensors(headers("meta-llama/Llama-3.1-8B"))
    settings = memory.InferenceSettings(seq_len=8192, batch=1)
    row = memory.inference_row(a, counts, "int4", settings)
    assert row.kv_cache == 1024**3  # an int4 model still keeps a 16-bit KV cache
    assert row.total == row.weights + row.kv_cache + row.activations + row.overhead
    assert [t.name for t in row.terms] == ["weights", "kv_cache", "activations", "overhead"]
    assert sum(t.bytes for t in row.terms) == row.total
    fp8_kv = memory.inference_row(a, counts, "bf16", memory.InferenceSettings(seq_len=8192, kv_dtype="fp8"))
    assert fp8_kv.kv_cache == 1024**3 // 2
