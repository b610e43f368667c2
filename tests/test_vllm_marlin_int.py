"""GPTQ / AWQ checkpoints through vLLM's gptq_marlin / awq_marlin (hubmem/runtimes/marlin_int.py names the vLLM
files): what Marlin allocates against the stored tensors, derived by hand on TinyLlama-1.1B stored as GPTQ / AWQ
(tests/test_quantized.py builds the checkpoints: 22 layers; per layer the Linears' in × out sum to 44,040,192 and
their inputs K to 6 × 2048 + 5632 = 17,920)."""

from __future__ import annotations

import copy

from hubmem.hub.fetch import RepoSnapshot
from hubmem.jobs.serve import engine_options, plan_for
from hubmem.model.architecture import parse_architecture
from hubmem.runtimes import marlin_int, sharding
from hubmem.runtimes import vllm as rt

from .test_quantized import quantize

A100 = rt.GpuSpec("A100", None, 80 * 2**30, (8, 0))
QZEROS_PER_LAYER = 44_040_192 // 256  # qzeros [K/128, N/8] int32 = K·N/256 bytes
G_IDX_PER_LAYER = 17_920 * 4  # g_idx [K] int32


def _gptq(desc_act: bool) -> tuple[dict, dict]:
    headers, config = quantize("gptq")
    config = copy.deepcopy(config)
    config["quantization_config"]["desc_act"] = desc_act
    return headers, config


def _deltas(headers, config, tp):
    arch = parse_architecture(config)
    plan = marlin_int.marlin_method(config, (8, 0))
    return marlin_int.stage_deltas(headers, config, arch, plan, tp=tp, pp=1, float_bytes=2)


def test_gptq_without_act_order_drops_qzeros_and_g_idx():
    total, parts = _deltas(*_gptq(False), tp=1)
    assert parts == {"qzeros": [-22 * QZEROS_PER_LAYER], "g_idx": [-22 * G_IDX_PER_LAYER]}
    assert total == [-(3_784_704 + 1_576_960)]


def test_gptq_with_act_order_keeps_g_idx_twice():
    total, parts = _deltas(*_gptq(True), tp=1)
    assert parts["g_idx"] == [22 * G_IDX_PER_LAYER]  # sorted g_idx + g_idx_sort_indices − the stored one
    assert total == [-3_784_704 + 1_576_960]


def test_gptq_act_order_at_tp2_whole_column_g_idx_and_row_scales():
    """Per layer at TP 2: qzeros −172,032 / 2; g_idx kept = q, k, v, gate, up whole (5 × 2048 × 4 = 40,960) +
    o, down split ((2048 + 5632) × 4 / 2 = 15,360), twice, − the 35,840 counted = +76,800; o / down scales
    [16, 2048] + [44, 2048] F16 = 245,760 whole against 122,880 split: +122,880."""
    total, parts = _deltas(*_gptq(True), tp=2)
    assert parts == {"qzeros": [-22 * 86_016], "g_idx": [22 * 76_800], "scales": [22 * 122_880]}
    assert total == [22 * (-86_016 + 76_800 + 122_880)]


def test_awq_marlin_keeps_the_stored_bytes():
    headers, config = quantize("awq")
    assert marlin_int.marlin_method(config, (8, 0)).method == "awq_marlin"
    assert _deltas(headers, config, tp=1) == ([0], {})


def test_no_marlin_below_compute_capability_8_or_for_asymmetric_gptq():
    headers, config = _gptq(False)
    assert marlin_int.marlin_method(config, (7, 5)) is None
    config["quantization_config"]["sym"] = False
    assert marlin_int.marlin_method(config, (8, 0)) is None


def test_the_plan_weights_and_term():
    headers, config = _gptq(False)
    arch = parse_architecture(config)
    snapshot = RepoSnapshot("TinyLlama/TinyLlama-1.1B-GPTQ", None, None, config, {}, headers)
    (rank,) = sharding.rank_weights(headers, config, arch, tp=1, pp=1, float_bytes=2)
    rope = sharding.rotary_cache_bytes(arch, config, 2)
    plan = plan_for(snapshot, arch, 0, A100, engine_options(None, {"max_model_len": 2048}))
    assert plan.worst.weights == rank.bytes + rope - 5_361_664
    term = next(t for t in plan.terms if t.name == "marlin_repack")
    assert term.bytes == -5_361_664
    assert (
        "qzeros dropped (sym: no zero points) -3,784,704 B; g_idx dropped (no act order) -1,576,960 B"
        in term.formula
    )
