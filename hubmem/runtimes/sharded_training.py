"""What DeepSpeed ZeRO and PyTorch FSDP keep on a GPU beyond the sharded model states: gathered
parameters, persistent small parameters, gradient buckets. Pure: parameter counts and settings in,
element counts and bytes out (hubmem.memory.training turns them into terms per regime).

DeepSpeed (read at deepspeedai/DeepSpeed 0.19.6, commit edaa722):

- Defaults (`runtime/zero/config.py` DeepSpeedZeroConfig): reduce_bucket_size 5e8, allgather_bucket_size
  5e8, stage3_prefetch_bucket_size 5e7, stage3_param_persistence_threshold 1e5, stage3_max_live_parameters
  1e9, stage3_max_reuse_distance 1e9, contiguous_gradients True, overlap_comm None = True for stage 3 only
  (`overlap_comm_valid`).
- ZeRO-1/2 (`runtime/zero/stage_1_and_2.py` `setup_buckets`): with contiguous_gradients, one gradient
  bucket `torch.empty(reduce_bucket_size, dtype=self.dtype)` in the 16-bit model dtype, a second one when
  overlap_comm is on ("double buffers").
- ZeRO-1/2 all-gather of the updated weights (`runtime/utils.py` `all_gather_dp_groups`): with
  `all_gather_into_tensor` (every NCCL torch has it) it gathers in place into the flat 16-bit groups, so
  allgather_bucket_size allocates nothing.
- ZeRO-3 (`runtime/zero/stage3.py`): one gradient bucket of reduce_bucket_size elements per parameter
  dtype (`bucket.buffer = torch.empty(self.reduce_bucket_size, ...)`, contiguous_gradients).
- ZeRO-3 persistence (`runtime/zero/partition_parameters.py` `_zero_init_param`): a parameter of at most
  stage3_param_persistence_threshold elements is `ds_persist`: kept whole on every rank through training
  (beside its partition), never released (`partitioned_param_coordinator.py` `__params_to_release`).
- ZeRO-3 release (`partitioned_param_coordinator.py` `__params_to_release`): once the trace of one step is
  complete, a module's parameters are *not* released after use when they reoccur within
  stage3_max_reuse_distance elements of the trace ahead (the loop adds each later module's numel and stops
  once the sum reaches the distance). Forward then backward, a module's next use is its backward, 2·A
  elements away (A = the parameters after it in forward order, fetched again in reverse), so at the turn
  from forward to backward every module with 2·A < max_reuse_distance is still gathered: the last
  max_reuse_distance / 2 elements of the model.
- ZeRO-3 prefetch (`fetch_sub_module`): the next parameters of the trace that are not available are
  all-gathered until their numel reaches min(stage3_prefetch_bucket_size, stage3_max_live_parameters −
  elements available).

PyTorch FSDP (torch/distributed/fsdp, the FSDP1 `FullyShardedDataParallel` of torch 2.x, wrapped by
decoder layer as accelerate's TRANSFORMER_BASED_WRAP and the HF Trainer's `fsdp_transformer_layer_cls_to_wrap`):

- `_runtime_utils.py` `_post_forward_reshard`: FULL_SHARD frees each unit's unsharded flat parameter after
  its forward, except the root's ("Do not free the root's parameters in the post-forward ... they are
  immediately used for backward"): the root unit (embeddings, lm_head) stays gathered into backward.
- `fully_sharded_data_parallel.py`: backward_prefetch defaults to BACKWARD_PRE: the next unit's all-gather
  is issued before the current unit's gradient computation, so two layer units are unsharded in backward.
- `_post_backward_hook` / `_reduce_grad`: the unit's gradient is produced unsharded (the flat parameter's
  full size, in the parameter dtype) and reduce-scattered into the shard.
- SHARD_GRAD_OP is not in RESHARD_AFTER_FORWARD_HANDLE_STRATEGIES: every unit stays unsharded from its
  forward to its backward (the whole model gathered at the turn), beside its 1/N flat shard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hubmem.errors import InvalidInputError

# DeepSpeed 0.19.6 runtime/zero/config.py defaults (elements)
REDUCE_BUCKET_SIZE = 500_000_000
PREFETCH_BUCKET_SIZE = 50_000_000
PARAM_PERSISTENCE_THRESHOLD = 100_000
MAX_LIVE_PARAMETERS = 1_000_000_000
MAX_REUSE_DISTANCE = 1_000_000_000
ZERO_BUCKET_PRESETS = ("deepspeed", "hf-auto")
DEEPSPEED_SOURCE = "DeepSpeed 0.19.6 runtime/zero (config.py defaults; stage_1_and_2.py, stage3.py, partitioned_param_coordinator.py)"
FSDP_SOURCE = "torch.distributed.fsdp (FSDP1) _runtime_utils.py _post_forward_reshard, BACKWARD_PRE prefetch, _reduce_grad"


@dataclass(frozen=True)
class ZeroBuckets:
    """DeepSpeed's bucket settings in elements; `preset` hf-auto derives the unset ones from the hidden
    size as the HF Trainer fills "auto" (transformers integrations/deepspeed.py
    `HfTrainerDeepSpeedConfig.trainer_config_finalize`: reduce_bucket_size h², stage 3:
    stage3_prefetch_bucket_size int(0.9·h²), stage3_param_persistence_threshold 10·h)."""

    preset: str = "deepspeed"
    reduce_bucket_size: int | None = None
    prefetch_bucket_size: int | None = None
    param_persistence_threshold: int | None = None
    max_live_parameters: int = MAX_LIVE_PARAMETERS
    max_reuse_distance: int = MAX_REUSE_DISTANCE
    overlap_comm: bool | None = None  # None: DeepSpeed's default (True for stage 3, False for 1 and 2)

    def __post_init__(self) -> None:
        if self.preset not in ZERO_BUCKET_PRESETS:
            raise InvalidInputError(
                f"unknown --zero-buckets '{self.preset}' ({', '.join(ZERO_BUCKET_PRESETS)})"
            )

    def resolved(self, hidden: int) -> tuple[int, int, int]:
        """(reduce_bucket_size, prefetch_bucket_size, param_persistence_threshold) for a model of width h."""
        auto = self.preset == "hf-auto"
        reduce = self.reduce_bucket_size
        prefetch = self.prefetch_bucket_size
        persist = self.param_persistence_threshold
        return (
            (hidden * hidden if auto else REDUCE_BUCKET_SIZE) if reduce is None else reduce,
            (int(0.9 * hidden * hidden) if auto else PREFETCH_BUCKET_SIZE) if prefetch is None else prefetch,
            (10 * hidden if auto else PARAM_PERSISTENCE_THRESHOLD) if persist is None else persist,
        )

    def overlap(self, stage: int) -> bool:
        return stage == 3 if self.overlap_comm is None else self.overlap_comm


def persistent_elements(parameters: int, matrix_shapes: dict[tuple[int, ...], int], threshold: int) -> int:
    """Elements of the parameters DeepSpeed keeps whole (numel ≤ threshold): every matrix of at most
    `threshold` elements, and the 1-D parameters (norm weights, biases: parameters − matrix elements),
    taken as each at most the threshold (their length is h, i or a fused 3h in every decoder here)."""
    in_matrices = sum(math.prod(shape) * n for shape, n in matrix_shapes.items())
    small = sum(math.prod(shape) * n for shape, n in matrix_shapes.items() if math.prod(shape) <= threshold)
    return max(0, parameters - in_matrices) + small


@dataclass(frozen=True)
class Trace:
    """The modules whose parameters ZeRO-3 gathers, in forward order, by numel: `pre` (the embeddings),
    `layers` (each decoder layer's modules in call order), `post` (the lm_head)."""

    pre: tuple[int, ...]
    layers: tuple[tuple[int, ...], ...]
    post: tuple[int, ...]

    def sequence(self, checkpointing: bool) -> tuple[list[int], list[int], int]:
        """(module ids in trace order, numel per id, index of the first backward step). Forward: pre,
        layers, post. Backward without checkpointing: the reverse. With activation checkpointing each layer
        is recomputed (its modules in forward order) just before its backward (torch.utils.checkpoint)."""
        sizes: list[int] = []
        pre = _ids(sizes, self.pre)
        layers = [_ids(sizes, layer) for layer in self.layers]
        post = _ids(sizes, self.post)
        forward = pre + [m for layer in layers for m in layer] + post
        if checkpointing:
            backward = list(reversed(post))
            for layer in reversed(layers):
                backward += layer + list(reversed(layer))
            backward += list(reversed(pre))
        else:
            backward = list(reversed(forward))
        return forward + backward, sizes, len(forward)


def _ids(sizes: list[int], modules: tuple[int, ...]) -> list[int]:
    start = len(sizes)
    sizes.extend(modules)
    return list(range(start, len(sizes)))


def zero3_live(
    trace: Trace, *, checkpointing: bool, max_reuse: int, prefetch: int, max_live: int, persistent: int
) -> tuple[int, int]:
    """(elements still gathered at the turn from forward to backward, elements prefetched then), as
    DeepSpeed's coordinator decides (module docstring): a forward module is kept when the numel of the trace
    strictly between its use and its next use is below `max_reuse`; the prefetch then walks the backward
    trace, skipping what is available, until it has fetched min(prefetch, max_live − available)."""
    order, sizes, turn = trace.sequence(checkpointing)
    next_use: dict[int, int] = {}
    kept_ids = set()
    prefix = [0]
    for m in order:
        prefix.append(prefix[-1] + sizes[m])
    for pos in range(len(order) - 1, -1, -1):
        m = order[pos]
        if pos < turn and m in next_use and prefix[next_use[m]] - prefix[pos + 1] < max_reuse:
            kept_ids.add(m)
        next_use[m] = pos
    # the last forward module (the lm_head) is in use at the turn: gathered either way
    kept_ids.add(order[turn - 1])
    kept = sum(sizes[m] for m in kept_ids)
    limit = min(prefetch, max_live - kept - persistent)
    fetched, seen = 0, set(kept_ids)
    for m in order[turn:]:
        if fetched >= limit:
            break
        if m not in seen:
            seen.add(m)
            fetched += sizes[m]
    return kept, fetched
