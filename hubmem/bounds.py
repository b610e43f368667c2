"""Upper bounds of option values: far above any real job, low enough that no estimate overflows a
float, a C timeval or runs for long (issue 11: `--timeout 1e300` was an OverflowError, `--serving-factor
1e300` and `--params 1e30` printed 300-digit byte counts). The lower bounds live where each option is
checked (hubmem.jobs.options, hubmem.memory.training, hubmem.fit.verdicts, hubmem.api); the README's
Input limits table is generated from this one."""

from __future__ import annotations

from hubmem.errors import InvalidInputError

# option (the API's name) -> largest accepted value, and why it is that
OPTION_MAXIMA: dict[str, int] = {
    "seq_len": 100_000_000,  # as config.json's context lengths (hubmem.model.config_check)
    "encoder_len": 100_000_000,
    "image_tokens": 100_000_000,
    "batch": 1_000_000,
    "micro_batch": 1_000_000,
    "lora_rank": 100_000_000,  # as config.json's widths
    "num_gpus": 1_000_000,
    "gpus": 1_000_000,
    "tp": 1_000_000,
    "pp": 1_000_000,
    "params": 10**15,  # 1,000 T: 500 times the largest published checkpoint
    # DeepSpeed ZeRO bucket sizes and thresholds, in elements: as --params
    "reduce_bucket_size": 10**15,
    "prefetch_bucket_size": 10**15,
    "param_persistence_threshold": 10**15,
    "max_live_parameters": 10**15,
    "max_reuse_distance": 10**15,
    "overhead": 2**50,  # 1 PiB per GPU
    "serving_factor": 1_000,
    "timeout": 3_600,  # seconds; past ~10**11 the socket's C timeval overflows
    # serve: the engines' own options (vLLM, SGLang), as the token counts and GPU counts above
    "max_model_len": 100_000_000,
    "max_num_batched_tokens": 100_000_000,
    "max_num_seqs": 1_000_000,
    "block_size": 1_000_000,
    "tensor_parallel_size": 1_000_000,
    "pipeline_parallel_size": 1_000_000,
    "context_length": 100_000_000,
    "chunked_prefill_size": 100_000_000,
    "max_running_requests": 1_000_000,
    "cuda_graph_max_bs": 1_000_000,
}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def at_most(value: int | float, name: str) -> None:
    """InvalidInputError (exit 3) when `value` exceeds OPTION_MAXIMA[name]; the value shown short."""
    maximum = OPTION_MAXIMA[name]
    if value > maximum:
        shown = f"{value:,}" if isinstance(value, int) and value < 10**30 else f"{value:.3g}"
        if isinstance(value, int) and value >= 10**30:
            shown = f"a {len(str(value))}-digit number"
        raise InvalidInputError(f"{flag(name)} must be at most {maximum:,}, not {shown}")


def limits_rows() -> list[list[str]]:
    """(checked, option, accepted) rows for the README's Input limits table."""
    return [
        ["option values", f"`{flag(name)}`", f"at most {maximum:,}"]
        for name, maximum in OPTION_MAXIMA.items()
    ]
