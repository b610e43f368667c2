"""Pre-quantized checkpoints: exact bytes as stored, true parameter counts unpacked, raw Hub counts.

No verbatim config.json of a GPTQ/AWQ/bitsandbytes/compressed-tensors/NVFP4 repo was at hand, so each
checkpoint here is derived, in `quantize`, from a real layout (TinyLlama-1.1B-Chat-v1.0: meta-device
transformers layout, Hub total 1,100,048,384 BF16) and the storage format the quantizer's own code
writes for every block Linear [out, in] (cited per format). Embeddings, norms and lm_head stay 16-bit,
as every one of these tools leaves them by default.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from click.testing import CliRunner

from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture
from hubmem.model.tensors import count_tensors

from .helpers import config, layout

BASE = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
PARAMETERS = 1_100_048_384  # the Hub's published total of the unquantized checkpoint
LINEAR = 22 * (2 * 2048 * 2048 + 2 * 256 * 2048 + 3 * 2048 * 5632)  # q, o; k, v; gate, up, down
QUANT_STATE_BYTES = 156  # length of one packed bitsandbytes quant_state JSON blob (any length: metadata)


def _gptq(name, out, inp):  # AutoGPTQ / GPTQModel QuantLinear (bits 4, group 128, sym)
    return [
        (f"{name}.qweight", "I32", [inp // 8, out]),
        (f"{name}.qzeros", "I32", [inp // 128, out // 8]),
        (f"{name}.scales", "F16", [inp // 128, out]),
        (f"{name}.g_idx", "I32", [inp]),
    ]


def _awq(name, out, inp):  # AutoAWQ WQLinear_GEMM (w_bit 4, q_group_size 128, zero_point)
    return [
        (f"{name}.qweight", "I32", [inp, out // 8]),
        (f"{name}.qzeros", "I32", [inp // 128, out // 8]),
        (f"{name}.scales", "F16", [inp // 128, out]),
    ]


def _ct_w4a16(name, out, inp):  # compressed-tensors pack-quantized (pack_to_int32), group 128, symmetric
    return [
        (f"{name}.weight_packed", "I32", [out, inp // 8]),
        (f"{name}.weight_scale", "BF16", [out, inp // 128]),
        (f"{name}.weight_shape", "I64", [2]),
    ]


def _bnb_nf4(name, out, inp):  # bitsandbytes Params4bit, blocksize 64, double quant (QLoRA §3)
    n = out * inp
    return [
        (f"{name}.weight", "U8", [n // 2, 1]),
        (f"{name}.weight.absmax", "U8", [n // 64]),
        (f"{name}.weight.nested_absmax", "F32", [n // 64 // 256]),
        (f"{name}.weight.nested_quant_map", "F32", [256]),
        (f"{name}.weight.quant_map", "F32", [16]),
        (f"{name}.weight.quant_state.bitsandbytes__nf4", "U8", [QUANT_STATE_BYTES]),
    ]


def _bnb_int8(name, out, inp):  # bitsandbytes Int8Params (LLM.int8): int8 weight + fp32 row scale SCB
    return [(f"{name}.weight", "I8", [out, inp]), (f"{name}.SCB", "F32", [out])]


def _nvfp4_modelopt(name, out, inp):  # TensorRT Model Optimizer NVFP4 export: e2m1 pairs, FP8 scale per 16
    return [
        (f"{name}.weight", "U8", [out, inp // 2]),
        (f"{name}.weight_scale", "F8_E4M3", [out, inp // 16]),
        (f"{name}.weight_scale_2", "F32", []),
        (f"{name}.input_scale", "F32", []),
    ]


def _nvfp4_ct(name, out, inp):  # compressed-tensors nvfp4-pack-quantized
    return [
        (f"{name}.weight_packed", "U8", [out, inp // 2]),
        (f"{name}.weight_scale", "F8_E4M3", [out, inp // 16]),
        (f"{name}.weight_global_scale", "F32", [1]),
        (f"{name}.input_global_scale", "F32", [1]),
    ]


FORMATS = {
    "gptq": (_gptq, "F16", {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}),
    "awq": (_awq, "F16", {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}),
    "ct-w4a16": (_ct_w4a16, "BF16", {
        "quant_method": "compressed-tensors", "format": "pack-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int",
                                                                         "strategy": "group", "group_size": 128}}},
    }),
    "bnb-nf4": (_bnb_nf4, "BF16", {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                   "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}),
    "bnb-int8": (_bnb_int8, "BF16", {"quant_method": "bitsandbytes", "load_in_8bit": True}),
    "nvfp4-modelopt": (_nvfp4_modelopt, "BF16", {"quant_method": "modelopt", "quant_algo": "NVFP4"}),
    "nvfp4-ct": (_nvfp4_ct, "BF16", {"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized"}),
}  # fmt: skip

BYTES = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4, "I64": 8, "U8": 1, "I8": 1, "F8_E4M3": 1}


def quantize(fmt: str) -> tuple[dict, dict]:
    """(headers, config) of TinyLlama's checkpoint stored in `fmt`."""
    make, dtype16, qc = FORMATS[fmt]
    tensors = {}
    for spec in layout(BASE)["files"].values():
        for name, _, shape in spec["tensors"]:
            base = name.removesuffix(".weight")
            if len(shape) == 2 and (".self_attn." in name or ".mlp." in name):
                tensors.update({n: (d, tuple(s)) for n, d, s in make(base, *shape)})
            else:
                tensors[name] = (dtype16, tuple(shape))
    return {"model.safetensors": tensors}, {**config(BASE), "quantization_config": copy.deepcopy(qc)}


def by_dtype(headers: dict) -> tuple[dict[str, int], int]:
    """Elements per dtype and total bytes, summed straight from the headers built above."""
    elements: dict[str, int] = {}
    nbytes = 0
    for dtype, shape in headers["model.safetensors"].values():
        n = math.prod(shape)
        elements[dtype] = elements.get(dtype, 0) + n
        nbytes += n * BYTES[dtype]
    return elements, nbytes


@pytest.mark.parametrize("fmt", FORMATS)
def test_packed_weights_unpack_to_the_true_parameter_count(fmt):
    headers, cfg = quantize(fmt)
    counts = count_tensors(headers, cfg)
    assert counts.parameters == PARAMETERS
    assert counts.linear_params == LINEAR
    elements, nbytes = by_dtype(headers)
    # raw header elements; hubmem assumes the Hub counts these words and bytes as stored (only MXFP4
    # `_blocks` are known to be counted otherwise; no published figure of such a repo was at hand)
    assert counts.stored_by_dtype == elements == counts.hub_by_dtype
    assert counts.stored_bytes == nbytes  # as stored: every tensor, byte for byte


@pytest.mark.parametrize(
    ("fmt", "linear_bytes", "metadata_bytes"),
    [
        # 4 bits per weight; per group of 128 inputs an fp16 scale and a 4-bit zero per output; g_idx int32
        ("gptq", LINEAR // 2, LINEAR // 128 * 2 + LINEAR // 128 // 2 + 22 * 4 * (4 * 2048 + 2 * 2048 + 5632)),
        ("awq", LINEAR // 2, LINEAR // 128 * 2 + LINEAR // 128 // 2),
        ("ct-w4a16", LINEAR // 2, LINEAR // 128 * 2 + 22 * 7 * 2 * 8),  # + weight_shape I64 [2] per Linear
        # nf4: 4 bits; absmax as uint8 per 64, fp32 per 256 of those, two code books and the state blob
        ("bnb-nf4", LINEAR // 2, LINEAR // 64 + LINEAR // 64 // 256 * 4 + 22 * 7 * (256 * 4 + 16 * 4 + QUANT_STATE_BYTES)),
        ("bnb-int8", LINEAR, 22 * 4 * (2 * 2048 + 2 * 256 + 2 * 5632 + 2048)),  # SCB: fp32 per output row
        ("nvfp4-modelopt", LINEAR // 2, LINEAR // 16 + 22 * 7 * 8),  # FP8 scale per 16; two fp32 scalars
        ("nvfp4-ct", LINEAR // 2, LINEAR // 16 + 22 * 7 * 8),
    ],
)  # fmt: skip
def test_stored_bytes_split_into_weights_and_quantization_metadata(fmt, linear_bytes, metadata_bytes):
    headers, cfg = quantize(fmt)
    counts = count_tensors(headers, cfg)
    kept16 = (PARAMETERS - LINEAR) * 2  # embeddings, lm_head, norms
    assert counts.parameter_bytes == linear_bytes + kept16
    assert counts.quant_metadata_bytes == metadata_bytes


def test_gptq_bits_come_from_quantization_config():
    headers, cfg = quantize("gptq")
    cfg["quantization_config"]["bits"] = 8  # same words, read as 8-bit: 4 values per int32
    assert count_tensors(headers, cfg).parameters == PARAMETERS - LINEAR // 2


def test_nvfp4_is_recognised_without_a_quantization_config():
    """ModelOpt repos may keep the format in hf_quant_config.json only: the FP8 scale beside a U8 weight
    says it is NVFP4."""
    headers, _ = quantize("nvfp4-modelopt")
    assert count_tensors(headers, config(BASE)).parameters == PARAMETERS


def test_kv_cache_of_a_4bit_checkpoint_stays_16_bit(fake_hub):
    headers, cfg = quantize("gptq")
    files = {
        "model.safetensors": {
            "tensors": [[n, d, list(s)] for n, (d, s) in headers["model.safetensors"].items()]
        }
    }
    fake_hub.add_repo("acme/tinyllama-gptq", layout={"files": files}, config=cfg)
    from hubmem.cli import main

    result = CliRunner().invoke(main, ["acme/tinyllama-gptq", "--format", "json", "--seq-len", "2048"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {r["precision"]: r for r in data["rows"]}
    _, nbytes = by_dtype(headers)
    assert rows["stored"]["weights"] == nbytes
    kv16 = 22 * 2048 * 2 * 4 * 64 * 2  # L × s × (K, V) × 4 KV heads × head dim 64 × 2 bytes
    assert rows["stored"]["kv_cache"] == rows["int4"]["kv_cache"] == rows["bf16"]["kv_cache"] == kv16
    arch = parse_architecture(cfg)
    assert memory.kv_cache_bytes(arch, batch=1, seq_len=2048, kv_bytes=1) == kv16 // 2  # --kv-dtype fp8


def test_real_nvfp4_moe_checkpoint_unpacks_to_the_base_models_parameters(fake_hub):
    """nvidia/Qwen3-30B-A3B-NVFP4 (fixture: verbatim config.json and hf_quant_config.json, layout derived
    from the modelopt export format; no quantization_config in config.json)."""
    from hubmem.cli import main

    result = CliRunner().invoke(main, ["nvidia/Qwen3-30B-A3B-NVFP4", "--format", "json", "--seq-len", "4096"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    p = data["parameters"]
    assert p["parameters"] == 30_532_122_624  # Qwen/Qwen3-30B-A3B's published total: nothing dropped
    assert p["active"] == 3_353_032_704
    h, L, E, i = 2048, 48, 128, 768
    attention = 2 * 4096 * h + 2 * 512 * h
    linear = L * (attention + E * 3 * h * i)  # every Linear except the routers (exclude_modules)
    scalars = L * (4 + 3 * E) * 2 + L * 2  # weight_scale_2 + input_scale per Linear; k_scale, v_scale
    assert p["parameter_bytes"] == linear // 2 + (30_532_122_624 - linear) * 2
    assert p["quant_metadata_bytes"] == linear // 16 + scalars * 4
    rows = {r["precision"]: r for r in data["rows"]}
    assert rows["stored"]["weights"] == p["stored_bytes"] == p["parameter_bytes"] + p["quant_metadata_bytes"]
    # hf_quant_config.json names an FP8 KV cache, but the default stays at the compute dtype (--kv-dtype fp8)
    assert rows["stored"]["kv_cache"] == L * 4096 * 2 * 4 * 128 * 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_requantization_rows_see_the_unpacked_shapes(fmt):
    """fp8 / int8 / int4 rows of a quantized checkpoint are computed as for the 16-bit original: the
    Linear shapes behind the packing (GPTQ [in/8, out], AWQ [in, out/8], bitsandbytes [out·in/2, 1])."""
    headers, cfg = quantize(fmt)
    counts = count_tensors(headers, cfg)
    base = count_tensors(
        {f: {n: (d, tuple(s)) for n, d, s in spec["tensors"]} for f, spec in layout(BASE)["files"].items()},
        config(BASE),
    )
    for precision in ("fp32", "bf16", "fp8", "int4"):
        assert memory.weight_bytes(counts, precision) == memory.weight_bytes(base, precision), precision
    int8 = memory.weight_bytes(counts, "int8") - memory.weight_bytes(base, "int8")
    # bitsandbytes 4-bit: down_proj read as [5632, 2048] instead of [2048, 5632]: 3,584 extra SCB rows a layer
    assert int8 == (22 * (5632 - 2048) * 4 if fmt == "bnb-nf4" else 0)
