"""GPTQ / AWQ rows through GPTQModel's kernels (hubmem.runtimes.gptq). Figures by hand from
EleutherAI/pythia-410m: per layer the block Linears (out, in) query_key_value (3072, 1024), dense
(1024, 1024), dense_h_to_4h (4096, 1024), dense_4h_to_h (1024, 4096), × 24 layers: 96 Linears,
Σ in_features 7,168 × 24 = 172,032, groups of 128 × out (3072·8 + 1024·8 + 4096·8 + 1024·32) × 24
= 2,359,296."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.runtimes.gptq import kernel_buffers, select_kernel

PYTHIA = "EleutherAI/pythia-410m"
KEPT16 = (405_334_016 - 301_989_888) * 2  # embeddings, norms, embed_out, biases in 16-bit
PACKED = 301_989_888 // 2  # qweight: 4 bits per weight
SCALES = 2_359_296 * 2  # fp16 scale per group of 128 per output
BASE = PACKED + SCALES + KEPT16  # 362,401,792
G_IDX = 172_032 * 4  # 688,128: one int32 per input feature per Linear
QZEROS = 2_359_296 // 2  # 1,179,648: 4-bit zeros, 8 per int32
SHAPES = {(3072, 1024): 24, (1024, 1024): 24, (4096, 1024): 24, (1024, 4096): 24}


def rows(*args: str) -> dict[str, dict]:
    result = CliRunner().invoke(
        main, [PYTHIA, "--seq-len", "16", "--overhead", "0GB", "--format", "json", *args]
    )
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return {r["precision"]: r for r in json.loads(result.stdout)["rows"]}


def kernel_term(row: dict) -> dict:
    (term,) = [t for t in row["terms"] if t["name"] == "kernel buffers"]
    return term


@pytest.mark.parametrize(
    ("method", "cc", "kernel"),
    [
        ("gptq", (10, 0), "swordfish"),
        ("gptq", (9, 0), "machete"),
        ("gptq", (8, 9), "marlin"),
        ("gptq", (7, 5), "marlin"),
        ("gptq", (7, 0), "exllamav2"),
        ("gptq", (12, 0), "marlin"),
        ("awq", (10, 0), "marlin"),
        ("awq", (9, 0), "machete"),
        ("awq", (8, 0), "marlin"),
        ("awq", (7, 5), "exllamav2"),
        ("gptq", None, "marlin"),
    ],
)
def test_auto_picks_gptqmodels_highest_priority_kernel_for_the_compute_capability(method, cc, kernel):
    assert select_kernel(method, cc) == kernel


def test_marlin_keeps_one_workspace_per_linear_and_drops_g_idx_and_sym_zeros(fake_hub):
    # no --gpu: Marlin; 96 Linears × max(128, 128) int32 = 49,152; g_idx and qzeros emptied
    row = rows("--precision", "gptq")["gptq"]
    assert row["weights"] == BASE + 96 * 128 * 4 == 362_450_944
    assert "Marlin workspace 96 Linears × max(128, 128) int32 = 49,152" in kernel_term(row)["formula"]
    # 132 SMs (H100 SXM): 96 × 132 × 4 = 50,688; desc_act keeps the sorted g_idx + its sort indices
    assert rows("--precision", "gptq", "--gpu-sms", "132")["gptq"]["weights"] == BASE + 50_688
    act = rows("--precision", "gptq", "--gptq-desc-act")["gptq"]
    assert act["weights"] == BASE + 49_152 + 2 * G_IDX
    # AWQ on Marlin keeps its zero points (repacked, same size); AWQ has no g_idx
    assert rows("--precision", "awq")["awq"]["weights"] == BASE + 49_152 + QZEROS


def test_exllamav2_on_a_v100_holds_g_idx_zeros_and_one_scratch_sized_by_the_widest_linear(fake_hub):
    # CC 7.0 is below Marlin's 7.5: exllamav2. Scratch = max over Linears of in·out·2 + 128 +
    # out·2048·8·4 + 128; dense_h_to_4h (4096 out, 1024 in): 8,388,736 + 268,435,584 = 276,824,320
    row = rows("--precision", "gptq", "--gpu", "v100-32gb")["gptq"]
    assert row["weights"] == BASE + G_IDX + QZEROS + 276_824_320
    assert "auto for compute capability 7.0" in kernel_term(row)["formula"]
    # AWQ's scratch is at AWQ_BATCH_SIZE 1: 8,388,736 + 4096·2048·4 + 128 = 41,943,296; no g_idx
    awq = rows("--precision", "awq", "--gpu", "t4-16gb")["awq"]
    assert awq["weights"] == BASE + QZEROS + 41_943_296


def test_machete_on_hopper_keeps_g_idx_and_turns_awq_zeros_into_fp16(fake_hub):
    both = rows("--precision", "gptq", "--precision", "awq", "--gpu", "h100-80gb")
    assert both["gptq"]["weights"] == BASE + G_IDX  # sym: qzeros emptied, no workspace
    assert both["awq"]["weights"] == BASE + SCALES  # −scales·zeros: one fp16 per group and output


def test_the_kernel_can_be_named_and_int4_stays_the_generic_row(fake_hub):
    named = rows("--precision", "gptq", "--precision", "int4", "--gptq-kernel", "exllamav2")
    assert named["gptq"]["weights"] == BASE + G_IDX + QZEROS + 276_824_320
    # int4: 4 bits + fp16 scale + 4-bit zero per group, no kernel: unchanged
    assert named["int4"]["weights"] == PACKED + 2_359_296 * 5 // 2 + KEPT16
    assert kernel_buffers("gptq", "swordfish", SHAPES, desc_act=True).total == G_IDX  # input_perm


def test_a_kernel_that_cannot_run_the_method_is_one_line_error(fake_hub):
    result = CliRunner().invoke(main, [PYTHIA, "--precision", "awq", "--gptq-kernel", "swordfish"])
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        "Error: --gptq-kernel 'swordfish' does not run awq (auto, machete, marlin, exllamav2)"
    ]


def test_explain_names_the_kernel_and_why(fake_hub):
    result = CliRunner().invoke(
        main, [PYTHIA, "--seq-len", "16", "--precision", "gptq", "--gpu", "h100-80gb", "--explain"]
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "machete (auto for compute capability 9.0): machete: g_idx Σin 172,032 × 4 = 688,128" in result.stdout
    )
