"""What a transformers config class's `__post_init__` fills in, as rules hubmem can apply itself.

Each rule is `f(value, get) -> value`: `value` is what the config (or the class default) holds for
the field, `get(name)` reads another field as the view resolves it. A rule is used for a class only
when `config_table.generate()` has checked it against that class on a grid of probe configs
(`PROBES`, and the field's own `FIELD_PROBES` when it has any); a field the class derives by no rule
here is read through transformers itself. A rule meeting a value its class would refuse raises
NeedsTransformers, so that the class itself decides.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeGuard

Get = Callable[[str], Any]
Rule = Callable[[Any, Get], Any]


class NeedsTransformers(Exception):
    """The config reads a field that only transformers' own class can derive: read it through transformers."""


def _int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _head_dim(value: Any, get: Get) -> Any:
    # LlamaConfig.__post_init__ (transformers 5.x): head_dim = hidden_size // num_attention_heads
    if value is not None:
        return value
    h, a = get("hidden_size"), get("num_attention_heads")
    return h // a if _int(h) and _int(a) and a > 0 else None


def _always_head_dim(value: Any, get: Get) -> Any:
    # DeepseekOcr2TextConfig / UnlimitedOcrTextConfig.__post_init__ (transformers 5.25): head_dim =
    # hidden_size // num_attention_heads, whatever the config says
    return _head_dim(None, get)


def _rope_head_dim(value: Any, get: Get) -> Any:
    # DeepseekV2Config / DeepseekV3Config / MiniCPM3Config.__post_init__ (transformers 5.25): head_dim =
    # qk_rope_head_dim whatever the config says (the RoPE part of an MLA head), else hidden // heads
    rope = get("qk_rope_head_dim")
    return rope if rope is not None else _head_dim(None, get)


def _kv_heads(value: Any, get: Get) -> Any:
    # LlamaConfig.__post_init__: num_key_value_heads defaults to num_attention_heads
    return value if value is not None else get("num_attention_heads")


def _per_layer(n: Any, kind: Callable[[int], str]) -> list[str] | None:
    """`kind(i)` for each of `n` layers; None when `n` is not a layer count."""
    return [kind(i) for i in range(n)] if _int(n) else None


def _sliding_where(n: Any, sliding: Callable[[int], bool]) -> list[str] | None:
    """ "sliding_attention" on the layers where `sliding(i)`, "full_attention" on the others."""
    return _per_layer(n, lambda i: "sliding_attention" if sliding(i) else "full_attention")


def _window_if_used(value: Any, get: Get) -> Any:
    # Qwen2Config / Qwen3Config.__post_init__: sliding_window = sliding_window if use_sliding_window else None
    return value if get("use_sliding_window") else None


def _window_layers(value: Any, get: Get) -> Any:
    # Qwen2Config / Qwen3Config: sliding on layers i >= max_window_layers when a window is set
    if value is not None:
        return value
    n, window, start = get("num_hidden_layers"), get("sliding_window"), get("max_window_layers")
    if not _int(start):
        return None
    return _sliding_where(n, lambda i: window is not None and i >= start)


def _window_or_0(value: Any, get: Get) -> Any:
    # Qwen2MoeConfig.__post_init__ (transformers 5.25): sliding_window = sliding_window if use_sliding_window else 0
    return value if get("use_sliding_window") else 0


def _odd_below_max_window(value: Any, get: Get) -> Any:
    # Qwen2MoeConfig.__post_init__: "sliding_attention" on layer i when (i + 1) % 2 and
    # i < max_window_layers and use_sliding_window, else "full_attention"
    if value is not None:
        return value
    n, start, on = get("num_hidden_layers"), get("max_window_layers"), get("use_sliding_window")
    if not _int(start):
        return None
    return _sliding_where(n, lambda i: bool((i + 1) % 2 and i < start and on))


def _full_at_0(period: int) -> Rule:
    # GraniteSWAConfig / GraniteMoeSWAConfig / CwmConfig.__post_init__ (transformers 5.25): layer i is
    # "full_attention" when i % period == 0, "sliding_attention" otherwise
    def rule(value: Any, get: Get) -> Any:
        if value is not None:
            return value
        return _sliding_where(get("num_hidden_layers"), lambda i: i % period != 0)

    return rule


def _every(period: int, from_field: bool) -> Rule:
    # Gemma2Config / GptOssConfig (period 2), Gemma3TextConfig (`sliding_window_pattern`, default 6):
    # layer i is full attention when (i + 1) % period == 0, sliding otherwise
    def rule(value: Any, get: Get) -> Any:
        if value is not None:
            return value
        p = get("sliding_window_pattern") if from_field else None
        p = p if _int(p) and p > 0 else period
        return _sliding_where(get("num_hidden_layers"), lambda i: (i + 1) % p != 0)

    return rule


def _last_full(rule: Rule, given_too: bool) -> Rule:
    # Gemma4TextConfig.__post_init__ (transformers 5.25 configuration_gemma4.py): the last layer is
    # forced to "full_attention", also in a given layer_types; BeamConfig (configuration_beam.py) and
    # NeoMMEConfig: in the default pattern only
    def forced(value: Any, get: Get) -> Any:
        kinds = rule(value, get)
        if not isinstance(kinds, list) or not kinds or (value is not None and not given_too):
            return kinds
        return [*kinds[:-1], "full_attention"]

    return forced


def _periodic(off: str, on: str, source: str | None, default: int) -> Rule:
    # Qwen3NextConfig / Qwen3_5TextConfig (transformers 5.25 configuration_qwen3_next.py __post_init__):
    # layer i is `on` when (i + 1) % P == 0, `off` otherwise, P = kwarg/field `source` or `default`
    # (`full_attention_interval` 4: linear / full); BailingHybridConfig reads the field `layer_group_size`;
    # MiniMaxConfig (full / linear) and Inkling2TextConfig (hybrid_sliding / hybrid) a fixed P (source None)
    def rule(value: Any, get: Get) -> Any:
        if value is not None:
            return value
        p = get(source) if source else None
        p = default if p is None else p
        if not _int(p) or p <= 0:
            return None
        return _per_layer(get("num_hidden_layers"), lambda i: off if (i + 1) % p else on)

    return rule


def _all(kind: str) -> Rule:
    # LagunaConfig / MellumConfig / GraniteMoeHybridConfig (transformers 5.25 __post_init__):
    # layer_types = [kind] * num_hidden_layers
    def rule(value: Any, get: Get) -> Any:
        if value is not None:
            return value
        n = get("num_hidden_layers")
        return [kind] * n if _int(n) else None

    return rule


def _sliding_if_window(value: Any, get: Get) -> Any:
    # MinistralConfig.__post_init__ (transformers 5.25 configuration_ministral.py): every layer
    # "sliding_attention" when sliding_window is set, "full_attention" otherwise
    if value is not None:
        return value
    n = get("num_hidden_layers")
    return (
        [("sliding_attention" if get("sliding_window") is not None else "full_attention")] * n
        if _int(n)
        else None
    )


def _no_rope(empty_too: bool) -> Rule:
    # Llama4TextConfig.__post_init__ (transformers 5.25 configuration_llama4.py; `if not no_rope_layers`)
    # and SmolLM3Config (configuration_smollm3.py; `if no_rope_layers is None`): layer i uses RoPE (1)
    # unless (i + 1) % no_rope_layer_interval == 0
    def rule(value: Any, get: Get) -> Any:
        if value is not None and (value or not empty_too):
            return value
        n, p = get("num_hidden_layers"), get("no_rope_layer_interval")
        if not _int(n) or not _int(p) or p <= 0:
            return None
        return [int((i + 1) % p != 0) for i in range(n)]

    return rule


def _chunked_if_rope(value: Any, get: Get) -> Any:
    # Llama4TextConfig.__post_init__ (transformers 5.25 configuration_llama4.py): "chunked_attention"
    # on RoPE layers (no_rope_layers[i] == 1) when attention_chunk_size is set, else "full_attention"
    if value is not None:
        return value
    flags, chunk = get("no_rope_layers"), get("attention_chunk_size")
    if not isinstance(flags, list):
        return None
    return ["chunked_attention" if f and chunk is not None else "full_attention" for f in flags]


def _sliding_if_no_rope(value: Any, get: Get) -> Any:
    # SmolLM3Config.__post_init__ (transformers 5.25 configuration_smollm3.py): "sliding_attention" on
    # NoPE layers (no_rope_layers[i] == 0) when use_sliding_window and sliding_window are set
    if value is not None:
        return value
    flags = get("no_rope_layers")
    if not isinstance(flags, list):
        return None
    window = bool(get("use_sliding_window")) and get("sliding_window") is not None
    return ["sliding_attention" if window and not f else "full_attention" for f in flags]


def _every_step(value: Any, get: Get) -> Any:
    # Llama4TextConfig.__post_init__: moe_layers = range(step - 1, num_hidden_layers, step),
    # step = interleave_moe_layer_step
    if value is not None:
        return value
    n, step = get("num_hidden_layers"), get("interleave_moe_layer_step")
    return list(range(step - 1, n, step)) if _int(n) and _int(step) and step > 0 else None


def _empty(value: Any, get: Get) -> Any:
    # Qwen3NextConfig / Qwen3MoeConfig.__post_init__ (transformers 5.25): mlp_only_layers = [] if None
    return [] if value is None else value


def _times_4_hidden(value: Any, get: Get) -> Any:
    # FalconConfig.__post_init__ (transformers 5.25 configuration_falcon.py): ffn_hidden_size = 4 * hidden_size
    if value is not None:
        return value
    h = get("hidden_size")
    return 4 * h if _int(h) else None


# NemotronHConfig._pattern_to_list (transformers 5.25 configuration_nemotron_h.py)
_BLOCKS = {"M": "linear_attention", "E": "moe", "*": "full_attention", "-": "mlp"}


def _from_pattern(value: Any, get: Get) -> Any:
    # NemotronHConfig.__post_init__: layers_block_type from the legacy `hybrid_override_pattern`
    # ("M-M*-…", one character per layer) when not given, else ["linear_attention", "moe",
    # "full_attention", "mlp"]; a character outside the mapping makes the class refuse the config
    if value is not None:
        return value
    pattern = get("hybrid_override_pattern")
    if pattern is None:
        return ["linear_attention", "moe", "full_attention", "mlp"]
    if not isinstance(pattern, str) or not set(pattern) <= set(_BLOCKS):
        raise NeedsTransformers(f"hybrid_override_pattern {pattern!r}")
    return [_BLOCKS[c] for c in pattern]


_KINDS = ("full_attention", "linear_attention", "indexed_attention", "sliding_attention", "hybrid")
_PERIODIC_KINDS = (
    ("linear_attention", "full_attention"),  # Qwen3Next / Qwen3.5, BailingHybrid
    ("linear_attention", "indexed_attention"),  # Qwen4Exp
    ("hybrid_sliding", "hybrid"),  # Inkling2
    ("full_attention", "linear_attention"),  # MiniMax
)

RULES: dict[str, dict[str, Rule]] = {
    "head_dim": {
        "hidden // heads": _head_dim,
        "= qk_rope_head_dim": _rope_head_dim,
        "always hidden // heads": _always_head_dim,
    },
    "num_key_value_heads": {"= heads": _kv_heads},
    "num_kv_heads": {"= heads": _kv_heads},  # FalconConfig.__post_init__ (transformers 5.25)
    "sliding_window": {
        "if use_sliding_window": _window_if_used,
        "if use_sliding_window else 0": _window_or_0,
    },
    "layer_types": {
        "max_window_layers": _window_layers,
        **{f"every {p}": _every(p, False) for p in range(2, 9)},
        **{f"sliding_window_pattern or {p}": _every(p, True) for p in range(2, 9)},
        **{
            f"{name}, last full{'' if given_too else ' by default'}": _last_full(
                _every(p, from_field), given_too
            )
            for p in (4, 6)
            for from_field, name in ((False, f"every {p}"), (True, f"sliding_window_pattern or {p}"))
            for given_too in (True, False)
        },
        **{f"all {kind}": _all(kind) for kind in _KINDS},
        **{
            f"{off} / {on} every {source} or {p}": _periodic(off, on, source, p)
            for off, on in _PERIODIC_KINDS
            for source in ("full_attention_interval", "layer_group_size")
            for p in (2, 4, 6)
        },
        **{
            f"{off} / {on} every {p}": _periodic(off, on, None, p)
            for off, on in _PERIODIC_KINDS
            for p in (2, 4, 6)
        },
        "sliding if sliding_window": _sliding_if_window,
        "odd layers below max_window_layers": _odd_below_max_window,
        **{f"full at i % {p} == 0": _full_at_0(p) for p in (2, 3, 4, 6)},
        "chunked on rope layers": _chunked_if_rope,
        "sliding on no-rope layers": _sliding_if_no_rope,
    },
    "no_rope_layers": {
        "every no_rope_layer_interval": _no_rope(False),
        "every no_rope_layer_interval if empty": _no_rope(True),
    },
    "moe_layers": {"every interleave_moe_layer_step": _every_step},
    "mlp_only_layers": {"[] if None": _empty},
    "ffn_hidden_size": {"4 * hidden": _times_4_hidden},
    "layers_block_type": {"hybrid_override_pattern": _from_pattern},
}

# Probe configs a rule must reproduce for a class: each varies the fields the rules read.
_GRID = {
    "num_hidden_layers": (12, 18),
    "hidden_size": (1536, 2560),
    "sliding_window": (None, 4096),
    "use_sliding_window": (True, False),
    "max_window_layers": (4, 18),
    "sliding_window_pattern": (None, 3),
}
PROBES: tuple[dict[str, Any], ...] = tuple(
    {k: v for k, v in zip(_GRID, values, strict=True) if v is not None}
    | {"num_attention_heads": 12 if values[1] == 1536 else 20}
    for values in itertools.product(*_GRID.values())
) + (
    # legacy layer type names, which PreTrainedConfig.__post_init__ renames (remap_legacy_layer_types)
    {"num_hidden_layers": 4, "layer_types": ["attention", "mamba", "attention", "attention"]},
    # MLA head dims (DeepseekV3Config's head_dim is qk_rope_head_dim, whatever the config states)
    {"qk_nope_head_dim": 96, "qk_rope_head_dim": 32},
    {"head_dim": 96},
)

# Probe configs only a field's own rules are checked on (besides PROBES), for the classes that derive
# that field: each varies what those rules read, so a rule that ignores one of them fails.
FIELD_PROBES: dict[str, tuple[dict[str, Any], ...]] = {
    "layer_types": (
        {"attention_chunk_size": None},
        {"sliding_window": None},
        {"no_rope_layer_interval": 3},
        {"num_hidden_layers": 6, "no_rope_layers": [1, 0, 0, 1, 1, 0]},
        {
            "num_hidden_layers": 6,
            "no_rope_layers": [1, 0, 0, 1, 1, 0],
            "use_sliding_window": True,
            "sliding_window": 512,
        },
        {"full_attention_interval": 3},
        {"layer_group_size": 3},
        # inputs the classes whose layer_types is otherwise constant read (transformers 5.25):
        # Lfm2Config full_attn_idxs, MiniMaxM3VLTextConfig sparse_attention_config,
        # Step3p7TextConfig num_nextn_predict_layers (trims a list padded with the MTP layers)
        {
            "num_hidden_layers": 4,
            "layer_types": ["full_attention", "full_attention", "sliding_attention", "sliding_attention"],
        },
        {"num_hidden_layers": 4, "full_attn_idxs": [1, 3]},
        {"num_hidden_layers": 4, "sparse_attention_config": {"sparse_attention_freq": [0, 1, 0, 1]}},
        {"num_hidden_layers": 4, "num_nextn_predict_layers": 1, "layer_types": ["full_attention"] * 5},
    ),
    "no_rope_layers": (
        {"no_rope_layer_interval": 3},
        {"no_rope_layers": []},
        {"num_hidden_layers": 6, "no_rope_layers": [1, 0, 0, 1, 1, 0]},
    ),
    "moe_layers": ({"interleave_moe_layer_step": 2}, {"interleave_moe_layer_step": 3, "moe_layers": [1, 4]}),
    "mlp_only_layers": ({"mlp_only_layers": [1, 3]},),
    "num_kv_heads": ({"num_kv_heads": 8}, {"num_attention_heads": 16, "hidden_size": 2048}),
    "ffn_hidden_size": ({"ffn_hidden_size": 1000},),
    "layers_block_type": (
        {"hybrid_override_pattern": "M-M*E"},
        {"hybrid_override_pattern": "M*", "layers_block_type": ["moe", "mlp"]},
        {"layers_block_type": ["moe", "full_attention", "moe"]},
    ),
}
