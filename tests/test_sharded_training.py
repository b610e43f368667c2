"""DeepSpeed ZeRO and FSDP runtime buffers (hubmem.runtimes.sharded_training): the reuse-distance rule on
hand-made traces, persistence, DeepSpeed's and the HF Trainer's bucket defaults, and Llama-2-7B exactly."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.memory import training
from hubmem.runtimes.sharded_training import Trace, ZeroBuckets, persistent_elements, zero3_live

from .helpers import cli_json

# forward: E(10) a(5) b(5) | c(5) d(5) | H(10); backward without checkpointing: H d c b a E
TOY = Trace(pre=(10,), layers=((5, 5), (5, 5)), post=(10,))


def live(
    max_reuse: int, prefetch: int = 6, max_live: int = 10**9, checkpointing: bool = False
) -> tuple[int, int]:
    return zero3_live(
        TOY,
        checkpointing=checkpointing,
        max_reuse=max_reuse,
        prefetch=prefetch,
        max_live=max_live,
        persistent=0,
    )


def test_a_module_stays_gathered_when_its_next_use_is_nearer_than_the_reuse_distance():
    # H is used again at once (0 between); d's next use is 20 elements away (H forward + H backward): kept
    # only when 20 < max_reuse. Prefetch then takes the first modules of the backward trace not yet
    # gathered until it has at least 6 elements: c + b (or d + c).
    assert live(20) == (10, 10)  # H kept; d, c prefetched
    assert live(21) == (15, 10)  # H, d kept; c, b prefetched
    assert live(31) == (20, 10)  # c: d + H + H + d = 30 between
    assert live(41, prefetch=0) == (25, 0)  # b: c d H H d c = 40 between; no prefetch at 0


def test_prefetch_stops_at_max_live_parameters():
    # 10 available (H) and max_live 12: at most 2 more, and the prefetch takes whole modules (d: 5)
    assert live(20, max_live=12) == (10, 5)
    assert live(20, max_live=10) == (10, 0)


def test_checkpointing_recomputes_each_layer_before_its_backward():
    # backward with checkpointing: H, c d (recompute) d c, a b (recompute) b a, E.
    # d: H H c = 25 between its forward and its recompute; c: d H H = 25. At 26 both stay, at 25 neither.
    assert live(26, prefetch=0, checkpointing=True) == (20, 0)
    assert live(25, prefetch=0, checkpointing=True) == (10, 0)
    assert live(26, prefetch=0) == (15, 0)  # without: d 20 between, c 30


def test_persistent_elements_are_the_small_matrices_and_the_vectors():
    # 2 matrices of 100 (≤ 100, persistent), one of 10,000; 10,300 − 10,200 = 100 elements in 1-D tensors
    assert persistent_elements(10_300, {(10, 10): 2, (100, 100): 1}, 100) == 200 + 100
    assert persistent_elements(10_300, {(10, 10): 2, (100, 100): 1}, 99) == 100


def test_bucket_defaults_deepspeed_and_hf_auto():
    assert ZeroBuckets().resolved(4096) == (500_000_000, 50_000_000, 100_000)
    # transformers HfTrainerDeepSpeedConfig "auto": h², int(0.9·h²), 10·h
    assert ZeroBuckets(preset="hf-auto").resolved(4096) == (16_777_216, 15_099_494, 40_960)
    assert ZeroBuckets(preset="hf-auto", reduce_bucket_size=7).resolved(4096)[0] == 7
    assert ZeroBuckets().overlap(3) and not ZeroBuckets().overlap(2)
    assert ZeroBuckets(overlap_comm=True).overlap(1)


LLAMA = ("meta-llama/Llama-2-7b-hf", "--train", "full", "--regime", "bf16", "--seq-len", "512", "--gpus", "8")


def terms(fake_hub, *args: str) -> dict[str, int]:
    rows = cli_json(*LLAMA, *args)["training"]["rows"]
    return {t["name"]: t["bytes"] for t in rows[0]["terms"]}


def test_llama_2_7b_zero_3_with_deepspeed_s_defaults(fake_hub):
    """Llama-2-7B: embeddings and lm_head 32000 × 4096 = 131,072,000 each; a layer's q, k, v, o 16,777,216
    each and gate, up, down 45,088,768 each (202,375,168); 65 RMSNorm weights of 4096 = 266,240 persistent.
    With max_reuse_distance 1e9 a module stays gathered when the parameters after it are < 5e8: the lm_head,
    layer 31 and layer 30's v, o, gate, up and down: 131,072,000 + 202,375,168 + 2 × 16,777,216 + 3 × 45,088,768
    = 502,267,904 (everything after layer 30's k_proj). Prefetch: k, q of layer 30 and layer 29's
    down_proj (16,777,216 · 2 + 45,088,768 = 78,643,200 ≥ 5e7)."""
    t = terms(fake_hub, "--zero", "3")
    assert 131_072_000 + 202_375_168 + 2 * 16_777_216 + 3 * 45_088_768 == 502_267_904
    assert t["persistent params"] == 266_240 * 2
    assert t["gathered params"] == (502_267_904 + 78_643_200) * 2
    assert t["reduce bucket"] == 500_000_000 * 2
    # the HF Trainer's "auto": reduce h² = 16,777,216; persistence 40,960 (norms 4096 still under it);
    # prefetch int(0.9 · h²) = 15,099,494: one module, layer 30's k_proj (16,777,216)
    auto = terms(fake_hub, "--zero", "3", "--zero-buckets", "hf-auto")
    assert auto["reduce bucket"] == 16_777_216 * 2
    assert auto["gathered params"] == (502_267_904 + 16_777_216) * 2
    # a shorter reuse distance keeps less: 2e8 → the parameters after the module < 1e8: the lm_head only
    # (131,072,000 > 1e8 after layer 31's down_proj); prefetch 5e7: down, up of layer 31 (90,177,536)
    short = terms(fake_hub, "--zero", "3", "--max-reuse-distance", "2e8")
    assert short["gathered params"] == (131_072_000 + 2 * 45_088_768) * 2


def test_zero_1_and_2_keep_one_reduce_bucket_two_with_overlap_comm(fake_hub):
    assert terms(fake_hub, "--zero", "2")["reduce bucket"] == 500_000_000 * 2
    assert terms(fake_hub, "--zero", "1", "--overlap-comm")["reduce bucket"] == 2 * 500_000_000 * 2
    assert terms(fake_hub, "--zero", "2", "--reduce-bucket-size", "2e8")["reduce bucket"] == 200_000_000 * 2
    assert "persistent params" not in terms(fake_hub, "--zero", "2")


def test_fsdp_full_on_llama_2_7b(fake_hub):
    """Root unit = embeddings + lm_head (262,144,000); a layer unit = the blocks / 32 = 202,375,168 + its 2 norms
    (8,192) + 1/32 of the final norm (128) = 202,383,488."""
    t = terms(fake_hub, "--fsdp", "full")
    assert t["gathered units"] == (262_144_000 + 2 * 202_383_488) * 2
    assert t["unsharded gradient"] == 202_383_488 * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--reduce-bucket-size", "5e8"), "--reduce-bucket-size sets a DeepSpeed ZeRO buffer: add --zero 1, 2 or 3"),
        (("--zero", "2", "--prefetch-bucket-size", "1e7"), "--prefetch-bucket-size is a ZeRO-3 setting: it needs --zero 3"),
        (("--fsdp", "full", "--zero-buckets", "hf-auto"), "--zero-buckets sets a DeepSpeed ZeRO buffer: add --zero 1, 2 or 3"),
        (("--zero", "3", "--max-live-parameters", "lots"), "--max-live-parameters takes a number of elements (e.g. 5e8), not 'lots'"),
        (("--zero", "3", "--max-reuse-distance", "1.5"), "--max-reuse-distance takes a whole number of elements ≥ 0, not '1.5'"),
        (("--zero", "3", "--reduce-bucket-size", "1e16"), "--reduce-bucket-size must be at most 1,000,000,000,000,000, not 10,000,000,000,000,000"),
    ],
)  # fmt: skip
def test_bad_bucket_options_are_one_line_errors(fake_hub, args, message):
    result = CliRunner().invoke(main, ["test/tiny", "--train", "full", "--gpus", "2", *args])
    assert result.exit_code == 3
    assert result.stderr == f"Error: {message}\n"


def test_api_takes_the_bucket_options():
    s = training.TrainingSettings(zero=3, gpus=2, prefetch_bucket_size=0)
    assert s.buckets.resolved(64) == (500_000_000, 0, 100_000)
    with pytest.raises(Exception, match="unknown --zero-buckets 'x'"):
        training.TrainingSettings(zero=3, gpus=2, zero_buckets="x")


def test_python_api_takes_the_bucket_options(fake_hub):
    import hubmem

    result = hubmem.train(
        "meta-llama/Llama-2-7b-hf",
        "full",
        regimes="bf16",
        seq_len=512,
        gpus=8,
        zero=3,
        prefetch_bucket_size="0",
    )
    terms = {t["name"]: t["bytes"] for t in result.to_dict()["training"]["rows"][0]["terms"]}
    assert terms["gathered params"] == 502_267_904 * 2  # no prefetch: the reused tail only
