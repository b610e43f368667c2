"""config.json -> the dimensions the memory formulas need.

Normalisation goes through transformers' own config classes where the `model_type` is known to
them: they resolve field aliases (GPT-2 `n_embd` -> `hidden_size`, BLOOM `n_layer`, ...) and
defaults, and compute per-layer attention patterns (`layer_types`) for Gemma 2/3, Qwen2, ...
Those classes are read from the table generated from them (config_table.py, config_view.py) when it
matches the installed transformers, which saves the 1-2 s import; otherwise, or where only the class
can derive a field, transformers itself is imported (`hubmem.jobs.snapshot.start_warm_up` starts that
import in a background thread while the network round trips are in flight). Unknown model types
fall back to the raw dict with the alias table below. Configs are JSON: nothing is ever executed.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from hubmem.errors import MalformedConfigError
from hubmem.model import config_view
from hubmem.model.config_check import check_config
from hubmem.model.config_table import usable_table
from hubmem.model.moe import MoE, parse_moe
from hubmem.model.variants import (
    ATTENTION_KINDS,
    BIDIRECTIONAL,
    MLA,
    MLP_ONLY,
    SSM,
    SSM_ONLY_TYPES,
    Encoder,
    encoder_of,
    layer_pattern,
    mla_of,
    ssm_of,
    towers_of,
)
from hubmem.model.variants import first as _first

# Raw-dict aliases, used when transformers does not know the model type (and to read configs
# whose class keeps the original name). Order = preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "n_embed", "d_model", "dim", "model_dim"),
    "num_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers"),
    "num_heads": ("num_attention_heads", "n_head", "n_heads", "num_heads", "decoder_attention_heads"),
    "num_kv_heads": (
        "num_key_value_heads",
        "num_kv_heads",
        "n_head_kv",
        "multi_query_group_num",
        "n_kv_heads",
    ),
    "intermediate_size": (
        "intermediate_size",
        "n_inner",
        "ffn_hidden_size",
        "ffn_dim",
        "d_ff",
        "decoder_ffn_dim",
    ),
    "max_context": (
        "max_position_embeddings",
        "n_positions",
        "n_ctx",
        "seq_length",
        "max_sequence_length",
        "max_seq_len",
        "model_max_length",
    ),
    "vocab_size": ("vocab_size", "padded_vocab_size", "n_vocab"),
}

# Model types whose MLP is gated (three h x i matrices: gate, up, down). Used only when the
# checkpoint's own tensors cannot tell (see `refine_with_counts`).
GATED_MLP_TYPES = frozenset(
    "llama mistral mixtral qwen2 qwen2_moe qwen3 qwen3_moe gemma gemma2 gemma3 gemma3_text phi3 olmo olmo2 "
    "cohere granite internlm2 deepseek_v2 deepseek_v3 mistral3 ministral smollm3 ernie4_5 ernie4_5_moe "
    "glm glm4 exaone starcoder2_gated yi baichuan llama4 llama4_text gpt_oss qwen3_next".split()
)
# Learned absolute position embeddings (counted as parameters when estimating from the config).
LEARNED_POSITION_TYPES = frozenset("gpt2 gpt_bigcode opt bert roberta gpt_neo whisper".split())

RAW_NORMALISED = "raw config (model_type unknown to transformers)"
_transformers_lock = threading.Lock()


def warm_up() -> None:
    """Import transformers' config machinery (slow) so later normalisation is instant."""
    with _transformers_lock:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "critical")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        import logging

        import transformers.models.auto.configuration_auto  # noqa: F401

        # A config class that rejects a config logs the whole config at ERROR before it raises (40
        # lines on stderr); hubmem then reads the raw dict, so those logs are noise.
        logging.getLogger("transformers").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Architecture:
    model_type: str
    architectures: tuple[str, ...]
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    max_context: int | None
    vocab_size: int
    tie_word_embeddings: bool
    dtype: str | None  # config torch_dtype / dtype, e.g. "bfloat16"
    gated_mlp: bool
    # one entry per decoder layer: "full", "sliding", "chunked" (attention with a KV cache) or
    # "ssm" (a Mamba / linear-attention layer with a fixed state instead)
    layer_types: tuple[str, ...] = field(default=())
    sliding_window: int | None = None
    learned_positions: bool = False
    text_config_key: str | None = None  # "text_config" when the LM sits inside a multimodal config
    normalised_by: str = "raw config"
    attention_chunk: int | None = None  # Llama 4 chunked local attention (`attention_chunk_size`)
    mla: MLA | None = None
    ssm: SSM | None = None
    encoder: Encoder | None = None
    towers: tuple[str, ...] = ()  # "vision", "audio": sub-configs beside the language model
    moe: MoE | None = None  # mixture of experts (hubmem.model.moe), None for dense models

    @property
    def sliding_layers(self) -> int:
        return sum(1 for t in self.layer_types if t == "sliding")

    @property
    def attention_layers(self) -> int:
        """Layers that keep a KV cache (Falcon-H1's parallel hybrid layers count: they hold both)."""
        return sum(1 for t in self.layer_types if t in ATTENTION_KINDS)

    def attention_pattern(self) -> str:
        """Human summary: 'full', 'sliding 4096', '21 sliding 4096 + 21 full', '36 gated_deltanet + 12 full'."""
        counts: dict[str, int] = {}
        for t in self.layer_types:
            counts[t] = counts.get(t, 0) + 1
        if not counts:
            return "full"
        size = {"sliding": self.sliding_window, "chunked": self.attention_chunk}
        names = {k: f"{k} {size[k]}" if size.get(k) else k for k in counts}
        if self.mla is not None:
            names["full"] = "full (MLA latent)"
        if self.ssm is not None:
            names["ssm"] = f"{self.ssm.kind}"
        if BIDIRECTIONAL in names:
            names[BIDIRECTIONAL] = "bidirectional (encoder-only, no KV cache)"
        if MLP_ONLY in names:
            names[MLP_ONLY] = "MLP-only"
        if len(counts) == 1:
            (kind,) = counts
            text = names[kind]
        else:
            order = ("ssm", "sliding", "chunked", "full", MLP_ONLY)
            text = " + ".join(f"{counts[k]} {names[k]}" for k in order if k in counts)
        if self.ssm is not None and "ssm" not in counts:
            text += f" ∥ {self.ssm.num_layers} {self.ssm.kind} (parallel hybrid)"
        return text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["architectures"] = list(self.architectures)
        d["layer_types"] = list(self.layer_types)
        d["towers"] = list(self.towers)
        d["attention_pattern"] = self.attention_pattern()
        return d


def _transformers_config(config: dict) -> Any | None:
    """The transformers config object for this dict, or None when the type is unknown to it."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        return None
    warm_up()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        return None
    try:
        cls = CONFIG_MAPPING[model_type]
        kwargs = {k: v for k, v in config.items() if k != "model_type"}
        with warnings.catch_warnings():  # deprecation notes about the config's fields: not the user's
            warnings.simplefilter("ignore")
            return cls(**kwargs)
    except Exception:  # a config transformers rejects is still readable as a raw dict
        return None


def _live_config(config: dict) -> tuple[Any | None, str]:
    hf = _transformers_config(config)
    if hf is None:
        return None, RAW_NORMALISED
    import transformers

    return hf, f"transformers {transformers.__version__} {type(hf).__name__}"


def _table_config(config: dict, table: dict) -> tuple[Any | None, str]:
    hf = config_view.view(config, table)
    if hf is None:
        return None, RAW_NORMALISED
    return hf, f"transformers {table['transformers']} {hf.class_name}"


def _text_part(config: dict) -> tuple[dict, str | None]:
    for key in ("text_config", "language_config", "llm_config", "thinker_config"):
        sub = config.get(key)
        if isinstance(sub, dict) and sub:
            return sub, key
    return config, None


def parse_architecture(config: dict) -> Architecture:
    """Normalise a config.json dict. Raises MalformedConfigError when a required field is missing or
    a field holds a value no model has (hubmem.model.config_check).

    The config is read as transformers' class for its `model_type` reads it: through the generated
    table of those classes when it matches the installed transformers (no import, `config_table.py`),
    else, or when the config needs a field only the class itself derives, through transformers."""
    check_config(config)
    table = usable_table()
    if table is not None:
        try:
            return _parse(config, *_table_config(config, table))
        except config_view.NeedsTransformers:
            pass
    return _parse(config, *_live_config(config))


def _parse(config: dict, hf: Any | None, normalised_by: str) -> Architecture:
    raw_text, text_key = _text_part(config)
    view: Any = hf.get_text_config() if hf is not None else raw_text

    def need(key: str) -> int:
        # A top-level config must state its core dimensions: transformers' class defaults
        # (LlamaConfig's hidden_size=4096, ...) would otherwise hide a broken config. Nested
        # multimodal text configs legitimately lean on those defaults.
        value = _first(raw_text, ALIASES[key])
        if value is None and (text_key is not None or key == "vocab_size"):
            value = _first(view, ALIASES[key])
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            names = ", ".join(ALIASES[key])
            raise MalformedConfigError(f"config.json lacks a usable {key} (looked for: {names})")
        return value

    hidden = need("hidden_size")
    layers = need("num_layers")
    vocab = need("vocab_size")
    model_type = str(_first(raw_text, ("model_type",)) or config.get("model_type") or "unknown")
    encoder_decoder = encoder_of(view, raw_text, model_type)
    decoder = encoder_decoder[1] if encoder_decoder else {}
    layers = decoder.get("num_layers", layers)
    layer_types, window = layer_pattern(view, raw_text, layers)
    # SSM-only models (Mamba) have no attention heads at all.
    heads = 0 if model_type in SSM_ONLY_TYPES else decoder.get("num_heads") or need("num_heads")

    kv_heads = _first(view, ALIASES["num_kv_heads"]) or _first(raw_text, ALIASES["num_kv_heads"])
    multi_query = _first(raw_text, ("multi_query",)) or _first(view, ("multi_query",))
    if kv_heads is None and multi_query and not raw_text.get("new_decoder_architecture"):
        kv_heads = 1  # Falcon-7B / GPT-BigCode multi-query attention: one K/V head
    if model_type == "falcon" and not raw_text.get("new_decoder_architecture") and multi_query:
        kv_heads = 1  # FalconConfig fills num_kv_heads with num_attention_heads; the model uses 1
    kv_heads = int(kv_heads or heads) if heads else 0

    head_dim = (
        _first(view, ("head_dim",)) or _first(raw_text, ("head_dim",)) or (hidden // heads if heads else 0)
    )
    head_dim = decoder.get("head_dim", head_dim)
    mla = mla_of(view, raw_text)
    if mla is not None:  # DeepseekV3Config.head_dim is the RoPE part only; queries/keys use nope + rope
        head_dim = mla.qk_head_dim
    intermediate = _first(view, ALIASES["intermediate_size"]) or _first(
        raw_text, ALIASES["intermediate_size"]
    )
    intermediate = decoder.get("intermediate_size") or int(intermediate or 4 * hidden)  # GPT-2, BLOOM: 4h
    max_context = (
        decoder.get("max_context")
        or _first(view, ALIASES["max_context"])
        or _first(raw_text, ALIASES["max_context"])
    )

    tie = _first(raw_text, ("tie_word_embeddings",))
    if tie is None:
        tie = _first(config, ("tie_word_embeddings",))
    if tie is None:
        tie = bool(getattr(view, "tie_word_embeddings", True)) if hf is not None else True
    dtype = _first(raw_text, ("torch_dtype", "dtype")) or _first(config, ("torch_dtype", "dtype"))

    hidden_act = str(_first(raw_text, ("hidden_act", "activation_function", "hidden_activation")) or "")
    # T5 v1.1 / flan-t5: feed_forward_proj "gated-gelu" (DenseGatedActDense: wi_0, wi_1, wo)
    gated_ff = str(raw_text.get("feed_forward_proj") or "").startswith("gated")
    gated = model_type in GATED_MLP_TYPES or "glu" in hidden_act.lower() or gated_ff

    return Architecture(
        model_type=model_type,
        architectures=tuple(config.get("architectures") or raw_text.get("architectures") or ()),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=int(head_dim),
        max_context=int(max_context) if isinstance(max_context, int) else None,
        vocab_size=vocab,
        tie_word_embeddings=bool(tie),
        dtype=str(dtype) if dtype else None,
        gated_mlp=gated,
        layer_types=layer_types,
        sliding_window=window,
        learned_positions=model_type in LEARNED_POSITION_TYPES,
        text_config_key=text_key,
        normalised_by=normalised_by,
        attention_chunk=_chunk_size(view, raw_text, layer_types),
        mla=mla,
        ssm=ssm_of(view, raw_text, model_type, layer_types, hidden),
        encoder=encoder_decoder[0] if encoder_decoder else None,
        towers=towers_of(config),
        moe=parse_moe(raw_text, layers, intermediate),
    )


def _chunk_size(view: Any, raw: dict, kinds: tuple[str, ...]) -> int | None:
    if "chunked" not in kinds:
        return None
    size = _first(raw, ("attention_chunk_size",)) or _first(view, ("attention_chunk_size",))
    if not isinstance(size, int) or size <= 0:
        raise MalformedConfigError(
            "config.json has chunked attention layers but no usable attention_chunk_size"
        )
    return size


def refine_with_counts(arch: Architecture, mlp_params: int | None) -> Architecture:
    """Decide gated vs plain MLP from the checkpoint's own MLP parameter count when available.

    A gated MLP holds 3·h·i weights per layer, a plain one 2·h·i (+ biases).
    """
    if not mlp_params:
        return arch
    layers = arch.num_layers + (
        arch.encoder.num_layers if arch.encoder else 0
    )  # T5/BART/Whisper: both stacks
    per_layer_hi = mlp_params / (layers * arch.hidden_size * arch.intermediate_size)
    gated = per_layer_hi > 2.5
    if gated == arch.gated_mlp:
        return arch
    from dataclasses import replace

    return replace(arch, gated_mlp=gated)
