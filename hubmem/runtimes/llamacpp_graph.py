"""The worst-case graph llama.cpp reserves its compute buffer with, for the dense decoder graph of
`llama`, `qwen2` and `qwen3` GGUF files, as the tensors ggml's allocator sees (hubmem.runtimes.ggml_alloc).
Pure integers, no I/O.

llama.cpp src/llama-context.cpp `sched_reserve` builds the prompt graph of one ubatch, n_tokens =
min(n_ctx, n_ubatch) over n_seqs sequences (rounded up to a multiple of n_seqs by `graph_reserve`),
with n_outputs output rows, against a full KV cache (`memory->init_full()`: n_kv = every cell of a
stream), and the compute buffer is the largest any reserve needed. The graph (src/models/llama.cpp,
qwen2.cpp, qwen3.cpp; src/llama-graph.cpp `build_attn`, `build_ffn`, `build_inp_out_ids`):

- inputs (ggml_set_input; the scheduler places them on the CPU and copies those the GPU uses into its
  buffer, ggml-backend.cpp `ggml_backend_sched_split_graph`, allocated first): the token embeddings
  (`get_rows` of token_embd runs on the CPU, which holds token_embd; f32 n_embd × n_tokens),
  positions (i32), the K and V cache row indices (`set_rows`, i64), the KQ mask (n_kv × n_tokens) and
  the output row ids (i32);
- per layer: rms_norm and its weight (in place), Q/K/V matmuls (+ bias, rope, qk-norm: in place),
  K and V written into the cache (`set_rows`: views of the cache, no memory), attention, the output
  matmul, the residual add (in place), rms_norm, gate and up matmuls (n_ff × n_tokens f32 each),
  swiglu (`ggml_swiglu_split`, a new tensor: GLU is not an in-place op), the down matmul and the
  residual add; before the last layer's FFN, `get_rows` keeps only the n_outputs rows;
- attention with flash attention: `ggml_flash_attn_ext(q, k, v, mask)` (one f32 output, head_dim ×
  n_head × n_tokens) with an f16 mask: before 2026 llama.cpp made the mask f32 and cast it in the
  graph (`self_kq_mask_cnv = ggml_cast(ctx0, self_kq_mask, GGML_TYPE_F16)`, the Ollama 0.12 builds),
  so the GPU held the f32 copy (until the cast) and the f16 one; 2026 builds (src/llama-graph.cpp
  `build_attn_inp_kq_mask` at 00395eb2: "flash attention requires an f16 mask") make the input f16.
  A quantized K/V cache is read as it is: the CUDA kernel converts it in its own memory pool,
  outside the compute buffer. Without flash attention: KQ = K·Q (f32 n_kv × n_tokens × n_head),
  soft_max in place, KQV, and a contiguous copy of it;
- the output: rms_norm and its weight (`result_norm`, an output) and the logits matmul (f32 n_vocab ×
  n_outputs, `result_output`).
Only the prompt graph is replayed: the generation graph (n_seqs tokens) is smaller for these models.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hubmem.runtimes.ggml_alloc import Tensor, buffer_size


@dataclass(frozen=True)
class Shape:
    """What the reserved graph's tensors depend on."""

    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_layer: int
    n_vocab: int
    n_kv: int  # KV cells per stream (the mask is n_kv × n_tokens over all streams)
    n_tokens: int
    n_outputs: int
    flash: bool
    f16_mask: bool  # flash attention's mask is an f16 input (2026) rather than an f32 one cast in the graph
    offloaded: bool  # a GPU: the inputs arrive as copies; else the CPU backend computes the embeddings


@lru_cache(maxsize=4096)
def compute_buffer(shape: Shape, alignment: int) -> int:
    """Bytes of the compute buffer of the device that runs every layer and the output."""
    return buffer_size(graph(shape), alignment)


def graph(shape: Shape) -> list[Tensor]:
    s = shape
    n_embd, n_ff, n_head, n_head_kv, n_layer = s.n_embd, s.n_ff, s.n_head, s.n_head_kv, s.n_layer
    head_dim_k, head_dim_v, n_kv, n_outputs, flash = s.head_dim_k, s.head_dim_v, s.n_kv, s.n_outputs, s.flash
    nodes: list[Tensor] = []
    cache = Tensor("kv cache", 0)  # K/V cache and weights: not in the compute buffer

    def node(name: str, size: int, srcs: list[Tensor], inplace: bool = False, **kw) -> Tensor:
        t = Tensor(name, size, srcs, inplace=inplace, layout=kw.pop("layout", (size,)), **kw)
        nodes.append(t)
        return t

    def view(src: Tensor, name: str) -> Tensor:
        return node(name, 0, [src], view_of=src, layout=src.layout)

    T = s.n_tokens
    if s.offloaded:
        x = Tensor("inp_embd (copy)", 4 * n_embd * T, is_input=True)
    else:
        x = node("inp_embd", 4 * n_embd * T, [Tensor("inp_tokens", 4 * T, is_input=True)])
    pos = Tensor("inp_pos", 4 * T, is_input=True)
    k_idxs = Tensor("k_idxs", 8 * T, is_input=True)
    v_idxs = Tensor("v_idxs", 8 * T, is_input=True)
    f16_in = flash and s.f16_mask
    mask = Tensor("kq_mask", (2 if f16_in else 4) * n_kv * T, is_input=True)
    out_ids = Tensor("inp_out_ids", 4 * n_outputs, is_input=True)
    mask_fa: Tensor | None = mask if f16_in else None
    q_w, k_w, v_w, o_w = (
        head_dim_k * n_head,
        head_dim_k * n_head_kv,
        head_dim_v * n_head_kv,
        head_dim_v * n_head,
    )
    for il in range(n_layer):
        cur = node("norm", 4 * n_embd * T, [x], True)
        cur = node("attn_norm", 4 * n_embd * T, [cur], True)
        q = node("Qcur", 4 * q_w * T, [cur])
        q = node("Qcur (rope)", 4 * q_w * T, [view(q, "Qcur (3d)"), pos], True, layout=q.layout)
        k = node("Kcur", 4 * k_w * T, [cur])
        k = node("Kcur (rope)", 4 * k_w * T, [view(k, "Kcur (3d)"), pos], True, layout=k.layout)
        v = node("Vcur", 4 * v_w * T, [cur])
        node("set_rows k", 0, [k, k_idxs], view_of=cache)
        node("set_rows v", 0, [view(v, "Vcur (3d)"), v_idxs], view_of=cache)
        qp = view(q, "q (permuted)")
        if flash:
            if mask_fa is None:  # the f32 mask cast to f16 where the first attention needs it
                mask_fa = node("kq_mask (f16)", 2 * n_kv * T, [mask])
            att = node("fattn", 4 * o_w * T, [qp, mask_fa])
        else:
            kq = node("kq", 4 * n_kv * T * n_head, [qp])
            kq = node("kq_soft_max", 4 * n_kv * T * n_head, [kq, mask], True)
            kqv = node("kqv", 4 * o_w * T, [kq])
            att = node("kqv (cont)", 4 * o_w * T, [view(kqv, "kqv (permuted)")])
        cur = node("attn_out", 4 * n_embd * T, [view(att, "attn (2d)")])
        rows = T
        if il == n_layer - 1:
            # only the output rows go on, by get_rows even when every row is one (llama-graph.cpp
            # `build_inp_out_ids`: a constant topology, ref. ggml-org/llama.cpp PR #14275)
            rows = n_outputs
            cur = node("attn_out (outputs)", 4 * n_embd * rows, [cur, out_ids])
            x = node("inpSA (outputs)", 4 * n_embd * rows, [x, out_ids])
        ffn_inp = node("ffn_inp", 4 * n_embd * rows, [cur, x], True)
        cur = node("norm", 4 * n_embd * rows, [ffn_inp], True)
        cur = node("ffn_norm", 4 * n_embd * rows, [cur], True)
        gate = node("ffn_gate", 4 * n_ff * rows, [cur])
        up = node("ffn_up", 4 * n_ff * rows, [cur])
        cur = node("ffn_swiglu", 4 * n_ff * rows, [gate, up])
        cur = node("ffn_out", 4 * n_embd * rows, [cur])
        x = node("l_out", 4 * n_embd * rows, [cur, ffn_inp], True)
    cur = node("norm", 4 * n_embd * n_outputs, [x], True)
    cur = node("result_norm", 4 * n_embd * n_outputs, [cur], True, is_output=True)
    node("result_output", 4 * s.n_vocab * n_outputs, [cur], is_output=True)
    return nodes
