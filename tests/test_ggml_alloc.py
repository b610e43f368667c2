"""hubmem.runtimes.ggml_alloc (a port of ggml-alloc.c's placement rules) on hand-built graphs, and the
replayed llama.cpp prompt graph (hubmem.runtimes.llamacpp_graph) against hand-derived peaks."""

from __future__ import annotations

import pytest

from hubmem.runtimes.ggml_alloc import Tensor, buffer_size
from hubmem.runtimes.llamacpp_graph import Shape, compute_buffer

MiB = 1024**2


def test_sizes_are_padded_to_the_alignment():
    a = Tensor("a", 100, is_input=True)
    b = Tensor("b", 1, [a])
    assert buffer_size([b], 128) == 128 + 128  # both live at once: a is b's source


def test_a_freed_block_is_reused_by_best_fit():
    # x (100) -> y (300) -> z (100): x is freed after y, z takes x's block at offset 0
    x = Tensor("x", 100, is_input=True)
    y = Tensor("y", 300, [x])
    z = Tensor("z", 100, [y])
    assert buffer_size([y, z], 1) == 400
    assert z.offset == 0


def test_a_block_too_small_is_skipped_and_the_end_grows():
    # x (100) freed after y; z (200) does not fit x's block, so it goes above y
    x = Tensor("x", 100, is_input=True)
    y = Tensor("y", 300, [x])
    z = Tensor("z", 200, [y])
    assert buffer_size([y, z], 1) == 600 and z.offset == 400


def test_in_place_only_on_a_sole_use_and_never_through_a_view():
    x = Tensor("x", 64, is_input=True)
    n = Tensor("norm", 64, [x], inplace=True, layout=(64,))
    x.layout = (64,)
    assert buffer_size([n], 1) == 64 and n.offset == x.offset  # x has no other child: reused
    x2 = Tensor("x", 64, is_input=True, layout=(64,))
    n2 = Tensor("norm", 64, [x2], inplace=True, layout=(64,))
    r = Tensor("residual", 64, [n2, x2], inplace=True, layout=(64,))
    assert buffer_size([n2, r], 1) == 128  # x2 has two children: norm gets new memory, the add reuses it
    q = Tensor("q", 64, [Tensor("in", 8, is_input=True)], layout=(64,))
    v = Tensor("q (3d)", 0, [q], view_of=q, layout=(64,))
    rope = Tensor("rope", 64, [v], inplace=True, layout=(64,))
    assert buffer_size([q, v, rope], 1) == 8 + 64 + 64  # a view is not "own" (ggml_gallocr_is_own)


def test_outputs_are_never_freed():
    x = Tensor("x", 100, is_input=True)
    y = Tensor("y", 100, [x], is_output=True)
    z = Tensor("z", 100, [y])
    w = Tensor("w", 100, [z])
    assert buffer_size([y, z, w], 1) == 300  # w takes x's block; y stays


QWEN25_7B = dict(
    n_embd=3584, n_ff=18944, n_head=28, n_head_kv=4, head_dim_k=128, head_dim_v=128, n_layer=28,
    n_vocab=152064, n_tokens=512, offloaded=True,
)  # fmt: skip


@pytest.mark.parametrize(
    ("n_kv", "n_outputs", "f16_mask", "expected"),
    [
        # the end of the graph: result_norm + the f32 logits of the ubatch, from offset 0
        (4096, 512, False, 4 * 512 * (3584 + 152064)),
        # the 64 MiB f32 mask and the 7 MiB embeddings below the residual stream's slot: 78.01 MiB up
        # (7 MiB embeddings, 2 + 4 + 4 KiB positions/row ids, 64 MiB mask, 2 KiB out ids, 7 MiB), + 7 + 297
        (32768, 512, False, (7 + 64 + 7 + 7 + 297) * MiB + 2048 + 4096 + 4096 + 2048),
        # one output per sequence and an f16 mask: the first FFN is the peak, its gate, up and swiglu
        # (37 MiB each) above the 7 MiB embeddings, the small inputs, the 16 MiB mask and two 7 MiB slots
        # of the first layer's activations (out ids: 16 bytes, padded to 128)
        (16384, 4, True, (7 + 16 + 7 + 7 + 3 * 37) * MiB + 2048 + 4096 + 4096 + 128),
    ],
)
def test_the_replayed_qwen25_7b_graph(n_kv, n_outputs, f16_mask, expected):
    shape = Shape(**QWEN25_7B, n_kv=n_kv, n_outputs=n_outputs, flash=True, f16_mask=f16_mask)
    got = compute_buffer(shape, 128)
    assert got == expected


def test_the_scheduler_offloads_a_large_batch_and_copies_its_host_weight():
    """ggml_sched (a port of ggml-backend.cpp's split_graph): a matmul whose weight is in host memory runs
    on the GPU when its batch is at least 32 rows (ggml-cuda offload_op), and the weight is copied into the
    GPU's buffer (+ its CUDA row padding) at the start of its own split; below 32 rows it stays on the CPU."""
    from hubmem.runtimes.ggml_alloc import buffer_sizes
    from hubmem.runtimes.ggml_sched import schedule

    def run(rows: int) -> tuple[dict[int, int], list[int]]:
        x = Tensor("x", 4 * 64 * rows, is_input=True)
        w = Tensor("w", 1000, weight=True, external=True, home=1, pad=24)
        y = Tensor("y", 4 * 16 * rows, [w, x], op="mul_mat", batch=rows)
        copy, splits = schedule([y], cpu=1)
        return buffer_sizes(copy, {0: 128, 1: 32}), [s.backend for s in splits]

    sizes, backends = run(512)
    # GPU: the copy of x (128 KiB), of w (1,000 + 24 -> 1,024) and y (32 KiB); CPU: x itself
    assert backends == [0] and sizes == {0: 4 * 64 * 512 + 1024 + 4 * 16 * 512, 1: 4 * 64 * 512}
    sizes, backends = run(16)
    assert backends == [1] and sizes == {0: 0, 1: 4 * 64 * 16 + 4 * 16 * 16}


def test_partial_offload_holds_the_largest_weight_copy_and_full_offload_steps_down():
    """The replayed prompt graph below a full offload: the GPU's buffer holds the copy of the output matrix
    the offloaded logits matmul reads (the largest host weight) below the logits; the same at any number of
    CPU layers (the published shape: gpustack/gguf-parser-go#45, flat across 1, 2 and 4 offloaded layers),
    and back to the logits alone at a full offload. The CPU's buffer: the graph inputs + embedding rows."""
    from hubmem.runtimes.llamacpp_graph import compute_buffers

    out_w = 151936 * 2048 // 32 * 34  # a Q8_0 output matrix
    base = dict(QWEN25_7B, n_kv=4096, n_outputs=512, flash=True, f16_mask=False)
    full = compute_buffers(Shape(**base))
    host = (("output_norm.weight", 4 * 3584, 0), ("output.weight", out_w, 0))
    parts = {
        g: compute_buffers(Shape(**base, gpu_start=g, output_gpu=False, cpu_weights=host)) for g in (0, 1, 4)
    }
    assert full.gpu == 4 * 512 * (3584 + 152064)
    assert {p.gpu for p in parts.values()} == {full.gpu + out_w}
    # tokens, positions, K/V row indices (i64), the f32 mask (4 × 4,096 × 512), output ids; embedding rows
    assert full.cpu == 2048 + 2048 + 4096 + 4096 + 4 * 4096 * 512 + 2048 + 4 * 3584 * 512


def test_a_mixtral_style_llama_moe_file_is_replayed():
    """A `llama` GGUF with routed experts (Mixtral's layout: ffn_gate_inp + ffn_{gate,up,down}_exps, no
    shared expert) takes the MoE replay, not Ollama's rule; its peak at -c 4096 is the end of the graph:
    the norm + f32 logits of the ubatch."""
    from gguf import GGMLQuantizationType

    from hubmem.model.gguf.arch import model_from_records
    from hubmem.runtimes import llamacpp

    h, ff, L, E, V = 1024, 512, 2, 8, 32000
    tensors = [("token_embd.weight", (h, V)), ("output_norm.weight", (h,)), ("output.weight", (h, V))]
    for il in range(L):
        b = f"blk.{il}."
        tensors += [(b + "attn_norm.weight", (h,)), (b + "attn_q.weight", (h, h)), (b + "attn_k.weight", (h, 256)),
                    (b + "attn_v.weight", (h, 256)), (b + "attn_output.weight", (h, h)), (b + "ffn_norm.weight", (h,)),
                    (b + "ffn_gate_inp.weight", (h, E)), (b + "ffn_gate_exps.weight", (h, ff, E)),
                    (b + "ffn_up_exps.weight", (h, ff, E)), (b + "ffn_down_exps.weight", (ff, h, E))]  # fmt: skip
    kv = {"general.architecture": "llama", "llama.block_count": L, "llama.embedding_length": h,
          "llama.feed_forward_length": ff, "llama.attention.head_count": 8, "llama.attention.head_count_kv": 2,
          "llama.expert_count": E, "llama.expert_used_count": 2, "llama.context_length": 32768}  # fmt: skip
    f32 = int(GGMLQuantizationType.F32)
    model = model_from_records("F32", [("m.gguf", {"kv": kv, "tensors": [(n, f32, s) for n, s in tensors]})])
    plan = llamacpp.plan(model, llamacpp.LlamaCppOptions(ctx_size=4096))
    assert dict(plan.terms)["compute"].startswith("ggml-sched + ggml-alloc replay of the llama MoE prompt")
    assert plan.gpus[0].compute == 4 * 512 * (h + V)


def test_a_graph_too_large_or_headless_keeps_ollamas_rule():
    """A header claiming 2,000 layers (80,000 graph nodes, over MAX_REPLAY_NODES) or no attention heads is
    planned by Ollama's rule, and --explain says why, instead of replaying (or dividing by zero)."""
    from gguf import GGMLQuantizationType

    from hubmem.model.gguf.arch import model_from_records
    from hubmem.runtimes import llamacpp

    f32 = int(GGMLQuantizationType.F32)

    def model(layers: int, heads: int):
        kv = {"general.architecture": "qwen3", "qwen3.block_count": layers, "qwen3.embedding_length": 256,
              "qwen3.feed_forward_length": 512, "qwen3.attention.head_count": heads,
              "qwen3.attention.head_count_kv": 2, "qwen3.attention.key_length": 64,
              "qwen3.attention.value_length": 64, "qwen3.context_length": 4096}  # fmt: skip
        tensors = [("token_embd.weight", f32, (256, 1000)), ("blk.0.ffn_gate.weight", f32, (256, 512))]
        return model_from_records("F32", [("m.gguf", {"kv": kv, "tensors": tensors})])

    big = llamacpp.plan(model(2000, 4), llamacpp.LlamaCppOptions(ctx_size=4096))
    assert dict(big.terms)["compute"].endswith(
        "the replay does not reach a graph of more than 50,000 nodes (kept to Ollama's rule for speed)"
    )
    headless = llamacpp.plan(model(2, 0), llamacpp.LlamaCppOptions(ctx_size=4096))
    assert dict(headless.terms)["compute"].startswith("max(4·ub·(1 + 4·h")
