"""ggml's backend scheduler, replayed on a list of tensors (hubmem.runtimes.ggml_alloc.Tensor): which
backend computes each node, where the graph splits, and the copies each split takes of tensors that
live on another backend. Pure, no I/O.

Ported from ggml/src/ggml-backend.cpp `ggml_backend_sched_split_graph` (ggml-org/llama.cpp, stored at
commit 0054c013, 2026; the passes below are those of every 2025-2026 build), for GPUs 0..n-1 and the
CPU as the last backend, one copy of the inputs (no pipeline parallelism), every op supported by every
backend, and a backend supporting only its own buffers (CUDA `supports_buft`: its own device; the CPU:
host memory):

1. `ggml_backend_sched_backend_id_from_cur`: a weight or the KV cache (and a view of it) on the backend
   of its buffer; a graph input on the CPU; an op with a weight source on the weight's backend, except
   that a GPU takes an op whose weight is in host memory when its batch is at least 32
   (ggml-cuda.cu `ggml_backend_cuda_device_offload_op`, `get_op_batch_size`: 0 for get_rows, ne[1]
   for mul_mat, ne[2] for mul_mat_id and rope, else the rows); rope and flash attention skip this;
2. expand the GPU assignments down then up, then any assignment down then up (view ops skipped);
3. a node still unassigned: the backend that holds most of its sources;
4. views and sources left: their view source's backend, else their consumer's;
5. splits: a new split where the backend changes, or where a node uses a weight that is not on the
   split's backend while the split already has inputs ("by starting a new split, the memory of the
   previously offloaded weights can be reused"), or where the split has 30 inputs
   (GGML_SCHED_MAX_SPLIT_INPUTS) and needs another; each source on another backend is copied once
   per backend (`ggml_dup_tensor_layout`) and becomes an input of the split;
6. the graph copy that ggml-alloc places: per split, for each input a dependency node on the input's
   backend (keeps it alive until the copy) and the copy on the split's backend, then the split's nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hubmem.runtimes.ggml_alloc import Tensor

VIEW_OPS = frozenset({"view", "reshape", "permute", "transpose"})  # ggml_is_view_op
MIN_OFFLOAD_BATCH = 32  # ggml-cuda.cu ggml_backend_cuda_device_offload_op: min_batch_size
MAX_SPLIT_INPUTS = 30  # ggml-backend.cpp GGML_SCHED_MAX_SPLIT_INPUTS


@dataclass
class Split:
    backend: int
    start: int
    end: int = 0
    inputs: list[Tensor] = field(default_factory=list)


def schedule(nodes: list[Tensor], cpu: int) -> tuple[list[Tensor], list[Split]]:
    """(the graph copy, with each node's `backend` set; the splits) for `nodes` in graph order, on
    backends 0..cpu, `cpu` being the CPU. The nodes' sources are rewired to the copies."""
    where: dict[int, int] = {}  # id(tensor) -> backend (-1: unassigned)

    def get(t: Tensor | None) -> int:
        return -1 if t is None else where.get(id(t), -1)

    def from_cur(t: Tensor) -> int:
        if t.external:
            return t.home
        if t.view_of is not None and t.view_of.external:
            return t.view_of.home
        if t.is_input:
            return cpu
        if t.op not in ("rope", "flash_attn_ext"):
            for s in t.srcs:
                if s.weight:
                    if s.home == cpu and t.batch >= MIN_OFFLOAD_BATCH:
                        return 0  # the first (highest priority) GPU offloads it
                    return s.home
        return -1

    in_graph = {id(n) for n in nodes}
    for n in nodes:  # pass 1, the leafs
        for s in n.srcs:
            if id(s) not in in_graph and id(s) not in where:
                where[id(s)] = from_cur(s)
    for n in nodes:  # pass 1, the nodes
        where[id(n)] = from_cur(n)

    def expand(order: list[Tensor], gpu_only: bool) -> None:
        cur = -1
        for n in order:
            if n.op in VIEW_OPS:
                continue
            b = where[id(n)]
            if b != -1:
                cur = -1 if gpu_only and b == cpu else b
            elif cur != -1:
                where[id(n)] = cur

    if cpu > 0:  # pass 2
        expand(nodes, True)
        expand(nodes[::-1], True)
    expand(nodes, False)
    expand(nodes[::-1], False)

    def buft(t: Tensor) -> int:  # the backend whose buffer type holds t (ggml_backend_sched_buffer_supported)
        src = t.view_of if t.view_of is not None else t
        if src.external:
            return src.home
        b = get(t)
        return get(t.view_of) if b == -1 else b

    for n in nodes:  # pass 3: unassigned nodes go where most of their sources are
        if n.op in VIEW_OPS or where[id(n)] != -1:
            continue
        best, best_n = -1, -1
        for b in range(cpu + 1):
            k = sum(1 for s in n.srcs if (get(s) != -1 or get(s.view_of) != -1) and buft(s) == b)
            if k > best_n:
                best, best_n = b, k
        where[id(n)] = best
    for n in nodes:  # pass 4
        if n.view_of is not None and where[id(n)] == -1:
            where[id(n)] = get(n.view_of)
        for s in n.srcs:
            if get(s) == -1:
                where[id(s)] = get(s.view_of) if s.view_of is not None else where[id(n)]
        if where[id(n)] == -1:
            where[id(n)] = 0

    # pass 5: splits and copies
    first = next((i for i, n in enumerate(nodes) if n.op not in VIEW_OPS), len(nodes))
    splits = [Split(where[id(nodes[first])] if first < len(nodes) else cpu, 0)]
    copies: dict[tuple[int, int], Tensor] = {}
    for i in range(first, len(nodes)):
        n = nodes[i]
        if n.op in VIEW_OPS:
            continue
        b, split = where[id(n)], splits[-1]
        new = False
        if b == split.backend and split.inputs:
            for s in n.srcs:
                if s.weight and get(s) != split.backend and buft(s) != split.backend:
                    new = True
                    break
                if (
                    len(split.inputs) >= MAX_SPLIT_INPUTS
                    and get(s) != split.backend
                    and (id(s), split.backend) not in copies
                    and buft(s) != split.backend
                ):
                    new = True
                    break
        if b != split.backend or new:
            split.end = i
            split = Split(b, i)
            splits.append(split)
        for j, s in enumerate(n.srcs):
            if get(s) != b and buft(s) != b:
                key = (id(s), b)
                if key not in copies:
                    copies[key] = Tensor(
                        f"{b}#{s.name}", s.size + (s.pad if b != cpu else 0), layout=s.layout, op="none"
                    )
                    where[id(copies[key])] = b
                    split.inputs.append(s)
                n.srcs[j] = copies[key]
    splits[-1].end = len(nodes)

    out: list[Tensor] = []
    for split in splits:
        for s in split.inputs:
            out.append(Tensor(f"dep {s.name}", 0, [s], dep=True, backend=get(s)))
            cp = copies[(id(s), split.backend)]
            cp.backend = split.backend
            out.append(cp)
        for n in nodes[split.start : split.end]:
            n.backend = where[id(n)]
            out.append(n)
    # graph inputs go into the buffer of the first node that names them (ggml-alloc.c)
    return out, splits
