"""KV bytes per token (and SSM state per sequence) equal vLLM's per-spec page sizes, for every
config in shared/reference/configs.

The reference below is written from vLLM's own code and reads the raw config.json, not hubmem:

- `ModelConfig.get_head_size`: MLA -> kv_lora_rank + qk_rope_head_dim; else `head_dim` when the
  config has one; else hidden_size // num_attention_heads (vllm/config/model.py).
- `ModelConfig.get_total_num_kv_heads`: Falcon with `new_decoder_architecture` -> num_kv_heads;
  `multi_query` (Falcon-7B, GPT-BigCode) -> 1; else the first of n_head_kv, num_kv_heads,
  num_key_value_heads, multi_query_group_num; else num_attention_heads. MLA -> 1.
- page size per token (kv_cache_interface.py): FullAttentionSpec / SlidingWindowSpec 2 · k · d · e,
  MLAAttentionSpec k · d · e (no ×2), summed over the layers that have attention.
- MambaSpec: Σ prod(shape) · e over (conv, temporal) from mamba_utils.MambaStateShapeCalculator.

Encoder-only models (BERT) have no KV cache in vLLM: their layers get an `EncoderOnlyAttentionSpec`,
whose `max_memory_usage_bytes` is 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hubmem.memory import inference as memory
from hubmem.model.architecture import parse_architecture

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
E = 2  # bytes per element: bf16

# The configs of the project's reference set (shared/reference/configs, MANIFEST.csv: 34 files + 5 in
# nonverbatim/), each kept in this repo byte for byte: fixtures/repos/<name>/config.json where the model
# has a fixture repo, else fixtures/configs/<name>.json (sources in fixtures/configs/README.md).
REFERENCE_CONFIGS = (
    "EleutherAI__pythia-410m", "Qwen__Qwen2.5-72B", "Qwen__Qwen2.5-7B-Instruct", "Qwen__Qwen2.5-7B",
    "Qwen__Qwen3-235B-A22B", "Qwen__Qwen3-30B-A3B", "Qwen__Qwen3-32B", "Qwen__Qwen3-8B",
    "Qwen__Qwen3-Next-80B-A3B-Instruct", "TinyLlama__TinyLlama-1.1B-Chat-v1.0", "baidu__ERNIE-4.5-21B-A3B-Thinking",
    "bigscience__bloomz-560m", "deepseek-ai__DeepSeek-V3", "google-bert__bert-large-uncased", "google-t5__t5-small",
    "google__flan-t5-base", "meta-llama__Llama-2-13b-hf", "meta-llama__Llama-2-70b-hf", "meta-llama__Llama-2-7b-hf",
    "meta-llama__Llama-3.1-405B", "meta-llama__Llama-3.1-70B", "meta-llama__Llama-3.1-8B",
    "meta-llama__Llama-3.2-1B-Instruct", "meta-llama__Llama-3.2-1B", "microsoft__Phi-3-mini-128k-instruct",
    "microsoft__phi-2", "mistralai__Magistral-Small-2509", "mistralai__Mistral-7B-v0.1", "mistralai__Mixtral-8x7B-v0.1",
    "openai-community__gpt2-large", "openai-community__gpt2", "openai__gpt-oss-120b", "openai__gpt-oss-20b",
    "openai__whisper-small", "tiiuae__falcon-40b",
    # nonverbatim/ in the reference set (third-party re-saves or older revisions, see the README)
    "bigcode__starcoder", "codellama__CodeLlama-34b-hf", "google__gemma-2-9b", "state-spaces__mamba-130m-hf",
    "tiiuae__falcon-7b",
)  # fmt: skip


def config_path(name: str) -> Path:
    repo = FIXTURES / "repos" / name / "config.json"
    return repo if repo.is_file() else FIXTURES / "configs" / f"{name}.json"


def reference_configs() -> list:
    return [pytest.param(config_path(name), id=name) for name in REFERENCE_CONFIGS]


def test_every_reference_config_is_in_the_repo():
    assert len(set(REFERENCE_CONFIGS)) == 40
    missing = [name for name in REFERENCE_CONFIGS if not config_path(name).is_file()]
    assert missing == []


def _get(c: dict, *names: str):
    for name in names:
        if c.get(name) is not None:
            return c[name]
    return None


def vllm_attention_layers(c: dict) -> int:
    """Decoder layers that own an attention KV cache (the rest are Mamba / linear attention)."""
    model_type = c.get("model_type")
    if model_type == "mamba":
        return 0
    if model_type == "bert" and not c.get("is_decoder"):  # BertModel / BertFor*: EncoderOnlyAttentionSpec
        return 0
    if model_type == "t5":
        return _get(c, "num_decoder_layers", "num_layers")
    if model_type == "whisper":
        return c["decoder_layers"]
    layers = _get(c, "num_hidden_layers", "n_layer", "num_layers")
    if model_type == "qwen3_next":  # Qwen3NextConfig: full attention every full_attention_interval-th layer
        return sum(1 for i in range(layers) if (i + 1) % c["full_attention_interval"] == 0)
    return layers


def vllm_kv_bytes_per_token(c: dict) -> int:
    if not vllm_attention_layers(c):
        return 0
    if c.get("kv_lora_rank"):  # MLAAttentionSpec: num_kv_heads 1, head_size = latent + rope
        return vllm_attention_layers(c) * (c["kv_lora_rank"] + c["qk_rope_head_dim"]) * E
    heads = _get(c, "num_attention_heads", "n_head", "num_heads", "decoder_attention_heads")
    hidden = _get(c, "hidden_size", "n_embd", "n_embed", "d_model")
    if c.get("model_type") == "t5":
        head_size = c["d_kv"]
    else:
        head_size = c.get("head_dim") or hidden // heads
    falcon = c.get("model_type") in ("falcon", "RefinedWeb", "RefinedWebModel")
    if falcon and c.get("new_decoder_architecture"):
        kv_heads = c["num_kv_heads"]
    elif c.get("multi_query"):
        kv_heads = 1
    else:
        kv_heads = (
            _get(c, "n_head_kv", "num_kv_heads", "num_key_value_heads", "multi_query_group_num") or heads
        )
    return vllm_attention_layers(c) * 2 * kv_heads * head_size * E


def vllm_state_bytes_per_sequence(c: dict) -> int:
    """MambaSpec.page_size_bytes × SSM layers, TP 1, model dtype bf16."""
    model_type = c.get("model_type")
    if model_type == "mamba":  # mamba1_state_shape(intermediate_size, state_size, conv_kernel)
        i, n, k = c["intermediate_size"], c["state_size"], c["conv_kernel"]
        per_layer = i * (k - 1) + i * n
        return c["num_hidden_layers"] * per_layer * E
    if model_type == "qwen3_next":  # gated_delta_net_state_shape
        kh, vh = c["linear_num_key_heads"], c["linear_num_value_heads"]
        kd, vd, k = c["linear_key_head_dim"], c["linear_value_head_dim"], c["linear_conv_kernel_dim"]
        conv_dim = kd * kh * 2 + vd * vh
        per_layer = conv_dim * (k - 1) + vh * vd * kd
        return (c["num_hidden_layers"] - vllm_attention_layers(c)) * per_layer * E
    return 0


@pytest.mark.parametrize("path", reference_configs())
def test_kv_bytes_per_token_equal_vllm_page_sizes(path):
    raw = json.loads(path.read_text())
    arch = parse_architecture(raw)
    text = raw.get("text_config", raw)
    assert memory.kv_bytes_per_token(arch, E) == vllm_kv_bytes_per_token(text)
    conv, temporal = E, E
    assert memory.state_bytes_per_sequence(arch, conv, temporal) == vllm_state_bytes_per_sequence(text)


def test_the_reference_covers_full_sliding_mla_mamba_linear_attention_and_encoder_only():
    kinds = set()
    for param in reference_configs():
        (path,) = param.values
        arch = parse_architecture(json.loads(path.read_text()))
        kinds |= set(arch.layer_types)
        kinds |= {"mla"} if arch.mla else set()
        kinds |= {arch.ssm.kind} if arch.ssm else set()
        kinds |= {"encoder-decoder"} if arch.encoder else set()
    assert kinds >= {
        "full",
        "sliding",
        "ssm",
        "mla",
        "mamba1",
        "gated_deltanet",
        "encoder-decoder",
        "bidirectional",
    }
