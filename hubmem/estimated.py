"""Parameter counts estimated from config.json alone, for repos without safetensors headers.

Marked `exact=False` everywhere they are shown. Dense decoder layout (transformers' Llama/GPT-2
modules): per layer Q and O (h·a·d each), K and V (h·k·d each), MLP (3·h·i gated, 2·h·i plain),
two norms (h each); token embeddings V·h, learned positions n_ctx·h where the model has them,
final norm h, and an untied lm_head V·h. Biases are left out (< 0.1 % for these models).
"""

from __future__ import annotations

from .architecture import Architecture
from .checkpoint import CheckpointCounts


def estimate_counts(arch: Architecture) -> CheckpointCounts:
    h, i, L = arch.hidden_size, arch.intermediate_size, arch.num_layers
    q_out = arch.num_heads * arch.head_dim
    kv_out = arch.num_kv_heads * arch.head_dim
    attention = L * (2 * h * q_out + 2 * h * kv_out)
    mlp = L * (3 if arch.gated_mlp else 2) * h * i
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
    mlp_mats = 3 if arch.gated_mlp else 2
    # rows (output features) and input widths of each block Linear: q, k, v, o, then the MLP.
    shapes = [(q_out, h), (kv_out, h), (kv_out, h), (h, q_out)]
    shapes += [(i, h)] * (mlp_mats - 1) + [(h, i)]
    counts.linear_rows = L * sum(r for r, _ in shapes)
    counts.linear_groups_128 = L * sum(r * -(-c // 128) for r, c in shapes)
    counts.linear_blocks_128 = L * sum(-(-r // 128) * -(-c // 128) for r, c in shapes)
    counts.has_lm_head = not arch.tie_word_embeddings
    return counts
