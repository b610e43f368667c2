"""Hostile config.json values and safetensors headers (issue 11): each is one line on stderr with a
documented exit code, through the CLI on a local folder (and the fake Hub for the Hub's header path);
never a traceback, a negative figure or minutes of work."""

from __future__ import annotations

import json
import os
import struct
import time

import pytest
from click.testing import CliRunner

from hubmem import errors
from hubmem.cli import main
from hubmem.hub import fetch as hub
from hubmem.model.architecture import parse_architecture
from hubmem.model.config_check import MAX_DEPTH, check_config, show

from .helpers import config as fixture_config
from .helpers import layout

TINY = "test/tiny"
MALFORMED_CONFIG = errors.MalformedConfigError.exit_code  # 14
MALFORMED_HEADER = errors.MalformedHeaderError.exit_code  # 16


def tiny_config(**changes) -> dict:
    config = fixture_config(TINY)
    for key, value in changes.items():
        if value is ...:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def safetensors_file(header: dict | bytes, data: int | bytes = 0) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + (bytes(data) if isinstance(data, int) else data)


def tiny_weights() -> bytes:
    """The tiny fixture's tensors as a real safetensors file (zeros)."""
    from hubmem.dtypes import SAFETENSORS_BITS

    header, offset = {}, 0
    for name, dtype, shape in layout(TINY)["files"]["model.safetensors"]["tensors"]:
        n = 1
        for d in shape:
            n *= d
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + n * SAFETENSORS_BITS[dtype] // 8],
        }
        offset += n * SAFETENSORS_BITS[dtype] // 8
    return safetensors_file(header, offset)


def local_model(folder, config: dict | bytes, weights: bytes | None = None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_bytes(config if isinstance(config, bytes) else json.dumps(config).encode())
    (folder / "model.safetensors").write_bytes(tiny_weights() if weights is None else weights)
    return str(folder)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line(result, code: int, line: str) -> None:
    assert (result.exit_code, result.stderr) == (code, f"Error: {line}\n"), result.stdout
    assert result.stdout == ""


# --------------------------------------------------------------------------------------------
# config.json values


@pytest.mark.parametrize(
    "changes, line",
    [
        ({"model_type": ["llama"]}, "config.json: model_type is ['llama']; expected a string"),
        (
            {"text_config": [{"hidden_size": 64}]},
            "config.json: text_config is [{'hidden_size': 64}]; expected an object",
        ),
        (
            {"num_hidden_layers": 10**30},
            "config.json: num_hidden_layers is 1000000000000000000000000000000; expected an integer from 0 to 100,000",
        ),
        (
            {"num_hidden_layers": 100_000_000},
            "config.json: num_hidden_layers is 100000000; expected an integer from 0 to 100,000",
        ),
        (
            {"num_key_value_heads": -8},
            "config.json: num_key_value_heads is -8; expected an integer from 0 to 100,000,000",
        ),
        ({"head_dim": -16}, "config.json: head_dim is -16; expected an integer from 0 to 100,000,000"),
        (
            {"intermediate_size": -1},
            "config.json: intermediate_size is -1; expected an integer from 0 to 100,000,000",
        ),
        (
            {"max_position_embeddings": -4096},
            "config.json: max_position_embeddings is -4096; expected an integer from 0 to 100,000,000",
        ),
        (
            {"hidden_size": 64.0},
            "config.json: hidden_size is 64.0; expected an integer from 0 to 100,000,000",
        ),
        (
            {"num_hidden_layers": True},
            "config.json: num_hidden_layers is True; expected an integer from 0 to 100,000",
        ),
        (
            {"vocab_size": "1000"},
            "config.json: vocab_size is '1000'; expected an integer from 0 to 100,000,000",
        ),
        (
            {"text_config": {"num_key_value_heads": -2}},
            "config.json: text_config.num_key_value_heads is -2; expected an integer from 0 to 100,000,000",
        ),
        (
            {"num_local_experts": 10**6},
            "config.json: num_local_experts is 1000000; expected an integer from 0 to 100,000 (or a list of them)",
        ),
        (
            {"num_experts_per_tok": [2, -1]},
            "config.json: num_experts_per_tok is [2, -1]; expected an integer from 0 to 100,000 (or a list of them)",
        ),
        (
            {"architectures": "LlamaForCausalLM"},
            "config.json: architectures is 'LlamaForCausalLM'; expected a list of strings",
        ),
        (
            {"tie_word_embeddings": "false"},
            "config.json: tie_word_embeddings is 'false'; expected true or false",
        ),
        ({"layer_types": [1, 2]}, "config.json: layer_types is [1, 2]; expected a list of strings"),
        (
            {"mlp_only_layers": [[0]]},
            "config.json: mlp_only_layers is [[0]]; expected a list of integers from -1 to 100,000",
        ),
        (
            {"quantization_config": {"quant_method": "gptq", "bits": -4}},
            "config.json: quantization_config.bits is -4; expected a finite number from 0 to 64",
        ),
        # a long value is cut, a newline never reaches stderr
        (
            {"model_type": ["x" * 500]},
            "config.json: model_type is ['xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx']; expected a string",
        ),
        (
            {"torch_dtype": ["bf16\nInjected"]},
            "config.json: torch_dtype is ['bf16\\nInjected']; expected a string",
        ),
        (
            {"num_hidden_layers": 10**5000},
            "config.json: num_hidden_layers is an integer of about 5,001 digits; expected an integer from 0 to 100,000",
        ),
    ],
)
def test_config_value_is_one_line_exit_14(tmp_path, changes, line):
    config = tiny_config(**changes)
    if changes.get("num_hidden_layers") == 10**5000:  # json cannot read it back: the in-process check
        with pytest.raises(errors.MalformedConfigError) as e:
            parse_architecture(config)
        assert str(e.value) == line
        return
    assert_one_line(run(local_model(tmp_path, config)), MALFORMED_CONFIG, line)


def test_nan_and_infinity_in_config(tmp_path):
    raw = json.dumps(tiny_config(hidden_size=0)).replace('"hidden_size": 0', '"hidden_size": NaN').encode()
    assert_one_line(
        run(local_model(tmp_path, raw)),
        MALFORMED_CONFIG,
        "config.json: hidden_size is nan; expected an integer from 0 to 100,000,000",
    )
    mamba = tiny_config(model_type="jamba", mamba_expand=float("inf"))
    with pytest.raises(
        errors.MalformedConfigError,
        match=r"^config.json: mamba_expand is inf; expected a finite number from 0 to 1,000$",
    ):
        parse_architecture(mamba)


def test_100000_levels_of_nesting_is_one_line(tmp_path):
    raw = b'{"model_type": "llama", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    folder = local_model(tmp_path, raw)
    assert_one_line(
        run(folder),
        MALFORMED_CONFIG,
        f"config.json of '{folder}' nests arrays or objects too deeply to parse",
    )


def test_nesting_deeper_than_the_limit_in_process():
    value: object = 1
    for _ in range(100_000):  # built as Python objects: no parser stops it first
        value = [value]
    with pytest.raises(errors.MalformedConfigError) as e:
        parse_architecture(tiny_config(rope_scaling=value))
    assert str(e.value) == (
        f"config.json nests objects or arrays more than {MAX_DEPTH} levels deep (at …"
        + "0][0]"
        + "[0]" * 18
        + ")"
    )
    assert len(str(e.value)) < 200


def test_a_huge_layer_count_is_rejected_at_once(tmp_path):
    folder = local_model(tmp_path, tiny_config(num_hidden_layers=100_000_000))
    start = time.perf_counter()
    result = run(folder)
    assert result.exit_code == MALFORMED_CONFIG
    assert time.perf_counter() - start < 5  # was minutes (and 16 GiB at 2**31 layers)


def test_integer_too_long_for_json(tmp_path):
    raw = (
        json.dumps(tiny_config())
        .replace('"num_hidden_layers": 2', '"num_hidden_layers": ' + "9" * 5000)
        .encode()
    )
    folder = local_model(tmp_path, raw)
    result = run(folder)
    assert result.exit_code == MALFORMED_CONFIG
    assert result.stderr.startswith(f"Error: config.json of '{folder}' is not valid JSON: Exceeds the limit")
    assert result.stderr.count("\n") == 1


def test_a_config_transformers_rejects_prints_no_log(tmp_path):
    """FalconConfig cannot take Gemma 3's head_dim: transformers logs the whole config (40 lines) at
    ERROR before it raises; hubmem reads the raw dict instead and prints only its own warning. In a
    real process: transformers' log handler holds the stderr it found at import."""
    import subprocess
    import sys
    from pathlib import Path

    config = fixture_config("google/gemma-3-1b-it") | {"model_type": "falcon", "multi_query": True}
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    env.pop("TRANSFORMERS_VERBOSITY", None)
    done = subprocess.run(
        [sys.executable, "-m", "hubmem.cli", str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"Warning: no safetensors weights in '{folder}' (found: no weight files); parameters estimated from "
        "config.json, not exact\n"
    )


@pytest.mark.parametrize(
    "repo, changes, field",
    [
        ("google/flan-t5-base", {"d_ff": ...}, "d_ff"),
        ("google/flan-t5-base", {"d_kv": ...}, "d_kv"),
        ("google/flan-t5-base", {"num_heads": ...}, "num_heads"),
        ("openai/whisper-small", {"encoder_attention_heads": 0}, "encoder_attention_heads"),
        ("openai/whisper-small", {"decoder_attention_heads": 0}, "decoder_attention_heads"),
        ("openai/whisper-small", {"decoder_layers": 0}, "decoder_layers"),
        ("EbanLee/kobart-summary-v3", {"d_kv": 0}, "num_heads"),  # d_kv makes it read as T5
    ],
)
def test_encoder_decoder_fields_missing_or_zero(repo, changes, field):
    config = fixture_config(repo)
    for key, value in changes.items():
        if value is ...:
            del config[key]
        else:
            config[key] = value
    with pytest.raises(errors.MalformedConfigError) as e:
        parse_architecture(config)
    assert str(e.value) == f"config.json of an encoder-decoder model lacks a usable {field}"


def test_sub_configs_of_towers_may_hold_lists():
    """Vision towers' `num_heads` may be one per stage (Swin, DaViT): not the language model's field."""
    check_config(tiny_config(vision_config={"num_heads": [3, 6, 12, 24], "depths": [2, 2, 6, 2]}))
    with pytest.raises(errors.MalformedConfigError, match="text_config.num_heads is"):
        check_config(tiny_config(text_config={**tiny_config(), "num_heads": [3, 6]}))


def test_nested_text_sections_are_checked():
    omni = tiny_config(thinker_config={"text_config": {"num_key_value_heads": -1}})
    with pytest.raises(errors.MalformedConfigError) as e:
        check_config(omni)
    assert str(e.value) == (
        "config.json: thinker_config.text_config.num_key_value_heads is -1; expected an integer from 0 to 100,000,000"
    )


def test_every_fixture_config_passes_the_check():
    from .helpers import FIXTURES

    paths = [*FIXTURES.glob("*/config.json"), *(FIXTURES.parent / "configs").glob("*.json")]
    assert len(paths) > 40
    for path in paths:
        check_config(json.loads(path.read_text()))


def test_show_keeps_values_short_and_on_one_line():
    assert show(-(10**200)) == "-an integer of about 201 digits"
    assert show("a\nb") == "'a\\nb'"
    assert len(show(list(range(10_000)))) <= 60
    assert show({"a": {"b": {"c": {"d": 1}}}}) == "{'a': {'b': {...}}}"


# --------------------------------------------------------------------------------------------
# safetensors headers, local files


def entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    "weights, line",
    [
        (
            safetensors_file({"w": entry("F32", [4], 0, 16)}, 8),
            "malformed safetensors header in 'model.safetensors': tensor 'w' ends at byte 16 of the data, "
            "beyond the file's 8 data bytes",
        ),
        (
            safetensors_file({"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 8, 24)}, 24),
            "malformed safetensors header in 'model.safetensors': tensor 'b' (bytes 8-24) overlaps tensor 'a' "
            "(bytes up to 16)",
        ),
        (
            safetensors_file({"b": entry("F32", [2], 16, 24), "a": entry("F32", [4], 0, 20)}, 24),
            "malformed safetensors header in 'model.safetensors': tensor 'a' (F32 [4]) spans 20 bytes, expected 16",
        ),
        (
            safetensors_file({"w": entry("BF16", [10**15, 10**15], 0, 8)}, 8),
            "malformed safetensors header in 'model.safetensors': tensor 'w' has shape "
            "[1000000000000000, 1000000000000000]: more than 1,000,000,000,000 elements (or a dimension above that)",
        ),
        (
            safetensors_file({"w": entry("BF16", [0, 10**18], 0, 0)}, 0),
            "malformed safetensors header in 'model.safetensors': tensor 'w' has shape [0, 1000000000000000000]: "
            "more than 1,000,000,000,000 elements (or a dimension above that)",
        ),
        (
            safetensors_file({"w": entry("BF16", [10**15, 10**15], 0, 2 * 10**30)}, 8),
            "malformed safetensors header in 'model.safetensors': not valid JSON (an integer of 31 digits)",
        ),
        (
            safetensors_file({"__metadata__": {"format": "pt"}}),
            "malformed safetensors header in 'model.safetensors': it holds no tensors",
        ),
        (
            safetensors_file({}),
            "malformed safetensors header in 'model.safetensors': it holds no tensors",
        ),
        (
            safetensors_file({"w": entry("F32", [-2, 2], 0, 16)}, 16),
            "malformed safetensors header in 'model.safetensors': tensor 'w' has shape [-2, 2] and data_offsets "
            "[0, 16]; both must be lists of non-negative integers",
        ),
        (
            safetensors_file({"w\nx": {"dtype": "F32"}}, 16),
            "malformed safetensors header in 'model.safetensors': tensor 'w\\nx' is {'dtype': 'F32'}, not an object "
            "with dtype, shape and data_offsets",
        ),
        (
            safetensors_file([1, 2]),  # type: ignore[arg-type]
            "malformed safetensors header in 'model.safetensors': not a JSON object",
        ),
        (
            safetensors_file(b"{not json"),
            "malformed safetensors header in 'model.safetensors': not valid JSON (Expecting property name "
            "enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (
            struct.pack("<Q", 1000) + b'{"w": 1}',
            "malformed safetensors header in 'model.safetensors': file is truncated (header of 1,000 bytes, 8 present)",
        ),
        (b"\x01\x02", "'model.safetensors' is too small to be a safetensors file (2 bytes)"),
    ],
)
def test_header_entry_is_one_line_exit_16(tmp_path, weights, line):
    assert_one_line(run(local_model(tmp_path, tiny_config(), weights)), MALFORMED_HEADER, line)


def test_a_too_large_header_prefix_exits_18(tmp_path):
    weights = struct.pack("<Q", 2**63) + b"{}"
    result = run(local_model(tmp_path, tiny_config(), weights))
    assert result.exit_code == errors.HeaderTooLargeError.exit_code
    assert result.stderr.startswith("Error: refusing to parse safetensors header for 'model.safetensors'")
    assert result.stderr.count("\n") == 1


def test_a_thousand_dimensions_of_huge_integers_are_not_multiplied_out(tmp_path):
    weights = safetensors_file({"w": entry("F32", [10**19] * 1000, 0, 8)}, 8)
    start = time.perf_counter()
    result = run(local_model(tmp_path, tiny_config(), weights))
    assert result.exit_code == MALFORMED_HEADER, result.stderr
    assert time.perf_counter() - start < 5


def test_a_real_safetensors_file_still_reads(tmp_path):
    result = run(local_model(tmp_path, tiny_config()), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["parameters"]["parameters"] == 202_048


# --------------------------------------------------------------------------------------------
# the same header checks on the Hub's path (sizes from the file list)


def test_hub_header_offsets_beyond_the_file(fake_hub):
    header = {"w": entry("F32", [1000], 0, 4000)}
    fake_hub.add_repo(
        "acme/short", config=fixture_config(TINY), files={"model.safetensors": safetensors_file(header, 8)}
    )
    assert_one_line(
        run("acme/short"),
        MALFORMED_HEADER,
        # the file holds 8 data bytes after its header: the Range probe read the header's length too
        "malformed safetensors header in 'model.safetensors': tensor 'w' ends at byte 4,000 of the data, "
        "beyond the file's 8 data bytes",
    )


def test_hub_header_with_no_tensors(fake_hub):
    fake_hub.add_repo(
        "acme/empty", config=fixture_config(TINY), files={"model.safetensors": safetensors_file({})}
    )
    assert_one_line(
        run("acme/empty"),
        MALFORMED_HEADER,
        "malformed safetensors header in 'model.safetensors': it holds no tensors",
    )


def test_hub_header_overlapping_tensors(fake_hub):
    header = {"a": entry("F32", [4], 0, 16), "b": entry("F32", [4], 12, 28)}
    fake_hub.add_repo(
        "acme/overlap", config=fixture_config(TINY), files={"model.safetensors": safetensors_file(header, 28)}
    )
    assert_one_line(
        run("acme/overlap"),
        MALFORMED_HEADER,
        "malformed safetensors header in 'model.safetensors': tensor 'b' (bytes 12-28) overlaps tensor 'a' (bytes up to 16)",
    )


def test_hub_header_nested_past_the_json_parser(fake_hub):
    """A header nested past the JSON parser's recursion limit: a malformed header, not an internal
    error. The fake Hub cannot parse such a header itself, so it serves it as an opaque file."""
    raw = b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    fake_hub.add_repo(
        "acme/nested", config=fixture_config(TINY), files={"model.safetensors": safetensors_file(raw)}
    )
    result = run("acme/nested")
    assert (
        result.exit_code,
        result.stderr.startswith(
            "Error: malformed safetensors header in 'model.safetensors': not valid JSON (maximum recursion depth"
        ),
    ) == (MALFORMED_HEADER, True), result.stderr


def test_hub_header_shape_that_cannot_be_multiplied_out(fake_hub):
    """A shape of [2**64, "x"] (huggingface_hub's TensorInfo would multiply it out: an OverflowError)."""
    header = {"w": entry("F32", [2**64, "x"], 0, 8)}
    fake_hub.add_repo(
        "acme/shape", config=fixture_config(TINY), files={"model.safetensors": safetensors_file(header, 8)}
    )
    assert_one_line(
        run("acme/shape"),
        MALFORMED_HEADER,
        "malformed safetensors header in 'model.safetensors': tensor 'w' has shape [18446744073709551616, 'x'] "
        "and data_offsets [0, 8]; both must be lists of non-negative integers",
    )


def test_hub_config_with_negative_kv_heads_is_not_ready_to_pull(fake_hub):
    """Was: a negative KV cache, and `check` said "ready to pull" for an 8B model on a T4."""
    config = fixture_config("meta-llama/Llama-3.1-8B") | {"num_key_value_heads": -8}
    fake_hub.add_repo("acme/negative", layout=layout("meta-llama/Llama-3.1-8B"), config=config)
    assert_one_line(
        run("check", "acme/negative", "--gpu", "t4"),
        MALFORMED_CONFIG,
        "config.json: num_key_value_heads is -8; expected an integer from 0 to 100,000,000",
    )


# --------------------------------------------------------------------------------------------
# unexpected exceptions: internal errors, never "cannot reach the Hub"


def test_translate_never_calls_an_unknown_exception_a_connection_error():
    e = hub.translate(RuntimeError("boom"), "acme/x", None)
    assert type(e) is errors.InternalError and e.exit_code == 1
    assert str(e) == "internal error while fetching 'acme/x': RuntimeError: boom"
    chained = KeyError("k")
    chained.__cause__ = ValueError("inner")
    assert hub.translate(chained, "acme/x", None).exit_code == 1


def test_an_unexpected_exception_while_fetching_exits_1_with_the_report_hint(fake_hub, monkeypatch):
    from hubmem.hub import client

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(client, "model_files", broken)
    assert_one_line(
        run(TINY),
        1,
        "internal error while fetching 'test/tiny': RuntimeError: boom "
        "(set HUBMEM_DEBUG=1 for the traceback and report it)",
    )


def test_an_unexpected_exception_in_the_estimate_exits_1_on_one_line(tmp_path, monkeypatch):
    import hubmem.jobs.estimate as est

    def boom(*args, **kwargs):
        raise ValueError("first line\nsecond line")

    monkeypatch.setattr(est, "estimate_snapshot", boom)
    assert_one_line(
        run(local_model(tmp_path, tiny_config())),
        1,
        "internal error: ValueError: first line (set HUBMEM_DEBUG=1 for the traceback and report it)",
    )


def test_internal_error_is_in_the_exit_code_table():
    table = errors.exit_code_table()
    assert (1, "InternalError", errors.InternalError.meaning) in table
    assert [code for code, _, _ in table].count(1) == 1
