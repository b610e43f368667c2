"""Encoder-decoder models: the decoder's self-attention KV grows with generated tokens, the
cross-attention KV is fixed by the encoder length (vLLM CrossAttentionSpec, transformers
EncoderDecoderCache). Numbers by hand from each config.json."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from hubmem.cli import main
from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture, refine_with_counts
from hubmem.model.tensors import count_tensors, encoder_decoder_split

from .helpers import config, headers

WHISPER = "openai/whisper-small"
T5 = "google-t5/t5-small"
FLAN = "google/flan-t5-base"
CONFIGS = Path(__file__).resolve().parent.parent / "fixtures" / "configs"


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def cli_json(*args: str) -> dict:
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return json.loads(result.stdout)


def terms(row: dict) -> dict[str, int]:
    return {t["name"]: t["bytes"] for t in row["terms"]}


def test_whisper_cross_attention_is_fixed_by_1500_frames(fake_hub):
    data = cli_json(WHISPER, "--precision", "bf16")
    assert data["settings"]["seq_len"] == 448  # decoder: max_target_positions
    assert data["settings"]["encoder_len"] == 1500  # max_source_positions: 30 s of audio
    row = terms(data["rows"][0])
    per_token_layer = 2 * 12 * 64 * 2
    assert row["kv_cache"] == 12 * 448 * per_token_layer == 16_515_072
    assert row["cross_kv"] == 12 * 1500 * per_token_layer == 55_296_000
    assert data["rows"][0]["kv_cache"] == 16_515_072 + 55_296_000
    assert data["kv_bytes_per_token"]["bf16"] == 12 * per_token_layer  # decoder self-attention only


def test_encoder_len_option_sets_the_cross_attention_length(fake_hub):
    data = cli_json(WHISPER, "--precision", "bf16", "--encoder-len", "750", "--seq-len", "100")
    row = terms(data["rows"][0])
    assert row["cross_kv"] == 12 * 750 * 2 * 12 * 64 * 2
    assert row["kv_cache"] == 12 * 100 * 2 * 12 * 64 * 2


def test_whisper_parameters_split_into_encoder_and_decoder(fake_hub):
    data = cli_json(WHISPER, "--precision", "bf16")
    layer = 4 * 768 * 768 + 3 * 768 + 2 * 768 + (768 * 3072 + 3072) + (3072 * 768 + 768) + 2 * 768
    encoder = (80 * 768 * 3 + 768) + (768 * 768 * 3 + 768) + 1500 * 768 + 12 * layer + 2 * 768
    cross = 4 * 768 * 768 + 3 * 768 + 2 * 768
    decoder = 51865 * 768 + 448 * 768 + 12 * (layer + cross) + 2 * 768
    assert data["stack_split"] == {"encoder": encoder, "decoder": decoder, "shared": 0}
    assert encoder + decoder == 241_734_912 == data["parameters"]["parameters"]


def test_whisper_summary_shows_encoder_and_split(fake_hub):
    result = cli(WHISPER, "--precision", "bf16")
    assert result.exit_code == 0, result.stderr
    assert "encoder       layers 12 · hidden 768 · heads 12 · source length 1500 (max_source_positions)" in (
        result.stdout
    )
    assert "encoder 88,154,112 · decoder 153,580,800 · shared 0 parameters" in result.stdout
    assert "· encoder 1,500 tokens" in result.stdout


def test_t5_decoder_layers_heads_and_natural_source_length():
    a = parse_architecture(config(FLAN))
    assert a.num_layers == 12 and a.encoder.num_layers == 12 and a.head_dim == 64  # d_kv
    assert a.encoder.source_len == 512 and a.encoder.source_len_from == "n_positions"
    cross = memory.cross_attention_bytes(a, batch=2, encoder_len=512, kv_bytes=2)
    assert cross == 2 * 12 * 512 * 2 * 12 * 64 * 2


def test_t5_mlp_kind_counts_both_stacks():
    # t5-small: ReLU DenseReluDense (2·h·i per layer), flan-t5: gated-gelu wi_0 / wi_1 (3·h·i)
    for repo, gated in ((T5, False), (FLAN, True)):
        counts = count_tensors(headers(repo))
        arch = refine_with_counts(parse_architecture(config(repo)), counts.by_component.get("mlp"))
        assert arch.gated_mlp is gated, repo


def test_t5_split_has_shared_embeddings():
    split = encoder_decoder_split(headers(T5))
    assert split["shared"] == 32128 * 512  # shared.weight; lm_head tied, not stored
    assert sum(split.values()) == count_tensors(headers(T5)).parameters


def test_bart_dimensions_come_from_encoder_and_decoder_fields():
    a = parse_architecture(json.loads((CONFIGS / "EbanLee__kobart-summary-v3.json").read_text()))
    assert (a.num_layers, a.num_heads, a.head_dim, a.intermediate_size) == (6, 16, 48, 3072)
    assert a.encoder.num_layers == 6 and a.encoder.source_len == 1026
    assert memory.kv_bytes_per_token(a, 2) == 6 * 2 * 16 * 48 * 2


def test_encoder_len_on_a_decoder_only_model_is_an_error(fake_hub):
    result = cli("test/tiny", "--encoder-len", "100")
    assert result.exit_code == 3
    assert result.stderr == "Error: --encoder-len: 'llama' is not an encoder-decoder model\n"


def test_bart_over_the_hub_splits_stacks_and_sizes_both_caches(fake_hub):
    data = cli_json("EbanLee/kobart-summary-v3", "--precision", "bf16", "--seq-len", "300")
    assert data["settings"]["encoder_len"] == 1026  # max_position_embeddings
    row = terms(data["rows"][0])
    assert row["kv_cache"] == 6 * 300 * 2 * 16 * 48 * 2
    assert row["cross_kv"] == 6 * 1026 * 2 * 16 * 48 * 2
    # per layer: 4 attention projections with biases, 2 layer norms, fc1/fc2; the decoder adds cross-attention
    layer = 4 * (768 * 768 + 768) + 2 * 2 * 768 + (768 * 3072 + 3072) + (3072 * 768 + 768)
    cross = 4 * (768 * 768 + 768) + 2 * 768
    stack = 1028 * 768 + 2 * 768  # learned positions (1026 + BART's offset 2) and layernorm_embedding
    assert data["stack_split"] == {
        "encoder": stack + 6 * layer,
        "decoder": stack + 6 * (layer + cross),
        "shared": 30000 * 768,  # model.shared; final_logits_bias is a buffer, not a parameter
    }
    assert data["parameters"]["buffers"] == 30000
