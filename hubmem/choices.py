"""The values each choice option accepts, in the order `--help` lists them: one definition for the CLI's
click choices and the validation of the Python API (hubmem.jobs.options). Imports only the leaf modules
dtypes and units, so `hubmem --help` stays fast."""

from hubmem.dtypes import FP8_DS_MLA
from hubmem.units import UNITS as _UNIT_BYTES

PRECISIONS = (
    "fp32",
    "bf16",
    "fp16",
    "fp8",
    "int8",
    "int4",
    "nf4",
    "fp4",
    "bnb-int8",
    "gptq",
    "awq",
    "stored",
)
JUDGED_PRECISIONS = ("auto", *PRECISIONS)  # audit / check judge one; auto = what from_pretrained loads
KV_DTYPES = ("auto", "fp32", "bf16", "fp16", "fp8", "int8", FP8_DS_MLA)
STATE_DTYPES = ("auto", "fp32", "bf16", "fp16")
ATTENTION = ("sdpa", "eager")
GENERATE_CACHES = ("dynamic", "legacy")  # hubmem.runtimes.generate
BNB_COMPUTE_DTYPES = ("fp32", "bf16", "fp16")  # hubmem.runtimes.bitsandbytes
GPTQ_KERNELS = ("auto", "swordfish", "machete", "marlin", "exllamav2")  # hubmem.runtimes.gptq
TRAIN_MODES = ("full", "lora", "qlora")
REGIMES = ("fp32", "bf16", "mixed", "int8")
OPTIMIZERS = ("adamw", "adamw-8bit", "sgd", "sgd-momentum", "adafactor")
GRAD_DTYPES = ("fp32", "16bit")
LOSS_DTYPES = ("fp32", "16bit")  # hubmem.memory.training logits_bytes
OBJECTIVES = ("causal-lm", "classifier", "logits-sum")
ACTIVATION_RULES = ("korthikanti", "simple")
LORA_MODULES = ("q", "k", "v", "o", "gate", "up", "down")
LORA_EXPERTS = ("auto", "none", "params")  # hubmem.memory.training lora_matrices
ZERO_STAGES = ("0", "1", "2", "3")
FSDP_MODES = ("full", "grad-op")
ZERO_BUCKETS = ("deepspeed", "hf-auto")  # hubmem.runtimes.sharded_training
OFFLOAD = ("optimizer", "params")
FORMATS = ("table", "json", "jsonl", "csv", "markdown")
UNITS = tuple(_UNIT_BYTES)
# llama.cpp (common/arg.cpp) and hubmem.runtimes.llamacpp: cache types, -fa values; runtime presets
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
FLASH_ATTN = ("auto", "on", "off")
RUNTIMES = ("llama.cpp", "ollama")
