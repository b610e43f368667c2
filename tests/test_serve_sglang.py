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
