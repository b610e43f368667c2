"""LoRA on multi-head latent attention (DeepSeek V2/V3): the projections the model really has.

DeepseekV3Attention (transformers models/deepseek_v3/modeling_deepseek_v3.py) holds, as (out, in):
q_a_proj (q_lora_rank, h), q_b_proj (a·(nope + rope), q_lora_rank) — or one q_proj (a·(nope + rope), h)
when q_lora_rank is null (DeepSeek-V2-Lite) —, kv_a_proj_with_mqa (kv_lora_rank + rope, h),
kv_b_proj (a·(nope + v_head), kv_lora_rank) and o_proj (h, a·v_head). No k_proj / v_proj.
hubmem maps --lora-targets q -> q_a_proj + q_b_proj (or q_proj), k and v -> kv_a_proj_with_mqa + kv_b_proj
(each adapted once), o -> o_proj. LoRA adds r·(in + out) per adapted matrix (Hu et al. 2021, §4).
"""

from __future__ import annotations

from hubmem.cli import main
from hubmem.memory import training
from hubmem.model.architecture import parse_architecture

from . import helpers

V3 = parse_architecture(helpers.config("deepseek-ai/DeepSeek-V3"))
V2_LITE = parse_architecture(helpers.DEEPSEEK_V2_LITE)
ATTENTION = ("q", "k", "v", "o")


def test_deepseek_v3_adapts_the_mla_projections():
    """h 7168, a 128, q_lora_rank 1536, kv_lora_rank 512, nope 128, rope 64, v_head 128, 61 layers, r 16:
    q_a 16·(7168 + 1536) = 139,264; q_b 16·(1536 + 128·192) = 417,792; kv_a 16·(7168 + 576) = 123,904;
    kv_b 16·(512 + 128·256) = 532,480; o 16·(128·128 + 7168) = 376,832: 1,590,272 per layer × 61."""
    assert training.lora_parameters(V3, 16, ATTENTION) == 97_006_592
    assert training.lora_parameters(V3, 16, ("q",)) == 61 * (139_264 + 417_792)
    kv = 61 * (123_904 + 532_480)
    # k and v name the same two latent projections: adapted once whichever is given
    assert training.lora_parameters(V3, 16, ("k",)) == kv
    assert training.lora_parameters(V3, 16, ("v",)) == kv
    assert training.lora_parameters(V3, 16, ("k", "v")) == kv
    assert training.lora_parameters(V3, 16, ("o",)) == 61 * 376_832


def test_deepseek_v3_lora_matrices_are_a_and_b_of_each_projection():
    # q_a (1536 × 7168): A 16 × 7168, B 1536 × 16; q_b (24576 × 1536): A 16 × 1536, B 24576 × 16
    assert training.lora_matrices(V3, 16, ("q",)) == [
        (16, 7168, 61),
        (1536, 16, 61),
        (16, 1536, 61),
        (24576, 16, 61),
    ]


def test_deepseek_v2_lite_without_query_lora_adapts_q_proj():
    """h 2048, a 16, q_lora_rank null, kv_lora_rank 512, nope 128, rope 64, v_head 128, 27 layers, r 16:
    q_proj 16·(2048 + 16·192) = 81,920; kv_a 16·(2048 + 576) = 41,984; kv_b 16·(512 + 16·256) = 73,728;
    o 16·(16·128 + 2048) = 65,536: 263,168 per layer × 27 = 7,105,536."""
    assert training.lora_parameters(V2_LITE, 16, ATTENTION) == 7_105_536
    assert training.lora_parameters(V2_LITE, 16, ("q",)) == 27 * 81_920


def test_trainable_parameters_of_a_deepseek_v3_lora_row():
    shape = training.ModelShape(V3, training.CheckpointCounts(parameters=10**9))
    settings = training.TrainingSettings(mode="lora", lora_targets=ATTENTION, regimes=("bf16",))
    assert training.training_row(shape, "bf16", 128, settings).trainable == 97_006_592


def test_help_states_the_mla_mapping():
    params = {p.name: p for p in main.commands["estimate"].params}
    assert params["lora_targets"].help == (
        "Projections LoRA adapts (comma-separated from q,k,v,o,gate,up,down; --train lora or qlora). "
        "MLA (DeepSeek V2/V3): "
        "q = q_a_proj + q_b_proj (or q_proj), k and v = kv_a_proj_with_mqa + kv_b_proj, o = o_proj."
    )
