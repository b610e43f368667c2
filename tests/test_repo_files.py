"""Repos that are not one plain set of safetensors: Mistral `consolidated.safetensors` beside the HF shards,
`original/` folders, PyTorch-only repos, and configs that name custom code (`auto_map`)."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner

from hubmem.cli import main

from .helpers import config, layout

TINY = "test/tiny"
PARAMETERS = 202_048  # fixtures/repos/test__tiny (see tests/test_cli.py)


def run_json(fake_hub, repo: str) -> dict:
    result = CliRunner().invoke(main, [repo, "--format", "json", "--seq-len", "1024"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def tiny_tensors() -> list:
    return layout(TINY)["files"]["model.safetensors"]["tensors"]


def sharded(names: tuple[str, str]) -> dict:
    tensors = tiny_tensors()
    return {names[0]: {"tensors": tensors[:10]}, names[1]: {"tensors": tensors[10:]}}


SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def test_consolidated_copy_and_original_folder_are_never_counted_twice(fake_hub):
    """mistralai repos ship the HF shards + index and Mistral's own consolidated.safetensors (the same
    weights again); Llama repos add original/consolidated.00.pth."""
    repo = fake_hub.add_repo(
        "acme/mistral-style",
        layout={
            "files": sharded(SHARDS),
            "index": "model.safetensors.index.json",
            "other_files": {
                "consolidated.safetensors": 404_096 + 4_096,
                "original/consolidated.00.pth": 404_096 + 8_192,
                "params.json": 300,
            },
        },
        config=config(TINY),
    )
    data = run_json(fake_hub, "acme/mistral-style")
    assert data["parameters"]["parameters"] == PARAMETERS
    assert data["parameters"]["stored_by_dtype"] == {"BF16": PARAMETERS}
    sizes = {name: f.size for name, f in repo.files.items()}
    expected = {name: sizes[name] for name in (*SHARDS, "model.safetensors.index.json")}
    assert data["weight_files"] == expected
    assert data["download_bytes"] == sum(expected.values())
    assert fake_hub.weights_downloads() == []
    assert not [r for r in fake_hub.requests if "consolidated" in r.path or "original/" in r.path]


def test_root_shards_without_index_win_over_the_consolidated_copy(fake_hub):
    fake_hub.add_repo(
        "acme/no-index",
        layout={"files": {**sharded(SHARDS), "consolidated.safetensors": {"tensors": tiny_tensors()}}},
        config=config(TINY),
    )
    data = run_json(fake_hub, "acme/no-index")
    assert data["parameters"]["stored_total"] == PARAMETERS  # not 2 × 202,048
    assert sorted(data["weight_files"]) == list(SHARDS)


def test_a_repo_with_only_the_consolidated_file_is_read_from_it(fake_hub):
    fake_hub.add_repo(
        "acme/consolidated-only",
        layout={"files": {"consolidated.safetensors": {"tensors": tiny_tensors()}}},
        config=config(TINY),
    )
    data = run_json(fake_hub, "acme/consolidated-only")
    assert data["parameters"]["stored_total"] == PARAMETERS
    assert list(data["weight_files"]) == ["consolidated.safetensors"]


def test_original_folder_safetensors_are_left_out(fake_hub):
    """gpt-oss ships original/model.safetensors (OpenAI's format) beside the HF checkpoint."""
    fake_hub.add_repo(
        "acme/with-original",
        layout={
            "files": {"model.safetensors": {"tensors": tiny_tensors()}},
            "other_files": {"original/model.safetensors": 404_096 + 2_000, "original/config.json": 500},
        },
        config=config(TINY),
    )
    data = run_json(fake_hub, "acme/with-original")
    assert data["parameters"]["stored_total"] == PARAMETERS
    assert list(data["weight_files"]) == ["model.safetensors"]


def test_pytorch_only_repo_lists_its_files_with_sizes_and_flags_the_estimate(fake_hub):
    sizes = {
        "pytorch_model-00001-of-00002.bin": 9_976_576_152,
        "pytorch_model-00002-of-00002.bin": 3_500_296_424,
        "pytorch_model.bin.index.json": 26_788,
        "tf_model.h5": 13_476_839_424,  # the same weights for TensorFlow: not part of a PyTorch download
        "flax_model.msgpack": 13_476_800_000,
    }
    fake_hub.add_repo("acme/bin-only", layout={"other_files": sizes}, config=config(TINY))
    data = run_json(fake_hub, "acme/bin-only")
    assert data["parameters"]["exact"] is False
    assert data["weights_format"] == "pytorch"
    pytorch = {k: v for k, v in sizes.items() if k.startswith("pytorch_model")}
    assert data["weight_files"] == pytorch
    assert data["download_bytes"] == 9_976_576_152 + 3_500_296_424 + 26_788
    result = CliRunner().invoke(main, ["acme/bin-only", "--seq-len", "1024"])
    assert "202,048 ESTIMATED from config.json" in result.stdout
    assert (
        "weight files  pytorch_model-00001-of-00002.bin 9.29 GiB · pytorch_model-00002-of-00002.bin 3.26 GiB"
        " · pytorch_model.bin.index.json 0.00 GiB\n" in result.stdout
    )
    assert "download 12.55 GiB in 3 files" in result.stdout
    assert fake_hub.weights_downloads() == []


CUSTOM_CODE = b"""
import pathlib
pathlib.Path("HUBMEM_EXECUTED_REPO_CODE").write_text("executed")
raise SystemExit("repo code must never run")
"""


def test_auto_map_config_with_unknown_model_type_is_read_as_json_and_never_executed(
    fake_hub, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cfg = {
        **{k: v for k, v in config(TINY).items() if k != "architectures"},
        "model_type": "acme_custom_lm",
        "architectures": ["AcmeCustomForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_acme.AcmeConfig",
            "AutoModelForCausalLM": "modeling_acme.AcmeForCausalLM",
        },
    }
    fake_hub.add_repo(
        "acme/custom-code",
        layout={"files": {"model.safetensors": {"tensors": tiny_tensors()}}},
        files={"configuration_acme.py": CUSTOM_CODE, "modeling_acme.py": CUSTOM_CODE},
        config=cfg,
    )
    data = run_json(fake_hub, "acme/custom-code")
    assert data["parameters"]["parameters"] == PARAMETERS
    assert data["architecture"]["normalised_by"].startswith("raw config")
    assert data["architecture"]["model_type"] == "acme_custom_lm"
    assert not [r for r in fake_hub.requests if r.path.endswith(".py")]  # the code is not even fetched
    assert not [m for m in sys.modules if "acme" in m]
    assert not (tmp_path / "HUBMEM_EXECUTED_REPO_CODE").exists()
