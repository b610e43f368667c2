"""The weights one GPU loads under tensor parallelism (TP) and pipeline parallelism (PP), as vLLM splits
them. Pure: the checkpoint's tensor names, dtypes and shapes in, bytes out.

Rules (vLLM model_executor/layers, the classes every decoder model is built from; read at
vllm-project/vllm commit 35d5cda1, the v0.12 line):

- `ColumnParallelLinear` / `RowParallelLinear` (q/o/gate/up/down projections, fused MoE experts):
  1/TP of the matrix on each rank. Fused MoE experts are split the same way (their intermediate
  dimension under TP, whole experts under expert parallelism): 1/TP of the bytes either way.
- `QKVParallelLinear`: the query heads are split; K/V heads too while TP ≤ k, and *replicated* once
  TP > k: each rank keeps max(1, k / TP) KV heads (`num_kv_head_replicas = TP / k`).
- `VocabParallelEmbedding` / `ParallelLMHead`: the vocabulary padded to a multiple of 64
  (`DEFAULT_VOCAB_PADDING_SIZE`, `pad_vocab_size`) and split in TP row ranges.
- `ReplicatedLinear` and norms: whole on every rank — RMSNorm / LayerNorm weights, MoE routers
  (`mlp.gate`, `e_score_correction_bias`), DeepSeek MLA's down-projections `q_a_proj` and
  `kv_a_proj_with_mqa` (and their `*_layernorm`).
- PP (`get_pp_indices`, distributed/utils.py): L // PP layers per stage, the remainder one more each
  on the stages before the last; the embedding on the first stage, the final norm and lm_head on the
  last (a tied lm_head is a copy of the embedding there).
- MTP modules (DeepSeek `layers.{L}`, Qwen3-Next `mtp.*`) are not loaded without speculative decoding
  (DeepseekV3ForCausalLM.load_weights skips them).
- 16/32-bit float tensors load at the serving dtype; quantized tensors and their scales as stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hubmem.dtypes import safetensors_bits
from hubmem.model.architecture import Architecture
from hubmem.model.tensors import _tensor_groups, component_of, is_quant_metadata, quant_format_from_config
from hubmem.units import round_up

VOCAB_PADDING = 64  # vllm/model_executor/layers/vocab_parallel_embedding.py DEFAULT_VOCAB_PADDING_SIZE

_FLOAT = ("F32", "F16", "BF16")
_VOCAB_RE = re.compile(
    r"(embed_tokens|(^|\.)wte\.|word_embeddings|tok_embeddings|lm_head|embed_out|(^|\.)output\.weight)"
)
_LM_HEAD_RE = re.compile(r"(lm_head|embed_out|(^|\.)output\.weight)")
_REPLICATED_RE = re.compile(
    r"(\.gate\.weight$|\.router\.|e_score_correction_bias|q_a_proj|kv_a_proj_with_mqa|_layernorm\.|"
    r"(^|\.)wpe\.|embed_positions)"
)
_KV_RE = re.compile(r"\.(k_proj|v_proj)\.")
_QKV_RE = re.compile(r"\.(qkv_proj|query_key_value|c_attn|Wqkv|W_pack)\.")
_LAYER_RE = re.compile(r"(^|\.)(layers|h|blocks|layer)\.#\.")
_MTP_RE = re.compile(r"^mtp\.")


@dataclass(frozen=True)
class RankWeights:
    """The bytes of weights one GPU of one pipeline stage holds."""

    stage: int
    layers: int  # decoder layers on this stage
    bytes: int
    replicated: int  # of which whole on every TP rank (norms, routers, MLA down-projections)


def pp_layers(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage, as vLLM `get_pp_indices`: L // PP each, the remainder one more each on
    the stages before the last (partitions[-i] += 1 for i in 2 .. remainder + 1)."""
    base = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        base[-i] += 1
    return base


def rank_weights(
    headers: dict[str, dict[str, tuple[str, tuple[int, ...]]]],
    config: dict,
    arch: Architecture,
    *,
    tp: int,
    pp: int,
    float_bytes: int,
) -> list[RankWeights]:
    """Per pipeline stage: the weights one of its TP ranks loads (see the module docstring)."""
    quant = quant_format_from_config(config)
    groups, _ = _tensor_groups(headers, config, quant)
    k = max(arch.num_kv_heads, 1)
    kv_per_rank = max(1, k // tp)
    a = max(arch.num_heads, 1)
    layer_bytes = layer_replicated = first = last = first_rep = last_rep = 0
    embed_bytes = 0
    for (template, dtype, shape, _unpack, in_mtp), n in groups.items():
        if in_mtp or _MTP_RE.search(template):
            continue
        component = component_of(template)
        if component == "mtp" or _is_buffer(template, shape):
            continue
        bits = safetensors_bits(dtype)
        if dtype in _FLOAT and not is_quant_metadata(template):
            bits = float_bytes * 8
        elements = _prod(shape) * n
        total = elements * bits // 8
        replicated = False
        if component == "norms" or _REPLICATED_RE.search(template):
            each, replicated = total, True
        elif (
            _VOCAB_RE.search(template)
            and shape
            and shape[0] in (arch.vocab_size, round_up(arch.vocab_size, 1))
        ):
            rows = round_up(shape[0], VOCAB_PADDING) // tp
            each = rows * (elements // max(shape[0], 1)) * bits // 8
        elif _KV_RE.search(template) and tp > 1:
            each = -(-total * kv_per_rank // k)
        elif _QKV_RE.search(template) and tp > 1 and arch.mla is None:
            d = arch.head_dim
            full = (a + 2 * k) * d
            mine = (a // tp + 2 * kv_per_rank) * d
            each = -(-total * mine // full) if full else -(-total // tp)
        else:
            each = -(-total // tp)
        if _LAYER_RE.search(template):
            layer_bytes += each
            layer_replicated += each if replicated else 0
        elif _LM_HEAD_RE.search(template):
            last += each
            last_rep += each if replicated else 0
        elif component == "embeddings" and _VOCAB_RE.search(template):
            first += each
            embed_bytes = each
        elif component == "norms":
            last += each  # the final norm sits on the last stage
            last_rep += each
        else:  # vision / audio towers, projectors, anything outside the decoder stack: the first stage
            first += each
            first_rep += each if replicated else 0
    if arch.tie_word_embeddings and pp > 1 and not _has_lm_head(groups):
        last += embed_bytes  # the last stage holds its own copy of the tied lm_head
    stages = pp_layers(arch.num_layers, pp)
    out = []
    for s, n_layers in enumerate(stages):
        share = layer_bytes * n_layers // arch.num_layers
        rep = layer_replicated * n_layers // arch.num_layers
        extra = (first if s == 0 else 0) + (last if s == pp - 1 else 0)
        extra_rep = (first_rep if s == 0 else 0) + (last_rep if s == pp - 1 else 0)
        out.append(RankWeights(s, n_layers, share + extra, rep + extra_rep))
    return out


def rotary_cache_bytes(arch: Architecture, config: dict, float_bytes: int) -> int:
    """vLLM's RoPE `cos_sin_cache`: [max_position, rotary_dim] in the model dtype, one per model (layers
    share it through `get_rope`'s cache; model_executor/layers/rotary_embedding). rotary_dim = head_dim
    × partial_rotary_factor; MLA ropes qk_rope_head_dim only. Models with learned positions have none."""
    if arch.learned_positions or not arch.max_context or not arch.num_heads:
        return 0
    text = config.get("text_config") or config
    factor = text.get("partial_rotary_factor", 1.0)
    factor = factor if isinstance(factor, int | float) and 0 < factor <= 1 else 1.0
    dim = arch.mla.qk_rope_head_dim if arch.mla is not None else int(arch.head_dim * factor)
    return arch.max_context * dim * float_bytes


def _has_lm_head(groups: dict) -> bool:
    return any(_LM_HEAD_RE.search(key[0]) for key in groups)


def _is_buffer(template: str, shape: tuple[int, ...]) -> bool:
    from hubmem.model.tensors import is_buffer

    return is_buffer(template, tuple(shape))


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for x in shape:
        out *= x
    return out
