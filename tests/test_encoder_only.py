"""Encoder-only models (BERT family) keep no KV cache: one bidirectional pass over the whole input.

vLLM gives their layers an `EncoderOnlyAttentionSpec` whose `max_memory_usage_bytes` is 0
(vllm/v1/kv_cache_interface.py). The same families configured as decoders (`is_decoder`,
BertLMHeadModel) cache keys and values like any causal model.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from hubmem.cli import main
from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture

from .helpers import config

BERT = "google-bert/bert-large-uncased"


def run(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return result.stdout


def test_bert_has_no_kv_cache_at_any_length(fake_hub):
    data = json.loads(run(BERT, "--seq-len", "512", "--batch", "8", "--format", "json"))
    assert set(data["kv_bytes_per_token"].values()) == {0}
    assert data["architecture"]["layer_types"] == ["bidirectional"] * 24
    assert data["architecture"]["attention_pattern"] == "bidirectional (encoder-only, no KV cache)"
    for row in data["rows"]:
        assert row["kv_cache"] == 0
        kv = next(t for t in row["terms"] if t["name"] == "kv_cache")
        assert kv["bytes"] == 0
    # the weights still count: the Hub's published total (layout.json, safetensors maintainers' table)
    assert data["parameters"]["parameters"] == 336_226_108


def test_bert_explain_says_why_there_is_no_kv_cache(fake_hub):
    out = run(BERT, "--seq-len", "512", "--precision", "fp32", "--explain")
    assert "encoder-only (bert): 24 bidirectional layers attend over the whole input" in out
    assert "EncoderOnlyAttentionSpec" in out


def test_bert_keeps_attention_and_mlp_activations():
    arch = parse_architecture(config(BERT))
    act = memory.activation_bytes(arch, batch=1, seq_len=512, e=4)
    # the attention phase still holds scores: one encoder layer is a full attention + MLP block
    assert act.attention_phase > 0 and act.mlp_phase > 0


def test_bert_configured_as_a_decoder_caches_keys_and_values():
    raw = dict(config(BERT), is_decoder=True, architectures=["BertLMHeadModel"])
    arch = parse_architecture(raw)
    assert arch.layer_types == ("full",) * 24
    assert memory.kv_bytes_per_token(arch, 2) == 24 * 2 * 16 * 64 * 2  # 16 heads of 64, K and V, bf16


def test_roberta_for_sequence_classification_is_encoder_only():
    raw = {
        "architectures": ["RobertaForSequenceClassification"],
        "model_type": "roberta",
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 50265,
        "max_position_embeddings": 514,
    }
    arch = parse_architecture(raw)
    assert memory.kv_bytes_per_token(arch, 2) == 0
    assert memory.kv_cache_bytes(arch, batch=4, seq_len=512, kv_bytes=2) == 0
