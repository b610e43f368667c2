"""Exact counts from real checkpoint layouts served over HTTP, against the Hub's published totals."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.model.architecture import parse_architecture
from hubmem.model.tensors import component_of, count_tensors, is_buffer

from .helpers import FIXTURES, config, headers, layout, layout_reconciles, layout_totals, published_repos


def estimate_json(*args: str) -> dict:
    result = CliRunner().invoke(main_cli(), [*args, "--format", "json", "--seq-len", "1024"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def main_cli():
    from hubmem.cli import main

    return main


def hub_counts_at_publication(data: dict, parameters: dict) -> dict[str, int]:
    """hubmem's Hub-convention counts, adjusted to the convention of the day the figure was published:
    a layout whose `hub_counting` says `U8 *_scales: 0` was published after the Hub stopped counting
    the MXFP4 scales (hubmem.model.tensors.hub_elements)."""
    hub = dict(parameters["hub_by_dtype"])
    if (data.get("hub_counting") or {}).get("U8 *_scales") == 0:
        hub["U8"] -= parameters["mxfp4_scale_elements"]
    return hub


@pytest.mark.parametrize("repo_id", published_repos())
def test_hub_counts_equal_the_hubs_published_totals(fake_hub, repo_id):
    data = layout(repo_id)
    published = data["published"]
    assert layout_reconciles(data) is None  # the fixture itself holds the published figure
    parameters = estimate_json(repo_id)["parameters"]
    hub = hub_counts_at_publication(data, parameters)
    assert sum(hub.values()) == published["total"]
    if published.get("by_dtype"):
        assert hub == published["by_dtype"]
    assert parameters["stored_by_dtype"] == layout_totals(data)  # raw header elements, as stored
    assert fake_hub.weights_downloads() == []


def test_sharded_repo_reads_every_header_in_one_request(fake_hub):
    fake_hub.hang("/api/models/meta-llama/Llama-3.1-8B?blobs", 2.0, times=1)  # the file list answers last
    data = estimate_json("meta-llama/Llama-3.1-8B")
    assert data["parameters"]["stored_total"] == 8_030_261_248
    assert fake_hub.count(path="/safetensors-metadata/") == 1
    # model_info, config.json, all four shard headers, and the guess of a single model.safetensors (a 404)
    assert len(fake_hub.requests) == 4
    assert [r.status for r in fake_hub.filter("GET", "/resolve/main/model.safetensors")] == [404]
    # all asked for at once (hubmem.hub.fetch._guess): one round trip, where there were two
    (info,) = fake_hub.filter("GET", "/api/models/meta-llama/Llama-3.1-8B?blobs")
    assert all(r.arrived < info.answered for r in fake_hub.requests)


def test_sharded_fallback_reads_shards_by_range_when_the_endpoint_is_missing(fake_hub):
    fake_hub.sharded_endpoint = False
    data = estimate_json("meta-llama/Llama-3.1-8B")
    assert data["parameters"]["stored_total"] == 8_030_261_248
    index_gets = [
        r for r in fake_hub.filter("GET", "/resolve/") if r.path.endswith("/model.safetensors.index.json")
    ]
    assert len(index_gets) == 1
    assert fake_hub.count("GET", "model-0000", server="hub") == 4  # one Range GET per shard (+ CDN redirects)
    assert fake_hub.weights_downloads() == []


def test_gpt2_attn_bias_masks_are_stored_but_are_not_parameters():
    counts = count_tensors(headers("openai-community/gpt2"))
    assert counts.stored_total == 137_022_720  # what the Hub publishes
    assert counts.buffers == 12 * 1024 * 1024
    assert counts.parameters == 124_439_808  # GPT-2 small's true parameter count
    assert counts.by_component["embeddings"] == 50257 * 768 + 1024 * 768
    assert "lm_head" not in counts.by_component  # tied to wte, not stored


def test_llama2_inv_freq_buffers_are_the_f32_elements():
    counts = count_tensors(headers("meta-llama/Llama-2-7b-hf"))
    assert counts.stored_by_dtype == {"F16": 6_738_415_616, "F32": 2048}
    assert counts.buffers == 2048 and counts.parameters == 6_738_415_616


def test_pythia_masks_and_rotary_buffers():
    counts = count_tensors(headers("EleutherAI/pythia-410m"))
    assert counts.buffers == 24 * 2048 * 2048 + 24 * 8
    assert counts.parameters == 505_997_504 - counts.buffers == 405_334_016


def test_components_of_llama_3_1_8b_add_up():
    c = count_tensors(headers("meta-llama/Llama-3.1-8B")).by_component
    assert c == {
        "embeddings": 128256 * 4096,
        "attention": 32 * (2 * 4096 * 4096 + 2 * 4096 * 1024),
        "mlp": 32 * 3 * 4096 * 14336,
        "norms": 65 * 4096,
        "lm_head": 128256 * 4096,
    }


@pytest.mark.parametrize(
    ("name", "shape", "component", "buffer"),
    [
        ("model.layers.0.post_attention_layernorm.weight", (4096,), "norms", False),
        ("model.layers.0.self_attn.q_norm.weight", (128,), "norms", False),
        ("h.0.attn.bias", (1, 1, 1024, 1024), "attention", True),
        ("h.0.attn.c_attn.bias", (2304,), "attention", False),
        ("gpt_neox.layers.0.attention.dense.bias", (1024,), "attention", False),
        ("embed_out.weight", (50304, 1024), "lm_head", False),
        ("transformer.word_embeddings_layernorm.weight", (1024,), "norms", False),
        ("bert.encoder.layer.0.attention.output.dense.weight", (1024, 1024), "attention", False),
        ("bert.encoder.layer.0.output.dense.weight", (1024, 4096), "mlp", False),
        ("model.layers.3.mlp.experts.7.down_proj.weight", (4096, 14336), "mlp", False),
    ],
)
def test_tensor_names_map_to_components(name, shape, component, buffer):
    assert component_of(name) == component
    assert is_buffer(name, shape) is buffer


@pytest.mark.parametrize(
    ("repo_id", "expected"),
    [
        ("meta-llama/Llama-3.1-8B", (4096, 14336, 32, 32, 8, 128, 131072, 128256, False, True)),
        ("mistralai/Mistral-7B-v0.1", (4096, 14336, 32, 32, 8, 128, 32768, 32000, False, True)),
        ("Qwen/Qwen2.5-7B-Instruct", (3584, 18944, 28, 28, 4, 128, 32768, 152064, False, True)),
        ("Qwen/Qwen3-8B", (4096, 12288, 36, 32, 8, 128, 40960, 151936, False, True)),
        ("google/gemma-2-9b", (3584, 14336, 42, 16, 8, 256, 8192, 256000, True, True)),
        ("microsoft/phi-2", (2560, 10240, 32, 32, 32, 80, 2048, 51200, False, False)),
        ("microsoft/Phi-3-mini-128k-instruct", (3072, 8192, 32, 32, 32, 96, 131072, 32064, False, True)),
        (
            "openai-community/gpt2",
            (768, 3072, 12, 12, 12, 64, 1024, 50257, True, False),
        ),  # n_embd, n_layer, n_inner=None
        ("EleutherAI/pythia-410m", (1024, 4096, 24, 16, 16, 64, 2048, 50304, False, False)),
        (
            "tiiuae/falcon-40b",
            (8192, 32768, 60, 128, 8, 64, 2048, 65024, True, False),
        ),  # ffn 4h, num_kv_heads
        (
            "bigscience/bloomz-560m",
            (1024, 4096, 24, 16, 16, 64, 2048, 250880, True, False),
        ),  # n_embed, seq_length
    ],
)
def test_architecture_normalisation(repo_id, expected):
    a = parse_architecture(config(repo_id))
    got = (
        a.hidden_size,
        a.intermediate_size,
        a.num_layers,
        a.num_heads,
        a.num_kv_heads,
        a.head_dim,
        a.max_context,
        a.vocab_size,
        a.tie_word_embeddings,
        a.gated_mlp,
    )
    assert got == expected
    assert a.normalised_by.startswith("transformers ")


def test_nested_text_config_of_a_multimodal_model():
    cfg = json.loads((FIXTURES.parent / "configs" / "mistralai__Magistral-Small-2509.json").read_text())
    a = parse_architecture(cfg)
    assert a.text_config_key == "text_config"
    assert (a.hidden_size, a.num_layers, a.num_heads, a.num_kv_heads, a.head_dim) == (5120, 40, 32, 8, 128)


def test_opt_config_from_its_own_field_names():
    cfg = json.loads((FIXTURES.parent / "configs" / "facebook__opt-125m.json").read_text())
    a = parse_architecture(cfg)
    assert (a.hidden_size, a.intermediate_size, a.num_layers, a.num_heads, a.num_kv_heads) == (
        768,
        3072,
        12,
        12,
        12,
    )
    assert (a.max_context, a.vocab_size, a.gated_mlp, a.learned_positions) == (2048, 50272, False, True)


def test_unknown_model_type_falls_back_to_the_raw_dict():
    cfg = {
        "model_type": "brand_new_arch",
        "n_embd": 512,
        "n_layer": 4,
        "n_head": 8,
        "vocab_size": 1000,
        "n_positions": 256,
    }
    a = parse_architecture(cfg)
    assert (a.hidden_size, a.num_layers, a.num_heads, a.num_kv_heads, a.intermediate_size, a.max_context) == (
        512,
        4,
        8,
        8,
        2048,
        256,
    )
    assert a.normalised_by.startswith("raw config")


def test_gpt_oss_20b_under_both_hub_counting_conventions():
    """The Hub's figure at revision 6cee5e8 counts MXFP4 *_blocks bytes twice and *_scales once; a later
    revision drops the scales, which leaves exactly the unpacked parameter count."""
    data = layout("openai/gpt-oss-20b")
    counts = count_tensors(headers("openai/gpt-oss-20b"), config("openai/gpt-oss-20b"))
    assert counts.hub_by_dtype == data["published"]["by_dtype"]
    later = data["published_later"]["by_dtype"]
    assert counts.hub_by_dtype["U8"] - counts.mxfp4_scale_elements == later["U8"] == 19_110_297_600
    assert counts.parameters == data["published_later"]["total"] == 20_914_757_184
    assert counts.stored_by_dtype == {"BF16": 1_804_459_584, "U8": 10_152_345_600}  # the headers, as stored


def test_a_guessed_header_request_that_fails_transiently_is_asked_again(fake_hub):
    # the shard headers are asked for beside the file list, one attempt (hubmem.hub.fetch._guess); a 503
    # there is not the answer: the request goes again, with retries, once the file list says it is needed
    fake_hub.fail("/safetensors-metadata/", 503, times=1)
    data = estimate_json("meta-llama/Llama-3.1-8B")
    assert data["parameters"]["stored_total"] == 8_030_261_248
    assert [r.status for r in fake_hub.filter("GET", "/safetensors-metadata/")] == [503, 200]


def test_an_audit_makes_no_guesses(fake_hub):
    # an audit is bound by its requests, not its round trips: 3 per sharded repo, none answered 404
    result = CliRunner().invoke(main_cli(), ["audit", "meta-llama/Llama-3.1-8B", "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    assert len(fake_hub.requests) == 3
    assert fake_hub.count(status=404) == 0
