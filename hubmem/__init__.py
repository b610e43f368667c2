"""hubmem: how much GPU memory will a Hugging Face model need, and will it fit?

The Python API (hubmem.api), imported lazily so that `hubmem --help` stays fast:

    hubmem.estimate(repo, **options)   inference memory per precision (InferenceEstimate)
    hubmem.train(repo, mode, ...)      per-GPU training memory per regime (TrainingEstimate)
    hubmem.check(repo, gpu=...)        will it fit, is there disk (CheckResult)
    hubmem.serve(repo, engine="vllm", gpu=...)  the engine's start-up plan, KV pool, concurrency (ServeResult)
    hubmem.audit(ids, ...)             one AuditRow per repo id, in input order (an iterator)
    hubmem.diff(a, b, ...)             what changed between two repos or revisions (DiffResult)
    hubmem.gpus()                      the GPU catalogue
    hubmem.errors                      the error classes (HubmemError and its exit codes)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["audit", "check", "diff", "errors", "estimate", "gpus", "serve", "train"]

if TYPE_CHECKING:
    from hubmem import errors
    from hubmem.api import audit, check, diff, estimate, gpus, serve, train


def __getattr__(name: str) -> Any:
    if name in ("audit", "check", "diff", "estimate", "gpus", "serve", "train"):
        from hubmem import api

        return getattr(api, name)
    if name == "errors":
        import importlib

        return importlib.import_module("hubmem.errors")
    raise AttributeError(f"module 'hubmem' has no attribute {name!r}")
