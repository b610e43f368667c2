"""KV cache and recurrent state: what each layer keeps per token or per sequence. Pure integers.

One function per vLLM cache spec (vllm/v1/kv_cache_interface.py), at tensor-parallel size 1:

- full attention (`FullAttentionSpec`): 2 · k · d · e bytes per token per layer (K and V);
- sliding window (`SlidingWindowSpec`): the same per token, at most `window` tokens per layer;
- chunked local attention (`ChunkedLocalAttentionSpec`, Llama 4): at most `attention_chunk_size`
  tokens per layer; the NoPE global layers are full attention;
- MLA (`MLAAttentionSpec`, DeepSeek V2/V3): one latent of (kv_lora_rank + qk_rope_head_dim) · e
  per token per layer, no ×2 (num_kv_heads = 1, head_size = kv_lora_rank + rope); with the
  `fp8_ds_mla` cache 656 bytes per token per layer;
- Mamba / linear attention (`MambaSpec`): a fixed state per sequence and layer, conv state + SSM
  (temporal) state, shapes from `MambaStateShapeCalculator` (see `hubmem.model.variants.ssm_of`);
- cross-attention (`CrossAttentionSpec`, encoder-decoder): the full-attention page size, for the
  encoder's tokens (Whisper: 1500), fixed while the decoder generates.

vLLM rounds tokens up to whole blocks (16 tokens by default), keeps `window - 1 + batched tokens`
for sliding layers during chunked prefill, and pads Mamba pages to the attention page size in
hybrid models; hubmem counts the tokens themselves, as transformers' caches do.
"""

from __future__ import annotations

from hubmem.dtypes import FP8_DS_MLA
from hubmem.errors import InvalidInputError
from hubmem.model.architecture import ATTENTION_KINDS, Architecture

# vLLM `fp8_ds_mla` cache (vllm/v1/attention/backends/mla/flashmla_sparse.py, DeepSeek V3.2 FP8
# layout): 512 float8_e4m3 NoPE values + 4 float32 scales (one per 128 values) + 64 bfloat16 RoPE
# values = 512 + 16 + 128 = 656 bytes per token per layer; `MLAAttentionSpec.real_page_size_bytes`
# returns block_size · 656 for this cache dtype.
FP8_DS_MLA_TOKEN_BYTES = 512 * 1 + 4 * 4 + 64 * 2


def token_bytes(arch: Architecture, e: int, kv_format: str | None = None) -> int:
    """Bytes one token adds to the cache of one attention layer."""
    if kv_format == FP8_DS_MLA:
        if arch.mla is None:
            raise InvalidInputError("--kv-dtype fp8_ds_mla needs an MLA model (DeepSeek V2/V3 kv_lora_rank)")
        return FP8_DS_MLA_TOKEN_BYTES
    if arch.mla is not None:
        return (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * e
    return 2 * arch.num_kv_heads * arch.head_dim * e


def layer_tokens(arch: Architecture, kind: str, seq_len: int) -> int:
    """Tokens one layer keeps at sequence length s."""
    if kind == "sliding":
        return min(seq_len, arch.sliding_window or seq_len)
    if kind == "chunked":  # a token attends within its chunk only: the current chunk is kept
        return min(seq_len, arch.attention_chunk or seq_len)
    if kind == "full":
        return seq_len
    return 0  # SSM / linear-attention layers keep a state, not tokens


def kv_tokens(arch: Architecture, seq_len: int) -> int:
    """Σ over layers of the tokens each layer keeps: s full, min(s, window) sliding, min(s, chunk) chunked."""
    return sum(layer_tokens(arch, kind, seq_len) for kind in arch.layer_types)


def kv_cache_bytes(
    arch: Architecture, *, batch: int, seq_len: int, kv_bytes: int, kv_format: str | None = None
) -> int:
    """Self-attention KV cache = b × Σ_layers tokens(layer) × bytes per token per layer."""
    return batch * kv_tokens(arch, seq_len) * token_bytes(arch, kv_bytes, kv_format)


def kv_bytes_per_token(arch: Architecture, kv_bytes: int, kv_format: str | None = None) -> int:
    """KV bytes one token adds over all attention layers (while below any window or chunk)."""
    attention_layers = sum(1 for kind in arch.layer_types if kind in ATTENTION_KINDS)
    return attention_layers * token_bytes(arch, kv_bytes, kv_format)


def cross_attention_bytes(arch: Architecture, *, batch: int, encoder_len: int, kv_bytes: int) -> int:
    """Cross-attention KV of an encoder-decoder: b × L_decoder × encoder_len × 2 × k × d × e.

    Computed once from the encoder output and fixed while the decoder generates (vLLM
    `CrossAttentionSpec`, sized by `max_num_encoder_input_tokens`; transformers `EncoderDecoderCache`
    holds it as `cross_attention_cache` beside the growing `self_attention_cache`).
    """
    if arch.encoder is None:
        return 0
    return batch * arch.num_layers * encoder_len * 2 * arch.num_kv_heads * arch.head_dim * kv_bytes


def state_bytes_per_sequence(arch: Architecture, conv_bytes: int, temporal_bytes: int) -> int:
    """Recurrent state of one sequence: Σ_SSM layers conv state × e_conv + temporal state × e_ssm.

    vLLM `MambaSpec.page_size_bytes` = Σ prod(shape) × dtype size over (conv, temporal); dtypes from
    `MambaStateDtypeCalculator`: conv = the model dtype (`mamba_cache_dtype` auto), temporal = the
    same unless `mamba_ssm_cache_dtype` is set.
    """
    ssm = arch.ssm
    if ssm is None:
        return 0
    return ssm.num_layers * (ssm.conv_elements * conv_bytes + ssm.temporal_elements * temporal_bytes)
