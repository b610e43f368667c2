"""vLLM's MXFP4 MoE experts (gpt-oss) as each backend allocates them (hubmem/runtimes/mxfp4_moe.py names the
vLLM files): hand-derived bytes per layer, the backend vLLM picks per GPU, the published logs' weights, and the
CLI's --explain / --mxfp4-backend / refusal below compute capability 8.0."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.model.architecture import parse_architecture
from hubmem.runtimes import mxfp4_moe, sharding
from scripts import compare_serve

from .helpers import config, headers

GPT120 = "openai/gpt-oss-120b"
# gpt-oss-120b: 36 layers × 128 experts, hidden 2880, intermediate 2880. The checkpoint per layer:
# gate_up_proj_blocks 128 × 5760 × 1440 B + scales 128 × 5760 × 90 + bias 128 × 5760 × 2,
# down_proj_blocks 128 × 2880 × 1440 + scales 128 × 2880 × 90 + bias 128 × 2880 × 2
CHECKPOINT_LAYER = 1_061_683_200 + 66_355_200 + 1_474_560 + 530_841_600 + 33_177_600 + 737_280
assert CHECKPOINT_LAYER == 1_694_269_440


def test_marlin_pads_the_intermediate_to_128_and_the_hidden_to_256():
    """I' = round_up(2880, 128) = 2944, H' = round_up(2880, 256) = 3072: w13 128 × 5888 × 1536 B +
    w2 128 × 3072 × 1472 B; E8M0 scales 128 × 5888 × 96 + 128 × 3072 × 92; biases (128 × 5888 + 128 × 3072) × 2 B."""
    one = mxfp4_moe.layer_bytes(128, 2880, 2880, 1, "marlin", 2)
    assert (one.intermediate, one.hidden) == (2944, 3072)
    assert one.weights == 1_157_627_904 + 578_813_952
    assert one.scales == 72_351_744 + 36_175_872
    assert one.biases == (753_664 + 393_216) * 2
    assert one.bytes == 1_847_263_232  # 152,993,792 B (9.0 %) more than the checkpoint's layer


def test_marlin_at_tp4_pads_each_ranks_720_to_768():
    """2880 / 4 = 720 → 768; w13 128 × 1536 × 1536 + w2 128 × 3072 × 384; scales 128 × 1536 × 96 +
    128 × 3072 × 24; biases (128 × 1536 + 128 × 3072) × 2 (w2_bias whole on every rank)."""
    one = mxfp4_moe.layer_bytes(128, 2880, 2880, 4, "marlin", 2)
    assert one.intermediate == 768
    assert one.bytes == 301_989_888 + 150_994_944 + 18_874_368 + 9_437_184 + 393_216 + 786_432 == 482_476_032


def test_triton_keeps_the_shapes_but_the_scales_twice_and_fp32_biases():
    """round_up(2880, 64) = 2880, hidden unpadded; the swizzled scales are a second copy beside the registered
    uint8 ones; biases .to(float32)."""
    one = mxfp4_moe.layer_bytes(128, 2880, 2880, 1, "triton", 2)
    assert (one.intermediate, one.hidden) == (2880, 2880)
    assert one.weights == 1_061_683_200 + 530_841_600
    assert one.scales == 2 * (66_355_200 + 33_177_600)
    assert one.biases == (737_280 + 368_640) * 4


def test_flashinfer_backends_pad_as_their_kernels_need():
    trtllm = mxfp4_moe.layer_bytes(128, 2880, 2880, 1, "flashinfer-trtllm", 2)
    cutlass = mxfp4_moe.layer_bytes(128, 2880, 2880, 1, "flashinfer-cutlass", 2)
    assert (trtllm.intermediate, trtllm.hidden, trtllm.biases) == (3072, 3072, (128 * 6144 + 128 * 3072) * 4)
    assert (cutlass.intermediate, cutlass.hidden, cutlass.biases) == (
        2944,
        2944,
        (128 * 5888 + 128 * 2944) * 2,
    )


@pytest.mark.parametrize(
    "cc, backend",
    [
        ((8, 0), "marlin"),
        ((8, 9), "marlin"),
        ((9, 0), "triton"),
        ((10, 0), "flashinfer-trtllm"),
        ((12, 0), "marlin"),
    ],
)
def test_the_backend_vllm_picks_by_compute_capability(cc, backend):
    assert mxfp4_moe.choose_backend(cc)[0] == backend


def test_the_plan_weights_are_the_checkpoint_plus_marlins_padding():
    from hubmem.jobs.serve import engine_options, plan_for
    from hubmem.runtimes import vllm as rt

    arch = parse_architecture(config(GPT120))
    (rank,) = sharding.rank_weights(headers(GPT120), config(GPT120), arch, tp=1, pp=1, float_bytes=2)
    rope = sharding.rotary_cache_bytes(arch, config(GPT120), 2)
    gpu = rt.GpuSpec("H100", None, 80 * 2**30, (9, 0))
    plan = plan_for(
        compare_serve._snapshot(GPT120)[0], arch, 0, gpu, engine_options(None, {"mxfp4_backend": "marlin"})
    )
    assert plan.worst.weights == rank.bytes + rope + 36 * (1_847_263_232 - CHECKPOINT_LAYER)
    term = next(t for t in plan.terms if t.name == "mxfp4_moe")
    assert term.bytes == 36 * 1_847_263_232


# before (the checkpoint's bytes) → after (the backend's allocation), against each log's "Model loading took"
EXPECTED = {
    "vllm23278-gpt-oss-120b-h100": (-7.9, -0.1),  # 0.10.1, H100, Marlin (the log says so)
    "vllm27508-gpt-oss-120b-h100-util095": (-7.9, -0.1),  # the same weights, assumed from vllm#23278
    "myoceane-gpt-oss-20b-a100-util065": (-6.5, -0.2),  # 0.19, A100: Marlin
    "llmd-gpt-oss-20b-h100": (-4.7, -0.5),  # 0.11+, H100: Triton
    "llmd-gpt-oss-120b-h100-util095": (-5.6, -0.3),  # 0.11+, H100: Triton
    "dennislee22-gpt-oss-120b-4xa100-tp4": (-11.6, -0.1),  # 0.10.1.1, 4× A100: Marlin at TP 4
}


@pytest.mark.parametrize("row_id", sorted(EXPECTED))
def test_every_gpt_oss_log_within_two_percent(row_id):
    row = next(r for r in compare_serve.rows() if r["id"] == row_id)
    after = compare_serve.compare(row)
    assert round(after.weights_error * 100, 1) == EXPECTED[row_id][1]
    assert not row["known_gap"]


def test_marlin_on_the_llmd_h100_logs_would_be_two_percent_high():
    """Marlin's padding on H100 (65.91 GiB for gpt-oss-120b) against llm-d's 64.38: the file's engine ran Triton."""
    row = next(r for r in compare_serve.rows() if r["id"] == "llmd-gpt-oss-120b-h100-util095")
    assert round(compare_serve.compare(dict(row, mxfp4_backend="marlin")).weights_error * 100, 1) == 2.4


def test_explain_shows_the_mxfp4_term(fake_hub):
    result = CliRunner().invoke(
        main,
        [
            "serve",
            "openai/gpt-oss-20b",
            "--gpu",
            "h100",
            "--max-model-len",
            "16000",
            "--mxfp4-backend",
            "marlin",
            "--explain",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "\nmxfp4_moe " in result.stdout
    assert "with marlin (--mxfp4-backend): I/TP padded to 2944, hidden to 3072" in result.stdout


def test_a_gpu_below_compute_capability_8_is_refused(fake_hub):
    result = CliRunner().invoke(main, ["serve", GPT120, "--gpu", "t4", "--max-model-len", "4096"])
    assert result.exit_code == 19
    assert (
        "The quantization method mxfp4 is not supported for T4 16GB: minimum capability 80" in result.output
    )
