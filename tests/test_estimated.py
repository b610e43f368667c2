"""Config-only parameter estimates (hubmem.model.config_counts) against exact safetensors counts.

Each test names what the estimate leaves out and derives that remainder by hand from the config's
dimensions, so `exact - estimate` must equal it to the element; the relative gap is stated too.
The exact counts come from the fixture layouts (tests/helpers.headers), not from the estimate.
"""

from __future__ import annotations

from hubmem.model.architecture import parse_architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.tensors import count_tensors

from .helpers import DEEPSEEK_V2_LITE, config, headers


def exact_and_estimate(repo: str) -> tuple[int, int, dict, dict]:
    cfg = config(repo)
    counts = count_tensors(headers(repo), cfg)
    est = estimate_counts(parse_architecture(cfg))
    exact = counts.parameters - counts.by_component.get("mtp", 0)  # MTP is not in the config's layers
    return exact, est.parameters, counts.by_component, est.by_component


def test_deepseek_v3_mla_and_moe_estimate_misses_only_the_router_correction_biases():
    exact, est, by, est_by = exact_and_estimate("deepseek-ai/DeepSeek-V3")
    # MLA with query LoRA: q_a 7168×1536, q_b 1536×128·192, kv_a 7168×(512+64), kv_b 512×128·(128+128), o 128·128×7168
    attention = 7168 * 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 * 128 * 256 + 128 * 128 * 7168
    assert est_by["attention"] == by["attention"] == 61 * attention
    assert est_by["norms"] == by["norms"] == (2 * 61 + 1) * 7168 + 61 * (1536 + 512)  # + q_a / kv_a norms
    # left out: mlp.gate.e_score_correction_bias, one per routed expert in the 58 MoE layers
    assert exact - est == 58 * 256


def test_deepseek_v2_lite_estimate_equals_the_published_total():
    # no e_score_correction_bias in V2 (greedy top-k), so nothing is left out
    est = estimate_counts(parse_architecture(DEEPSEEK_V2_LITE))
    # MANIFEST.csv: the Hub's safetensors total of deepseek-ai/DeepSeek-V2-Lite
    assert est.parameters == 15_706_484_224
    attention = 2048 * 16 * 192 + 2048 * 576 + 512 * 16 * 256 + 16 * 128 * 2048  # q, kv_a, kv_b, o
    assert est.by_component["attention"] == 27 * attention


def test_mamba_estimate_is_exact():
    exact, est, by, est_by = exact_and_estimate("state-spaces/mamba-130m-hf")
    assert est == exact == 129_135_360
    assert est_by == by  # embeddings, ssm mixers, one norm per layer + final; no attention, no MLP


def test_qwen3_next_estimate_misses_the_attention_output_gate_qk_norms_and_shared_expert_gate():
    exact, est, by, est_by = exact_and_estimate("Qwen/Qwen3-Next-80B-A3B-Instruct")
    h, heads, head_dim = 2048, 16, 256
    full_layers = 12  # every 4th of 48; the other 36 are Gated DeltaNet mixers
    output_gate = full_layers * h * heads * head_dim  # q_proj emits the query and its gate (2× width)
    qk_norms = full_layers * 2 * head_dim
    shared_expert_gate = 48 * h  # Linear(h, 1) per MoE layer
    assert exact - est == output_gate + qk_norms + shared_expert_gate == 100_767_744
    assert abs(exact - est) / exact < 0.0013
    # the linear-attention mixers: in_proj_qkvz + in_proj_ba, conv1d, dt_bias, A_log, out_proj (+ norm)
    assert est_by["ssm"] == by["ssm"] + 36 * 128  # the mixer's norm, which the checkpoint counts as a norm


def test_whisper_estimate_misses_the_conv_front_end_and_biases():
    exact, est, by, _ = exact_and_estimate("openai/whisper-small")
    h, f, mels = 768, 3072, 80
    conv = mels * h * 3 + h + h * h * 3 + h  # conv1, conv2 (kernel 3) with biases
    attention_biases = (
        (12 + 12 + 12) * 3 * h
    )  # q, v, o biases of encoder self-, decoder self- and cross-attention
    mlp_biases = 24 * (f + h)
    layernorm_biases = (2 * 12 + 1 + 3 * 12 + 1) * h
    assert by["other"] == conv
    assert exact - est == conv + attention_biases + mlp_biases + layernorm_biases == 2_178_048
    assert (exact - est) / exact < 0.01


def test_bart_estimate_misses_learned_positions_and_biases():
    exact, est, by, est_by = exact_and_estimate("EbanLee/kobart-summary-v3")
    h, f, layers = 768, 3072, 6
    positions = 2 * (1026 + 2) * h  # BartLearnedPositionalEmbedding: max_position_embeddings + 2 rows, ×2
    attention_biases = (
        (layers + 2 * layers) * 4 * h
    )  # q, k, v, o of encoder self-, decoder self- and cross-attention
    mlp_biases = 2 * layers * (f + h)
    # 5 LayerNorms per encoder+decoder layer pair and one layernorm_embedding per stack: the estimate
    # counts as many weights (its "final norm" per stack stands for layernorm_embedding), not the biases
    layernorm_biases = (5 * layers + 2) * h
    assert est_by["norms"] == by["norms"] - layernorm_biases
    assert exact - est == positions + attention_biases + mlp_biases + layernorm_biases == 1_704_960
    assert (exact - est) / exact < 0.014


def test_t5_estimate_misses_the_relative_position_bias_tables():
    for repo, heads, tables in (("google-t5/t5-small", 8, 3), ("google/flan-t5-base", 12, 2)):
        exact, est, by, est_by = exact_and_estimate(repo)
        # 32 buckets × heads per table; t5-small also stores one in its first EncDecAttention
        assert exact - est == tables * 32 * heads
        assert est_by["attention"] == by["attention"] and est_by["mlp"] == by["mlp"]


def test_dense_and_moe_estimates_are_unchanged():
    for repo in ("meta-llama/Llama-3.1-8B", "mistralai/Mixtral-8x7B-v0.1"):
        exact, est, _, _ = exact_and_estimate(repo)
        assert est == exact
