"""Parameter counts estimated from config.json alone, for repos without safetensors headers.

Marked `exact=False` everywhere they are shown. Dense decoder layout (transformers' Llama/GPT-2
modules): per layer Q and O (h·a·d each), K and V (h·k·d each), MLP (3·h·i gated, 2·h·i plain),
two norms (h each); token embeddings V·h, learned positions n_ctx·h where the model has them,
final norm h, and an untied lm_head V·h. Biases are left out (< 0.1 % for these models).
Mixture of experts (hubmem.model.moe): an MoE layer holds E routed experts and the shared expert(s),
each an MLP of its own width, plus the router (E·h); the other layers a dense MLP.

Other layer kinds reuse the Architecture's specs (hubmem.model.variants):
- MLA (DeepSeek V2/V3 `DeepseekV3Attention`): q_a (h·r_q) + q_b (r_q·a·(nope+rope)), or q (h·a·(nope+rope))
  without a query LoRA; kv_a_proj_with_mqa h·(r_kv + rope); kv_b r_kv·a·(nope + v); o a·v·h; the
  q_a / kv_a RMSNorms (r_q + r_kv).
- SSM mixers replace attention in their layers (Mamba, Jamba, Qwen3-Next; Falcon-H1 runs both):
  in_proj h·in_proj_width, depthwise conv1d conv_dim·kernel, out_proj inner·h, plus per kind
  mamba1 (`MambaMixer`) x_proj inner·(r + 2n), dt_proj r·inner + inner, A_log inner·n, D and conv
  bias inner each, with r = ceil(h / 16) (transformers' and Jamba's default time_step_rank);
  mamba2 (`Mamba2Mixer`) conv bias conv_dim, dt_bias / A_log / D one per head, gated norm inner;
  gated_deltanet (`Qwen3NextGatedDeltaNet`) dt_bias / A_log one per value head, norm v_head_dim.
  SSM-only models (Mamba) have no MLP and one norm per layer; Nemotron-H layers hold one block
  each (Mamba2 mixer, attention or MLP) and one norm.
- Encoder-decoders (T5, BART, Whisper): the encoder's layers (self-attention, MLP, two norms)
  at the encoder's dimensions; each decoder layer adds a cross-attention block (4·h·a·d) and a
  third norm; learned encoder positions (source length · h) where the decoder has learned ones.
  Left out: T5's relative-position bias tables, Whisper's conv front end (80·h·3 + h·h·3), BART's
  learned positions (2 × (n + 2) · h; the Architecture does not mark them learned), biases.
"""

from __future__ import annotations

from hubmem.model.architecture import Architecture
from hubmem.model.tensors import CheckpointCounts
from hubmem.model.variants import MLP_ONLY, SSM_ONLY_TYPES


def _attention_shapes(arch: Architecture) -> list[tuple[int, int]]:
    """(rows, cols) of each Linear of one attention block: q, k, v, o or the MLA projections."""
    h = arch.hidden_size
    if arch.mla is None:
        q_out, kv_out = arch.num_heads * arch.head_dim, arch.num_kv_heads * arch.head_dim
        return [(q_out, h), (kv_out, h), (kv_out, h), (h, q_out)]
    m, a = arch.mla, arch.num_heads
    q = (
        [(m.q_lora_rank, h), (a * m.qk_head_dim, m.q_lora_rank)]
        if m.q_lora_rank
        else [(a * m.qk_head_dim, h)]
    )
    return q + [
        (m.kv_lora_rank + m.qk_rope_head_dim, h),  # kv_a_proj_with_mqa
        (a * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank),  # kv_b_proj
        (h, a * m.v_head_dim),  # o_proj
    ]


def _ssm_mixer(arch: Architecture) -> tuple[list[tuple[int, int]], int]:
    """(Linear shapes, other parameters) of one SSM / linear-attention mixer."""
    ssm, h = arch.ssm, arch.hidden_size
    assert ssm is not None  # only called for layers with a mixer
    kernel, conv_dim = ssm.conv_state[0] + 1, ssm.conv_state[1]
    shapes = [(ssm.in_proj_width, h), (h, ssm.inner)]  # in_proj, out_proj
    conv = conv_dim * kernel
    if ssm.kind == "mamba1":
        inner, n = ssm.temporal_state
        rank = -(-h // 16)
        shapes += [(rank + 2 * n, inner), (inner, rank)]  # x_proj, dt_proj
        return shapes, conv + inner + inner + inner * n + inner  # conv bias, dt bias, A_log, D
    if ssm.kind == "mamba2":
        heads = ssm.temporal_state[0]
        return shapes, conv + conv_dim + 3 * heads + ssm.inner  # conv bias, dt_bias, A_log, D, norm
    v_heads, v_dim = ssm.temporal_state[0], ssm.temporal_state[1]
    return shapes, conv + 2 * v_heads + v_dim  # gated_deltanet: dt_bias, A_log, norm


def _mlp_shapes(h: int, width: int, mats: int) -> list[tuple[int, int]]:
    return [(width, h)] * (mats - 1) + [(h, width)]


def estimate_counts(arch: Architecture) -> CheckpointCounts:
    h, i, L = arch.hidden_size, arch.intermediate_size, arch.num_layers
    mlp_mats = 3 if arch.gated_mlp else 2
    kinds = arch.layer_types or ("full",) * L
    attention_layers = sum(1 for k in kinds if k not in ("ssm", MLP_ONLY)) if arch.num_heads else 0
    # Nemotron-H: each layer is one block (mixer, attention or MLP) with one norm
    one_block_layers = MLP_ONLY in kinds
    mlp_layers = kinds.count(MLP_ONLY) if one_block_layers else L
    attn_shapes = _attention_shapes(arch) if attention_layers else []
    # (component, count of layers, Linear (rows, cols) shapes, other parameters) per kind of block
    blocks = [("attention", attention_layers, attn_shapes, 0)]
    if arch.ssm is not None:
        blocks.append(("ssm", arch.ssm.num_layers, *_ssm_mixer(arch)))
    # (count of layers, MLP widths in the layer, router rows) per kind of layer
    mlps = [] if arch.model_type in SSM_ONLY_TYPES else [(mlp_layers, [i], 0)]
    if arch.moe is not None:
        moe = arch.moe
        moe_layers = len(moe.moe_layers)
        shared = [moe.shared_intermediate_size] if moe.shared_intermediate_size else []
        mlps = [(moe_layers, [moe.expert_intermediate_size] * moe.num_experts + shared, moe.num_experts)]
        mlps.append((L - moe_layers, [moe.dense_intermediate_size], 0))
    for n, widths, router in mlps:
        shapes = [(router, h)] * bool(router)
        for w in widths:
            shapes += _mlp_shapes(h, w, mlp_mats)
        blocks.append(("mlp", n, shapes, 0))
    norms = ((1 if arch.model_type in SSM_ONLY_TYPES or one_block_layers else 2) * L + 1) * h
    if arch.mla is not None:  # q_a_layernorm and kv_a_layernorm
        norms += attention_layers * (arch.mla.kv_lora_rank + (arch.mla.q_lora_rank or 0))
    embeddings = arch.vocab_size * h + (arch.max_context or 0) * h * arch.learned_positions
    if arch.encoder is not None:
        e = arch.encoder
        inner = e.num_heads * e.head_dim
        blocks.append(("attention", e.num_layers, [(inner, e.hidden_size)] * 3 + [(e.hidden_size, inner)], 0))
        blocks.append(("mlp", e.num_layers, _mlp_shapes(e.hidden_size, e.intermediate_size, mlp_mats), 0))
        blocks.append(("attention", L, attn_shapes, 0))  # the decoder's cross-attention
        norms += (2 * e.num_layers + 1) * e.hidden_size + L * h
        embeddings += (e.source_len or 0) * e.hidden_size * arch.learned_positions
    lm_head = 0 if arch.tie_word_embeddings else arch.vocab_size * h
    by_kind = {
        "embeddings": embeddings,
        "attention": 0,
        "ssm": 0,
        "mlp": 0,
        "norms": norms,
        "lm_head": lm_head,
    }
    counts = CheckpointCounts(exact=False)
    matrices = counts.matrix_shapes  # parameters of 2+ dims by shape, as count_tensors records them

    def add(shape: tuple[int, ...], n: int = 1) -> None:
        if n and all(shape):
            matrices[shape] = matrices.get(shape, 0) + n

    for _, n, shapes, _ in blocks:
        for shape in shapes:
            add(shape, n)
    add((arch.vocab_size, h))
    if arch.learned_positions:
        add((arch.max_context or 0, h))
        if arch.encoder is not None:
            add((arch.encoder.source_len or 0, arch.encoder.hidden_size))
    if lm_head:
        add((arch.vocab_size, h))
    if arch.ssm is not None:  # depthwise conv1d weight [conv_dim, 1, kernel]; MambaMixer's A_log [inner, n]
        add((arch.ssm.conv_state[1], 1, arch.ssm.conv_state[0] + 1), arch.ssm.num_layers)
        if arch.ssm.kind == "mamba1":
            add(arch.ssm.temporal_state, arch.ssm.num_layers)
    for kind, n, shapes, extra in blocks:
        linear = n * sum(r * c for r, c in shapes)
        by_kind[kind] += linear + n * extra
        counts.linear_params += linear
        counts.linear_rows += n * sum(r for r, _ in shapes)
        counts.linear_groups_128 += n * sum(r * -(-c // 128) for r, c in shapes)
        counts.linear_blocks_128 += n * sum(-(-r // 128) * -(-c // 128) for r, c in shapes)
        counts.linear_blocks_64 += n * sum(-(-(r * c) // 64) for r, c in shapes)
        counts.linear_largest = max([counts.linear_largest, *(r * c for r, c in shapes)])
        for shape in shapes:
            counts.linear_shapes[shape] = counts.linear_shapes.get(shape, 0) + n
    counts.parameters = sum(by_kind.values())
    counts.parameter_bytes = counts.parameters * 2
    counts.by_component = {k: v for k, v in by_kind.items() if v}
    if arch.moe is not None:
        moe = arch.moe
        counts.routed_expert_params = (
            len(moe.moe_layers) * moe.num_experts * mlp_mats * h * moe.expert_intermediate_size
        )
    counts.has_lm_head = not arch.tie_word_embeddings
    return counts
