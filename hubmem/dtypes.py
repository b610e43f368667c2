"""Dtypes: what a safetensors checkpoint stores, and the dtype names hubmem takes for compute, KV
cache and recurrent state.

A leaf module: it imports the standard library and `hubmem.errors` only, so that reading headers
(`hubmem.hub.fetch`) does not pull in the model code.
"""

from __future__ import annotations

from hubmem.errors import UnknownDtypeError

# Bits per element of every dtype the safetensors format defines
# (safetensors/safetensors/src/tensor.rs `Dtype`, `Dtype::bitsize`).
SAFETENSORS_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}


def safetensors_bits(dtype: str) -> int:
    """Bits per element of a safetensors dtype; `UnknownDtypeError` for one the format does not define."""
    try:
        return SAFETENSORS_BITS[dtype]
    except KeyError:
        known = ", ".join(sorted(SAFETENSORS_BITS))
        raise UnknownDtypeError(f"unknown safetensors dtype '{dtype}' (known: {known})") from None


# Bytes per element of activations / KV cache / SSM state for each dtype name hubmem accepts
# (--kv-dtype, --state-dtype; the torch spellings too).
DTYPE_BYTES: dict[str, int] = {
    "fp32": 4,
    "float32": 4,
    "bf16": 2,
    "bfloat16": 2,
    "fp16": 2,
    "float16": 2,
    "fp8": 1,
    "int8": 1,
}

# Other spellings of a precision row (`hubmem.memory.inference.PRECISIONS` keys): fp16 weights take
# the bytes of bf16 ones, so both are the one "bf16" row.
PRECISION_ALIASES: dict[str, str] = {
    "fp16": "bf16",
    "float16": "bf16",
    "bfloat16": "bf16",
    "float32": "fp32",
    "as-stored": "stored",
    # the back-ends the generic rows stand for (README "What each number assumes")
    "bnb-int8": "int8",  # bitsandbytes LLM.int8 (load_in_8bit)
}

# vLLM's `fp8_ds_mla` KV cache: a layout of its own, not plain elements (see `hubmem.memory.kv`).
FP8_DS_MLA = "fp8_ds_mla"


def compute_dtype_bytes(precision: str) -> int:
    """Activations are computed in fp32 for the fp32 row and in 16-bit for every other row."""
    return 4 if precision == "fp32" else 2
