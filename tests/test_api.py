"""The Python API: the README's examples run as doctests, and the plain values the CLI takes work here."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pytest

import hubmem
from hubmem import errors

from .helpers import cli_json

README = Path(__file__).resolve().parent.parent / "README.md"


def api_section() -> str:
    text = README.read_text()
    start = text.index("## Python API")
    return text[start : text.index("\n## ", start + 1)]


def test_readme_python_api_examples_run(fake_hub, tmp_path):
    parser = doctest.DocTestParser()
    test = parser.get_doctest(api_section(), {}, "README.md#python-api", str(README), 0)
    assert len(test.examples) >= 12
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0


def test_import_hubmem_loads_no_api_module_until_used():
    code = "import sys, hubmem; print(sorted(m for m in sys.modules if m.startswith('hubmem')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hubmem']"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hubmem.nothing  # noqa: B018


def test_the_api_returns_the_cli_s_json(fake_hub):
    args = ("--seq-len", "4096", "--batch", "2", "--overhead", "2GiB", "--gpu", "l4")
    est = hubmem.estimate("Qwen/Qwen2.5-7B-Instruct", seq_len=4096, batch=2, overhead="2GiB", gpu="l4")
    assert est.to_dict() == cli_json("Qwen/Qwen2.5-7B-Instruct", *args)
    trained = hubmem.train("test/tiny", "qlora", lora_rank=8, lora_targets="q,v", seq_len=64)
    assert trained.to_dict() == cli_json(
        "test/tiny", "--train", "qlora", "--lora-rank", "8", "--lora-targets", "q,v", "--seq-len", "64"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"overhead": "2"}, "--overhead: memory size '2' needs a unit"),
        ({"overhead": -1}, "--overhead must be at least 0"),
        ({"seq_len": "8192"}, "--seq-len takes a whole number, not '8192'"),
        ({"batch": 0}, "--batch must be at least 1"),
        ({"params": "lots"}, "--params: 'lots' is not a parameter count"),
        ({"precisions": ["int3"]}, "unknown precision 'int3'"),
        ({"kv_dtype": "fp4"}, "--kv-dtype: 'fp4' is not one of auto, fp32"),
        ({"lora_rank": 4}, "--lora-rank applies to training: add --train full|lora|qlora"),
        ({"train": "lora", "batch": 2}, "--batch is for inference; with --train use --micro-batch"),
        ({"train": "full", "lora_targets": "q"}, "--lora-targets applies to --train lora or qlora, not full"),
        ({"train": "sometimes"}, "--train: 'sometimes' is not one of full, lora, qlora"),
        ({"gpu": "4090", "gpu_memory": "24GiB"}, "give --gpu or --gpu-memory, not both"),
        ({"gpu_memory": "huge"}, "--gpu-memory: not a memory size: 'huge'"),
        ({"colour": "red"}, "unknown option 'colour'"),
        ({"train": "full", "micro_batch": 0}, "--micro-batch must be at least 1"),
        ({"train": "lora", "optimizer": "lion"}, "unknown --optimizer 'lion'"),
        ({"train": "full", "zero": "4"}, "--zero must be 0, 1, 2 or 3"),
        ({"train": "full", "offload": "optimizer"}, "--offload optimizer needs --zero 1-3 or --fsdp"),
    ],
)
def test_bad_values_raise_before_any_request(fake_hub, options, message):
    with pytest.raises(errors.InvalidInputError) as e:
        hubmem.estimate("test/tiny", **options)
    assert str(e.value).startswith(message), str(e.value)
    assert e.value.exit_code == 3
    assert fake_hub.requests == []


def test_check_and_estimate_count_the_same_download_files(fake_hub, tmp_path):
    """A sharded repo's download is its shards and their index, in `hubmem REPO` and `hubmem check` alike."""
    repo = "Qwen/Qwen2.5-7B-Instruct"  # 4 shards + model.safetensors.index.json
    est = hubmem.estimate(repo, precisions=["bf16"])
    result = hubmem.check(repo, gpu="h100", cache_dir=str(tmp_path))
    assert sorted(result.disk.to_pull) == sorted(est.weight_files)
    assert len(est.weight_files) == 5 and "model.safetensors.index.json" in est.weight_files
    from hubmem.output.check import render_check
    from hubmem.output.model import summary

    assert "download 14.19 GiB in 5 files" in summary(est)
    assert "in 5 files" in render_check(result)


def test_check_refuses_a_cache_dir_that_is_a_file(fake_hub, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(errors.InvalidInputError, match="--cache-dir '.*file' is not a folder"):
        hubmem.check("test/tiny", gpu="h100", cache_dir=str(not_a_folder))


def test_audit_yields_rows_in_input_order_and_jobs_is_bounded(fake_hub):
    ids = ["openai-community/gpt2", "test/tiny", "acme/missing", "test/tiny@main"]
    rows = list(hubmem.audit(ids, jobs=3))
    assert [r.ref for r in rows] == ids
    assert [r.ok for r in rows] == [True, True, False, True]
    assert rows[0].fields()["params"] == 124_439_808  # the Hub's published total for gpt2
    with pytest.raises(errors.InvalidInputError, match="--jobs must be a whole number from 1 to 256"):
        hubmem.audit(ids, jobs=1_000_000)


def test_whisper_encoder_len_beyond_its_position_table_is_refused(fake_hub):
    with pytest.raises(errors.InvalidInputError) as e:
        hubmem.estimate("openai/whisper-small", encoder_len=3000)
    assert str(e.value) == (
        "--encoder-len 3,000 exceeds whisper's max_source_positions 1,500 "
        "(a learned position table: the encoder takes no more)"
    )
    assert hubmem.estimate("openai/whisper-small", encoder_len=1500).settings.encoder_len == 1500
    # T5's relative positions have no such table: a longer input is allowed
    assert hubmem.estimate("google-t5/t5-small", encoder_len=4096).settings.encoder_len == 4096


def test_training_settings_check_themselves_when_made():
    from hubmem.memory.training import TrainingSettings

    with pytest.raises(errors.InvalidInputError, match="--micro-batch must be at least 1"):
        TrainingSettings(micro_batch=0)
    with pytest.raises(errors.InvalidInputError, match="--tp takes a whole number, not 2.5"):
        TrainingSettings(tp=2.5)  # type: ignore[arg-type]
