"""Fit verdicts: per-GPU totals under tensor parallelism, headroom, the fewest GPUs, and the reverse
solve (longest sequence, largest batch), worked by hand on the tiny fixture; then through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.errors import InvalidInputError
from hubmem.fit import verdicts as fit
from hubmem.hub import fetch as hub
from hubmem.jobs.estimate import estimate_snapshot

from .helpers import config, headers, layout

TINY = "test/tiny"
MIB = 1024**2
OVERHEAD = 1024**3  # default overhead per GPU

# By hand from fixtures/repos/test__tiny (h 64, i 128, L 2, a 4, k 2, d 16, V 1000), bf16 row, sdpa:
#   weights 202,048 x 2 = 404,096
#   KV cache  b·s · 2 layers · 2 (K,V) · 2 heads · 16 · 2 bytes = 256·b·s
#   activations  max(attention (2·s·64 + 2·s·64)·2 = 512·b·s, MLP (2·s·64 + 3·s·128)·2 = 1024·b·s)
#                + logits b·1000·4 = 4000·b
# so bf16 total(s, b) = 404,096 + 1280·b·s + 4000·b + overhead.
W = 404_096


def bf16_total(s: int, b: int) -> int:
    return W + 1280 * b * s + 4000 * b + OVERHEAD


def tiny(**options):
    files = {name: None for name in layout(TINY)["files"]}
    snapshot = hub.RepoSnapshot(TINY, None, None, config(TINY), files, headers(TINY))
    return estimate_snapshot(snapshot, precisions=["bf16"], **options)


def test_one_gpu_total_is_the_row_total():
    est = tiny(seq_len=1024)
    assert est.row("bf16").total == bf16_total(1024, 1) == W + 1_310_720 + 4000 + OVERHEAD
    v = fit.verdict(est, "bf16", fit.Target("card", OVERHEAD + 2 * MIB))
    assert v.per_gpu_bytes == bf16_total(1024, 1)
    assert v.fits and v.headroom == 2 * MIB - (W + 1_310_720 + 4000) == 378_336


def test_does_not_fit_and_the_fewest_gpus_that_do():
    est = tiny(seq_len=1024, batch=2)
    # one GPU: 404,096 + 2·1,310,720 + 8,000 = 3,033,536 model bytes > 2 MiB of room
    one = fit.verdict(est, "bf16", fit.Target("card", OVERHEAD + 2 * MIB))
    assert not one.fits
    assert one.headroom == 2 * MIB - 3_033_536 == -936_384
    # two GPUs: weights 202,048 + KV 524,288 / 2 (one KV head each) + activations 2,105,152 / 2 + overhead
    assert one.gpus_needed == 2
    two = fit.verdict(est, "bf16", fit.Target("card", OVERHEAD + 2 * MIB, count=2))
    assert two.per_gpu_bytes == 202_048 + 262_144 + 1_052_576 + OVERHEAD
    assert two.fits


def test_kv_heads_are_replicated_beyond_their_count():
    # k = 2: on 4 GPUs each still holds one whole KV head (vLLM replicates), so KV stays at 1/2.
    est = tiny(seq_len=1024)
    row = est.row("bf16")
    assert (row.kv_cache, row.activations) == (262_144, 1_048_576 + 4000)
    assert fit.per_gpu_bytes(row, est.architecture, 4) == 101_024 + 262_144 // 2 + 1_052_576 // 4 + OVERHEAD


def test_reverse_solve_longest_sequence_and_largest_batch():
    est = tiny(seq_len=1024)
    v = fit.verdict(est, "bf16", fit.Target("card", OVERHEAD + 10 * MIB))
    # 404,096 + 1280·s + 4000 <= 10,485,760  ->  s <= 7,873.17
    assert v.max_seq_len == 7_873
    assert bf16_total(7_873, 1) <= OVERHEAD + 10 * MIB < bf16_total(7_874, 1)
    # at s = 1024: 404,096 + b·(1,310,720 + 4000) <= 10,485,760  ->  b <= 7.67
    assert v.max_batch == 7
    assert bf16_total(1024, 7) <= OVERHEAD + 10 * MIB < bf16_total(1024, 8)


def test_reverse_solve_when_nothing_fits():
    est = tiny(seq_len=1024)
    v = fit.verdict(est, "bf16", fit.Target("card", OVERHEAD + W))  # room for the weights and nothing else
    assert (v.max_seq_len, v.max_batch) == (0, 0)
    assert fit.verdict(est, "bf16", fit.Target("card", OVERHEAD // 2)).gpus_needed is None  # overhead alone


def test_rule_of_thumb_margin_splits_with_the_weights_and_has_no_reverse_solve():
    est = tiny(seq_len=1024, serving_factor=1.2)
    row = est.row("bf16")
    assert row.overhead == round(W * 0.2) == 80_819
    v = fit.verdict(est, "bf16", fit.Target("card", 10**6, count=2))
    assert v.per_gpu_bytes == -(-(W + 80_819) // 2) == 242_458
    assert (v.max_seq_len, v.max_batch) == (None, None)


def test_search_helpers():
    assert fit.largest_fitting(lambda x: x <= 1000) == 1000
    assert fit.largest_fitting(lambda x: x <= 1) == 1
    assert fit.largest_fitting(lambda x: False) == 0
    assert fit.largest_fitting(lambda x: True, limit=77) == 77
    assert fit.fewest_gpus(lambda n: n >= 13) == 13
    assert fit.fewest_gpus(lambda n: False, limit=8) is None
    calls = []
    fit.largest_fitting(lambda x: calls.append(x) or x <= 1_000_000)
    assert len(calls) <= 2 * 21  # doubling + bisection, not a scan


def test_target_from_options():
    h100 = fit.target("H100", None, 2)
    assert (h100.name, h100.key, h100.count, h100.usable_bytes) == (
        "H100 SXM 80GB",
        "h100-80gb",
        2,
        81_089 * MIB,
    )
    assert fit.target(None, 24 * 1024**3).usable_bytes == 24 * 1024**3
    assert fit.target(None, None) is None
    for args, message in [
        (("h1000", None), "unknown GPU 'h1000'; did you mean: h100-80gb"),
        (("h100", 1), "give --gpu or --gpu-memory, not both"),
        ((None, None, 2), "--num-gpus needs --gpu or --gpu-memory"),
        (("h100", None, 0), "--num-gpus must be at least 1"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            fit.target(*args)


def test_estimate_with_a_gpu_prints_the_fit_table(fake_hub):
    result = CliRunner().invoke(
        main, [TINY, "--seq-len", "1024", "--precision", "bf16", "--gpu-memory", "1034MiB", "--batch", "2"]
    )
    assert result.exit_code == 0, result.stderr
    # batch 2: max s with 404,096 + 2·1280·s + 8000 <= 10 MiB is 3,935 > the model's 2,048
    assert result.stdout.split("\n\n")[-1] == (
        "on 1× custom GPU (1.01 GiB usable each, tensor parallel; max seq len at batch 2, max batch at seq 1,024)\n"
        "precision      per GPU GiB  fits                   GPUs needed        max seq len    max batch\n"
        "-----------  -------------  -------------------  -------------  -----------------  -----------\n"
        "bf16/fp16             1.00  yes, +0.01 GiB free              1  2,048 (model max)            7\n"
    )


def test_estimate_json_carries_the_verdicts(fake_hub):
    result = CliRunner().invoke(main, [TINY, "--seq-len", "1024", "--precision", "bf16", "--gpu", "t4",
                                       "--num-gpus", "2", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (v,) = json.loads(result.stdout)["fit"]
    assert v["gpu"] == "T4 16GB" and v["num_gpus"] == 2
    assert v["usable_bytes_per_gpu"] == 15_102 * MIB
    assert v["per_gpu_bytes"] == 202_048 + 262_144 // 2 + 1_052_576 // 2 + OVERHEAD
    assert v["headroom_bytes"] == 15_102 * MIB - v["per_gpu_bytes"]
    assert v["fits"] is True and v["gpus_needed"] == 1


def test_unknown_gpu_is_an_error_line(fake_hub):
    result = CliRunner().invoke(main, [TINY, "--gpu", "a100-90gb"])
    assert result.exit_code == 3
    assert result.stderr == "Error: unknown GPU 'a100-90gb'; did you mean: a100-80gb, a100-40gb, h100-80gb?\n"


def test_estimate_csv_appends_the_verdict_columns(fake_hub):
    result = CliRunner().invoke(
        main, [TINY, "--seq-len", "1024", "--precision", "bf16", "--gpu-memory", "1034MiB", "--format", "csv"]
    )
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.endswith(
        ",fits_on,fit_gpu,fit_gpu_key,fit_num_gpus,fit_usable_bytes_per_gpu,fit_per_gpu_bytes,fit_fits,"
        "fit_headroom_bytes,fit_gpus_needed,fit_max_seq_len,fit_max_batch,fit_judged_as,fit_note,fit_runnable"
    )
    # 10 MiB of room past the overhead: 10,485,760 - (404,096 + 1,314,720) headroom; s <= 2,048 (model max)
    total = bf16_total(1024, 1)
    assert (
        row
        == f"bf16,404096,262144,1052576,{OVERHEAD},{total},T4 16GB,custom GPU,,1,{1034 * MIB},{total},True,{1034 * MIB - total},1,7873,7,bf16,,True"
    )  # judged as bf16 (its own precision), no capability note for a custom GPU; runnable (no format rule)


def test_an_mla_latent_is_kept_whole_on_every_gpu(fake_hub):
    # DeepSeek-V3: one latent of (512 + 64) x 2 bytes per token per layer, 61 layers; at 1,024 tokens
    # 1,024 x 61 x 576 x 2 = 71,958,528 bytes on each GPU, however many share the weights.
    result = CliRunner().invoke(
        main,
        ["deepseek-ai/DeepSeek-V3", "--precision", "bf16", "--seq-len", "1024", "--gpu", "h200", "--num-gpus",
         "8", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    row, (v,) = data["rows"][0], data["fit"]
    assert row["kv_cache"] == 1024 * 61 * 576 * 2 == 71_958_528
    shared = row["weights"] + row["activations"]
    assert v["per_gpu_bytes"] == -(-shared // 8) + 71_958_528 + OVERHEAD


def test_fits_on_column_splits_like_the_gpu_verdict(fake_hub):
    # Llama-3.1-70B bf16 at its 131,072-token context: no single common GPU holds it, so "fits on" names
    # the fewest H100 SXM 80GB (81,089 MiB usable) that hold weights + activations split n ways, the
    # 8 KV heads split ceil(8/n) per GPU, and the 1 GiB overhead on each GPU.
    result = CliRunner().invoke(main, ["meta-llama/Llama-3.1-70B", "--precision", "bf16", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)["rows"][0]
    usable = 81_089 * 1024**2

    def per_gpu(n: int) -> int:
        return (
            -(-(row["weights"] + row["activations"]) // n)
            + row["kv_cache"] * -(-8 // n) // 8
            + row["overhead"]
        )

    n = next(n for n in range(1, 64) if per_gpu(n) <= usable)
    assert n > 1 and per_gpu(n - 1) > usable
    assert row["fits_on"] == f"{n}× H100 SXM 80GB"
    verdict = json.loads(
        CliRunner()
        .invoke(
            main, ["meta-llama/Llama-3.1-70B", "--precision", "bf16", "--gpu", "h100", "--format", "json"]
        )
        .stdout
    )["fit"]
    assert verdict[0]["gpus_needed"] == n
