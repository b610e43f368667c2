"""Options from plain values (the CLI's strings, the Python API's arguments) into validated settings.

One place decides what each option accepts and which job it applies to: the CLI and the API pass the
options the user *gave*, and an option that does not apply to the chosen job is an error (exit 3,
`InvalidInputError`), never silently ignored. Every bad value is an `InvalidInputError` (exit 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from hubmem.bounds import OPTION_MAXIMA, at_most
from hubmem.choices import (
    ATTENTION,
    BNB_COMPUTE_DTYPES,
    GENERATE_CACHES,
    GPTQ_KERNELS,
    KV_DTYPES,
    STATE_DTYPES,
    TRAIN_MODES,
)
from hubmem.dtypes import PRECISION_ALIASES
from hubmem.errors import InvalidInputError
from hubmem.memory import training
from hubmem.memory.inference import DEFAULT_OVERHEAD_BYTES, PRECISIONS
from hubmem.units import parse_memory

# Options that apply to one job only (names as the API spells them; the CLI's flags are these with
# dashes). Options of both: seq_len, attn, overhead, params.
INFERENCE_ONLY = (
    "batch",
    "precisions",
    "kv_dtype",
    "state_dtype",
    "encoder_len",
    "image_tokens",
    "all_logits",
    "serving_factor",
    "prompt_len",
    "new_tokens",
    "num_beams",
    "generate_cache",
    "bnb_compute_dtype",
    "bnb_double_quant",
    "bnb_quantize_lm_head",
    "gptq_kernel",
    "gptq_desc_act",
    "gpu_sms",
    "overhead_model",
)
TRAINING_ONLY = tuple(
    f.name for f in fields(training.TrainingSettings) if f.name not in ("mode", "attn", "overhead_bytes")
)
LORA_ONLY = ("lora_rank", "lora_targets", "modules_to_save", "lora_experts", "lora_dropout", "lora_fused_qkv")
# The CLI's flag where it is not the option's name with dashes.
FLAGS = {
    "precisions": "--precision",
    "regimes": "--regime",
    "activation_rule": "--activations",
}


def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def normalise_precision(name: str) -> str:
    key = PRECISION_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in PRECISIONS:
        raise InvalidInputError(f"unknown precision '{name}' (choose from {', '.join(PRECISIONS)})")
    return key


def memory_bytes(value: int | str, what: str) -> int:
    """'2GiB' / '1.3GB' / a byte count -> bytes; an InvalidInputError naming the option otherwise."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what}: not a memory size: {value!r}")
    if isinstance(value, int):
        return value
    try:
        return parse_memory(value)
    except (ValueError, TypeError) as e:
        raise InvalidInputError(f"{what}: {e}") from e


def _scaled(value: int | float | str, bad: str) -> float:
    """'6e9', '6B', '350M', '5K' or a number -> a float; InvalidInputError(`bad`) when it is none of them."""
    if isinstance(value, bool):
        raise InvalidInputError(bad)
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}.get(text[-1:], 1)
    try:
        return float(text[:-1] if scale > 1 else text) * scale
    except ValueError as e:
        raise InvalidInputError(bad) from e


def parameter_count(value: int | float | str) -> int:
    """'6e9', '6B', '1.5B', '350M' or a number -> an integer parameter count of at least 1."""
    number = _scaled(value, f"--params: '{value}' is not a parameter count (e.g. 6e9, 6B, 350M)")
    if not math.isfinite(number):
        raise InvalidInputError(f"--params must be a finite count, not '{value}'")
    if number < 1:
        raise InvalidInputError("--params must be at least 1")
    at_most(round(number), "params")
    return round(number)


def element_count(value: int | float | str, name: str) -> int:
    """'5e8', '500M', '1e5' or a whole number -> elements (≥ 0), for DeepSpeed's bucket sizes."""
    what = flag(name)
    shown = repr(value) if isinstance(value, bool) else f"'{value}'"
    number = _scaled(value, f"{what} takes a number of elements (e.g. 5e8), not {shown}")
    if not math.isfinite(number) or number < 0 or number != int(number):
        raise InvalidInputError(f"{what} takes a whole number of elements ≥ 0, not '{value}'")
    at_most(int(number), name)
    return int(number)


def _choice(value: Any, choices: Iterable[str], name: str) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise InvalidInputError(f"{flag(name)}: '{value}' is not one of {', '.join(choices)}")
    return str(value)


def _integer(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{flag(name)} takes a whole number, not {value!r}")
    if value < minimum:
        raise InvalidInputError(f"{flag(name)} must be at least {minimum}")
    if name in OPTION_MAXIMA:
        at_most(value, name)
    return value


@dataclass(frozen=True)
class InferenceOptions:
    """What `hubmem REPO` / `hubmem.estimate` take, validated on construction. `seq_len` None: the
    model's max context; `encoder_len` None: the model's source length."""

    seq_len: int | None = None
    batch: int = 1
    precisions: tuple[str, ...] = ()  # () = fp32 bf16 fp8 int8 int4 (+ stored for quantized checkpoints)
    kv_dtype: str = "auto"
    state_dtype: str = "auto"
    encoder_len: int | None = None
    image_tokens: int = 0
    attn: str = "sdpa"
    overhead: int = DEFAULT_OVERHEAD_BYTES
    all_logits: bool = False
    serving_factor: float | None = None
    params: int | None = None
    # generate (hubmem.runtimes.generate): --seq-len = --prompt-len + --new-tokens
    prompt_len: int | None = None
    new_tokens: int | None = None
    num_beams: int = 1
    generate_cache: str = "dynamic"
    # bitsandbytes 4-bit rows (nf4, fp4): BitsAndBytesConfig's defaults
    bnb_compute_dtype: str = "fp32"
    bnb_double_quant: bool = False
    bnb_quantize_lm_head: bool = False
    # gptq / awq rows (hubmem.runtimes.gptq): GPTQModel's auto kernel for --gpu, GPTQConfig's desc_act
    gptq_kernel: str = "auto"
    gptq_desc_act: bool = False
    gpu_sms: int = 128  # Marlin's workspace floor: max(SMs, 128) blocks
    overhead_model: str = ""  # the named model --overhead gave (hubmem.runtimes.overhead), for --explain

    def __post_init__(self) -> None:
        if self.seq_len is not None:
            _integer(self.seq_len, "seq_len", 1)
        if self.prompt_len is not None:
            _integer(self.prompt_len, "prompt_len", 1)
        if self.new_tokens is not None:
            _integer(self.new_tokens, "new_tokens", 0)
        _integer(self.num_beams, "num_beams", 1)
        _choice(self.generate_cache, GENERATE_CACHES, "generate_cache")
        _choice(self.bnb_compute_dtype, BNB_COMPUTE_DTYPES, "bnb_compute_dtype")
        _choice(self.gptq_kernel, GPTQ_KERNELS, "gptq_kernel")
        _integer(self.gpu_sms, "gpu_sms", 1)
        for name in ("bnb_double_quant", "bnb_quantize_lm_head", "gptq_desc_act"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInputError(
                    f"{flag(name)} is a flag (True or False), not {getattr(self, name)!r}"
                )
        if self.overhead_model:
            from hubmem.runtimes.overhead import MODELS

            model = MODELS.get(self.overhead_model)
            if model is None or model.bytes != self.overhead:
                raise InvalidInputError(
                    f"overhead_model {self.overhead_model!r}: give the model's name as --overhead (overhead=)"
                )
        plen, new, total = self.prompt_len, self.new_tokens, self.seq_len
        if plen is not None and new is not None and total is not None and total != plen + new:
            raise InvalidInputError(
                f"--seq-len {total:,} is not --prompt-len {plen:,} + --new-tokens {new:,} (give two of the three)"
            )
        if total is not None and plen is not None and plen > total:
            raise InvalidInputError(
                f"--prompt-len {plen:,} exceeds --seq-len {total:,} (prompt + new tokens)"
            )
        if total is not None and new is not None and new >= total:
            raise InvalidInputError(f"--new-tokens {new:,} leaves no prompt within --seq-len {total:,}")
        _integer(self.batch, "batch", 1)
        _integer(self.image_tokens, "image_tokens", 0)
        if self.encoder_len is not None:
            _integer(self.encoder_len, "encoder_len", 1)
        _choice(self.kv_dtype, KV_DTYPES, "kv_dtype")
        _choice(self.state_dtype, STATE_DTYPES, "state_dtype")
        _choice(self.attn, ATTENTION, "attn")
        _integer(self.overhead, "overhead", 0)
        for p in self.precisions:
            normalise_precision(p)
        factor = self.serving_factor
        if factor is not None and (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or factor < 1
        ):
            raise InvalidInputError(f"--serving-factor must be a finite number of at least 1, not {factor!r}")
        if factor is not None:
            at_most(factor, "serving_factor")
        if self.params is not None:
            _integer(self.params, "params", 1)

    @property
    def total_len(self) -> int | None:
        """--seq-len, or --prompt-len + --new-tokens (None: the model's max context)."""
        if self.seq_len is not None:
            return self.seq_len
        if self.prompt_len is not None:
            return self.prompt_len + (self.new_tokens or 0)
        return None

    def prompt_at(self, total: int) -> int | None:
        """The prompt length within `total` tokens; None when no generation option was given."""
        if self.prompt_len is not None:
            return self.prompt_len
        if self.new_tokens is not None:
            if self.new_tokens >= total:
                raise InvalidInputError(
                    f"--new-tokens {self.new_tokens:,} leaves no prompt within {total:,} tokens"
                )
            return total - self.new_tokens
        return None

    @property
    def precision_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(normalise_precision(p) for p in self.precisions))


@dataclass(frozen=True)
class TrainingOptions:
    """What `hubmem REPO --train` / `hubmem.train` take: the shared options and the training settings."""

    settings: training.TrainingSettings
    seq_len: int | None = None
    params: int | None = None


def _plain(name: str, value: Any) -> Any:
    """One option's value as the settings hold it (strings from the CLI or the API parsed here)."""
    if name == "overhead":
        from hubmem.runtimes.overhead import MODELS

        if isinstance(value, str) and value in MODELS:
            return MODELS[value].bytes
        if isinstance(value, str) and value.strip() and not value.strip()[0].isdigit():
            raise InvalidInputError(
                f"--overhead: '{value}' is neither a memory size (e.g. 1GiB) nor an overhead model "
                f"({', '.join(MODELS)})"
            )
        return memory_bytes(value, "--overhead")
    if name == "params":
        return None if value is None else parameter_count(value)
    if name == "precisions":
        return (value,) if isinstance(value, str) else tuple(value)
    if name in ("lora_targets", "modules_to_save"):
        items = value.split(",") if isinstance(value, str) else value
        return tuple(t.strip() for t in items if t.strip())
    if name == "regimes":
        return tuple(dict.fromkeys((value,) if isinstance(value, str) else value))
    if name in training.ZERO_OPTIONS and name not in ("zero_buckets", "overlap_comm"):
        return None if value is None else element_count(value, name)
    if name == "zero":
        return _integer(int(value) if isinstance(value, str) and value.isdigit() else value, "zero", 0)
    return value


def job_options(train: str | None, given: Mapping[str, Any]) -> InferenceOptions | TrainingOptions:
    """The validated options of the job `train` selects (None: inference) from the options given.

    An option of the other job, or a LoRA option without LoRA, is an error naming the flag."""
    known = {f.name for f in fields(InferenceOptions)} | set(TRAINING_ONLY)
    unknown = [k for k in given if k not in known]
    if unknown:
        raise InvalidInputError(f"unknown option '{unknown[0]}' (options: {', '.join(sorted(known))})")
    values = {k: _plain(k, v) for k, v in given.items()}
    named = given.get("overhead")
    if train is None:
        from hubmem.runtimes.overhead import MODELS

        if isinstance(named, str) and named in MODELS:
            values["overhead_model"] = named
        extra = [k for k in values if k in TRAINING_ONLY]
        if extra:
            raise InvalidInputError(f"{flag(extra[0])} applies to training: add --train full|lora|qlora")
        return InferenceOptions(**values)
    _choice(train, TRAIN_MODES, "train")
    extra = [k for k in values if k in INFERENCE_ONLY]
    if extra:
        hint = {"batch": "use --micro-batch", "precisions": "use --regime fp32|bf16|mixed|int8"}.get(
            extra[0], "it does not apply"
        )
        raise InvalidInputError(f"{flag(extra[0])} is for inference; with --train {hint}")
    lora = [k for k in values if k in LORA_ONLY]
    if lora and train == "full":
        raise InvalidInputError(f"{flag(lora[0])} applies to --train lora or qlora, not full")
    shared = InferenceOptions(
        **{k: values.pop(k) for k in ("seq_len", "attn", "overhead", "params") if k in values}
    )
    regimes = values.pop("regimes", ()) or training.DEFAULT_REGIMES
    settings = training.TrainingSettings(
        mode=train, attn=shared.attn, overhead_bytes=shared.overhead, regimes=regimes, **values
    )
    return TrainingOptions(settings, seq_len=shared.seq_len, params=shared.params)
