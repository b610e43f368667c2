"""Parameter counts estimated from config.json alone, for repos without safetensors headers.

Marked `exact=False` everywhere they are shown. Dense decoder layout (transformers' Llama/GPT-2
modules): per layer Q and O (h·a·d each), K and V (h·k·d each), MLP (3·h·i gated, 2·h·i plain),
two norms (h each); token embeddings V·h, learned positions n_ctx·h where the model has them,
final norm h, and an untied lm_head V·h. Biases are left out (< 0.1 % for these models).
Mixture of experts (hubmem.moe): an MoE layer holds E routed experts and the shared expert(s),
each an MLP of its own width, plus the router (E·h); the other layers a dense MLP.
"""

from __future__ import annotations

from .architecture import Architecture
from .checkpoint import CheckpointCounts


def estimate_counts(arch: Architecture) -> CheckpointCounts:
    h, i, L = arch.hidden_size, arch.intermediate_size, arch.num_layers
    q_out = arch.num_heads * arch.head_dim
    kv_out = arch.num_kv_heads * arch.head_dim
    attention = L * (2 * h * q_out + 2 * h * kv_out)
    mlp_mats = 3 if arch.gated_mlp else 2
    # (count of layers, MLP widths in the layer, router rows) per kind of layer
    kinds = [(L, [i], 0)]
    if arch.moe is not None:
        moe = arch.moe
        moe_layers = len(moe.moe_layers)
        shared = [moe.shared_intermediate_size] if moe.shared_intermediate_size else []
        kinds = [(moe_layers, [moe.expert_intermediate_size] * moe.num_experts + shared, moe.num_experts)]
        kinds.append((L - moe_layers, [moe.dense_intermediate_size], 0))
    mlp = sum(n * (mlp_mats * h * sum(widths) + router * h) for n, widths, router in kinds)
    norms = (2 * L + 1) * h
    embeddings = arch.vocab_size * h + (arch.max_context or 0) * h * arch.learned_positions
    lm_head = 0 if arch.tie_word_embeddings else arch.vocab_size * h
    parameters = attention + mlp + norms + embeddings + lm_head
    counts = CheckpointCounts(exact=False)
    counts.parameters = parameters
    counts.parameter_bytes = parameters * 2
    counts.by_component = {
        k: v
        for k, v in (
            ("embeddings", embeddings),
            ("attention", attention),
            ("mlp", mlp),
            ("norms", norms),
            ("lm_head", lm_head),
        )
        if v
    }
    counts.linear_params = attention + mlp
    if arch.moe is not None:
        moe = arch.moe
        counts.routed_expert_params = (
            len(moe.moe_layers) * moe.num_experts * mlp_mats * h * moe.expert_intermediate_size
        )
    # rows (output features) and input widths of each block Linear: q, k, v, o, then the MLPs.
    attention_shapes = [(q_out, h), (kv_out, h), (kv_out, h), (h, q_out)]
    for n, widths, router in kinds:
        shapes = attention_shapes + [(router, h)] * bool(router)
        for w in widths:
            shapes += [(w, h)] * (mlp_mats - 1) + [(h, w)]
        counts.linear_rows += n * sum(r for r, _ in shapes)
        counts.linear_groups_128 += n * sum(r * -(-c // 128) for r, c in shapes)
        counts.linear_blocks_128 += n * sum(-(-r // 128) * -(-c // 128) for r, c in shapes)
    counts.has_lm_head = not arch.tie_word_embeddings
    return counts
