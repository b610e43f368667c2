"""Pre-download disk check: the weight files a download would pull, what the Hugging Face cache
already holds, and the free space where the cache lives.

Which files: the set hubmem read the headers of (`Estimate.weight_files`: `model.safetensors`, or
the shards of `model.safetensors.index.json` plus the index), which is what transformers'
`from_pretrained` pulls; never the `.bin` duplicates, `consolidated.*` or `original/` copies. A repo
without safetensors pulls its `pytorch_model*.bin` files (`hub.unreadable_weight_files`).

Already cached: a file present in the cache's snapshot for the same commit
(`huggingface_hub.try_to_load_from_cache`) costs nothing. Anything else counts in full, also a
file cached under another commit or half downloaded (conservative: it may need less).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskPlan:
    cache_dir: str
    to_pull: dict[str, int]  # file -> bytes still to download
    cached: dict[str, int]  # file -> bytes already in the cache
    free_bytes: int

    @property
    def needed_bytes(self) -> int:
        return sum(self.to_pull.values())

    @property
    def enough(self) -> bool:
        return self.needed_bytes <= self.free_bytes

    def to_dict(self) -> dict:
        return {
            "cache_dir": self.cache_dir,
            "files_to_pull": self.to_pull,
            "files_cached": self.cached,
            "needed_bytes": self.needed_bytes,
            "cached_bytes": sum(self.cached.values()),
            "free_bytes": self.free_bytes,
            "enough": self.enough,
        }


def cache_dir(override: str | None = None) -> str:
    """Where downloads land: --cache-dir, else HF_HUB_CACHE (default $HF_HOME/hub)."""
    if override:
        return os.path.expanduser(override)
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def free_bytes(path: str) -> int:
    """Free space for an unprivileged user on the file system that holds `path` (or would: the
    nearest existing parent, since the cache folder may not exist yet). Tests replace this."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def files_to_download(weight_files: dict[str, int | None]) -> dict[str, int]:
    """The weight files a download pulls, with sizes (unknown sizes count as 0).

    `Estimate.weight_files` is already that set, each copy once: the safetensors files whose headers
    were read, or for other repos `hub.unreadable_weight_files` (root `pytorch_model*.bin`, ...).
    """
    return {p: s or 0 for p, s in weight_files.items()}


def plan_download(
    repo_id: str,
    sha: str | None,
    files: dict[str, int],
    cache: str,
) -> DiskPlan:
    """Split `files` into what the cache at `cache` already holds for commit `sha` and what is left."""
    from huggingface_hub import try_to_load_from_cache

    to_pull: dict[str, int] = {}
    cached: dict[str, int] = {}
    for name, size in files.items():
        hit = try_to_load_from_cache(repo_id, name, cache_dir=cache, revision=sha) if sha else None
        if isinstance(hit, str):
            cached[name] = size
        else:
            to_pull[name] = size
    return DiskPlan(cache, to_pull, cached, free_bytes(cache))
