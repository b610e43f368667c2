"""The worst-case graph llama.cpp reserves its compute buffers with, for the decoder graphs of `llama`
(Llama and Mixtral), `qwen2`, `qwen3` and `qwen3moe` GGUF files, as the tensors ggml's scheduler
(hubmem.runtimes.ggml_sched) and allocator (hubmem.runtimes.ggml_alloc) see them. Pure integers, no I/O.

llama.cpp src/llama-context.cpp `sched_reserve` builds the prompt graph of one ubatch, n_tokens =
min(n_ctx, n_ubatch) over n_seqs sequences (rounded up to a multiple of n_seqs by `graph_reserve`),
with n_outputs output rows, against a full KV cache (`memory->init_full()`: n_kv = every cell of a
stream), then the one-token-per-sequence graph, then the prompt graph again; each backend's compute
buffer is the largest any of them needed (ggml-alloc.c `ggml_gallocr_reserve_n` only grows a buffer).
The graph (src/models/llama.cpp, qwen2.cpp, qwen3.cpp, qwen3moe.cpp; src/llama-graph.cpp `build_attn`,
`build_ffn`, `build_moe_ffn`, `build_inp_out_ids`):

- inputs (ggml_set_input, on the CPU; a GPU gets copies, ggml-backend.cpp): the token ids (`get_rows`
  of token_embd runs on the CPU, which holds token_embd: f32 n_embd × n_tokens), positions (i32), the K
  and V cache row indices (`set_rows`, i64), the KQ mask (n_kv × n_tokens) and the output row ids (i32);
- per layer, its weights and KV cache on the layer's device (src/llama-model.cpp `load_tensors`,
  llama-kv-cache.cpp): rms_norm and its weight (in place), Q/K/V matmuls (+ qwen2's biases, qwen3's
  per-head q/k rms_norm on a reshaped view, so a new tensor, then rope: in place on a tensor, a new
  one on a view), K and V written into the cache (`set_rows`: views of the cache, no memory),
  attention, the output matmul, the residual add (in place), rms_norm, then the FFN and the residual
  add; before the last layer's FFN, `get_rows` keeps only the n_outputs rows;
- dense FFN: gate and up matmuls (n_ff × n_tokens f32 each), swiglu (`ggml_swiglu_split`, a new tensor:
  GLU is not an in-place op), the down matmul;
- MoE FFN (`build_moe_ffn`, softmax gating, weights normalised for qwen3moe and not for Mixtral): the
  router logits (n_expert × n_tokens f32) and their soft_max (in place), `ggml_argsort_top_k` (an i32
  argsort of every expert, n_expert × n_tokens, and a view of its first n_expert_used), the selected
  probabilities (`get_rows`, n_expert_used × n_tokens), for qwen3moe their sum (`sum_rows`) and the
  division by it; then `mul_mat_id` up and gate (n_ff_exp × n_expert_used × n_tokens f32 each),
  swiglu, `mul_mat_id` down (n_embd × n_expert_used × n_tokens) and its product with the weights (in
  place); the sum over experts of views of it (the first add a new tensor, then in place);
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
With layers on the CPU (-ngl below the layer count), the scheduler runs a prompt-sized op whose weight
is in host memory on the GPU anyway, copying the weight into the GPU's compute buffer (ggml-cuda's
offload_op: a batch of 32 or more), so the GPU buffer holds the largest such copy; a CPU layer's
`set_rows` runs on the CPU (the cache is there) with copies of K and V, and its attention on the GPU
with copies of the cache views.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hubmem.runtimes import ggml_sched
from hubmem.runtimes.ggml_alloc import Tensor, buffer_sizes

CUDA_ALIGNMENT = 128  # ggml-cuda.cu ggml_backend_cuda_buffer_type_get_alignment
CPU_ALIGNMENT = 32  # ggml-cpu TENSOR_ALIGNMENT (CUDA_Host's get_alignment is the CPU buffer type's)


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
    offloaded: bool = True  # a GPU holds layers gpu_start.. (else the CPU computes everything)
    n_seqs: int = 1  # sequences of the one-token graph
    gpu_start: int = 0  # the first layer on the GPU (-ngl: n_layer - ngl)
    output_gpu: bool = True  # the output layer on the GPU (-ngl above the layer count)
    kv_offload: bool = True  # a GPU layer's KV cache on the GPU (not --no-kv-offload)
    qk_norm: bool = False  # qwen3 / qwen3moe: rms_norm of each head of Q and K
    bias: bool = False  # qwen2: Q, K, V biases
    n_expert: int = 0  # MoE (qwen3moe, Mixtral): routed experts, 0 = a dense FFN
    n_expert_used: int = 0
    n_ff_exp: int = 0
    norm_w: bool = False  # the selected experts' weights divided by their sum (qwen3moe)
    attn_order: str = "qkv"  # the order build_attn expands Q, K, V into the graph
    k_row: int = 0  # bytes of one cell's K / V row in the cache (ggml_row_size of the cache type)
    v_row: int = 0
    # bytes and CUDA row padding of the weights held in host memory, by GGUF name: what a GPU copies
    cpu_weights: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class Buffers:
    gpu: int  # the GPU's compute buffer ("CUDA0 compute buffer size")
    cpu: int  # the CPU's ("CUDA_Host compute buffer size" beside a GPU, "CPU compute buffer size" alone)


@lru_cache(maxsize=4096)
def compute_buffers(shape: Shape) -> Buffers:
    """Each backend's compute buffer: the largest of the prompt and the one-token graphs."""
    one = Shape(**{**shape.__dict__, "n_tokens": shape.n_seqs, "n_outputs": shape.n_seqs})
    sizes = [_buffers(graph(s), s.offloaded) for s in (shape, one)]
    return Buffers(max(b.gpu for b in sizes), max(b.cpu for b in sizes))


@lru_cache(maxsize=4096)
def compute_buffer(shape: Shape, alignment: int = CUDA_ALIGNMENT) -> int:
    """Bytes of the prompt graph's compute buffer on the device that runs every layer and the output."""
    b = _buffers(graph(shape), shape.offloaded, alignment)
    return b.gpu if shape.offloaded else b.cpu


def _buffers(nodes: list[Tensor], offloaded: bool, alignment: int = CUDA_ALIGNMENT) -> Buffers:
    cpu = 1 if offloaded else 0
    copy, _ = ggml_sched.schedule(nodes, cpu)
    sizes = buffer_sizes(copy, {0: alignment, 1: CPU_ALIGNMENT} if offloaded else {0: CPU_ALIGNMENT})
    return Buffers(sizes[0] if offloaded else 0, sizes[cpu])


def graph(shape: Shape) -> list[Tensor]:
    s = shape
    n_embd, n_head, n_head_kv, n_layer = s.n_embd, s.n_head, s.n_head_kv, s.n_layer
    head_dim_k, head_dim_v, n_kv, n_outputs, flash = s.head_dim_k, s.head_dim_v, s.n_kv, s.n_outputs, s.flash
    gpu, cpu = (0, 1) if s.offloaded else (0, 0)
    host = dict((name, (size, pad)) for name, size, pad in s.cpu_weights)
    nodes: list[Tensor] = []

    def on_gpu(il: int) -> bool:
        return s.offloaded and (s.output_gpu if il == n_layer else il >= s.gpu_start)

    def weight(name: str, il: int) -> Tensor:
        full = name if il < 0 or il == n_layer else f"blk.{il}.{name}"
        size, pad = host.get(full, (0, 0))
        return Tensor(full, size, weight=True, external=True, home=gpu if on_gpu(il) else cpu, pad=pad)

    def node(name: str, size: int, srcs: list[Tensor], inplace: bool = False, **kw) -> Tensor:
        t = Tensor(name, size, srcs, inplace=inplace, layout=kw.pop("layout", (size,)), **kw)
        nodes.append(t)
        return t

    def view(src: Tensor, name: str, op: str = "reshape") -> Tensor:
        return node(name, src.size, [src], view_of=src, layout=src.layout, op=op)

    def norm(x: Tensor, w: str, il: int, rows: int, width: int, **kw) -> Tensor:
        cur = node("norm", 4 * width * rows, [x], True, op="rms_norm", batch=rows)
        return node(w, 4 * width * rows, [cur, weight(w + ".weight", il)], True, op="mul", batch=rows, **kw)

    def matmul(w: Tensor, x: Tensor, name: str, out: int, rows: int, **kw) -> Tensor:
        return node(name, 4 * out * rows, [w, x], op="mul_mat", batch=rows, **kw)

    T = s.n_tokens
    tokens = Tensor("inp_tokens", 4 * T, is_input=True)
    x = node("inp_embd", 4 * n_embd * T, [Tensor("token_embd.weight", 0, weight=True, external=True, home=cpu), tokens], op="get_rows")  # fmt: skip
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
        kv_home = gpu if on_gpu(il) and s.kv_offload else cpu
        cache_k = Tensor(f"cache_k_l{il}", 0, external=True, home=kv_home)
        cache_v = Tensor(f"cache_v_l{il}", 0, external=True, home=kv_home)
        cur = norm(x, "attn_norm", il, T, n_embd)
        qkv = {}
        for name in s.attn_order:
            width = {"q": q_w, "k": k_w, "v": v_w}[name]
            t = matmul(weight(f"attn_{name}.weight", il), cur, f"{name.upper()}cur", width, T)
            if s.bias:
                t = node(
                    f"{name.upper()}cur_b",
                    t.size,
                    [t, weight(f"attn_{name}.bias", il)],
                    True,
                    op="add",
                    batch=T,
                )
            if name != "v":
                t3 = view(t, f"{name.upper()}cur (3d)")
                if s.qk_norm:
                    heads = n_head if name == "q" else n_head_kv
                    t = norm(t3, f"attn_{name}_norm", il, T * heads, width // heads)
                    t = node(f"{name.upper()}cur (rope)", t.size, [t, pos], True, op="rope", batch=T)
                else:
                    t = node(
                        f"{name.upper()}cur (rope)",
                        t.size,
                        [t3, pos],
                        True,
                        layout=t.layout,
                        op="rope",
                        batch=T,
                    )
            qkv[name] = t
        q, k, v = qkv["q"], qkv["k"], qkv["v"]
        node("set_rows k", 0, [view(cache_k, "k view", "view"), k, k_idxs], view_of=cache_k, op="set_rows")
        node("set_rows v", 0, [view(cache_v, "v view", "view"), view(v, "Vcur (3d)"), v_idxs], view_of=cache_v, op="set_rows")  # fmt: skip
        qp = view(q, "q (permuted)", "permute")
        kc = node("k (cache)", s.k_row * n_kv, [cache_k], view_of=cache_k, op="view")
        vc = node("v (cache)", s.v_row * n_kv, [cache_v], view_of=cache_v, op="view")
        if flash:
            if mask_fa is None:  # the f32 mask cast to f16 where the first attention needs it
                mask_fa = node("kq_mask (f16)", 2 * n_kv * T, [mask], op="cpy")
            att = node("fattn", 4 * o_w * T, [qp, kc, vc, mask_fa], op="flash_attn_ext")
        else:
            kq = node("kq", 4 * n_kv * T * n_head, [kc, qp], op="mul_mat", batch=T)
            kq = node("kq_soft_max", 4 * n_kv * T * n_head, [kq, mask], True, op="soft_max", batch=T * n_head)
            kqv = node("kqv", 4 * o_w * T, [vc, kq], op="mul_mat", batch=T)
            att = node(
                "kqv (cont)", 4 * o_w * T, [view(kqv, "kqv (permuted)", "permute")], op="cont", batch=T
            )
        cur = matmul(weight("attn_output.weight", il), view(att, "attn (2d)"), "attn_out", n_embd, T)
        rows = T
        if il == n_layer - 1:
            # only the output rows go on, by get_rows even when every row is one (llama-graph.cpp
            # `build_inp_out_ids`: a constant topology, ref. ggml-org/llama.cpp PR #14275)
            rows = n_outputs
            cur = node("attn_out (outputs)", 4 * n_embd * rows, [cur, out_ids], op="get_rows")
            x = node("inpSA (outputs)", 4 * n_embd * rows, [x, out_ids], op="get_rows")
        ffn_inp = node("ffn_inp", 4 * n_embd * rows, [cur, x], True, op="add", batch=rows)
        cur = norm(ffn_inp, "ffn_norm", il, rows, n_embd)
        cur = (
            _moe(s, cur, il, rows, node, view, weight)
            if s.n_expert
            else _ffn(s, cur, il, rows, matmul, node, weight)
        )
        x = node("l_out", 4 * n_embd * rows, [cur, ffn_inp], True, op="add", batch=rows)
    cur = norm(x, "output_norm", n_layer, n_outputs, n_embd, is_output=True)
    out_w = weight("output.weight", n_layer)
    matmul(out_w, cur, "result_output", s.n_vocab, n_outputs, is_output=True)
    return nodes


def _ffn(s: Shape, cur: Tensor, il: int, rows: int, matmul, node, weight) -> Tensor:
    gate = matmul(weight("ffn_gate.weight", il), cur, "ffn_gate", s.n_ff, rows)
    up = matmul(weight("ffn_up.weight", il), cur, "ffn_up", s.n_ff, rows)
    cur = node("ffn_swiglu", 4 * s.n_ff * rows, [gate, up], op="glu", batch=rows)
    return matmul(weight("ffn_down.weight", il), cur, "ffn_out", s.n_embd, rows)


def _moe(s: Shape, cur: Tensor, il: int, rows: int, node, view, weight) -> Tensor:
    """llama-graph.cpp `build_moe_ffn` in its node order: the routing weights are expanded into the graph
    first ("call early so that topk-moe can be used"), then the experts, their views, then the adds."""
    E, k, ff, h = s.n_expert, s.n_expert_used, s.n_ff_exp, s.n_embd
    logits = node(
        "ffn_moe_logits", 4 * E * rows, [weight("ffn_gate_inp.weight", il), cur], op="mul_mat", batch=rows
    )
    probs = node("ffn_moe_probs", 4 * E * rows, [logits], True, op="soft_max", batch=rows)
    order = node("ffn_moe_argsort", 4 * E * rows, [probs], op="argsort", batch=rows)
    selected = view(order, "ffn_moe_topk", "view")
    weights = node("ffn_moe_weights", 4 * k * rows, [view(probs, "probs (3d)"), selected], op="get_rows")
    if s.norm_w:
        w2 = view(weights, "weights (2d)")
        total = node("ffn_moe_weights_sum", 4 * rows, [w2], op="sum_rows", batch=rows)
        weights = view(node("ffn_moe_weights_norm", 4 * k * rows, [w2, total], True, op="div", batch=rows), "weights (3d)")  # fmt: skip
    cur3 = view(cur, "cur (3d)")
    up = node("ffn_moe_up", 4 * ff * k * rows, [weight("ffn_up_exps.weight", il), cur3, selected], op="mul_mat_id", batch=rows)  # fmt: skip
    gate = node("ffn_moe_gate", 4 * ff * k * rows, [weight("ffn_gate_exps.weight", il), cur3, selected], op="mul_mat_id", batch=rows)  # fmt: skip
    act = node("ffn_moe_swiglu", 4 * ff * k * rows, [gate, up], op="glu", batch=rows)
    experts = node("ffn_moe_down", 4 * h * k * rows, [weight("ffn_down_exps.weight", il), act, selected], op="mul_mat_id", batch=rows)  # fmt: skip
    experts = node("ffn_moe_weighted", experts.size, [experts, weights], True, op="mul", batch=rows * k)
    parts = [node(f"expert {i}", 4 * h * rows, [experts], view_of=experts, op="view", layout=(4 * h * rows,)) for i in range(k)]  # fmt: skip
    out = parts[0]
    for i in range(1, k):
        out = node("ffn_moe_out", 4 * h * rows, [out, parts[i]], True, op="add", batch=rows)
    if k == 1:
        out = node("ffn_moe_out (cont)", 4 * h * rows, [out], op="cont", batch=rows)
    return out
