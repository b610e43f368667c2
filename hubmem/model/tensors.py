"""Tensors from safetensors headers -> exact element counts, parameters, components.

Input is plain data: ``{filename: {tensor_name: (dtype, shape)}}`` as read from the headers.
Nothing here touches the network. Three different totals come out, on purpose:

- ``stored_by_dtype``: elements per safetensors dtype over *every* tensor, exactly what the
  Hub publishes as ``safetensors.parameters`` / ``total`` (it counts GPT-2's ``attn.bias``
  masks and packed int4 words as they are stored);
- ``parameters``: the model's true parameter count: non-parameter buffers left out, packed
  quantized words unpacked, quantization metadata (scales, zeros, g_idx) left out;
- ``buffers``: checkpoint tensors that are not parameters (causal masks, rotary ``inv_freq``).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

from hubmem.acyclic import collector_paused
from hubmem.dtypes import safetensors_bits

# Non-parameter buffers that some checkpoints store. GPT-2 (`h.N.attn.bias`, a 4-D causal mask),
# GPT-NeoX/Pythia (`attention.bias`, `attention.masked_bias`), rotary `inv_freq` (Llama-2 era
# checkpoints), BERT-style `position_ids`. transformers >= 5 ignores them on load
# (e.g. GPT2PreTrainedModel._keys_to_ignore_on_load_unexpected = ["attn.bias", ...]).
# BART's `final_logits_bias` is a registered buffer (BartForConditionalGeneration.register_buffer).
_BUFFER_RE = re.compile(r"(^|\.)(inv_freq|masked_bias|position_ids|_float_tensor|final_logits_bias)$")
_MASK_RE = re.compile(r"(^|\.)(attn|attention|self_attention)\.bias$")

# Quantization side tensors: bytes in the checkpoint, not parameters.
# GPTQ/AWQ (`scales`, `qzeros`, `g_idx`), FP8 (`weight_scale_inv` DeepSeek-V3, `weight_scale`,
# `input_scale`, `weight_scale_2` compressed-tensors/ModelOpt; compressed-tensors also stores each packed
# weight's logical `weight_shape` I64 [2]), bitsandbytes (`absmax`, `quant_map`, `SCB`,
# `quant_state.*`), MXFP4 (`*_scales` beside `*_blocks`, gpt-oss).
_QUANT_META_RE = re.compile(
    r"(\.(scales|qzeros|g_idx|weight_scale_inv|weight_scale|weight_scale_2|input_scale|weight_zero_point|"
    r"weight_global_scale|input_global_scale|weight_shape|weight_g_idx|absmax|quant_map|nested_absmax|"
    r"nested_quant_map|SCB|weight_format|k_scale|v_scale)$)|(quant_state\.)|(_scales$)"
)

_COMPONENT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "vision",
        re.compile(
            r"(vision_tower|vision_model|visual\.|vision_encoder|multi_modal_projector|mm_projector|image_newline)"
        ),
    ),
    ("audio", re.compile(r"(audio_tower|audio_model|audio_encoder)")),
    ("norms", re.compile(r"(norm|ln_\d|ln_f|ln\d|layernorm|layer_norm|LayerNorm)[^.]*\.(weight|bias)$")),
    ("lm_head", re.compile(r"(^|\.)(lm_head|embed_out|output)\.(weight|bias)$")),
    (
        "embeddings",
        re.compile(
            r"(embed_tokens|(^|\.)wte\.|(^|\.)wpe\.|word_embeddings|embed_positions|position_embeddings|"
            r"token_type_embeddings|tok_embeddings|(^|\.)shared\.weight|embed_in\.|relative_attention_bias|"
            r"(^|\.)embeddings\.weight$)"
        ),
    ),
    # Mamba / Mamba2 mixers (`mixer.`, Jamba and Falcon-H1 `mamba.`) and Qwen3-Next gated DeltaNet
    # (`linear_attn.`): recurrent layers, not attention. Nemotron-H names every block `mixer`: its
    # attention (q/k/v/o_proj) and MLP (up/down_proj) blocks fall through to the rules below.
    ("ssm", re.compile(r"(\.mixer\.(?!(q|k|v|o|up|down|gate)_proj\.)|\.mamba\.|\.linear_attn\.)")),
    (
        "attention",
        re.compile(
            r"(attn|attention|self_attention|q_proj|k_proj|v_proj|o_proj|query_key_value|SelfAttention|EncDecAttention)"
        ),
    ),
    (
        "mlp",
        re.compile(
            r"(mlp|feed_forward|ffn|experts|gate_proj|up_proj|down_proj|fc1|fc2|intermediate|\.output\.dense|c_fc|"
            r"DenseReluDense)"
        ),
    ),
)

COMPONENTS = (
    "embeddings",
    "attention",
    "ssm",
    "mlp",
    "norms",
    "lm_head",
    "vision",
    "audio",
    "mtp",
    "other",
)

# Routed experts: one tensor per expert (`mlp.experts.7.down_proj.weight` Mixtral/Qwen/DeepSeek,
# also their GPTQ/AWQ `qweight`s) or fused [E, ...] tensors (`mlp.experts.gate_up_proj` Llama 4 /
# transformers >= 5, gpt-oss `experts.gate_up_proj_blocks` and per-expert `_bias`). Shared experts
# (`shared_expert.`, `shared_experts.`) and routers (`gate.weight`, `router`) are never routed.
_ROUTED_EXPERT_RE = re.compile(r"\.experts\.")
# Multi-token-prediction modules: Qwen3-Next `mtp.*`; DeepSeek-V3 stores its MTP layer as
# `model.layers.{num_hidden_layers + j}.*` (num_nextn_predict_layers), found in `count_tensors`.
_MTP_RE = re.compile(r"^mtp\.")
_LAYER_INDEX_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


@functools.lru_cache(maxsize=1 << 16)  # names repeat across layers' and models' checkpoints (audits)
def component_of(name: str) -> str:
    """Which part of the model a tensor belongs to, from its name alone."""
    for component, pattern in _COMPONENT_RULES:
        if pattern.search(name):
            return component
    return "other"


@functools.lru_cache(maxsize=1 << 16)
def is_buffer(name: str, shape: tuple[int, ...]) -> bool:
    """True for stored tensors that are not parameters (masks, rotary frequencies, ids)."""
    if _BUFFER_RE.search(name):
        return True
    # `attn.bias` is a 4-D causal mask in GPT-2/GPT-NeoX; a real bias is 1-D.
    return bool(_MASK_RE.search(name)) and len(shape) == 4


@functools.lru_cache(maxsize=1 << 16)
def is_quant_metadata(name: str) -> bool:
    return bool(_QUANT_META_RE.search(name))


def numel(shape: tuple[int, ...] | list[int]) -> int:
    return math.prod(shape)  # 1 for a scalar's empty shape


@dataclass(frozen=True)
class QuantFormat:
    """How a pre-quantized checkpoint packs its weights (from config.json `quantization_config`)."""

    method: str  # gptq, awq, bitsandbytes, fp8, mxfp4, compressed-tensors, modelopt, ...
    bits: int | None = None  # bits per packed weight (GPTQ/AWQ `bits`, compressed-tensors `num_bits`)


def quant_format_from_config(config: dict) -> QuantFormat | None:
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return None
    method = str(qc.get("quant_method") or qc.get("quant_algo") or "unknown").lower()
    bits = qc.get("bits") or qc.get("w_bit")
    if method == "bitsandbytes":
        bits = 4 if qc.get("load_in_4bit") else 8
    groups = qc.get("config_groups")
    if bits is None and isinstance(groups, dict):  # compressed-tensors: config_groups.<g>.weights.num_bits
        bits = next(
            (
                g["weights"].get("num_bits")
                for g in groups.values()
                if isinstance(g, dict) and g.get("weights")
            ),
            None,
        )
    return QuantFormat(method=method, bits=int(bits) if isinstance(bits, (int, float)) else None)


def values_per_element(name: str, dtype: str, quant: QuantFormat | None, dtypes: dict[str, str]) -> int:
    """Logical weights one stored element holds: the packing of each quantized storage format.

    `dtypes`: every tensor name of the checkpoint -> its dtype (a packed weight is recognised by
    the scale tensors stored beside it as much as by `quantization_config`).

    - GPTQ `qweight` I32 [in·bits/32, out] (AutoGPTQ/GPTQModel `QuantLinear.pack`), AWQ `qweight`
      I32 [in, out·bits/32] (AutoAWQ `WQLinear_GEMM.from_linear`), compressed-tensors
      pack-quantized `weight_packed` I32 [out, in·bits/32] (`pack_to_int32`): 32 / bits values per
      word; bits from `quantization_config` (`bits`, `w_bit`, `config_groups.*.weights.num_bits`),
      4 when it does not say.
    - Two 4-bit values per byte: MXFP4 `*_blocks` U8 (gpt-oss, transformers `Mxfp4Config`);
      compressed-tensors NVFP4 `weight_packed` U8 (`nvfp4-pack-quantized`); ModelOpt NVFP4
      `weight` U8 beside an F8_E4M3 `weight_scale`; bitsandbytes nf4/fp4 `weight` U8 [n/2, 1]
      (`Params4bit`, saved with `weight.absmax` / `weight.quant_state.bitsandbytes__*`).
    - Everything else (bitsandbytes int8 `weight` I8 + `SCB`, FP8 weights) one value per element.
    """
    if dtype in ("I32", "U32") and name.endswith(("qweight", "weight_packed")):
        bits = quant.bits if quant and quant.bits else 4
        return 32 // bits
    if dtype != "U8":
        return 1
    if name.endswith(("_blocks", "weight_packed")):
        return 2
    if name.endswith("weight"):
        if dtypes.get(name + "_scale") == "F8_E4M3":
            return 2  # ModelOpt NVFP4: e2m1 pairs, one FP8 scale per 16 values
        if name + ".absmax" in dtypes or any(
            name + ".quant_state.bitsandbytes__" + q in dtypes for q in ("nf4", "fp4")
        ):
            return 2
        if quant and quant.method == "bitsandbytes" and quant.bits == 4:
            return 2
    return 1


@dataclass
class CheckpointCounts:
    """Exact counts over a checkpoint's tensors. Integers only."""

    stored_by_dtype: dict[str, int] = field(default_factory=dict)  # elements, as the Hub counts
    stored_bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    parameters: int = 0  # true parameters (unpacked, no buffers, no quant metadata)
    parameter_bytes: int = 0  # bytes the parameters occupy as stored
    quant_metadata_bytes: int = 0  # scales/zeros/g_idx bytes
    buffers: int = 0
    buffer_bytes: int = 0
    by_component: dict[str, int] = field(default_factory=dict)  # parameters per component
    # Block Linear weights: what int8/int4/fp8 methods quantize (embeddings, norms, lm_head stay 16-bit).
    linear_params: int = 0
    linear_rows: int = 0  # Σ output features (per-row scales: LLM.int8 SCB)
    linear_groups_128: int = 0  # Σ rows × ceil(in/128) (GPTQ/AWQ group-128 scales and zeros)
    linear_blocks_128: int = 0  # Σ ceil(out/128) × ceil(in/128) (DeepSeek-V3 FP8 block scales)
    linear_blocks_64: int = 0  # Σ ceil(out·in/64) (bitsandbytes 4-bit absmax per 64 flattened weights)
    linear_largest: int = 0  # out × in of the largest block Linear weight (one dequantized at a time)
    # Block Linear weights by logical (out_features, in_features) -> how many (GPTQ/AWQ kernel buffers:
    # hubmem.runtimes.gptq sizes g_idx, Marlin workspaces and exllamav2 scratch from them)
    linear_shapes: dict[tuple[int, int], int] = field(default_factory=dict)
    routed_expert_params: int = 0  # parameters of routed experts outside MTP modules (hubmem.model.moe)
    # Elements as the Hub's API counts them (`safetensors.parameters`): see `hub_elements`.
    hub_by_dtype: dict[str, int] = field(default_factory=dict)
    mxfp4_scale_elements: int = 0  # U8 `*_scales` elements beside MXFP4 `*_blocks` (gpt-oss)
    # Parameters of 2 or more dimensions: logical shape (packing undone) -> how many tensors have it
    # (Adafactor factors each by its shape, hubmem.memory.training.adafactor_matrices).
    matrix_shapes: dict[tuple[int, ...], int] = field(default_factory=dict)
    tensors: int = 0
    has_lm_head: bool = False
    exact: bool = True  # False when estimated from the config

    @property
    def stored_total(self) -> int:
        return sum(self.stored_by_dtype.values())

    @property
    def stored_bytes(self) -> int:
        """Bytes of everything a loader keeps: parameters + quantization metadata (buffers excluded)."""
        return self.parameter_bytes + self.quant_metadata_bytes

    def to_dict(self) -> dict:
        return {
            "exact": self.exact,
            "parameters": self.parameters,
            "stored_total": self.stored_total,
            "stored_by_dtype": dict(self.stored_by_dtype),
            "hub_total": sum(self.hub_by_dtype.values()),
            "hub_by_dtype": dict(self.hub_by_dtype),
            "mxfp4_scale_elements": self.mxfp4_scale_elements,
            "stored_bytes": self.stored_bytes,
            "parameter_bytes": self.parameter_bytes,
            "quant_metadata_bytes": self.quant_metadata_bytes,
            "buffers": self.buffers,
            "buffer_bytes": self.buffer_bytes,
            "by_component": dict(self.by_component),
            "linear_params": self.linear_params,
            "routed_expert_params": self.routed_expert_params,
            "tensors": self.tensors,
        }


def _logical_rows_cols(
    name: str, shape: tuple[int, ...], unpack: int, method: str, hidden: int | None
) -> tuple[int, int]:
    """(out_features, in_features) of a 2-D Linear weight, undoing int4 packing.

    Plain Linear and compressed-tensors `weight_packed` are [out, in(/pack)]; GPTQ stores qweight as
    [in / pack, out] and AWQ as [in, out / pack] (AutoGPTQ `QuantLinear`, AutoAWQ `WQLinear_GEMM`).
    bitsandbytes 4-bit flattens the weight to [out·in / 2, 1] (the shape lives only in the
    quant_state blob): read as [n / hidden_size, hidden_size], which keeps the group-128 and
    128×128-block counts exact whenever the dimensions are multiples of 128 (only the per-row
    count of down-projections comes out as intermediate instead of hidden rows).
    """
    if len(shape) >= 3 and _ROUTED_EXPERT_RE.search(name) and not name.endswith("qweight"):
        # Fused experts hold E matrices. MXFP4 `*_blocks` are [E, out, in/32, 16] (transformers
        # integrations/mxfp4.py); plain tensors are [E, in, out] (Llama4TextExperts and GptOssExperts
        # compute `hidden @ gate_up_proj[e]`, transformers models/llama4, models/gpt_oss).
        experts = shape[0]
        if name.endswith("_blocks"):
            return experts * shape[1], numel(shape[2:]) * unpack
        return experts * shape[-1], numel(shape[1:-1]) * unpack
    rows, cols = shape[0], numel(shape[1:])
    if unpack > 1 and name.endswith("qweight"):
        return (cols * unpack, rows) if method == "awq" else (cols, rows * unpack)
    if unpack == 2 and cols == 1:
        n = rows * 2
        width = hidden if hidden and n % hidden == 0 else n
        return n // width, width
    return rows, cols * unpack


def _logical_shape(
    name: str, shape: tuple[int, ...], unpack: int, method: str, hidden: int | None
) -> tuple[int, ...]:
    """The shape of a packed (unpack > 1) parameter once dequantized, as the model holds it: 2-D Linear
    weights as `_logical_rows_cols`; MXFP4 `*_blocks` [E, out, in/32, 16] -> [E, in, out] (GptOssExperts'
    dequantized gate_up_proj / down_proj, transformers integrations/mxfp4.py); else the last dim unpacked."""
    if len(shape) == 2:
        return _logical_rows_cols(name, shape, unpack, method, hidden)
    if name.endswith("_blocks"):
        return shape[0], numel(shape[2:]) * unpack, shape[1]
    return (*shape[:-1], shape[-1] * unpack)


def hub_elements(name: str, dtype: str, elements: int) -> int:
    """Elements the Hub's API counts for one tensor (`safetensors.parameters`, per dtype).

    The Hub sums header elements, except that each byte of an MXFP4 `*_blocks` tensor counts as
    the two FP4 values it holds. Its published gpt-oss-20b figure (API revision 6cee5e8, 2025-09)
    is U8 19,707,494,400 = 2 × 9,555,148,800 block bytes + 597,196,800 `*_scales` bytes; a later
    revision leaves the scales out (19,110,297,600 = this count − `mxfp4_scale_elements`).
    GPTQ/AWQ `I32` words and bitsandbytes `U8` bytes are counted as stored.
    """
    return 2 * elements if dtype == "U8" and name.endswith("_blocks") else elements


# Layer and expert numbers (`.12.`): every layer's tensors share one name template, so that the
# regex classification below runs once per template, not once per tensor (`_tensor_groups` is the
# per-tensor hot loop of `hubmem audit`). The dot before the number is matched and written back rather
# than looked behind for: the same templates in half the time (0.04 s for DeepSeek-V3's 92k names).
_LAYER_NUMBER_RE = re.compile(r"\.\d+(?=\.)")
LAYER_TEMPLATE = ".#"


@functools.lru_cache(maxsize=1 << 16)
def name_template(name: str) -> str:
    """`model.layers.12.mlp.experts.3.w1.weight` -> `model.layers.#.mlp.experts.#.w1.weight`.

    Remembered: models of one family share their names, so an audit of many repos finds most of them
    here instead of running the regex again (a few MB for the 65,536 names kept)."""
    return _LAYER_NUMBER_RE.sub(LAYER_TEMPLATE, name)


@dataclass(frozen=True)
class _NameKind:
    buffer: bool  # a buffer whatever its shape
    mask: bool  # a buffer when 4-D (causal masks)
    quant_metadata: bool
    component: str  # component_of
    mtp: bool  # Qwen3-Next `mtp.*` (DeepSeek's MTP layers are found by layer index)
    routed_expert: bool
    # SSM mixers: only their projections are Linear layers (not A_log, conv1d, dt_bias, D).
    linear: bool


@functools.lru_cache(maxsize=1 << 14)
def _classify(template: str) -> _NameKind:
    """What the regexes say about a tensor name; the same for every layer number (no rule reads one)."""
    kind = component_of(template)
    return _NameKind(
        buffer=bool(_BUFFER_RE.search(template)),
        mask=bool(_MASK_RE.search(template)),
        quant_metadata=is_quant_metadata(template),
        component=kind,
        mtp=bool(_MTP_RE.search(template)),
        routed_expert=bool(_ROUTED_EXPERT_RE.search(template)),
        linear=(kind in ("attention", "mlp") or kind == "ssm" and template.endswith("proj.weight"))
        and not template.endswith("bias"),
    )


def _mtp_layers(config: dict | None) -> set[int]:
    """Layer indexes that hold DeepSeek-style MTP modules: num_hidden_layers + j, j < num_nextn_predict_layers."""
    raw = (config or {}).get("text_config") or config or {}
    layers, extra = raw.get("num_hidden_layers"), raw.get("num_nextn_predict_layers")
    if isinstance(layers, int) and isinstance(extra, int):
        return set(range(layers, layers + extra))
    return set()


# (name template, dtype, shape, values per element, in an MTP layer) -> how many tensors share it
_Groups = dict[tuple[str, str, tuple[int, ...], int, bool], int]


def _tensor_groups(
    headers: dict[str, dict[str, tuple[str, tuple[int, ...]]]], config: dict | None, quant: QuantFormat | None
) -> tuple[_Groups, int]:
    """Every tensor, grouped by what the counts read of it: its name with layer and expert numbers
    replaced (no rule but the MTP one reads a number, and that one is in the key), dtype, shape and
    packing. DeepSeek-V3's 92k tensors are a few hundred groups; this is the only per-tensor loop."""
    mtp_layers = _mtp_layers(config)
    dtypes: dict[str, str] | None = None  # every name's dtype: what a packed U8 weight is told by
    groups: _Groups = {}
    seen = 0
    template, layer_index = name_template, _LAYER_INDEX_RE.search
    # an MTP layer's name holds `.layers.{n}.` (or starts with `layers.{n}.`): a substring search, 3x
    # faster than the regex, leaves the regex to the few names that may be one
    mtp_marks = tuple(f".layers.{n}." for n in mtp_layers)
    for tensors in headers.values():
        seen += len(tensors)
        for name, (dtype, shape) in tensors.items():
            unpack = 1
            if dtype in ("U8", "I32", "U32"):
                if dtypes is None:
                    dtypes = {n: d for ts in headers.values() for n, (d, _) in ts.items()}
                unpack = values_per_element(name, dtype, quant, dtypes)
            is_mtp = False
            if mtp_marks and any(mark in "." + name for mark in mtp_marks):
                layer = layer_index(name)
                is_mtp = bool(layer and int(layer.group(1)) in mtp_layers)
            key = (template(name), dtype, tuple(shape), unpack, is_mtp)
            groups[key] = groups.get(key, 0) + 1
    return groups, seen


@collector_paused()
def count_tensors(
    headers: dict[str, dict[str, tuple[str, tuple[int, ...]]]], config: dict | None = None
) -> CheckpointCounts:
    """Exact counts over every tensor of every file (files must not overlap: the caller picks one set),
    summed over `_tensor_groups` (each group's figures times its count)."""
    quant = quant_format_from_config(config or {})
    method = quant.method if quant else ""
    text = (config or {}).get("text_config") or config or {}
    hidden = text.get("hidden_size") if isinstance(text.get("hidden_size"), int) else None
    by_dtype: dict[str, int] = {}
    hub_by_dtype: dict[str, int] = {}
    bytes_by_dtype: dict[str, int] = {}
    by_component: dict[str, int] = {}
    parameters = parameter_bytes = quant_bytes = buffers = buffer_bytes = 0
    scale_elements = routed = linear_params = linear_rows = groups_128 = blocks_128 = 0
    blocks_64 = largest = 0
    matrix_shapes: dict[tuple[int, ...], int] = {}
    linear_shapes: dict[tuple[int, int], int] = {}
    groups, tensors_seen = _tensor_groups(headers, config, quant)
    for (template, dtype, shape, unpack, in_mtp_layer), n in groups.items():
        elements = math.prod(shape) * n
        nbytes = elements * safetensors_bits(dtype) // 8
        by_dtype[dtype] = by_dtype.get(dtype, 0) + elements
        hub_by_dtype[dtype] = hub_by_dtype.get(dtype, 0) + hub_elements(template, dtype, elements)
        bytes_by_dtype[dtype] = bytes_by_dtype.get(dtype, 0) + nbytes
        if dtype == "U8" and template.endswith("_scales"):
            scale_elements += elements
        kind = _classify(template)
        if kind.buffer or kind.mask and len(shape) == 4:  # as is_buffer
            buffers += elements
            buffer_bytes += nbytes
            continue
        if kind.quant_metadata:
            quant_bytes += nbytes
            continue
        params = elements * unpack
        parameters += params
        parameter_bytes += nbytes
        is_mtp = kind.mtp or in_mtp_layer
        component = "mtp" if is_mtp else kind.component
        if not is_mtp and kind.routed_expert:
            routed += params
        by_component[component] = by_component.get(component, 0) + params
        if len(shape) >= 2:
            key = shape if unpack == 1 else _logical_shape(template, shape, unpack, method, hidden)
            matrix_shapes[key] = matrix_shapes.get(key, 0) + n
        if kind.linear and len(shape) >= 2:
            rows, cols = _logical_rows_cols(template, shape, unpack, method, hidden)
            linear_params += params
            linear_rows += rows * n
            groups_128 += rows * -(-cols // 128) * n
            blocks_128 += -(-rows // 128) * -(-cols // 128) * n
            blocks_64 += -(-(rows * cols) // 64) * n
            largest = max(largest, rows * cols)
            linear_shapes[rows, cols] = linear_shapes.get((rows, cols), 0) + n
    return CheckpointCounts(
        stored_by_dtype=dict(sorted(by_dtype.items())),
        stored_bytes_by_dtype=dict(sorted(bytes_by_dtype.items())),
        parameters=parameters,
        parameter_bytes=parameter_bytes,
        quant_metadata_bytes=quant_bytes,
        buffers=buffers,
        buffer_bytes=buffer_bytes,
        by_component={c: by_component[c] for c in COMPONENTS if by_component.get(c)},
        linear_params=linear_params,
        linear_rows=linear_rows,
        linear_groups_128=groups_128,
        linear_blocks_128=blocks_128,
        linear_blocks_64=blocks_64,
        linear_largest=largest,
        linear_shapes=linear_shapes,
        routed_expert_params=routed,
        hub_by_dtype=dict(sorted(hub_by_dtype.items())),
        mxfp4_scale_elements=scale_elements,
        matrix_shapes=matrix_shapes,
        tensors=tensors_seen,
        has_lm_head="lm_head" in by_component,
    )


_STACK_RE = re.compile(r"(^|\.)(encoder|decoder)\.")


def encoder_decoder_split(headers: dict[str, dict[str, tuple[str, tuple[int, ...]]]]) -> dict[str, int]:
    """Parameters of an encoder-decoder's encoder stack, decoder stack, and what they share.

    By tensor name: `encoder.` / `model.encoder.` (T5, BART, Whisper) vs `decoder.`; the rest
    (shared token embeddings, lm_head, BART's `model.shared`) is `shared`. Buffers and
    quantization metadata are left out as in `count_tensors`.
    """
    split = {"encoder": 0, "decoder": 0, "shared": 0}
    for tensors in headers.values():
        for name, (_, shape) in tensors.items():
            if is_buffer(name, tuple(shape)) or is_quant_metadata(name):
                continue
            m = _STACK_RE.search(name)
            split[m.group(2) if m else "shared"] += numel(shape)
    return split
