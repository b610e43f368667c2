"""`hubmem serve --engine vllm`: the start-up plan, each term derived by hand from vLLM's rules
(hubmem/runtimes/vllm.py names the files), through the CLI, the API and the pure module."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.model.architecture import parse_architecture
from hubmem.runtimes import sharding
from hubmem.runtimes import vllm as rt

from .helpers import config, headers

GIB = 1024**3
MIB = 1024**2
LLAMA8 = "meta-llama/Llama-3.1-8B"
RTX4090_TOTAL = 24_563 * MIB  # the catalogue's torch total_memory for the RTX 4090 (hubmem gpus)


def serve(*args: str):
    return CliRunner().invoke(main, ["serve", *args])


def llama8_weights() -> int:
    # Llama-3.1-8B: 8,030,261,248 BF16 parameters (the Hub's count) × 2 bytes + vLLM's RoPE cos_sin_cache
    # [131,072 positions × 128 rotary dims] × 2 bytes = 16,060,522,496 + 33,554,432
    return 8_030_261_248 * 2 + 131_072 * 128 * 2


def test_llama8_weights_on_one_rank_are_the_checkpoint_plus_the_rope_cache():
    arch = parse_architecture(config(LLAMA8))
    (rank,) = sharding.rank_weights(headers(LLAMA8), config(LLAMA8), arch, tp=1, pp=1, float_bytes=2)
    rope = sharding.rotary_cache_bytes(arch, config(LLAMA8), 2)
    assert rank.bytes + rope == llama8_weights()
    # vLLM prints "Loading model weights took 14.9888 GB" (GiB) for this model (vllm#10517): 16,094,076,928 B
    assert round((rank.bytes + rope) / GIB, 4) == 14.9888


def test_tp_splits_vocab_and_linears_and_replicates_kv_heads_beyond_k():
    """Llama-3.1-8B at TP 2 and TP 16 (k = 8 KV heads, head_dim 128, h 4096, 32 layers).

    TP 16 would be refused (32 heads / 16 = 2, fine; but 8 KV heads < 16): each rank keeps 1 KV head, so
    k_proj and v_proj per rank are 4096 × 128 each, not 4096 × 64."""
    arch = parse_architecture(config(LLAMA8))
    h, v, i, L = 4096, 128_256, 14_336, 32
    norms = (2 * L + 1) * h * 2  # input + post-attention norms per layer, the final norm: whole on each rank
    per_layer_tp2 = (h * h // 2 + 2 * (h * 1024 // 2) + h * h // 2 + 3 * h * i // 2) * 2
    vocab_tp2 = 2 * (128_256 // 2) * h * 2  # embed_tokens + lm_head, 128,256 is a multiple of 64
    (rank,) = sharding.rank_weights(headers(LLAMA8), config(LLAMA8), arch, tp=2, pp=1, float_bytes=2)
    assert rank.bytes == L * per_layer_tp2 + vocab_tp2 + norms
    (rank16,) = sharding.rank_weights(headers(LLAMA8), config(LLAMA8), arch, tp=16, pp=1, float_bytes=2)
    kv16 = 2 * h * 128 * 2  # one KV head of k_proj + v_proj
    per_layer_tp16 = (h * h // 16 * 2 + 3 * h * i // 16) * 2 + kv16
    assert rank16.bytes == L * per_layer_tp16 + 2 * (v // 16) * h * 2 + norms


def test_pp_stages_split_layers_as_get_pp_indices():
    assert sharding.pp_layers(61, 2) == [31, 30]  # remainder to the stages before the last
    assert sharding.pp_layers(80, 3) == [27, 27, 26]
    assert sharding.pp_layers(32, 4) == [8, 8, 8, 8]


def test_llama8_on_a_4090_at_32k_starts_with_exact_blocks_and_concurrency():
    """Budget = int(24,563 MiB × 0.9) − weights − profile peak − non-torch 352 MiB.

    Profile peak at the 4090's default 2,048 batched tokens (< 70 GiB: 2048 / 256 seqs): forward
    3·T·h·e + 3·T·i·e = 2048 × (3·4096 + 3·14336) × 2 = 226,492,416; the native top-k/top-p sampler
    256 × 128,256 × (2 + 36) = 1,247,674,368 (its sort): the sampler's is larger (FlashInfer's path,
    256 × 128,256 × (2 + 8) = 328,335,360, too). Page = 16 tokens × 2 × 8 heads × 128 × 2 B = 65,536 B per layer.
    """
    arch = parse_architecture(config(LLAMA8))
    (rank,) = sharding.rank_weights(headers(LLAMA8), config(LLAMA8), arch, tp=1, pp=1, float_bytes=2)
    weights = rank.bytes + sharding.rotary_cache_bytes(arch, config(LLAMA8), 2)
    gpu = rt.GpuSpec("RTX 4090 24GB", "rtx4090-24gb", RTX4090_TOTAL, (8, 9))
    p = rt.plan(arch, [weights], [32], gpu, rt.VllmOptions(max_model_len=32768))
    peak = 256 * 128_256 * 38
    flashinfer = rt.plan(
        arch, [weights], [32], gpu, rt.VllmOptions(max_model_len=32768, sampler="flashinfer")
    )
    assert flashinfer.worst.activation_peak == 256 * 128_256 * 10 == 328_335_360
    budget = int(RTX4090_TOTAL * 0.9) - llama8_weights() - peak - 352 * MIB
    assert p.worst.activation_peak == peak
    assert p.worst.kv_budget == budget
    blocks = budget // 65_536 // 32
    assert p.num_blocks == blocks
    assert p.kv_tokens == blocks * 16
    assert p.max_concurrency == blocks / (32768 // 16)
    assert p.starts and p.reason == ""


def test_llama8_at_its_full_context_refuses_with_vllms_reason_and_the_largest_length():
    arch = parse_architecture(config(LLAMA8))
    gpu = rt.GpuSpec("RTX 4090 24GB", "rtx4090-24gb", RTX4090_TOTAL, (8, 9))
    p = rt.plan(arch, [llama8_weights()], [32], gpu, rt.VllmOptions())
    budget = p.worst.kv_budget
    # one request of 131,072 tokens: 8,192 blocks × 32 layers × 65,536 B = 16 GiB
    assert not p.starts
    assert p.reason.startswith(
        "To serve at least one request with the model's max seq len (131072), (16.00 GiB KV cache is needed"
    )
    # estimate_max_model_len: the largest L with cdiv(L, 16) × 32 × 65,536 ≤ budget
    assert p.largest_max_model_len == budget // (32 * 65_536) * 16
    assert f"--max-model-len {p.largest_max_model_len}" in p.suggestions


def test_auto_max_model_len_is_the_largest_that_fits():
    arch = parse_architecture(config(LLAMA8))
    gpu = rt.GpuSpec("RTX 4090 24GB", "rtx4090-24gb", RTX4090_TOTAL, (8, 9))
    p = rt.plan(arch, [llama8_weights()], [32], gpu, rt.VllmOptions(max_model_len=-1))
    assert p.starts
    assert p.max_model_len == p.worst.kv_budget // (32 * 65_536) * 16


def test_cli_serve_llama8_4090_32k(fake_hub):
    result = serve(LLAMA8, "--gpu", "4090", "--max-model-len", "32768")
    assert result.exit_code == 0, result.output
    assert "verdict   starts\n" in result.stdout
    assert "GPU KV cache size:" in result.stdout
    data = json.loads(serve(LLAMA8, "--gpu", "4090", "--max-model-len", "32768", "--format", "json").stdout)
    api = hubmem.serve(LLAMA8, engine="vllm", gpu="4090", max_model_len=32768)
    assert data["plan"]["kv_tokens"] == api.plan.kv_tokens
    assert data["plan"]["stages"][0]["weights"] == llama8_weights()


def test_cli_serve_refuses_with_exit_40_and_says_what_to_change(fake_hub):
    result = serve(LLAMA8, "--gpu", "4090")
    assert result.exit_code == 40
    assert "refuses: To serve at least one request with the model's max seq len (131072)" in result.stdout
    assert "fewest  2× RTX 4090 24GB: --tensor-parallel-size 2\n" in result.stdout.replace(
        "fewest    ", "fewest  "
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--tensor-parallel-size", "3"],
            19,
            "Error: vLLM refuses --tensor-parallel-size 3: total number of attention heads (32) must be divisible by "
            "tensor parallel size (3); valid sizes: 1, 2, 4, 8\n",
        ),
        (
            ["--kv-cache-dtype", "fp8_ds_mla"],
            19,
            "Error: --kv-cache-dtype fp8_ds_mla needs an MLA model (DeepSeek V2/V3 kv_lora_rank)\n",
        ),
        (
            ["--max-model-len", "200000"],
            19,
            "Error: --max-model-len 200,000 is greater than the model's derived max_model_len (131,072); vLLM refuses "
            "it unless VLLM_ALLOW_LONG_MAX_MODEL_LEN=1\n",
        ),
        (
            ["--gpu-memory-utilization", "1.5"],
            3,
            "Error: --gpu-memory-utilization must be in (0, 1], not 1.5\n",
        ),
        (
            ["--num-gpus", "12"],
            3,
            "Error: --num-gpus 12: more than 8 GPUs must be whole nodes (a multiple of 8); or give "
            "--tensor-parallel-size and --pipeline-parallel-size\n",
        ),
    ],
)
def test_engine_refusals_are_one_line_with_their_exit_code(fake_hub, args, code, message):
    result = serve(LLAMA8, "--gpu", "h100", *args)
    assert result.exit_code == code
    assert result.stderr == message


def test_bf16_on_a_t4_is_refused_as_vllm_does(fake_hub):
    result = serve(LLAMA8, "--gpu", "t4", "--max-model-len", "1024")
    assert result.exit_code == 19
    assert result.stderr.startswith(
        "Error: Bfloat16 is only supported on GPUs with compute capability of at least 8.0"
    )


def test_fp8_ds_mla_needs_flashmla_hardware(fake_hub):
    result = serve(
        "deepseek-ai/DeepSeek-V3", "--gpu", "a100-80gb", "--num-gpus", "8", "--kv-cache-dtype", "fp8_ds_mla"
    )
    assert result.exit_code == 19
    assert result.stderr == (
        "Error: --kv-cache-dtype fp8_ds_mla needs FlashMLA (compute capability 9.0+); A100 80GB has 8.0\n"
    )


def test_more_than_a_node_is_tp8_across_pp_stages(fake_hub):
    """DeepSeek-V3 on 16 H100s: TP 8 inside each node, PP 2 across them; 61 layers -> stages of 31 and 30."""
    result = serve("deepseek-ai/DeepSeek-V3", "--gpu", "h100", "--num-gpus", "16", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert (plan["options"]["tensor_parallel_size"], plan["options"]["pipeline_parallel_size"]) == (8, 2)
    assert [s["layers"] for s in plan["stages"]] == [31, 30]
    assert plan["num_blocks"] == min(s["num_blocks"] for s in plan["stages"])


def test_explain_prints_every_term_with_its_source(fake_hub):
    result = serve(LLAMA8, "--gpu", "4090", "--max-model-len", "32768", "--explain")
    assert result.exit_code == 0
    out = result.stdout
    for name in (
        "requested",
        "weights",
        "activation_peak",
        "non_torch",
        "cuda_graphs",
        "kv_budget",
        "kv_group_full",
        "kv_blocks",
    ):
        assert f"\n{name:<16} " in out, name
    assert "= total_memory × --gpu-memory-utilization = 25,756,172,288 × 0.9" in out  # 24,563 MiB
    assert "source: vllm/v1/core/kv_cache_utils.py get_num_blocks" in out
    assert "--max-num-batched-tokens: get_batch_defaults (< 70 GiB GPU or A100: 2048 tokens, 256 seqs)" in out
