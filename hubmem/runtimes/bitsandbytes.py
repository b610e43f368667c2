"""bitsandbytes through transformers (`BitsAndBytesConfig`): what 4-bit weights cost, and the
dequantized weight each prefill matmul allocates. Pure rules, no torch.

Storage (bitsandbytes functional.py `quantize_4bit`, blocksize 64 as `Params4bit` uses by default):
every block Linear weight is packed 2 per byte (`quant_storage` uint8) with one fp32 absmax per 64
flattened weights: 4 + 32/64 = 4.5 bits per weight. Double quant (`bnb_4bit_use_double_quant`,
QLoRA paper §3, `compress_statistics`): the absmax are themselves quantized to 8 bits in blocks of 256
with an fp32 absmax each: 4 + 8/64 + 32/(64·256) = 4.127 bits. NF4 and FP4 (`bnb_4bit_quant_type`)
store the same bytes; they differ in the code book only. transformers keeps in 16-bit what its
`get_keys_to_not_convert` (integrations/bitsandbytes.py) skips: the output embeddings (`lm_head`) and
every module that is not an nn.Linear (embeddings, norms), plus `llm_int8_skip_modules`; a 4-bit load
without `dtype` sets the rest to float16.

Runtime (bitsandbytes autograd/_functions.py `matmul_4bit`): an input of one row (`A.numel() ==
A.shape[-1]`: one token of one sequence) takes the fused `gemv_4bit` kernel, which dequantizes
nothing; any other input takes `MatMul4Bit`, whose forward is `linear(A, dequantize_4bit(B,
state).to(A.dtype).t())`: the whole weight dequantized to its stored 16-bit dtype, then, when the
compute dtype differs (`Linear4bit.forward` casts the input to `compute_dtype`), copied to it: the
largest Linear × (2 + compute bytes) live at once, or × 2 when the compute dtype is 16-bit.
`bnb_4bit_compute_dtype` defaults to float32 (transformers utils/quantization_config.py
BitsAndBytesConfig: `if bnb_4bit_compute_dtype is None: self.bnb_4bit_compute_dtype = torch.float32`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hubmem.choices import BNB_COMPUTE_DTYPES  # noqa: F401  (fp32 | bf16 | fp16)

if TYPE_CHECKING:
    from hubmem.model.tensors import CheckpointCounts

BNB_4BIT = ("nf4", "fp4")
BLOCKSIZE = 64  # Params4bit blocksize (absmax per 64 weights)
NESTED_BLOCKSIZE = 256  # double quant: 8-bit absmax in blocks of 256, one fp32 absmax each
COMPUTE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}


def absmax_blocks(counts: CheckpointCounts) -> int:
    """Blocks of 64 over the block Linear weights (estimated counts without shapes: ceil(params/64))."""
    return counts.linear_blocks_64 or -(-counts.linear_params // BLOCKSIZE)


def lm_head_params(counts: CheckpointCounts) -> int:
    """The output projection's own weights (0 when tied to the embeddings: nothing of its own to quantize)."""
    return counts.by_component.get("lm_head", 0)


def four_bit_bytes(counts: CheckpointCounts, double_quant: bool, lm_head: bool = False) -> int:
    """Bytes of the quantized block Linear weights (and with `lm_head` the output projection, as
    Lightning's BitsandbytesPrecision, used by litgpt, replaces every nn.Linear): packed nibbles + their
    absmax (see the docstring)."""
    extra = lm_head_params(counts) if lm_head else 0
    blocks = absmax_blocks(counts) + -(-extra // BLOCKSIZE)
    packed = (counts.linear_params + extra + 1) // 2
    if not double_quant:
        return packed + blocks * 4
    return packed + blocks + -(-blocks // NESTED_BLOCKSIZE) * 4


def dequant_bytes(counts: CheckpointCounts, compute_dtype: str, lm_head: bool = False) -> int:
    """The largest quantized Linear dequantized for one MatMul4Bit forward (16-bit, then the compute copy)."""
    per_element = 2 + (COMPUTE_BYTES[compute_dtype] if COMPUTE_BYTES[compute_dtype] != 2 else 0)
    largest = max(counts.linear_largest, lm_head_params(counts) if lm_head else 0)
    return largest * per_element


def dequant_applies(rows: int) -> bool:
    """MatMul4Bit (dequantize) runs for any input of more than one row; one row takes gemv_4bit."""
    return rows > 1
