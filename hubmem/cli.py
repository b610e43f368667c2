"""Command line: parse options, call the library, render. Nothing else lives here.

Heavy modules (huggingface_hub, transformers) are imported only when a command needs them, so
`hubmem --help` starts in well under 0.3 s.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from hubmem import choices, errors

DEBUG_ENV = "HUBMEM_DEBUG"


class DefaultGroup(click.Group):
    """`hubmem REPO ...` means `hubmem estimate REPO ...`. A bad option value exits 3 with one line,
    as every other bad value does (hubmem.errors.InvalidInputError); usage mistakes (an unknown
    option, a missing argument) keep click's exit 2."""

    default_command = "estimate"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.BadParameter as e:
            click.echo(f"Error: {e.format_message()}", err=True)
            ctx.exit(errors.InvalidInputError.exit_code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HubmemError into `Error: ...` + its exit code; anything else into exit 1 (traceback on demand)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except errors.HubmemError as e:
            if os.environ.get(DEBUG_ENV):
                raise
            if e.exit_code == errors.InternalError.exit_code and not e.hint:
                e.hint = errors.REPORT_HINT  # a bug caught on the way (a fetch helper, an audit row)
            click.echo(f"Error: {_one_line(str(e))}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as e:
            if os.environ.get(DEBUG_ENV):
                raise
            internal = errors.InternalError.of(e)
            click.echo(errors.redact(f"Error: {internal.message} ({errors.REPORT_HINT})"), err=True)
            sys.exit(internal.exit_code)

    return wrapper


def _one_line(text: str) -> str:
    """An error message as one line: whatever a message quotes (a server's body, a name with a newline)
    cannot add lines to stderr."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--format and --units, shared by every command that prints results."""
    fn = click.option(
        "--units",
        callback=lambda ctx, param, value: "GiB" if value.lower() == "gib" else "GB",
        type=click.Choice(choices.UNITS, case_sensitive=False),
        default="GiB",
        show_default=True,
        help="GiB = 1024³ bytes, GB = 10⁹ bytes (tables only; JSON and CSV hold raw bytes).",
    )(fn)
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(choices.FORMATS),
        default="table",
        show_default=True,
        help="Output format.",
    )(fn)
    return fn


class LibraryDefault(click.Option):
    """An option whose default is the library's (hubmem.jobs.options): click passes nothing when it is
    not given, and `--help` shows the `show_default` text as click shows a real default."""

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


def options(*specs: Callable[..., Any]) -> Callable[..., Any]:
    """Apply click option decorators in the order they are listed (the order `--help` shows)."""

    def apply(fn: Callable[..., Any]) -> Callable[..., Any]:
        for spec in reversed(specs):
            fn = spec(fn)
        return fn

    return apply


# Options whose value hubmem parses (hubmem.jobs.options): click passes them on as given, and leaves
# out any the user did not give, so that the library's defaults are the only ones and an option that
# does not apply to the job is seen. `show_default` strings document those defaults
# (tests/test_cli.py checks them against the library's).
gpu_options = options(
    click.option(
        "--gpu",
        help="Verdict for this GPU (`hubmem gpus` lists names; any case, e.g. h100, a100-80gb, 4090); "
        "with --train, per regime on --gpus of them.",
    ),
    click.option(
        "--num-gpus",
        type=int,
        default=1,
        show_default=True,
        help="How many of them, split tensor-parallel (the overhead is paid on each). With --train: --gpus.",
    ),
    click.option(
        "--gpu-memory", help="Usable memory of a GPU not in the catalogue, e.g. 24GiB (instead of --gpu)."
    ),
)

hub_options = options(
    click.option("--token", help="Hub token (default: HF_TOKEN or the saved login)."),
    click.option(
        "--timeout",
        type=float,
        default=10.0,
        show_default=True,
        help="Seconds each Hub request may take, first byte to last (then retried, 3 times at most).",
    ),
)

shared_model_options = options(
    click.option(
        "--seq-len",
        type=int,
        help="Tokens per sequence (prompt + generated). Default: the model's max context.",
    ),
    click.option(
        "--attn",
        type=click.Choice(choices.ATTENTION),
        cls=LibraryDefault,
        show_default="sdpa",
        help="Attention implementation: eager materialises the b·a·s² score matrix, sdpa/flash does not.",
    ),
    click.option(
        "--overhead",
        cls=LibraryDefault,
        show_default="1GiB",
        help="CUDA context + framework reserve per GPU, e.g. 1GiB, 1.3GB, 500MiB, or a model from its parts: "
        "torch-lazy, torch-lazy-sm90, torch-eager, cuda11, allocated, allocated-sm90 (README).",
    ),
    click.option(
        "--params",
        help="Replace the parameter count (e.g. 6e9, 7B) keeping config.json's dimensions (the seeds' round models).",
    ),
)

inference_options = options(
    click.option("--batch", type=int, cls=LibraryDefault, show_default="1", help="Concurrent sequences."),
    click.option(
        "--kv-dtype",
        type=click.Choice(choices.KV_DTYPES),
        cls=LibraryDefault,
        show_default="auto",
        help="KV cache dtype; auto = each row's compute dtype (16-bit for quantized rows). "
        "fp8_ds_mla: vLLM's 656-byte FP8 MLA latent (DeepSeek MLA models only).",
    ),
    click.option(
        "--state-dtype",
        type=click.Choice(choices.STATE_DTYPES),
        cls=LibraryDefault,
        show_default="auto",
        help="SSM / linear-attention state dtype (Mamba, Jamba, Qwen3-Next, Falcon-H1); "
        "auto = each row's compute dtype, as vLLM's --mamba-ssm-cache-dtype auto.",
    ),
    click.option(
        "--encoder-len",
        type=int,
        help="Encoder-decoder models: encoder tokens (frames), fixing the cross-attention KV. "
        "Default: the model's source length (Whisper 1500, T5 n_positions, BART max_position_embeddings).",
    ),
    click.option(
        "--image-tokens",
        type=int,
        cls=LibraryDefault,
        show_default="0",
        help="Multimodal models: image tokens (per image × images) added to --seq-len for KV and activations.",
    ),
    click.option(
        "--all-logits", is_flag=True, help="Keep logits for every position (b·s·V·4), not just the last."
    ),
    click.option(
        "--serving-factor",
        type=float,
        help="Rule of thumb instead of KV/activation terms: total = weights × FACTOR (seed S4 uses 1.2).",
    ),
    click.option(
        "--prompt-len",
        type=int,
        help="generate: prompt tokens (the prefill). With --new-tokens, --seq-len = prompt + new.",
    ),
    click.option(
        "--new-tokens",
        type=int,
        help="generate: tokens generated after the prompt; the peak is the larger of the prefill and "
        "the last decode step (--explain shows both).",
    ),
    click.option(
        "--num-beams",
        type=int,
        cls=LibraryDefault,
        show_default="1",
        help="Beam search: every decoder term and the cross-attention KV per beam; the encoder runs once.",
    ),
    click.option(
        "--generate-cache",
        type=click.Choice(choices.GENERATE_CACHES),
        cls=LibraryDefault,
        show_default="dynamic",
        help="dynamic: transformers >= 4.45 (DynamicCache, last-position logits); legacy: 4.3x tuple "
        "past_key_values (previous step's cache and full logits held, stored buffers loaded).",
    ),
    click.option(
        "--bnb-compute-dtype",
        type=click.Choice(choices.BNB_COMPUTE_DTYPES),
        cls=LibraryDefault,
        show_default="fp32",
        help="nf4/fp4 rows: bnb_4bit_compute_dtype (BitsAndBytesConfig's default fp32); each prefill "
        "matmul dequantizes its weight to it.",
    ),
    click.option(
        "--bnb-double-quant",
        is_flag=True,
        help="nf4/fp4 rows: bnb_4bit_use_double_quant (absmax in 8 bits: 4.127 instead of 4.5 bits/weight).",
    ),
    click.option(
        "--bnb-quantize-lm-head",
        is_flag=True,
        help="nf4/fp4 rows: quantize lm_head too, as Lightning's BitsandbytesPrecision (litgpt) does; "
        "transformers keeps it 16-bit.",
    ),
    click.option(
        "--gptq-kernel",
        type=click.Choice(choices.GPTQ_KERNELS),
        cls=LibraryDefault,
        show_default="auto",
        help="gptq/awq rows: the GPTQModel kernel; auto picks as GPTQModel 7.3.4 does for --gpu's compute "
        "capability (swordfish 10.x/11.x, machete 9.0, Marlin >= 7.5 (awq 8.0), else exllamav2); "
        "without --gpu, Marlin.",
    ),
    click.option(
        "--gptq-desc-act",
        is_flag=True,
        help="gptq rows: the checkpoint was quantized with desc_act (act order): kernels keep g_idx and "
        "its sort indices (GPTQConfig's default: off).",
    ),
    click.option(
        "--gpu-sms",
        type=int,
        cls=LibraryDefault,
        show_default="128",
        help="gptq/awq rows on Marlin: the GPU's SM count; the workspace is max(SMs, 128) int32 per Linear.",
    ),
)

training_options = options(
    click.option(
        "--train",
        type=click.Choice(choices.TRAIN_MODES),
        help="Estimate training instead of inference: full fine-tuning, LoRA, or QLoRA (NF4 base).",
    ),
    click.option(
        "--regime",
        "regimes",
        multiple=True,
        type=click.Choice(choices.REGIMES),
        help="Training rows (repeatable). Default: fp32 bf16 mixed. int8 = the S0 article's all-1-byte rule.",
    ),
    click.option(
        "--optimizer",
        type=click.Choice(choices.OPTIMIZERS),
        cls=LibraryDefault,
        show_default="adamw",
        help="Optimizer states: AdamW 2 per param, 8-bit Adam 2 bytes, SGD momentum 1, SGD 0, Adafactor factored.",
    ),
    click.option(
        "--micro-batch", type=int, cls=LibraryDefault, show_default="1", help="Sequences per GPU per step."
    ),
    click.option(
        "--grad-checkpointing", is_flag=True, help="Keep each layer's input only and recompute in backward."
    ),
    click.option(
        "--lora-rank",
        type=int,
        cls=LibraryDefault,
        show_default="16",
        help="LoRA rank r (--train lora or qlora).",
    ),
    click.option(
        "--lora-targets",
        cls=LibraryDefault,
        show_default=",".join(choices.LORA_MODULES),
        help="Projections LoRA adapts (comma-separated from q,k,v,o,gate,up,down; --train lora or qlora). "
        "MLA (DeepSeek V2/V3): q = q_a_proj + q_b_proj (or q_proj), k and v = kv_a_proj_with_mqa + kv_b_proj, "
        "o = o_proj.",
    ),
    click.option(
        "--lora-experts",
        type=click.Choice(choices.LORA_EXPERTS),
        help="MoE routed experts (fused 3-D in transformers 5): auto = what PEFT makes of the MLP targets "
        "(Mixtral/Qwen3-MoE/DeepSeek...: the experts' gate_up_proj at rank 2r and down_proj at r), none = "
        "target_modules only, params = target_parameters on both at rank r [default: auto].",
    ),
    click.option(
        "--grad-dtype",
        type=click.Choice(choices.GRAD_DTYPES),
        cls=LibraryDefault,
        show_default="fp32",
        help="Gradients in the mixed regime: fp32 (torch.autocast, HF Trainer) or 16bit (DeepSpeed, Megatron).",
    ),
    click.option(
        "--loss-dtype",
        type=click.Choice(choices.LOSS_DTYPES),
        cls=LibraryDefault,
        show_default="fp32",
        help="causal-LM loss buffers: fp32 (transformers upcasts the logits) or 16bit (litgpt bf16-true).",
    ),
    click.option(
        "--lora-dropout",
        type=float,
        cls=LibraryDefault,
        show_default="0.0",
        help="LoRA/QLoRA: LoraConfig's lora_dropout; above 0 each adapted Linear keeps its dropped-out input "
        "and mask for backward (PEFT's default: 0).",
    ),
    click.option(
        "--lora-fused-qkv",
        is_flag=True,
        help="LoRA/QLoRA with --lora-dropout: q, k and v share one adapter input and one dropout, as litgpt's "
        "fused LoRAQKVLinear (PEFT: one per projection).",
    ),
    click.option(
        "--modules-to-save",
        help="LoRA/QLoRA: modules PEFT trains in full beside the adapters (embed,lm_head): a second copy "
        "plus its gradients and optimizer states.",
    ),
    click.option(
        "--objective",
        type=click.Choice(choices.OBJECTIVES),
        cls=LibraryDefault,
        show_default="causal-lm",
        help="Loss: causal-LM cross-entropy (fp32 b·s·V buffers), a classification head, or logits.sum().",
    ),
    click.option(
        "--activations",
        "activation_rule",
        type=click.Choice(choices.ACTIVATION_RULES),
        cls=LibraryDefault,
        show_default="korthikanti",
        help="Activation rule: Korthikanti et al. 2022 (generalised) or the S0 article's (h + i)·s·L·bytes.",
    ),
    click.option(
        "--gpus", type=int, help="GPUs in total = tp × pp × data-parallel replicas (default: tp × pp)."
    ),
    click.option(
        "--zero",
        type=click.Choice(choices.ZERO_STAGES),
        cls=LibraryDefault,
        show_default="0",
        help="DeepSpeed ZeRO stage.",
    ),
    click.option(
        "--zero-buckets",
        type=click.Choice(choices.ZERO_BUCKETS),
        help="DeepSpeed bucket sizes: deepspeed (its defaults: reduce 5e8, prefetch 5e7, persistence 1e5) "
        'or hf-auto (the HF Trainer\'s "auto": reduce h², prefetch 0.9·h², persistence 10·h) [default: deepspeed].',
    ),
    click.option(
        "--reduce-bucket-size", help="DeepSpeed reduce_bucket_size, elements (--zero 1-3) [default: 5e8]."
    ),
    click.option(
        "--prefetch-bucket-size",
        help="DeepSpeed stage3_prefetch_bucket_size, elements (--zero 3) [default: 5e7].",
    ),
    click.option(
        "--param-persistence-threshold",
        help="DeepSpeed stage3_param_persistence_threshold: parameters this small stay whole (--zero 3) [default: 1e5].",
    ),
    click.option(
        "--max-live-parameters", help="DeepSpeed stage3_max_live_parameters (--zero 3) [default: 1e9]."
    ),
    click.option(
        "--max-reuse-distance",
        help="DeepSpeed stage3_max_reuse_distance: parameters reused within it stay gathered (--zero 3) [default: 1e9].",
    ),
    click.option(
        "--overlap-comm/--no-overlap-comm",
        default=None,
        help="DeepSpeed overlap_comm: ZeRO-1/2 then keep two reduce buckets [default: on for --zero 3 only].",
    ),
    click.option(
        "--ddp-bucket-view",
        is_flag=True,
        help="Several data-parallel replicas without --zero/--fsdp run DDP, whose all-reduce buckets copy every "
        "gradient; this is DistributedDataParallel(gradient_as_bucket_view=True): no copy.",
    ),
    click.option(
        "--nccl-channels",
        type=int,
        cls=LibraryDefault,
        show_default="0",
        help="With several GPUs: NCCL ring channels per GPU, each 9,633,792 B of FIFOs (LL + LL128 + "
        "4 MiB NCCL_BUFFSIZE); 0 leaves them inside --overhead.",
    ),
    click.option(
        "--fsdp",
        type=click.Choice(choices.FSDP_MODES),
        help="PyTorch FSDP sharding per decoder layer: full (FULL_SHARD, as ZeRO-3) or grad-op (SHARD_GRAD_OP).",
    ),
    click.option("--tp", type=int, cls=LibraryDefault, show_default="1", help="Tensor-parallel size."),
    click.option(
        "--pp", type=int, cls=LibraryDefault, show_default="1", help="Pipeline-parallel stages (1F1B)."
    ),
    click.option(
        "--offload",
        type=click.Choice(choices.OFFLOAD),
        help="Move optimizer states + master weights (and with 'params' the weights) to host RAM.",
    ),
)

# vLLM's own flags (`hubmem serve`, and `audit` / `check` with --engine): passed on as given.
vllm_engine_options = options(
    click.option(
        "--gpu-memory-utilization",
        type=float,
        help="vLLM: share of each GPU the engine takes [default: 0.9].",
    ),
    click.option(
        "--max-model-len",
        help="vLLM: tokens per request (prompt + output), or auto: the largest that fits [default: the model's].",
    ),
    click.option(
        "--max-num-batched-tokens",
        type=int,
        help="vLLM: tokens per step (profile run) [default: 8192 on ≥ 70 GiB non-A100 GPUs, else 2048].",
    ),
    click.option(
        "--max-num-seqs",
        type=int,
        help="vLLM: requests per step [default: 1024 on ≥ 70 GiB non-A100 GPUs, else 256].",
    ),
    click.option(
        "--kv-cache-dtype",
        type=click.Choice(["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_ds_mla"]),
        help="KV cache dtype (SGLang: auto, fp8_e4m3, fp8_e5m2) [default: auto = the model dtype].",
    ),
    click.option(
        "--block-size",
        type=int,
        help="vLLM: tokens per KV block [default: 16; 64 for MLA on Hopper/Blackwell].",
    ),
    click.option("--tensor-parallel-size", type=int, help="vLLM: tensor-parallel size [default: 1]."),
    click.option("--pipeline-parallel-size", type=int, help="vLLM: pipeline-parallel size [default: 1]."),
    click.option("--enforce-eager", is_flag=True, default=None, help="vLLM: no CUDA graphs."),
    click.option("--dtype", help="vLLM: auto, bfloat16, float16, float32 [default: auto]."),
    click.option(
        "--quantization", type=click.Choice(["fp8"]), help="vLLM: online FP8 quantization of Linear weights."
    ),
    click.option(
        "--non-torch-memory",
        help="Assumed non-torch memory per GPU (vLLM measures it) [default: 352MiB, the median of published vLLM profiles].",
    ),
    click.option(
        "--sampler",
        type=click.Choice(["native", "flashinfer"]),
        help="vLLM: the profile's top-k/top-p sampler path, PyTorch-native (its sort: e + 36 B per request × "
        "vocab entry) or FlashInfer's (VLLM_USE_FLASHINFER_SAMPLER=1: e + 8) [default: native].",
    ),
    click.option(
        "--mxfp4-backend",
        type=click.Choice(["auto", "marlin", "triton", "flashinfer-trtllm", "flashinfer-cutlass"]),
        help="vLLM: the MXFP4 MoE backend (gpt-oss experts), which sets their padding and scale/bias copies "
        "[default: auto = vLLM's choice by compute capability: triton on 9.x, flashinfer-trtllm on 10.x, "
        "marlin elsewhere; vLLM 0.10.1 ran marlin on Hopper].",
    ),
    click.option(
        "--cuda-graph-in-budget",
        is_flag=True,
        default=None,
        help="Subtract CUDA graph memory from the KV budget (vLLM ≥ 0.21's default).",
    ),
)

# SGLang's own flags (`hubmem serve --engine sglang`, and `audit` / `check` with --engine sglang, whose
# --tp is the shared tensor-parallel option): passed on as given; defaults in hubmem.runtimes.sglang.
sglang_engine_options = options(
    click.option(
        "--mem-fraction-static",
        type=float,
        help="SGLang: share of the free memory for weights + KV pool [default: from the GPU's memory, as SGLang].",
    ),
    click.option("--context-length", type=int, help="SGLang: tokens per request [default: the model's]."),
    click.option(
        "--chunked-prefill-size", type=int, help="SGLang: prefill chunk [default: by GPU memory, 2048-16384]."
    ),
    click.option(
        "--max-running-requests", type=int, help="SGLang: concurrent requests [default: from the pool]."
    ),
    click.option(
        "--cuda-graph-max-bs", type=int, help="SGLang: largest CUDA graph batch [default: by GPU memory]."
    ),
    click.option(
        "--swa-full-tokens-ratio",
        type=float,
        help="SGLang: SWA pool tokens / full pool tokens (gpt-oss, Llama 4) [default: 0.8].",
    ),
    click.option(
        "--disable-hybrid-swa-memory",
        is_flag=True,
        default=None,
        help="SGLang: one full-length pool for sliding-window layers too.",
    ),
    click.option(
        "--mamba-full-memory-ratio",
        type=float,
        help="SGLang: Mamba / linear-attention state pool bytes per KV pool byte [default: 0.9].",
    ),
    click.option(
        "--max-mamba-cache-size", type=int, help="SGLang: Mamba state slots [default: from the ratio]."
    ),
    click.option(
        "--mamba-ssm-dtype",
        type=click.Choice(["float32", "bfloat16", "float16"]),
        help="SGLang: dtype of the Mamba SSM state [default: float32].",
    ),
)

engine_option = click.option(
    "--engine",
    type=click.Choice(["vllm", "sglang"]),
    help="Judge what this serving engine allocates at start-up (hubmem serve) instead of the generic total.",
)

# GGUF repos: llama.cpp's own flags (common/arg.cpp), defaults in hubmem.runtimes.llamacpp
llamacpp_options = options(
    click.option(
        "--quant", help="GGUF repos: one quant file (Q4_K_M, IQ4_XS, or a file name); also REPO:QUANT."
    ),
    click.option(
        "--runtime",
        type=click.Choice(choices.RUNTIMES),
        cls=LibraryDefault,
        show_default="llama.cpp",
        help="GGUF repos: llama.cpp's defaults, or Ollama's (-c 4096, -fa off, -ub 512).",
    ),
    click.option(
        "-c",
        "--ctx-size",
        "ctx_size",
        type=int,
        help="GGUF: llama.cpp -c, total context (default: the model's; 0 = the model's).",
    ),
    click.option(
        "-np",
        "--parallel",
        "parallel",
        type=int,
        cls=LibraryDefault,
        show_default="1",
        help="GGUF: llama.cpp -np, parallel sequences.",
    ),
    click.option(
        "-ngl",
        "--n-gpu-layers",
        "n_gpu_layers",
        type=int,
        help="GGUF: llama.cpp -ngl, layers on the GPU (default: all; -1 = all).",
    ),
    click.option(
        "-ctk",
        "--cache-type-k",
        "cache_type_k",
        type=click.Choice(choices.CACHE_TYPES),
        cls=LibraryDefault,
        show_default="f16",
        help="GGUF: K cache type.",
    ),
    click.option(
        "-ctv",
        "--cache-type-v",
        "cache_type_v",
        type=click.Choice(choices.CACHE_TYPES),
        cls=LibraryDefault,
        show_default="f16",
        help="GGUF: V cache type (quantized needs -fa on).",
    ),
    click.option(
        "-fa",
        "--flash-attn",
        "flash_attn",
        type=click.Choice(choices.FLASH_ATTN),
        cls=LibraryDefault,
        show_default="auto",
        help="GGUF: flash attention (auto = on).",
    ),
    click.option(
        "-ub",
        "--ubatch-size",
        "ubatch_size",
        type=int,
        cls=LibraryDefault,
        show_default="512",
        help="GGUF: physical batch (sizes the compute buffer).",
    ),
    click.option(
        "-b",
        "--batch-size",
        "batch_size",
        type=int,
        cls=LibraryDefault,
        show_default="2048",
        help="GGUF: logical batch.",
    ),
    click.option(
        "--swa-full",
        "swa_full",
        is_flag=True,
        default=None,
        help="GGUF: full-size cache for sliding-window layers.",
    ),
    click.option(
        "-nkvo",
        "--no-kv-offload",
        "no_kv_offload",
        is_flag=True,
        default=None,
        help="GGUF: keep the KV cache in host RAM.",
    ),
    click.option(
        "-ts", "--tensor-split", "tensor_split", help="GGUF: layer fractions over --num-gpus GPUs, e.g. 3,1."
    ),
    click.option(
        "-kvu",
        "--kv-unified",
        "kv_unified",
        is_flag=True,
        default=None,
        help="GGUF: one KV buffer shared by all -np sequences.",
    ),
    click.option(
        "--reserve-outputs",
        "reserve_outputs",
        type=click.Choice(("ubatch", "parallel")),
        cls=LibraryDefault,
        show_default="ubatch",
        help="GGUF: output rows of the graph llama.cpp sizes its compute buffer with: ubatch (before 2026, "
        "llama-cli, Ollama) or parallel (llama-server since 2026: one per -np sequence).",
    ),
    click.option(
        "--ngl-output",
        "ngl_output",
        type=click.Choice(("extra", "counted")),
        cls=LibraryDefault,
        show_default="extra",
        help="GGUF: -ngl and the output layer: extra (offloaded beyond the layers, -ngl > layers; before "
        "2026) or counted (one of the -ngl, 2026).",
    ),
    click.option(
        "--kq-mask",
        "kq_mask",
        type=click.Choice(("f32", "f16")),
        cls=LibraryDefault,
        show_default="f32",
        help="GGUF: the flash-attention KQ mask input: f32 cast in the graph (before 2026) or f16 (2026).",
    ),
    click.option(
        "-fit",
        "--fit",
        "fit",
        type=click.Choice(("on", "off")),
        cls=LibraryDefault,
        show_default="on",
        help="GGUF: llama.cpp --fit: on a --gpu, lower -c and -ngl (those not given) to fit (ollama: off).",
    ),
    click.option(
        "-fitt",
        "--fit-target",
        "fit_target",
        type=int,
        cls=LibraryDefault,
        show_default="1024",
        help="GGUF: MiB --fit leaves free on each GPU.",
    ),
    click.option(
        "-fitc",
        "--fit-ctx",
        "fit_ctx",
        type=int,
        cls=LibraryDefault,
        show_default="4096",
        help="GGUF: the smallest -c --fit lowers to.",
    ),
)

revision_option = click.option(
    "--revision", help="Branch, tag or commit (default: main). Also REPO@REVISION."
)
judged_precision_option = click.option(
    "--precision",
    type=click.Choice(choices.JUDGED_PRECISIONS),
    default="auto",
    show_default=True,
    help="Precision to judge. auto: what transformers >= 5 loads (dtype auto): the checkpoint as stored when "
    "quantized, else config.json's dtype, else the checkpoint's float dtype (F32: fp32).",
)


def given(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options of `kwargs` the user gave on the command line (or by environment), for the library."""
    ctx = click.get_current_context()
    sources = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    return {k: v for k, v in kwargs.items() if ctx.get_parameter_source(k) in sources}


def warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        click.echo(errors.redact(f"Warning: {warning}"), err=True)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hubmem")
def main() -> None:
    """How much GPU memory will a Hugging Face model need? Reads config.json and safetensors
    headers, never the weights.

    \b
    hubmem Qwen/Qwen2.5-7B-Instruct            same as: hubmem estimate Qwen/Qwen2.5-7B-Instruct
    hubmem ./local-snapshot --seq-len 8192
    hubmem gpus                                the GPU catalogue used for "fits on"
    """


@main.command()
@click.argument("repo")
@revision_option
@hub_options
@shared_model_options
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    type=click.Choice(choices.PRECISIONS),
    help="Rows to show (repeatable). Default: fp32 bf16 fp8 int8 int4, + 'stored' for quantized checkpoints.",
)
@inference_options
@training_options
@click.option("--explain", is_flag=True, help="Print every term with its inputs, formula and source.")
@click.option(
    "--bars/--no-bars",
    default=None,
    help="Stacked bars of weights / KV / activations / overhead under the table (default: on a terminal).",
)
@llamacpp_options
@gpu_options
@output_options
@handle_errors
def estimate(
    repo: str,
    revision: str | None,
    token: str | None,
    timeout: float,
    train: str | None,
    explain: bool,
    bars: bool | None,
    gpu: str | None,
    num_gpus: int,
    gpu_memory: str | None,
    fmt: str,
    units: str,
    **kwargs: Any,
) -> None:
    """Estimate inference memory for REPO (a Hub repo id or a local folder) at each precision,
    or with --train the per-GPU training memory for each precision regime."""
    from hubmem import api

    est = api.estimate(
        repo,
        revision=revision,
        token=token,
        timeout=timeout,
        train=train,
        gpu=gpu,
        num_gpus=num_gpus,
        gpu_memory=gpu_memory,
        _beside=True,
        **given(kwargs),
    )
    from hubmem.jobs.results import InferenceEstimate  # after the fetch: imported while it was in flight
    from hubmem.output.bars import bars_wanted, colour_wanted, render_bars
    from hubmem.output.estimate import render_estimate

    warn(est.warnings)
    if getattr(est, "weights_format", None) == "gguf":
        from hubmem.output.gguf import render_gguf

        click.echo(errors.redact(render_gguf(est, fmt, units, explain)), nl=False)  # type: ignore[arg-type]
        return
    drawn = None
    if isinstance(est, InferenceEstimate) and bars_wanted(bars, fmt, sys.stdout):
        drawn = render_bars(est, units, colour=colour_wanted(sys.stdout))
    click.echo(errors.redact(render_estimate(est, fmt, units, explain, bars=drawn)), nl=False)


@main.command()
@output_options
def gpus(fmt: str, units: str) -> None:
    """List the GPU catalogue: names, aliases, memory and the source of each figure."""
    from hubmem.output.gpus import render_gpus

    click.echo(render_gpus(fmt, units), nl=False)
    if fmt in ("table", "markdown"):
        click.echo(
            "usable = what torch reports as the device's total (total_memory), measured or by the rule "
            "in usable_source (--format json); fit verdicts compare with it.",
            err=True,
        )


def exit_now(code: int) -> None:
    """Flush and leave at once. A plain exit would wait for the requests still in flight: they run on
    huggingface_hub / concurrent.futures threads that the interpreter joins at exit (up to --timeout)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`hubmem ... | head`): nobody reads it any more
            pass
    os._exit(code)


def run() -> None:
    """The `hubmem` command: `main()`, then out without tearing the interpreter down, as mypy's
    --fast-exit does (mypy/util.py hard_exit): freeing every module and object once the output is out
    costs ~40 ms of a ~0.4 s run (huggingface_hub's client and its SSL context the most) and does nothing
    a process exit does not. Nothing is left to write: every audit row is committed when it is stored
    (hubmem.store.db), the metadata cache written before the estimate is rendered."""
    try:
        main()
    except SystemExit as e:  # click's standalone mode ends every command with one
        if isinstance(e.code, str):
            click.echo(e.code, err=True)
        exit_now(e.code if isinstance(e.code, int) else 0 if e.code is None else 1)
    exit_now(0)


@main.command()
@click.argument("repos", nargs=-1)
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    help="Read repo ids from FILE: one per line (REPO or REPO@REVISION), # comments, blank lines; - is stdin.",
)
@click.option(
    "-j",
    "--jobs",
    type=int,
    default=32,  # hubmem.jobs.audit.DEFAULT_JOBS (tests/test_audit.py keeps them equal)
    show_default=True,
    help="Repos fetched at once, 1-256 (Linux: on threads in forked helpers, one per 8 jobs, at most one per CPU).",
)
@judged_precision_option
@click.option(
    "--sort",
    "sort_key",
    help="Order rows by a JSON column (total, params, download, ...); -COLUMN: descending. "
    "downloads, likes, trending, lastModified: order the listing (--author, --search, --filter) on the Hub.",
)
@click.option("--author", help="Add every model of this org or user (the Hub's listing, paged).")
@click.option("--search", help="Add the models whose id contains TEXT (with --author: of that author).")
@click.option(
    "--filter", "filters", multiple=True, help="Only listed models with this tag (repeatable: all of them)."
)
@click.option("--limit", type=int, help="At most N models from the listing (and from the collection).")
@click.option("--collection", help="Add the models of a collection (its slug, namespace/title-id).")
@click.option(
    "--db",
    help="Results database (SQLite): store every row; skip repos whose commit is unchanged since their stored row.",
)
@click.option("--report", is_flag=True, help="With --db: print the latest run's stored rows; no network.")
@click.option(
    "--html",
    "html_file",
    help="Also write a self-contained HTML report (sortable table, charts) to this file; with --report too.",
)
@click.option(
    "--max-rps",
    type=float,
    help="At most N Hub calls a second over all workers (a 429 pauses them all anyway).",
)
@click.option(
    "--columns",
    help="Table and markdown columns, by their JSON names (repo,params,total,...; all: every one). "
    "Default: a few that fit 120 columns; json, jsonl and csv keep every column.",
)
@hub_options
@shared_model_options
@inference_options
@training_options
@engine_option
@vllm_engine_options
@sglang_engine_options
@llamacpp_options
@gpu_options
@output_options
@handle_errors
def audit(
    repos: tuple[str, ...],
    files: tuple[str, ...],
    jobs: int,
    precision: str,
    sort_key: str | None,
    author: str | None,
    search: str | None,
    filters: tuple[str, ...],
    limit: int | None,
    collection: str | None,
    db: str | None,
    report: bool,
    html_file: str | None,
    max_rps: float | None,
    columns: str | None,
    token: str | None,
    timeout: float,
    train: str | None,
    gpu: str | None,
    num_gpus: int,
    gpu_memory: str | None,
    fmt: str,
    units: str,
    **kwargs: Any,
) -> None:
    """Audit many repos at once: one row each, in input order (REPO[@REVISION] arguments, -f FILE, - for stdin,
    then the models of --author / --search / --filter and --collection, each repo once).

    An id that fails (missing, gated, malformed, timeout) becomes an error row and the others go on;
    the exit code is 30 when any failed. Ctrl-C prints the rows that finished and exits 130.
    json, jsonl and csv rows are printed as they finish, in input order (without --sort).
    With --train each row is the per-GPU training memory of one regime (--regime, default mixed).
    """
    from hubmem import api
    from hubmem.hub.listing import SORTS
    from hubmem.jobs import audit as audit_job
    from hubmem.output.audit import parse_columns, render_audit, row_stream

    picked = parse_columns(columns)
    if picked is not None and fmt not in ("table", "markdown"):
        raise errors.InvalidInputError(
            f"--columns picks table and markdown columns: {fmt} keeps every column"
        )
    list_sort = sort_key if sort_key in SORTS else None
    sort_key = None if list_sort else sort_key
    listing = bool(author or search or filters or collection)
    if db and not report:  # a file that is no results database fails before any request
        from hubmem.store.db import ResultsDB

        ResultsDB(db).close()
    if report:
        from hubmem.jobs.stored import report_rows

        if not db:
            raise errors.InvalidInputError("--report prints a results database: give --db FILE")
        if repos or files or listing:
            raise errors.InvalidInputError(
                "--report prints the stored rows and fetches nothing: give no repo ids"
            )
        rows, target = report_rows(db)
        rows = audit_job.sort_rows(rows, sort_key) if sort_key else rows
        click.echo(
            errors.redact(render_audit(rows, fmt, units, target, stored=True, columns=picked)), nl=False
        )
        if html_file:
            write_html(html_file, rows, target, units)
        failed = [r for r in rows if not r.ok]
        if failed:
            raise errors.BatchFailedError(f"{len(failed)} of {len(rows)} stored rows are errors")
        return
    plan = api.audit_plan(
        audit_job.read_ids(repos, files, sys.stdin) if repos or files or not listing else [],
        author=author,
        search=search,
        filters=filters,
        list_sort=list_sort,
        limit=limit,
        collection=collection,
        max_rps=max_rps,
        jobs=jobs,
        precision=precision,
        gpu=gpu,
        gpu_memory=gpu_memory,
        num_gpus=num_gpus,
        token=token,
        timeout=timeout,
        train=train,
        **given(kwargs),
    )
    if picked is not None and plan.engine is not None:
        raise errors.InvalidInputError(
            "--columns picks the audit table's columns: --engine has its own table"
        )
    # json, jsonl and csv: each row printed as soon as it and the rows before it finished; tables align
    # their columns over every row, so they (and --sort, --html) wait for the last
    stream = row_stream(fmt, bool(db)) if fmt in ("json", "jsonl", "csv") and not sort_key else None
    if stream is not None and plan.engine is not None:
        from hubmem.output.serve import serve_row_stream

        stream = serve_row_stream(fmt)
    stored = api.stored_audit(plan, db) if db else None

    def print_row(row: Any) -> None:
        assert stream is not None
        click.echo(errors.redact(stream.row(row)), nl=False)

    on_row = print_row if stream is not None else None
    keep = stream is None or bool(html_file)
    bar = audit_job.progress_bar(len(plan.refs))
    if stream is not None:
        click.echo(stream.start(), nl=False)
    with bar:
        if stored is not None:
            result = stored.run_all(on_done=lambda _row: bar.update(), on_row=on_row, keep=keep)
        else:
            result = audit_job.run_audit(
                plan.refs,
                plan.fetch,
                lambda ref, fetched: plan.evaluate(ref, fetched).plain(),  # no estimate kept: flat memory
                jobs=plan.jobs,
                on_done=lambda _row: bar.update(),
                on_row=on_row,
                keep=keep,
            )
    rows = audit_job.sort_rows(result.rows, sort_key) if sort_key else result.rows
    if stream is not None:
        click.echo(stream.end(), nl=False)
    elif plan.engine is not None:
        from hubmem.output.serve import render_serve_audit

        click.echo(errors.redact(render_serve_audit(rows, fmt, units)), nl=False)
    else:
        click.echo(
            errors.redact(render_audit(rows, fmt, units, plan.target, stored=bool(db), columns=picked)),
            nl=False,
        )
    if html_file:
        write_html(html_file, rows, plan.target, units)
    if stored is not None:
        click.echo(
            f"{db}: {stored.computed} rows computed, {stored.reused} unchanged (reused), run {stored.run}.",
            err=True,
        )
    from hubmem.hub import pace

    # the retry count: a line of its own after a good run, part of the one error line after a bad one
    retried = f"Hub calls retried: {pace.retried()} (429/5xx answers, timeouts)" if pace.retried() else ""
    if result.interrupted:
        ended = f"Interrupted: {result.finished} of {result.total} repos finished."
        click.echo(ended + (f" {retried}." if retried else ""), err=True)
        exit_now(130)
    if result.failed:
        names = ", ".join(r.ref for r in result.failed[:5]) + (", …" if len(result.failed) > 5 else "")
        raise errors.BatchFailedError(
            f"{len(result.failed)} of {result.total} repos failed: {names}"
            + (f"; {retried}" if retried else "")
        )
    if retried:
        click.echo(retried + ".", err=True)


def write_html(path: str, rows: list[Any], target: Any, units: str) -> None:
    from hubmem.output.html import render_html

    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(errors.redact(render_html(rows, target, units)))
    except OSError as e:
        raise errors.LocalFileError(f"cannot write --html '{path}': {e.strerror or type(e).__name__}") from e
    click.echo(f"Wrote {path} ({len(rows)} rows).", err=True)


@main.command()
@click.argument("a")
@click.argument("b")
@click.option("--all", "show_all", is_flag=True, help="Every compared field, not only those that changed.")
@hub_options
@shared_model_options
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    type=click.Choice(choices.PRECISIONS),
    help="Memory rows to compare (repeatable). Default: fp32 bf16 fp8 int8 int4 (+ stored).",
)
@inference_options
@output_options
@handle_errors
def diff(
    a: str, b: str, show_all: bool, token: str | None, timeout: float, fmt: str, units: str, **kwargs: Any
) -> None:
    """What changed from A to B: two repos (REPO[@REVISION] or local folders), or one repo at two
    revisions (B as @REVISION). Parameters per dtype and component, architecture fields, memory per
    precision (same options on both sides), download size."""
    from hubmem import api
    from hubmem.output.diff import render_diff

    result = api.diff(a, b, token=token, timeout=timeout, _beside=True, **given(kwargs))
    click.echo(errors.redact(render_diff(result, fmt, units, show_all)), nl=False)


@main.command()
@click.argument("repo")
@revision_option
@judged_precision_option
@click.option(
    "--cache-dir", help="Where the weights would be downloaded (default: HF_HUB_CACHE, i.e. $HF_HOME/hub)."
)
@hub_options
@shared_model_options
@inference_options
@training_options
@engine_option
@vllm_engine_options
@sglang_engine_options
@llamacpp_options
@gpu_options
@output_options
@handle_errors
def check(
    repo: str,
    revision: str | None,
    precision: str,
    cache_dir: str | None,
    token: str | None,
    timeout: float,
    train: str | None,
    gpu: str | None,
    num_gpus: int,
    gpu_memory: str | None,
    fmt: str,
    units: str,
    **kwargs: Any,
) -> None:
    """Before pulling REPO: will it fit on the GPUs, and is there disk for the download?

    Exit 0: ready to pull; 40: will not fit on the GPUs; 41: fits, but not enough disk where the
    Hugging Face cache lives; other codes: errors (see the README). With --train: the per-GPU
    training memory of one regime (--regime, default mixed) on --gpus of them.
    """
    from hubmem import api
    from hubmem.jobs.results import CheckResult
    from hubmem.output.check import render_check

    result = api.check(
        repo,
        revision=revision,
        precision=precision,
        cache_dir=cache_dir,
        token=token,
        timeout=timeout,
        train=train,
        gpu=gpu,
        num_gpus=num_gpus,
        gpu_memory=gpu_memory,
        _beside=True,
        **given(kwargs),
    )
    warn(result.estimate.warnings)
    if getattr(getattr(result, "estimate", None), "weights_format", None) == "gguf":
        from hubmem.output.gguf import render_gguf_check

        click.echo(errors.redact(render_gguf_check(result, fmt, units)), nl=False)  # type: ignore[arg-type]
    elif not isinstance(result, CheckResult):  # --engine: the engine's start-up verdict
        from hubmem.output.serve import render_serve_check

        click.echo(errors.redact(render_serve_check(result, fmt, units)), nl=False)
    else:
        click.echo(errors.redact(render_check(result, fmt, units)), nl=False)
    if result.exit_code:
        sys.exit(result.exit_code)


@main.command()
@click.argument("repo")
@revision_option
@click.option(
    "--engine",
    type=click.Choice(["vllm", "sglang"]),
    default="vllm",
    show_default=True,
    help="Serving engine.",
)
@click.option("--gpu", help="GPU from the catalogue (`hubmem gpus`), e.g. h100, 4090.")
@click.option(
    "--gpu-memory", help="Total memory of a GPU not in the catalogue (torch total_memory), e.g. 23.58GiB."
)
@click.option(
    "--num-gpus", type=int, help="GPUs: TP up to 8 per node, PP across nodes beyond (default TP × PP)."
)
@vllm_engine_options
@sglang_engine_options
@click.option("--tp", type=int, help="SGLang: tensor-parallel size [default: 1].")
@click.option("--explain", is_flag=True, help="Print every term with its formula and source.")
@hub_options
@output_options
@handle_errors
def serve(
    repo: str,
    revision: str | None,
    engine: str,
    gpu: str | None,
    gpu_memory: str | None,
    num_gpus: int | None,
    explain: bool,
    token: str | None,
    timeout: float,
    fmt: str,
    units: str,
    **kwargs: Any,
) -> None:
    """What a serving engine allocates on each GPU at start-up for REPO, whether it starts, and how
    many requests its KV cache holds. Exit 0: starts; 40: refuses (not enough memory); 19: the engine
    refuses the model or an option."""
    from hubmem import api
    from hubmem.output.serve import render_serve

    result = api.serve(
        repo,
        engine=engine,
        gpu=gpu,
        gpu_memory=gpu_memory,
        num_gpus=num_gpus,
        revision=revision,
        token=token,
        timeout=timeout,
        _beside=True,
        **{k: v for k, v in kwargs.items() if v is not None},
    )
    warn(result.warnings)
    click.echo(errors.redact(render_serve(result, fmt, units, explain)), nl=False)
    if result.exit_code:
        sys.exit(result.exit_code)


if __name__ == "__main__":  # pragma: no cover
    run()
