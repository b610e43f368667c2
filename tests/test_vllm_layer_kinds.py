"""vLLM's KV pool per layer kind, hand-derived from the fixtures' config.json values and the rules of
vllm/v1/kv_cache_interface.py and kv_cache_utils.py (hubmem/runtimes/vllm.py cites them)."""

from __future__ import annotations

from hubmem.model.architecture import parse_architecture
from hubmem.runtimes import vllm as rt

from .helpers import config

BUDGET = 40 * 2**30


def groups(repo: str, **kw):
    arch = parse_architecture(config(repo))
    defaults = dict(tp=1, kv_bytes=2, kv_dtype="auto", state_bytes=(2, 2), block_size=16, batched=8192)
    defaults.update(kw)
    return arch, rt.kv_groups(arch, rt.layer_kinds(arch), **defaults)


def test_gemma2_sliding_and_full_layers_are_two_groups_of_21():
    """42 layers alternating sliding (window 4096) and full; 8 KV heads × head_dim 256 × 2 × 2 B = 8,192 B
    per token per layer; page = 16 × 8,192 = 131,072. Sliding at max_model_len 8,192 with 8,192 batched
    tokens: min(4095 + 8192, 8192) = 8,192 tokens -> 512 blocks + 1; full: 512 blocks."""
    _, gs = groups("google/gemma-2-9b", max_model_len=8192)
    assert [(g.kind, g.layers, g.page_bytes) for g in gs] == [("sliding", 21, 131_072), ("full", 21, 131_072)]
    blocks = rt.num_blocks(gs, BUDGET)
    assert blocks == BUDGET // 131_072 // 21
    assert rt.token_capacity(gs, blocks) == blocks // 2 * 16
    assert rt.max_concurrency(gs, blocks) == blocks / (513 + 512)


def test_gemma2_sliding_layers_cap_at_window_plus_batched_tokens_when_requests_are_long():
    """At max_model_len 8,192 but 1,024 batched tokens: sliding keeps min(4095 + 1024, 8192) = 5,119 tokens
    -> cdiv(5119, 16) + 1 = 321 blocks per request."""
    _, gs = groups("google/gemma-2-9b", max_model_len=8192, batched=1024)
    sliding = next(g for g in gs if g.kind == "sliding")
    assert sliding.max_bytes_per_request == 321 * 131_072


def test_deepseek_mla_keeps_one_latent_and_tp_does_not_split_it():
    """kv_lora_rank 512 + qk_rope_head_dim 64 = 576 × 2 B = 1,152 B per token per layer on every rank, at
    TP 1 and TP 8; 61 layers; FlashMLA block 64 -> page 73,728; fp8_ds_mla: 656 B per token."""
    for tp in (1, 8):
        _, (g,) = groups("deepseek-ai/DeepSeek-V3", tp=tp, block_size=64, max_model_len=163_840)
        assert (g.kind, g.layers, g.page_bytes) == ("mla", 61, 64 * 1_152)
        assert g.max_bytes_per_request == 163_840 // 64 * 64 * 1_152
    _, (g,) = groups(
        "deepseek-ai/DeepSeek-V3", kv_dtype="fp8_ds_mla", kv_bytes=1, block_size=64, max_model_len=4096
    )
    assert g.page_bytes == 64 * 656


def test_qwen3_next_hybrid_pads_the_deltanet_state_to_the_attention_page():
    """TP 4. Gated DeltaNet state per layer and rank: conv (16·128·2 + 32·128) / 4 × (4 − 1) = 6,144 and
    temporal 32/4 × 128 × 128 = 131,072 elements, × 2 B = 274,432 B. Full attention: max(1, 2 // 4) = 1 KV
    head × 256 × 2 × 2 B = 1,024 B per token, block raised to the multiple of 16 holding the state:
    cdiv(274,432, 1,024) = 268 -> 272 tokens, page 278,528; the state padded to it. 12 full + 36 DeltaNet
    layers: groups of 12 (one full, three DeltaNet)."""
    _, gs = groups("Qwen/Qwen3-Next-80B-A3B-Instruct", tp=4, max_model_len=262_144)
    assert sorted((g.kind, g.layers, g.page_bytes) for g in gs) == sorted(
        [("full", 12, 278_528)] + [("mamba", 12, 278_528)] * 3
    )
    full = next(g for g in gs if g.kind == "full")
    assert full.block_size == 272
    blocks = rt.num_blocks(gs, BUDGET)
    assert blocks == BUDGET // 278_528 // 12
    # _report_kv_cache_config: blocks // 4 groups × the smallest block size (272)
    assert rt.token_capacity(gs, blocks) == blocks // 4 * 272
    # one request: cdiv(262,144, 272) = 964 full-attention blocks + one state block per DeltaNet group
    assert rt.max_concurrency(gs, blocks) == blocks / (964 + 3)


def test_encoder_only_bert_has_no_kv_groups():
    _, gs = groups("google-bert/bert-large-uncased", max_model_len=512)
    assert gs == ()
