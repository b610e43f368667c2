"""bitsandbytes 4-bit rows (nf4, fp4) and the back-end names of the generic rows
(hubmem.runtimes.bitsandbytes). Figures by hand from EleutherAI/pythia-410m's layout: per layer the
block Linears query_key_value [3072, 1024], dense [1024, 1024], dense_h_to_4h [4096, 1024],
dense_4h_to_h [1024, 4096] = 12,582,912 weights, × 24 = 301,989,888 of 405,334,016 parameters."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hubmem.cli import main

PYTHIA = "EleutherAI/pythia-410m"
KEPT16 = (405_334_016 - 301_989_888) * 2  # 206,688,256: embeddings, norms, embed_out, biases in 16-bit
BLOCKS = 301_989_888 // 64  # 4,718,592 absmax blocks of 64
PACKED = 301_989_888 // 2  # 150,994,944 bytes of nibbles
LARGEST = 4096 * 1024  # dense_h_to_4h / dense_4h_to_h: 4,194,304 weights


def rows(*args: str) -> dict[str, dict]:
    result = CliRunner().invoke(main, [PYTHIA, "--overhead", "0GB", "--format", "json", *args])
    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return {r["precision"]: r for r in json.loads(result.stdout)["rows"]}


def test_four_bit_weights_keep_one_fp32_absmax_per_64_or_a_nested_8_bit_one(fake_hub):
    plain = rows("--seq-len", "16", "--precision", "nf4", "--precision", "fp4")
    # 4 + 32/64 = 4.5 bits: 150,994,944 + 4,718,592 × 4 = 169,869,312, + the 16-bit rest
    assert plain["nf4"]["weights"] == plain["fp4"]["weights"] == PACKED + BLOCKS * 4 + KEPT16 == 376_557_568
    dq = rows("--seq-len", "16", "--precision", "nf4", "--bnb-double-quant")
    # double quant: 8-bit absmax (4,718,592 B) + an fp32 absmax per 256 of them (18,432 × 4 = 73,728)
    assert dq["nf4"]["weights"] == PACKED + BLOCKS + 18_432 * 4 + KEPT16 == 362_475_520


def test_a_prefill_dequantizes_the_largest_linear_to_16_bit_and_then_to_the_compute_dtype(fake_hub):
    # one prefill of 16 tokens (sdpa, 16-bit activations): MLP phase (2·s·h + 2·s·i)·2 = 327,680 + logits
    # 50,304 × 4 = 201,216; MatMul4Bit dequantizes dense_h_to_4h: 4,194,304 × (2 + 4) with the fp32
    # default compute dtype = 25,165,824, × 2 = 8,388,608 with bf16
    fp32 = rows("--seq-len", "16", "--precision", "nf4")["nf4"]
    assert fp32["activations"] == 327_680 + 201_216 + LARGEST * 6
    bf16 = rows("--seq-len", "16", "--precision", "nf4", "--bnb-compute-dtype", "bf16")["nf4"]
    assert bf16["activations"] == 327_680 + 201_216 + LARGEST * 2
    (term,) = [t for t in fp32["terms"] if t["name"] == "activations"]
    assert "the largest Linear dequantized by MatMul4Bit: 4,194,304 × (2 + 4) = 25,165,824" in term["formula"]
    # int4 (GPTQ/AWQ) rows dequantize nothing here
    assert rows("--seq-len", "16", "--precision", "int4")["int4"]["activations"] == 327_680 + 201_216


def test_one_token_of_one_sequence_takes_gemv_and_dequantizes_nothing(fake_hub):
    # decode steps at batch 1 (A.numel() == A.shape[-1]): no dequantized weight; at batch 2 there is one
    one = rows("--prompt-len", "16", "--new-tokens", "4", "--precision", "nf4")["nf4"]
    (term,) = [t for t in one["terms"] if t["name"] == "activations"]
    prefill, decode = term["formula"].split("; last decode step ")
    assert "dequantized 4-bit Linear 25,165,824" in prefill and "dequantized" not in decode
    two = rows("--batch", "2", "--prompt-len", "16", "--new-tokens", "4", "--precision", "nf4")["nf4"]
    (term,) = [t for t in two["terms"] if t["name"] == "activations"]
    assert "+ dequantized 4-bit Linear 25,165,824" in term["formula"].split("; last decode step ")[1]


def test_bnb_int8_names_the_generic_int8_row(fake_hub):
    named = rows("--seq-len", "16", "--precision", "bnb-int8")
    generic = rows("--seq-len", "16", "--precision", "int8")
    assert named == generic  # bnb-int8 = int8 (LLM.int8); gptq and awq are rows of their own (test_gptq)


def test_bad_bnb_options_exit_3():
    result = CliRunner().invoke(main, [PYTHIA, "--bnb-compute-dtype", "fp8"])
    assert result.exit_code == 3
    assert (
        result.stderr
        == "Error: Invalid value for '--bnb-compute-dtype': 'fp8' is not one of 'fp32', 'bf16', 'fp16'.\n"
    )


def test_lightning_s_bitsandbytes_precision_quantizes_lm_head_too(fake_hub):
    # --bnb-quantize-lm-head (litgpt): embed_out [50304, 1024] = 51,511,296 weights join the 4-bit ones:
    # nibbles (301,989,888 + 51,511,296) / 2 = 176,750,592; absmax (4,718,592 + 804,864) × 4 = 22,093,824;
    # 16-bit rest 206,688,256 − 51,511,296 × 2 = 103,665,664. It is now the largest Linear a prefill
    # dequantizes: 51,511,296 × (2 + 4) = 309,067,776 (16 tokens: MLP 327,680 + logits 201,216 besides).
    r = rows("--seq-len", "16", "--precision", "nf4", "--bnb-quantize-lm-head")["nf4"]
    assert r["weights"] == 176_750_592 + 22_093_824 + 103_665_664 == 302_510_080
    assert r["activations"] == 327_680 + 201_216 + 309_067_776


def test_the_api_wants_flags_as_booleans(fake_hub):
    import pytest

    import hubmem
    from hubmem.errors import InvalidInputError

    with pytest.raises(
        InvalidInputError, match=r"^--bnb-quantize-lm-head is a flag \(True or False\), not 'yes'$"
    ):
        hubmem.estimate(PYTHIA, bnb_quantize_lm_head="yes")
