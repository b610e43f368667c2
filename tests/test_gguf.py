"""GGUF repos (llama.cpp / Ollama): headers read by Range from the fake Hub, one row per quant file,
llama.cpp's memory model. Fixtures: tests/gguf_fixtures.py (written with gguf.GGUFWriter)."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.errors import InvalidInputError
from tests import gguf_fixtures

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


def test_compute_buffer_per_gpu_with_pipeline_parallelism(gguf_hub):
    """Two GPUs, everything offloaded: llama.cpp's pipeline parallelism (src/llama-context.cpp) keeps
    4 copies of each GPU's split inputs (ggml GGML_SCHED_MAX_COPIES); only the GPU with the output layer
    holds the logits."""
    two = {"tensor_split": "3,1", "num_gpus": 2, "gpu_memory": "80GiB"}
    p = hubmem.estimate(LLAMA + ":F16", ctx_size=4096, **two).rows[0].plan
    attn = 4 * 512 * (1 + 4 * 3072 + 4096)  # fa auto = on: no KQ matrix
    logits = 4 * 512 * (3072 + 128256)
    copies = 3 * 512 * (4 * 3072 + 2 * 4096)  # f32 hidden state + f16 KQ mask of a ubatch, 3 more copies
    assert (p.gpus[0].compute, p.gpus[1].compute) == (attn + copies, max(attn, logits) + copies)
    assert (p.gpus[0].compute, p.gpus[1].compute) == (65_013_760, 300_417_024)
    # a partial offload: no pipeline parallelism, no copies
    q = hubmem.estimate(LLAMA + ":F16", ctx_size=4096, n_gpu_layers=20, **two).rows[0].plan
    assert (q.gpus[0].compute, q.gpus[1].compute) == (attn, attn)  # the output layer stays on the CPU
    one = hubmem.estimate(LLAMA + ":F16", ctx_size=4096).rows[0].plan
    assert one.gpus[0].compute == max(attn, logits)  # one GPU: as before


def test_fit_lowers_the_gpu_layers_to_leave_its_target_free(gguf_hub):
    """llama.cpp --fit (on by default, common/common.h): -c given, -ngl not: the most layers that leave
    --fit-target (1024 MiB) free on the GPU (common/fit.cpp step 3)."""
    from hubmem.runtimes import llamacpp

    est = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=8192, gpu_memory="3GiB")
    row = est.rows[0]
    target = 3 * 1024**3 - 1024**3
    ngl = row.plan.n_gpu_layers
    # 10, not the 14 of Ollama's estimate: below a full offload the GPU's compute buffer also holds the
    # copy of the (tied) output matrix that the offloaded logits matmul reads (ggml_sched)
    assert row.fit_notes == (f"--fit: -ngl {ngl} of 29",) and ngl == 10
    m, o = row.model, est.options
    assert max(d.total for d in row.plan.gpus) <= target
    assert llamacpp.plan(m, replace(o, n_gpu_layers=ngl + 1)).gpus[0].total > target
    assert row.fits is True and row.max_gpu_layers > ngl  # without the margin more would fit
    # -ngl given: --fit leaves it alone (llama.cpp: "n_gpu_layers already set by user")
    given = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=8192, gpu_memory="3GiB", n_gpu_layers=29).rows[0]
    assert given.plan.n_gpu_layers == 29 and given.fits is False
    assert given.fit_notes == ("--fit: -ngl 29 given, not changed",)
    # --fit off, and Ollama (which places layers itself): the plan as asked
    off = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=8192, gpu_memory="3GiB", fit="off").rows[0]
    assert off.plan.n_gpu_layers == 29 and off.fit_notes == ()
    assert hubmem.estimate(LLAMA, quant="Q4_K_M", gpu_memory="3GiB", runtime="ollama").rows[0].fit_notes == ()


def test_fit_lowers_an_unset_context_by_interpolation(gguf_hub):
    """-c not given: --fit interpolates between the model's 131,072 tokens and --fit-ctx 4,096 on the
    memory used at both ends, rounded down to 256 (common/fit.cpp step 2); one GPU: done."""
    est = hubmem.estimate(LLAMA, quant="Q4_K_M", gpu_memory="8GiB")
    row = est.rows[0]
    weights, overhead = 2_011_539_456, 512 * 1024**2
    # compute buffers as ggml-alloc places the prompt graph (tests/test_ggml_alloc.py): at 4,096 cells the
    # norm + f32 logits of the ubatch from offset 0, 4·512·(3072 + 128256); at 131,072 the 256 MiB f32 KQ
    # mask copied in first leaves the output above the space it had
    from hubmem.runtimes import llamacpp

    m, o = row.model, est.options
    compute_max = llamacpp.plan(m, replace(o, ctx_size=131072)).gpus[0].compute
    compute_min = llamacpp.plan(m, replace(o, ctx_size=4096)).gpus[0].compute
    assert (compute_max, compute_min) == (427_831_296, 4 * 512 * (3072 + 128256))
    at_max = weights + 131072 * 114_688 + compute_max + overhead
    at_min = weights + 4096 * 114_688 + compute_min + overhead
    target = 7 * 1024**3
    n_ctx = 4096 + (131072 - 4096) * (target - at_min) // (at_max - at_min)
    n_ctx -= n_ctx % 256
    assert row.plan.n_ctx == n_ctx == 40_448
    assert row.fit_notes == ("--fit: -c 131,072 -> 40,448",)
    assert row.plan.n_gpu_layers == 29 and row.plan.vram <= target
    # --fit-ctx raises the floor; a floor that cannot fit leaves -c there and lowers -ngl
    tight = hubmem.estimate(LLAMA, quant="Q4_K_M", gpu_memory="3GiB", fit_ctx=8192).rows[0]
    assert tight.plan.n_ctx == 8192 and tight.plan.n_gpu_layers == 10
    assert tight.fit_notes[0] == "--fit: -c 131,072 -> 8,192 (--fit-ctx), not enough alone"
    # --fit-target in MiB
    wide = hubmem.estimate(LLAMA, quant="Q4_K_M", gpu_memory="8GiB", fit_target=0).rows[0]
    assert wide.plan.n_ctx > n_ctx


def test_fit_options_are_checked(gguf_hub):
    with pytest.raises(InvalidInputError, match="--fit must be on or off, not 'maybe'"):
        hubmem.estimate(LLAMA, fit="maybe")
    with pytest.raises(InvalidInputError, match="--fit-target takes MiB"):
        hubmem.estimate(LLAMA, fit_target=-1)
    result = CliRunner().invoke(main, [LLAMA + ":Q4_K_M", "--gpu-memory", "3GiB", "-c", "8192"])
    assert result.exit_code == 0, result.output
    header, table = result.stdout.splitlines()[1], result.stdout.splitlines()[3]
    assert header.endswith("--fit on -fitt 1024") and table.split()[-1] == "--fit"
    assert any(
        line.startswith("Q4_K_M") and line.rstrip().endswith("-ngl 10 of 29")
        for line in result.stdout.splitlines()
    )


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


NEMOTRON_H = "hubmem-test/Nemotron-H-56B-Base-8K-GGUF"


def test_hybrid_ssm_gguf_shares_the_architecture_and_keeps_state_per_sequence(gguf_hub):
    """Nemotron-H 56B (54 Mamba-2 mixers, 10 attention layers, 54 MLP-only layers): the GGUF keys give
    the Architecture the safetensors path derives from the same config.json, KV only in the 10
    attention layers, and llama.cpp's recurrent state per sequence in the 54 mixers (f32)."""
    import json
    from pathlib import Path

    from hubmem.model.architecture import parse_architecture

    est = hubmem.estimate(NEMOTRON_H, ctx_size=8192, parallel=2)
    m, p = est.rows[0].model, est.rows[0].plan
    cfg = json.loads(
        (
            Path(__file__).resolve().parent.parent / "fixtures/configs/nvidia__Nemotron-H-56B-Base-8K.json"
        ).read_text()
    )
    ref = parse_architecture(cfg)
    a = m.architecture
    assert a.layer_types == ref.layer_types  # M -> ssm, * -> full, - -> mlp, layer by layer
    assert a.attention_pattern() == ref.attention_pattern() == "54 mamba2 + 10 full + 54 MLP-only"
    assert (a.ssm.kind, a.ssm.num_layers, a.ssm.conv_state, a.ssm.temporal_state, a.ssm.in_proj_width) == (
        ref.ssm.kind, ref.ssm.num_layers, ref.ssm.conv_state, ref.ssm.temporal_state, ref.ssm.in_proj_width
    )  # fmt: skip
    assert (a.num_heads, a.num_kv_heads, a.head_dim, a.hidden_size) == (64, 8, 128, 8192)
    # exact parameters: embeddings and output 2·8192·131072, 118 attn_norms + output_norm of 8192; per
    # mixer ssm_in 8192·37120, conv 4·20480 + bias 20480, dt bias / A / D 3·256, norm 2048·8, out
    # 16384·8192; per attention layer q, o 2·8192·8192 + k, v 2·8192·1024; per MLP layer 2·8192·32768
    mixer = 8192 * 37120 + 4 * 20480 + 20480 + 3 * 256 + 2048 * 8 + 16384 * 8192
    attention = 2 * 8192 * 8192 + 2 * 8192 * 1024
    mlp = 2 * 8192 * 32768
    assert m.parameters == 2 * 8192 * 131072 + 119 * 8192 + 54 * mixer + 10 * attention + 54 * mlp
    assert m.parameters == 56_324_350_464  # the model card's "56B"
    # KV: -c 8192 over -np 2 streams of 4,096 cells, 10 layers × (1,024 K + 1,024 V) × 2 bytes
    assert (p.n_stream, p.kv_cells) == (2, 4096)
    assert p.kv_bytes == 10 * 2 * 4096 * 2048 * 2 == 335_544_320
    # state per sequence and mixer (llama_hparams n_embd_r + n_embd_s, f32): r = (4 - 1)·(16384 + 2·8·256),
    # s = 256·16384; 54 mixers, 2 sequences — independent of -c
    assert p.state_bytes == 54 * (3 * 20480 + 256 * 16384) * 4 * 2 == 1_838_481_408
    longer = hubmem.estimate(NEMOTRON_H, ctx_size=32768, parallel=2).rows[0].plan
    assert longer.state_bytes == p.state_bytes and longer.kv_bytes == 4 * p.kv_bytes
    assert p.gpus[0].state == p.state_bytes and p.gpus[0].kv == p.kv_bytes  # all offloaded


def test_cli_rows_and_best_file(gguf_hub):
    result = CliRunner().invoke(main, [LLAMA, "-c", "8192", "--gpu-memory", "6GiB"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{LLAMA}: 5 GGUF model file(s), llama — 3.21B params, 28 layers")
    assert (
        lines[1]
        == "llama.cpp: -c 8,192 -np 1 -ngl all -ctk f16 -ctv f16 -fa auto -ub 512 --fit on -fitt 1024"
    )
    assert any(line.startswith("Q4_K_M ") for line in lines)
    assert lines[-1] == "best file for 1× custom GPU (6.00 GiB usable) at -c 8,192: Q8_0"


def test_option_for_gguf_only_on_a_safetensors_repo(fake_hub):
    with pytest.raises(InvalidInputError, match="has no GGUF files"):
        hubmem.estimate("openai-community/gpt2", ctx_size=4096)


# --- local files, split files, projectors ------------------------------------------------------------


def _write_local(folder, files: dict[str, bytes], sizes: dict[str, int]) -> None:
    folder.mkdir(exist_ok=True)
    for name, head in files.items():
        with open(folder / name, "wb") as f:
            f.write(head)
            f.truncate(sizes[name])  # sparse: the tensor data is never written


def test_local_gguf_file_and_folder(tmp_path):
    files, sizes = gguf_fixtures.built_repo(LLAMA)
    _write_local(tmp_path / "m", files, sizes)
    one = tmp_path / "m" / "Llama-3.2-3B-Instruct-Q4_K_M.gguf"
    est = hubmem.estimate(str(one), ctx_size=4096)
    assert [r.model.quant for r in est.rows] == ["Q4_K_M"]
    assert est.rows[0].model.file_bytes == sizes[one.name]
    folder = hubmem.estimate(str(tmp_path / "m"), ctx_size=4096)
    assert [r.model.quant for r in folder.rows] == ["F16", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]
    assert folder.row("Q4_K_M").model.tensor_bytes == est.rows[0].model.tensor_bytes == 2_011_539_712


def test_split_files_are_one_model_and_mmproj_attaches(tmp_path):
    spec = gguf_fixtures.llama32_3b()
    tensors = gguf_fixtures.typed_tensors(spec, "Q8_0")
    half = len(tensors) // 2
    kv = [
        *spec["kv"],
        ("split.count", 2, "u32"),
        ("split.no", 0, "u32"),
        ("split.tensors.count", len(tensors), "u32"),
    ]
    head1, data1 = gguf_fixtures.header_bytes(kv, tensors[:half], (8192, 8192))
    kv2 = [("general.architecture", "llama", "str"), ("split.count", 2, "u32"), ("split.no", 1, "u32"),
           ("split.tensors.count", len(tensors), "u32")]  # fmt: skip
    head2, data2 = gguf_fixtures.header_bytes(kv2, tensors[half:], None)
    proj_head, proj_data = gguf_fixtures.header_bytes(
        [("general.architecture", "clip", "str")], [("mm.input_projection.weight", (1152, 3072), "F16")], None
    )
    files = {
        "L-Q8_0-00001-of-00002.gguf": head1,
        "L-Q8_0-00002-of-00002.gguf": head2,
        "mmproj-L-f16.gguf": proj_head,
    }
    sizes = {
        "L-Q8_0-00001-of-00002.gguf": len(head1) + data1,
        "L-Q8_0-00002-of-00002.gguf": len(head2) + data2,
        "mmproj-L-f16.gguf": len(proj_head) + proj_data,
    }
    _write_local(tmp_path / "s", files, sizes)
    est = hubmem.estimate(str(tmp_path / "s"), ctx_size=4096)
    (row,) = est.rows
    assert row.model.quant == "Q8_0" and row.model.paths == tuple(sorted(files)[:2])
    assert row.model.parameters == LLAMA_PARAMS
    assert row.model.file_bytes == sizes["L-Q8_0-00001-of-00002.gguf"] + sizes["L-Q8_0-00002-of-00002.gguf"]
    assert row.model.projector == ("mmproj-L-f16.gguf", 1152 * 3072 * 2)
    assert est.projectors == ("mmproj-L-f16.gguf",)


def test_split_set_missing_a_part(tmp_path):
    spec = gguf_fixtures.llama32_3b()
    kv = [*spec["kv"], ("split.count", 3, "u32")]
    head, data = gguf_fixtures.header_bytes(kv, gguf_fixtures.typed_tensors(spec, "Q8_0"), None)
    _write_local(
        tmp_path / "x", {"L-Q8_0-00001-of-00003.gguf": head}, {"L-Q8_0-00001-of-00003.gguf": len(head) + data}
    )
    result = CliRunner().invoke(main, [str(tmp_path / "x")])
    assert result.exit_code == 15
    assert result.stderr == "Error: 'L-Q8_0-00001-of-00003.gguf': split.count says 3 files, the repo has 1\n"


# --- bad headers: one line, exit 15 (17 for an unknown tensor type), never a traceback ----------------


def _bad(tmp_path, raw: bytes, size: int | None = None):
    path = tmp_path / "bad.gguf"
    with open(path, "wb") as f:
        f.write(raw)
        f.truncate(size if size is not None else len(raw))
    return CliRunner().invoke(main, [str(path)])


def _small_header() -> bytes:
    head, _ = gguf_fixtures.header_bytes(
        [("general.architecture", "llama", "str"), ("llama.block_count", 1, "u32")],
        [("blk.0.attn_norm.weight", (64,), "F32")],
        None,
    )
    return head


def test_truncated_header(tmp_path):
    files, sizes = gguf_fixtures.built_repo(LLAMA)
    head = files["Llama-3.2-3B-Instruct-Q4_K_M.gguf"]
    result = _bad(tmp_path, head[: len(head) // 2])
    assert result.exit_code == 15
    assert result.stderr.startswith("Error: 'bad.gguf': GGUF header truncated at byte ")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda h: b"GGUX" + h[4:], "Error: 'bad.gguf': not a GGUF file (magic 0x58554747)\n"),
        (
            lambda h: h[:4] + struct.pack("<I", 7) + h[8:],
            "Error: 'bad.gguf': GGUF version 7 is not one the gguf package reads (2, 3)\n",
        ),
        (
            lambda h: h[:8] + struct.pack("<Q", 2**40) + h[16:],
            "Error: 'bad.gguf': GGUF header claims 1,099,511,627,776 tensors and 2 keys: corrupt\n",
        ),
        # the first key's length (offset 24) claims 2^60 bytes
        (
            lambda h: h[:24] + struct.pack("<Q", 2**60) + h[32:],
            "Error: 'bad.gguf': a key claims a string of 1,152,921,504,606,846,976 bytes\n",
        ),
    ],
)
def test_corrupt_headers(tmp_path, patch, message):
    result = _bad(tmp_path, patch(_small_header()))
    assert (result.exit_code, result.stderr) == (15, message)


def test_unknown_tensor_type_and_absurd_shape(tmp_path):
    head = _small_header()
    # a tensor info: name, u32 n_dims, n_dims × u64 ne, u32 type, u64 offset
    i = head.index(b"blk.0.attn_norm.weight") + len(b"blk.0.attn_norm.weight") + 4 + 8  # n_dims, ne[0]
    unknown = head[:i] + struct.pack("<I", 250) + head[i + 4 :]
    result = _bad(tmp_path, unknown)
    assert (result.exit_code, result.stderr) == (
        17,
        "Error: 'bad.gguf': tensor 'blk.0.attn_norm.weight' has GGML type 250, unknown to the gguf package\n",
    )
    j = head.index(b"blk.0.attn_norm.weight") + len(b"blk.0.attn_norm.weight")
    five_dims = head[:j] + struct.pack("<I", 5) + head[j + 4 :]
    assert (
        _bad(tmp_path, five_dims).stderr
        == "Error: 'bad.gguf': tensor 'blk.0.attn_norm.weight' has 5 dimensions (ggml: 1 to 4)\n"
    )


def test_tensor_infos_larger_than_the_file(tmp_path):
    head = _small_header()
    result = _bad(tmp_path, head, len(head) + 100)  # the F32 tensor of 64 needs 256 bytes
    assert (result.exit_code, result.stderr) == (
        15,
        f"Error: 'bad.gguf': its tensor infos describe {len(head) + 256:,} bytes, the file has {len(head) + 100:,}\n",
    )


# --- reverse solves, presets, a repo with both formats ------------------------------------------------


def test_largest_ngl_that_fits(gguf_hub):
    from hubmem.runtimes import llamacpp

    # F16 at -c 4096, fa on: per offloaded layer 201,351,168 weights + 4096 × 2048 × 2 = 16,777,216 KV;
    # with the output layer on the CPU the scheduler still runs the 512-row logits matmul on the GPU
    # (ggml-cuda offload_op), so the GPU's compute buffer holds the copy of the tied output matrix
    # (token_embd, F16: 788,004,864 B) below the norm + f32 logits (268,959,744 B); CUDA context 512 MiB.
    # 4 GiB: (4,294,967,296 - 788,004,864 - 268,959,744 - 536,870,912) / 218,128,384 = 12.38 -> -ngl 12
    est = hubmem.estimate(LLAMA, quant="F16", ctx_size=4096, gpu_memory="4GiB", fit="off")
    row = est.rows[0]
    part = llamacpp.plan(row.model, replace(est.options, n_gpu_layers=12))
    assert part.gpus[0].compute == 788_004_864 + 268_959_744
    assert row.max_gpu_layers == 12
    assert row.fits is False
    assert est.best is None


def test_largest_context_that_fits(gguf_hub):
    # Q4_K_M fully offloaded: every tensor but rope_freqs (256) = 2,011,539,456 — token_embd (Q6_K,
    # 323,205,120) stays mapped on the CPU and, the model being tied, a copy of it goes to the GPU as the
    # output matrix (llama.cpp TENSOR_DUPLICATED); KV 28 × 4,096 = 114,688 bytes per cell; compute
    # as ggml-alloc places the prompt graph (tests/test_ggml_alloc.py): at 3,328 cells the norm + f32
    # logits of a ubatch from offset 0, 268,959,744; at 2,048 (a 4 MiB f32 mask, smaller than the 6 MiB
    # activations) the residual stream ends 24 MiB + 12,288 B up, so norm + logits end at 294,137,856.
    # 3 GiB: 3,328 cells fit (2,011,539,456 + 3,328 × 114,688 + 268,959,744 + 536,870,912 = 3,199,051,776),
    # 3,584 do not (3,228,411,904; multiples of 256)
    est = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=2048, gpu_memory="3GiB", fit="off")
    assert est.rows[0].max_ctx_size == 3328
    assert (
        est.rows[0].plan.vram == 2_011_539_456 + 234_881_024 + (24 + 6 + 250.5) * 2**20 + 12_288 + 536_870_912
    )
    assert est.rows[0].fits is True
    assert est.best == "Q4_K_M"


def test_best_quant_is_the_largest_that_fits(gguf_hub):
    # at -c 4096 on 4.5 GiB: Q8_0 needs its 3,414,061,312 tensor bytes - rope_freqs (256, on the CPU)
    # (token_embd stays mapped on the CPU and its tied copy goes to the GPU as the output matrix)
    # + 469,762,048 KV + 268,959,744 + 536,870,912 = 4,689,653,760 <= 4,831,838,208
    est = hubmem.estimate(LLAMA, ctx_size=4096, gpu_memory="4.5GiB", fit="off")
    assert est.row("Q8_0").plan.vram == 3_414_061_312 - 256 + 469_762_048 + 268_959_744 + 536_870_912
    assert [r.model.quant for r in est.rows if r.fits] == ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]
    assert est.best == "Q8_0"


def test_ollama_preset(gguf_hub):
    est = hubmem.estimate(LLAMA, quant="Q4_K_M", runtime="ollama")
    p, o = est.rows[0].plan, est.options
    assert (o.ctx_size, o.parallel, o.flash_attn, o.ubatch_size, o.cache_type_k) == (
        4096,
        1,
        "off",
        512,
        "f16",
    )
    assert p.n_ctx == 4096 and p.kv_bytes == 469_762_048
    # fa off: the f32 KQ of a ubatch, 4·512·(1 + 4·3072 + 4096·(1 + 24)) = 234,883,072, under the logits
    assert p.gpus[0].compute == 268_959_744
    with pytest.raises(InvalidInputError, match="a quantized V cache needs flash attention"):
        hubmem.estimate(LLAMA, runtime="ollama", cache_type_v="q8_0")
    assert (
        hubmem.estimate(LLAMA, quant="Q4_K_M", runtime="ollama", flash_attn="on", cache_type_v="q8_0")
        .rows[0]
        .plan.v_bytes
        == 28 * 4096 * 1088
    )


def test_parallel_sequences_split_the_context(gguf_hub):
    # -c 8192 -np 4: 4 streams of 2,048 cells (llama.cpp n_ctx_seq = n_ctx / n_seq): same total KV
    p = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=8192, parallel=4).rows[0].plan
    assert (p.kv_cells, p.n_stream, p.kv_bytes) == (2048, 4, 28 * 8192 * 2048 * 2)


def test_no_kv_offload_keeps_the_cache_in_host_ram(gguf_hub):
    p = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=4096, no_kv_offload=True).rows[0].plan
    assert p.gpus[0].kv == 0 and p.host.kv == 469_762_048


def test_repo_with_safetensors_and_gguf_offers_both(fake_hub):
    files, sizes = gguf_fixtures.built_repo(LLAMA)
    gpt2 = fake_hub.repo("openai-community/gpt2")
    both = {p: f.head for p, f in gpt2.files.items() if p != ".gitattributes"}
    both["gpt2-Q8_0.gguf"] = files["Llama-3.2-3B-Instruct-Q8_0.gguf"]
    fake_hub.add_repo(
        "acme/both",
        files=both,
        hub={
            "file_sizes": {
                "gpt2-Q8_0.gguf": sizes["Llama-3.2-3B-Instruct-Q8_0.gguf"],
                **{p: f.size for p, f in gpt2.files.items()},
            }
        },
    )
    plain = hubmem.estimate("acme/both")
    assert plain.weights_format == "safetensors"
    assert (
        plain.warnings[0]
        == "'acme/both' also holds 1 GGUF file(s): --quant NAME (or a llama.cpp flag) estimates those"
    )
    gguf = hubmem.estimate("acme/both", quant="Q8_0", ctx_size=4096)
    assert [r.model.quant for r in gguf.rows] == ["Q8_0"]
    assert hubmem.estimate("acme/both").weights_format == "safetensors"  # the two readings are cached apart


def test_apple_unified_memory_targets(gguf_hub):
    from hubmem.fit.gpus import find_gpu

    # Metal's working set, as ggml_metal_init logs it: 3/4 of an M2 Ultra's 192 GiB, 2/3 of an M1 Max's 32
    assert find_gpu("m2-ultra-192gb").usable_bytes == 147_456 * 1024**2
    assert find_gpu("m1 max").usable_bytes == round(21845.34 * 1024**2)
    assert find_gpu("m4-max-128gb").usable_bytes == 96 * 1024**3  # the 3/4 rule: no log on record
    est = hubmem.estimate(QWEN, ctx_size=32768, gpu="m2-ultra-192gb")
    assert est.rows[0].fits is True and est.best == "Q4_K_M"
    small = hubmem.estimate(QWEN, ctx_size=32768, gpu="m1-pro-16gb", fit="off")
    assert small.rows[0].fits is False and small.best is None
    assert 0 < small.rows[0].max_gpu_layers < 48


def test_compute_buffer_behaviour_options(gguf_hub):
    """--reserve-outputs and --kq-mask (llama.cpp's 2026 changes): checked, shown in --explain, and the
    replay (tests/test_ggml_alloc.py) only where its graph applies."""
    with pytest.raises(
        InvalidInputError, match="--reserve-outputs must be one of ubatch, parallel, not 'all'"
    ):
        hubmem.estimate(LLAMA, reserve_outputs="all")
    with pytest.raises(InvalidInputError, match="--kq-mask must be one of f32, f16, not 'bf16'"):
        hubmem.estimate(LLAMA, kq_mask="bf16")
    result = CliRunner().invoke(main, [LLAMA + ":Q4_K_M", "--kq-mask", "bf16"])
    assert result.exit_code == 3
    assert result.output == "Error: Invalid value for '--kq-mask': 'bf16' is not one of 'f32', 'f16'.\n"
    args = {"quant": "Q4_K_M", "ctx_size": 4096, "parallel": 4, "kv_unified": True}
    old = hubmem.estimate(LLAMA, **args).rows[0].plan
    new = hubmem.estimate(LLAMA, **args, reserve_outputs="parallel", kq_mask="f16").rows[0].plan
    assert old.gpus[0].compute == 4 * 512 * (3072 + 128256)  # the logits of a whole ubatch
    assert new.gpus[0].compute < old.gpus[0].compute / 2  # four output rows: the FFN is the peak
    assert dict(new.terms)["compute"].startswith(
        "ggml-sched + ggml-alloc replay of the llama prompt and one-token graphs (ub 512, n_kv 4,096, "
        "4 output rows, fa on, f16 mask, layers 0.. on the GPU, output too)"
    )
    result = CliRunner().invoke(
        main,
        [
            LLAMA + ":Q4_K_M",
            "-c",
            "4096",
            "-np",
            "4",
            "-kvu",
            "--reserve-outputs",
            "parallel",
            "--kq-mask",
            "f16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "-fa auto -ub 512 --reserve-outputs parallel --kq-mask f16" in result.stdout.splitlines()[1]
    # partial offload is replayed too (the split between the GPU and the CPU); several GPUs keep Ollama's
    # estimate, and --explain says why
    part = hubmem.estimate(LLAMA, **args, n_gpu_layers=10, reserve_outputs="parallel").rows[0].plan
    assert (
        "layers 18.. on the GPU; ops with host weights offloaded, their weights copied"
        in dict(part.terms)["compute"]
    )
    two = hubmem.estimate(LLAMA, **args, gpu_memory="80GiB", num_gpus=2, fit="off").rows[0].plan
    assert dict(two.terms)["compute"].startswith("max(4·ub·(1 + 4·h + n_kv·(1 + 0)), 4·ub·(h + V))")
    assert dict(two.terms)["compute"].endswith(
        "the replay does not reach several GPUs (the scheduler's pipeline copies)"
    )
    nkvo = hubmem.estimate(LLAMA, **args, no_kv_offload=True).rows[0].plan
    assert dict(nkvo.terms)["compute"].endswith(
        "the replay does not reach --no-kv-offload (llama.cpp's graph callback pins the attention to the CPU)"
    )


def test_ngl_counts_the_output_layer_in_2026_builds(gguf_hub):
    """--ngl-output: before 2026 -ngl N put the last N repeating layers on the GPU and the output only
    when N exceeded the layer count; 2026 llama.cpp (src/llama-model.cpp load_tensors: i_gpu_start =
    n_layer + 1 - N) counts the output layer among the N."""
    old = hubmem.estimate(LLAMA, quant="Q4_K_M", ctx_size=4096, n_gpu_layers=10, fit="off").rows[0].plan
    new = (
        hubmem.estimate(
            LLAMA, quant="Q4_K_M", ctx_size=4096, n_gpu_layers=10, ngl_output="counted", fit="off"
        )
        .rows[0]
        .plan
    )
    assert old.gpus[0].layers == tuple(range(18, 28)) and not old.gpus[0].output
    assert new.gpus[0].layers == tuple(range(19, 28)) and new.gpus[0].output
    assert "(the output layer counted among them)" in dict(new.terms)["offload"]
    with pytest.raises(InvalidInputError, match="--ngl-output must be one of extra, counted, not 'last'"):
        hubmem.estimate(LLAMA, ngl_output="last")
    result = CliRunner().invoke(main, [LLAMA + ":Q4_K_M", "-ngl", "10", "--ngl-output", "counted"])
    assert result.exit_code == 0, result.output
    assert "--ngl-output counted" in result.stdout.splitlines()[1]
