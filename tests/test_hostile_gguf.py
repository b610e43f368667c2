"""Issue 11, the GGUF and serve cases `make fuzz` found (scripts/fuzz_engines.py): every one a one-line
typed error with its exit code, never a traceback, never a negative or infinite figure."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import hubmem
from hubmem.cli import main
from hubmem.errors import EngineRefusedError, InvalidInputError, MalformedGGUFError
from tests import gguf_fixtures

LLAMA = gguf_fixtures.llama32_3b()


def write(tmp_path, kv: list, tensors: list | None = None) -> str:
    """A local .gguf file of the Llama 3.2 3B fixture's tensors (Q4_K_M) and these keys, data sparse."""
    typed = gguf_fixtures.typed_tensors(LLAMA, "Q4_K_M") if tensors is None else tensors
    return gguf_fixtures.sparse_file(tmp_path / "m-Q4_K_M.gguf", kv, typed)


def changed(**values: tuple) -> list:
    """The fixture's keys with `llama.<name>` replaced or added as (value, kind)."""
    return gguf_fixtures.with_llama_keys(LLAMA, **values)


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_64_bit_key_is_read_as_8_bytes(tmp_path):
    """numpy's int64 char "l" is 4 bytes to struct's "<l": a u64 or i64 key was a struct.error (exit 1)."""
    path = write(tmp_path, changed(context_length=(8192, "u64"), vocab_size=(128256, "u64")))
    est = hubmem.estimate(path, ctx_size=4096)
    assert est.rows[0].model.context_length == 8192
    assert est.rows[0].model.tensor_bytes == 2_011_539_712


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # was: ValueError cannot convert float NaN to integer
        ("attention__key_length", (float("nan"), "f32"), "llama.attention.key_length = nan is not a count"),
        # was: TypeError unsupported operand type(s) for %: 'list' and 'int'
        ("attention__value_length", ([1, 2], "arr"), "llama.attention.value_length = [1, 2] is not a count"),
        ("attention__key_length", (-1, "i32"), "llama.attention.key_length = -1 is not a count"),
        ("context_length", (2**63, "u64"), "llama.context_length = 9223372036854775808 is not a count"),
        # was: a message of two lines
        (
            "feed_forward_length",
            ("line\nbreak", "str"),
            "llama.feed_forward_length = 'line\\nbreak' is not a count",
        ),
        ("ssm__inner_size", ("x", "str"), "llama.ssm.inner_size = 'x' is not a count"),
        (
            "expert_count",
            (2**32 - 1, "u32"),
            "llama.expert_count = 4294967295 is not a count from 0 to 100,000",
        ),
    ],
)
def test_hostile_key_values_are_one_line_errors(tmp_path, key, value, message):
    result = cli(write(tmp_path, changed(**{key: value})))
    assert result.exit_code == MalformedGGUFError.exit_code == 15
    assert result.stderr.startswith(f"Error: 'm-Q4_K_M.gguf': {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_an_mla_key_length_shorter_than_its_rope_part(tmp_path):
    kv = changed(attention__kv_lora_rank=(512, "u32"), attention__key_length_mla=(32, "u32"))
    result = cli(write(tmp_path, kv))
    assert (result.exit_code, result.stderr) == (
        15,
        "Error: 'm-Q4_K_M.gguf': llama.attention.key_length_mla 32 is shorter than its rope part 128\n",
    )


def test_more_experts_used_than_there_are(tmp_path):
    kv = changed(expert_count=(8, "u32"), expert_used_count=(9, "u32"))
    result = cli(write(tmp_path, kv))
    assert (result.exit_code, result.stderr) == (
        15,
        "Error: 'm-Q4_K_M.gguf': GGUF lacks a usable llama.expert_used_count (from 1 to 8; it has 9)\n",
    )


@pytest.mark.parametrize("split", ["inf,1", "nan,1", "1e400,1"])
def test_an_infinite_tensor_split_is_refused(tmp_path, split):
    """`-ts inf,1` passed the `f >= 0` check and came out as an infinite fraction in the JSON."""
    result = cli(write(tmp_path, LLAMA["kv"]), "--tensor-split", split, "--num-gpus", "2")
    assert (result.exit_code, result.stderr) == (
        3,
        "Error: --tensor-split takes non-negative fractions, e.g. 3,1\n",
    )
    with pytest.raises(InvalidInputError):
        hubmem.estimate(write(tmp_path, LLAMA["kv"]), tensor_split=split)


def test_sglang_on_a_gpu_smaller_than_its_reserve(fake_hub):
    """SGLang's default mem_fraction_static went negative (-99,323.6 on 1 MiB): negative byte figures."""
    with pytest.raises(EngineRefusedError) as e:
        hubmem.serve("meta-llama/Llama-3.2-1B-Instruct", engine="sglang", gpu_memory="2GiB")
    # sglang server_args (hubmem.runtimes.sglang.mem_fraction_default): 512 + 2048 × 1.5 + 8 × 2 + 1/8 × 1024
    assert str(e.value) == (
        "SGLang reserves 3,728 MiB beside its static pool, more than the GPU's 2,048 MiB "
        "(give --mem-fraction-static)"
    )
    result = cli("serve", "meta-llama/Llama-3.2-1B-Instruct", "--engine", "sglang", "--gpu-memory", "2GiB")
    assert result.exit_code == 19 and result.stderr.count("\n") == 1


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_a_config_whose_head_dim_rounds_to_zero(fake_hub, engine):
    """hidden_size 7 over 20 heads: head_dim 7 // 20 = 0, a KV page of 0 bytes (was ZeroDivisionError)."""
    from tests.helpers import config, layout

    tiny = {k: v for k, v in config("test/tiny").items() if k != "head_dim"}  # head_dim from hidden / heads
    fake_hub.add_repo(
        "acme/zero-head",
        layout=layout("test/tiny"),
        config={**tiny, "hidden_size": 7, "num_attention_heads": 20},
    )
    with pytest.raises(EngineRefusedError) as e:
        hubmem.serve("acme/zero-head", engine=engine, gpu="h100")
    assert "KV cache of 0 bytes per token for 'llama' (head_dim 0" in str(e.value)
    result = cli("serve", "acme/zero-head", "--engine", engine, "--gpu", "h100")
    assert result.exit_code == 19 and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--max-num-batched-tokens",
            str(10**30),
            "--max-num-batched-tokens must be at most 100,000,000, not a 31-digit number",
        ),
        ("--max-num-seqs", "2000000", "--max-num-seqs must be at most 1,000,000, not 2,000,000"),
        ("--block-size", "2147483648", "--block-size must be at most 1,000,000, not 2,147,483,648"),
        ("--max-model-len", "200000000", "--max-model-len must be at most 100,000,000, not 200,000,000"),
    ],
)
def test_serve_options_have_upper_bounds(fake_hub, flag, value, message):
    """`--max-num-batched-tokens 10**30` printed a 34-digit activation peak (exit 40)."""
    result = cli("serve", "test/tiny", "--gpu", "h100", flag, value)
    assert (result.exit_code, result.stderr) == (3, f"Error: {message}\n")
