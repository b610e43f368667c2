"""Named overhead models: what a PyTorch process holds on each GPU besides the model's tensors.

`--overhead NAME` adds up the parts of one model (each with its source) instead of a single figure;
`--explain` lists them. The parts:

- CUDA context: the driver's per-process state and the loaded kernels. Measured after CUDA init with
  PyTorch 1.13: 287,047,680 B with lazy module loading (`CUDA_MODULE_LOADING=LAZY`, PyTorch's default
  since 1.13, CUDA >= 11.7) and 666,632,192 B eager (pytorch/pytorch#86509); 1,343 MiB with PyTorch of
  the CUDA 11.2 era on a V100, context and kernels, measured alone (transformers docs
  model_memory_anatomy.md). It is outside `torch.cuda.max_memory_allocated()` and inside NVML's "used".
  Lazy loading needs the variable set before the driver is initialized (cuInit): PyTorch sets it only in
  `CUDAHooks::initCUDA` (`torch.cuda._lazy_init`, aten/src/ATen/cuda/detail/CUDAHooks.cpp, 1.13-2.x), while
  `torch.cuda.is_available()` calls cudaGetDeviceCount, "which in turn initializes the CUDA Driver API via
  cuInit" (torch/cuda/__init__.py); "setting [the] environment variable after that is beside the point"
  (pytorch/pytorch#161103). A script that calls `is_available()` before its first CUDA tensor therefore
  runs with the driver's default, which is eager for drivers before CUDA 12.2 (pytorch/pytorch#152695):
  `--overhead torch-eager`.
- cuBLAS workspace: allocated through the caching allocator (so inside `max_memory_allocated()`) once
  per handle and stream: `:4096:2:16:8` = 4096 KiB × 2 + 16 KiB × 8 = 8,519,680 B before compute
  capability 9.0, `:4096:8` = 33,554,432 B on Hopper and later (ATen cuda/CublasHandlePool.cpp
  `parseChosenWorkspaceSize`, default without CUBLAS_WORKSPACE_CONFIG).
- not modelled: the caching allocator's reserved-but-free blocks (fragmentation: depends on the run),
  NCCL buffers with several GPUs, other libraries' workspaces (cuDNN, Triton autotuning).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024**2
CONTEXT_LAZY = ("CUDA context, lazy module loading (PyTorch >= 1.13)", 287_047_680, "pytorch/pytorch#86509")
CONTEXT_EAGER = ("CUDA context, eager module loading", 666_632_192, "pytorch/pytorch#86509")
CONTEXT_CUDA11 = (
    "CUDA context + kernels, CUDA 11.2, V100, measured alone",
    1343 * MIB,
    "transformers docs model_memory_anatomy.md",
)
WORKSPACE = (
    "cuBLAS workspace :4096:2:16:8 (one stream, before sm90)",
    8_519_680,
    "ATen CublasHandlePool.cpp",
)
WORKSPACE_SM90 = ("cuBLAS workspace :4096:8 (one stream, sm90+)", 33_554_432, "ATen CublasHandlePool.cpp")


@dataclass(frozen=True)
class OverheadModel:
    name: str
    parts: tuple[tuple[str, int, str], ...]
    what: str  # which measurement it stands for

    @property
    def bytes(self) -> int:
        return sum(b for _, b, _ in self.parts)

    def formula(self) -> str:
        parts = " + ".join(f"{label} {b:,} ({source})" for label, b, source in self.parts) or "nothing"
        return f"--overhead {self.name} ({self.what}): {parts}"


MODELS = {
    m.name: m
    for m in (
        OverheadModel(
            "torch-lazy", (CONTEXT_LAZY, WORKSPACE), "a process on NVML, PyTorch >= 1.13, before Hopper"
        ),
        OverheadModel(
            "torch-lazy-sm90", (CONTEXT_LAZY, WORKSPACE_SM90), "a process on NVML, Hopper and later"
        ),
        OverheadModel(
            "torch-eager",
            (CONTEXT_EAGER, WORKSPACE),
            "eager module loading: CUDA_MODULE_LOADING=EAGER, or a driver before CUDA 12.2 initialized by"
            " torch.cuda.is_available() before PyTorch sets LAZY",
        ),
        OverheadModel("cuda11", (CONTEXT_CUDA11,), "PyTorch of the CUDA 11.2 era, NVML used"),
        OverheadModel(
            "allocated", (WORKSPACE,), "torch.cuda.max_memory_allocated(): no context, before Hopper"
        ),
        OverheadModel(
            "allocated-sm90", (WORKSPACE_SM90,), "torch.cuda.max_memory_allocated(), Hopper and later"
        ),
    )
}
