"""A catalogue of common accelerators, and the pure functions around it.

Standard library and `hubmem.units` only: this module is imported at CLI start-up.

What ``Gpu.memory_bytes`` means
-------------------------------
The memory of **one device as a framework sees it** (one ``torch.cuda`` / ROCm device, one JAX TPU
device), in exact bytes, as the vendor specifies it. Vendors write "GB" for these memories, but the
DRAM behind them comes in power-of-two sizes, so the figure is binary: NVIDIA's "80GB" H100 has
80 GiB (5 HBM stacks of 16 GiB), AMD's "192 GB" MI300X has 192 GiB, Google's TPU v4 page writes
"32 GiB" outright. The drivers confirm it: the capacity they report is always a little *below*
the GiB figure and far *above* the decimal one, e.g.

=========  ===============  =======================  ==============================
device     vendor figure    reported total           as decimal GB, it would be
=========  ===============  =======================  ==============================
A100 80GB  80 GB            81,920 MiB (= 80 GiB)    76,294 MiB
H100 80GB  80 GB            81,559 MiB (79.65 GiB)   76,294 MiB
H200       141 GB           143,771 MiB (140.4 GiB)  134,468 MiB
B200       180 GB           183,359 MiB (179.1 GiB)  171,661 MiB
MI300X     192 GB           205,822,885,888 B        183,105 MiB
=========  ===============  =======================  ==============================

So every entry below is ``<vendor figure> * 2**30``. The driver keeps a few hundred MiB of that for
itself (page tables, reserved regions: 361 MiB on H100, ~1 GiB on Blackwell), and GDDR boards with
ECC enabled (T4, L4, A10, L40S) give up a further 1/16 of the memory to the ECC check bits. Both
are noted per entry; ``memory_bytes`` keeps the vendor figure, and ``usable_bytes`` (below) is what
fit verdicts use. The CUDA context and allocator reserve are a
separate overhead term elsewhere in hubmem.

Usable memory
-------------
A fit verdict compares an estimate with ``Gpu.usable_bytes``: the device memory the CUDA / ROCm
runtime reports as the total, ``torch.cuda.get_device_properties(i).total_memory``
(``cudaDeviceProp.totalGlobalMem``), which is also what vLLM's ``--gpu-memory-utilization`` takes
its fraction of. It is below both the vendor capacity and nvidia-smi's total: an H100 80GB has
81,920 MiB, nvidia-smi shows 81,559 MiB and torch 81,089 MiB (79.19 GiB). hubmem's own overhead
term (CUDA context, allocator reserve, ``--overhead``) is then counted *inside* that figure.

Where a public log records the runtime's figure for a card, ``reported_bytes`` holds it (T4,
RTX 4090, A100 40GB, H100 SXM, H200). Every other entry applies the ratio measured on a card of
the same memory kind (`USABLE_FRACTION`): HBM x 40,536/40,960 (A100 40GB, the lowest HBM ratio on
record: H100 98.99 %, H200 99.15 %), GDDR with ECC x 15,102/16,384 (T4: the 1/16 of ECC check
bits plus the driver's reserve), GDDR without ECC x 24,563/24,576 (RTX 4090). Workstation cards
(RTX A6000, 6000 Ada, PRO 6000) get the ECC rule although ECC can be switched off: the
conservative choice for a "will it fit" question. ``hubmem gpus`` shows both figures and the
rule behind each usable one.

Bare names
----------
A bare model name with several memory variants resolves to the **smaller** one (``a100`` is the
40GB, ``v100`` the 16GB, ``h100`` the 80GB SXM, not the 94GB NVL). hubmem answers "will it fit?";
assuming the larger card is the error that costs a rented machine and an out-of-memory crash, and
the smaller variants are also the ones most clouds (and Colab) hand out by those names. The
resolved name is always shown, so a user with the larger card sees what was assumed. Names that
belong to unrelated cards (``rtx6000``: Quadro RTX 6000 24GB, RTX A6000, RTX 6000 Ada, RTX PRO
6000 Blackwell) are refused as ambiguous instead of guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from hubmem.units import GB, GiB, MiB, parse_memory  # noqa: F401  (parse_memory: hubmem.cli imports it from here)

# Usable memory of entries without a recorded runtime figure: the ratio runtime-total / vendor
# capacity measured on a card of the same memory kind (torch `total_memory` as printed in public
# logs; _CudaDeviceProperties prints bytes // 2**20 as "MB").
USABLE_FRACTION = {
    "hbm": Fraction(40_536, 40_960),  # A100-SXM4-40GB: 40,536 MiB of 40 GiB, the lowest HBM ratio seen
    "gddr-ecc": Fraction(15_102, 16_384),  # Tesla T4: 15,102 MiB of 16 GiB (ECC takes 1/16, driver the rest)
    "gddr": Fraction(24_563, 24_576),  # GeForce RTX 4090: 24,563 MiB of 24 GiB (no ECC)
}
USABLE_RULE = {
    "hbm": "capacity x 40,536/40,960 (A100 40GB as reported by torch)",
    "gddr-ecc": "capacity x 15,102/16,384 (T4 as reported by torch: ECC 1/16 + driver reserve)",
    "gddr": "capacity x 24,563/24,576 (RTX 4090 as reported by torch)",
}


@dataclass(frozen=True)
class Gpu:
    """One accelerator model: a single device as a framework sees it."""

    name: str
    """Display name, e.g. ``"H100 SXM 80GB"``."""
    key: str
    """Canonical id, e.g. ``"h100-80gb"``; accepted by `find_gpu`."""
    memory_bytes: int
    """Exact bytes of memory of one device, as the vendor specifies it (see the module docstring)."""
    vendor: str
    aliases: tuple[str, ...]
    """Other names `find_gpu` accepts (compared after `_normalise`), incl. nvidia-smi product names."""
    source: str
    """The vendor specification (page or datasheet) the memory figure comes from."""
    note: str = ""
    memory_kind: str = "hbm"
    """``hbm``, ``gddr-ecc`` (GDDR with ECC on by default) or ``gddr``: picks the usable-memory rule."""
    reported_bytes: int | None = None
    """What the CUDA/ROCm runtime reports as the device's total (``torch.cuda.get_device_properties(
    i).total_memory``), where a public log records it; see `usable_bytes`."""

    @property
    def usable_bytes(self) -> int:
        """Memory a framework can allocate on this device: see "Usable memory" in the module docstring."""
        if self.reported_bytes is not None:
            return self.reported_bytes
        return (
            self.memory_bytes
            * USABLE_FRACTION[self.memory_kind].numerator
            // (USABLE_FRACTION[self.memory_kind].denominator)
        )

    @property
    def usable_source(self) -> str:
        if self.reported_bytes is not None:
            return "reported by the runtime (torch total_memory)"
        return f"{self.memory_kind} rule: {USABLE_RULE[self.memory_kind]}"


class UnknownGpuError(ValueError):
    """A GPU name that is not in the catalogue, or that names several cards.

    ``suggestions`` holds the keys of the close (or, for an ambiguous name, the candidate) entries.
    """

    def __init__(self, name: str, suggestions: Iterable[str] = (), *, ambiguous: bool = False) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        self.ambiguous = ambiguous
        if not name.strip():
            message = "no GPU name given; `hubmem gpus` lists the known ones"
        elif ambiguous:
            message = f"GPU name {name!r} is ambiguous; say which: {', '.join(self.suggestions)}"
        elif self.suggestions:
            message = f"unknown GPU {name!r}; did you mean: {', '.join(self.suggestions)}?"
        else:
            message = f"unknown GPU {name!r}; `hubmem gpus` lists the known ones"
        self.message = message
        super().__init__(message)


def _gib(n: int) -> int:
    return n * GiB


_SRC_A100 = "NVIDIA A100 Tensor Core GPU datasheet (A100 40GB HBM2, A100 80GB HBM2e)"
_SRC_H100 = "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM 80GB, H100 PCIe 80GB, H100 NVL 94GB)"
_SRC_V100 = "NVIDIA Tesla V100 GPU datasheet (16 GB or 32 GB HBM2)"
_SRC_ROCM = "AMD ROCm documentation, 'AMD GPU specifications' table, VRAM (GiB) column"
_ECC_NOTE = "GDDR with ECC on by default in data centres: 1/16 of it holds check bits"

# Ordered by memory; within one size, the COMMON entries first in COMMON's order, then the rest.
CATALOGUE: tuple[Gpu, ...] = (
    Gpu(
        "T4 16GB",
        "t4-16gb",
        _gib(16),
        "NVIDIA",
        ("t4", "tesla t4", "nvidia t4"),
        "NVIDIA T4 Tensor Core GPU datasheet (16 GB GDDR6)",
        f"{_ECC_NOTE}: nvidia-smi reports 15,360 MiB (modal-labs/modal-client#2797)",
        memory_kind="gddr-ecc",
        reported_bytes=15_102 * MiB,
    ),
    Gpu(
        "V100 16GB",
        "v100-16gb",
        _gib(16),
        "NVIDIA",
        ("v100", "tesla v100-sxm2-16gb", "tesla v100-pcie-16gb", "v100-sxm2-16gb", "v100-pcie-16gb"),
        _SRC_V100,
        "bare 'v100' means this 16GB card (the smaller variant and the common cloud one)",
    ),
    Gpu(
        "TPU v5e",
        "tpu-v5e",
        _gib(16),
        "Google",
        ("v5e", "tpuv5e", "v5litepod", "tpu v5 lite", "tpu v5litepod"),
        "Google Cloud TPU documentation, 'TPU v5e' (HBM capacity per chip: 16 GB)",
        "per chip (one JAX device); Google writes GB, vLLM tpu-inference uses 16 * 1024**3",
    ),
    Gpu(
        "L4 24GB",
        "l4-24gb",
        _gib(24),
        "NVIDIA",
        ("l4", "nvidia l4"),
        "NVIDIA L4 Tensor Core GPU datasheet (24 GB GDDR6)",
        f"{_ECC_NOTE}: nvidia-smi reports 23,034 MiB (modal-labs/modal-client#2797)",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "RTX 4090 24GB",
        "rtx4090-24gb",
        _gib(24),
        "NVIDIA",
        ("4090", "rtx4090", "rtx 4090", "geforce rtx 4090", "nvidia geforce rtx 4090"),
        "NVIDIA GeForce RTX 4090 specifications (24 GB GDDR6X)",
        memory_kind="gddr",
        reported_bytes=24_563 * MiB,
    ),
    Gpu(
        "A10G 24GB",
        "a10g-24gb",
        _gib(24),
        "NVIDIA",
        ("a10g", "nvidia a10g"),
        "AWS EC2 G5 instance specifications (NVIDIA A10G Tensor Core GPU, 24 GB per GPU)",
        f"AWS-only variant of the A10; {_ECC_NOTE}",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "A10 24GB",
        "a10-24gb",
        _gib(24),
        "NVIDIA",
        ("a10", "nvidia a10"),
        "NVIDIA A10 Tensor Core GPU datasheet (24 GB GDDR6)",
        f"{_ECC_NOTE}: nvidia-smi reports 23,028 MiB (modal-labs/modal-client#2797)",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "RTX 3090 24GB",
        "rtx3090-24gb",
        _gib(24),
        "NVIDIA",
        ("3090", "rtx3090", "rtx 3090", "geforce rtx 3090", "nvidia geforce rtx 3090"),
        "NVIDIA GeForce RTX 3090 specifications (24 GB GDDR6X)",
        memory_kind="gddr",
    ),
    Gpu(
        "RTX 5090 32GB",
        "rtx5090-32gb",
        _gib(32),
        "NVIDIA",
        ("5090", "rtx5090", "rtx 5090", "geforce rtx 5090", "nvidia geforce rtx 5090"),
        "NVIDIA GeForce RTX 5090 specifications (32 GB GDDR7)",
        memory_kind="gddr",
    ),
    Gpu(
        "V100 32GB",
        "v100-32gb",
        _gib(32),
        "NVIDIA",
        ("tesla v100-sxm2-32gb", "tesla v100-pcie-32gb", "v100-sxm2-32gb", "v100-pcie-32gb", "v100s"),
        _SRC_V100,
    ),
    Gpu(
        "TPU v4",
        "tpu-v4",
        _gib(32),
        "Google",
        ("v4", "tpuv4"),
        "Google Cloud TPU documentation, 'TPU v4' (HBM2 capacity: 32 GiB per chip)",
        "per chip: its two TensorCores appear as one JAX device (megacore)",
    ),
    Gpu(
        "TPU v6e (Trillium)",
        "tpu-v6e",
        _gib(32),
        "Google",
        ("v6e", "tpuv6e", "trillium", "tpu v6 lite"),
        "Google Cloud TPU documentation, 'TPU v6e' (HBM capacity per chip: 32 GB)",
        "per chip (one JAX device); vLLM tpu-inference uses 32 * 1024**3",
    ),
    Gpu(
        "A100 40GB",
        "a100-40gb",
        _gib(40),
        "NVIDIA",
        ("a100", "a100-sxm4-40gb", "a100-pcie-40gb", "nvidia a100-sxm4-40gb", "nvidia a100-pcie-40gb"),
        _SRC_A100,
        "bare 'a100' means this 40GB card (the smaller variant; AWS p4d, GCP a2-highgpu, Colab); "
        "nvidia-smi reports 40,960 MiB (modal-labs/modal-client#2797)",
        reported_bytes=40_536 * MiB,
    ),
    Gpu(
        "L40S 48GB",
        "l40s-48gb",
        _gib(48),
        "NVIDIA",
        ("l40s", "nvidia l40s"),
        "NVIDIA L40S GPU datasheet (48 GB GDDR6 with ECC)",
        f"{_ECC_NOTE}: nvidia-smi reports 46,068 MiB (modal-labs/modal-client#2797)",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "L40 48GB",
        "l40-48gb",
        _gib(48),
        "NVIDIA",
        ("l40", "nvidia l40"),
        "NVIDIA L40 GPU datasheet (48 GB GDDR6 with ECC)",
        _ECC_NOTE,
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "RTX A6000 48GB",
        "rtx-a6000-48gb",
        _gib(48),
        "NVIDIA",
        ("a6000", "rtxa6000", "rtx a6000", "nvidia rtx a6000"),
        "NVIDIA RTX A6000 datasheet (48 GB GDDR6 with ECC)",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "RTX 6000 Ada 48GB",
        "rtx6000-ada-48gb",
        _gib(48),
        "NVIDIA",
        ("rtx6000ada", "6000ada", "rtx 6000 ada", "nvidia rtx 6000 ada generation"),
        "NVIDIA RTX 6000 Ada Generation datasheet (48 GB GDDR6 with ECC)",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "MI250X 128GB (one 64GB GCD)",
        "mi250x-64gb",
        _gib(64),
        "AMD",
        ("mi250x", "mi250x-128gb", "mi250x-gcd", "instinct mi250x", "amd instinct mi250x"),
        f"{_SRC_ROCM} (MI250X: 128 GiB, 2 GCDs)",
        "one MI250X package is two GCDs, and ROCm shows each as its own 64 GiB device: "
        "a single process sees 64 GiB, the package's 128 GiB only through model parallelism",
    ),
    Gpu(
        "A100 80GB",
        "a100-80gb",
        _gib(80),
        "NVIDIA",
        ("a100-sxm4-80gb", "a100 80gb pcie", "nvidia a100-sxm4-80gb", "nvidia a100 80gb pcie"),
        _SRC_A100,
        "nvidia-smi reports 81,920 MiB (modal-labs/modal-client#2797)",
    ),
    Gpu(
        "H100 SXM 80GB",
        "h100-80gb",
        _gib(80),
        "NVIDIA",
        ("h100", "h100-sxm", "h100-sxm5", "h100-sxm-80gb", "h100 80gb hbm3", "nvidia h100 80gb hbm3"),
        _SRC_H100,
        "bare 'h100' means this card (80GB, like the PCIe card; the 94GB NVL is 'h100-nvl'); "
        "nvidia-smi reports 81,559 MiB (modal-labs/modal-client#2797)",
        reported_bytes=81_089 * MiB,
    ),
    Gpu(
        "H100 PCIe 80GB",
        "h100-pcie-80gb",
        _gib(80),
        "NVIDIA",
        ("h100-pcie", "h100 pcie", "nvidia h100 pcie"),
        _SRC_H100,
        "HBM2e",
    ),
    Gpu(
        "H100 NVL 94GB",
        "h100-nvl-94gb",
        _gib(94),
        "NVIDIA",
        ("h100-nvl", "h100nvl", "nvidia h100 nvl"),
        _SRC_H100,
        "per card (NVIDIA sells them in bridged pairs, 188GB for two); nvidia-smi reports 95,830 MiB",
    ),
    Gpu(
        "TPU v5p",
        "tpu-v5p",
        _gib(95),
        "Google",
        ("v5p", "tpuv5p"),
        "Google Cloud TPU documentation, 'TPU v5p' (HBM2e capacity: 95 GB per chip)",
        "per chip (one JAX device); vLLM tpu-inference uses 95 * 1024**3",
    ),
    Gpu(
        "RTX PRO 6000 Blackwell 96GB",
        "rtx-pro-6000-96gb",
        _gib(96),
        "NVIDIA",
        (
            "rtxpro6000",
            "rtx pro 6000",
            "rtx pro 6000 blackwell",
            "nvidia rtx pro 6000 blackwell server edition",
            "nvidia rtx pro 6000 blackwell workstation edition",
        ),
        "NVIDIA RTX PRO 6000 Blackwell datasheet (96 GB GDDR7 with ECC)",
        memory_kind="gddr-ecc",
    ),
    Gpu(
        "H200 141GB",
        "h200-141gb",
        _gib(141),
        "NVIDIA",
        ("h200", "h200-sxm", "h200-nvl", "nvidia h200", "nvidia h200 nvl"),
        "NVIDIA H200 Tensor Core GPU datasheet (141 GB HBM3e, SXM and NVL)",
        "141 GiB, not 141e9 bytes: nvidia-smi reports 143,771 MiB, more than 141e9 bytes (134,468 MiB)",
        reported_bytes=143_156 * MiB,
    ),
    Gpu(
        "B200 180GB",
        "b200-180gb",
        _gib(180),
        "NVIDIA",
        ("b200", "b200-192gb", "nvidia b200", "hgx b200", "dgx b200"),
        "NVIDIA DGX B200 / HGX B200 specifications (1,440 GB total GPU memory for 8 GPUs)",
        "shipping HGX/DGX B200 expose 180 GB of the 192 GB first announced; "
        "nvidia-smi reports 183,359 MiB (NVIDIA/TensorRT-LLM#10278)",
    ),
    Gpu(
        "GB200 186GB (per GPU)",
        "gb200-186gb",
        _gib(186),
        "NVIDIA",
        ("gb200", "nvidia gb200", "gb200-nvl72", "gb200nvl72"),
        "NVIDIA GB200 NVL72 specifications (GB200 superchip: up to 372 GB HBM3e for its 2 GPUs)",
        "one of the superchip's two Blackwell GPUs; earlier material says 192 GB; "
        "nvidia-smi reports 189,471 MiB",
    ),
    Gpu(
        "MI300X 192GB",
        "mi300x-192gb",
        _gib(192),
        "AMD",
        ("mi300x", "instinct mi300x", "amd instinct mi300x"),
        f"{_SRC_ROCM} (MI300X: 192 GiB)",
        "rocm-smi reports 205,822,885,888 bytes (191.7 GiB)",
    ),
    Gpu(
        "MI325X 256GB",
        "mi325x-256gb",
        _gib(256),
        "AMD",
        ("mi325x", "instinct mi325x", "amd instinct mi325x"),
        f"{_SRC_ROCM} (MI325X: 256 GiB)",
    ),
    Gpu(
        "MI355X 288GB",
        "mi355x-288gb",
        _gib(288),
        "AMD",
        ("mi355x", "instinct mi355x", "amd instinct mi355x"),
        f"{_SRC_ROCM} (MI355X: 288 GiB)",
    ),
)

# The short list for the "fits on" column: what people rent. Its order breaks ties in size.
COMMON: tuple[Gpu, ...] = tuple(
    next(g for g in CATALOGUE if g.key == key)
    for key in (
        "t4-16gb",
        "l4-24gb",
        "rtx4090-24gb",
        "a10g-24gb",
        "a100-40gb",
        "l40s-48gb",
        "a100-80gb",
        "h100-80gb",
        "h200-141gb",
        "b200-180gb",
        "mi300x-192gb",
    )
)

# Names that belong to several unrelated cards: refused, listing the candidates.
_AMBIGUOUS: dict[str, tuple[str, ...]] = {
    "rtx6000": ("rtx-a6000-48gb", "rtx6000-ada-48gb", "rtx-pro-6000-96gb"),
    "6000": ("rtx-a6000-48gb", "rtx6000-ada-48gb", "rtx-pro-6000-96gb"),
    "tpuv5": ("tpu-v5e", "tpu-v5p"),
    "v5": ("tpu-v5e", "tpu-v5p"),
}

# Words that only say who made the card; dropped before comparing names.
_VENDOR_PREFIXES = ("nvidia", "amd", "instinct", "geforce", "tesla", "google", "cloud")


def _normalise(name: str) -> str:
    """Lower-case, drop separators and leading vendor words, spell a trailing ``GiB`` as ``gb``.

    ``"NVIDIA A100_80GB"``, ``"a100 80gb"`` and ``"A100-80GiB"`` all become ``"a10080gb"``.
    """
    text = re.sub(r"[^a-z0-9]", "", name.lower())
    stripped = True
    while stripped:
        stripped = False
        for word in _VENDOR_PREFIXES:
            if text.startswith(word) and len(text) > len(word):
                text = text[len(word) :]
                stripped = True
    return re.sub(r"(\d)gib$", r"\1gb", text)


def _build_index(catalogue: Iterable[Gpu]) -> dict[str, Gpu]:
    index: dict[str, Gpu] = {}

    def add(form: str, gpu: Gpu) -> None:
        other = index.setdefault(form, gpu)
        if other is not gpu:
            raise AssertionError(f"GPU name {form!r} is claimed by both {other.key} and {gpu.key}")

    for gpu in catalogue:
        for alias in (gpu.key, *gpu.aliases):
            form = _normalise(alias)
            add(form, gpu)
            # "a100-80gb" may also be typed "a100-80"
            if re.search(r"\d\dgb$", form):
                add(form[:-2], gpu)
    for form in _AMBIGUOUS:
        if form in index:
            raise AssertionError(f"ambiguous GPU name {form!r} is also an alias of {index[form].key}")
    return index


_INDEX = _build_index(CATALOGUE)


def find_gpu(name: str) -> Gpu:
    """The catalogue entry called ``name``: its key, or any alias, in any case, with any separators.

    Raises `UnknownGpuError` (a `ValueError`) listing close matches for an unknown name, and the
    candidates for an ambiguous one.
    """
    form = _normalise(name)
    if form in _INDEX:
        return _INDEX[form]
    if form in _AMBIGUOUS:
        raise UnknownGpuError(name, _AMBIGUOUS[form], ambiguous=True)
    close = difflib.get_close_matches(form, _INDEX, n=8, cutoff=0.6)
    keys = list(dict.fromkeys(_INDEX[c].key for c in close))[:4]
    raise UnknownGpuError(name, keys)


_COMMON_RANK = {id(gpu): rank for rank, gpu in enumerate(COMMON)}


def _common_rank(gpu: Gpu) -> int:
    rank = _COMMON_RANK.get(id(gpu))  # per row of every audit: no dataclass __eq__ over the list
    if rank is None:
        rank = next((r for r, common in enumerate(COMMON) if common == gpu), len(COMMON))
    return rank


def smallest_fitting(required_bytes: int, *, catalogue: Iterable[Gpu] = CATALOGUE) -> Gpu | None:
    """The GPU with the least usable memory that is still ``>= required_bytes``; None if none is enough.

    Ties in memory go to the entry earlier in `COMMON` (then earlier in ``catalogue``). Pass
    ``catalogue=COMMON`` for the "fits on" column.
    """
    if isinstance(required_bytes, bool) or not isinstance(required_bytes, int):
        raise TypeError(f"required_bytes must be an int, not {type(required_bytes).__name__}")
    if required_bytes < 0:
        raise ValueError(f"required_bytes must be >= 0, got {required_bytes}")
    candidates = [
        (gpu.usable_bytes, _common_rank(gpu), position, gpu)
        for position, gpu in enumerate(catalogue)
        if gpu.usable_bytes >= required_bytes
    ]
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None


def catalogue_rows(catalogue: Iterable[Gpu] = CATALOGUE) -> list[dict[str, object]]:
    """One plain dict per GPU for the `hubmem gpus` listing (rendering is the caller's business).

    Keys: name, key, memory_bytes (int), memory_gib and memory_gb (unrounded floats), usable_bytes
    (int) and usable_source (see "Usable memory"), vendor,
    aliases (list), source, note, common (bool: in the "fits on" short list).
    """
    return [
        {
            "name": gpu.name,
            "key": gpu.key,
            "memory_bytes": gpu.memory_bytes,
            "memory_gib": gpu.memory_bytes / GiB,
            "memory_gb": gpu.memory_bytes / GB,
            "usable_bytes": gpu.usable_bytes,
            "usable_source": gpu.usable_source,
            "vendor": gpu.vendor,
            "aliases": list(gpu.aliases),
            "source": gpu.source,
            "note": gpu.note,
            "common": gpu in COMMON,
        }
        for gpu in catalogue
    ]


# The card a multi-GPU answer is given in when no single common card holds the model.
MULTI_GPU_REFERENCE = "h100-80gb"
