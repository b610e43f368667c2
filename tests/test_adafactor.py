"""Adafactor's factored second moment, per parameter shape, as transformers keeps it.

transformers 5.24 optimization.py `Adafactor`: `_get_options` factors every gradient with
`len(grad_shape) >= 2`; `step` then allocates `exp_avg_sq_row = zeros(grad_shape[:-1])` and
`exp_avg_sq_col = zeros(grad_shape[:-2] + grad_shape[-1:])`, and a full `exp_avg_sq` for 1-D
parameters (beta1=None, the default: no first moment). A tensor [E, r, c] therefore keeps E·r + E·c
elements (its leading dims stay), exactly E separate r × c matrices.
"""

from __future__ import annotations

from hubmem.memory import training
from hubmem.model import architecture
from hubmem.model.config_counts import estimate_counts
from hubmem.model.tensors import count_tensors

from . import helpers

MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"
GPT_OSS = "openai/gpt-oss-20b"
FP32 = training.TrainingSettings(optimizer="adafactor", regimes=("fp32",))


def shape_of(repo: str) -> training.ModelShape:
    cfg = helpers.config(repo)
    counts = count_tensors(helpers.headers(repo), cfg)
    arch = architecture.refine_with_counts(
        architecture.parse_architecture(cfg), counts.by_component.get("mlp")
    )
    return training.ModelShape(arch, counts)


def test_a_3d_tensor_keeps_its_leading_dims_in_both_factors():
    # [32, 2880, 5760]: row factor [32, 2880] = 92,160, col factor [32, 5760] = 184,320 elements.
    matrices = training.adafactor_matrices({(32, 2880, 5760): 1, (7, 9): 2})
    assert sorted(matrices) == [(7, 9, 2), (2880, 5760, 32)]
    n = 32 * 2880 * 5760 + 2 * 7 * 9 + 5  # + 5 one-dimensional parameters
    assert (
        training.optimizer_state_bytes("adafactor", n, 4, matrices)[0] == (92_160 + 184_320 + 2 * 16 + 5) * 4
    )


def test_mixtral_per_expert_matrices():
    """Mixtral-8x7B stores each expert as 2-D w1, w3 [14336, 4096] and w2 [4096, 14336]. Factored, per layer:
    q, o 4096+4096 = 8,192 each; k, v 1024+4096 = 5,120 each; router [8, 4096] 4,104;
    8 experts × 3 × (14336 + 4096) = 442,368: 473,096 × 32 layers = 15,139,072;
    embed_tokens and lm_head [32000, 4096]: 2 × 36,096 = 72,192. Whole: 2 norms × 4096 × 32 + final 4096 = 266,240.
    (15,139,072 + 72,192 + 266,240) = 15,477,504 elements × 4 B = 61,910,016 B."""
    row = training.training_row(shape_of(MIXTRAL), "fp32", 128, FP32)
    assert row.optimizer == 61_910_016
    bf16 = training.TrainingSettings(optimizer="adafactor", regimes=("bf16",))
    assert training.training_row(shape_of(MIXTRAL), "bf16", 128, bf16).optimizer == 15_477_504 * 2


def test_mixtral_from_config_alone_matches_the_checkpoint():
    """Without safetensors headers the shapes come from config.json: the same per-expert 2-D matrices."""
    cfg = helpers.config(MIXTRAL)
    arch = architecture.parse_architecture(cfg)
    shape = training.ModelShape(arch, estimate_counts(arch))
    assert training.training_row(shape, "fp32", 128, FP32).optimizer == 61_910_016


def test_gpt_oss_fused_3d_experts():
    """gpt-oss-20b stores experts fused: MXFP4 gate_up_proj_blocks U8 [32, 5760, 90, 16] is the dequantized
    GptOssExperts.gate_up_proj [32, 2880, 5760] (in = 90·16·2 FP4 = 2880), down_proj [32, 2880, 2880], and 2-D
    biases [32, 5760], [32, 2880] (also factored: len(shape) >= 2). Factored, per layer:
    q [4096, 2880] 6,976; k, v [512, 2880] 3,392 each; o [2880, 4096] 6,976; router [32, 2880] 2,912;
    gate_up 32·2880 + 32·5760 = 276,480; its bias 32 + 5760 = 5,792; down 32·2880 · 2 = 184,320; its bias 2,912:
    493,152 × 24 layers = 11,835,648; embed_tokens and lm_head [201088, 2880]: 2 × 203,968 = 407,936.
    Whole, per layer: sinks 64, q/k/v/o biases 4096 + 512 + 512 + 2880, router bias 32, 2 norms 5,760 = 13,856;
    × 24 + final norm 2880 = 335,424. (11,835,648 + 407,936 + 335,424) = 12,579,008 × 4 B = 50,316,032 B."""
    row = training.training_row(shape_of(GPT_OSS), "fp32", 128, FP32)
    assert row.optimizer == 50_316_032
