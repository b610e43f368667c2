"""What a transformers config class's `__post_init__` fills in, as rules hubmem can apply itself.

Each rule is `f(value, get) -> value`: `value` is what the config (or the class default) holds for
the field, `get(name)` reads another field as the view resolves it. A rule is used for a class only
when `config_table.generate()` has checked it against that class on a grid of probe configs
(`PROBES`); a field the class derives by no rule here is read through transformers itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, TypeGuard

Get = Callable[[str], Any]
Rule = Callable[[Any, Get], Any]


def _int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _head_dim(value: Any, get: Get) -> Any:
    # LlamaConfig.__post_init__ (transformers 5.x): head_dim = hidden_size // num_attention_heads
    if value is not None:
        return value
    h, a = get("hidden_size"), get("num_attention_heads")
    return h // a if _int(h) and _int(a) and a > 0 else None


def _kv_heads(value: Any, get: Get) -> Any:
    # LlamaConfig.__post_init__: num_key_value_heads defaults to num_attention_heads
    return value if value is not None else get("num_attention_heads")


def _window_if_used(value: Any, get: Get) -> Any:
    # Qwen2Config / Qwen3Config.__post_init__: sliding_window = sliding_window if use_sliding_window else None
    return value if get("use_sliding_window") else None


def _window_layers(value: Any, get: Get) -> Any:
    # Qwen2Config / Qwen3Config: sliding on layers i >= max_window_layers when a window is set
    if value is not None:
        return value
    n, window, start = get("num_hidden_layers"), get("sliding_window"), get("max_window_layers")
    if not _int(n) or not _int(start):
        return None
    return ["sliding_attention" if window is not None and i >= start else "full_attention" for i in range(n)]


def _every(period: int, from_field: bool) -> Rule:
    # Gemma2Config / GptOssConfig (period 2), Gemma3TextConfig (`sliding_window_pattern`, default 6):
    # layer i is full attention when (i + 1) % period == 0, sliding otherwise
    def rule(value: Any, get: Get) -> Any:
        if value is not None:
            return value
        n = get("num_hidden_layers")
        p = get("sliding_window_pattern") if from_field else None
        p = p if _int(p) and p > 0 else period
        if not _int(n):
            return None
        return ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(n)]

    return rule


RULES: dict[str, dict[str, Rule]] = {
    "head_dim": {"hidden // heads": _head_dim},
    "num_key_value_heads": {"= heads": _kv_heads},
    "sliding_window": {"if use_sliding_window": _window_if_used},
    "layer_types": {
        "max_window_layers": _window_layers,
        **{f"every {p}": _every(p, False) for p in range(2, 9)},
        **{f"sliding_window_pattern or {p}": _every(p, True) for p in range(2, 9)},
    },
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
)
