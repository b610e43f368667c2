"""hubmem's GGUF figures against published llama.cpp logs (fixtures/reference/llamacpp_logs.json, each
with its source): KV within ±2 %, weights and parameters within ±1 %, compute buffers and totals
within ±10 %, tensor-type counts exact."""

from __future__ import annotations

from click.testing import CliRunner

from hubmem.cli import main
from scripts import gguf_reference


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_every_published_figure_within_its_tolerance(fake_hub):
    rows = gguf_reference.comparison(invoke)
    assert len(rows) == len(gguf_reference.entries()) == 34
    off = [
        (r["repo"], r["quantity"], r["published"], r["hubmem"])
        for r in rows
        if (abs(r["error_pct"]) > r["tolerance_pct"]) != bool(r.get("known_miss"))
    ]
    assert not off  # every figure within its tolerance, every known miss still a miss
    # no known miss is left: the two Qwen2.5-7B compute buffers that were (-20.4 % at -c 32768, +105.3 % for
    # the 2026 llama-server run) are replayed through ggml-alloc now
    assert not [r for r in rows if r.get("known_miss")]
    qwen7 = [r for r in rows if r["repo"] == "bartowski/Qwen2.5-Coder-7B-Instruct-GGUF"]
    by = {(r["quantity"], r["settings"].get("ctx_size")): r for r in qwen7}
    assert round(by[("gpu_compute", 32768)]["hubmem"], 2) == 382.01  # exact to the log's digits
    late = by[("gpu_compute", 16384)]
    assert late["settings"]["reserve_outputs"] == "parallel" and late["settings"]["kq_mask"] == "f16"
    # 148.01 MiB against the logged 148.09 (0.08 MiB of that build not modelled)
    assert late["hubmem"] * 1024**2 == 148 * 1024**2 + 10_368 and round(late["error_pct"], 2) == -0.05
    # the q8_0 cache of that 2026 run: -kvu, one stream of 16,384 cells, 28 layers × 2 × row_size(q8_0, 512)
    (kv,) = [r for r in rows if r["quantity"] == "gpu_kv" and r["settings"].get("cache_type_k") == "q8_0"]
    assert kv["hubmem"] * 1024**2 == 28 * 16384 * 2 * (512 // 32 * 34) and kv["error_pct"] == 0
    # the tolerances are the issue's: KV ±2 %, weights ±1 %
    assert {r["tolerance_pct"] for r in rows if r["quantity"] == "kv"} == {2}
    assert {r["tolerance_pct"] for r in rows if r["quantity"] == "weights"} == {1}


def test_exact_where_the_log_is_exact(fake_hub):
    by = {(r["repo"], r["quantity"]): r for r in gguf_reference.comparison(invoke)}
    # 36 layers × 4,096 cells × (256 K + 256 V) × 2 bytes = 144 MiB; 4·512·(2048 + 151936) bytes = 300.75 MiB
    assert by[("Qwen/Qwen2.5-3B-Instruct-GGUF", "kv")]["hubmem"] == 144.0
    assert by[("Qwen/Qwen2.5-3B-Instruct-GGUF", "compute")]["hubmem"] == 300.75
    assert by[("bartowski/Llama-3.2-3B-Instruct-GGUF", "tensor_types")]["hubmem"] == {
        "F32": 58,
        "Q4_K": 168,
        "Q6_K": 29,
    }


def test_every_buffer_and_the_total_of_a_run(fake_hub):
    """Ollama 0.12.3 on a CPU (-ngl 0, -c 4096, -fa off, -ub 512): each buffer llama.cpp printed, and their
    sum, as hubmem plans them; and a full CUDA offload's model buffer, which holds the tied output copy."""
    by = {(r["repo"], r["quantity"]): r for r in gguf_reference.comparison(invoke)}
    llama = "bartowski/Llama-3.2-3B-Instruct-GGUF"
    MiB = 1024**2
    # every tensor of the Q4_K_M file on the CPU: 2,011,539,712 bytes = 1,918.3538 MiB
    assert by[(llama, "host_weights")]["hubmem"] * MiB == 2_011_539_712
    # 28 layers × 4,096 cells × (1,024 K + 1,024 V) × 2 bytes
    assert by[(llama, "host_kv")]["hubmem"] * MiB == 28 * 4096 * 2048 * 2
    # fa off: max(4·512·(1 + 4·3072 + 4096·(1 + 24)), 4·512·(3072 + 128256)) = the logits, 256.50 MiB
    assert by[(llama, "host_compute")]["hubmem"] * MiB == 4 * 512 * (3072 + 128256)
    assert (
        by[(llama, "host_total")]["hubmem"] * MiB == 2_011_539_712 + 28 * 4096 * 2048 * 2 + 4 * 512 * 131328
    )
    # full offload: everything but token_embd (mapped on the CPU) and rope_freqs (256 B), plus token_embd's
    # tied copy as the output matrix: 2,011,539,712 - 256 bytes (the log: 1,918.35 MiB)
    assert by[(llama, "gpu_weights")]["hubmem"] * MiB == 2_011_539_712 - 256
    for q in ("host_weights", "gpu_weights", "host_kv", "host_compute", "host_total"):
        assert abs(by[(llama, q)]["error_pct"]) < 0.01, q


def test_total_vram_of_a_cuda_run_buffer_by_buffer(fake_hub):
    """Qwen2.5-7B-Instruct Q4_K_M fully on a CUDA GPU at -c 4096 (Ollama's log): model, KV and compute
    buffers each, and their sum, exactly as llama.cpp printed them."""
    MiB = 1024**2
    rows = [r for r in gguf_reference.comparison(invoke) if r["settings"].get("batch_size") == 512]
    by = {(r["quantity"], r["settings"]["ctx_size"], r["digits"]): r["hubmem"] for r in rows}
    weights = by[("gpu_weights", 4096, 2)] * MiB
    assert round(weights / MiB, 2) == 4168.09 and round(by[("host_weights", 4096, 2)], 2) == 292.36
    assert by[("gpu_kv", 4096, 2)] * MiB == 28 * 4096 * 2 * 512 * 2  # 4 KV heads × 128, f16
    assert by[("gpu_compute", 4096, 2)] * MiB == 4 * 512 * (3584 + 152064)  # the logits of a ubatch: 304 MiB
    assert round(by[("gpu_total", 4096, 2)], 2) == 4696.09 and round(by[("gpu_total", 4096, 0)]) == 4696


def test_fit_projection_as_llama_cpp_logged_it(fake_hub):
    """llama-server's --fit on 5,752 MiB free: "projected to use 4696 MiB ... will leave 1055 >= 1024 MiB
    of free device memory, no changes needed". hubmem (no CUDA context: llama.cpp's free memory is measured
    after it) projects the same and changes nothing; 100 MiB less free and it lowers -ngl."""
    import hubmem

    repo = "bartowski/Qwen2.5-Coder-7B-Instruct-GGUF"
    args = {"quant": "Q4_K_M", "ctx_size": 4096, "ubatch_size": 512, "batch_size": 512, "overhead": "0GiB"}
    row = hubmem.estimate(repo, gpu_memory="5752MiB", **args).rows[0]
    assert (5752 * 1024**2 - row.plan.vram) // 1024**2 == 1055
    assert (
        row.fit_notes == ("--fit: 1,024 MiB stay free on each GPU, no change",)
        and row.plan.n_gpu_layers == 29
    )
    tight = hubmem.estimate(repo, gpu_memory="5652MiB", **args).rows[0]
    assert tight.plan.n_gpu_layers < 29 and tight.fit_notes[-1].startswith("--fit: -ngl ")


def test_an_moe_run_buffer_by_buffer(fake_hub):
    """Qwen3-Coder-30B-A3B-Instruct Q8_0 on one A100 (llama-server b7342: -c 65536, -np 4 -kvu, fa auto,
    every layer offloaded): both compute buffers exact to the log's digits, through the replay of the
    qwen3moe graph (128 experts, 8 used) by ggml's scheduler and allocator."""
    MiB = 1024**2
    rows = [
        r
        for r in gguf_reference.comparison(invoke)
        if r["repo"].endswith("Qwen3-Coder-30B-A3B-Instruct-GGUF")
    ]
    by = {r["quantity"]: r["hubmem"] for r in rows}
    # CUDA0: result_norm + the f32 logits of the 512-token ubatch, from offset 0 (the residual stream of
    # the last layer ends up at offset 0, below everything the layers freed)
    assert by["gpu_compute"] * MiB == 4 * 512 * (2048 + 151936)
    # CUDA_Host: the graph inputs, which stay on the CPU: token ids, positions, K/V row indices (i64),
    # output ids, the f32 KQ mask of 65,536 cells × 512 tokens, and the CPU's get_rows of token_embd
    # (each padded to the CPU's 32 bytes: every one is a multiple already)
    inputs = 4 * 512 + 4 * 512 + 8 * 512 + 8 * 512 + 4 * 512 + 4 * 65536 * 512
    assert by["host_compute"] * MiB == inputs + 4 * 2048 * 512
    assert round(by["host_compute"], 2) == 132.01
    assert by["gpu_kv"] * MiB == 48 * 65536 * 2 * 512 * 2  # one unified stream, f16 K and V


def test_a_cpu_only_run_of_a_qwen3_file(fake_hub):
    """Qwen3-1.7B Q4_K_M on a CPU alone (b7343, -ngl 0, -c 4096, fa auto -> on): the one buffer, exact.
    Ollama's rule gave the norm + logits alone (300.75 MiB, -1.3 %). In the replay the f32 mask (8 MiB,
    cast to f16 by the first attention) is the first block; once freed, the residual stream settles 4 MiB
    into it, so the last layer's output (4 MiB) sits at 4 MiB and the 296.75 MiB of logits go above it."""
    MiB = 1024**2
    (row,) = [
        r
        for r in gguf_reference.comparison(invoke)
        if r["repo"] == "unsloth/Qwen3-1.7B-GGUF" and r["quantity"] == "host_compute"
    ]
    assert row["hubmem"] * MiB == 4 * 512 * (2048 + 151936) + 4 * 2048 * 512


def test_a_partial_offload_run_buffer_by_buffer(fake_hub):
    """Qwen2.5-Coder-14B Q3_K_S through Ollama 0.33.1's llama-server (2026): -c 16384, 30 of 49 layers on
    an 8 GiB GPU. The 2026 -ngl counts the output layer (--ngl-output counted): 29 repeating layers and
    the output on the GPU, 19 on the CPU, as both KV buffers show (64 MiB a layer). The GPU's compute
    buffer, 164.02 MiB, is exact through the scheduler replay: one output row (llama-server), an f16 mask,
    and the copies the GPU takes of the CPU layers' weights for the prompt-sized ops it runs for them;
    Ollama's rule gave 307 MiB (the logits of a whole ubatch, +87 %)."""
    MiB = 1024**2
    rows = [r for r in gguf_reference.comparison(invoke) if r["repo"].endswith("Coder-14B-Instruct-GGUF")]
    by = {r["quantity"]: r["hubmem"] for r in rows}
    assert (
        by["gpu_kv"] * MiB == 29 * 16384 * 2 * 1024 * 2 and by["host_kv"] * MiB == 19 * 16384 * 2 * 1024 * 2
    )
    assert by["gpu_compute"] * MiB == 171_988_992 and round(by["gpu_compute"], 2) == 164.02
    # the same file fully offloaded needs 127.01 MiB: the rest are the copies of host-held tensors
    import hubmem

    full = hubmem.estimate(
        "bartowski/Qwen2.5-Coder-14B-Instruct-GGUF", quant="Q3_K_S", ctx_size=16384, reserve_outputs="parallel",
        kq_mask="f16", fit="off",
    ).rows[0].plan  # fmt: skip
    assert full.gpus[0].compute == 133_179_520
