"""Fit verdicts: does an estimate fit on N GPUs of one kind, how many would it take, and the reverse
solve (the longest context and the largest batch that still fit). Pure: no network; bytes are ints.

Splitting over N GPUs is tensor parallelism (Megatron-LM, Shoeybi et al. 2019 §3): each GPU holds
1/N of every weight matrix and of the activations, and ceil(k/N) of the k KV heads (vLLM replicates
KV heads when N > k, `get_num_kv_heads` in vllm/config; an MLA latent counts as one head, kept
whole on every GPU); the per-GPU overhead (CUDA context,
framework reserve) is paid on every GPU. Engines also need N to divide the head count; that is not
enforced here. Every total is compared with the GPU's *usable* memory (`hubmem.fit.gpus`, "Usable
memory").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from hubmem.bounds import at_most
from hubmem.errors import InvalidInputError
from hubmem.memory import inference as memory
from hubmem.model.architecture import Architecture

# Reverse solves search 1 .. SEARCH_LIMIT; a model whose limit is higher gets SEARCH_LIMIT.
SEARCH_LIMIT = 2**31
# The most GPUs `gpus_needed` considers.
MAX_GPUS = 4096


@dataclass(frozen=True)
class Target:
    """The GPUs a verdict is asked about: `count` devices with `usable_bytes` each."""

    name: str
    usable_bytes: int
    count: int = 1
    key: str | None = None  # catalogue key; None for --gpu-memory

    def describe(self) -> str:
        return f"{self.count}× {self.name}"


def target(gpu: str | None, gpu_memory: int | None = None, num_gpus: int = 1) -> Target | None:
    """The Target for --gpu NAME or --gpu-memory BYTES (with --num-gpus); None when neither is given."""
    from hubmem.fit.gpus import UnknownGpuError, find_gpu

    if num_gpus < 1:
        raise InvalidInputError("--num-gpus must be at least 1")
    at_most(num_gpus, "num_gpus")
    if gpu is not None and gpu_memory is not None:
        raise InvalidInputError("give --gpu or --gpu-memory, not both")
    if gpu_memory is not None:
        if gpu_memory < 1:
            raise InvalidInputError("--gpu-memory must be more than 0 bytes")
        return Target("custom GPU", gpu_memory, num_gpus)
    if gpu is None:
        if num_gpus != 1:
            raise InvalidInputError("--num-gpus needs --gpu or --gpu-memory")
        return None
    try:
        found = find_gpu(gpu)
    except UnknownGpuError as e:
        raise InvalidInputError(str(e)) from e
    return Target(found.name, found.usable_bytes, num_gpus, found.key)


def per_gpu_bytes(row: memory.InferenceRow, arch: Architecture, n: int, serving_factor: bool = False) -> int:
    """Memory on each of n GPUs under tensor parallelism (see the module docstring).

    With the rule-of-thumb total (`serving_factor`) the row's margin sits in `overhead`; it scales
    with the weights, so it is split like them instead of being paid on every GPU.
    """
    # MLA's latent cache is one "head" that every GPU keeps whole (vLLM gives MLA num_kv_heads 1);
    # so is an SSM-only model's state (no KV heads): both stay unsplit, the conservative reading.
    k = 1 if getattr(arch, "mla", None) is not None else max(arch.num_kv_heads, 1)
    kv = row.kv_cache * -(-k // n) // k  # ceil(k/n) heads of k on each GPU
    shared = row.weights + row.activations + (row.overhead if serving_factor else 0)
    each = 0 if serving_factor else row.overhead
    return -(-shared // n) + kv + each


def fits_on_label(
    row: memory.InferenceRow,
    arch: Architecture,
    serving_factor: bool = False,
    counts=None,
    bf16_row: memory.InferenceRow | None = None,
) -> str:
    """The estimate table's "fits on": the smallest common GPU that holds the row on its own, else the
    fewest H100 80GB that hold it split tensor-parallel, by the same per-GPU rule as `--gpu`.

    A row that needs a format some GPUs lack (FP8, MXFP4: hubmem.fit.capability) is costed on those
    GPUs at `bf16_row`, as transformers dequantizes it there; such a pick reads "A100 40GB (as bf16)"."""
    from hubmem.fit import capability
    from hubmem.fit.gpus import COMMON, MULTI_GPU_REFERENCE, find_gpu, smallest_fitting

    need = None if counts is None or bf16_row is None else capability.requirement(row.precision, counts)
    if need is None:
        gpu = smallest_fitting(per_gpu_bytes(row, arch, 1, serving_factor), catalogue=COMMON)
        if gpu is not None:
            return gpu.name
    else:
        assert bf16_row is not None
        native = smallest_fitting(
            per_gpu_bytes(row, arch, 1, serving_factor),
            catalogue=[g for g in COMMON if g.supports(need.feature)],
        )
        other = smallest_fitting(
            per_gpu_bytes(bf16_row, arch, 1, serving_factor),
            catalogue=[g for g in COMMON if not g.supports(need.feature)],
        )
        if native is not None and (other is None or native.usable_bytes <= other.usable_bytes):
            return native.name
        if other is not None:
            return f"{other.name} (as bf16)"
    reference = find_gpu(MULTI_GPU_REFERENCE)
    n = fewest_gpus(lambda n: per_gpu_bytes(row, arch, n, serving_factor) <= reference.usable_bytes)
    return f"{n}× {reference.name}" if n else "none"


def fewest_gpus(fits: Callable[[int], bool], limit: int = MAX_GPUS) -> int | None:
    """The smallest n in 1..limit with fits(n), for a fits() that stays true once true; else None."""
    return _first_true(fits, 1, limit)


def _first_true(pred: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Smallest x in [lo, hi] with pred(x), pred monotone (false ... false true ... true)."""
    if not pred(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def largest_fitting(fits: Callable[[int], bool], limit: int = SEARCH_LIMIT) -> int:
    """The largest x in 1..limit with fits(x), for a fits() that stays false once false; 0 if fits(1)
    is false. Doubling then bisection: about 2·log2(answer) evaluations."""
    if not fits(1):
        return 0
    good = 1
    while good < limit:
        probe = min(good * 2, limit)
        if not fits(probe):
            first_bad = _first_true(lambda x: not fits(x), good + 1, probe)
            return (first_bad or probe + 1) - 1
        good = probe
    return limit


@dataclass(frozen=True)
class Verdict:
    precision: str
    label: str
    target: Target
    per_gpu_bytes: int  # on each of target.count GPUs
    gpus_needed: int | None  # fewest such GPUs that hold it; None: not even MAX_GPUS (or overhead alone)
    max_seq_len: int | None  # longest sequence that fits at the chosen batch; None: rule-of-thumb totals
    max_batch: int | None  # most sequences that fit at the chosen length; None: rule-of-thumb totals
    judged_as: str = ""  # the precision whose cost was judged, when the GPU makes it another (capability)
    note: str = ""  # one line saying why (hubmem.fit.capability)
    runnable: bool = True  # False: no kernel runs this format on the GPU (refused, whatever the memory)

    @property
    def fits(self) -> bool:
        return self.runnable and self.per_gpu_bytes <= self.target.usable_bytes

    @property
    def headroom(self) -> int:
        """Usable bytes left on each GPU (negative: how much is missing)."""
        return self.target.usable_bytes - self.per_gpu_bytes

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "gpu": self.target.name,
            "gpu_key": self.target.key,
            "num_gpus": self.target.count,
            "usable_bytes_per_gpu": self.target.usable_bytes,
            "per_gpu_bytes": self.per_gpu_bytes,
            "fits": self.fits,
            "headroom_bytes": self.headroom,
            "gpus_needed": self.gpus_needed,
            "max_seq_len": self.max_seq_len,
            "max_batch": self.max_batch,
            "judged_as": self.judged_as or self.precision,
            "note": self.note,
            "runnable": self.runnable,
        }


def row_at(
    arch: Architecture, counts, settings: memory.InferenceSettings, precision: str, seq_len: int, batch: int
) -> memory.InferenceRow:
    return memory.inference_row(arch, counts, precision, replace(settings, seq_len=seq_len, batch=batch))


def verdict(est, precision: str, tgt: Target) -> Verdict:
    """The verdict for one precision row of an `Estimate` on the target GPUs."""
    from hubmem.fit import capability

    arch, counts, settings = est.architecture, est.counts, est.settings
    rule = settings.serving_factor is not None
    row = est.row(precision)
    usable, n = tgt.usable_bytes, tgt.count
    gpu = target_gpu(tgt)
    need = capability.dequantized_on(gpu, precision, counts)
    judged = precision
    note = capability.fp16_note(gpu, precision) or capability.nvfp4_note(gpu, precision, counts)
    if need is not None and gpu is not None:
        judged, note = capability.DEQUANTIZED_TO, capability.note(gpu, need)
        row = memory.inference_row(arch, counts, judged, settings)

    runnable = capability.runnable(gpu, precision, counts)

    def fits_on(count: int) -> bool:
        return runnable and per_gpu_bytes(row, arch, count, rule) <= usable

    def fits_at(seq_len: int, batch: int) -> bool:
        r = row_at(arch, counts, settings, judged, seq_len, batch)
        return runnable and per_gpu_bytes(r, arch, n, rule) <= usable

    return Verdict(
        precision=precision,
        label=est.row(precision).label + (f" (as {judged})" if judged != precision else ""),
        target=tgt,
        per_gpu_bytes=per_gpu_bytes(row, arch, n, rule),
        gpus_needed=fewest_gpus(fits_on),
        max_seq_len=None if rule else largest_fitting(lambda s: fits_at(s, settings.batch)),
        max_batch=None if rule else largest_fitting(lambda b: fits_at(settings.seq_len, b)),
        judged_as=judged if judged != precision else "",
        note=note,
        runnable=runnable,
    )


def target_gpu(tgt: Target):
    """The catalogue entry of a --gpu target (None for --gpu-memory: no capability is known)."""
    from hubmem.fit.gpus import find_gpu

    return None if tgt.key is None else find_gpu(tgt.key)


def verdicts(est, tgt: Target) -> list[Verdict]:
    return [verdict(est, r.precision, tgt) for r in est.rows]


FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


def auto_dtype(est) -> tuple[str, str]:
    """What transformers >= 5's default `from_pretrained(dtype="auto")` loads (PR #34919 made "auto" the
    default): config.json's `dtype` / `torch_dtype` if it has one, else the checkpoint's floating dtype
    (`get_state_dict_dtype`: the first floating tensor's; here the dtype most floating elements have).
    Returns (precision key "fp32" or "bf16", the reason in words)."""
    dtype = est.architecture.dtype
    if dtype:
        key = "fp32" if dtype in ("float32", "fp32") else "bf16"
        return key, f"config.json dtype {dtype}"
    stored = {d: n for d, n in est.counts.stored_by_dtype.items() if d in FLOAT_DTYPES}
    if stored:
        top = max(stored, key=lambda d: stored[d])
        key = "fp32" if top in ("F32", "F64") else "bf16"
        return key, f"no dtype in config.json: the checkpoint's {top}"
    return "bf16", "no dtype in config.json or checkpoint: 16-bit assumed"


def default_precision(est) -> str:
    """The precision a plain `from_pretrained(...)` loads at (transformers >= 5, dtype="auto"): the
    checkpoint as stored when it is quantized or mixed, else `auto_dtype`."""
    keys = [r.precision for r in est.rows]
    if "stored" in keys:
        return "stored"
    key, _ = auto_dtype(est)
    if key in keys:
        return key
    return "bf16" if "bf16" in keys else keys[0]
