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
    """The compute buffer ggml-alloc reserves for `nodes` (in graph order)."""
    heap = _FreeBlocks(alignment)

    def allocate(t: Tensor) -> None:
        if t.allocated or t.view_of is not None or t.offset is not None:
            return
        t.allocated = True
        if t.inplace:
            for p in t.srcs:
                # `ggml_gallocr_is_own(parent)`: only a tensor this allocator placed itself, so never a
                # view (views are not allocated; the reuse-through-a-view branch after it is unreached)
                if p.view_of is not None or not p.allocated or p.is_output:
                    continue
                if p.layout == t.layout and p.children == 1 and p.views == 0:
                    t.offset, p.allocated = p.offset, False
                    return
        t.offset = heap.alloc(t.size)

    for n in nodes:
        if n.view_of is not None:
            n.view_of.views += 1
        if n.is_input:
            allocate(n)
        for s in n.srcs:
            s.children += 1
            if s.is_input:
                allocate(s)
    for n in nodes:
        allocate(n)
        for p in n.srcs:
            p.children -= 1
            if p.children or p.views:
                continue
            if p.view_of is not None:
                src = p.view_of
                src.views -= 1
                if not src.views and not src.children and src.allocated and not src.is_output:
                    heap.free(src.offset or 0, src.size)
                    src.allocated = False
            elif p.allocated and not p.is_output:
                heap.free(p.offset or 0, p.size)
                p.allocated = False
    return heap.max_size
