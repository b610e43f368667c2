"""CUDA compute capability of the catalogue's NVIDIA cards (hubmem.fit.gpus keys), for the engines'
own checks (bf16 needs 8.0+, FlashMLA 9.0+). Source: NVIDIA, "CUDA GPUs - Compute Capability"
(developer.nvidia.com/cuda-gpus). AMD and TPU entries have none (None: the checks are not applied)."""

from __future__ import annotations

COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "t4-16gb": (7, 5),
    "v100-16gb": (7, 0),
    "v100-32gb": (7, 0),
    "l4-24gb": (8, 9),
    "rtx4090-24gb": (8, 9),
    "a10g-24gb": (8, 6),
    "a10-24gb": (8, 6),
    "rtx3090-24gb": (8, 6),
    "rtx5090-32gb": (12, 0),
    "a100-40gb": (8, 0),
    "a100-80gb": (8, 0),
    "l40s-48gb": (8, 9),
    "l40-48gb": (8, 9),
    "rtx-a6000-48gb": (8, 6),
    "rtx6000-ada-48gb": (8, 9),
    "h100-80gb": (9, 0),
    "h100-pcie-80gb": (9, 0),
    "h100-nvl-94gb": (9, 0),
    "rtx-pro-6000-96gb": (12, 0),
    "h200-141gb": (9, 0),
    "b200-180gb": (10, 0),
    "gb200-186gb": (10, 0),
}


def compute_capability(key: str | None) -> tuple[int, int] | None:
    return COMPUTE_CAPABILITY.get(key or "")
