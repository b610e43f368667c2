"""transformers `generate`: prefill over the prompt vs the decode steps (hubmem.runtimes.generate).

Every expected figure is derived by hand in the comments from the fixtures' config.json:
EleutherAI/pythia-410m: h 1024, i 4096 (plain GELU MLP), L 24, a = k = 16, d 64, V 50,304, 405,334,016
parameters in F16, and 24 stored buffers (attention.bias BOOL [1,1,2048,2048] + inv_freq F32 [8]).
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from hubmem.cli import main

PYTHIA = "EleutherAI/pythia-410m"
WHISPER = "openai/whisper-small"
KV_PER_TOKEN = 24 * 2 * 16 * 64 * 2  # 98,304 B: L × 2 × k × d × e
WEIGHTS = 405_334_016 * 2  # 810,668,032
BUFFERS = 24 * (2048 * 2048 * 1 + 8 * 4)  # 100,664,064 B of masks and inv_freq


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def row(*args: str) -> dict:
    result = cli(*args, "--precision", "bf16", "--overhead", "0GB", "--format", "json")
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    (only,) = json.loads(result.stdout)["rows"]
    return only


def test_a_generation_pays_its_prefill_at_the_prompt_length(fake_hub):
    # prefill at p = 2048 (sdpa): KV 2048 × 98,304 = 201,326,592; one layer's peak is the MLP
    # (2·s·h + 2·s·i)·2 = (4,194,304 + 16,777,216)·2 = 41,943,040 (> attention (2·s·h + 2·s·a·d)·2
    # = 16,777,216, > logits 50,304 × 4 = 201,216): 243,269,632.
    # 100 new tokens are the prefill + 99 decode steps (the 100th token is never fed back). Last decode
    # step (2,146 cached, the 2,147th written): KV 2,147 × 98,304 = 211,058,688; one token's layer is
    # below the fp32 logits 201,216; torch.cat holds one layer's old K/V: 2,146 × 98,304 / 24
    # = 8,790,016: 220,049,920 < the prefill, which is the peak.
    r = row(PYTHIA, "--prompt-len", "2048", "--new-tokens", "100")
    assert (r["weights"], r["kv_cache"], r["activations"]) == (WEIGHTS, 201_326_592, 41_943_040)
    assert r["total"] == WEIGHTS + 243_269_632
    (act,) = [t for t in r["terms"] if t["name"] == "activations"]
    assert "last decode step 220,049,920 = KV at 2,147 tokens 211,058,688 + " in act["formula"]
    # --seq-len is prompt + new: the same run said with the total and the new tokens
    assert row(PYTHIA, "--seq-len", "2148", "--new-tokens", "100") == r
    assert row(PYTHIA, "--seq-len", "2148", "--prompt-len", "2048") == r


def test_a_long_generation_from_a_short_prompt_peaks_at_its_last_decode_step(fake_hub):
    # p 16, n 8,176 with eager attention (one prefill of 8,192 would charge 16 × 8192² × 6 = 6.4 GB of
    # scores). Last decode step (8,190 cached, the 8,191st written): KV 8,191 × 98,304 = 805,208,064;
    # the token's eager scores 16 × 8,191 × 6 = 786,336 + (2h + 2·a·d)·2 = 8,192 -> 794,528 (> logits
    # 201,216); one layer's old K/V 8,190 × 4,096 = 33,546,240.
    r = row(PYTHIA, "--prompt-len", "16", "--new-tokens", "8176", "--attn", "eager")
    assert (r["kv_cache"], r["activations"]) == (805_208_064, 794_528 + 33_546_240)


def test_one_prefill_of_seq_len_is_what_seq_len_alone_still_means(fake_hub):
    # --seq-len 2148 alone: KV 2148 × 98,304 = 211,156,992 + MLP (2·2148·1024 + 2·2148·4096)·2
    # = 43,991,040 + logits 201,216 (summed, the conservative one-prefill rule)
    r = row(PYTHIA, "--seq-len", "2148")
    assert (r["kv_cache"], r["activations"]) == (211_156_992, 43_991_040 + 201_216)


def test_the_legacy_cache_holds_the_previous_step_and_the_full_prefill_logits(fake_hub):
    # transformers 4.3x, eager, b 1, p 2048, n 100. Weights + the stored buffers: 911,332,096.
    # prefill: KV 201,326,592 + GPT-NeoX's V view pinning the fused qkv output (3h per token where V
    # needs h; K is a fresh tensor): + 201,326,592 = 402,653,184. Layer peak: eager attention
    # 16,777,216 + a·s²·(e + 4) = 16 × 2048² × 6 = 402,653,184 -> 419,430,400 (> logits of every
    # position in fp16, 2048 × 50,304 × 2 = 206,045,184). Prefill: 822,083,584.
    # first decode step: KV at 2,049 = 201,424,896; held: the prefill's pinned cache 402,653,184 and its
    # logits 206,045,184; the token's layer (eager, 16 × 2049 × 6 + 8,192 = 204,896): 810,328,160.
    # The prefill is the peak: 911,332,096 + 822,083,584 = 1,733,415,680 (measured 1,752.47 MB:
    # transformers docs gpt_neox.md, -1.1 %).
    r = row(
        PYTHIA, "--prompt-len", "2048", "--new-tokens", "100", "--attn", "eager", "--generate-cache", "legacy"
    )
    assert r["weights"] == WEIGHTS + BUFFERS
    assert (r["kv_cache"], r["activations"]) == (402_653_184, 419_430_400)
    assert r["total"] == 1_733_415_680
    (act,) = [t for t in r["terms"] if t["name"] == "activations"]
    assert "first decode step 810,328,160 = " in act["formula"]
    assert act["formula"].startswith("peak = prefill of [prefill 822,083,584 = ")


def test_legacy_sdpa_batch_4_peaks_at_the_first_decode_step(fake_hub):
    # b 4, p 2048, sdpa: prefill KV 4 × 402,653,184 = 1,610,612,736 + max(MLP 4 × 41,943,040, logits
    # 4 × 206,045,184 = 824,180,736) = 2,434,793,472. First decode step: KV at 2,049 for 4 sequences
    # 4 × 201,424,896 = 805,699,584 + held 1,610,612,736 + 824,180,736 + one token's layer: max(attention
    # 4 × 8,192, mlp 4 × 20,480 = 81,920, logits in fp16 4 × 100,608 = 402,432) = 3,241,195,488 > prefill.
    r = row(
        PYTHIA, "--batch", "4", "--prompt-len", "2048", "--new-tokens", "100", "--generate-cache", "legacy"
    )
    assert (r["kv_cache"], r["activations"]) == (805_699_584, 1_610_612_736 + 824_180_736 + 402_432)
    assert r["total"] == WEIGHTS + BUFFERS + 805_699_584 + 2_435_195_904


def test_beams_multiply_the_decoder_and_cross_attention_but_the_encoder_runs_once(fake_hub):
    # whisper-small: d_model 768, 12 decoder layers, 12 heads × 64, encoder 1500 frames, FFN 3072.
    # transformers _expand_inputs_for_generation repeat_interleaves encoder_outputs by num_beams, so the
    # cross-attention KV is per beam: b·k × L × 1500 × 2 × 12 × 64 × 2 = 10 × 12 × 1500 × 3072
    # = 552,960,000. Prefill of a 4-token decoder prompt: self KV 10 × 12 × 4 × 3072 = 1,474,560.
    # The encoder ran before the expansion, at b = 2: its MLP (2·b·n·h + 2·b·n·i)·2
    # = (4,608,000 + 18,432,000)·2 = 46,080,000 is the prefill's largest layer (at b·k it would be
    # 230,400,000).
    r = row(WHISPER, "--batch", "2", "--num-beams", "5", "--prompt-len", "4", "--new-tokens", "1")
    (act,) = [t for t in r["terms"] if t["name"] == "activations"]
    assert "prefill 600,514,560 = " in act["formula"]  # 552,960,000 + 1,474,560 + 46,080,000
    assert "encoder 46,080,000" in act["formula"]
    one_beam = row(WHISPER, "--batch", "2", "--prompt-len", "4", "--new-tokens", "1")
    # one beam: cross KV 2 × 12 × 1500 × 3072 = 110,592,000 + self KV at the 4-token prompt
    # 2 × 12 × 4 × 3072 = 294,912; the prefill (with the encoder's 46,080,000) is the peak
    assert (one_beam["kv_cache"], one_beam["activations"]) == (110_592_000 + 294_912, 46_080_000)


def test_inconsistent_lengths_exit_3_with_one_line(fake_hub):
    for args, message in (
        (
            ("--seq-len", "100", "--prompt-len", "50", "--new-tokens", "10"),
            "Error: --seq-len 100 is not --prompt-len 50 + --new-tokens 10 (give two of the three)\n",
        ),
        (
            ("--seq-len", "100", "--prompt-len", "150"),
            "Error: --prompt-len 150 exceeds --seq-len 100 (prompt + new tokens)\n",
        ),
        (
            ("--seq-len", "100", "--new-tokens", "100"),
            "Error: --new-tokens 100 leaves no prompt within --seq-len 100\n",
        ),
        (
            (
                "--num-beams",
                "0",
            ),
            "Error: --num-beams must be at least 1\n",
        ),
        (
            ("--generate-cache", "static"),
            "Error: Invalid value for '--generate-cache': 'static' is not one of 'dynamic', 'legacy'.\n",
        ),
        (
            ("--train", "full", "--new-tokens", "5"),
            "Error: --new-tokens is for inference; with --train it does not apply\n",
        ),
    ):
        result = cli(PYTHIA, *args)
        assert (result.exit_code, result.stderr) == (3, message), args


def test_the_api_takes_the_same_options(fake_hub):
    import hubmem

    est = hubmem.estimate(PYTHIA, prompt_len=2048, new_tokens=100, precisions=["bf16"], overhead=0)
    assert est.row("bf16").total == WEIGHTS + 243_269_632  # as the first test
    assert est.settings.prompt_len == 2048 and est.settings.seq_len == 2148


TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"


def test_one_new_token_is_the_prefill_alone_and_legacy_llama_upcasts_its_logits(fake_hub):
    # max_new_tokens=1: the prefill's last logits give the token; `_sample` stops at p + 1 ids, so no
    # decode step runs and nothing holds a previous step. TinyLlama (llama): L 22, k 4, d 64, V 32,000.
    # KV at p = 8: 8 × 22 × 2 × 4 × 64 × 2 = 180,224. transformers 4.35's LlamaForCausalLM returns
    # `logits.float()`: the bf16 lm_head output and its fp32 copy, 8 × 32,000 × (2 + 4) = 1,536,000, above
    # any one layer at 8 tokens.
    args = (TINYLLAMA, "--prompt-len", "8", "--new-tokens", "1", "--generate-cache", "legacy")
    r = row(*args)
    assert (r["kv_cache"], r["activations"]) == (180_224, 1_536_000)
    (act,) = [t for t in r["terms"] if t["name"] == "activations"]
    assert "decode step" not in act["formula"]
    assert "logits b·k·p·V·(e + 4) = 1·8·32,000·(2 + 4) (every position, + its fp32 copy)" in act["formula"]
    # two new tokens: one decode step (8 cached, the 9th written), holding the prefill's cache and its fp32
    # logits 8 × 32,000 × 4 = 1,024,000 beside its own 9-token cache (9 × 22,528 = 202,752) and logits
    # 32,000 × 6 = 192,000: 180,224 + 1,024,000 + 202,752 + 192,000 = 1,598,976, below the prefill
    # (180,224 + 1,536,000 = 1,716,224), which stays the peak; with n = 2 that step is also the last.
    two = row(*args[:4], "2", *args[5:])
    (act2,) = [t for t in two["terms"] if t["name"] == "activations"]
    assert "first decode step 1,598,976 = KV at 9 tokens 202,752 + " in act2["formula"]
    assert "last decode step" not in act2["formula"]
    assert (two["kv_cache"], two["activations"]) == (180_224, 1_536_000)
