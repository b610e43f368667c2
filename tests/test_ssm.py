"""SSM and linear-attention layers keep a fixed state per sequence instead of a KV cache.

State sizes by hand from vLLM `MambaStateShapeCalculator` (model_executor/layers/mamba/mamba_utils.py):
mamba1 conv (k-1, i) + temporal (i, n); mamba2 conv (k-1, i + 2·g·n) + temporal (heads, head_dim, n);
gated DeltaNet conv (k-1, 2·kh·kd + vh·vd) + temporal (vh, vd, kd).
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from hubmem.cli import main
from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture

from .helpers import cli_json, config

MAMBA = "state-spaces/mamba-130m-hf"
QWEN3_NEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"


def test_mamba_130m_runs_and_has_state_but_no_kv(fake_hub):
    data = cli_json(MAMBA, "--seq-len", "2048")
    assert data["parameters"]["parameters"] == 129_135_360  # the Hub's published total
    assert data["kv_bytes_per_token"]["bf16"] == 0
    # 24 layers × (conv 3 × 1536 + ssm 1536 × 16) × 2 bytes
    per_sequence = 24 * (3 * 1536 + 1536 * 16) * 2
    assert data["state_bytes_per_sequence"]["bf16"] == per_sequence == 1_400_832
    assert data["state_bytes_per_sequence"]["fp32"] == 2 * per_sequence
    bf16 = next(r for r in data["rows"] if r["precision"] == "bf16")
    assert [t["name"] for t in bf16["terms"]] == ["weights", "state", "activations", "overhead"]
    assert bf16["kv_cache"] == per_sequence  # independent of the sequence length
    assert cli_json(MAMBA, "--seq-len", "64", "--batch", "3")["rows"][1]["kv_cache"] == 3 * per_sequence


def test_mamba_mixer_tensors_are_an_ssm_component_with_four_linear_layers():
    from hubmem.model.tensors import count_tensors

    from .helpers import headers

    counts = count_tensors(headers(MAMBA))
    # per layer: in_proj 768×3072, conv1d 1536×1×4 + bias, x_proj 1536×(48 + 2·16), dt_proj 48×1536 + bias,
    # A_log 1536×16, D 1536, out_proj 1536×768
    linear = 768 * 3072 + 1536 * 80 + 48 * 1536 + 1536 * 768
    layer = linear + 1536 * 4 + 1536 + 1536 + 1536 * 16 + 1536
    assert counts.by_component == {"embeddings": 50280 * 768, "ssm": 24 * layer, "norms": 25 * 768}
    assert counts.linear_params == 24 * linear  # A_log, D, conv1d stay 16-bit when quantizing


def test_mamba_activations_are_the_mixer_not_an_mlp():
    a = parse_architecture(config(MAMBA))
    act = memory.activation_bytes(a, batch=1, seq_len=1024, e=2)
    assert act.mlp_phase == 0 and act.attention_phase == 0
    # in_proj 2·1536 + conv output 1536 + scan output 1536, plus residual and normed input 2·768
    assert act.ssm_phase == (2 * 1024 * 768 + 1024 * (2 * 1536 + 1536 + 1536)) * 2


def test_mamba_explain_and_summary_show_the_state(fake_hub):
    result = CliRunner().invoke(main, [MAMBA, "--seq-len", "1024", "--precision", "bf16", "--explain"])
    assert result.exit_code == 0, result.stderr
    assert "state         mamba1 in 24 layers · 1,400,832 bytes per sequence at 16-bit" in result.stdout
    assert "intermediate 1536 (SSM inner width, no MLP) · layers 24 · no attention" in result.stdout
    assert "b × mamba1 layers × (conv 3×1536 × 2 + ssm 1536×16 × 2) = 1 × 24 × (4,608 × 2 + 24,576 × 2)" in (
        result.stdout
    )


def test_qwen3_next_state_in_36_deltanet_layers_and_kv_in_12():
    a = parse_architecture(config(QWEN3_NEXT))
    assert a.attention_layers == 12 and a.ssm.num_layers == 36
    # conv (4 - 1) × (2·16·128 + 32·128) and temporal 32 × 128 × 128, bf16
    per_layer = 3 * 8192 + 32 * 128 * 128
    assert memory.state_bytes_per_sequence(a, 2, 2) == 36 * per_layer * 2 == 39_518_208
    assert memory.kv_bytes_per_token(a, 2) == 12 * 2 * 2 * 256 * 2 == 24_576
    # --state-dtype fp32 widens only the temporal state (vLLM mamba_ssm_cache_dtype)
    assert memory.state_bytes_per_sequence(a, 2, 4) == 36 * (3 * 8192 * 2 + 32 * 128 * 128 * 4)


def test_state_dtype_option_reaches_the_row(fake_hub):
    data = cli_json(QWEN3_NEXT, "--seq-len", "4096", "--precision", "bf16", "--state-dtype", "fp32")
    state = next(t for t in data["rows"][0]["terms"] if t["name"] == "state")
    assert state["bytes"] == 36 * (3 * 8192 * 2 + 32 * 128 * 128 * 4)
    assert data["state_bytes_per_sequence"]["bf16"] == state["bytes"]
    kv = next(t for t in data["rows"][0]["terms"] if t["name"] == "kv_cache")
    assert kv["bytes"] == 4096 * 24_576
    assert data["rows"][0]["kv_cache"] == kv["bytes"] + state["bytes"]


def test_summary_names_the_state_dtype_used(fake_hub):
    """mamba-130m: 24 layers of conv 3 × 1536 = 4,608 and temporal 1536 × 16 = 24,576 elements. The summary
    sizes the state for a 16-bit row: conv at 2 B, the temporal (ssm) state at --state-dtype.
    fp32: 24 × (4,608 × 2 + 24,576 × 4) = 2,580,480; auto: 24 × (4,608 + 24,576) × 2 = 1,400,832 (16-bit)."""
    result = CliRunner().invoke(main, [MAMBA, "--seq-len", "1024", "--state-dtype", "fp32"])
    assert result.exit_code == 0, result.stderr
    assert (
        "state         mamba1 in 24 layers · 2,580,480 bytes per sequence at 16-bit conv + fp32 ssm state"
        in (result.stdout)
    )
    assert "at 16-bit (fixed" not in result.stdout
    result = CliRunner().invoke(main, [MAMBA, "--seq-len", "1024", "--state-dtype", "bf16"])
    assert "1,400,832 bytes per sequence at 16-bit conv + bf16 ssm state (fixed, any length)" in result.stdout


# Jamba-v0.1's dimensions (transformers JambaConfig defaults are that model's): 32 layers, attention at
# i % 8 == 4, Mamba1 mixers of mamba_expand 2 × 4096, d_state 16, d_conv 4. A hand-written config, not a
# Hub file: no verbatim Jamba config.json was available offline.
JAMBA = {
    "model_type": "jamba",
    "architectures": ["JambaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 65536,
    "attn_layer_period": 8,
    "attn_layer_offset": 4,
    "expert_layer_period": 2,
    "expert_layer_offset": 1,
    "num_experts": 16,
    "num_experts_per_tok": 2,
    "mamba_d_state": 16,
    "mamba_d_conv": 4,
    "mamba_expand": 2,
    "max_position_embeddings": 262144,
}


def test_jamba_attention_every_8th_layer_and_mamba1_state_elsewhere():
    a = parse_architecture(JAMBA)
    assert [i for i, k in enumerate(a.layer_types) if k == "full"] == [4, 12, 20, 28]
    assert a.ssm.kind == "mamba1" and a.ssm.num_layers == 28
    assert memory.kv_bytes_per_token(a, 2) == 4 * 2 * 8 * 128 * 2 == 16_384
    # 28 × (conv 3 × 8192 + ssm 8192 × 16) × 2
    assert memory.state_bytes_per_sequence(a, 2, 2) == 28 * (3 * 8192 + 8192 * 16) * 2 == 8_716_288
    assert a.attention_pattern() == "28 mamba1 + 4 full"


# Falcon-H1-0.5B's dimensions (third-party copy of its config, with mamba_d_ssm written out): every
# layer runs attention and a Mamba2 mixer in parallel.
FALCON_H1 = {
    "model_type": "falcon_h1",
    "architectures": ["FalconH1ForCausalLM"],
    "hidden_size": 1024,
    "intermediate_size": 2048,
    "num_hidden_layers": 36,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 32784,
    "mamba_d_ssm": 1536,
    "mamba_d_conv": 4,
    "mamba_d_head": 64,
    "mamba_d_state": 128,
    "mamba_expand": 2,
    "mamba_n_groups": 1,
    "mamba_n_heads": 24,
    "max_position_embeddings": 16384,
}


def test_falcon_h1_parallel_hybrid_keeps_kv_and_state_in_every_layer():
    a = parse_architecture(FALCON_H1)
    assert a.attention_layers == 36 and a.ssm.num_layers == 36 and a.ssm.kind == "mamba2"
    assert memory.kv_bytes_per_token(a, 2) == 36 * 2 * 2 * 64 * 2
    # conv (4 - 1) × (1536 + 2·1·128), temporal 24 × 64 × 128
    assert memory.state_bytes_per_sequence(a, 2, 2) == 36 * (3 * 1792 + 24 * 64 * 128) * 2 == 14_542_848
    assert a.attention_pattern() == "full ∥ 36 mamba2 (parallel hybrid)"


def test_mamba2_state_uses_groups_heads_and_head_dim():
    # transformers Mamba2Config defaults (Mamba-Codestral-7B's dimensions): hidden 4096, expand 2,
    # 64 layers, 128 heads of 64, 8 groups, state 128, conv 4. Hand-written config, not a Hub file.
    a = parse_architecture(
        {
            "model_type": "mamba2",
            "hidden_size": 4096,
            "num_hidden_layers": 64,
            "vocab_size": 32768,
            "expand": 2,
            "num_heads": 128,
            "head_dim": 64,
            "n_groups": 8,
            "state_size": 128,
            "conv_kernel": 4,
        }
    )
    assert a.ssm.kind == "mamba2" and a.attention_layers == 0
    # conv (4 - 1) × (8192 + 2·8·128), temporal 128 × 64 × 128
    assert a.ssm.conv_state == (3, 10240) and a.ssm.temporal_state == (128, 64, 128)
    assert memory.state_bytes_per_sequence(a, 2, 2) == 64 * (3 * 10240 + 128 * 64 * 128) * 2 == 138_149_888


def test_an_ssm_kind_hubmem_does_not_know_is_a_config_error(tmp_path):
    folder = tmp_path / "custom-hybrid"
    folder.mkdir()
    custom = dict(JAMBA, model_type="jamba_custom")  # unknown to transformers and to hubmem
    custom["layer_types"] = ["mamba"] * 4 + ["attention"] + ["mamba"] * 27
    (folder / "config.json").write_text(json.dumps(custom))
    result = CliRunner().invoke(main, [str(folder)])
    assert result.exit_code == 14
    assert result.stderr.endswith(
        "Error: config.json has 31 SSM / linear-attention layers of a kind hubmem does not know "
        "(model_type 'jamba_custom')\n"
    )


def test_an_unusable_state_size_is_a_config_error(tmp_path):
    folder = tmp_path / "broken-mamba"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(config(MAMBA), state_size=0)))
    result = CliRunner().invoke(main, [str(folder)])
    assert result.exit_code == 14
    assert result.stderr.endswith("Error: config.json has mamba SSM layers but no usable state_size\n")
