"""`hubmem serve --engine sglang`: SGLang's memory heuristics and KV pool, hand-derived from
sglang's server_args.py and model_runner.py (hubmem/runtimes/sglang.py names them)."""

from __future__ import annotations

import json

from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.model.architecture import parse_architecture
from hubmem.runtimes import sglang
from hubmem.runtimes import vllm as rt

from .helpers import config

MIB = 2**20
H100_MIB = 81_089  # the catalogue's torch total for the H100 SXM
LLAMA8 = "meta-llama/Llama-3.1-8B"
LLAMA8_WEIGHTS = 8_030_261_248 * 2 + 131_072 * 128 * 2  # BF16 parameters + RoPE cache (test_serve_vllm.py)


def test_memory_buckets_and_mem_fraction_static():
    assert sglang.memory_defaults(H100_MIB, 1) == (8192, 256, "60-160 GiB GPU")
    assert sglang.memory_defaults(24_563, 1) == (2048, 24, "< 35 GiB GPU")
    assert sglang.memory_defaults(24_563, 4) == (2048, 80, "< 35 GiB GPU")
    # H100, TP 1: 512 + 8192 × 1.5 + 256 × 2 + 1/8 × 1024 = 13,440 MiB (> the 10 GiB floor)
    assert sglang.mem_fraction_default(H100_MIB, 8192, 256, 1) == (
        round((81_089 - 13_440) / 81_089, 3),
        13_440,
    )
    # RTX 4090 (24,563 MiB), TP 1: 512 + 2048 × 1.5 + 24 × 2 + 128 = 3,760 MiB, no floor below 60 GiB
    assert sglang.mem_fraction_default(24_563, 2048, 24, 1) == (0.847, 3_760)


def test_llama8_pool_on_an_h100():
    """free = 81,089 MiB − 512 MiB CUDA context; pool = free − weights − int(free × (1 − 0.834));
    cell = 8 KV heads × 128 × 32 layers × 2 × 2 B = 131,072 B."""
    arch = parse_architecture(config(LLAMA8))
    gpu = rt.GpuSpec("H100 SXM 80GB", "h100-80gb", H100_MIB * MIB, (9, 0))
    p = sglang.plan(arch, LLAMA8_WEIGHTS, gpu, sglang.SglangOptions())
    free = (H100_MIB - 512) * MIB
    pool = free - LLAMA8_WEIGHTS - int(free * (1 - 0.834))
    assert p.kv_tokens == pool // 131_072
    assert p.options.mem_fraction_static == 0.834
    assert p.options.max_running_requests == min(max(int(p.kv_tokens / 131_072 * 512), 2048), 4096) == 2048
    assert p.starts and p.max_concurrency == p.kv_tokens / 131_072


def test_mla_cell_is_one_latent_per_layer_on_every_rank():
    arch = parse_architecture(config("deepseek-ai/DeepSeek-V3"))
    assert sglang.cell_size(arch, 8, 2) == (512 + 64) * 61 * 2


def test_a_pool_below_zero_refuses_as_sglang_does():
    arch = parse_architecture(config(LLAMA8))
    gpu = rt.GpuSpec("RTX 4090 24GB", "rtx4090-24gb", 24_563 * MIB, (8, 9))
    p = sglang.plan(arch, LLAMA8_WEIGHTS, gpu, sglang.SglangOptions(mem_fraction_static=0.6))
    assert not p.starts
    assert p.reason == "Not enough memory. Please try to increase --mem-fraction-static."
    assert "--tp 2" in p.suggestions


def test_cli_and_api_agree(fake_hub):
    result = CliRunner().invoke(
        main, ["serve", LLAMA8, "--engine", "sglang", "--gpu", "h100", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    api = hubmem.serve(LLAMA8, engine="sglang", gpu="h100")
    assert data["plan"]["kv_tokens"] == api.plan.kv_tokens
    assert data["plan"]["engine"] == "sglang"


def test_options_of_the_other_engine_are_refused(fake_hub):
    result = CliRunner().invoke(
        main, ["serve", LLAMA8, "--engine", "sglang", "--gpu", "h100", "--max-num-seqs", "8"]
    )
    assert result.exit_code == 3
    assert result.stderr == "Error: --engine sglang does not take --max-num-seqs\n"
    result = CliRunner().invoke(main, ["serve", LLAMA8, "--gpu", "h100", "--tp", "2"])
    assert result.exit_code == 3
    assert result.stderr == "Error: --engine vllm does not take --tp\n"


def _h100():
    return rt.GpuSpec("H100 SXM 80GB", "h100-80gb", H100_MIB * MIB, (9, 0))


def test_gpt_oss_gets_sglangs_swa_pool_split_by_swa_full_tokens_ratio():
    """gpt-oss-20b (GptOssForCausalLM: is_hybrid_swa_model): 12 full + 12 sliding layers, 8 KV heads × 64 × 2
    (K, V) × 2 B = 2,048 B per layer and token; cell = 24 × 2,048 = 49,152 B; N = pool // cell, then
    set_num_tokens_hybrid_swa: full = int(N × 49,152 / (12 × 2,048 + 0.8 × 12 × 2,048)), swa = int(0.8 × full)."""
    cfg = config("openai/gpt-oss-20b")
    arch = parse_architecture(cfg)
    weights = 13 * 2**30
    p = sglang.plan(arch, weights, _h100(), sglang.SglangOptions(), architectures=("GptOssForCausalLM",))
    free = (H100_MIB - 512) * MIB
    pool = free - weights - int(free * (1 - p.options.mem_fraction_static))
    n = pool // 49_152
    full = int(n * 49_152 / (12 * 2_048 + 0.8 * 12 * 2_048))
    assert p.kv_tokens == full
    swa = int(full * 0.8)
    assert [g.kind for g in p.worst.groups] == ["full", "swa"]
    assert p.max_concurrency == min(full / 131_072, swa / 128)
    assert sglang.split_swa(n, 12 * 2_048, 12 * 2_048, 0.8) == (full, swa)
    # --disable-hybrid-swa-memory, or an architecture SGLang does not list: one pool of N tokens
    one = sglang.plan(arch, weights, _h100(), sglang.SglangOptions(disable_hybrid_swa_memory=True),
                      architectures=("GptOssForCausalLM",))  # fmt: skip
    assert one.kv_tokens == n
    assert sglang.plan(arch, weights, _h100(), sglang.SglangOptions()).kv_tokens == n


def test_gemma3_keeps_one_full_pool_in_sglang():
    """Gemma 3 is not in is_hybrid_swa_model: every one of its 26 layers (22 sliding) takes full-length KV."""
    arch = parse_architecture(config("google/gemma-3-1b-it"))
    p = sglang.plan(arch, 2 * 2**30, _h100(), sglang.SglangOptions(), architectures=("Gemma3ForCausalLM",))
    free = (H100_MIB - 512) * MIB
    pool = free - 2 * 2**30 - int(free * (1 - p.options.mem_fraction_static))
    assert p.kv_tokens == pool // (26 * 1 * 256 * 2 * 2)


def test_qwen3_next_state_pool_then_the_full_attention_token_pool():
    """Qwen3-Next at TP 4: 36 Gated DeltaNet layers, each (conv 3 × 8,192 × 2 B + state 32 × 128 × 128 × 4 B
    (float32)) / 4 = 536,576 B: 19,316,736 B per request; the state pool takes pool × 0.9 / 1.9 in whole
    requests, the token pool the rest over the 12 full-attention layers × max(1, 2 // 4) head × 256 × 2 × 2 B."""
    arch = parse_architecture(config("Qwen/Qwen3-Next-80B-A3B-Instruct"))
    weights = 37 * 2**30
    p = sglang.plan(arch, weights, _h100(), sglang.SglangOptions(tp=4))
    free = (H100_MIB - 512 - 768) * MIB  # NCCL / all-reduce buffers at TP > 1
    pool = free - weights - int(free * (1 - p.options.mem_fraction_static))
    per_req = 36 * ((3 * 8_192 * 2 + 32 * 128 * 128 * 4) // 4)
    assert per_req == sglang.mamba_per_request(arch, 4, 2, 4) == 19_316_736
    slots = int(pool * 0.9 / 1.9 // per_req)
    assert p.kv_tokens == (pool - slots * per_req) // (12 * 256 * 2 * 2)
    assert p.worst.state_bytes_per_sequence == per_req
    running = min(min(max(int(p.kv_tokens / 262_144 * 512), 2048), 4096), slots // 3)
    assert p.options.max_running_requests == running
    assert p.max_concurrency == min(p.kv_tokens / 262_144, running)
    # --max-mamba-cache-size 64: exactly 64 states, the rest to tokens
    fixed = sglang.plan(arch, weights, _h100(), sglang.SglangOptions(tp=4, max_mamba_cache_size=64))
    assert fixed.kv_tokens == (pool - 64 * per_req) // (12 * 256 * 2 * 2)
    assert fixed.options.max_running_requests == 64 // 3


def test_a_pure_mamba_model_is_refused_by_sglang(fake_hub):
    result = CliRunner().invoke(
        main, ["serve", "state-spaces/mamba-130m-hf", "--engine", "sglang", "--gpu", "h100"]
    )
    assert result.exit_code == 19
    assert result.stderr == (
        "Error: SGLang serves Mamba-family models as attention hybrids (mambaish_config); 'mamba' has no "
        "attention layer (use --engine vllm)\n"
    )


def test_the_hybrid_pools_print_sglangs_own_lines(fake_hub):
    result = CliRunner().invoke(
        main,
        ["serve", "Qwen/Qwen3-Next-80B-A3B-Instruct", "--engine", "sglang", "--gpu", "h100", "--tp", "4"],
    )
    assert result.exit_code == 0, result.output
    plan = hubmem.serve("Qwen/Qwen3-Next-80B-A3B-Instruct", engine="sglang", gpu="h100", tp=4).plan
    slots = plan.options.max_mamba_cache_size
    assert f"Mamba Cache is allocated. max_mamba_cache_size: {slots}, conv_state size: " in result.stdout
    assert " + Mamba state " in result.stdout
    swa = CliRunner().invoke(main, ["serve", "openai/gpt-oss-20b", "--engine", "sglang", "--gpu", "h100"])
    p = hubmem.serve("openai/gpt-oss-20b", engine="sglang", gpu="h100").plan
    line = f"Use sliding window memory pool. full_layer_tokens={p.kv_tokens}, swa_layer_tokens={int(p.kv_tokens * 0.8)}"
    assert line in swa.stdout
