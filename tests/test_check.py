"""`hubmem check`: fit + disk verdicts and their exit codes, with a temporary cache directory and a
faked free-space figure; which files a download pulls; what the cache already holds."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from hubmem.cli import main
from hubmem.hub import disk

from .fakehub import build_safetensors_header
from .helpers import config, layout

TINY = "test/tiny"
GIB = 1024**3


def tiny_file_size() -> int:
    spec = layout(TINY)["files"]["model.safetensors"]
    head, data = build_safetensors_header(spec["tensors"], spec["metadata"])
    return len(head) + data


@pytest.fixture
def free(monkeypatch):
    """Set the free space the check sees: free.value = bytes; records the paths asked about."""

    class Free:
        value = 100 * GIB
        asked: list[str] = []

        def __call__(self, path: str) -> int:
            self.asked.append(path)
            return self.value

    fake = Free()
    monkeypatch.setattr(disk, "free_bytes", fake)
    return fake


def check(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def test_ready_to_pull(fake_hub, free, tmp_path):
    size = tiny_file_size()
    assert size == 406_272  # 8-byte length + padded JSON header (2,168 bytes) + 404,096 bytes of BF16
    result = check(TINY, "--gpu", "t4", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    # T4: 15,102 MiB usable; bf16 at 2,048 tokens: 404,096 + 1280·2048 + 4000 + 1 GiB (tests/test_fit.py);
    # max batch: (15,102 MiB - 1 GiB - 404,096) // (1280·2048 + 4000) = 5,622
    assert result.stdout == (
        f"repo       test/tiny ({fake_hub.sha(TINY)[:7]})\n"
        "precision  bf16/fp16 · batch 1 · seq 2,048 (model max context) · dtype auto: config.json dtype bfloat16\n"
        "gpus       1× T4 16GB · 14.75 GiB usable each\n"
        "memory     1.00 GiB per GPU: fits, +13.75 GiB free\n"
        "           max seq len 2,048 (model max) at batch 1 · max batch 5,622 at seq 2,048 · fewest GPUs that fit: 1\n"
        "           T4 16GB has no bf16 (compute capability < 8.0): the 16-bit row runs as fp16, the same bytes\n"
        "download   0.00 GiB (406,272 bytes) in 1 file\n"
        f"disk       100.00 GiB free at {tmp_path}: enough\n"
        "verdict    ready to pull (exit 0)\n"
    )
    assert free.asked == [str(tmp_path)]


def test_will_not_fit_exits_40(fake_hub, free):
    # Llama-3.1-8B at its 131,072 tokens: 16 GiB of KV alone (131,072 B/token), 44.46 GiB in all;
    # an L4 has 22.12 GiB usable, so it takes 3 (tensor parallel, 1 GiB overhead on each)
    result = check("meta-llama/Llama-3.1-8B", "--gpu", "l4", "--format", "json")
    assert result.exit_code == 40
    data = json.loads(result.stdout)
    assert (data["ready"], data["outcome"], data["exit_code"]) == (False, "will not fit on the GPUs", 40)
    assert data["fit"]["fits"] is False and data["fit"]["gpus_needed"] == 3
    free.value = 0  # no disk either: the fit verdict wins
    assert check("meta-llama/Llama-3.1-8B", "--gpu", "l4").exit_code == 40
    # on three of them it fits
    assert (
        check("meta-llama/Llama-3.1-8B", "--gpu", "l4", "--num-gpus", "3", "--cache-dir", "x").exit_code == 41
    )


def test_not_enough_disk_exits_41_and_the_boundary_is_inclusive(fake_hub, free, tmp_path):
    free.value = tiny_file_size() - 1
    short = check(TINY, "--gpu", "t4", "--cache-dir", str(tmp_path))
    assert short.exit_code == 41
    assert f"disk       0.00 GiB free at {tmp_path}: 0.00 GiB short\n" in short.stdout
    assert short.stdout.endswith("verdict    fits, but not enough disk for the download (exit 41)\n")
    free.value = tiny_file_size()
    assert check(TINY, "--gpu", "t4", "--cache-dir", str(tmp_path)).exit_code == 0


def test_default_cache_is_hf_hub_cache(fake_hub, free):
    from huggingface_hub import constants

    data = json.loads(check(TINY, "--gpu-memory", "2GiB", "--format", "json").stdout)
    assert data["disk"]["cache_dir"] == constants.HF_HUB_CACHE
    assert data["fit"]["gpu"] == "custom GPU" and data["fit"]["usable_bytes_per_gpu"] == 2 * GIB


def test_download_counts_safetensors_not_duplicates(fake_hub, free):
    fake_hub.add_repo(
        "acme/dupes",
        layout={
            **layout(TINY),
            "other_files": {
                "pytorch_model.bin": 808_000,  # the same weights again, pickled
                "consolidated.safetensors": 406_272,  # a Mistral-style copy
                "original/consolidated.00.pth": 808_000,  # a Llama-style copy for the reference code
                "tokenizer.json": 1_000,
            },
        },
        config=config(TINY),
    )
    data = json.loads(check("acme/dupes", "--gpu", "t4", "--format", "json").stdout)
    assert data["disk"]["files_to_pull"] == {"model.safetensors": 406_272}
    assert data["disk"]["needed_bytes"] == 406_272


def test_pytorch_only_repo_pulls_its_bin_shards(fake_hub, free):
    fake_hub.add_repo(
        "acme/pickled",
        layout={
            "other_files": {
                "pytorch_model-00001-of-00002.bin": 600_000,
                "pytorch_model-00002-of-00002.bin": 200_000,
                "original/consolidated.00.pth": 808_000,
                "model.gguf": 300_000,
            }
        },
        config=config(TINY),
    )
    result = check("acme/pickled", "--gpu", "t4", "--format", "json")
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: no safetensors weights in 'acme/pickled'")
    assert json.loads(result.stdout)["disk"]["files_to_pull"] == {
        "pytorch_model-00001-of-00002.bin": 600_000,
        "pytorch_model-00002-of-00002.bin": 200_000,
    }


def test_files_already_in_the_cache_are_not_counted_again(fake_hub, free, tmp_path):
    from huggingface_hub import hf_hub_download

    # the tiny model in two shards with an index
    tensors = layout(TINY)["files"]["model.safetensors"]["tensors"]
    split = {
        "model-00001-of-00002.safetensors": tensors[:10],
        "model-00002-of-00002.safetensors": tensors[10:],
    }
    fake_hub.add_repo(
        "acme/two",
        layout={
            "files": {k: {"tensors": v} for k, v in split.items()},
            "index": "model.safetensors.index.json",
        },
        config=config(TINY),
    )
    before = json.loads(
        check("acme/two", "--gpu", "t4", "--cache-dir", str(tmp_path), "--format", "json").stdout
    )
    sizes = before["disk"]["files_to_pull"]
    assert sorted(sizes) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                             "model.safetensors.index.json"]  # fmt: skip
    # pull one shard with huggingface_hub itself, into the same cache
    hf_hub_download("acme/two", "model-00001-of-00002.safetensors", cache_dir=str(tmp_path))
    after = json.loads(
        check("acme/two", "--gpu", "t4", "--cache-dir", str(tmp_path), "--format", "json").stdout
    )
    assert after["disk"]["files_cached"] == {
        "model-00001-of-00002.safetensors": sizes["model-00001-of-00002.safetensors"]
    }
    assert (
        after["disk"]["needed_bytes"]
        == before["disk"]["needed_bytes"] - sizes["model-00001-of-00002.safetensors"]
    )
    free.value = after["disk"]["needed_bytes"]  # enough for what is left, not for the whole
    assert check("acme/two", "--gpu", "t4", "--cache-dir", str(tmp_path)).exit_code == 0


def test_check_needs_a_gpu(fake_hub):
    result = check(TINY)
    assert result.exit_code == 3
    assert result.stderr == "Error: check needs --gpu NAME or --gpu-memory SIZE\n"


def test_check_errors_keep_their_codes(fake_hub):
    result = check("nobody/nothing", "--gpu", "h100")
    assert result.exit_code == 10
    assert result.stderr.startswith("Error: repository 'nobody/nothing' not found")


def test_free_bytes_asks_the_nearest_existing_folder(monkeypatch, tmp_path):
    asked = []

    def usage(path):
        asked.append(path)
        return shutil._ntuple_diskusage(100, 40, 60)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    assert disk.free_bytes(str(tmp_path / "not" / "yet" / "hub")) == 60
    assert asked == [tmp_path]


# --- check --train ----------------------------------------------------------------------------------


def test_train_check_uses_the_training_verdict_of_one_regime(fake_hub, free, tmp_path):
    """The verdict is `hubmem REPO --train --gpu`'s for the regime (default mixed); disk as for inference."""
    from .helpers import cli_json

    train = ("--train", "full", "--seq-len", "1024", "--gpu", "t4")
    expected = cli_json("meta-llama/Llama-3.2-1B", *train)["training"]
    fit = expected["fit"]["mixed"]
    assert not fit["fits"]  # 1.2B parameters × 18 B (mixed, fp32 grads, AdamW) alone exceed a T4
    result = check("meta-llama/Llama-3.2-1B", *train, "--cache-dir", str(tmp_path), "--format", "json")
    assert result.exit_code == 40
    data = json.loads(result.stdout)
    mixed = next(r for r in expected["rows"] if r["regime"] == "mixed")
    assert data["fit"] == {**fit, "regime": "mixed", "per_gpu_bytes": mixed["total"]}
    assert data["settings"]["mode"] == "full" and data["settings"]["seq_len"] == 1024

    lora = ("--train", "lora", "--regime", "bf16", "--seq-len", "256", "--gpu", "a100-80gb")
    ready = check("meta-llama/Llama-3.2-1B", *lora, "--cache-dir", str(tmp_path))
    assert ready.exit_code == 0, ready.stderr
    lines = ready.stdout.splitlines()
    assert lines[1] == "training  lora · bf16/fp16 pure · micro-batch 1 · seq 256 (option)"
    assert lines[2] == "gpus      1× A100 80GB · 79.17 GiB usable each"
    assert lines[4] == "          yes: 1× A100 80GB"
    assert lines[-1] == "verdict   ready to pull (exit 0)"

    free.value = 1 * GIB  # the 2.47 GB download no longer fits on disk
    assert check("meta-llama/Llama-3.2-1B", *lora, "--cache-dir", str(tmp_path)).exit_code == 41


def test_train_check_option_mistakes_exit_3(fake_hub, free, tmp_path):
    both = check(TINY, "--gpu", "t4", "--train", "full", "--regime", "fp32", "--regime", "mixed")
    assert both.exit_code == 3
    assert both.stderr == "Error: check shows one training regime: pass --regime once\n"
    precision = check(TINY, "--gpu", "t4", "--train", "full", "--precision", "bf16")
    assert precision.exit_code == 3
    assert precision.stderr.startswith("Error: --precision is for inference; with --train use --regime")


def test_dtype_auto_loads_an_f32_checkpoint_without_a_config_dtype_in_fp32(fake_hub, tmp_path):
    # transformers >= 5 defaults to dtype="auto" (PR #34919): config.json's dtype, else the checkpoint's.
    # gpt2's config.json has none and its 160 tensors are F32: fp32 weights 124,439,808 × 4 = 497,759,232
    # (the bf16 row would be half of that).
    result = CliRunner().invoke(
        main,
        ["check", "openai-community/gpt2", "--gpu", "t4", "--seq-len", "1024", "--cache-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.stderr
    assert (
        "precision  fp32 · batch 1 · seq 1,024 (option) · dtype auto: no dtype in config.json: the checkpoint's F32\n"
        in result.stdout
    )
    data = json.loads(
        CliRunner()
        .invoke(
            main,
            [
                "check",
                "openai-community/gpt2",
                "--gpu",
                "t4",
                "--seq-len",
                "1024",
                "--cache-dir",
                str(tmp_path),
                "--format",
                "json",
            ],
        )
        .stdout
    )
    assert (data["fit"]["precision"], data["fit"]["per_gpu_bytes"] > 497_759_232) == ("fp32", True)
    bf16 = CliRunner().invoke(
        main,
        [
            "check",
            "openai-community/gpt2",
            "--gpu",
            "t4",
            "--seq-len",
            "1024",
            "--precision",
            "bf16",
            "--cache-dir",
            str(tmp_path),
            "--format",
            "json",
        ],
    )
    # the fp32 load holds the 248,879,616 bytes more weights (and 32-bit activations/KV) of the fp32 row
    assert json.loads(bf16.stdout)["fit"]["per_gpu_bytes"] < data["fit"]["per_gpu_bytes"] - 248_879_616
