"""Data-parallel communication buffers (hubmem.runtimes.collectives): DDP's bucket copy of the gradients
and NCCL's ring FIFOs, by hand on the 1e9-parameter model of tests/test_training.py (1e9 trainable)."""

from __future__ import annotations

from click.testing import CliRunner

from hubmem.cli import main
from hubmem.memory import training
from hubmem.runtimes.collectives import PER_CONNECTION, ddp_bucket_bytes, nccl_bytes

from .test_training import row


def term(r: training.TrainingRow, name: str) -> int:
    return sum(t.bytes for t in r.terms if t.name == name)


def test_nccl_fifos_are_ll_ll128_and_simple_per_channel():
    # LL 8·512·8·16 = 524,288 + LL128 120·640·8·8 = 4,915,200 + NCCL_BUFFSIZE 4,194,304
    assert PER_CONNECTION == 524_288 + 4_915_200 + 4_194_304 == 9_633_792
    assert nccl_bytes(16, world=8) == 16 * 9_633_792 == 154_140_672
    assert nccl_bytes(16, world=1) == 0  # one GPU: no communicator


def test_ddp_copies_every_gradient_unless_sharded_single_or_bucket_view():
    assert ddp_bucket_bytes(10, 2, bucket_view=False, sharded=False) == 10
    assert ddp_bucket_bytes(10, 1, bucket_view=False, sharded=False) == 0
    assert ddp_bucket_bytes(10, 2, bucket_view=True, sharded=False) == 0
    assert ddp_bucket_bytes(10, 2, bucket_view=False, sharded=True) == 0


def test_ddp_rows_hold_a_second_copy_of_the_gradients():
    # bf16 on 8 GPUs, no ZeRO: 1e9 gradients × 2 B, and DDP's buckets as much again, in the gradients column
    r = row(training.TrainingSettings(gpus=8), "bf16")
    assert term(r, "gradients") == term(r, "ddp buckets") == 2 * 10**9
    assert r.gradients == 4 * 10**9
    # mixed with torch.autocast: fp32 gradients, fp32 buckets
    assert term(row(training.TrainingSettings(gpus=8), "mixed"), "ddp buckets") == 4 * 10**9
    view = row(training.TrainingSettings(gpus=8, ddp_bucket_view=True), "bf16")
    assert view.gradients == 2 * 10**9 and term(view, "ddp buckets") == 0
    # one GPU, or ZeRO / FSDP in DDP's place: no DDP buckets
    assert term(row(training.TrainingSettings(), "bf16"), "ddp buckets") == 0
    assert term(row(training.TrainingSettings(gpus=8, zero=2), "bf16"), "ddp buckets") == 0
    assert term(row(training.TrainingSettings(gpus=8, fsdp="full"), "bf16"), "ddp buckets") == 0
    # tensor parallel only (one replica): nothing to all-reduce over data
    assert term(row(training.TrainingSettings(gpus=2, tp=2), "bf16"), "ddp buckets") == 0


def test_nccl_channels_go_to_the_overhead_column():
    plain = row(training.TrainingSettings(gpus=8, zero=3), "bf16")
    r = row(training.TrainingSettings(gpus=8, zero=3, nccl_channels=16), "bf16")
    assert r.overhead == plain.overhead + 154_140_672 == training.DEFAULT_OVERHEAD_BYTES + 154_140_672
    assert r.total == plain.total + 154_140_672
    assert sum(t.bytes for t in r.terms) == r.total


def test_bad_nccl_channels_is_a_one_line_error(fake_hub):
    result = CliRunner().invoke(
        main, ["test/tiny", "--train", "full", "--gpus", "2", "--nccl-channels", "-1"]
    )
    assert result.exit_code == 3
    assert result.stderr == "Error: --nccl-channels must be at least 0\n"
