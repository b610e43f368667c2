"""Attention variants: DeepSeek MLA, sliding-window patterns (Gemma 3), Llama 4 chunked attention,
multimodal towers. Numbers worked by hand from each config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.hub.fetch import RepoSnapshot
from hubmem.jobs.estimate import estimate_snapshot
from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture
from hubmem.model.variants import _raw_layer_kinds

from .helpers import DEEPSEEK_V2_LITE, cli_json, config

CONFIGS = Path(__file__).resolve().parent.parent / "fixtures" / "configs"
DSV3 = "deepseek-ai/DeepSeek-V3"


def fixture_config(name: str) -> dict:
    return json.loads((CONFIGS / f"{name}.json").read_text())


def cli_error(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr


# ---------------------------------------------------------------------------- DeepSeek MLA


def test_deepseek_v3_caches_one_latent_per_token_and_layer(fake_hub):
    data = cli_json(DSV3, "--seq-len", "4096")
    # 61 layers × (kv_lora_rank 512 + qk_rope_head_dim 64) × 2 bytes, no ×2 for K and V
    assert data["kv_bytes_per_token"]["bf16"] == 70_272 == 61 * (512 + 64) * 2
    assert data["kv_bytes_per_token"]["fp32"] == 140_544
    bf16 = next(r for r in data["rows"] if r["precision"] == "bf16")
    assert bf16["kv_cache"] == 4096 * 70_272
    assert data["architecture"]["mla"] == {
        "kv_lora_rank": 512,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
        "q_lora_rank": 1536,
    }
    # a naive 2·k·d per layer with k = 128 heads of 192 would be 61 × 2 × 128 × 192 × 2 = 5,996,544
    assert data["kv_bytes_per_token"]["bf16"] * 85 < 61 * 2 * 128 * 192 * 2


def test_fp8_ds_mla_cache_is_656_bytes_per_token_and_layer(fake_hub):
    # vLLM flashmla_sparse.py: 512 fp8 NoPE + 4 fp32 scales + 64 bf16 RoPE = 512 + 16 + 128
    data = cli_json(DSV3, "--seq-len", "1000", "--kv-dtype", "fp8_ds_mla", "--precision", "bf16")
    assert data["kv_bytes_per_token"]["bf16"] == 61 * 656 == 40_016
    assert data["rows"][0]["kv_cache"] == 1000 * 40_016
    kv_term = next(t for t in data["rows"][0]["terms"] if t["name"] == "kv_cache")
    assert "656 B (fp8_ds_mla)" in kv_term["formula"] and "flashmla_sparse" in kv_term["source"]


def test_fp8_ds_mla_needs_an_mla_model(fake_hub):
    code, err = cli_error("test/tiny", "--kv-dtype", "fp8_ds_mla")
    assert code == 3
    assert err == "Error: --kv-dtype fp8_ds_mla needs an MLA model (DeepSeek V2/V3 kv_lora_rank)\n"


def test_deepseek_v2_lite_mla_without_query_lora():
    a = parse_architecture(DEEPSEEK_V2_LITE)
    assert a.mla.q_lora_rank is None and a.head_dim == 192
    assert memory.kv_bytes_per_token(a, 2) == 27 * (512 + 64) * 2 == 31_104
    assert memory.kv_bytes_per_token(a, 1, "fp8_ds_mla") == 27 * 656


def test_mla_activations_use_the_real_query_key_value_head_dims():
    a = parse_architecture(config(DSV3))
    act = memory.activation_bytes(a, batch=1, seq_len=4096, e=2)
    # queries + expanded keys: 128 heads × (nope 128 + rope 64); values + output: 128 × v_head 128
    per_token = 128 * (2 * 192 + 2 * 128)
    assert act.attention_phase == (2 * 4096 * 7168 + 4096 * per_token) * 2 == 788_529_152
    # hidden / heads would give 56 dims per head, far from the 192 / 128 the model uses
    assert 7168 // 128 == 56


# ---------------------------------------------------------------------------- sliding windows


def test_gemma3_keeps_5_local_layers_per_global_one():
    a = parse_architecture(fixture_config("google__gemma-3-1b-it"))
    assert a.layer_types[:6] == ("sliding",) * 5 + ("full",)
    assert a.sliding_layers == 22 and a.attention_layers == 26 and a.sliding_window == 512
    # 22 local layers keep 512 tokens, 4 global layers keep all 32,768; 1 KV head of 256
    tokens = 22 * 512 + 4 * 32768
    assert (
        memory.kv_cache_bytes(a, batch=1, seq_len=32768, kv_bytes=2)
        == tokens * 2 * 1 * 256 * 2
        == 145_752_064
    )
    assert a.attention_pattern() == "22 sliding 512 + 4 full"


@pytest.mark.parametrize(
    ("name", "text_key"),
    [
        ("google__gemma-3-1b-it", None),
        ("meta-llama__Llama-4-Scout-17B-16E-Instruct", "text_config"),
        ("nvidia__Nemotron-H-56B-Base-8K", None),
    ],
)
def test_raw_pattern_fields_give_the_same_layers_as_transformers(name, text_key):
    raw = fixture_config(name)
    a = parse_architecture(raw)
    text = raw[text_key] if text_key else raw
    assert _raw_layer_kinds(text, a.num_layers) == a.layer_types


def test_qwen3_next_raw_interval_matches_transformers():
    raw = config("Qwen/Qwen3-Next-80B-A3B-Instruct")
    a = parse_architecture(raw)
    assert _raw_layer_kinds(raw, 48) == a.layer_types == ("ssm", "ssm", "ssm", "full") * 12


# ---------------------------------------------------------------------------- Llama 4 chunked


def test_llama4_chunked_layers_keep_one_chunk_and_nope_layers_keep_everything():
    a = parse_architecture(fixture_config("meta-llama__Llama-4-Scout-17B-16E-Instruct"))
    assert a.attention_chunk == 8192
    assert a.layer_types[:4] == ("chunked", "chunked", "chunked", "full")  # every 4th layer is NoPE global
    assert a.attention_pattern() == "36 chunked 8192 + 12 full"
    per_token_layer = 2 * 8 * 128 * 2
    s = 131072
    assert memory.kv_cache_bytes(a, batch=1, seq_len=s, kv_bytes=2) == (36 * 8192 + 12 * s) * per_token_layer
    # below one chunk every layer keeps every token
    assert memory.kv_cache_bytes(a, batch=1, seq_len=4096, kv_bytes=2) == 48 * 4096 * per_token_layer
    assert memory.kv_bytes_per_token(a, 2) == 48 * per_token_layer


# ---------------------------------------------------------------------------- multimodal


def _snapshot(name: str) -> RepoSnapshot:
    return RepoSnapshot(repo_id=name, revision=None, sha=None, config=fixture_config(name), files={})


@pytest.mark.parametrize(
    "name", ["meta-llama__Llama-4-Scout-17B-16E-Instruct", "mistralai__Magistral-Small-2509"]
)
def test_multimodal_kv_comes_from_the_language_model(name):
    a = parse_architecture(fixture_config(name))
    assert a.towers == ("vision",) and a.text_config_key == "text_config"


def test_image_tokens_are_added_to_the_sequence():
    plain = estimate_snapshot(_snapshot("mistralai__Magistral-Small-2509"), seq_len=4096, precisions=["bf16"])
    images = estimate_snapshot(
        _snapshot("mistralai__Magistral-Small-2509"), seq_len=4096, image_tokens=1000, precisions=["bf16"]
    )
    per_token = 40 * 2 * 8 * 128 * 2  # Mistral Small text model: 40 layers, 8 KV heads of 128
    assert plain.rows[0].kv_cache == 4096 * per_token
    assert images.rows[0].kv_cache == 5096 * per_token
    assert images.to_dict()["settings"]["image_tokens"] == 1000


def test_image_tokens_need_a_vision_tower(fake_hub):
    code, err = cli_error("test/tiny", "--image-tokens", "256")
    assert code == 3
    assert err == "Error: --image-tokens: 'test/tiny' has no vision tower (no vision_config)\n"


def test_gemma3_over_the_hub_counts_the_published_total_and_caps_local_layers(fake_hub):
    data = cli_json("google/gemma-3-1b-it", "--seq-len", "32768", "--precision", "bf16")
    assert data["parameters"]["parameters"] == 999_885_952
    assert data["architecture"]["attention_pattern"] == "22 sliding 512 + 4 full"
    assert data["rows"][0]["kv_cache"] == (22 * 512 + 4 * 32768) * 2 * 1 * 256 * 2
    assert data["kv_bytes_per_token"]["bf16"] == 26 * 2 * 256 * 2


def test_llava_text_config_leans_on_llama_defaults():
    a = parse_architecture(fixture_config("llava-hf__llava-1.5-7b-hf"))
    assert a.towers == ("vision",)
    # LlamaConfig defaults: hidden 4096, 32 layers, 32 heads (MHA), intermediate 11008
    assert (a.hidden_size, a.num_layers, a.num_heads, a.num_kv_heads, a.intermediate_size) == (
        4096,
        32,
        32,
        32,
        11008,
    )
    assert memory.kv_bytes_per_token(a, 2) == 32 * 2 * 32 * 128 * 2 == 524_288


@pytest.mark.parametrize(
    "name",
    [
        "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight",  # Llava, Gemma 3, Mistral 3
        "multi_modal_projector.linear_1.weight",  # Llava, Mistral 3, Llama 4
        "visual.blocks.0.attn.qkv.weight",  # Qwen2-VL
        "vision_model.model.layers.0.self_attn.q_proj.weight",  # Llama 4
        "audio_tower.layers.0.self_attn.k_proj.weight",  # Qwen2-Audio
    ],
)
def test_tower_tensors_are_their_own_component(name):
    from hubmem.model.tensors import component_of

    expected = "audio" if name.startswith("audio") else "vision"
    assert component_of(name) == expected
