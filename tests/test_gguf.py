"""GGUF repos (llama.cpp / Ollama): headers read by Range from the fake Hub, one row per quant file,
llama.cpp's memory model. Fixtures: tests/gguf_fixtures.py (written with gguf.GGUFWriter)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.errors import InvalidInputError

LLAMA = "bartowski/Llama-3.2-3B-Instruct-GGUF"
GEMMA = "bartowski/google_gemma-3-4b-it-GGUF"
QWEN = "unsloth/Qwen3-30B-A3B-GGUF"
DEEPSEEK = "bartowski/DeepSeek-V2-Lite-Chat-GGUF"
MAMBA = "hubmem-test/mamba-130m-GGUF"

# Llama 3.2 3B, hand-derived from its config (h 3072, i 8192, 28 layers, KV width 8 × 128 = 1024,
# vocab 128256): per layer 2 norms 2·3072 + q, o 2·3072² + k, v 2·3072·1024 + gate, up, down 3·3072·8192
# = 6,144 + 18,874,368 + 6,291,456 + 75,497,472 = 100,669,440; × 28 = 2,818,744,320; + token_embd
# 3072·128256 = 394,002,432 + output_norm 3,072 + rope_freqs 64 = 3,212,749,888 (the Hub's safetensors
# count, 3,212,749,824, + the 64 RoPE factors llama.cpp's converter adds).
LLAMA_PARAMS = 3_212_749_888
LLAMA_LAYER_F16 = (18_874_368 + 6_291_456 + 75_497_472) * 2 + 6_144 * 4  # 201,351,168 bytes per F16 layer


@pytest.fixture
def gguf_hub(fake_hub):
    return fake_hub  # the GGUF repos are registered on the session's fake Hub (tests/conftest.py)


def test_llama_repo_one_row_per_quant_file_with_exact_counts(gguf_hub):
    est = hubmem.estimate(LLAMA, ctx_size=4096)
    assert [r.model.quant for r in est.rows] == ["F16", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]
    assert {r.model.parameters for r in est.rows} == {LLAMA_PARAMS}
    q4 = est.row("Q4_K_M").model
    # Q4_K_M (llama-quant.cpp): use_more_bits picks 14 of 28 layers (0-2, 5, 8, ..., 23, 24-27) whose
    # attn_v (3,145,728) and ffn_down (25,165,824) are Q6_K; the tied token_embd is the output: Q6_K.
    q6_params = 14 * (3_145_728 + 25_165_824) + 394_002_432
    f32_params = 28 * 6_144 + 3_072 + 64
    q4_params = LLAMA_PARAMS - q6_params - f32_params
    assert q4.params_by_type == {"F32": f32_params, "Q4_K": q4_params, "Q6_K": q6_params}
    # Q4_K: 144 bytes per 256 elements, Q6_K: 210 per 256 (gguf.GGML_QUANT_SIZES)
    assert q4.bytes_by_type == {
        "F32": f32_params * 4,
        "Q4_K": q4_params // 256 * 144,
        "Q6_K": q6_params // 256 * 210,
    }
    assert q4.tensor_bytes == 2_011_539_712
    assert round(q4.bits_per_weight, 3) == 5.009
    # the file: header region + every tensor padded to 32 bytes
    assert q4.file_bytes is not None and 0 < q4.file_bytes - q4.tensor_bytes < 1024**2
    # llama.cpp f16 KV at -c 4096: 28 layers × 4096 cells × (1024 K + 1024 V) × 2 bytes
    assert est.row("Q4_K_M").plan.kv_bytes == 28 * 4096 * 2048 * 2 == 469_762_048
    assert gguf_hub.weights_downloads() == []


@pytest.mark.parametrize(
    ("ctk", "ctv", "fa", "expected"),
    [
        ("f16", "f16", "on", 28 * 4096 * (1024 * 2) * 2),
        # q8_0: 34 bytes per 32 elements -> a 1024 row is 1,088 bytes
        ("q8_0", "q8_0", "on", 28 * 4096 * 1088 * 2),
        # q4_0: 18 per 32 -> 576; q5_1: 24 per 32 -> 768; iq4_nl: 18 per 32 -> 576
        ("q4_0", "q4_0", "on", 28 * 4096 * 576 * 2),
        ("q8_0", "q5_1", "on", 28 * 4096 * (1088 + 768)),
        ("f32", "iq4_nl", "on", 28 * 4096 * (4096 + 576)),
        ("bf16", "f16", "off", 28 * 4096 * 2048 * 2),
    ],
)
def test_kv_bytes_per_cache_type(gguf_hub, ctk, ctv, fa, expected):
    est = hubmem.estimate(
        LLAMA, quant="Q4_K_M", ctx_size=4096, cache_type_k=ctk, cache_type_v=ctv, flash_attn=fa
    )
    assert est.rows[0].plan.kv_bytes == expected


def test_quantized_v_cache_needs_flash_attention(gguf_hub):
    with pytest.raises(InvalidInputError, match="quantized V cache needs flash attention"):
        hubmem.estimate(LLAMA, cache_type_v="q4_0", flash_attn="off")


def test_partial_offload_splits_layers_between_gpu_and_host(gguf_hub):
    p = hubmem.estimate(LLAMA + ":F16", ctx_size=4096, n_gpu_layers=14).rows[0].plan
    gpu = p.gpus[0]
    # -ngl 14: layers 14..27 on the GPU (i_gpu_start = 28 - 14), the output layer not (ngl <= n_layer)
    assert gpu.layers == tuple(range(14, 28))
    assert gpu.weights == 14 * LLAMA_LAYER_F16
    assert gpu.kv == 14 * 4096 * 2048 * 2
    # host: token_embd (F16, always on the CPU) + rope_freqs + the 14 other layers + output_norm
    assert p.host.weights == 394_002_432 * 2 + 64 * 4 + 14 * LLAMA_LAYER_F16 + 3_072 * 4
    assert p.host.kv == 14 * 4096 * 2048 * 2


def test_tensor_split_over_two_gpus(gguf_hub):
    p = (
        hubmem.estimate(LLAMA + ":F16", ctx_size=4096, tensor_split="3,1", gpu_memory="80GiB", num_gpus=2)
        .rows[0]
        .plan
    )
    # act = 29 offloaded (28 layers + output); layer il on GPU0 while il/29 < 0.75 (llama.cpp upper_bound)
    assert p.gpus[0].layers == tuple(range(22)) and p.gpus[1].layers == tuple(range(22, 28))
    assert p.gpus[1].output and not p.gpus[0].output
    assert p.gpus[0].weights == 22 * LLAMA_LAYER_F16


def test_quant_pick_and_unknown_quant(gguf_hub):
    assert [r.model.quant for r in hubmem.estimate(LLAMA, quant="q8_0").rows] == ["Q8_0"]
    with pytest.raises(
        InvalidInputError, match=r"--quant Q9_K: no such GGUF file in the repo \(quants: F16, Q4_K_M"
    ):
        hubmem.estimate(LLAMA, quant="Q9_K")


def test_gemma3_sliding_window_cache(gguf_hub):
    # 34 layers, every 6th full (llama.cpp set_swa_pattern(6)): layers 5, 11, 17, 23, 29 -> 5 full, 29 sliding;
    # K = V = 4 heads × 256 = 1024 wide, f16: 4,096 bytes per cell per layer
    est = hubmem.estimate(GEMMA, quant="Q4_K_M", ctx_size=32768)
    swa = min(32768, -(-(1024 + 512) // 256) * 256)  # n_swa + n_ubatch, padded to 256: 1,536 cells
    assert est.rows[0].plan.swa_cells == swa == 1536
    assert est.rows[0].plan.kv_bytes == 5 * 32768 * 4096 + 29 * 1536 * 4096 == 853_540_864
    full = hubmem.estimate(GEMMA, quant="Q4_K_M", ctx_size=32768, swa_full=True)
    assert full.rows[0].plan.kv_bytes == 34 * 32768 * 4096


def test_deepseek_mla_caches_the_latent_once(gguf_hub):
    est = hubmem.estimate(DEEPSEEK, ctx_size=4096)
    # MLA (key_length_mla present): K = kv_lora_rank 512 + rope 64 = 576 per token, one head, no V
    assert est.rows[0].plan.kv_bytes == 27 * 4096 * 576 * 2 == 127_401_984
    assert est.rows[0].plan.v_bytes == 0
    assert est.rows[0].model.architecture.mla is not None


def test_qwen3_moe_total_and_active(gguf_hub):
    m = hubmem.estimate(QWEN, ctx_size=4096).rows[0].model
    # per layer: norms 2·2048 + q/k norms 2·128 + q, o 2·2048·4096 + k, v 2·2048·512 + router 2048·128
    # + 128 experts × 3·2048·768 = 623,120,640; × 48 + token_embd + output 2·2048·151936 + output_norm
    assert m.parameters == 48 * 623_120_640 + 2 * 2048 * 151936 + 2048 == 30_532_122_624
    # active: the routed experts a token skips (120 of 128) are left out: 3.35B (published "3.3B activated")
    assert m.active_parameters == 30_532_122_624 - 48 * 603_979_776 * 120 // 128 == 3_353_032_704


def test_mamba_state_not_kv(gguf_hub):
    p = hubmem.estimate(MAMBA, ctx_size=4096, parallel=2).rows[0].plan
    assert p.kv_bytes == 0
    # llama.cpp recurrent state, f32: r = (4 - 1)·1536, s = 16·1536 per layer, 24 layers, 2 sequences
    assert p.state_bytes == 24 * (3 * 1536 + 16 * 1536) * 4 * 2 == 5_603_328


def test_cli_rows_and_best_file(gguf_hub):
    result = CliRunner().invoke(main, [LLAMA, "-c", "8192", "--gpu-memory", "6GiB"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{LLAMA}: 5 GGUF model file(s), llama — 3.21B params, 28 layers")
    assert lines[1] == "llama.cpp: -c 8,192 -np 1 -ngl all -ctk f16 -ctv f16 -fa auto -ub 512"
    assert any(line.startswith("Q4_K_M ") for line in lines)
    assert lines[-1] == "best file for 1× custom GPU (6.00 GiB usable) at -c 8,192: Q8_0"


def test_option_for_gguf_only_on_a_safetensors_repo(fake_hub):
    with pytest.raises(InvalidInputError, match="has no GGUF files"):
        hubmem.estimate("openai-community/gpt2", ctx_size=4096)
