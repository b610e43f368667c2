"""The one check of a config.json dict before anything reads it: types, signs and bounds.

config.json comes from outside (a Hub repo, a local folder, a caller's dict), and the readers in
`hubmem.model` trust what they read: a `model_type` that is a list, a negative `num_key_value_heads`
or `num_hidden_layers: 10**30` would otherwise surface as a TypeError, a negative KV cache or an
OverflowError, and `num_hidden_layers: 100000000` as minutes spent building per-layer lists.
`check_config` walks the whole dict once (iteratively, so no nesting depth can exhaust the stack)
and checks every field hubmem reads, wherever it sits (top level, `text_config`, a nested
`thinker_config.text_config`, ...). Fields hubmem does not read are not judged.

Each failure is one `MalformedConfigError` (exit code 14) naming the field and its value:

    config.json: num_key_value_heads is -8; expected an integer from 0 to 100,000,000

The bounds are far above any published model, and far below what would make an estimate overflow
a float or run for long (README, "Input limits"). 0 stays allowed where the readers take 0 as "not
set" (`head_dim: 0` falls back to hidden / heads); required fields keep their own "lacks a usable"
check in `hubmem.model.architecture`.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hubmem.errors import MalformedConfigError

# The limits (README "Input limits" is generated from this table). Largest published values, for
# scale: layers 126 (Llama 3.1 405B), hidden 16,384, vocab 262,144 (Gemma 3), context 10,485,760
# (Llama 4 Scout), routed experts 384 (Kimi K2), expansion factor 2 (Mamba), weight bits 16.
MAX_LAYERS = 100_000
MAX_DIMENSION = 100_000_000
MAX_EXPERTS = 100_000
MAX_FACTOR = 1_000
MAX_QUANT_BITS = 64
MAX_DEPTH = 32  # nested objects / arrays (real configs nest 5 deep: quantization_config.config_groups...)


@dataclass(frozen=True)
class Rule:
    kind: str  # int | number | int-or-list | str | str-list | int-list | object | bool
    low: int = 0
    high: int = 0
    what: str = ""  # the group, for the README table

    def expected(self) -> str:
        span = f"from {self.low:,} to {self.high:,}"
        return {
            "int": f"an integer {span}",
            "int-or-list": f"an integer {span} (or a list of them)",
            "int-list": f"a list of integers {span}",
            "number": f"a finite number {span}",
            "str": "a string",
            "str-list": "a list of strings",
            "object": "an object",
            "bool": "true or false",
        }[self.kind]


def _rules(kind: str, low: int, high: int, what: str, names: str) -> dict[str, Rule]:
    rule = Rule(kind, low, high, what)
    return {name: rule for name in names.split()}


# Every config.json field hubmem reads (hubmem.model.architecture ALIASES, variants, moe, tensors).
RULES: dict[str, Rule] = {
    **_rules(
        "int",
        0,
        MAX_LAYERS,
        "layer counts",
        "num_hidden_layers n_layer num_layers n_layers decoder_layers encoder_layers num_decoder_layers "
        "num_nextn_predict_layers",
    ),
    # layer indexes and periods; -1 is ERNIE's "up to the last layer" (moe_layer_end_index)
    **_rules(
        "int",
        -1,
        MAX_LAYERS,
        "layer indexes and periods",
        "first_k_dense_replace moe_layer_freq moe_layer_start_index moe_layer_end_index moe_layer_interval "
        "interleave_moe_layer_step decoder_sparse_step attn_layer_period attn_layer_offset "
        "full_attention_interval sliding_window_pattern no_rope_layer_interval",
    ),
    **_rules("int-list", -1, MAX_LAYERS, "per-layer lists", "no_rope_layers moe_layers mlp_only_layers"),
    **_rules(
        "int",
        0,
        MAX_DIMENSION,
        "widths",
        "hidden_size n_embd n_embed d_model dim model_dim intermediate_size n_inner ffn_hidden_size ffn_dim "
        "d_ff decoder_ffn_dim encoder_ffn_dim intermediate_size_mlp",
    ),
    **_rules(
        "int",
        0,
        MAX_DIMENSION,
        "attention heads",
        "num_attention_heads n_head n_heads num_heads decoder_attention_heads encoder_attention_heads "
        "num_key_value_heads num_kv_heads n_head_kv multi_query_group_num n_kv_heads",
    ),
    **_rules(
        "int",
        0,
        MAX_DIMENSION,
        "context lengths",
        "max_position_embeddings n_positions n_ctx seq_length max_sequence_length max_seq_len "
        "model_max_length max_source_positions max_target_positions",
    ),
    **_rules("int", 0, MAX_DIMENSION, "vocabulary", "vocab_size padded_vocab_size n_vocab"),
    **_rules(
        "int",
        0,
        MAX_DIMENSION,
        "attention variants (head size, MLA, windows)",
        "head_dim d_kv kv_lora_rank q_lora_rank qk_rope_head_dim qk_nope_head_dim v_head_dim "
        "sliding_window attention_chunk_size",
    ),
    **_rules(
        "int",
        0,
        MAX_DIMENSION,
        "SSM and linear-attention state",
        "state_size conv_kernel n_groups mamba_d_state mamba_d_conv mamba_num_heads mamba_head_dim "
        "ssm_state_size mamba_d_ssm mamba_n_groups mamba_n_heads mamba_d_head linear_num_key_heads "
        "linear_num_value_heads linear_key_head_dim linear_value_head_dim linear_conv_kernel_dim",
    ),
    # ERNIE-VL lists one count per modality; the readers take the first
    **_rules(
        "int-or-list",
        0,
        MAX_EXPERTS,
        "expert counts",
        "n_routed_experts num_local_experts num_experts moe_num_experts num_experts_per_tok "
        "experts_per_token moe_k moe_topk n_shared_experts moe_num_shared_experts",
    ),
    **_rules(
        "int-or-list",
        0,
        MAX_DIMENSION,
        "expert widths",
        "moe_intermediate_size shared_expert_intermediate_size",
    ),
    **_rules("number", 0, MAX_FACTOR, "expansion factors", "expand mamba_expand"),
    **_rules("str", 0, 0, "names", "model_type torch_dtype dtype hybrid_override_pattern"),
    **_rules("str-list", 0, 0, "name lists", "architectures layer_types"),
    **_rules("bool", 0, 0, "flags", "tie_word_embeddings"),
    **_rules(
        "object",
        0,
        0,
        "sub-configs",
        "text_config language_config llm_config thinker_config vision_config audio_config quantization_config",
    ),
}

# Checked anywhere inside `quantization_config` (config_groups.<group>.weights.num_bits, ...).
QUANT_RULES: dict[str, Rule] = _rules(
    "number", 0, MAX_QUANT_BITS, "quantization bits (in quantization_config)", "bits w_bit num_bits"
)
# The objects whose fields are the language model's: RULES apply in the top level and in these,
# nested any number of times (Qwen2.5-Omni: thinker_config.text_config; transformers'
# `get_text_config` also looks in `decoder` and `generator`). Other sub-configs (vision towers, whose
# `num_heads` may be a list per stage) are only held to the nesting limit.
TEXT_SECTIONS = ("text_config", "language_config", "llm_config", "thinker_config", "decoder", "generator")

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxdict, _repr.maxlist, _repr.maxtuple = 2, 3, 4, 4
_repr.maxstring, _repr.maxother = 40, 40
SHOWN_CHARS = 60


def show(value: Any) -> str:
    """A short one-line repr of any JSON value: long ints by their size, long reprs cut with '…'."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits:,} digits"
    text = _repr.repr(value) if isinstance(value, (dict, list, tuple, str)) else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ok(rule: Rule, v: Any) -> bool:
    kind = rule.kind
    if kind == "int":
        return _is_int(v) and rule.low <= v <= rule.high
    if kind == "int-or-list":
        values = v if isinstance(v, list) else [v]
        return all(_is_int(x) and rule.low <= x <= rule.high for x in values)
    if kind == "int-list":
        return isinstance(v, (list, tuple)) and all(_is_int(x) and rule.low <= x <= rule.high for x in v)
    if kind == "number":
        return (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (_is_int(v) or math.isfinite(v))
            and rule.low <= v <= rule.high
        )
    if kind == "str":
        return isinstance(v, str)
    if kind == "str-list":
        return isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)
    if kind == "object":
        return isinstance(v, dict)
    return isinstance(v, bool)  # "bool"


def _check_depth(config: dict) -> None:
    """Nesting at most MAX_DEPTH levels, walked without recursion (a 100,000-level list is one error)."""
    stack: list[tuple[str, Any, int]] = [("", config, 1)]
    while stack:
        path, node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedConfigError(
                f"config.json nests objects or arrays more than {MAX_DEPTH} levels deep (at {_short_path(path)})"
            )
        items = node.items() if isinstance(node, dict) else ((f"[{i}]", v) for i, v in enumerate(node))
        for key, value in items:
            if isinstance(value, (dict, list, tuple)) and value:
                stack.append((_join(path, key), value, depth + 1))


def _join(path: str, key: Any) -> str:
    key = str(key)
    return key if not path else f"{path}{key}" if key.startswith("[") else f"{path}.{key}"


def _short_path(path: str) -> str:
    """A field path for a one-line message: control characters escaped, the start cut when long."""
    text = path if path.isprintable() else repr(path)[1:-1]
    return text if len(text) <= SHOWN_CHARS else "…" + text[-(SHOWN_CHARS - 1) :]


def _sections(config: dict) -> Iterator[tuple[str, dict, dict[str, Rule]]]:
    """(path, object, rules) for every object whose fields hubmem reads."""
    stack: list[tuple[str, dict, dict[str, Rule]]] = [("", config, RULES)]
    while stack:
        path, node, rules = stack.pop()
        yield path, node, rules
        for key, value in node.items():
            if not isinstance(value, dict):
                continue
            if rules is QUANT_RULES or key == "quantization_config":
                stack.append((_join(path, key), value, QUANT_RULES))
            elif rules is RULES and key in TEXT_SECTIONS:
                stack.append((_join(path, key), value, RULES))


def check_config(config: dict) -> None:
    """Raise MalformedConfigError for the first field whose value no model has; return None if all pass."""
    if not isinstance(config, dict):
        raise MalformedConfigError("config.json is not a JSON object")
    _check_depth(config)
    for path, node, rules in _sections(config):
        for key, value in node.items():
            rule = rules.get(key) if isinstance(key, str) else None
            if rule is None or value is None or _ok(rule, value):
                continue
            raise MalformedConfigError(
                f"config.json: {_short_path(_join(path, key))} is {show(value)}; expected {rule.expected()}"
            )


def limits_table() -> list[tuple[str, str, str]]:
    """(fields, accepted values) per group of RULES, for the README's generated "Input limits" block."""
    groups: dict[str, tuple[Rule, list[str]]] = {}
    for name, rule in {**RULES, **QUANT_RULES}.items():
        groups.setdefault(rule.what, (rule, []))[1].append(name)
    return [
        (what, ", ".join(f"`{n}`" for n in names), rule.expected()) for what, (rule, names) in groups.items()
    ]
