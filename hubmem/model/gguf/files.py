"""A repo's .gguf files grouped into models: one per quantization, split files
(`name-00001-of-00003.gguf`, llama.cpp `llama_split_prefix` / gguf-split naming) as one model, and
multimodal projectors (`mmproj-*.gguf`, the file llama.cpp's `--mmproj` loads) beside the models."""

from __future__ import annotations

import re
from dataclasses import dataclass

SPLIT_RE = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# quantization names as llama.cpp's llama-quantize prints them (tools/quantize/quantize.cpp QUANT_OPTIONS)
# and as quantizers name files; the last match in a file name wins ("Q4_K_M", "IQ3_XXS", "BF16", "Q4_0_4_4")
QUANT_RE = re.compile(
    r"(?<![A-Za-z0-9])(I?Q\d_(?:K_(?:XXS|XS|XL|S|M|L)|K|XXS|XS|NL|S|M|L|\d(?:_\d_\d)?)|TQ\d_\d|MXFP4(?:_MOE)?|"
    r"NVFP4|BF16|F16|F32|FP16|FP32)(?![A-Za-z0-9])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GGUFModelFiles:
    """One loadable model: its file(s) in shard order, and the name hubmem shows and --quant matches."""

    quant: str  # "Q4_K_M", or the file stem when the name says no quantization
    paths: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.paths[0]


def quant_label(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    m = SPLIT_RE.match(name)
    stem = m.group("prefix") if m else name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
    found = QUANT_RE.findall(stem)
    if not found:
        return stem
    label = found[-1].upper()
    return {"FP16": "F16", "FP32": "F32"}.get(label, label)


def is_projector(path: str) -> bool:
    return "mmproj" in path.rsplit("/", 1)[-1].lower()


def group_files(paths: list[str]) -> tuple[list[GGUFModelFiles], list[GGUFModelFiles]]:
    """(models, projectors) from a repo's .gguf paths. A split set missing a part is still one model
    (its header says how many parts it has; the fetch reports the missing one)."""
    splits: dict[tuple[str, str], dict[int, str]] = {}
    singles: list[str] = []
    for p in sorted(paths):
        if not p.lower().endswith(".gguf"):
            continue
        folder, _, name = p.rpartition("/")
        m = SPLIT_RE.match(name)
        if m:
            splits.setdefault((folder, m.group("prefix")), {})[int(m.group("no"))] = p
        else:
            singles.append(p)
    groups = [GGUFModelFiles(quant_label(p), (p,)) for p in singles]
    groups += [
        GGUFModelFiles(quant_label(parts[min(parts)]), tuple(parts[k] for k in sorted(parts)))
        for parts in splits.values()
    ]
    models = [g for g in groups if not is_projector(g.first)]
    projectors = [g for g in groups if is_projector(g.first)]
    labels = [g.quant for g in models]
    if len(set(labels)) < len(labels):  # two files with one quant name: tell them apart by file name
        models = [
            GGUFModelFiles(g.first.rsplit("/", 1)[-1] if labels.count(g.quant) > 1 else g.quant, g.paths)
            for g in models
        ]
    return sorted(models, key=lambda g: g.first), sorted(projectors, key=lambda g: g.first)
