"""ggml's graph allocator, replayed on a list of tensors: the size of the compute buffer that
`ggml_gallocr_reserve` measures for a graph. Pure integers, no I/O.

Ported from ggml/src/ggml-alloc.c (ggml-org/llama.cpp, stored at commit 0450e2f9, 2026; the rules
below are those of every 2025-2026 build, one buffer chunk):

- `ggml_dyn_tallocr_alloc`: a tensor goes into the best-fitting free block other than the last
  (the smallest that holds it; of equal ones the later); when none fits, into the last block, which
  grows the buffer (`max_size`). Sizes are padded to the buffer's alignment (CUDA: 128 bytes).
- `ggml_dyn_tallocr_free_bytes`: a freed range merges with the free block it touches, else becomes a
  new block in address order.
- `ggml_gallocr_alloc_graph_impl`: graph inputs are allocated first, in the order the nodes name
  them; then each node in order; a node whose op may work in place (`ggml_op_can_inplace`: add, mul,
  rms_norm, rope, soft_max, ...) takes the memory of a same-layout parent that this allocator placed
  (not a view) and that has no other child and no view; after each node, a parent
  with no children left (and no views) is freed, except graph outputs, which are never freed.
- `ggml_gallocr_reserve_n`: one buffer per backend; each node goes into its backend's buffer, and a
  graph input into the buffer of the first node that names it. Weights and the KV cache live in
  buffers of their own (`external`); the scheduler's dependency nodes (`ggml_view_tensor` with
  op NONE, ggml-backend.cpp `input_dep`) take no memory and count as no view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubmem.units import round_up

_HUGE = 1 << 62


@dataclass(eq=False)
class Tensor:
    """One tensor of the graph as the allocator sees it. `view_of`: the tensor whose memory a view
    uses (None: its own); a view of the KV cache or of weights is a view of a size-0 tensor that is
    never allocated here."""

    name: str
    size: int  # bytes (ggml_nbytes); 0 for views
    srcs: list[Tensor] = field(default_factory=list)
    inplace: bool = False  # ggml_op_can_inplace(op)
    view_of: Tensor | None = None
    is_input: bool = False  # GGML_TENSOR_FLAG_INPUT
    is_output: bool = False  # GGML_TENSOR_FLAG_OUTPUT
    layout: tuple[int, ...] = ()  # ggml_are_same_layout: (type size, elements) stands for type and shape
    op: str = ""  # the ggml op, for the scheduler (hubmem.runtimes.ggml_sched): "view" ops, "get_rows", ...
    external: bool = False  # in a buffer of its own (weights, KV cache): never placed here
    weight: bool = False  # GGML_BACKEND_BUFFER_USAGE_WEIGHTS (a model tensor)
    home: int = -1  # the backend whose buffer holds an external tensor
    batch: int = 0  # ggml-cuda get_op_batch_size: what the GPU's offload_op compares with 32
    pad: int = 0  # bytes a copy of it takes on the GPU beyond `size` (CUDA get_alloc_size row padding)
    dep: bool = False  # a scheduler dependency node: no memory, not a view
    backend: int = 0  # the backend (buffer) it is computed on
    # allocator state
    children: int = 0
    views: int = 0
    allocated: bool = False
    offset: int | None = None


class _FreeBlocks:
    def __init__(self, alignment: int) -> None:
        self.alignment = alignment
        self.blocks = [[0, _HUGE]]  # [offset, size], sorted by offset; the last one is the open end
        self.max_size = 0

    def _pad(self, n: int) -> int:
        return round_up(n, self.alignment)

    def alloc(self, size: int) -> int:
        size = self._pad(size)
        best, best_size = -1, _HUGE * 2
        for i, (_, free) in enumerate(self.blocks[:-1]):
            if size <= free <= best_size:
                best, best_size = i, free
        if best == -1:
            best = len(self.blocks) - 1
        block = self.blocks[best]
        offset = block[0]
        block[0] += size
        block[1] -= size
        if block[1] == 0:
            del self.blocks[best]
        self.max_size = max(self.max_size, offset + size)
        return offset

    def free(self, offset: int, size: int) -> None:
        size = self._pad(size)
        b = self.blocks
        for i in range(len(b)):
            if b[i][0] + b[i][1] == offset:
                b[i][1] += size
                if i < len(b) - 1 and b[i][0] + b[i][1] == b[i + 1][0]:
                    b[i][1] += b[i + 1][1]
                    del b[i + 1]
                return
            if offset + size == b[i][0]:
                b[i][0] = offset
                b[i][1] += size
                if i > 0 and b[i - 1][0] + b[i - 1][1] == b[i][0]:
                    b[i - 1][1] += b[i][1]
                    del b[i]
                return
        j = 0
        while j < len(b) and b[j][0] < offset:
            j += 1
        b.insert(j, [offset, size])


def buffer_size(nodes: list[Tensor], alignment: int) -> int:
    """The compute buffer ggml-alloc reserves for `nodes` (in graph order), all on one backend."""
    return buffer_sizes(nodes, {n.backend: alignment for n in nodes}).get(nodes[0].backend if nodes else 0, 0)


def buffer_sizes(nodes: list[Tensor], alignments: dict[int, int]) -> dict[int, int]:
    """The compute buffer of each backend, {backend: bytes}, that ggml-alloc reserves for `nodes` (in
    graph order; each node's `backend` says whose buffer holds it)."""
    heaps = {b: _FreeBlocks(a) for b, a in alignments.items()}

    def allocate(t: Tensor, backend: int) -> None:
        if t.allocated or t.view_of is not None or t.offset is not None or t.external or t.dep:
            return
        t.allocated = True
        if t.inplace:
            for p in t.srcs:
                # `ggml_gallocr_is_own(parent)`: only a tensor this allocator placed itself, so never a
                # view (views are not allocated; the reuse-through-a-view branch after it is unreached)
                if p.view_of is not None or not p.allocated or p.is_output:
                    continue
                if p.layout == t.layout and p.children == 1 and p.views == 0:
                    t.offset, t.backend, p.allocated = p.offset, p.backend, False
                    return
        t.backend = backend
        t.offset = heaps[backend].alloc(t.size)

    def free(t: Tensor) -> None:
        heaps[t.backend].free(t.offset or 0, t.size)
        t.allocated = False

    for n in nodes:
        if n.view_of is not None and not n.dep:
            n.view_of.views += 1
        if n.is_input:
            allocate(n, n.backend)
        for s in n.srcs:
            s.children += 1
            if s.is_input:
                allocate(s, n.backend)
    for n in nodes:
        allocate(n, n.backend)
        for p in n.srcs:
            p.children -= 1
            if p.children or p.views:
                continue
            if p.view_of is not None and not p.dep:
                src = p.view_of
                src.views -= 1
                if not src.views and not src.children and src.allocated and not src.is_output:
                    free(src)
            elif p.allocated and not p.is_output:
                free(p)
    return {b: h.max_size for b, h in heaps.items()}
