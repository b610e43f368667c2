"""Architecture variants read from config.json: per-layer attention kinds, MLA, SSM state, encoders.

Each reader takes the transformers config object (`view`, which resolves aliases and defaults) or
the raw text-config dict, and returns a small frozen dataclass or None. Nothing is executed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubmem.errors import MalformedConfigError

ATTENTION_KINDS = ("full", "sliding", "chunked")
MLP_ONLY = "mlp"  # a layer with neither attention nor a mixer (Nemotron-H `-` / `E` layers)

# transformers' `layer_types` names -> hubmem kinds. Falcon-H1's "hybrid" layers run attention and
# a Mamba2 mixer in parallel: the attention part is a full layer, the mixer is counted in `SSM`.
_LAYER_KIND = {
    "full_attention": "full",
    "attention": "full",
    "global": "full",
    "hybrid": "full",
    "sliding_attention": "sliding",
    "sliding": "sliding",
    "local": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "ssm",
    "mamba": "ssm",
    "mamba2": "ssm",
    "mlp": MLP_ONLY,  # Nemotron-H: a layer that is only an MLP (or MoE) block
    "moe": MLP_ONLY,
}
# Models made of SSM mixers only (no attention, no MLP).
SSM_ONLY_TYPES = frozenset({"mamba", "mamba2", "falcon_mamba"})
# Encoder-only families (bidirectional attention over the whole input, nothing cached between
# steps): vLLM gives their layers an `EncoderOnlyAttentionSpec`, whose `max_memory_usage_bytes` is 0
# ("Encoder-only layers do not need KV cache", vllm/v1/kv_cache_interface.py).
ENCODER_ONLY_TYPES = frozenset(
    {
        "bert", "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "deberta", "deberta-v2",
        "distilbert", "electra", "albert", "mpnet", "modernbert", "nomic_bert", "megatron-bert",
        "ernie", "roberta-prelayernorm", "data2vec-text",
    }
)  # fmt: skip
# Layer kind of an encoder-only model: attention without a KV cache.
BIDIRECTIONAL = "bidirectional"


def is_encoder_only(raw: dict) -> bool:
    """A BERT-family config used as an encoder (BertModel, *ForMaskedLM, *ForSequenceClassification...).

    The same families can be configured as decoders (`is_decoder: true`, BertLMHeadModel /
    RobertaForCausalLM): those keep a KV cache like any causal model.
    """
    if raw.get("model_type") not in ENCODER_ONLY_TYPES or raw.get("is_decoder"):
        return False
    return not any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in raw.get("architectures") or ())


def first(source: Any, names: tuple[str, ...]) -> Any:
    """The first of `names` that `source` (a dict or a config object) sets to a non-None value."""
    for name in names:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        if value is not None:
            return value
    return None


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for x in shape:
        n *= x
    return n


@dataclass(frozen=True)
class MLA:
    """DeepSeek V2/V3 multi-head latent attention (DeepSeek-V2 paper §2.1.2)."""

    kv_lora_rank: int  # the compressed latent c_KV cached per token
    qk_rope_head_dim: int  # the decoupled RoPE key k^R, also cached per token
    qk_nope_head_dim: int
    v_head_dim: int
    q_lora_rank: int | None

    @property
    def qk_head_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim


@dataclass(frozen=True)
class SSM:
    """Recurrent state of the Mamba / linear-attention layers, shaped as vLLM allocates it.

    Shapes are those of vLLM `MambaStateShapeCalculator` (model_executor/layers/mamba/mamba_utils.py)
    at tensor-parallel size 1: one conv state and one temporal (SSM / recurrent) state per layer
    and sequence, independent of the sequence length.
    """

    kind: str  # "mamba1" | "mamba2" | "gated_deltanet"
    num_layers: int  # layers that hold this state
    conv_state: tuple[int, ...]
    temporal_state: tuple[int, ...]
    in_proj_width: int  # width of the mixer's input projection (activations)
    inner: int  # width of the scan output before out_proj (activations)

    @property
    def conv_elements(self) -> int:
        return _prod(self.conv_state)

    @property
    def temporal_elements(self) -> int:
        return _prod(self.temporal_state)


@dataclass(frozen=True)
class Encoder:
    """The encoder of an encoder-decoder model (T5, BART, Whisper); the Architecture is the decoder."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    head_dim: int
    source_len: int | None  # the model's natural encoder length (Whisper 1500 frames), if it has one
    source_len_from: str  # the config field it came from


def layer_pattern(view: Any, raw: dict, layers: int) -> tuple[tuple[str, ...], int | None]:
    """Per-layer kinds ("full", "sliding", "chunked", "ssm", "bidirectional") and the sliding window size.

    Precedence: an explicit `layer_types` list (transformers computes it for Gemma 2/3, Qwen2,
    Llama 4, Jamba, Qwen3-Next, Falcon-H1, Mamba, ...); else the raw config's own pattern fields
    (`_raw_layer_kinds`); else `sliding_window` applied to every layer (Mistral-7B-v0.1) unless
    `use_sliding_window` is false (Qwen2 ships a window it does not use).
    """
    if is_encoder_only(raw):
        return (BIDIRECTIONAL,) * layers, None
    window = first(view, ("sliding_window",)) or first(raw, ("sliding_window",))
    types = first(view, ("layer_types",)) or first(raw, ("layer_types",))
    kinds: tuple[str, ...] | None
    if isinstance(types, (list, tuple)) and len(types) == layers:
        kinds = tuple(_kind(t) for t in types)
    else:
        kinds = _raw_layer_kinds(raw, layers)
    if kinds is not None:
        return kinds, int(window) if window and "sliding" in kinds else None
    use = first(raw, ("use_sliding_window",))
    if isinstance(window, int) and window > 0 and use is not False:
        return ("sliding",) * layers, int(window)
    return ("full",) * layers, None


def _kind(name: Any) -> str:
    text = str(name)
    if text in _LAYER_KIND:
        return _LAYER_KIND[text]
    return "sliding" if "sliding" in text or "local" in text else "full"


def _raw_layer_kinds(raw: dict, layers: int) -> tuple[str, ...] | None:
    """Layer kinds from the pattern fields configs carry when no `layer_types` list is given.

    - Mamba / Mamba2: every layer is an SSM mixer.
    - Gemma 3 `sliding_window_pattern` P: layer i is global when (i + 1) % P == 0, else local
      (transformers Gemma3TextConfig: 5 local : 1 global for P = 6).
    - Jamba `attn_layer_period` / `attn_layer_offset`: attention when i % period == offset,
      Mamba otherwise (transformers JambaConfig.layers_block_type).
    - Qwen3-Next `full_attention_interval` N: full attention when (i + 1) % N == 0, gated DeltaNet
      otherwise (transformers Qwen3NextConfig).
    - Nemotron-H `hybrid_override_pattern`: one character per layer, M Mamba2, * attention,
      - MLP, E MoE (transformers NemotronHConfig.layers_block_type).
    - Llama 4 `no_rope_layers`: 1 = RoPE layer with chunked local attention, 0 = NoPE global layer;
      absent, every `no_rope_layer_interval`-th (default 4) layer is NoPE (transformers
      Llama4TextConfig; chunking applies only with `attention_chunk_size`).
    """
    model_type = raw.get("model_type")
    if model_type in SSM_ONLY_TYPES:
        return ("ssm",) * layers
    hybrid = raw.get("hybrid_override_pattern")
    if isinstance(hybrid, str) and len(hybrid) == layers:  # Nemotron-H: M mamba2, * attention, - MLP, E MoE
        kinds = {"M": "ssm", "*": "full", "-": MLP_ONLY, "E": MLP_ONLY}
        if set(hybrid) <= set(kinds):
            return tuple(kinds[c] for c in hybrid)
    pattern = raw.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 0 and raw.get("sliding_window"):
        return tuple("full" if (i + 1) % pattern == 0 else "sliding" for i in range(layers))
    period, offset = raw.get("attn_layer_period"), raw.get("attn_layer_offset")
    if isinstance(period, int) and isinstance(offset, int) and period > 0:
        return tuple("full" if i % period == offset else "ssm" for i in range(layers))
    interval = raw.get("full_attention_interval")
    if isinstance(interval, int) and interval > 0 and model_type == "qwen3_next":
        return tuple("full" if (i + 1) % interval == 0 else "ssm" for i in range(layers))
    if raw.get("attention_chunk_size"):
        no_rope = raw.get("no_rope_layers")
        if not (isinstance(no_rope, list) and len(no_rope) == layers):
            # Llama4TextConfig default: no_rope_layer_interval 4, every 4th layer is NoPE
            interval = raw.get("no_rope_layer_interval") or 4
            no_rope = [int((i + 1) % interval != 0) for i in range(layers)]
        return tuple("chunked" if flag else "full" for flag in no_rope)
    return None


def mla_of(view: Any, raw: dict) -> MLA | None:
    """DeepSeek V2/V3 latent attention dimensions, when the config has a `kv_lora_rank`."""
    rank = first(view, ("kv_lora_rank",)) or first(raw, ("kv_lora_rank",))
    if not rank:
        return None

    def dim(name: str) -> int:
        value = first(raw, (name,)) or first(view, (name,))
        if not isinstance(value, int) or value <= 0:
            raise MalformedConfigError(f"config.json has kv_lora_rank but no usable {name}")
        return value

    q_rank = first(raw, ("q_lora_rank",))
    return MLA(
        kv_lora_rank=int(rank),
        qk_rope_head_dim=dim("qk_rope_head_dim"),
        qk_nope_head_dim=dim("qk_nope_head_dim"),
        v_head_dim=dim("v_head_dim"),
        q_lora_rank=int(q_rank) if q_rank else None,
    )


def ssm_of(view: Any, raw: dict, model_type: str, kinds: tuple[str, ...], hidden: int) -> SSM | None:
    """The recurrent state of the model's SSM / linear-attention layers (vLLM shapes at TP = 1).

    The dimensions each model passes to `MambaStateShapeCalculator` are those of its vLLM model file
    (vllm/model_executor/models/{mamba,jamba,mamba2,falcon_h1,qwen3_next}.py). Conv states use
    vLLM's default "SD" layout (state_len, dim); the byte count does not depend on the layout.
    """

    def get(*names: str) -> Any:
        value = first(raw, names)
        value = first(view, names) if value is None else value
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise MalformedConfigError(f"config.json has {model_type} SSM layers but no usable {names[0]}")
        return value

    ssm_layers = sum(1 for k in kinds if k == "ssm")
    if model_type in ("mamba", "falcon_mamba", "jamba"):
        if model_type == "jamba":  # JambaMambaMixer: intermediate = mamba_expand · hidden
            inner, state, kernel = (
                int(get("mamba_expand") * hidden),
                get("mamba_d_state"),
                get("mamba_d_conv"),
            )
        else:  # MambaMixer(intermediate_size=config.intermediate_size, state_size, conv_kernel)
            inner, state, kernel = get("intermediate_size"), get("state_size"), get("conv_kernel")
        # mamba1_state_shape: conv (conv_kernel - 1, intermediate), temporal (intermediate, state_size)
        return SSM("mamba1", ssm_layers, (kernel - 1, inner), (inner, state), 2 * inner, inner)
    if model_type in ("mamba2", "falcon_h1", "nemotron_h"):
        if model_type == "nemotron_h":  # vLLM NemotronHMambaDecoderLayer: MambaMixer2(intermediate_size=
            # mamba_num_heads · mamba_head_dim, n_groups, num_heads=mamba_num_heads, head_dim=mamba_head_dim)
            heads, head_dim, groups = get("mamba_num_heads"), get("mamba_head_dim"), get("n_groups")
            inner, state, kernel = heads * head_dim, get("ssm_state_size"), get("conv_kernel")
        elif model_type == "falcon_h1":  # FalconH1SSMDecoderLayer: d_ssm or mamba_expand · hidden
            d_ssm = first(raw, ("mamba_d_ssm",)) or first(view, ("mamba_d_ssm",))
            inner = d_ssm or int(get("mamba_expand") * hidden)
            groups, heads, head_dim = get("mamba_n_groups"), get("mamba_n_heads"), get("mamba_d_head")
            state, kernel = get("mamba_d_state"), get("mamba_d_conv")
            ssm_layers = len(kinds)  # parallel hybrid: every layer also runs a Mamba2 mixer
        else:  # Mamba2Mixer: intermediate = getattr(config, "intermediate_size", expand · hidden)
            inner = first(raw, ("intermediate_size",)) or first(view, ("intermediate_size",))
            inner = inner or int(get("expand") * hidden)
            groups, heads, head_dim = get("n_groups"), get("num_heads"), get("head_dim")
            state, kernel = get("state_size"), get("conv_kernel")
        # mamba2_state_shape: conv (conv_kernel - 1, intermediate + 2·n_groups·state_size),
        # temporal (num_heads, head_dim, state_size)
        conv_dim = inner + 2 * groups * state
        return SSM(
            "mamba2",
            ssm_layers,
            (kernel - 1, conv_dim),
            (heads, head_dim, state),
            conv_dim + inner + heads,
            inner,
        )
    if model_type == "qwen3_next":
        k_heads, v_heads = get("linear_num_key_heads"), get("linear_num_value_heads")
        k_dim, v_dim, kernel = (
            get("linear_key_head_dim"),
            get("linear_value_head_dim"),
            get("linear_conv_kernel_dim"),
        )
        # gated_delta_net_state_shape: conv (conv_kernel - 1, 2·k_heads·k_dim + v_heads·v_dim),
        # temporal (v_heads, v_dim, k_dim)
        conv_dim = 2 * k_heads * k_dim + v_heads * v_dim
        # Qwen3NextGatedDeltaNet in_proj_qkvz + in_proj_ba: q, k, v, z and the b, a gates per v-head
        in_proj = conv_dim + v_heads * v_dim + 2 * v_heads
        return SSM(
            "gated_deltanet",
            ssm_layers,
            (kernel - 1, conv_dim),
            (v_heads, v_dim, k_dim),
            in_proj,
            v_heads * v_dim,
        )
    if ssm_layers:
        raise MalformedConfigError(
            f"config.json has {ssm_layers} SSM / linear-attention layers of a kind hubmem does not know "
            f"(model_type '{model_type}')"
        )
    return None


def encoder_of(view: Any, raw: dict, model_type: str) -> tuple[Encoder, dict[str, int]] | None:
    """The encoder of an encoder-decoder model, and the decoder's own dimensions.

    T5: `num_layers` is the encoder, `num_decoder_layers` the decoder (default: the same), both with
    `num_heads` heads of `d_kv`; no learned positions, `n_positions` (512) is the length the model
    was trained with. BART / Whisper: `encoder_*` and `decoder_*` fields; the encoder length is
    `max_position_embeddings` (BART, 1024) or `max_source_positions` (Whisper: 1500 frames = 30 s).
    """
    if not (raw.get("is_encoder_decoder") or first(view, ("is_encoder_decoder",))):
        return None
    hidden = first(raw, ("d_model", "hidden_size"))
    if not isinstance(hidden, int):
        return None

    def dim(name: str, value: Any, low: int = 1) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise MalformedConfigError(f"config.json of an encoder-decoder model lacks a usable {name}")
        return value

    if raw.get("d_kv") is not None or model_type in ("t5", "mt5", "umt5"):
        heads, head_dim = dim("num_heads", first(raw, ("num_heads",))), dim("d_kv", first(raw, ("d_kv",)))
        enc_layers = dim("num_layers", first(raw, ("num_layers",)))
        dec_layers = dim("num_decoder_layers", first(raw, ("num_decoder_layers",)) or enc_layers)
        ffn = dim("d_ff", first(raw, ("d_ff",)))
        enc = Encoder(enc_layers, hidden, ffn, heads, head_dim, raw.get("n_positions"), "n_positions")
        return enc, {
            "num_layers": dec_layers,
            "num_heads": heads,
            "head_dim": head_dim,
            "intermediate_size": ffn,
        }
    enc_heads, dec_heads = first(raw, ("encoder_attention_heads",)), first(raw, ("decoder_attention_heads",))
    enc_layers, dec_layers = first(raw, ("encoder_layers",)), first(raw, ("decoder_layers",))
    if not all(isinstance(x, int) for x in (enc_heads, dec_heads, enc_layers, dec_layers)):
        return None
    enc_heads, dec_heads = (
        dim("encoder_attention_heads", enc_heads),
        dim("decoder_attention_heads", dec_heads),
    )
    enc_layers, dec_layers = dim("encoder_layers", enc_layers, 0), dim("decoder_layers", dec_layers)
    source_field = "max_source_positions" if "max_source_positions" in raw else "max_position_embeddings"
    enc = Encoder(
        enc_layers,
        hidden,
        first(raw, ("encoder_ffn_dim",)) or 4 * hidden,
        enc_heads,
        hidden // enc_heads,
        raw.get(source_field),
        source_field,
    )
    dec = {
        "num_layers": dec_layers,
        "num_heads": dec_heads,
        "head_dim": hidden // dec_heads,
        "intermediate_size": first(raw, ("decoder_ffn_dim",)) or 4 * hidden,
    }
    if "max_target_positions" in raw:
        dec["max_context"] = raw["max_target_positions"]
    return enc, dec


def towers_of(config: dict) -> tuple[str, ...]:
    """Non-text towers of a multimodal config (their weights are counted; KV comes from the LM)."""
    found = []
    for key, name in (("vision_config", "vision"), ("audio_config", "audio")):
        if isinstance(config.get(key), dict):
            found.append(name)
    return tuple(found)
