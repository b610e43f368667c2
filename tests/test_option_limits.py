"""Option values past their upper bound (hubmem.bounds, issue 11): one line, exit 3, the flag and the
value named; the bound itself is accepted. Before, `--timeout 1e300` was an OverflowError (exit 1) and
`--serving-factor 1e300` / `--params 1e30` printed 300- and 31-digit byte counts with exit 0."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hubmem import bounds
from hubmem.cli import main
from hubmem.jobs.options import InferenceOptions, job_options
from hubmem.memory.training import TrainingSettings

from .test_hostile_configs import local_model, tiny_config

E18 = str(10**18)


@pytest.mark.parametrize(
    "args, line",
    [
        (["--timeout", "1e300"], "--timeout must be at most 3,600, not 1e+300"),
        (["--timeout", "3601"], "--timeout must be at most 3,600, not 3.6e+03"),
        (["--seq-len", "100000001"], "--seq-len must be at most 100,000,000, not 100,000,001"),
        (["--batch", E18], "--batch must be at most 1,000,000, not 1,000,000,000,000,000,000"),
        (
            ["--image-tokens", E18],
            "--image-tokens must be at most 100,000,000, not 1,000,000,000,000,000,000",
        ),
        (["--encoder-len", E18], "--encoder-len must be at most 100,000,000, not 1,000,000,000,000,000,000"),
        (
            ["--gpu", "h100", "--num-gpus", E18],
            "--num-gpus must be at most 1,000,000, not 1,000,000,000,000,000,000",
        ),
        (["--params", "1e30"], "--params must be at most 1,000,000,000,000,000, not a 31-digit number"),
        (["--params", "1001T"], "--params must be at most 1,000,000,000,000,000, not 1,001,000,000,000,000"),
        (["--serving-factor", "1e300"], "--serving-factor must be at most 1,000, not 1e+300"),
        # 1,048,577 GiB = 2**50 + 2**30 bytes
        (
            ["--overhead", "1048577GiB"],
            "--overhead must be at most 1,125,899,906,842,624, not 1,125,900,980,584,448",
        ),
        (
            ["--train", "lora", "--lora-rank", E18],
            "--lora-rank must be at most 100,000,000, not 1,000,000,000,000,000,000",
        ),
        (
            ["--train", "full", "--micro-batch", E18],
            "--micro-batch must be at most 1,000,000, not 1,000,000,000,000,000,000",
        ),
        (
            ["--train", "full", "--gpus", E18],
            "--gpus must be at most 1,000,000, not 1,000,000,000,000,000,000",
        ),
        (["--train", "full", "--pp", "1000001"], "--pp must be at most 1,000,000, not 1,000,001"),
    ],
)
def test_an_option_past_its_bound_is_one_line_exit_3(tmp_path, args, line):
    folder = local_model(tmp_path / "m", tiny_config())
    result = CliRunner().invoke(main, [folder, *args])
    assert (result.exit_code, result.stderr, result.stdout) == (3, f"Error: {line}\n", "")


def test_each_bound_itself_is_accepted():
    m = bounds.OPTION_MAXIMA
    InferenceOptions(
        seq_len=m["seq_len"],
        batch=m["batch"],
        image_tokens=m["image_tokens"],
        encoder_len=m["encoder_len"],
        overhead=m["overhead"],
        serving_factor=float(m["serving_factor"]),
        params=m["params"],
    )
    job_options(None, {"params": "1000T"})  # = 10**15
    TrainingSettings(mode="lora", lora_rank=m["lora_rank"], micro_batch=m["micro_batch"])
    TrainingSettings(mode="full", gpus=m["gpus"], tp=m["tp"])
    TrainingSettings(mode="full", gpus=m["pp"], pp=m["pp"])


def test_the_largest_timeout_still_fetches(fake_hub):
    """3,600 s reaches the socket as a timeout it can hold (1e300 overflowed its C timeval)."""
    result = CliRunner().invoke(main, ["test/tiny", "--timeout", "3600", "--format", "json"])
    assert result.exit_code == 0, result.stderr
