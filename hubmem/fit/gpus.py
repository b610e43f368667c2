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

So every entry of the catalogue (`CATALOGUE_FILE`, package data beside this module, read and
checked on first use) is ``<vendor figure> * 2**30``, written in GiB. The driver keeps a few
hundred MiB of that for itself (page tables, reserved regions: 361 MiB on H100, ~1 GiB on
Blackwell), and GDDR boards with ECC enabled (T4, L4, A10, L40S) give up a further 1/16 of the
memory to the ECC check bits. Both are noted per entry; ``memory_bytes`` keeps the vendor figure, and ``usable_bytes`` (below) is what
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

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from hubmem.units import GB, GiB, parse_memory

# Usable memory of entries without a recorded runtime figure: the ratio runtime-total / vendor
# capacity measured on a card of the same memory kind (torch `total_memory` as printed in public
# logs; _CudaDeviceProperties prints bytes // 2**20 as "MB").
USABLE_FRACTION = {
    "hbm": Fraction(40_536, 40_960),  # A100-SXM4-40GB: 40,536 MiB of 40 GiB, the lowest HBM ratio seen
    "gddr-ecc": Fraction(15_102, 16_384),  # Tesla T4: 15,102 MiB of 16 GiB (ECC takes 1/16, driver the rest)
    "gddr": Fraction(24_563, 24_576),  # GeForce RTX 4090: 24,563 MiB of 24 GiB (no ECC)
    # Apple silicon: Metal's recommendedMaxWorkingSetSize, 73,728 MiB of an M2 Max's 96 GiB (as
    # ggml_metal_init logs it, ggml-org/llama.cpp#3213); Macs of 32 GB and less get 2/3
    "unified": Fraction(3, 4),
}
USABLE_RULE = {
    "hbm": "capacity x 40,536/40,960 (A100 40GB as reported by torch)",
    "gddr-ecc": "capacity x 15,102/16,384 (T4 as reported by torch: ECC 1/16 + driver reserve)",
    "gddr": "capacity x 24,563/24,576 (RTX 4090 as reported by torch)",
    "unified": "RAM x 3/4 (Metal recommendedMaxWorkingSetSize of an M2 Max 96GB, as ggml_metal_init logs it)",
}


# NVIDIA compute capability each feature needs, and where that rule comes from.
CAPABILITY_RULES: dict[str, tuple[tuple[int, int], str]] = {
    "bf16": ((8, 0), "torch.cuda.is_bf16_supported(): compute capability major >= 8 (Ampere)"),
    "fp8": ((8, 9), "transformers quantizers/quantizer_finegrained_fp8.py: compute capability >= 8.9"),
    "mxfp4": ((7, 5), "transformers quantizers/quantizer_mxfp4.py: compute_capability >= (7, 5)"),
    "fp4": ((10, 0), "NVIDIA Blackwell (compute capability 10.0, 12.0): FP4 tensor cores"),
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
    compute_capability: tuple[int, int] | None = None
    """NVIDIA: (major, minor) as ``torch.cuda.get_device_capability()`` returns it; None elsewhere."""
    dtypes: tuple[str, ...] = ()
    """Other vendors: the formats their matrix units run natively (bf16, fp8, fp4); see `supports`."""

    def supports(self, feature: str) -> bool:
        """Whether the device runs ``feature`` (bf16, fp8, fp4, mxfp4) natively. NVIDIA from the compute
        capability (`CAPABILITY_RULES`); other vendors from the catalogue's ``dtypes``."""
        if self.compute_capability is not None:
            return self.compute_capability >= CAPABILITY_RULES[feature][0]
        if feature == "mxfp4":  # transformers' MXFP4 kernels are CUDA-only Triton kernels
            return False
        return feature in self.dtypes

    @property
    def capability_label(self) -> str:
        """'8.0 · bf16' / '9.0 · bf16 fp8' / 'bf16 fp8' (the formats of `supports`, fp16 always)."""
        formats = " ".join(f for f in ("bf16", "fp8", "fp4") if self.supports(f)) or "fp16 only"
        if self.compute_capability is None:
            return formats
        return f"{self.compute_capability[0]}.{self.compute_capability[1]} · {formats}"

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
        if self.reported_bytes is not None and self.memory_kind == "unified":
            return "reported by Metal (recommendedMaxWorkingSetSize, as ggml_metal_init logs it)"
        if self.reported_bytes is not None:
            return "reported by the runtime (torch total_memory)"
        return f"{self.memory_kind} rule: {USABLE_RULE[self.memory_kind]}"

    def to_dict(self) -> dict[str, object]:
        """Plain values: name, key, memory_bytes (int), memory_gib and memory_gb (unrounded floats),
        usable_bytes (int) and usable_source (see "Usable memory"), vendor, aliases (list), source,
        note, common (bool: in the "fits on" short list)."""
        return {
            "name": self.name,
            "key": self.key,
            "memory_bytes": self.memory_bytes,
            "memory_gib": self.memory_bytes / GiB,
            "memory_gb": self.memory_bytes / GB,
            "usable_bytes": self.usable_bytes,
            "usable_source": self.usable_source,
            "vendor": self.vendor,
            "aliases": list(self.aliases),
            "source": self.source,
            "note": self.note,
            "common": self in _catalogue().common,
            "compute_capability": None
            if self.compute_capability is None
            else f"{self.compute_capability[0]}.{self.compute_capability[1]}",
            "supports": [f for f in ("bf16", "fp8", "fp4") if self.supports(f)],
        }


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


def _build_index(catalogue: Iterable[Gpu], ambiguous: Iterable[str] = ()) -> dict[str, Gpu]:
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
    for form in ambiguous:
        if form in index:
            raise AssertionError(f"ambiguous GPU name {form!r} is also an alias of {index[form].key}")
    return index


# --- the data: catalogue.json beside this module, read and checked on first use ----------------

CATALOGUE_FILE = "catalogue.json"

CATALOGUE: tuple[Gpu, ...]
"""Every entry of `CATALOGUE_FILE`, in its order: by memory; within one size, the `COMMON` ones first."""
COMMON: tuple[Gpu, ...]
"""The short list for the "fits on" column (entries marked ``"common": true``): what people rent.
Its order breaks ties in size."""


class CatalogueError(ValueError):
    """`CATALOGUE_FILE` is malformed; the message names the entry and what is wrong with it."""


# Fields of an entry, with their JSON types: all of the first, any of the second.
_REQUIRED_FIELDS = {
    "key": str,
    "name": str,
    "vendor": str,
    "memory": str,
    "memory_kind": str,
    "aliases": list,
    "source": str,
}
_OPTIONAL_FIELDS = {"reported": str, "common": bool, "note": str, "compute_capability": str, "dtypes": list}
_FEATURES = ("bf16", "fp8", "fp4")
_JSON_TYPES = {str: "a string", list: "a list", bool: "true or false"}


@dataclass(frozen=True)
class _Catalogue:
    gpus: tuple[Gpu, ...]
    common: tuple[Gpu, ...]
    ambiguous: dict[str, tuple[str, ...]]
    """Names that belong to several unrelated cards -> the candidates' keys."""
    index: dict[str, Gpu]
    """`_normalise`d key or alias -> its entry."""
    common_rank: dict[int, int]
    """id() of each `COMMON` entry -> its position there."""


def _entry(raw: object, position: int) -> tuple[Gpu, bool]:
    """One entry of the data as a `Gpu`, and whether it is common; `CatalogueError` naming it if malformed."""
    label = f"GPU entry {position}"
    if isinstance(raw, dict) and isinstance(raw.get("key"), str):
        label += f" ({raw['key']})"

    def problem(text: str) -> CatalogueError:
        return CatalogueError(f"{CATALOGUE_FILE}, {label}: {text}")

    if not isinstance(raw, dict):
        raise problem(f"expected an object, not {raw!r}")
    missing = [f for f in _REQUIRED_FIELDS if f not in raw]
    unknown = [f for f in raw if f not in _REQUIRED_FIELDS and f not in _OPTIONAL_FIELDS]
    if missing or unknown:
        raise problem("; ".join([*(f"no {f}" for f in missing), *(f"unknown field {f!r}" for f in unknown)]))
    for f, kind in {**_REQUIRED_FIELDS, **_OPTIONAL_FIELDS}.items():
        if f in raw and type(raw[f]) is not kind:
            raise problem(f"{f} must be {_JSON_TYPES[kind]}, not {raw[f]!r}")
    for f in ("key", "name", "vendor", "memory", "source"):
        if not raw[f].strip():
            raise problem(f"{f} is empty")
    if not all(type(alias) is str and alias.strip() for alias in raw["aliases"]):
        raise problem(f"aliases must be non-empty strings, not {raw['aliases']!r}")
    if raw["memory_kind"] not in USABLE_FRACTION:
        raise problem(f"memory_kind {raw['memory_kind']!r} is not one of {', '.join(USABLE_FRACTION)}")
    if not raw["memory"].endswith("GiB"):
        raise problem(
            f"memory {raw['memory']!r} must be in GiB: a vendor's GB figure is binary (see hubmem.fit.gpus)"
        )
    sizes = {}
    for f in ("memory", "reported"):
        if f in raw:
            try:
                sizes[f] = parse_memory(raw[f])
            except ValueError as e:
                raise problem(f"{f}: {e}") from None
    if sizes["memory"] <= 0:
        raise problem(f"memory {raw['memory']!r} must be above 0")
    if not 0 < sizes.get("reported", 1) <= sizes["memory"]:
        raise problem(f"reported {raw['reported']!r} must be above 0 and at most memory {raw['memory']!r}")
    capability = None
    if "compute_capability" in raw:
        m = re.fullmatch(r"(\d{1,2})\.(\d)", raw["compute_capability"])
        if not m:
            raise problem(f"compute_capability {raw['compute_capability']!r} must be major.minor, e.g. 8.9")
        capability = (int(m.group(1)), int(m.group(2)))
    if not all(f in _FEATURES for f in raw.get("dtypes", [])):
        raise problem(f"dtypes must be from {', '.join(_FEATURES)}, not {raw['dtypes']!r}")
    if ("compute_capability" in raw) == ("dtypes" in raw):
        raise problem("give compute_capability (NVIDIA) or dtypes (other vendors), one of them")
    gpu = Gpu(
        name=raw["name"],
        key=raw["key"],
        memory_bytes=sizes["memory"],
        vendor=raw["vendor"],
        aliases=tuple(raw["aliases"]),
        source=raw["source"],
        note=raw.get("note", ""),
        memory_kind=raw["memory_kind"],
        reported_bytes=sizes.get("reported"),
        compute_capability=capability,
        dtypes=tuple(raw.get("dtypes", ())),
    )
    return gpu, raw.get("common", False)


def _parse_catalogue(data: object) -> _Catalogue:
    """The catalogue in `CATALOGUE_FILE`'s JSON ``data``, every entry checked: `CatalogueError` if malformed."""
    if not isinstance(data, dict) or type(data.get("gpus")) is not list:
        raise CatalogueError(f'{CATALOGUE_FILE}: expected an object with a list of "gpus"')
    unknown = sorted(set(data) - {"about", "ambiguous", "gpus"})
    if unknown:
        raise CatalogueError(f"{CATALOGUE_FILE}: unknown field {', '.join(map(repr, unknown))}")
    entries = [_entry(raw, position) for position, raw in enumerate(data["gpus"], 1)]
    gpus = tuple(gpu for gpu, _ in entries)
    for field in ("key", "name"):
        values = [getattr(gpu, field) for gpu in gpus]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise CatalogueError(
                f"{CATALOGUE_FILE}: GPU {field} {', '.join(map(repr, twice))} in several entries"
            )
    ambiguous_data = data.get("ambiguous", {})
    keys = {gpu.key for gpu in gpus}
    if type(ambiguous_data) is not dict:
        raise CatalogueError(f"{CATALOGUE_FILE}: ambiguous must be an object of name -> keys")
    ambiguous: dict[str, tuple[str, ...]] = {}
    for name, candidates in ambiguous_data.items():
        if type(candidates) is not list or len(candidates) < 2 or not set(candidates) <= keys:
            raise CatalogueError(f"{CATALOGUE_FILE}: ambiguous name {name!r} must list two or more GPU keys")
        ambiguous[_normalise(name)] = tuple(candidates)
    try:
        index = _build_index(gpus, ambiguous)
    except AssertionError as e:
        raise CatalogueError(f"{CATALOGUE_FILE}: {e}") from None
    common = tuple(gpu for gpu, is_common in entries if is_common)
    return _Catalogue(gpus, common, ambiguous, index, {id(gpu): rank for rank, gpu in enumerate(common)})


@functools.cache
def _catalogue() -> _Catalogue:
    import importlib.resources  # here, not at CLI start-up
    import json

    text = importlib.resources.files("hubmem.fit").joinpath(CATALOGUE_FILE).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CatalogueError(f"{CATALOGUE_FILE} is not JSON: {e}") from None
    return _parse_catalogue(data)


def __getattr__(name: str) -> object:
    """`CATALOGUE` and `COMMON`, read from `CATALOGUE_FILE` when first asked for."""
    if name == "CATALOGUE":
        return _catalogue().gpus
    if name == "COMMON":
        return _catalogue().common
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def find_gpu(name: str) -> Gpu:
    """The catalogue entry called ``name``: its key, or any alias, in any case, with any separators.

    Raises `UnknownGpuError` (a `ValueError`) listing close matches for an unknown name, and the
    candidates for an ambiguous one.
    """
    catalogue = _catalogue()
    form = _normalise(name)
    if form in catalogue.index:
        return catalogue.index[form]
    if form in catalogue.ambiguous:
        raise UnknownGpuError(name, catalogue.ambiguous[form], ambiguous=True)
    import difflib  # only for a name that is not in the catalogue

    close = difflib.get_close_matches(form, catalogue.index, n=8, cutoff=0.6)
    keys = list(dict.fromkeys(catalogue.index[c].key for c in close))[:4]
    raise UnknownGpuError(name, keys)


def _common_rank(gpu: Gpu) -> int:
    catalogue = _catalogue()
    rank = catalogue.common_rank.get(id(gpu))  # per row of every audit: no dataclass __eq__ over the list
    if rank is None:
        rank = next((r for r, common in enumerate(catalogue.common) if common == gpu), len(catalogue.common))
    return rank


def smallest_fitting(required_bytes: int, *, catalogue: Iterable[Gpu] | None = None) -> Gpu | None:
    """The GPU with the least usable memory that is still ``>= required_bytes``; None if none is enough.

    ``catalogue`` defaults to `CATALOGUE` less the unified-memory Macs (their working set serves
    llama.cpp's Metal backend, not the CUDA/ROCm runtimes these answers are about). Ties in memory go
    to the entry earlier in `COMMON` (then earlier in ``catalogue``). Pass ``catalogue=COMMON`` for
    the "fits on" column.
    """
    if isinstance(required_bytes, bool) or not isinstance(required_bytes, int):
        raise TypeError(f"required_bytes must be an int, not {type(required_bytes).__name__}")
    if required_bytes < 0:
        raise ValueError(f"required_bytes must be >= 0, got {required_bytes}")
    candidates = [
        (gpu.usable_bytes, _common_rank(gpu), position, gpu)
        for position, gpu in enumerate(
            [g for g in _catalogue().gpus if g.memory_kind != "unified"] if catalogue is None else catalogue
        )
        if gpu.usable_bytes >= required_bytes
    ]
    return min(candidates, key=lambda c: c[:3])[3] if candidates else None


def catalogue_rows(catalogue: Iterable[Gpu] | None = None) -> list[dict[str, object]]:
    """`Gpu.to_dict()` of each GPU of ``catalogue`` (default `CATALOGUE`)."""
    return [gpu.to_dict() for gpu in (_catalogue().gpus if catalogue is None else catalogue)]


# The card a multi-GPU answer is given in when no single common card holds the model.
MULTI_GPU_REFERENCE = "h100-80gb"
