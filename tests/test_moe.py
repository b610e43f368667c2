"""Mixture of experts: MoE layer patterns per family, total and active parameters per token.

Every expected count below is worked out by hand from the config's dimensions (module shapes of the
transformers / DeepSeek / OpenAI reference implementations), then checked against the figure the
model's authors published.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.moe import active_parameters, parse_moe
from hubmem.model.tensors import count_tensors

from .helpers import config, headers


def cli_json(repo_id: str) -> dict:
    from hubmem.cli import main

    result = CliRunner().invoke(main, [repo_id, "--format", "json", "--seq-len", "1024"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def active_of(repo_id: str) -> tuple[int, int, int]:
    """(parameters without MTP, routed-expert parameters, active) from the fixture's headers."""
    counts = count_tensors(headers(repo_id), config(repo_id))
    arch = parse_architecture(config(repo_id))
    main = counts.parameters - counts.by_component.get("mtp", 0)
    return main, counts.routed_expert_params, active_parameters(main, counts.routed_expert_params, arch.moe)


# -- layer patterns ------------------------------------------------------------------------------


def test_deepseek_v3_first_three_layers_are_dense():
    moe = parse_architecture(config("deepseek-ai/DeepSeek-V3")).moe
    assert moe.moe_layers == tuple(range(3, 61))
    assert (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size) == (256, 8, 2048)
    assert (moe.shared_intermediate_size, moe.dense_intermediate_size) == (2048, 18432)


def test_qwen3_moe_uses_moe_intermediate_size_in_every_layer():
    moe = parse_architecture(config("Qwen/Qwen3-30B-A3B")).moe
    assert moe.moe_layers == tuple(range(48))
    assert (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size) == (128, 8, 768)
    assert moe.shared_intermediate_size == 0


def test_qwen_mlp_only_layers_and_sparse_step():
    cfg = {"num_experts": 8, "num_experts_per_tok": 2, "decoder_sparse_step": 2, "mlp_only_layers": [3]}
    assert parse_moe(cfg, 8, 100).moe_layers == (1, 5, 7)  # (i + 1) % 2 == 0, minus layer 3


def test_ernie_moe_layers_start_at_index_one_with_two_shared_experts():
    moe = parse_architecture(config("baidu/ERNIE-4.5-21B-A3B-Thinking")).moe
    assert moe.moe_layers == tuple(range(1, 28))
    assert (moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size) == (64, 6, 1536)
    assert moe.shared_intermediate_size == 2 * 1536
    assert moe.dense_intermediate_size == 12288


def test_llama4_interleaved_moe_layers_and_shared_expert():
    cfg = {
        "model_type": "llama4_text",
        "num_local_experts": 128,
        "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 2,
        "intermediate_size": 8192,
        "intermediate_size_mlp": 16384,
    }
    moe = parse_moe(cfg, 48, 8192)
    assert moe.moe_layers == tuple(range(1, 48, 2))  # Llama4TextConfig: range(step - 1, L, step)
    assert (moe.shared_intermediate_size, moe.dense_intermediate_size) == (8192, 16384)


def test_dense_models_have_no_moe_spec():
    assert parse_architecture(config("meta-llama/Llama-3.1-8B")).moe is None


# -- total and active parameters -----------------------------------------------------------------


def test_mixtral_8x7b_active_parameters():
    h, L, i, V, E, k = 4096, 32, 14336, 32000, 8, 2
    attention = 2 * h * h + 2 * h * 1024  # q, o; k, v with 8 KV heads of 128
    expert = 3 * h * i  # w1, w3, w2
    layer = attention + E * expert + E * h + 2 * h  # + router + two norms
    total = L * layer + 2 * V * h + h
    active = total - L * (E - k) * expert
    assert (total, active) == (46_702_792_704, 12_879_925_248)
    assert active_of("mistralai/Mixtral-8x7B-v0.1") == (total, L * E * expert, active)
    # Mixtral of Experts (Jiang et al. 2024): 46.7B parameters, 12.9B active per token.
    assert round(total / 1e9, 1) == 46.7 and round(active / 1e9, 1) == 12.9


def test_qwen3_30b_a3b_active_parameters():
    h, L, V, E, k, i = 2048, 48, 151936, 128, 8, 768
    attention = 2 * h * 4096 + 2 * h * 512 + 2 * 128  # q, o (32 heads of 128); k, v (4); q/k norms
    expert = 3 * h * i
    layer = attention + E * expert + E * h + 2 * h
    total = L * layer + 2 * V * h + h
    active = total - L * (E - k) * expert
    assert (total, active) == (30_532_122_624, 3_353_032_704)
    assert active_of("Qwen/Qwen3-30B-A3B") == (total, L * E * expert, active)
    # Model card: 30.5B in total, 3.3B activated (truncated: 3.35B).
    assert round(total / 1e9, 1) == 30.5 and int(active / 1e8) == 33


def test_deepseek_v3_active_parameters_leave_out_the_mtp_layer():
    h, V, E, k, i_moe, i_dense = 7168, 129280, 256, 8, 2048, 18432  # 61 layers: 3 dense + 58 MoE
    q_lora, kv_lora, heads, nope, rope, v_dim = 1536, 512, 128, 128, 64, 128
    attention = (
        q_lora * h + q_lora  # q_a_proj + q_a_layernorm
        + heads * (nope + rope) * q_lora  # q_b_proj
        + (kv_lora + rope) * h + kv_lora  # kv_a_proj_with_mqa + kv_a_layernorm
        + heads * (nope + v_dim) * kv_lora  # kv_b_proj
        + h * heads * v_dim  # o_proj
    )  # fmt: skip
    expert = 3 * h * i_moe
    moe_mlp = E * expert + expert + E * h + E  # routed + 1 shared + router weight + e_score_correction_bias
    dense_mlp = 3 * h * i_dense
    main = 3 * (attention + dense_mlp + 2 * h) + 58 * (attention + moe_mlp + 2 * h) + 2 * V * h + h
    active = main - 58 * (E - k) * expert
    assert (main, active) == (671_026_419_200, 37_552_297_472)
    counts = count_tensors(headers("deepseek-ai/DeepSeek-V3"), config("deepseek-ai/DeepSeek-V3"))
    moe = parse_architecture(config("deepseek-ai/DeepSeek-V3")).moe
    assert counts.routed_expert_params == 58 * E * expert
    # MTP module (layer 61): one MoE layer + embed_tokens, enorm, hnorm, eh_proj, shared_head.
    mtp = attention + moe_mlp + 2 * h + V * h + 2 * h + 2 * h * h + h + V * h
    assert counts.parameters - counts.by_component["mtp"] == main
    assert active_parameters(main, counts.routed_expert_params, moe) == active
    assert counts.by_component["mtp"] == mtp == 13_463_426_304
    # DeepSeek-V3 technical report §1: 671B total parameters, 37B activated for each token;
    # the model card's "685B" is the Hub's stored total (parameters, MTP and F32 block scales).
    assert int(main / 1e9) == 671 and int(active / 1e9) == 37
    assert round(counts.stored_total / 1e9) == 685 and round((main + mtp) / 1e9) == 684


@pytest.mark.parametrize(("repo_id", "E", "L", "card_total", "card_active"), [
    ("openai/gpt-oss-20b", 32, 24, 20.91, 3.61),
    ("openai/gpt-oss-120b", 128, 36, 116.83, 5.13),
])  # fmt: skip
def test_gpt_oss_active_parameters(repo_id, E, L, card_total, card_active):
    h, i, V, k = 2880, 2880, 201088, 4
    attention = (4096 * h + 4096) + 2 * (512 * h + 512) + (h * 4096 + h) + 64  # biased q, k, v, o; sinks
    expert = 3 * h * i + 2 * i + h  # gate_up [2i, h] + bias 2i, down [h, i] + bias h (MXFP4 unpacked)
    layer = attention + E * expert + E * h + E + 2 * h  # + router weight and bias, two norms
    total = L * layer + 2 * V * h + h
    active = total - L * (E - k) * expert
    assert active_of(repo_id) == (total, L * E * expert, active)
    # gpt-oss model card (arXiv 2508.10925) Table 1 counts active parameters without the embedding
    # table (an index lookup, no matmul): 20b 20.91B total / 3.61B active, 120b 116.83B / 5.13B.
    assert round(total / 1e9, 2) == card_total
    assert round((active - V * h) / 1e9, 2) == card_active


def test_ernie_4_5_mixed_dtypes_and_active_parameters():
    repo = "baidu/ERNIE-4.5-21B-A3B-Thinking"
    h, V, E, k, i_moe = 2560, 103424, 64, 6, 1536
    attention = 2 * h * 2560 + 2 * h * 512  # 20 heads / 4 KV heads of 128
    expert = 3 * h * i_moe
    router = E * h + E  # gate.weight + moe_statics.e_score_correction_bias, both F32
    moe_layer = attention + E * expert + 3 * h * 2 * i_moe + router + 2 * h  # routed, 2 shared experts
    dense_layer = attention + 3 * h * 12288 + 2 * h  # layer 0 (moe_layer_start_index 1)
    total = 27 * moe_layer + dense_layer + V * h + h  # tied embeddings
    active = total - 27 * (E - k) * expert
    counts = count_tensors(headers(repo), config(repo))
    assert counts.stored_by_dtype == {"BF16": total - 27 * router, "F32": 27 * router}
    assert active_of(repo) == (total, 27 * E * expert, active)
    # config-only estimate: the same, less the correction biases it does not know of
    arch = parse_architecture(config(repo))
    estimated = estimate_counts(arch)
    assert estimated.parameters == total - 27 * E
    assert (
        active_parameters(estimated.parameters, estimated.routed_expert_params, arch.moe) == active - 27 * E
    )
    # Model card: 21B total parameters, 3B activated per token (21.8B and 3.35B, truncated).
    assert int(total / 1e9) == 21 and int(active / 1e9) == 3


# -- activations ---------------------------------------------------------------------------------


def test_moe_activations_use_k_experts_of_moe_intermediate_size():
    arch = parse_architecture(config("Qwen/Qwen3-30B-A3B"))
    s, h = 4096, 2048
    act = memory.activation_bytes(arch, batch=1, seq_len=s, e=2)
    # 8 experts x 768 = 6144 per token; config intermediate_size 6144 is unused by any layer
    assert act.mlp_phase == (2 * s * h + 3 * s * 8 * 768) * 2
    ds = parse_architecture(config("deepseek-ai/DeepSeek-V3"))
    act = memory.activation_bytes(ds, batch=1, seq_len=s, e=2)
    # MoE layer: 8 x 2048 + shared 2048 = 18432 = the dense layers' intermediate_size
    assert act.mlp_phase == (2 * s * 7168 + 3 * s * 18432) * 2
    mixtral = parse_architecture(config("mistralai/Mixtral-8x7B-v0.1"))
    act = memory.activation_bytes(mixtral, batch=2, seq_len=s, e=2)
    assert act.mlp_phase == (2 * 2 * s * 4096 + 3 * 2 * s * 2 * 14336) * 2


# -- output --------------------------------------------------------------------------------------


def test_json_and_summary_show_active_parameters(fake_hub):
    data = cli_json("Qwen/Qwen3-30B-A3B")
    assert data["parameters"]["active"] == 3_353_032_704
    assert data["parameters"]["routed_expert_params"] == 28_991_029_248
    assert data["architecture"]["moe"]["num_experts"] == 128
    from hubmem.cli import main

    out = CliRunner().invoke(main, ["Qwen/Qwen3-30B-A3B", "--seq-len", "1024"]).stdout
    assert (
        "30,532,122,624 exact (stored elements: BF16 30,532,122,624); active per token 3,353,032,704" in out
    )
    assert "experts       8 of 128 experts (768 wide) in 48 of 48 layers (decoder_sparse_step=1" in out


def test_dense_json_has_no_active_figure(fake_hub):
    assert cli_json("test/tiny")["parameters"]["active"] is None


def test_llama4_fused_expert_tensors_count_as_routed():
    """Llama 4 stores each MoE layer's experts fused: experts.gate_up_proj [E, h, 2i], experts.down_proj
    [E, i, h] (transformers Llama4TextExperts), beside a shared expert and a router. A small synthetic
    checkpoint with those names and shapes: layer 0 dense (intermediate_size_mlp), layer 1 MoE."""
    h, i, i_mlp, E, V = 64, 32, 128, 4, 256
    cfg = {
        "model_type": "llama4_text",
        "hidden_size": h,
        "intermediate_size": i,
        "intermediate_size_mlp": i_mlp,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "vocab_size": V,
        "num_local_experts": E,
        "num_experts_per_tok": 1,
        "interleave_moe_layer_step": 2,
        "tie_word_embeddings": False,
    }
    attention = {f"self_attn.{p}.weight": ("BF16", s) for p, s in
                 (("q_proj", (64, h)), ("k_proj", (32, h)), ("v_proj", (32, h)), ("o_proj", (h, 64)))}  # fmt: skip
    dense = {f"feed_forward.{p}.weight": ("BF16", s) for p, s in
             (("gate_proj", (i_mlp, h)), ("up_proj", (i_mlp, h)), ("down_proj", (h, i_mlp)))}  # fmt: skip
    moe = {
        "feed_forward.router.weight": ("BF16", (E, h)),
        "feed_forward.experts.gate_up_proj": ("BF16", (E, h, 2 * i)),
        "feed_forward.experts.down_proj": ("BF16", (E, i, h)),
        "feed_forward.shared_expert.gate_proj.weight": ("BF16", (i, h)),
        "feed_forward.shared_expert.up_proj.weight": ("BF16", (i, h)),
        "feed_forward.shared_expert.down_proj.weight": ("BF16", (h, i)),
    }
    tensors = {"model.embed_tokens.weight": ("BF16", (V, h)), "lm_head.weight": ("BF16", (V, h))}
    for n, block in ((0, {**attention, **dense}), (1, {**attention, **moe})):
        tensors.update({f"model.layers.{n}.{k}": v for k, v in block.items()})
    counts = count_tensors({"model.safetensors": tensors}, cfg)
    arch = parse_architecture(cfg)
    assert arch.moe.moe_layers == (1,)
    assert counts.routed_expert_params == E * 3 * h * i
    total = 2 * V * h + 2 * (2 * 64 * h + 2 * 32 * h) + 3 * h * i_mlp + E * h + E * 3 * h * i + 3 * h * i
    assert counts.parameters == total
    assert active_parameters(total, counts.routed_expert_params, arch.moe) == total - (E - 1) * 3 * h * i
    # the config-only estimate agrees (no norms in this synthetic checkpoint: 5 × h of them)
    assert estimate_counts(arch).parameters == total + 5 * h


def test_gpt_oss_summary_shows_stored_hub_and_active_counts(fake_hub):
    from hubmem.cli import main

    out = CliRunner().invoke(main, ["openai/gpt-oss-20b", "--seq-len", "1024"]).stdout
    line = next(x for x in out.splitlines() if x.startswith("parameters"))
    assert line == (
        "parameters    20,914,757,184 exact (stored elements: BF16 1,804,459,584 · U8 10,152,345,600); "
        "as the Hub counts them: BF16 1,804,459,584 · U8 19,707,494,400; active per token 4,187,440,704"
    )


def test_explain_shows_the_active_parameter_formula(fake_hub):
    from hubmem.cli import main

    out = CliRunner().invoke(main, ["mistralai/Mixtral-8x7B-v0.1", "--seq-len", "1024", "--explain"]).stdout
    routed = 32 * 8 * 3 * 4096 * 14336
    assert (
        "active per token = (parameters − MTP) − routed experts × (E − k) / E = "
        f"(46,702,792,704 − 0) − {routed:,} × 6 / 8 = 12,879,925,248" in out
    )


def test_moe_config_without_recognisable_expert_tensors_warns(fake_hub):
    from hubmem.cli import main

    from .helpers import layout

    cfg = {**config("test/tiny"), "num_local_experts": 4, "num_experts_per_tok": 2}
    fake_hub.add_repo(
        "acme/unnamed-experts",
        layout={"files": {"model.safetensors": layout("test/tiny")["files"]["model.safetensors"]}},
        config=cfg,
    )
    result = CliRunner().invoke(main, ["acme/unnamed-experts", "--format", "json", "--seq-len", "64"])
    assert result.exit_code == 0
    assert result.stderr == (
        "Warning: config.json describes 4 experts but no routed-expert tensors ('.experts.' in the name) "
        "were found; active parameters not computed\n"
    )
    assert json.loads(result.stdout)["parameters"]["active"] is None
