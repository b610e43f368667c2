"""Named overhead models (hubmem.runtimes.overhead): the per-GPU overhead from its sourced parts."""

from __future__ import annotations

import json

from click.testing import CliRunner

from hubmem.cli import main

TINY = "test/tiny"
LAZY_CONTEXT = 287_047_680  # pytorch/pytorch#86509, lazy module loading
WORKSPACE = 4096 * 1024 * 2 + 16 * 1024 * 8  # 8,519,680: cuBLAS :4096:2:16:8 before sm90
WORKSPACE_SM90 = 4096 * 1024 * 8  # 33,554,432


def overhead(*args: str) -> dict:
    result = CliRunner().invoke(
        main, [TINY, "--seq-len", "64", "--precision", "bf16", "--format", "json", *args]
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)["rows"]
    (term,) = [t for t in row["terms"] if t["name"] == "overhead"]
    return term


def test_each_model_adds_up_its_parts(fake_hub):
    assert overhead("--overhead", "torch-lazy")["bytes"] == LAZY_CONTEXT + WORKSPACE == 295_567_360
    assert overhead("--overhead", "torch-lazy-sm90")["bytes"] == LAZY_CONTEXT + WORKSPACE_SM90
    assert overhead("--overhead", "torch-eager")["bytes"] == 666_632_192 + WORKSPACE
    assert overhead("--overhead", "cuda11")["bytes"] == 1343 * 1024**2
    # max_memory_allocated() leaves the context out but counts the workspace (caching allocator)
    assert overhead("--overhead", "allocated")["bytes"] == WORKSPACE


def test_explain_names_every_part_and_its_source(fake_hub):
    term = overhead("--overhead", "torch-lazy")
    assert term["formula"] == (
        "--overhead torch-lazy (a process on NVML, PyTorch >= 1.13, before Hopper): CUDA context, lazy module "
        "loading (PyTorch >= 1.13) 287,047,680 (pytorch/pytorch#86509) + cuBLAS workspace :4096:2:16:8 "
        "(one stream, before sm90) 8,519,680 (ATen CublasHandlePool.cpp)"
    )
    # benchmark_gptq.py calls torch.cuda.is_available() (cuInit) before PyTorch sets CUDA_MODULE_LOADING=LAZY:
    # a driver before CUDA 12.2 then loads eagerly (pytorch#161103, #152695); the optimum rows use this model
    eager = overhead("--overhead", "torch-eager")
    assert eager["formula"].startswith(
        "--overhead torch-eager (eager module loading: CUDA_MODULE_LOADING=EAGER, or a driver before CUDA 12.2 "
        "initialized by torch.cuda.is_available() before PyTorch sets LAZY): CUDA context, eager module loading "
        "666,632,192 (pytorch/pytorch#86509) + "
    )
    # against torch-lazy it adds the eager context's excess only: 666,632,192 - 287,047,680 B
    assert eager["bytes"] - term["bytes"] == 379_584_512
    # a plain figure keeps the generic text
    assert (
        overhead("--overhead", "1GiB")["formula"] == "CUDA context + framework reserve per GPU (--overhead)"
    )


def test_an_unknown_model_name_exits_3_listing_them():
    result = CliRunner().invoke(main, [TINY, "--overhead", "torch-lazzy"])
    assert (result.exit_code, result.stderr) == (
        3,
        "Error: --overhead: 'torch-lazzy' is neither a memory size (e.g. 1GiB) nor an overhead model "
        "(torch-lazy, torch-lazy-sm90, torch-eager, cuda11, allocated, allocated-sm90)\n",
    )


def test_training_takes_the_models_too(fake_hub):
    result = CliRunner().invoke(
        main, [TINY, "--train", "full", "--seq-len", "64", "--overhead", "torch-lazy", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    assert {r["overhead"] for r in json.loads(result.stdout)["training"]["rows"]} == {
        LAZY_CONTEXT + WORKSPACE
    }


def test_the_api_checks_a_model_name_against_its_bytes(fake_hub):
    import pytest

    import hubmem
    from hubmem.errors import InvalidInputError

    est = hubmem.estimate(TINY, seq_len=64, precisions=["bf16"], overhead="allocated")
    assert est.row("bf16").overhead == WORKSPACE
    with pytest.raises(
        InvalidInputError, match="overhead_model 'cuda11': give the model's name as --overhead"
    ):
        hubmem.estimate(TINY, seq_len=64, overhead_model="cuda11")
