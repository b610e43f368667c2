"""LoRA on fused MoE experts (hubmem.memory.training.lora_matrices): PEFT's ParamWrapper counts, exact per
expert, and what PEFT makes of the MLP targets by itself on transformers 5."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hubmem.cli import main

from .helpers import cli_json

# Mixtral-8x7B: h 4096, 8 experts of i 14336, 32 layers, 32 heads / 8 KV heads of 128. LoRA r 16 (default),
# all seven targets: attention per layer q 16·(4096 + 4096) + k, v 16·(4096 + 1024) each + o 16·(4096 + 4096)
MIXTRAL_ATTENTION = 2 * 16 * 8192 + 2 * 16 * 5120  # 425,984
# gate_up_proj [8, 28672, 4096] at rank 2r = 32: A (32·8 × 4096), B (28672 × 32·8) = 1,048,576 per expert;
# down_proj [8, 4096, 14336] at r: A (16·8 × 14336), B (4096 × 16·8) = 294,912 per expert
MIXTRAL_EXPERTS = 8 * (32 * (4096 + 28672) + 16 * (14336 + 4096))


def trainable(repo: str, *args: str) -> int:
    rows = cli_json(repo, "--train", "lora", "--seq-len", "16", *args)["training"]["rows"]
    return rows[0]["trainable_parameters"]


def test_mixtral_experts_as_peft_converts_the_mlp_targets(fake_hub):
    assert MIXTRAL_ATTENTION == 425_984 and MIXTRAL_EXPERTS == 8 * (1_048_576 + 294_912)
    assert (
        trainable("mistralai/Mixtral-8x7B-v0.1") == 32 * (MIXTRAL_ATTENTION + MIXTRAL_EXPERTS) == 357_564_416
    )
    # target_modules only: the experts are parameters, not Linear modules; Mixtral has no other MLP
    assert trainable("mistralai/Mixtral-8x7B-v0.1", "--lora-experts", "none") == 32 * MIXTRAL_ATTENTION
    # target_parameters on both at rank r: gate_up 16·8·(4096 + 28672), down 16·8·(14336 + 4096)
    params = 32 * (MIXTRAL_ATTENTION + 16 * 8 * (4096 + 28672) + 16 * 8 * (14336 + 4096))
    assert trainable("mistralai/Mixtral-8x7B-v0.1", "--lora-experts", "params") == params == 223_346_688


def test_gpt_oss_experts_need_target_parameters(fake_hub):
    """gpt_oss is not among PEFT's converted types: auto adapts the attention only. gpt-oss-20b: h 2880,
    24 layers, 64 heads / 8 KV heads of 64, 32 experts of i 2880 (gate_up_proj [32, 2880, 5760])."""
    attention = 16 * (2880 + 4096) * 2 + 16 * (2880 + 512) * 2
    assert trainable("openai/gpt-oss-20b") == 24 * attention == 7_962_624
    experts = 16 * 32 * (2880 + 5760) + 16 * 32 * (2880 + 2880)
    assert trainable("openai/gpt-oss-20b", "--lora-experts", "params") == 24 * (attention + experts)


def test_only_one_of_gate_and_up_on_fused_experts_is_peft_s_error(fake_hub):
    result = CliRunner().invoke(
        main,
        ["mistralai/Mixtral-8x7B-v0.1", "--train", "lora", "--lora-targets", "q,gate", "--seq-len", "16"],
    )
    assert result.exit_code == 3
    assert result.stderr == (
        "Error: PEFT cannot adapt gate without up on mixtral: transformers 5 fuses them into the experts' "
        "gate_up_proj (add both to --lora-targets)\n"
    )


@pytest.mark.parametrize("value", ["auto", "none", "params"])
def test_lora_experts_is_a_lora_option(fake_hub, value):
    result = CliRunner().invoke(main, ["test/tiny", "--train", "full", "--lora-experts", value])
    assert result.exit_code == 3
    assert result.stderr == "Error: --lora-experts applies to --train lora or qlora, not full\n"
    assert trainable("test/tiny", "--lora-experts", value) == trainable(
        "test/tiny"
    )  # a dense model: no experts


def test_deepseek_v3_dense_layers_and_shared_experts_or_the_routed_experts(fake_hub):
    """DeepSeek-V3: h 7168, 61 layers, the first 3 dense (i 18432), 58 MoE layers of 256 experts (i 2048) and a
    shared expert (i 2048). MLP targets only, r 16. none: the Linear MLPs (dense layers, shared experts);
    auto (deepseek_v3 is a PEFT-converted type): the experts' gate_up_proj at 2r and down_proj at r, and the
    Linear MLPs lose their adapters."""
    args = ("--lora-targets", "gate,up,down")
    linear = 3 * 3 * 16 * (7168 + 18432) + 58 * 3 * 16 * (7168 + 2048)
    assert trainable("deepseek-ai/DeepSeek-V3", *args, "--lora-experts", "none") == linear == 29_343_744
    experts = 58 * 256 * (32 * (7168 + 4096) + 16 * (2048 + 7168))
    assert trainable("deepseek-ai/DeepSeek-V3", *args) == experts == 7_541_358_592
